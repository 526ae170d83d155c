/*
 * The in-kernel matcher's compiler (kmatch.h): block rules -> one DFA table.
 *
 * Per rule: the pattern (Vectorscan syntax) is parsed into a small tree of
 * byte sets, concatenations, alternations and repeats; anything the kernel
 * form cannot express is a reason to stay in user space. The tree is cut to
 * its kernel form (trim, cut_tail, bound), checked (a literal, an entropy
 * window that does not miss real keys) and turned into a position
 * (Glushkov) automaton. The automata of the rules taken so far and of the
 * candidates are then turned into one DFA by subset construction, with one
 * rule that keeps it small: leftmost first (nfa_pending, nfa_depths). A
 * trial that would pass the state budget stops there, so the greedy choice
 * of rules (select_rules) costs about one construction per rule left out.
 *
 * Everything here runs at load and reload, in the agent's main thread; the
 * built-in pack takes about 40 ms (test_kmatch prints the figure).
 */
#include "classify/kmatch.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define LIT_MIN 3	/* literal bytes every alternative needs */
#define ENT_MIN 8	/* bytes an entropy check needs to say anything */
#define ENT_SAMPLES 512 /* random values drawn to test an entropy check */
/* The kernel's entropy check looks at the last ent_len bytes of its match,
 * the classifier at the whole value: a window that lets through more than
 * this share of random values the classifier reports is too short. */
#define ENT_MISS_MAX 0.01
/* ...and one that rejects more than this share of all random values of the
 * pattern is too short for values longer than the pattern's minimum (the
 * classifier measures those, the kernel only the minimum's end). */
#define ENT_REJECT_MAX 0.10
#define LIT_SET_MAX 5	       /* bytes a literal-like position may allow (bs_literal) */
#define BOUND_RANGE 16	       /* X{n,m} inside a pattern: m - n at most this (bound) */
#define REPEAT_MAX 256	       /* largest bound of a repeat the kernel form expands */
#define POS_MAX LWM_MAX_STATES /* NFA positions of one rule */
#define DEPTH_MAX 32	       /* group nesting */

/* ---- byte sets ---------------------------------------------------------------- */

static inline bool bs_has(const uint8_t *s, unsigned c)
{
	return s[c >> 3] >> (c & 7) & 1;
}

static inline void bs_add(uint8_t *s, unsigned c)
{
	s[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static void bs_range(uint8_t *s, unsigned lo, unsigned hi)
{
	for (unsigned c = lo; c <= hi; c++)
		bs_add(s, c);
}

static void bs_not(uint8_t *s)
{
	for (int i = 0; i < 32; i++)
		s[i] = (uint8_t)~s[i];
}

static int bs_count(const uint8_t *s)
{
	int n = 0;

	for (int i = 0; i < 32; i++)
		n += __builtin_popcount(s[i]);
	return n;
}

static int bs_first(const uint8_t *s)
{
	for (int c = 0; c < 256; c++)
		if (bs_has(s, (unsigned)c))
			return c;
	return -1;
}

/* Letters match both cases. */
static void bs_fold(uint8_t *s)
{
	for (unsigned c = 'a'; c <= 'z'; c++)
		if (bs_has(s, c) || bs_has(s, c - 32)) {
			bs_add(s, c);
			bs_add(s, c - 32);
		}
}

/* One letter in both cases (a caseless literal). */
static bool bs_caseless_letter(const uint8_t *s)
{
	int c = bs_first(s);

	return bs_count(s) == 2 && c >= 'A' && c <= 'Z' && bs_has(s, (unsigned)c + 32);
}

/* A literal-like position: at most LIT_SET_MAX bytes once letters are
 * folded: one byte, a letter in either case, or a few alternatives such as
 * gh[pousr]_ or hv[sb]\. (rarer in ordinary text than any 3-byte word). */
static bool bs_literal(const uint8_t *s)
{
	int n = 0;

	for (unsigned c = 0; c < 256; c++)
		if (bs_has(s, c) && !(c >= 'A' && c <= 'Z' && bs_has(s, c + 32)))
			n++;
	return n <= LIT_SET_MAX;
}

/* ---- the pattern tree ------------------------------------------------------------ */

enum nkind { N_SET, N_CAT, N_ALT, N_REP, N_WORDB };

struct node {
	enum nkind k;
	int min, max; /* N_REP; max -1: unbounded */
	int omax;     /* N_REP: max as written, before the edges were cut */
	struct node **kid;
	size_t nkid;
	uint8_t set[32]; /* N_SET */
};

/* Every node of one rule, freed together. */
struct arena {
	struct node **v;
	size_t n;
};

static struct node *nnew(struct arena *a, enum nkind k)
{
	struct node *n = lw_xcalloc(1, sizeof(*n));

	n->k = k;
	a->v = lw_xrealloc(a->v, (a->n + 1) * sizeof(*a->v));
	a->v[a->n++] = n;
	return n;
}

static void nadd(struct node *p, struct node *c)
{
	p->kid = lw_xrealloc(p->kid, (p->nkid + 1) * sizeof(*p->kid));
	p->kid[p->nkid++] = c;
}

static void arena_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i]->kid);
		free(a->v[i]);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* ---- parser (the subset of Vectorscan syntax the kernel form takes) ---------------- */

struct parser {
	const char *s;
	size_t i, n;
	bool icase;
	int depth;
	struct arena *a;
	char what[64]; /* the construct that is not supported, once set */
};

