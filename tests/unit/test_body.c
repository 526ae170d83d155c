/*
 * Unit tests for body decoding: Content-Encoding through zlib (bounded:
 * bombs, truncation, corruption, stacked codings) and the prompt text of AI
 * request bodies (each API's fields, escapes, the lenient pass over invalid
 * JSON, depth, numbers, binary payloads, limits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "decode/inflate.h"
#include "decode/prompt.h"
#include "util/buf.h"

/* ======================================================================
 * helpers
 * ====================================================================== */

/* wbits as deflateInit2: 31 gzip, 15 zlib, -15 raw. */
static void compress_to(struct lw_buf *out, const void *in, size_t n, int wbits)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	for (;;) {
		int rc;

		lw_buf_reserve(out, 65536);
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = 65536;
		rc = deflate(&z, Z_FINISH);
		out->len += 65536 - z.avail_out;
		if (rc == Z_STREAM_END)
			break;
		assert_int_equal(rc, Z_OK);
	}
	deflateEnd(&z);
}

/* Text that compresses like prose, not like zeros. */
static void make_text(struct lw_buf *b, size_t n)
{
	static const char *const words[] = {"alpha ", "bravo ", "charlie ", "delta ",
					    "echo ",  "fox ",	"golf\n",   "hotel "};
	uint64_t s = 12345;

	while (b->len < n) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		lw_buf_puts(b, words[s >> 61]);
	}
	b->len = n;
	b->p[n] = 0;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ======================================================================
 * inflate
 * ====================================================================== */

static void test_inflate_identity(void **state)
{
	struct lw_buf out = {0};
	struct lw_inflate_limits l;

	lw_inflate_limits_default(&l);
	assert_int_equal(l.max_out, 8u << 20);
	assert_int_equal(l.max_ratio, 200);
	assert_int_equal(lw_inflate(NULL, "abc", 3, &l, &out), LW_INFLATE_OK);
	assert_int_equal(lw_inflate("", "def", 3, &l, &out), LW_INFLATE_OK);
	assert_int_equal(lw_inflate("Identity", "ghi", 3, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, 9);
	assert_string_equal(out.p, "abcdefghi");
	l.max_out = 4;
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("identity", "0123456789", 10, &l, &out), LW_INFLATE_LIMIT);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.p, "0123", 4);
	assert_string_equal(lw_inflate_res_str(LW_INFLATE_OK), "ok");
	assert_string_equal(lw_inflate_res_str(LW_INFLATE_LIMIT), "limit");
	assert_string_equal(lw_inflate_res_str(LW_INFLATE_CORRUPT), "corrupt");
	assert_string_equal(lw_inflate_res_str(LW_INFLATE_UNSUPPORTED), "unsupported");
	lw_buf_free(&out);
}

static void test_inflate_gzip(void **state)
{
	struct lw_buf src = {0}, z = {0}, out = {0};
	static const char *const names[] = {"gzip", "x-gzip", "GZip", " gzip ", "gzip,identity"};

	make_text(&src, 300000);
	compress_to(&z, src.p, src.len, 31);
	assert_true(z.len < src.len / 2);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		lw_buf_reset(&out);
		assert_int_equal(lw_inflate(names[i], z.p, z.len, NULL, &out), LW_INFLATE_OK);
		assert_int_equal(out.len, src.len);
		assert_memory_equal(out.p, src.p, src.len);
	}
	/* out is appended to */
	lw_buf_reset(&out);
	lw_buf_puts(&out, "prefix:");
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, 7 + src.len);
	assert_memory_equal(out.p, "prefix:", 7);
	assert_memory_equal(out.p + 7, src.p, src.len);
	/* an empty body under a coding */
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", "", 0, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, 0);
	lw_buf_free(&src);
	lw_buf_free(&z);
	lw_buf_free(&out);
}

static void test_inflate_deflate_zlib_and_raw(void **state)
{
	struct lw_buf src = {0}, zl = {0}, raw = {0}, out = {0};

	make_text(&src, 100000);
	compress_to(&zl, src.p, src.len, 15);
	compress_to(&raw, src.p, src.len, -15);
	assert_int_equal(lw_inflate("deflate", zl.p, zl.len, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, src.len);
	assert_memory_equal(out.p, src.p, src.len);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("DEFLATE", raw.p, raw.len, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, src.len);
	assert_memory_equal(out.p, src.p, src.len);
	/* a short raw stream */
	lw_buf_reset(&raw);
	compress_to(&raw, "hello", 5, -15);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("deflate", raw.p, raw.len, NULL, &out), LW_INFLATE_OK);
	assert_string_equal(out.p, "hello");
	/* gzip data under "deflate" is neither zlib nor raw deflate */
	lw_buf_reset(&raw);
	compress_to(&raw, "hello", 5, 31);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("deflate", raw.p, raw.len, NULL, &out), LW_INFLATE_CORRUPT);
	assert_int_equal(out.len, 0);
	lw_buf_free(&src);
	lw_buf_free(&zl);
	lw_buf_free(&raw);
	lw_buf_free(&out);
}

static void test_inflate_two_gzip_members(void **state)
{
	struct lw_buf z = {0}, out = {0};

	compress_to(&z, "first member, ", 14, 31);
	compress_to(&z, "second member", 13, 31);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_OK);
	assert_string_equal(out.p, "first member, second member");
	/* an empty member in between is fine too */
	lw_buf_reset(&z);
	compress_to(&z, "a", 1, 31);
	compress_to(&z, "", 0, 31);
	compress_to(&z, "b", 1, 31);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_OK);
	assert_string_equal(out.p, "ab");
	/* bytes after the last member that are not a member */
	lw_buf_puts(&z, "garbage");
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_CORRUPT);
	assert_string_equal(out.p, "ab");
	lw_buf_free(&z);
	lw_buf_free(&out);
}

