"""auth_request / auth_request_set (ngx_http_auth_request_module): the
access phase asks an authentication service through a sub-request, the
pattern oauth2-proxy and Authelia document:

    location /app/ {
        auth_request /auth;
        auth_request_set $user $upstream_http_x_user;
        proxy_set_header X-User $user;
        proxy_pass http://app;
    }
    location = /auth {
        internal;
        proxy_pass http://auth-service;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;
    }

- 2xx allows; 401 (with the service's WWW-Authenticate headers) and 403
  pass through; anything else, an unreachable service included, is 500 with
  `auth request unexpected status: N`;
- the sub-request is a GET with the client's headers and no body; the
  client's body still reaches the application whole;
- auth_request_set reads the sub-request's $upstream_http_* / $upstream_status;
- one access-log line per client request (the sub-request logs none);
- HTTP/1.1 and HTTP/2 clients; a client that goes away while the service
  thinks costs nothing (nothing leaks: the sanitizer build checks it).

The expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

import harness
from backends import closed_port
from h2_support import H2Client, h2_server
from harness import HttpConn, free_port, http_conf, request, wait_until
from ws_fixtures import OP_TEXT, RawWs, frame, ws_location


class AuthService:
    """A small HTTP/1.1 authentication service. The client's
    `Authorization: Bearer TOKEN` decides:
      good      200, X-User: alice, X-Groups: admins
      forbid    403
      boom      500
      redirect  302
      slow      waits until released (self.release), then 200
      (none)    401 with two WWW-Authenticate headers
    Every request is recorded (method, path, headers, body length)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.waiting = threading.Event()
        svc = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                svc.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers.items()),
                                     "body_len": len(body)})
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                headers = []
                if token == "good":
                    status, headers = 200, [("X-User", "alice"), ("X-Groups", "admins")]
                elif token == "forbid":
                    status = 403
                elif token == "boom":
                    status = 500
                elif token == "redirect":
                    status, headers = 302, [("Location", "http://login.example/")]
                elif token == "slow":
                    svc.waiting.set()
                    svc.release.wait(10)
                    status, headers = 200, [("X-User", "slowpoke")]
                else:
                    status = 401
                    headers = [("WWW-Authenticate", 'Bearer realm="app"'),
                               ("WWW-Authenticate", 'Basic realm="fallback"')]
                body = b"auth service body\n"
                try:
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            do_POST = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth():
    with AuthService() as a:
        yield a


def locations(origin_addr: str, auth_addr: str, extra_app: str = "") -> str:
    return f"""
        location /app/ {{
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            auth_request_set $groups "$upstream_http_x_groups/$upstream_status";
            auth_request_set $sent $sent_http_x_groups;
            proxy_set_header X-User $user;
            proxy_set_header X-Sent $sent;
            proxy_set_header X-Groups $groups;
            proxy_pass http://{origin_addr};
            {extra_app}
        }}
        location = /auth {{
            internal;
            proxy_pass http://{auth_addr};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
    """


def conf(port: int, origin_addr: str, auth_addr: str, extra_app: str = "") -> str:
    return http_conf(f"server {{\n listen 127.0.0.1:{port};\n"
                     f"{locations(origin_addr, auth_addr, extra_app)}\n}}")


# nginx 1.23+ passes every WWW-Authenticate of the service on, 1.22 the first
CHALLENGES = (['Bearer realm="app"'] if harness.IS_NGINX else
              ['Bearer realm="app"', 'Basic realm="fallback"'])


def bearer(token: str) -> list:
    return [("Authorization", f"Bearer {token}")]


def origin_header(req: dict, name: str):
    for k, v in req["headers"]:
        if k.lower() == name.lower():
            return v
    return None


def test_allowed_request_reaches_the_app_with_the_user(switchyard, origin, auth):
    port = free_port()
    sy = switchyard(conf(port, origin.addr, auth.addr))
    r = request(port, "GET", "/app/page?x=1", headers=bearer("good") + [("X-Extra", "e")])
    assert r.status == 200
    app = origin.last_request()
    assert app["target"] == "/app/page?x=1"
    assert origin_header(app, "X-User") == "alice"
    assert origin_header(app, "X-Groups") == "admins/200"
    assert origin_header(app, "X-Sent") == "admins"
    # the sub-request: a GET to the service's /auth with the client's headers
    assert len(auth.requests) == 1
    a = auth.requests[0]
    assert a["method"] == "GET"
    assert a["path"] == "/auth"
    assert a["headers"]["X-Original-URI"] == "/app/page?x=1"
    assert a["headers"]["Authorization"] == "Bearer good"
    assert a["headers"]["X-Extra"] == "e"
    assert a["body_len"] == 0
    # one access-log line: the client's request only
    sy.wait_access_log(r'"GET /app/page\?x=1 HTTP/1\.1" 200 ')
    assert "/auth" not in sy.access_log()


