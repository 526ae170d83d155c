/*
 * The loop shared by the long-running subcommands: capture -> messages,
 * until SIGINT/SIGTERM (or a deadline), with periodic housekeeping.
 */
#ifndef LW_AGENT_LOOP_H
#define LW_AGENT_LOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "capture/capture.h"
#include "stream/messages.h"
#include "util/buf.h"

/* How the loop keeps up, for the agent's self-check. The maxima grow until
 * the reader clears them. */
struct lw_loop_health {
	uint64_t busy_max_ns; /* longest time between two waits (work of one turn) */
	/* oldest record at the turn it was handled: now - its kernel time.
	 * Data chunks are left out: their time is the start of the SSL call,
	 * which may rightly have taken long. */
	uint64_t lag_max_ns;
};

/* descriptors others may add to the loop's wait (lw_loop_opts.poll_fds) */
#define LW_LOOP_EXTRA_FDS 8

struct lw_loop_opts {
	struct lw_capture_opts cap;
	lw_view_cb on_message;
	void *ud;
	size_t reasm_mem;	 /* bytes of partial messages held at most */
	double duration_s;	 /* 0: until a signal */
	double stats_interval_s; /* 0: only at exit */
	FILE *flush;		 /* flushed after each batch (stdout for trace) */
	/* optional hooks for the agent's other stages */
	void (*on_tick)(uint64_t now_ns, void *ud);   /* every loop turn (<= 20 ms) */
	void (*on_hup)(void *ud);		      /* SIGHUP; unset: SIGHUP is ignored */
	void (*on_exec)(pid_t pid, void *ud);	      /* a process exec'd */
	void (*on_stats)(struct lw_buf *b, void *ud); /* extra "key":value pairs */
	/* the capture stage is loaded (before the first record) */
	void (*on_capture)(struct lw_capture *c, void *ud);
	/* stopping: after the last records, before the final stats line */
	void (*on_stop)(void *ud);
	/* the in-kernel matcher refused a write */
	void (*on_verdict)(const struct lw_verdict_rec *v, void *ud);
	/* the message stage exists (for lw_messages_stats) */
	void (*on_messages)(struct lw_messages *ms, void *ud);
	/* each turn right after the wait, before any record is consumed */
	void (*on_wake)(uint64_t now_ns, void *ud);
	/* more descriptors to wait on (at most LW_LOOP_EXTRA_FDS, fill pf and
	 * return how many), handed back with their revents after the wait */
	int (*poll_fds)(struct pollfd *pf, int max, void *ud);
	void (*on_poll)(const struct pollfd *pf, int n, uint64_t now_ns, void *ud);
	struct lw_loop_health *health; /* filled when set */
};

struct lw_loop_result {
	uint64_t kstats[LW_ST__MAX];
	struct lw_messages_stats ustats;
	bool output_failed; /* e.g. the reader of stdout went away */
};

/* Returns 0 on a clean stop, 1 when setup failed (reason already logged). */
int lw_loop_run(const struct lw_loop_opts *o, struct lw_loop_result *res);
/* "{...}" with every counter, for the `stats:` line and periodic reports. */
void lw_loop_stats_json(const struct lw_loop_result *res, struct lw_buf *b);

/* Parse "1048576", "64K", "1M", "1G"; returns -1 on garbage or overflow. */
int64_t lw_parse_size(const char *s);

#endif
