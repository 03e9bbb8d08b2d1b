"""WebSocket frames are relayed whatever their MASK bit, as nginx does.

RFC 6455 §5.1 puts the masking rule on the endpoints: a server closes on an
unmasked client frame, a client on a masked server frame. The tunnel is
neither: it follows frame headers (for its pings, close frames and message
limits) and parses a header correctly with or without the 4-byte key, but
judges no frame by its MASK bit. Here a raw-socket client sends UNMASKED
frames and a raw-socket backend sends MASKED ones; both arrive byte for byte.

The relay tests run against nginx too; those of Switchyard's own
`websocket_*` directives are Switchyard-only:
- websocket_max_message_size still closes with 1009 on an unmasked message;
- the keep-alive pings (unmasked to the client, masked to the upstream) are
  still answered and swallowed when the client's pong is unmasked and the
  upstream's pong is masked.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import struct
import threading
import time

import pytest

from harness import IS_NGINX, free_port
from ws_fixtures import (GUID, OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWs,
                         close_payload, frame, header, ws_conf, xor_mask)

KIND = "second" if IS_NGINX else "first"


# --------------------------------------------------------------------------
# frames on the wire


def parse_frame(buf: bytes, off: int = 0):
    """The frame at buf[off:] as (fin, opcode, masked, payload unmasked, end
    offset), or None when it is not complete yet."""
    if len(buf) - off < 2:
        return None
    b0, b1 = buf[off], buf[off + 1]
    n, pos = b1 & 0x7F, off + 2
    if n == 126:
        if len(buf) < pos + 2:
            return None
        n, pos = struct.unpack("!H", buf[pos:pos + 2])[0], pos + 2
    elif n == 127:
        if len(buf) < pos + 8:
            return None
        n, pos = struct.unpack("!Q", buf[pos:pos + 8])[0], pos + 8
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key, pos = buf[pos:pos + 4], pos + 4
    if len(buf) < pos + n:
        return None
    payload = buf[pos:pos + n]
    if masked:
        payload = xor_mask(payload, key)
    return bool(b0 & 0x80), b0 & 0x0F, masked, payload, pos + n


def read_raw_frame(c: RawWs, timeout: float = 5.0):
    """The next frame the client receives, as parse_frame() gives it (with
    the MASK bit, which RawWs.read_frame hides)."""
    deadline = time.monotonic() + timeout
    while True:
        f = parse_frame(c.buf)
        if f is not None:
            c.buf = c.buf[f[4]:]
            return f
        if not c._fill(deadline):
            raise ConnectionError(f"EOF before a whole frame: {c.buf[:100]!r}")


# --------------------------------------------------------------------------
# the raw backend


class BackendConn:
    """One upgraded connection on the raw backend."""

    def __init__(self, sock: socket.socket, head: bytes, cond: threading.Condition):
        self.sock = sock
        self.head = head
        self.cond = cond
        self.rx = b""  # every byte received after the request head
        self.frames: list[tuple] = []  # parse_frame() of each whole frame in rx
        self.parsed = 0
        self.eof = False

    def send(self, data: bytes):
        self.sock.sendall(data)

    def wait(self, pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"raw backend: no {what} within {timeout}s; "
                                         f"received {len(self.rx)} bytes: {self.rx[-200:]!r}")
                self.cond.wait(min(left, 0.5))

    def wait_rx(self, n: int, timeout: float = 5.0) -> bytes:
        """The first n bytes received (waits for them)."""
        self.wait(lambda c: len(c.rx) >= n, timeout, f"{n} bytes")
        return self.rx[:n]

    def wait_frame(self, pred, timeout: float = 5.0):
        """The first whole frame received for which pred(frame) is true."""
        found = []

        def probe(c):
            found[:] = [f for f in c.frames if pred(f)][:1]
            return bool(found)

        self.wait(probe, timeout, "such frame")
        return found[0]


class RawBackend:
    """A WebSocket server on raw sockets: it completes the opening handshake
    (a correct Sec-WebSocket-Accept), then records every byte it receives and
    sends exactly the bytes a test gives it. With `pong` set ("masked" or
    "unmasked") it answers each ping with a pong carrying the same payload."""

    def __init__(self, pong: str | None = None):
        self.pong = pong
        self.cond = threading.Condition()
        self.conns: list[BackendConn] = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return  # closed by stop()
            t = threading.Thread(target=self._serve, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, s: socket.socket):
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(65536)
            if not b:
                s.close()
                return
            head += b
        head, rest = head.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", head)
        accept = base64.b64encode(hashlib.sha1(m.group(1) + GUID.encode()).digest())
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        c = BackendConn(s, head, self.cond)
        with self.cond:
            self.conns.append(c)
            self.cond.notify_all()
        data = rest
        while True:
            with self.cond:
                c.rx += data
                self._parse(c)
                self.cond.notify_all()
            try:
                data = s.recv(262144)
            except OSError:
                data = b""
            if not data:
                break
        with self.cond:
            c.eof = True
            self.cond.notify_all()

    def _parse(self, c: BackendConn):
        while (f := parse_frame(c.rx, c.parsed)) is not None:
            c.parsed = f[4]
            c.frames.append(f)
            if f[1] == OP_PING and self.pong:
                c.sock.sendall(frame(OP_PONG, f[3], mask=self.pong == "masked"))

    def wait_conn(self, timeout: float = 5.0) -> BackendConn:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.conns:
                left = deadline - time.monotonic()
                assert left > 0, "raw backend: no upgraded connection"
                self.cond.wait(min(left, 0.5))
            return self.conns[0]

    def stop(self):
        self.lsock.close()
        for c in self.conns:
            c.sock.close()
        for t in self.threads:
            t.join(timeout=5)


@pytest.fixture
def raw_backend():
    """Factory: raw_backend(pong=None) -> a started RawBackend, stopped at teardown."""
    started: list[RawBackend] = []

    def make(**kw) -> RawBackend:
        b = RawBackend(**kw)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


def open_tunnel(switchyard, raw_backend, path: str, kind: str = KIND, loc_extra: str = "",
                **backend_kw):
    be = raw_backend(**backend_kw)
    p = free_port()
    sy = switchyard(ws_conf(kind, be.addr, p, loc_extra=loc_extra))
    c = RawWs(p)
    key, status, headers, _ = c.handshake(path)
    assert status == 101
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    assert header(headers, "Sec-WebSocket-Accept") == accept
    return sy, c, be.wait_conn()


# --------------------------------------------------------------------------
# relaying (nginx too)


def test_unmasked_client_frames_reach_the_backend_byte_exact(switchyard, raw_backend):
    """Unmasked text, binary (7-, 16- and 64-bit lengths), ping and pong
    frames and a fragmented message with a ping between its fragments, with
    a masked frame among them: the backend receives exactly these bytes and
    the tunnel stays open."""
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/unmasked")
    with c:
        sent = [
            frame(OP_TEXT, b"hello", mask=False),
            frame(OP_BIN, bytes(range(256)) * 2, mask=False),
            frame(OP_BIN, os.urandom(70000), mask=False),
            frame(OP_PING, b"are you there", mask=False),
            frame(OP_TEXT, b"frag-1 ", fin=False, mask=False),
            frame(OP_PING, b"between fragments", mask=False),
            frame(OP_CONT, b"frag-2 ", fin=False, mask=False),
            frame(OP_CONT, b"frag-3", mask=False),
            frame(OP_TEXT, b"a masked one", mask=True),
            frame(OP_PONG, b"unsolicited", mask=False),
        ]
        for f in sent:
            c.send(f)
        want = b"".join(sent)
        assert conn.wait_rx(len(want)) == want
        # still open, and still following frames: one more after all that
        more = frame(OP_TEXT, b"still here", mask=False)
        c.send(more)
        assert conn.wait_rx(len(want) + len(more)) == want + more
        assert not conn.eof


def test_masked_backend_frames_reach_the_client_byte_exact(switchyard, raw_backend):
    """A backend that masks its frames (7-, 16- and 64-bit lengths, a ping,
    an unmasked one among them): the client receives exactly these bytes;
    then a close handshake with an unmasked client close and a masked server
    close goes through byte for byte, and nothing else follows it."""
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/masked")
    with c:
        back = [
            frame(OP_TEXT, b"masked reply", mask=True),
            frame(OP_BIN, os.urandom(300), mask=True),
            frame(OP_BIN, os.urandom(70000), mask=True),
            frame(OP_PING, b"server ping", mask=True),
            frame(OP_TEXT, b"frag", fin=False, mask=True),
            frame(OP_CONT, b"ment", mask=True),
            frame(OP_TEXT, b"plain reply", mask=False),
        ]
        want = b"".join(back)
        conn.send(want)
        assert c.read_body(len(want)) == want

        client_close = frame(OP_CLOSE, close_payload(1000, "bye"), mask=False)
        c.send(client_close)
        assert conn.wait_rx(len(client_close)) == client_close
        server_close = frame(OP_CLOSE, close_payload(1000, "bye too"), mask=True)
        conn.send(server_close)
        conn.sock.shutdown(socket.SHUT_WR)
        assert c.read_body(len(server_close)) == server_close
        assert c.wait_eof(5), "the client's connection was not closed"
        assert c.buf == b"", f"bytes after the backend's close frame: {c.buf!r}"


# --------------------------------------------------------------------------
# Switchyard's own directives on unmasked frames


@pytest.mark.switchyard_only
def test_max_message_size_closes_unmasked_message_with_1009(switchyard, raw_backend):
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/size", kind="first",
                              loc_extra="websocket_max_message_size 1k;")
    with c:
        ok = frame(OP_TEXT, b"a" * 1000, mask=False)
        c.send(ok)
        assert conn.wait_rx(len(ok)) == ok
        c.send(frame(OP_BIN, b"b" * 2000, mask=False))
        fin, op, masked, payload, _ = read_raw_frame(c)
        assert (op, masked) == (OP_CLOSE, False)
        assert payload == close_payload(1009, "message too big")
        # the upstream got Switchyard's close frame (masked), nothing of the big message
        close = conn.wait_frame(lambda f: f[1] == OP_CLOSE)
        assert close[2] and close[3] == close_payload(1009, "message too big")
        assert len(conn.frames) == 2 and conn.rx[:len(ok)] == ok
        assert len(conn.rx) == close[4]
    sy.wait_log(r"\[warn\] .*client sent a message over websocket_max_message_size \(1024 bytes\)")


@pytest.mark.switchyard_only
def test_max_message_size_counts_unmasked_fragments(switchyard, raw_backend):
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/frags", kind="first",
                              loc_extra="websocket_max_message_size 1000;")
    with c:
        first = (frame(OP_TEXT, b"x" * 400, fin=False, mask=False)
                 + frame(OP_CONT, b"y" * 400, fin=False, mask=False))
        c.send(first)
        assert conn.wait_rx(len(first)) == first  # 800 bytes so far: relayed
        c.send(frame(OP_CONT, b"z" * 400, mask=False))  # 1200 in all
        fin, op, masked, payload, _ = read_raw_frame(c)
        assert (op, masked) == (OP_CLOSE, False)
        assert payload[:2] == (1009).to_bytes(2, "big")
        close = conn.wait_frame(lambda f: f[1] == OP_CLOSE)
        assert close[2] and close[3][:2] == (1009).to_bytes(2, "big")
        assert len(conn.rx) == close[4]  # nothing of the third fragment


@pytest.mark.switchyard_only
def test_keepalive_pings_answered_by_unmasked_and_masked_pongs(switchyard, raw_backend):
    """websocket_ping_interval 1s, websocket_ping_timeout 1s: the client
    answers Switchyard's (unmasked) pings with UNMASKED pongs, the backend
    answers its (masked) pings with MASKED pongs. Switchyard sends a new ping
    only once both answers were recognised, so a third ping proves the first
    two rounds were; no pong reaches the other peer and the tunnel stays up."""
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/pings", kind="first",
                              loc_extra="websocket_ping_interval 1s; websocket_ping_timeout 1s;",
                              pong="masked")
    with c:
        pings = []
        deadline = time.monotonic() + 10
        while len(pings) < 3:
            fin, op, masked, payload, _ = read_raw_frame(c, deadline - time.monotonic())
            assert op == OP_PING, f"client got opcode {op} {payload!r}"
            assert not masked and len(payload) == 8
            pings.append(payload)
            c.send(frame(OP_PONG, payload, mask=False))
        assert len(set(pings)) == 3
        to_backend = [f for f in conn.frames if f[1] == OP_PING]
        assert len(to_backend) >= 2 and all(f[2] for f in to_backend), to_backend

        # data still flows both ways; no pong was relayed ahead of it
        c.send(frame(OP_TEXT, b"after pings", mask=False))
        conn.wait_frame(lambda f: f[1] == OP_TEXT and f[3] == b"after pings")
        assert [f for f in conn.frames if f[1] == OP_PONG] == []
        conn.send(frame(OP_TEXT, b"reply", mask=True))
        while True:
            fin, op, masked, payload, _ = read_raw_frame(c)
            if op == OP_PING:  # another keep-alive round may come first
                c.send(frame(OP_PONG, payload, mask=False))
                continue
            assert (op, masked, payload) == (OP_TEXT, True, b"reply")
            break
    assert not re.search(r"not answered|invalid WebSocket frame", sy.error_log())


@pytest.mark.switchyard_only
def test_broken_framing_still_closes_with_1002(switchyard, raw_backend):
    """Masking is not judged, framing still is: an unmasked frame with a
    reserved opcode closes both sides with 1002 (docs/differences.md)."""
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/broken", kind="first")
    with c:
        ok = frame(OP_TEXT, b"fine", mask=False)
        c.send(ok)
        assert conn.wait_rx(len(ok)) == ok
        c.send(bytes([0x83, 0x00]))  # opcode 3 is reserved
        fin, op, masked, payload, _ = read_raw_frame(c)
        assert (op, masked, payload[:2]) == (OP_CLOSE, False, (1002).to_bytes(2, "big"))
        close = conn.wait_frame(lambda f: f[1] == OP_CLOSE)
        assert close[2] and close[3][:2] == (1002).to_bytes(2, "big")
        assert len(conn.rx) == close[4]  # the broken frame was not relayed
    sy.wait_log(r"\[warn\] .*client sent an invalid WebSocket frame \(reserved opcode\)")


@pytest.mark.switchyard_only
def test_frames_before_a_broken_one_in_the_same_read_are_relayed(switchyard, raw_backend):
    """Whole frames that arrived with a broken one are not lost: the upstream
    gets them, then Switchyard's close frame at a frame boundary, and nothing
    of the broken frame."""
    sy, c, conn = open_tunnel(switchyard, raw_backend, "/ws/broken", kind="first")
    with c:
        good = frame(OP_TEXT, b"one", mask=False) + frame(OP_BIN, b"\x00" * 300, mask=True)
        c.send(good + bytes([0x83, 0x00]) + frame(OP_TEXT, b"after", mask=False))
        fin, op, masked, payload, _ = read_raw_frame(c)
        assert (op, payload[:2]) == (OP_CLOSE, (1002).to_bytes(2, "big"))
        close = conn.wait_frame(lambda f: f[1] == OP_CLOSE)
        assert conn.rx[:len(good)] == good
        assert [f[1] for f in conn.frames] == [OP_TEXT, OP_BIN, OP_CLOSE]
        assert len(conn.rx) == close[4]
    sy.wait_log(r"\[warn\] .*client sent an invalid WebSocket frame \(reserved opcode\)")
