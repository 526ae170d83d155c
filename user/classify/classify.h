/*
 * The classifier: every rule and exact-value list of a ruleset compiled into
 * one Vectorscan database, hits confirmed by validators, context words and
 * allowlists, overlaps settled, and one finding per rule or list.
 *
 * A classifier is immutable once built and may be shared by threads; each
 * thread scans with its own context (Vectorscan scratch and work buffers).
 * Findings carry a masked sample and, when a key is set, a keyed hash of the
 * value: the raw value never leaves lw_classify.
 */
#ifndef LW_CLASSIFY_CLASSIFY_H
#define LW_CLASSIFY_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify/rules.h"
#include "policy/diag.h"

#define LW_SAMPLE_MAX 48

struct lw_finding {
	const char *type, *rule; /* into the ruleset (valid while the classifier lives) */
	enum lw_severity severity;
	enum lw_action action;
	uint32_t count;		     /* validated occurrences in the text */
	size_t first_off, first_len; /* of the first occurrence */
	char sample[LW_SAMPLE_MAX];  /* the first occurrence, MASKED: never enough to recover the
					value */
	uint8_t fp[32]; /* HMAC-SHA256(key, normalised value) of the first occurrence */
	bool has_fp;	/* when a key is set */
	bool is_list;	/* from an exact-value list (rule is the list id) */
	bool monitor;	/* its rule/list is in `mode: monitor`: never blocks */
};

struct lw_findings {
	struct lw_finding *v;
	size_t n, cap;
	/* candidates not examined because a per-scan bound was reached (a
	 * hostile or enormous input): the findings may be incomplete */
	uint64_t dropped;
};

struct lw_classifier; /* immutable once built: one Vectorscan database for all rules and lists */

/* Compiles the active rules and lists of rs (which must outlive the
 * classifier). Problems go to d (FILE:LINE of the rule where known); NULL
 * when it could not be built. */
struct lw_classifier *lw_classifier_new(const struct lw_ruleset *rs, struct lw_diag *d);
void lw_classifier_free(struct lw_classifier *c);
/* Fingerprint key (copied). Call before sharing the classifier. n == 0
 * turns fingerprints off. */
void lw_classifier_set_key(struct lw_classifier *c, const void *key, size_t n);

struct lw_classify_ctx; /* per thread: Vectorscan scratch and work buffers */
struct lw_classify_ctx *lw_classify_ctx_new(const struct lw_classifier *c);
void lw_classify_ctx_free(struct lw_classify_ctx *x);

/* Resets out, then one finding per rule/list that matched (count >= its
 * min_count), ordered by first_off. Returns out->n, or -1 on an engine error. */
int lw_classify(struct lw_classify_ctx *x, const void *text, size_t n, struct lw_findings *out);
void lw_findings_free(struct lw_findings *f);

struct lw_classify_stats {
	uint64_t scans, bytes;
	uint64_t candidates; /* possible values the database found */
	uint64_t validated;  /* occurrences counted in findings */
	uint64_t rejected;   /* candidates rejected, the sum of: */
	uint64_t rej_length, rej_boundary, rej_context, rej_allowlist, rej_placeholder, rej_entropy,
		rej_validator;
	uint64_t duplicates;		/* the same occurrence found again (sliding matches) */
	uint64_t suppressed;		/* overlapped by a higher-priority finding */
	uint64_t dropped;		/* hits/candidates beyond the per-scan bounds */
	uint64_t windows, window_bytes; /* confirmation scans and what they covered */
	uint64_t engine_errors;
};
struct lw_classify_stats lw_classify_ctx_stats(const struct lw_classify_ctx *x);

/* Number of expressions in the main database (for `leakwatch` diagnostics). */
size_t lw_classifier_expressions(const struct lw_classifier *c);

#endif
