/*
 * Provider gates: loads bpf/gates.bpf.c, attaches it to the root of the
 * cgroup v2 hierarchy (so every process is covered), and exposes its tables:
 * which hostnames belong to which provider, which policy each cgroup or
 * process has, what each policy allows.
 */
#ifndef LW_GATES_H
#define LW_GATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leakwatch.h"
#include "lwgates.h"

struct lw_gates;

typedef void (*lw_gate_event_cb)(const struct lwg_event *e, void *ud);

/* NULL on failure, with one error line logged. */
struct lw_gates *lw_gates_open(lw_gate_event_cb cb, void *ud);
void lw_gates_close(struct lw_gates *g);

int lw_gates_fd(struct lw_gates *g);
int lw_gates_consume(struct lw_gates *g);
/* Take judged sockets out of the sockhash; call about once a second. */
void lw_gates_sweep(struct lw_gates *g);
void lw_gates_stats(struct lw_gates *g, uint64_t out[LWG_ST__MAX]);
extern const char *const lw_gate_stat_names[LWG_ST__MAX];

/* Tables. Writers replace whole tables at reload (clear, then add). */
void lw_gates_hosts_clear(struct lw_gates *g);
int lw_gates_host_add(struct lw_gates *g, uint64_t hash, int kind, uint32_t provider);
int lw_gates_policy_set(struct lw_gates *g, uint32_t idx, uint64_t allow_mask, bool enforce);
void lw_gates_cgroups_clear(struct lw_gates *g);
int lw_gates_cgroup_set(struct lw_gates *g, uint64_t cgroup_id, uint32_t policy);
void lw_gates_pids_clear(struct lw_gates *g);
int lw_gates_pid_set(struct lw_gates *g, pid_t pid, uint32_t policy);
void lw_gates_pid_del(struct lw_gates *g, pid_t pid);

/* Content verdicts (see "Content blocking" in DESIGN.md). */
/* Fds of the maps the capture programs share (struct lw_capture_opts). */
struct lw_shared_fds;
void lw_gates_shared(struct lw_gates *g, struct lw_shared_fds *fds);
/* Refuse every later write of the TCP connection src -> dst (sk_msg drops
 * them: the application's write fails with EACCES). Only connections the
 * gates watch (provider traffic of an enforcing service) are affected. */
int lw_gates_poison(struct lw_gates *g, const struct lw_addr *src, const struct lw_addr *dst,
		    uint32_t policy);
/* Refuse new connections of the cgroup's processes to the provider until
 * the CLOCK_MONOTONIC deadline (only where the policy enforces). */
int lw_gates_quarantine(struct lw_gates *g, uint64_t cgroup_id, uint32_t provider,
			uint64_t until_mono_ns);

/* The cgroup v2 mount point, from /proc/mounts. -1 if there is none. */
int lw_cgroup2_mount(char *out, size_t n);

/* For the agent's metrics and self-check. */
#include "util/bpflink.h"
/* Every BPF link of the gates (cgroup programs on the hierarchy's root). */
void lw_gates_each_link(struct lw_gates *g, lw_link_fn fn, void *ud);
/* The root of the cgroup v2 hierarchy the gates are attached to. */
int lw_gates_cgroup_fd(struct lw_gates *g);
/* The gates' ring buffer map (util/ringuse.h). */
int lw_gates_ring_fd(struct lw_gates *g);
/* The ClientHello gate is attached to the sockhash, not through a link:
 * its program and map. 0 when it was attached. */
int lw_gates_msg_attach(struct lw_gates *g, int *prog_fd, int *map_fd);

#endif
