#include "capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "capture.skel.h"
#include "lwmatch.h"
#include "capture/elfsym.h"
#include "identity/proc.h"
#include "util/buf.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/percpu.h"

const char *const lw_stat_names[LW_ST__MAX] = {
	[LW_ST_MSGS] = "messages",
	[LW_ST_BYTES] = "bytes",
	[LW_ST_CHUNKS] = "chunks",
	[LW_ST_RB_DROP_CHUNKS] = "ringbuf_dropped_chunks",
	[LW_ST_RB_DROP_BYTES] = "ringbuf_dropped_bytes",
	[LW_ST_TRUNC_MSGS] = "truncated_messages",
	[LW_ST_TRUNC_BYTES] = "truncated_bytes",
	[LW_ST_COPY_FAULTS] = "copy_faults",
	[LW_ST_META_DROPS] = "meta_dropped",
	[LW_ST_NESTED] = "nested_calls",
	[LW_ST_LIB_STOPS] = "library_pauses",
	[LW_ST_KM_WRITES] = "kmatch_writes",
	[LW_ST_KM_BYTES] = "kmatch_bytes",
	[LW_ST_KM_VERDICTS] = "kmatch_verdicts",
	[LW_ST_KM_FAULTS] = "kmatch_faults",
	[LW_ST_KM_POISONED] = "kmatch_poisoned_writes",
};

/* The functions hooked in every OpenSSL-compatible target. Reads are copied
 * at return (the buffer is filled then); writes too, so a call that fails or
 * moves fewer bytes (non-blocking sockets) is reported as what really left. */
enum hook_fn { H_WRITE, H_WRITE_EX, H_READ, H_READ_EX, H_CTRL, H_SET_FD, H_FREE, H__N };
static const char *const hook_syms[H__N] = {
	"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex",
	"SSL_ctrl",  "SSL_set_fd",   "SSL_free",
};

struct target {
	uint32_t id;
	bool hooked;
	uint32_t dev; /* kernel encoding */
	uint64_t ino;
	char path[PATH_MAX]; /* as the process sees it */
	int nlinks, nfailed;
	struct bpf_link *links[H__N * 2];
};

struct lw_capture {
	struct lw_capture_opts o;
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *mmap_link;
	struct lw_hmap files; /* file key -> struct target */
	struct target **byid; /* index: target id */
	size_t ntargets, nhooked;
	bool closing;  /* draining the ring: resume paused tasks, hook nothing */
	uint32_t kgen; /* matcher tables installed */
};

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char line[1024];

	if (lvl == LIBBPF_DEBUG && !lw_log_enabled(LW_LOG_DEBUG))
		return 0;
	if (lvl != LIBBPF_DEBUG && !lw_log_enabled(LW_LOG_DEBUG))
		return 0; /* failures are reported once, by us, with the cause */
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	lw_debug("libbpf: %s", line);
	return 0;
}

static uint32_t kdev(dev_t d)
{
	return (major(d) << 20) | minor(d);
}

static uint64_t file_key(uint32_t dev, uint64_t ino)
{
	return ino * 0x9e3779b97f4a7c15ULL ^ dev;
}

/* Mount a pseudo file system if the kernel has it but nobody mounted it. */
static int ensure_mount(const char *dir, const char *fstype, unsigned long magic)
{
	struct statfs sf;

	if (statfs(dir, &sf) == 0 && (unsigned long)sf.f_type == magic)
		return 0;
	if (mount(fstype, dir, fstype, 0, NULL) == 0) {
		lw_info("mounted %s at %s", fstype, dir);
		return 0;
	}
	lw_err("cannot mount %s at %s: %s%s", fstype, dir, strerror(errno),
	       errno == EPERM ? " (needs root)" : "");
	return -1;
}

static struct target *target_new(struct lw_capture *c, uint32_t dev, uint64_t ino, const char *path)
{
	struct target *t = lw_xcalloc(1, sizeof(*t));

