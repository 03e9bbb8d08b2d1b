"""Faults: upstreams that reset, dribble or never answer, a full disk under
the access log, and 1 GiB bodies against peers that do not read. Each gives
the client the right status (or a clean close when the response had already
started), a log line, no leaked file descriptor, and bounded memory.
(More upstream failures: test_errors.py; malformed responses:
test_smuggling.py.)
"""
import hashlib
import socket
import struct
import threading
import time

import pytest

from harness import binary_is_sanitized, fill, free_port, http_conf, read_until_close, request, wait_until

GiB = 1 << 30


def start(switchyard, body: str, **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw)))
    return sy, p


def reset_mid_response(conn):
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    # SO_LINGER 0: close() sends RST instead of FIN
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_upstream_reset_mid_response(switchyard, raw_backend):
    b = raw_backend(reset_mid_response)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    baseline = None
    for i in range(10):
        with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
            s.sendall(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
            out = read_until_close(s, timeout=5)
        head, _, body = out.partition(b"\r\n\r\n")
        # the head had gone out: the client sees the response cut short, and
        # the connection closed (never a complete-looking response)
        assert head.startswith(b"HTTP/1.1 200"), out[:200]
        assert len(body) < 100000
        if baseline is None:
            baseline = sy.fd_count()
    sy.wait_log(r"\[error\] .*(recv|readv)\(\) failed \(104: Connection reset by peer\) while "
                r"reading upstream, client: 127\.0\.0\.1", timeout=5)
    wait_until(lambda: sy.fd_count() <= baseline, 5, f"fd count back to {baseline}")


def dribble(conn):
    conn.recv(65536)
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n" + b"d" * 40
    for i in range(len(resp)):
        conn.sendall(resp[i:i + 1])
        time.sleep(0.005)  # the fault under test: one byte every 5 ms


def test_upstream_answering_one_byte_at_a_time(switchyard, raw_backend):
    b = raw_backend(dribble)
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@;
        location / { proxy_read_timeout 2s; proxy_pass http://@B@; } }""", B=b.addr)
    r = request(p, "GET", "/slow", timeout=10)
    assert r.status == 200 and r.body == b"d" * 40


def never_answers(conn):
    conn.recv(65536)
    conn_stop = threading.Event()
    conn_stop.wait(5)  # holds the connection open without answering (bounded)


def test_upstream_that_never_answers_is_504(switchyard, raw_backend):
    b = raw_backend(never_answers)
    sy, p = start(switchyard, """server { listen 127.0.0.1:@P@;
        location / { proxy_read_timeout 1s; proxy_pass http://@B@; } }""", B=b.addr)
    assert request(p, "GET", "/warm", timeout=5).status == 504
    baseline = sy.fd_count()
    for i in range(3):
        assert request(p, "GET", f"/n{i}", timeout=5).status == 504
    sy.wait_log(r"\[error\] .*upstream timed out .*while reading response header from upstream")
    wait_until(lambda: sy.fd_count() <= baseline, 5, f"fd count back to {baseline}")


@pytest.mark.switchyard_only
def test_access_log_on_a_full_disk(switchyard, origin):
    """/dev/full: every write fails with ENOSPC. Requests are still served,
    the failure is logged (not once per request), nothing crashes."""
    sy, p = start(switchyard, """access_log /dev/full;
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }""", O=origin.addr)
    for i in range(50):
        assert request(p, "GET", f"/f{i}").status == 200
    sy.wait_log(r"\[(alert|crit|error)\] .*write\(\) to \"/dev/full\" failed \(28: No space left")
    assert sy.error_log().count("/dev/full") < 50


# --------------------------------------------------------------------------
# 1 GiB against peers that do not read: memory stays bounded

RSS_GROWTH_BOUND_KB = 16 * 1024  # a few buffers and pages, far below what was in flight
CHUNK = bytes(range(256)) * 4096  # 1 MiB


def gib_sha256() -> str:
    """SHA-256 of 1 GiB made of CHUNK, as both tests send it."""
    h = hashlib.sha256()
    for _ in range(GiB // len(CHUNK)):
        h.update(CHUNK)
    return h.hexdigest()


def read_body(sock: socket.socket, first: bytes, total: int) -> tuple[int, str]:
    """Read until `total` body bytes (`first` already received): (count, sha256)."""
    h = hashlib.sha256(first)
    n = len(first)
    while n < total:
        c = sock.recv(1 << 20)
        if not c:
            break
        h.update(c)
        n += len(c)
    return n, h.hexdigest()


def wait_until_sender_stalls(sent: list, bound: float = 10.0):
    """Sample the sender's progress until it stops moving (backpressure) or
    `bound` seconds pass: there is no event for "blocked in send()"."""
    prev = -1
    deadline = time.monotonic() + bound
    while sent[0] != prev and time.monotonic() < deadline:
        prev = sent[0]
        time.sleep(0.3)  # sampling interval


@pytest.mark.switchyard_only  # nginx spools bodies to temporary files instead
@pytest.mark.skipif(binary_is_sanitized(), reason="RSS is meaningless under a sanitizer")
def test_upload_of_1gib_to_a_stalled_upstream(switchyard, raw_backend):
    release = threading.Event()
    got = {}

    def stalled_then_reads(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(65536)
        release.wait(30)  # reads nothing until the test has measured
        got["n"], got["sha"] = read_body(conn, head.split(b"\r\n\r\n", 1)[1], GiB)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    b = raw_backend(stalled_then_reads)
    sy, p = start(switchyard, """client_max_body_size 0;
        server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }""", B=b.addr)
    base = sy.rss_kb()
    s = socket.create_connection(("127.0.0.1", p), timeout=30)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
              % GiB)
    sent = [0]

    def pump():
        while sent[0] < GiB:
            s.sendall(CHUNK)
            sent[0] += len(CHUNK)
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    # the client is blocked once socket buffers and one proxy buffer are full
    wait_until(lambda: sent[0] > 0, 10, "the upload to start")
    wait_until_sender_stalls(sent)
    assert sent[0] < 256 << 20, sent[0]  # backpressure: most of the GiB is still unsent
    growth = sy.rss_kb() - base
    assert growth < RSS_GROWTH_BOUND_KB, f"RSS grew {growth} KiB with {sent[0] >> 20} MiB sent"
    release.set()
    t.join(120)
    out = read_until_close(s, timeout=60)
    s.close()
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert got["n"] == GiB and got["sha"] == gib_sha256()


@pytest.mark.switchyard_only  # nginx spools the response to temporary files instead
@pytest.mark.skipif(binary_is_sanitized(), reason="RSS is meaningless under a sanitizer")
def test_client_reading_nothing_of_a_1gib_response(switchyard, raw_backend):
    sent = [0]

    def big(conn):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % GiB)
        try:
            while sent[0] < GiB:
                conn.sendall(CHUNK)
                sent[0] += len(CHUNK)
        except OSError:
            pass

    b = raw_backend(big)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@B@; } }",
                  B=b.addr)
    base = sy.rss_kb()
    s = socket.create_connection(("127.0.0.1", p), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: sent[0] > 0, 10, "the response to start")
    wait_until_sender_stalls(sent)
    assert sent[0] < 256 << 20, sent[0]
    growth = sy.rss_kb() - base
    assert growth < RSS_GROWTH_BOUND_KB, f"RSS grew {growth} KiB with {sent[0] >> 20} MiB sent"
    # now read it all: every byte arrives
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    n, sha = read_body(s, data.split(b"\r\n\r\n", 1)[1], GiB)
    s.close()
    assert n == GiB and sha == gib_sha256()
