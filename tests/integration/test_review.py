"""The security team's desk (issue 6, first slice): every alert is stored (SQLite, the agent's
state dir) with masked evidence only; `leakwatch alerts list/show/ack/export` review it, an ack
survives restarts, identical leaks merge into one alert with a count, a kill -9 in a burst loses
no alert the agent printed, and `leakwatch inventory` counts the traffic the test generated,
including a provider reached over TLS nobody could read (opaque).
"""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import time

import lwtest as lw
import lwgates as g
from lwtest import check, test
from test_block import BLOCKCLIENT, Setup, chat, client_failed, luhn_card

PLANT_DOMAIN = "northwind-traders.com"


def email(rng):
    return "dana.%06x@%s" % (rng.randrange(1 << 24), PLANT_DOMAIN)


def cli(*args, ok=True):
    p = subprocess.run([lw.BIN] + list(args), capture_output=True, text=True, timeout=60)
    if ok:
        check(p.returncode == 0, "leakwatch %s exited %d: %s" % (" ".join(args), p.returncode, p.stderr[-400:]))
    return p


def db_of(s):
    return os.path.join(s.agent.state_dir, "leakwatch.db")


def listed(db, *extra):
    p = cli("alerts", "list", "--db", db, "--format", "json", "--limit", "0", *extra)
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def restart(s):
    s.agent.stop_ok()
    s.agent = g.GateAgent(s.t, s.pol, args=("--state-dir", s.agent.state_dir))


@test(timeout=180)
def review_store_list_show_ack_merge(t):
    """One request with PII -> one stored alert that list/show display; ack persists over an agent
    restart; the same leak sent again merges into that alert (count), a different one does not."""
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    afile = t.path("alerts.jsonl")
    s.agent = g.GateAgent(t, s.pol, args=("--alerts-file", afile))
    rng = random.Random()
    mail, card = email(rng), luhn_card(rng)
    body = s.body("pii.json", chat("Refund %s, card %s, order 7731" % (mail, card)))
    p = s.py("desk", "one", body_file=body, tag="pii")
    rc, js = client_failed(p)
    check(js and js["ok"], "request failed: %s" % js)
    al = s.wait_alert(p.pid)
    db = db_of(s)
    check(oct(os.stat(db).st_mode & 0o777) == oct(0o600), "store mode %o" % (os.stat(db).st_mode & 0o777))
    rows = listed(db)
    check(len(rows) == 1, "expected 1 stored alert, got %d: %s" % (len(rows), rows))
    row = rows[0]
    check(row["service"] == "desk" and row["provider"] == "openai" and row["count"] == 1
          and row["status"] == "open", "stored alert wrong: %s" % row)
    check({f["type"] for f in row["findings"]} == {f["type"] for f in al["findings"]},
          "stored findings differ from the printed alert")
    check(all(f.get("fingerprint") for f in row["findings"]), "findings lack keyed fingerprints")
    check(al.get("id") == row["id"] and al.get("hostname") == socket.gethostname(),
          "printed alert lacks the store id / this machine's name: %s" % {k: al.get(k) for k in ("id", "hostname")})
    with open(afile) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    check(len(lines) == 1 and lines[0] == al and os.stat(afile).st_mode & 0o777 == 0o600,
          "alerts file: %d lines, mode %o" % (len(lines), os.stat(afile).st_mode & 0o777))
    table = cli("alerts", "list", "--db", db).stdout
    check("desk" in table and "openai" in table and max(len(l) for l in table.splitlines()) <= 80,
          "table output wrong or wider than 80 columns:\n%s" % table)
    show = cli("alerts", "show", str(row["id"]), "--db", db).stdout
    check("credit_card" in show and "email" in show, "show lacks the findings:\n%s" % show)
    cli("alerts", "ack", str(row["id"]), "--note", "refund ticket, customer informed", "--db", db)
    restart(s)
    rows = listed(db)
    check(len(rows) == 1 and rows[0]["status"] == "acked" and rows[0]["note"].startswith("refund"),
          "ack did not persist over a restart: %s" % rows)
    # the same leak twice more: merged (not printed again); a new value: a new alert
    for i in range(2):
        p = s.py("desk", "one", body_file=body, tag="again%d" % i)
        client_failed(p)
    other = s.body("other.json", chat("Refund %s please" % email(rng)))
    p = s.py("desk", "one", body_file=other, tag="other")
    client_failed(p)
    s.wait_alert(p.pid)
    # the acked alert is closed: the two repeats after the ack open one new alert (count 2),
    # the other leak its own
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = listed(db)
        if len(rows) == 3 and sum(r["count"] for r in rows) == 4:
            break
        time.sleep(0.2)
    got = sorted((r["status"], r["count"]) for r in rows)
    check(got == [("acked", 1), ("open", 1), ("open", 2)], "rows after the repeats: %s" % got)
    stats = s.agent.stop_ok()
    check(stats.get("alerts_merged") == 1, "alerts_merged %s, expected 1" % stats.get("alerts_merged"))
    export = cli("alerts", "export", "--format", "csv", "--db", db).stdout
    check(export.count("\n") >= 3 and "desk" in export, "csv export:\n%s" % export)
    raws = [mail, card, card.replace(" ", "")]
    with open(db, "rb") as f:
        blob = f.read()
    for w in (db + "-wal",):
        if os.path.exists(w):
            with open(w, "rb") as f:
                blob += f.read()
    text = table + show + export + json.dumps(rows) + "\n".join(s.agent.err_lines) + \
        "\n".join(json.dumps(e) for e in s.agent.snapshot())
    for r in raws:
        check(r not in text and r.encode() not in blob, "a planted raw value reached a sink")


