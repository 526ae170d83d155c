// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * capture.bpf.c — plaintext capture from TLS libraries and provider sockets.
 *
 * Uprobes on the write/read calls of each TLS stack (OpenSSL and BoringSSL's
 * SSL_write/SSL_read families, GnuTLS's gnutls_record_send/recv, NSS's
 * PR_Write/PR_Send/PR_Read/PR_Recv on SSL descriptors, Go's crypto/tls
 * (*Conn).Write/Read) remember the caller's buffer at entry and copy what
 * the call actually moved at return, in chunks of at most LW_CHUNK_MAX
 * bytes, each reserved in the ring buffer at its exact size. Connection
 * identity comes from the library (SSL_set_fd, SNI setters, Go's net.Conn)
 * and from the syscalls the thread makes while inside the call, which name
 * the socket; no kprobes are needed. Plaintext HTTP written to a provider's
 * address is captured at the write syscalls themselves.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "leakwatch.h"
#include "lwgates.h"
#include "lwmatch.h"
#include "lwshared.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define PROT_EXEC 0x4
#define SIGSTOP 19
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define PR_DESC_LAYERED 4 /* NSPR: a layer pushed on a socket (SSL's) */

/* Go's register ABI (Go >= 1.17 on amd64, >= 1.18 on arm64): arguments and
 * results in RAX, RBX, RCX (X0, X1, X2), the running goroutine in R14 (X28). */
#if defined(__TARGET_ARCH_x86)
#define GO_ARG1(x) ((x)->ax)
#define GO_ARG2(x) ((x)->bx)
#define GO_ARG3(x) ((x)->cx)
#define GO_G(x) ((x)->r14)
#elif defined(__TARGET_ARCH_arm64)
#define GO_ARG1(x) PT_REGS_PARM1(x)
#define GO_ARG2(x) PT_REGS_PARM2(x)
#define GO_ARG3(x) PT_REGS_PARM3(x)
#define GO_G(x) (((const struct user_pt_regs *)(x))->regs[28])
#endif

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
	__u32 kgen;	/* matcher table the state belongs to */
	__u16 kstate;	/* matcher state after the last egress write */
	__u16 poisoned; /* 0, or the policy index + 1 of a content verdict */
	/* a verdict taken before the socket was known: confirmed (or dropped,
	 * when the socket is no watched provider socket) once it is */
	__u8 kpending;
	__u8 krule; /* kernel rule index, or LW_VERDICT_CANCEL */
	__u32 kseq, kend;
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
	__u64 ssl; /* the library's connection object (SSL*, session, fd, Conn) */
	__u64 buf;
	__u64 num;
	__u64 outlen; /* size_t * of the _ex variants, 0 otherwise */
	__u32 target;
	__u8 func;
	__u8 egress;
	__u8 blocked; /* refused by a content verdict: captured even if it fails */
	__u8 ret64;   /* the call returns a 64-bit count (ssize_t), not an int */
	__u8 own_fd;  /* the socket comes from the library, not from the thread's
		       * next syscall (Go: goroutines move between threads) */
};

/* Threads currently inside a hooked SSL read/write call. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct call_args);
} active SEC(".maps");

/* Go calls in progress, by goroutine: a goroutine that blocks in Write may
 * resume on another thread, so the thread id cannot pair entry and return.
 * LRU: a call that never returns (a panic unwinding) cannot fill it. */
struct go_key {
	__u32 pid;
	__u32 _pad;
	__u64 g;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct call_args);
} goactive SEC(".maps");

/* Provider sockets (by cookie) by what their first write was: plaintext
 * HTTP (captured at the syscalls) or anything else (TLS: left to the
 * library probes). */
#define PLAIN_HTTP 1
#define PLAIN_OTHER 2

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} plain_socks SEC(".maps");

/* A plaintext write in progress: captured at the syscall's exit, for what
 * the kernel accepted (a non-blocking socket may take less). */
struct plain_args {
	__u64 sk;
	__u64 buf; /* one buffer, or an iovec array */
	__u64 len; /* its length, or the number of iovecs */
	__u8 iov;
	__u8 blocked;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct plain_args);
} plain_active SEC(".maps");

/* Threads whose last SSL write did not reveal the socket (memory BIOs, as in
 * node): the next egress syscall of the thread carries its ciphertext. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn_key);
} unbound SEC(".maps");

/* cgroup_policy, pid_policy, denied, watched: the gates' maps (bpf/lwshared.bpf.h) */

/* The matcher table (bpf/lwmatch.h), swapped whole by user space. Sizes
 * rather than BTF types: clang emits only a forward declaration of a struct
 * reached through an inner map definition. */
struct kmatch_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct lwm_table));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct kmatch_table);
} kmatch SEC(".maps");

/* Files user space has already examined (hooked or not): libraries mapped
 * and, in selected services, programs exec'd are not paused for them. LRU:
 * a host with more files than this evicts the least used, which user space
 * marks again when it sees them (a pause, not a stuck table). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
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
	struct conn_key k = {.pid = pid, .ssl = ssl};
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

/* The socket behind fd, NULL when fd is no socket. */
static struct sock *fd_sock(__u32 fd)
{
	struct file *f = fd_file(fd);
	struct socket *sock;

	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* Fill dst/src from the TCP socket sk. False when it is no IP socket. */
static bool sk_addrs(struct sock *sk, struct lw_addr *dst, struct lw_addr *src)
{
	__u16 fam;

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
		/* the whole 16 bytes: BPF_CORE_READ_INTO would read sizeof(*addr) = 1 */
		bpf_core_read(dst->addr, sizeof(dst->addr), &sk->__sk_common.skc_v6_daddr);
		bpf_core_read(src->addr, sizeof(src->addr), &sk->__sk_common.skc_v6_rcv_saddr);
	}
	return true;
}

static bool sock_addrs(__u32 fd, struct lw_addr *dst, struct lw_addr *src)
{
	return sk_addrs(fd_sock(fd), dst, src);
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
	__u8 xflags;
	char comm[LW_COMM_LEN];
};