static void test_inflate_stacked(void **state)
{
	struct lw_buf src = {0}, a = {0}, b = {0}, c = {0}, out = {0};

	make_text(&src, 50000);
	/* "Content-Encoding: gzip, deflate": gzip applied first, then deflate */
	compress_to(&a, src.p, src.len, 31);
	compress_to(&b, a.p, a.len, 15);
	assert_int_equal(lw_inflate("gzip, deflate", b.p, b.len, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, src.len);
	assert_memory_equal(out.p, src.p, src.len);
	/* the wrong order does not decode */
	lw_buf_reset(&out);
	assert_int_not_equal(lw_inflate("deflate, gzip", b.p, b.len, NULL, &out), LW_INFLATE_OK);
	/* four codings, identity ignored */
	compress_to(&c, b.p, b.len, 31);
	lw_buf_reset(&a);
	compress_to(&a, c.p, c.len, -15);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip,deflate, identity,GZIP ,deflate", a.p, a.len, NULL, &out),
			 LW_INFLATE_OK);
	assert_int_equal(out.len, src.len);
	assert_memory_equal(out.p, src.p, src.len);
	/* five is too many */
	lw_buf_reset(&out);
	lw_buf_puts(&out, "kept");
	assert_int_equal(lw_inflate("gzip,gzip,gzip,gzip,gzip", a.p, a.len, NULL, &out),
			 LW_INFLATE_UNSUPPORTED);
	assert_string_equal(out.p, "kept");
	/* a broken inner stage is reported, the outer one still decoded */
	lw_buf_reset(&a);
	compress_to(&a, "not gzip inside", 15, 15);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip, deflate", a.p, a.len, NULL, &out), LW_INFLATE_CORRUPT);
	assert_int_equal(out.len, 0);
	lw_buf_free(&src);
	lw_buf_free(&a);
	lw_buf_free(&b);
	lw_buf_free(&c);
	lw_buf_free(&out);
}

static void test_inflate_truncated(void **state)
{
	struct lw_buf src = {0}, z = {0}, out = {0};

	make_text(&src, 200000);
	compress_to(&z, src.p, src.len, 31);
	/* cut in the middle: what decoded is kept, and it is a prefix of the original */
	assert_int_equal(lw_inflate("gzip", z.p, z.len / 2, NULL, &out), LW_INFLATE_CORRUPT);
	assert_true(out.len > 0 && out.len < src.len);
	assert_memory_equal(out.p, src.p, out.len);
	/* only the trailer (CRC, size) missing: all the data, still reported */
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len - 4, NULL, &out), LW_INFLATE_CORRUPT);
	assert_int_equal(out.len, src.len);
	/* the header only */
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, 5, NULL, &out), LW_INFLATE_CORRUPT);
	assert_int_equal(out.len, 0);
	/* zlib cut short */
	lw_buf_reset(&z);
	compress_to(&z, src.p, src.len, 15);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("deflate", z.p, z.len - 10, NULL, &out), LW_INFLATE_CORRUPT);
	assert_true(out.len > 0);
	assert_memory_equal(out.p, src.p, out.len);
	lw_buf_free(&src);
	lw_buf_free(&z);
	lw_buf_free(&out);
}

static void test_inflate_corrupt(void **state)
{
	struct lw_buf src = {0}, z = {0}, out = {0};

	make_text(&src, 100000);
	compress_to(&z, src.p, src.len, 31);
	/* a wrong CRC in the trailer */
	z.p[z.len - 8] ^= 0x55;
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_CORRUPT);
	assert_int_equal(out.len, src.len);
	z.p[z.len - 8] ^= 0x55;
	/* garbage in the middle of the compressed data */
	memset(z.p + z.len / 2, 0xff, 64);
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_CORRUPT);
	assert_true(out.len < src.len + 1);
	/* not gzip at all */
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", "{\"model\":\"x\"}", 13, NULL, &out),
			 LW_INFLATE_CORRUPT);
	assert_int_equal(out.len, 0);
	/* a gzip header with a bad method */
	lw_buf_reset(&out);
	assert_int_equal(
		lw_inflate("gzip", "\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03", 10, NULL, &out),
		LW_INFLATE_CORRUPT);
	lw_buf_free(&src);
	lw_buf_free(&z);
	lw_buf_free(&out);
}

/* 1 GiB of zeros as gzip, built without compressing 1 GiB: after a full flush the deflater
 * starts afresh, so every further MiB of zeros compresses to the same bytes. */
static void make_zero_bomb(struct lw_buf *out, size_t mib)
{
	z_stream z;
	static unsigned char zero[1 << 20];
	size_t first, block_len;
	char *block;
	uLong crc1 = crc32(0, zero, sizeof(zero)), crc = crc1;
	unsigned char tail[10] = {0x03, 0x00}; /* final empty fixed-Huffman block */

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
	for (int i = 0; i < 3; i++) {
		z.next_in = zero;
		z.avail_in = sizeof(zero);
		lw_buf_reserve(out, 65536);
		z.next_out = (Bytef *)out->p + out->len;
		z.avail_out = 65536;
		assert_int_equal(deflate(&z, Z_FULL_FLUSH), Z_OK);
		assert_int_equal(z.avail_in, 0);
		assert_true(z.avail_out > 0);
		out->len += 65536 - z.avail_out;
		if (i == 0)
			first = out->len;
	}
	deflateEnd(&z);
	/* the second and third MiB gave the same bytes */
	block_len = (out->len - first) / 2;
	assert_memory_equal(out->p + first, out->p + first + block_len, block_len);
	block = lw_xmalloc(block_len);
	memcpy(block, out->p + first, block_len);
	out->len = first + block_len;
	for (size_t i = 2; i < mib; i++) {
		lw_buf_put(out, block, block_len);
		crc = crc32_combine(crc, crc1, sizeof(zero));
	}
	crc = crc32_combine(crc, crc1, sizeof(zero)); /* the second MiB */
	for (int k = 0; k < 4; k++) {
		tail[2 + k] = (unsigned char)(crc >> (8 * k));
		tail[6 + k] = (unsigned char)(((uint64_t)mib << 20) >> (8 * k));
	}
	lw_buf_put(out, tail, sizeof(tail));
	free(block);
}

