/* leakwatch alerts: review what the agent recorded in its alert store
 * (user/act/store.h) without touching the agent: list, show, acknowledge,
 * export. Reads while the agent writes (WAL); only ack writes. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "act/store.h"
#include "cmd/cmds.h"
#include "util/buf.h"
#include "util/clock.h"

#define NOTE_MAX 1000
#define LIST_DEFAULT_LIMIT 50
#define TABLE_COLS 80

static void usage(FILE *f)
{
	fputs("usage: leakwatch alerts list [--since DURATION] [--service S] [--provider P]\n"
	      "                             [--status open|acked] [--limit N]\n"
	      "                             [--format table|json] [--db PATH]\n"
	      "       leakwatch alerts show ID [--db PATH]\n"
	      "       leakwatch alerts ack ID [--note TEXT] [--db PATH]\n"
	      "       leakwatch alerts export [--format json|csv] [--since DURATION]\n"
	      "                               [--service S] [--provider P]\n"
	      "                               [--status open|acked] [--db PATH]\n"
	      "\n"
	      "Review the alerts the agent recorded. Repeats of one alert within the\n"
	      "agent's dedupe window are one alert with a count. Works while the agent\n"
	      "runs; only ack writes to the store.\n"
	      "\n"
	      "  list        most recently seen first: a table that fits 80 columns (times\n"
	      "              in UTC), or json: one object per line, the alert as the agent\n"
	      "              printed it plus id, count, first_ts, last_ts, status, note,\n"
	      "              acked_ts, hostname\n"
	      "  show        one alert in full, then each finding on its own line\n"
	      "  ack         mark an alert acknowledged; a later repeat opens a new alert\n"
	      "  export      every matching alert, oldest first: json lines (default), or\n"
	      "              csv (RFC 4180, a header row, findings as type:count;...)\n"
	      "\n"
	      "      --since DURATION  last seen within DURATION: 30s, 15m, 2h, 7d, 2w\n"
	      "      --service S       only service S (exact)\n"
	      "      --provider P      only provider P (exact: openai, anthropic, ...)\n"
	      "      --status STATUS   open or acked\n"
	      "      --limit N         list at most N alerts (default 50; 0: all)\n"
	      "      --format FMT      list: table (default) or json; export: json or csv\n"
	      "      --note TEXT       ack: why (at most 1000 bytes, no control characters)\n"
	      "      --db PATH         the store (default " LW_STORE_DEFAULT_PATH ")\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "docs/alerts.md describes the store and the dedupe rule.\n"
	      "Exit codes: 0 ok, 1 failure (no store at PATH, unreadable, no such alert),\n"
	      "2 usage error.\n",
	      f);
}

enum sub { SUB_LIST = 1, SUB_SHOW = 2, SUB_ACK = 4, SUB_EXPORT = 8 };

struct opts {
	enum sub sub;
	const char *db, *service, *provider, *status, *format, *note;
	bool has_since;
	int64_t since_ns;
	uint32_t limit;
	int64_t id;
	FILE *out, *err;
};

/* ---- argument checks ---------------------------------------------------- */

/* "30s", "15m", "2h", "7d", "2w" in ns; false if malformed or too large. */
static bool parse_duration(const char *s, int64_t *ns)
{
	static const struct {
		char c;
		int64_t ns;
	} units[] = {{'s', 1000000000LL},
		     {'m', 60 * 1000000000LL},
		     {'h', 3600 * 1000000000LL},
		     {'d', 86400 * 1000000000LL},
		     {'w', 7 * 86400 * 1000000000LL}};
	int64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (INT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (*p - '0');
	}
	if (!p[0] || p[1])
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (*p == units[i].c) {
			if (n > INT64_MAX / units[i].ns)
				return false;
			*ns = n * units[i].ns;
			return true;
		}
	return false;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	uint64_t n = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return true;
}

/* The code point of the UTF-8 sequence at s and its length, or 0 if it is not
 * valid UTF-8 (overlongs, surrogates, beyond U+10FFFF). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
	size_t len, i;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Control characters (C0, DEL, C1) and the bidirectional overrides that can
 * make a terminal show text other than what is there. */
