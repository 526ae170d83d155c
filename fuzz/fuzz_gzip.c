/*
 * libFuzzer target for lw_inflate. The first byte picks the Content-Encoding
 * and the limits; the rest is the body. Checked: the limits hold, an
 * unsupported coding appends nothing, what was in the output buffer stays,
 * and (when the selector asks) the body gzipped by zlib decodes back to
 * itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "decode/inflate.h"

static const char *const codings[] = {
	"gzip",
	"deflate",
	"x-gzip",
	"gzip, deflate",
	"deflate, gzip",
	"identity",
	"",
	NULL,
	"br",
	"GZIP , identity",
	"gzip,gzip",
	"gzip, gzip, gzip, gzip, gzip",
	"deflate,deflate",
	"gzip, deflate, gzip",
	"zstd, gzip",
	"Deflate",
};

static void roundtrip(const uint8_t *d, size_t n)
{
	struct lw_buf z = {0}, out = {0};
	z_stream zs;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	lw_buf_reserve(&z, deflateBound(&zs, n));
	zs.next_in = (Bytef *)(uintptr_t)d;
	zs.avail_in = (uInt)n;
	zs.next_out = (Bytef *)z.p;
	zs.avail_out = (uInt)(z.cap - 1);
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	z.len = zs.total_out;
	deflateEnd(&zs);
	if (lw_inflate("gzip", z.p, z.len, NULL, &out) != LW_INFLATE_OK || out.len != n ||
	    (n && memcmp(out.p, d, n)))
		abort();
	lw_buf_free(&z);
	lw_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_inflate_limits l;
	struct lw_buf out = {0};
	enum lw_inflate_res r;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	if (sel == 0xff) {
		roundtrip(data, size);
		return 0;
	}
	lw_inflate_limits_default(&l);
	/* small limits make the cut paths reachable with small inputs */
	if (sel & 0x10)
		l.max_out = (sel & 0x20) ? 1 + (size_t)(sel & 0x0f) * 977 : 0;
	if (sel & 0x40)
		l.max_ratio = (sel & 0x80) ? 2 : 0;
	lw_buf_puts(&out, "pre");
	r = lw_inflate(codings[sel % (sizeof(codings) / sizeof(codings[0]))], data, size, &l, &out);
	if (out.len < 3 || memcmp(out.p, "pre", 3))
		abort();
	if (out.len - 3 > l.max_out)
		abort();
	if (r == LW_INFLATE_UNSUPPORTED && out.len != 3)
		abort();
	if (l.max_ratio && out.len - 3 > LW_INFLATE_RATIO_FLOOR &&
	    out.len - 3 > (size_t)l.max_ratio * size)
		abort();
	if (!lw_inflate_res_str(r))
		abort();
	lw_buf_free(&out);
	return 0;
}
