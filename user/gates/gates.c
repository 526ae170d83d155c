#include "gates/gates.h"

#include "capture/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gates.skel.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/percpu.h"

const char *const lw_gate_stat_names[LWG_ST__MAX] = {
	[LWG_ST_DNS_ANSWERS] = "dns_answers_learned",
	[LWG_ST_DNS_MALFORMED] = "dns_malformed",
	[LWG_ST_CH_PARSED] = "clienthello_parsed",
	[LWG_ST_CH_MALFORMED] = "clienthello_malformed",
	[LWG_ST_DENIED] = "gate_denied",
	[LWG_ST_WOULD_DENY] = "gate_would_deny",
	[LWG_ST_ALLOWED] = "gate_allowed",
	[LWG_ST_RELEASED] = "sockets_released",
	[LWG_ST_EVENT_DROPS] = "gate_events_dropped",
	[LWG_ST_POISONED_DROPS] = "denied_socket_writes_dropped",
	[LWG_ST_CONTENT_DROPS] = "content_blocked_writes_dropped",
	[LWG_ST_WATCHED] = "provider_sockets_watched",
	[LWG_ST_QUARANTINED] = "quarantine_refused",
};

struct lw_gates {
	struct gates_bpf *skel;
	struct ring_buffer *rb;
	int cgfd;
	bool msg_attached;
	lw_gate_event_cb cb;
	void *ud;
};

int lw_cgroup2_mount(char *out, size_t n)
{
	FILE *f = setmntent("/proc/mounts", "re");
	struct mntent *m;
	int rc = -1;

	if (!f)
		return -1;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(out, n, "%s", m->mnt_dir);
			rc = 0;
			break;
		}
	}
	endmntent(f);
	return rc;
}

static int on_ring(void *ctx, void *data, size_t len)
{
	struct lw_gates *g = ctx;

	if (len >= sizeof(struct lwg_event) && g->cb)
		g->cb(data, g->ud);
	return 0;
}

struct lw_gates *lw_gates_open(lw_gate_event_cb cb, void *ud)
{
	struct lw_gates *g = lw_xcalloc(1, sizeof(*g));
	struct gates_bpf *s;
	char mnt[4096];
	struct lwg_policy def = {.allow_mask = ~0ULL, .enforce = 0, .valid = 1};
	uint32_t zero = 0;
	int err;

	g->cgfd = -1;
	g->cb = cb;
	g->ud = ud;
	if (lw_cgroup2_mount(mnt, sizeof(mnt))) {
		lw_err("no cgroup v2 hierarchy is mounted: the provider gates need one");
		goto fail;
	}
	g->cgfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->cgfd < 0) {
		lw_err("cannot open %s: %s", mnt, strerror(errno));
		goto fail;
	}
	s = g->skel = gates_bpf__open();
	if (!s) {
		lw_err("cannot open the gates BPF object: %s", strerror(errno));
		goto fail;
	}
	s->rodata->self_pid = (uint32_t)getpid();
	err = gates_bpf__load(s);
	if (err) {
		lw_err("cannot load the gates BPF programs: %s", strerror(-err));
		goto fail;
	}
	/* until a policy is loaded: everything allowed, nothing enforced */
	bpf_map__update_elem(s->maps.policies, &zero, sizeof(zero), &def, sizeof(def), BPF_ANY);
	{
		struct bpf_program *progs[] = {
			s->progs.dns_ingress,	s->progs.gate_connect4, s->progs.gate_connect6,
			s->progs.gate_sendmsg4, s->progs.gate_sendmsg6, s->progs.gate_sockops,
			s->progs.quic_egress,
		};
		struct bpf_link **links[] = {
			&s->links.dns_ingress,	 &s->links.gate_connect4, &s->links.gate_connect6,
			&s->links.gate_sendmsg4, &s->links.gate_sendmsg6, &s->links.gate_sockops,
			&s->links.quic_egress,
		};

		for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
			*links[i] = bpf_program__attach_cgroup(progs[i], g->cgfd);
			if (!*links[i]) {
				lw_err("cannot attach %s to %s: %s", bpf_program__name(progs[i]),
				       mnt, strerror(errno));
				goto fail;
			}
		}
	}
	if (bpf_prog_attach(bpf_program__fd(s->progs.gate_msg), bpf_map__fd(s->maps.socks),
			    BPF_SK_MSG_VERDICT, 0)) {
		lw_err("cannot attach the ClientHello gate (sk_msg): %s", strerror(errno));
		goto fail;
	}
	g->msg_attached = true;
	g->rb = ring_buffer__new(bpf_map__fd(s->maps.gate_events), on_ring, g, NULL);
	if (!g->rb) {
		lw_err("cannot set up the gates ring buffer: %s", strerror(errno));
		goto fail;
	}
	return g;
fail:
	lw_gates_close(g);
	return NULL;
}

void lw_gates_close(struct lw_gates *g)
{
	if (!g)
		return;
	ring_buffer__free(g->rb);
	if (g->msg_attached)
		bpf_prog_detach2(bpf_program__fd(g->skel->progs.gate_msg),
				 bpf_map__fd(g->skel->maps.socks), BPF_SK_MSG_VERDICT);
	gates_bpf__destroy(g->skel);
	if (g->cgfd >= 0)
		close(g->cgfd);
	free(g);
}

int lw_gates_fd(struct lw_gates *g)
{
	return ring_buffer__epoll_fd(g->rb);
}

int lw_gates_consume(struct lw_gates *g)
{
	return ring_buffer__consume(g->rb);
}

