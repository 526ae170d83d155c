/* The inventory's table in the alert store (see user/act/inventory.h): one
 * row per service x provider x model x endpoint, counters added up. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "act/inventory.h"
#include "act/store.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS inventory ("
	" service TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,"
	" endpoint TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,"
	" connections INTEGER NOT NULL DEFAULT 0, bytes_out INTEGER NOT NULL DEFAULT 0,"
	" bytes_in INTEGER NOT NULL DEFAULT 0, findings INTEGER NOT NULL DEFAULT 0,"
	" first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,"
	" refused INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (service, provider, model, endpoint))";

/* stores written before `refused` existed */
static const char migrate[] = "ALTER TABLE inventory ADD COLUMN refused INTEGER NOT NULL DEFAULT 0";

static const char upsert[] =
	"INSERT INTO inventory (service, provider, model, endpoint, requests, connections,"
	" bytes_out, bytes_in, findings, first_ts, last_ts, refused)"
	" VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
	" ON CONFLICT (service, provider, model, endpoint) DO UPDATE SET"
	" requests = requests + excluded.requests,"
	" connections = connections + excluded.connections,"
	" bytes_out = bytes_out + excluded.bytes_out, bytes_in = bytes_in + excluded.bytes_in,"
	" findings = findings + excluded.findings, first_ts = min(first_ts, excluded.first_ts),"
	" last_ts = max(last_ts, excluded.last_ts), refused = refused + excluded.refused";

int lw_store_inventory_add(struct lw_store *s, const struct lw_inv_row *d)
{
	sqlite3 *db = lw_store_sqlite(s);
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, upsert, -1, &st, NULL) != SQLITE_OK) {
		if (!strstr(sqlite3_errmsg(db), "refused") ||
		    sqlite3_exec(db, migrate, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, upsert, -1, &st, NULL) != SQLITE_OK)
			return -1;
	}
	sqlite3_bind_text(st, 1, d->service, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d->model, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, d->endpoint, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)d->requests);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)d->connections);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)d->bytes_out);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)d->bytes_in);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)d->findings);
	sqlite3_bind_int64(st, 10, d->first_ns);
	sqlite3_bind_int64(st, 11, d->last_ns);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)d->refused);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

int lw_store_inventory_each(struct lw_store *s,
			    bool (*fn)(const struct lw_inv_row *r, bool opaque, void *ud), void *ud)
{
	/* every row; a service x provider pair none of whose requests could be
	 * decoded is opaque: its connections (the row with no model and no
	 * endpoint) are all there is */
	static const char q[] =
		"SELECT i.service, i.provider, i.model, i.endpoint, i.requests, i.connections,"
		" i.bytes_out, i.bytes_in, i.findings, i.first_ts, i.last_ts, i.refused,"
		" NOT EXISTS (SELECT 1 FROM inventory j WHERE j.service = i.service"
		"  AND j.provider = i.provider AND j.requests > 0)"
		" FROM inventory i"
		" ORDER BY i.service, i.provider, i.requests DESC, i.model, i.endpoint";
	sqlite3 *db = lw_store_sqlite(s);
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK && strstr(sqlite3_errmsg(db), "refused") &&
	    sqlite3_exec(db, migrate, NULL, NULL, NULL) == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK)
		/* a store the agent never wrote an inventory to: empty */
		return strstr(sqlite3_errmsg(db), "no such table") ? 0 : -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct lw_inv_row r = {0};

		snprintf(r.service, sizeof(r.service), "%s", sqlite3_column_text(st, 0));
		snprintf(r.provider, sizeof(r.provider), "%s", sqlite3_column_text(st, 1));
		snprintf(r.model, sizeof(r.model), "%s", sqlite3_column_text(st, 2));
		snprintf(r.endpoint, sizeof(r.endpoint), "%s", sqlite3_column_text(st, 3));
		r.requests = (uint64_t)sqlite3_column_int64(st, 4);
		r.connections = (uint64_t)sqlite3_column_int64(st, 5);
		r.bytes_out = (uint64_t)sqlite3_column_int64(st, 6);
		r.bytes_in = (uint64_t)sqlite3_column_int64(st, 7);
		r.findings = (uint64_t)sqlite3_column_int64(st, 8);
		r.first_ns = sqlite3_column_int64(st, 9);
		r.last_ns = sqlite3_column_int64(st, 10);
		r.refused = (uint64_t)sqlite3_column_int64(st, 11);
		if (!fn(&r, sqlite3_column_int(st, 12) != 0, ud))
			break;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}
