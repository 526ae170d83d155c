/*
 * Unit tests for user/stream/reasm.c: chunks (as the kernel sends them) ->
 * whole messages, with holes, duplicates, late and malformed chunks, memory
 * pressure and a randomised stress run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leakwatch.h"
#include "stream/reasm.h"

#define CM LW_CHUNK_MAX
#define NCHUNKS(cap) (((cap) + CM - 1) / CM)

/* ---- deterministic PRNG ------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rnd(uint64_t *s, uint32_t n) /* 0..n-1 */
{
	return (uint32_t)(splitmix(s) % n);
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&s);

		for (size_t k = 0; k < 8 && i + k < n; k++)
			p[i + k] = (unsigned char)(v >> (8 * k));
	}
}

/* ---- building chunks like the kernel does ------------------------------ */

struct piece {
	struct lw_chunk c;
	const unsigned char *data;
	void *owner; /* struct tmsg *, for the stress tests */
};

static struct lw_chunk mkchunk(uint64_t conn, uint8_t dir, uint32_t seq, uint32_t total,
			       uint32_t cap, uint32_t off, uint32_t len)
{
	struct lw_chunk c;

	memset(&c, 0, sizeof(c));
	c.h.type = LW_REC_CHUNK;
	c.h.pid = 1000 + (unsigned)(conn % 1000);
	c.h.tid = 5000 + (unsigned)(conn % 1000);
	c.h.ts_ns = 1000000000ULL + 1000ULL * seq + conn;
	c.conn_id = conn;
	c.cgroup_id = 4242 + conn;
	c.seq = seq;
	c.total_len = total;
	c.cap_len = cap;
	c.offset = off;
	c.len = len;
	c.target = 7;
	c.dir = dir;
	c.func = dir ? LW_FN_SSL_READ : LW_FN_SSL_WRITE_EX;
	c.flags = (off == 0 ? LW_F_FIRST : 0) | ((uint64_t)off + len >= cap ? LW_F_LAST : 0) |
		  (total > cap ? LW_F_TRUNCATED : 0);
	/* comm is not NUL-terminated when full: the reassembler must cope */
	memcpy(c.comm, "client-process-X", LW_COMM_LEN);
	return c;
}

/* A test message: its expected bytes and the chunks carrying them. */
struct tmsg {
	uint64_t conn;
	uint8_t dir;
	uint32_t seq, total, cap;
	unsigned char *data; /* cap bytes */
	struct piece *pc;
	size_t n;
	/* stress bookkeeping */
	bool *delivered; /* chunk i was fed and accepted */
	uint32_t accepted_bytes;
	int reported;
};

static uint64_t msg_seed(uint64_t conn, uint8_t dir, uint32_t seq)
{
	return (conn << 33) ^ ((uint64_t)dir << 32) ^ seq ^ 0x5eed5eedULL;
}

/* Split a message buffer into kernel-style chunks. */
static size_t split(struct piece *out, uint64_t conn, uint8_t dir, uint32_t seq,
		    const unsigned char *msg, uint32_t total, uint32_t cap)
{
	size_t n = 0;

	for (uint32_t off = 0; off < cap; off += CM) {
		uint32_t len = cap - off < CM ? cap - off : CM;

		out[n].c = mkchunk(conn, dir, seq, total, cap, off, len);
		out[n].data = msg + off;
		n++;
	}
	return n;
}

static void tmsg_init(struct tmsg *t, uint64_t conn, uint8_t dir, uint32_t seq, uint32_t total,
		      uint32_t cap)
{
	memset(t, 0, sizeof(*t));
	t->conn = conn;
	t->dir = dir;
	t->seq = seq;
	t->total = total;
	t->cap = cap;
	t->data = malloc(cap ? cap : 1);
	fill(t->data, cap, msg_seed(conn, dir, seq));
	t->pc = calloc(NCHUNKS(cap) + 1, sizeof(*t->pc));
	t->delivered = calloc(NCHUNKS(cap) + 1, sizeof(bool));
	assert_non_null(t->data);
	assert_non_null(t->pc);
	t->n = split(t->pc, conn, dir, seq, t->data, total, cap);
	for (size_t i = 0; i < t->n; i++)
		t->pc[i].owner = t;
}

static void tmsg_free(struct tmsg *t)
{
	free(t->data);
	free(t->pc);
	free(t->delivered);
}

/* ---- collecting finished messages -------------------------------------- */

struct got {
	struct lw_msg m; /* m.data points to our copy */
	unsigned char *copy;
};

struct sink {
	struct got *v;
	size_t n, cap;
	struct lw_reasm *r; /* for checks from inside the callback */
};

static void on_msg(const struct lw_msg *m, void *ud)
{
	struct sink *s = ud;
	struct got *g;

	assert_true(m->captured <= m->cap_len);
	assert_true(m->cap_len <= m->total_len);
	assert_true(m->lost <= m->cap_len);
	assert_non_null(m->data);
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		assert_non_null(s->v);
	}
	g = &s->v[s->n++];
	g->m = *m;
	g->copy = malloc(m->captured ? m->captured : 1);
	assert_non_null(g->copy);
	memcpy(g->copy, m->data, m->captured);
	g->m.data = g->copy;
}

static void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].copy);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static struct lw_reasm *new_reasm(struct sink *s, size_t mem_limit)
{
	memset(s, 0, sizeof(*s));
	s->r = lw_reasm_new(on_msg, s, mem_limit);
	assert_non_null(s->r);
	return s->r;
}

static int feed(struct lw_reasm *r, const struct piece *p, uint64_t now)
{
	return lw_reasm_chunk(r, &p->c, p->data, now);
}

static void feed_all(struct lw_reasm *r, const struct tmsg *t, uint64_t now)
{
	for (size_t i = 0; i < t->n; i++)
		assert_int_equal(feed(r, &t->pc[i], now), 0);
}

#define BIG_LIMIT ((size_t)1 << 30)