static void test_inflate_bomb_1gib(void **state)
{
	struct lw_buf z = {0}, out = {0};
	struct lw_inflate_limits l;
	double t0;

	/* the bomb builder is right: 4 MiB decodes whole without limits */
	make_zero_bomb(&z, 4);
	l.max_out = 64u << 20;
	l.max_ratio = 0;
	assert_int_equal(lw_inflate("gzip", z.p, z.len, &l, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, 4u << 20);
	for (size_t i = 0; i < out.len; i++)
		if (out.p[i])
			fail_msg("nonzero byte at %zu", i);

	lw_buf_reset(&z);
	make_zero_bomb(&z, 1024);
	assert_true(z.len < 2u << 20); /* about 1 MiB for 1 GiB */
	lw_buf_free(&out);
	t0 = now_s();
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_LIMIT);
	assert_true(now_s() - t0 < 2.0);
	/* 200 * 1 MiB is past max_out: cut at exactly 8 MiB, memory bounded by the output */
	assert_int_equal(out.len, 8u << 20);
	assert_true(out.cap <= 2 * (8u << 20) + (1u << 20));
	lw_buf_free(&z);
	lw_buf_free(&out);
}

static void test_inflate_ratio_bomb(void **state)
{
	struct lw_buf src = {0}, z = {0}, out = {0};
	struct lw_inflate_limits l;

	/* 6 MiB of zeros: under max_out, but far past 200:1 and past 1 MiB */
	lw_buf_reserve(&src, 6u << 20);
	memset(src.p, 0, 6u << 20);
	src.len = 6u << 20;
	compress_to(&z, src.p, src.len, 31);
	assert_true(z.len * 200 > (1u << 20) && z.len * 200 < src.len);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_LIMIT);
	assert_int_equal(out.len, z.len * 200);
	/* the ratio test off: whole */
	lw_inflate_limits_default(&l);
	l.max_ratio = 0;
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, &l, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, src.len);
	/* under 1 MiB a high ratio is fine: 900 KiB of zeros */
	lw_buf_reset(&z);
	compress_to(&z, src.p, 900u << 10, 31);
	assert_true(z.len * 200 < (900u << 10));
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, NULL, &out), LW_INFLATE_OK);
	assert_int_equal(out.len, 900u << 10);
	/* exactly at max_out is not cut, one past is */
	lw_inflate_limits_default(&l);
	l.max_out = 900u << 10;
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, &l, &out), LW_INFLATE_OK);
	l.max_out--;
	lw_buf_reset(&out);
	assert_int_equal(lw_inflate("gzip", z.p, z.len, &l, &out), LW_INFLATE_LIMIT);
	assert_int_equal(out.len, l.max_out);
	lw_buf_free(&src);
	lw_buf_free(&z);
	lw_buf_free(&out);
}

static void test_inflate_unsupported(void **state)
{
	static const char *const codings[] = {"br",	  "zstd",     "compress", "x-compress",
					      "gzip, br", "gzip;q=1", "exi"};
	struct lw_buf out = {0};

	for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
		lw_buf_reset(&out);
		assert_int_equal(lw_inflate(codings[i], "\x0b\x02\x80hi\x03", 6, NULL, &out),
				 LW_INFLATE_UNSUPPORTED);
		assert_int_equal(out.len, 0);
	}
	lw_buf_free(&out);
}

/* ======================================================================
 * prompt
 * ====================================================================== */

struct want {
	const char *field;
	bool prompt;
	const char *text;
};

static void dump(const struct lw_prompt *p)
{
	for (size_t i = 0; i < p->nsegs; i++)
		print_message("  seg %zu %s%s: %.*s\n", i, p->segs[i].field,
			      p->segs[i].prompt ? " (prompt)" : "", (int)p->segs[i].len,
			      p->text.p + p->segs[i].off);
}

static void check_segs(const struct lw_prompt *p, const struct want *w, size_t n)
{
	size_t off = 0;

	if (p->nsegs != n)
		dump(p);
	assert_int_equal(p->nsegs, n);
	for (size_t i = 0; i < n; i++) {
		const struct lw_prompt_seg *s = &p->segs[i];
		size_t len = strlen(w[i].text);

		if (strcmp(s->field, w[i].field) || s->prompt != w[i].prompt || s->len != len ||
		    memcmp(p->text.p + s->off, w[i].text, len)) {
			dump(p);
			fail_msg("segment %zu: want %s%s: %s", i, w[i].field,
				 w[i].prompt ? " (prompt)" : "", w[i].text);
		}
		/* segments tile the text, each followed by a newline */
		assert_int_equal(s->off, off);
		assert_int_equal(p->text.p[s->off + s->len], '\n');
		off = s->off + s->len + 1;
	}
	assert_int_equal(p->text.len, off);
}

#define CHECK(p, ...)                                                                              \
	do {                                                                                       \
		static const struct want w_[] = {__VA_ARGS__};                                     \
		check_segs(p, w_, sizeof(w_) / sizeof(w_[0]));                                     \
	} while (0)

static void extract(struct lw_prompt *p, const char *path, const char *body)
{
	lw_prompt_extract(p, path, "application/json", body, strlen(body), 1u << 20);
}

static void test_prompt_openai_chat(void **state)
{
	struct lw_prompt p;
	const char *body =
		"{\"model\":\"gpt-4o\",\"messages\":["
		"{\"role\":\"system\",\"content\":\"You are terse.\"},"
		"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Mail "
		"bob@example.com\"},"
		"{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/"
		"png;base64,iVBORw0KGgo=\","
		"\"detail\":\"low\"}}]},"
		"{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\","
		"\"type\":\"function\",\"function\":{\"name\":\"send\",\"arguments\":"
		"\"{\\\"to\\\":\\\"bob@example.com\\\"}\"}}]},"
		"{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"sent\"}],"
		"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"send\","
		"\"description\":\"Send mail\",\"parameters\":{\"type\":\"object\"}}}],"
		"\"max_tokens\":256,\"temperature\":0.2,\"stream\":true,\"user\":\"u-77\","
		"\"metadata\":{\"alice@corp.example\":\"vip\"}}";

	lw_prompt_init(&p);
	extract(&p, "/v1/chat/completions", body);
	assert_int_equal(p.api, LW_API_OPENAI_CHAT);
	assert_string_equal(lw_api_name(p.api), "openai.chat");
	assert_string_equal(p.model, "gpt-4o");
	assert_false(p.json_error);
	assert_false(p.limited);
	assert_int_equal(p.skipped_binary, 1);
	assert_int_equal(p.skipped_binary_bytes, strlen("data:image/png;base64,iVBORw0KGgo="));
	CHECK(&p, {"messages[0].content", true, "You are terse."},
	      {"messages[1].content[0].text", true, "Mail bob@example.com"},
	      {"messages[2].tool_calls[0].function.arguments", true,
	       "{\"to\":\"bob@example.com\"}"},
	      {"messages[3].content", true, "sent"}, {"user", true, "u-77"},
	      {"$.messages[2].tool_calls[0].function.name", false, "send"},
	      {"$.tools[0].function.name", false, "send"},
	      {"$.tools[0].function.description", false, "Send mail"},
	      {"$.max_tokens", false, "256"},
	      /* a key that is data is scanned and masked in the path */
	      {"$.metadata.*", false, "alice@corp.example"}, {"$.metadata.*", false, "vip"});
	lw_prompt_free(&p);
}

