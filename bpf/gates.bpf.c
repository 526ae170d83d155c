// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * gates.bpf.c — per-service allowed AI providers, enforced in the kernel.
 *
 *  cgroup_skb/ingress  learns provider addresses from DNS answers before the
 *                      application reads them (qname -> A/AAAA, with TTL)
 *  cgroup/connect4/6   refuses a learned provider address the caller's
 *                      service may not use (EPERM), and UDP/443 to providers
 *  cgroup/sendmsg4/6   refuses unconnected UDP/443 to providers (QUIC)
 *  sockops             puts new outgoing TCP/443 sockets in a sockhash
 *  sk_msg              reads the ClientHello (corked until whole), maps the
 *                      SNI to a provider and drops it when not allowed or
 *                      quarantined (EACCES); sockets that are not provider
 *                      traffic of an enforcing service leave the sockhash
 *                      after this first record, the others stay so that a
 *                      content verdict (`denied`, written by the TLS write
 *                      uprobe or the agent) drops their later writes
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lwgates.h"
#include "lwshared.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define SOCK_DGRAM 2
#define IPPROTO_UDP 17
#define TLS_PORT 443
#define DNS_MAX_ANSWERS 24
#define CH_MAX (16384 + 5)

const volatile __u32 self_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct lwg_host_key);
	__type(value, __u32);
} host_providers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lwg_ip_key);
	__type(value, struct lwg_ip_val);
} ip_providers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LWG_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct lwg_policy);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct lwg_sock_key);
	__type(value, __u64);
} socks SEC(".maps");

/* (service cgroup, provider) pairs refused for a while after the agent
 * blocked content the kernel could not decide. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct lwg_quarantine_key);
	__type(value, __u64);
} quarantine SEC(".maps");

/* Sockets whose first record was judged and passed. sk_msg cannot delete
 * from a sockhash; user space removes these from `socks` within a second,
 * and until then each send pays one lookup here. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lwg_sock_key);
	__type(value, __u8);
} released SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} gate_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LWG_ST__MAX);
	__type(key, __u32);
	__type(value, __u64);
} gate_stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *p = bpf_map_lookup_elem(&gate_stats, &idx);

	if (p)
		__sync_fetch_and_add(p, 1);
}

/* LWG_ALLOWED, LWG_DENIED (enforce) or LWG_WOULD_DENY (monitor). */
static __always_inline __u8 decide(__u32 pol, __u32 provider, __u8 *enforce)
{
	struct lwg_policy *p = bpf_map_lookup_elem(&policies, &pol);

	*enforce = 0;
	if (!p || !p->valid || provider >= 64)
		return LWG_ALLOWED;
	*enforce = p->enforce;
	if (p->allow_mask & (1ULL << provider))
		return LWG_ALLOWED;
	return p->enforce ? LWG_DENIED : LWG_WOULD_DENY;
}

/* A name being matched. It lives in a per-CPU map, not on the stack: the
 * verifier then sees the same state on every bpf_loop iteration and checks
 * each callback once. Slot 0: DNS (softirq), slot 1: sk_msg. */
struct hostname {
	char name[LWG_NAME_LEN + 64]; /* slack: copies are bounded by masks */
	__u32 n;
	__u32 found;
	__u64 h;
};

#define NAME_DNS 0
#define NAME_SNI 1

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hostname);
} names SEC(".maps");

