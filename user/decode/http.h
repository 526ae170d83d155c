/*
 * HTTP requests out of a client->server byte stream. The parsers (http1.h,
 * http2.h) take the plaintext of one connection in order, split anywhere,
 * and call back once per request with its metadata and its body (framing
 * removed, content coding kept). Only the client side is decoded: the
 * responses are not needed to find what an application sends.
 *
 * Everything is bounded by struct lw_http_limits; what does not fit is cut
 * and flagged (body_truncated) or counted (struct lw_http_stats), never
 * dropped silently.
 */
#ifndef LW_HTTP_H
#define LW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lw_http_limits {
	size_t max_header_bytes; /* request line + headers (h1), one header block (h2); default 64
				    KiB */
	size_t max_body;	 /* body bytes kept per request; default 1 MiB */
	uint32_t max_streams;	 /* h2 streams open at once; default 128 */
	size_t max_hpack_table;	 /* largest HPACK dynamic table we accept; default 65536 */
};
void lw_http_limits_default(struct lw_http_limits *l);

struct lw_http_header {
	const char *name, *value; /* NUL-terminated; names lower-case */
	size_t name_len, value_len;
};

/* Valid only during the callback. */
struct lw_http_req {
	int version;	    /* 1 or 2 */
	uint32_t stream_id; /* h2 stream id; 0 for HTTP/1.x */
	/* NUL-terminated, "" when absent; authority falls back to Host */
	const char *method, *path, *authority;
	/* regular headers in arrival order, trailers after them; no h2
	 * pseudo-headers */
	const struct lw_http_header *headers;
	size_t nheaders;
	const char *content_type, *content_encoding; /* first occurrence, "" when absent */
	const uint8_t *body; /* de-chunked / DATA concatenated, still content-encoded */
	size_t body_len;
	bool body_truncated; /* body over max_body (first max_body bytes kept) or ended early */
	uint64_t body_total; /* body bytes seen */
};
typedef void (*lw_http_req_cb)(const struct lw_http_req *r, void *ud);

/* First header named lname (compared without regard to case), or NULL. */
const struct lw_http_header *lw_http_req_header(const struct lw_http_req *r, const char *lname);

/* Counters a caller may share between connections; the parsers add to them. */
struct lw_http_stats {
	uint64_t requests;	   /* delivered */
	uint64_t parse_errors;	   /* protocol violations: fatal ones, and per request/stream */
	uint64_t bodies_truncated; /* delivered with body_truncated */
	uint64_t hpack_errors;	   /* h2 header blocks that did not decompress (fatal) */
	uint64_t streams_refused;  /* h2 streams over max_streams: headers decoded (HPACK state
				    * is shared), request dropped */
	/* input not decoded: after -1 or finish, after an h1 protocol switch
	 * (Upgrade, CONNECT), an unfinished h1 head line at finish, DATA of
	 * h2 streams not tracked (refused, closed) */
	uint64_t bytes_skipped;
};

enum lw_http_kind { LW_HTTP_MORE = 0, LW_HTTP_1, LW_HTTP_2, LW_HTTP_NONE };
/* Sniffs the first bytes of a client stream: the h2 client preface -> LW_HTTP_2; an HTTP/1.x
 * request line start (token method + SP) -> LW_HTTP_1; too few bytes to tell -> LW_HTTP_MORE; else
 * NONE. */
enum lw_http_kind lw_http_sniff(const void *p, size_t n);

/* ---- shared by the parsers (user/decode/http*.c), not for other callers ---- */

#define LW_HTTP2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define LW_HTTP2_PREFACE_LEN 24
/* longest method lw_http_sniff waits for before it gives up */
#define LW_HTTP_METHOD_MAX 32

bool lw_http_tchar(unsigned char c); /* RFC 9110 token character */

struct lw_http_hoff { /* a header as offsets into lw_http_msg.arena */
	size_t name, name_len, value, value_len;
};

/* One request being assembled: strings in an arena (offsets, so the arena
 * may grow), the body capped at max_body. */
struct lw_http_msg {
	char *arena;
	size_t arena_len, arena_cap;
	struct lw_http_hoff *h;
	size_t nh, hcap;
	struct lw_http_header *out; /* built at delivery */
	size_t outcap;
	size_t method, path, authority; /* arena offset + 1; 0 when absent */
	uint8_t *body;
	size_t body_len, body_cap;
	uint64_t body_total;
	bool truncated;
};

void lw_http_msg_init(struct lw_http_msg *m);
/* Empties m for the next request; big buffers are released so an idle
 * keep-alive connection does not pin max_body bytes. */
void lw_http_msg_reset(struct lw_http_msg *m);
void lw_http_msg_free(struct lw_http_msg *m);
/* The name is lower-cased. */
void lw_http_msg_add_header(struct lw_http_msg *m, const char *name, size_t nlen, const char *value,
			    size_t vlen);
/* Appends " " + s to the value of the last header (HTTP/1.x obs-fold). */
void lw_http_msg_fold(struct lw_http_msg *m, const char *s, size_t n);
enum lw_http_field { LW_HTTP_METHOD, LW_HTTP_PATH, LW_HTTP_AUTHORITY };
void lw_http_msg_set(struct lw_http_msg *m, enum lw_http_field f, const char *s, size_t n);
/* Counts n body bytes, keeps them while under max_body. */
void lw_http_msg_body(struct lw_http_msg *m, const void *p, size_t n, size_t max_body);
/* Calls cb with the request (truncated is or-ed into body_truncated) and
 * counts it; m is left as it was (reset it for reuse). */
void lw_http_msg_deliver(struct lw_http_msg *m, int version, uint32_t stream_id, bool truncated,
			 lw_http_req_cb cb, void *ud, struct lw_http_stats *st);

#endif
