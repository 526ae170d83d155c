#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <hs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "classify/hsutil.h"
#include "classify/lists.h"
#include "classify/yval.h"
#include "policy/ydoc.h"
#include "util/buf.h"

#define ID_MAX 64
#define LITERAL_MIN 4 /* shorter list values would match inside ordinary words */
#define LITERAL_MAX 256
#define WINDOW_MAX 4096
#define LENGTH_MAX 65536

static const char *const sev_names[] = {"low", "medium", "high", "critical"};
static const char *const act_names[] = {"alert", "block", "off"};
static const char *const mask_names[LW_MASK__N] = {"secret", "card", "email", "phone", "iban",
						   "ssn",    "pem",  "uri",   "word",  "full"};
static const char *const norm_names[LW_NORM__N] = {"none", "lower", "digits", "email", "compact"};
static const char *const bound_names[LW_BOUND__N] = {"token", "word", "base64", "none"};
static const char *const val_names[LW_VAL__N] = {
	"luhn",	 "credit_card", "iban",	       "us_ssn",       "jwt",
	"phone", "email",	"private_key", "url_password", "mixed_chars",
};
static const char *const token_names[LW_TOKEN__N] = {"none", "email", "word", "digits"};
static const char *const mode_names[] = {"enforce", "monitor"};

const char *lw_severity_str(enum lw_severity s)
{
	return (unsigned)s < 4 ? sev_names[s] : "unknown";
}

const char *lw_action_str(enum lw_action a)
{
	return (unsigned)a < 3 ? act_names[a] : "unknown";
}

const char *lw_validator_name(enum lw_validator v)
{
	return (unsigned)v < LW_VAL__N ? val_names[v] : "unknown";
}

const char *lw_token_kind_name(enum lw_token_kind k)
{
	return (unsigned)k < LW_TOKEN__N ? token_names[k] : "unknown";
}

const char *lw_norm_name(enum lw_norm n)
{
	return (unsigned)n < LW_NORM__N ? norm_names[n] : "unknown";
}

/* ---- the loader's state ------------------------------------------------------ */

struct user_id {
	char *id;
	char *file;
	int line;
};

struct rload {
	struct lw_ruleset *rs;
	struct lw_diag *d;
	bool builtin;	 /* parsing the built-in pack */
	size_t nbuiltin; /* rules[0, nbuiltin) came from it */
	/* ids defined by the user's files (rules and lists): each at most once */
	struct user_id *ids;
	size_t nids;
};

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > ID_MAX)
		return false;
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
		      *c == '-' || *c == '.'))
			return false;
	return true;
}

/* Records a user id; false (after reporting) when it was defined before. */
static bool claim_id(struct rload *ld, struct lw_ydoc *y, yaml_node_t *n, const char *id)
{
	for (size_t i = 0; i < ld->nids; i++)
		if (!strcmp(ld->ids[i].id, id)) {
			lw_ydoc_err(y, n, "id: duplicate id '%s' (first defined at %s:%d)", id,
				    ld->ids[i].file, ld->ids[i].line);
			return false;
		}
	ld->ids = lw_xrealloc(ld->ids, (ld->nids + 1) * sizeof(*ld->ids));
	ld->ids[ld->nids++] =
		(struct user_id){lw_xstrdup(id), lw_xstrdup(y->file), lw_ynode_line(n)};
	return true;
}

/* ---- rules ----------------------------------------------------------------- */

static void rule_free(struct lw_rule *r)
{
	free(r->id);
	free(r->type);
	free(r->description);
	free(r->pattern);
	free(r->trigger);
	lw_strv_free(&r->context);
	lw_strv_free(&r->allow);
	lw_strv_free(&r->allow_contains);
	lw_strv_free(&r->allow_regex);
	lw_strv_free(&r->prefixes);
	free(r->file);
	free(r->pfile);
	memset(r, 0, sizeof(*r));
}

static char *dup_or_null(const char *s)
{
	return s ? lw_xstrdup(s) : NULL;
}

static void rule_copy(struct lw_rule *dst, const struct lw_rule *src)
{
	*dst = *src;
	dst->id = dup_or_null(src->id);
	dst->type = dup_or_null(src->type);
	dst->description = dup_or_null(src->description);
	dst->pattern = dup_or_null(src->pattern);
	dst->trigger = dup_or_null(src->trigger);
	dst->file = dup_or_null(src->file);
	dst->pfile = dup_or_null(src->pfile);
	memset(&dst->context, 0, sizeof(dst->context));
	memset(&dst->allow, 0, sizeof(dst->allow));
	memset(&dst->allow_contains, 0, sizeof(dst->allow_contains));
	memset(&dst->allow_regex, 0, sizeof(dst->allow_regex));
	memset(&dst->prefixes, 0, sizeof(dst->prefixes));
	lw_strv_copy(&dst->context, &src->context);
	lw_strv_copy(&dst->allow, &src->allow);
	lw_strv_copy(&dst->allow_contains, &src->allow_contains);
	lw_strv_copy(&dst->allow_regex, &src->allow_regex);
	lw_strv_copy(&dst->prefixes, &src->prefixes);
}

