/* leakwatch policy: validate and show a policy directory without loading
 * anything into the kernel, so CI can gate policy changes. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmds.h"
#include "classify/rules.h"
#include "act/alert.h"
#include "cmd/config.h"
#include "policy/policy.h"
#include "util/buf.h"

static void usage(FILE *f)
{
	fputs("usage: leakwatch policy check DIR\n"
	      "       leakwatch policy show DIR\n"
	      "       leakwatch policy digest NORMALIZE < values\n"
	      "\n"
	      "  check      validate the provider catalog (DIR/providers.yaml), every\n"
	      "             policy file (DIR/*.yaml, DIR/*.yml), the rules (DIR/rules/)\n"
	      "             and exact-value lists (DIR/lists/); prints each error on\n"
	      "             stderr as FILE:LINE: reason, or a summary on stdout if none\n"
	      "  show       print the effective policies in the order they are tried:\n"
	      "             selectors, mode and allowed providers; then which block\n"
	      "             rules the kernel decides before the write, and why the\n"
	      "             others are left to the agent\n"
	      "  digest     the sha256: entry of an exact-value list for each line of\n"
	      "             standard input, normalised as NORMALIZE (none, lower, digits,\n"
	      "             email, compact; see docs/rules.md). Values are read from\n"
	      "             stdin so they stay out of shell history and ps\n"
	      "  -h, --help this help\n"
	      "\n"
	      "docs/policy.md describes the format.\n"
	      "Exit codes: 0 valid, 1 errors, 2 usage error.\n",
	      f);
}

static void print_line(const char *line, void *ud)
{
	(void)ud;
	printf("%s\n", line);
}

static void print_allowed(const struct lw_policy_set *set, const struct lw_policy *p)
{
	const struct lw_catalog *cat = &set->cat;
	int n = 0;

	if (p->allow_all) {
		printf("all (%zu providers)\n", cat->n);
		return;
	}
	for (size_t i = 0; i < cat->n; i++)
		if (lw_policy_allows(p, (int)i))
			printf("%s%s", n++ ? ", " : "", cat->providers[i].id);
	puts(n ? "" : "none");
}

static void print_policy(const struct lw_policy_set *set, const struct lw_policy *p,
			 struct lw_buf *sel)
{
	if (p->file)
		printf("%s (%s:%d)\n", p->name, p->file, p->line);
	else
		printf("%s (built-in)\n", p->name);
	lw_buf_reset(sel);
	if (p->cgroup)
		lw_buf_printf(sel, " cgroup=%s", p->cgroup);
	if (p->unit)
		lw_buf_printf(sel, " unit=%s", p->unit);
	if (p->exe)
		lw_buf_printf(sel, " exe=%s", p->exe);
	if (p->has_uid)
		lw_buf_printf(sel, " uid=%u", p->uid);
	printf("  match:  %s", p->id == 0 ? "every process no policy above selects"
			       : sel->len ? sel->p + 1
					  : "");
	printf("\n  mode:   %s\n  allow:  ", p->mode == LW_MODE_ENFORCE ? "enforce" : "monitor");
	print_allowed(set, p);
}

/* One digest per input line, so a list of customer values can be turned
 * into a list file that holds no PII. */
static int digest(const char *norm_name)
{
	enum lw_norm norm = LW_NORM__N;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	for (int i = 0; i < LW_NORM__N; i++)
		if (!strcmp(lw_norm_name((enum lw_norm)i), norm_name))
			norm = (enum lw_norm)i;
	if (norm == LW_NORM__N) {
		fprintf(stderr, "leakwatch policy digest: unknown normalisation '%s'\n", norm_name);
		return 2;
	}
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		uint8_t dg[32];
		char hex[LW_FP_HEX_LEN];

		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (!n)
			continue;
		if (!lw_list_digest(norm, line, (size_t)n, dg)) {
			fprintf(stderr, "leakwatch policy digest: a line has nothing left after "
					"normalisation\n");
			rc = 1;
			continue;
		}
		lw_fp_hex(dg, hex);
		printf("%s\n", hex);
	}
	free(line);
	return rc;
}

int lw_cmd_policy(int argc, char **argv)
{
	const char *sub, *dir = NULL;
	struct lw_config *cfg;
	struct lw_policy_set *set;
	struct lw_diag d = {0};
	struct lw_buf sel = {0};
	bool opts_done = false;
	int npos = 0, rc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(sub, "digest")) {
		if (argc != 3) {
			usage(stderr);
			return 2;
		}
		return digest(argv[2]);
	}
	if (strcmp(sub, "check") && strcmp(sub, "show")) {
		fprintf(stderr, "leakwatch policy: unknown subcommand '%s'\n", sub);
		usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			usage(stdout);
			return 0;
		}
		if (!opts_done && !strcmp(a, "--")) {
			opts_done = true;
			continue;
		}
		if (!opts_done && a[0] == '-' && a[1]) {
			fprintf(stderr, "leakwatch policy: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
		dir = a;
		npos++;
	}
	if (npos != 1) {
		fprintf(stderr, "leakwatch policy %s: expected one policy directory\n", sub);
		usage(stderr);
		return 2;
	}

	cfg = lw_config_load(dir, &d);
	for (size_t i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.msgs[i]);
	rc = cfg && !d.n ? 0 : 1;
	if (!rc && !strcmp(sub, "show")) {
		set = &cfg->set;
		/* in the order lw_policy_select tries them: the default last */
		for (size_t i = 1; i < set->n; i++)
			print_policy(set, &set->policies[i], &sel);
		print_policy(set, &set->policies[0], &sel);
		/* which block rules are decided before the write, and why not */
		lw_kmatch_report(&cfg->km, print_line, NULL);
	}
	/* errors alone on stderr: every line there is FILE:LINE: reason */
	if (!rc)
		printf("%zu policies, %zu providers, %zu rules, %zu lists: ok\n", cfg->set.n,
		       cfg->set.cat.n, cfg->rules.n, cfg->rules.nlists);
	lw_buf_free(&sel);
	lw_diag_free(&d);
	lw_config_free(cfg);
	return rc;
}
