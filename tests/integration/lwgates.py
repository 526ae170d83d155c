#!/usr/bin/env python3
"""Harness pieces for the provider-gate tests (issue 3), built on lwtest (stdlib only).

Test side (import lwgates):
  - GateNet(ctx): provider netns lwg-prov-<pid> + app netns lwg-app-<pid> joined by a veth pair
    on 10.214.0.0/24 and fd00:214::/64 (app .1 / ::1). Provider side:
      10.214.0.2 + fd00:214::2  api.openai.com (A + AAAA)
      10.214.0.3                internal.example.test (not a provider)
      10.214.0.4                api.anthropic.com CNAME edge1.anthropic.test CNAME edge2.anthropic.test
      10.214.0.5                generativelanguage.googleapis.com
      10.214.0.6                serves every name, never given out by DNS (only SNI can tell)
      10.214.0.53               dnsmasq (TTL = GateNet(ttl=...)); the app's only resolver
      10.214.0.54               malformed-DNS responder, on demand (start_baddns)
    The app netns resolves through dnsmasq (/etc/netns/<app>/resolv.conf; its hosts file names
    none of the test hosts). A per-SNI TLS server + UDP/443 logger listens on .2-.6 and ::2
    (GateServer). One GateNet per test at a time.
  - Cgroups(ctx): cgroup v2 services under <cgroup2 mount>/leakwatch-test-<pid>/<service>;
    processes are started inside a service cgroup *and* the app netns.
  - write_policies(dir, services): policy directory for `leakwatch run --policy DIR`.
  - clients: curl(), pyhttps(), node_openai(), nosni(), udp(), hello(), raw(), dns_query(), gai(),
    tcp(): each returns a ClientResult (iterates as (rc, elapsed, err); .errno, .pid, .marker, .json).
    check_allowed() / check_denied(): the client's outcome and what the server saw.
  - GateAgent(ctx, policy_dir): `build/leakwatch run --policy DIR --stats-interval 0`.
  - ClientHello / DNS builders used for the malformed-input tests.

Process side (run inside the namespaces, `python3 lwgates.py SUBCOMMAND ...`):
  serve   per-SNI TLS server (HTTP/1.1) + UDP/443 logger, one JSON line per event to --log
  baddns  UDP DNS responder that answers with crafted (malformed) responses
  client  python clients (urllib, httpclient, nosni, udp, hello, raw, dnsq, gai, tcp); one JSON
          result line on stdout: {"ok", "phase", "errno", "error", "elapsed", ...}

Server log records (JSON lines):
  {"ev":"open",  "conn", "t", "peer", "local"}
  {"ev":"request","conn", "t", "peer", "local", "sni", "method", "path", "host", "req_id", "len"}
  {"ev":"close", "conn", "t", "peer", "local", "sni", "hello_seen", "raw_in", "raw_head",
                 "handshake", "app_bytes", "app_head", "requests", "error"}
  {"ev":"udp",   "t", "peer", "local", "len", "data"}
"""
import argparse
import errno as errno_mod
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lwcommon  # noqa: E402
import lwtest as lw  # noqa: E402
from lwtest import check, fail  # noqa: E402

SELF = os.path.abspath(__file__)
PY = lw.PY
REPO = lw.REPO

# --------------------------------------------------------------------------- addresses and names

APP_IP = "10.214.0.1"
OPENAI_IP = "10.214.0.2"      # api.openai.com
INTERNAL_IP = "10.214.0.3"    # internal.example.test (not a provider)
ANTHROPIC_IP = "10.214.0.4"   # edge2.anthropic.test <- api.anthropic.com (CNAME chain)
GEMINI_IP = "10.214.0.5"      # generativelanguage.googleapis.com
HIDDEN_IP = "10.214.0.6"      # provider-side address DNS never gives out (SNI gate alone)
DNS_IP = "10.214.0.53"        # dnsmasq: its own address, not a provider's (an agent may refuse every
                              # port of a disallowed provider's address, DNS included)
BADDNS_IP = "10.214.0.54"     # malformed-DNS responder (BadDns)
APP_IP6 = "fd00:214::1"
OPENAI_IP6 = "fd00:214::2"    # api.openai.com AAAA
PREFIX4 = 24
PREFIX6 = 64
PROVIDER_SIDE_V4 = [OPENAI_IP, INTERNAL_IP, ANTHROPIC_IP, GEMINI_IP, HIDDEN_IP, DNS_IP, BADDNS_IP]
PROVIDER_SIDE_V6 = [OPENAI_IP6]
SERVE_ADDRS = [OPENAI_IP, INTERNAL_IP, ANTHROPIC_IP, GEMINI_IP, HIDDEN_IP, OPENAI_IP6]

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
GEMINI = "generativelanguage.googleapis.com"
INTERNAL = "internal.example.test"
ANTHROPIC_CHAIN = [ANTHROPIC, "edge1.anthropic.test", "edge2.anthropic.test"]
PROVIDER_NAMES = [OPENAI, ANTHROPIC, GEMINI]
CERT_NAMES = PROVIDER_NAMES + [INTERNAL]
PROVIDER_OF = {OPENAI: "openai", ANTHROPIC: "anthropic", GEMINI: "google-gemini"}
# every address a name resolves to (A and AAAA)
ADDRS = {OPENAI: [OPENAI_IP, OPENAI_IP6], ANTHROPIC: [ANTHROPIC_IP], GEMINI: [GEMINI_IP],
         INTERNAL: [INTERNAL_IP]}
NAME_OF_ADDR = {OPENAI_IP: OPENAI, OPENAI_IP6: OPENAI, ANTHROPIC_IP: ANTHROPIC, GEMINI_IP: GEMINI,
                INTERNAL_IP: INTERNAL}

DEFAULT_TTL = 30

_ERRNO_NAMES = set(errno_mod.errorcode.values())
_STRERROR = {os.strerror(n): name for n, name in errno_mod.errorcode.items()}


def dst_str(ip, port=443):
    """"10.214.0.2:443" / "[fd00:214::2]:443" (the agent's dst format)."""
    return ("[%s]:%d" % (ip, port)) if ":" in ip else ("%s:%d" % (ip, port))


def dsts(name, port=443):
    return {dst_str(a, port) for a in ADDRS[name]}


def errno_from_text(text):
    """Best-effort errno name in a client's error text (E-code or strerror string)."""
    if not text:
        return None
    for m in re.finditer(r"\b(E[A-Z0-9]{2,})\b", text):
        if m.group(1) in _ERRNO_NAMES:
            return m.group(1)
    # the gates' own refusals first: after a refused ClientHello the agent also
    # aborts the connection, and a client may report both (curl prints "Send
    # failure: Software caused connection abort" and "... Permission denied")
    for n in (errno_mod.EACCES, errno_mod.EPERM):
        if os.strerror(n) in text:
            return errno_mod.errorcode[n]
    # longest strerror first ("Operation not permitted" before shorter ones)
    for s in sorted(_STRERROR, key=len, reverse=True):
        if len(s) > 8 and s in text:
            return _STRERROR[s]
    return None


# --------------------------------------------------------------------------- certificates

_gate_certs = None


def gate_certs():
    """Per-name leaf certs (and one IP-SAN cert for SNI-less connections) signed by the lwtest CA.

    Returns {"ca": path, "names": {name: (cert, key)}, "ip": (cert, key), "dir": d}."""
    global _gate_certs
    if _gate_certs:
        return _gate_certs
    base = lw.certs()
    d = os.path.join(base["dir"], "gates")
    os.makedirs(d, exist_ok=True)
    ca, ca_key = base["ca"], os.path.join(base["dir"], "ca.key")
    key = os.path.join(d, "leaf.key")
    lw._sh(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-out", key])
    out = {"ca": ca, "dir": d, "names": {}}

    def leaf(tag, cn, sans):
        csr, ext, crt = (os.path.join(d, tag + s) for s in (".csr", ".ext", ".pem"))
        lw._sh(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn])
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n" % ",".join(sans))
        lw._sh(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "3", "-extfile", ext])
        return crt

    for n in CERT_NAMES:
        out["names"][n] = (leaf(n, n, ["DNS:" + n]), key)
    ips = PROVIDER_SIDE_V4 + PROVIDER_SIDE_V6
    out["ip"] = (leaf("ip", "leakwatch gate test by address", ["IP:" + a for a in ips]), key)
    _gate_certs = out
    return out


# --------------------------------------------------------------------------- stale state

def _pid_dead(s):
    return not os.path.exists("/proc/" + s)


