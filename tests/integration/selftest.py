#!/usr/bin/env python3
"""Self-test of the harness WITHOUT the agent: namespaces, CA, test server and every client.

usage: python3 tests/integration/selftest.py [-k NAME]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lwcommon  # noqa: E402
import lwtest as lw  # noqa: E402
from lwtest import test, check  # noqa: E402


@test(timeout=120)
def harness_clients(t):
    net = t.net()
    r = lw._sh(["ip", "netns", "exec", net.app, "getent", "hosts", "api.openai.com"])
    check(r.stdout.decode().split()[0] == lw.PROV_IP, "hosts mapping: %r" % r.stdout)
    for size in (100, 40 * lw.KiB, 600 * lw.KiB):
        for kind in ("text", "bin"):
            tag = "st-%d-%s" % (size, kind)
            b = lwcommon.body(tag, size, kind)
            check(len(b) == size, "body size")
            lw.client_curl(t, net, b, tag + "-curl", 5000)
            lw.client_py(t, net, "urllib", b, tag + "-urllib", 5000)
            lw.client_py(t, net, "httpclient", b, tag + "-hc", 5000)
            lw.client_py(t, net, "raw", b, tag + "-raw", 5000)
            lw.client_node_https(t, net, b, tag + "-node", 5000)
            lw.client_s_client(t, net, b, tag + "-sc", 5000)
        x = lw.client_openai(t, net, lwcommon.text_body("sdk-%d" % size, size).decode(), "st-sdk-%d" % size, 3000)
        t.note("openai sdk body %d B for prompt %d B" % (x.body_len, size))


@test(timeout=120)
def harness_modes(t):
    net = t.net()
    ca = net.certs["ca"]
    p = net.spawn([lw.PY, lw.PYCLIENT, "parallel", "--cafile", ca, "--threads", "2", "--requests", "20"])
    p.wait_ok(60)
    b = lwcommon.body("wait", 1000)
    f = t.write("w.body", b)
    for pre in ([], ["--preconnect"]):
        p = net.spawn([lw.PY, lw.PYCLIENT, "wait", "--cafile", ca, "--body-file", f, "--req-id", "w" + str(len(pre))]
                      + pre, stdin="pipe")
        p.wait_line(lambda l: "mapped" in l)
        p.send("go\n")
        p.wait_ok(30)
    p = net.spawn([lw.PY, lw.PYCLIENT, "dlopen", "--cafile", ca, "--body-file", f, "--req-id", "dl", "--delay", "1"])
    first = p.wait_line(lambda l: "started" in l)
    check('"libssl": []' in first, "libssl mapped at start: " + first)
    p.wait_ok(30)
    # LD_LIBRARY_PATH copy
    d = t.path("libcopy")
    os.makedirs(d)
    import shutil
    for n in ("libssl.so.3", "libcrypto.so.3"):
        shutil.copy2("/usr/lib/x86_64-linux-gnu/" + n, d)
    p = net.spawn([lw.PY, lw.PYCLIENT, "wait", "--cafile", ca, "--body-file", f, "--req-id", "cp"],
                  env={"LD_LIBRARY_PATH": d}, stdin="pipe")
    p.wait_line(lambda l: "mapped" in l)
    maps = open("/proc/%d/maps" % p.pid).read()
    check(os.path.join(d, "libssl.so.3") in maps, "copy not mapped")
    check("/usr/lib/x86_64-linux-gnu/libssl.so.3" not in maps, "system libssl mapped too")
    p.send("go\n")
    p.wait_ok(30)
    # slow client killed
    p = net.spawn([lw.PY, lw.PYCLIENT, "slow", "--cafile", ca, "--req-id", "slow"])
    p.wait_line(lambda l: "sending" in l)
    import time
    time.sleep(0.5)
    p.kill()
    p = net.spawn([lw.PY, lw.PYCLIENT, "stall", "--cafile", ca, "--req-id", "stall", "--total", str(16 << 20)])
    p.wait_line(lambda l: "writing" in l)
    time.sleep(1.0)
    check(p.alive(), "stall client finished?")
    t.note(open("/proc/%d/wchan" % p.pid).read())
    p.kill()
    check(net.server_alive(), "server died")


if __name__ == "__main__":
    sys.exit(lw.main())
