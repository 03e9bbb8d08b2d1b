"""HTTP/2 abuse resistance, measured (issue 13 item 4): the known attacks,
each on one connection of its own (h2_support.RawH2: frames written below
any state machine, nothing acknowledged unless the test says so), while the
test measures the proxy's RSS, its CPU time, the requests that reached the
HTTP/1.1 origin and the latency of a legitimate client on another
connection.

  rapid reset (CVE-2023-44487)      HEADERS + RST_STREAM, thousands of times
  CONTINUATION flood (CVE-2024-27316 family)  a header block that never ends
  HPACK bomb                        one 4 KB dynamic-table entry referenced
                                    thousands of times by one-byte indexes
  PING / SETTINGS floods            frames that each demand an ACK, never read
  empty DATA frames (CVE-2019-9518) a stream fed zero-length DATA
  zero-window slow read             SETTINGS_INITIAL_WINDOW_SIZE 0, big responses
  stream-count exhaustion           far more streams than the server allows
  upload to a stalled upstream      the receive window opens only as the
                                    upstream accepts bytes (switchyard_only)

Every test is bounded in time (a few seconds of attack). The bounds common
to every server pass against nginx 1.22; what nginx does not do (answering
each flood with GOAWAY ENHANCE_YOUR_CALM, the upstream-driven window) is
asserted only under Switchyard (`harness.IS_NGINX` or `switchyard_only`).
"""

from __future__ import annotations

import os
import time

import pytest

from backends import read_request_head
from h2_support import (CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, H2Client, RawH2,
                        frame, h2_server, header_block, ping_frame, raw_headers, rst_frame,
                        settings_frame)
from harness import IS_NGINX, binary_is_sanitized, free_port, http_conf, wait_until

ENHANCE_YOUR_CALM = 0xB
MB = 1024
RSS_BOUND_KB = 24 * MB          # growth allowed during one attack
LATENCY_BOUND = 2.0             # a legitimate request right after an attack (generous: shared CPUs)


def cpu_seconds(sy) -> float:
    """User + system CPU time of the proxy's processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in sy._tree():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def start(switchyard, origin, extra: str = ""):
    p = free_port()
    sy = switchyard(http_conf(h2_server(p, body=f"{extra}\n    location / {{ proxy_pass "
                                              f"http://{origin.addr}; proxy_http_version 1.1; }}")))
    return sy, p


class Meter:
    """RSS, CPU, origin requests and error-log size before an attack."""

    def __init__(self, sy, origin):
        self.sy, self.origin = sy, origin
        with H2Client(sy.port) as c:   # warm up: first-connection allocations
            assert c.request("GET", "/warm").status == 200
        self.rss0 = sy.rss_kb()
        self.cpu0 = cpu_seconds(sy)
        self.req0 = len(origin.requests)
        self.log0 = sy.log_mark()

    def rss_growth(self) -> int:
        return self.sy.rss_kb() - self.rss0

    def cpu(self) -> float:
        return cpu_seconds(self.sy) - self.cpu0

    def origin_requests(self) -> int:
        return len(self.origin.requests) - self.req0

    def log_lines(self) -> list[str]:
        return self.sy.error_log()[self.log0:].splitlines()

    def check_common(self, rss_bound_kb: int = RSS_BOUND_KB, log_bound: int = 5):
        """Memory bounded, a legitimate client still served quickly, and the
        error log not flooded (at most a few lines per attack connection)."""
        if not binary_is_sanitized():
            assert self.rss_growth() < rss_bound_kb, f"RSS grew {self.rss_growth()} KiB"
        t0 = time.monotonic()
        with H2Client(self.sy.port) as c:
            assert c.request("GET", "/legit").status == 200
        assert time.monotonic() - t0 < LATENCY_BOUND
        assert len(self.log_lines()) <= log_bound, self.log_lines()


def get(path: str):
    return [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", path)]


def calm_goaway(a: RawH2):
    """Switchyard's answer to a flood: GOAWAY ENHANCE_YOUR_CALM, then close."""
    a.wait_end(5)
    assert a.goaway is not None and a.goaway[1] == ENHANCE_YOUR_CALM, (a.goaway, a.closed)


# --------------------------------------------------------------------------


