#!/usr/bin/env python3
"""Python TLS clients for the integration tests (stdlib only).

Modes (first argument):
  urllib      one POST with urllib.request
  httpclient  one or more POSTs with http.client.HTTPSConnection (keep-alive)
  raw         one POST written with a single SSLSocket.sendall(headers + body)
  slow        POST with a large Content-Length, body written in small pieces with pauses
              (meant to be SIGKILLed half way)
  stall       POST /stall: one huge sendall the server never reads (blocks inside SSL_write)
  parallel    N threads, each one keep-alive connection doing M requests (lwcommon.parallel_body)
  wait        import ssl, print "mapped", wait for a line on stdin, then POST
              (--preconnect: finish the TLS handshake before waiting)
  dlopen      sleep --delay seconds without ssl loaded, then import ssl and POST

Every mode prints one JSON line {"ok": true, ...} on success to stdout.
ssl/http modules are imported lazily so `dlopen` really maps libssl late.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lwcommon  # noqa: E402  (hashlib only: maps libcrypto, not libssl)


def out(**kw):
    print(json.dumps(kw), flush=True)


def ctx(a):
    import ssl
    c = ssl.create_default_context(cafile=a.cafile)
    return c


def headers(a, n, extra=None):
    h = {lwcommon.H_REQ_ID: a.req_id, lwcommon.H_RESP_SIZE: str(a.resp_size),
         "Content-Type": "application/octet-stream", "Content-Length": str(n)}
    if extra:
        h.update(extra)
    return h


def read_body(a):
    with open(a.body_file, "rb") as f:
        return f.read()


def do_urllib(a):
    import urllib.request
    body = read_body(a)
    req = urllib.request.Request("https://%s:%d%s" % (a.host, a.port, a.path), data=body,
                                 headers=headers(a, len(body)), method="POST")
    with urllib.request.urlopen(req, context=ctx(a), timeout=60) as r:
        data = r.read()
        out(ok=True, status=r.status, resp_len=len(data), resp_sha256=lwcommon.sha256(data),
            body_sha256=r.headers.get("X-Body-Sha256"))


def do_httpclient(a):
    import http.client
    body = read_body(a)
    conn = http.client.HTTPSConnection(a.host, a.port, context=ctx(a), timeout=60)
    res = []
    for i in range(a.count):
        conn.request("POST", a.path, body=body, headers=headers(a, len(body)))
        r = conn.getresponse()
        data = r.read()
        res.append(dict(status=r.status, resp_len=len(data), resp_sha256=lwcommon.sha256(data),
                        body_sha256=r.headers.get("X-Body-Sha256")))
    conn.close()
    out(ok=True, **res[0]) if a.count == 1 else out(ok=True, results=res)


def http_head(a, n, path=None, extra=None):
    h = headers(a, n, extra)
    lines = ["POST %s HTTP/1.1" % (path or a.path), "Host: %s" % a.host]
    lines += ["%s: %s" % kv for kv in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def tls_connect(a):
    import socket
    s = socket.create_connection((a.host, a.port), timeout=60)
    return ctx(a).wrap_socket(s, server_hostname=a.host)


def read_response(t):
    """Minimal HTTP/1.1 response reader on a TLS socket (Content-Length only)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = t.recv(65536)
        if not d:
            raise ConnectionError("eof in response head")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        d = t.recv(65536)
        if not d:
            raise ConnectionError("eof in response body")
        rest += d
    return status, rest[:n]


def do_raw(a):
    body = read_body(a)
    t = tls_connect(a)
    t.sendall(http_head(a, len(body), extra={"Connection": "close"}) + body)
    status, data = read_response(t)
    t.close()
    out(ok=True, status=status, resp_len=len(data), resp_sha256=lwcommon.sha256(data))


def do_slow(a):
    t = tls_connect(a)
    total = a.total
    t.sendall(http_head(a, total))
    out(state="sending", pid=os.getpid())
    piece = lwcommon.text_body(a.req_id, a.piece)
    sent = 0
    while sent < total:
        n = min(len(piece), total - sent)
        t.sendall(piece[:n])
        sent += n
        time.sleep(a.pause)
    status, data = read_response(t)
    out(ok=True, status=status)


def do_stall(a):
    t = tls_connect(a)
    big = lwcommon.text_body(a.req_id, a.total)
    out(state="writing", pid=os.getpid())
    t.sendall(http_head(a, len(big), path="/stall") + big)  # blocks: the server never reads
    out(ok=True)


def do_parallel(a):
    import http.client
    errors = []
    tids = {}

    def worker(w):
        tids[w] = threading.get_native_id()
        try:
            conn = http.client.HTTPSConnection(a.host, a.port, context=ctx(a), timeout=120)
            for r in range(a.requests):
                body = lwcommon.parallel_body(w, r)
                h = {lwcommon.H_REQ_ID: "par-%d-%d" % (w, r),
                     lwcommon.H_RESP_SIZE: str(lwcommon.parallel_resp_size(w, r)),
                     "Content-Type": "text/plain"}
                conn.request("POST", "/v1/par", body=body, headers=h)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200 or resp.headers.get("X-Body-Sha256") != lwcommon.sha256(body):
                    errors.append("w%d r%d: bad response %s" % (w, r, resp.status))
                    return
                if a.interval:
                    time.sleep(a.interval)
            conn.close()
        except Exception as e:  # noqa
            errors.append("w%d: %r" % (w, e))

    ths = [threading.Thread(target=worker, args=(a.worker_base + i,)) for i in range(a.threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errors:
        out(ok=False, errors=errors[:10])
        sys.exit(1)
    out(ok=True, workers=[a.worker_base + i for i in range(a.threads)], tids=tids)


def ssl_maps():
    with open("/proc/self/maps") as f:
        return sorted({l.split()[-1] for l in f if "libssl" in l})


def do_wait(a):
    import ssl  # noqa: F401  maps libssl now
    import http.client
    body = read_body(a)
    conn = http.client.HTTPSConnection(a.host, a.port, context=ctx(a), timeout=60)
    if a.preconnect:
        conn.connect()
    out(state="mapped", pid=os.getpid(), libssl=ssl_maps(), connected=bool(a.preconnect))
    line = sys.stdin.readline()
    if not line:
        sys.exit(3)
    conn.request("POST", a.path, body=body, headers=headers(a, len(body)))
    r = conn.getresponse()
    data = r.read()
    conn.close()
    out(ok=True, status=r.status, resp_len=len(data), resp_sha256=lwcommon.sha256(data),
        body_sha256=r.headers.get("X-Body-Sha256"))


def do_dlopen(a):
    out(state="started", pid=os.getpid(), libssl=ssl_maps())
    time.sleep(a.delay)
    do_httpclient(a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--host", default="api.openai.com")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--path", default="/v1/lwt")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--body-file")
    ap.add_argument("--req-id", default="req")
    ap.add_argument("--resp-size", type=int, default=64)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--total", type=int, default=4 << 20)
    ap.add_argument("--piece", type=int, default=16384)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--worker-base", type=int, default=0)
    ap.add_argument("--preconnect", action="store_true")
    ap.add_argument("--interval", type=float, default=0.0)
    ap.add_argument("--delay", type=float, default=1.5)
    a = ap.parse_args()
    {"urllib": do_urllib, "httpclient": do_httpclient, "raw": do_raw, "slow": do_slow,
     "stall": do_stall, "parallel": do_parallel, "wait": do_wait, "dlopen": do_dlopen}[a.mode](a)


if __name__ == "__main__":
    main()
