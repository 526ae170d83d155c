"""Every TLS stack a service might use (issue 7): GnuTLS (wget, gnutls-cli), NSS (tstclnt), Go
crypto/tls (a client built here with Debian's golang, speaking HTTP/2; many goroutines on few
threads), BoringSSL, OpenSSL linked in statically and stripped, plaintext HTTP captured at the
socket (to a provider, and to an internal gateway on another port), and a JVM whose TLS cannot be
read.

For each readable stack: personal data sent to a provider gives an alert with the client's pid,
its service and the provider; a block-listed key is refused before it leaves (the client fails and
the provider receives none of its bytes). The JVM's request to a provider its service may not use
is refused by the provider gates and appears in the inventory as opaque, and the agent's log says
why its TLS cannot be read.

Network: lwgates.GateNet (dnsmasq, the per-SNI TLS server that dumps what it decrypts) with
`lwgo serve` (tests/integration/go) as the HTTP/2 server of generativelanguage.googleapis.com and
as the plain-HTTP server on port 80 of every provider address.
"""
import json
import os
import random
import subprocess

import lwtest as lw
import lwgates as g
import test_block as tb
from lwtest import check, fail, test

HERE = os.path.dirname(os.path.abspath(__file__))
GO_SRC = os.path.join(HERE, "go")
GO_OUT = os.path.join(g.REPO, "build", "go")

_lwgo = []


def lwgo():
    """tests/integration/go built with Debian's golang (once per run; the cache lives in build/go)."""
    if _lwgo:
        return _lwgo[0]
    out = os.path.join(GO_OUT, "lwgo")
    env = dict(os.environ, GOCACHE=os.path.join(GO_OUT, "cache"), GOPATH=os.path.join(GO_OUT, "path"),
               GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="0", HOME=GO_OUT)
    os.makedirs(GO_OUT, exist_ok=True)
    p = subprocess.run(["go", "build", "-o", out, "."], cwd=GO_SRC, env=env, capture_output=True,
                       text=True, timeout=600)
    check(p.returncode == 0, "go build failed: %s" % p.stderr[-800:])
    _lwgo.append(out)
    return out


def go_version():
    return subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()


class Stacks:
    """Provider network with a Go HTTP/2 server for Gemini and plain-HTTP servers on port 80, one
    enforcing service per client, and the agent."""

    def __init__(self, t, services):
        self.t = t
        self.lwgo = lwgo()
        self.net = g.GateNet(t, server=False)
        # the Python TLS server everywhere but Gemini's address, which Go's HTTP/2 server takes
        self.net.server = g.GateServer(t, self.net, addrs=[a for a in g.SERVE_ADDRS if a != g.GEMINI_IP])
        self.cgs = g.Cgroups(t)
        self.cg = {n: self.cgs.service(n) for n in services}
        self.pol = t.path("policies")
        tb.write_policy(self.pol, {n: (self.cg[n], m, x) for n, (m, x) in services.items()})
        # an internal LLM gateway, reached over plain HTTP on another port
        with open(os.path.join(self.pol, "providers.yaml"), "a") as f:
            f.write("  - id: internal-llm\n    name: Internal LLM gateway\n    hostnames: [%s]\n"
                    % g.INTERNAL)
        self.agent = g.GateAgent(t, self.pol)
        cert, key = self.net.certs["names"][g.GEMINI]
        self.h2_log = os.path.join(self.net.dir, "go-h2.log")
        self.plain_log = os.path.join(self.net.dir, "go-plain.log")
        self.gw_log = os.path.join(self.net.dir, "go-gateway.log")
        for argv, name in (([self.lwgo, "serve", "-addr", g.GEMINI_IP + ":443", "-cert", cert, "-key", key,
                             "-log", self.h2_log], "lwgo-h2"),
                           ([self.lwgo, "serve", "-plain", "-addr", ":80", "-log", self.plain_log],
                            "lwgo-plain"),
                           ([self.lwgo, "serve", "-plain", "-addr", g.INTERNAL_IP + ":8080", "-log",
                             self.gw_log], "lwgo-gateway")):
            p = lw.Proc(argv, netns=self.net.prov, name=name)
            p.wait_line(lambda line: line.startswith("listening"), timeout=20)

    def body(self, name, data):
        p = self.t.write(name, data)
        os.chmod(p, 0o644)
        return p

    def request(self, name, body, host=g.OPENAI, path="/v1/chat/completions"):
        """A raw HTTP/1.1 request (for clients that send what they read on stdin)."""
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (path, host, len(body)))
        return self.body(name, head.encode() + body)

    def spawn(self, svc, argv, stdin_file=None, name=None):
        stdin = open(stdin_file, "rb") if stdin_file else None
        try:
            return self.net.spawn(argv, cgroup=self.cg[svc], name=name or os.path.basename(argv[0]),
                                  stdin=stdin)
        finally:
            if stdin:
                stdin.close()

    def go_bodies(self, log):
        try:
            with open(os.path.join(log + ".d", "bodies"), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def received(self):
        """Every application byte any provider-side server received."""
        return (self.net.server.plaintext() + self.go_bodies(self.h2_log) + self.go_bodies(self.plain_log)
                + self.go_bodies(self.gw_log))

    def wait_alert(self, pid, pred, what, timeout=15):
        got = self.agent.wait_for(lambda evs: [e for e in evs if e.get("event") == "alert"
                                               and e.get("pid") == pid and pred(e)], timeout, "alert")
        if not got:
            alerts = [e for e in self.agent.snapshot() if e.get("event") == "alert"]
            fail("%s: no alert for pid %d; alerts: %s; stderr: %s"
                 % (what, pid, alerts[-3:], self.agent.stderr_tail(12)))
        return got[0]


def pii_text(tag):
    return ("Customer %s asks about order 4411: write to maria.lopez.%s@northwind-traders.de or call "
            "+1 415 555 0142 about the refund." % (tag, tag))


def gemini(text):
    return json.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}]}).encode()


