#!/usr/bin/env python3
"""Gate benchmarks' peer on 127.0.0.1:443: completes TLS handshakes (one
certificate for every name) and drains plain TCP connections."""
import socket
import ssl
import sys
import threading


def serve(ctx, c):
    try:
        first = c.recv(1, socket.MSG_PEEK)
        if first == b"\x16":
            with ctx.wrap_socket(c, server_side=True) as s:
                while s.recv(65536):
                    pass
        else:
            while c.recv(65536):
                pass
    except OSError:
        pass
    finally:
        c.close()


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    ls = socket.create_server(("127.0.0.1", 443), backlog=256)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(ctx, c), daemon=True).start()


if __name__ == "__main__":
    main()
