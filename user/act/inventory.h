/*
 * The AI usage inventory: which service uses which provider, model and
 * endpoint, how much, since when. Built from observed traffic: decoded
 * requests (service x provider x model x endpoint) and, for connections
 * whose TLS could not be read, the connection alone (model and endpoint
 * empty: "opaque"). Kept in memory as deltas and handed to the store in
 * batches, so counting a request costs a hash lookup, not a database write.
 */
#ifndef LW_ACT_INVENTORY_H
#define LW_ACT_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_INV_FIELD 160

struct lw_inv_row {
	char service[LW_INV_FIELD], provider[40], model[LW_INV_FIELD];
	char endpoint[LW_INV_FIELD]; /* "POST /v1/chat/completions" (no query) */
	uint64_t requests, connections, bytes_out, bytes_in, findings;
	uint64_t refused;	   /* connections the provider gates refused */
	int64_t first_ns, last_ns; /* realtime */
};

struct lw_inventory;

struct lw_inventory *lw_inventory_new(void);
void lw_inventory_free(struct lw_inventory *inv);

/* A decoded request: bytes_out is what the request carried (headers and
 * body as captured), findings the number of findings it raised. */
void lw_inventory_request(struct lw_inventory *inv, const char *service, const char *provider,
			  const char *model, const char *method, const char *path,
			  uint64_t bytes_out, uint64_t findings, int64_t ts_ns);
/* Response bytes, for the row of the connection's last request. */
void lw_inventory_bytes_in(struct lw_inventory *inv, const char *service, const char *provider,
			   const char *model, const char *method, const char *path, uint64_t n,
			   int64_t ts_ns);
/* A provider connection (from the gates): counted on the service x provider
 * row with no model and endpoint, which stays "opaque" when none of its
 * requests could be decoded. refused: the gates refused it (an attempt to
 * use a provider is usage the security team wants to see too). */
void lw_inventory_connection(struct lw_inventory *inv, const char *service, const char *provider,
			     int64_t ts_ns, bool refused);

/* Every row that changed since the last call, as a delta (counts since
 * then, first/last seen of those), then forgets the deltas. fn returns
 * false to keep them for the next call (e.g. the store was busy). */
void lw_inventory_drain(struct lw_inventory *inv, bool (*fn)(const struct lw_inv_row *d, void *ud),
			void *ud);
size_t lw_inventory_size(const struct lw_inventory *inv);

/* In the alert store (user/act/store_inv.c): add a delta to its row
 * (0 or -1: sqlite3_errmsg(lw_store_sqlite(s))), and every row, with
 * `opaque` set for a service x provider pair none of whose requests could
 * be decoded. */
struct lw_store;
int lw_store_inventory_add(struct lw_store *s, const struct lw_inv_row *d);
int lw_store_inventory_each(struct lw_store *s,
			    bool (*fn)(const struct lw_inv_row *r, bool opaque, void *ud),
			    void *ud);

#endif
