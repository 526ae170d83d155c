#!/usr/bin/env python3
"""Python clients for the content-blocking tests (stdlib only).

Modes (first argument):
  one    one POST of --body-file on a new connection
  many   --count POSTs, each on a new connection; request i carries --dirty-file when bit i of
         the hex --pattern is set, else --clean-file
  keep   POST --body-file, then wait until --go-file exists, then POST --clean-file on the
         same connection (a poisoned connection must refuse the second)
  two    two keep-alive connections A and B of one thread: clean on A, --dirty-file on B,
         clean on A again, clean on B again, clean on a new connection C

Prints one JSON line: one/keep {"ok", "errno", "error", "results": [...]}, many {"results":
[[i, dirty, ok, errno], ...]}. A request is ok when the server answered 200.
"""
import argparse
import errno as errno_mod
import http.client
import json
import os
import ssl
import sys
import time


def post(conn, path, body, rid):
    conn.request("POST", path, body=body, headers={
        "Content-Type": "application/json", "X-Req-Id": rid, "Authorization": "Bearer lw-test"})
    r = conn.getresponse()
    r.read()
    return r.status == 200


def attempt(fn):
    """(ok, errno name or None, error text)"""
    try:
        return fn(), None, ""
    except OSError as e:
        en = e.errno
        # ssl wraps the socket error it hit: look for it in the text too
        if en is None or en not in errno_mod.errorcode:
            txt = str(e)
            for name in ("EACCES", "EPERM", "ECONNRESET", "EPIPE"):
                if name in txt or os.strerror(getattr(errno_mod, name)) in txt:
                    return False, name, txt
            return False, type(e).__name__, txt
        return False, errno_mod.errorcode[en], str(e)
    except (http.client.HTTPException, ValueError) as e:
        return False, type(e).__name__, str(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["one", "many", "keep", "two"])
    ap.add_argument("--host", required=True)
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--body-file")
    ap.add_argument("--clean-file")
    ap.add_argument("--dirty-file")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--pattern", default="0")
    ap.add_argument("--go-file")
    ap.add_argument("--tag", default="blk")
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.cafile)

    def new():
        return http.client.HTTPSConnection(a.host, 443, context=ctx, timeout=a.timeout)

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    if a.mode == "one":
        c = new()
        ok, en, err = attempt(lambda: post(c, a.path, read(a.body_file), a.tag))
        print(json.dumps({"ok": ok, "errno": en, "error": err[:300]}), flush=True)
        return 0 if ok else 1
    if a.mode == "keep":
        c = new()
        res = []
        res.append(attempt(lambda: post(c, a.path, read(a.body_file), a.tag + "-1")))
        print(json.dumps({"first": res[0][0]}), flush=True)
        t0 = time.monotonic()
        while not os.path.exists(a.go_file) and time.monotonic() - t0 < 30:
            time.sleep(0.02)
        res.append(attempt(lambda: post(c, a.path, read(a.clean_file), a.tag + "-2")))
        print(json.dumps({"ok": all(r[0] for r in res), "results": res}), flush=True)
        return 0
    clean, dirty = read(a.clean_file), read(a.dirty_file)
    if a.mode == "two":
        ca, cb = new(), new()
        steps = [("A", ca, clean), ("B", cb, dirty), ("A", ca, clean), ("B", cb, clean)]
        res = []
        for i, (name, c, body) in enumerate(steps):
            ok, en, _ = attempt(lambda: post(c, a.path, body, "%s-%d%s" % (a.tag, i, name)))
            res.append([name, ok, en])
        cc = new()
        ok, en, _ = attempt(lambda: post(cc, a.path, clean, a.tag + "-C"))
        res.append(["C", ok, en])
        print(json.dumps({"results": res}), flush=True)
        return 0
    bits = int(a.pattern, 16)
    results = []
    for i in range(a.count):
        d = (bits >> (i % 256)) & 1
        c = new()
        ok, en, _ = attempt(lambda: post(c, a.path, dirty if d else clean, "%s-%d" % (a.tag, i)))
        c.close()
        results.append([i, d, ok, en])
    print(json.dumps({"results": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
