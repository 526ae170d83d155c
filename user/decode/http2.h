/*
 * HTTP/2 request parser (RFC 9113, HPACK RFC 7541 through nghttp2's
 * inflater), client side only. The stream starts with the 24-byte client
 * preface. Frames are parsed as they arrive, never buffered whole: DATA is
 * streamed into the request bodies (first max_body bytes kept) and header
 * block fragments go straight to the inflater.
 *
 * A request is delivered at END_STREAM; RST_STREAM, a connection error or
 * finish deliver what was seen (body_truncated). Memory per connection is
 * bounded by max_streams requests (headers and max_body each) plus the
 * HPACK table.
 *
 * What a server treats as a connection error (RFC 9113 5.4.1: a bad
 * preface, bad padding, a broken CONTINUATION sequence, an HPACK error, ...)
 * ends the parse with -1; the server closes there too. Header blocks and
 * decoded header lists over max_header_bytes also end it. Stream-level
 * problems (a stream over max_streams, HEADERS on a closed stream) cost
 * that stream only, counted.
 *
 * max_hpack_table below 4096 is raised to 4096: RFC 7541's initial table
 * size, which a client may use without any negotiation.
 */
#ifndef LW_HTTP2_H
#define LW_HTTP2_H

#include <stddef.h>

#include "decode/http.h"

struct lw_http2;

/* l is copied; st is caller-owned and added to. */
struct lw_http2 *lw_http2_new(const struct lw_http_limits *l, lw_http_req_cb cb, void *ud,
			      struct lw_http_stats *st);
/* Returns 0, or -1 once the stream is not HTTP/2 or a connection error
 * happened: later feeds are ignored and counted in bytes_skipped. */
int lw_http2_feed(struct lw_http2 *h, const void *p, size_t n);
/* Connection ended: open streams are delivered truncated. */
void lw_http2_finish(struct lw_http2 *h);
void lw_http2_free(struct lw_http2 *h);

#endif
