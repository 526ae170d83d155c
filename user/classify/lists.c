#include "lists.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool lw_list_normalize(enum lw_norm norm, const char *v, size_t n, struct lw_buf *out)
{
	lw_buf_reset(out);
	lw_buf_reserve(out, n + 1);
	switch (norm) {
	case LW_NORM_EMAIL:
		while (n && (v[0] == ' ' || v[0] == '\t')) {
			v++;
			n--;
		}
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		/* fall through */
	case LW_NORM_LOWER:
		for (size_t i = 0; i < n; i++)
			out->p[out->len++] = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] + 32) : v[i];
		break;
	case LW_NORM_DIGITS:
		for (size_t i = 0; i < n; i++)
			if (is_digit(v[i]))
				out->p[out->len++] = v[i];
		break;
	case LW_NORM_COMPACT:
		for (size_t i = 0; i < n; i++) {
			if (v[i] == ' ' || v[i] == '-')
				continue;
			out->p[out->len++] = v[i] >= 'a' && v[i] <= 'z' ? (char)(v[i] - 32) : v[i];
		}
		break;
	case LW_NORM_NONE:
	case LW_NORM__N:
		memcpy(out->p, v, n);
		out->len = n;
		break;
	}
	out->p[out->len] = 0;
	return out->len > 0;
}

bool lw_list_digest(enum lw_norm norm, const char *v, size_t n, uint8_t out[32])
{
	struct lw_buf b = {0};
	bool ok = lw_list_normalize(norm, v, n, &b);

	if (ok)
		SHA256((const unsigned char *)b.p, b.len, out);
	lw_buf_free(&b);
	return ok;
}

/* ---- tokens ---------------------------------------------------------------- */

static bool email_local(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool email_domain(char c)
{
	return is_alnum(c) || c == '.' || c == '-';
}

static bool word_char(char c)
{
	/* bytes of UTF-8 sequences count as letters: "Müller" is one word */
	return is_alnum(c) || c == '_' || c == '-' || (unsigned char)c >= 0x80;
}

static bool digit_sep(char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')';
}

static bool email_bounds(const char *t, size_t n, size_t at, size_t *s, size_t *e)
{
	size_t a = at, b = at + 1;
	bool dot = false;

	if (at >= n || t[at] != '@')
		return false;
	while (a > 0 && at - a < 64 && email_local(t[a - 1]))
		a--;
	while (b < n && b - at <= 253 && email_domain(t[b]))
		b++;
	while (b > at + 1 && (t[b - 1] == '.' || t[b - 1] == '-'))
		b--;
	for (size_t i = at + 1; i < b; i++)
		dot |= t[i] == '.';
	if (a == at || !dot || (a > 0 && email_local(t[a - 1])))
		return false;
	*s = a;
	*e = b;
	return true;
}

/* A digits token: digits where up to two separators (space - . / ( )) may
 * stand between two digits. */
static bool digits_bounds(const char *t, size_t n, size_t pos, size_t *s, size_t *e)
{
	size_t a = pos, b = pos + 1, nd = 0;

	if (pos >= n || !is_digit(t[pos]))
		return false;
	for (;;) {
		if (pos - a > LW_TOKEN_MAX)
			return false;
		if (a > 0 && is_digit(t[a - 1])) {
			a--;
		} else if (a > 1 && digit_sep(t[a - 1]) && is_digit(t[a - 2])) {
			a -= 2;
		} else if (a > 2 && digit_sep(t[a - 1]) && digit_sep(t[a - 2]) &&
			   is_digit(t[a - 3])) {
			a -= 3;
		} else {
			break;
		}
	}
	for (;;) {
		if (b - pos > LW_TOKEN_MAX)
			return false;
		if (b < n && is_digit(t[b])) {
			b++;
		} else if (b + 1 < n && digit_sep(t[b]) && is_digit(t[b + 1])) {
			b += 2;
		} else if (b + 2 < n && digit_sep(t[b]) && digit_sep(t[b + 1]) &&
			   is_digit(t[b + 2])) {
			b += 3;
		} else {
			break;
		}
	}
	for (size_t i = a; i < b; i++)
		nd += is_digit(t[i]);
	if (nd < LW_TOKEN_DIGITS_MIN || nd > LW_TOKEN_DIGITS_MAX)
		return false;
	*s = a;
	*e = b;
	return true;
}

static bool word_bounds(const char *t, size_t n, size_t pos, size_t *s, size_t *e)
{
	size_t a = pos, b = pos + 1;

	if (pos >= n || !word_char(t[pos]))
		return false;
	while (a > 0 && word_char(t[a - 1]))
		if (pos - --a > LW_TOKEN_MAX)
			return false;
	while (b < n && word_char(t[b]))
		if (++b - pos > LW_TOKEN_MAX)
			return false;
	if (b - a < LW_TOKEN_WORD_MIN)
		return false;
	*s = a;
	*e = b;
	return true;
}

bool lw_token_bounds(enum lw_token_kind k, const char *t, size_t n, size_t pos, size_t *s,
		     size_t *e)
{
	switch (k) {
	case LW_TOKEN_EMAIL:
		return email_bounds(t, n, pos, s, e);
	case LW_TOKEN_DIGITS:
		return digits_bounds(t, n, pos, s, e);
	case LW_TOKEN_WORD:
		return word_bounds(t, n, pos, s, e);
	case LW_TOKEN_NONE:
	case LW_TOKEN__N:
		break;
	}
	return false;
}

const char *lw_token_trigger(enum lw_token_kind k)
{
	/* one report per token where possible: each report costs time */
	switch (k) {
	case LW_TOKEN_EMAIL:
		return "[A-Za-z0-9._%+-]@[A-Za-z0-9]";
	case LW_TOKEN_WORD:
		return "[A-Za-z0-9_\\x80-\\xff-]{3}(?:[^A-Za-z0-9_\\x80-\\xff-]|$)";
	case LW_TOKEN_DIGITS:
	case LW_TOKEN_NONE:
	case LW_TOKEN__N:
		break;
	}
	return NULL;
}

size_t lw_token_pos(enum lw_token_kind k, const char *t, size_t n, size_t end)
{
	if (k == LW_TOKEN_EMAIL)
		return end >= 2 ? end - 2 : 0;
	/* the report ends after the token, or one byte later when the byte
	 * after the token was part of the match */
	if (end >= 1 && end <= n &&
	    (k == LW_TOKEN_DIGITS ? is_digit(t[end - 1]) : word_char(t[end - 1])))
		return end - 1;
	return end >= 2 ? end - 2 : 0;
}

/* ---- digit runs --------------------------------------------------------------- */

void lw_digit_runs_ref(const char *t, size_t n, unsigned min_digits, lw_run_fn fn, void *ud)
{
	size_t i = 0;

	for (;;) {
		size_t s, e;
		unsigned nd = 0;

		while (i < n && !is_digit(t[i]))
			i++;
		if (i >= n)
			return;
		s = i;
		for (;;) {
			size_t j;

			while (i < n && is_digit(t[i])) {
				i++;
				nd++;
			}
			e = i;
			j = i;
			while (j < n && j - i < 2 && digit_sep(t[j]))
				j++;
			if (j == i || j >= n || !is_digit(t[j]))
				break;
			i = j;
		}
		if (nd >= min_digits)
			fn(ud, s, e, nd);
		i = e;
	}
}

#if defined(__SSE2__)
#include <emmintrin.h>

static uint64_t dbits16(const char *p)
{
	__m128i x =
		_mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), _mm_set1_epi8('0'));

	return (uint64_t)(unsigned)_mm_movemask_epi8(
		_mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(9)), x));
}