def cleanup_stale():
    """Remove lwg-* namespaces, /etc/netns/lwg-* and leakwatch-test-<pid> cgroups whose runner is gone."""
    try:
        names = os.listdir("/var/run/netns")
    except OSError:
        names = []
    for n in names:
        m = re.match(r"^lwg-(prov|app)-(\d+)$", n)
        if m and _pid_dead(m.group(2)):
            lw._del_netns(n)
    try:
        for n in os.listdir("/etc/netns"):
            m = re.match(r"^lwg-(prov|app)-(\d+)$", n)
            if m and _pid_dead(m.group(2)):
                shutil.rmtree(os.path.join("/etc/netns", n), ignore_errors=True)
    except OSError:
        pass
    mnt = cgroup2_mount(required=False)
    if mnt:
        for n in os.listdir(mnt):
            m = re.match(r"^leakwatch-test-(\d+)$", n)
            if m and _pid_dead(m.group(1)):
                _remove_cgroup_tree(os.path.join(mnt, n))


def other_agents(ctx=None):
    """leakwatch processes running that this test did not start: "pid: cmdline" strings. Their gates
    (attached to the cgroup root) act on the test's traffic too, agent-free tests included."""
    mine = {a.pid for a in (ctx.agents if ctx else [])}
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine or int(d) == os.getpid():
            continue
        try:
            if os.path.basename(os.readlink("/proc/%s/exe" % d)).startswith("leakwatch"):
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    out.append("%s: %s" % (d, f.read().replace(b"\0", b" ").decode(errors="replace").strip()))
        except OSError:
            pass
    return out


def note_other_agents(ctx):
    """Add a note (shown when the test fails) naming leakwatch processes the test did not start."""
    o = other_agents(ctx)
    if o:
        ctx.note("another leakwatch was running during this test (its gates see this traffic too): %s"
                 % "; ".join(o[:3]))
    return o


# --------------------------------------------------------------------------- cgroups

def cgroup2_mount(required=True):
    """Mount point of the cgroup2 hierarchy, from /proc/mounts."""
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "cgroup2":
                return parts[1].replace("\\040", " ")
    if required:
        fail("no cgroup2 mount in /proc/mounts")
    return None


