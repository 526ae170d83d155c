"""Per-service allowed AI providers (issue 3): the three synchronous gates, against the real agent.

NOT loaded by run.py until the feature lands: rename to test_gates.py (run.py loads test_*.py).
Until then run it alone, as root: python3 tests/integration/wip_test_gates.py [-k NAME] [-v] [--list]

Agent interface these tests assume:
  build/leakwatch run --policy DIR --stats-interval 0      (started in the root netns)
  - stderr says "ready" when the gates are attached; SIGHUP reloads DIR; SIGINT stops it and prints
    `stats: {...}` on stderr with at least dns_answers_learned, dns_malformed, clienthello_malformed,
    gate_denied.
  - stdout: one JSON line per provider connection decision:
    {"event":"provider_connection","ts":...,"service":"checkout","pid":N,"comm":"curl","exe":"/usr/bin/curl",
     "provider":"openai","host":"api.openai.com","dst":"10.214.0.2:443",
     "decision":"allowed"|"denied"|"would_deny","gate":"sni"|"connect"|"quic"}
Network (lwgates.GateNet): dnsmasq answers api.openai.com A 10.214.0.2 + AAAA fd00:214::2,
api.anthropic.com CNAME edge1.anthropic.test CNAME edge2.anthropic.test A 10.214.0.4,
generativelanguage.googleapis.com A 10.214.0.5, internal.example.test A 10.214.0.3 (not a provider);
10.214.0.6 serves every name but is never given out by DNS (only the SNI gate can recognise it).
"""
import os
import shutil
import sys
import time

import lwtest as lw
import lwgates as g
from lwtest import check, fail, test

# service -> (mode, allowed providers)
SERVICES = {
    "checkout": ("enforce", ["openai"]),
    "billing": ("enforce", ["anthropic"]),
    "research": ("monitor", ["openai"]),
    "locked": ("enforce", []),
}
DENIED = {"denied"}
PY_EXE = os.path.basename(os.path.realpath(lw.PY))
NODE_EXE = os.path.basename(os.path.realpath(shutil.which("node") or "node"))


class Gates:
    """GateNet + service cgroups + policy dir + running agent.

    wait_enforcing: after `ready`, wait until a refusal is observed (the dedicated test
    gates_enforcing_at_ready checks that no wait is needed), so that other tests are not flaky."""

    def __init__(self, t, services=None, ttl=g.DEFAULT_TTL, agent=True, wait_enforcing=True, stats_interval=0):
        self.t = t
        self.net = g.GateNet(t, ttl=ttl)
        self.cgs = g.Cgroups(t)
        self.spec = dict(services or SERVICES)
        self.svc = {n: self.cgs.service(n) for n in self.spec}
        self.pol = t.path("policies")
        self.write()
        self.agent = g.GateAgent(t, self.pol, stats_interval=stats_interval) if agent else None
        self.field_problems = []  # event details (host, comm, exe) that were wrong: reported by finish()
        if agent and wait_enforcing:
            self.wait_enforcing()

    def finish(self):
        """Stop the agent (clean exit, sane stats), then fail on any event detail found wrong on the way
        (checked last so that a wrong detail does not hide what the rest of the test would find)."""
        stats = self.agent.stop_ok()
        probs = self.field_problems
        check(not probs, "%d event(s) with wrong details, e.g.: %s" % (len(probs), "; ".join(probs[:4])))
        return stats

    def wait_enforcing(self, timeout=10):
        """Until both TCP gates refuse anthropic for the "locked" service (enforce, nothing allowed):
        connect (name resolved by DNS) and SNI (address DNS never gave)."""
        cg = self.svc["locked"]
        for gate, extra in (("connect", []), ("sni", ["--resolve", "%s:443:%s" % (g.ANTHROPIC, g.HIDDEN_IP)])):
            t0 = time.monotonic()
            while True:
                r = g.curl(self.net, g.ANTHROPIC, cgroup=cg, extra=extra)
                if not r.ok:
                    break
                if time.monotonic() - t0 > timeout:
                    fail("agent's %s gate not enforcing %ss after ready: %s" % (gate, timeout, r.describe()))
                time.sleep(0.1)
            dt = time.monotonic() - t0
            if dt > 0.5:
                self.t.note("%s gate: first refusal %.1fs after ready" % (gate, dt))

    def write(self, **changes):
        """Rewrite the policy dir; changes: service=(mode, allow)."""
        self.spec.update(changes)
        g.write_policies(self.pol, [dict(service=n, cgroup=self.svc[n], mode=m, allow=a)
                                    for n, (m, a) in self.spec.items()])

    def __getitem__(self, name):
        return self.svc[name]

    def learn(self, *names, cgroup=None):
        """Resolve names in the app netns (dnsmasq answers pass the agent's DNS learning)."""
        for n in names:
            got = self.net.resolve(n, cgroup=cgroup)
            check(sorted(got) == sorted(g.ADDRS[n]), "resolving %s gave %s" % (n, got))

    def mark(self):
        return self.net.server.mark()