	t->id = (uint32_t)c->ntargets;
	t->dev = dev;
	t->ino = ino;
	snprintf(t->path, sizeof(t->path), "%s", path);
	c->byid = lw_xrealloc(c->byid, (c->ntargets + 1) * sizeof(*c->byid));
	c->byid[c->ntargets++] = t;
	lw_hmap_put(&c->files, file_key(dev, ino), t);
	return t;
}

static void mark_known(struct lw_capture *c, uint32_t dev, uint64_t ino)
{
	struct lw_file_key k = {.ino = ino, .dev = dev};
	uint8_t v = 1;

	bpf_map__update_elem(c->skel->maps.known_files, &k, sizeof(k), &v, sizeof(v), BPF_ANY);
}

static struct bpf_link *attach_one(struct lw_capture *c, struct bpf_program *prog, bool ret,
				   const char *file, uint64_t off, uint32_t cookie)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = ret, .bpf_cookie = cookie);
	pid_t pid = c->o.only_pid ? c->o.only_pid : -1;

	return bpf_program__attach_uprobe_opts(prog, pid, file, off, &uo);
}

/*
 * Examine a file once (by device and inode) and hook it if it exports the
 * OpenSSL API. `file` is a path the agent can open (possibly through /proc),
 * `shown` the path the application knows it by.
 */
static void consider_file(struct lw_capture *c, const char *file, const char *shown, uint32_t dev,
			  uint64_t ino)
{
	struct capture_bpf *s = c->skel;
	struct bpf_program *enter[H__N] = {
		s->progs.ssl_write_enter,   s->progs.ssl_write_ex_enter, s->progs.ssl_read_enter,
		s->progs.ssl_read_ex_enter, s->progs.ssl_ctrl_enter,	 s->progs.ssl_set_fd_enter,
		s->progs.ssl_free_enter,
	};
	struct bpf_program *leave[H__N] = {
		s->progs.ssl_write_leave,
		s->progs.ssl_write_ex_leave,
		s->progs.ssl_read_leave,
		s->progs.ssl_read_ex_leave,
		NULL,
		NULL,
		NULL,
	};
	struct target *t = lw_hmap_get(&c->files, file_key(dev, ino));
	uint64_t offs[H__N];
	int found, failed = 0;

	if (t && t->dev == dev && t->ino == ino)
		return;
	t = target_new(c, dev, ino, shown);
	mark_known(c, dev, ino);
	found = lw_elf_func_offsets(file, hook_syms, H__N, offs);
	if (found < 0 || !offs[H_WRITE] || !offs[H_READ])
		return; /* not an OpenSSL-compatible target: nothing to hook */
	for (int i = 0; i < H__N; i++) {
		if (!offs[i])
			continue;
		for (int r = 0; r < 2; r++) {
			struct bpf_program *p = r ? leave[i] : enter[i];
			struct bpf_link *l;

			if (!p)
				continue;
			l = attach_one(c, p, r, file, offs[i], t->id);
			if (!l) {
				failed++;
				lw_warn("cannot hook %s in %s: %s", hook_syms[i], shown,
					strerror(errno));
				continue;
			}
			t->links[t->nlinks++] = l;
		}
	}
	t->hooked = t->nlinks > 0;
	t->nfailed = failed;
	if (t->hooked) {
		c->nhooked++;
		lw_info("hooked %s (%d probes%s)", shown, t->nlinks, failed ? ", some failed" : "");
	}
}

/* Work on an fd of our own: the process may exit or close its fd (the
 * dynamic loader closes the library right after mapping it) while we read
 * the ELF and attach, and /proc/self/fd/N keeps naming the same inode. */
static void consider_path(struct lw_capture *c, const char *file, const char *shown,
			  uint32_t want_dev, uint64_t want_ino)
{
	char self[64];
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (!want_ino || (kdev(st.st_dev) == want_dev && st.st_ino == want_ino))) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		consider_file(c, self, shown, kdev(st.st_dev), st.st_ino);
	}
	close(fd);
}

static bool is_libssl(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "libssl.", 7) == 0;
}

