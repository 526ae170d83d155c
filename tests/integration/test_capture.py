"""Capture (issue 2): real clients, real kernel, `leakwatch trace --format json`.

Every test starts its own namespaces, test server and agent; all checks compare what
the clients really sent/received (server log, client output) with what the agent printed.
"""
import json
import os
import shutil
import time

import lwcommon
import lwtest as lw
from lwtest import check, fail, test

KiB = 1024
SYS_LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
SYS_LIBCRYPTO = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"

# (request body size, body kind, response size)
SIZES = [(100, "text", 1000), (40 * KiB, "bin", 40 * KiB), (600 * KiB, "text", 200 * KiB)]


def _per_size(t, name, client_fn, sizes=SIZES, **kw):
    net = t.net()
    agent = t.agent()
    xs = []
    for size, kind, rsize in sizes:
        rid = "%s-%d" % (name, size)
        xs.append(client_fn(t, net, lwcommon.body(rid, size, kind), rid, rsize))
    seen = set()
    for x in xs:
        c = lw.verify_exchange(agent, x, **kw)
        check(c.id not in seen, "%s: two separate connections got the same conn id %s" % (x.client, c.id))
        seen.add(c.id)
        t.note("%s %dB: conn %s func %s lib %s" % (x.client, x.body_len, c.id, sorted(c.field("func")),
                                                   sorted(c.field("lib"))))
    agent.stop_ok()
    return xs


# --------------------------------------------------------------------------- one client, three sizes

@test(timeout=120)
def capture_curl(t):
    _per_size(t, "curl", lw.client_curl)


@test(timeout=120)
def capture_python_urllib(t):
    _per_size(t, "urllib", lambda t, n, b, r, s: lw.client_py(t, n, "urllib", b, r, s))


@test(timeout=120)
def capture_python_http_client(t):
    _per_size(t, "httpclient", lambda t, n, b, r, s: lw.client_py(t, n, "httpclient", b, r, s))


@test(timeout=120)
def capture_node_https(t):
    _per_size(t, "nodehttps", lw.client_node_https)


@test(timeout=120)
def capture_openssl_s_client(t):
    _per_size(t, "sclient", lw.client_s_client, sizes=SIZES[:2])


@test(timeout=150)
def capture_openai_sdk(t):
    net = t.net()
    agent = t.agent()
    xs = []
    for size in (100, 40 * KiB, 600 * KiB):
        rid = "sdk-%d" % size
        prompt = ("Summarize this customer record. CANARY-%s-7f3a9c " % rid
                  + lwcommon.text_body(rid, size).decode())
        x = lw.client_openai(t, net, prompt, rid, 2000)
        x.prompt = prompt
        xs.append(x)
    for x in xs:
        c = lw.verify_exchange(agent, x)
        _, m = lw.find_request(agent.snapshot(), x.body_sha, {x.pid})
        check(m["start"].startswith("POST /v1/chat/completions "), "sdk request line %r" % m["start"])
        try:
            req = json.loads(m["body"])
            content = req["messages"][0]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            fail("captured SDK body is not the chat.completions JSON: %r" % e)
        check(content == x.prompt, "captured prompt differs from the planted prompt (%d vs %d chars)"
              % (len(content), len(x.prompt)))
        auth = m["headers"].get("authorization", "")
        check(auth == "Bearer sk-lwt-test-key-not-a-secret", "authorization header %r" % auth)
        t.note("sdk %dB body: conn %s funcs %s" % (x.body_len, c.id, sorted(c.field("func"))))
    agent.stop_ok()


# --------------------------------------------------------------------------- concurrency

