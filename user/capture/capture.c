#include "capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <elf.h>
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
	[LW_ST_PLAIN_SOCKS] = "plaintext_sockets",
	[LW_ST_NSS_OTHER] = "nspr_non_ssl_calls",
};

/*
 * The TLS stacks and what is hooked in each. Reads are copied at return (the
 * buffer is filled then); writes too, so a call that fails or moves fewer
 * bytes (non-blocking sockets) is reported as what really left. A stack is
 * hooked in a file when its `need` functions are all there.
 */
enum stack { ST_OPENSSL, ST_GNUTLS, ST_NSPR, ST_NSS_SSL, ST_GO, ST__N };

static const char *const stack_names[ST__N] = {
	[ST_OPENSSL] = "openssl", [ST_GNUTLS] = "gnutls", [ST_NSPR] = "nss",
	[ST_NSS_SSL] = "nss",	  [ST_GO] = "go",
};

enum leave { L_NONE, L_COUNT, L_EX, L_GO_RETS };

struct hook {
	enum stack stack;
	const char *sym;
	const char *enter; /* program names in capture.bpf.c */
	enum leave leave;
	bool need;
};

static const struct hook hooks[] = {
	{ST_OPENSSL, "SSL_write", "ssl_write_enter", L_COUNT, true},
	{ST_OPENSSL, "SSL_read", "ssl_read_enter", L_COUNT, true},
	{ST_OPENSSL, "SSL_write_ex", "ssl_write_ex_enter", L_EX, false},
	{ST_OPENSSL, "SSL_read_ex", "ssl_read_ex_enter", L_EX, false},
	{ST_OPENSSL, "SSL_ctrl", "ssl_ctrl_enter", L_NONE, false},
	{ST_OPENSSL, "SSL_set_tlsext_host_name", "ssl_sni_enter", L_NONE, false},
	{ST_OPENSSL, "SSL_set_fd", "ssl_set_fd_enter", L_NONE, false},
	{ST_OPENSSL, "SSL_free", "ssl_free_enter", L_NONE, false},
	{ST_GNUTLS, "gnutls_record_send", "gnutls_send_enter", L_COUNT, true},
	{ST_GNUTLS, "gnutls_record_recv", "gnutls_recv_enter", L_COUNT, true},
	{ST_GNUTLS, "gnutls_server_name_set", "gnutls_sni_enter", L_NONE, false},
	{ST_GNUTLS, "gnutls_deinit", "gnutls_deinit_enter", L_NONE, false},
	{ST_NSPR, "PR_Write", "pr_write_enter", L_COUNT, true},
	{ST_NSPR, "PR_Read", "pr_read_enter", L_COUNT, true},
	{ST_NSPR, "PR_Send", "pr_send_enter", L_COUNT, false},
	{ST_NSPR, "PR_Recv", "pr_recv_enter", L_COUNT, false},
	{ST_NSPR, "PR_Close", "pr_close_enter", L_NONE, false},
	{ST_NSS_SSL, "SSL_SetURL", "nss_seturl_enter", L_NONE, true},
	{ST_NSS_SSL, "SSL_ImportFD", NULL, L_NONE, true},
	{ST_GO, "crypto/tls.(*Conn).Write", "go_write_enter", L_GO_RETS, true},
	{ST_GO, "crypto/tls.(*Conn).Read", "go_read_enter", L_GO_RETS, true},
	{ST_GO, "crypto/tls.(*Conn).Close", "go_close_enter", L_NONE, false},
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))
/* a Go function with more returns than this is hooked partly: say so */
#define GO_RETS_MAX 32

/* Markers a TLS library linked in without symbols leaves in the file (its
 * error messages carry their source file names), and what they tell. */
static const char *const static_markers[] = {
	"BoringSSL", "ssl/ssl_lib.c", "gnutls_record_send", "crypto/tls.", "rustls",
};
static const char *const static_marker_libs[] = {
	"BoringSSL", "OpenSSL (or BoringSSL)", "GnuTLS", "Go crypto/tls", "rustls",
};