GEMINI_PATH = "/v1beta/models/gemini-1.5-flash:generateContent"

# client name -> (service, provider); each client runs in its own service cgroup
CLIENTS = {
    "wget": ("wgetsvc", "openai"),
    "gnutls-cli": ("gnutlssvc", "openai"),
    "tstclnt": ("nsssvc", "openai"),
    "go": ("gosvc", "google-gemini"),
    "plain": ("plainsvc", "openai"),
    "gateway": ("gwsvc", "internal-llm"),  # plain HTTP (sendmsg) to an internal gateway on :8080
}


SENDMSG_CLIENT = r"""
import socket, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = open(path, "rb").read()
head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\nConnection: close\r\n\r\n" % (host, port, len(body))).encode()
s = socket.create_connection((host, port), timeout=15)
s.sendmsg([head, body])
resp = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    resp += chunk
sys.exit(0 if resp.startswith(b"HTTP/1.1 200") else 1)
"""


def nss_db(t, ca):
    """An NSS certificate database trusting the test CA (for tstclnt)."""
    d = t.path("nssdb")
    os.makedirs(d, exist_ok=True)
    lw._sh(["certutil", "-N", "-d", "sql:" + d, "--empty-password"])
    lw._sh(["certutil", "-A", "-d", "sql:" + d, "-n", "leakwatch-test-ca", "-t", "CT,,", "-i", ca])
    return d


def run_client(s, name, tag, text, nssdb):
    """Start client `name` sending `text` in a chat request; returns its Proc."""
    svc = CLIENTS[name][0]
    ca = s.net.ca
    if name == "wget":
        body = s.body(tag + ".json", tb.chat(text))
        return s.spawn(svc, ["wget", "-q", "-O", "-", "--tries=1", "--timeout=15", "--ca-certificate=" + ca,
                             "--header=Content-Type: application/json", "--post-file=" + body,
                             "https://%s/v1/chat/completions" % g.OPENAI])
    if name == "gnutls-cli":
        req = s.request(tag + ".http", tb.chat(text))
        return s.spawn(svc, ["gnutls-cli", "--x509cafile", ca, g.OPENAI], stdin_file=req)
    if name == "tstclnt":
        req = s.request(tag + ".http", tb.chat(text))
        return s.spawn(svc, ["tstclnt", "-h", g.OPENAI, "-p", "443", "-d", "sql:" + nssdb], stdin_file=req)
    if name == "go":
        body = s.body(tag + ".json", gemini(text))
        return s.spawn(svc, [s.lwgo, "client", "-url", "https://%s%s" % (g.GEMINI, GEMINI_PATH),
                             "-cafile", ca, "-body", body])
    if name == "plain":
        body = s.body(tag + ".json", tb.chat(text))
        return s.spawn(svc, ["curl", "-sS", "--max-time", "15", "-H", "Content-Type: application/json",
                             "-H", "Expect:", "--data-binary", "@" + body,
                             "http://%s/v1/chat/completions" % g.OPENAI], name="curl")
    if name == "gateway":
        # python's socket.sendmsg: headers and body as two iovecs of one sendmsg
        body = s.body(tag + ".json", tb.chat(text))
        return s.spawn(svc, [lw.PY, "-c", SENDMSG_CLIENT, g.INTERNAL, "8080", body], name="python3")
    fail("unknown client " + name)


