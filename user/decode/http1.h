/*
 * HTTP/1.x request parser (RFC 9112), streaming: keep-alive and pipelined
 * requests, Content-Length and chunked bodies (extensions, trailers),
 * HTTP/1.0. Memory per connection stays under about
 * 2 * max_header_bytes + max_body whatever the input.
 *
 * Framing that cannot be trusted (two Content-Lengths, a Transfer-Encoding
 * that does not end in chunked, a bad chunk size, a head over
 * max_header_bytes, ...) ends the parse: a server would answer 400 and
 * close, and guessing would misread everything after. A request whose body
 * had started is still delivered, truncated, before the error.
 */
#ifndef LW_HTTP1_H
#define LW_HTTP1_H

#include <stddef.h>

#include "decode/http.h"

struct lw_http1;

/* l is copied; st is caller-owned and added to. */
struct lw_http1 *lw_http1_new(const struct lw_http_limits *l, lw_http_req_cb cb, void *ud,
			      struct lw_http_stats *st);
/* Returns 0, or -1 once the stream is not HTTP/1.x or has desynced: later
 * feeds are ignored and counted in bytes_skipped. After a CONNECT or an
 * Upgrade request, bytes that do not start a request mean the connection
 * switched protocols: also -1, counted as skipped rather than as an error. */
int lw_http1_feed(struct lw_http1 *h, const void *p, size_t n);
/* Connection ended: an incomplete request is delivered truncated. */
void lw_http1_finish(struct lw_http1 *h);
void lw_http1_free(struct lw_http1 *h);

#endif