@test(timeout=180)
def review_repeats_merge_with_count(t):
    """The same leak sent 5 times within the window is one stored alert with count 5, printed once."""
    s = Setup(t, {"desk": ("monitor", "")})
    body = s.body("pii.json", chat("Write to %s about the invoice" % email(random.Random())))
    pids = []
    for i in range(5):
        p = s.py("desk", "one", body_file=body, tag="rep%d" % i)
        client_failed(p)
        pids.append(p.pid)
    s.wait_alert(pids[0])
    db = db_of(s)
    deadline = time.monotonic() + 10
    rows = []
    while time.monotonic() < deadline:
        rows = listed(db)
        if rows and rows[0]["count"] == 5:
            break
        time.sleep(0.2)
    check(len(rows) == 1 and rows[0]["count"] == 5, "expected one alert with count 5: %s"
          % [(r["id"], r["count"]) for r in rows])
    printed = [e for e in s.agent.snapshot() if e.get("event") == "alert"]
    check(len(printed) == 1, "%d alert lines printed for 5 identical leaks" % len(printed))
    s.agent.stop_ok()


@test(timeout=240)
def review_kill9_in_a_burst_loses_nothing_printed(t):
    """kill -9 of the agent during a burst of distinct alerts: the store opens cleanly afterwards
    and every alert the agent printed (it prints after the commit) is in it."""
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    # no merging: every alert is a row of its own
    s.agent = g.GateAgent(t, s.pol, args=("--dedupe-window", "0"))
    rng = random.Random()
    procs = []
    for k in range(3):
        clean = s.body("c%d.json" % k, chat("hello %d" % k))
        dirty = s.body("d%d.json" % k, chat("Reach %s or %s" % (email(rng), email(rng))))
        procs.append(s.py("desk", "many", count=200, pattern="f" * 64, clean_file=clean, dirty_file=dirty,
                          tag="burst%d" % k))
    s.agent.wait_for(lambda evs: len([e for e in evs if e.get("event") == "alert"]) >= 20, 60, "alerts")
    s.agent.p.send_signal(signal.SIGKILL)
    s.agent.p.wait(10)
    for p in procs:
        p.kill()
    printed = [e for e in s.agent.snapshot() if e.get("event") == "alert"]
    db = db_of(s)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "store damaged after kill -9")
    stored = [json.loads(r[0]) for r in con.execute("SELECT json FROM alerts")]
    con.close()
    ident = {(x["ts"], x["pid"], x["path"]) for x in stored}
    missing = [e for e in printed if (e["ts"], e["pid"], e["path"]) not in ident]
    check(not missing, "%d of %d printed alerts are not in the store" % (len(missing), len(printed)))
    t.note("%d alerts printed before kill -9, all stored" % len(printed))