def _check_parallel(t, agent, procs, nreq, wait=30):
    """procs: {Proc: {worker: tid}}; every request body exactly once, in its worker's connection."""
    workers = {}
    for p, tids in procs.items():
        for w, tid in tids.items():
            workers[int(w)] = (p.pid, tid)
    pids = {pid for pid, _ in workers.values()}
    markers = {(w, r): lwcommon.parallel_marker(w, r) for w in workers for r in range(nreq)}

    def all_there(evs):
        blob = b"".join(c.egress for c in lw.conns(evs, pids).values())
        return all(m in blob for m in markers.values())

    agent.wait_for(all_there, wait)
    evs = agent.snapshot()
    lw.check_events(evs)
    cs = lw.conns(evs, pids)
    allc = lw.conns(evs)
    for cid in cs:
        check(allc[cid].pids <= pids and len(allc[cid].pids) == 1,
              "conn %s carries messages of pids %s" % (cid, sorted(allc[cid].pids)))
    # exactly once across every captured byte stream of the client processes
    streams = [c.egress for c in cs.values()] + [c.ingress for c in cs.values()]
    missing = [k for k, m in markers.items() if sum(s.count(m) for s in streams) == 0]
    dup = [k for k, m in markers.items() if sum(s.count(m) for s in streams) > 1]
    check(not missing, "%d of %d request markers never captured, e.g. %s; %s"
          % (len(missing), len(markers), missing[:5], [c.describe() for c in list(cs.values())[:4]]))
    check(not dup, "%d markers captured more than once, e.g. %s" % (len(dup), dup[:5]))
    for w, (pid, tid) in sorted(workers.items()):
        mine = [c for c in cs.values() if markers[(w, 0)] in c.egress]
        check(len(mine) == 1, "worker %d: first marker in %d connections" % (w, len(mine)))
        c = mine[0]
        check(c.pids == {pid}, "worker %d conn %s: pids %s, expected %d" % (w, c.id, sorted(c.pids), pid))
        check(c.field("tid") == {tid}, "worker %d conn %s: tids %s, expected %s" % (w, c.id, sorted(c.field("tid")), tid))
        check(c.field("dst") == {lw.PROV_DST} and c.field("sni") == {lw.SNI},
              "worker %d conn %s: dst %s sni %s" % (w, c.id, c.field("dst"), c.field("sni")))
        sp = c.seq_problems()
        check(not sp, "worker %d conn %s: %s" % (w, c.id, "; ".join(sp)))
        reqs, rest, errs = lw.parse_http(c.egress, True)
        check(not errs and not rest, "worker %d conn %s: egress is not a clean request stream: errors %s, "
              "%d trailing bytes %r" % (w, c.id, errs[:2], len(rest), rest[:60]))
        check(len(reqs) == nreq, "worker %d conn %s: %d requests parsed, expected %d" % (w, c.id, len(reqs), nreq))
        for r, m in enumerate(reqs):
            want = lwcommon.parallel_body(w, r)
            if m["body"] != want:
                fail("worker %d conn %s request %d: captured body differs (%d B vs %d B; starts %r)"
                     % (w, c.id, r, len(m["body"]), len(want), m["body"][:40]))
        resps, rest, errs = lw.parse_http(c.ingress, False)
        check(not errs and not rest and len(resps) == nreq,
              "worker %d conn %s: ingress has %d responses (errors %s, %d trailing bytes)"
              % (w, c.id, len(resps), errs[:2], len(rest)))
        for r, m in enumerate(resps):
            want = lwcommon.resp_body("par-%d-%d" % (w, r), lwcommon.parallel_resp_size(w, r))
            if m["body"] != want:
                fail("worker %d conn %s response %d differs (%d B vs %d B)" % (w, c.id, r, len(m["body"]), len(want)))
    return cs


@test(timeout=200)
def parallel_8_clients_x_200(t):
    net = t.net()
    agent = t.agent()
    nreq = 200
    ps = [net.spawn([lw.PY, lw.PYCLIENT, "parallel", "--cafile", net.certs["ca"], "--threads", "2",
                     "--requests", str(nreq), "--worker-base", str(2 * i)], name="par%d" % i) for i in range(4)]
    t0 = time.monotonic()
    procs = {}
    for p in ps:
        p.wait_ok(150)
        procs[p] = p.json_out()["tids"]
    t.note("1600 requests took %.1fs" % (time.monotonic() - t0))
    _check_parallel(t, agent, procs, nreq)
    agent.stop_ok()


# --------------------------------------------------------------------------- robustness

