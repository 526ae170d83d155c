"""Content blocking (issue 5): block-listed content must fail inside the application, with not one
byte of it reaching the provider (in-kernel verdict before encryption, sk_msg drops the write and
poisons the connection); content only the agent can decide (a Luhn-valid card) poisons the
connection for later writes and quarantines (service, provider); monitor mode lets everything
through and reports would_block; the agent's death leaves traffic unblocked (fail-open).

Network and services: lwgates.GateNet (provider TLS server that dumps every plaintext byte it
receives, dnsmasq) and cgroup v2 services; clients run in the app netns inside a service cgroup.
"""
import json
import os
import random
import signal
import time

import lwtest as lw
import lwgates as g
from lwtest import check, fail, test

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKCLIENT = os.path.join(HERE, "clients", "blockclient.py")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def anthropic_key(rng):
    return "sk-ant-api03-" + "".join(rng.choice(ALNUM + "_-") for _ in range(93)) + "AA"


def aws_key(rng):
    return "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))


def luhn_card(rng):
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    card = "".join(map(str, digits)) + str((10 - total % 10) % 10)
    return " ".join(card[i:i + 4] for i in range(0, 16, 4))


def chat(text):
    return json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": text}]}).encode()


def write_policy(d, services, rules_yaml=None):
    """services: {name: (cgroup, mode, extra yaml lines)}. rules_yaml: text of rules/override.yaml."""
    os.makedirs(os.path.join(d, "rules"), exist_ok=True)
    with open(os.path.join(g.REPO, "policies", "providers.yaml")) as f:
        prov = f.read()
    files = {"providers.yaml": prov, "default.yaml": "default: true\nmode: monitor\nallow_providers: all\n"}
    for name, (cg, mode, extra) in services.items():
        allow = "" if "allow_providers:" in extra else "allow_providers: all\n"
        files[name + ".yaml"] = ("service: %s\nmatch: { cgroup: %s }\nmode: %s\n%s%s"
                                 % (name, json.dumps(cg.kpath), mode, allow, extra))
    files["rules/override.yaml"] = rules_yaml or "rules: []\n"
    for n, text in files.items():
        tmp = os.path.join(d, os.path.dirname(n), ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(d, n))
    return d


class Setup:
    def __init__(self, t, services, rules_yaml=None, start=True):
        self.t = t
        self.net = g.GateNet(t)
        self.cgs = g.Cgroups(t)
        self.cg = {n: self.cgs.service(n) for n in services}
        self.services = services
        self.pol = t.path("policies")
        self.write(rules_yaml)
        self.agent = g.GateAgent(t, self.pol) if start else None

    def write(self, rules_yaml=None, services=None):
        if services:
            self.services = services
        write_policy(self.pol, {n: (self.cg[n], m, x) for n, (m, x) in self.services.items()}, rules_yaml)

    def body(self, name, data):
        p = self.t.write(name, data)
        os.chmod(p, 0o644)
        return p

    def py(self, svc, mode, timeout=60, **kw):
        argv = [lw.PY, BLOCKCLIENT, mode, "--host", kw.pop("host", g.OPENAI), "--cafile", self.net.ca]
        for k, v in kw.items():
            argv += ["--" + k.replace("_", "-"), str(v)]
        p = self.net.spawn(argv, cgroup=self.cg[svc], name="blockclient")
        return p

    def alerts(self, pid=None):
        return [e for e in self.agent.snapshot() if e.get("event") == "alert"
                and (pid is None or e.get("pid") == pid)]

    def wait_alert(self, pid, pred=lambda a: True, timeout=10):
        got = self.agent.wait_for(lambda evs: [e for e in evs if e.get("event") == "alert"
                                               and e.get("pid") == pid and pred(e)], timeout, "alert")
        check(got, "no matching alert for pid %s; alerts: %s; stderr: %s"
              % (pid, self.alerts()[-3:], self.agent.stderr_tail()))
        return got[0]

    def server_saw(self, secret, tail):
        """Any 12-byte piece of the secret's random tail in what the provider decrypted."""
        data = self.net.server.plaintext()
        for i in range(0, len(tail) - 12 + 1):
            if tail[i:i + 12].encode() in data:
                return tail[i:i + 12]
        return None

    def no_raw_in_agent(self, raws):
        text = "\n".join(json.dumps(e) for e in self.agent.snapshot()) + "\n".join(self.agent.err_lines)
        for r in raws:
            check(r not in text, "a raw planted value (%d chars) appears in the agent's output" % len(r))


