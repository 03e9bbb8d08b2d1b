"""Response compression with gzip (issue 14 item 1): nginx's
ngx_http_gzip_module and gzip_static, over real sockets, against static
files, `return`, error pages and proxied responses (scripted origin).

What nginx does, and so Switchyard: only 200/403/404 responses whose type
is in gzip_types (text/html always), whose length is unknown or at least
gzip_min_length, that have no Content-Encoding and a body (not HEAD, 204,
304), to a client whose Accept-Encoding takes gzip, over HTTP/1.1 or later
(gzip_http_version), without Via unless gzip_proxied allows it, and whose
User-Agent gzip_disable does not match. A compressed response loses
Content-Length and Accept-Ranges, its ETag becomes weak, and it is chunked on
HTTP/1.1. gzip_vary adds Vary: Accept-Encoding to every eligible response.
The body streams: server-sent events arrive event by event, and a 20 MiB
file is compressed with the worker's memory bounded. gzip_static serves
FILE.gz. Everything here also runs against Debian's nginx
(SWITCHYARD_BIN=/usr/sbin/nginx) except what docs/differences.md records.
"""

import os
import socket
import threading
import time
import zlib

import pytest

from backends import read_request_head
from h2_support import H2Client, curl_h2, h2_server
from ws_fixtures import frame as ws_frame, xor_mask
from harness import IS_NGINX, HttpConn, fill, free_port, http_conf, request

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n"
               for i in range(400)).encode()  # ~22 KB, very compressible
# less regular text, so that compression levels differ in size
VARIED = "".join(f"{i * 7919 % 10007:05d} {(i * i) % 977:03d} alpha beta {i % 13}\n"
                 for i in range(3000)).encode()
SMALL = b"tiny\n"  # shorter than gzip_min_length 20
MTIME = 1445412480


def gunzip(data: bytes) -> bytes:
    return zlib.decompress(data, 16 + zlib.MAX_WBITS)


# ----------------------------------------------------------------- origin


def start_origin(raw_backend, routes):
    """A scripted HTTP/1.1 origin: routes maps a path to (head lines, body
    bytes) -- body None for chunked streaming by a callable(sock)."""

    def handler(c):
        while True:
            head = read_request_head(c)
            if not head:
                return
            path = head.split(b" ", 2)[1].decode().split("?")[0]
            route = routes.get(path)
            if route is None:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            if callable(route):
                route(c, head)
                return
            lines, body = route
            h = "HTTP/1.1 " + lines[0] + "\r\n" + "".join(x + "\r\n" for x in lines[1:])
            if body is not None and not any(x.lower().startswith(("content-length",
                                                                   "transfer-encoding"))
                                            for x in lines):
                h += f"Content-Length: {len(body)}\r\n"
            c.sendall(h.encode() + b"\r\n" + (body or b""))
            if any(x.lower() == "connection: close" for x in lines):
                return

    return raw_backend(handler)


def chunks(data: bytes, size: int = 3000) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


ROUTES = {
    "/text": (["200 OK", "Content-Type: text/plain"], TEXT),
    "/html": (["200 OK", "Content-Type: text/html; charset=utf-8"], TEXT),
    "/png": (["200 OK", "Content-Type: image/png"], TEXT),
    "/small": (["200 OK", "Content-Type: text/plain"], SMALL),
    "/small-chunked": (["200 OK", "Content-Type: text/plain", "Transfer-Encoding: chunked"],
                       chunks(SMALL)),
    "/chunked": (["200 OK", "Content-Type: text/plain", "Transfer-Encoding: chunked"],
                 chunks(TEXT)),
    "/encoded": (["200 OK", "Content-Type: text/plain", "Content-Encoding: br"], TEXT),
    "/partial": (["206 Partial Content", "Content-Type: text/plain",
                  f"Content-Range: bytes 0-{len(TEXT) - 1}/{len(TEXT) * 2}"], TEXT),
    "/status500": (["500 Internal Server Error", "Content-Type: text/plain"], TEXT),
    "/status404": (["404 Not Found", "Content-Type: text/plain"], TEXT),
    "/etag": (["200 OK", "Content-Type: text/plain", 'ETag: "abc123"'], TEXT),
    "/expired": (["200 OK", "Content-Type: text/plain",
                  "Expires: Thu, 01 Jan 1970 00:00:01 GMT"], TEXT),
    "/nocache": (["200 OK", "Content-Type: text/plain", "Cache-Control: no-cache"], TEXT),
    "/private": (["200 OK", "Content-Type: text/plain", "Cache-Control: max-age=60, public"], TEXT),
    "/empty204": (["204 No Content", "Content-Type: text/plain"], None),
    "/varied": (["200 OK", "Content-Type: text/plain"], VARIED),
}

