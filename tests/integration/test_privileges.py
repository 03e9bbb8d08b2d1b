"""Workers run as `user`, the master as root: what the workers cannot read or
create themselves, the master does for them.

- A reload loads a new root-only private key: the master reads and checks
  the configuration and every file it names, and hands the very bytes to the
  workers (a sealed memfd); the workers read nothing from disk.
- `reopen` (logrotate): the master creates the new log files and gives them
  to the workers' user, so the workers can open them.
"""
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import (SANITIZER_MARKERS, BIN, _proc_children, free_port, proc_uid, request,
                     wait_until)
from tls_pki import Pki

pytestmark = [pytest.mark.switchyard_only,
              pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")]

NOBODY = pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def prefix():
    """A prefix the workers' user may traverse (pytest's tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="sy-priv-", dir="/tmp"))
    d.chmod(0o755)
    (d / "logs").mkdir(mode=0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def install_key_pair(prefix: Path, crt: Path, key: Path):
    """Copy a pair into prefix/keys: a root-only directory, a root-only key."""
    keys = prefix / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(crt, keys / "site.crt")
    shutil.copy(key, keys / "site.key")
    (keys / "site.key").chmod(0o600)
    keys.chmod(0o700)


class Master:
    def __init__(self, prefix: Path, conf: str):
        self.prefix = prefix
        (prefix / "sy.conf").write_text(conf)
        self.stderr = open(prefix / "stderr", "wb")
        self.p = subprocess.Popen(
            [str(BIN), "-p", f"{prefix}/", "-c", str(prefix / "sy.conf"),
             "-g", f"daemon off; pid {prefix}/sy.pid;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        wait_until(lambda: (prefix / "sy.pid").exists(), 10, "the pid file")

    def workers(self):
        return _proc_children(self.p.pid)

    def error_log(self) -> str:
        try:
            return (self.prefix / "logs" / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGQUIT)
            try:
                assert self.p.wait(10) == 0
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("master did not stop on SIGQUIT")
        self.stderr.close()
        err = (self.prefix / "stderr").read_text(errors="replace")
        assert not any(m in err for m in SANITIZER_MARKERS), err


@pytest.fixture
def master(prefix):  # stops before the prefix is removed
    started = []

    def start(prefix: Path, conf: str) -> Master:
        m = Master(prefix, conf)
        started.append(m)
        return m
    yield start
    for m in started:
        m.stop()


def tls_conf(port: int, workers: int = 2) -> str:
    return f"""
user nobody nogroup;
worker_processes {workers};
error_log logs/error.log notice;
events {{ }}
http {{
    access_log logs/access.log;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate keys/site.crt;
        ssl_certificate_key keys/site.key;
        location / {{ return 200 "pid $pid\\n"; }}
    }}
}}
"""


def served_cn(port: int, ca: Path) -> tuple[str, int]:
    """The CN of the certificate the server presents, and the pid that served."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as s:
            cert = s.getpeercert()
            cn = dict(x[0] for x in cert["subject"])["commonName"]
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    return cn, int(data.rsplit(b"pid ", 1)[1].split()[0])


def test_reload_loads_a_root_only_key_for_unprivileged_workers(master, prefix, pki):
    port = free_port()
    install_key_pair(prefix, *pki.cert("a.test"))
    m = master(prefix, tls_conf(port))
    wait_until(lambda: len(m.workers()) == 2, 10, "two workers")
    workers = set(m.workers())
    # a worker appears as root and switches to `user` a moment later
    wait_until(lambda: all(proc_uid(w) == NOBODY for w in workers), 10,
               "both workers running as nobody")
    assert served_cn(port, pki.ca)[0] == "a.test"
    # the certificate is renewed (here: another name) and the server reloaded
    install_key_pair(prefix, *pki.cert("b.test"))
    mark = len(m.error_log())
    m.p.send_signal(signal.SIGHUP)
    try:
        wait_until(lambda: m.error_log()[mark:].count("is live") >= 2, 10,
                   "both workers on the new configuration")
    except AssertionError:
        raise AssertionError(m.error_log())
    # Both workers reported the new generation live; whichever serves, the
    # certificate is the new one (sequential clients mostly reach one worker,
    # so a worker is not required to show up here).
    seen = {}
    for _ in range(50):
        cn, pid = served_cn(port, pki.ca)
        seen.setdefault(pid, set()).add(cn)
    assert set(seen) <= workers, seen
    assert all(cns == {"b.test"} for cns in seen.values()), seen
    assert set(m.workers()) == workers  # no process was replaced
    log = m.error_log()[mark:]
    assert "[emerg]" not in log and "Permission denied" not in log, log
    assert "makes sense only" not in log, log  # workers know the master applied `user`


def test_reload_with_a_missing_key_keeps_the_old_configuration(master, prefix, pki):
    port = free_port()
    install_key_pair(prefix, *pki.cert("a.test"))
    m = master(prefix, tls_conf(port, workers=1))
    wait_until(lambda: len(m.workers()) == 1, 10, "one worker")
    (prefix / "keys" / "site.key").unlink()
    mark = len(m.error_log())
    m.p.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload failed" in m.error_log()[mark:], 10, "the failed reload logged")
    log = m.error_log()[mark:]
    assert "cannot load certificate key" in log and "site.key" in log, log
    assert "sy.conf:" in log, log  # with the file and line of the directive
    assert served_cn(port, pki.ca)[0] == "a.test"


def test_reopen_creates_log_files_the_workers_can_write(master, prefix):
    port = free_port()
    m = master(prefix, f"""
user nobody nogroup;
worker_processes 2;
error_log logs/error.log notice;
events {{ }}
http {{
    access_log logs/access.log;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
""")
    wait_until(lambda: len(m.workers()) == 2, 10, "two workers")
    logs = prefix / "logs"
    assert request(port, "GET", "/before").status == 200
    wait_until(lambda: "/before" in (logs / "access.log").read_text(), 5, "the first entry")
    (logs / "access.log").rename(logs / "access.log.1")
    (logs / "error.log").rename(logs / "error.log.1")
    m.p.send_signal(signal.SIGUSR1)
    wait_until(lambda: (logs / "access.log").exists() and (logs / "error.log").exists(), 10,
               "the new log files")

    def reopened():  # the master and both workers say so (in the old or new file)
        text = (logs / "error.log.1").read_text() + (logs / "error.log").read_text()
        return text.count("reopening logs") >= 3
    wait_until(reopened, 10, "every process reopened its logs")
    # created by the master as root and handed to the workers' user before the
    # workers were told to reopen (the file may be seen between the two steps)
    assert (logs / "access.log").stat().st_uid == NOBODY
    # every worker reopened: send requests on fresh connections until each
    # worker has written to the new file (bounded)
    workers = set(m.workers())

    def all_logged():
        for i in range(20):
            request(port, "GET", f"/after-{i}")
        return (logs / "access.log").read_text().count("/after-") >= 20
    wait_until(all_logged, 10, "requests logged to the new file")
    assert "/after-" not in (logs / "access.log.1").read_text()
    assert "/before" not in (logs / "access.log").read_text()
    assert set(m.workers()) == workers