/* Executable and libssl mappings of one process. */
static void scan_pid(struct lw_capture *c, pid_t pid)
{
	char path[64], file[PATH_MAX + 64], shown[PATH_MAX], line[PATH_MAX + 128];
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, shown, sizeof(shown) - 1);
	if (n > 0) {
		shown[n] = 0;
		consider_path(c, path, shown, 0, 0);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char range[64], perms[8], *p;

		if (sscanf(line, "%63s %7s", range, perms) != 2 || !strchr(perms, 'x'))
			continue;
		p = strchr(line, '/');
		if (!p)
			continue;
		p[strcspn(p, "\n")] = 0;
		if (!is_libssl(p) || strstr(p, " (deleted)"))
			continue;
		/* map_files names exactly the mapped inode, even inside a
		 * container's mount namespace */
		snprintf(file, sizeof(file), "/proc/%d/map_files/%s", (int)pid, range);
		consider_path(c, file, p, 0, 0);
	}
	fclose(f);
}

static void scan_pid_cb(pid_t pid, void *ud)
{
	if (pid != getpid())
		scan_pid(ud, pid);
}

static void scan_all(struct lw_capture *c)
{
	static const char *const dirs[] = {
		"/usr/lib/x86_64-linux-gnu",
		"/lib/x86_64-linux-gnu",
		"/usr/lib/aarch64-linux-gnu",
		"/lib/aarch64-linux-gnu",
		"/usr/lib64",
		"/lib64",
		"/usr/lib",
		"/lib",
		"/usr/local/lib",
		"/usr/local/lib64",
	};
	if (c->o.only_pid) {
		scan_pid(c, c->o.only_pid);
		return;
	}
	/* the system's libssl: processes that map it later are covered from
	 * their first instruction, the kernel installs probes at mmap */
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char pat[PATH_MAX];
		glob_t g;

		snprintf(pat, sizeof(pat), "%s/libssl.so.*", dirs[i]);
		if (glob(pat, 0, NULL, &g) == 0) {
			for (size_t k = 0; k < g.gl_pathc; k++) {
				char real[PATH_MAX];

				if (realpath(g.gl_pathv[k], real))
					consider_path(c, real, real, 0, 0);
			}
		}
		globfree(&g);
	}
	lw_for_each_pid(scan_pid_cb, c);
}

static void on_libmap(struct lw_capture *c, const struct lw_libmap_rec *r)
{
	char fdpath[64], shown[PATH_MAX];
	ssize_t n;

	if (!c->closing && (!c->o.only_pid || (pid_t)r->h.pid == c->o.only_pid)) {
		snprintf(fdpath, sizeof(fdpath), "/proc/%u/fd/%d", r->h.pid, r->fd);
		n = readlink(fdpath, shown, sizeof(shown) - 1);
		if (n > 0) {
			shown[n] = 0;
			consider_path(c, fdpath, shown, r->dev, r->ino);
		} else {
			lw_warn("pid %u mapped %.64s but vanished before it could be hooked",
				r->h.pid, r->name);
		}
	}
	if (r->stopped && kill((pid_t)r->h.pid, SIGCONT) != 0 && errno != ESRCH)
		lw_warn("cannot resume pid %u: %s", r->h.pid, strerror(errno));
}

static void on_exec(struct lw_capture *c, const struct lw_exec_rec *r)
{
	char path[64], shown[PATH_MAX];
	ssize_t n;

	if (c->closing || (c->o.only_pid && (pid_t)r->h.pid != c->o.only_pid))
		return;
	snprintf(path, sizeof(path), "/proc/%u/exe", r->h.pid);
	n = readlink(path, shown, sizeof(shown) - 1);
	if (n <= 0)
		return; /* already gone */
	shown[n] = 0;
	consider_path(c, path, shown, 0, 0);
}