@test(timeout=120)
def client_killed_mid_request(t):
    net = t.net()
    agent = t.agent()
    ca = net.certs["ca"]
    slow = net.spawn([lw.PY, lw.PYCLIENT, "slow", "--cafile", ca, "--req-id", "killed-slow",
                      "--total", str(8 << 20), "--piece", str(16 * KiB), "--pause", "0.03"], name="slow")
    slow.wait_line(lambda l: "sending" in l)
    time.sleep(0.8)
    slow.kill()
    stall = net.spawn([lw.PY, lw.PYCLIENT, "stall", "--cafile", ca, "--req-id", "killed-stall",
                       "--total", str(24 << 20)], name="stall")
    stall.wait_line(lambda l: "writing" in l)
    time.sleep(1.5)
    check(stall.alive(), "stall client finished its 24 MiB write although the server never reads")
    stall.kill()
    time.sleep(0.5)
    check(agent.alive(), "agent died after a client was SIGKILLed mid-request; stderr: %s" % agent.stderr_tail())
    # what the slow client did send before it died was captured
    def slow_seen(evs):
        for c in lw.conns(evs, {slow.pid}).values():
            if b"X-Req-Id: killed-slow" in c.egress and len(c.egress) > 64 * KiB:
                return c
    c = agent.wait_for(slow_seen, 10)
    check(c is not None, "the killed client's partial request was not captured: %s"
          % [x.describe() for x in lw.conns(agent.snapshot(), {slow.pid}).values()])
    lw.check_events(agent.snapshot())
    seqs = [e["seq"] for e in c.egress_ev]
    check(seqs == list(range(len(seqs))), "the killed client's egress seqs have gaps: %s" % seqs[:20])
    piece = lwcommon.text_body("killed-slow", 16 * KiB)
    body = c.egress[c.egress.index(b"\r\n\r\n") + 4:]
    check(len(body) >= 4 * len(piece) and all(body[i:i + len(piece)] == piece[:len(body) - i]
                                               for i in range(0, len(body), len(piece))),
          "the killed client's captured partial body is not the pieces it wrote (%d B)" % len(body))
    t.note("slow client: %d body bytes captured before SIGKILL" % len(body))
    # agent still captures a later request
    x = lw.client_curl(t, net, lwcommon.body("after-kill", 40 * KiB), "after-kill", 5000)
    lw.verify_exchange(agent, x)
    stats = agent.stop_ok()
    t.note("stats: %s" % stats)


@test(timeout=150)
def exec_storm(t):
    net = t.net()
    agent = t.agent()
    d = t.tmpdir()
    chain = t.write("chain.sh", b'n=$1\nif [ "$n" -gt 0 ]; then exec /bin/sh "$0" $((n-1)); fi\nexit 0\n')
    storm = t.write("storm.sh", (
        "i=0\n"
        "while [ $i -lt 500 ]; do /bin/true; /bin/sh -c 'exit 0'; i=$((i+1)); done\n"
        "j=0\n"
        "while [ $j -lt 25 ]; do curl --version >/dev/null; openssl version >/dev/null; j=$((j+1)); done\n"
        "exec /bin/sh %s 300\n" % chain).encode())
    # requests keep going during the storm (one keep-alive connection, 60 requests spaced 50 ms)
    bg = net.spawn([lw.PY, lw.PYCLIENT, "parallel", "--cafile", net.certs["ca"], "--threads", "1",
                    "--requests", "60", "--worker-base", "40", "--interval", "0.05"], name="during-storm")
    t0 = time.monotonic()
    s = t.spawn(["/bin/sh", storm], name="storm", cwd=d)
    s.wait_ok(90)
    dt = time.monotonic() - t0
    t.note("exec storm (1000 fork+exec, 50 TLS-lib execs, 300-exec chain) took %.1fs" % dt)
    bg.wait_ok(60)
    check(agent.alive(), "agent died during the exec storm; stderr: %s" % agent.stderr_tail())
    _check_parallel(t, agent, {bg: bg.json_out()["tids"]}, 60)
    x = lw.client_curl(t, net, lwcommon.body("after-storm", 100), "after-storm", 1000)
    lw.verify_exchange(agent, x)
    y = lw.client_py(t, net, "httpclient", lwcommon.body("after-storm-py", 40 * KiB), "after-storm-py", 3000)
    lw.verify_exchange(agent, y)
    agent.stop_ok()