static void test_prompt_openai_responses(void **state)
{
	struct lw_prompt p;
	const char *body =
		"{\"model\":\"gpt-4.1\",\"instructions\":\"Be brief\",\"input\":["
		"{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"hi there\"},"
		"{\"type\":\"input_image\",\"image_url\":\"data:image/jpeg;base64,/9j/4AAQ\"}]},"
		"{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"lookup\","
		"\"arguments\":\"{\\\"q\\\":1}\"},"
		"{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"42 found\"},"
		"{\"role\":\"assistant\",\"content\":\"plain\"}],\"store\":false}";

	lw_prompt_init(&p);
	extract(&p, "/v1/responses?x=1", body);
	assert_int_equal(p.api, LW_API_OPENAI_RESPONSES);
	assert_string_equal(lw_api_name(p.api), "openai.responses");
	assert_string_equal(p.model, "gpt-4.1");
	assert_int_equal(p.skipped_binary, 1);
	CHECK(&p, {"instructions", true, "Be brief"},
	      {"input[0].content[0].text", true, "hi there"},
	      {"input[1].arguments", true, "{\"q\":1}"}, {"input[2].output", true, "42 found"},
	      {"input[3].content", true, "plain"}, {"$.input[1].name", false, "lookup"});
	/* a plain string input */
	extract(&p, "/v1/responses", "{\"model\":\"o3\",\"input\":\"hello\"}");
	assert_int_equal(p.api, LW_API_OPENAI_RESPONSES);
	CHECK(&p, {"input", true, "hello"});
	lw_prompt_free(&p);
}

static void test_prompt_openai_completions(void **state)
{
	struct lw_prompt p;

	lw_prompt_init(&p);
	extract(&p, "/v1/completions",
		"{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":[\"one\",\"two\"],\"n\":2}");
	assert_int_equal(p.api, LW_API_OPENAI_COMPLETIONS);
	assert_string_equal(lw_api_name(p.api), "openai.completions");
	assert_string_equal(p.model, "gpt-3.5-turbo-instruct");
	CHECK(&p, {"prompt[0]", true, "one"}, {"prompt[1]", true, "two"}, {"$.n", false, "2"});
	extract(&p, "/v1/embeddings",
		"{\"input\":\"embed me\",\"model\":\"text-embedding-3-small\","
		"\"encoding_format\":\"float\"}");
	assert_int_equal(p.api, LW_API_OPENAI_COMPLETIONS);
	assert_string_equal(p.model, "text-embedding-3-small");
	CHECK(&p, {"input", true, "embed me"}, {"$.encoding_format", false, "float"});
	lw_prompt_free(&p);
}

static void test_prompt_anthropic(void **state)
{
	struct lw_prompt p;
	char b64[200];
	char body[2048];

	memset(b64, 'A', sizeof(b64) - 1);
	b64[sizeof(b64) - 1] = 0;
	snprintf(body, sizeof(body),
		 "{\"model\":\"claude-sonnet-4-20250514\",\"max_tokens\":1024,"
		 "\"system\":[{\"type\":\"text\",\"text\":\"Sys prompt\","
		 "\"cache_control\":{\"type\":\"ephemeral\"}}],"
		 "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"},"
		 "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Calling\"},"
		 "{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_user\","
		 "\"input\":{\"email\":\"c@d.io\",\"type\":\"x\",\"n\":7}}]},"
		 "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
		 "\"toolu_01\",\"content\":[{\"type\":\"text\",\"text\":\"SSN 078-05-1120\"}]},"
		 "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
		 "\"data\":\"%s\"}},"
		 "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\":"
		 "\"text/plain\",\"data\":\"doc body\"},\"title\":\"T\"}]}],"
		 "\"metadata\":{\"user_id\":\"abc\"}}",
		 b64);
	lw_prompt_init(&p);
	extract(&p, "/v1/messages", body);
	assert_int_equal(p.api, LW_API_ANTHROPIC_MESSAGES);
	assert_string_equal(lw_api_name(p.api), "anthropic.messages");
	assert_string_equal(p.model, "claude-sonnet-4-20250514");
	assert_int_equal(p.skipped_binary, 1);
	assert_int_equal(p.skipped_binary_bytes, sizeof(b64) - 1);
	CHECK(&p, {"system[0].text", true, "Sys prompt"}, {"messages[0].content", true, "Hello"},
	      {"messages[1].content[0].text", true, "Calling"},
	      /* tool input is prompt text, enum keys included */
	      {"messages[1].content[1].input.email", true, "c@d.io"},
	      {"messages[1].content[1].input.type", true, "x"},
	      {"messages[1].content[1].input.n", true, "7"},
	      {"messages[2].content[0].content[0].text", true, "SSN 078-05-1120"},
	      {"messages[2].content[2].source.data", true, "doc body"},
	      {"$.max_tokens", false, "1024"}, {"$.messages[1].content[1].name", false, "get_user"},
	      {"$.messages[2].content[2].title", false, "T"}, {"$.metadata.user_id", false, "abc"});
	lw_prompt_free(&p);
}

