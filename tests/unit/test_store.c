/*
 * Unit tests for user/act/store (the SQLite alert store) and `leakwatch
 * alerts`: file and directory modes, refusing symlinks, corrupt files and
 * newer schemas, dedupe windows, filters, ack, a reader beside a writer, an
 * alert that survives kill -9 of its writer, the insert rate, and the CLI's
 * table, JSON, show and CSV output. Everything lives in a temporary
 * directory that is removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "act/inventory.h"
#include "act/store.h"
#include "cmd/cmds.h"
#include "util/buf.h"
#include "util/json.h"

#define NS 1000000000LL

/* 2021-03-04 05:06:07 UTC: before any clock these tests run under, so the
 * alerts at T0 are older than those placed relative to now */
#define T0 (1614834367LL * NS)

static char tmp[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/lw-test-store.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	return nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp/name, in a static ring so a test can hold a few at once */
static const char *tpath(const char *name)
{
	static char ring[4][256];
	static int i;
	char *p = ring[i++ & 3];

	snprintf(p, sizeof(ring[0]), "%s/%s", tmp, name);
	return p;
}

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * NS + t.tv_nsec;
}

/* An alert line shaped like the agent's (user/act/alert.c). findings is the
 * JSON array text. */
static void mk_alert(struct lw_buf *b, const char *service, const char *provider,
		     const char *action, const char *findings)
{
	struct lw_json j;

	lw_buf_reset(b);
	lw_json_begin(&j, b);
	lw_json_str(&j, "event", "alert");
	lw_json_str(&j, "ts", "2026-11-26T07:12:34.000000Z");
	lw_json_str(&j, "service", service);
	lw_json_str(&j, "policy", "default");
	lw_json_u64(&j, "pid", 1234);
	lw_json_str(&j, "comm", "curl");
	lw_json_str(&j, "exe", "/usr/bin/curl");
	lw_json_str(&j, "cgroup", "/system.slice/checkout.service");
	lw_json_str(&j, "provider", provider);
	lw_json_str(&j, "host", "api.openai.com");
	lw_json_str(&j, "dst", "10.0.0.7:443");
	lw_json_str(&j, "method", "POST");
	lw_json_str(&j, "path", "/v1/chat/completions");
	lw_json_u64(&j, "http", 1);
	lw_json_str(&j, "api", "openai.chat");
	lw_json_str(&j, "model", "gpt-4o");
	lw_json_str(&j, "reason", "classified_data");
	lw_json_str(&j, "action", action);
	lw_json_bool(&j, "incomplete", false);
	lw_json_raw(&j, "findings", findings);
	lw_json_end(&j);
	lw_buf_putc(b, '\n');
}

#define F_EMAIL                                                                                    \
	"{\"type\":\"email\",\"rule\":\"email\",\"count\":2,\"severity\":\"medium\","              \
	"\"action\":\"alert\",\"sample\":\"j***@example.com\",\"field\":\"messages[0].content\","  \
	"\"fingerprint\":\"0123456789abcdef\"}"
#define F_JWT                                                                                      \
	"{\"type\":\"jwt\",\"rule\":\"jwt\",\"count\":1,\"severity\":\"high\",\"action\":"         \
	"\"alert\",\"sample\":\"eyJ***\"}"
#define F_KEY                                                                                      \
	"{\"type\":\"aws_access_key\",\"rule\":\"aws_access_key\",\"count\":3,\"severity\":"       \
	"\"critical\",\"action\":\"block\",\"sample\":\"AKIA************MPLE\"}"

static struct lw_store *open_ok(const char *path, bool ro)
{
	char err[512] = "";
	struct lw_store *s = lw_store_open(path, ro, err, sizeof(err));

	if (!s)
		fail_msg("open %s: %s", path, err);
	return s;
}

/* Opening must fail with a message that holds want (and names the path). */
static void open_fails(const char *path, bool ro, const char *want)
{
	char err[512] = "";
	struct lw_store *s = lw_store_open(path, ro, err, sizeof(err));

	if (s) {
		lw_store_close(s);
		fail_msg("open %s succeeded, expected: %s", path, want);
	}
	if (!strstr(err, want) || !strstr(err, path))
		fail_msg("open %s: got '%s', want '%s'", path, err, want);
}

static int64_t add(struct lw_store *s, const char *service, const char *provider,
		   const char *action, const char *findings, const char *key, int64_t ts,
		   uint32_t window, bool *merged)
{
	struct lw_buf b = {0};
	int64_t id = -1;
	bool m;

	mk_alert(&b, service, provider, action, findings);
	if (lw_store_add(s, b.p, b.len, key, ts, window, &id, &m) != 0)
		fail_msg("add: %s", lw_store_errmsg(s));
	if (merged)
		*merged = m;
	lw_buf_free(&b);
	return id;
}

static int64_t sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(
		sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

/* ======================================================================
 * the file
 * ====================================================================== */

static void test_create_modes(void **state)
{
	const char *dir = tpath("var/lib/leakwatch"), *db = tpath("var/lib/leakwatch/leakwatch.db");
	char wal[300];
	mode_t old = umask(0); /* the modes must not come from the umask */
	struct lw_store *s = open_ok(db, false);

	umask(old);
	assert_int_equal(mode_of(dir), 0700);
	assert_int_equal(mode_of(tpath("var/lib")), 0700);
	assert_int_equal(mode_of(db), 0600);
	/* an existing directory keeps its mode: --db /tmp/x.db must not tighten /tmp */
	assert_int_equal(mode_of(tmp), 0700); /* mkdtemp's */
	add(s, "checkout", "openai", "alert", "[" F_EMAIL "]", "k", T0, 0, NULL);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	assert_int_equal(mode_of(wal), 0600);
	lw_store_close(s);

	assert_int_equal(sql_int(db, "PRAGMA user_version"), LW_STORE_SCHEMA_VERSION);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM alerts"), 1);
	assert_int_equal(
		sql_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE "
			    "'alerts_%'"),
		5);
	/* WAL is a property of the file: a plain reader sees it */
	{
		sqlite3 *h;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(h);
	}

	/* a looser store is tightened, with its -wal; reopening keeps the alerts */
	s = open_ok(db, false);
	add(s, "checkout", "openai", "alert", "[]", NULL, T0, 0, NULL);
	assert_int_equal(chmod(db, 0644), 0);
	assert_int_equal(chmod(wal, 0640), 0);
	{
		struct lw_store *s2 = open_ok(db, false);

		assert_int_equal(mode_of(db), 0600);
		assert_int_equal(mode_of(wal), 0600);
		lw_store_close(s2);
	}
	lw_store_close(s);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM alerts"), 2);
	/* a loose file that is not a store is refused and left as it was */
	{
		FILE *f = fopen(tpath("notes.txt"), "w");

		assert_non_null(f);
		fputs("someone else's file, not a database at all, long enough to tell\n", f);
		for (int i = 0; i < 64; i++)
			fputs("................................................................\n",
			      f);
		fclose(f);
		assert_int_equal(chmod(tpath("notes.txt"), 0644), 0);
		open_fails(tpath("notes.txt"), false, "not a database");
		assert_int_equal(mode_of(tpath("notes.txt")), 0644);
	}

	/* read-only creates nothing */
	open_fails(tpath("nowhere/x.db"), true, "No such file");
	assert_int_equal(access(tpath("nowhere"), F_OK), -1);
	/* a relative path with no directory part */
	{
		char cwd[256];

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(tmp), 0);
		s = open_ok("rel.db", false);
		lw_store_close(s);
		assert_int_equal(chdir(cwd), 0);
		assert_int_equal(mode_of(tpath("rel.db")), 0600);
	}
}