const char *lw_func_stack(unsigned func)
{
	static const char *const names[LW_FN__MAX] = {
		[LW_FN_SSL_WRITE] = "openssl",	 [LW_FN_SSL_WRITE_EX] = "openssl",
		[LW_FN_SSL_READ] = "openssl",	 [LW_FN_SSL_READ_EX] = "openssl",
		[LW_FN_GNUTLS_SEND] = "gnutls",	 [LW_FN_GNUTLS_RECV] = "gnutls",
		[LW_FN_PR_WRITE] = "nss",	 [LW_FN_PR_SEND] = "nss",
		[LW_FN_PR_READ] = "nss",	 [LW_FN_PR_RECV] = "nss",
		[LW_FN_GO_WRITE] = "go",	 [LW_FN_GO_READ] = "go",
		[LW_FN_SOCK_SEND] = "plaintext",
	};

	return func < LW_FN__MAX ? names[func] : "";
}

struct target {
	uint32_t id;
	bool hooked;
	unsigned stacks; /* bit per enum stack hooked */
	uint32_t dev;	 /* kernel encoding */
	uint64_t ino;
	char path[PATH_MAX]; /* as the process sees it */
	char flavor[16];     /* "boringssl" when the OpenSSL API is BoringSSL's */
	/* not hooked, though it holds TLS code: why ("" when it holds none
	 * that the agent knows of) */
	char why[160];
	bool stripped; /* no symbol table: static TLS cannot be located */
	int nlinks, nfailed;
	struct bpf_link **links;
};

