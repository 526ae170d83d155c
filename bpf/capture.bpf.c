// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * capture.bpf.c — plaintext capture from TLS libraries (OpenSSL 1.1/3.x API).
 *
 * Uprobes on SSL_write/SSL_write_ex/SSL_read/SSL_read_ex remember the
 * caller's buffer at entry and copy what the call actually moved at return,
 * in chunks of at most LW_CHUNK_MAX bytes, each reserved in the ring buffer
 * at its exact size. Connection identity comes from SSL_set_fd, SSL_ctrl
 * (SNI) and the syscalls the thread makes while inside the SSL call, which
 * name the socket; no kprobes are needed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "leakwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define PROT_EXEC 0x4
#define SIGSTOP 19
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55

/* Set by user space before load. */
const volatile __u32 capture_max = 1 << 20;
const volatile __u32 self_pid = 0;
const volatile __u8 stop_new_libs = 1;
/* Wake the consumer only once this much is queued (it also polls on a short
 * timer): one wakeup per record costs a context switch per SSL call. */
const volatile __u32 wakeup_bytes = 256 << 10;

/* Connection ids are unique for the life of one loaded program set. */
__u64 next_conn_id = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20); /* resized by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LW_ST__MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct conn_key {
	__u32 pid;
	__u32 _pad;
	__u64 ssl;
};

struct conn_state {
	__u64 conn_id;
	__u32 seq[2];
	__s32 fd;
	__u32 target;
	struct lw_addr dst;
	struct lw_addr src;
	char sni[LW_SNI_LEN];
};

/* The SSL object of every connection seen, per process. LRU: a process that
 * leaks SSL objects (or dies without SSL_free) cannot exhaust it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conns SEC(".maps");

struct call_args {
	__u64 ssl;
	__u64 buf;
	__u64 num;
	__u64 outlen; /* size_t * of the _ex variants, 0 otherwise */
	__u32 target;
	__u8 func;
	__u8 egress;
};

/* Threads currently inside a hooked SSL read/write call. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call_args);
} active SEC(".maps");

/* Threads whose last SSL write did not reveal the socket (memory BIOs, as in
 * node): the next egress syscall of the thread carries its ciphertext. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn_key);
} unbound SEC(".maps");

/* Library files user space has already examined (hooked or not). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lw_file_key);
	__type(value, __u8);
} known_files SEC(".maps");

static __always_inline void stat_add(__u32 idx, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&stats, &idx);

	if (p)
		__sync_fetch_and_add(p, v);
}

static __always_inline __u64 wake_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP;
}

static __always_inline void rec_head(struct lw_rec *h, __u32 type)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->_pad = 0;
	h->ts_ns = bpf_ktime_get_ns();
}

static struct conn_state *conn_get(__u32 pid, __u64 ssl, __u32 target)
{
	struct conn_key k = { .pid = pid, .ssl = ssl };
	struct conn_state *c = bpf_map_lookup_elem(&conns, &k);
	struct conn_state init = {};

	if (c)
		return c;
	init.conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
	init.fd = -1;
	init.target = target;
	bpf_map_update_elem(&conns, &k, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&conns, &k);
}

static void emit_conn(struct conn_state *c)
{
	struct lw_conn_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		stat_add(LW_ST_META_DROPS, 1);
		return;
	}
	rec_head(&r->h, LW_REC_CONN);
	r->conn_id = c->conn_id;
	r->fd = c->fd;
	r->target = c->target;
	r->dst = c->dst;
	r->src = c->src;
	__builtin_memcpy(r->sni, c->sni, sizeof(r->sni));
	bpf_ringbuf_submit(r, wake_flags());
}

static struct file *fd_file(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **arr;
	struct file *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* Fill dst/src from the TCP socket behind fd. False when fd is no socket. */
