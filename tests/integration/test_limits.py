"""Connection limits: worker_connections.

A worker that reaches worker_connections (client connections plus tunnels)
stops accepting — it does not accept and close — so other workers take the
new connections, or they wait in the listen backlog until one closes; the
worker says so once in the error log and resumes by itself.
"""
import signal
import socket
import subprocess

import pytest

from harness import SANITIZER_MARKERS, BIN, _proc_children, free_port, wait_until

pytestmark = pytest.mark.switchyard_only


def conf(port: int, main: str, limit: int) -> str:
    return f"""
{main}
error_log logs/error.log notice;
events {{ worker_connections {limit}; }}
http {{
    access_log off;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200 "pid $pid\\n"; }} }}
}}
"""


def ask(s: socket.socket) -> bytes:
    """One keep-alive request on `s`; the whole (small) response."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().split(b"\n")[-1].startswith(b"pid"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


@pytest.fixture
def run(tmp_path):
    procs = []

    def start(text: str) -> subprocess.Popen:
        (tmp_path / "logs").mkdir(exist_ok=True)
        (tmp_path / "sy.conf").write_text(text)
        p = subprocess.Popen([str(BIN), "-p", f"{tmp_path}/", "-c", str(tmp_path / "sy.conf"),
                              "-g", f"daemon off; pid {tmp_path}/sy.pid;"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / "stderr", "wb"))
        procs.append(p)
        wait_until(lambda: (tmp_path / "sy.pid").exists(), 10, "the pid file")
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    err = (tmp_path / "stderr").read_text(errors="replace")
    assert not any(m in err for m in SANITIZER_MARKERS), err


def test_full_worker_stops_accepting_and_resumes(run, tmp_path):
    port = free_port()
    run(conf(port, "master_process off;", 3))
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    for s in held:
        assert ask(s).startswith(b"HTTP/1.1 200")
    log = tmp_path / "logs" / "error.log"
    wait_until(lambda: "3 worker_connections reached" in log.read_text(), 5, "the warning")
    # the 4th connection is not accepted (not closed either): it waits
    extra = socket.create_connection(("127.0.0.1", port), timeout=5)
    extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    extra.settimeout(0.5)
    with pytest.raises(socket.timeout):
        extra.recv(100)  # bounded: no answer while the worker is full
    held.pop().close()  # room again: the waiting connection is served
    extra.settimeout(5)
    data = extra.recv(4096)
    assert data.startswith(b"HTTP/1.1 200"), data
    wait_until(lambda: "accepting connections again" in log.read_text(), 5, "the resume")
    for s in held + [extra]:
        s.close()


def test_full_worker_leaves_new_connections_to_the_others(run, tmp_path):
    """Two workers, 3 connections each: 6 concurrent keep-alive connections
    are all served, whichever worker the kernel wakes first."""
    port = free_port()
    p = run(conf(port, "worker_processes 2;", 3))
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    held, pids = [], []
    for _ in range(6):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(s)
        pids.append(int(ask(s).split(b"pid ")[1].split()[0]))
    assert sorted(pids.count(k) for k in set(pids)) == [3, 3], pids
    for s in held:
        s.close()
