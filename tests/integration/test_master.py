"""The master process: it forks `worker_processes` workers that serve the
listening sockets it opened, replaces a worker that dies, switches workers to
the configured `user`, and stops cleanly on SIGQUIT. (The full process-model
work, with reloads under load, is its own issue.)"""
import os
import signal
import subprocess
from types import SimpleNamespace

import pytest

from harness import (SANITIZER_MARKERS, BIN, _proc_children, free_port, only_worker, proc_alive,
                     proc_uid, read_pid_file, request, wait_pid_file, wait_replaced,
                     wait_until)

pytestmark = pytest.mark.switchyard_only


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


def wait_workers_uid(p, uid: int):
    """A worker appears as root and switches to `user` a moment later: wait
    (bounded) until every worker of master `p` runs as `uid`."""
    wait_until(lambda: all(proc_uid(k) == uid for k in _proc_children(p.pid)), 10,
               f"every worker running as uid {uid}")


@pytest.fixture
def master(tmp_path):
    procs = []

    def start(extra_main: str):
        port = free_port()
        (tmp_path / "logs").mkdir(exist_ok=True)
        conf = tmp_path / "sy.conf"
        conf.write_text(f"""
{extra_main}
events {{ }}
http {{
    access_log off;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200 "pid $pid\\n"; }} }}
}}
""")
        p = subprocess.Popen([str(BIN), "-p", f"{tmp_path}/", "-c", str(conf), "-e",
                              str(tmp_path / "error.log"),
                              "-g", f"daemon off; pid {tmp_path}/sy.pid;"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / "stderr", "wb"))
        procs.append(p)
        wait_until(lambda: (tmp_path / "sy.pid").exists(), 10, "the pid file")
        return p, port

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            try:
                assert p.wait(10) == 0
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("master did not stop on SIGQUIT")
    err = (tmp_path / "stderr").read_bytes().decode(errors="replace")
    assert not any(m in err for m in SANITIZER_MARKERS), err