static void rule_defaults(struct lw_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->severity = LW_SEV_MEDIUM;
	r->action = LW_ACT_ALERT;
	r->boundary = LW_BOUND_TOKEN;
	r->placeholders = true;
	r->mask = LW_MASK_SECRET;
	r->normalize = LW_NORM_NONE;
	r->priority = 50;
	r->min_count = 1;
	r->context_window = 32;
	r->context_required = true;
	r->min_digits = 7;
	r->margin = 4;
}

static void replace_str(char **dst, const char *s)
{
	free(*dst);
	*dst = lw_xstrdup(s);
}

/* A pattern for the database: compiles, cannot match empty. The start-of-
 * match form is checked once the whole rule is known (check_rule). */
static bool check_regex(struct lw_ydoc *y, yaml_node_t *n, const char *key, const char *re,
			unsigned flags)
{
	struct lw_hs_info info;
	char err[512];

	if (!lw_hs_check(re, flags, false, &info, err, sizeof(err))) {
		lw_ydoc_err(y, n, "%s: invalid pattern: %s", key, err);
		return false;
	}
	return true;
}

enum {
	RK_ID,
	RK_TYPE,
	RK_DESCRIPTION,
	RK_ENABLED,
	RK_SEVERITY,
	RK_ACTION,
	RK_PATTERN,
	RK_CASELESS,
	RK_TRIGGER,
	RK_CONTEXT,
	RK_VALIDATE,
	RK_MIN_ENTROPY,
	RK_MIN_LENGTH,
	RK_MAX_LENGTH,
	RK_BOUNDARY,
	RK_ALLOW,
	RK_ALLOW_CONTAINS,
	RK_ALLOW_REGEX,
	RK_PLACEHOLDERS,
	RK_PREFIXES,
	RK_MASK,
	RK_NORMALIZE,
	RK_PRIORITY,
	RK_MIN_COUNT,
	RK_MIN_DIGITS,
	RK_MARGIN,
	RK_MODE,
	RK_KERNEL,
	RK_N
};

static const char *const rule_keys[RK_N] = {
	"id",		"type",	      "description", "enabled",	  "severity",	    "action",
	"pattern",	"caseless",   "trigger",     "context",	  "validate",	    "min_entropy",
	"min_length",	"max_length", "boundary",    "allow",	  "allow_contains", "allow_regex",
	"placeholders", "prefixes",   "mask",	     "normalize", "priority",	    "min_count",
	"min_digits",	"margin",     "mode",	     "kernel",
};

enum { CK_WORDS, CK_WINDOW, CK_REQUIRED, CK_ASSIGN, CK_N };
static const char *const context_keys[CK_N] = {"words", "window", "required", "assign"};

static bool parse_context(struct lw_ydoc *y, yaml_node_t *n, struct lw_rule *r)
{
	yaml_node_t *v[CK_N], *k[CK_N];
	bool ok = true;
	int b;

	if (!lw_ydoc_map(y, n, "context", context_keys, CK_N, v, k))
		return false;
	if (v[CK_WORDS]) {
		lw_strv_free(&r->context);
		ok &= lw_yval_strv(y, v[CK_WORDS], "context.words", &r->context);
	}
	if (v[CK_WINDOW])
		ok &= lw_yval_u32(y, v[CK_WINDOW], "context.window", 1, WINDOW_MAX,
				  &r->context_window);
	if (v[CK_REQUIRED]) {
		b = lw_ydoc_bool(y, v[CK_REQUIRED], "context.required");
		ok &= b >= 0;
		if (b >= 0)
			r->context_required = b;
	}
	if (v[CK_ASSIGN]) {
		b = lw_ydoc_bool(y, v[CK_ASSIGN], "context.assign");
		ok &= b >= 0;
		if (b >= 0)
			r->context_assign = b;
	}
	if (ok && !r->context.n) {
		lw_ydoc_err(y, n, "context: 'words' is required");
		ok = false;
	}
	return ok;
}

static bool parse_validators(struct lw_ydoc *y, yaml_node_t *n, uint32_t *out)
{
	struct lw_strv names = {0};
	bool ok = lw_yval_strv(y, n, "validate", &names);
	uint32_t bits = 0;

	for (size_t i = 0; i < names.n; i++) {
		size_t j = 0;

		while (j < LW_VAL__N && strcmp(names.v[i], val_names[j]) != 0)
			j++;
		if (j == LW_VAL__N) {
			struct lw_buf b = {0};

			for (size_t m = 0; m < LW_VAL__N; m++)
				lw_buf_printf(&b, "%s%s", m ? ", " : "", val_names[m]);
			lw_ydoc_err(y, n, "validate: unknown validator '%s' (expected %s)",
				    names.v[i], b.p);
			lw_buf_free(&b);
			ok = false;
			continue;
		}
		bits |= 1u << j;
	}
	lw_strv_free(&names);
	if (ok)
		*out = bits;
	return ok;
}

