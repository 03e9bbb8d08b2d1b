"""The life of a WebSocket tunnel: peers vanishing, backpressure with slow
readers, idle tunnels, Switchyard's keep-alive pings and timeouts, many
tunnels at once, the access-log variables, memory per idle tunnel, graceful
shutdown.

Tests that nginx can run use the seed's second config under nginx and its
first config (automatic upgrade) under Switchyard (`KIND`); the
Switchyard-only ones use the first config. Switchyard ends a tunnel with a
close frame (1001 or 1011, with a reason); nginx just closes TCP, which the
client sees as 1006 — asserted when running against nginx.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import websockets
from websockets.frames import Opcode
from websockets.legacy.client import WebSocketClientProtocol

from harness import IS_NGINX, binary_is_sanitized, free_port, wait_until
from ws_fixtures import (OP_BIN, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, RawWs, close_payload, frame, run,
                         ws_conf, ws_connect)

KIND = "second" if IS_NGINX else "first"
MiB = 1 << 20

TUNNEL_LOG_FORMAT = ("log_format tunnel '$request_uri $status $tunnel_duration "
                     "$tunnel_bytes_from_client $tunnel_bytes_from_upstream "
                     "\"$tunnel_close_reason\"';")
TUNNEL_LOG = "access_log logs/tunnel.log tunnel;"
TUNNEL_LINE = re.compile(r'^(\S+) (\d{3}) (\d+\.\d{3}) (\d+) (\d+) "([^"]*)"$', re.M)


def start_ws(switchyard, ws_backend, kind=KIND, backend_opts=None, **conf_kw):
    be = ws_backend("ws", **(backend_opts or {}))
    p = free_port()
    sy = switchyard(ws_conf(kind, be.addr, p, **conf_kw))
    return sy, p, be


def tunnel_log_line(sy, uri: str, timeout: float = 5.0):
    """The parsed tunnel.log line for `uri` (written when the tunnel ends)."""
    path = sy.prefix / "logs" / "tunnel.log"

    def probe():
        text = path.read_text() if path.exists() else ""
        for m in TUNNEL_LINE.finditer(text):
            if m.group(1) == uri:
                return m
        return None

    m = wait_until(probe, timeout, f"a tunnel.log line for {uri}")
    return dict(uri=m.group(1), status=int(m.group(2)), duration=float(m.group(3)),
                from_client=int(m.group(4)), from_upstream=int(m.group(5)), reason=m.group(6))


class Recording(WebSocketClientProtocol):
    """websockets client protocol that records every frame it receives
    (control frames included, which the library otherwise handles silently)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.frames_seen: list[tuple[Opcode, bytes]] = []

    async def read_frame(self, max_size):
        f = await super().read_frame(max_size)
        self.frames_seen.append((f.opcode, bytes(f.data)))
        return f


def assert_switchyard_close(code, reason):
    assert code in (1011, 1001), f"close code {code} {reason!r}"
    assert reason, "Switchyard's close frame carries a reason"


# --------------------------------------------------------------------------
# a peer goes away


def test_backend_killed_mid_tunnel(switchyard, ws_backend):
    sy, p, be = start_ws(switchyard, ws_backend)

    async def talk():
        async with ws_connect(p, "/ws/killed") as ws:
            await ws.send("alive?")
            assert await ws.recv() == "alive?"
            be.kill(signal.SIGKILL)
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 2)
            await asyncio.wait_for(ws.wait_closed(), 2 - (time.monotonic() - t0))
            return ws.close_code, ws.close_reason, time.monotonic() - t0

    code, reason, elapsed = run(talk(), 20)
    assert elapsed <= 2.0
    if IS_NGINX:
        assert code == 1006  # nginx closes TCP without a close frame
    else:
        assert_switchyard_close(code, reason)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_client_vanishes(switchyard, ws_backend, how):
    """The client's socket goes away without a close frame: the backend's
    connection is closed within 2 s."""
    sy, p, be = start_ws(switchyard, ws_backend)
    c = RawWs(p)
    key, status, headers, raw = c.handshake("/ws/vanish")
    assert status == 101
    c.send(frame(OP_TEXT, b"here"))
    assert c.read_frame() == (True, OP_TEXT, b"here")
    opened = be.wait_event("ws_open")
    if how == "rst":
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    t0 = time.monotonic()
    c.close()
    ev = be.wait_event("ws_close", conn=opened["conn"], timeout=2)
    assert ev["t"] - t0 <= 2.0
    be.wait_event("tcp_close", conn=opened["conn"], timeout=2)


