#include "cmd/selfcheck.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/ringuse.h"

#define WINDOW 10 /* seconds the maxima in the metrics cover */
#define MAX_QUERY 64

enum { ST_CAPTURE, ST_GATES, ST__N };
static const char *const stage_names[ST__N] = {"capture", "gates"};
enum link_state { L_OK, L_DETACHED, L_REPLACED, L_UNKNOWN };
enum { T_DETACHED, T_REPLACED, T_FOREIGN, T__N };
static const char *const tamper_names[T__N] = {"detached", "replaced", "foreign_program"};
enum { W_RING_DROPS, W_RING_FULL, W_LOOP_BUSY, W_EVENT_LAG, W__N };
static const char *const warn_names[W__N] = {"ring_drops", "ring_full", "loop_busy", "event_lag"};

/* One BPF link we hold, keyed by its descriptor. */
struct lk {
	uint32_t id, prog_id, type, attach_type;
	uint64_t cgroup_id;
	int stage;
	bool watched; /* a kind someone else can detach or replace */
	enum link_state state;
	uint64_t seen;
	char what[48];
};

struct ring {
	struct lw_ringuse *u;
	uint64_t peak, high_water;
	double win[WINDOW];
};

struct lw_selfcheck {
	struct lw_capture *cap;
	struct lw_gates *g;
	struct lw_loop_health *health;
	struct lw_hmap links;	/* fd -> struct lk */
	struct lw_hmap foreign; /* prog id -> (void *)1: programs not ours already reported */
	uint64_t gen, runs;
	uint64_t root_cgroup_id;
	uint32_t msg_prog_id;
	bool msg_attached, msg_watched;
	uint32_t foreign_now[MAX_BPF_ATTACH_TYPE];
	uint64_t tamper[T__N];
	struct ring ring[ST__N];
	/* falling behind */
	uint64_t last_drops, last_drop_bytes, last_meta, last_gate_drops;
	bool have_last;
	uint64_t warns[W__N];
	uint64_t next_warn_ns;
	uint64_t pend_drops, pend_drop_bytes, pend_meta, pend_gate_drops;
	double pend_ring;
	uint64_t pend_busy, pend_lag;
	uint64_t busy_win[WINDOW], lag_win[WINDOW];
	size_t slot;
};

