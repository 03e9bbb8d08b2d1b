"""Upstreams on Unix-domain sockets, as nginx runs them (GitLab's
gitlab-workhorse, Discourse's unicorn, gunicorn configs):

- `server unix:/path [weight= max_fails= fail_timeout= backup down];` in an
  upstream{} block, kept-alive connections reused (`keepalive N`);
- `proxy_pass http://unix:/path:/uri;` (the URI after the path's ':') and
  `proxy_pass http://unix:/path;` (the request-target passed unchanged), with
  `Host: localhost` ($proxy_host) as nginx sends it;
- $upstream_addr `unix:/path`;
- a WebSocket upgraded through a Unix-socket upstream;
- a missing socket: 502 and nginx's `[crit] ... connect() to unix:/path
  failed (2: No such file or directory) while connecting to upstream`,
  the upstream logged as `http://unix:/path:/uri` (the URI sent upstream),
  before the client's host, as nginx orders them;
- nginx's configuration errors for a socket without or with too long a path.

Every backend listens on a real Unix socket in a short directory under /tmp
(sun_path holds 108 bytes).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import tempfile
import threading

import pytest
import websockets

from backends import HttpOrigin
from harness import fill, free_port, http_conf, request, wait_until
from ws_fixtures import OP_TEXT, RawWs, frame


class UnixOrigin(HttpOrigin):
    """HttpOrigin (echo route, per-connection serials) on a Unix socket."""

    def __init__(self, path: str):
        super().__init__()
        self.lsock.close()
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        os.chmod(path, 0o777)
        self.lsock.listen(256)
        self.path = path


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="syu", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def unix_origin(sockdir):
    o = UnixOrigin(os.path.join(sockdir, "app.sock")).start()
    yield o
    o.stop()


LOG_FORMAT = "log_format ups '$request_uri $status [$upstream_addr] [$upstream_status]';"

CONF = r"""
upstream app {
    server unix:@S@;
    keepalive 4;
}
upstream failover {
    server unix:@MISSING@ weight=2 max_fails=1 fail_timeout=5s;
    server unix:@S@ backup;
}
server {
    listen 127.0.0.1:@P@;
    access_log logs/ups.log ups;
    location /grp/ {
        proxy_pass http://app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location /uri/ { proxy_pass http://unix:@S@:/base/; }
    location /plain/ { proxy_pass http://unix:@S@; }
    location /fail/ { proxy_pass http://failover; }
    location /missing/ { proxy_pass http://unix:@MISSING@:/; }
}
"""


@pytest.fixture
def unix_proxy(switchyard, unix_origin, sockdir):
    port = free_port()
    missing = os.path.join(sockdir, "gone.sock")
    sy = switchyard(http_conf(fill(CONF, P=port, S=unix_origin.path, MISSING=missing),
                              extra_http=LOG_FORMAT))
    return sy, port, missing


def test_upstream_group_on_unix_socket_reuses_keepalive_connections(unix_proxy, unix_origin):
    sy, port, _ = unix_proxy
    for i in range(3):
        r = request(port, "GET", f"/grp/{i}")
        assert r.status == 200, r
        # one backend connection served all three requests (keepalive 4)
        assert r.header("X-Origin-Conn") == "1"
    assert unix_origin.connections == 1
    reqs = unix_origin.wait_requests(3)
    assert [q["target"] for q in reqs] == ["/grp/0", "/grp/1", "/grp/2"]
    hdrs = {k.lower(): v for k, v in reqs[0]["headers"]}
    assert hdrs["host"] == "app"


def test_upstream_addr_names_the_socket(unix_proxy, unix_origin):
    sy, port, _ = unix_proxy
    assert request(port, "GET", "/grp/addr").status == 200
    path = unix_origin.path
    assert wait_ups_line(sy, "/grp/addr") == f"/grp/addr 200 [unix:{path}] [200]"


def wait_ups_line(sy, uri: str) -> str:
    """The access-log line (format `ups`) of `uri`, waited for."""
    logp = sy.prefix / "logs" / "ups.log"

    def find():
        if not logp.exists():
            return None
        for ln in logp.read_text().splitlines():
            if ln.startswith(uri + " "):
                return ln
        return None

    return wait_until(find, 5.0, f"access-log line for {uri}")


def test_proxy_pass_unix_with_uri_replaces_location_prefix(unix_proxy, unix_origin):
    _, port, _ = unix_proxy
    r = request(port, "GET", "/uri/a/b?x=1")
    assert r.status == 200, r
    rec = unix_origin.last_request()
    assert rec["target"] == "/base/a/b?x=1"
    hdrs = {k.lower(): v for k, v in rec["headers"]}
    assert hdrs["host"] == "localhost"  # nginx's $proxy_host for http://unix:


def test_proxy_pass_unix_without_uri_passes_request_target(unix_proxy, unix_origin):
    _, port, _ = unix_proxy
    r = request(port, "GET", "/plain/%41b?q")
    assert r.status == 200, r
    rec = unix_origin.last_request()
    assert rec["target"] == "/plain/%41b?q"
    hdrs = {k.lower(): v for k, v in rec["headers"]}
    assert hdrs["host"] == "localhost"


def test_missing_socket_gives_502_and_nginx_log_line(unix_proxy):
    sy, port, missing = unix_proxy
    r = request(port, "GET", "/missing/x")
    assert r.status == 502
    sy.wait_log(r"connect\(\) to unix:")
    m = re.search(r"\[(\w+)\] .*connect\(\) to unix:(\S+) failed \(2: No such file or directory\) "
                  r"while connecting to upstream, client: 127\.0\.0\.1, server: , "
                  r"request: \"GET /missing/x HTTP/1\.1\", upstream: \"http://unix:(\S+?):/x\", "
                  r"host: \"localhost\"",
                  sy.error_log())
    assert m, sy.error_log()
    assert m.group(1) == "crit" and m.group(2) == missing and m.group(3) == missing
    assert wait_ups_line(sy, "/missing/x") == f"/missing/x 502 [unix:{missing}] [502]"


def test_server_parameters_and_backup_on_unix_sockets(unix_proxy, unix_origin):
    sy, port, missing = unix_proxy
    r = request(port, "GET", "/fail/one")
    assert r.status == 200, r
    assert unix_origin.last_request()["target"] == "/fail/one"
    assert (wait_ups_line(sy, "/fail/one")
            == f"/fail/one 200 [unix:{missing}, unix:{unix_origin.path}] [502, 200]")
    # the failed primary is out for fail_timeout: the backup alone answers
    assert request(port, "GET", "/fail/two").status == 200
    assert wait_ups_line(sy, "/fail/two") == f"/fail/two 200 [unix:{unix_origin.path}] [200]"


# -------------------------------------------------------------- WebSocket

class UnixWsServer:
    """A `websockets` echo server on a Unix socket, in its own thread."""

    def __init__(self, path: str):
        self.path = path
        self.handshakes: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _echo(self, ws, path):
        self.handshakes.append({"path": path, "host": ws.request_headers.get("Host")})
        async for msg in ws:
            await ws.send(msg)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(websockets.unix_serve(self._echo, self.path))
        self.ready.set()
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


WS_CONF = r"""
server {
    listen 127.0.0.1:@P@;
    location /ws {
        proxy_pass http://unix:@S@:/echo;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }
}
"""


def test_websocket_through_unix_socket_upstream(switchyard, sockdir):
    srv = UnixWsServer(os.path.join(sockdir, "ws.sock")).start()
    try:
        port = free_port()
        switchyard(http_conf(fill(WS_CONF, P=port, S=srv.path)))
        ws = RawWs(port)
        _, status, _, _ = ws.handshake("/ws")
        assert status == 101
        ws.send(frame(OP_TEXT, b"over a unix socket"))
        assert ws.read_frame() == (True, OP_TEXT, b"over a unix socket")
        ws.close()
        assert srv.handshakes == [{"path": "/echo", "host": "localhost"}]
    finally:
        srv.stop()


# ------------------------------------------------------------ configuration

@pytest.mark.parametrize("directive,message", [
    ("proxy_pass http://unix:;", 'no path in the unix domain socket in upstream "unix:"'),
    ("proxy_pass http://unix::/x;", 'no path in the unix domain socket in upstream "unix::/x"'),
    ("proxy_pass http://unix:/" + "a" * 120 + ";",
     'too long path in the unix domain socket in upstream "unix:/' + "a" * 120 + '"'),
])
def test_bad_unix_paths_in_proxy_pass(sy_t, directive, message):
    rc, out = sy_t(http_conf(f"server {{ listen 127.0.0.1:{free_port()}; "
                             f"location / {{ {directive} }} }}"))
    assert rc != 0
    assert message in out, out


def test_bad_unix_path_in_upstream_server(sy_t):
    rc, out = sy_t(http_conf("upstream u { server unix:; }\n"
                             f"server {{ listen 127.0.0.1:{free_port()}; "
                             "location / { proxy_pass http://u; } }"))
    assert rc != 0
    assert 'no path in the unix domain socket in upstream "unix:"' in out, out


def test_unix_upstream_passes_config_test(sy_t):
    conf = http_conf("upstream u { server unix:/run/none.sock max_fails=3 fail_timeout=30s; "
                     "server unix:/run/other.sock backup; }\n"
                     f"server {{ listen 127.0.0.1:{free_port()}; "
                     "location / { proxy_pass http://u; } "
                     "location /d { proxy_pass http://unix:/run/gitlab.socket:/api/; } }")
    rc, out = sy_t(conf)
    assert rc == 0, out
    assert "syntax is ok" in out
