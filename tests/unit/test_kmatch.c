/*
 * Unit tests for user/classify/kmatch.c, the compiler of the in-kernel
 * content matcher: the built-in pack builds within the budget and fast;
 * realistic keys, PEM headers and canaries embedded in JSON request bodies
 * are found by the walk the BPF program performs (lw_kmatch_scan), also
 * when the body is cut into two writes at every offset; documentation
 * values, placeholders and the classifier's hard negatives are not; rules
 * the kernel cannot decide stay in user space with their reason; a hostile
 * ruleset stays within the budget; the `mode` and `kernel` keys load and
 * their errors point at FILE:LINE.
 *
 * Secret-looking values are generated at run time from fixed seeds: the
 * repository holds no string a secret scanner would flag. Runs from the
 * repository root, like every unit test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hard_negatives.h"
#include "classify/kmatch.h"
#include "classify/rules.h"
#include "util/buf.h"

#define FIX "tests/unit/fixtures/kmatch/"

/* ---- helpers ------------------------------------------------------------ */

struct env {
	struct lw_ruleset rs;
	struct lw_kmatch km;
	double ms; /* build time */
};

static void print_diag(const struct lw_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s\n", d->msgs[i]);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* What the BPF side relies on, whatever the ruleset. */
static void check_table(const struct lw_kmatch *km)
{
	const struct lwm_table *t = km->table;
	size_t nk = 0;

	assert_non_null(t);
	assert_true(t->nstates >= 1 && t->nstates <= LWM_MAX_STATES);
	assert_true(t->nrules <= LWM_MAX_RULES);
	assert_int_equal(t->gen, 0);
	for (unsigned p = 0; p < LWG_MAX_POLICIES; p++)
		for (unsigned w = 0; w < LWM_RULE_WORDS; w++)
			assert_true(!t->enforce[p][w] && !t->monitor[p][w]);
	for (unsigned s = 0; s < t->nstates; s++) {
		assert_true(t->accept[s] <= t->nrules);
		for (unsigned b = 0; b < 256; b++) {
			unsigned to = t->trans[s * 256 + b], st = to & LWM_STATE_MASK;

			assert_true(st < t->nstates);
			assert_int_equal(!!(to & LWM_ACCEPT), !!t->accept[st]);
			assert_int_equal(to & ~(LWM_STATE_MASK | LWM_ACCEPT), 0);
		}
	}
	for (unsigned s = t->nstates; s < LWM_MAX_STATES; s++)
		assert_int_equal(t->accept[s], 0);
	/* clog[c] = round(c log2 c 1024) */
	assert_int_equal(t->clog[0], 0);
	assert_int_equal(t->clog[1], 0);
	assert_int_equal(t->clog[2], 2048);
	assert_int_equal(t->clog[4], 8192);
	assert_int_equal(t->clog[3], 4869); /* 3 * 1.58496 * 1024 = 4868.99 */
	assert_int_equal(t->clog[64], 393216);
	for (size_t i = 0; i < km->n; i++) {
		const struct lw_kmatch_entry *e = &km->e[i];

		assert_non_null(e->id);
		assert_non_null(e->type);
		if (e->kidx >= 0) {
			nk++;
			assert_true((unsigned)e->kidx < t->nrules);
			assert_int_equal(km->kentry[e->kidx], (int)i);
			assert_string_equal(e->reason, "");
			assert_true(e->kernel_form[0]);
			assert_true(t->rules[e->kidx].ent_len <= LWM_ENT_MAX);
		} else {
			assert_true(e->reason[0]);
			assert_string_equal(e->kernel_form, "");
		}
	}
	assert_int_equal(nk, t->nrules);
	for (unsigned k = t->nrules; k < LWM_MAX_RULES; k++)
		assert_int_equal(km->kentry[k], -1);
	/* kernel rules in ruleset order (rules, then lists) */
	for (unsigned k = 1; k < t->nrules; k++)
		assert_true(km->kentry[k - 1] < km->kentry[k]);
}

static struct env *env_new(const char *dir)
{
	struct env *e = calloc(1, sizeof(*e));
	struct lw_diag d = {0};
	double t0;

	assert_non_null(e);
	if (lw_rules_load(&e->rs, dir, &d) != 0)
		print_diag(&d);
	assert_int_equal(d.n, 0);
	lw_diag_free(&d);
	t0 = now_ms();
	assert_int_equal(lw_kmatch_build(&e->rs, &e->km), 0);
	e->ms = now_ms() - t0;
	check_table(&e->km);
	return e;
}

static void env_free(struct env *e)
{
	lw_kmatch_free(&e->km);
	lw_rules_free(&e->rs);
	free(e);
}

static const struct lw_kmatch_entry *entry(const struct env *e, const char *id)
{
	for (size_t i = 0; i < e->km.n; i++)
		if (!strcmp(e->km.e[i].id, id))
			return &e->km.e[i];
	fail_msg("no block rule or list %s", id);
	return NULL;
}

static void assert_kernel(const struct env *e, const char *id)
{
	const struct lw_kmatch_entry *x = entry(e, id);

	if (x->kidx < 0)
		fail_msg("%s stays in user space: %s", id, x->reason);
}

static void assert_user(const struct env *e, const char *id, const char *why)
{
	const struct lw_kmatch_entry *x = entry(e, id);

	if (x->kidx >= 0)
		fail_msg("%s is a kernel rule (%s), expected: %s", id, x->kernel_form, why);
	if (!strstr(x->reason, why))
		fail_msg("%s: reason '%s', expected '%s'", id, x->reason, why);
}

/* One scan from a connection's start: the id of the rule found, or NULL. */
static const char *scan(const struct env *e, const char *text, size_t n, size_t *end)
{
	uint16_t st = 0;
	size_t at = 0;
	int r = lw_kmatch_scan(e->km.table, text, n, &st, &at);

	assert_true(st < e->km.table->nstates);
	if (r < 0)
		return NULL;
	assert_true((unsigned)r < e->km.table->nrules);
	assert_true(at < n);
	if (end)
		*end = at;
	return e->km.e[e->km.kentry[r]].id;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Expands a template as test_classify.c does: {A24} letters/digits, {W24}
 * base64url, {B24} base64, {H24} lower hex, {D24} digits, {C24} upper case
 * and digits, {U16} base32, {G58} the age bech32 alphabet (upper case). */
static void expand(uint64_t *seed, const char *tpl, struct lw_buf *out)
{
	static const struct {
		char k;
		const char *cs;
	} sets[] = {
		{'A', "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"},
		{'W', "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"},
		{'B', "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"},
		{'H', "0123456789abcdef"},
		{'D', "0123456789"},
		{'C', "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"},
		{'U', "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"},
		{'G', "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"},
	};

	lw_buf_reset(out);
	for (const char *p = tpl; *p; p++) {
		const char *cs = NULL;
		char *end;
		long n;

		if (*p == '{')
			for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
				if (sets[i].k == p[1] && p[2] >= '0' && p[2] <= '9')
					cs = sets[i].cs;
		if (!cs) {
			lw_buf_putc(out, *p);
			continue;
		}
		n = strtol(p + 2, &end, 10);
		assert_true(*end == '}');
		for (long i = 0; i < n; i++)
			lw_buf_putc(out, cs[splitmix(seed) % strlen(cs)]);
		p = end;
	}
}

/* A chat request body with value at [*vs, *ve). */
static void json_body(const char *value, struct lw_buf *out, size_t *vs, size_t *ve)
{
	lw_buf_reset(out);
	lw_buf_puts(out, "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"system\","
			 "\"content\":\"You review configuration files.\"},{\"role\":\"user\","
			 "\"content\":\"Why does this fail?\\n\\nexport APP_SECRET=\\\"");
	*vs = out->len;
	lw_buf_puts(out, value);
	*ve = out->len;
	lw_buf_puts(out, "\\\"\\nrun ./deploy.sh --env prod\"}],\"temperature\":0.2}");
}

struct positive {
	const char *rule;
	const char *tpl;
};

/* Values of kernel rules, in the formats the services publish. */
static const struct positive positives[] = {
	{"aws_access_key", "AKIA{U16}"},
	{"aws_access_key", "ASIA{U16}"},
	{"anthropic_api_key", "sk-ant-api03-{W93}AA"},
	{"anthropic_api_key", "sk-ant-admin01-{W93}AA"},
	{"openai_api_key", "sk-proj-{W74}T3BlbkFJ{W74}"},
	{"openai_api_key", "sk-svcacct-{W74}T3BlbkFJ{W74}"},
	{"openai_api_key_legacy", "sk-{A48}"},
	{"github_token", "ghp_{A36}"},
	{"github_token", "ghs_{A36}"},
	{"github_fine_grained_pat", "github_pat_{A22}_{A59}"},
	{"private_key", "-----BEGIN RSA PRIVATE KEY-----\\n{B64}\\n"},
	{"private_key", "-----BEGIN EC PRIVATE KEY-----\\n{B64}\\n"},
	{"private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\\n{B70}\\n"},
	{"private_key", "-----BEGIN PRIVATE KEY-----\\n{B64}\\n"},
	{"private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\\n\\n{B64}\\n"},
	{"google_api_key", "AIza{W35}"},
	{"stripe_secret_key", "sk_live_{A24}"},
	{"huggingface_token", "hf_{A34}"},
	{"age_secret_key", "AGE-SECRET-KEY-1{G58}"},
	{"digitalocean_token", "dop_v1_{H64}"},
	{"gitlab_token", "glpat-{W20}"},
	{"slack_webhook", "https://hooks.slack.com/services/T{C8}/B{C10}/{A24}"},
	{"sendgrid_api_key", "SG.{W22}.{W43}"},
	{"databricks_token", "dapi{H32}"},
	{"azure_storage_key", "AccountKey={B86}=="},
};

/* Texts the classifier must not report (test_classify.c), minus the PEM
 * block without a body: the kernel takes the BEGIN line alone. */
static const char hard_negatives[] = LW_HARD_NEGATIVES_HEAD LW_HARD_NEGATIVES_TAIL;

/* The one text of the classifier's hard negatives the kernel does block. */
static const char pem_without_body[] =
	"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n";

/* ---- tests ---------------------------------------------------------------- */

static int setup_builtin(void **state)
{
	*state = env_new(NULL);
	return 0;
}

static int setup_policies(void **state)
{
	/* the repository's own policy directory: built-in pack + canaries */
	*state = env_new("policies");
	return 0;
}

static int teardown_env(void **state)
{
	env_free(*state);
	return 0;
}

struct lines {
	struct lw_buf all;
	size_t n;
};

static void on_line(const char *line, void *ud)
{
	struct lines *l = ud;

	assert_null(strchr(line, '\n'));
	lw_buf_printf(&l->all, "%s\n", line);
	l->n++;
}

static void test_builtin_pack(void **state)
{
	struct env *e = *state;
	static const char *const kernel[] = {
		"private_key",	     "aws_access_key",	      "anthropic_api_key",
		"openai_api_key",    "openai_api_key_legacy", "github_token",
		"google_api_key",    "stripe_secret_key",     "huggingface_token",
		"age_secret_key",    "gitlab_token",	      "slack_webhook",
		"azure_storage_key", "sendgrid_api_key",      "databricks_token",
	};
	struct lines l = {0};
	size_t nkernel = 0, nblock = 0;
	double best = 1e9;

	for (size_t i = 0; i < e->rs.n; i++)
		nblock += e->rs.rules[i].action == LW_ACT_BLOCK;
	assert_int_equal(e->km.n, nblock);
	for (size_t i = 0; i < sizeof(kernel) / sizeof(kernel[0]); i++)
		assert_kernel(e, kernel[i]);
	for (size_t i = 0; i < e->km.n; i++)
		nkernel += e->km.e[i].kidx >= 0;
	/* most built-in block rules are decided in the kernel */
	assert_true(nkernel * 10 >= nblock * 7);
	/* and leave room for the policy's own rules and lists */
	assert_true(e->km.table->nstates <= LWM_MAX_STATES - 512);
	/* validators, context words and short entropy windows stay out */
	assert_user(e, "jwt", "validator jwt");
	assert_user(e, "aws_secret_key", "validator mixed_chars");
	assert_user(e, "connection_string", "validator url_password");
	assert_user(e, "azure_openai_api_key", "needs context words");
	assert_user(e, "twilio_auth_token", "needs context words");
	assert_user(e, "twilio_api_key", "no literal of 3+ bytes");
	assert_user(e, "mailchimp_api_key", "min_entropy");
	assert_user(e, "slack_token", "min_entropy");
	/* the kernel forms say what is checked, and never show list values */
	assert_non_null(strstr(entry(e, "private_key")->kernel_form, "BEGIN line alone"));
	assert_non_null(strstr(entry(e, "aws_access_key")->kernel_form, "entropy >= 2.5 over 16"));
	assert_non_null(strstr(entry(e, "aws_access_key")->kernel_form, "allow value exempt"));
	assert_non_null(strstr(entry(e, "aws_access_key")->kernel_form, "AKIA"));
	assert_int_equal(e->km.table->rules[entry(e, "aws_access_key")->kidx].ent_len, 16);
	assert_int_equal(e->km.table->rules[entry(e, "private_key")->kidx].ent_len, 0);
	/* the report: a summary, then one line per rule left in user space */
	lw_kmatch_report(&e->km, on_line, &l);
	assert_int_equal(l.n, 1 + nblock - nkernel);
	assert_non_null(strstr(l.all.p, "in-kernel blocking"));
	assert_non_null(strstr(l.all.p, "rule jwt: "));
	assert_null(strstr(l.all.p, "rule aws_access_key:"));
	lw_buf_free(&l.all);
	/* build time: best of a few, one core */
	for (int i = 0; i < 5; i++) {
		struct lw_kmatch km;
		double t0 = now_ms();

		assert_int_equal(lw_kmatch_build(&e->rs, &km), 0);
		if (now_ms() - t0 < best)
			best = now_ms() - t0;
		assert_int_equal(km.table->nstates, e->km.table->nstates);
		assert_memory_equal(km.table, e->km.table, sizeof(*km.table));
		lw_kmatch_free(&km);
	}
	fprintf(stderr,
		"  kmatch: %zu of %zu built-in block rules in the kernel, %u DFA states, "
		"build %.1f ms\n",
		nkernel, nblock, e->km.table->nstates, best);
	/* generous for sanitizer builds; about 40 ms at -O2 */
	assert_true(best < 2000);
}

static void test_positives(void **state)
{
	struct env *e = *state;
	const struct lw_list *canaries = NULL;
	struct lw_buf v = {0}, body = {0};
	uint64_t seed = 7;

	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		assert_kernel(e, positives[i].rule);
		for (int draw = 0; draw < 8; draw++) {
			const char *id;
			size_t vs, ve, end = 0;

			expand(&seed, positives[i].tpl, &v);
			json_body(v.p, &body, &vs, &ve);
			id = scan(e, body.p, body.len, &end);
			if (!id || strcmp(id, positives[i].rule) != 0)
				fail_msg("%s: found %s in %s", positives[i].rule,
					 id ? id : "nothing", body.p);
			/* the match ends inside the value (its kernel form may
			 * be shorter than the value) */
			assert_true(end >= vs && end < ve);
		}
	}
	/* the repository's canary values */
	for (size_t i = 0; i < e->rs.nlists; i++)
		if (!strcmp(e->rs.lists[i].id, "canary_tokens"))
			canaries = &e->rs.lists[i];
	assert_non_null(canaries);
	assert_kernel(e, "canary_tokens");
	assert_non_null(strstr(entry(e, "canary_tokens")->kernel_form, "3 values"));
	for (size_t k = 0; k < canaries->nvalues; k++) {
		size_t vs, ve, end = 0;

		assert_null(strstr(entry(e, "canary_tokens")->kernel_form, canaries->values[k]));
		json_body(canaries->values[k], &body, &vs, &ve);
		assert_string_equal(scan(e, body.p, body.len, &end), "canary_tokens");
		assert_int_equal(end, ve - 1);
	}
	lw_buf_free(&v);
	lw_buf_free(&body);
}

static void test_negatives(void **state)
{
	struct env *e = *state;
	static const char *const values[] = {
		"AKIAIOSFODNN7EXAMPLE",
		"akiaiosfodnn7example",
		"AKIAI44QH8DHBEXAMPLE",
		"AKIAAAAAAAAAAAAAAAAA",
		"AKIAABCDEFGHIJKLMNOP", /* a sequence: 2.5 bits pass, see below */
		"sk-ant-api03-"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"sk-ant-api03-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
		"sk-proj-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"ghp_000000000000000000000000000000000000",
		"sk-ant-api03-abababababababababababababababababababab",
		"-----BEGIN PUBLIC KEY-----",
		"-----BEGIN CERTIFICATE-----",
		"LW-CANARY-7f3a9c21d04",  /* one byte short */
		"lw-canary-7f3a9c21d04e", /* other case: the list keeps the bytes */
	};
	struct lw_buf body = {0};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *id;
		size_t vs, ve;

		json_body(values[i], &body, &vs, &ve);
		id = scan(e, body.p, body.len, NULL);
		/* a run of 16 distinct letters has 4 bits per byte: only the
		 * classifier's placeholder check (a sequence) stops it */
		if (i == 4) {
			assert_string_equal(id, "aws_access_key");
			continue;
		}
		if (id)
			fail_msg("%s matched %s", values[i], id);
	}
	assert_null(scan(e, hard_negatives, strlen(hard_negatives), NULL));
	/* a BEGIN line is enough for the kernel, the classifier wants a body */
	assert_string_equal(scan(e, pem_without_body, strlen(pem_without_body), NULL),
			    "private_key");
	lw_buf_free(&body);
}