/* Copy `n` (< 2*LW_CHUNK_MAX) bytes from user memory into the reserved record
 * at `off`. bpf_dynptr_data() only hands out constant-size slices, so the
 * length is cut into its power-of-two parts: exact reservation, no scratch
 * buffer shared between tasks. Returns false on a fault. */
#define COPY_PART(bit)                                                                             \
	if (n & (1u << (bit))) {                                                                   \
		void *p = bpf_dynptr_data(dp, off, 1u << (bit));                                   \
		if (!p)                                                                            \
			return false;                                                              \
		if (bpf_probe_read_user(p, 1u << (bit), (void *)src))                              \
			ok = false;                                                                \
		off += 1u << (bit);                                                                \
		src += 1u << (bit);                                                                \
	}

static __always_inline bool copy_user(struct bpf_dynptr *dp, __u32 off, __u64 src, __u32 n)
{
	bool ok = true;

	COPY_PART(14)
	COPY_PART(13)
	COPY_PART(12) COPY_PART(11) COPY_PART(10) COPY_PART(9) COPY_PART(8) COPY_PART(7)
		COPY_PART(6) COPY_PART(5) COPY_PART(4) COPY_PART(3) COPY_PART(2) COPY_PART(1)
			COPY_PART(0) return ok;
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
		   (e->cap < e->total ? LW_F_TRUNCATED : 0) | e->xflags;
	__builtin_memcpy(h->comm, e->comm, sizeof(h->comm));
	if (!copy_user(&dp, sizeof(*h), e->buf + off, n))
		stat_add(LW_ST_COPY_FAULTS, 1);
	bpf_ringbuf_submit_dynptr(&dp, wake_flags());
	stat_add(LW_ST_CHUNKS, 1);
	return 0;
}

static __noinline void capture(struct call_args *a, __u64 pid_tgid, __u64 len, __u8 xflags)
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
	e.xflags = xflags;
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
	if (a->egress && c->fd < 0 && !a->own_fd) {
		struct conn_key k = {.pid = pid_tgid >> 32, .ssl = a->ssl};

		bpf_map_update_elem(&unbound, &pid_tgid, &k, BPF_ANY);
	}
}

/* ---- content verdicts: the in-kernel matcher ----------------------------
 * Before SSL_write encrypts, the plaintext is walked through the matcher
 * table (bpf/lwmatch.h). A match of a rule the writer's policy enforces
 * poisons the connection: its socket goes into `denied`, so sk_msg drops the
 * write that carries this plaintext's ciphertext and every later one. When
 * the socket is not known yet (the first write of a connection whose fd the
 * library never named), the syscall that writes the ciphertext names it and
 * on_sock_syscall() poisons it before sk_msg runs. */

#define KBLK 4096 /* bytes read from the caller per block */
#define KSTEP 64  /* bytes per callback and stream, bounded for the verifier */
#define KFAST 64  /* the same, when all streams walk side by side */
#define KSTREAMS 4

/* One walk. It lives in a per-CPU map, not on the stack: the verifier then
 * sees the same state at every bpf_loop iteration and checks each callback
 * once. Uprobe programs do not nest on a CPU, so one slot per CPU is enough.
 *
 * A DFA walk is one chain of dependent loads, a few ns per byte. A block is
 * therefore cut in KSTREAMS pieces walked side by side (independent chains
 * the CPU overlaps). Stream 0 continues from the carried state; stream k
 * starts from state 0 `resync` bytes before its piece: every kernel pattern
 * is at most that long, so by the start of its piece it is in the state a
 * walk from the start would be in (the accepts it sees before are stream
 * k-1's to report). The last stream's final state is carried on. */
struct kwalk {
	__u64 ubuf;
	__u32 len;	      /* bytes to walk */
	__u32 pol;	      /* policy index of the writer, < LWG_MAX_POLICIES */
	__u32 end;	      /* offset of the match's last byte */
	__s32 rule;	      /* matched kernel rule, -1 */
	__u32 boff;	      /* the block in buf: its offset in the caller's buffer */
	__u32 pos[KSTREAMS];  /* next byte of each stream, in the block */
	__u32 stop[KSTREAMS]; /* where it ends */
	__u32 from[KSTREAMS]; /* accepts before this belong to another stream */
	__u32 st[KSTREAMS];
	__u16 state; /* carried from block to block, write to write */
	__u8 fault;
};

struct kscratch {
	struct kwalk w;
	__u8 buf[KBLK];
	__u8 win[LWM_ENT_MAX];
	__u8 cnt[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kscratch);
} kscratch SEC(".maps");

static __always_inline struct lwm_table *ktable(void)
{
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&kmatch, &zero);

	return inner ? bpf_map_lookup_elem(inner, &zero) : NULL;
}

static __always_inline struct kscratch *kscratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&kscratch, &zero);
}

/* The entropy check of rule `rule` over the bytes of the caller's buffer
 * ending at ubuf+end (lw_kmatch_entropy_ok in user/classify/kmatch.c is the
 * same computation, for tests). A global function: verified once, not once per
 * place of the walk that calls it. 1: passes (or cannot be checked: the
 * match began in an earlier write), 0: too regular to be a key. */
__noinline int kentropy_ok(__u32 rule, __u64 ubuf, __u32 end)
{
	struct lwm_table *t = ktable();
	struct kscratch *s = kscratch_get();
	__u32 n, sum = 0;

	if (!t || !s || rule >= LWM_MAX_RULES)
		return 1;
	n = t->rules[rule].ent_len;
	if (n == 0 || n > LWM_ENT_MAX || end + 1 < n)
		return 1;
	if (bpf_probe_read_user(s->win, n, (void *)(ubuf + end + 1 - n)))
		return 1;
	/* Both loops run all LWM_ENT_MAX positions without a branch, so the
	 * verifier walks one path (a break at n would give it one per n).
	 * Counting adds 1 for i < n only ((i - n) >> 31 is 1 then). The sum
	 * takes each distinct value once: the first of its bytes adds its
	 * count's share and clears it, later ones add clog[0] = 0; bytes past
	 * n (left over from an earlier check) find their count 0 unless the
	 * value also occurs before n, where it was added. Every count is zero
	 * again afterwards. (count <= n <= LWM_ENT_MAX: the verifier only
	 * needs the read to stay inside the table.) */
	for (__u32 i = 0; i < LWM_ENT_MAX; i++)
		s->cnt[s->win[i]] += (i - n) >> 31;
	for (__u32 i = 0; i < LWM_ENT_MAX; i++) {
		__u8 b = s->win[i];

		sum += t->clog[s->cnt[b]];
		s->cnt[b] = 0;
	}
	return sum <= t->rules[rule].ent_max_sum;
}

