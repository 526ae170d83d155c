#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/buf.h"

void lw_diag_add(struct lw_diag *d, const char *file, int line, const char *fmt, ...)
{
	struct lw_buf b = { 0 };
	va_list ap;

	if (line > 0)
		lw_buf_printf(&b, "%s:%d: ", file, line);
	else
		lw_buf_printf(&b, "%s: ", file);
	va_start(ap, fmt);
	lw_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->msgs = lw_xrealloc(d->msgs, d->cap * sizeof(*d->msgs));
		d->lines = lw_xrealloc(d->lines, d->cap * sizeof(*d->lines));
	}
	d->lines[d->n] = line;
	d->msgs[d->n++] = b.p;
}

void lw_diag_sort_lines(struct lw_diag *d, size_t from)
{
	/* insertion sort: stable, and a file has a handful of errors */
	for (size_t i = from + 1; i < d->n; i++) {
		char *m = d->msgs[i];
		int line = d->lines[i];
		size_t j = i;

		for (; j > from && d->lines[j - 1] > line; j--) {
			d->msgs[j] = d->msgs[j - 1];
			d->lines[j] = d->lines[j - 1];
		}
		d->msgs[j] = m;
		d->lines[j] = line;
	}
}

void lw_diag_free(struct lw_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	free(d->lines);
	d->msgs = NULL;
	d->lines = NULL;
	d->n = d->cap = 0;
}
