"""WebSockets through the proxy with the configurations of the seed blog post
(../shared/seed/nginx-websocket-proxy-blog-post.md):

  first   the post's failing config: Host/X-Real-IP/X-Forwarded-* and
          proxy_pass, no Upgrade/Connection lines. On nginx the upgrade is
          dropped and the handshake fails; Switchyard upgrades automatically.
  second  the post's working config: + proxy_http_version 1.1,
          proxy_set_header Upgrade $http_upgrade, Connection "upgrade".
  map     nginx's documented idiom: map $http_upgrade $connection_upgrade
          { default upgrade; '' close; }, Connection $connection_upgrade, and
          an upstream{} with keepalive 4.

Peers: the node `ws` echo server (ws_backend.js) behind the proxy, Debian's
Python `websockets` 10.4 as the client (raw sockets where bytes must be exact).
Every test with the first config is switchyard_only except
test_first_config_fails_on_nginx_works_on_switchyard, which asserts nginx's
failure when run against nginx (so the suite shows it can fail).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest
import websockets

from harness import IS_NGINX, free_port, request, wait_until
from ws_fixtures import (OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWs, accept_for,
                         close_payload, frame, has_token, header, run, ws_conf, ws_connect)

KIND_PARAMS = [pytest.param("first", marks=pytest.mark.switchyard_only), "second", "map"]


def start_ws(switchyard, ws_backend, kind, **conf_kw):
    be = ws_backend()
    p = free_port()
    sy = switchyard(ws_conf(kind, be.addr, p, **conf_kw))
    return sy, p, be


def hget(pairs, name):
    """All values of header `name` in a [[name, value], ...] list."""
    n = name.lower()
    return [v for k, v in pairs if k.lower() == n]


# --------------------------------------------------------------------------
# the seed's first config: the point of the feature


def test_first_config_fails_on_nginx_works_on_switchyard(switchyard, ws_backend):
    sy, p, be = start_ws(switchyard, ws_backend, "first")

    async def talk():
        async with ws_connect(p, "/ws") as ws:
            await ws.send("hello through the first config")
            return await ws.recv()

    if IS_NGINX:
        # nginx talks HTTP/1.0 to the upstream and drops Upgrade/Connection:
        # the backend sees an ordinary request and the handshake fails.
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            run(talk(), 15)
        assert ei.value.status_code != 101
        rec = be.wait_event("request", url="/ws")
        assert rec["upgrade"] is False
        assert rec["version"] == "1.0"
        assert hget(rec["headers"], "Upgrade") == []
        assert be.find("ws_open") == []
    else:
        assert run(talk(), 15) == "hello through the first config"
        rec = be.wait_event("request", url="/ws")
        assert rec["upgrade"] is True
        assert be.wait_event("ws_open")


@pytest.mark.switchyard_only
@pytest.mark.parametrize("kind", ["first", "second"])
def test_websocket_auto_off_behaves_like_nginx(switchyard, ws_backend, kind):
    """`websocket_auto off;` turns the automatic upgrade off: the first config
    fails as on nginx, the second (explicit Upgrade/Connection) still works."""
    sy, p, be = start_ws(switchyard, ws_backend, kind, loc_extra="websocket_auto off;")

    async def talk():
        async with ws_connect(p, "/ws/auto-off") as ws:
            await ws.send("x")
            return await ws.recv()

    if kind == "first":
        with pytest.raises(websockets.InvalidStatusCode):
            run(talk(), 15)
        rec = be.wait_event("request", url="/ws/auto-off")
        assert rec["upgrade"] is False
        assert hget(rec["headers"], "Upgrade") == []
    else:
        assert run(talk(), 15) == "x"


# --------------------------------------------------------------------------
# every config: handshake and data


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_handshake_bytes(switchyard, ws_backend, kind):
    """Byte-level handshake: 101 with Upgrade, Connection: upgrade, the right
    Sec-WebSocket-Accept and the negotiated subprotocol, no body framing; then
    frames both ways and a clean close."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    with RawWs(p) as c:
        key, status, headers, raw = c.handshake(
            "/ws/hs", extra=[("Sec-WebSocket-Protocol", "chat, superchat")])
        assert raw.startswith(b"HTTP/1.1 101 "), raw
        assert status == 101
        assert header(headers, "Upgrade").lower() == "websocket"
        assert has_token(header(headers, "Connection"), "upgrade")
        assert header(headers, "Sec-WebSocket-Accept") == accept_for(key)
        assert header(headers, "Sec-WebSocket-Protocol") == "chat"
        assert header(headers, "Content-Length") is None
        assert header(headers, "Transfer-Encoding") is None
        assert c.buf == b""  # nothing after the head before we speak
        c.send(frame(OP_TEXT, b"hello"))
        assert c.read_frame() == (True, OP_TEXT, b"hello")
        c.send(frame(OP_BIN, b"\x00\x01\xff"))
        assert c.read_frame() == (True, OP_BIN, b"\x00\x01\xff")
        c.send(frame(OP_CLOSE, close_payload(1000, "done")))
        assert c.read_frame() == (True, OP_CLOSE, close_payload(1000, "done"))
        assert c.wait_eof(5), "the proxy did not close the client connection after the close handshake"
    ev = be.wait_event("ws_close")
    assert (ev["code"], ev["reason"]) == (1000, "done")


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_echo_1000_round_trips(switchyard, ws_backend, kind):
    sy, p, be = start_ws(switchyard, ws_backend, kind)

    async def talk():
        async with ws_connect(p, "/ws/echo") as ws:
            for i in range(1000):
                msg = f"round trip {i} " + "x" * (i % 61)
                await ws.send(msg)
                got = await ws.recv()
                assert got == msg, (i, got)
            return i + 1

    assert run(talk(), 60) == 1000


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_text_and_binary(switchyard, ws_backend, kind):
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    texts = ["", "a", "héllo wörld ✓ 🚀 ñ", "t" * 125, "u" * 126, "v" * 65535, "w" * 65536]
    blobs = [b"", b"\x00", bytes(range(256)), b"\xff" * 126, os.urandom(70000)]

    async def talk():
        async with ws_connect(p, "/ws/types") as ws:
            for t in texts:
                await ws.send(t)
                got = await ws.recv()
                assert isinstance(got, str) and got == t
            for b in blobs:
                await ws.send(b)
                got = await ws.recv()
                assert isinstance(got, bytes) and got == b
            return True

    assert run(talk(), 30)