struct lw_capture {
	struct lw_capture_opts o;
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *mmap_link;
	struct bpf_link *exit_link;
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

static void add_link(struct lw_capture *c, struct target *t, const char *prog, bool ret,
		     const char *file, uint64_t off, const char *sym)
{
	struct bpf_program *p = bpf_object__find_program_by_name(c->skel->obj, prog);
	struct bpf_link *l = p ? attach_one(c, p, ret, file, off, t->id) : NULL;

	if (!l) {
		t->nfailed++;
		lw_warn("cannot hook %s in %s: %s", sym, t->path,
			p ? strerror(errno) : "no program");
		return;
	}
	t->links = lw_xrealloc(t->links, (t->nlinks + 1) * sizeof(*t->links));
	t->links[t->nlinks++] = l;
}

/* Go functions return through RET instructions, each probed; false when they
 * cannot be found (the function then stays unhooked: an entry without its
 * returns would capture nothing). */
static bool hook_go_rets(struct lw_capture *c, struct target *t, const char *file,
			 const struct lw_elf_info *info, const struct hook *h,
			 const struct lw_elf_func *f)
{
	uint64_t rets[GO_RETS_MAX];
	int n = lw_elf_ret_offsets(file, info->machine, f->off, f->size, rets, GO_RETS_MAX);

	if (n <= 0) {
		lw_warn("cannot hook %s in %s: %s", h->sym, t->path,
			n == 0 ? "no return instruction found" : strerror(errno));
		t->nfailed++;
		return false;
	}
	for (int i = 0; i < n; i++)
		add_link(c, t, "go_ret", false, file, rets[i], h->sym);
	return true;
}

/* Go before 1.17 (1.18 on arm64) passes arguments on the stack. */
static bool go_abi_ok(const struct lw_elf_info *info, char *why, size_t n)
{
	int min = info->machine == EM_AARCH64 ? 18 : 17;

	if (info->machine != EM_X86_64 && info->machine != EM_AARCH64) {
		snprintf(why, n, "Go on this architecture is not supported");
		return false;
	}
	if (!info->go_major) {
		snprintf(why, n,
			 "Go binary whose version cannot be read: its calling "
			 "convention is unknown");
		return false;
	}
	if (info->go_major == 1 && info->go_minor < min) {
		snprintf(why, n, "%s passes arguments on the stack (Go < 1.%d): not supported",
			 info->go_version, min);
		return false;
	}
	return true;
}

/*
 * Examine a file once (by device and inode) and hook every TLS stack it
 * implements. `file` is a path the agent can open (possibly through /proc),
 * `shown` the path the application knows it by.
 */
static void consider_file(struct lw_capture *c, const char *file, const char *shown, uint32_t dev,
			  uint64_t ino)
{
	/* the hooks' symbols, then one only BoringSSL exports */
	const char *names[NHOOKS + 1];
	struct lw_elf_func f[NHOOKS + 1];
	struct lw_elf_info info;
	struct target *t = lw_hmap_get(&c->files, file_key(dev, ino));
	unsigned present = (1u << ST__N) - 1;
	char list[64] = "";
	int found;

	if (t && t->dev == dev && t->ino == ino) {
		mark_known(c, dev, ino); /* evicted from the kernel's LRU since */
		return;
	}
	t = target_new(c, dev, ino, shown);
	mark_known(c, dev, ino);
	for (size_t i = 0; i < NHOOKS; i++)
		names[i] = hooks[i].sym;
	names[NHOOKS] = "SSL_CTX_set_strict_cipher_list";
	found = lw_elf_funcs(file, names, NHOOKS + 1, f, &info);
	if (found < 0)
		return; /* not ELF */
	t->stripped = !info.has_symtab;
	for (size_t i = 0; i < NHOOKS; i++)
		if (hooks[i].need && !f[i].off)
			present &= ~(1u << hooks[i].stack);
	if ((present & (1u << ST_GO)) && !go_abi_ok(&info, t->why, sizeof(t->why)))
		present &= ~(1u << ST_GO);
	else if (info.go && !(present & (1u << ST_GO)) && t->stripped)
		snprintf(t->why, sizeof(t->why),
			 "stripped Go binary (%s): crypto/tls cannot be located without its "
			 "symbol table",
			 info.go_version[0] ? info.go_version : "version unknown");
	if (!present)
		return; /* nothing to hook */
	if ((present & (1u << ST_OPENSSL)) && f[NHOOKS].off)
		snprintf(t->flavor, sizeof(t->flavor), "boringssl");
	for (size_t i = 0; i < NHOOKS; i++) {
		const struct hook *h = &hooks[i];

		if (!(present & (1u << h->stack)) || !f[i].off || !h->enter)
			continue;
		/* a Go function is entered only if its returns are probed too */
		if (h->leave == L_GO_RETS && !hook_go_rets(c, t, file, &info, h, &f[i]))
			continue;
		add_link(c, t, h->enter, false, file, f[i].off, h->sym);
		if (h->leave == L_COUNT || h->leave == L_EX)
			add_link(c, t, h->leave == L_COUNT ? "count_leave" : "ex_leave", true, file,
				 f[i].off, h->sym);
	}
	t->hooked = t->nlinks > 0;
	if (!t->hooked)
		return;
	t->stacks = present;
	c->nhooked++;
	for (int s = 0; s < ST__N; s++)
		if ((present & (1u << s)) && !strstr(list, stack_names[s]))
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 list[0] ? "+" : "",
				 s == ST_OPENSSL && t->flavor[0] ? t->flavor : stack_names[s]);
	lw_info("hooked %s: %s%s%s (%d probes%s)", shown, list, info.go ? " " : "",
		info.go ? info.go_version : "", t->nlinks, t->nfailed ? ", some failed" : "");
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

/* The TLS libraries by file name (the same test as tls_lib_name() in
 * bpf/capture.bpf.c, which pauses a process mapping one not seen yet). */
static bool is_tls_lib(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "libssl.", 7) == 0 || strncmp(base, "libssl3.", 8) == 0 ||
	       strncmp(base, "libgnutls", 9) == 0 || strncmp(base, "libnspr4", 8) == 0;
}