def _cg_pids(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _remove_cgroup_tree(path, timeout=10):
    """SIGKILL every process in the cgroup tree (by pid), then rmdir bottom-up."""
    if not os.path.isdir(path):
        return
    deadline = time.monotonic() + timeout
    while True:
        dirs = [dp for dp, _, _ in os.walk(path)]
        pids = [p for d in dirs for p in _cg_pids(d)]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        busy = False
        for d in sorted(dirs, key=len, reverse=True):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                busy = True
        if not busy:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("cgroup %s still busy (pids %s)" % (path, pids))
        time.sleep(0.05)


class Cgroup:
    def __init__(self, mount, kpath):
        self.mount = mount
        self.kpath = kpath                       # as the kernel names it: /leakwatch-test-1234/checkout
        self.path = mount + kpath                # filesystem path
        self.name = os.path.basename(kpath)
        self.id = os.stat(self.path).st_ino      # == bpf_get_current_cgroup_id() of its members

    def pids(self):
        return _cg_pids(self.path)

    def wrap(self, argv, netns=None):
        """argv that joins this cgroup, then (optionally) the netns via `ip netns exec`, then execs argv.

        The cgroup is joined *before* `ip netns exec`, which remounts /sys (hiding the cgroup mount).
        Every step execs in place: the final pid is the pid of the spawned process."""
        tail = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
        return ["sh", "-c", 'echo $$ > "$0" || exit 126; exec "$@"',
                os.path.join(self.path, "cgroup.procs")] + tail

    def __repr__(self):
        return "<cgroup %s id=%d>" % (self.kpath, self.id)


_live_cg_roots = set()


class Cgroups:
    """<cgroup2 mount>/leakwatch-test-<pid>/<service>, removed (processes killed) at test cleanup.

    A second Cgroups while the first one's test is still running shares the same root."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.mount = cgroup2_mount()
        self.root_k = "/leakwatch-test-%d" % os.getpid()
        self.root = self.mount + self.root_k
        self.services = {}
        if self.root in _live_cg_roots and os.path.isdir(self.root):
            return
        if os.path.isdir(self.root):
            _remove_cgroup_tree(self.root)
        os.mkdir(self.root)
        _live_cg_roots.add(self.root)

        def remove(root=self.root):
            _live_cg_roots.discard(root)
            _remove_cgroup_tree(root)
        lw.add_cleanup(remove, "cgroup " + self.root)

    def service(self, name):
        if name not in self.services:
            path = os.path.join(self.root, name)
            if not os.path.isdir(path):
                os.mkdir(path)
            self.services[name] = Cgroup(self.mount, "%s/%s" % (self.root_k, name))
        return self.services[name]


def proc_cgroup(pid):
    """cgroup v2 path of a process (the "0::" line of /proc/PID/cgroup)."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


# --------------------------------------------------------------------------- policies

def _yq(s):
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def write_policies(d, services, default_mode="monitor", default_allow="all", providers=None):
    """Write a policy directory for `leakwatch run --policy d`.

    services: iterable of dicts {service, cgroup (kernel path or Cgroup), mode ("enforce"|"monitor"),
    allow (list of provider ids, or "all")}. Copies policies/providers.yaml. Rewrites d in place
    (files of services no longer listed are removed) so a SIGHUP test can change it. Returns d."""
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(providers or os.path.join(REPO, "policies", "providers.yaml"),
                    os.path.join(d, "providers.yaml.tmp"))
    os.replace(os.path.join(d, "providers.yaml.tmp"), os.path.join(d, "providers.yaml"))
    keep = {"providers.yaml", "default.yaml"}

    def allow_str(a):
        if a == "all":
            return "all"
        return "[" + ", ".join(a) + "]"

    def put(name, text):
        tmp = os.path.join(d, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(d, name))  # atomic: a reload never sees half a file

    for s in services:
        cg = s["cgroup"].kpath if isinstance(s["cgroup"], Cgroup) else s["cgroup"]
        fname = re.sub(r"[^A-Za-z0-9_.-]", "_", s["service"]) + ".yaml"
        keep.add(fname)
        put(fname, "service: %s\nmatch: { cgroup: %s }\nmode: %s\nallow_providers: %s\n"
            % (_yq(s["service"]), _yq(cg), s.get("mode", "enforce"), allow_str(s.get("allow", []))))
    put("default.yaml", "default: true\nmode: %s\nallow_providers: %s\n"
        % (default_mode, allow_str(default_allow)))
    for n in os.listdir(d):
        if n.endswith(".yaml") and n not in keep:
            os.unlink(os.path.join(d, n))
    return d


# --------------------------------------------------------------------------- network

class GateNet:
    """provider netns + app netns + dnsmasq + per-SNI TLS/UDP server (see module doc)."""

    def __init__(self, ctx, ttl=DEFAULT_TTL, server=True, dns=True):
        cleanup_stale()
        self.ctx = ctx
        self.ttl = ttl
        tag = str(os.getpid())
        self.prov = "lwg-prov-" + tag
        self.app = "lwg-app-" + tag
        self.veth_app = "lga" + tag
        self.veth_prov = "lgp" + tag
        self.certs = gate_certs()
        self.ca = self.certs["ca"]
        self.dir = ctx.tmpdir()
        self.dnsmasq = None
        self.server = None
        self.baddns = None
        self._setup()
        if dns:
            self.start_dnsmasq()
        if server:
            self.server = GateServer(ctx, self)

    def _setup(self):
        for ns in (self.prov, self.app):
            if os.path.exists("/var/run/netns/" + ns):
                lw._del_netns(ns)
            lw._sh(["ip", "netns", "add", ns])
            lw.add_cleanup(lambda ns=ns: lw._del_netns(ns), "netns " + ns)
        if not os.path.isdir("/etc/netns"):
            os.makedirs("/etc/netns")
            lw.add_cleanup(lambda: os.path.isdir("/etc/netns") and not os.listdir("/etc/netns")
                           and os.rmdir("/etc/netns"), "rmdir /etc/netns")
        self.etc = "/etc/netns/" + self.app
        os.makedirs(self.etc, exist_ok=True)
        lw.add_cleanup(lambda: shutil.rmtree(self.etc, ignore_errors=True), "rm " + self.etc)
        # no entries for the test names: they must come from DNS
        with open(os.path.join(self.etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
        with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
            f.write("nameserver %s\noptions timeout:1 attempts:2\n" % DNS_IP)
        lw.add_cleanup(lambda: lw._sh(["ip", "link", "del", self.veth_app], check_rc=False), "veth")
        lw._sh(["ip", "link", "add", self.veth_app, "netns", self.app, "type", "veth",
                "peer", "name", self.veth_prov, "netns", self.prov])
        for ns, dev, v4, v6 in ((self.app, self.veth_app, [APP_IP], [APP_IP6]),
                                (self.prov, self.veth_prov, PROVIDER_SIDE_V4, PROVIDER_SIDE_V6)):
            lw._sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            for a in v4:
                lw._sh(["ip", "-n", ns, "addr", "add", "%s/%d" % (a, PREFIX4), "dev", dev])
            for a in v6:
                lw._sh(["ip", "-n", ns, "addr", "add", "%s/%d" % (a, PREFIX6), "dev", dev, "nodad"])
            lw._sh(["ip", "-n", ns, "link", "set", dev, "up"])

    # -- DNS
    def dnsmasq_args(self):
        t = str(self.ttl)
        a = ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--listen-address=" + DNS_IP, "--bind-interfaces", "--port=53", "--cache-size=0",
             "--log-queries", "--log-facility=-", "--local-ttl=" + t,
             "--local=/test/", "--local=/com/", "--local=/googleapis.com/",
             "--host-record=%s,%s,%s,%s" % (OPENAI, OPENAI_IP, OPENAI_IP6, t),
             "--cname=%s,%s,%s" % (ANTHROPIC_CHAIN[0], ANTHROPIC_CHAIN[1], t),
             "--cname=%s,%s,%s" % (ANTHROPIC_CHAIN[1], ANTHROPIC_CHAIN[2], t),
             "--host-record=%s,%s,%s" % (ANTHROPIC_CHAIN[2], ANTHROPIC_IP, t),
             "--host-record=%s,%s,%s" % (GEMINI, GEMINI_IP, t),
             "--host-record=%s,%s,%s" % (INTERNAL, INTERNAL_IP, t)]
        return a

    def start_dnsmasq(self):
        self.dnsmasq = lw.Proc(self.dnsmasq_args(), netns=self.prov, name="dnsmasq")
        self.dnsmasq.wait_line(lambda l: "started" in l, timeout=10, stream="err")
        # ready = answers a query from the app side
        deadline = time.monotonic() + 10
        while True:
            r = self.spawn_sync(["getent", "ahostsv4", GEMINI], timeout=10)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                fail("dnsmasq does not answer: %s; dnsmasq: %s" % (r.stderr, self.dnsmasq.stderr_tail()))
            time.sleep(0.1)

    def start_baddns(self, addr=BADDNS_IP, answer_ip=HIDDEN_IP):
        """Malformed-DNS responder on addr:53 (see BadDns modes)."""
        self.baddns = lw.Proc([PY, SELF, "baddns", "--addr", addr, "--answer", answer_ip,
                               "--log", os.path.join(self.dir, "baddns.log")], netns=self.prov, name="baddns")
        self.baddns.wait_line(lambda l: l.startswith("listening"), timeout=10)
        return self.baddns

    # -- processes in the app netns
    def spawn(self, argv, cgroup=None, env=None, name=None, stdin=None):
        """Start argv in the app netns (resolver -> dnsmasq), inside cgroup if given."""
        if cgroup is not None:
            return lw.Proc(cgroup.wrap(argv, netns=self.app), env=env, name=name or os.path.basename(argv[0]),
                           stdin=stdin)
        return lw.Proc(argv, netns=self.app, env=env, name=name or os.path.basename(argv[0]), stdin=stdin)

    def spawn_sync(self, argv, cgroup=None, timeout=30, env=None):
        full = cgroup.wrap(argv, netns=self.app) if cgroup is not None else ["ip", "netns", "exec", self.app] + argv
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                              env=e)

    def resolve(self, name, cgroup=None, family="ahosts"):
        """Addresses getaddrinfo returns for name inside the app netns (getent ahosts/ahostsv4/ahostsv6)."""
        r = self.spawn_sync(["getent", family, name], cgroup=cgroup)
        if r.returncode != 0:
            return []
        out = []
        for line in r.stdout.splitlines():
            a = line.split()[0]
            if a not in out:
                out.append(a)
        return out

    def netns_inode(self, ns):
        return os.stat("/var/run/netns/" + ns).st_ino


# --------------------------------------------------------------------------- server (test side)

class GateServer:
    """Per-SNI TLS server + UDP/443 logger in the provider netns; reads its JSON-lines log."""

    def __init__(self, ctx, net, addrs=None):
        self.net = net
        self.log_path = os.path.join(net.dir, "gate-server.log")
        c = net.certs
        spec = {"default": list(c["ip"]), "names": {n: list(v) for n, v in c["names"].items()}}
        self.spec_path = os.path.join(net.dir, "gate-server-certs.json")
        with open(self.spec_path, "w") as f:
            json.dump(spec, f)
        argv = [PY, SELF, "serve", "--certs", self.spec_path, "--log", self.log_path]
        for a in (addrs or SERVE_ADDRS):
            argv += ["--addr", a]
        self.proc = lw.Proc(argv, netns=net.prov, name="lwg-server")
        self.proc.wait_line(lambda l: l.startswith("listening"), timeout=20)

    def alive(self):
        return self.proc.alive()

    def plaintext(self):
        """Every application byte the server decrypted, all connections (dumped by serve)."""
        d = self.log_path + ".d"
        out = b""
        for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, n), "rb") as f:
                out += f.read() + b"\n"
        return out

    def records(self):
        try:
            with open(self.log_path, encoding="utf-8") as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def mark(self):
        """Position in the log; pass to since()/settle()."""
        return len(self.records())

    def since(self, mark):
        return self.records()[mark:]

    def settle(self, mark, timeout=5):
        """Wait until every TCP connection opened since mark has its close record; return the records."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.since(mark)
            opened = {r["conn"] for r in recs if r["ev"] == "open"}
            closed = {r["conn"] for r in recs if r["ev"] == "close"}
            if opened <= closed or time.monotonic() > deadline:
                return recs
            time.sleep(0.05)

    def requests(self, marker=None, mark=0):
        return [r for r in self.since(mark) if r["ev"] == "request"
                and (marker is None or r.get("req_id") == marker or marker in r.get("path", ""))]

    def wait_request(self, marker, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            rs = self.requests(marker)
            if rs:
                return rs[-1]
            if time.monotonic() > deadline:
                fail("test server has no request with marker %r (server alive: %s; stderr: %s)"
                     % (marker, self.alive(), self.proc.stderr_tail()))
            time.sleep(0.05)

    def saw_marker(self, marker, mark=0):
        """Records (request, close with app data, udp datagram) that contain marker."""
        out = []
        for r in self.since(mark):
            if r["ev"] == "request" and (r.get("req_id") == marker or marker in r.get("path", "")):
                out.append(r)
            elif r["ev"] == "close" and marker in (r.get("app_head") or ""):
                out.append(r)
            elif r["ev"] == "udp" and marker in (r.get("data") or ""):
                out.append(r)
        return out

    def app_data_since(self, mark, timeout=3):
        """Connections opened since mark that delivered application data (after settling)."""
        recs = self.settle(mark, timeout)
        return [r for r in recs if r["ev"] == "close" and (r.get("app_bytes") or r.get("requests"))]

    def conns_since(self, mark, timeout=3):
        return [r for r in self.settle(mark, timeout) if r["ev"] == "close"]

    def conn_from(self, src, mark=0, timeout=3):
        """Close record of the connection whose client address was src ("ip:port"), or None."""
        return next((r for r in self.conns_since(mark, timeout) if r["peer"] == src), None)

    def udp(self, marker=None, mark=0):
        return [r for r in self.since(mark) if r["ev"] == "udp" and (marker is None or marker in r.get("data", ""))]


# --------------------------------------------------------------------------- clients (test side)

class ClientResult:
    """Outcome of one client run. Iterates as (rc, elapsed, err) for `rc, dt, err = r`."""

    def __init__(self, client, proc, elapsed, marker, errno=None, js=None):
        self.client, self.proc, self.elapsed, self.marker = client, proc, elapsed, marker
        self.pid = proc.pid
        self.rc = proc.p.returncode
        self.out = list(proc.out_lines)
        self.stderr = "\n".join(proc.err_lines)
        self.json = js
        if js and js.get("errno"):
            errno = errno or js["errno"]
        self.errno = errno or (errno_from_text(self.stderr) if self.rc != 0 else None)
        self.err = self.errno or ""
        if self.rc != 0:
            self.err = self._detail(js)

    def _detail(self, js):
        """One line saying why the client failed (prefers the line that carries the errno)."""
        if js and js.get("error"):
            d = "%s (phase %s)" % (js["error"], js.get("phase"))
        else:
            lines = [l.strip() for l in self.stderr.splitlines() if l.strip()]
            hit = [l for l in lines if self.errno and (self.errno in l or errno_from_text(l) == self.errno)]
            d = (hit or lines or ["rc %s, no stderr" % self.rc])[-1]
        return ("%s: %s" % (self.errno, d)) if self.errno else d

    @property
    def ok(self):
        return self.rc == 0

    def __iter__(self):
        return iter((self.rc, self.elapsed, self.err))

    def __repr__(self):
        return "<%s rc=%s %.3fs errno=%s pid=%s err=%r>" % (self.client, self.rc, self.elapsed, self.errno,
                                                             self.pid, self.err[:200])

    def describe(self):
        return "%r stderr: %s stdout: %s" % (self, self.stderr[-800:], self.out[-3:])


def _run(client, proc, marker, timeout):
    t0 = time.monotonic()
    rc = proc.wait(timeout)  # raises TestFailure on timeout
    dt = time.monotonic() - t0
    js = None
    for line in reversed(proc.out_lines):
        if line.strip().startswith("{"):
            try:
                js = json.loads(line)
                break
            except ValueError:
                pass
    r = ClientResult(client, proc, dt, marker, js=js)
    assert r.rc == rc
    return r


def new_marker(tag):
    """Unique marker (also the X-Req-Id and the last path segment of a request)."""
    new_marker.n += 1
    return "lwg-%s-%d-%d" % (re.sub(r"[^a-z0-9]", "", tag.lower())[:24], os.getpid(), new_marker.n)


new_marker.n = 0


def url(host, marker, port=443):
    h = ("[%s]" % host) if ":" in host else host
    return "https://%s%s/v1/lwt/%s" % (h, "" if port == 443 else ":%d" % port, marker)


def curl(net, host, cgroup=None, marker=None, timeout=20, extra=(), port=443):
    """curl -v POST https://host/v1/lwt/<marker> (X-Req-Id: marker); DNS via the app resolver."""
    marker = marker or new_marker("curl")
    p = net.spawn(["curl", "-sS", "-v", "--http1.1", "--cacert", net.ca, "--max-time", str(timeout),
                   "-H", "%s: %s" % (lwcommon.H_REQ_ID, marker), "-H", "%s: 64" % lwcommon.H_RESP_SIZE,
                   "-H", "Content-Type: text/plain", "--data-binary", "body of " + marker,
                   "-o", "/dev/null", "-w", "%{http_code}\n"] + list(extra) + [url(host, marker, port)],
                  cgroup=cgroup, name="curl")
    r = _run("curl", p, marker, timeout + 10)
    if r.rc == 0 and (not r.out or r.out[-1].strip() != "200"):
        r.rc = -1
        r.err = "curl: http status %r" % (r.out[-1:] if r.out else None)
    return r


