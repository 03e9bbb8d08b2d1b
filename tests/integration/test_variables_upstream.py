"""The $upstream_* variables as nginx writes them in an access log: one value
per upstream try, ", " between the tries of one proxied pass, " : " between
the passes of one request (error_page to another proxied location), "-" for
what a try never reached (no connection: no connect or header time; no
response: no status); the group's name for "no live upstreams";
$upstream_bytes_sent / $upstream_bytes_received / $upstream_response_length
counted per try (head included in bytes received, body only in the response
length, chunk framing counted as received); $upstream_cache_status (no cache:
"-"), $upstream_trailer_* and $sent_trailer_* (never found);
$upstream_http_* / $upstream_cookie_*; and a WebSocket tunnel's line,
written when it ends with the values of that moment. Every expectation holds
under nginx (SWITCHYARD_BIN=/usr/sbin/nginx)."""

from __future__ import annotations

import asyncio
import re
import socket

from backends import RawBackend, blackhole_port, closed_port, read_request_head
from harness import IS_NGINX, HttpConn, fill, free_port, http_conf, request, wait_until
from ws_fixtures import run, ws_backend, ws_conf, ws_connect

__all__ = ["ws_backend"]  # the fixture, used below

FIELDS = ["addr", "status", "ct", "ht", "rt", "len", "recv", "sent", "cache", "trailer",
          "strailer", "uh", "uc", "s"]
LOG_FORMAT = (
    "log_format up '$upstream_addr|$upstream_status|$upstream_connect_time|"
    "$upstream_header_time|$upstream_response_time|$upstream_response_length|"
    "$upstream_bytes_received|$upstream_bytes_sent|$upstream_cache_status|"
    "$upstream_trailer_x_t|$sent_trailer_x_t|$upstream_http_x_up|$upstream_cookie_sid|$status';\n"
    "access_log logs/up.log up;\n")
TIME = r"\d+\.\d{3}"


def start(switchyard, body: str, **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw), extra_http=LOG_FORMAT))
    return sy, p


def log_records(sy, n: int) -> list[dict]:
    path = sy.prefix / "logs" / "up.log"

    def lines():
        try:
            ls = [ln for ln in path.read_text("latin-1").split("\n") if ln]
        except FileNotFoundError:
            return None
        return ls if len(ls) >= n else None

    out = []
    for line in wait_until(lines, 5, f"{n} line(s) in logs/up.log"):
        values = line.split("|")
        assert len(values) == len(FIELDS), line
        out.append(dict(zip(FIELDS, values)))
    return out


def scripted(response: bytes, seen: list | None = None) -> RawBackend:
    """A backend answering every request on a connection with `response`
    (keep-alive), recording each request's bytes in `seen`."""
    def handler(c: socket.socket):
        while True:
            head = read_request_head(c)
            if not head:
                return
            if seen is not None:
                seen.append(head)
            c.sendall(response)
    return RawBackend(handler).start()


SIMPLE = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: one\r\n"
          b"Set-Cookie: sid=abc; Path=/\r\n\r\nhello")


def test_one_try_values_and_byte_counts(switchyard):
    seen: list[bytes] = []
    be = scripted(SIMPLE, seen)
    try:
        sy, p = start(switchyard, """
            upstream b { server @B@; keepalive 4; }
            server { listen 127.0.0.1:@P@;
                location / { proxy_pass http://b; proxy_http_version 1.1;
                             proxy_set_header Connection ""; } }""", B=be.addr)
        with HttpConn(p) as c:
            assert c.request("GET", "/one").body == b"hello"
            assert c.request("GET", "/two?x=1").body == b"hello"
        r1, r2 = log_records(sy, 2)
    finally:
        be.stop()
    for r in (r1, r2):
        assert r["addr"] == be.addr and r["status"] == "200" and r["s"] == "200", r
        for k in ("ct", "ht", "rt"):
            assert re.fullmatch(TIME, r[k]), r
        assert float(r["ct"]) <= float(r["ht"]) <= float(r["rt"]), r
        # the body only; the head too; what was written to the upstream
        assert r["len"] == "5", r
        assert r["recv"] == str(len(SIMPLE)), r
        assert (r["cache"], r["trailer"], r["strailer"]) == ("-", "-", "-"), r
        assert (r["uh"], r["uc"]) == ("one", "abc"), r
    assert [int(r1["sent"]), int(r2["sent"])] == [len(h) for h in seen], (r1, r2, seen)
    # the second request reused the kept-alive connection: connected at once
    assert r2["ct"] == "0.000", r2