/* Calls fn for each executable file mapping of pid: `file` opens exactly
 * the mapped inode (/proc/PID/map_files, also inside a container's mount
 * namespace), `shown` is the path the process knows it by. False when the
 * process is gone. */
static bool each_exec_mapping(pid_t pid, void (*fn)(const char *file, const char *shown, void *ud),
			      void *ud)
{
	char path[64], file[PATH_MAX + 64], line[PATH_MAX + 128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char range[64], perms[8], *p;

		if (sscanf(line, "%63s %7s", range, perms) != 2 || !strchr(perms, 'x'))
			continue;
		p = strchr(line, '/');
		if (!p)
			continue;
		p[strcspn(p, "\n")] = 0;
		if (strstr(p, " (deleted)"))
			continue;
		snprintf(file, sizeof(file), "/proc/%d/map_files/%s", (int)pid, range);
		fn(file, p, ud);
	}
	fclose(f);
	return true;
}

static void scan_mapping(const char *file, const char *shown, void *ud)
{
	if (is_tls_lib(shown))
		consider_path(ud, file, shown, 0, 0);
}

/* Executable and TLS library mappings of one process. */
static void scan_pid(struct lw_capture *c, pid_t pid)
{
	char path[64], shown[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, shown, sizeof(shown) - 1);
	if (n > 0) {
		shown[n] = 0;
		consider_path(c, path, shown, 0, 0);
	}
	each_exec_mapping(pid, scan_mapping, c);
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
	 * their first instruction, the kernel installs probes at mmap. The
	 * other libraries (GnuTLS, NSS) are hooked when a process maps them
	 * (paused until then, tp_enter_mmap): each probe costs the agent's
	 * start and stop about 0.1 s here, which a host that never loads them
	 * should not pay. */
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

	if (!c->closing && (!c->o.only_pid || (pid_t)r->h.pid == c->o.only_pid)) {
		snprintf(path, sizeof(path), "/proc/%u/exe", r->h.pid);
		n = readlink(path, shown, sizeof(shown) - 1);
		if (n > 0) {
			shown[n] = 0;
			consider_path(c, path, shown, 0, 0);
		}
	}
	if (r->stopped && kill((pid_t)r->h.pid, SIGCONT) != 0 && errno != ESRCH)
		lw_warn("cannot resume pid %u: %s", r->h.pid, strerror(errno));
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
		const struct lw_shared_fds *sh = &c->o.shared;
		struct bpf_map *m[] = {s->maps.cgroup_policy, s->maps.pid_policy,
				       s->maps.denied,	      s->maps.watched,
				       s->maps.provider_socks, s->maps.provider_pids};
		int fds[] = {sh->cgroup_policy, sh->pid_policy,	   sh->denied,
			     sh->watched,	sh->provider_socks, sh->provider_pids};

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
	/* the syscalls' exit, for plaintext writes: only with the gates'
	 * provider sockets, without which no socket is ever found to carry
	 * plaintext to a provider */
	if (c->o.shared.provider_socks > 0) {
		c->exit_link = bpf_program__attach(s->progs.tp_exit_send);
		if (!c->exit_link) {
			lw_err("cannot attach %s: %s", bpf_program__section_name(s->progs.tp_exit_send),
			       strerror(errno));
			goto fail;
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
	if (target == LW_TARGET_SOCKET)
		return "socket";
	return target < c->ntargets ? c->byid[target]->path : "";
}

size_t lw_capture_ntargets(struct lw_capture *c)
{
	return c->nhooked;
}

/* The target of a mapped file, examined now if it was not yet (its exec or
 * mmap record may still be queued). */
static struct target *target_of(struct lw_capture *c, const char *file, const char *shown)
{
	struct stat st;
	struct target *t;

	if (stat(file, &st) != 0)
		return NULL;
	t = lw_hmap_get(&c->files, file_key(kdev(st.st_dev), st.st_ino));
	if (!t || t->dev != kdev(st.st_dev) || t->ino != st.st_ino) {
		consider_path(c, file, shown, kdev(st.st_dev), st.st_ino);
		t = lw_hmap_get(&c->files, file_key(kdev(st.st_dev), st.st_ino));
	}
	return t && t->dev == kdev(st.st_dev) && t->ino == st.st_ino ? t : NULL;
}

static void cov_add(char *out, size_t n, const struct target *t)
{
	size_t len = strlen(out);

	for (int s = 0; s < ST__N; s++) {
		const char *name = s == ST_OPENSSL && t->flavor[0] ? t->flavor : stack_names[s];

		if (!(t->stacks & (1u << s)) || s == ST_NSS_SSL)
			continue;
		snprintf(out + len, n - len, "%s%s (%s)", len ? ", " : "", name, t->path);
		len = strlen(out);
	}
}

struct cov {
	struct lw_capture *c;
	char *out;
	size_t n;
	bool jvm;
};

static void cov_mapping(const char *file, const char *shown, void *ud)
{
	struct cov *cv = ud;
	struct target *t;

	if (strstr(shown, "/libjvm.so"))
		cv->jvm = true;
	if (!is_tls_lib(shown))
		return;
	t = target_of(cv->c, file, shown);
	if (t && t->hooked && !strstr(cv->out, t->path))
		cov_add(cv->out, cv->n, t);
}

int lw_capture_coverage(struct lw_capture *c, pid_t pid, const char *exe_hint, char *out,
			size_t n)
{
	char exe_proc[64], shown[PATH_MAX];
	const char *exe_file = exe_proc;
	struct cov cv = {.c = c, .out = out, .n = n};
	struct target *exe;
	bool gone;
	ssize_t len;

	out[0] = 0;
	snprintf(exe_proc, sizeof(exe_proc), "/proc/%d/exe", (int)pid);
	len = readlink(exe_proc, shown, sizeof(shown) - 1);
	gone = len <= 0;
	if (gone) {
		/* a fast client: its executable (as named at exec) still tells
		 * much; its libraries are unknown */
		if (!exe_hint || !exe_hint[0])
			return -1;
		snprintf(shown, sizeof(shown), "%s", exe_hint);
		exe_file = exe_hint;
	} else {
		shown[len] = 0;
	}
	exe = target_of(c, exe_file, shown);
	if (exe && exe->hooked)
		cov_add(out, n, exe);
	if (!gone)
		each_exec_mapping(pid, cov_mapping, &cv);
	if (out[0])
		return 1;
	if (cv.jvm)
		snprintf(out, n, "Java: TLS runs inside the JVM (JSSE), which uprobes cannot read");
	else if (exe && exe->why[0])
		snprintf(out, n, "%s", exe->why);
	else if (exe && exe->stripped) {
		int m = lw_file_contains(exe_file, static_markers,
					 sizeof(static_markers) / sizeof(static_markers[0]));

		if (m >= 0)
			snprintf(out, n,
				 "stripped binary with %s linked in: its functions cannot be "
				 "located without a symbol table",
				 static_marker_libs[m]);
	}
	if (out[0])
		return 0;
	if (gone)
		return -1; /* it may have used a library: its messages will tell */
	snprintf(out, n, "no TLS stack the agent can hook (rustls, or TLS linked in under other "
			 "names?)");
	return 0;
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
	bpf_link__destroy(c->exit_link);
	for (size_t i = 0; i < c->ntargets; i++) {
		for (int k = 0; k < c->byid[i]->nlinks; k++)
			bpf_link__destroy(c->byid[i]->links[k]);
		free(c->byid[i]->links);
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
				       const char *why, void *ud),
			    void *ud)
{
	for (size_t i = 0; i < c->ntargets; i++) {
		const struct target *t = c->byid[i];

		fn(t->path, t->hooked, t->nlinks, t->nfailed, t->why, ud);
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