def py(net, mode, cgroup=None, timeout=20, **kw):
    """python3 client (modes: urllib, httpclient, nosni, udp, hello, raw, dnsq, gai, tcp); see client_main."""
    marker = kw.pop("marker", None) or new_marker("py-" + mode)
    argv = [PY, SELF, "client", mode, "--marker", marker, "--cafile", net.ca, "--timeout", str(timeout)]
    for k, v in kw.items():
        if v is None or v is False:
            continue
        for one in (v if isinstance(v, list) else [v]):
            argv.append("--" + k.replace("_", "-"))
            if one is not True:
                argv.append(str(one))
    p = net.spawn(argv, cgroup=cgroup, name="py-" + mode)
    return _run("python-" + mode, p, marker, timeout + 10)


def pyhttps(net, host, cgroup=None, lib="urllib", **kw):
    return py(net, lib, cgroup=cgroup, host=host, **kw)


def nosni(net, ip, cgroup=None, **kw):
    """TLS to a literal IP without SNI (server presents its IP-SAN cert), then one HTTP request."""
    return py(net, "nosni", cgroup=cgroup, ip=ip, **kw)


def udp(net, ip, cgroup=None, port=443, **kw):
    """One UDP datagram (QUIC-looking long header + marker) to ip:port."""
    return py(net, "udp", cgroup=cgroup, ip=ip, port=port, **kw)


def gai(net, host, cgroup=None, port=443, **kw):
    """getaddrinfo(host, port or NULL, SOCK_STREAM) only (glibc sorts several answers by connect()ing
    UDP sockets to each address on that port: no datagram is sent). json "addrs": the addresses in
    the order returned."""
    return py(net, "gai", cgroup=cgroup, host=host, port=port, **kw)


def tcp(net, ip, cgroup=None, port=443, **kw):
    """Plain TCP connect (no bytes sent)."""
    return py(net, "tcp", cgroup=cgroup, ip=ip, port=port, **kw)


def hello(net, ip, sni, cgroup=None, writes=1, records=1, **kw):
    """Real ClientHello from python's ssl (MemoryBIO) sent raw: split into `writes` send() calls
    and/or re-framed into `records` TLS records; then finishes the handshake and makes one request."""
    return py(net, "hello", cgroup=cgroup, ip=ip, sni=sni, writes=writes, records=records, **kw)


def raw(ctx, net, ip, data, cgroup=None, splits=None, port=443, **kw):
    """Send raw bytes over TCP (optionally in pieces at the given offsets), then read until EOF or
    read_timeout. data: bytes (one connection) or a list of bytes (one connection each, in order,
    from one process); json "conns" holds one result per connection (writes, received, error, errno)."""
    tag = new_marker("raw")
    blobs = data if isinstance(data, (list, tuple)) else [data]
    files = [ctx.write("%s.%d.bin" % (tag, i), b) for i, b in enumerate(blobs)]
    return py(net, "raw", cgroup=cgroup, ip=ip, port=port, data_file=files,
              splits=",".join(str(s) for s in splits) if splits else None, marker=tag, **kw)


def dns_query(net, server, name, qtype="A", cgroup=None, qid=0x1234, **kw):
    """Raw DNS queries over UDP, one per id (qid: int or list, sent one after the other from one
    socket). The result json carries "responses": [{qid, response_hex, response_len, parsed |
    parse_error}], and the first one's fields at top level."""
    if isinstance(qid, (list, tuple)):
        qid = ",".join(str(q) for q in qid)
    return py(net, "dnsq", cgroup=cgroup, server=server, name=name, qtype=qtype, qid=qid, **kw)


NODE_PRELOAD = r"""'use strict';
// lwgates preload: print the cause chain (with error codes) of a failed fetch, which the openai
// SDK wraps into "APIConnectionError: Connection error." without the errno.
function chain(e) {
  const out = [];
  for (let c = e, i = 0; c && i < 8; c = c.cause, i++) {
    out.push('[' + (c.code || '') + '] ' + (c.name || 'Error') + ': ' + (c.message || String(c)));
  }
  return out.join(' <- ');
}
const f = globalThis.fetch;
globalThis.fetch = async function (...a) {
  try { return await f.apply(this, a); } catch (e) {
    process.stderr.write('lwg-fetch-error: ' + chain(e) + '\n');
    throw e;
  }
};
process.on('exit', (code) => { if (code) process.stderr.write('lwg-exit: ' + code + '\n'); });
// LWG_NODE_PIN="host=ip,...": resolve these names without DNS (an app with its own resolver or a
// cached address), so only the SNI gate can recognise the provider.
if (process.env.LWG_NODE_PIN) {
  const dns = require('dns');
  const pins = {};
  for (const kv of process.env.LWG_NODE_PIN.split(',')) { const [h, ip] = kv.split('='); pins[h] = ip; }
  const orig = dns.lookup;
  dns.lookup = function (host, opts, cb) {
    if (typeof opts === 'function') { cb = opts; opts = {}; }
    const ip = pins[host];
    if (!ip) return orig.call(this, host, opts, cb);
    const family = ip.includes(':') ? 6 : 4;
    if (opts && opts.all) return process.nextTick(cb, null, [{ address: ip, family }]);
    return process.nextTick(cb, null, ip, family);
  };
}
"""


def node_openai(ctx, net, host, cgroup=None, marker=None, resp_size=64, timeout=30, prompt=None, pin=None):
    """Official openai SDK (tests/node/openai_client.js) against https://host/v1 (via the app resolver).

    A preload prints the fetch error's cause chain so the errno (EPERM/EACCES) is visible.
    pin: an address to use for host without asking DNS (dns.lookup overridden in the preload)."""
    if not os.path.isdir(os.path.join(lw.NODE_DIR, "node_modules", "openai")):
        fail("tests/node/node_modules/openai missing (run: npm ci --prefix tests/node)")
    marker = marker or new_marker("sdk")
    pre = ctx.path("lwg-node-preload.js")
    if not os.path.exists(pre):
        with open(pre, "w") as f:
            f.write(NODE_PRELOAD)
        os.chmod(ctx.tmpdir(), 0o755)
    pf = ctx.write(marker + ".prompt", (prompt or ("prompt of " + marker)).encode())
    p = net.spawn(["node", "-r", pre, os.path.join(lw.NODE_DIR, "openai_client.js"), "--prompt-file", pf,
                   "--req-id", marker, "--resp-size", str(resp_size), "--base-url", "https://%s/v1" % host],
                  cgroup=cgroup, env=dict({"NODE_EXTRA_CA_CERTS": net.ca},
                                          **({"LWG_NODE_PIN": "%s=%s" % (host, pin)} if pin else {})),
                  name="node-openai")
    r = _run("openai-sdk", p, marker, timeout + 10)
    if r.rc == 0:
        js = r.json or {}
        if not (js.get("ok") and js.get("object") == "chat.completion" and js.get("content_len") == resp_size):
            r.rc = -1
            r.err = "openai SDK did not accept the completion: %s" % js
    return r


