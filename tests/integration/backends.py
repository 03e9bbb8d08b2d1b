"""Real upstream servers for the integration tests (raw sockets + threads, so
the framing of every byte is under the test's control).

HttpOrigin   a keep-alive HTTP/1.1 origin with an echo route and special routes
RawBackend   an accept loop that hands each connection to a scripted handler
closed_port  a port where nothing listens (connecting is refused at once)
"""

from __future__ import annotations

import hashlib
import http
import itertools
import json
import re
import socket
import threading
import time
import urllib.parse
from functools import lru_cache

# --------------------------------------------------------------------------
# deterministic body pattern

_BLOCK = bytes((i * 7 + (i >> 8)) % 251 for i in range(65536))


def pattern_chunks(n: int, chunk: int = 65536):
    """Yield n bytes of the deterministic pattern, in pieces of <= chunk."""
    sent = 0
    while sent < n:
        k = min(chunk, n - sent, len(_BLOCK))
        off = sent % len(_BLOCK)
        piece = _BLOCK[off:off + k]
        if len(piece) < k:  # wrap around the block
            piece += _BLOCK[: k - len(piece)]
        yield piece
        sent += k


def pattern_bytes(n: int) -> bytes:
    return b"".join(pattern_chunks(n))


@lru_cache(maxsize=64)
def pattern_sha256(n: int) -> str:
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()


# --------------------------------------------------------------------------
# reading requests off a socket


class PeerClosed(Exception):
    pass


class _Reader:
    def __init__(self, sock: socket.socket, stop: threading.Event):
        self.sock = sock
        self.buf = b""
        self.stop = stop

    def fill(self) -> None:
        while True:
            if self.stop.is_set():
                raise PeerClosed("origin stopping")
            try:
                b = self.sock.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                raise PeerClosed("recv failed")
            if not b:
                raise PeerClosed("EOF")
            self.buf += b
            return

    def line(self, limit: int = 1 << 20) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out, self.buf = self.buf[: i + 1], self.buf[i + 1:]
                return out
            if len(self.buf) > limit:
                raise PeerClosed("line too long")
            self.fill()

    def exact(self, n: int, sink) -> None:
        while n > 0:
            if not self.buf:
                self.fill()
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            sink(take)
            n -= len(take)

    def head(self):
        """Returns (method, target, version, headers, raw_head)."""
        first = self.line()
        while first in (b"\r\n", b"\n"):
            first = self.line()
        raw = [first]
        headers = []
        while True:
            ln = self.line()
            raw.append(ln)
            if ln in (b"\r\n", b"\n"):
                break
            k, _, v = ln.rstrip(b"\r\n").partition(b":")
            headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        parts = first.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3:
            raise PeerClosed(f"bad request line {first!r}")
        method, target, version = (p.decode("latin-1") for p in parts)
        return method, target, version, headers, b"".join(raw)


def _hval(headers, name):
    n = name.lower()
    vals = [v for k, v in headers if k.lower() == n]
    return ",".join(vals) if vals else None


