"""HTTP/2 test support (issue 13): a client on python3-h2 4.1 over a real
socket, raw frames for what h2 refuses to send, an RFC 8441 extended CONNECT
client that speaks WebSocket frames inside DATA, and runners for the command
line clients (curl --http2, nghttp, h2load).

`H2Client` drives h2's state machine by hand so tests control flow control:
with `auto_ack=False` it never sends WINDOW_UPDATE on its own (a zero-window
slow reader, a client that opens the window only as it consumes), and
`open_window()` sends one when the test says so. `send_raw()` writes bytes
below h2 (malformed or abusive frames); `frame()` builds them.

TLS: ALPN `h2` (`tls=True`, the proxy's certificate is not verified unless
`cafile` is given); plain sockets speak h2c with prior knowledge (the client
preface straight away, no Upgrade: h2c). Everything waits with a bound.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import ssl
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from harness import HarnessError
from ws_fixtures import frame as ws_frame, xor_mask

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types (RFC 9113 §6) and flags
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441 §3
PROTOCOL_ERROR = ErrorCodes.PROTOCOL_ERROR
CANCEL = ErrorCodes.CANCEL


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One raw HTTP/2 frame: 9-byte header + payload (RFC 9113 §4.1)."""
    n = len(payload)
    return struct.pack("!BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF) + payload


def settings_frame(pairs=(), ack: bool = False) -> bytes:
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack("!HI", k, v) for k, v in pairs))


def window_update_frame(stream_id: int, inc: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack("!I", inc))


def rst_frame(stream_id: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack("!I", int(code)))


def ping_frame(data: bytes = b"12345678", ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, data)


def header_block(headers) -> bytes:
    """An HPACK block that leaves the dynamic table alone (every field a
    never-indexed literal or a static-table hit), so raw HEADERS can be mixed
    with h2's own on one connection."""
    import hpack
    enc = hpack.Encoder()
    return enc.encode([hpack.NeverIndexedHeaderTuple(_b(k), _b(v)) for k, v in headers])


def raw_headers(stream_id: int, headers, end_stream: bool = True, end_headers: bool = True) -> bytes:
    """A HEADERS frame built below h2 (h2 would refuse streams beyond the
    server's SETTINGS_MAX_CONCURRENT_STREAMS, or malformed fields)."""
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, stream_id, header_block(headers))


def _b(x) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("latin-1")


def _hdrs(pairs) -> list[tuple[bytes, bytes]]:
    return [(_b(k), _b(v)) for k, v in pairs]


