/* Aborting a TCP connection from outside the process that owns it. */
#ifndef LW_SOCKKILL_H
#define LW_SOCKKILL_H

#include <stdint.h>
#include <sys/types.h>

/* SOCK_DESTROY through sock_diag, in the network namespace of pid (the
 * connection may live in a container's namespace). Addresses in network
 * byte order (IPv4 in the first 4 bytes), ports in host order. 0 or -errno. */
int lw_sock_destroy(pid_t pid, int family, const uint8_t saddr[16], uint16_t sport,
		    const uint8_t daddr[16], uint16_t dport);

#endif