static bool parse_bool(struct lw_ydoc *y, yaml_node_t *n, const char *key, bool *out)
{
	int b = lw_ydoc_bool(y, n, key);

	if (b < 0)
		return false;
	*out = b;
	return true;
}

static bool parse_enum(struct lw_ydoc *y, yaml_node_t *n, const char *key, const char *const *names,
		       size_t nnames, int *out)
{
	return lw_yval_enum(y, n, key, names, nnames, out);
}

/* `mode: enforce | monitor` (rules and lists). */
static bool parse_mode(struct lw_ydoc *y, yaml_node_t *n, bool *monitor)
{
	int e;

	if (!parse_enum(y, n, "mode", mode_names, 2, &e))
		return false;
	*monitor = e == 1;
	return true;
}

/* `kernel: auto | false` (rules and lists). There is no `true`: whether the
 * kernel can decide a rule depends on its pattern and checks (kmatch.h), so
 * a rule can be kept out of the kernel but never forced into it. */
static bool parse_kernel(struct lw_ydoc *y, yaml_node_t *n, bool *no_kernel)
{
	if (n->type == YAML_SCALAR_NODE) {
		const char *v = (const char *)n->data.scalar.value;

		if (!strcmp(v, "auto")) {
			*no_kernel = false;
			return true;
		}
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))) {
			*no_kernel = true;
			return true;
		}
	}
	lw_ydoc_err(y, n, "kernel: expected auto or false");
	return false;
}