static __always_inline void emit(__u32 pol, __u32 provider, __u8 decision, __u8 gate, __u32 family,
				 const void *daddr, __u16 dport, int name_slot,
				 const struct lwg_sock_key *sk)
{
	struct lwg_event *e;
	__u64 id = bpf_get_current_pid_tgid();

	stat_inc(decision == LWG_ALLOWED  ? LWG_ST_ALLOWED
		 : decision == LWG_DENIED ? LWG_ST_DENIED
					  : LWG_ST_WOULD_DENY);
	e = bpf_ringbuf_reserve(&gate_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(LWG_ST_EVENT_DROPS);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->policy = pol;
	e->provider = provider;
	e->decision = decision;
	e->gate = gate;
	e->family = family;
	e->_pad = 0;
	e->dport = dport;
	e->_pad2 = 0;
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	__builtin_memset(e->saddr, 0, sizeof(e->saddr));
	e->sport = 0;
	e->_pad3 = 0;
	if (sk) {
		__builtin_memcpy(e->saddr, sk->laddr, sizeof(e->saddr));
		e->sport = sk->lport; /* sk_msg hands the local port in host order */
	}
	if (family == AF_INET)
		__builtin_memcpy(e->daddr, daddr, 4);
	else
		__builtin_memcpy(e->daddr, daddr, 16);
	/* now: a refused client is usually gone before user space looks */
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memset(e->host, 0, sizeof(e->host));
	if (name_slot >= 0) {
		__u32 slot = name_slot;
		struct hostname *hn = bpf_map_lookup_elem(&names, &slot);

		if (hn)
			__builtin_memcpy(e->host, hn->name, sizeof(e->host));
	} else {
		/* no SNI: the name the address was learned for */
		struct lwg_ip_key k = {.family = family};
		struct lwg_ip_val *v;

		if (family == AF_INET)
			__builtin_memcpy(k.addr, daddr, 4);
		else
			__builtin_memcpy(k.addr, daddr, 16);
		v = bpf_map_lookup_elem(&ip_providers, &k);
		if (v)
			__builtin_memcpy(e->host, v->host, sizeof(e->host));
	}
	bpf_ringbuf_submit(e, 0);
}

/* True while the caller's service is quarantined for this provider. */
static __always_inline bool quarantined(__u32 provider)
{
	struct lwg_quarantine_key k = {.cgroup_id = bpf_get_current_cgroup_id(),
				       .provider = provider};
	__u64 *until = bpf_map_lookup_elem(&quarantine, &k);

	return until && *until > bpf_ktime_get_ns();
}

/* ---- hostnames ------------------------------------------------------------ */

/* Building an ip_providers value (too big for the stack next to the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lwg_ip_val);
} ipval_scratch SEC(".maps");

struct slot_ctx {
	__u32 slot;
};

static long hash_step(__u32 step, void *arg)
{
	struct slot_ctx *sc = arg;
	struct lwg_host_key k = {};
	struct hostname *hn = bpf_map_lookup_elem(&names, &sc->slot);
	int i;
	unsigned char c;
	__u32 *v;

	if (!hn)
		return 1;
	i = (int)hn->n - 1 - (int)step;
	if (i < 0)
		return 1;
	c = hn->name[i & (LWG_NAME_LEN - 1)];
	if (c >= 'A' && c <= 'Z')
		c += 32;
	hn->h ^= c;
	hn->h *= 0x100000001b3ULL;
	if ((c == '.' || c == '-') && i > 0) { /* "*.x" and "*-x" patterns */
		k.hash = hn->h;
		k.kind = 1;
		v = bpf_map_lookup_elem(&host_providers, &k);
		if (v)
			hn->found = *v; /* longer suffixes come later */
	}
	return 0;
}

/* Provider of the name in slot: exact match, else the longest "*.suffix".
 * The hash folds the name from its end (see lw_host_hash), so one backward
 * pass gives every suffix. */
static __noinline __u32 host_provider(__u32 slot)
{
	struct slot_ctx sc = {.slot = slot};
	struct lwg_host_key k = {};
	struct hostname *hn = bpf_map_lookup_elem(&names, &sc.slot);
	__u32 *v;

	if (!hn || hn->n == 0 || hn->n >= LWG_NAME_LEN)
		return LWG_NO_PROVIDER;
	hn->h = 0xcbf29ce484222325ULL;
	hn->found = LWG_NO_PROVIDER;
	bpf_loop(LWG_NAME_LEN, hash_step, &sc, 0);
	hn = bpf_map_lookup_elem(&names, &sc.slot);
	if (!hn)
		return LWG_NO_PROVIDER;
	k.hash = hn->h;
	k.kind = 0;
	v = bpf_map_lookup_elem(&host_providers, &k);
	return v ? *v : hn->found;
}

