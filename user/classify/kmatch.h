/*
 * The compiler of the in-kernel content matcher (bpf/lwmatch.h): which block
 * rules and lists of a ruleset the TLS write uprobe can decide on its own,
 * before the plaintext is encrypted, and the one DFA that finds all of them.
 * See "Content blocking" in DESIGN.md.
 *
 * The kernel only sees bytes and a few hundred instructions per write, so it
 * decides a rule only when the rule's verdict needs nothing but its pattern
 * and an entropy figure. Everything else (validators, context words, counts,
 * allowlists beyond exact values, hashed list values) stays with the
 * user-space classifier, whose verdict arrives after the write. Each block
 * rule that stays there gets a reason, so that the agent can say why a
 * block is not synchronous (lw_kmatch_report).
 *
 * What the kernel form of a rule matches (docs/rules.md, "In-kernel
 * blocking", says it for users):
 *  - its pattern in "contains" form: an optional part or the open end of a
 *    repeat at either edge is cut to its minimum (at the start this changes
 *    nothing; at the end the shortest match is the one found first anyway);
 *    a class run at the start is cut to one byte, one at the end to its
 *    first 24 bytes (32, 48 or 64 when the entropy check needs them), and a
 *    repeat inside runs at most 16 beyond its minimum: all to keep the DFA
 *    within budget, and the last so that every kernel match is bounded
 *    (lwm_table.resync, the longest; see bound() in kmatch.c);
 *  - without `\b` at its edges: a kernel match may be part of a longer
 *    token that the classifier would not report;
 *  - without max_length, boundary and placeholder checks; min_length
 *    lengthens an open trailing run where the part before it is bounded;
 *  - with min_entropy as a check of the last ent_len bytes of the match
 *    (its random part, at most LWM_ENT_MAX bytes), where the classifier
 *    looks at the whole value after its prefix; a window that would let
 *    real keys through (judged on random values of the pattern) keeps the
 *    rule in user space;
 *  - `allow` values as exemptions, where each is a whole kernel match;
 *  - the private_key rule on its BEGIN line alone (the classifier's
 *    validator looks for a key body after it, which may be in a later
 *    write);
 *  - leftmost first: once a candidate's random part has begun (after a
 *    literal of 3 bytes), matches that begin after it are not followed
 *    until it ends or breaks off. This is what keeps one DFA of some 50
 *    rules within the budget; see nfa_pending() in kmatch.c. It also makes
 *    resync approximate: a walk started resync bytes early from state 0
 *    can differ from the sequential walk when a candidate that began
 *    before it kept one inside it from being followed (overlapping
 *    candidates only; then a genuine kernel match may be reported, or a
 *    value glued to a failing candidate's random part missed).
 * Literal lists are matched exactly (case-insensitively unless normalize is
 * none), without the classifier's token boundary check.
 *
 * Budget: LWM_MAX_RULES kernel rules and LWM_MAX_STATES DFA states. Rules
 * are added in ruleset order (rules, then lists); one whose addition would
 * exceed the budget stays in user space and the next ones are still tried.
 * The built-in pack takes 51 of its 69 block rules in about 3,430 states;
 * resync is 91 (gcp_service_account).
 */
#ifndef LW_CLASSIFY_KMATCH_H
#define LW_CLASSIFY_KMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify/rules.h"
#include "lwmatch.h" /* bpf/ is on the include path */

/* One block rule or list of the ruleset (action block, not disabled). */
struct lw_kmatch_entry {
	const char *id, *type; /* borrowed from the ruleset */
	bool is_list;
	int index; /* into rs->rules or rs->lists (their `monitor` picks the mask) */
	int kidx;  /* kernel rule index (0..nrules-1), or -1: stays in user space */
	/* Why it stays in user space ("" when in the kernel). Never quotes a
	 * list value or an allow entry: those may be secrets. */
	char reason[160];
	/* For kernel rules: what the kernel matches, as a regex of the kernel
	 * form plus its checks, e.g. "(?:A3T[0-9A-Z]|AKIA|ASIA|ABIA|ACCA)
	 * [2-7A-Z]{16}; entropy >= 2.5 over 16 bytes; 1 allow value exempt"
	 * (list values are counted, not shown). May be cut short ("..."). */
	char kernel_form[160];
};

struct lw_kmatch {
	/* heap, sizeof(struct lwm_table). gen, enforce and monitor are left
	 * zero: the policy loader fills the masks per policy and the installer
	 * sets gen. resync: the longest kernel match (0 when none is taken). */
	struct lwm_table *table;
	struct lw_kmatch_entry *e; /* every block rule/list, in ruleset order */
	size_t n;
	int kentry[LWM_MAX_RULES]; /* kernel rule index -> index into e (-1: unused) */
};

/* Builds the table for rs (out is overwritten; free it with lw_kmatch_free
 * even after a failure). Returns 0, or -1 when the table could not be
 * allocated (other allocations abort, as everywhere in the agent). Takes
 * about 40 ms for the built-in pack on one core, plus about one DFA
 * construction (some 5 ms) per rule that does not fit the budget: call it
 * at load and reload, never per request. */
int lw_kmatch_build(const struct lw_ruleset *rs, struct lw_kmatch *out);
void lw_kmatch_free(struct lw_kmatch *km);

/* The exact walk the BPF program performs, for tests and for user space
 * (e.g. to say which kernel rule dropped a write):
 * scans buf[0..n) continuing from *state (0 at a connection's start);
 * returns the kernel rule index of the first accepted match whose entropy
 * check passes, and sets *end to the offset of its last byte; -1 when none.
 * *state is updated to the state after the last byte scanned (after a match
 * the scan stops; the state is the one after the matching byte).
 * Entropy: the ent_len bytes ending at *end; if fewer than ent_len bytes of
 * this buffer precede the end (the match began in an earlier write), the
 * check passes. A match whose entropy check fails does not stop the scan. */
int lw_kmatch_scan(const struct lwm_table *t, const void *buf, size_t n, uint16_t *state,
		   size_t *end);

/* The entropy check of kernel rule r on the ent_len bytes ending at
 * p[len - 1], as the BPF program computes it: per distinct byte value of
 * the window, clog[count] summed, against ent_max_sum. Passes when len <
 * ent_len (the match began in an earlier write) and for rules without a
 * check (ent_len 0). */
bool lw_kmatch_entropy_ok(const struct lwm_table *t, unsigned r, const uint8_t *p, size_t len);

/* Human-readable summary: one line with how many block rules/lists run in
 * the kernel and the DFA size, then one line per block rule/list that stays
 * in user space, with its reason. Calls fn once per line (no newline). */
void lw_kmatch_report(const struct lw_kmatch *km, void (*fn)(const char *line, void *ud), void *ud);

#endif
