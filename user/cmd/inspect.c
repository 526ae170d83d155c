#include <stdlib.h>
#include <string.h>

#include "act/alert.h"
#include "cmd/inspect.h"
#include "util/clock.h"
#include "util/hmap.h"
#include "util/json.h"
#include "util/log.h"

#define IDLE_NS (30ULL * 1000 * 1000 * 1000)
#define MAX_CONNS 8192

/* What is known of one connection; decoder is NULL when it is not decoded. */
struct conn {
	struct lw_request_decoder *dec;
	int provider;   /* catalog index from SNI, -1 */
	bool ignore;    /* SNI names no provider */
	uint64_t last_ns;
	uint32_t seq;   /* next expected message seq: a gap means lost bytes */
	bool have_seq;
	/* identity as of the last message, copied: requests finished at idle
	 * time or exit are reported after the process may be gone */
	struct lw_proc proc;
	struct lw_conn_info ci;
	uint32_t pid;
	uint64_t ts_ns;
	char comm[LW_COMM_LEN + 1];
	struct lw_inspect *in;
};

struct lw_inspect {
	const struct lw_policy_set *set;
	struct lw_classifier *cls;
	struct lw_classify_ctx *ctx;
	struct lw_decode_limits lim;
	struct lw_inspect_stats st;
	struct lw_hmap conns;
	struct lw_findings findings, mfind;
	struct lw_buf out;
	FILE *f;
	int64_t mono_to_real_ns;
};

struct lw_inspect *lw_inspect_new(const struct lw_policy_set *set, struct lw_classifier *c,
				  FILE *out, int64_t mono_to_real_ns)
{
	struct lw_inspect *in = lw_xcalloc(1, sizeof(*in));

	lw_decode_limits_default(&in->lim);
	in->f = out;
	in->mono_to_real_ns = mono_to_real_ns;
	lw_inspect_set_policy(in, set, c);
	return in;
}

void lw_inspect_set_policy(struct lw_inspect *in, const struct lw_policy_set *set,
			   struct lw_classifier *c)
{
	in->set = set;
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

static void on_request(const struct lw_decoded_req *r, void *ud)
{
	struct conn *cn = ud;
	struct lw_inspect *in = cn->in;
	const struct lw_proc *p = &cn->proc;
	const struct lw_policy *pol;
	int provider = cn->provider;
	const char *host = cn->ci.sni;
	char ts[48], dst[64];
	struct lw_alert a = { 0 };
	enum lw_action act;
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
	if (n == 0)
		return;

	pol = lw_policy_select(in->set, p->cgroup[0] ? p->cgroup : NULL, p->exe[0] ? p->exe : NULL,
			       p->uid);
	lw_iso_time((int64_t)cn->ts_ns + in->mono_to_real_ns, ts, sizeof(ts));
	lw_addr_str(&cn->ci.dst, dst, sizeof(dst));
	act = lw_findings_action(&in->findings);
	a.ts = ts;
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
	a.model = safe_model(in, r->prompt->model);
	a.reason = "classified_data";
	/* content is not blocked yet: a block rule is reported as would_block */
	a.action = act == LW_ACT_BLOCK ? "would_block" : "alert";
	a.incomplete = r->incomplete;
	a.findings = &in->findings;
	a.prompt = r->prompt;
	lw_buf_reset(&in->out);
	lw_alert_json(&in->out, &a);
	fwrite(in->out.p, 1, in->out.len, in->f);
	in->st.alerts++;
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

	if (m->dir != LW_DIR_EGRESS)
		return;
	cn = lw_hmap_get(&in->conns, m->conn_id);
	if (!cn) {
		if (in->conns.len >= MAX_CONNS) {
			in->st.conns_over_limit++;
			return;
		}
		cn = lw_xcalloc(1, sizeof(*cn));
		cn->in = in;
		cn->provider = -2;
		lw_hmap_put(&in->conns, m->conn_id, cn);
	}
	cn->last_ns = m->ts_ns;
	cn->ts_ns = m->ts_ns;
	if (cn->pid != m->pid || !cn->proc.pid)
		cn->proc = *v->proc;
	cn->ci = *v->conn;
	cn->pid = m->pid;
	snprintf(cn->comm, sizeof(cn->comm), "%.*s", LW_COMM_LEN, m->comm);
	if (cn->provider == -2) {
		cn->provider = v->conn->sni[0] ? lw_catalog_match_host(&in->set->cat, v->conn->sni)
					       : -1;
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
		{ "provider_conns", s->provider_conns },
		{ "requests_decoded", d->requests },
		{ "requests_classified", s->classified },
		{ "classified_bytes", s->classified_bytes },
		{ "alerts", s->alerts },
		{ "other_requests", s->other_requests },
		{ "not_http", d->not_http },
		{ "http_parse_errors", d->http.parse_errors },
		{ "hpack_errors", d->http.hpack_errors },
		{ "streams_refused", d->http.streams_refused },
		{ "bodies_truncated", d->http.bodies_truncated },
		{ "streams_desynced", d->desynced },
		{ "bytes_skipped", d->http.bytes_skipped },
		{ "inflate_limited", d->inflate_limit },
		{ "inflate_corrupt", d->inflate_corrupt },
		{ "inflate_unsupported", d->inflate_unsupported },
		{ "json_errors", d->json_errors },
		{ "text_limited", d->text_limited },
		{ "conns_over_limit", s->conns_over_limit },
		{ "classify_errors", s->classify_errors },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		lw_buf_printf(b, ",\"%s\":%llu", f[i].name, (unsigned long long)f[i].v);
}

void lw_inspect_free(struct lw_inspect *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->conns.cap; i++)
		conn_free(in->conns.slots[i].val);
	lw_hmap_free(&in->conns);
	lw_classify_ctx_free(in->ctx);
	lw_findings_free(&in->findings);
	lw_findings_free(&in->mfind);
	lw_buf_free(&in->out);
	free(in);
}