static __always_inline __u32 ip_provider(__u32 family, const void *addr)
{
	struct lwg_ip_key k = {.family = family};
	struct lwg_ip_val *v;

	if (family == AF_INET)
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

/* ---- DNS answers ---------------------------------------------------------- */

struct dns_ctx {
	struct __sk_buff *skb;
	__u32 base; /* offset of the DNS header: compression pointers count from it */
	__u32 pos;  /* parse position */
	__u32 end;  /* skb->len */
	__u32 left; /* answers still to read */
	__u32 provider;
	__u8 in_name;
	__u8 bad;
	__u64 now;
};

/* One step of the answer section, as a flat state machine so the verifier
 * sees one small callback: either one label of an owner name (compression
 * pointers are skipped, never followed, so a pointer loop cannot make us
 * spin) or one record's fixed part and data. */
static long dns_step(__u32 idx, void *arg)
{
	struct dns_ctx *d = arg;
	__u8 rr[10], b;
	__u16 type, rdlen;
	__u32 ttl;

	if (!d->left)
		return 1;
	if (d->in_name) {
		if (d->pos >= d->end || bpf_skb_load_bytes(d->skb, d->pos, &b, 1))
			goto bad;
		if ((b & 0xc0) == 0xc0) {
			__u8 lo;

			/* a pointer must name an earlier offset; one that does not
			 * (a loop, a forward jump) marks a malformed answer */
			if (bpf_skb_load_bytes(d->skb, d->pos + 1, &lo, 1) ||
			    d->base + ((((__u32)b & 0x3f) << 8) | lo) >= d->pos)
				goto bad;
			d->pos += 2;
			d->in_name = 0;
		} else if (b & 0xc0) {
			goto bad;
		} else {
			d->pos += 1 + b;
			d->in_name = b != 0;
		}
		return 0;
	}
	if (d->pos + 10 > d->end || bpf_skb_load_bytes(d->skb, d->pos, rr, 10))
		goto bad;
	type = (rr[0] << 8) | rr[1];
	ttl = ((__u32)rr[4] << 24) | ((__u32)rr[5] << 16) | ((__u32)rr[6] << 8) | rr[7];
	rdlen = (rr[8] << 8) | rr[9];
	d->pos += 10;
	if (d->pos + rdlen > d->end)
		goto bad;
	if ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16)) {
		struct lwg_ip_key k = {.family = type == 1 ? AF_INET : AF_INET6};
		__u64 keep = ttl < 60 ? 60 : ttl > 86400 ? 86400 : ttl;
		__u32 slot = NAME_DNS;
		struct hostname *hn = bpf_map_lookup_elem(&names, &slot);
		struct lwg_ip_val *v = bpf_map_lookup_elem(&ipval_scratch, &slot);

		if (!hn || !v || bpf_skb_load_bytes(d->skb, d->pos, k.addr, type == 1 ? 4 : 16))
			goto bad;
		v->provider = d->provider;
		/* applications cache answers a little past their TTL */
		v->expires_ns = d->now + (keep + 60) * 1000000000ULL;
		__builtin_memcpy(v->host, hn->name, sizeof(v->host));
		bpf_map_update_elem(&ip_providers, &k, v, BPF_ANY);
		stat_inc(LWG_ST_DNS_ANSWERS);
	}
	/* CNAME records: the chain belongs to the question's name, whose
	 * provider every address in this answer gets */
	d->pos += rdlen;
	d->left--;
	d->in_name = 1;
	return 0;
