/*
 * The parts both HTTP parsers share: limits, sniffing, and the request
 * being assembled (struct lw_http_msg) with its delivery.
 */
#include "decode/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"

/* Buffers bigger than this are given back after each request: a connection
 * that once carried a large body should not keep it allocated while idle. */
#define KEEP_CAP (16u << 10)

void lw_http_limits_default(struct lw_http_limits *l)
{
	l->max_header_bytes = 64u << 10;
	l->max_body = 1u << 20;
	l->max_streams = 128;
	l->max_hpack_table = 65536;
}

const struct lw_http_header *lw_http_req_header(const struct lw_http_req *r, const char *lname)
{
	size_t n = strlen(lname);

	for (size_t i = 0; i < r->nheaders; i++) {
		const struct lw_http_header *h = &r->headers[i];

		if (h->name_len == n && strncasecmp(h->name, lname, n) == 0)
			return h;
	}
	return NULL;
}

bool lw_http_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

enum lw_http_kind lw_http_sniff(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	if (n == 0)
		return LW_HTTP_MORE;
	/* "PRI" is a valid method token: the preface must be ruled out first */
	i = n < LW_HTTP2_PREFACE_LEN ? n : LW_HTTP2_PREFACE_LEN;
	if (memcmp(s, LW_HTTP2_PREFACE, i) == 0)
		return i == LW_HTTP2_PREFACE_LEN ? LW_HTTP_2 : LW_HTTP_MORE;
	for (i = 0; i < n && i <= LW_HTTP_METHOD_MAX; i++) {
		if (s[i] == ' ')
			return i > 0 ? LW_HTTP_1 : LW_HTTP_NONE;
		if (!lw_http_tchar(s[i]))
			return LW_HTTP_NONE;
	}
	return i > LW_HTTP_METHOD_MAX ? LW_HTTP_NONE : LW_HTTP_MORE;
}

void lw_http_msg_init(struct lw_http_msg *m)
{
	memset(m, 0, sizeof(*m));
}

void lw_http_msg_reset(struct lw_http_msg *m)
{
	if (m->arena_cap > KEEP_CAP) {
		free(m->arena);
		m->arena = NULL;
		m->arena_cap = 0;
	}
	if (m->hcap * sizeof(*m->h) > KEEP_CAP) {
		free(m->h);
		free(m->out);
		m->h = NULL;
		m->out = NULL;
		m->hcap = m->outcap = 0;
	}
	if (m->body_cap > KEEP_CAP) {
		free(m->body);
		m->body = NULL;
		m->body_cap = 0;
	}
	m->arena_len = 0;
	m->nh = 0;
	m->method = m->path = m->authority = 0;
	m->body_len = 0;
	m->body_total = 0;
	m->truncated = false;
}

