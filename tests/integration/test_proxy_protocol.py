"""PROXY protocol on listeners (`listen ... proxy_protocol`) and the real
client address behind trusted proxies (set_real_ip_from, real_ip_header,
real_ip_recursive), as nginx does them.

Clients here play the L4 balancer: they send a PROXY protocol header (v1
text or v2 binary, built below) and then the request, usually in one segment
(the common case: HAProxy's `send-proxy` writes the header and the client's
first bytes together), over plain TCP and TLS (the header precedes the
ClientHello), for plain requests, keep-alive and WebSocket tunnels.

Covered: the $proxy_protocol_* variables for v1 TCP4/TCP6/UNKNOWN and v2
PROXY (IPv4, IPv6, TLVs) / LOCAL; broken, truncated, over-long and oversized
headers (closed, error-log line); the header timeout; `real_ip_header
proxy_protocol` changing $remote_addr / $remote_port for the access log and
the upstream's X-Real-IP / X-Forwarded-For while $realip_remote_* keep the
balancer; untrusted peers; X-Real-IP, X-Forwarded-For (recursive or not,
several headers) and other headers; `-t` errors and warnings.

Deliberate differences (docs/differences.md), switchyard_only: nginx reads
the header with a single recv() and calls a header split across segments
broken; Switchyard reads it incrementally (bounded by
client_header_timeout). Error-log wording differs beyond the common part
("broken header", "header is too large", "unknown PROXY protocol version").
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import time

import pytest

from harness import (IS_NGINX, HttpConn, fill, free_port, http_conf, read_until_close,
                     wait_until)
from limits_support import excess_re
from tls_pki import Pki
from ws_fixtures import OP_TEXT, RawWs, frame, header, ws_location

NGINX_TLS = "ssl_protocols TLSv1.2 TLSv1.3;\n" if IS_NGINX else ""

ECHO_VARS = ("ra=$remote_addr rp=$remote_port ppa=$proxy_protocol_addr "
             "ppp=$proxy_protocol_port ppsa=$proxy_protocol_server_addr "
             "ppsp=$proxy_protocol_server_port rra=$realip_remote_addr "
             "rrp=$realip_remote_port")
ECHO = f'location / {{ return 200 "{ECHO_VARS}\\n"; }}'

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# --------------------------------------------------------------------------
# headers


def pp1(src="192.0.2.1", dst="198.51.100.7", sport=12345, dport=443, proto="TCP4") -> bytes:
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


def pp2(src="192.0.2.1", dst="198.51.100.7", sport=12345, dport=443, *, local=False,
        tlvs=b"", family=None, version=2) -> bytes:
    fam = family or (socket.AF_INET6 if ":" in src else socket.AF_INET)
    if fam == socket.AF_INET:
        body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
        fb = 0x11
    else:
        body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack("!HH", sport, dport))
        fb = 0x21
    if local:
        body, fb = b"", 0x00
    body += tlvs
    return V2_SIG + bytes([(version << 4) | (0 if local else 1), fb]) + struct.pack(
        "!H", len(body)) + body


def tlv(t: int, value: bytes) -> bytes:
    return bytes([t]) + struct.pack("!H", len(value)) + value


GET = b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n"


def vars_of(body: bytes) -> dict:
    """The k=v pairs of ECHO's body (values may be empty)."""
    return dict(kv.split("=", 1) for kv in body.decode().split())


def exchange(port: int, *parts: bytes, timeout: float = 5.0) -> bytes:
    """Connect, send `parts` (one segment each, Nagle off), read until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for p in parts:
            s.sendall(p)
        return read_until_close(s, timeout)


def body_vars(raw: bytes) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw
    return vars_of(body)


def closed_without_response(port: int, *parts: bytes, shut_wr: bool = False) -> bytes:
    """Send `parts`; the proxy must close (FIN or RST) without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for p in parts:
            s.sendall(p)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        got = read_until_close(s, 5)  # returns at EOF or reset, or after 5 s
        assert time.monotonic() - t0 < 4.5, "the connection was left open"
    assert b"HTTP/" not in got, got
    return got


def pp_conf(port: int, body: str = ECHO, listen: str = "proxy_protocol", server_extra: str = "",
            extra_http: str = "", host: str = "127.0.0.1") -> str:
    h = f"[{host}]" if ":" in host else host
    return http_conf(f"server {{\n    listen {h}:{port} {listen};\n    server_name pp.test;\n"
                     f"    {server_extra}\n    {body}\n}}", extra_http=extra_http)