static void test_prompt_gemini(void **state)
{
	struct lw_prompt p;
	char b64[100];
	char body[2048];

	memset(b64, 'Q', sizeof(b64) - 1);
	b64[sizeof(b64) - 1] = 0;
	snprintf(body, sizeof(body),
		 "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be kind\"}]},"
		 "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Describe\"},"
		 "{\"inlineData\":{\"mimeType\":\"image/jpeg\",\"data\":\"%s\"}}]},"
		 "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"find\","
		 "\"args\":{\"phone\":\"+1 415 555 0100\"}}}]},"
		 "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"find\","
		 "\"response\":{\"result\":\"ok\"}}}]}],"
		 "\"generationConfig\":{\"temperature\":0.1,\"maxOutputTokens\":100}}",
		 b64);
	lw_prompt_init(&p);
	extract(&p, "/v1beta/models/gemini-1.5-pro:generateContent?key=AIzaSyTESTKEY", body);
	assert_int_equal(p.api, LW_API_GEMINI);
	assert_string_equal(lw_api_name(p.api), "gemini.generate");
	assert_string_equal(p.model, "gemini-1.5-pro");
	assert_int_equal(p.skipped_binary, 1);
	/* the query (the API key) is never part of the text */
	assert_null(memmem(p.text.p, p.text.len, "AIza", 4));
	CHECK(&p, {"systemInstruction.parts[0].text", true, "Be kind"},
	      {"contents[0].parts[0].text", true, "Describe"},
	      {"contents[1].parts[0].functionCall.args.phone", true, "+1 415 555 0100"},
	      {"contents[2].parts[0].functionResponse.response.result", true, "ok"},
	      {"$.contents[1].parts[0].functionCall.name", false, "find"},
	      {"$.contents[2].parts[0].functionResponse.name", false, "find"},
	      {"$.generationConfig.maxOutputTokens", false, "100"});
	/* Vertex path, streaming, snake_case names */
	extract(&p,
		"/v1/projects/p/locations/us-central1/publishers/google/models/"
		"gemini-2.0-flash:streamGenerateContent?alt=sse",
		"{\"system_instruction\":{\"parts\":{\"text\":\"S\"}},"
		"\"contents\":{\"parts\":[{\"text\":\"T\"}]}}");
	assert_int_equal(p.api, LW_API_GEMINI);
	assert_string_equal(p.model, "gemini-2.0-flash");
	CHECK(&p, {"system_instruction.parts.text", true, "S"},
	      {"contents.parts[0].text", true, "T"});
	lw_prompt_free(&p);
}

/* Without a telling path (scan, proxies, Bedrock) the body's shape decides. */
static void test_prompt_shape(void **state)
{
	struct lw_prompt p;
	const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";

	lw_prompt_init(&p);
	lw_prompt_extract(&p, "", "", chat, strlen(chat), 4096);
	assert_int_equal(p.api, LW_API_OPENAI_CHAT);
	CHECK(&p, {"messages[0].content", true, "x"});
	extract(&p, "/model/anthropic.claude-3/invoke",
		"{\"anthropic_version\":\"bedrock-2023-05-31\",\"messages\":[{\"role\":\"user\","
		"\"content\":[{\"type\":\"text\",\"text\":\"y\"}]}]}");
	assert_int_equal(p.api, LW_API_ANTHROPIC_MESSAGES);
	CHECK(&p, {"messages[0].content[0].text", true, "y"},
	      {"$.anthropic_version", false, "bedrock-2023-05-31"});
	extract(&p, NULL, "{\"contents\":[{\"parts\":[{\"text\":\"z\"}]}]}");
	assert_int_equal(p.api, LW_API_GEMINI);
	assert_string_equal(p.model, "");
	CHECK(&p, {"contents[0].parts[0].text", true, "z"});
	/* a path of one API with the body of none: plain JSON (OpenAI threads messages) */
	extract(&p, "/v1/threads/t1/messages", "{\"role\":\"user\",\"content\":\"q\"}");
	assert_int_equal(p.api, LW_API_JSON);
	assert_string_equal(lw_api_name(p.api), "json");
	CHECK(&p, {"$.role", false, "user"}, {"$.content", false, "q"});
	/* unknown JSON keeps enum-like values: they are not known to be enums */
	extract(&p, "/api/x", "[\"a\",{\"type\":\"b\",\"id\":5}]");
	assert_int_equal(p.api, LW_API_JSON);
	CHECK(&p, {"$[0]", false, "a"}, {"$[1].type", false, "b"}, {"$[1].id", false, "5"});
	lw_prompt_free(&p);
}

static void test_prompt_escapes(void **state)
{
	struct lw_prompt p;
	/* \u0040 is '@'; U+1F600 as a surrogate pair; \u0000 kept as a NUL byte */
	const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":"
			   "\"a\\u0040b.com \\ud83d\\ude00 x\\u0000y \\\"q\\\" \\/ \\t\"}]}";

	lw_prompt_init(&p);
	extract(&p, "/v1/chat/completions", body);
	assert_false(p.json_error);
	assert_int_equal(p.nsegs, 1);
	assert_string_equal(p.segs[0].field, "messages[0].content");
	assert_true(p.segs[0].prompt);
	assert_int_equal(p.segs[0].len, 24);
	assert_memory_equal(p.text.p, "a@b.com \xf0\x9f\x98\x80 x\0y \"q\" / \t\n", 25);
	assert_int_equal(p.text.len, 25);
	lw_prompt_free(&p);
}

static void test_prompt_lone_surrogate_lenient(void **state)
{
	struct lw_prompt p;
	/* jansson refuses lone surrogates: the lenient pass still unescapes */
	const char *body = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
			   "\"mail a\\u0040b.com \\ud800 end\"},{\"role\":\"user\",\"content\":"
			   "[\"\\udc00\\ud83d\\ude00\",\"bad \\x \\u12G4 \\ud83dz\"]}],\"n\":12}";

	lw_prompt_init(&p);
	extract(&p, "/v1/chat/completions", body);
	assert_true(p.json_error);
	assert_int_equal(p.api, LW_API_OPENAI_CHAT);
	assert_string_equal(p.model, "gpt-4o");
	CHECK(&p, {"$..content", true, "mail a@b.com \xef\xbf\xbd end"},
	      {"$..content", true, "\xef\xbf\xbd\xf0\x9f\x98\x80"},
	      {"$..content", true, "bad \\x \\u12G4 \xef\xbf\xbdz"}, {"$..n", false, "12"});
	lw_prompt_free(&p);
}

