"""leakwatch real-kernel integration test harness (Python 3 stdlib only).

Pieces:
  - @test(timeout=...) registration and main() runner: "PASS name (1.2s)" / "FAIL name: reason",
    last line "N passed, N failed", exit 1 if anything failed.
  - Ctx: per-test context; everything it creates (processes, netns, veth, /etc/netns/<name>,
    temp dirs) is registered for cleanup, which runs in a finally block, from atexit, and on
    SIGINT/SIGTERM/SIGHUP.
  - certs(): test CA + leaf (api.openai.com, api.anthropic.com, generativelanguage.googleapis.com,
    localhost, 127.0.0.1) made with the openssl CLI.
  - Net: provider + app network namespaces joined by a veth pair (10.213.0.1 app, 10.213.0.2
    provider), /etc/netns/<app>/hosts mapping the provider names, and the TLS test server
    (lwserver.py) on provider:443.
  - Agent: build/leakwatch trace --format json ...; waits for "ready", collects JSON lines,
    stops with SIGINT and parses "stats: {...}".
  - Analysis: decode events, per-connection streams, HTTP/1.1 request/response parsing,
    event invariants.
"""
import atexit
import base64
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("LEAKWATCH_BIN") or os.path.join(REPO, "build", "leakwatch")
NODE_DIR = os.path.join(REPO, "tests", "node")
CLIENTS = os.path.join(HERE, "clients")
PYCLIENT = os.path.join(CLIENTS, "pyclient.py")
SERVER = os.path.join(HERE, "lwserver.py")
PY = sys.executable or "python3"

sys.path.insert(0, HERE)
import lwcommon  # noqa: E402

APP_IP = "10.213.0.1"
PROV_IP = "10.213.0.2"
PROV_DST = PROV_IP + ":443"
PROVIDER_NAMES = ["api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com"]
SNI = "api.openai.com"

KiB = 1024


# --------------------------------------------------------------------------- errors

class TestFailure(AssertionError):
    pass


class TestTimeout(Exception):
    pass


class Interrupted(BaseException):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


# --------------------------------------------------------------------------- registry

_TESTS = []


def test(timeout=120, name=None):
    def deco(fn):
        _TESTS.append((name or fn.__name__, fn, timeout))
        return fn
    return deco


# --------------------------------------------------------------------------- cleanup

_cleanups = []  # stack of (description, fn)
_cleanup_lock = threading.RLock()


def add_cleanup(fn, desc=""):
    with _cleanup_lock:
        _cleanups.append((desc, fn))
        return len(_cleanups)


def run_cleanups(down_to=0):
    """Run registered cleanups (LIFO) until only `down_to` remain. Never raises."""
    errs = []
    while True:
        with _cleanup_lock:
            if len(_cleanups) <= down_to:
                break
            desc, fn = _cleanups.pop()
        try:
            fn()
        except BaseException as e:  # noqa
            errs.append("cleanup %s: %r" % (desc, e))
    return errs


_session_cleanups = []  # run once at the end of the whole run (shared CA)


def run_session_cleanups():
    while _session_cleanups:
        try:
            _session_cleanups.pop()()
        except Exception:  # noqa
            pass


atexit.register(run_session_cleanups)
atexit.register(run_cleanups)


def _sh(argv, check_rc=True, timeout=30, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s -> rc %d: %s" % (" ".join(argv), p.returncode,
                                                 p.stderr.decode(errors="replace").strip()))
    return p


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- processes