static bool unsafe_cp(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
	       (c >= 0x2066 && c <= 0x2069);
}

/* A note is shown on terminals and in CSV: printable UTF-8 only. */
static const char *note_problem(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c;
	size_t k;

	if (strlen(s) > NOTE_MAX)
		return "longer than 1000 bytes";
	for (; *p; p += k) {
		k = utf8_next(p, &c);
		if (!k)
			return "not valid UTF-8";
		if (unsafe_cp(c))
			return "holds a control character";
	}
	return NULL;
}

/* ---- terminal-safe text --------------------------------------------------- */

/* Terminal columns of a printable code point: 2 for the East Asian wide and
 * emoji blocks, else 1 (combining marks too: too wide is safe, too narrow
 * would wrap). */
static size_t cp_width(uint32_t c)
{
	return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
			       (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
			       (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
			       (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) ||
			       (c >= 0x20000 && c <= 0x3fffd)
		       ? 2
		       : 1;
}

/* The next character of p as it will be shown: its length in bytes (an
 * invalid byte: 1), its columns, and whether it is shown as '?'. */
static size_t next_shown(const unsigned char *p, size_t *width, bool *bad)
{
	uint32_t c;
	size_t k = utf8_next(p, &c);

	*bad = !k || unsafe_cp(c);
	*width = *bad ? 1 : cp_width(c);
	return k ? k : 1;
}

static size_t text_cols(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = 0, w;
	bool bad;

	while (*p) {
		p += next_shown(p, &w, &bad);
		n += w;
	}
	return n;
}

/* Appends s, at most max columns, to b; anything unsafe or invalid becomes
 * '?', and a longer text ends in an ellipsis. The alert text comes from the
 * monitored processes (comm, cgroup names): it must not reach a terminal as
 * escape sequences. Returns the columns written. */
static size_t put_cols(struct lw_buf *b, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	bool cut = text_cols(s) > max, bad;
	size_t room = cut && max ? max - 1 : max, cols = 0, w, k;

	for (; *p; p += k) {
		k = next_shown(p, &w, &bad);
		if (cols + w > room)
			break;
		if (bad)
			lw_buf_putc(b, '?');
		else
			lw_buf_put(b, p, k);
		cols += w;
	}
	if (cut && max) {
		lw_buf_puts(b, "\xe2\x80\xa6"); /* U+2026 */
		cols++;
	}
	return cols;
}

static void put_clean(struct lw_buf *b, const char *s)
{
	put_cols(b, s, SIZE_MAX);
}

/* ---- pieces of an alert ---------------------------------------------------- */

static void fmt_minute(int64_t ns, char *out, size_t n)
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!gmtime_r(&sec, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M", &tm))
		snprintf(out, n, "?");
}

struct type_count {
	const char *type;
	uint64_t count;
	int severity; /* the type's highest */
	size_t order;
};

/* low..critical as 0..3 (user/classify/rules.c), unknown below */
static int severity_rank(const char *s)
{
	static const char *const names[] = {"low", "medium", "high", "critical"};

	for (int i = 0; s && i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static int cmp_tc(const void *a, const void *b)
{
	const struct type_count *x = a, *y = b;

	if (x->severity != y->severity)
		return x->severity > y->severity ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The finding types of an alert, counts summed per type, the most severe
 * first, then the most frequent: "aws_access_key,email" (table) or
 * "aws_access_key:1;email:3" (csv). */
static void findings_summary(struct lw_buf *b, json_t *alert, bool counts)
{
	json_t *f = json_object_get(alert, "findings");
	size_t n = json_array_size(f), nt = 0;
	struct type_count *tc;

	if (!n)
		return;
	tc = lw_xcalloc(n, sizeof(*tc));
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_array_get(f, i);
		const char *t = json_string_value(json_object_get(x, "type"));
		json_int_t c = json_integer_value(json_object_get(x, "count"));
		int sev = severity_rank(json_string_value(json_object_get(x, "severity")));
		size_t j;

		if (!t)
			continue;
		for (j = 0; j < nt && strcmp(tc[j].type, t); j++)
			;
		if (j == nt)
			tc[nt++] = (struct type_count){t, 0, sev, j};
		tc[j].count += c > 0 ? (uint64_t)c : 0;
		if (sev > tc[j].severity)
			tc[j].severity = sev;
	}
	qsort(tc, nt, sizeof(*tc), cmp_tc);
	for (size_t i = 0; i < nt; i++) {
		if (i)
			lw_buf_putc(b, counts ? ';' : ',');
		lw_buf_puts(b, tc[i].type);
		if (counts)
			lw_buf_printf(b, ":%llu", (unsigned long long)tc[i].count);
	}
	lw_buf_putc(b, 0);
	b->len--;
	free(tc);
}

static json_t *parse_alert(const struct lw_store_alert *a)
{
	json_t *o = json_loads(a->json, 0, NULL);

	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	return o;
}

static json_t *iso_or_null(int64_t ns)
{
	char ts[48];

	if (!ns)
		return json_null();
	lw_iso_time(ns, ts, sizeof(ts));
	return json_string(ts);
}

/* The stored alert with the store's fields first: one JSON line. */
static void json_line(FILE *out, const struct lw_store_alert *a)
{
	json_t *alert = parse_alert(a), *o = json_object(), *v;
	const char *k;
	char *s;

	json_object_set_new(o, "id", json_integer(a->id));
	json_object_set_new(o, "count", json_integer(a->count));
	json_object_set_new(o, "first_ts", iso_or_null(a->first_ts));
	json_object_set_new(o, "last_ts", iso_or_null(a->last_ts));
	json_object_set_new(o, "status", json_string(a->status));
	json_object_set_new(o, "note", a->note ? json_string(a->note) : json_null());
	json_object_set_new(o, "acked_ts", iso_or_null(a->acked_ts));
	json_object_set_new(o, "hostname", a->hostname ? json_string(a->hostname) : json_null());
	json_object_foreach(alert, k, v)
	{
		if (!json_object_get(o, k))
			json_object_set(o, k, v);
	}
	s = json_dumps(o, JSON_COMPACT);
	if (s)
		fprintf(out, "%s\n", s);
	free(s);
	json_decref(o);
	json_decref(alert);
}

/* ---- list ------------------------------------------------------------------ */

struct row {
	int64_t id, count;
	char when[24];
	char *service, *provider, *action, *findings, *status;
};

enum { C_ID, C_WHEN, C_COUNT, C_SERVICE, C_PROVIDER, C_ACTION, C_FINDINGS, C_STATUS, C__N };
static const char *const heads[C__N] = {"ID",	    "LAST SEEN (UTC)", "COUNT",	   "SERVICE",
					"PROVIDER", "ACTION",	       "FINDINGS", "STATUS"};

static const char *cell(const struct row *r, int c, char *num, size_t n)
{
	switch (c) {
	case C_ID:
		snprintf(num, n, "%lld", (long long)r->id);
		return num;
	case C_WHEN:
		return r->when;
	case C_COUNT:
		snprintf(num, n, "%lld", (long long)r->count);
		return num;
	case C_SERVICE:
		return r->service;
	case C_PROVIDER:
		return r->provider;
	case C_ACTION:
		return r->action;
	case C_FINDINGS:
		return r->findings;
	default:
		return r->status;
	}
}

/* Widths that fit TABLE_COLS: the narrow columns take what they need (action
 * at most "would_block"), the three free-text ones share the rest, a column
 * at a time, so one long service name does not squeeze the others to nothing. */
static void widths(const struct row *rows, size_t n, size_t w[C__N])
{
	static const int shared[] = {C_SERVICE, C_PROVIDER, C_FINDINGS};
	size_t want[C__N], used = C__N - 1, left;
	char num[32];
	bool grew = true;

	for (int c = 0; c < C__N; c++) {
		want[c] = strlen(heads[c]);
		for (size_t i = 0; i < n; i++) {
			size_t k = text_cols(cell(&rows[i], c, num, sizeof(num)));

			want[c] = k > want[c] ? k : want[c];
		}
		w[c] = want[c];
	}
	if (w[C_ACTION] > 11)
		w[C_ACTION] = 11;
	if (w[C_STATUS] > 6)
		w[C_STATUS] = 6;
	for (int c = 0; c < C__N; c++)
		if (c != C_SERVICE && c != C_PROVIDER && c != C_FINDINGS)
			used += w[c];
	left = used < TABLE_COLS ? TABLE_COLS - used : 0;
	for (int i = 0; i < 3; i++)
		w[shared[i]] = 0;
	while (left && grew) {
		grew = false;
		for (int i = 0; i < 3 && left; i++)
			if (w[shared[i]] < want[shared[i]]) {
				w[shared[i]]++;
				left--;
				grew = true;
			}
	}
	for (int i = 0; i < 3; i++)
		if (!w[shared[i]])
			w[shared[i]] = 1;
}

static void put_row(struct lw_buf *b, const char *const cells[C__N], const size_t w[C__N])
{
	for (int c = 0; c < C__N; c++) {
		size_t k;
		bool right = c == C_ID || c == C_COUNT;

		if (c)
			lw_buf_putc(b, ' ');
		if (right)
			for (k = text_cols(cells[c]); k < w[c]; k++)
				lw_buf_putc(b, ' ');
		k = put_cols(b, cells[c], w[c]);
		if (!right && c != C__N - 1)
			for (; k < w[c]; k++)
				lw_buf_putc(b, ' ');
	}
	lw_buf_putc(b, '\n');
}

static void print_table(FILE *out, const struct row *rows, size_t n)
{
	struct lw_buf b = {0};
	size_t w[C__N];
	char num[2][32];

	if (!n) {
		fputs("no alerts\n", out);
		return;
	}
	widths(rows, n, w);
	put_row(&b, heads, w);
	for (size_t i = 0; i < n; i++) {
		const char *cells[C__N];

		for (int c = 0; c < C__N; c++)
			cells[c] = cell(&rows[i], c, num[c == C_COUNT], sizeof(num[0]));
		put_row(&b, cells, w);
	}
	fwrite(b.p, 1, b.len, out);
	lw_buf_free(&b);
}

static char *dup_or_empty(const char *s)
{
	return lw_xstrdup(s ? s : "");
}

static void free_rows(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].service);
		free(rows[i].provider);
		free(rows[i].action);
		free(rows[i].findings);
		free(rows[i].status);
	}
	free(rows);
}

static void filter_of(const struct opts *o, struct lw_store_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->since_ns = o->has_since ? o->since_ns : 0;
	f->service = o->service;
	f->provider = o->provider;
	f->status = o->status;
	f->limit = o->limit;
}

static int cmd_list(struct lw_store *s, const struct opts *o)
{
	bool table = !o->format || !strcmp(o->format, "table");
	struct lw_store_filter f;
	struct lw_store_iter *it;
	struct lw_store_alert a;
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	filter_of(o, &f);
	it = lw_store_query(s, &f);
	if (!it) {
		fprintf(o->err, "leakwatch alerts: %s\n", lw_store_errmsg(s));
		return 1;
	}
	while ((rc = lw_store_next(it, &a)) > 0) {
		struct lw_buf fs = {0};
		json_t *alert;
		struct row *r;

		if (!table) {
			json_line(o->out, &a);
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			rows = lw_xrealloc(rows, cap * sizeof(*rows));
		}
		r = &rows[n++];
		alert = parse_alert(&a);
		findings_summary(&fs, alert, false);
		r->id = a.id;
		r->count = a.count;
		fmt_minute(a.last_ts, r->when, sizeof(r->when));
		r->service = dup_or_empty(a.service);
		r->provider = dup_or_empty(a.provider);
		r->action = dup_or_empty(a.action);
		r->findings = dup_or_empty(fs.p);
		r->status = dup_or_empty(a.status);
		lw_buf_free(&fs);
		json_decref(alert);
	}
	lw_store_iter_free(it);
	if (rc < 0) {
		fprintf(o->err, "leakwatch alerts: %s\n", lw_store_errmsg(s));
		free_rows(rows, n);
		return 1;
	}
	if (table)
		print_table(o->out, rows, n);
	/* on stderr: the table stays a table when piped */
	if (table && o->limit && n == o->limit)
		fprintf(o->err,
			"leakwatch alerts: the %zu most recently seen; --limit N for more\n", n);
	free_rows(rows, n);
	return 0;
}

/* ---- show ------------------------------------------------------------------ */

static void show_field(struct lw_buf *b, const char *key, const char *val)
{
	lw_buf_puts(b, "  ");
	put_clean(b, key);
	for (size_t k = text_cols(key); k < 14; k++)
		lw_buf_putc(b, ' ');
	lw_buf_putc(b, ' ');
	put_clean(b, val && *val ? val : "-");
	lw_buf_putc(b, '\n');
}

/* A JSON value as text: strings as they are, anything else as JSON. */
static char *value_text(json_t *v)
{
	if (json_is_string(v))
		return lw_xstrdup(json_string_value(v));
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void show_finding(struct lw_buf *b, json_t *x)
{
	static const char *const first[] = {"type",	"rule",	  "count",
					    "severity", "sample", "fingerprint"};
	const char *k;
	json_t *v;

	lw_buf_puts(b, "  -");
	/* what a reviewer reads first, always in this order; then whatever
	 * else a finding carries (action, field) */
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		char *t;

		if (!(v = json_object_get(x, first[i])))
			continue;
		t = value_text(v);
		lw_buf_printf(b, " %s=", first[i]);
		if (!strcmp(first[i], "sample")) {
			lw_buf_putc(b, '"');
			put_clean(b, t);
			lw_buf_putc(b, '"');
		} else {
			put_clean(b, t);
		}
		free(t);
	}
	json_object_foreach(x, k, v)
	{
		char *t;
		size_t i;

		for (i = 0; i < sizeof(first) / sizeof(first[0]) && strcmp(first[i], k); i++)
			;
		if (i < sizeof(first) / sizeof(first[0]))
			continue;
		t = value_text(v);
		lw_buf_putc(b, ' ');
		put_clean(b, k);
		lw_buf_putc(b, '=');
		put_clean(b, t);
		free(t);
	}
	lw_buf_putc(b, '\n');
}

static int cmd_show(struct lw_store *s, const struct opts *o)
{
	struct lw_store_alert a;
	struct lw_buf b = {0};
	json_t *alert, *v, *f;
	char ts[48], num[32];
	const char *k;
	int rc = lw_store_get(s, o->id, &a);

	if (rc == LW_STORE_NOTFOUND) {
		fprintf(o->err, "leakwatch alerts: no alert %lld in %s\n", (long long)o->id, o->db);
		return 1;
	}
	if (rc < 0) {
		fprintf(o->err, "leakwatch alerts: %s\n", lw_store_errmsg(s));
		return 1;
	}
	alert = parse_alert(&a);
	lw_buf_printf(&b, "alert %lld\n", (long long)a.id);
	show_field(&b, "status", a.status);
	if (a.acked_ts) {
		lw_iso_time(a.acked_ts, ts, sizeof(ts));
		show_field(&b, "acked", ts);
	}
	show_field(&b, "note", a.note);
	lw_iso_time(a.first_ts, ts, sizeof(ts));
	show_field(&b, "first seen", ts);
	lw_iso_time(a.last_ts, ts, sizeof(ts));
	show_field(&b, "last seen", ts);
	snprintf(num, sizeof(num), "%lld", (long long)a.count);
	show_field(&b, "count", num);
	show_field(&b, "recorded on", a.hostname);
	show_field(&b, "dedupe key", a.dedupe_key);
	json_object_foreach(alert, k, v)
	{
		char *t;

		if (!strcmp(k, "findings") || !strcmp(k, "event"))
			continue;
		t = value_text(v);
		show_field(&b, k, t);
		free(t);
	}
	f = json_object_get(alert, "findings");
	snprintf(num, sizeof(num), "%zu", json_array_size(f));
	show_field(&b, "findings", num);
	for (size_t i = 0; i < json_array_size(f); i++)
		show_finding(&b, json_array_get(f, i));
	fwrite(b.p, 1, b.len, o->out);
	lw_buf_free(&b);
	json_decref(alert);
	return 0;
}

/* ---- ack ------------------------------------------------------------------- */

static int cmd_ack(struct lw_store *s, const struct opts *o)
{
	struct timespec now;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	rc = lw_store_ack(s, o->id, o->note, (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec);
	if (rc == LW_STORE_NOTFOUND) {
		fprintf(o->err, "leakwatch alerts: no alert %lld in %s\n", (long long)o->id, o->db);
		return 1;
	}
	if (rc < 0) {
		fprintf(o->err, "leakwatch alerts: %s\n", lw_store_errmsg(s));
		return 1;
	}
	fprintf(o->out, "alert %lld acknowledged\n", (long long)o->id);
	return 0;
}

/* ---- export ---------------------------------------------------------------- */

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF.
 * Text that a spreadsheet would run as a formula (= + - @, tab, CR first) is
 * prefixed with ' (OWASP): a process name is not the reviewer's formula. */
static void csv_field(struct lw_buf *b, const char *s, bool text)
{
	bool formula = text && s && strchr("=+-@\t\r", s[0]) && s[0];
	bool quote = s && (strpbrk(s, ",\"\r\n") != NULL);

	if (!s)
		return;
	if (quote)
		lw_buf_putc(b, '"');
	if (formula)
		lw_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '"')
			lw_buf_putc(b, '"');
		lw_buf_putc(b, *s);
	}
	if (quote)
		lw_buf_putc(b, '"');
}

