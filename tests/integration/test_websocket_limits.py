"""WebSocket limits for abusive clients (off by default):

- websocket_max_message_size: a client message larger than the limit (one
  frame, or all its fragments together) ends the tunnel with close code 1009
  "message too big", checked at the frame header, before its payload reaches
  the upstream; messages from the upstream are not limited.
- websocket_message_rate: a token bucket over the client's messages; a
  client over its rate (after its burst) gets 1008 "policy violation".
Both log a warn line naming the client.
"""
import asyncio

import pytest
import websockets

from harness import free_port, run_switchyard_t
from ws_fixtures import run, ws_conf, ws_connect

pytestmark = pytest.mark.switchyard_only  # Switchyard's own directives


def start(switchyard, ws_backend, extra: str):
    be = ws_backend("ws")
    p = free_port()
    sy = switchyard(ws_conf("first", be.addr, p, loc_extra=extra))
    return sy, p, be


def test_max_message_size(switchyard, ws_backend):
    sy, p, be = start(switchyard, ws_backend, "websocket_max_message_size 1k;")

    async def talk():
        async with ws_connect(p, "/ws/size") as ws:
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send(b"b" * 2000)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code, ws.close_reason

    code, reason = run(talk(), 20)
    assert code == 1009, (code, reason)
    assert reason == "message too big"
    sy.wait_log(r"\[warn\] .*client sent a message over websocket_max_message_size \(1024 bytes\)"
                r".*client: 127\.0\.0\.1")
    # the upstream never saw the big message: only the first one arrived
    ev = be.wait_event("ws_close", timeout=5)
    assert ev["rx_msgs"] == 1 and ev["rx_bytes"] == 1000, ev


def test_max_message_size_counts_fragments(switchyard, ws_backend):
    sy, p, be = start(switchyard, ws_backend, "websocket_max_message_size 1000;")

    async def talk():
        async with ws_connect(p, "/ws/frag") as ws:
            await ws.send(["x" * 400, "y" * 400])  # 800: fine
            assert await ws.recv() == "x" * 400 + "y" * 400
            await ws.send(["x" * 400, "y" * 400, "z" * 400])  # 1200 in three frames
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code

    assert run(talk(), 20) == 1009
    ev = be.wait_event("ws_close", timeout=5)
    assert ev["rx_msgs"] == 1 and ev["rx_bytes"] == 800, ev


def test_upstream_messages_are_not_limited(switchyard, ws_backend):
    """The limit protects the upstream from clients: the client may receive
    larger messages (the echo backend answers with what it got — here the
    backend sends a big message on request)."""
    sy, p, be = start(switchyard, ws_backend, "websocket_max_message_size 100;")

    async def talk():
        async with ws_connect(p, "/ws/down") as ws:
            await ws.send("x" * 100)  # exactly the limit: allowed
            assert await ws.recv() == "x" * 100
            return ws.close_code

    assert run(talk(), 20) is None


def test_message_rate(switchyard, ws_backend):
    sy, p, be = start(switchyard, ws_backend, "websocket_message_rate 1r/m burst=5;")

    async def talk():
        async with ws_connect(p, "/ws/rate") as ws:
            for i in range(5):  # the burst
                await ws.send(f"m{i}")
                assert await ws.recv() == f"m{i}"
            await ws.send("one too many")  # no token left (1 per minute)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code, ws.close_reason

    code, reason = run(talk(), 20)
    assert code == 1008, (code, reason)
    assert reason == "message rate exceeded"
    sy.wait_log(r"\[warn\] .*client exceeded websocket_message_rate.*client: 127\.0\.0\.1")
    ev = be.wait_event("ws_close", timeout=5)
    assert ev["rx_msgs"] == 5, ev  # the sixth never reached the upstream


@pytest.mark.parametrize("line,msg", [
    ("websocket_message_rate 10;", "invalid rate"),
    ("websocket_message_rate 10r/h;", "invalid rate"),
    ("websocket_message_rate 0r/s;", "invalid rate"),
    ("websocket_message_rate 10r/s burst=x;", "invalid burst"),
    ("websocket_message_rate 10r/s size=3;", "invalid parameter"),
    ("websocket_max_message_size 0;", "invalid value"),
    ("websocket_max_message_size lots;", "invalid value"),
])
def test_invalid_values(tmp_path, line, msg):
    p = free_port()
    rc, out = run_switchyard_t(f"events {{ }} http {{ server {{ listen 127.0.0.1:{p}; "
                               f"location / {{ {line} }} }} }}", prefix=tmp_path)
    assert rc == 1 and msg in out, out
