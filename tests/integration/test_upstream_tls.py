"""HTTPS upstreams: `proxy_pass https://...` with nginx's proxy_ssl_* directives.

The origin is the usual HttpOrigin (backends.py) with each accepted socket
wrapped in Python's `ssl` server side, certificates from tls_pki.py (a.test
signed by the test root CA). It records per connection the SNI name the
client sent (sni_callback) and whether the session was resumed.

Covered: GET and POST through `proxy_pass https://127.0.0.1:PORT`;
proxy_ssl_verify with the right CA (200), with a CA that did not sign the
certificate and with a name the certificate does not match (502 plus
nginx's "... while SSL handshaking to upstream" error line, and
proxy_next_upstream `error` moving on to the next server); SNI off by
default, on with proxy_ssl_server_name (proxy_ssl_name, or $proxy_host
without its port); session reuse (on by default, off with
proxy_ssl_session_reuse off); keep-alive to an https upstream group reusing
one TLS connection; `-t` errors for proxy_ssl_verify without a CA and for
an unreadable CA file; and a WebSocket relayed to a wss:// upstream (the
node `ws` backend in TLS mode).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading

import pytest

from backends import HttpOrigin
from harness import IS_NGINX, HttpConn, free_port, http_conf
from tls_pki import Pki
from ws_fixtures import run

NGINX_TLS = "proxy_ssl_protocols TLSv1.2 TLSv1.3;\n" if IS_NGINX else ""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    """A second, unrelated root CA (the "wrong CA")."""
    return Pki(tmp_path_factory.mktemp("pki2"))


class TlsOrigin(HttpOrigin):
    """HttpOrigin over TLS. self.tls holds one record per handshake:
    {"sni": name or None, "reused": bool, "version": "TLSv1.3"}."""

    def __init__(self, cert, key, versions=None):
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        if versions:
            self.ctx.minimum_version, self.ctx.maximum_version = versions
        self.tls: list[dict] = []
        self._sni = threading.local()

        def on_sni(sobj, name, ctx):
            self._sni.name = name
            return None

        self.ctx.sni_callback = on_sni

    def _serve(self, s, serial):
        s.settimeout(5)
        self._sni.name = None
        try:
            ss = self.ctx.wrap_socket(s, server_side=True)
        except (OSError, ssl.SSLError) as e:
            with self.lock:
                self.tls.append({"error": repr(e)})
                self._socks.discard(s)
            s.close()
            return
        with self.lock:
            self.tls.append({"sni": self._sni.name, "reused": ss.session_reused,
                             "version": ss.version()})
            self._socks.discard(s)
            self._socks.add(ss)
        super()._serve(ss, serial)

    def handshakes(self) -> list[dict]:
        with self.lock:
            return list(self.tls)


@pytest.fixture
def tls_origin(pki):
    started = []

    def make(name="a.test", versions=None):
        cert, key = pki.cert(name)
        o = TlsOrigin(cert, key, versions).start()
        started.append(o)
        return o

    yield make
    for o in started:
        o.stop()


def conf(port: int, loc: str, extra_http: str = "") -> str:
    return http_conf(f"server {{\n    listen 127.0.0.1:{port};\n{loc}\n}}",
                     extra_http=extra_http)


def test_get_and_post(switchyard, tls_origin):
    o = tls_origin()
    p = free_port()
    switchyard(conf(p, f"location / {{ {NGINX_TLS} proxy_pass https://{o.addr}; }}"))
    with HttpConn(p) as c:
        r = c.request("GET", "/hello?x=1")
        assert r.status == 200, r
        assert r.json()["target"] == "/hello?x=1"
        body = b"x" * 100000
        r = c.request("POST", "/post", headers=[("Content-Length", str(len(body)))],
                      body=body)
        assert r.status == 200, r
        assert r.json()["body_len"] == len(body)
    hs = o.handshakes()
    assert hs and all("error" not in h for h in hs), hs
    # nginx's default: no SNI (proxy_ssl_server_name off)
    assert all(h["sni"] is None for h in hs), hs


def test_verify_right_ca(switchyard, tls_origin, pki):
    o = tls_origin()
    p = free_port()
    switchyard(conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://{o.addr};
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {pki.ca};
        proxy_ssl_name a.test;
    }}"""))
    with HttpConn(p) as c:
        assert c.request("GET", "/").status == 200