bad:
	d->bad = 1;
	return 1;
}

struct qname_ctx {
	struct __sk_buff *skb;
	__u32 off;
	__u8 done, bad;
};

static long qname_label(__u32 idx, void *arg)
{
	struct qname_ctx *q = arg;
	__u32 slot = NAME_DNS;
	struct hostname *hn = bpf_map_lookup_elem(&names, &slot);
	__u32 n;
	__u8 len;

	if (!hn || bpf_skb_load_bytes(q->skb, q->off, &len, 1)) {
		q->bad = 1;
		return 1;
	}
	n = hn->n;
	q->off++;
	if (len == 0) {
		q->done = 1;
		return 1;
	}
	if (len > 63 || n + len + 1 >= LWG_NAME_LEN) {
		q->bad = 1; /* compression in a question, or too long */
		return 1;
	}
	if (n)
		hn->name[n++ & (LWG_NAME_LEN - 1)] = '.';
	len &= 63;
	if (len == 0 ||
	    bpf_skb_load_bytes(q->skb, q->off, hn->name + (n & (LWG_NAME_LEN - 1)), len)) {
		q->bad = 1;
		return 1;
	}
	q->off += len;
	hn->n = n + len;
	return 0;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	struct qname_ctx q = {};
	struct dns_ctx d = {};
	__u32 off;
	__u16 sport;
	__u8 hdr[12];
	__u16 ancount;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl, proto;

		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1))
			return 1;
		if (proto != IPPROTO_UDP)
			return 1;
		off = (vihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 nh;

		if (bpf_skb_load_bytes(skb, 6, &nh, 1) || nh != IPPROTO_UDP)
			return 1;
		off = 40;
	} else {
		return 1;
	}
	if (bpf_skb_load_bytes(skb, off, &sport, 2) || sport != bpf_htons(53))
		return 1;
	off += 8;
	if (bpf_skb_load_bytes(skb, off, hdr, 12)) {
		stat_inc(LWG_ST_DNS_MALFORMED);
		return 1;
	}
	/* a response, no error, one question */
	if (!(hdr[2] & 0x80) || (hdr[3] & 0x0f) || hdr[4] != 0 || hdr[5] != 1)
		return 1;
	ancount = (hdr[6] << 8) | hdr[7];
	{
		__u32 slot = NAME_DNS;
		struct hostname *hn = bpf_map_lookup_elem(&names, &slot);

		if (!hn)
			return 1;
		/* names are compared and reported whole: no bytes of the last one */
		__builtin_memset(hn->name, 0, sizeof(hn->name));
		hn->n = 0;
	}
	q.skb = skb;
	q.off = off + 12;
	bpf_loop(64, qname_label, &q, 0);
	if (q.bad || !q.done) {
		stat_inc(LWG_ST_DNS_MALFORMED);
		return 1;
	}
	d.provider = host_provider(NAME_DNS);
	if (d.provider == LWG_NO_PROVIDER)
		return 1;
	d.skb = skb;
	d.base = off;
	d.pos = q.off + 4; /* qtype, qclass */
	d.end = skb->len;
	d.now = bpf_ktime_get_ns();
	d.left = ancount < DNS_MAX_ANSWERS ? ancount : DNS_MAX_ANSWERS;
	d.in_name = 1;
	bpf_loop(DNS_MAX_ANSWERS * 16, dns_step, &d, 0);
	if (d.bad)
		stat_inc(LWG_ST_DNS_MALFORMED);
	return 1;
}

/* ---- connect / sendmsg ---------------------------------------------------- */

