"""status_page (docs/status-page.md): Switchyard's live status page. The HTML
page on GET, its data on ?format=json: upstream peers with state and
latency, every worker's open WebSocket tunnels (route, client, age, bytes
each way, last activity), recent refused upgrades with their reason and
recent reloads. The tables are shared by all workers and kept across
reloads. Switchyard's own directive: not run against nginx.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from harness import free_port, http_conf, only_worker, request, wait_until
from h2_support import H2Client, H2WebSocket, h2_server
from limits_support import served_by, sy_workers  # noqa: F401  (fixture)
from ws_fixtures import OP_BIN, RawWs, frame, ws_backend  # noqa: F401

pytestmark = pytest.mark.switchyard_only


def conf(port: int, backend: str, extra_main: str = "", extra_http: str = "",
         extra: str = "") -> str:
    return http_conf(f"""
upstream chat {{
    server {backend};
}}
server {{
    listen 127.0.0.1:{port};
    server_name status.test;
    location = /status {{
        status_page;
        allow 127.0.0.1;
        deny all;
    }}
    location /pid {{ return 200 "$pid"; }}
    location /ws {{
        proxy_pass http://chat;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }}
    {extra}
}}""", extra_main=extra_main, extra_http=extra_http)


def data(port: int) -> dict:
    r = request(port, "GET", "/status?format=json")
    assert r.status == 200, r
    assert r.header("content-type") == "application/json", r
    assert r.header("cache-control") == "no-store", r
    return json.loads(r.body)


def open_ws(port: int, path: str = "/ws") -> RawWs:
    c = RawWs(port)
    _, status, _, _ = c.handshake(path)
    assert status == 101
    return c


def echo(c: RawWs, payload: bytes):
    c.send(frame(OP_BIN, payload))
    fr = c.read_frame()
    assert fr is not None and fr[2] == payload, fr


def client_addr(c: RawWs) -> str:
    host, port = c.sock.getsockname()[:2]
    return f"{host}:{port}"


def peer(d: dict, group: str) -> dict:
    ups = [u for u in d["upstreams"] if u["name"] == group]
    assert len(ups) == 1, d["upstreams"]
    assert len(ups[0]["peers"]) == 1, ups
    return ups[0]["peers"][0]


def test_page_json_head_and_methods(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    switchyard(conf(port, b.addr))
    page = request(port, "GET", "/status")
    assert page.status == 200
    assert page.header("content-type") == "text/html; charset=utf-8"
    assert page.header("cache-control") == "no-store"
    assert "frame-ancestors 'none'" in page.header("content-security-policy")
    assert page.header("x-content-type-options") == "nosniff"
    assert b"<title>Switchyard status</title>" in page.body
    assert b"?format=json" in page.body  # what the page polls
    head = request(port, "HEAD", "/status")
    assert head.status == 200 and head.body == b""
    assert int(head.header("content-length")) == len(page.body)
    assert request(port, "POST", "/status", body=b"x").status == 405
    d = data(port)
    assert set(d) >= {"version", "time", "pid", "generation", "upstreams", "tunnels",
                      "refused", "reloads"}
    p = peer(d, "chat")
    assert p["address"] == b.addr and p["state"] == "unknown" and p["latency_ms"] is None
    assert d["tunnels"] == {"count": 0, "unlisted": 0, "list": []}
    assert d["refused"] == [] and d["reloads"] == []


def test_tunnels_of_every_worker_listed_with_bytes(sy_workers, ws_backend):  # noqa: F811
    """Two tunnels through each of two workers: whichever worker answers the
    page lists all four with route, client and the bytes each way."""
    b = ws_backend()
    port = free_port()
    m = sy_workers(conf(port, b.addr, extra_main="worker_processes 2;"), 2)
    w1, w2 = m.workers()
    conns = []
    try:
        for w in (w1, w2):
            with only_worker(m, w):
                for _ in range(2):
                    c = open_ws(port)
                    conns.append((w, c))
                    assert served_by(port) == w
        # known amounts: 1000 bytes each way -> frames of 1000 + 8 (client:
        # 2 + 2 length + 4 mask) and 1000 + 4 (upstream: unmasked)
        for i, (_, c) in enumerate(conns):
            for _ in range(i + 1):
                echo(c, bytes([i]) * 1000)

        def listed():
            d = data(port)
            return len(d["tunnels"]["list"]) == 4 and d
        d = wait_until(listed, 5, "four tunnels listed")
        assert d["tunnels"]["count"] == 4 and d["tunnels"]["unlisted"] == 0
        by_client = {t["client"]: t for t in d["tunnels"]["list"]}
        for i, (w, c) in enumerate(conns):
            t = by_client[client_addr(c)]
            assert t["pid"] == w, (t, w)
            assert t["server"] == "status.test" and t["location"] == "/ws"
            assert t["upstream"] == "chat" and t["peer"] == b.addr
            assert t["protocol"] == "HTTP/1.1"
            assert t["bytes_from_client"] == (i + 1) * 1008, t
            assert t["bytes_from_upstream"] == (i + 1) * 1004, t
            assert 0 <= t["idle_ms"] <= t["age_ms"] < 60000
            assert abs(t["started"] + t["age_ms"] - d["time"]) < 2000
        # the peer answered: up, with a latency
        p = peer(d, "chat")
        assert p["state"] == "up" and p["ok"] >= 4 and p["latency_ms"] is not None
        # a closed tunnel leaves the list
        gone = client_addr(conns[0][1])
        conns[0][1].close()
        wait_until(lambda: gone not in {t["client"] for t in data(port)["tunnels"]["list"]},
                   5, "the closed tunnel gone from the list")
        assert len(data(port)["tunnels"]["list"]) == 3
    finally:
        for _, c in conns:
            c.close()
    wait_until(lambda: data(port)["tunnels"]["count"] == 0, 5, "no tunnel left")


def test_worker_killed_leaves_no_tunnel_behind(sy_workers, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    m = sy_workers(conf(port, b.addr, extra_main="worker_processes 2;"), 2)
    w1, _ = m.workers()
    with only_worker(m, w1):
        c = open_ws(port)
    try:
        wait_until(lambda: [t["pid"] for t in data(port)["tunnels"]["list"]] == [w1], 5,
                   "the tunnel listed")
        os.kill(w1, signal.SIGKILL)
        wait_until(lambda: data(port)["tunnels"]["count"] == 0, 10,
                   "the dead worker's tunnel gone")
    finally:
        c.close()


def test_refused_upgrades_with_reason(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    down = free_port()
    switchyard(conf(port, b.addr, extra_http=f"upstream gone {{ server 127.0.0.1:{down}; }}",
                    extra=f"""location /down {{
        proxy_pass http://gone;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }}
    location /ws/origin {{
        websocket_origins https://ok.test;
        proxy_pass http://chat;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }}"""))
    # the backend answers 200 instead of 101
    c = RawWs(port)
    _, status, _, _ = c.handshake("/ws/reject/200")
    c.close()
    assert status == 200
    # the upstream is down (nothing listens)
    c = RawWs(port)
    _, status, _, _ = c.handshake("/down")
    c.close()
    assert status == 502
    # refused by Switchyard itself: Origin not allowed
    c = RawWs(port)
    _, status, _, _ = c.handshake("/ws/origin", extra=[("Origin", "https://evil.test\"<x>")])
    c.close()
    assert status == 403

    def three():
        r = data(port)["refused"]
        return len(r) == 3 and r
    refused = wait_until(three, 5, "three refused upgrades")
    origin, dead, rejected = refused  # newest first
    assert rejected["status"] == 200 and rejected["location"] == "/ws"
    assert rejected["upstream"] == "chat" and rejected["peer"] == b.addr
    assert "upstream answered 200 to the WebSocket upgrade" in rejected["reason"]
    assert rejected["client"].startswith("127.0.0.1:")
    assert dead["status"] == 502 and dead["upstream"] == "gone"
    assert dead["reason"] == ("connect() failed (111: Connection refused) while connecting "
                              "to upstream"), dead
    assert origin["status"] == 403 and origin["location"] == "/ws/origin"
    # quotes and angle brackets from the client arrive intact (JSON-escaped)
    assert 'origin "https://evil.test"<x>" is not allowed' in origin["reason"], origin
    p = peer(data(port), "gone")
    assert p["state"] == "down" and p["fails"] >= 1
    # a byte that is not UTF-8 still leaves valid JSON (U+FFFD)
    c = RawWs(port)
    _, status, _, _ = c.handshake("/ws/origin", extra=[("Origin", "https://b\xe9\\d.test")])
    c.close()
    assert status == 403
    newest = wait_until(lambda: len(r := data(port)["refused"]) == 4 and r[0], 5, "fourth")
    assert 'origin "https://b\ufffd\\d.test" is not allowed' in newest["reason"], newest
    # an ordinary request refused is not an upgrade: not listed
    assert request(port, "GET", "/ws/reject/200").status in (200, 404)
    assert len(data(port)["refused"]) == 4


def test_peer_goes_down_when_the_backend_stops(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    switchyard(conf(port, b.addr))
    open_ws(port).close()
    wait_until(lambda: peer(data(port), "chat")["state"] == "up", 5, "peer up")
    b.kill()
    c = RawWs(port)
    _, status, _, _ = c.handshake("/ws")
    c.close()
    assert status == 502
    p = wait_until(lambda: (p := peer(data(port), "chat"))["state"] == "down" and p, 5,
                   "peer down")
    assert p["fails"] >= 1 and p["last_fail"] >= p["last_ok"] > 0


def test_reloads_ok_and_failed(sy_workers, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    text = conf(port, b.addr, extra_main="worker_processes 2;")
    m = sy_workers(text, 2)
    with only_worker(m, m.workers()[0]):
        c = open_ws(port)
    try:
        m.reload(text.replace("location /pid", "location /pid2 { return 204; }\n    location /pid"))
        d = wait_until(lambda: (d := data(port))["reloads"] and d, 5, "a reload listed")
        assert d["reloads"][0]["ok"] is True and d["reloads"][0]["generation"] == 2
        assert d["generation"] == 2
        # the tunnel opened before the reload is still listed
        assert [t["client"] for t in d["tunnels"]["list"]] == [client_addr(c)]
        m.conf_path.write_text(text.replace("status_page;", "status_page on;"))
        m.proc.send_signal(signal.SIGHUP)
        d = wait_until(lambda: len((d := data(port))["reloads"]) == 2 and d, 10,
                       "the failed reload listed")
        bad, good = d["reloads"]
        assert bad["ok"] is False and bad["generation"] == 0
        assert "status_page" in bad["message"] and "\n" not in bad["message"], bad
        assert good["ok"] is True and d["generation"] == 2
    finally:
        c.close()


def test_http2_page_and_websocket(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    body = f"""location = /status {{ status_page; }}
    location /ws {{
        proxy_pass http://{b.addr};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }}"""
    switchyard(http_conf(h2_server(port, body=body)))
    with H2Client(port) as h2:
        page = h2.request("GET", "/status")
        assert page.status == 200 and b"<title>Switchyard status</title>" in bytes(page.data)
        ws, st = H2WebSocket.open(h2, "/ws")
        assert ws is not None, st
        ws.send(OP_BIN, b"x" * 100)
        fr = ws.recv()
        assert fr is not None and fr[2] == b"x" * 100
        js = h2.request("GET", "/status?format=json")
        assert js.status == 200
        d = json.loads(bytes(js.data))
        (t,) = d["tunnels"]["list"]
        assert t["protocol"] == "HTTP/2" and t["location"] == "/ws" and t["peer"] == b.addr
        assert t["bytes_from_client"] == 106 and t["bytes_from_upstream"] == 102, t


def test_directive_context_and_arguments():
    from harness import run_switchyard_t
    port = free_port()
    ok, out = run_switchyard_t(http_conf(f"""server {{ listen 127.0.0.1:{port};
        location /s {{ status_page; }} }}"""))[:2]
    assert ok == 0, out
    rc, out = run_switchyard_t(http_conf(f"""server {{ listen 127.0.0.1:{port};
        status_page; }}"""))[:2]
    assert rc != 0 and '"status_page" directive is not allowed here' in out, out
    rc, out = run_switchyard_t(http_conf(f"""server {{ listen 127.0.0.1:{port};
        location /s {{ status_page on; }} }}"""))[:2]
    assert rc != 0 and "invalid number of arguments" in out, out


def test_limit_refusal_and_http2_refusal(switchyard, ws_backend):  # noqa: F811
    """An upgrade over limit_conn is listed with the limit as its reason; an
    HTTP/2 extended CONNECT refused by the backend is listed as HTTP/2."""
    b = ws_backend()
    port = free_port()
    h2port = free_port()
    upgrade = """proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";"""
    text = conf(port, b.addr,
                extra_http="limit_conn_zone $binary_remote_addr zone=ws:1m;\n"
                + h2_server(h2port, body=f"""location /ws {{ proxy_pass http://chat; {upgrade} }}
    location = /status {{ status_page; }}"""),
                extra=f"""location /one {{
        limit_conn ws 1;
        proxy_pass http://chat/ws;
        {upgrade}
    }}""")
    switchyard(text)
    first = open_ws(port, "/one")
    try:
        c = RawWs(port)
        _, status, _, _ = c.handshake("/one")
        c.close()
        assert status == 503
    finally:
        first.close()
    with H2Client(h2port) as h2:
        ws, st = H2WebSocket.open(h2, "/ws/reject/403")
        assert ws is None and st.status == 403
    r = wait_until(lambda: len(refused := data(port)["refused"]) == 2 and refused, 5,
                   "two refusals")
    h2r, limited = r
    assert limited["status"] == 503 and limited["location"] == "/one"
    assert limited["reason"] == "over the limit_conn limit" and limited["upstream"] == ""
    assert h2r["protocol"] == "HTTP/2" and h2r["status"] == 403 and h2r["upstream"] == "chat"
    assert "upstream answered 403" in h2r["reason"]
