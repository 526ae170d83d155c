/*
 * Unit tests for user/policy: the provider catalog (hash, host matching,
 * kernel-table iteration), policy loading with every error kind at its exact
 * line, selection precedence and selectors, and `leakwatch policy`.
 *
 * Fixtures live in tests/unit/fixtures/policy/; like every unit test this
 * one runs from the repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmds.h"
#include "policy/catalog.h"
#include "policy/policy.h"
#include "util/buf.h"

#define FIX "tests/unit/fixtures/policy/"

/* provider indices of FIX "valid/providers.yaml" */
enum { P_OPENAI, P_AZURE, P_ANTHROPIC, P_VERTEX, P_SPECIAL };
#define BIT(i) (1ULL << (i))

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- temporary directories ------------------------------------------ */

struct tmpdir {
	char path[64];
	char *files[80];
	size_t n;
};

static void tmp_init(struct tmpdir *t)
{
	snprintf(t->path, sizeof(t->path), "/tmp/lw-test-policy.XXXXXX");
	assert_non_null(mkdtemp(t->path));
	t->n = 0;
}

static void tmp_write(struct tmpdir *t, const char *name, const void *data, size_t n)
{
	struct lw_buf p = {0};
	FILE *f;

	lw_buf_printf(&p, "%s/%s", t->path, name);
	f = fopen(p.p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
	assert_true(t->n < sizeof(t->files) / sizeof(t->files[0]));
	t->files[t->n++] = p.p;
}

static void tmp_puts(struct tmpdir *t, const char *name, const char *text)
{
	tmp_write(t, name, text, strlen(text));
}

static void tmp_done(struct tmpdir *t)
{
	for (size_t i = 0; i < t->n; i++) {
		unlink(t->files[i]);
		free(t->files[i]);
	}
	rmdir(t->path);
}

static const char mini_catalog[] = "providers:\n"
				   "  - id: openai\n"
				   "    name: OpenAI\n"
				   "    hostnames: [api.openai.com]\n";

/* ---- helpers ----------------------------------------------------------- */

static void assert_errors(const struct lw_diag *d, const char *const *want, size_t n)
{
	for (size_t i = 0; i < d->n || i < n; i++) {
		if (i >= d->n)
			fail_msg("missing error %zu: %s", i, want[i]);
		if (i >= n)
			fail_msg("unexpected error %zu: %s", i, d->msgs[i]);
		if (strcmp(d->msgs[i], want[i]) != 0)
			fail_msg("error %zu:\n  got  %s\n  want %s", i, d->msgs[i], want[i]);
	}
}

static void load_ok(struct lw_policy_set *set, const char *dir)
{
	struct lw_diag d = {0};
	int n = lw_policy_load(set, dir, &d);

	for (size_t i = 0; i < d.n; i++)
		print_error("unexpected: %s\n", d.msgs[i]);
	assert_int_equal(n, 0);
	assert_int_equal(d.n, 0);
	lw_diag_free(&d);
}

static const char *select_name(const struct lw_policy_set *set, const char *cg, const char *exe,
			       uint32_t uid)
{
	return lw_policy_select(set, cg, exe, uid)->name;
}

/* ======================================================================
 * hash
 * ====================================================================== */

static void test_host_hash_vectors(void **state)
{
	/* Independent reference values:
	 * python3 -c 'import sys; from functools import reduce; print(hex(reduce(lambda h,c:
	 * ((h^c)*0x100000001b3)%2**64, reversed(sys.argv[1].lower().encode()),
	 * 0xcbf29ce484222325)))' api.openai.com
	 */
	assert_int_equal(lw_host_hash("api.openai.com", 14), 0xfb0400786e3c076cULL);
	assert_int_equal(lw_host_hash(".openai.azure.com", 17), 0xdee42a061cc1bdb9ULL);
	/* one byte: the published FNV-1a 64 vector for "a" (reversal is moot) */
	assert_int_equal(lw_host_hash("a", 1), 0xaf63dc4c8601ec8cULL);
	assert_int_equal(lw_host_hash("", 0), 0xcbf29ce484222325ULL);
	/* case folds; n bounds the name, not a NUL */
	assert_int_equal(lw_host_hash("API.OpenAI.COM", 14), 0xfb0400786e3c076cULL);
	assert_int_equal(lw_host_hash("api.openai.com.xyz", 14), 0xfb0400786e3c076cULL);
	/* backwards: different from the forward FNV-1a of a palindrome-free name */
	assert_int_not_equal(lw_host_hash("ab", 2), lw_host_hash("ba", 2));
}

/* ======================================================================
 * catalog
 * ====================================================================== */

static void load_catalog(struct lw_catalog *cat, const char *path)
{
	struct lw_diag d = {0};

	memset(cat, 0, sizeof(*cat));
	assert_int_equal(lw_catalog_load(cat, path, &d), 0);
	assert_int_equal(d.n, 0);
	lw_diag_free(&d);
}

static void test_catalog_shipped(void **state)
{
	static const char *const ids[] = {
		"openai",      "azure-openai", "anthropic", "google-gemini", "vertex-ai",
		"aws-bedrock", "cohere",       "mistral",   "groq",	     "together",
		"fireworks",   "perplexity",   "deepseek",  "xai",	     "openrouter",
		"huggingface", "replicate",
	};
	struct lw_catalog cat;

	load_catalog(&cat, "policies/providers.yaml");
	assert_int_equal(cat.n, 17);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(lw_catalog_find(&cat, ids[i]), (int)i);
		assert_non_null(cat.providers[i].name);
	}
	assert_int_equal(lw_catalog_match_host(&cat, "api.openai.com"), 0);
	assert_int_equal(lw_catalog_match_host(&cat, "myres.openai.azure.com"), 1);
	assert_int_equal(lw_catalog_match_host(&cat, "us-central1-aiplatform.googleapis.com"), 4);
	assert_int_equal(lw_catalog_match_host(&cat, "bedrock-runtime.eu-west-1.amazonaws.com"), 5);
	assert_int_equal(lw_catalog_match_host(&cat, "s3.amazonaws.com"), -1);
	assert_int_equal(lw_catalog_match_host(&cat, "x.endpoints.huggingface.cloud"), 15);
	lw_catalog_free(&cat);
}