# --------------------------------------------------------------------------
# slow readers: backpressure, bounded proxy memory

SLOW_TOTAL = 256 * MiB
SLOW_CHUNK = 1 * MiB
SLOW_RATE = 128 * MiB  # bytes/s the slow side reads: 256 MiB take ~2 s
RSS_GROWTH_LIMIT_KB = 32 * 1024


class RssSampler:
    """Samples the proxy's RSS every 50 ms in a thread until stopped."""

    def __init__(self, sy):
        self.sy = sy
        self.base = sy.rss_kb()
        self.peak = self.base
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.peak = max(self.peak, self.sy.rss_kb())
            self.samples += 1
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(timeout=5)
        self.peak = max(self.peak, self.sy.rss_kb())


@pytest.mark.slow
def test_slow_backend_reader_bounded_memory(switchyard, ws_backend):
    """256 MiB client -> backend while the backend reads at SLOW_RATE (node
    pauses its socket): the client is held back, the proxy does not buffer."""
    sy, p, be = start_ws(switchyard, ws_backend)
    payload = os.urandom(SLOW_CHUNK)
    data_frame = frame(OP_BIN, payload)  # one masked frame, sent 256 times
    expect = hashlib.sha256()
    for _ in range(SLOW_TOTAL // SLOW_CHUNK):
        expect.update(payload)
    c = RawWs(p, timeout=60)
    try:
        key, status, headers, raw = c.handshake(f"/ws/slow?rate={SLOW_RATE}&sink=1")
        assert status == 101
        sent = [0]
        errors = []

        def sender():
            try:
                for _ in range(SLOW_TOTAL // SLOW_CHUNK):
                    c.sock.sendall(data_frame)
                    sent[0] += SLOW_CHUNK
            except OSError as e:
                errors.append(e)

        t0 = time.monotonic()
        with RssSampler(sy) as rss:
            th = threading.Thread(target=sender, daemon=True)
            th.start()
            th.join(timeout=90)
        elapsed = time.monotonic() - t0
        assert not th.is_alive(), f"sender stuck after {sent[0]} bytes"
        assert not errors, errors
        c.send(frame(OP_TEXT, b"__stats__"))
        f = c.read_frame(timeout=30)
        assert f is not None and f[1] == OP_TEXT, f
        st = json.loads(f[2])
        assert st["rx_bytes"] == SLOW_TOTAL
        assert st["rx_msgs"] == SLOW_TOTAL // SLOW_CHUNK
        assert st["sha256"] == expect.hexdigest()
        c.send(frame(OP_CLOSE, close_payload(1000)))
        assert c.read_frame(timeout=10)[1] == OP_CLOSE
    finally:
        c.close()
    # the reader was slow, so the writer was held back (backpressure) ...
    assert elapsed >= 0.5 * SLOW_TOTAL / SLOW_RATE
    # ... and the proxy did not absorb the difference
    assert rss.samples >= 5
    assert rss.peak - rss.base < RSS_GROWTH_LIMIT_KB, \
        f"proxy RSS grew {rss.peak - rss.base} KiB (base {rss.base} KiB)"


@pytest.mark.slow
def test_slow_client_reader_bounded_memory(switchyard, ws_backend):
    """256 MiB backend -> client (node sends as fast as its socket drains)
    while the client reads at SLOW_RATE."""
    sy, p, be = start_ws(switchyard, ws_backend)

    async def talk():
        async with ws_connect(p, "/ws/flood", max_size=2 * SLOW_CHUNK, max_queue=2) as ws:
            await ws.send(f"__flood__ {SLOW_TOTAL} {SLOW_CHUNK}")
            h = hashlib.sha256()
            got = msgs = 0
            t0 = time.monotonic()
            while got < SLOW_TOTAL and msgs < SLOW_TOTAL // SLOW_CHUNK + 1:
                m = await ws.recv()
                assert isinstance(m, bytes)
                h.update(m)
                got += len(m)
                msgs += 1
                due = t0 + got / SLOW_RATE  # read no faster than SLOW_RATE
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
            done = await ws.recv()
            elapsed = time.monotonic() - t0
            return got, h.hexdigest(), done, elapsed

    with RssSampler(sy) as rss:
        got, digest, done, elapsed = run(talk(), 120)
    assert got == SLOW_TOTAL
    assert done == f"__flood_done__ {SLOW_TOTAL} {digest}"
    assert elapsed >= 0.9 * SLOW_TOTAL / SLOW_RATE
    assert rss.samples >= 5
    assert rss.peak - rss.base < RSS_GROWTH_LIMIT_KB, \
        f"proxy RSS grew {rss.peak - rss.base} KiB (base {rss.base} KiB)"


# --------------------------------------------------------------------------
# idle tunnels, timeouts and pings (Switchyard's directives)


@pytest.mark.slow
@pytest.mark.switchyard_only
def test_idle_tunnel_survives_75s_by_default(switchyard, ws_backend):
    """nginx closes an idle tunnel after proxy_read_timeout (60 s); with
    default settings Switchyard keeps it (websocket_idle_timeout 1h)."""
    sy, p, be = start_ws(switchyard, ws_backend, "first")

    async def talk():
        async with ws_connect(p, "/ws/idle75") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 75)  # nothing arrives, nothing closes
            assert ws.open
            assert be.find("ws_close") == [], "the backend's side was closed"
            await ws.send("after 75 s")
            return await ws.recv()

    assert run(talk(), 100) == "after 75 s"
    assert be.find("ping") == [] and be.find("pong") == []  # default: no proxy pings


@pytest.mark.switchyard_only
def test_idle_timeout_closes_with_1001(switchyard, ws_backend):
    sy, p, be = start_ws(switchyard, ws_backend, "first", loc_extra="websocket_idle_timeout 2s;",
                         http_extra=TUNNEL_LOG_FORMAT, server_extra=TUNNEL_LOG)

    async def talk():
        async with ws_connect(p, "/ws/idle2") as ws:
            await ws.send("once")
            assert await ws.recv() == "once"
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            await asyncio.wait_for(ws.wait_closed(), 3)
            return ws.close_code, ws.close_reason, time.monotonic() - t0

    code, reason, elapsed = run(talk(), 20)
    assert code == 1001
    assert reason
    assert 1.5 <= elapsed <= 4.0, elapsed
    ev = be.wait_event("ws_close", timeout=3)
    assert ev["code"] == 1001
    line = tunnel_log_line(sy, "/ws/idle2")
    assert line["reason"] == "idle timeout"
    assert line["status"] == 101


def test_explicit_proxy_read_timeout_applies_to_tunnel(switchyard, ws_backend):
    """An explicit `proxy_read_timeout` in the location bounds an idle tunnel, as
    on nginx (which closes the TCP connection; Switchyard sends 1001 first)."""
    sy, p, be = start_ws(switchyard, ws_backend, "first" if not IS_NGINX else "second",
                         loc_extra="proxy_read_timeout 2s;")

    async def talk():
        async with ws_connect(p, "/ws/rto") as ws:
            await ws.send("once")
            assert await ws.recv() == "once"
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 6)
            return ws.close_code, time.monotonic() - t0

    code, elapsed = run(talk(), 20)
    assert 1.5 <= elapsed <= 4.5, elapsed
    if not IS_NGINX:
        assert code == 1001