static uint64_t sbits16(const char *p)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	__m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
				 _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));

	m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('.')));
	m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('/')));
	m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('(')));
	m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(')')));
	return (uint64_t)(unsigned)_mm_movemask_epi8(m);
}
#else
/* Other targets: GCC/clang vector extensions (NEON on arm64), the 0/1 bytes
 * of each half gathered into 8 bits by one multiplication. */
typedef unsigned char lw_v16 __attribute__((vector_size(16)));

static uint64_t gather16(lw_v16 m)
{
	const uint64_t g = 0x0102040810204080ULL;
	uint64_t w[2];

	m &= (unsigned char)1;
	memcpy(w, &m, 16);
	return ((w[0] * g) >> 56) | (((w[1] * g) >> 56) << 8);
}

static uint64_t dbits16(const char *p)
{
	lw_v16 v;

	memcpy(&v, p, 16);
	return gather16((lw_v16)((lw_v16)(v - (unsigned char)'0') < (unsigned char)10));
}

static uint64_t sbits16(const char *p)
{
	lw_v16 v;

	memcpy(&v, p, 16);
	return gather16((lw_v16)((v == (unsigned char)' ') | (v == (unsigned char)'-') |
				 (v == (unsigned char)'.') | (v == (unsigned char)'/') |
				 (v == (unsigned char)'(') | (v == (unsigned char)')')));
}
#endif

/* Digit and separator masks of t[base..base+64); the separators only when
 * there is a digit (most blocks of prose have none). */
static void block_bits(const char *t, size_t n, size_t base, uint64_t *d, uint64_t *s)
{
	*d = *s = 0;
	if (n - base >= 64) {
		const char *p = t + base;

		*d = dbits16(p) | dbits16(p + 16) << 16 | dbits16(p + 32) << 32 |
		     dbits16(p + 48) << 48;
		if (*d)
			*s = sbits16(p) | sbits16(p + 16) << 16 | sbits16(p + 32) << 32 |
			     sbits16(p + 48) << 48;
		return;
	}
	for (size_t k = 0; base + k < n; k++) {
		*d |= (uint64_t)is_digit(t[base + k]) << k;
		*s |= (uint64_t)digit_sep(t[base + k]) << k;
	}
}