static void *unsupported(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void *unsupported(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->what[0]) {
		va_start(ap, fmt);
		vsnprintf(p->what, sizeof(p->what), fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void set_word(uint8_t *s)
{
	bs_range(s, '0', '9');
	bs_range(s, 'A', 'Z');
	bs_range(s, 'a', 'z');
	bs_add(s, '_');
}

static void set_space(uint8_t *s)
{
	bs_range(s, '\t', '\r'); /* \t \n \v \f \r */
	bs_add(s, ' ');
}

/* The escape after a backslash at p->i: a single byte (*c >= 0), a class
 * such as \d (*c = -1, set filled) or, outside a class, \b (*wordb).
 * Returns false on what the kernel form cannot take. */
static bool parse_escape(struct parser *p, bool in_class, int *c, uint8_t *set, bool *wordb)
{
	char e;
	uint8_t tmp[32] = {0};

	*c = -1;
	*wordb = false;
	if (p->i >= p->n)
		return unsupported(p, "trailing '\\'") != NULL;
	e = p->s[p->i++];
	switch (e) {
	case 'd':
	case 'D':
		bs_range(tmp, '0', '9');
		break;
	case 'w':
	case 'W':
		set_word(tmp);
		break;
	case 's':
	case 'S':
		set_space(tmp);
		break;
	case 'b':
		if (in_class)
			*c = '\b';
		else
			*wordb = true;
		return true;
	case 'n':
		*c = '\n';
		return true;
	case 'r':
		*c = '\r';
		return true;
	case 't':
		*c = '\t';
		return true;
	case 'f':
		*c = '\f';
		return true;
	case 'v':
		*c = '\v';
		return true;
	case 'e':
		*c = 0x1b;
		return true;
	case 'a':
		*c = 0x07;
		return true;
	case 'x': {
		int v = 0, k = 0;

		if (p->i < p->n && p->s[p->i] == '{') {
			size_t j = p->i + 1;

			while (j < p->n && lw_hexval(p->s[j]) >= 0 && v <= 0xff)
				v = v * 16 + lw_hexval(p->s[j++]);
			if (j >= p->n || p->s[j] != '}' || j == p->i + 1 || v > 0xff)
				return unsupported(p, "'\\x{...}' beyond one byte") != NULL;
			p->i = j + 1;
			*c = v;
			return true;
		}
		while (k < 2 && p->i < p->n && lw_hexval(p->s[p->i]) >= 0) {
			v = v * 16 + lw_hexval(p->s[p->i++]);
			k++;
		}
		*c = v;
		return true;
	}
	default:
		if (is_alnum(e))
			return unsupported(p, "'\\%c'", e) != NULL;
		*c = (unsigned char)e;
		return true;
	}
	if (e >= 'A' && e <= 'Z')
		bs_not(tmp);
	memcpy(set, tmp, 32);
	return true;
}

static struct node *set_node(struct parser *p, const uint8_t *set)
{
	struct node *n = nnew(p->a, N_SET);

	memcpy(n->set, set, 32);
	if (p->icase)
		bs_fold(n->set);
	return n;
}

static struct node *byte_node(struct parser *p, int c)
{
	uint8_t s[32] = {0};

	bs_add(s, (unsigned)c);
	return set_node(p, s);
}

static struct node *parse_class(struct parser *p)
{
	uint8_t set[32] = {0}, tmp[32];
	bool neg = false, first = true, wb;
	struct node *n;

	if (p->i < p->n && p->s[p->i] == '^') {
		neg = true;
		p->i++;
	}
	for (;;) {
		int lo, hi;

		if (p->i >= p->n)
			return unsupported(p, "unterminated '['");
		if (p->s[p->i] == ']' && !first) {
			p->i++;
			break;
		}
		first = false;
		if (p->s[p->i] == '[' && p->i + 1 < p->n &&
		    (p->s[p->i + 1] == ':' || p->s[p->i + 1] == '=' || p->s[p->i + 1] == '.'))
			return unsupported(p, "POSIX class '[%c'", p->s[p->i + 1]);
		if (p->s[p->i] == '\\') {
			p->i++;
			memset(tmp, 0, sizeof(tmp));
			if (!parse_escape(p, true, &lo, tmp, &wb))
				return NULL;
			if (lo < 0) {
				for (int k = 0; k < 32; k++)
					set[k] |= tmp[k];
				continue;
			}
		} else {
			lo = (unsigned char)p->s[p->i++];
		}
		if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
			p->i++;
			if (p->s[p->i] == '\\') {
				p->i++;
				memset(tmp, 0, sizeof(tmp));
				if (!parse_escape(p, true, &hi, tmp, &wb))
					return NULL;
				if (hi < 0) {
					/* [a-\d]: the '-' is a literal */
					for (int k = 0; k < 32; k++)
						set[k] |= tmp[k];
					bs_add(set, (unsigned)lo);
					bs_add(set, '-');
					continue;
				}
			} else {
				hi = (unsigned char)p->s[p->i++];
			}
			if (hi < lo)
				return unsupported(p, "reversed range in '[...]'");
			bs_range(set, (unsigned)lo, (unsigned)hi);
		} else {
			bs_add(set, (unsigned)lo);
		}
	}
	/* caseless applies before the negation, as in PCRE */
	if (p->icase)
		bs_fold(set);
	if (neg)
		bs_not(set);
	n = nnew(p->a, N_SET);
	memcpy(n->set, set, 32);
	return n;
}

static struct node *parse_alt(struct parser *p);

static struct node *parse_atom(struct parser *p)
{
	char ch = p->s[p->i];
	uint8_t set[32] = {0};
	struct node *n;
	bool wb;
	int c;

	switch (ch) {
	case '(':
		if (++p->depth > DEPTH_MAX)
			return unsupported(p, "groups nested deeper than %d", DEPTH_MAX);
		p->i++;
		if (p->i < p->n && p->s[p->i] == '?') {
			if (p->i + 1 < p->n && p->s[p->i + 1] == ':')
				p->i += 2;
			else
				return unsupported(p, "'(?%c'",
						   p->i + 1 < p->n ? p->s[p->i + 1] : ' ');
		}
		n = parse_alt(p);
		if (!n)
			return NULL;
		if (p->i >= p->n || p->s[p->i] != ')')
			return unsupported(p, "unbalanced '('");
		p->i++;
		p->depth--;
		return n;
	case '[':
		p->i++;
		return parse_class(p);
	case '.':
		p->i++;
		bs_range(set, 0, 255);
		set[(unsigned)'\n' >> 3] &= (uint8_t) ~(1u << ('\n' & 7));
		n = nnew(p->a, N_SET);
		memcpy(n->set, set, 32);
		return n;
	case '^':
	case '$':
		return unsupported(p, "anchor '%c'", ch);
	case '*':
	case '+':
	case '?':
		return unsupported(p, "'%c' with nothing to repeat", ch);
	case '\\':
		p->i++;
		if (!parse_escape(p, false, &c, set, &wb))
			return NULL;
		if (wb)
			return nnew(p->a, N_WORDB);
		return c >= 0 ? byte_node(p, c) : set_node(p, set);
	default:
		p->i++;
		return byte_node(p, (unsigned char)ch);
	}
}

/* {n}, {n,}, {n,m} at p->i; false (nothing consumed) when it is not one:
 * then the '{' is a literal, as in PCRE. */
static bool parse_bound(struct parser *p, int *min, int *max)
{
	size_t j = p->i + 1;
	long a = 0, b = -1;
	bool da = false, db = false;

	while (j < p->n && p->s[j] >= '0' && p->s[j] <= '9' && a < 100000) {
		a = a * 10 + (p->s[j++] - '0');
		da = true;
	}
	if (!da || j >= p->n)
		return false;
	if (p->s[j] == ',') {
		j++;
		b = 0;
		while (j < p->n && p->s[j] >= '0' && p->s[j] <= '9' && b < 100000) {
			b = b * 10 + (p->s[j++] - '0');
			db = true;
		}
		if (!db)
			b = -1;
	} else {
		b = a;
	}
	if (j >= p->n || p->s[j] != '}')
		return false;
	p->i = j + 1;
	*min = (int)a;
	*max = (int)b;
	return true;
}

static struct node *parse_piece(struct parser *p)
{
	struct node *a = parse_atom(p), *r;

	while (a && p->i < p->n) {
		char ch = p->s[p->i];
		size_t start = p->i;
		int min, max;

		if (ch == '*' || ch == '+' || ch == '?') {
			p->i++;
			min = ch == '+';
			max = ch == '?' ? 1 : -1;
		} else if (ch != '{' || !parse_bound(p, &min, &max)) {
			break;
		}
		if (min > REPEAT_MAX || max > REPEAT_MAX)
			return unsupported(p, "repeat of more than %d ('%.*s')", REPEAT_MAX,
					   (int)(p->i - start), p->s + start);
		if (max >= 0 && max < min)
			return unsupported(p, "repeat {%d,%d}", min, max);
		if (p->i < p->n && p->s[p->i] == '?')
			p->i++; /* lazy: the same set of matches */
		else if (p->i < p->n && p->s[p->i] == '+')
			return unsupported(p, "possessive '%c+'", ch);
		if (a->k == N_WORDB)
			return unsupported(p, "repeated '\\b'");
		r = nnew(p->a, N_REP);
		r->min = min;
		r->max = r->omax = max;
		nadd(r, a);
		a = r;
	}
	return a;
}

static struct node *parse_cat(struct parser *p)
{
	struct node *c = nnew(p->a, N_CAT), *k;

	while (p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
		k = parse_piece(p);
		if (!k)
			return NULL;
		nadd(c, k);
	}
	return c;
}

static struct node *parse_alt(struct parser *p)
{
	struct node *first = parse_cat(p), *alt, *k;

	if (!first || p->i >= p->n || p->s[p->i] != '|')
		return first;
	alt = nnew(p->a, N_ALT);
	nadd(alt, first);
	while (p->i < p->n && p->s[p->i] == '|') {
		p->i++;
		k = parse_cat(p);
		if (!k)
			return NULL;
		nadd(alt, k);
	}
	return alt;
}

static struct node *parse_pattern(struct parser *p, const char *re, bool caseless)
{
	struct node *n;

	p->s = re;
	p->n = strlen(re);
	p->i = 0;
	p->icase = caseless;
	if (!strncmp(re, "(?i)", 4)) {
		p->icase = true;
		p->i = 4;
	}
	n = parse_alt(p);
	if (n && p->i < p->n)
		return unsupported(p, "unbalanced ')'");
	return n;
}

/* ---- tree properties and the "contains" form -------------------------------------- */

static bool nullable(const struct node *n)
{
	switch (n->k) {
	case N_SET:
		return false;
	case N_WORDB:
		return true;
	case N_CAT:
		for (size_t i = 0; i < n->nkid; i++)
			if (!nullable(n->kid[i]))
				return false;
		return true;
	case N_ALT:
		for (size_t i = 0; i < n->nkid; i++)
			if (nullable(n->kid[i]))
				return true;
		return false;
	case N_REP:
		return n->min == 0 || nullable(n->kid[0]);
	}
	return false;
}

/* Longest match, -1 when unbounded. */
static long maxlen(const struct node *n)
{
	long t = 0, k;

	switch (n->k) {
	case N_SET:
		return 1;
	case N_WORDB:
		return 0;
	case N_CAT:
		for (size_t i = 0; i < n->nkid; i++) {
			if ((k = maxlen(n->kid[i])) < 0)
				return -1;
			t += k;
		}
		return t;
	case N_ALT:
		for (size_t i = 0; i < n->nkid; i++) {
			if ((k = maxlen(n->kid[i])) < 0)
				return -1;
			t = k > t ? k : t;
		}
		return t;
	case N_REP:
		if (n->max < 0)
			return -1;
		k = maxlen(n->kid[0]);
		return k < 0 ? -1 : k * n->max;
	}
	return 0;
}

static bool has_wordb(const struct node *n)
{
	if (n->k == N_WORDB)
		return true;
	for (size_t i = 0; i < n->nkid; i++)
		if (has_wordb(n->kid[i]))
			return true;
	return false;
}

/*
 * The "contains" form at the edges of a non-nullable node (lead: nothing of
 * the match comes before it; trail: nothing after it):
 *  - a nullable part at the lead is dropped: every match of N·Y ends where a
 *    match of Y does, and the other way round (this also drops \b, and a
 *    leading X* or optional group);
 *  - a nullable part at the trail is dropped: Y·N and Y have the same first
 *    match end, and the walk stops at the first match;
 *  - a repeat X{n,m} at either edge becomes X{n}, for the same reasons.
 */
static void trim(struct node *n, bool lead, bool trail)
{
	size_t a = 0, b;

	if (!lead && !trail)
		return;
	switch (n->k) {
	case N_CAT:
		b = n->nkid;
		while (lead && a < b && nullable(n->kid[a]))
			a++;
		while (trail && b > a && nullable(n->kid[b - 1]))
			b--;
		memmove(n->kid, n->kid + a, (b - a) * sizeof(*n->kid));
		n->nkid = b - a;
		if (n->nkid == 1) {
			trim(n->kid[0], lead, trail);
		} else if (n->nkid > 1) {
			trim(n->kid[0], lead, false);
			trim(n->kid[n->nkid - 1], false, trail);
		}
		return;
	case N_ALT:
		for (size_t i = 0; i < n->nkid; i++)
			trim(n->kid[i], lead, trail);
		return;
	case N_REP:
		n->max = n->min;
		/* a class run at the start is cut to one byte: counting it
		 * would multiply the DFA by every other rule's partial match
		 * inside it (terraform's [A-Za-z0-9]{14}); what follows it
		 * carries the literal */
		if (lead && n->kid[0]->k == N_SET && !bs_literal(n->kid[0]->set))
			n->min = n->max = 1;
		if (n->min == 1)
			trim(n->kid[0], lead, trail);
		return;
	case N_SET:
	case N_WORDB:
		return;
	}
}

/*
 * min_length: the classifier ignores values shorter than it, so the kernel
 * form should not fire on them either. Where an alternative ends in an open
 * class run after a part of bounded length L, the run needs min_length - L
 * bytes: every value the classifier accepts still has them.
 */
static void lengthen(struct node *root, uint32_t min_length)
{
	struct node *const *alts = root->k == N_ALT ? root->kid : &root;
	size_t nalts = root->k == N_ALT ? root->nkid : 1;

	for (size_t i = 0; i < nalts; i++) {
		struct node *a = alts[i], *last;
		long rest = 0, need, cap;

		if (a->k != N_CAT || a->nkid < 2)
			continue;
		last = a->kid[a->nkid - 1];
		if (last->k != N_REP || last->kid[0]->k != N_SET || last->omax == last->min)
			continue;
		for (size_t k = 0; k + 1 < a->nkid && rest >= 0; k++) {
			long m = maxlen(a->kid[k]);

			rest = m < 0 ? -1 : rest + m;
		}
		if (rest < 0)
			continue;
		need = (long)min_length - rest;
		cap = last->omax < 0 ? REPEAT_MAX : last->omax;
		if (need > cap)
			need = cap;
		if (need > last->min)
			last->min = last->max = (int)need;
	}
}

/* Literal runs, as lower bounds over every match of a node: the run it
 * starts with, ends with, the longest one inside, and whether every match
 * is all literal (then len is the shortest length). */
struct lits {
	long pre, post, best, len;
	bool full;
};

static long lmax(long a, long b)
{
	return a > b ? a : b;
}

static long lmin(long a, long b)
{
	return a < b ? a : b;
}

static struct lits lits_cat(struct lits x, struct lits y)
{
	struct lits r;

	r.best = lmax(lmax(x.best, y.best), x.post + y.pre);
	r.pre = x.full ? x.len + y.pre : x.pre;
	r.post = y.full ? x.post + y.len : y.post;
	r.full = x.full && y.full;
	r.len = x.len + y.len;
	return r;
}

static struct lits lits_of(const struct node *n)
{
	struct lits r = {0, 0, 0, 0, true}, k;

	switch (n->k) {
	case N_SET:
		if (bs_literal(n->set))
			return (struct lits){1, 1, 1, 1, true};
		return (struct lits){0, 0, 0, 1, false};
	case N_WORDB:
		return r;
	case N_CAT:
		for (size_t i = 0; i < n->nkid; i++)
			r = lits_cat(r, lits_of(n->kid[i]));
		return r;
	case N_ALT:
		for (size_t i = 0; i < n->nkid; i++) {
			k = lits_of(n->kid[i]);
			if (!i) {
				r = k;
				continue;
			}
			r.pre = lmin(r.pre, k.pre);
			r.post = lmin(r.post, k.post);
			r.best = lmin(r.best, k.best);
			r.len = lmin(r.len, k.len);
			r.full = r.full && k.full;
		}
		return r;
	case N_REP:
		k = lits_of(n->kid[0]);
		if (n->min == 0)
			return (struct lits){0, 0, 0, 0, k.full};
		for (int i = 0; i < n->min && i < 3; i++)
			r = lits_cat(r, k);
		if (n->min > 3 && k.full) {
			r.pre = r.post = r.best = r.len = k.len * n->min;
		} else if (n->min > 3) {
			r.len = k.len * n->min;
		}
		if (n->max != n->min && !k.full)
			r.full = false;
		return r;
	}
	return r;
}

/* ---- the entropy window ------------------------------------------------------------- */

/* The sets of the last bytes of one way a match can end, last byte first,
 * that make up the value's random part: fixed class runs and the single
 * separators between them (PMAK-hex-hex), back to the first variable part,
 * group or literal run of 2+ bytes (the public prefix). */
#define TAIL_SETS 512 /* sets of a tail kept, last byte first */

struct tail {
	const uint8_t *set[TAIL_SETS];
	int n;	  /* sets stored, at most TAIL_SETS */
	long len; /* bytes in all */
};

struct tails {
	struct tail *v;
	size_t n;
};

/* A fixed run of one byte set: X or X{n}. */
static bool class_piece(const struct node *c, int *cnt, const uint8_t **set)
{
	if (c->k == N_SET) {
		*cnt = 1;
		*set = c->set;
		return true;
	}
	if (c->k == N_REP && c->min == c->max && c->min > 0 && c->kid[0]->k == N_SET) {
		*cnt = c->min;
		*set = c->kid[0]->set;
		return true;
	}
	return false;
}

static void tails_of(const struct node *n, struct tails *out)
{
	const struct node *const *kid = &n;
	size_t nk = 1;
	struct tail t = {.n = 0};

	if (n->k == N_ALT) {
		for (size_t i = 0; i < n->nkid; i++)
			tails_of(n->kid[i], out);
		return;
	}
	if (n->k == N_CAT) {
		kid = (const struct node *const *)n->kid;
		nk = n->nkid;
	}
	for (size_t i = nk; i-- > 0;) {
		const uint8_t *set, *ls;
		int cnt, lc;

		if (!class_piece(kid[i], &cnt, &set)) {
			if (!t.len && (kid[i]->k == N_ALT || kid[i]->k == N_CAT) && kid[i] != n) {
				tails_of(kid[i], out);
				return;
			}
			break;
		}
		if (bs_literal(set) && !(t.len && cnt == 1 && i > 0 &&
					 class_piece(kid[i - 1], &lc, &ls) && !bs_literal(ls)))
			break;
		for (int k = 0; k < cnt; k++, t.len++)
			if (t.n < TAIL_SETS)
				t.set[t.n++] = set;
	}
	out->v = lw_xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	out->v[out->n++] = t;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t ent_sum(const uint32_t *clog, const uint8_t *p, size_t len)
{
	uint8_t cnt[256];
	uint32_t s = 0;

	/* only the entries of the window's bytes are touched */
	for (size_t i = 0; i < len; i++)
		cnt[p[i]] = 0;
	for (size_t i = 0; i < len; i++)
		cnt[p[i]]++;
	for (size_t i = 0; i < len; i++)
		if (cnt[p[i]]) {
			s += clog[cnt[p[i]]];
			cnt[p[i]] = 0;
		}
	return s;
}

/* Shannon entropy in bits per byte, as the classifier computes it. */
static double shannon(const uint8_t *p, size_t n)
{
	unsigned cnt[256] = {0};
	double h = 0;

	for (size_t i = 0; i < n; i++)
		cnt[p[i]]++;
	for (unsigned c = 0; c < 256; c++)
		if (cnt[c])
			h -= (double)cnt[c] / (double)n * log2((double)cnt[c] / (double)n);
	return h;
}

/*
 * Of random values of the pattern (each byte uniform over its set) that
 * the classifier's entropy check passes (the whole random part), the share
 * the kernel's check rejects: its window is the last ent_len bytes of the
 * kernel match, whose random run was cut short by full.len - cut.len bytes.
 * The worst over the ways a match can end; deterministic (fixed seed).
 * This is how many real keys the kernel would let through that the
 * classifier then reports, which is what a window too short costs.
 */
static double ent_miss(const struct tails *full, const struct tails *cut, unsigned ent_len,
		       uint32_t max_sum, double min_entropy, const uint32_t *clog, double *reject)
{
	const uint8_t *keys[16];
	uint8_t members[16][256], r[TAIL_SETS];
	int nmem[16], nkeys = 0, which[TAIL_SETS];
	double worst = 0;

	*reject = 1;
	if (full->n != cut->n)
		return 1;
	*reject = 0;
	for (size_t t = 0; t < full->n; t++) {
		const struct tail *f = &full->v[t];
		uint64_t seed = 0x6c65616b77617463ULL; /* the same draws for every build */
		long skip = f->len - cut->v[t].len;
		unsigned pass = 0, miss = 0, rej = 0;

		if (skip < 0 || skip + ent_len > (unsigned)f->n)
			return 1;
		for (int j = 0; j < f->n; j++) {
			int k = 0;

			while (k < nkeys && keys[k] != f->set[j])
				k++;
			if (k == nkeys) {
				if (nkeys == 16)
					return 1;
				keys[k] = f->set[j];
				nmem[k] = 0;
				for (unsigned c = 0; c < 256; c++)
					if (bs_has(f->set[j], c))
						members[k][nmem[k]++] = (uint8_t)c;
				nkeys++;
			}
			which[j] = k;
		}
		for (unsigned s = 0; s < ENT_SAMPLES; s++) {
			bool bad;

			for (int j = 0; j < f->n; j++)
				r[j] = members[which[j]]
					      [splitmix(&seed) % (unsigned)nmem[which[j]]];
			bad = ent_sum(clog, r + skip, ent_len) > max_sum;
			rej += bad;
			if (shannon(r, (size_t)f->n) < min_entropy)
				continue;
			pass++;
			miss += bad;
		}
		if ((double)rej / ENT_SAMPLES > *reject)
			*reject = (double)rej / ENT_SAMPLES;
		if (!pass)
			return 1;
		if ((double)miss / pass > worst)
			worst = (double)miss / pass;
	}
	return worst;
}

/* ---- position automaton ------------------------------------------------------------------ */

struct ivec {
	int *v;
	int n, cap;
};

static void iv_push(struct ivec *v, int x)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->v = lw_xrealloc(v->v, (size_t)v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = x;
}

static void iv_append(struct ivec *v, const struct ivec *w)
{
	for (int i = 0; i < w->n; i++)
		iv_push(v, w->v[i]);
}

enum { FIN_RULE = 1, FIN_EXEMPT = 2 };

struct nfa {
	int npos, cap;
	const uint8_t **set; /* per position: the byte set it reads */
	struct ivec *fol;    /* per position: the positions that may follow */
	uint8_t *fin;	     /* per position: FIN_* when a match ends there */
	uint8_t *ex;	     /* per position: part of an exemption (allow value) */
	struct ivec first;   /* where a match may start */
	bool overflow;
};

struct frag {
	struct ivec first, last;
	bool nullable;
};

static void frag_free(struct frag *f)
{
	free(f->first.v);
	free(f->last.v);
}

static int newpos(struct nfa *a, const uint8_t *set)
{
	if (a->npos >= POS_MAX) {
		a->overflow = true;
		return -1;
	}
	if (a->npos == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->set = lw_xrealloc(a->set, (size_t)a->cap * sizeof(*a->set));
		a->fol = lw_xrealloc(a->fol, (size_t)a->cap * sizeof(*a->fol));
		a->fin = lw_xrealloc(a->fin, (size_t)a->cap);
		a->ex = lw_xrealloc(a->ex, (size_t)a->cap);
	}
	a->ex[a->npos] = 0;
	a->set[a->npos] = set;
	memset(&a->fol[a->npos], 0, sizeof(a->fol[0]));
	a->fin[a->npos] = 0;
	return a->npos++;
}

static struct frag frag_cat(struct nfa *a, struct frag x, struct frag y)
{
	struct frag r = {.nullable = x.nullable && y.nullable};

	for (int i = 0; i < x.last.n; i++)
		iv_append(&a->fol[x.last.v[i]], &y.first);
	iv_append(&r.first, &x.first);
	if (x.nullable)
		iv_append(&r.first, &y.first);
	iv_append(&r.last, &y.last);
	if (y.nullable)
		iv_append(&r.last, &x.last);
	frag_free(&x);
	frag_free(&y);
	return r;
}

static struct frag build(struct nfa *a, const struct node *n)
{
	struct frag f = {.nullable = true}, g, t;
	int p;

	if (a->overflow)
		return f;
	switch (n->k) {
	case N_SET:
		p = newpos(a, n->set);
		if (p >= 0) {
			iv_push(&f.first, p);
			iv_push(&f.last, p);
		}
		f.nullable = false;
		return f;
	case N_WORDB:
		return f;
	case N_CAT:
		for (size_t i = 0; i < n->nkid; i++)
			f = frag_cat(a, f, build(a, n->kid[i]));
		return f;
	case N_ALT:
		f.nullable = false;
		for (size_t i = 0; i < n->nkid; i++) {
			g = build(a, n->kid[i]);
			iv_append(&f.first, &g.first);
			iv_append(&f.last, &g.last);
			f.nullable |= g.nullable;
			frag_free(&g);
		}
		return f;
	case N_REP:
		for (int i = 0; i < n->min; i++)
			f = frag_cat(a, f, build(a, n->kid[0]));
		if (n->max < 0) {
			g = build(a, n->kid[0]);
			for (int i = 0; i < g.last.n; i++)
				iv_append(&a->fol[g.last.v[i]], &g.first);
			g.nullable = true;
			f = frag_cat(a, f, g);
		} else if (n->max > n->min) {
			/* X{0,k} as (X(X(...)?)?)? */
			t = build(a, n->kid[0]);
			t.nullable = true;
			for (int i = n->max - n->min - 1; i > 0; i--) {
				t = frag_cat(a, build(a, n->kid[0]), t);
				t.nullable = true;
			}
			f = frag_cat(a, f, t);
		}
		return f;
	}
	return f;
}

/* Adds pattern n to the automaton; its match ends are marked fin. */
static void nfa_add(struct nfa *a, const struct node *n, uint8_t fin)
{
	int from = a->npos;
	struct frag f = build(a, n);

	for (int p = from; p < a->npos; p++)
		a->ex[p] = fin == FIN_EXEMPT;
	for (int i = 0; i < f.last.n; i++)
		a->fin[f.last.v[i]] |= fin;
	iv_append(&a->first, &f.first);
	frag_free(&f);
}

static void nfa_free(struct nfa *a)
{
	for (int i = 0; i < a->npos; i++)
		free(a->fol[i].v);
	free(a->set);
	free(a->fol);
	free(a->fin);
	free(a->ex);
	free(a->first.v);
	memset(a, 0, sizeof(*a));
}

/*
 * Pending positions. Once a rule's literal prefix (a literal run of LIT_MIN
 * bytes) has been read and its match goes on through a class byte (the
 * random part of a value), the position is "pending": a candidate is under
 * way, and matches that began after it are dropped (leftmost first, see
 * nfa_depths), new starts included. A value that begins inside another
 * candidate's random part is thus not looked for (non-overlapping matching,
 * as grep -o does); matches that began with it or before it are still
 * followed. Without this, every random run (and every open run such as the
 * BEGIN line's [ A-Z0-9]*) multiplies the DFA by the number of other rules'
 * partial matches that fit inside it, and a handful of rules fill the
 * budget. What is lost: a value that begins inside the random part of a
 * candidate that then fails (breaks off, fails entropy, is an allow value).
 * Not pending: runs before the literal (else no match could start inside a
 * word), and a match that can go on across line breaks without end
 * (`BEGIN.*` would blind the matcher for the rest of the connection).
 */
static uint8_t *nfa_pending(const struct nfa *a)
{
	size_t np = (size_t)a->npos + 1;
	uint8_t *dom = lw_xcalloc(np, 1), *bad = lw_xcalloc(np, 1), *seen = lw_xcalloc(np, 1);
	/* lit[p]: over every path to p, the least literal progress: the
	 * literal run ending at p (0..LIT_MIN - 1), or LIT_MIN once a run of
	 * LIT_MIN has been seen */
	uint8_t *lit = lw_xmalloc(np);
	struct ivec *rev = lw_xcalloc(np, sizeof(*rev)), work = {0};
	bool changed = true;

	memset(lit, LIT_MIN + 1, np);
	for (int k = 0; k < a->first.n; k++)
		lit[a->first.v[k]] = bs_literal(a->set[a->first.v[k]]) ? 1 : 0;
	while (changed) {
		changed = false;
		for (int p = 0; p < a->npos; p++) {
			if (lit[p] > LIT_MIN)
				continue;
			for (int k = 0; k < a->fol[p].n; k++) {
				int q = a->fol[p].v[k];
				uint8_t v = lit[p] >= LIT_MIN	    ? LIT_MIN
					    : bs_literal(a->set[q]) ? lit[p] + 1
								    : 0;

				if (v < lit[q]) {
					lit[q] = v;
					changed = true;
				}
			}
		}
	}
	/* bad: can reach a loop that reads '\n' */
	for (int p = 0; p < a->npos; p++)
		for (int k = 0; k < a->fol[p].n; k++)
			iv_push(&rev[a->fol[p].v[k]], p);
	for (int q = 0; q < a->npos; q++) {
		bool cyc = false;

		if (!bs_has(a->set[q], '\n'))
			continue;
		/* does q reach itself? */
		memset(seen, 0, np);
		work.n = 0;
		iv_append(&work, &a->fol[q]);
		while (work.n && !cyc) {
			int x = work.v[--work.n];

			if (x == q)
				cyc = true;
			else if (!seen[x]) {
				seen[x] = 1;
				iv_append(&work, &a->fol[x]);
			}
		}
		if (cyc && !bad[q]) {
			work.n = 0;
			iv_push(&work, q);
			bad[q] = 1;
			while (work.n) {
				int x = work.v[--work.n];

				for (int k = 0; k < rev[x].n; k++)
					if (!bad[rev[x].v[k]]) {
						bad[rev[x].v[k]] = 1;
						iv_push(&work, rev[x].v[k]);
					}
			}
		}
	}
	for (int p = 0; p < a->npos; p++) {
		dom[p] = !bs_literal(a->set[p]) && lit[p] == LIT_MIN && a->fol[p].n && !bad[p];
		free(rev[p].v);
	}
	free(rev);
	free(work.v);
	free(lit);
	free(bad);
	free(seen);
	return dom;
}

/*
 * How far into its match each position is: the fewest and most bytes from
 * the match start up to and including it (maxd INT_MAX after a loop). A
 * pending position p drops every position q with maxd[q] < mind[p]: q's
 * match began after p's did (leftmost first), which is what keeps the DFA
 * small. Matches that began with p's (sk- of sk-proj- and of sk-{48}) or
 * before it are kept. New starts (depth 1) are dropped alike.
 */
static void nfa_depths(const struct nfa *a, int **mindp, int **maxdp)
{
	int *mind = lw_xmalloc(((size_t)a->npos + 1) * sizeof(*mind));
	int *maxd = lw_xcalloc((size_t)a->npos + 1, sizeof(*maxd));
	bool changed = true;

	for (int p = 0; p < a->npos; p++)
		mind[p] = INT_MAX;
	for (int k = 0; k < a->first.n; k++)
		mind[a->first.v[k]] = maxd[a->first.v[k]] = 1;
	while (changed) {
		changed = false;
		for (int p = 0; p < a->npos; p++) {
			if (mind[p] == INT_MAX)
				continue;
			for (int k = 0; k < a->fol[p].n; k++) {
				int q = a->fol[p].v[k];
				/* a simple path has at most npos positions: longer
				 * means a loop */
				int mx = maxd[p] == INT_MAX || maxd[p] >= a->npos ? INT_MAX
										  : maxd[p] + 1;

				if (mind[p] + 1 < mind[q]) {
					mind[q] = mind[p] + 1;
					changed = true;
				}
				if (mx > maxd[q]) {
					maxd[q] = mx;
					changed = true;
				}
			}
		}
	}
	*mindp = mind;
	*maxdp = maxd;
}

/* The deepest pending position among v[0..n): positions with a smaller
 * maxd go (0: none pending). */
static int pending_depth(const uint8_t *dom, const int *mind, const int *v, int n)
{
	int d = 0;

	for (int i = 0; i < n; i++)
		if (dom[v[i]] && mind[v[i]] > d)
			d = mind[v[i]];
	return d;
}

/* Does set s take byte b in either case? */
static bool bs_has_fold(const uint8_t *s, unsigned b)
{
	if (bs_has(s, b))
		return true;
	if (b >= 'a' && b <= 'z')
		return bs_has(s, b - 32);
	if (b >= 'A' && b <= 'Z')
		return bs_has(s, b + 32);
	return false;
}

/* Runs one rule's automaton over v from the start, as the kernel would,
 * with every letter of v in either case (allow values are compared
 * case-insensitively): the first offset where some case variant of v is
 * accepted, -1 when none is. */
static long nfa_first_accept(const struct nfa *a, const uint8_t *dom, const int *mind,
			     const int *maxd, const char *v, size_t n)
{
	struct ivec in = {0}, nx = {0};
	uint8_t *mark = lw_xcalloc((size_t)a->npos + 1, 1);
	long at = -1;

	for (size_t i = 0; i < n && at < 0; i++) {
		unsigned b = (unsigned char)v[i];
		bool rule = false, exempt = false;
		int dep, k = 0;

		nx.n = 0;
		memset(mark, 0, (size_t)a->npos);
		for (int j = 0; j < in.n; j++)
			for (int f = 0; f < a->fol[in.v[j]].n; f++) {
				int q = a->fol[in.v[j]].v[f];

				if (!mark[q] && bs_has_fold(a->set[q], b)) {
					mark[q] = 1;
					iv_push(&nx, q);
				}
			}
		for (int f = 0; f < a->first.n; f++) {
			int q = a->first.v[f];

			if (!mark[q] && bs_has_fold(a->set[q], b)) {
				mark[q] = 1;
				iv_push(&nx, q);
			}
		}
		dep = pending_depth(dom, mind, nx.v, nx.n);
		for (int j = 0; j < nx.n; j++) {
			int q = nx.v[j];

			if (maxd[q] < dep && !a->ex[q])
				continue;
			nx.v[k++] = q;
			rule |= (a->fin[q] & FIN_RULE) != 0;
			exempt |= (a->fin[q] & FIN_EXEMPT) != 0;
		}
		nx.n = k;
		if (rule && !exempt)
			at = (long)i;
		in.n = 0;
		iv_append(&in, &nx);
	}
	free(in.v);
	free(nx.v);
	free(mark);
	return at;
}

/* ---- the combined DFA ---------------------------------------------------------------- */

struct dfa {
	uint32_t n, ncls;
	uint8_t cls[256];
	uint16_t *trans; /* n * ncls */
	uint16_t *acc;	 /* per state: kernel rule + 1, 0: none */
};

static void dfa_free(struct dfa *d)
{
	free(d->trans);
	free(d->acc);
	memset(d, 0, sizeof(*d));
}

static void dfa_grow(struct dfa *d, uint32_t *cap, uint32_t need)
{
	if (need <= *cap)
		return;
	*cap = *cap ? *cap * 2 : 64;
	if (*cap < need)
		*cap = need;
	d->trans = lw_xrealloc(d->trans, (size_t)*cap * d->ncls * sizeof(*d->trans));
	d->acc = lw_xrealloc(d->acc, (size_t)*cap * sizeof(*d->acc));
}

/* Open addressing from a key hash to a state id + 1 (0: empty slot). */
struct htab {
	uint32_t *slot;
	uint32_t mask, used;
};

static void ht_init(struct htab *h, uint32_t size)
{
	h->slot = lw_xcalloc(size, sizeof(*h->slot));
	h->mask = size - 1;
	h->used = 0;
}

static uint32_t hash_ints(const int *v, int n)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < n; i++) {
		h ^= (uint32_t)v[i];
		h *= 16777619u;
	}
	return h ^ (h >> 15);
}

/* Byte classes: bytes that every set treats alike. */
static uint32_t byte_classes(const uint8_t *const *sets, int nsets, uint8_t *cls)
{
	uint32_t n = 1;

	memset(cls, 0, 256);
	for (int i = 0; i < nsets; i++) {
		int map[512];
		uint32_t m = 0;

		if (i && (sets[i] == sets[i - 1] || !memcmp(sets[i], sets[i - 1], 32)))
			continue;
		for (int k = 0; k < 512; k++)
			map[k] = -1;
		for (unsigned b = 0; b < 256; b++) {
			int key = cls[b] * 2 + bs_has(sets[i], b);

			if (map[key] < 0)
				map[key] = (int)m++;
			cls[b] = (uint8_t)map[key];
		}
		n = m;
	}
	return n;
}

/* One kernel candidate: a rule or list compiled to positions. */
struct krule {
	size_t entry; /* into km->e */
	struct arena a;
	struct nfa nfa;
	uint8_t *dom;	  /* nfa_pending() */
	int *mind, *maxd; /* nfa_depths() */
	unsigned ent_len;
	uint32_t ent_max;
	long maxlen; /* longest kernel match, -1: unbounded */
	char *form;  /* kernel_form once taken */
};

static void krule_analyse(struct krule *k)
{
	free(k->dom);
	free(k->mind);
	free(k->maxd);
	k->dom = nfa_pending(&k->nfa);
	nfa_depths(&k->nfa, &k->mind, &k->maxd);
}

/* The rules of one trial, numbered globally. */
struct gnfa {
	int npos;
	const uint8_t **set;
	uint16_t *label; /* kernel rule + 1 */
	uint8_t *fin, *dom, *ex;
	int *mind, *maxd;
	int *foff, *fv;	      /* followers of p: fv[foff[p] .. foff[p + 1]) */
	uint64_t (*mask)[4];  /* byte classes each position reads */
	struct ivec *firstby; /* per class: the starts that read it, sorted */
};

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void sort_ints(int *v, int n)
{
	if (n > 16) {
		qsort(v, (size_t)n, sizeof(*v), cmp_int);
		return;
	}
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
			int t = v[k];

			v[k] = v[k - 1];
			v[k - 1] = t;
		}
}

