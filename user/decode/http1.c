/*
 * HTTP/1.x requests (RFC 9112) from a client stream split anywhere.
 *
 * The head (request line + fields) and the trailer section are collected
 * whole, bounded by max_header_bytes, then parsed; bodies stream through
 * and only their first max_body bytes are kept, so an endless chunked body
 * costs counting, not memory. Lines end in LF with an optional CR before
 * it; a CR anywhere else is refused, as are the framing ambiguities that
 * request smuggling is made of (RFC 9112 6.1-6.3): two Content-Lengths, a
 * Transfer-Encoding not ending in chunked, Transfer-Encoding in HTTP/1.0.
 */
#include "decode/http1.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"

/* A chunk-size line is a hex number plus extensions nobody uses in
 * practice; bounding it keeps a hostile line from growing forever. */
#define CHUNK_LINE_MAX 4096
/* The head buffer is given back after a request when it grew past this. */
#define KEEP_LINE (16u << 10)

enum h1_state {
	H1_HEAD,       /* request line and fields */
	H1_BODY,       /* Content-Length body */
	H1_CHUNK_SIZE, /* chunk-size [ext] line */
	H1_CHUNK_DATA,
	H1_CHUNK_END, /* CRLF after the chunk data */
	H1_TRAILERS,
	H1_DEAD, /* error, protocol switch or finished: ignore the rest */
};

struct lw_http1 {
	struct lw_http_limits lim;
	lw_http_req_cb cb;
	void *ud;
	struct lw_http_stats *st;
	enum h1_state state;
	struct lw_buf line; /* head, chunk-size line or trailers being collected */
	size_t line_start;  /* start of the current line in `line` */
	uint64_t left;	    /* body or chunk bytes still to come */
	bool saw_cr;	    /* H1_CHUNK_END: the CR came */
	bool may_switch;    /* the last request was CONNECT or asked for an Upgrade */
	bool http10;	    /* the request being parsed is HTTP/1.0 */
	struct lw_http_msg msg;
};

struct lw_http1 *lw_http1_new(const struct lw_http_limits *l, lw_http_req_cb cb, void *ud,
			      struct lw_http_stats *st)
{
	struct lw_http1 *h = lw_xcalloc(1, sizeof(*h));

	h->lim = *l;
	h->cb = cb;
	h->ud = ud;
	h->st = st;
	h->state = H1_HEAD;
	lw_http_msg_init(&h->msg);
	return h;
}

void lw_http1_free(struct lw_http1 *h)
{
	if (!h)
		return;
	lw_buf_free(&h->line);
	lw_http_msg_free(&h->msg);
	free(h);
}

static void line_reset(struct lw_http1 *h)
{
	if (h->line.cap > KEEP_LINE)
		lw_buf_free(&h->line);
	else
		lw_buf_reset(&h->line);
	h->line_start = 0;
}

static void deliver(struct lw_http1 *h, bool truncated)
{
	lw_http_msg_deliver(&h->msg, 1, 0, truncated, h->cb, h->ud, h->st);
	lw_http_msg_reset(&h->msg);
	line_reset(h);
	h->state = H1_HEAD;
}

/* Stops for good. A request whose head was accepted is delivered first
 * (truncated): what it already carried may be exactly what matters. */
static int fail(struct lw_http1 *h, bool deliver_partial, size_t unread)
{
	if (deliver_partial)
		deliver(h, true);
	h->st->parse_errors++;
	h->st->bytes_skipped += unread;
	h->state = H1_DEAD;
	lw_buf_free(&h->line);
	lw_http_msg_reset(&h->msg);
	return -1;
}

/* The bytes after a CONNECT or Upgrade request are not a request: the
 * connection now carries another protocol, which is not an error. */
static int switched(struct lw_http1 *h, size_t unread)
{
	h->st->bytes_skipped += h->line.len + unread;
	h->state = H1_DEAD;
	lw_buf_free(&h->line);
	lw_http_msg_reset(&h->msg);
	return -1;
}