@pytest.fixture
def pp_port(switchyard):
    """A proxy_protocol listener answering with ECHO; returns (sy, port)."""
    def start(**kw):
        p = free_port()
        sy = switchyard(pp_conf(p, **kw))
        return sy, p
    return start


# --------------------------------------------------------------------------
# v1


def test_v1_tcp4_header_and_request_in_one_segment(pp_port):
    sy, p = pp_port()
    v = body_vars(exchange(p, pp1() + GET))
    assert v["ppa"] == "192.0.2.1" and v["ppp"] == "12345"
    assert v["ppsa"] == "198.51.100.7" and v["ppsp"] == "443"
    # no realip configured: the client is the balancer (this test's socket)
    assert v["ra"] == "127.0.0.1" and v["rra"] == "127.0.0.1"
    assert v["rp"] == v["rrp"] and int(v["rp"]) > 0


def test_v1_tcp6(pp_port):
    sy, p = pp_port()
    v = body_vars(exchange(p, pp1("2001:db8::1", "2001:db8::2", 40000, 8443, "TCP6") + GET))
    assert (v["ppa"], v["ppp"], v["ppsa"], v["ppsp"]) == ("2001:db8::1", "40000",
                                                          "2001:db8::2", "8443")


def test_v1_unknown_keeps_the_peer(pp_port):
    sy, p = pp_port()
    v = body_vars(exchange(p, pp1(proto="UNKNOWN") + GET))
    assert v["ppa"] == "" and v["ppp"] == "" and v["ppsa"] == "" and v["ppsp"] == ""
    assert v["ra"] == "127.0.0.1"


def test_header_in_its_own_segment(pp_port):
    sy, p = pp_port()
    v = body_vars(exchange(p, pp1(), GET))
    assert v["ppa"] == "192.0.2.1"


# --------------------------------------------------------------------------
# v2


def test_v2_ipv4(pp_port):
    sy, p = pp_port()
    v = body_vars(exchange(p, pp2("203.0.113.5", "198.51.100.9", 5555, 80) + GET))
    assert (v["ppa"], v["ppp"], v["ppsa"], v["ppsp"]) == ("203.0.113.5", "5555",
                                                          "198.51.100.9", "80")


def test_v2_ipv6(pp_port):
    sy, p = pp_port()
    v = body_vars(exchange(p, pp2("2001:db8::5", "2001:db8::9", 1, 65535) + GET))
    assert (v["ppa"], v["ppp"], v["ppsa"], v["ppsp"]) == ("2001:db8::5", "1",
                                                          "2001:db8::9", "65535")


def test_v2_tlvs_are_skipped(pp_port):
    sy, p = pp_port()
    tl = tlv(0x01, b"http/1.1") + tlv(0x02, b"pp.test") + tlv(0x05, b"id-42") + tlv(0x04, b"\0" * 64)
    v = body_vars(exchange(p, pp2(tlvs=tl) + GET))
    assert v["ppa"] == "192.0.2.1" and v["ppsp"] == "443"


def test_v2_local_keeps_the_peer(pp_port):
    """LOCAL: the balancer's own connection (a health check)."""
    sy, p = pp_port()
    v = body_vars(exchange(p, pp2(local=True) + GET))
    assert v["ppa"] == "" and v["ra"] == "127.0.0.1"


def test_ipv6_listener(switchyard):
    p = free_port()
    switchyard(http_conf(f"server {{ listen 127.0.0.1:{p} proxy_protocol; "
                         f"listen [::1]:{p} proxy_protocol; {ECHO} }}"))
    with socket.create_connection(("::1", p), timeout=5) as s:
        s.sendall(pp2("203.0.113.5", "198.51.100.9", 5555, 80) + GET)
        v = body_vars(read_until_close(s))
    assert v["ppa"] == "203.0.113.5" and v["ra"] == "::1"


# --------------------------------------------------------------------------
# the header is only at the start of the connection


