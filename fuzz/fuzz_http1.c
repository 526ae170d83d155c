/*
 * libFuzzer target: the HTTP/1.x request parser (user/decode/http1.c).
 *
 * Input: 4 bytes of setup, then the client stream. The setup picks small
 * limits (so the over-limit paths are reached with short inputs), how the
 * stream is split into feeds, and whether the connection is finished. Every
 * delivered request is checked against the limits and the API's promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/http1.h"

struct fz {
	struct lw_http_limits lim;
	uint64_t sum; /* reads every delivered byte, for ASan */
};

static void check_str(const char *s, struct fz *f)
{
	f->sum += strlen(s);
}

static void on_req(const struct lw_http_req *r, void *ud)
{
	struct fz *f = ud;

	if (r->version != 1 || r->stream_id != 0)
		abort();
	if (r->body_len > f->lim.max_body || r->body_len > r->body_total)
		abort();
	if (r->body_total > r->body_len && !r->body_truncated)
		abort();
	check_str(r->method, f);
	check_str(r->path, f);
	check_str(r->authority, f);
	check_str(r->content_type, f);
	check_str(r->content_encoding, f);
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct lw_http_header *h = &r->headers[i];

		if (h->name[h->name_len] || h->value[h->value_len] || !h->name_len)
			abort();
		for (size_t k = 0; k < h->name_len; k++)
			if (h->name[k] >= 'A' && h->name[k] <= 'Z')
				abort();
		f->sum += h->value_len;
	}
	for (size_t i = 0; i < r->body_len; i++)
		f->sum += r->body[i];
	if (lw_http_req_header(r, "content-type") && !*r->content_type &&
	    lw_http_req_header(r, "content-type")->value_len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct lw_http_stats st;
	struct lw_http1 *h;
	uint32_t x;
	uint8_t split, flags;
	size_t off = 0;
	int failed = 0;

	if (size < 4)
		return 0;
	memset(&st, 0, sizeof(st));
	lw_http_limits_default(&f.lim);
	f.lim.max_header_bytes = 32 + (size_t)(data[0] % 64) * 16; /* 32..1040 */
	f.lim.max_body = (size_t)(data[1] % 64) * 4;		   /* 0..252 */
	split = data[2];
	flags = data[3];
	f.sum = 0;
	data += 4;
	size -= 4;
	x = 0x9e3779b9u * (split + 1u);
	h = lw_http1_new(&f.lim, on_req, &f, &st);
	while (off < size) {
		size_t n = size - off;
		int rc;

		if (!(split & 0x80)) {
			/* pieces of 1 .. (split & 0x7f) + 1 bytes */
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % ((split & 0x7fu) + 1u);
			if (n > size - off)
				n = size - off;
		}
		rc = lw_http1_feed(h, data + off, n);
		if (failed && rc != -1)
			abort(); /* once failed, always failed */
		failed = rc < 0;
		off += n;
	}
	if (!(flags & 1))
		lw_http1_finish(h);
	lw_http1_free(h);
	if (st.bodies_truncated > st.requests)
		abort();
	return 0;
}
