"""The client's connection preface (RFC 9113 3.4): the magic, then a
SETTINGS frame. nginx also accepts a client whose first frame is something
else (its own test suite's client sends a SETTINGS ACK or HEADERS first);
so does Switchyard, taking the missing SETTINGS as the defaults. A wrong
magic still ends the connection (h2spec 3.5 checks it too)."""

from __future__ import annotations

import socket
import struct

import hpack
import pytest

from harness import free_port, http_conf, port_open, wait_until

MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def read_frames(sock: socket.socket, until_sid_end: int, timeout: float = 5.0):
    """Frames until stream `until_sid_end` ends (END_STREAM) or GOAWAY."""
    sock.settimeout(timeout)
    buf, frames = b"", []
    while True:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, flags = buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            frames.append((ftype, flags, sid, buf[9:9 + n]))
            buf = buf[9 + n:]
            if ftype == 7 or (sid == until_sid_end and flags & 1 and ftype in (0, 1)):
                return frames
        data = sock.recv(65536)
        if not data:
            return frames
        buf += data


@pytest.fixture
def h2c(switchyard):
    port = free_port()
    switchyard(http_conf(f"""
server {{
    listen 127.0.0.1:{port} http2;
    location / {{ return 200 "first frame\\n"; }}
}}
"""))
    wait_until(lambda: port_open(port), 5, "the port")
    return port


def get_headers_frame(sid: int) -> bytes:
    block = hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"),
                                    (":path", "/"), (":authority", "localhost")])
    return frame(1, 0x5, sid, block)  # END_STREAM | END_HEADERS


@pytest.mark.parametrize("first", ["headers", "settings_ack", "settings"])
def test_first_frame_other_than_settings_is_accepted(h2c, first):
    s = socket.create_connection(("127.0.0.1", h2c))
    s.sendall(MAGIC)
    if first == "settings_ack":
        s.sendall(frame(4, 1, 0))
    elif first == "settings":
        s.sendall(frame(4, 0, 0))
    s.sendall(get_headers_frame(1))
    frames = read_frames(s, 1)
    s.close()
    types = [f[0] for f in frames]
    assert 7 not in types, frames  # no GOAWAY
    data = b"".join(f[3] for f in frames if f[0] == 0 and f[2] == 1)
    assert data == b"first frame\n"
    headers = [f for f in frames if f[0] == 1 and f[2] == 1]
    assert dict(hpack.Decoder().decode(headers[0][3]))[":status"] == "200"


def test_wrong_magic_ends_the_connection(h2c):
    s = socket.create_connection(("127.0.0.1", h2c))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(4, 0, 0))
    s.settimeout(5)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    s.close()
    assert b"first frame" not in got