def test_verify_wrong_ca(switchyard, tls_origin, other_pki):
    o = tls_origin()
    p = free_port()
    sy = switchyard(conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://{o.addr};
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {other_pki.ca};
        proxy_ssl_name a.test;
    }}"""))
    with HttpConn(p) as c:
        assert c.request("GET", "/").status == 502
    sy.wait_log(r"\[error\].*upstream SSL certificate verify error: \(\d+:[^)]+\) while SSL "
                r"handshaking to upstream, client: 127\.0\.0\.1, .*upstream: \"https://"
                + o.addr.replace(".", r"\.") + "/\"")
    assert not o.requests


def test_verify_name_mismatch(switchyard, tls_origin, pki):
    o = tls_origin()
    p = free_port()
    sy = switchyard(conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://{o.addr};
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {pki.ca};
        proxy_ssl_name b.test;
    }}"""))
    with HttpConn(p) as c:
        assert c.request("GET", "/").status == 502
    sy.wait_log(r'upstream SSL certificate does not match "b\.test" while SSL handshaking '
                r'to upstream')


def test_handshake_failure_is_next_upstream_error(switchyard, tls_origin, raw_backend):
    """A plain-HTTP server behind https:// (it answers the ClientHello with a
    400 and closes): the handshake fails (nginx's SSL_do_handshake() error
    line), proxy_next_upstream error moves on to the next server."""
    def plain(s):
        s.recv(65536)
        s.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    origin = raw_backend(plain)
    good = tls_origin()
    p = free_port()
    sy = switchyard(conf(p, f"location / {{ {NGINX_TLS} proxy_pass https://pool; }}",
                         extra_http=f"upstream pool {{ server {origin.addr}; "
                                    f"server {good.addr}; }}"))
    with HttpConn(p) as c:
        for _ in range(4):
            r = c.request("GET", "/")
            assert r.status == 200, r
            assert r.header("X-Origin-Port") == str(good.port)
    sy.wait_log(r"SSL_do_handshake\(\) failed \(SSL: error:[0-9A-F]+:SSL routines:"
                r"[^)]*\) while SSL handshaking to upstream")


def test_sni(switchyard, tls_origin):
    o = tls_origin()
    p = free_port()
    switchyard(conf(p, f"""
    location /named {{ {NGINX_TLS}
        proxy_pass https://{o.addr};
        proxy_ssl_server_name on;
        proxy_ssl_name a.test;
        proxy_ssl_session_reuse off;
    }}
    location /host {{ {NGINX_TLS}
        proxy_pass https://backend.test;
        proxy_ssl_server_name on;
        proxy_ssl_session_reuse off;
    }}""", extra_http=f"upstream backend.test {{ server {o.addr}; }}"))
    with HttpConn(p) as c:
        assert c.request("GET", "/named").status == 200
    with HttpConn(p) as c:
        assert c.request("GET", "/host").status == 200
    assert [h["sni"] for h in o.handshakes()] == ["a.test", "backend.test"]


def test_sni_not_sent_for_ip(switchyard, tls_origin):
    o = tls_origin()
    p = free_port()
    switchyard(conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://{o.addr};
        proxy_ssl_server_name on;
    }}"""))
    with HttpConn(p) as c:
        assert c.request("GET", "/").status == 200
    assert o.handshakes()[0]["sni"] is None


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_session_reuse(switchyard, tls_origin, version):
    v = getattr(ssl.TLSVersion, version.replace(".", "_").replace("TLSv", "TLSv"))
    o = tls_origin(versions=(v, v))
    p = free_port()
    switchyard(conf(p, f"location / {{ {NGINX_TLS} proxy_pass https://{o.addr}; }}"))
    for _ in range(3):
        with HttpConn(p) as c:
            assert c.request("GET", "/").status == 200
    hs = o.handshakes()
    assert [h["reused"] for h in hs] == [False, True, True], hs
    assert all(h["version"] == version for h in hs)


def test_session_reuse_off(switchyard, tls_origin):
    o = tls_origin()
    p = free_port()
    switchyard(conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://{o.addr};
        proxy_ssl_session_reuse off;
    }}"""))
    for _ in range(3):
        with HttpConn(p) as c:
            assert c.request("GET", "/").status == 200
    assert [h["reused"] for h in o.handshakes()] == [False, False, False]