static void test_catalog_match(void **state)
{
	struct lw_catalog cat;
	char longname[300];

	load_catalog(&cat, FIX "valid/providers.yaml");
	assert_int_equal(cat.n, 5);
	/* exact */
	assert_int_equal(lw_catalog_match_host(&cat, "api.openai.com"), P_OPENAI);
	assert_int_equal(lw_catalog_match_host(&cat, "aiplatform.googleapis.com"), P_VERTEX);
	/* case, on both sides: the catalog wrote API.Anthropic.com */
	assert_int_equal(lw_catalog_match_host(&cat, "API.OPENAI.COM"), P_OPENAI);
	assert_int_equal(lw_catalog_match_host(&cat, "api.anthropic.com"), P_ANTHROPIC);
	assert_int_equal(lw_catalog_match_host(&cat, "Api.Anthropic.Com"), P_ANTHROPIC);
	/* one trailing dot, not two */
	assert_int_equal(lw_catalog_match_host(&cat, "api.openai.com."), P_OPENAI);
	assert_int_equal(lw_catalog_match_host(&cat, "x.openai.azure.com."), P_AZURE);
	assert_int_equal(lw_catalog_match_host(&cat, "api.openai.com.."), -1);
	/* suffix: any depth, never the bare suffix */
	assert_int_equal(lw_catalog_match_host(&cat, "x.api.openai.com"), P_OPENAI);
	assert_int_equal(lw_catalog_match_host(&cat, "myres.openai.azure.com"), P_AZURE);
	assert_int_equal(lw_catalog_match_host(&cat, "a.b.c.openai.azure.com"), P_AZURE);
	assert_int_equal(lw_catalog_match_host(&cat, "openai.azure.com"), -1);
	assert_int_equal(lw_catalog_match_host(&cat, ".openai.azure.com"), -1);
	/* a suffix not at a dot */
	assert_int_equal(lw_catalog_match_host(&cat, "us-central1-aiplatform.googleapis.com"),
			 P_VERTEX);
	assert_int_equal(lw_catalog_match_host(&cat, "-aiplatform.googleapis.com"), -1);
	/* label boundaries of exact names are not suffixes */
	assert_int_equal(lw_catalog_match_host(&cat, "xapi.openai.com"), -1);
	assert_int_equal(lw_catalog_match_host(&cat, "myopenai.azure.com"), -1);
	assert_int_equal(lw_catalog_match_host(&cat, "api.openai.com.evil.example"), -1);
	assert_int_equal(lw_catalog_match_host(&cat, "openai.com"), -1);
	/* exact beats suffix; the longest suffix wins */
	assert_int_equal(lw_catalog_match_host(&cat, "special.openai.azure.com"), P_SPECIAL);
	assert_int_equal(lw_catalog_match_host(&cat, "x.special.openai.azure.com"), P_AZURE);
	assert_int_equal(lw_catalog_match_host(&cat, "res.eu.openai.azure.com"), P_SPECIAL);
	assert_int_equal(lw_catalog_match_host(&cat, "eu.openai.azure.com"), P_AZURE);
	/* nothing, a dot, too long */
	assert_int_equal(lw_catalog_match_host(&cat, ""), -1);
	assert_int_equal(lw_catalog_match_host(&cat, "."), -1);
	memset(longname, 'a', sizeof(longname));
	strcpy(longname + sizeof(longname) - 16, ".api.openai.com");
	assert_int_equal(lw_catalog_match_host(&cat, longname), -1);
	/* 253 is still a name */
	assert_int_equal(lw_catalog_match_host(&cat, longname + 300 - 254), P_OPENAI);

	assert_int_equal(lw_catalog_find(&cat, "anthropic"), P_ANTHROPIC);
	assert_int_equal(lw_catalog_find(&cat, "Anthropic"), -1);
	assert_int_equal(lw_catalog_find(&cat, "nope"), -1);
	assert_int_equal(lw_catalog_all_mask(&cat), 0x1f);
	lw_catalog_free(&cat);
}

/* The catalog's meaning, written the slow way: exact name, else the longest
 * suffix key that is a proper suffix of the name. */
static int naive_match(const struct lw_catalog *cat, const char *host)
{
	size_t n = strlen(host), best_len = 0;
	int best = -1;

	if (n && host[n - 1] == '.')
		n--;
	if (!n || n > LW_HOST_MAX)
		return -1;
	for (size_t i = 0; i < cat->n_patterns; i++) {
		const struct lw_host_pattern *p = &cat->patterns[i];
		size_t kl = strlen(p->key);

		if (p->kind == LW_HOST_EXACT && kl == n && !strncasecmp(p->key, host, n))
			return p->provider;
		if (p->kind == LW_HOST_SUFFIX && kl < n && kl > best_len &&
		    !strncasecmp(p->key, host + n - kl, kl)) {
			best = p->provider;
			best_len = kl;
		}
	}
	return best;
}

static void test_catalog_match_model(void **state)
{
	static const char *const prefixes[] = {"",  "a",   "a.",       "x-",	      "B.c.", "-",
					       ".", "eu.", "special.", "us-central1", "api."};
	struct lw_catalog cat;
	uint64_t seed = 42;
	char host[LW_HOST_MAX + 8];
	size_t checked = 0;

	load_catalog(&cat, FIX "valid/providers.yaml");
	for (int round = 0; round < 20000; round++) {
		const struct lw_host_pattern *p = &cat.patterns[splitmix(&seed) % cat.n_patterns];
		size_t np = sizeof(prefixes) / sizeof(prefixes[0]);
		const char *pre = prefixes[splitmix(&seed) % np];
		uint64_t r = splitmix(&seed);
		size_t n;

		/* sometimes cut the key's head off, to land near the pattern */
		snprintf(host, sizeof(host), "%s%s%s", pre, p->key + (r & 1 ? (r >> 8) % 4 : 0),
			 r & 2 ? "." : "");
		n = strlen(host);
		for (size_t i = 0; i < n; i++)
			if ((r >> (16 + i % 40)) & 1 && host[i] >= 'a' && host[i] <= 'z')
				host[i] -= 32;
		assert_int_equal(lw_catalog_match_host(&cat, host), naive_match(&cat, host));
		checked += naive_match(&cat, host) >= 0;
	}
	/* the generator reaches both outcomes */
	assert_true(checked > 5000 && checked < 19000);
	lw_catalog_free(&cat);
}

