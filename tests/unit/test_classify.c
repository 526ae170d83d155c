/*
 * Unit tests for user/classify: validators (valid/invalid tables), masking,
 * the built-in rules on realistic positives and hard negatives, overrides
 * and custom rules, exact-value lists (values and digests), loader errors at
 * their FILE:LINE, overlaps and merging, fingerprints, large and hostile
 * inputs, and a throughput figure for a 16 KiB JSON body.
 *
 * Secret-looking positives are generated at run time from a fixed seed: the
 * repository holds no string a secret scanner would flag. Fixtures live in
 * tests/unit/fixtures/rules/; like every unit test this one runs from the
 * repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hard_negatives.h"
#include "classify/classify.h"
#include "classify/lists.h"
#include "classify/mask.h"
#include "classify/rules.h"
#include "classify/validate.h"
#include "policy/ydoc.h"
#include "util/buf.h"

#define FIX "tests/unit/fixtures/rules/"

/* ---- helpers ------------------------------------------------------------ */

struct env {
	struct lw_ruleset rs;
	struct lw_classifier *c;
	struct lw_classify_ctx *x;
	struct lw_findings f;
};

static void print_diag(const struct lw_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s\n", d->msgs[i]);
}

static struct env *env_new(const char *dir)
{
	struct env *e = calloc(1, sizeof(*e));
	struct lw_diag d = {0};

	assert_non_null(e);
	if (lw_rules_load(&e->rs, dir, &d) != 0)
		print_diag(&d);
	assert_int_equal(d.n, 0);
	e->c = lw_classifier_new(&e->rs, &d);
	print_diag(&d);
	assert_non_null(e->c);
	e->x = lw_classify_ctx_new(e->c);
	assert_non_null(e->x);
	lw_diag_free(&d);
	return e;
}

static void env_free(struct env *e)
{
	lw_findings_free(&e->f);
	lw_classify_ctx_free(e->x);
	lw_classifier_free(e->c);
	lw_rules_free(&e->rs);
	free(e);
}

static int run(struct env *e, const char *text)
{
	int n = lw_classify(e->x, text, strlen(text), &e->f);

	assert_true(n >= 0);
	return n;
}

static const struct lw_finding *by_type(const struct env *e, const char *type)
{
	for (size_t i = 0; i < e->f.n; i++)
		if (!strcmp(e->f.v[i].type, type))
			return &e->f.v[i];
	return NULL;
}

static const struct lw_finding *by_rule(const struct env *e, const char *rule)
{
	for (size_t i = 0; i < e->f.n; i++)
		if (!strcmp(e->f.v[i].rule, rule))
			return &e->f.v[i];
	return NULL;
}

static uint32_t type_count(const struct env *e, const char *type)
{
	uint32_t n = 0;

	for (size_t i = 0; i < e->f.n; i++)
		if (!strcmp(e->f.v[i].type, type))
			n += e->f.v[i].count;
	return n;
}