static void test_prompt_invalid_json(void **state)
{
	struct lw_prompt p;
	const char *trunc = "{\"model\":\"claude-3\",\"messages\":[{\"role\":\"user\",\"content\":"
			    "\"my card is 4111 1111 11";
	const char *dup = "{\"input\":\"x@y.com\",\"input\":\"fine\"}";
	const char *bare = "{\"a\": 4111111111111111111111, \"b\": true, \"c\": 1.5e3, "
			   "\"d\": sk-live-abc def, \"e\": null}";

	lw_prompt_init(&p);
	/* truncated capture: the partial string is still read */
	extract(&p, "/v1/messages", trunc);
	assert_true(p.json_error);
	assert_int_equal(p.api, LW_API_ANTHROPIC_MESSAGES);
	assert_string_equal(p.model, "claude-3");
	CHECK(&p, {"$..content", true, "my card is 4111 1111 11"});
	/* duplicate keys: jansson would keep only the last; both are read */
	extract(&p, "/v1/embeddings", dup);
	assert_true(p.json_error);
	CHECK(&p, {"$..input", true, "x@y.com"}, {"$..input", true, "fine"});
	/* integers past int64, bare words: kept; true/null/reals: not */
	extract(&p, "", bare);
	assert_true(p.json_error);
	assert_int_equal(p.api, LW_API_JSON);
	CHECK(&p, {"$..a", false, "4111111111111111111111"}, {"$..d", false, "sk-live-abc def"});
	/* JSON content type, but not JSON at all: the body as text */
	lw_prompt_extract(&p, "/v1/chat/completions", "application/json; charset=utf-8",
			  "hello, world", 12, 4096);
	assert_true(p.json_error);
	assert_int_equal(p.api, LW_API_TEXT);
	CHECK(&p, {"body", false, "hello, world"});
	/* trailing data after a document (NDJSON) */
	extract(&p, "", "{\"a\":\"1\"}\n{\"a\":\"2\"}\n");
	assert_true(p.json_error);
	CHECK(&p, {"$..a", false, "1"}, {"$..a", false, "2"});
	lw_prompt_free(&p);
}

static void test_prompt_deep_nesting(void **state)
{
	struct lw_prompt p;
	struct lw_buf b = {0};

	lw_prompt_init(&p);
	/* 100k '[' then a string: jansson stops at its depth limit, the lenient pass does not
	 * recurse */
	for (int i = 0; i < 100000; i++)
		lw_buf_putc(&b, '[');
	lw_buf_puts(&b, "\"deep@x.com\"");
	lw_prompt_extract(&p, "", "", b.p, b.len, 1u << 20);
	assert_true(p.json_error);
	CHECK(&p, {"$", false, "deep@x.com"});
	/* same in objects, closed */
	lw_buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		lw_buf_puts(&b, "{\"k\":");
	lw_buf_puts(&b, "\"v\"");
	for (int i = 0; i < 100000; i++)
		lw_buf_putc(&b, '}');
	lw_prompt_extract(&p, "", "", b.p, b.len, 1u << 20);
	assert_true(p.json_error);
	CHECK(&p, {"$..k", false, "v"});
	/* valid JSON 2000 deep (under jansson's 2048): walked iteratively, the field is cut */
	lw_buf_reset(&b);
	for (int i = 0; i < 1000; i++)
		lw_buf_puts(&b, "{\"a\":[");
	lw_buf_puts(&b, "\"bottom\"");
	for (int i = 0; i < 1000; i++)
		lw_buf_puts(&b, "]}");
	lw_prompt_extract(&p, "", "", b.p, b.len, 1u << 20);
	assert_false(p.json_error);
	assert_int_equal(p.nsegs, 1);
	assert_int_equal(strlen(p.segs[0].field), LW_PROMPT_FIELD_MAX - 1);
	assert_memory_equal(p.segs[0].field, "$.a[0].a[0].a[0]", 16);
	assert_int_equal(p.segs[0].len, 6);
	assert_memory_equal(p.text.p, "bottom\n", 7);
	lw_buf_free(&b);
	lw_prompt_free(&p);
}

static void test_prompt_numbers(void **state)
{
	struct lw_prompt p;

	lw_prompt_init(&p);
	extract(&p, "",
		"{\"card\":4111111111111111,\"t\":0.5,\"n\":-42,\"b\":true,\"z\":null,"
		"\"big\":9223372036854775807,\"e\":1e2,\"min\":-9223372036854775808}");
	assert_false(p.json_error);
	CHECK(&p, {"$.card", false, "4111111111111111"}, {"$.n", false, "-42"},
	      {"$.big", false, "9223372036854775807"}, {"$.min", false, "-9223372036854775808"});
	/* one past int64: jansson refuses it, the lenient pass keeps its digits */
	extract(&p, "", "{\"big\":9223372036854775808}");
	assert_true(p.json_error);
	CHECK(&p, {"$..big", false, "9223372036854775808"});
	lw_prompt_free(&p);
}

static void test_prompt_binary_skipping(void **state)
{
	struct lw_prompt p;
	char b64[300], body[2048];

	memset(b64, 'x', sizeof(b64) - 1);
	b64[sizeof(b64) - 1] = 0;
	snprintf(body, sizeof(body),
		 "{\"a\":\"data:application/pdf;base64,%s\",\"b\":\"DATA:image/png;base64,\","
		 /* not base64: a data URL of text is text */
		 "\"c\":\"data:text/plain,hello there\","
		 "\"audio\":{\"format\":\"wav\",\"data\":\"%s\"},"
		 "\"f\":{\"file_data\":\"%s\"},"
		 /* short, or spaces: not skipped (could be a hidden secret) */
		 "\"g\":{\"mimeType\":\"x/y\",\"data\":\"c2hvcnQ=\"},"
		 "\"h\":{\"mimeType\":\"x/y\",\"data\":\"%.70s with spaces\"},"
		 /* no sibling saying it is a file */
		 "\"i\":{\"data\":\"%s\"}}",
		 b64, b64, b64, b64, b64);
	lw_prompt_init(&p);
	extract(&p, "", body);
	assert_false(p.json_error);
	assert_int_equal(p.skipped_binary, 4);
	assert_int_equal(p.skipped_binary_bytes, (strlen("data:application/pdf;base64,") + 299) +
							 strlen("DATA:image/png;base64,") + 299 +
							 299);
	assert_int_equal(p.nsegs, 7);
	assert_string_equal(p.segs[0].field, "$.c");
	assert_string_equal(p.segs[1].field, "$.audio.format");
	assert_string_equal(p.segs[2].field, "$.g.mimeType");
	assert_string_equal(p.segs[3].field, "$.g.data");
	assert_string_equal(p.segs[4].field, "$.h.mimeType");
	assert_string_equal(p.segs[5].field, "$.h.data");
	assert_string_equal(p.segs[6].field, "$.i.data");
	assert_int_equal(p.segs[6].len, 299);
	/* the lenient pass skips the same way */
	body[strlen(body) - 1] = 0; /* drop the last brace: invalid */
	extract(&p, "", body);
	assert_true(p.json_error);
	/* key context only: "data" and "file_data" with long base64, data URLs */
	assert_int_equal(p.skipped_binary, 5);
	lw_prompt_free(&p);
}

