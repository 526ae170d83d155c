/*
 * Message reassembly: chunks from the ring buffer -> whole messages.
 *
 * The kernel sends each captured SSL read/write as chunks of at most
 * LW_CHUNK_MAX bytes at fixed offsets. A message is complete when every byte
 * up to cap_len has arrived. Chunks lost to a full ring buffer leave holes:
 * such a message is finished as incomplete (marked truncated, the lost bytes
 * counted) when a later message of the same stream completes, when its
 * connection closes, when it has been idle too long, or when pending memory
 * runs over the limit. Nothing is dropped without being counted.
 */
#ifndef LW_REASM_H
#define LW_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leakwatch.h"

struct lw_msg {
	uint64_t conn_id;
	uint64_t cgroup_id;
	uint64_t ts_ns; /* CLOCK_MONOTONIC of the SSL call's return */
	uint32_t pid, tid;
	uint32_t seq;
	uint32_t total_len; /* bytes the SSL call moved */
	uint32_t cap_len;   /* bytes the kernel tried to capture */
	uint32_t captured;  /* contiguous bytes from offset 0 in data */
	uint32_t lost;	    /* bytes of cap_len that never arrived */
	uint32_t target;
	uint8_t dir, func;
	bool truncated; /* captured < total_len */
	bool blocked;	/* a content verdict refused its write: it never left */
	char comm[LW_COMM_LEN];
	const unsigned char *data;
};

/* Called for every finished message, complete or not, in seq order per
 * (connection, direction). The message and its data are only valid during
 * the call. */
typedef void (*lw_msg_cb)(const struct lw_msg *m, void *ud);

struct lw_reasm_stats {
	uint64_t complete;	/* messages with every byte up to cap_len */
	uint64_t incomplete;	/* messages finished with holes */
	uint64_t lost_bytes;	/* bytes missing from incomplete messages */
	uint64_t late_chunks;	/* chunks of a message already finished */
	uint64_t dup_chunks;	/* chunks received twice (ignored) */
	uint64_t bad_chunks;	/* inconsistent headers (ignored) */
	uint64_t evicted;	/* incomplete messages finished for memory */
	uint64_t pending_bytes; /* currently buffered */
	uint64_t pending_msgs;
};

struct lw_reasm;

/* mem_limit: bytes of message buffers held at once before the oldest pending
 * message is finished early. */
struct lw_reasm *lw_reasm_new(lw_msg_cb cb, void *ud, size_t mem_limit);
void lw_reasm_free(struct lw_reasm *r);

/* Feed one chunk; data holds c->len bytes. Returns 0, or -1 when the chunk
 * was rejected (counted in bad/late/dup). */
int lw_reasm_chunk(struct lw_reasm *r, const struct lw_chunk *c, const void *data, uint64_t now_ns);
/* The connection is gone: finish whatever is pending for it. */
void lw_reasm_close(struct lw_reasm *r, uint64_t conn_id);
/* Finish messages that saw no chunk for max_idle_ns. */
void lw_reasm_expire(struct lw_reasm *r, uint64_t now_ns, uint64_t max_idle_ns);
/* Finish everything (at exit). */
void lw_reasm_flush(struct lw_reasm *r);
struct lw_reasm_stats lw_reasm_stats(const struct lw_reasm *r);

#endif
