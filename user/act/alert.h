/*
 * Alerts: what the agent found in a request to an AI provider, as one JSON
 * line. An alert never carries a raw value: findings hold masked samples
 * and keyed fingerprints only, and the request path loses its query (Gemini
 * sends its API key as ?key=).
 */
#ifndef LW_ALERT_H
#define LW_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "classify/classify.h"
#include "decode/prompt.h"
#include "util/buf.h"
#include "util/json.h"

struct lw_alert {
	const char *ts;
	const char *hostname; /* this machine; "host" is the provider's name */
	const char *service, *policy, *comm, *exe, *cgroup;
	uint32_t pid;
	const char *provider, *host, *dst;
	const char *method, *path; /* path is written without its query */
	int http_version;
	const char *api, *model;
	const char *reason;    /* classified_data */
	const char *action;    /* alert | block | would_block */
	const char *stage;     /* kernel | agent: who refused (or would refuse) it; NULL */
	int request_left;      /* block: 1 the request had left, 0 it never did; -1 n/a */
	uint32_t quarantine_s; /* > 0: (service, provider) refused for this long */
	bool incomplete;       /* the request was not seen whole */
	const struct lw_findings *findings;
	const struct lw_prompt *prompt; /* names each finding's field; may be NULL */
};

/* Appends the alert as one JSON line ending in '\n'. */
void lw_alert_json(struct lw_buf *b, const struct lw_alert *a);

/* key: [{"type","rule","count","severity","action","sample"[,"field"][,"fingerprint"]}] */
void lw_findings_json(struct lw_json *j, const char *key, const struct lw_findings *f,
		      const struct lw_prompt *p);

/* A 32-byte fingerprint or digest as alerts and lists show it: 64 lowercase
 * hex digits. */
#define LW_FP_HEX_LEN 65
void lw_fp_hex(const uint8_t fp[32], char out[LW_FP_HEX_LEN]);

/* The strongest action the findings ask for: LW_ACT_BLOCK if any does. */
enum lw_action lw_findings_action(const struct lw_findings *f);

#endif
