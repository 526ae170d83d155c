#include "act/metrics_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/peeruid.h"

const int lw_mserver_codes[LW_MS__N] = {200, 400, 403, 404, 405, 408, 431};
static const char *const reasons[LW_MS__N] = {
	"OK",
	"Bad Request",
	"Forbidden",
	"Not Found",
	"Method Not Allowed",
	"Request Timeout",
	"Request Header Fields Too Large",
};

enum refusal { REF_NONE, REF_UID, REF_ADDRESS, REF_UNKNOWN };

struct conn {
	int fd; /* -1: free slot */
	uint64_t deadline;
	int refusal;
	char peer[64];
	uid_t uid;
	char req[LW_MSERVER_REQ_MAX];
	size_t rlen;
	struct lw_buf resp; /* non-empty: answering */
	size_t off;
};

struct lw_mserver {
	struct lw_mserver_opts o;
	uid_t *uids;
	struct lw_cidr *from;
	int lfd;
	char addr[64];
	struct conn c[LW_MSERVER_CONNS];
	struct lw_mserver_stats st;
	bool warned_refusal;
};

int lw_mserver_decide(const struct lw_mserver_opts *o, int uid_rc, uid_t uid,
		      const struct sockaddr *peer)
{
	if (uid_rc == 0) {
		if (uid == 0)
			return REF_NONE;
		for (size_t i = 0; i < o->n_allow_uids; i++)
			if (o->allow_uids[i] == uid)
				return REF_NONE;
		return REF_UID;
	}
	/* a loopback peer that sock_diag cannot find is not "remote": refuse */
	if (uid_rc != -ENOENT || lw_sockaddr_is_loopback(peer))
		return REF_UNKNOWN;
	for (size_t i = 0; i < o->n_allow_from; i++)
		if (lw_cidr_match(&o->allow_from[i], peer))
			return REF_NONE;
	return REF_ADDRESS;
}

int lw_mserver_check(const struct lw_mserver_opts *o, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (lw_hostport_parse(o->listen, &ss, &len)) {
		snprintf(err, errlen,
			 "metrics: bad listen address '%s' (expected IP:PORT, [IPv6]:PORT)",
			 o->listen ? o->listen : "");
		return -1;
	}
	if (!lw_sockaddr_is_loopback((struct sockaddr *)&ss) && !o->n_allow_from) {
		snprintf(
			err, errlen,
			"metrics: %s is not a loopback address: listening there needs "
			"metrics.allow_from (the addresses allowed to scrape) in the configuration",
			o->listen);
		return -1;
	}
	return 0;
}

struct lw_mserver *lw_mserver_open(const struct lw_mserver_opts *o, char *err, size_t errlen)
{
	struct lw_mserver *s = lw_xcalloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	s->lfd = -1;
	for (int i = 0; i < LW_MSERVER_CONNS; i++)
		s->c[i].fd = -1;
	if (lw_mserver_check(o, err, errlen))
		goto fail;
	lw_hostport_parse(o->listen, &ss, &len);
	s->o = *o;
	s->uids = lw_xmalloc((o->n_allow_uids + 1) * sizeof(*s->uids));
	if (o->n_allow_uids)
		memcpy(s->uids, o->allow_uids, o->n_allow_uids * sizeof(*s->uids));
	s->from = lw_xmalloc((o->n_allow_from + 1) * sizeof(*s->from));
	if (o->n_allow_from)
		memcpy(s->from, o->allow_from, o->n_allow_from * sizeof(*s->from));
	s->o.allow_uids = s->uids;
	s->o.allow_from = s->from;
	s->o.listen = NULL;
	lw_sockaddr_str((struct sockaddr *)&ss, s->addr, sizeof(s->addr));
	s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&ss, len) || listen(s->lfd, 16)) {
		snprintf(err, errlen, "metrics: cannot listen on %s: %s", s->addr, strerror(errno));
		goto fail;
	}
	return s;
fail:
	lw_mserver_close(s);
	return NULL;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		char junk[4096];

		/* what the client sent and we did not read (a refused or
		 * oversized request) would turn our close into a reset, which
		 * may cost the client the answer it has not read yet */
		for (int i = 0; i < 16 && recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
			;
		close(c->fd);
	}
	c->fd = -1;
	lw_buf_free(&c->resp);
	c->off = c->rlen = 0;
}