static const char *const csv_cols[] = {
	"id",	    "first_seen", "last_seen", "count",	   "status", "acked", "note",
	"hostname", "service",	  "policy",    "provider", "host",   "dst",   "pid",
	"comm",	    "exe",	  "cgroup",    "method",   "path",   "api",   "model",
	"action",   "stage",	  "reason",    "findings"};
#define CSV_NCOLS (sizeof(csv_cols) / sizeof(csv_cols[0]))

static void csv_row(struct lw_buf *b, const struct lw_store_alert *a)
{
	json_t *alert = parse_alert(a);
	struct lw_buf fs = {0};
	char num[3][32], when[3][48];

	snprintf(num[0], sizeof(num[0]), "%lld", (long long)a->id);
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)a->count);
	lw_iso_time(a->first_ts, when[0], sizeof(when[0]));
	lw_iso_time(a->last_ts, when[1], sizeof(when[1]));
	when[2][0] = 0;
	if (a->acked_ts)
		lw_iso_time(a->acked_ts, when[2], sizeof(when[2]));
	findings_summary(&fs, alert, true);
	for (size_t c = 0; c < CSV_NCOLS; c++) {
		const char *col = csv_cols[c], *v = NULL;
		bool text = true;
		json_t *j;

		if (c)
			lw_buf_putc(b, ',');
		if (!strcmp(col, "id") || !strcmp(col, "count")) {
			v = num[col[0] == 'c'];
			text = false;
		} else if (!strcmp(col, "first_seen") || !strcmp(col, "last_seen") ||
			   !strcmp(col, "acked")) {
			v = when[col[0] == 'f' ? 0 : col[0] == 'l' ? 1 : 2];
			text = false;
		} else if (!strcmp(col, "status")) {
			v = a->status;
		} else if (!strcmp(col, "note")) {
			v = a->note;
		} else if (!strcmp(col, "hostname")) {
			v = a->hostname;
		} else if (!strcmp(col, "findings")) {
			v = fs.p;
		} else if (json_is_integer(j = json_object_get(alert, col))) {
			snprintf(num[2], sizeof(num[2]), "%lld", (long long)json_integer_value(j));
			v = num[2];
			text = false;
		} else {
			v = json_string_value(j);
		}
		csv_field(b, v, text);
	}
	lw_buf_puts(b, "\r\n");
	lw_buf_free(&fs);
	json_decref(alert);
}