# --------------------------------------------------------------------------- libraries appearing late

def _maps_libs(pid, word="libssl"):
    with open("/proc/%d/maps" % pid) as f:
        return sorted({l.split()[-1] for l in f if word in l and "/" in l})


@test(timeout=120)
def library_copy_loaded_after_start(t):
    """A private copy of libssl/libcrypto (new inodes the agent never saw) mapped after start.

    Three rounds, each with a fresh copy: a hooking race shows up in at least one of them."""
    net = t.net()
    agent = t.agent()
    for rnd in range(3):
        libdir = os.path.join(t.tmpdir(), "libcopy%d" % rnd)
        os.makedirs(libdir)
        shutil.copy2(SYS_LIBSSL, libdir)
        shutil.copy2(SYS_LIBCRYPTO, libdir)
        copy = os.path.join(libdir, "libssl.so.3")
        rid = "libcopy%d" % rnd
        body = lwcommon.body(rid, 40 * KiB)
        f = t.write(rid + ".body", body)
        p = net.spawn([lw.PY, lw.PYCLIENT, "wait", "--cafile", net.certs["ca"], "--body-file", f, "--req-id", rid,
                       "--resp-size", "7000"], env={"LD_LIBRARY_PATH": libdir}, stdin="pipe", name="py-" + rid)
        p.wait_line(lambda l: "mapped" in l, timeout=30)
        maps = _maps_libs(p.pid)
        check(maps == [copy], "round %d: client should map only the copy %s, maps: %s" % (rnd, copy, maps))
        diffs = lw.mapping_diffs(p.pid, lambda m: m.startswith(libdir + "/libcrypto"), exec_too=True)
        diffs += lw.mapping_diffs(p.pid, lambda m: m == copy)
        check(not diffs, "round %d: process memory of the library copies differs from the files (uprobe "
              "breakpoints outside the hooked functions?): %s" % (rnd, diffs[:6]))
        p.send("go\n")
        x = lw._finish(net, "python-" + rid, p, rid, body, os.path.basename(lw.PY)[:15], lw.PY, 30)
        c = lw.verify_exchange(agent, x)
        libs = {os.path.realpath(l) for l in c.field("lib")}
        check(libs == {os.path.realpath(copy)}, "round %d: lib %s, expected the copy %s"
              % (rnd, sorted(c.field("lib")), copy))
    agent.stop_ok()


@test(timeout=120)
def libssl_dlopened_after_start(t):
    net = t.net()
    agent = t.agent()
    body = lwcommon.body("dlopen", 40 * KiB)
    f = t.write("dl.body", body)
    p = net.spawn([lw.PY, lw.PYCLIENT, "dlopen", "--cafile", net.certs["ca"], "--body-file", f, "--req-id", "dlopen",
                   "--resp-size", "5000", "--delay", "1.5"], name="py-dlopen")
    line = p.wait_line(lambda l: "started" in l, timeout=20)
    check(json.loads(line)["libssl"] == [] and _maps_libs(p.pid) == [],
          "libssl already mapped at start: %s" % line)
    x = lw._finish(net, "python-dlopen", p, "dlopen", body, os.path.basename(lw.PY)[:15], lw.PY, 30)
    c = lw.verify_exchange(agent, x)
    libs = {os.path.realpath(l) for l in c.field("lib")}
    check(libs == {os.path.realpath(SYS_LIBSSL)}, "lib %s, expected %s" % (sorted(c.field("lib")), SYS_LIBSSL))
    agent.stop_ok()


# --------------------------------------------------------------------------- limits

