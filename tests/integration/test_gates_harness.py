"""Provider-gate harness (issue 3) without the agent: DNS via dnsmasq, per-SNI TLS server, cgroups,
policies, clients, malformed-input builders, cleanup. The last test proves the clients report
EPERM/EACCES from real BPF gates (a tiny connect4/sendmsg4/sk_msg program attached to the test
cgroup only), which is what the gate tests (wip_test_gates.py) rely on."""
import os
import re
import shutil
import subprocess
import tempfile
import time

import lwtest as lw
import lwgates as g
from lwtest import check, test

TTL = 11  # not dnsmasq's default: proves the TTL is configurable


def _names_in_hosts(path):
    with open(path) as f:
        return [n for n in g.CERT_NAMES + g.ANTHROPIC_CHAIN if re.search(r"\b%s\b" % re.escape(n), f.read())]


def _others(t):
    """Agent-free tests: say so when someone else's leakwatch runs meanwhile (at start and at cleanup)."""
    g.note_other_agents(t)
    lw.add_cleanup(lambda: g.note_other_agents(t), "note other agents")


@test(timeout=60)
def gates_harness_dns(t):
    _others(t)
    net = g.GateNet(t, ttl=TTL, server=False)
    cg = g.Cgroups(t).service("checkout")
    check(not _names_in_hosts(os.path.join(net.etc, "hosts")), "app hosts file names the test hosts")
    with open(os.path.join(net.etc, "resolv.conf")) as f:
        check(("nameserver %s" % g.DNS_IP) in f.read(), "app resolv.conf does not point at dnsmasq")
    want = {g.OPENAI: [g.OPENAI_IP6, g.OPENAI_IP], g.ANTHROPIC: [g.ANTHROPIC_IP], g.GEMINI: [g.GEMINI_IP],
            g.INTERNAL: [g.INTERNAL_IP]}
    for where in (None, cg):
        for name, addrs in want.items():
            got = net.resolve(name, cgroup=where)
            check(sorted(got) == sorted(addrs), "getaddrinfo(%s) in %s = %s, want %s"
                  % (name, where or "app netns", got, addrs))
        check(net.resolve(g.OPENAI, cgroup=where, family="ahostsv4") == [g.OPENAI_IP], "A of api.openai.com")
        check(net.resolve(g.OPENAI, cgroup=where, family="ahostsv6") == [g.OPENAI_IP6], "AAAA of api.openai.com")
    r = g.gai(net, g.OPENAI, cgroup=cg)
    check(r.ok and r.json["addrs"][:2] == [g.OPENAI_IP6, g.OPENAI_IP], "getaddrinfo order: %s" % r.describe())
    # the answers came from dnsmasq over the veth (not a hosts file)
    time.sleep(0.1)
    log = "\n".join(net.dnsmasq.err_lines)
    for name in want:
        check(re.search(r"query\[A\] %s from %s" % (re.escape(name), g.APP_IP), log),
              "dnsmasq log has no A query for %s from the app: %s" % (name, net.dnsmasq.stderr_tail()))
    # exact answer sections, from inside the service cgroup
    r = g.dns_query(net, g.DNS_IP, g.ANTHROPIC, cgroup=cg)
    check(r.ok, "dns query: %s" % r.describe())
    ans = [tuple(a) for a in r.json["parsed"]["answers"]]
    check(ans == [(g.ANTHROPIC, "CNAME", TTL, g.ANTHROPIC_CHAIN[1]),
                  (g.ANTHROPIC_CHAIN[1], "CNAME", TTL, g.ANTHROPIC_CHAIN[2]),
                  (g.ANTHROPIC_CHAIN[2], "A", TTL, g.ANTHROPIC_IP)], "CNAME chain answer: %s" % ans)
    r = g.dns_query(net, g.DNS_IP, g.OPENAI, qtype="AAAA", cgroup=cg)
    ans = [tuple(a) for a in r.json["parsed"]["answers"]]
    check(ans == [(g.OPENAI, "AAAA", TTL, g.OPENAI_IP6)], "AAAA answer: %s" % ans)
    for name in (g.GEMINI, g.INTERNAL):
        r = g.dns_query(net, g.DNS_IP, name)
        ans = [tuple(a) for a in r.json["parsed"]["answers"]]
        check(ans == [(name, "A", TTL, g.ADDRS[name][0])], "%s answer: %s" % (name, ans))
    r = g.dns_query(net, g.DNS_IP, "nothing-here.example.com")
    check(r.json["parsed"]["rcode"] == 3 and not r.json["parsed"]["answers"], "unknown name: %s" % r.json)


