/*
 * Who a process is: executable, cgroup v2 path and service name.
 *
 * Looked up from /proc when a process is first seen and kept until shortly
 * after it exits, because short-lived clients are often gone by the time
 * their last message is reported.
 */
#ifndef LW_PROC_H
#define LW_PROC_H

#include <stdint.h>
#include <sys/types.h>

#include "util/hmap.h"

struct lw_proc {
	pid_t pid;
	char exe[256];
	char cgroup[256];
	char service[128];
	uint32_t uid; /* real uid; (uint32_t)-1 when unknown */
	uint64_t dead_ns; /* 0 while alive */
};

struct lw_procs {
	struct lw_hmap by_pid;
};

/* Cached info, looked up on first use. Never NULL: fields of a process that
 * vanished before it could be looked up are empty strings. */
const struct lw_proc *lw_procs_get(struct lw_procs *ps, pid_t pid);
/* The process exec'd: forget what was cached and look again now. */
void lw_procs_exec(struct lw_procs *ps, pid_t pid, const char *filename);
void lw_procs_exit(struct lw_procs *ps, pid_t pid, uint64_t now_ns);
/* Drop processes dead for longer than keep_ns. */
void lw_procs_gc(struct lw_procs *ps, uint64_t now_ns, uint64_t keep_ns);
void lw_procs_free(struct lw_procs *ps);

/* Call cb for every process in /proc. */
void lw_for_each_pid(void (*cb)(pid_t pid, void *ud), void *ud);

/* "0::/system.slice/checkout.service" -> "/system.slice/checkout.service". */
int lw_proc_cgroup_path(pid_t pid, char *out, size_t n);
/* Service name of a cgroup v2 path: the systemd unit (checkout.service ->
 * "checkout.service"), a container id (docker-<64 hex>.scope, cri-containerd-,
 * crio-, libpod- -> first 12 hex digits), else the path itself. */
void lw_service_name(const char *cgroup, char *out, size_t n);

#endif
