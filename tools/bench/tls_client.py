#!/usr/bin/env python3
"""Benchmark clients.

post-loop: keep-alive HTTPS POSTs of --body bytes for --seconds; prints
           "requests N seconds S rate R" (--sni NAME: as if to that host).
rate:      writes --size-byte TLS messages at --rate per second over one
           connection for --seconds; prints "sent N"."""
import argparse
import http.client
import socket
import ssl
import time


def ctx_for(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


def post_loop(a):
    conn = http.client.HTTPSConnection(a.sni or "127.0.0.1", a.port, context=ctx_for(a.ca))
    if a.sni:
        # a provider name in the SNI and Host, the connection to loopback
        raw = socket.create_connection(("127.0.0.1", a.port))
        conn.sock = ctx_for(a.ca).wrap_socket(raw, server_hostname=a.sni)
    else:
        conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = (b"x" * 63 + b"\n") * (a.body // 64)
    n = 0
    start = time.monotonic()
    end = start + a.seconds
    while time.monotonic() < end:
        conn.request("POST", "/v1/chat/completions", body=body,
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        n += 1
    took = time.monotonic() - start
    print(f"requests {n} seconds {took:.3f} rate {n / took:.1f}", flush=True)


def rate(a):
    raw = socket.create_connection(("127.0.0.1", a.port))
    s = ctx_for(a.ca).wrap_socket(raw, server_hostname="api.openai.com")
    msg = (b"m" * (a.size - 1)) + b"\n"
    interval = 1.0 / a.rate
    n = 0
    start = time.monotonic()
    total = int(a.rate * a.seconds)
    while n < total:
        due = start + n * interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        s.sendall(msg)
        n += 1
    took = time.monotonic() - start
    s.close()
    print(f"sent {n} seconds {took:.3f} rate {n / took:.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["post-loop", "rate"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--body", type=int, default=16384)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--sni", help="post-loop: send this name as SNI and Host")
    a = ap.parse_args()
    (post_loop if a.mode == "post-loop" else rate)(a)


if __name__ == "__main__":
    main()