/* Expected stats, compared field by field for readable failures. */
static void check_stats(struct lw_reasm *r, uint64_t complete, uint64_t incomplete,
			uint64_t lost, uint64_t late, uint64_t dup, uint64_t bad, uint64_t evicted,
			uint64_t pend_msgs, uint64_t pend_bytes)
{
	struct lw_reasm_stats st = lw_reasm_stats(r);

	assert_int_equal(st.complete, complete);
	assert_int_equal(st.incomplete, incomplete);
	assert_int_equal(st.lost_bytes, lost);
	assert_int_equal(st.late_chunks, late);
	assert_int_equal(st.dup_chunks, dup);
	assert_int_equal(st.bad_chunks, bad);
	assert_int_equal(st.evicted, evicted);
	assert_int_equal(st.pending_msgs, pend_msgs);
	assert_int_equal(st.pending_bytes, pend_bytes);
}

/* A finished message that should be the complete t. */
static void check_complete(const struct got *g, const struct tmsg *t)
{
	assert_int_equal(g->m.conn_id, t->conn);
	assert_int_equal(g->m.dir, t->dir);
	assert_int_equal(g->m.seq, t->seq);
	assert_int_equal(g->m.total_len, t->total);
	assert_int_equal(g->m.cap_len, t->cap);
	assert_int_equal(g->m.captured, t->cap);
	assert_int_equal(g->m.lost, 0);
	assert_int_equal(g->m.truncated, t->cap < t->total);
	if (t->cap)
		assert_memory_equal(g->m.data, t->data, t->cap);
}

/* A finished message that should be t with holes. */
static void check_incomplete(const struct got *g, const struct tmsg *t, uint32_t captured,
			     uint32_t lost)
{
	assert_int_equal(g->m.conn_id, t->conn);
	assert_int_equal(g->m.dir, t->dir);
	assert_int_equal(g->m.seq, t->seq);
	assert_int_equal(g->m.total_len, t->total);
	assert_int_equal(g->m.cap_len, t->cap);
	assert_int_equal(g->m.captured, captured);
	assert_int_equal(g->m.lost, lost);
	assert_true(g->m.truncated);
	if (captured)
		assert_memory_equal(g->m.data, t->data, captured);
}

/* ---- whole messages, in order ------------------------------------------ */

static void one_message(uint32_t size, size_t want_chunks)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;

	tmsg_init(&t, 42, LW_DIR_EGRESS, 0, size, size);
	assert_int_equal(t.n, want_chunks);
	for (size_t i = 0; i < t.n; i++) {
		assert_int_equal(s.n, 0);
		assert_int_equal(feed(r, &t.pc[i], 100 + i), 0);
	}
	assert_int_equal(s.n, 1);
	check_complete(&s.v[0], &t);
	check_stats(r, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	assert_int_equal(s.n, 1); /* free flushes nothing more */
	sink_free(&s);
	tmsg_free(&t);
}

static void test_single_small(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;
	const struct lw_msg *m;

	tmsg_init(&t, 9, LW_DIR_INGRESS, 0, 100, 100);
	assert_int_equal(t.n, 1);
	assert_int_equal(feed(r, &t.pc[0], 555), 0);
	assert_int_equal(s.n, 1);
	check_complete(&s.v[0], &t);
	/* metadata is carried from the chunk header */
	m = &s.v[0].m;
	assert_int_equal(m->pid, t.pc[0].c.h.pid);
	assert_int_equal(m->tid, t.pc[0].c.h.tid);
	assert_int_equal(m->ts_ns, t.pc[0].c.h.ts_ns);
	assert_int_equal(m->cgroup_id, t.pc[0].c.cgroup_id);
	assert_int_equal(m->target, 7);
	assert_int_equal(m->func, LW_FN_SSL_READ);
	/* comm is always NUL-terminated, even if the kernel's was full */
	assert_int_equal(m->comm[LW_COMM_LEN - 1], 0);
	assert_memory_equal(m->comm, "client-process-", LW_COMM_LEN - 1);
	check_stats(r, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
}

static void test_one_byte(void **state)
{
	one_message(1, 1);
}

static void test_exact_chunk(void **state)
{
	one_message(CM, 1);
}

static void test_chunk_plus_one(void **state)
{
	one_message(CM + 1, 2);
}

static void test_two_exact_chunks(void **state)
{
	one_message(2 * CM, 2);
}

static void test_600k(void **state)
{
	one_message(600 * 1024, 38);
}

/* ---- out of order within a message ------------------------------------- */

static void test_reverse_order(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;

	tmsg_init(&t, 3, LW_DIR_EGRESS, 0, 600 * 1024, 600 * 1024);
	for (size_t i = t.n; i-- > 0;) {
		assert_int_equal(s.n, 0);
		assert_int_equal(feed(r, &t.pc[i], 10), 0);
		if (i) {
			struct lw_reasm_stats st = lw_reasm_stats(r);

			assert_int_equal(st.pending_msgs, 1);
			assert_int_equal(st.pending_bytes, t.cap);
		}
	}
	assert_int_equal(s.n, 1);
	check_complete(&s.v[0], &t);
	check_stats(r, 1, 0, 0, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
}

static void shuffle(struct piece **v, size_t n, uint64_t *seed)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd(seed, (uint32_t)i);
		struct piece *x = v[i - 1];

		v[i - 1] = v[j];
		v[j] = x;
	}
}

static void test_shuffled_order(void **state)
{
	static const uint32_t sizes[] = { 2 * CM + 5, 5 * CM, 100000, 600 * 1024 + 3 };

	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct sink s;
		struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
		struct tmsg t;
		struct piece **order;
		uint64_t rs = seed;
		uint32_t size = sizes[seed % 4];

		tmsg_init(&t, seed, (uint8_t)(seed & 1), (uint32_t)seed, size, size);
		order = calloc(t.n, sizeof(*order));
		for (size_t i = 0; i < t.n; i++)
			order[i] = &t.pc[i];
		shuffle(order, t.n, &rs);
		for (size_t i = 0; i < t.n; i++) {
			assert_int_equal(s.n, 0);
			assert_int_equal(feed(r, order[i], 10 + i), 0);
		}
		assert_int_equal(s.n, 1);
		check_complete(&s.v[0], &t);
		check_stats(r, 1, 0, 0, 0, 0, 0, 0, 0, 0);
		lw_reasm_free(r);
		sink_free(&s);
		tmsg_free(&t);
		free(order);
	}
}

/* ---- several connections and directions interleaved -------------------- */