/* True when the connection or datagram must be refused. */
static __noinline bool addr_denied(__u32 family, const void *addr, __u16 dport, bool udp)
{
	__u32 prov, pol;
	__u8 dec, enforce;

	if ((bpf_get_current_pid_tgid() >> 32) == self_pid)
		return false;
	prov = ip_provider(family, addr);
	if (prov == LWG_NO_PROVIDER)
		return false;
	if (!udp) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		__u8 one = 1;

		bpf_map_update_elem(&provider_pids, &tgid, &one, BPF_ANY);
	}
	pol = current_policy();
	dec = decide(pol, prov, &enforce);
	/* QUIC cannot be inspected: enforced services speak TLS over TCP */
	if (udp) {
		if (dport != TLS_PORT)
			return false;
		emit(pol, prov, enforce ? LWG_DENIED : LWG_WOULD_DENY, LWG_GATE_QUIC, family, addr,
		     dport, -1, NULL);
		return enforce;
	}
	if (dec == LWG_DENIED) {
		emit(pol, prov, LWG_DENIED, LWG_GATE_CONNECT, family, addr, dport, -1, NULL);
		return true;
	}
	if (enforce && quarantined(prov)) {
		stat_inc(LWG_ST_QUARANTINED);
		emit(pol, prov, LWG_DENIED, LWG_GATE_QUARANTINE, family, addr, dport, -1, NULL);
		return true;
	}
	/* allowed or monitor: the ClientHello gate reports the connection */
	return false;
}

/* UDP connect() is left alone: glibc's getaddrinfo connects UDP sockets to
 * every candidate address to sort them, without sending anything. Datagrams
 * are judged at sendmsg (unconnected) and at egress (connected). */
SEC("cgroup/connect4")
int gate_connect4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;

	if (ctx->type == SOCK_DGRAM)
		return 1;
	return addr_denied(AF_INET, &ip, bpf_ntohs(ctx->user_port), false) ? 0 : 1;
}

SEC("cgroup/connect6")
int gate_connect6(struct bpf_sock_addr *ctx)
{
	__u32 ip[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};

	if (ctx->type == SOCK_DGRAM)
		return 1;
	return addr_denied(AF_INET6, ip, bpf_ntohs(ctx->user_port), false) ? 0 : 1;
}

/* Datagrams of connected UDP sockets (QUIC clients connect()). The socket's
 * cgroup picks the policy; per-process policies do not apply here. */
SEC("cgroup_skb/egress")
int quic_egress(struct __sk_buff *skb)
{
	__u32 family, off, pol, prov, *pp;
	__u8 addr[16] = {}, proto;
	__u16 dport;
	__u64 cg;
	struct lwg_policy *p;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl;

		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1) ||
		    proto != IPPROTO_UDP || bpf_skb_load_bytes(skb, 16, addr, 4))
			return 1;
		family = AF_INET;
		off = (vihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1) || proto != IPPROTO_UDP ||
		    bpf_skb_load_bytes(skb, 24, addr, 16))
			return 1;
		family = AF_INET6;
		off = 40;
	} else {
		return 1;
	}
	if (bpf_skb_load_bytes(skb, off + 2, &dport, 2) || dport != bpf_htons(TLS_PORT))
		return 1;
	prov = ip_provider(family, addr);
	if (prov == LWG_NO_PROVIDER)
		return 1;
	cg = bpf_skb_cgroup_id(skb);
	pp = bpf_map_lookup_elem(&cgroup_policy, &cg);
	pol = pp ? *pp : 0;
	p = bpf_map_lookup_elem(&policies, &pol);
	if (!p || !p->valid || !p->enforce)
		return 1;
	emit(pol, prov, LWG_DENIED, LWG_GATE_QUIC, family, addr, TLS_PORT, -1, NULL);
	return 0;
}

SEC("cgroup/sendmsg4")
int gate_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;

	return addr_denied(AF_INET, &ip, bpf_ntohs(ctx->user_port), true) ? 0 : 1;
}

SEC("cgroup/sendmsg6")
int gate_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 ip[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};

	return addr_denied(AF_INET6, ip, bpf_ntohs(ctx->user_port), true) ? 0 : 1;
}

