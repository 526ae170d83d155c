/*
 * The agent's configuration file (default /etc/leakwatch/leakwatch.yaml):
 * where its policies and state live, the capture limits and the alert
 * sinks. Every key is optional; a flag of `leakwatch run` overrides the
 * file. docs/running.md lists the keys.
 */
#ifndef LW_AGENTCONF_H
#define LW_AGENTCONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/diag.h"
#include "util/netaddr.h"

#define LW_AGENTCONF_DEFAULT "/etc/leakwatch/leakwatch.yaml"

struct lw_agent_conf {
	char *policy_dir, *state_dir;
	int64_t capture_max, ring_size; /* 0: unset */
	char *db, *alerts_file, *syslog, *webhook;
	int64_t dedupe_window, rate_limit; /* -1: unset */
	/* metrics: the endpoint (HOST:PORT, or "off"; NULL: unset) and who
	 * besides root may read it (docs/running.md, "Metrics") */
	char *metrics_listen;
	uid_t *metrics_uids;
	size_t n_metrics_uids;
	struct lw_cidr *metrics_from;
	size_t n_metrics_from;
};

/* Reads path into c (zeroed first). Every problem -> d as FILE:LINE:
 * reason; returns the number of errors. */
int lw_agent_conf_load(const char *path, struct lw_agent_conf *c, struct lw_diag *d);
void lw_agent_conf_free(struct lw_agent_conf *c);

#endif