static void test_refuse_symlink_and_special(void **state)
{
	const char *real = tpath("real.db"), *link = tpath("link.db");
	struct lw_store *s = open_ok(real, false);

	lw_store_close(s);
	assert_int_equal(symlink(real, link), 0);
	open_fails(link, false, "symbolic link");
	open_fails(link, true, "symbolic link");
	/* a dangling link: following it would create the file wherever it points */
	assert_int_equal(symlink(tpath("elsewhere.db"), tpath("dangling.db")), 0);
	open_fails(tpath("dangling.db"), false, "symbolic link");
	assert_int_equal(access(tpath("elsewhere.db"), F_OK), -1);
	/* not regular files */
	assert_int_equal(mkdir(tpath("adir"), 0700), 0);
	open_fails(tpath("adir"), false, "not a regular file");
	assert_int_equal(mkfifo(tpath("fifo"), 0600), 0);
	open_fails(tpath("fifo"), false, "not a regular file");
	open_fails(tpath("fifo"), true, "not a regular file");
	/* a parent that is a file */
	open_fails(tpath("real.db/x.db"), false, "Not a directory");
	/* empty path */
	{
		char err[128];

		assert_null(lw_store_open("", false, err, sizeof(err)));
		assert_non_null(strstr(err, "empty path"));
	}
}

static void test_corrupt_and_foreign(void **state)
{
	const char *junk = tpath("junk.db"), *db = tpath("damaged.db"), *other = tpath("other.db");
	unsigned char block[4096];
	uint64_t x = 0x1234567;
	struct lw_store *s;
	FILE *f;

	for (size_t i = 0; i < sizeof(block); i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		block[i] = (unsigned char)(x >> 56);
	}
	f = fopen(junk, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(block, 1, sizeof(block), f), sizeof(block));
	fclose(f);
	open_fails(junk, false, "not a database");
	open_fails(junk, true, "not a database");

	/* a store whose table pages are overwritten: opens (the header is
	 * intact), then queries fail with an error, not a crash */
	s = open_ok(db, false);
	for (int i = 0; i < 300; i++)
		add(s, "svc", "openai", "alert", "[" F_EMAIL "," F_JWT "]", NULL, T0 + i, 0, NULL);
	lw_store_close(s); /* the last close checkpoints the WAL into the file */
	{
		int fd = open(db, O_WRONLY);
		struct stat st;

		assert_true(fd >= 0);
		assert_int_equal(fstat(fd, &st), 0);
		assert_true(st.st_size > 8 * 4096);
		for (off_t off = 4096; off < st.st_size; off += 4096)
			assert_int_equal(pwrite(fd, block, 512, off), 512);
		close(fd);
	}
	s = lw_store_open(db, true, NULL, 0);
	if (s) {
		struct lw_store_iter *it = lw_store_query(s, NULL);
		struct lw_store_alert a;
		int rc = -1, n = 0;

		if (it) {
			while ((rc = lw_store_next(it, &a)) > 0)
				n++;
			lw_store_iter_free(it);
		}
		assert_int_equal(rc, -1);
		assert_non_null(strstr(lw_store_errmsg(s), db));
		print_message("damaged store: %d rows, then: %s\n", n, lw_store_errmsg(s));
		lw_store_close(s);
	}

	/* another program's SQLite database */
	sql_exec(other, "CREATE TABLE t(x)");
	open_fails(other, false, "not a leakwatch alert store");
	open_fails(other, true, "not a leakwatch alert store");
	/* an empty file (the agent made it and has not written yet) */
	close(open(tpath("empty.db"), O_CREAT | O_WRONLY, 0600));
	open_fails(tpath("empty.db"), true, "no alerts recorded yet");
	s = open_ok(tpath("empty.db"), false); /* the writer makes it a store */
	lw_store_close(s);
}

static void test_newer_schema(void **state)
{
	const char *db = tpath("new.db");
	struct lw_store *s = open_ok(db, false);

	lw_store_close(s);
	sql_exec(db, "PRAGMA user_version = 2");
	open_fails(db, false, "schema version 2 is newer than this leakwatch understands (1)");
	open_fails(db, true, "newer");
	/* untouched: an older leakwatch must not downgrade it */
	assert_int_equal(sql_int(db, "PRAGMA user_version"), 2);
}

/* ======================================================================
 * adding and dedupe
 * ====================================================================== */

static void get_ok(struct lw_store *s, int64_t id, struct lw_store_alert *a)
{
	int rc = lw_store_get(s, id, a);

	if (rc)
		fail_msg("get %lld: %d %s", (long long)id, rc, lw_store_errmsg(s));
}