@pytest.mark.switchyard_only
def test_upgrade_to_unreachable_upstream_is_explained(switchyard, ws_backend):
    """A WebSocket whose upstream refuses the connection: 502 and one log line
    naming the client, the location, the upstream and the reason."""
    dead = free_port()
    sy, p, be = start_ws(switchyard, ws_backend, "first")
    conf = sy.conf_text.replace(f"127.0.0.1:{be.port}", f"127.0.0.1:{dead}")
    sy.reload(conf)
    mark = sy.log_mark()

    async def talk():
        with pytest.raises(websockets.InvalidStatusCode) as ei:
            async with ws_connect(p, "/ws/dead"):
                pass
        return ei.value.status_code

    assert run(talk(), 10) == 502
    line = sy.wait_log(r"connect\(\) failed \(111: Connection refused\).*client: 127\.0\.0\.1.*"
                       r"upstream: .*127\.0\.0\.1:%d.*location: \"/ws\"" % dead, 5, since=mark)
    assert line


@pytest.mark.switchyard_only
def test_ping_interval_keeps_idle_tunnel_alive(switchyard, ws_backend):
    """websocket_ping_interval 1s + websocket_idle_timeout 3s: 6 s without
    application traffic and the tunnel is still up; neither peer gets a pong
    it did not ask for (the proxy swallows the answers to its own pings) and
    the client receives no frame but pings."""
    sy, p, be = start_ws(switchyard, ws_backend, "first",
                         loc_extra="websocket_ping_interval 1s; websocket_idle_timeout 3s;")

    async def talk():
        async with ws_connect(p, "/ws/pinged", create_protocol=Recording) as ws:
            await ws.send("start")
            assert await ws.recv() == "start"
            ws.frames_seen.clear()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 6)
            assert ws.open, f"closed: {ws.close_code} {ws.close_reason}"
            idle_frames = list(ws.frames_seen)
            # the client's own pings still go end to end
            waiter = await ws.ping(b"client's own")
            await asyncio.wait_for(waiter, 3)
            await ws.send("after 6 s")
            assert await ws.recv() == "after 6 s"
            return idle_frames

    idle_frames = run(talk(), 30)
    opcodes = [op for op, _ in idle_frames]
    assert all(op == Opcode.PING for op in opcodes), opcodes
    assert Opcode.PONG not in opcodes
    assert be.find("pong") == [], "the backend received a pong it never asked for"
    proxy_pings_to_backend = [e for e in be.find("ping") if e["data"] != "client's own"]
    assert len(opcodes) + len(proxy_pings_to_backend) >= 3, \
        "no keep-alive pings from the proxy in 6 s with websocket_ping_interval 1s"
    assert be.wait_event("ping", data="client's own")


