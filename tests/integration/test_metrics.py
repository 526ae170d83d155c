"""Running as a host agent (issue 8): the metrics endpoint, `leakwatch stats`, who may read them,
and the agent's self-check.

- The numbers move with real traffic: TLS requests through the provider namespace raise the
  captured messages and bytes, an alert raises the alert and finding tallies, a refused provider
  raises the gate denials, a dead sink its failures; a tiny ring and --capture-max make losses
  and truncation visible, and the self-check says it falls behind.
- Access: the endpoint listens on loopback only; root reads it, a local user not in
  metrics.allow_uids gets 403 (counted), one in the list reads it; a non-loopback address needs
  metrics.allow_from; `leakwatch stats` prints what the endpoint serves.
- Self-protection: detaching one of the agent's cgroup links (bpftool link detach) or its sk_msg
  gate from outside, or swapping the program of one of its links (BPF_LINK_UPDATE), is reported
  (log and metric) within 5 s; a TLS library the agent cannot hook is exported per file.

Other leakwatch agents may be running on the host: this file finds its agent's links through
its own pid, and only ever compares counters as lower bounds.
"""
import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import lwtest as lw
import lwgates as g
from lwtest import check, fail, test
from test_block import Setup, chat, client_failed

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
NOBODY = 65534
OTHER_UID = 65533  # a user with no name: only metrics.allow_uids makes it special


# --------------------------------------------------------------------------- helpers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_text(text):
    """Prometheus text format 0.0.4 -> {(name, ((label, value), ...)): float}; checks that every
    sample follows a # TYPE line of its family and that no series repeats."""
    out, typed, helped = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            check(kind in ("counter", "gauge"), "odd TYPE line %r" % line)
            check(name not in typed, "family %s has two TYPE lines" % name)
            typed[name] = kind
            continue
        check(line and not line.startswith("#"), "odd line %r" % line)
        m = SAMPLE_RE.match(line)
        check(m, "not a sample line: %r" % line)
        name, labels, value = m.groups()
        check(name in typed and name in helped, "sample %s without HELP/TYPE before it" % name)
        check(name.startswith("leakwatch_"), "metric %s lacks the leakwatch_ prefix" % name)
        lab = []
        rest = labels or ""
        while rest:
            lm = LABEL_RE.match(rest)
            check(lm, "bad labels in %r" % line)
            lab.append((lm.group(1), unescape(lm.group(2))))
            rest = rest[lm.end():]
        key = (name, tuple(lab))
        check(key not in out, "series repeated: %r" % (key,))
        out[key] = float(value)
    return out


class Scraper:
    def __init__(self, addr):
        self.addr = addr

    def raw(self, path="/metrics"):
        with urllib.request.urlopen("http://%s%s" % (self.addr, path), timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()

    def get(self):
        status, ctype, body = self.raw()
        check(status == 200 and ctype.startswith("text/plain; version=0.0.4"),
              "GET /metrics: %s %s" % (status, ctype))
        return parse_text(body)


def val(m, name, **labels):
    """Value of one series (0 when absent), or the sum over the series matching labels."""
    tot, found = 0.0, False
    for (n, lab), v in m.items():
        if n != name:
            continue
        d = dict(lab)
        if all(d.get(k) == str(w) for k, w in labels.items()):
            tot += v
            found = True
    return tot if found else 0.0


def wait_metric(scr, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        m = scr.get()
        if pred(m):
            return m
        if time.monotonic() > deadline:
            fail("%s: not seen within %ss" % (what, timeout))
        time.sleep(0.2)


def metrics_agent(t, s, port, extra=()):
    s.agent = g.GateAgent(t, s.pol, args=("--metrics", "127.0.0.1:%d" % port) + tuple(extra))
    g.note_other_agents(t)
    return Scraper("127.0.0.1:%d" % port)


def as_user(uid, argv, **kw):
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + argv,
                          capture_output=True, text=True, timeout=30, **kw)


def curl_code(uid, url):
    p = as_user(uid, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url])
    return p.stdout.strip()