struct seen_pattern {
	uint64_t hash;
	int kind, provider;
};

struct seen {
	struct seen_pattern p[32];
	size_t n;
	const struct lw_cidr *r[8];
	int rprov[8];
	size_t nr;
};

static void on_pattern(uint64_t hash, int kind, int provider_idx, void *ud)
{
	struct seen *s = ud;

	assert_true(s->n < 32);
	s->p[s->n++] = (struct seen_pattern){hash, kind, provider_idx};
}

static void on_range(const struct lw_cidr *r, int provider_idx, void *ud)
{
	struct seen *s = ud;

	assert_true(s->nr < 8);
	s->rprov[s->nr] = provider_idx;
	s->r[s->nr++] = r;
}

static void test_catalog_patterns(void **state)
{
	static const struct seen_pattern want[] = {
		{0xfb0400786e3c076cULL, LW_HOST_EXACT, P_OPENAI}, /* api.openai.com */
		{0, LW_HOST_SUFFIX, P_OPENAI},			  /* *.api.openai.com */
		{0xdee42a061cc1bdb9ULL, LW_HOST_SUFFIX, P_AZURE}, /* *.openai.azure.com */
		{0, LW_HOST_EXACT, P_ANTHROPIC},		  /* API.Anthropic.com */
		{0, LW_HOST_EXACT, P_VERTEX},			  /* aiplatform.googleapis.com */
		{0, LW_HOST_SUFFIX, P_VERTEX},			  /* *-aiplatform.googleapis... */
		{0, LW_HOST_EXACT, P_SPECIAL},			  /* special.openai.azure.com */
		{0, LW_HOST_SUFFIX, P_SPECIAL},			  /* *.eu.openai.azure.com */
	};
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01};
	struct lw_catalog cat;
	struct seen s = {0};

	load_catalog(&cat, FIX "valid/providers.yaml");
	lw_catalog_for_each_pattern(&cat, on_pattern, &s);
	assert_int_equal(s.n, 8);
	for (size_t i = 0; i < s.n; i++) {
		if (want[i].hash)
			assert_int_equal(s.p[i].hash, want[i].hash);
		assert_int_equal(s.p[i].kind, want[i].kind);
		assert_int_equal(s.p[i].provider, want[i].provider);
	}
	/* the key of a suffix includes its dot; of a non-dot suffix, its '-' */
	assert_int_equal(s.p[1].hash, lw_host_hash(".api.openai.com", 15));
	assert_int_equal(s.p[3].hash, lw_host_hash("api.anthropic.com", 17));
	assert_int_equal(s.p[5].hash, lw_host_hash("-aiplatform.googleapis.com", 26));
	assert_string_equal(cat.patterns[2].pattern, "*.openai.azure.com");
	assert_string_equal(cat.patterns[2].key, ".openai.azure.com");
	assert_int_equal(cat.providers[P_OPENAI].first_pattern, 0);
	assert_int_equal(cat.providers[P_OPENAI].n_patterns, 2);
	assert_int_equal(cat.providers[P_SPECIAL].first_pattern, 6);

	lw_catalog_for_each_range(&cat, on_range, &s);
	assert_int_equal(s.nr, 2);
	assert_int_equal(s.rprov[0], P_OPENAI);
	assert_int_equal(s.r[0]->family, AF_INET);
	assert_int_equal(s.r[0]->prefix, 24);
	assert_memory_equal(s.r[0]->addr, ((uint8_t[]){192, 0, 2, 0}), 4);
	assert_int_equal(s.r[1]->family, AF_INET6);
	assert_int_equal(s.r[1]->prefix, 48);
	assert_memory_equal(s.r[1]->addr, v6, 16);
	lw_catalog_free(&cat);
}

static void test_catalog_errors(void **state)
{
#define C FIX "bad-catalog/providers.yaml:"
	static const char *const want[] = {
		C "5: id: 'OpenAI_2' must be 1-32 characters of a-z, 0-9 and '-'",
		C "8: id: duplicate provider 'openai' (first at line 2)",
		C "11: id: 'all' is reserved",
		C "17: hostnames: invalid hostname 'api.*.example.com': '*' is only allowed as the "
		  "first character",
		C "18: hostnames: invalid hostname '*com': '*' must be followed by '.' or '-'",
		C "19: hostnames: invalid hostname 'bad host.example.com': invalid character "
		  "(letters, digits, '-', '_' and '.' only)",
		C "20: hostnames: invalid hostname 'a..b.example.com': empty label",
		/* case-folded duplicate, in another provider */
		C
		"21: hostnames: 'api.openai.com' is already listed for provider 'openai' (line 4)",
		C "23: hostnames: invalid hostname '*.com': suffix too broad (it would match a "
		  "whole top-level domain)",
		C "27: ranges: '10.0.0.1/8' has bits set past the prefix length",
		C "27: ranges: '192.0.2.0/33' is not a CIDR range (192.0.2.0/24, 2001:db8::/32)",
		C "27: ranges: 'not-a-cidr' is not a CIDR range (192.0.2.0/24, 2001:db8::/32)",
		C "27: ranges: '198.51.100.0' is not a CIDR range (192.0.2.0/24, 2001:db8::/32)",
		C "28: provider: unknown key 'region' (expected id, name, hostnames, ranges)",
		C "29: provider: missing 'name'",
		C "30: hostnames: empty list",
		C "33: hostnames: '*.ok.example.com' is already listed for provider 'hosts' (line "
		  "22)",
	};
#undef C
	struct lw_policy_set set = {0};
	struct lw_diag d = {0};

	/* the policy file names an unknown provider: not reported on top */
	assert_int_equal(lw_policy_load(&set, FIX "bad-catalog", &d), 17);
	assert_errors(&d, want, sizeof(want) / sizeof(want[0]));
	lw_diag_free(&d);
	lw_policy_free(&set);
}

