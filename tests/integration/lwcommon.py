"""Deterministic payloads shared by the test server, the python clients and the tests.

Stdlib only; imported by processes that run inside the test network namespaces,
so it must not import anything from lwtest.
"""
import hashlib

# Headers the test server understands.
H_REQ_ID = "X-Req-Id"        # free-form id, echoed into the server log
H_RESP_SIZE = "X-Resp-Size"  # size of the response body the server returns

_FILLER = "lwt line {:06d} {} café über naïve 日本語 テスト ✓ → plain ascii text follows abcdefghij\n"


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def stream_bytes(seed, n):
    """n pseudo-random bytes derived from seed (sha256 in counter mode)."""
    seed_b = seed.encode() if isinstance(seed, str) else bytes(seed)
    out = bytearray()
    ctr = 0
    while len(out) < n:
        out += hashlib.sha256(seed_b + b"/" + str(ctr).encode()).digest()
        ctr += 1
    return bytes(out[:n])


def resp_body(seed, n):
    """Response body of the test server: n bytes of printable ASCII derived from seed."""
    seed_b = seed.encode() if isinstance(seed, str) else bytes(seed)
    out = bytearray()
    ctr = 0
    while len(out) < n:
        out += hashlib.sha256(seed_b + b"#" + str(ctr).encode()).hexdigest().encode()
        out += b"\n" if ctr % 2 else b""
        ctr += 1
    return bytes(out[:n])


def text_body(tag, n):
    """Exactly n bytes of valid UTF-8 text (with multi-byte characters) starting with a marker."""
    head = "LWT-BODY-{}-BEGIN\n".format(tag)
    parts = [head]
    size = len(head.encode())
    i = 0
    while size < n:
        line = _FILLER.format(i, tag)
        parts.append(line)
        size += len(line.encode())
        i += 1
    b = "".join(parts).encode()
    if len(b) <= n:
        return b
    # cut at a character boundary, pad with ASCII to exactly n bytes
    cut = n
    while cut > 0 and (b[cut] & 0xC0) == 0x80:
        cut -= 1
    return b[:cut] + b"." * (n - cut)


def binary_body(tag, n):
    """Exactly n bytes that are not valid UTF-8 (forces base64 in the trace output)."""
    head = "LWT-BIN-{}-".format(tag).encode()
    body = head + b"\xff\xfe\x00" + stream_bytes(tag, max(0, n))
    return body[:n]


def body(tag, n, kind="text"):
    return text_body(tag, n) if kind == "text" else binary_body(tag, n)


def parallel_body(worker, req):
    """Body of request `req` of parallel worker `worker`: unique marker + variable filler."""
    marker = "LWT-PAR-w{:02d}-r{:04d}-".format(worker, req)
    size = 200 + (req * 7919 + worker * 104729) % 6000
    fill = resp_body("par/{}/{}".format(worker, req), size)
    return (marker + "{" + fill.decode() + "}" + marker[::-1]).encode()


def parallel_marker(worker, req):
    return "LWT-PAR-w{:02d}-r{:04d}-".format(worker, req).encode()


def parallel_resp_size(worker, req):
    return 10 + (req * 131 + worker * 17) % 3000


def chat_completion(content, model="gpt-4o-mini"):
    """A valid OpenAI chat.completion object (dict)."""
    return {
        "id": "chatcmpl-lwt0000000000000000000000",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_lwt",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }
