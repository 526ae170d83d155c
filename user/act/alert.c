#include <string.h>

#include "act/alert.h"

void lw_fp_hex(const uint8_t fp[32], char out[LW_FP_HEX_LEN])
{
	static const char hexd[] = "0123456789abcdef";

	for (size_t k = 0; k < 32; k++) {
		out[2 * k] = hexd[fp[k] >> 4];
		out[2 * k + 1] = hexd[fp[k] & 15];
	}
	out[64] = 0;
}

void lw_findings_json(struct lw_json *j, const char *key, const struct lw_findings *f,
		      const struct lw_prompt *p)
{
	lw_json_key(j, key);
	lw_buf_putc(j->b, '[');
	for (size_t i = 0; i < f->n; i++) {
		const struct lw_finding *x = &f->v[i];
		const struct lw_prompt_seg *seg = p ? lw_prompt_seg_at(p, x->first_off) : NULL;
		struct lw_json o;

		if (i)
			lw_buf_putc(j->b, ',');
		lw_json_begin(&o, j->b);
		lw_json_str(&o, "type", x->type);
		lw_json_str(&o, "rule", x->rule);
		lw_json_u64(&o, "count", x->count);
		lw_json_str(&o, "severity", lw_severity_str(x->severity));
		lw_json_str(&o, "action", lw_action_str(x->action));
		lw_json_str(&o, "sample", x->sample);
		if (seg)
			lw_json_str(&o, "field", seg->field);
		if (x->has_fp) {
			char hex[LW_FP_HEX_LEN];

			lw_fp_hex(x->fp, hex);
			lw_json_str(&o, "fingerprint", hex);
		}
		lw_json_end(&o);
	}
	lw_buf_putc(j->b, ']');
}

enum lw_action lw_findings_action(const struct lw_findings *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].action == LW_ACT_BLOCK)
			return LW_ACT_BLOCK;
	return LW_ACT_ALERT;
}

void lw_alert_json(struct lw_buf *b, const struct lw_alert *a)
{
	const char *path = a->path ? a->path : "";
	struct lw_json j;

	lw_json_begin(&j, b);
	lw_json_str(&j, "event", "alert");
	lw_json_str(&j, "ts", a->ts);
	if (a->hostname)
		lw_json_str(&j, "hostname", a->hostname);
	lw_json_str(&j, "service", a->service);
	lw_json_str(&j, "policy", a->policy);
	lw_json_u64(&j, "pid", a->pid);
	lw_json_str(&j, "comm", a->comm);
	lw_json_str(&j, "exe", a->exe);
	lw_json_str(&j, "cgroup", a->cgroup);
	lw_json_str(&j, "provider", a->provider);
	lw_json_str(&j, "host", a->host);
	lw_json_str(&j, "dst", a->dst);
	lw_json_str(&j, "method", a->method);
	lw_json_strn(&j, "path", path, strcspn(path, "?#"));
	lw_json_u64(&j, "http", (uint64_t)a->http_version);
	lw_json_str(&j, "api", a->api);
	lw_json_str(&j, "model", a->model);
	lw_json_str(&j, "reason", a->reason);
	lw_json_str(&j, "action", a->action);
	if (a->stage)
		lw_json_str(&j, "stage", a->stage);
	if (a->request_left >= 0)
		lw_json_bool(&j, "request_left", a->request_left > 0);
	if (a->quarantine_s)
		lw_json_u64(&j, "quarantine_s", a->quarantine_s);
	lw_json_bool(&j, "incomplete", a->incomplete);
	lw_findings_json(&j, "findings", a->findings, a->prompt);
	lw_json_end(&j);
	lw_buf_putc(b, '\n');
}
