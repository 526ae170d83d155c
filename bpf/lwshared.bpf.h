/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps that bpf/gates.bpf.c and bpf/capture.bpf.c share, defined once so the
 * two objects cannot drift apart: the agent loads the gates first and hands
 * their fds to the capture object (bpf_map__reuse_fd). Without the gates
 * (trace) the capture object's own copies stay empty and nothing is refused.
 * Include after vmlinux.h, bpf_helpers.h and lwgates.h.
 */
#ifndef LEAKWATCH_SHARED_BPF_H
#define LEAKWATCH_SHARED_BPF_H

/* Policy index per cgroup (service selectors) and per process (exe/uid
 * selectors), filled by user space; absent: the default policy, 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} pid_policy SEC(".maps");

/* Sockets whose writes sk_msg drops: refused at the ClientHello (value: the
 * policy index) or for their content (| LWG_DENY_CONTENT). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lwg_sock_key);
	__type(value, __u32);
} denied SEC(".maps");

/* Provider sockets of enforcing services, kept in the sockhash after their
 * ClientHello passed: content verdicts apply to these only, so a service's
 * other TLS traffic (its database, its payment processor) is never walked
 * or refused. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lwg_sock_key);
	__type(value, __u32);
} watched SEC(".maps");

/* TCP sockets connected to a provider's address, any port, by socket cookie
 * (the gates' sockops, at connection): the capture object looks here for
 * plaintext HTTP, so a write on any other socket costs it one read of the
 * cookie. Cookies are never reused: no stale entry can name a new socket. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} provider_socks SEC(".maps");

/* Processes that connected a TCP socket to a provider's address (the gates'
 * connect gate): only their writes are looked at for plaintext, so every
 * other process's write syscall costs the capture object one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} provider_pids SEC(".maps");

/* The policy of the calling task: per process first, else per cgroup, else
 * the default (index 0). */
static __always_inline __u32 current_policy(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 cg = bpf_get_current_cgroup_id();
	__u32 *p = bpf_map_lookup_elem(&pid_policy, &tgid);

	if (p)
		return *p;
	p = bpf_map_lookup_elem(&cgroup_policy, &cg);
	return p ? *p : 0;
}

#endif /* LEAKWATCH_SHARED_BPF_H */