@pytest.mark.parametrize("size", [1 << 20, 16 << 20], ids=["1MiB", "16MiB"])
@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_large_messages(switchyard, ws_backend, kind, size):
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    blob = os.urandom(size)
    text = (hashlib.sha256(blob).hexdigest() * (size // 64 + 1))[:size]

    async def talk():
        async with ws_connect(p, "/ws/large") as ws:
            await ws.send(blob)
            got = await ws.recv()
            assert isinstance(got, bytes) and len(got) == size
            assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()
            await ws.send(text)
            got = await ws.recv()
            assert isinstance(got, str) and len(got) == size and got == text
            return True

    assert run(talk(), 60)


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_fragmented_messages(switchyard, ws_backend, kind):
    """A message sent in fragments (websockets' async-iterator send) arrives
    whole at the backend and is echoed whole."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    tparts = ["frag-one ", "frag-two ", "", "ü" * 3000, " end"]
    bparts = [os.urandom(1000), os.urandom(70000), b"", os.urandom(5)]

    async def agen(parts):
        for part in parts:
            yield part

    async def talk():
        async with ws_connect(p, "/ws/frag") as ws:
            await ws.send(agen(tparts))
            assert await ws.recv() == "".join(tparts)
            await ws.send(agen(bparts))
            assert await ws.recv() == b"".join(bparts)
            await ws.send("__stats__")
            return json.loads(await ws.recv())

    st = run(talk(), 30)
    assert st["rx_msgs"] == 2  # two messages, however many frames
    assert st["rx_bytes"] == len("".join(tparts).encode()) + len(b"".join(bparts))


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_fragments_with_interleaved_ping_raw(switchyard, ws_backend, kind):
    """Raw frames: text fragment, ping, continuation, final continuation. The
    backend answers the ping in the middle of the message (pong before the echo)."""
    sy, p, be = start_ws(switchyard, ws_backend, kind)
    with RawWs(p) as c:
        key, status, headers, raw = c.handshake("/ws/frag-raw")
        assert status == 101
        c.send(frame(OP_TEXT, b"abc", fin=False) + frame(OP_PING, b"mid")
               + frame(OP_CONT, b"def", fin=False))
        assert c.read_frame() == (True, OP_PONG, b"mid")
        c.send(frame(OP_CONT, b"ghi", fin=True))
        assert c.read_frame() == (True, OP_TEXT, b"abcdefghi")
        c.send(frame(OP_CLOSE, close_payload(1000)))
        assert c.read_frame() == (True, OP_CLOSE, close_payload(1000))
    assert be.wait_event("ping", data="mid")


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_client_ping_answered(switchyard, ws_backend, kind):
    sy, p, be = start_ws(switchyard, ws_backend, kind)

    async def talk():
        async with ws_connect(p, "/ws/ping") as ws:
            for payload in (b"are you there", b"", b"\x00\xff" * 60):
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, 3)
            await ws.send("still echoing")
            return await ws.recv()

    assert run(talk(), 30) == "still echoing"
    # end to end: the backend itself saw (and answered) the client's pings
    assert be.wait_event("ping", data="are you there")
    assert be.wait_event("ping", data="")


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_client_close_code_reaches_backend(switchyard, ws_backend, kind):
    sy, p, be = start_ws(switchyard, ws_backend, kind)

    async def talk():
        async with ws_connect(p, "/ws/close-client") as ws:
            await ws.send("before close")
            assert await ws.recv() == "before close"
            await ws.close(4001, "bye")
            return ws.close_code, ws.close_reason

    # the backend echoes the client's close frame, so the client sees it too
    assert run(talk(), 15) == (4001, "bye")
    ev = be.wait_event("ws_close", timeout=5)
    assert (ev["code"], ev["reason"]) == (4001, "bye")


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_backend_close_code_reaches_client(switchyard, ws_backend, kind):
    sy, p, be = start_ws(switchyard, ws_backend, kind)

    async def talk():
        async with ws_connect(p, "/ws/close-backend") as ws:
            await ws.send("__close__ 4002 later")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            await asyncio.wait_for(ws.wait_closed(), 5)
            return ws.close_code, ws.close_reason

    assert run(talk(), 15) == (4002, "later")
    ev = be.wait_event("ws_close", timeout=5)
    assert ev["code"] == 4002  # the client's echo of the backend's close frame


@pytest.mark.parametrize("kind", KIND_PARAMS)
def test_backend_sees_handshake_headers(switchyard, ws_backend, kind):
    sy, p, be = start_ws(switchyard, ws_backend, kind)

    async def talk():
        async with ws_connect(p, "/ws/headers?x=1", extra_headers=[("X-Client", "c1")],
                              subprotocols=["chat"]) as ws:
            await ws.send("__headers__")
            rec = json.loads(await ws.recv())
            return rec, ws.request_headers["Sec-WebSocket-Key"], ws.subprotocol

    rec, key, proto = run(talk(), 15)
    hs = rec["headers"]
    assert rec["method"] == "GET"
    assert rec["url"] == "/ws/headers?x=1"
    assert rec["version"] == "1.1"
    assert rec["upgrade"] is True
    assert rec["head_len"] == 0
    # as configured by the seed's proxy_set_header lines
    assert hget(hs, "Host") == ["127.0.0.1"]  # $host: the client's Host without its port
    assert hget(hs, "X-Real-IP") == ["127.0.0.1"]
    assert hget(hs, "X-Forwarded-For") == ["127.0.0.1"]
    assert hget(hs, "X-Forwarded-Proto") == ["http"]
    # the upgrade itself, exactly once each
    assert [v.lower() for v in hget(hs, "Upgrade")] == ["websocket"]
    conn = hget(hs, "Connection")
    assert len(conn) == 1 and has_token(conn[0], "upgrade") and not has_token(conn[0], "close")
    assert hget(hs, "Sec-WebSocket-Key") == [key]
    assert hget(hs, "Sec-WebSocket-Version") == ["13"]
    assert hget(hs, "Sec-WebSocket-Protocol") == ["chat"]
    assert hget(hs, "X-Client") == ["c1"]
    assert proto == "chat"


# --------------------------------------------------------------------------
# the map idiom: upstream keep-alive for ordinary requests


def test_map_idiom_ordinary_requests_reuse_upstream_connections(switchyard, ws_backend):
    """Config `map`: WebSockets work, and ordinary requests to the same
    upstream afterwards reuse kept-alive upstream connections on Switchyard.
    On nginx the map sends `Connection: close` for them, so every request
    costs a new upstream connection (asserted when run against nginx)."""
    sy, p, be = start_ws(switchyard, ws_backend, "map")

    async def ws_round():
        async with ws_connect(p, "/ws/before-plain") as ws:
            await ws.send("tunnel")
            assert await ws.recv() == "tunnel"
        return True

    for _ in range(2):
        assert run(ws_round(), 15)
    # the backend's events reach the test through a reader thread: wait for both
    wait_until(lambda: len(be.find("ws_open")) == 2, 5, "the backend's two ws_open events")
    ws_conns = {e["conn"] for e in be.find("ws_open")}
    assert len(ws_conns) == 2

    ids = []
    for i in range(6):
        r = request(p, "GET", f"/ws/plain{i}")
        assert r.status == 200, r
        assert r.json()["url"] == f"/ws/plain{i}"
        ids.append(int(r.header("X-Conn-Id")))
    # the backend reports each request on its event stream: wait for all six
    wait_until(lambda: len([e for e in be.requests() if e["url"].startswith("/ws/plain")]) == 6,
               5, "the backend's reports of the six plain requests")
    plain = [e for e in be.requests() if e["url"].startswith("/ws/plain")]
    assert len(plain) == 6
    assert not set(ids) & ws_conns, "an ordinary request went over a connection that was a tunnel"
    for e in plain:
        assert hget(e["headers"], "Upgrade") == []
    if IS_NGINX:
        assert len(set(ids)) == 6
        assert all(hget(e["headers"], "Connection") == ["close"] for e in plain)
    else:
        assert len(set(ids)) == 1, f"upstream connections were not reused: {ids}"
        for e in plain:
            assert not any(has_token(v, "close") for v in hget(e["headers"], "Connection"))

    # and a WebSocket still works after the ordinary traffic
    assert run(ws_round(), 15)