def types(al):
    return {f["type"] for f in al["findings"]}


def client_failed(p, timeout=60):
    rc = p.wait(timeout)
    js = None
    for line in reversed(p.out_lines):
        if line.startswith("{"):
            js = json.loads(line)
            break
    return rc, js


# --------------------------------------------------------------------------- kernel stage

@test(timeout=240)
def block_kernel_python_curl_node(t):
    """python3, curl and the node openai SDK send a block-listed key (Anthropic key, AWS key, a
    canary) to a provider from an enforcing service: each client gets an error, the provider
    receives none of the secret's bytes, and the alert says block, stage kernel."""
    s = Setup(t, {"shop": ("enforce", "")})
    rng = random.Random()
    cases = []
    # python3 (SSL_write_ex in libssl)
    key = anthropic_key(rng)
    f = s.body("py.json", chat("Debug this config: ANTHROPIC_API_KEY=%s please" % key))
    p = s.py("shop", "one", body_file=f, tag="py-key")
    rc, js = client_failed(p)
    check(rc != 0 and js and not js["ok"], "python3 request with a key succeeded: %s %s" % (rc, js))
    # OpenSSL 3 reports the failed write as SSL_ERROR_SYSCALL without errno: python raises
    # SSLEOFError ("EOF occurred in violation of protocol"), not PermissionError
    t.note("python3 saw: %s" % js["error"][:80])
    cases.append(("python3", p.pid, key, key[13:], "anthropic_api_key"))
    # curl (SSL_write in libssl)
    key2 = aws_key(rng)
    f2 = s.body("curl.json", chat("Why does boto fail with aws_access_key_id=%s here" % key2))
    p2 = s.net.spawn(["curl", "-sS", "--http1.1", "--cacert", s.net.ca, "--max-time", "20", "-X", "POST",
                      "-H", "Content-Type: application/json", "-H", "Expect:", "--data-binary", "@" + f2,
                      "-o", "/dev/null", "https://%s/v1/chat/completions" % g.OPENAI],
                     cgroup=s.cg["shop"], name="curl")
    rc2 = p2.wait(40)
    check(rc2 != 0, "curl request with an AWS key succeeded")
    cases.append(("curl", p2.pid, key2, key2[4:], "aws_access_key"))
    # node openai SDK (node's static OpenSSL, memory BIO: the ciphertext is written after SSL_write)
    canary = "LW-CANARY-7f3a9c21d04e"
    key3 = anthropic_key(rng)
    r3 = g.node_openai(t, s.net, g.OPENAI, cgroup=s.cg["shop"],
                       prompt="Summarise %s and the key %s" % (canary, key3), timeout=60)
    check(not r3.ok, "node openai SDK request with a key succeeded: %s" % r3.describe())
    cases.append(("node", r3.pid, key3, key3[13:], None))
    for name, pid, raw, tail, ty in cases:
        al = s.wait_alert(pid, lambda a: a.get("action") == "block")
        check(al.get("stage") == "kernel" and al.get("request_left") is False,
              "%s: alert does not say kernel stage / not left: %s" % (name, al))
        if ty:
            check(ty in types(al), "%s: alert lacks %s: %s" % (name, ty, al["findings"]))
        leaked = s.server_saw(raw, tail)
        check(not leaked, "%s: the provider received secret bytes (%r...)" % (name, leaked[:4] if leaked else ""))
    s.no_raw_in_agent([c[2] for c in cases])
    stats = s.agent.stop_ok()
    check(stats.get("kmatch_verdicts", 0) >= 3 and stats.get("content_blocked_writes_dropped", 0) >= 3,
          "stats do not count the verdicts / drops: %s" % {k: v for k, v in stats.items() if "kmatch" in k or "content" in k})