static int cmd_export(struct lw_store *s, const struct opts *o)
{
	bool csv = o->format && !strcmp(o->format, "csv");
	struct lw_store_filter f;
	struct lw_store_iter *it;
	struct lw_store_alert a;
	struct lw_buf b = {0};
	int rc;

	filter_of(o, &f);
	it = lw_store_export(s, &f);
	if (!it) {
		fprintf(o->err, "leakwatch alerts: %s\n", lw_store_errmsg(s));
		return 1;
	}
	if (csv) {
		for (size_t c = 0; c < CSV_NCOLS; c++)
			lw_buf_printf(&b, "%s%s", c ? "," : "", csv_cols[c]);
		lw_buf_puts(&b, "\r\n");
	}
	while ((rc = lw_store_next(it, &a)) > 0) {
		if (!csv) {
			json_line(o->out, &a);
			continue;
		}
		csv_row(&b, &a);
		fwrite(b.p, 1, b.len, o->out);
		lw_buf_reset(&b);
	}
	if (b.len) /* the header alone, when nothing matched */
		fwrite(b.p, 1, b.len, o->out);
	lw_buf_free(&b);
	lw_store_iter_free(it);
	if (rc < 0) {
		fprintf(o->err, "leakwatch alerts: %s\n", lw_store_errmsg(s));
		return 1;
	}
	return 0;
}

