/*
 * Exact-value lists: normalisation, SHA-256 digests and the tokens a text is
 * cut into for lists that are looked up rather than matched as literals.
 * docs/rules.md states the normalisations and token grammars precisely; the
 * digest helper of `leakwatch` must produce the same bytes.
 */
#ifndef LW_CLASSIFY_LISTS_H
#define LW_CLASSIFY_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify/rules.h"

#define LW_TOKEN_MAX 256      /* longest token considered, bytes */
#define LW_TOKEN_DIGITS_MIN 4 /* a digits token has 4..32 digits */
#define LW_TOKEN_DIGITS_MAX 32
#define LW_TOKEN_WORD_MIN 3

/* The token of kind k around text position pos (a byte of the token; for
 * LW_TOKEN_EMAIL the '@'). Returns false when there is none there or it is
 * out of bounds (too long, too few digits...). */
bool lw_token_bounds(enum lw_token_kind k, const char *t, size_t n, size_t pos, size_t *s,
		     size_t *e);

/* Digit runs: maximal sequences of digits in which at most two separators
 * (space - . / ( )) stand between two digits: "4111 1111 1111 1111",
 * "(415) 555-2671", "2024-05-01". fn gets every run with at least
 * min_digits digits, in text order. Vectorised: this is the only pass over
 * the text besides the database. */
typedef void (*lw_run_fn)(void *ud, size_t s, size_t e, unsigned ndigits);
void lw_digit_runs(const char *t, size_t n, unsigned min_digits, lw_run_fn fn, void *ud);
/* The same, byte by byte: the definition, which tests hold the fast one to. */
void lw_digit_runs_ref(const char *t, size_t n, unsigned min_digits, lw_run_fn fn, void *ud);

/* The Vectorscan expression that finds tokens of kind k (one report per
 * token, near its end) and where the token is relative to a report ending at
 * `end`: lw_token_pos(). NULL for LW_TOKEN_DIGITS: digit tokens are the
 * runs of lw_digit_runs. */
const char *lw_token_trigger(enum lw_token_kind k);
size_t lw_token_pos(enum lw_token_kind k, const char *t, size_t n, size_t end);

bool lw_list_lookup(const struct lw_list *l, const uint8_t digest[32]);
/* 64 hex digits, either case. */
bool lw_hex32(const char *s, uint8_t out[32]);
/* Sorts and removes duplicate digests. */
void lw_list_sort_digests(struct lw_list *l);
void lw_list_free(struct lw_list *l);

#endif