def finish(name, p):
    """The client's exit status; tstclnt keeps reading until the server closes, which a refused
    connection's server never does: it is stopped after 15 s (None)."""
    if name != "tstclnt":
        return p.wait(40)
    try:
        return p.p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        return None


def client_ok(name, p, rc):
    """Whether the client reports success."""
    if name == "go":
        return rc == 0 and any('"ok":true' in line for line in p.out_lines)
    if name == "gnutls-cli":  # exits 0 after a failed write, which it reports
        return rc == 0 and not any("Fatal error" in line for line in p.err_lines)
    return rc == 0


@test(timeout=420)
def stacks_pii_alert_and_key_block(t):
    """wget and gnutls-cli (GnuTLS), tstclnt (NSS), a Go client (crypto/tls, HTTP/2), curl over
    plain HTTP to a provider and python's sendmsg (two iovecs) over plain HTTP to an internal LLM
    gateway (a catalog entry, port 8080) each send personal data, then a block-listed key, from
    their own
    enforcing service: the first gives an alert naming the client's pid, the service and the
    provider, and reaches the provider; the second fails in the client, and the provider receives
    none of the key's bytes."""
    s = Stacks(t, {svc: ("enforce", "") for svc, _ in CLIENTS.values()})
    t.note(go_version())
    nssdb = nss_db(t, s.net.ca)
    rng = random.Random()
    for name, (svc, provider) in CLIENTS.items():
        tag = "pii-" + name.replace("-", "")
        p = run_client(s, name, tag, pii_text(tag), nssdb)
        rc = finish(name, p)
        check(client_ok(name, p, rc), "%s: the PII request failed (rc %s): %s %s"
              % (name, rc, p.out_lines[-3:], p.err_lines[-3:]))
        al = s.wait_alert(p.pid, lambda a: "email" in tb.types(a), name + " PII")
        check(al.get("service") == svc and al.get("provider") == provider and al.get("action") == "alert",
              "%s: alert has the wrong service/provider/action: %s" % (name, al))
        check(tag.encode() in s.received(), "%s: the provider never received the PII request" % name)
    for name, (svc, provider) in CLIENTS.items():
        key = tb.anthropic_key(rng)
        tag = "key-" + name.replace("-", "")
        p = run_client(s, name, tag, "Debug this: ANTHROPIC_API_KEY=%s (%s)" % (key, tag), nssdb)
        rc = finish(name, p)
        t.note("%s with a key: rc %s, %s" % (name, rc, (p.err_lines or p.out_lines or [""])[-1][:100]))
        check(not client_ok(name, p, rc), "%s: the request with a key succeeded" % name)
        al = s.wait_alert(p.pid, lambda a: a.get("action") == "block", name + " key")
        check(al.get("stage") == "kernel" and al.get("service") == svc and al.get("provider") == provider
              and "anthropic_api_key" in tb.types(al),
              "%s: block alert wrong (stage kernel, service, provider, type): %s" % (name, al))
        data = s.received()
        tail = key[13:]
        leaked = [tail[i:i + 12] for i in range(len(tail) - 11) if tail[i:i + 12].encode() in data]
        check(not leaked, "%s: the provider received bytes of the key" % name)
    plain_pids = {e["pid"] for e in s.agent.provider_events() if e.get("gate") == "http"}
    # (the key requests are refused before sk_msg judges the connection: no event)
    check(len(plain_pids) >= 2, "plaintext connections not reported with gate http: %s"
          % [(e["comm"], e["gate"]) for e in s.agent.provider_events()])
    stats = s.agent.stop_ok()
    check(stats.get("kmatch_verdicts", 0) >= len(CLIENTS) and stats.get("plaintext_sockets", 0) >= 4,
          "stats miss the verdicts or the plaintext sockets: %s"
          % {k: v for k, v in stats.items() if "kmatch" in k or "plain" in k})
    log = "\n".join(s.agent.err_lines)
    for stack in ("gnutls", "nss", "go"):
        check("read through %s" % stack in log, "the agent's log does not say it read %s:\n%s"
              % (stack, log[-1500:]))