CONF = r"""
types { text/html html; text/plain txt; image/png png; text/css css; }
default_type application/octet-stream;
server {
    listen 127.0.0.1:@PORT@;
    root @PREFIX@html;
    gzip on;
    gzip_types text/plain text/css text/event-stream;

    location / { }
    location /vary/ { alias @PREFIX@html/; gzip_vary on; }
    location /novary/ { alias @PREFIX@html/; gzip_vary off; }
    location /lvl1/ { proxy_pass http://@UP@/; gzip_comp_level 1; }
    location /lvl9/ { proxy_pass http://@UP@/; gzip_comp_level 9; }
    location /min/ { proxy_pass http://@UP@/; gzip_min_length 20; }
    location /p/ { proxy_pass http://@UP@/; }
    location /any/ { proxy_pass http://@UP@/; gzip_proxied any; }
    location /exp/ { proxy_pass http://@UP@/; gzip_proxied expired no-cache; }
    location /auth/ { proxy_pass http://@UP@/; gzip_proxied auth; }
    location /dis/ { alias @PREFIX@html/; gzip_disable "curl/\d" msie6; }
    location /msie/ { alias @PREFIX@html/; gzip_disable msie6; }
    location /v10/ { alias @PREFIX@html/; gzip_http_version 1.0; }
    location /off/ { alias @PREFIX@html/; gzip off; }
    location /iff/ { alias @PREFIX@html/; if ($arg_plain) { gzip off; } }
    location /ret { return 200 "$request_uri: the quick brown fox jumps over the lazy dog\n"; }
    location /st/ { alias @PREFIX@html/; gzip off; gzip_static on; gzip_vary on; }
    location /st-always/ { alias @PREFIX@html/; gzip off; gzip_static always; }
    location /tuned/ { alias @PREFIX@html/; gzip_buffers 16 8k; gzip_window 8k; gzip_hash 4k;
                       gzip_no_buffer on; postpone_gzipping 0; }
    location /sse/ { proxy_pass http://@UP@/; proxy_buffering off; proxy_read_timeout 20s; }
    location /ws/ { proxy_pass http://@UP@/; proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection "upgrade"; }
}
"""


def build_tree(prefix):
    files = {
        "html/a.txt": TEXT,
        "html/page.html": TEXT,
        "html/pic.png": TEXT,
        "html/small.txt": SMALL,
        "html/style.css": TEXT,
        "html/pre.txt": TEXT,
        "html/pre.txt.gz": b"GZ-VARIANT-BYTES",
        "html/only.txt": TEXT,
    }
    for rel, data in files.items():
        p = prefix / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (MTIME, MTIME))


@pytest.fixture
def env(switchyard, raw_backend, tmp_path):
    build_tree(tmp_path)
    up = start_origin(raw_backend, dict(ROUTES))
    sy = switchyard(http_conf(fill(CONF, PORT=free_port(), PREFIX=f"{tmp_path}/", UP=up.addr)))
    return sy, up


GZ = {"Accept-Encoding": "gzip"}


def get(port, target, headers=None, **kw):
    return request(port, "GET", target, headers=headers, **kw)


def assert_gzipped(r, plain: bytes):
    assert r.status in (200, 403, 404), r
    assert r.header("Content-Encoding") == "gzip", r
    assert r.header("Content-Length") is None
    assert r.header("Accept-Ranges") is None
    assert gunzip(r.body) == plain
    assert len(r.body) < len(plain)