# --------------------------------------------------------------------------- assertions

DENY_ERRNOS = {"EACCES", "EPERM"}
# "fails in well under a second": wall time of the whole client process (interpreter start included)
DENY_WITHIN = float(os.environ.get("LWG_DENY_WITHIN", "1.0"))


def check_allowed(net, r, name=None):
    """r succeeded and the server received its request (with SNI `name` when given). Returns the record."""
    check(r.ok, "%s to %s failed, expected success: %s" % (r.client, name or "?", r.describe()))
    rec = net.server.wait_request(r.marker)
    if name is not None and r.client != "python-nosni":
        check(rec.get("sni") == name, "%s: server saw SNI %r, expected %r" % (r.client, rec.get("sni"), name))
    return rec


def check_denied(net, r, mark, errnos=DENY_ERRNOS, within=None):
    """r failed fast with one of errnos, and no connection since `mark` delivered application data
    (clients run one at a time, so everything since mark belongs to r)."""
    within = DENY_WITHIN if within is None else within
    check(not r.ok, "%s succeeded, expected refusal (%s): %s" % (r.client, "/".join(sorted(errnos)), r.describe()))
    check(r.errno in errnos, "%s failed with %s, expected %s: %s"
          % (r.client, r.errno, "/".join(sorted(errnos)), r.describe()))
    check(r.elapsed < within, "%s took %.2fs to fail (limit %.1fs): %s" % (r.client, r.elapsed, within, r.describe()))
    saw = net.server.saw_marker(r.marker, mark)
    check(not saw, "server received application data of refused %s (marker %s): %s" % (r.client, r.marker, saw[:2]))
    data = net.server.app_data_since(mark)
    check(not data, "server received application data on %d connection(s) during refused %s: %s"
          % (len(data), r.client, data[:2]))
    return r


# --------------------------------------------------------------------------- agent

GATE_STATS_KEYS = ["dns_answers_learned", "dns_malformed", "clienthello_malformed", "gate_denied"]
GATE_EVENT_FIELDS = {"event": str, "ts": (str, int, float), "service": str, "pid": int, "comm": str,
                     "exe": str, "provider": str, "host": str, "dst": str, "decision": str, "gate": str}
DECISIONS = {"allowed", "denied", "would_deny"}
GATES = {"sni", "connect", "quic", "ech", "quarantine", "http"}  # "ech": a ClientHello refused for carrying ECH;
# "http": plaintext HTTP to a provider address


class GateAgent(lw.Agent):
    """`build/leakwatch run --policy DIR --stats-interval 0`; provider_connection events on stdout.

    Reuses lw.Agent's readers (events, ready detection, `stats: {...}` parsing, stop, kill)."""

    def __init__(self, ctx, policy_dir, args=(), ready_timeout=30, stats_interval=0):
        self.policy_dir = policy_dir
        super().__init__(ctx, args, ready_timeout,
                         cmd=("run", "--policy", policy_dir, "--stats-interval", str(stats_interval)))

    def provider_events(self, pid=None):
        return [e for e in self.snapshot() if e.get("event") == "provider_connection"
                and (pid is None or e.get("pid") == pid)]

    def wait_event(self, pred, timeout=5):
        return self.wait_for(lambda evs: next((e for e in evs if e.get("event") == "provider_connection"
                                               and pred(e)), None), timeout)

    def event_for(self, r, timeout=5, **want):
        """The provider_connection event of client result r (by pid) matching want (field=value or
        field=set-of-values); fails with the events seen when there is none."""
        def match(e):
            if e.get("pid") != r.pid:
                return False
            for k, v in want.items():
                if isinstance(v, (set, frozenset, list, tuple)):
                    if e.get(k) not in v:
                        return False
                elif e.get(k) != v:
                    return False
            return True
        ev = self.wait_event(match, timeout)
        if not ev:
            fail("no provider_connection event for %s (pid %d) with %s; its events: %s; stderr: %s"
                 % (r.client, r.pid, want, self.provider_events(r.pid)[:4], self.stderr_tail()))
        probs = gate_event_problems(ev)
        check(not probs, "malformed event %s: %s" % (ev, probs))
        return ev

    def next_stats(self, timeout=5):
        """The next periodic `stats: {...}` line printed from now on (needs stats_interval > 0)."""
        def count():
            with self._lock:
                return sum(1 for l in self.err_lines if l.startswith("stats:"))
        n = count()
        deadline = time.monotonic() + timeout
        while count() <= n:
            if time.monotonic() > deadline or not self.alive():
                fail("no stats line within %ss (alive: %s); stderr: %s" % (timeout, self.alive(), self.stderr_tail()))
            time.sleep(0.05)
        with self._lock:
            return dict(self.stats)

    def reload(self, timeout=5):
        """SIGHUP; waits (up to timeout) for a stderr line mentioning reload. Returns that line or None."""
        n = len(self.err_lines)
        self.p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                new = self.err_lines[n:]
            for l in new:
                if "reload" in l.lower():
                    return l
            if not self.alive():
                fail("agent died on SIGHUP; stderr: %s" % self.stderr_tail())
            time.sleep(0.05)
        return None

    def stop_ok(self, timeout=30):
        rc, stats = self.stop(timeout)
        check(rc == 0, "agent exited %s after SIGINT (expected 0); stderr: %s" % (rc, self.stderr_tail()))
        check(isinstance(stats, dict) and "_unparsable" not in stats,
              "agent printed no parsable `stats: {...}` line on exit; stderr: %s" % self.stderr_tail())
        missing = [k for k in GATE_STATS_KEYS if not isinstance(stats.get(k), int)]
        check(not missing, "stats lack integer counters %s: %s" % (missing, stats))
        check(not self.bad_lines, "agent printed %d non-JSON stdout lines, first: %r"
              % (len(self.bad_lines), self.bad_lines[:1]))
        bad = [(e, gate_event_problems(e)) for e in self.provider_events() if gate_event_problems(e)]
        check(not bad, "%d malformed provider_connection events, e.g. %s" % (len(bad), bad[:2]))
        return stats


def gate_event_problems(ev):
    p = []
    for k, t in GATE_EVENT_FIELDS.items():
        if k not in ev:
            p.append("missing %r" % k)
        elif not isinstance(ev[k], t) or isinstance(ev[k], bool):
            p.append("%s has type %s" % (k, type(ev[k]).__name__))
    if p:
        return p
    if ev["decision"] not in DECISIONS:
        p.append("decision %r" % ev["decision"])
    if ev["gate"] not in GATES:
        p.append("gate %r" % ev["gate"])
    if not re.match(r"^(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:.]+\]):\d+$", ev["dst"]):
        p.append("dst %r" % ev["dst"])
    if ev["pid"] <= 0:
        p.append("pid %r" % ev["pid"])
    return p


# --------------------------------------------------------------------------- TLS ClientHello bytes

def _u8(n):
    return struct.pack("!B", n)


def _u16(n):
    return struct.pack("!H", n)


def _u24(n):
    return struct.pack("!I", n)[1:]


def _vec8(b):
    return _u8(len(b)) + b


def _vec16(b):
    return _u16(len(b)) + b


def ext(etype, data):
    return _u16(etype) + _vec16(data)


def sni_ext(name):
    n = name.encode()
    return ext(0x0000, _vec16(_u8(0) + _vec16(n)))


def hello_body(sni=None, ech=False, extra_exts=(), before_sni=(), rnd=None):
    """A syntactically valid TLS 1.3 ClientHello handshake message (type + length + body)."""
    rnd = rnd or os.urandom(32)
    exts = list(before_sni)
    if sni is not None:
        exts.append(sni_ext(sni))
    exts += [
        ext(0x000a, _vec16(_u16(0x001d) + _u16(0x0017))),                       # supported_groups
        ext(0x000d, _vec16(b"".join(_u16(x) for x in (0x0403, 0x0804, 0x0401)))),  # signature_algorithms
        ext(0x002b, _vec8(_u16(0x0304) + _u16(0x0303))),                        # supported_versions
        ext(0x0033, _vec16(_u16(0x001d) + _vec16(os.urandom(32)))),              # key_share x25519
        ext(0x0010, _vec16(_vec8(b"http/1.1"))),                               # ALPN
    ]
    if ech:  # encrypted_client_hello, outer: type 0, kdf/aead, config id, enc, payload
        exts.append(ext(0xfe0d, _u8(0) + _u16(1) + _u16(1) + _u8(7) + _vec16(os.urandom(32))
                        + _vec16(os.urandom(160))))
    exts += list(extra_exts)
    body = (_u16(0x0303) + rnd + _vec8(os.urandom(32))
            + _vec16(b"".join(_u16(c) for c in (0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f)))
            + _vec8(b"\x00") + _vec16(b"".join(exts)))
    return _u8(1) + _u24(len(body)) + body