def test_chunked_response_length_counts_the_framing(switchyard):
    resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    be = scripted(resp)
    try:
        sy, p = start(switchyard, """
            server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }""",
                      B=be.addr)
        assert request(p, "GET", "/c").body == b"abcde"
        (r,) = log_records(sy, 1)
    finally:
        be.stop()
    head_len = resp.index(b"\r\n\r\n") + 4
    assert r["recv"] == str(len(resp)), r
    assert r["len"] == str(len(resp) - head_len), r


def test_failed_try_then_backup(switchyard, origin):
    """A refused server, then the backup: two tries, the first without a
    connection (no connect or header time) and with the 502 it stood for."""
    cp = closed_port()
    sy, p = start(switchyard, """
        upstream b { server 127.0.0.1:@C@; server @O@ backup; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://b; } }""",
                  C=cp, O=origin.addr)
    r = request(p, "GET", "/x")
    assert r.status == 200
    (rec,) = log_records(sy, 1)
    assert rec["addr"] == f"127.0.0.1:{cp}, {origin.addr}", rec
    assert rec["status"] == "502, 200", rec
    ct, ht, rt = (rec[k].split(", ") for k in ("ct", "ht", "rt"))
    assert ct[0] == "-" and ht[0] == "-" and re.fullmatch(TIME, rt[0]), rec
    assert all(re.fullmatch(TIME, v) for v in (ct[1], ht[1], rt[1])), rec
    assert rec["len"].startswith("0, ") and rec["recv"].startswith("0, "), rec
    assert rec["sent"].startswith("0, ") and int(rec["sent"].split(", ")[1]) > 0, rec


