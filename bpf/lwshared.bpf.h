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

/* Addresses learned for provider hostnames (DNS answers, with their TTL) and
 * the catalog's static ranges (expires_ns 0). The capture object reads it to
 * find plaintext HTTP sent to a provider's address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lwg_ip_key);
	__type(value, struct lwg_ip_val);
} ip_providers SEC(".maps");

/* The provider an address belongs to, LWG_NO_PROVIDER. family: 2 or 10. */
static __always_inline __u32 ip_provider(__u32 family, const void *addr)
{
	struct lwg_ip_key k = {.family = family};
	struct lwg_ip_val *v;

	if (family == 2)
		__builtin_memcpy(k.addr, addr, 4);
	else
		__builtin_memcpy(k.addr, addr, 16);
	v = bpf_map_lookup_elem(&ip_providers, &k);
	if (!v)
		return LWG_NO_PROVIDER;
	if (v->expires_ns && v->expires_ns < bpf_ktime_get_ns())
		return LWG_NO_PROVIDER;
	return v->provider;
}

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
