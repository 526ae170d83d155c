#include "messages.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/buf.h"
#include "util/hmap.h"

/* How long a finished message may wait for the record that names its socket
 * (memory-BIO stacks such as node write the ciphertext after SSL_write). */
#define HOLD_NS (150ULL * 1000 * 1000)
/* A message that receives no chunk for this long will never be completed. */
#define IDLE_NS (2ULL * 1000 * 1000 * 1000)
#define CONN_KEEP_NS (10ULL * 1000 * 1000 * 1000)
#define PROC_KEEP_NS (10ULL * 1000 * 1000 * 1000)

struct held {
	struct lw_msg m;
	unsigned char *data;
	uint64_t since_ns;
	struct held *next;
};

struct lw_messages {
	struct lw_capture *cap;
	lw_view_cb cb;
	void *ud;
	struct lw_reasm *reasm;
	struct lw_hmap conns; /* conn_id -> struct lw_conn_info */
	struct lw_procs procs;
	struct held *held_head, *held_tail;
	uint64_t now_ns, last_gc_ns;
	struct lw_messages_stats st;
};

uint64_t lw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void lw_addr_str(const struct lw_addr *a, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "";

	if (a->family == AF_INET) {
		inet_ntop(AF_INET, a->addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, a->port);
	} else if (a->family == AF_INET6) {
		inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, a->port);
	} else if (n) {
		out[0] = 0;
	}
}

static struct lw_conn_info *conn_get(struct lw_messages *ms, uint64_t id, pid_t pid)
{
	struct lw_conn_info *ci = lw_hmap_get(&ms->conns, id);

	if (!ci) {
		ci = lw_xcalloc(1, sizeof(*ci));
		ci->conn_id = id;
		ci->pid = pid;
		ci->fd = -1;
		lw_hmap_put(&ms->conns, id, ci);
	}
	ci->last_ns = ms->now_ns;
	return ci;
}

static void deliver(struct lw_messages *ms, const struct lw_msg *m)
{
	static const struct lw_conn_info none = { .fd = -1 };
	struct lw_conn_info *ci = lw_hmap_get(&ms->conns, m->conn_id);
	struct lw_msg_view v = {
		.m = m,
		.conn = ci ? ci : &none,
		.proc = lw_procs_get(&ms->procs, (pid_t)m->pid),
		.lib = lw_capture_target_path(ms->cap, m->target),
	};

	if (!v.conn->dst.family)
		ms->st.no_dst++;
	ms->cb(&v, ms->ud);
}

static bool conn_known(struct lw_messages *ms, uint64_t id)
{
	struct lw_conn_info *ci = lw_hmap_get(&ms->conns, id);

	return ci && ci->dst.family;
}

/* Deliver held messages in order, as long as the oldest one is ready. */
static void release(struct lw_messages *ms, bool all)
{
	struct held *h;

	while ((h = ms->held_head)) {
		if (!all && !conn_known(ms, h->m.conn_id) && ms->now_ns - h->since_ns < HOLD_NS)
			break;
		ms->held_head = h->next;
		if (!ms->held_head)
			ms->held_tail = NULL;
		h->m.data = h->data;
		deliver(ms, &h->m);
		free(h->data);
		free(h);
	}
}

static void on_msg(const struct lw_msg *m, void *ud)
{
	struct lw_messages *ms = ud;
	struct held *h;

	if (!ms->held_head && conn_known(ms, m->conn_id)) {
		deliver(ms, m);
		return;
	}
	/* keep order: once something waits, everything after it waits too */
	h = lw_xcalloc(1, sizeof(*h));
	h->m = *m;
	h->data = lw_xmalloc(m->captured);
	memcpy(h->data, m->data, m->captured);
	h->since_ns = ms->now_ns;
	if (ms->held_tail)
		ms->held_tail->next = h;
	else
		ms->held_head = h;
	ms->held_tail = h;
	ms->st.held++;
}

struct lw_messages *lw_messages_new(struct lw_capture *cap, lw_view_cb cb, void *ud,
				    size_t mem_limit)
{
	struct lw_messages *ms = lw_xcalloc(1, sizeof(*ms));

	ms->cap = cap;
	ms->cb = cb;
	ms->ud = ud;
	ms->reasm = lw_reasm_new(on_msg, ms, mem_limit);
	ms->now_ns = ms->last_gc_ns = lw_now_ns();
	return ms;
}