@dataclass
class Stream:
    """What arrived on one stream."""
    id: int
    headers: list = field(default_factory=list)    # final response head
    interim: list = field(default_factory=list)    # 1xx heads
    trailers: list = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None                       # RST_STREAM error code

    @property
    def status(self) -> int | None:
        v = self.header(":status")
        return int(v) if v is not None else None

    def header(self, name: str, default=None):
        n = name.lower().encode()
        for k, v in self.headers:
            if k == n:
                return v.decode("latin-1")
        return default

    def header_all(self, name: str) -> list[str]:
        n = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k == n]

    @property
    def body(self) -> bytes:
        return bytes(self.data)

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2Client:
    """One HTTP/2 client connection (h2 state machine over a real socket)."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", tls: bool = False,
                 server_name: str = "localhost", cafile: str | Path | None = None,
                 auto_ack: bool = True, validate: bool = True,
                 settings: dict | None = None, timeout: float = 5.0, connect: bool = True):
        self.port, self.host, self.tls = port, host, tls
        self.server_name, self.cafile = server_name, cafile
        self.auto_ack = auto_ack
        # streams whose window the client leaves closed while auto_ack is on:
        # their bytes are acknowledged on the connection only (a stalled
        # reader of one stream must not stall the others)
        self.stalled: set[int] = set()
        self.timeout = timeout
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            validate_outbound_headers=validate, normalize_outbound_headers=validate,
            validate_inbound_headers=validate)
        self.conn = h2.connection.H2Connection(config=cfg)
        self._keep_open_after_goaway()
        self.initial_settings = dict(settings or {})
        self.streams: dict[int, Stream] = {}
        self.remote_settings: dict[int, int] = {}
        self.settings_received = False
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.pings_acked = 0
        self.closed = False
        self.alpn: str | None = None
        self.sock: socket.socket | None = None
        self.events: list = []
        if connect:
            self.connect()

    # -- connection

    def _keep_open_after_goaway(self):
        """h2 4.1 closes its connection state on GOAWAY and then refuses the
        frames of streams the GOAWAY kept (RFC 9113 §6.8: streams up to
        last_stream_id complete). Keep the state open so they are read."""
        sm = self.conn.state_machine
        orig = sm.process_input

        def process_input(inp):
            out = orig(inp)
            if inp == h2.connection.ConnectionInputs.RECV_GOAWAY:
                sm.state = h2.connection.ConnectionState.CLIENT_OPEN
            return out
        sm.process_input = process_input

    def connect(self):
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
            if not self.cafile:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname=self.server_name)
            self.alpn = raw.selected_alpn_protocol()
            if self.alpn != "h2":
                raw.close()
                raise HarnessError(f"ALPN chose {self.alpn!r}, not h2")
        self.sock = raw
        self.conn.initiate_connection()
        if self.initial_settings:
            # initiate_connection() sent the defaults; announce ours
            self.conn.update_settings(self.initial_settings)
        self.flush()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def send_raw(self, data: bytes):
        """Bytes below h2's state machine (the server sees them as sent)."""
        self.sock.sendall(data)

    # -- receiving

    def pump(self, timeout: float) -> bool:
        """Read what arrives within `timeout` (at most one recv) and handle it.
        False at EOF."""
        if self.closed:
            return False
        if not (self.tls and self.sock.pending()):
            r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not r:
                return True
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        except (socket.timeout, BlockingIOError):
            return True
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            raise HarnessError(f"the server broke the protocol: {e!r}")
        for ev in events:
            self._handle(ev)
        try:
            self.flush()
        except OSError:
            self.closed = True
        return True

    def _st(self, sid: int) -> Stream:
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        return self.streams[sid]

    def _handle(self, ev):
        self.events.append(ev)
        if isinstance(ev, h2.events.ResponseReceived):
            self._st(ev.stream_id).headers = list(ev.headers)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self._st(ev.stream_id).interim.append(list(ev.headers))
        elif isinstance(ev, h2.events.TrailersReceived):
            self._st(ev.stream_id).trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self._st(ev.stream_id).data += ev.data
            n = ev.flow_controlled_length
            if self.auto_ack and n and ev.stream_id in self.stalled:
                self.conn.increment_flow_control_window(n)
            elif self.auto_ack and n:
                self.conn.acknowledge_received_data(n, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self._st(ev.stream_id).ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self._st(ev.stream_id).reset = ev.error_code
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[int(k)] = v.new_value
            self.settings_received = True
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings_acked += 1

    def wait(self, pred, timeout: float | None = None, what: str = "the condition"):
        """Pump until pred() is true; HarnessError after `timeout`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"HTTP/2: no {what} within {timeout or self.timeout}s")
            if not self.pump(min(left, 0.2)) and not pred():
                raise HarnessError(f"HTTP/2: connection closed before {what}")
        return True

    def wait_settings(self, timeout: float | None = None) -> dict:
        self.wait(lambda: self.settings_received, timeout, "SETTINGS from the server")
        return self.remote_settings

    def wait_goaway(self, timeout: float | None = None):
        """The GOAWAY (ConnectionTerminated event); reads on to EOF is not required."""
        self.wait(lambda: self.goaway is not None, timeout, "GOAWAY")
        return self.goaway

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True if the server closed the connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            try:
                self.pump(min(0.2, deadline - time.monotonic()))
            except HarnessError:
                self.closed = True
            except OSError:
                self.closed = True
        return self.closed

    def wait_stream(self, sid: int, timeout: float | None = None) -> Stream:
        self.wait(lambda: self._st(sid).done, timeout, f"end of stream {sid}")
        return self.streams[sid]

    def wait_headers(self, sid: int, timeout: float | None = None) -> Stream:
        st = self._st(sid)
        self.wait(lambda: bool(st.headers) or st.reset is not None, timeout,
                  f"response head on stream {sid}")
        return st

    # -- sending

    def send_headers(self, headers, end_stream: bool = False, sid: int | None = None) -> int:
        sid = sid if sid is not None else self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, _hdrs(headers), end_stream=end_stream)
        self._st(sid)
        self.flush()
        return sid

    def send_data(self, sid: int, data: bytes, end_stream: bool = False,
                  timeout: float | None = None):
        """Send `data`, as the server's windows allow (waits for WINDOW_UPDATE).
        Stops quietly when the server ends or resets the stream first (an
        early answer such as 413): the test reads the stream's outcome."""
        deadline = time.monotonic() + (timeout or self.timeout)
        view = memoryview(data)
        while True:
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                       len(view))
            if room > 0 or not view:
                self.conn.send_data(sid, bytes(view[:room]),
                                    end_stream=end_stream and room == len(view))
                self.flush()
                view = view[room:]
                if not view:
                    return
                continue
            if time.monotonic() >= deadline:
                raise HarnessError(f"HTTP/2: the server's window stayed closed on stream {sid}")
            if self._st(sid).done:
                return
            if not self.pump(min(0.2, deadline - time.monotonic())):
                raise HarnessError("HTTP/2: connection closed while sending a body")

    def end_stream(self, sid: int):
        self.conn.end_stream(sid)
        self.flush()

    def reset(self, sid: int, code=CANCEL):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def ping(self, data: bytes = b"pingpong"):
        self.conn.ping(data)
        self.flush()

    def open_window(self, sid: int, n: int):
        """Send WINDOW_UPDATE for `n` bytes on the stream and the connection."""
        self.conn.increment_flow_control_window(n)
        if sid:
            self.conn.increment_flow_control_window(n, stream_id=sid)
        self.flush()

    def request_headers(self, method: str = "GET", path: str = "/", authority: str = "localhost",
                        headers=(), scheme: str | None = None) -> list:
        scheme = scheme or ("https" if self.tls else "http")
        return [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + list(headers)

    def start_request(self, method: str = "GET", path: str = "/", *, authority: str = "localhost",
                      headers=(), body: bytes | None = None, end: bool = True) -> int:
        """Open a stream; with a body, send it (and END_STREAM if `end`)."""
        hs = self.request_headers(method, path, authority, headers)
        if body is None:
            return self.send_headers(hs, end_stream=end)
        sid = self.send_headers(hs, end_stream=False)
        self.send_data(sid, body, end_stream=end)
        return sid

    def request(self, method: str = "GET", path: str = "/", *, authority: str = "localhost",
                headers=(), body: bytes | None = None, timeout: float | None = None) -> Stream:
        sid = self.start_request(method, path, authority=authority, headers=headers, body=body)
        return self.wait_stream(sid, timeout)


def h2_get(port: int, path: str = "/", **kw) -> Stream:
    """One request on a fresh connection (kw: tls, method, headers, body...)."""
    conn_kw = {k: kw.pop(k) for k in ("tls", "server_name", "cafile", "timeout") if k in kw}
    with H2Client(port, **conn_kw) as c:
        return c.request(kw.pop("method", "GET"), path, **kw)


# --------------------------------------------------------------------------
# raw frames, no state machine (abuse tests)


class RawH2:
    """HTTP/2 at the frame level, for abuse: sends the preface and an empty
    SETTINGS, then only what the test writes. Reading parses frames and
    records, per stream, the :status, DATA bytes, END_STREAM and RST_STREAM
    code, and for the connection GOAWAY (last stream id, code), the server's
    SETTINGS (ACKed, unless `ack_settings=False`) and PING ACKs. It never
    sends WINDOW_UPDATE by itself. Writes are bounded in time: `send()`
    returns False when the server stopped reading for `timeout` seconds
    (back-pressure) and "closed" when it closed."""

    def __init__(self, port: int, *, tls: bool = False, host: str = "127.0.0.1",
                 settings=(), ack_settings: bool = True, timeout: float = 5.0):
        import hpack
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock = raw
        self.tls = tls
        self.ack_settings = ack_settings
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.buf = bytearray()
        self.status: dict[int, int] = {}
        self.data: dict[int, int] = {}
        self.data_frames: dict[int, list[int]] = {}   # stream -> DATA payload sizes
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.goaway: tuple[int, int] | None = None     # (last_stream_id, error code)
        self.server_settings: dict[int, int] = {}
        self.ping_acks = 0
        self.frames_in = 0
        self.closed = False
        self.sock.sendall(PREFACE + settings_frame(settings))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data: bytes, timeout: float | None = None):
        """True when all was written; False when the server's receive
        buffer stayed full for `timeout`; "closed" when it closed."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                _, w, _ = select.select([], [self.sock], [], left)
                if not w:
                    return False
                n = self.sock.send(view[:65536])
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
                return "closed"
            except (BlockingIOError, ssl.SSLWantWriteError, socket.timeout):
                continue
            except OSError:
                self.closed = True
                return "closed"
            view = view[n:]
        return True

    def read(self, timeout: float = 0.2) -> bool:
        """Read and parse what arrives within `timeout`; False at EOF."""
        if self.closed:
            return False
        if not (self.tls and self.sock.pending()):
            r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
            if not r:
                return True
        try:
            chunk = self.sock.recv(262144)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        self._parse()
        return True

    def _parse(self):
        b = self.buf
        while len(b) >= 9:
            n = int.from_bytes(b[0:3], "big")
            if len(b) < 9 + n:
                return
            ftype, flags = b[3], b[4]
            sid = struct.unpack("!I", bytes(b[5:9]))[0] & 0x7FFFFFFF
            payload = bytes(b[9:9 + n])
            del b[:9 + n]
            self.frames_in += 1
            self._frame(ftype, flags, sid, payload)

    def _frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack("!HI", payload[i:i + 6])
                self.server_settings[k] = v
            if self.ack_settings:
                self.send(settings_frame(ack=True), timeout=1)
        elif ftype == PING and flags & ACK:
            self.ping_acks += 1
        elif ftype == GOAWAY:
            last, code = struct.unpack("!II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code)
        elif ftype == RST_STREAM:
            self.resets[sid] = struct.unpack("!I", payload[:4])[0]
        elif ftype == HEADERS:
            block = payload
            if flags & PADDED:
                block = block[1:len(block) - block[0]]
            if flags & PRIORITY_FLAG:
                block = block[5:]
            try:
                for k, v in self.decoder.decode(block, raw=True):
                    if k == b":status":
                        self.status.setdefault(sid, int(v))
            except Exception:  # a CONTINUATION-split block: status unknown
                pass
            if flags & END_STREAM:
                self.ended.add(sid)
        elif ftype == DATA:
            self.data[sid] = self.data.get(sid, 0) + len(payload)
            self.data_frames.setdefault(sid, []).append(len(payload))
            if flags & END_STREAM:
                self.ended.add(sid)

    def wait(self, pred, timeout: float | None = None) -> bool:
        """Read until pred() (True) or EOF/timeout (pred()'s last value)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not pred() and time.monotonic() < deadline:
            if not self.read(min(0.2, max(0.0, deadline - time.monotonic()))):
                break
        return bool(pred())

    def wait_end(self, timeout: float = 5.0) -> bool:
        """Until GOAWAY or EOF; True if either came."""
        return self.wait(lambda: self.goaway is not None or self.closed, timeout)

    def drain_until_closed(self, timeout: float = 5.0) -> bool:
        return self.wait(lambda: self.closed, timeout)


# --------------------------------------------------------------------------
# RFC 8441: WebSocket over an HTTP/2 stream


class H2WebSocket:
    """A WebSocket on one extended CONNECT stream. Frames are those of RFC
    6455 (client frames masked), carried in DATA; there is no
    Sec-WebSocket-Key/Accept (RFC 8441 §5)."""

    def __init__(self, client: H2Client, sid: int, response: Stream):
        self.c, self.sid, self.response = client, sid, response
        self.buf = bytearray()
        self._taken = 0

    @classmethod
    def open(cls, client: H2Client, path: str = "/ws", *, authority: str = "localhost",
             headers=(), check_setting: bool = True, timeout: float | None = None):
        """Send an extended CONNECT (`:protocol websocket`), return (ws or None,
        response Stream). With `check_setting`, fail unless the server
        advertised SETTINGS_ENABLE_CONNECT_PROTOCOL=1 first (RFC 8441 §4:
        a client must not send `:protocol` before that)."""
        s = client.wait_settings(timeout)
        if check_setting and s.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) != 1:
            raise HarnessError(f"the server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL "
                               f"(got {s})")
        scheme = "https" if client.tls else "http"
        hs = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", scheme),
              (":path", path), (":authority", authority), ("sec-websocket-version", "13")]
        sid = client.send_headers(hs + list(headers), end_stream=False)
        st = client.wait_headers(sid, timeout)
        if st.status != 200:
            return None, st
        return cls(client, sid, st), st

    def send(self, opcode: int, payload: bytes = b"", fin: bool = True, end_stream: bool = False):
        self.c.send_data(self.sid, ws_frame(opcode, payload, fin=fin, mask=True),
                         end_stream=end_stream)

    def send_text(self, text: str):
        self.send(1, text.encode())

    def _new_bytes(self):
        st = self.c.streams[self.sid]
        if len(st.data) > self._taken:
            self.buf += st.data[self._taken:]
            self._taken = len(st.data)

    def recv(self, timeout: float | None = None):
        """(fin, opcode, payload) of the next frame from the server; None when
        the stream ended or was reset first."""
        deadline = time.monotonic() + (timeout or self.c.timeout)
        while True:
            self._new_bytes()
            fr = self._take_frame()
            if fr is not None:
                return fr
            st = self.c.streams[self.sid]
            if st.done:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"no WebSocket frame on stream {self.sid} within the bound")
            if not self.c.pump(min(left, 0.2)):
                return None

    def _take_frame(self):
        b = self.buf
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = struct.unpack("!H", bytes(b[2:4]))[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = struct.unpack("!Q", bytes(b[2:10]))[0], 10
        key = b""
        if b1 & 0x80:
            if len(b) < off + 4:
                return None
            key, off = bytes(b[off:off + 4]), off + 4
        if len(b) < off + n:
            return None
        payload = bytes(b[off:off + n])
        del b[:off + n]
        if key:
            payload = xor_mask(payload, key)
        return bool(b0 & 0x80), b0 & 0x0F, payload


# --------------------------------------------------------------------------
# command-line clients


def tool(name: str) -> str:
    """Path of a client program; skips the test when it is missing."""
    import pytest
    p = shutil.which(name)
    if p is None:
        pytest.skip(f"{name} is not installed (scripts/install-deps)")
    return p


def curl_h2(url: str, *args, prior_knowledge: bool = False, cafile=None, timeout: float = 10.0,
            resolve: str | None = None):
    """curl over HTTP/2: (returncode, http_version, status, headers text, body bytes).
    --http2 negotiates by ALPN on https://; prior_knowledge sends h2c at once."""
    hdr = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"curl-h2-{os.getpid()}-{time.monotonic_ns()}")
    argv = [tool("curl"), "-sS", "-o", "-", "-D", hdr, "-w", "\n%{http_version} %{http_code}",
            "--max-time", str(timeout),
            "--http2-prior-knowledge" if prior_knowledge else "--http2"]
    if cafile:
        argv += ["--cacert", str(cafile)]
    elif url.startswith("https"):
        argv += ["-k"]
    if resolve:
        argv += ["--resolve", resolve]
    argv += list(args) + [url]
    p = subprocess.run(argv, capture_output=True, timeout=timeout + 5)
    try:
        head = Path(hdr).read_text("latin-1")
        os.unlink(hdr)
    except OSError:
        head = ""
    body, _, tail = p.stdout.rpartition(b"\n")
    m = re.match(rb"(\S+) (\d+)", tail)
    version, status = (m.group(1).decode(), int(m.group(2))) if m else (None, None)
    return p.returncode, version, status, head, body, p.stderr.decode("utf-8", "replace")


