#include "catalog.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "policy/ydoc.h"
#include "util/buf.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline uint64_t hash_step(uint64_t h, unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		c += 32;
	h ^= c;
	h *= FNV_PRIME;
	return h;
}

uint64_t lw_host_hash(const char *s, size_t n)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = n; i-- > 0;)
		h = hash_step(h, (unsigned char)s[i]);
	return h;
}

struct cat_load {
	struct lw_catalog *cat;
	int docs;
	bool too_many; /* reported once, not for every provider past the limit */
};

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.';
}

/* Checks a lowercased hostname, or the part after '*' of a suffix pattern
 * (which may start with '.' or '-', as in "*-aiplatform.googleapis.com").
 * Returns NULL when fine, else why not. */
static const char *host_problem(const char *s, bool suffix)
{
	size_t n = strlen(s), label = 0;

	if (!n)
		return "empty";
	if (n > LW_HOST_MAX)
		return "longer than 253 characters";
	if (!suffix && s[0] == '.')
		return "starts with a dot";
	if (s[n - 1] == '.')
		return "ends with a dot";
	/* The kernel looks suffixes up only where a label or a hyphenated part
	 * starts, not at every byte: "*." and "*-" are the wildcards it can see. */
	if (suffix && s[0] != '.' && s[0] != '-')
		return "'*' must be followed by '.' or '-'";
	if (suffix && !strchr(s + 1, '.'))
		return "suffix too broad (it would match a whole top-level domain)";
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '*')
			return "'*' is only allowed as the first character";
		if (!host_char(s[i]))
			return "invalid character (letters, digits, '-', '_' and '.' only)";
		if (s[i] == '.') {
			if (i > 0 && s[i - 1] == '.')
				return "empty label";
			label = 0;
		} else if (++label > 63) {
			return "label longer than 63 characters";
		}
	}
	return NULL;
}

