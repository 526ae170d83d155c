#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/ydoc.h"
#include "util/buf.h"

#define CGROUP_PATH_MAX 4096

struct pol_load {
	struct lw_policy_set *set;
	/* With a broken catalog every provider id looks unknown: those errors
	 * would bury the one that matters. */
	bool catalog_ok;
	bool have_default; /* a file gave one */
};

/* ---- globs -------------------------------------------------------------- */

static bool is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static bool class_name_ok(const char *s, size_t n)
{
	static const char *const names[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
					    "lower", "print", "punct", "space", "upper", "xdigit"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && !strncmp(names[i], s, n))
			return true;
	return false;
}

/* fnmatch() never rejects a pattern: an unclosed '[' silently becomes a
 * literal, and a policy that can never match is worse than an error. */
static const char *glob_problem(const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		size_t j;

		if (s[i] == '\\') {
			if (!s[i + 1])
				return "ends with a lone '\\'";
			i++;
			continue;
		}
		if (s[i] != '[')
			continue;
		j = i + 1;
		if (s[j] == '!' || s[j] == '^')
			j++;
		if (s[j] == ']')
			j++; /* a leading ']' is a member, not the end */
		for (; s[j] && s[j] != ']'; j++) {
			if (s[j] == '\\' && s[j + 1]) {
				j++;
			} else if (s[j] == '[' &&
				   (s[j + 1] == ':' || s[j + 1] == '.' || s[j + 1] == '=')) {
				char delim = s[j + 1];
				size_t k = j + 2;

				while (s[k] && !(s[k] == delim && s[k + 1] == ']'))
					k++;
				if (!s[k])
					return "unterminated '[:' class in a bracket expression";
				if (delim == ':' && !class_name_ok(s + j + 2, k - j - 2))
					return "unknown character class";
				j = k + 1;
			}
		}
		if (!s[j])
			return "unclosed '[' (write '\\[' for a literal bracket)";
		i = j;
	}
	return NULL;
}

/* ---- selectors ---------------------------------------------------------- */

static bool cgroup_match(const char *pat, const char *path)
{
	char buf[CGROUP_PATH_MAX];
	size_t n = strlen(path);

	if (!n || n >= sizeof(buf))
		return false;
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	/* the path itself, then each ancestor up to "/" */
	for (;;) {
		char *slash;

		if (fnmatch(pat, buf, FNM_PATHNAME) == 0)
			return true;
		slash = strrchr(buf, '/');
		if (!slash || n == 1)
			return false;
		n = slash == buf ? 1 : (size_t)(slash - buf);
		buf[n] = 0;
	}
}

static bool has_suffix(const char *s, size_t n, const char *suf)
{
	size_t sl = strlen(suf);

	return n > sl && !memcmp(s + n - sl, suf, sl);
}

static bool unit_suffix(const char *s, size_t n)
{
	return has_suffix(s, n, ".service") || has_suffix(s, n, ".scope") ||
	       has_suffix(s, n, ".slice");
}

bool lw_cgroup_unit(const char *cgroup_path, char *out, size_t n)
{
	const char *unit = NULL, *c = cgroup_path;
	size_t ulen = 0;

	while (*c) {
		size_t len = strcspn(c, "/");

		if (unit_suffix(c, len)) {
			unit = c;
			ulen = len;
		}
		c += len;
		c += *c == '/';
	}
	if (!unit || ulen >= n)
		return false;
	memcpy(out, unit, ulen);
	out[ulen] = 0;
	return true;
}

bool lw_policy_matches(const struct lw_policy *p, const char *cgroup_path, const char *exe,
		       uint32_t uid)
{
	char unit[256];

	if (p->cgroup && (!cgroup_path || !cgroup_match(p->cgroup, cgroup_path)))
		return false;
	if (p->unit && (!cgroup_path || !lw_cgroup_unit(cgroup_path, unit, sizeof(unit)) ||
			fnmatch(p->unit, unit, 0) != 0))
		return false;
	if (p->exe && (!exe || fnmatch(p->exe, exe, 0) != 0))
		return false;
	if (p->has_uid && p->uid != uid)
		return false;
	return true;
}

