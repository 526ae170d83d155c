/*
 * HTTP/2 requests (RFC 9113) from a client stream split anywhere.
 *
 * A frame is read as it arrives: its 9-byte header, then its payload piece
 * by piece, so a 16 MiB frame costs no more memory than a small one. Header
 * block fragments go to one HPACK inflater per connection (nghttp2), which
 * accepts input in pieces; the fields of a block that belongs to no tracked
 * stream (refused, closed) are still decoded, because HPACK state is shared
 * by the whole connection.
 */
#include "decode/http2.h"

#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"

enum {
	T_DATA = 0,
	T_HEADERS = 1,
	T_PRIORITY = 2,
	T_RST_STREAM = 3,
	T_SETTINGS = 4,
	T_PUSH_PROMISE = 5,
	T_PING = 6,
	T_GOAWAY = 7,
	T_WINDOW_UPDATE = 8,
	T_CONTINUATION = 9,
};

#define F_END_STREAM 0x01
#define F_ACK 0x01
#define F_END_HEADERS 0x04
#define F_PADDED 0x08
#define F_PRIORITY 0x20

#define FRAME_HEADER 9
#define PRIORITY_FIELDS 5
#define HPACK_INITIAL 4096 /* RFC 7541 4.2: usable before any SETTINGS */
#define FIELD_OVERHEAD 32  /* RFC 9113 6.5.2: a field counts name + value + 32 */

enum h2_state {
	S_PREFACE,
	S_HEAD,	  /* frame header */
	S_PADLEN, /* Pad Length of a PADDED DATA/HEADERS */
	S_PRIO,	  /* priority fields of a HEADERS */
	S_BODY,	  /* frame content (data, header block fragment, or ignored) */
	S_PAD,	  /* padding */
	S_DEAD,
};

struct h2_stream {
	uint32_t id;
	unsigned blocks; /* header blocks completed: the headers, then trailers */
	bool regular;	 /* the current block had a regular field already */
	struct lw_http_msg msg;
};

struct lw_http2 {
	struct lw_http_limits lim;
	lw_http_req_cb cb;
	void *ud;
	struct lw_http_stats *st;
	nghttp2_hd_inflater *inf;
	enum h2_state state;
	size_t got; /* bytes of the preface, frame header or priority fields */
	uint8_t fh[FRAME_HEADER];
	/* the frame being read */
	uint32_t len, sid;
	uint8_t type, flags;
	uint32_t body_left; /* content left, padding excluded */
	uint32_t pad_left;
	struct h2_stream *ds; /* DATA goes here; NULL: skipped */
	/* the header block being read (HEADERS + CONTINUATION) */
	bool in_block; /* only its CONTINUATION may come next */
	uint32_t block_sid;
	struct h2_stream *bs; /* NULL: fields decoded and dropped */
	bool block_end_stream;
	size_t block_raw, block_list;
	uint32_t last_sid;	    /* highest stream id the client opened */
	struct h2_stream **streams; /* open streams in opening order */
	uint32_t nstreams, scap;
};

struct lw_http2 *lw_http2_new(const struct lw_http_limits *l, lw_http_req_cb cb, void *ud,
			      struct lw_http_stats *st)
{
	struct lw_http2 *h = lw_xcalloc(1, sizeof(*h));
	size_t table = l->max_hpack_table > HPACK_INITIAL ? l->max_hpack_table : HPACK_INITIAL;

	h->lim = *l;
	h->cb = cb;
	h->ud = ud;
	h->st = st;
	h->state = S_PREFACE;
	/* both only fail for want of memory, which aborts everywhere else too */
	if (nghttp2_hd_inflate_new(&h->inf) != 0 ||
	    nghttp2_hd_inflate_change_table_size(h->inf, table) != 0) {
		lw_err("http2: cannot create an HPACK inflater: out of memory");
		abort();
	}
	return h;
}

static void stream_free(struct h2_stream *s)
{
	lw_http_msg_free(&s->msg);
	free(s);
}

static void drop_all(struct lw_http2 *h)
{
	for (uint32_t i = 0; i < h->nstreams; i++)
		stream_free(h->streams[i]);
	h->nstreams = 0;
	h->ds = h->bs = NULL;
}

void lw_http2_free(struct lw_http2 *h)
{
	if (!h)
		return;
	drop_all(h);
	free(h->streams);
	nghttp2_hd_inflate_del(h->inf);
	free(h);
}

