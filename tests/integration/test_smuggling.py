"""Request smuggling and desync defences, one raw-bytes case per trick.

Every ambiguous request is refused with 400 (or 501 for a transfer coding
Switchyard does not implement, as RFC 9112 6.1 says) and the connection is
closed, and nothing of it — nor of anything pipelined behind it — reaches the
upstream. Responses get the same strictness: a malformed upstream response
is a 502, never relayed. Other files hold more cases of the same kind
(test_http_parsing.py: the nginx-compatible rejections; test_errors.py:
upstream failures; test_websocket_rejects.py: upgrades without a real 101).

Most cases are Switchyard-only (`sy_only`: nginx tolerates several of them).
The bare-LF section at the end runs against nginx too: a lone LF ends a head
line for both (RFC 9112 2.2), what goes on is CRLF only, and a lone CR and the
tricks above stay refused with LF line ends.
"""
import hashlib
import re
import socket
import time

import pytest

from harness import HttpConn, fill, free_port, http_conf, raw_request, read_until_close, request

sy_only = pytest.mark.switchyard_only  # nginx tolerates several of these

H = b"Host: x\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
ABC = hashlib.sha256(b"abc").hexdigest()


@pytest.fixture
def port(switchyard, origin):
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }""",
                              P=p, O=origin.addr)))
    return p


def refused(port: int, origin, req: bytes, status: int = 400):
    """Send req (with a request pipelined behind it): one error response,
    the connection closed, nothing at the origin."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req + SMUGGLED)
        out = read_until_close(s, timeout=5)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:300]
    head = out.split(b"\r\n\r\n")[0]
    assert b"Connection: close" in head
    assert out.count(b"HTTP/1.1 ") == 1, out  # the pipelined request was not served
    assert origin.requests == [], origin.requests
    assert b"smuggled" not in out


def post(headers: bytes, body: bytes = b"") -> bytes:
    return b"POST /p HTTP/1.1\r\n" + H + headers + b"\r\n" + body


# --------------------------------------------------------------------------
# framing: Content-Length and Transfer-Encoding