/* Stream k reached an accepting state at byte pos-1 of the block: a match
 * of a rule this policy enforces whose entropy check passes ends the walk. */
static __always_inline bool kaccept(struct lwm_table *t, struct kscratch *s, __u32 k, __u32 state,
				    __u32 pos)
{
	__u32 r = t->accept[state & LWM_STATE_MASK], word, pol;

	k &= KSTREAMS - 1;
	if (r == 0 || r > LWM_MAX_RULES || pos - 1 < s->w.from[k])
		return false;
	word = (r - 1) >> 6;
	pol = s->w.pol;
	/* clang drops masks it can prove redundant; the verifier cannot follow
	 * its proof: mask after a barrier */
	asm volatile("" : "+r"(word), "+r"(pol));
	word &= LWM_RULE_WORDS - 1;
	pol &= LWG_MAX_POLICIES - 1;
	r = (r - 1) & (LWM_MAX_RULES - 1);
	/* a rule this policy does not enforce: keep looking */
	if (!(t->enforce[pol][word] & (1ULL << (r & 63))))
		return false;
	if (!kentropy_ok(r, s->w.ubuf, s->w.boff + pos - 1))
		return false;
	s = kscratch_get(); /* the call may have moved nothing, but look again */
	if (!s)
		return false;
	s->w.rule = r;
	s->w.end = s->w.boff + pos - 1;
	return true;
}

#define KNEXT(st, off) (st) = t->trans[(((st)&LWM_STATE_MASK) << 8) | s->buf[(off) & (KBLK - 1)]]
#define KNEXTB(st, w)                                                                              \
	do {                                                                                       \
		(st) = t->trans[(((st)&LWM_STATE_MASK) << 8) | ((w)&0xff)];                        \
		(w) >>= 8;                                                                         \
	} while (0)

/* One callback: KSTEP bytes of every stream side by side while each has
 * that many left (one branch per round: the accept test), else KSTEP bytes
 * of the first unfinished stream. Stops early at an accepting state; its
 * checks run outside the byte loops. */
static long kwalk_step(__u32 i, void *arg)
{
	struct lwm_table *t = ktable();
	struct kscratch *s = kscratch_get();
	__u32 s0, s1, s2, s3, p0, p1, p2, p3, k, j, pos, stop, state;
	int hit = -1;

	if (!t || !s)
		return 1;
	p0 = s->w.pos[0];
	p1 = s->w.pos[1];
	p2 = s->w.pos[2];
	p3 = s->w.pos[3];
	if (s->w.stop[0] - p0 >= KFAST && s->w.stop[1] - p1 >= KFAST &&
	    s->w.stop[2] - p2 >= KFAST && s->w.stop[3] - p3 >= KFAST && p0 < s->w.stop[0] &&
	    p1 < s->w.stop[1] && p2 < s->w.stop[2] && p3 < s->w.stop[3]) {
		__u64 w0, w1, w2, w3;
		bool any = false;

		s0 = s->w.st[0];
		s1 = s->w.st[1];
		s2 = s->w.st[2];
		s3 = s->w.st[3];
		/* eight bytes of each stream per load; one accept test per round
		 * of four bytes (a stream's flag is only in the state it moved
		 * to, so the round is the latest place to look) */
		for (j = 0; j < KFAST; j += 8) {
			w0 = *(__u64 *)&s->buf[(p0 + j) & (KBLK - 1)];
			w1 = *(__u64 *)&s->buf[(p1 + j) & (KBLK - 1)];
			w2 = *(__u64 *)&s->buf[(p2 + j) & (KBLK - 1)];
			w3 = *(__u64 *)&s->buf[(p3 + j) & (KBLK - 1)];
#pragma unroll
			for (int b = 0; b < 8; b++) {
				KNEXTB(s0, w0);
				KNEXTB(s1, w1);
				KNEXTB(s2, w2);
				KNEXTB(s3, w3);
				if ((s0 | s1 | s2 | s3) & LWM_ACCEPT) {
					any = true;
					j += b + 1;
					goto out;
				}
			}
		}
	out:
		s->w.pos[0] = p0 + j;
		s->w.pos[1] = p1 + j;
		s->w.pos[2] = p2 + j;
		s->w.pos[3] = p3 + j;
		s->w.st[0] = s0;
		s->w.st[1] = s1;
		s->w.st[2] = s2;
		s->w.st[3] = s3;
		if (!any)
			return 0;
		/* every stream that accepted in that round */
		for (k = 0; k < KSTREAMS; k++) {
			state = s->w.st[k];
			if ((state & LWM_ACCEPT) && kaccept(t, s, k, state, s->w.pos[k]))
				return 1;
			s = kscratch_get();
			if (!s)
				return 1;
		}
		return 0;
	}
	/* the tails: one stream at a time */
	for (k = 0; k < KSTREAMS; k++)
		if (s->w.pos[k] < s->w.stop[k])
			break;
	if (k >= KSTREAMS)
		return 1;
	pos = s->w.pos[k];
	stop = s->w.stop[k];
	state = s->w.st[k];
	for (j = 0; j < KSTEP; j++) {
		if (pos >= stop)
			break;
		KNEXT(state, pos);
		pos++;
		if (state & LWM_ACCEPT) {
			hit = k;
			break;
		}
	}
	s->w.pos[k] = pos;
	s->w.st[k] = state;
	if (hit >= 0 && kaccept(t, s, k, state, pos))
		return 1;
	return 0;
}