/* ---- ClientHello ---------------------------------------------------------- */

SEC("sockops")
int gate_sockops(struct bpf_sock_ops *skops)
{
	struct lwg_sock_key k = {};
	__u32 prov;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	k.family = skops->family;
	k.lport = skops->local_port;
	k.rport = skops->remote_port;
	if (k.family == AF_INET) {
		k.laddr[0] = skops->local_ip4;
		k.raddr[0] = skops->remote_ip4;
	} else {
		k.laddr[0] = skops->local_ip6[0];
		k.laddr[1] = skops->local_ip6[1];
		k.laddr[2] = skops->local_ip6[2];
		k.laddr[3] = skops->local_ip6[3];
		k.raddr[0] = skops->remote_ip6[0];
		k.raddr[1] = skops->remote_ip6[1];
		k.raddr[2] = skops->remote_ip6[2];
		k.raddr[3] = skops->remote_ip6[3];
	}
	/* any port of a provider's address: the capture object reads
	 * plaintext HTTP on it (an internal gateway on 8080), and sk_msg
	 * refuses it for its content; TLS on 443 whatever the address (the
	 * name is in its ClientHello) */
	prov = ip_provider(k.family, k.raddr);
	if (prov != LWG_NO_PROVIDER) {
		__u64 cookie = bpf_get_socket_cookie(skops);

		bpf_map_update_elem(&provider_socks, &cookie, &prov, BPF_ANY);
	} else if (bpf_ntohl(skops->remote_port) != TLS_PORT) {
		return 1;
	}
	/* a new connection on the 4-tuple of an old one starts clean */
	bpf_map_delete_elem(&denied, &k);
	bpf_map_delete_elem(&released, &k);
	bpf_map_delete_elem(&watched, &k);
	bpf_sock_hash_update(skops, &socks, &k, BPF_ANY);
	return 1;
}

static __always_inline void msg_key(struct sk_msg_md *msg, struct lwg_sock_key *k)
{
	k->family = msg->family;
	k->lport = msg->local_port;
	k->rport = msg->remote_port;
	if (k->family == AF_INET) {
		k->laddr[0] = msg->local_ip4;
		k->raddr[0] = msg->remote_ip4;
	} else {
		k->laddr[0] = msg->local_ip6[0];
		k->laddr[1] = msg->local_ip6[1];
		k->laddr[2] = msg->local_ip6[2];
		k->laddr[3] = msg->local_ip6[3];
		k->raddr[0] = msg->remote_ip6[0];
		k->raddr[1] = msg->remote_ip6[1];
		k->raddr[2] = msg->remote_ip6[2];
		k->raddr[3] = msg->remote_ip6[3];
	}
}

struct hello {
	__u8 ech;
	__u8 bad;
	__u8 has_sni; /* the name is in names[NAME_SNI] */
};

/* Reads a big-endian u16 at off; false when outside [data, data_end). */
static __always_inline bool rd16(void *data, void *end, __u32 off, __u16 *v)
{
	__u8 *p = data + (off & 0x7fff);

	if ((void *)(p + 2) > end)
		return false;
	*v = ((__u16)p[0] << 8) | p[1];
	return true;
}

static __always_inline bool rd8(void *data, void *end, __u32 off, __u8 *v)
{
	__u8 *p = data + (off & 0x7fff);

	if ((void *)(p + 1) > end)
		return false;
	*v = *p;
	return true;
}

