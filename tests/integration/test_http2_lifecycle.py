"""HTTP/2 connection lifecycle (issue 13 item 2): GOAWAY on graceful quit
and when keepalive_requests is reached, reloads, and a client RST_STREAM
that must close the upstream socket at once.

nginx 1.22 passes what it does: GOAWAY on quit and on keepalive_requests,
in-flight streams completed across a reload. It ends idle HTTP/2
connections on reload, which Switchyard must not (the HTTP/1.1 guarantee):
that test is `switchyard_only`.
"""

from __future__ import annotations

import signal
import time

import pytest

from h2_support import H2Client, h2_server
from h2.errors import ErrorCodes
from harness import IS_NGINX, free_port, http_conf, wait_until


def conf(origin, port: int, extra: str = "") -> str:
    return http_conf(h2_server(port, body=f"{extra}\n    location / {{ proxy_pass "
                                         f"http://{origin.addr}; }}"))


def quit_and_wait(sy):
    """SIGQUIT the proxy; the test owns the exit (teardown must not)."""
    sy.check_start = False
    sy.signal(signal.SIGQUIT)


def test_graceful_quit_finishes_the_stream_then_goaway(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(origin, p))
    with H2Client(p, timeout=10) as c:
        assert c.request("GET", "/warm").status == 200
        sid = c.start_request("GET", "/slow/700")
        origin.wait_requests(2)
        quit_and_wait(sy)
        st = c.wait_stream(sid)
        assert st.status == 200 and st.reset is None
        ga = c.wait_goaway()
        assert ga.error_code == ErrorCodes.NO_ERROR
        assert ga.last_stream_id >= sid
        assert c.wait_closed(10)
    assert sy.wait_exit() == 0


def test_graceful_quit_sends_goaway_to_an_idle_connection(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(origin, p))
    with H2Client(p, timeout=10) as c:
        assert c.request("GET", "/warm").status == 200
        quit_and_wait(sy)
        ga = c.wait_goaway()
        assert ga.error_code == ErrorCodes.NO_ERROR and ga.last_stream_id == 1
        assert c.wait_closed(10)
    assert sy.wait_exit() == 0


def test_keepalive_requests_ends_with_goaway(switchyard, origin):
    p = free_port()
    switchyard(conf(origin, p, "keepalive_requests 3;"))
    with H2Client(p) as c:
        for i in range(3):
            assert c.request("GET", f"/{i}").status == 200
        ga = c.wait_goaway()
        assert ga.error_code == ErrorCodes.NO_ERROR and ga.last_stream_id == 5
        assert c.wait_closed(5)
    assert len(origin.requests) == 3
    # a new connection is served as before
    with H2Client(p) as c:
        assert c.request("GET", "/again").status == 200


def test_reload_completes_in_flight_streams(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(origin, p))
    with H2Client(p, timeout=15) as c:
        sids = [c.start_request("GET", f"/slow/{600 + i}") for i in range(3)]
        origin.wait_requests(3)
        sy.reload(conf(origin, p, "add_header X-Gen two always;"))
        for sid in sids:
            st = c.wait_stream(sid)
            assert st.status == 200 and st.reset is None
    with H2Client(p) as c:
        assert c.request("GET", "/new").header("x-gen") == "two"


@pytest.mark.switchyard_only  # nginx's old worker sends GOAWAY and closes idle h2 connections
def test_reload_keeps_the_connection_open_for_new_streams(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(origin, p))
    with H2Client(p, timeout=10) as c:
        assert c.request("GET", "/before").status == 200
        slow = c.start_request("GET", "/slow/500")
        sy.reload(conf(origin, p, "add_header X-Gen two always;"))
        assert c.wait_stream(slow).status == 200
        st = c.request("GET", "/after")
        assert st.status == 200 and c.goaway is None
        # the connection is the old one: the stream carries on counting
        assert max(c.streams) == 5


def test_client_rst_stream_closes_the_upstream_socket(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(origin, p))
    with H2Client(p) as c:
        sid = c.start_request("GET", "/hang")
        origin.wait_requests(1)
        wait_until(lambda: origin.open_connections() == 1, 5, "the upstream connection")
        t0 = time.monotonic()
        c.reset(sid)
        wait_until(lambda: origin.open_connections() == 0, 3, "the upstream socket closed")
        took = time.monotonic() - t0
        # the connection itself lives on
        assert c.request("GET", "/after").status == 200
    assert took < 2.0
    if not IS_NGINX:
        # one access-log line for the abandoned stream, with nginx's 499
        sy.wait_access_log(r'"GET /hang HTTP/2\.0" 499 ')
