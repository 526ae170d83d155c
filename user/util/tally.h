/* Counts keyed by a few strings (a metric's label values): the agent's own
 * tallies of alerts and gate decisions, however many values appear. */
#ifndef LW_TALLY_H
#define LW_TALLY_H

#include <stddef.h>
#include <stdint.h>

#include "util/hmap.h"

#define LW_TALLY_KEYS 3

struct lw_tally {
	struct lw_hmap m;
};

/* Adds n to the count of (k[0], k[1], k[2]); NULL keys count as "". */
void lw_tally_add(struct lw_tally *t, const char *k0, const char *k1, const char *k2, uint64_t n);
void lw_tally_each(const struct lw_tally *t,
		   void (*fn)(const char *const k[LW_TALLY_KEYS], uint64_t n, void *ud), void *ud);
void lw_tally_free(struct lw_tally *t);

#endif