static bool sock_addrs(__u32 fd, struct lw_addr *dst, struct lw_addr *src)
{
	struct file *f = fd_file(fd);
	struct socket *sock;
	struct sock *sk;
	__u16 fam;

	if (!f)
		return false;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return false;
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return false;
	fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (fam != AF_INET && fam != AF_INET6)
		return false;
	dst->family = src->family = fam;
	dst->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	src->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (fam == AF_INET) {
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(dst->addr, &d, 4);
		__builtin_memcpy(src->addr, &s, 4);
	} else {
		BPF_CORE_READ_INTO(dst->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(src->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
	return true;
}

/* Bind a connection to its socket once; tell user space what was learned.
 * Only a connected TCP socket counts (SSL_set_fd may come before connect). */
static bool conn_bind_fd(struct conn_state *c, __s32 fd)
{
	struct lw_addr dst = {}, src = {};

	if (fd < 0 || c->fd == fd)
		return false;
	if (!sock_addrs(fd, &dst, &src) || !dst.port)
		return false;
	c->dst = dst;
	c->src = src;
	c->fd = fd;
	emit_conn(c);
	return true;
}

/* ---- message capture ---------------------------------------------------- */

struct emit_ctx {
	__u64 buf;
	__u64 conn_id;
	__u64 cgroup_id;
	__u64 ts_ns;
	__u64 pid_tgid;
	__u32 seq;
	__u32 total;
	__u32 cap;
	__u32 target;
	__u8 dir;
	__u8 func;
	char comm[LW_COMM_LEN];
};

/* Copy `n` (< 2*LW_CHUNK_MAX) bytes from user memory into the reserved record
 * at `off`. bpf_dynptr_data() only hands out constant-size slices, so the
 * length is cut into its power-of-two parts: exact reservation, no scratch
 * buffer shared between tasks. Returns false on a fault. */
#define COPY_PART(bit)                                                        \
	if (n & (1u << (bit))) {                                              \
		void *p = bpf_dynptr_data(dp, off, 1u << (bit));              \
		if (!p)                                                       \
			return false;                                         \
		if (bpf_probe_read_user(p, 1u << (bit), (void *)src))         \
			ok = false;                                           \
		off += 1u << (bit);                                           \
		src += 1u << (bit);                                           \
	}

static __always_inline bool copy_user(struct bpf_dynptr *dp, __u32 off, __u64 src, __u32 n)
{
	bool ok = true;

	COPY_PART(14) COPY_PART(13) COPY_PART(12) COPY_PART(11) COPY_PART(10)
	COPY_PART(9) COPY_PART(8) COPY_PART(7) COPY_PART(6) COPY_PART(5)
	COPY_PART(4) COPY_PART(3) COPY_PART(2) COPY_PART(1) COPY_PART(0)
	return ok;
}

static long emit_chunk(__u32 i, void *arg)
{
	struct emit_ctx *e = arg;
	struct bpf_dynptr dp;
	struct lw_chunk *h;
	__u32 off = i * LW_CHUNK_MAX;
	__u32 n;

	if (off >= e->cap)
		return 1;
	n = e->cap - off;
	if (n > LW_CHUNK_MAX)
		n = LW_CHUNK_MAX;
	if (bpf_ringbuf_reserve_dynptr(&events, sizeof(*h) + n, 0, &dp)) {
		bpf_ringbuf_discard_dynptr(&dp, 0);
		stat_add(LW_ST_RB_DROP_CHUNKS, 1);
		stat_add(LW_ST_RB_DROP_BYTES, n);
		return 0; /* later chunks may still fit; user space sees the gap */
	}
	h = bpf_dynptr_data(&dp, 0, sizeof(*h));
	if (!h) {
		bpf_ringbuf_discard_dynptr(&dp, 0);
		return 1;
	}
	h->h.type = LW_REC_CHUNK;
	h->h.pid = e->pid_tgid >> 32;
	h->h.tid = (__u32)e->pid_tgid;
	h->h._pad = 0;
	h->h.ts_ns = e->ts_ns;
	h->conn_id = e->conn_id;
	h->cgroup_id = e->cgroup_id;
	h->seq = e->seq;
	h->total_len = e->total;
	h->cap_len = e->cap;
	h->offset = off;
	h->len = n;
	h->target = e->target;
	h->dir = e->dir;
	h->func = e->func;
	h->_pad = 0;
	h->flags = (off == 0 ? LW_F_FIRST : 0) | (off + n >= e->cap ? LW_F_LAST : 0) |
		   (e->cap < e->total ? LW_F_TRUNCATED : 0);
	__builtin_memcpy(h->comm, e->comm, sizeof(h->comm));
	if (!copy_user(&dp, sizeof(*h), e->buf + off, n))
		stat_add(LW_ST_COPY_FAULTS, 1);
	bpf_ringbuf_submit_dynptr(&dp, wake_flags());
	stat_add(LW_ST_CHUNKS, 1);
	return 0;
}

static void capture(struct call_args *a, __u64 pid_tgid, __u64 len)
{
	struct conn_state *c;
	struct emit_ctx e = {};
	__u32 nchunks;

	if (len == 0 || len > 0xffffffffULL)
		return;
	c = conn_get(pid_tgid >> 32, a->ssl, a->target);
	if (!c)
		return;
	e.dir = a->egress ? LW_DIR_EGRESS : LW_DIR_INGRESS;
	e.seq = __sync_fetch_and_add(&c->seq[e.dir & 1], 1);
	e.buf = a->buf;
	e.conn_id = c->conn_id;
	e.cgroup_id = bpf_get_current_cgroup_id();
	e.ts_ns = bpf_ktime_get_ns();
	e.pid_tgid = pid_tgid;
	e.total = len;
	e.cap = len < capture_max ? len : capture_max;
	e.target = a->target;
	e.func = a->func;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	stat_add(LW_ST_MSGS, 1);
	stat_add(LW_ST_BYTES, len);
	if (e.cap < e.total) {
		stat_add(LW_ST_TRUNC_MSGS, 1);
		stat_add(LW_ST_TRUNC_BYTES, e.total - e.cap);
	}
	nchunks = (e.cap + LW_CHUNK_MAX - 1) / LW_CHUNK_MAX;
	bpf_loop(nchunks, emit_chunk, &e, 0);

	/* A memory BIO (node) wrote nothing to the socket yet: the thread's
	 * next egress syscall tells which socket this connection is. */
	if (a->egress && c->fd < 0) {
		struct conn_key k = { .pid = pid_tgid >> 32, .ssl = a->ssl };

		bpf_map_update_elem(&unbound, &pid_tgid, &k, BPF_ANY);
	}
}

static __always_inline int enter(struct pt_regs *ctx, __u8 func, bool egress, __u64 outlen)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_args a = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.num = PT_REGS_PARM3(ctx),
		.outlen = outlen,
		.target = bpf_get_attach_cookie(ctx),
		.func = func,
		.egress = egress,
	};

	if ((id >> 32) == self_pid)
		return 0;
	if (bpf_map_lookup_elem(&active, &id))
		stat_add(LW_ST_NESTED, 1);
	bpf_map_update_elem(&active, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int leave(struct pt_regs *ctx, bool ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_args *a = bpf_map_lookup_elem(&active, &id);
	int ret = (int)PT_REGS_RC(ctx); /* every hooked function returns int */
	__u64 len = 0;

	if (!a)
		return 0;
	if (ex) {
		if (ret == 1 && a->outlen)
			bpf_probe_read_user(&len, sizeof(len), (void *)a->outlen);
	} else if (ret > 0) {
		len = ret;
	}
	if (len)
		capture(a, id, len);
	bpf_map_delete_elem(&active, &id);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter)
{
	return enter(ctx, LW_FN_SSL_WRITE, true, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_leave)
{
	return leave(ctx, false);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter)
{
	return enter(ctx, LW_FN_SSL_WRITE_EX, true, PT_REGS_PARM4(ctx));
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ex_leave)
{
	return leave(ctx, true);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter)
{
	return enter(ctx, LW_FN_SSL_READ, false, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_leave)
{
	return leave(ctx, false);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter)
{
	return enter(ctx, LW_FN_SSL_READ_EX, false, PT_REGS_PARM4(ctx));
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_leave)
{
	return leave(ctx, true);
}

/* SSL_set_tlsext_host_name() is a macro over SSL_ctrl(ssl, 55, 0, name). */
SEC("uprobe")
int BPF_KPROBE(ssl_ctrl_enter, void *ssl, int cmd, long larg, void *parg)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_state *c;

	if (cmd != SSL_CTRL_SET_TLSEXT_HOSTNAME || larg != 0 || !parg || (id >> 32) == self_pid)
		return 0;
	c = conn_get(id >> 32, (__u64)ssl, bpf_get_attach_cookie(ctx));
	if (!c)
		return 0;
	if (bpf_probe_read_user_str(c->sni, sizeof(c->sni), parg) <= 0)
		c->sni[0] = 0;
	emit_conn(c);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_enter, void *ssl, int fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_state *c;

	if ((id >> 32) == self_pid)
		return 0;
	c = conn_get(id >> 32, (__u64)ssl, bpf_get_attach_cookie(ctx));
	if (c)
		conn_bind_fd(c, fd);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key k = { .pid = id >> 32, .ssl = (__u64)ssl };
	struct conn_state *c = bpf_map_lookup_elem(&conns, &k);
	struct lw_close_rec *r;

	if (!c)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (r) {
		rec_head(&r->h, LW_REC_CLOSE);
		r->conn_id = c->conn_id;
		bpf_ringbuf_submit(r, wake_flags());
	} else {
		stat_add(LW_ST_META_DROPS, 1);
	}
	bpf_map_delete_elem(&conns, &k);
	return 0;
}

/* ---- identity from the syscalls made inside an SSL call ----------------- */

static __always_inline int on_sock_syscall(__s32 fd, bool egress)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_args *a = bpf_map_lookup_elem(&active, &id);
	struct conn_key k, *u = NULL;
	struct conn_state *c;

	if (a) {
		k.pid = id >> 32;
		k._pad = 0;
		k.ssl = a->ssl;
		c = conn_get(k.pid, k.ssl, a->target);
	} else if (egress && (u = bpf_map_lookup_elem(&unbound, &id))) {
		k = *u;
		c = bpf_map_lookup_elem(&conns, &k);
	} else {
		return 0;
	}
	if (!c)
		return 0;
	/* a write to a pipe or a log file is not the ciphertext: keep waiting
	 * for the socket write that is */
	if (c->fd < 0 && conn_bind_fd(c, fd) && u)
		bpf_map_delete_elem(&unbound, &id);
	else if (u && c->fd >= 0)
		bpf_map_delete_elem(&unbound, &id);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int tp_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tp_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true);
}

SEC("tracepoint/syscalls/sys_enter_read")
int tp_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int tp_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tp_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tp_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false);
}