static struct h2_stream *find(const struct lw_http2 *h, uint32_t id)
{
	/* newest first: interleaved uploads are usually the recent streams */
	for (uint32_t i = h->nstreams; i-- > 0;)
		if (h->streams[i]->id == id)
			return h->streams[i];
	return NULL;
}

static struct h2_stream *open_stream(struct lw_http2 *h, uint32_t id)
{
	struct h2_stream *s = lw_xcalloc(1, sizeof(*s));

	s->id = id;
	lw_http_msg_init(&s->msg);
	if (h->nstreams == h->scap) {
		h->scap = h->scap ? h->scap * 2 : 8;
		h->streams = lw_xrealloc(h->streams, h->scap * sizeof(*h->streams));
	}
	h->streams[h->nstreams++] = s;
	return s;
}

/* Delivers s and forgets it. */
static void close_stream(struct lw_http2 *h, struct h2_stream *s, bool truncated)
{
	uint32_t i = 0;

	lw_http_msg_deliver(&s->msg, 2, s->id, truncated, h->cb, h->ud, h->st);
	while (i < h->nstreams && h->streams[i] != s)
		i++;
	memmove(&h->streams[i], &h->streams[i + 1], (h->nstreams - i - 1) * sizeof(*h->streams));
	h->nstreams--;
	if (h->ds == s)
		h->ds = NULL;
	if (h->bs == s)
		h->bs = NULL;
	stream_free(s);
}

/* Connection over: streams whose headers were decoded are delivered as
 * they are; one still inside its first header block never reached the
 * server's application and is dropped. */
static void close_all(struct lw_http2 *h)
{
	while (h->nstreams) {
		struct h2_stream *s = h->streams[0];

		if (s->blocks) {
			close_stream(h, s, true);
		} else {
			h->st->parse_errors++;
			memmove(&h->streams[0], &h->streams[1],
				(h->nstreams - 1) * sizeof(*h->streams));
			h->nstreams--;
			stream_free(s);
		}
	}
	h->ds = h->bs = NULL;
}

/* A connection error, already counted: nothing after it is read. */
static int fail(struct lw_http2 *h, size_t unread)
{
	h->st->bytes_skipped += unread;
	close_all(h);
	h->state = S_DEAD;
	return -1;
}

/* A protocol error a server answers with GOAWAY. */
static int protocol_error(struct lw_http2 *h, size_t unread)
{
	h->st->parse_errors++;
	return fail(h, unread);
}

static bool is_name(const nghttp2_nv *nv, const char *lit)
{
	size_t n = strlen(lit);

	return nv->namelen == n && memcmp(nv->name, lit, n) == 0;
}

static void pseudo(struct lw_http2 *h, struct h2_stream *s, const nghttp2_nv *nv)
{
	size_t *slot = NULL;
	enum lw_http_field f = LW_HTTP_METHOD;

	if (is_name(nv, ":method")) {
		slot = &s->msg.method;
	} else if (is_name(nv, ":path")) {
		slot = &s->msg.path;
		f = LW_HTTP_PATH;
	} else if (is_name(nv, ":authority")) {
		slot = &s->msg.authority;
		f = LW_HTTP_AUTHORITY;
	}
	/* RFC 9113 8.3: pseudo-fields come first, once, and only in the
	 * request headers; a malformed one is ignored, counted */
	if (s->blocks || s->regular || (slot && *slot)) {
		h->st->parse_errors++;
		return;
	}
	if (slot)
		lw_http_msg_set(&s->msg, f, (const char *)nv->value, nv->valuelen);
	/* :scheme and :protocol say nothing the request needs */
}

static int on_field(struct lw_http2 *h, const nghttp2_nv *nv)
{
	struct h2_stream *s = h->bs;

	h->block_list += nv->namelen + nv->valuelen + FIELD_OVERHEAD;
	if (h->block_list > h->lim.max_header_bytes)
		return -1;
	if (!s)
		return 0;
	if (nv->namelen && nv->name[0] == ':') {
		pseudo(h, s, nv);
		return 0;
	}
	s->regular = true;
	lw_http_msg_add_header(&s->msg, (const char *)nv->name, nv->namelen,
			       (const char *)nv->value, nv->valuelen);
	return 0;
}

/* Feeds a header block fragment (final: the block ends here). Returns -1
 * with the reason counted. */
