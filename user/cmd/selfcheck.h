/*
 * The agent watching itself (docs/running.md, "Self-protection"): every
 * second it checks that the BPF programs it attached are still attached
 * and still its own, and that it keeps up with the kernel (ring-buffer
 * losses, a filling ring, a slow loop). What it finds is logged as a
 * warning (loss and lag warnings at most every LW_SELFCHECK_WARN_S) and
 * exported as metrics.
 */
#ifndef LW_SELFCHECK_H
#define LW_SELFCHECK_H

#include <stdint.h>

#include "act/metrics.h"
#include "capture/capture.h"
#include "cmd/agent_loop.h"
#include "gates/gates.h"

#define LW_SELFCHECK_WARN_S 10
/* a ring fuller than this at any wakeup is worth a warning */
#define LW_SELFCHECK_RING_WARN 0.5
/* a loop turn or an event this late is worth a warning */
#define LW_SELFCHECK_LAG_WARN_NS (1000ULL * 1000 * 1000)

struct lw_selfcheck;

/* Either stage may be NULL. health is the loop's (lw_loop_opts.health):
 * read and cleared at each check. */
struct lw_selfcheck *lw_selfcheck_new(struct lw_capture *cap, struct lw_gates *g,
				      struct lw_loop_health *health);
void lw_selfcheck_free(struct lw_selfcheck *sc);
/* Each loop turn before the rings are drained: how full they are now. */
void lw_selfcheck_wake(struct lw_selfcheck *sc);
/* The checks; call about once a second with the current kernel counters
 * (gate_drops: the gates' events lost to their full ring). */
void lw_selfcheck_run(struct lw_selfcheck *sc, uint64_t now_ns, const uint64_t kstats[LW_ST__MAX],
		      uint64_t gate_drops);
void lw_selfcheck_metrics(const struct lw_selfcheck *sc, struct lw_metrics *m);

#endif