def test_keepalive_requests_after_one_header(pp_port):
    sy, p = pp_port()
    with HttpConn(p) as c:
        c.send(pp1("192.0.2.77", sport=777))
        for i in range(3):
            r = c.request("GET", f"/{i}", host="pp.test")
            assert r.status == 200
            v = vars_of(r.body)
            assert v["ppa"] == "192.0.2.77" and v["ppp"] == "777"
        # a second header is not a header any more: an ordinary bad request
        c.send(pp1() + GET)
        r = c.read_response()
        assert r.status == 400


@pytest.mark.switchyard_only
def test_header_split_across_segments(pp_port):
    """Switchyard reads the header incrementally; nginx needs it in one read."""
    sy, p = pp_port()
    for hdr in (pp1("192.0.2.33", sport=3333), pp2("192.0.2.34", sport=3434,
                                                     tlvs=tlv(0x04, b"\0" * 20))):
        with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cuts = [0, 1, 5, 13, 17, len(hdr) - 1, len(hdr)]
            for a, b in zip(cuts, cuts[1:]):
                s.sendall(hdr[a:b])
                # the proxy holds the partial header: the connection stays open
                s.settimeout(0.1)
                with pytest.raises(socket.timeout):
                    s.recv(1)
            s.settimeout(5)
            for i in range(len(GET)):  # then the request byte by byte
                s.sendall(GET[i:i + 1])
            v = body_vars(read_until_close(s))
        assert v["ppa"] in ("192.0.2.33", "192.0.2.34")
    # and the whole header byte by byte, request in the same burst
    data = pp1("192.0.2.35") + GET
    v = body_vars(exchange(p, *[data[i:i + 1] for i in range(len(data))]))
    assert v["ppa"] == "192.0.2.35"


# --------------------------------------------------------------------------
# broken headers: closed, and the error log says why


def test_no_header_is_closed_and_logged(pp_port):
    sy, p = pp_port()
    closed_without_response(p, b"GET / HTTP/1.1\r\nHost: pp.test\r\n\r\n")
    sy.wait_log(r'\[error\] .*broken header: "GET / HTTP/1\.1.*while reading PROXY protocol, '
                r"client: 127\.0\.0\.1, server: 127\.0\.0\.1:%d" % p, flags=re.S)


@pytest.mark.parametrize("bad", [
    b"PROXY TCP4 192.0.2.1\r\n",                       # fields missing
    b"PROXY TCP9 192.0.2.1 198.51.100.7 1 2\r\n",      # no such protocol
    b"PROXY TCP4 192.0.2.1 198.51.100.7 70000 2\r\n",  # port out of range
    b"proxy TCP4 192.0.2.1 198.51.100.7 1 2\r\n",      # the keyword is upper-case
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",   # a TLS ClientHello, no header
])
def test_malformed_v1_is_closed_and_logged(pp_port, bad):
    sy, p = pp_port()
    closed_without_response(p, bad + GET)
    sy.wait_log(r"broken header: .*while reading PROXY protocol", flags=re.S)


def test_truncated_header_then_close(pp_port):
    sy, p = pp_port()
    closed_without_response(p, b"PROXY TCP4 192.0.2.1 19", shut_wr=True)
    sy.wait_log(r'broken header: "PROXY TCP4 192\.0\.2\.1 19".*while reading PROXY protocol', flags=re.S)


@pytest.mark.switchyard_only
def test_over_long_v1_header(pp_port):
    """Longer than the spec's 107 bytes: refused (nginx accepts any length of
    address characters on a plain listener)."""
    sy, p = pp_port()
    closed_without_response(p, b"PROXY TCP4 " + b"1" * 200 + b" 198.51.100.7 1 2\r\n" + GET)
    sy.wait_log(r'broken header: "PROXY TCP4 1111.*while reading PROXY protocol', flags=re.S)


def test_v2_absurd_length(pp_port):
    sy, p = pp_port()
    hdr = V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 0xFFFF)
    closed_without_response(p, hdr + b"\0" * 12 + GET)
    sy.wait_log(r"header is too large.*while reading PROXY protocol", flags=re.S)


def test_v2_unknown_version(pp_port):
    sy, p = pp_port()
    closed_without_response(p, pp2(version=3) + GET)
    sy.wait_log(r"unknown PROXY protocol version.*while reading PROXY protocol", flags=re.S)