/* A body cut into two writes at every offset, the state carried from the
 * first scan to the second, finds the same rule ending at the same byte. */
static void test_split_writes(void **state)
{
	struct env *e = *state;
	struct lw_buf v = {0}, body = {0};
	uint64_t seed = 11;

	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		size_t vs, ve, end1 = 0;
		const char *id1;

		expand(&seed, positives[i].tpl, &v);
		json_body(v.p, &body, &vs, &ve);
		id1 = scan(e, body.p, body.len, &end1);
		assert_non_null(id1);
		for (size_t k = 0; k <= body.len; k++) {
			uint16_t st = 0;
			size_t end = 0;
			int r = lw_kmatch_scan(e->km.table, body.p, k, &st, &end);

			if (r < 0) {
				r = lw_kmatch_scan(e->km.table, body.p + k, body.len - k, &st,
						   &end);
				end += k;
			}
			assert_true(r >= 0);
			assert_string_equal(e->km.e[e->km.kentry[r]].id, id1);
			assert_int_equal(end, end1);
		}
		/* and one byte per write */
		{
			uint16_t st = 0;
			size_t end = 0, k;
			int r = -1;

			for (k = 0; k < body.len && r < 0; k++)
				r = lw_kmatch_scan(e->km.table, body.p + k, 1, &st, &end);
			assert_true(r >= 0);
			assert_int_equal(k - 1, end1);
		}
	}
	/* a state from an empty scan is the start */
	{
		uint16_t st = 0;
		size_t end;

		assert_int_equal(lw_kmatch_scan(e->km.table, "", 0, &st, &end), -1);
		assert_int_equal(st, 0);
	}
	lw_buf_free(&v);
	lw_buf_free(&body);
}

