"""websocket_origins: Cross-Site WebSocket Hijacking protection.

An upgrade whose Origin is not allowed gets 403 and a warn line naming the
origin, and never reaches the upstream; allowed origins (exact, wildcard
subdomain, same-origin, null) tunnel as usual; no Origin header passes (not a
browser); `off` and inheritance work like other per-location directives.
"""
import socket

import pytest

from harness import free_port, run_switchyard_t
from ws_fixtures import upgrade_request, ws_conf

pytestmark = pytest.mark.switchyard_only  # not an nginx directive


def handshake(port: int, path: str, origin: str | None, host: str = "localhost") -> bytes:
    extra = [("Origin", origin)] if origin is not None else []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(upgrade_request(path, host=host, extra=extra))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


@pytest.fixture
def sy_ws(switchyard, ws_backend):
    def start(origins: str, server_extra: str = ""):
        be = ws_backend("ws")
        p = free_port()
        sy = switchyard(ws_conf("first", be.addr, p, loc_extra=f"websocket_origins {origins};",
                                server_extra=server_extra))
        return sy, p, be
    return start


@pytest.mark.parametrize("origin,ok", [
    ("https://app.example.com", True),
    ("HTTPS://APP.EXAMPLE.COM", True),          # case does not matter
    ("https://app.example.com:443", True),      # default port
    ("http://app.example.com", False),          # other scheme
    ("https://app.example.com:8443", False),    # other port
    ("https://evil.example", False),
    ("https://app.example.com.evil.example", False),
    ("https://a.b.example.org", True),           # wildcard, two labels
    ("https://x.example.org", True),
    ("https://example.org", False),              # the bare domain is not a subdomain
    ("https://xexample.org", False),
    ("null", False),
    ("", False),
])
def test_allowed_origins(sy_ws, origin, ok):
    sy, p, be = sy_ws("https://app.example.com https://*.example.org")
    mark = sy.log_mark()
    out = handshake(p, "/ws/o", origin)
    if ok:
        assert out.startswith(b"HTTP/1.1 101 "), out[:200]
    else:
        assert out.startswith(b"HTTP/1.1 403 "), out[:200]
        sy.wait_log(r"\[warn\].*WebSocket upgrade refused: origin \"%s\" is not allowed by "
                    r"websocket_origins.*location: \"/ws\"" % origin.replace(".", r"\."),
                    since=mark)
        assert be.find("ws_open", url="/ws/o") == []


def test_no_origin_header_passes(sy_ws):
    sy, p, be = sy_ws("https://app.example.com")
    assert handshake(p, "/ws/none", None).startswith(b"HTTP/1.1 101 ")


def test_same_origin(sy_ws):
    sy, p, be = sy_ws("same-origin")
    assert handshake(p, "/ws/s", "http://chat.test", host="chat.test").startswith(b"HTTP/1.1 101 ")
    assert handshake(p, "/ws/s", f"http://chat.test:{p}",
                     host=f"chat.test:{p}").startswith(b"HTTP/1.1 101 ")
    # another host, or https on a plain listener: refused
    assert handshake(p, "/ws/s", "http://other.test", host="chat.test").startswith(b"HTTP/1.1 403 ")
    assert handshake(p, "/ws/s", "https://chat.test", host="chat.test").startswith(b"HTTP/1.1 403 ")


def test_null_origin_only_when_listed(sy_ws):
    sy, p, be = sy_ws("null")
    assert handshake(p, "/ws/n", "null").startswith(b"HTTP/1.1 101 ")
    assert handshake(p, "/ws/n", "https://a.test").startswith(b"HTTP/1.1 403 ")


def test_off_and_inheritance(switchyard, ws_backend):
    be = ws_backend("ws")
    p = free_port()
    switchyard(f"""
events {{ }}
http {{
    access_log off;
    websocket_origins https://app.example.com;
    server {{
        listen 127.0.0.1:{p};
        location /ws/ {{ proxy_pass http://{be.addr}; }}
        location /open/ {{ websocket_origins off; proxy_pass http://{be.addr}; }}
    }}
}}
""")
    assert handshake(p, "/ws/i", "https://evil.example").startswith(b"HTTP/1.1 403 ")
    assert handshake(p, "/ws/i", "https://app.example.com").startswith(b"HTTP/1.1 101 ")
    assert handshake(p, "/open/i", "https://evil.example").startswith(b"HTTP/1.1 101 ")


@pytest.mark.parametrize("value", ["ftp://x.test", "https://", "https://x.test/path", "*.x.test",
                                   "https://x.test:123456", "https://x y"])
def test_invalid_values_are_config_errors(tmp_path, value):
    p = free_port()
    rc, out = run_switchyard_t(f"""
events {{ }}
http {{ server {{ listen 127.0.0.1:{p}; location / {{ websocket_origins "{value}"; }} }} }}
""", prefix=tmp_path)
    assert rc == 1, out
    assert "invalid origin" in out and "websocket_origins" in out, out
