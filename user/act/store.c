#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "act/store.h"
#include "util/buf.h"

/* PRAGMA application_id: tells our file from any other SQLite database a
 * mistyped --db could point at ("LWAL") */
#define LW_STORE_APP_ID 0x4c57414c

/* Alerts only ever gain rows or change status: ids are what reviewers quote
 * in tickets, so AUTOINCREMENT keeps them from being reused if rows are ever
 * deleted (retention). */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS alerts ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" first_ts INTEGER NOT NULL,"
	" last_ts INTEGER NOT NULL,"
	" count INTEGER NOT NULL DEFAULT 1,"
	" dedupe_key TEXT,"
	" status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acked')),"
	" note TEXT,"
	" acked_ts INTEGER,"
	" hostname TEXT,"
	" service TEXT,"
	" provider TEXT,"
	" host TEXT,"
	" action TEXT,"
	" stage TEXT,"
	" reason TEXT,"
	" json TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS alerts_dedupe ON alerts(dedupe_key, last_ts);"
	"CREATE INDEX IF NOT EXISTS alerts_last ON alerts(last_ts);"
	"CREATE INDEX IF NOT EXISTS alerts_service ON alerts(service);"
	"CREATE INDEX IF NOT EXISTS alerts_provider ON alerts(provider);"
	"CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status);";

#define COLS                                                                                       \
	"id, first_ts, last_ts, acked_ts, count, dedupe_key, status, note, hostname, service, "    \
	"provider, host, action, stage, reason, json"

struct lw_store {
	sqlite3 *db;
	char *path;
	bool readonly;
	char hostname[256];
	char err[1024];
	/* prepared once: the agent calls lw_store_add for every alert */
	sqlite3_stmt *begin, *commit, *rollback, *find, *merge, *insert, *ack, *get;
};

struct lw_store_iter {
	struct lw_store *s;
	sqlite3_stmt *st;
};

