"""Decode + classify in the agent (issue 4): real clients send AI requests carrying planted
personal data and secrets to the test providers; `leakwatch run` must print one alert per
request with the right provider, API and finding types/counts, and no output of the agent may
contain a planted raw value.

Clients: curl (HTTP/1.1, HTTP/2, gzip), python3 urllib, the node `openai` SDK, node http2 (several
interleaved streams on one connection). HTTP/2 goes to a node http2 server on port 8443 of the
provider namespace, next to the python HTTP/1.1 server on 443.
"""
import gzip
import json
import os
import random
import time

import lwtest as lw
from lwtest import check, test

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
POLICY = os.path.join(ROOT, "policies")
H2_PORT = 8443


# --------------------------------------------------------------------------- planted values

def luhn_complete(prefix, length, rng):
    digits = [int(c) for c in prefix] + [rng.randrange(10) for _ in range(length - len(prefix) - 1)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def iban_de(rng):
    bban = "%08d%010d" % (rng.randrange(10 ** 7, 10 ** 8), rng.randrange(10 ** 9, 10 ** 10))
    n = int(bban + "131400")  # D=13 E=14, check digits 00
    return "DE%02d%s" % (98 - n % 97, bban)


class Planted:
    """Synthetic values, different every run (nothing can be hard-coded against them)."""

    def __init__(self, seed):
        rng = random.Random(seed)
        tag = "%06x" % rng.randrange(1 << 24)
        self.email = "dana.whitfield.%s@northwind-traders.com" % tag
        card = luhn_complete("4", 16, rng)
        self.card = " ".join(card[i:i + 4] for i in range(0, 16, 4))
        self.card_digits = card
        self.ssn = "%03d-%02d-%04d" % (rng.randrange(100, 665), rng.randrange(10, 99), rng.randrange(1000, 9999))
        self.phone = "+1 415 %03d %04d" % (rng.randrange(200, 999), rng.randrange(1000, 9999))
        self.iban = iban_de(rng)
        alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        self.openai_key = "sk-proj-" + "".join(rng.choice(alnum) for _ in range(48))
        self.api_key_hdr = "sk-proj-" + "".join(rng.choice(alnum) for _ in range(48))
        self.gemini_key = "AIza" + "".join(rng.choice(alnum + "-_") for _ in range(35))

    def raws(self):
        return [self.email, self.card, self.card_digits, self.ssn, self.phone, self.iban, self.openai_key,
                self.api_key_hdr, self.gemini_key, self.ssn.replace("-", ""), self.phone.replace(" ", "")]


def chat_body(text, model="gpt-4o-mini"):
    return json.dumps({"model": model, "messages": [
        {"role": "system", "content": "You are a support assistant."},
        {"role": "user", "content": text}]}).encode()


# --------------------------------------------------------------------------- helpers

def agent(t, *extra):
    return t.agent("--stats-interval", "0", *extra, cmd=("run", "--policy", POLICY))


def alerts(evs, pid=None):
    return [e for e in evs if e.get("event") == "alert" and (pid is None or e.get("pid") == pid)]


def wait_alerts(a, pid, n=1, timeout=15):
    got = a.wait_for(lambda evs: len(alerts(evs, pid)) >= n and alerts(evs, pid), timeout=timeout,
                     what="alerts")
    check(got, "no alert for pid %s within %ss (alerts seen: %s); stderr: %s"
          % (pid, timeout, [x.get("pid") for x in alerts(a.snapshot())], a.stderr_tail()))
    return got


def types(al):
    return {f["type"]: f["count"] for f in al["findings"]}


def expect_findings(al, want, what):
    got = types(al)
    for ty, n in want.items():
        check(got.get(ty) == n, "%s: expected %d x %s, alert has %s" % (what, n, ty, got))
    for f in al["findings"]:
        check(f.get("sample") and f.get("severity") and f.get("rule"), "%s: finding lacks fields: %s" % (what, f))


def no_raw_anywhere(a, planted, stats):
    """Every stdout line and stderr line of the agent, and its stats, must be free of raw values."""
    text = "\n".join(json.dumps(e) for e in a.snapshot()) + "\n".join(a.err_lines) + json.dumps(stats)
    for raw in planted.raws():
        check(raw not in text, "a planted raw value (%d chars, starts %r) appears in the agent's output"
              % (len(raw), raw[:3]))


def h2_server(t, net):
    log = os.path.join(net.dir, "h2.log")
    p = lw.Proc(["node", os.path.join(lw.NODE_DIR, "h2_server.js"), "--cert", net.certs["cert"],
                 "--key", net.certs["key"], "--port", str(H2_PORT), "--log", log], netns=net.prov, name="h2srv")
    p.wait_line(lambda l: l.startswith("listening"), timeout=20)
    return log


def read_log(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def curl(t, net, url, body_path, headers=(), extra=()):
    argv = ["curl", "-sS", "--fail", "--cacert", net.certs["ca"], "-X", "POST", "-o", "/dev/null",
            "-H", "Content-Type: application/json", "-H", "Expect:"]
    for h in headers:
        argv += ["-H", h]
    argv += list(extra) + ["--data-binary", "@" + body_path, url]
    return net.spawn(argv, name="curl")


# --------------------------------------------------------------------------- tests

@test(timeout=120)
def alerts_curl_http1_openai_chat(t):
    """curl HTTP/1.1, OpenAI chat body: email + card + SSN; the Authorization key is not content."""
    pl = Planted("curl-h1")
    net = t.net()
    a = agent(t)
    text = ("Customer %s paid with card %s, SSN %s. Summarise the ticket." % (pl.email, pl.card, pl.ssn))
    f = t.write("body.json", chat_body(text))
    p = curl(t, net, "https://api.openai.com/v1/chat/completions", f,
             headers=["Authorization: Bearer " + pl.api_key_hdr, "X-Req-Id: curl-h1"], extra=["--http1.1"])
    p.wait_ok(30)
    al = wait_alerts(a, p.pid)[0]
    expect_findings(al, {"email": 1, "credit_card": 1, "us_ssn": 1}, "curl h1")
    check("openai_api_key" not in types(al), "the Authorization header's key was reported as leaked: %s"
          % types(al))
    check(al["provider"] == "openai" and al["host"] == "api.openai.com" and al["api"] == "openai.chat"
          and al["http"] == 1 and al["method"] == "POST" and al["path"] == "/v1/chat/completions"
          and al["model"] == "gpt-4o-mini" and al["reason"] == "classified_data" and al["comm"] == "curl",
          "alert fields wrong: %s" % al)
    check(any(f.get("field", "").startswith("messages[1]") for f in al["findings"]),
          "findings do not name the prompt field: %s" % al["findings"])
    stats = a.stop_ok()
    check(stats.get("alerts", 0) >= 1 and stats.get("requests_classified", 0) >= 1,
          "stats do not count the request/alert: %s" % stats)
    no_raw_anywhere(a, pl, stats)


@test(timeout=120)
def alerts_python_anthropic_messages(t):
    """python3 urllib, Anthropic messages body: phone + IBAN + an OpenAI key pasted into the prompt."""
    pl = Planted("py-anthropic")
    net = t.net()
    a = agent(t)
    body = json.dumps({"model": "claude-3-5-sonnet-latest", "max_tokens": 256,
                       "system": "Summarise CRM notes.",
                       "messages": [{"role": "user", "content": [
                           {"type": "text", "text": "Call back at %s, refund to %s." % (pl.phone, pl.iban)},
                           {"type": "text", "text": "Config: OPENAI_API_KEY=%s" % pl.openai_key}]}]}).encode()
    f = t.write("body.json", body)
    p = net.spawn([lw.PY, lw.PYCLIENT, "urllib", "--host", "api.anthropic.com", "--path", "/v1/messages",
                   "--cafile", net.certs["ca"], "--body-file", f, "--req-id", "py-anthropic"], name="py")
    p.wait_ok(30)
    al = wait_alerts(a, p.pid)[0]
    expect_findings(al, {"phone": 1, "iban": 1, "openai_api_key": 1}, "python anthropic")
    check(al["provider"] == "anthropic" and al["api"] == "anthropic.messages"
          and al["model"] == "claude-3-5-sonnet-latest", "alert fields wrong: %s" % al)
    stats = a.stop_ok()
    no_raw_anywhere(a, pl, stats)


@test(timeout=150)
def alerts_node_openai_sdk(t):
    """The official openai SDK (node's static OpenSSL) sends a prompt with an email and an SSN."""
    pl = Planted("node-sdk")
    net = t.net()
    a = agent(t)
    x = lw.client_openai(t, net, "Draft a reply to %s about SSN %s." % (pl.email, pl.ssn), "node-sdk", 64)
    al = wait_alerts(a, x.pid)[0]
    expect_findings(al, {"email": 1, "us_ssn": 1}, "openai sdk")
    check(al["provider"] == "openai" and al["api"] == "openai.chat" and al["comm"] == "node",
          "alert fields wrong: %s" % al)
    stats = a.stop_ok()
    no_raw_anywhere(a, pl, stats)


@test(timeout=120)
def alerts_curl_http2_gemini_gzip(t):
    """curl --http2 to Gemini generateContent with a gzip body; the ?key= query never shows."""
    pl = Planted("curl-h2")
    net = t.net()
    log = h2_server(t, net)
    a = agent(t)
    body = json.dumps({"contents": [{"role": "user", "parts": [
        {"text": "Charge card %s for order 7731 and email %s." % (pl.card, pl.email)}]}],
        "generationConfig": {"temperature": 0.2}}).encode()
    f = t.write("body.json.gz", gzip.compress(body))
    url = "https://generativelanguage.googleapis.com:%d/v1beta/models/gemini-1.5-flash:generateContent?key=%s" \
        % (H2_PORT, pl.gemini_key)
    p = curl(t, net, url, f, headers=["Content-Encoding: gzip", "X-Req-Id: curl-h2"], extra=["--http2"])
    p.wait_ok(30)
    recs = [r for r in read_log(log) if r["req_id"] == "curl-h2"]
    check(recs and recs[0]["version"] == "2.0", "the request did not go over HTTP/2: %s" % recs)
    al = wait_alerts(a, p.pid)[0]
    expect_findings(al, {"credit_card": 1, "email": 1}, "curl h2 gzip")
    check(al["http"] == 2 and al["provider"] == "google-gemini" and al["api"] == "gemini.generate"
          and al["path"] == "/v1beta/models/gemini-1.5-flash:generateContent",
          "alert fields wrong: %s" % al)
    check("google_api_key" not in types(al), "the ?key= credential was classified: %s" % types(al))
    stats = a.stop_ok()
    no_raw_anywhere(a, pl, stats)


@test(timeout=120)
def alerts_node_http2_interleaved_streams(t):
    """node http2: four streams on one connection, written in 4 KiB pieces at once so their DATA
    frames interleave; two carry PII (one gzip-encoded, 200 KiB), two are clean: exactly two alerts,
    each with its own findings."""
    pl = Planted("node-h2")
    net = t.net()
    log = h2_server(t, net)
    a = agent(t)
    filler = ("The quarterly roadmap review covers latency budgets and caching. " * 3200)
    bodies = [
        chat_body("Summarise: " + filler[:150000] + " Contact: %s." % pl.email),
        chat_body("Clean request about release notes and caching strategies."),
        chat_body("Customer SSN %s and IBAN %s need verification." % (pl.ssn, pl.iban)),
        chat_body("Another clean request: " + filler[:60000]),
    ]
    files = [t.write("b%d.json" % i, b) for i, b in enumerate(bodies)]
    argv = ["node", os.path.join(lw.NODE_DIR, "h2_client.js"), "--url",
            "https://api.openai.com:%d/v1/chat/completions" % H2_PORT, "--cafile", net.certs["ca"],
            "--req-id", "node-h2", "--token", pl.api_key_hdr]
    for f in files:
        argv += ["--body-file", f]
    p = net.spawn(argv, name="node-h2")
    p.wait_ok(60)
    check(p.json_out().get("ok"), "node http2 client failed: %s" % p.out_lines)
    check(len([r for r in read_log(log) if r["req_id"].startswith("node-h2")]) == 4, "server saw != 4 streams")
    als = wait_alerts(a, p.pid, n=2)
    time.sleep(1.0)  # a third (wrong) alert would show up by now
    als = alerts(a.snapshot(), p.pid)
    check(len(als) == 2, "expected 2 alerts (2 of 4 streams carry PII), got %d: %s"
          % (len(als), [types(x) for x in als]))
    by = sorted((types(x) for x in als), key=lambda d: sorted(d))
    check({"email": 1} in by and any(d.get("us_ssn") == 1 and d.get("iban") == 1 for d in by),
          "alerts do not match the streams' contents: %s" % by)
    for x in als:
        check(x["http"] == 2 and x["provider"] == "openai", "alert fields wrong: %s" % x)
        check("openai_api_key" not in types(x), "the authorization header was classified: %s" % types(x))
    stats = a.stop_ok()
    no_raw_anywhere(a, pl, stats)


@test(timeout=120)
def alerts_clean_and_hard_negatives_stay_quiet(t):
    """A request full of look-alikes (order numbers failing Luhn, UUIDs, hashes, timestamps,
    placeholder keys, IBAN with a broken checksum, SSN area 666) raises no alert."""
    net = t.net()
    a = agent(t)
    text = ("Order 4111 1111 1111 1112 shipped (tracking 1Z999AA10123456784). Request id "
            "3f2b8c1e-9d4a-4f6b-8e2a-7c1d5e9f0a3b, commit 9fceb02d0ae598e95dc970b74767f19372d61af8, "
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, ts 1732589912345, "
            "key sk-xxxxxxxxxxxxxxxxxxxxxxxx or YOUR_API_KEY, AKIAIOSFODNN7EXAMPLE, IBAN DE00123456781234567890, "
            "SSN 666-12-3456, version 10.4.22, call 2024-11-26 at 10:30.")
    f = t.write("body.json", chat_body(text))
    p = curl(t, net, "https://api.openai.com/v1/chat/completions", f, headers=["X-Req-Id: clean"])
    p.wait_ok(30)
    ok = a.wait_for(lambda evs: any(e.get("event") == "provider_connection" and e.get("pid") == p.pid
                                    for e in evs), timeout=10)
    check(ok, "no provider_connection event for the clean request")
    stats = a.stop_ok()
    check(not alerts(a.snapshot(), p.pid), "hard negatives raised an alert: %s"
          % [types(x) for x in alerts(a.snapshot(), p.pid)])
    check(stats.get("requests_classified", 0) >= 1, "the clean request was not classified: %s" % stats)
