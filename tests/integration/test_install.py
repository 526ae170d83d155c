"""Installing leakwatch (issue 8): `make install`/`make uninstall` into a DESTDIR, the systemd unit
as systemd-analyze sees it once installed, and the Debian package: lintian, install, upgrade,
remove and purge.

Installs that must land in / happen in a throwaway root: a private mount namespace whose / is an
overlay of this host's / with a tmpfs on top, entered with chroot. dpkg, the maintainer scripts,
deb-systemd-helper, systemd-analyze and man run for real against this host's files, every write
lands in the tmpfs, and the namespace (with everything in it) is gone when its process exits, also
when a test fails. Other engineers' agents never see an /etc/leakwatch appear.

systemd is not PID 1 on the test machines, so no unit is started here: one round runs the package
as this host is (no systemd: the scripts must not call it); another puts a recording `systemctl`
in the throwaway root and creates /run/systemd/system, which checks what the maintainer scripts
ask systemd to do at each step, not that systemd does it.
"""
import json
import os
import re
import socket
import subprocess

import lwtest as lw
from lwtest import check, test

REPO = lw.REPO
CONF = "/etc/leakwatch"
UNIT = "leakwatch.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/" + UNIT

# the verbs that act on a running systemd (the rest are queries or offline)
SYSTEMD_ACTIONS = ("start", "stop", "restart", "reload", "daemon-reload", "try-restart")


