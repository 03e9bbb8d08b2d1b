"""Upgrading the binary on the fly, as nginx (docs/operations.md): SIGUSR2
starts the binary now installed at the same path with the listening sockets,
next to the running instance (its pid file becomes NAME.oldbin); WINCH lets
the old workers finish; QUIT ends the old master. Not one request is
refused on the way. A new binary that cannot start gives the pid file back;
HUP after WINCH brings the old workers back (a rollback).

Switchyard only: nginx refuses USR2 from a master that is not a daemon (its
parent is not init), as these test masters are; Switchyard refuses it only
while the other binary of an upgrade still runs (docs/operations.md).
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import BIN, IS_NGINX, _proc_children, free_port, port_open, request, wait_until

pytestmark = pytest.mark.switchyard_only


class Instance:
    """A master started from a copy of the binary in tmp/bin (so that the
    test can install another one at the same path)."""

    def __init__(self, tmp_path, env=None):
        self.dir = tmp_path
        self.bin = tmp_path / "bin" / BIN.name
        self.bin.parent.mkdir()
        shutil.copy2(BIN, self.bin)
        (tmp_path / "logs").mkdir()
        self.port = free_port()
        self.pid_file = tmp_path / "m.pid"
        user = " user root;" if IS_NGINX else ""
        (tmp_path / "m.conf").write_text(f"""
daemon off; master_process on; worker_processes 2;{user}
pid {self.pid_file};
error_log {tmp_path}/logs/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{ return 200 "$pid\\n"; }}
    }}
}}
""")
        self.proc = subprocess.Popen(
            [str(self.bin), "-p", f"{tmp_path}/", "-c", str(tmp_path / "m.conf"),
             "-e", str(tmp_path / "logs/error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env)
        wait_until(lambda: port_open(self.port) and self.pid_file.exists(), 10, "the master")
        wait_until(lambda: len(_proc_children(self.proc.pid)) == 2, 10, "two workers")

    def log(self) -> str:
        return (self.dir / "logs/error.log").read_text(errors="replace")

    def served_by(self) -> int:
        return int(request(self.port, target="/").body)

    def pids_in_file(self, suffix="") -> int:
        """The pid in the file (0 while it is absent)."""
        try:
            return int((self.dir / f"m.pid{suffix}").read_text())
        except FileNotFoundError:
            return 0

    def install_new_binary(self, content: bytes | None = None):
        """Replace the file at the binary's path (a new inode, as a package
        upgrade does), by the same program or by `content`."""
        tmp = self.bin.with_name("new")
        if content is None:
            shutil.copy2(BIN, tmp)
        else:
            tmp.write_bytes(content)
            tmp.chmod(0o755)
        os.replace(tmp, self.bin)

    def stop_all(self, *pids):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
        self.proc.wait(15)


class Load:
    """Requests on new connections, one after another, until stopped: each
    one's outcome (the pid that answered, or the error)."""

    def __init__(self, port):
        self.port = port
        self.answers, self.errors = [], []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.answers.append(int(request(self.port, target="/", timeout=5).body))
            except Exception as e:  # noqa: BLE001 (every failure counts)
                self.errors.append(repr(e))

    def finish(self):
        self.stop.set()
        self.t.join(10)


def children_of(pid):
    return set(_proc_children(pid))