def assert_plain(r, plain: bytes):
    assert r.header("Content-Encoding") is None, r
    assert r.body == plain


# ----------------------------------------------------------------- static, types


def test_static_text_is_gzipped_with_weak_etag(env):
    sy, _ = env
    r = get(sy.port, "/a.txt", GZ)
    assert_gzipped(r, TEXT)
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.header("ETag") == f'W/"{MTIME:x}-{len(TEXT):x}"'
    assert r.header("Last-Modified") is not None


def test_without_accept_encoding_nothing_changes(env):
    sy, _ = env
    r = get(sy.port, "/a.txt")
    assert_plain(r, TEXT)
    assert r.header("Content-Length") == str(len(TEXT))
    assert r.header("ETag") == f'"{MTIME:x}-{len(TEXT):x}"'
    assert r.header("Accept-Ranges") == "bytes"


@pytest.mark.parametrize("ae,gz", [
    ("gzip", True), ("gzip, deflate, br", True), ("deflate, gzip;q=0.5", True),
    ("gzip;q=0", False), ("gzip;q=0.000", False), ("deflate", False), ("identity", False),
    ("GZIP", True),
    # RFC 9110 12.5.3: x-gzip is gzip; nginx ignores it (docs/differences.md)
    ("x-gzip", not IS_NGINX),
])
def test_accept_encoding_q_values(env, ae, gz):
    sy, _ = env
    r = get(sy.port, "/a.txt", {"Accept-Encoding": ae})
    if gz:
        assert_gzipped(r, TEXT)
    else:
        assert_plain(r, TEXT)


def test_types_html_always_others_listed(env):
    sy, _ = env
    assert_gzipped(get(sy.port, "/page.html", GZ), TEXT)       # text/html: always
    assert_gzipped(get(sy.port, "/style.css", GZ), TEXT)       # listed
    assert_plain(get(sy.port, "/pic.png", GZ), TEXT)           # not listed
    assert_gzipped(get(sy.port, "/p/html", GZ), TEXT)          # "text/html; charset=utf-8"
    assert_plain(get(sy.port, "/p/png", GZ), TEXT)


def test_gzip_off_location(env):
    sy, _ = env
    assert_plain(get(sy.port, "/off/a.txt", GZ), TEXT)


def test_gzip_in_if(env):
    sy, _ = env
    assert_gzipped(get(sy.port, "/iff/a.txt", GZ), TEXT)
    assert_plain(get(sy.port, "/iff/a.txt?plain=1", GZ), TEXT)


def test_min_length_known_and_unknown(env):
    sy, _ = env
    # Content-Length known and below gzip_min_length: untouched
    r = get(sy.port, "/small.txt", GZ)
    assert_plain(r, SMALL)
    assert r.header("Content-Length") == str(len(SMALL))
    assert_plain(get(sy.port, "/min/small", GZ), SMALL)
    # length unknown (chunked upstream): compressed whatever its size
    r = get(sy.port, "/min/small-chunked", GZ)
    assert r.header("Content-Encoding") == "gzip"
    assert gunzip(r.body) == SMALL


def test_comp_level(env):
    sy, _ = env
    r1 = get(sy.port, "/lvl1/varied", GZ)
    r9 = get(sy.port, "/lvl9/varied", GZ)
    assert gunzip(r1.body) == VARIED and gunzip(r9.body) == VARIED
    assert len(r9.body) < len(r1.body)
    # the gzip header's XFL byte says which: 4 = fastest (level 1), 2 = best (level 9)
    assert r1.body[8] == 4 and r9.body[8] == 2


def test_tuning_directives_accepted(env):
    sy, _ = env
    assert_gzipped(get(sy.port, "/tuned/a.txt", GZ), TEXT)


def test_return_and_error_pages_are_gzipped(env):
    sy, _ = env
    r = get(sy.port, "/ret?" + "x" * 10, GZ)
    assert r.header("Content-Encoding") is None  # default_type octet-stream
    r = get(sy.port, "/missing.html", GZ)         # 404 page, text/html
    assert r.status == 404
    assert r.header("Content-Encoding") == "gzip"
    assert b"404 Not Found" in gunzip(r.body)


