#include "gates/sockkill.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A netlink socket belongs to the namespace it was created in: create it
 * there, then come back. setns() of a network namespace only moves the
 * calling thread. */
static int diag_socket_in(pid_t pid)
{
	char path[64];
	int target, self, fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return -errno;
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		err = -errno;
		close(target);
		return err;
	}
	if (setns(target, CLONE_NEWNET)) {
		err = -errno;
		fd = -1;
	} else {
		fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (fd < 0)
			err = -errno;
		if (setns(self, CLONE_NEWNET) && fd >= 0) {
			/* stuck in the wrong namespace is worse than no abort */
			close(fd);
			fd = -1;
			err = -EIO;
		}
	}
	close(self);
	close(target);
	return fd >= 0 ? fd : err;
}

int lw_sock_destroy(pid_t pid, int family, const uint8_t saddr[16], uint16_t sport,
		    const uint8_t daddr[16], uint16_t dport)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = { 0 };
	char ack[512];
	struct nlmsghdr *h = (struct nlmsghdr *)ack;
	struct timeval tv = { .tv_sec = 1 };
	int fd = diag_socket_in(pid), rc = 0;
	ssize_t n;

	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DESTROY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	msg.req.sdiag_family = (uint8_t)family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_states = ~0u;
	msg.req.id.idiag_sport = htons(sport);
	msg.req.id.idiag_dport = htons(dport);
	memcpy(msg.req.id.idiag_src, saddr, 16);
	memcpy(msg.req.id.idiag_dst, daddr, 16);
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (send(fd, &msg, sizeof(msg), 0) < 0) {
		rc = -errno;
	} else {
		n = recv(fd, ack, sizeof(ack), 0);
		if (n < 0)
			rc = -errno;
		else if ((size_t)n >= sizeof(*h) + sizeof(struct nlmsgerr) &&
			 h->nlmsg_type == NLMSG_ERROR)
			rc = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	close(fd);
	return rc;
}