def _exe_ok(ev, want):
    return os.path.basename(ev.get("exe", "")) == want


def expect_event(gt, r, service, name, decision, gates=("sni", "connect"), comm=None, exe=None, dst=None):
    want_dst = set(dst or g.dsts(name))
    ev = gt.agent.event_for(r, decision=decision, gate=set(gates), dst=want_dst)
    check(ev["service"] == service, "%s: event service %r, expected %r: %s" % (r.client, ev["service"], service, ev))
    check(ev["provider"] == g.PROVIDER_OF[name], "%s: event provider %r, expected %r: %s"
          % (r.client, ev["provider"], g.PROVIDER_OF[name], ev))
    soft = []
    if ev["host"] != name:
        soft.append("host %r, expected %r" % (ev["host"], name))
    if comm and ev["comm"] != comm:
        soft.append("comm %r, expected %r" % (ev["comm"], comm))
    if exe and not _exe_ok(ev, exe):
        soft.append("exe %r, expected .../%s" % (ev["exe"], exe))
    if soft:
        gt.field_problems.append("%s %s %s (gate %s): %s" % (r.client, decision, name, ev["gate"], ", ".join(soft)))
    return ev


def no_decision(gt, r, decisions, what):
    bad = [e for e in gt.agent.provider_events(r.pid) if e.get("decision") in decisions]
    check(not bad, "%s: %s, but got events %s" % (r.client, what, bad[:3]))


def clients(gt, name, cg):
    """The issue's three clients (curl, python3 urllib, node openai SDK), as thunks with expected comm/exe."""
    return [(lambda: g.curl(gt.net, name, cgroup=cg), "curl", "curl"),
            (lambda: g.pyhttps(gt.net, name, cgroup=cg), "python3", PY_EXE),
            (lambda: g.pyhttps(gt.net, name, cgroup=cg, lib="httpclient"), "python3", PY_EXE),
            (lambda: g.node_openai(gt.t, gt.net, name, cgroup=cg), None, NODE_EXE)]


# ---------------------------------------------------------------------------- startup

@test(timeout=120)
def gates_enforcing_at_ready(t):
    """`ready` means enforcing: the first connection after it is judged, for service cgroups that
    existed before the agent started; a service cgroup created later is enforced within 3 s."""
    gt = Gates(t, wait_enforcing=False)
    for svc, name in (("billing", g.OPENAI), ("locked", g.ANTHROPIC)):
        m = gt.mark()
        r = g.curl(gt.net, name, cgroup=gt[svc], extra=["--resolve", "%s:443:%s" % (name, g.HIDDEN_IP)])
        g.check_denied(gt.net, r, m, errnos={"EACCES"})  # SNI gate (an address DNS never gave out)
    m = gt.mark()
    r = g.curl(gt.net, g.ANTHROPIC, cgroup=gt["checkout"])
    g.check_denied(gt.net, r, m)  # connect gate
    late = gt.svc["late"] = gt.cgs.service("late")
    gt.write(late=("enforce", ["openai"]))
    gt.agent.reload()
    t0 = time.monotonic()
    while True:
        m = gt.mark()
        r = g.curl(gt.net, g.ANTHROPIC, cgroup=late)
        if not r.ok or time.monotonic() - t0 > 3:
            break
        time.sleep(0.1)
    g.check_denied(gt.net, r, m)
    t.note("new service cgroup enforced after %.1fs" % (time.monotonic() - t0))
    gt.finish()


# ---------------------------------------------------------------------------- allowed / denied