static long kwalk_block(__u32 i, void *arg)
{
	struct lwm_table *t = ktable();
	struct kscratch *s = kscratch_get();
	__u32 off = i * KBLK, n, q, L;

	if (!t || !s || off >= s->w.len)
		return 1;
	n = s->w.len - off;
	if (n > KBLK)
		n = KBLK;
	if (bpf_probe_read_user(s->buf, n, (void *)(s->w.ubuf + off))) {
		s->w.fault = 1; /* not resident: the rest goes unwalked */
		return 1;
	}
	s->w.boff = off;
	L = t->resync;
	q = n / KSTREAMS;
	for (int k = 0; k < KSTREAMS; k++) {
		s->w.pos[k] = 0;
		s->w.stop[k] = 0;
		s->w.from[k] = 0;
		s->w.st[k] = 0;
	}
	if (L && L <= 512 && q >= 2 * L) {
		/* stream 0 also covers stream 1's warm-up, so that all run
		 * about as long; the last one takes the remainder */
		for (int k = 0; k < KSTREAMS; k++) {
			s->w.pos[k] = k ? k * q - L : 0;
			s->w.from[k] = k * q;
			s->w.stop[k] = k == KSTREAMS - 1 ? n : (k + 1) * q + (k ? 0 : L);
		}
		s->w.st[0] = s->w.state;
	} else {
		/* one stream; the others end where they start */
		s->w.stop[KSTREAMS - 1] = n;
		s->w.st[KSTREAMS - 1] = s->w.state;
	}
	/* one callback per KSTEP bytes (more when states accept for rules this
	 * policy does not enforce): the callback ends the loop when all is done */
	bpf_loop(KBLK, kwalk_step, NULL, 0);
	s = kscratch_get();
	if (!s)
		return 1;
	s->w.state = s->w.st[KSTREAMS - 1];
	return s->w.rule >= 0 ? 1 : 0;
}

static bool policy_enforces_any(struct lwm_table *t, __u32 pol)
{
	pol &= LWG_MAX_POLICIES - 1;
	for (int i = 0; i < LWM_RULE_WORDS; i++)
		if (t->enforce[pol][i])
			return true;
	return false;
}

/* A TCP socket as sk_msg and sockops key it. */
static __always_inline void sock_key_of(const struct lw_addr *dst, const struct lw_addr *src,
					struct lwg_sock_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = dst->family;
	k->lport = src->port;
	k->rport = bpf_htonl(dst->port);
	if (k->family == AF_INET) {
		__builtin_memcpy(k->laddr, src->addr, 4);
		__builtin_memcpy(k->raddr, dst->addr, 4);
	} else {
		__builtin_memcpy(k->laddr, src->addr, 16);
		__builtin_memcpy(k->raddr, dst->addr, 16);
	}
}

/* The connection's socket as sk_msg and sockops key it. False while the
 * socket is not known. */
static bool conn_sock_key(struct conn_state *c, struct lwg_sock_key *k)
{
	if (c->fd < 0 || !c->dst.port)
		return false;
	sock_key_of(&c->dst, &c->src, k);
	return true;
}

static void emit_verdict(struct conn_state *c, __u32 gen, __u32 pol, bool sock_known)
{
	struct lw_verdict_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		stat_add(LW_ST_META_DROPS, 1);
		return;
	}
	rec_head(&r->h, LW_REC_VERDICT);
	r->conn_id = c->conn_id;
	r->cgroup_id = bpf_get_current_cgroup_id();
	r->seq = c->kseq;
	r->rule = c->krule;
	r->gen = gen;
	r->policy = pol;
	r->end = c->kend;
	r->sock_known = sock_known;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
}

/* A verdict on a connection whose socket just became known (the write
 * syscall that carries the refused ciphertext): refuse it if it is a
 * watched provider socket, else forget the verdict. Runs before sk_msg. */
static void kverdict_bound(struct conn_state *c)
{
	struct lwg_sock_key k;
	__u32 v;

	c->kpending = 0;
	if (!conn_sock_key(c, &k) || !bpf_map_lookup_elem(&watched, &k)) {
		/* the verdict already reported does not stand */
		c->krule = LW_VERDICT_CANCEL;
		emit_verdict(c, c->kgen, c->poisoned - 1, false);
		c->poisoned = 0;
		return;
	}
	v = (c->poisoned - 1) | LWG_DENY_CONTENT;
	bpf_map_update_elem(&denied, &k, &v, BPF_ANY);
	stat_add(LW_ST_KM_VERDICTS, 1);
}

/* Walk the plaintext of an egress call. True when the write is refused.
 * plain: a plaintext write to a provider's address, judged before sk_msg
 * has seen the socket (so before it can be `watched`). */
__noinline int kmatch_write(__u64 ssl, __u64 buf, __u64 num, __u32 target, int plain)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct lwm_table *t = ktable();
	struct kscratch *s = kscratch_get();
	struct lwg_sock_key k;
	struct conn_state *c;
	bool known;
	__u32 gen, pol, len;

	if (!t || !s || t->nrules == 0 || num == 0)
		return false;
	pol = current_policy() & (LWG_MAX_POLICIES - 1);
	/* monitoring services pay nothing: the agent reports would_block */
	if (!policy_enforces_any(t, pol))
		return false;
	c = conn_get(id >> 32, ssl, target);
	if (!c)
		return false;
	if (c->poisoned && !c->kpending) {
		stat_add(LW_ST_KM_POISONED, 1);
		return true;
	}
	known = conn_sock_key(c, &k);
	/* only provider connections the gates watch; a connection whose socket
	 * is not known yet is walked, and judged when the socket is */
	if (known && !plain && !bpf_map_lookup_elem(&watched, &k))
		return false;
	if (c->kpending)
		return false; /* refused already, waiting for its socket */
	gen = t->gen;
	if (c->kgen != gen) {
		c->kgen = gen;
		c->kstate = 0;
	}
	len = num < capture_max ? num : capture_max;
	s->w.ubuf = buf;
	s->w.len = len;
	s->w.pol = pol;
	s->w.rule = -1;
	s->w.end = 0;
	s->w.fault = 0;
	s->w.state = c->kstate;
	bpf_loop((len + KBLK - 1) / KBLK, kwalk_block, NULL, 0);
	s = kscratch_get();
	if (!s)
		return false;
	stat_add(LW_ST_KM_WRITES, 1);
	stat_add(LW_ST_KM_BYTES, len);
	if (s->w.fault)
		stat_add(LW_ST_KM_FAULTS, 1);
	/* a match split over two writes is still found */
	c->kstate = s->w.state;
	if (s->w.rule < 0)
		return false;
	c->poisoned = pol + 1;
	c->krule = s->w.rule;
	c->kend = s->w.end;
	c->kseq = c->seq[LW_DIR_EGRESS];
	if (!known) {
		/* reported now, before the capture of this write: its socket
		 * (named by the syscall that sends the ciphertext, which may
		 * come after SSL_write returns) confirms or cancels it */
		c->kpending = 1;
		emit_verdict(c, gen, pol, false);
		return true;
	}
	{
		__u32 v = pol | LWG_DENY_CONTENT;

		bpf_map_update_elem(&denied, &k, &v, BPF_ANY);
	}
	stat_add(LW_ST_KM_VERDICTS, 1);
	emit_verdict(c, gen, pol, true);
	return true;
}

