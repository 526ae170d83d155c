/* leakwatch run: the agent. Captures and accounts for every TLS message and
 * enforces each service's allowed AI providers with the kernel gates. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "act/alert.h"
#include "act/fpkey.h"
#include "act/inventory.h"
#include "act/metrics_http.h"
#include "act/store.h"
#include "act/syslog.h"
#include "act/webhook.h"

#include <sqlite3.h>
#include "cmd/agent_loop.h"
#include "cmd/agent_metrics.h"
#include "cmd/agentconf.h"
#include "cmd/cmds.h"
#include "cmd/config.h"
#include "cmd/inspect.h"
#include "cmd/selfcheck.h"
#include "gates/apply.h"
#include "gates/gates.h"
#include "gates/sockkill.h"
#include "identity/proc.h"
#include "policy/policy.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/hmap.h"
#include "util/json.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/private.h"

#define CGROUP_RESCAN_NS (2ULL * 1000 * 1000 * 1000)
#define SWEEP_NS (1ULL * 1000 * 1000 * 1000)
#define INV_FLUSH_NS (2ULL * 1000 * 1000 * 1000)
#define SELFCHECK_NS (1ULL * 1000 * 1000 * 1000)

struct run {
	const char *policy_dir;
	const char *state_dir;
	uint8_t fpkey[LW_FPKEY_LEN];
	struct lw_config *cfg;	   /* in force */
	struct lw_policy_set *set; /* &cfg->set */
	struct lw_inspect *inspect;
	struct lw_gates *gates;
	struct lw_capture *cap;
	struct lw_procs procs;	/* identity of gate events */
	struct lw_hmap covered; /* pids whose TLS coverage was logged */
	int64_t mono_to_real_ns;
	uint64_t next_rescan, next_sweep;
	uint64_t messages, bytes, reloads, reload_errors;
	/* alerts: the store, noise control, the inventory */
	const char *db_path;
	const char *alerts_path; /* JSON-lines file sink, or NULL */
	FILE *alerts_file;
	const char *syslog_target;
	struct lw_syslog *syslog;
	const char *webhook_url;
	struct lw_webhook *webhook;
	/* after close (at stop): its last counters; later alerts are dropped */
	bool wh_closed;
	struct lw_webhook_stats wh_final;
	struct lw_store *store;
	uint32_t dedupe_window_s, rate_per_min;
	struct lw_hmap buckets; /* service hash -> struct bucket */
	struct lw_inventory *inv;
	uint64_t next_inv_flush;
	uint64_t store_errors, inv_errors;
	struct lw_buf out;
	/* metrics and self-check (docs/running.md) */
	struct lw_agent_tally tally;
	struct lw_mserver *srv;
	struct lw_selfcheck *sc;
	struct lw_messages *ms;
	struct lw_loop_health health;
	uint64_t start_ns, next_check;
};

static struct lw_config *load_policy(struct run *r)
{
	struct lw_diag d = {0};
	struct lw_config *c = lw_config_load(r->policy_dir, &d);

	for (size_t i = 0; i < d.n; i++)
		lw_err("%s", d.msgs[i]);
	lw_diag_free(&d);
	/* fingerprints: the same value gives the same one across reloads */
	if (c)
		lw_classifier_set_key(c->cls, r->fpkey, sizeof(r->fpkey));
	return c;
}

/* What is known of a process's TLS coverage (`covered`, by pid): logged, or
 * waiting for a message, because the process exited before it could be
 * examined (a fast client: its gate event is read after it is gone). */
struct coverage {
	bool logged;
	uint64_t since_ns;
	char comm[LW_COMM_LEN + 1], service[128], provider[40];
};

#define COVERAGE_WAIT_NS (3ULL * 1000 * 1000 * 1000)

static void coverage_log(struct coverage *cv, pid_t pid, bool ok, const char *what)
{
	cv->logged = true;
	if (ok)
		lw_info("pid %d (%s, service %s) -> %s: read through %s", (int)pid, cv->comm,
			cv->service, cv->provider, what);
	else
		lw_warn("pid %d (%s, service %s) -> %s: TLS cannot be read: %s; the provider "
			"gates still apply, the inventory counts it as opaque",
			(int)pid, cv->comm, cv->service, cv->provider, what);
}

static void on_message(const struct lw_msg_view *v, void *ud)
{
	struct run *r = ud;
	struct coverage *cv;

	/* the gate event of its connection (the ClientHello) came first: read
	 * it first (an empty ring costs two loads) */
	lw_gates_consume(r->gates);
	cv = lw_hmap_get(&r->covered, v->m->pid);
	r->messages++;
	r->bytes += v->m->captured;
	if (cv && !cv->logged) {
		char what[LW_PATH_LEN + 32];

		if (v->m->func == LW_FN_SOCK_SEND)
			snprintf(what, sizeof(what), "the socket (plaintext HTTP, no TLS)");
		else
			snprintf(what, sizeof(what), "%s (%s)", lw_func_stack(v->m->func), v->lib);
		coverage_log(cv, (pid_t)v->m->pid, true, what);
	}
	lw_inspect_message(r->inspect, v);
}