static void test_add_and_merge(void **state)
{
	struct lw_store *s = open_ok(tpath("a.db"), false);
	const char *fe = "[" F_EMAIL "]";
	struct lw_store_alert a;
	int64_t id1, id;
	bool merged;

	id1 = add(s, "checkout", "openai", "alert", fe, "k1", T0, 60, &merged);
	assert_false(merged);
	get_ok(s, id1, &a);
	assert_int_equal(a.count, 1);
	assert_int_equal(a.first_ts, T0);
	assert_int_equal(a.last_ts, T0);
	assert_string_equal(a.status, "open");
	assert_null(a.note);
	assert_string_equal(a.service, "checkout");
	assert_string_equal(a.provider, "openai");
	assert_string_equal(a.host, "api.openai.com"); /* the provider's, from the JSON */
	assert_string_equal(a.action, "alert");
	assert_null(a.stage);
	assert_string_equal(a.reason, "classified_data");
	assert_string_equal(a.dedupe_key, "k1");
	/* stored as printed, without the newline */
	assert_int_equal(a.json[0], '{');
	assert_int_equal(a.json[strlen(a.json) - 1], '}');

	/* within the window: merged */
	id = add(s, "checkout", "openai", "alert", fe, "k1", T0 + 30 * NS, 60, &merged);
	assert_true(merged);
	assert_int_equal(id, id1);
	/* the window runs from the last time seen, not the first */
	id = add(s, "checkout", "openai", "alert", fe, "k1", T0 + 90 * NS, 60, &merged);
	assert_true(merged);
	assert_int_equal(id, id1);
	get_ok(s, id1, &a);
	assert_int_equal(a.count, 3);
	assert_int_equal(a.first_ts, T0);
	assert_int_equal(a.last_ts, T0 + 90 * NS);
	/* exactly at the edge: merged; one ns beyond: a new alert */
	id = add(s, "checkout", "openai", "alert", fe, "k1", T0 + 150 * NS, 60, &merged);
	assert_true(merged);
	id = add(s, "checkout", "openai", "alert", fe, "k1", T0 + 210 * NS + 1, 60, &merged);
	assert_false(merged);
	assert_true(id > id1);
	/* another key, same time: its own alert */
	id = add(s, "checkout", "openai", "alert", fe, "k2", T0 + 150 * NS, 60, &merged);
	assert_false(merged);
	/* a slightly older report (another CPU) still merges and moves first_ts */
	id = add(s, "checkout", "openai", "alert", fe, "k2", T0 + 140 * NS, 60, &merged);
	assert_true(merged);
	get_ok(s, id, &a);
	assert_int_equal(a.first_ts, T0 + 140 * NS);
	assert_int_equal(a.last_ts, T0 + 150 * NS);
	assert_int_equal(a.count, 2);
	/* window 0 and no key: never merged */
	id1 = add(s, "x", "openai", "alert", fe, "k3", T0, 0, &merged);
	id = add(s, "x", "openai", "alert", fe, "k3", T0, 0, &merged);
	assert_false(merged);
	assert_true(id != id1);
	id1 = add(s, "x", "openai", "alert", fe, NULL, T0, 60, &merged);
	id = add(s, "x", "openai", "alert", fe, NULL, T0, 60, &merged);
	assert_false(merged);
	assert_true(id != id1);
	/* an acknowledged alert is closed: a repeat opens a new one */
	id1 = add(s, "y", "openai", "alert", fe, "k4", T0, 60, &merged);
	assert_int_equal(lw_store_ack(s, id1, "seen", T0 + NS), 0);
	id = add(s, "y", "openai", "alert", fe, "k4", T0 + 10 * NS, 60, &merged);
	assert_false(merged);
	assert_true(id != id1);
	/* huge windows and extreme times do not overflow */
	id1 = add(s, "z", "openai", "alert", fe, "k5", INT64_MAX - 5, UINT32_MAX, &merged);
	id = add(s, "z", "openai", "alert", fe, "k5", INT64_MAX, UINT32_MAX, &merged);
	assert_true(merged);
	assert_int_equal(id, id1);
	id1 = add(s, "z", "openai", "alert", fe, "k6", INT64_MIN + 5, UINT32_MAX, &merged);
	id = add(s, "z", "openai", "alert", fe, "k6", INT64_MIN, UINT32_MAX, &merged);
	assert_true(merged);
	lw_store_close(s);
}

static void test_add_errors_and_hostname(void **state)
{
	struct lw_store *s = open_ok(tpath("b.db"), false), *ro;
	struct lw_store_alert a;
	char host[256] = "";
	int64_t id = 0;
	bool merged;

	assert_int_equal(lw_store_add(s, "not json", 8, "k", T0, 0, &id, &merged), -1);
	assert_non_null(strstr(lw_store_errmsg(s), "not a JSON object"));
	assert_int_equal(lw_store_add(s, "[1,2]", 5, "k", T0, 0, &id, &merged), -1);
	assert_int_equal(lw_store_add(s, "{\"a\":1} x", 9, "k", T0, 0, &id, &merged), -1);
	assert_int_equal(lw_store_add(s, "", 0, "k", T0, 0, &id, &merged), -1);
	/* a failed add leaves no transaction open: the next one works */
	id = add(s, "svc", "openai", "alert", "[]", "k", T0, 0, NULL);
	gethostname(host, sizeof(host) - 1);
	get_ok(s, id, &a);
	assert_string_equal(a.hostname, host);
	lw_store_set_hostname(s, "web-1");
	/* fields that are not strings, or missing, are NULL columns */
	assert_int_equal(lw_store_add(s, "{\"service\":7}\n", 14, NULL, T0, 0, &id, &merged), 0);
	get_ok(s, id, &a);
	assert_string_equal(a.hostname, "web-1");
	assert_null(a.service);
	assert_null(a.provider);
	assert_string_equal(a.json, "{\"service\":7}");
	assert_int_equal(lw_store_get(s, 9999, &a), LW_STORE_NOTFOUND);

	ro = open_ok(tpath("b.db"), true);
	assert_int_equal(lw_store_add(ro, "{}", 2, NULL, T0, 0, &id, &merged), -1);
	assert_non_null(strstr(lw_store_errmsg(ro), "read-only"));
	assert_int_equal(lw_store_ack(ro, 1, NULL, T0), -1);
	lw_store_close(ro);
	lw_store_close(s);
}