@test(timeout=300)
def block_thousand_mixed_requests(t):
    """1,000 requests from 4 processes, each on its own connection, half of them (at random) with a
    block-listed key: exactly those fail, every clean one succeeds."""
    s = Setup(t, {"shop": ("enforce", "")})
    rng = random.Random()
    clean = s.body("clean.json", chat("Summarise order 4411 for the customer; the parcel left on Monday."))
    procs = []
    for k in range(4):
        dirty = s.body("dirty%d.json" % k, chat("Use the key %s to call the API" % anthropic_key(rng)))
        bits = rng.getrandbits(250)
        bits |= 1 << k  # at least one of each in every process
        bits &= ~(1 << (k + 8))
        procs.append((s.py("shop", "many", count=250, pattern="%x" % bits, clean_file=clean, dirty_file=dirty,
                           tag="mix%d" % k, timeout=10), bits))
    wrong = []
    total = failed_dirty = ok_clean = 0
    for p, bits in procs:
        rc, js = client_failed(p, timeout=240)
        check(js and "results" in js, "client produced no results (rc %s): %s" % (rc, p.stderr_tail()))
        for i, d, ok, en in js["results"]:
            total += 1
            if d and ok:
                wrong.append("dirty request %d of pid %d succeeded" % (i, p.pid))
            elif not d and not ok:
                wrong.append("clean request %d of pid %d failed: %s" % (i, p.pid, en))
            failed_dirty += d and not ok
            ok_clean += (not d) and ok
    t.note("%d requests: %d dirty refused, %d clean ok" % (total, failed_dirty, ok_clean))
    check(total == 1000, "expected 1000 results, got %d" % total)
    check(not wrong, "%d wrong outcomes, e.g. %s" % (len(wrong), wrong[:5]))
    stats = s.agent.stop_ok()
    check(stats.get("kmatch_verdicts") == failed_dirty,
          "kmatch_verdicts=%s, expected %d" % (stats.get("kmatch_verdicts"), failed_dirty))


@test(timeout=120)
def block_poison_stays_on_its_connection(t):
    """One thread with two open connections to the provider: the one that carried a key is
    poisoned (its next request fails too); the other one, opened before, keeps working, and so
    does a new one (the verdict does not stick to the thread or to later writes elsewhere)."""
    s = Setup(t, {"shop": ("enforce", "")})
    clean = s.body("clean.json", chat("What are the opening hours on Sunday?"))
    dirty = s.body("dirty.json", chat("Use %s for the call" % anthropic_key(random.Random())))
    p = s.py("shop", "two", clean_file=clean, dirty_file=dirty, tag="two")
    rc, js = client_failed(p)
    got = {(n, i): (ok, en) for i, (n, ok, en) in enumerate(js["results"])} if js else {}
    want = [("A", True), ("B", False), ("A", True), ("B", False), ("C", True)]
    check(js and [(r[0], r[1]) for r in js["results"]] == want,
          "expected %s, got %s" % (want, got))
    s.agent.stop_ok()


# --------------------------------------------------------------------------- agent stage

CARD_BLOCK = "rules:\n  - id: credit_card\n    action: block\n"


@test(timeout=180)
def block_agent_stage_card_poison_and_quarantine(t):
    """A Luhn-valid card under a block rule the kernel cannot decide: the request leaves (the alert
    says so, stage agent), later writes of the connection fail, and new connections of the service
    to that provider are refused for the quarantine period, then allowed again."""
    s = Setup(t, {"shop": ("enforce", "quarantine: 4s\n")}, rules_yaml=CARD_BLOCK)
    rng = random.Random()
    card = luhn_card(rng)
    dirty = s.body("card.json", chat("Refund card %s for order 5521" % card))
    clean = s.body("clean.json", chat("Thanks, that is all for today."))
    go = t.path("go")
    p = s.py("shop", "keep", body_file=dirty, clean_file=clean, go_file=go, tag="card")
    p.wait_line(lambda l: '"first"' in l, timeout=30)
    check('"first": true' in p.out_lines[-1], "the first request (card) did not get through: %s" % p.out_lines)
    al = s.wait_alert(p.pid, lambda a: a.get("action") == "block")
    check(al.get("stage") == "agent" and al.get("request_left") is True and al.get("quarantine_s") == 4
          and "credit_card" in types(al), "agent-stage alert wrong: %s" % al)
    t0 = time.monotonic()
    open(go, "w").close()
    rc, js = client_failed(p)
    res = js and js.get("results")
    check(res and res[0][0] and not res[1][0], "the poisoned connection's next request did not fail: %s" % js)
    # quarantine: a new connection of the service to the provider is refused
    q = s.py("shop", "one", body_file=clean, tag="q1")
    rc, js = client_failed(q)
    check(js and not js["ok"] and js["errno"] in ("EACCES", "EPERM", "ECONNRESET"),
          "a new connection during the quarantine was not refused: %s" % js)
    ev = s.agent.wait_event(lambda e: e.get("pid") == q.pid and e.get("gate") == "quarantine", timeout=5)
    check(ev and ev["decision"] == "denied", "no quarantine gate event for the refused connection")
    # another service is not affected (the default policy: monitor)
    while time.monotonic() - t0 < 4.5:
        time.sleep(0.1)
    r = s.py("shop", "one", body_file=clean, tag="q2")
    rc, js = client_failed(r)
    check(js and js["ok"], "after the quarantine the service is still refused: %s" % js)
    s.no_raw_in_agent([card, card.replace(" ", "")])
    stats = s.agent.stop_ok()
    check(stats.get("agent_blocks", 0) >= 1 and stats.get("quarantine_refused", 0) >= 1, "stats: %s" % stats)


