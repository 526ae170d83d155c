/* Hash map from 64-bit keys to pointers (open addressing, linear probing,
 * backward-shift deletion so there are no tombstones to pile up). */
#ifndef LW_HMAP_H
#define LW_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct lw_hmap_slot {
	uint64_t key;
	void *val; /* NULL marks an empty slot */
};

struct lw_hmap {
	struct lw_hmap_slot *slots;
	size_t cap; /* power of two */
	size_t len;
};

void *lw_hmap_get(const struct lw_hmap *m, uint64_t key);
/* Inserts or replaces; val must not be NULL. Returns the previous value. */
void *lw_hmap_put(struct lw_hmap *m, uint64_t key, void *val);
void *lw_hmap_del(struct lw_hmap *m, uint64_t key);
void lw_hmap_free(struct lw_hmap *m);

/* Iteration: for (i = 0; i < m->cap; i++) if (m->slots[i].val) ...
 * Deleting during iteration may move a later entry before i: callers that
 * delete collect keys first. */

#endif