@test(timeout=240)
def stacks_go_goroutines_verdicts(t):
    """A Go client sends 120 requests from 12 goroutines at a time (GOMAXPROCS=2: goroutines that
    block on the network resume on other threads), each on its own connection, every third one with
    a block-listed key: exactly those fail and every other one succeeds, so no verdict lands on the
    wrong goroutine's call."""
    s = Stacks(t, {"gosvc": ("enforce", "")})
    rng = random.Random()
    clean = s.body("clean.json", tb.chat("Summarise order 4411 for the customer; it left on Monday."))
    dirty = s.body("dirty.json", tb.chat("Use the key %s to call the API" % tb.anthropic_key(rng)))
    p = s.net.spawn([s.lwgo, "client", "-url", "https://%s/v1/chat/completions" % g.OPENAI, "-cafile",
                     s.net.ca, "-body", clean, "-dirty", dirty, "-every", "3", "-n", "120", "-parallel", "12"],
                    cgroup=s.cg["gosvc"], env={"GOMAXPROCS": "2"}, name="lwgo")
    rc = p.wait(180)
    res = [json.loads(line) for line in p.out_lines if line.startswith("{")]
    check(rc == 0 and len(res) == 120, "the Go client did not report 120 requests: rc %s, %d lines; %s"
          % (rc, len(res), p.err_lines[-3:]))
    wrong = [r for r in res if r["ok"] == r["dirty"]]
    check(not wrong, "%d of 120 requests with the wrong outcome, e.g. %s" % (len(wrong), wrong[:3]))
    stats = s.agent.stop_ok()
    check(stats.get("kmatch_verdicts", 0) == 40, "kmatch_verdicts %s, not the 40 dirty requests"
          % stats.get("kmatch_verdicts"))


JAVA_CLIENT = r"""
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class Client {
    public static void main(String[] args) throws Exception {
        HttpClient c = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        HttpRequest r = HttpRequest.newBuilder(URI.create(args[0]))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"claude-3\",\"messages\":[]}"))
            .build();
        try {
            HttpResponse<String> res = c.send(r, HttpResponse.BodyHandlers.ofString());
            System.out.println("status " + res.statusCode());
        } catch (Exception e) {
            System.out.println("failed " + e);
            System.exit(1);
        }
    }
}
"""


@test(timeout=240)
def stacks_java_opaque_refused(t):
    """A Java HttpClient (TLS inside the JVM, which uprobes cannot read) calls Anthropic from a
    service allowed only OpenAI: the provider gates refuse it, the agent logs that the JVM's TLS
    cannot be read, and the inventory lists the attempt as opaque and refused."""
    s = tb.Setup(t, {"javasvc": ("enforce", "allow_providers: [openai]\n")})
    src = t.write("Client.java", JAVA_CLIENT.encode())
    os.chmod(src, 0o644)
    p = s.net.spawn(["java", "-Djava.net.preferIPv4Stack=true", src, "https://%s/v1/messages" % g.ANTHROPIC],
                    cgroup=s.cg["javasvc"], name="java")
    rc = p.wait(120)
    check(rc != 0 and any(line.startswith("failed") for line in p.out_lines),
          "the Java request to a disallowed provider was not refused: rc %s %s %s"
          % (rc, p.out_lines[-2:], p.err_lines[-3:]))
    ev = s.agent.wait_event(lambda e: e.get("pid") == p.pid and e.get("provider") == "anthropic", 10)
    check(ev and ev.get("decision") == "denied", "no denied provider_connection for the JVM: %s" % ev)
    log_ok = s.agent.wait_for(lambda evs: any("pid %d" % p.pid in line and "JVM" in line
                                              for line in s.agent.err_lines), 10, "coverage log")
    check(log_ok, "the agent does not log why the JVM's TLS cannot be read:\n%s" % s.agent.stderr_tail(15))
    db = os.path.join(s.agent.state_dir, "leakwatch.db")
    s.agent.stop_ok()  # flushes the inventory
    out = subprocess.run([lw.BIN, "inventory", "--db", db, "--format", "json"], capture_output=True,
                         text=True, timeout=60)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    row = [r for r in rows if r["service"] == "javasvc" and r["provider"] == "anthropic"]
    check(row and row[0]["opaque"] and row[0]["refused"] >= 1,
          "the refused JVM connection is not in the inventory as opaque and refused: %s" % rows)


