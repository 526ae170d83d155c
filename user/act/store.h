/*
 * The alert store: every alert the agent prints, kept in SQLite so a
 * security team can review, acknowledge and export them later. Repeats of
 * one alert (same dedupe key, close in time) become one row with a count,
 * so a service that leaks on every request does not bury everything else.
 *
 * One writer (the agent) and any number of readers (`leakwatch alerts`):
 * WAL mode lets readers work while the agent writes. The JSON stored is the
 * alert line as the agent printed it: already masked, never a raw value.
 * docs/alerts.md describes the file, the schema and the dedupe rule.
 */
#ifndef LW_STORE_H
#define LW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_STORE_DEFAULT_PATH "/var/lib/leakwatch/leakwatch.db"
/* PRAGMA user_version of the schema this code writes; a newer file is refused */
#define LW_STORE_SCHEMA_VERSION 1
/* lw_store_get / lw_store_ack: no alert with that id (0 ok, -1 error) */
#define LW_STORE_NOTFOUND 1

struct lw_store;

/* Opens (readonly: for reading only, never creating anything) or creates the
 * store at path. Read-write: creates missing parent directories with mode
 * 0700 and the file with 0600, and tightens an existing file that is looser.
 * Either way refuses a symlink or anything but a regular file, and a schema
 * newer than LW_STORE_SCHEMA_VERSION. On failure returns NULL with a message
 * naming path in err. */
struct lw_store *lw_store_open(const char *path, bool readonly, char *err, size_t errlen);
void lw_store_close(struct lw_store *s);
/* The last error on s, for messages; never NULL. */
const char *lw_store_errmsg(const struct lw_store *s);
/* The machine name recorded with each new alert (the alert JSON's "host" is
 * the provider's host name). Default: gethostname() at open. */
void lw_store_set_hostname(struct lw_store *s, const char *hostname);

/* Records one alert line (json[0..n), a JSON object; a trailing newline is
 * dropped) seen at ts_ns (ns since the epoch). If window_s > 0 and an open
 * alert with the same dedupe_key was last seen within window_s seconds of
 * ts_ns, that row's count goes up by one and *merged is true; otherwise a
 * new row. dedupe_key NULL: never merged. One transaction; 0 or -1. */
int lw_store_add(struct lw_store *s, const char *json, size_t n, const char *dedupe_key,
		 int64_t ts_ns, uint32_t window_s, int64_t *id, bool *merged);

/* A dedupe key for an alert line: service, provider, action, stage, reason
 * and the sorted finding types, as a compact JSON array (unambiguous, and
 * readable in the database). malloc'd; NULL if json is not an object. */
char *lw_store_dedupe_key(const char *json, size_t n);

/* Sets status acked, acked_ts = now_ns and the note (NULL keeps the old
 * one). 0, LW_STORE_NOTFOUND or -1. */
int lw_store_ack(struct lw_store *s, int64_t id, const char *note, int64_t now_ns);

/* One row. Strings are NULL when the column is; they stay valid until the
 * next lw_store_next / lw_store_get on the same iterator / store. */
struct lw_store_alert {
	int64_t id;
	int64_t first_ts, last_ts, acked_ts; /* ns since the epoch; acked_ts 0: never */
	int64_t count;
	const char *dedupe_key;
	const char *status; /* open | acked */
	const char *note;
	const char *hostname; /* the machine that recorded it */
	const char *service, *provider, *host, *action, *stage, *reason;
	const char *json; /* the alert line as printed, without its newline */
};

struct lw_store_filter {
	int64_t since_ns;			 /* last_ts >= since_ns; 0: any */
	const char *service, *provider, *status; /* exact match; NULL: any */
	uint32_t limit;				 /* 0: no limit */
	bool oldest_first;			 /* by id ascending; else last_ts descending */
};

struct lw_store_iter;

/* Alerts matching f (NULL: all), newest last seen first unless
 * f->oldest_first. NULL on error (lw_store_errmsg). */
struct lw_store_iter *lw_store_query(struct lw_store *s, const struct lw_store_filter *f);
/* Export order: every alert matching f (its limit and order ignored), by id. */
struct lw_store_iter *lw_store_export(struct lw_store *s, const struct lw_store_filter *f);
/* 1 a row in *a, 0 the end, -1 an error (lw_store_errmsg of the store). */
int lw_store_next(struct lw_store_iter *it, struct lw_store_alert *a);
void lw_store_iter_free(struct lw_store_iter *it);

/* 0 found (in *a, valid until the next lw_store_get, _add or _ack on s),
 * LW_STORE_NOTFOUND, -1. */
int lw_store_get(struct lw_store *s, int64_t id, struct lw_store_alert *a);

/* The connection, for modules that keep their own tables in the same file
 * (the inventory): one file, one set of modes and locks. Not for the
 * alerts table, whose rows only this module writes. */
struct sqlite3 *lw_store_sqlite(struct lw_store *s);

#endif
