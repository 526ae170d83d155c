/* Scanning: hits -> candidates -> validated occurrences -> findings. */
#include "classify.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "classify/engine.h"
#include "classify/lists.h"
#include "classify/mask.h"
#include "classify/validate.h"
#include "util/buf.h"

_Static_assert(LW_SAMPLE_MAX == LW_MASK_MAX, "sample and mask sizes differ");

/* Per scan, each work array holds at most BOUND_BASE + n / BOUND_DIV
 * entries: memory stays proportional to the input however hostile it is,
 * and what does not fit is counted, never silently lost. */
#define BOUND_BASE 65536
#define BOUND_DIV 8
/* Overlap resolution compares every pair of a cluster of overlapping
 * occurrences; larger clusters (only hostile input makes them) keep all. */
#define CLUSTER_MAX 256

struct win {
	size_t lo, hi;
	uint32_t group;
};

struct hit {
	size_t end;
	uint32_t ex;
};

/* A group's windows, joined by newlines into one buffer: segment k is
 * text[lo, lo + len) at buffer offset at. */
struct seg {
	size_t lo, len, at;
};

struct cand {
	size_t s, e;
	uint32_t t; /* rule index, or nrules + list index */
};

struct occ {
	size_t s, e;
	uint32_t t;
	int prio;
	bool boost;
	bool dead;
};

enum rej {
	REJ_NONE = 0,
	REJ_LENGTH,
	REJ_BOUNDARY,
	REJ_CONTEXT,
	REJ_ALLOW,
	REJ_PLACEHOLDER,
	REJ_ENTROPY,
	REJ_VALIDATOR,
};

struct lw_classify_ctx {
	const struct lw_classifier *c;
	hs_scratch_t *scratch;
	struct lw_classify_stats st;

	/* the scan in progress */
	const char *text;
	size_t n, bound;
	uint64_t dropped;
	struct win *open; /* per group: the window being extended (hi == 0: none) */
	struct win *wins, *wins2;
	size_t nwins, capwins, capwins2;
	size_t *gcount; /* per group + 1 */
	struct hit *hits;
	size_t nhits, caphits;
	struct cand *cands;
	size_t ncands, capcands;
	struct occ *occs;
	size_t noccs, capoccs;
	int32_t *fidx; /* per target: index of its finding, -1 */
	struct fmeta {
		uint32_t t;
		bool boosted;
	} * fm; /* per finding of the scan */
	size_t capfm;
	/* confirm scans */
	struct lw_buf cat, cat2;
	struct seg *segs, *segs2;
	size_t nsegs, capsegs, capsegs2;
	bool *seghit;
	size_t capseghit;
	uint32_t group;
	size_t anchored_end;
	struct lw_buf norm;
};

static size_t ntargets(const struct lw_classifier *c)
{
	return c->rs->n + c->rs->nlists;
}

struct lw_classify_ctx *lw_classify_ctx_new(const struct lw_classifier *c)
{
	struct lw_classify_ctx *x = lw_xcalloc(1, sizeof(*x));
	size_t nt = ntargets(c);

	x->c = c;
	if (c->db && hs_alloc_scratch(c->db, &x->scratch) != HS_SUCCESS)
		goto fail;
	/* one scratch fits every database of the classifier */
	for (size_t i = 0; i < c->ngroups; i++)
		if ((c->groups[i].db && hs_alloc_scratch(c->groups[i].db, &x->scratch)) ||
		    (c->groups[i].pre && hs_alloc_scratch(c->groups[i].pre, &x->scratch)))
			goto fail;
	for (size_t i = 0; i < c->rs->n; i++) {
		if (c->cr[i].allow_db && hs_alloc_scratch(c->cr[i].allow_db, &x->scratch))
			goto fail;
		if (c->cr[i].anchored && hs_alloc_scratch(c->cr[i].anchored, &x->scratch))
			goto fail;
	}
	x->open = lw_xcalloc(c->ngroups ? c->ngroups : 1, sizeof(*x->open));
	x->gcount = lw_xcalloc(c->ngroups + 1, sizeof(*x->gcount));
	x->fidx = lw_xmalloc((nt ? nt : 1) * sizeof(*x->fidx));
	for (size_t i = 0; i < nt; i++)
		x->fidx[i] = -1;
	return x;
fail:
	lw_classify_ctx_free(x);
	return NULL;
}

void lw_classify_ctx_free(struct lw_classify_ctx *x)
{
	if (!x)
		return;
	hs_free_scratch(x->scratch);
	free(x->open);
	free(x->wins);
	free(x->wins2);
	free(x->gcount);
	free(x->hits);
	free(x->cands);
	free(x->occs);
	free(x->fidx);
	free(x->fm);
	free(x->segs);
	free(x->segs2);
	free(x->seghit);
	lw_buf_free(&x->cat);
	lw_buf_free(&x->cat2);
	lw_buf_free(&x->norm);
	free(x);
}