/* ---- arguments --------------------------------------------------------------- */

struct optdef {
	const char *name;
	unsigned subs;
};

static const struct optdef optdefs[] = {
	{"--since", SUB_LIST | SUB_EXPORT},
	{"--service", SUB_LIST | SUB_EXPORT},
	{"--provider", SUB_LIST | SUB_EXPORT},
	{"--status", SUB_LIST | SUB_EXPORT},
	{"--limit", SUB_LIST},
	{"--format", SUB_LIST | SUB_EXPORT},
	{"--note", SUB_ACK},
	{"--db", SUB_LIST | SUB_SHOW | SUB_ACK | SUB_EXPORT},
};

__attribute__((format(printf, 2, 3))) static int usage_err(struct opts *o, const char *fmt, ...)
{
	va_list ap;

	fputs("leakwatch alerts: ", o->err);
	va_start(ap, fmt);
	vfprintf(o->err, fmt, ap);
	va_end(ap);
	fputc('\n', o->err);
	usage(o->err);
	return 2;
}

static int set_opt(struct opts *o, const char *name, const char *val)
{
	uint64_t v;

	if (!strcmp(name, "--since")) {
		if (!parse_duration(val, &o->since_ns))
			return usage_err(o, "bad duration '%s' (like 30s, 15m, 2h, 7d)", val);
		o->has_since = true;
	} else if (!strcmp(name, "--service")) {
		o->service = val;
	} else if (!strcmp(name, "--provider")) {
		o->provider = val;
	} else if (!strcmp(name, "--status")) {
		if (strcmp(val, "open") && strcmp(val, "acked"))
			return usage_err(o, "bad status '%s' (open or acked)", val);
		o->status = val;
	} else if (!strcmp(name, "--limit")) {
		if (!parse_u64(val, UINT32_MAX, &v))
			return usage_err(o, "bad limit '%s'", val);
		o->limit = (uint32_t)v;
	} else if (!strcmp(name, "--format")) {
		if (o->sub == SUB_LIST ? strcmp(val, "table") && strcmp(val, "json")
				       : strcmp(val, "json") && strcmp(val, "csv"))
			return usage_err(o,
					 o->sub == SUB_LIST ? "bad format '%s' (table or json)"
							    : "bad format '%s' (json or csv)",
					 val);
		o->format = val;
	} else if (!strcmp(name, "--note")) {
		const char *why = note_problem(val);

		if (why)
			return usage_err(o, "the note is %s", why);
		o->note = val;
	} else if (!strcmp(name, "--db")) {
		if (!*val)
			return usage_err(o, "empty --db path");
		o->db = val;
	}
	return 0;
}

