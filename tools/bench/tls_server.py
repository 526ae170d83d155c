#!/usr/bin/env python3
"""Benchmark peer: an HTTPS/1.1 keep-alive server that answers every POST
with a small body, and a raw TLS sink that reads and counts bytes."""
import argparse
import http.server
import socket
import socketserver
import ssl
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        # headers and body go out in separate writes: without NODELAY, Nagle
        # and delayed ACKs cap the loop at ~25 requests/s
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def sink(ctx, port):
    ls = socket.create_server(("127.0.0.1", port), reuse_port=False)

    def serve(c):
        try:
            with ctx.wrap_socket(c, server_side=True) as s:
                while s.recv(65536):
                    pass
        except OSError:
            pass

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--sink-port", type=int, required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    threading.Thread(target=sink, args=(ctx, a.sink_port), daemon=True).start()
    srv = Server(("127.0.0.1", a.http_port), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
