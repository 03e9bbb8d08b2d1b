"""The harness itself works without any proxy: the origin echoes and frames
exactly as documented (Content-Length, chunked, close-delimited, keep-alive,
uploads hashed while streaming), the raw client parses what it is sent, the
raw backend runs scripted handlers, and closed_port() refuses connections."""

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from backends import (RawBackend, closed_port, pattern_bytes, pattern_sha256,
                      read_request_head)
from harness import HttpConn, build_request, chunked, free_port, raw_request, request


def test_free_port_is_bindable():
    p = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))
        s.listen(1)
        assert harness.port_open(p)


def test_free_port_is_never_given_to_another_process_or_by_the_kernel():
    """Ports reserved by this process are not handed to another test process
    (xdist worker), and they lie below the range the kernel picks ports
    from for bind(port 0) and for connect()."""
    mine = {free_port() for _ in range(200)}
    assert len(mine) == 200
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    assert max(mine) < lo
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import harness; "
            "print(' '.join(str(harness.free_port()) for _ in range(500)))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(harness.__file__).parent)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = {int(x) for x in out.split()}
    assert len(theirs) == 500 and not (theirs & mine)


def test_closed_port_refuses():
    p = closed_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p), timeout=2)


def test_origin_echo(origin):
    r = request(origin.port, "GET", "/a/b?x=1&y=%41", headers=[("X-Test", "v")])
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    assert r.header("X-Origin-Port") == str(origin.port)
    assert r.header("X-Origin-Conn") == "1"
    j = r.json()
    assert j["method"] == "GET"
    assert j["target"] == "/a/b?x=1&y=%41"
    assert j["version"] == "HTTP/1.1"
    assert ["X-Test", "v"] in j["headers"]
    assert j["body_len"] == 0
    assert origin.connections == 1
    assert origin.requests[0]["target"] == "/a/b?x=1&y=%41"


def test_origin_keepalive_and_pipelining(origin):
    with HttpConn(origin.port) as c:
        c.send(build_request(target="/one") + build_request(target="/two")
               + build_request(target="/three"))
        targets = [c.read_response().json()["target"] for _ in range(3)]
        assert targets == ["/one", "/two", "/three"]
        r = c.request("GET", "/four", headers=[("Connection", "close")])
        assert r.header("Connection") == "close"
        assert r.header("X-Origin-Conn") == "1"
        assert c.wait_closed(5)
    assert origin.connections == 1


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_origin_upload_hash(origin, framing):
    body = pattern_bytes(300_000)
    if framing == "chunked":
        raw = build_request("POST", "/up", [("Transfer-Encoding", "chunked")],
                            chunked(body, 7000))
    else:
        raw = build_request("POST", "/up", None, body)
    with HttpConn(origin.port) as c:
        c.send(raw)
        j = c.read_response().json()
    assert j["body_len"] == len(body)
    assert j["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert origin.requests[0]["body_framing"] == framing


@pytest.mark.parametrize("route,framing", [("bytes", "length"), ("chunked", "chunked"),
                                           ("close", "close")])
def test_origin_download_framings(origin, route, framing):
    n = 1_000_003
    r = request(origin.port, "GET", f"/{route}/{n}", hash_only=True)
    assert r.status == 200
    assert r.framing == framing
    assert r.body_len == n
    assert r.body_sha256 == pattern_sha256(n)


def test_origin_chunked_to_http10_is_close_delimited(origin):
    r = request(origin.port, "GET", "/chunked/100", version="HTTP/1.0")
    assert r.framing == "close" and r.body == pattern_bytes(100)


def test_origin_status_head_and_set_header(origin):
    assert request(origin.port, "GET", "/status/404").status == 404
    r = request(origin.port, "GET", "/status/204")
    assert r.status == 204 and r.body == b""
    r = request(origin.port, "HEAD", "/bytes/1000")
    assert r.header("Content-Length") == "1000" and r.body == b""
    r = request(origin.port, "GET", "/set-header?X-A=1&X-B=two%20words")
    assert r.header("X-A") == "1" and r.header("X-B") == "two words"


def test_origin_expect_continue(origin):
    with HttpConn(origin.port) as c:
        c.send(build_request("PUT", "/x", [("Expect", "100-continue"),
                                           ("Content-Length", "5")]))
        c.send(b"hello")
        r = c.read_response()
    assert [s for s, _ in r.interim] == [100]
    assert r.json()["body_len"] == 5


def test_origin_hang_and_close_idle(origin):
    with HttpConn(origin.port, timeout=0.5) as c:
        c.send(build_request(target="/hang"))
        with pytest.raises(socket.timeout):
            c.read_response(timeout=0.3)
    with HttpConn(origin.port) as c:
        assert c.request().status == 200
        harness.wait_until(lambda: origin.idle_connections() >= 1, 5, "idle connection")
        assert origin.close_idle() >= 1
        assert c.wait_closed(5)


def test_raw_backend_scripted(raw_backend):
    def handler(conn):
        head = read_request_head(conn)
        assert head.startswith(b"GET /raw ")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nraw")

    b = raw_backend(handler)
    assert isinstance(b, RawBackend)
    out = raw_request(b.port, build_request(target="/raw"))
    assert out.endswith(b"\r\n\r\nraw")
    assert b.connections == 1 and not b.errors


def test_listen_ports_and_fill():
    conf = harness.fill("server { listen 127.0.0.1:@P@; listen @Q@ default_server; }",
                        P=1234, Q=5678)
    assert harness.listen_ports(conf) == [1234, 5678]
    with pytest.raises(AssertionError):
        harness.fill("@MISSING@")


def test_http_conf_renders_blocks():
    conf = harness.http_conf("server { listen 127.0.0.1:1; }", extra_main="worker_processes 1;")
    assert conf.startswith("worker_processes 1;")
    assert "events { worker_connections 1024; }" in conf
    assert "access_log logs/access.log;" in conf
    assert "proxy_temp_path proxy_temp;" in conf  # both binaries, as nginx-tests