def test_401_passes_through_with_the_challenges(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr))
    r = request(port, "GET", "/app/")
    assert r.status == 401
    assert r.header_all("WWW-Authenticate") == CHALLENGES
    assert b"auth service body" not in r.body
    assert origin.requests == []


def test_403_passes_through(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr))
    r = request(port, "GET", "/app/", headers=bearer("forbid"))
    assert r.status == 403
    assert not r.has_header("WWW-Authenticate")
    assert origin.requests == []


@pytest.mark.parametrize("token,code", [("boom", 500), ("redirect", 302)])
def test_other_statuses_are_500(switchyard, origin, auth, token, code):
    port = free_port()
    sy = switchyard(conf(port, origin.addr, auth.addr))
    r = request(port, "GET", "/app/", headers=bearer(token))
    assert r.status == 500
    assert not r.has_header("Location")
    sy.wait_log(rf'\[error\] .*auth request unexpected status: {code}\b.*, client: 127\.0\.0\.1')
    assert origin.requests == []


def test_unreachable_service_is_500(switchyard, origin):
    port = free_port()
    sy = switchyard(conf(port, origin.addr, f"127.0.0.1:{closed_port()}"))
    r = request(port, "GET", "/app/", headers=bearer("good"))
    assert r.status == 500
    sy.wait_log(r"auth request unexpected status: 502")


def test_request_body_goes_to_the_app_not_to_the_service(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr))
    body = bytes(range(256)) * 400
    r = request(port, "POST", "/app/upload", headers=bearer("good"), body=body)
    assert r.status == 200
    app = origin.last_request()
    assert app["method"] == "POST" and app["body_len"] == len(body)
    assert auth.requests[-1]["method"] == "GET"
    assert auth.requests[-1]["body_len"] == 0
    assert "Content-Length" not in auth.requests[-1]["headers"]


def test_keepalive_and_pipelining(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr))
    with HttpConn(port) as c:
        for token, want in (("good", 200), ("forbid", 403), ("", 401), ("good", 200)):
            assert c.request("GET", "/app/k", headers=bearer(token)).status == want
        # two requests in one write
        c.send(b"GET /app/p1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\r\n"
               b"GET /app/p2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forbid\r\n\r\n")
        assert c.read_response().status == 200
        assert c.read_response().status == 403
    assert [r["target"] for r in origin.requests] == ["/app/k", "/app/k", "/app/p1"]


def test_internal_location_is_404_from_outside(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr))
    assert request(port, "GET", "/auth", headers=bearer("good")).status == 404
    assert auth.requests == []


def test_satisfy_any_with_allow_skips_the_service(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr, "satisfy any; allow 127.0.0.1; deny all;"))
    assert request(port, "GET", "/app/").status == 200
    assert auth.requests == []


def test_error_page_401_to_a_login_location(switchyard, origin, auth):
    """oauth2-proxy's `error_page 401 = /oauth2/sign_in;`"""
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr, "error_page 401 = @login;").replace(
        "location = /auth {", 'location @login { return 302 "http://login.example/?rd=$request_uri"; }\n'
        "        location = /auth {"))
    r = request(port, "GET", "/app/secret")
    assert r.status == 302
    assert r.header("Location") == "http://login.example/?rd=/app/secret"


def test_http2_client(switchyard, origin, auth):
    port = free_port()
    switchyard(http_conf(h2_server(port, body=locations(origin.addr, auth.addr))))
    with H2Client(port) as c:
        st = c.request("GET", "/app/h2", headers=[("authorization", "Bearer good")])
        assert st.status == 200
        assert origin_header(origin.last_request(), "X-User") == "alice"
        st = c.request("GET", "/app/h2")
        assert st.status == 401
        assert st.header_all("www-authenticate") == CHALLENGES
        st = c.request("GET", "/app/h2", headers=[("authorization", "Bearer forbid")])
        assert st.status == 403
        # several streams at once, each with its own sub-request
        sids = [c.start_request("GET", f"/app/s{i}",
                                headers=[("authorization", "Bearer good" if i % 2 else "Bearer forbid")])
                for i in range(6)]
        got = [c.wait_stream(sid).status for sid in sids]
        assert got == [403, 200, 403, 200, 403, 200]


def test_client_goes_away_while_the_service_thinks(switchyard, origin, auth):
    port = free_port()
    sy = switchyard(conf(port, origin.addr, auth.addr))
    fds = sy.fd_count()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /app/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow\r\n\r\n")
    assert auth.waiting.wait(5)
    s.close()
    sy.wait_access_log(r'"GET /app/slow HTTP/1\.1" 499 ')
    auth.release.set()
    # still serving, nothing held: the upstream socket of the sub-request is gone
    assert request(port, "GET", "/app/after", headers=bearer("good")).status == 200
    if not harness.IS_NGINX:  # (nginx sometimes holds a socket longer: not what is tested)
        wait_until(lambda: sy.fd_count() <= fds, 5, "the file descriptors of the gone client")
    assert origin.requests and origin.requests[-1]["target"] == "/app/after"