/* egress: a constant at every call, so that read probes carry no matcher
 * for the verifier to check */
static __always_inline int enter_call(struct call_args *a, bool egress)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((id >> 32) == self_pid)
		return 0;
	if (bpf_map_lookup_elem(&active, &id))
		stat_add(LW_ST_NESTED, 1);
	if (egress)
		a->blocked = kmatch_write(a->ssl, a->buf, a->num, a->target, false);
	bpf_map_update_elem(&active, &id, a, BPF_ANY);
	return 0;
}

/* The (connection, buffer, count) calls of every C library. count64: the
 * count is a size_t in and an ssize_t out (GnuTLS), else an int both ways
 * (SSL_write, PR_Write: the register's upper half is not part of it), or a
 * size_t in and the count through outlen (the _ex forms). */
static __always_inline void call_of(struct pt_regs *ctx, __u8 func, bool egress, __u64 outlen,
				    bool count64, struct call_args *a)
{
	__builtin_memset(a, 0, sizeof(*a));
	a->ssl = PT_REGS_PARM1(ctx);
	a->buf = PT_REGS_PARM2(ctx);
	a->num = PT_REGS_PARM3(ctx);
	if (!outlen && !count64)
		a->num = (__u32)a->num;
	a->outlen = outlen;
	a->target = bpf_get_attach_cookie(ctx);
	a->func = func;
	a->egress = egress;
	a->ret64 = count64;
}

static __always_inline int enter(struct pt_regs *ctx, __u8 func, bool egress, __u64 outlen)
{
	struct call_args a;

	call_of(ctx, func, egress, outlen, false, &a);
	return enter_call(&a, egress);
}

/* The call returned `len` bytes (0: failed): capture them. */
static __always_inline void finish(struct call_args *a, __u64 id, __u64 len)
{
	/* a refused write fails, but what it tried to send is the evidence
	 * (a verdict still pending on its socket: only if that refused it) */
	if (a->blocked) {
		struct conn_key ck = {.pid = id >> 32, .ssl = a->ssl};
		struct conn_state *c = bpf_map_lookup_elem(&conns, &ck);

		if (!c || !c->poisoned)
			a->blocked = 0; /* its socket was no watched provider socket */
		else if (!len)
			len = a->num;
	}
	if (len)
		capture(a, id, len, a->blocked ? LW_F_BLOCKED : 0);
}

static __always_inline int leave(struct pt_regs *ctx, bool ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call_args *a = bpf_map_lookup_elem(&active, &id);
	long ret;
	__u64 len = 0;

	if (!a)
		return 0;
	ret = a->ret64 ? (long)PT_REGS_RC(ctx) : (long)(int)PT_REGS_RC(ctx);
	if (ex) {
		if (ret == 1 && a->outlen)
			bpf_probe_read_user(&len, sizeof(len), (void *)a->outlen);
	} else if (ret > 0) {
		len = ret;
	}
	finish(a, id, len);
	bpf_map_delete_elem(&active, &id);
	return 0;
}

/* The library is done with a connection: its id will not be used again. */
static __always_inline void conn_close(__u64 ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key k = {.pid = id >> 32, .ssl = ssl};
	struct conn_state *c = bpf_map_lookup_elem(&conns, &k);
	struct lw_close_rec *r;

	if (!c)
		return;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (r) {
		rec_head(&r->h, LW_REC_CLOSE);
		r->conn_id = c->conn_id;
		bpf_ringbuf_submit(r, wake_flags());
	} else {
		stat_add(LW_ST_META_DROPS, 1);
	}
	bpf_map_delete_elem(&conns, &k);
}