/* Applies the keys given in v to r. Returns false on any error. */
static bool apply_rule_keys(struct lw_ydoc *y, yaml_node_t **v, struct lw_rule *r, bool check)
{
	const char *s;
	bool ok = true;
	int e;

	if (v[RK_TYPE]) {
		s = lw_ydoc_str(y, v[RK_TYPE], "type");
		if (s && !id_ok(s)) {
			lw_ydoc_err(y, v[RK_TYPE],
				    "type: '%s' must be 1-64 characters of a-z, 0-9, '_', '-', '.'",
				    s);
			s = NULL;
		}
		ok &= s != NULL;
		if (s)
			replace_str(&r->type, s);
	}
	if (v[RK_DESCRIPTION]) {
		s = lw_ydoc_str(y, v[RK_DESCRIPTION], "description");
		ok &= s != NULL;
		if (s)
			replace_str(&r->description, s);
	}
	if (v[RK_ENABLED]) {
		bool en;

		if (parse_bool(y, v[RK_ENABLED], "enabled", &en)) {
			if (!en)
				r->action = LW_ACT_OFF;
			else if (r->action == LW_ACT_OFF)
				r->action = LW_ACT_ALERT;
		} else {
			ok = false;
		}
	}
	if (v[RK_SEVERITY]) {
		if (parse_enum(y, v[RK_SEVERITY], "severity", sev_names, 4, &e))
			r->severity = (enum lw_severity)e;
		else
			ok = false;
	}
	if (v[RK_ACTION]) {
		if (parse_enum(y, v[RK_ACTION], "action", act_names, 3, &e))
			r->action = (enum lw_action)e;
		else
			ok = false;
	}
	if (v[RK_CASELESS])
		ok &= parse_bool(y, v[RK_CASELESS], "caseless", &r->caseless);
	if (v[RK_PATTERN]) {
		s = lw_ydoc_str(y, v[RK_PATTERN], "pattern");
		/* unchanged (the built-in pack loaded again): nothing to check */
		if (s && !(r->pattern && !strcmp(s, r->pattern))) {
			if (check && !check_regex(y, v[RK_PATTERN], "pattern", s,
						  r->caseless ? HS_FLAG_CASELESS : 0)) {
				s = NULL;
			} else {
				replace_str(&r->pattern, s);
				replace_str(&r->pfile, y->file);
				r->pline = lw_ynode_line(v[RK_PATTERN]);
			}
		}
		ok &= s != NULL;
	}
	if (v[RK_TRIGGER]) {
		s = lw_ydoc_str(y, v[RK_TRIGGER], "trigger");
		if (s && s[0] == '@' && strcmp(s, "@digits") != 0) {
			lw_ydoc_err(y, v[RK_TRIGGER],
				    "trigger: unknown built-in trigger '%s' (expected @digits)", s);
			s = NULL;
		} else if (s && s[0] != '@' && check && !(r->trigger && !strcmp(s, r->trigger)) &&
			   !check_regex(y, v[RK_TRIGGER], "trigger", s, 0)) {
			s = NULL;
		}
		ok &= s != NULL;
		if (s)
			replace_str(&r->trigger, s);
	}
	if (v[RK_CONTEXT])
		ok &= parse_context(y, v[RK_CONTEXT], r);
	if (v[RK_VALIDATE])
		ok &= parse_validators(y, v[RK_VALIDATE], &r->validators);
	if (v[RK_MIN_ENTROPY])
		ok &= lw_yval_double(y, v[RK_MIN_ENTROPY], "min_entropy", 0, 8, &r->min_entropy);
	if (v[RK_MIN_LENGTH])
		ok &= lw_yval_u32(y, v[RK_MIN_LENGTH], "min_length", 1, LENGTH_MAX, &r->min_length);
	if (v[RK_MAX_LENGTH])
		ok &= lw_yval_u32(y, v[RK_MAX_LENGTH], "max_length", 1, LENGTH_MAX, &r->max_length);
	if (v[RK_BOUNDARY]) {
		if (parse_enum(y, v[RK_BOUNDARY], "boundary", bound_names, LW_BOUND__N, &e))
			r->boundary = (enum lw_boundary)e;
		else
			ok = false;
	}
	if (v[RK_ALLOW])
		ok &= lw_yval_strv(y, v[RK_ALLOW], "allow", &r->allow);
	if (v[RK_ALLOW_CONTAINS])
		ok &= lw_yval_strv(y, v[RK_ALLOW_CONTAINS], "allow_contains", &r->allow_contains);
	if (v[RK_ALLOW_REGEX]) {
		struct lw_strv add = {0};

		if (lw_yval_strv(y, v[RK_ALLOW_REGEX], "allow_regex", &add)) {
			for (size_t i = 0; i < add.n; i++) {
				if (check && !lw_strv_has(&r->allow_regex, add.v[i]) &&
				    !check_regex(y, v[RK_ALLOW_REGEX], "allow_regex", add.v[i],
						 0)) {
					ok = false;
					continue;
				}
				if (!lw_strv_has(&r->allow_regex, add.v[i]))
					lw_strv_push(&r->allow_regex, add.v[i]);
			}
		} else {
			ok = false;
		}
		lw_strv_free(&add);
	}
	if (v[RK_PLACEHOLDERS])
		ok &= parse_bool(y, v[RK_PLACEHOLDERS], "placeholders", &r->placeholders);
	if (v[RK_PREFIXES]) {
		lw_strv_free(&r->prefixes);
		ok &= lw_yval_strv(y, v[RK_PREFIXES], "prefixes", &r->prefixes);
	}
	if (v[RK_MASK]) {
		if (parse_enum(y, v[RK_MASK], "mask", mask_names, LW_MASK__N, &e))
			r->mask = (enum lw_mask_kind)e;
		else
			ok = false;
	}
	if (v[RK_NORMALIZE]) {
		if (parse_enum(y, v[RK_NORMALIZE], "normalize", norm_names, LW_NORM__N, &e))
			r->normalize = (enum lw_norm)e;
		else
			ok = false;
	}
	if (v[RK_PRIORITY])
		ok &= lw_yval_int(y, v[RK_PRIORITY], "priority", 0, 100, &r->priority);
	if (v[RK_MIN_COUNT])
		ok &= lw_yval_u32(y, v[RK_MIN_COUNT], "min_count", 1, 1000000, &r->min_count);
	if (v[RK_MIN_DIGITS])
		ok &= lw_yval_u32(y, v[RK_MIN_DIGITS], "min_digits", 1, 64, &r->min_digits);
	if (v[RK_MARGIN])
		ok &= lw_yval_u32(y, v[RK_MARGIN], "margin", 1, 64, &r->margin);
	if (v[RK_MODE])
		ok &= parse_mode(y, v[RK_MODE], &r->monitor);
	if (v[RK_KERNEL])
		ok &= parse_kernel(y, v[RK_KERNEL], &r->no_kernel);
	return ok;
}

/* Consistency of a whole rule, after its keys (and any override) applied. */
static bool rule_consistent(struct lw_ydoc *y, yaml_node_t *item, const struct lw_rule *r)
{
	bool ok = true;

	if (!r->pattern) {
		lw_ydoc_err(y, item, "rule '%s': missing 'pattern'", r->id);
		ok = false;
	}
	if (r->context_assign && !r->context_required) {
		lw_ydoc_err(y, item, "rule '%s': context: assign requires required: true", r->id);
		ok = false;
	}
	if (r->context.n && r->context_required && r->trigger) {
		lw_ydoc_err(y, item,
			    "rule '%s': a rule with required context words cannot have a trigger "
			    "(the words are its trigger)",
			    r->id);
		ok = false;
	}
	for (size_t i = 0; i < r->context.n; i++)
		if (strlen(r->context.v[i]) > 64) {
			lw_ydoc_err(y, item, "rule '%s': context word longer than 64 bytes", r->id);
			ok = false;
		}
	if ((r->min_digits != 7 || r->margin != 4) &&
	    !(r->trigger && !strcmp(r->trigger, "@digits"))) {
		lw_ydoc_err(y, item,
			    "rule '%s': min_digits and margin only apply to trigger '@digits'",
			    r->id);
		ok = false;
	}
	if (r->min_length && r->max_length && r->min_length > r->max_length) {
		lw_ydoc_err(y, item, "rule '%s': min_length %u is larger than max_length %u", r->id,
			    r->min_length, r->max_length);
		ok = false;
	}
	return ok;
}

