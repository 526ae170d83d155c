#include "ydoc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"

/* Policy files are written by people; anything this large is a mistake (or
 * not a policy file) and is refused before libyaml builds a tree of it. */
#define YDOC_MAX_BYTES (4u << 20)

static int read_file(const char *path, struct lw_buf *b, struct lw_diag *d)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		lw_diag_add(d, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		lw_diag_add(d, path, 0, "not a regular file");
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n;

		if (b->len >= YDOC_MAX_BYTES) {
			lw_diag_add(d, path, 0, "larger than %u bytes", YDOC_MAX_BYTES);
			close(fd);
			return -1;
		}
		lw_buf_reserve(b, 65536);
		n = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			lw_diag_add(d, path, 0, "cannot read: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
	}
	b->p[b->len] = 0;
	close(fd);
	return 0;
}

static void syntax_error(const char *path, const yaml_parser_t *p, const struct lw_buf *b,
			 struct lw_diag *d)
{
	const char *problem = p->problem ? p->problem : "unknown error";
	int line = (int)p->problem_mark.line + 1;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		lw_diag_add(d, path, 0, "out of memory while parsing");
		return;
	case YAML_READER_ERROR:
		/* the reader reports a byte offset, not a mark */
		line = 1;
		for (size_t i = 0; i < p->problem_offset && i < b->len; i++)
			line += b->p[i] == '\n';
		lw_diag_add(d, path, line, "YAML error: %s", problem);
		return;
	default:
		break;
	}
	if (p->context)
		lw_diag_add(d, path, line, "YAML syntax error: %s (%s at line %d)", problem,
			    p->context, (int)p->context_mark.line + 1);
	else
		lw_diag_add(d, path, line, "YAML syntax error: %s", problem);
}

int lw_ydoc_each_buffer(const char *name, const void *buf, size_t n, struct lw_diag *d,
			void (*fn)(struct lw_ydoc *y, yaml_node_t *root, void *ud), void *ud)
{
	const struct lw_buf b = { .p = (char *)buf, .len = n, .cap = n };
	yaml_parser_t p;
	int rc = 0;

	if (n > YDOC_MAX_BYTES) {
		lw_diag_add(d, name, 0, "larger than %u bytes", YDOC_MAX_BYTES);
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		lw_diag_add(d, name, 0, "out of memory while parsing");
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, n);
	for (;;) {
		yaml_document_t doc;
		yaml_node_t *root;

		if (!yaml_parser_load(&p, &doc)) {
			/* the loader has freed the partial document */
			syntax_error(name, &p, &b, d);
			rc = -1;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) { /* end of the stream */
			yaml_document_delete(&doc);
			break;
		}
		/* "---" with nothing after it, or a file of comments: nothing to check */
		if (!lw_ynode_is_null(root)) {
			struct lw_ydoc y = { .file = name, .doc = &doc, .d = d };

			fn(&y, root, ud);
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&p);
	return rc;
}

int lw_ydoc_each_file(const char *path, struct lw_diag *d,
		      void (*fn)(struct lw_ydoc *y, yaml_node_t *root, void *ud), void *ud)
{
	struct lw_buf b = { 0 };
	int rc;

	if (read_file(path, &b, d) != 0) {
		lw_buf_free(&b);
		return -1;
	}
	rc = lw_ydoc_each_buffer(path, b.p, b.len, d, fn, ud);
	lw_buf_free(&b);
	return rc;
}

void lw_ydoc_err(struct lw_ydoc *y, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lw_diag_add(y->d, y->file, n ? lw_ynode_line(n) : 0, "%s", msg);
}

yaml_node_t *lw_ydoc_node(struct lw_ydoc *y, int index)
{
	return yaml_document_get_node(y->doc, index);
}

bool lw_ynode_is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !v[0] || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return lw_ynode_is_null(n) ? "nothing" : "a scalar";
	}
}

bool lw_ydoc_map(struct lw_ydoc *y, yaml_node_t *m, const char *what, const char *const *keys,
		 size_t nkeys, yaml_node_t **vals, yaml_node_t **keynodes)
{
	for (size_t i = 0; i < nkeys; i++)
		vals[i] = keynodes[i] = NULL;
	if (m->type != YAML_MAPPING_NODE) {
		lw_ydoc_err(y, m, "%s: expected a mapping, got %s", what, kind_name(m));
		return false;
	}
	for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = lw_ydoc_node(y, pr->key);
		yaml_node_t *v = lw_ydoc_node(y, pr->value);
		const char *ks;
		size_t i;

		if (k->type != YAML_SCALAR_NODE) {
			lw_ydoc_err(y, k, "%s: keys must be strings", what);
			continue;
		}
		ks = (const char *)k->data.scalar.value;
		for (i = 0; i < nkeys && strcmp(keys[i], ks) != 0; i++)
			;
		if (i == nkeys) {
			struct lw_buf expect = { 0 };

			for (size_t j = 0; j < nkeys; j++)
				lw_buf_printf(&expect, "%s%s", j ? ", " : "", keys[j]);
			lw_ydoc_err(y, k, "%s: unknown key '%s' (expected %s)", what, ks,
				    expect.p);
			lw_buf_free(&expect);
			continue;
		}
		if (vals[i]) {
			lw_ydoc_err(y, k, "%s: duplicate key '%s' (first at line %d)", what, ks,
				    lw_ynode_line(keynodes[i]));
			continue;
		}
		vals[i] = v;
		keynodes[i] = k;
	}
	return true;
}

const char *lw_ydoc_str(struct lw_ydoc *y, yaml_node_t *n, const char *key)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || lw_ynode_is_null(n)) {
		lw_ydoc_err(y, n, "%s: expected a string, got %s", key, kind_name(n));
		return NULL;
	}
	v = (const char *)n->data.scalar.value;
	if (!v[0]) {
		lw_ydoc_err(y, n, "%s: empty", key);
		return NULL;
	}
	if (strlen(v) != n->data.scalar.length) {
		lw_ydoc_err(y, n, "%s: contains a NUL byte", key);
		return NULL;
	}
	return v;
}

int lw_ydoc_bool(struct lw_ydoc *y, yaml_node_t *n, const char *key)
{
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		const char *v = (const char *)n->data.scalar.value;

		if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
			return 1;
		if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
			return 0;
	}
	lw_ydoc_err(y, n, "%s: expected true or false", key);
	return -1;
}

char *lw_path_join(const char *dir, const char *name)
{
	struct lw_buf b = { 0 };
	size_t n = strlen(dir);

	lw_buf_printf(&b, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
	return b.p;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_file_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

char **lw_ydoc_list_dir(const char *dir, bool (*skip)(const char *name), bool missing_ok,
			size_t *count, struct lw_diag *d)
{
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	DIR *dh = opendir(dir);

	*count = 0;
	if (!dh) {
		if (!missing_ok || errno != ENOENT)
			lw_diag_add(d, dir, 0, "cannot open directory: %s", strerror(errno));
		return NULL;
	}
	while ((e = readdir(dh))) {
		if (!yaml_file_name(e->d_name) || (skip && skip(e->d_name)))
			continue;
		names = lw_xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = lw_xstrdup(e->d_name);
	}
	closedir(dh);
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	*count = n;
	return names;
}
