#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "act/alert.h"
#include "act/inventory.h"
#include "cmd/inspect.h"
#include "util/clock.h"
#include "util/hmap.h"
#include "util/json.h"
#include "util/log.h"

#define IDLE_NS (30ULL * 1000 * 1000 * 1000)
/* A kernel verdict waits this long for the request it belongs to. */
#define VERDICT_WAIT_NS (2ULL * 1000 * 1000 * 1000)
#define MAX_CONNS 8192

/* What is known of one connection; decoder is NULL when it is not decoded. */
struct conn {
	struct lw_request_decoder *dec;
	int provider; /* catalog index from SNI, -1 */
	bool ignore;  /* SNI names no provider */
	uint64_t last_ns;
	uint32_t seq; /* next expected message seq: a gap means lost bytes */
	bool have_seq;
	/* identity as of the last message, copied: requests finished at idle
	 * time or exit are reported after the process may be gone */
	struct lw_proc proc;
	struct lw_conn_info ci;
	uint32_t pid;
	uint64_t ts_ns;
	char comm[LW_COMM_LEN + 1];
	uint64_t cgroup_id;
	bool cur_blocked; /* the message being fed never left (refused write) */
	/* a kernel verdict not reported yet */
	bool kv_pending;
	uint32_t kv_rule, kv_gen, kv_policy;
	uint64_t kv_ns;
	/* refused from now on, and by which stage */
	const char *poisoned;
	/* the inventory row of the last request: its responses count there */
	bool inv;
	int provider_inv;
	char inv_service[LW_INV_FIELD], inv_model[LW_INV_FIELD], inv_method[16];
	char inv_path[LW_INV_FIELD];
	struct lw_inspect *in;
};

struct lw_inspect {
	const struct lw_config *cfg;
	const struct lw_policy_set *set;
	struct lw_classifier *cls;
	lw_inspect_block_cb on_block;
	void *ud;
	lw_inspect_alert_cb on_alert;
	void *alert_ud;
	FILE *file;
	char hostname[256];
	lw_inspect_printed_cb on_printed;
	void *printed_ud;
	struct lw_inventory *inv;
	struct lw_buf key;
	struct lw_classify_ctx *ctx;
	struct lw_decode_limits lim;
	struct lw_inspect_stats st;
	struct lw_hmap conns;
	struct lw_findings findings, mfind;
	struct lw_buf out;
	FILE *f;
	int64_t mono_to_real_ns;
};

static void emit(struct lw_inspect *in, const struct lw_alert *a, uint64_t mono_ns);

struct lw_inspect *lw_inspect_new(const struct lw_config *cfg, FILE *out, int64_t mono_to_real_ns,
				  lw_inspect_block_cb on_block, void *ud)
{
	struct lw_inspect *in = lw_xcalloc(1, sizeof(*in));

	lw_decode_limits_default(&in->lim);
	in->f = out;
	in->mono_to_real_ns = mono_to_real_ns;
	in->on_block = on_block;
	in->ud = ud;
	if (gethostname(in->hostname, sizeof(in->hostname) - 1) != 0)
		snprintf(in->hostname, sizeof(in->hostname), "unknown");
	lw_inspect_set_config(in, cfg);
	return in;
}

void lw_inspect_set_inventory(struct lw_inspect *in, struct lw_inventory *inv)
{
	in->inv = inv;
}

void lw_inspect_on_printed(struct lw_inspect *in, lw_inspect_printed_cb cb, void *ud)
{
	in->on_printed = cb;
	in->printed_ud = ud;
}

void lw_inspect_alert(struct lw_inspect *in, struct lw_alert *a, uint64_t mono_ns)
{
	struct lw_findings none = {0};

	a->hostname = in->hostname;
	if (!a->findings)
		a->findings = &none;
	emit(in, a, mono_ns);
}

void lw_inspect_alerts_file(struct lw_inspect *in, FILE *f)
{
	in->file = f;
}

void lw_inspect_on_alert(struct lw_inspect *in, lw_inspect_alert_cb cb, void *ud)
{
	in->on_alert = cb;
	in->alert_ud = ud;
}

