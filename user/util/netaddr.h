/*
 * Socket addresses as an operator writes them: "127.0.0.1:9464",
 * "[::1]:9464", "localhost:9464" to listen on or connect to, and
 * "10.0.0.0/8" / "fd00::/8" address ranges for allow lists. Numeric only
 * (apart from localhost): an access rule must not depend on a resolver.
 */
#ifndef LW_NETADDR_H
#define LW_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* HOST:PORT -> address. 0, or -1 (bad syntax, port 0 or > 65535). */
int lw_hostport_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "127.0.0.1:9464" / "[::1]:9464" */
void lw_sockaddr_str(const struct sockaddr *sa, char *out, size_t n);
/* 127.0.0.0/8, ::1, and IPv4-mapped 127/8 */
bool lw_sockaddr_is_loopback(const struct sockaddr *sa);

struct lw_cidr {
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
	uint8_t prefix;	  /* bits */
};

/* "10.0.0.0/8", "fd00::/8", or a single address. 0 or -1. */
int lw_cidr_parse(const char *s, struct lw_cidr *c);
/* No bit set past the prefix: "10.0.0.1/8" is almost always a typo for a
 * narrower or wider range, better refused than guessed. */
bool lw_cidr_host_bits_clear(const struct lw_cidr *c);
/* An IPv4-mapped IPv6 peer matches IPv4 ranges. */
bool lw_cidr_match(const struct lw_cidr *c, const struct sockaddr *sa);

#endif