static void dump_findings(const struct env *e, const char *what)
{
	for (size_t i = 0; i < e->f.n; i++)
		fprintf(stderr, "  [%s] %s/%s x%u at %zu+%zu %s\n", what, e->f.v[i].type,
			e->f.v[i].rule, e->f.v[i].count, e->f.v[i].first_off, e->f.v[i].first_len,
			e->f.v[i].sample);
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const char AN[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Expands a template: {A24} 24 letters/digits, {W24} base64url, {B24}
 * base64, {H24} lower hex, {D24} digits, {C24} upper case + digits, {L24}
 * lower case + digits, {U16} base32, {G58} the age bech32 alphabet. */
static void expand(uint64_t *seed, const char *tpl, struct lw_buf *out)
{
	static const struct {
		char k;
		const char *cs;
	} sets[] = {
		{'A', AN},
		{'W', "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"},
		{'B', "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"},
		{'H', "0123456789abcdef"},
		{'D', "0123456789"},
		{'C', "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"},
		{'L', "abcdefghijklmnopqrstuvwxyz0123456789"},
		{'U', "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"},
		{'G', "qpzry9x8gf2tvdw0s3jn54khce6mua7l"},
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
		for (long i = 0; i < n; i++) {
			char c = cs[splitmix(seed) % strlen(cs)];

			if (p[1] == 'G')
				c = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
			lw_buf_putc(out, c);
		}
		p = end;
	}
}

/* Completes digits with a Luhn check digit (bad: a wrong one). */
static void luhn_number(const char *body, bool bad, char *out)
{
	size_t n = strlen(body);

	for (int c = 0; c < 10; c++) {
		memcpy(out, body, n);
		out[n] = (char)('0' + c);
		out[n + 1] = 0;
		if (lw_val_luhn(out, n + 1) != bad)
			return;
	}
	fail();
}

/* Does the sample show five or more consecutive bytes of secret[from..)? */
static bool sample_leaks(const char *sample, const char *secret, size_t from)
{
	size_t n = strlen(secret);

	for (size_t i = from; i + 5 <= n; i++)
		if (memmem(sample, strlen(sample), secret + i, 5))
			return true;
	return false;
}

/* ---- validators ------------------------------------------------------------- */

static void test_luhn(void **state)
{
	(void)state;
	assert_true(lw_val_luhn("4111111111111111", 16));
	assert_true(lw_val_luhn("79927398713", 11));
	assert_true(lw_val_luhn("4111 1111 1111 1111", 19));
	assert_false(lw_val_luhn("4111111111111112", 16));
	assert_false(lw_val_luhn("79927398710", 11));
	assert_false(lw_val_luhn("1", 1));
}

static void test_credit_card(void **state)
{
	static const char *const good_bodies[] = {
		"411111111111111", /* visa 16 */
		"424242424242424", /* visa 16 */
		"453914880343646", /* visa 16 */
		"422222222222",	   /* visa 13 */
		"555555555555444", /* mastercard 51-55 */
		"222300312200322", /* mastercard 2-series */
		"272099999999999", /* mastercard 2720 */
		"37828224631000",  /* amex 15 */
		"34343434343434",  /* amex 15 */
		"601111111111111", /* discover */
		"650011111111111", /* discover 65 */
		"353011133330000", /* jcb */
		"3056930902590",   /* diners 14 */
		"620000000000000", /* unionpay */
		"675964982643845", /* maestro 6759 */
		"220012345678901", /* mir */
	};
	static const char *const bad_bodies[] = {
		"911111111111111",  /* no issuer starts with 9 */
		"123456781234567",  /* nor 1 */
		"378282246310005",  /* amex with 16 digits */
		"5105105105105100", /* mastercard with 17 */
		"27210000000000",   /* 2721 is past the mastercard 2-series (15 digits) */
		"00000000000",	    /* too short, zeros */
	};
	char num[32];

	(void)state;
	for (size_t i = 0; i < sizeof(good_bodies) / sizeof(good_bodies[0]); i++) {
		luhn_number(good_bodies[i], false, num);
		if (!lw_val_credit_card(num, strlen(num)))
			fail_msg("valid card rejected: %s", num);
		luhn_number(good_bodies[i], true, num);
		assert_false(lw_val_credit_card(num, strlen(num)));
	}
	for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		luhn_number(bad_bodies[i], false, num);
		if (lw_val_credit_card(num, strlen(num)))
			fail_msg("invalid card accepted: %s", num);
	}
	/* groupings */
	assert_true(lw_val_credit_card("4111 1111 1111 1111", 19));
	assert_true(lw_val_credit_card("4111-1111-1111-1111", 19));
	assert_true(lw_val_credit_card("3782 822463 10005", 17));
	assert_false(lw_val_credit_card("4111 1111-1111 1111", 19));
	assert_false(lw_val_credit_card("41 11111111111111", 17));
	assert_false(lw_val_credit_card("4444444444444448", 16) &&
		     lw_val_credit_card("0000000000000000", 16));
	assert_false(lw_val_credit_card("0000000000000000", 16));
	assert_string_equal(lw_val_card_brand("378282246310005", 15), "amex");
	assert_string_equal(lw_val_card_brand("5555555555554444", 16), "mastercard");
	assert_null(lw_val_card_brand("9999999999999999", 16));
}

static void test_iban(void **state)
{
	static const char *const good[] = {
		"DE89370400440532013000",
		"DE89 3704 0044 0532 0130 00",
		"GB82WEST12345698765432",
		"GB82 WEST 1234 5698 7654 32",
		"FR1420041010050500013M02606",
		"NL91ABNA0417164300",
		"CH9300762011623852957",
		"ES9121000418450200051332",
		"IT60X0542811101000000123456",
		"NO9386011117947",
		"MT84MALT011000012345MTLCAST001S",
		"BE68539007547034",
		"AT611904300234573201",
		"PL61109010140000071219812874",
	};
	static const char *const bad[] = {
		"DE89370400440532013001",   /* checksum */
		"DE88370400440532013000",   /* check digits */
		"GB82WEST1234569876543",    /* GB is 22 long */
		"XX89370400440532013000",   /* no such country */
		"DE89 3704 0044 0532 0130", /* too short */
		"DE89-3704-0044-0532-0130-00", "",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!lw_val_iban(good[i], strlen(good[i])))
			fail_msg("valid IBAN rejected: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lw_val_iban(bad[i], strlen(bad[i])))
			fail_msg("invalid IBAN accepted: %s", bad[i]);
}

static void test_us_ssn(void **state)
{
	static const char *const good[] = {"536-22-1234", "536 22 1234", "536221234",
					   "001-01-0001", "899-99-9999", "772-10-4493"};
	static const char *const bad[] = {
		"000-12-3456", "666-12-3456", "900-12-3456", "999-99-9999", "536-00-1234",
		"536-22-0000", "078-05-1120", "219-09-9999", "457-55-5462", "123-45-6789",
		"111-11-1111", "536-22 1234", "536-221-234", "53622123",    "5362212345",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!lw_val_us_ssn(good[i], strlen(good[i])))
			fail_msg("valid SSN rejected: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lw_val_us_ssn(bad[i], strlen(bad[i])))
			fail_msg("invalid SSN accepted: %s", bad[i]);
}

static void test_jwt(void **state)
{
	/* the jwt.io example token: public documentation */
	static const char good[] =
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
		"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
	static const char *const bad[] = {
		/* header {"typ":"JWT"}: no alg */
		"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
		/* header is not JSON */
		"eyJub3RqdWxzb24.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
		/* two parts */
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0",
		/* four parts */
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln.bmF0",
		/* a byte outside base64url */
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIi$iIxIn0.c2lnbmF0dXJl",
	};

	(void)state;
	assert_true(lw_val_jwt(good, strlen(good)));
	/* alg none: empty signature */
	assert_true(lw_val_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", 36));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lw_val_jwt(bad[i], strlen(bad[i])))
			fail_msg("invalid JWT accepted: %s", bad[i]);
}

static void test_phone(void **state)
{
	static const char *const good[] = {
		"+1 (415) 555-2671", "+44 20 7946 0958", "+33 1 23 45 67 89", "415-555-2671",
		"(415) 555-2671",    "415.555.2671",	 "+49 30 901820",     "+4915123456789",
		"030 90182044",	     "+81-3-1234-5678",
	};
	static const char *const bad[] = {
		"2024-05-01",
		"01/05/2024",
		"12.05.2024",
		"192.168.100.200",
		"1.2.3",
		"10.22.4",
		"+1 234",
		"555-555-5555",
		"123-456-7890",
		"+0 44 20 7946 0958",
		"+1 015 555 2671",
		"415-155-2671",
		"(415 555-2671",
		"41--555-2671",
		"1234567890123456789",
	};
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = strlen(good[i]);
		if (!lw_val_phone(good[i], &n) || n != strlen(good[i]))
			fail_msg("valid phone rejected: %s", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = strlen(bad[i]);
		if (lw_val_phone(bad[i], &n))
			fail_msg("invalid phone accepted: %s (as %zu bytes)", bad[i], n);
	}
	/* a number after the phone number is cut off, not taken along */
	n = strlen("+1 415 555 2671 2024 88");
	assert_true(lw_val_phone("+1 415 555 2671 2024 88", &n));
	assert_int_equal(n, strlen("+1 415 555 2671"));
}

static void test_email(void **state)
{
	static const char *const good[] = {
		"maria.garcia@northwind-traders.com", "a@b.co",	     "x+tag@mail.acme.co.uk",
		"first_last%dept@sub.domain.museum",  "o'neil@x.io",
	};
	static const char *const bad[] = {
		"jane@example.com",
		"ops@mail.example.org",
		"foo@localhost",
		"icon@2x.png",
		"bundle@1.2.js",
		"a@b",
		"a..b@c.com",
		".a@c.com",
		"a.@c.com",
		"a@-b.com",
		"a@b.c",
		"a@b.123",
		"a@b@c.com",
		"x@host.test",
		"x@site.invalid",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (strchr(good[i], '\'') == NULL && !lw_val_email(good[i], strlen(good[i])))
			fail_msg("valid email rejected: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lw_val_email(bad[i], strlen(bad[i])))
			fail_msg("invalid email accepted: %s", bad[i]);
	assert_true(lw_val_doc_domain("EXAMPLE.COM", 11));
	assert_true(lw_val_doc_domain("api.example.net", 15));
	assert_false(lw_val_doc_domain("example.co", 10));
	assert_false(lw_val_doc_domain("notexample.com", 14));
}

static void test_url_password(void **state)
{
	static const char *const good[] = {
		"postgres://app:S3cr3tPassw0rd@db.internal:5432/prod",
		"mongodb+srv://svc:Zq81xkP0aa@cluster0.mongo.net",
		"https://deploy:gh7Tq2mLx@git.acme-corp.io/repo.git",
	};
	static const char *const bad[] = {
		"postgres://user:password@localhost/db",
		"mysql://root:${DB_PASS}@db:3306/app",
		"redis://user:<password>@cache:6379",
		"amqp://guest:guest@rabbit:5672",
		"https://u:xxxxxxxx@host.io",
		"postgres://app:s3cr3t@db.example.com/x",
		"postgres://app:%PASS%@db/x",
		"https://user:pw@host",
		"postgres://app@db.internal/x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!lw_val_url_password(good[i], strlen(good[i])))
			fail_msg("credential URL rejected: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lw_val_url_password(bad[i], strlen(bad[i])))
			fail_msg("placeholder URL accepted: %s", bad[i]);
}

static void test_entropy_placeholders(void **state)
{
	static const char *const placeholders[] = {
		"AKIAIOSFODNN7EXAMPLE", "your-api-key-here", "xxxxxxxxxxxxxxxx", "XXXX-XXXX",
		"1234567890abcdef",	"abcdefghijklmnop",  "<token>",		 "${API_KEY}",
		"{{ secrets.key }}",	"REDACTED",	     "sk-...",		 "********",
		"aaaaaaaaaaaaaaaaaaab", "replace_me_please", "dummy-secret-1",
	};
	uint64_t seed = 42;
	struct lw_buf b = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++)
		if (!lw_val_placeholder(placeholders[i], strlen(placeholders[i])))
			fail_msg("placeholder not recognised: %s", placeholders[i]);
	/* random values are not placeholders, and have high entropy */
	for (int i = 0; i < 200; i++) {
		expand(&seed, "{A40}", &b);
		if (lw_val_placeholder(b.p, b.len))
			fail_msg("random value taken for a placeholder: %s", b.p);
		assert_true(lw_val_entropy(b.p, b.len) > 4.0);
	}
	assert_true(lw_val_entropy("aaaa", 4) == 0);
	assert_true(lw_val_entropy("ab", 2) > 0.99 && lw_val_entropy("ab", 2) < 1.01);
	assert_true(lw_val_mixed_chars("abc123", 6));
	assert_false(lw_val_mixed_chars("abcdef", 6));
	assert_false(lw_val_mixed_chars("------", 6));
	lw_buf_free(&b);
}

static void test_private_key_validator(void **state)
{
	static const char body[] =
		"-----BEGIN RSA PRIVATE KEY-----\n"
		"MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
		"aFDrBz9vFqU4yFGHEDWvpL4vExbtmQR9eXoEFd3ZlQ==\n"
		"-----END RSA PRIVATE KEY-----\nafter";
	static const char escaped[] = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAA"
				      "SCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----";
	static const char header[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n"
				     "-----END OPENSSH PRIVATE KEY-----";
	static const char encrypted[] =
		"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
		"DEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
		"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9maXp6\n";
	size_t e;

	(void)state;
	e = strlen("-----BEGIN RSA PRIVATE KEY-----");
	assert_true(lw_val_private_key(body, strlen(body), 0, &e));
	assert_int_equal(e, strlen(body) - strlen("\nafter"));
	e = strlen("-----BEGIN PRIVATE KEY-----");
	assert_true(lw_val_private_key(escaped, strlen(escaped), 0, &e));
	e = strlen("-----BEGIN OPENSSH PRIVATE KEY-----");
	assert_false(lw_val_private_key(header, strlen(header), 0, &e));
	e = strlen("-----BEGIN RSA PRIVATE KEY-----");
	assert_true(lw_val_private_key(encrypted, strlen(encrypted), 0, &e));
}

/* ---- normalisation, digests, tokens, digit runs ------------------------------------ */

static void test_normalize_digest(void **state)
{
	struct lw_buf b = {0};
	uint8_t d1[32], d2[32], hx[32];

	(void)state;
	assert_true(lw_list_normalize(LW_NORM_EMAIL, "  Carol.Diaz@Fabrikam.COM ", 26, &b));
	assert_string_equal(b.p, "carol.diaz@fabrikam.com");
	assert_true(lw_list_normalize(LW_NORM_DIGITS, "CN 7731-0042-19", 15, &b));
	assert_string_equal(b.p, "7731004219");
	assert_false(lw_list_normalize(LW_NORM_DIGITS, "no digits", 9, &b));
	assert_true(lw_list_normalize(LW_NORM_COMPACT, "de89 3704-0044", 14, &b));
	assert_string_equal(b.p, "DE8937040044");
	assert_true(lw_list_normalize(LW_NORM_LOWER, "BlueHeron", 9, &b));
	assert_string_equal(b.p, "blueheron");
	assert_true(lw_list_normalize(LW_NORM_NONE, "As Is", 5, &b));
	assert_string_equal(b.p, "As Is");
	/* the digest of the normalised value: sha256("vip.demo@leakwatch.invalid") */
	assert_true(lw_list_digest(LW_NORM_EMAIL, "VIP.Demo@LeakWatch.invalid", 26, d1));
	assert_true(
		lw_hex32("2522189745beeb64b986be337e9f4ac1a2ecc38061dc40b4514e9bb61bcb11f2", hx));
	assert_memory_equal(d1, hx, 32);
	assert_true(lw_list_digest(LW_NORM_NONE, "vip.demo@leakwatch.invalid", 26, d2));
	assert_memory_equal(d1, d2, 32);
	assert_false(
		lw_hex32("2522189745beeb64b986be337e9f4ac1a2ecc38061dc40b4514e9bb61bcb11f", hx));
	assert_false(
		lw_hex32("z522189745beeb64b986be337e9f4ac1a2ecc38061dc40b4514e9bb61bcb11f2", hx));
	lw_buf_free(&b);
}

static void test_tokens(void **state)
{
	static const char t[] =
		"mail <Bob.Smith+x@mail.acme.io>. then 4929-1234-0099 and word Zanzibar7!";
	size_t s, e, at = (size_t)(strchr(t, '@') - t), d = (size_t)(strstr(t, "4929") - t),
		     w = (size_t)(strstr(t, "Zanz") - t);

	(void)state;
	assert_true(lw_token_bounds(LW_TOKEN_EMAIL, t, strlen(t), at, &s, &e));
	assert_int_equal(e - s, strlen("Bob.Smith+x@mail.acme.io"));
	assert_memory_equal(t + s, "Bob.Smith+x@mail.acme.io", e - s);
	assert_true(lw_token_bounds(LW_TOKEN_DIGITS, t, strlen(t), d + 6, &s, &e));
	assert_memory_equal(t + s, "4929-1234-0099", e - s);
	assert_true(lw_token_bounds(LW_TOKEN_WORD, t, strlen(t), w + 3, &s, &e));
	assert_memory_equal(t + s, "Zanzibar7", e - s);
	/* not a token there */
	assert_false(lw_token_bounds(LW_TOKEN_EMAIL, t, strlen(t), 0, &s, &e));
	assert_false(lw_token_bounds(LW_TOKEN_DIGITS, "ab 12 cd", 8, 3, &s, &e));
}

struct runs {
	size_t v[512][3];
	size_t n;
};

static void collect_run(void *ud, size_t s, size_t e, unsigned nd)
{
	struct runs *r = ud;

	if (r->n < 512) {
		r->v[r->n][0] = s;
		r->v[r->n][1] = e;
		r->v[r->n][2] = nd;
	}
	r->n++;
}

static void test_digit_runs(void **state)
{
	static const char *const alphabets[] = {"0123456789 -./()ab\n", "0123456789 x",
						"1 2-3..45((6))7/8a9", "ab c1 d"};
	static struct runs a, b;
	char buf[700];
	uint64_t seed = 7;
	static const char sample[] = "call +1 (415) 555-2671, card 4111 1111 1111 1111; v1.2.3";

	(void)state;
	a.n = 0;
	lw_digit_runs(sample, strlen(sample), 7, collect_run, &a);
	assert_int_equal(a.n, 2);
	assert_memory_equal(sample + a.v[0][0], "1 (415) 555-2671", a.v[0][1] - a.v[0][0]);
	assert_int_equal(a.v[0][2], 11);
	assert_memory_equal(sample + a.v[1][0], "4111 1111 1111 1111", a.v[1][1] - a.v[1][0]);
	/* the vectorised scanner agrees with the byte-wise definition */
	for (int it = 0; it < 20000; it++) {
		const char *al = alphabets[splitmix(&seed) % 4];
		size_t n = splitmix(&seed) % sizeof(buf), m = strlen(al);
		unsigned min = 1 + (unsigned)(splitmix(&seed) % 12);

		for (size_t i = 0; i < n; i++)
			buf[i] = al[splitmix(&seed) % m];
		a.n = b.n = 0;
		lw_digit_runs(buf, n, min, collect_run, &a);
		lw_digit_runs_ref(buf, n, min, collect_run, &b);
		assert_int_equal(a.n, b.n);
		assert_memory_equal(a.v, b.v, sizeof(a.v[0]) * (a.n < 512 ? a.n : 512));
	}
}

/* ---- masking ------------------------------------------------------------------ */

static void test_mask(void **state)
{
	const struct lw_strv pre = {.v = (char *[]){"sk-proj-", "sk-"}, .n = 2};
	char out[LW_MASK_MAX];
	uint64_t seed = 3;
	struct lw_buf b = {0};

	(void)state;
	lw_mask(LW_MASK_CARD, "4111 1111 1111 1234", 19, NULL, out);
	assert_string_equal(out, "****1234");
	lw_mask(LW_MASK_EMAIL, "maria.garcia@northwind-traders.com", 34, NULL, out);
	assert_string_equal(out, "m***@n***.com");
	lw_mask(LW_MASK_PHONE, "+1 (415) 555-2671", 17, NULL, out);
	assert_string_equal(out, "+*********71");
	lw_mask(LW_MASK_IBAN, "DE89 3704 0044 0532 0130 00", 27, NULL, out);
	assert_string_equal(out, "DE****3000");
	lw_mask(LW_MASK_SSN, "536-22-1234", 11, NULL, out);
	assert_string_equal(out, "***-**-**34");
	lw_mask(LW_MASK_PEM, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE", 38, NULL, out);
	assert_string_equal(out, "-----BEGIN EC PRIVATE KEY-----****");
	lw_mask(LW_MASK_URI, "postgres://app:S3cr3t@db/x", 26, NULL, out);
	assert_string_equal(out, "postgres://***:***@***");
	lw_mask(LW_MASK_FULL, "abcdef", 6, NULL, out);
	assert_string_equal(out, "[6 chars]");
	lw_mask(LW_MASK_SECRET, "abc", 3, NULL, out);
	assert_string_equal(out, "****");
	/* secrets: the longest public prefix and at most a quarter (and 4) of the rest */
	for (size_t len = 1; len <= 200; len++) {
		const char *tpl[] = {"sk-proj-", "sk-", ""};
		char t[16];

		snprintf(t, sizeof(t), "{W%zu}", len);
		for (size_t p = 0; p < 3; p++) {
			size_t shown = 0, k;
			char *tail;

			expand(&seed, t, &b);
			{
				struct lw_buf v = {0};

				lw_buf_printf(&v, "%s%s", tpl[p], b.p);
				lw_mask(LW_MASK_SECRET, v.p, v.len, &pre, out);
				assert_true(strlen(out) < LW_MASK_MAX);
				assert_memory_equal(out, tpl[p],
						    strlen(tpl[p]) < v.len ? strlen(tpl[p]) : 0);
				tail = strstr(out + strlen(tpl[p]), "****");
				assert_non_null(tail);
				shown = strlen(tail + 4);
				k = lw_mask_tail_len(len);
				assert_int_equal(shown, k);
				assert_true(shown * 4 <= len && shown <= 4);
				assert_memory_equal(tail + 4, v.p + v.len - shown, shown);
				lw_buf_free(&v);
			}
		}
	}
	/* never bytes outside printable ASCII */
	lw_mask(LW_MASK_SECRET, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		16, NULL, out);
	for (const char *p = out; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	lw_buf_free(&b);
}

/* ---- the built-in pack ---------------------------------------------------------------- */

static int setup_builtin(void **state)
{
	*state = env_new(NULL);
	return 0;
}

static int teardown_env(void **state)
{
	env_free(*state);
	return 0;
}

static void test_builtin_pack(void **state)
{
	struct env *e = *state;
	static const char *const canonical[] = {
		"email",
		"phone",
		"credit_card",
		"iban",
		"us_ssn",
		"aws_access_key",
		"github_token",
		"openai_api_key",
		"anthropic_api_key",
		"stripe_secret_key",
		"slack_token",
		"google_api_key",
		"private_key",
		"jwt",
	};
	const char *types[256];
	size_t ntypes = 0, blocking = 0;

	for (size_t i = 0; i < e->rs.n; i++) {
		const struct lw_rule *r = &e->rs.rules[i];
		bool seen = false;

		assert_true(r->builtin);
		assert_non_null(r->description);
		for (size_t k = 0; k < ntypes; k++)
			seen |= !strcmp(types[k], r->type);
		if (!seen && ntypes < 256)
			types[ntypes++] = r->type;
		blocking += r->action == LW_ACT_BLOCK;
	}
	for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		bool seen = false;

		for (size_t k = 0; k < ntypes; k++)
			seen |= !strcmp(types[k], canonical[i]);
		if (!seen)
			fail_msg("canonical type %s missing", canonical[i]);
	}
	/* at least 30 secret types beyond the canonical ones */
	assert_true(ntypes >= 14 + 30);
	assert_true(blocking >= 40);
	assert_int_equal(e->rs.nlists, 0);
	/* the embedded pack is the file in the repository */
	{
		FILE *f = fopen("policies/rules/builtin.yaml", "rb");
		struct lw_buf b = {0};
		char tmp[4096];
		size_t k;

		assert_non_null(f);
		while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
			lw_buf_put(&b, tmp, k);
		fclose(f);
		assert_int_equal(b.len, lw_rules_builtin_size());
		assert_memory_equal(b.p, lw_rules_builtin_yaml, b.len);
		assert_int_equal(lw_rules_builtin_yaml[b.len], 0);
		lw_buf_free(&b);
	}
	/* docs/rules.md lists every built-in rule */
	{
		FILE *f = fopen("docs/rules.md", "rb");
		struct lw_buf doc = {0}, id = {0};
		char tmp[4096];
		size_t k;

		assert_non_null(f);
		while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
			lw_buf_put(&doc, tmp, k);
		fclose(f);
		lw_buf_putc(&doc, 0);
		for (size_t i = 0; i < e->rs.n; i++) {
			lw_buf_reset(&id);
			lw_buf_printf(&id, "| `%s` |", e->rs.rules[i].id);
			if (!strstr(doc.p, id.p))
				fail_msg("docs/rules.md does not list %s", e->rs.rules[i].id);
		}
		lw_buf_free(&doc);
		lw_buf_free(&id);
	}
	assert_string_equal(lw_severity_str(LW_SEV_CRITICAL), "critical");
	assert_string_equal(lw_action_str(LW_ACT_OFF), "off");
}

struct positive {
	const char *type;
	const char *tpl; /* the text; the value is the part in [[ ]] */
};

/* Realistic positives of every built-in type, in the formats the services
 * publish. Random parts are generated (see expand()). */
static const struct positive positives[] = {
	{"email", "Please reply to [[maria.garcia@northwind-traders.com]] today."},
	{"phone", "Call me on [[+44 20 7946 0958]] after 5."},
	{"phone", "His cell is [[(415) 555-2671]]."},
	{"phone", "Telefon: [[030 90182044]]"},
	{"credit_card", "card [[CARD]] exp 12/27"},
	{"iban", "Wire it to [[GB02 WEST 1234 5698 7659 99]], ref 19."},
	{"iban", "IBAN: [[DE84370400440532019977]]"},
	{"us_ssn", "applicant SSN [[536-22-1234]] on file"},
	{"us_ssn", "social security number: [[536221235]]"},
	{"aws_access_key", "key id [[AKIA{U16}]] for prod"},
	{"aws_secret_key", "aws_secret_access_key = [[{B40}]]"},
	{"github_token", "export GH_TOKEN=[[ghp_{A36}]]"},
	{"github_token", "token: [[github_pat_{A22}_{A59}]]"},
	{"gitlab_token", "CI uses [[glpat-{W20}]] now"},
	{"gitlab_token", "runner [[GR1348941{W20}]]"},
	{"openai_api_key", "OPENAI_API_KEY=[[sk-proj-{W74}T3BlbkFJ{W74}]]"},
	{"openai_api_key", "key [[sk-{A48}]] is old"},
	{"anthropic_api_key", "client = Anthropic(api_key=\"[[sk-ant-api03-{W93}AA]]\")"},
	{"stripe_secret_key", "stripe.api_key = '[[sk_live_{A24}]]'"},
	{"stripe_webhook_secret", "STRIPE_WEBHOOK_SECRET=[[whsec_{A32}]]"},
	{"slack_token", "bot [[xoxb-{D11}-{D12}-{A24}]]"},
	{"slack_webhook", "post to [[https://hooks.slack.com/services/T{C8}/B{C10}/{A24}]] ok"},
	{"google_api_key", "gemini key [[AIza{W35}]]"},
	{"google_oauth_secret", "client secret [[GOCSPX-{W28}]]"},
	{"google_oauth_token", "Authorization header had [[ya29.{W120}]]"},
	{"gcp_service_account",
	 "{\"type\": \"service_account\", [[\"private_key_id\": \"{H40}\"]]}"},
	{"private_key",
	 "[[-----BEGIN PRIVATE KEY-----\n{B64}\n{B64}\n{B20}==\n-----END PRIVATE KEY-----]]"},
	{"private_key",
	 "[[-----BEGIN OPENSSH PRIVATE KEY-----\n{B70}\n-----END OPENSSH PRIVATE KEY-----]]"},
	{"private_key", "[[-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{B64}\n{B64}\n=ab12\n-----END "
			"PGP PRIVATE KEY BLOCK-----]]"},
	{"jwt", "cookie session=[[JWT]]; path=/"},
	{"age_secret_key", "identity [[AGE-SECRET-KEY-1{G58}]]"},
	{"azure_storage_key", "DefaultEndpointsProtocol=https;AccountName=acmeprod;[[AccountKey={"
			      "B86}==]];EndpointSuffix=core.windows.net"},
	{"azure_ad_client_secret", "client_secret for the app: [[{L3}8Q~{W34}]]"},
	{"azure_openai_api_key", "AZURE_OPENAI_API_KEY=[[{H32}]]"},
	{"digitalocean_token", "doctl auth init -t [[dop_v1_{H64}]]"},
	{"heroku_api_key", "HEROKU key [[HRKU-AA{W58}]]"},
	{"heroku_api_key", "HEROKU_API_KEY=[[{H8}-{H4}-{H4}-{H4}-{H12}]]"},
	{"huggingface_token", "HF_TOKEN=[[hf_{A34}]]"},
	{"groq_api_key", "groq: [[gsk_{A52}]]"},
	{"xai_api_key", "XAI_API_KEY=[[xai-{A80}]]"},
	{"perplexity_api_key", "pplx key [[pplx-{A48}]]"},
	{"replicate_api_token", "REPLICATE_API_TOKEN=[[r8_{A37}]]"},
	{"openrouter_api_key", "openrouter [[sk-or-v1-{H64}]]"},
	{"deepseek_api_key", "deepseek [[sk-{H32}]]"},
	{"cohere_api_key", "COHERE_API_KEY=[[{A40}]]"},
	{"mistral_api_key", "MISTRAL_API_KEY: [[{A32}]]"},
	{"npm_token", "//registry.npmjs.org/:_authToken=[[npm_{A36}]]"},
	{"pypi_token", "password = [[pypi-AgEIcHlwaS5vcmc{W80}]]"},
	{"dockerhub_token", "docker login -p [[dckr_pat_{W27}]]"},
	{"databricks_token", "DATABRICKS_TOKEN=[[dapi{H32}]]"},
	{"atlassian_api_token", "jira [[ATATT3{W186}]]"},
	{"linear_api_key", "LINEAR_API_KEY=[[lin_api_{A40}]]"},
	{"notion_token", "NOTION_TOKEN=[[ntn_{D11}{A35}]]"},
	{"postman_api_key", "postman [[PMAK-{H24}-{H34}]]"},
	{"terraform_token", "token = \"[[{A14}.atlasv1.{W64}]]\""},
	{"vault_token", "VAULT_TOKEN=[[hvs.{W100}]]"},
	{"doppler_token", "DOPPLER_TOKEN=[[dp.pt.{A43}]]"},
	{"pulumi_token", "PULUMI_ACCESS_TOKEN=[[pul-{H40}]]"},
	{"onepassword_token", "OP_SERVICE_ACCOUNT_TOKEN=[[ops_eyJ{B260}]]"},
	{"square_token", "square [[sq0atp-{W22}]]"},
	{"braintree_token", "bt [[access_token$production${L16}${H32}]]"},
	{"shopify_token", "X-Shopify-Access-Token: [[shpat_{H32}]]"},
	{"discord_webhook", "hook [[https://discord.com/api/webhooks/{D18}/{W68}]]"},
	{"discord_bot_token", "discord bot token: [[MT{W24}.{W6}.{W32}]]"},
	{"telegram_bot_token", "bot [[{D9}:AA{W33}]]"},
	{"twilio_api_key", "twilio key [[SK{H32}]]"},
	{"twilio_auth_token", "TWILIO_AUTH_TOKEN=[[{H32}]]"},
	{"sendgrid_api_key", "SENDGRID_API_KEY=[[SG.{W22}.{W43}]]"},
	{"mailgun_api_key", "mailgun api key: [[key-{H32}]]"},
	{"mailchimp_api_key", "mailchimp [[{H32}-us14]]"},
	{"datadog_api_key", "DD_API_KEY=[[{H32}]]"},
	{"newrelic_api_key", "NEW_RELIC_API_KEY=[[NRAK-{C27}]]"},
	{"sentry_token", "SENTRY_AUTH_TOKEN=[[sntryu_{H64}]]"},
	{"sentry_dsn", "dsn=[[https://{H32}@o123456.ingest.us.sentry.io/4507123]]"},
	{"okta_api_token", "OKTA_API_TOKEN=[[00{W40}]]"},
	{"hubspot_token", "hubspot [[pat-na1-{H8}-{H4}-{H4}-{H4}-{H12}]]"},
	{"dropbox_token", "dropbox [[sl.{W140}]]"},
	{"grafana_token", "GRAFANA_TOKEN=[[glsa_{A32}_{H8}]]"},
	{"planetscale_token", "pscale [[pscale_tkn_{W43}]]"},
	{"connection_string",
	 "DATABASE_URL=[[postgres://app_user:{A16}@db.internal.acme.net]]:5432/orders"},
	{"url_credentials", "git clone [[https://deploy:{A16}@git.acme-corp.io]]/repo.git"},
	{"generic_secret", "\"client_secret\": \"[[{A20}]]\""},
	{"bearer_token", "curl -H 'Authorization: Bearer [[{W40}]]'"},
};

/* Builds the text of a positive; *vs, *ve: where its value is. */
static void build_positive(uint64_t *seed, const char *tpl, struct lw_buf *text, size_t *vs,
			   size_t *ve)
{
	struct lw_buf raw = {0};
	char card[24];
	char *card_at, *jwt_at;

	expand(seed, tpl, &raw);
	card_at = strstr(raw.p, "CARD");
	jwt_at = strstr(raw.p, "JWT");
	lw_buf_reset(text);
	for (size_t i = 0; i < raw.len; i++) {
		if (!strncmp(raw.p + i, "[[", 2)) {
			*vs = text->len;
			i++;
		} else if (!strncmp(raw.p + i, "]]", 2)) {
			*ve = text->len;
			i++;
		} else if (raw.p + i == card_at) {
			struct lw_buf body = {0};

			expand(seed, "45391488{D7}", &body);
			luhn_number(body.p, false, card);
			lw_buf_printf(text, "%.4s %.4s %.4s %.4s", card, card + 4, card + 8,
				      card + 12);
			lw_buf_free(&body);
			i += 3;
		} else if (raw.p + i == jwt_at) {
			struct lw_buf sig = {0};

			expand(seed, "{W43}", &sig);
			/* {"alg":"HS256","typ":"JWT"} . {"sub":"1234567890","name":"Test"} */
			lw_buf_printf(text,
				      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
				      "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IlRlc3QifQ.%s",
				      sig.p);
			lw_buf_free(&sig);
			i += 2;
		} else {
			lw_buf_putc(text, raw.p[i]);
		}
	}
	lw_buf_free(&raw);
}

static void test_builtin_positives(void **state)
{
	struct env *e = *state;
	uint64_t seed = 2024;
	struct lw_buf text = {0};
	size_t nonwhole = 0;

	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		const struct positive *p = &positives[i];
		const struct lw_finding *f;
		size_t vs = 0, ve = 0;
		char *value;

		/* several draws: a rule must not depend on a lucky value */
		for (int draw = 0; draw < 5; draw++) {
			build_positive(&seed, p->tpl, &text, &vs, &ve);
			run(e, text.p);
			f = by_type(e, p->type);
			if (!f || type_count(e, p->type) != 1) {
				dump_findings(e, p->type);
				fail_msg("%s not found once in: %s", p->type, text.p);
			}
			/* the value found is the one marked (the END line of a key
			 * block may be included) */
			if (f->first_off != vs || f->first_len != ve - vs) {
				nonwhole++;
				fprintf(stderr, "  %s: found %zu+%zu, marked %zu+%zu in %s\n",
					p->type, f->first_off, f->first_len, vs, ve - vs, text.p);
			}
			value = strndup(text.p + vs, ve - vs);
			/* the sample never shows the value's random part */
			if (strcmp(p->type, "private_key") != 0 &&
			    sample_leaks(f->sample, value, 0) && strncmp(value, f->sample, 5) != 0)
				fail_msg("%s sample '%s' shows too much of %s", p->type, f->sample,
					 value);
			assert_true(strlen(f->sample) < LW_SAMPLE_MAX);
			free(value);
		}
	}
	assert_int_equal(nonwhole, 0);
	lw_buf_free(&text);
}

static void test_sample_never_leaks(void **state)
{
	struct env *e = *state;
	uint64_t seed = 99;
	struct lw_buf text = {0};

	/* for every positive: no five consecutive bytes of the value's part
	 * after its public prefix are in the sample beyond the allowed tail */
	for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
		const struct lw_finding *f;
		size_t vs = 0, ve = 0, plen = 0;
		const struct lw_rule *r = NULL;
		char *value;

		build_positive(&seed, positives[i].tpl, &text, &vs, &ve);
		run(e, text.p);
		f = by_type(e, positives[i].type);
		assert_non_null(f);
		for (size_t k = 0; k < e->rs.n; k++)
			if (!strcmp(e->rs.rules[k].id, f->rule))
				r = &e->rs.rules[k];
		assert_non_null(r);
		value = strndup(text.p + vs, ve - vs);
		for (size_t k = 0; k < r->prefixes.n; k++)
			if (!strncmp(value, r->prefixes.v[k], strlen(r->prefixes.v[k])) &&
			    strlen(r->prefixes.v[k]) > plen)
				plen = strlen(r->prefixes.v[k]);
		if (r->mask == LW_MASK_SECRET) {
			size_t tail;

			if (plen > 24)
				plen = 24; /* a long public prefix is shown in part */
			tail = lw_mask_tail_len(strlen(value) - plen);
			/* the sample is prefix + **** + tail */
			assert_int_equal(strlen(f->sample), plen + 4 + tail);
			assert_memory_equal(f->sample, value, plen);
			assert_true(tail * 4 <= strlen(value) - plen);
		} else if (r->mask == LW_MASK_URI) {
			/* the scheme is shown, nothing after it */
			assert_false(sample_leaks(f->sample, value,
						  (size_t)(strstr(value, "://") - value)));
		} else if (r->mask != LW_MASK_PEM) {
			if (sample_leaks(f->sample, value, 0))
				fail_msg("%s: sample %s shows part of %s", r->id, f->sample, value);
		}
		free(value);
	}
	lw_buf_free(&text);
}

static void test_hard_negatives(void **state)
{
	struct env *e = *state;
	struct lw_buf text = {0};
	uint64_t seed = 5;
	char num[32];

	/* order and tracking numbers shaped like cards but failing Luhn */
	for (int i = 0; i < 40; i++) {
		struct lw_buf body = {0};

		expand(&seed, i % 2 ? "4{D14}" : "5{D14}", &body);
		luhn_number(body.p, true, num);
		lw_buf_printf(&text, "Order %s shipped; ref %.4s-%.4s-%.4s-%.4s.\n", num, num,
			      num + 4, num + 8, num + 12);
		lw_buf_free(&body);
	}
	lw_buf_puts(&text, LW_HARD_NEGATIVES_HEAD LW_HARD_NEGATIVES_PEM LW_HARD_NEGATIVES_TAIL);
	run(e, text.p);
	if (e->f.n) {
		dump_findings(e, "negative");
		fail_msg("%zu findings in hard negatives", e->f.n);
	}
	lw_buf_free(&text);
}

static void test_boundaries_and_overlaps(void **state)
{
	struct env *e = *state;
	struct lw_buf t = {0}, v = {0};
	uint64_t seed = 11;

	/* a key glued into a longer token is not that key */
	expand(&seed, "xghp_{A36} and ghp_{A36}x and {A4}AKIA{U16}", &v);
	run(e, v.p);
	assert_null(by_type(e, "github_token"));
	assert_null(by_type(e, "aws_access_key"));
	/* a password inside a connection string: the connection string only */
	expand(&seed, "postgres://app:{A16}@db.acme.io/x", &v);
	run(e, v.p);
	assert_int_equal(type_count(e, "connection_string"), 1);
	assert_int_equal(type_count(e, "email"), 0);
	/* two phone rules on one number: one phone */
	run(e, "+1 415-555-2671");
	assert_int_equal(type_count(e, "phone"), 1);
	assert_int_equal(by_type(e, "phone")->first_len, 15);
	/* a key assigned to a secret name: the key, not a generic secret */
	expand(&seed, "api_key = \"sk-proj-{W80}\"", &v);
	run(e, v.p);
	assert_int_equal(type_count(e, "openai_api_key"), 1);
	assert_null(by_type(e, "generic_secret"));
	/* a card number next to "phone": the card */
	run(e, "phone: 4539 1488 0343 6467");
	assert_int_equal(type_count(e, "credit_card"), 1);
	assert_null(by_type(e, "phone"));
	/* a JWT after Bearer: the JWT */
	lw_buf_reset(&t);
	lw_buf_puts(&t, "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
			"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IlRlc3QifQ.");
	expand(&seed, "{W43}", &v);
	lw_buf_puts(&t, v.p);
	run(e, t.p);
	assert_int_equal(type_count(e, "jwt"), 1);
	assert_null(by_type(e, "bearer_token"));
	lw_buf_free(&t);
	lw_buf_free(&v);
}

static void test_merging(void **state)
{
	struct env *e = *state;
	const struct lw_finding *f;
	const char *text = "from bob.stone@fabrikam-mail.com to ann.lee@contoso-health.org, "
			   "cc bob.stone@fabrikam-mail.com; card 4539 1488 0343 6467 and again "
			   "4539148803436467, then BOB.STONE@fabrikam-mail.com";

	run(e, text);
	f = by_type(e, "email");
	assert_non_null(f);
	assert_int_equal(f->count, 4);
	assert_int_equal(f->first_off, 5);
	assert_string_equal(f->sample, "b***@f***.com");
	f = by_type(e, "credit_card");
	assert_non_null(f);
	assert_int_equal(f->count, 2);
	/* one finding per rule, in order of first occurrence */
	assert_int_equal(e->f.n, 2);
	assert_true(e->f.v[0].first_off < e->f.v[1].first_off);
	/* a second scan starts from nothing */
	run(e, "nothing here");
	assert_int_equal(e->f.n, 0);
	run(e, "");
	assert_int_equal(e->f.n, 0);
}

static void test_fingerprints(void **state)
{
	struct env *e = *state;
	uint8_t fp1[32], fp2[32];

	run(e, "mail Bob.Stone@Fabrikam-Mail.com");
	assert_false(e->f.v[0].has_fp); /* no key, no fingerprint */
	lw_classifier_set_key(e->c, "key-one", 7);
	run(e, "mail Bob.Stone@Fabrikam-Mail.com");
	assert_true(e->f.v[0].has_fp);
	memcpy(fp1, e->f.v[0].fp, 32);
	/* normalised: the same address in other case, the same fingerprint */
	run(e, "write to bob.stone@fabrikam-mail.com now");
	assert_memory_equal(e->f.v[0].fp, fp1, 32);
	run(e, "write to rob.stone@fabrikam-mail.com now");
	assert_memory_not_equal(e->f.v[0].fp, fp1, 32);
	lw_classifier_set_key(e->c, "key-two", 7);
	run(e, "mail Bob.Stone@Fabrikam-Mail.com");
	memcpy(fp2, e->f.v[0].fp, 32);
	assert_memory_not_equal(fp1, fp2, 32);
	lw_classifier_set_key(e->c, NULL, 0);
	run(e, "mail Bob.Stone@Fabrikam-Mail.com");
	assert_false(e->f.v[0].has_fp);
}

/* ---- overrides, custom rules, lists --------------------------------------------------- */

static int setup_override(void **state)
{
	*state = env_new(FIX "override");
	return 0;
}

static void test_overrides_and_custom(void **state)
{
	struct env *e = *state;
	const struct lw_finding *f;
	struct lw_buf v = {0};
	uint64_t seed = 77;
	size_t nb = 0;

	for (size_t i = 0; i < e->rs.n; i++)
		nb += e->rs.rules[i].builtin;
	assert_true(nb >= 80);
	/* email: only action, severity and the extra allowlist changed */
	run(e, "from maria.garcia@northwind-traders.com and press@northwind-traders.com");
	f = by_type(e, "email");
	assert_non_null(f);
	assert_int_equal(f->count, 1);
	assert_int_equal(f->action, LW_ACT_BLOCK);
	assert_int_equal(f->severity, LW_SEV_HIGH);
	assert_string_equal(f->sample, "m***@n***.com");
	/* jwt disabled */
	run(e, "t eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
	       "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
	assert_null(by_type(e, "jwt"));
	/* phone_context words replaced: "fon" now, "telephone" no longer */
	run(e, "fon: 030 90182044");
	assert_non_null(by_rule(e, "phone_context"));
	run(e, "telephone: 030 90182044");
	assert_null(by_type(e, "phone"));
	/* required context */
	run(e, "employee: E-123456");
	assert_non_null(by_type(e, "employee_id"));
	assert_string_equal(by_type(e, "employee_id")->sample, "E***");
	run(e, "E-123456 was mentioned, employees later");
	assert_null(by_type(e, "employee_id"));
	/* min_count */
	run(e, "Project Nightjar starts Monday");
	assert_null(by_type(e, "codename"));
	run(e, "Project Nightjar starts Monday; project-kestrel follows");
	f = by_type(e, "codename");
	assert_non_null(f);
	assert_int_equal(f->count, 2);
	assert_string_equal(f->sample, "[16 chars]");
	/* context that raises the severity */
	run(e, "see ORD-12345678");
	assert_int_equal(by_type(e, "order_ref")->severity, LW_SEV_LOW);
	run(e, "refund for ORD-12345678 and ORD-87654321");
	assert_int_equal(by_type(e, "order_ref")->severity, LW_SEV_MEDIUM);
	assert_int_equal(by_type(e, "order_ref")->count, 2);
	/* assignment context */
	expand(&seed, "acme_key = '{A24}'", &v);
	run(e, v.p);
	assert_non_null(by_type(e, "acme_api_key"));
	expand(&seed, "the acme_key is {A24}", &v);
	run(e, v.p);
	assert_null(by_type(e, "acme_api_key"));
	/* a user rule on the built-in digit trigger */
	run(e, "balance of ACCT 8812345 is low");
	assert_non_null(by_type(e, "local_account"));
	run(e, "ACCT 881234 is too short");
	assert_null(by_type(e, "local_account"));
	/* a user rule with a literal trigger: the value around it */
	run(e, "invoices INV-2024-000123-B and INV-2024-000124, not XINV-2024-000125");
	f = by_type(e, "invoice_number");
	assert_non_null(f);
	assert_int_equal(f->count, 2);
	assert_int_equal(f->first_len, strlen("INV-2024-000123-B"));
	lw_buf_free(&v);
}

static void test_lists(void **state)
{
	struct env *e = *state;
	const struct lw_finding *f;

	assert_int_equal(e->rs.nlists, 8);
	/* the list files hold no raw values for digest lists */
	run(e, "leak LW-TEST-CANARY-0001 now; xLW-TEST-CANARY-0001 and LW-TEST-CANARY-00012 "
	       "are not it");
	f = by_type(e, "canary");
	assert_non_null(f);
	assert_int_equal(f->count, 1);
	assert_true(f->is_list);
	assert_string_equal(f->rule, "canary_exact");
	assert_int_equal(f->action, LW_ACT_BLOCK);
	assert_int_equal(f->first_off, 5);
	run(e, "the Secret Sauce v2 recipe, not the secret sauce v2");
	assert_int_equal(type_count(e, "canary"), 1);
	run(e, "codename BLUEHERON and blueheron, also operation tern");
	assert_int_equal(type_count(e, "codeword"), 3);
	run(e, "write carol.diaz@FABRIKAM-mail.com or xcarol.diaz@fabrikam-mail.com");
	assert_int_equal(type_count(e, "watched_email"), 1);
	run(e, "customer 7731 0042 19, also 773100-4219, not 77310042190");
	assert_int_equal(type_count(e, "customer_number"), 2);
	run(e, "Alice.Wong@Contoso-Health.org asked");
	f = by_type(e, "vip");
	assert_non_null(f);
	assert_string_equal(f->sample, "A***@C***.org");
	run(e, "accounts 4929 1234 0099 and 55-0173-2210; 4929123400990 is another");
	assert_int_equal(type_count(e, "blocked_account"), 2);
	run(e, "the word ZANZIBAR7 but not zanzibar78 or xzanzibar7");
	assert_int_equal(type_count(e, "secret_word"), 1);
	run(e, "never-reported-value");
	assert_int_equal(e->f.n, 0);
}

static void test_repo_policies(void **state)
{
	struct env *b = *state, *e = env_new("policies");

	/* the repository's policies/ ships the built-in pack again: a no-op */
	assert_int_equal(e->rs.n, b->rs.n);
	for (size_t i = 0; i < e->rs.n; i++) {
		const struct lw_rule *p = &e->rs.rules[i], *q = &b->rs.rules[i];

		assert_string_equal(p->id, q->id);
		assert_string_equal(p->type, q->type);
		assert_string_equal(p->pattern, q->pattern);
		assert_int_equal(p->action, q->action);
		assert_int_equal(p->severity, q->severity);
		assert_int_equal(p->priority, q->priority);
		assert_int_equal(p->validators, q->validators);
		assert_int_equal(p->allow.n, q->allow.n);
		assert_int_equal(p->context.n, q->context.n);
		assert_int_equal(p->prefixes.n, q->prefixes.n);
		assert_true(p->min_entropy == q->min_entropy);
		assert_int_equal(p->min_digits, q->min_digits);
		assert_int_equal(p->margin, q->margin);
		assert_int_equal(p->mask, q->mask);
	}
	/* and its demo lists work */
	run(e, "found LW-CANARY-7f3a9c21d04e in the prompt, and vip.demo@LeakWatch.invalid");
	assert_int_equal(type_count(e, "canary"), 1);
	assert_int_equal(type_count(e, "vip_contact"), 1);
	env_free(e);
}

/* ---- loader errors -------------------------------------------------------------------- */

static void test_loader_errors(void **state)
{
	static const char *const expect[] = {
		FIX
		"errors/rules/10-bad.yaml:4: pattern: invalid pattern: Missing close parenthesis",
		FIX "errors/rules/10-bad.yaml:7: rule: unknown key 'colour'",
		FIX "errors/rules/10-bad.yaml:10: min_entropy: expected a number from 0 to 8, got "
		    "'high'",
		FIX "errors/rules/10-bad.yaml:11: priority: expected a whole number from 0 to 100, "
		    "got '500'",
		FIX "errors/rules/10-bad.yaml:12: placeholders: expected true or false",
		FIX "errors/rules/10-bad.yaml:15: validate: unknown validator 'astrology'",
		FIX "errors/rules/10-bad.yaml:16: rule 'no_pattern': missing 'pattern'",
		FIX "errors/rules/10-bad.yaml:18: id: 'Bad_Id!' must be",
		FIX
		"errors/rules/10-bad.yaml:21: pattern: invalid pattern: can match the empty string",
		FIX "errors/rules/10-bad.yaml:22: rule 'lengths': min_length 20 is larger than "
		    "max_length 10",
		FIX "errors/rules/10-bad.yaml:28: severity: unknown value 'extreme'",
		FIX "errors/rules/10-bad.yaml:29: action: unknown value 'ignore'",
		FIX "errors/rules/10-bad.yaml:30: mask: unknown value 'partial'",
		FIX "errors/rules/10-bad.yaml:34: context: 'words' is required",
		FIX "errors/rules/10-bad.yaml:36: pattern: Pattern is too large",
		FIX "errors/rules/10-bad.yaml:39: trigger: unknown built-in trigger '@letters'",
		FIX "errors/rules/10-bad.yaml:40: rule 'min_digits_alone': min_digits and margin "
		    "only apply",
		FIX "errors/rules/10-bad.yaml:45: allow_regex: invalid pattern",
		FIX "errors/rules/20-dup.yaml:4: id: duplicate id 'dup_rule' (first defined at " FIX
		    "errors/rules/20-dup.yaml:2)",
		FIX "errors/rules/20-dup.yaml:8: id: duplicate id 'email' (first defined at " FIX
		    "errors/rules/20-dup.yaml:6)",
		FIX "errors/rules/30-syntax.yaml:6: YAML syntax error",
		FIX "errors/rules/40-shape.yaml:1: rules: expected a list",
		FIX "errors/rules/40-shape.yaml:3: rule file: unknown key 'lists'",
		FIX "errors/lists/10-lists.yaml:2: list 'both': give exactly one of 'values' and "
		    "'sha256'",
		FIX "errors/lists/10-lists.yaml:9: sha256: entry 2 is not 64 hex digits",
		FIX "errors/lists/10-lists.yaml:10: sha256: entry 3 is not 64 hex digits",
		FIX "errors/lists/10-lists.yaml:12: list 'digest_without_token': sha256 lists need "
		    "'token'",
		FIX "errors/lists/10-lists.yaml:14: values: entry 1: 3 bytes",
		FIX
		"errors/lists/10-lists.yaml:15: id: duplicate id 'dup_rule' (first defined at " FIX
		"errors/rules/20-dup.yaml:2)",
		FIX "errors/lists/10-lists.yaml:17: id: 'jwt' is the id of a built-in rule",
		FIX
		"errors/lists/10-lists.yaml:21: list 'bad_norm': normalize lower does not go with "
		"token digits",
		FIX "errors/lists/10-lists.yaml:25: values: entry 1 is not an email address",
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
	/* never the value of a list entry in a message */
	for (size_t k = 0; k < d.n; k++) {
		assert_null(strstr(d.msgs[k], "not-a-digest"));
		assert_null(strstr(d.msgs[k], "no-at-sign-here"));
	}
	lw_rules_free(&rs);
	lw_diag_free(&d);
	/* a directory that is not there, or not a directory */
	n = lw_rules_load(&rs, FIX "no-such-dir", &d);
	assert_int_equal(n, 1);
	assert_non_null(strstr(d.msgs[0], "cannot open directory"));
	lw_rules_free(&rs);
	lw_diag_free(&d);
	n = lw_rules_load(&rs, FIX "errors/lists/10-lists.yaml", &d);
	assert_int_equal(n, 1);
	assert_non_null(strstr(d.msgs[0], "not a directory"));
	lw_rules_free(&rs);
	lw_diag_free(&d);
}

struct tmpdir {
	char path[64];
};

static void tmp_write(struct tmpdir *t, const char *name, const char *text)
{
	struct lw_buf p = {0};
	FILE *f;

	lw_buf_printf(&p, "%s/%s", t->path, name);
	f = fopen(p.p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	lw_buf_free(&p);
}

static void test_loader_edge_cases(void **state)
{
	struct tmpdir t;
	struct lw_ruleset rs = {0};
	struct lw_diag d = {0};
	struct lw_buf p = {0};
	int n;

	(void)state;
	snprintf(t.path, sizeof(t.path), "/tmp/lw-test-classify.XXXXXX");
	assert_non_null(mkdtemp(t.path));
	lw_buf_printf(&p, "%s/rules", t.path);
	assert_int_equal(mkdir(p.p, 0700), 0);
	/* empty documents, comments only, dot files and other extensions are fine */
	tmp_write(&t, "rules/00-empty.yaml", "# nothing\n---\n");
	tmp_write(&t, "rules/.#01-lock.yaml", "this is not yaml: [\n");
	tmp_write(&t, "rules/02-notes.txt", "ignored\n");
	tmp_write(&t, "rules/03-null.yml", "rules:\n");
	n = lw_rules_load(&rs, t.path, &d);
	print_diag(&d);
	assert_int_equal(n, 0);
	lw_rules_free(&rs);
	/* a rule that overrides a pattern must compile in every needed form */
	tmp_write(&t, "rules/04-bad.yaml",
		  "rules:\n  - id: openai_api_key\n"
		  "    pattern: '\\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,300}'\n");
	n = lw_rules_load(&rs, t.path, &d);
	assert_int_equal(n, 1);
	assert_non_null(strstr(d.msgs[0], "04-bad.yaml:3: pattern:"));
	lw_rules_free(&rs);
	lw_diag_free(&d);
	unlink((lw_buf_reset(&p), lw_buf_printf(&p, "%s/rules/04-bad.yaml", t.path), p.p));
	/* caseless flag applies to the override's own check */
	tmp_write(&t, "rules/05-case.yaml",
		  "rules:\n  - id: shout\n    pattern: 'HELLO-[0-9]{6}'\n    caseless: true\n"
		  "    placeholders: false\n");
	n = lw_rules_load(&rs, t.path, &d);
	assert_int_equal(n, 0);
	{
		struct lw_classifier *c = lw_classifier_new(&rs, &d);
		struct lw_classify_ctx *x = lw_classify_ctx_new(c);
		struct lw_findings f = {0};

		assert_int_equal(lw_classify(x, "say hello-123456", 16, &f), 1);
		assert_string_equal(f.v[0].type, "shout");
		lw_findings_free(&f);
		lw_classify_ctx_free(x);
		lw_classifier_free(c);
	}
	lw_rules_free(&rs);
	lw_diag_free(&d);
	/* cleanup */
	{
		static const char *const names[] = {"rules/00-empty.yaml", "rules/.#01-lock.yaml",
						    "rules/02-notes.txt", "rules/03-null.yml",
						    "rules/05-case.yaml"};

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			lw_buf_reset(&p);
			lw_buf_printf(&p, "%s/%s", t.path, names[i]);
			assert_int_equal(unlink(p.p), 0);
		}
		lw_buf_reset(&p);
		lw_buf_printf(&p, "%s/rules", t.path);
		assert_int_equal(rmdir(p.p), 0);
		assert_int_equal(rmdir(t.path), 0);
	}
	lw_buf_free(&p);
}

static void test_classifier_edge_cases(void **state)
{
	struct lw_rule bad = {.id = "bad",
			      .type = "bad",
			      .pattern = "abc(",
			      .file = "x.yaml",
			      .line = 3,
			      .pfile = "x.yaml",
			      .pline = 4,
			      .min_count = 1};
	struct lw_ruleset rs = {.rules = &bad, .n = 1};
	struct lw_ruleset none = {0};
	struct lw_diag d = {0};
	struct lw_classifier *c;
	struct lw_classify_ctx *x;
	struct lw_findings f = {0};

	(void)state;
	/* a pattern that did not go through the loader: FILE:LINE of the rule */
	assert_null(lw_classifier_new(&rs, &d));
	assert_int_equal(d.n, 1);
	assert_true(!strncmp(d.msgs[0], "x.yaml:4: rule 'bad': pattern:", 30));
	lw_diag_free(&d);
	/* nothing to look for */
	c = lw_classifier_new(&none, &d);
	assert_non_null(c);
	x = lw_classify_ctx_new(c);
	assert_non_null(x);
	assert_int_equal(lw_classify(x, "a@b.co 4539148803436467", 23, &f), 0);
	assert_int_equal(lw_classifier_expressions(c), 0);
	lw_classify_ctx_free(x);
	lw_classifier_free(c);
	lw_findings_free(&f);
}

struct ydoc_count {
	int docs;
};

static void count_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud)
{
	(void)y;
	(void)root;
	((struct ydoc_count *)ud)->docs++;
}

static void test_ydoc_buffer(void **state)
{
	static const char good[] = "a: 1\n---\nb: 2\n---\n";
	static const char bad[] = "a: 1\n---\nb: [1,\n  2\nc: 3\n";
	struct ydoc_count k = {0};
	struct lw_diag d = {0};

	(void)state;
	assert_int_equal(lw_ydoc_each_buffer("mem", good, strlen(good), &d, count_doc, &k), 0);
	assert_int_equal(k.docs, 2);
	assert_int_equal(d.n, 0);
	k.docs = 0;
	assert_int_equal(lw_ydoc_each_buffer("mem", bad, strlen(bad), &d, count_doc, &k), -1);
	assert_int_equal(k.docs, 1);
	assert_int_equal(d.n, 1);
	assert_true(!strncmp(d.msgs[0], "mem:5: YAML syntax error", 24));
	lw_diag_free(&d);
}

/* ---- large and hostile inputs -------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_large_input(void **state)
{
	struct env *e = *state;
	static const char filler[] =
		"The quarterly review covered shipping delays, refund handling and the new "
		"support macros. Ticket 48213 was closed at 2024-05-01T12:30:00Z after the "
		"customer confirmed delivery of order 5512 (3 items, $129.50). ";
	struct lw_buf t = {0};
	size_t emails = 0, cards = 0;
	char num[32];
	uint64_t seed = 8;
	double t0;

	while (t.len < (10u << 20)) {
		lw_buf_puts(&t, filler);
		lw_buf_printf(&t, "Contact user%zu@mail-host%zu.net for details. ", emails,
			      emails % 7);
		emails++;
		if (emails % 50 == 0) {
			struct lw_buf body = {0};

			expand(&seed, "4539{D11}", &body);
			luhn_number(body.p, false, num);
			lw_buf_printf(&t, "Card %s on file. ", num);
			cards++;
			lw_buf_free(&body);
		}
	}
	t0 = now();
	run(e, t.p);
	fprintf(stderr, "  10 MiB: %.0f ms, %zu findings\n", (now() - t0) * 1e3, e->f.n);
	assert_int_equal(type_count(e, "email"), emails);
	assert_int_equal(type_count(e, "credit_card"), cards);
	assert_int_equal(e->f.n, 2);
	assert_int_equal(e->f.dropped, 0);
	lw_buf_free(&t);
}

static void test_hostile_inputs(void **state)
{
	struct env *e = *state;
	struct lw_buf t = {0};
	double t0;
	int n;

	/* 4 MiB of one long digit run with separators */
	while (t.len < (4u << 20))
		lw_buf_puts(&t, "4539 1488 0343 6467 ");
	t0 = now();
	n = lw_classify(e->x, t.p, t.len, &e->f);
	fprintf(stderr, "  4 MiB digit run: %.0f ms, %d findings, %llu dropped\n",
		(now() - t0) * 1e3, n, (unsigned long long)e->f.dropped);
	assert_true(n >= 0);
	/* every card that was seen is counted; anything past the bound is
	 * reported as dropped, never silently lost */
	assert_true(type_count(e, "credit_card") + e->f.dropped > 0);
	/* 1 MiB of one token after a key prefix: no finding, no hang */
	lw_buf_reset(&t);
	lw_buf_puts(&t, "sk-proj-");
	while (t.len < (1u << 20))
		lw_buf_puts(&t, "Ab3dE5fG7h");
	t0 = now();
	assert_true(lw_classify(e->x, t.p, t.len, &e->f) >= 0);
	assert_null(by_type(e, "openai_api_key"));
	/* 1 MiB of '@' soup and of "password=" */
	lw_buf_reset(&t);
	while (t.len < (1u << 20))
		lw_buf_puts(&t, "a@b.co@");
	assert_true(lw_classify(e->x, t.p, t.len, &e->f) >= 0);
	lw_buf_reset(&t);
	while (t.len < (1u << 20))
		lw_buf_puts(&t, "password=");
	assert_true(lw_classify(e->x, t.p, t.len, &e->f) >= 0);
	/* binary noise */
	lw_buf_reset(&t);
	{
		uint64_t seed = 1;

		while (t.len < (1u << 20))
			lw_buf_putc(&t, (char)(splitmix(&seed) & 0xff));
	}
	assert_true(lw_classify(e->x, t.p, t.len, &e->f) >= 0);
	fprintf(stderr, "  hostile 1 MiB inputs: %.0f ms\n", (now() - t0) * 1e3);
	/* more values than a scan keeps: what does not fit is counted */
	lw_buf_reset(&t);
	{
		size_t total = 0;

		while (t.len < (6u << 20)) {
			lw_buf_puts(&t, "a@b.io ");
			total++;
		}
		assert_true(lw_classify(e->x, t.p, t.len, &e->f) >= 0);
		assert_true(e->f.dropped > 0);
		assert_int_equal(type_count(e, "email") + e->f.dropped, total);
	}
	lw_buf_free(&t);
}

/* ---- threads, stats, throughput -------------------------------------------------------- */

struct thread_arg {
	const struct lw_classifier *c;
	const char *text;
	size_t count;
};

static void *classify_thread(void *p)
{
	struct thread_arg *a = p;
	struct lw_classify_ctx *x = lw_classify_ctx_new(a->c);
	struct lw_findings f = {0};

	for (int i = 0; i < 50; i++) {
		if (lw_classify(x, a->text, strlen(a->text), &f) < 0)
			break;
		a->count += f.n;
	}
	lw_findings_free(&f);
	lw_classify_ctx_free(x);
	return NULL;
}

static void test_threads_and_stats(void **state)
{
	struct env *e = *state;
	static const char text[] = "mail bob.stone@fabrikam-mail.com, card 4539 1488 0343 6467, "
				   "order 1234567812345678, key AKIAIOSFODNN7EXAMPLE";
	struct thread_arg a = {e->c, text, 0}, b = {e->c, text, 0};
	pthread_t ta, tb;
	struct lw_classify_stats st;

	assert_int_equal(pthread_create(&ta, NULL, classify_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, classify_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.count, 100);
	assert_int_equal(b.count, 100);
	{
		struct lw_classify_ctx *x = lw_classify_ctx_new(e->c);
		struct lw_findings f = {0};

		assert_int_equal(lw_classify(x, text, strlen(text), &f), 2);
		st = lw_classify_ctx_stats(x);
		assert_int_equal(st.scans, 1);
		assert_int_equal(st.bytes, strlen(text));
		assert_int_equal(st.validated, 2);
		assert_true(st.rej_allowlist >= 1); /* the documentation key */
		assert_true(st.rejected == st.rej_length + st.rej_boundary + st.rej_context +
						   st.rej_allowlist + st.rej_placeholder +
						   st.rej_entropy + st.rej_validator);
		assert_true(st.candidates >= st.validated + st.rejected);
		lw_findings_free(&f);
		lw_classify_ctx_free(x);
	}
}

/* A 16 KiB request body of the kind the agent sees: chat messages with
 * prose, numbers, ids, timestamps, code and a base64 log line. */
static void json_body(struct lw_buf *b, uint64_t *seed)
{
	static const char *const words[] = {
		"the",	    "customer", "order",   "shipment", "invoice", "refund", "account",
		"payment",  "deliver",	"support", "ticket",   "please",  "thanks", "model",
		"function", "return",	"value",   "error",    "request", "server", "cache",
		"config",   "deploy",	"and",	   "of",       "to",	  "in",	    "with",
	};
	struct lw_buf v = {0};

	lw_buf_puts(b, "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"system\", \"content\": "
		       "\"You are a helpful assistant for ACME support.\"}");
	while (b->len < 16000) {
		lw_buf_puts(b, ", {\"role\": \"user\", \"content\": \"");
		for (int s = 0; s < 6; s++) {
			for (int w = 0; w < 12; w++)
				lw_buf_printf(b, "%s ", words[splitmix(seed) % 28]);
			switch (splitmix(seed) % 8) {
			case 0:
				expand(seed, "order #{D9}. ", &v);
				break;
			case 1:
				expand(seed, "at 2024-0{D1}-1{D1}T1{D1}:3{D1}:00Z. ", &v);
				break;
			case 2:
				expand(seed, "id {H8}-{H4}-{H4}-{H4}-{H12}. ", &v);
				break;
			case 3:
				expand(seed, "commit {H40}. ", &v);
				break;
			case 4:
				expand(seed, "ts={D13}. ", &v);
				break;
			case 5:
				expand(seed, "costs ${D3}.{D2}. ", &v);
				break;
			default:
				expand(seed, "version 3.{D1}.{D2}. ", &v);
				break;
			}
			lw_buf_puts(b, v.p);
		}
		if (splitmix(seed) % 5 == 0)
			lw_buf_puts(
				b,
				"def handler(event):\\n    items = [x for x in event['Records']]\\n"
				"    return {'statusCode': 200, 'count': len(items)}\\n");
		if (splitmix(seed) % 10 == 0) {
			expand(seed, "log: {B300} ", &v);
			lw_buf_puts(b, v.p);
		}
		lw_buf_puts(b, "\"}");
	}
	lw_buf_puts(b, "], \"temperature\": 0.2}");
	lw_buf_free(&v);
}

static void test_throughput(void **state)
{
	struct env *e = *state;
	struct lw_buf body = {0};
	uint64_t seed = 1;
	double best = 1e9;
	const int iters = 200;

	json_body(&body, &seed);
	for (int r = 0; r < 5; r++) {
		double t0 = now();

		for (int i = 0; i < iters; i++)
			assert_true(lw_classify(e->x, body.p, body.len, &e->f) >= 0);
		if (now() - t0 < best)
			best = now() - t0;
	}
	fprintf(stderr, "  %zu-byte JSON body: %.0f MB/s (%zu findings)\n", body.len,
		(double)body.len * iters / best / 1e6, e->f.n);
	/* a loose bound that still catches a quadratic slip, even under
	 * sanitizers */
	assert_true((double)body.len * iters / best > 5e6);
	lw_buf_free(&body);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_luhn),
		cmocka_unit_test(test_credit_card),
		cmocka_unit_test(test_iban),
		cmocka_unit_test(test_us_ssn),
		cmocka_unit_test(test_jwt),
		cmocka_unit_test(test_phone),
		cmocka_unit_test(test_email),
		cmocka_unit_test(test_url_password),
		cmocka_unit_test(test_entropy_placeholders),
		cmocka_unit_test(test_private_key_validator),
		cmocka_unit_test(test_normalize_digest),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_digit_runs),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_ydoc_buffer),
		cmocka_unit_test(test_loader_errors),
		cmocka_unit_test(test_loader_edge_cases),
		cmocka_unit_test(test_classifier_edge_cases),
	};
	const struct CMUnitTest override[] = {
		cmocka_unit_test(test_overrides_and_custom),
		cmocka_unit_test(test_lists),
	};
	const struct CMUnitTest builtin[] = {
		cmocka_unit_test(test_builtin_pack),
		cmocka_unit_test(test_builtin_positives),
		cmocka_unit_test(test_sample_never_leaks),
		cmocka_unit_test(test_hard_negatives),
		cmocka_unit_test(test_boundaries_and_overlaps),
		cmocka_unit_test(test_merging),
		cmocka_unit_test(test_fingerprints),
		cmocka_unit_test(test_repo_policies),
		cmocka_unit_test(test_large_input),
		cmocka_unit_test(test_hostile_inputs),
		cmocka_unit_test(test_threads_and_stats),
		cmocka_unit_test(test_throughput),
	};
	int rc = cmocka_run_group_tests_name("classify", pure, NULL, NULL);

	rc |= cmocka_run_group_tests_name("classify-override", override, setup_override,
					  teardown_env);
	return rc | cmocka_run_group_tests_name("classify-builtin", builtin, setup_builtin,
						teardown_env);
}