# --------------------------------------------------------------------------- modes, reload, failure

@test(timeout=180)
def block_monitor_mode_and_rule_mode_reload(t):
    """Monitor mode lets a key through and reports would_block (stage kernel: the kernel would have
    decided it). In an enforcing service, a rule in `mode: monitor` is only reported too; after the
    rule is switched to enforce and the agent reloads (SIGHUP), the same request is refused."""
    mon_rule = "rules:\n  - id: anthropic_api_key\n    mode: monitor\n"
    s = Setup(t, {"watch": ("monitor", ""), "shop": ("enforce", "")}, rules_yaml=mon_rule)
    rng = random.Random()
    key = anthropic_key(rng)
    f = s.body("k.json", chat("The key is %s" % key))
    for svc in ("watch", "shop"):
        p = s.py(svc, "one", body_file=f, tag="mon-" + svc)
        rc, js = client_failed(p)
        check(js and js["ok"], "%s: request was refused in monitor mode: %s" % (svc, js))
        al = s.wait_alert(p.pid)
        check(al["action"] == "would_block" and al.get("stage") == "kernel" and al.get("request_left") is True,
              "%s: expected would_block/kernel: %s" % (svc, al))
    check(s.server_saw(key, key[13:]), "monitor mode: the provider did not receive the request")
    s.write(rules_yaml="rules: []\n")
    line = s.agent.reload()
    check(line and "reloaded" in line, "reload not confirmed: %s" % line)
    p = s.py("shop", "one", body_file=f, tag="after-reload")
    rc, js = client_failed(p)
    check(js and not js["ok"], "after the reload the key still went through: %s" % js)
    al = s.wait_alert(p.pid, lambda a: a.get("action") == "block")
    check(al.get("stage") == "kernel", "alert after reload: %s" % al)
    s.agent.stop_ok()


@test(timeout=150)
def block_fail_open_when_agent_dies(t):
    """Enforcement is tied to the agent's process (documented fail-open): after kill -9 the
    programs are gone and the same request goes through; a new agent blocks it again."""
    s = Setup(t, {"shop": ("enforce", "")})
    key = anthropic_key(random.Random())
    f = s.body("k.json", chat("The key is %s" % key))
    p = s.py("shop", "one", body_file=f, tag="before")
    rc, js = client_failed(p)
    check(js and not js["ok"], "not blocked with the agent running: %s" % js)
    s.agent.p.send_signal(signal.SIGKILL)
    s.agent.p.wait(10)
    t0 = time.monotonic()
    while True:
        p = s.py("shop", "one", body_file=f, tag="dead")
        rc, js = client_failed(p)
        if js and js["ok"]:
            break
        if time.monotonic() - t0 > 10:
            fail("requests still refused 10 s after the agent was killed: %s" % js)
        time.sleep(0.2)
    t.note("fail-open %.1fs after kill -9" % (time.monotonic() - t0))
    s.agent = g.GateAgent(t, s.pol)
    p = s.py("shop", "one", body_file=f, tag="again")
    rc, js = client_failed(p)
    check(js and not js["ok"], "a new agent did not block again: %s" % js)
    s.agent.stop_ok()
