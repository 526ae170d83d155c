/*
 * Masked samples: what a finding shows of the value it found. Enough for a
 * reviewer to tell findings apart ("sk-proj-****x4Qz", "****4242",
 * "j***@e***.com"), never enough to recover the value: at most a public
 * prefix, and of the rest no more than a quarter (secrets) or the last few
 * digits (card, phone, IBAN, SSN).
 */
#ifndef LW_CLASSIFY_MASK_H
#define LW_CLASSIFY_MASK_H

#include <stddef.h>

#include "classify/rules.h"

#define LW_MASK_MAX 48 /* bytes of out, NUL included (= LW_SAMPLE_MAX) */

/* Writes the masked form of v[0..n) to out (always NUL-terminated, printable
 * ASCII). prefixes: the rule's public prefixes (the longest one v starts
 * with is kept by LW_MASK_SECRET), may be NULL. */
void lw_mask(enum lw_mask_kind k, const char *v, size_t n, const struct lw_strv *prefixes,
	     char out[LW_MASK_MAX]);

/* The number of characters of a secret's random part (after its prefix)
 * that a sample may show: a quarter of it, at most 4. */
size_t lw_mask_tail_len(size_t random_len);

#endif