@test(timeout=180)
def review_inventory_matches_traffic(t):
    """N requests from one service to OpenAI's chat endpoint, and a TLS connection to Anthropic
    that carries nothing readable: the inventory shows both, the first with the right counts,
    the second as opaque."""
    s = Setup(t, {"desk": ("monitor", "")})
    n = 7
    bodies = []
    for i in range(n):
        b = chat("Summarise ticket %d for the customer" % i)
        bodies.append(len(b))
        f = s.body("b%d.json" % i, b)
        p = s.py("desk", "one", body_file=f, tag="inv%d" % i)
        rc, js = client_failed(p)
        check(js and js["ok"], "request %d failed: %s" % (i, js))
    r = g.raw(t, s.net, g.ANTHROPIC_IP, g.client_hello(g.ANTHROPIC), cgroup=s.cg["desk"])
    s.agent.wait_event(lambda e: e.get("pid") == r.pid and e.get("provider") == "anthropic", 5)
    db = db_of(s)
    s.agent.stop_ok()  # flushes the inventory
    rows = [json.loads(l) for l in cli("inventory", "--db", db, "--format", "json").stdout.splitlines()]
    chatrow = [x for x in rows if x["service"] == "desk" and x["provider"] == "openai"
               and x["endpoint"] == "POST /v1/chat/completions"]
    check(len(chatrow) == 1, "no single chat row in the inventory: %s" % rows)
    c = chatrow[0]
    check(c["requests"] == n and c["model"] == "gpt-4o-mini" and c["bytes_out"] == sum(bodies)
          and c["bytes_in"] > 0 and not c["opaque"], "chat row counts wrong: %s (bodies %d bytes)"
          % (c, sum(bodies)))
    opaque = [x for x in rows if x["service"] == "desk" and x["provider"] == "anthropic"]
    check(opaque and opaque[0]["opaque"] and opaque[0]["connections"] >= 1,
          "anthropic connection not in the inventory as opaque: %s" % rows)
    table = cli("inventory", "--db", db).stdout
    check(max(len(l) for l in table.splitlines()) <= 80 and "opaque" in table,
          "inventory table wider than 80 columns or without the opaque row:\n%s" % table)


@test(timeout=150)
def review_rate_limit_counts_what_it_suppresses(t):
    """Past --rate-limit alerts a minute from one service, alerts are counted, not stored or
    printed; another service keeps its own budget."""
    s = Setup(t, {"desk": ("monitor", ""), "other": ("monitor", "")}, start=False)
    s.agent = g.GateAgent(t, s.pol, args=("--rate-limit", "3", "--dedupe-window", "0"))
    rng = random.Random()
    clean = s.body("clean.json", chat("nothing to see"))
    dirty = s.body("dirty.json", chat("Reach %s" % email(rng)))
    p = s.py("desk", "many", count=8, pattern="ff", clean_file=clean, dirty_file=dirty, tag="rl")
    client_failed(p)
    q = s.py("other", "one", body_file=dirty, tag="rl-other")
    client_failed(q)
    s.wait_alert(q.pid)
    stats = s.agent.stop_ok()
    desk = [e for e in s.agent.snapshot() if e.get("event") == "alert" and e.get("service") == "desk"]
    check(len(desk) == 3 and stats.get("alerts_suppressed") == 5,
          "desk: %d alerts printed, %s suppressed (expected 3 and 5)" % (len(desk), stats.get("alerts_suppressed")))
    rows = listed(os.path.join(s.agent.state_dir, "leakwatch.db"))
    check(sorted(r["service"] for r in rows) == ["desk"] * 3 + ["other"], "stored: %s"
          % [r["service"] for r in rows])
    check(any("over 3 alerts a minute" in l for l in s.agent.err_lines), "no warning about the limit")