static void test_prompt_max_text(void **state)
{
	struct lw_prompt p;
	const char *body = "{\"metadata\":{\"note\":\"other value\"},\"messages\":[{\"role\":"
			   "\"user\",\"content\":\"first prompt\"},{\"role\":\"user\",\"content\":"
			   "\"h\xc3\xa9llo w\xc3\xb6rld\"}]}";

	lw_prompt_init(&p);
	/* prompt fields come first, so the cut hits the other values */
	lw_prompt_extract(&p, "/v1/chat/completions", "", body, strlen(body), 23);
	assert_true(p.limited);
	assert_true(p.text.len <= 23);
	/* "first prompt\n" is 13 bytes; 10 left: "h\xc3\xa9llo w\xc3" would split the o-umlaut */
	CHECK(&p, {"messages[0].content", true, "first prompt"},
	      {"messages[1].content", true, "h\xc3\xa9llo w"});
	assert_int_equal(p.text_dropped, strlen("\xc3\xb6rld") + strlen("other value"));
	/* 0: nothing fits */
	lw_prompt_extract(&p, "/v1/chat/completions", "", body, strlen(body), 0);
	assert_true(p.limited);
	assert_int_equal(p.text.len, 0);
	assert_int_equal(p.nsegs, 0);
	/* exactly enough is not limited */
	lw_prompt_extract(&p, "", "text/plain", "12345", 5, 6);
	assert_false(p.limited);
	CHECK(&p, {"body", false, "12345"});
	lw_prompt_extract(&p, "", "text/plain", "12345", 5, 5);
	assert_true(p.limited);
	CHECK(&p, {"body", false, "1234"});
	/* the lenient pass too */
	lw_prompt_extract(&p, "", "", "[\"abcdef\",\"ghi", 14, 5);
	assert_true(p.json_error && p.limited);
	CHECK(&p, {"$", false, "abcd"});
	assert_int_equal(p.text_dropped, 2 + 3);
	lw_prompt_free(&p);
}

static void test_prompt_text_and_empty(void **state)
{
	struct lw_prompt p;

	lw_prompt_init(&p);
	lw_prompt_extract(&p, "/upload", "text/plain", "line one\nline two", 17, 4096);
	assert_int_equal(p.api, LW_API_TEXT);
	assert_string_equal(lw_api_name(p.api), "text");
	assert_false(p.json_error);
	CHECK(&p, {"body", false, "line one\nline two"});
	/* form data is text */
	lw_prompt_extract(&p, "/v1/x", "application/x-www-form-urlencoded", "a=b&c=d", 7, 4096);
	assert_int_equal(p.api, LW_API_TEXT);
	CHECK(&p, {"body", false, "a=b&c=d"});
	/* empty: nothing, not an error */
	lw_prompt_extract(&p, "/v1/chat/completions", "application/json", "", 0, 4096);
	assert_int_equal(p.api, LW_API_TEXT);
	assert_false(p.json_error);
	assert_int_equal(p.nsegs, 0);
	assert_int_equal(p.text.len, 0);
	lw_prompt_extract(&p, NULL, NULL, NULL, 0, 4096);
	assert_int_equal(p.nsegs, 0);
	assert_string_equal(p.model, "");
	assert_null(lw_prompt_seg_at(&p, 0));
	/* a byte order mark before JSON */
	lw_prompt_extract(&p, "", "", "\xef\xbb\xbf {\"k\":\"v\"}", 13, 4096);
	assert_false(p.json_error);
	CHECK(&p, {"$.k", false, "v"});
	/* a JSON scalar body */
	extract(&p, "", "\"just a string\"");
	assert_int_equal(p.api, LW_API_JSON);
	CHECK(&p, {"$", false, "just a string"});
	lw_prompt_free(&p);
}

static void test_prompt_seg_at(void **state)
{
	struct lw_prompt p;

	lw_prompt_init(&p);
	extract(&p, "/v1/chat/completions",
		"{\"messages\":[{\"role\":\"user\",\"content\":\"abc\"}],\"user\":\"de\","
		"\"x\":\"fgh\"}");
	/* "abc\nde\nfgh\n" */
	assert_int_equal(p.text.len, 11);
	for (size_t off = 0; off < 11; off++) {
		const struct lw_prompt_seg *s = lw_prompt_seg_at(&p, off);
		size_t want = off < 4 ? 0 : off < 7 ? 1 : 2;

		assert_non_null(s);
		assert_ptr_equal(s, &p.segs[want]);
	}
	assert_null(lw_prompt_seg_at(&p, 11));
	assert_null(lw_prompt_seg_at(&p, (size_t)-1));
	lw_prompt_free(&p);
}

static void test_prompt_max_segs(void **state)
{
	struct lw_prompt p;
	struct lw_buf b = {0};
	const size_t n = LW_PROMPT_MAX_SEGS + 1000;

	lw_buf_putc(&b, '[');
	for (size_t i = 0; i < n; i++)
		lw_buf_printf(&b, "%s\"s%zu\"", i ? "," : "", i);
	lw_buf_putc(&b, ']');
	lw_prompt_init(&p);
	lw_prompt_extract(&p, "", "", b.p, b.len, 64u << 20);
	assert_false(p.json_error);
	assert_false(p.limited);
	assert_int_equal(p.nsegs, LW_PROMPT_MAX_SEGS);
	assert_int_equal(p.merged_segs, 1000);
	/* nothing lost: every value is in the text, the last segment holds the merged ones */
	assert_non_null(memmem(p.text.p, p.text.len, "\ns66535\n", 8));
	assert_string_equal(p.segs[LW_PROMPT_MAX_SEGS - 1].field, "(merged)");
	assert_int_equal(p.segs[LW_PROMPT_MAX_SEGS - 1].off + p.segs[LW_PROMPT_MAX_SEGS - 1].len +
				 1,
			 p.text.len);
	assert_ptr_equal(lw_prompt_seg_at(&p, p.text.len - 2), &p.segs[LW_PROMPT_MAX_SEGS - 1]);
	lw_buf_free(&b);
	lw_prompt_free(&p);
}