static int on_ring(void *ctx, void *data, size_t len)
{
	struct lw_capture *c = ctx;
	const struct lw_rec *r = data;

	if (len < sizeof(*r))
		return 0;
	if (r->type == LW_REC_LIBMAP && len >= sizeof(struct lw_libmap_rec))
		on_libmap(c, data);
	else if (r->type == LW_REC_EXEC && len >= sizeof(struct lw_exec_rec))
		on_exec(c, data);
	if (c->o.on_record)
		c->o.on_record(r, len, c->o.ud);
	return 0;
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1u << 16;

	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

struct lw_capture *lw_capture_open(const struct lw_capture_opts *o)
{
	struct lw_capture *c = lw_xcalloc(1, sizeof(*c));
	struct capture_bpf *s;
	int err;

	c->o = *o;
	if (!c->o.capture_max)
		c->o.capture_max = 1u << 20;
	if (c->o.capture_max > LW_CAPTURE_CEIL)
		c->o.capture_max = LW_CAPTURE_CEIL;
	c->o.ring_bytes = pow2_at_least(c->o.ring_bytes ? c->o.ring_bytes : 32u << 20);
	libbpf_set_print(libbpf_print);

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		lw_err("kernel BTF (/sys/kernel/btf/vmlinux) is missing: this kernel was built "
		       "without CONFIG_DEBUG_INFO_BTF, which leakwatch needs");
		goto fail;
	}
	if (ensure_mount("/sys/kernel/tracing", "tracefs", 0x74726163) ||
	    ensure_mount("/sys/fs/bpf", "bpf", 0xcafe4a11))
		goto fail;

	s = c->skel = capture_bpf__open();
	if (!s) {
		lw_err("cannot open BPF object: %s", strerror(errno));
		goto fail;
	}
	s->rodata->capture_max = c->o.capture_max;
	s->rodata->self_pid = (uint32_t)getpid();
	s->rodata->stop_new_libs = c->o.stop_new_libs;
	/* batch wakeups, but wake well before a small ring can fill */
	s->rodata->wakeup_bytes =
		c->o.ring_bytes / 8 < (256u << 10) ? c->o.ring_bytes / 8 : 256u << 10;
	bpf_map__set_max_entries(s->maps.events, c->o.ring_bytes);
	{
		struct bpf_map *m[] = {s->maps.cgroup_policy, s->maps.pid_policy, s->maps.denied,
				       s->maps.watched};
		int fds[] = {c->o.cgroup_policy_fd, c->o.pid_policy_fd, c->o.denied_fd,
			     c->o.watched_fd};

		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			if (fds[i] <= 0)
				continue;
			err = bpf_map__reuse_fd(m[i], fds[i]);
			if (err) {
				lw_err("cannot share the gates' map %s: %s", bpf_map__name(m[i]),
				       strerror(-err));
				goto fail;
			}
		}
	}
	err = capture_bpf__load(s);
	if (err) {
		lw_err("cannot load BPF programs: %s%s", strerror(-err),
		       err == -EPERM ? " (needs root, or CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN)"
				     : " (run with -v for the verifier log)");
		goto fail;
	}
	/* tracepoints: identity from syscalls, process lifecycle */
	{
		struct bpf_program *tps[] = {
			s->progs.tp_enter_write,    s->progs.tp_enter_writev,
			s->progs.tp_enter_sendto,   s->progs.tp_enter_sendmsg,
			s->progs.tp_enter_read,	    s->progs.tp_enter_readv,
			s->progs.tp_enter_recvfrom, s->progs.tp_enter_recvmsg,
			s->progs.tp_exec,	    s->progs.tp_exit,
		};
		struct bpf_link **lk[] = {
			&s->links.tp_enter_write,    &s->links.tp_enter_writev,
			&s->links.tp_enter_sendto,   &s->links.tp_enter_sendmsg,
			&s->links.tp_enter_read,     &s->links.tp_enter_readv,
			&s->links.tp_enter_recvfrom, &s->links.tp_enter_recvmsg,
			&s->links.tp_exec,	     &s->links.tp_exit,
		};

		for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
			*lk[i] = bpf_program__attach(tps[i]);
			if (!*lk[i]) {
				lw_err("cannot attach %s: %s", bpf_program__section_name(tps[i]),
				       strerror(errno));
				goto fail;
			}
		}
	}
	c->rb = ring_buffer__new(bpf_map__fd(s->maps.events), on_ring, c, NULL);
	if (!c->rb) {
		lw_err("cannot set up the ring buffer: %s", strerror(errno));
		goto fail;
	}
	scan_all(c);
	/* only now: every library found above is known and will not pause anyone */
	c->mmap_link = bpf_program__attach(s->progs.tp_enter_mmap);
	if (!c->mmap_link) {
		lw_err("cannot attach %s: %s", bpf_program__section_name(s->progs.tp_enter_mmap),
		       strerror(errno));
		goto fail;
	}
	return c;
