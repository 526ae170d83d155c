/*
 * A snapshot of the agent's numbers as metric families (name, type, help,
 * labelled samples), written out in the Prometheus text exposition format
 * 0.0.4 (GET /metrics) or as JSON (GET /stats, `leakwatch stats`): one
 * snapshot, two renderings, so both always say the same.
 */
#ifndef LW_METRICS_H
#define LW_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

#define LW_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum lw_metric_type { LW_METRIC_COUNTER, LW_METRIC_GAUGE };

struct lw_metrics;

struct lw_metrics *lw_metrics_new(void);
void lw_metrics_free(struct lw_metrics *m);

/* Starts (or, for a name seen before, continues) a family; the samples
 * added next belong to it. A name that is not a valid metric name is
 * refused (false) and its samples are dropped. */
bool lw_metrics_family(struct lw_metrics *m, const char *name, enum lw_metric_type t,
		       const char *help);
/* One sample of the current family. The variable part is label name/value
 * pairs ending with NULL; label names must be valid ([a-zA-Z_][a-zA-Z0-9_]*,
 * not starting with "__"), values are any text. One label set per family
 * once: the caller aggregates. */
void lw_metrics_u64(struct lw_metrics *m, uint64_t v, ...) __attribute__((sentinel));
void lw_metrics_f64(struct lw_metrics *m, double v, ...) __attribute__((sentinel));

/* # HELP, # TYPE, then the samples of each family, in the order declared. */
void lw_metrics_text(const struct lw_metrics *m, struct lw_buf *out);
/* {"metrics":[{"name","type","help","samples":[{"labels":{...},"value":N}]}]}
 * (NaN and infinities as null). */
void lw_metrics_json(const struct lw_metrics *m, struct lw_buf *out);

/* The pieces, for tests. */
bool lw_metrics_name_ok(const char *name, bool label);
/* Label values: \ " and newline escaped; HELP text: \ and newline. Bytes
 * that are not UTF-8 become U+FFFD. */
void lw_metrics_escape(struct lw_buf *b, const char *s, bool quote);
/* Shortest text that reads back as v; NaN, +Inf, -Inf. */
void lw_metrics_num(struct lw_buf *b, double v);

#endif