static void gnfa_init(struct gnfa *g, struct krule *const *r, size_t nr, struct dfa *d)
{
	int base = 0, nf = 0;
	uint32_t rep[256];
	struct ivec first = {0};

	memset(g, 0, sizeof(*g));
	for (size_t i = 0; i < nr; i++) {
		g->npos += r[i]->nfa.npos;
		for (int p = 0; p < r[i]->nfa.npos; p++)
			nf += r[i]->nfa.fol[p].n;
	}
	g->set = lw_xmalloc(((size_t)g->npos + 1) * sizeof(*g->set));
	g->label = lw_xmalloc(((size_t)g->npos + 1) * sizeof(*g->label));
	g->fin = lw_xmalloc((size_t)g->npos + 1);
	g->dom = lw_xmalloc((size_t)g->npos + 1);
	g->ex = lw_xmalloc((size_t)g->npos + 1);
	g->mind = lw_xmalloc(((size_t)g->npos + 1) * sizeof(*g->mind));
	g->maxd = lw_xmalloc(((size_t)g->npos + 1) * sizeof(*g->maxd));
	g->foff = lw_xmalloc(((size_t)g->npos + 1) * sizeof(*g->foff));
	g->fv = lw_xmalloc(((size_t)nf + 1) * sizeof(*g->fv));
	g->mask = lw_xcalloc((size_t)g->npos + 1, sizeof(*g->mask));
	nf = 0;
	for (size_t i = 0; i < nr; i++) {
		const struct nfa *a = &r[i]->nfa;

		for (int p = 0; p < a->npos; p++) {
			g->set[base + p] = a->set[p];
			g->label[base + p] = (uint16_t)(i + 1);
			g->fin[base + p] = a->fin[p];
			g->dom[base + p] = r[i]->dom[p];
			g->ex[base + p] = a->ex[p];
			g->mind[base + p] = r[i]->mind[p];
			g->maxd[base + p] = r[i]->maxd[p];
			g->foff[base + p] = nf;
			for (int k = 0; k < a->fol[p].n; k++)
				g->fv[nf++] = base + a->fol[p].v[k];
		}
		for (int k = 0; k < a->first.n; k++)
			iv_push(&first, base + a->first.v[k]);
		base += a->npos;
	}
	g->foff[g->npos] = nf;
	d->ncls = byte_classes(g->set, g->npos, d->cls);
	for (int b = 255; b >= 0; b--)
		rep[d->cls[b]] = (uint32_t)b;
	for (int p = 0; p < g->npos; p++) {
		if (p && g->set[p] == g->set[p - 1]) {
			memcpy(g->mask[p], g->mask[p - 1], sizeof(g->mask[p]));
			continue;
		}
		for (uint32_t c = 0; c < d->ncls; c++)
			if (bs_has(g->set[p], rep[c]))
				g->mask[p][c >> 6] |= 1ULL << (c & 63);
	}
	sort_ints(first.v, first.n);
	g->firstby = lw_xcalloc(d->ncls, sizeof(*g->firstby));
	for (int i = 0; i < first.n; i++) {
		int q = first.v[i];

		if (i && q == first.v[i - 1])
			continue;
		for (uint32_t c = 0; c < d->ncls; c++)
			if (g->mask[q][c >> 6] >> (c & 63) & 1)
				iv_push(&g->firstby[c], q);
	}
	free(first.v);
}

