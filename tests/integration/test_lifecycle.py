"""Agent lifecycle (issue 2): clean detach, restarts, clear errors, `run`."""
import json
import os
import subprocess
import time

import lwcommon
import lwtest as lw
from lwtest import check, test

# names of the capture programs (bpftool truncates names to 15 characters)
PROG_NAMES = {"ssl_write_enter", "ssl_write_leave", "ssl_read_ex_ent", "tp_enter_mmap", "tp_exec"}


def _loaded_progs():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [p for p in json.loads(out or "[]") if p.get("name", "")[:15] in PROG_NAMES]


def _uprobe_events():
    # perf-based uprobes leave nothing here; legacy (tracefs) ones would
    path = "/sys/kernel/tracing/uprobe_events"
    if not os.path.exists(path):
        return []
    return [l for l in open(path) if "leakwatch" in l or "libbpf" in l]


@test(timeout=180)
def stop_detaches_and_restart_works(t):
    net = t.net()
    before = _loaded_progs()
    for round_ in range(2):
        agent = t.agent()
        check(len(_loaded_progs()) > len(before), "programs not loaded while the agent runs")
        rid = "restart-%d" % round_
        x = lw.client_curl(t, net, lwcommon.body(rid, 2000, "text"), rid, 500)
        lw.verify_exchange(agent, x)
        agent.stop_ok()
        # the kernel frees programs once their last link and fd are gone
        deadline = time.monotonic() + 5
        while len(_loaded_progs()) > len(before) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _loaded_progs()
        check(len(left) == len(before), "programs left after stop: %s" % [p["name"] for p in left])
        check(not _uprobe_events(), "uprobe events left: %s" % _uprobe_events())
    check(not os.listdir("/sys/fs/bpf") or not any("leakwatch" in n for n in os.listdir("/sys/fs/bpf")),
          "something pinned in /sys/fs/bpf")


@test(timeout=120)
def two_agents_at_once(t):
    net = t.net()
    a1 = t.agent()
    a2 = t.agent()
    x = lw.client_py(t, net, "httpclient", lwcommon.body("two-agents", 3000, "text"), "two-agents", 100)
    lw.verify_exchange(a1, x)
    lw.verify_exchange(a2, x)
    a2.stop_ok()
    x2 = lw.client_curl(t, net, lwcommon.body("after-one-stopped", 3000, "text"), "after-one-stopped", 100)
    lw.verify_exchange(a1, x2)
    a1.stop_ok()


@test(timeout=60)
def unprivileged_start_fails_with_one_line(t):
    # a copy the unprivileged user can execute
    binc = t.path("leakwatch")
    subprocess.run(["cp", lw.BIN, binc], check=True)
    os.chmod(t.tmpdir(), 0o755)
    os.chmod(binc, 0o755)
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binc, "trace"],
                       capture_output=True, text=True, timeout=30)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(p.returncode == 1, "exit code %d, want 1" % p.returncode)
    check(len(lines) == 1, "want one error line, got %r" % lines)
    check("root" in lines[0] or "CAP_" in lines[0], "error does not name the privilege: %r" % lines[0])


@test(timeout=60)
def usage_errors_exit_2(t):
    for argv in (["trace", "--format", "xml"], ["trace", "--capture-max", "12X"],
                 ["trace", "--pid", "abc"], ["nosuchcommand"], []):
        p = subprocess.run([lw.BIN] + argv, capture_output=True, text=True, timeout=10)
        check(p.returncode == 2, "%s: exit %d, want 2" % (argv, p.returncode))
        check(p.stderr.strip(), "%s: no message on stderr" % argv)
    for argv in (["--help"], ["trace", "--help"], ["run", "--help"], ["version"]):
        p = subprocess.run([lw.BIN] + argv, capture_output=True, text=True, timeout=10)
        check(p.returncode == 0 and p.stdout.strip(), "%s: exit %d / empty help" % (argv, p.returncode))


@test(timeout=120)
def run_reports_stats_and_exits_cleanly(t):
    net = t.net()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.Popen([lw.BIN, "run", "--state-dir", t.path("state"), "--policy", os.path.join(repo, "policies"),
                          "--stats-interval", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    lw.add_cleanup(lambda: p.poll() is None and p.kill(), "run agent")
    deadline = time.monotonic() + 30
    err = []
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        err.append(line)
        if "ready" in line:
            break
    check(any("ready" in l for l in err), "run never became ready: %s" % err[-5:])
    x = lw.client_curl(t, net, lwcommon.body("run-stats", 5000, "text"), "run-stats", 100)
    check(x is not None, "client failed")
    time.sleep(2)
    p.send_signal(2)
    out, rest = p.communicate(timeout=30)
    err += rest.splitlines()
    stats = [json.loads(l[len("stats: "):]) for l in err if l.startswith("stats: ")]
    check(p.returncode == 0, "run exited %d: %s" % (p.returncode, err[-5:]))
    check(len(stats) >= 2, "want periodic and final stats lines, got %d" % len(stats))
    check(stats[-1]["messages"] >= 2 and stats[-1]["complete_messages"] >= 2,
          "final stats do not count the request: %s" % stats[-1])
    check(stats[-1]["ringbuf_dropped_chunks"] == 0, "drops: %s" % stats[-1])