static void test_interleaved_streams(void **state)
{
	enum { NCONN = 4, NMSG = 3 };
	static const uint32_t sizes[] = { 10, CM, 3 * CM + 17, 50000, 1, 70000 };
	struct tmsg t[NCONN][2][NMSG];
	size_t pos[NCONN][2] = { { 0 } }; /* next chunk, counted over all messages */
	size_t left = 0;
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	uint32_t next_seq[NCONN][2] = { { 0 } };
	uint64_t seed = 99;

	for (int c = 0; c < NCONN; c++)
		for (int d = 0; d < 2; d++)
			for (int q = 0; q < NMSG; q++) {
				uint32_t sz = sizes[(c * 5 + d * 3 + q) % 6];

				tmsg_init(&t[c][d][q], 100 + c, (uint8_t)d, (uint32_t)q, sz, sz);
				left += t[c][d][q].n;
			}
	/* one chunk at a time from a random stream; within a stream, messages
	 * in seq order, chunks within a message in reverse */
	while (left) {
		int c = (int)rnd(&seed, NCONN), d = (int)rnd(&seed, 2);
		size_t k = pos[c][d];
		int q = 0;

		while (q < NMSG && k >= t[c][d][q].n)
			k -= t[c][d][q++].n;
		if (q == NMSG)
			continue;
		assert_int_equal(feed(r, &t[c][d][q].pc[t[c][d][q].n - 1 - k], 1), 0);
		pos[c][d]++;
		left--;
	}
	assert_int_equal(s.n, NCONN * 2 * NMSG);
	for (size_t i = 0; i < s.n; i++) {
		const struct lw_msg *m = &s.v[i].m;
		int c = (int)(m->conn_id - 100), d = m->dir;

		assert_true(c >= 0 && c < NCONN && d >= 0 && d < 2);
		/* per (conn, dir) order is by seq, each exactly once */
		assert_int_equal(m->seq, next_seq[c][d]);
		next_seq[c][d]++;
		check_complete(&s.v[i], &t[c][d][m->seq]);
	}
	check_stats(r, NCONN * 2 * NMSG, 0, 0, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	for (int c = 0; c < NCONN; c++)
		for (int d = 0; d < 2; d++)
			for (int q = 0; q < NMSG; q++)
				tmsg_free(&t[c][d][q]);
}

/* Chunks of seq 1 arriving before seq 0 has completed: both complete. */
static void test_overlapping_messages_same_stream(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg a, b;

	tmsg_init(&a, 1, 0, 0, 3 * CM, 3 * CM);
	tmsg_init(&b, 1, 0, 1, 2 * CM + 1, 2 * CM + 1);
	assert_int_equal(feed(r, &a.pc[0], 1), 0);
	assert_int_equal(feed(r, &b.pc[2], 1), 0);
	assert_int_equal(feed(r, &a.pc[2], 1), 0);
	assert_int_equal(feed(r, &b.pc[0], 1), 0);
	assert_int_equal(s.n, 0);
	check_stats(r, 0, 0, 0, 0, 0, 0, 0, 2, a.cap + b.cap);
	assert_int_equal(feed(r, &a.pc[1], 1), 0);
	assert_int_equal(s.n, 1);
	check_complete(&s.v[0], &a);
	assert_int_equal(feed(r, &b.pc[1], 1), 0);
	assert_int_equal(s.n, 2);
	check_complete(&s.v[1], &b);
	check_stats(r, 2, 0, 0, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&a);
	tmsg_free(&b);
}

/* Both seq 0 and seq 1 pending; seq 1 is fed first by arrival but the
 * callback order must still be seq 0 then seq 1 (seq 0 incomplete). */
static void test_later_seq_inserted_before(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg m0, m1, m2;

	tmsg_init(&m0, 5, 1, 0, 2 * CM, 2 * CM);
	tmsg_init(&m1, 5, 1, 1, 2 * CM, 2 * CM);
	tmsg_init(&m2, 5, 1, 2, 2 * CM, 2 * CM);
	assert_int_equal(feed(r, &m1.pc[0], 1), 0);
	assert_int_equal(feed(r, &m0.pc[0], 1), 0);
	/* seq 2 completes: 0 and 1 are finished first, in seq order */
	feed_all(r, &m2, 2);
	assert_int_equal(s.n, 3);
	check_incomplete(&s.v[0], &m0, CM, CM);
	check_incomplete(&s.v[1], &m1, CM, CM);
	check_complete(&s.v[2], &m2);
	check_stats(r, 1, 2, 2 * CM, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&m0);
	tmsg_free(&m1);
	tmsg_free(&m2);
}

/* ---- holes ------------------------------------------------------------- */

/* msg: 3 chunks (16384, 16384, 7232) with the middle one missing */
#define HOLE_SIZE 40000u
#define HOLE_CAPTURED ((uint32_t)CM)
#define HOLE_LOST ((uint32_t)CM)

static void feed_with_hole(struct lw_reasm *r, const struct tmsg *t, uint64_t now)
{
	assert_int_equal(t->n, 3);
	assert_int_equal(feed(r, &t->pc[2], now), 0);
	assert_int_equal(feed(r, &t->pc[0], now), 0);
}

static void test_hole_finished_by_later_seq(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg m0, m1, other_dir, other_conn;

	tmsg_init(&m0, 7, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&m1, 7, 0, 1, 20000, 20000);
	tmsg_init(&other_dir, 7, 1, 5, 300, 300);
	tmsg_init(&other_conn, 8, 0, 3, 300, 300);
	feed_with_hole(r, &m0, 1);
	assert_int_equal(s.n, 0);
	check_stats(r, 0, 0, 0, 0, 0, 0, 0, 1, HOLE_SIZE);

	/* other streams completing do not touch it */
	feed_all(r, &other_dir, 2);
	feed_all(r, &other_conn, 2);
	assert_int_equal(s.n, 2);
	check_complete(&s.v[0], &other_dir);
	check_complete(&s.v[1], &other_conn);
	check_stats(r, 2, 0, 0, 0, 0, 0, 0, 1, HOLE_SIZE);

	/* the next seq partially arriving does not finish it either */
	assert_int_equal(feed(r, &m1.pc[1], 3), 0);
	assert_int_equal(s.n, 2);
	/* ...but completing does: the incomplete one first, then the later */
	assert_int_equal(feed(r, &m1.pc[0], 3), 0);
	assert_int_equal(s.n, 4);
	check_incomplete(&s.v[2], &m0, HOLE_CAPTURED, HOLE_LOST);
	check_complete(&s.v[3], &m1);
	check_stats(r, 3, 1, HOLE_LOST, 0, 0, 0, 0, 0, 0);

	/* the missing chunk turning up afterwards is late */
	assert_int_equal(feed(r, &m0.pc[1], 4), -1);
	assert_int_equal(s.n, 4);
	check_stats(r, 3, 1, HOLE_LOST, 1, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&m0);
	tmsg_free(&m1);
	tmsg_free(&other_dir);
	tmsg_free(&other_conn);
}

static void test_hole_finished_by_close(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg eg, in, other;

	tmsg_init(&eg, 11, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&in, 11, 1, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&other, 12, 0, 0, HOLE_SIZE, HOLE_SIZE);
	feed_with_hole(r, &eg, 1);
	feed_with_hole(r, &in, 1);
	feed_with_hole(r, &other, 1);
	assert_int_equal(s.n, 0);
	lw_reasm_close(r, 999); /* unknown connection: nothing */
	assert_int_equal(s.n, 0);
	lw_reasm_close(r, 11);
	assert_int_equal(s.n, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct tmsg *t = s.v[i].m.dir ? &in : &eg;

		check_incomplete(&s.v[i], t, HOLE_CAPTURED, HOLE_LOST);
	}
	assert_int_not_equal(s.v[0].m.dir, s.v[1].m.dir);
	check_stats(r, 0, 2, 2 * HOLE_LOST, 0, 0, 0, 0, 1, HOLE_SIZE);
	lw_reasm_close(r, 11); /* twice: nothing */
	assert_int_equal(s.n, 2);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 3);
	check_incomplete(&s.v[2], &other, HOLE_CAPTURED, HOLE_LOST);
	check_stats(r, 0, 3, 3 * HOLE_LOST, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&eg);
	tmsg_free(&in);
	tmsg_free(&other);
}

