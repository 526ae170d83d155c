/* leakwatch policy: validate and show a policy directory without loading
 * anything into the kernel, so CI can gate policy changes. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmds.h"
#include "policy/policy.h"
#include "util/buf.h"

static void usage(FILE *f)
{
	fputs("usage: leakwatch policy check DIR\n"
	      "       leakwatch policy show DIR\n"
	      "\n"
	      "  check      validate the provider catalog (DIR/providers.yaml) and every\n"
	      "             policy file (DIR/*.yaml, DIR/*.yml); prints each error on\n"
	      "             stderr as FILE:LINE: reason, or a summary on stdout if none\n"
	      "  show       print the effective policies in the order they are tried:\n"
	      "             selectors, mode and allowed providers\n"
	      "  -h, --help this help\n"
	      "\n"
	      "docs/policy.md describes the format.\n"
	      "Exit codes: 0 valid, 1 errors, 2 usage error.\n",
	      f);
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
	printf("  match:  %s", p->id == 0   ? "every process no policy above selects"
				: sel->len ? sel->p + 1
					   : "");
	printf("\n  mode:   %s\n  allow:  ", p->mode == LW_MODE_ENFORCE ? "enforce" : "monitor");
	print_allowed(set, p);
}

int lw_cmd_policy(int argc, char **argv)
{
	const char *sub, *dir = NULL;
	struct lw_policy_set set = { 0 };
	struct lw_diag d = { 0 };
	struct lw_buf sel = { 0 };
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

	lw_policy_load(&set, dir, &d);
	for (size_t i = 0; i < d.n; i++)
		fprintf(stderr, "%s\n", d.msgs[i]);
	rc = d.n ? 1 : 0;
	if (!rc && !strcmp(sub, "show")) {
		/* in the order lw_policy_select tries them: the default last */
		for (size_t i = 1; i < set.n; i++)
			print_policy(&set, &set.policies[i], &sel);
		print_policy(&set, &set.policies[0], &sel);
	}
	/* errors alone on stderr: every line there is FILE:LINE: reason */
	if (!rc)
		printf("%zu policies, %zu providers: ok\n", set.n, set.cat.n);
	lw_buf_free(&sel);
	lw_diag_free(&d);
	lw_policy_free(&set);
	return rc;
}