static void test_entropy_check(void **state)
{
	struct env *e = *state;
	const struct lwm_table *t = e->km.table;
	int r = entry(e, "aws_access_key")->kidx;
	const struct lw_kmatch_entry *pk = entry(e, "private_key");
	/* 16 bytes: 16 distinct pass (sum 0), all one byte fails */
	const uint8_t distinct[] = "ABCDEFGHIJKLMNOP", same[] = "AAAAAAAAAAAAAAAA";
	uint8_t w[16];

	assert_true(r >= 0);
	assert_int_equal(t->rules[r].ent_len, 16);
	/* floor(1024 * (16 * 4 - 2.5 * 16)) */
	assert_int_equal(t->rules[r].ent_max_sum, 24576);
	assert_true(lw_kmatch_entropy_ok(t, (unsigned)r, distinct, 16));
	assert_false(lw_kmatch_entropy_ok(t, (unsigned)r, same, 16));
	/* 8 pairs: sum 8 * clog[2] = 16384 <= 24576; 4 quads: 4 * 8192 = 32768 > */
	memcpy(w, "AABBCCDDEEFFGGHH", 16);
	assert_true(lw_kmatch_entropy_ok(t, (unsigned)r, w, 16));
	memcpy(w, "AAAABBBBCCCCDDDD", 16);
	assert_false(lw_kmatch_entropy_ok(t, (unsigned)r, w, 16));
	/* fewer bytes than the window (the match began in an earlier write) */
	assert_true(lw_kmatch_entropy_ok(t, (unsigned)r, same, 15));
	/* rules without a check */
	assert_true(lw_kmatch_entropy_ok(t, (unsigned)pk->kidx, same, 16));
	/* a placeholder split across two writes passes the check in the
	 * second: the kernel cannot see the first write's bytes */
	{
		const char *p = "key AKIAAAAAAAAAAAAAAAAA.";
		uint16_t st = 0;
		size_t end;

		assert_int_equal(lw_kmatch_scan(t, p, strlen(p), &st, &end), -1);
		st = 0;
		assert_int_equal(lw_kmatch_scan(t, p, 10, &st, &end), -1);
		assert_int_equal(lw_kmatch_scan(t, p + 10, strlen(p) - 10, &st, &end), r);
		assert_int_equal(end, 13);
	}
}