static struct lw_rule *find_rule(struct lw_ruleset *rs, size_t upto, const char *id)
{
	for (size_t i = 0; i < upto; i++)
		if (!strcmp(rs->rules[i].id, id))
			return &rs->rules[i];
	return NULL;
}

static void parse_rule(struct rload *ld, struct lw_ydoc *y, yaml_node_t *item)
{
	yaml_node_t *v[RK_N], *k[RK_N];
	struct lw_rule r, *target = NULL;
	const char *id;
	bool ok;

	if (!lw_ydoc_map(y, item, "rule", rule_keys, RK_N, v, k))
		return;
	if (!v[RK_ID]) {
		lw_ydoc_err(y, item, "rule: missing 'id'");
		return;
	}
	id = lw_ydoc_str(y, v[RK_ID], "id");
	if (!id)
		return;
	if (!id_ok(id)) {
		lw_ydoc_err(y, v[RK_ID],
			    "id: '%s' must be 1-64 characters of a-z, 0-9, '_', '-', '.'", id);
		return;
	}
	if (ld->builtin) {
		if (find_rule(ld->rs, ld->rs->n, id)) {
			lw_ydoc_err(y, v[RK_ID], "id: duplicate id '%s'", id);
			return;
		}
	} else {
		if (!claim_id(ld, y, v[RK_ID], id))
			return;
		target = find_rule(ld->rs, ld->nbuiltin, id);
	}
	if (target) {
		/* an override: only the keys given change the built-in rule */
		rule_copy(&r, target);
	} else {
		rule_defaults(&r);
		r.id = lw_xstrdup(id);
		r.builtin = ld->builtin;
	}
	ok = apply_rule_keys(y, v, &r, !ld->builtin);
	if (!r.type)
		r.type = lw_xstrdup(r.id);
	ok = ok && rule_consistent(y, item, &r);
	if (!ok) {
		rule_free(&r);
		return;
	}
	if (target && !strcmp(r.pfile, LW_RULES_BUILTIN_NAME) &&
	    (r.caseless != target->caseless || r.context_required != target->context_required ||
	     r.context_assign != target->context_assign || r.context.n != target->context.n ||
	     !r.trigger != !target->trigger ||
	     (r.trigger && strcmp(r.trigger, target->trigger) != 0))) {
		/* the built-in pattern in a new setting: check it there */
		replace_str(&r.pfile, y->file);
		r.pline = lw_ynode_line(item);
	}
	replace_str(&r.file, y->file);
	r.line = lw_ynode_line(item);
	if (target) {
		rule_free(target);
		*target = r;
		return;
	}
	ld->rs->rules = lw_xrealloc(ld->rs->rules, (ld->rs->n + 1) * sizeof(*ld->rs->rules));
	ld->rs->rules[ld->rs->n++] = r;
}

/* ---- lists ------------------------------------------------------------------ */

enum {
	LK_ID,
	LK_TYPE,
	LK_DESCRIPTION,
	LK_ENABLED,
	LK_SEVERITY,
	LK_ACTION,
	LK_NORMALIZE,
	LK_TOKEN,
	LK_VALUES,
	LK_SHA256,
	LK_MIN_COUNT,
	LK_MODE,
	LK_KERNEL,
	LK_N
};

static const char *const list_keys[LK_N] = {
	"id",	 "type",   "description", "enabled",   "severity", "action", "normalize",
	"token", "values", "sha256",	  "min_count", "mode",	   "kernel"};

static bool list_norm_fits(enum lw_token_kind t, enum lw_norm n)
{
	switch (t) {
	case LW_TOKEN_NONE:
		return n == LW_NORM_NONE || n == LW_NORM_LOWER || n == LW_NORM_EMAIL;
	case LW_TOKEN_EMAIL:
		return n == LW_NORM_EMAIL || n == LW_NORM_LOWER || n == LW_NORM_NONE;
	case LW_TOKEN_WORD:
		return n == LW_NORM_NONE || n == LW_NORM_LOWER;
	case LW_TOKEN_DIGITS:
		return n == LW_NORM_DIGITS;
	case LW_TOKEN__N:
		break;
	}
	return false;
}

static bool whole_token(enum lw_token_kind k, const char *v, size_t n)
{
	const char *at = memchr(v, '@', n);
	size_t pos = k == LW_TOKEN_EMAIL ? (at ? (size_t)(at - v) : n) : 0, s, e;

	return lw_token_bounds(k, v, n, pos, &s, &e) && s == 0 && e == n;
}