static void test_hole_finished_by_expire(void **state)
{
	const uint64_t t0 = 10000000000ULL, idle = 2000000000ULL;
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg a, b;

	tmsg_init(&a, 21, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&b, 22, 1, 0, HOLE_SIZE, HOLE_SIZE);
	feed_with_hole(r, &a, t0);
	feed_with_hole(r, &b, t0 + 1000000000ULL);
	lw_reasm_expire(r, t0 + idle - 1, idle);
	assert_int_equal(s.n, 0);
	lw_reasm_expire(r, t0 + idle, idle); /* a idle for exactly max */
	assert_int_equal(s.n, 1);
	check_incomplete(&s.v[0], &a, HOLE_CAPTURED, HOLE_LOST);
	check_stats(r, 0, 1, HOLE_LOST, 0, 0, 0, 0, 1, HOLE_SIZE);
	lw_reasm_expire(r, t0 + 2 * idle, idle);
	assert_int_equal(s.n, 2);
	check_incomplete(&s.v[1], &b, HOLE_CAPTURED, HOLE_LOST);
	check_stats(r, 0, 2, 2 * HOLE_LOST, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&a);
	tmsg_free(&b);
}

/* A chunk arriving resets the idle timer of its message. */
static void test_expire_refreshed_by_chunk(void **state)
{
	const uint64_t t0 = 10000000000ULL, idle = 2000000000ULL;
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg a;

	tmsg_init(&a, 23, 0, 0, 4 * CM, 4 * CM);
	assert_int_equal(feed(r, &a.pc[0], t0), 0);
	assert_int_equal(feed(r, &a.pc[3], t0 + idle - 10), 0);
	lw_reasm_expire(r, t0 + idle + 10, idle);
	assert_int_equal(s.n, 0);
	lw_reasm_expire(r, t0 + 2 * idle, idle);
	assert_int_equal(s.n, 1);
	check_incomplete(&s.v[0], &a, CM, 2 * CM);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&a);
}

static void test_hole_finished_by_flush(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg m[3];

	for (int i = 0; i < 3; i++) {
		tmsg_init(&m[i], 31, 0, (uint32_t)i, HOLE_SIZE, HOLE_SIZE);
		feed_with_hole(r, &m[i], 1);
	}
	assert_int_equal(s.n, 0);
	check_stats(r, 0, 0, 0, 0, 0, 0, 0, 3, 3 * HOLE_SIZE);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 3);
	for (int i = 0; i < 3; i++)
		check_incomplete(&s.v[i], &m[i], HOLE_CAPTURED, HOLE_LOST);
	check_stats(r, 0, 3, 3 * HOLE_LOST, 0, 0, 0, 0, 0, 0);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 3);
	lw_reasm_free(r);
	sink_free(&s);
	for (int i = 0; i < 3; i++)
		tmsg_free(&m[i]);
}

/* lw_reasm_free finishes what is pending (and leaks nothing under ASan). */
static void test_free_with_pending(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg a, b;

	tmsg_init(&a, 41, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&b, 42, 1, 0, 100, 100);
	feed_with_hole(r, &a, 1);
	feed_all(r, &b, 1);
	lw_reasm_free(r);
	assert_int_equal(s.n, 2);
	check_complete(&s.v[0], &b);
	check_incomplete(&s.v[1], &a, HOLE_CAPTURED, HOLE_LOST);
	lw_reasm_free(NULL);
	sink_free(&s);
	tmsg_free(&a);
	tmsg_free(&b);
}

static void test_missing_first_chunk(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;

	tmsg_init(&t, 51, 1, 0, HOLE_SIZE, HOLE_SIZE);
	assert_int_equal(feed(r, &t.pc[1], 1), 0);
	assert_int_equal(feed(r, &t.pc[2], 1), 0);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 1);
	check_incomplete(&s.v[0], &t, 0, CM);
	check_stats(r, 0, 1, CM, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
}

static void test_missing_last_chunk(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;

	tmsg_init(&t, 52, 0, 0, HOLE_SIZE, HOLE_SIZE);
	assert_int_equal(feed(r, &t.pc[0], 1), 0);
	assert_int_equal(feed(r, &t.pc[1], 1), 0);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 1);
	check_incomplete(&s.v[0], &t, 2 * CM, HOLE_SIZE - 2 * CM);
	check_stats(r, 0, 1, HOLE_SIZE - 2 * CM, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
}