/* Parse the ClientHello in [data, data+len): the record header is at 0. */
static __always_inline void parse_hello(void *data, void *end, __u32 len, struct hello *h)
{
	__u32 off = 5 + 4 + 2 + 32; /* record hdr, handshake hdr, version, random */
	__u8 b;
	__u16 n, ext_total;
	__u32 ext_end;

	__u8 l0, l1, l2;

	if (!rd8(data, end, 5, &b) || b != 1) /* handshake type client_hello */
		goto bad;
	/* the whole message must be in this record: one spread over several
	 * (legal, rare) is not reassembled and counts as unreadable */
	if (!rd8(data, end, 6, &l0) || !rd8(data, end, 7, &l1) || !rd8(data, end, 8, &l2) ||
	    (((__u32)l0 << 16) | ((__u32)l1 << 8) | l2) + 9 > len)
		goto bad;
	if (!rd8(data, end, off, &b)) /* session id */
		goto bad;
	off += 1 + b;
	if (!rd16(data, end, off, &n)) /* cipher suites */
		goto bad;
	off += 2 + n;
	if (!rd8(data, end, off, &b)) /* compression methods */
		goto bad;
	off += 1 + b;
	if (!rd16(data, end, off, &ext_total))
		goto bad;
	off += 2;
	ext_end = off + ext_total;
	if (ext_end > len)
		goto bad;
	for (int i = 0; i < 64; i++) {
		__u16 type, elen;

		if (off + 4 > ext_end)
			break;
		if (!rd16(data, end, off, &type) || !rd16(data, end, off + 2, &elen))
			goto bad;
		off += 4;
		if (off + elen > ext_end)
			goto bad;
		if (type == 0xfe0d) {
			h->ech = 1;
		} else if (type == 0 && elen >= 5) {
			__u16 nlen;
			__u8 ntype;

			if (!rd8(data, end, off + 2, &ntype) || !rd16(data, end, off + 3, &nlen))
				goto bad;
			if (ntype != 0 || nlen == 0 || nlen >= LWG_NAME_LEN || 5 + nlen > elen)
				goto bad;
			{
				__u32 slot = NAME_SNI;
				struct hostname *hn = bpf_map_lookup_elem(&names, &slot);

				if (!hn)
					goto bad;
				__u32 cn = nlen;

				/* keep clang from widening the bound the verifier needs */
				asm volatile("" : "+r"(cn));
				cn &= LWG_NAME_LEN - 1;
				if (cn == 0)
					goto bad;
				__builtin_memset(hn->name, 0, LWG_NAME_LEN);
				if (bpf_probe_read_kernel(hn->name, cn,
							  data + ((off + 5) & 0x7fff)))
					goto bad;
				hn->n = nlen;
				h->has_sni = 1;
			}
		}
		off += elen;
	}
	return;
bad:
	h->bad = 1;
}