static void coverage_forget(struct run *r)
{
	for (size_t i = 0; i < r->covered.cap; i++)
		free(r->covered.slots[i].val);
	lw_hmap_free(&r->covered);
}

/* Once per process that reaches a provider: which TLS stack the agent reads
 * for it, or why it cannot; such a process is governed by the gates alone
 * and its usage is counted in the inventory as opaque. */
static void log_coverage(struct run *r, pid_t pid, const char *comm, const char *exe,
			 const char *service, const char *provider)
{
	struct coverage *cv;
	char what[768];
	int ok;

	if (!r->cap || lw_hmap_get(&r->covered, (uint64_t)pid))
		return;
	if (r->covered.len >= 65536)
		coverage_forget(r); /* bounded: a pid may be logged twice */
	cv = lw_xcalloc(1, sizeof(*cv));
	snprintf(cv->comm, sizeof(cv->comm), "%s", comm);
	snprintf(cv->service, sizeof(cv->service), "%s", service);
	snprintf(cv->provider, sizeof(cv->provider), "%s", provider);
	cv->since_ns = lw_now_ns();
	lw_hmap_put(&r->covered, (uint64_t)pid, cv);
	ok = lw_capture_coverage(r->cap, pid, exe, what, sizeof(what));
	if (ok >= 0)
		coverage_log(cv, pid, ok > 0, what);
	/* else gone: its captured messages, if any, tell (on_message) */
}

/* Processes that exited before they were examined and sent nothing the
 * agent captured. */
static void coverage_tick(struct run *r, uint64_t now)
{
	for (size_t i = 0; i < r->covered.cap; i++) {
		struct coverage *cv = r->covered.slots[i].val;

		if (cv && !cv->logged && now - cv->since_ns > COVERAGE_WAIT_NS)
			coverage_log(cv, (pid_t)r->covered.slots[i].key, false,
				     "it exited before it could be examined, and no TLS message "
				     "of it was captured");
	}
}

static const char *const decisions[] = {"allowed", "denied", "would_deny"};
static const char *const gate_names[] = {"sni", "connect", "quic", "ech", "quarantine", "http"};
#define NGATES (sizeof(gate_names) / sizeof(gate_names[0]))

/* One JSON line per provider connection decision, on stdout. */
static void on_gate_event(const struct lwg_event *e, void *ud)
{
	struct run *r = ud;
	const struct lw_proc *p = lw_procs_get(&r->procs, (pid_t)e->pid);
	const struct lw_policy *pol = e->policy < r->set->n ? &r->set->policies[e->policy] : NULL;
	struct lw_addr a = {.family = e->family, .port = e->dport};
	char ts[48], dst[64], comm[LW_COMM_LEN + 1], host[LWG_NAME_LEN + 1];
	struct lw_json j;

	memcpy(a.addr, e->daddr, sizeof(a.addr));
	lw_addr_str(&a, dst, sizeof(dst));
	snprintf(host, sizeof(host), "%.*s", LWG_NAME_LEN, e->host);
	snprintf(comm, sizeof(comm), "%.*s", LW_COMM_LEN, e->comm);
	lw_iso_time((int64_t)e->ts_ns + r->mono_to_real_ns, ts, sizeof(ts));

	lw_buf_reset(&r->out);
	lw_json_begin(&j, &r->out);
	lw_json_str(&j, "event", "provider_connection");
	lw_json_str(&j, "ts", ts);
	lw_json_str(&j, "service", pol && pol->id ? pol->name : p->service);
	lw_json_str(&j, "policy", pol ? pol->name : "");
	lw_json_u64(&j, "pid", e->pid);
	lw_json_str(&j, "comm", comm);
	lw_json_str(&j, "exe", p->exe);
	lw_json_str(&j, "cgroup", p->cgroup);
	lw_json_str(&j, "provider",
		    e->provider < r->set->cat.n ? r->set->cat.providers[e->provider].id : "");
	lw_json_str(&j, "host", host);
	lw_json_str(&j, "dst", dst);
	lw_json_str(&j, "decision", e->decision < 3 ? decisions[e->decision] : "");
	lw_json_str(&j, "gate", e->gate < NGATES ? gate_names[e->gate] : "");
	lw_agent_tally_gate(&r->tally, e->gate < NGATES ? gate_names[e->gate] : "",
			    e->decision < 3 ? decisions[e->decision] : "");
	lw_json_bool(&j, "alert", e->decision != LWG_ALLOWED);
	lw_json_end(&j);
	/* a refused (or, in monitor mode, would-be refused) provider is an
	 * alert too: stored, deduplicated and sent like the content ones */
	if (r->inspect && e->decision != LWG_ALLOWED && e->provider < r->set->cat.n) {
		struct lw_alert al = {0};

		al.ts = ts;
		al.service = pol && pol->id ? pol->name : p->service;
		al.policy = pol ? pol->name : "";
		al.pid = e->pid;
		al.comm = comm;
		al.exe = p->exe;
		al.cgroup = p->cgroup;
		al.provider = r->set->cat.providers[e->provider].id;
		al.host = host;
		al.dst = dst;
		al.method = al.path = al.api = al.model = "";
		al.reason = e->gate == LWG_GATE_QUARANTINE ? "quarantined"
			    : e->gate == LWG_GATE_ECH	   ? "ech_refused"
			    : e->gate == LWG_GATE_QUIC	   ? "quic_refused"
							   : "provider_not_allowed";
		al.action = e->decision == LWG_DENIED ? "block" : "would_block";
		al.stage = "gate";
		al.request_left = 0;
		lw_inspect_alert(r->inspect, &al, e->ts_ns);
	}
	if (e->provider < r->set->cat.n)
		log_coverage(r, (pid_t)e->pid, comm, p->exe, pol && pol->id ? pol->name : p->service,
			     r->set->cat.providers[e->provider].id);
	/* every provider connection is usage, also when its TLS cannot be
	 * read, and also when the gates refused it */
	if (r->inv && e->provider < r->set->cat.n)
		lw_inventory_connection(r->inv, pol && pol->id ? pol->name : p->service,
					r->set->cat.providers[e->provider].id,
					(int64_t)e->ts_ns + r->mono_to_real_ns,
					e->decision == LWG_DENIED);
	lw_buf_putc(&r->out, '\n');
	fwrite(r->out.p, 1, r->out.len, stdout);
	/* The refused ClientHello write failed with EACCES, but some stacks
	 * (node) ignore a failed handshake write and wait for a timeout: abort
	 * the connection so every client fails at once. */
	if (e->decision == LWG_DENIED && e->sport) {
		int rc = lw_sock_destroy((pid_t)e->pid, e->family, e->saddr, e->sport, e->daddr,
					 e->dport);

		if (rc && rc != -ENOENT && rc != -ESRCH)
			lw_debug("cannot abort the refused connection of pid %u: %s", e->pid,
				 strerror(-rc));
	}
}

