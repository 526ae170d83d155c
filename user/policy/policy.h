/*
 * Per-service policies: which AI providers a service may use, and whether
 * leakwatch only reports (monitor) or also blocks (enforce).
 *
 * A policy directory holds the provider catalog (providers.yaml, required)
 * and any number of *.yaml / *.yml policy files, read in byte order of their
 * names, each with one or more YAML documents. docs/policy.md is the user
 * documentation of the format.
 */
#ifndef LW_POLICY_H
#define LW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/catalog.h"
#include "policy/diag.h"

#define LW_CATALOG_FILE "providers.yaml"
#define LW_SERVICE_NAME_MAX 127

enum lw_policy_mode {
	LW_MODE_MONITOR = 0, /* report, never block */
	LW_MODE_ENFORCE = 1, /* block what the policy does not allow */
};

#define LW_QUARANTINE_DEFAULT_S 600

struct lw_policy {
	int id;	    /* index in lw_policy_set.policies: 0 is the default */
	char *name; /* service name; "default" for the default policy */
	enum lw_policy_mode mode;
	/* After the agent blocks content the kernel could not decide (e.g. a
	 * card number), new connections of the service to that provider are
	 * refused for this long. 0: no quarantine. */
	uint32_t quarantine_s;
	bool allow_all;	     /* written as `allow_providers: all` */
	uint64_t allow_mask; /* bit i: catalog provider i may be used */
	/* Selectors; NULL (or !has_uid) when not given. A policy applies when
	 * every given selector matches. */
	char *cgroup; /* cgroup v2 path or glob; descendants match too */
	char *unit;   /* systemd unit name or glob */
	char *exe;    /* executable path or glob */
	bool has_uid;
	uint32_t uid;
	char *file; /* where it was written; NULL for the built-in default */
	int line;
};

struct lw_policy_set {
	struct lw_catalog cat;
	/* [0] is the default (from a `default: true` document, or built in:
	 * monitor, all providers), then service policies in file order and,
	 * within a file, document order. Id 0 being the default lets a zeroed
	 * kernel map entry mean "default". */
	struct lw_policy *policies;
	size_t n;
};

/* Loads dir/providers.yaml and every policy file of dir into a zeroed set.
 * Every problem is added to d as FILE:LINE: reason; returns the number of
 * errors added. A set with errors must not be used, only freed. */
int lw_policy_load(struct lw_policy_set *set, const char *dir, struct lw_diag *d);
void lw_policy_free(struct lw_policy_set *set);

/* The policy for a process: the first service policy all of whose selectors
 * match, else the default. Any of cgroup_path and exe may be NULL (unknown):
 * selectors on it then do not match. Never NULL. */
const struct lw_policy *lw_policy_select(const struct lw_policy_set *set, const char *cgroup_path,
					 const char *exe, uint32_t uid);

/* Does p match? (One policy's part of lw_policy_select.) */
bool lw_policy_matches(const struct lw_policy *p, const char *cgroup_path, const char *exe,
		       uint32_t uid);

/* The unit a cgroup path belongs to: its last component ending in .service,
 * .scope or .slice ("/system.slice/checkout.service/x" -> "checkout.service").
 * Returns false when there is none. */
bool lw_cgroup_unit(const char *cgroup_path, char *out, size_t n);

static inline bool lw_policy_allows(const struct lw_policy *p, int provider_idx)
{
	return provider_idx >= 0 && provider_idx < 64 && (p->allow_mask >> provider_idx) & 1;
}

#endif
