/*
 * Small Vectorscan helpers shared by the rule loader (checking patterns) and
 * the classifier (building databases).
 */
#ifndef LW_CLASSIFY_HSUTIL_H
#define LW_CLASSIFY_HSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define LW_HS_UNBOUNDED UINT32_MAX

struct lw_hs_info {
	uint32_t min_width, max_width; /* max LW_HS_UNBOUNDED when unbounded */
};

/* Compiles one pattern alone (block mode; HS_FLAG_SOM_LEFTMOST when som) and
 * fills info. On failure writes Vectorscan's reason to err (the pattern text
 * is not repeated: it may be long) and returns false. Patterns that can
 * match the empty string are refused: they would match everywhere. */
bool lw_hs_check(const char *pattern, unsigned flags, bool som, struct lw_hs_info *info, char *err,
		 size_t errlen);

/* Only what hs_expression_info tells (syntax, widths), without compiling:
 * for patterns that are compiled right after anyway. */
bool lw_hs_info(const char *pattern, unsigned flags, struct lw_hs_info *info, char *err,
		size_t errlen);

/* Appends s[0..n) to b as a regex matching exactly those bytes. */
void lw_hs_escape(struct lw_buf *b, const char *s, size_t n);

#endif