static void report_line(const char *line, void *ud)
{
	(void)ud;
	lw_info("kernel matcher: %s", line);
}

/* The block rules the kernel decides, with each policy's masks, in force
 * for every later write (one map swap). */
static void install_kmatch(struct run *r)
{
	int err;

	if (!r->cap)
		return;
	err = lw_capture_kmatch_install(r->cap, r->cfg->km.table);
	if (err)
		lw_err("cannot install the in-kernel matcher: %s: block rules are decided by "
		       "the agent only, after the write",
		       strerror(-err));
	lw_kmatch_report(&r->cfg->km, report_line, NULL);
}

static void on_capture(struct lw_capture *c, void *ud)
{
	struct run *r = ud;

	r->cap = c;
	install_kmatch(r);
	r->sc = lw_selfcheck_new(c, r->gates, &r->health);
}

static void on_messages(struct lw_messages *ms, void *ud)
{
	struct run *r = ud;

	r->ms = ms;
}

static void on_wake(uint64_t now_ns, void *ud)
{
	struct run *r = ud;

	if (r->sc)
		lw_selfcheck_wake(r->sc);
}

static int poll_fds(struct pollfd *pf, int max, void *ud)
{
	struct run *r = ud;

	return r->srv ? lw_mserver_pollfds(r->srv, pf, max) : 0;
}

static void on_poll(const struct pollfd *pf, int n, uint64_t now_ns, void *ud)
{
	struct run *r = ud;

	lw_mserver_handle(r->srv, pf, n, now_ns);
}

/* After close (at stop) the webhook's last counters stand. */
static void webhook_stats(const struct run *r, struct lw_webhook_stats *ws)
{
	if (r->wh_closed)
		*ws = r->wh_final;
	else
		lw_webhook_stats(r->webhook, ws);
}

/* One snapshot of every number, for a request to the metrics endpoint. */
static void render_metrics(struct lw_metrics *m, void *ud)
{
	struct run *r = ud;
	struct lw_agent_view v = {
		.cap = r->cap,
		.ms = r->ms,
		.gates = r->gates,
		.inspect = r->inspect,
		.sc = r->sc,
		.srv = r->srv,
		.tally = &r->tally,
		.syslog = r->syslog,
		.store_errors = r->store_errors,
		.inventory_errors = r->inv_errors,
		.reloads = r->reloads,
		.reload_errors = r->reload_errors,
		.start_mono_ns = r->start_ns,
		.now_mono_ns = lw_now_ns(),
		.mono_to_real_ns = r->mono_to_real_ns,
	};

	webhook_stats(r, &v.webhook);
	lw_agent_metrics(m, &v);
}

static void on_verdict(const struct lw_verdict_rec *v, void *ud)
{
	struct run *r = ud;

	lw_inspect_verdict(r->inspect, v);
}

/* The agent's classifier refused a request the kernel could not decide. */
static void on_block(const struct lw_conn_info *ci, uint64_t cgroup_id, const struct lw_policy *pol,
		     int provider, void *ud)
{
	struct run *r = ud;
	int err = lw_gates_poison(r->gates, &ci->src, &ci->dst, (uint32_t)pol->id);

	if (err)
		lw_warn("cannot poison connection %llu of pid %d: %s",
			(unsigned long long)ci->conn_id, (int)ci->pid,
			strerror(err < 0 ? -err : err));
	if (pol->quarantine_s && cgroup_id) {
		uint64_t until = lw_now_ns() + (uint64_t)pol->quarantine_s * 1000000000ULL;

		err = lw_gates_quarantine(r->gates, cgroup_id, (uint32_t)provider, until);
		if (err)
			lw_warn("cannot quarantine service %s: %s", pol->name,
				strerror(err < 0 ? -err : err));
	}
}