def test_usr2_winch_quit_upgrades_without_refusing_a_request(tmp_path):
    inst = Instance(tmp_path)
    old = inst.proc.pid
    old_workers = children_of(old)
    inst.install_new_binary()
    new_ino = os.stat(inst.bin).st_ino
    load = Load(inst.port)
    new = None
    try:
        wait_until(lambda: len(load.answers) >= 20, 10, "requests before the upgrade")
        os.kill(old, signal.SIGUSR2)
        wait_until(lambda: (tmp_path / "m.pid.oldbin").exists() and inst.pid_file.exists()
                   and inst.pids_in_file() != old, 10, "the new master's pid file")
        assert inst.pids_in_file(".oldbin") == old
        new = inst.pids_in_file()
        assert os.stat(f"/proc/{new}/exe").st_ino == new_ino  # the binary installed now
        wait_until(lambda: len(children_of(new)) == 2, 10, "the new workers")
        new_workers = children_of(new)
        # one upgrade at a time: the new master refuses another while the old runs
        os.kill(new, signal.SIGUSR2)
        wait_until(lambda: "changing binary signal is ignored" in inst.log(), 10,
                   "the refusal")
        assert len(children_of(new)) == 2
        # both sets serve until the old one is told to stop
        mark = len(load.answers)
        wait_until(lambda: set(load.answers[mark:]) & new_workers, 10,
                   "a request answered by a new worker")
        os.kill(old, signal.SIGWINCH)
        wait_until(lambda: children_of(old) <= {new}, 15, "the old workers to finish")
        # the request in flight may still be the old workers'; the next ones not
        mark = len(load.answers) + 1
        wait_until(lambda: len(load.answers) >= mark + 20, 10, "requests after WINCH")
        assert set(load.answers[mark:]) <= new_workers
        os.kill(old, signal.SIGQUIT)
        assert inst.proc.wait(15) == 0
        assert not (tmp_path / "m.pid.oldbin").exists()
        assert inst.pids_in_file() == new
        mark = len(load.answers)
        wait_until(lambda: len(load.answers) >= mark + 20, 10, "requests after the old master")
    finally:
        load.finish()
        inst.stop_all(*([new] if new else []))
    assert not load.errors, load.errors[:5]
    assert set(load.answers) <= old_workers | new_workers
    if new:
        wait_until(lambda: not os.path.exists(f"/proc/{new}"), 15, "the new master to exit")


def test_a_new_binary_that_cannot_start_gives_the_pid_file_back(tmp_path):
    inst = Instance(tmp_path)
    old = inst.proc.pid
    try:
        inst.install_new_binary(b"#!/bin/sh\nexit 1\n")
        os.kill(old, signal.SIGUSR2)
        wait_until(lambda: "exited with code 1" in inst.log(), 10, "the new binary's exit")
        wait_until(lambda: inst.pid_file.exists() and inst.pids_in_file() == old, 10,
                   "the pid file given back")
        assert not (tmp_path / "m.pid.oldbin").exists()
        assert inst.served_by() in children_of(old)
    finally:
        inst.stop_all()


def test_hup_after_winch_brings_the_workers_back(tmp_path):
    """The rollback: the old master's workers stopped (WINCH), HUP starts
    them again with the same configuration."""
    inst = Instance(tmp_path)
    old = inst.proc.pid
    new = None
    try:
        inst.install_new_binary()
        os.kill(old, signal.SIGUSR2)
        wait_until(lambda: inst.pid_file.exists() and inst.pids_in_file() != old, 10,
                   "the new master")
        new = inst.pids_in_file()
        wait_until(lambda: len(children_of(new)) == 2, 10, "the new workers")
        os.kill(old, signal.SIGWINCH)
        wait_until(lambda: children_of(old) <= {new}, 15, "the old workers to finish")
        os.kill(old, signal.SIGHUP)
        wait_until(lambda: len(children_of(old) - {new}) == 2, 10, "the old workers again")
        # the new binary goes; the old instance serves alone again
        os.kill(new, signal.SIGQUIT)
        wait_until(lambda: inst.pid_file.exists() and inst.pids_in_file() == old, 15,
                   "the pid file given back")
        workers = children_of(old)
        assert all(inst.served_by() in workers for _ in range(10))
    finally:
        inst.stop_all(*([new] if new else []))


def test_new_master_tells_systemd_its_pid(tmp_path):
    """Under systemd (NotifyAccess=all in the unit), the new master reports
    READY=1 with its MAINPID; the old one does not say STOPPING as it goes."""
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(10)
    inst = Instance(tmp_path, env=dict(os.environ, NOTIFY_SOCKET=addr))
    old = inst.proc.pid
    new = None
    seen = []

    def until(pred):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = dict(x.split("=", 1) for x in sock.recv(4096).decode().split("\n") if "=" in x)
            seen.append(msg)
            if pred(msg):
                return msg
        raise AssertionError(f"not seen; got {seen}")
    try:
        until(lambda m: m.get("READY") == "1" and m.get("MAINPID") == str(old))
        inst.install_new_binary()
        os.kill(old, signal.SIGUSR2)
        msg = until(lambda m: m.get("READY") == "1" and m.get("MAINPID") != str(old))
        new = int(msg["MAINPID"])
        assert new == inst.pids_in_file()
        os.kill(old, signal.SIGQUIT)
        assert inst.proc.wait(15) == 0
        sock.settimeout(0.5)
        try:
            while True:
                seen.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        assert not any("STOPPING=1" in str(m) for m in seen), seen
    finally:
        inst.stop_all(*([new] if new else []))
        sock.close()