static void gnfa_free(struct gnfa *g, uint32_t ncls)
{
	for (uint32_t c = 0; g->firstby && c < ncls; c++)
		free(g->firstby[c].v);
	free(g->firstby);
	free(g->set);
	free(g->label);
	free(g->fin);
	free(g->dom);
	free(g->ex);
	free(g->mind);
	free(g->maxd);
	free(g->foff);
	free(g->fv);
	free(g->mask);
}

/* A state's accept label: the lowest rule that ends a match here and has
 * no exemption (allow value) ending at the same byte. */
static uint16_t state_label(const struct gnfa *g, const int *v, int n)
{
	uint16_t best = 0;

	for (int i = 0; i < n; i++) {
		uint16_t l = g->label[v[i]];
		bool exempt = false;

		if (!(g->fin[v[i]] & FIN_RULE) || (best && l >= best))
			continue;
		for (int k = 0; k < n && !exempt; k++)
			exempt = g->label[v[k]] == l && (g->fin[v[k]] & FIN_EXEMPT);
		if (!exempt)
			best = l;
	}
	return best;
}

/* The set states and their lookup while a DFA is built. */
struct sets {
	struct ivec pool;
	uint32_t *off, *len, cap;
	struct htab h;
};

/* The state for positions v[0..n) (sorted), added when new. Returns the
 * state, or -1 when adding it would pass cap. */