/* Delete every key of `from` (and, when also_fd >= 0, the same key there). */
static void clear_map(int fd, size_t ksz, int also_fd)
{
	unsigned char key[64], next[64];
	void *prev = NULL;

	/* restart from the beginning after each delete: iteration after a
	 * deleted key is not guaranteed to continue */
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, ksz);
		if (also_fd >= 0)
			bpf_map_delete_elem(also_fd, key);
		if (bpf_map_delete_elem(fd, key) != 0)
			prev = key; /* cannot delete: step over it */
		else
			prev = NULL;
	}
}

void lw_gates_sweep(struct lw_gates *g)
{
	clear_map(bpf_map__fd(g->skel->maps.released), sizeof(struct lwg_sock_key),
		  bpf_map__fd(g->skel->maps.socks));
}

void lw_gates_stats(struct lw_gates *g, uint64_t out[LWG_ST__MAX])
{
	lw_percpu_sum(g->skel->maps.gate_stats, LWG_ST__MAX, out);
}

void lw_gates_hosts_clear(struct lw_gates *g)
{
	clear_map(bpf_map__fd(g->skel->maps.host_providers), sizeof(struct lwg_host_key), -1);
}

int lw_gates_host_add(struct lw_gates *g, uint64_t hash, int kind, uint32_t provider)
{
	struct lwg_host_key k = {.hash = hash, .kind = (unsigned)kind};

	return bpf_map__update_elem(g->skel->maps.host_providers, &k, sizeof(k), &provider,
				    sizeof(provider), BPF_ANY);
}

int lw_gates_policy_set(struct lw_gates *g, uint32_t idx, uint64_t allow_mask, bool enforce)
{
	struct lwg_policy p = {.allow_mask = allow_mask, .enforce = enforce, .valid = 1};

	if (idx >= LWG_MAX_POLICIES)
		return -1;
	return bpf_map__update_elem(g->skel->maps.policies, &idx, sizeof(idx), &p, sizeof(p),
				    BPF_ANY);
}

void lw_gates_cgroups_clear(struct lw_gates *g)
{
	clear_map(bpf_map__fd(g->skel->maps.cgroup_policy), sizeof(uint64_t), -1);
}

int lw_gates_cgroup_set(struct lw_gates *g, uint64_t cgroup_id, uint32_t policy)
{
	return bpf_map__update_elem(g->skel->maps.cgroup_policy, &cgroup_id, sizeof(cgroup_id),
				    &policy, sizeof(policy), BPF_ANY);
}

void lw_gates_pids_clear(struct lw_gates *g)
{
	clear_map(bpf_map__fd(g->skel->maps.pid_policy), sizeof(uint32_t), -1);
}

int lw_gates_pid_set(struct lw_gates *g, pid_t pid, uint32_t policy)
{
	uint32_t k = (uint32_t)pid;

	return bpf_map__update_elem(g->skel->maps.pid_policy, &k, sizeof(k), &policy,
				    sizeof(policy), BPF_ANY);
}

void lw_gates_pid_del(struct lw_gates *g, pid_t pid)
{
	uint32_t k = (uint32_t)pid;

	bpf_map__delete_elem(g->skel->maps.pid_policy, &k, sizeof(k), 0);
}

void lw_gates_shared(struct lw_gates *g, struct lw_shared_fds *fds)
{
	fds->cgroup_policy = bpf_map__fd(g->skel->maps.cgroup_policy);
	fds->pid_policy = bpf_map__fd(g->skel->maps.pid_policy);
	fds->denied = bpf_map__fd(g->skel->maps.denied);
	fds->watched = bpf_map__fd(g->skel->maps.watched);
	fds->provider_socks = bpf_map__fd(g->skel->maps.provider_socks);
	fds->provider_pids = bpf_map__fd(g->skel->maps.provider_pids);
}

int lw_gates_poison(struct lw_gates *g, const struct lw_addr *src, const struct lw_addr *dst,
		    uint32_t policy)
{
	struct lwg_sock_key k = {.family = dst->family};
	uint32_t v = policy | LWG_DENY_CONTENT;
	size_t n = dst->family == 2 ? 4 : 16;

	if (!dst->family || dst->family != src->family || !dst->port)
		return -EINVAL;
	/* as sk_msg hands them over: local port in host order, remote in
	 * network order (the whole 32-bit word) */
	k.lport = src->port;
	k.rport = htonl(dst->port);
	memcpy(k.laddr, src->addr, n);
	memcpy(k.raddr, dst->addr, n);
	return bpf_map__update_elem(g->skel->maps.denied, &k, sizeof(k), &v, sizeof(v), BPF_ANY);
}

int lw_gates_quarantine(struct lw_gates *g, uint64_t cgroup_id, uint32_t provider,
			uint64_t until_mono_ns)
{
	struct lwg_quarantine_key k = {.cgroup_id = cgroup_id, .provider = provider};

	return bpf_map__update_elem(g->skel->maps.quarantine, &k, sizeof(k), &until_mono_ns,
				    sizeof(until_mono_ns), BPF_ANY);
}

/* ---- for the agent's metrics and self-check (docs/running.md) ---- */

void lw_gates_each_link(struct lw_gates *g, lw_link_fn fn, void *ud)
{
	lw_skel_each_link(g->skel->skeleton, fn, ud);
}

int lw_gates_cgroup_fd(struct lw_gates *g)
{
	return g->cgfd;
}

int lw_gates_ring_fd(struct lw_gates *g)
{
	return bpf_map__fd(g->skel->maps.gate_events);
}

int lw_gates_msg_attach(struct lw_gates *g, int *prog_fd, int *map_fd)
{
	*prog_fd = bpf_program__fd(g->skel->progs.gate_msg);
	*map_fd = bpf_map__fd(g->skel->maps.socks);
	return g->msg_attached ? 0 : -1;
}