/* A token bucket per service: rate_per_min alerts a minute, as a burst too. */
struct bucket {
	double tokens;
	uint64_t last_ns;
	uint64_t suppressed; /* since the last report */
};

static uint64_t str_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool rate_ok(struct run *r, const char *key)
{
	size_t n = strcspn(key, "\x1f"); /* the service comes first */
	uint64_t h = str_hash(key, n), now = lw_now_ns();
	struct bucket *b = lw_hmap_get(&r->buckets, h);

	if (!r->rate_per_min)
		return true;
	if (!b) {
		b = lw_xcalloc(1, sizeof(*b));
		b->tokens = r->rate_per_min;
		b->last_ns = now;
		lw_hmap_put(&r->buckets, h, b);
	}
	b->tokens += (double)(now - b->last_ns) * r->rate_per_min / 60e9;
	if (b->tokens > r->rate_per_min)
		b->tokens = r->rate_per_min;
	b->last_ns = now;
	if (b->tokens < 1) {
		if (b->suppressed++ == 0)
			lw_warn("service %.*s: over %u alerts a minute, further alerts are counted "
				"(alerts_suppressed), not stored or printed",
				(int)n, key, r->rate_per_min);
		return false;
	}
	b->tokens -= 1;
	b->suppressed = 0;
	return true;
}

static enum lw_alert_fate on_alert(const char *json, size_t n, const char *key, int64_t ts_ns,
				   int64_t *id, void *ud)
{
	struct run *r = ud;
	bool merged = false;

	lw_agent_tally_alert(&r->tally, json, n);
	if (!rate_ok(r, key))
		return LW_ALERT_SUPPRESSED;
	if (!r->store)
		return LW_ALERT_EMIT;
	if (lw_store_add(r->store, json, n, key, ts_ns, r->dedupe_window_s, id, &merged) != 0) {
		/* printed all the same: a store problem must not lose the alert */
		if (r->store_errors++ == 0)
			lw_err("alert store: %s", lw_store_errmsg(r->store));
		return LW_ALERT_EMIT;
	}
	return merged ? LW_ALERT_MERGED : LW_ALERT_EMIT;
}

static void on_printed(const char *line, size_t n, const char *action, int64_t ts_ns, void *ud)
{
	struct run *r = ud;

	if (r->syslog)
		lw_syslog_send(r->syslog, line, n, action, ts_ns);
	if (r->webhook)
		lw_webhook_post(r->webhook, line, n);
	else if (r->wh_closed)
		r->wh_final.dropped++;
}

/* Before the last stats line: what the sinks still hold goes out (the
 * webhook gets 2 s), so the counters say what became of every alert. */
static void on_stop(void *ud)
{
	struct run *r = ud;

	/* the loop has closed the capture stage: nothing may look at it now */
	lw_selfcheck_free(r->sc);
	r->sc = NULL;
	r->cap = NULL;
	r->ms = NULL;
	if (!r->webhook)
		return;
	lw_webhook_close(r->webhook, 2000, &r->wh_final);
	r->webhook = NULL;
	r->wh_closed = true;
}

static bool inv_row(const struct lw_inv_row *d, void *ud)
{
	struct run *r = ud;

	if (lw_store_inventory_add(r->store, d) == 0)
		return true;
	if (r->inv_errors++ == 0)
		lw_err("inventory: %s", sqlite3_errmsg(lw_store_sqlite(r->store)));
	return false; /* kept for the next flush */
}

static void flush_inventory(struct run *r)
{
	if (r->store && r->inv)
		lw_inventory_drain(r->inv, inv_row, r);
}

static void on_tick(uint64_t now, void *ud)
{
	struct run *r = ud;

	lw_gates_consume(r->gates);
	if (now >= r->next_sweep) {
		r->next_sweep = now + SWEEP_NS;
		lw_gates_sweep(r->gates);
		lw_procs_gc(&r->procs, now, 10ULL * 1000 * 1000 * 1000);
		lw_inspect_tick(r->inspect, now);
		coverage_tick(r, now);
	}
	if (now >= r->next_rescan) {
		r->next_rescan = now + CGROUP_RESCAN_NS;
		lw_gates_apply_cgroups(r->gates, r->set);
	}
	if (now >= r->next_inv_flush) {
		r->next_inv_flush = now + INV_FLUSH_NS;
		flush_inventory(r);
	}
	if (r->sc && now >= r->next_check) {
		uint64_t ks[LW_ST__MAX], gs[LWG_ST__MAX];

		r->next_check = now + SELFCHECK_NS;
		lw_capture_stats(r->cap, ks);
		lw_gates_stats(r->gates, gs);
		lw_selfcheck_run(r->sc, now, ks, gs[LWG_ST_EVENT_DROPS]);
	}
}

