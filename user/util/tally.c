#include "util/tally.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

struct entry {
	char *k[LW_TALLY_KEYS];
	uint64_t n;
};

static uint64_t hash(const char *const k[LW_TALLY_KEYS])
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (int i = 0; i < LW_TALLY_KEYS; i++) {
		for (const unsigned char *p = (const unsigned char *)k[i]; *p; p++) {
			h ^= *p;
			h *= 0x100000001b3ULL;
		}
		h ^= 0x1f; /* the separator: ("ab","") is not ("a","b") */
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool same(const struct entry *e, const char *const k[LW_TALLY_KEYS])
{
	for (int i = 0; i < LW_TALLY_KEYS; i++)
		if (strcmp(e->k[i], k[i]))
			return false;
	return true;
}

void lw_tally_add(struct lw_tally *t, const char *k0, const char *k1, const char *k2, uint64_t n)
{
	const char *k[LW_TALLY_KEYS] = {k0 ? k0 : "", k1 ? k1 : "", k2 ? k2 : ""};
	uint64_t h = hash(k);
	struct entry *e;

	/* a 64-bit collision moves on to the next key: never merged */
	while ((e = lw_hmap_get(&t->m, h)) && !same(e, k))
		h++;
	if (!e) {
		e = lw_xcalloc(1, sizeof(*e));
		for (int i = 0; i < LW_TALLY_KEYS; i++)
			e->k[i] = lw_xstrdup(k[i]);
		lw_hmap_put(&t->m, h, e);
	}
	e->n += n;
}

void lw_tally_each(const struct lw_tally *t,
		   void (*fn)(const char *const k[LW_TALLY_KEYS], uint64_t n, void *ud), void *ud)
{
	for (size_t i = 0; i < t->m.cap; i++) {
		const struct entry *e = t->m.slots[i].val;

		if (e)
			fn((const char *const *)e->k, e->n, ud);
	}
}

void lw_tally_free(struct lw_tally *t)
{
	for (size_t i = 0; i < t->m.cap; i++) {
		struct entry *e = t->m.slots[i].val;

		if (!e)
			continue;
		for (int k = 0; k < LW_TALLY_KEYS; k++)
			free(e->k[k]);
		free(e);
	}
	lw_hmap_free(&t->m);
}