struct lw_classify_stats lw_classify_ctx_stats(const struct lw_classify_ctx *x)
{
	return x->st;
}

void lw_findings_free(struct lw_findings *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* ---- collecting ------------------------------------------------------------------ */

#define GROW(arr, n, cap)                                                                          \
	do {                                                                                       \
		if ((n) == (cap)) {                                                                \
			(cap) = (cap) ? (cap)*2 : 256;                                             \
			(arr) = lw_xrealloc((arr), (cap) * sizeof(*(arr)));                        \
		}                                                                                  \
	} while (0)

static void add_cand(struct lw_classify_ctx *x, size_t s, size_t e, uint32_t t)
{
	struct cand *last = x->ncands ? &x->cands[x->ncands - 1] : NULL;

	/* start-of-match scans report one start for many ends (a key matched
	 * at every length past its minimum): keep the longest */
	if (last && last->t == t && last->s == s) {
		if (e > last->e)
			last->e = e;
		return;
	}
	if (x->ncands >= x->bound) {
		x->dropped++;
		return;
	}
	GROW(x->cands, x->ncands, x->capcands);
	x->cands[x->ncands++] = (struct cand){s, e, t};
}

static void push_win(struct lw_classify_ctx *x, const struct win *w)
{
	if (x->nwins >= x->bound) {
		x->dropped++;
		return;
	}
	GROW(x->wins, x->nwins, x->capwins);
	x->wins[x->nwins++] = *w;
}

static void add_window(struct lw_classify_ctx *x, uint32_t g, size_t lo, size_t hi)
{
	struct win *o = &x->open[g];

	if (o->hi && lo <= o->hi && hi >= o->lo) {
		if (lo < o->lo)
			o->lo = lo;
		if (hi > o->hi)
			o->hi = hi;
		return;
	}
	if (o->hi)
		push_win(x, o);
	*o = (struct win){lo, hi, g};
}

static void window_hit(struct lw_classify_ctx *x, uint32_t g, size_t end)
{
	const struct lw_group *gr = &x->c->groups[g];

	add_window(x, g, end > gr->before ? end - gr->before : 0,
		   x->n - end > gr->after ? end + gr->after : x->n);
}

static void add_hit(struct lw_classify_ctx *x, uint32_t ex, size_t end)
{
	if (x->nhits && x->hits[x->nhits - 1].ex == ex && x->hits[x->nhits - 1].end == end)
		return;
	if (x->nhits >= x->bound) {
		x->dropped++;
		return;
	}
	GROW(x->hits, x->nhits, x->caphits);
	x->hits[x->nhits++] = (struct hit){end, ex};
}

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		  void *ud)
{
	struct lw_classify_ctx *x = ud;
	const struct lw_expr *ex = &x->c->ex[id];
	size_t end = (size_t)to;

	(void)from;
	(void)flags;
	switch (ex->kind) {
	case LW_EX_DIRECT:
		if (end >= ex->width)
			add_cand(x, end - ex->width, end, ex->ref);
		break;
	case LW_EX_LITERAL:
		if (end >= ex->width)
			add_cand(x, end - ex->width, end, (uint32_t)x->c->rs->n + ex->ref);
		break;
	case LW_EX_WINDOW:
		window_hit(x, ex->ref, end);
		break;
	case LW_EX_ASSIGN:
	case LW_EX_TOKEN:
		add_hit(x, id, end);
		break;
	}
	return 0;
}

/* ---- confirming: windows ----------------------------------------------------------- */

static size_t seg_of(const struct lw_classify_ctx *x, unsigned long long off)
{
	size_t a = 0, b = x->nsegs;

	while (b - a > 1) { /* the last segment starting at or before off */
		size_t m = (a + b) / 2;

		if (x->segs[m].at <= off)
			a = m;
		else
			b = m;
	}
	return a;
}

/* Where a match from..to of the joined buffer is in the text; false when it
 * is not a match of the text: across a join, or touching an edge of a
 * window that is not an edge of the text (it saw a truncated
 * neighbourhood: \b, ^, $ decided wrongly). */
static bool seg_match(const struct lw_classify_ctx *x, unsigned long long from,
		      unsigned long long to, size_t *s, size_t *e)
{
	const struct seg *sg = &x->segs[seg_of(x, from)];

	if (from < sg->at || to > sg->at + sg->len)
		return false;
	*s = sg->lo + (size_t)(from - sg->at);
	*e = sg->lo + (size_t)(to - sg->at);
	return !((from == sg->at && sg->lo > 0) || (to == sg->at + sg->len && *e < x->n));
}

