"""Message bodies cross the proxy intact in both directions: request bodies of
0 B to 64 MiB with Content-Length or chunked framing reach the origin with the
right length and SHA-256; 64 MiB responses framed by Content-Length, chunked or
connection close reach the client intact; HEAD, 204 and 304 carry no body (and
the connection stays usable); `Expect: 100-continue` is answered by the proxy
and not forwarded; client_max_body_size answers 413; with streaming configured
the proxy's memory does not grow with the size of what it carries."""

import hashlib
import time

import pytest

from backends import pattern_chunks, pattern_sha256
from harness import HttpConn, build_request, fill, free_port, http_conf, request

KiB, MiB = 1024, 1024 * 1024

CONF = """server {
    listen 127.0.0.1:@P@;
    client_max_body_size 100m;
    location / { proxy_pass http://@O@; }
    location /h11/ { proxy_http_version 1.1; proxy_pass http://@O@; }
    location /stream/ {
        proxy_http_version 1.1;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_pass http://@O@;
    }
}"""


@pytest.fixture
def sy(switchyard, origin):
    return switchyard(http_conf(fill(CONF, P=free_port(), O=origin.addr)))


@pytest.fixture
def port(sy):
    return sy.port


def upload(conn: HttpConn, method: str, target: str, n: int, framing: str,
           headers=None, host="localhost"):
    """Send a request with an n-byte pattern body, streamed."""
    hs = list(headers or [])
    hs.append(("Transfer-Encoding", "chunked") if framing == "chunked"
              else ("Content-Length", str(n)))
    conn.send(build_request(method, target, hs, b"", host))
    for piece in pattern_chunks(n, 256 * KiB if framing == "length" else 60000):
        if framing == "chunked":
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            conn.send(piece)
    if framing == "chunked":
        conn.send(b"0\r\n\r\n")


def check_upload(port, origin, method, target, n, framing, timeout=60):
    with HttpConn(port, timeout=timeout) as c:
        upload(c, method, target, n, framing)
        r = c.read_response(method=method)
        assert r.status == 200, r
        if method != "HEAD":
            j = r.json()
            assert j["method"] == method
            assert j["body_len"] == n
            assert j["body_sha256"] == pattern_sha256(n)
        rec = origin.requests[-1]
        assert rec["body_len"] == n
        assert rec["body_sha256"] == pattern_sha256(n)
        return rec


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("n", [0, 1 * KiB, 1 * MiB])
def test_request_body(port, origin, method, framing, n):
    check_upload(port, origin, method, "/up", n, framing)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_request_body_on_get_and_head(port, origin, method):
    rec = check_upload(port, origin, method, "/up", 1 * KiB, "length")
    assert rec["method"] == method


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_request_body_64mib(port, origin, framing):
    check_upload(port, origin, "POST", "/up", 64 * MiB, framing)


def test_chunked_request_body_default_config(sy, origin):
    """Default config (HTTP/1.0 upstream, proxy_request_buffering on).
    nginx de-chunks the body (spooling it) and sends Content-Length.
    Switchyard never spools (docs/differences.md): it forwards the body chunked
    and so speaks HTTP/1.1 upstream for that request."""
    rec = check_upload(sy.port, origin, "POST", "/up", 100 * KiB, "chunked")
    hs = dict((k.lower(), v) for k, v in rec["headers"])
    if sy.is_nginx:
        assert rec["body_framing"] == "length"
        assert rec["version"] == "HTTP/1.0"
        assert hs["content-length"] == str(100 * KiB)
    else:
        assert rec["body_framing"] == "chunked"
        assert rec["version"] == "HTTP/1.1"
        assert "content-length" not in hs


def test_chunked_request_body_streamed_stays_chunked(port, origin):
    rec = check_upload(port, origin, "POST", "/stream/up", 100 * KiB, "chunked")
    assert rec["body_framing"] == "chunked"
    assert rec["version"] == "HTTP/1.1"


def test_length_request_body_streamed_keeps_length(port, origin):
    rec = check_upload(port, origin, "POST", "/stream/up", 100 * KiB, "length")
    assert rec["body_framing"] == "length"


