/*
 * One connection's requests, decoded: the client->server plaintext of a TLS
 * connection goes in (one captured SSL_write at a time), and out comes each
 * request with its HTTP metadata and the text a model would read (body
 * decompressed, JSON prompt fields extracted). It picks HTTP/1.x or HTTP/2
 * from the first bytes and joins the stage's parsers: http1/http2 ->
 * inflate -> prompt.
 */
#ifndef LW_REQUEST_H
#define LW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/http.h"
#include "decode/inflate.h"
#include "decode/prompt.h"

struct lw_decode_limits {
	struct lw_http_limits http;
	struct lw_inflate_limits inflate;
	size_t max_text; /* prompt text classified per request */
};
void lw_decode_limits_default(struct lw_decode_limits *l);

struct lw_decode_stats {
	struct lw_http_stats http;
	uint64_t requests;      /* delivered */
	uint64_t not_http;      /* connections whose stream is not HTTP */
	uint64_t desynced;      /* streams given up after lost bytes or a protocol error */
	uint64_t inflate_limit; /* bodies cut by the decompression limits (bombs) */
	uint64_t inflate_corrupt;
	uint64_t inflate_unsupported;
	uint64_t json_errors;   /* bodies scanned by the lenient pass */
	uint64_t text_limited;  /* prompt text cut at max_text */
};

struct lw_decoded_req {
	const struct lw_http_req *http;
	const struct lw_prompt *prompt;
	enum lw_inflate_res inflate;
	bool incomplete; /* body cut (limits, lost capture) or decompression cut */
};
typedef void (*lw_decoded_cb)(const struct lw_decoded_req *r, void *ud);

struct lw_request_decoder;

/* limits and stats are borrowed (stats shared by every connection). */
struct lw_request_decoder *lw_request_decoder_new(const struct lw_decode_limits *l,
						  struct lw_decode_stats *st, lw_decoded_cb cb,
						  void *ud);
/* The next captured message of the client->server direction. lost: bytes of
 * the stream that were never captured just before/inside this message (a
 * ring-full drop or a message over --capture-max): HTTP/1.x resynchronises
 * at the next message that starts a request, HTTP/2 cannot (its header
 * compression state is gone) and the connection is given up, counted. */
void lw_request_decoder_feed(struct lw_request_decoder *d, const void *p, size_t n, bool lost);
/* The connection ended: deliver what is incomplete. */
void lw_request_decoder_finish(struct lw_request_decoder *d);
void lw_request_decoder_free(struct lw_request_decoder *d);
/* HTTP version in use: 0 unknown yet / not HTTP, 1, 2. */
int lw_request_decoder_version(const struct lw_request_decoder *d);

#endif