SEC("sk_msg")
int gate_msg(struct sk_msg_md *msg)
{
	struct lwg_sock_key k = {};
	struct hello h = {};
	__u32 pol, prov, rec_len, gate = LWG_GATE_SNI;
	__u8 hdr[5], dec, enforce;
	void *data, *end;

	__u32 *why;

	msg_key(msg, &k);
	why = bpf_map_lookup_elem(&denied, &k);
	if (why) {
		stat_inc(*why & LWG_DENY_CONTENT ? LWG_ST_CONTENT_DROPS : LWG_ST_POISONED_DROPS);
		return SK_DROP;
	}
	if (bpf_map_lookup_elem(&released, &k) || bpf_map_lookup_elem(&watched, &k))
		return SK_PASS;
	/* hold the bytes until the whole first record is here */
	if (msg->size < 5) {
		bpf_msg_cork_bytes(msg, 5);
		return SK_PASS;
	}
	data = msg->data;
	end = msg->data_end;
	if (data + 5 > end) {
		/* header spread over pages: linearize just it */
		if (bpf_msg_pull_data(msg, 0, 5, 0))
			goto release;
		data = msg->data;
		end = msg->data_end;
		if (data + 5 > end)
			goto release;
	}
	__builtin_memcpy(hdr, data, 5);
	pol = current_policy();
	if (hdr[0] != 0x16) {
		/* not TLS: a provider address still has to be allowed */
		h.bad = 0;
		gate = LWG_GATE_HTTP;
		goto decide;
	}
	rec_len = 5 + (((__u32)hdr[3] << 8) | hdr[4]);
	if (rec_len > CH_MAX) {
		h.bad = 1;
		goto decide;
	}
	if (msg->size < rec_len) {
		bpf_msg_cork_bytes(msg, rec_len);
		return SK_PASS;
	}
	/* whole: a corked message carries its cork size into this run;
	 * clear it, or the kernel keeps holding the socket's later writes */
	bpf_msg_cork_bytes(msg, 0);
	if (bpf_msg_pull_data(msg, 0, rec_len, 0)) {
		h.bad = 1;
		goto decide;
	}
	data = msg->data;
	end = msg->data_end;
	parse_hello(data, end, rec_len, &h);
	if (!h.bad)
		stat_inc(LWG_ST_CH_PARSED);
decide:
	if (h.bad)
		stat_inc(LWG_ST_CH_MALFORMED);
	prov = h.has_sni ? host_provider(NAME_SNI) : LWG_NO_PROVIDER;
	if (prov == LWG_NO_PROVIDER)
		prov = ip_provider(k.family, k.raddr);
	/* a hello we cannot read (malformed, or fragmented over several
	 * records) hides its name: an enforced service fails closed, whatever
	 * the address says */
	if (h.bad) {
		struct lwg_policy *p = bpf_map_lookup_elem(&policies, &pol);

		if (p && p->valid && p->enforce) {
			emit(pol, prov, LWG_DENIED, LWG_GATE_SNI, k.family, k.raddr,
			     bpf_ntohl(k.rport), -1, &k);
			bpf_map_update_elem(&denied, &k, &pol, BPF_ANY);
			return SK_DROP;
		}
	}
	if (prov == LWG_NO_PROVIDER)
		goto release;
	dec = decide(pol, prov, &enforce);
	/* ECH hides the real name: refused where enforced, reported elsewhere */
	if (h.ech) {
		struct lwg_policy *p = bpf_map_lookup_elem(&policies, &pol);

		if (enforce) {
			emit(pol, prov, LWG_DENIED, LWG_GATE_ECH, k.family, k.raddr,
			     bpf_ntohl(k.rport), h.has_sni ? NAME_SNI : -1, &k);
			bpf_map_update_elem(&denied, &k, &pol, BPF_ANY);
			return SK_DROP;
		}
		if (p && p->valid) {
			emit(pol, prov, LWG_WOULD_DENY, LWG_GATE_ECH, k.family, k.raddr,
			     bpf_ntohl(k.rport), h.has_sni ? NAME_SNI : -1, &k);
			goto release;
		}
	}
	if (dec == LWG_ALLOWED && enforce && quarantined(prov)) {
		stat_inc(LWG_ST_QUARANTINED);
		emit(pol, prov, LWG_DENIED, LWG_GATE_QUARANTINE, k.family, k.raddr,
		     bpf_ntohl(k.rport), h.has_sni ? NAME_SNI : -1, &k);
		bpf_map_update_elem(&denied, &k, &pol, BPF_ANY);
		return SK_DROP;
	}
	emit(pol, prov, dec, gate, k.family, k.raddr, bpf_ntohl(k.rport), h.has_sni ? NAME_SNI : -1,
	     &k);
	if (dec == LWG_DENIED) {
		bpf_map_update_elem(&denied, &k, &pol, BPF_ANY);
		return SK_DROP;
	}
	if (enforce) {
		/* stays in the sockhash: its content may still be refused */
		bpf_map_update_elem(&watched, &k, &pol, BPF_ANY);
		stat_inc(LWG_ST_WATCHED);
		return SK_PASS;
	}
release:
	/* decided: user space takes the socket out of the sockhash */
	{
		__u8 one = 1;

		bpf_map_update_elem(&released, &k, &one, BPF_ANY);
	}
	stat_inc(LWG_ST_RELEASED);
	return SK_PASS;
}
