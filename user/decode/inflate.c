#include "decode/inflate.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

enum coding { C_GZIP, C_DEFLATE };

/* zlib's avail_in is 32 bits: bigger inputs are fed in slices. */
#define FEED_MAX (1u << 30)
#define OUT_STEP (64u << 10)

void lw_inflate_limits_default(struct lw_inflate_limits *l)
{
	l->max_out = LW_INFLATE_MAX_OUT;
	l->max_ratio = LW_INFLATE_MAX_RATIO;
}

const char *lw_inflate_res_str(enum lw_inflate_res r)
{
	switch (r) {
	case LW_INFLATE_OK:
		return "ok";
	case LW_INFLATE_LIMIT:
		return "limit";
	case LW_INFLATE_CORRUPT:
		return "corrupt";
	case LW_INFLATE_UNSUPPORTED:
		return "unsupported";
	}
	return "unknown";
}

/* Output allowed for any stage: max_out, and the ratio cap against the bytes received. */
static size_t allowance(const struct lw_inflate_limits *l, size_t n)
{
	size_t allow = l->max_out;

	if (l->max_ratio) {
		size_t cap = n > SIZE_MAX / l->max_ratio ? SIZE_MAX : n * l->max_ratio;

		if (cap < LW_INFLATE_RATIO_FLOOR)
			cap = LW_INFLATE_RATIO_FLOOR;
		if (cap < allow)
			allow = cap;
	}
	return allow;
}

/* Parses the header value into codings in the order they were applied. Returns the count, or -1
 * for a coding we do not decode or too many of them. */
static int parse_codings(const char *s, enum coding *v)
{
	int n = 0;

	if (!s)
		return 0;
	while (*s) {
		const char *e;
		size_t len;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		e = s;
		while (*e && *e != ',')
			e++;
		len = (size_t)(e - s);
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len) {
			enum coding c;

			if (len == 8 && !strncasecmp(s, "identity", 8)) {
				s = e;
				continue;
			}
			if ((len == 4 && !strncasecmp(s, "gzip", 4)) ||
			    (len == 6 && !strncasecmp(s, "x-gzip", 6)))
				c = C_GZIP;
			else if (len == 7 && !strncasecmp(s, "deflate", 7))
				c = C_DEFLATE;
			else
				return -1;
			if (n == LW_INFLATE_MAX_CODINGS)
				return -1;
			v[n++] = c;
		}
		s = e;
	}
	return n;
}

/* One zlib stream (or a run of gzip members) appended to out, at most allow bytes. */
static enum lw_inflate_res run_zlib(int wbits, bool members, const unsigned char *in, size_t n,
				    size_t allow, struct lw_buf *out)
{
	z_stream zs;
	size_t start = out->len, fed = 0;
	enum lw_inflate_res res = LW_INFLATE_CORRUPT;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, wbits) != Z_OK)
		return LW_INFLATE_CORRUPT;
	for (;;) {
		size_t added = out->len - start, want;
		int rc;

		/* One byte past the allowance tells "exactly at the limit" from "over it". */
		if (added > allow) {
			out->len = start + allow;
			res = LW_INFLATE_LIMIT;
			break;
		}
		want = allow + 1 - added;
		if (want > OUT_STEP)
			want = OUT_STEP;
		lw_buf_reserve(out, want);
		zs.next_out = (Bytef *)out->p + out->len;
		zs.avail_out = (uInt)want;
		if (zs.avail_in == 0 && fed < n) {
			size_t k = n - fed > FEED_MAX ? FEED_MAX : n - fed;

			zs.next_in = (Bytef *)(uintptr_t)(in + fed);
			zs.avail_in = (uInt)k;
			fed += k;
		}
		rc = inflate(&zs, Z_NO_FLUSH);
		out->len += want - zs.avail_out;
		if (rc == Z_STREAM_END) {
			size_t left = zs.avail_in + (n - fed);
			const unsigned char *next = in + (n - left);

			if (!left) {
				res = LW_INFLATE_OK;
				break;
			}
			/* Another gzip member follows (gzip -c a >x; gzip -c b >>x). */
			if (members && left >= 2 && next[0] == 0x1f && next[1] == 0x8b &&
			    inflateReset(&zs) == Z_OK)
				continue;
			break; /* trailing bytes that are not a stream */
		}
		if (rc == Z_BUF_ERROR) {
			/* No progress: more room or input helps, else the stream is cut short. */
			if (zs.avail_out == 0 || (zs.avail_in == 0 && fed < n))
				continue;
			break;
		}
		if (rc != Z_OK)
			break; /* Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR */
	}
	inflateEnd(&zs);
	if (out->len > start + allow) {
		/* the byte past the allowance came with the end of the stream */
		out->len = start + allow;
		res = LW_INFLATE_LIMIT;
	}
	if (out->p)
		out->p[out->len] = 0;
	return res;
}

