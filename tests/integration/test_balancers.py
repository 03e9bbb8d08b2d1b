"""Load-balancing methods of an upstream{} block: ip_hash, hash KEY
[consistent], least_conn and random [two].

- ip_hash and hash keep a client (a key) on one server while it is usable,
  and spread clients (keys) over the servers;
- when a server fails, only its clients move (ip_hash, hash consistent);
- hash consistent: removing a server at reload moves only that server's keys;
- least_conn sends a request to the server with the fewest active
  connections of the worker;
- `backup` is refused with the hash methods and random, as nginx does.

Which server answered: every HttpOrigin response carries X-Origin-Port. The
expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx); the
exact server a key maps to differs (the hash functions are not nginx's), so
no test depends on it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket

import pytest

from backends import HttpOrigin, RawBackend, closed_port
from harness import free_port, http_conf, read_until_close, wait_until


@pytest.fixture
def origins():
    os_ = [HttpOrigin().start() for _ in range(3)]
    yield os_
    for o in os_:
        o.stop()


def conf(port: int, method: str, servers: list[str], extra_server: str = "") -> str:
    lines = "".join(f"        server {s}{extra_server};\n" for s in servers)
    return http_conf(f"""
    upstream pool {{
        {method}
{lines}        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
""")


def served_by(port: int, path: str = "/", src: str = "127.0.0.1") -> int:
    """GET `path` from source address `src`; the port of the origin that answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(src, 0)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
        raw = read_until_close(s, 10)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 200"), head
    m = re.search(r"(?im)^X-Origin-Port: (\d+)", head)
    assert m, head
    return int(m.group(1))


SOURCES = [f"127.0.{n}.1" for n in range(1, 25)]  # 24 client networks (ip_hash: /24)


def test_ip_hash_keeps_each_client_on_one_server(switchyard, origins):
    p = free_port()
    switchyard(conf(p, "ip_hash;", [o.addr for o in origins]))
    first = {}
    for src in SOURCES:
        first[src] = served_by(p, src=src)
    for src in SOURCES:
        for _ in range(2):
            assert served_by(p, src=src) == first[src], src
    # another host of the same /24 network goes to the same server
    assert served_by(p, src="127.0.5.77") == first["127.0.5.1"]
    used = set(first.values())
    assert len(used) >= 2, f"24 client networks all on one server: {used}"


def test_ip_hash_moves_only_the_clients_of_a_failed_server(switchyard, origins):
    p = free_port()
    dead = closed_port()
    servers = [o.addr for o in origins[:2]] + [f"127.0.0.1:{dead}"]
    switchyard(conf(p, "ip_hash;", servers))
    # the dead server's clients are retried on another one (proxy_next_upstream
    # error), every other client stays where it is
    first = {src: served_by(p, src=src) for src in SOURCES}
    assert set(first.values()) <= {o.port for o in origins[:2]}
    for src in SOURCES:
        assert served_by(p, src=src) == first[src], src


def test_hash_key_keeps_each_key_on_one_server(switchyard, origins):
    p = free_port()
    switchyard(conf(p, "hash $arg_user;", [o.addr for o in origins]))
    where = {k: served_by(p, f"/?user=u{k}") for k in range(40)}
    for k in range(40):
        assert served_by(p, f"/x?user=u{k}&other={k}") == where[k], k
    assert len(set(where.values())) >= 2


def test_hash_consistent_moves_only_the_removed_servers_keys(switchyard, origins):
    p = free_port()
    sy = switchyard(conf(p, "hash $arg_user consistent;", [o.addr for o in origins]))
    where = {k: served_by(p, f"/?user=u{k}") for k in range(60)}
    assert len(set(where.values())) == 3, "60 keys should reach all three servers"
    gone = origins[2].port
    sy.reload(conf(p, "hash $arg_user consistent;", [o.addr for o in origins[:2]]))
    moved = 0
    for k in range(60):
        now = served_by(p, f"/?user=u{k}")
        if where[k] == gone:
            assert now != gone
            moved += 1
        else:
            assert now == where[k], f"key u{k} moved from {where[k]} to {now}"
    assert moved > 0


def test_least_conn_prefers_the_server_with_fewer_connections(switchyard, origins):
    p = free_port()
    a, b = origins[0], origins[1]
    switchyard(conf(p, "least_conn;", [a.addr, b.addr]))
    # one request held on some server; every other request goes to the other
    held = socket.create_connection(("127.0.0.1", p), timeout=10)
    try:
        held.sendall(b"GET /hang HTTP/1.1\r\nHost: b\r\n\r\n")
        wait_until(lambda: any(r["target"] == "/hang" for o in (a, b) for r in o.requests),
                   5, "the held request at an origin")
        busy = a if any(r["target"] == "/hang" for r in a.requests) else b
        idle = b if busy is a else a
        for _ in range(6):
            assert served_by(p) == idle.port
    finally:
        held.close()


def test_least_conn_and_random_spread_the_load(switchyard, origins):
    for method in ("least_conn;", "random;", "random two;", "random two least_conn;"):
        p = free_port()
        sy = switchyard(conf(p, method, [o.addr for o in origins]))
        used = {served_by(p) for _ in range(30)}
        assert len(used) >= 2, f"{method}: 30 requests all on {used}"
        assert sy.stop() == []  # (its sanitizer report, if any, is not lost)


@pytest.mark.parametrize("method", ["ip_hash;", "hash $request_uri;", "random;"])
def test_backup_is_refused_with_hash_methods_and_random(sy_t, method):
    rc, out = sy_t(http_conf(f"""
    upstream pool {{
        {method}
        server 127.0.0.1:1;
        server 127.0.0.1:2 backup;
    }}
    server {{ listen 127.0.0.1:{free_port()}; location / {{ proxy_pass http://pool; }} }}
"""))
    assert rc != 0
    assert re.search(r'balancing method does not support parameter "backup" in .*:\d+', out), out


def _ws_or_http(port_of):
    """A RawBackend handler: an upgrade gets a 101 and is held open until the
    peer closes; anything else a 200 with X-Origin-Port, then close."""
    def handler(c):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            if not chunk:
                return
            head += chunk
        text = head.decode("latin-1")
        me = port_of(c)
        key = re.search(r"(?im)^Sec-WebSocket-Key:\s*(\S+)", text)
        if key:
            acc = base64.b64encode(hashlib.sha1(
                (key.group(1) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc +
                      f"\r\nX-Origin-Port: {me}\r\n\r\n".encode())
            c.settimeout(None)
            while c.recv(4096):
                pass
            return
        c.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
                  f"X-Origin-Port: {me}\r\n\r\nok".encode())
    return handler


def test_least_conn_counts_websocket_tunnels(switchyard):
    """A WebSocket tunnel counts for its server while it lives: with one
    tunnel open on X, plain requests all go to Y (round robin would
    alternate); once it closed, both servers take requests again."""
    backends = [RawBackend(_ws_or_http(lambda c: c.getsockname()[1])).start() for _ in range(2)]
    try:
        p = free_port()
        switchyard(http_conf(f"""
    upstream pool {{ least_conn; server {backends[0].addr}; server {backends[1].addr}; }}
    server {{
        listen 127.0.0.1:{p};
        location / {{
            proxy_pass http://pool;
            proxy_http_version 1.1;  # nginx needs these three lines, Switchyard does not
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
    }}
"""))
        ws = socket.create_connection(("127.0.0.1", p), timeout=10)
        key = base64.b64encode(b"0123456789abcdef").decode()
        ws.sendall(f"GET /ws HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = ws.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        x = int(re.search(rb"(?im)^X-Origin-Port: (\d+)", head).group(1))
        y = backends[1].port if x == backends[0].port else backends[0].port
        for _ in range(6):
            assert served_by(p) == y
        ws.close()
        # the tunnel's end reaches the backend, whose handler then returns
        busy = backends[0] if x == backends[0].port else backends[1]
        wait_until(lambda: not busy._socks, 5, "the tunnel closed at the backend")
        used = {served_by(p) for _ in range(6)}
        assert used == {x, y}
    finally:
        for b in backends:
            b.stop()
