"""WebSocket test support: the node `ws` backend (ws_backend.js) as the
`ws_backend` fixture, the proxy configurations taken from the seed blog post,
and raw-socket WebSocket helpers for byte-exact handshakes and frames.

The backend is a real peer (node + the `ws` package from node_modules); every
stdout line it prints is a JSON event, collected here by a reader thread so
that tests wait for events (bounded) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from harness import REPO, HttpConn, http_conf

HERE = Path(__file__).resolve().parent
BACKEND_JS = HERE / "ws_backend.js"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --------------------------------------------------------------------------
# the node backend


class WsBackend:
    """One ws_backend.js process. `mode` and `opts` become its JSON config."""

    def __init__(self, log_dir: Path, mode: str = "ws", **opts):
        self.cfg = dict(opts, mode=mode)
        self.log_dir = Path(log_dir)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.events: list[dict] = []
        self.cond = threading.Condition()
        self.killed = False
        self._reader: threading.Thread | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> "WsBackend":
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not on PATH (scripts/install-deps)")
        if not (REPO / "node_modules" / "ws").is_dir():
            pytest.skip("node_modules/ws is missing (scripts/install-deps)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        n = len(list(self.log_dir.glob("ws-backend-*.stderr")))
        self.stderr_path = self.log_dir / f"ws-backend-{n}.stderr"
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [node, str(BACKEND_JS), json.dumps(self.cfg)], cwd=str(HERE),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err)
        self._reader = threading.Thread(target=self._read_events, daemon=True,
                                        name=f"ws-backend-{self.proc.pid}")
        self._reader.start()
        ev = self.wait_event("listening", timeout=timeout)
        self.port = ev["port"]
        return self

    def _read_events(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "garbage", "line": line.decode("utf-8", "replace")}
            ev["t"] = time.monotonic()
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"ev": "exit", "t": time.monotonic()})
            self.cond.notify_all()

    # -- events

    @staticmethod
    def _match(ev: dict, kind: str | None, fields: dict) -> bool:
        if kind is not None and ev.get("ev") != kind:
            return False
        return all(ev.get(k) == v for k, v in fields.items())

    def find(self, kind: str | None = None, **fields) -> list[dict]:
        with self.cond:
            return [e for e in self.events if self._match(e, kind, fields)]

    def wait_event(self, kind: str | None = None, timeout: float = 5.0, pred=None,
                   **fields) -> dict:
        """The first event of type `kind` whose fields equal `fields` (and for
        which pred(ev) is true); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if self._match(e, kind, fields) and (pred is None or pred(e)):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(json.dumps(e) for e in self.events[-20:])
                    raise AssertionError(
                        f"ws backend: no {kind} event {fields or ''} within {timeout}s; "
                        f"last events:\n{tail}\n--- stderr:\n{self.stderr()[-2000:]}")
                self.cond.wait(min(left, 0.5))

    def requests(self) -> list[dict]:
        """Every request head the backend parsed (ordinary and upgrade)."""
        return self.find("request")

    def seen(self) -> list[dict]:
        """GET /_seen directly from the backend (not through the proxy)."""
        with urllib.request.urlopen(f"http://{self.addr}/_seen", timeout=5) as r:
            return json.loads(r.read())

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://{self.addr}/_stats", timeout=5) as r:
            return json.loads(r.read())

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    # -- lifecycle

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 5.0):
        """Kill this backend (by its PID) and wait for it to be gone."""
        self.killed = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=timeout)

    def stop(self) -> list[str]:
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        elif not self.killed:
            problems.append(f"ws backend exited by itself with {self.proc.returncode}:\n"
                            f"{self.stderr()[-2000:]}")
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._err.close()
        if "Error" in self.stderr() and not self.killed:
            problems.append(f"ws backend stderr:\n{self.stderr()[-2000:]}")
        return problems


@pytest.fixture
def ws_backend(tmp_path):
    """Factory: ws_backend(mode="ws", **config) -> a started WsBackend (see
    ws_backend.js for the config keys); stopped (by PID) at teardown."""
    started: list[WsBackend] = []

    def make(mode: str = "ws", **opts) -> WsBackend:
        b = WsBackend(tmp_path / "ws-backend", mode, **opts)
        started.append(b)
        return b.start()

    yield make
    problems = []
    for b in started:
        problems += b.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# configurations from the seed (../shared/seed/nginx-websocket-proxy-blog-post.md)

# 1. "the configuration that produced the error": no Upgrade/Connection lines.
SEED_FIRST = """\
location /ws {
    proxy_set_header  Host $host;
    proxy_set_header  X-Real-IP  $remote_addr;
    proxy_set_header  X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header  X-Forwarded-Proto   $scheme;
    proxy_pass        http://127.0.0.1:9000/ws;
}"""

# 2. "the configuration that works": the three magic lines.
SEED_SECOND = """\
location /ws {
    proxy_set_header  Host $host;
    proxy_set_header  X-Real-IP  $remote_addr;
    proxy_set_header  X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header  X-Forwarded-Proto   $scheme;
    proxy_pass        http://127.0.0.1:9000/ws;

    # 关键配置 start
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
    # 关键配置 end
}"""

# 3. nginx's documented idiom: a Connection map and a keep-alive upstream.
MAP_HTTP = """\
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
upstream ws_upstream {
    server 127.0.0.1:9000;
    keepalive 4;
}"""