@test(timeout=180)
def gates_allowed_provider_clients_succeed(t):
    gt = Gates(t)
    for svc, name in (("checkout", g.OPENAI), ("billing", g.ANTHROPIC)):
        for run, comm, exe in clients(gt, name, gt[svc]):
            r = run()
            g.check_allowed(gt.net, r, name)
            expect_event(gt, r, svc, name, "allowed", comm=comm, exe=exe)
            no_decision(gt, r, {"denied", "would_deny"}, "allowed provider")
    gt.finish()


@test(timeout=180)
def gates_disallowed_provider_clients_refused_fast(t):
    gt = Gates(t)
    for svc, name in (("checkout", g.ANTHROPIC), ("checkout", g.GEMINI), ("billing", g.OPENAI),
                      ("locked", g.OPENAI)):
        for run, comm, exe in clients(gt, name, gt[svc]):
            m = gt.mark()
            r = run()
            g.check_denied(gt.net, r, m)
            expect_event(gt, r, svc, name, "denied", comm=comm, exe=exe)
            no_decision(gt, r, {"allowed"}, "refused connection")
    check(gt.net.server.alive(), "test server died")
    stats = gt.finish()
    check(stats["gate_denied"] >= 16, "gate_denied=%d after 16 refused clients" % stats["gate_denied"])


@test(timeout=120)
def gates_sni_gate_without_dns(t):
    """Provider reached at an address DNS never gave out (10.214.0.6): only the ClientHello tells."""
    gt = Gates(t)
    cg = gt["checkout"]
    hidden = {g.dst_str(g.HIDDEN_IP)}
    resolve = ["--resolve", "%s:443:%s" % (g.ANTHROPIC, g.HIDDEN_IP)]
    for run, comm, exe in ((lambda: g.curl(gt.net, g.ANTHROPIC, cgroup=cg, extra=resolve), "curl", "curl"),
                           (lambda: g.hello(gt.net, g.HIDDEN_IP, g.ANTHROPIC, cgroup=cg), "python3", PY_EXE)):
        m = gt.mark()
        r = run()
        g.check_denied(gt.net, r, m, errnos={"EACCES"})
        check(not [c for c in gt.net.server.conns_since(m) if c["raw_in"]],
              "%s: the ClientHello reached the server" % r.client)
        expect_event(gt, r, "checkout", g.ANTHROPIC, "denied", gates=("sni",), comm=comm, exe=exe, dst=hidden)
    # the allowed provider at the same address passes the SNI gate
    r = g.curl(gt.net, g.OPENAI, cgroup=cg, extra=["--resolve", "%s:443:%s" % (g.OPENAI, g.HIDDEN_IP)])
    g.check_allowed(gt.net, r, g.OPENAI)
    expect_event(gt, r, "checkout", g.OPENAI, "allowed", gates=("sni",), dst=hidden)
    gt.finish()


@test(timeout=120)
def gates_sni_gate_node_sdk_fails_fast(t):
    """node swallows the EACCES of a TLS handshake write (verified with a bare sk_msg SK_DROP: the
    SDK hangs until undici's 10 s connect timeout). A denied socket must also be aborted (e.g.
    SOCK_DESTROY; node then sees ECONNABORTED) so the app fails at once."""
    gt = Gates(t)
    m = gt.mark()
    r = g.node_openai(t, gt.net, g.ANTHROPIC, cgroup=gt["checkout"], pin=g.HIDDEN_IP)
    g.check_denied(gt.net, r, m, errnos={"EACCES", "EPERM", "ECONNABORTED", "ECONNRESET"})
    expect_event(gt, r, "checkout", g.ANTHROPIC, "denied", gates=("sni",), exe=NODE_EXE,
                 dst={g.dst_str(g.HIDDEN_IP)})
    gt.finish()


