#!/usr/bin/env python3
"""TLS test "provider": a threaded HTTPS/1.1 server (keep-alive), stdlib only.

Runs inside the provider network namespace. For every request it reads the body
(Content-Length or chunked), answers with a deterministic body whose size is
given by the X-Resp-Size header (seeded by X-Req-Id), and appends one JSON line
to --log:
  {"t", "peer", "method", "path", "req_id", "len", "sha256", "resp_len", "resp_sha256", "status"}

Special paths:
  /v1/chat/completions  answers a valid OpenAI chat.completion JSON whose message
                        content has X-Resp-Size characters.
  /stall                does not read the body; holds the connection open for 60 s
                        (lets a client block inside SSL_write).
"""
import argparse
import ctypes
import http.server
import json
import os
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lwcommon  # noqa: E402

_log_lock = threading.Lock()
_log_file = None


def log(rec):
    line = json.dumps(rec, sort_keys=True) + "\n"
    with _log_lock:
        _log_file.write(line)
        _log_file.flush()


def set_comm(name):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lwt-provider/1"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                data = self.rfile.read(size)
                if len(data) != size:
                    raise ConnectionError("eof in chunk")
                out += data
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ConnectionError("eof in body ({} of {})".format(len(data), n))
        return data

    def _handle(self):
        rec = {"t": time.time(), "peer": "%s:%d" % self.client_address[:2], "method": self.command,
               "path": self.path, "req_id": self.headers.get(lwcommon.H_REQ_ID, "")}
        if self.path.startswith("/stall"):
            log(dict(rec, status="stall"))
            time.sleep(60)
            self.close_connection = True
            return
        try:
            body = self._read_body()
        except Exception as e:  # client went away mid-body
            log(dict(rec, status="body-error", error=str(e)))
            self.close_connection = True
            return
        size = int(self.headers.get(lwcommon.H_RESP_SIZE) or 64)
        seed = rec["req_id"] or lwcommon.sha256(body)
        if self.path.rstrip("/").endswith("/chat/completions"):
            content = lwcommon.resp_body(seed, size).decode()
            model = "gpt-4o-mini"
            try:
                model = json.loads(body).get("model", model)
            except Exception:
                pass
            resp = json.dumps(lwcommon.chat_completion(content, model)).encode()
            ctype = "application/json"
        else:
            resp = lwcommon.resp_body(seed, size)
            ctype = "text/plain"
        rec.update(len=len(body), sha256=lwcommon.sha256(body), resp_len=len(resp),
                   resp_sha256=lwcommon.sha256(resp), status="ok")
        log(rec)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(resp)))
        self.send_header("X-Body-Sha256", rec["sha256"])
        if self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp)
        self.wfile.flush()

    do_POST = _handle
    do_PUT = _handle
    do_GET = _handle


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, ctx):
        self.ctx = ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread, never in the accept loop.
        try:
            request.settimeout(120)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                tls.settimeout(2)
                tls.unwrap()  # send close_notify (s_client treats a bare EOF as an error)
            except (OSError, ssl.SSLError, ValueError):
                pass
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass


def main():
    global _log_file
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--addr", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=443)
    a = ap.parse_args()
    set_comm("lwt-server")
    _log_file = open(a.log, "a", encoding="utf-8")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["http/1.1"])
    srv = Server((a.addr, a.port), ctx)
    print("listening %s:%d" % (a.addr, a.port), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