static void test_dedupe_key(void **state)
{
	struct lw_buf b = {0};
	char *k1, *k2, *k3;

	mk_alert(&b, "checkout", "openai", "alert", "[" F_JWT "," F_EMAIL "," F_JWT "]");
	k1 = lw_store_dedupe_key(b.p, b.len);
	assert_non_null(k1);
	assert_string_equal(
		k1,
		"[\"checkout\",\"openai\",\"alert\",null,\"classified_data\",[\"email\",\"jwt\"]]");
	mk_alert(&b, "checkout", "openai", "alert", "[" F_EMAIL "," F_JWT "]");
	k2 = lw_store_dedupe_key(b.p, b.len);
	assert_string_equal(k1, k2); /* order and repeats of types do not matter */
	mk_alert(&b, "checkout", "openai", "block", "[" F_EMAIL "," F_JWT "]");
	k3 = lw_store_dedupe_key(b.p, b.len);
	assert_string_not_equal(k1, k3);
	assert_null(lw_store_dedupe_key("nope", 4));
	assert_null(lw_store_dedupe_key("[]", 2));
	free(k1);
	free(k2);
	free(k3);
	k1 = lw_store_dedupe_key("{}", 2);
	assert_string_equal(k1, "[null,null,null,null,null,[]]");
	free(k1);
	lw_buf_free(&b);
}

/* ======================================================================
 * queries, ack
 * ====================================================================== */

/* The ids a filter returns, in order, as "3,2,1". */
static void ids(struct lw_store *s, const struct lw_store_filter *f, bool export, char *out,
		size_t n)
{
	struct lw_store_iter *it = export ? lw_store_export(s, f) : lw_store_query(s, f);
	struct lw_store_alert a;
	size_t len = 0;
	int rc;

	assert_non_null(it);
	out[0] = 0;
	while ((rc = lw_store_next(it, &a)) > 0)
		len += (size_t)snprintf(out + len, n - len, "%s%lld", len ? "," : "",
					(long long)a.id);
	assert_int_equal(rc, 0);
	lw_store_iter_free(it);
}

static void test_filters(void **state)
{
	struct lw_store *s = open_ok(tpath("c.db"), false);
	struct lw_store_filter f = {0};
	char got[256];

	/* ids 1..5, last seen out of id order */
	add(s, "checkout", "openai", "alert", "[" F_EMAIL "]", NULL, T0 + 10 * NS, 0, NULL);
	add(s, "search", "anthropic", "block", "[" F_KEY "]", NULL, T0 + 50 * NS, 0, NULL);
	add(s, "checkout", "anthropic", "alert", "[" F_JWT "]", NULL, T0 + 30 * NS, 0, NULL);
	add(s, "search", "openai", "would_block", "[" F_KEY "]", NULL, T0 + 40 * NS, 0, NULL);
	add(s, "checkout", "openai", "alert", "[" F_EMAIL "]", NULL, T0 + 20 * NS, 0, NULL);
	assert_int_equal(lw_store_ack(s, 3, "fp", T0 + 60 * NS), 0);

	ids(s, NULL, false, got, sizeof(got));
	assert_string_equal(got, "2,4,3,5,1");
	ids(s, NULL, true, got, sizeof(got));
	assert_string_equal(got, "1,2,3,4,5");
	f.since_ns = T0 + 30 * NS; /* inclusive */
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "2,4,3");
	f.service = "checkout";
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "3");
	f.since_ns = 0;
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "3,5,1");
	f.provider = "openai";
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "5,1");
	f.service = NULL;
	ids(s, &f, true, got, sizeof(got));
	assert_string_equal(got, "1,4,5");
	f.provider = NULL;
	f.status = "acked";
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "3");
	f.status = "open";
	f.limit = 2;
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "2,4");
	ids(s, &f, true, got, sizeof(got)); /* export ignores the limit */
	assert_string_equal(got, "1,2,4,5");
	f.oldest_first = true;
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "1,2");
	f = (struct lw_store_filter){.service = "nobody"};
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "");
	/* a filter value is data, never SQL */
	f = (struct lw_store_filter){.service = "x' OR '1'='1"};
	ids(s, &f, false, got, sizeof(got));
	assert_string_equal(got, "");
	lw_store_close(s);
}

static void test_ack_persists(void **state)
{
	const char *db = tpath("d.db");
	struct lw_store *s = open_ok(db, false);
	struct lw_store_alert a;
	int64_t id = add(s, "checkout", "openai", "alert", "[" F_EMAIL "]", "k", T0, 60, NULL);

	assert_int_equal(lw_store_ack(s, id, "ticket SEC-12", T0 + 5 * NS), 0);
	assert_int_equal(lw_store_ack(s, id + 100, "x", T0), LW_STORE_NOTFOUND);
	lw_store_close(s);

	s = open_ok(db, true);
	get_ok(s, id, &a);
	assert_string_equal(a.status, "acked");
	assert_string_equal(a.note, "ticket SEC-12");
	assert_int_equal(a.acked_ts, T0 + 5 * NS);
	lw_store_close(s);
	/* acking again without a note keeps the note, moves acked_ts */
	s = open_ok(db, false);
	assert_int_equal(lw_store_ack(s, id, NULL, T0 + 9 * NS), 0);
	get_ok(s, id, &a);
	assert_string_equal(a.note, "ticket SEC-12");
	assert_int_equal(a.acked_ts, T0 + 9 * NS);
	lw_store_close(s);
}

/* ======================================================================
 * concurrency and crashes
 * ====================================================================== */

