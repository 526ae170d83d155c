/*
 * Messages with their identity: reassembled plaintext joined with what is
 * known about its connection (socket, destination, SNI) and its process
 * (executable, cgroup, service). The stage every consumer of captured
 * traffic (trace, the agent's decoders) sits behind.
 */
#ifndef LW_MESSAGES_H
#define LW_MESSAGES_H

#include <stdint.h>
#include <sys/types.h>

#include "capture/capture.h"
#include "identity/proc.h"
#include "stream/reasm.h"

struct lw_conn_info {
	uint64_t conn_id;
	pid_t pid;
	int fd; /* -1 while unknown */
	uint32_t target;
	struct lw_addr dst, src;
	char sni[LW_SNI_LEN];
	uint64_t last_ns, closed_ns;
};

struct lw_msg_view {
	const struct lw_msg *m;
	const struct lw_conn_info *conn; /* zeroed fields when unknown */
	const struct lw_proc *proc;
	const char *lib; /* the hooked file */
};

typedef void (*lw_view_cb)(const struct lw_msg_view *v, void *ud);

struct lw_messages_stats {
	struct lw_reasm_stats reasm;
	uint64_t held;         /* messages delayed waiting for their socket */
	uint64_t no_dst;       /* reported without a destination after waiting */
	uint64_t bad_records;  /* malformed ring records */
};

struct lw_messages;

struct lw_messages *lw_messages_new(struct lw_capture *cap, lw_view_cb cb, void *ud,
				    size_t mem_limit);
/* Feed every ring-buffer record (struct lw_capture_opts.on_record). */
void lw_messages_record(struct lw_messages *ms, const struct lw_rec *r, size_t len);
/* Periodic work: finish idle messages, release held ones, forget the dead. */
void lw_messages_tick(struct lw_messages *ms, uint64_t now_ns);
/* Report everything still pending (at exit). */
void lw_messages_flush(struct lw_messages *ms);
struct lw_messages_stats lw_messages_stats(const struct lw_messages *ms);
void lw_messages_free(struct lw_messages *ms);

/* "10.0.0.2:443" / "[2001:db8::1]:443" / "" when family is 0. */
void lw_addr_str(const struct lw_addr *a, char *out, size_t n);
uint64_t lw_now_ns(void); /* CLOCK_MONOTONIC, like bpf_ktime_get_ns */

#endif
