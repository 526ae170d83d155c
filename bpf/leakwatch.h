/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records shared by the BPF capture programs and the user-space agent.
 *
 * Everything the kernel tells user space travels through one ring buffer as
 * one of the records below; each starts with `struct lw_rec` so the consumer
 * can dispatch on `type` before it knows the size.
 */
#ifndef LEAKWATCH_H
#define LEAKWATCH_H

#define LW_COMM_LEN 16
#define LW_SNI_LEN 128
#define LW_PATH_LEN 256
/* One ring-buffer record carries at most this much plaintext. Messages
 * larger than that arrive as several chunks, each reserved at its exact size. */
#define LW_CHUNK_MAX 16384
/* Hard ceiling for --capture-max: bounds the bpf_loop over chunks. */
#define LW_CAPTURE_CEIL (64u << 20)

enum lw_rec_type {
	LW_REC_CHUNK = 1,   /* a piece of a captured message */
	LW_REC_CONN = 2,    /* what the kernel learned about a connection */
	LW_REC_CLOSE = 3,   /* SSL_free: the connection id will not be used again */
	LW_REC_EXEC = 4,    /* a task called execve */
	LW_REC_EXIT = 5,    /* a process (thread group) ended */
	LW_REC_LIBMAP = 6,  /* a process mapped a TLS library we have not hooked */
	LW_REC_VERDICT = 7, /* the in-kernel matcher refused a write */
};

enum lw_dir {
	LW_DIR_EGRESS = 0,  /* the application wrote it (request) */
	LW_DIR_INGRESS = 1, /* the application read it (response) */
};

/* Chunk flags. */
#define LW_F_FIRST (1u << 0)	 /* offset 0 of the message */
#define LW_F_LAST (1u << 1)	 /* last chunk the kernel will try to send */
#define LW_F_TRUNCATED (1u << 2) /* message longer than capture_max */
#define LW_F_BLOCKED (1u << 3)	 /* its ciphertext is dropped: a content verdict */

/* Per-CPU counters, summed by user space. Index into the `stats` map. */
enum lw_stat {
	LW_ST_MSGS = 0,	      /* messages seen by the probes */
	LW_ST_BYTES,	      /* plaintext bytes seen (before capture_max) */
	LW_ST_CHUNKS,	      /* chunks submitted */
	LW_ST_RB_DROP_CHUNKS, /* chunks lost because the ring buffer was full */
	LW_ST_RB_DROP_BYTES,  /* plaintext bytes in those chunks */
	LW_ST_TRUNC_MSGS,     /* messages longer than capture_max */
	LW_ST_TRUNC_BYTES,    /* bytes beyond capture_max, not captured */
	LW_ST_COPY_FAULTS,    /* user memory that could not be read */
	LW_ST_META_DROPS,     /* conn/exec/exit records lost to a full ring */
	LW_ST_NESTED,	      /* SSL calls nested in another (inner one ignored) */
	LW_ST_LIB_STOPS,      /* processes paused until a new library was hooked */
	LW_ST_KM_WRITES,      /* writes the in-kernel matcher walked */
	LW_ST_KM_BYTES,	      /* bytes it walked */
	LW_ST_KM_VERDICTS,    /* writes it refused */
	LW_ST_KM_FAULTS,      /* blocks it could not read (not resident): not walked */
	LW_ST_KM_POISONED,    /* writes on a connection refused earlier */
	LW_ST_PLAIN_SOCKS,    /* provider sockets found to carry plaintext HTTP */
	LW_ST_NSS_OTHER,      /* NSPR calls on descriptors that are no SSL socket */
	LW_ST__MAX,
};

struct lw_rec {
	unsigned int type;
	unsigned int pid; /* thread group id */
	unsigned int tid;
	unsigned int _pad;
	unsigned long long ts_ns; /* CLOCK_MONOTONIC */
};

