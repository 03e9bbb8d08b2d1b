"""Brotli response compression (issue 14 item 1, beyond nginx): the
directives of the ngx_brotli modules (brotli, brotli_types,
brotli_comp_level, brotli_window, brotli_min_length, brotli_static) and the
choice between br and gzip by the client's Accept-Encoding q-values
(RFC 9110 12.5.3): the coding with the highest q wins, "*" stands for the
codings not listed, q=0 refuses, Brotli wins a tie. Debian's nginx has no
ngx_brotli, so every test here is switchyard_only. Decoding: python3-brotli.
"""

import os
import zlib

import pytest

brotli = pytest.importorskip("brotli", reason="python3-brotli (scripts/install-deps)")

from h2_support import curl_h2, h2_server
from harness import HttpConn, fill, free_port, http_conf, request
from test_gzip import ROUTES, TEXT, VARIED, start_origin

pytestmark = pytest.mark.switchyard_only

MTIME = 1445412480

CONF = r"""
types { text/html html; text/plain txt; image/png png; application/json json; }
default_type application/octet-stream;
server {
    listen 127.0.0.1:@PORT@;
    root @PREFIX@html;
    gzip on; gzip_types text/plain; gzip_vary on;
    brotli on; brotli_types text/plain application/json;

    location / { }
    location /bronly/ { alias @PREFIX@html/; gzip off; }
    location /q0/ { alias @PREFIX@html/; brotli_comp_level 0; }
    location /q11/ { alias @PREFIX@html/; brotli_comp_level 11; brotli_window 16m; }
    location /min/ { alias @PREFIX@html/; brotli_min_length 1m; gzip off; }
    location /p/ { proxy_pass http://@UP@/; }
    location /st/ { alias @PREFIX@html/; gzip off; brotli off; gzip_static on; brotli_static on; }
    location /st-always/ { alias @PREFIX@html/; brotli off; brotli_static always; }
    location /buffers/ { alias @PREFIX@html/; brotli_buffers 32 4k; }
}
"""


