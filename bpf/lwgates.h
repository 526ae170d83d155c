/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Provider gates: records and map layouts shared by bpf/gates.bpf.c and the
 * user-space policy loader. See "Per-service allowed providers" in DESIGN.md.
 */
#ifndef LEAKWATCH_GATES_H
#define LEAKWATCH_GATES_H

#define LWG_NAME_LEN 128
#define LWG_MAX_POLICIES 256
#define LWG_NO_PROVIDER 0xffffffffu

/* Hostname patterns: key of `host_providers`. hash = lw_host_hash() of the
 * exact name (kind 0) or of ".suffix" for "*.suffix" (kind 1). */
struct lwg_host_key {
	unsigned long long hash;
	unsigned int kind;
	unsigned int _pad;
};

struct lwg_ip_key {
	unsigned int family; /* 2 or 10 */
	unsigned char addr[16];
};

struct lwg_ip_val {
	unsigned int provider;
	unsigned int _pad;
	unsigned long long expires_ns; /* CLOCK_MONOTONIC; 0 = static range */
	char host[LWG_NAME_LEN];       /* the name it was learned for */
};

/* A TCP socket, as both sockops and sk_msg see it (ports as the kernel
 * hands them over; only ever compared, never interpreted). */
struct lwg_sock_key {
	unsigned int family;
	unsigned int lport;
	unsigned int rport;
	unsigned int laddr[4];
	unsigned int raddr[4];
};

struct lwg_policy {
	unsigned long long allow_mask; /* bit i: provider i allowed */
	unsigned char enforce;
	unsigned char valid;
	unsigned char _pad[6];
};

enum lwg_decision { LWG_ALLOWED = 0, LWG_DENIED = 1, LWG_WOULD_DENY = 2 };
enum lwg_gate {
	LWG_GATE_SNI = 0,
	LWG_GATE_CONNECT = 1,
	LWG_GATE_QUIC = 2,
	LWG_GATE_ECH = 3,
	LWG_GATE_QUARANTINE = 4, /* (service, provider) refused after a content block */
	LWG_GATE_HTTP = 5,	 /* plaintext HTTP to a provider's address (no ClientHello) */
};

/* Value of `denied`: the policy index, and why the socket is refused. */
#define LWG_DENY_CONTENT (1u << 31) /* a content verdict, not a provider gate */

/* Key of `quarantine`: a service (cgroup) and a provider it may not reach
 * until the value, a CLOCK_MONOTONIC deadline. */
struct lwg_quarantine_key {
	unsigned long long cgroup_id;
	unsigned int provider;
	unsigned int _pad;
};

/* One per provider connection decision. */
struct lwg_event {
	unsigned long long ts_ns;
	unsigned long long cgroup_id;
	unsigned int pid, tid;
	unsigned int policy;
	unsigned int provider;
	unsigned char decision, gate, family, _pad;
	unsigned short dport; /* host order */
	unsigned short _pad2;
	unsigned char daddr[16];
	unsigned char saddr[16]; /* local end, for TCP gates (sni, ech) */
	unsigned short sport;	 /* host order; 0 when not a TCP socket */
	unsigned short _pad3;
	char comm[16];
	char host[LWG_NAME_LEN];
};

enum lwg_stat {
	LWG_ST_DNS_ANSWERS = 0, /* A/AAAA records learned for a provider */
	LWG_ST_DNS_MALFORMED,	/* DNS responses that did not parse */
	LWG_ST_CH_PARSED,	/* ClientHellos parsed */
	LWG_ST_CH_MALFORMED,	/* first records that were not a sane ClientHello */
	LWG_ST_DENIED,
	LWG_ST_WOULD_DENY,
	LWG_ST_ALLOWED,
	LWG_ST_RELEASED,       /* non-provider sockets removed from the sockhash */
	LWG_ST_EVENT_DROPS,    /* events lost to a full ring buffer */
	LWG_ST_POISONED_DROPS, /* later writes dropped on a denied connection */
	LWG_ST_CONTENT_DROPS,  /* writes dropped on a connection refused for its content */
	LWG_ST_WATCHED,	       /* provider sockets kept for content verdicts */
	LWG_ST_QUARANTINED,    /* connections refused during a quarantine */
	LWG_ST__MAX,
};

#endif