@sy_only
@pytest.mark.parametrize("req", [
    pytest.param(post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), id="cl-te"),
    pytest.param(post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n"), id="te-cl"),
    pytest.param(post(b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"), id="cl-twice-same"),
    pytest.param(post(b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"), id="cl-differing"),
    pytest.param(post(b"Content-Length: 3, 3\r\n", b"abc"), id="cl-list"),
    pytest.param(post(b"Content-Length: +3\r\n", b"abc"), id="cl-plus"),
    pytest.param(post(b"Content-Length: 0x3\r\n", b"abc"), id="cl-hex"),
    pytest.param(post(b"Content-Length: 3 4\r\n", b"abc"), id="cl-two-numbers"),
    pytest.param(post(b"Content-Length: 99999999999999999999999\r\n"), id="cl-overflow"),
    pytest.param(post(b"Transfer-Encoding: chunked\r\n \r\n", b"0\r\n\r\n"), id="te-obs-fold-empty"),
    pytest.param(post(b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"), id="te-obs-fold"),
    pytest.param(post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), id="te-space-before-colon"),
    pytest.param(post(b" Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"), id="te-leading-space"),
    pytest.param(post(b"Transfer-Encoding: chunked\x00\r\n", b"0\r\n\r\n"), id="te-nul"),
    pytest.param(post(b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"), id="te-vertical-tab"),
    pytest.param(b"POST /p HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 id="te-in-http10"),
])
def test_ambiguous_framing_is_refused(port, origin, req):
    refused(port, origin, req)


@sy_only
@pytest.mark.parametrize("te", [
    b"chunked, identity", b"identity", b"xchunked", b"chunkedx", b"gzip", b"gzip, chunked",
    b"chunked;q=1", b"\"chunked\"", b"chunked, chunked", b"", b"chunked\r\nTransfer-Encoding: chunked",
])
def test_transfer_coding_other_than_a_final_chunked(port, origin, te):
    """Only `chunked` (alone, as the final coding) is implemented: anything
    else is 501 Not Implemented (nginx) or 400 when it cannot be parsed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(post(b"Transfer-Encoding: " + te + b"\r\n", b"0\r\n\r\n") + SMUGGLED)
        out = read_until_close(s, timeout=5)
    assert out[9:12] in (b"400", b"501"), out[:200]
    assert out.count(b"HTTP/1.1 ") == 1
    assert origin.requests == []


@sy_only
def test_chunked_with_trailing_whitespace_is_read_as_chunked(port, origin):
    """`chunked ` with trailing whitespace is legal OWS: it must be handled
    exactly as `chunked` (the body is read as chunked, nothing is left over)."""
    out = raw_request(port, post(b"Transfer-Encoding: chunked \r\nConnection: close\r\n",
                                 b"3\r\nabc\r\n0\r\n\r\n"))
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert [(r["body_len"], r["body_sha256"]) for r in origin.requests] == [(3, ABC)]


# --------------------------------------------------------------------------
# chunk sizes and chunk syntax

@sy_only
@pytest.mark.parametrize("body", [
    pytest.param(b"0x3\r\nabc\r\n0\r\n\r\n", id="0x-prefix"),
    pytest.param(b"+3\r\nabc\r\n0\r\n\r\n", id="plus"),
    pytest.param(b"-3\r\nabc\r\n0\r\n\r\n", id="minus"),
    pytest.param(b" 3\r\nabc\r\n0\r\n\r\n", id="leading-space"),
    pytest.param(b"3 \r\nabc\r\n0\r\n\r\n", id="trailing-space"),
    pytest.param(b"\r\nabc\r\n0\r\n\r\n", id="empty-size"),
    pytest.param(b"10000000000000003\r\nabc\r\n0\r\n\r\n", id="hex-overflow"),
    pytest.param(b"fffffffffffffffff\r\nabc\r\n0\r\n\r\n", id="17-hex-digits"),
    pytest.param(b"3\r\nabcdef\r\n0\r\n\r\n", id="data-longer-than-size"),
    pytest.param(b"3\r\nabc0\r\n\r\n", id="missing-crlf-after-data"),
    pytest.param(b"3\nabc\n0\n\n", id="bare-lf"),
    # a bare LF never ends a chunk-framing line, though it ends a head line
    # (RFC 9112 7.1; nginx >= 1.29.4 refuses these too, 1.22 accepted them)
    pytest.param(b"3\nabc\r\n0\r\n\r\n", id="bare-lf-after-size"),
    pytest.param(b"3;x=y\nabc\r\n0\r\n\r\n", id="bare-lf-after-extension"),
    pytest.param(b"3\r\nabc\n0\r\n\r\n", id="bare-lf-after-data"),
    pytest.param(b"3\r\nabc\r\n0\n\r\n", id="bare-lf-last-chunk"),
    pytest.param(b"3\r\nabc\r\n0\r\nT: 1\n\r\n", id="bare-lf-trailer"),
    pytest.param(b"3\r\nabc\r\n0\r\n\n", id="bare-lf-final"),
    pytest.param(b"3\rabc\r0\r\r", id="bare-cr"),
    pytest.param(b"3;" + b"x" * 5000 + b"\r\nabc\r\n0\r\n\r\n", id="huge-extension"),
    pytest.param(b"3;a=\"unterminated\r\nabc\r\n0\r\n\r\n", id="bad-extension-quote"),
    pytest.param(b"3;\x00\r\nabc\r\n0\r\n\r\n", id="nul-in-extension"),
    pytest.param(b"3\r\nabc\r\n0\r\nX\x00: y\r\n\r\n", id="bad-trailer"),
])
def test_malformed_chunks_are_refused(port, origin, body):
    """The head may already be on its way upstream (Switchyard streams
    bodies), but the origin never receives a complete request, and nothing
    after the bad chunk is parsed as a request."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(post(b"Transfer-Encoding: chunked\r\n", body) + SMUGGLED)
        out = read_until_close(s, timeout=5)
    assert out.startswith(b"HTTP/1.1 400 "), out[:300]
    assert out.count(b"HTTP/1.1 ") == 1
    assert all(r["target"] != "/smuggled" for r in origin.requests)
    assert not any(r["body_sha256"] == ABC for r in origin.requests), origin.requests


# --------------------------------------------------------------------------
# line endings, names, methods, targets, versions

@sy_only
@pytest.mark.parametrize("req", [
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n", id="bare-cr-in-head"),
    # a lone CR where nginx skips it (before the request line, before the LF
    # of a header line)
    pytest.param(b"\rGET / HTTP/1.1\r\nHost: x\r\n\r\n", id="bare-cr-before-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", id="cr-cr-lf-after-header"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\r\r\n\n", id="cr-cr-lf-in-lf-head"),
    pytest.param(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", id="space-before-colon"),
    pytest.param(b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", id="tab-before-colon"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX\x01Y: 1\r\n\r\n", id="control-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX Y: 1\r\n\r\n", id="space-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX\"Y: 1\r\n\r\n", id="quote-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\x00\r\n\r\n", id="nul-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", id="del-in-value"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", id="obs-fold"),
    pytest.param(b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n", id="nul-in-method"),
    pytest.param(b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", id="control-in-method"),
    pytest.param(b"GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", id="separator-in-method"),
    pytest.param(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", id="nul-in-target"),
    pytest.param(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", id="space-in-target"),
    pytest.param(b"GET a HTTP/1.1\r\nHost: x\r\n\r\n", id="relative-target"),
    pytest.param(b"GET //x HTTP/1.1\r\nHost: x\r\n\r\n\x00", id="nul-after-head"),
    pytest.param(b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", id="space-after-version"),
    pytest.param(b"GET / HTTP/01.1\r\nHost: x\r\n\r\n", id="version-leading-zero"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", id="two-hosts"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x y\r\n\r\n", id="host-with-space"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x/y\r\n\r\n", id="host-with-slash"),
])
def test_malformed_heads_are_refused(port, origin, req):
    if req.endswith(b"\x00"):
        # the head itself is fine: served; the NUL after it is the next
        # "request" and gets its 400, closing the connection
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(req)
            out = read_until_close(s, timeout=5)
        assert out.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 400 " in out, out[:400]
        return
    refused(port, origin, req)


@sy_only
def test_http09_simple_request_is_refused(port, origin):
    """HTTP/0.9 `GET /` (no version): 400, never a bare body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /\r\n\r\n")
        out = read_until_close(s, timeout=5)
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert origin.requests == []


@sy_only
@pytest.mark.parametrize("what,req,status", [
    pytest.param("request line", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                 id="long-request-line"),
    pytest.param("header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 20000 + b"\r\n\r\n", 400,
                 id="long-header-line"),
])
def test_over_long_lines(port, origin, what, req, status):
    refused(port, origin, req, status)


# --------------------------------------------------------------------------
# the response side

@sy_only
@pytest.mark.parametrize("resp", [
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n0\r\n\r\n", id="cl-and-te"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", id="cl-differing"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", id="obs-fold"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n", id="space-in-name"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 0\r\n\r\n", id="bare-cr"),
    pytest.param(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", id="four-digit-status"),
    pytest.param(b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", id="two-digit-status"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", id="cl-negative"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                 id="bad-chunk-size"),
    pytest.param(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", id="chunked-bare-lf"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\r\r\nContent-Length: 0\r\n\r\n", id="cr-cr-lf"),
    pytest.param(b"garbage\r\n\r\n", id="no-status-line"),
])
def test_malformed_upstream_responses_are_502(switchyard, raw_backend, resp):
    def answer(conn):
        conn.recv(65536)
        conn.sendall(resp)
    b = raw_backend(answer)
    p = free_port()
    sy = switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }""",
                                   P=p, O=b.addr)))
    with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
        s.sendall(b"GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = read_until_close(s, timeout=5)
    # nothing had reached the client yet in any case: a 502, no upstream bytes
    assert out.startswith(b"HTTP/1.1 502 "), out[:300]
    assert b"folded" not in out and b"X A" not in out and b"abc" not in out
    sy.wait_log(r"\[error\] .*upstream", timeout=5)


@sy_only
def test_header_values_from_variables_cannot_inject_lines(switchyard, origin):
    """$uri is percent-decoded: %0d%0a in the path would start a new header
    (or a new request) upstream if copied into one. The header is not sent
    and an error is logged; nothing else changes."""
    p = free_port()
    sy = switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; location / {
        proxy_set_header X-Uri $uri; proxy_pass http://@O@; } }""", P=p, O=origin.addr)))
    request(p, "GET", "/a%0d%0aX-Injected:%20yes")
    for rec in origin.requests:
        names = [k.lower() for k, _ in rec["headers"]]
        assert "x-injected" not in names, rec
        assert all("\r" not in v and "\n" not in v for _, v in rec["headers"]), rec
    sy.wait_log(r"\[error\].*(CR|LF|line break|X-Uri)", timeout=5)


# --------------------------------------------------------------------------
# bare LF line ends: accepted in a head as nginx does, never passed on.
# These run against nginx too.

def no_lone_cr_or_lf(data: bytes) -> bool:
    return re.search(rb"(?<!\r)\n|\r(?!\n)", data) is None


def strict_dechunk(data: bytes):
    """The payload of a complete chunked body framed with CRLF only, or None
    while incomplete; an assertion fails on any other framing."""
    out, i = b"", 0
    while True:
        eol = data.find(b"\r\n", i)
        if eol < 0:
            return None
        assert re.fullmatch(rb"[0-9a-fA-F]+(;[^\r\n]*)?", data[i:eol]), data[i:eol + 2]
        size = int(data[i:eol].split(b";")[0], 16)
        i = eol + 2
        if size == 0:
            while True:  # trailer lines, then the empty line
                eol = data.find(b"\r\n", i)
                if eol < 0:
                    return None
                assert b"\n" not in data[i:eol] and b"\r" not in data[i:eol], data[i:eol + 2]
                if eol == i:
                    return out
                i = eol + 2
        if len(data) < i + size + 2:
            return None
        out += data[i:i + size]
        assert data[i + size:i + size + 2] == b"\r\n", data[i + size:i + size + 2]
        i += size + 2


def read_upstream_request(conn: socket.socket, timeout: float = 5.0) -> bytes:
    """Every byte of one request as the proxy sent it: a CRLF head, then a
    Content-Length or (strictly CRLF) chunked body; bounded by `timeout`."""
    data = b""
    deadline = time.monotonic() + timeout

    def complete() -> bool:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return False
        if re.search(rb"\r\ntransfer-encoding: *chunked", head, re.I):
            return strict_dechunk(body) is not None
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        return len(body) >= (int(m.group(1)) if m else 0)

    while not complete() and time.monotonic() < deadline:
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        b = conn.recv(65536)
        if not b:
            break
        data += b
    return data


LF_HEADS = [
    pytest.param(b"GET /lf?q=1 HTTP/1.1\nHost: x\nX-A: 1\nConnection: close\n\n", id="all-lf"),
    pytest.param(b"GET /lf?q=1 HTTP/1.1\r\nHost: x\nX-A: 1\r\nConnection: close\n\r\n", id="mixed"),
    pytest.param(b"GET /lf?q=1 HTTP/1.1\nHost: x\r\nX-A: 1\nConnection: close\r\n\n", id="mixed-2"),
    pytest.param(b"\n\r\nGET /lf?q=1 HTTP/1.1\nHost: x\nX-A:  1 \t\nConnection: close\n\n",
                 id="leading-empty-lines"),
    # how nginx's own test suite (nginx-tests, http_get) sends every request
    pytest.param(b"GET /lf?q=1 HTTP/1.0\nHost: x\nX-A: 1\n\n", id="nginx-tests-http_get"),
]


@pytest.mark.parametrize("req", LF_HEADS)
def test_bare_lf_head_is_accepted_and_sent_on_as_crlf(port, origin, req):
    out = raw_request(port, req)
    assert out.startswith(b"HTTP/1.1 200 "), out[:300]
    assert no_lone_cr_or_lf(out.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
    [rec] = origin.requests
    assert (rec["method"], rec["target"]) == ("GET", "/lf?q=1")
    assert {k.lower(): v for k, v in rec["headers"]}["x-a"] == "1"
    head = rec["raw_head"].encode("latin-1")
    assert head.endswith(b"\r\n\r\n") and no_lone_cr_or_lf(head), head


def test_bare_lf_head_with_a_length_body(port, origin):
    out = raw_request(port, b"POST /p HTTP/1.1\nHost: x\nContent-Length: 3\nConnection: close\n\nabc")
    assert out.startswith(b"HTTP/1.1 200 "), out[:300]
    [rec] = origin.requests
    assert (rec["body_len"], rec["body_sha256"]) == (3, ABC)
    assert no_lone_cr_or_lf(rec["raw_head"].encode("latin-1"))


def test_bare_lf_pipelined_requests(port, origin):
    """Where one LF-ended head stops and the next starts is unambiguous."""
    out = raw_request(port, b"GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\r\nHost: x\n"
                      b"Connection: close\n\n")
    assert out.count(b"HTTP/1.1 200 ") == 2, out[:600]
    assert [r["target"] for r in origin.requests] == ["/a", "/b"]
    assert all(no_lone_cr_or_lf(r["raw_head"].encode("latin-1")) for r in origin.requests)


def test_bare_lf_head_with_chunked_body_is_reframed(switchyard, raw_backend):
    """A chunked body after an LF-ended head is decoded and framed anew
    (Switchyard: chunked with CRLF; nginx buffers it and sends a
    Content-Length): only the payload's own bytes go through as they are,
    CRs and LFs included."""
    got = []

    def answer(conn):
        got.append(read_upstream_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    b = raw_backend(answer)
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }""",
                              P=p, O=b.addr)))
    payload = b"x\ny\r\nz\r"
    out = raw_request(p, b"POST /c HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nConnection: close\n\n"
                      + b"%x\r\n" % len(payload) + payload + b"\r\n0\r\nT: 1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out[:300]
    [msg] = got
    head, _, body = msg.partition(b"\r\n\r\n")
    assert no_lone_cr_or_lf(head + b"\r\n\r\n"), head
    assert head.startswith(b"POST /c HTTP/1.")
    if re.search(rb"\r\ntransfer-encoding: *chunked", head, re.I):
        assert strict_dechunk(body) == payload, body
    else:
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        assert m and int(m.group(1)) == len(payload), head
        assert body == payload, body


@pytest.mark.parametrize("req", [
    pytest.param(b"GET / HTTP/1.1\rHost: x\r\n\r\n", id="cr-after-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\r\nHost: x\n\n", id="cr-cr-lf-after-request-line"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\rX-A: 1\n\n", id="cr-inside-lf-head"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\nX-A: 1\rX-B: 2\n\n", id="cr-between-lf-lines"),
])
def test_lone_cr_is_still_refused(port, origin, req):
    refused(port, origin, req)


@pytest.mark.parametrize("req", [
    pytest.param(b"POST /p HTTP/1.1\nHost: x\nContent-Length: 4\nTransfer-Encoding: chunked\n\n0\r\n\r\n",
                 id="cl-te"),
    pytest.param(b"POST /p HTTP/1.1\nHost: x\nContent-Length: 3\nContent-Length: 4\n\nabcd", id="cl-differing"),
    pytest.param(b"POST /p HTTP/1.1\nHost: x\nTransfer-Encoding : chunked\n\n0\r\n\r\n",
                 id="te-space-before-colon"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\nX-A: 1\n folded\n\n", id="obs-fold"),
    pytest.param(b"GET / HTTP/1.1\n Host: x\n\n", id="leading-space"),
    pytest.param(b"GET / HTTP/1.1\nHost : x\n\n", id="space-before-colon"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\nHost: y\n\n", id="two-hosts"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\nX-A: 1\x00\n\n", id="nul-in-value"),
])
def test_smuggling_tricks_are_refused_with_lf_line_ends(port, origin, req):
    refused(port, origin, req)


@pytest.mark.parametrize("resp,body", [
    pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: 1\n\nok", b"ok", id="all-lf"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: 1\r\n\nok", b"ok", id="mixed"),
    pytest.param(b"HTTP/1.1 200\nX-A: 1\nContent-Length: 2\n\nok", b"ok", id="no-reason"),
    pytest.param(b"HTTP/1.1 200 OK\nX-A: 1\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n", b"abc",
                 id="lf-head-crlf-chunks"),
])
def test_bare_lf_upstream_response_is_relayed_as_crlf(switchyard, raw_backend, resp, body):
    """nginx's ngx_http_parse_status_line and header parser take a lone LF
    from an upstream too; the client gets a head rebuilt with CRLF."""
    def answer(conn):
        read_upstream_request(conn)
        conn.sendall(resp)

    b = raw_backend(answer)
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }""",
                              P=p, O=b.addr)))
    with HttpConn(p) as c:
        c.send(b"GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert r.header("X-A") == "1"
    assert r.body == body
    assert r.raw_head.endswith(b"\r\n\r\n") and no_lone_cr_or_lf(r.raw_head), r.raw_head
