/*
 * The loop shared by the long-running subcommands: capture -> messages,
 * until SIGINT/SIGTERM (or a deadline), with periodic housekeeping.
 */
#ifndef LW_AGENT_LOOP_H
#define LW_AGENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "capture/capture.h"
#include "stream/messages.h"
#include "util/buf.h"

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
