/*
 * The agent's metrics: what `leakwatch run` exports on its endpoint and
 * `leakwatch stats` prints, named and explained once, here (every name is
 * listed in docs/running.md, "Metrics"). The numbers come from the stages'
 * own counters, read when a snapshot is taken, and from the tallies below,
 * which the agent keeps as alerts and gate decisions go by.
 */
#ifndef LW_AGENT_METRICS_H
#define LW_AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "act/metrics.h"
#include "act/metrics_http.h"
#include "act/syslog.h"
#include "act/webhook.h"
#include "capture/capture.h"
#include "cmd/inspect.h"
#include "cmd/selfcheck.h"
#include "gates/gates.h"
#include "stream/messages.h"
#include "util/tally.h"

struct lw_agent_tally {
	struct lw_tally gates;	  /* gate, decision */
	struct lw_tally alerts;	  /* reason, action, stage */
	struct lw_tally findings; /* finding type, action */
};

/* One provider-connection decision as reported (names as printed). */
void lw_agent_tally_gate(struct lw_agent_tally *t, const char *gate, const char *decision);
/* One alert, from its JSON line (reason, action, stage, findings). */
void lw_agent_tally_alert(struct lw_agent_tally *t, const char *json, size_t n);
void lw_agent_tally_free(struct lw_agent_tally *t);

/* Everything a snapshot reads; NULL stages are left out. */
struct lw_agent_view {
	struct lw_capture *cap;
	struct lw_messages *ms;
	struct lw_gates *gates;
	const struct lw_inspect *inspect;
	const struct lw_selfcheck *sc;
	const struct lw_mserver *srv;
	const struct lw_agent_tally *tally;
	const struct lw_syslog *syslog;
	struct lw_webhook_stats webhook;
	uint64_t store_errors, inventory_errors, reloads, reload_errors;
	uint64_t start_mono_ns, now_mono_ns;
	int64_t mono_to_real_ns;
};

void lw_agent_metrics(struct lw_metrics *m, const struct lw_agent_view *v);

#endif
