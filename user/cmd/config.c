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

struct lw_config *lw_config_load(const char *dir, struct lw_diag *d)
{
	struct lw_config *c = lw_xcalloc(1, sizeof(*c));
	size_t errs = (size_t)lw_policy_load(&c->set, dir, d);

	errs += (size_t)lw_rules_load(&c->rules, dir, d);
	return finish(c, d, errs);
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
	lw_rules_free(&c->rules);
	lw_policy_free(&c->set);
	free(c);
}

const char *lw_config_default_dir(void)
{
	struct stat st;

	return stat("/etc/leakwatch/policies", &st) == 0 ? "/etc/leakwatch/policies" : "policies";
}