static void add_pattern(struct lw_ydoc *y, struct lw_catalog *cat, yaml_node_t *n, int provider)
{
	const char *s = lw_ydoc_str(y, n, "hostnames");
	const char *why;
	struct lw_host_pattern *p;
	char *lower;

	if (!s)
		return;
	lower = lw_xstrdup(s);
	for (char *c = lower; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c += 32;
	why = lower[0] == '*' ? host_problem(lower + 1, true) : host_problem(lower, false);
	if (why) {
		lw_ydoc_err(y, n, "hostnames: invalid hostname '%s': %s", s, why);
		free(lower);
		return;
	}
	cat->patterns = lw_xrealloc(cat->patterns, (cat->n_patterns + 1) * sizeof(*cat->patterns));
	p = &cat->patterns[cat->n_patterns++];
	p->pattern = lower;
	p->kind = lower[0] == '*' ? LW_HOST_SUFFIX : LW_HOST_EXACT;
	p->key = p->kind == LW_HOST_SUFFIX ? lower + 1 : lower;
	p->hash = lw_host_hash(p->key, strlen(p->key));
	p->provider = provider;
	p->line = lw_ynode_line(n);
}

static void add_range(struct lw_ydoc *y, struct lw_provider *p, yaml_node_t *n)
{
	const char *s = lw_ydoc_str(y, n, "ranges");
	struct lw_cidr r;

	if (!s)
		return;
	if (!strchr(s, '/') || lw_cidr_parse(s, &r)) {
		lw_ydoc_err(y, n, "ranges: '%s' is not a CIDR range (192.0.2.0/24, 2001:db8::/32)",
			    s);
		return;
	}
	if (!lw_cidr_host_bits_clear(&r)) {
		lw_ydoc_err(y, n, "ranges: '%s' has bits set past the prefix length", s);
		return;
	}
	p->ranges = lw_xrealloc(p->ranges, (p->n_ranges + 1) * sizeof(*p->ranges));
	p->ranges[p->n_ranges++] = r;
}

static bool id_ok(const char *id)
{
	if (strlen(id) > LW_PROVIDER_ID_MAX)
		return false;
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	return true;
}

enum { K_ID, K_NAME, K_HOSTNAMES, K_RANGES, K_N };

static void parse_provider(struct lw_ydoc *y, struct cat_load *cl, yaml_node_t *item)
{
	static const char *const keys[K_N] = { "id", "name", "hostnames", "ranges" };
	struct lw_catalog *cat = cl->cat;
	yaml_node_t *v[K_N], *k[K_N];
	struct lw_provider p = { .line = lw_ynode_line(item) };
	const char *id = NULL, *name = NULL;
	size_t first = cat->n_patterns;
	int idx;

	if (!lw_ydoc_map(y, item, "provider", keys, K_N, v, k))
		return;
	for (int i = 0; i < K_RANGES; i++)
		if (!v[i])
			lw_ydoc_err(y, item, "provider: missing '%s'", keys[i]);
	if (v[K_ID] && (id = lw_ydoc_str(y, v[K_ID], "id"))) {
		int dup = lw_catalog_find(cat, id);

		if (!id_ok(id)) {
			lw_ydoc_err(y, v[K_ID],
				    "id: '%s' must be 1-%d characters of a-z, 0-9 and '-'", id,
				    LW_PROVIDER_ID_MAX);
			id = NULL;
		} else if (!strcmp(id, "all")) {
			/* policies write allow_providers: all */
			lw_ydoc_err(y, v[K_ID], "id: 'all' is reserved");
			id = NULL;
		} else if (dup >= 0) {
			lw_ydoc_err(y, v[K_ID], "id: duplicate provider '%s' (first at line %d)",
				    id, cat->providers[dup].line);
			id = NULL;
		}
	}
	if (v[K_NAME])
		name = lw_ydoc_str(y, v[K_NAME], "name");
	if (cat->n == LW_MAX_PROVIDERS) {
		if (!cl->too_many)
			lw_ydoc_err(y, item,
				    "more than %d providers (policies hold a 64-bit provider mask)",
				    LW_MAX_PROVIDERS);
		cl->too_many = true;
		return;
	}
	idx = (int)cat->n;
	if (v[K_HOSTNAMES]) {
		yaml_node_t *h = v[K_HOSTNAMES];

		if (h->type != YAML_SEQUENCE_NODE)
			lw_ydoc_err(y, h, "hostnames: expected a list");
		else if (h->data.sequence.items.start == h->data.sequence.items.top)
			lw_ydoc_err(y, h, "hostnames: empty list");
		else
			for (yaml_node_item_t *it = h->data.sequence.items.start;
			     it < h->data.sequence.items.top; it++)
				add_pattern(y, cat, lw_ydoc_node(y, *it), idx);
	}
	if (v[K_RANGES]) {
		yaml_node_t *r = v[K_RANGES];

		if (r->type != YAML_SEQUENCE_NODE)
			lw_ydoc_err(y, r, "ranges: expected a list");
		else
			for (yaml_node_item_t *it = r->data.sequence.items.start;
			     it < r->data.sequence.items.top; it++)
				add_range(y, &p, lw_ydoc_node(y, *it));
	}
	if (!id) {
		/* keep indices meaning "position in the file" for the providers kept */
		for (size_t i = first; i < cat->n_patterns; i++)
			free(cat->patterns[i].pattern);
		cat->n_patterns = first;
		free(p.ranges);
		return;
	}
	p.id = lw_xstrdup(id);
	p.name = lw_xstrdup(name ? name : id);
	p.first_pattern = first;
	p.n_patterns = cat->n_patterns - first;
	cat->providers = lw_xrealloc(cat->providers, (cat->n + 1) * sizeof(*cat->providers));
	cat->providers[cat->n++] = p;
}

static void on_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud)
{
	static const char *const keys[] = { "providers" };
	struct cat_load *cl = ud;
	yaml_node_t *v[1], *k[1];

	if (++cl->docs > 1) {
		lw_ydoc_err(y, root, "the catalog is a single YAML document");
		return;
	}
	if (!lw_ydoc_map(y, root, "catalog", keys, 1, v, k))
		return;
	if (!v[0]) {
		lw_ydoc_err(y, root, "catalog: missing 'providers'");
		return;
	}
	if (v[0]->type != YAML_SEQUENCE_NODE) {
		lw_ydoc_err(y, v[0], "providers: expected a list");
		return;
	}
	if (v[0]->data.sequence.items.start == v[0]->data.sequence.items.top) {
		lw_ydoc_err(y, v[0], "providers: empty list");
		return;
	}
	for (yaml_node_item_t *it = v[0]->data.sequence.items.start;
	     it < v[0]->data.sequence.items.top; it++)
		parse_provider(y, cl, lw_ydoc_node(y, *it));
}

/* Index the patterns once the array stops moving. Two patterns with one key
 * would make the kernel table ambiguous: the second is an error. */