void lw_http_msg_free(struct lw_http_msg *m)
{
	free(m->arena);
	free(m->h);
	free(m->out);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static void arena_reserve(struct lw_http_msg *m, size_t extra)
{
	size_t need = m->arena_len + extra;

	if (need <= m->arena_cap)
		return;
	if (need < m->arena_cap * 2)
		need = m->arena_cap * 2;
	if (need < 256)
		need = 256;
	m->arena = lw_xrealloc(m->arena, need);
	m->arena_cap = need;
}

/* Copies s with a terminating NUL; returns its offset. */
static size_t arena_put(struct lw_http_msg *m, const char *s, size_t n)
{
	size_t off = m->arena_len;

	arena_reserve(m, n + 1);
	if (n)
		memcpy(m->arena + off, s, n);
	m->arena[off + n] = 0;
	m->arena_len += n + 1;
	return off;
}

void lw_http_msg_add_header(struct lw_http_msg *m, const char *name, size_t nlen, const char *value,
			    size_t vlen)
{
	struct lw_http_hoff *h;

	if (m->nh == m->hcap) {
		m->hcap = m->hcap ? m->hcap * 2 : 16;
		m->h = lw_xrealloc(m->h, m->hcap * sizeof(*m->h));
	}
	h = &m->h[m->nh++];
	h->name = arena_put(m, name, nlen);
	h->name_len = nlen;
	for (size_t i = 0; i < nlen; i++) {
		char c = m->arena[h->name + i];

		if (c >= 'A' && c <= 'Z')
			m->arena[h->name + i] = (char)(c + 32);
	}
	h->value = arena_put(m, value, vlen);
	h->value_len = vlen;
}

void lw_http_msg_fold(struct lw_http_msg *m, const char *s, size_t n)
{
	struct lw_http_hoff *h;

	if (!m->nh)
		return;
	h = &m->h[m->nh - 1];
	/* the last value is the last string in the arena unless a field was
	 * set after it: copy it to the end then */
	if (h->value + h->value_len + 1 != m->arena_len) {
		size_t len = h->value_len;

		arena_reserve(m, len + 1);
		memcpy(m->arena + m->arena_len, m->arena + h->value, len + 1);
		h->value = m->arena_len;
		m->arena_len += len + 1;
	}
	arena_reserve(m, n + 1);
	m->arena[m->arena_len - 1] = ' ';
	memcpy(m->arena + m->arena_len, s, n);
	m->arena_len += n;
	m->arena[m->arena_len++] = 0;
	h->value_len += n + 1;
}

void lw_http_msg_set(struct lw_http_msg *m, enum lw_http_field f, const char *s, size_t n)
{
	size_t off = arena_put(m, s, n) + 1;

	switch (f) {
	case LW_HTTP_METHOD:
		m->method = off;
		break;
	case LW_HTTP_PATH:
		m->path = off;
		break;
	case LW_HTTP_AUTHORITY:
		m->authority = off;
		break;
	}
}

void lw_http_msg_body(struct lw_http_msg *m, const void *p, size_t n, size_t max_body)
{
	size_t keep = 0;

	m->body_total += n;
	if (m->body_len < max_body)
		keep = max_body - m->body_len < n ? max_body - m->body_len : n;
	if (keep < n)
		m->truncated = true;
	if (!keep)
		return;
	if (m->body_len + keep > m->body_cap) {
		/* grow geometrically, but never past max_body */
		size_t cap = m->body_cap ? m->body_cap * 2 : 4096;

		if (cap < m->body_len + keep)
			cap = m->body_len + keep;
		if (cap > max_body)
			cap = max_body;
		m->body = lw_xrealloc(m->body, cap);
		m->body_cap = cap;
	}
	memcpy(m->body + m->body_len, p, keep);
	m->body_len += keep;
}

static const struct lw_http_hoff *find(const struct lw_http_msg *m, const char *lname)
{
	size_t n = strlen(lname);

	for (size_t i = 0; i < m->nh; i++)
		if (m->h[i].name_len == n && memcmp(m->arena + m->h[i].name, lname, n) == 0)
			return &m->h[i];
	return NULL;
}

static const char *field(const struct lw_http_msg *m, size_t off)
{
	return off ? m->arena + off - 1 : "";
}

static const char *value_of(const struct lw_http_msg *m, const char *lname)
{
	const struct lw_http_hoff *h = find(m, lname);

	return h ? m->arena + h->value : "";
}

void lw_http_msg_deliver(struct lw_http_msg *m, int version, uint32_t stream_id, bool truncated,
			 lw_http_req_cb cb, void *ud, struct lw_http_stats *st)
{
	struct lw_http_req r;

	if (m->nh > m->outcap) {
		m->outcap = m->hcap;
		m->out = lw_xrealloc(m->out, m->outcap * sizeof(*m->out));
	}
	for (size_t i = 0; i < m->nh; i++) {
		m->out[i].name = m->arena + m->h[i].name;
		m->out[i].name_len = m->h[i].name_len;
		m->out[i].value = m->arena + m->h[i].value;
		m->out[i].value_len = m->h[i].value_len;
	}
	memset(&r, 0, sizeof(r));
	r.version = version;
	r.stream_id = stream_id;
	r.method = field(m, m->method);
	r.path = field(m, m->path);
	r.authority = m->authority ? field(m, m->authority) : value_of(m, "host");
	r.headers = m->out;
	r.nheaders = m->nh;
	r.content_type = value_of(m, "content-type");
	r.content_encoding = value_of(m, "content-encoding");
	r.body = m->body ? m->body : (const uint8_t *)"";
	r.body_len = m->body_len;
	r.body_truncated = m->truncated || truncated;
	r.body_total = m->body_total;
	st->requests++;
	if (r.body_truncated)
		st->bodies_truncated++;
	cb(&r, ud);
}