/* ---- process lifecycle and target discovery ----------------------------- */

SEC("tracepoint/sched/sched_process_exec")
int tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct lw_exec_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	__u32 off = ctx->__data_loc_filename & 0xffff;

	if (!r) {
		stat_add(LW_ST_META_DROPS, 1);
		return 0;
	}
	rec_head(&r->h, LW_REC_EXEC);
	r->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), (void *)ctx + off);
	/* now: a new executable may need hooking before it gets far */
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tp_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lw_rec *r;

	bpf_map_delete_elem(&active, &id);
	bpf_map_delete_elem(&unbound, &id);
	if ((id >> 32) != (__u32)id)
		return 0; /* a thread, not the process */
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		stat_add(LW_ST_META_DROPS, 1);
		return 0;
	}
	rec_head(r, LW_REC_EXIT);
	bpf_ringbuf_submit(r, wake_flags());
	return 0;
}

/* A library that looks like libssl mapped executable, and not yet examined
 * by user space: pause the process (SIGSTOP, delivered when mmap returns)
 * until user space has hooked the file, so even a client that connects at
 * once is captured. Only ever for a file never seen before. */
SEC("tracepoint/syscalls/sys_enter_mmap")
int tp_enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
	__s32 fd = ctx->args[4];
	__u64 prot = ctx->args[2];
	__u64 id = bpf_get_current_pid_tgid();
	struct lw_file_key key = {};
	struct lw_libmap_rec *r;
	struct inode *ino;
	struct file *f;
	const unsigned char *dname;
	char name[8] = {};

	if (fd < 0 || !(prot & PROT_EXEC) || (id >> 32) == self_pid)
		return 0;
	f = fd_file(fd);
	if (!f)
		return 0;
	dname = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(name, sizeof(name), dname) < 7)
		return 0;
	/* "libssl." (OpenSSL, BoringSSL builds); not "libssl3" (NSS). */
	if (name[0] != 'l' || name[1] != 'i' || name[2] != 'b' || name[3] != 's' ||
	    name[4] != 's' || name[5] != 'l' || name[6] != '.')
		return 0;
	ino = BPF_CORE_READ(f, f_inode);
	key.ino = BPF_CORE_READ(ino, i_ino);
	key.dev = BPF_CORE_READ(ino, i_sb, s_dev);
	if (bpf_map_lookup_elem(&known_files, &key))
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		/* Without the record nobody would resume the task: do not stop. */
		stat_add(LW_ST_META_DROPS, 1);
		return 0;
	}
	rec_head(&r->h, LW_REC_LIBMAP);
	r->dev = key.dev;
	r->ino = key.ino;
	r->fd = fd;
	r->stopped = 0;
	bpf_probe_read_kernel_str(r->name, sizeof(r->name), dname);
	if (stop_new_libs && bpf_send_signal(SIGSTOP) == 0) {
		r->stopped = 1;
		stat_add(LW_ST_LIB_STOPS, 1);
	}
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP); /* a task may be waiting */
	return 0;
}
