#include "gates/apply.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/proc.h"
#include "util/log.h"

#define NO_UID ((uint32_t)-1)
#define CGROUP_DEPTH_MAX 32

static void add_host(uint64_t hash, int kind, int provider, void *ud)
{
	lw_gates_host_add(ud, hash, kind, (uint32_t)provider);
}

/* Depth-first over the cgroup tree; rel is the path as the kernel names it
 * ("/" for the root, "/a/b" below). */
static void walk(struct lw_gates *g, const struct lw_policy_set *set, int dirfd, char *rel,
		 size_t rlen, int depth, size_t *count)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (fstat(dirfd, &st) == 0) {
		const struct lw_policy *p = lw_policy_select(set, rel, NULL, NO_UID);

		/* the default needs no entry: a miss means policy 0 */
		if (p->id != 0 && lw_gates_cgroup_set(g, st.st_ino, (uint32_t)p->id) == 0)
			(*count)++;
	}
	if (depth >= CGROUP_DEPTH_MAX)
		return;
	d = fdopendir(dup(dirfd));
	if (!d)
		return;
	while ((de = readdir(d))) {
		int sub;
		size_t nl;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		nl = strlen(de->d_name);
		if (rlen + 1 + nl >= PATH_MAX)
			continue;
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			continue;
		if (rlen == 1) { /* root "/" */
			memcpy(rel + 1, de->d_name, nl + 1);
			walk(g, set, sub, rel, 1 + nl, depth + 1, count);
			rel[1] = 0;
		} else {
			rel[rlen] = '/';
			memcpy(rel + rlen + 1, de->d_name, nl + 1);
			walk(g, set, sub, rel, rlen + 1 + nl, depth + 1, count);
			rel[rlen] = 0;
		}
		close(sub);
	}
	closedir(d);
}

void lw_gates_apply_cgroups(struct lw_gates *g, const struct lw_policy_set *set)
{
	char mnt[PATH_MAX], rel[PATH_MAX] = "/";
	size_t count = 0;
	int fd;

	if (lw_cgroup2_mount(mnt, sizeof(mnt)))
		return;
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* entries for cgroups that vanished are harmless (ids are not reused
	 * while the kernel runs); only rebuild from scratch at reload */
	walk(g, set, fd, rel, 1, 0, &count);
	close(fd);
	lw_debug("policy: %zu cgroups selected by a service policy", count);
}

static bool needs_pids(const struct lw_policy_set *set)
{
	for (size_t i = 1; i < set->n; i++)
		if (set->policies[i].exe || set->policies[i].has_uid)
			return true;
	return false;
}

void lw_gates_apply_pid(struct lw_gates *g, const struct lw_policy_set *set, pid_t pid)
{
	char path[64], exe[PATH_MAX], cg[PATH_MAX];
	const struct lw_policy *by_cg, *p;
	struct stat st;
	ssize_t n;

	if (!needs_pids(set))
		return;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (n <= 0 || stat(path, &st) != 0 || lw_proc_cgroup_path(pid, cg, sizeof(cg)) != 0) {
		lw_gates_pid_del(g, pid);
		return;
	}
	exe[n] = 0;
	by_cg = lw_policy_select(set, cg, NULL, NO_UID);
	p = lw_policy_select(set, cg, exe, st.st_uid);
	if (p != by_cg)
		lw_gates_pid_set(g, pid, (uint32_t)p->id);
	else
		lw_gates_pid_del(g, pid);
}

struct pid_walk {
	struct lw_gates *g;
	const struct lw_policy_set *set;
};

static void apply_pid_cb(pid_t pid, void *ud)
{
	struct pid_walk *w = ud;

	lw_gates_apply_pid(w->g, w->set, pid);
}

void lw_gates_apply(struct lw_gates *g, const struct lw_policy_set *set)
{
	struct pid_walk w = { g, set };

	lw_gates_hosts_clear(g);
	lw_catalog_for_each_pattern(&set->cat, add_host, g);
	for (size_t i = 0; i < set->n && i < LWG_MAX_POLICIES; i++)
		lw_gates_policy_set(g, (uint32_t)i, set->policies[i].allow_mask,
				    set->policies[i].mode == LW_MODE_ENFORCE);
	if (set->n > LWG_MAX_POLICIES)
		lw_warn("policy: only the first %d policies are enforced in the kernel",
			LWG_MAX_POLICIES);
	lw_gates_cgroups_clear(g);
	lw_gates_apply_cgroups(g, set);
	lw_gates_pids_clear(g);
	if (needs_pids(set))
		lw_for_each_pid(apply_pid_cb, &w);
}
