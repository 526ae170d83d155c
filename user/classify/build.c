/* Compiling a ruleset into the classifier's databases (engine.h). */
#include <stdlib.h>
#include <string.h>

#include "classify/classify.h"
#include "classify/engine.h"
#include "classify/hsutil.h"
#include "classify/lists.h"
#include "util/buf.h"

/* The main database's expressions while they are collected. */
struct exprs {
	char **pat;
	unsigned *flags;
	unsigned *ids;
	struct lw_expr *ex;
	/* where each came from, for error messages */
	const char **file;
	int *line;
	const char **what;
	size_t n;
};

static void push_expr(struct exprs *e, char *pat, unsigned flags, struct lw_expr ex,
		      const char *file, int line, const char *what)
{
	size_t n = e->n + 1;

	e->pat = lw_xrealloc(e->pat, n * sizeof(*e->pat));
	e->flags = lw_xrealloc(e->flags, n * sizeof(*e->flags));
	e->ids = lw_xrealloc(e->ids, n * sizeof(*e->ids));
	e->ex = lw_xrealloc(e->ex, n * sizeof(*e->ex));
	e->file = lw_xrealloc(e->file, n * sizeof(*e->file));
	e->line = lw_xrealloc(e->line, n * sizeof(*e->line));
	e->what = lw_xrealloc(e->what, n * sizeof(*e->what));
	e->pat[e->n] = pat;
	e->flags[e->n] = flags;
	e->ids[e->n] = (unsigned)e->n;
	e->ex[e->n] = ex;
	e->file[e->n] = file;
	e->line[e->n] = line;
	e->what[e->n] = what;
	e->n = n;
}

static void exprs_free(struct exprs *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->pat[i]);
	free(e->pat);
	free(e->flags);
	free(e->ids);
	free(e->file);
	free(e->line);
	free(e->what);
	/* e->ex is handed to the classifier */
}

static char *words_regex(const struct lw_strv *w)
{
	struct lw_buf b = {0};

	lw_buf_puts(&b, "(?:");
	for (size_t i = 0; i < w->n; i++) {
		if (i)
			lw_buf_putc(&b, '|');
		lw_hs_escape(&b, w->v[i], strlen(w->v[i]));
	}
	lw_buf_putc(&b, ')');
	return b.p;
}

static unsigned rule_flags(const struct lw_rule *r)
{
	return r->caseless ? HS_FLAG_CASELESS : 0;
}

static hs_database_t *compile_multi(char *const *pats, const unsigned *flags, size_t n,
				    const char *file, int line, const char *what, struct lw_diag *d)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;
	unsigned *ids = lw_xcalloc(n, sizeof(*ids));

	for (size_t i = 0; i < n; i++)
		ids[i] = (unsigned)i;
	if (hs_compile_multi((const char *const *)pats, flags, ids, (unsigned)n, HS_MODE_BLOCK,
			     NULL, &db, &ce) != HS_SUCCESS) {
		lw_diag_add(d, file, line, "%s: cannot compile: %s", what,
			    ce ? ce->message : "unknown error");
		hs_free_compile_error(ce);
		db = NULL;
	}
	free(ids);
	return db;
}

/* A group with its own start-of-match database of one rule's pattern. */
static uint32_t own_group(struct lw_classifier *c, uint32_t rule, uint32_t before, uint32_t after)
{
	struct lw_group *g;

	c->groups = lw_xrealloc(c->groups, (c->ngroups + 1) * sizeof(*c->groups));
	g = &c->groups[c->ngroups];
	memset(g, 0, sizeof(*g));
	g->members = lw_xmalloc(sizeof(*g->members));
	g->members[0] = rule;
	g->nmembers = 1;
	g->before = before;
	g->after = after;
	return (uint32_t)c->ngroups++;
}

static uint32_t trigger_group(struct lw_classifier *c, const char *trigger, uint32_t rule,
			      uint32_t max_len, bool *created)
{
	struct lw_group *g = NULL;
	size_t i;

	for (i = 0; i < c->ngroups; i++)
		if (c->groups[i].trigger && !strcmp(c->groups[i].trigger, trigger)) {
			g = &c->groups[i];
			break;
		}
	*created = !g;
	if (!g) {
		i = own_group(c, rule, 0, 0);
		g = &c->groups[i];
		g->trigger = trigger;
	} else {
		g->members = lw_xrealloc(g->members, (g->nmembers + 1) * sizeof(*g->members));
		g->members[g->nmembers++] = rule;
	}
	/* a value contains the trigger's match or ends just before its end */
	if (max_len + 2 > g->before)
		g->before = max_len + 2;
	if (max_len + 1 > g->after)
		g->after = max_len + 1;
	return (uint32_t)i;
}