MAP_LOCATION = """\
location /ws {
    proxy_set_header  Host $host;
    proxy_set_header  X-Real-IP  $remote_addr;
    proxy_set_header  X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header  X-Forwarded-Proto   $scheme;
    proxy_pass        http://ws_upstream/ws;

    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
}"""

KINDS = ("first", "second", "map")


def ws_location(kind: str, backend_addr: str, extra: str = "") -> str:
    """The seed's `location /ws` for `kind` pointed at `backend_addr`, with
    `extra` directives added at the end of the location."""
    text = {"first": SEED_FIRST, "second": SEED_SECOND, "map": MAP_LOCATION}[kind]
    text = text.replace("127.0.0.1:9000", backend_addr)
    if extra:
        text = text[: text.rstrip().rfind("}")] + f"    {extra}\n}}"
    return text


def ws_conf(kind: str, backend_addr: str, port: int, *, loc_extra: str = "",
            server_extra: str = "", http_extra: str = "", extra_main: str = "") -> str:
    """A complete config: the seed location (kind "first", "second" or
    "map") in a server on 127.0.0.1:port, plus `location /second { return
    200 "routed"; }` for requests that must not reach the WebSocket backend."""
    http_part = http_extra
    if kind == "map":
        http_part = MAP_HTTP.replace("127.0.0.1:9000", backend_addr) + "\n" + http_extra
    body = (f"server {{\n    listen 127.0.0.1:{port};\n"
            f"    location /second {{ return 200 \"routed\"; }}\n"
            f"{ws_location(kind, backend_addr, loc_extra)}\n{server_extra}\n}}")
    return http_conf(body, extra_http=http_part, extra_main=extra_main)


# --------------------------------------------------------------------------
# raw WebSocket over sockets


def ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def upgrade_request(path: str = "/ws", key: str | None = None, host: str = "localhost",
                    method: str = "GET", version: str = "13", extra=(), drop=()) -> bytes:
    """A WebSocket handshake request head. `extra` adds (name, value) pairs;
    `drop` removes the default headers with these (lower-case) names."""
    hs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
          ("Sec-WebSocket-Key", key if key is not None else ws_key()),
          ("Sec-WebSocket-Version", version)]
    hs = [(k, v) for k, v in hs if k.lower() not in drop] + list(extra)
    return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs)
            + "\r\n").encode("latin-1")


OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True) -> bytes:
    """One WebSocket frame (client frames are masked)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + xor_mask(payload, key)


def xor_mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawWs(HttpConn):
    """A client-side WebSocket on a plain socket: byte-exact handshake, then
    frames. The socket plumbing (connect, `buf`, bounded `_fill`) is HttpConn's."""

    def __init__(self, port: int, timeout: float = 5.0):
        super().__init__(port, timeout=timeout)

    def read_head(self, timeout: float | None = None):
        """Read a response head: (status, [(name, value)], raw bytes)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionError(f"EOF before a response head: {self.buf[:300]!r}")
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise ValueError(f"bad status line {lines[0]!r}")
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        return int(m.group(1)), headers, raw + b"\r\n\r\n"

    def read_body(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionError("EOF inside a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def handshake(self, path: str = "/ws", **kw):
        key = kw.pop("key", None) or ws_key()
        self.send(upgrade_request(path, key=key, **kw))
        status, headers, raw = self.read_head()
        return key, status, headers, raw

    def read_frame(self, timeout: float | None = None):
        """(fin, opcode, payload) of the next frame; None at EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n = b1 & 0x7F
                off = 2
                if n == 126 and len(self.buf) >= 4:
                    n = struct.unpack("!H", self.buf[2:4])[0]
                    off = 4
                elif n == 127 and len(self.buf) >= 10:
                    n = struct.unpack("!Q", self.buf[2:10])[0]
                    off = 10
                elif n >= 126:
                    n = -1
                masked = b1 & 0x80
                if n >= 0:
                    key = b""
                    if masked:
                        key = self.buf[off:off + 4]
                        off += 4
                    if len(self.buf) >= off + n:
                        payload = self.buf[off:off + n]
                        self.buf = self.buf[off + n:]
                        if masked:
                            payload = xor_mask(payload, key)
                        return bool(b0 & 0x80), b0 & 0x0F, payload
            if not self._fill(deadline):
                return None

    def wait_eof(self, timeout: float) -> bool:
        """Read (and keep) bytes until EOF; True if EOF came within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except socket.timeout:
            return False
        except OSError:
            return True


def header(headers, name: str):
    n = name.lower()
    for k, v in headers:
        if k.lower() == n:
            return v
    return None


def has_token(value: str | None, token: str) -> bool:
    return value is not None and token.lower() in [t.strip().lower() for t in value.split(",")]


# --------------------------------------------------------------------------
# websockets (the Python client library, Debian's 10.4)


def run(coro, timeout: float = 60.0):
    """asyncio.run with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(port: int, path: str = "/ws", **kw):
    """websockets.connect to the proxy with test-friendly defaults: no
    client keep-alive pings, no compression, messages up to 64 MiB."""
    import websockets
    opts = dict(ping_interval=None, compression=None, max_size=64 << 20,
                open_timeout=5, close_timeout=3)
    opts.update(kw)
    return websockets.connect(f"ws://127.0.0.1:{port}{path}", **opts)