void lw_inspect_set_config(struct lw_inspect *in, const struct lw_config *cfg)
{
	struct lw_classifier *c = cfg->cls;

	in->cfg = cfg;
	in->set = &cfg->set;
	if (c != in->cls) {
		lw_classify_ctx_free(in->ctx);
		in->cls = c;
		in->ctx = lw_classify_ctx_new(c);
	}
	/* provider indexes are catalog positions: a new catalog redoes them */
	for (size_t i = 0; i < in->conns.cap; i++) {
		struct conn *cn = in->conns.slots[i].val;

		if (cn && !cn->ignore)
			cn->provider = -2; /* look again at the next message */
	}
}

/* The model name is printed in alerts: make sure it carries nothing the
 * classifier would flag (a client could put anything there). */
static const char *safe_model(struct lw_inspect *in, const char *model)
{
	if (!model[0])
		return "";
	if (lw_classify(in->ctx, model, strlen(model), &in->mfind) != 0)
		return "[redacted]";
	return model;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What identical alerts share: service, provider, action and each finding's
 * rule and fingerprint (or, without a key, its masked sample), in a fixed
 * order. */
static void dedupe_key(struct lw_inspect *in, const struct lw_alert *a)
{
	const struct lw_findings *f = a->findings;
	char **parts = lw_xcalloc(f->n + 1, sizeof(*parts));
	struct lw_buf p = {0};

	for (size_t i = 0; i < f->n; i++) {
		const struct lw_finding *x = &f->v[i];

		lw_buf_reset(&p);
		lw_buf_printf(&p, "%s=", x->rule);
		if (x->has_fp) {
			char hex[LW_FP_HEX_LEN];

			lw_fp_hex(x->fp, hex);
			lw_buf_puts(&p, hex);
		} else {
			lw_buf_puts(&p, x->sample);
		}
		parts[i] = lw_xstrdup(p.p);
	}
	qsort(parts, f->n, sizeof(*parts), cmp_str);
	lw_buf_reset(&in->key);
	lw_buf_printf(&in->key, "%s\x1f%s\x1f%s", a->service, a->provider, a->action);
	for (size_t i = 0; i < f->n; i++) {
		lw_buf_printf(&in->key, "\x1f%s", parts[i]);
		free(parts[i]);
	}
	free(parts);
	lw_buf_free(&p);
}

/* One alert to the sinks: the store decides whether it is new or merges
 * into an identical recent one (then it is not printed again). */
static void emit(struct lw_inspect *in, const struct lw_alert *a, uint64_t mono_ns)
{
	enum lw_alert_fate fate = LW_ALERT_EMIT;
	int64_t id = 0;

	lw_buf_reset(&in->out);
	lw_alert_json(&in->out, a);
	if (in->on_alert) {
		dedupe_key(in, a);
		fate = in->on_alert(in->out.p, in->out.len - 1 /* '\n' */, in->key.p,
				    (int64_t)mono_ns + in->mono_to_real_ns, &id, in->alert_ud);
	}
	if (fate == LW_ALERT_MERGED) {
		in->st.alerts_merged++;
		return;
	}
	if (fate == LW_ALERT_SUPPRESSED) {
		in->st.alerts_suppressed++;
		return;
	}
	/* the printed line leads with the store's id, so a reviewer can go
	 * from a log line to `leakwatch alerts show ID` */
	if (id > 0) {
		lw_buf_reset(&in->key);
		lw_buf_printf(&in->key, "{\"id\":%lld,", (long long)id);
		lw_buf_put(&in->key, in->out.p + 1, in->out.len - 1);
		lw_buf_reset(&in->out);
		lw_buf_put(&in->out, in->key.p, in->key.len);
	}
	fwrite(in->out.p, 1, in->out.len, in->f);
	if (in->file) {
		fwrite(in->out.p, 1, in->out.len, in->file);
		if (fflush(in->file) != 0)
			in->st.file_errors++;
	}
	if (in->on_printed)
		in->on_printed(in->out.p, in->out.len - 1, a->action,
			       (int64_t)mono_ns + in->mono_to_real_ns, in->printed_ud);
	in->st.alerts++;
}

/* The block rule/list entry of the kernel matcher named id, or NULL. */
static const struct lw_kmatch_entry *kentry_by_id(const struct lw_kmatch *km, const char *id)
{
	for (size_t i = 0; i < km->n; i++)
		if (!strcmp(km->e[i].id, id))
			return &km->e[i];
	return NULL;
}

/* Make sure the findings show the rule the kernel matched: the classifier's
 * fuller checks may not report it (the kernel form is looser at the edges,
 * see user/classify/kmatch.h), and the alert must still say what acted. */
static void add_kernel_finding(struct lw_inspect *in, uint32_t krule)
{
	const struct lw_kmatch *km = &in->cfg->km;
	const struct lw_kmatch_entry *e;
	struct lw_finding *f;

	if (krule >= LWM_MAX_RULES || km->kentry[krule] < 0)
		return;
	e = &km->e[km->kentry[krule]];
	for (size_t i = 0; i < in->findings.n; i++)
		if (!strcmp(in->findings.v[i].rule, e->id))
			return;
	if (in->findings.n == in->findings.cap) {
		in->findings.cap = in->findings.cap ? in->findings.cap * 2 : 4;
		in->findings.v =
			lw_xrealloc(in->findings.v, in->findings.cap * sizeof(*in->findings.v));
	}
	f = &in->findings.v[in->findings.n++];
	memset(f, 0, sizeof(*f));
	f->type = e->type;
	f->rule = e->id;
	f->count = 1;
	f->action = LW_ACT_BLOCK;
	f->is_list = e->is_list;
	f->severity = e->is_list ? in->cfg->rules.lists[e->index].severity
				 : in->cfg->rules.rules[e->index].severity;
	/* the kernel reports where, not what: there is nothing to mask */
	snprintf(f->sample, sizeof(f->sample), "[matched in the kernel]");
}

struct verdict {
	const char *action; /* alert | block | would_block */
	const char *stage;  /* kernel | agent | NULL */
	int request_left;   /* -1: not a block */
	uint32_t quarantine_s;
};

/* What happens to a request with these findings, from policy pol, on cn. */
static struct verdict decide(struct lw_inspect *in, struct conn *cn, const struct lw_policy *pol,
			     int provider)
{
	struct verdict v = {.action = "alert", .request_left = -1};
	bool enforce = pol->mode == LW_MODE_ENFORCE, block = false, would = false, kernel = false;

	for (size_t i = 0; i < in->findings.n; i++) {
		const struct lw_finding *f = &in->findings.v[i];
		const struct lw_kmatch_entry *e;

		if (f->action != LW_ACT_BLOCK)
			continue;
		if (enforce && !f->monitor)
			block = true;
		else
			would = true;
		e = kentry_by_id(&in->cfg->km, f->rule);
		if (e && e->kidx >= 0)
			kernel = true;
	}
	if (cn->kv_pending) {
		/* this request's write was refused before it was encrypted */
		cn->kv_pending = false;
		in->st.kernel_blocks++;
		return (struct verdict){"block", "kernel", 0, 0};
	}
	if (cn->poisoned && cn->cur_blocked)
		return (struct verdict){"block", cn->poisoned, 0, 0};
	if (block) {
		v.action = "block";
		v.stage = "agent";
		v.request_left = 1; /* decided after the write */
		if (!cn->poisoned && in->on_block) {
			in->on_block(&cn->ci, cn->cgroup_id, pol, provider, in->ud);
			cn->poisoned = "agent";
			in->st.agent_blocks++;
		}
		v.quarantine_s = pol->quarantine_s;
		return v;
	}
	if (would) {
		v.action = "would_block";
		v.stage = kernel ? "kernel" : "agent";
		v.request_left = 1;
	}
	return v;
}

static void on_request(const struct lw_decoded_req *r, void *ud)
{
	struct conn *cn = ud;
	struct lw_inspect *in = cn->in;
	const struct lw_proc *p = &cn->proc;
	const struct lw_policy *pol;
	int provider = cn->provider;
	const char *host = cn->ci.sni;
	char ts[48], dst[64];
	struct lw_alert a = {0};
	const char *model;
	struct verdict vd;
	int n;

	if (provider < 0 && r->http->authority[0]) {
		char h[256];

		/* Host may carry a port */
		snprintf(h, sizeof(h), "%.*s", (int)strcspn(r->http->authority, ":"),
			 r->http->authority);
		provider = lw_catalog_match_host(&in->set->cat, h);
		if (!host[0])
			host = r->http->authority;
	}
	if (provider < 0) {
		in->st.other_requests++;
		return;
	}
	n = lw_classify(in->ctx, r->prompt->text.p ? r->prompt->text.p : "", r->prompt->text.len,
			&in->findings);
	in->st.classified++;
	in->st.classified_bytes += r->prompt->text.len;
	if (n < 0) {
		in->st.classify_errors++;
		return;
	}
	if (cn->kv_pending && cn->kv_gen == in->cfg->km.table->gen)
		add_kernel_finding(in, cn->kv_rule);
	pol = lw_policy_select(in->set, p->cgroup[0] ? p->cgroup : NULL, p->exe[0] ? p->exe : NULL,
			       p->uid);
	model = safe_model(in, r->prompt->model); /* for the inventory and the alert */
	if (in->inv) {
		const char *svc = pol->id ? pol->name : p->service;

		lw_inventory_request(in->inv, svc, in->set->cat.providers[provider].id, model,
				     r->http->method, r->http->path, r->http->body_total,
				     in->findings.n, (int64_t)cn->ts_ns + in->mono_to_real_ns);
		cn->inv = true;
		snprintf(cn->inv_service, sizeof(cn->inv_service), "%s", svc);
		snprintf(cn->inv_model, sizeof(cn->inv_model), "%s", model);
		snprintf(cn->inv_method, sizeof(cn->inv_method), "%s", r->http->method);
		snprintf(cn->inv_path, sizeof(cn->inv_path), "%.*s",
			 (int)strcspn(r->http->path, "?#"), r->http->path);
		cn->provider_inv = provider;
	}
	/* a kernel verdict is reported even when the classifier finds nothing
	 * (and, when the table was replaced since, without its finding) */
	if (in->findings.n == 0 && !cn->kv_pending)
		return;

	vd = decide(in, cn, pol, provider);
	lw_iso_time((int64_t)cn->ts_ns + in->mono_to_real_ns, ts, sizeof(ts));
	lw_addr_str(&cn->ci.dst, dst, sizeof(dst));
	a.ts = ts;
	a.hostname = in->hostname;
	a.service = pol->id ? pol->name : p->service;
	a.policy = pol->name;
	a.pid = cn->pid;
	a.comm = cn->comm;
	a.exe = p->exe;
	a.cgroup = p->cgroup;
	a.provider = in->set->cat.providers[provider].id;
	a.host = host;
	a.dst = dst;
	a.method = r->http->method;
	a.path = r->http->path;
	a.http_version = r->http->version;
	a.api = lw_api_name(r->prompt->api);
	a.model = model;
	a.reason = "classified_data";
	a.action = vd.action;
	a.stage = vd.stage;
	a.request_left = vd.request_left;
	a.quarantine_s = vd.quarantine_s;
	a.incomplete = r->incomplete;
	a.findings = &in->findings;
	a.prompt = r->prompt;
	emit(in, &a, cn->ts_ns);
}

/* A kernel verdict whose request never showed up (its bytes were lost, or
 * the connection was not decoded): report what the kernel knows. */
static void verdict_alone(struct lw_inspect *in, struct conn *cn)
{
	const struct lw_policy *pol = cn->kv_policy < in->set->n ? &in->set->policies[cn->kv_policy]
								 : &in->set->policies[0];
	char ts[48], dst[64];
	struct lw_alert a = {0};

	cn->kv_pending = false;
	in->st.kernel_blocks++;
	in->st.kernel_alone++;
	in->findings.n = 0;
	in->findings.dropped = 0;
	if (cn->kv_gen == in->cfg->km.table->gen)
		add_kernel_finding(in, cn->kv_rule);
	lw_iso_time((int64_t)cn->kv_ns + in->mono_to_real_ns, ts, sizeof(ts));
	lw_addr_str(&cn->ci.dst, dst, sizeof(dst));
	a.ts = ts;
	a.hostname = in->hostname;
	a.service = pol->id ? pol->name : cn->proc.service;
	a.policy = pol->name;
	a.pid = cn->pid;
	a.comm = cn->comm;
	a.exe = cn->proc.exe;
	a.cgroup = cn->proc.cgroup;
	a.provider = cn->provider >= 0 && (size_t)cn->provider < in->set->cat.n
			     ? in->set->cat.providers[cn->provider].id
			     : "";
	a.host = cn->ci.sni;
	a.dst = dst;
	a.method = "";
	a.path = "";
	a.api = "";
	a.model = "";
	a.reason = "classified_data";
	a.action = "block";
	a.stage = "kernel";
	a.request_left = 0;
	a.incomplete = true;
	a.findings = &in->findings;
	emit(in, &a, cn->kv_ns);
}

static struct conn *conn_get(struct lw_inspect *in, uint64_t conn_id)
{
	struct conn *cn = lw_hmap_get(&in->conns, conn_id);

	if (cn)
		return cn;
	if (in->conns.len >= MAX_CONNS) {
		in->st.conns_over_limit++;
		return NULL;
	}
	cn = lw_xcalloc(1, sizeof(*cn));
	cn->in = in;
	cn->provider = -2;
	lw_hmap_put(&in->conns, conn_id, cn);
	return cn;
}

void lw_inspect_verdict(struct lw_inspect *in, const struct lw_verdict_rec *v)
{
	struct conn *cn = conn_get(in, v->conn_id);

	if (!cn)
		return;
	if (v->rule == LW_VERDICT_CANCEL) {
		if (cn->kv_pending && !strcmp(cn->poisoned ? cn->poisoned : "", "kernel")) {
			cn->kv_pending = false;
			cn->poisoned = NULL;
		}
		return;
	}
	if (cn->kv_pending)
		verdict_alone(in, cn);
	cn->kv_pending = true;
	cn->kv_rule = v->rule;
	cn->kv_gen = v->gen;
	cn->kv_policy = v->policy;
	cn->kv_ns = v->h.ts_ns;
	cn->last_ns = v->h.ts_ns;
	cn->poisoned = "kernel";
	if (!cn->pid) {
		cn->pid = v->h.pid;
		cn->cgroup_id = v->cgroup_id;
		snprintf(cn->comm, sizeof(cn->comm), "%.*s", LW_COMM_LEN, v->comm);
	}
}

static void conn_free(struct conn *cn)
{
	if (!cn)
		return;
	if (cn->dec) {
		lw_request_decoder_finish(cn->dec);
		lw_request_decoder_free(cn->dec);
	}
	free(cn);
}

void lw_inspect_message(struct lw_inspect *in, const struct lw_msg_view *v)
{
	const struct lw_msg *m = v->m;
	struct conn *cn;
	bool lost;

	if (m->dir != LW_DIR_EGRESS) {
		/* responses: their bytes count for the connection's last request */
		cn = lw_hmap_get(&in->conns, m->conn_id);
		if (cn && cn->inv && in->inv)
			lw_inventory_bytes_in(in->inv, cn->inv_service,
					      in->set->cat.providers[cn->provider_inv].id,
					      cn->inv_model, cn->inv_method, cn->inv_path,
					      m->total_len,
					      (int64_t)m->ts_ns + in->mono_to_real_ns);
		return;
	}
	cn = conn_get(in, m->conn_id);
	if (!cn)
		return;
	cn->last_ns = m->ts_ns;
	cn->cgroup_id = m->cgroup_id;
	cn->cur_blocked = m->blocked;
	cn->ts_ns = m->ts_ns;
	if (cn->pid != m->pid || !cn->proc.pid)
		cn->proc = *v->proc;
	cn->ci = *v->conn;
	cn->pid = m->pid;
	snprintf(cn->comm, sizeof(cn->comm), "%.*s", LW_COMM_LEN, m->comm);
	if (cn->provider == -2) {
		cn->provider =
			v->conn->sni[0] ? lw_catalog_match_host(&in->set->cat, v->conn->sni) : -1;
		cn->ignore = v->conn->sni[0] && cn->provider < 0;
	}
	if (cn->ignore)
		return;
	if (!cn->dec) {
		cn->dec = lw_request_decoder_new(&in->lim, &in->st.decode, on_request, cn);
		in->st.provider_conns++;
	}
	/* a message missing in between (never completed) breaks the stream too */
	lost = m->truncated || m->lost || (cn->have_seq && m->seq != cn->seq);
	cn->seq = m->seq + 1;
	cn->have_seq = true;
	lw_request_decoder_feed(cn->dec, m->data, m->captured, lost);
}

void lw_inspect_tick(struct lw_inspect *in, uint64_t now_ns)
{
	uint64_t *old = lw_xmalloc((in->conns.len + 1) * sizeof(*old));
	size_t n = 0;

	for (size_t i = 0; i < in->conns.cap; i++) {
		struct conn *cn = in->conns.slots[i].val;

		if (cn && cn->kv_pending && now_ns > cn->kv_ns &&
		    now_ns - cn->kv_ns >= VERDICT_WAIT_NS)
			verdict_alone(in, cn);
		if (cn && now_ns > cn->last_ns && now_ns - cn->last_ns >= IDLE_NS)
			old[n++] = in->conns.slots[i].key;
	}
	for (size_t i = 0; i < n; i++)
		conn_free(lw_hmap_del(&in->conns, old[i]));
	free(old);
}

const struct lw_inspect_stats *lw_inspect_stats(const struct lw_inspect *in)
{
	return &in->st;
}

void lw_inspect_stats_json(const struct lw_inspect *in, struct lw_buf *b)
{
	const struct lw_inspect_stats *s = &in->st;
	const struct lw_decode_stats *d = &s->decode;
	const struct {
		const char *name;
		uint64_t v;
	} f[] = {
		{"provider_conns", s->provider_conns},
		{"requests_decoded", d->requests},
		{"requests_classified", s->classified},
		{"classified_bytes", s->classified_bytes},
		{"alerts", s->alerts},
		{"other_requests", s->other_requests},
		{"not_http", d->not_http},
		{"http_parse_errors", d->http.parse_errors},
		{"hpack_errors", d->http.hpack_errors},
		{"streams_refused", d->http.streams_refused},
		{"bodies_truncated", d->http.bodies_truncated},
		{"streams_desynced", d->desynced},
		{"bytes_skipped", d->http.bytes_skipped},
		{"inflate_limited", d->inflate_limit},
		{"inflate_corrupt", d->inflate_corrupt},
		{"inflate_unsupported", d->inflate_unsupported},
		{"json_errors", d->json_errors},
		{"text_limited", d->text_limited},
		{"conns_over_limit", s->conns_over_limit},
		{"classify_errors", s->classify_errors},
		{"kernel_blocks", s->kernel_blocks},
		{"agent_blocks", s->agent_blocks},
		{"kernel_verdicts_alone", s->kernel_alone},
		{"alerts_merged", s->alerts_merged},
		{"alerts_suppressed", s->alerts_suppressed},
		{"alerts_file_errors", s->file_errors},
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		lw_buf_printf(b, ",\"%s\":%llu", f[i].name, (unsigned long long)f[i].v);
}

void lw_inspect_free(struct lw_inspect *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->conns.cap; i++) {
		struct conn *cn = in->conns.slots[i].val;

		if (cn && cn->kv_pending) /* nothing is lost at exit either */
			verdict_alone(in, cn);
		conn_free(cn);
	}
	lw_hmap_free(&in->conns);
	lw_classify_ctx_free(in->ctx);
	lw_findings_free(&in->findings);
	lw_findings_free(&in->mfind);
	lw_buf_free(&in->out);
	lw_buf_free(&in->key);
	free(in);
}