void lw_mserver_close(struct lw_mserver *s)
{
	if (!s)
		return;
	for (int i = 0; i < LW_MSERVER_CONNS; i++)
		conn_close(&s->c[i]);
	if (s->lfd >= 0)
		close(s->lfd);
	free(s->uids);
	free(s->from);
	free(s);
}

const char *lw_mserver_addr(const struct lw_mserver *s)
{
	return s->addr;
}

void lw_mserver_stats(const struct lw_mserver *s, struct lw_mserver_stats *st)
{
	*st = s->st;
}

int lw_mserver_pollfds(struct lw_mserver *s, struct pollfd *pf, int max)
{
	int n = 0;
	bool free_slot = false;

	for (int i = 0; i < LW_MSERVER_CONNS && n < max; i++) {
		if (s->c[i].fd < 0) {
			free_slot = true;
			continue;
		}
		pf[n].fd = s->c[i].fd;
		pf[n].events = s->c[i].resp.len ? POLLOUT : POLLIN;
		pf[n++].revents = 0;
	}
	/* with every slot busy new clients wait in the backlog */
	if (free_slot && n < max) {
		pf[n].fd = s->lfd;
		pf[n].events = POLLIN;
		pf[n++].revents = 0;
	}
	return n;
}

static void refuse_log(struct lw_mserver *s, const struct conn *c)
{
	static const char *const why[] = {"", "its user is neither root nor in metrics.allow_uids",
					  "its address is not in metrics.allow_from",
					  "it cannot be identified"};

	if (c->refusal == REF_UID)
		s->st.refused_uid++;
	else if (c->refusal == REF_ADDRESS)
		s->st.refused_address++;
	else
		s->st.refused_unknown++;
	/* once, then counted: a client polling every second must not fill the log */
	if (s->warned_refusal)
		return;
	s->warned_refusal = true;
	if (c->refusal == REF_UID)
		lw_warn("metrics: refused %s (uid %u): %s; further refusals are only counted",
			c->peer, (unsigned)c->uid, why[REF_UID]);
	else
		lw_warn("metrics: refused %s: %s; further refusals are only counted", c->peer,
			why[c->refusal]);
}

static void answer(struct lw_mserver *s, struct conn *c);
static void on_writable(struct conn *c);

static void do_accept(struct lw_mserver *s, uint64_t now_ns)
{
	for (int i = 0; i < LW_MSERVER_CONNS; i++) {
		struct conn *c = &s->c[i];
		struct sockaddr_storage peer, local;
		socklen_t pl = sizeof(peer), ll = sizeof(local);
		int rc;

		if (c->fd >= 0)
			continue;
		c->fd = accept4(s->lfd, (struct sockaddr *)&peer, &pl,
				SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c->fd < 0)
			return; /* EAGAIN: nobody else is waiting */
		c->deadline = now_ns + (uint64_t)LW_MSERVER_TIMEOUT_MS * 1000000ULL;
		c->rlen = c->off = 0;
		c->uid = (uid_t)-1;
		lw_sockaddr_str((struct sockaddr *)&peer, c->peer, sizeof(c->peer));
		/* who it is, now, while the peer's socket surely exists */
		rc = getsockname(c->fd, (struct sockaddr *)&local, &ll)
			     ? -errno
			     : lw_tcp_peer_uid((struct sockaddr *)&peer, (struct sockaddr *)&local,
					       &c->uid);
		c->refusal = lw_mserver_decide(&s->o, rc, c->uid, (struct sockaddr *)&peer);
		if (rc && rc != -ENOENT)
			lw_debug("metrics: cannot identify %s: %s", c->peer, strerror(-rc));
		/* refused at once, without waiting for a request: whoever may
		 * not read the numbers cannot hold a connection slot either */
		if (c->refusal != REF_NONE) {
			answer(s, c);
			on_writable(c);
		}
	}
}