static void test_policy_dir(void **state)
{
	struct env *e = env_new(FIX "policy");
	struct lw_buf body = {0};
	size_t vs, ve, end;

	(void)state;
	/* personal data turned to block stays in user space */
	assert_user(e, "email", "validator email");
	assert_user(e, "credit_card", "validator credit_card (Luhn) runs in user space");
	assert_user(e, "iban", "validator iban");
	assert_user(e, "us_ssn", "validator us_ssn");
	assert_user(e, "jwt", "validator jwt");
	/* overrides: mode and kernel of a built-in rule */
	assert_kernel(e, "github_token");
	assert_true(e->rs.rules[entry(e, "github_token")->index].monitor);
	assert_false(e->rs.rules[entry(e, "github_token")->index].no_kernel);
	assert_user(e, "npm_token", "kernel: false");
	assert_false(e->rs.rules[entry(e, "npm_token")->index].monitor);
	/* constructs the kernel form does not take */
	assert_user(e, "k_anchor", "pattern construct anchor '^' not supported in the kernel");
	assert_user(e, "k_dollar", "pattern construct anchor '$' not supported");
	assert_user(e, "k_nonword", "pattern construct '\\B' not supported");
	assert_user(e, "k_midb", "pattern construct '\\b' inside the pattern not supported");
	assert_user(e, "k_posix", "pattern construct POSIX class");
	assert_user(e, "k_huge", "pattern construct repeat of more than 256");
	assert_user(e, "k_flag", "pattern construct '(?s' not supported");
	assert_user(e, "k_noliteral", "no literal of 3+ bytes: would fire on ordinary text");
	assert_user(e, "k_count", "min_count 2");
	assert_user(e, "k_context", "needs context words");
	assert_user(e, "k_contains", "allow_contains");
	assert_user(e, "k_regex", "allow_regex");
	assert_user(e, "k_off", "kernel: false");
	assert_user(e, "k_short_entropy", "min_entropy");
	assert_user(e, "k_partial_allow", "allow entry 1 is not a whole match");
	assert_true(e->rs.rules[entry(e, "k_off")->index].no_kernel);
	/* and those it does */
	assert_kernel(e, "k_monitor");
	assert_true(e->rs.rules[entry(e, "k_monitor")->index].monitor);
	assert_false(e->rs.rules[entry(e, "k_monitor")->index].no_kernel);
	assert_string_equal(scan(e, "id monicorp-12345678 ok", 23, NULL), "k_monitor");
	assert_kernel(e, "k_caseless");
	assert_string_equal(entry(e, "k_caseless")->kernel_form, "(?i)shoutcorp-[0-9]{8}");
	assert_string_equal(scan(e, "SHOUTCORP-12345678", 18, NULL), "k_caseless");
	assert_string_equal(scan(e, "ShoutCorp-12345678", 18, NULL), "k_caseless");
	assert_string_equal(scan(e, "inLINEcorp-12345678", 19, NULL), "k_inline");
	assert_string_equal(entry(e, "k_escapes")->kernel_form, "hex-corp[0-9]{8}\\.");
	assert_string_equal(scan(e, "hex-corp12345678.", 17, NULL), "k_escapes");
	assert_null(scan(e, "hex-corp12345678!", 17, NULL));
	/* allow values are exempt in either case; others are not */
	assert_non_null(strstr(entry(e, "k_exempt")->kernel_form, "1 allow value exempt"));
	assert_null(scan(e, "x exmpcorp-0123456789abcdef y", 29, NULL));
	assert_null(scan(e, "x exmpcorp-0123456789ABCDEF y", 29, NULL));
	assert_string_equal(scan(e, "x exmpcorp-0123456789abcdee y", 29, &end), "k_exempt");
	assert_int_equal(end, 26);
	/* \b at the edges is dropped: a longer token matches */
	assert_string_equal(scan(e, "xexmpcorp-0123456789abcdeee", 27, NULL), "k_exempt");
	/* alert rules and lists are no entries */
	for (size_t i = 0; i < e->km.n; i++) {
		assert_string_not_equal(e->km.e[i].id, "k_alert");
		assert_string_not_equal(e->km.e[i].id, "km_alert");
	}
	/* lists */
	assert_kernel(e, "km_canaries");
	assert_true(entry(e, "km_canaries")->is_list);
	assert_true(e->rs.lists[entry(e, "km_canaries")->index].monitor);
	assert_string_equal(entry(e, "km_canaries")->kernel_form, "any of 2 values, exact case");
	json_body("km-canary-0002-beta", &body, &vs, &ve);
	assert_string_equal(scan(e, body.p, body.len, &end), "km_canaries");
	assert_int_equal(end, ve - 1);
	json_body("KM-CANARY-0002-BETA", &body, &vs, &ve);
	assert_null(scan(e, body.p, body.len, NULL));
	assert_kernel(e, "km_codenames");
	assert_string_equal(scan(e, "PROJECT-BLUEBIRD launch", 23, NULL), "km_codenames");
	assert_string_equal(scan(e, "project-bluebird launch", 23, NULL), "km_codenames");
	assert_user(e, "km_hashed", "hashed list values");
	assert_user(e, "km_off", "kernel: false");
	assert_true(e->rs.lists[entry(e, "km_off")->index].no_kernel);
	assert_user(e, "km_counted", "min_count 3");
	/* the built-in rules are still there */
	json_body("-----BEGIN OPENSSH PRIVATE KEY-----", &body, &vs, &ve);
	assert_string_equal(scan(e, body.p, body.len, NULL), "private_key");
	lw_buf_free(&body);
	env_free(e);
}

