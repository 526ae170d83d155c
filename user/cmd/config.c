#include <stdlib.h>
#include <sys/stat.h>

#include "cmd/config.h"
#include "util/buf.h"

static struct lw_config *finish(struct lw_config *c, struct lw_diag *d, size_t errs)
{
	if (!errs) {
		c->cls = lw_classifier_new(&c->rules, d);
		if (c->cls)
			return c;
	}
	lw_config_free(c);
	return NULL;
}

bool lw_config_rule_monitor(const struct lw_config *c, bool is_list, int index)
{
	return is_list ? c->rules.lists[index].monitor : c->rules.rules[index].monitor;
}

/* Per policy, which kernel rules drop the write (enforce) and which are
 * only reported (monitor): a block rule enforces where its policy does,
 * unless the rule itself is in `mode: monitor`. */
static void kmatch_masks(struct lw_config *c)
{
	struct lwm_table *t = c->km.table;

	for (size_t p = 0; p < c->set.n && p < LWG_MAX_POLICIES; p++) {
		bool enforce = c->set.policies[p].mode == LW_MODE_ENFORCE;

		for (unsigned k = 0; k < t->nrules; k++) {
			const struct lw_kmatch_entry *e = &c->km.e[c->km.kentry[k]];
			bool mon = !enforce || lw_config_rule_monitor(c, e->is_list, e->index);

			if (mon)
				t->monitor[p][k / 64] |= 1ULL << (k % 64);
			else
				t->enforce[p][k / 64] |= 1ULL << (k % 64);
		}
	}
}

struct lw_config *lw_config_load(const char *dir, struct lw_diag *d)
{
	struct lw_config *c = lw_xcalloc(1, sizeof(*c));
	size_t errs = (size_t)lw_policy_load(&c->set, dir, d);

	errs += (size_t)lw_rules_load(&c->rules, dir, d);
	if (errs)
		return finish(c, d, errs);
	if (c->set.n > LWG_MAX_POLICIES) {
		lw_diag_add(d, dir, 0, "%zu policies: at most %d are supported", c->set.n,
			    LWG_MAX_POLICIES);
		return finish(c, d, 1);
	}
	if (lw_kmatch_build(&c->rules, &c->km) != 0) {
		lw_diag_add(d, dir, 0, "cannot build the in-kernel matcher: out of memory");
		return finish(c, d, 1);
	}
	kmatch_masks(c);
	return finish(c, d, 0);
}

struct lw_config *lw_config_load_rules(const char *dir, struct lw_diag *d)
{
	struct lw_config *c = lw_xcalloc(1, sizeof(*c));

	return finish(c, d, (size_t)lw_rules_load(&c->rules, dir, d));
}

void lw_config_free(struct lw_config *c)
{
	if (!c)
		return;
	lw_classifier_free(c->cls);
	lw_kmatch_free(&c->km);
	lw_rules_free(&c->rules);
	lw_policy_free(&c->set);
	free(c);
}

const char *lw_config_default_dir(void)
{
	struct stat st;

	return stat("/etc/leakwatch/policies", &st) == 0 ? "/etc/leakwatch/policies" : "policies";
}