/* The answer, whole, in c->resp; sent as the socket takes it. */
static void respond(struct lw_mserver *s, struct conn *c, int code, const char *type,
		    const struct lw_buf *body, bool head)
{
	size_t n = body ? body->len : 0;

	lw_buf_reset(&c->resp);
	lw_buf_printf(&c->resp,
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		      lw_mserver_codes[code], reasons[code], type, n);
	if (n && !head)
		lw_buf_put(&c->resp, body->p, n);
	c->off = 0;
}

static void answer(struct lw_mserver *s, struct conn *c)
{
	static const char *const text = "text/plain; charset=utf-8";
	struct lw_buf body = {0};
	char method[16], target[256], version[16];
	bool head = false, json = false;
	int code;

	c->req[c->rlen] = 0;
	if (c->refusal != REF_NONE) {
		code = LW_MS_403;
	} else if (sscanf(c->req, "%15s %255s %15s", method, target, version) != 3 ||
		   strncmp(version, "HTTP/1.", 7)) {
		code = LW_MS_400;
	} else {
		head = !strcmp(method, "HEAD");
		target[strcspn(target, "?")] = 0;
		json = !strcmp(target, "/stats");
		if (strcmp(method, "GET") && !head)
			code = LW_MS_405;
		else if (json || !strcmp(target, "/metrics"))
			code = LW_MS_200;
		else
			code = LW_MS_404;
	}
	/* counted before the snapshot is taken: a scrape sees itself */
	s->st.responses[code]++;
	if (code == LW_MS_403)
		refuse_log(s, c);
	if (code != LW_MS_200) {
		static const char *const msg[LW_MS__N] = {
			[LW_MS_400] = "bad request\n",
			[LW_MS_403] =
				"forbidden: root, metrics.allow_uids or metrics.allow_from only\n",
			[LW_MS_404] =
				"not found: GET /metrics (Prometheus text) or /stats (JSON)\n",
			[LW_MS_405] = "only GET and HEAD\n",
		};

		lw_buf_puts(&body, msg[code]);
		respond(s, c, code, text, &body, head);
	} else {
		struct lw_metrics *m = lw_metrics_new();

		s->o.render(m, s->o.ud);
		if (json)
			lw_metrics_json(m, &body);
		else
			lw_metrics_text(m, &body);
		lw_metrics_free(m);
		respond(s, c, code, json ? "application/json" : LW_METRICS_CONTENT_TYPE, &body,
			head);
	}
	lw_buf_free(&body);
}

static void on_writable(struct conn *c)
{
	ssize_t k = send(c->fd, c->resp.p + c->off, c->resp.len - c->off, MSG_NOSIGNAL);

	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k <= 0) {
		conn_close(c);
		return;
	}
	c->off += (size_t)k;
	if (c->off == c->resp.len)
		conn_close(c);
}

static void on_readable(struct lw_mserver *s, struct conn *c)
{
	ssize_t k = recv(c->fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen, 0);

	if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(c); /* gone before asking */
		return;
	}
	if (k < 0)
		return;
	c->rlen += (size_t)k;
	c->req[c->rlen] = 0;
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
		answer(s, c);
	} else if (c->rlen >= sizeof(c->req) - 1) {
		s->st.responses[LW_MS_431]++;
		respond(s, c, LW_MS_431, "text/plain; charset=utf-8", NULL, false);
	} else {
		return;
	}
	on_writable(c); /* most answers fit the socket buffer at once */
}

void lw_mserver_handle(struct lw_mserver *s, const struct pollfd *pf, int n, uint64_t now_ns)
{
	for (int i = 0; i < n; i++) {
		if (!pf[i].revents)
			continue;
		if (pf[i].fd == s->lfd) {
			do_accept(s, now_ns);
			continue;
		}
		for (int k = 0; k < LW_MSERVER_CONNS; k++) {
			struct conn *c = &s->c[k];

			if (c->fd != pf[i].fd)
				continue;
			if (c->resp.len)
				on_writable(c);
			else if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
				on_readable(s, c);
			break;
		}
	}
	for (int k = 0; k < LW_MSERVER_CONNS; k++) {
		struct conn *c = &s->c[k];

		if (c->fd >= 0 && now_ns >= c->deadline) {
			if (!c->resp.len)
				s->st.responses[LW_MS_408]++;
			conn_close(c); /* too slow: no answer is owed */
		}
	}
}
