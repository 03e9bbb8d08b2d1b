"""proxy_next_upstream and the server accounting behind it, as nginx
(ngx_http_upstream_next / ngx_http_upstream_test_next and the round-robin
peer's free): a POST, LOCK or PATCH that was sent is never tried again
without `non_idempotent`; when the tries run out on a listed status the last
upstream response is the answer; http_403/http_404 never count against a
server; max_fails counts failures until a success after fail_timeout (the
6/24 split of nginx-tests upstream.t); max_conns is enforced per worker with
`backup` taking over; `hash` with an empty key is round robin."""

import socket
import threading

from backends import HttpOrigin, closed_port, read_request_head
from harness import IS_NGINX, fill, free_port, http_conf, request, wait_until


def start(switchyard, body, **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw)))
    return sy, p


def total_requests(*origins):
    return sum(len(o.requests) for o in origins)


# --------------------------------------------------------------------------
# non-idempotent requests


def test_post_answered_404_is_not_retried(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@; server @B@; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_next_upstream error timeout http_404; proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    for method in ("POST", "PATCH", "LOCK"):
        before = total_requests(origin, origin2)
        r = request(p, method, "/status/404", body=b"side-effect")
        assert r.status == 404
        assert total_requests(origin, origin2) == before + 1, method
    # a GET goes on to the second server: both saw it
    before = total_requests(origin, origin2)
    assert request(p, "GET", "/status/404").status == 404
    assert total_requests(origin, origin2) == before + 2


def test_post_retried_with_non_idempotent(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@; server @B@; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_next_upstream error http_404 non_idempotent; proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    assert request(p, "POST", "/status/404", body=b"").status == 404
    assert total_requests(origin, origin2) == 2


# --------------------------------------------------------------------------
# the answer when the tries run out


def test_all_tries_listed_status_returns_last_response(switchyard, origin, origin2):
    """Every server answered a listed status: that response, not a 502."""
    sy, p = start(switchyard, """upstream u { server @A@ max_fails=0; server @B@ max_fails=0; }
        server { listen 127.0.0.1:@P@;
            location /s/ { proxy_next_upstream error http_500 http_502 http_503 http_504 http_404;
                           add_header X-S $upstream_status always;
                           proxy_pass http://u/; } }""",
                  A=origin.addr, B=origin2.addr)
    for status in (404, 500, 502, 503, 504):
        before = total_requests(origin, origin2)
        r = request(p, "GET", f"/s/status/{status}")
        assert r.status == status
        # the upstream's own body (its JSON echo), not an error page
        assert r.header("Content-Type") == "application/json"
        assert r.header("X-S") == f"{status}, {status}"
        assert total_requests(origin, origin2) == before + 2


def test_next_upstream_tries_limits_and_keeps_last_response(switchyard, origin, origin2):
    o3 = HttpOrigin().start()
    try:
        sy, p = start(switchyard, """upstream u { server @A@; server @B@; server @C@; }
            server { listen 127.0.0.1:@P@; location / {
                proxy_next_upstream http_503; proxy_next_upstream_tries 2;
                proxy_pass http://u; } }""", A=origin.addr, B=origin2.addr, C=o3.addr)
        r = request(p, "GET", "/status/503")
        assert r.status == 503 and r.header("Content-Type") == "application/json"
        assert total_requests(origin, origin2, o3) == 2
    finally:
        o3.stop()


def test_listed_status_then_no_live_upstreams_is_502(switchyard, origin):
    """The try after a 404 finds no server (the other one failed within
    fail_timeout): nginx's "no live upstreams" and 502, not the 404. A `down`
    server is no try at all: the 404 is the answer."""
    sy, p = start(switchyard, """upstream u { server @A@; server 127.0.0.1:@C@; }
        upstream d { server @A@; server 127.0.0.1:@C@ down; }
        server { listen 127.0.0.1:@P@;
            location /u/ { proxy_next_upstream error http_404; proxy_pass http://u/; }
            location /d/ { proxy_next_upstream error http_404; proxy_pass http://d/; } }""",
                  A=origin.addr, C=closed_port())
    # the 404 server, then the refused one: its error is the answer
    assert request(p, "GET", "/u/status/404").status == 502
    mark = sy.log_mark()
    r = request(p, "GET", "/u/status/404")
    assert r.status == 502 and r.header("Content-Type") == "text/html"
    assert len(origin.requests) == 2
    sy.wait_log(r"\[error\] .*no live upstreams" if IS_NGINX else r"(?i)no live upstream",
                since=mark)
    r = request(p, "GET", "/d/status/404")
    assert r.status == 404 and r.header("Content-Type") == "application/json"
    assert len(origin.requests) == 3


# --------------------------------------------------------------------------
# failure accounting


def test_404_retry_does_not_disable_the_server(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@ max_fails=1 fail_timeout=30s;
                                              server @B@ max_fails=1 fail_timeout=30s; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_next_upstream error http_404; proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    for i in range(2):
        assert request(p, "GET", f"/status/404?{i}").status == 404
    assert len(origin.requests) == 2 and len(origin2.requests) == 2
    for i in range(6):
        assert request(p, "GET", f"/ok{i}").status == 200
    # both servers still take their turn
    assert len(origin.requests) == 5 and len(origin2.requests) == 5


def test_503_retry_disables_the_server(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@ max_fails=1 fail_timeout=30s;
                                              server @B@ max_fails=1 fail_timeout=30s; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_next_upstream error http_503; proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    assert request(p, "GET", "/status/503").status == 503
    assert len(origin.requests) == 1 and len(origin2.requests) == 1
    # the first server's 503 was a failure (max_fails=1): it rests for 30 s;
    # the last one's 503 was passed on as the answer, no failure
    ports = {request(p, "GET", f"/ok{i}").header("X-Origin-Port") for i in range(3)}
    assert ports == {str(origin2.port)}


def test_max_fails_counts_until_success_after_fail_timeout(switchyard, origin, raw_backend):
    """nginx-tests upstream.t: a server that drops every third request, with
    max_fails=3 fail_timeout=10s, serves 6 of 30 requests (its 3rd, 6th and
    9th fail and go to the other), not 10: successes in between do not clear
    the failure count."""
    lock = threading.Lock()
    count = [0]

    def flaky(conn):
        read_request_head(conn)
        with lock:
            count[0] += 1
            n = count[0]
        if n % 3 == 0:
            return  # closed without an answer
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-From: flaky\r\n"
                     b"Content-Length: 2\r\n\r\nOK")

    b = raw_backend(flaky)
    sy, p = start(switchyard, """upstream u { server @B@ max_fails=3 fail_timeout=10s;
                                              server @O@ max_fails=3 fail_timeout=10s; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  B=b.addr, O=origin.addr)
    froms = [request(p, "GET", f"/close{i}").header("X-From") for i in range(30)]
    assert froms.count("flaky") == 6
    assert len(origin.requests) == 24


# --------------------------------------------------------------------------
# max_conns


def hold_request(port, path):
    """Send a request whose answer never comes (the origin's /hang)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def test_max_conns_uses_backup_when_full(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { server @A@ max_conns=1; server @B@ backup; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    held = hold_request(p, "/a/hang")
    try:
        wait_until(lambda: len(origin.requests) == 1, 5, "the held request at the primary")
        r = request(p, "GET", "/b")
        assert r.status == 200
        assert r.header("X-Origin-Port") == str(origin2.port)
    finally:
        held.close()
    # once the held connection is gone the primary takes requests again
    wait_until(lambda: request(p, "GET", "/c").header("X-Origin-Port") == str(origin.port),
               5, "the primary back in use")


def test_max_conns_full_is_no_live_upstreams(switchyard, origin):
    sy, p = start(switchyard, """upstream u { server @A@ max_conns=1; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  A=origin.addr)
    held = hold_request(p, "/a/hang")
    try:
        wait_until(lambda: len(origin.requests) == 1, 5, "the held request")
        assert request(p, "GET", "/b").status == 502
        sy.wait_log(r"\[error\] .*no live upstreams" if IS_NGINX else r"(?i)no live upstream")
        assert len(origin.requests) == 1
    finally:
        held.close()


# --------------------------------------------------------------------------
# hash


def test_hash_empty_key_is_round_robin(switchyard, origin, origin2):
    sy, p = start(switchyard, """upstream u { hash $arg_k; server @A@; server @B@; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://u; } }""",
                  A=origin.addr, B=origin2.addr)
    for i in range(6):
        assert request(p, "GET", f"/x{i}").status == 200
    assert len(origin.requests) == 3 and len(origin2.requests) == 3
    # a key still sticks to one server
    ports = {request(p, "GET", f"/y{i}?k=abc").header("X-Origin-Port") for i in range(4)}
    assert len(ports) == 1


# --------------------------------------------------------------------------
# proxy_intercept_errors

def test_intercepted_401_keeps_www_authenticate(switchyard, raw_backend):
    """nginx-tests proxy_intercept_errors.t: an intercepted 401 keeps the
    upstream's WWW-Authenticate header(s) (all of them since nginx 1.23; the
    first one in 1.22); other upstream headers, and those of other
    intercepted statuses, are dropped."""
    def answer(conn):
        head = read_request_head(conn)
        status = b"500 Internal Server Error" if b"/500" in head.split(b"\r\n")[0] else b"401 No"
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nWWW-Authenticate: Basic realm=foo\r\n"
                     b"WWW-Authenticate: Bearer\r\nX-Other: 1\r\n"
                     b"Content-Length: 4\r\nConnection: close\r\n\r\nauth")

    b = raw_backend(answer)
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@;
        location / { proxy_pass http://@B@; proxy_intercept_errors on;
                     error_page 401 500 /intercepted; }
        location = /intercepted { return 200 "intercepted"; } }""", B=b.addr)
    r = request(p, "GET", "/auth")
    assert r.status == 401 and r.text == "intercepted"
    wa = r.header_all("WWW-Authenticate")
    assert wa[0] == "Basic realm=foo"
    if not IS_NGINX:
        assert wa == ["Basic realm=foo", "Bearer"]
    assert not r.has_header("X-Other")
    r = request(p, "GET", "/500")
    assert r.status == 500 and r.text == "intercepted"
    assert not r.has_header("WWW-Authenticate") and not r.has_header("X-Other")


def test_websocket_tunnel_counts_toward_max_conns(switchyard, ws_backend, origin):
    """An upgraded connection holds its server's slot for its whole life
    (as nginx): with max_conns=1 the next request goes to the backup until
    the tunnel closes."""
    from ws_fixtures import RawWs, upgrade_request
    be = ws_backend()
    sy, p = start(switchyard, """upstream u { server @W@ max_conns=1; server @O@ backup; }
        server { listen 127.0.0.1:@P@; location / {
            proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade"; proxy_pass http://u; } }""",
                  W=be.addr, O=origin.addr)
    ws = RawWs(p)
    try:
        ws.send(upgrade_request("/ws"))
        status, _, _ = ws.read_head()
        assert status == 101
        r = request(p, "GET", "/plain")
        assert r.header("X-Origin-Port") == str(origin.port)
    finally:
        ws.close()
    # the tunnel is gone: the primary takes requests again
    wait_until(lambda: request(p, "GET", "/plain").header("X-Origin-Port") is None,
               5, "the WebSocket server back in use")


def test_next_upstream_timeout_ends_the_tries(switchyard, origin, raw_backend):
    """After proxy_next_upstream_timeout the listed status is the answer."""
    holder = {}

    def slow_503(conn):
        read_request_head(conn)
        holder["b"].stopping.wait(0.4)  # an upstream slower than the timeout
        conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy")

    b = holder["b"] = raw_backend(slow_503)
    sy, p = start(switchyard, """upstream u { server @B@ max_fails=0; server @O@ max_fails=0; }
        server { listen 127.0.0.1:@P@;
            location /t/ { proxy_next_upstream http_503; proxy_next_upstream_timeout 200ms;
                           proxy_pass http://u; }
            location /n/ { proxy_next_upstream http_503; proxy_pass http://u; } }""",
                  B=b.addr, O=origin.addr)
    r = request(p, "GET", "/t/x")
    if r.status == 200:  # round robin started at the origin this time
        r = request(p, "GET", "/t/y")
    assert r.status == 503 and r.text == "busy"
    # without the timeout the slow 503 moves on to the origin
    assert [request(p, "GET", f"/n/{i}").status for i in range(2)] == [200, 200]