def nghttp(url: str, *args, timeout: float = 10.0):
    """nghttp -nv URL ...: (returncode, verbose output text)."""
    p = subprocess.run([tool("nghttp"), "-nv", "-t", str(int(timeout))] + list(args) + [url],
                       capture_output=True, timeout=timeout + 5)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def h2load(url: str, *args, timeout: float = 30.0):
    """h2load URL ...: (returncode, output, {'succeeded': n, 'failed': n, 'status_2xx': n})."""
    p = subprocess.run([tool("h2load")] + list(args) + [url], capture_output=True,
                       timeout=timeout)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    stats = {}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed",
                  out)
    if m:
        stats.update(total=int(m.group(1)), done=int(m.group(3)), succeeded=int(m.group(4)),
                     failed=int(m.group(5)))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if m:
        stats.update(status_2xx=int(m.group(1)), status_4xx=int(m.group(3)),
                     status_5xx=int(m.group(4)))
    return p.returncode, out, stats



# --------------------------------------------------------------------------
# configurations


def h2_server(port: int, *, tls=None, body: str = "", http2_on: bool = False,
              server_name: str = "localhost") -> str:
    """A server block with an HTTP/2 listener on 127.0.0.1:port: TLS with
    ALPN h2 when `tls` is (crt, key), else h2c with prior knowledge. The
    nginx <= 1.24 syntax (`listen ... [ssl] http2`) unless `http2_on`, which
    writes nginx 1.25.1's `http2 on;` (nginx 1.22 does not know it)."""
    ssl = " ssl" if tls else ""
    if http2_on:
        listen = f"listen 127.0.0.1:{port}{ssl};\n    http2 on;"
    else:
        listen = f"listen 127.0.0.1:{port}{ssl} http2;"
    certs = f"\n    ssl_certificate {tls[0]};\n    ssl_certificate_key {tls[1]};" if tls else ""
    return (f"server {{\n    {listen}\n    server_name {server_name};{certs}\n"
            f"{body}\n}}\n")