static int inflate(struct lw_http2 *h, const uint8_t *p, size_t n, bool final)
{
	static const uint8_t none[1];

	if (!p)
		p = none;
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(h->inf, &nv, &fl, p, n, final);

		if (rv < 0) {
			h->st->hpack_errors++;
			return -1;
		}
		p += rv;
		n -= (size_t)rv;
		if ((fl & NGHTTP2_HD_INFLATE_EMIT) && on_field(h, &nv) < 0) {
			h->st->parse_errors++;
			return -1;
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(h->inf);
			return 0;
		}
		if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && n == 0)
			return 0;
	}
}

/* HEADERS starts a block: which stream do its fields belong to? */
static void block_begin(struct lw_http2 *h)
{
	struct h2_stream *s = find(h, h->sid);

	h->in_block = true;
	h->block_sid = h->sid;
	h->block_raw = h->block_list = 0;
	h->block_end_stream = h->flags & F_END_STREAM;
	h->bs = NULL;
	if (s) {
		h->bs = s; /* trailers */
	} else if (h->sid > h->last_sid) {
		h->last_sid = h->sid;
		if (h->nstreams >= h->lim.max_streams)
			h->st->streams_refused++;
		else
			h->bs = open_stream(h, h->sid);
	} else {
		/* a closed stream: a server answers STREAM_CLOSED */
		h->st->parse_errors++;
	}
	if (h->bs)
		h->bs->regular = false;
}

static void block_done(struct lw_http2 *h)
{
	struct h2_stream *s = h->bs;

	h->in_block = false;
	h->bs = NULL;
	if (!s)
		return;
	s->blocks++;
	if (h->block_end_stream) {
		close_stream(h, s, false);
	} else if (s->blocks > 1) {
		/* trailers must end the stream (RFC 9113 8.1): it is malformed
		 * and the server resets it */
		h->st->parse_errors++;
		close_stream(h, s, true);
	}
}

/* A frame header is complete. Returns -1 on a connection error (counted
 * by the caller). */