fail:
	lw_capture_close(c);
	return NULL;
}

int lw_capture_poll(struct lw_capture *c, int timeout_ms)
{
	int n = ring_buffer__poll(c->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

int lw_capture_fd(struct lw_capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int lw_capture_consume(struct lw_capture *c)
{
	return ring_buffer__consume(c->rb);
}

void lw_capture_stats(struct lw_capture *c, uint64_t out[LW_ST__MAX])
{
	lw_percpu_sum(c->skel->maps.stats, LW_ST__MAX, out);
}

const char *lw_capture_target_path(struct lw_capture *c, uint32_t target)
{
	return target < c->ntargets ? c->byid[target]->path : "";
}

size_t lw_capture_ntargets(struct lw_capture *c)
{
	return c->nhooked;
}

int lw_capture_kmatch_install(struct lw_capture *c, struct lwm_table *t)
{
	uint32_t zero = 0;
	int inner, err;

	t->gen = ++c->kgen;
	/* a new inner map, filled, then swapped in: a write being walked
	 * finishes with the table it started with */
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "lw_kmatch", sizeof(uint32_t), sizeof(*t), 1,
			       NULL);
	if (inner < 0)
		return -errno;
	err = bpf_map_update_elem(inner, &zero, t, BPF_ANY);
	if (!err)
		err = bpf_map__update_elem(c->skel->maps.kmatch, &zero, sizeof(zero), &inner,
					   sizeof(inner), BPF_ANY);
	err = err ? -errno : 0;
	close(inner); /* the outer map holds it now */
	return err;
}

void lw_capture_close(struct lw_capture *c)
{
	if (!c)
		return;
	/* stop pausing processes first, then resume any whose record is
	 * still queued */
	bpf_link__destroy(c->mmap_link);
	c->mmap_link = NULL;
	c->closing = true;
	if (c->rb) {
		c->o.on_record = NULL;
		ring_buffer__consume(c->rb);
		ring_buffer__free(c->rb);
	}
	for (size_t i = 0; i < c->ntargets; i++) {
		for (int k = 0; k < c->byid[i]->nlinks; k++)
			bpf_link__destroy(c->byid[i]->links[k]);
		free(c->byid[i]);
	}
	free(c->byid);
	lw_hmap_free(&c->files);
	capture_bpf__destroy(c->skel);
	free(c);
}

/* ---- for the agent's metrics and self-check (docs/running.md) ---- */

void lw_capture_each_target(struct lw_capture *c,
			    void (*fn)(const char *path, bool hooked, int nlinks, int nfailed,
				       void *ud),
			    void *ud)
{
	for (size_t i = 0; i < c->ntargets; i++) {
		const struct target *t = c->byid[i];

		fn(t->path, t->hooked, t->nlinks, t->nfailed, ud);
	}
}

void lw_capture_each_link(struct lw_capture *c, lw_link_fn fn, void *ud)
{
	lw_skel_each_link(c->skel->skeleton, fn, ud);
	if (c->mmap_link)
		fn(c->mmap_link, "tp_enter_mmap", bpf_program__fd(c->skel->progs.tp_enter_mmap),
		   ud);
	for (size_t i = 0; i < c->ntargets; i++)
		for (int k = 0; k < c->byid[i]->nlinks; k++)
			fn(c->byid[i]->links[k], c->byid[i]->path, -1, ud);
}

int lw_capture_ring_fd(struct lw_capture *c)
{
	return bpf_map__fd(c->skel->maps.events);
}
