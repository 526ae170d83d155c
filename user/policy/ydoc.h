/*
 * The thin layer over libyaml shared by the catalog and policy loaders:
 * whole documents (libyaml's document API) with the line of every node, and
 * strict readers for the few shapes the schemas use. Every reader reports
 * its own errors as FILE:LINE, so the loaders only say what they expect.
 *
 * libyaml resolves no implicit types (every untagged scalar is a string), so
 * "is this a null / boolean / number" is decided here from the plain scalar
 * text, the way YAML 1.2's core schema does; quoted scalars are always
 * strings.
 */
#ifndef LW_YDOC_H
#define LW_YDOC_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "policy/diag.h"

struct lw_ydoc {
	const char *file;
	yaml_document_t *doc;
	struct lw_diag *d;
};

/* Calls fn for every non-empty document of the file, in order. Unreadable
 * files and YAML syntax errors are reported to d; the documents before a
 * syntax error have been handed to fn by then. Returns -1 when the file
 * could not be read or parsed to the end, else 0. */
int lw_ydoc_each_file(const char *path, struct lw_diag *d,
		      void (*fn)(struct lw_ydoc *y, yaml_node_t *root, void *ud), void *ud);

/* The same for a document held in memory (the built-in rule pack); name is
 * what messages call it. */
int lw_ydoc_each_buffer(const char *name, const void *buf, size_t n, struct lw_diag *d,
			void (*fn)(struct lw_ydoc *y, yaml_node_t *root, void *ud), void *ud);

/* dir/name, with one '/' between them (malloc'd). */
char *lw_path_join(const char *dir, const char *name);

/* The YAML files of dir (*.yaml, *.yml; dot files are editor locks and
 * backups, never configuration), sorted bytewise so the order does not
 * depend on the locale, minus those skip(name) rejects (skip may be NULL).
 * A directory that does not exist is an error unless missing_ok. Returns
 * the names (free each and the array; NULL when none) and sets *count. */
char **lw_ydoc_list_dir(const char *dir, bool (*skip)(const char *name), bool missing_ok,
			size_t *count, struct lw_diag *d);

void lw_ydoc_err(struct lw_ydoc *y, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int lw_ynode_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

/* A plain scalar "", "~" or "null" (also what `key:` with no value gives). */
bool lw_ynode_is_null(const yaml_node_t *n);

/* Reads a mapping against a fixed set of keys: vals[i] / keynodes[i] get the
 * value / key node of keys[i], NULL when absent. Reports non-scalar keys,
 * unknown keys and duplicate keys. `what` names the mapping in messages.
 * Returns false (after reporting) when m is not a mapping. */
bool lw_ydoc_map(struct lw_ydoc *y, yaml_node_t *m, const char *what, const char *const *keys,
		 size_t nkeys, yaml_node_t **vals, yaml_node_t **keynodes);

/* A scalar as a NUL-terminated string, or NULL after reporting "KEY: expected
 * a string" (null, sequence, mapping, or an embedded NUL byte). */
const char *lw_ydoc_str(struct lw_ydoc *y, yaml_node_t *n, const char *key);
/* true/false (plain scalars only); -1 after reporting. */
int lw_ydoc_bool(struct lw_ydoc *y, yaml_node_t *n, const char *key);

yaml_node_t *lw_ydoc_node(struct lw_ydoc *y, int index);

#endif