/* ---- late and duplicate chunks ----------------------------------------- */

static void test_late_chunk(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t, next;

	tmsg_init(&t, 61, 0, 0, 3 * CM, 3 * CM);
	tmsg_init(&next, 61, 0, 1, 10, 10);
	feed_all(r, &t, 1);
	assert_int_equal(s.n, 1);
	for (size_t i = 0; i < t.n; i++)
		assert_int_equal(feed(r, &t.pc[i], 2), -1);
	assert_int_equal(s.n, 1);
	check_stats(r, 1, 0, 0, t.n, 0, 0, 0, 0, 0);
	/* the stream goes on normally */
	feed_all(r, &next, 3);
	assert_int_equal(s.n, 2);
	check_complete(&s.v[1], &next);
	/* a late single-chunk message of an older seq: rejected as well */
	assert_int_equal(feed(r, &t.pc[0], 4), -1);
	check_stats(r, 2, 0, 0, t.n + 1, 0, 0, 0, 0, 0);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 2);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
	tmsg_free(&next);
}

static void test_duplicate_chunk(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;
	unsigned char *junk = malloc(CM);
	struct piece dup;

	memset(junk, 0xee, CM);
	tmsg_init(&t, 71, 1, 0, HOLE_SIZE, HOLE_SIZE);
	assert_int_equal(feed(r, &t.pc[0], 1), 0);
	/* same header, different bytes: ignored, first copy kept */
	dup = t.pc[0];
	dup.data = junk;
	assert_int_equal(feed(r, &dup, 1), -1);
	assert_int_equal(feed(r, &t.pc[0], 1), -1);
	assert_int_equal(feed(r, &t.pc[2], 1), 0);
	dup = t.pc[2];
	dup.data = junk;
	assert_int_equal(feed(r, &dup, 1), -1);
	check_stats(r, 0, 0, 0, 0, 3, 0, 0, 1, HOLE_SIZE);
	assert_int_equal(feed(r, &t.pc[1], 1), 0);
	assert_int_equal(s.n, 1);
	check_complete(&s.v[0], &t);
	check_stats(r, 1, 0, 0, 0, 3, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
	free(junk);
}

/* ---- malformed headers ------------------------------------------------- */

static void test_malformed(void **state)
{
	static unsigned char buf[2 * CM + 16];
	struct {
		const char *what;
		uint32_t total, cap, off, len;
		uint8_t dir;
	} bad[] = {
		{ "len 0", 100, 100, 0, 0, 0 },
		{ "len > chunk max", 40000, 40000, 0, CM + 1, 0 },
		{ "len way too big", 0xffffffffu, 0xffffffffu, 0, 0xffffffffu, 0 },
		{ "offset not multiple of chunk max", 150, 150, 100, 50, 0 },
		{ "offset+len > cap_len", 20000, 20000, CM, CM, 0 },
		{ "offset+len > cap_len (first)", 1000, 1000, 0, 1001, 0 },
		{ "offset >= cap_len", 2 * CM, CM, CM, 10, 0 },
		{ "offset near 2^32 wraps", 40000, 40000, 0xffffc000u, CM, 0 },
		{ "cap_len > total_len", 100, 200, 0, 200, 0 },
		{ "short non-final chunk", 40000, 40000, 0, 1000, 0 },
		{ "short non-final middle chunk", 40000, 40000, CM, 1000, 0 },
		{ "dir 2", 100, 100, 0, 100, 2 },
		{ "dir 255", 100, 100, 0, 100, 255 },
		{ "cap_len > capture ceiling", LW_CAPTURE_CEIL + 1, LW_CAPTURE_CEIL + 1, 0, CM, 0 },
		{ "cap_len 0", 0, 0, 0, 1, 0 },
	};
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	uint64_t nbad = 0;

	fill(buf, sizeof(buf), 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lw_chunk c = mkchunk(81, 0, (uint32_t)i, bad[i].total, bad[i].cap, bad[i].off,
					    bad[i].len);

		c.dir = bad[i].dir;
		if (lw_reasm_chunk(r, &c, buf, 1) != -1)
			fail_msg("malformed chunk accepted: %s", bad[i].what);
		nbad++;
		if (lw_reasm_stats(r).bad_chunks != nbad)
			fail_msg("malformed chunk not counted as bad: %s", bad[i].what);
	}
	assert_int_equal(s.n, 0);
	check_stats(r, 0, 0, 0, 0, 0, nbad, 0, 0, 0);
	lw_reasm_flush(r);
	assert_int_equal(s.n, 0);
	lw_reasm_free(r);
	sink_free(&s);
}

/* cap_len / total_len of a chunk disagreeing with an earlier chunk of the
 * same message: rejected, and the message still completes from good chunks. */
static void test_disagreeing_lengths(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg t;
	struct piece p;

	tmsg_init(&t, 91, 1, 4, HOLE_SIZE, HOLE_SIZE);
	assert_int_equal(feed(r, &t.pc[0], 1), 0);
	/* total_len differs (cap_len the same) */
	p = t.pc[1];
	p.c.total_len = HOLE_SIZE + 1;
	assert_int_equal(feed(r, &p, 1), -1);
	/* cap_len and total_len both differ, chunk valid on its own */
	p = t.pc[1];
	p.c.total_len = p.c.cap_len = 50000;
	assert_int_equal(feed(r, &p, 1), -1);
	/* cap_len smaller: this would be the last chunk of a 20000-byte message */
	p = t.pc[1];
	p.c.cap_len = 20000;
	p.c.len = 20000 - CM;
	assert_int_equal(feed(r, &p, 1), -1);
	check_stats(r, 0, 0, 0, 0, 0, 3, 0, 1, HOLE_SIZE);
	assert_int_equal(s.n, 0);
	assert_int_equal(feed(r, &t.pc[1], 1), 0);
	assert_int_equal(feed(r, &t.pc[2], 1), 0);
	assert_int_equal(s.n, 1);
	check_complete(&s.v[0], &t);
	check_stats(r, 1, 0, 0, 0, 0, 3, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&t);
}

/* ---- truncated by capture_max ------------------------------------------ */

static void test_truncated_by_capture_max(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct tmsg a, b, c;

	tmsg_init(&a, 101, 0, 0, 100000, 20000); /* two chunks captured */
	tmsg_init(&b, 101, 0, 1, 5000, 1000);    /* one */
	tmsg_init(&c, 101, 0, 2, 1u << 30, 2 * CM); /* exactly two full chunks */
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 1);
	assert_int_equal(c.n, 2);
	assert_int_equal(feed(r, &a.pc[1], 1), 0);
	assert_int_equal(feed(r, &a.pc[0], 1), 0);
	feed_all(r, &b, 1);
	feed_all(r, &c, 1);
	assert_int_equal(s.n, 3);
	check_complete(&s.v[0], &a);
	check_complete(&s.v[1], &b);
	check_complete(&s.v[2], &c);
	for (int i = 0; i < 3; i++) {
		assert_true(s.v[i].m.truncated);
		assert_int_equal(s.v[i].m.lost, 0);
	}
	assert_int_equal(s.v[0].m.captured, 20000);
	assert_int_equal(s.v[0].m.total_len, 100000);
	/* truncation by capture_max is not loss */
	check_stats(r, 3, 0, 0, 0, 0, 0, 0, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&a);
	tmsg_free(&b);
	tmsg_free(&c);
}

