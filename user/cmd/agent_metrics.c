#include "cmd/agent_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"

/* ---- tallies ------------------------------------------------------------ */

void lw_agent_tally_gate(struct lw_agent_tally *t, const char *gate, const char *decision)
{
	lw_tally_add(&t->gates, gate, decision, NULL, 1);
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

void lw_agent_tally_alert(struct lw_agent_tally *t, const char *json, size_t n)
{
	json_t *o = json_loadb(json, n, 0, NULL), *f;
	size_t i;

	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	lw_tally_add(&t->alerts, str_of(o, "reason"), str_of(o, "action"), str_of(o, "stage"), 1);
	json_array_foreach(json_object_get(o, "findings"), i, f)
		lw_tally_add(&t->findings, str_of(f, "type"), str_of(f, "action"), NULL, 1);
	json_decref(o);
}

void lw_agent_tally_free(struct lw_agent_tally *t)
{
	lw_tally_free(&t->gates);
	lw_tally_free(&t->alerts);
	lw_tally_free(&t->findings);
}

/* ---- the snapshot ------------------------------------------------------- */

static void counter(struct lw_metrics *m, const char *name, const char *help, uint64_t v)
{
	lw_metrics_family(m, name, LW_METRIC_COUNTER, help);
	lw_metrics_u64(m, v, NULL);
}

/* What each capture-stage kernel counter (stats line name) means; one the
 * capture stage adds later is exported with a generic help. */
static const char *const capture_help[][2] = {
	{"messages", "TLS reads and writes captured (one message per SSL call)"},
	{"bytes", "Bytes the captured SSL calls moved"},
	{"chunks", "Ring-buffer records submitted for message data"},
	{"ringbuf_dropped_chunks", "Message chunks lost because the ring buffer was full"},
	{"ringbuf_dropped_bytes", "Message bytes lost because the ring buffer was full"},
	{"truncated_messages", "Messages longer than --capture-max (cut, and marked truncated)"},
	{"truncated_bytes", "Bytes not captured because messages exceeded --capture-max"},
	{"copy_faults", "Plaintext the probe could not read from the application's memory"},
	{"meta_dropped", "Connection, exec and exit records lost because the ring was full"},
	{"nested_calls", "SSL calls made inside another hooked SSL call (counted once)"},
	{"library_pauses", "Processes paused while a newly mapped TLS library was hooked"},
	{"kmatch_writes", "Writes the in-kernel matcher walked"},
	{"kmatch_bytes", "Bytes the in-kernel matcher walked"},
	{"kmatch_verdicts", "Writes the in-kernel matcher refused"},
	{"kmatch_faults", "Plaintext the in-kernel matcher could not read (not resident)"},
	{"kmatch_poisoned_writes", "Later writes refused on a connection poisoned for content"},
};

static void capture_counters(struct lw_metrics *m, struct lw_capture *cap)
{
	uint64_t ks[LW_ST__MAX];

	lw_capture_stats(cap, ks);
	for (int i = 0; i < LW_ST__MAX; i++) {
		char name[128], help[256];
		const char *h = NULL;

		if (!lw_stat_names[i])
			continue;
		for (size_t k = 0; k < sizeof(capture_help) / sizeof(capture_help[0]); k++)
			if (!strcmp(capture_help[k][0], lw_stat_names[i]))
				h = capture_help[k][1];
		if (!h) {
			snprintf(help, sizeof(help), "Capture-stage kernel counter %s",
				 lw_stat_names[i]);
			h = help;
		}
		snprintf(name, sizeof(name), "leakwatch_capture_%s_total", lw_stat_names[i]);
		counter(m, name, h, ks[i]);
	}
}

struct targets {
	uint64_t hooked, unhooked, unreadable, failed_probes;
	struct lw_metrics *m;
	bool second; /* pass 1: hooked gauge, pass 2: probes */
};

static void on_target(const char *path, bool hooked, int nlinks, int nfailed, const char *why,
		      void *ud)
{
	struct targets *t = ud;

	if (!hooked && !nfailed && !why[0])
		return; /* examined, holds no TLS code we hook */
	if (!t->second) {
		t->hooked += hooked;
		t->unhooked += !hooked && nfailed;
		t->unreadable += !hooked && !nfailed;
		t->failed_probes += (uint64_t)nfailed;
		lw_metrics_u64(t->m, hooked, "path", path, NULL);
		return;
	}
	lw_metrics_u64(t->m, (uint64_t)nlinks, "path", path, "state", "attached", NULL);
	lw_metrics_u64(t->m, (uint64_t)nfailed, "path", path, "state", "failed", NULL);
}

static void capture_targets(struct lw_metrics *m, struct lw_capture *cap)
{
	struct targets t = {.m = m};

	lw_metrics_family(m, "leakwatch_target_hooked", LW_METRIC_GAUGE,
			  "1 for a TLS library or executable the agent hooked, 0 for one it "
			  "should hook but could not (every attach failed, or its TLS code "
			  "cannot be located: see the log)");
	lw_capture_each_target(cap, on_target, &t);
	t.second = true;
	lw_metrics_family(m, "leakwatch_target_probes", LW_METRIC_GAUGE,
			  "Probes of a hooked file by state: attached, or failed to attach");
	lw_capture_each_target(cap, on_target, &t);
	lw_metrics_family(m, "leakwatch_targets", LW_METRIC_GAUGE,
			  "Files with TLS code: hooked, not hooked because every attach failed, "
			  "or not hooked because their TLS code cannot be located (unreadable)");
	lw_metrics_u64(m, t.hooked, "state", "hooked", NULL);
	lw_metrics_u64(m, t.unhooked, "state", "failed", NULL);
	lw_metrics_u64(m, t.unreadable, "state", "unreadable", NULL);
	counter(m, "leakwatch_probe_attach_failures_total",
		"Probes (uprobes) the agent could not attach, over every file", t.failed_probes);
}

static void message_counters(struct lw_metrics *m, struct lw_messages *ms)
{
	struct lw_messages_stats s = lw_messages_stats(ms);

	counter(m, "leakwatch_messages_complete_total",
		"Messages reassembled whole from their ring-buffer chunks", s.reasm.complete);
	counter(m, "leakwatch_messages_incomplete_total",
		"Messages reported with bytes missing (lost to a full ring, or cut)",
		s.reasm.incomplete);
	counter(m, "leakwatch_messages_lost_bytes_total", "Bytes missing from incomplete messages",
		s.reasm.lost_bytes);
	counter(m, "leakwatch_messages_evicted_total",
		"Incomplete messages finished early to bound the agent's memory", s.reasm.evicted);
	counter(m, "leakwatch_messages_without_dst_total",
		"Messages reported without a destination address", s.no_dst);
}

static void gate_counters(struct lw_metrics *m, struct lw_gates *g)
{
	uint64_t gs[LWG_ST__MAX];

	lw_gates_stats(g, gs);
	for (int i = 0; i < LWG_ST__MAX; i++) {
		const char *n = lw_gate_stat_names[i];
		char name[128], help[256];

		if (!n)
			continue;
		if (!strncmp(n, "gate_", 5))
			n += 5;
		snprintf(name, sizeof(name), "leakwatch_gates_%s_total", n);
		snprintf(help, sizeof(help),
			 "Provider-gate kernel counter %s (docs/running.md, Counters)",
			 lw_gate_stat_names[i]);
		counter(m, name, help, gs[i]);
	}
}

struct trow {
	struct lw_metrics *m;
	const char *label[LW_TALLY_KEYS]; /* the last may be NULL: two labels */
};

static void tally_row(const char *const k[LW_TALLY_KEYS], uint64_t n, void *ud)
{
	const struct trow *t = ud;

	if (t->label[2])
		lw_metrics_u64(t->m, n, t->label[0], k[0], t->label[1], k[1], t->label[2], k[2],
			       NULL);
	else
		lw_metrics_u64(t->m, n, t->label[0], k[0], t->label[1], k[1], NULL);
}

static void tally_family(struct lw_metrics *m, const char *name, const char *help,
			 const struct lw_tally *t, const char *l0, const char *l1, const char *l2)
{
	struct trow r = {m, {l0, l1, l2}};

	lw_metrics_family(m, name, LW_METRIC_COUNTER, help);
	lw_tally_each(t, tally_row, &r);
}

static void content_counters(struct lw_metrics *m, const struct lw_inspect *in)
{
	const struct lw_inspect_stats *s = lw_inspect_stats(in);
	const struct lw_decode_stats *d = &s->decode;
	const struct {
		const char *kind;
		uint64_t v;
	} probs[] = {
		{"not_http", d->not_http},
		{"http_parse_error", d->http.parse_errors},
		{"hpack_error", d->http.hpack_errors},
		{"stream_refused", d->http.streams_refused},
		{"body_truncated", d->http.bodies_truncated},
		{"stream_desynced", d->desynced},
		{"inflate_limited", d->inflate_limit},
		{"inflate_corrupt", d->inflate_corrupt},
		{"inflate_unsupported", d->inflate_unsupported},
		{"json_error", d->json_errors},
		{"text_limited", d->text_limited},
		{"conns_over_limit", s->conns_over_limit},
		{"classify_error", s->classify_errors},
	};

	counter(m, "leakwatch_provider_connections_total",
		"Connections to AI providers whose requests were decoded", s->provider_conns);
	counter(m, "leakwatch_requests_decoded_total", "HTTP requests decoded", d->requests);
	counter(m, "leakwatch_requests_classified_total", "Provider requests classified",
		s->classified);
	counter(m, "leakwatch_classified_bytes_total", "Prompt text bytes classified",
		s->classified_bytes);
	lw_metrics_family(m, "leakwatch_decode_problems_total", LW_METRIC_COUNTER,
			  "Requests or streams the decoders could not take whole, by kind");
	for (size_t i = 0; i < sizeof(probs) / sizeof(probs[0]); i++)
		lw_metrics_u64(m, probs[i].v, "kind", probs[i].kind, NULL);
	lw_metrics_family(m, "leakwatch_alerts_emitted_total", LW_METRIC_COUNTER,
			  "What became of the alerts: printed (and sent to the sinks), merged "
			  "into an identical recent alert, or suppressed by the rate limit");
	lw_metrics_u64(m, s->alerts, "outcome", "printed", NULL);
	lw_metrics_u64(m, s->alerts_merged, "outcome", "merged", NULL);
	lw_metrics_u64(m, s->alerts_suppressed, "outcome", "suppressed", NULL);
	lw_metrics_family(m, "leakwatch_blocks_total", LW_METRIC_COUNTER,
			  "Content blocks: writes the in-kernel matcher refused (stage kernel), "
			  "connections the agent poisoned after classifying (stage agent)");
	lw_metrics_u64(m, s->kernel_blocks, "stage", "kernel", NULL);
	lw_metrics_u64(m, s->agent_blocks, "stage", "agent", NULL);
}

static void sink_counters(struct lw_metrics *m, const struct lw_agent_view *v,
			  const struct lw_inspect_stats *is)
{
	lw_metrics_family(
		m, "leakwatch_sink_failures_total", LW_METRIC_COUNTER,
		"Alerts a sink could not take: store (SQLite), inventory (its table), "
		"file (--alerts-file), syslog (send failed), webhook (retries exhausted)");
	lw_metrics_u64(m, v->store_errors, "sink", "store", NULL);
	lw_metrics_u64(m, v->inventory_errors, "sink", "inventory", NULL);
	lw_metrics_u64(m, is ? is->file_errors : 0, "sink", "file", NULL);
	lw_metrics_u64(m, lw_syslog_failed(v->syslog), "sink", "syslog", NULL);
	lw_metrics_u64(m, v->webhook.failed, "sink", "webhook", NULL);
	lw_metrics_family(m, "leakwatch_sink_sent_total", LW_METRIC_COUNTER,
			  "Alerts delivered by the syslog and webhook sinks");
	lw_metrics_u64(m, lw_syslog_sent(v->syslog), "sink", "syslog", NULL);
	lw_metrics_u64(m, v->webhook.sent, "sink", "webhook", NULL);
	counter(m, "leakwatch_webhook_retries_total", "Webhook deliveries retried",
		v->webhook.retries);
	counter(m, "leakwatch_webhook_dropped_total",
		"Alerts the webhook sink dropped (queue full, or still queued at exit)",
		v->webhook.dropped);
}

static void server_counters(struct lw_metrics *m, const struct lw_mserver *srv)
{
	struct lw_mserver_stats st;

	lw_mserver_stats(srv, &st);
	lw_metrics_family(m, "leakwatch_metrics_requests_total", LW_METRIC_COUNTER,
			  "Requests to this endpoint by HTTP status (408: dropped, too slow)");
	for (int i = 0; i < LW_MS__N; i++) {
		char code[8];

		snprintf(code, sizeof(code), "%d", lw_mserver_codes[i]);
		lw_metrics_u64(m, st.responses[i], "code", code, NULL);
	}
	lw_metrics_family(m, "leakwatch_metrics_refused_total", LW_METRIC_COUNTER,
			  "Requests refused (403): a local user neither root nor in "
			  "metrics.allow_uids, an address not in metrics.allow_from, or a peer "
			  "that could not be identified");
	lw_metrics_u64(m, st.refused_uid, "reason", "uid", NULL);
	lw_metrics_u64(m, st.refused_address, "reason", "address", NULL);
	lw_metrics_u64(m, st.refused_unknown, "reason", "unknown", NULL);
}

void lw_agent_metrics(struct lw_metrics *m, const struct lw_agent_view *v)
{
	const struct lw_inspect_stats *is = v->inspect ? lw_inspect_stats(v->inspect) : NULL;

	lw_metrics_family(m, "leakwatch_start_time_seconds", LW_METRIC_GAUGE,
			  "When the agent started (Unix time)");
	lw_metrics_f64(m, (double)((int64_t)v->start_mono_ns + v->mono_to_real_ns) / 1e9, NULL);
	lw_metrics_family(m, "leakwatch_uptime_seconds", LW_METRIC_GAUGE,
			  "Seconds since the agent started");
	lw_metrics_f64(m, (double)(v->now_mono_ns - v->start_mono_ns) / 1e9, NULL);
	if (v->cap) {
		capture_counters(m, v->cap);
		capture_targets(m, v->cap);
	}
	if (v->ms)
		message_counters(m, v->ms);
	if (v->gates)
		gate_counters(m, v->gates);
	if (v->tally) {
		tally_family(m, "leakwatch_gate_decisions_total",
			     "Provider connection decisions reported, by gate and decision "
			     "(allowed, denied, would_deny)",
			     &v->tally->gates, "gate", "decision", NULL);
		tally_family(m, "leakwatch_alerts_total",
			     "Alerts raised (before dedupe and rate limit), by reason, action "
			     "(alert, block, would_block) and stage (kernel, agent, gate)",
			     &v->tally->alerts, "reason", "action", "stage");
		tally_family(m, "leakwatch_alert_findings_total",
			     "Findings in the alerts raised, by finding type and action",
			     &v->tally->findings, "type", "action", NULL);
	}
	if (v->inspect)
		content_counters(m, v->inspect);
	sink_counters(m, v, is);
	counter(m, "leakwatch_policy_reloads_total", "Policy reloads (SIGHUP) put in force",
		v->reloads);
	counter(m, "leakwatch_policy_reload_errors_total",
		"Policy reloads refused (the previous policy stayed in force)", v->reload_errors);
	if (v->srv)
		server_counters(m, v->srv);
	if (v->sc)
		lw_selfcheck_metrics(v->sc, m);
}