static void on_hup(void *ud)
{
	struct run *r = ud;
	struct lw_config *cfg = load_policy(r);

	if (!cfg) {
		r->reload_errors++;
		lw_err("policy reload failed: the previous policy stays in force");
		return;
	}
	lw_gates_apply(r->gates, &cfg->set);
	lw_inspect_set_config(r->inspect, cfg);
	lw_config_free(r->cfg);
	r->cfg = cfg;
	r->set = &cfg->set;
	install_kmatch(r);
	r->reloads++;
	lw_info("policy reloaded from %s: %zu policies, %zu rules", r->policy_dir, cfg->set.n,
		cfg->rules.n);
}

static void on_exec(pid_t pid, void *ud)
{
	struct run *r = ud;

	/* look now: a refused client is gone by the time its event is read */
	lw_procs_exec(&r->procs, pid, NULL);
	free(lw_hmap_del(&r->covered, (uint64_t)pid)); /* a new program: look again */
	lw_gates_apply_pid(r->gates, r->set, pid);
}

static void on_stats(struct lw_buf *b, void *ud)
{
	struct run *r = ud;
	uint64_t gs[LWG_ST__MAX];

	lw_gates_stats(r->gates, gs);
	for (int i = 0; i < LWG_ST__MAX; i++)
		lw_buf_printf(b, ",\"%s\":%llu", lw_gate_stat_names[i], (unsigned long long)gs[i]);
	lw_buf_printf(b, ",\"store_errors\":%llu,\"inventory_errors\":%llu",
		      (unsigned long long)r->store_errors, (unsigned long long)r->inv_errors);
	lw_buf_printf(b, ",\"syslog_sent\":%llu,\"syslog_failed\":%llu",
		      (unsigned long long)lw_syslog_sent(r->syslog),
		      (unsigned long long)lw_syslog_failed(r->syslog));
	{
		struct lw_webhook_stats ws;

		webhook_stats(r, &ws);
		lw_buf_printf(b,
			      ",\"webhook_sent\":%llu,\"webhook_retries\":%llu,"
			      "\"webhook_failed\":%llu,\"webhook_dropped\":%llu",
			      (unsigned long long)ws.sent, (unsigned long long)ws.retries,
			      (unsigned long long)ws.failed, (unsigned long long)ws.dropped);
	}
	lw_buf_printf(b, ",\"policy_reloads\":%llu,\"policy_reload_errors\":%llu",
		      (unsigned long long)r->reloads, (unsigned long long)r->reload_errors);
	lw_inspect_stats_json(r->inspect, b);
}

/* run --check: what the agent would refuse to start on, short of the kernel
 * and the state directory, so `systemctl reload` and deployment pipelines
 * can fail before a bad file reaches a running agent. */
static int check_setup(struct run *r, const char *conf_path)
{
	struct lw_config *cfg = load_policy(r);
	char err[512];
	int rc = 0;

	if (conf_path)
		printf("configuration %s: ok\n", conf_path);
	else
		printf("configuration: none (%s does not exist): defaults and flags\n",
		       LW_AGENTCONF_DEFAULT);
	if (!cfg) {
		lw_err("policy directory %s is not valid (see above)", r->policy_dir);
		rc = 1;
	} else {
		printf("policy directory %s: %zu policies, %zu providers, %zu rules, "
		       "%zu lists: ok\n",
		       r->policy_dir, cfg->set.n, cfg->set.cat.n, cfg->rules.n, cfg->rules.nlists);
		lw_config_free(cfg);
	}
	if (r->syslog_target) {
		struct lw_syslog *s = lw_syslog_open(r->syslog_target, err, sizeof(err));

		if (!s) {
			lw_err("%s", err);
			rc = 1;
		}
		lw_syslog_close(s);
	}
	if (r->webhook_url) {
		struct lw_webhook *w = lw_webhook_open(r->webhook_url, err, sizeof(err));

		if (!w) {
			lw_err("%s", err);
			rc = 1;
		}
		lw_webhook_close(w, 0, NULL);
	}
	return rc;
}

/* What the agent keeps in its state directory: the fingerprint key (and
 * its temporary file) and the alert store (with SQLite's -wal and -shm). */
static const char *const state_files[] = {LW_FPKEY_FILE, "leakwatch.db"};

/* The metrics endpoint. One asked for (flag or file) must come up; the
 * default one is given up with a warning when its port is taken: the agent
 * matters more than its metrics. */
static struct lw_mserver_opts metrics_opts(const char *listen, const struct lw_agent_conf *conf)
{
	struct lw_mserver_opts mo = {
		.listen = listen ? listen : LW_METRICS_DEFAULT_LISTEN,
		.allow_uids = conf->metrics_uids,
		.n_allow_uids = conf->n_metrics_uids,
		.allow_from = conf->metrics_from,
		.n_allow_from = conf->n_metrics_from,
		.render = render_metrics,
	};

	return mo;
}

/* run --check: the endpoint's settings, without taking the port. */
static int check_metrics(const char *listen, const struct lw_agent_conf *conf)
{
	struct lw_mserver_opts mo = metrics_opts(listen, conf);
	char err[512];

	if (listen && !strcmp(listen, "off")) {
		printf("metrics: off\n");
		return 0;
	}
	if (lw_mserver_check(&mo, err, sizeof(err))) {
		lw_err("%s", err);
		return 1;
	}
	printf("metrics: http://%s/metrics, readable by root and %zu more users, %zu address "
	       "ranges: ok\n",
	       mo.listen, mo.n_allow_uids, mo.n_allow_from);
	return 0;
}