@test(timeout=120)
def capture_max_truncates(t):
    net = t.net()
    cap = 65536
    agent = t.agent("--capture-max", str(cap))
    body = lwcommon.body("capmax", 600 * KiB)
    x = lw.client_py(t, net, "raw", body, "capmax", 1000)  # head + body in one SSL_write_ex
    small = lw.client_curl(t, net, lwcommon.body("capmax-small", 100), "capmax-small", 1000)

    def big(evs):
        return [e for e in evs if e.get("pid") == x.pid and e.get("dir") == "egress" and e.get("len", 0) > cap]

    agent.wait_for(big, 15)
    evs = agent.snapshot()
    lw.check_events(evs)
    bigs = big(evs)
    mine = [e for e in evs if e.get("pid") == x.pid and e.get("dir") == "egress"]
    check(len(bigs) == 1, "expected one egress message > %d B from pid %d, got %d (egress lens %s)"
          % (cap, x.pid, len(bigs), [e.get("len") for e in mine][:10]))
    e = bigs[0]
    data = lw.decode(e)
    hl = data.find(b"\r\n\r\n") + 4
    check(hl > 4 and data.startswith(b"POST /v1/lwt HTTP/1.1\r\n"), "truncated message does not start with the request head")
    check(e["len"] == hl + len(body), "len=%d, expected %d (head %d + body %d)" % (e["len"], hl + len(body), hl, len(body)))
    check(e["truncated"] is True and e["captured"] == cap, "truncated=%s captured=%s (expected true, %d)"
          % (e["truncated"], e["captured"], cap))
    check(data[hl:] == body[:cap - hl], "captured prefix is not the first %d bytes of the request" % cap)
    check(e.get("lost") == 0, "lost=%s for a message cut by --capture-max (no ring-buffer loss expected)" % e.get("lost"))
    # the small request on the same agent is complete
    c = lw.verify_exchange(agent, small)
    rc, stats = agent.stop()
    check(rc == 0 and isinstance(stats, dict), "agent exit rc=%s stats=%s" % (rc, stats))
    check(stats.get("truncated_messages", 0) >= 1, "stats truncated_messages=%s" % stats.get("truncated_messages"))
    check(stats.get("truncated_bytes", 0) >= e["len"] - cap,
          "stats truncated_bytes=%s < %d" % (stats.get("truncated_bytes"), e["len"] - cap))
    probs = lw.stats_problems(stats, agent.events)
    check(not probs, "inconsistent stats: %s" % probs)


# --------------------------------------------------------------------------- processes older than the agent

@test(timeout=120)
def process_started_before_agent(t):
    net = t.net()
    ca = net.certs["ca"]
    procs = {}
    for mode in ("new-conn", "preconnected"):
        body = lwcommon.body("before-" + mode, 40 * KiB)
        f = t.write(mode + ".body", body)
        p = net.spawn([lw.PY, lw.PYCLIENT, "wait", "--cafile", ca, "--body-file", f, "--req-id", "before-" + mode,
                       "--resp-size", "9000"] + (["--preconnect"] if mode == "preconnected" else []),
                      stdin="pipe", name="py-" + mode)
        p.wait_line(lambda l: "mapped" in l, timeout=20)
        procs[mode] = (p, body)
    agent = t.agent()
    xs = {}
    for mode, (p, body) in procs.items():
        p.send("go\n")
        xs[mode] = lw._finish(net, "python-" + mode, p, "before-" + mode, body, os.path.basename(lw.PY)[:15], lw.PY, 30)
    # connection made after the agent started: everything must be known
    lw.verify_exchange(agent, xs["new-conn"])
    # TLS handshake done before the agent: body/response/pid required; dst/sni may be unknown ("")
    c = lw.verify_exchange(agent, xs["preconnected"], dst=None, sni=None)
    check(c.field("dst") <= {"", lw.PROV_DST} and c.field("sni") <= {"", lw.SNI},
          "pre-agent connection: dst %s sni %s (must be correct or empty)" % (c.field("dst"), c.field("sni")))
    t.note("pre-agent connection reported dst=%s sni=%s" % (sorted(c.field("dst")), sorted(c.field("sni"))))
    agent.stop_ok()


# --------------------------------------------------------------------------- filters

