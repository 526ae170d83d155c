/*
 * The webhook sink: every printed alert POSTed as JSON to an HTTP endpoint
 * (a SIEM collector, a chat bridge) by a worker thread. The agent only
 * queues: a slow or absent receiver never holds it up. Failed deliveries are
 * retried with exponential backoff; what is dropped (queue full, retries
 * exhausted, still queued at exit) is counted.
 */
#ifndef LW_ACT_WEBHOOK_H
#define LW_ACT_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define LW_WEBHOOK_QUEUE 1024 /* alerts waiting at most */
#define LW_WEBHOOK_TRIES 6    /* attempts per alert: 0.5 s, 1, 2, 4, 8 s apart */

struct lw_webhook_stats {
	uint64_t sent, retries, failed /* retries exhausted */, dropped /* queue full, exit */;
};

struct lw_webhook;

/* url: http://HOST[:PORT]/PATH (no TLS: run a local forwarder for https).
 * Starts the worker. NULL with a reason in err. */
struct lw_webhook *lw_webhook_open(const char *url, char *err, size_t errlen);
/* Queue one alert (copied). Never blocks. */
void lw_webhook_post(struct lw_webhook *w, const char *json, size_t n);
void lw_webhook_stats(struct lw_webhook *w, struct lw_webhook_stats *st);
/* Give the worker up to linger_ms to deliver what is queued, then stop it;
 * the rest counts as dropped. The last counters go to *final (may be NULL). */
void lw_webhook_close(struct lw_webhook *w, int linger_ms, struct lw_webhook_stats *final);

#endif