static int frame_begin(struct lw_http2 *h)
{
	const uint8_t *f = h->fh;
	bool padded = false, prio = false;

	h->len = (uint32_t)f[0] << 16 | (uint32_t)f[1] << 8 | f[2];
	h->type = f[3];
	h->flags = f[4];
	h->sid = ((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) &
		 0x7fffffffu;
	h->ds = NULL;
	/* RFC 9113 6.10: a header block is contiguous */
	if (h->in_block && (h->type != T_CONTINUATION || h->sid != h->block_sid))
		return -1;
	switch (h->type) {
	case T_DATA:
		if (!h->sid)
			return -1;
		h->ds = find(h, h->sid);
		if (!h->ds && h->sid > h->last_sid)
			return -1; /* DATA on an idle stream */
		padded = h->flags & F_PADDED;
		break;
	case T_HEADERS:
		if (!h->sid || !(h->sid & 1))
			return -1; /* clients open odd streams only */
		padded = h->flags & F_PADDED;
		prio = h->flags & F_PRIORITY;
		if (h->len < (padded ? 1u : 0u) + (prio ? PRIORITY_FIELDS : 0u))
			return -1;
		block_begin(h);
		break;
	case T_CONTINUATION:
		if (!h->in_block)
			return -1;
		break;
	case T_PRIORITY:
		if (!h->sid)
			return -1;
		break;
	case T_RST_STREAM:
		if (!h->sid || h->len != 4 || h->sid > h->last_sid)
			return -1;
		break;
	case T_SETTINGS:
		if (h->sid || h->len % 6 || ((h->flags & F_ACK) && h->len))
			return -1;
		break;
	case T_PUSH_PROMISE:
		return -1; /* only servers push */
	case T_PING:
		if (h->sid || h->len != 8)
			return -1;
		break;
	case T_GOAWAY:
		if (h->sid || h->len < 8)
			return -1;
		break;
	case T_WINDOW_UPDATE:
		if (h->len != 4)
			return -1;
		break;
	default:
		break; /* unknown types are ignored (RFC 9113 5.5) */
	}
	if (padded && h->len < 1)
		return -1;
	h->body_left = h->len;
	h->pad_left = 0;
	h->got = 0;
	h->state = padded ? S_PADLEN : prio ? S_PRIO : S_BODY;
	return 0;
}

/* The payload of the current frame has been read. */
static int frame_end(struct lw_http2 *h)
{
	struct h2_stream *s;

	switch (h->type) {
	case T_DATA:
		if (h->ds && (h->flags & F_END_STREAM))
			close_stream(h, h->ds, false);
		break;
	case T_HEADERS:
	case T_CONTINUATION:
		if (h->flags & F_END_HEADERS) {
			if (inflate(h, NULL, 0, true) < 0)
				return -1;
			block_done(h);
		}
		break;
	case T_RST_STREAM:
		s = find(h, h->sid);
		if (s)
			close_stream(h, s, true);
		break;
	default:
		break;
	}
	h->ds = NULL;
	return 0;
}

/* Moves past the parts of the frame that are empty; at its end, finishes
 * it. Returns -1 on a connection error (counted). */
static int settle(struct lw_http2 *h)
{
	if (h->state == S_BODY && !h->body_left)
		h->state = S_PAD;
	if (h->state != S_PAD || h->pad_left)
		return 0;
	h->state = S_HEAD;
	h->got = 0;
	return frame_end(h);
}

/* Frame content: DATA to its stream, header fragments to HPACK. */
static int content(struct lw_http2 *h, const uint8_t *p, size_t n)
{
	switch (h->type) {
	case T_DATA:
		if (h->ds)
			lw_http_msg_body(&h->ds->msg, p, n, h->lim.max_body);
		else
			h->st->bytes_skipped += n;
		return 0;
	case T_HEADERS:
	case T_CONTINUATION:
		h->block_raw += n;
		if (h->block_raw > h->lim.max_header_bytes) {
			h->st->parse_errors++;
			return -1;
		}
		return inflate(h, p, n, false);
	default:
		return 0;
	}
}

/* Every error below is counted where it is found (parse or HPACK). */
int lw_http2_feed(struct lw_http2 *h, const void *data, size_t n)
{
	const uint8_t *p = data;

	while (n) {
		size_t k;

		switch (h->state) {
		case S_PREFACE:
			k = LW_HTTP2_PREFACE_LEN - h->got;
			k = k < n ? k : n;
			if (memcmp(p, &LW_HTTP2_PREFACE[h->got], k) != 0)
				return protocol_error(h, n);
			h->got += k;
			p += k;
			n -= k;
			if (h->got == LW_HTTP2_PREFACE_LEN) {
				h->state = S_HEAD;
				h->got = 0;
			}
			break;
		case S_HEAD:
			k = FRAME_HEADER - h->got;
			k = k < n ? k : n;
			memcpy(h->fh + h->got, p, k);
			h->got += k;
			p += k;
			n -= k;
			if (h->got < FRAME_HEADER)
				break;
			if (frame_begin(h) < 0)
				return protocol_error(h, n);
			if (settle(h) < 0)
				return fail(h, n);
			break;
		case S_PADLEN: {
			uint32_t need = (h->type == T_HEADERS && (h->flags & F_PRIORITY))
						? PRIORITY_FIELDS
						: 0;

			h->pad_left = *p;
			p++;
			n--;
			h->body_left--;
			/* RFC 9113 6.1: padding as long as the payload is an error */
			if (h->pad_left > h->body_left - need)
				return protocol_error(h, n);
			h->body_left -= h->pad_left;
			h->state = need ? S_PRIO : S_BODY;
			if (settle(h) < 0)
				return fail(h, n);
			break;
		}
		case S_PRIO:
			k = PRIORITY_FIELDS - h->got;
			k = k < n ? k : n;
			h->got += k;
			h->body_left -= (uint32_t)k;
			p += k;
			n -= k;
			if (h->got == PRIORITY_FIELDS) {
				h->got = 0;
				h->state = S_BODY;
				if (settle(h) < 0)
					return fail(h, n);
			}
			break;
		case S_BODY:
			k = h->body_left < n ? h->body_left : n;
			if (content(h, p, k) < 0)
				return fail(h, n - k);
			h->body_left -= (uint32_t)k;
			p += k;
			n -= k;
			if (settle(h) < 0)
				return fail(h, n);
			break;
		case S_PAD:
			k = h->pad_left < n ? h->pad_left : n;
			h->pad_left -= (uint32_t)k;
			p += k;
			n -= k;
			if (settle(h) < 0)
				return fail(h, n);
			break;
		case S_DEAD:
			h->st->bytes_skipped += n;
			return -1;
		}
	}
	return h->state == S_DEAD ? -1 : 0;
}

void lw_http2_finish(struct lw_http2 *h)
{
	if (h->state != S_DEAD)
		close_all(h);
	h->state = S_DEAD;
}