@pytest.mark.switchyard_only
def test_v2_truncated_addresses_and_bad_command(pp_port):
    """nginx skips these (command other than PROXY, short address block);
    the spec says to drop the connection, and Switchyard does."""
    sy, p = pp_port()
    closed_without_response(p, V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", 4) + b"\0" * 4 + GET)
    sy.wait_log(r"broken PROXY protocol v2 header \(PROXY protocol v2 address block is truncated\)")
    closed_without_response(p, V2_SIG + bytes([0x2F, 0x11]) + struct.pack("!H", 12) + b"\0" * 12 + GET)
    sy.wait_log(r"unknown PROXY protocol v2 command")


@pytest.mark.switchyard_only
def test_truncated_v2_then_close(pp_port):
    sy, p = pp_port()
    closed_without_response(p, pp2()[:20], shut_wr=True)
    sy.wait_log(r"broken PROXY protocol v2 header \(connection closed before the header ended\)")


def test_broken_headers_leak_nothing(pp_port):
    """Connections that fail or stall in the header cost nothing after they end."""
    sy, p = pp_port()
    exchange(p, pp1() + GET)
    base = sy.fd_count()
    socks = []
    for i in range(10):
        closed_without_response(p, b"GARBAGE\r\n" + GET)
        s = socket.create_connection(("127.0.0.1", p), timeout=5)
        s.sendall(b"PROXY TCP4")  # partial: waiting for the rest
        socks.append(s)
    for s in socks:
        s.close()
    wait_until(lambda: sy.fd_count() <= base, 5, "fds back to the baseline")
    assert body_vars(exchange(p, pp1("192.0.2.99") + GET))["ppa"] == "192.0.2.99"


@pytest.mark.slow
def test_header_timeout(pp_port):
    """client_header_timeout bounds the wait for the header."""
    sy, p = pp_port(server_extra="client_header_timeout 1s;")
    with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
        t0 = time.monotonic()
        assert read_until_close(s, 5) == b""
        took = time.monotonic() - t0
    assert 0.9 <= took < 4.5, took


@pytest.mark.slow
@pytest.mark.switchyard_only
def test_partial_header_times_out(pp_port):
    sy, p = pp_port(server_extra="client_header_timeout 1s;")
    with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
        s.sendall(b"PROXY TCP4 192.0.2.1 ")
        t0 = time.monotonic()
        assert read_until_close(s, 5) == b""
        took = time.monotonic() - t0
    assert 0.9 <= took < 4.5, took


@pytest.mark.switchyard_only
def test_graceful_stop_closes_connections_waiting_for_a_header(pp_port):
    sy, p = pp_port()
    with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
        s.sendall(b"PROXY TCP4 ")
        assert sy.stop() == []
        assert read_until_close(s, 5) == b""


# --------------------------------------------------------------------------
# TLS: the header comes before the ClientHello


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_pp_conf(port: int, pki, body: str = ECHO, extra: str = "") -> str:
    crt, key = pki.cert("a.test")
    return http_conf(f"server {{\n    listen 127.0.0.1:{port} ssl proxy_protocol;\n"
                     f"    server_name a.test;\n    ssl_certificate {crt};\n"
                     f"    ssl_certificate_key {key};\n    {extra}\n    {body}\n}}",
                     extra_http=NGINX_TLS)


def tls_exchange(port: int, pki, pp: bytes, request: bytes, *, same_segment: bool = True) -> bytes:
    """PROXY header, then TLS to a.test; with `same_segment` the header and
    the ClientHello leave in one send(). Returns the decrypted response."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.test")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        if same_segment:
            s.sendall(pp + hello)
        else:
            s.sendall(pp)
            s.sendall(hello)

        def pump_in():
            d = s.recv(65536)
            if not d:
                inc.write_eof()
            else:
                inc.write(d)
            return d

        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                d = out.read()
                if d:
                    s.sendall(d)
                if not pump_in():
                    raise ConnectionError("closed during the handshake")
        obj.write(request)
        s.sendall(out.read())
        got = b""
        while True:
            try:
                chunk = obj.read(65536)
                if not chunk:
                    break
                got += chunk
            except ssl.SSLWantReadError:
                d = out.read()
                if d:
                    s.sendall(d)
                if not pump_in():
                    break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
        return got


def test_tls_header_and_client_hello_in_one_segment(switchyard, pki):
    p = free_port()
    switchyard(tls_pp_conf(p, pki, body='location / { return 200 "$https %s\\n"; }' % ECHO_VARS))
    raw = tls_exchange(p, pki, pp1("192.0.2.8", sport=808),
                       b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw
    https, rest = body.decode().split(" ", 1)
    assert https == "on"
    v = vars_of(rest.encode())
    assert v["ppa"] == "192.0.2.8" and v["ppp"] == "808"


def test_tls_v2_header_in_its_own_segment(switchyard, pki):
    p = free_port()
    switchyard(tls_pp_conf(p, pki))
    raw = tls_exchange(p, pki, pp2("2001:db8::8", "2001:db8::1", 4242, 443),
                       b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                       same_segment=False)
    assert body_vars(raw)["ppa"] == "2001:db8::8"


def test_tls_listener_without_header_is_closed(switchyard, pki):
    """A ClientHello where the header should be: broken header, no handshake."""
    p = free_port()
    sy = switchyard(tls_pp_conf(p, pki))
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(s, server_hostname="a.test"):
                pass
    sy.wait_log(r"broken header: .*while reading PROXY protocol", flags=re.S)


def test_tls_plain_http_after_header(switchyard, pki):
    p = free_port()
    switchyard(tls_pp_conf(p, pki))
    raw = exchange(p, pp1() + b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400"), raw
    assert b"The plain HTTP request was sent to HTTPS port" in raw


# --------------------------------------------------------------------------
# real IP from the PROXY protocol header


REALIP_PP = "set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;"


def test_realip_from_proxy_protocol(pp_port):
    sy, p = pp_port(server_extra=REALIP_PP)
    v = body_vars(exchange(p, pp1("192.0.2.1", sport=12345) + GET))
    assert v["ra"] == "192.0.2.1" and v["rp"] == "12345"
    assert v["rra"] == "127.0.0.1" and v["rrp"] not in ("", "12345")
    # v2 IPv6 source
    v = body_vars(exchange(p, pp2("2001:db8::77", "2001:db8::1", 7777, 443) + GET))
    assert v["ra"] == "2001:db8::77" and v["rp"] == "7777" and v["rra"] == "127.0.0.1"
    # LOCAL and UNKNOWN name nobody: the peer stays
    assert body_vars(exchange(p, pp2(local=True) + GET))["ra"] == "127.0.0.1"
    assert body_vars(exchange(p, pp1(proto="UNKNOWN") + GET))["ra"] == "127.0.0.1"


def test_realip_untrusted_peer_changes_nothing(pp_port):
    sy, p = pp_port(server_extra="set_real_ip_from 10.0.0.0/8; set_real_ip_from ::1; "
                                 "real_ip_header proxy_protocol;")
    v = body_vars(exchange(p, pp1("192.0.2.1") + GET))
    assert v["ra"] == "127.0.0.1" and v["ppa"] == "192.0.2.1"


def test_realip_in_access_log_and_upstream_headers(switchyard, origin):
    p = free_port()
    sy = switchyard(http_conf(fill("""
        log_format pp '$remote_addr:$remote_port via $realip_remote_addr pp=$proxy_protocol_addr '
                      '"$request" $status';
        server {
            listen 127.0.0.1:@P@ proxy_protocol;
            set_real_ip_from 127.0.0.0/8;
            real_ip_header proxy_protocol;
            access_log logs/access.log pp;
            location / {
                proxy_set_header X-Real-IP $remote_addr;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-PP $proxy_protocol_addr:$proxy_protocol_port;
                proxy_set_header X-PP-Server $proxy_protocol_server_addr:$proxy_protocol_server_port;
                proxy_pass http://@O@;
            }
        }""", P=p, O=origin.addr)))
    with HttpConn(p) as c:
        c.send(pp1("192.0.2.200", "198.51.100.1", 4321, 443))
        r = c.request("GET", "/first", host="pp.test",
                      headers=[("X-Forwarded-For", "203.0.113.50")])
        assert r.status == 200
        r = c.request("GET", "/second", host="pp.test")
        assert r.status == 200
    recs = origin.wait_requests(2)
    h1 = {k.lower(): v for k, v in recs[-2]["headers"]}
    h2 = {k.lower(): v for k, v in recs[-1]["headers"]}
    assert h1["x-real-ip"] == "192.0.2.200"
    assert h1["x-forwarded-for"] == "203.0.113.50, 192.0.2.200"
    assert h1["x-pp"] == "192.0.2.200:4321" and h1["x-pp-server"] == "198.51.100.1:443"
    assert h2["x-real-ip"] == "192.0.2.200" and h2["x-forwarded-for"] == "192.0.2.200"
    sy.wait_access_log(r'192\.0\.2\.200:4321 via 127\.0\.0\.1 pp=192\.0\.2\.200 "GET /first HTTP/1\.1" 200')
    sy.wait_access_log(r'192\.0\.2\.200:4321 via 127\.0\.0\.1 pp=192\.0\.2\.200 "GET /second HTTP/1\.1" 200')


def test_access_log_without_proxy_protocol_shows_dash(switchyard):
    p = free_port()
    sy = switchyard(http_conf(fill("""
        log_format pp '$remote_addr pp=$proxy_protocol_addr ppp=$proxy_protocol_port "$request"';
        server { listen 127.0.0.1:@P@; access_log logs/access.log pp; location / { return 204; } }
        """, P=p)))
    raw = exchange(p, GET)
    assert raw.startswith(b"HTTP/1.1 204")
    sy.wait_access_log(r'127\.0\.0\.1 pp=- ppp=- "GET / HTTP/1\.1"')


def test_curl_haproxy_protocol(pp_port):
    """A real client's header: curl --haproxy-protocol sends v1 with its own
    addresses, so with realip $remote_addr is curl's address again."""
    import subprocess
    sy, p = pp_port(server_extra=REALIP_PP)
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--haproxy-protocol",
                        f"http://127.0.0.1:{p}/"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    v = vars_of(r.stdout)
    assert v["ppa"] == "127.0.0.1" and v["ra"] == "127.0.0.1" and v["ppsp"] == str(p)
    assert v["rp"] == v["ppp"]


def test_websocket_through_proxy_protocol_listener(switchyard, ws_backend):
    be = ws_backend()
    p = free_port()
    switchyard(http_conf(
        f"server {{\n    listen 127.0.0.1:{p} proxy_protocol;\n    {REALIP_PP}\n"
        f"{ws_location('second', be.addr)}\n}}"))
    ws = RawWs(p)
    try:
        ws.send(pp1("192.0.2.123", sport=1234))
        key, status, headers, raw = ws.handshake("/ws")
        assert status == 101, raw
        ws.send(frame(OP_TEXT, b"through the balancer"))
        assert ws.read_frame()[2] == b"through the balancer"
        # bytes that look like a PROXY header inside the tunnel are just data
        ws.send(frame(OP_TEXT, pp1()))
        assert ws.read_frame()[2] == pp1()
        ws.send(frame(OP_TEXT, b"__headers__"))
        rec = json.loads(ws.read_frame()[2])
    finally:
        ws.close()
    assert header(rec["headers"], "X-Real-IP") == "192.0.2.123"
    assert header(rec["headers"], "X-Forwarded-For") == "192.0.2.123"


# --------------------------------------------------------------------------
# real IP from request headers


XFF_BODY = 'location / { return 200 "ra=$remote_addr rp=$remote_port rra=$realip_remote_addr\\n"; }'


@pytest.mark.parametrize("directives,headers,want,want_port", [
    # X-Real-IP is the default header
    ("set_real_ip_from 127.0.0.1;", [("X-Real-IP", "203.0.113.9")], "203.0.113.9", ""),
    ("set_real_ip_from 127.0.0.1;", [("X-Real-IP", "[2001:db8::9]:4444")], "2001:db8::9", "4444"),
    ("set_real_ip_from 127.0.0.1;", [("X-Real-IP", "not-an-address")], "127.0.0.1", None),
    ("set_real_ip_from 10.0.0.0/8;", [("X-Real-IP", "203.0.113.9")], "127.0.0.1", None),
    # X-Forwarded-For: the last address, or walking left while trusted
    ("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For;",
     [("X-Forwarded-For", "203.0.113.1, 10.0.0.2")], "10.0.0.2", ""),
    ("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; "
     "real_ip_recursive on;", [("X-Forwarded-For", "203.0.113.1, 10.0.0.2")], "203.0.113.1", ""),
    ("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; "
     "real_ip_recursive on;", [("X-Forwarded-For", "10.0.0.3,10.0.0.2")], "10.0.0.3", ""),
    ("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; "
     "real_ip_recursive on;", [("X-Forwarded-For", "198.51.100.1, 203.0.113.1:8080, 10.0.0.2")],
     "203.0.113.1", "8080"),
    ("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; "
     "real_ip_recursive on;", [("X-Forwarded-For", "garbage, 10.0.0.2")], "10.0.0.2", ""),
    # several X-Forwarded-For headers: the last one first
    ("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; real_ip_header X-Forwarded-For; "
     "real_ip_recursive on;", [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "10.0.0.5")],
     "203.0.113.7", ""),
    ("set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;",
     [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "10.0.0.5")], "10.0.0.5", ""),
    # any other header, and unix:/host-name entries
    ("set_real_ip_from 127.0.0.1; real_ip_header X-Client;", [("x-client", "192.0.2.44")],
     "192.0.2.44", ""),
    ("set_real_ip_from unix:; set_real_ip_from localhost;", [("X-Real-IP", "192.0.2.45")],
     "192.0.2.45", ""),
    # a CIDR with low bits set still matches its network (nginx warns)
    ("set_real_ip_from 127.1.2.3/8;", [("X-Real-IP", "192.0.2.46")], "192.0.2.46", ""),
])
def test_realip_from_headers(switchyard, directives, headers, want, want_port):
    p = free_port()
    switchyard(http_conf(f"server {{ listen 127.0.0.1:{p}; {directives} {XFF_BODY} }}"))
    with HttpConn(p) as c:
        r = c.request("GET", "/", host="x.test", headers=headers)
        assert r.status == 200
        v = vars_of(r.body)
        assert v["ra"] == want and v["rra"] == "127.0.0.1"
        if want_port is not None:
            assert v["rp"] == want_port
        # the next request on the connection starts from the peer again
        r = c.request("GET", "/", host="x.test")
        assert vars_of(r.body)["ra"] == "127.0.0.1"