/* The server name a library was told to send, for the connection `ssl`. */
static __always_inline void conn_sni(void *ctx, __u64 ssl, const void *name, __u32 len)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_state *c;

	if (!name || (id >> 32) == self_pid)
		return;
	c = conn_get(id >> 32, ssl, bpf_get_attach_cookie(ctx));
	if (!c)
		return;
	if (len == 0) {
		/* NUL-terminated */
		if (bpf_probe_read_user_str(c->sni, sizeof(c->sni), name) <= 0)
			c->sni[0] = 0;
	} else {
		len &= LW_SNI_LEN - 1;
		if (len == 0 || bpf_probe_read_user(c->sni, len, name))
			len = 0;
		c->sni[len & (LW_SNI_LEN - 1)] = 0;
	}
	emit_conn(c);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter)
{
	return enter(ctx, LW_FN_SSL_WRITE, true, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter)
{
	return enter(ctx, LW_FN_SSL_WRITE_EX, true, PT_REGS_PARM4(ctx));
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter)
{
	return enter(ctx, LW_FN_SSL_READ, false, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter)
{
	return enter(ctx, LW_FN_SSL_READ_EX, false, PT_REGS_PARM4(ctx));
}

/* Returns: the count (SSL_write, gnutls_record_send, PR_Write, ...), or 1
 * and the count through the size_t * argument (the _ex forms). */
SEC("uretprobe")
int BPF_KRETPROBE(count_leave)
{
	return leave(ctx, false);
}

SEC("uretprobe")
int BPF_KRETPROBE(ex_leave)
{
	return leave(ctx, true);
}

/* SSL_set_tlsext_host_name() is a macro over SSL_ctrl(ssl, 55, 0, name). */
SEC("uprobe")
int BPF_KPROBE(ssl_ctrl_enter, void *ssl, int cmd, long larg, void *parg)
{
	if (cmd == SSL_CTRL_SET_TLSEXT_HOSTNAME && larg == 0)
		conn_sni(ctx, (__u64)ssl, parg, 0);
	return 0;
}

/* BoringSSL exports SSL_set_tlsext_host_name(ssl, name) as a function */
SEC("uprobe")
int BPF_KPROBE(ssl_sni_enter, void *ssl, const char *name)
{
	conn_sni(ctx, (__u64)ssl, name, 0);
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
	conn_close((__u64)ssl);
	return 0;
}

/* ---- GnuTLS ----------------------------------------------------------------
 * ssize_t gnutls_record_send(gnutls_session_t, const void *, size_t), and
 * recv alike: the OpenSSL shape, with a 64-bit result. */

static __always_inline int gnutls_enter(struct pt_regs *ctx, __u8 func, bool egress)
{
	struct call_args a;

	call_of(ctx, func, egress, 0, true, &a);
	return enter_call(&a, egress);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_send_enter)
{
	return gnutls_enter(ctx, LW_FN_GNUTLS_SEND, true);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_enter)
{
	return gnutls_enter(ctx, LW_FN_GNUTLS_RECV, false);
}

/* gnutls_server_name_set(session, GNUTLS_NAME_DNS = 1, name, length) */
SEC("uprobe")
int BPF_KPROBE(gnutls_sni_enter, void *session, int type, const void *name, __u64 len)
{
	if (type == 1 && len > 0 && len < LW_SNI_LEN)
		conn_sni(ctx, (__u64)session, name, len);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(gnutls_deinit_enter, void *session)
{
	conn_close((__u64)session);
	return 0;
}

/* ---- NSS -------------------------------------------------------------------
 * NSS applications write through NSPR: PR_Write(fd, buf, amount) and
 * PR_Send(fd, buf, amount, flags, timeout) on the PRFileDesc SSL_ImportFD
 * pushed its layer onto. The same functions serve files and plain sockets,
 * so only a layered descriptor over a lower one is taken:
 *   PRFileDesc { methods*, secret*, lower*, higher*, dtor, identity }
 *   PRIOMethods { PRDescType file_type; ... } */

static __always_inline bool nss_ssl_fd(__u64 fd)
{
	__u64 methods = 0, lower = 0;
	__s32 type = 0;

	if (!fd || bpf_probe_read_user(&methods, sizeof(methods), (void *)fd) || !methods)
		return false;
	if (bpf_probe_read_user(&type, sizeof(type), (void *)methods))
		return false;
	if (bpf_probe_read_user(&lower, sizeof(lower), (void *)(fd + 16)))
		return false;
	return type == PR_DESC_LAYERED && lower;
}

static __always_inline int nss_enter(struct pt_regs *ctx, __u8 func, bool egress)
{
	struct call_args a;

	call_of(ctx, func, egress, 0, false, &a); /* PRInt32 count */
	if ((__s32)a.num <= 0)
		return 0;
	if (!nss_ssl_fd(a.ssl)) {
		stat_add(LW_ST_NSS_OTHER, 1);
		return 0;
	}
	return enter_call(&a, egress);
}

SEC("uprobe")
int BPF_KPROBE(pr_write_enter)
{
	return nss_enter(ctx, LW_FN_PR_WRITE, true);
}

SEC("uprobe")
int BPF_KPROBE(pr_send_enter)
{
	return nss_enter(ctx, LW_FN_PR_SEND, true);
}

SEC("uprobe")
int BPF_KPROBE(pr_read_enter)
{
	return nss_enter(ctx, LW_FN_PR_READ, false);
}

SEC("uprobe")
int BPF_KPROBE(pr_recv_enter)
{
	return nss_enter(ctx, LW_FN_PR_RECV, false);
}

/* SSL_SetURL(fd, url): the name NSS sends as SNI and checks the cert for */
SEC("uprobe")
int BPF_KPROBE(nss_seturl_enter, void *fd, const char *url)
{
	conn_sni(ctx, (__u64)fd, url, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pr_close_enter, void *fd)
{
	conn_close((__u64)fd);
	return 0;
}

/* ---- Go crypto/tls -----------------------------------------------------------
 * func (c *Conn) Write(b []byte) (int, error), Read alike. Go moves
 * goroutine stacks, which a uretprobe's rewritten return address would
 * corrupt: user space puts a plain uprobe on every RET instruction of the
 * function instead (go_ret), and entry and return are paired by goroutine
 * (the g pointer), never by thread. */
#ifdef GO_G

/* The socket behind c.conn when it is a *net.TCPConn: the interface's data
 * word -> *netFD (TCPConn{conn{fd}}) -> poll.FD.Sysfd, after the 16-byte
 * fdMutex. Layout unchanged since Go 1.9; a wrong guess is caught by
 * conn_bind_fd, which takes only a connected TCP socket. */
static __always_inline void go_bind(struct conn_state *c, __u64 conn)
{
	__u64 data = 0, netfd = 0;
	__s64 fd = -1;

	if (c->fd >= 0)
		return;
	if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + 8)) || !data)
		return;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
		return;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + 16)))
		return;
	if (fd >= 0 && fd < (1 << 24))
		conn_bind_fd(c, (__s32)fd);
}

