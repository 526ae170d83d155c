/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The in-kernel content matcher: one table, built in user space from the
 * block rules the kernel can decide (user/classify/kmatch.c), walked by the
 * TLS write uprobe over the plaintext before it is encrypted
 * (bpf/capture.bpf.c). See "Content blocking" in DESIGN.md.
 *
 * The table is a DFA over bytes for an unanchored search of every kernel
 * pattern at once: state 0 is the start, trans[s * 256 + byte] the next
 * state, with LWM_ACCEPT set when that next state accepts. accept[s] is
 * then the kernel rule index + 1 (the lowest one when several end there).
 * A rule may also ask for an entropy check of the ent_len bytes that end
 * the match (placeholders such as sk-ant-api03-xxxx... must not block).
 *
 * Whole tables are swapped, never edited: the BPF side reaches the table
 * through a one-slot map-in-map, so a reload is one pointer exchange.
 */
#ifndef LEAKWATCH_MATCH_H
#define LEAKWATCH_MATCH_H

#include "lwgates.h" /* LWG_MAX_POLICIES */

#define LWM_MAX_STATES 4096 /* power of two */
#define LWM_STATE_MASK (LWM_MAX_STATES - 1)
#define LWM_ACCEPT 0x8000u
#define LWM_MAX_RULES 128
#define LWM_RULE_WORDS (LWM_MAX_RULES / 64)
#define LWM_ENT_MAX 64 /* bytes an entropy check looks at, at most */

struct lwm_rule {
	unsigned short ent_len; /* 0: no entropy check, else 1..LWM_ENT_MAX */
	unsigned short _pad;
	/* The ent_len bytes that end the match pass when
	 *   sum over distinct byte values of clog[count] <= ent_max_sum,
	 * i.e. ent_len * H >= min_entropy * ent_len (H in bits per byte). */
	unsigned int ent_max_sum;
};

struct lwm_table {
	unsigned int gen;     /* new at every install: older per-connection states restart */
	unsigned int nstates; /* 1..LWM_MAX_STATES */
	unsigned int nrules;  /* kernel rules, 0..LWM_MAX_RULES */
	/* Every kernel pattern matches at most this many bytes (0: unknown or
	 * unbounded): a walk started this far before a position from state 0
	 * is in the right state there, so a buffer may be walked in pieces
	 * side by side. */
	unsigned int resync;
	unsigned int clog[LWM_ENT_MAX + 1]; /* round(c * log2(c) * 1024) */
	struct lwm_rule rules[LWM_MAX_RULES];
	/* Per policy index: a kernel rule's bit in `enforce` means the write is
	 * dropped; in `monitor`, reported as would_block and let through. */
	unsigned long long enforce[LWG_MAX_POLICIES][LWM_RULE_WORDS];
	unsigned long long monitor[LWG_MAX_POLICIES][LWM_RULE_WORDS];
	unsigned short accept[LWM_MAX_STATES];
	unsigned short trans[LWM_MAX_STATES * 256];
};

#endif /* LEAKWATCH_MATCH_H */