static void test_reader_beside_writer(void **state)
{
	const char *db = tpath("e.db");
	int up[2], down[2];
	char c;
	pid_t pid;
	int status;

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the writer: one committed alert, then a second in a transaction
		 * it holds open (the write lock) until the parent has read */
		struct lw_store *s = lw_store_open(db, false, NULL, 0);
		sqlite3 *h;
		bool ok = s && sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK;

		ok = ok && add(s, "w", "openai", "alert", "[]", NULL, T0, 0, NULL) == 1;
		ok = ok && sqlite3_exec(h,
					"BEGIN IMMEDIATE; INSERT INTO alerts (first_ts, last_ts, "
					"json) VALUES (1, 1, '{}')",
					NULL, NULL, NULL) == SQLITE_OK;
		if (write(up[1], ok ? "y" : "n", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(3);
		ok = ok && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
		if (write(up[1], "y", 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(3);
		sqlite3_close(h);
		lw_store_close(s);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(read(up[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	{
		struct lw_store *r = open_ok(db, true);
		struct lw_store_filter f = {0};
		char got[64];

		/* the committed alert, not the one in flight; no waiting */
		ids(r, &f, true, got, sizeof(got));
		assert_string_equal(got, "1");
		assert_int_equal(write(down[1], "g", 1), 1);
		assert_int_equal(read(up[0], &c, 1), 1);
		ids(r, &f, true, got, sizeof(got));
		assert_string_equal(got, "1,2");
		lw_store_close(r);
	}
	assert_int_equal(write(down[1], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

static void test_survives_kill9(void **state)
{
	const char *db = tpath("f.db");
	char wal[300];
	struct lw_store *s;
	struct lw_store_filter f = {0};
	char got[64];
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		s = lw_store_open(db, false, NULL, 0);
		if (!s)
			_exit(1);
		for (int i = 0; i < 3; i++)
			add(s, "victim", "openai", "alert", "[" F_EMAIL "]", NULL, T0 + i, 0, NULL);
		raise(SIGKILL); /* no close, no checkpoint */
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	assert_int_equal(access(wal, F_OK), 0); /* the alerts are only in the WAL */
	s = open_ok(db, true);
	ids(s, &f, true, got, sizeof(got));
	assert_string_equal(got, "1,2,3");
	lw_store_close(s);
	s = open_ok(db, false); /* the next writer carries on */
	assert_int_equal(add(s, "victim", "openai", "alert", "[]", NULL, T0, 0, NULL), 4);
	lw_store_close(s);
}

static void test_insert_rate(void **state)
{
	struct lw_store *s = open_ok(tpath("rate.db"), false);
	struct lw_buf b = {0};
	struct timespec t0, t1;
	char key[32];
	double secs;
	int64_t id;
	bool merged;
	const int n = 10000;

	mk_alert(&b, "checkout", "openai", "alert", "[" F_EMAIL "," F_JWT "]");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		/* distinct keys with a window: the dedupe lookup runs, no merge */
		snprintf(key, sizeof(key), "k%d", i);
		if (lw_store_add(s, b.p, b.len, key, T0 + i, 300, &id, &merged) != 0)
			fail_msg("add %d: %s", i, lw_store_errmsg(s));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("10000 inserts (one transaction each): %.3f s, %.0f alerts/s, %.1f us each\n",
		      secs, n / secs, secs * 1e6 / n);
	assert_int_equal(id, n);
	assert_true(secs < 10.0); /* a few seconds at most, even under ASan */

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++)
		if (lw_store_add(s, b.p, b.len, "same", T0 + i, 300, &id, &merged) != 0)
			fail_msg("merge %d: %s", i, lw_store_errmsg(s));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("10000 merges into one alert: %.3f s, %.0f alerts/s\n", secs, n / secs);
	assert_true(secs < 10.0);
	lw_buf_free(&b);
	lw_store_close(s);
}

/* ======================================================================
 * leakwatch alerts
 * ====================================================================== */

struct cmd_out {
	int rc;
	char *out, *err;
};

static void cmd_out_free(struct cmd_out *o)
{
	free(o->out);
	free(o->err);
	o->out = o->err = NULL;
}

/* Runs `leakwatch alerts ARGS...` with its output in memory. */
static void run_alerts(struct cmd_out *o, ...)
{
	char *argv[16] = {"alerts"};
	int argc = 1;
	size_t on, en;
	FILE *out, *err;
	va_list ap;
	char *a;

	va_start(ap, o);
	while ((a = va_arg(ap, char *)) && argc < 15)
		argv[argc++] = a;
	va_end(ap);
	out = open_memstream(&o->out, &on);
	err = open_memstream(&o->err, &en);
	assert_non_null(out);
	assert_non_null(err);
	o->rc = lw_cmd_alerts_io(argc, argv, out, err);
	fclose(out);
	fclose(err);
}

/* columns of a line of UTF-8 text: one per code point, two for the CJK
 * ideographs (lead bytes 0xe4..0xe9) */
static size_t cols(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)s[i];

		c += (b & 0xc0) != 0x80;
		c += b >= 0xe4 && b <= 0xe9;
	}
	return c;
}

/* A store with a few alerts for the CLI tests; returns its path. */
static const char *cli_store(void)
{
	const char *db = tpath("cli.db");
	struct lw_store *s = open_ok(db, false);
	int64_t now = now_ns();

	lw_store_set_hostname(s, "web-1");
	/* 1: three times, two types */
	for (int i = 0; i < 3; i++)
		add(s, "checkout", "openai", "alert", "[" F_EMAIL "," F_KEY "," F_JWT "]", "k1",
		    now - 3 * 3600 * NS + i * NS, 60, NULL);
	/* 2: a long service name, and one that tries terminal escapes */
	add(s, "payments-reconciliation-batch-worker.service", "google-gemini", "would_block",
	    "[" F_KEY "]", NULL, now - 20 * 60 * NS, 0, NULL);
	add(s, "evil\x1b[2J\x1b]0;pwned\x07name", "anthropic", "block", "[" F_JWT "]", NULL,
	    now - 10 * 60 * NS, 0, NULL);
	/* 4: fixed time, for the exact timestamp; CSV-hostile service */
	add(s, "a,b \"c\"\nd", "openai", "alert", "[" F_EMAIL "," F_JWT "]", NULL, T0, 0, NULL);
	/* 5: a formula */
	add(s, "=HYPERLINK(\"http://x\")", "openai", "alert", "[]", NULL, T0 + NS, 0, NULL);
	lw_store_close(s);
	return db;
}

static void test_cli_usage(void **state)
{
	const char *db = cli_store();
	struct cmd_out o;
	char long_note[1002];

	run_alerts(&o, NULL);
	assert_int_equal(o.rc, 2);
	assert_non_null(strstr(o.err, "usage: leakwatch alerts list"));
	cmd_out_free(&o);
	run_alerts(&o, "--help", NULL);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "usage: leakwatch alerts list"));
	assert_non_null(strstr(o.out, LW_STORE_DEFAULT_PATH));
	cmd_out_free(&o);
	static const char *const helps[] = {"list", "show", "ack", "export"};
	for (size_t i = 0; i < 4; i++) {
		run_alerts(&o, helps[i], "--help", NULL);
		assert_int_equal(o.rc, 0);
		assert_non_null(strstr(o.out, "usage: leakwatch alerts"));
		cmd_out_free(&o);
	}
	/* every usage error: 2, a reason, nothing on stdout */
	static const char *const bad[][6] = {
		{"frob", NULL},
		{"list", "--since", "5y", NULL},
		{"list", "--since", "m", NULL},
		{"list", "--since", "99999999999999999999s", NULL},
		{"list", "--since", "9999999999999w", NULL},
		{"list", "--status", "closed", NULL},
		{"list", "--format", "csv", NULL},
		{"list", "--limit", "-1", NULL},
		{"list", "--note", "x", NULL},
		{"list", "extra", NULL},
		{"list", "--service", NULL},
		{"export", "--format", "table", NULL},
		{"export", "--limit", "3", NULL},
		{"show", NULL},
		{"show", "abc", NULL},
		{"show", "0", NULL},
		{"show", "1", "2", NULL},
		{"show", "99999999999999999999", NULL},
		{"ack", "1", "--note", "line\nbreak", NULL},
		{"ack", "1", "--note", "esc\x1b[31m", NULL},
		{"ack", "1", "--note", "c1 \xc2\x9b", NULL},
		{"ack", "1", "--note", "bad utf8 \xff", NULL},
		{"ack", "1", "--bogus", NULL},
		{"list", "--db=", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[8] = {"alerts"};
		int argc = 1;
		size_t on, en;
		FILE *out, *err;

		for (int k = 0; bad[i][k]; k++)
			argv[argc++] = (char *)bad[i][k];
		argv[argc++] = "--db";
		argv[argc++] = (char *)db;
		if (!strcmp(bad[i][0], "list") && bad[i][1] && !strcmp(bad[i][1], "--service"))
			argc -= 2; /* --service with no value at the end */
		out = open_memstream(&o.out, &on);
		err = open_memstream(&o.err, &en);
		o.rc = lw_cmd_alerts_io(argc, argv, out, err);
		fclose(out);
		fclose(err);
		if (o.rc != 2 || strcmp(o.out, "") || !strstr(o.err, "leakwatch alerts: "))
			fail_msg("case %zu (%s %s): rc %d, err %s", i, bad[i][0],
				 bad[i][1] ? bad[i][1] : "", o.rc, o.err);
		cmd_out_free(&o);
	}
	/* the note's limit is 1000 bytes */
	memset(long_note, 'x', 1001);
	long_note[1001] = 0;
	run_alerts(&o, "ack", "1", "--note", long_note, "--db", db, NULL);
	assert_int_equal(o.rc, 2);
	assert_non_null(strstr(o.err, "longer than 1000 bytes"));
	cmd_out_free(&o);
	long_note[1000] = 0;
	run_alerts(&o, "ack", "1", "--note", long_note, "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	cmd_out_free(&o);
	/* UTF-8 is fine in a note */
	run_alerts(&o, "ack", "2", "--note=faux positif, vérifié", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	cmd_out_free(&o);
}

static void test_cli_missing_and_broken(void **state)
{
	const char *missing = tpath("no/such.db");
	struct cmd_out o;

	static const char *const subs[][3] = {{"list"}, {"show", "1"}, {"ack", "1"}, {"export"}};
	for (size_t i = 0; i < 4; i++) {
		char *argv[6] = {"alerts", (char *)subs[i][0]};
		int argc = 2;
		size_t on, en;
		FILE *out, *err;

		if (subs[i][1])
			argv[argc++] = (char *)subs[i][1];
		argv[argc++] = "--db";
		argv[argc++] = (char *)missing;
		out = open_memstream(&o.out, &on);
		err = open_memstream(&o.err, &en);
		o.rc = lw_cmd_alerts_io(argc, argv, out, err);
		fclose(out);
		fclose(err);
		assert_int_equal(o.rc, 1);
		assert_non_null(strstr(o.err, missing));
		assert_non_null(strstr(o.err, "no alert store there"));
		cmd_out_free(&o);
	}
	/* ack did not create it */
	assert_int_equal(access(tpath("no"), F_OK), -1);

	/* junk and newer schema: 1, the path, the reason */
	{
		FILE *f = fopen(tpath("junk2.db"), "w");

		fputs("this is not sqlite, not even close; this is not sqlite at all..........", f);
		for (int i = 0; i < 100; i++)
			fputs("0123456789abcdef0123456789abcdef0123456789abcdef", f);
		fclose(f);
	}
	run_alerts(&o, "list", "--db", tpath("junk2.db"), NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.err, "junk2.db: file is not a database"));
	cmd_out_free(&o);
	{
		const char *db = tpath("newer.db");
		struct lw_store *s = open_ok(db, false);

		lw_store_close(s);
		sql_exec(db, "PRAGMA user_version = 9");
		run_alerts(&o, "export", "--db", db, NULL);
		assert_int_equal(o.rc, 1);
		assert_non_null(strstr(o.err, "newer.db: schema version 9 is newer"));
		cmd_out_free(&o);
	}
	/* show / ack an id that is not there */
	run_alerts(&o, "show", "42", "--db", cli_store(), NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.err, "no alert 42 in "));
	cmd_out_free(&o);
	run_alerts(&o, "ack", "42", "--db", tpath("cli.db"), NULL);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.err, "no alert 42 in "));
	cmd_out_free(&o);
}

static void test_cli_table(void **state)
{
	const char *db = cli_store();
	struct cmd_out o;
	int lines = 0;

	/* 6: wide characters, oldest */
	{
		struct lw_store *s = open_ok(db, false);

		add(s,
		    "\xe6\x94\xaf\xe4\xbb\x98\xe6\x9c\x8d\xe5\x8a\xa1-\xe7\xbb\x93\xe7\xae\x97-"
		    "\xe5\xa4\x9c\xe9\x97\xb4",
		    "openai", "alert", "[" F_EMAIL "]", NULL, T0 - NS, 0, NULL);
		lw_store_close(s);
	}

	run_alerts(&o, "list", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	print_message("%s", o.out);
	assert_string_equal(o.err, "");
	/* fits 80 columns, never wraps, nothing a terminal would obey */
	for (char *l = o.out, *e; *l; l = e + 1, lines++) {
		e = strchr(l, '\n');
		assert_non_null(e);
		if (cols(l, (size_t)(e - l)) > 80)
			fail_msg("line over 80 columns: %.*s", (int)(e - l), l);
	}
	assert_int_equal(lines, 7);
	assert_null(strchr(o.out, '\x1b'));
	assert_null(strchr(o.out, '\x07'));
	assert_true(strncmp(o.out, "ID LAST SEEN (UTC) ", 19) == 0);
	assert_non_null(strstr(o.out, "FINDINGS"));
	assert_non_null(strstr(o.out, "STATUS\n"));
	/* newest first: 3, 2, 1, then the two fixed in 2021 */
	assert_non_null(strstr(o.out, "\n 3 "));
	assert_true(strstr(o.out, "\n 3 ") < strstr(o.out, "\n 2 "));
	assert_true(strstr(o.out, "\n 2 ") < strstr(o.out, "\n 1 "));
	assert_true(strstr(o.out, "\n 5 2021-03-04 05:06 ") <
		    strstr(o.out, "\n 4 2021-03-04 05:06 "));
	/* truncated with an ellipsis */
	assert_non_null(
		strstr(o.out, " payments-r\xe2\x80\xa6 google-gem\xe2\x80\xa6 would_block "));
	assert_non_null(strstr(o.out, " evil?[2J?]\xe2\x80\xa6 anthropic "));
	/* the finding types, most severe first: key (critical), jwt (high), email */
	assert_non_null(strstr(o.out, " alert       aws_access\xe2\x80\xa6 open\n"));
	assert_non_null(strstr(o.out, " alert       jwt,email   open\n"));
	cmd_out_free(&o);

	/* filters */
	run_alerts(&o, "list", "--since", "1h", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "\n 2 "));
	assert_non_null(strstr(o.out, "\n 3 "));
	assert_null(strstr(o.out, "\n 1 "));
	cmd_out_free(&o);
	run_alerts(&o, "list", "--since=15m", "--db", db, NULL);
	assert_non_null(strstr(o.out, "\n 3 "));
	assert_null(strstr(o.out, "\n 2 "));
	cmd_out_free(&o);
	run_alerts(&o, "list", "--provider", "nobody", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.out, "no alerts\n");
	cmd_out_free(&o);
	run_alerts(&o, "list", "--limit", "1", "--db", db, NULL);
	assert_non_null(strstr(o.out, "\n 3 "));
	assert_null(strstr(o.out, "\n 2 "));
	assert_string_equal(o.err,
			    "leakwatch alerts: the 1 most recently seen; --limit N for more\n");
	cmd_out_free(&o);
	run_alerts(&o, "list", "--limit", "0", "--db", db, NULL);
	assert_non_null(strstr(o.out, "\n 6 "));
	assert_string_equal(o.err, "");
	cmd_out_free(&o);
}

/* Parses each line of out as a JSON object into v (at most max). */
static size_t json_lines(const char *out, json_t **v, size_t max)
{
	size_t n = 0;

	for (const char *l = out, *e; *l; l = e + 1) {
		json_error_t je;

		e = strchr(l, '\n');
		assert_non_null(e);
		assert_true(n < max);
		v[n] = json_loadb(l, (size_t)(e - l), 0, &je);
		if (!json_is_object(v[n]))
			fail_msg("not a JSON object: %.*s (%s)", (int)(e - l), l, je.text);
		n++;
	}
	return n;
}

static void test_cli_json(void **state)
{
	const char *db = cli_store();
	struct cmd_out o;
	json_t *v[8], *f;
	size_t n;

	run_alerts(&o, "ack", "1", "--note", "known test data", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.out, "alert 1 acknowledged\n");
	cmd_out_free(&o);

	run_alerts(&o, "list", "--format", "json", "--service", "checkout", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	n = json_lines(o.out, v, 8);
	assert_int_equal(n, 1);
	assert_int_equal(json_integer_value(json_object_get(v[0], "id")), 1);
	assert_int_equal(json_integer_value(json_object_get(v[0], "count")), 3);
	assert_string_equal(json_string_value(json_object_get(v[0], "status")), "acked");
	assert_string_equal(json_string_value(json_object_get(v[0], "note")), "known test data");
	assert_string_equal(json_string_value(json_object_get(v[0], "hostname")), "web-1");
	assert_int_equal(strlen(json_string_value(json_object_get(v[0], "first_ts"))), 27);
	assert_int_equal(json_string_value(json_object_get(v[0], "last_ts"))[26], 'Z');
	assert_non_null(json_string_value(json_object_get(v[0], "acked_ts")));
	/* the alert as printed is all there */
	assert_string_equal(json_string_value(json_object_get(v[0], "event")), "alert");
	assert_string_equal(json_string_value(json_object_get(v[0], "host")), "api.openai.com");
	assert_int_equal(json_integer_value(json_object_get(v[0], "pid")), 1234);
	f = json_object_get(v[0], "findings");
	assert_int_equal(json_array_size(f), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "sample")),
			    "j***@example.com");
	/* the store's fields come first */
	assert_true(strncmp(o.out, "{\"id\":1,\"count\":3,\"first_ts\":\"", 30) == 0);
	json_decref(v[0]);
	cmd_out_free(&o);

	run_alerts(&o, "list", "--format", "json", "--status", "open", "--db", db, NULL);
	n = json_lines(o.out, v, 8);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_true(json_is_null(json_object_get(v[i], "note")));
		assert_true(json_is_null(json_object_get(v[i], "acked_ts")));
		json_decref(v[i]);
	}
	/* the escapes stay escaped in JSON */
	assert_null(strchr(o.out, '\x1b'));
	assert_non_null(strstr(o.out, "evil\\u001B[2J"));
	cmd_out_free(&o);

	/* export json: every alert, oldest first */
	run_alerts(&o, "export", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	n = json_lines(o.out, v, 8);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(json_integer_value(json_object_get(v[i], "id")),
				 (json_int_t)i + 1);
		json_decref(v[i]);
	}
	cmd_out_free(&o);
}

static void test_cli_show(void **state)
{
	const char *db = cli_store();
	struct cmd_out o;

	run_alerts(&o, "ack", "1", "--note", "ticket SEC-7", "--db", db, NULL);
	cmd_out_free(&o);
	run_alerts(&o, "show", "1", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	print_message("%s", o.out);
	assert_true(strncmp(o.out, "alert 1\n  status         acked\n  acked          ", 48) == 0);
	assert_non_null(strstr(o.out, "\n  note           ticket SEC-7\n"));
	assert_non_null(strstr(o.out, "\n  count          3\n"));
	assert_non_null(strstr(o.out, "\n  recorded on    web-1\n"));
	assert_non_null(strstr(o.out, "\n  service        checkout\n"));
	assert_non_null(strstr(o.out, "\n  host           api.openai.com\n"));
	assert_non_null(strstr(o.out, "\n  pid            1234\n"));
	assert_non_null(strstr(o.out, "\n  incomplete     false\n"));
	assert_non_null(strstr(o.out,
			       "\n  findings       3\n"
			       "  - type=email rule=email count=2 severity=medium "
			       "sample=\"j***@example.com\" fingerprint=0123456789abcdef "
			       "action=alert field=messages[0].content\n"
			       "  - type=aws_access_key rule=aws_access_key count=3 "
			       "severity=critical sample=\"AKIA************MPLE\" action=block\n"));
	cmd_out_free(&o);
	/* control characters never reach the terminal */
	run_alerts(&o, "show", "3", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	assert_null(strchr(o.out, '\x1b'));
	assert_non_null(strstr(o.out, "  service        evil?[2J?]0;pwned?name\n"));
	assert_non_null(strstr(o.out, "  note           -\n"));
	cmd_out_free(&o);
}

static void test_cli_csv(void **state)
{
	const char *db = cli_store();
	struct cmd_out o;
	const char *l4, *l5;

	run_alerts(&o, "export", "--format", "csv", "--since", "36500d", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	assert_string_equal(o.err, "");
	{
		const char *head = "id,first_seen,last_seen,count,status,acked,note,hostname,"
				   "service,policy,provider,host,dst,pid,comm,exe,cgroup,method,"
				   "path,api,model,action,stage,reason,findings\r\n1,";

		assert_true(strncmp(o.out, head, strlen(head)) == 0);
	}
	/* a comma, quotes and a newline in one field: quoted, quotes doubled */
	l4 = strstr(o.out, "\r\n4,");
	assert_non_null(l4);
	{
		const char *want =
			"\r\n4,2021-03-04T05:06:07.000000Z,2021-03-04T05:06:07.000000Z,1,"
			"open,,,web-1,\"a,b \"\"c\"\"\nd\",default,openai,api.openai.com,"
			"10.0.0.7:443,1234,curl,/usr/bin/curl,/system.slice/"
			"checkout.service,POST,/v1/chat/completions,openai.chat,gpt-4o,"
			"alert,,classified_data,jwt:1;email:2\r\n";

		assert_true(strncmp(l4, want, strlen(want)) == 0);
	}
	/* a formula is defused; its quotes make it a quoted field */
	l5 = strstr(o.out, "\r\n5,");
	assert_non_null(l5);
	assert_non_null(strstr(l5, ",web-1,\"'=HYPERLINK(\"\"http://x\"\")\",default,"));
	/* an alert with three types, the most severe first */
	assert_non_null(strstr(o.out, ",aws_access_key:3;jwt:1;email:2\r\n"));
	/* six lines: the header and five alerts, each ending CRLF */
	{
		int crlf = 0;

		for (const char *p = o.out; (p = strstr(p, "\r\n")); p += 2)
			crlf++;
		assert_int_equal(crlf, 6);
	}
	cmd_out_free(&o);

	/* filters apply to export too */
	run_alerts(&o, "export", "--format", "csv", "--provider", "anthropic", "--db", db, NULL);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "\r\n3,"));
	assert_null(strstr(o.out, "\r\n1,"));
	cmd_out_free(&o);
}

static bool inv_collect(const struct lw_inv_row *r, bool opaque, void *ud)
{
	struct lw_inv_row *out = ud;

	if (strcmp(r->provider, "anthropic") == 0) {
		*out = *r;
		out->requests = opaque; /* smuggled: opaque-ness */
	}
	return true;
}

static bool inv_add(const struct lw_inv_row *d, void *ud)
{
	return lw_store_inventory_add(ud, d) == 0;
}

/* Refused connections are counted; a store written before the `refused`
 * column existed is migrated when read and when written. */
static void test_inventory_refused_and_old_store(void **state)
{
	char path[128], err[256];
	struct lw_store *s;
	struct lw_inventory *inv = lw_inventory_new();
	struct lw_inv_row got = {0};
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/old.db", tmp);
	s = lw_store_open(path, false, err, sizeof(err));
	assert_non_null(s);
	lw_store_close(s);
	/* the table as the previous version created it, with one row */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "CREATE TABLE inventory (service TEXT NOT NULL, provider TEXT NOT NULL,"
			     " model TEXT NOT NULL, endpoint TEXT NOT NULL, requests INTEGER NOT NULL"
			     " DEFAULT 0, connections INTEGER NOT NULL DEFAULT 0, bytes_out INTEGER"
			     " NOT NULL DEFAULT 0, bytes_in INTEGER NOT NULL DEFAULT 0, findings"
			     " INTEGER NOT NULL DEFAULT 0, first_ts INTEGER NOT NULL, last_ts INTEGER"
			     " NOT NULL, PRIMARY KEY (service, provider, model, endpoint));"
			     "INSERT INTO inventory VALUES ('jvm','anthropic','','',0,2,0,0,0,1,2)",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	s = lw_store_open(path, false, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(lw_store_inventory_each(s, inv_collect, &got), 0);
	assert_int_equal(got.connections, 2);
	assert_int_equal(got.refused, 0);
	lw_inventory_connection(inv, "jvm", "anthropic", 3, true);
	lw_inventory_connection(inv, "jvm", "anthropic", 4, false);
	lw_inventory_drain(inv, inv_add, s);
	memset(&got, 0, sizeof(got));
	assert_int_equal(lw_store_inventory_each(s, inv_collect, &got), 0);
	assert_int_equal(got.connections, 4);
	assert_int_equal(got.refused, 1);
	assert_int_equal(got.requests, 1); /* opaque: no decoded request */
	lw_store_close(s);
	lw_inventory_free(inv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_symlink_and_special, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_and_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_errors_and_hostname, setup, teardown),
		cmocka_unit_test(test_dedupe_key),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_beside_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_insert_rate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_missing_and_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_csv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_refused_and_old_store, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
