"""limit_conn_zone / limit_conn: requests in progress per key.

- with `limit_conn addr N`, N requests held by a slow upstream pass and the
  next one gets limit_conn_status (503), an error line `limiting connections
  by zone "addr", client: ...` and its status in the access log;
- a count is given back whenever a request ends: normal end (keep-alive or
  not), client abort, upstream failure, error page; never leaked: after all
  of these, N requests can be held again;
- a WebSocket tunnel counts for its whole life (as in nginx, where the
  upgraded request lives as long as the tunnel);
- dry run, custom status, independent keys, and the count shared by every
  worker process.

The expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket

import pytest

from backends import closed_port
from harness import HttpConn, free_port, only_worker, wait_until
from limits_support import (eventually_status, get, hold, limits_conf, served_by, sy_workers,
                            wait_lim_log)
from ws_fixtures import upgrade_request

__all__ = ["sy_workers"]  # the fixture, used below

ZONE = "    limit_conn_zone $binary_remote_addr zone=addr:1m;\n"


def conf(port: int, origin_addr: str, locations: str, zones: str = ZONE,
         extra_main: str = "") -> str:
    return limits_conf(port, origin_addr, locations, zones, extra_main)


@contextlib.contextmanager
def held(port: int, origin, n: int, path: str = "/hang", src: str = "127.0.0.1"):
    """n requests in progress (the origin never answers /hang); aborted by
    the client on the way out."""
    before = len(origin.requests)
    socks = []
    try:
        for _ in range(n):
            socks.append(hold(port, path, src))
        # counted before proxying, so once the origin has them they count
        wait_until(lambda: len(origin.requests) >= before + n, 5, f"{n} held requests")
        yield socks
    finally:
        for s in socks:
            s.close()


def test_extra_concurrent_request_is_rejected_then_counts_come_back(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin.addr, """
        location / { limit_conn addr 2; proxy_pass http://origin; }"""))
    with held(p, origin, 2):
        mark = sy.log_mark()
        assert get(p, "/third") == 503
        sy.wait_log(r'\[error\] \d+#\d+: \*\d+ limiting connections by zone "addr", '
                    r'client: 127\.0\.0\.1, server: limits\.test, request: "GET /third HTTP/1\.1", '
                    r'host: "localhost"', since=mark)
        # another client address has its own count
        assert get(p, "/other", src="127.0.0.2") == 200
    # the client aborted both: their counts come back (once the server saw it)
    eventually_status(p, "/", 200)
    with held(p, origin, 2):
        assert get(p, "/again") == 503
    eventually_status(p, "/", 200)
    lines = wait_lim_log(sy, 3)
    assert ["/third", "503", "-", "REJECTED"] in lines, lines
    assert ["/other", "200", "-", "PASSED"] in lines, lines


def test_counts_are_released_after_normal_ends_and_errors(switchyard, origin):
    p = free_port()
    dead = closed_port()
    sy = switchyard(conf(p, origin.addr, f"""
        location / {{ limit_conn addr 1; proxy_pass http://origin; }}
        location /dead {{ limit_conn addr 1; proxy_pass http://127.0.0.1:{dead}; }}
        location /err {{ limit_conn addr 1; error_page 502 /; proxy_pass http://127.0.0.1:{dead}; }}
        location /files {{ limit_conn addr 1; root html; }}"""))
    # keep-alive: one request at a time, each gives its count back
    with HttpConn(p) as c:
        for i in range(5):
            assert c.request("GET", f"/ka{i}").status == 200
        for i in range(3):
            assert c.request("GET", f"/dead{i}").status == 502  # upstream refused
        assert c.request("GET", "/err").status == 502           # error page via /
        for i in range(3):
            assert c.request("GET", "/files/none").status == 404
    for i in range(3):
        assert get(p, f"/close{i}") == 200
    # nothing leaked: the one allowed request can still be held
    with held(p, origin, 1):
        assert get(p, "/x") == 503
    eventually_status(p, "/", 200)
    assert "limiting connections" in sy.error_log()


def test_request_body_discarded_after_rejection(switchyard, origin):
    """A rejected request with a body: the answer comes, the connection is
    usable for the next request, and nothing is counted for it."""
    p = free_port()
    switchyard(conf(p, origin.addr, """
        location / { limit_conn addr 1; proxy_pass http://origin; }"""))
    with held(p, origin, 1):
        with HttpConn(p) as c:
            r = c.request("POST", "/post", body=b"x" * 5000)
            assert r.status == 503
    eventually_status(p, "/", 200)


def test_custom_status_log_level_and_dry_run(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin.addr, """
        location / { limit_conn addr 1; limit_conn_status 429; limit_conn_log_level warn;
                     proxy_pass http://origin; }
        location /dry/ { limit_conn addr 1; limit_conn_dry_run on; proxy_pass http://origin; }"""))
    with held(p, origin, 1):
        assert get(p, "/x") == 429
        sy.wait_log(r'\[warn\] .*limiting connections by zone "addr"')
    eventually_status(p, "/", 200)
    with held(p, origin, 1, path="/dry/hang"):
        assert get(p, "/dry/y") == 200
        sy.wait_log(r'limiting connections, dry run, by zone "addr"')
    lines = wait_lim_log(sy, 2)
    assert ["/x", "429", "-", "REJECTED"] in lines, lines
    assert ["/dry/y", "200", "-", "REJECTED_DRY_RUN"] in lines, lines


