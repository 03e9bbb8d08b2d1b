"""Upstream failures and error handling, as nginx does them: 502 for a refused
connection or an upstream that closes before answering, 504 for a read or
connect timeout, each with an error-log line naming the cause; locally made
error pages are HTML and carry the proxy's Server header; error_page (URI,
`=` status override, named location), proxy_intercept_errors,
proxy_next_upstream (error, timeout, http_502) across upstream servers; smooth
weighted round-robin, `backup`, `down` and `max_fails`/`fail_timeout`."""

import re
import time

import pytest

from backends import blackhole_port, closed_port, read_request_head
from harness import (IS_NGINX, PRODUCT, ConnectionClosed, HttpConn, fill, free_port, http_conf,
                     raw_request, request, wait_until)


def start(switchyard, body, **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw)))
    return sy, p


def cause_re(nginx_re: str, word: str) -> str:
    """nginx's exact wording under nginx; under Switchyard a line that says
    "upstream" and the reason word."""
    if IS_NGINX:
        return nginx_re
    return rf"(?i)upstream.*{word}|{word}.*upstream"


def close_without_answer(conn):
    read_request_head(conn)


def answer_502(conn):
    read_request_head(conn)
    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                 b"Content-Length: 7\r\nConnection: close\r\n\r\nbad-502")


def assert_error_page(r, status, title):
    assert r.status == status
    assert r.header("Content-Type") == "text/html"
    assert f"{status} {title}" in r.text
    assert r.header("Server", "").split("/")[0] == PRODUCT
    assert r.header("Date")
    assert int(r.header("Content-Length")) == len(r.body)


# --------------------------------------------------------------------------
# 502 / 504 and the error log


def test_502_connection_refused(switchyard):
    cp = closed_port()
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://127.0.0.1:@C@; } }",
                  C=cp)
    with HttpConn(p) as c:
        r = c.request("GET", "/x")
        assert_error_page(r, 502, "Bad Gateway")
        # the client connection survives an upstream error
        assert c.request("GET", "/y").status == 502
    sy.wait_log(cause_re(r"\[error\] .*connect\(\) failed \(111: Connection refused\) "
                         r"while connecting to upstream", "refused"))
    sy.wait_log(rf'upstream: "http://127\.0\.0\.1:{cp}/x"' if IS_NGINX else str(cp))


def test_502_upstream_closes_before_answering(switchyard, raw_backend):
    b = raw_backend(close_without_answer)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    assert_error_page(request(p, "GET", "/x"), 502, "Bad Gateway")
    sy.wait_log(cause_re(r"\[error\] .*upstream prematurely closed connection while reading "
                         r"response header from upstream", "closed"))
    assert b.connections == 1