static int on_confirm(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		      void *ud)
{
	struct lw_classify_ctx *x = ud;
	const struct lw_group *g = &x->c->groups[x->group];
	size_t s0, e0;

	(void)flags;
	if (seg_match(x, from, to, &s0, &e0) && !(g->width && g->width[id]))
		add_cand(x, s0, e0, g->members[id]);
	return 0;
}

static int cmp_win(const void *a, const void *b)
{
	const struct win *p = a, *q = b;

	if (p->group != q->group)
		return p->group < q->group ? -1 : 1;
	return p->lo < q->lo ? -1 : p->lo > q->lo;
}

static int on_prescan(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		      void *ud)
{
	struct lw_classify_ctx *x = ud;
	const struct lw_group *g = &x->c->groups[x->group];
	size_t s0, e0;

	(void)from;
	(void)flags;
	if (g->width[id]) {
		/* a fixed width: the value is known without a second scan */
		if (to >= g->width[id] && seg_match(x, to - g->width[id], to, &s0, &e0))
			add_cand(x, s0, e0, g->members[id]);
		return 0;
	}
	x->seghit[seg_of(x, to ? to - 1 : 0)] = true;
	return 0;
}

static void add_seg(struct lw_buf *cat, struct seg **segs, size_t *n, size_t *cap, size_t lo,
		    const char *p, size_t len)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*segs = lw_xrealloc(*segs, *cap * sizeof(**segs));
	}
	if (cat->len)
		lw_buf_putc(cat, '\n');
	(*segs)[(*n)++] = (struct seg){lo, len, cat->len};
	lw_buf_put(cat, p, len);
}

/* Scans wins[from, to) (one group, sorted, disjoint) as one buffer: first
 * without start-of-match tracking where the group has that, then with it
 * over the windows that matched. */
static int confirm_group(struct lw_classify_ctx *x, size_t from, size_t to)
{
	const struct lw_group *g = &x->c->groups[x->wins[from].group];
	size_t k = 0;

	lw_buf_reset(&x->cat);
	x->nsegs = 0;
	for (size_t i = from; i < to; i++) {
		const struct win *w = &x->wins[i];

		add_seg(&x->cat, &x->segs, &x->nsegs, &x->capsegs, w->lo, x->text + w->lo,
			w->hi - w->lo);
		x->st.windows++;
		x->st.window_bytes += w->hi - w->lo;
	}
	x->group = x->wins[from].group;
	if (x->cat.len > UINT_MAX)
		return -1;
	if (g->pre) {
		struct seg *t;
		size_t n2 = 0;

		if (x->capseghit < x->nsegs) {
			x->capseghit = x->capsegs;
			x->seghit = lw_xrealloc(x->seghit, x->capseghit * sizeof(*x->seghit));
		}
		memset(x->seghit, 0, x->nsegs * sizeof(*x->seghit));
		if (hs_scan(g->pre, x->cat.p, (unsigned)x->cat.len, 0, x->scratch, on_prescan, x) !=
		    HS_SUCCESS)
			return -1;
		lw_buf_reset(&x->cat2);
		for (k = 0; k < x->nsegs; k++)
			if (x->seghit[k])
				add_seg(&x->cat2, &x->segs2, &n2, &x->capsegs2, x->segs[k].lo,
					x->text + x->segs[k].lo, x->segs[k].len);
		if (!n2 || !g->db)
			return 0;
		/* the windows with a match become the buffer to confirm */
		t = x->segs;
		x->segs = x->segs2;
		x->segs2 = t;
		k = x->capsegs;
		x->capsegs = x->capsegs2;
		x->capsegs2 = k;
		x->nsegs = n2;
		{
			struct lw_buf b = x->cat;

			x->cat = x->cat2;
			x->cat2 = b;
		}
	}
	return hs_scan(g->db, x->cat.p, (unsigned)x->cat.len, 0, x->scratch, on_confirm, x) ==
			       HS_SUCCESS
		       ? 0
		       : -1;
}