def test_realip_location_level_and_inheritance(switchyard, origin):
    """Server-level settings apply before the server's rewrites (nginx's
    POST_READ phase); a location's own apply before its content handler
    (PREACCESS: after its rewrites, so not to `return`). A location's
    set_real_ip_from list replaces the inherited one."""
    p = free_port()
    to_origin = f"proxy_set_header X-RA $remote_addr; proxy_pass http://{origin.addr};"
    switchyard(http_conf(f"""
        server {{
            listen 127.0.0.1:{p};
            set_real_ip_from 10.0.0.0/8;
            location / {{ set_real_ip_from 127.0.0.1; {to_origin} }}
            location /inherits {{ {to_origin} }}
            location /xff {{ set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;
                {to_origin} }}
            location /return {{ set_real_ip_from 127.0.0.1; return 200 "ra=$remote_addr\\n"; }}
        }}"""))
    hdrs = [("X-Real-IP", "192.0.2.1"), ("X-Forwarded-For", "192.0.2.2")]

    def seen(path):
        with HttpConn(p) as c:
            r = c.request("GET", path, host="x", headers=hdrs)
        assert r.status == 200
        if path == "/return":
            return vars_of(r.body)["ra"]
        return {k.lower(): v for k, v in origin.requests[-1]["headers"]}["x-ra"]

    assert seen("/") == "192.0.2.1"
    assert seen("/inherits") == "127.0.0.1"
    assert seen("/xff") == "192.0.2.2"
    assert seen("/return") == "127.0.0.1"