@test(timeout=120)
def review_syslog_rfc5424(t):
    """--syslog udp://127.0.0.1:PORT: every printed alert arrives as one RFC 5424 message
    (facility auth, the alert's JSON as the UTF-8 message), masked like everything else."""
    import re
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    lw.add_cleanup(rx.close, "syslog receiver")
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    s.agent = g.GateAgent(t, s.pol, args=("--syslog", "udp://127.0.0.1:%d" % rx.getsockname()[1]))
    mail = email(random.Random())
    body = s.body("pii.json", chat("Write to %s" % mail))
    p = s.py("desk", "one", body_file=body, tag="sys")
    client_failed(p)
    al = s.wait_alert(p.pid)
    msg = rx.recv(65536)
    m = re.match(rb"^<(\d+)>1 (\S+) (\S+) leakwatch (\d+) alert - \xef\xbb\xbf(\{.*\})$", msg, re.S)
    check(m, "not an RFC 5424 message: %r" % msg[:120])
    check(int(m.group(1)) == 4 * 8 + 4 and m.group(3).decode() == socket.gethostname()
          and int(m.group(4)) == s.agent.pid, "header fields wrong: %r" % msg[:80])
    check(json.loads(m.group(5)) == al, "the syslog message is not the printed alert")
    check(mail.encode() not in msg, "a raw value reached syslog")
    stats = s.agent.stop_ok()
    check(stats.get("syslog_sent") == 1 and stats.get("syslog_failed") == 0, "syslog counters: %s"
          % {k: v for k, v in stats.items() if k.startswith("syslog")})


class Receiver:
    """An HTTP receiver on loopback for the webhook: records each POST body; `delay` slows it."""

    def __init__(self, port=0, delay=0.0):
        import http.server
        import threading
        got = self.got = []
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                time.sleep(rcv.delay)
                got.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.delay = delay
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        lw.add_cleanup(self.close, "webhook receiver")

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def free_port():
    with socket.socket() as x:
        x.bind(("127.0.0.1", 0))
        return x.getsockname()[1]


@test(timeout=150)
def review_webhook_retries_until_the_receiver_is_up(t):
    """--webhook: with the receiver down the alert is still printed at once and the delivery is
    retried with backoff; once the receiver is up it gets exactly the printed alert."""
    port = free_port()
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    s.agent = g.GateAgent(t, s.pol, args=("--webhook", "http://127.0.0.1:%d/hook" % port))
    mail = email(random.Random())
    body = s.body("pii.json", chat("Write to %s" % mail))
    p = s.py("desk", "one", body_file=body, tag="wh")
    client_failed(p)
    al = s.wait_alert(p.pid, timeout=5)
    time.sleep(1.2)  # at least two failed attempts (0.5 s, then 1 s apart)
    rcv = Receiver(port)
    deadline = time.monotonic() + 10
    while not rcv.got and time.monotonic() < deadline:
        time.sleep(0.1)
    check(len(rcv.got) == 1 and json.loads(rcv.got[0]) == al, "receiver got %r" % rcv.got[:1])
    check(mail.encode() not in rcv.got[0], "a raw value reached the webhook")
    stats = s.agent.stop_ok()
    check(stats.get("webhook_sent") == 1 and stats.get("webhook_retries", 0) >= 1
          and stats.get("webhook_dropped") == 0, "webhook counters: %s"
          % {k: v for k, v in stats.items() if k.startswith("webhook")})