static void test_loader_errors(void **state)
{
	static const char *const expect[] = {
		FIX "errors/rules/10-keys.yaml:4: mode: unknown value 'shadow' (expected enforce, "
		    "monitor)",
		FIX "errors/rules/10-keys.yaml:7: kernel: expected auto or false",
		FIX "errors/rules/10-keys.yaml:10: kernel: expected auto or false",
		FIX "errors/rules/10-keys.yaml:12: mode: expected a string",
		FIX "errors/lists/10-keys.yaml:4: mode: unknown value 'enforcing'",
		FIX "errors/lists/10-keys.yaml:7: kernel: expected auto or false",
	};
	struct lw_ruleset rs = {0};
	struct lw_diag d = {0};
	int n;

	(void)state;
	n = lw_rules_load(&rs, FIX "errors", &d);
	assert_int_equal(n, (int)d.n);
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		bool found = false;

		for (size_t k = 0; k < d.n; k++)
			found |= !strncmp(d.msgs[k], expect[i], strlen(expect[i]));
		if (!found) {
			print_diag(&d);
			fail_msg("missing error: %s", expect[i]);
		}
	}
	assert_int_equal(d.n, sizeof(expect) / sizeof(expect[0]));
	lw_rules_free(&rs);
	lw_diag_free(&d);
	/* no block rule at all: one state that never accepts */
	{
		struct lw_ruleset none = {0};
		struct lw_kmatch km;
		uint16_t st = 0;
		size_t end;

		assert_int_equal(lw_kmatch_build(&none, &km), 0);
		check_table(&km);
		assert_int_equal(km.n, 0);
		assert_int_equal(km.table->nstates, 1);
		assert_int_equal(km.table->nrules, 0);
		assert_int_equal(km.table->resync, 0);
		assert_int_equal(lw_kmatch_scan(km.table, "AKIAQWERTYUIOPASDFGH", 20, &st, &end),
				 -1);
		lw_kmatch_free(&km);
	}
	/* defaults: enforce, auto */
	n = lw_rules_load(&rs, NULL, &d);
	assert_int_equal(n, 0);
	for (size_t i = 0; i < rs.n; i++)
		assert_true(!rs.rules[i].monitor && !rs.rules[i].no_kernel);
	lw_rules_free(&rs);
	lw_diag_free(&d);
}