static void test_catalog_limit(void **state)
{
	struct lw_buf y = {0};
	struct lw_diag d = {0};
	struct lw_catalog cat = {0};
	struct tmpdir t;
	char want[256];

	tmp_init(&t);
	lw_buf_puts(&y, "providers:\n");
	for (int i = 0; i < 64; i++)
		lw_buf_printf(&y, "  - {id: p%d, name: P%d, hostnames: [h%d.example.com]}\n", i, i,
			      i);
	tmp_write(&t, "64.yaml", y.p, y.len);
	lw_buf_puts(&y, "  - {id: p64, name: P64, hostnames: [h64.example.com]}\n"
			"  - {id: p65, name: P65, hostnames: [h65.example.com]}\n");
	tmp_write(&t, "66.yaml", y.p, y.len);

	load_catalog(&cat, t.files[0]);
	assert_int_equal(cat.n, 64);
	assert_int_equal(lw_catalog_all_mask(&cat), ~0ULL);
	assert_int_equal(lw_catalog_match_host(&cat, "h63.example.com"), 63);
	lw_catalog_free(&cat);

	/* one error, at the 65th provider (line 66) */
	assert_int_equal(lw_catalog_load(&cat, t.files[1], &d), 1);
	snprintf(want, sizeof(want),
		 "%s:66: more than 64 providers (policies hold a 64-bit provider mask)",
		 t.files[1]);
	assert_string_equal(d.msgs[0], want);
	assert_int_equal(cat.n, 64);
	lw_catalog_free(&cat);
	lw_diag_free(&d);
	lw_buf_free(&y);
	tmp_done(&t);
}

/* ======================================================================
 * policies: loading
 * ====================================================================== */

static void test_policy_valid(void **state)
{
	static const char *const names[] = {
		"default", "checkout",	"search",	 "batch",     "py-tools",
		"legacy",  "user-1000", "node-anywhere", "test-tree", "sessions",
	};
	struct lw_policy_set set = {0};
	const struct lw_policy *p;

	load_ok(&set, FIX "valid");
	assert_int_equal(set.n, 10);
	assert_int_equal(set.cat.n, 5);
	for (size_t i = 0; i < set.n; i++) {
		assert_int_equal(set.policies[i].id, (int)i);
		assert_string_equal(set.policies[i].name, names[i]);
	}
	/* from 30-default.yml: .yml counts; README.md and .hidden.yaml do not */
	p = &set.policies[0];
	assert_string_equal(p->file, FIX "valid/30-default.yml");
	assert_int_equal(p->line, 1);
	assert_int_equal(p->mode, LW_MODE_ENFORCE);
	assert_false(p->allow_all);
	assert_int_equal(p->allow_mask, BIT(P_ANTHROPIC));

	p = &set.policies[1];
	assert_string_equal(p->file, FIX "valid/10-checkout.yaml");
	assert_int_equal(p->line, 2);
	assert_string_equal(p->cgroup, "/leakwatch-test/checkout");
	assert_null(p->unit);
	assert_null(p->exe);
	assert_false(p->has_uid);
	assert_int_equal(p->mode, LW_MODE_ENFORCE);
	assert_int_equal(p->allow_mask, BIT(P_OPENAI));
	assert_true(lw_policy_allows(p, P_OPENAI));
	assert_false(lw_policy_allows(p, P_AZURE));
	assert_false(lw_policy_allows(p, -1));
	assert_false(lw_policy_allows(p, 64));
	assert_int_equal(p->quarantine_s, 90);

	p = &set.policies[2]; /* search: mode defaults to monitor */
	assert_int_equal(p->quarantine_s, LW_QUARANTINE_DEFAULT_S);
	assert_int_equal(p->line, 3);
	assert_string_equal(p->unit, "search.service");
	assert_int_equal(p->mode, LW_MODE_MONITOR);
	assert_int_equal(p->allow_mask, BIT(P_OPENAI) | BIT(P_ANTHROPIC));

	p = &set.policies[3]; /* batch: [] allows nothing */
	assert_int_equal(p->line, 10);
	assert_false(p->allow_all);
	assert_int_equal(p->allow_mask, 0);

	p = &set.policies[4]; /* py-tools: all, uid by name */
	assert_true(p->allow_all);
	assert_int_equal(p->allow_mask, 0x1f);
	assert_true(p->has_uid);
	assert_int_equal(p->uid, 0);
	assert_string_equal(p->exe, "/usr/bin/python3*");

	p = &set.policies[5]; /* legacy: no allow_providers means all */
	assert_string_equal(p->unit, "legacy.service");
	assert_true(p->allow_all);
	assert_int_equal(p->allow_mask, 0x1f);

	assert_int_equal(set.policies[6].uid, 1000);
	assert_string_equal(set.policies[8].cgroup, "/leakwatch-test"); /* trailing '/' gone */
	assert_string_equal(set.policies[9].unit, "session-*.scope");
	lw_policy_free(&set);
}

static void test_policy_builtin_default(void **state)
{
	struct lw_policy_set set = {0};
	const struct lw_policy *p;

	load_ok(&set, FIX "no-default");
	assert_int_equal(set.n, 2);
	p = &set.policies[0];
	assert_string_equal(p->name, "default");
	assert_null(p->file);
	assert_int_equal(p->mode, LW_MODE_MONITOR);
	assert_true(p->allow_all);
	assert_int_equal(p->allow_mask, 0x1f);
	assert_ptr_equal(lw_policy_select(&set, "/other", "/bin/sh", 1000), p);
	lw_policy_free(&set);
}

