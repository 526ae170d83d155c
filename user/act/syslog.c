#include "act/syslog.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"

#define FACILITY_AUTH 4 /* security/authorization messages (RFC 5424 table 1) */

struct lw_syslog {
	int fd;
	char hostname[256];
	char procid[16];
	uint64_t sent, failed;
	struct lw_buf msg;
};

static struct lw_syslog *fail(char *err, size_t n, const char *target, const char *why, int e)
{
	snprintf(err, n, "syslog %s: %s%s%s", target, why, e ? ": " : "", e ? strerror(e) : "");
	return NULL;
}

struct lw_syslog *lw_syslog_open(const char *target, char *err, size_t errlen)
{
	struct lw_syslog *s;
	int fd = -1;

	if (!strncmp(target, "unix:", 5)) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};

		if (strlen(target + 5) >= sizeof(a.sun_path) || !target[5])
			return fail(err, errlen, target, "bad socket path", 0);
		strcpy(a.sun_path, target + 5);
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			int e = errno;

			if (fd >= 0)
				close(fd);
			return fail(err, errlen, target, "cannot connect", e);
		}
	} else if (!strncmp(target, "udp://", 6)) {
		char host[256], *port;
		struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
		int rc;

		snprintf(host, sizeof(host), "%s", target + 6);
		port = strrchr(host, ':');
		if (!port || port == host || !port[1])
			return fail(err, errlen, target, "expected udp://HOST:PORT", 0);
		*port++ = 0;
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = 0;
		}
		rc = getaddrinfo(host, port, &hints, &res);
		if (rc)
			return fail(err, errlen, target, gai_strerror(rc), 0);
		fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
			int e = errno;

			if (fd >= 0)
				close(fd);
			freeaddrinfo(res);
			return fail(err, errlen, target, "cannot connect", e);
		}
		freeaddrinfo(res);
	} else {
		return fail(err, errlen, target, "expected udp://HOST:PORT or unix:PATH", 0);
	}
	s = lw_xcalloc(1, sizeof(*s));
	s->fd = fd;
	if (gethostname(s->hostname, sizeof(s->hostname) - 1) != 0 || !s->hostname[0])
		strcpy(s->hostname, "-");
	snprintf(s->procid, sizeof(s->procid), "%d", (int)getpid());
	return s;
}

int lw_syslog_send(struct lw_syslog *s, const char *json, size_t n, const char *action,
		   int64_t ts_ns)
{
	int sev = !strcmp(action, "block") ? 2 : !strcmp(action, "would_block") ? 3 : 4;
	time_t secs = (time_t)(ts_ns / 1000000000);
	struct tm tm;
	char ts[40];

	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* HEADER: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, no
	 * structured data, then the alert's JSON as the message (UTF-8, BOM
	 * as RFC 5424 asks for a UTF-8 MSG) */
	lw_buf_reset(&s->msg);
	lw_buf_printf(&s->msg, "<%d>1 %s.%06lldZ %s leakwatch %s alert - \xef\xbb\xbf",
		      FACILITY_AUTH * 8 + sev, ts, (long long)(ts_ns % 1000000000) / 1000,
		      s->hostname, s->procid);
	lw_buf_put(&s->msg, json, n);
	if (send(s->fd, s->msg.p, s->msg.len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)s->msg.len) {
		s->failed++;
		return -1;
	}
	s->sent++;
	return 0;
}

uint64_t lw_syslog_sent(const struct lw_syslog *s)
{
	return s ? s->sent : 0;
}

uint64_t lw_syslog_failed(const struct lw_syslog *s)
{
	return s ? s->failed : 0;
}

void lw_syslog_close(struct lw_syslog *s)
{
	if (!s)
		return;
	close(s->fd);
	lw_buf_free(&s->msg);
	free(s);
}
