/*
 * Content-Encoding through zlib, bounded: a request body is decompressed
 * before it is classified, and a hostile or broken body must cost bounded
 * memory and time (a 1 MiB gzip of zeros inflates to 1 GiB).
 */
#ifndef LW_INFLATE_H
#define LW_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define LW_INFLATE_MAX_OUT (8u << 20)
#define LW_INFLATE_MAX_RATIO 200u
/* The ratio test only applies past this much output: small bodies of
 * repeated bytes (JSON padding, blank lines) legitimately compress well. */
#define LW_INFLATE_RATIO_FLOOR (1u << 20)
#define LW_INFLATE_MAX_CODINGS 4

struct lw_inflate_limits {
	size_t max_out;	    /* default 8 MiB: output beyond is cut */
	uint32_t max_ratio; /* default 200: output > max_ratio * input (and > 1 MiB) is a bomb: cut;
			       0 disables the ratio test (max_out still applies) */
};
void lw_inflate_limits_default(struct lw_inflate_limits *l);

enum lw_inflate_res {
	LW_INFLATE_OK = 0,
	LW_INFLATE_LIMIT,   /* cut at a limit: out holds the output up to it */
	LW_INFLATE_CORRUPT, /* bad or truncated stream: out holds what decoded before the error */
	LW_INFLATE_UNSUPPORTED, /* a coding we do not decode (br, zstd, compress...): out is empty
				 */
};
const char *lw_inflate_res_str(enum lw_inflate_res r); /* "ok", "limit", "corrupt", "unsupported" */

/* content_encoding as in the header: NULL/""/"identity" -> copy (max_out applies); "gzip",
 * "x-gzip", "deflate" (zlib wrapper, falling back to raw deflate as browsers do), a list
 * "gzip, deflate" (decoded in reverse order), at most LW_INFLATE_MAX_CODINGS codings (more is
 * UNSUPPORTED), case-insensitive. Concatenated gzip members are all decoded; bytes after the last
 * member (or after a zlib/raw stream) are CORRUPT. The ratio is measured against n, the bytes
 * as received, at every stage of a list. With several codings the first problem is reported and
 * the later stages still decode what the earlier ones produced. out is appended to; l NULL means
 * the defaults. An empty input under codings we decode is OK and empty. */
enum lw_inflate_res lw_inflate(const char *content_encoding, const void *in, size_t n,
			       const struct lw_inflate_limits *l, struct lw_buf *out);

#endif