def test_http2_stream_reset_while_the_service_thinks(switchyard, origin, auth):
    port = free_port()
    sy = switchyard(http_conf(h2_server(port, body=locations(origin.addr, auth.addr))))
    with H2Client(port) as c:
        sid = c.start_request("GET", "/app/slow", headers=[("authorization", "Bearer slow")])
        assert auth.waiting.wait(5)
        c.reset(sid)
        # the connection goes on
        st = c.request("GET", "/app/next", headers=[("authorization", "Bearer forbid")])
        assert st.status == 403
    auth.release.set()
    sy.wait_access_log(r'"GET /app/slow HTTP/2\.0" 499 ')
    with H2Client(port) as c:
        st = c.request("GET", "/app/after", headers=[("authorization", "Bearer good")])
        assert st.status == 200


def test_http2_connection_closed_while_the_service_thinks(switchyard, origin, auth):
    port = free_port()
    sy = switchyard(http_conf(h2_server(port, body=locations(origin.addr, auth.addr))))
    c = H2Client(port)
    c.start_request("GET", "/app/slow", headers=[("authorization", "Bearer slow")])
    assert auth.waiting.wait(5)
    c.close()
    sy.wait_access_log(r'"GET /app/slow HTTP/2\.0" 499 ')
    auth.release.set()
    with H2Client(port) as c2:
        st = c2.request("GET", "/app/after", headers=[("authorization", "Bearer good")])
        assert st.status == 200


def test_satisfy_any_with_a_denied_address(switchyard, origin, auth):
    """satisfy any: the service alone may allow; when both refuse, the
    service's 401 wins over the rule's 403."""
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr, "satisfy any; deny all;"))
    assert request(port, "GET", "/app/", headers=bearer("good")).status == 200
    r = request(port, "GET", "/app/")
    assert r.status == 401 and r.header_all("WWW-Authenticate") == CHALLENGES
    assert request(port, "GET", "/app/", headers=bearer("forbid")).status == 403


def test_refused_request_body_is_discarded_and_keepalive_goes_on(switchyard, origin, auth):
    port = free_port()
    switchyard(conf(port, origin.addr, auth.addr))
    with HttpConn(port) as c:
        r = c.request("POST", "/app/up", headers=bearer("forbid"), body=b"x" * 50000)
        assert r.status == 403
        r = c.request("POST", "/app/up", headers=bearer("good"), body=b"y" * 3000)
        assert r.status == 200
    assert origin.last_request()["body_len"] == 3000


def test_http2_request_body_after_the_sub_request(switchyard, origin, auth):
    port = free_port()
    switchyard(http_conf(h2_server(port, body=locations(origin.addr, auth.addr))))
    body = bytes(range(256)) * 300
    with H2Client(port) as c:
        st = c.request("POST", "/app/h2up", headers=[("authorization", "Bearer good")],
                       body=body)
        assert st.status == 200
    app = origin.last_request()
    assert app["method"] == "POST" and app["body_len"] == len(body)
    assert auth.requests[-1]["body_len"] == 0


def test_websocket_behind_auth_request(switchyard, ws_backend, auth):
    be = ws_backend()
    port = free_port()
    loc = ws_location("second", be.addr, extra="auth_request /auth;")
    switchyard(http_conf(f"""server {{
        listen 127.0.0.1:{port};
        {loc}
        location = /auth {{
            internal;
            proxy_pass http://{auth.addr};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
    }}"""))
    with RawWs(port) as ws:
        _, status, _, _ = ws.handshake("/ws", extra=[("Authorization", "Bearer forbid")])
        assert status == 403
    with RawWs(port) as ws:
        key, status, headers, _ = ws.handshake("/ws", extra=[("Authorization", "Bearer good")])
        assert status == 101
        ws.send(frame(OP_TEXT, b"hello"))
        fin, op, payload = ws.read_frame()
        assert op == OP_TEXT and payload == b"hello"
    # the service saw a plain GET, not an upgrade
    a = auth.requests[-1]
    assert a["method"] == "GET"
    assert "Upgrade" not in a["headers"]


def test_limit_req_in_the_auth_location(switchyard, origin, auth):
    """limit_req applies in the sub-request's location (a refusal there is an
    unexpected status for auth_request: 500); error lines name the
    sub-request as nginx does."""
    port = free_port()
    text = conf(port, origin.addr, auth.addr).replace(
        "internal;", "internal; limit_req zone=auth;")
    text = text.replace("http {", "http {\n    limit_req_zone $binary_remote_addr zone=auth:1m "
                        "rate=1r/m;", 1)
    sy = switchyard(text)
    assert request(port, "GET", "/app/1", headers=bearer("good")).status == 200
    assert request(port, "GET", "/app/2", headers=bearer("good")).status == 500
    sy.wait_log(r'\[error\] .*limiting requests, excess: .* by zone "auth", client: 127\.0\.0\.1, '
                r'server: , request: "GET /app/2 HTTP/1\.1", subrequest: "/auth", host: ')
    sy.wait_log(r"auth request unexpected status: 503")
    assert len(auth.requests) == 1
