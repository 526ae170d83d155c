/* A growable byte buffer. Allocation failure aborts: the agent cannot do
 * anything useful without memory, and half-written records are worse. */
#ifndef LW_BUF_H
#define LW_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct lw_buf {
	char *p;
	size_t len;
	size_t cap;
};

void lw_buf_reserve(struct lw_buf *b, size_t extra);
void lw_buf_put(struct lw_buf *b, const void *data, size_t n);
void lw_buf_putc(struct lw_buf *b, char c);
void lw_buf_puts(struct lw_buf *b, const char *s);
void lw_buf_printf(struct lw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lw_buf_vprintf(struct lw_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void lw_buf_reset(struct lw_buf *b);
void lw_buf_free(struct lw_buf *b);

void *lw_xmalloc(size_t n);
void *lw_xcalloc(size_t n, size_t size);
void *lw_xrealloc(void *p, size_t n);
char *lw_xstrdup(const char *s);

/* The value of a hex digit (either case), -1 for any other character. */
int lw_hexval(char c);

#endif