def record(payload, ctype=22, version=0x0301):
    return _u8(ctype) + _u16(version) + _vec16(payload)


def client_hello(sni=None, **kw):
    """A full TLS record holding a ClientHello."""
    return record(hello_body(sni, **kw))


def malformed_hellos(sni):
    """name -> bytes: ClientHello records with broken length fields (SNI `sni` inside where possible)."""
    hb = hello_body(sni)
    full = record(hb)
    out = {}
    # record complete, but the handshake message inside claims more than the record holds
    cut = hb[:len(hb) * 3 // 5]
    out["truncated_in_record"] = record(cut)
    # SNI extension whose length runs past the end of the extensions block
    i = hb.find(sni.encode())
    bad = bytearray(hb)
    # layout before the name: ext type(2) ext len(2) list len(2) name type(1) name len(2) name
    ext_len_off = i - 2 - 1 - 2 - 2
    bad[ext_len_off:ext_len_off + 2] = _u16(0xfff0)
    out["sni_ext_len_past_end"] = record(bytes(bad))
    bad = bytearray(hb)
    bad[i - 2:i] = _u16(0xffff)  # server name length
    out["sni_name_len_oversized"] = record(bytes(bad))
    out["record_len_oversized"] = _u8(22) + _u16(0x0301) + _u16(0xffff) + hb  # > 2^14 + 2048
    bad = bytearray(hb)
    bad[1:4] = b"\xff\xff\xff"
    out["handshake_len_oversized"] = record(bytes(bad))
    out["zero_length_record"] = record(b"")
    out["truncated_record_header"] = full[:3]
    out["garbage"] = b"\x16\x03\x01" + os.urandom(200)
    return out


def reframe(rec, parts):
    """Split the handshake payload of one TLS record into `parts` records (legal fragmentation)."""
    ctype, ver, ln = rec[0], struct.unpack("!H", rec[1:3])[0], struct.unpack("!H", rec[3:5])[0]
    payload = rec[5:5 + ln]
    n = max(1, parts)
    step = (len(payload) + n - 1) // n
    out = b"".join(record(payload[i:i + step], ctype, ver) for i in range(0, len(payload), step))
    return out + rec[5 + ln:]


# --------------------------------------------------------------------------- DNS bytes

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "AAAA": 28}
QTYPE_NAMES = {v: k for k, v in QTYPES.items()}


def dns_name(name):
    out = b""
    for lab in name.rstrip(".").split("."):
        out += _u8(len(lab)) + lab.encode()
    return out + b"\x00"


def dns_query_bytes(qid, name, qtype="A"):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_name(name) + _u16(QTYPES[qtype]) + _u16(1)


def dns_rr(name_bytes, rtype, ttl, rdata, rdlength=None):
    return (name_bytes + struct.pack("!HHIH", rtype, 1, ttl, len(rdata) if rdlength is None else rdlength)
            + rdata)


def _read_name(msg, off, hops=0):
    labels = []
    jumped = False
    end = None
    seen = 0
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the end")
        ln = msg[off]
        if ln & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError("truncated pointer")
            seen += 1
            if seen > 32:
                raise ValueError("compression loop")
            ptr = ((ln & 0x3F) << 8) | msg[off + 1]
            if not jumped:
                end = off + 2
            jumped = True
            off = ptr
            continue
        if ln & 0xC0:
            raise ValueError("bad label type 0x%x" % ln)
        if ln == 0:
            if not jumped:
                end = off + 1
            return ".".join(labels), end
        labels.append(msg[off + 1:off + 1 + ln].decode("latin-1"))
        off += 1 + ln


def parse_dns(msg):
    """Strict parse: {"id", "flags", "rcode", "questions", "answers": [(name, type, ttl, value)]};
    raises ValueError on anything malformed."""
    if len(msg) < 12:
        raise ValueError("short header")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    qs = []
    for _ in range(qd):
        n, off = _read_name(msg, off)
        if off + 4 > len(msg):
            raise ValueError("truncated question")
        qs.append((n, struct.unpack("!H", msg[off:off + 2])[0]))
        off += 4
    ans = []
    for _ in range(an + ns + ar):
        n, off = _read_name(msg, off)
        if off + 10 > len(msg):
            raise ValueError("truncated RR header")
        t, _c, ttl, rdl = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if off + rdl > len(msg):
            raise ValueError("rdlength past the end")
        rd = msg[off:off + rdl]
        if t == 1 and rdl == 4:
            v = socket.inet_ntop(socket.AF_INET, rd)
        elif t == 28 and rdl == 16:
            v = socket.inet_ntop(socket.AF_INET6, rd)
        elif t == 5:
            v, _ = _read_name(msg, off)
        else:
            v = rd.hex()
        ans.append((n, QTYPE_NAMES.get(t, t), ttl, v))
        off += rdl
    return {"id": qid, "flags": flags, "rcode": flags & 0xF, "questions": qs, "answers": ans,
            "trailing": len(msg) - off}


# Malformed-DNS responder modes. The mode is the high byte of the query id:
# dns_query(..., qid=(mode << 8) | n). Every mode answers the question it was asked.
BADDNS_MODES = {
    "good": 0,              # qname A <answer ip>, well-formed
    "truncated": 1,         # ancount 2: valid A, then the second RR cut inside its fixed header
    "ptr_loop": 2,          # valid A, then an RR whose owner name is a pointer to itself
    "ptr_loop_first": 3,    # the first answer's owner name is a pointer loop
    "rdlength": 4,          # valid A, then an A RR with rdlength 0xffff (4 bytes present)
    "ancount": 5,           # ancount 0xffff, one RR present
    "remap_truncated": 6,   # internal.example.test A 10.214.0.4 with the rdata cut short
    "cname_loop": 7,        # qname CNAME qname (well-formed, logical loop), plus A
    "long_chain": 8,        # 40-deep CNAME chain then A (well-formed, deep)
    "bad_label": 9,         # owner name with a reserved label type (0x80)
    "ptr_forward": 10,      # owner name pointer pointing past the end of the message
    "unique": 11,           # qname A 10.214.1.<low byte of the id>: a never-seen address per query
}
UNIQUE_NET = "10.214.1."   # not routed in the app netns: an ungated connect fails with ENETUNREACH


def baddns_response(query, mode, answer_ip):
    qid = struct.unpack("!H", query[:2])[0]
    try:
        qname, qend = _read_name(query, 12)
    except ValueError:
        return None
    question = query[12:qend + 4]
    qtype = struct.unpack("!H", query[qend:qend + 2])[0]
    a = socket.inet_aton(answer_ip)
    ttl = 5
    ptr_q = b"\xc0\x0c"  # pointer to the question name
    flags = 0x8180

    def msg(an, body, ancount=None):
        return struct.pack("!HHHHHH", qid, flags, 1, an if ancount is None else ancount, 0, 0) + question + body

    good = dns_rr(ptr_q, 1, ttl, a)
    if mode == 0:
        if qtype == 28:
            return msg(0, b"")
        return msg(1, good)
    if mode == 1:
        second = dns_rr(ptr_q, 1, ttl, a)
        return msg(2, good + second[:5])
    if mode == 2:
        head = msg(2, good)
        self_off = len(head)
        loop = struct.pack("!H", 0xC000 | self_off)
        return head + dns_rr(loop, 1, ttl, a)
    if mode == 3:
        head = msg(1, b"")
        loop = struct.pack("!H", 0xC000 | len(head))
        return head + dns_rr(loop, 1, ttl, a)
    if mode == 4:
        return msg(2, good + dns_rr(ptr_q, 1, ttl, a, rdlength=0xffff))
    if mode == 5:
        return msg(1, good, ancount=0xffff)
    if mode == 6:
        rr = dns_rr(dns_name(INTERNAL), 1, ttl, socket.inet_aton(ANTHROPIC_IP))
        return msg(1, rr[:-2])
    if mode == 7:
        return msg(2, dns_rr(ptr_q, 5, ttl, ptr_q) + good)
    if mode == 8:
        body = b""
        prev = ptr_q
        for i in range(40):
            nm = dns_name("c%d.chain.test" % i)
            body += dns_rr(prev, 5, ttl, nm)
            prev = nm
        return msg(41, body + dns_rr(prev, 1, ttl, a))
    if mode == 9:
        return msg(1, dns_rr(b"\x80abc\x00", 1, ttl, a))
    if mode == 10:
        return msg(1, dns_rr(b"\xc3\xff", 1, ttl, a))
    if mode == 11:
        if qtype == 28:
            return msg(0, b"")
        return msg(1, dns_rr(ptr_q, 1, ttl, socket.inet_aton(UNIQUE_NET + str(qid & 0xff))))
    return None


# =========================================================================== process side