struct tmpdir {
	char path[64];
};

/* Far more block rules than fit: each stays within the budget or says why
 * not, the built-in ones (first in order) keep their place, and the build
 * costs about one DFA construction per rule left out. */
static void test_hostile_ruleset(void **state)
{
	struct tmpdir t;
	struct lw_buf p = {0}, y = {0};
	struct env *e;
	size_t budget = 0, taken = 0;
	FILE *f;

	(void)state;
	snprintf(t.path, sizeof(t.path), "/tmp/lw-test-kmatch.XXXXXX");
	assert_non_null(mkdtemp(t.path));
	lw_buf_printf(&p, "%s/rules", t.path);
	assert_int_equal(mkdir(p.p, 0700), 0);
	lw_buf_puts(&y, "rules:\n");
	for (int i = 0; i < 200; i++)
		lw_buf_printf(&y,
			      "  - {id: hostile_%03d, pattern: 'zq%03d[a-z]{30}X[0-9]{5}', "
			      "action: block, placeholders: false}\n",
			      i, i);
	lw_buf_reset(&p);
	lw_buf_printf(&p, "%s/rules/hostile.yaml", t.path);
	f = fopen(p.p, "w");
	assert_non_null(f);
	fputs(y.p, f);
	fclose(f);
	e = env_new(t.path);
	for (size_t i = 0; i < e->km.n; i++) {
		const struct lw_kmatch_entry *x = &e->km.e[i];

		if (strncmp(x->id, "hostile_", 8) != 0)
			continue;
		if (x->kidx >= 0) {
			taken++;
			assert_string_equal(x->kernel_form + 5, "[a-z]{30}X[0-9]{5}");
			continue;
		}
		budget += !!strstr(x->reason, "DFA state budget (4096 states)");
		assert_true(strstr(x->reason, "DFA state budget") ||
			    strstr(x->reason, "kernel rule limit"));
	}
	assert_true(budget > 0);
	assert_true(taken > 0);
	assert_int_equal(taken + budget, 200);
	/* the built-in rules kept their place */
	assert_kernel(e, "aws_access_key");
	assert_kernel(e, "private_key");
	assert_string_equal(scan(e, "zq000abcdefghijklmnopqrstuvwxyzabcdX12345", 41, NULL),
			    "hostile_000");
	fprintf(stderr, "  kmatch: %zu of 200 hostile rules taken, %u states, build %.0f ms\n",
		taken, e->km.table->nstates, e->ms);
	env_free(e);
	assert_int_equal(unlink(p.p), 0);
	lw_buf_reset(&p);
	lw_buf_printf(&p, "%s/rules", t.path);
	assert_int_equal(rmdir(p.p), 0);
	assert_int_equal(rmdir(t.path), 0);
	lw_buf_free(&p);
	lw_buf_free(&y);
}