static long state_of(struct sets *s, const struct gnfa *g, struct dfa *d, uint32_t *dcap,
		     uint32_t cap, const int *v, int n)
{
	uint32_t hv = hash_ints(v, n), t;

	for (t = hv & s->h.mask; s->h.slot[t]; t = (t + 1) & s->h.mask) {
		uint32_t o = s->h.slot[t] - 1;

		if (s->len[o] == (uint32_t)n &&
		    (!n || !memcmp(s->pool.v + s->off[o], v, (size_t)n * sizeof(*v))))
			return o;
	}
	if (d->n >= cap)
		return -1;
	if (d->n >= s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->off = lw_xrealloc(s->off, s->cap * sizeof(*s->off));
		s->len = lw_xrealloc(s->len, s->cap * sizeof(*s->len));
	}
	dfa_grow(d, dcap, d->n + 1);
	s->off[d->n] = (uint32_t)s->pool.n;
	s->len[d->n] = (uint32_t)n;
	for (int i = 0; i < n; i++)
		iv_push(&s->pool, v[i]);
	d->acc[d->n] = state_label(g, v, n);
	s->h.slot[t] = ++d->n;
	if (++s->h.used * 2 > s->h.mask) {
		struct htab h2;

		ht_init(&h2, (s->h.mask + 1) * 2);
		for (uint32_t k = 0; k < d->n; k++) {
			uint32_t u = hash_ints(s->pool.v + s->off[k], (int)s->len[k]) & h2.mask;

			while (h2.slot[u])
				u = (u + 1) & h2.mask;
			h2.slot[u] = k + 1;
		}
		h2.used = d->n;
		free(s->h.slot);
		s->h = h2;
	}
	return d->n - 1;
}

