#include "act/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

struct sample {
	char **labels; /* name, value, name, value ... */
	size_t nlabels;
	bool is_int;
	uint64_t u;
	double d;
};

struct family {
	char *name, *help;
	enum lw_metric_type type;
	struct sample *s;
	size_t n, cap;
};

struct lw_metrics {
	struct family *f;
	size_t n, cap;
	struct family *cur; /* NULL after a refused name */
};

struct lw_metrics *lw_metrics_new(void)
{
	return lw_xcalloc(1, sizeof(struct lw_metrics));
}

void lw_metrics_free(struct lw_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		struct family *f = &m->f[i];

		for (size_t k = 0; k < f->n; k++) {
			for (size_t l = 0; l < f->s[k].nlabels * 2; l++)
				free(f->s[k].labels[l]);
			free(f->s[k].labels);
		}
		free(f->s);
		free(f->name);
		free(f->help);
	}
	free(m->f);
	free(m);
}

bool lw_metrics_name_ok(const char *name, bool label)
{
	if (!name || !*name || (label && name[0] == '_' && name[1] == '_'))
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (!label && c == ':');

		if (!alpha && (p == name || c < '0' || c > '9'))
			return false;
	}
	return true;
}

bool lw_metrics_family(struct lw_metrics *m, const char *name, enum lw_metric_type t,
		       const char *help)
{
	m->cur = NULL;
	if (!lw_metrics_name_ok(name, false))
		return false;
	for (size_t i = 0; i < m->n; i++) {
		if (!strcmp(m->f[i].name, name)) {
			m->cur = &m->f[i];
			return true;
		}
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 32;
		m->f = lw_xrealloc(m->f, m->cap * sizeof(*m->f));
	}
	m->cur = &m->f[m->n++];
	memset(m->cur, 0, sizeof(*m->cur));
	m->cur->name = lw_xstrdup(name);
	m->cur->help = lw_xstrdup(help ? help : "");
	m->cur->type = t;
	return true;
}

static void add(struct lw_metrics *m, bool is_int, uint64_t u, double d, va_list ap)
{
	struct family *f = m->cur;
	struct sample *s;
	const char *k;

	if (!f)
		return;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 4;
		f->s = lw_xrealloc(f->s, f->cap * sizeof(*f->s));
	}
	s = &f->s[f->n++];
	memset(s, 0, sizeof(*s));
	s->is_int = is_int;
	s->u = u;
	s->d = d;
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		if (!lw_metrics_name_ok(k, true))
			continue; /* a bug of ours: the sample is still worth having */
		s->labels = lw_xrealloc(s->labels, (s->nlabels + 1) * 2 * sizeof(char *));
		s->labels[s->nlabels * 2] = lw_xstrdup(k);
		s->labels[s->nlabels * 2 + 1] = lw_xstrdup(v ? v : "");
		s->nlabels++;
	}
}

void lw_metrics_u64(struct lw_metrics *m, uint64_t v, ...)
{
	va_list ap;

	va_start(ap, v);
	add(m, true, v, 0, ap);
	va_end(ap);
}

void lw_metrics_f64(struct lw_metrics *m, double v, ...)
{
	va_list ap;

	va_start(ap, v);
	add(m, false, 0, v, ap);
	va_end(ap);
}

void lw_metrics_escape(struct lw_buf *b, const char *s, bool quote)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k;

		if (c == '\\' || (quote && c == '"')) {
			lw_buf_putc(b, '\\');
			lw_buf_putc(b, (char)c);
			i++;
			continue;
		}
		if (c == '\n') {
			lw_buf_puts(b, "\\n");
			i++;
			continue;
		}
		if (c < 0x80) {
			lw_buf_putc(b, (char)c);
			i++;
			continue;
		}
		k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (k > 1 && i + k <= n && lw_utf8_valid(s + i, k)) {
			lw_buf_put(b, s + i, k);
			i += k;
		} else {
			lw_buf_puts(b, "\xef\xbf\xbd"); /* the scrape must stay UTF-8 */
			i++;
		}
	}
}

void lw_metrics_num(struct lw_buf *b, double v)
{
	char t[40];

	if (isnan(v)) {
		lw_buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		lw_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* the shortest that reads back the same: 0.1, not 0.10000000000000001 */
	for (int p = 1; p <= 17; p++) {
		snprintf(t, sizeof(t), "%.*g", p, v);
		if (strtod(t, NULL) == v)
			break;
	}
	lw_buf_puts(b, t);
}

static void value(struct lw_buf *b, const struct sample *s)
{
	if (s->is_int)
		lw_buf_printf(b, "%llu", (unsigned long long)s->u);
	else
		lw_metrics_num(b, s->d);
}

void lw_metrics_text(const struct lw_metrics *m, struct lw_buf *out)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct family *f = &m->f[i];

		lw_buf_printf(out, "# HELP %s ", f->name);
		lw_metrics_escape(out, f->help, false);
		lw_buf_printf(out, "\n# TYPE %s %s\n", f->name,
			      f->type == LW_METRIC_COUNTER ? "counter" : "gauge");
		for (size_t k = 0; k < f->n; k++) {
			const struct sample *s = &f->s[k];

			lw_buf_puts(out, f->name);
			for (size_t l = 0; l < s->nlabels; l++) {
				lw_buf_printf(out, "%c%s=\"", l ? ',' : '{', s->labels[l * 2]);
				lw_metrics_escape(out, s->labels[l * 2 + 1], true);
				lw_buf_putc(out, '"');
			}
			lw_buf_puts(out, s->nlabels ? "} " : " ");
			value(out, s);
			lw_buf_putc(out, '\n');
		}
	}
}

static void quote(struct lw_buf *b, const char *s)
{
	lw_json_quote(b, s, strlen(s));
}

void lw_metrics_json(const struct lw_metrics *m, struct lw_buf *out)
{
	lw_buf_puts(out, "{\"metrics\":[");
	for (size_t i = 0; i < m->n; i++) {
		const struct family *f = &m->f[i];

		lw_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		quote(out, f->name);
		lw_buf_puts(out, f->type == LW_METRIC_COUNTER ? ",\"type\":\"counter\",\"help\":"
							      : ",\"type\":\"gauge\",\"help\":");
		quote(out, f->help);
		lw_buf_puts(out, ",\"samples\":[");
		for (size_t k = 0; k < f->n; k++) {
			const struct sample *s = &f->s[k];

			lw_buf_puts(out, k ? ",{\"labels\":{" : "{\"labels\":{");
			for (size_t l = 0; l < s->nlabels; l++) {
				if (l)
					lw_buf_putc(out, ',');
				quote(out, s->labels[l * 2]);
				lw_buf_putc(out, ':');
				quote(out, s->labels[l * 2 + 1]);
			}
			lw_buf_puts(out, "},\"value\":");
			if (!s->is_int && !isfinite(s->d))
				lw_buf_puts(out, "null");
			else
				value(out, s);
			lw_buf_putc(out, '}');
		}
		lw_buf_puts(out, "]}");
	}
	lw_buf_puts(out, "]}\n");
}