static void test_policy_shipped(void **state)
{
	struct lw_policy_set set = {0};
	const struct lw_policy *p;

	load_ok(&set, "policies");
	assert_int_equal(set.cat.n, 17);
	p = lw_policy_select(&set, "/system.slice/anything.service", "/usr/bin/curl", 0);
	assert_int_equal(p->id, 0);
	assert_int_equal(p->mode, LW_MODE_MONITOR);
	assert_true(p->allow_all);
	assert_int_equal(p->allow_mask, (1ULL << 17) - 1);
	lw_policy_free(&set);
}

static void test_policy_errors(void **state)
{
#define E(f, rest) FIX "errors/" f ":" rest
	static const char *const want[] = {
		E("01-syntax.yaml", "4: YAML syntax error: did not find expected key (while "
				    "parsing a block mapping at line 1)"),
		/* unknown keys */
		E("02-unknown-key.yaml",
		  "3: policy: unknown key 'allowed_providers' (expected service, default, match, "
		  "mode, allow_providers, quarantine)"),
		E("02-unknown-key.yaml",
		  "7: match: unknown key 'cgroups' (expected cgroup, unit, exe, uid)"),
		/* wrong types */
		E("03-wrong-types.yaml", "1: service: expected a string, got a list"),
		E("03-wrong-types.yaml", "5: match: expected a mapping, got a scalar"),
		E("03-wrong-types.yaml", "9: mode: expected monitor or enforce, got 'block'"),
		E("03-wrong-types.yaml",
		  "10: allow_providers: expected a list of provider ids, [] or all"),
		E("03-wrong-types.yaml", "13: cgroup: expected a string, got a mapping"),
		E("03-wrong-types.yaml", "14: mode: expected a string, got a list"),
		E("03-wrong-types.yaml", "17: default: expected true or false"),
		E("03-wrong-types.yaml", "20: policy: expected a mapping, got a list"),
		/* unknown provider ids */
		E("04-unknown-provider.yaml", "5: allow_providers: unknown provider 'opneai'"),
		E("04-unknown-provider.yaml", "6: allow_providers: unknown provider 'all' (write "
					      "allow_providers: all, not a list)"),
		/* duplicate service names, in one file and across files */
		E("05-duplicate-service.yaml", "4: service: duplicate service 'dup' (first at " FIX
					       "errors/05-duplicate-service.yaml:1)"),
		E("05-duplicate-service.yaml",
		  "7: service: duplicate service 'checkout' (first at " FIX
		  "errors/00-checkout.yaml:1)"),
		E("05-duplicate-service.yaml",
		  "10: service: 'default' is reserved (write default: true)"),
		/* empty match */
		E("06-empty-match.yaml",
		  "2: match: empty (give one or more of cgroup, unit, exe, uid)"),
		E("06-empty-match.yaml", "5: match: expected a mapping, got nothing"),
		/* bad uid */
		E("07-bad-uid.yaml", "2: uid: unknown user 'no-such-user-leakwatch'"),
		E("07-bad-uid.yaml", "5: uid: 4294967295 is out of range"),
		E("07-bad-uid.yaml", "8: uid: '-1' is not a uid or user name"),
		E("07-bad-uid.yaml", "11: uid: expected a uid or user name"),
		/* invalid globs and selectors that could never match */
		E("08-invalid-glob.yaml", "2: cgroup: invalid glob '/leakwatch-test/[abc': "
					  "unclosed '[' (write '\\[' for a literal bracket)"),
		E("08-invalid-glob.yaml",
		  "5: exe: invalid glob '/usr/bin/[[:nope:]]x': unknown character class"),
		E("08-invalid-glob.yaml", "8: unit: invalid glob 'foo\\': ends with a lone '\\'"),
		E("08-invalid-glob.yaml", "12: cgroup: 'relative/path' must start with '/'"),
		E("08-invalid-glob.yaml", "13: unit: 'system.slice/foo.service' is a path, not a "
					  "unit name (paths go in cgroup)"),
		E("08-invalid-glob.yaml",
		  "14: exe: 'python3' must be an absolute path or start with a wildcard"),
		/* two defaults */
		E("09-two-defaults.yaml",
		  "4: second default policy (first at " FIX "errors/09-two-defaults.yaml:1)"),
		E("09-two-defaults.yaml",
		  "7: second default policy (first at " FIX "errors/09-two-defaults.yaml:1)"),
		E("09-two-defaults.yaml", "8: default policy: 'service' not allowed"),
		E("09-two-defaults.yaml", "9: default policy: 'match' not allowed"),
		/* missing keys, duplicate keys */
		E("10-missing.yaml", "1: policy: missing 'service' (or default: true)"),
		E("10-missing.yaml", "3: policy: missing 'match'"),
		E("10-missing.yaml", "9: policy: duplicate key 'mode' (first at line 8)"),
		/* quarantine durations */
		E("11-quarantine.yaml",
		  "4: quarantine: expected a duration up to 24h (600, 90s, 10m, 0), got '10d'"),
		E("11-quarantine.yaml",
		  "8: quarantine: expected a duration up to 24h (600, 90s, 10m, 0), got '25h'"),
		E("11-quarantine.yaml",
		  "12: quarantine: expected a duration up to 24h (600, 90s, 10m, 0), got '-5'"),
	};
#undef E
	size_t n = sizeof(want) / sizeof(want[0]);
	struct lw_policy_set set = {0};
	struct lw_diag d = {0};

	assert_int_equal(lw_policy_load(&set, FIX "errors", &d), (int)n);
	assert_errors(&d, want, n);
	lw_diag_free(&d);
	lw_policy_free(&set);
}

static void test_policy_missing_catalog_and_dir(void **state)
{
	static const char *const want_cat[] = {
		FIX "no-catalog/providers.yaml: cannot open: No such file or directory",
	};
	static const char *const want_dir[] = {
		FIX "nonexistent: cannot open directory: No such file or directory",
	};
	static const char *const want_file[] = {
		FIX "valid/10-checkout.yaml: not a directory",
	};
	struct lw_policy_set set = {0};
	struct lw_diag d = {0};

	/* no catalog: the unknown provider in the policy is not piled on */
	assert_int_equal(lw_policy_load(&set, FIX "no-catalog", &d), 1);
	assert_errors(&d, want_cat, 1);
	lw_diag_free(&d);
	lw_policy_free(&set);

	assert_int_equal(lw_policy_load(&set, FIX "nonexistent", &d), 1);
	assert_errors(&d, want_dir, 1);
	/* even a failed set has its default */
	assert_int_equal(set.n, 1);
	assert_string_equal(lw_policy_select(&set, "/", "/bin/sh", 0)->name, "default");
	lw_diag_free(&d);
	lw_policy_free(&set);

	assert_int_equal(lw_policy_load(&set, FIX "valid/10-checkout.yaml", &d), 1);
	assert_errors(&d, want_file, 1);
	lw_diag_free(&d);
	lw_policy_free(&set);
}