def agent_fds(pid, kind):
    """fdinfo of the agent's BPF objects of one kind (anon_inode:bpf_link / bpf-prog / bpf-map)."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:" + kind:
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                out.append(dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l))
        except OSError:
            pass
    return out


def stderr_line(agent, pred, timeout):
    """Seconds until a stderr line matching pred appeared (None if not within timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with agent._lock:
            if any(pred(l) for l in agent.err_lines):
                return time.monotonic() - t0
        time.sleep(0.05)
    return None


# --------------------------------------------------------------------------- the numbers move

@test(timeout=180)
def metrics_move_with_traffic(t):
    """A TLS request with an email address raises the captured messages and bytes, the alert and
    finding tallies and (with --alerts-file /dev/full) the file sink's failures; a refused
    provider raises the gate denials of the gate that refused it."""
    s = Setup(t, {"desk": ("enforce", "allow_providers: [openai]\n")}, start=False)
    scr = metrics_agent(t, s, free_port(), ("--alerts-file", "/dev/full"))
    m0 = scr.get()
    body = chat("Please write to dana.%06x@northwind-traders.com about it" % random.randrange(1 << 24))
    f = s.body("pii.json", body)
    p = s.py("desk", "one", body_file=f, tag="metrics-pii")
    rc, js = client_failed(p)
    check(js and js["ok"], "request failed: %s" % js)
    al = s.wait_alert(p.pid)
    m1 = wait_metric(scr, lambda m: val(m, "leakwatch_alert_findings_total", type="email")
                     > val(m0, "leakwatch_alert_findings_total", type="email"), 5, "email finding")
    d = lambda name, **kw: val(m1, name, **kw) - val(m0, name, **kw)  # noqa: E731
    check(d("leakwatch_capture_messages_total") >= 2,
          "captured messages went up by %s (a request and its response)" % d("leakwatch_capture_messages_total"))
    check(d("leakwatch_capture_bytes_total") >= len(body),
          "captured bytes went up by %s, the body alone is %d" % (d("leakwatch_capture_bytes_total"), len(body)))
    check(d("leakwatch_requests_classified_total") >= 1, "no classified request counted")
    check(d("leakwatch_alerts_total", reason=al["reason"], action=al["action"], stage=al.get("stage", "")) >= 1,
          "leakwatch_alerts_total{reason=%s,action=%s} did not move: %s"
          % (al["reason"], al["action"], {k: v for k, v in m1.items() if k[0] == "leakwatch_alerts_total"}))
    check(d("leakwatch_alert_findings_total", type="email", action="alert") >= 1, "email finding not tallied")
    check(d("leakwatch_alerts_emitted_total", outcome="printed") >= 1, "printed alerts did not move")
    check(d("leakwatch_sink_failures_total", sink="file") >= 1,
          "the alert written to /dev/full is not a file sink failure")
    check(val(m1, "leakwatch_target_hooked") >= 1, "no hooked target")
    # a provider the service may not use
    r = g.curl(s.net, g.ANTHROPIC, cgroup=s.cg["desk"])
    ev = s.agent.event_for(r, decision="denied")
    m2 = wait_metric(scr, lambda m: val(m, "leakwatch_gate_decisions_total", gate=ev["gate"], decision="denied")
                     > val(m1, "leakwatch_gate_decisions_total", gate=ev["gate"], decision="denied"),
                     5, "gate denial (%s)" % ev["gate"])
    check(val(m2, "leakwatch_gates_denied_total") > val(m1, "leakwatch_gates_denied_total"),
          "kernel gate_denied counter did not move")
    check(val(m2, "leakwatch_alerts_total", reason="provider_not_allowed", action="block", stage="gate")
          >= 1, "the refused provider is not an alert in leakwatch_alerts_total")
    t.note("capture: +%d messages, +%d bytes; denial by gate %s"
           % (d("leakwatch_capture_messages_total"), d("leakwatch_capture_bytes_total"), ev["gate"]))
    s.agent.stop_ok()


@test(timeout=180)
def metrics_losses_and_falling_behind(t):
    """A 64 KiB ring and --capture-max 256K: one 600 KiB request is truncated and loses chunks to
    the full ring; the counters show both, the self-check logs that it falls behind (with the
    numbers) and counts the warning."""
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    scr = metrics_agent(t, s, free_port(), ("--ring-size", "64K", "--capture-max", "256K"))
    m0 = scr.get()
    check(val(m0, "leakwatch_ringbuf_size_bytes", ring="capture") == 65536,
          "capture ring size %s, expected 65536" % val(m0, "leakwatch_ringbuf_size_bytes", ring="capture"))
    big = chat("x" * (600 * 1024))
    p = s.py("desk", "one", body_file=s.body("big.json", big), tag="metrics-big")
    rc, js = client_failed(p)
    check(js and js["ok"], "request failed: %s" % js)
    m1 = wait_metric(scr, lambda m: val(m, "leakwatch_capture_ringbuf_dropped_chunks_total") > 0
                     and val(m, "leakwatch_capture_truncated_messages_total") > 0, 10, "losses")
    check(val(m1, "leakwatch_capture_ringbuf_dropped_bytes_total") > 0, "dropped bytes not counted")
    check(val(m1, "leakwatch_capture_truncated_bytes_total") >= len(big) - 256 * 1024,
          "truncated bytes %s < %d" % (val(m1, "leakwatch_capture_truncated_bytes_total"), len(big) - 256 * 1024))
    check(val(m1, "leakwatch_ringbuf_high_water_bytes", ring="capture") > 0,
          "the ring's high-water mark never moved")
    took = stderr_line(s.agent, lambda l: "falling behind" in l and "full ring buffer" in l, 5)
    check(took is not None, "no falling-behind warning; stderr: %s" % s.agent.stderr_tail())
    line = next(l for l in s.agent.err_lines if "falling behind" in l)
    check(re.search(r"\d+ capture chunks \(\d+ bytes\)", line), "the warning lacks the numbers: %s" % line)
    m2 = wait_metric(scr, lambda m: val(m, "leakwatch_selfcheck_warnings_total", cause="ring_drops") >= 1, 3,
                     "ring_drops warning metric")
    t.note("dropped %d chunks, truncated %d messages; %s" % (
        val(m2, "leakwatch_capture_ringbuf_dropped_chunks_total"),
        val(m2, "leakwatch_capture_truncated_messages_total"), line.split("self-check: ")[-1][:160]))
    s.agent.stop_ok()


# --------------------------------------------------------------------------- access

@test(timeout=150)
def metrics_access_loopback_root_and_allowed_uids(t):
    """The endpoint listens on 127.0.0.1 only (not on the host's other addresses); root gets 200,
    a local user neither root nor in metrics.allow_uids gets 403 and is counted, a user in
    allow_uids gets 200; `leakwatch stats` prints the endpoint's series and numbers in all three
    formats, refuses as nobody (exit 1), and exits 1 when no agent listens, 2 on a usage error.
    The state directory and an existing alerts file open to others are made private."""
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    port = free_port()
    addr = "127.0.0.1:%d" % port
    conf = t.path("leakwatch.yaml")
    with open(conf, "w") as f:
        f.write("metrics:\n  listen: %s\n  allow_uids: [%d]\n" % (addr, OTHER_UID))
    state = t.path("state")
    os.makedirs(state, mode=0o755)
    os.chmod(state, 0o755)
    afile = t.path("alerts.jsonl")
    with open(afile, "w"):
        pass
    os.chmod(afile, 0o644)
    s.agent = g.GateAgent(t, s.pol, args=("--config", conf, "--state-dir", state, "--alerts-file", afile))
    g.note_other_agents(t)
    scr = Scraper(addr)
    check(os.stat(state).st_mode & 0o777 == 0o700, "state dir mode %o" % (os.stat(state).st_mode & 0o777))
    check(os.stat(afile).st_mode & 0o777 == 0o600, "alerts file mode %o" % (os.stat(afile).st_mode & 0o777))
    check(os.stat(os.path.join(state, "leakwatch.db")).st_mode & 0o777 == 0o600, "store mode")
    # loopback only: the listening socket's address, and the host's other addresses refuse
    with open("/proc/net/tcp") as f:
        listen = [l.split()[1] for l in f.readlines()[1:] if l.split()[3] == "0A"
                  and int(l.split()[1].split(":")[1], 16) == port]
    check(listen == ["0100007F:%04X" % port], "listening sockets on port %d: %s" % (port, listen))
    others = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                            text=True).stdout.split()
    for a in [x.split("/")[0] for i, x in enumerate(others) if i and others[i - 1] == "inet"]:
        c = socket.socket()
        c.settimeout(3)
        try:
            err = c.connect_ex((a, port))
        finally:
            c.close()
        check(err != 0, "port %d answers on the host's address %s" % (port, a))
        t.note("%s:%d refused (errno %d)" % (a, port, err))
    check(curl_code(0, "http://%s/metrics" % addr) == "200", "root was not served")
    check(curl_code(NOBODY, "http://%s/metrics" % addr) == "403", "nobody was not refused")
    check(curl_code(OTHER_UID, "http://%s/metrics" % addr) == "200", "a uid in allow_uids was not served")
    m = scr.get()
    check(val(m, "leakwatch_metrics_refused_total", reason="uid") == 1,
          "refusals by uid: %s" % val(m, "leakwatch_metrics_refused_total", reason="uid"))
    check(val(m, "leakwatch_metrics_requests_total", code="403") == 1, "403s not counted")
    check(any("refused" in l and "uid %d" % NOBODY in l for l in s.agent.err_lines), "refusal not logged")
    p = as_user(NOBODY, [lw.BIN, "stats", "--metrics", addr])
    check(p.returncode == 1 and "403" in p.stderr, "stats as nobody: rc %d %s" % (p.returncode, p.stderr))
    # `leakwatch stats` says what the endpoint says (counters only grow: a <= stats <= c)
    a = scr.get()
    js = subprocess.run([lw.BIN, "stats", "--metrics", addr, "--format", "json"], capture_output=True, text=True,
                        timeout=30)
    tab = subprocess.run([lw.BIN, "stats", "--config", conf], capture_output=True, text=True, timeout=30)
    prom = subprocess.run([lw.BIN, "stats", "--metrics", addr, "--format", "prometheus"], capture_output=True,
                          text=True, timeout=30)
    c = scr.get()
    check(js.returncode == 0 and tab.returncode == 0 and prom.returncode == 0,
          "stats failed: %s %s %s" % (js.stderr, tab.stderr, prom.stderr))
    fromjson = {}
    for fam in json.loads(js.stdout)["metrics"]:
        for smp in fam["samples"]:
            fromjson[(fam["name"], tuple(smp["labels"].items()))] = smp["value"]
    fromtab = {}
    for line in tab.stdout.splitlines():
        k, _, v = line.rpartition(" ")
        fromtab[k.strip()] = v
    fromprom = parse_text(prom.stdout)
    check(set(fromjson) == set(a) == set(fromprom), "series differ: json-only %s, endpoint-only %s"
          % (sorted(set(fromjson) - set(a))[:5], sorted(set(a) - set(fromjson))[:5]))
    check(len(fromtab) == len(a), "table has %d lines, endpoint %d series" % (len(fromtab), len(a)))
    moving = ("leakwatch_uptime_seconds", "leakwatch_loop_busy_max_seconds", "leakwatch_event_lag_max_seconds",
              "leakwatch_ringbuf_used_bytes", "leakwatch_ringbuf_peak_used_ratio", "leakwatch_ringbuf_high_water_bytes",
              "leakwatch_cgroup_foreign_programs", "leakwatch_bpf_links", "leakwatch_target_hooked",
              "leakwatch_target_probes", "leakwatch_targets")
    for k, v in fromjson.items():
        name = k[0]
        if name in moving:
            continue
        check(v is not None and a[k] <= v <= c[k], "%s%s: endpoint %s then %s, stats json %s"
              % (name, dict(k[1]), a[k], c[k], v))
    same = [k for k in a if a[k] == c[k] and k[0] not in moving]
    for k in same:
        lab = ",".join('%s="%s"' % (n, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
                       for n, v in k[1])
        key = k[0] + ("{%s}" % lab if lab else "")
        check(key in fromtab and float(fromtab[key]) == a[k], "table: %s = %s, endpoint %s"
              % (key, fromtab.get(key), a[k]))
    t.note("stats: %d series, %d compared exactly in the table" % (len(fromjson), len(same)))
    p = subprocess.run([lw.BIN, "stats", "--metrics", "127.0.0.1:%d" % free_port()], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 1 and "no agent answers" in p.stderr, "stats without agent: %d %s"
          % (p.returncode, p.stderr))
    p = subprocess.run([lw.BIN, "stats", "--format", "xml"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 2, "stats usage error exits %d" % p.returncode)
    s.agent.stop_ok()


@test(timeout=60)
def metrics_nonloopback_needs_allow_from(t):
    """--metrics 0.0.0.0:PORT without metrics.allow_from is refused at start (exit 1, before any
    BPF program is loaded); a malformed allow_from entry is a FILE:LINE error."""
    pol = t.path("pol")
    os.makedirs(pol)
    shutil.copy(os.path.join(lw.REPO, "policies", "providers.yaml"), pol)
    with open(os.path.join(pol, "default.yaml"), "w") as f:
        f.write("default: true\nmode: monitor\nallow_providers: all\n")
    port = free_port()
    p = subprocess.run([lw.BIN, "run", "--policy", pol, "--state-dir", t.path("st"), "--metrics",
                        "0.0.0.0:%d" % port, "--duration", "5"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 1 and "allow_from" in p.stderr and "ready" not in p.stderr,
          "non-loopback without allow_from: rc %d, stderr %s" % (p.returncode, p.stderr[-400:]))
    conf = t.path("bad.yaml")
    with open(conf, "w") as f:
        f.write("metrics:\n  listen: 0.0.0.0:%d\n  allow_from: [10.0.0.1/8]\n  allow_uids: [no-such-user-x]\n"
                % port)
    p = subprocess.run([lw.BIN, "run", "--policy", pol, "--state-dir", t.path("st"), "--config", conf,
                        "--duration", "5"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 1 and "bad.yaml:3:" in p.stderr and "bad.yaml:4:" in p.stderr,
          "config errors: rc %d, stderr %s" % (p.returncode, p.stderr[-400:]))
    p = subprocess.run([lw.BIN, "run", "--metrics", "127.0.0.1", "--policy", pol], capture_output=True, text=True,
                       timeout=30)
    check(p.returncode == 2, "--metrics without a port exits %d" % p.returncode)


@test(timeout=150)
def metrics_nonloopback_local_user_still_by_uid(t):
    """Bound to 0.0.0.0 with metrics.allow_from covering the host's own address, a local user who
    connects to that address is still judged by uid (403 as nobody, 200 as root): allow_from is for
    other hosts, not a way around allow_uids."""
    others = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                            text=True).stdout.split()
    addrs = [x.split("/")[0] for i, x in enumerate(others) if i and others[i - 1] == "inet"]
    if not addrs:
        t.note("no global IPv4 address on this host: checked with 127.0.0.1 only")
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    port = free_port()
    conf = t.path("leakwatch.yaml")
    with open(conf, "w") as f:
        f.write("metrics:\n  listen: 0.0.0.0:%d\n  allow_from: [%s]\n"
                % (port, ", ".join(a + "/32" for a in addrs) or "192.0.2.0/24"))
    s.agent = g.GateAgent(t, s.pol, args=("--config", conf))
    for a in addrs + ["127.0.0.1"]:
        url = "http://%s:%d/metrics" % (a, port)
        check(curl_code(0, url) == "200", "root refused on %s" % a)
        check(curl_code(NOBODY, url) == "403", "nobody served on %s" % a)
    m = Scraper("127.0.0.1:%d" % port).get()
    check(val(m, "leakwatch_metrics_refused_total", reason="uid") == len(addrs) + 1,
          "refusals by uid %s" % val(m, "leakwatch_metrics_refused_total", reason="uid"))
    check(val(m, "leakwatch_metrics_refused_total", reason="address") == 0, "a local peer was judged by address")
    s.agent.stop_ok()


# --------------------------------------------------------------------------- self-protection

@test(timeout=150)
def metrics_selfcheck_detached_links(t):
    """`bpftool link detach` of the agent's cgroup/connect4 link, then `bpftool prog detach` of its
    sk_msg gate: each is logged within 5 s and shows in leakwatch_bpf_attachment_up (0) and
    leakwatch_selfcheck_tampering_total; the other attachments stay up."""
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    scr = metrics_agent(t, s, free_port())
    pid = s.agent.pid
    m0 = scr.get()
    links = [l for l in agent_fds(pid, "bpf_link") if l.get("link_type") == "cgroup"]
    check(len(links) >= 7, "agent %d holds %d cgroup links: %s" % (pid, len(links), links))
    ups = {dict(k[1]).get("program"): v for k, v in m0.items() if k[0] == "leakwatch_bpf_attachment_up"}
    check(ups.get("gate_connect4") == 1 and ups.get("gate_msg") == 1, "attachments before: %s" % ups)
    # BPF_CGROUP_INET4_CONNECT = 10
    connect4 = [l["link_id"] for l in links if l.get("attach_type") == "10"]
    check(len(connect4) == 1, "connect4 links: %s" % connect4)
    lid = connect4[0]
    key = ("leakwatch_bpf_attachment_up", (("stage", "gates"), ("program", "gate_connect4"),
                                           ("attach_type", "cgroup_inet4_connect"), ("link_id", lid)))
    check(m0.get(key) == 1, "no attachment_up series for link %s" % lid)
    r = subprocess.run(["bpftool", "link", "detach", "id", lid], capture_output=True, text=True)
    check(r.returncode == 0, "bpftool link detach: %s" % r.stderr)
    took = stderr_line(s.agent, lambda l: "self-check" in l and "link %s " % lid in l and "detached" in l, 5)
    check(took is not None, "detached link %s not reported within 5 s; stderr: %s" % (lid, s.agent.stderr_tail()))
    m1 = scr.get()
    check(m1.get(key) == 0, "attachment_up of the detached link is %s" % m1.get(key))
    check(val(m1, "leakwatch_selfcheck_tampering_total", kind="detached") == 1, "tampering not counted")
    up = [dict(k[1])["program"] for k, v in m1.items() if k[0] == "leakwatch_bpf_attachment_up" and v == 1]
    check(len(up) == len(links), "other attachments: %s up" % up)
    # the sk_msg gate is attached to a map, not through a link
    progs = [p for p in agent_fds(pid, "bpf-prog") if p.get("prog_type") == "16"]  # BPF_PROG_TYPE_SK_MSG
    maps = [m for m in agent_fds(pid, "bpf-map") if m.get("map_type") == "18"]  # BPF_MAP_TYPE_SOCKHASH
    names = {}
    for mm in maps:
        info = json.loads(subprocess.run(["bpftool", "map", "show", "id", mm["map_id"], "-j"],
                                         capture_output=True, text=True).stdout or "{}")
        names[info.get("name")] = mm["map_id"]
    check(len(progs) == 1 and "socks" in names, "agent's sk_msg programs %s, sockhash maps %s" % (progs, names))
    r = subprocess.run(["bpftool", "prog", "detach", "id", progs[0]["prog_id"], "msg_verdict", "id",
                        names["socks"]], capture_output=True, text=True)
    check(r.returncode == 0, "bpftool prog detach: %s" % r.stderr)
    took2 = stderr_line(s.agent, lambda l: "self-check" in l and "ClientHello gate" in l, 5)
    check(took2 is not None, "detached sk_msg gate not reported within 5 s; stderr: %s" % s.agent.stderr_tail())
    m2 = scr.get()
    check(val(m2, "leakwatch_bpf_attachment_up", program="gate_msg") == 0, "gate_msg still up")
    check(val(m2, "leakwatch_selfcheck_tampering_total", kind="detached") == 2, "second detach not counted")
    t.note("detected: cgroup link after %.2f s, sk_msg gate after %.2f s" % (took, took2))
    s.agent.stop_ok()


@test(timeout=120)
def metrics_target_that_cannot_be_hooked(t):
    """A libssl-named library whose code section the ELF section table misplaces (the loader does
    not care, the uprobe offset lands past the end of the file): every attach fails, the agent
    says so, and the metrics show the file as not hooked with its failed probes."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        fail("no C compiler to build the test library")
    d = t.tmpdir()
    src = os.path.join(d, "fake.c")
    with open(src, "w") as f:
        f.write("int SSL_write(void *s, const void *b, int n) { return n; }\n"
                "int SSL_read(void *s, void *b, int n) { return 0; }\n")
    lib = os.path.join(d, "libssl.so.77")
    lw._sh([cc, "-shared", "-fPIC", "-O1", "-o", lib, src])
    with open(lib, "r+b") as f:
        elf = bytearray(f.read())
        size = len(elf)
        shoff = int.from_bytes(elf[0x28:0x30], "little")
        shentsize = int.from_bytes(elf[0x3a:0x3c], "little")
        shnum = int.from_bytes(elf[0x3c:0x3e], "little")
        shstrndx = int.from_bytes(elf[0x3e:0x40], "little")
        stroff = int.from_bytes(elf[shoff + shstrndx * shentsize + 0x18:][:8], "little")
        patched = 0
        for i in range(shnum):
            h = shoff + i * shentsize
            name_off = int.from_bytes(elf[h:h + 4], "little")
            name = bytes(elf[stroff + name_off:]).split(b"\0", 1)[0]
            if name == b".text":
                elf[h + 0x18:h + 0x20] = (size + (1 << 20)).to_bytes(8, "little")
                patched += 1
        check(patched == 1, "no .text section in the test library")
        f.seek(0)
        f.write(elf)
    holder = t.spawn([lw.PY, "-c", "import ctypes,sys,time; l=ctypes.CDLL(sys.argv[1]); "
                      "print('mapped', l.SSL_write(None, None, 3), flush=True); time.sleep(600)", lib],
                     name="holder")
    holder.wait_line(lambda l: l.startswith("mapped 3"), timeout=10)
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    scr = metrics_agent(t, s, free_port())
    m = scr.get()
    check(val(m, "leakwatch_target_hooked", path=lib) == 0 and
          any(k[0] == "leakwatch_target_hooked" and dict(k[1]).get("path") == lib for k in m),
          "no leakwatch_target_hooked{path=%s} 0 series: %s" % (lib, [k for k in m if k[0] == "leakwatch_target_hooked"]))
    failed = val(m, "leakwatch_target_probes", path=lib, state="failed")
    check(failed >= 4, "failed probes of %s: %s (SSL_write and SSL_read, entry and return)" % (lib, failed))
    check(val(m, "leakwatch_target_probes", path=lib, state="attached") == 0, "some probe attached")
    check(val(m, "leakwatch_targets", state="failed") >= 1, "leakwatch_targets{state=failed} is 0")
    check(val(m, "leakwatch_probe_attach_failures_total") >= failed, "attach failures total")
    check(any("cannot hook" in l and lib in l for l in s.agent.err_lines), "no 'cannot hook' warning")
    t.note("%s: %d probes failed" % (lib, failed))
    holder.kill()
    s.agent.stop_ok()


def _bpf(cmd, attr):
    """The bpf(2) system call with a zero-padded attribute buffer; returns the result or raises."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(bytes(attr).ljust(128, b"\0"), 128)
    r = libc.syscall(321, cmd, buf, 128)  # __NR_bpf on x86_64
    if r < 0:
        raise OSError(ctypes.get_errno(), "bpf(%d): %s" % (cmd, os.strerror(ctypes.get_errno())))
    return r


def allow_all_connect4_prog():
    """A cgroup/connect4 program that allows everything (r0 = 1; exit): a stand-in for whatever
    someone would swap into the agent's link."""
    import ctypes
    import struct
    insns = ctypes.create_string_buffer(bytes.fromhex("b700000001000000" "9500000000000000"), 16)
    lic = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQII16sII", 18, 2, ctypes.addressof(insns), ctypes.addressof(lic),
                       0, 0, 0, 0, 0, b"lwt_allow_all", 0, 10)  # CGROUP_SOCK_ADDR, INET4_CONNECT
    return _bpf(5, attr)  # BPF_PROG_LOAD


@test(timeout=120)
def metrics_selfcheck_replaced_link(t):
    """Someone with the agent's cgroup/connect4 link in hand swaps its program (BPF_LINK_UPDATE, as
    root can after BPF_LINK_GET_FD_BY_ID): the agent reports the link as replaced within 5 s, with
    the metric at 0 and leakwatch_selfcheck_tampering_total{kind="replaced"} at 1."""
    import struct
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    scr = metrics_agent(t, s, free_port())
    links = [l for l in agent_fds(s.agent.pid, "bpf_link") if l.get("link_type") == "cgroup"
             and l.get("attach_type") == "10"]
    check(len(links) == 1, "connect4 links of the agent: %s" % links)
    lid = links[0]["link_id"]
    prog = allow_all_connect4_prog()
    lw.add_cleanup(lambda: os.close(prog), "allow-all prog fd")
    link = _bpf(30, struct.pack("<III", int(lid), 0, 0))  # BPF_LINK_GET_FD_BY_ID
    lw.add_cleanup(lambda: os.close(link), "link fd")
    _bpf(29, struct.pack("<IIII", link, prog, 0, 0))  # BPF_LINK_UPDATE
    took = stderr_line(s.agent, lambda l: "self-check" in l and "link %s " % lid in l and "another program" in l, 5)
    check(took is not None, "replaced link %s not reported within 5 s; self-check lines: %s" % (lid, [l for l in s.agent.err_lines if "self-check" in l]))
    m = scr.get()
    check(val(m, "leakwatch_bpf_attachment_up", program="gate_connect4") == 0, "gate_connect4 still up")
    check(val(m, "leakwatch_selfcheck_tampering_total", kind="replaced") == 1, "replacement not counted")
    check(val(m, "leakwatch_selfcheck_tampering_total", kind="detached") == 0, "counted as detached too")
    t.note("replaced link reported after %.2f s" % took)
    s.agent.stop_ok()