@test(timeout=150)
def review_webhook_slow_receiver_never_holds_the_agent(t):
    """A receiver that takes 3 s per alert: the agent prints every alert at once regardless, and at
    exit each alert is accounted for (sent, failed or dropped)."""
    rcv = Receiver(delay=3.0)
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    s.agent = g.GateAgent(t, s.pol, args=("--webhook", "http://127.0.0.1:%d/hook" % rcv.port,
                                          "--dedupe-window", "0"))
    rng = random.Random()
    t0 = time.monotonic()
    pids = []
    for i in range(3):
        f = s.body("p%d.json" % i, chat("Write to %s" % email(rng)))
        p = s.py("desk", "one", body_file=f, tag="slow%d" % i)
        client_failed(p)
        pids.append(p.pid)
    for pid in pids:
        s.wait_alert(pid, timeout=5)
    took = time.monotonic() - t0
    check(took < 8, "3 alerts took %.1fs to print behind a slow webhook" % took)
    stats = s.agent.stop_ok()
    ws = {k: stats.get(k) for k in ("webhook_sent", "webhook_failed", "webhook_dropped")}
    check(sum(ws.values()) == 3, "every alert accounted for: %s" % ws)
    t.note("slow receiver: %s" % ws)


@test(timeout=120)
def review_sinks_from_the_config_file(t):
    """Sinks chosen in the configuration file (--config): the alerts file and the syslog target
    from the file receive the alert; a malformed file stops the agent with FILE:LINE: reason."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    lw.add_cleanup(rx.close, "syslog receiver")
    bad = t.write("bad.yaml", b"alerts:\n  dedupe_window: soon\n  colour: red\n")
    p = subprocess.run([lw.BIN, "run", "--config", bad, "--state-dir", t.path("st0")],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 1 and bad + ":2: dedupe_window: expected a whole number" in p.stderr
          and bad + ":3:" in p.stderr, "malformed config: rc %d, stderr %s" % (p.returncode, p.stderr[-300:]))
    s = Setup(t, {"desk": ("monitor", "")}, start=False)
    afile = t.path("from-config.jsonl")
    conf = t.write("leakwatch.yaml", ("alerts:\n  file: %s\n  syslog: udp://127.0.0.1:%d\n"
                                      "  dedupe_window: 0\n" % (afile, rx.getsockname()[1])).encode())
    s.agent = g.GateAgent(t, s.pol, args=("--config", conf))
    body = s.body("pii.json", chat("Write to %s" % email(random.Random())))
    q = s.py("desk", "one", body_file=body, tag="conf")
    client_failed(q)
    al = s.wait_alert(q.pid)
    msg = rx.recv(65536)
    check(json.loads(msg.split(b"\xef\xbb\xbf", 1)[1]) == al,
          "syslog from the config file did not get the alert: %r" % msg[:100])
    with open(afile) as f:
        check([json.loads(l) for l in f if l.strip()] == [al], "alerts file from the config file")
    s.agent.stop_ok()


@test(timeout=120)
def review_provider_not_allowed_is_a_stored_alert(t):
    """A provider the service may not use: the refused connection is an alert too (reason
    provider_not_allowed, action block, stage gate), stored and listed; repeats merge."""
    s = Setup(t, {"desk": ("enforce", "allow_providers: [openai]\n")})
    clean = s.body("c.json", chat("hello"))
    for i in range(3):
        p = s.py("desk", "one", host=g.ANTHROPIC, path="/v1/messages", body_file=clean, tag="deny%d" % i)
        rc, js = client_failed(p)
        check(js and not js["ok"], "request to a provider not allowed went through: %s" % js)
    deadline = time.monotonic() + 10
    rows = []
    while time.monotonic() < deadline:
        rows = listed(db_of(s), "--provider", "anthropic")
        if rows and rows[0]["count"] == 3:
            break
        time.sleep(0.2)
    check(len(rows) == 1 and rows[0]["count"] == 3 and rows[0]["reason"] == "provider_not_allowed"
          and rows[0]["action"] == "block" and rows[0]["stage"] == "gate" and rows[0]["service"] == "desk",
          "stored gate alert: %s" % rows)
    s.agent.stop_ok()