/* Values are secrets or personal data: messages say which entry, never what
 * it holds. */
static bool add_value(struct lw_ydoc *y, yaml_node_t *n, size_t idx, struct lw_list *l,
		      struct lw_buf *norm)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || lw_ynode_is_null(n) ||
	    strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		lw_ydoc_err(y, n, "values: entry %zu: expected a string", idx + 1);
		return false;
	}
	s = (const char *)n->data.scalar.value;
	if (!lw_list_normalize(l->normalize, s, strlen(s), norm)) {
		lw_ydoc_err(y, n, "values: entry %zu: nothing left after normalize: %s", idx + 1,
			    lw_norm_name(l->normalize));
		return false;
	}
	if (l->token != LW_TOKEN_NONE) {
		uint8_t dg[32];

		/* a value that is not one whole token could never be found */
		if (l->token != LW_TOKEN_DIGITS && !whole_token(l->token, norm->p, norm->len)) {
			lw_ydoc_err(y, n, "values: entry %zu is not a single %s token", idx + 1,
				    lw_token_kind_name(l->token));
			return false;
		}
		if (l->token == LW_TOKEN_DIGITS &&
		    (norm->len < LW_TOKEN_DIGITS_MIN || norm->len > LW_TOKEN_DIGITS_MAX)) {
			lw_ydoc_err(y, n, "values: entry %zu: a digits value has %d to %d digits",
				    idx + 1, LW_TOKEN_DIGITS_MIN, LW_TOKEN_DIGITS_MAX);
			return false;
		}
		lw_list_digest(LW_NORM_NONE, norm->p, norm->len, dg);
		l->digests = lw_xrealloc(l->digests, (l->ndigests + 1) * sizeof(*l->digests));
		memcpy(l->digests[l->ndigests++], dg, 32);
		return true;
	}
	if (norm->len < LITERAL_MIN || norm->len > LITERAL_MAX) {
		lw_ydoc_err(y, n, "values: entry %zu: %zu bytes; values have %d to %d bytes",
			    idx + 1, norm->len, LITERAL_MIN, LITERAL_MAX);
		return false;
	}
	if (l->normalize == LW_NORM_EMAIL && !strchr(norm->p, '@')) {
		lw_ydoc_err(y, n, "values: entry %zu is not an email address", idx + 1);
		return false;
	}
	for (size_t i = 0; i < l->nvalues; i++)
		if (!strcmp(l->values[i], norm->p))
			return true;
	l->values = lw_xrealloc(l->values, (l->nvalues + 1) * sizeof(*l->values));
	l->values[l->nvalues++] = lw_xstrdup(norm->p);
	return true;
}

static bool parse_values(struct lw_ydoc *y, yaml_node_t *n, struct lw_list *l)
{
	struct lw_buf norm = {0};
	bool ok = true;
	size_t idx = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		lw_ydoc_err(y, n, "values: expected a list of strings");
		return false;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++, idx++)
		ok &= add_value(y, lw_ydoc_node(y, *it), idx, l, &norm);
	lw_buf_free(&norm);
	if (!idx) {
		lw_ydoc_err(y, n, "values: empty list");
		ok = false;
	}
	return ok;
}

static bool parse_digests(struct lw_ydoc *y, yaml_node_t *n, struct lw_list *l)
{
	bool ok = true;
	size_t idx = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		lw_ydoc_err(y, n, "sha256: expected a list of hex digests");
		return false;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++, idx++) {
		yaml_node_t *e = lw_ydoc_node(y, *it);
		uint8_t dg[32];

		if (e->type != YAML_SCALAR_NODE ||
		    !lw_hex32((const char *)e->data.scalar.value, dg)) {
			/* not echoed: a mistaken entry may be the raw value */
			lw_ydoc_err(y, e, "sha256: entry %zu is not 64 hex digits", idx + 1);
			ok = false;
			continue;
		}
		l->digests = lw_xrealloc(l->digests, (l->ndigests + 1) * sizeof(*l->digests));
		memcpy(l->digests[l->ndigests++], dg, 32);
	}
	if (!idx) {
		lw_ydoc_err(y, n, "sha256: empty list");
		ok = false;
	}
	return ok;
}