def test_rapid_reset(switchyard, origin):
    sy, p = start(switchyard, origin)
    m = Meter(sy, origin)
    n = 5000
    with RawH2(p) as a:
        a.wait(lambda: a.server_settings)
        burst = b"".join(raw_headers(sid, get("/slow/200")) + rst_frame(sid)
                         for sid in range(1, 2 * n, 2))
        a.send(burst, timeout=5)
        # the server stops it: GOAWAY (nginx: after keepalive_requests, 1000)
        # or closes the connection
        assert a.wait_end(5)
        took = m.cpu()
    assert m.origin_requests() <= n // 10, m.origin_requests()
    assert took < 3.0
    m.check_common()
    if not IS_NGINX:
        assert a.goaway[1] == ENHANCE_YOUR_CALM
        assert a.goaway[0] < 2 * 1000, "stopped well before the 1000th stream"


def test_stream_count_exhaustion(switchyard, origin):
    sy, p = start(switchyard, origin)
    m = Meter(sy, origin)
    n = 1000
    conns0 = origin.connections
    with RawH2(p, timeout=5) as a:
        a.wait(lambda: a.server_settings)
        limit = a.server_settings.get(3)   # SETTINGS_MAX_CONCURRENT_STREAMS
        assert limit is not None and 1 <= limit <= 256, a.server_settings
        a.send(b"".join(raw_headers(sid, get("/hang")) for sid in range(1, 2 * n, 2)))
        # the streams beyond the limit are refused (RST_STREAM) or the
        # connection is ended; never more than `limit` reach the origin
        a.wait(lambda: a.goaway is not None or a.closed or len(a.resets) >= n - limit, 5)
        outcome = (a.goaway, a.closed, len(a.resets), set(a.resets.values()))
        assert a.goaway is not None or a.closed or len(a.resets) >= n - limit, outcome
        # /hang is recorded by the origin only when answered: count connections
        assert origin.connections - conns0 <= limit, outcome
    m.check_common()


def test_continuation_flood(switchyard, origin):
    sy, p = start(switchyard, origin)
    m = Meter(sy, origin)
    piece = header_block([(f"x-c{i}", "v" * 100) for i in range(140)])  # ~16 KB
    with RawH2(p) as a:
        a.wait(lambda: a.server_settings)
        a.send(frame(HEADERS, END_STREAM, 1, header_block(get("/cont"))))
        sent = 0
        deadline = time.monotonic() + 5
        while sent < (256 << 20) and time.monotonic() < deadline:
            r = a.send(frame(CONTINUATION, 0, 1, piece) * 16, timeout=1)
            if r is not True:
                break
            sent += 16 * len(piece)
            a.read(0)
            if a.goaway is not None or a.closed:
                break
        assert a.wait_end(5), f"still open after {sent} bytes of one header block"
    assert sent < (64 << 20), f"{sent} bytes of one header block accepted"
    assert m.origin_requests() == 0
    m.check_common()


def test_hpack_bomb(switchyard, origin):
    """A 4000-byte literal added to the dynamic table, then indexed 4000
    times in the same block: 16 MB of header fields out of 8 KB of HPACK."""
    import hpack
    sy, p = start(switchyard, origin)
    m = Meter(sy, origin)
    enc = hpack.Encoder()
    block = enc.encode([(b":method", b"GET"), (b":scheme", b"http"),
                        (b":authority", b"localhost"), (b":path", b"/bomb"),
                        (b"x-bomb", b"a" * 4000)])
    block += bytes([0x80 | 62]) * 4000   # the newest dynamic entry, 62
    with RawH2(p) as a:
        a.wait(lambda: a.server_settings)
        a.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        a.wait(lambda: 1 in a.status or 1 in a.resets or a.goaway is not None or a.closed, 5)
        answered = (a.status.get(1), a.resets.get(1), a.goaway, a.closed)
    assert answered != (None, None, None, False)
    assert a.status.get(1) in (None, 400, 431), answered
    assert all(r["target"] != "/bomb" for r in origin.requests)
    m.check_common()


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_ack_flood_never_read(switchyard, origin, kind):
    """Frames that each demand an ACK, written without reading: the ACKs
    must not pile up in the proxy's memory."""
    sy, p = start(switchyard, origin)
    m = Meter(sy, origin)
    one = ping_frame() if kind == "ping" else settings_frame([(4, 65535)])
    with RawH2(p, ack_settings=False) as a:
        sent, outcome = 0, True
        deadline = time.monotonic() + 4
        while sent < 400_000 and time.monotonic() < deadline:
            outcome = a.send(one * 2000, timeout=1)
            if outcome is not True:
                break   # back-pressure (False) or closed
            sent += 2000
        grew = m.rss_growth()
        cpu = m.cpu()
        if not IS_NGINX:
            # nghttp2's limit on queued ACKs: GOAWAY ENHANCE_YOUR_CALM
            calm_goaway(a)
    if not binary_is_sanitized():
        assert grew < RSS_BOUND_KB, f"RSS grew {grew} KiB after {sent} {kind} frames"
    assert cpu < 4.0
    m.check_common()


