/*
 * libFuzzer target: the HTTP/2 request parser (user/decode/http2.c) and
 * its HPACK decoding.
 *
 * Input: 4 bytes of setup, then the client stream after the 24-byte
 * preface (which the target feeds itself unless setup says not to, so the
 * fuzzer spends its time on frames). The setup picks small limits (few
 * streams, tiny bodies and header blocks, HPACK table sizes around the
 * 4096 floor), how the stream is split into feeds, and whether the
 * connection is finished. Every delivered request is checked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/http2.h"

struct fz {
	struct lw_http_limits lim;
	uint64_t sum; /* reads every delivered byte, for ASan */
};

static void on_req(const struct lw_http_req *r, void *ud)
{
	struct fz *f = ud;

	if (r->version != 2 || r->stream_id == 0 || !(r->stream_id & 1))
		abort();
	if (r->body_len > f->lim.max_body || r->body_len > r->body_total)
		abort();
	if (r->body_total > r->body_len && !r->body_truncated)
		abort();
	f->sum += strlen(r->method) + strlen(r->path) + strlen(r->authority) +
		  strlen(r->content_type) + strlen(r->content_encoding);
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct lw_http_header *h = &r->headers[i];

		if (h->name[h->name_len] || h->value[h->value_len])
			abort();
		if (h->name_len && h->name[0] == ':')
			abort(); /* pseudo-fields never reach the headers */
		for (size_t k = 0; k < h->name_len; k++)
			if (h->name[k] >= 'A' && h->name[k] <= 'Z')
				abort();
		f->sum += h->value_len;
	}
	for (size_t i = 0; i < r->body_len; i++)
		f->sum += r->body[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct lw_http_stats st;
	struct lw_http2 *h;
	uint32_t x;
	uint8_t split, flags;
	size_t off = 0;
	int failed = 0;

	if (size < 4)
		return 0;
	memset(&st, 0, sizeof(st));
	lw_http_limits_default(&f.lim);
	f.lim.max_header_bytes = 64 + (size_t)(data[0] & 0x3f) * 32; /* 64..2080 */
	f.lim.max_streams = (data[0] >> 6) + (data[1] & 3);	     /* 0..6 */
	f.lim.max_body = (size_t)(data[1] >> 2) * 4;		     /* 0..252 */
	f.lim.max_hpack_table = (data[3] & 0x80) ? 8192 : 256;	     /* 256 -> 4096 */
	split = data[2];
	flags = data[3];
	f.sum = 0;
	data += 4;
	size -= 4;
	x = 0x9e3779b9u * (split + 1u);
	h = lw_http2_new(&f.lim, on_req, &f, &st);
	if (!(flags & 2))
		failed = lw_http2_feed(h, LW_HTTP2_PREFACE, LW_HTTP2_PREFACE_LEN) < 0;
	if (failed)
		abort();
	while (off < size) {
		size_t n = size - off;
		int rc;

		if (!(split & 0x80)) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % ((split & 0x7fu) + 1u);
			if (n > size - off)
				n = size - off;
		}
		rc = lw_http2_feed(h, data + off, n);
		if (failed && rc != -1)
			abort();
		failed = rc < 0;
		off += n;
	}
	if (!(flags & 1))
		lw_http2_finish(h);
	lw_http2_free(h);
	if (st.bodies_truncated > st.requests)
		abort();
	return 0;
}
