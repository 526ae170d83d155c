/*
 * The agent's content path: captured requests on AI-provider connections ->
 * per-connection decoders -> classifier -> alert lines. A connection is
 * decoded when its SNI names a catalog provider, or, without SNI, request by
 * request when the Host / :authority does; other connections cost one
 * lookup per message.
 */
#ifndef LW_INSPECT_H
#define LW_INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include "classify/classify.h"
#include "cmd/config.h"
#include "decode/request.h"
#include "policy/policy.h"
#include "stream/messages.h"
#include "util/buf.h"

struct lw_inspect_stats {
	struct lw_decode_stats decode;
	uint64_t provider_conns;   /* connections decoded */
	uint64_t other_requests;   /* decoded, but not to a provider: not classified */
	uint64_t classified;	   /* requests classified */
	uint64_t classified_bytes; /* prompt text bytes */
	uint64_t alerts;
	uint64_t conns_over_limit; /* provider connections not decoded: table full */
	uint64_t classify_errors;
	uint64_t kernel_blocks;	    /* writes the in-kernel matcher refused */
	uint64_t agent_blocks;	    /* connections poisoned by the agent's verdict */
	uint64_t kernel_alone;	    /* kernel verdicts reported without their request */
	uint64_t alerts_merged;	    /* identical to a recent alert: counted there */
	uint64_t alerts_suppressed; /* over a service's rate limit */
	uint64_t file_errors;	    /* alert lines the alerts file did not take */
};

struct lw_inspect;

/* The agent-stage verdict: a request on the connection ci carried content
 * that a block rule enforced by pol refuses, and the kernel did not decide
 * it. The callee poisons the connection and quarantines (cgroup, provider). */
typedef void (*lw_inspect_block_cb)(const struct lw_conn_info *ci, uint64_t cgroup_id,
				    const struct lw_policy *pol, int provider, void *ud);

/* cfg (policies, classifier, kernel matcher) is borrowed; swap it with
 * lw_inspect_set_config on a reload. Alerts are written to out, one JSON
 * line each. on_block may be NULL (nothing is enforced then). */
struct lw_inspect *lw_inspect_new(const struct lw_config *cfg, FILE *out, int64_t mono_to_real_ns,
				  lw_inspect_block_cb on_block, void *ud);
void lw_inspect_set_config(struct lw_inspect *in, const struct lw_config *cfg);
/* Every alert before it is printed: its JSON object (redacted, no newline)
 * and the key identical alerts share (service, provider, action, each
 * finding's rule and fingerprint, separated by 0x1f). The callee says what
 * became of it: printed, merged into an earlier identical alert, or
 * suppressed by a rate limit (both counted, never printed). */
enum lw_alert_fate { LW_ALERT_EMIT = 0, LW_ALERT_MERGED, LW_ALERT_SUPPRESSED };
typedef enum lw_alert_fate (*lw_inspect_alert_cb)(const char *json, size_t n,
						  const char *dedupe_key, int64_t ts_real_ns,
						  int64_t *id, void *ud);
void lw_inspect_on_alert(struct lw_inspect *in, lw_inspect_alert_cb cb, void *ud);
/* An alert of another stage (the provider gates), through the same store,
 * dedupe, rate limit and sinks. The machine name is filled in. */
struct lw_alert;
void lw_inspect_alert(struct lw_inspect *in, struct lw_alert *a, uint64_t mono_ns);
/* Also write every printed alert line to f (a JSON-lines file sink). */
void lw_inspect_alerts_file(struct lw_inspect *in, FILE *f);
/* Every printed alert line (no newline) with its action, for other sinks. */
typedef void (*lw_inspect_printed_cb)(const char *line, size_t n, const char *action,
				      int64_t ts_real_ns, void *ud);
void lw_inspect_on_printed(struct lw_inspect *in, lw_inspect_printed_cb cb, void *ud);
/* Count every decoded provider request (and its responses) there. */
struct lw_inventory;
void lw_inspect_set_inventory(struct lw_inspect *in, struct lw_inventory *inv);
void lw_inspect_message(struct lw_inspect *in, const struct lw_msg_view *v);
/* The in-kernel matcher refused a write: its alert follows with the
 * request it belongs to (or, when that never comes, on its own). */
void lw_inspect_verdict(struct lw_inspect *in, const struct lw_verdict_rec *v);
/* Finish and forget connections idle for a while. */
void lw_inspect_tick(struct lw_inspect *in, uint64_t now_ns);
const struct lw_inspect_stats *lw_inspect_stats(const struct lw_inspect *in);
/* Appends ,"name":value pairs for the agent's stats line. */
void lw_inspect_stats_json(const struct lw_inspect *in, struct lw_buf *b);
void lw_inspect_free(struct lw_inspect *in);

#endif