/* Next complete line of b[0..len) from *pos: [*ls, *le) without CR LF. */
static bool next_line(const char *b, size_t len, size_t *pos, size_t *ls, size_t *le)
{
	const char *nl = memchr(b + *pos, '\n', len - *pos);

	if (!nl)
		return false;
	*ls = *pos;
	*le = (size_t)(nl - b);
	*pos = *le + 1;
	if (*le > *ls && b[*le - 1] == '\r')
		(*le)--;
	return true;
}

static int request_line(struct lw_http1 *h, const char *s, size_t n)
{
	size_t m = 0, t, v;

	while (m < n && lw_http_tchar((unsigned char)s[m]))
		m++;
	if (m == 0 || m >= n || s[m] != ' ')
		return -1;
	t = m + 1;
	v = t;
	while (v < n && (unsigned char)s[v] > ' ' && s[v] != 0x7f)
		v++;
	if (v == t || v >= n || s[v] != ' ')
		return -1;
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, and only 1.x is ours */
	if (n - v - 1 != 8 || memcmp(s + v + 1, "HTTP/1.", 7) != 0 || s[n - 1] < '0' ||
	    s[n - 1] > '9')
		return -1;
	h->http10 = s[n - 1] == '0';
	lw_http_msg_set(&h->msg, LW_HTTP_METHOD, s, m);
	lw_http_msg_set(&h->msg, LW_HTTP_PATH, s + t, v - t);
	return 0;
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* field-value: NUL and CR are refused (RFC 9110 5.5), other bytes kept. */
static bool value_ok(const char *s, size_t n)
{
	return !memchr(s, 0, n) && !memchr(s, '\r', n);
}

/* One field line of the head (first_nh: headers before this section, so a
 * fold cannot continue a field of another section). */
static int field_line(struct lw_http1 *h, const char *s, size_t n, size_t first_nh)
{
	size_t c = 0, vs, ve;

	if (ows(s[0])) {
		/* obs-fold: RFC 9112 5.2 lets a server replace it with SP */
		if (h->msg.nh <= first_nh)
			return -1;
		vs = 0;
		ve = n;
		while (vs < ve && ows(s[vs]))
			vs++;
		while (ve > vs && ows(s[ve - 1]))
			ve--;
		if (!value_ok(s + vs, ve - vs))
			return -1;
		lw_http_msg_fold(&h->msg, s + vs, ve - vs);
		return 0;
	}
	while (c < n && lw_http_tchar((unsigned char)s[c]))
		c++;
	/* no whitespace between name and colon (RFC 9112 5.1) */
	if (c == 0 || c >= n || s[c] != ':')
		return -1;
	vs = c + 1;
	ve = n;
	while (vs < ve && ows(s[vs]))
		vs++;
	while (ve > vs && ows(s[ve - 1]))
		ve--;
	if (!value_ok(s + vs, ve - vs))
		return -1;
	lw_http_msg_add_header(&h->msg, s, c, s + vs, ve - vs);
	return 0;
}

/* Parses the complete lines of b[0..len): the request line (unless
 * trailers) and fields up to the empty line. */
static int parse_section(struct lw_http1 *h, const char *b, size_t len, bool trailers)
{
	size_t pos = 0, ls, le, first_nh = h->msg.nh;
	bool need_start = !trailers;

	while (next_line(b, len, &pos, &ls, &le)) {
		if (le == ls)
			break;
		if (need_start) {
			if (request_line(h, b + ls, le - ls))
				return -1;
			need_start = false;
		} else if (field_line(h, b + ls, le - ls, first_nh)) {
			return -1;
		}
	}
	return need_start ? -1 : 0;
}

static bool token_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Body framing from the fields (RFC 9112 6.3). Returns -1 when it is
 * ambiguous; else sets *chunked and *len. */
static int framing(struct lw_http1 *h, bool *chunked, uint64_t *len, bool *upgrade)
{
	const struct lw_http_msg *m = &h->msg;
	bool have_cl = false, have_te = false, last_chunked = false;

	*chunked = false;
	*len = 0;
	*upgrade = false;
	for (size_t i = 0; i < m->nh; i++) {
		const char *name = m->arena + m->h[i].name;
		const char *v = m->arena + m->h[i].value;
		size_t nl = m->h[i].name_len, vl = m->h[i].value_len;

		if (token_eq(name, nl, "content-length")) {
			uint64_t x = 0;

			/* a repeated Content-Length, equal or not, is refused:
			 * the two ends of a smuggling attack disagree on it */
			if (have_cl || vl == 0)
				return -1;
			for (size_t k = 0; k < vl; k++) {
				if (v[k] < '0' || v[k] > '9' || x > (UINT64_MAX - 9) / 10)
					return -1;
				x = x * 10 + (uint64_t)(v[k] - '0');
			}
			have_cl = true;
			*len = x;
		} else if (token_eq(name, nl, "transfer-encoding")) {
			size_t k = 0;

			have_te = true;
			while (k < vl) {
				size_t s, e;

				while (k < vl && (ows(v[k]) || v[k] == ','))
					k++;
				if (k == vl)
					break;
				s = k;
				while (k < vl && v[k] != ',')
					k++;
				e = k;
				while (e > s && ows(v[e - 1]))
					e--;
				/* coding parameters do not matter for framing */
				for (size_t q = s; q < e; q++)
					if (v[q] == ';' || ows(v[q])) {
						e = q;
						break;
					}
				/* chunked only once, and last (RFC 9112 6.1) */
				if (last_chunked)
					return -1;
				last_chunked = token_eq(v + s, e - s, "chunked");
			}
		} else if (token_eq(name, nl, "upgrade")) {
			*upgrade = true;
		}
	}
	if (have_te) {
		/* HTTP/1.0 framing with Transfer-Encoding is faulty (RFC 9112 6.1) */
		if (h->http10 || !last_chunked)
			return -1;
		*chunked = true; /* and over any Content-Length */
		*len = 0;
	}
	return 0;
}

/*
 * Moves input into h->line up to the end of the current line (section
 * false) or of the section (section true: up to an empty line). Returns 1
 * when it ended, 0 when more input is needed, -1 past limit.
 */
static int collect(struct lw_http1 *h, const uint8_t **pp, size_t *np, size_t limit, bool section)
{
	while (*np) {
		const uint8_t *nl = memchr(*pp, '\n', *np);
		size_t take = nl ? (size_t)(nl - *pp) + 1 : *np;
		size_t end;

		if (take > limit || h->line.len > limit - take)
			return -1;
		lw_buf_put(&h->line, *pp, take);
		*pp += take;
		*np -= take;
		if (!nl)
			return 0;
		if (!section)
			return 1;
		end = h->line.len - 1;
		if (end > h->line_start && h->line.p[end - 1] == '\r')
			end--;
		if (end == h->line_start)
			return 1;
		h->line_start = h->line.len;
	}
	return 0;
}

/* The head is complete in h->line. */
static int head_done(struct lw_http1 *h)
{
	bool chunked, upgrade;
	uint64_t len;

	if (parse_section(h, h->line.p, h->line.len, false) || framing(h, &chunked, &len, &upgrade))
		return -1;
	h->may_switch = upgrade || strcmp(h->msg.arena + h->msg.method - 1, "CONNECT") == 0;
	line_reset(h);
	if (chunked) {
		h->state = H1_CHUNK_SIZE;
	} else if (len) {
		h->state = H1_BODY;
		h->left = len;
	} else {
		/* no body: GET, HEAD, DELETE..., or Content-Length: 0 */
		deliver(h, false);
	}
	return 0;
}

static int chunk_size(struct lw_http1 *h)
{
	const char *s = h->line.p;
	size_t n = h->line.len - 1, i = 0; /* without the LF */
	uint64_t v = 0;

	if (n && s[n - 1] == '\r')
		n--;
	for (; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			break;
		if (v >> 60)
			return -1; /* would overflow 64 bits */
		v = v << 4 | d;
	}
	if (i == 0)
		return -1;
	while (i < n && ows(s[i]))
		i++;
	/* chunk extensions are skipped, but must be a plain line */
	if (i < n && (s[i] != ';' || !value_ok(s + i, n - i)))
		return -1;
	line_reset(h);
	h->left = v;
	h->state = v ? H1_CHUNK_DATA : H1_TRAILERS;
	return 0;
}

int lw_http1_feed(struct lw_http1 *h, const void *data, size_t n)
{
	const uint8_t *p = data;
	int rc;

	while (n) {
		switch (h->state) {
		case H1_HEAD:
			/* RFC 9112 2.2: empty lines before a request are ignored */
			while (h->line.len == 0 && n && (*p == '\r' || *p == '\n')) {
				p++;
				n--;
			}
			if (!n)
				break;
			rc = collect(h, &p, &n, h->lim.max_header_bytes, true);
			if (rc >= 0 && lw_http_sniff(h->line.p, h->line.len) == LW_HTTP_NONE)
				rc = -1;
			if (rc == 1)
				rc = head_done(h);
			if (rc < 0) {
				if (h->may_switch)
					return switched(h, n);
				return fail(h, false, n);
			}
			break;
		case H1_BODY: {
			size_t take = h->left < n ? (size_t)h->left : n;

			lw_http_msg_body(&h->msg, p, take, h->lim.max_body);
			p += take;
			n -= take;
			h->left -= take;
			if (!h->left)
				deliver(h, false);
			break;
		}
		case H1_CHUNK_SIZE:
			rc = collect(h, &p, &n, CHUNK_LINE_MAX, false);
			if (rc == 1)
				rc = chunk_size(h);
			if (rc < 0)
				return fail(h, true, n);
			break;
		case H1_CHUNK_DATA: {
			size_t take = h->left < n ? (size_t)h->left : n;

			lw_http_msg_body(&h->msg, p, take, h->lim.max_body);
			p += take;
			n -= take;
			h->left -= take;
			if (!h->left) {
				h->state = H1_CHUNK_END;
				h->saw_cr = false;
			}
			break;
		}
		case H1_CHUNK_END:
			if (*p == '\r' && !h->saw_cr) {
				h->saw_cr = true;
			} else if (*p == '\n') {
				h->state = H1_CHUNK_SIZE;
			} else {
				return fail(h, true, n);
			}
			p++;
			n--;
			break;
		case H1_TRAILERS:
			/* trailer fields join the headers (RFC 9110 6.5 lets a
			 * recipient keep them separately or merge them) */
			rc = collect(h, &p, &n, h->lim.max_header_bytes, true);
			if (rc == 1 && parse_section(h, h->line.p, h->line.len, true))
				rc = -1;
			if (rc < 0)
				return fail(h, true, n);
			if (rc == 1)
				deliver(h, false);
			break;
		case H1_DEAD:
			h->st->bytes_skipped += n;
			return -1;
		}
	}
	return h->state == H1_DEAD ? -1 : 0;
}

void lw_http1_finish(struct lw_http1 *h)
{
	switch (h->state) {
	case H1_HEAD: {
		/* the complete lines of an unfinished head still say what the
		 * request was */
		size_t whole = h->line_start;

		if (!h->line.len)
			break;
		if (whole && parse_section(h, h->line.p, whole, false) == 0) {
			h->st->bytes_skipped += h->line.len - whole;
			deliver(h, true);
		} else if (h->may_switch) {
			h->st->bytes_skipped += h->line.len;
		} else {
			h->st->parse_errors++;
			h->st->bytes_skipped += h->line.len;
		}
		break;
	}
	case H1_BODY:
	case H1_CHUNK_SIZE:
	case H1_CHUNK_DATA:
	case H1_CHUNK_END:
	case H1_TRAILERS:
		deliver(h, true);
		break;
	case H1_DEAD:
		break;
	}
	h->state = H1_DEAD;
	lw_buf_free(&h->line);
	lw_http_msg_reset(&h->msg);
}