static __always_inline int go_enter(struct pt_regs *ctx, __u8 func, bool egress)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_key k = {.pid = id >> 32, .g = GO_G(ctx)};
	struct call_args a = {
		.ssl = GO_ARG1(ctx),
		.buf = GO_ARG2(ctx),
		.num = GO_ARG3(ctx),
		.target = bpf_get_attach_cookie(ctx),
		.func = func,
		.egress = egress,
		.ret64 = 1,
		.own_fd = 1,
	};
	struct conn_state *c;

	if (k.pid == self_pid || !a.ssl)
		return 0;
	c = conn_get(k.pid, a.ssl, a.target);
	if (c)
		go_bind(c, a.ssl);
	if (egress)
		a.blocked = kmatch_write(a.ssl, a.buf, a.num, a.target, false);
	bpf_map_update_elem(&goactive, &k, &a, BPF_ANY);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(go_write_enter)
{
	return go_enter(ctx, LW_FN_GO_WRITE, true);
}

SEC("uprobe")
int BPF_KPROBE(go_read_enter)
{
	return go_enter(ctx, LW_FN_GO_READ, false);
}

/* At a RET of Write or Read: n is the first result. */
SEC("uprobe")
int BPF_KPROBE(go_ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_key k = {.pid = id >> 32, .g = GO_G(ctx)};
	struct call_args *a = bpf_map_lookup_elem(&goactive, &k);
	__s64 n;

	if (!a)
		return 0;
	n = (__s64)GO_ARG1(ctx);
	finish(a, id, n > 0 ? (__u64)n : 0);
	bpf_map_delete_elem(&goactive, &k);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(go_close_enter)
{
	conn_close(GO_ARG1(ctx));
	return 0;
}
#endif /* GO_G */

/* ---- identity from the syscalls made inside an SSL call ----------------- */

/* ---- plaintext HTTP to providers ----------------------------------------
 * A write syscall made outside any hooked TLS call, on a TCP socket the
 * gates saw connect to a provider's address (provider_socks): the first write tells what
 * the socket carries. An HTTP/1 request line or the HTTP/2 preface starts
 * with an upper-case letter; a TLS record (0x14-0x17), anything else, is left
 * to the library probes. Plaintext is walked by the in-kernel matcher before
 * the kernel takes it, and captured at the syscall's exit. */

#define PLAIN_IOV_MAX 8 /* iovecs walked and captured per writev/sendmsg */

/* What a write syscall's buffer argument is. */
#define PLAIN_BUF 0 /* (buf, len) */
#define PLAIN_IOV 1 /* (struct iovec *, count) */
#define PLAIN_MSG 2 /* (struct user_msghdr *, -): sendmsg */

/* The first byte of what is being written. */
static __always_inline int first_byte(__u64 buf, bool iov)
{
	__u8 b;

	if (iov) {
		struct iovec v;

		if (bpf_probe_read_user(&v, sizeof(v), (void *)buf) || !v.iov_len)
			return -1;
		buf = (__u64)v.iov_base;
	}
	if (bpf_probe_read_user(&b, 1, (void *)buf))
		return -1;
	return b;
}

static __always_inline bool plain_kmatch(__u64 sk, __u64 buf, __u64 len, bool iov)
{
	if (!iov)
		return kmatch_write(sk, buf, len, LW_TARGET_SOCKET, true);
	for (int i = 0; i < PLAIN_IOV_MAX; i++) {
		struct iovec v;

		if (i >= len || bpf_probe_read_user(&v, sizeof(v), (void *)(buf + i * sizeof(v))))
			break;
		if (v.iov_len &&
		    kmatch_write(sk, (__u64)v.iov_base, v.iov_len, LW_TARGET_SOCKET, true))
			return true;
	}
	return false;
}

__noinline int plain_enter(__s32 fd, __u64 buf, __u64 len, int iov)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct plain_args pa = {};
	struct conn_state *c;
	struct sock *skp;
	__u32 *kind, nk, tgid;
	__u64 cookie;
	int b;

	if (fd < 0 || (id >> 32) == self_pid)
		return 0;
	/* every write of every process comes here: one that never connected
	 * to a provider costs a lookup; its sockets the gates did not see
	 * connect to one, the walk to the socket's cookie */
	tgid = id >> 32;
	if (!bpf_map_lookup_elem(&provider_pids, &tgid))
		return 0;
	skp = fd_sock(fd);
	if (!skp)
		return 0;
	cookie = BPF_CORE_READ(skp, __sk_common.skc_cookie.counter);
	if (!cookie || !bpf_map_lookup_elem(&provider_socks, &cookie))
		return 0;
	if (iov == PLAIN_MSG) {
		/* only now, for a provider socket: the iovecs of a sendmsg */
		struct user_msghdr *m = (void *)buf;

		buf = len = 0;
		bpf_probe_read_user(&buf, sizeof(buf), &m->msg_iov);
		bpf_probe_read_user(&len, sizeof(len), &m->msg_iovlen);
		iov = PLAIN_IOV;
	}
	if (!len)
		return 0;
	kind = bpf_map_lookup_elem(&plain_socks, &cookie);
	if (!kind) {
		b = first_byte(buf, iov);
		if (b < 0)
			return 0;
		nk = b >= 'A' && b <= 'Z' ? PLAIN_HTTP : PLAIN_OTHER;
		bpf_map_update_elem(&plain_socks, &cookie, &nk, BPF_ANY);
		if (nk != PLAIN_HTTP)
			return 0;
		stat_add(LW_ST_PLAIN_SOCKS, 1);
	} else if (*kind != PLAIN_HTTP) {
		return 0;
	}
	/* the connection is the socket: a kernel address, never a library's */
	c = conn_get(id >> 32, (__u64)skp, LW_TARGET_SOCKET);
	if (!c)
		return 0;
	conn_bind_fd(c, fd);
	pa.sk = (__u64)skp;
	pa.buf = buf;
	pa.len = len;
	pa.iov = iov;
	pa.blocked = plain_kmatch((__u64)skp, buf, len, iov);
	bpf_map_update_elem(&plain_active, &id, &pa, BPF_ANY);
	return 0;
}

struct plain_iter {
	struct call_args a;
	__u64 id;
	__u64 iov, n; /* the iovec array and its length */
	__u64 left;   /* bytes the kernel took, not yet captured */
	__u8 flags;
};

