/* Loading a policy set into the gates' kernel tables. */
#ifndef LW_GATES_APPLY_H
#define LW_GATES_APPLY_H

#include <sys/types.h>

#include "gates/gates.h"
#include "policy/policy.h"

/* Replace every table with what set says: hostnames, policies, the policy
 * of every cgroup (walking the cgroup v2 tree) and of every process whose
 * executable or uid selects a different policy than its cgroup. */
void lw_gates_apply(struct lw_gates *g, const struct lw_policy_set *set);
/* Re-walk cgroups only (new service cgroups appear at any time). */
void lw_gates_apply_cgroups(struct lw_gates *g, const struct lw_policy_set *set);
/* A process exec'd: its executable may select another policy now. */
void lw_gates_apply_pid(struct lw_gates *g, const struct lw_policy_set *set, pid_t pid);

#endif