def test_workers_serve_and_master_stops_on_quit(master):
    p, port = master("worker_processes 2;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    kids = set(_proc_children(p.pid))
    seen = {int(request(port, "GET", "/").text.split()[1]) for _ in range(20)}
    assert seen <= kids and seen, (seen, kids)
    assert p.pid not in seen  # the master never handles traffic
    p.send_signal(signal.SIGQUIT)
    assert p.wait(10) == 0
    assert not [k for k in kids if proc_alive(k)]


def test_killed_worker_is_replaced(master, tmp_path):
    p, port = master("worker_processes 1;")
    wait_until(lambda: len(_proc_children(p.pid)) == 1, 10, "one worker")
    (old,) = _proc_children(p.pid)
    os.kill(old, signal.SIGKILL)
    wait_replaced(lambda: _proc_children(p.pid), old, 1)
    wait_until(lambda: request(port, "GET", "/").status == 200, 10, "service after the restart")  # socket kept by the master
    # after start-up the master logs to the configured error_log (logs/error.log)
    wait_until(lambda: f"worker process {old} exited on signal 9"
               in (tmp_path / "logs" / "error.log").read_text(), 5, "the restart logged")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_workers_run_as_the_configured_user(master):
    p, port = master("worker_processes 2; user nobody nogroup;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    assert uid_of(p.pid) == 0  # the master keeps root (it re-reads keys, binds ports)
    wait_workers_uid(p, 65534)
    assert all(uid_of(k) == 65534 for k in _proc_children(p.pid))
    assert request(port, "GET", "/").status == 200


def test_reload_adds_a_listen_port_for_every_worker(master, tmp_path):
    """A `listen` line added by a reload is opened by the master and handed to
    every worker (workers never bind: they may run unprivileged), and a worker
    started after the reload gets the new configuration."""
    p, port = master("worker_processes 2;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    conf = tmp_path / "sy.conf"
    port2 = free_port()
    conf.write_text(conf.read_text().replace(
        "location / {", "location /v2 { return 200 \"v2 $pid\\n\"; } location / {").replace(
        f"listen 127.0.0.1:{port};", f"listen 127.0.0.1:{port}; listen 127.0.0.1:{port2};"))
    p.send_signal(signal.SIGHUP)

    def new_port_serves():
        try:
            return request(port2, "GET", "/v2").status == 200
        except OSError:
            return False  # the reload is asynchronous: not listening yet
    wait_until(new_port_serves, 10, "the new port")
    kids = set(_proc_children(p.pid))
    assert len(kids) == 2
    # each worker serves the new port and the new routes on the old one (the
    # workers reload one after the other: the first answer above says only
    # that one of them has); the worker under test is the only one running
    m = SimpleNamespace(workers=lambda: _proc_children(p.pid))
    for w in sorted(kids):
        with only_worker(m, w):
            assert request(port2, "GET", "/v2").text == f"v2 {w}\n"
            assert request(port, "GET", "/v2").text == f"v2 {w}\n"
    log = (tmp_path / "logs" / "error.log").read_text()
    assert "bind()" not in log and "[emerg]" not in log, log
    # a worker replacing a dead one starts with the reloaded configuration
    victim = sorted(kids)[0]
    os.kill(victim, signal.SIGKILL)
    wait_replaced(lambda: _proc_children(p.pid), victim, 2)
    for _ in range(50):
        assert request(port2, "GET", "/v2").status == 200


def test_worker_rlimit_nofile_applied(master):
    p, port = master("worker_processes 1; worker_rlimit_nofile 4096;")
    wait_until(lambda: len(_proc_children(p.pid)) == 1, 10, "one worker")
    (w,) = _proc_children(p.pid)

    def soft_limit():
        for line in open(f"/proc/{w}/limits").read().splitlines():
            if line.startswith("Max open files"):
                return line.split()[3]
    # the worker sets it as it starts: wait for it (bounded), then check exactly
    wait_until(lambda: soft_limit() == "4096", 5, "the worker's open-file limit")
    assert request(port, "GET", "/").status == 200


def cpus_allowed(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split()[1]
    raise AssertionError("no Cpus_allowed_list line")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
@pytest.mark.parametrize("affinity", ["auto", "01 10"])
def test_worker_cpu_affinity(master, affinity):
    """Each worker is bound to its own CPU; a replacement worker takes the
    CPU of the one it replaces."""
    p, port = master(f"worker_processes 2; worker_cpu_affinity {affinity};")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    kids = _proc_children(p.pid)
    # set by each worker as it starts (bounded wait), then exactly one CPU each
    wait_until(lambda: sorted(cpus_allowed(k) for k in kids) == ["0", "1"], 5,
               "each worker on its own CPU")
    assert "-" in cpus_allowed(p.pid) or "," in cpus_allowed(p.pid)  # not the master
    on_cpu1 = next(k for k in kids if cpus_allowed(k) == "1")
    os.kill(on_cpu1, signal.SIGKILL)
    (new,) = set(wait_replaced(lambda: _proc_children(p.pid), on_cpu1, 2)) - set(kids)
    wait_until(lambda: cpus_allowed(new) == "1", 5, "the replacement on CPU 1")
    assert request(port, "GET", "/").status == 200


def reload_with(p, tmp_path, old: str, new: str):
    conf = tmp_path / "sy.conf"
    text = conf.read_text()
    assert old in text
    conf.write_text(text.replace(old, new))
    p.send_signal(signal.SIGHUP)


def test_reload_changes_the_number_of_workers(master, tmp_path):
    """More worker_processes: the existing workers stay (and reload in place),
    new ones are started; fewer: the extra ones finish gracefully and are not
    replaced."""
    p, port = master("worker_processes 2;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    first = set(_proc_children(p.pid))
    reload_with(p, tmp_path, "worker_processes 2;", "worker_processes 4;")
    wait_until(lambda: len(_proc_children(p.pid)) == 4, 10, "four workers")
    assert first <= set(_proc_children(p.pid))
    reload_with(p, tmp_path, "worker_processes 4;", "worker_processes 1;")
    wait_until(lambda: len(_proc_children(p.pid)) == 1, 10, "one worker left")
    assert set(_proc_children(p.pid)) <= first  # the first slot's worker stays
    for _ in range(20):
        assert request(port, "GET", "/").status == 200


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_reload_with_another_user_replaces_the_workers(master, tmp_path):
    """A worker cannot switch users again: a new user or group starts a new
    set of workers as that user, and the old set finishes gracefully."""
    p, port = master("worker_processes 2; user nobody nogroup;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    old = set(_proc_children(p.pid))
    reload_with(p, tmp_path, "user nobody nogroup;", "user daemon daemon;")

    def replaced():
        kids = set(_proc_children(p.pid))
        return len(kids) == 2 and not (kids & old)
    wait_until(replaced, 10, "two new workers")
    wait_workers_uid(p, 1)  # daemon
    assert request(port, "GET", "/").status == 200


def test_sighup_with_broken_config_keeps_workers_and_configuration(master, tmp_path):
    """Under a master: a broken configuration is logged with file:line, the
    workers (same processes) keep serving the old one, and a fixed one then
    reloads."""
    p, port = master("worker_processes 2;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    kids = set(_proc_children(p.pid))
    conf = tmp_path / "sy.conf"
    good = conf.read_text()
    broken = good.replace('return 200 "pid $pid\\n";', 'return 200 "new";\n bogus_directive 1;')
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "bogus_directive" in ln)
    conf.write_text(broken)
    p.send_signal(signal.SIGHUP)
    log = tmp_path / "logs" / "error.log"
    wait_until(lambda: f'unknown directive "bogus_directive" in {conf}:{line}' in log.read_text(),
               10, "the error with file:line")
    wait_until(lambda: "reload failed, still running with the previous configuration"
               in log.read_text(), 5, "the refusal logged")
    for _ in range(20):
        assert request(port, "GET", "/").text.startswith("pid ")
    assert set(_proc_children(p.pid)) == kids
    conf.write_text(good.replace('return 200 "pid $pid\\n";', 'return 200 "fixed";'))
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: request(port, "GET", "/").text == "fixed", 10, "the fixed configuration")
    assert set(_proc_children(p.pid)) == kids


def test_daemon_on_detaches_and_stops_with_s_quit(tmp_path):
    """daemon on (the default): the command returns at once, the master runs
    detached (its pid in the pid file), serves, and `-s quit` stops it."""
    port = free_port()
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "sy.conf"
    conf.write_text(f"""
worker_processes 2;
pid {tmp_path}/sy.pid;
events {{ }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; location / {{ return 200 "up\\n"; }} }} }}
""")
    master = None
    try:
        r = subprocess.run([str(BIN), "-p", f"{tmp_path}/", "-c", str(conf)], capture_output=True,
                           timeout=10)
        assert r.returncode == 0, r.stderr
        master = wait_pid_file(tmp_path / "sy.pid")
        assert request(port, "GET", "/").text == "up\n"
        wait_until(lambda: len(_proc_children(master)) == 2, 10, "two workers")
        with open(f"/proc/{master}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        assert ppid != os.getpid()  # detached from the command that started it
    finally:
        # a daemon is nobody's child: stop it whatever happened above
        if master is None:
            master = read_pid_file(tmp_path / "sy.pid")
        if master is not None:
            q = subprocess.run([str(BIN), "-p", f"{tmp_path}/", "-c", str(conf), "-s", "quit"],
                               capture_output=True, timeout=10)
            assert q.returncode == 0, q.stderr
            wait_until(lambda: not proc_alive(master), 10, "the master to exit")
    assert not (tmp_path / "sy.pid").exists()


def test_sigterm_stops_at_once_with_connections_open(master, tmp_path):
    """stop (SIGTERM): workers close everything now, even open keep-alive
    connections, and the master exits 0."""
    import socket
    p, port = master("worker_processes 2;")
    wait_until(lambda: len(_proc_children(p.pid)) == 2, 10, "two workers")
    kids = _proc_children(p.pid)
    conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
    for c in conns:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 200")
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0
    for c in conns:
        c.settimeout(5)
        assert c.recv(100) == b""  # closed by the worker
        c.close()
    assert not [k for k in kids if proc_alive(k)]