@test(timeout=120)
def gates_literal_ip_without_sni(t):
    gt = Gates(t)
    gt.learn(g.OPENAI, g.ANTHROPIC, g.GEMINI)
    # addresses learned from DNS (A through a CNAME chain, AAAA) refuse a disallowed service at connect
    for svc, ip in (("checkout", g.ANTHROPIC_IP), ("checkout", g.GEMINI_IP), ("billing", g.OPENAI_IP),
                    ("billing", g.OPENAI_IP6)):
        m = gt.mark()
        r = g.nosni(gt.net, ip, cgroup=gt[svc])
        g.check_denied(gt.net, r, m, errnos={"EPERM"})
        check(r.json.get("phase") == "connect", "%s to %s failed in phase %s, expected connect"
              % (svc, ip, r.json.get("phase")))
        check(not gt.net.server.conns_since(m, timeout=0.3), "a refused connect reached the server")
        expect_event(gt, r, svc, g.NAME_OF_ADDR[ip], "denied", gates=("connect",), comm="python3",
                     dst={g.dst_str(ip)})
    # the allowed provider's address works without SNI, and is reported
    for svc, ip in (("checkout", g.OPENAI_IP), ("checkout", g.OPENAI_IP6), ("billing", g.ANTHROPIC_IP)):
        r = g.nosni(gt.net, ip, cgroup=gt[svc])
        g.check_allowed(gt.net, r)
        expect_event(gt, r, svc, g.NAME_OF_ADDR[ip], "allowed", gates=("connect", "sni"), dst={g.dst_str(ip)})
    # an address no DNS answer named is not a provider's
    r = g.nosni(gt.net, g.HIDDEN_IP, cgroup=gt["locked"])
    g.check_allowed(gt.net, r)
    no_decision(gt, r, g.DECISIONS, "unknown address")
    gt.finish()


@test(timeout=120)
def gates_non_provider_https_untouched(t):
    gt = Gates(t)
    for svc in ("checkout", "locked", "research"):
        cg = gt[svc]
        for r in (g.curl(gt.net, g.INTERNAL, cgroup=cg), g.pyhttps(gt.net, g.INTERNAL, cgroup=cg),
                  g.nosni(gt.net, g.INTERNAL_IP, cgroup=cg), g.hello(gt.net, g.INTERNAL_IP, g.INTERNAL, cgroup=cg,
                                                                      writes=3, timeout=5)):
            g.check_allowed(gt.net, r, None if r.client == "python-nosni" else g.INTERNAL)
            time.sleep(0.2)
            check(not gt.agent.provider_events(r.pid), "%s in %s to internal.example.test produced events %s"
                  % (r.client, svc, gt.agent.provider_events(r.pid)))
        r = g.udp(gt.net, g.INTERNAL_IP, cgroup=cg)
        check(r.ok, "udp/443 to a non-provider refused: %s" % r.describe())
    time.sleep(0.3)
    check(len(gt.net.server.udp()) == 6, "datagrams to internal: %d of 6" % len(gt.net.server.udp()))
    gt.finish()


@test(timeout=150)
def gates_monitor_mode_reports_would_deny(t):
    gt = Gates(t)
    cg = gt["research"]  # monitor, allows openai
    for run, comm, exe in clients(gt, g.ANTHROPIC, cg):
        r = run()
        g.check_allowed(gt.net, r, g.ANTHROPIC)
        expect_event(gt, r, "research", g.ANTHROPIC, "would_deny", comm=comm, exe=exe)
        no_decision(gt, r, DENIED, "monitor mode")
    r = g.curl(gt.net, g.OPENAI, cgroup=cg)
    g.check_allowed(gt.net, r, g.OPENAI)
    expect_event(gt, r, "research", g.OPENAI, "allowed")
    # monitor never blocks, not even a ClientHello cut into pieces and records (fail closed is for
    # enforced services only); the same for a process under the default policy
    for where in (cg, None):
        for name, ip in ((g.ANTHROPIC, g.HIDDEN_IP), (g.INTERNAL, g.INTERNAL_IP)):
            r = g.hello(gt.net, ip, name, cgroup=where, writes=3, records=2, timeout=5)
            g.check_allowed(gt.net, r, name)
    # literal IP (connect gate) and QUIC in monitor mode: reported, not refused
    r = g.nosni(gt.net, g.ANTHROPIC_IP, cgroup=cg)
    g.check_allowed(gt.net, r)
    expect_event(gt, r, "research", g.ANTHROPIC, "would_deny", gates=("connect", "sni"))
    r = g.udp(gt.net, g.ANTHROPIC_IP, cgroup=cg)
    check(r.ok, "monitor mode refused UDP/443: %s" % r.describe())
    expect_event(gt, r, "research", g.ANTHROPIC, "would_deny", gates=("quic",))
    # processes outside every service get the default policy (monitor, all providers allowed)
    r = g.curl(gt.net, g.GEMINI)
    g.check_allowed(gt.net, r, g.GEMINI)
    no_decision(gt, r, {"denied", "would_deny"}, "default policy allows all")
    gt.finish()