@test(timeout=120)
def filters_pid_and_comm(t):
    net = t.net()
    ca = net.certs["ca"]
    body = lwcommon.body("pidfilter", 2000)
    f = t.write("pf.body", body)
    p = net.spawn([lw.PY, lw.PYCLIENT, "wait", "--cafile", ca, "--body-file", f, "--req-id", "pidfilter",
                   "--resp-size", "3000"], stdin="pipe", name="py-pidfilter")
    p.wait_line(lambda l: "mapped" in l, timeout=20)
    agent = t.agent("--pid", str(p.pid))
    other = lw.client_curl(t, net, lwcommon.body("pf-other", 500), "pf-other", 500)
    p.send("go\n")
    x = lw._finish(net, "python-pidfilter", p, "pidfilter", body, os.path.basename(lw.PY)[:15], lw.PY, 30)
    lw.verify_exchange(agent, x)
    time.sleep(0.5)
    stray = sorted({e.get("pid") for e in agent.snapshot()} - {p.pid})
    check(not stray, "--pid %d also printed messages of pids %s (curl was %d)" % (p.pid, stray, other.pid))
    agent.stop_ok()

    agent = t.agent("--comm", "curl")
    x = lw.client_curl(t, net, lwcommon.body("cf-curl", 700), "cf-curl", 800)
    y = lw.client_py(t, net, "httpclient", lwcommon.body("cf-py", 700), "cf-py", 800)
    lw.verify_exchange(agent, x)
    time.sleep(0.5)
    comms = sorted({e.get("comm") for e in agent.snapshot()})
    check(comms == ["curl"], "--comm curl printed messages of comms %s (python pid %d)" % (comms, y.pid))
    agent.stop_ok()


# --------------------------------------------------------------------------- ring buffer overflow

@test(timeout=120)
def ringbuf_full_is_reported(t):
    """A tiny ring buffer cannot hold a 600 KiB write: the loss must be visible, never silent."""
    net = t.net()
    agent = t.agent("--ring-size", "65536")
    body = lwcommon.body("ringfull", 600 * KiB)
    x = lw.client_py(t, net, "raw", body, "ringfull", 1000)  # head + body in one SSL_write_ex

    def big(evs):
        return [e for e in evs if e.get("pid") == x.pid and e.get("dir") == "egress" and e.get("len", 0) > 600 * KiB]

    agent.wait_for(big, 15)
    evs = agent.snapshot()
    lw.check_events(evs)
    bigs = big(evs)
    check(len(bigs) == 1, "expected one egress message > 600 KiB from pid %d, got %d (egress lens %s)"
          % (x.pid, len(bigs), [e.get("len") for e in evs if e.get("pid") == x.pid][:10]))
    e = bigs[0]
    data = lw.decode(e)
    hl = data.find(b"\r\n\r\n") + 4
    t.note("len=%d captured=%d lost=%d truncated=%s" % (e["len"], e["captured"], e["lost"], e["truncated"]))
    if e["captured"] < e["len"]:
        check(e["truncated"] is True and e["lost"] > 0,
              "message cut without saying why: truncated=%s lost=%s" % (e["truncated"], e["lost"]))
    if data:
        head_ok = data.startswith(b"POST /v1/lwt HTTP/1.1\r\n")
        check(head_ok and (hl <= 4 or data[hl:] == body[:len(data) - hl]),
              "captured data of a message that lost chunks is not a prefix of what was written")
    rc, stats = agent.stop()
    t.note("stats %s" % stats)
    check(rc == 0 and isinstance(stats, dict), "agent exit rc=%s stats=%s" % (rc, stats))
    probs = lw.stats_problems(stats, agent.events)
    check(not probs, "inconsistent stats: %s" % probs)
    lost = sum(ev["lost"] for ev in agent.events if isinstance(ev.get("lost"), int))
    check(stats.get("ringbuf_dropped_bytes", 0) >= lost,
          "printed messages lost %d bytes but stats ringbuf_dropped_bytes=%s" % (lost, stats.get("ringbuf_dropped_bytes")))
    if e["lost"]:
        check(stats.get("ringbuf_dropped_chunks", 0) > 0, "bytes lost but ringbuf_dropped_chunks=0")