__attribute__((format(printf, 3, 4))) static void fmt_err(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!err || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

/* "PATH: what sqlite says" */
static int db_err(struct lw_store *s)
{
	fmt_err(s->err, sizeof(s->err), "%s: %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

const char *lw_store_errmsg(const struct lw_store *s)
{
	return s ? s->err : "no store";
}

struct sqlite3 *lw_store_sqlite(struct lw_store *s)
{
	return s->db;
}

void lw_store_set_hostname(struct lw_store *s, const char *hostname)
{
	snprintf(s->hostname, sizeof(s->hostname), "%s", hostname ? hostname : "");
}

/* Creates the missing directories above path (0700: the alerts describe
 * what leaked, from where). Directories that exist are left as they are:
 * --db /tmp/x.db must not tighten /tmp. */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char *p = lw_xstrdup(path);
	char *slash = strrchr(p, '/');
	int rc = 0;

	if (!slash || slash == p) {
		free(p);
		return 0;
	}
	*slash = 0;
	for (char *c = p + 1;; c++) {
		bool end = !*c;
		struct stat st;

		if (*c != '/' && !end)
			continue;
		*c = 0;
		if (stat(p, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				fmt_err(err, errlen, "%s: %s is not a directory", path, p);
				rc = -1;
			}
		} else if (errno != ENOENT || (mkdir(p, 0700) < 0 && errno != EEXIST)) {
			fmt_err(err, errlen, "%s: cannot create directory %s: %s", path, p,
				strerror(errno));
			rc = -1;
		}
		if (rc || end)
			break;
		*c = '/';
	}
	free(p);
	return rc;
}

/* The file itself, before SQLite sees it: SQLite would follow a symlink
 * planted at the path and create the file with the umask's mode. An existing
 * file keeps its mode until it proves to be a store (tighten): a mistyped
 * --db must not chmod someone else's file. */
static int prepare_file(const char *path, bool readonly, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode)) {
			fmt_err(err, errlen, "%s: is a symbolic link; refusing to open it", path);
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			fmt_err(err, errlen, "%s: not a regular file", path);
			return -1;
		}
	} else if (errno != ENOENT || readonly) {
		fmt_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (readonly)
		return 0;
	if (make_parents(path, err, errlen) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		fmt_err(err, errlen, "%s: %s", path,
			errno == ELOOP ? "is a symbolic link; refusing to open it"
				       : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fmt_err(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* closed before SQLite opens it: closing any descriptor of a file drops
	 * every POSIX lock this process holds on it, SQLite's included */
	close(fd);
	return 0;
}

/* A store (and the -wal and -shm SQLite created with its mode) looser than
 * 0600 is made private. By name, not following links: fchmodat resolves it
 * through an O_PATH descriptor, whose close, unlike that of a descriptor of
 * our own, does not drop SQLite's locks on the file. */
static int tighten(struct lw_store *s)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	struct lw_buf p = {0};
	struct stat st;
	int rc = 0;

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && !rc; i++) {
		lw_buf_reset(&p);
		lw_buf_printf(&p, "%s%s", s->path, sfx[i]);
		if (lstat(p.p, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0177))
			continue;
		if (fchmodat(AT_FDCWD, p.p, 0600, AT_SYMLINK_NOFOLLOW) < 0) {
			fmt_err(s->err, sizeof(s->err),
				"%s: cannot make it private (chmod 0600): %s", p.p,
				strerror(errno));
			rc = -1;
		}
	}
	lw_buf_free(&p);
	return rc;
}

static int exec_sql(struct lw_store *s, const char *sql)
{
	return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_err(s);
}

/* The integer the first row of sql holds. */
static int query_int(struct lw_store *s, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(s);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		db_err(s);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Checks the version and the application id; *empty: no schema yet (only
 * a writer may then create it). Called again inside the creating
 * transaction, so two openers racing on a new file do not both create. */
static int check_schema(struct lw_store *s, bool *empty)
{
	int64_t ver, app, tables;

	if (query_int(s, "PRAGMA user_version", &ver) < 0 ||
	    query_int(s, "PRAGMA application_id", &app) < 0)
		return -1;
	if (ver > LW_STORE_SCHEMA_VERSION) {
		fmt_err(s->err, sizeof(s->err),
			"%s: schema version %lld is newer than this leakwatch understands (%d); "
			"use the leakwatch that wrote it, or a newer one",
			s->path, (long long)ver, LW_STORE_SCHEMA_VERSION);
		return -1;
	}
	if ((app || ver) && app != LW_STORE_APP_ID) {
		fmt_err(s->err, sizeof(s->err), "%s: not a leakwatch alert store", s->path);
		return -1;
	}
	*empty = ver == 0;
	if (ver)
		return 0;
	if (query_int(s, "SELECT count(*) FROM sqlite_master", &tables) < 0)
		return -1;
	if (tables) {
		fmt_err(s->err, sizeof(s->err),
			"%s: not a leakwatch alert store (an SQLite database with other tables)",
			s->path);
		return -1;
	}
	if (s->readonly) {
		fmt_err(s->err, sizeof(s->err), "%s: no alerts recorded yet (the store is empty)",
			s->path);
		return -1;
	}
	return 0;
}

static int create_schema(struct lw_store *s)
{
	char sql[128];
	bool empty;

	if (exec_sql(s, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (check_schema(s, &empty) < 0)
		goto fail;
	if (empty) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
			 LW_STORE_SCHEMA_VERSION, LW_STORE_APP_ID);
		if (exec_sql(s, schema_sql) < 0 || exec_sql(s, sql) < 0)
			goto fail;
	}
	if (exec_sql(s, "COMMIT") < 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* journal_mode answers with the mode in force: anything but "wal" means
 * readers would block the agent (e.g. a file system without shared memory) */
static int set_wal(struct lw_store *s)
{
	sqlite3_stmt *st;
	const char *mode;
	int rc = -1;

	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return db_err(s);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_err(s);
	} else if (!(mode = (const char *)sqlite3_column_text(st, 0)) || strcmp(mode, "wal")) {
		fmt_err(s->err, sizeof(s->err), "%s: cannot use WAL mode (journal mode %s)",
			s->path, mode ? mode : "unknown");
	} else {
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static int prep(struct lw_store *s, sqlite3_stmt **st, const char *sql)
{
	return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK
		       ? 0
		       : db_err(s);
}

static int open_db(struct lw_store *s)
{
	int flags =
		(s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOFOLLOW;
	bool empty;

	/* never SQLITE_OPEN_CREATE: prepare_file made it, with our mode */
	if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK)
		return s->db ? db_err(s) : -1;
	sqlite3_extended_result_codes(s->db, 1);
	/* the file is data, not code: no functions or virtual tables from it */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	/* an ack from the CLI holds the write lock for a millisecond; the agent
	 * waits for it rather than lose the alert */
	sqlite3_busy_timeout(s->db, 5000);
	/* the first read of the header: a file that is not SQLite fails here */
	if (check_schema(s, &empty) < 0)
		return -1;
	if (s->readonly)
		return 0;
	if (tighten(s) < 0)
		return -1;
	/* WAL: readers never block the agent. synchronous=NORMAL: a commit is in
	 * the WAL file before lw_store_add returns (survives the agent being
	 * killed); only a power loss can take back the last commits. */
	if (set_wal(s) < 0 || exec_sql(s, "PRAGMA synchronous = NORMAL") < 0 ||
	    create_schema(s) < 0)
		return -1;
	if (prep(s, &s->begin, "BEGIN IMMEDIATE") < 0 || prep(s, &s->commit, "COMMIT") < 0 ||
	    prep(s, &s->rollback, "ROLLBACK") < 0 ||
	    prep(s, &s->find,
		 "SELECT id FROM alerts WHERE dedupe_key = ?1 AND status = 'open' AND"
		 " last_ts BETWEEN ?2 AND ?3 ORDER BY last_ts DESC LIMIT 1") < 0 ||
	    prep(s, &s->merge,
		 "UPDATE alerts SET count = count + 1, last_ts = max(last_ts, ?2),"
		 " first_ts = min(first_ts, ?2) WHERE id = ?1") < 0 ||
	    prep(s, &s->insert,
		 "INSERT INTO alerts (first_ts, last_ts, count, dedupe_key, status, hostname,"
		 " service, provider, host, action, stage, reason, json)"
		 " VALUES (?1, ?1, 1, ?2, 'open', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)") < 0 ||
	    prep(s, &s->ack,
		 "UPDATE alerts SET status = 'acked', acked_ts = ?2, note = coalesce(?3, note)"
		 " WHERE id = ?1") < 0)
		return -1;
	return 0;
}

struct lw_store *lw_store_open(const char *path, bool readonly, char *err, size_t errlen)
{
	struct lw_store *s;
	char host[256] = "";

	if (!path || !*path) {
		fmt_err(err, errlen, "alert store: empty path");
		return NULL;
	}
	if (prepare_file(path, readonly, err, errlen) < 0)
		return NULL;
	s = lw_xcalloc(1, sizeof(*s));
	s->path = lw_xstrdup(path);
	s->readonly = readonly;
	if (gethostname(host, sizeof(host) - 1) == 0)
		lw_store_set_hostname(s, host);
	if (open_db(s) < 0) {
		if (!s->err[0])
			fmt_err(s->err, sizeof(s->err), "%s: cannot open (out of memory)", path);
		fmt_err(err, errlen, "%s", s->err);
		lw_store_close(s);
		return NULL;
	}
	return s;
}

void lw_store_close(struct lw_store *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->find);
	sqlite3_finalize(s->merge);
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->ack);
	sqlite3_finalize(s->get);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

/* The JSON string at key, or NULL (absent, or not a string). */
static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

/* Runs a statement that returns no row, and resets it. */
static int step_done(struct lw_store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		db_err(s);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int add_locked(struct lw_store *s, json_t *o, const char *json, size_t n,
		      const char *dedupe_key, int64_t ts_ns, uint32_t window_s, int64_t *id,
		      bool *merged)
{
	int64_t w = (int64_t)window_s * 1000000000LL, found = 0;
	int rc;

	if (window_s && dedupe_key) {
		sqlite3_bind_text(s->find, 1, dedupe_key, -1, SQLITE_TRANSIENT);
		/* saturated: ts_ns is the caller's and may be anything */
		sqlite3_bind_int64(s->find, 2, ts_ns < INT64_MIN + w ? INT64_MIN : ts_ns - w);
		sqlite3_bind_int64(s->find, 3, ts_ns > INT64_MAX - w ? INT64_MAX : ts_ns + w);
		rc = sqlite3_step(s->find);
		if (rc == SQLITE_ROW)
			found = sqlite3_column_int64(s->find, 0);
		else if (rc != SQLITE_DONE)
			db_err(s);
		sqlite3_reset(s->find);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
	}
	if (found) {
		sqlite3_bind_int64(s->merge, 1, found);
		sqlite3_bind_int64(s->merge, 2, ts_ns);
		if (step_done(s, s->merge) < 0)
			return -1;
		*id = found;
		*merged = true;
		return 0;
	}
	sqlite3_bind_int64(s->insert, 1, ts_ns);
	bind_text(s->insert, 2, dedupe_key);
	bind_text(s->insert, 3, s->hostname[0] ? s->hostname : NULL);
	bind_text(s->insert, 4, jstr(o, "service"));
	bind_text(s->insert, 5, jstr(o, "provider"));
	bind_text(s->insert, 6, jstr(o, "host"));
	bind_text(s->insert, 7, jstr(o, "action"));
	bind_text(s->insert, 8, jstr(o, "stage"));
	bind_text(s->insert, 9, jstr(o, "reason"));
	sqlite3_bind_text(s->insert, 10, json, (int)n, SQLITE_TRANSIENT);
	if (step_done(s, s->insert) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(s->db);
	*merged = false;
	return 0;
}

int lw_store_add(struct lw_store *s, const char *json, size_t n, const char *dedupe_key,
		 int64_t ts_ns, uint32_t window_s, int64_t *id, bool *merged)
{
	json_error_t jerr;
	json_t *o;
	int64_t id_ = 0;
	bool merged_ = false;
	int rc;

	if (s->readonly) {
		fmt_err(s->err, sizeof(s->err), "%s: opened read-only", s->path);
		return -1;
	}
	/* a row lw_store_get left pending pins an old snapshot: let it go */
	sqlite3_reset(s->get);
	while (n && (json[n - 1] == '\n' || json[n - 1] == '\r' || json[n - 1] == ' '))
		n--;
	if (n > INT32_MAX) {
		fmt_err(s->err, sizeof(s->err), "%s: alert JSON too large", s->path);
		return -1;
	}
	o = json_loadb(json, n, 0, &jerr);
	if (!json_is_object(o)) {
		fmt_err(s->err, sizeof(s->err), "%s: alert is not a JSON object: %s", s->path,
			o ? "another JSON value" : jerr.text);
		json_decref(o);
		return -1;
	}
	if (step_done(s, s->begin) < 0) {
		json_decref(o);
		return -1;
	}
	rc = add_locked(s, o, json, n, dedupe_key, ts_ns, window_s, &id_, &merged_);
	if (!rc)
		rc = step_done(s, s->commit);
	if (rc) {
		/* keep the first error's text, not ROLLBACK's */
		sqlite3_step(s->rollback);
		sqlite3_reset(s->rollback);
	}
	json_decref(o);
	if (!rc) {
		if (id)
			*id = id_;
		if (merged)
			*merged = merged_;
	}
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *lw_store_dedupe_key(const char *json, size_t n)
{
	json_t *o = json_loadb(json, n, 0, NULL);
	json_t *f, *key, *types;
	const char **tv = NULL;
	size_t nt = 0, i;
	char *out = NULL, *dumped;
	static const char *const fields[] = {"service", "provider", "action", "stage", "reason"};

	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	f = json_object_get(o, "findings");
	if (json_is_array(f) && json_array_size(f)) {
		tv = lw_xcalloc(json_array_size(f), sizeof(*tv));
		for (i = 0; i < json_array_size(f); i++) {
			const char *t = jstr(json_array_get(f, i), "type");

			if (t)
				tv[nt++] = t;
		}
		qsort(tv, nt, sizeof(*tv), cmp_str);
	}
	key = json_array();
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = jstr(o, fields[i]);

		json_array_append_new(key, v ? json_string(v) : json_null());
	}
	types = json_array();
	for (i = 0; i < nt; i++)
		if (!i || strcmp(tv[i], tv[i - 1]))
			json_array_append_new(types, json_string(tv[i]));
	json_array_append_new(key, types);
	dumped = json_dumps(key, JSON_COMPACT);
	if (dumped) {
		out = lw_xstrdup(dumped);
		free(dumped);
	}
	free(tv);
	json_decref(key);
	json_decref(o);
	return out;
}

int lw_store_ack(struct lw_store *s, int64_t id, const char *note, int64_t now_ns)
{
	if (s->readonly) {
		fmt_err(s->err, sizeof(s->err), "%s: opened read-only", s->path);
		return -1;
	}
	sqlite3_reset(s->get);
	sqlite3_bind_int64(s->ack, 1, id);
	sqlite3_bind_int64(s->ack, 2, now_ns);
	bind_text(s->ack, 3, note);
	if (step_done(s, s->ack) < 0)
		return -1;
	return sqlite3_changes(s->db) ? 0 : LW_STORE_NOTFOUND;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void fill(sqlite3_stmt *st, struct lw_store_alert *a)
{
	a->id = sqlite3_column_int64(st, 0);
	a->first_ts = sqlite3_column_int64(st, 1);
	a->last_ts = sqlite3_column_int64(st, 2);
	a->acked_ts = sqlite3_column_int64(st, 3);
	a->count = sqlite3_column_int64(st, 4);
	a->dedupe_key = col_text(st, 5);
	a->status = col_text(st, 6);
	a->note = col_text(st, 7);
	a->hostname = col_text(st, 8);
	a->service = col_text(st, 9);
	a->provider = col_text(st, 10);
	a->host = col_text(st, 11);
	a->action = col_text(st, 12);
	a->stage = col_text(st, 13);
	a->reason = col_text(st, 14);
	a->json = col_text(st, 15);
	if (!a->json)
		a->json = "{}";
	if (!a->status)
		a->status = "open";
}

static struct lw_store_iter *query(struct lw_store *s, const struct lw_store_filter *f, bool export)
{
	struct lw_store_filter none = {0};
	struct lw_store_iter *it;
	struct lw_buf sql = {0};
	sqlite3_stmt *st;
	int i = 0;

	if (!f)
		f = &none;
	lw_buf_puts(&sql, "SELECT " COLS " FROM alerts WHERE 1");
	if (f->since_ns)
		lw_buf_puts(&sql, " AND last_ts >= ?");
	if (f->service)
		lw_buf_puts(&sql, " AND service = ?");
	if (f->provider)
		lw_buf_puts(&sql, " AND provider = ?");
	if (f->status)
		lw_buf_puts(&sql, " AND status = ?");
	lw_buf_puts(&sql,
		    export || f->oldest_first ? " ORDER BY id" : " ORDER BY last_ts DESC, id DESC");
	if (!export && f->limit)
		lw_buf_printf(&sql, " LIMIT %u", f->limit);
	lw_buf_putc(&sql, 0);
	if (sqlite3_prepare_v2(s->db, sql.p, -1, &st, NULL) != SQLITE_OK) {
		db_err(s);
		lw_buf_free(&sql);
		return NULL;
	}
	lw_buf_free(&sql);
	if (f->since_ns)
		sqlite3_bind_int64(st, ++i, f->since_ns);
	if (f->service)
		sqlite3_bind_text(st, ++i, f->service, -1, SQLITE_TRANSIENT);
	if (f->provider)
		sqlite3_bind_text(st, ++i, f->provider, -1, SQLITE_TRANSIENT);
	if (f->status)
		sqlite3_bind_text(st, ++i, f->status, -1, SQLITE_TRANSIENT);
	it = lw_xcalloc(1, sizeof(*it));
	it->s = s;
	it->st = st;
	return it;
}

struct lw_store_iter *lw_store_query(struct lw_store *s, const struct lw_store_filter *f)
{
	return query(s, f, false);
}

struct lw_store_iter *lw_store_export(struct lw_store *s, const struct lw_store_filter *f)
{
	return query(s, f, true);
}

int lw_store_next(struct lw_store_iter *it, struct lw_store_alert *a)
{
	int rc = sqlite3_step(it->st);

	if (rc == SQLITE_ROW) {
		fill(it->st, a);
		return 1;
	}
	return rc == SQLITE_DONE ? 0 : db_err(it->s);
}

void lw_store_iter_free(struct lw_store_iter *it)
{
	if (!it)
		return;
	sqlite3_finalize(it->st);
	free(it);
}

int lw_store_get(struct lw_store *s, int64_t id, struct lw_store_alert *a)
{
	int rc;

	if (!s->get && prep(s, &s->get, "SELECT " COLS " FROM alerts WHERE id = ?1") < 0)
		return -1;
	sqlite3_reset(s->get);
	sqlite3_bind_int64(s->get, 1, id);
	rc = sqlite3_step(s->get);
	if (rc == SQLITE_ROW) {
		fill(s->get, a);
		return 0;
	}
	if (rc != SQLITE_DONE)
		db_err(s);
	sqlite3_reset(s->get);
	return rc == SQLITE_DONE ? LW_STORE_NOTFOUND : -1;
}
