/*
 * Who is on the other end of a local TCP connection: the owner (uid) of the
 * peer's socket, from the kernel's socket table (NETLINK_SOCK_DIAG), which,
 * unlike SO_PEERCRED, works for TCP.
 */
#ifndef LW_PEERUID_H
#define LW_PEERUID_H

#include <sys/socket.h>
#include <sys/types.h>

/* The connection accepted on `local` from `peer`: finds the peer's socket
 * (source peer, destination local) in this network namespace and returns 0
 * with its owner in *uid. -ENOENT when there is no such socket here (the
 * peer is another host or another namespace), else -errno. */
int lw_tcp_peer_uid(const struct sockaddr *peer, const struct sockaddr *local, uid_t *uid);

#endif
