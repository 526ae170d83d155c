#include "hmap.h"

#include <stdlib.h>

#include "buf.h"

static size_t hash(uint64_t k)
{
	/* splitmix64 finaliser: cheap and mixes sequential ids well */
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return (size_t)k;
}

static struct lw_hmap_slot *find(const struct lw_hmap *m, uint64_t key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct lw_hmap_slot *s = &m->slots[i];

		if (!s->val || s->key == key)
			return s;
	}
}

void *lw_hmap_get(const struct lw_hmap *m, uint64_t key)
{
	struct lw_hmap_slot *s = find(m, key);

	return s ? s->val : NULL;
}

static void grow(struct lw_hmap *m)
{
	struct lw_hmap old = *m;
	size_t i;

	m->cap = old.cap ? old.cap * 2 : 16;
	m->slots = lw_xcalloc(m->cap, sizeof(*m->slots));
	m->len = 0;
	for (i = 0; i < old.cap; i++)
		if (old.slots[i].val)
			lw_hmap_put(m, old.slots[i].key, old.slots[i].val);
	free(old.slots);
}

void *lw_hmap_put(struct lw_hmap *m, uint64_t key, void *val)
{
	struct lw_hmap_slot *s;
	void *prev;

	if ((m->len + 1) * 4 > m->cap * 3)
		grow(m);
	s = find(m, key);
	prev = s->val;
	if (!prev)
		m->len++;
	s->key = key;
	s->val = val;
	return prev;
}

void *lw_hmap_del(struct lw_hmap *m, uint64_t key)
{
	struct lw_hmap_slot *s = find(m, key);
	size_t i, j;
	void *val;

	if (!s || !s->val)
		return NULL;
	val = s->val;
	m->len--;
	/* backward-shift: move later members of the probe run into the hole */
	i = (size_t)(s - m->slots);
	for (j = (i + 1) & (m->cap - 1); m->slots[j].val; j = (j + 1) & (m->cap - 1)) {
		size_t home = hash(m->slots[j].key) & (m->cap - 1);

		/* slot j may move to i only if its home is not in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].val = NULL;
	m->slots[i].key = 0;
	return val;
}

void lw_hmap_free(struct lw_hmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}
