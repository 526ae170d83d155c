#include "cmd/agentconf.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "classify/yval.h"
#include "cmd/agent_loop.h"
#include "policy/ydoc.h"
#include "util/buf.h"

static void str_key(struct lw_ydoc *y, yaml_node_t *n, const char *key, char **out)
{
	const char *v;

	if (!n)
		return;
	v = lw_ydoc_str(y, n, key);
	if (!v)
		return;
	if (!*v) {
		lw_ydoc_err(y, n, "%s: empty", key);
		return;
	}
	free(*out);
	*out = lw_xstrdup(v);
}

/* sizes as the flags take them: 1048576, 64K, 1M */
static void size_key(struct lw_ydoc *y, yaml_node_t *n, const char *key, int64_t lo, int64_t hi,
		     int64_t *out)
{
	const char *v;
	int64_t x;

	if (!n || !(v = lw_ydoc_str(y, n, key)))
		return;
	x = lw_parse_size(v);
	if (x < lo || x > hi)
		lw_ydoc_err(y, n, "%s: expected a size from %lld to %lld bytes (e.g. 1M), got '%s'",
			    key, (long long)lo, (long long)hi, v);
	else
		*out = x;
}

static void num_key(struct lw_ydoc *y, yaml_node_t *n, const char *key, int64_t hi, int64_t *out)
{
	const char *v;
	char *end;
	long long x;

	if (!n || !(v = lw_ydoc_str(y, n, key)))
		return;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || *end || end == v || x < 0 || x > hi)
		lw_ydoc_err(y, n, "%s: expected a whole number from 0 to %lld, got '%s'", key,
			    (long long)hi, v);
	else
		*out = x;
}

/* users by name or number: the name is looked up now, once */
static void uids_key(struct lw_ydoc *y, yaml_node_t *n, struct lw_agent_conf *c)
{
	struct lw_strv v = {0};

	if (!n)
		return;
	lw_yval_strv(y, n, "allow_uids", &v);
	c->metrics_uids = lw_xrealloc(c->metrics_uids, (v.n + 1) * sizeof(*c->metrics_uids));
	for (size_t i = 0; i < v.n; i++) {
		const struct passwd *pw = getpwnam(v.v[i]);
		char *end;
		unsigned long u;

		errno = 0;
		u = strtoul(v.v[i], &end, 10);
		if (pw)
			c->metrics_uids[c->n_metrics_uids++] = pw->pw_uid;
		else if (!errno && !*end && end != v.v[i] && u < (uid_t)-1)
			c->metrics_uids[c->n_metrics_uids++] = (uid_t)u;
		else
			lw_ydoc_err(y, n, "allow_uids: no user '%s' (a user name or a number)",
				    v.v[i]);
	}
	lw_strv_free(&v);
}

static void cidrs_key(struct lw_ydoc *y, yaml_node_t *n, struct lw_agent_conf *c)
{
	struct lw_strv v = {0};

	if (!n)
		return;
	lw_yval_strv(y, n, "allow_from", &v);
	c->metrics_from = lw_xrealloc(c->metrics_from, (v.n + 1) * sizeof(*c->metrics_from));
	for (size_t i = 0; i < v.n; i++) {
		struct lw_cidr *r = &c->metrics_from[c->n_metrics_from];

		if (lw_cidr_parse(v.v[i], r) == 0 && lw_cidr_host_bits_clear(r))
			c->n_metrics_from++;
		else
			lw_ydoc_err(y, n,
				    "allow_from: '%s' is not an address or a range with no "
				    "bits set past its prefix (10.0.0.0/8, fd00::/8)",
				    v.v[i]);
	}
	lw_strv_free(&v);
}

static void listen_key(struct lw_ydoc *y, yaml_node_t *n, struct lw_agent_conf *c)
{
	struct sockaddr_storage ss;
	socklen_t len;

	str_key(y, n, "listen", &c->metrics_listen);
	if (c->metrics_listen && strcmp(c->metrics_listen, "off") &&
	    lw_hostport_parse(c->metrics_listen, &ss, &len))
		lw_ydoc_err(y, n, "listen: expected IP:PORT, [IPv6]:PORT or off, got '%s'",
			    c->metrics_listen);
}

enum { K_POLICY, K_STATE, K_CAPTURE, K_ALERTS, K_METRICS, K_N };
enum { M_LISTEN, M_UIDS, M_FROM, M_N };
enum { C_MAX, C_RING, C_N };
enum { A_DB, A_WINDOW, A_RATE, A_FILE, A_SYSLOG, A_WEBHOOK, A_N };

static void on_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud)
{
	static const char *const keys[K_N] = {"policy_dir", "state_dir", "capture", "alerts",
					      "metrics"};
	static const char *const mkeys[M_N] = {"listen", "allow_uids", "allow_from"};
	static const char *const ckeys[C_N] = {"max", "ring_size"};
	static const char *const akeys[A_N] = {"db",   "dedupe_window", "rate_limit",
					       "file", "syslog",	"webhook"};
	struct lw_agent_conf *c = ud;
	yaml_node_t *v[K_N], *k[K_N], *cv[C_N], *ck[C_N], *av[A_N], *ak[A_N], *mv[M_N], *mk[M_N];

	if (!lw_ydoc_map(y, root, "config", keys, K_N, v, k))
		return;
	str_key(y, v[K_POLICY], "policy_dir", &c->policy_dir);
	str_key(y, v[K_STATE], "state_dir", &c->state_dir);
	if (v[K_CAPTURE] && lw_ydoc_map(y, v[K_CAPTURE], "capture", ckeys, C_N, cv, ck)) {
		size_key(y, cv[C_MAX], "max", 1, 64LL << 20, &c->capture_max);
		size_key(y, cv[C_RING], "ring_size", 1 << 16, 1LL << 30, &c->ring_size);
	}
	if (v[K_ALERTS] && lw_ydoc_map(y, v[K_ALERTS], "alerts", akeys, A_N, av, ak)) {
		str_key(y, av[A_DB], "db", &c->db);
		num_key(y, av[A_WINDOW], "dedupe_window", 7 * 86400, &c->dedupe_window);
		num_key(y, av[A_RATE], "rate_limit", 7 * 86400, &c->rate_limit);
		str_key(y, av[A_FILE], "file", &c->alerts_file);
		str_key(y, av[A_SYSLOG], "syslog", &c->syslog);
		str_key(y, av[A_WEBHOOK], "webhook", &c->webhook);
	}
	if (v[K_METRICS] && lw_ydoc_map(y, v[K_METRICS], "metrics", mkeys, M_N, mv, mk)) {
		listen_key(y, mv[M_LISTEN], c);
		uids_key(y, mv[M_UIDS], c);
		cidrs_key(y, mv[M_FROM], c);
	}
}

int lw_agent_conf_load(const char *path, struct lw_agent_conf *c, struct lw_diag *d)
{
	size_t before = d->n;

	memset(c, 0, sizeof(*c));
	c->dedupe_window = c->rate_limit = -1;
	lw_ydoc_each_file(path, d, on_doc, c);
	return (int)(d->n - before);
}

void lw_agent_conf_free(struct lw_agent_conf *c)
{
	free(c->policy_dir);
	free(c->state_dir);
	free(c->db);
	free(c->alerts_file);
	free(c->syslog);
	free(c->webhook);
	free(c->metrics_listen);
	free(c->metrics_uids);
	free(c->metrics_from);
	memset(c, 0, sizeof(*c));
}
