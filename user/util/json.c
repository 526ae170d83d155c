#include "json.h"

#include <inttypes.h>
#include <string.h>

void lw_json_begin(struct lw_json *j, struct lw_buf *b)
{
	j->b = b;
	j->first = true;
	lw_buf_putc(b, '{');
}

void lw_json_end(struct lw_json *j)
{
	lw_buf_putc(j->b, '}');
}

void lw_json_key(struct lw_json *j, const char *k)
{
	if (!j->first)
		lw_buf_putc(j->b, ',');
	j->first = false;
	lw_json_quote(j->b, k, strlen(k));
	lw_buf_putc(j->b, ':');
}

void lw_json_str(struct lw_json *j, const char *k, const char *val)
{
	lw_json_strn(j, k, val ? val : "", val ? strlen(val) : 0);
}

void lw_json_strn(struct lw_json *j, const char *k, const void *val, size_t n)
{
	lw_json_key(j, k);
	lw_json_quote(j->b, val, n);
}

void lw_json_u64(struct lw_json *j, const char *k, uint64_t val)
{
	lw_json_key(j, k);
	lw_buf_printf(j->b, "%" PRIu64, val);
}

void lw_json_i64(struct lw_json *j, const char *k, int64_t val)
{
	lw_json_key(j, k);
	lw_buf_printf(j->b, "%" PRId64, val);
}

void lw_json_bool(struct lw_json *j, const char *k, bool val)
{
	lw_json_key(j, k);
	lw_buf_puts(j->b, val ? "true" : "false");
}

void lw_json_raw(struct lw_json *j, const char *k, const char *raw)
{
	lw_json_key(j, k);
	lw_buf_puts(j->b, raw);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Rejects
 * overlongs, surrogates and code points above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

bool lw_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < n) {
		size_t k;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		k = utf8_seq(s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

void lw_json_quote(struct lw_buf *b, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t i = 0, run = 0;

	lw_buf_reserve(b, n + 2);
	lw_buf_putc(b, '"');
	while (i < n) {
		unsigned c = s[i];
		size_t k;

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		/* flush the plain run before the character that needs care */
		lw_buf_put(b, s + i - run, run);
		run = 0;
		if (c >= 0x80) {
			k = utf8_seq(s + i, n - i);
			if (k) {
				lw_buf_put(b, s + i, k);
				i += k;
			} else {
				lw_buf_puts(b, "\\ufffd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': lw_buf_puts(b, "\\\""); break;
		case '\\': lw_buf_puts(b, "\\\\"); break;
		case '\n': lw_buf_puts(b, "\\n"); break;
		case '\r': lw_buf_puts(b, "\\r"); break;
		case '\t': lw_buf_puts(b, "\\t"); break;
		default: {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			lw_buf_put(b, e, 6);
		}
		}
		i++;
	}
	lw_buf_put(b, s + i - run, run);
	lw_buf_putc(b, '"');
}

void lw_base64(struct lw_buf *b, const void *p, size_t n)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	size_t i;

	lw_buf_reserve(b, (n + 2) / 3 * 4);
	for (i = 0; i + 2 < n; i += 3) {
		char o[4] = { tbl[s[i] >> 2], tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
			      tbl[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)], tbl[s[i + 2] & 63] };

		lw_buf_put(b, o, 4);
	}
	if (i < n) {
		char o[4] = { tbl[s[i] >> 2], '=', '=', '=' };

		if (i + 1 < n) {
			o[1] = tbl[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			o[2] = tbl[(s[i + 1] & 15) << 2];
		} else {
			o[1] = tbl[(s[i] & 3) << 4];
		}
		lw_buf_put(b, o, 4);
	}
}