# ----------------------------------------------------------------- vary


def test_vary_on_eligible_responses_only(env):
    sy, _ = env
    r = get(sy.port, "/vary/a.txt", GZ)
    assert r.header("Vary") == "Accept-Encoding"
    assert_gzipped(r, TEXT)
    # eligible but the client takes no gzip: still Vary
    r = get(sy.port, "/vary/a.txt")
    assert r.header("Vary") == "Accept-Encoding"
    assert_plain(r, TEXT)
    # not eligible (type): no Vary
    assert get(sy.port, "/vary/pic.png", GZ).header("Vary") is None
    # gzip_vary off
    assert get(sy.port, "/novary/a.txt", GZ).header("Vary") is None


# ----------------------------------------------------------------- request checks


def test_proxied_requests_with_via(env):
    sy, _ = env
    via = {"Accept-Encoding": "gzip", "Via": "1.1 cache"}
    assert_gzipped(get(sy.port, "/p/text", GZ), TEXT)      # no Via
    assert_plain(get(sy.port, "/p/text", via), TEXT)       # gzip_proxied off (default)
    assert_gzipped(get(sy.port, "/any/text", via), TEXT)   # any
    assert_gzipped(get(sy.port, "/exp/expired", via), TEXT)  # Expires in the past
    assert_gzipped(get(sy.port, "/exp/nocache", via), TEXT)  # Cache-Control: no-cache
    assert_plain(get(sy.port, "/exp/private", via), TEXT)  # a Cache-Control not listed
    # nginx: with neither Expires nor Cache-Control, only no_last_modified /
    # no_etag can still refuse
    assert_gzipped(get(sy.port, "/exp/text", via), TEXT)
    assert_plain(get(sy.port, "/auth/nocache", via), TEXT)
    assert_gzipped(get(sy.port, "/auth/nocache", dict(via, Authorization="Basic eDp5")), TEXT)


def test_gzip_disable_regex_and_msie6(env):
    sy, _ = env
    assert_plain(get(sy.port, "/dis/a.txt", dict(GZ, **{"User-Agent": "curl/8.1"})), TEXT)
    assert_gzipped(get(sy.port, "/dis/a.txt", dict(GZ, **{"User-Agent": "Wget/1.2"})), TEXT)
    msie6 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)"
    msie6_sv1 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
    msie7 = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"
    assert_plain(get(sy.port, "/msie/a.txt", dict(GZ, **{"User-Agent": msie6})), TEXT)
    assert_gzipped(get(sy.port, "/msie/a.txt", dict(GZ, **{"User-Agent": msie6_sv1})), TEXT)
    assert_gzipped(get(sy.port, "/msie/a.txt", dict(GZ, **{"User-Agent": msie7})), TEXT)
    assert_gzipped(get(sy.port, "/a.txt", dict(GZ, **{"User-Agent": msie6})), TEXT)


def test_http_version(env):
    sy, _ = env
    r = get(sy.port, "/a.txt", GZ, version="HTTP/1.0")
    assert_plain(r, TEXT)
    r = get(sy.port, "/v10/a.txt", GZ, version="HTTP/1.0")
    assert r.header("Content-Encoding") == "gzip"
    assert r.header("Transfer-Encoding") is None  # HTTP/1.0: delimited by close
    assert gunzip(r.body) == TEXT


# ----------------------------------------------------------------- never


def test_already_encoded_untouched(env):
    sy, _ = env
    r = get(sy.port, "/p/encoded", GZ)
    assert r.header("Content-Encoding") == "br"
    assert r.body == TEXT
    assert r.header("Content-Length") == str(len(TEXT))


def test_statuses(env):
    sy, _ = env
    assert_plain(get(sy.port, "/p/partial", GZ), TEXT)     # 206
    assert_plain(get(sy.port, "/p/status500", GZ), TEXT)   # 500
    r = get(sy.port, "/p/status404", GZ)                   # 404 is compressed
    assert r.status == 404
    assert_gzipped(r, TEXT)
    r = get(sy.port, "/p/empty204", GZ)
    assert r.status == 204 and r.header("Content-Encoding") is None and r.body == b""