def _log_writer(path):
    f = open(path, "a", encoding="utf-8")
    lock = threading.Lock()

    def log(rec):
        rec.setdefault("t", time.time())
        line = json.dumps(rec, sort_keys=True) + "\n"
        with lock:
            f.write(line)
            f.flush()
    return log


def _addr_str(sa):
    return dst_str(sa[0], sa[1])


def serve_main(a):
    import ssl
    lw_set_comm("lwg-server")
    log = _log_writer(a.log)
    os.makedirs(a.log + ".d", exist_ok=True)
    with open(a.certs) as f:
        spec = json.load(f)

    def mkctx(cert, key):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(cert, key)
        c.set_alpn_protocols(["http/1.1"])
        return c

    ctxs = {n: mkctx(*v) for n, v in spec["names"].items()}
    base = mkctx(*spec["default"])
    tl = threading.local()

    def sni_cb(obj, name, _ctx):
        tl.sni = name
        tl.hello_seen = True  # OpenSSL parsed a ClientHello (name is None when it had no SNI)
        if name in ctxs:
            obj.context = ctxs[name]
        return None

    base.sni_callback = sni_cb
    counter = [0]
    clock = threading.Lock()

    def conn_thread(sock, peer, local, cid):
        tl.sni, tl.hello_seen = None, False
        st = {"raw_in": 0, "raw_head": b"", "handshake": False, "app_bytes": 0, "app_head": b"",
              "requests": 0, "error": None}
        common = {"conn": cid, "peer": peer, "local": local}
        log(dict(common, ev="open"))
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = base.wrap_bio(inc, out, server_side=True)
        sock.settimeout(30)

        def flush():
            d = out.read()
            if d:
                sock.sendall(d)

        def feed():
            d = sock.recv(65536)
            if not d:
                raise EOFError("eof")
            st["raw_in"] += len(d)
            if len(st["raw_head"]) < 64:
                st["raw_head"] += d[:64 - len(st["raw_head"])]
            inc.write(d)

        dump = os.path.join(a.log + ".d", "conn-%d.bin" % cid)

        def read_plain():
            while True:
                try:
                    d = tls.read(65536)
                    if d:
                        # every plaintext byte the provider received, for the
                        # content-blocking tests (bounded per connection)
                        if st["app_bytes"] < (8 << 20):
                            with open(dump, "ab") as df:
                                df.write(d)
                        st["app_bytes"] += len(d)
                        if len(st["app_head"]) < 512:
                            st["app_head"] += d[:512 - len(st["app_head"])]
                    return d
                except ssl.SSLWantReadError:
                    flush()
                    feed()
                except ssl.SSLZeroReturnError:
                    return b""

        def write_plain(b):
            tls.write(b)
            flush()

        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    flush()
                    feed()
            flush()
            st["handshake"] = True
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    d = read_plain()
                    if not d:
                        raise EOFError("eof between requests" if not buf else "eof in headers")
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = (lines[0].split(" ") + ["", ""])[:2]
                hdrs = {}
                for l in lines[1:]:
                    k, _, v = l.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                body = b""
                if "chunked" in hdrs.get("transfer-encoding", "").lower():
                    while True:
                        while b"\r\n" not in buf:
                            d = read_plain()
                            if not d:
                                raise EOFError("eof in chunk")
                            buf += d
                        sz, _, buf = buf.partition(b"\r\n")
                        n = int(sz.split(b";")[0].strip() or b"0", 16)
                        while len(buf) < n + 2:
                            d = read_plain()
                            if not d:
                                raise EOFError("eof in chunk")
                            buf += d
                        body += buf[:n]
                        buf = buf[n + 2:]
                        if n == 0:
                            break
                else:
                    n = int(hdrs.get("content-length") or 0)
                    while len(buf) < n:
                        d = read_plain()
                        if not d:
                            raise EOFError("eof in body")
                        buf += d
                    body, buf = buf[:n], buf[n:]
                st["requests"] += 1
                rid = hdrs.get(lwcommon.H_REQ_ID.lower(), "")
                log(dict(common, ev="request", sni=tl.sni, method=method, path=path, host=hdrs.get("host"),
                         req_id=rid, len=len(body), sha256=lwcommon.sha256(body)))
                size = int(hdrs.get(lwcommon.H_RESP_SIZE.lower()) or 64)
                if path.rstrip("/").endswith("/chat/completions"):
                    content = lwcommon.resp_body(rid or "sdk", size).decode()
                    resp = json.dumps(lwcommon.chat_completion(content)).encode()
                    ctype = "application/json"
                else:
                    resp = lwcommon.resp_body(rid or "x", size)
                    ctype = "text/plain"
                close = hdrs.get("connection", "").lower() == "close"
                write_plain(("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
                             % (ctype, len(resp), "Connection: close\r\n" if close else "")).encode() + resp)
                if close:
                    break
        except EOFError as e:
            st["error"] = str(e)
        except (OSError, ssl.SSLError, ValueError) as e:
            st["error"] = "%s: %s" % (type(e).__name__, e)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            log(dict(common, ev="close", sni=tl.sni, hello_seen=tl.hello_seen, raw_in=st["raw_in"],
                     raw_head=st["raw_head"].hex(), handshake=st["handshake"], app_bytes=st["app_bytes"],
                     app_head=st["app_head"].decode("latin-1"), requests=st["requests"], error=st["error"]))

    def tcp_loop(ls, local):
        while True:
            try:
                s, peer = ls.accept()
            except OSError:
                continue
            with clock:
                counter[0] += 1
                cid = counter[0]
            threading.Thread(target=conn_thread, args=(s, _addr_str(peer), local, cid), daemon=True).start()

    def udp_loop(us, local):
        while True:
            try:
                d, peer = us.recvfrom(65536)
            except OSError:
                continue
            log({"ev": "udp", "peer": _addr_str(peer), "local": local, "len": len(d),
                 "data": d[:256].decode("latin-1")})

    threads = []
    for addr in a.addr:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((addr, a.port))
        ls.listen(128)
        us = socket.socket(fam, socket.SOCK_DGRAM)
        us.bind((addr, a.port))
        local = dst_str(addr, a.port)
        threads.append(threading.Thread(target=tcp_loop, args=(ls, local), daemon=True))
        threads.append(threading.Thread(target=udp_loop, args=(us, local), daemon=True))
    for t in threads:
        t.start()
    print("listening %s port %d" % (",".join(a.addr), a.port), flush=True)
    while True:
        time.sleep(3600)


def baddns_main(a):
    lw_set_comm("lwg-baddns")
    log = _log_writer(a.log)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.addr, 53))
    print("listening %s:53" % a.addr, flush=True)
    while True:
        q, peer = s.recvfrom(4096)
        if len(q) < 12:
            continue
        mode = q[0]
        resp = baddns_response(q, mode, a.answer)
        log({"ev": "dns", "peer": _addr_str(peer), "mode": mode, "len": len(resp) if resp else 0})
        if resp:
            s.sendto(resp, peer)


def lw_set_comm(name):
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except Exception:  # noqa
        pass


# --------------------------------------------------------------------------- python clients