def sh(argv, timeout=120, ok=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if ok:
        check(p.returncode == 0, "%s exited %d:\n%s%s" % (" ".join(argv), p.returncode,
                                                        p.stdout[-1500:], p.stderr[-1500:]))
    return p


def make(*args, timeout=300):
    return sh(["make", "--no-print-directory", "-C", REPO] + list(args), timeout=timeout)


def tree(root):
    """Every path under root (relative), with its type and mode."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            kind = "l" if os.path.islink(p) else "d" if os.path.isdir(p) else "f"
            out[os.path.relpath(p, root)] = (kind, st.st_mode & 0o7777)
    return out


def tree_version():
    return sh([os.path.join(REPO, "tools", "version.sh")]).stdout.strip()


def installed_policy_sources():
    """The repository files `make install` puts in /etc/leakwatch, keyed by their path there."""
    want = {"leakwatch.yaml": os.path.join(REPO, "deploy", "leakwatch.yaml")}
    for d, _, files in os.walk(os.path.join(REPO, "policies")):
        for n in files:
            rel = os.path.relpath(os.path.join(d, n), REPO)
            if n.endswith((".yaml", ".yml")) and rel != "policies/rules/builtin.yaml":
                want[rel] = os.path.join(REPO, rel)
    return want


def uncommented(conf_text, syslog_target):
    """The shipped configuration with every commented key turned on: the documented values must
    be valid keys and values too. The syslog sink goes to the test's own socket."""
    out = re.sub(r"(?m)^(\s*)# ( *[a-z_]+:)", r"\1\2", conf_text)
    return out.replace("unix:/dev/log", "unix:" + syslog_target)


# --------------------------------------------------------------------------- (a) DESTDIR

@test(timeout=300)
def install_destdir_tree_config_and_uninstall(t):
    """make install DESTDIR=tmp PREFIX=/usr writes exactly the documented tree (modes included);
    the installed binary runs, the installed configuration and policies pass `run --check` (and
    a broken copy does not); a reinstall keeps an edited configuration; make uninstall removes
    everything but an edited configuration and a state directory with data, and nothing once
    those are gone."""
    make("all")
    dest = t.path("dest")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    got = tree(dest)
    confs = installed_policy_sources()
    files = {p: m for p, (k, m) in got.items() if k != "d"}
    want_files = {"usr/bin/leakwatch": 0o755, "lib/systemd/system/" + UNIT: 0o644,
                  "usr/share/man/man8/leakwatch.8": 0o644}
    for rel in confs:
        want_files["etc/leakwatch/" + rel] = 0o644
    docs = ["README.md"] + sorted(n for n in os.listdir(os.path.join(REPO, "docs")) if n.endswith(".md"))
    for n in docs:
        want_files["usr/share/doc/leakwatch/" + n] = 0o644
    check(files == want_files, "installed files differ:\n  unexpected %s\n  missing %s\n  modes %s" % (
        sorted(set(files) - set(want_files)), sorted(set(want_files) - set(files)),
        {p: oct(m) for p, m in files.items() if p in want_files and want_files[p] != m}))
    for n in ("deploy.md", "threat-model.md", "reference.md"):
        check("usr/share/doc/leakwatch/" + n in files, "docs/%s not installed" % n)
    check(got.get("var/lib/leakwatch") == ("d", 0o700), "state dir: %s" % (got.get("var/lib/leakwatch"),))
    check("etc/leakwatch/policies/rules/builtin.yaml" not in got,
          "the built-in rule pack was copied to /etc: it would override later versions' rules")
    for rel, src in confs.items():
        with open(os.path.join(dest, "etc/leakwatch", rel), "rb") as a, open(src, "rb") as b:
            check(a.read() == b.read(), "etc/leakwatch/%s differs from %s" % (rel, src))

    binp = os.path.join(dest, "usr/bin/leakwatch")
    v = sh([binp, "version"]).stdout.strip()
    check(v == "leakwatch " + tree_version(), "installed binary says %r, the tree is %s" % (v, tree_version()))
    unit = open(os.path.join(dest, "lib/systemd/system", UNIT)).read()
    check(re.search(r"(?m)^ExecStart=/usr/bin/leakwatch run$", unit) and "@BINDIR@" not in unit,
          "unit's ExecStart is not the installed binary:\n" + unit)

    conf = os.path.join(dest, "etc/leakwatch/leakwatch.yaml")
    pol = os.path.join(dest, "etc/leakwatch/policies")
    # the shipped file names the installed layout; --policy points it at the DESTDIR copy
    p = sh([binp, "run", "--check", "--config", conf, "--policy", pol])
    check("configuration %s: ok" % conf in p.stdout and "policy directory %s:" % pol in p.stdout
          and p.stdout.rstrip().endswith(": ok"), "run --check: %r" % p.stdout)
    sh([binp, "policy", "check", pol])
    sock = t.path("syslog.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock)
    lw.add_cleanup(s.close, "syslog socket")
    full = t.write("full.yaml", uncommented(open(conf).read(), sock).encode())
    body = open(full).read()
    for key in ("max:", "ring_size:", "db:", "dedupe_window:", "rate_limit:", "file:", "syslog:", "webhook:"):
        check(re.search(r"(?m)^\s+" + key, body), "shipped configuration lacks a commented %s" % key)
    sh([binp, "run", "--check", "--config", full, "--policy", pol])
    bad = t.write("bad.yaml", (open(conf).read() + "alerts:\n  hook: http://x/\n").encode())
    p = sh([binp, "run", "--check", "--config", bad, "--policy", pol], ok=False)
    check(p.returncode == 1 and re.search(r"bad\.yaml:\d+: ", p.stderr),
          "a broken configuration passed run --check (rc %d): %s" % (p.returncode, p.stderr))

    # an administrator's edit and the agent's data survive a reinstall and an uninstall
    with open(conf, "a") as f:
        f.write("# edited by the administrator\n")
    edited = open(conf).read()
    key = os.path.join(dest, "var/lib/leakwatch/fingerprint.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    out = make("install", "DESTDIR=" + dest, "PREFIX=/usr").stdout
    check(open(conf).read() == edited and "kept %s" % conf in out,
          "reinstall replaced the edited configuration:\n" + out)
    out = make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr").stdout
    left = {p for p, (k, _) in tree(dest).items() if k != "d"}
    check(left == {"etc/leakwatch/leakwatch.yaml", "var/lib/leakwatch/fingerprint.key"},
          "after uninstall: %s\n%s" % (sorted(left), out))
    os.unlink(conf)
    os.unlink(key)
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    left = tree(dest)
    check(not any(k != "d" for k, _ in left.values()), "files left: %s" % sorted(left))
    check(not any("leakwatch" in p for p in left), "directories left: %s" %
          sorted(p for p in left if "leakwatch" in p))


# --------------------------------------------------------------------------- throwaway root

# In a private mount namespace: / overlaid with a tmpfs, /proc /sys /dev bound in, the test's
# directory at /lwio and the repository read-only at its own path (an install must not build
# anything into the host's tree). Runs driver.py once per phase inside the chroot and lists
# what the phase left in the overlay's upper layer (everything the root gained or lost).
ROOT_SH = r"""
set -eu
io=$1 repo=$2
shift 2
t=$io/root
mount -t tmpfs -o mode=0755 lwtest-root "$t"
mkdir "$t/upper" "$t/work" "$t/merged"
mount -t overlay lwtest-root -o "lowerdir=/,upperdir=$t/upper,workdir=$t/work" "$t/merged"
m=$t/merged
for d in proc sys dev; do mount --rbind "/$d" "$m/$d"; done
mkdir -p "$m/lwio" "$m$repo"
mount --bind "$io" "$m/lwio"
mount --bind "$repo" "$m$repo"
mount -o remount,bind,ro "$m$repo"
# dpkg's man-db trigger would rebuild the whole man database at every step: seconds each
rm -f "$m/var/lib/man-db/auto-update"
for phase in "$@"; do
	chroot "$m" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LC_ALL=C.UTF-8 HOME=/root python3 /lwio/driver.py "$phase"
	(cd "$t/upper" && find . -mindepth 1 -printf '%y %m %p\n') >"$io/upper-$phase.txt"
done
"""

# Runs inside the throwaway root: one phase of phases.json (commands, each with stdin from
# /dev/null so that a dpkg conffile question fails instead of waiting), then the state of the
# paths the test looks at.
DRIVER = r"""
import hashlib, json, os, subprocess, sys
phase = sys.argv[1]
spec = json.load(open("/lwio/phases.json"))[phase]
facts = {"runs": []}
for argv in spec.get("run", []):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    facts["runs"].append({"argv": argv, "rc": p.returncode, "out": p.stdout, "err": p.stderr})
files = {}
for top in spec.get("stat", []):
    walk = [(top, [], [])] if not os.path.isdir(top) or os.path.islink(top) else os.walk(top)
    for d, dirs, names in walk:
        for p in [d] + [os.path.join(d, n) for n in dirs + names]:
            if not os.path.lexists(p) or p in files:
                continue
            st = os.lstat(p)
            e = {"mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}
            if os.path.islink(p):
                e["type"], e["link"] = "l", os.readlink(p)
            elif os.path.isdir(p):
                e["type"] = "d"
            else:
                e["type"] = "f"
                e["sha256"] = hashlib.sha256(open(p, "rb").read()).hexdigest()
            files[p] = e
facts["files"] = files
with open("/lwio/facts-%s.json" % phase, "w") as f:
    json.dump(facts, f)
"""

# A running systemd as the maintainer scripts see it: /run/systemd/system exists and systemctl
# records what it is asked. Queries and offline operations (is-enabled, preset) go to the real
# systemctl with --root, which answers them from the unit files without a running manager.
FAKE_SYSTEMCTL = r"""#!/bin/sh
echo "$*" >>/lwio/systemctl.log
case " $* " in
*" --root="*) exec /usr/bin/systemctl "$@" ;;
*" is-enabled "*) exec /usr/bin/systemctl --root=/ "$@" ;;
*" is-active "*) [ -e /run/lwtest-active ] && exit 0; exit 3 ;;
*" start "* | *" restart "*) : >/run/lwtest-active ;;
*" stop "*) rm -f /run/lwtest-active ;;
esac
exit 0
"""


class Root:
    """A throwaway root for one sequence of phases."""

    def __init__(self, t, name):
        self.t = t
        self.io = t.path(name)
        os.makedirs(os.path.join(self.io, "root"))
        with open(os.path.join(self.io, "driver.py"), "w") as f:
            f.write(DRIVER)

    def file(self, name, data, mode=0o644):
        p = os.path.join(self.io, name)
        with open(p, "w") as f:
            f.write(data)
        os.chmod(p, mode)
        return "/lwio/" + name

    def run(self, phases, timeout=240):
        """phases: [(name, {"run": [argv...], "stat": [paths]})]. Returns {name: facts}."""
        with open(os.path.join(self.io, "phases.json"), "w") as f:
            json.dump(dict(phases), f)
        p = sh(["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", ROOT_SH,
                "lwroot", self.io, REPO] + [n for n, _ in phases], timeout=timeout, ok=False)
        check(p.returncode == 0, "throwaway root failed (rc %d): %s" % (p.returncode, p.stderr[-2000:]))
        out = {}
        for n, _ in phases:
            with open(os.path.join(self.io, "facts-%s.json" % n)) as f:
                out[n] = json.load(f)
            with open(os.path.join(self.io, "upper-%s.txt" % n)) as f:
                out[n]["upper"] = [l.rstrip("\n").split(" ", 2) for l in f if l.strip()]
        return out


def run_ok(facts, what):
    for r in facts["runs"]:
        check(r["rc"] == 0, "%s: `%s` exited %d:\n%s%s" % (what, " ".join(r["argv"]), r["rc"],
                                                         r["out"][-1500:], r["err"][-1500:]))


def runof(facts, *prefix):
    """The phase's run of the command that starts with prefix."""
    for r in facts["runs"]:
        if r["argv"][:len(prefix)] == list(prefix):
            return r
    raise AssertionError("no run of %s" % (prefix,))


def leftovers(facts):
    """Paths the root gained that name leakwatch. man's page cache is left out: systemd-analyze
    verify runs man, which caches the formatted page; that is the test's doing, not an install's."""
    return sorted(p for _, _, p in facts["upper"]
                  if "leakwatch" in p and not p.startswith("./var/cache/man/"))


def require_clean_host():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "leakwatch"], capture_output=True, text=True)
    check("installed" not in p.stdout and not os.path.lexists(CONF),
          "this host has leakwatch installed (%s, %s exists: %s): the throwaway root is an overlay of "
          "this host's /, so these tests need a host without it" % (p.stdout, CONF, os.path.lexists(CONF)))


# --------------------------------------------------------------------------- (b) make install to /

@test(timeout=300)
def install_root_unit_verifies_and_uninstalls(t):
    """`make install` with the default PREFIX (/usr/local), into / of a throwaway root:
    systemd-analyze verify accepts the installed unit (its ExecStart exists, its man page
    resolves), a broken copy of it is rejected, the agent's default configuration path passes
    `run --check`, man formats the page without warnings; `make uninstall` leaves nothing."""
    require_clean_host()
    make("all", "build/leakwatch.8")
    r = Root(t, "rootinst")
    unitp = "/usr/local/lib/systemd/system/" + UNIT
    broken = r.file("broken.sh", "sed -e 's|^ExecStart=.*|ExecStart=/usr/local/bin/leakwatch-missing run|' "
                                 "-e 's|^Restart=always|Restart=sometimes|' %s >/lwio/broken.service\n" % unitp)
    # the host's version: git in the root may see the tree as another user's and say less
    mk = ["make", "--no-print-directory", "-C", REPO, "VERSION=" + tree_version()]
    f = r.run([
        ("install", {"run": [mk + ["install"]],
                     "stat": ["/usr/local/bin/leakwatch", unitp, CONF, "/var/lib/leakwatch"]}),
        ("verify", {"run": [["systemd-analyze", "verify", unitp],
                            ["sh", broken],
                            ["systemd-analyze", "verify", "/lwio/broken.service"],
                            ["leakwatch", "run", "--check"],
                            ["man", "--warnings", "-P", "cat", "8", "leakwatch"]]}),
        ("uninstall", {"run": [mk + ["uninstall"]]}),
    ])
    run_ok(f["install"], "make install")
    files = f["install"]["files"]
    check(files.get("/usr/local/bin/leakwatch", {}).get("mode") == 0o755 and
          files.get("/var/lib/leakwatch", {}).get("mode") == 0o700 and
          files.get(CONF + "/leakwatch.yaml", {}).get("type") == "f", "installed: %s" % sorted(files))
    verify, _, broken_verify, check_run, man = f["verify"]["runs"]
    check(verify["rc"] == 0 and not (verify["out"] + verify["err"]).strip(),
          "systemd-analyze verify %s: rc %d\n%s%s" % (unitp, verify["rc"], verify["out"], verify["err"]))
    msgs = broken_verify["out"] + broken_verify["err"]
    check("leakwatch-missing" in msgs and "sometimes" in msgs,
          "systemd-analyze verify did not catch a missing ExecStart and a bad Restart=: %r" % msgs)
    check(check_run["rc"] == 0 and "configuration %s/leakwatch.yaml: ok" % CONF in check_run["out"]
          and "policy directory %s/policies: " % CONF in check_run["out"],
          "run --check with the installed defaults: rc %d %s%s" % (check_run["rc"], check_run["out"], check_run["err"]))
    check(man["rc"] == 0 and "CONFIGURATION FILE" in man["out"] and not man["err"].strip(),
          "man leakwatch(8): rc %d, warnings: %s" % (man["rc"], man["err"][-1000:]))
    run_ok(f["uninstall"], "make uninstall")
    left = leftovers(f["uninstall"])
    check(not left, "make uninstall left: %s" % left)
    t.note("systemd is not running here: the unit was verified, not started")


# --------------------------------------------------------------------------- (c) the package

def build_debs(t):
    """make deb (the tree's version) and a second package with a higher version made from it:
    the same files, but providers.yaml changed, as a new provider catalog would."""
    out = t.path("deb")
    p = make("deb", "DEBDIR=" + out)
    v1 = p.stdout.strip().splitlines()[-1]
    check(v1.endswith(".deb") and os.path.exists(v1), "make deb printed %r" % p.stdout[-500:])
    ver1 = tree_version()
    ver2 = ver1 + "+upgradetest"
    sh(["dpkg", "--compare-versions", ver2, "gt", ver1])
    x = t.path("v2tree")
    sh(["dpkg-deb", "-R", v1, x])
    ctl = os.path.join(x, "DEBIAN", "control")
    text = open(ctl).read()
    check("Version: %s\n" % ver1 in text, "package version is not the tree's %s:\n%s" % (ver1, text))
    with open(ctl, "w") as f:
        f.write(text.replace("Version: %s\n" % ver1, "Version: %s\n" % ver2))
    with open(os.path.join(x, "etc/leakwatch/policies/providers.yaml"), "a") as f:
        f.write("# catalog of the upgrade test's second version\n")
    v2 = os.path.join(out, "leakwatch_v2.deb")
    sh(["dpkg-deb", "--root-owner-group", "-b", x, v2])
    return v1, v2, ver1, ver2


def pkg_phases(r, simulate_systemd):
    stat = ["/usr/bin/leakwatch", "/lib/systemd/system/" + UNIT, CONF, "/var/lib/leakwatch",
            "/var/log/leakwatch", WANTS, "/var/lib/systemd/deb-systemd-helper-enabled",
            "/var/lib/systemd/deb-systemd-helper-masked", "/usr/share/man/man8/leakwatch.8.gz"]
    dpkg = ["dpkg", "--force-unsafe-io"]
    query = ["dpkg-query", "-W", "-f=${Version} ${Status}\n${Conffiles}\n", "leakwatch"]
    pre = []
    if simulate_systemd:
        fake = r.file("systemctl", FAKE_SYSTEMCTL, 0o755)
        # a policy-rc.d that forbids starting services (images often ship one, this host does)
        # would answer for systemd: without it, deb-systemd-invoke asks systemctl
        pre = [["mkdir", "-p", "/run/systemd/system"], ["cp", fake, "/usr/local/sbin/systemctl"],
               ["rm", "-f", "/usr/sbin/policy-rc.d"]]
    admin = r.file("admin.sh", "set -e\n"
                   "echo '# edited by the administrator' >>%s/leakwatch.yaml\n"
                   "printf 'service: checkout\\nmatch:\\n  unit: checkout\\n' >%s/policies/checkout.yaml\n"
                   "head -c 32 /dev/urandom >/var/lib/leakwatch/fingerprint.key\n"
                   "chmod 600 /var/lib/leakwatch/fingerprint.key\n" % (CONF, CONF))
    if simulate_systemd:
        # each phase's calls under its own heading in the log
        mark = lambda name: [["sh", "-c", "echo '# %s' >>/lwio/systemctl.log" % name]]
    else:
        mark = lambda name: []
    return [
        ("install", {"run": pre + mark("install") + [dpkg + ["-i", "/lwio/v1.deb"], query, ["leakwatch", "version"],
                                   ["leakwatch", "run", "--check"],
                                   ["systemd-analyze", "verify", "/lib/systemd/system/" + UNIT]],
                     "stat": stat}),
        ("upgrade", {"run": mark("upgrade") + [["sh", admin], dpkg + ["-i", "/lwio/v2.deb"], query,
                             ["leakwatch", "run", "--check"]], "stat": stat}),
        ("remove", {"run": mark("remove") + [dpkg + ["-r", "leakwatch"], query], "stat": stat}),
        ("purge", {"run": mark("purge") + [dpkg + ["--purge", "leakwatch"]], "stat": stat}),
    ]


def systemctl_actions(log_lines):
    """{phase: [action, ...]} from the recording systemctl's log."""
    acts, cur = {}, None
    for line in log_lines:
        if line.startswith("# "):
            cur = acts.setdefault(line[2:], [])
            continue
        words = line.split()
        for w in words:
            if w in SYSTEMD_ACTIONS:
                cur.append(w + ("" if w == "daemon-reload" else " " + words[-1]))
                break
    return acts


# What the maintainer scripts must ask a running systemd at each step, daemon-reloads aside:
# a daemon-reload must come before a start or restart (systemd must know the new unit file).
WANT_ACTIONS = {"install": ["start " + UNIT], "upgrade": ["restart " + UNIT],
                "remove": ["stop " + UNIT], "purge": []}


@test(timeout=300)
def deb_lintian_install_upgrade_purge(t):
    """make deb: lintian reports no error and no warning; in a throwaway root the package
    installs (files, modes, conffiles, the unit enabled, /var/lib/leakwatch 0700, its libraries
    all in Depends, the installed configuration valid), upgrades to a higher version keeping the
    administrator's edit, an added policy and the fingerprint key while taking the new
    unmodified conffile, is removed (conffiles and data stay) and purged (nothing left). Run twice:
    without systemd, as this host is, and with a simulated running systemd, whose recorded calls
    must be start on install, restart (never stop) on upgrade, stop on removal."""
    require_clean_host()
    v1, v2, ver1, ver2 = build_debs(t)
    p = sh(["lintian", "--display-info", "--no-tag-display-limit", "--show-overrides", v1], ok=False)
    tags = [l for l in p.stdout.splitlines() if re.match(r"^[EWO]: ", l)]
    check(not tags and p.returncode == 0, "lintian (rc %d):\n%s" % (p.returncode, "\n".join(tags) or p.stderr))
    t.note("lintian: %s" % (", ".join(l.split()[2] for l in p.stdout.splitlines() if l.startswith("I: "))
                             or "no tags"))

    # every library the binary links comes from a package it depends on
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        sh(["readelf", "-d", os.path.join(REPO, "build", "leakwatch")]).stdout)
    depends = sh(["dpkg-deb", "-f", v1, "Depends"]).stdout
    dep_pkgs = {d.strip().split()[0] for d in depends.split(",")}
    for lib in needed:
        path = sh(["sh", "-c", "ldconfig -p | awk -v l=%s '$1 == l && /x86-64|aarch64/ "
                               "{print $NF; exit}'" % lib]).stdout.strip()
        real = os.path.realpath(path)
        # dpkg knows a file by the path its package ships, /lib or /usr/lib (usrmerge)
        owner = ""
        for cand in (path, real, re.sub(r"^/usr/", "/", real), "/usr" + path):
            owner = sh(["dpkg", "-S", cand], ok=False).stdout.split(":")[0]
            if owner:
                break
        check(owner in dep_pkgs, "%s (%s) comes from %r, which Depends (%s) lacks"
              % (lib, path, owner, depends.strip()))

    for simulate in (False, True):
        r = Root(t, "pkg-systemd" if simulate else "pkg")
        sh(["cp", v1, os.path.join(r.io, "v1.deb")])
        sh(["cp", v2, os.path.join(r.io, "v2.deb")])
        f = r.run(pkg_phases(r, simulate))
        round_ = "with simulated systemd" if simulate else "without systemd"

        ins = f["install"]
        run_ok(ins, "install " + round_)
        q = runof(ins, "dpkg-query")["out"]
        check(q.startswith(ver1 + " install ok installed"), "dpkg-query after install: %r" % q)
        conffiles = sorted(l.split()[0] for l in q.splitlines()[1:] if l.strip())
        want_conf = sorted(CONF + "/" + rel for rel in installed_policy_sources())
        check(conffiles == want_conf, "conffiles %s, want %s" % (conffiles, want_conf))
        files = ins["files"]
        check(files.get("/var/lib/leakwatch", {}).get("mode") == 0o700 and
              files["/var/lib/leakwatch"]["uid"] == 0, "state dir: %s" % files.get("/var/lib/leakwatch"))
        check(files.get("/usr/bin/leakwatch", {}).get("mode") == 0o755, "binary: %s" % files.get("/usr/bin/leakwatch"))
        check(files.get(WANTS, {}).get("link") == "/lib/systemd/system/" + UNIT,
              "unit not enabled: %s" % files.get(WANTS))
        check("/var/log/leakwatch" not in files, "the package made /var/log/leakwatch (the unit's LogsDirectory)")
        version, run_check = runof(ins, "leakwatch", "version"), runof(ins, "leakwatch", "run")
        verify = runof(ins, "systemd-analyze")
        check(version["out"].strip() == "leakwatch " + ver1, "installed binary: %r" % version["out"])
        check("configuration %s/leakwatch.yaml: ok" % CONF in run_check["out"], "run --check: %r" % run_check["out"])
        check(not (verify["out"] + verify["err"]).strip(), "systemd-analyze verify: %s" % verify["err"])

        up = f["upgrade"]
        run_ok(up, "upgrade " + round_)
        q = runof(up, "dpkg-query")["out"]
        check(q.startswith(ver2 + " install ok installed"), "dpkg-query after upgrade: %r" % q)
        a, b = ins["files"], up["files"]
        check(b[CONF + "/leakwatch.yaml"]["sha256"] != a[CONF + "/leakwatch.yaml"]["sha256"],
              "the administrator's edit is gone after the upgrade")
        check(b[CONF + "/policies/providers.yaml"]["sha256"] != a[CONF + "/policies/providers.yaml"]["sha256"],
              "the unmodified conffile providers.yaml was not updated by the upgrade")
        check(CONF + "/policies/checkout.yaml" in b, "the administrator's policy is gone after the upgrade")
        check("/var/lib/leakwatch/fingerprint.key" in b, "the fingerprint key is gone after the upgrade")
        check(b.get(WANTS, {}).get("link") == "/lib/systemd/system/" + UNIT, "unit not enabled after the upgrade")
        run_check = runof(up, "leakwatch", "run")
        check("configuration %s/leakwatch.yaml: ok" % CONF in run_check["out"],
              "run --check after the upgrade: %r" % run_check["out"])

        rm = f["remove"]
        run_ok(rm, "remove " + round_)
        c = rm["files"]
        check("/usr/bin/leakwatch" not in c and "/lib/systemd/system/" + UNIT not in c,
              "remove left the program: %s" % sorted(p for p in c if "leakwatch" in p))
        check(CONF + "/leakwatch.yaml" in c and "/var/lib/leakwatch/fingerprint.key" in c,
              "remove took configuration or data (only purge may)")
        q = runof(rm, "dpkg-query")["out"]
        check(q.startswith(ver2 + " deinstall ok config-files"), "after remove: %r" % q)

        pu = f["purge"]
        run_ok(pu, "purge " + round_)
        gone = sorted(p for p in pu["files"] if "leakwatch" in p)
        check(not gone, "purge left: %s" % gone)
        left = leftovers(pu)
        check(not left, "purge left in the root: %s" % left)

        if simulate:
            with open(os.path.join(r.io, "systemctl.log")) as lf:
                acts = systemctl_actions(lf.read().splitlines())
            t.note("simulated systemd was asked: %s" % acts)
            for phase, want in WANT_ACTIONS.items():
                got = acts.get(phase, [])
                check([a for a in got if a != "daemon-reload"] == want,
                      "%s: systemctl was asked %s, want %s (and daemon-reloads)" % (phase, got, want))
                for i, a in enumerate(got):
                    if a.startswith(("start", "restart")):
                        check("daemon-reload" in got[:i], "%s: %s before any daemon-reload" % (phase, a))
        else:
            check(not os.path.exists(os.path.join(r.io, "systemctl.log")), "unexpected systemctl log")
    t.note("not checked here (systemd is not PID 1): that systemd starts the unit and the agent "
           "runs under its sandbox")



