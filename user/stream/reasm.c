#include "reasm.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/hmap.h"

struct pending {
	struct lw_msg m; /* data points into buf */
	unsigned char *buf;
	uint8_t *have; /* one flag per chunk index */
	uint32_t nchunks;
	uint32_t received;
	uint64_t last_ns;
	struct stream *st;
	struct pending *next_in_stream; /* sorted by seq */
	struct pending *lru_prev, *lru_next;
};

/* One direction of one connection. */
struct stream {
	uint64_t key;
	uint32_t next_seq; /* messages below this were finished */
	uint64_t last_ns;
	struct pending *head;
};

struct lw_reasm {
	lw_msg_cb cb;
	void *ud;
	size_t mem_limit;
	struct lw_hmap streams;
	struct pending *lru_head, *lru_tail; /* oldest first */
	uint64_t last_sweep_ns;
	struct lw_reasm_stats st;
};

static uint64_t stream_key(uint64_t conn_id, uint8_t dir)
{
	return (conn_id << 1) | (dir & 1);
}

struct lw_reasm *lw_reasm_new(lw_msg_cb cb, void *ud, size_t mem_limit)
{
	struct lw_reasm *r = lw_xcalloc(1, sizeof(*r));

	r->cb = cb;
	r->ud = ud;
	r->mem_limit = mem_limit;
	return r;
}

static void lru_unlink(struct lw_reasm *r, struct pending *p)
{
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else
		r->lru_head = p->lru_next;
	if (p->lru_next)
		p->lru_next->lru_prev = p->lru_prev;
	else
		r->lru_tail = p->lru_prev;
	p->lru_prev = p->lru_next = NULL;
}

static void lru_push(struct lw_reasm *r, struct pending *p)
{
	p->lru_prev = r->lru_tail;
	p->lru_next = NULL;
	if (r->lru_tail)
		r->lru_tail->lru_next = p;
	else
		r->lru_head = p;
	r->lru_tail = p;
}

/* Hand the message to the callback and free it. p must be its stream's head. */
static void finish(struct lw_reasm *r, struct pending *p)
{
	struct stream *st = p->st;
	uint32_t prefix = 0;

	while (prefix < p->nchunks && p->have[prefix])
		prefix++;
	p->m.captured = prefix >= p->nchunks ? p->m.cap_len : prefix * LW_CHUNK_MAX;
	p->m.lost = p->m.cap_len - p->received;
	p->m.truncated = p->m.captured < p->m.total_len;
	p->m.data = p->buf;
	if (p->m.lost) {
		r->st.incomplete++;
		r->st.lost_bytes += p->m.lost;
	} else {
		r->st.complete++;
	}
	st->head = p->next_in_stream;
	if (st->next_seq <= p->m.seq)
		st->next_seq = p->m.seq + 1;
	lru_unlink(r, p);
	r->st.pending_bytes -= p->m.cap_len;
	r->st.pending_msgs--;
	r->cb(&p->m, r->ud);
	free(p->buf);
	free(p->have);
	free(p);
	/* The stream itself stays: its next_seq recognises late chunks. It goes
	 * when the connection closes or has been idle for long. */
}

/* Finish the stream's messages up to and including `upto` (seq order). */
static void finish_upto(struct lw_reasm *r, struct stream *st, struct pending *upto)
{
	for (;;) {
		struct pending *h = st->head;
		bool last = h == upto;

		finish(r, h);
		if (last)
			return;
	}
}

static void evict_for(struct lw_reasm *r, size_t need)
{
	while (r->lru_head && r->st.pending_bytes + need > r->mem_limit) {
		struct pending *p = r->lru_head;

		r->st.evicted++;
		finish_upto(r, p->st, p);
	}
}