/*
 * Subset construction of the unanchored search for the rules r[0..nr)
 * (kernel rule i is r[i]): a state is the set of positions the last byte
 * may have matched. After every byte a match may start anew, unless a
 * position is pending: then what began after it goes (nfa_pending). Fails
 * (-1) beyond cap states, so a trial that does not fit costs no more than
 * one that does.
 */
static int build_dfa(struct krule *const *r, size_t nr, uint32_t cap, struct dfa *d)
{
	struct gnfa g;
	struct sets s = {0};
	struct ivec cand = {0}, next = {0}, *bucket;
	long *fresh;
	int *stamp, gen = 0;
	uint32_t dcap = 0;
	int rc = 0;

	memset(d, 0, sizeof(*d));
	gnfa_init(&g, r, nr, d);
	bucket = lw_xcalloc(d->ncls, sizeof(*bucket));
	fresh = lw_xmalloc(d->ncls * sizeof(*fresh));
	for (uint32_t c = 0; c < d->ncls; c++)
		fresh[c] = -1;
	stamp = lw_xcalloc((size_t)g.npos + 1, sizeof(*stamp));
	ht_init(&s.h, 1024);
	/* state 0: nothing matched yet */
	state_of(&s, &g, d, &dcap, cap, NULL, 0);
	for (uint32_t q = 0; q < d->n; q++) {
		gen++;
		cand.n = 0;
		for (uint32_t i = 0; i < s.len[q]; i++) {
			int p = s.pool.v[s.off[q] + i];

			for (int k = g.foff[p]; k < g.foff[p + 1]; k++)
				if (stamp[g.fv[k]] != gen) {
					stamp[g.fv[k]] = gen;
					iv_push(&cand, g.fv[k]);
				}
		}
		/* sorted once: every class's share comes out sorted */
		sort_ints(cand.v, cand.n);
		for (int i = 0; i < cand.n; i++)
			for (int w = 0; w < 4; w++)
				for (uint64_t m = g.mask[cand.v[i]][w]; m; m &= m - 1)
					iv_push(&bucket[w * 64 + __builtin_ctzll(m)], cand.v[i]);
		for (uint32_t c = 0; c < d->ncls; c++) {
			const struct ivec *fo = &bucket[c], *fs = &g.firstby[c];
			long t;

			if (!fo->n) {
				/* only new starts: the same state from everywhere */
				if (fresh[c] < 0)
					fresh[c] = state_of(&s, &g, d, &dcap, cap, fs->v, fs->n);
				t = fresh[c];
			} else {
				int dep = pending_depth(g.dom, g.mind, fo->v, fo->n);

				next.n = 0;
				if (dep) {
					/* leftmost first: what began later goes,
					 * new starts included */
					for (int i = 0; i < fo->n; i++)
						if (g.maxd[fo->v[i]] >= dep || g.ex[fo->v[i]])
							iv_push(&next, fo->v[i]);
				} else {
					int i = 0, k = 0;

					while (i < fo->n || k < fs->n) {
						int x = i < fo->n ? fo->v[i] : INT32_MAX;
						int y = k < fs->n ? fs->v[k] : INT32_MAX;

						iv_push(&next, x < y ? x : y);
						i += x <= y;
						k += y <= x;
					}
				}
				t = state_of(&s, &g, d, &dcap, cap, next.v, next.n);
			}
			if (t < 0) {
				rc = -1;
				goto out;
			}
			d->trans[(size_t)q * d->ncls + c] = (uint16_t)t;
		}
		for (uint32_t c = 0; c < d->ncls; c++)
			bucket[c].n = 0;
	}
out:
	for (uint32_t c = 0; c < d->ncls; c++)
		free(bucket[c].v);
	free(bucket);
	free(fresh);
	free(stamp);
	free(cand.v);
	free(next.v);
	free(s.pool.v);
	free(s.off);
	free(s.len);
	free(s.h.slot);
	gnfa_free(&g, d->ncls);
	if (rc)
		dfa_free(d);
	return rc;
}

/* ---- describing the kernel form ------------------------------------------------------------ */

static void put_byte(struct lw_buf *b, unsigned c, bool in_class)
{
	const char *special = in_class ? "]\\^-" : ".^$|()[]{}*+?\\";

	if (c < 0x20 || c >= 0x7f)
		lw_buf_printf(b, "\\x%02x", c);
	else if (strchr(special, (int)c))
		lw_buf_printf(b, "\\%c", (char)c);
	else
		lw_buf_putc(b, (char)c);
}

static int char_kind(unsigned c)
{
	return c >= '0' && c <= '9' ? 1 : c >= 'A' && c <= 'Z' ? 2 : c >= 'a' && c <= 'z' ? 3 : 0;
}

static void put_set(struct lw_buf *b, const uint8_t *s, bool icase)
{
	uint8_t t[32];
	int n = bs_count(s), c = bs_first(s);
	bool neg = n > 128;

	if (n == 1) {
		put_byte(b, (unsigned)c, false);
		return;
	}
	if (icase && bs_caseless_letter(s)) {
		put_byte(b, (unsigned)c + 32, false);
		return;
	}
	memcpy(t, s, 32);
	if (n == 255 && !bs_has(s, '\n')) {
		lw_buf_putc(b, '.');
		return;
	}
	if (neg)
		bs_not(t);
	lw_buf_puts(b, neg ? "[^" : "[");
	for (unsigned lo = 0; lo < 256;) {
		unsigned hi = lo;

		if (!bs_has(t, lo)) {
			lo++;
			continue;
		}
		/* ranges stay within digits, upper or lower case letters:
		 * [+/0-9] reads better than [+/-9] */
		while (hi + 1 < 256 && bs_has(t, hi + 1) && char_kind(hi + 1) == char_kind(lo))
			hi++;
		put_byte(b, lo, true);
		if (hi >= lo + 2)
			lw_buf_putc(b, '-');
		if (hi >= lo + 1)
			put_byte(b, hi, true);
		lo = hi + 1;
	}
	lw_buf_putc(b, ']');
}

static void put_node(struct lw_buf *b, const struct node *n, bool icase, bool top)
{
	switch (n->k) {
	case N_SET:
		put_set(b, n->set, icase);
		return;
	case N_WORDB:
		lw_buf_puts(b, "\\b");
		return;
	case N_CAT:
		for (size_t i = 0; i < n->nkid; i++)
			put_node(b, n->kid[i], icase, false);
		return;
	case N_ALT:
		if (!top)
			lw_buf_puts(b, "(?:");
		for (size_t i = 0; i < n->nkid; i++) {
			if (i)
				lw_buf_putc(b, '|');
			put_node(b, n->kid[i], icase, false);
		}
		if (!top)
			lw_buf_putc(b, ')');
		return;
	case N_REP: {
		const struct node *k = n->kid[0];
		bool wrap = k->k == N_CAT && k->nkid != 1;

		if (wrap)
			lw_buf_puts(b, "(?:");
		put_node(b, k, icase, false);
		if (wrap)
			lw_buf_putc(b, ')');
		if (n->min == 1 && n->max == 1)
			; /* a run cut to one byte */
		else if (n->min == 0 && n->max == 1)
			lw_buf_putc(b, '?');
		else if (n->min == 0 && n->max < 0)
			lw_buf_putc(b, '*');
		else if (n->min == 1 && n->max < 0)
			lw_buf_putc(b, '+');
		else if (n->min == n->max)
			lw_buf_printf(b, "{%d}", n->min);
		else if (n->max < 0)
			lw_buf_printf(b, "{%d,}", n->min);
		else
			lw_buf_printf(b, "{%d,%d}", n->min, n->max);
		return;
	}
	}
}

/* Copies s into a fixed field; what does not fit ends in "...". */
static void set_field(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n < size) {
		memcpy(dst, s, n + 1);
		return;
	}
	memcpy(dst, s, size - 4);
	memcpy(dst + size - 4, "...", 4);
}