/* One iovec: one message. A callback, so capture() is checked once. */
static long plain_iov(__u32 i, void *arg)
{
	struct plain_iter *it = arg;
	struct iovec v;
	__u64 take;

	if (!it->left || i >= it->n ||
	    bpf_probe_read_user(&v, sizeof(v), (void *)(it->iov + i * sizeof(v))))
		return 1;
	take = v.iov_len < it->left ? v.iov_len : it->left;
	it->a.buf = (__u64)v.iov_base;
	if (take)
		capture(&it->a, it->id, take, it->flags);
	it->left -= take;
	return 0;
}

__noinline int plain_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct plain_args *pa = bpf_map_lookup_elem(&plain_active, &id);
	struct plain_iter it = {
		.a =
			{
				.target = LW_TARGET_SOCKET,
				.func = LW_FN_SOCK_SEND,
				.egress = 1,
				.own_fd = 1,
			},
		.id = id,
	};

	if (!pa)
		return 0;
	it.a.ssl = pa->sk;
	it.flags = pa->blocked ? LW_F_BLOCKED : 0;
	/* refused: what it tried to send is the evidence */
	it.left = ret > 0 ? (__u64)ret : (pa->blocked ? ~0ULL : 0);
	if (pa->iov) {
		it.iov = pa->buf;
		it.n = pa->len;
		bpf_loop(PLAIN_IOV_MAX, plain_iov, &it, 0);
	} else if (it.left) {
		it.a.buf = pa->buf;
		capture(&it.a, id, it.left < pa->len ? it.left : pa->len, it.flags);
	}
	bpf_map_delete_elem(&plain_active, &id);
	return 0;
}

static __always_inline int on_sock_syscall(__s32 fd, bool egress, __u64 buf, __u64 len, int iov)
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
		return egress ? plain_enter(fd, buf, len, iov) : 0;
	}
	if (!c)
		return 0;
	/* a write to a pipe or a log file is not the ciphertext: keep waiting
	 * for the socket write that is */
	if (c->fd < 0 && conn_bind_fd(c, fd)) {
		if (u)
			bpf_map_delete_elem(&unbound, &id);
		/* refused before its socket was known: this write carries it */
		if (c->kpending)
			kverdict_bound(c);
	} else if (u && c->fd >= 0) {
		bpf_map_delete_elem(&unbound, &id);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true, ctx->args[1], ctx->args[2], PLAIN_BUF);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int tp_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true, ctx->args[1], ctx->args[2], PLAIN_IOV);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true, ctx->args[1], ctx->args[2], PLAIN_BUF);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int tp_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], true, ctx->args[1], 0, PLAIN_MSG);
}

SEC("tracepoint/syscalls/sys_enter_read")
int tp_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false, 0, 0, PLAIN_BUF);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int tp_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false, 0, 0, PLAIN_BUF);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tp_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false, 0, 0, PLAIN_BUF);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tp_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return on_sock_syscall(ctx->args[0], false, 0, 0, PLAIN_BUF);
}

/* The exits of write, writev, sendto and sendmsg: what a plaintext write
 * handed to the kernel. A raw (BTF) tracepoint on every syscall's exit, not
 * the four syscall tracepoints: those format a perf record for each write of
 * every process, about 13% of a small-send loop here; this costs the other
 * syscalls a load and a compare. */
#if defined(__TARGET_ARCH_x86)
#define NR_WRITE 1
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_SENDMSG 46
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NR_WRITE 64
#define NR_WRITEV 66
#define NR_SENDTO 206
#define NR_SENDMSG 211
#define SYSCALL_NR(regs) ((regs)->syscallno)
#endif

SEC("tp_btf/sys_exit")
int BPF_PROG(tp_exit_send, struct pt_regs *regs, long ret)
{
	long nr = SYSCALL_NR(regs);

	if (nr != NR_WRITE && nr != NR_WRITEV && nr != NR_SENDTO && nr != NR_SENDMSG)
		return 0;
	return plain_exit(ret);
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
	r->stopped = 0;
	r->_pad = 0;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), (void *)ctx + off);
	/* A service a policy selects runs a program never examined (a Go
	 * binary links its TLS statically): hold it before its first
	 * instruction until user space has hooked it. Everything else runs on;
	 * the default policy's processes are hooked as soon as the record is
	 * read. */
	if (stop_new_libs && current_policy() != 0) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct inode *ino = BPF_CORE_READ(task, mm, exe_file, f_inode);
		struct lw_file_key key = {};

		key.ino = BPF_CORE_READ(ino, i_ino);
		key.dev = BPF_CORE_READ(ino, i_sb, s_dev);
		if (!bpf_map_lookup_elem(&known_files, &key) && bpf_send_signal(SIGSTOP) == 0) {
			r->stopped = 1;
			stat_add(LW_ST_LIB_STOPS, 1);
		}
	}
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

/* The TLS libraries user space may hook, by file name: "libssl." (OpenSSL,
 * BoringSSL builds), "libgnutls", NSS's "libnspr4" (its I/O) and "libssl3"
 * (NSS's SSL, for the server name). */
static __always_inline bool tls_lib_name(const char *n)
{
	if (n[0] != 'l' || n[1] != 'i' || n[2] != 'b')
		return false;
	if (n[3] == 's' && n[4] == 's' && n[5] == 'l')
		return n[6] == '.' || (n[6] == '3' && n[7] == '.');
	if (n[3] == 'g' && n[4] == 'n' && n[5] == 'u' && n[6] == 't' && n[7] == 'l' && n[8] == 's')
		return true;
	return n[3] == 'n' && n[4] == 's' && n[5] == 'p' && n[6] == 'r' && n[7] == '4';
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
	char name[10] = {};

	if (fd < 0 || !(prot & PROT_EXEC) || (id >> 32) == self_pid)
		return 0;
	f = fd_file(fd);
	if (!f)
		return 0;
	dname = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(name, sizeof(name), dname) < 7 || !tls_lib_name(name))
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