def test_chunked_request_with_trailers_and_extensions(port, origin):
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    with HttpConn(port) as c:
        c.send(build_request("POST", "/up", [("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
    assert r.status == 200
    assert r.json()["body_len"] == 11
    assert r.json()["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()


# --------------------------------------------------------------------------
# responses


@pytest.mark.parametrize("route", ["bytes", "chunked", "close"])
@pytest.mark.parametrize("prefix", ["/", "/h11/", "/stream/"])
def test_response_body_1mib(port, route, prefix):
    n = 1 * MiB + 7
    r = request(port, "GET", f"{prefix}{route}/{n}", hash_only=True)
    assert r.status == 200
    assert r.body_len == n and r.body_sha256 == pattern_sha256(n)


@pytest.mark.slow
@pytest.mark.parametrize("route", ["bytes", "chunked", "close"])
def test_response_body_64mib(port, route):
    n = 64 * MiB
    r = request(port, "GET", f"/h11/{route}/{n}", hash_only=True, timeout=60)
    assert r.status == 200
    assert r.body_len == n and r.body_sha256 == pattern_sha256(n)
    if route == "bytes":
        assert r.header("Content-Length") == str(n)


def test_close_delimited_upstream_is_chunked_to_http11_client(port):
    with HttpConn(port) as c:
        r = c.request("GET", "/close/5000")
        assert r.framing == "chunked" and r.body_len == 5000
        # and the client connection stays usable
        assert c.request("GET", "/after").json()["target"] == "/after"


def test_head_has_no_body(port):
    with HttpConn(port) as c:
        r = c.request("HEAD", "/bytes/1000")
        assert r.status == 200
        assert r.header("Content-Length") == "1000"
        r2 = c.request("GET", "/next")
        assert r2.status == 200 and r2.json()["target"] == "/next"
        assert not c.buf


@pytest.mark.parametrize("status", [204, 304])
def test_204_304_have_no_body(port, status):
    with HttpConn(port) as c:
        r = c.request("GET", f"/status/{status}")
        assert r.status == status
        assert r.body == b""
        assert not r.has_header("Transfer-Encoding")
        if status == 204:
            assert not r.has_header("Content-Length")
        r2 = c.request("GET", "/next")
        assert r2.status == 200 and r2.json()["target"] == "/next"


# --------------------------------------------------------------------------
# Expect: 100-continue and client_max_body_size


def test_expect_100_continue(port, origin):
    with HttpConn(port, timeout=5) as c:
        c.send(build_request("POST", "/up", [("Expect", "100-continue"), ("Content-Length", "5")]))
        head = c.read_head(time.monotonic() + 5)
        assert head[1] == 100
        c.send(b"hello")
        r = c.read_response()
    assert r.status == 200
    assert r.json()["body_len"] == 5
    assert "expect" not in {k.lower() for k, _ in origin.requests[-1]["headers"]}


def test_expect_100_continue_http10_ignored(port, origin):
    with HttpConn(port, timeout=5) as c:
        c.send(build_request("POST", "/up", [("Expect", "100-continue"), ("Content-Length", "5")],
                             b"hello", version="HTTP/1.0"))
        r = c.read_response()
    assert r.status == 200 and not r.interim
    assert r.json()["body_len"] == 5


def test_expect_100_continue_too_large_is_413_without_100(switchyard, origin):
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; client_max_body_size 1k;
        location / { proxy_pass http://@O@; } }""", P=p, O=origin.addr)))
    with HttpConn(p, timeout=5) as c:
        c.send(build_request("POST", "/up", [("Expect", "100-continue"),
                                             ("Content-Length", "2048")]))
        r = c.read_response()
    assert r.status == 413
    assert not r.interim
    assert origin.connections == 0


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_client_max_body_size_413(switchyard, origin, framing):
    p = free_port()
    sy = switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; client_max_body_size 1k;
        location / { proxy_pass http://@O@; } }""", P=p, O=origin.addr)))
    with HttpConn(p, timeout=5) as c:
        upload(c, "POST", "/up", 4 * KiB, framing)
        r = c.read_response()
        assert r.status == 413
        assert r.header("Connection") == "close"
        assert c.wait_closed(5)
    # nginx reads the whole body before connecting upstream; a streaming proxy
    # may have started the upstream request, but the origin never gets a
    # complete one
    if sy.is_nginx or framing == "length":
        assert origin.connections == 0
    assert len(origin.requests) == 0
    sy.wait_log(r"client intended to send too large (chunked )?body")


def test_client_max_body_size_boundary(switchyard, origin):
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; client_max_body_size 1k;
        location / { proxy_pass http://@O@; } }""", P=p, O=origin.addr)))
    with HttpConn(p) as c:
        upload(c, "POST", "/up", 1 * KiB, "length")
        assert c.read_response().status == 200
    with HttpConn(p) as c:
        upload(c, "POST", "/up", 1 * KiB + 1, "length")
        assert c.read_response().status == 413


# --------------------------------------------------------------------------
# memory does not grow with body size


@pytest.mark.slow
def test_rss_does_not_grow_with_body_size(sy, origin):
    """Streaming configured (nginx: no request/response buffering, so no temp
    files either): RSS after 64 MiB each way is within 16 MiB of RSS after
    1 MiB each way."""
    def transfer(n):
        check_upload(sy.port, origin, "POST", "/stream/up", n, "length")
        check_upload(sy.port, origin, "POST", "/stream/up", n, "chunked")
        for route in ("bytes", "chunked", "close"):
            r = request(sy.port, "GET", f"/stream/{route}/{n}", hash_only=True, timeout=60)
            assert r.body_len == n and r.body_sha256 == pattern_sha256(n)

    transfer(1 * MiB)
    rss_small = sy.rss_kb()
    transfer(64 * MiB)
    rss_big = sy.rss_kb()
    assert rss_small > 0
    assert rss_big - rss_small < 16 * 1024, (rss_small, rss_big)