/* ---- memory limit ------------------------------------------------------ */

#define LIMIT (100 * 1024)

static void check_mem_bound(struct lw_reasm *r, uint32_t max_msg)
{
	struct lw_reasm_stats st = lw_reasm_stats(r);

	assert_true(st.pending_bytes <= (uint64_t)LIMIT + max_msg);
}

static void test_mem_limit_evicts_oldest(void **state)
{
	enum { N = 10 };
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, LIMIT);
	struct tmsg m[N];

	for (int i = 0; i < N; i++) {
		tmsg_init(&m[i], 200 + i, 0, 0, HOLE_SIZE, HOLE_SIZE);
		assert_int_equal(feed(r, &m[i].pc[0], 1 + i), 0);
		check_mem_bound(r, HOLE_SIZE);
		assert_true(lw_reasm_stats(r).pending_bytes <= LIMIT);
	}
	/* two 40000-byte messages fit in 100 KiB, three do not */
	assert_int_equal(s.n, N - 2);
	for (int i = 0; i < N - 2; i++)
		check_incomplete(&s.v[i], &m[i], CM, HOLE_SIZE - CM);
	check_stats(r, 0, N - 2, (N - 2) * (HOLE_SIZE - CM), 0, 0, 0, N - 2, 2, 2 * HOLE_SIZE);

	/* the rest of an evicted message is late */
	assert_int_equal(feed(r, &m[0].pc[1], 20), -1);
	assert_int_equal(feed(r, &m[0].pc[2], 20), -1);
	/* the survivors complete normally */
	assert_int_equal(feed(r, &m[N - 1].pc[2], 21), 0);
	assert_int_equal(feed(r, &m[N - 1].pc[1], 21), 0);
	assert_int_equal(s.n, N - 1);
	check_complete(&s.v[N - 2], &m[N - 1]);
	lw_reasm_flush(r);
	assert_int_equal(s.n, N);
	check_incomplete(&s.v[N - 1], &m[N - 2], CM, HOLE_SIZE - CM);
	check_stats(r, 1, N - 1, (N - 1) * (HOLE_SIZE - CM), 2, 0, 0, N - 2, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	for (int i = 0; i < N; i++)
		tmsg_free(&m[i]);
}

/* "Oldest" is least recently fed, not first created. */
static void test_mem_limit_lru(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, LIMIT);
	struct tmsg a, b, c;

	tmsg_init(&a, 301, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&b, 302, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&c, 303, 1, 0, HOLE_SIZE, HOLE_SIZE);
	assert_int_equal(feed(r, &a.pc[0], 1), 0);
	assert_int_equal(feed(r, &b.pc[0], 2), 0);
	assert_int_equal(feed(r, &a.pc[2], 3), 0); /* a is now the most recent */
	assert_int_equal(feed(r, &c.pc[0], 4), 0);
	assert_int_equal(s.n, 1);
	check_incomplete(&s.v[0], &b, CM, HOLE_SIZE - CM);
	check_stats(r, 0, 1, HOLE_SIZE - CM, 0, 0, 0, 1, 2, 2 * HOLE_SIZE);
	assert_int_equal(feed(r, &a.pc[1], 5), 0);
	assert_int_equal(s.n, 2);
	check_complete(&s.v[1], &a);
	lw_reasm_free(r);
	assert_int_equal(s.n, 3);
	check_incomplete(&s.v[2], &c, CM, HOLE_SIZE - CM);
	sink_free(&s);
	tmsg_free(&a);
	tmsg_free(&b);
	tmsg_free(&c);
}

/* Evicting the oldest finishes the earlier messages of its stream too
 * (callbacks stay in seq order). */
static void test_mem_limit_evicts_stream_prefix(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, LIMIT);
	struct tmsg m0, m1, x;

	tmsg_init(&m0, 401, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&m1, 401, 0, 1, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&x, 402, 0, 0, HOLE_SIZE, HOLE_SIZE);
	assert_int_equal(feed(r, &m1.pc[0], 1), 0); /* oldest */
	assert_int_equal(feed(r, &m0.pc[0], 2), 0);
	assert_int_equal(feed(r, &x.pc[0], 3), 0); /* evicts m1, hence m0 first */
	assert_int_equal(s.n, 2);
	check_incomplete(&s.v[0], &m0, CM, HOLE_SIZE - CM);
	check_incomplete(&s.v[1], &m1, CM, HOLE_SIZE - CM);
	assert_int_equal(lw_reasm_stats(r).evicted, 1);
	assert_int_equal(lw_reasm_stats(r).pending_msgs, 1);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&m0);
	tmsg_free(&m1);
	tmsg_free(&x);
}