def test_502_upstream_sends_invalid_header_line(switchyard, raw_backend):
    def bad_header(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 2\r\n\r\nok")

    b = raw_backend(bad_header)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    assert_error_page(request(p, "GET", "/x"), 502, "Bad Gateway")
    sy.wait_log(r"upstream sent invalid header" if IS_NGINX else r"(?i)upstream.*invalid")


@pytest.mark.switchyard_only
@pytest.mark.parametrize("status_line", [b"NOT HTTP AT ALL", b"HTTP/1.1 2000 OK"])
def test_502_upstream_sends_no_valid_status_line(switchyard, raw_backend, status_line):
    """nginx logs "upstream sent no valid HTTP/1.0 header" and then relays the
    upstream's bytes to the client as an HTTP/0.9 response (no status line, no
    headers). Switchyard answers 502 instead."""
    def garbage(conn):
        read_request_head(conn)
        conn.sendall(status_line + b"\r\nContent-Length: 2\r\n\r\nok")

    b = raw_backend(garbage)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    assert_error_page(request(p, "GET", "/x"), 502, "Bad Gateway")
    sy.wait_log(r"(?i)upstream.*(invalid|no valid)")


@pytest.mark.switchyard_only
def test_502_upstream_sends_conflicting_content_length(switchyard, raw_backend):
    """nginx 1.22 takes the last Content-Length (nginx >= 1.23 rejects
    duplicates); Switchyard rejects a response whose Content-Length values
    disagree: 502."""
    def dup(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")

    b = raw_backend(dup)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    assert_error_page(request(p, "GET", "/x"), 502, "Bad Gateway")


def test_upstream_body_shorter_than_content_length(switchyard, raw_backend):
    """Headers were already relayed, so the proxy can only cut the client
    connection: the client sees fewer bytes than announced, then EOF."""
    def short(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")

    b = raw_backend(short)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    with HttpConn(p) as c:
        with pytest.raises(ConnectionClosed):
            c.request("GET", "/x")
        assert c.eof
    sy.wait_log(r"upstream prematurely closed connection while reading upstream" if IS_NGINX
                else r"(?i)upstream.*closed")


def test_upstream_invalid_chunked_body(switchyard, raw_backend):
    def bad_chunks(conn):
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n")

    b = raw_backend(bad_chunks)
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@; location / {
        proxy_http_version 1.1; proxy_pass http://@B@; } }""", B=b.addr)
    out = raw_request(p, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    # nginx (whole response in one read) closes without sending anything; in
    # no case does the client get a complete 200 response
    if IS_NGINX:
        assert out == b""
    else:
        assert out == b"" or out.startswith(b"HTTP/1.1 502 ") or not out.endswith(b"0\r\n\r\n")
    sy.wait_log(r"upstream sent invalid chunked response" if IS_NGINX else r"(?i)upstream.*chunk")


@pytest.mark.slow
def test_504_read_timeout(switchyard, origin):
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@;
        location / { proxy_read_timeout 1s; proxy_pass http://@O@; } }""", O=origin.addr)
    t0 = time.monotonic()
    r = request(p, "GET", "/hang")
    elapsed = time.monotonic() - t0
    assert_error_page(r, 504, "Gateway Time-out")
    assert 0.8 < elapsed < 5, elapsed
    sy.wait_log(cause_re(r"\[error\] .*upstream timed out \(110: Connection timed out\) while "
                         r"reading response header from upstream", "timed out"))


@pytest.mark.slow
def test_504_connect_timeout(switchyard):
    bh = blackhole_port()
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@;
        location / { proxy_connect_timeout 1s; proxy_pass http://127.0.0.1:@B@; } }""", B=bh)
    t0 = time.monotonic()
    r = request(p, "GET", "/x")
    elapsed = time.monotonic() - t0
    assert_error_page(r, 504, "Gateway Time-out")
    assert 0.8 < elapsed < 5, elapsed
    sy.wait_log(cause_re(r"\[error\] .*upstream timed out \(110: Connection timed out\) while "
                         r"connecting to upstream", "timed out"))


def test_error_page_for_local_404_with_server_tokens_off(switchyard):
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@; server_tokens off;
        location / { return 404; } }""")
    r = request(p, "GET", "/x")
    assert_error_page(r, 404, "Not Found")
    assert r.header("Server") == PRODUCT
    assert f"<center>{PRODUCT}</center>" in r.text


def test_server_tokens_on_shows_version(switchyard):
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { return 404; } }")
    r = request(p, "GET", "/x")
    assert re.fullmatch(rf"{PRODUCT}/\d+\.\d+\.\d+", r.header("Server"))


# --------------------------------------------------------------------------
# error_page and proxy_intercept_errors


EP = """server { listen 127.0.0.1:@P@;
    location /intercept/ { proxy_intercept_errors on; error_page 404 /custom.html; proxy_pass http://@O@; }
    location /nointercept/ { error_page 404 /custom.html; proxy_pass http://@O@; }
    location /override/ { proxy_intercept_errors on; error_page 404 =200 /custom.html; proxy_pass http://@O@; }
    location /anystatus/ { proxy_intercept_errors on; error_page 404 = /custom.html; proxy_pass http://@O@; }
    location /multi/ { proxy_intercept_errors on; error_page 500 502 503 =503 /custom.html; proxy_pass http://@O@; }
    location = /custom.html { proxy_pass http://@O@/custom-error; }
    location /fb/ { error_page 502 = @fallback; proxy_pass http://127.0.0.1:@C@; }
    location /fb-intercept/ { proxy_intercept_errors on; error_page 503 = @fallback; proxy_pass http://@O@; }
    location @fallback { proxy_pass http://@O2@; }
    location /local404/ { error_page 404 /custom.html; return 404; }
}"""


@pytest.fixture
def ep_port(switchyard, origin, origin2):
    _, p = start(switchyard, EP, O=origin.addr, O2=origin2.addr, C=closed_port())
    return p


def test_error_page_with_intercept(ep_port, origin):
    r = request(ep_port, "GET", "/intercept/status/404")
    assert r.status == 404
    assert r.json()["target"] == "/custom-error"
    assert [rq["target"] for rq in origin.requests] == ["/intercept/status/404", "/custom-error"]


def test_error_page_ignored_without_intercept(ep_port, origin):
    r = request(ep_port, "GET", "/nointercept/status/404")
    assert r.status == 404
    assert r.json()["target"] == "/nointercept/status/404"
    assert len(origin.requests) == 1


def test_intercept_leaves_other_statuses(ep_port):
    r = request(ep_port, "GET", "/intercept/status/403")
    assert r.status == 403 and r.json()["target"] == "/intercept/status/403"
    r = request(ep_port, "GET", "/intercept/status/200")
    assert r.status == 200


@pytest.mark.parametrize("target,status", [
    ("/override/status/404", 200),
    ("/anystatus/status/404", 200),    # "=" alone: the status of the error page's response
    ("/multi/status/500", 503),
    ("/multi/status/502", 503),
])
def test_error_page_status_override(ep_port, target, status):
    r = request(ep_port, "GET", target)
    assert r.status == status
    assert r.json()["target"] == "/custom-error"


def test_error_page_for_local_return(ep_port):
    r = request(ep_port, "GET", "/local404/x")
    assert r.status == 404 and r.json()["target"] == "/custom-error"


def test_error_page_named_location_on_502(ep_port, origin2):
    r = request(ep_port, "GET", "/fb/x?a=1", headers=[("X-In", "1")])
    assert r.status == 200
    assert r.header("X-Origin-Port") == str(origin2.port)
    # the fallback gets the original request URI and headers
    rec = origin2.requests[-1]
    assert rec["target"] == "/fb/x?a=1"
    assert ["X-In", "1"] in rec["headers"]


def test_error_page_named_location_on_intercepted_status(ep_port, origin, origin2):
    r = request(ep_port, "GET", "/fb-intercept/status/503")
    # the named location re-proxies the same URI to origin2 (which answers 503 too)
    assert r.status == 503
    assert r.header("X-Origin-Port") == str(origin2.port)
    assert r.json()["target"] == "/fb-intercept/status/503"
    assert len(origin.requests) == 1


# --------------------------------------------------------------------------
# proxy_next_upstream


def test_next_upstream_on_error(switchyard, origin):
    sy, p = start(switchyard, """upstream u { server 127.0.0.1:@C@; server @O@; }
        server { listen 127.0.0.1:@P@; location / {
            add_header X-Up $upstream_addr; add_header X-Up-Status $upstream_status;
            proxy_pass http://u; } }""", C=closed_port(), O=origin.addr)
    rs = [request(p, "GET", f"/{i}") for i in range(6)]
    assert all(r.status == 200 for r in rs)
    assert len(origin.requests) == 6
    # the first request tried the refused server first, then the origin
    assert rs[0].header("X-Up").endswith(origin.addr)
    assert rs[0].header("X-Up").count(",") == 1
    assert rs[0].header("X-Up-Status") == "502, 200"
    # max_fails=1 by default: the refused server is not tried again for 10 s
    assert all(r.header("X-Up") == origin.addr for r in rs[1:])


def test_next_upstream_http_502(switchyard, origin, raw_backend):
    b = raw_backend(answer_502)
    sy, p = start(switchyard, """upstream u { server @B@; server @O@; }
        upstream v { server @B@; server @O@; }
        server { listen 127.0.0.1:@P@;
            location /retry/ { proxy_next_upstream error timeout http_502; proxy_pass http://u; }
            location /noretry/ { proxy_pass http://v; } }""", B=b.addr, O=origin.addr)
    rs = [request(p, "GET", f"/retry/{i}") for i in range(4)]
    assert [r.status for r in rs] == [200] * 4
    # a 502 answer counts as a failure: the backend is skipped afterwards
    assert b.connections == 1
    rs = [request(p, "GET", f"/noretry/{i}") for i in range(2)]
    statuses = sorted(r.status for r in rs)
    assert statuses == [200, 502]
    bad = [r for r in rs if r.status == 502][0]
    assert bad.text == "bad-502"


def test_next_upstream_off(switchyard, origin):
    sy, p = start(switchyard, """upstream u { server 127.0.0.1:@C@; server @O@; }
        server { listen 127.0.0.1:@P@; location / { proxy_next_upstream off; proxy_pass http://u; } }""",
                  C=closed_port(), O=origin.addr)
    statuses = [request(p, "GET", f"/{i}").status for i in range(4)]
    assert statuses[0] == 502
    assert statuses[1:] == [200, 200, 200]


@pytest.mark.slow
def test_next_upstream_on_connect_timeout(switchyard, origin):
    sy, p = start(switchyard, """upstream u { server 127.0.0.1:@B@; server @O@; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_connect_timeout 1s; proxy_next_upstream error timeout; proxy_pass http://u; } }""",
                  B=blackhole_port(), O=origin.addr)
    t0 = time.monotonic()
    r = request(p, "GET", "/x")
    assert r.status == 200 and r.header("X-Origin-Port") == str(origin.port)
    assert time.monotonic() - t0 > 0.8
    sy.wait_log(cause_re(r"upstream timed out .* while connecting to upstream", "timed out"))


def test_next_upstream_not_for_post_after_send(switchyard, origin, raw_backend):
    """A non-idempotent request that reached an upstream is not retried."""
    b = raw_backend(close_without_answer)
    sy, p = start(switchyard, """upstream u { server @B@; server @O@; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  B=b.addr, O=origin.addr)
    r = request(p, "POST", "/x", body=b"abc")
    assert r.status == 502
    assert b.connections == 1 and len(origin.requests) == 0


def test_no_live_upstreams(switchyard):
    sy, p = start(switchyard, """upstream u {
            server 127.0.0.1:@C1@ max_fails=1 fail_timeout=10s;
            server 127.0.0.1:@C2@ max_fails=1 fail_timeout=10s; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  C1=closed_port(), C2=closed_port())
    assert request(p, "GET", "/1").status == 502
    assert request(p, "GET", "/2").status == 502
    sy.wait_log(r"no live upstreams while connecting to upstream" if IS_NGINX
                else r"(?i)no live upstream")


# --------------------------------------------------------------------------
# load balancing


def test_weighted_round_robin_is_smooth(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@ weight=3; server @B@ weight=1; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    seq = []
    for i in range(40):
        r = request(p, "GET", f"/{i}")
        assert r.status == 200
        seq.append("A" if r.header("X-Origin-Port") == str(origin.port) else "B")
    assert seq.count("A") == 30 and seq.count("B") == 10
    # smooth WRR interleaves: A A B A, repeated
    assert "".join(seq) == "AABA" * 10


def test_round_robin_equal_weights(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@; server @B@; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    ports = [request(p, "GET", f"/{i}").header("X-Origin-Port") for i in range(10)]
    assert ports == [str(origin.port), str(origin2.port)] * 5


def test_backup_only_when_primaries_fail(switchyard, origin, origin2):
    sy, p = start(switchyard, """
        upstream healthy { server @A@; server @B@ backup; }
        upstream broken { server 127.0.0.1:@C@; server @B@ backup; }
        server { listen 127.0.0.1:@P@;
            location /h/ { proxy_pass http://healthy; }
            location /b/ { proxy_pass http://broken; } }""",
                  A=origin.addr, B=origin2.addr, C=closed_port())
    for i in range(6):
        assert request(p, "GET", f"/h/{i}").header("X-Origin-Port") == str(origin.port)
    assert len(origin2.requests) == 0
    for i in range(4):
        r = request(p, "GET", f"/b/{i}")
        assert r.status == 200 and r.header("X-Origin-Port") == str(origin2.port)


def test_down_server_never_used(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@; server @B@ down; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    for i in range(10):
        assert request(p, "GET", f"/{i}").status == 200
    assert origin2.connections == 0 and len(origin.requests) == 10


@pytest.mark.parametrize("max_fails,expected_bad", [(1, 1), (2, 2), (0, 5)])
def test_max_fails(switchyard, origin, raw_backend, max_fails, expected_bad):
    """A server that fails max_fails times within fail_timeout is left out for
    fail_timeout; max_fails=0 never leaves it out (round robin keeps trying)."""
    b = raw_backend(close_without_answer)
    sy, p = start(switchyard, """upstream u {
            server @B@ max_fails=@MF@ fail_timeout=10s; server @O@ max_fails=0; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  B=b.addr, O=origin.addr, MF=max_fails)
    for i in range(10):
        assert request(p, "GET", f"/{i}").status == 200
    assert b.connections == expected_bad
    assert len(origin.requests) == 10


def test_single_server_is_never_marked_down(switchyard, raw_backend):
    """With one server max_fails does not apply: every request tries it."""
    b = raw_backend(close_without_answer)
    sy, p = start(switchyard, """upstream u { server @B@ max_fails=1 fail_timeout=10s; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""", B=b.addr)
    for i in range(3):
        assert request(p, "GET", f"/{i}").status == 502
    assert b.connections == 3


@pytest.mark.slow
def test_fail_timeout_expires(switchyard, origin, raw_backend):
    """After fail_timeout the failed server is tried again."""
    state = {"n": 0}

    def flaky(conn):
        state["n"] += 1
        head = read_request_head(conn)
        if state["n"] == 1:
            return  # first attempt fails
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nflaky")
        assert head

    b = raw_backend(flaky)
    sy, p = start(switchyard, """upstream u {
            server @B@ max_fails=1 fail_timeout=1s; server @O@ max_fails=0; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  B=b.addr, O=origin.addr)
    assert request(p, "GET", "/first").status == 200
    assert b.connections == 1
    # within fail_timeout the flaky server is skipped
    for i in range(3):
        assert request(p, "GET", f"/skip{i}").header("X-Origin-Port") == str(origin.port)
    assert b.connections == 1
    # after it, requests reach it again (bounded wait, ~1 s)
    deadline = time.monotonic() + 5
    texts = []
    while time.monotonic() < deadline and "flaky" not in texts and len(texts) < 200:
        texts.append(request(p, "GET", "/probe").text)
        time.sleep(0.02)  # poll interval, not synchronisation
    assert "flaky" in texts


def test_no_fd_leak_on_upstream_errors(switchyard, origin, raw_backend):
    b = raw_backend(close_without_answer)
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@;
            location /ok/ { proxy_pass http://@O@; }
            location /refused/ { proxy_pass http://127.0.0.1:@C@; }
            location /closed/ { proxy_pass http://@B@; } }""",
                  O=origin.addr, C=closed_port(), B=b.addr)
    assert request(p, "GET", "/ok/warmup").status == 200
    baseline = sy.fd_count()
    for i in range(30):
        assert request(p, "GET", f"/refused/{i}").status == 502
        assert request(p, "GET", f"/closed/{i}").status == 502
        assert request(p, "GET", f"/ok/{i}").status == 200
    # closing is asynchronous: poll (bounded) until the count is back
    wait_until(lambda: sy.fd_count() <= baseline, 5, f"fd count back to {baseline}")
