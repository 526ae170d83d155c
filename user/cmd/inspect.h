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
#include "decode/request.h"
#include "policy/policy.h"
#include "stream/messages.h"
#include "util/buf.h"

struct lw_inspect_stats {
	struct lw_decode_stats decode;
	uint64_t provider_conns;   /* connections decoded */
	uint64_t other_requests;   /* decoded, but not to a provider: not classified */
	uint64_t classified;       /* requests classified */
	uint64_t classified_bytes; /* prompt text bytes */
	uint64_t alerts;
	uint64_t conns_over_limit; /* provider connections not decoded: table full */
	uint64_t classify_errors;
};

struct lw_inspect;

/* set and classifier are borrowed; swap them with lw_inspect_set_policy on a
 * reload. Alerts are written to out, one JSON line each. */
struct lw_inspect *lw_inspect_new(const struct lw_policy_set *set, struct lw_classifier *c,
				  FILE *out, int64_t mono_to_real_ns);
void lw_inspect_set_policy(struct lw_inspect *in, const struct lw_policy_set *set,
			   struct lw_classifier *c);
void lw_inspect_message(struct lw_inspect *in, const struct lw_msg_view *v);
/* Finish and forget connections idle for a while. */
void lw_inspect_tick(struct lw_inspect *in, uint64_t now_ns);
const struct lw_inspect_stats *lw_inspect_stats(const struct lw_inspect *in);
/* Appends ,"name":value pairs for the agent's stats line. */
void lw_inspect_stats_json(const struct lw_inspect *in, struct lw_buf *b);
void lw_inspect_free(struct lw_inspect *in);

#endif