def read_request_head(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """For RawBackend handlers: read until the blank line ending a request
    head (bounded by `timeout`); returns the bytes read (may include body)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except (socket.timeout, OSError):
            break
        if not b:
            break
        data += b
    return data


# --------------------------------------------------------------------------
# the origin


class HttpOrigin:
    """Threaded HTTP/1.1 origin on 127.0.0.1:<free port>.

    Every response carries X-Origin-Conn (per-connection serial, from 1) and
    X-Origin-Port. Routes (matched on the end of the path, so `/x/bytes/10`
    works like `/bytes/10`):
      default          200 application/json echo of the request
      /status/NNN      status NNN (echo body unless 1xx/204/304)
      /bytes/N         N pattern bytes, Content-Length, streamed
      /chunked/N       N pattern bytes, chunked (close-delimited to HTTP/1.0)
      /close/N         N pattern bytes, no Content-Length, closes the connection
      /slow/MS         waits MS ms, then the echo
      /set-header?k=v  echo, plus the given response headers
      /hang            reads the request and never answers
    Request bodies (Content-Length or chunked) are always read streaming and
    hashed, never held whole.
    """

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(256)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[dict] = []
        self._serial = itertools.count(1)
        self._stop = threading.Event()
        self._socks: set[socket.socket] = set()
        self._idle: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"origin-{self.port}")

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "HttpOrigin":
        self._acceptor.start()
        return self

    def stop(self):
        self._stop.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # -- observation helpers

    def wait_requests(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            if time.monotonic() >= deadline:
                raise AssertionError(f"origin saw {len(self.requests)} requests, wanted {n}")
            time.sleep(0.01)

    def last_request(self) -> dict:
        with self.lock:
            return self.requests[-1]

    def open_connections(self) -> int:
        with self.lock:
            return len(self._socks)

    def idle_connections(self) -> int:
        with self.lock:
            return len(self._idle)

    def close_idle(self) -> int:
        """Close every kept-alive connection that is waiting for a request."""
        with self.lock:
            idle = list(self._idle)
        for s in idle:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(idle)

    # -- serving

    def _accept_loop(self):
        self.lsock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.connections += 1
                self._socks.add(s)
            serial = next(self._serial)
            t = threading.Thread(target=self._serve, args=(s, serial), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, s: socket.socket, serial: int):
        s.settimeout(0.5)
        r = _Reader(s, self._stop)
        try:
            while not self._stop.is_set():
                with self.lock:
                    self._idle.add(s)
                try:
                    if not r.buf:
                        r.fill()
                finally:
                    with self.lock:
                        self._idle.discard(s)
                method, target, version, headers, raw = r.head()
                rec = {
                    "method": method, "target": target, "version": version,
                    "headers": [list(h) for h in headers],
                    "conn_serial": serial, "raw_head": raw.decode("latin-1"),
                }
                expect = (_hval(headers, "expect") or "").lower()
                if expect == "100-continue" and version == "HTTP/1.1":
                    s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                h = hashlib.sha256()
                n = [0]

                def sink(b):
                    n[0] += len(b)
                    h.update(b)

                te = (_hval(headers, "transfer-encoding") or "").lower()
                trailers = []
                if "chunked" in te:
                    rec["body_framing"] = "chunked"
                    while True:
                        size = int(r.line().split(b";")[0].strip(), 16)
                        if size == 0:
                            break
                        r.exact(size, sink)
                        r.line()
                    while True:
                        ln = r.line()
                        if ln in (b"\r\n", b"\n"):
                            break
                        k, _, v = ln.rstrip(b"\r\n").partition(b":")
                        trailers.append([k.decode("latin-1"), v.strip().decode("latin-1")])
                elif _hval(headers, "content-length") is not None:
                    rec["body_framing"] = "length"
                    r.exact(int(_hval(headers, "content-length")), sink)
                else:
                    rec["body_framing"] = "none"
                rec["body_len"] = n[0]
                rec["body_sha256"] = h.hexdigest()
                rec["trailers"] = trailers
                with self.lock:
                    self.requests.append(rec)
                conn_hdr = (_hval(headers, "connection") or "").lower()
                if version == "HTTP/1.1":
                    keep = "close" not in conn_hdr
                else:
                    keep = "keep-alive" in conn_hdr
                if not self._respond(s, r, rec, headers, keep, serial):
                    break
                if not keep:
                    break
        except PeerClosed:
            pass
        except Exception as e:  # recorded so a test can show it
            self.errors.append(repr(e))
        finally:
            with self.lock:
                self._socks.discard(s)
                self._idle.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _head(self, status: int, headers: list, serial: int, keep: bool) -> bytes:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        hs = list(headers) + [("X-Origin-Conn", str(serial)), ("X-Origin-Port", str(self.port))]
        if not keep:
            hs.append(("Connection", "close"))
        return (f"HTTP/1.1 {status} {phrase}\r\n" +
                "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n").encode("latin-1")

    def _respond(self, s, r, rec, headers, keep, serial) -> bool:
        """Write the response; return False when the connection must close."""
        path, _, query = rec["target"].partition("?")
        head_only = rec["method"] == "HEAD"
        echo = json.dumps({k: rec[k] for k in (
            "method", "target", "version", "headers", "body_len", "body_sha256",
            "conn_serial")}).encode()
        json_hdrs = [("Content-Type", "application/json")]

        m = re.search(r"/(status|bytes|chunked|close|slow)/(\d+)$", path)
        route = m.group(1) if m else None
        arg = int(m.group(2)) if m else 0

        if path.endswith("/hang"):
            # never answer; hold the connection until the peer or the test goes
            while not self._stop.is_set():
                try:
                    if not s.recv(65536):
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            return False

        if route == "slow":
            self._stop.wait(arg / 1000.0)
            route = None

        extra = []
        if path.endswith("/set-header"):
            extra = urllib.parse.parse_qsl(query, keep_blank_values=True)

        if route == "status":
            status = arg
            if status in (204, 304) or status < 200:
                s.sendall(self._head(status, extra, serial, keep))
                return True
            s.sendall(self._head(status, json_hdrs + extra +
                                 [("Content-Length", str(len(echo)))], serial, keep)
                      + (b"" if head_only else echo))
            return True

        if route == "bytes":
            s.sendall(self._head(200, [("Content-Type", "application/octet-stream"),
                                       ("Content-Length", str(arg))] + extra, serial, keep))
            if not head_only:
                for c in pattern_chunks(arg):
                    s.sendall(c)
            return True

        if route == "chunked":
            if rec["version"] != "HTTP/1.1":
                route, keep = "close", False
            else:
                s.sendall(self._head(200, [("Content-Type", "application/octet-stream"),
                                           ("Transfer-Encoding", "chunked")] + extra,
                                     serial, keep))
                if not head_only:
                    for c in pattern_chunks(arg, 16384):
                        s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
                    s.sendall(b"0\r\n\r\n")
                return True

        if route == "close":
            s.sendall(self._head(200, [("Content-Type", "application/octet-stream")] + extra,
                                 serial, False))
            if not head_only:
                for c in pattern_chunks(arg):
                    s.sendall(c)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False

        s.sendall(self._head(200, json_hdrs + extra + [("Content-Length", str(len(echo)))],
                             serial, keep) + (b"" if head_only else echo))
        return True


# --------------------------------------------------------------------------
# scripted backend


class RawBackend:
    """Accept loop on 127.0.0.1:<free port>; each connection is passed to
    handler(conn_socket) in its own thread and closed when it returns."""

    def __init__(self, handler):
        self.handler = handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.connections = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._loop, daemon=True)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def start(self) -> "RawBackend":
        self._acceptor.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def _loop(self):
        self.lsock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                self.connections += 1
                self._socks.add(c)
            t = threading.Thread(target=self._run, args=(c,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, c):
        try:
            c.settimeout(10)
            self.handler(c)
        except Exception as e:
            self.errors.append(repr(e))
        finally:
            with self._lock:
                self._socks.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def wait_connections(self, n: int, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while self.connections < n:
            if time.monotonic() >= deadline:
                raise AssertionError(f"backend saw {self.connections} connections, wanted {n}")
            time.sleep(0.01)

    def stop(self):
        self._stop.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)


# --------------------------------------------------------------------------

_held: list[socket.socket] = []


def closed_port() -> int:
    """A 127.0.0.1 port that refuses connections: bound (so nobody else can
    take it) but never listening. Held for the life of the test process."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    _held.append(s)
    return s.getsockname()[1]


def blackhole_port() -> int:
    """A 127.0.0.1 port where connect() hangs: a listener with a backlog of 0
    whose accept queue is already full, so the kernel drops further SYNs
    (loopback-only way to exercise connect timeouts). Held for the life of
    the test process. Raises if the kernel completes a connect anyway."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    _held.extend([ls, filler])
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
    except socket.timeout:
        pass
    else:
        raise RuntimeError("blackhole_port: the kernel accepted a connection past the backlog")
    finally:
        probe.close()
    return port