static void set_reason(struct lw_kmatch_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_reason(struct lw_kmatch_entry *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
	va_end(ap);
}

/* ---- the build ------------------------------------------------------------------------------ */

/* What each validator looks at that the kernel cannot. */
static const char *const val_why[LW_VAL__N] = {
	[LW_VAL_LUHN] = "Luhn",
	[LW_VAL_CREDIT_CARD] = "Luhn",
	[LW_VAL_IBAN] = "mod-97",
	[LW_VAL_US_SSN] = "area, group and serial",
	[LW_VAL_JWT] = "header JSON",
	[LW_VAL_PHONE] = "numbering plans",
	[LW_VAL_EMAIL] = "domain",
	[LW_VAL_PRIVATE_KEY] = "key body",
	[LW_VAL_URL_PASSWORD] = "placeholder passwords",
	[LW_VAL_MIXED_CHARS] = "character mix",
};

/* Keys of a rule the kernel has no equivalent for. */
static bool rule_keys_ok(const struct lw_rule *r, struct lw_kmatch_entry *e)
{
	if (r->no_kernel) {
		set_reason(e, "kernel: false");
		return false;
	}
	for (int v = 0; v < LW_VAL__N; v++)
		if ((r->validators >> v & 1) && v != LW_VAL_PRIVATE_KEY) {
			set_reason(e, "validator %s (%s) runs in user space",
				   lw_validator_name((enum lw_validator)v), val_why[v]);
			return false;
		}
	if (r->context.n && r->context_required) {
		set_reason(e, r->context_assign ? "needs context words (an assignment)"
						: "needs context words");
		return false;
	}
	if (r->min_count > 1) {
		set_reason(e, "min_count %u counts occurrences in the whole text", r->min_count);
		return false;
	}
	if (r->allow_contains.n) {
		set_reason(e, "allow_contains looks at the whole value");
		return false;
	}
	if (r->allow_regex.n) {
		set_reason(e, "allow_regex looks at the whole value");
		return false;
	}
	return true;
}

/* The literal node of an allow value or list value (caseless: both cases
 * of every letter). */
static struct node *literal_node(struct arena *a, const char *v, bool icase)
{
	struct node *c = nnew(a, N_CAT);

	for (const char *p = v; *p; p++) {
		struct node *s = nnew(a, N_SET);

		bs_add(s->set, (unsigned char)*p);
		if (icase)
			bs_fold(s->set);
		nadd(c, s);
	}
	return c;
}

/* A trailing run longer than max bytes is cut to its first max: a prefix
 * and 24 random bytes are as telling as a prefix and 186, the entropy
 * window sees at most 64, and every byte of a run is a DFA state (most of
 * the budget goes to these runs). */
static void cut_tail(struct node *n, int max)
{
	switch (n->k) {
	case N_CAT:
		if (n->nkid)
			cut_tail(n->kid[n->nkid - 1], max);
		return;
	case N_ALT:
		for (size_t i = 0; i < n->nkid; i++)
			cut_tail(n->kid[i], max);
		return;
	case N_REP:
		if (n->kid[0]->k == N_SET && n->min == n->max && n->min > max)
			n->min = n->max = max;
		return;
	case N_SET:
	case N_WORDB:
		return;
	}
}

/* Drops the literal bytes after the random run at the end of each
 * alternative (AccountKey=[A-Za-z0-9+/]{86}==): the entropy window ends
 * where the match does and must see the random part. The kernel form is
 * then looser by those bytes. Returns whether anything was dropped. */
static bool drop_trailing_literal(struct node *n)
{
	bool any = false;

	if (n->k == N_ALT) {
		for (size_t i = 0; i < n->nkid; i++)
			any |= drop_trailing_literal(n->kid[i]);
		return any;
	}
	while (n->k == N_CAT && n->nkid > 1) {
		const struct node *l = n->kid[n->nkid - 1];
		const uint8_t *set;
		int cnt;

		if (!class_piece(l, &cnt, &set) || !bs_literal(set))
			break;
		n->nkid--;
		any = true;
	}
	return any;
}

/*
 * A repeat inside the pattern may run at most BOUND_RANGE beyond its
 * minimum ([ A-Z0-9]{0,40} and \s* become {0,16}). Two reasons: every
 * kernel match then has a bounded length, which the walk needs to cut a
 * write into pieces walked side by side (lwm_table.resync); and a count
 * costs a DFA state per value, per other partial match inside the run. The
 * kernel form may then miss a value whose inner run is longer (a BEGIN line
 * with more than 16 bytes before PRIVATE KEY; the classifier still sees it).
 */
static void bound(struct node *n)
{
	if (n->k == N_REP && (n->max < 0 || n->max - n->min > BOUND_RANGE))
		n->max = n->min + BOUND_RANGE;
	for (size_t i = 0; i < n->nkid; i++)
		bound(n->kid[i]);
}

static void krule_free(struct krule *k)
{
	if (!k)
		return;
	nfa_free(&k->nfa);
	arena_free(&k->a);
	free(k->dom);
	free(k->mind);
	free(k->maxd);
	free(k->form);
	free(k);
}

/* Trailing runs are cut to the first of these lengths whose entropy window
 * does not miss real keys (ent_miss); rules without min_entropy: the
 * first. */
static const int tail_steps[] = {24, 32, 48, LWM_ENT_MAX};

/* A rule's pattern in its kernel form, with trailing runs cut to tail_max
 * bytes; *tail: the shortest random part at its end (only with
 * min_entropy). NULL with the reason in e. */
static struct node *kernel_shape(struct arena *a, const struct lw_rule *r, int tail_max,
				 struct lw_kmatch_entry *e, bool *icase, struct tails *tl,
				 long *tail)
{
	struct parser p = {.a = a};
	struct node *root = parse_pattern(&p, r->pattern, r->caseless);

	*icase = p.icase;
	if (!root) {
		set_reason(e, "pattern construct %s not supported in the kernel", p.what);
		return NULL;
	}
	if (nullable(root)) {
		set_reason(e, "pattern can match the empty string");
		return NULL;
	}
	trim(root, true, true);
	if (has_wordb(root)) {
		set_reason(e, "pattern construct '\\b' inside the pattern not supported in the "
			      "kernel");
		return NULL;
	}
	if (r->min_length)
		lengthen(root, r->min_length);
	cut_tail(root, tail_max);
	bound(root);
	*tail = LWM_ENT_MAX;
	if (r->min_entropy <= 0)
		return root;
	tails_of(root, tl);
	for (size_t i = 0; i < tl->n; i++)
		*tail = lmin(*tail, tl->v[i].len);
	if (*tail < ENT_MIN && drop_trailing_literal(root)) {
		cut_tail(root, tail_max);
		tl->n = 0;
		*tail = LWM_ENT_MAX;
		tails_of(root, tl);
		for (size_t i = 0; i < tl->n; i++)
			*tail = lmin(*tail, tl->v[i].len);
	}
	return root;
}

/* The kernel form's tree of a rule and its entropy window. NULL with the
 * reason in e; *retry when a longer tail_max might do. */
static struct node *kernel_tree(struct krule *k, const struct lw_rule *r, int tail_max,
				const uint32_t *clog, struct lw_kmatch_entry *e, bool *icase,
				bool *retry)
{
	struct tails tl = {0}, full = {0};
	struct node *root;
	long tail, ftail;
	double max, miss, reject;
	bool ic;

	*retry = false;
	root = kernel_shape(&k->a, r, tail_max, e, icase, &tl, &tail);
	if (!root)
		goto fail;
	if (lits_of(root).best < LIT_MIN) {
		set_reason(e, "no literal of %d+ bytes: would fire on ordinary text", LIT_MIN);
		goto fail;
	}
	if (r->min_entropy <= 0)
		goto out;
	if (tail < ENT_MIN) {
		set_reason(e,
			   "min_entropy: the random part at the end of the pattern has %ld byte%s, "
			   "fewer than %d",
			   tail, tail == 1 ? "" : "s", ENT_MIN);
		goto fail;
	}
	k->ent_len = (unsigned)tail;
	max = floor(1024.0 * (k->ent_len * log2(k->ent_len) - r->min_entropy * k->ent_len));
	if (max < 0) {
		set_reason(e, "min_entropy %.2g cannot be reached over %u bytes", r->min_entropy,
			   k->ent_len);
		goto fail;
	}
	k->ent_max = (uint32_t)max;
	/* the same pattern uncut, for what the classifier sees */
	kernel_shape(&k->a, r, INT_MAX, e, &ic, &full, &ftail);
	miss = ent_miss(&full, &tl, k->ent_len, k->ent_max, r->min_entropy, clog, &reject);
	if (miss > ENT_MISS_MAX || reject > ENT_REJECT_MAX) {
		set_reason(e,
			   "min_entropy %.2g over the last %u bytes would let through %.0f%% of "
			   "random values",
			   r->min_entropy, k->ent_len, (miss > reject ? miss : reject) * 100);
		*retry = true;
		goto fail;
	}
out:
	free(tl.v);
	free(full.v);
	return root;
fail:
	free(tl.v);
	free(full.v);
	return NULL;
}

/* The kernel form of a rule, or NULL with the reason in e. */
static struct krule *compile_rule(const struct lw_rule *r, struct lw_kmatch_entry *e,
				  const uint32_t *clog)
{
	struct krule *k = lw_xcalloc(1, sizeof(*k));
	struct lw_buf exempt = {0};
	struct node *root = NULL;
	bool icase = false, retry = true;

	if (!rule_keys_ok(r, e))
		goto fail;
	for (size_t i = 0; !root && retry && i < sizeof(tail_steps) / sizeof(*tail_steps); i++) {
		arena_free(&k->a);
		k->ent_len = 0;
		k->ent_max = 0;
		root = kernel_tree(k, r, tail_steps[i], clog, e, &icase, &retry);
	}
	if (!root)
		goto fail;
	e->reason[0] = 0;
	k->maxlen = maxlen(root);
	nfa_add(&k->nfa, root, FIN_RULE);
	if (k->nfa.overflow) {
		set_reason(e, "pattern too large for the kernel (more than %d positions)", POS_MAX);
		goto fail;
	}
	krule_analyse(k);
	if (r->allow.n) {
		/* exemptions, for allow values the kernel form matches as a
		 * whole (first accept at the last byte); values it never
		 * matches need none, others cannot be told apart */
		bool *need = lw_xcalloc(r->allow.n, sizeof(*need));
		size_t nex = 0;

		for (size_t i = 0; i < r->allow.n; i++) {
			size_t n = strlen(r->allow.v[i]);
			long at = nfa_first_accept(&k->nfa, k->dom, k->mind, k->maxd, r->allow.v[i],
						   n);

			if (at >= 0 && at != (long)n - 1) {
				set_reason(e,
					   "allow entry %zu is not a whole match of the kernel "
					   "form",
					   i + 1);
				free(need);
				goto fail;
			}
			need[i] = at >= 0;
		}
		for (size_t i = 0; i < r->allow.n; i++)
			if (need[i]) {
				nfa_add(&k->nfa, literal_node(&k->a, r->allow.v[i], true),
					FIN_EXEMPT);
				nex++;
			}
		free(need);
		if (k->nfa.overflow) {
			set_reason(e, "pattern too large for the kernel (more than %d positions)",
				   POS_MAX);
			goto fail;
		}
		krule_analyse(k);
		if (nex)
			lw_buf_printf(&exempt, "; %zu allow value%s exempt", nex,
				      nex == 1 ? "" : "s");
	}
	{
		struct lw_buf f = {0};

		if (icase)
			lw_buf_puts(&f, "(?i)");
		put_node(&f, root, icase, true);
		if (r->validators >> LW_VAL_PRIVATE_KEY & 1)
			lw_buf_puts(&f, "; the BEGIN line alone (key body checked in user space)");
		if (k->ent_len)
			lw_buf_printf(&f, "; entropy >= %.2g over %u bytes", r->min_entropy,
				      k->ent_len);
		if (exempt.len)
			lw_buf_put(&f, exempt.p, exempt.len);
		lw_buf_free(&exempt);
		k->form = f.p;
	}
	return k;
fail:
	lw_buf_free(&exempt);
	krule_free(k);
	return NULL;
}

static struct krule *compile_list(const struct lw_list *l, struct lw_kmatch_entry *e)
{
	/* the classifier matches literal lists case-insensitively unless
	 * they keep the bytes as found (build.c) */
	bool icase = l->normalize != LW_NORM_NONE;
	struct krule *k = lw_xcalloc(1, sizeof(*k));
	struct lw_buf form = {0};

	if (l->no_kernel) {
		set_reason(e, "kernel: false");
		goto fail;
	}
	if (l->token != LW_TOKEN_NONE) {
		set_reason(e, "hashed list values (%s tokens are looked up by digest)",
			   lw_token_kind_name(l->token));
		goto fail;
	}
	if (l->min_count > 1) {
		set_reason(e, "min_count %u counts occurrences in the whole text", l->min_count);
		goto fail;
	}
	if (!l->nvalues) {
		set_reason(e, "no values");
		goto fail;
	}
	for (size_t i = 0; i < l->nvalues; i++) {
		if (strlen(l->values[i]) < LIT_MIN) {
			set_reason(e, "value %zu is shorter than %d bytes", i + 1, LIT_MIN);
			goto fail;
		}
		nfa_add(&k->nfa, literal_node(&k->a, l->values[i], icase), FIN_RULE);
		k->maxlen = lmax(k->maxlen, (long)strlen(l->values[i]));
	}
	if (k->nfa.overflow) {
		set_reason(e, "values too long for the kernel (more than %d bytes in all)",
			   POS_MAX);
		goto fail;
	}
	krule_analyse(k);
	lw_buf_printf(&form, "any of %zu value%s, %s", l->nvalues, l->nvalues == 1 ? "" : "s",
		      icase ? "case-insensitive" : "exact case");
	k->form = form.p;
	return k;
fail:
	krule_free(k);
	return NULL;
}

/* Tries the rules taken so far plus cand[0..n): on success *out (freed
 * first) is their DFA. */
static bool fits(struct krule **take, size_t ntake, struct krule *const *cand, size_t n,
		 struct dfa *out)
{
	struct dfa d;

	memcpy(take + ntake, cand, n * sizeof(*take));
	if (build_dfa(take, ntake + n, LWM_MAX_STATES, &d) != 0)
		return false;
	dfa_free(out);
	*out = d;
	return true;
}

/*
 * Greedy in ruleset order: a candidate is taken when the DFA of the rules
 * taken so far plus it fits the budget. A DFA build per candidate would
 * cost tens of ms per rule, so runs are tried at once: first all that are
 * left (the built-in pack fits in one build), and once that has failed,
 * runs of 1, 2, 4... candidates, then bisection inside the last run: the
 * candidate after the longest run that fits is left out. A ruleset far
 * beyond the budget costs one build per candidate left out. *out is the
 * DFA of the rules taken.
 */
static void select_rules(struct lw_kmatch *km, struct krule **cand, size_t nc, struct dfa *out)
{
	struct krule **take = lw_xmalloc((nc + 1) * sizeof(*take));
	size_t ntake = 0, i = 0;
	bool all_failed = false;

	/* nothing taken: one state that never accepts */
	build_dfa(take, 0, LWM_MAX_STATES, out);
	while (i < nc) {
		size_t hi = nc, lo = i, up = 0, step = 1;

		if (ntake >= LWM_MAX_RULES) {
			for (; i < nc; i++)
				set_reason(&km->e[cand[i]->entry], "kernel rule limit (%d rules)",
					   LWM_MAX_RULES);
			break;
		}
		if (hi - i > LWM_MAX_RULES - ntake)
			hi = i + (LWM_MAX_RULES - ntake);
		if (!all_failed && fits(take, ntake, cand + i, hi - i, out)) {
			lo = hi;
		} else {
			all_failed = true;
			/* [i, lo) fits, [i, up) does not */
			for (;;) {
				size_t j = i + step < hi ? i + step : hi;

				if (!fits(take, ntake, cand + i, j - i, out)) {
					up = j;
					break;
				}
				lo = j;
				if (j == hi)
					break;
				step *= 2;
			}
			while (up && up - lo > 1) {
				size_t mid = lo + (up - lo) / 2;

				if (fits(take, ntake, cand + i, mid - i, out))
					lo = mid;
				else
					up = mid;
			}
		}
		memmove(take + ntake, cand + i, (lo - i) * sizeof(*take));
		ntake += lo - i;
		i = lo;
		if (up) {
			set_reason(&km->e[cand[i]->entry], "DFA state budget (%d states)",
				   LWM_MAX_STATES);
			i++;
		}
	}
	for (size_t k = 0; k < ntake; k++) {
		struct lw_kmatch_entry *e = &km->e[take[k]->entry];

		e->kidx = (int)k;
		km->kentry[k] = (int)take[k]->entry;
		km->table->rules[k].ent_len = (unsigned short)take[k]->ent_len;
		km->table->rules[k].ent_max_sum = take[k]->ent_max;
		set_field(e->kernel_form, sizeof(e->kernel_form), take[k]->form);
	}
	km->table->nrules = (unsigned)ntake;
	/* every kernel match is at most this long: a walk started from state
	 * 0 this far ahead of a position is in the sequential walk's state
	 * there, but for leftmost-first (a candidate that began before the
	 * walk can have kept one inside it from being followed) */
	for (size_t k = 0; k < ntake; k++) {
		if (take[k]->maxlen < 0 || take[k]->maxlen > UINT32_MAX) {
			km->table->resync = 0;
			break;
		}
		if ((unsigned)take[k]->maxlen > km->table->resync)
			km->table->resync = (unsigned)take[k]->maxlen;
	}
	free(take);
}

static void fill_table(struct lwm_table *t, const struct dfa *d)
{
	t->nstates = d->n;
	for (uint32_t s = 0; s < d->n; s++) {
		t->accept[s] = d->acc[s];
		for (unsigned b = 0; b < 256; b++) {
			uint16_t to = d->trans[(size_t)s * d->ncls + d->cls[b]];

			t->trans[s * 256 + b] =
				(unsigned short)(to | (d->acc[to] ? LWM_ACCEPT : 0));
		}
	}
}

int lw_kmatch_build(const struct lw_ruleset *rs, struct lw_kmatch *out)
{
	struct krule **cand;
	size_t n = 0, nc = 0;
	struct dfa d;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < LWM_MAX_RULES; i++)
		out->kentry[i] = -1;
	out->table = calloc(1, sizeof(*out->table));
	if (!out->table)
		return -1;
	for (unsigned c = 2; c <= LWM_ENT_MAX; c++)
		out->table->clog[c] = (unsigned)lround(c * log2(c) * 1024);
	for (size_t i = 0; i < rs->n; i++)
		n += rs->rules[i].action == LW_ACT_BLOCK;
	for (size_t i = 0; i < rs->nlists; i++)
		n += rs->lists[i].action == LW_ACT_BLOCK;
	out->e = lw_xcalloc(n ? n : 1, sizeof(*out->e));
	cand = lw_xcalloc(n ? n : 1, sizeof(*cand));
	for (size_t i = 0; i < rs->n; i++) {
		struct lw_kmatch_entry *e = &out->e[out->n];

		if (rs->rules[i].action != LW_ACT_BLOCK)
			continue;
		*e = (struct lw_kmatch_entry){.id = rs->rules[i].id,
					      .type = rs->rules[i].type,
					      .index = (int)i,
					      .kidx = -1};
		if ((cand[nc] = compile_rule(&rs->rules[i], e, out->table->clog)))
			cand[nc++]->entry = out->n;
		out->n++;
	}
	for (size_t i = 0; i < rs->nlists; i++) {
		struct lw_kmatch_entry *e = &out->e[out->n];

		if (rs->lists[i].action != LW_ACT_BLOCK)
			continue;
		*e = (struct lw_kmatch_entry){.id = rs->lists[i].id,
					      .type = rs->lists[i].type,
					      .is_list = true,
					      .index = (int)i,
					      .kidx = -1};
		if ((cand[nc] = compile_list(&rs->lists[i], e)))
			cand[nc++]->entry = out->n;
		out->n++;
	}
	select_rules(out, cand, nc, &d);
	fill_table(out->table, &d);
	dfa_free(&d);
	for (size_t i = 0; i < nc; i++)
		krule_free(cand[i]);
	free(cand);
	return 0;
}