static int confirm_windows(struct lw_classify_ctx *x)
{
	const struct lw_classifier *c = x->c;
	size_t *start, k, from;

	for (size_t g = 0; g < c->ngroups; g++)
		if (x->open[g].hi) {
			push_win(x, &x->open[g]);
			x->open[g].hi = 0;
		}
	if (!x->nwins)
		return 0;
	/* by group (counting sort: the windows of a group arrive in text
	 * order, except across report orders, which the sort below fixes) */
	start = x->gcount;
	memset(start, 0, (c->ngroups + 1) * sizeof(*start));
	for (size_t i = 0; i < x->nwins; i++)
		start[x->wins[i].group + 1]++;
	for (size_t g = 0; g < c->ngroups; g++)
		start[g + 1] += start[g];
	if (x->capwins2 < x->nwins) {
		x->capwins2 = x->capwins;
		x->wins2 = lw_xrealloc(x->wins2, x->capwins2 * sizeof(*x->wins2));
	}
	for (size_t i = 0; i < x->nwins; i++)
		x->wins2[start[x->wins[i].group]++] = x->wins[i];
	k = 0;
	from = 0;
	for (size_t i = 0; i <= x->nwins; i++) {
		if (i < x->nwins && x->wins2[i].group == x->wins2[from].group)
			continue;
		for (size_t j = from + 1; j < i; j++)
			if (x->wins2[j].lo < x->wins2[j - 1].lo) {
				qsort(x->wins2 + from, i - from, sizeof(*x->wins2), cmp_win);
				break;
			}
		/* merge overlapping windows of the group */
		for (size_t j = from; j < i; j++) {
			if (j > from && x->wins2[j].lo <= x->wins[k - 1].hi) {
				if (x->wins2[j].hi > x->wins[k - 1].hi)
					x->wins[k - 1].hi = x->wins2[j].hi;
				continue;
			}
			x->wins[k++] = x->wins2[j];
		}
		from = i;
	}
	x->nwins = k;
	from = 0;
	for (size_t i = 1; i <= x->nwins; i++)
		if (i == x->nwins || x->wins[i].group != x->wins[from].group) {
			if (confirm_group(x, from, i) != 0)
				return -1;
			from = i;
		}
	return 0;
}

/* ---- confirming: assignments --------------------------------------------------------- */

