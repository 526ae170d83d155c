#include "proc.h"

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"

int lw_proc_cgroup_path(pid_t pid, char *out, size_t n)
{
	char path[64], line[512];
	FILE *f;
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line + 3);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

void lw_for_each_pid(void (*cb)(pid_t pid, void *ud), void *ud)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (!*end && pid > 0)
			cb((pid_t)pid, ud);
	}
	closedir(d);
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

void lw_service_name(const char *cgroup, char *out, size_t n)
{
	static const char *const runtimes[] = { "docker-", "cri-containerd-", "crio-", "libpod-" };
	const char *base = strrchr(cgroup, '/');
	size_t len;

	base = base ? base + 1 : cgroup;
	len = strlen(base);
	for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++) {
		size_t pl = strlen(runtimes[i]);

		if (strncmp(base, runtimes[i], pl) == 0 && len >= pl + 12 &&
		    all_hex(base + pl, 12)) {
			snprintf(out, n, "container:%.12s", base + pl);
			return;
		}
	}
	/* a bare 64-hex directory is how docker/k8s name containers under cgroupfs */
	if (len == 64 && all_hex(base, 64)) {
		snprintf(out, n, "container:%.12s", base);
		return;
	}
	if (len > 8 && strcmp(base + len - 8, ".service") == 0) {
		snprintf(out, n, "%s", base);
		return;
	}
	snprintf(out, n, "%s", cgroup[0] ? cgroup : "/");
}

static uint32_t real_uid(pid_t pid)
{
	char path[64], line[256];
	unsigned long uid = (unsigned long)-1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return (uint32_t)-1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %lu", &uid) == 1)
			break;
	fclose(f);
	return (uint32_t)uid;
}

static void lookup(struct lw_proc *p)
{
	char path[64];
	ssize_t n;

	p->uid = real_uid(p->pid);

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)p->pid);
	n = readlink(path, p->exe, sizeof(p->exe) - 1);
	p->exe[n > 0 ? n : 0] = 0;
	if (lw_proc_cgroup_path(p->pid, p->cgroup, sizeof(p->cgroup)) == 0)
		lw_service_name(p->cgroup, p->service, sizeof(p->service));
}

const struct lw_proc *lw_procs_get(struct lw_procs *ps, pid_t pid)
{
	struct lw_proc *p = lw_hmap_get(&ps->by_pid, (uint64_t)pid);

	if (p)
		return p;
	p = lw_xcalloc(1, sizeof(*p));
	p->pid = pid;
	lookup(p);
	lw_hmap_put(&ps->by_pid, (uint64_t)pid, p);
	return p;
}

void lw_procs_exec(struct lw_procs *ps, pid_t pid, const char *filename)
{
	struct lw_proc *p = lw_hmap_get(&ps->by_pid, (uint64_t)pid);

	if (!p) {
		p = lw_xcalloc(1, sizeof(*p));
		p->pid = pid;
		lw_hmap_put(&ps->by_pid, (uint64_t)pid, p);
	}
	memset(p->exe, 0, sizeof(p->exe));
	memset(p->cgroup, 0, sizeof(p->cgroup));
	memset(p->service, 0, sizeof(p->service));
	p->dead_ns = 0;
	lookup(p);
	/* already gone: the name it was exec'd with is better than nothing */
	if (!p->exe[0] && filename)
		snprintf(p->exe, sizeof(p->exe), "%s", filename);
}

void lw_procs_exit(struct lw_procs *ps, pid_t pid, uint64_t now_ns)
{
	struct lw_proc *p = lw_hmap_get(&ps->by_pid, (uint64_t)pid);

	if (p)
		p->dead_ns = now_ns ? now_ns : 1;
}

void lw_procs_gc(struct lw_procs *ps, uint64_t now_ns, uint64_t keep_ns)
{
	uint64_t *dead = NULL;
	size_t n = 0;

	dead = lw_xmalloc((ps->by_pid.len + 1) * sizeof(*dead));
	for (size_t i = 0; i < ps->by_pid.cap; i++) {
		struct lw_proc *p = ps->by_pid.slots[i].val;

		if (p && p->dead_ns && now_ns - p->dead_ns >= keep_ns)
			dead[n++] = ps->by_pid.slots[i].key;
	}
	for (size_t i = 0; i < n; i++)
		free(lw_hmap_del(&ps->by_pid, dead[i]));
	free(dead);
}

void lw_procs_free(struct lw_procs *ps)
{
	for (size_t i = 0; i < ps->by_pid.cap; i++)
		free(ps->by_pid.slots[i].val);
	lw_hmap_free(&ps->by_pid);
}
