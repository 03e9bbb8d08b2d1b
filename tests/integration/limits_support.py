"""Helpers for the limit_req / limit_conn tests (test_limit_req.py,
test_limit_conn.py): raw requests from a chosen loopback source address,
requests held open, and the proxy run as a master with several workers
(Switchyard and nginx alike) with a way to force which worker accepts.
"""

from __future__ import annotations

import re
import selectors
import signal
import socket
import time

import pytest

import harness
from harness import IS_NGINX, _proc_children, http_conf, read_until_close, wait_until

# access log of every test: one line per request, limit variables included
LOG_FORMAT = """\
    log_format lim '$request_uri $status $limit_req_status $limit_conn_status';
    access_log logs/lim.log lim;
"""


def lim_log(sy) -> list[list[str]]:
    """The lines of logs/lim.log, split: [uri, status, req_status, conn_status]."""
    try:
        text = (sy.prefix / "logs" / "lim.log").read_text()
    except FileNotFoundError:
        return []
    return [line.split() for line in text.splitlines() if line.strip()]


def wait_lim_log(sy, n: int, timeout: float = 5.0) -> list[list[str]]:
    """Wait until logs/lim.log has at least n lines; return them."""
    wait_until(lambda: len(lim_log(sy)) >= n, timeout, f"{n} lines in lim.log")
    return lim_log(sy)


def excess_re(n: int) -> str:
    """A regex for the `excess: X.XXX` logged by a 1r/m bucket when n
    requests are in it: n.000 at once, then it drains 0.001 per 60 ms, so a
    request that comes a little later (a loaded machine) logs (n-1).9xx."""
    return rf"(?:{n}\.000|{n - 1}\.9\d\d)"


def _status(data: bytes) -> int:
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    assert m, f"no status line in {data[:200]!r}"
    return int(m.group(1))


def get(port: int, path: str = "/", src: str = "127.0.0.1", headers=(),
        timeout: float = 10.0) -> int:
    """One GET on a fresh `Connection: close` connection from address `src`
    (any 127/8 address); returns the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(src, 0)) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n"
                  .encode())
        return _status(read_until_close(s, timeout))


def simultaneous_gets(port: int, paths: list[str],
                      timeout: float = 10.0) -> list[tuple[int, float]]:
    """GET each of `paths` on its own `Connection: close` connection, all
    sent at the same moment (connected first, then written back to back), so
    that the server sees them together however slow this client is. Returns
    [(status, seconds from the sending to the end of that answer)] in the
    order of `paths`."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=timeout) for _ in paths]
    try:
        reqs = [f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                .encode() for path in paths]
        t0 = time.monotonic()
        for s, req in zip(socks, reqs):
            s.sendall(req)
        data = [b""] * len(socks)
        took = [0.0] * len(socks)
        deadline = t0 + timeout
        with selectors.DefaultSelector() as sel:
            for i, s in enumerate(socks):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
            while sel.get_map() and time.monotonic() < deadline:
                for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                    i = key.data
                    try:
                        chunk = key.fileobj.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    if chunk:
                        data[i] += chunk
                    else:
                        took[i] = time.monotonic() - t0
                        sel.unregister(key.fileobj)
            assert not sel.get_map(), f"answers still open after {timeout}s"
        return [(_status(d), t) for d, t in zip(data, took)]
    finally:
        for s in socks:
            s.close()


def hold(port: int, path: str, src: str = "127.0.0.1") -> socket.socket:
    """Send a GET and leave its answer unread (the request stays in progress
    while the upstream holds it). Close the socket to abort."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    return s


def eventually_status(port: int, path: str, want: int, timeout: float = 5.0,
                      src: str = "127.0.0.1") -> int:
    """Repeat GET until it answers `want` (a released count may take the
    server a moment to notice the client's close). Returns the tries."""
    tries = 0

    def ok():
        nonlocal tries
        tries += 1
        return get(port, path, src) == want
    wait_until(ok, timeout, f"GET {path} -> {want}", interval=0.02)
    return tries


# --------------------------------------------------------------------------
# a master with several workers


class MasterProxy(harness.Switchyard):
    """The proxy run as `master_process on` with the configuration's
    worker_processes: Switchyard or nginx (as root, like the harness)."""

    def argv(self) -> list[str]:
        g = "daemon off; master_process on;"
        if IS_NGINX:
            g += " user root;"
        g += f" pid {self.pid_path}; error_log {self.error_log_path} notice;"
        return [str(harness.BIN), "-p", f"{self.prefix}/", "-c", str(self.conf_path),
                "-e", str(self.error_log_path), "-g", g]

    def workers(self) -> list[int]:
        return sorted(_proc_children(self.pid))

    def wait_workers(self, n: int, timeout: float = 10.0):
        wait_until(lambda: len(self.workers()) == n, timeout, f"{n} workers")

    def reload(self, new_conf_text: str, timeout: float = 10.0, wait_old: bool = True):
        """SIGHUP; return once the new configuration is live in every worker
        (Switchyard: each worker logs it; nginx: as many new workers run, and
        with `wait_old` the old ones have exited -- they linger while they
        finish requests in progress)."""
        pids = self.workers()
        mark = self.log_mark()
        self.conf_text = new_conf_text
        self.conf_path.write_text(new_conf_text)
        self.proc.send_signal(signal.SIGHUP)
        if IS_NGINX:
            def replaced():
                tail = self.error_log()[mark:]
                assert "[emerg]" not in tail, tail
                new = set(self.workers()) - set(pids)
                return len(new) == len(pids) and (not wait_old or not set(self.workers()) & set(pids))
            wait_until(replaced, timeout, "nginx workers to be replaced")
            return

        def live():
            tail = self.error_log()[mark:]
            assert "[emerg]" not in tail and "reload failed" not in tail, tail
            return all(re.search(rf"\] {p}#{p}: configuration generation \d+ is live", tail)
                       for p in pids)
        wait_until(live, timeout, "every worker on the new configuration")



def limits_conf(port: int, origin_addr: str, locations: str, zones: str,
                extra_main: str = "") -> str:
    """A server `limits.test` on `port` with `locations` (plus /pid answering
    the worker's pid), an upstream `origin` at `origin_addr`, the limit zones
    and the access log of LOG_FORMAT."""
    body = f"""
    server {{
        listen 127.0.0.1:{port};
        server_name limits.test;
        location /pid {{ return 200 "$pid"; }}
{locations}
    }}
    upstream origin {{ server {origin_addr}; }}
"""
    return http_conf(body, extra_http=LOG_FORMAT + zones, extra_main=extra_main)

def served_by(port: int, src: str = "127.0.0.1") -> int:
    """The pid of the worker answering GET /pid (a `return 200 $pid` location)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(src, 0)) as s:
        s.sendall(b"GET /pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = read_until_close(s, 10)
    assert _status(data) == 200, data
    return int(data.rsplit(b"\r\n\r\n", 1)[1].strip())


@pytest.fixture
def sy_workers(tmp_path):
    """Factory: sy_workers(conf_text) -> a started MasterProxy (the config
    sets worker_processes); stopped with SIGQUIT at teardown."""
    if not harness.BIN.exists():
        pytest.skip(f"{harness.BIN} is not built")
    started: list[MasterProxy] = []

    def start(conf_text: str, workers: int) -> MasterProxy:
        m = MasterProxy(tmp_path / f"m{len(started)}", conf_text)
        started.append(m)
        m.start()
        m.wait_workers(workers)
        return m

    yield start
    problems = []
    for m in started:
        problems += m.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
