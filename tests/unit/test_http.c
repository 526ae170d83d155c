/*
 * Unit tests for user/decode/http*.c: HTTP/1.x and HTTP/2 request parsing
 * from client streams split anywhere; malformed, truncated and hostile
 * input. HTTP/2 header blocks are built with nghttp2's real HPACK encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/http.h"
#include "decode/http1.h"
#include "decode/http2.h"
#include "util/buf.h"

/* ---- deterministic PRNG ------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)splitmix(&seed);
}

/* ---- capturing delivered requests -------------------------------------- */

struct thdr {
	char *name, *value;
	size_t nl, vl;
};

struct treq {
	int version;
	uint32_t sid;
	char *method, *path, *authority, *ctype, *cenc;
	struct thdr *h;
	size_t nh;
	uint8_t *body;
	size_t body_len;
	bool trunc;
	uint64_t total;
};

struct tcap {
	struct treq *r;
	size_t n, cap;
	size_t max_body; /* delivered body_len must never exceed it */
};

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	assert_non_null(d);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

static void on_req(const struct lw_http_req *r, void *ud)
{
	struct tcap *c = ud;
	struct treq *t;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->r = realloc(c->r, c->cap * sizeof(*c->r));
		assert_non_null(c->r);
	}
	t = &c->r[c->n++];
	memset(t, 0, sizeof(*t));
	assert_true(r->body_len <= c->max_body);
	assert_true(r->body_len <= r->body_total);
	assert_non_null(r->body);
	t->version = r->version;
	t->sid = r->stream_id;
	t->method = dupn(r->method, strlen(r->method));
	t->path = dupn(r->path, strlen(r->path));
	t->authority = dupn(r->authority, strlen(r->authority));
	t->ctype = dupn(r->content_type, strlen(r->content_type));
	t->cenc = dupn(r->content_encoding, strlen(r->content_encoding));
	t->nh = r->nheaders;
	t->h = calloc(r->nheaders + 1, sizeof(*t->h));
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct lw_http_header *h = &r->headers[i];

		for (size_t k = 0; k < h->name_len; k++)
			assert_false(h->name[k] >= 'A' && h->name[k] <= 'Z');
		assert_int_equal(h->name[h->name_len], 0);
		assert_int_equal(h->value[h->value_len], 0);
		t->h[i].name = dupn(h->name, h->name_len);
		t->h[i].value = dupn(h->value, h->value_len);
		t->h[i].nl = h->name_len;
		t->h[i].vl = h->value_len;
	}
	t->body = malloc(r->body_len + 1);
	memcpy(t->body, r->body, r->body_len);
	t->body_len = r->body_len;
	t->trunc = r->body_truncated;
	t->total = r->body_total;
}

static void cap_free(struct tcap *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct treq *t = &c->r[i];

		free(t->method);
		free(t->path);
		free(t->authority);
		free(t->ctype);
		free(t->cenc);
		for (size_t k = 0; k < t->nh; k++) {
			free(t->h[k].name);
			free(t->h[k].value);
		}
		free(t->h);
		free(t->body);
	}
	free(c->r);
	memset(c, 0, sizeof(*c));
}

static void req_equal(const struct treq *a, const struct treq *b)
{
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->sid, b->sid);
	assert_string_equal(a->method, b->method);
	assert_string_equal(a->path, b->path);
	assert_string_equal(a->authority, b->authority);
	assert_string_equal(a->ctype, b->ctype);
	assert_string_equal(a->cenc, b->cenc);
	assert_int_equal(a->nh, b->nh);
	for (size_t i = 0; i < a->nh; i++) {
		assert_int_equal(a->h[i].nl, b->h[i].nl);
		assert_int_equal(a->h[i].vl, b->h[i].vl);
		assert_memory_equal(a->h[i].name, b->h[i].name, a->h[i].nl);
		assert_memory_equal(a->h[i].value, b->h[i].value, a->h[i].vl);
	}
	assert_int_equal(a->body_len, b->body_len);
	if (a->body_len)
		assert_memory_equal(a->body, b->body, a->body_len);
	assert_int_equal(a->trunc, b->trunc);
	assert_int_equal(a->total, b->total);
}

static const char *hval(const struct treq *t, const char *name)
{
	for (size_t i = 0; i < t->nh; i++)
		if (strcmp(t->h[i].name, name) == 0)
			return t->h[i].value;
	return NULL;
}

static void body_is(const struct treq *t, const char *s)
{
	assert_int_equal(t->body_len, strlen(s));
	assert_memory_equal(t->body, s, t->body_len);
}

/* ---- running a parser over a stream, split in different ways ------------ */

enum split { WHOLE, BYTES, SMALL, LARGE, NSPLITS };

struct trun {
	struct tcap cap;
	struct lw_http_stats st;
	int rc;		  /* -1 once a feed failed */
	size_t fail_feed; /* bytes fed before the failing feed */
};

struct parser {
	int version;
	void *p;
};

static struct parser parser_new(int version, const struct lw_http_limits *l, struct trun *r)
{
	struct parser p = {.version = version};

	if (version == 1)
		p.p = lw_http1_new(l, on_req, &r->cap, &r->st);
	else
		p.p = lw_http2_new(l, on_req, &r->cap, &r->st);
	return p;
}

static int parser_feed(struct parser *p, const void *d, size_t n)
{
	return p->version == 1 ? lw_http1_feed(p->p, d, n) : lw_http2_feed(p->p, d, n);
}

static void parser_finish(struct parser *p)
{
	if (p->version == 1)
		lw_http1_finish(p->p);
	else
		lw_http2_finish(p->p);
}

static void parser_free(struct parser *p)
{
	if (p->version == 1)
		lw_http1_free(p->p);
	else
		lw_http2_free(p->p);
}

static void run(int version, const struct lw_http_limits *lim, const void *data, size_t len,
		enum split mode, uint64_t seed, bool finish, struct trun *r)
{
	struct lw_http_limits def;
	struct parser p;
	const uint8_t *d = data;
	size_t off = 0;

	if (!lim) {
		lw_http_limits_default(&def);
		lim = &def;
	}
	memset(r, 0, sizeof(*r));
	r->cap.max_body = lim->max_body;
	p = parser_new(version, lim, r);
	while (off < len) {
		size_t n = len - off;
		int rc;

		if (mode == BYTES)
			n = 1;
		else if (mode == SMALL)
			n = 1 + splitmix(&seed) % 64;
		else if (mode == LARGE)
			n = 1 + splitmix(&seed) % 4096;
		if (n > len - off)
			n = len - off;
		rc = parser_feed(&p, d + off, n);
		/* once failed, always failed */
		if (r->rc < 0)
			assert_int_equal(rc, -1);
		else if (rc < 0) {
			r->rc = -1;
			r->fail_feed = off;
		}
		off += n;
	}
	if (finish)
		parser_finish(&p);
	parser_free(&p);
}

/* Runs every split; each must give the same requests and counters (bytes
 * skipped after an error depend on where the failing feed ended). Returns
 * the whole-input run in *out. */
static void run_all(int version, const struct lw_http_limits *lim, const void *data, size_t len,
		    bool finish, struct trun *out)
{
	run(version, lim, data, len, WHOLE, 0, finish, out);
	for (int mode = BYTES; mode < NSPLITS; mode++) {
		for (uint64_t seed = 1; seed <= (mode == BYTES ? 1u : 4u); seed++) {
			struct trun r;

			run(version, lim, data, len, (enum split)mode, seed, finish, &r);
			assert_int_equal(r.rc, out->rc);
			assert_int_equal(r.cap.n, out->cap.n);
			for (size_t i = 0; i < r.cap.n; i++)
				req_equal(&r.cap.r[i], &out->cap.r[i]);
			assert_int_equal(r.st.requests, out->st.requests);
			assert_int_equal(r.st.parse_errors, out->st.parse_errors);
			assert_int_equal(r.st.bodies_truncated, out->st.bodies_truncated);
			assert_int_equal(r.st.hpack_errors, out->st.hpack_errors);
			assert_int_equal(r.st.streams_refused, out->st.streams_refused);
			if (out->rc == 0)
				assert_int_equal(r.st.bytes_skipped, out->st.bytes_skipped);
			cap_free(&r.cap);
		}
	}
}

static void run1(const char *s, bool finish, struct trun *out)
{
	run_all(1, NULL, s, strlen(s), finish, out);
}

/* ---- sniffing and helpers ------------------------------------------------ */