void lw_kmatch_free(struct lw_kmatch *km)
{
	free(km->table);
	free(km->e);
	memset(km, 0, sizeof(*km));
}

/* ---- the walk --------------------------------------------------------------------------- */

bool lw_kmatch_entropy_ok(const struct lwm_table *t, unsigned r, const uint8_t *p, size_t len)
{
	unsigned n = t->rules[r].ent_len;

	if (!n || len < n)
		return true;
	return ent_sum(t->clog, p + len - n, n) <= t->rules[r].ent_max_sum;
}

int lw_kmatch_scan(const struct lwm_table *t, const void *buf, size_t n, uint16_t *state,
		   size_t *end)
{
	const uint8_t *p = buf;
	unsigned s = *state & LWM_STATE_MASK;

	if (s >= t->nstates)
		s = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned to = t->trans[s * 256 + p[i]];

		s = to & LWM_STATE_MASK;
		if ((to & LWM_ACCEPT) && t->accept[s]) {
			unsigned r = t->accept[s] - 1u;

			if (lw_kmatch_entropy_ok(t, r, p, i + 1)) {
				*state = (uint16_t)s;
				*end = i;
				return (int)r;
			}
		}
	}
	*state = (uint16_t)s;
	return -1;
}

void lw_kmatch_report(const struct lw_kmatch *km, void (*fn)(const char *line, void *ud), void *ud)
{
	struct lw_buf b = {0};

	lw_buf_printf(&b,
		      "in-kernel blocking: %u of %zu block rules and lists, %u of %d DFA states",
		      km->table ? km->table->nrules : 0, km->n, km->table ? km->table->nstates : 0,
		      LWM_MAX_STATES);
	fn(b.p, ud);
	for (size_t i = 0; i < km->n; i++) {
		const struct lw_kmatch_entry *e = &km->e[i];

		if (e->kidx >= 0)
			continue;
		lw_buf_reset(&b);
		lw_buf_printf(&b, "%s %s: blocks after the write (user space): %s",
			      e->is_list ? "list" : "rule", e->id, e->reason);
		fn(b.p, ud);
	}
	lw_buf_free(&b);
}
