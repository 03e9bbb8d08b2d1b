"""Connection reuse on both sides, as nginx does it.

Client side: HTTP/1.1 connections stay open across requests (`Connection:
keep-alive` on each response) until `keepalive_requests` is reached (that
response says `Connection: close`) or the client idles for
`keepalive_timeout`; pipelined requests are answered in order; HTTP/1.0 is
closed after the response unless it asked for keep-alive; `Connection: close`
from the client is honoured.

Upstream side: with `upstream { keepalive N; }`, `proxy_http_version 1.1` and
`proxy_set_header Connection ""` sequential requests reuse one origin
connection (bounded by the upstream `keepalive_requests`); without it each
request opens a new one; an origin that closes an idle pooled connection, or
closes after a response, never causes a failed request.
"""

import time

import pytest

from harness import IS_NGINX, HttpConn, build_request, fill, free_port, http_conf, request, wait_until


def start(switchyard, origin, body):
    p = free_port()
    switchyard(http_conf(fill(body, P=p, O=origin.addr)))
    return p


PLAIN = "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }"


def test_client_keepalive_many_requests(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    with HttpConn(p) as c:
        for i in range(10):
            r = c.request("GET", f"/r{i}")
            assert r.status == 200
            assert r.json()["target"] == f"/r{i}"
            assert r.header("Connection") == "keep-alive"
        # an error status keeps the connection too
        assert c.request("GET", "/status/404").status == 404
        assert c.request("GET", "/after-404").status == 200
    assert len(origin.requests) == 12


def test_keepalive_requests_limit(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; keepalive_requests 3;
        location / { proxy_pass http://@O@; } }""")
    with HttpConn(p) as c:
        assert c.request("GET", "/1").header("Connection") == "keep-alive"
        assert c.request("GET", "/2").header("Connection") == "keep-alive"
        r = c.request("GET", "/3")
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.wait_closed(5)
        assert c.buf == b""


def test_keepalive_timeout_closes_idle_client(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; keepalive_timeout 1s;
        location / { proxy_pass http://@O@; } }""")
    with HttpConn(p) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(5), "idle connection not closed"
        elapsed = time.monotonic() - t0
        assert 0.5 < elapsed < 4, elapsed
        assert c.buf == b""


def test_keepalive_timeout_header(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; keepalive_timeout 30s 25s;
        location / { proxy_pass http://@O@; } }""")
    r = request(p, "GET", "/")
    assert r.header("Keep-Alive") == "timeout=25"
    assert r.header("Connection") == "keep-alive"


def test_keepalive_timeout_zero_disables(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; keepalive_timeout 0;
        location / { proxy_pass http://@O@; } }""")
    with HttpConn(p) as c:
        r = c.request("GET", "/")
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.wait_closed(5)


def test_pipelining_in_order(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    with HttpConn(p) as c:
        # the first one is slow: answers must still come back in request order
        c.send(build_request(target="/slow/200") + build_request(target="/two")
               + build_request("POST", "/three", None, b"abc"))
        rs = [c.read_response() for _ in range(3)]
    assert [r.status for r in rs] == [200, 200, 200]
    assert [r.json()["target"] for r in rs] == ["/slow/200", "/two", "/three"]
    assert rs[2].json()["body_len"] == 3


def test_pipelining_split_across_writes(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    data = build_request(target="/a") + build_request(target="/b") + build_request(target="/c")
    with HttpConn(p) as c:
        # cut in the middle of the second request line
        cut = len(build_request(target="/a")) + 5
        c.send(data[:cut])
        first = c.read_response()
        c.send(data[cut:])
        rest = [c.read_response() for _ in range(2)]
    assert [r.json()["target"] for r in [first] + rest] == ["/a", "/b", "/c"]


def test_http10_closes_by_default(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    with HttpConn(p) as c:
        r = c.request("GET", "/", version="HTTP/1.0")
        assert r.status == 200
        assert r.version == "HTTP/1.1"
        assert r.header("Connection") == "close"
        assert c.wait_closed(5)


def test_http10_keepalive(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    with HttpConn(p) as c:
        for i in range(3):
            r = c.request("GET", f"/k{i}", version="HTTP/1.0",
                          headers=[("Connection", "keep-alive")])
            assert r.status == 200
            assert r.header("Connection") == "keep-alive"
            assert r.json()["target"] == f"/k{i}"


def test_http11_connection_close(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    with HttpConn(p) as c:
        r = c.request("GET", "/", headers=[("Connection", "close")])
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.wait_closed(5)


# --------------------------------------------------------------------------
# upstream keep-alive


KEEPALIVE = """
upstream u { server @O@; keepalive 4; }
server {
    listen 127.0.0.1:@P@;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://u; }
}"""


def test_upstream_keepalive_reuses_connection(switchyard, origin):
    p = start(switchyard, origin, KEEPALIVE)
    serials = set()
    with HttpConn(p) as c:
        for i in range(10):
            r = c.request("GET", f"/ka{i}")
            assert r.status == 200
            serials.add(r.header("X-Origin-Conn"))
    for i in range(10):  # new client connections, same upstream connection
        serials.add(request(p, "GET", f"/kb{i}").header("X-Origin-Conn"))
    assert origin.connections == 1
    assert serials == {"1"}
    rec = origin.requests[-1]
    assert rec["version"] == "HTTP/1.1"
    assert "connection" not in {k.lower() for k, _ in rec["headers"]}


def test_upstream_keepalive_with_bodies(switchyard, origin):
    p = start(switchyard, origin, KEEPALIVE)
    with HttpConn(p) as c:
        for i in range(5):
            assert c.request("POST", "/b", body=b"x" * (1000 * i + 1)).status == 200
            assert c.request("GET", "/chunked/3000").body_len == 3000
            assert c.request("GET", "/bytes/5000").body_len == 5000
            assert c.request("HEAD", "/bytes/5000").status == 200
            assert c.request("GET", "/status/204").status == 204
    assert origin.connections == 1
    assert len(origin.requests) == 25


def test_upstream_keepalive_requests_limit(switchyard, origin):
    p = start(switchyard, origin, """
        upstream u { server @O@; keepalive 4; keepalive_requests 5; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://u; } }""")
    serials = [request(p, "GET", f"/{i}").header("X-Origin-Conn") for i in range(20)]
    assert origin.connections == 4
    assert serials == [str(1 + i // 5) for i in range(20)]


def test_no_upstream_keepalive_by_default(switchyard, origin):
    p = start(switchyard, origin, PLAIN)
    with HttpConn(p) as c:
        serials = [c.request("GET", f"/{i}").header("X-Origin-Conn") for i in range(5)]
    assert serials == ["1", "2", "3", "4", "5"]
    assert origin.connections == 5


def test_origin_closing_idle_pooled_connection(switchyard, origin):
    p = start(switchyard, origin, KEEPALIVE)
    assert request(p, "GET", "/first").header("X-Origin-Conn") == "1"
    # the pooled connection is idle at the origin; the origin drops it
    wait_until(lambda: origin.idle_connections() == 1, 5, "pooled connection idle at origin")
    assert origin.close_idle() == 1
    for i in range(3):
        r = request(p, "GET", f"/again{i}")
        assert r.status == 200
        assert r.header("X-Origin-Conn") == "2"
    assert origin.connections == 2


def test_origin_closing_after_response_is_not_reused(switchyard, origin):
    p = start(switchyard, origin, KEEPALIVE)
    serials = []
    for i in range(3):
        r = request(p, "GET", "/close/100")
        assert r.status == 200 and r.body_len == 100
        serials.append(r.header("X-Origin-Conn"))
    r = request(p, "GET", "/after")
    assert r.status == 200
    serials.append(r.header("X-Origin-Conn"))
    assert serials == ["1", "2", "3", "4"]


@pytest.mark.parametrize("bad", ["Connection: close", "Connection: keep-alive"])
def test_upstream_keepalive_needs_connection_header_cleared(switchyard, origin, bad):
    """nginx: without `proxy_set_header Connection ""` the default `Connection: close`
    goes upstream and the origin closes, so nothing is reused. Switchyard owns the
    upstream Connection header (docs/websocket.md): a group with `keepalive` is
    always used with keep-alive, whatever the client sent."""
    p = start(switchyard, origin, """
        upstream u { server @O@; keepalive 4; }
        server { listen 127.0.0.1:@P@; location / { proxy_http_version 1.1; proxy_pass http://u; } }""")
    for i in range(3):
        assert request(p, "GET", f"/{i}", headers=[tuple(bad.split(": "))]).status == 200
    if IS_NGINX:
        assert origin.connections == 3
        assert all(dict((k.lower(), v) for k, v in r["headers"])["connection"] == "close"
                   for r in origin.requests)
    else:
        assert origin.connections == 1
        assert all("connection" not in dict((k.lower(), v) for k, v in r["headers"])
                   for r in origin.requests)