BORING_DIR = "/usr/lib/x86_64-linux-gnu/android"  # Debian's android-libboringssl


def build_tlsclients(t):
    """tests/integration/clients/tlsclient.c built three ways: against BoringSSL (shared, in
    BORING_DIR), with OpenSSL linked in statically (found through the symbol table), and that
    binary stripped (no symbol table: cannot be hooked)."""
    src = os.path.join(HERE, "clients", "tlsclient.c")
    d = t.tmpdir()
    out = {k: os.path.join(d, "tls-" + k) for k in ("boring", "static", "stripped")}
    cmds = [["cc", "-O1", "-I/usr/include/android", src, "-L" + BORING_DIR, "-Wl,-rpath," + BORING_DIR,
             "-lssl", "-lcrypto", "-o", out["boring"]],
            ["cc", "-O1", src, "-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic", "-ldl", "-pthread",
             "-o", out["static"]],
            ["strip", "-o", out["stripped"], out["static"]]]
    for c in cmds:
        p = subprocess.run(c, capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "%s failed: %s" % (" ".join(c[:3]), p.stderr[-500:]))
    for f in out.values():
        os.chmod(f, 0o755)
    return out


@test(timeout=240)
def stacks_boringssl_static_stripped(t):
    """An OpenSSL-API client linked against BoringSSL, the same client with OpenSSL linked in
    statically, and that binary stripped, each send personal data to OpenSSL's provider from an
    enforcing service: the first two are hooked (BoringSSL's exported functions, the static
    binary's symbol table) and alerted on with their pid; the stripped one cannot be hooked, and
    the agent's log says why, naming the TLS library it found inside."""
    bins = build_tlsclients(t)
    s = tb.Setup(t, {"cbin": ("enforce", "")})
    for kind in ("boring", "static", "stripped"):
        tag = "pii-" + kind
        body = s.body(tag + ".json", tb.chat(pii_text(tag)))
        p = s.net.spawn([bins[kind], g.OPENAI, s.net.ca, body], cgroup=s.cg["cbin"], name="tls-" + kind)
        rc = p.wait(40)
        check(rc == 0, "%s client failed: %s %s" % (kind, p.out_lines[-2:], p.err_lines[-3:]))
        if kind != "stripped":
            al = s.wait_alert(p.pid, lambda a: "email" in tb.types(a))
            check(al.get("service") == "cbin" and al.get("provider") == "openai",
                  "%s: alert has the wrong service or provider: %s" % (kind, al))
            continue
        line = s.agent.wait_for(lambda evs: [x for x in s.agent.err_lines if "pid %d " % p.pid in x], 10,
                                "coverage log")
        check(line and "stripped binary with OpenSSL" in line[0],
              "the agent does not say why the stripped binary cannot be read: %s; its events: %s; "
              "coverage lines: %s" % (line, s.agent.provider_events(p.pid),
                                      [x for x in s.agent.err_lines if "-> " in x]))
        check(not s.alerts(p.pid), "an alert for the stripped binary, which cannot be read?")
    log = "\n".join(s.agent.err_lines)
    check(BORING_DIR + "/libssl.so.0: boringssl" in log and bins["static"] + ": openssl" in log,
          "the log does not name BoringSSL and the static binary's OpenSSL:\n%s" % log[-2000:])
