/*
 * The agent's metrics endpoint: a minimal HTTP/1.1 server driven by the
 * agent's own poll loop (no thread, no locks). GET /metrics answers in the
 * Prometheus text format, GET /stats with the same snapshot as JSON.
 *
 * Nothing here may stall the agent: sockets are non-blocking, a request is
 * at most LW_MSERVER_REQ_MAX bytes, a connection lives at most
 * LW_MSERVER_TIMEOUT_MS, and at most LW_MSERVER_CONNS are open at once
 * (further clients wait in the listen backlog).
 *
 * Who may scrape (docs/running.md, "Who may read the metrics"):
 *  - a peer whose socket is on this host's network namespace (loopback, or
 *    the host's own addresses): its owner must be root or in allow_uids;
 *  - any other peer: its address must be in allow_from, which must be set
 *    for a listen address other than loopback.
 * Everyone else gets 403, counted.
 */
#ifndef LW_METRICS_HTTP_H
#define LW_METRICS_HTTP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "act/metrics.h"
#include "util/netaddr.h"

#define LW_METRICS_DEFAULT_LISTEN "127.0.0.1:9464"
#define LW_MSERVER_REQ_MAX 4096
#define LW_MSERVER_TIMEOUT_MS 3000
#define LW_MSERVER_CONNS 4

struct lw_mserver_opts {
	const char *listen; /* HOST:PORT (lw_hostport_parse) */
	const uid_t *allow_uids;
	size_t n_allow_uids;
	const struct lw_cidr *allow_from;
	size_t n_allow_from;
	/* fills a snapshot for each request */
	void (*render)(struct lw_metrics *m, void *ud);
	void *ud;
};

/* Responses by status; refusals by reason. */
enum { LW_MS_200, LW_MS_400, LW_MS_403, LW_MS_404, LW_MS_405, LW_MS_408, LW_MS_431, LW_MS__N };
extern const int lw_mserver_codes[LW_MS__N];
struct lw_mserver_stats {
	uint64_t responses[LW_MS__N];
	uint64_t refused_uid, refused_address, refused_unknown;
};

struct lw_mserver;

/* The address parses, and one other than loopback comes with allow_from.
 * 0, or -1 with a reason in err. Nothing is bound. */
int lw_mserver_check(const struct lw_mserver_opts *o, char *err, size_t errlen);
/* Binds and listens (after lw_mserver_check). NULL with a reason in err. */
struct lw_mserver *lw_mserver_open(const struct lw_mserver_opts *o, char *err, size_t errlen);
void lw_mserver_close(struct lw_mserver *s);
/* The descriptors to poll now (at most max, LW_MSERVER_CONNS + 1 suffice). */
int lw_mserver_pollfds(struct lw_mserver *s, struct pollfd *pf, int max);
/* After poll: serve what is ready (pf as filled above) and drop
 * connections past their deadline. */
void lw_mserver_handle(struct lw_mserver *s, const struct pollfd *pf, int n, uint64_t now_ns);
void lw_mserver_stats(const struct lw_mserver *s, struct lw_mserver_stats *st);
/* The address it listens on. */
const char *lw_mserver_addr(const struct lw_mserver *s);

/* The access rule alone. uid_rc: what lw_tcp_peer_uid returned for the
 * peer (0: a local socket owned by uid; -ENOENT: not a socket of this
 * host; else unknown). Returns 0 (allowed) or the refusal: 1 uid, 2
 * address, 3 unknown. */
int lw_mserver_decide(const struct lw_mserver_opts *o, int uid_rc, uid_t uid,
		      const struct sockaddr *peer);

#endif