def test_keepalive_reuses_tls_connection(switchyard, tls_origin):
    o = tls_origin()
    p = free_port()
    switchyard(conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://ka;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}""", extra_http=f"upstream ka {{ server {o.addr}; keepalive 4; }}"))
    serials = set()
    for i in range(5):
        with HttpConn(p) as c:
            r = c.request("GET", f"/bytes/{1000 * (i + 1)}")
            assert r.status == 200 and len(r.body) == 1000 * (i + 1)
            serials.add(r.header("X-Origin-Conn"))
    assert serials == {"1"}
    assert len(o.handshakes()) == 1


def test_plain_and_tls_pool_apart(switchyard, tls_origin, origin):
    """One keep-alive group used with http:// and https://: a pooled TLS
    connection never serves a plain request, and the reverse."""
    o = tls_origin()
    p = free_port()
    # nginx would need two groups (the peer addresses differ anyway); the
    # group is shared here to exercise the pool's TLS check.
    switchyard(conf(p, f"""
    location /tls/ {{ {NGINX_TLS} proxy_pass https://g; proxy_http_version 1.1;
                     proxy_set_header Connection ""; }}
    location /plain/ {{ proxy_pass http://g2; proxy_http_version 1.1;
                       proxy_set_header Connection ""; }}""",
                    extra_http=f"upstream g {{ server {o.addr}; keepalive 4; }}\n"
                               f"upstream g2 {{ server {origin.addr}; keepalive 4; }}"))
    for _ in range(3):
        with HttpConn(p) as c:
            assert c.request("GET", "/tls/").status == 200
            assert c.request("GET", "/plain/").status == 200
    assert o.connections == 1 and origin.connections == 1


def test_config_errors(sy_t, tmp_path):
    rc, out = sy_t(conf(free_port(), """location / {
        proxy_pass https://127.0.0.1:1;
        proxy_ssl_verify on;
    }"""))
    assert rc != 0
    assert "no proxy_ssl_trusted_certificate for proxy_ssl_verify" in out
    rc, out = sy_t(conf(free_port(), f"""location / {{
        proxy_pass https://127.0.0.1:1;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {tmp_path}/missing.pem;
    }}"""))
    assert rc != 0
    assert "SSL_CTX_load_verify_locations(" in out and "missing.pem" in out


def test_websocket_to_wss_upstream(switchyard, ws_backend, pki):
    cert, key = pki.cert("a.test")
    be = ws_backend("ws", tls_cert=str(cert), tls_key=str(key))
    p = free_port()
    switchyard(conf(p, f"""location /ws {{ {NGINX_TLS}
        proxy_pass https://{be.addr};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate {pki.ca};
        proxy_ssl_name a.test;
        proxy_ssl_server_name on;
    }}"""))
    import websockets

    async def talk():
        async with websockets.connect(f"ws://127.0.0.1:{p}/ws", ping_interval=None,
                                      compression=None, max_size=16 << 20) as ws:
            await ws.send("hello wss")
            assert await ws.recv() == "hello wss"
            blob = bytes(range(256)) * 4096
            await ws.send(blob)
            assert await ws.recv() == blob
            await ws.send("__headers__")
            return json.loads(await ws.recv())

    rec = run(talk(), 60)
    assert {k.lower(): v for k, v in rec["headers"]}["upgrade"].lower() == "websocket"


def test_tls_origin_helper_sanity(tls_origin, pki):
    """The origin itself speaks TLS (guards the fixture, not the proxy)."""
    o = tls_origin()
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection(("127.0.0.1", o.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert o.handshakes()[0]["sni"] == "a.test"


def test_reload_with_cached_sessions_and_pooled_connections(switchyard, tls_origin):
    """Sessions cached in the old generation's runtime and a pooled TLS
    connection survive a reload safely (the pool is reused, the old runtime
    with its sessions is freed)."""
    o = tls_origin()
    p = free_port()
    text = conf(p, f"""location / {{ {NGINX_TLS}
        proxy_pass https://ka;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }}""", extra_http=f"upstream ka {{ server {o.addr}; keepalive 4; }}")
    sy = switchyard(text)
    with HttpConn(p) as c:
        assert c.request("GET", "/").status == 200
    sy.reload(text + "\n# reloaded\n")
    for _ in range(3):
        with HttpConn(p) as c:
            assert c.request("GET", "/").status == 200
    assert all("error" not in h for h in o.handshakes())