@pytest.mark.switchyard_only
def test_ping_timeout_closes_unresponsive_client(switchyard, ws_backend):
    """A client that never answers pings is closed after websocket_ping_timeout,
    with a close frame; the backend side is closed too."""
    sy, p, be = start_ws(switchyard, ws_backend, "first",
                         loc_extra="websocket_ping_interval 1s; websocket_ping_timeout 1s;",
                         http_extra=TUNNEL_LOG_FORMAT, server_extra=TUNNEL_LOG)
    with RawWs(p) as c:
        key, status, headers, raw = c.handshake("/ws/deaf")
        assert status == 101
        t0 = time.monotonic()
        frames = []
        while len(frames) < 20:
            f = c.read_frame(timeout=max(0.1, t0 + 6 - time.monotonic()))
            if f is None:
                break
            frames.append(f)
            if f[1] == OP_CLOSE:
                break
        elapsed = time.monotonic() - t0
    ops = [f[1] for f in frames]
    assert OP_PING in ops, ops
    assert OP_PONG not in ops
    assert ops[-1] == OP_CLOSE, ops
    code = int.from_bytes(frames[-1][2][:2], "big")
    assert_switchyard_close(code, frames[-1][2][2:].decode())
    assert elapsed <= 4.5
    be.wait_event("ws_close", timeout=3)
    assert tunnel_log_line(sy, "/ws/deaf")["reason"] == "ping timeout"


@pytest.mark.switchyard_only
def test_graceful_shutdown_closes_tunnels(switchyard, ws_backend):
    """SIGQUIT with a tunnel open: both peers get a close frame, the tunnel is
    logged with reason "shutdown" and the proxy exits 0."""
    sy, p, be = start_ws(switchyard, ws_backend, "first",
                         http_extra=TUNNEL_LOG_FORMAT, server_extra=TUNNEL_LOG)

    async def talk():
        async with ws_connect(p, "/ws/shutdown") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            sy.signal(signal.SIGQUIT)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            await asyncio.wait_for(ws.wait_closed(), 5)
            return ws.close_code, ws.close_reason

    code, reason = run(talk(), 20)
    assert_switchyard_close(code, reason)
    ev = be.wait_event("ws_close", timeout=5)
    assert ev["code"] in (1001, 1011)
    assert sy.wait_exit(10) == 0
    problems = sy.stop(expect_running=False)
    assert problems == []
    assert tunnel_log_line(sy, "/ws/shutdown")["reason"] == "shutdown"