def test_several_limit_conn_all_apply(switchyard, origin):
    p = free_port()
    switchyard(conf(p, origin.addr, """
        limit_conn perserver 2;
        limit_conn addr 5;
        location / { proxy_pass http://origin; }""",
                    ZONE + "    limit_conn_zone $server_name zone=perserver:64k;\n"))
    with held(p, origin, 1, src="127.0.0.1"), held(p, origin, 1, src="127.0.0.2"):
        assert get(p, "/", src="127.0.0.3") == 503  # the server's limit, any client
    eventually_status(p, "/", 200, src="127.0.0.3")


def open_ws(port: int, path: str = "/ws") -> tuple[socket.socket, bytes]:
    """A WebSocket handshake through the proxy: (socket, response head)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(upgrade_request(path))
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            break
        head += b
    return s, head


def test_websocket_tunnel_counts_until_it_closes(switchyard, ws_backend):
    be = ws_backend("ws")
    p = free_port()
    sy = switchyard(conf(p, be.addr, """
        location /ws {
            limit_conn addr 2;
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }"""))
    tunnels = []
    try:
        for _ in range(2):
            s, head = open_ws(p)
            tunnels.append(s)
            assert head.startswith(b"HTTP/1.1 101 "), head
        s, head = open_ws(p)
        s.close()
        assert re.match(rb"HTTP/1\.1 503 ", head), head
        sy.wait_log(r'limiting connections by zone "addr"')
        # closing one tunnel gives its count back
        tunnels.pop(0).close()
        wait_until(lambda: _ws_ok(p, tunnels), 5, "a new tunnel after one closed")
        assert len(tunnels) == 2
    finally:
        for s in tunnels:
            s.close()


def _ws_ok(port: int, tunnels: list) -> bool:
    s, head = open_ws(port)
    if head.startswith(b"HTTP/1.1 101 "):
        tunnels.append(s)
        return True
    s.close()
    return False


# --------------------------------------------------------------------------
# across worker processes


def test_the_count_is_shared_by_every_worker(sy_workers, origin):
    p = free_port()
    m = sy_workers(conf(p, origin.addr, """
        location / { limit_conn addr 1; proxy_pass http://origin; }""",
                        extra_main="worker_processes 2;"), 2)
    a, b = m.workers()
    with only_worker(m, a):
        assert served_by(p) == a
        s = hold(p, "/hang")
        wait_until(lambda: len(origin.requests) >= 1, 5, "the held request")
    try:
        with only_worker(m, b):
            assert served_by(p) == b
            assert get(p, "/second") == 503  # held by the other worker
    finally:
        s.close()
    # worker a sees the abort and gives the count back: b can serve now
    with only_worker(m, b):
        wait_until(lambda: len(m.workers()) == 2, 5, "workers")
    eventually_status(p, "/", 200)


def test_count_held_across_a_reload_is_given_back(sy_workers, origin):
    p = free_port()
    text = conf(p, origin.addr, """
        location / { limit_conn addr 1; proxy_pass http://origin; }""",
                extra_main="worker_processes 2;")
    m = sy_workers(text, 2)
    s = hold(p, "/hang")
    wait_until(lambda: len(origin.requests) >= 1, 5, "the held request")
    m.reload(text.replace('location /pid {', 'location /new { return 200 "new"; }\n'
                          '        location /pid {'), wait_old=False)
    eventually_status(p, "/new", 200)  # (nginx: an old worker may still accept a moment)
    assert get(p, "/x") == 503  # still counted after the reload
    s.close()
    eventually_status(p, "/", 200)


@pytest.mark.switchyard_only  # nginx leaks the counts of a worker that dies
def test_counts_of_a_dead_worker_do_not_leak(sy_workers, origin):
    p = free_port()
    m = sy_workers(conf(p, origin.addr, """
        location / { limit_conn addr 1; proxy_pass http://origin; }""",
                        extra_main="worker_processes 2;"), 2)
    a, b = m.workers()
    with only_worker(m, a):
        s = hold(p, "/hang")
        wait_until(lambda: len(origin.requests) >= 1, 5, "the held request")
    try:
        assert get(p, "/x") == 503
        mark = m.log_mark()
        os.kill(a, signal.SIGKILL)  # a worker of the master this test started
        m.wait_log(rf"worker process {a} exited on signal 9", since=mark)
        m.wait_log(r'zone "addr" emptied: a worker process died', since=mark)
        m.wait_workers(2)
        eventually_status(p, "/", 200)
    finally:
        s.close()
    # the other worker's counts still work after the reset
    b_ = [w for w in m.workers() if w != a]
    assert b in b_
    with only_worker(m, b):
        s2 = hold(p, "/hang")
        wait_until(lambda: len(origin.requests) >= 3, 5, "the second held request")
        assert get(p, "/y") == 503
    s2.close()
    eventually_status(p, "/", 200)


def test_over_long_key_is_logged_and_not_limited(switchyard, origin):
    """nginx: a limit_conn key over 255 bytes is not counted, with an error
    line naming the key."""
    p = free_port()
    sy = switchyard(conf(p, origin.addr, """
        location / { limit_conn byhdr 1; proxy_pass http://origin; }""",
                         zones="    limit_conn_zone $http_x_key zone=byhdr:1m;\n"))
    long_key = "k" * 300
    with held(p, origin, 1, src="127.0.0.1"):
        # the held request's key is empty (no header): not counted either;
        # an over-long key passes even though the limit is 1
        assert get(p, "/a", headers=(("X-Key", long_key),)) == 200
        assert get(p, "/b", headers=(("X-Key", long_key),)) == 200
    # nginx prints the whole value, Switchyard its first 64 bytes and "..."
    sy.wait_log(r'\[error\] .*the value of the "\$http_x_key" key is more than 255 bytes: '
                r'"k{64}')
