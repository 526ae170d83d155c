#include "yval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Numbers are plain scalars: "3" and '3' differ in YAML, and a quoted number
 * in a rule file is more likely a mistake than a wish. */
static const char *plain(struct lw_ydoc *y, yaml_node_t *n, const char *key, const char *what)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    lw_ynode_is_null(n)) {
		lw_ydoc_err(y, n, "%s: expected %s", key, what);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

bool lw_yval_u32(struct lw_ydoc *y, yaml_node_t *n, const char *key, uint32_t min, uint32_t max,
		 uint32_t *out)
{
	const char *s = plain(y, n, key, "a whole number");
	unsigned long long v;
	char *end;

	if (!s)
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v < min || v > max) {
		lw_ydoc_err(y, n, "%s: expected a whole number from %u to %u, got '%s'", key, min,
			    max, s);
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

bool lw_yval_int(struct lw_ydoc *y, yaml_node_t *n, const char *key, int min, int max, int *out)
{
	const char *s = plain(y, n, key, "a whole number");
	long long v;
	char *end;

	if (!s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max) {
		lw_ydoc_err(y, n, "%s: expected a whole number from %d to %d, got '%s'", key, min,
			    max, s);
		return false;
	}
	*out = (int)v;
	return true;
}

bool lw_yval_double(struct lw_ydoc *y, yaml_node_t *n, const char *key, double min, double max,
		    double *out)
{
	const char *s = plain(y, n, key, "a number");
	double v;
	char *end;

	if (!s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < min || v > max) {
		lw_ydoc_err(y, n, "%s: expected a number from %g to %g, got '%s'", key, min, max,
			    s);
		return false;
	}
	*out = v;
	return true;
}

bool lw_yval_enum(struct lw_ydoc *y, yaml_node_t *n, const char *key, const char *const *names,
		  size_t nnames, int *out)
{
	const char *s = lw_ydoc_str(y, n, key);
	struct lw_buf b = {0};

	if (!s)
		return false;
	for (size_t i = 0; i < nnames; i++)
		if (!strcmp(s, names[i])) {
			*out = (int)i;
			return true;
		}
	for (size_t i = 0; i < nnames; i++)
		lw_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
	lw_ydoc_err(y, n, "%s: unknown value '%s' (expected %s)", key, s, b.p);
	lw_buf_free(&b);
	return false;
}

void lw_strv_push(struct lw_strv *v, const char *s)
{
	v->v = lw_xrealloc(v->v, (v->n + 1) * sizeof(*v->v));
	v->v[v->n++] = lw_xstrdup(s);
}

bool lw_strv_has(const struct lw_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

void lw_strv_free(struct lw_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

void lw_strv_copy(struct lw_strv *dst, const struct lw_strv *src)
{
	for (size_t i = 0; i < src->n; i++)
		lw_strv_push(dst, src->v[i]);
}

bool lw_yval_strv(struct lw_ydoc *y, yaml_node_t *n, const char *key, struct lw_strv *out)
{
	bool ok = true;

	if (n->type == YAML_SCALAR_NODE) {
		const char *s = lw_ydoc_str(y, n, key);

		if (!s)
			return false;
		if (!lw_strv_has(out, s))
			lw_strv_push(out, s);
		return true;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		lw_ydoc_err(y, n, "%s: expected a string or a list of strings", key);
		return false;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = lw_ydoc_node(y, *it);
		const char *s;

		if (e->type != YAML_SCALAR_NODE) {
			lw_ydoc_err(y, e, "%s: expected a string or a list of strings", key);
			ok = false;
			continue;
		}
		s = lw_ydoc_str(y, e, key);
		if (!s) {
			ok = false;
			continue;
		}
		if (!lw_strv_has(out, s))
			lw_strv_push(out, s);
	}
	return ok;
}
