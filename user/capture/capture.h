/*
 * Capture stage: loads the BPF programs, finds the TLS libraries and
 * executables to hook, attaches, and hands every ring-buffer record to the
 * next stage.
 */
#ifndef LW_CAPTURE_H
#define LW_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leakwatch.h"

struct lw_shared_fds {
	int cgroup_policy, pid_policy, denied, watched, provider_socks, provider_pids;
};

struct lw_capture_opts {
	uint32_t capture_max; /* bytes per message, default 1 MiB */
	uint32_t ring_bytes;  /* ring buffer size, power of two */
	pid_t only_pid;	      /* 0: every process */
	bool stop_new_libs;   /* pause processes mapping an unseen libssl */
	/* Maps of the provider gates (lw_gates_shared, bpf/lwshared.bpf.h)
	 * the capture programs share: the policy of each cgroup and process,
	 * the sockets sk_msg refuses and the provider sockets it watches, and
	 * the provider sockets (and the processes that connected them) whose
	 * plaintext HTTP is captured at the socket. Unset (0): private empty
	 * maps: nothing is refused, no plaintext is captured. */
	struct lw_shared_fds shared;
	/* every record, after the capture stage has taken what it needs */
	void (*on_record)(const struct lw_rec *r, size_t len, void *ud);
	void *ud;
};

struct lw_capture;

/* One line on stderr explains any failure (missing privilege, kernel
 * feature, mount); returns NULL then. */
struct lw_capture *lw_capture_open(const struct lw_capture_opts *o);
/* Wait up to timeout_ms for records and dispatch them. <0 on error. */
int lw_capture_poll(struct lw_capture *c, int timeout_ms);
/* For callers with their own poll loop: readable when records wait, then
 * lw_capture_consume() dispatches all of them without blocking. */
int lw_capture_fd(struct lw_capture *c);
int lw_capture_consume(struct lw_capture *c);
/* Sum of the per-CPU kernel counters (enum lw_stat). */
void lw_capture_stats(struct lw_capture *c, uint64_t out[LW_ST__MAX]);
/* The TLS stack a record's `func` belongs to: "openssl", "gnutls", "nss",
 * "go", "plaintext" (captured at the socket). */
const char *lw_func_stack(unsigned func);
/* What the agent reads of a process's TLS, for the log: "gnutls
 * (/usr/lib/x86_64-linux-gnu/libgnutls.so.30)", or why nothing (a JVM, a
 * stripped static binary, ...). 1 when some stack of it is hooked, 0 when
 * none is, -1 when the process is gone (or a zombie) and its executable
 * (exe_hint: its path at exec, may be NULL) does not tell; out is empty. */
int lw_capture_coverage(struct lw_capture *c, pid_t pid, const char *exe_hint, char *out,
			size_t n);
/* Path of the hooked file a record's `target` refers to ("socket" for
 * plaintext captured at the socket, "" if unknown). */
const char *lw_capture_target_path(struct lw_capture *c, uint32_t target);
/* Targets hooked / examined and refused. */
size_t lw_capture_ntargets(struct lw_capture *c);
/* Put a matcher table (bpf/lwmatch.h) in force for every later write, in
 * one step. Its gen is set here. 0, or -errno. */
struct lwm_table;
int lw_capture_kmatch_install(struct lw_capture *c, struct lwm_table *t);
/* Detach and unload everything; resumes any process paused by us. */
void lw_capture_close(struct lw_capture *c);

extern const char *const lw_stat_names[LW_ST__MAX];

/* For the agent's metrics and self-check. */
#include "util/bpflink.h"
/* Every file examined: hooked, probes attached, attaches that failed, and
 * why TLS code it holds cannot be hooked ("" when there is no such reason;
 * a file without TLS code: not hooked, none failed, no reason). */
void lw_capture_each_target(struct lw_capture *c,
			    void (*fn)(const char *path, bool hooked, int nlinks, int nfailed,
				       const char *why, void *ud),
			    void *ud);
/* Every BPF link the capture stage holds (tracepoints, uprobes). */
void lw_capture_each_link(struct lw_capture *c, lw_link_fn fn, void *ud);
/* The ring buffer map (util/ringuse.h). */
int lw_capture_ring_fd(struct lw_capture *c);

#endif