def test_next_upstream_on_status_keeps_both_statuses(switchyard, origin):
    be = scripted(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
    try:
        sy, p = start(switchyard, """
            upstream b { server @B@; server @O@ backup; }
            server { listen 127.0.0.1:@P@;
                location / { proxy_pass http://b; proxy_next_upstream error http_503; } }""",
                      B=be.addr, O=origin.addr)
        assert request(p, "GET", "/x").status == 200
        (rec,) = log_records(sy, 1)
    finally:
        be.stop()
    assert rec["addr"] == f"{be.addr}, {origin.addr}", rec
    assert rec["status"] == "503, 200", rec
    assert all(re.fullmatch(TIME, v) for v in rec["ht"].split(", ")), rec


def test_error_page_to_another_proxied_location_is_a_new_pass(switchyard, origin):
    """proxy_intercept_errors + error_page to a proxied named location: the
    two passes are separated by " : "."""
    sy, p = start(switchyard, """
        server { listen 127.0.0.1:@P@;
            location / { proxy_pass http://@O@; proxy_intercept_errors on;
                         error_page 404 = @fallback; }
            location @fallback { proxy_pass http://@O@; } }""", O=origin.addr)
    r = request(p, "GET", "/status/404")
    assert r.status == 404
    (rec,) = log_records(sy, 1)
    assert rec["addr"] == f"{origin.addr} : {origin.addr}", rec
    assert rec["status"] == "404 : 404", rec
    for k in ("ct", "ht", "rt"):
        assert all(re.fullmatch(TIME, v) for v in rec[k].split(" : ")), rec


def test_no_live_upstreams_names_the_group(switchyard):
    c1, c2 = closed_port(), closed_port()
    sy, p = start(switchyard, """
        upstream grp { server 127.0.0.1:@C1@ max_fails=1 fail_timeout=60s;
                       server 127.0.0.1:@C2@ max_fails=1 fail_timeout=60s; }
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://grp; } }""",
                  C1=c1, C2=c2)
    assert request(p, "GET", "/a").status == 502   # both tried, both marked failed
    assert request(p, "GET", "/b").status == 502   # none live
    first, second = log_records(sy, 2)
    assert sorted(first["addr"].split(", ")) == sorted([f"127.0.0.1:{c1}", f"127.0.0.1:{c2}"])
    assert first["status"] == "502, 502" and first["ct"] == "-, -", first
    assert second["addr"] == "grp" and second["status"] == "502", second
    assert (second["ct"], second["ht"]) == ("-", "-"), second
    assert re.fullmatch(TIME, second["rt"]), second
    assert (second["len"], second["recv"], second["sent"]) == ("0", "0", "0"), second


def test_connect_timeout_is_504_without_connect_time(switchyard):
    bh = blackhole_port()
    sy, p = start(switchyard, """
        server { listen 127.0.0.1:@P@;
            location / { proxy_pass http://127.0.0.1:@H@; proxy_connect_timeout 200ms; } }""",
                  H=bh)
    assert request(p, "GET", "/t").status == 504
    (rec,) = log_records(sy, 1)
    assert rec["addr"] == f"127.0.0.1:{bh}" and rec["status"] == "504", rec
    assert (rec["ct"], rec["ht"]) == ("-", "-"), rec
    assert 0.15 <= float(rec["rt"]) < 5, rec


def test_not_proxied_every_upstream_variable_is_a_dash(switchyard):
    sy, p = start(switchyard, """
        server { listen 127.0.0.1:@P@; location / { return 200 "local"; } }""")
    assert request(p, "GET", "/").status == 200
    (rec,) = log_records(sy, 1)
    assert all(rec[k] == "-" for k in FIELDS if k != "s"), rec


def test_websocket_tunnel_logged_with_its_end_values(switchyard, ws_backend):
    """An upgraded request is logged when its tunnel ends, and like nginx the
    line has the values of that moment: the whole duration in $request_time
    and $upstream_response_time, the relayed bytes in $bytes_sent and
    $upstream_bytes_*, $request_completion OK."""
    be = ws_backend("ws")
    p = free_port()
    fmt = ("log_format t '$status|$request_completion|$request_time|$bytes_sent|"
           "$upstream_status|$upstream_response_time|$upstream_bytes_received|"
           "$upstream_bytes_sent|$upstream_response_length|$connection_time';")
    sy = switchyard(ws_conf("second" if IS_NGINX else "first", be.addr, p,
                            server_extra="access_log logs/t.log t;", http_extra=fmt))
    hold_s = 0.3

    async def talk():
        async with ws_connect(p, "/ws/x") as ws:
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await asyncio.sleep(hold_s)  # the tunnel stays open a known time: measured

    run(talk(), 20)
    path = sy.prefix / "logs" / "t.log"
    line = wait_until(lambda: path.read_text() if path.exists() and path.read_text() else None,
                      5, "the tunnel's log line")
    (status, done, rt, sent, ust, urt, urecv, usent, ulen, ct) = line.strip().split("|")
    assert (status, done, ust, ulen) == ("101", "OK", "101", "0"), line
    for v in (rt, urt, ct):
        assert hold_s <= float(v) < 10, line
    # the 1000-byte message each way plus the close frames, on top of the heads:
    # from the upstream 2+2+1000 and 2+2, from the client (masked) 2+2+4+1000 and 2+4+2
    assert int(urecv) >= 1008 + 50 and int(sent) >= 1008 + 50, line
    assert int(usent) >= 1016 + 50, line