# --------------------------------------------------------------------------
# configuration


def test_listen_options_combine(switchyard):
    """proxy_protocol belongs to the address: one listen with it makes every
    server on that address expect the header (like ssl)."""
    p = free_port()
    switchyard(http_conf(f"""
        server {{ listen 127.0.0.1:{p} proxy_protocol default_server; server_name a.test;
                 return 200 "a $proxy_protocol_addr\\n"; }}
        server {{ listen 127.0.0.1:{p}; server_name b.test;
                 return 200 "b $proxy_protocol_addr\\n"; }}"""))
    raw = exchange(p, pp1("192.0.2.5") + b"GET / HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
    assert raw.endswith(b"b 192.0.2.5\n"), raw
    closed_without_response(p, b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")


def test_listen_reuseport_with_proxy_protocol(switchyard):
    p = free_port()
    switchyard(pp_conf(p, listen="proxy_protocol reuseport backlog=64"))
    assert body_vars(exchange(p, pp1() + GET))["ppa"] == "192.0.2.1"


@pytest.mark.parametrize("body,msg", [
    ("server { listen 127.0.0.1:@P@ proxy_protocol backlog=10; }\n"
     "server { listen 127.0.0.1:@P@ proxy_protocol backlog=20; }",
     r"duplicate listen options for 127\.0\.0\.1:\d+ in \S+sy-t\.conf:\d+"),
    ("set_real_ip_from 10.0.0.0/33; server { listen 127.0.0.1:@P@; }",
     r'host not found in set_real_ip_from "10\.0\.0\.0/33" in \S+sy-t\.conf:\d+'),
    ("set_real_ip_from ::1/129; server { listen 127.0.0.1:@P@; }",
     r'host not found in set_real_ip_from "::1/129" in \S+sy-t\.conf:\d+'),
    ("set_real_ip_from unix:/run/x; server { listen 127.0.0.1:@P@; }",
     r'host not found in set_real_ip_from "unix:/run/x" in \S+sy-t\.conf:\d+'),
    ("set_real_ip_from; server { listen 127.0.0.1:@P@; }",
     r'invalid number of arguments in "set_real_ip_from" directive in \S+sy-t\.conf:\d+'),
    ("real_ip_header X-Real-IP; real_ip_header proxy_protocol; server { listen 127.0.0.1:@P@; }",
     r'"real_ip_header" directive is duplicate in \S+sy-t\.conf:\d+'),
    ("real_ip_recursive maybe; server { listen 127.0.0.1:@P@; }",
     r'invalid value "maybe" in "real_ip_recursive" directive, it must be "on" or "off" '
     r"in \S+sy-t\.conf:\d+"),
    ("server { listen 127.0.0.1:@P@; location / { if ($uri) { set_real_ip_from 10.0.0.1; } } }",
     r'"set_real_ip_from" directive is not allowed here in \S+sy-t\.conf:\d+'),
    ("server { listen 127.0.0.1:@P@ proxy_protocl; }",
     r'invalid parameter "proxy_protocl" in \S+sy-t\.conf:\d+'),
])
def test_config_errors(sy_t, body, msg):
    rc, out = sy_t(http_conf(fill(body, P=free_port())))
    assert rc != 0, out
    assert re.search(msg, out), out


def test_config_accepted_with_warning(sy_t):
    rc, out = sy_t(http_conf(fill("""
        set_real_ip_from 10.0.0.1/8;
        set_real_ip_from 2001:db8::/32;
        set_real_ip_from unix:;
        real_ip_header CF-Connecting-IP;
        real_ip_recursive on;
        server { listen 127.0.0.1:@P@ proxy_protocol default_server reuseport;
                 listen [::1]:@P@ proxy_protocol; }
        server { listen 127.0.0.1:@P@; server_name b.test; }
        """, P=free_port())))
    assert rc == 0, out
    assert re.search(r"low address bits of 10\.0\.0\.1/8 are meaningless in \S+sy-t\.conf:\d+", out), out


# --------------------------------------------------------------------------
# limits see the real client

def test_limit_req_keys_on_the_real_client(pp_port, origin):
    """limit_req runs after realip (nginx's phase order): two clients behind
    the same balancer have a bucket each, and the rejection log names the
    client from the PROXY header. (A proxied location: `return` runs before
    the limits, in nginx too.)"""
    sy, p = pp_port(
        server_extra="set_real_ip_from 127.0.0.1; real_ip_header proxy_protocol;",
        body=f"location / {{ limit_req zone=one; proxy_pass http://{origin.addr}; }}",
        extra_http="limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;")

    def status(src: str) -> bytes:
        raw = exchange(p, pp1(src=src) + b"GET / HTTP/1.1\r\nHost: pp.test\r\n"
                       b"Connection: close\r\n\r\n")
        return raw.split(b"\r\n", 1)[0]

    assert status("192.0.2.1") == b"HTTP/1.1 200 OK"
    assert status("192.0.2.2") == b"HTTP/1.1 200 OK"
    mark = sy.log_mark()
    assert status("192.0.2.1").startswith(b"HTTP/1.1 503")
    sy.wait_log(r'limiting requests, excess: ' + excess_re(1)
                + r' by zone "one", client: 192\.0\.2\.1,', since=mark)