static void test_sniff(void **state)
{
	assert_int_equal(lw_http_sniff("", 0), LW_HTTP_MORE);
	assert_int_equal(lw_http_sniff("G", 1), LW_HTTP_MORE);
	assert_int_equal(lw_http_sniff("GET", 3), LW_HTTP_MORE);
	assert_int_equal(lw_http_sniff("GET ", 4), LW_HTTP_1);
	assert_int_equal(lw_http_sniff("POST /v1/chat HTTP/1.1", 22), LW_HTTP_1);
	assert_int_equal(lw_http_sniff("M-SEARCH * HTTP/1.1", 19), LW_HTTP_1);
	assert_int_equal(lw_http_sniff(" GET", 4), LW_HTTP_NONE);
	assert_int_equal(lw_http_sniff("GE(T ", 5), LW_HTTP_NONE);
	assert_int_equal(lw_http_sniff("\x16\x03\x01\x02\x00", 5), LW_HTTP_NONE);
	/* "PRI" is a token: the preface decides */
	assert_int_equal(lw_http_sniff("PRI", 3), LW_HTTP_MORE);
	assert_int_equal(lw_http_sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n", 22), LW_HTTP_MORE);
	assert_int_equal(lw_http_sniff(LW_HTTP2_PREFACE, 24), LW_HTTP_2);
	assert_int_equal(lw_http_sniff(LW_HTTP2_PREFACE "\0\0\0\4", 28), LW_HTTP_2);
	/* not the preface, but "PRI" SP is a request line start */
	assert_int_equal(lw_http_sniff("PRI * HTTP/2.0\r\n\r\nXX", 20), LW_HTTP_1);
	assert_int_equal(lw_http_sniff("PRI /x HTTP/1.1\r\n", 17), LW_HTTP_1);
	/* a method longer than anyone uses is not one */
	assert_int_equal(lw_http_sniff("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 32), LW_HTTP_MORE);
	assert_int_equal(lw_http_sniff("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 33), LW_HTTP_NONE);
}

static void test_limits_and_lookup(void **state)
{
	struct lw_http_limits l;
	struct lw_http_header hs[2] = {
		{.name = "content-type", .name_len = 12, .value = "a", .value_len = 1},
		{.name = "x-api-key", .name_len = 9, .value = "b", .value_len = 1},
	};
	struct lw_http_req r = {.headers = hs, .nheaders = 2};

	lw_http_limits_default(&l);
	assert_int_equal(l.max_header_bytes, 65536);
	assert_int_equal(l.max_body, 1048576);
	assert_int_equal(l.max_streams, 128);
	assert_int_equal(l.max_hpack_table, 65536);
	assert_ptr_equal(lw_http_req_header(&r, "x-api-key"), &hs[1]);
	assert_ptr_equal(lw_http_req_header(&r, "X-API-Key"), &hs[1]);
	assert_null(lw_http_req_header(&r, "x-api"));
	assert_null(lw_http_req_header(&r, "authorization"));
}

static void test_msg_builder(void **state)
{
	/* the request builder the parsers share: a fold after another field
	 * was set still extends the last header; reset gives back big
	 * buffers and starts empty */
	struct lw_http_msg m;
	struct tcap c = {.max_body = 10};
	struct lw_http_stats st = {0};
	char big[40000];

	memset(big, 'v', sizeof(big));
	lw_http_msg_init(&m);
	lw_http_msg_fold(&m, "ignored", 7); /* nothing to fold into */
	lw_http_msg_add_header(&m, "X-Mixed-CASE", 12, "one", 3);
	lw_http_msg_set(&m, LW_HTTP_PATH, "/p", 2);
	lw_http_msg_fold(&m, "two", 3);
	lw_http_msg_add_header(&m, "Host", 4, "h.example", 9);
	lw_http_msg_set(&m, LW_HTTP_METHOD, "PUT", 3);
	lw_http_msg_body(&m, "0123456789abc", 13, 10);
	lw_http_msg_deliver(&m, 1, 0, false, on_req, &c, &st);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.r[0].h[0].name, "x-mixed-case");
	assert_string_equal(c.r[0].h[0].value, "one two");
	assert_int_equal(c.r[0].h[0].vl, 7);
	assert_string_equal(c.r[0].authority, "h.example");
	assert_string_equal(c.r[0].method, "PUT");
	assert_string_equal(c.r[0].path, "/p");
	body_is(&c.r[0], "0123456789");
	assert_true(c.r[0].trunc);
	assert_int_equal(c.r[0].total, 13);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.bodies_truncated, 1);
	/* grow everything past what reset keeps */
	for (int i = 0; i < 2000; i++)
		lw_http_msg_add_header(&m, "n", 1, big, 20);
	lw_http_msg_body(&m, big, sizeof(big), sizeof(big));
	assert_true(m.arena_cap > 16384 && m.body_cap == sizeof(big));
	lw_http_msg_reset(&m);
	assert_null(m.arena);
	assert_null(m.body);
	assert_null(m.h);
	assert_int_equal(m.nh, 0);
	c.max_body = 0;
	lw_http_msg_deliver(&m, 2, 7, true, on_req, &c, &st);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.r[1].method, "");
	assert_string_equal(c.r[1].authority, "");
	assert_int_equal(c.r[1].nh, 0);
	assert_int_equal(c.r[1].sid, 7);
	assert_true(c.r[1].trunc);
	lw_http_msg_free(&m);
	cap_free(&c);
}

/* ---- HTTP/1.x ------------------------------------------------------------ */

static void test_h1_big_bodies_keepalive(void **state)
{
	/* buffers released between requests must not disturb the next one */
	struct lw_buf b = {0};
	struct trun r;
	static uint8_t body[3][100000];

	for (int i = 0; i < 3; i++) {
		fill(body[i], sizeof(body[i]), 50 + (uint64_t)i);
		lw_buf_printf(&b, "POST /%d HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", i,
			      sizeof(body[i]));
		lw_buf_put(&b, body[i], sizeof(body[i]));
	}
	run(1, NULL, b.p, b.len, LARGE, 1, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r.cap.r[i].body_len, sizeof(body[i]));
		assert_memory_equal(r.cap.r[i].body, body[i], sizeof(body[i]));
	}
	cap_free(&r.cap);
	lw_buf_free(&b);
}

static void test_h1_post_content_length(void **state)
{
	const char *s = "POST /v1/chat/completions HTTP/1.1\r\n"
			"Host: api.openai.com\r\n"
			"Content-Type: application/json\r\n"
			"Content-Encoding: gzip\r\n"
			"X-Empty:\r\n"
			"X-Spaces: \t padded value \t\r\n"
			"Content-Length: 17\r\n"
			"\r\n"
			"{\"prompt\":\"hi!\"}\n";
	struct trun r;
	const struct treq *t;

	run1(s, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	t = &r.cap.r[0];
	assert_int_equal(t->version, 1);
	assert_int_equal(t->sid, 0);
	assert_string_equal(t->method, "POST");
	assert_string_equal(t->path, "/v1/chat/completions");
	assert_string_equal(t->authority, "api.openai.com");
	assert_string_equal(t->ctype, "application/json");
	assert_string_equal(t->cenc, "gzip");
	assert_int_equal(t->nh, 6);
	assert_string_equal(t->h[0].name, "host");
	assert_string_equal(t->h[1].name, "content-type");
	assert_string_equal(t->h[3].name, "x-empty");
	assert_string_equal(t->h[3].value, "");
	assert_string_equal(t->h[4].value, "padded value");
	assert_string_equal(t->h[5].name, "content-length");
	body_is(t, "{\"prompt\":\"hi!\"}\n");
	assert_false(t->trunc);
	assert_int_equal(t->total, 17);
	assert_int_equal(r.st.requests, 1);
	assert_int_equal(r.st.parse_errors, 0);
	assert_int_equal(r.st.bodies_truncated, 0);
	assert_int_equal(r.st.bytes_skipped, 0);
	cap_free(&r.cap);
}

static void test_h1_pipelining_keepalive(void **state)
{
	const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
			"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
			"\r\n" /* a stray CRLF between requests is ignored */
			"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			"2\r\nxy\r\n0\r\n\r\n"
			"HEAD /d HTTP/1.1\r\nHost: h\r\n\r\n"
			"DELETE /e HTTP/1.1\r\nHost: h\r\n\r\n"
			"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
	const char *paths[] = {"/a", "/b", "/c", "/d", "/e", "/f"};
	const char *methods[] = {"GET", "POST", "POST", "HEAD", "DELETE", "PUT"};
	const char *bodies[] = {"", "abc", "xy", "", "", ""};
	struct trun r;

	run1(s, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_string_equal(r.cap.r[i].method, methods[i]);
		assert_string_equal(r.cap.r[i].path, paths[i]);
		body_is(&r.cap.r[i], bodies[i]);
		assert_false(r.cap.r[i].trunc);
	}
	assert_int_equal(r.st.requests, 6);
	assert_int_equal(r.st.parse_errors, 0);
	cap_free(&r.cap);
}

static void test_h1_bodiless_delivered_at_once(void **state)
{
	/* a GET needs no finish and no following bytes to be delivered */
	struct trun r;

	run1("GET /models HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n", false, &r);
	assert_int_equal(r.cap.n, 1);
	assert_string_equal(r.cap.r[0].authority, "api.anthropic.com");
	assert_int_equal(r.cap.r[0].total, 0);
	cap_free(&r.cap);
	/* bare LF line ends are accepted (RFC 9112 2.2) */
	run1("GET /x HTTP/1.1\nHost: a\n\n", false, &r);
	assert_int_equal(r.cap.n, 1);
	assert_string_equal(r.cap.r[0].path, "/x");
	assert_string_equal(r.cap.r[0].authority, "a");
	cap_free(&r.cap);
}

static void test_h1_chunked_extensions_trailers(void **state)
{
	const char *s = "POST /up HTTP/1.1\r\n"
			"Host: h\r\n"
			"Transfer-Encoding: chunked\r\n"
			"\r\n"
			"5;name=value;q=\"quoted;str\"\r\nhello\r\n"
			"000A \t;x\r\n, world!!!\r\n"
			"1\r\n\n\r\n"
			"0;last\r\n"
			"X-Checksum: abc\r\n"
			"X-Trailer-2: two\r\n"
			"  folded\r\n"
			"\r\n";
	struct trun r;
	const struct treq *t;

	run1(s, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	t = &r.cap.r[0];
	body_is(t, "hello, world!!!\n");
	assert_int_equal(t->total, 16);
	assert_int_equal(t->nh, 4);
	assert_string_equal(hval(t, "transfer-encoding"), "chunked");
	assert_string_equal(hval(t, "x-checksum"), "abc");
	assert_string_equal(hval(t, "x-trailer-2"), "two folded");
	assert_false(t->trunc);
	cap_free(&r.cap);
}

static void test_h1_te_and_cl(void **state)
{
	struct trun r;

	/* Transfer-Encoding wins over Content-Length (RFC 9112 6.3) */
	run1("POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
	     "3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
	     false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 2);
	body_is(&r.cap.r[0], "abc");
	assert_string_equal(r.cap.r[1].path, "/next");
	cap_free(&r.cap);
	/* coding parameters, whitespace and empty list elements */
	run1("POST / HTTP/1.1\r\nTransfer-Encoding: gzip ;q=0.5 , chunked ,\r\n\r\n"
	     "1\r\nz\r\n0\r\n\r\n",
	     false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	body_is(&r.cap.r[0], "z");
	cap_free(&r.cap);
	/* codings before chunked are kept in the body; list over two lines */
	run1("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: , Chunked\r\n\r\n"
	     "1\r\nz\r\n0\r\n\r\n",
	     false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	body_is(&r.cap.r[0], "z");
	cap_free(&r.cap);
}

static void test_h1_te_refused(void **state)
{
	const char *bad[] = {
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n"),
		"POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n",
		/* HTTP/1.0 framing with Transfer-Encoding is faulty */
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct trun r;

		run1(bad[i], true, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.cap.n, 0);
		assert_int_equal(r.st.parse_errors, 1);
		cap_free(&r.cap);
	}
}

static void test_h1_http10(void **state)
{
	struct trun r;

	run1("POST /old HTTP/1.0\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.0\r\n\r\n", false,
	     &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 2);
	body_is(&r.cap.r[0], "body");
	assert_string_equal(r.cap.r[0].authority, "");
	assert_string_equal(r.cap.r[1].method, "GET");
	cap_free(&r.cap);
}

static void test_h1_expect_continue(void **state)
{
	/* the client waits for 100 Continue between head and body: two
	 * writes, and nothing is delivered before the body */
	struct lw_http_limits l;
	struct trun r;
	struct lw_http1 *h;
	const char *head = "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n"
			   "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n";

	lw_http_limits_default(&l);
	memset(&r, 0, sizeof(r));
	r.cap.max_body = l.max_body;
	h = lw_http1_new(&l, on_req, &r.cap, &r.st);
	assert_int_equal(lw_http1_feed(h, head, strlen(head)), 0);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(lw_http1_feed(h, "hello", 5), 0);
	assert_int_equal(r.cap.n, 1);
	body_is(&r.cap.r[0], "hello");
	assert_string_equal(hval(&r.cap.r[0], "expect"), "100-continue");
	/* the server refused with 417 and the client gave up: finish
	 * delivers the head it had sent, marked truncated */
	assert_int_equal(lw_http1_feed(h, head, strlen(head)), 0);
	lw_http1_finish(h);
	assert_int_equal(r.cap.n, 2);
	assert_true(r.cap.r[1].trunc);
	assert_int_equal(r.cap.r[1].body_len, 0);
	assert_int_equal(r.st.bodies_truncated, 1);
	/* after finish, input is skipped */
	assert_int_equal(lw_http1_feed(h, "GET", 3), -1);
	assert_int_equal(r.st.bytes_skipped, 3);
	lw_http1_free(h);
	cap_free(&r.cap);
}

static void test_h1_obs_fold(void **state)
{
	struct trun r;

	run1("GET / HTTP/1.1\r\nX-Long: one\r\n two\r\n\t three \r\nX-B: b\r\n\r\n", false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].nh, 2);
	assert_string_equal(hval(&r.cap.r[0], "x-long"), "one two three");
	assert_int_equal(r.cap.r[0].h[0].vl, 13);
	assert_string_equal(hval(&r.cap.r[0], "x-b"), "b");
	cap_free(&r.cap);
	/* a fold with nothing to continue is refused */
	run1("GET / HTTP/1.1\r\n folded: x\r\n\r\n", false, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
}

static void test_h1_truncated_at_finish(void **state)
{
	struct trun r;
	const struct treq *t;

	/* Content-Length body cut short */
	run1("POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789", true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	body_is(&r.cap.r[0], "0123456789");
	assert_true(r.cap.r[0].trunc);
	assert_int_equal(r.cap.r[0].total, 10);
	assert_int_equal(r.st.bodies_truncated, 1);
	cap_free(&r.cap);
	/* chunked body cut inside a chunk */
	run1("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\nxy", true,
	     &r);
	assert_int_equal(r.cap.n, 1);
	body_is(&r.cap.r[0], "abcxy");
	assert_true(r.cap.r[0].trunc);
	cap_free(&r.cap);
	/* head cut: the complete lines are delivered, the partial one skipped */
	run1("POST /p HTTP/1.1\r\nHost: h\r\nContent-Le", true, &r);
	assert_int_equal(r.cap.n, 1);
	t = &r.cap.r[0];
	assert_string_equal(t->path, "/p");
	assert_string_equal(t->authority, "h");
	assert_int_equal(t->nh, 1);
	assert_true(t->trunc);
	assert_int_equal(r.st.bytes_skipped, 10);
	assert_int_equal(r.st.parse_errors, 0);
	cap_free(&r.cap);
	/* not even a request line */
	run1("POST /p HT", true, &r);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.parse_errors, 1);
	assert_int_equal(r.st.bytes_skipped, 10);
	cap_free(&r.cap);
	/* without finish nothing incomplete is delivered */
	run1("POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789", false, &r);
	assert_int_equal(r.cap.n, 0);
	cap_free(&r.cap);
}

static void test_h1_max_body_stays_in_sync(void **state)
{
	struct lw_http_limits l;
	struct lw_buf b = {0};
	struct trun r;
	char big[5000];

	lw_http_limits_default(&l);
	l.max_body = 1000;
	fill((uint8_t *)big, sizeof(big), 7);
	lw_buf_printf(&b, "POST /1 HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", sizeof(big));
	lw_buf_put(&b, big, sizeof(big));
	lw_buf_printf(&b, "POST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n",
		      sizeof(big));
	lw_buf_put(&b, big, sizeof(big));
	lw_buf_puts(&b, "\r\n0\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
	run_all(1, &l, b.p, b.len, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.cap.r[i].body_len, 1000);
		assert_memory_equal(r.cap.r[i].body, big, 1000);
		assert_true(r.cap.r[i].trunc);
		assert_int_equal(r.cap.r[i].total, 5000);
	}
	assert_string_equal(r.cap.r[2].path, "/3");
	assert_false(r.cap.r[2].trunc);
	assert_int_equal(r.st.bodies_truncated, 2);
	cap_free(&r.cap);
	/* max_body 0: nothing kept, everything counted */
	l.max_body = 0;
	run_all(1, &l, b.p, b.len, false, &r);
	assert_int_equal(r.cap.n, 3);
	assert_int_equal(r.cap.r[0].body_len, 0);
	assert_int_equal(r.cap.r[0].total, 5000);
	assert_true(r.cap.r[0].trunc);
	cap_free(&r.cap);
	lw_buf_free(&b);
}

/* Malformed heads: refused before anything is delivered. */
static void test_h1_malformed_head(void **state)
{
#define S(x)                                                                                       \
	{                                                                                          \
		x, sizeof(x) - 1                                                                   \
	}
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		S("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
		S("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
		S("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
		S("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello"),
		S("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"),
		S("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"),
		S("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
		S("GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
		S("GET / HTTP/1.1\r\nHost h\r\n\r\n"),
		S("GET / HTTP/1.1\r\n: h\r\n\r\n"),
		S("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
		S("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"),
		S("GET / HTTP/2.0\r\n\r\n"),
		S("GET / HTTP/1.10\r\n\r\n"),
		S("GET / http/1.1\r\n\r\n"),
		S("GET  / HTTP/1.1\r\n\r\n"),
		S("GET /\r\n\r\n"),
		S("GET / HTTP/1.1 \r\n\r\n"),
		S("GET /a\x01 HTTP/1.1\r\n\r\n"),
		S("GET\r\n\r\n"),
		S("\x16\x03\x01\x00\x10hello"),
		S("\0GET / HTTP/1.1\r\n\r\n"),
		S(LW_HTTP2_PREFACE),
	};
#undef S

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct trun r;

		run_all(1, NULL, bad[i].s, bad[i].n, true, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.cap.n, 0);
		assert_int_equal(r.st.parse_errors, 1);
		assert_int_equal(r.st.requests, 0);
		cap_free(&r.cap);
	}
}

/* Framing errors inside a body: what came is delivered, then the stream is
 * given up (a server would have closed it). */
static void test_h1_malformed_chunked(void **state)
{
	const char *bad[] = {
		"zz\r\n",		       /* not hex */
		"\r\n",			       /* empty size */
		"10000000000000000\r\n",       /* 17 digits: overflows 64 bits */
		"fffffffffffffffffffffff\r\n", /* far over */
		"-1\r\n",		       /* negative */
		"3 x\r\nabc\r\n",	       /* junk after the size */
		"3\r\nabcX\r\n",	       /* missing CRLF after the data */
		"3\r\nabc\rX",		       /* CR without LF */
		"3;ext=\"a\rb\"\r\nabc\r\n",   /* CR inside an extension */
		"0\r\nbad trailer\r\n\r\n",    /* trailer without colon */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lw_buf b = {0};
		struct trun r;

		lw_buf_puts(&b, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				"2\r\nok\r\n");
		lw_buf_puts(&b, bad[i]);
		lw_buf_puts(&b, "GET /after HTTP/1.1\r\n\r\n");
		run_all(1, NULL, b.p, b.len, true, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.cap.n, 1);
		assert_string_equal(r.cap.r[0].path, "/c");
		assert_true(r.cap.r[0].trunc);
		assert_int_equal(r.st.parse_errors, 1);
		assert_int_equal(r.st.bodies_truncated, 1);
		cap_free(&r.cap);
		lw_buf_free(&b);
	}
	/* 16 hex digits is the most that fits; such a chunk just streams */
	{
		struct trun r;

		run1("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "ffffffffffffffff\r\nabc",
		     true, &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.cap.n, 1);
		body_is(&r.cap.r[0], "abc");
		assert_true(r.cap.r[0].trunc);
		cap_free(&r.cap);
	}
}

static void test_h1_error_skips_rest(void **state)
{
	struct lw_http_limits l;
	struct lw_http_stats st = {0};
	struct tcap c = {.max_body = 1 << 20};
	struct lw_http1 *h;
	const char *s = "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";

	lw_http_limits_default(&l);
	h = lw_http1_new(&l, on_req, &c, &st);
	assert_int_equal(lw_http1_feed(h, s, strlen(s)), -1);
	/* the bytes after the failing head in the same feed are skipped */
	assert_int_equal(st.bytes_skipped, strlen("GET /b HTTP/1.1\r\n\r\n"));
	assert_int_equal(lw_http1_feed(h, "GET / HTTP/1.1\r\n\r\n", 18), -1);
	assert_int_equal(st.bytes_skipped, 19 + 18);
	assert_int_equal(st.parse_errors, 1);
	lw_http1_finish(h);
	assert_int_equal(c.n, 0);
	lw_http1_free(h);
	cap_free(&c);
}

static void test_h1_upgrade_switch(void **state)
{
	struct trun r;
	const char *s = "GET /v1/realtime HTTP/1.1\r\nHost: api.openai.com\r\n"
			"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
			"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

	run_all(1, NULL, s, strlen(s), true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 1);
	assert_string_equal(r.cap.r[0].path, "/v1/realtime");
	/* another protocol, not an error: counted as skipped */
	assert_int_equal(r.st.parse_errors, 0);
	assert_int_equal(r.st.bytes_skipped, 11);
	cap_free(&r.cap);
	/* CONNECT: tunnelled TLS follows */
	run1("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n"
	     "\x16\x03\x01\x02\x05\x01",
	     true, &r);
	assert_int_equal(r.cap.n, 1);
	assert_string_equal(r.cap.r[0].method, "CONNECT");
	assert_string_equal(r.cap.r[0].path, "api.openai.com:443");
	assert_int_equal(r.st.parse_errors, 0);
	assert_int_equal(r.st.bytes_skipped, 6);
	cap_free(&r.cap);
	/* after an upgrade, bytes that could still start a request but end
	 * with the connection are skipped, not an error */
	run1("GET / HTTP/1.1\r\nUpgrade: foo\r\n\r\nabc", true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.st.parse_errors, 0);
	assert_int_equal(r.st.bytes_skipped, 3);
	cap_free(&r.cap);
	/* a client that asked for an upgrade and did not get it goes on */
	run1("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 2);
	cap_free(&r.cap);
}

static void test_h1_hostile_endless_chunked(void **state)
{
	/* an endless chunked upload with tiny limits: memory stays bounded
	 * (the kept body never passes max_body), everything is counted, and
	 * finish delivers it */
	struct lw_http_limits l;
	struct lw_http_stats st = {0};
	struct tcap c = {0};
	struct lw_http1 *h;
	const char *head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	char chunk[300];
	uint64_t total = 0;

	lw_http_limits_default(&l);
	l.max_body = 16;
	l.max_header_bytes = 256;
	c.max_body = l.max_body;
	h = lw_http1_new(&l, on_req, &c, &st);
	assert_int_equal(lw_http1_feed(h, head, strlen(head)), 0);
	memset(chunk, 'a', sizeof(chunk));
	memcpy(chunk, "100;e=1\r\n", 9);
	memcpy(chunk + 9 + 256, "\r\n", 2);
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(lw_http1_feed(h, chunk, 9 + 256 + 2), 0);
		total += 256;
	}
	assert_int_equal(c.n, 0);
	lw_http1_finish(h);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.r[0].body_len, 16);
	assert_int_equal(c.r[0].total, total);
	assert_true(c.r[0].trunc);
	lw_http1_free(h);
	cap_free(&c);
	c.max_body = l.max_body;

	/* an endless chunk-size line is refused at 4 KiB */
	memset(&st, 0, sizeof(st));
	h = lw_http1_new(&l, on_req, &c, &st);
	assert_int_equal(lw_http1_feed(h, head, strlen(head)), 0);
	assert_int_equal(lw_http1_feed(h, "1;", 2), 0);
	memset(chunk, 'x', sizeof(chunk));
	{
		int rc = 0, i;

		for (i = 0; i < 100 && rc == 0; i++)
			rc = lw_http1_feed(h, chunk, sizeof(chunk));
		assert_int_equal(rc, -1);
		assert_int_equal(i, 4096 / 300 + 1);
	}
	assert_int_equal(st.parse_errors, 1);
	assert_int_equal(c.n, 1);
	assert_true(c.r[0].trunc);
	lw_http1_free(h);
	cap_free(&c);
	c.max_body = l.max_body;

	/* endless empty lines before a request cost nothing and are no error */
	memset(&st, 0, sizeof(st));
	h = lw_http1_new(&l, on_req, &c, &st);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(lw_http1_feed(h, "\r\n\r\n", 4), 0);
	assert_int_equal(lw_http1_feed(h, "GET / HTTP/1.1\r\n\r\n", 18), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(st.parse_errors, 0);
	lw_http1_free(h);
	cap_free(&c);
}

static void test_h1_hostile_headers(void **state)
{
	struct lw_http_limits l;
	struct lw_buf b = {0};
	struct trun r;

	/* 10k headers: over the default 64 KiB head limit -> error */
	lw_buf_puts(&b, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 10000; i++)
		lw_buf_printf(&b, "X-H-%05d: v%d\r\n", i, i);
	lw_buf_puts(&b, "\r\n");
	run(1, NULL, b.p, b.len, WHOLE, 0, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	run(1, NULL, b.p, b.len, SMALL, 3, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	/* the head stops being read at the limit, not at the end */
	assert_true(r.fail_feed < 65536 + 64);
	cap_free(&r.cap);
	/* within a bigger limit every one of them is delivered */
	lw_http_limits_default(&l);
	l.max_header_bytes = 1 << 20;
	run(1, &l, b.p, b.len, LARGE, 5, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].nh, 10000);
	assert_string_equal(r.cap.r[0].h[9999].name, "x-h-09999");
	assert_string_equal(r.cap.r[0].h[9999].value, "v9999");
	cap_free(&r.cap);

	/* one huge header */
	lw_buf_reset(&b);
	lw_buf_puts(&b, "GET / HTTP/1.1\r\nX-Big: ");
	for (int i = 0; i < 100000; i++)
		lw_buf_putc(&b, 'a');
	lw_buf_puts(&b, "\r\n\r\n");
	run(1, NULL, b.p, b.len, LARGE, 9, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	/* exactly at the limit is fine, one byte over is not */
	lw_buf_reset(&b);
	lw_buf_puts(&b, "GET / HTTP/1.1\r\nX: ");
	while (b.len < 100 - 4)
		lw_buf_putc(&b, 'b');
	lw_buf_puts(&b, "\r\n\r\n");
	lw_http_limits_default(&l);
	l.max_header_bytes = 100;
	run_all(1, &l, b.p, b.len, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	cap_free(&r.cap);
	l.max_header_bytes = 99;
	run_all(1, &l, b.p, b.len, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	cap_free(&r.cap);
	lw_buf_free(&b);
}

static void test_h1_random_splits_many_requests(void **state)
{
	/* 200 requests of every kind back to back, bodies binary */
	struct lw_buf b = {0};
	struct trun r;
	uint64_t seed = 42;
	uint8_t body[3000];

	for (int i = 0; i < 200; i++) {
		size_t n = splitmix(&seed) % sizeof(body);

		fill(body, n, (uint64_t)i);
		switch (i % 3) {
		case 0:
			lw_buf_printf(
				&b,
				"POST /r%d HTTP/1.1\r\nHost: h%d\r\nContent-Length: %zu\r\n\r\n", i,
				i, n);
			lw_buf_put(&b, body, n);
			break;
		case 1: {
			size_t off = 0;

			lw_buf_printf(&b,
				      "PATCH /r%d HTTP/1.1\r\nHost: h%d\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n",
				      i, i);
			while (off < n) {
				size_t k = 1 + splitmix(&seed) % 700;

				if (k > n - off)
					k = n - off;
				lw_buf_printf(&b, "%zX\r\n", k);
				lw_buf_put(&b, body + off, k);
				lw_buf_puts(&b, "\r\n");
				off += k;
			}
			lw_buf_puts(&b, "0\r\n\r\n");
			break;
		}
		default:
			n = 0;
			lw_buf_printf(&b, "GET /r%d HTTP/1.1\r\nHost: h%d\r\n\r\n", i, i);
		}
	}
	run_all(1, NULL, b.p, b.len, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 200);
	seed = 42;
	for (int i = 0; i < 200; i++) {
		size_t n = splitmix(&seed) % sizeof(body);
		char path[16];

		if (i % 3 == 1)
			for (size_t off = 0; off < n;) {
				size_t k = 1 + splitmix(&seed) % 700;

				off += k > n - off ? n - off : k;
			}
		if (i % 3 == 2)
			n = 0;
		fill(body, n, (uint64_t)i);
		snprintf(path, sizeof(path), "/r%d", i);
		assert_string_equal(r.cap.r[i].path, path);
		assert_int_equal(r.cap.r[i].body_len, n);
		if (n)
			assert_memory_equal(r.cap.r[i].body, body, n);
	}
	cap_free(&r.cap);
	lw_buf_free(&b);
}

/* ---- HTTP/2: building client streams ------------------------------------- */

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE \
	}

struct h2w {
	struct lw_buf b;
	nghttp2_hd_deflater *def;
};

static void h2w_init(struct h2w *w)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(nghttp2_hd_deflate_new(&w->def, 4096), 0);
	lw_buf_put(&w->b, LW_HTTP2_PREFACE, LW_HTTP2_PREFACE_LEN);
	/* a client's SETTINGS and WINDOW_UPDATE, as curl sends them */
	{
		static const uint8_t settings[] = {0, 3, 0, 0, 0, 100, 0, 4, 0, 0x20, 0, 0};
		static const uint8_t wu[] = {0, 0x3f, 0xff, 0x01};
		uint8_t h[9] = {0, 0, sizeof(settings), 4, 0, 0, 0, 0, 0};

		lw_buf_put(&w->b, h, 9);
		lw_buf_put(&w->b, settings, sizeof(settings));
		h[2] = 4;
		h[3] = 8;
		lw_buf_put(&w->b, h, 9);
		lw_buf_put(&w->b, wu, 4);
	}
}

/* A deflater that announces (and uses) a table of size bytes. */
static void h2w_table(struct h2w *w, size_t size)
{
	nghttp2_hd_deflate_del(w->def);
	assert_int_equal(nghttp2_hd_deflate_new(&w->def, size), 0);
	assert_int_equal(nghttp2_hd_deflate_change_table_size(w->def, size), 0);
}

static void h2w_free(struct h2w *w)
{
	nghttp2_hd_deflate_del(w->def);
	lw_buf_free(&w->b);
}

static void frame_hdr(struct lw_buf *b, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	uint8_t h[9] = {(uint8_t)(len >> 16),
			(uint8_t)(len >> 8),
			(uint8_t)len,
			type,
			flags,
			(uint8_t)(sid >> 24 & 0x7f),
			(uint8_t)(sid >> 16),
			(uint8_t)(sid >> 8),
			(uint8_t)sid};

	lw_buf_put(b, h, 9);
}

static void frame(struct lw_buf *b, uint8_t type, uint8_t flags, uint32_t sid, const void *pl,
		  size_t len)
{
	frame_hdr(b, len, type, flags, sid);
	if (len)
		lw_buf_put(b, pl, len);
}

static void hpack(struct h2w *w, struct lw_buf *out, const nghttp2_nv *nva, size_t n)
{
	size_t bound = nghttp2_hd_deflate_bound(w->def, nva, n);
	ssize_t rv;

	lw_buf_reserve(out, bound);
	rv = nghttp2_hd_deflate_hd(w->def, (uint8_t *)out->p + out->len, bound, nva, n);
	assert_true(rv >= 0);
	out->len += (size_t)rv;
}

/* HEADERS (+ CONTINUATION when nfrag > 1), optional padding and priority. */
static void h2_headers(struct h2w *w, uint32_t sid, bool end_stream, const nghttp2_nv *nva,
		       size_t n, int pad, bool prio, int nfrag)
{
	struct lw_buf blk = {0};
	size_t off = 0;

	hpack(w, &blk, nva, n);
	for (int i = 0; i < nfrag; i++) {
		size_t k = i == nfrag - 1 ? blk.len - off : blk.len / (size_t)nfrag;
		uint8_t fl = (i == nfrag - 1) ? 0x4 : 0;

		if (i == 0) {
			struct lw_buf pl = {0};

			fl |= end_stream ? 0x1 : 0;
			if (pad >= 0) {
				fl |= 0x8;
				lw_buf_putc(&pl, (char)pad);
			}
			if (prio) {
				fl |= 0x20;
				lw_buf_put(&pl, "\x80\0\0\x01\x10", 5);
			}
			if (k)
				lw_buf_put(&pl, blk.p + off, k);
			for (int q = 0; q < pad; q++)
				lw_buf_putc(&pl, 0);
			frame(&w->b, 1, fl, sid, pl.p, pl.len);
			lw_buf_free(&pl);
		} else {
			frame(&w->b, 9, fl, sid, blk.p + off, k);
		}
		off += k;
	}
	lw_buf_free(&blk);
}

static void h2_data(struct h2w *w, uint32_t sid, bool end_stream, const void *d, size_t n, int pad)
{
	struct lw_buf pl = {0};
	uint8_t fl = end_stream ? 1 : 0;

	if (pad >= 0) {
		fl |= 0x8;
		lw_buf_putc(&pl, (char)pad);
	}
	if (n)
		lw_buf_put(&pl, d, n);
	for (int q = 0; q < pad; q++)
		lw_buf_putc(&pl, 0);
	frame(&w->b, 0, fl, sid, pl.p, pl.len);
	lw_buf_free(&pl);
}

static const nghttp2_nv post_nv[] = {
	NV(":method", "POST"),
	NV(":scheme", "https"),
	NV(":authority", "api.openai.com"),
	NV(":path", "/v1/chat/completions"),
	NV("content-type", "application/json"),
	NV("authorization", "Bearer sk-test"),
	NV("user-agent", "OpenAI/Python 1.0"),
};

static void run2(struct h2w *w, const struct lw_http_limits *l, bool finish, struct trun *r)
{
	run_all(2, l, w->b.p, w->b.len, finish, r);
}

/* ---- HTTP/2 tests ---------------------------------------------------------- */

static void test_h2_simple_post(void **state)
{
	struct h2w w;
	struct trun r;
	const struct treq *t;
	const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	h2_data(&w, 1, true, body, strlen(body), -1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	t = &r.cap.r[0];
	assert_int_equal(t->version, 2);
	assert_int_equal(t->sid, 1);
	assert_string_equal(t->method, "POST");
	assert_string_equal(t->path, "/v1/chat/completions");
	assert_string_equal(t->authority, "api.openai.com");
	assert_string_equal(t->ctype, "application/json");
	assert_string_equal(t->cenc, "");
	assert_int_equal(t->nh, 3);
	assert_string_equal(t->h[0].name, "content-type");
	assert_string_equal(t->h[1].name, "authorization");
	assert_string_equal(t->h[1].value, "Bearer sk-test");
	assert_string_equal(t->h[2].value, "OpenAI/Python 1.0");
	body_is(t, body);
	assert_false(t->trunc);
	assert_int_equal(t->total, strlen(body));
	assert_int_equal(r.st.requests, 1);
	assert_int_equal(r.st.parse_errors + r.st.hpack_errors + r.st.bytes_skipped, 0);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_get_and_dynamic_table(void **state)
{
	/* the same headers again come out of the dynamic table; Host stands
	 * in for a missing :authority */
	static const nghttp2_nv get_nv[] = {
		NV(":method", "GET"),
		NV(":scheme", "https"),
		NV(":path", "/v1/models"),
		NV("host", "api.mistral.ai"),
		NV("x-custom-header", "a fairly long value that gets indexed"),
	};
	struct h2w w;
	struct trun r;

	h2w_init(&w);
	for (uint32_t sid = 1; sid <= 9; sid += 2)
		h2_headers(&w, sid, true, get_nv, 5, -1, false, 1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 5);
	for (uint32_t i = 0; i < 5; i++) {
		const struct treq *t = &r.cap.r[i];

		assert_int_equal(t->sid, 2 * i + 1);
		assert_string_equal(t->method, "GET");
		assert_string_equal(t->path, "/v1/models");
		assert_string_equal(t->authority, "api.mistral.ai");
		assert_int_equal(t->nh, 2);
		assert_string_equal(hval(t, "x-custom-header"),
				    "a fairly long value that gets indexed");
		assert_int_equal(t->body_len, 0);
		assert_false(t->trunc);
	}
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_data_many_frames(void **state)
{
	struct h2w w;
	struct trun r;
	uint8_t body[100000];

	fill(body, sizeof(body), 3);
	h2w_init(&w);
	h2_headers(&w, 3, false, post_nv, 7, -1, false, 1);
	for (size_t off = 0; off < sizeof(body); off += 100)
		h2_data(&w, 3, off + 100 == sizeof(body), body + off, 100, -1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].body_len, sizeof(body));
	assert_memory_equal(r.cap.r[0].body, body, sizeof(body));
	assert_false(r.cap.r[0].trunc);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_interleaved_streams(void **state)
{
	/* 50 uploads interleaved frame by frame, ending in reverse order */
	enum { N = 50, PIECES = 20, PIECE = 37 };
	struct h2w w;
	struct trun r;
	uint8_t bodies[N][PIECES * PIECE];

	h2w_init(&w);
	for (int i = 0; i < N; i++) {
		char path[16];
		nghttp2_nv nv[] = {
			NV(":method", "POST"),
			NV(":scheme", "https"),
			NV(":authority", "generativelanguage.googleapis.com"),
			{(uint8_t *)":path", (uint8_t *)path, 5, 0, 0},
		};

		nv[3].valuelen = (size_t)snprintf(path, sizeof(path), "/s%d", i);
		fill(bodies[i], sizeof(bodies[i]), 100 + (uint64_t)i);
		h2_headers(&w, 1 + 2 * (uint32_t)i, false, nv, 4, -1, false, 1);
	}
	for (int p = 0; p < PIECES; p++)
		for (int i = N - 1; i >= 0; i--)
			h2_data(&w, 1 + 2 * (uint32_t)i, p == PIECES - 1, bodies[i] + p * PIECE,
				PIECE, -1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, N);
	for (int k = 0; k < N; k++) {
		int i = N - 1 - k;
		char path[16];

		snprintf(path, sizeof(path), "/s%d", i);
		assert_int_equal(r.cap.r[k].sid, 1 + 2 * i);
		assert_string_equal(r.cap.r[k].path, path);
		assert_int_equal(r.cap.r[k].body_len, sizeof(bodies[i]));
		assert_memory_equal(r.cap.r[k].body, bodies[i], sizeof(bodies[i]));
	}
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_padding_priority(void **state)
{
	struct h2w w;
	struct trun r;

	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, 17, true, 1);
	h2_data(&w, 1, false, "abc", 3, 200);
	h2_data(&w, 1, false, "", 0, 0);	 /* padded, no data, no padding */
	h2_data(&w, 1, false, "", 0, 255);	 /* all padding */
	h2_data(&w, 1, false, "", 0, -1);	 /* empty */
	frame(&w.b, 2, 0, 1, "\0\0\0\0\x20", 5); /* PRIORITY */
	h2_data(&w, 1, true, "def", 3, 1);
	h2_headers(&w, 3, true, post_nv, 7, 0, true, 1);
	h2_headers(&w, 5, true, post_nv, 7, 3, false, 1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 3);
	body_is(&r.cap.r[0], "abcdef");
	assert_string_equal(r.cap.r[1].path, "/v1/chat/completions");
	assert_int_equal(r.cap.r[2].sid, 5);
	assert_int_equal(r.cap.r[2].nh, 3);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_bad_padding(void **state)
{
	struct h2w w;
	struct trun r;

	/* Pad Length equal to the payload left */
	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	h2_data(&w, 1, false, "abc", 3, -1);
	frame(&w.b, 0, 0x8, 1,
	      "\x04"
	      "abc",
	      4);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 1);
	/* the stream is delivered with what it had */
	assert_int_equal(r.cap.n, 1);
	body_is(&r.cap.r[0], "abc");
	assert_true(r.cap.r[0].trunc);
	cap_free(&r.cap);
	h2w_free(&w);
	/* PADDED with an empty payload; PRIORITY too short */
	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	frame(&w.b, 0, 0x8, 1, "", 0);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 1);
	assert_int_equal(r.cap.n, 1);
	cap_free(&r.cap);
	h2w_free(&w);
	h2w_init(&w);
	frame(&w.b, 1, 0x24, 1, "\0\0\0", 3);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);
	/* HEADERS padding that eats into the priority fields */
	h2w_init(&w);
	frame(&w.b, 1, 0x2c, 1, "\x02\0\0\0\0\x10\0", 7);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_continuation(void **state)
{
	struct h2w w;
	struct trun r;
	nghttp2_nv nv[40];
	char names[40][16], vals[40][40];

	for (int i = 0; i < 40; i++) {
		nv[i].name = (uint8_t *)names[i];
		nv[i].value = (uint8_t *)vals[i];
		nv[i].namelen = (size_t)snprintf(names[i], 16, "x-h%d", i);
		nv[i].valuelen = (size_t)snprintf(vals[i], 40, "value number %d", i);
		nv[i].flags = NGHTTP2_NV_FLAG_NO_INDEX;
	}
	memcpy(nv, post_nv, 4 * sizeof(nv[0]));
	h2w_init(&w);
	h2_headers(&w, 1, false, nv, 40, 5, true, 6);
	h2_data(&w, 1, true, "x", 1, -1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].nh, 36);
	assert_string_equal(r.cap.r[0].h[35].name, "x-h39");
	assert_string_equal(r.cap.r[0].h[35].value, "value number 39");
	assert_string_equal(r.cap.r[0].authority, "api.openai.com");
	cap_free(&r.cap);
	h2w_free(&w);

	/* another frame inside a header block is a connection error */
	h2w_init(&w);
	{
		struct lw_buf blk = {0};

		hpack(&w, &blk, post_nv, 7);
		frame(&w.b, 1, 0, 1, blk.p, 10);
		frame(&w.b, 6, 0, 0, "12345678", 8); /* PING */
		frame(&w.b, 9, 4, 1, blk.p + 10, blk.len - 10);
		lw_buf_free(&blk);
	}
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	/* the unfinished stream is dropped, counted */
	assert_int_equal(r.st.parse_errors, 2);
	cap_free(&r.cap);
	h2w_free(&w);

	/* CONTINUATION for another stream, or with no block open */
	h2w_init(&w);
	frame(&w.b, 9, 4, 1, "\x82", 1);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);
	h2w_init(&w);
	frame(&w.b, 1, 0, 1, "\x82", 1);
	frame(&w.b, 9, 4, 3, "\x84", 1);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_trailers(void **state)
{
	static const nghttp2_nv trailers[] = {NV("x-checksum", "c0ffee"), NV(":path", "/ignored")};
	struct h2w w;
	struct trun r;

	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	h2_data(&w, 1, false, "body", 4, -1);
	h2_headers(&w, 1, true, trailers, 2, -1, false, 2);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].nh, 4);
	assert_string_equal(hval(&r.cap.r[0], "x-checksum"), "c0ffee");
	assert_string_equal(r.cap.r[0].path, "/v1/chat/completions");
	body_is(&r.cap.r[0], "body");
	assert_false(r.cap.r[0].trunc);
	/* a pseudo-field in trailers is malformed: ignored, counted */
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);

	/* trailers without END_STREAM: the stream is reset */
	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	h2_headers(&w, 1, false, trailers, 1, -1, false, 1);
	h2_data(&w, 1, true, "late", 4, -1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_true(r.cap.r[0].trunc);
	assert_int_equal(r.cap.r[0].nh, 4);
	assert_int_equal(r.st.parse_errors, 1);
	assert_int_equal(r.st.bytes_skipped, 4);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_rst_stream_and_finish(void **state)
{
	struct h2w w;
	struct trun r;

	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	h2_headers(&w, 3, false, post_nv, 7, -1, false, 1);
	h2_data(&w, 1, false, "part", 4, -1);
	h2_data(&w, 3, false, "open", 4, -1);
	frame(&w.b, 3, 0, 1, "\0\0\0\x08", 4); /* RST_STREAM CANCEL */
	h2_data(&w, 1, false, "after", 5, -1); /* skipped */
	frame(&w.b, 3, 0, 1, "\0\0\0\x08", 4); /* again: ignored */
	h2_headers(&w, 5, false, post_nv, 7, -1, false, 1);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 3);
	assert_int_equal(r.cap.r[0].sid, 1);
	body_is(&r.cap.r[0], "part");
	assert_true(r.cap.r[0].trunc);
	/* finish: the rest in opening order */
	assert_int_equal(r.cap.r[1].sid, 3);
	body_is(&r.cap.r[1], "open");
	assert_true(r.cap.r[1].trunc);
	assert_int_equal(r.cap.r[2].sid, 5);
	assert_int_equal(r.cap.r[2].body_len, 0);
	assert_int_equal(r.st.bodies_truncated, 3);
	assert_int_equal(r.st.bytes_skipped, 5);
	assert_int_equal(r.st.parse_errors, 0);
	cap_free(&r.cap);
	/* without finish nothing more is delivered */
	run2(&w, NULL, false, &r);
	assert_int_equal(r.cap.n, 1);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_max_streams(void **state)
{
	/* limit 4: streams 9 and 11 are refused, their blocks still go
	 * through HPACK (stream 13 reuses what 9 put in the table) */
	static const nghttp2_nv nv9[] = {
		NV(":method", "POST"),
		NV(":scheme", "https"),
		NV(":authority", "api.groq.com"),
		NV(":path", "/refused"),
		NV("x-only-in-nine", "indexed value"),
	};
	struct lw_http_limits l;
	struct h2w w;
	struct trun r;

	lw_http_limits_default(&l);
	l.max_streams = 4;
	h2w_init(&w);
	for (uint32_t sid = 1; sid <= 7; sid += 2)
		h2_headers(&w, sid, false, post_nv, 7, -1, false, 1);
	h2_headers(&w, 9, false, nv9, 5, -1, false, 1);
	h2_headers(&w, 11, false, nv9, 5, -1, false, 1);
	h2_data(&w, 9, true, "dropped", 7, -1);
	for (uint32_t sid = 1; sid <= 7; sid += 2)
		h2_data(&w, sid, true, "kept", 4, -1);
	h2_headers(&w, 13, false, nv9, 5, -1, false, 1);
	h2_data(&w, 13, true, "new", 3, -1);
	run2(&w, &l, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 5);
	for (int i = 0; i < 4; i++)
		body_is(&r.cap.r[i], "kept");
	assert_int_equal(r.cap.r[4].sid, 13);
	assert_string_equal(r.cap.r[4].path, "/refused");
	assert_string_equal(hval(&r.cap.r[4], "x-only-in-nine"), "indexed value");
	body_is(&r.cap.r[4], "new");
	assert_int_equal(r.st.streams_refused, 2);
	assert_int_equal(r.st.bytes_skipped, 7);
	assert_int_equal(r.st.parse_errors, 0);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_table_size_update(void **state)
{
	static const nghttp2_nv nv[] = {
		NV(":method", "POST"),
		NV(":scheme", "https"),
		NV(":authority", "api.anthropic.com"),
		NV(":path", "/v1/messages"),
		NV("x-api-key", "sk-ant-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	};
	struct h2w w;
	struct trun r;

	/* an update up to max_hpack_table is accepted, and used */
	h2w_init(&w);
	h2w_table(&w, 65536);
	for (uint32_t sid = 1; sid <= 5; sid += 2)
		h2_headers(&w, sid, true, nv, 5, -1, false, 1);
	run2(&w, NULL, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 3);
	assert_string_equal(r.cap.r[2].authority, "api.anthropic.com");
	assert_int_equal(r.st.hpack_errors, 0);
	cap_free(&r.cap);
	h2w_free(&w);

	/* one over it is an HPACK error: fatal, counted */
	h2w_init(&w);
	h2w_table(&w, 65537);
	h2_headers(&w, 1, true, nv, 5, -1, false, 1);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.hpack_errors, 1);
	/* the stream it opened never got its headers: dropped, counted */
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);

	/* a hand-made update to 2^31 */
	h2w_init(&w);
	frame(&w.b, 1, 5, 1, "\x3f\xe1\xff\xff\xff\x07\x82", 7);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.hpack_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);

	/* a smaller limit below 4096 is raised to it: a client using the
	 * default table without announcing it still decodes */
	{
		struct lw_http_limits l;

		lw_http_limits_default(&l);
		l.max_hpack_table = 100;
		h2w_init(&w);
		h2_headers(&w, 1, true, nv, 5, -1, false, 1);
		h2_headers(&w, 3, true, nv, 5, -1, false, 1);
		run2(&w, &l, false, &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.cap.n, 2);
		cap_free(&r.cap);
		h2w_free(&w);
	}
}

static void test_h2_hpack_garbage(void **state)
{
	struct h2w w;
	struct trun r;
	uint8_t junk[64];

	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		{"\x80", 1},		     /* index 0 */
		{"\xff\xff\xff\x7f", 4},     /* index past every table */
		{"\x7e", 1},		     /* literal naming an empty dynamic slot */
		{"\x00\x85\xff\xff\xff", 5}, /* Huffman string cut short */
		{"\x00\x81\xff", 3},	     /* Huffman EOS inside a string */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h2w_init(&w);
		frame(&w.b, 1, 5, 1, bad[i].s, bad[i].n);
		h2_headers(&w, 3, true, post_nv, 7, -1, false, 1);
		run2(&w, NULL, true, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.cap.n, 0);
		assert_int_equal(r.st.hpack_errors, 1);
		cap_free(&r.cap);
		h2w_free(&w);
	}
	/* random bytes: an error at some point, never a crash */
	for (uint64_t seed = 1; seed <= 50; seed++) {
		fill(junk, sizeof(junk), seed);
		junk[0] = 0xbf; /* starts with an index past the static table */
		h2w_init(&w);
		frame(&w.b, 1, 5, 1, junk, sizeof(junk));
		run(2, NULL, w.b.p, w.b.len, SMALL, seed, true, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.st.hpack_errors, 1);
		cap_free(&r.cap);
		h2w_free(&w);
	}
	/* a field cut at the end of HEADERS, the block ended by an empty
	 * CONTINUATION */
	h2w_init(&w);
	frame(&w.b, 1, 1, 1, "\x82\x04\x85", 3);
	frame(&w.b, 9, 4, 1, "", 0);
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.hpack_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);
	/* a block cut in the middle of a field */
	h2w_init(&w);
	{
		struct lw_buf blk = {0};

		hpack(&w, &blk, post_nv, 7);
		frame(&w.b, 1, 5, 1, blk.p, blk.len - 3);
		lw_buf_free(&blk);
	}
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.hpack_errors, 1);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_huge_frame_streamed(void **state)
{
	/* a DATA frame of 2^24-1 bytes, fed 64 KiB at a time: the body is
	 * kept up to max_body, the rest counted, and the next frame parses */
	struct h2w w;
	struct trun r;
	const size_t big = (1u << 24) - 1;
	struct lw_buf data = {0};

	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	lw_buf_reserve(&data, big);
	fill((uint8_t *)data.p, big, 11);
	data.len = big;
	frame_hdr(&w.b, big, 0, 0, 1);
	lw_buf_put(&w.b, data.p, big);
	h2_data(&w, 1, true, "", 0, -1);
	h2_headers(&w, 3, true, post_nv, 7, -1, false, 1);
	run(2, NULL, w.b.p, w.b.len, LARGE, 1, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 2);
	assert_int_equal(r.cap.r[0].body_len, 1u << 20);
	assert_memory_equal(r.cap.r[0].body, data.p, 1u << 20);
	assert_int_equal(r.cap.r[0].total, big);
	assert_true(r.cap.r[0].trunc);
	assert_int_equal(r.cap.r[1].sid, 3);
	assert_int_equal(r.st.bodies_truncated, 1);
	cap_free(&r.cap);
	run(2, NULL, w.b.p, w.b.len, WHOLE, 0, false, &r);
	assert_int_equal(r.cap.n, 2);
	assert_int_equal(r.cap.r[0].total, big);
	cap_free(&r.cap);
	lw_buf_free(&data);
	h2w_free(&w);
	/* the same size as an unknown frame type is skipped */
	h2w_init(&w);
	frame_hdr(&w.b, big, 0xfa, 0, 0);
	lw_buf_reserve(&w.b, big);
	memset(w.b.p + w.b.len, 0, big);
	w.b.len += big;
	h2_headers(&w, 1, true, post_nv, 7, -1, false, 1);
	run(2, NULL, w.b.p, w.b.len, LARGE, 2, false, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_header_limits(void **state)
{
	struct h2w w;
	struct trun r;
	struct lw_http_limits l;
	nghttp2_nv *nv = calloc(10004, sizeof(*nv));
	char(*names)[16] = calloc(10004, 16);
	char big[100000];

	/* 10k small fields: the decoded list passes 64 KiB -> error */
	memcpy(nv, post_nv, 4 * sizeof(*nv));
	for (int i = 4; i < 10004; i++) {
		nv[i].name = (uint8_t *)names[i];
		nv[i].namelen = (size_t)snprintf(names[i], 16, "x-%d", i);
		nv[i].value = (uint8_t *)"v";
		nv[i].valuelen = 1;
	}
	h2w_init(&w);
	h2_headers(&w, 1, true, nv, 10004, -1, false, 8);
	run(2, NULL, w.b.p, w.b.len, LARGE, 1, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.parse_errors, 2); /* the list, the dropped stream */
	cap_free(&r.cap);
	/* with room for them all, all are delivered */
	lw_http_limits_default(&l);
	l.max_header_bytes = 1 << 20;
	run(2, &l, w.b.p, w.b.len, LARGE, 2, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].nh, 10000);
	assert_string_equal(r.cap.r[0].h[9999].name, "x-10003");
	cap_free(&r.cap);
	h2w_free(&w);

	/* one 100 KB field: nghttp2 refuses a string over 64 KiB as soon as
	 * it reads its length, an HPACK error */
	memset(big, 'q', sizeof(big));
	nv[4].name = (uint8_t *)"x-big";
	nv[4].namelen = 5;
	nv[4].value = (uint8_t *)big;
	nv[4].valuelen = sizeof(big);
	h2w_init(&w);
	h2_headers(&w, 1, true, nv, 5, -1, false, 10);
	run(2, NULL, w.b.p, w.b.len, LARGE, 3, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.hpack_errors, 1);
	assert_int_equal(r.st.parse_errors, 1); /* the stream left without headers */
	assert_true(r.fail_feed < 2 * 4096);
	cap_free(&r.cap);
	h2w_free(&w);
	/* a 60 KB field against a 32 KiB limit: the encoded block passes it */
	nv[4].valuelen = 60000;
	h2w_init(&w);
	h2_headers(&w, 1, true, nv, 5, -1, false, 10);
	lw_http_limits_default(&l);
	l.max_header_bytes = 32768;
	run(2, &l, w.b.p, w.b.len, LARGE, 3, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.hpack_errors, 0);
	assert_int_equal(r.st.parse_errors, 2);
	assert_true(r.fail_feed < 32768 + 8192);
	cap_free(&r.cap);
	/* and within the default limit it is delivered whole */
	run(2, NULL, w.b.p, w.b.len, LARGE, 3, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 1);
	assert_int_equal(r.cap.r[0].h[0].vl, 60000);
	assert_memory_equal(r.cap.r[0].h[0].value, big, 60000);
	cap_free(&r.cap);
	h2w_free(&w);

	/* endless CONTINUATION stops at the limit */
	h2w_init(&w);
	/* table size updates: legal at a block's start, they emit nothing */
	frame(&w.b, 1, 0, 1, "\x20", 1);
	for (int i = 0; i < 20000; i++)
		frame(&w.b, 9, 0, 1, "\x20\x20\x20\x20", 4);
	run(2, NULL, w.b.p, w.b.len, LARGE, 4, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 2);
	assert_int_equal(r.st.hpack_errors, 0);
	assert_true(r.fail_feed < 24 + 42 + 65536 / 4 * 13 + 13);
	cap_free(&r.cap);
	lw_http_limits_default(&l);
	l.max_header_bytes = 1000;
	run(2, &l, w.b.p, w.b.len, LARGE, 5, true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 2);
	assert_true(r.fail_feed < 24 + 42 + 1000 / 4 * 13 + 13);
	cap_free(&r.cap);
	h2w_free(&w);
	free(nv);
	free(names);
}

static void test_h2_protocol_errors(void **state)
{
	struct {
		uint8_t type, flags;
		uint32_t sid;
		const char *pl;
		size_t len;
	} bad[] = {
		{0, 1, 0, "x", 1},		/* DATA on stream 0 */
		{0, 1, 7, "x", 1},		/* DATA on an idle stream */
		{1, 5, 0, "\x82", 1},		/* HEADERS on stream 0 */
		{1, 5, 2, "\x82", 1},		/* even stream from a client */
		{5, 4, 1, "\0\0\0\x02\x82", 5}, /* PUSH_PROMISE */
		{4, 0, 1, "", 0},		/* SETTINGS on a stream */
		{4, 0, 0, "\0\0\0", 3},		/* SETTINGS not a multiple of 6 */
		{4, 1, 0, "\0\x01\0\0\0\0", 6}, /* SETTINGS ACK with a payload */
		{6, 0, 0, "1234567", 7},	/* PING of 7 */
		{7, 0, 0, "1234", 4},		/* GOAWAY too short */
		{8, 0, 0, "12345", 5},		/* WINDOW_UPDATE of 5 */
		{3, 0, 0, "\0\0\0\0", 4},	/* RST_STREAM on 0 */
		{3, 0, 99, "\0\0\0\0", 4},	/* RST_STREAM on an idle stream */
		{2, 0, 0, "\0\0\0\0\0", 5},	/* PRIORITY on 0 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct h2w w;
		struct trun r;

		h2w_init(&w);
		h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
		h2_data(&w, 1, false, "seen", 4, -1);
		frame(&w.b, bad[i].type, bad[i].flags, bad[i].sid, bad[i].pl, bad[i].len);
		h2_data(&w, 1, true, "never", 5, -1);
		run2(&w, NULL, true, &r);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.st.parse_errors, 1);
		assert_int_equal(r.cap.n, 1);
		body_is(&r.cap.r[0], "seen");
		assert_true(r.cap.r[0].trunc);
		cap_free(&r.cap);
		h2w_free(&w);
	}
}

static void test_h2_ignored_frames_and_closed_streams(void **state)
{
	struct h2w w;
	struct trun r;

	h2w_init(&w);
	frame(&w.b, 6, 0, 0, "pingpong", 8);
	frame(&w.b, 0xee, 0xff, 77, "unknown frame", 13);
	frame(&w.b, 8, 0, 1, "\0\0\x10\0", 4);
	frame(&w.b, 2, 0, 1, "\0\0\0\0", 4); /* PRIORITY of 4: ignored */
	frame(&w.b, 4, 1, 0, "", 0);
	h2_headers(&w, 1, true, post_nv, 7, -1, false, 1);
	h2_data(&w, 1, true, "late", 4, -1);		   /* closed: skipped */
	h2_headers(&w, 1, true, post_nv, 7, -1, false, 1); /* closed: counted */
	h2_headers(&w, 3, true, post_nv, 7, -1, false, 1);
	frame(&w.b, 7, 0, 0, "\0\0\0\x03\0\0\0\0", 8); /* GOAWAY */
	run2(&w, NULL, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 2);
	assert_int_equal(r.cap.r[0].sid, 1);
	assert_int_equal(r.cap.r[1].sid, 3);
	assert_false(r.cap.r[1].trunc);
	assert_int_equal(r.st.parse_errors, 1);
	assert_int_equal(r.st.bytes_skipped, 4);
	cap_free(&r.cap);
	h2w_free(&w);
}

static void test_h2_bad_preface_and_truncation(void **state)
{
	struct trun r;
	struct h2w w;
	const char *h1 = "POST / HTTP/1.1\r\n\r\n";

	run_all(2, NULL, h1, strlen(h1), true, &r);
	assert_int_equal(r.rc, -1);
	assert_int_equal(r.st.parse_errors, 1);
	cap_free(&r.cap);
	run(2, NULL, h1, strlen(h1), WHOLE, 0, true, &r);
	assert_int_equal(r.st.bytes_skipped, strlen(h1));
	cap_free(&r.cap);
	/* cut inside a frame header, inside DATA, inside padding */
	h2w_init(&w);
	h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
	h2_data(&w, 1, true, "0123456789", 10, 20);
	for (size_t cut = 1; cut <= 9 + 31; cut++) {
		run(2, NULL, w.b.p, w.b.len - cut, BYTES, 0, true, &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.cap.n, 1);
		assert_true(r.cap.r[0].trunc);
		assert_int_equal(r.cap.r[0].body_len, cut <= 20 ? 10 : cut < 30 ? 30 - cut : 0);
		cap_free(&r.cap);
	}
	h2w_free(&w);
	/* only the preface: nothing, no error */
	run(2, NULL, LW_HTTP2_PREFACE, 24, WHOLE, 0, true, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cap.n, 0);
	assert_int_equal(r.st.parse_errors, 0);
	cap_free(&r.cap);
}

static void test_h2_random_garbage_after_preface(void **state)
{
	/* random frames never crash, never exceed limits (on_req checks) */
	struct lw_http_limits l;
	uint8_t buf[4096];

	lw_http_limits_default(&l);
	l.max_body = 100;
	l.max_streams = 3;
	l.max_header_bytes = 512;
	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct h2w w;
		struct trun r;

		h2w_init(&w);
		h2_headers(&w, 1, false, post_nv, 7, -1, false, 1);
		fill(buf, sizeof(buf), seed);
		/* plausible frame headers: small lengths, known types */
		for (size_t off = 0; off + 9 < sizeof(buf); off += 9 + buf[off + 2]) {
			buf[off] = 0;
			buf[off + 1] = 0;
			buf[off + 3] %= 11;
			buf[off + 5] &= 0;
			buf[off + 8] &= 7;
		}
		lw_buf_put(&w.b, buf, sizeof(buf));
		run(2, &l, w.b.p, w.b.len, SMALL, seed, true, &r);
		{
			uint64_t trunc = 0;

			for (size_t i = 0; i < r.cap.n; i++)
				trunc += r.cap.r[i].trunc;
			assert_int_equal(r.cap.n, r.st.requests);
			assert_int_equal(trunc, r.st.bodies_truncated);
			/* stream 1 is open from the start: it always comes out */
			assert_true(r.cap.n >= 1);
		}
		cap_free(&r.cap);
		h2w_free(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_limits_and_lookup),
		cmocka_unit_test(test_msg_builder),
		cmocka_unit_test(test_h1_post_content_length),
		cmocka_unit_test(test_h1_big_bodies_keepalive),
		cmocka_unit_test(test_h1_pipelining_keepalive),
		cmocka_unit_test(test_h1_bodiless_delivered_at_once),
		cmocka_unit_test(test_h1_chunked_extensions_trailers),
		cmocka_unit_test(test_h1_te_and_cl),
		cmocka_unit_test(test_h1_te_refused),
		cmocka_unit_test(test_h1_http10),
		cmocka_unit_test(test_h1_expect_continue),
		cmocka_unit_test(test_h1_obs_fold),
		cmocka_unit_test(test_h1_truncated_at_finish),
		cmocka_unit_test(test_h1_max_body_stays_in_sync),
		cmocka_unit_test(test_h1_malformed_head),
		cmocka_unit_test(test_h1_malformed_chunked),
		cmocka_unit_test(test_h1_error_skips_rest),
		cmocka_unit_test(test_h1_upgrade_switch),
		cmocka_unit_test(test_h1_hostile_endless_chunked),
		cmocka_unit_test(test_h1_hostile_headers),
		cmocka_unit_test(test_h1_random_splits_many_requests),
		cmocka_unit_test(test_h2_simple_post),
		cmocka_unit_test(test_h2_get_and_dynamic_table),
		cmocka_unit_test(test_h2_data_many_frames),
		cmocka_unit_test(test_h2_interleaved_streams),
		cmocka_unit_test(test_h2_padding_priority),
		cmocka_unit_test(test_h2_bad_padding),
		cmocka_unit_test(test_h2_continuation),
		cmocka_unit_test(test_h2_trailers),
		cmocka_unit_test(test_h2_rst_stream_and_finish),
		cmocka_unit_test(test_h2_max_streams),
		cmocka_unit_test(test_h2_table_size_update),
		cmocka_unit_test(test_h2_hpack_garbage),
		cmocka_unit_test(test_h2_huge_frame_streamed),
		cmocka_unit_test(test_h2_header_limits),
		cmocka_unit_test(test_h2_protocol_errors),
		cmocka_unit_test(test_h2_ignored_frames_and_closed_streams),
		cmocka_unit_test(test_h2_bad_preface_and_truncation),
		cmocka_unit_test(test_h2_random_garbage_after_preface),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