# --------------------------------------------------------------------------- Kubernetes

@test(timeout=60)
def kubernetes_manifest_matches_unit(t):
    """deploy/kubernetes/daemonset.yaml grants exactly the systemd unit's capabilities, not
    privileged, in the host PID namespace; its ConfigMap's leakwatch.yaml passes run --check; the
    policy files its instructions and items name exist."""
    man = open(os.path.join(REPO, "deploy", "kubernetes", "daemonset.yaml")).read()
    unit = open(os.path.join(REPO, "deploy", "systemd", "leakwatch.service.in")).read()
    caps_unit = set(re.search(r"(?m)^CapabilityBoundingSet=(.*)$", unit).group(1).split())
    m = re.search(r"(?m)^\s+add: \[(.*)\]$", man)
    check(m, "no capabilities.add list in the manifest")
    caps_k8s = {"CAP_" + c.strip().strip('"') for c in m.group(1).split(",")}
    check(caps_k8s == caps_unit, "manifest adds %s, the unit allows %s" % (sorted(caps_k8s), sorted(caps_unit)))
    check(re.search(r'(?m)^\s+drop: \["ALL"\]$', man), "the manifest does not drop every other capability")
    check(re.search(r"(?m)^\s+hostPID: true$", man) and not re.search(r"privileged: true", man),
          "hostPID must be true and the container not privileged")
    # the ConfigMap's file: the indented block under "leakwatch.yaml: |"
    lines = man.splitlines()
    i = next(n for n, l in enumerate(lines) if l.strip() == "leakwatch.yaml: |")
    ind = len(lines[i + 1]) - len(lines[i + 1].lstrip())
    block = []
    for l in lines[i + 1:]:
        if l.strip() and len(l) - len(l.lstrip()) < ind:
            break
        block.append(l[ind:])
    conf = t.write("k8s.yaml", ("\n".join(block) + "\n").encode())
    p = sh([lw.BIN, "run", "--check", "--config", conf, "--policy", os.path.join(REPO, "policies")])
    check("configuration %s: ok" % conf in p.stdout, "run --check on the ConfigMap: %r" % p.stdout)
    for f in re.findall(r"--from-file=(\S+)", man):
        check(os.path.isfile(os.path.join(REPO, f)), "the manifest's instructions name %s, which does not exist" % f)
    for key, path in re.findall(r"- key: (\S+)\n\s+path: (\S+)", man):
        check(os.path.isfile(os.path.join(REPO, "policies", path)) and os.path.basename(path) == key,
              "projected item %s -> %s is no file of policies/" % (key, path))


