"""Upgrade requests that must not become tunnels, over raw sockets.

Switchyard validates a WebSocket upgrade before anything reaches the upstream
(GET, no body, a Sec-WebSocket-Key that is base64 of 16 bytes, version 13) and
tunnels only after a 101 that answers the upgrade it asked for (right
Sec-WebSocket-Accept). Any other answer is an ordinary response and the client
connection stays HTTP. nginx checks none of this (it forwards whatever the
config says and tunnels on any 101); where nginx's behaviour is observable the
tests assert it when run against nginx, so each shows it can fail.

Configs (ws_fixtures.ws_conf): the seed's `location /ws` ("first": no
Upgrade/Connection lines, Switchyard only; "second": the three magic lines;
"map": the Connection map + keep-alive upstream) and `location /second {
return 200 "routed"; }` in the same server.
"""

from __future__ import annotations

import pytest

from harness import IS_NGINX, HttpConn, build_request, free_port, request
from ws_fixtures import (OP_CLOSE, OP_TEXT, RawWs, accept_for, close_payload, frame, has_token,
                         header, upgrade_request, ws_conf, ws_key)

KIND_PARAMS = [pytest.param("first", marks=pytest.mark.switchyard_only), "second", "map"]
# configs without an upstream keep-alive pool: the proxy closes the upstream
# connection after a refused upgrade, which the backend reports (tcp_close)
NOPOOL_PARAMS = [pytest.param("first", marks=pytest.mark.switchyard_only), "second"]


def start_ws(switchyard, ws_backend, kind, mode="ws", backend_opts=None, **conf_kw):
    be = ws_backend(mode, **(backend_opts or {}))
    p = free_port()
    sy = switchyard(ws_conf(kind, be.addr, p, **conf_kw))
    return sy, p, be


def hget(pairs, name):
    n = name.lower()
    return [v for k, v in pairs if k.lower() == n]


def warn_re(reason: str) -> str:
    """A [warn] line whose message (the part before ", client:", where the
    request line is quoted) matches `reason`."""
    return rf"\[warn\] (?:(?!, client:)[^\n])*(?:{reason})"


def barrier(p, be, tag):
    """An ordinary request through the proxy to the backend; returns once the
    backend has seen it, so every earlier forwarding decision is visible."""
    r = request(p, "GET", f"/ws/barrier-{tag}")
    assert r.status == 200
    be.wait_event("request", url=f"/ws/barrier-{tag}")


# --------------------------------------------------------------------------
# invalid upgrade requests: refused by the proxy itself

