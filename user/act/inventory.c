#include "act/inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/hmap.h"

/* Rows are few (services x providers x models x endpoints): a bound keeps a
 * client that invents endpoints from growing it without limit; rows past it
 * are folded into one "(other)" endpoint of their service and provider. */
#define MAX_ROWS 20000

struct lw_inventory {
	struct lw_hmap rows; /* hash of the key -> struct lw_inv_row (delta) */
	size_t n;
};

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return (h ^ 0xff) * 0x100000001b3ULL; /* a field separator */
}

struct lw_inventory *lw_inventory_new(void)
{
	return lw_xcalloc(1, sizeof(struct lw_inventory));
}

void lw_inventory_free(struct lw_inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->rows.cap; i++)
		free(inv->rows.slots[i].val);
	lw_hmap_free(&inv->rows);
	free(inv);
}

static struct lw_inv_row *row(struct lw_inventory *inv, const char *service, const char *provider,
			      const char *model, const char *endpoint, int64_t ts_ns)
{
	uint64_t h = fnv(endpoint, fnv(model, fnv(provider, fnv(service, 0xcbf29ce484222325ULL))));
	struct lw_inv_row *r;

	/* collisions of 64-bit hashes among a few thousand rows: checked */
	for (;;) {
		r = lw_hmap_get(&inv->rows, h);
		if (!r)
			break;
		if (!strcmp(r->service, service) && !strcmp(r->provider, provider) &&
		    !strcmp(r->model, model) && !strcmp(r->endpoint, endpoint))
			goto found;
		h++;
	}
	if (inv->n >= MAX_ROWS && strcmp(endpoint, "(other)"))
		return row(inv, service, provider, "", "(other)", ts_ns);
	r = lw_xcalloc(1, sizeof(*r));
	snprintf(r->service, sizeof(r->service), "%s", service);
	snprintf(r->provider, sizeof(r->provider), "%s", provider);
	snprintf(r->model, sizeof(r->model), "%s", model);
	snprintf(r->endpoint, sizeof(r->endpoint), "%s", endpoint);
	lw_hmap_put(&inv->rows, h, r);
	inv->n++;
found:
	if (!r->first_ns || ts_ns < r->first_ns)
		r->first_ns = ts_ns;
	if (ts_ns > r->last_ns)
		r->last_ns = ts_ns;
	return r;
}

static void endpoint_of(const char *method, const char *path, char *out, size_t n)
{
	/* the query may carry a key (Gemini's ?key=): never part of the name */
	snprintf(out, n, "%s %.*s", method && *method ? method : "?",
		 (int)strcspn(path ? path : "", "?#"), path ? path : "");
}

void lw_inventory_request(struct lw_inventory *inv, const char *service, const char *provider,
			  const char *model, const char *method, const char *path,
			  uint64_t bytes_out, uint64_t findings, int64_t ts_ns)
{
	char ep[LW_INV_FIELD];
	struct lw_inv_row *r;

	endpoint_of(method, path, ep, sizeof(ep));
	r = row(inv, service, provider, model ? model : "", ep, ts_ns);
	r->requests++;
	r->bytes_out += bytes_out;
	r->findings += findings;
}

void lw_inventory_bytes_in(struct lw_inventory *inv, const char *service, const char *provider,
			   const char *model, const char *method, const char *path, uint64_t n,
			   int64_t ts_ns)
{
	char ep[LW_INV_FIELD];

	endpoint_of(method, path, ep, sizeof(ep));
	row(inv, service, provider, model ? model : "", ep, ts_ns)->bytes_in += n;
}

void lw_inventory_connection(struct lw_inventory *inv, const char *service, const char *provider,
			     int64_t ts_ns, bool refused)
{
	struct lw_inv_row *r = row(inv, service, provider, "", "", ts_ns);

	r->connections++;
	r->refused += refused;
}

void lw_inventory_drain(struct lw_inventory *inv, bool (*fn)(const struct lw_inv_row *d, void *ud),
			void *ud)
{
	for (size_t i = 0; i < inv->rows.cap; i++) {
		struct lw_inv_row *r = inv->rows.slots[i].val;

		if (!r || !r->last_ns || !fn(r, ud))
			continue; /* unchanged since the last drain, or kept */
		/* handed over: the row starts a new delta */
		r->requests = r->connections = r->bytes_out = r->bytes_in = r->findings = 0;
		r->refused = 0;
		r->first_ns = r->last_ns = 0;
	}
}

size_t lw_inventory_size(const struct lw_inventory *inv)
{
	return inv->n;
}