static void index_patterns(struct lw_catalog *cat, struct lw_diag *d)
{
	for (size_t i = 0; i < cat->n_patterns; i++) {
		struct lw_host_pattern *p = &cat->patterns[i];
		struct lw_hmap *m = p->kind == LW_HOST_SUFFIX ? &cat->suffix : &cat->exact;
		struct lw_host_pattern *old = lw_hmap_get(m, p->hash);

		if (!old) {
			lw_hmap_put(m, p->hash, p);
		} else if (!strcmp(old->key, p->key)) {
			lw_diag_add(d, cat->file, p->line,
				    "hostnames: '%s' is already listed for provider '%s' (line %d)",
				    p->pattern, cat->providers[old->provider].id, old->line);
		} else {
			/* 64-bit FNV: not expected in practice, but never silent */
			lw_diag_add(d, cat->file, p->line,
				    "hostnames: '%s' has the same hash as '%s' (line %d)",
				    p->pattern, old->pattern, old->line);
		}
	}
}

int lw_catalog_load(struct lw_catalog *cat, const char *path, struct lw_diag *d)
{
	struct cat_load cl = { .cat = cat };
	size_t before = d->n;

	cat->file = lw_xstrdup(path);
	if (lw_ydoc_each_file(path, d, on_doc, &cl) == 0 && !cl.docs && d->n == before)
		lw_diag_add(d, path, 0, "no providers (the file is empty)");
	index_patterns(cat, d);
	lw_diag_sort_lines(d, before);
	return (int)(d->n - before);
}

void lw_catalog_free(struct lw_catalog *cat)
{
	for (size_t i = 0; i < cat->n; i++) {
		free(cat->providers[i].id);
		free(cat->providers[i].name);
		free(cat->providers[i].ranges);
	}
	for (size_t i = 0; i < cat->n_patterns; i++)
		free(cat->patterns[i].pattern);
	free(cat->providers);
	free(cat->patterns);
	free(cat->file);
	lw_hmap_free(&cat->exact);
	lw_hmap_free(&cat->suffix);
	memset(cat, 0, sizeof(*cat));
}

int lw_catalog_find(const struct lw_catalog *cat, const char *id)
{
	for (size_t i = 0; i < cat->n; i++)
		if (!strcmp(cat->providers[i].id, id))
			return (int)i;
	return -1;
}

static bool key_is(const struct lw_host_pattern *p, const char *s, size_t n)
{
	return p && strncasecmp(p->key, s, n) == 0 && p->key[n] == 0;
}

int lw_catalog_match_host(const struct lw_catalog *cat, const char *host)
{
	size_t n = strlen(host);
	struct lw_host_pattern *p;
	uint64_t h = FNV_OFFSET;
	int best = -1;

	if (n && host[n - 1] == '.')
		n--;
	if (!n || n > LW_HOST_MAX)
		return -1;
	p = lw_hmap_get(&cat->exact, lw_host_hash(host, n));
	if (key_is(p, host, n))
		return p->provider;
	/* The kernel's walk: one backward pass, every proper suffix host[i..n)
	 * starting at a '.' or '-' looked up as it is hashed; longer suffixes
	 * come later and win. */
	for (size_t i = n; i-- > 1;) {
		h = hash_step(h, (unsigned char)host[i]);
		if (host[i] != '.' && host[i] != '-') /* no suffix key starts elsewhere */
			continue;
		p = lw_hmap_get(&cat->suffix, h);
		if (key_is(p, host + i, n - i))
			best = p->provider;
	}
	return best;
}

uint64_t lw_catalog_all_mask(const struct lw_catalog *cat)
{
	return cat->n >= 64 ? ~0ULL : (1ULL << cat->n) - 1;
}

void lw_catalog_for_each_pattern(const struct lw_catalog *cat,
				 void (*cb)(uint64_t hash, int kind, int provider_idx, void *ud),
				 void *ud)
{
	for (size_t i = 0; i < cat->n_patterns; i++)
		cb(cat->patterns[i].hash, cat->patterns[i].kind, cat->patterns[i].provider, ud);
}

void lw_catalog_for_each_range(const struct lw_catalog *cat,
			       void (*cb)(const struct lw_cidr *r, int provider_idx, void *ud),
			       void *ud)
{
	for (size_t i = 0; i < cat->n; i++)
		for (size_t j = 0; j < cat->providers[i].n_ranges; j++)
			cb(&cat->providers[i].ranges[j], (int)i, ud);
}