@test(timeout=90)
def gates_harness_server_and_clients(t):
    _others(t)
    net = g.GateNet(t)
    cg = g.Cgroups(t).service("checkout")
    for name in g.CERT_NAMES:
        r = g.curl(net, name, cgroup=cg)
        rec = g.check_allowed(net, r, name)
        check(("subject: CN=%s" % name) in r.stderr, "curl %s: certificate subject not %s: %s"
              % (name, name, [l for l in r.stderr.splitlines() if "subject" in l]))
        check(rec["local"] in g.dsts(name), "%s served on %s, expected one of %s" % (name, rec["local"], g.dsts(name)))
        check(rec["path"] == "/v1/lwt/" + r.marker and rec["req_id"] == r.marker, "request record %s" % rec)
        closes = [c for c in net.server.conns_since(0) if c["conn"] == rec["conn"]]
        check(closes and closes[0]["app_bytes"] > 0 and closes[0]["handshake"] and r.marker in closes[0]["app_head"],
              "close record of %s: %s" % (name, closes))
    check(not net.server.saw_marker("lwg-never-sent"), "saw_marker matches a marker never sent")
    for lib in ("urllib", "httpclient"):
        g.check_allowed(net, g.pyhttps(net, g.ANTHROPIC, cgroup=cg, lib=lib), g.ANTHROPIC)
    for ip in (g.OPENAI_IP, g.OPENAI_IP6, g.HIDDEN_IP):
        r = g.nosni(net, ip, cgroup=cg)
        rec = g.check_allowed(net, r)
        check(rec["sni"] is None and rec["local"] == g.dst_str(ip), "no-SNI request record %s" % rec)
        check(ip.upper() in [s.upper().replace(":0:0:0:0:0:", "::") for s in r.json["cert_ip_sans"]],
              "IP cert SANs %s lack %s" % (r.json["cert_ip_sans"], ip))
    # QUIC-looking datagrams are logged
    r = g.udp(net, g.ANTHROPIC_IP, cgroup=cg)
    check(r.ok, "udp: %s" % r.describe())
    deadline = time.monotonic() + 3
    while len(net.server.udp(r.marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    u = net.server.udp(r.marker)
    check(len(u) == 2 and all(x["local"] == g.dst_str(g.ANTHROPIC_IP) for x in u), "udp records %s" % u)
    # a real ClientHello (python ssl) split over 3 writes and re-framed into 2 records still works
    r = g.hello(net, g.HIDDEN_IP, g.ANTHROPIC, cgroup=cg, writes=3, records=2)
    g.check_allowed(net, r, g.ANTHROPIC)
    check(len(r.json["writes"]) == 3, "hello writes %s" % r.json)
    # the synthetic ClientHellos are parseable by OpenSSL (SNI reaches the server), with ECH too
    hellos = [g.client_hello(g.ANTHROPIC), g.client_hello(g.ANTHROPIC, ech=True)]
    m = net.server.mark()
    r = g.raw(t, net, g.OPENAI_IP, hellos, cgroup=cg, read_timeout=0.3)
    check(r.ok and all(c.get("received", 0) > 0 for c in r.json["conns"]), "raw hellos: %s" % r.describe())
    c = [net.server.conn_from(one["src"], m) for one in r.json["conns"]]
    check(all(x and x["sni"] == g.ANTHROPIC and x["raw_in"] == len(h) for x, h in zip(c, hellos)),
          "synthetic hellos (plain, ECH) not parsed by the server: %s" % c)
    # malformed ones arrive byte-exact and never complete a handshake
    bad = g.malformed_hellos(g.ANTHROPIC)
    m = net.server.mark()
    r = g.raw(t, net, g.OPENAI_IP, list(bad.values()), cgroup=cg, read_timeout=0.2)
    check(r.ok and len(r.json["conns"]) == len(bad), "raw malformed hellos: %s" % r.describe())
    for (name, data), one in zip(bad.items(), r.json["conns"]):
        rec = net.server.conn_from(one["src"], m)
        check(rec and rec["raw_in"] == len(data) and not rec["handshake"] and rec["sni"] != g.ANTHROPIC,
              "malformed hello %s: server record %s" % (name, rec))
    # the official openai SDK, through DNS and through a pinned address
    r = g.node_openai(t, net, g.OPENAI, cgroup=cg)
    rec = g.check_allowed(net, r, g.OPENAI)
    check(rec["path"] == "/v1/chat/completions", "sdk path %s" % rec["path"])
    r = g.node_openai(t, net, g.ANTHROPIC, cgroup=cg, pin=g.HIDDEN_IP)
    rec = g.check_allowed(net, r, g.ANTHROPIC)
    check(rec["local"] == g.dst_str(g.HIDDEN_IP), "pinned sdk went to %s" % rec["local"])
    # error reporting without any gate: a closed port
    for r in (g.curl(net, g.INTERNAL, cgroup=cg, port=444), g.pyhttps(net, g.INTERNAL + ":444", cgroup=cg),
              g.tcp(net, g.INTERNAL_IP, cgroup=cg, port=444), g.node_openai(t, net, g.INTERNAL + ":444", cgroup=cg)):
        check(not r.ok and r.errno == "ECONNREFUSED", "closed port: %s" % r.describe())
    check(net.server.alive(), "server died: %s" % net.server.proc.stderr_tail())


@test(timeout=30)
def gates_harness_cgroups(t):
    _others(t)
    mnt = g.cgroup2_mount()
    with open("/proc/mounts") as f:
        check(any(l.split()[1] == mnt and l.split()[2] == "cgroup2" for l in f), "mount %s" % mnt)
    net = g.GateNet(t, server=False, dns=False)
    cgs = g.Cgroups(t)
    a, b = cgs.service("checkout"), cgs.service("billing")
    check(a.kpath == "/leakwatch-test-%d/checkout" % os.getpid() and a.path == mnt + a.kpath, "paths %r" % a)
    check(a.id == os.stat(a.path).st_ino and a.id != b.id, "cgroup ids %r %r" % (a, b))
    procs = [net.spawn(["sleep", "30"], cgroup=cg) for cg in (a, b, a)]
    time.sleep(0.2)
    app_ns = net.netns_inode(net.app)
    for p, cg in zip(procs, (a, b, a)):
        check(p.alive(), "sleeper died: %s" % p.stderr_tail())
        check(g.proc_cgroup(p.pid) == cg.kpath, "pid %d in %s, want %s" % (p.pid, g.proc_cgroup(p.pid), cg.kpath))
        check(os.stat("/proc/%d/ns/net" % p.pid).st_ino == app_ns, "pid %d not in the app netns" % p.pid)
        check(os.readlink("/proc/%d/exe" % p.pid).endswith("/sleep"), "pid %d is not the command itself" % p.pid)
    check(sorted(a.pids()) == sorted([procs[0].pid, procs[2].pid]) and b.pids() == [procs[1].pid],
          "cgroup.procs: %s %s" % (a.pids(), b.pids()))
    # the spawned process sees the resolver of the app netns
    r = net.spawn_sync(["cat", "/etc/resolv.conf"], cgroup=b)
    check(r.returncode == 0 and g.DNS_IP in r.stdout, "resolv.conf in cgroup+netns: %r %r" % (r.stdout, r.stderr))


@test(timeout=60)
def gates_harness_policies(t):
    _others(t)
    d = t.path("pol")
    cgs = g.Cgroups(t)
    a, b = cgs.service("checkout"), cgs.service("billing")
    g.write_policies(d, [dict(service="checkout", cgroup=a, mode="enforce", allow=["openai"]),
                         dict(service="billing", cgroup=b.kpath, mode="monitor", allow=[])])
    check(sorted(os.listdir(d)) == ["billing.yaml", "checkout.yaml", "default.yaml", "providers.yaml"],
          "policy dir: %s" % os.listdir(d))
    with open(os.path.join(d, "checkout.yaml")) as f:
        txt = f.read()
    check(txt == 'service: "checkout"\nmatch: { cgroup: "%s" }\nmode: enforce\nallow_providers: [openai]\n'
          % a.kpath, "checkout.yaml:\n%s" % txt)
    try:
        import yaml  # python3-yaml when present; the files are plain YAML either way
    except ImportError:
        yaml = None
    if yaml:
        doc = yaml.safe_load(open(os.path.join(d, "billing.yaml")))
        check(doc == {"service": "billing", "match": {"cgroup": b.kpath}, "mode": "monitor", "allow_providers": []},
              "billing.yaml parses to %s" % doc)
        doc = yaml.safe_load(open(os.path.join(d, "default.yaml")))
        check(doc == {"default": True, "mode": "monitor", "allow_providers": "all"},
              "default.yaml parses to %s" % doc)
        cat = yaml.safe_load(open(os.path.join(d, "providers.yaml")))
        ids = {p["id"]: p["hostnames"] for p in cat["providers"]}
        for host, pid in g.PROVIDER_OF.items():
            check(host in ids.get(pid, []), "catalog: %s not listed under provider %s" % (host, pid))
        check(not any(g.INTERNAL in hs for hs in ids.values()), "internal.example.test is in the catalog")
    # the agent's own loader accepts the directory (when the binary is built)
    if os.path.exists(lw.BIN):
        r = subprocess.run([lw.BIN, "policy", "check", d], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "leakwatch policy check rejects the written policies: %s" % r.stderr.strip())
    # rewriting (what a SIGHUP test does) replaces files and drops services no longer listed
    g.write_policies(d, [dict(service="checkout", cgroup=a, mode="enforce", allow=["openai", "anthropic"])])
    check(sorted(os.listdir(d)) == ["checkout.yaml", "default.yaml", "providers.yaml"], "after rewrite: %s" % os.listdir(d))
    check("allow_providers: [openai, anthropic]" in open(os.path.join(d, "checkout.yaml")).read(), "rewrite content")


@test(timeout=60)
def gates_harness_malformed_dns(t):
    _others(t)
    net = g.GateNet(t, server=False)
    net.start_baddns()
    cg = g.Cgroups(t).service("checkout")
    strict_ok = {"good", "cname_loop", "long_chain", "unique"}
    modes = list(g.BADDNS_MODES.items())
    r = g.dns_query(net, g.BADDNS_IP, g.ANTHROPIC, cgroup=cg, qid=[(code << 8) | 7 for _, code in modes])
    check(r.ok and len(r.json["responses"]) == len(modes), "baddns: %s" % r.describe())
    for (mode, code), one in zip(modes, r.json["responses"]):
        check(one["response_len"] > 12, "baddns %s: no response delivered: %s" % (mode, one))
        resp = bytes.fromhex(one["response_hex"])
        check(resp[:2] == bytes([code, 7]), "baddns %s: wrong id" % mode)
        if mode in strict_ok:
            check("parsed" in one, "baddns %s should parse: %s" % (mode, one.get("parse_error")))
        else:
            check("parse_error" in one, "baddns %s parsed although malformed: %s" % (mode, one.get("parsed")))
    r = g.dns_query(net, g.BADDNS_IP, g.ANTHROPIC, qid=0x0001)
    check(r.json["parsed"]["answers"] == [[g.ANTHROPIC, "A", 5, g.HIDDEN_IP]], "good answer %s" % r.json)
    # the race probe: a never-seen address per answer, connected to at once; ungated -> ENETUNREACH
    u = g.BADDNS_MODES["unique"]
    r = g.dns_query(net, g.BADDNS_IP, g.ANTHROPIC, cgroup=cg, qid=[(u << 8) | i for i in (1, 2)], connect=True)
    got = [one.get("connects") for one in r.json["responses"]]
    check(got == [[[g.UNIQUE_NET + "1", "ENETUNREACH"]], [[g.UNIQUE_NET + "2", "ENETUNREACH"]]],
          "unique answers / connects: %s" % got)


@test(timeout=60)
def gates_harness_cleanup(t):
    _others(t)
    pid = os.getpid()
    # leftovers of a dead runner are removed
    dead = subprocess.Popen(["true"])
    dead.wait()
    mnt = g.cgroup2_mount()
    stale_cg = os.path.join(mnt, "leakwatch-test-%d" % dead.pid)
    os.makedirs(os.path.join(stale_cg, "svc"))
    lw._sh(["ip", "netns", "add", "lwg-app-%d" % dead.pid])
    if not os.path.isdir("/etc/netns"):
        lw.add_cleanup(lambda: os.path.isdir("/etc/netns") and not os.listdir("/etc/netns")
                       and os.rmdir("/etc/netns"), "rmdir /etc/netns")
    os.makedirs("/etc/netns/lwg-app-%d" % dead.pid, exist_ok=True)
    g.cleanup_stale()
    check(not os.path.exists(stale_cg), "stale cgroup not removed")
    check(not os.path.exists("/var/run/netns/lwg-app-%d" % dead.pid), "stale netns not removed")
    check(not os.path.exists("/etc/netns/lwg-app-%d" % dead.pid), "stale /etc/netns dir not removed")
    # everything a test creates goes away with its context
    sub = lw.Ctx("cleanup-inner")
    try:
        net = g.GateNet(sub)
        net.start_baddns()
        cg = g.Cgroups(sub).service("checkout")
        sleeper = net.spawn(["sleep", "60"], cgroup=cg)
        # a grandchild the harness never saw
        sh = net.spawn(["sh", "-c", "sleep 60 & echo $!; wait"], cgroup=cg)
        gpid = int(sh.wait_line(lambda l: l.strip().isdigit(), timeout=5))
        pids = [net.dnsmasq.pid, net.server.proc.pid, net.baddns.pid, sleeper.pid, sh.pid, gpid]
        check(all(os.path.exists("/proc/%d" % p) for p in pids), "processes not running")
        paths = ["/var/run/netns/" + net.prov, "/var/run/netns/" + net.app, net.etc, cg.path]
        check(all(os.path.exists(p) for p in paths), "setup incomplete")
    finally:
        errs = sub.close()
    check(not errs, "cleanup errors: %s" % errs)
    left = [p for p in paths if os.path.exists(p)]
    check(not left, "left behind: %s" % left)
    check(not os.path.exists(os.path.join(mnt, "leakwatch-test-%d" % pid)), "cgroup root left")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        alive = [p for p in pids if os.path.exists("/proc/%d" % p) and open("/proc/%d/stat" % p).read().split()[2] != "Z"]
        if not alive:
            break
        time.sleep(0.05)
    check(not alive, "processes still alive: %s" % alive)
    links = lw._sh(["ip", "-o", "link", "show"]).stdout.decode()
    check(("lga%d" % pid) not in links and ("lgp%d" % pid) not in links, "veth left in the root netns")


# ---------------------------------------------------------------------------- real BPF gates (no agent)

FAKE_GATE_C = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Stand-ins for the three gates, attached to one test cgroup: connect and UDP sends to
 * 10.214.0.4 are refused (EPERM); TLS writes on TCP sockets to 10.214.0.5 are dropped (EACCES). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} lwg_socks SEC(".maps");

#define IP4(d) bpf_htonl(0x0ad60000 | (d))

SEC("sockops") int lwg_sockops(struct bpf_sock_ops *s)
{
	if (s->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && s->family == 2 && s->remote_ip4 == IP4(5)) {
		__u64 k = bpf_get_socket_cookie(s);
		bpf_sock_hash_update(s, &lwg_socks, &k, BPF_ANY);
	}
	return 1;
}
SEC("sk_msg") int lwg_drop(struct sk_msg_md *m) { return SK_DROP; }
SEC("cgroup/connect4") int lwg_connect4(struct bpf_sock_addr *c) { return c->user_ip4 == IP4(4) ? 0 : 1; }
SEC("cgroup/sendmsg4") int lwg_sendmsg4(struct bpf_sock_addr *c) { return c->user_ip4 == IP4(4) ? 0 : 1; }
char _license[] SEC("license") = "GPL";
"""


def _attach_fake_gates(t, cg):
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    d = t.tmpdir()
    src, obj = os.path.join(d, "fake_gate.bpf.c"), os.path.join(d, "fake_gate.bpf.o")
    with open(src, "w") as f:
        f.write(FAKE_GATE_C)
    lw._sh([os.environ.get("CLANG", "clang"), "-g", "-O2", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_" + arch,
            "-I" + os.path.join(lw.REPO, "vmlinux", arch), "-Wall", "-c", src, "-o", obj], timeout=60)
    fs = tempfile.mkdtemp(prefix="lwg-bpffs-", dir=d)
    lw._sh(["mount", "-t", "bpf", "bpf", fs])
    lw.add_cleanup(lambda: lw._sh(["umount", fs], check_rc=False), "umount " + fs)
    os.mkdir(os.path.join(fs, "maps"))
    lw._sh(["bpftool", "prog", "loadall", obj, os.path.join(fs, "p"), "pinmaps", os.path.join(fs, "maps")])
    for typ, prog in (("sock_ops", "lwg_sockops"), ("connect4", "lwg_connect4"), ("sendmsg4", "lwg_sendmsg4")):
        lw._sh(["bpftool", "cgroup", "attach", cg.path, typ, "pinned", os.path.join(fs, "p", prog), "multi"])
        lw.add_cleanup(lambda typ=typ, prog=prog: lw._sh(
            ["bpftool", "cgroup", "detach", cg.path, typ, "pinned", os.path.join(fs, "p", prog)], check_rc=False),
            "detach " + prog)
    lw._sh(["bpftool", "prog", "attach", "pinned", os.path.join(fs, "p", "lwg_drop"), "msg_verdict",
            "pinned", os.path.join(fs, "maps", "lwg_socks")])


@test(timeout=90)
def gates_harness_clients_see_bpf_denials(t):
    _others(t)
    for tool in ("clang", "bpftool"):
        check(shutil.which(os.environ.get("CLANG", "clang") if tool == "clang" else tool),
              "%s not installed (make deps)" % tool)
    net = g.GateNet(t)
    cgs = g.Cgroups(t)
    gated, free = cgs.service("gated"), cgs.service("free")
    _attach_fake_gates(t, gated)
    # connect refused (stands in for the connect gate): EPERM, nothing reaches the server
    for run in (lambda: g.curl(net, g.ANTHROPIC, cgroup=gated),
                lambda: g.pyhttps(net, g.ANTHROPIC, cgroup=gated),
                lambda: g.pyhttps(net, g.ANTHROPIC, cgroup=gated, lib="httpclient"),
                lambda: g.nosni(net, g.ANTHROPIC_IP, cgroup=gated),
                lambda: g.node_openai(t, net, g.ANTHROPIC, cgroup=gated)):
        m = net.server.mark()
        r = run()
        g.check_denied(net, r, m, errnos={"EPERM"})
        check(not net.server.conns_since(m, timeout=0.3), "%s: server saw a connection" % r.client)
    # ClientHello dropped by sk_msg (stands in for the SNI gate): EACCES, the server gets 0 bytes
    for run in (lambda: g.curl(net, g.GEMINI, cgroup=gated),
                lambda: g.pyhttps(net, g.GEMINI, cgroup=gated),
                lambda: g.nosni(net, g.GEMINI_IP, cgroup=gated),
                lambda: g.hello(net, g.GEMINI_IP, g.GEMINI, cgroup=gated, writes=3)):
        m = net.server.mark()
        r = run()
        g.check_denied(net, r, m, errnos={"EACCES"})
        c = net.server.conns_since(m)
        check(all(x["raw_in"] == 0 for x in c), "%s: server received bytes: %s" % (r.client, c))
    # UDP/443 refused by sendmsg4: EPERM, no datagram
    m = net.server.mark()
    r = g.udp(net, g.ANTHROPIC_IP, cgroup=gated)
    check(not r.ok and r.errno == "EPERM" and r.json["phase"] == "sendto", "udp: %s" % r.describe())
    time.sleep(0.2)
    check(not net.server.udp(r.marker, m), "datagram delivered")
    # another service and other destinations are untouched
    g.check_allowed(net, g.curl(net, g.ANTHROPIC, cgroup=free), g.ANTHROPIC)
    g.check_allowed(net, g.curl(net, g.GEMINI, cgroup=free), g.GEMINI)
    g.check_allowed(net, g.curl(net, g.OPENAI, cgroup=gated), g.OPENAI)
    check(g.udp(net, g.INTERNAL_IP, cgroup=gated).ok, "udp to a non-gated address failed")