@pytest.mark.switchyard_only
def test_graceful_shutdown_keeps_tunnels_until_worker_shutdown_timeout(switchyard, ws_backend):
    """With worker_shutdown_timeout, SIGQUIT stops accepting at once but open
    tunnels keep working until the deadline; then each client gets 1001
    "going away" and the upstream a clean close, and the process exits 0."""
    sy, p, be = start_ws(switchyard, ws_backend, "first", extra_main="worker_shutdown_timeout 2s;",
                         http_extra=TUNNEL_LOG_FORMAT, server_extra=TUNNEL_LOG)

    async def talk():
        async with ws_connect(p, "/ws/deadline") as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            mark = sy.log_mark()
            t0 = time.monotonic()
            sy.signal(signal.SIGQUIT)
            sy.wait_log("gracefully shutting down", since=mark)
            # the listening socket is closed: new connections are refused
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
            # the tunnel still carries messages before the deadline
            await ws.send("during")
            assert await ws.recv() == "during"
            assert time.monotonic() - t0 < 2.0
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 6)
            return ws.close_code, ws.close_reason, time.monotonic() - t0

    code, reason, elapsed = run(talk(), 20)
    assert code == 1001 and reason, (code, reason)
    assert 1.8 <= elapsed <= 4.0, elapsed
    ev = be.wait_event("ws_close", timeout=5)
    assert ev["code"] == 1001
    assert sy.wait_exit(10) == 0
    assert sy.stop(expect_running=False) == []
    assert "worker_shutdown_timeout reached, closing 1 tunnels" in sy.error_log()
    assert tunnel_log_line(sy, "/ws/deadline")["reason"] == "shutdown"


# --------------------------------------------------------------------------
# many tunnels

CLIENT_SCRIPT = r'''
import asyncio, json, sys
import websockets

async def main(port, n, tag):
    sem = asyncio.Semaphore(50)

    async def open_one(i):
        async with sem:
            return await websockets.connect(
                f"ws://127.0.0.1:{port}/ws/many-{tag}-{i}", ping_interval=None,
                compression=None, open_timeout=30, close_timeout=10)

    socks = await asyncio.gather(*(open_one(i) for i in range(n)))
    print(json.dumps({"opened": len(socks)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)

    async def echo(i, ws):
        ok = 0
        for r in range(3):
            msg = f"{tag}:{i}:{r}:" + "e" * ((i * 7 + r) % 200)
            await ws.send(msg)
            ok += (await ws.recv()) == msg
        return ok

    results = await asyncio.gather(*(echo(i, ws) for i, ws in enumerate(socks)))
    await asyncio.gather(*(ws.close() for ws in socks))
    print(json.dumps({"echo_ok": sum(results), "echo_total": 3 * n}), flush=True)

asyncio.run(asyncio.wait_for(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]), 150))
'''


