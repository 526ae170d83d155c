#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
	fputs("leakwatch: error: out of memory\n", stderr);
	abort();
}

void *lw_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *lw_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *lw_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *lw_xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		oom();
	return d;
}

void lw_buf_reserve(struct lw_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1; /* always room for a terminating NUL */

	if (need <= b->cap)
		return;
	if (need < b->cap * 2)
		need = b->cap * 2;
	if (need < 256)
		need = 256;
	b->p = lw_xrealloc(b->p, need);
	b->cap = need;
}

void lw_buf_put(struct lw_buf *b, const void *data, size_t n)
{
	lw_buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
}

void lw_buf_putc(struct lw_buf *b, char c)
{
	lw_buf_put(b, &c, 1);
}

void lw_buf_puts(struct lw_buf *b, const char *s)
{
	lw_buf_put(b, s, strlen(s));
}

void lw_buf_vprintf(struct lw_buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n >= 0) {
		lw_buf_reserve(b, (size_t)n);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
}

void lw_buf_printf(struct lw_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lw_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void lw_buf_reset(struct lw_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = 0;
}

void lw_buf_free(struct lw_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int lw_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