/* A zlib header: deflate method, window <= 32K, header checksum. */
static bool zlib_header(const unsigned char *in, size_t n)
{
	return n >= 2 && (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 &&
	       ((unsigned)in[0] << 8 | in[1]) % 31 == 0;
}

static enum lw_inflate_res decode_one(enum coding c, const unsigned char *in, size_t n,
				      size_t allow, struct lw_buf *out)
{
	size_t start = out->len;
	enum lw_inflate_res r;

	if (c == C_GZIP)
		return run_zlib(16 + MAX_WBITS, true, in, n, allow, out);
	/* "deflate" is meant to be zlib-wrapped, but some clients send raw deflate. A raw stream
	 * can happen to start with a valid zlib header: when the zlib reading fails before
	 * producing anything, raw is tried as well. */
	if (zlib_header(in, n)) {
		r = run_zlib(MAX_WBITS, false, in, n, allow, out);
		if (r != LW_INFLATE_CORRUPT || out->len != start)
			return r;
	}
	r = run_zlib(-MAX_WBITS, false, in, n, allow, out);
	if (r == LW_INFLATE_CORRUPT && out->len == start && zlib_header(in, n))
		return LW_INFLATE_CORRUPT;
	return r;
}

enum lw_inflate_res lw_inflate(const char *content_encoding, const void *in, size_t n,
			       const struct lw_inflate_limits *l, struct lw_buf *out)
{
	struct lw_inflate_limits def;
	enum coding cod[LW_INFLATE_MAX_CODINGS];
	enum lw_inflate_res res = LW_INFLATE_OK;
	struct lw_buf tmp[2] = {{0}, {0}};
	const unsigned char *src = in;
	size_t srclen = n, allow;
	int nc;

	if (!l) {
		lw_inflate_limits_default(&def);
		l = &def;
	}
	if (!src)
		srclen = n = 0;
	nc = parse_codings(content_encoding, cod);
	if (nc < 0)
		return LW_INFLATE_UNSUPPORTED;
	if (nc == 0) {
		size_t k = n > l->max_out ? l->max_out : n;

		lw_buf_put(out, k ? (const void *)src : "", k);
		return k < n ? LW_INFLATE_LIMIT : LW_INFLATE_OK;
	}
	if (n == 0)
		return LW_INFLATE_OK; /* no body (Content-Length: 0) under a Content-Encoding */
	allow = allowance(l, n);
	/* The last coding applied is the first undone; intermediate results alternate between two
	 * scratch buffers and the final stage appends straight to out. */
	for (int i = nc - 1; i >= 0; i--) {
		struct lw_buf *dst = i == 0 ? out : &tmp[i & 1];
		enum lw_inflate_res r;

		if (dst != out)
			lw_buf_reset(dst);
		r = decode_one(cod[i], src ? src : (const unsigned char *)"", srclen, allow, dst);
		if (res == LW_INFLATE_OK)
			res = r;
		if (dst != out) {
			src = (const unsigned char *)dst->p;
			srclen = dst->len;
		}
	}
	lw_buf_free(&tmp[0]);
	lw_buf_free(&tmp[1]);
	return res;
}
