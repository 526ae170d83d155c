#include "mask.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Only printable ASCII is ever copied: a kept byte of a multi-byte UTF-8
 * sequence would be both a leak of part of a character and invalid JSON. */
static char safe(char c)
{
	return c >= 0x20 && c < 0x7f ? c : '*';
}

struct out {
	char *p;
	size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && o->len + 1 < LW_MASK_MAX; i++)
		o->p[o->len++] = safe(s[i]);
	o->p[o->len] = 0;
}

static void puts_(struct out *o, const char *s)
{
	/* literal mask text: copied as is (it is ASCII) */
	for (; *s && o->len + 1 < LW_MASK_MAX; s++)
		o->p[o->len++] = *s;
	o->p[o->len] = 0;
}

/* Keeps room for the tail: the tail is what tells two findings apart. */
static void put_tail(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > LW_MASK_MAX)
		o->len = LW_MASK_MAX - 1 - n;
	put(o, s, n);
}

size_t lw_mask_tail_len(size_t random_len)
{
	size_t k = random_len / 4;

	return k > 4 ? 4 : k;
}

static size_t prefix_len(const char *v, size_t n, const struct lw_strv *prefixes)
{
	size_t best = 0;

	for (size_t i = 0; prefixes && i < prefixes->n; i++) {
		size_t m = strlen(prefixes->v[i]);

		if (m > best && m < n && !memcmp(v, prefixes->v[i], m))
			best = m;
	}
	/* a prefix is public, but a long one still should not fill the sample */
	return best > 24 ? 24 : best;
}

static void mask_secret(struct out *o, const char *v, size_t n, const struct lw_strv *prefixes)
{
	size_t p = prefix_len(v, n, prefixes), tail = lw_mask_tail_len(n - p);

	put(o, v, p);
	puts_(o, "****");
	put_tail(o, v + n - tail, tail);
}

static void mask_digits_tail(struct out *o, const char *v, size_t n, size_t keep, bool plus)
{
	char d[64];
	size_t k = 0, show;

	for (size_t i = 0; i < n && k < sizeof(d); i++)
		if (v[i] >= '0' && v[i] <= '9')
			d[k++] = v[i];
	/* never more than a third of the digits */
	show = keep < k / 3 ? keep : k / 3;
	if (plus)
		puts_(o, "+");
	for (size_t i = 0; i + show < k && o->len + show + 2 < LW_MASK_MAX; i++)
		puts_(o, "*");
	put(o, d + k - show, show);
}

static void mask_card(struct out *o, const char *v, size_t n)
{
	char d[32];
	size_t k = 0;

	for (size_t i = 0; i < n && k < sizeof(d); i++)
		if (v[i] >= '0' && v[i] <= '9')
			d[k++] = v[i];
	puts_(o, "****");
	/* the last four of a 12-19 digit number, as on every receipt */
	if (k >= 12)
		put(o, d + k - 4, 4);
}

static void mask_email(struct out *o, const char *v, size_t n)
{
	const char *at = memchr(v, '@', n);
	const char *dot;
	size_t dl;

	if (!at || at == v || at + 1 == v + n) {
		puts_(o, "***@***");
		return;
	}
	put(o, v, 1);
	puts_(o, "***@");
	dl = n - (size_t)(at + 1 - v);
	put(o, at + 1, 1);
	puts_(o, "***");
	dot = NULL;
	for (size_t i = dl; i-- > 1;)
		if (at[1 + i] == '.') {
			dot = at + 1 + i;
			break;
		}
	if (dot && (size_t)(v + n - dot) <= 25)
		put(o, dot, (size_t)(v + n - dot));
}

static void mask_iban(struct out *o, const char *v, size_t n)
{
	char c[48];
	size_t k = 0;

	for (size_t i = 0; i < n && k < sizeof(c); i++)
		if (v[i] != ' ')
			c[k++] = v[i];
	if (k < 12) {
		puts_(o, "****");
		return;
	}
	put(o, c, 2);
	puts_(o, "****");
	put(o, c + k - 4, 4);
}

static void mask_pem(struct out *o, const char *v, size_t n)
{
	size_t m = 0;

	/* the BEGIN line names the key type and is the same in every key */
	while (m < n && v[m] != '\n' && v[m] != '\r' && v[m] != '\\')
		m++;
	if (m > 5) {
		while (m > 0 && v[m - 1] != '-')
			m--;
	}
	if (m + 4 > LW_MASK_MAX - 1)
		m = LW_MASK_MAX - 5;
	put(o, v, m);
	puts_(o, "****");
}

static void mask_uri(struct out *o, const char *v, size_t n)
{
	size_t m = 0;

	while (m + 3 <= n && memcmp(v + m, "://", 3) != 0)
		m++;
	if (m + 3 > n || m > 24) {
		puts_(o, "****");
		return;
	}
	put(o, v, m + 3);
	puts_(o, "***:***@***");
}

void lw_mask(enum lw_mask_kind k, const char *v, size_t n, const struct lw_strv *prefixes,
	     char out[LW_MASK_MAX])
{
	struct out o = {.p = out, .len = 0};

	out[0] = 0;
	if (!n) {
		puts_(&o, "****");
		return;
	}
	switch (k) {
	case LW_MASK_SECRET:
		mask_secret(&o, v, n, prefixes);
		break;
	case LW_MASK_CARD:
		mask_card(&o, v, n);
		break;
	case LW_MASK_EMAIL:
		mask_email(&o, v, n);
		break;
	case LW_MASK_PHONE:
		mask_digits_tail(&o, v, n, 2, v[0] == '+');
		break;
	case LW_MASK_IBAN:
		mask_iban(&o, v, n);
		break;
	case LW_MASK_SSN:
		puts_(&o, "***-**-**");
		{
			char d[16];
			size_t m = 0;

			for (size_t i = 0; i < n && m < sizeof(d); i++)
				if (v[i] >= '0' && v[i] <= '9')
					d[m++] = v[i];
			if (m >= 2)
				put(&o, d + m - 2, 2);
		}
		break;
	case LW_MASK_PEM:
		mask_pem(&o, v, n);
		break;
	case LW_MASK_URI:
		mask_uri(&o, v, n);
		break;
	case LW_MASK_WORD:
		put(&o, v, 1);
		puts_(&o, "***");
		break;
	case LW_MASK_FULL:
	case LW_MASK__N: {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "[%zu chars]", n);
		puts_(&o, tmp);
		break;
	}
	}
}