/* Keys that carry data are scanned, and never written into a field. */
static void test_prompt_data_keys(void **state)
{
	struct lw_prompt p;

	lw_prompt_init(&p);
	extract(&p, "",
		"{\"m\":{\"4111111111111111\":1,\"AKIAIOSFODNN7EXAMPLE\":\"k\","
		"\"user name\":2,\"jane@x.io\":3,\"a1b2c3d4e5\":4,\"max_tokens_2024\":5,"
		"\"$schema\":6,\"TOP_K\":7,\"\":8}}");
	CHECK(&p, {"$.m.*", false, "4111111111111111"}, {"$.m.*", false, "1"},
	      {"$.m.*", false, "AKIAIOSFODNN7EXAMPLE"}, {"$.m.*", false, "k"},
	      {"$.m.*", false, "user name"}, {"$.m.*", false, "2"}, {"$.m.*", false, "jane@x.io"},
	      {"$.m.*", false, "3"}, {"$.m.*", false, "a1b2c3d4e5"}, {"$.m.*", false, "4"},
	      {"$.m.max_tokens_2024", false, "5"}, {"$.m.$schema", false, "6"},
	      {"$.m.TOP_K", false, "7"}, {"$.m.*", false, "8"});
	/* the lenient pass alike */
	extract(&p, "", "{\"m\":{\"jane@x.io\":\"v\",\"ok_key\":\"w\"");
	assert_true(p.json_error);
	CHECK(&p, {"$..*", false, "jane@x.io"}, {"$..*", false, "v"}, {"$..ok_key", false, "w"});
	lw_prompt_free(&p);
}

/* Too many values to parse (jansson would take 40+ bytes each): read leniently instead. */
static void test_prompt_max_values(void **state)
{
	struct lw_prompt p;
	struct lw_buf b = {0};

	lw_buf_puts(&b, "{\"model\":\"m\",\"messages\":[{\"content\":\"hi a@b.co\"}],\"x\":[");
	for (size_t i = 0; i < LW_PROMPT_MAX_VALUES; i++)
		lw_buf_puts(&b, "[],");
	lw_buf_puts(&b, "\"last\"]}");
	lw_prompt_init(&p);
	lw_prompt_extract(&p, "/v1/chat/completions", "", b.p, b.len, 1u << 20);
	assert_true(p.values_limited);
	assert_false(p.json_error);
	assert_int_equal(p.api, LW_API_OPENAI_CHAT);
	assert_string_equal(p.model, "m");
	CHECK(&p, {"$..content", true, "hi a@b.co"}, {"$..x", false, "last"});
	/* just under the limit is parsed */
	lw_buf_reset(&b);
	lw_buf_putc(&b, '[');
	for (size_t i = 0; i < LW_PROMPT_MAX_VALUES - 2; i++)
		lw_buf_puts(&b, "1,");
	lw_buf_puts(&b, "\"a,[{\"]");
	lw_prompt_extract(&p, "", "", b.p, b.len, 1u << 20);
	assert_false(p.values_limited);
	assert_false(p.json_error);
	assert_int_equal(p.nsegs, LW_PROMPT_MAX_SEGS);
	assert_int_equal(p.merged_segs, LW_PROMPT_MAX_VALUES - 1 - LW_PROMPT_MAX_SEGS);
	lw_buf_free(&b);
	lw_prompt_free(&p);
}

static void test_prompt_reuse(void **state)
{
	struct lw_prompt p;

	lw_prompt_init(&p);
	extract(&p, "/v1/messages", "{\"model\":\"m1\",\"messages\":[{\"content\":\"{bad\"}]");
	assert_true(p.json_error);
	assert_string_equal(p.model, "m1");
	extract(&p, "/v1/messages", "{\"messages\":[{\"role\":\"user\",\"content\":\"ok\"}]}");
	assert_false(p.json_error);
	assert_string_equal(p.model, "");
	assert_int_equal(p.skipped_binary, 0);
	CHECK(&p, {"messages[0].content", true, "ok"});
	lw_prompt_free(&p);
	lw_prompt_free(&p); /* idempotent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inflate_identity),
		cmocka_unit_test(test_inflate_gzip),
		cmocka_unit_test(test_inflate_deflate_zlib_and_raw),
		cmocka_unit_test(test_inflate_two_gzip_members),
		cmocka_unit_test(test_inflate_stacked),
		cmocka_unit_test(test_inflate_truncated),
		cmocka_unit_test(test_inflate_corrupt),
		cmocka_unit_test(test_inflate_bomb_1gib),
		cmocka_unit_test(test_inflate_ratio_bomb),
		cmocka_unit_test(test_inflate_unsupported),
		cmocka_unit_test(test_prompt_openai_chat),
		cmocka_unit_test(test_prompt_openai_responses),
		cmocka_unit_test(test_prompt_openai_completions),
		cmocka_unit_test(test_prompt_anthropic),
		cmocka_unit_test(test_prompt_gemini),
		cmocka_unit_test(test_prompt_shape),
		cmocka_unit_test(test_prompt_escapes),
		cmocka_unit_test(test_prompt_lone_surrogate_lenient),
		cmocka_unit_test(test_prompt_invalid_json),
		cmocka_unit_test(test_prompt_deep_nesting),
		cmocka_unit_test(test_prompt_numbers),
		cmocka_unit_test(test_prompt_binary_skipping),
		cmocka_unit_test(test_prompt_max_text),
		cmocka_unit_test(test_prompt_text_and_empty),
		cmocka_unit_test(test_prompt_seg_at),
		cmocka_unit_test(test_prompt_max_segs),
		cmocka_unit_test(test_prompt_data_keys),
		cmocka_unit_test(test_prompt_max_values),
		cmocka_unit_test(test_prompt_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
