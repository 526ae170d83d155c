#include "cmd/agent_loop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

int64_t lw_parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -1; /* no sign, no leading space */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end) {
		switch (*end++) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			return -1;
		}
		/* "K", "KB", "KiB" */
		if (*end == 'i')
			end++;
		if (*end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (v > (unsigned long long)INT64_MAX >> shift)
		return -1;
	return (int64_t)(v << shift);
}

void lw_loop_stats_json(const struct lw_loop_result *r, struct lw_buf *b)
{
	struct lw_json j;

	/* extra counters of other stages are appended by lw_loop_run */

	lw_json_begin(&j, b);
	for (int i = 0; i < LW_ST__MAX; i++)
		lw_json_u64(&j, lw_stat_names[i], r->kstats[i]);
	lw_json_u64(&j, "complete_messages", r->ustats.reasm.complete);
	lw_json_u64(&j, "incomplete_messages", r->ustats.reasm.incomplete);
	lw_json_u64(&j, "lost_bytes", r->ustats.reasm.lost_bytes);
	lw_json_u64(&j, "late_chunks", r->ustats.reasm.late_chunks);
	lw_json_u64(&j, "duplicate_chunks", r->ustats.reasm.dup_chunks);
	lw_json_u64(&j, "bad_chunks", r->ustats.reasm.bad_chunks);
	lw_json_u64(&j, "evicted_messages", r->ustats.reasm.evicted);
	lw_json_u64(&j, "pending_messages", r->ustats.reasm.pending_msgs);
	lw_json_u64(&j, "held_messages", r->ustats.held);
	lw_json_u64(&j, "messages_without_dst", r->ustats.no_dst);
	lw_json_u64(&j, "bad_records", r->ustats.bad_records);
	lw_json_end(&j);
}

struct loop {
	struct lw_messages *ms;
	const struct lw_loop_opts *o;
	uint64_t turn_ns; /* when this turn's wait ended */
};

static void on_record(const struct lw_rec *r, size_t len, void *ud)
{
	struct loop *l = ud;

	if (l->o->health && r->type != LW_REC_CHUNK && l->turn_ns > r->ts_ns &&
	    l->turn_ns - r->ts_ns > l->o->health->lag_max_ns)
		l->o->health->lag_max_ns = l->turn_ns - r->ts_ns;
	if (l->ms)
		lw_messages_record(l->ms, r, len);
	if (r->type == LW_REC_EXEC && l->o->on_exec)
		l->o->on_exec((pid_t)r->pid, l->o->ud);
	if (r->type == LW_REC_VERDICT && len >= sizeof(struct lw_verdict_rec) && l->o->on_verdict)
		l->o->on_verdict((const struct lw_verdict_rec *)r, l->o->ud);
}

static void print_stats(const struct lw_loop_opts *o, const struct lw_loop_result *res)
{
	struct lw_buf b = {0};

	lw_loop_stats_json(res, &b);
	if (o->on_stats) {
		b.len--; /* reopen the object */
		o->on_stats(&b, o->ud);
		lw_buf_putc(&b, '}');
	}
	fprintf(stderr, "stats: %s\n", b.p);
	lw_buf_free(&b);
}

int lw_loop_run(const struct lw_loop_opts *o, struct lw_loop_result *res)
{
	struct lw_capture_opts co = o->cap;
	struct loop l = {.o = o};
	struct lw_capture *cap;
	sigset_t mask, old;
	int sfd, rc = 0;
	uint64_t start, deadline = 0, next_stats = 0, busy_from = 0;

	memset(res, 0, sizeof(*res));
	/* signals arrive through a file descriptor: no handler, no global flag */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (o->on_hup)
		sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		lw_err("signalfd: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	co.on_record = on_record;
	co.ud = &l;
	cap = lw_capture_open(&co);
	if (!cap) {
		close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 1;
	}
	if (o->on_capture)
		o->on_capture(cap, o->ud);
	l.ms = lw_messages_new(cap, o->on_message, o->ud, o->reasm_mem ? o->reasm_mem : 256u << 20);
	if (o->on_messages)
		o->on_messages(l.ms, o->ud);
	lw_info("ready, %zu targets hooked", lw_capture_ntargets(cap));
	start = lw_now_ns();
	if (o->duration_s > 0)
		deadline = start + (uint64_t)(o->duration_s * 1e9);
	if (o->stats_interval_s > 0)
		next_stats = start + (uint64_t)(o->stats_interval_s * 1e9);

	for (;;) {
		struct pollfd pf[2 + LW_LOOP_EXTRA_FDS] = {{lw_capture_fd(cap), POLLIN, 0},
							   {sfd, POLLIN, 0}};
		int nx = o->poll_fds ? o->poll_fds(pf + 2, LW_LOOP_EXTRA_FDS, o->ud) : 0;
		uint64_t now;
		int n;

		if (o->health && busy_from) {
			uint64_t busy = lw_now_ns() - busy_from;

			if (busy > o->health->busy_max_ns)
				o->health->busy_max_ns = busy;
		}
		n = poll(pf, (nfds_t)(2 + nx), 20); /* the kernel batches wakeups */
		busy_from = l.turn_ns = lw_now_ns();
		if (o->on_wake)
			o->on_wake(l.turn_ns, o->ud);
		if (n < 0 && errno != EINTR) {
			lw_err("poll: %s", strerror(errno));
			rc = 1;
			break;
		}
		/* also on timeout: records submitted without a wakeup wait */
		lw_capture_consume(cap);
		now = lw_now_ns();
		lw_messages_tick(l.ms, now);
		if (o->on_tick)
			o->on_tick(now, o->ud);
		if (nx) /* also on timeout: slow clients are dropped by the clock */
			o->on_poll(pf + 2, nx, now, o->ud);
		if (o->flush && (fflush(o->flush) != 0 || ferror(o->flush))) {
			res->output_failed = true;
			break;
		}
		if (n > 0 && (pf[1].revents & POLLIN)) {
			struct signalfd_siginfo si;

			/* consume it, or it fires for real when unblocked below */
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGHUP) {
				o->on_hup(o->ud);
				continue;
			}
			lw_info("%s received, stopping", strsignal((int)si.ssi_signo));
			break;
		}
		if (deadline && now >= deadline)
			break;
		if (next_stats && now >= next_stats) {
			next_stats = now + (uint64_t)(o->stats_interval_s * 1e9);
			lw_capture_stats(cap, res->kstats);
			res->ustats = lw_messages_stats(l.ms);
			print_stats(o, res);
		}
	}
	/* drain what the kernel already queued, then report it all */
	lw_capture_consume(cap);
	lw_messages_flush(l.ms);
	if (o->flush)
		fflush(o->flush);
	lw_capture_stats(cap, res->kstats);
	res->ustats = lw_messages_stats(l.ms);
	lw_messages_free(l.ms);
	l.ms = NULL;
	lw_capture_close(cap);
	if (o->on_stop)
		o->on_stop(o->ud);
	print_stats(o, res);
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