static bool setup_rule(struct lw_classifier *c, uint32_t i, struct exprs *e, struct lw_diag *d)
{
	const struct lw_rule *r = &c->rs->rules[i];
	struct lw_crule *cr = &c->cr[i];
	struct lw_hs_info info;
	char err[512];
	unsigned flags = rule_flags(r);

	if (r->action == LW_ACT_OFF || !r->pattern)
		return true;
	if (!lw_hs_info(r->pattern, flags, &info, err, sizeof(err))) {
		lw_diag_add(d, r->pfile ? r->pfile : r->file, r->pfile ? r->pline : r->line,
			    "rule '%s': pattern: %s", r->id, err);
		return false;
	}
	cr->active = true;
	cr->min_len = r->min_length ? r->min_length : info.min_width;
	cr->max_len = r->max_length			  ? r->max_length
		      : info.max_width == LW_HS_UNBOUNDED ? LW_ENGINE_DEFAULT_MAX
							  : info.max_width;
	if (r->allow_regex.n) {
		unsigned *fl = lw_xcalloc(r->allow_regex.n, sizeof(*fl));

		for (size_t k = 0; k < r->allow_regex.n; k++)
			fl[k] = HS_FLAG_SINGLEMATCH;
		cr->allow_db = compile_multi(r->allow_regex.v, fl, r->allow_regex.n, r->file,
					     r->line, "allow_regex", d);
		free(fl);
		if (!cr->allow_db)
			return false;
	}
	if (r->context.n && r->context_required) {
		struct lw_expr ex;

		if (r->context_assign) {
			struct lw_buf b = {0};

			lw_buf_printf(&b, "^(?:%s)", r->pattern);
			cr->anchored =
				compile_multi(&b.p, &flags, 1, r->pfile, r->pline, "pattern", d);
			lw_buf_free(&b);
			if (!cr->anchored)
				return false;
			ex = (struct lw_expr){.kind = LW_EX_ASSIGN, .ref = i};
		} else {
			uint32_t g = own_group(c, i, 1, r->context_window + cr->max_len + 1);

			ex = (struct lw_expr){.kind = LW_EX_WINDOW, .ref = g};
		}
		push_expr(e, words_regex(&r->context), HS_FLAG_CASELESS, ex, r->file, r->line,
			  "context.words");
		return true;
	}
	if (r->trigger && !strcmp(r->trigger, LW_DIGITS_TRIGGER)) {
		/* windows are digit runs and these margins, not hit ends; each
		 * rule alone, so that runs too short for it cost it nothing */
		uint32_t g = own_group(c, i, r->margin, r->margin);

		c->groups[g].digits = true;
		c->groups[g].min_digits = r->min_digits;
		c->dgroups = lw_xrealloc(c->dgroups, (c->ndgroups + 1) * sizeof(*c->dgroups));
		c->dgroups[c->ndgroups++] = g;
		if (r->min_digits < c->min_run)
			c->min_run = r->min_digits;
		return true;
	}
	if (r->trigger) {
		bool created;
		uint32_t g = trigger_group(c, r->trigger, i, cr->max_len, &created);

		if (created)
			push_expr(e, lw_xstrdup(r->trigger), 0,
				  (struct lw_expr){.kind = LW_EX_WINDOW, .ref = g}, r->file,
				  r->line, "trigger");
		return true;
	}
	if (info.min_width == info.max_width && info.max_width != LW_HS_UNBOUNDED) {
		push_expr(e, lw_xstrdup(r->pattern), flags,
			  (struct lw_expr){.kind = LW_EX_DIRECT, .ref = i, .width = info.max_width},
			  r->pfile, r->pline, "pattern");
		return true;
	}
	push_expr(
		e, lw_xstrdup(r->pattern), flags,
		(struct lw_expr){.kind = LW_EX_WINDOW, .ref = own_group(c, i, cr->max_len + 2, 1)},
		r->pfile, r->pline, "pattern");
	return true;
}

static void setup_list(struct lw_classifier *c, uint32_t j, struct exprs *e)
{
	const struct lw_list *l = &c->rs->lists[j];
	unsigned flags = l->normalize == LW_NORM_NONE ? 0 : HS_FLAG_CASELESS;

	if (l->action == LW_ACT_OFF)
		return;
	c->list_active[j] = true;
	if (l->token != LW_TOKEN_NONE) {
		c->token_used[l->token] = true;
		return;
	}
	for (size_t k = 0; k < l->nvalues; k++) {
		struct lw_buf b = {0};
		size_t len = strlen(l->values[k]);

		lw_hs_escape(&b, l->values[k], len);
		push_expr(e, b.p, flags,
			  (struct lw_expr){.kind = LW_EX_LITERAL, .ref = j, .width = (uint32_t)len},
			  l->file, l->line, "values");
	}
}