def test_empty_data_frames(switchyard, origin):
    sy, p = start(switchyard, origin, "client_max_body_size 0;")
    m = Meter(sy, origin)
    with RawH2(p) as a:
        a.wait(lambda: a.server_settings)
        a.send(raw_headers(1, [(":method", "POST")] + get("/empty")[1:], end_stream=False))
        sent = 0
        deadline = time.monotonic() + 4
        while sent < 1_000_000 and time.monotonic() < deadline:
            if a.send(frame(DATA, 0, 1) * 5000, timeout=1) is not True:
                break
            sent += 5000
            a.read(0)
            if a.goaway is not None or a.closed:
                break
        cpu = m.cpu()
        if not IS_NGINX:
            calm_goaway(a)
    assert cpu < 4.0, f"{cpu:.2f} s of CPU for {sent} empty DATA frames"
    m.check_common()


def test_zero_window_slow_read(switchyard, origin):
    """INITIAL_WINDOW_SIZE 0 and 20 responses of 8 MiB: the proxy must not
    hold them in memory (nginx writes them to proxy_temp_path; Switchyard
    stops reading the upstream)."""
    sy, p = start(switchyard, origin)
    m = Meter(sy, origin)
    n, size = 20, 8 << 20
    with RawH2(p, settings=[(4, 0)]) as a:
        a.wait(lambda: a.server_settings)
        a.send(b"".join(raw_headers(sid, get(f"/bytes/{size}")) for sid in range(1, 2 * n, 2)))
        wait_until(lambda: m.origin_requests() >= n, 5, "the origin requests")
        a.wait(lambda: len(a.status) >= n, 5)
        # give the origin time to push as much as the proxy will take
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            a.read(0.1)
        assert sum(a.data.values()) == 0   # not one byte beyond a zero window
        grew = m.rss_growth()
    if not binary_is_sanitized():
        assert grew < RSS_BOUND_KB, f"RSS grew {grew} KiB for {n} stalled responses"
    # nginx warns once per response it buffers to a temporary file
    m.check_common(log_bound=n + 5 if IS_NGINX else 5)


def test_upload_to_stalled_upstream_holds_at_most_a_buffer_per_stream(switchyard, origin,
                                                                      raw_backend):
    """20 uploads on one connection, pushed for 2 s as fast as the windows
    open, to an upstream that never reads the body: the stream windows open
    only as the upstream socket accepts bytes, so the proxy's memory stays
    bounded (what a stream got in is what the kernel's socket buffers took,
    about 4 MB each here; nginx with proxy_request_buffering off does the
    same); an upload on the same connection to a live upstream completes
    meanwhile."""
    def stall(s):
        read_request_head(s)
        wait_until(lambda: stall_done[0], 30, "the end of the test")

    stall_done = [False]
    be = raw_backend(stall)
    p = free_port()
    sy = switchyard(http_conf(h2_server(p, body=(
        f"client_max_body_size 0; proxy_request_buffering off; proxy_http_version 1.1;\n"
        f"    location /stall {{ proxy_pass http://{be.addr}; }}\n"
        f"    location / {{ proxy_pass http://{origin.addr}; }}"))))
    m = Meter(sy, origin)
    chunk = b"u" * 16384
    try:
        with H2Client(p, timeout=10) as c:
            sids = [c.start_request("POST", f"/stall/{i}", end=False) for i in range(20)]
            be.wait_connections(20, timeout=5)
            # push for 2 s as fast as the windows allow, round robin
            pushed = dict.fromkeys(sids, 0)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                for sid in sids:
                    room = min(c.conn.local_flow_control_window(sid), 4 * len(chunk))
                    while room > 0:
                        k = min(room, len(chunk))
                        c.conn.send_data(sid, chunk[:k])
                        pushed[sid] += k
                        room -= k
                c.flush()
                c.pump(0.05)
            # a live stream on the same connection is not blocked
            live = c.request("POST", "/live", body=b"x" * (1 << 20))
            assert live.status == 200
            grew = m.rss_growth()
            assert max(pushed.values()) < (16 << 20), pushed
    finally:
        stall_done[0] = True
    if not binary_is_sanitized():
        assert grew < RSS_BOUND_KB, f"RSS grew {grew} KiB"