static void parse_list(struct rload *ld, struct lw_ydoc *y, yaml_node_t *item)
{
	yaml_node_t *v[LK_N], *k[LK_N];
	struct lw_list l = {.severity = LW_SEV_HIGH, .action = LW_ACT_ALERT, .min_count = 1};
	const char *s;
	bool ok = true, enabled = true, norm_given = false;
	int e;

	if (!lw_ydoc_map(y, item, "list", list_keys, LK_N, v, k))
		return;
	if (!v[LK_ID]) {
		lw_ydoc_err(y, item, "list: missing 'id'");
		return;
	}
	s = lw_ydoc_str(y, v[LK_ID], "id");
	if (!s)
		return;
	if (!id_ok(s)) {
		lw_ydoc_err(y, v[LK_ID],
			    "id: '%s' must be 1-64 characters of a-z, 0-9, '_', '-', '.'", s);
		return;
	}
	if (find_rule(ld->rs, ld->nbuiltin, s)) {
		lw_ydoc_err(y, v[LK_ID], "id: '%s' is the id of a built-in rule", s);
		return;
	}
	if (!claim_id(ld, y, v[LK_ID], s))
		return;
	l.id = lw_xstrdup(s);
	if (v[LK_TYPE]) {
		s = lw_ydoc_str(y, v[LK_TYPE], "type");
		if (s && !id_ok(s)) {
			lw_ydoc_err(y, v[LK_TYPE],
				    "type: '%s' must be 1-64 characters of a-z, 0-9, '_', '-', '.'",
				    s);
			s = NULL;
		}
		ok &= s != NULL;
		if (s)
			l.type = lw_xstrdup(s);
	}
	if (v[LK_DESCRIPTION]) {
		s = lw_ydoc_str(y, v[LK_DESCRIPTION], "description");
		ok &= s != NULL;
		if (s)
			l.description = lw_xstrdup(s);
	}
	if (v[LK_ENABLED])
		ok &= parse_bool(y, v[LK_ENABLED], "enabled", &enabled);
	if (v[LK_SEVERITY]) {
		if (parse_enum(y, v[LK_SEVERITY], "severity", sev_names, 4, &e))
			l.severity = (enum lw_severity)e;
		else
			ok = false;
	}
	if (v[LK_ACTION]) {
		if (parse_enum(y, v[LK_ACTION], "action", act_names, 3, &e))
			l.action = (enum lw_action)e;
		else
			ok = false;
	}
	if (v[LK_TOKEN]) {
		if (parse_enum(y, v[LK_TOKEN], "token", token_names, LW_TOKEN__N, &e))
			l.token = (enum lw_token_kind)e;
		else
			ok = false;
	}
	if (v[LK_NORMALIZE]) {
		if (parse_enum(y, v[LK_NORMALIZE], "normalize", norm_names, LW_NORM__N, &e)) {
			l.normalize = (enum lw_norm)e;
			norm_given = true;
		} else {
			ok = false;
		}
	}
	if (v[LK_MIN_COUNT])
		ok &= lw_yval_u32(y, v[LK_MIN_COUNT], "min_count", 1, 1000000, &l.min_count);
	if (v[LK_MODE])
		ok &= parse_mode(y, v[LK_MODE], &l.monitor);
	if (v[LK_KERNEL])
		ok &= parse_kernel(y, v[LK_KERNEL], &l.no_kernel);
	if (!ok)
		goto out;
	/* digits are only ever found as tokens; the token kind implies its
	 * natural normalisation */
	if (l.normalize == LW_NORM_DIGITS && l.token == LW_TOKEN_NONE)
		l.token = LW_TOKEN_DIGITS;
	if (!norm_given)
		l.normalize = l.token == LW_TOKEN_EMAIL	   ? LW_NORM_EMAIL
			      : l.token == LW_TOKEN_DIGITS ? LW_NORM_DIGITS
							   : LW_NORM_NONE;
	if (!list_norm_fits(l.token, l.normalize)) {
		lw_ydoc_err(y, v[LK_NORMALIZE] ? v[LK_NORMALIZE] : item,
			    "list '%s': normalize %s does not go with token %s", l.id,
			    lw_norm_name(l.normalize), lw_token_kind_name(l.token));
		ok = false;
		goto out;
	}
	if (!!v[LK_VALUES] == !!v[LK_SHA256]) {
		lw_ydoc_err(y, item, "list '%s': give exactly one of 'values' and 'sha256'", l.id);
		ok = false;
		goto out;
	}
	if (v[LK_SHA256] && l.token == LW_TOKEN_NONE) {
		lw_ydoc_err(y, v[LK_SHA256],
			    "list '%s': sha256 lists need 'token' (email, word or digits): the "
			    "kind of text to hash and look up",
			    l.id);
		ok = false;
		goto out;
	}
	if (v[LK_VALUES])
		ok = parse_values(y, v[LK_VALUES], &l);
	else
		ok = parse_digests(y, v[LK_SHA256], &l);
	lw_list_sort_digests(&l);
out:
	if (!ok) {
		lw_list_free(&l);
		return;
	}
	if (!enabled)
		l.action = LW_ACT_OFF;
	if (!l.type)
		l.type = lw_xstrdup(l.id);
	l.file = lw_xstrdup(y->file);
	l.line = lw_ynode_line(item);
	ld->rs->lists = lw_xrealloc(ld->rs->lists, (ld->rs->nlists + 1) * sizeof(*ld->rs->lists));
	ld->rs->lists[ld->rs->nlists++] = l;
}

/* ---- documents and files ------------------------------------------------------ */