def test_head_has_the_heads_of_get(env):
    """nginx: HEAD gets the head a GET would get (Content-Encoding, no
    Content-Length, weak ETag), and no body."""
    sy, _ = env
    with HttpConn(sy.port) as c:
        r = c.request("HEAD", "/a.txt", GZ)
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Encoding") == "gzip"
        assert r.header("Content-Length") is None
        assert r.header("ETag").startswith('W/"')
        r = c.request("HEAD", "/p/text", GZ)
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Encoding") == "gzip"
        r = c.request("HEAD", "/a.txt")
        assert r.header("Content-Encoding") is None
        assert r.header("Content-Length") == str(len(TEXT))
        # in sync: the next response is the next request's
        assert_gzipped(c.request("GET", "/a.txt", GZ), TEXT)


def test_304_not_compressed(env):
    sy, _ = env
    etag = f'"{MTIME:x}-{len(TEXT):x}"'
    r = get(sy.port, "/a.txt", dict(GZ, **{"If-None-Match": etag}))
    assert r.status == 304
    assert r.header("Content-Encoding") is None and r.body == b""


def test_weak_etag_revalidates(env):
    """The weak ETag a compressed copy carries still gets a 304."""
    sy, _ = env
    etag = get(sy.port, "/a.txt", GZ).header("ETag")
    assert etag.startswith('W/"')
    r = get(sy.port, "/a.txt", dict(GZ, **{"If-None-Match": etag}))
    assert r.status == 304 and r.body == b""


@pytest.mark.switchyard_only  # nginx ignores Range on a response it compresses (docs/differences.md)
def test_range_request_gets_the_range_uncompressed(env):
    sy, _ = env
    r = get(sy.port, "/a.txt", dict(GZ, Range="bytes=0-99"))
    assert r.status == 206
    assert r.header("Content-Encoding") is None
    assert r.body == TEXT[:100]


def test_proxied_etag_weakened(env):
    sy, _ = env
    r = get(sy.port, "/p/etag", GZ)
    assert_gzipped(r, TEXT)
    assert r.header("ETag") == 'W/"abc123"'
    assert get(sy.port, "/p/etag").header("ETag") == '"abc123"'


def test_chunked_upstream_and_keepalive(env):
    sy, _ = env
    with HttpConn(sy.port) as c:
        for _ in range(3):
            assert_gzipped(c.request("GET", "/p/chunked", GZ), TEXT)
            assert_gzipped(c.request("GET", "/p/text", GZ), TEXT)


def test_websocket_upgrade_untouched(switchyard, raw_backend, tmp_path):
    """A 101 and the tunnel after it are never compressed."""
    def ws(c, head):
        assert b"upgrade" in head.lower()
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nContent-Type: text/html\r\n"
                  b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        data = b""
        while len(data) < 6 + 36:
            data += c.recv(100)
        c.sendall(ws_frame(1, b"echo:" + xor_mask(data[6:], data[2:6]), mask=False))

    build_tree(tmp_path)
    up = start_origin(raw_backend, {"/ws": ws})
    sy = switchyard(http_conf(fill(CONF, PORT=free_port(), PREFIX=f"{tmp_path}/", UP=up.addr)))
    s = socket.create_connection(("127.0.0.1", sy.port), timeout=5)
    s.sendall(b"GET /ws/ws HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
        buf += s.recv(4096)
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"content-encoding" not in head.lower()
    s.sendall(ws_frame(1, b"0123456789abcdefghijklmnopqrstuvwxyz"))
    want = ws_frame(1, b"echo:0123456789abcdefghijklmnopqrstuvwxyz", mask=False)
    while len(rest) < len(want) and time.monotonic() < deadline:
        b = s.recv(4096)
        if not b:
            break
        rest += b
    assert rest[:len(want)] == want  # byte for byte: no compression in the tunnel
    s.close()


# ----------------------------------------------------------------- streaming


def read_head(s, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        b = s.recv(65536)
        assert b, "closed before the head"
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


class ChunkedGunzip:
    """Incremental chunked decoding + gunzip of what has arrived."""

    def __init__(self):
        self.raw = b""
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.out = b""

    def feed(self, data):
        self.raw += data
        while True:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i].split(b";")[0], 16)
            if len(self.raw) < i + 2 + size + 2:
                return
            self.out += self.z.decompress(self.raw[i + 2:i + 2 + size])
            self.raw = self.raw[i + 2 + size + 2:]
            if size == 0:
                return