/* 0 parsed, 2 usage error, -1 help printed. */
static int parse_args(struct opts *o, int argc, char **argv)
{
	bool opts_done = false, want_id = o->sub == SUB_SHOW || o->sub == SUB_ACK;
	int npos = 0;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *eq, *val;
		const struct optdef *d = NULL;
		char name[32];
		uint64_t id;
		int rc;

		if (!opts_done && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			usage(o->out);
			return -1;
		}
		if (!opts_done && !strcmp(a, "--")) {
			opts_done = true;
			continue;
		}
		if (opts_done || a[0] != '-' || !a[1]) {
			if (!want_id || npos++)
				return usage_err(o, "unexpected argument '%s'", a);
			if (!parse_u64(a, INT64_MAX, &id) || !id)
				return usage_err(o, "bad alert id '%s'", a);
			o->id = (int64_t)id;
			continue;
		}
		/* --opt VALUE or --opt=VALUE */
		eq = strchr(a, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
		for (size_t k = 0; k < sizeof(optdefs) / sizeof(optdefs[0]); k++)
			if (!strcmp(optdefs[k].name, name))
				d = &optdefs[k];
		if (!d || !(d->subs & o->sub))
			return usage_err(o, "unknown option '%s'", a);
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			return usage_err(o, "%s needs a value", name);
		}
		if ((rc = set_opt(o, name, val)))
			return rc;
	}
	if (want_id && !npos)
		return usage_err(o, "expected an alert ID");
	return 0;
}

