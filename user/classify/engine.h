/*
 * The classifier's compiled form, shared by build.c (which makes it) and
 * classify.c (which scans with it). Not a public interface.
 *
 * One main database holds an expression per rule (or per shared trigger, or
 * per rule's context words), per literal list value and per token kind. The
 * main database never tracks where a match starts (that makes Vectorscan
 * slow and refuses many patterns); a hit is turned into a value by one of:
 *
 *   DIRECT   fixed-width pattern: the value is the width bytes before the end
 *   LITERAL  a list value: likewise
 *   WINDOW   a group's start-of-match database is run over a window around
 *            the hit. The windows of one scan are merged and joined by
 *            newlines into one buffer per group, scanned with one call:
 *            a call costs more than a short window's bytes
 *   ASSIGN   context words of an `assign` rule: the value start is parsed
 *            after the word, the anchored pattern finds its end
 *   TOKEN    a token of a list kind: its bounds are found in C
 *
 * Digit runs are not looked for by the database: a digit-class expression
 * costs Vectorscan more than all the other rules together (it runs on every
 * byte and reports often), so one vectorised pass in C finds them, for the
 * '@digits' trigger and for digits-token lists alike.
 */
#ifndef LW_CLASSIFY_ENGINE_H
#define LW_CLASSIFY_ENGINE_H

#include <hs.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify/rules.h"

/* A pattern without a bounded width is looked for at most this far from a
 * hit unless the rule sets max_length. */
#define LW_ENGINE_DEFAULT_MAX 512

enum lw_ex_kind { LW_EX_DIRECT, LW_EX_LITERAL, LW_EX_WINDOW, LW_EX_ASSIGN, LW_EX_TOKEN };

struct lw_expr {
	enum lw_ex_kind kind;
	uint32_t ref;	/* DIRECT, ASSIGN: rule; LITERAL: list; WINDOW: group; TOKEN: kind */
	uint32_t width; /* DIRECT, LITERAL: bytes of the value */
};

/* The built-in trigger '@digits': runs of digits (see lists.h for the run
 * grammar) with at least a rule's min_digits digits; a value lies within
 * the run extended by the rule's margin on both sides (a phone number's
 * '+', an IBAN's country code and bank letters). */
#define LW_DIGITS_TRIGGER "@digits"

struct lw_group {
	hs_database_t *db; /* start-of-match; expression i confirms rule members[i] */
	/* the same patterns without start-of-match tracking (two to three
	 * times cheaper per byte), for groups whose windows mostly hold no
	 * value (digit runs, triggers, context words): only the windows it
	 * matches in are scanned with db */
	hs_database_t *pre;
	uint32_t *members;
	uint32_t *width; /* with pre: a member's fixed width (its value is the width
			  * bytes before the pre-scan's match end), 0 when it varies */
	size_t nmembers;
	uint32_t before, after; /* window around a hit's end (around a digit run for @digits) */
	const char *trigger;	/* shared trigger (NULL: own pattern or context words) */
	unsigned min_digits;	/* @digits: runs with fewer digits are not looked at */
	bool digits;
};

struct lw_crule {
	bool active;
	uint32_t min_len, max_len;
	hs_database_t *allow_db; /* allow_regex, or NULL */
	hs_database_t *anchored; /* assign rules: ^(?:pattern) */
};

struct lw_classifier {
	const struct lw_ruleset *rs;
	hs_database_t *db; /* NULL when nothing is active */
	struct lw_expr *ex;
	size_t nex;
	struct lw_group *groups;
	size_t ngroups;
	struct lw_crule *cr; /* per rule */
	bool *list_active;   /* per list */
	bool token_used[LW_TOKEN__N];
	uint32_t *dgroups; /* the groups fed by digit runs */
	size_t ndgroups;
	unsigned min_run; /* fewest digits a run needs to be of use */
	unsigned char *key;
	size_t keylen;
};

#endif