/* YAML corner cases, each in a directory of its own. */
static void test_policy_yaml_corners(void **state)
{
	static const char bad_utf8[] = "service: a\nmatch: { cgroup: /a }\nmode: \xff\xfe\n";
	struct lw_policy_set set = {0};
	struct lw_diag d = {0};
	struct tmpdir t;
	char want[256];

	/* an empty file, a file of comments, anchors and aliases, a trailing
	 * "---", and a trailing slash on the directory */
	tmp_init(&t);
	tmp_puts(&t, "providers.yaml", mini_catalog);
	tmp_puts(&t, "a-empty.yaml", "");
	tmp_puts(&t, "b-comments.yml", "# nothing yet\n---\n# still nothing\n");
	tmp_puts(&t, "c-alias.yaml",
		 "service: a\n"
		 "match: { cgroup: /a }\n"
		 "allow_providers: []\n"
		 "---\n"
		 "service: b\n"
		 "match: { exe: &x /b, cgroup: *x }\n"
		 "allow_providers: [openai]\n"
		 "---\n");
	snprintf(want, sizeof(want), "%s/", t.path);
	load_ok(&set, want);
	assert_int_equal(set.n, 3);
	assert_string_equal(set.policies[2].exe, "/b");
	assert_string_equal(set.policies[2].cgroup, "/b");
	assert_int_equal(set.policies[2].allow_mask, 1);
	lw_policy_free(&set);
	/* anchors do not reach across documents */
	tmp_puts(&t, "d-alias.yaml",
		 "service: d\n"
		 "match: { cgroup: /d }\n"
		 "---\n"
		 "service: e\n"
		 "match: *m\n");
	assert_int_equal(lw_policy_load(&set, t.path, &d), 1);
	snprintf(want, sizeof(want), "%s:5: YAML syntax error: found undefined alias", t.files[4]);
	assert_string_equal(d.msgs[0], want);
	lw_diag_free(&d);
	lw_policy_free(&set);
	tmp_done(&t);

	/* invalid UTF-8: the reader reports an offset, turned into line 3 */
	tmp_init(&t);
	tmp_puts(&t, "providers.yaml", mini_catalog);
	tmp_write(&t, "p.yaml", bad_utf8, sizeof(bad_utf8) - 1);
	assert_int_equal(lw_policy_load(&set, t.path, &d), 1);
	snprintf(want, sizeof(want), "%s:3: YAML error: invalid leading UTF-8 octet", t.files[1]);
	assert_string_equal(d.msgs[0], want);
	lw_diag_free(&d);
	lw_policy_free(&set);
	tmp_done(&t);

	/* a tab where YAML wants spaces; an embedded NUL; a quoted "all" is
	 * still all; a catalog of one document only */
	tmp_init(&t);
	tmp_puts(&t, "providers.yaml",
		 "providers:\n"
		 "  - {id: openai, name: OpenAI, hostnames: [api.openai.com]}\n"
		 "---\n"
		 "providers: []\n");
	tmp_puts(&t, "a.yaml", "service: a\nmatch:\n\tcgroup: /a\n");
	tmp_puts(&t, "b.yaml",
		 "service: \"b\\0c\"\nmatch: { cgroup: /b }\n"
		 "allow_providers: \"all\"\n");
	assert_int_equal(lw_policy_load(&set, t.path, &d), 3);
	snprintf(want, sizeof(want), "%s:4: the catalog is a single YAML document", t.files[0]);
	assert_string_equal(d.msgs[0], want);
	snprintf(want, sizeof(want),
		 "%s:3: YAML syntax error: found character that cannot start any token (while "
		 "scanning for the next token at line 3)",
		 t.files[1]);
	assert_string_equal(d.msgs[1], want);
	snprintf(want, sizeof(want), "%s:1: service: contains a NUL byte", t.files[2]);
	assert_string_equal(d.msgs[2], want);
	lw_diag_free(&d);
	lw_policy_free(&set);
	tmp_done(&t);
}

/* ======================================================================
 * policies: selection
 * ====================================================================== */

static void test_cgroup_unit(void **state)
{
	char u[32];

	assert_true(lw_cgroup_unit("/system.slice/checkout.service", u, sizeof(u)));
	assert_string_equal(u, "checkout.service");
	/* the last unit-named component, not the last component */
	assert_true(lw_cgroup_unit("/system.slice/checkout.service/worker", u, sizeof(u)));
	assert_string_equal(u, "checkout.service");
	assert_true(lw_cgroup_unit("/user.slice/user-1000.slice/session-2.scope", u, sizeof(u)));
	assert_string_equal(u, "session-2.scope");
	assert_true(lw_cgroup_unit("/system.slice", u, sizeof(u)));
	assert_string_equal(u, "system.slice");
	assert_false(lw_cgroup_unit("/leakwatch-test/checkout", u, sizeof(u)));
	assert_false(lw_cgroup_unit("/", u, sizeof(u)));
	assert_false(lw_cgroup_unit("", u, sizeof(u)));
	/* ".service" alone is no unit; a name that does not fit is none either */
	assert_false(lw_cgroup_unit("/.service", u, sizeof(u)));
	assert_false(lw_cgroup_unit("/a-very-long-unit-name-indeed.service", u, 8));
}

