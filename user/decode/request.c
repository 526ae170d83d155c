/*
 * One connection's requests: sniff the HTTP version, run its parser, decode
 * each body (Content-Encoding, then the prompt text). The parsers are
 * streaming and bounded; what this file adds is the handling of a broken
 * stream, because capture can lose bytes (ring full, --capture-max) and a
 * parser fed a stream with a hole would misread everything after it.
 */
#include <stdlib.h>
#include <string.h>

#include "decode/http1.h"
#include "decode/http2.h"
#include "decode/request.h"
#include "util/buf.h"

#define SNIFF_MAX 24 /* the HTTP/2 client preface decides every case */

struct lw_request_decoder {
	const struct lw_decode_limits *lim;
	struct lw_decode_stats *st;
	lw_decoded_cb cb;
	void *ud;
	enum lw_http_kind kind; /* LW_HTTP_MORE until known */
	bool dead;              /* not HTTP, or HTTP/2 after a hole: ignore the rest */
	bool resync;            /* HTTP/1.x after a hole: wait for a request start */
	struct lw_http1 *h1;
	struct lw_http2 *h2;
	struct lw_buf sniff;
	struct lw_buf body; /* decompressed body of the request being delivered */
	struct lw_prompt prompt;
};

void lw_decode_limits_default(struct lw_decode_limits *l)
{
	memset(l, 0, sizeof(*l));
	lw_http_limits_default(&l->http);
	lw_inflate_limits_default(&l->inflate);
	l->max_text = 4u << 20;
}

static void on_http_request(const struct lw_http_req *r, void *ud)
{
	struct lw_request_decoder *d = ud;
	struct lw_decoded_req out = { .http = r };

	lw_buf_reset(&d->body);
	out.inflate = lw_inflate(r->content_encoding, r->body, r->body_len, &d->lim->inflate,
				 &d->body);
	switch (out.inflate) {
	case LW_INFLATE_OK:
		break;
	case LW_INFLATE_LIMIT:
		d->st->inflate_limit++;
		break;
	case LW_INFLATE_CORRUPT:
		d->st->inflate_corrupt++;
		break;
	case LW_INFLATE_UNSUPPORTED:
		d->st->inflate_unsupported++;
		break;
	}
	lw_prompt_extract(&d->prompt, r->path, r->content_type, d->body.p ? d->body.p : "",
			  d->body.len, d->lim->max_text);
	if (d->prompt.json_error)
		d->st->json_errors++;
	if (d->prompt.limited)
		d->st->text_limited++;
	out.prompt = &d->prompt;
	out.incomplete = r->body_truncated || out.inflate != LW_INFLATE_OK;
	d->st->requests++;
	d->cb(&out, d->ud);
}

struct lw_request_decoder *lw_request_decoder_new(const struct lw_decode_limits *l,
						  struct lw_decode_stats *st, lw_decoded_cb cb,
						  void *ud)
{
	struct lw_request_decoder *d = lw_xcalloc(1, sizeof(*d));

	d->lim = l;
	d->st = st;
	d->cb = cb;
	d->ud = ud;
	d->kind = LW_HTTP_MORE;
	lw_prompt_init(&d->prompt);
	return d;
}

static void drop_parsers(struct lw_request_decoder *d)
{
	if (d->h1) {
		lw_http1_finish(d->h1);
		lw_http1_free(d->h1);
		d->h1 = NULL;
	}
	if (d->h2) {
		lw_http2_finish(d->h2);
		lw_http2_free(d->h2);
		d->h2 = NULL;
	}
}

static void start(struct lw_request_decoder *d, enum lw_http_kind kind)
{
	d->kind = kind;
	if (kind == LW_HTTP_1)
		d->h1 = lw_http1_new(&d->lim->http, on_http_request, d, &d->st->http);
	else if (kind == LW_HTTP_2)
		d->h2 = lw_http2_new(&d->lim->http, on_http_request, d, &d->st->http);
}

/* The stream broke (a protocol error, or bytes lost to capture): HTTP/2 is
 * over for good, HTTP/1.x waits for the next write that starts a request. */
static void broken(struct lw_request_decoder *d)
{
	d->st->desynced++;
	drop_parsers(d);
	if (d->kind == LW_HTTP_2)
		d->dead = true;
	else
		d->resync = true;
}

static void feed_parser(struct lw_request_decoder *d, const void *p, size_t n)
{
	int rc = 0;

	if (d->h1)
		rc = lw_http1_feed(d->h1, p, n);
	else if (d->h2)
		rc = lw_http2_feed(d->h2, p, n);
	if (rc < 0)
		broken(d);
}

/* After a hole, a write that starts a request must hold a whole request
 * line: "METHOD SP target SP HTTP/1.x" (a body fragment easily starts with
 * a word and a space). */
static bool starts_request(const char *p, size_t n)
{
	const char *eol;
	size_t len;

	if (lw_http_sniff(p, n) != LW_HTTP_1)
		return false;
	eol = memchr(p, '\n', n < 8192 ? n : 8192);
	if (!eol)
		return false;
	len = (size_t)(eol - p);
	if (len && p[len - 1] == '\r')
		len--;
	return len > 9 && (memcmp(p + len - 9, " HTTP/1.1", 9) == 0 ||
			   memcmp(p + len - 9, " HTTP/1.0", 9) == 0);
}

void lw_request_decoder_feed(struct lw_request_decoder *d, const void *p, size_t n, bool lost)
{
	if (d->dead)
		return;
	if (d->resync) {
		/* a new request starts at a write boundary in every client we
		 * know; anything else is the middle of one we lost */
		if (!starts_request(p, n)) {
			d->st->http.bytes_skipped += n;
			goto out;
		}
		d->resync = false;
		start(d, LW_HTTP_1);
		feed_parser(d, p, n);
		goto out;
	}
	if (d->kind == LW_HTTP_MORE) {
		enum lw_http_kind k;

		lw_buf_put(&d->sniff, p, n < SNIFF_MAX ? n : SNIFF_MAX);
		k = lw_http_sniff(d->sniff.p, d->sniff.len);
		if (k == LW_HTTP_MORE && !lost && d->sniff.len < SNIFF_MAX) {
			/* keep the bytes until the version is known: they are
			 * all in sniff when n was small */
			if (n >= SNIFF_MAX)
				k = LW_HTTP_NONE;
			else
				return;
		}
		if (k != LW_HTTP_1 && k != LW_HTTP_2) {
			d->st->not_http++;
			d->dead = true;
			lw_buf_free(&d->sniff);
			return;
		}
		start(d, k);
		/* the bytes before this call sit at the head of sniff */
		{
			size_t before = d->sniff.len - (n < SNIFF_MAX ? n : SNIFF_MAX);

			if (before)
				feed_parser(d, d->sniff.p, before);
		}
		lw_buf_free(&d->sniff);
	}
	feed_parser(d, p, n);
out:
	if (lost && !d->dead)
		broken(d);
}

void lw_request_decoder_finish(struct lw_request_decoder *d)
{
	drop_parsers(d);
	d->dead = true;
}

void lw_request_decoder_free(struct lw_request_decoder *d)
{
	if (!d)
		return;
	drop_parsers(d);
	lw_buf_free(&d->sniff);
	lw_buf_free(&d->body);
	lw_prompt_free(&d->prompt);
	free(d);
}

int lw_request_decoder_version(const struct lw_request_decoder *d)
{
	return d->kind == LW_HTTP_1 ? 1 : d->kind == LW_HTTP_2 ? 2 : 0;
}