/* A single message larger than the limit still gets through whole. */
static void test_mem_limit_oversized_message(void **state)
{
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, LIMIT);
	struct tmsg a, big;

	tmsg_init(&a, 501, 0, 0, HOLE_SIZE, HOLE_SIZE);
	tmsg_init(&big, 502, 1, 0, 200000, 200000);
	assert_int_equal(feed(r, &a.pc[0], 1), 0);
	for (size_t i = 0; i < big.n; i++) {
		assert_int_equal(feed(r, &big.pc[i], 2), 0);
		check_mem_bound(r, 200000);
	}
	assert_int_equal(s.n, 2);
	check_incomplete(&s.v[0], &a, CM, HOLE_SIZE - CM);
	check_complete(&s.v[1], &big);
	check_stats(r, 1, 1, HOLE_SIZE - CM, 0, 0, 0, 1, 0, 0);
	lw_reasm_free(r);
	sink_free(&s);
	tmsg_free(&a);
	tmsg_free(&big);
}

/* ---- randomised stress ------------------------------------------------- */

enum { S_CONNS = 50, S_MSGS = 1000 };

struct stress {
	struct tmsg *m;    /* S_MSGS */
	size_t *by_stream[S_CONNS * 2]; /* message indices in seq order */
	size_t nby[S_CONNS * 2];
	struct piece **q[S_CONNS * 2]; /* chunk delivery order per stream */
	size_t nq[S_CONNS * 2], qpos[S_CONNS * 2];
	size_t max_cap;
};

static uint32_t random_size(uint64_t *rs)
{
	uint32_t k = rnd(rs, 100);

	if (k < 60)
		return 1 + rnd(rs, 2000);
	if (k < 70)
		return CM * (1 + rnd(rs, 4)); /* exact multiples */
	if (k < 92)
		return 1 + rnd(rs, 60000);
	return 60000 + rnd(rs, 200000);
}

static void stress_build(struct stress *S, uint64_t seed)
{
	uint64_t rs = seed;
	uint32_t next_seq[S_CONNS * 2] = { 0 };

	memset(S, 0, sizeof(*S));
	S->m = calloc(S_MSGS, sizeof(*S->m));
	for (size_t i = 0; i < S_CONNS * 2; i++) {
		S->by_stream[i] = calloc(S_MSGS, sizeof(size_t));
		S->q[i] = NULL;
	}
	for (size_t i = 0; i < S_MSGS; i++) {
		uint32_t conn = rnd(&rs, S_CONNS), dir = rnd(&rs, 2), sidx = conn * 2 + dir;
		uint32_t cap = random_size(&rs), total = cap;

		if (rnd(&rs, 20) == 0) /* longer than capture_max */
			total = cap + 1 + rnd(&rs, 100000);
		/* conn ids like the kernel's: a counter from 1; one huge one */
		tmsg_init(&S->m[i], conn == 0 ? (1ULL << 62) + 12345 : conn, (uint8_t)dir,
			  next_seq[sidx]++, total, cap);
		S->by_stream[sidx][S->nby[sidx]++] = i;
		if (cap > S->max_cap)
			S->max_cap = cap;
	}
	/* per stream: messages in seq order, chunks of each shuffled; sometimes
	 * the first chunk of message N+1 overtakes the last chunk of N */
	for (size_t sidx = 0; sidx < S_CONNS * 2; sidx++) {
		size_t total = 0;

		for (size_t k = 0; k < S->nby[sidx]; k++)
			total += S->m[S->by_stream[sidx][k]].n;
		S->q[sidx] = calloc(total + 1, sizeof(struct piece *));
		for (size_t k = 0; k < S->nby[sidx]; k++) {
			struct tmsg *t = &S->m[S->by_stream[sidx][k]];
			size_t start = S->nq[sidx];

			for (size_t i = 0; i < t->n; i++)
				S->q[sidx][S->nq[sidx]++] = &t->pc[i];
			shuffle(S->q[sidx] + start, t->n, &rs);
			if (k > 0 && t->n >= 2 && rnd(&rs, 3) == 0) {
				struct piece *x = S->q[sidx][start - 1];

				S->q[sidx][start - 1] = S->q[sidx][start];
				S->q[sidx][start] = x;
			}
		}
	}
}

static void stress_free(struct stress *S)
{
	for (size_t i = 0; i < S_MSGS; i++)
		tmsg_free(&S->m[i]);
	free(S->m);
	for (size_t i = 0; i < S_CONNS * 2; i++) {
		free(S->by_stream[i]);
		free(S->q[i]);
	}
}

static struct tmsg *stress_find(struct stress *S, const struct lw_msg *m)
{
	uint64_t conn = m->conn_id == (1ULL << 62) + 12345 ? 0 : m->conn_id;
	size_t sidx = conn * 2 + m->dir;

	assert_true(conn < S_CONNS);
	assert_true(m->seq < S->nby[sidx]);
	return &S->m[S->by_stream[sidx][m->seq]];
}

/* Feed every stream's queue in random interleaving. drop_pct: chunks
 * skipped (never fed) as if lost in the ring. */
static void stress_run(struct stress *S, struct lw_reasm *r, uint64_t seed, unsigned drop_pct,
		       size_t limit)
{
	size_t active[S_CONNS * 2], nactive = 0;
	uint64_t rs = seed ^ 0xabcdef;
	uint64_t now = 1000;

	for (size_t i = 0; i < S_CONNS * 2; i++)
		if (S->nq[i])
			active[nactive++] = i;
	while (nactive) {
		size_t a = rnd(&rs, (uint32_t)nactive), sidx = active[a];
		struct piece *p = S->q[sidx][S->qpos[sidx]++];
		struct tmsg *t = p->owner;

		if (S->qpos[sidx] == S->nq[sidx])
			active[a] = active[--nactive];
		if (drop_pct && rnd(&rs, 100) < drop_pct)
			continue;
		if (feed(r, p, now++) == 0) {
			size_t idx = p->c.offset / CM;

			assert_false(t->delivered[idx]);
			t->delivered[idx] = true;
			t->accepted_bytes += p->c.len;
		}
		if (limit) {
			struct lw_reasm_stats st = lw_reasm_stats(r);

			assert_true(st.pending_bytes <= limit + S->max_cap);
		}
	}
}