def test_server_sent_events_arrive_event_by_event(switchyard, raw_backend, tmp_path):
    go = [threading.Event() for _ in range(3)]

    def sse(c, head):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(3):
            assert go[i].wait(10)
            ev = b"data: event number %d with some text to compress\n\n" % i
            c.sendall(b"%x\r\n" % len(ev) + ev + b"\r\n")
        c.sendall(b"0\r\n\r\n")

    build_tree(tmp_path)
    up = start_origin(raw_backend, {"/events": sse})
    sy = switchyard(http_conf(fill(CONF, PORT=free_port(), PREFIX=f"{tmp_path}/", UP=up.addr)))
    s = socket.create_connection(("127.0.0.1", sy.port), timeout=5)
    s.sendall(b"GET /sse/events HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
    deadline = time.monotonic() + 10
    go[0].set()
    head, rest = read_head(s, deadline)
    assert "Content-Encoding: gzip" in head, head
    dec = ChunkedGunzip()
    dec.feed(rest)
    for i in range(3):
        want = b"data: event number %d" % i
        while want not in dec.out:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(65536)
            assert b, f"closed before event {i}"
            dec.feed(b)
        # the next event is sent only now: this one arrived on its own
        assert b"event number %d" % (i + 1) not in dec.out
        if i + 1 < 3:
            go[i + 1].set()
    s.close()


@pytest.mark.slow
def test_large_file_streams_with_bounded_memory(switchyard, tmp_path):
    """20 MiB (half-compressible) through gzip: while the client holds back,
    the worker holds a bounded amount, never the file."""
    data = os.urandom(10 * 1024 * 1024).hex().encode()  # 20 MiB of hex text
    (tmp_path / "html").mkdir()
    (tmp_path / "html/big.txt").write_bytes(data)
    port = free_port()
    sy = switchyard(http_conf(fill(
        "server { listen 127.0.0.1:@PORT@; root @PREFIX@html; gzip on; gzip_types text/plain;"
        " types { text/plain txt; } }", PORT=port, PREFIX=f"{tmp_path}/")))
    before = sy.rss_kb()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /big.txt HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n")
    deadline = time.monotonic() + 60
    head, rest = read_head(s, deadline)
    assert "Content-Encoding: gzip" in head
    dec = ChunkedGunzip()
    dec.feed(rest)
    while len(dec.out) < 1024 * 1024:
        dec.feed(s.recv(65536))
    # the client stops reading for a moment: whatever the server does now
    # (compressing, or blocked mid-file), it holds a bounded amount
    during = max(sy.rss_kb() for _ in range(20))
    assert during - before < 12 * 1024, (before, during)
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        b = s.recv(262144)
        if not b:
            break
        dec.feed(b)
        if dec.raw == b"" and dec.z.eof:
            break
    assert dec.out == data
    s.close()


# ----------------------------------------------------------------- gzip_static


def test_gzip_static_on(env):
    sy, _ = env
    r = get(sy.port, "/st/pre.txt", GZ)
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert r.body == b"GZ-VARIANT-BYTES"
    assert r.header("Content-Length") == str(len(b"GZ-VARIANT-BYTES"))
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Vary") == "Accept-Encoding"
    # the client takes no gzip: the file itself, with Vary (a .gz exists)
    r = get(sy.port, "/st/pre.txt")
    assert_plain(r, TEXT)
    assert r.header("Vary") == "Accept-Encoding"
    # no .gz: the file, no Vary (gzip is off in this location)
    r = get(sy.port, "/st/only.txt", GZ)
    assert_plain(r, TEXT)
    assert r.header("Vary") is None


def test_gzip_static_always(env):
    sy, _ = env
    for h in (GZ, None, {"Accept-Encoding": "identity"}):
        r = get(sy.port, "/st-always/pre.txt", h)
        assert r.header("Content-Encoding") == "gzip"
        assert r.body == b"GZ-VARIANT-BYTES"
    assert_plain(get(sy.port, "/st-always/only.txt", GZ), TEXT)


# ----------------------------------------------------------------- HTTP/2


def test_gzip_over_http2(switchyard, raw_backend, tmp_path):
    build_tree(tmp_path)
    up = start_origin(raw_backend, dict(ROUTES))
    port = free_port()
    body = fill("root @PREFIX@html; gzip on; gzip_types text/plain; gzip_vary on;"
                " types { text/plain txt; }"
                " location /p/ { proxy_pass http://@UP@/; }", PREFIX=f"{tmp_path}/", UP=up.addr)
    switchyard(http_conf(h2_server(port, body=body)))
    for path, plain in (("/a.txt", TEXT), ("/p/chunked", TEXT), ("/p/text", TEXT)):
        rc, version, status, head, out, err = curl_h2(
            f"http://127.0.0.1:{port}{path}", "-H", "Accept-Encoding: gzip", prior_knowledge=True)
        assert rc == 0 and version == "2" and status == 200, (rc, version, status, err)
        assert "content-encoding: gzip" in head.lower(), head
        assert "vary: accept-encoding" in head.lower(), head
        assert "content-length" not in head.lower(), head
        assert gunzip(out) == plain
    rc, version, status, head, out, err = curl_h2(f"http://127.0.0.1:{port}/a.txt",
                                                  prior_knowledge=True)
    assert status == 200 and out == TEXT and "content-encoding" not in head.lower()


def test_client_gone_mid_body_then_next_requests(switchyard, raw_backend, tmp_path):
    """A client that leaves while its compressed body is being written (a
    file, a proxied stream) costs the server nothing: it serves the next."""
    data = os.urandom(2 * 1024 * 1024).hex().encode()  # 4 MiB of text
    build_tree(tmp_path)
    (tmp_path / "html/big.txt").write_bytes(data)

    def endless(c, head):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        piece = os.urandom(8192).hex().encode()
        for _ in range(2000):
            c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")

    up = start_origin(raw_backend, dict(ROUTES, **{"/endless": endless}))
    sy = switchyard(http_conf(fill(CONF, PORT=free_port(), PREFIX=f"{tmp_path}/", UP=up.addr)))
    for target in (b"/big.txt", b"/p/endless"):
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", sy.port), timeout=10)
            s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
                      b"Accept-Encoding: gzip\r\n\r\n")
            head, rest = read_head(s, time.monotonic() + 10)
            assert "Content-Encoding: gzip" in head
            s.close()
    assert_gzipped(get(sy.port, "/a.txt", GZ), TEXT)
    r = get(sy.port, "/big.txt", GZ, timeout=30)
    assert gunzip(r.body) == data