static void test_select_cgroup(void **state)
{
	struct lw_policy_set set = {0};

	load_ok(&set, FIX "valid");
	/* exact, descendants, trailing slash */
	assert_string_equal(select_name(&set, "/leakwatch-test/checkout", NULL, 5), "checkout");
	assert_string_equal(select_name(&set, "/leakwatch-test/checkout/", NULL, 5), "checkout");
	assert_string_equal(select_name(&set, "/leakwatch-test/checkout/a/b", NULL, 5), "checkout");
	/* a sibling sharing the prefix is not a descendant: the broader
	 * /leakwatch-test policy (later in the files) takes it */
	assert_string_equal(select_name(&set, "/leakwatch-test/checkout2", NULL, 5), "test-tree");
	assert_string_equal(select_name(&set, "/leakwatch-test", NULL, 5), "test-tree");
	assert_string_equal(select_name(&set, "/leakwatch-testing", NULL, 5), "default");
	/* glob, and descendants of what the glob matches; '*' stops at '/' */
	assert_string_equal(select_name(&set, "/leakwatch-test/batch-7", NULL, 5), "batch");
	assert_string_equal(select_name(&set, "/leakwatch-test/batch-7/worker/1", NULL, 5),
			    "batch");
	assert_string_equal(select_name(&set, "/leakwatch-test/batch-", NULL, 5), "batch");
	assert_string_equal(select_name(&set, "/leakwatch-test/batch", NULL, 5), "test-tree");
	/* unknown cgroup */
	assert_string_equal(select_name(&set, NULL, NULL, 5), "default");
	assert_string_equal(select_name(&set, "", NULL, 5), "default");
	assert_string_equal(select_name(&set, "/", NULL, 5), "default");
	lw_policy_free(&set);
}

static void test_select_unit(void **state)
{
	struct lw_policy_set set = {0};

	load_ok(&set, FIX "valid");
	assert_string_equal(select_name(&set, "/system.slice/search.service", NULL, 5), "search");
	assert_string_equal(select_name(&set, "/system.slice/search.service/sub", NULL, 5),
			    "search");
	/* only the innermost unit counts */
	assert_string_equal(select_name(&set, "/system.slice/search.service/x.scope", NULL, 5),
			    "default");
	assert_string_equal(select_name(&set, "/system.slice/search.services", NULL, 5), "default");
	assert_string_equal(select_name(&set, "/search.service.d", NULL, 5), "default");
	/* "legacy" was written the systemctl way */
	assert_string_equal(select_name(&set, "/system.slice/legacy.service", NULL, 5), "legacy");
	/* glob */
	assert_string_equal(select_name(&set, "/user.slice/user-5.slice/session-12.scope", NULL, 5),
			    "sessions");
	assert_string_equal(
		select_name(&set, "/user.slice/user-5.slice/session-12.service", NULL, 5),
		"default");
	lw_policy_free(&set);
}

static void test_select_exe_uid(void **state)
{
	struct lw_policy_set set = {0};

	load_ok(&set, FIX "valid");
	/* exe and uid both given: both must match */
	assert_string_equal(select_name(&set, "/x", "/usr/bin/python3.11", 0), "py-tools");
	assert_string_equal(select_name(&set, "/x", "/usr/bin/python3", 0), "py-tools");
	assert_string_equal(select_name(&set, "/x", "/usr/bin/python3.11", 7), "default");
	assert_string_equal(select_name(&set, "/x", "/usr/bin/python2", 0), "default");
	assert_string_equal(select_name(&set, "/x", NULL, 0), "default");
	/* uid alone */
	assert_string_equal(select_name(&set, "/x", "/bin/sh", 1000), "user-1000");
	assert_string_equal(select_name(&set, NULL, NULL, 1000), "user-1000");
	/* exe glob without FNM_PATHNAME: '*' spans directories */
	assert_string_equal(select_name(&set, "/x", "/opt/node-v20/bin/node", 5), "node-anywhere");
	assert_string_equal(select_name(&set, "/x", "/usr/bin/node", 5), "node-anywhere");
	assert_string_equal(select_name(&set, "/x", "/usr/bin/nodejs", 5), "default");
	assert_string_equal(select_name(&set, "/x", "node", 5), "default");
	lw_policy_free(&set);
}

static void test_select_precedence(void **state)
{
	struct lw_policy_set set = {0};
	const struct lw_policy *p;

	load_ok(&set, FIX "valid");
	/* checkout (10-checkout.yaml) comes before py-tools, user-1000 and
	 * test-tree (20-multi.yaml) although all of them match */
	assert_string_equal(select_name(&set, "/leakwatch-test/checkout", "/usr/bin/python3", 0),
			    "checkout");
	/* within a file, document order: user-1000 before sessions and
	 * test-tree */
	assert_string_equal(
		select_name(&set, "/user.slice/user-1000.slice/session-1.scope", "/bin/bash", 1000),
		"user-1000");
	assert_string_equal(select_name(&set, "/leakwatch-test/a", "/usr/bin/node", 5),
			    "node-anywhere");
	assert_string_equal(select_name(&set, "/leakwatch-test/a", "/usr/bin/curl", 5),
			    "test-tree");
	/* nothing matches: the file's default, policy id 0 */
	p = lw_policy_select(&set, "/elsewhere", "/usr/bin/curl", 5);
	assert_int_equal(p->id, 0);
	assert_ptr_equal(p, &set.policies[0]);
	assert_int_equal(p->mode, LW_MODE_ENFORCE);
	/* lw_policy_matches is the per-policy test */
	assert_true(lw_policy_matches(&set.policies[1], "/leakwatch-test/checkout/x", NULL, 0));
	assert_false(lw_policy_matches(&set.policies[1], NULL, "/usr/bin/python3", 0));
	assert_true(lw_policy_matches(&set.policies[0], NULL, NULL, 0));
	lw_policy_free(&set);
}

/* ======================================================================
 * leakwatch policy
 * ====================================================================== */

struct cmd_out {
	int rc;
	char out[4096];
	char err[8192];
};

static void slurp(int fd, char *buf, size_t n)
{
	ssize_t got;

	lseek(fd, 0, SEEK_SET);
	got = read(fd, buf, n - 1);
	buf[got > 0 ? got : 0] = 0;
	close(fd);
}