int lw_reasm_chunk(struct lw_reasm *r, const struct lw_chunk *c, const void *data, uint64_t now_ns)
{
	uint64_t key = stream_key(c->conn_id, c->dir);
	struct stream *st;
	struct pending *p, **pp;
	uint32_t idx;

	if (c->len == 0 || c->len > LW_CHUNK_MAX || c->offset % LW_CHUNK_MAX ||
	    c->cap_len > c->total_len || c->cap_len > LW_CAPTURE_CEIL || c->offset >= c->cap_len ||
	    c->len > c->cap_len - c->offset ||
	    (c->len != LW_CHUNK_MAX && c->offset + c->len != c->cap_len) || c->dir > 1) {
		r->st.bad_chunks++;
		return -1;
	}
	st = lw_hmap_get(&r->streams, key);
	if (st && c->seq < st->next_seq) {
		r->st.late_chunks++;
		return -1;
	}
	if (!st) {
		st = lw_xcalloc(1, sizeof(*st));
		st->key = key;
		st->last_ns = now_ns;
		lw_hmap_put(&r->streams, key, st);
	}
	for (pp = &st->head; *pp && (*pp)->m.seq < c->seq; pp = &(*pp)->next_in_stream)
		;
	p = *pp;
	if (p && p->m.seq == c->seq) {
		if (p->m.cap_len != c->cap_len || p->m.total_len != c->total_len) {
			r->st.bad_chunks++;
			return -1;
		}
	} else {
		evict_for(r, c->cap_len);
		if (c->seq < st->next_seq) { /* eviction finished it meanwhile */
			r->st.late_chunks++;
			return -1;
		}
		for (pp = &st->head; *pp && (*pp)->m.seq < c->seq; pp = &(*pp)->next_in_stream)
			;
		p = lw_xcalloc(1, sizeof(*p));
		p->m.conn_id = c->conn_id;
		p->m.cgroup_id = c->cgroup_id;
		p->m.ts_ns = c->h.ts_ns;
		p->m.pid = c->h.pid;
		p->m.tid = c->h.tid;
		p->m.seq = c->seq;
		p->m.total_len = c->total_len;
		p->m.cap_len = c->cap_len;
		p->m.target = c->target;
		p->m.dir = c->dir;
		p->m.func = c->func;
		p->m.blocked = (c->flags & LW_F_BLOCKED) != 0;
		memcpy(p->m.comm, c->comm, sizeof(p->m.comm));
		p->m.comm[LW_COMM_LEN - 1] = 0;
		p->nchunks = (c->cap_len + LW_CHUNK_MAX - 1) / LW_CHUNK_MAX;
		p->buf = lw_xmalloc(c->cap_len);
		p->have = lw_xcalloc(p->nchunks, 1);
		p->st = st;
		p->next_in_stream = *pp;
		*pp = p;
		lru_push(r, p);
		r->st.pending_bytes += c->cap_len;
		r->st.pending_msgs++;
	}
	idx = c->offset / LW_CHUNK_MAX;
	if (p->have[idx]) {
		r->st.dup_chunks++;
		return -1;
	}
	p->have[idx] = 1;
	memcpy(p->buf + c->offset, data, c->len);
	p->received += c->len;
	p->last_ns = now_ns;
	st->last_ns = now_ns;
	lru_unlink(r, p);
	lru_push(r, p);
	if (p->received == p->m.cap_len)
		finish_upto(r, st, p); /* earlier messages still missing chunks
					* will never get them: the ring is FIFO */
	return 0;
}

void lw_reasm_close(struct lw_reasm *r, uint64_t conn_id)
{
	for (uint8_t dir = 0; dir < 2; dir++) {
		struct stream *st = lw_hmap_del(&r->streams, stream_key(conn_id, dir));

		if (!st)
			continue;
		while (st->head)
			finish(r, st->head);
		free(st);
	}
}

/* Forget streams that have been quiet for a long time (connections whose
 * close we never saw: killed processes, leaked SSL objects). */
static void sweep_streams(struct lw_reasm *r, uint64_t now_ns, uint64_t max_idle_ns)
{
	uint64_t *dead = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < r->streams.cap; i++) {
		struct stream *st = r->streams.slots[i].val;

		if (!st || st->head || now_ns - st->last_ns < max_idle_ns)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			dead = lw_xrealloc(dead, cap * sizeof(*dead));
		}
		dead[n++] = st->key;
	}
	for (size_t i = 0; i < n; i++)
		free(lw_hmap_del(&r->streams, dead[i]));
	free(dead);
}

void lw_reasm_expire(struct lw_reasm *r, uint64_t now_ns, uint64_t max_idle_ns)
{
	while (r->lru_head && now_ns - r->lru_head->last_ns >= max_idle_ns) {
		struct pending *p = r->lru_head;

		finish_upto(r, p->st, p);
	}
	/* streams outlive their messages by much longer than messages wait */
	if (now_ns - r->last_sweep_ns >= 5000000000ULL) {
		r->last_sweep_ns = now_ns;
		sweep_streams(r, now_ns, 60 * max_idle_ns);
	}
}

void lw_reasm_flush(struct lw_reasm *r)
{
	while (r->lru_head)
		finish_upto(r, r->lru_head->st, r->lru_head);
}

struct lw_reasm_stats lw_reasm_stats(const struct lw_reasm *r)
{
	return r->st;
}

void lw_reasm_free(struct lw_reasm *r)
{
	if (!r)
		return;
	lw_reasm_flush(r);
	for (size_t i = 0; i < r->streams.cap; i++)
		free(r->streams.slots[i].val);
	lw_hmap_free(&r->streams);
	free(r);
}