def build_tree(prefix):
    files = {
        "html/a.txt": TEXT,
        "html/v.txt": VARIED,
        "html/data.json": TEXT,
        "html/pic.png": TEXT,
        "html/pre.txt": TEXT,
        "html/pre.txt.gz": b"GZ-VARIANT",
        "html/pre.txt.br": b"BR-VARIANT",
        "html/gzonly.txt": TEXT,
        "html/gzonly.txt.gz": b"GZ-ONLY",
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
    return switchyard(http_conf(fill(CONF, PORT=free_port(), PREFIX=f"{tmp_path}/",
                                     UP=up.addr)))


def get(port, target, ae=None, **kw):
    return request(port, "GET", target, headers={"Accept-Encoding": ae} if ae else None, **kw)


def decoded(r) -> bytes:
    enc = r.header("Content-Encoding")
    if enc == "br":
        return brotli.decompress(r.body)
    if enc == "gzip":
        return zlib.decompress(r.body, 16 + zlib.MAX_WBITS)
    assert enc is None, enc
    return r.body


@pytest.mark.parametrize("ae,coding", [
    ("br", "br"),
    ("gzip, deflate, br", "br"),            # a tie: Brotli
    ("br;q=1, gzip;q=0.5", "br"),
    ("br;q=0.5, gzip;q=1", "gzip"),
    ("br;q=0, gzip;q=0.5", "gzip"),
    ("br;q=0", None),
    ("gzip;q=0, br;q=0", None),
    ("identity", None),
    ("*", "br"),                            # "*": every coding, Brotli first
    ("*;q=0.3, gzip", "gzip"),
    ("*;q=0", None),
    ("gzip;q=0.2, *;q=0.5", "br"),          # br by "*"
    ("BR;Q=0.9, gzip;q=0.8", "br"),
    ("br;q=2", None),                       # malformed q: refused
    ("deflate", None),
])
def test_negotiation_q_values(env, ae, coding):
    r = get(env.port, "/a.txt", ae)
    assert r.status == 200
    assert r.header("Content-Encoding") == coding, (ae, r)
    assert decoded(r) == TEXT
    assert r.header("Vary") == "Accept-Encoding"


def test_brotli_headers_and_body(env):
    r = get(env.port, "/a.txt", "br")
    assert r.header("Content-Encoding") == "br"
    assert r.header("Content-Length") is None
    assert r.header("Accept-Ranges") is None
    assert r.header("ETag") == f'W/"{MTIME:x}-{len(TEXT):x}"'
    assert r.header("Transfer-Encoding") == "chunked"
    assert len(r.body) < len(TEXT)


def test_types_and_min_length(env):
    assert get(env.port, "/data.json", "br").header("Content-Encoding") == "br"
    # not in brotli_types: nor in gzip_types
    assert get(env.port, "/pic.png", "br, gzip").header("Content-Encoding") is None
    # application/json is in brotli_types only: a gzip-only client gets it plain
    assert get(env.port, "/data.json", "gzip").header("Content-Encoding") is None
    r = get(env.port, "/min/a.txt", "br")
    assert r.header("Content-Encoding") is None and r.body == TEXT


def test_comp_levels(env):
    r0 = get(env.port, "/q0/v.txt", "br")
    r11 = get(env.port, "/q11/v.txt", "br")
    assert decoded(r0) == VARIED and decoded(r11) == VARIED
    assert len(r11.body) < len(r0.body)
    r = get(env.port, "/buffers/a.txt", "br")
    assert decoded(r) == TEXT


def test_proxied_and_via(env):
    """Brotli has none of gzip's request checks (ngx_brotli): a request with
    Via is compressed with br, while gzip_proxied off refuses gzip."""
    for path in ("/p/text", "/p/chunked"):
        r = get(env.port, path, "br")
        assert r.header("Content-Encoding") == "br" and decoded(r) == TEXT
    r = request(env.port, "GET", "/p/text", headers={"Accept-Encoding": "br, gzip", "Via": "1.1 x"})
    assert r.header("Content-Encoding") == "br"
    r = request(env.port, "GET", "/p/text", headers={"Accept-Encoding": "gzip;q=1, br;q=0.1",
                                                     "Via": "1.1 x"})
    assert r.header("Content-Encoding") == "br"  # gzip refused by gzip_proxied: br is next
    r = get(env.port, "/p/encoded", "br")
    assert r.header("Content-Encoding") == "br" and r.body == TEXT  # the upstream's own


def test_head_and_keepalive(env):
    with HttpConn(env.port) as c:
        r = c.request("HEAD", "/a.txt", {"Accept-Encoding": "br"})
        assert r.header("Content-Encoding") == "br" and r.body == b""
        for _ in range(2):
            r = c.request("GET", "/a.txt", {"Accept-Encoding": "br"})
            assert decoded(r) == TEXT
            r = c.request("GET", "/p/chunked", {"Accept-Encoding": "gzip"})
            assert r.header("Content-Encoding") == "gzip" and decoded(r) == TEXT


def test_brotli_static(env):
    r = get(env.port, "/st/pre.txt", "gzip, br")
    assert r.header("Content-Encoding") == "br" and r.body == b"BR-VARIANT"
    assert r.header("Content-Length") == "10"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Vary") == "Accept-Encoding"
    r = get(env.port, "/st/pre.txt", "gzip;q=1, br;q=0.5")
    assert r.header("Content-Encoding") == "gzip" and r.body == b"GZ-VARIANT"
    r = get(env.port, "/st/pre.txt", "gzip")
    assert r.header("Content-Encoding") == "gzip" and r.body == b"GZ-VARIANT"
    r = get(env.port, "/st/gzonly.txt", "br, gzip")  # no .br: the .gz
    assert r.header("Content-Encoding") == "gzip" and r.body == b"GZ-ONLY"
    r = get(env.port, "/st/pre.txt", "identity")
    assert r.header("Content-Encoding") is None and r.body == TEXT
    assert r.header("Vary") == "Accept-Encoding"
    r = get(env.port, "/st-always/pre.txt")
    assert r.header("Content-Encoding") == "br" and r.body == b"BR-VARIANT"


def test_brotli_over_http2(switchyard, raw_backend, tmp_path):
    build_tree(tmp_path)
    up = start_origin(raw_backend, dict(ROUTES))
    port = free_port()
    body = fill("root @PREFIX@html; brotli on; brotli_types text/plain; gzip on;"
                " gzip_types text/plain; types { text/plain txt; }"
                " location /p/ { proxy_pass http://@UP@/; }", PREFIX=f"{tmp_path}/", UP=up.addr)
    switchyard(http_conf(h2_server(port, body=body)))
    for path in ("/a.txt", "/p/chunked", "/p/text"):
        for ae, coding in (("br, gzip", "br"), ("gzip", "gzip")):
            rc, version, status, head, out, err = curl_h2(
                f"http://127.0.0.1:{port}{path}", "-H", f"Accept-Encoding: {ae}",
                prior_knowledge=True)
            assert rc == 0 and version == "2" and status == 200, (rc, status, err)
            assert f"content-encoding: {coding}" in head.lower(), head
            plain = brotli.decompress(out) if coding == "br" else \
                zlib.decompress(out, 16 + zlib.MAX_WBITS)
            assert plain == TEXT


def test_brotli_ratio_variable(switchyard, tmp_path):
    build_tree(tmp_path)
    port = free_port()
    sy = switchyard(http_conf(fill(
        "log_format ratio '$uri br=$brotli_ratio gz=$gzip_ratio';"
        "server { listen 127.0.0.1:@PORT@; root @PREFIX@html; brotli on; brotli_types text/plain;"
        " gzip on; gzip_types text/plain;"
        " types { text/plain txt; } access_log logs/access.log ratio; }",
        PORT=port, PREFIX=f"{tmp_path}/")))
    r = get(port, "/a.txt", "br")
    assert decoded(r) == TEXT
    m = sy.wait_access_log(r"/a.txt br=(\d+\.\d\d) gz=-\n")
    assert abs(float(m.group(1)) - len(TEXT) / len(r.body)) < 0.02 * float(m.group(1))
    r = get(port, "/v.txt", "gzip")
    sy.wait_access_log(r"/v.txt br=- gz=\d+\.\d\d\n")


def test_server_sent_events_brotli(switchyard, raw_backend, tmp_path):
    """Brotli flushes what the upstream flushed too: event by event, over
    HTTP/1.1 and HTTP/2."""
    import socket
    import threading
    import time

    from test_gzip import read_head, sse_origin, sse_over_h2

    def br_partial(data):
        return brotli.Decompressor().process(data)

    go = [threading.Event() for _ in range(3)]
    up = sse_origin(raw_backend, go)
    port = free_port()
    body = fill("brotli on; brotli_types text/event-stream;"
                " location /sse/ { proxy_pass http://@UP@/; }", UP=up.addr)
    switchyard(http_conf(h2_server(port, body=body)))
    assert sse_over_h2(port, "br", br_partial, go) == "br"

    go2 = [threading.Event() for _ in range(3)]
    up2 = sse_origin(raw_backend, go2)
    port2 = free_port()
    switchyard(http_conf(fill(
        "server { listen 127.0.0.1:@P@; brotli on; brotli_types text/event-stream;"
        " location /sse/ { proxy_pass http://@UP@/; } }", P=port2, UP=up2.addr)))
    s = socket.create_connection(("127.0.0.1", port2), timeout=5)
    s.sendall(b"GET /sse/events HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: br\r\n\r\n")
    deadline = time.monotonic() + 10
    go2[0].set()
    head, raw = read_head(s, deadline)
    assert "Content-Encoding: br" in head, head

    def body_so_far(raw):
        out, rest = b"", raw
        while True:
            i = rest.find(b"\r\n")
            if i < 0:
                return out
            size = int(rest[:i], 16)
            if len(rest) < i + 2 + size + 2:
                return out
            out += rest[i + 2:i + 2 + size]
            rest = rest[i + 2 + size + 2:]

    for i in range(3):
        want = b"data: event number %d" % i
        while want not in br_partial(body_so_far(raw)):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(65536)
            assert b, f"closed before event {i}"
            raw += b
        assert b"event number %d" % (i + 1) not in br_partial(body_so_far(raw))
        if i + 1 < 3:
            go2[i + 1].set()
    s.close()