class Proc:
    """A child process in its own session (process group == pid); stdout/stderr collected by threads."""

    def __init__(self, argv, netns=None, env=None, stdin=None, cwd=None, name=None):
        self.argv = list(argv)
        full = (["ip", "netns", "exec", netns] if netns else []) + self.argv
        e = dict(os.environ)
        if env:
            e.update(env)
        self.name = name or os.path.basename(self.argv[0])
        self.out_lines = []
        self.err_lines = []
        self._cv = threading.Condition()
        self.p = subprocess.Popen(full, stdin=subprocess.PIPE if stdin == "pipe" else (stdin or subprocess.DEVNULL),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=cwd,
                                  start_new_session=True)
        self.pid = self.p.pid  # `ip netns exec` execs in place: this is the client's pid
        add_cleanup(self.kill, "proc %d %s" % (self.pid, self.name))
        self._threads = [threading.Thread(target=self._reader, args=(self.p.stdout, self.out_lines), daemon=True),
                         threading.Thread(target=self._reader, args=(self.p.stderr, self.err_lines), daemon=True)]
        for t in self._threads:
            t.start()

    def _reader(self, f, dest):
        for raw in iter(f.readline, b""):
            with self._cv:
                dest.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def send(self, text):
        self.p.stdin.write(text.encode() if isinstance(text, str) else text)
        self.p.stdin.flush()

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except (OSError, AttributeError):
            pass

    def wait_line(self, pred, timeout=30, stream="out"):
        dest = self.out_lines if stream == "out" else self.err_lines
        deadline = time.monotonic() + timeout
        with self._cv:
            i = 0
            while True:
                while i < len(dest):
                    if pred(dest[i]):
                        return dest[i]
                    i += 1
                if self.p.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise TestFailure("%s exited (rc %s) before printing the expected line; stderr: %s"
                                      % (self.name, self.p.returncode, self.stderr_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("%s: expected line not printed within %ss; stdout: %s; stderr: %s"
                                      % (self.name, timeout, self.out_lines[-5:], self.stderr_tail()))
                self._cv.wait(min(left, 0.2))

    def wait(self, timeout=60):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s (pid %d) did not finish within %ss; stderr: %s"
                              % (self.name, self.pid, timeout, self.stderr_tail()))
        for t in self._threads:
            t.join(5)
        return rc

    def wait_ok(self, timeout=60):
        rc = self.wait(timeout)
        if rc != 0:
            raise TestFailure("%s (pid %d) exited %d; stderr: %s; stdout: %s"
                              % (self.name, self.pid, rc, self.stderr_tail(), self.out_lines[-3:]))
        return self

    def json_out(self):
        """Last JSON object printed on stdout."""
        for line in reversed(self.out_lines):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        raise TestFailure("%s printed no JSON result; stdout: %s stderr: %s"
                          % (self.name, self.out_lines[-5:], self.stderr_tail()))

    def stderr_tail(self, n=8):
        return " | ".join(self.err_lines[-n:])

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            if sig == signal.SIGKILL:
                _kill_group(self.pid)
            else:
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
        if sig == signal.SIGKILL:
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(self.pid)  # leftovers in the group (children of a shell)


# --------------------------------------------------------------------------- certificates

_certs = None


def certs():
    """Test CA and leaf certificate (made once per run); dict of file paths."""
    global _certs
    if _certs:
        return _certs
    d = tempfile.mkdtemp(prefix="lwt-pki-")
    _session_cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    j = lambda n: os.path.join(d, n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _sh(["openssl", "req", "-x509"] + ec + ["-keyout", j("ca.key"), "-out", j("ca.pem"), "-days", "3",
         "-subj", "/CN=leakwatch integration test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    _sh(["openssl", "req", "-new"] + ec + ["-keyout", j("leaf.key"), "-out", j("leaf.csr"),
         "-subj", "/CN=api.openai.com"])
    sans = ",".join(["DNS:" + n for n in PROVIDER_NAMES] + ["DNS:localhost", "IP:127.0.0.1"])
    with open(j("leaf.ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n" % sans)
    _sh(["openssl", "x509", "-req", "-in", j("leaf.csr"), "-CA", j("ca.pem"), "-CAkey", j("ca.key"),
         "-CAcreateserial", "-out", j("leaf.pem"), "-days", "3", "-extfile", j("leaf.ext")])
    _certs = {"dir": d, "ca": j("ca.pem"), "cert": j("leaf.pem"), "key": j("leaf.key")}
    return _certs


# --------------------------------------------------------------------------- network

def cleanup_stale():
    """Remove lwt-* namespaces left by an earlier run whose runner is gone."""
    try:
        names = os.listdir("/var/run/netns")
    except OSError:
        names = []
    for n in names:
        m = re.match(r"^lwt-(prov|app)-(\d+)$", n)
        if m and not os.path.exists("/proc/" + m.group(2)):
            _del_netns(n)
    try:
        for n in os.listdir("/etc/netns"):
            m = re.match(r"^lwt-(prov|app)-(\d+)$", n)
            if m and not os.path.exists("/proc/" + m.group(2)):
                shutil.rmtree(os.path.join("/etc/netns", n), ignore_errors=True)
    except OSError:
        pass


def _del_netns(name):
    # kill what still runs inside it (only our own test processes live there)
    p = _sh(["ip", "netns", "pids", name], check_rc=False)
    for pid in p.stdout.decode().split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _sh(["ip", "netns", "del", name], check_rc=False)


class Net:
    """provider netns + app netns + veth + hosts file + TLS test server."""

    def __init__(self, ctx):
        self.ctx = ctx
        tag = str(os.getpid())
        self.prov = "lwt-prov-" + tag
        self.app = "lwt-app-" + tag
        self.veth_app = "lwa" + tag
        self.veth_prov = "lwp" + tag
        self.certs = certs()
        self.dir = ctx.tmpdir()
        self.log_path = os.path.join(self.dir, "server.log")
        self.server = None
        self._setup()

    def _setup(self):
        for ns in (self.prov, self.app):
            if os.path.exists("/var/run/netns/" + ns):
                _del_netns(ns)
            _sh(["ip", "netns", "add", ns])
            add_cleanup(lambda ns=ns: _del_netns(ns), "netns " + ns)
        etc = "/etc/netns/" + self.app
        if not os.path.isdir("/etc/netns"):
            os.makedirs("/etc/netns")
            add_cleanup(lambda: os.path.isdir("/etc/netns") and not os.listdir("/etc/netns")
                        and os.rmdir("/etc/netns"), "rmdir /etc/netns")
        os.makedirs(etc, exist_ok=True)
        add_cleanup(lambda: shutil.rmtree(etc, ignore_errors=True), "rm " + etc)
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n%s %s\n" % (PROV_IP, " ".join(PROVIDER_NAMES)))
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        # veth created directly inside the two namespaces; deleting a netns deletes its end.
        add_cleanup(lambda: _sh(["ip", "link", "del", self.veth_app], check_rc=False), "veth")
        _sh(["ip", "link", "add", self.veth_app, "netns", self.app, "type", "veth",
             "peer", "name", self.veth_prov, "netns", self.prov])
        for ns, dev, ip in ((self.app, self.veth_app, APP_IP), (self.prov, self.veth_prov, PROV_IP)):
            _sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            _sh(["ip", "-n", ns, "addr", "add", ip + "/30", "dev", dev])
            _sh(["ip", "-n", ns, "link", "set", dev, "up"])
        self.start_server()

    def start_server(self):
        self.server = Proc([PY, SERVER, "--cert", self.certs["cert"], "--key", self.certs["key"],
                            "--log", self.log_path], netns=self.prov, name="lwserver")
        self.server.wait_line(lambda l: l.startswith("listening"), timeout=20)

    def server_alive(self):
        return self.server is not None and self.server.alive()

    def server_log(self):
        try:
            with open(self.log_path, encoding="utf-8") as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def server_rec(self, req_id, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.server_log() if r.get("req_id") == req_id]
            if recs:
                return recs[-1]
            if time.monotonic() > deadline:
                fail("test server has no record of request %r (server alive: %s, stderr: %s)"
                     % (req_id, self.server_alive(), self.server.stderr_tail()))
            time.sleep(0.1)

    def spawn(self, argv, **kw):
        """Run a client inside the app namespace (hosts file resolves the provider names)."""
        return self.ctx.spawn(argv, netns=self.app, **kw)


# --------------------------------------------------------------------------- agent

READY_RE = re.compile(r"\bready\b")


class Agent:
    def __init__(self, ctx, args=(), ready_timeout=30, cmd=("trace", "--format", "json")):
        if not os.path.exists(BIN):
            fail("%s does not exist (build it with `make`)" % BIN)
        self.ctx = ctx
        cmd = list(cmd)
        if cmd and cmd[0] == "run" and "--state-dir" not in cmd and "--state-dir" not in args:
            # the agent's state (fingerprint key, alert store) in the test's own directory,
            # never the host's /var/lib/leakwatch
            cmd[1:1] = ["--state-dir", os.path.join(ctx.tmpdir(), "state")]
        self.state_dir = cmd[2] if cmd[:2] == ["run", "--state-dir"] else None
        if "--state-dir" in args:
            self.state_dir = list(args)[list(args).index("--state-dir") + 1]
        self.argv = [BIN] + cmd + list(args)
        self.events = []
        self.bad_lines = []
        self.err_lines = []
        self.stats = None
        self.rc = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.t_start = time.monotonic()
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.pid = self.p.pid
        add_cleanup(self._kill, "agent %d" % self.pid)
        self._rt = [threading.Thread(target=self._read_out, daemon=True),
                    threading.Thread(target=self._read_err, daemon=True)]
        for t in self._rt:
            t.start()
        ctx.agents.append(self)
        self.wait_ready(ready_timeout)

    def _read_out(self):
        for raw in iter(self.p.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
                if not isinstance(ev, dict):
                    raise ValueError("not an object")
            except ValueError:
                with self._lock:
                    self.bad_lines.append(line[:300])
                continue
            with self._lock:
                self.events.append(ev)

    def _read_err(self):
        for raw in iter(self.p.stderr.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lock:
                self.err_lines.append(line)
            if READY_RE.search(line):
                self._ready.set()
            if line.startswith("stats:") or "stats: {" in line:
                try:
                    self.stats = json.loads(line[line.index("{"):])
                except ValueError:
                    self.stats = {"_unparsable": line}

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.p.poll() is not None:
                time.sleep(0.2)
                fail("agent exited with rc %s before ready; stderr: %s" % (self.p.returncode, self.stderr_tail()))
            if time.monotonic() > deadline:
                fail("agent not ready within %ss; stderr: %s" % (timeout, self.stderr_tail()))
        self.ready_after = time.monotonic() - self.t_start

    def alive(self):
        return self.p.poll() is None

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def stderr_tail(self, n=10):
        with self._lock:
            return " | ".join(self.err_lines[-n:])

    def wait_for(self, pred, timeout=15, what="condition"):
        """Poll pred(events) until it returns a truthy value; returns it (None on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            evs = self.snapshot()
            try:
                r = pred(evs)
            except TestFailure:
                r = None
            if r:
                return r
            if time.monotonic() > deadline or not self.alive():
                return None
            time.sleep(0.25)

    def stop(self, timeout=30):
        """SIGINT, wait, parse stats. Returns (rc, stats)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            self.rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            fail("agent did not exit within %ss of SIGINT; stderr: %s" % (timeout, self.stderr_tail()))
        for t in self._rt:
            t.join(10)
        return self.rc, self.stats

    def stop_ok(self, timeout=30):
        """Stop and assert a clean exit with a sane stats line; returns stats."""
        rc, stats = self.stop(timeout)
        check(rc == 0, "agent exited %s after SIGINT (expected 0); stderr: %s" % (rc, self.stderr_tail()))
        check(isinstance(stats, dict) and "_unparsable" not in stats,
              "agent printed no parsable `stats: {...}` line on exit; stderr: %s" % self.stderr_tail())
        problems = stats_problems(stats, self.events)
        check(not problems, "inconsistent stats: %s; stats=%s" % ("; ".join(problems), stats))
        check(not self.bad_lines, "agent printed %d non-JSON stdout lines, first: %r"
              % (len(self.bad_lines), self.bad_lines[:1]))
        return stats

    def _kill(self):
        if self.p.poll() is None:
            _kill_group(self.pid)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                pass


STATS_KEYS = ["messages", "bytes", "chunks", "ringbuf_dropped_chunks", "ringbuf_dropped_bytes",
              "truncated_messages", "truncated_bytes", "copy_faults", "incomplete_messages"]


def stats_problems(stats, events):
    p = []
    for k in STATS_KEYS:
        if k not in stats:
            p.append("missing counter %r" % k)
    for k, v in stats.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, str, dict, list, type(None))):
            p.append("%s has odd type %r" % (k, v))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if v < 0 or v >= 2 ** 53:
                p.append("%s=%r out of range" % (k, v))
    g = lambda k: stats.get(k) if isinstance(stats.get(k), int) else 0  # noqa: E731
    if g("truncated_messages") > g("messages"):
        p.append("truncated_messages > messages")
    if g("ringbuf_dropped_bytes") > g("bytes"):
        p.append("ringbuf_dropped_bytes > bytes")
    if g("truncated_bytes") > g("bytes"):
        p.append("truncated_bytes > bytes")
    if events:
        if g("messages") < len(events):
            p.append("stats messages=%d < %d messages printed" % (g("messages"), len(events)))
        tot = sum(e.get("len", 0) for e in events if isinstance(e.get("len"), int))
        if g("bytes") < tot:
            p.append("stats bytes=%d < %d bytes in printed messages" % (g("bytes"), tot))
        ntr = sum(1 for e in events if e.get("truncated") is True)
        if ntr and g("truncated_messages") + g("ringbuf_dropped_chunks") + g("incomplete_messages") == 0:
            p.append("%d printed messages are truncated but no counter accounts for it" % ntr)
    return p


# --------------------------------------------------------------------------- event analysis

ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
FIELD_TYPES = {"ts": str, "pid": int, "tid": int, "comm": str, "exe": str, "service": str, "lib": str,
               "func": str, "dir": str, "conn": int, "seq": int, "fd": int, "dst": str, "src": str,
               "sni": str, "len": int, "captured": int, "truncated": bool, "lost": int, "encoding": str,
               "data": str}
FUNCS = {"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex"}


def decode(ev):
    """Captured bytes of one event."""
    d = ev.get("data", "")
    if ev.get("encoding") == "base64":
        return base64.b64decode(d)
    return d.encode("utf-8")


def event_problems(ev):
    """Schema/invariant violations of one event (list of strings)."""
    p = []
    for k, t in FIELD_TYPES.items():
        if k not in ev:
            p.append("missing field %r" % k)
        elif t is int and (isinstance(ev[k], bool) or not isinstance(ev[k], int)):
            p.append("%s is not an integer: %r" % (k, ev[k]))
        elif t is not int and not isinstance(ev[k], t):
            p.append("%s has type %s" % (k, type(ev[k]).__name__))
    if "cgroup" not in ev:
        p.append("missing field 'cgroup'")
    if p:
        return p
    if not ISO_RE.match(ev["ts"]):
        p.append("ts not ISO-8601: %r" % ev["ts"])
    if ev["func"] not in FUNCS:
        p.append("unknown func %r" % ev["func"])
    if ev["dir"] not in ("egress", "ingress"):
        p.append("bad dir %r" % ev["dir"])
    elif ev["func"].startswith("SSL_write") != (ev["dir"] == "egress"):
        p.append("func %s with dir %s" % (ev["func"], ev["dir"]))
    if ev["encoding"] not in ("utf8", "base64"):
        p.append("bad encoding %r" % ev["encoding"])
    try:
        data = decode(ev)
    except Exception as e:  # noqa
        p.append("data does not decode: %r" % e)
        return p
    if ev["encoding"] == "base64":
        try:
            data.decode("utf-8")
            # valid UTF-8 sent as base64 is allowed but odd; not an error
        except UnicodeDecodeError:
            pass
    if len(data) != ev["captured"]:
        p.append("captured=%d but data holds %d bytes" % (ev["captured"], len(data)))
    if not (0 <= ev["captured"] <= ev["len"]):
        p.append("captured=%d len=%d" % (ev["captured"], ev["len"]))
    if ev["len"] <= 0:
        p.append("len=%d (messages that moved no bytes must not be reported)" % ev["len"])
    if ev["truncated"] != (ev["len"] > ev["captured"]):
        p.append("truncated=%s with len=%d captured=%d" % (ev["truncated"], ev["len"], ev["captured"]))
    if ev["lost"] < 0 or ev["lost"] > ev["len"] - ev["captured"]:
        p.append("lost=%d with len=%d captured=%d" % (ev["lost"], ev["len"], ev["captured"]))
    if ev["seq"] < 0 or ev["pid"] <= 0 or ev["tid"] <= 0:
        p.append("negative/zero seq/pid/tid")
    return p


def check_events(events, pids=None):
    """Every event well-formed; no duplicate (conn, dir, seq). pids: restrict to these pids."""
    seen = {}
    bad = []
    for ev in events:
        if pids is not None and ev.get("pid") not in pids:
            continue
        for prob in event_problems(ev):
            bad.append("pid %s conn %s seq %s: %s" % (ev.get("pid"), ev.get("conn"), ev.get("seq"), prob))
        key = (ev.get("conn"), ev.get("dir"), ev.get("seq"))
        if key in seen:
            bad.append("duplicate message conn=%s dir=%s seq=%s" % key)
        seen[key] = True
    check(not bad, "%d malformed events, e.g. %s" % (len(bad), bad[:3]))


class Conn:
    """All messages of one TLS connection (agent conn id)."""

    def __init__(self, conn_id, evs):
        self.id = conn_id
        self.events = evs
        self.egress_ev = sorted([e for e in evs if e.get("dir") == "egress"], key=lambda e: e.get("seq", 0))
        self.ingress_ev = sorted([e for e in evs if e.get("dir") == "ingress"], key=lambda e: e.get("seq", 0))
        self.egress = b"".join(decode(e) for e in self.egress_ev)
        self.ingress = b"".join(decode(e) for e in self.ingress_ev)
        self.pids = {e.get("pid") for e in evs}

    def field(self, k):
        return {e.get(k) for e in self.events}

    def seq_problems(self):
        p = []
        for name, lst in (("egress", self.egress_ev), ("ingress", self.ingress_ev)):
            seqs = [e.get("seq") for e in lst]
            if seqs and seqs != list(range(len(seqs))):
                missing = sorted(set(range(max(seqs) + 1)) - set(seqs))
                p.append("%s seqs not 0..%d (missing %s, first %s)" % (name, len(seqs) - 1, missing[:5], seqs[:5]))
            tr = [e.get("seq") for e in lst if e.get("truncated")]
            if tr:
                p.append("%s messages truncated: seq %s" % (name, tr[:5]))
        return p

    def describe(self):
        return ("conn %s pids=%s comm=%s dst=%s sni=%s egress=%d msgs/%dB ingress=%d msgs/%dB"
                % (self.id, sorted(self.pids), sorted(self.field("comm")), sorted(self.field("dst")),
                   sorted(self.field("sni")), len(self.egress_ev), len(self.egress),
                   len(self.ingress_ev), len(self.ingress)))


def conns(events, pids=None):
    by = collections.OrderedDict()
    for e in events:
        if pids is not None and e.get("pid") not in pids:
            continue
        by.setdefault(e.get("conn"), []).append(e)
    return {k: Conn(k, v) for k, v in by.items()}


def parse_http(data, requests=True):
    """Parse a captured HTTP/1.1 byte stream into messages.

    Returns (msgs, rest, errors); msgs: dicts {start, headers, body, complete}."""
    msgs, errors = [], []
    i = 0
    n = len(data)
    while i < n:
        j = data.find(b"\r\n\r\n", i)
        if j < 0:
            break
        head = data[i:j].decode("latin-1")
        lines = head.split("\r\n")
        start = lines[0]
        if requests:
            if not re.match(r"^[A-Z]+ \S+ HTTP/1\.[01]$", start):
                errors.append("bad request line at offset %d: %r" % (i, start[:80]))
                break
        elif not re.match(r"^HTTP/1\.[01] \d{3}", start):
            errors.append("bad status line at offset %d: %r" % (i, start[:80]))
            break
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        pos = j + 4
        if not requests:
            code = int(start.split()[1])
            if 100 <= code < 200 or code in (204, 304):
                msgs.append({"start": start, "headers": hdrs, "body": b"", "complete": True})
                i = pos
                continue
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            body = bytearray()
            ok = False
            while True:
                k = data.find(b"\r\n", pos)
                if k < 0:
                    break
                try:
                    size = int(data[pos:k].split(b";")[0].strip(), 16)
                except ValueError:
                    errors.append("bad chunk size at %d" % pos)
                    break
                pos = k + 2
                if size == 0:
                    e = data.find(b"\r\n\r\n", pos - 2)
                    if e < 0:
                        break
                    pos = e + 4
                    ok = True
                    break
                if pos + size + 2 > n:
                    body += data[pos:pos + size]
                    pos = n
                    break
                body += data[pos:pos + size]
                pos += size + 2
            msgs.append({"start": start, "headers": hdrs, "body": bytes(body), "complete": ok})
            if not ok:
                i = n
                break
            i = pos
        elif "content-length" in hdrs:
            cl = int(hdrs["content-length"])
            body = data[pos:pos + cl]
            msgs.append({"start": start, "headers": hdrs, "body": body, "complete": len(body) == cl})
            i = pos + len(body)
            if len(body) < cl:
                break
        else:
            if requests:
                msgs.append({"start": start, "headers": hdrs, "body": b"", "complete": True})
                i = pos
            else:  # body until close
                msgs.append({"start": start, "headers": hdrs, "body": data[pos:], "complete": True})
                i = n
    return msgs, data[i:], errors


def find_request(events, body_sha, pids=None):
    """(Conn, request msg) whose egress holds a request with that body sha256, else (None, None)."""
    for c in conns(events, pids).values():
        msgs, _, _ = parse_http(c.egress, True)
        for m in msgs:
            if m["complete"] and lwcommon.sha256(m["body"]) == body_sha:
                return c, m
    return None, None


def find_response(conn, resp_sha):
    msgs, _, _ = parse_http(conn.ingress, False)
    for m in msgs:
        if m["complete"] and lwcommon.sha256(m["body"]) == resp_sha:
            return m
    return None


def explain_missing(events, pids, body_sha, marker=None):
    cs = conns(events, pids)
    lines = ["%d events total, %d for pids %s, %d connections"
             % (len(events), sum(len(c.events) for c in cs.values()), sorted(pids or []), len(cs))]
    for c in list(cs.values())[:6]:
        msgs, rest, errs = parse_http(c.egress, True)
        lines.append(c.describe())
        lines.append("  parsed requests: %s; leftover %dB; errors %s; marker present: %s"
                     % ([(m["start"][:40], len(m["body"]), m["complete"], lwcommon.sha256(m["body"])[:12])
                         for m in msgs][:4], len(rest), errs[:2],
                        (marker in c.egress) if marker else "n/a"))
        sp = c.seq_problems()
        if sp:
            lines.append("  " + "; ".join(sp))
    all_pids = sorted({e.get("pid") for e in events})
    lines.append("pids seen: %s" % all_pids[:30])
    return "\n".join(lines)


def verify_exchange(agent, x, sni=SNI, dst=PROV_DST, timeout=15, pids=None, check_seq=True, comm=True):
    """Assert that exchange x (request body + response) was captured byte-exactly on one
    connection of x.pid, with the expected dst/sni/comm. Returns the Conn.

    pids: pids to search (default {x.pid}); dst/sni None to skip those checks."""
    search = pids or {x.pid}

    def done(evs):
        c, _ = find_request(evs, x.body_sha, search)
        return c if (c and find_response(c, x.resp_sha)) else None

    agent.wait_for(done, timeout)
    evs = agent.snapshot()
    check_events(evs)  # all output well-formed, no (conn, dir, seq) twice
    c, m = find_request(evs, x.body_sha, search)
    if not c:
        fail("%s: request body (%d B, sha256 %s..., id %s) not found in captured egress of pid %s\n%s"
             % (x.client, x.body_len, x.body_sha[:12], x.req_id, sorted(search),
                explain_missing(evs, search, x.body_sha, x.marker)))
    c = conns(evs)[c.id]  # every message of that conn id, whatever its pid
    check(len(c.pids) == 1 and (x.pid is None or c.pids == {x.pid}),
          "%s: connection %s has messages from pids %s (expected only %s)" % (x.client, c.id, sorted(c.pids), x.pid))
    if check_seq:
        sp = c.seq_problems()
        check(not sp, "%s: connection %s: %s" % (x.client, c.id, "; ".join(sp)))
    if dst is not None:
        check(c.field("dst") == {dst}, "%s: dst %s, expected %r" % (x.client, sorted(c.field("dst")), dst))
    if sni is not None:
        check(c.field("sni") == {sni}, "%s: sni %s, expected %r" % (x.client, sorted(c.field("sni")), sni))
    if comm and x.comm:
        check(c.field("comm") == {x.comm}, "%s: comm %s, expected %r" % (x.client, sorted(c.field("comm")), x.comm))
    if comm and x.exe:
        want = os.path.basename(os.path.realpath(x.exe))
        got = {os.path.basename(e) for e in c.field("exe")}
        check(got == {want}, "%s: exe %s, expected .../%s" % (x.client, sorted(c.field("exe")), want))
    check(all(e.get("lib") for e in c.events), "%s: empty lib in events of conn %s" % (x.client, c.id))
    check(len(c.field("fd")) == 1, "%s: fd changes within one connection: %s" % (x.client, sorted(c.field("fd"))))
    got_id = m["headers"].get("x-req-id")
    check(got_id == x.req_id, "%s: captured request carries X-Req-Id %r, expected %r" % (x.client, got_id, x.req_id))
    if not find_response(c, x.resp_sha):
        msgs, rest, errs = parse_http(c.ingress, False)
        fail("%s: response body (sha256 %s...) not found in captured ingress of conn %s: %d responses %s, "
             "leftover %dB, errors %s; %s" % (x.client, x.resp_sha[:12], c.id, len(msgs),
                                             [(r["start"], len(r["body"]), r["complete"]) for r in msgs][:4],
                                             len(rest), errs[:2], c.describe()))
    return c


# --------------------------------------------------------------------------- clients

class Exchange:
    """One request/response a client made: what the capture must contain."""

    def __init__(self, client, proc, req_id, body_sha, body_len, resp_sha, marker, comm, exe=None):
        self.client, self.proc, self.req_id = client, proc, req_id
        self.pid = proc.pid if proc else None
        self.body_sha, self.body_len, self.resp_sha = body_sha, body_len, resp_sha
        self.marker, self.comm, self.exe = marker, comm, exe

    def __repr__(self):
        return "<%s %s pid=%s body=%dB>" % (self.client, self.req_id, self.pid, self.body_len)


def _finish(net, client, proc, req_id, body, comm, exe, timeout, client_sha=True):
    proc.wait_ok(timeout)
    rec = net.server_rec(req_id)
    check(rec.get("status") == "ok", "%s: server record %s" % (client, rec))
    if body is not None:
        check(rec["sha256"] == lwcommon.sha256(body),
              "%s: server received a different body (%d B) than sent (%d B)" % (client, rec["len"], len(body)))
    if client_sha:
        r = proc.json_out()
        check(r.get("ok") and r.get("resp_sha256") == rec["resp_sha256"],
              "%s: client got a different response than the server sent: %s" % (client, r))
    marker = body[:24] if body is not None else None
    return Exchange(client, proc, req_id, rec["sha256"], rec["len"], rec["resp_sha256"], marker, comm, exe)


def client_curl(ctx, net, body, req_id, resp_size, timeout=60):
    f = ctx.write(req_id + ".body", body)
    outp = ctx.path(req_id + ".resp")
    p = net.spawn(["curl", "-sS", "--http1.1", "--cacert", net.certs["ca"], "-X", "POST",
                   "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                   "-H", "%s: %s" % (lwcommon.H_REQ_ID, req_id), "-H", "%s: %d" % (lwcommon.H_RESP_SIZE, resp_size),
                   "--data-binary", "@" + f, "-o", outp, "https://api.openai.com/v1/lwt"], name="curl")
    x = _finish(net, "curl", p, req_id, body, "curl", "/usr/bin/curl", timeout, client_sha=False)
    with open(outp, "rb") as fh:
        got = fh.read()
    check(lwcommon.sha256(got) == x.resp_sha, "curl: response differs from what the server sent")
    return x


def client_py(ctx, net, mode, body, req_id, resp_size, timeout=60, env=None, extra=()):
    f = ctx.write(req_id + ".body", body)
    p = net.spawn([PY, PYCLIENT, mode, "--cafile", net.certs["ca"], "--body-file", f, "--req-id", req_id,
                   "--resp-size", str(resp_size)] + list(extra), env=env, name="py-" + mode)
    return _finish(net, "python-" + mode, p, req_id, body, os.path.basename(PY)[:15], PY, timeout)


def client_node_https(ctx, net, body, req_id, resp_size, timeout=60):
    f = ctx.write(req_id + ".body", body)
    p = net.spawn(["node", os.path.join(NODE_DIR, "https_client.js"), "--url", "https://api.openai.com/v1/lwt",
                   "--body-file", f, "--req-id", req_id, "--resp-size", str(resp_size),
                   "--cafile", net.certs["ca"]], name="node-https")
    return _finish(net, "node-https", p, req_id, body, "node", shutil.which("node"), timeout)


def client_openai(ctx, net, prompt, req_id, resp_size, timeout=90):
    """Official openai SDK; the JSON body is built by the SDK (its sha256 comes from the server log)."""
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")):
        fail("tests/node/node_modules/openai missing (run: npm ci --prefix tests/node)")
    f = ctx.write(req_id + ".prompt", prompt.encode())
    p = net.spawn(["node", os.path.join(NODE_DIR, "openai_client.js"), "--prompt-file", f, "--req-id", req_id,
                   "--resp-size", str(resp_size)], env={"NODE_EXTRA_CA_CERTS": net.certs["ca"]}, name="node-openai")
    x = _finish(net, "openai-sdk", p, req_id, None, "node", shutil.which("node"), timeout, client_sha=False)
    r = p.json_out()
    check(r.get("ok") and r.get("object") == "chat.completion" and r.get("content_len") == resp_size,
          "openai SDK did not accept the completion: %s" % r)
    x.marker = prompt.encode()[:24]
    return x


def client_s_client(ctx, net, body, req_id, resp_size, timeout=60):
    head = ("POST /v1/lwt HTTP/1.1\r\nHost: api.openai.com\r\n%s: %s\r\n%s: %d\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (lwcommon.H_REQ_ID, req_id, lwcommon.H_RESP_SIZE, resp_size, len(body))).encode()
    f = ctx.write(req_id + ".http", head + body)
    with open(f, "rb") as stdin:
        p = net.spawn(["openssl", "s_client", "-connect", "api.openai.com:443", "-servername", "api.openai.com",
                       "-CAfile", net.certs["ca"], "-verify_return_error", "-quiet"], stdin=stdin, name="s_client")
    x = _finish(net, "s_client", p, req_id, body, "openssl", shutil.which("openssl"), timeout, client_sha=False)
    check(any("200 OK" in l for l in p.out_lines), "s_client printed no HTTP 200: %s" % p.out_lines[:3])
    return x


# --------------------------------------------------------------------------- memory integrity

def mapping_diffs(pid, path_filter, exec_too=False):
    """Compare a process's file-backed read-only mappings with the file on disk.

    Uprobes are int3 (0xCC) bytes written into the process's copy of a page; they belong at the
    entry of hooked functions only. This checks the first mapping of each matching file (ELF header,
    .dynsym, .dynstr: never relocated) and, with exec_too, the r-xp text mapping as well (for a file
    that must not be hooked at all). Returns a list of "path+0xOFF: file XX mem YY" strings."""
    diffs = []
    with open("/proc/%d/maps" % pid) as f:
        maps = [l.split() for l in f]
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for m in maps:
            if len(m) < 6 or not path_filter(m[5]):
                continue
            perms, off = m[1], int(m[2], 16)
            if not (perms == "r--p" and off == 0) and not (exec_too and perms == "r-xp"):
                continue
            lo, hi = (int(x, 16) for x in m[0].split("-"))
            with open(m[5], "rb") as fh:
                fh.seek(off)
                want = fh.read(hi - lo)
            mem.seek(lo)
            got = mem.read(len(want))
            if got != want:
                for i in range(min(len(got), len(want))):
                    if got[i] != want[i]:
                        diffs.append("%s+0x%x: file %02x mem %02x" % (m[5], off + i, want[i], got[i]))
                        if len(diffs) > 20:
                            return diffs
    return diffs


# --------------------------------------------------------------------------- per-test context

class Ctx:
    def __init__(self, name):
        self.name = name
        self._mark = len(_cleanups)
        self._tmp = None
        self._net = None
        self.agents = []
        self.notes = []

    def tmpdir(self):
        if not self._tmp:
            self._tmp = tempfile.mkdtemp(prefix="lwt-%s-" % self.name[:20])
            d = self._tmp
            add_cleanup(lambda: shutil.rmtree(d, ignore_errors=True), "rm " + d)
        return self._tmp

    def path(self, name):
        return os.path.join(self.tmpdir(), name)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def net(self):
        if not self._net:
            self._net = Net(self)
        return self._net

    def spawn(self, argv, netns=None, **kw):
        return Proc(argv, netns=netns, **kw)

    def agent(self, *args, **kw):
        return Agent(self, args, **kw)

    def note(self, msg):
        self.notes.append(msg)

    def close(self):
        return run_cleanups(self._mark)


# --------------------------------------------------------------------------- runner

def _on_alarm(signum, frame):
    raise TestTimeout()


def _on_term(signum, frame):
    raise Interrupted("signal %d" % signum)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="leakwatch real-kernel integration tests")
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this (repeatable)")
    ap.add_argument("-v", action="store_true", help="print notes and agent stderr for passing tests too")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args(argv)
    sel = [t for t in _TESTS if not a.k or any(k in t[0] for k in a.k)]
    if a.list:
        for name, _, to in sel:
            print(name)
        return 0
    if os.geteuid() != 0:
        print("integration tests need root", file=sys.stderr)
    signal.signal(signal.SIGALRM, _on_alarm)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_term)
    cleanup_stale()
    passed = failed = 0
    interrupted = False
    try:
        for name, fn, timeout in sel:
            t0 = time.monotonic()
            ctx = Ctx(name)
            reason, detail = None, []
            try:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                fn(ctx)
            except TestTimeout:
                reason = "timeout after %ss" % timeout
                detail.append(traceback.format_exc(limit=-3).strip())
            except (TestFailure, AssertionError) as e:
                msg = str(e) or repr(e)
                reason, _, rest = msg.partition("\n")
                if rest:
                    detail.append(rest)
            except Interrupted as e:
                reason = "interrupted (%s)" % e
                interrupted = True
            except Exception as e:  # noqa
                reason = "error: %r" % e
                detail.append(traceback.format_exc().strip())
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(s, signal.SIG_IGN)
                errs = ctx.close()
                for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(s, _on_term)
            dt = time.monotonic() - t0
            if reason is None:
                passed += 1
                print("PASS %s (%.1fs)" % (name, dt), flush=True)
                if a.v:
                    for n in ctx.notes:
                        print("    " + n)
                    for ag in ctx.agents:
                        print("    agent stderr: " + ag.stderr_tail(6))
            else:
                failed += 1
                print("FAIL %s: %s" % (name, reason), flush=True)
                for n in ctx.notes:
                    detail.append("note: " + n)
                for ag in ctx.agents:
                    detail.append("agent %s rc=%s stderr tail: %s" % (" ".join(ag.argv[1:]), ag.p.returncode,
                                                                       ag.stderr_tail(12)))
                for d in detail:
                    for line in d.splitlines():
                        print("    " + line[:2000])
                sys.stdout.flush()
            for e in errs:
                print("    " + e)
            if interrupted:
                break
    finally:
        run_cleanups()
        run_session_cleanups()
    if not sel:
        print("no tests match %s" % a.k)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if (failed or not sel or interrupted) else 0
