"""stub_status (ngx_http_stub_status_module): nginx's page and variables
from counters shared by every worker and kept across reloads: accepts,
handled and requests count up; Active, Reading, Writing and Waiting follow
connections reading a head, requests in progress (WebSocket tunnels too)
and idle keep-alive ones. Runs against nginx too.
"""

from __future__ import annotations

import re
import socket

import pytest

from harness import free_port, http_conf, only_worker, request, wait_until
from limits_support import served_by, sy_workers  # noqa: F401  (fixture)
from ws_fixtures import run, ws_backend, ws_connect, ws_location  # noqa: F401

PAGE = re.compile(rb"\AActive connections: (\d+) \n"
                  rb"server accepts handled requests\n"
                  rb" (\d+) (\d+) (\d+) \n"
                  rb"Reading: (\d+) Writing: (\d+) Waiting: (\d+) \n\Z")


def conf(port: int, extra_main: str = "", extra: str = "", listen: str = "") -> str:
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port}{listen};
    location = /status {{ stub_status; }}
    location = /old {{ stub_status on; }}
    location = /vars {{ return 200 "$connections_active $connections_reading $connections_writing $connections_waiting"; }}
    location /pid {{ return 200 "$pid"; }}
    {extra}
}}""", extra_main=extra_main)


def status(port: int, path: str = "/status") -> tuple[int, ...]:
    r = request(port, "GET", path)
    assert r.status == 200 and r.header("content-type") == "text/plain", r
    m = PAGE.match(r.body)
    assert m, r.body
    return tuple(int(x) for x in m.groups())


def test_page_format_and_counting(switchyard):
    port = free_port()
    switchyard(conf(port))
    active, accepts, handled, requests, reading, writing, waiting = status(port)
    assert active >= 1 and writing >= 1  # this request
    assert accepts == handled >= 1
    for _ in range(3):
        assert request(port, "GET", "/pid").status == 200
    _, accepts2, handled2, requests2, _, _, _ = status(port, "/old")
    assert accepts2 == accepts + 4 and handled2 == handled + 4  # a connection each
    assert requests2 == requests + 4


def test_reading_writing_waiting(switchyard):
    port = free_port()
    switchyard(conf(port))
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")  # now waiting for its next request
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /pid HTTP/1.1\r\nHo")  # reading a head
    try:
        def counted():
            s = status(port)
            return s[4] == 1 and s[6] >= 1 and s[0] == 3
        wait_until(counted, 5, "reading 1, waiting 1, active 3")
        assert request(port, "GET", "/vars").body.split()[1] == b"1"
    finally:
        idle.close()
        half.close()
    wait_until(lambda: status(port)[0] == 1, 5, "the two connections gone")


def test_websocket_tunnel_counts_as_active_and_writing(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    switchyard(conf(port, extra=ws_location("second", b.addr)))
    base = status(port)

    async def go():
        async with ws_connect(port) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            return status(port)

    during = run(go())
    assert during[0] == base[0] + 1 and during[5] == base[5] + 1, (base, during)
    wait_until(lambda: status(port)[0] == base[0] and status(port)[5] == base[5], 5,
               "the tunnel gone from Active and Writing")


def test_not_get_is_405(switchyard):
    port = free_port()
    switchyard(conf(port))
    assert request(port, "POST", "/status", body=b"x").status == 405


@pytest.mark.switchyard_only
def test_shared_by_workers_and_kept_across_reloads(sy_workers):  # noqa: F811
    port = free_port()
    text = conf(port, extra_main="worker_processes 2;")
    m = sy_workers(text, 2)
    a, b = m.workers()
    with only_worker(m, a):
        assert served_by(port) == a
        first = status(port)
    with only_worker(m, b):
        assert served_by(port) == b
        second = status(port)  # the other worker sees the first one's counts
    assert second[3] == first[3] + 2 and second[1] == first[1] + 2, (first, second)
    m.reload(text.replace("stub_status on;", "stub_status;"))
    after = status(port)
    assert after[1] == second[1] + 1 and after[3] == second[3] + 1, (second, after)