/* Check every finished message against what was accepted for it. */
static void stress_verify(struct stress *S, struct sink *s, bool expect_all_complete)
{
	uint32_t next_min[S_CONNS * 2] = { 0 };
	uint64_t lost = 0, complete = 0, incomplete = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct lw_msg *m = &s->v[i].m;
		struct tmsg *t = stress_find(S, m);
		size_t sidx = (t->conn == (1ULL << 62) + 12345 ? 0 : t->conn) * 2 + t->dir;
		uint32_t prefix = 0;

		assert_int_equal(m->conn_id, t->conn);
		assert_int_equal(t->reported, 0);
		t->reported++;
		/* per stream: strictly increasing seq */
		assert_true(m->seq >= next_min[sidx]);
		next_min[sidx] = m->seq + 1;
		assert_int_equal(m->total_len, t->total);
		assert_int_equal(m->cap_len, t->cap);
		while (prefix < t->n && t->delivered[prefix])
			prefix++;
		prefix = prefix == t->n ? t->cap : prefix * CM;
		assert_int_equal(m->captured, prefix);
		assert_int_equal(m->lost, t->cap - t->accepted_bytes);
		assert_int_equal(m->truncated, m->captured < m->total_len);
		if (m->captured)
			assert_memory_equal(m->data, t->data, m->captured);
		lost += m->lost;
		if (m->lost)
			incomplete++;
		else
			complete++;
	}
	/* every message that had an accepted chunk was reported, once */
	for (size_t i = 0; i < S_MSGS; i++) {
		struct tmsg *t = &S->m[i];

		if (t->accepted_bytes)
			assert_int_equal(t->reported, 1);
		else
			assert_int_equal(t->reported, 0);
	}
	{
		struct lw_reasm_stats st = lw_reasm_stats(s->r);

		assert_int_equal(st.complete, complete);
		assert_int_equal(st.incomplete, incomplete);
		assert_int_equal(st.lost_bytes, lost);
		assert_int_equal(st.pending_msgs, 0);
		assert_int_equal(st.pending_bytes, 0);
		assert_int_equal(st.bad_chunks, 0);
		assert_int_equal(st.dup_chunks, 0);
	}
	if (expect_all_complete) {
		assert_int_equal(s->n, S_MSGS);
		assert_int_equal(complete, S_MSGS);
		assert_int_equal(lw_reasm_stats(s->r).late_chunks, 0);
		assert_int_equal(lw_reasm_stats(s->r).evicted, 0);
	}
}

static void test_stress_all_complete(void **state)
{
	for (uint64_t seed = 1; seed <= 2; seed++) {
		struct stress S;
		struct sink s;
		struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);

		stress_build(&S, seed);
		stress_run(&S, r, seed, 0, 0);
		/* everything completed as it arrived: nothing left to flush */
		assert_int_equal(lw_reasm_stats(r).pending_msgs, 0);
		stress_verify(&S, &s, true);
		lw_reasm_flush(r);
		assert_int_equal(s.n, S_MSGS);
		lw_reasm_free(r);
		sink_free(&s);
		stress_free(&S);
	}
}

static void test_stress_with_drops(void **state)
{
	struct stress S;
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, BIG_LIMIT);
	struct lw_reasm_stats st;

	stress_build(&S, 7);
	stress_run(&S, r, 7, 5, 0);
	lw_reasm_flush(r);
	stress_verify(&S, &s, false);
	st = lw_reasm_stats(r);
	print_message("drops: %zu messages, complete %llu, incomplete %llu, lost %llu bytes\n",
		      s.n, (unsigned long long)st.complete, (unsigned long long)st.incomplete,
		      (unsigned long long)st.lost_bytes);
	assert_true(st.incomplete > 0);
	/* chunks of a stream only arrive after its earlier messages' last
	 * chunks, so nothing is ever late here */
	assert_int_equal(st.late_chunks, 0);
	assert_int_equal(st.evicted, 0);
	lw_reasm_free(r);
	sink_free(&s);
	stress_free(&S);
}

static void test_stress_memory_pressure(void **state)
{
	const size_t limit = 256 * 1024;
	struct stress S;
	struct sink s;
	struct lw_reasm *r = new_reasm(&s, limit);
	struct lw_reasm_stats st;

	stress_build(&S, 11);
	stress_run(&S, r, 11, 0, limit);
	lw_reasm_flush(r);
	stress_verify(&S, &s, false);
	st = lw_reasm_stats(r);
	print_message("memory: %zu messages, complete %llu, incomplete %llu, evicted %llu, "
		      "late chunks %llu\n",
		      s.n, (unsigned long long)st.complete, (unsigned long long)st.incomplete,
		      (unsigned long long)st.evicted, (unsigned long long)st.late_chunks);
	assert_true(st.evicted > 0);
	lw_reasm_free(r);
	sink_free(&s);
	stress_free(&S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_small),
		cmocka_unit_test(test_one_byte),
		cmocka_unit_test(test_exact_chunk),
		cmocka_unit_test(test_chunk_plus_one),
		cmocka_unit_test(test_two_exact_chunks),
		cmocka_unit_test(test_600k),
		cmocka_unit_test(test_reverse_order),
		cmocka_unit_test(test_shuffled_order),
		cmocka_unit_test(test_interleaved_streams),
		cmocka_unit_test(test_overlapping_messages_same_stream),
		cmocka_unit_test(test_later_seq_inserted_before),
		cmocka_unit_test(test_hole_finished_by_later_seq),
		cmocka_unit_test(test_hole_finished_by_close),
		cmocka_unit_test(test_hole_finished_by_expire),
		cmocka_unit_test(test_expire_refreshed_by_chunk),
		cmocka_unit_test(test_hole_finished_by_flush),
		cmocka_unit_test(test_free_with_pending),
		cmocka_unit_test(test_missing_first_chunk),
		cmocka_unit_test(test_missing_last_chunk),
		cmocka_unit_test(test_late_chunk),
		cmocka_unit_test(test_duplicate_chunk),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_disagreeing_lengths),
		cmocka_unit_test(test_truncated_by_capture_max),
		cmocka_unit_test(test_mem_limit_evicts_oldest),
		cmocka_unit_test(test_mem_limit_lru),
		cmocka_unit_test(test_mem_limit_evicts_stream_prefix),
		cmocka_unit_test(test_mem_limit_oversized_message),
		cmocka_unit_test(test_stress_all_complete),
		cmocka_unit_test(test_stress_with_drops),
		cmocka_unit_test(test_stress_memory_pressure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