def test_large_file_over_http2(switchyard, tmp_path):
    """HTTP/2 flow control with a compressed file: the stream's window
    refills, the filter resumes, the whole body arrives."""
    data = os.urandom(1024 * 1024).hex().encode()  # 2 MiB
    (tmp_path / "html").mkdir()
    (tmp_path / "html/big.txt").write_bytes(data)
    port = free_port()
    body = fill("root @PREFIX@html; gzip on; gzip_types text/plain; types { text/plain txt; }",
                PREFIX=f"{tmp_path}/")
    switchyard(http_conf(h2_server(port, body=body)))
    rc, version, status, head, out, err = curl_h2(
        f"http://127.0.0.1:{port}/big.txt", "-H", "Accept-Encoding: gzip", prior_knowledge=True,
        timeout=30)
    assert rc == 0 and version == "2" and status == 200, (rc, status, err)
    assert "content-encoding: gzip" in head.lower()
    assert gunzip(out) == data


def test_gzip_ratio_variable(switchyard, tmp_path):
    build_tree(tmp_path)
    port = free_port()
    sy = switchyard(http_conf(fill(
        "log_format ratio '$uri ratio=$gzip_ratio';"
        "server { listen 127.0.0.1:@PORT@; root @PREFIX@html; gzip on; gzip_types text/plain;"
        " types { text/plain txt; image/png png; } access_log logs/access.log ratio; }",
        PORT=port, PREFIX=f"{tmp_path}/")))
    r = get(port, "/a.txt", GZ)
    assert_gzipped(r, TEXT)
    m = sy.wait_access_log(r"/a.txt ratio=(\d+)\.(\d\d)\n")
    ratio = float(f"{m.group(1)}.{m.group(2)}")
    assert abs(ratio - len(TEXT) / len(r.body)) < 0.02 * ratio, (ratio, len(TEXT), len(r.body))
    assert_plain(get(port, "/pic.png", GZ), TEXT)
    sy.wait_access_log(r"/pic.png ratio=-\n")   # not compressed: not found
    get(port, "/a.txt")
    sy.wait_access_log(r"(?s)ratio=-\n.*/a.txt ratio=-\n")