def _errno_of(e):
    """errno name of an exception (walking reason/__cause__/__context__), else None."""
    seen = 0
    while e is not None and seen < 8:
        seen += 1
        n = getattr(e, "errno", None)
        import ssl
        if isinstance(n, int) and n > 0 and not isinstance(e, ssl.SSLError) and n in errno_mod.errorcode:
            return errno_mod.errorcode[n]
        nxt = getattr(e, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = e.__cause__ or e.__context__
        e = nxt
    return None


def client_main(a):
    import ssl
    t0 = time.monotonic()
    res = {"ok": False, "mode": a.mode, "marker": a.marker, "phase": "start"}

    def done():
        res["elapsed"] = round(time.monotonic() - t0, 4)
        print(json.dumps(res), flush=True)
        return 0 if res["ok"] else 1

    def cactx(check_host=True):
        c = ssl.create_default_context(cafile=a.cafile)
        if not check_host:
            c.check_hostname = False
        return c

    def http_req(host):
        body = ("body of " + a.marker).encode()
        return (("POST /v1/lwt/%s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n%s: 64\r\nContent-Type: text/plain\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n")
                % (a.marker, host, lwcommon.H_REQ_ID, a.marker, lwcommon.H_RESP_SIZE, len(body))).encode() + body

    def fam(ip):
        return socket.AF_INET6 if ":" in ip else socket.AF_INET

    try:
        if a.mode in ("urllib", "httpclient"):
            body = ("body of " + a.marker).encode()
            hdrs = {lwcommon.H_REQ_ID: a.marker, lwcommon.H_RESP_SIZE: "64", "Content-Type": "text/plain"}
            res["phase"] = "request"
            if a.mode == "urllib":
                import urllib.request
                req = urllib.request.Request("https://%s/v1/lwt/%s" % (a.host, a.marker), data=body,
                                             headers=hdrs, method="POST")
                with urllib.request.urlopen(req, context=cactx(), timeout=a.timeout) as r:
                    data = r.read()
                    res.update(status=r.status, resp_len=len(data))
            else:
                import http.client
                c = http.client.HTTPSConnection(a.host, 443, context=cactx(), timeout=a.timeout)
                res["phase"] = "connect"
                c.connect()
                res["phase"] = "request"
                c.request("POST", "/v1/lwt/" + a.marker, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                res.update(status=r.status, resp_len=len(data), peer=_addr_str(c.sock.getpeername()))
            res["ok"] = res.get("status") == 200
        elif a.mode == "nosni":
            s = socket.socket(fam(a.ip), socket.SOCK_STREAM)
            s.settimeout(a.timeout)
            res["phase"] = "connect"
            s.connect((a.ip, a.port))
            res["phase"] = "handshake"
            tls = cactx(check_host=False).wrap_socket(s, server_hostname=None)
            sans = [v for k, v in tls.getpeercert().get("subjectAltName", ()) if k == "IP Address"]
            res["cert_ip_sans"] = sans
            res["phase"] = "write"
            tls.sendall(http_req(a.ip))
            res["phase"] = "read"
            data = b""
            while True:
                d = tls.recv(65536)
                if not d:
                    break
                data += d
            res["status_line"] = data.split(b"\r\n", 1)[0].decode("latin-1")
            res["ok"] = res["status_line"].startswith("HTTP/1.1 200")
        elif a.mode == "udp":
            s = socket.socket(fam(a.ip), socket.SOCK_DGRAM)
            payload = bytes([0xC3, 0, 0, 0, 1]) + ("quic-like datagram " + a.marker).encode() + b"\0" * 1100
            res["phase"] = "sendto"
            s.sendto(payload, (a.ip, a.port))
            res["phase"] = "connect"
            s.connect((a.ip, a.port))
            res["phase"] = "send"
            s.send(payload)
            res["ok"] = True
        elif a.mode == "gai":
            res["phase"] = "getaddrinfo"
            res["addrs"] = [ai[4][0] for ai in socket.getaddrinfo(a.host, a.port or None, type=socket.SOCK_STREAM)]
            res["ok"] = True
        elif a.mode == "tcp":
            s = socket.socket(fam(a.ip), socket.SOCK_STREAM)
            s.settimeout(a.timeout)
            res["phase"] = "connect"
            s.connect((a.ip, a.port))
            res["ok"] = True
        elif a.mode == "hello":
            res.update(_hello_client(a, cactx(), http_req, fam, res))
        elif a.mode == "raw":
            res["conns"] = []
            for path in a.data_file:
                one = _raw_conn(a, path, fam)
                res["conns"].append(one)
                if one.get("error") and "error" not in res:
                    res.update(error=one["error"], errno=one.get("errno"))
                res["phase"] = one["phase"]
            if len(res["conns"]) == 1:
                res.update({k: v for k, v in res["conns"][0].items()})
            res["ok"] = "error" not in res
        elif a.mode == "dnsq":
            s = socket.socket(fam(a.server), socket.SOCK_DGRAM)
            s.settimeout(a.timeout)
            res["responses"] = []
            for qid in [int(x, 0) for x in str(a.qid).split(",")]:
                one = {"qid": qid}
                res["phase"] = "send"
                s.sendto(dns_query_bytes(qid, a.name, a.qtype), (a.server, 53))
                res["phase"] = "recv"
                d, _ = s.recvfrom(65536)
                one["response_hex"] = d.hex()
                one["response_len"] = len(d)
                try:
                    one["parsed"] = parse_dns(d)
                except ValueError as e:
                    one["parse_error"] = str(e)
                if a.connect and "parsed" in one:
                    # connect at once to every address in the answer (TCP/443, no data)
                    one["connects"] = []
                    for _n, t, _ttl, v in one["parsed"]["answers"]:
                        if t not in ("A", "AAAA"):
                            continue
                        c = socket.socket(fam(v), socket.SOCK_STREAM)
                        c.settimeout(1)
                        try:
                            c.connect((v, 443))
                            one["connects"].append([v, "ok"])
                        except Exception as e:  # noqa
                            one["connects"].append([v, _errno_of(e) or type(e).__name__])
                        finally:
                            c.close()
                res["responses"].append(one)
            res.update({k: v for k, v in res["responses"][0].items() if k != "qid"})
            res["ok"] = True
        else:
            res["error"] = "unknown mode %r" % a.mode
            return done()
    except Exception as e:  # noqa
        res["error"] = "%s: %s" % (type(e).__name__, e)
        res["errno"] = _errno_of(e)
    return done()


def _raw_conn(a, path, fam):
    """One TCP connection: send the file's bytes (in pieces at --splits), read until EOF/timeout."""
    with open(path, "rb") as f:
        data = f.read()
    cuts = [int(x) for x in a.splits.split(",")] if a.splits else []
    pieces = [data[i:j] for i, j in zip([0] + cuts, cuts + [len(data)]) if j > i]
    one = {"file": os.path.basename(path), "len": len(data), "phase": "connect", "writes": []}
    s = socket.socket(fam(a.ip), socket.SOCK_STREAM)
    try:
        s.settimeout(a.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect((a.ip, a.port))
        one["src"] = _addr_str(s.getsockname())  # the server's "peer" of this connection
        for k, p in enumerate(pieces):
            one["phase"] = "write%d" % k
            one["writes"].append(s.send(p))
            if k + 1 < len(pieces):
                time.sleep(0.05)
        one["phase"] = "read"
        s.settimeout(a.read_timeout)
        got = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except socket.timeout:
            one["read_timeout"] = True
        except ConnectionResetError:
            one["reset"] = True
        one["received"] = len(got)
        one["received_head"] = got[:16].hex()
    except Exception as e:  # noqa
        one["error"] = "%s: %s" % (type(e).__name__, e)
        one["errno"] = _errno_of(e)
    finally:
        s.close()
    return one


def _hello_client(a, ctx, http_req, fam, res):
    import ssl
    out = {}
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_side=False, server_hostname=a.sni)
    s = socket.socket(fam(a.ip), socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    res["phase"] = "connect"
    s.connect((a.ip, a.port))
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    ch = outb.read()
    out["hello_len"] = len(ch)
    if a.records > 1:
        ch = reframe(ch, a.records)
    n = max(1, a.writes)
    step = (len(ch) + n - 1) // n
    out["writes"] = []
    for k in range(0, len(ch), step):
        res["phase"] = "hello-write%d" % (k // step)
        s.sendall(ch[k:k + step])
        out["writes"].append(len(ch[k:k + step]))
        if k + step < len(ch):
            time.sleep(0.05)
    res["phase"] = "handshake"
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            d = outb.read()
            if d:
                s.sendall(d)
            d = s.recv(65536)
            if not d:
                raise EOFError("server closed during handshake")
            inc.write(d)
    d = outb.read()
    if d:
        s.sendall(d)
    res["phase"] = "write"
    obj.write(http_req(a.sni))
    s.sendall(outb.read())
    res["phase"] = "read"
    data = b""
    while True:
        try:
            d = obj.read(65536)
            if not d:
                break
            data += d
        except ssl.SSLWantReadError:
            r = s.recv(65536)
            if not r:
                break
            inc.write(r)
        except ssl.SSLZeroReturnError:
            break
    out["status_line"] = data.split(b"\r\n", 1)[0].decode("latin-1")
    out["ok"] = out["status_line"].startswith("HTTP/1.1 200")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--certs", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--addr", action="append", required=True)
    s.add_argument("--port", type=int, default=443)
    b = sub.add_parser("baddns")
    b.add_argument("--addr", required=True)
    b.add_argument("--answer", default=HIDDEN_IP)
    b.add_argument("--log", required=True)
    c = sub.add_parser("client")
    c.add_argument("mode")
    c.add_argument("--marker", required=True)
    c.add_argument("--cafile")
    c.add_argument("--timeout", type=float, default=20)
    c.add_argument("--read-timeout", type=float, default=2)
    c.add_argument("--host")
    c.add_argument("--ip")
    c.add_argument("--port", type=int, default=443)
    c.add_argument("--sni")
    c.add_argument("--writes", type=int, default=1)
    c.add_argument("--records", type=int, default=1)
    c.add_argument("--data-file", action="append")
    c.add_argument("--splits")
    c.add_argument("--server")
    c.add_argument("--name")
    c.add_argument("--qtype", default="A")
    c.add_argument("--qid", default="4660", help="query id(s), comma-separated")
    c.add_argument("--connect", action="store_true", help="dnsq: connect to each answered address at once")
    a = ap.parse_args(argv)
    if a.cmd == "serve":
        return serve_main(a)
    if a.cmd == "baddns":
        return baddns_main(a)
    return client_main(a)


if __name__ == "__main__":
    sys.exit(main())
