/* Configuration errors, collected rather than stopping at the first: whoever
 * edits a policy directory wants every mistake in one run. Each message reads
 * "FILE:LINE: reason" (just "FILE: reason" for errors about a whole file),
 * the form editors and CI annotations understand. */
#ifndef LW_DIAG_H
#define LW_DIAG_H

#include <stddef.h>

struct lw_diag {
	char **msgs;
	int *lines; /* of each message, for sorting */
	size_t n;
	size_t cap;
};

/* line is 1-based; line <= 0 leaves it out. */
void lw_diag_add(struct lw_diag *d, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Stable sort of msgs[from..n) by line: loaders call it for the messages of
 * one file, which checks find in the order of the checks, not of the text. */
void lw_diag_sort_lines(struct lw_diag *d, size_t from);
void lw_diag_free(struct lw_diag *d);

#endif
