#include "util/peeruid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Address (network order, IPv4 in the first 4 bytes) and port of sa; an
 * IPv4-mapped IPv6 address is the IPv4 socket the peer really has. */
static int split(const struct sockaddr *sa, void *addr, uint16_t *port)
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		memcpy(addr, &s->sin_addr, 4);
		*port = s->sin_port;
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		*port = s->sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			memcpy(addr, s->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(addr, &s->sin6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

int lw_tcp_peer_uid(const struct sockaddr *peer, const struct sockaddr *local, uid_t *uid)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {0};
	union {
		struct nlmsghdr h;
		char b[1024];
	} rep;
	struct timeval tv = {.tv_sec = 1};
	int fam = split(peer, msg.req.id.idiag_src, &msg.req.id.idiag_sport);
	int rc = -ENOENT, fd;
	ssize_t n;

	if (fam < 0 || split(local, msg.req.id.idiag_dst, &msg.req.id.idiag_dport) != fam)
		return -EAFNOSUPPORT;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	/* an answer is immediate; the bound only guards against the unexpected */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST; /* one exact socket, not a dump */
	msg.req.sdiag_family = (uint8_t)fam;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = ~0u;
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (send(fd, &msg, sizeof(msg), 0) < 0) {
		rc = -errno;
		goto out;
	}
	n = recv(fd, &rep, sizeof(rep), 0);
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = &rep.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			rc = e->error ? e->error : -ENOENT;
			break;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			const struct inet_diag_msg *d = NLMSG_DATA(h);

			*uid = (uid_t)d->idiag_uid;
			rc = 0;
			break;
		}
	}
out:
	close(fd);
	return rc;
}