/* A missing store is the usual first-run mistake: say where we looked. */
static struct lw_store *open_store(const struct opts *o, bool readonly)
{
	char err[1200];
	struct stat st;
	struct lw_store *s;

	if (lstat(o->db, &st) < 0) {
		int e = errno;

		if (e == ENOENT)
			fprintf(o->err,
				"leakwatch alerts: %s: no alert store there (the agent creates it; "
				"--db PATH names another)\n",
				o->db);
		else
			fprintf(o->err, "leakwatch alerts: %s: %s%s\n", o->db, strerror(e),
				e == EACCES ? " (the store is private to its owner: run as root)"
					    : "");
		return NULL;
	}
	s = lw_store_open(o->db, readonly, err, sizeof(err));
	if (!s)
		fprintf(o->err, "leakwatch alerts: %s%s\n", err,
			strstr(err, "ermission denied")
				? " (the store is private to its owner: run as root)"
				: "");
	return s;
}

int lw_cmd_alerts_io(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct {
		const char *name;
		enum sub sub;
	} subs[] = {
		{"list", SUB_LIST}, {"show", SUB_SHOW}, {"ack", SUB_ACK}, {"export", SUB_EXPORT}};
	struct opts o = {
		.db = LW_STORE_DEFAULT_PATH, .limit = LIST_DEFAULT_LIMIT, .out = out, .err = err};
	struct lw_store *s;
	int rc;

	if (argc < 2) {
		usage(err);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(out);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(argv[1], subs[i].name))
			o.sub = subs[i].sub;
	if (!o.sub) {
		fprintf(err, "leakwatch alerts: unknown subcommand '%s'\n", argv[1]);
		usage(err);
		return 2;
	}
	rc = parse_args(&o, argc, argv);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (o.has_since) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		o.since_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec - o.since_ns;
		if (o.since_ns <= 0) /* 0 would mean "no --since" */
			o.since_ns = 1;
	}
	s = open_store(&o, o.sub != SUB_ACK);
	if (!s)
		return 1;
	switch (o.sub) {
	case SUB_LIST:
		rc = cmd_list(s, &o);
		break;
	case SUB_SHOW:
		rc = cmd_show(s, &o);
		break;
	case SUB_ACK:
		rc = cmd_ack(s, &o);
		break;
	default:
		rc = cmd_export(s, &o);
		break;
	}
	lw_store_close(s);
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(err, "leakwatch alerts: writing the output: %s\n", strerror(errno));
		return 1;
	}
	return rc;
}

int lw_cmd_alerts(int argc, char **argv)
{
	return lw_cmd_alerts_io(argc, argv, stdout, stderr);
}