struct lw_chunk {
	struct lw_rec h;
	unsigned long long conn_id;
	unsigned long long cgroup_id;
	unsigned int seq;	/* message number within (conn, dir) */
	unsigned int total_len; /* what the SSL call moved */
	unsigned int cap_len;	/* min(total_len, capture_max) */
	unsigned int offset;	/* of this chunk within the message */
	unsigned int len;	/* plaintext bytes following this header */
	unsigned int target;	/* hooked file (attach cookie) */
	unsigned char dir;
	unsigned char flags;
	unsigned char func; /* enum lw_func */
	unsigned char _pad;
	char comm[LW_COMM_LEN];
	/* unsigned char data[len]; */
};

/* The call a message was captured from; its stack is what user space names
 * (lw_func_stack in user/capture/capture.c). */
enum lw_func {
	LW_FN_SSL_WRITE = 0, /* OpenSSL, BoringSSL, LibreSSL */
	LW_FN_SSL_WRITE_EX,
	LW_FN_SSL_READ,
	LW_FN_SSL_READ_EX,
	LW_FN_GNUTLS_SEND, /* gnutls_record_send */
	LW_FN_GNUTLS_RECV,
	LW_FN_PR_WRITE, /* NSS: NSPR I/O on an SSL file descriptor */
	LW_FN_PR_SEND,
	LW_FN_PR_READ,
	LW_FN_PR_RECV,
	LW_FN_GO_WRITE, /* Go crypto/tls.(*Conn).Write */
	LW_FN_GO_READ,
	LW_FN_SOCK_SEND, /* plaintext written to a provider's socket (no TLS) */
	LW_FN__MAX,
};

/* `target` of messages captured at the socket layer rather than a hooked
 * file. */
#define LW_TARGET_SOCKET 0xfffffffeu

/* Address of the peer of a connected TCP socket, host byte order port. */
struct lw_addr {
	unsigned short family; /* AF_INET / AF_INET6, 0 when unknown */
	unsigned short port;
	unsigned char addr[16];
};

struct lw_conn_rec {
	struct lw_rec h;
	unsigned long long conn_id;
	int fd; /* -1 when unknown */
	unsigned int target;
	struct lw_addr dst;
	struct lw_addr src;
	char sni[LW_SNI_LEN];
};

struct lw_close_rec {
	struct lw_rec h;
	unsigned long long conn_id;
};

struct lw_exec_rec {
	struct lw_rec h;
	unsigned long long cgroup_id;
	unsigned int stopped; /* sent SIGSTOP: waits for SIGCONT from user space */
	unsigned int _pad;
	char comm[LW_COMM_LEN];
	char filename[LW_PATH_LEN];
};

struct lw_libmap_rec {
	struct lw_rec h;
	unsigned int dev; /* kernel encoding: major << 20 | minor */
	int fd;
	unsigned long long ino;
	unsigned int stopped; /* the task was sent SIGSTOP and waits for SIGCONT */
	char name[64];
};

#define LW_VERDICT_CANCEL 255

/* The in-kernel matcher refused a write: its ciphertext and every later
 * write of the connection are dropped by sk_msg (bpf/gates.bpf.c). */
struct lw_verdict_rec {
	struct lw_rec h;
	unsigned long long conn_id;
	unsigned long long cgroup_id;
	unsigned int seq;	 /* egress message that carried the match */
	unsigned int rule;	 /* kernel rule index (struct lwm_table), or
				  * LW_VERDICT_CANCEL: the verdict reported before for
				  * this connection does not stand (its socket turned
				  * out not to be a watched provider socket) */
	unsigned int gen;	 /* of the table that matched */
	unsigned int policy;	 /* policy index of the writer */
	unsigned int end;	 /* offset of the match's last byte in the message */
	unsigned int sock_known; /* the socket was known and poisoned at once */
	char comm[LW_COMM_LEN];
};

/* Key of `known_files`: a file user space has already looked at. */
struct lw_file_key {
	unsigned long long ino;
	unsigned int dev;
	unsigned int _pad;
};

#endif /* LEAKWATCH_H */