const struct lw_policy *lw_policy_select(const struct lw_policy_set *set, const char *cgroup_path,
					 const char *exe, uint32_t uid)
{
	for (size_t i = 1; i < set->n; i++)
		if (lw_policy_matches(&set->policies[i], cgroup_path, exe, uid))
			return &set->policies[i];
	return &set->policies[0];
}

/* ---- parsing ------------------------------------------------------------ */

/* A valid glob (after `what` checks) or NULL after reporting. */
static const char *glob_str(struct lw_ydoc *y, yaml_node_t *n, const char *key)
{
	const char *s = lw_ydoc_str(y, n, key);
	const char *why;

	if (!s)
		return NULL;
	why = glob_problem(s);
	if (why) {
		lw_ydoc_err(y, n, "%s: invalid glob '%s': %s", key, s, why);
		return NULL;
	}
	return s;
}

static void parse_uid(struct lw_ydoc *y, yaml_node_t *n, struct lw_policy *p)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	const char *s;

	if (n->type != YAML_SCALAR_NODE) {
		lw_ydoc_err(y, n, "uid: expected a uid or user name");
		return;
	}
	s = lw_ydoc_str(y, n, "uid");
	if (!s)
		return;
	if (strspn(s, "0123456789") == strlen(s)) {
		unsigned long long v;
		char *end;

		errno = 0;
		v = strtoull(s, &end, 10);
		/* (uid_t)-1 means "no uid" to the kernel: never a real user */
		if (errno || *end || v >= UINT32_MAX) {
			lw_ydoc_err(y, n, "uid: %s is out of range", s);
			return;
		}
		p->uid = (uint32_t)v;
		p->has_uid = true;
		return;
	}
	if (s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')) {
		lw_ydoc_err(y, n, "uid: '%s' is not a uid or user name", s);
		return;
	}
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		lw_ydoc_err(y, n, "uid: unknown user '%s'", s);
		return;
	}
	p->uid = (uint32_t)res->pw_uid;
	p->has_uid = true;
}

enum { M_CGROUP, M_UNIT, M_EXE, M_UID, M_N };

static void parse_match(struct lw_ydoc *y, yaml_node_t *m, struct lw_policy *p)
{
	static const char *const keys[M_N] = {"cgroup", "unit", "exe", "uid"};
	yaml_node_t *v[M_N], *k[M_N];
	const char *s;

	if (!lw_ydoc_map(y, m, "match", keys, M_N, v, k))
		return;
	if (m->data.mapping.pairs.start == m->data.mapping.pairs.top) {
		lw_ydoc_err(y, m, "match: empty (give one or more of cgroup, unit, exe, uid)");
		return;
	}
	if (v[M_CGROUP] && (s = glob_str(y, v[M_CGROUP], "cgroup"))) {
		size_t n = strlen(s);

		if (s[0] != '/') {
			lw_ydoc_err(y, v[M_CGROUP], "cgroup: '%s' must start with '/'", s);
		} else if (n >= CGROUP_PATH_MAX) {
			lw_ydoc_err(y, v[M_CGROUP], "cgroup: longer than %d bytes",
				    CGROUP_PATH_MAX - 1);
		} else {
			p->cgroup = lw_xstrdup(s);
			/* "/a/b/" names the same cgroup as "/a/b" */
			while (n > 1 && p->cgroup[n - 1] == '/')
				p->cgroup[--n] = 0;
		}
	}
	if (v[M_UNIT] && (s = glob_str(y, v[M_UNIT], "unit"))) {
		size_t n = strlen(s);

		if (strchr(s, '/')) {
			lw_ydoc_err(y, v[M_UNIT],
				    "unit: '%s' is a path, not a unit name (paths go in cgroup)",
				    s);
		} else if (n > 255) {
			lw_ydoc_err(y, v[M_UNIT], "unit: longer than 255 bytes");
		} else if (!is_glob(s) && !unit_suffix(s, n)) {
			/* as systemctl does: "checkout" means checkout.service */
			struct lw_buf b = {0};

			lw_buf_printf(&b, "%s.service", s);
			p->unit = b.p;
		} else {
			p->unit = lw_xstrdup(s);
		}
	}
	if (v[M_EXE] && (s = glob_str(y, v[M_EXE], "exe"))) {
		if (!strchr("/*?[", s[0]))
			lw_ydoc_err(y, v[M_EXE],
				    "exe: '%s' must be an absolute path or start with a wildcard",
				    s);
		else
			p->exe = lw_xstrdup(s);
	}
	if (v[M_UID])
		parse_uid(y, v[M_UID], p);
}

