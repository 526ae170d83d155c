/*
 * The syslog sink: every printed alert as one RFC 5424 message (facility
 * security/authorization 4 -> auth, severity from the alert's action), sent
 * as a datagram to a local socket (/dev/log) or a UDP collector. Sends never
 * wait: a full or absent receiver costs a counted failure, not the agent's
 * time.
 */
#ifndef LW_ACT_SYSLOG_H
#define LW_ACT_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

struct lw_syslog;

/* target: "udp://HOST:PORT" (IPv4 or [IPv6] literal, or a name), or
 * "unix:PATH" (a datagram socket such as /dev/log). NULL with a reason. */
struct lw_syslog *lw_syslog_open(const char *target, char *err, size_t errlen);
/* One alert (a JSON object, no newline). action block -> severity 2
 * (critical), would_block -> 3 (error), else 4 (warning). ts_ns: realtime.
 * 0 sent, -1 dropped (counted). */
int lw_syslog_send(struct lw_syslog *s, const char *json, size_t n, const char *action,
		   int64_t ts_ns);
uint64_t lw_syslog_sent(const struct lw_syslog *s);
uint64_t lw_syslog_failed(const struct lw_syslog *s);
void lw_syslog_close(struct lw_syslog *s);

#endif