static uint64_t max_of(const uint64_t *v)
{
	uint64_t m = 0;

	for (int i = 0; i < WINDOW; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static double max_d(const double *v)
{
	double m = 0;

	for (int i = 0; i < WINDOW; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static void check_attachments(struct lw_selfcheck *sc);

struct lw_selfcheck *lw_selfcheck_new(struct lw_capture *cap, struct lw_gates *g,
				      struct lw_loop_health *health)
{
	struct lw_selfcheck *sc = lw_xcalloc(1, sizeof(*sc));
	int fds[ST__N] = {cap ? lw_capture_ring_fd(cap) : -1, g ? lw_gates_ring_fd(g) : -1};

	sc->cap = cap;
	sc->g = g;
	sc->health = health;
	for (int i = 0; i < ST__N; i++) {
		if (fds[i] < 0)
			continue;
		sc->ring[i].u = lw_ringuse_open(fds[i]);
		if (!sc->ring[i].u)
			lw_warn("self-check: cannot map the %s ring buffer's positions (%s): its "
				"fill "
				"level is not reported",
				stage_names[i], strerror(errno));
	}
	if (g) {
		struct stat st;
		int prog_fd, map_fd;

		/* a cgroup v2 directory's inode number is the cgroup's id */
		if (fstat(lw_gates_cgroup_fd(g), &st) == 0)
			sc->root_cgroup_id = st.st_ino;
		if (lw_gates_msg_attach(g, &prog_fd, &map_fd) == 0) {
			struct bpf_prog_info pi = {0};
			uint32_t len = sizeof(pi);

			if (bpf_obj_get_info_by_fd(prog_fd, &pi, &len) == 0) {
				sc->msg_prog_id = pi.id;
				sc->msg_watched = sc->msg_attached = true;
			}
		}
	}
	check_attachments(sc); /* before the agent says it is ready */
	return sc;
}

void lw_selfcheck_free(struct lw_selfcheck *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->links.cap; i++)
		free(sc->links.slots[i].val);
	lw_hmap_free(&sc->links);
	lw_hmap_free(&sc->foreign);
	for (int i = 0; i < ST__N; i++)
		lw_ringuse_close(sc->ring[i].u);
	free(sc);
}

void lw_selfcheck_wake(struct lw_selfcheck *sc)
{
	for (int i = 0; i < ST__N; i++) {
		struct ring *r = &sc->ring[i];
		uint64_t used;

		if (!r->u)
			continue;
		used = lw_ringuse_used(r->u);
		if (used > r->peak)
			r->peak = used;
	}
}

/* Links the kernel lets nobody detach or swap: they end with our last
 * descriptor (perf-event uprobes and tracepoints, raw tracepoints,
 * fentry-style tracing, multi-probes). */
static bool watchable(uint32_t type)
{
	return type != BPF_LINK_TYPE_RAW_TRACEPOINT && type != BPF_LINK_TYPE_TRACING &&
	       type != BPF_LINK_TYPE_PERF_EVENT && type != BPF_LINK_TYPE_KPROBE_MULTI &&
	       type != 12 /* BPF_LINK_TYPE_UPROBE_MULTI, newer than these headers */;
}

static const char *link_type(uint32_t t)
{
	const char *s = libbpf_bpf_link_type_str((enum bpf_link_type)t);

	return s ? s : "unknown";
}

static const char *attach_name(uint32_t t)
{
	const char *s = libbpf_bpf_attach_type_str((enum bpf_attach_type)t);

	return s ? s : "unknown";
}

static void tampered(struct lw_selfcheck *sc, struct lk *e, enum link_state st, const char *how)
{
	if (e->state != L_OK)
		return; /* said once */
	e->state = st;
	sc->tamper[st == L_REPLACED ? T_REPLACED : T_DETACHED]++;
	lw_warn("self-check: BPF link %u of the %s stage (program %s, %s) %s: what it "
		"enforced or observed no longer runs; restart the agent to attach it again",
		e->id, stage_names[e->stage], e->what,
		e->type == BPF_LINK_TYPE_CGROUP ? attach_name(e->attach_type) : link_type(e->type),
		how);
}

struct walk {
	struct lw_selfcheck *sc;
	int stage;
};

/* The id of the program behind fd, 0 when unknown. */
static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info pi = {0};
	uint32_t len = sizeof(pi);

	return fd >= 0 && bpf_obj_get_info_by_fd(fd, &pi, &len) == 0 ? pi.id : 0;
}

static void on_link(struct bpf_link *l, const char *what, int prog_fd, void *ud)
{
	struct walk *w = ud;
	struct lw_selfcheck *sc = w->sc;
	int fd = bpf_link__fd(l);
	struct lk *e = lw_hmap_get(&sc->links, (uint64_t)fd);
	struct bpf_link_info info;
	uint32_t len = sizeof(info);

	if (e && !e->watched && e->stage == w->stage) {
		e->seen = sc->gen; /* nothing about it can change but its end */
		return;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		if (e) {
			e->seen = sc->gen;
			tampered(sc, e, L_UNKNOWN, "cannot be read any more");
		}
		return;
	}
	if (!e || e->id != info.id) {
		/* new to us (or a descriptor reused by a new link): what the
		 * stage attached, else what runs now, is what later checks
		 * compare with */
		uint32_t want = prog_id_of(prog_fd);

		if (!e) {
			e = lw_xcalloc(1, sizeof(*e));
			lw_hmap_put(&sc->links, (uint64_t)fd, e);
		}
		memset(e, 0, sizeof(*e));
		e->id = info.id;
		e->prog_id = want ? want : info.prog_id;
		e->type = info.type;
		e->stage = w->stage;
		e->watched = watchable(info.type);
		snprintf(e->what, sizeof(e->what), "%s", what);
		if (info.type == BPF_LINK_TYPE_CGROUP) {
			e->attach_type = info.cgroup.attach_type;
			e->cgroup_id = info.cgroup.cgroup_id;
		}
	}
	e->seen = sc->gen;
	if (!e->watched)
		return;
	if (info.type == BPF_LINK_TYPE_CGROUP && !info.cgroup.cgroup_id)
		tampered(sc, e, L_DETACHED, "was detached from its cgroup (BPF_LINK_DETACH)");
	else if (info.prog_id != e->prog_id)
		tampered(sc, e, L_REPLACED, "now runs another program (BPF_LINK_UPDATE)");
}

static void sweep(struct lw_selfcheck *sc)
{
	uint64_t *gone = lw_xmalloc((sc->links.len + 1) * sizeof(*gone));
	size_t n = 0;

	for (size_t i = 0; i < sc->links.cap; i++) {
		struct lk *e = sc->links.slots[i].val;

		if (e && e->seen != sc->gen)
			gone[n++] = sc->links.slots[i].key;
	}
	for (size_t i = 0; i < n; i++)
		free(lw_hmap_del(&sc->links, gone[i]));
	free(gone);
}

static bool has_id(const uint32_t *ids, uint32_t n, uint32_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static void foreign_prog(struct lw_selfcheck *sc, uint32_t id, uint32_t at)
{
	struct bpf_prog_info pi = {0};
	uint32_t len = sizeof(pi);
	int fd;

	if (lw_hmap_get(&sc->foreign, id))
		return;
	lw_hmap_put(&sc->foreign, id, (void *)1);
	sc->tamper[T_FOREIGN]++;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd >= 0) {
		bpf_obj_get_info_by_fd(fd, &pi, &len);
		close(fd);
	}
	lw_warn("self-check: a BPF program that is not ours (id %u, name '%s') is attached to "
		"the cgroup root for %s, beside the gates (another agent, or someone working "
		"around them)",
		id, pi.name, attach_name(at));
}

/* What the kernel says runs on the root cgroup, per attach type of our
 * cgroup links: ours must be there (`bpftool cgroup detach` would show
 * here), anything else is reported. */
static void check_cgroup(struct lw_selfcheck *sc)
{
	bool done[MAX_BPF_ATTACH_TYPE] = {0};

	memset(sc->foreign_now, 0, sizeof(sc->foreign_now));
	if (!sc->g)
		return;
	for (size_t i = 0; i < sc->links.cap; i++) {
		struct lk *e = sc->links.slots[i].val;
		uint32_t ids[MAX_QUERY], cnt = MAX_QUERY, at;

		if (!e || e->type != BPF_LINK_TYPE_CGROUP || e->cgroup_id != sc->root_cgroup_id ||
		    e->attach_type >= MAX_BPF_ATTACH_TYPE || done[e->attach_type])
			continue;
		at = e->attach_type;
		done[at] = true;
		if (bpf_prog_query(lw_gates_cgroup_fd(sc->g), (enum bpf_attach_type)at, 0, NULL,
				   ids, &cnt))
			continue;
		for (size_t k = 0; k < sc->links.cap; k++) {
			struct lk *o = sc->links.slots[k].val;

			if (o && o->type == BPF_LINK_TYPE_CGROUP && o->attach_type == at &&
			    !has_id(ids, cnt, o->prog_id))
				tampered(sc, o, L_DETACHED,
					 "is no longer attached to the cgroup root");
		}
		for (uint32_t k = 0; k < cnt; k++) {
			bool ours = false;

			for (size_t j = 0; j < sc->links.cap && !ours; j++) {
				struct lk *o = sc->links.slots[j].val;

				ours = o && o->prog_id == ids[k];
			}
			if (!ours) {
				sc->foreign_now[at]++;
				foreign_prog(sc, ids[k], at);
			}
		}
	}
}

static void check_msg(struct lw_selfcheck *sc)
{
	uint32_t ids[MAX_QUERY], cnt = MAX_QUERY;
	int prog_fd, map_fd;

	if (!sc->msg_watched || !sc->msg_attached)
		return;
	lw_gates_msg_attach(sc->g, &prog_fd, &map_fd);
	if (bpf_prog_query(map_fd, BPF_SK_MSG_VERDICT, 0, NULL, ids, &cnt))
		return; /* a kernel that cannot say: nothing to conclude */
	if (has_id(ids, cnt, sc->msg_prog_id))
		return;
	sc->msg_attached = false;
	sc->tamper[T_DETACHED]++;
	lw_warn("self-check: the ClientHello gate (sk_msg program %u) was detached from its "
		"sockhash: provider connections are no longer checked by SNI; restart the agent",
		sc->msg_prog_id);
}

static void warn_behind(struct lw_selfcheck *sc, uint64_t now_ns)
{
	struct lw_buf b = {0};

	if (!sc->pend_drops && !sc->pend_meta && !sc->pend_gate_drops &&
	    sc->pend_ring <= LW_SELFCHECK_RING_WARN && sc->pend_busy < LW_SELFCHECK_LAG_WARN_NS &&
	    sc->pend_lag < LW_SELFCHECK_LAG_WARN_NS)
		return;
	if (now_ns < sc->next_warn_ns)
		return; /* gathered until the next warning may go out */
	sc->next_warn_ns = now_ns + LW_SELFCHECK_WARN_S * 1000000000ULL;
	if (sc->pend_drops || sc->pend_meta || sc->pend_gate_drops) {
		lw_buf_printf(
			&b,
			"; lost to a full ring buffer: %llu capture chunks (%llu bytes), "
			"%llu connection/process records, %llu gate events",
			(unsigned long long)sc->pend_drops, (unsigned long long)sc->pend_drop_bytes,
			(unsigned long long)sc->pend_meta, (unsigned long long)sc->pend_gate_drops);
		sc->warns[W_RING_DROPS]++;
	}
	if (sc->pend_ring > LW_SELFCHECK_RING_WARN) {
		lw_buf_printf(&b, "; a ring buffer was %.0f%% full", sc->pend_ring * 100);
		sc->warns[W_RING_FULL]++;
	}
	if (sc->pend_busy >= LW_SELFCHECK_LAG_WARN_NS) {
		lw_buf_printf(&b, "; one loop turn took %.2f s", sc->pend_busy / 1e9);
		sc->warns[W_LOOP_BUSY]++;
	}
	if (sc->pend_lag >= LW_SELFCHECK_LAG_WARN_NS) {
		lw_buf_printf(&b, "; an event was handled %.2f s after it happened",
			      sc->pend_lag / 1e9);
		sc->warns[W_EVENT_LAG]++;
	}
	lw_warn("self-check: falling behind the kernel%s (raise --ring-size, lower --capture-max, "
		"or give the agent more CPU)",
		b.p);
	lw_buf_free(&b);
	sc->pend_drops = sc->pend_drop_bytes = sc->pend_meta = sc->pend_gate_drops = 0;
	sc->pend_busy = sc->pend_lag = 0;
	sc->pend_ring = 0;
}

static void check_behind(struct lw_selfcheck *sc, uint64_t now_ns, const uint64_t ks[LW_ST__MAX],
			 uint64_t gate_drops)
{
	uint64_t busy = 0, lag = 0;

	if (sc->have_last) {
		sc->pend_drops += ks[LW_ST_RB_DROP_CHUNKS] - sc->last_drops;
		sc->pend_drop_bytes += ks[LW_ST_RB_DROP_BYTES] - sc->last_drop_bytes;
		sc->pend_meta += ks[LW_ST_META_DROPS] - sc->last_meta;
		sc->pend_gate_drops += gate_drops - sc->last_gate_drops;
	}
	sc->have_last = true;
	sc->last_drops = ks[LW_ST_RB_DROP_CHUNKS];
	sc->last_drop_bytes = ks[LW_ST_RB_DROP_BYTES];
	sc->last_meta = ks[LW_ST_META_DROPS];
	sc->last_gate_drops = gate_drops;
	for (int i = 0; i < ST__N; i++) {
		struct ring *r = &sc->ring[i];
		double ratio;

		if (!r->u)
			continue;
		ratio = lw_ringuse_size(r->u) ? (double)r->peak / (double)lw_ringuse_size(r->u) : 0;
		r->win[sc->slot] = ratio;
		if (r->peak > r->high_water)
			r->high_water = r->peak;
		if (ratio > sc->pend_ring)
			sc->pend_ring = ratio;
		r->peak = 0;
	}
	if (sc->health) {
		busy = sc->health->busy_max_ns;
		lag = sc->health->lag_max_ns;
		sc->health->busy_max_ns = sc->health->lag_max_ns = 0;
	}
	sc->busy_win[sc->slot] = busy;
	sc->lag_win[sc->slot] = lag;
	sc->pend_busy = busy > sc->pend_busy ? busy : sc->pend_busy;
	sc->pend_lag = lag > sc->pend_lag ? lag : sc->pend_lag;
	warn_behind(sc, now_ns);
}

static void check_attachments(struct lw_selfcheck *sc)
{
	sc->gen++;
	if (sc->cap) {
		struct walk w = {sc, ST_CAPTURE};

		lw_capture_each_link(sc->cap, on_link, &w);
	}
	if (sc->g) {
		struct walk w = {sc, ST_GATES};

		lw_gates_each_link(sc->g, on_link, &w);
	}
	sweep(sc);
	check_cgroup(sc);
	check_msg(sc);
}

void lw_selfcheck_run(struct lw_selfcheck *sc, uint64_t now_ns, const uint64_t kstats[LW_ST__MAX],
		      uint64_t gate_drops)
{
	sc->runs++;
	sc->slot = (size_t)(sc->runs % WINDOW);
	check_attachments(sc);
	check_behind(sc, now_ns, kstats, gate_drops);
}

enum { R_SIZE, R_USED, R_HIGH };

static void ring_family(struct lw_metrics *m, const char *name, const char *help,
			const struct lw_selfcheck *sc, int what)
{
	lw_metrics_family(m, name, LW_METRIC_GAUGE, help);
	for (int i = 0; i < ST__N; i++) {
		const struct ring *r = &sc->ring[i];
		uint64_t v;

		if (!r->u)
			continue;
		if (what == R_SIZE)
			v = lw_ringuse_size(r->u);
		else if (what == R_USED)
			v = lw_ringuse_used(r->u);
		else /* with what this second has seen so far */
			v = r->peak > r->high_water ? r->peak : r->high_water;
		lw_metrics_u64(m, v, "ring", stage_names[i], NULL);
	}
}

void lw_selfcheck_metrics(const struct lw_selfcheck *sc, struct lw_metrics *m)
{
	uint64_t count[ST__N][16] = {{0}};

	lw_metrics_family(m, "leakwatch_bpf_links", LW_METRIC_GAUGE,
			  "BPF links the agent holds, by stage and link type");
	for (size_t i = 0; i < sc->links.cap; i++) {
		const struct lk *e = sc->links.slots[i].val;

		if (e && e->type < 16)
			count[e->stage][e->type]++;
	}
	for (int s = 0; s < ST__N; s++)
		for (uint32_t t = 0; t < 16; t++)
			if (count[s][t])
				lw_metrics_u64(m, count[s][t], "stage", stage_names[s], "type",
					       link_type(t), NULL);
	lw_metrics_family(m, "leakwatch_bpf_attachment_up", LW_METRIC_GAUGE,
			  "1 while an attachment others could remove (cgroup links, the sk_msg "
			  "gate) is still attached and runs our program, else 0");
	for (size_t i = 0; i < sc->links.cap; i++) {
		const struct lk *e = sc->links.slots[i].val;
		char id[16];

		if (!e || !e->watched)
			continue;
		snprintf(id, sizeof(id), "%u", e->id);
		lw_metrics_u64(m, e->state == L_OK, "stage", stage_names[e->stage], "program",
			       e->what, "attach_type",
			       e->type == BPF_LINK_TYPE_CGROUP ? attach_name(e->attach_type)
							       : link_type(e->type),
			       "link_id", id, NULL);
	}
	if (sc->msg_watched)
		lw_metrics_u64(m, sc->msg_attached, "stage", "gates", "program", "gate_msg",
			       "attach_type", attach_name(BPF_SK_MSG_VERDICT), NULL);
	lw_metrics_family(m, "leakwatch_selfcheck_tampering_total", LW_METRIC_COUNTER,
			  "Times the self-check found one of the agent's attachments detached or "
			  "replaced, or a program not ours beside the gates");
	for (int i = 0; i < T__N; i++)
		lw_metrics_u64(m, sc->tamper[i], "kind", tamper_names[i], NULL);
	lw_metrics_family(m, "leakwatch_cgroup_foreign_programs", LW_METRIC_GAUGE,
			  "Programs not the agent's attached to the cgroup root for an attach "
			  "type the gates use");
	for (uint32_t t = 0; t < MAX_BPF_ATTACH_TYPE; t++)
		if (sc->foreign_now[t])
			lw_metrics_u64(m, sc->foreign_now[t], "attach_type", attach_name(t), NULL);
	lw_metrics_family(m, "leakwatch_selfcheck_warnings_total", LW_METRIC_COUNTER,
			  "Falling-behind warnings logged, by cause");
	for (int i = 0; i < W__N; i++)
		lw_metrics_u64(m, sc->warns[i], "cause", warn_names[i], NULL);
	lw_metrics_family(m, "leakwatch_selfcheck_runs_total", LW_METRIC_COUNTER,
			  "Self-checks run (one a second)");
	lw_metrics_u64(m, sc->runs, NULL);

	ring_family(m, "leakwatch_ringbuf_size_bytes", "Size of each BPF ring buffer", sc, R_SIZE);
	ring_family(m, "leakwatch_ringbuf_used_bytes",
		    "Bytes queued in each ring buffer now, not yet read by the agent", sc, R_USED);
	ring_family(m, "leakwatch_ringbuf_high_water_bytes",
		    "Most bytes ever seen queued in each ring buffer when the agent woke", sc,
		    R_HIGH);
	lw_metrics_family(m, "leakwatch_ringbuf_peak_used_ratio", LW_METRIC_GAUGE,
			  "Fullest each ring buffer was when the agent woke, over the last 10 s "
			  "(0..1)");
	for (int i = 0; i < ST__N; i++)
		if (sc->ring[i].u)
			lw_metrics_f64(m, max_d(sc->ring[i].win), "ring", stage_names[i], NULL);
	lw_metrics_family(m, "leakwatch_loop_busy_max_seconds", LW_METRIC_GAUGE,
			  "Longest the agent's loop went without waiting for events, over the "
			  "last 10 s");
	lw_metrics_f64(m, max_of(sc->busy_win) / 1e9, NULL);
	lw_metrics_family(m, "leakwatch_event_lag_max_seconds", LW_METRIC_GAUGE,
			  "Longest between a kernel record (connection, exec, exit, verdict) "
			  "and the agent reading it, over the last 10 s");
	lw_metrics_f64(m, max_of(sc->lag_win) / 1e9, NULL);
}
