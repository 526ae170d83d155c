/* A policy directory as the commands use it: providers and service policies
 * (policy/), the classification rules and exact-value lists (classify/), and
 * the classifier compiled from them. Loaded whole or not at all, so a reload
 * can be refused without touching what is in force. */
#ifndef LW_CONFIG_H
#define LW_CONFIG_H

#include "classify/classify.h"
#include "classify/kmatch.h"
#include "classify/rules.h"
#include "policy/diag.h"
#include "policy/policy.h"

struct lw_config {
	struct lw_policy_set set;
	struct lw_ruleset rules;
	struct lw_classifier *cls;
	/* the in-kernel matcher of the block rules, with each policy's masks
	 * (lw_config_load only) */
	struct lw_kmatch km;
};

/* Does policy p enforce block rule/list entry e? (Its own `mode: monitor`
 * makes it would_block everywhere.) */
bool lw_config_rule_monitor(const struct lw_config *c, bool is_list, int index);

/* Every error goes to d; returns NULL when there was any. */
struct lw_config *lw_config_load(const char *dir, struct lw_diag *d);
/* Rules only (scan): dir NULL means the built-in rules alone. */
struct lw_config *lw_config_load_rules(const char *dir, struct lw_diag *d);
void lw_config_free(struct lw_config *c);
/* The default policy directory: /etc/leakwatch/policies, else ./policies. */
const char *lw_config_default_dir(void);

#endif
