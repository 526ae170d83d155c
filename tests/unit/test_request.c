/*
 * Unit tests for user/decode/request.c: one connection's requests from the
 * captured client stream to prompt text, through the real parsers, zlib and
 * jansson; and what a hole in the capture does to each HTTP version.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "decode/request.h"
#include "util/buf.h"

struct got {
	int n;
	char text[8][512];
	char path[8][128];
	int version[8];
	bool incomplete[8];
	enum lw_api api[8];
};

static void on_req(const struct lw_decoded_req *r, void *ud)
{
	struct got *g = ud;

	if (g->n >= 8)
		return;
	snprintf(g->text[g->n], sizeof(g->text[0]), "%.*s", (int)r->prompt->text.len,
		 r->prompt->text.p ? r->prompt->text.p : "");
	snprintf(g->path[g->n], sizeof(g->path[0]), "%s", r->http->path);
	g->version[g->n] = r->http->version;
	g->incomplete[g->n] = r->incomplete;
	g->api[g->n] = r->prompt->api;
	g->n++;
}

static const char chat[] =
	"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello \\u00e9 world\"}]}";

static void h1_request(struct lw_buf *b, const char *path, const char *body, size_t n,
		       const char *enc)
{
	lw_buf_printf(b,
		      "POST %s HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n"
		      "%s%s%sContent-Length: %zu\r\n\r\n",
		      path, enc ? "Content-Encoding: " : "", enc ? enc : "", enc ? "\r\n" : "", n);
	lw_buf_put(b, body, n);
}

static void test_h1_gzip_json_split_anywhere(void **state)
{
	struct lw_decode_limits lim;
	struct lw_decode_stats st = { 0 };
	unsigned char gz[512];
	uLongf gzlen = sizeof(gz);
	z_stream z = { 0 };
	struct lw_buf s = { 0 };

	(void)state;
	/* gzip the chat body */
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)chat;
	z.avail_in = sizeof(chat) - 1;
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	gzlen = z.total_out;
	deflateEnd(&z);

	h1_request(&s, "/v1/chat/completions", chat, sizeof(chat) - 1, NULL);
	h1_request(&s, "/v1/chat/completions", (const char *)gz, gzlen, "gzip");
	lw_decode_limits_default(&lim);
	for (size_t step = 1; step <= s.len; step = step * 3 + 1) {
		struct got g = { 0 };
		struct lw_request_decoder *d = lw_request_decoder_new(&lim, &st, on_req, &g);

		for (size_t off = 0; off < s.len; off += step)
			lw_request_decoder_feed(d, s.p + off, off + step < s.len ? step : s.len - off,
						false);
		assert_int_equal(lw_request_decoder_version(d), 1);
		lw_request_decoder_free(d);
		assert_int_equal(g.n, 2);
		for (int i = 0; i < 2; i++) {
			assert_string_equal(g.text[i], "hello \xc3\xa9 world\n");
			assert_int_equal(g.api[i], LW_API_OPENAI_CHAT);
			assert_false(g.incomplete[i]);
		}
	}
	lw_buf_free(&s);
}

/* A hole in the capture: HTTP/1.x drops the broken request (delivered as
 * incomplete) and picks up at the next write that starts a request. */
static void test_h1_resync_after_lost_bytes(void **state)
{
	struct lw_decode_limits lim;
	struct lw_decode_stats st = { 0 };
	struct got g = { 0 };
	struct lw_buf a = { 0 }, b = { 0 };
	struct lw_request_decoder *d;

	(void)state;
	lw_decode_limits_default(&lim);
	d = lw_request_decoder_new(&lim, &st, on_req, &g);
	h1_request(&a, "/v1/first", chat, sizeof(chat) - 1, NULL);
	h1_request(&b, "/v1/second", chat, sizeof(chat) - 1, NULL);
	/* the first write's tail was lost */
	lw_request_decoder_feed(d, a.p, a.len - 10, true);
	/* the middle of something we never saw: skipped */
	lw_request_decoder_feed(d, "tail of a lost body", 19, false);
	lw_request_decoder_feed(d, b.p, b.len, false);
	lw_request_decoder_free(d);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.path[0], "/v1/first");
	assert_true(g.incomplete[0]);
	assert_string_equal(g.path[1], "/v1/second");
	assert_false(g.incomplete[1]);
	assert_string_equal(g.text[1], "hello \xc3\xa9 world\n");
	assert_true(st.desynced >= 1);
	assert_int_equal(st.http.bytes_skipped, 19);
	lw_buf_free(&a);
	lw_buf_free(&b);
}

static void test_not_http_is_ignored(void **state)
{
	struct lw_decode_limits lim;
	struct lw_decode_stats st = { 0 };
	struct got g = { 0 };
	struct lw_request_decoder *d;
	unsigned char bin[64];

	(void)state;
	memset(bin, 0x16, sizeof(bin));
	lw_decode_limits_default(&lim);
	d = lw_request_decoder_new(&lim, &st, on_req, &g);
	lw_request_decoder_feed(d, bin, sizeof(bin), false);
	lw_request_decoder_feed(d, "POST / HTTP/1.1\r\n\r\n", 19, false);
	assert_int_equal(lw_request_decoder_version(d), 0);
	lw_request_decoder_free(d);
	assert_int_equal(g.n, 0);
	assert_int_equal(st.not_http, 1);
}

/* Small writes that only together show the version. */
static void test_sniff_across_tiny_writes(void **state)
{
	struct lw_decode_limits lim;
	struct lw_decode_stats st = { 0 };
	struct got g = { 0 };
	struct lw_buf s = { 0 };
	struct lw_request_decoder *d;

	(void)state;
	lw_decode_limits_default(&lim);
	d = lw_request_decoder_new(&lim, &st, on_req, &g);
	h1_request(&s, "/v1/tiny", chat, sizeof(chat) - 1, NULL);
	for (size_t i = 0; i < s.len; i++)
		lw_request_decoder_feed(d, s.p + i, 1, false);
	lw_request_decoder_free(d);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.path[0], "/v1/tiny");
	lw_buf_free(&s);
}

/* HTTP/2 cannot resynchronise (HPACK state): after a hole the connection is
 * given up, counted, and nothing after it is misread. */
static void test_h2_gives_up_after_hole(void **state)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct lw_decode_limits lim;
	struct lw_decode_stats st = { 0 };
	struct got g = { 0 };
	struct lw_request_decoder *d;
	/* SETTINGS (empty) */
	static const unsigned char settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };

	(void)state;
	lw_decode_limits_default(&lim);
	d = lw_request_decoder_new(&lim, &st, on_req, &g);
	lw_request_decoder_feed(d, preface, sizeof(preface) - 1, false);
	lw_request_decoder_feed(d, settings, sizeof(settings), true);
	assert_int_equal(lw_request_decoder_version(d), 2);
	lw_request_decoder_feed(d, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 38, false);
	lw_request_decoder_free(d);
	assert_int_equal(g.n, 0);
	assert_int_equal(st.desynced, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_h1_gzip_json_split_anywhere),
		cmocka_unit_test(test_h1_resync_after_lost_bytes),
		cmocka_unit_test(test_not_http_is_ignored),
		cmocka_unit_test(test_sniff_across_tiny_writes),
		cmocka_unit_test(test_h2_gives_up_after_hole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