/* The walk bpf/capture.bpf.c does on a large write: four pieces side by
 * side, piece k > 0 walked from state 0 starting resync bytes before it
 * (accepts before the piece are the previous piece's); *state_ok: each
 * piece was in the sequential walk's state where it begins. */
static int parallel_scan(const struct lwm_table *t, const char *p, size_t n, size_t *end,
			 bool *state_ok)
{
	const uint8_t *b = (const uint8_t *)p;
	size_t L = t->resync, q = n / 4, best = SIZE_MAX;
	int rule = -1;

	*state_ok = true;
	assert_true(L > 0 && q >= 2 * L);
	for (size_t k = 0; k < 4; k++) {
		size_t from = k * q, stop = k == 3 ? n : (k + 1) * q, i = k ? from - L : 0;
		unsigned st = 0, seq = 0;

		for (size_t j = 0; j < from; j++)
			seq = t->trans[seq * 256 + b[j]] & LWM_STATE_MASK;
		for (; i < stop; i++) {
			unsigned to;

			if (i == from)
				*state_ok &= st == seq;
			to = t->trans[st * 256 + b[i]];
			st = to & LWM_STATE_MASK;
			if (!(to & LWM_ACCEPT) || i < from)
				continue;
			if (lw_kmatch_entropy_ok(t, t->accept[st] - 1u, b, i + 1)) {
				if (i < best) {
					best = i;
					rule = t->accept[st] - 1;
				}
				break;
			}
		}
	}
	*end = best;
	return rule;
}