class Clients:
    """Client processes (each <= 500 WebSockets) that open their sockets,
    report, wait for "go", echo 3 messages on each, close and report."""

    def __init__(self, port: int, counts: list[int], log_dir, tag: str):
        assert all(n <= 500 for n in counts)
        self.counts = counts
        self.procs = []
        for i, n in enumerate(counts):
            err = open(log_dir / f"clients-{tag}-{i}.stderr", "wb")
            self.procs.append((subprocess.Popen(
                [sys.executable, "-c", CLIENT_SCRIPT, str(port), str(n), f"{tag}{i}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err), err))

    def read_reports(self, timeout: float) -> list[dict]:
        out = []
        deadline = time.monotonic() + timeout
        for proc, err in self.procs:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"client process {proc.pid} silent for {timeout}s: "
                                         f"{self._stderr(err)}")
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"client process {proc.pid} died: {self._stderr(err)}")
            out.append(json.loads(line))
        return out

    @staticmethod
    def _stderr(err) -> str:
        err.flush()
        return open(err.name, "rb").read().decode("utf-8", "replace")[-3000:]

    def go(self):
        for proc, _ in self.procs:
            proc.stdin.write(b"go\n")
            proc.stdin.flush()

    def finish(self, timeout: float = 60) -> list[int]:
        codes = []
        for proc, err in self.procs:
            codes.append(proc.wait(timeout=timeout))
            err.close()
        return codes

    def kill(self):
        for proc, err in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            err.close()


def many_conf(be, p, kind=KIND):
    """2,000 connections (client + upstream side) need more than the
    harness's worker_connections 1024."""
    conf = ws_conf(kind, be.addr, p, extra_main="worker_rlimit_nofile 8192;")
    assert "worker_connections 1024;" in conf
    return conf.replace("worker_connections 1024;", "worker_connections 4096;")


def open_many(p, be, tmp_path, counts, tag):
    """Start client processes, wait until all their WebSockets are open at
    the client and at the backend; returns the Clients."""
    cl = Clients(p, counts, tmp_path, tag)
    try:
        reports = cl.read_reports(timeout=90)
        assert [r["opened"] for r in reports] == counts
        wait_until(lambda: be.stats()["open_ws"] == sum(counts), 30,
                   f"{sum(counts)} WebSockets open at the backend")
    except BaseException:
        cl.kill()
        raise
    return cl


def close_many(cl, counts):
    try:
        cl.go()
        reports = cl.read_reports(timeout=90)
        assert [r["echo_ok"] for r in reports] == [3 * n for n in counts]
        assert cl.finish() == [0] * len(counts)
    finally:
        cl.kill()


def test_1000_concurrent_websockets(switchyard, ws_backend, tmp_path):
    be = ws_backend("ws", quiet=True)
    p = free_port()
    switchyard(many_conf(be, p))
    counts = [500, 500]
    cl = open_many(p, be, tmp_path, counts, "c")
    st = be.stats()
    assert st["open_ws"] == 1000
    close_many(cl, counts)
    assert be.stats()["ws_total"] == 1000
    wait_until(lambda: be.stats()["open_ws"] == 0, 10, "all WebSockets closed at the backend")


@pytest.mark.switchyard_only
def test_idle_tunnels_hold_no_buffers(switchyard, ws_backend, tmp_path):
    """1,000 idle WebSockets cost the proxy less than 4 KiB each."""
    if binary_is_sanitized():
        pytest.skip("RSS is not comparable under AddressSanitizer")
    be = ws_backend("ws", quiet=True)
    p = free_port()
    sy = switchyard(many_conf(be, p, "first"))
    # warm-up: let the proxy reach its steady state (pools, arenas) first
    close_many(open_many(p, be, tmp_path, [200], "w"), [200])
    wait_until(lambda: be.stats()["open_ws"] == 0, 10, "warm-up WebSockets closed")
    base = sy.rss_kb()
    counts = [500, 500]
    cl = open_many(p, be, tmp_path, counts, "i")
    after = sy.rss_kb()
    per_conn = (after - base) * 1024 / 1000
    close_many(cl, counts)
    assert per_conn < 4096, f"{per_conn:.0f} bytes per idle WebSocket (RSS {base} -> {after} KiB)"


# --------------------------------------------------------------------------
# access log


@pytest.mark.switchyard_only
def test_access_log_tunnel_variables(switchyard, ws_backend):
    sy, p, be = start_ws(switchyard, ws_backend, "first",
                         http_extra=TUNNEL_LOG_FORMAT, server_extra=TUNNEL_LOG)
    msg = "m" * 1000
    blob = os.urandom(2000)

    async def client_closes():
        t0 = time.monotonic()
        async with ws_connect(p, "/ws/log-client") as ws:
            for _ in range(10):
                await ws.send(msg)
                assert await ws.recv() == msg
            await ws.close(1000, "done")
        return time.monotonic() - t0

    async def upstream_closes():
        t0 = time.monotonic()
        async with ws_connect(p, "/ws/log-upstream") as ws:
            for _ in range(5):
                await ws.send(blob)
                assert await ws.recv() == blob
            await ws.send("__close__ 4002 later")
            await asyncio.wait_for(ws.wait_closed(), 5)
        return time.monotonic() - t0

    wall = run(client_closes(), 20)
    a = tunnel_log_line(sy, "/ws/log-client")
    assert a["status"] == 101
    assert 0 < a["duration"] <= wall + 0.5
    # 10 x 1000 payload bytes each way, plus frame headers and the close frames
    assert 10000 <= a["from_client"] <= 10000 + 2048, a
    assert 10000 <= a["from_upstream"] <= 10000 + 2048, a
    assert a["reason"] == "client closed"

    wall = run(upstream_closes(), 20)
    b = tunnel_log_line(sy, "/ws/log-upstream")
    assert b["status"] == 101
    assert 0 < b["duration"] <= wall + 0.5
    assert 10000 <= b["from_client"] <= 10000 + 2048, b
    assert 10000 <= b["from_upstream"] <= 10000 + 2048, b
    assert b["reason"] == "upstream closed"
