#!/usr/bin/env python3
"""Gate benchmarks' client.

handshakes: --count TLS connects + handshakes to 127.0.0.1:443 with SNI --sni;
            prints "handshakes N mean_us M p50_us P".
sends:      one TCP connection to 127.0.0.1:443 (not TLS: not provider
            traffic), waits --warmup s (the agent releases the socket), then
            send()s 64-byte writes for --seconds; prints "sends N rate R"."""
import argparse
import socket
import ssl
import statistics
import time


def handshakes(a):
    ctx = ssl.create_default_context(cafile=a.ca)
    times = []
    for _ in range(a.count):
        t = time.perf_counter()
        raw = socket.create_connection(("127.0.0.1", 443))
        s = ctx.wrap_socket(raw, server_hostname=a.sni)
        times.append(time.perf_counter() - t)
        s.close()
    print("handshakes %d mean_us %.1f p50_us %.1f" % (
        len(times), statistics.mean(times) * 1e6, statistics.median(times) * 1e6), flush=True)


def sends(a):
    s = socket.create_connection(("127.0.0.1", 443))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"GET / HTTP/1.0\r\n")  # first record: not a ClientHello
    time.sleep(a.warmup)
    buf = b"x" * 64
    n = 0
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        for _ in range(100):
            s.send(buf)
        n += 100
    print("sends %d rate %.0f" % (n, n / a.seconds), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["handshakes", "sends"])
    ap.add_argument("--ca")
    ap.add_argument("--sni", default="api.openai.com")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2.5)
    a = ap.parse_args()
    (handshakes if a.mode == "handshakes" else sends)(a)


if __name__ == "__main__":
    main()