REFUSALS = {
    "post": dict(
        req=lambda: upgrade_request("/ws/post", method="POST"),
        status=400, log=warn_re(r"\bPOST\b|\bmethod\b"), nginx_status=405),
    "body": dict(
        req=lambda: upgrade_request("/ws/body", extra=[("Content-Length", "5")]) + b"hello",
        status=400, log=warn_re(r"\bbody\b|Content-Length"), nginx_status=101),
    "no-key": dict(
        req=lambda: upgrade_request("/ws/no-key", drop=("sec-websocket-key",)),
        status=400, log=warn_re("client sent Upgrade without Sec-WebSocket-Key"),
        nginx_status=400),
    "short-key": dict(  # base64 of 5 bytes
        req=lambda: upgrade_request("/ws/short-key", key="c2hvcnQ="),
        status=400, log=warn_re("invalid Sec-WebSocket-Key"), nginx_status=400),
    "not-base64-key": dict(
        req=lambda: upgrade_request("/ws/not-base64-key", key="!!!!not~base64~at~all!!"),
        status=400, log=warn_re("invalid Sec-WebSocket-Key"), nginx_status=400),
    "long-key": dict(  # base64 of 17 bytes
        req=lambda: upgrade_request("/ws/long-key", key="AAAAAAAAAAAAAAAAAAAAAAA="),
        status=400, log=warn_re("invalid Sec-WebSocket-Key"), nginx_status=400),
    "version-8": dict(
        req=lambda: upgrade_request("/ws/version-8", version="8"),
        status=426, log=warn_re("unsupported Sec-WebSocket-Version"), nginx_status=101),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("kind", NOPOOL_PARAMS)
def test_invalid_upgrade_refused(switchyard, ws_backend, kind, case):
    """Switchyard answers itself, logs a [warn] line naming the reason and
    never forwards the request. nginx (second config) forwards it and relays
    whatever the backend says (ws: 405 for POST, 400 for a bad key; it
    accepts version 8, and a GET with a body becomes a 101 whose body bytes
    reach the backend as WebSocket data)."""
    c = REFUSALS[case]
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    mark = sy.log_mark()
    with HttpConn(p) as conn:
        conn.send(c["req"]())
        r = conn.read_response()
    path = "/ws/" + case
    if IS_NGINX:
        rec = be.wait_event("request", url=path)
        assert rec["upgrade"] is True
        assert r.status == c["nginx_status"]
        return
    assert r.status == c["status"], r
    assert r.status != 101
    if c["status"] == 426:
        assert r.header("Sec-WebSocket-Version") == "13"
    sy.wait_log(c["log"], since=mark)
    barrier(p, be, case)
    assert [e for e in be.requests() if e["url"] == path] == []
    assert be.find("ws_open") == []


# --------------------------------------------------------------------------
# the backend refuses: the client gets that answer and stays on HTTP


@pytest.mark.parametrize("status", [426, 400, 200])
@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_backend_refusal_relayed_then_next_request_routed(switchyard, ws_backend, kind, status):
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    with HttpConn(p) as c:
        c.send(upgrade_request(f"/ws/reject/{status}"))
        r = c.read_response()
        assert r.status == status
        assert r.body == f"rejected {status}\n".encode()
        if status == 426:
            assert r.header("Sec-WebSocket-Version") == "13"
        # the same client connection: the next request is HTTP, routed by the proxy
        c.send(b"GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200
        assert r2.body == b"routed"
        # and once more, to the backend location
        c.send(b"GET /ws/after-refusal HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r3 = c.read_response()
        assert r3.status == 200
        assert r3.json()["url"] == "/ws/after-refusal"
    be.wait_event("request", url="/ws/after-refusal")
    # the backend parsed exactly the refused upgrade and the last request:
    # /second never reached it, raw or otherwise
    assert [e["url"] for e in be.requests()] == [f"/ws/reject/{status}", "/ws/after-refusal"]
    assert be.find("client_error") == []


@pytest.mark.parametrize("kind", NOPOOL_PARAMS)
def test_forged_101_is_502(switchyard, ws_backend, kind):
    """The backend answers 101 with a wrong Sec-WebSocket-Accept: Switchyard
    answers 502 and logs it. nginx does not check and tunnels."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    mark = sy.log_mark()
    key = ws_key()
    with RawWs(p) as c:
        c.send(upgrade_request("/ws/forge101", key=key))
        status, headers, raw = c.read_head()
        if IS_NGINX:
            assert status == 101
            assert header(headers, "Sec-WebSocket-Accept") != accept_for(key)
            return
        assert status == 502
    sy.wait_log(r"bad Sec-WebSocket-Accept", since=mark)
    assert be.find("tunnel_bytes") == []


@pytest.mark.switchyard_only
@pytest.mark.parametrize("kind", ["first", "second"])
def test_unsolicited_101_is_502(switchyard, ws_backend, kind):
    """The client asked for no upgrade; the backend answers 101 anyway.
    (nginx 1.22 sends the client nothing until proxy_read_timeout.)"""
    sy, p, be = start_ws(switchyard, ws_backend, kind, mode="raw101",
                         backend_opts={"token": "websocket", "accept": "none"})
    with HttpConn(p) as c:
        c.send(build_request("GET", "/ws/plain"))
        r = c.read_response()
        assert r.status == 502
    rec = be.wait_event("request", url="/ws/plain")
    assert hget(rec["headers"], "Upgrade") == []


# --------------------------------------------------------------------------
# other Upgrade tokens

H2C_HEADERS = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
               ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]


@pytest.mark.parametrize("kind", ["first", "second"])
def test_h2c_upgrade_never_forwarded(switchyard, ws_backend, kind):
    """`Upgrade: h2c` is answered as ordinary HTTP; the backend sees neither
    Upgrade nor HTTP2-Settings, even where the config passes $http_upgrade
    (h2c smuggling). nginx forwards HTTP2-Settings always and, with the
    second config, Upgrade: h2c too (asserted under nginx)."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    r = request(p, "GET", "/ws/h2c", headers=H2C_HEADERS)
    assert r.status == 200
    rec = be.wait_event("request", url="/ws/h2c")
    if IS_NGINX:
        assert hget(rec["headers"], "HTTP2-Settings") == ["AAMAAABkAARAAAAAAAIAAAAA"]
        assert hget(rec["headers"], "Upgrade") == ([] if kind == "first" else ["h2c"])
        return
    assert hget(rec["headers"], "Upgrade") == []
    assert hget(rec["headers"], "HTTP2-Settings") == []
    assert not any(has_token(v, "upgrade") for v in hget(rec["headers"], "Connection"))
    assert rec["upgrade"] is False


def spdy_exchange(p, path="/ws/spdy"):
    """Upgrade to SPDY/3.1 over a raw socket; returns (status, headers, echo)."""
    with RawWs(p) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
               "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
               .encode())
        status, headers, raw = c.read_head()
        if status != 101:
            return status, headers, None
        payload = bytes(range(256)) * 64
        c.send(payload)
        echo = c.read_body(len(payload))
        return status, headers, echo


def test_spdy_upgrade_without_opt_in_is_ordinary(switchyard, ws_backend):
    """First config (no opt-in): the backend never sees Upgrade: SPDY/3.1 and
    answers an ordinary request (nginx too: it never forwards Upgrade unless
    told to)."""
    sy, p, be = start_ws(switchyard, ws_backend, "first", mode="raw101",
                         backend_opts={"token": "SPDY/3.1", "accept": "none",
                                       "only_if_upgrade": True})
    status, headers, echo = spdy_exchange(p)
    assert status == 200
    rec = be.wait_event("request", url="/ws/spdy")
    assert hget(rec["headers"], "Upgrade") == []
    assert rec["upgrade"] is False
    assert be.find("upgraded") == []


def test_spdy_upgrade_with_nginx_opt_in_tunnels(switchyard, ws_backend):
    """Second config (proxy_set_header Upgrade $http_upgrade; Connection
    "upgrade"): the upgrade is forwarded and the tunnel echoes bytes."""
    sy, p, be = start_ws(switchyard, ws_backend, "second", mode="raw101",
                         backend_opts={"token": "SPDY/3.1", "accept": "none",
                                       "only_if_upgrade": True})
    status, headers, echo = spdy_exchange(p)
    assert status == 101
    assert header(headers, "Upgrade") == "SPDY/3.1"
    assert echo == bytes(range(256)) * 64
    rec = be.wait_event("request", url="/ws/spdy")
    assert hget(rec["headers"], "Upgrade") == ["SPDY/3.1"]
    assert hget(rec["headers"], "X-Stream-Protocol-Version") == ["v4.channel.k8s.io"]


@pytest.mark.switchyard_only
def test_spdy_upgrade_with_websocket_upgrade_tokens_tunnels(switchyard, ws_backend):
    sy, p, be = start_ws(switchyard, ws_backend, "first", mode="raw101",
                         backend_opts={"token": "SPDY/3.1", "accept": "none",
                                       "only_if_upgrade": True},
                         loc_extra="websocket_upgrade_tokens SPDY/3.1;")
    status, headers, echo = spdy_exchange(p)
    assert status == 101
    assert header(headers, "Upgrade") == "SPDY/3.1"
    assert echo == bytes(range(256)) * 64
    rec = be.wait_event("request", url="/ws/spdy")
    assert hget(rec["headers"], "Upgrade") == ["SPDY/3.1"]
    assert any(has_token(v, "upgrade") for v in hget(rec["headers"], "Connection"))


# --------------------------------------------------------------------------
# bytes the client sends before the 101


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_early_frame_delivered_after_101(switchyard, ws_backend, kind):
    """Head and a WebSocket frame in one write: the backend gets the frame
    only after it answered 101 (nothing after the head when it parsed it),
    and the echo still works."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    key = ws_key()
    with RawWs(p) as c:
        c.send(upgrade_request("/ws/early", key=key) + frame(OP_TEXT, b"early bird"))
        status, headers, raw = c.read_head()
        assert status == 101
        assert header(headers, "Sec-WebSocket-Accept") == accept_for(key)
        assert c.read_frame() == (True, OP_TEXT, b"early bird")
        c.send(frame(OP_CLOSE, close_payload(1000)))
        assert c.read_frame() == (True, OP_CLOSE, close_payload(1000))
    rec = be.wait_event("request", url="/ws/early")
    assert rec["head_len"] == 0, "bytes after the head reached the backend before its 101"


@pytest.mark.parametrize("early", ["frame", "http"])
@pytest.mark.parametrize("kind", NOPOOL_PARAMS)
def test_early_bytes_never_reach_refusing_backend(switchyard, ws_backend, kind, early):
    """The backend answers 403: the bytes the client sent after the head (a
    frame, or something that looks like a smuggled request) never reach it."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    extra = (frame(OP_TEXT, b"GET /ws/smuggled HTTP/1.1\r\nHost: x\r\n\r\n") if early == "frame"
             else b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with HttpConn(p) as c:
        c.send(upgrade_request("/ws/reject/403") + extra)
        r = c.read_response()
        assert r.status == 403
        assert r.body == b"rejected 403\n"
    rej = be.wait_event("reject", status=403)
    rec = be.wait_event("request", url="/ws/reject/403")
    assert rec["head_len"] == 0
    # the proxy closes that upstream connection (no keep-alive pool here);
    # everything it ever sent on it has arrived (and been parsed) by then
    be.wait_event("tcp_close", conn=rej["conn"])
    barrier(p, be, "early")
    assert [e["url"] for e in be.requests()] == ["/ws/reject/403", "/ws/barrier-early"]
    assert be.find("client_error") == []


def test_seen_endpoint_lists_handshakes(ws_backend):
    """Self-test of the backend's GET /_seen (used by humans debugging): it
    lists each request head the backend parsed, talking to it directly."""
    be = ws_backend()
    with RawWs(be.port) as c:
        key, status, headers, raw = c.handshake("/ws/direct")
        assert status == 101 and header(headers, "Sec-WebSocket-Accept") == accept_for(key)
    seen = be.seen()
    assert [s["url"] for s in seen] == ["/ws/direct"]
    assert hget(seen[0]["headers"], "Sec-WebSocket-Key") == [key]
    assert seen[0]["upgrade"] is True and seen[0]["head_len"] == 0