static void on_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud, bool lists)
{
	const char *key = lists ? "lists" : "rules";
	const char *keys[1] = {key};
	struct rload *ld = ud;
	yaml_node_t *v[1], *k[1];

	if (!lw_ydoc_map(y, root, lists ? "list file" : "rule file", keys, 1, v, k))
		return;
	if (!v[0]) {
		/* a document with other keys was reported by lw_ydoc_map */
		if (root->data.mapping.pairs.start == root->data.mapping.pairs.top)
			lw_ydoc_err(y, root, "missing '%s'", key);
		return;
	}
	if (lw_ynode_is_null(v[0]))
		return;
	if (v[0]->type != YAML_SEQUENCE_NODE) {
		lw_ydoc_err(y, v[0], "%s: expected a list", key);
		return;
	}
	for (yaml_node_item_t *it = v[0]->data.sequence.items.start;
	     it < v[0]->data.sequence.items.top; it++) {
		if (lists)
			parse_list(ld, y, lw_ydoc_node(y, *it));
		else
			parse_rule(ld, y, lw_ydoc_node(y, *it));
	}
}

static void on_rules_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud)
{
	on_doc(y, root, ud, false);
}

static void on_lists_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud)
{
	on_doc(y, root, ud, true);
}

/* The forms the classifier compiles a user pattern into: with start of match
 * tracking unless it has a fixed width, anchored for `assign` rules. */
static void check_rule_forms(struct rload *ld, const struct lw_rule *r)
{
	unsigned flags = r->caseless ? HS_FLAG_CASELESS : 0;
	struct lw_hs_info info;
	char err[512];

	if (r->action == LW_ACT_OFF || !r->pattern || !r->pfile)
		return;
	if (!lw_hs_info(r->pattern, flags, &info, err, sizeof(err)))
		return; /* reported when read */
	if (r->context_assign) {
		struct lw_buf b = {0};

		lw_buf_printf(&b, "^(?:%s)", r->pattern);
		if (!lw_hs_check(b.p, flags, false, &info, err, sizeof(err)))
			lw_diag_add(ld->d, r->pfile, r->pline, "pattern: invalid pattern: %s", err);
		lw_buf_free(&b);
		return;
	}
	if (info.min_width == info.max_width && !r->trigger &&
	    !(r->context.n && r->context_required))
		return;
	if (!lw_hs_check(r->pattern, flags, true, &info, err, sizeof(err)))
		lw_diag_add(ld->d, r->pfile, r->pline, "pattern: %s", err);
}

/* Loads every YAML file of dir in byte order of names; a missing dir is
 * fine (a policy directory need not have rules or lists). */
static void load_dir(struct rload *ld, const char *dir, bool lists)
{
	size_t n;
	char **names = lw_ydoc_list_dir(dir, NULL, true, &n, ld->d);

	for (size_t i = 0; i < n; i++) {
		char *path = lw_path_join(dir, names[i]);
		size_t first = ld->d->n;

		lw_ydoc_each_file(path, ld->d, lists ? on_lists_doc : on_rules_doc, ld);
		/* the user's patterns, in every form the classifier will need */
		for (size_t k = 0; !lists && k < ld->rs->n; k++)
			if (ld->rs->rules[k].pfile && !strcmp(ld->rs->rules[k].pfile, path))
				check_rule_forms(ld, &ld->rs->rules[k]);
		lw_diag_sort_lines(ld->d, first);
		free(path);
		free(names[i]);
	}
	free(names);
}

int lw_rules_load(struct lw_ruleset *rs, const char *dir, struct lw_diag *d)
{
	struct rload ld = {.rs = rs, .d = d, .builtin = true};
	size_t before = d->n;

	lw_ydoc_each_buffer(LW_RULES_BUILTIN_NAME, lw_rules_builtin_yaml, lw_rules_builtin_size(),
			    d, on_rules_doc, &ld);
	ld.nbuiltin = rs->n;
	ld.builtin = false;
	if (dir) {
		struct stat st;

		if (stat(dir, &st) != 0) {
			lw_diag_add(d, dir, 0, "cannot open directory: %s", strerror(errno));
		} else if (!S_ISDIR(st.st_mode)) {
			lw_diag_add(d, dir, 0, "not a directory");
		} else {
			char *sub = lw_path_join(dir, "rules");

			load_dir(&ld, sub, false);
			free(sub);
			sub = lw_path_join(dir, "lists");
			load_dir(&ld, sub, true);
			free(sub);
		}
	}
	for (size_t i = 0; i < ld.nids; i++) {
		free(ld.ids[i].id);
		free(ld.ids[i].file);
	}
	free(ld.ids);
	return (int)(d->n - before);
}

void lw_rules_free(struct lw_ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->rules[i]);
	free(rs->rules);
	for (size_t i = 0; i < rs->nlists; i++)
		lw_list_free(&rs->lists[i]);
	free(rs->lists);
	memset(rs, 0, sizeof(*rs));
}