@test(timeout=150)
def gates_sighup_changes_allowlist(t):
    gt = Gates(t)
    cg = gt["checkout"]
    pid = gt.agent.pid

    def wait_outcome(name, want_ok, what, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            m = gt.mark()
            r = g.curl(gt.net, name, cgroup=cg)
            if r.ok == want_ok:
                return r, m
            if time.monotonic() > deadline:
                fail("%s: still %s %ss after SIGHUP: %s" % (what, "refused" if want_ok else "allowed", timeout,
                                                           r.describe()))
            time.sleep(0.2)

    m = gt.mark()
    g.check_denied(gt.net, g.curl(gt.net, g.ANTHROPIC, cgroup=cg), m)
    gt.write(checkout=("enforce", ["openai", "anthropic"]))
    gt.agent.reload()
    r, _ = wait_outcome(g.ANTHROPIC, True, "anthropic added")
    g.check_allowed(gt.net, r, g.ANTHROPIC)
    expect_event(gt, r, "checkout", g.ANTHROPIC, "allowed")
    gt.write(checkout=("enforce", ["anthropic"]))
    gt.agent.reload()
    r, m = wait_outcome(g.OPENAI, False, "openai removed")
    g.check_denied(gt.net, r, m)
    expect_event(gt, r, "checkout", g.OPENAI, "denied")
    g.check_allowed(gt.net, g.curl(gt.net, g.ANTHROPIC, cgroup=cg), g.ANTHROPIC)
    # monitor -> enforce
    gt.write(research=("enforce", ["openai"]))
    gt.agent.reload()
    deadline = time.monotonic() + 5
    while True:
        m = gt.mark()
        r = g.curl(gt.net, g.GEMINI, cgroup=gt["research"])
        if not r.ok or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    g.check_denied(gt.net, r, m)
    # an invalid policy is refused on SIGHUP: the one in force stays
    bad = os.path.join(gt.agent.policy_dir, "zz-broken.yaml")
    with open(bad, "w") as f:
        f.write("service: broken\nmatch: { cgroup: [unclosed\nallow_providers: [nosuchprovider]\n")
    gt.agent.reload()
    gt.agent.wait_for(lambda evs: any("reload failed" in l for l in gt.agent.err_lines) or None,
                      timeout=5, what="the refused reload logged")
    check(any(".yaml:" in l for l in gt.agent.err_lines), "reload error without FILE:LINE: %s"
          % gt.agent.stderr_tail())
    m = gt.mark()
    g.check_denied(gt.net, g.curl(gt.net, g.OPENAI, cgroup=cg), m)
    g.check_allowed(gt.net, g.curl(gt.net, g.ANTHROPIC, cgroup=cg), g.ANTHROPIC)
    os.unlink(bad)
    check(gt.agent.alive() and gt.agent.pid == pid, "agent restarted or died on SIGHUP")
    stats = gt.finish()
    check(stats.get("policy_reload_errors") == 1, "policy_reload_errors: %s" % stats.get("policy_reload_errors"))


@test(timeout=120)
def gates_quic_refused_for_enforced_services(t):
    gt = Gates(t)
    gt.learn(g.OPENAI, g.ANTHROPIC)
    # every provider address, allowed provider included, from an enforced service
    for ip in (g.OPENAI_IP, g.OPENAI_IP6, g.ANTHROPIC_IP):
        m = gt.mark()
        r = g.udp(gt.net, ip, cgroup=gt["checkout"])
        check(not r.ok and r.errno == "EPERM", "UDP/443 to %s from an enforced service: %s" % (ip, r.describe()))
        check(r.elapsed < g.DENY_WITHIN, "UDP refusal took %.2fs" % r.elapsed)
        time.sleep(0.2)
        check(not gt.net.server.udp(mark=m), "datagram reached the server: %s" % gt.net.server.udp(mark=m))
        expect_event(gt, r, "checkout", g.NAME_OF_ADDR[ip], "denied", gates=("quic",), dst={g.dst_str(ip)})
    # other ports and non-provider addresses are untouched
    r = g.udp(gt.net, g.OPENAI_IP, cgroup=gt["checkout"], port=4443)
    check(r.ok, "UDP to a provider on port 4443 refused: %s" % r.describe())
    r = g.udp(gt.net, g.INTERNAL_IP, cgroup=gt["checkout"])
    time.sleep(0.2)
    check(r.ok and gt.net.server.udp(r.marker), "UDP/443 to a non-provider: %s" % r.describe())
    gt.finish()


# ---------------------------------------------------------------------------- ClientHello parsing

@test(timeout=120)
def gates_ech_refused_on_enforced_service(t):
    gt = Gates(t)
    ech = g.client_hello(g.OPENAI, ech=True)  # the allowed provider, but the real name may be hidden
    m = gt.mark()
    r = g.raw(t, gt.net, g.OPENAI_IP, ech, cgroup=gt["checkout"], read_timeout=0.5)
    one = r.json["conns"][0]
    check(one.get("errno") == "EACCES" and one["phase"] == "write0",
          "ECH ClientHello from an enforced service: %s" % one)
    check(all(c["raw_in"] == 0 for c in gt.net.server.conns_since(m)), "ECH hello reached the server")
    ev = gt.agent.event_for(r, decision="denied")
    check(ev["gate"] in ("sni", "ech") and ev["service"] == "checkout", "ECH event %s" % ev)
    # monitor service: passes, reported
    m = gt.mark()
    r = g.raw(t, gt.net, g.OPENAI_IP, ech, cgroup=gt["research"], read_timeout=0.5)
    check(r.ok and r.json["conns"][0].get("received", 0) > 0, "ECH hello from a monitor service: %s" % r.describe())
    check([c for c in gt.net.server.conns_since(m) if c["sni"] == g.OPENAI], "monitor ECH hello not delivered")
    gt.agent.event_for(r, decision="would_deny")
    gt.finish()


@test(timeout=150)
def gates_clienthello_split_or_fragmented_still_refused(t):
    """A disallowed SNI must be found however the ClientHello is cut: several writes (cork until the
    record is complete), several TLS records (legal fragmentation), or SNI after 8 KiB of padding."""
    gt = Gates(t)
    gt.learn(g.OPENAI)
    cg = gt["checkout"]  # connects to openai's address pass the connect gate; the SNI says anthropic
    for writes, records in ((3, 1), (8, 1), (1, 2), (3, 3)):
        m = gt.mark()
        r = g.hello(gt.net, g.OPENAI_IP, g.ANTHROPIC, cgroup=cg, writes=writes, records=records, timeout=5)
        g.check_denied(gt.net, r, m, errnos={"EACCES"})
        seen = [c for c in gt.net.server.conns_since(m) if c["hello_seen"]]
        check(not seen, "hello in %d writes / %d records reached the server's TLS: %s" % (writes, records, seen))
        if records == 1:
            expect_event(gt, r, "checkout", g.ANTHROPIC, "denied", gates=("sni",), dst={g.dst_str(g.OPENAI_IP)})
            # control: the same cut with the allowed name goes through, and so does what follows it
            r = g.hello(gt.net, g.OPENAI_IP, g.OPENAI, cgroup=cg, writes=writes, timeout=5)
            g.check_allowed(gt.net, r, g.OPENAI)
        else:
            # a fragmented hello need not be parsed: refusing it (fail closed) is enough
            gt.agent.event_for(r, decision="denied", gate="sni")
    padded = g.client_hello(g.ANTHROPIC, before_sni=[g.ext(0x0015, b"\0" * 8192)])
    m = gt.mark()
    r = g.raw(t, gt.net, g.OPENAI_IP, padded, cgroup=cg, read_timeout=0.5, splits=[1000, 5000])
    check(r.json["conns"][0].get("errno") == "EACCES", "padded hello (SNI after 8 KiB): %s" % r.json["conns"][0])
    check(not [c for c in gt.net.server.conns_since(m) if c["hello_seen"]], "padded hello reached the server's TLS")
    gt.finish()


@test(timeout=90)
def gates_getaddrinfo_is_not_a_connection(t):
    """glibc sorts several answers (A + AAAA) by connect()ing a UDP socket to each address on the
    requested port, sending nothing. That is neither QUIC nor a provider connection."""
    gt = Gates(t)
    for svc in ("checkout", "billing", "research"):
        for port in (443, 0):  # 0: no service, as node's dns.lookup asks
            r = g.gai(gt.net, g.OPENAI, cgroup=gt[svc], port=port)
            check(r.ok and r.json["addrs"][:2] == [g.OPENAI_IP6, g.OPENAI_IP],
                  "getaddrinfo(port %d) in %s: %s (without the agent: [%s, %s])"
                  % (port, svc, r.describe(), g.OPENAI_IP6, g.OPENAI_IP))
            time.sleep(0.3)
            evs = gt.agent.provider_events(r.pid)
            check(not evs, "getaddrinfo(port %d) alone in %s produced events: %s" % (port, svc, evs))
    gt.finish()


@test(timeout=150)
def gates_malformed_clienthello(t):
    gt = Gates(t)
    gt.learn(g.OPENAI)
    bad = g.malformed_hellos(g.ANTHROPIC)
    must_count = ["truncated_in_record", "sni_ext_len_past_end", "sni_name_len_oversized", "record_len_oversized",
                  "handshake_len_oversized", "zero_length_record"]
    for svc in ("checkout", "research"):
        m = gt.mark()
        r = g.raw(t, gt.net, g.OPENAI_IP, list(bad.values()), cgroup=gt[svc], read_timeout=0.3)
        check(len(r.json["conns"]) == len(bad), "raw client: %s" % r.describe())
        check(gt.agent.alive(), "agent died on malformed ClientHellos: %s" % gt.agent.stderr_tail())
        leaked = [c for c in gt.net.server.conns_since(m) if c["sni"] == g.ANTHROPIC or c["handshake"]]
        check(not leaked, "a malformed hello from %s got a TLS session: %s" % (svc, leaked))
    # still enforcing afterwards
    m = gt.mark()
    g.check_denied(gt.net, g.hello(gt.net, g.OPENAI_IP, g.ANTHROPIC, cgroup=gt["checkout"], timeout=5), m,
                   errnos={"EACCES"})
    m = gt.mark()
    g.check_denied(gt.net, g.curl(gt.net, g.ANTHROPIC, cgroup=gt["checkout"]), m)
    g.check_allowed(gt.net, g.curl(gt.net, g.OPENAI, cgroup=gt["checkout"]), g.OPENAI)
    stats = gt.finish()
    check(stats["clienthello_malformed"] >= 2 * len(must_count),
          "clienthello_malformed=%d after %d malformed hellos (%s, from 2 services)"
          % (stats["clienthello_malformed"], 2 * len(must_count), ", ".join(must_count)))


# ---------------------------------------------------------------------------- DNS learning

@test(timeout=120)
def gates_dns_learned_before_app_reads(t):
    """Each answer names a never-seen address (10.214.1.N) and the client connects the moment it
    reads the answer: the connect gate must already know it (else ENETUNREACH: no route)."""
    gt = Gates(t)
    gt.net.start_baddns()
    u = g.BADDNS_MODES["unique"]
    r = g.dns_query(gt.net, g.BADDNS_IP, g.ANTHROPIC, cgroup=gt["checkout"], qid=[(u << 8) | i for i in range(1, 31)],
                    connect=True)
    check(r.ok, "dns client: %s" % r.describe())
    res = [c for one in r.json["responses"] for c in one.get("connects", [])]
    check(len(res) == 30, "30 answers, got %d connects: %s" % (len(res), res[:3]))
    late = [c for c in res if c[1] != "EPERM"]
    check(not late, "%d of 30 fresh provider addresses were not refused at once: %s" % (len(late), late[:5]))
    stats = gt.finish()
    check(stats["dns_answers_learned"] >= 30, "dns_answers_learned=%d" % stats["dns_answers_learned"])


@test(timeout=180)
def gates_malformed_dns_answers(t):
    gt = Gates(t, stats_interval=1)  # periodic stats: which answer moved dns_malformed
    gt.learn(g.ANTHROPIC, g.OPENAI)
    gt.net.start_baddns()
    cg = gt["checkout"]
    malformed = ["truncated", "ptr_loop", "ptr_loop_first", "rdlength", "ancount", "remap_truncated",
                 "bad_label", "ptr_forward"]
    odd = ["cname_loop", "long_chain"]  # well-formed but hostile: must not hang or crash the parser
    uncounted = []
    before = gt.agent.next_stats()["dns_malformed"]
    for mo in malformed + odd:
        qid = (g.BADDNS_MODES[mo] << 8) | 9
        r = g.dns_query(gt.net, g.BADDNS_IP, g.ANTHROPIC, cgroup=cg, qid=qid)
        check(r.ok, "dns client (%s): %s" % (mo, r.describe()))
        want = g.baddns_response(g.dns_query_bytes(qid, g.ANTHROPIC), g.BADDNS_MODES[mo], g.HIDDEN_IP)
        check(r.json["response_hex"] == want.hex(), "%s answer not delivered unchanged to the app" % mo)
        check(gt.agent.alive(), "agent died on the %s answer: %s" % (mo, gt.agent.stderr_tail()))
        time.sleep(0.05)
        now = gt.agent.next_stats()["dns_malformed"]
        if mo in malformed and now <= before:
            uncounted.append(mo)
        before = now
    check(not uncounted, "malformed DNS answers not counted in dns_malformed: %s" % uncounted)
    # what was learned from good answers still holds
    m = gt.mark()
    g.check_denied(gt.net, g.nosni(gt.net, g.ANTHROPIC_IP, cgroup=cg), m, errnos={"EPERM"})
    # the address the broken answers tried to introduce is still refused by SNI (or connect)
    m = gt.mark()
    r = g.hello(gt.net, g.HIDDEN_IP, g.ANTHROPIC, cgroup=cg, timeout=5)
    g.check_denied(gt.net, r, m)
    check(not [c for c in gt.net.server.conns_since(m) if c["hello_seen"]], "hello to 10.214.0.6 reached the server")
    g.check_allowed(gt.net, g.curl(gt.net, g.INTERNAL, cgroup=cg), g.INTERNAL)
    g.check_allowed(gt.net, g.curl(gt.net, g.OPENAI, cgroup=cg), g.OPENAI)
    # control: a well-formed answer from the same responder is learned (the broken ones were seen)
    r = g.dns_query(gt.net, g.BADDNS_IP, g.ANTHROPIC, cgroup=cg, qid=(g.BADDNS_MODES["good"] << 8) | 1)
    check(r.json["parsed"]["answers"] == [[g.ANTHROPIC, "A", 5, g.HIDDEN_IP]], "good answer %s" % r.json)
    m = gt.mark()
    r = g.nosni(gt.net, g.HIDDEN_IP, cgroup=cg)
    g.check_denied(gt.net, r, m, errnos={"EPERM"})
    expect_event(gt, r, "checkout", g.ANTHROPIC, "denied", gates=("connect",), dst={g.dst_str(g.HIDDEN_IP)})
    stats = gt.finish()
    check(stats["dns_answers_learned"] >= 3, "dns_answers_learned=%d" % stats["dns_answers_learned"])


if __name__ == "__main__":
    sys.exit(lw.main(sys.argv[1:]))


# ---------------------------------------------------------------------------- selectors beyond cgroups

@test(timeout=120)
def gates_exe_selector_applies_per_process(t):
    """A policy that selects by executable is enforced for that program only, outside any
    service cgroup: python (selected, enforce, openai only) is refused anthropic; curl in the
    same cgroup and namespace (default policy) is not."""
    gt = Gates(t)
    py = os.path.realpath(g.PY)  # the interpreter the python clients run
    with open(os.path.join(gt.agent.policy_dir, "aa-pybot.yaml"), "w") as f:
        f.write('service: pybot\nmatch: { exe: "%s" }\nmode: enforce\nallow_providers: [openai]\n' % py)
    line = gt.agent.reload()
    check(line and "reloaded" in line, "reload with an exe policy: %r / %s" % (line, gt.agent.stderr_tail()))
    m = gt.mark()
    r = g.pyhttps(gt.net, g.ANTHROPIC)
    g.check_denied(gt.net, r, m)
    expect_event(gt, r, "pybot", g.ANTHROPIC, "denied")
    g.check_allowed(gt.net, g.pyhttps(gt.net, g.OPENAI), g.OPENAI)
    g.check_allowed(gt.net, g.curl(gt.net, g.ANTHROPIC), g.ANTHROPIC)
    gt.finish()