def sse_origin(raw_backend, go):
    """An event stream whose event i+1 is sent only once go[i+1] is set."""
    def sse(c, head):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(len(go)):
            assert go[i].wait(10)
            ev = b"data: event number %d with some text to compress\n\n" % i
            c.sendall(b"%x\r\n" % len(ev) + ev + b"\r\n")
        c.sendall(b"0\r\n\r\n")

    return start_origin(raw_backend, {"/events": sse})


def sse_over_h2(port, ae, decode, go):
    """Read the stream over HTTP/2; each event must arrive before the next is
    released. Returns the response's Content-Encoding."""
    with H2Client(port) as c:
        sid = c.start_request("GET", "/sse/events", headers=[("accept-encoding", ae)])
        go[0].set()
        st = c.wait_headers(sid, 10)
        for i in range(len(go)):
            want = b"data: event number %d" % i
            c.wait(lambda: want in decode(bytes(st.data)), 10, f"event {i}")
            assert b"event number %d" % (i + 1) not in decode(bytes(st.data))
            if i + 1 < len(go):
                go[i + 1].set()
        c.wait(lambda: st.done, 10, "the end of the stream")
        return st.header("content-encoding")


def test_server_sent_events_over_http2(switchyard, raw_backend, tmp_path):
    go = [threading.Event() for _ in range(3)]
    up = sse_origin(raw_backend, go)
    port = free_port()
    body = fill("gzip on; gzip_types text/event-stream;"
                " location /sse/ { proxy_pass http://@UP@/; proxy_buffering off; }", UP=up.addr)
    switchyard(http_conf(h2_server(port, body=body)))

    def gunzip_partial(data):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)

    assert sse_over_h2(port, "gzip", gunzip_partial, go) == "gzip"


def test_gzip_static_after_index_and_try_files(switchyard, tmp_path):
    """gzip_static applies to the URI the index or try_files arrived at."""
    (tmp_path / "html").mkdir()
    (tmp_path / "html/index.html").write_bytes(b"<h1>index</h1>\n")
    (tmp_path / "html/index.html.gz").write_bytes(b"GZ-INDEX")
    port = free_port()
    switchyard(http_conf(fill(
        "server { listen 127.0.0.1:@PORT@; root @PREFIX@html; gzip_static on;"
        " types { text/html html; }"
        " location /t/ { try_files /index.html =404; } }", PORT=port, PREFIX=f"{tmp_path}/")))
    for path in ("/", "/t/anything"):
        r = get(port, path, GZ)
        assert r.status == 200
        assert r.header("Content-Encoding") == "gzip" and r.body == b"GZ-INDEX"
        assert r.header("Content-Type") == "text/html"
        r = get(port, path)
        assert r.header("Content-Encoding") is None and r.body == b"<h1>index</h1>\n"
