"""WebSocket over HTTP/2 (RFC 8441, issue 13 item 3), bridged to the node
`ws` backend over HTTP/1.1, with the seed's configurations
(../shared/seed/nginx-websocket-proxy-blog-post.md, ws_fixtures.py):
"first" (no Upgrade/Connection lines), "second" (the three magic lines) and
"map" (nginx's documented idiom, keep-alive upstream).

nginx never implemented RFC 8441, so every test of the bridge is
`switchyard_only`; test_connect_protocol_setting checks what each server
advertises and passes on both. The client is h2_support.H2WebSocket: an
extended CONNECT (`:protocol websocket`) after the server's
SETTINGS_ENABLE_CONNECT_PROTOCOL=1, then RFC 6455 frames (client frames
masked) in DATA frames.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from h2_support import (SETTINGS_ENABLE_CONNECT_PROTOCOL, H2Client, H2WebSocket, h2_server)
from harness import IS_NGINX, free_port, http_conf
from tls_pki import Pki
from ws_fixtures import (MAP_HTTP, OP_BIN, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, close_payload,
                         ws_location)

KINDS = ["first", "second", "map"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def start(switchyard, ws_backend, pki, kind: str = "second", *, loc_extra: str = "",
          backend_opts=None):
    """Proxy with the seed location `kind` on a TLS h2 and an h2c listener,
    plus `location /plain` proxied to the backend's HTTP side.
    Returns (sy, be, tls_port, h2c_port)."""
    be = ws_backend(**(backend_opts or {}))
    tp, cp = free_port(), free_port()
    crt, key = pki.cert("a.test")
    body = (ws_location(kind, be.addr, loc_extra) +
            f"\nlocation /plain {{ proxy_pass http://{be.addr}; }}")
    http_extra = MAP_HTTP.replace("127.0.0.1:9000", be.addr) if kind == "map" else ""
    conf = http_conf(h2_server(tp, tls=(crt, key), body=body) + h2_server(cp, body=body),
                     extra_http=http_extra)
    return switchyard(conf), be, tp, cp


def handshake_record(ws):
    ws.send_text("__headers__")
    fin, op, payload = ws.recv()
    assert op == OP_TEXT
    return json.loads(payload)


def hval(pairs, name):
    vals = [v for k, v in pairs if k.lower() == name.lower()]
    return vals[0] if vals else None


# --------------------------------------------------------------------------


def test_connect_protocol_setting(switchyard, ws_backend, pki):
    """Switchyard advertises SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 8441
    §3); nginx 1.22 does not, so RFC 8441 clients fall back to HTTP/1.1."""
    sy, be, tp, cp = start(switchyard, ws_backend, pki)
    for port, tls in ((tp, True), (cp, False)):
        with H2Client(port, tls=tls) as c:
            s = c.wait_settings()
        if IS_NGINX:
            assert s.get(SETTINGS_ENABLE_CONNECT_PROTOCOL, 0) == 0
        else:
            assert s.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1


@pytest.mark.switchyard_only
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
@pytest.mark.parametrize("kind", KINDS)
def test_extended_connect_bridges_to_http11_websocket(switchyard, ws_backend, pki, kind, tls):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, kind)
    with H2Client(tp if tls else cp, tls=tls) as c:
        ws, st = H2WebSocket.open(c, "/ws?x=1", headers=[("origin", "https://a.test")])
        assert st.status == 200, st.headers
        # no HTTP/1.1 handshake fields on the HTTP/2 side (RFC 8441 §5)
        assert st.header("sec-websocket-accept") is None and st.header("upgrade") is None
        ws.send_text("hello over h2")
        assert ws.recv() == (True, OP_TEXT, b"hello over h2")
        big = bytes(range(256)) * 4096
        ws.send(OP_BIN, big)
        assert ws.recv(timeout=10) == (True, OP_BIN, big)
        rec = handshake_record(ws)
    # the backend saw an ordinary HTTP/1.1 upgrade with a fresh key
    assert rec["version"] == "1.1" and rec["method"] == "GET" and rec["url"] == "/ws?x=1"
    hs = rec["headers"]
    assert hval(hs, "Upgrade").lower() == "websocket"
    assert "upgrade" in hval(hs, "Connection").lower()
    assert len(base64.b64decode(hval(hs, "Sec-WebSocket-Key"))) == 16
    assert hval(hs, "Sec-WebSocket-Version") == "13"
    assert hval(hs, "Origin") == "https://a.test"
    assert hval(hs, "X-Forwarded-Proto") == ("https" if tls else "http")


@pytest.mark.switchyard_only
def test_subprotocol_and_extensions_negotiated_by_the_backend(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(cp) as c:
        ws, st = H2WebSocket.open(c, "/ws", headers=[
            ("sec-websocket-protocol", "chat, superchat"),
            ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")])
        assert st.status == 200
        assert st.header("sec-websocket-protocol") == "chat"
        rec = handshake_record(ws)
    assert hval(rec["headers"], "Sec-WebSocket-Protocol") == "chat, superchat"
    assert "permessage-deflate" in hval(rec["headers"], "Sec-WebSocket-Extensions")


@pytest.mark.switchyard_only
@pytest.mark.parametrize("status", [403, 404, 426])
def test_refused_upgrade_keeps_its_status(switchyard, ws_backend, pki, status):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(tp, tls=True) as c:
        ws, st = H2WebSocket.open(c, f"/ws/reject/{status}")
        assert ws is None and st.status == status
        c.wait_stream(st.id)
        assert st.body == f"rejected {status}\n".encode()
        # the connection still serves
        assert c.request("GET", "/plain").status == 200


@pytest.mark.switchyard_only
def test_upstream_answering_200_to_the_upgrade_is_a_502(switchyard, ws_backend, pki):
    """RFC 8441: a 2xx to the extended CONNECT means the tunnel is open; an
    upstream that answered 200 instead of 101 did not open one."""
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(tp, tls=True) as c:
        ws, st = H2WebSocket.open(c, "/ws/reject/200")
        assert ws is None and st.status == 502
        c.wait_stream(st.id)
        assert c.request("GET", "/plain").status == 200
    sy.wait_log(r"upstream answered 200 to the WebSocket upgrade")


@pytest.mark.switchyard_only
def test_ping_and_close_codes_relayed_then_end_stream(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(cp) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        ws.send(OP_PING, b"p1")
        assert ws.recv() == (True, OP_PONG, b"p1")
        ws.send_text("__close__ 1001 going away")
        assert ws.recv() == (True, OP_CLOSE, close_payload(1001, "going away"))
        ws.send(OP_CLOSE, close_payload(1001))
        c.wait_stream(ws.sid)
        assert c.streams[ws.sid].ended and c.streams[ws.sid].reset is None
    be.wait_event("ws_close", code=1001)
    sy.wait_access_log(r'"CONNECT /ws HTTP/2\.0" 200 ')


@pytest.mark.switchyard_only
def test_upstream_close_ends_the_stream(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(cp) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        ws.send_text("x")
        assert ws.recv() == (True, OP_TEXT, b"x")
        be.kill()
        c.wait_stream(ws.sid, timeout=5)
        # the connection survives the stream
        assert c.goaway is None


@pytest.mark.switchyard_only
def test_client_rst_stream_closes_the_upstream_socket_at_once(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(cp) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        ws.send_text("x")
        assert ws.recv() == (True, OP_TEXT, b"x")
        c.reset(ws.sid)
        ev = be.wait_event("ws_close", timeout=2)
        assert ev["code"] in (1005, 1006)
        assert c.request("GET", "/plain").status == 200


@pytest.mark.switchyard_only
def test_websocket_stream_survives_reload(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(cp, timeout=10) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        ws.send_text("before")
        assert ws.recv()[2] == b"before"
        sy.reload(sy.conf_text + "\n# reloaded\n")
        ws.send_text("after")
        assert ws.recv()[2] == b"after"
        assert c.goaway is None
        assert c.request("GET", "/plain").status == 200


@pytest.mark.switchyard_only
def test_stalled_websocket_does_not_block_other_streams(switchyard, ws_backend, pki):
    """Many WebSocket streams and requests on one connection, each with its
    own window: one stream whose reader stopped (its window stays shut while
    the backend floods it) blocks nobody else."""
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second")
    with H2Client(cp, timeout=10) as c:
        stalled, _ = H2WebSocket.open(c, "/ws")
        c.stalled.add(stalled.sid)
        stalled.send_text("__flood__ 8388608 16384")
        others = [H2WebSocket.open(c, "/ws")[0] for _ in range(5)]
        for i in range(20):
            for j, w in enumerate(others):
                w.send_text(f"m{i}-{j}")
                assert w.recv()[2] == f"m{i}-{j}".encode()
            assert c.request("GET", "/plain").status == 200
        # the stalled stream got at most its window's worth
        assert len(c.streams[stalled.sid].data) <= 65535 + 16
        # opened, it gets the rest
        c.stalled.discard(stalled.sid)
        c.open_window(stalled.sid, 8 << 20)
        h = hashlib.sha256()
        while True:
            fin, op, payload = stalled.recv(timeout=20)
            if op == OP_TEXT and payload.startswith(b"__flood_done__"):
                assert payload.split()[2].decode() == h.hexdigest()
                break
            h.update(payload)


@pytest.mark.switchyard_only
def test_many_websocket_streams_on_one_connection(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "map")
    with H2Client(tp, tls=True, timeout=10) as c:
        socks = [H2WebSocket.open(c, "/ws")[0] for _ in range(50)]
        for i, w in enumerate(socks):
            w.send_text(f"n{i}")
        for i, w in enumerate(socks):
            assert w.recv()[2] == f"n{i}".encode()
    assert be.wait_event("ws_open", timeout=1) is not None
    assert len(be.find("ws_open")) == 50


# -------------------------------------------------------------------------
# The tunnel's own rules hold for a WebSocket over HTTP/2 as for HTTP/1.1.


@pytest.mark.switchyard_only
def test_websocket_origins_checked_for_extended_connect(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second",
                           loc_extra="websocket_origins https://ok.test;")
    with H2Client(cp) as c:
        ws, st = H2WebSocket.open(c, "/ws", headers=[("origin", "https://evil.test")])
        assert ws is None and st.status == 403
        ws, st = H2WebSocket.open(c, "/ws", headers=[("origin", "https://ok.test")])
        assert ws is not None
        ws.send_text("hi")
        assert ws.recv() == (True, OP_TEXT, b"hi")
    sy.wait_log(r'origin "https://evil\.test" is not allowed by websocket_origins')


@pytest.mark.switchyard_only
def test_message_size_limit_closes_with_1009(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second",
                           loc_extra="websocket_max_message_size 1k;")
    with H2Client(cp) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        ws.send_text("small")
        assert ws.recv() == (True, OP_TEXT, b"small")
        ws.send(OP_BIN, b"x" * 4096)
        fin, op, payload = ws.recv()
        assert op == OP_CLOSE and payload[:2] == (1009).to_bytes(2, "big")
        c.wait_stream(ws.sid, timeout=5)
    be.wait_event("ws_close", timeout=5)


@pytest.mark.switchyard_only
def test_idle_timeout_closes_with_1001_then_end_stream(switchyard, ws_backend, pki):
    sy, be, tp, cp = start(switchyard, ws_backend, pki, "second",
                           loc_extra="websocket_idle_timeout 1s; websocket_ping_interval off;")
    with H2Client(cp, timeout=10) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        ws.send_text("x")
        assert ws.recv() == (True, OP_TEXT, b"x")
        fin, op, payload = ws.recv(timeout=5)   # nothing moves: the idle timeout
        assert op == OP_CLOSE and payload[:2] == (1001).to_bytes(2, "big")
        st = c.wait_stream(ws.sid, timeout=10)
        assert st.ended
        assert c.request("GET", "/plain").status == 200  # the connection stays