static inline bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool is_alnum(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static size_t skip_quote(const char *t, size_t i, size_t lim)
{
	if (i + 1 < lim && t[i] == '\\' && (t[i + 1] == '"' || t[i + 1] == '\''))
		return i + 2; /* JSON-escaped text */
	if (i < lim && (t[i] == '"' || t[i] == '\'' || t[i] == '`'))
		return i + 1;
	return i;
}

/* After a context word: [name tail] [quote] spaces (= | => | : | := | ==)
 * spaces [quote] -> where the value starts. */
static bool assign_start(const char *t, size_t n, size_t k, size_t *vs)
{
	size_t i = k, lim = n - k > 64 ? k + 64 : n, tail = 0;

	while (i < lim && tail < 24 &&
	       (is_alnum(t[i]) || t[i] == '_' || t[i] == '-' || t[i] == '.')) {
		i++;
		tail++;
	}
	i = skip_quote(t, i, lim);
	while (i < lim && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (i >= lim)
		return false;
	if (t[i] == '=') {
		i++;
		if (i < lim && (t[i] == '>' || t[i] == '='))
			i++;
	} else if (t[i] == ':') {
		i++;
		if (i < lim && t[i] == '=')
			i++;
	} else {
		return false;
	}
	while (i < lim && (t[i] == ' ' || t[i] == '\t'))
		i++;
	i = skip_quote(t, i, lim);
	*vs = i;
	return i < n;
}

static int on_anchored(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		       void *ud)
{
	struct lw_classify_ctx *x = ud;

	(void)id;
	(void)from;
	(void)flags;
	if ((size_t)to > x->anchored_end)
		x->anchored_end = (size_t)to;
	return 0;
}

static int confirm_assign(struct lw_classify_ctx *x, const struct hit *h)
{
	const struct lw_classifier *c = x->c;
	uint32_t r = c->ex[h->ex].ref;
	const struct lw_crule *cr = &c->cr[r];
	size_t vs, len;

	if (!assign_start(x->text, x->n, h->end, &vs))
		return 0;
	len = x->n - vs > (size_t)cr->max_len + 1 ? (size_t)cr->max_len + 1 : x->n - vs;
	x->anchored_end = 0;
	if (hs_scan(cr->anchored, x->text + vs, (unsigned)len, 0, x->scratch, on_anchored, x) !=
	    HS_SUCCESS)
		return -1;
	if (!x->anchored_end)
		return 0;
	if (x->anchored_end == len && vs + len < x->n) {
		/* longer than max_length: not this rule's value */
		x->st.candidates++;
		x->st.rejected++;
		x->st.rej_length++;
		return 0;
	}
	add_cand(x, vs, vs + x->anchored_end, r);
	return 0;
}

/* ---- confirming: list tokens -------------------------------------------------------- */

static void confirm_token(struct lw_classify_ctx *x, enum lw_token_kind k, size_t end,
			  size_t *last_s)
{
	const struct lw_classifier *c = x->c;
	uint8_t dg[LW_NORM__N][32];
	bool have[LW_NORM__N] = {false};
	size_t s, e;

	if (!lw_token_bounds(k, x->text, x->n, lw_token_pos(k, x->text, x->n, end), &s, &e))
		return;
	if (*last_s == s + 1)
		return; /* the same token reported twice */
	*last_s = s + 1;
	for (size_t j = 0; j < c->rs->nlists; j++) {
		const struct lw_list *l = &c->rs->lists[j];

		if (!c->list_active[j] || l->token != k)
			continue;
		if (!have[l->normalize]) {
			if (!lw_list_normalize(l->normalize, x->text + s, e - s, &x->norm))
				continue;
			SHA256((const unsigned char *)x->norm.p, x->norm.len, dg[l->normalize]);
			have[l->normalize] = true;
		}
		if (lw_list_lookup(l, dg[l->normalize]))
			add_cand(x, s, e, (uint32_t)(c->rs->n + j));
	}
}

static void digits_token(struct lw_classify_ctx *x, size_t s, size_t e)
{
	const struct lw_classifier *c = x->c;
	uint8_t dg[32];

	if (!lw_list_normalize(LW_NORM_DIGITS, x->text + s, e - s, &x->norm))
		return;
	SHA256((const unsigned char *)x->norm.p, x->norm.len, dg);
	for (size_t j = 0; j < c->rs->nlists; j++)
		if (c->list_active[j] && c->rs->lists[j].token == LW_TOKEN_DIGITS &&
		    lw_list_lookup(&c->rs->lists[j], dg))
			add_cand(x, s, e, (uint32_t)(c->rs->n + j));
}

static void on_run(void *ud, size_t s, size_t e, unsigned nd)
{
	struct lw_classify_ctx *x = ud;
	const struct lw_classifier *c = x->c;

	for (size_t k = 0; k < c->ndgroups; k++) {
		const struct lw_group *g = &c->groups[c->dgroups[k]];

		if (nd >= g->min_digits)
			add_window(x, c->dgroups[k], s > g->before ? s - g->before : 0,
				   x->n - e > g->after ? e + g->after : x->n);
	}
	if (c->token_used[LW_TOKEN_DIGITS] && nd >= LW_TOKEN_DIGITS_MIN &&
	    nd <= LW_TOKEN_DIGITS_MAX)
		digits_token(x, s, e);
}

static int confirm_hits(struct lw_classify_ctx *x)
{
	size_t last_s[LW_TOKEN__N] = {0};

	for (size_t i = 0; i < x->nhits; i++) {
		const struct lw_expr *ex = &x->c->ex[x->hits[i].ex];

		if (ex->kind == LW_EX_ASSIGN) {
			if (confirm_assign(x, &x->hits[i]) != 0)
				return -1;
		} else {
			confirm_token(x, (enum lw_token_kind)ex->ref, x->hits[i].end,
				      &last_s[ex->ref]);
		}
	}
	return 0;
}

/* ---- validating ----------------------------------------------------------------------- */

static bool in_set(enum lw_boundary b, char c, bool after)
{
	switch (b) {
	case LW_BOUND_TOKEN:
		return is_alnum(c) || c == '_' || c == '-';
	case LW_BOUND_WORD:
		return is_alnum(c) || c == '_';
	case LW_BOUND_BASE64:
		return is_alnum(c) || c == '+' || c == '/' || (after && c == '=');
	case LW_BOUND_NONE:
	case LW_BOUND__N:
		break;
	}
	return false;
}

static bool boundary_ok(enum lw_boundary b, const char *t, size_t n, size_t s, size_t e)
{
	if (b == LW_BOUND_NONE)
		return true;
	if (s > 0 && in_set(b, t[s], false) && in_set(b, t[s - 1], false))
		return false;
	if (e < n && in_set(b, t[e - 1], true) && in_set(b, t[e], true))
		return false;
	return true;
}

static bool ci_eq(const char *a, size_t n, const char *b)
{
	return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

static bool ci_has(const char *h, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; i + m <= n; i++)
		if (!strncasecmp(h + i, needle, m))
			return true;
	return false;
}

/* A context word ending within window bytes before s, not glued to letters
 * before it ("tel" is not in "hotel"). */
static bool context_before(const struct lw_rule *r, const char *t, size_t s)
{
	for (size_t w = 0; w < r->context.n; w++) {
		const char *word = r->context.v[w];
		size_t m = strlen(word);
		size_t from = s > r->context_window + m ? s - r->context_window - m : 0;

		for (size_t p = from; p + m <= s; p++)
			if (!strncasecmp(t + p, word, m) && (p == 0 || !is_alpha(t[p - 1])))
				return true;
	}
	return false;
}

static int on_allow(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
		    void *ud)
{
	(void)id;
	(void)from;
	(void)to;
	(void)flags;
	*(bool *)ud = true;
	return 1; /* one match is enough */
}

static size_t prefix_len(const struct lw_rule *r, const char *v, size_t n)
{
	size_t best = 0;

	for (size_t i = 0; i < r->prefixes.n; i++) {
		size_t m = strlen(r->prefixes.v[i]);

		if (m > best && m < n && !memcmp(v, r->prefixes.v[i], m))
			best = m;
	}
	return best;
}

static enum rej check_rule(struct lw_classify_ctx *x, uint32_t ri, size_t s, size_t *e, bool *boost)
{
	const struct lw_classifier *c = x->c;
	const struct lw_rule *r = &c->rs->rules[ri];
	const struct lw_crule *cr = &c->cr[ri];
	const char *t = x->text, *v = t + s;
	size_t len = *e - s, p;

	if (len < cr->min_len || len > cr->max_len)
		return REJ_LENGTH;
	if (!boundary_ok(r->boundary, t, x->n, s, *e))
		return REJ_BOUNDARY;
	if (r->context.n && !r->context_assign) {
		bool found = context_before(r, t, s);

		if (r->context_required && !found)
			return REJ_CONTEXT;
		*boost = !r->context_required && found;
	}
	if (r->allow.n) {
		bool normed = lw_list_normalize(r->normalize, v, len, &x->norm);

		for (size_t i = 0; i < r->allow.n; i++)
			if (ci_eq(v, len, r->allow.v[i]) ||
			    (normed && ci_eq(x->norm.p, x->norm.len, r->allow.v[i])))
				return REJ_ALLOW;
	}
	for (size_t i = 0; i < r->allow_contains.n; i++)
		if (ci_has(v, len, r->allow_contains.v[i]))
			return REJ_ALLOW;
	if (cr->allow_db) {
		bool hit = false;

		if (hs_scan(cr->allow_db, v, (unsigned)len, 0, x->scratch, on_allow, &hit) ==
			    HS_SCAN_TERMINATED ||
		    hit)
			return REJ_ALLOW;
	}
	p = prefix_len(r, v, len);
	if (r->placeholders && lw_val_placeholder(v + p, len - p))
		return REJ_PLACEHOLDER;
	if (r->min_entropy > 0 && lw_val_entropy(v + p, len - p) < r->min_entropy)
		return REJ_ENTROPY;
	for (int k = 0; k < LW_VAL__N; k++)
		if ((r->validators >> k & 1) && !lw_validate((enum lw_validator)k, t, x->n, s, e))
			return REJ_VALIDATOR;
	return REJ_NONE;
}

static bool email_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static enum rej check_list(struct lw_classify_ctx *x, uint32_t li, size_t s, size_t e)
{
	const struct lw_list *l = &x->c->rs->lists[li];
	const char *t = x->text;

	if (l->token != LW_TOKEN_NONE)
		return REJ_NONE; /* whole tokens by construction */
	if (l->normalize == LW_NORM_EMAIL) {
		if ((s > 0 && email_char(t[s - 1])) ||
		    (e < x->n && (is_alnum(t[e]) || t[e] == '-' || t[e] == '_')))
			return REJ_BOUNDARY;
		return REJ_NONE;
	}
	return boundary_ok(LW_BOUND_TOKEN, t, x->n, s, e) ? REJ_NONE : REJ_BOUNDARY;
}

static void count_rej(struct lw_classify_stats *st, enum rej why)
{
	st->rejected++;
	switch (why) {
	case REJ_LENGTH:
		st->rej_length++;
		break;
	case REJ_BOUNDARY:
		st->rej_boundary++;
		break;
	case REJ_CONTEXT:
		st->rej_context++;
		break;
	case REJ_ALLOW:
		st->rej_allowlist++;
		break;
	case REJ_PLACEHOLDER:
		st->rej_placeholder++;
		break;
	case REJ_ENTROPY:
		st->rej_entropy++;
		break;
	case REJ_VALIDATOR:
		st->rej_validator++;
		break;
	case REJ_NONE:
		break;
	}
}

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *p = a, *q = b;

	if (p->t != q->t)
		return p->t < q->t ? -1 : 1;
	if (p->s != q->s)
		return p->s < q->s ? -1 : 1;
	return p->e > q->e ? -1 : p->e < q->e; /* longest first */
}

static void push_occ(struct lw_classify_ctx *x, size_t s, size_t e, uint32_t t, bool boost)
{
	const struct lw_ruleset *rs = x->c->rs;

	GROW(x->occs, x->noccs, x->capoccs);
	x->occs[x->noccs++] = (struct occ){
		.s = s,
		.e = e,
		.t = t,
		.prio = t < rs->n ? rs->rules[t].priority : -1,
		.boost = boost,
	};
}

static void validate_cands(struct lw_classify_ctx *x)
{
	const size_t nrules = x->c->rs->n;
	size_t taken_end = 0;
	uint32_t cur = UINT32_MAX;

	qsort(x->cands, x->ncands, sizeof(*x->cands), cmp_cand);
	for (size_t i = 0; i < x->ncands; i++) {
		const struct cand *cd = &x->cands[i];
		size_t e = cd->e;
		bool boost = false;
		enum rej why;

		if (cd->t != cur) {
			cur = cd->t;
			taken_end = 0;
		}
		x->st.candidates++;
		/* one occurrence, found again: overlapping windows, sliding
		 * fixed-width matches inside a longer run */
		if (cd->s < taken_end) {
			x->st.duplicates++;
			continue;
		}
		why = cd->t < nrules ? check_rule(x, cd->t, cd->s, &e, &boost)
				     : check_list(x, (uint32_t)(cd->t - nrules), cd->s, e);
		if (why != REJ_NONE) {
			count_rej(&x->st, why);
			continue;
		}
		push_occ(x, cd->s, e, cd->t, boost);
		taken_end = e;
	}
}

/* ---- overlaps and findings ------------------------------------------------------------- */

static int cmp_occ(const void *a, const void *b)
{
	const struct occ *p = a, *q = b;

	if (p->s != q->s)
		return p->s < q->s ? -1 : 1;
	if (p->e != q->e)
		return p->e > q->e ? -1 : 1;
	return p->t < q->t ? -1 : p->t > q->t;
}

static const char *target_type(const struct lw_classifier *c, uint32_t t)
{
	return t < c->rs->n ? c->rs->rules[t].type : c->rs->lists[t - c->rs->n].type;
}

/* Does occurrence a win over b where they overlap? Lists neither win nor
 * lose: a canary inside an email is both. */
static bool beats(const struct lw_classifier *c, const struct occ *a, const struct occ *b)
{
	if (a->prio < 0 || b->prio < 0)
		return false;
	if (a->prio != b->prio)
		return a->prio > b->prio;
	if (strcmp(target_type(c, a->t), target_type(c, b->t)) != 0)
		return false;
	/* two rules of one type on one value ("+1 415-555-2671" is an
	 * international and a US number): one finding, the longer */
	if (a->e - a->s != b->e - b->s)
		return a->e - a->s > b->e - b->s;
	return a->t < b->t;
}

static void settle_overlaps(struct lw_classify_ctx *x)
{
	size_t i = 0;

	qsort(x->occs, x->noccs, sizeof(*x->occs), cmp_occ);
	while (i < x->noccs) {
		size_t j = i + 1, end = x->occs[i].e;

		while (j < x->noccs && x->occs[j].s < end) {
			if (x->occs[j].e > end)
				end = x->occs[j].e;
			j++;
		}
		if (j - i > 1 && j - i <= CLUSTER_MAX) {
			for (size_t a = i; a < j; a++)
				for (size_t b = i; b < j; b++) {
					struct occ *oa = &x->occs[a], *ob = &x->occs[b];

					if (a == b || oa->dead || ob->s >= oa->e || oa->s >= ob->e)
						continue;
					if (beats(x->c, ob, oa)) {
						oa->dead = true;
						x->st.suppressed++;
					}
				}
		}
		i = j;
	}
}

static void fingerprint(const struct lw_classify_ctx *x, enum lw_norm norm, const char *v, size_t n,
			struct lw_finding *f)
{
	struct lw_buf b = {0};
	unsigned len = 0;

	if (!x->c->keylen)
		return;
	if (!lw_list_normalize(norm, v, n, &b))
		lw_buf_put(&b, v, n);
	f->has_fp = HMAC(EVP_sha256(), x->c->key, (int)x->c->keylen, (const unsigned char *)b.p,
			 b.len, f->fp, &len) != NULL &&
		    len == 32;
	lw_buf_free(&b);
}

static enum lw_mask_kind list_mask(const struct lw_list *l)
{
	switch (l->token) {
	case LW_TOKEN_EMAIL:
		return LW_MASK_EMAIL;
	case LW_TOKEN_DIGITS:
		return LW_MASK_PHONE;
	case LW_TOKEN_WORD:
		return LW_MASK_WORD;
	case LW_TOKEN_NONE:
	case LW_TOKEN__N:
		break;
	}
	return l->normalize == LW_NORM_EMAIL ? LW_MASK_EMAIL : LW_MASK_SECRET;
}

static void new_finding(struct lw_classify_ctx *x, const struct occ *o, struct lw_finding *f)
{
	const struct lw_ruleset *rs = x->c->rs;
	const char *v = x->text + o->s;
	size_t n = o->e - o->s;

	memset(f, 0, sizeof(*f));
	f->first_off = o->s;
	f->first_len = n;
	if (o->t < rs->n) {
		const struct lw_rule *r = &rs->rules[o->t];

		f->type = r->type;
		f->rule = r->id;
		f->severity = r->severity;
		f->action = r->action;
		f->monitor = r->monitor;
		lw_mask(r->mask, v, n, &r->prefixes, f->sample);
		fingerprint(x, r->normalize, v, n, f);
	} else {
		const struct lw_list *l = &rs->lists[o->t - rs->n];

		f->type = l->type;
		f->rule = l->id;
		f->severity = l->severity;
		f->action = l->action;
		f->monitor = l->monitor;
		f->is_list = true;
		lw_mask(list_mask(l), v, n, NULL, f->sample);
		fingerprint(x, l->normalize, v, n, f);
	}
}

static void make_findings(struct lw_classify_ctx *x, struct lw_findings *out)
{
	const struct lw_ruleset *rs = x->c->rs;
	size_t k = 0;

	for (size_t i = 0; i < x->noccs; i++) {
		const struct occ *o = &x->occs[i];
		struct lw_finding *f;
		int32_t fi;

		if (o->dead)
			continue;
		x->st.validated++;
		fi = x->fidx[o->t];
		if (fi < 0) {
			GROW(out->v, out->n, out->cap);
			if (x->capfm < out->cap) {
				x->capfm = out->cap;
				x->fm = lw_xrealloc(x->fm, x->capfm * sizeof(*x->fm));
			}
			fi = (int32_t)out->n++;
			x->fidx[o->t] = fi;
			x->fm[fi] = (struct fmeta){.t = o->t};
			new_finding(x, o, &out->v[fi]);
		}
		f = &out->v[fi];
		if (f->count < UINT32_MAX)
			f->count++;
		/* a context word near any occurrence: one step more severe */
		if (o->boost && !x->fm[fi].boosted) {
			x->fm[fi].boosted = true;
			if (f->severity < LW_SEV_CRITICAL)
				f->severity = (enum lw_severity)(f->severity + 1);
		}
	}
	/* occurrences are in text order, so findings are in order of their
	 * first occurrence; drop those under their min_count */
	for (size_t i = 0; i < out->n; i++) {
		uint32_t t = x->fm[i].t;
		uint32_t min = t < rs->n ? rs->rules[t].min_count : rs->lists[t - rs->n].min_count;

		x->fidx[t] = -1;
		if (out->v[i].count >= min)
			out->v[k++] = out->v[i];
	}
	out->n = k;
}

/* ---- the scan ------------------------------------------------------------------------- */

static void reset_scan(struct lw_classify_ctx *x, const char *text, size_t n)
{
	x->text = text;
	x->n = n;
	x->bound = BOUND_BASE + n / BOUND_DIV;
	x->dropped = 0;
	x->nwins = x->nhits = x->ncands = x->noccs = 0;
	for (size_t g = 0; g < x->c->ngroups; g++)
		x->open[g].hi = 0;
}

int lw_classify(struct lw_classify_ctx *x, const void *text, size_t n, struct lw_findings *out)
{
	const struct lw_classifier *c = x->c;
	int rc = 0;

	out->n = 0;
	out->dropped = 0;
	x->st.scans++;
	x->st.bytes += n;
	if (!n || (!c->db && !c->ndgroups && !c->token_used[LW_TOKEN_DIGITS]))
		return 0;
	if (n > UINT_MAX) {
		x->st.engine_errors++;
		return -1; /* Vectorscan scans at most 4 GiB at once */
	}
	reset_scan(x, text, n);
	if (c->ndgroups || c->token_used[LW_TOKEN_DIGITS])
		lw_digit_runs(x->text, n, c->min_run, on_run, x);
	if ((c->db &&
	     hs_scan(c->db, x->text, (unsigned)n, 0, x->scratch, on_hit, x) != HS_SUCCESS) ||
	    confirm_windows(x) != 0 || confirm_hits(x) != 0) {
		x->st.engine_errors++;
		rc = -1;
	}
	if (rc == 0) {
		validate_cands(x);
		settle_overlaps(x);
		make_findings(x, out);
	}
	out->dropped = x->dropped;
	x->st.dropped += x->dropped;
	x->text = NULL;
	return rc ? rc : (int)out->n;
}