static void parse_allow(struct lw_ydoc *y, struct pol_load *pl, yaml_node_t *n, struct lw_policy *p)
{
	const struct lw_catalog *cat = &pl->set->cat;

	p->allow_all = false;
	p->allow_mask = 0;
	if (n->type == YAML_SCALAR_NODE && !strcmp((const char *)n->data.scalar.value, "all")) {
		p->allow_all = true;
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		lw_ydoc_err(y, n, "allow_providers: expected a list of provider ids, [] or all");
		return;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = lw_ydoc_node(y, *it);
		const char *id = lw_ydoc_str(y, item, "allow_providers");
		int idx;

		if (!id)
			continue;
		idx = lw_catalog_find(cat, id);
		if (idx >= 0)
			p->allow_mask |= 1ULL << idx;
		else if (pl->catalog_ok)
			lw_ydoc_err(y, item, "allow_providers: unknown provider '%s'%s", id,
				    !strcmp(id, "all") ? " (write allow_providers: all, not a list)"
						       : "");
	}
}

static void parse_service(struct lw_ydoc *y, struct pol_load *pl, yaml_node_t *n,
			  struct lw_policy *p)
{
	const struct lw_policy_set *set = pl->set;
	const char *s = lw_ydoc_str(y, n, "service");

	if (!s)
		return;
	if (strlen(s) > LW_SERVICE_NAME_MAX) {
		lw_ydoc_err(y, n, "service: longer than %d bytes", LW_SERVICE_NAME_MAX);
		return;
	}
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			lw_ydoc_err(y, n, "service: contains a control character");
			return;
		}
	}
	if (!strcmp(s, "default")) {
		lw_ydoc_err(y, n, "service: 'default' is reserved (write default: true)");
		return;
	}
	for (size_t i = 1; i < set->n; i++) {
		const struct lw_policy *o = &set->policies[i];

		if (o->name && !strcmp(o->name, s)) {
			lw_ydoc_err(y, n, "service: duplicate service '%s' (first at %s:%d)", s,
				    o->file, o->line);
			return;
		}
	}
	p->name = lw_xstrdup(s);
}

static void free_policy(struct lw_policy *p)
{
	free(p->name);
	free(p->cgroup);
	free(p->unit);
	free(p->exe);
	free(p->file);
}

enum { P_SERVICE, P_DEFAULT, P_MATCH, P_MODE, P_ALLOW, P_QUARANTINE, P_N };

/* "600", "90s", "10m", "2h", "0" (off) -> seconds; -1 when malformed or
 * over a day (a quarantine nobody remembers is an outage). */
static int64_t parse_duration(const char *s)
{
	char *end;
	long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v < 0 || v > 86400)
		return -1;
	if (!strcmp(end, "m"))
		v *= 60;
	else if (!strcmp(end, "h"))
		v *= 3600;
	else if (*end && strcmp(end, "s"))
		return -1;
	return v > 86400 ? -1 : v;
}