static int open_metrics(struct run *r, const char *listen, const struct lw_agent_conf *conf)
{
	struct lw_mserver_opts mo = metrics_opts(listen, conf);
	char err[512];

	mo.ud = r;
	if (listen && !strcmp(listen, "off")) {
		lw_info("metrics endpoint off");
		return 0;
	}
	r->srv = lw_mserver_open(&mo, err, sizeof(err));
	if (!r->srv && listen) {
		lw_err("%s", err);
		return -1;
	}
	if (!r->srv)
		lw_warn("%s: no metrics endpoint (set metrics.listen or --metrics)", err);
	else
		lw_info("metrics on http://%s/metrics", lw_mserver_addr(r->srv));
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: leakwatch run [options]\n"
	      "\n"
	      "Run the agent in the foreground: hook the TLS libraries of every process,\n"
	      "capture what they send and receive, enforce each service's allowed AI\n"
	      "providers and refuse the content its block rules find (in the kernel,\n"
	      "before encryption, where it can), until SIGINT or SIGTERM. SIGHUP reloads\n"
	      "the policy directory (an invalid new policy is refused and the old one\n"
	      "stays in force).\n"
	      "\n"
	      "Every provider connection is reported as one JSON line on stdout\n"
	      "(event provider_connection), and so is every request to a provider that\n"
	      "carries data the rules classify (event alert: masked samples only).\n"
	      "Alerts are also stored (leakwatch alerts, leakwatch inventory) and sent to\n"
	      "the sinks chosen below or in the configuration file.\n"
	      "\n"
	      "      --policy DIR        policy directory (default /etc/leakwatch/policies,\n"
	      "                          else ./policies)\n"
	      "      --config FILE       agent settings (default " LW_AGENTCONF_DEFAULT "\n"
	      "                          when it exists); flags override it\n"
	      "      --state-dir DIR     the agent's state: fingerprint key, alert store\n"
	      "                          (default " LW_STATE_DIR_DEFAULT ", created 0700)\n"
	      "      --db PATH           the alert store (default STATE-DIR/leakwatch.db;\n"
	      "                          none: print alerts only; see leakwatch alerts)\n"
	      "      --dedupe-window S   identical alerts within S seconds are one stored\n"
	      "                          alert with a count (default 300; 0: never merged)\n"
	      "      --rate-limit N      alerts a minute per service, beyond which they are\n"
	      "                          counted, not stored or printed (default 600; 0: none)\n"
	      "      --alerts-file PATH  also append every printed alert line to PATH\n"
	      "                          (created 0600; JSON lines, flushed per line)\n"
	      "      --syslog TARGET     also send every printed alert as an RFC 5424 message\n"
	      "                          to udp://HOST:PORT or unix:PATH (e.g. unix:/dev/log)\n"
	      "      --webhook URL       also POST every printed alert (JSON) to\n"
	      "                          http://HOST[:PORT]/PATH from a worker thread:\n"
	      "                          retried with backoff, queue bounded, never waited for\n"
	      "      --capture-max N     bytes captured per message (default 1M)\n"
	      "      --ring-size N       kernel ring buffer size (default 32M)\n"
	      "      --stats-interval S  print `stats: {...}` every S seconds (default 60)\n"
	      "      --metrics ADDR|off  serve Prometheus metrics (GET /metrics) and JSON\n"
	      "                          (GET /stats, `leakwatch stats`) on IP:PORT\n"
	      "                          (default " LW_METRICS_DEFAULT_LISTEN "); only root\n"
	      "                          and metrics.allow_uids of the config may read it\n"
	      "      --duration SEC      stop after SEC seconds\n"
	      "      --no-pause          never pause a process that maps a new libssl\n"
	      "      --check             validate the configuration file, the policy\n"
	      "                          directory and the sinks' targets, print a summary\n"
	      "                          and exit (0 valid, 1 not) without loading anything\n"
	      "                          into the kernel or touching the state directory\n"
	      "  -v, --verbose           debug logging\n"
	      "  -h, --help              this help\n",
	      f);
}