/* Runs `leakwatch policy ARGS...` with stdout and stderr captured. */
static void run_policy(struct cmd_out *o, ...)
{
	char *argv[8] = {"policy"};
	char otmp[] = "/tmp/lw-test-out.XXXXXX", etmp[] = "/tmp/lw-test-err.XXXXXX";
	int argc = 1, ofd, efd, saved_out, saved_err;
	va_list ap;
	char *a;

	va_start(ap, o);
	while ((a = va_arg(ap, char *)) && argc < 7)
		argv[argc++] = a;
	va_end(ap);
	ofd = mkstemp(otmp);
	efd = mkstemp(etmp);
	assert_true(ofd >= 0 && efd >= 0);
	unlink(otmp);
	unlink(etmp);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(ofd, 1);
	dup2(efd, 2);
	o->rc = lw_cmd_policy(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	slurp(ofd, o->out, sizeof(o->out));
	slurp(efd, o->err, sizeof(o->err));
}

static void test_cmd_check(void **state)
{
	struct cmd_out o;
	size_t lines = 0;

	/* the shipped directory is valid */
	run_policy(&o, "check", "policies", NULL);
	assert_int_equal(o.rc, 0);
	/* the rule count is the built-in pack's: check the policy part */
	assert_true(strncmp(o.out, "1 policies, 17 providers, ", 26) == 0);
	assert_non_null(strstr(o.out, " rules, "));
	assert_non_null(strstr(o.out, " lists: ok\n"));
	assert_string_equal(o.err, "");

	run_policy(&o, "check", FIX "valid", NULL);
	assert_int_equal(o.rc, 0);
	assert_true(strncmp(o.out, "10 policies, 5 providers, ", 26) == 0);

	/* errors: stderr holds only FILE:LINE: reason lines, stdout nothing */
	run_policy(&o, "check", FIX "errors", NULL);
	assert_int_equal(o.rc, 1);
	assert_string_equal(o.out, "");
	assert_true(strncmp(o.err, FIX "errors/01-syntax.yaml:4: YAML syntax error", 50) == 0);
	for (char *l = o.err; *l; l = strchr(l, '\n') + 1, lines++)
		assert_true(strncmp(l, FIX "errors/", strlen(FIX "errors/")) == 0);
	assert_int_equal(lines, 38);

	run_policy(&o, "check", FIX "bad-catalog", NULL);
	assert_int_equal(o.rc, 1);
	run_policy(&o, "check", "--", FIX "valid", NULL);
	assert_int_equal(o.rc, 0);
}

static void test_cmd_show(void **state)
{
	struct cmd_out o;

	run_policy(&o, "show", FIX "valid", NULL);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "checkout (" FIX "valid/10-checkout.yaml:2)\n"
				      "  match:  cgroup=/leakwatch-test/checkout\n"
				      "  mode:   enforce\n"
				      "  allow:  openai\n"
				      "search ("));
	assert_non_null(strstr(o.out, "  match:  exe=/usr/bin/python3* uid=0\n"
				      "  mode:   enforce\n"
				      "  allow:  all (5 providers)\n"));
	assert_non_null(strstr(o.out, "  allow:  none\n"));
	/* the default last, as it is tried last */
	assert_non_null(strstr(o.out, "default (" FIX "valid/30-default.yml:1)\n"
				      "  match:  every process no policy above selects\n"
				      "  mode:   enforce\n"
				      "  allow:  anthropic\n"
				      "in-kernel blocking: "));
	/* then the block rules left to the agent, with their reasons */
	assert_non_null(
		strstr(o.out, "\nrule jwt: blocks after the write (user space): validator jwt"));
	assert_non_null(strstr(o.out, "\n10 policies, 5 providers, "));

	run_policy(&o, "show", FIX "no-default", NULL);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "default (built-in)\n"));

	run_policy(&o, "show", FIX "errors", NULL);
	assert_int_equal(o.rc, 1);
	assert_string_equal(o.out, "");
}

static void test_cmd_usage(void **state)
{
	struct cmd_out o;

	run_policy(&o, NULL);
	assert_int_equal(o.rc, 2);
	assert_non_null(strstr(o.err, "usage: leakwatch policy check DIR"));
	run_policy(&o, "--help", NULL);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "usage: leakwatch policy check DIR"));
	run_policy(&o, "check", "--help", NULL);
	assert_int_equal(o.rc, 0);
	run_policy(&o, "show", "-h", NULL);
	assert_int_equal(o.rc, 0);
	run_policy(&o, "frobnicate", "policies", NULL);
	assert_int_equal(o.rc, 2);
	run_policy(&o, "check", NULL);
	assert_int_equal(o.rc, 2);
	run_policy(&o, "check", "policies", "policies", NULL);
	assert_int_equal(o.rc, 2);
	run_policy(&o, "check", "--verbose", "policies", NULL);
	assert_int_equal(o.rc, 2);
	assert_non_null(strstr(o.err, "unknown option '--verbose'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_hash_vectors),
		cmocka_unit_test(test_catalog_shipped),
		cmocka_unit_test(test_catalog_match),
		cmocka_unit_test(test_catalog_match_model),
		cmocka_unit_test(test_catalog_patterns),
		cmocka_unit_test(test_catalog_errors),
		cmocka_unit_test(test_catalog_limit),
		cmocka_unit_test(test_policy_valid),
		cmocka_unit_test(test_policy_builtin_default),
		cmocka_unit_test(test_policy_shipped),
		cmocka_unit_test(test_policy_errors),
		cmocka_unit_test(test_policy_missing_catalog_and_dir),
		cmocka_unit_test(test_policy_yaml_corners),
		cmocka_unit_test(test_cgroup_unit),
		cmocka_unit_test(test_select_cgroup),
		cmocka_unit_test(test_select_unit),
		cmocka_unit_test(test_select_exe_uid),
		cmocka_unit_test(test_select_precedence),
		cmocka_unit_test(test_cmd_check),
		cmocka_unit_test(test_cmd_show),
		cmocka_unit_test(test_cmd_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