void lw_messages_record(struct lw_messages *ms, const struct lw_rec *r, size_t len)
{
	ms->now_ns = lw_now_ns();
	switch (r->type) {
	case LW_REC_CHUNK: {
		const struct lw_chunk *c = (const void *)r;

		if (len < sizeof(*c) || len - sizeof(*c) < c->len) {
			ms->st.bad_records++;
			return;
		}
		conn_get(ms, c->conn_id, (pid_t)r->pid);
		lw_reasm_chunk(ms->reasm, c, c + 1, ms->now_ns);
		break;
	}
	case LW_REC_CONN: {
		const struct lw_conn_rec *c = (const void *)r;
		struct lw_conn_info *ci;

		if (len < sizeof(*c)) {
			ms->st.bad_records++;
			return;
		}
		ci = conn_get(ms, c->conn_id, (pid_t)r->pid);
		ci->fd = c->fd;
		ci->target = c->target;
		if (c->dst.family) {
			ci->dst = c->dst;
			ci->src = c->src;
		}
		if (c->sni[0])
			snprintf(ci->sni, sizeof(ci->sni), "%.*s", LW_SNI_LEN - 1, c->sni);
		release(ms, false);
		break;
	}
	case LW_REC_CLOSE: {
		const struct lw_close_rec *c = (const void *)r;
		struct lw_conn_info *ci;

		if (len < sizeof(*c)) {
			ms->st.bad_records++;
			return;
		}
		lw_reasm_close(ms->reasm, c->conn_id);
		ci = lw_hmap_get(&ms->conns, c->conn_id);
		if (ci)
			ci->closed_ns = ms->now_ns;
		break;
	}
	case LW_REC_EXEC: {
		const struct lw_exec_rec *e = (const void *)r;
		char name[LW_PATH_LEN + 1];

		if (len < sizeof(*e)) {
			ms->st.bad_records++;
			return;
		}
		snprintf(name, sizeof(name), "%.*s", LW_PATH_LEN, e->filename);
		lw_procs_exec(&ms->procs, (pid_t)r->pid, name);
		break;
	}
	case LW_REC_EXIT:
		lw_procs_exit(&ms->procs, (pid_t)r->pid, ms->now_ns);
		break;
	default:
		break;
	}
}

static void gc_conns(struct lw_messages *ms)
{
	uint64_t *dead = lw_xmalloc((ms->conns.len + 1) * sizeof(*dead));
	size_t n = 0;

	for (size_t i = 0; i < ms->conns.cap; i++) {
		struct lw_conn_info *ci = ms->conns.slots[i].val;

		if (!ci)
			continue;
		if (ci->closed_ns ? ms->now_ns - ci->closed_ns >= CONN_KEEP_NS
				  : ms->now_ns - ci->last_ns >= 60 * CONN_KEEP_NS &&
					    kill(ci->pid, 0) != 0 && errno == ESRCH)
			dead[n++] = ci->conn_id;
	}
	for (size_t i = 0; i < n; i++)
		free(lw_hmap_del(&ms->conns, dead[i]));
	free(dead);
}

void lw_messages_tick(struct lw_messages *ms, uint64_t now_ns)
{
	ms->now_ns = now_ns;
	lw_reasm_expire(ms->reasm, now_ns, IDLE_NS);
	release(ms, false);
	if (now_ns - ms->last_gc_ns >= 5ULL * 1000 * 1000 * 1000) {
		ms->last_gc_ns = now_ns;
		gc_conns(ms);
		lw_procs_gc(&ms->procs, now_ns, PROC_KEEP_NS);
	}
}

void lw_messages_flush(struct lw_messages *ms)
{
	ms->now_ns = lw_now_ns();
	lw_reasm_flush(ms->reasm);
	release(ms, true);
}

struct lw_messages_stats lw_messages_stats(const struct lw_messages *ms)
{
	struct lw_messages_stats s = ms->st;

	s.reasm = lw_reasm_stats(ms->reasm);
	return s;
}

void lw_messages_free(struct lw_messages *ms)
{
	if (!ms)
		return;
	lw_messages_flush(ms);
	lw_reasm_free(ms->reasm);
	for (size_t i = 0; i < ms->conns.cap; i++)
		free(ms->conns.slots[i].val);
	lw_hmap_free(&ms->conns);
	lw_procs_free(&ms->procs);
	free(ms);
}