int lw_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"policy", required_argument, 0, 'P'},
		{"state-dir", required_argument, 0, 'T'},
		{"db", required_argument, 0, 'B'},
		{"dedupe-window", required_argument, 0, 'W'},
		{"rate-limit", required_argument, 0, 'L'},
		{"alerts-file", required_argument, 0, 'A'},
		{"syslog", required_argument, 0, 'Y'},
		{"webhook", required_argument, 0, 'H'},
		{"config", required_argument, 0, 'C'},
		{"capture-max", required_argument, 0, 'M'},
		{"ring-size", required_argument, 0, 'R'},
		{"stats-interval", required_argument, 0, 'S'},
		{"metrics", required_argument, 0, 'X'},
		{"duration", required_argument, 0, 'D'},
		{"no-pause", no_argument, 0, 'N'},
		{"check", no_argument, 0, 'K'},
		{"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct lw_loop_opts lo = {.cap = {.stop_new_libs = true}, .stats_interval_s = 60};
	struct lw_loop_result res;
	struct run r = {.dedupe_window_s = 300, .rate_per_min = 600};
	const char *config_path = NULL, *conf_used = NULL, *metrics = NULL;
	bool window_set = false, rate_set = false, check_only = false;
	struct lw_agent_conf conf = {0};
	int c, rc;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		int64_t v;
		char *end;

		switch (c) {
		case 'P':
			r.policy_dir = optarg;
			break;
		case 'T':
			r.state_dir = optarg;
			break;
		case 'B':
			r.db_path = optarg;
			break;
		case 'A':
			r.alerts_path = optarg;
			break;
		case 'Y':
			r.syslog_target = optarg;
			break;
		case 'H':
			r.webhook_url = optarg;
			break;
		case 'C':
			config_path = optarg;
			break;
		case 'W':
		case 'L': {
			char *e;
			unsigned long v = strtoul(optarg, &e, 10);

			if (*e || !*optarg || v > 86400 * 7) {
				fprintf(stderr, "leakwatch run: bad number '%s'\n", optarg);
				return 2;
			}
			if (c == 'W') {
				r.dedupe_window_s = (uint32_t)v;
				window_set = true;
			} else {
				r.rate_per_min = (uint32_t)v;
				rate_set = true;
			}
			break;
		}
		case 'M':
			v = lw_parse_size(optarg);
			if (v < 1 || v > LW_CAPTURE_CEIL) {
				fprintf(stderr,
					"leakwatch run: --capture-max must be 1..%u bytes\n",
					LW_CAPTURE_CEIL);
				return 2;
			}
			lo.cap.capture_max = (uint32_t)v;
			break;
		case 'R':
			v = lw_parse_size(optarg);
			if (v < (1 << 16) || v > (1 << 30)) {
				fprintf(stderr, "leakwatch run: --ring-size must be 64K..1G\n");
				return 2;
			}
			lo.cap.ring_bytes = (uint32_t)v;
			break;
		case 'S':
		case 'D': {
			double d = strtod(optarg, &end);

			if (*end || d < 0) {
				fprintf(stderr, "leakwatch run: bad number '%s'\n", optarg);
				return 2;
			}
			if (c == 'S')
				lo.stats_interval_s = d;
			else
				lo.duration_s = d;
			break;
		}
		case 'N':
			lo.cap.stop_new_libs = false;
			break;
		case 'K':
			check_only = true;
			break;
		case 'X': {
			struct sockaddr_storage ss;
			socklen_t len;

			if (strcmp(optarg, "off") && lw_hostport_parse(optarg, &ss, &len)) {
				fprintf(stderr,
					"leakwatch run: --metrics: expected IP:PORT, [IPv6]:PORT "
					"or "
					"off, got '%s'\n",
					optarg);
				return 2;
			}
			metrics = optarg;
			break;
		}
		case 'v':
			lw_log_set_level(LW_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "leakwatch run: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	r.start_ns = lw_now_ns();
	/* the configuration file: what no flag set */
	if (config_path || access(LW_AGENTCONF_DEFAULT, F_OK) == 0) {
		struct lw_diag d = {0};
		const char *path = config_path ? config_path : LW_AGENTCONF_DEFAULT;

		if (lw_agent_conf_load(path, &conf, &d)) {
			for (size_t i = 0; i < d.n; i++)
				lw_err("%s", d.msgs[i]);
			lw_diag_free(&d);
			lw_agent_conf_free(&conf);
			return 1;
		}
		lw_diag_free(&d);
		r.policy_dir = r.policy_dir ? r.policy_dir : conf.policy_dir;
		r.state_dir = r.state_dir ? r.state_dir : conf.state_dir;
		r.db_path = r.db_path ? r.db_path : conf.db;
		r.alerts_path = r.alerts_path ? r.alerts_path : conf.alerts_file;
		r.syslog_target = r.syslog_target ? r.syslog_target : conf.syslog;
		r.webhook_url = r.webhook_url ? r.webhook_url : conf.webhook;
		if (!window_set && conf.dedupe_window >= 0)
			r.dedupe_window_s = (uint32_t)conf.dedupe_window;
		if (!rate_set && conf.rate_limit >= 0)
			r.rate_per_min = (uint32_t)conf.rate_limit;
		if (!lo.cap.capture_max && conf.capture_max)
			lo.cap.capture_max = (uint32_t)conf.capture_max;
		if (!lo.cap.ring_bytes && conf.ring_size)
			lo.cap.ring_bytes = (uint32_t)conf.ring_size;
		if (!metrics)
			metrics = conf.metrics_listen;
		lw_info("configuration %s", path);
		conf_used = path;
	}
	if (!r.policy_dir)
		r.policy_dir = lw_config_default_dir();
	if (!r.state_dir)
		r.state_dir = LW_STATE_DIR_DEFAULT;
	if (check_only) {
		rc = check_setup(&r, conf_used);
		if (check_metrics(metrics, &conf))
			rc = 1;
		lw_agent_conf_free(&conf);
		return rc;
	}
	/* first: a taken or forbidden address stops the agent before it
	 * touches anything */
	if (open_metrics(&r, metrics, &conf)) {
		lw_agent_conf_free(&conf);
		return 1;
	}
	{
		char err[512];

		if (lw_fpkey_load(r.state_dir, r.fpkey, err, sizeof(err)) != 0) {
			lw_err("fingerprint key: %s", err);
			return 1;
		}
		if (lw_dir_private(r.state_dir, state_files, 2, err, sizeof(err)) != 0)
			lw_warn("%s", err);
	}
	{
		char path[4096], err[512];

		if (!r.db_path) {
			snprintf(path, sizeof(path), "%s/leakwatch.db", r.state_dir);
			r.db_path = path;
		}
		if (strcmp(r.db_path, "none")) {
			r.store = lw_store_open(r.db_path, false, err, sizeof(err));
			if (!r.store) {
				lw_err("alert store: %s", err);
				return 1;
			}
			lw_info("alerts are stored in %s", r.db_path);
		}
		r.db_path = NULL; /* path is gone with this block */
	}
	if (r.alerts_path) {
		int fd = open(r.alerts_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			      0600);

		/* an existing file keeps what it had, but not its readers */
		if (fd >= 0 && lw_file_private(fd) != 0)
			lw_warn("alerts file %s: cannot make it private (chmod 0600): %s",
				r.alerts_path, strerror(errno));
		r.alerts_file = fd >= 0 ? fdopen(fd, "a") : NULL;
		if (!r.alerts_file) {
			lw_err("alerts file %s: %s", r.alerts_path, strerror(errno));
			if (fd >= 0)
				close(fd);
			lw_store_close(r.store);
			return 1;
		}
	}
	if (r.syslog_target) {
		char err[512];

		r.syslog = lw_syslog_open(r.syslog_target, err, sizeof(err));
		if (!r.syslog) {
			lw_err("%s", err);
			lw_store_close(r.store);
			return 1;
		}
	}
	if (r.webhook_url) {
		char err[512];

		r.webhook = lw_webhook_open(r.webhook_url, err, sizeof(err));
		if (!r.webhook) {
			lw_err("%s", err);
			lw_syslog_close(r.syslog);
			lw_webhook_close(r.webhook, 2000,
					 NULL); /* a setup failure: never started */
			lw_store_close(r.store);
			return 1;
		}
	}
	r.inv = lw_inventory_new();
	r.cfg = load_policy(&r);
	if (!r.cfg) {
		lw_err("policy directory %s is not valid (see above)", r.policy_dir);
		return 1;
	}
	r.set = &r.cfg->set;
	lw_info("policy directory %s: %zu policies, %zu providers, %zu rules, %zu lists",
		r.policy_dir, r.set->n, r.set->cat.n, r.cfg->rules.n, r.cfg->rules.nlists);
	r.gates = lw_gates_open(on_gate_event, &r);
	if (!r.gates) {
		lw_config_free(r.cfg);
		return 1;
	}
	lw_gates_apply(r.gates, r.set);
	lw_gates_shared(r.gates, &lo.cap.shared);
	r.mono_to_real_ns = lw_mono_to_real_ns();
	r.inspect = lw_inspect_new(r.cfg, stdout, r.mono_to_real_ns, on_block, &r);
	lw_inspect_on_alert(r.inspect, on_alert, &r);
	lw_inspect_set_inventory(r.inspect, r.inv);
	lw_inspect_alerts_file(r.inspect, r.alerts_file);
	if (r.syslog || r.webhook)
		lw_inspect_on_printed(r.inspect, on_printed, &r);
	lo.on_capture = on_capture;
	lo.on_stop = on_stop;
	lo.on_verdict = on_verdict;
	lo.on_message = on_message;
	lo.ud = &r;
	lo.flush = stdout;
	lo.on_tick = on_tick;
	lo.on_hup = on_hup;
	lo.on_exec = on_exec;
	lo.on_stats = on_stats;
	lo.on_messages = on_messages;
	lo.on_wake = on_wake;
	lo.health = &r.health;
	if (r.srv) {
		lo.poll_fds = poll_fds;
		lo.on_poll = on_poll;
	}
	rc = lw_loop_run(&lo, &res);
	if (!rc)
		lw_info("stopped: %llu messages, %llu bytes captured",
			(unsigned long long)r.messages, (unsigned long long)r.bytes);
	lw_gates_consume(r.gates);
	fflush(stdout);
	lw_mserver_close(r.srv);
	lw_gates_close(r.gates);
	lw_inspect_free(r.inspect); /* reports what is still incomplete */
	fflush(stdout);
	flush_inventory(&r);
	lw_inventory_free(r.inv);
	if (r.alerts_file)
		fclose(r.alerts_file);
	lw_syslog_close(r.syslog);
	lw_store_close(r.store);
	for (size_t i = 0; i < r.buckets.cap; i++)
		free(r.buckets.slots[i].val);
	lw_hmap_free(&r.buckets);
	coverage_forget(&r);
	lw_procs_free(&r.procs);
	lw_config_free(r.cfg);
	lw_buf_free(&r.out);
	lw_agent_tally_free(&r.tally);
	lw_agent_conf_free(&conf);
	return rc;
}