static void test_parallel_walk(void **state)
{
	struct env *e = *state;
	const struct lwm_table *t = e->km.table;
	struct lw_buf v = {0}, body = {0}, text = {0};
	uint64_t seed = 13;
	bool ok;
	size_t end;

	/* every kernel match is bounded: the walk may be cut in pieces */
	assert_true(t->resync > 0 && t->resync <= 128);
	assert_int_equal(parallel_scan(t, hard_negatives, strlen(hard_negatives), &end, &ok), -1);
	assert_true(ok);
	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		for (int draw = 0; draw < 4; draw++) {
			size_t vs, ve, end1 = 0;
			const char *id;
			int r;

			expand(&seed, positives[i].tpl, &v);
			json_body(v.p, &body, &vs, &ve);
			lw_buf_reset(&text);
			/* the value anywhere in a larger write */
			for (int k = 0; k < draw; k++)
				lw_buf_puts(&text, hard_negatives);
			lw_buf_put(&text, body.p, body.len);
			for (int k = draw; k < 4; k++)
				lw_buf_puts(&text, hard_negatives);
			id = scan(e, text.p, text.len, &end1);
			assert_non_null(id);
			assert_string_equal(id, positives[i].rule);
			r = parallel_scan(t, text.p, text.len, &end, &ok);
			assert_true(r >= 0);
			assert_string_equal(e->km.e[e->km.kentry[r]].id, id);
			assert_int_equal(end, end1);
			assert_true(ok);
		}
	}
	lw_buf_free(&v);
	lw_buf_free(&body);
	lw_buf_free(&text);
}

/* Random bytes and near-misses never leave the table or the buffer. */
static void test_random_input(void **state)
{
	struct env *e = *state;
	static const char *const pieces[] = {"AKIA",
					     "sk-",
					     "sk-ant-api03-",
					     "ghp_",
					     "-----BEGIN ",
					     "PRIVATE KEY",
					     "-----",
					     "LW-CANARY-",
					     "AIza",
					     "0123456789",
					     "abcdef",
					     "\"",
					     " ",
					     "\n",
					     "\\n",
					     "_",
					     "-"};
	uint64_t seed = 3;
	char buf[4096];

	for (int round = 0; round < 200; round++) {
		size_t n = 0, end;
		uint16_t st = 0;

		while (n < sizeof(buf) - 32) {
			uint64_t r = splitmix(&seed);

			if (r % 3 == 0) {
				const char *pc =
					pieces[(r >> 8) % (sizeof(pieces) / sizeof(*pieces))];

				memcpy(buf + n, pc, strlen(pc));
				n += strlen(pc);
			} else {
				buf[n++] = (char)(r >> 16);
			}
		}
		for (size_t off = 0; off < n;) {
			size_t k = 1 + splitmix(&seed) % 700;
			int r;

			if (k > n - off)
				k = n - off;
			r = lw_kmatch_scan(e->km.table, buf + off, k, &st, &end);
			assert_true(st < e->km.table->nstates);
			assert_true(r < (int)e->km.table->nrules);
			if (r >= 0) {
				assert_true(end < k);
				/* the kernel drops the write; a new connection starts over */
				st = 0;
			}
			off += k;
		}
	}
}

int main(void)
{
	const struct CMUnitTest builtin[] = {
		cmocka_unit_test(test_builtin_pack),
		cmocka_unit_test(test_entropy_check),
	};
	const struct CMUnitTest policies[] = {
		cmocka_unit_test(test_positives),    cmocka_unit_test(test_negatives),
		cmocka_unit_test(test_split_writes), cmocka_unit_test(test_parallel_walk),
		cmocka_unit_test(test_random_input),
	};
	const struct CMUnitTest other[] = {
		cmocka_unit_test(test_policy_dir),
		cmocka_unit_test(test_loader_errors),
		cmocka_unit_test(test_hostile_ruleset),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("kmatch built-in", builtin, setup_builtin,
					     teardown_env);
	fails += cmocka_run_group_tests_name("kmatch policies", policies, setup_policies,
					     teardown_env);
	fails += cmocka_run_group_tests_name("kmatch rules", other, NULL, NULL);
	return fails ? 1 : 0;
}
