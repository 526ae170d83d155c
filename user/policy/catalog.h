/*
 * The provider catalog (policies/providers.yaml): which hostnames and
 * address ranges belong to which AI provider.
 *
 * A provider's index is its position in the file. Policies store the
 * providers they allow as a 64-bit mask over these indices, and the kernel
 * tables carry the index, so a catalog holds at most LW_MAX_PROVIDERS and
 * reordering the file renumbers providers (tables are rebuilt at load).
 */
#ifndef LW_CATALOG_H
#define LW_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"
#include "util/hmap.h"
#include "util/netaddr.h" /* struct lw_cidr */

#define LW_MAX_PROVIDERS 64
#define LW_PROVIDER_ID_MAX 32
#define LW_HOST_MAX 253 /* longest DNS name, without the trailing dot */

/* Kinds of hostname pattern, as the kernel tables key them. */
enum lw_host_kind {
	LW_HOST_EXACT = 0,  /* "api.openai.com" */
	LW_HOST_SUFFIX = 1, /* "*.openai.azure.com": a longer name ending in ".openai.azure.com" */
};
/* A suffix pattern is "*." or "*-" and the rest of a name with at least one
 * dot ("*-aiplatform.googleapis.com"): lookups of a name's suffixes need only
 * start at its '.' and '-' bytes. */

struct lw_host_pattern {
	char *pattern;   /* as written, lowercased: "*.openai.azure.com" */
	const char *key; /* what is hashed and compared: pattern, or pattern + 1 for suffixes */
	int kind;        /* enum lw_host_kind */
	int provider;    /* index */
	uint64_t hash;   /* lw_host_hash(key) */
	int line;
};

struct lw_provider {
	char *id;   /* [a-z0-9-]+ */
	char *name; /* display name */
	size_t first_pattern, n_patterns; /* slice of lw_catalog.patterns */
	struct lw_cidr *ranges;
	size_t n_ranges;
	int line;
};

struct lw_catalog {
	char *file;
	struct lw_provider *providers;
	size_t n;
	struct lw_host_pattern *patterns;
	size_t n_patterns;
	struct lw_hmap exact;  /* hash -> pattern */
	struct lw_hmap suffix; /* hash -> pattern */
};

/* FNV-1a over the lowercased name, folded from its last byte to its first,
 * so one backward pass over a name yields the hash of every suffix. The
 * kernel computes the same over SNI and DNS names: keep the two bit-exact. */
uint64_t lw_host_hash(const char *s, size_t n);

/* Loads path into a zeroed cat. Every problem is added to d; returns the
 * number of errors added (0: usable). The catalog must be freed either way. */
int lw_catalog_load(struct lw_catalog *cat, const char *path, struct lw_diag *d);
void lw_catalog_free(struct lw_catalog *cat);

/* Provider index of id, or -1. */
int lw_catalog_find(const struct lw_catalog *cat, const char *id);
/* Provider index owning host, or -1. Case-insensitive; one trailing dot is
 * ignored. An exact pattern wins over suffixes, then the longest suffix. */
int lw_catalog_match_host(const struct lw_catalog *cat, const char *host);
/* Bit i set for every provider i of the catalog. */
uint64_t lw_catalog_all_mask(const struct lw_catalog *cat);

/* For the kernel tables: exact pattern -> {hash(name), LW_HOST_EXACT},
 * "*.suffix" -> {hash(".suffix"), LW_HOST_SUFFIX}. Keys are unique. */
void lw_catalog_for_each_pattern(const struct lw_catalog *cat,
				 void (*cb)(uint64_t hash, int kind, int provider_idx, void *ud),
				 void *ud);
void lw_catalog_for_each_range(const struct lw_catalog *cat,
			       void (*cb)(const struct lw_cidr *r, int provider_idx, void *ud),
			       void *ud);

#endif