static unsigned popcount64(uint64_t x)
{
	/* no popcount instruction in the baseline ISA, and the libgcc call
	 * is slower than this */
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

static uint64_t bits_between(unsigned a, unsigned b)
{
	uint64_t m = b - a >= 64 ? ~0ULL : ((1ULL << (b - a)) - 1);

	return m << a;
}

/* Bit-parallel over 64-byte blocks: digit and separator masks, then the
 * separators that join digits (one or two between digits), computed with the
 * neighbouring blocks' bits so that runs are exact across block edges. A
 * run is a run of set bits; one that reaches the end of a block stays open
 * into the next. Runs shorter than min_digits bytes inside a block are
 * eroded away without being visited. Prose with the odd number costs a few
 * vector operations per 64 bytes. */
void lw_digit_runs(const char *t, size_t n, unsigned min_digits, lw_run_fn fn, void *ud)
{
	const unsigned k = min_digits < 8 ? min_digits : 8;
	uint64_t d0 = 0, s0 = 0, d1, s1, d2 = 0, s2 = 0;
	size_t open_s = 0;
	unsigned open_nd = 0;
	bool open = false;

	if (!n)
		return;
	block_bits(t, n, 0, &d1, &s1);
	for (size_t base = 0; base < n; base += 64, d0 = d1, s0 = s1, d1 = d2, s1 = s2) {
		uint64_t r, e;

		d2 = s2 = 0;
		if (n - base > 64)
			block_bits(t, n, base + 64, &d2, &s2);
		if (!d1 && !open)
			continue;
		r = d1 | (s1 & (d1 << 1 | d0 >> 63) & (d1 >> 1 | d2 << 63)) |
		    (s1 & (d1 << 1 | d0 >> 63) & (s1 >> 1 | s2 << 63) & (d1 >> 2 | d2 << 62)) |
		    (s1 & (s1 << 1 | s0 >> 63) & (d1 << 2 | d0 >> 62) & (d1 >> 1 | d2 << 63));
		if (open && !(r & 1)) {
			/* the open run ended with the previous block */
			open = false;
			if (open_nd >= min_digits)
				fn(ud, open_s, base, open_nd);
		}
		/* e: where k set bits in a row start, and runs at the edges */
		e = r;
		for (unsigned j = 1; j < k; j++)
			e &= r >> j;
		e |= r & (1ULL | 1ULL << 63);
		while (e) {
			unsigned p = (unsigned)__builtin_ctzll(e), a, b, nd;
			uint64_t below = p ? ~r & ((1ULL << p) - 1) : 0, above = ~(r >> p);
			size_t s;

			a = below ? 64 - (unsigned)__builtin_clzll(below) : 0;
			b = above ? p + (unsigned)__builtin_ctzll(above) : 64;
			if (b > 64)
				b = 64;
			e = b >= 64 ? 0 : e & (~0ULL << b);
			if (b - a < min_digits && a > 0 && b < 64)
				continue;
			nd = popcount64(d1 & bits_between(a, b));
			s = base + a;
			if (a == 0 && open) {
				s = open_s;
				nd += open_nd;
				open = false;
			}
			if (b == 64 && n - base > 64) {
				open = true;
				open_s = s;
				open_nd = nd;
				continue;
			}
			if (nd >= min_digits)
				fn(ud, s, base + b, nd);
		}
	}
}

/* ---- digests ------------------------------------------------------------------ */

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

bool lw_list_lookup(const struct lw_list *l, const uint8_t digest[32])
{
	return l->ndigests && bsearch(digest, l->digests, l->ndigests, 32, cmp32) != NULL;
}

void lw_list_sort_digests(struct lw_list *l)
{
	size_t k = 0;

	if (!l->ndigests)
		return;
	qsort(l->digests, l->ndigests, 32, cmp32);
	for (size_t i = 0; i < l->ndigests; i++)
		if (!k || memcmp(l->digests[k - 1], l->digests[i], 32) != 0)
			memmove(l->digests[k++], l->digests[i], 32);
	l->ndigests = k;
}

bool lw_hex32(const char *s, uint8_t out[32])
{
	if (strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 32; i++) {
		int hi = lw_hexval(s[2 * i]), lo = lw_hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

void lw_list_free(struct lw_list *l)
{
	free(l->id);
	free(l->type);
	free(l->description);
	for (size_t i = 0; i < l->nvalues; i++)
		free(l->values[i]);
	free(l->values);
	free(l->digests);
	free(l->file);
	memset(l, 0, sizeof(*l));
}
