#include "act/webhook.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"

#define IO_TIMEOUT_MS 2000

struct item {
	char *body;
	size_t n;
};

struct lw_webhook {
	char host[256], port[16], path[1024];
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item q[LW_WEBHOOK_QUEUE];
	size_t head, len;
	bool stop;
	struct lw_webhook_stats st;
};

static int parse_url(struct lw_webhook *w, const char *url)
{
	const char *p = url + 7, *slash, *colon;
	size_t hn;

	if (strncmp(url, "http://", 7))
		return -1;
	slash = strchr(p, '/');
	hn = slash ? (size_t)(slash - p) : strlen(p);
	colon = memchr(p, ':', hn);
	if (!hn || hn >= sizeof(w->host) || (colon && colon == p))
		return -1;
	snprintf(w->host, sizeof(w->host), "%.*s", (int)(colon ? colon - p : (long)hn), p);
	snprintf(w->port, sizeof(w->port), "%.*s", colon ? (int)(hn - (colon - p) - 1) : 2,
		 colon ? colon + 1 : "80");
	snprintf(w->path, sizeof(w->path), "%s", slash ? slash : "/");
	return w->port[0] ? 0 : -1;
}

static int wait_fd(int fd, short ev)
{
	struct pollfd pf = {fd, ev, 0};

	return poll(&pf, 1, IO_TIMEOUT_MS) == 1 ? 0 : -1;
}

/* One POST; true on a 2xx answer. Every step bounded by IO_TIMEOUT_MS. */
static bool deliver(struct lw_webhook *w, const struct item *it)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char head[1536], resp[64];
	bool ok = false;
	int fd = -1, e = 0;
	socklen_t el = sizeof(e);
	size_t off = 0, total;
	struct lw_buf req = {0};
	ssize_t k;

	if (getaddrinfo(w->host, w->port, &hints, &res) != 0)
		return false;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out;
	if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 &&
	    (errno != EINPROGRESS || wait_fd(fd, POLLOUT) ||
	     getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) || e))
		goto out;
	snprintf(head, sizeof(head),
		 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\nUser-Agent: leakwatch\r\n\r\n",
		 w->path, w->host, it->n);
	lw_buf_puts(&req, head);
	lw_buf_put(&req, it->body, it->n);
	total = req.len;
	while (off < total) {
		k = send(fd, req.p + off, total - off, MSG_NOSIGNAL);
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EAGAIN && !wait_fd(fd, POLLOUT))
			continue;
		goto out;
	}
	/* the status line is enough: "HTTP/1.x 2xx" */
	off = 0;
	while (off < 12) {
		if (wait_fd(fd, POLLIN))
			goto out;
		k = recv(fd, resp + off, sizeof(resp) - 1 - off, 0);
		if (k <= 0)
			goto out;
		off += (size_t)k;
	}
	resp[off] = 0;
	ok = !strncmp(resp, "HTTP/1.", 7) && resp[9] == '2';
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	lw_buf_free(&req);
	return ok;
}

static void *worker(void *arg)
{
	struct lw_webhook *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct item it;
		int tries = 0;

		while (!w->len && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->len || w->stop)
			break; /* at close, what is left is counted as dropped */
		it = w->q[w->head];
		pthread_mutex_unlock(&w->mu);
		for (;;) {
			bool ok = deliver(w, &it);

			pthread_mutex_lock(&w->mu);
			if (ok) {
				w->st.sent++;
				break;
			}
			if (++tries >= LW_WEBHOOK_TRIES || w->stop) {
				w->st.failed++;
				break;
			}
			w->st.retries++;
			{
				/* 0.5 s, 1, 2, 4, 8: woken early only by close */
				struct timespec until;

				clock_gettime(CLOCK_REALTIME, &until);
				until.tv_nsec += (500000000L << (tries - 1)) % 1000000000L;
				until.tv_sec += (500000000L << (tries - 1)) / 1000000000L +
						until.tv_nsec / 1000000000L;
				until.tv_nsec %= 1000000000L;
				pthread_cond_timedwait(&w->cv, &w->mu, &until);
			}
			pthread_mutex_unlock(&w->mu);
		}
		/* still holding the lock: the item leaves the queue */
		free(it.body);
		w->head = (w->head + 1) % LW_WEBHOOK_QUEUE;
		w->len--;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct lw_webhook *lw_webhook_open(const char *url, char *err, size_t errlen)
{
	struct lw_webhook *w = lw_xcalloc(1, sizeof(*w));
	sigset_t all, old;
	int rc;

	if (parse_url(w, url) != 0) {
		snprintf(err, errlen, "webhook %s: expected http://HOST[:PORT]/PATH", url);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	/* the worker takes no signal: SIGINT/SIGTERM/SIGHUP are the main
	 * loop's (signalfd), and a thread that left them unblocked would die
	 * of them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thr, NULL, worker, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "webhook %s: cannot start its thread", url);
		free(w);
		return NULL;
	}
	return w;
}

void lw_webhook_post(struct lw_webhook *w, const char *json, size_t n)
{
	pthread_mutex_lock(&w->mu);
	if (w->len == LW_WEBHOOK_QUEUE || w->stop) {
		w->st.dropped++;
	} else {
		struct item *it = &w->q[(w->head + w->len) % LW_WEBHOOK_QUEUE];

		it->body = lw_xmalloc(n);
		memcpy(it->body, json, n);
		it->n = n;
		w->len++;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

void lw_webhook_stats(struct lw_webhook *w, struct lw_webhook_stats *st)
{
	if (!w) {
		memset(st, 0, sizeof(*st));
		return;
	}
	pthread_mutex_lock(&w->mu);
	*st = w->st;
	pthread_mutex_unlock(&w->mu);
}

void lw_webhook_close(struct lw_webhook *w, int linger_ms, struct lw_webhook_stats *final)
{
	if (!w)
		return;
	for (int waited = 0; waited < linger_ms; waited += 20) {
		size_t left;

		pthread_mutex_lock(&w->mu);
		left = w->len;
		pthread_mutex_unlock(&w->mu);
		if (!left)
			break;
		usleep(20000);
	}
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thr, NULL);
	/* whatever the worker did not take: dropped, and counted */
	w->st.dropped += w->len;
	while (w->len) {
		free(w->q[w->head].body);
		w->head = (w->head + 1) % LW_WEBHOOK_QUEUE;
		w->len--;
	}
	if (final)
		*final = w->st;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}
