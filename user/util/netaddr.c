#include "util/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lw_hostport_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *port;
	unsigned long p;
	char *end;
	size_t hn;

	memset(ss, 0, sizeof(*ss));
	if (!s || !*s)
		return -1;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -1;
		hn = (size_t)(close - s - 1);
		if (hn >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hn);
		port = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -1; /* an IPv6 address needs its brackets */
		hn = (size_t)(colon - s);
		if (hn >= sizeof(host))
			return -1;
		memcpy(host, s, hn);
		port = colon + 1;
	}
	host[hn] = 0;
	errno = 0;
	p = strtoul(port, &end, 10);
	if (errno || *end || end == port || *port < '0' || *port > '9' || p == 0 || p > 65535)
		return -1;
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (*s != '[') {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)p);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		*len = sizeof(*a);
	}
	return 0;
}

void lw_sockaddr_str(const struct sockaddr *sa, char *out, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(out, n, "%s:%u", a, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(out, n, "[%s]:%u", a, ntohs(s->sin6_port));
	} else {
		snprintf(out, n, "?");
	}
}

/* The IPv4 address of an AF_INET or IPv4-mapped AF_INET6 address. */
static bool v4_of(const struct sockaddr *sa, uint8_t out[4])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, a->s6_addr + 12, 4);
			return true;
		}
	}
	return false;
}

bool lw_sockaddr_is_loopback(const struct sockaddr *sa)
{
	uint8_t v4[4];

	if (v4_of(sa, v4))
		return v4[0] == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int lw_cidr_parse(const char *s, struct lw_cidr *c)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hn = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	memset(c, 0, sizeof(*c));
	if (!hn || hn >= sizeof(host))
		return -1;
	memcpy(host, s, hn);
	host[hn] = 0;
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	c->prefix = (uint8_t)max;
	if (slash) {
		char *end;
		long p;

		errno = 0;
		p = strtol(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || slash[1] < '0' || slash[1] > '9' ||
		    p > max)
			return -1;
		c->prefix = (uint8_t)p;
	}
	return 0;
}

bool lw_cidr_host_bits_clear(const struct lw_cidr *c)
{
	size_t nbytes = c->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < nbytes; i++) {
		unsigned bit0 = (unsigned)i * 8;
		uint8_t mask;

		if (bit0 + 8 <= c->prefix)
			continue;
		mask = bit0 >= c->prefix ? 0xff : (uint8_t)(0xff >> (c->prefix - bit0));
		if (c->addr[i] & mask)
			return false;
	}
	return true;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)whole))
		return false;
	if (!rest)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool lw_cidr_match(const struct lw_cidr *c, const struct sockaddr *sa)
{
	uint8_t v4[4];

	if (c->family == AF_INET)
		return v4_of(sa, v4) && prefix_eq(c->addr, v4, c->prefix);
	if (sa->sa_family != AF_INET6)
		return false;
	return prefix_eq(c->addr, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, c->prefix);
}
