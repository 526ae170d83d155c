/*
 * Typed readers for rule and list files on top of policy/ydoc.h: numbers in
 * a range, one-of-a-set words, and "a string or a list of strings". Each
 * reports its own FILE:LINE error and returns false.
 */
#ifndef LW_CLASSIFY_YVAL_H
#define LW_CLASSIFY_YVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "classify/rules.h"
#include "policy/ydoc.h"

bool lw_yval_u32(struct lw_ydoc *y, yaml_node_t *n, const char *key, uint32_t min, uint32_t max,
		 uint32_t *out);
bool lw_yval_int(struct lw_ydoc *y, yaml_node_t *n, const char *key, int min, int max, int *out);
bool lw_yval_double(struct lw_ydoc *y, yaml_node_t *n, const char *key, double min, double max,
		    double *out);
/* names[i] -> i; the error lists the names. */
bool lw_yval_enum(struct lw_ydoc *y, yaml_node_t *n, const char *key, const char *const *names,
		  size_t nnames, int *out);
/* A string or a list of strings, appended to out (entries already in out are
 * not added twice). Returns false when any entry was bad (the good ones are
 * kept). */
bool lw_yval_strv(struct lw_ydoc *y, yaml_node_t *n, const char *key, struct lw_strv *out);

void lw_strv_push(struct lw_strv *v, const char *s);
bool lw_strv_has(const struct lw_strv *v, const char *s);
void lw_strv_free(struct lw_strv *v);
void lw_strv_copy(struct lw_strv *dst, const struct lw_strv *src);

#endif