# --------------------------------------------------------------------------- the reference

@test(timeout=60)
def reference_documents_every_command_option_and_key(t):
    """docs/reference.md (the man page) has a section for every command of `leakwatch --help`,
    names every option each command's --help lists, and every key of the configuration file
    (user/cmd/agentconf.c), which the shipped leakwatch.yaml carries too."""
    ref = open(os.path.join(REPO, "docs", "reference.md")).read()
    top = sh([lw.BIN, "--help"]).stdout
    cmds = re.findall(r"(?m)^  ([a-z]+) ", top.split("commands:", 1)[1])
    check(len(cmds) >= 7, "cannot read the commands from leakwatch --help: %r" % top)
    for c in cmds:
        m = re.search(r"(?ms)^### %s\n(.*?)(?=^##)" % c, ref)
        check(m, "docs/reference.md has no section for `%s`" % c)
        sec = m.group(1)
        if c == "version":
            continue
        helptext = sh([lw.BIN, c, "--help"]).stdout
        opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*[a-z]|-[a-zA-Z])\b", helptext)) - {"--help", "-h"}
        missing = sorted(o for o in opts if not re.search(r"`[^`]*(?<![\w-])%s(?![\w-])" % re.escape(o), sec))
        check(not missing, "docs/reference.md, `%s`: options of its --help not documented: %s" % (c, missing))
    src = open(os.path.join(REPO, "user", "cmd", "agentconf.c")).read()
    keys = set()
    for arr in re.findall(r"static const char \*const \w+\[\w+\] = \{([^}]*)\}", src):
        keys.update(re.findall(r'"([a-z_]+)"', arr))
    check(len(keys) >= 10, "cannot read the configuration keys from agentconf.c: %s" % keys)
    conf_sec = re.search(r"(?ms)^## CONFIGURATION FILE\n(.*?)(?=^## )", ref).group(1)
    shipped = open(os.path.join(REPO, "deploy", "leakwatch.yaml")).read()
    for k in sorted(keys):
        check(re.search(r"`(\w+\.)?%s[`.]" % k, conf_sec), "configuration key %s is not in docs/reference.md" % k)
        check(re.search(r"(?m)^[# ]*%s:" % k, shipped), "configuration key %s is not in deploy/leakwatch.yaml" % k)
