#include "validate.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static inline bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static inline bool is_alpha(char c)
{
	return is_upper(c) || is_lower(c);
}

static inline bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

static inline char lower(char c)
{
	return is_upper(c) ? (char)(c + 32) : c;
}

/* Case-insensitive search of an ASCII needle. */
static bool ci_contains(const char *h, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; i + m <= n; i++) {
		size_t j = 0;

		while (j < m && lower(h[i + j]) == needle[j])
			j++;
		if (j == m)
			return true;
	}
	return false;
}

static bool ci_equal(const char *a, size_t n, const char *b)
{
	return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Digits of v into out (at most max); returns the count, or max + 1 when
 * there are more. */
static size_t digits_of(const char *v, size_t n, char *out, size_t max)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			continue;
		if (k == max)
			return max + 1;
		out[k++] = v[i];
	}
	return k;
}

static bool all_same(const char *d, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (d[i] != d[0])
			return false;
	return true;
}

/* ---- Luhn and payment cards ---------------------------------------------- */

bool lw_val_luhn(const char *v, size_t n)
{
	unsigned sum = 0, k = 0;

	for (size_t i = n; i-- > 0;) {
		unsigned d;

		if (!is_digit(v[i]))
			continue;
		d = (unsigned)(v[i] - '0');
		if (k++ & 1) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return k > 1 && sum % 10 == 0;
}

struct issuer {
	const char *brand;
	unsigned lo, hi; /* prefix range, inclusive, as numbers of `digits` digits */
	unsigned digits;
	unsigned minlen, maxlen;
};

/* Issuer identification numbers and PAN lengths of the major schemes (ISO/IEC
 * 7812 registrations as published by the networks). Checked in order: the
 * more specific ranges come first where ranges overlap. */
static const struct issuer issuers[] = {
	{"amex", 34, 34, 2, 15, 15},	     {"amex", 37, 37, 2, 15, 15},
	{"diners", 300, 305, 3, 14, 19},     {"diners", 3095, 3095, 4, 14, 19},
	{"diners", 36, 36, 2, 14, 19},	     {"diners", 38, 39, 2, 14, 19},
	{"jcb", 3528, 3589, 4, 16, 19},	     {"visa", 4, 4, 1, 13, 19},
	{"mir", 2200, 2204, 4, 16, 19},	     {"mastercard", 2221, 2720, 4, 16, 16},
	{"mastercard", 51, 55, 2, 16, 16},   {"maestro", 5018, 5018, 4, 12, 19},
	{"maestro", 5020, 5020, 4, 12, 19},  {"maestro", 5038, 5038, 4, 12, 19},
	{"maestro", 5893, 5893, 4, 12, 19},  {"maestro", 6304, 6304, 4, 12, 19},
	{"maestro", 6759, 6759, 4, 12, 19},  {"maestro", 6761, 6763, 4, 12, 19},
	{"discover", 6011, 6011, 4, 16, 19}, {"discover", 622126, 622925, 6, 16, 19},
	{"discover", 644, 649, 3, 16, 19},   {"discover", 65, 65, 2, 16, 19},
	{"unionpay", 62, 62, 2, 16, 19},     {"rupay", 60, 60, 2, 16, 16},
};

static const struct issuer *card_issuer(const char *d, size_t n)
{
	for (size_t i = 0; i < sizeof(issuers) / sizeof(issuers[0]); i++) {
		const struct issuer *is = &issuers[i];
		unsigned p = 0;

		if (n < is->minlen || n > is->maxlen || n < is->digits)
			continue;
		for (unsigned k = 0; k < is->digits; k++)
			p = p * 10 + (unsigned)(d[k] - '0');
		if (p >= is->lo && p <= is->hi)
			return is;
	}
	return NULL;
}

/* Printed card numbers are grouped 4-4-4-4(-3), 4-6-5 or 4-6-4 with one kind
 * of separator; anything else ("4111 11-11 1111") is some other number. */
static bool card_grouping_ok(const char *v, size_t n)
{
	size_t groups[8], ng = 0, cur = 0;
	char sep = 0;

	for (size_t i = 0; i < n; i++) {
		if (is_digit(v[i])) {
			cur++;
			continue;
		}
		if (v[i] != ' ' && v[i] != '-')
			return false;
		if (sep && v[i] != sep)
			return false;
		sep = v[i];
		if (!cur || ng == 7)
			return false;
		groups[ng++] = cur;
		cur = 0;
	}
	if (!cur)
		return false;
	groups[ng++] = cur;
	if (ng == 1)
		return true;
	if (ng == 3 && groups[0] == 4 && groups[1] == 6 && (groups[2] == 5 || groups[2] == 4))
		return true;
	for (size_t i = 0; i + 1 < ng; i++)
		if (groups[i] != 4)
			return false;
	return groups[ng - 1] >= 1 && groups[ng - 1] <= 4;
}

const char *lw_val_card_brand(const char *v, size_t n)
{
	char d[20];
	size_t k = digits_of(v, n, d, 19);
	const struct issuer *is;

	if (k < 12 || k > 19)
		return NULL;
	is = card_issuer(d, k);
	return is ? is->brand : NULL;
}

bool lw_val_credit_card(const char *v, size_t n)
{
	char d[20];
	size_t k = digits_of(v, n, d, 19);

	if (k < 12 || k > 19 || all_same(d, k))
		return false;
	if (!card_grouping_ok(v, n))
		return false;
	return card_issuer(d, k) && lw_val_luhn(d, k);
}

/* ---- IBAN ------------------------------------------------------------------ */

/* Lengths from the SWIFT IBAN registry. */
static const struct {
	char cc[3];
	unsigned char len;
} iban_lengths[] = {
	{"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
	{"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
	{"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
	{"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
	{"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HN", 28}, {"HR", 21},
	{"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30},
	{"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
	{"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
	{"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23},
	{"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22},
	{"RU", 33}, {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24},
	{"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26},
	{"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

bool lw_val_iban(const char *v, size_t n)
{
	char c[40];
	size_t k = 0, want = 0;
	unsigned rem = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == ' ')
			continue;
		if (!is_alnum(v[i]) || k == sizeof(c))
			return false;
		c[k++] = is_lower(v[i]) ? (char)(v[i] - 32) : v[i];
	}
	if (k < 15 || !is_upper(c[0]) || !is_upper(c[1]) || !is_digit(c[2]) || !is_digit(c[3]))
		return false;
	for (size_t i = 0; i < sizeof(iban_lengths) / sizeof(iban_lengths[0]); i++)
		if (c[0] == iban_lengths[i].cc[0] && c[1] == iban_lengths[i].cc[1])
			want = iban_lengths[i].len;
	if (want != k)
		return false;
	/* ISO 13616: move the first four characters to the end, letters become
	 * 10..35, the number mod 97 must be 1. */
	for (size_t j = 0; j < k; j++) {
		char ch = c[(j + 4) % k];

		if (is_digit(ch))
			rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
		else
			rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
	}
	return rem == 1;
}

/* ---- US SSN ------------------------------------------------------------------ */

bool lw_val_us_ssn(const char *v, size_t n)
{
	/* Numbers the SSA never issued but that circulate: the Woolworth wallet
	 * card, the 1940s advertisement, a Social Security Board pamphlet, and
	 * the sequence everyone types as an example. */
	static const char *const fakes[] = {"078051120", "219099999", "457555462", "123456789"};
	char d[10];
	unsigned area, group, serial;
	size_t k = 0;

	if (n == 11) {
		if (v[3] != v[6] || (v[3] != '-' && v[3] != ' '))
			return false;
		for (size_t i = 0; i < n; i++)
			if (i != 3 && i != 6)
				d[k++] = v[i];
	} else if (n == 9) {
		memcpy(d, v, 9);
		k = 9;
	} else {
		return false;
	}
	for (size_t i = 0; i < 9; i++)
		if (!is_digit(d[i]))
			return false;
	d[9] = 0;
	area = (unsigned)((d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0'));
	group = (unsigned)((d[3] - '0') * 10 + (d[4] - '0'));
	serial = (unsigned)((d[5] - '0') * 1000 + (d[6] - '0') * 100 + (d[7] - '0') * 10 +
			    (d[8] - '0'));
	if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
		return false;
	if (all_same(d, 9))
		return false;
	for (size_t i = 0; i < sizeof(fakes) / sizeof(fakes[0]); i++)
		if (!memcmp(d, fakes[i], 9))
			return false;
	return true;
}

/* ---- JWT ------------------------------------------------------------------------ */

static int b64url_val(char c)
{
	if (is_upper(c))
		return c - 'A';
	if (is_lower(c))
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

/* Decodes base64url (padding optional) into out; returns the length or -1. */
static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t k = 0;

	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int x = b64url_val(s[i]);

		if (x < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)x;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k == cap)
				return -1;
			out[k++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)k;
}

bool lw_val_jwt(const char *v, size_t n)
{
	const char *d1 = memchr(v, '.', n), *d2;
	unsigned char hdr[1024];
	json_t *j;
	json_error_t err;
	long hl;
	bool ok;

	if (!d1)
		return false;
	d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - v));
	if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - v)))
		return false;
	if (d1 == v || d2 == d1 + 1)
		return false;
	for (const char *p = d1 + 1; p < d2; p++)
		if (b64url_val(*p) < 0)
			return false;
	for (const char *p = d2 + 1; p < v + n; p++)
		if (b64url_val(*p) < 0 && *p != '=')
			return false;
	hl = b64url_decode(v, (size_t)(d1 - v), hdr, sizeof(hdr));
	if (hl <= 0)
		return false;
	j = json_loadb((const char *)hdr, (size_t)hl, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		return false;
	ok = json_is_object(j) && json_is_string(json_object_get(j, "alg"));
	json_decref(j);
	return ok;
}

/* ---- phone numbers ------------------------------------------------------------ */

struct groups {
	unsigned len[24];
	char sep[24];	/* separator before group i (0 for the first) */
	size_t end[24]; /* offset after group i */
	size_t n;
	unsigned digits;
	bool plus, paren_ok;
	char seps_seen[8];
	size_t nseps;
};

static void note_sep(struct groups *g, char c)
{
	for (size_t k = 0; k < g->nseps; k++)
		if (g->seps_seen[k] == c)
			return;
	if (g->nseps < sizeof(g->seps_seen))
		g->seps_seen[g->nseps++] = c;
}

static bool split_groups(const char *v, size_t n, struct groups *g)
{
	size_t i = 0;
	int paren = 0;

	memset(g, 0, sizeof(*g));
	g->paren_ok = true;
	if (i < n && v[i] == '+') {
		g->plus = true;
		i++;
	}
	while (i < n) {
		char sep = 0;
		unsigned len = 0;

		while (i < n && !is_digit(v[i])) {
			char c = v[i];

			if (c == '(') {
				if (paren)
					g->paren_ok = false;
				paren = 1;
			} else if (c == ')') {
				if (paren != 1)
					g->paren_ok = false;
				paren = 2;
			} else if (c == ' ' || c == '-' || c == '.' || c == '/') {
				if (sep && sep != ' ' && c != ' ')
					return false; /* "1--2", "1.-2" */
				if (!sep || sep == ' ')
					sep = c;
				note_sep(g, c);
			} else {
				return false;
			}
			i++;
		}
		while (i < n && is_digit(v[i])) {
			len++;
			i++;
		}
		if (!len)
			break;
		if (g->n == sizeof(g->len) / sizeof(g->len[0]))
			return false;
		g->sep[g->n] = sep ? sep : (paren == 2 ? ')' : 0);
		if (paren == 2)
			paren = 3; /* a closed group: later parentheses are wrong */
		g->len[g->n] = len;
		g->end[g->n] = i;
		g->digits += len;
		g->n++;
	}
	if (paren == 1)
		g->paren_ok = false;
	return g->n > 0;
}

static bool looks_like_date(const struct groups *g, const char *v)
{
	/* yyyy-mm-dd, dd.mm.yyyy, mm/dd/yyyy (with or without time digits after) */
	if (g->n >= 3 && g->sep[1] == g->sep[2] && g->sep[1] && g->sep[1] != ' ') {
		if (g->len[0] == 4 && g->len[1] <= 2 && g->len[2] <= 2)
			return true;
		if (g->len[0] <= 2 && g->len[1] <= 2 && (g->len[2] == 4 || g->len[2] == 2))
			return true;
	}
	(void)v;
	return false;
}

static bool looks_like_ip_or_version(const struct groups *g)
{
	bool dots = g->n >= 3;

	for (size_t i = 1; i < g->n; i++)
		if (g->sep[i] != '.')
			dots = false;
	if (!dots)
		return false;
	for (size_t i = 0; i < g->n; i++)
		if (g->len[i] <= 2)
			return true; /* 1.2.3, 10.0.0.12, 2.5.40 */
	return g->n == 4;	     /* 192.168.100.200 */
}

static bool sequential(const char *d, size_t n)
{
	size_t up = 0, down = 0;

	for (size_t i = 1; i < n; i++) {
		int diff = d[i] - d[i - 1];

		up += diff == 1 || diff == -9;
		down += diff == -1 || diff == 9;
	}
	return n > 3 && (up >= n - 2 || down >= n - 2);
}

static bool phone_digits_ok(const struct groups *g, const char *d, size_t k)
{
	unsigned minlen = g->plus ? 8 : 7, maxlen = 15;

	if (k < minlen || k > maxlen)
		return false;
	if (all_same(d, k) || sequential(d, k))
		return false;
	if (g->plus && d[0] == '0')
		return false;
	/* North American numbering plan: area code and exchange start 2-9 */
	if ((g->plus && d[0] == '1' && k == 11) || (!g->plus && k == 11 && d[0] == '1'))
		return d[1] >= '2' && d[4] >= '2';
	if (!g->plus && k == 10 && d[0] != '0')
		return d[0] >= '2' && d[3] >= '2';
	return true;
}

bool lw_val_phone(const char *v, size_t *np)
{
	struct groups g;
	size_t n = *np;

	if (!split_groups(v, n, &g) || !g.paren_ok || g.nseps > 2)
		return false;
	if ((!g.plus && looks_like_date(&g, v)) || looks_like_ip_or_version(&g))
		return false;
	/* too many digits: a phone number followed by another number ("call
	 * +1 415 555 2671 2024"): drop space-separated trailing groups */
	for (size_t ng = g.n;; ng--) {
		char d[400];
		size_t k = 0, cut = g.end[ng - 1];

		for (size_t i = 0; i < cut; i++)
			if (is_digit(v[i]) && k < sizeof(d))
				d[k++] = v[i];
		/* +1 numbers have exactly 11 digits (North American plan) */
		if (k <= (g.plus && d[0] == '1' ? 11u : 15u)) {
			if (!phone_digits_ok(&g, d, k))
				return false;
			*np = cut;
			return true;
		}
		if (ng == 1 || g.sep[ng - 1] != ' ')
			return false;
	}
}

/* ---- email ------------------------------------------------------------------ */

bool lw_val_doc_domain(const char *d, size_t n)
{
	static const char *const exact[] = {"example.com", "example.net", "example.org",
					    "localhost"};
	static const char *const suffix[] = {".example.com", ".example.net", ".example.org",
					     ".example",     ".test",	     ".invalid",
					     ".localhost"};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (ci_equal(d, n, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		size_t m = strlen(suffix[i]);

		if (n >= m && !strncasecmp(d + n - m, suffix[i], m))
			return true;
	}
	return false;
}

/* Top-level "domains" that are really file extensions: "logo@2x.png",
 * "module@1.2.js" and friends are the usual false emails in code. */
static bool file_extension(const char *t, size_t n)
{
	static const char *const ext[] = {
		"png",	"jpg",	"jpeg",	 "gif",	 "svg",	 "webp",  "bmp", "ico",	 "tif",	 "tiff",
		"js",	"mjs",	"cjs",	 "ts",	 "tsx",	 "jsx",	  "css", "scss", "less", "map",
		"json", "xml",	"html",	 "htm",	 "txt",	 "md",	  "pdf", "zip",	 "gz",	 "tgz",
		"tar",	"exe",	"dll",	 "so",	 "py",	 "rb",	  "go",	 "rs",	 "java", "class",
		"jar",	"vue",	"yaml",	 "yml",	 "toml", "ini",	  "cfg", "conf", "log",	 "lock",
		"sh",	"bat",	"php",	 "aspx", "jsp",	 "swift", "kt",	 "cpp",	 "hpp",	 "csv",
		"wasm", "woff", "woff2", "ttf",	 "otf",	 "mp3",	  "mp4", "mov",	 "avi",	 "webm",
	};

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (ci_equal(t, n, ext[i]))
			return true;
	return false;
}

bool lw_val_email(const char *v, size_t n)
{
	const char *at = memchr(v, '@', n);
	size_t ll, dl, label = 0, tld = 0, labels = 0;
	const char *d;

	if (!at || memchr(at + 1, '@', n - (size_t)(at + 1 - v)))
		return false;
	ll = (size_t)(at - v);
	d = at + 1;
	dl = n - ll - 1;
	if (ll == 0 || ll > 64 || dl < 4 || dl > 253)
		return false;
	if (v[0] == '.' || v[ll - 1] == '.')
		return false;
	for (size_t i = 0; i + 1 < ll; i++)
		if (v[i] == '.' && v[i + 1] == '.')
			return false;
	for (size_t i = 0; i <= dl; i++) {
		if (i == dl || d[i] == '.') {
			if (!label || label > 63 || d[i - 1] == '-' || d[i - label] == '-')
				return false;
			labels++;
			tld = label;
			label = 0;
			continue;
		}
		if (!is_alnum(d[i]) && d[i] != '-')
			return false;
		label++;
	}
	if (labels < 2 || tld < 2 || tld > 24)
		return false;
	for (size_t i = dl - tld; i < dl; i++)
		if (!is_alpha(d[i]))
			return false;
	if (file_extension(d + dl - tld, tld))
		return false;
	return !lw_val_doc_domain(d, dl);
}

/* ---- URLs with credentials ------------------------------------------------------ */

bool lw_val_url_password(const char *v, size_t n)
{
	static const char *const words[] = {"password", "passwd",   "pass",   "pwd",	  "secret",
					    "changeme", "changeit", "user",   "username", "pw",
					    "token",	"redacted", "hidden", "none",	  "null"};
	const char *sch = NULL, *colon, *at, *host;
	size_t ul, pl, hl;

	for (size_t i = 0; i + 3 <= n; i++)
		if (!memcmp(v + i, "://", 3)) {
			sch = v + i + 3;
			break;
		}
	if (!sch)
		return false;
	at = memchr(sch, '@', n - (size_t)(sch - v));
	if (!at)
		return false;
	colon = memchr(sch, ':', (size_t)(at - sch));
	if (!colon)
		return false;
	ul = (size_t)(colon - sch);
	pl = (size_t)(at - colon - 1);
	host = at + 1;
	hl = n - (size_t)(host - v);
	for (size_t i = 0; i < hl; i++)
		if (host[i] == ':' || host[i] == '/') {
			hl = i;
			break;
		}
	if (pl < 3 || !hl)
		return false;
	if (ul == pl && !memcmp(sch, colon + 1, pl))
		return false; /* guest:guest, admin:admin: default credentials in docs */
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (ci_equal(colon + 1, pl, words[i]))
			return false;
	if (colon[1] == '$' || colon[1] == '%' || colon[1] == '<' || colon[1] == '[' ||
	    colon[1] == '{')
		return false; /* $PASSWORD, %PASS%, <password>, [pass], {{pass}} */
	if (lw_val_placeholder(colon + 1, pl))
		return false;
	return !lw_val_doc_domain(host, hl);
}

/* ---- character classes, entropy, placeholders ---------------------------------- */

bool lw_val_mixed_chars(const char *v, size_t n)
{
	bool lo = false, up = false, dg = false;

	for (size_t i = 0; i < n; i++) {
		lo |= is_lower(v[i]);
		up |= is_upper(v[i]);
		dg |= is_digit(v[i]);
	}
	return lo + up + dg >= 2;
}

/* log2 of x >= 1 without libm (the binary does not link it): the binary
 * exponent, then ln of the mantissa m in [1, 2) from the atanh series
 * ln m = 2 (z + z^3/3 + z^5/5 + ...), z = (m - 1) / (m + 1) <= 1/3. */
static double log2_pos(double x)
{
	double z, z2, term, sum = 0;
	int e = 0;

	while (x >= 2) {
		x /= 2;
		e++;
	}
	z = (x - 1) / (x + 1);
	z2 = z * z;
	term = z;
	for (int k = 1; k < 40; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return e + 2 * sum / 0.69314718055994530942;
}

double lw_val_entropy(const char *v, size_t n)
{
	unsigned cnt[256] = {0};
	double h = 0;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		cnt[(unsigned char)v[i]]++;
	/* H = log2 n - (1/n) sum c log2 c */
	for (size_t i = 0; i < 256; i++)
		if (cnt[i] > 1)
			h += cnt[i] * log2_pos((double)cnt[i]);
	return log2_pos((double)n) - h / (double)n;
}

bool lw_val_placeholder(const char *v, size_t n)
{
	static const char *const markers[] = {
		"example", "sample",   "placeholder", "redacted", "dummy", "your",
		"xxxx",	   "****",     "...",	      "<",	  ">",	   "{{",
		"${",	   "changeme", "replace",     "insert",	  "fake",
	};
	unsigned cnt[256] = {0}, distinct = 0, top = 0;
	size_t steps = 0;

	if (!n)
		return true;
	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
		if (ci_contains(v, n, markers[i]))
			return true;
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)v[i];

		distinct += cnt[c]++ == 0;
		if (cnt[c] > top)
			top = cnt[c];
		if (i) {
			int d = lower(v[i]) - lower(v[i - 1]);

			steps += d == 1 || d == -1 || (v[i] == '0' && v[i - 1] == '9');
		}
	}
	if (n >= 6 && distinct < 3)
		return true;
	if (n >= 8 && top * 2 > n)
		return true; /* "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAb3" */
	/* 1234567890abcdef, abcdefghijk...: most neighbours one apart */
	return n >= 8 && steps * 10 >= (n - 1) * 6;
}

/* ---- private keys ------------------------------------------------------------------ */

bool lw_val_private_key(const char *text, size_t n, size_t s, size_t *e)
{
	static const char end_marker[] = "-----END";
	size_t i = *e, lim = n - *e > 512 ? *e + 512 : n, b64 = 0;

	(void)s;
	/* the body: base64 lines, possibly after RFC 1421 / OpenPGP header
	 * lines ("Proc-Type: 4,ENCRYPTED", "Version: ..."), with real or
	 * escaped ("\n" in JSON-ish text) line breaks */
	while (i < lim && b64 < 40) {
		size_t ls = i, le;
		bool header = false, bad = false;
		size_t k = 0;

		/* one line */
		while (i < lim && text[i] != '\n' && text[i] != '\r' &&
		       !(text[i] == '\\' && i + 1 < lim &&
			 (text[i + 1] == 'n' || text[i + 1] == 'r')))
			i++;
		le = i;
		if (i < lim)
			i += text[i] == '\\' ? 2 : 1;
		if (le > ls && text[ls] == '-')
			break; /* "-----END" before enough body */
		for (size_t j = ls; j < le; j++) {
			char c = text[j];

			if (c == ':')
				header = true;
			else if (is_alnum(c) || c == '+' || c == '/' || c == '=')
				k++;
			else if (c != ' ' && c != '\t')
				bad = true;
		}
		if (header)
			continue;
		if (bad)
			return false; /* "...", "<base64>", "[redacted]" */
		b64 += k;
	}
	if (b64 < 40)
		return false;
	/* extend the value to the END line when it is near, so the fingerprint
	 * covers the key and overlapping rules see the whole block */
	lim = n - *e > 65536 ? *e + 65536 : n;
	for (size_t j = *e; j + sizeof(end_marker) - 1 <= lim; j++) {
		const char *p = memchr(text + j, '-', lim - j);

		if (!p)
			break;
		j = (size_t)(p - text);
		if (j + sizeof(end_marker) - 1 > lim)
			break;
		if (!memcmp(p, end_marker, sizeof(end_marker) - 1)) {
			size_t k = j + sizeof(end_marker) - 1;

			while (k < lim && k - j < 80 && text[k] != '-' && text[k] != '\n')
				k++;
			while (k < lim && text[k] == '-')
				k++;
			*e = k;
			break;
		}
	}
	return true;
}

/* ---- dispatch ------------------------------------------------------------------- */

bool lw_validate(enum lw_validator v, const char *text, size_t n, size_t s, size_t *e)
{
	const char *p = text + s;
	size_t len = *e - s;

	switch (v) {
	case LW_VAL_LUHN:
		return lw_val_luhn(p, len);
	case LW_VAL_CREDIT_CARD:
		return lw_val_credit_card(p, len);
	case LW_VAL_IBAN:
		return lw_val_iban(p, len);
	case LW_VAL_US_SSN:
		return lw_val_us_ssn(p, len);
	case LW_VAL_JWT:
		return lw_val_jwt(p, len);
	case LW_VAL_PHONE:
		if (!lw_val_phone(p, &len))
			return false;
		*e = s + len;
		return true;
	case LW_VAL_EMAIL:
		return lw_val_email(p, len);
	case LW_VAL_PRIVATE_KEY:
		return lw_val_private_key(text, n, s, e);
	case LW_VAL_URL_PASSWORD:
		return lw_val_url_password(p, len);
	case LW_VAL_MIXED_CHARS:
		return lw_val_mixed_chars(p, len);
	case LW_VAL__N:
		break;
	}
	return false;
}