static bool compile_groups(struct lw_classifier *c, struct lw_diag *d)
{
	for (size_t i = 0; i < c->ngroups; i++) {
		struct lw_group *g = &c->groups[i];
		char **pats = lw_xcalloc(g->nmembers, sizeof(*pats));
		unsigned *flags = lw_xcalloc(g->nmembers, sizeof(*flags));
		const struct lw_rule *r0 = &c->rs->rules[g->members[0]];
		/* a group around its own pattern's hits always has a value in
		 * its windows: nothing to sort out first */
		bool pre = g->digits || g->trigger || r0->context_required;
		size_t varying = 0;

		g->width = lw_xcalloc(g->nmembers, sizeof(*g->width));
		for (size_t k = 0; k < g->nmembers; k++) {
			const struct lw_rule *r = &c->rs->rules[g->members[k]];
			struct lw_hs_info info;
			char err[256];

			pats[k] = r->pattern;
			flags[k] = rule_flags(r);
			if (pre && lw_hs_info(r->pattern, flags[k], &info, err, sizeof(err)) &&
			    info.min_width == info.max_width)
				g->width[k] = info.max_width;
			varying += !g->width[k];
		}
		if (pre) {
			g->pre = compile_multi(pats, flags, g->nmembers, r0->pfile, r0->pline,
					       "pattern", d);
			if (!g->pre)
				goto fail;
		}
		/* start-of-match tracking only for values whose width varies */
		if (varying) {
			for (size_t k = 0; k < g->nmembers; k++)
				flags[k] |= HS_FLAG_SOM_LEFTMOST;
			g->db = compile_multi(
				pats, flags, g->nmembers, r0->pfile, r0->pline,
				g->nmembers > 1 ? "patterns sharing a trigger" : "pattern", d);
			if (!g->db)
				goto fail;
		}
		free(pats);
		free(flags);
		continue;
	fail:
		free(pats);
		free(flags);
		return false;
	}
	return true;
}

struct lw_classifier *lw_classifier_new(const struct lw_ruleset *rs, struct lw_diag *d)
{
	struct lw_classifier *c = lw_xcalloc(1, sizeof(*c));
	struct exprs e = {0};
	size_t before = d->n;
	bool ok = true;

	c->rs = rs;
	c->min_run = UINT32_MAX;
	c->cr = lw_xcalloc(rs->n ? rs->n : 1, sizeof(*c->cr));
	c->list_active = lw_xcalloc(rs->nlists ? rs->nlists : 1, sizeof(*c->list_active));
	for (size_t i = 0; i < rs->n; i++)
		ok &= setup_rule(c, (uint32_t)i, &e, d);
	for (size_t j = 0; j < rs->nlists; j++)
		setup_list(c, (uint32_t)j, &e);
	if (c->token_used[LW_TOKEN_DIGITS] && c->min_run > LW_TOKEN_DIGITS_MIN)
		c->min_run = LW_TOKEN_DIGITS_MIN;
	for (int k = LW_TOKEN_EMAIL; k < LW_TOKEN__N; k++)
		if (c->token_used[k] && lw_token_trigger((enum lw_token_kind)k))
			push_expr(&e, lw_xstrdup(lw_token_trigger((enum lw_token_kind)k)), 0,
				  (struct lw_expr){.kind = LW_EX_TOKEN, .ref = (uint32_t)k},
				  "(built in)", 0, "token");
	ok = ok && compile_groups(c, d);
	if (ok && e.n) {
		hs_compile_error_t *ce = NULL;

		if (hs_compile_multi((const char *const *)e.pat, e.flags, e.ids, (unsigned)e.n,
				     HS_MODE_BLOCK, NULL, &c->db, &ce) != HS_SUCCESS) {
			int k = ce ? ce->expression : -1;

			if (k >= 0 && (size_t)k < e.n)
				lw_diag_add(d, e.file[k], e.line[k], "%s: cannot compile: %s",
					    e.what[k], ce->message);
			else
				lw_diag_add(d, "classifier", 0, "cannot compile the rules: %s",
					    ce ? ce->message : "unknown error");
			hs_free_compile_error(ce);
			c->db = NULL;
			ok = false;
		}
	}
	c->ex = e.ex;
	c->nex = e.n;
	e.ex = NULL;
	exprs_free(&e);
	if (!ok || d->n != before) {
		lw_classifier_free(c);
		return NULL;
	}
	return c;
}

void lw_classifier_free(struct lw_classifier *c)
{
	if (!c)
		return;
	hs_free_database(c->db);
	for (size_t i = 0; i < c->ngroups; i++) {
		hs_free_database(c->groups[i].db);
		hs_free_database(c->groups[i].pre);
		free(c->groups[i].width);
		free(c->groups[i].members);
	}
	free(c->groups);
	free(c->dgroups);
	for (size_t i = 0; c->cr && i < c->rs->n; i++) {
		hs_free_database(c->cr[i].allow_db);
		hs_free_database(c->cr[i].anchored);
	}
	free(c->cr);
	free(c->list_active);
	free(c->ex);
	if (c->key) {
		memset(c->key, 0, c->keylen);
		free(c->key);
	}
	free(c);
}

void lw_classifier_set_key(struct lw_classifier *c, const void *key, size_t n)
{
	if (c->key) {
		memset(c->key, 0, c->keylen);
		free(c->key);
	}
	c->key = NULL;
	c->keylen = 0;
	if (!n)
		return;
	c->key = lw_xmalloc(n);
	memcpy(c->key, key, n);
	c->keylen = n;
}

size_t lw_classifier_expressions(const struct lw_classifier *c)
{
	return c->nex;
}