static void on_doc(struct lw_ydoc *y, yaml_node_t *root, void *ud)
{
	static const char *const keys[P_N] = {"service", "default",	    "match",
					      "mode",	 "allow_providers", "quarantine"};
	struct pol_load *pl = ud;
	struct lw_policy_set *set = pl->set;
	struct lw_policy p = {.allow_all = true,
			      .quarantine_s = LW_QUARANTINE_DEFAULT_S,
			      .line = lw_ynode_line(root)};
	yaml_node_t *v[P_N], *k[P_N];
	int is_default = 0;

	if (!lw_ydoc_map(y, root, "policy", keys, P_N, v, k))
		return;
	p.file = lw_xstrdup(y->file);
	if (v[P_DEFAULT]) {
		is_default = lw_ydoc_bool(y, v[P_DEFAULT], "default");
		if (is_default < 0) /* reported; check the rest as what it looks like */
			is_default = !v[P_SERVICE];
	}
	if (is_default) {
		const struct lw_policy *first = &set->policies[0];

		if (pl->have_default)
			lw_ydoc_err(y, k[P_DEFAULT], "second default policy (first at %s:%d)",
				    first->file, first->line);
		if (v[P_SERVICE])
			lw_ydoc_err(y, k[P_SERVICE], "default policy: 'service' not allowed");
		if (v[P_MATCH])
			lw_ydoc_err(y, k[P_MATCH], "default policy: 'match' not allowed");
	} else {
		if (v[P_SERVICE])
			parse_service(y, pl, v[P_SERVICE], &p);
		else
			lw_ydoc_err(y, root, "policy: missing 'service' (or default: true)");
		if (v[P_MATCH])
			parse_match(y, v[P_MATCH], &p);
		else
			lw_ydoc_err(y, root, "policy: missing 'match'");
	}
	if (v[P_MODE]) {
		const char *m = lw_ydoc_str(y, v[P_MODE], "mode");

		if (m && !strcmp(m, "enforce"))
			p.mode = LW_MODE_ENFORCE;
		else if (m && strcmp(m, "monitor"))
			lw_ydoc_err(y, v[P_MODE], "mode: expected monitor or enforce, got '%s'", m);
	}
	if (v[P_ALLOW])
		parse_allow(y, pl, v[P_ALLOW], &p);
	if (v[P_QUARANTINE]) {
		const char *q = lw_ydoc_str(y, v[P_QUARANTINE], "quarantine");
		int64_t secs = parse_duration(q);

		if (q && secs < 0)
			lw_ydoc_err(y, v[P_QUARANTINE],
				    "quarantine: expected a duration up to 24h (600, 90s, 10m, 0), "
				    "got '%s'",
				    q);
		else if (q)
			p.quarantine_s = (uint32_t)secs;
	}
	if (p.allow_all)
		p.allow_mask = lw_catalog_all_mask(&set->cat);

	if (is_default && !pl->have_default) {
		free_policy(&set->policies[0]);
		p.name = lw_xstrdup("default");
		p.id = 0;
		set->policies[0] = p;
		pl->have_default = true;
		return;
	}
	if (is_default) {
		free_policy(&p);
		return;
	}
	/* kept even when broken: later duplicates are still found, and the
	 * error count tells the caller not to use the set */
	p.id = (int)set->n;
	set->policies = lw_xrealloc(set->policies, (set->n + 1) * sizeof(*set->policies));
	set->policies[set->n++] = p;
}

/* ---- directory ---------------------------------------------------------- */

static bool is_catalog(const char *name)
{
	return !strcmp(name, LW_CATALOG_FILE);
}

int lw_policy_load(struct lw_policy_set *set, const char *dir, struct lw_diag *d)
{
	struct pol_load pl = {.set = set};
	size_t before = d->n, nfiles;
	struct stat st;
	char **files;
	char *path;

	/* the default exists from the start, so even a failed set has one */
	set->policies = lw_xcalloc(1, sizeof(*set->policies));
	set->policies[0] = (struct lw_policy){
		.id = 0,
		.name = lw_xstrdup("default"),
		.mode = LW_MODE_MONITOR,
		.allow_all = true,
		.quarantine_s = LW_QUARANTINE_DEFAULT_S,
	};
	set->n = 1;
	if (stat(dir, &st) != 0) {
		lw_diag_add(d, dir, 0, "cannot open directory: %s", strerror(errno));
		return (int)(d->n - before);
	}
	if (!S_ISDIR(st.st_mode)) {
		lw_diag_add(d, dir, 0, "not a directory");
		return (int)(d->n - before);
	}
	path = lw_path_join(dir, LW_CATALOG_FILE);
	pl.catalog_ok = lw_catalog_load(&set->cat, path, d) == 0;
	free(path);
	set->policies[0].allow_mask = lw_catalog_all_mask(&set->cat);

	files = lw_ydoc_list_dir(dir, is_catalog, false, &nfiles, d);
	for (size_t i = 0; i < nfiles; i++) {
		size_t first_err = d->n;

		path = lw_path_join(dir, files[i]);
		lw_ydoc_each_file(path, d, on_doc, &pl);
		lw_diag_sort_lines(d, first_err);
		free(path);
		free(files[i]);
	}
	free(files);
	return (int)(d->n - before);
}

void lw_policy_free(struct lw_policy_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		free_policy(&set->policies[i]);
	free(set->policies);
	lw_catalog_free(&set->cat);
	memset(set, 0, sizeof(*set));
}
