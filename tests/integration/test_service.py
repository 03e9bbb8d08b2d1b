"""Running Switchyard as a service (issue 16, docs/operations.md): the
sd_notify protocol the master speaks, `make install` and what it installs
(the unit, the logrotate file, the man pages, the default configuration).

The Debian package, which changes the system, is tested apart
(tests/package/, `make package`).
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

import harness
from harness import BIN, REPO, HarnessError, free_port, http_conf

pytestmark = pytest.mark.switchyard_only  # nginx speaks no sd_notify and has no `make install`

NOTIFY_TIMEOUT = 10.0


class Notify:
    """The receiving end of NOTIFY_SOCKET: a datagram socket bound to a path
    or, for "@name", to an abstract address."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.seen: list[dict] = []

    def wait(self, pred, what: str, timeout: float = NOTIFY_TIMEOUT) -> dict:
        """The next message (a dict of its assignments) for which pred is true."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"no sd_notify message {what} within {timeout}s; got "
                                   f"{self.seen}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            msg = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.seen.append(msg)
            if pred(msg):
                return msg

    def close(self):
        self.sock.close()


def start_master(tmp_path, notify_address: str, workers: int = 2):
    """A master with `workers` workers in the foreground, NOTIFY_SOCKET set.
    Returns (Popen, port, argv prefix for -s)."""
    port = free_port()
    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = tmp_path / "sy.conf"
    conf.write_text(http_conf(f"server {{ listen 127.0.0.1:{port}; "
                              f"location / {{ return 200 \"up\\n\"; }} }}",
                              extra_main=f"worker_processes {workers};"))
    base = [str(BIN), "-p", f"{tmp_path}/", "-c", str(conf),
            "-g", f"daemon off; pid {tmp_path}/sy.pid; error_log {tmp_path}/error.log notice;"]
    env = dict(os.environ, NOTIFY_SOCKET=notify_address)
    proc = subprocess.Popen(base, env=env, stdin=subprocess.DEVNULL,
                            stdout=open(tmp_path / "stdout.txt", "wb"),
                            stderr=open(tmp_path / "stderr.txt", "wb"), cwd=str(tmp_path))
    return proc, port, base


def stop(proc, tmp_path):
    """Stop the master (if still running) and fail on a sanitizer report."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=harness.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    err = (tmp_path / "stderr.txt").read_text(errors="replace")
    for marker in harness.SANITIZER_MARKERS:
        assert marker not in err, err[-4000:]


def get(port: int) -> harness.Response:
    with harness.HttpConn(port) as c:
        return c.request("GET", "/")


def counts(msg: dict) -> dict:
    """The numbers of a STATUS line: workers, configuration, active, requests."""
    st = msg.get("STATUS", "")
    m = re.fullmatch(r"(\d+) workers?, configuration (\d+); connections: (\d+) active, "
                     r"(\d+) reading, (\d+) writing; requests: (\d+)", st)
    assert m, f"unexpected STATUS {st!r}"
    w, g, a, _r, _wr, q = map(int, m.groups())
    return {"workers": w, "generation": g, "active": a, "requests": q}


def test_sd_notify_ready_status_reload_stopping(tmp_path):
    n = Notify(str(tmp_path / "notify.sock"))
    proc, port, base = start_master(tmp_path, n.address)
    try:
        ready = n.wait(lambda m: m.get("READY") == "1", "READY=1")
        assert ready["MAINPID"] == str(proc.pid)
        assert counts(ready) == {"workers": 2, "generation": 1, "active": 0, "requests": 0}
        assert get(port).status == 200  # READY came once the port serves

        # live counts: the STATUS line follows the shared counters (1 s tick)
        st = n.wait(lambda m: "STATUS" in m and "READY" not in m and
                    counts(m)["requests"] >= 1, "STATUS with the request counted")
        assert counts(st)["workers"] == 2

        # `-s reload` (the unit's ExecReload): RELOADING=1 with the
        # CLOCK_MONOTONIC time (systemd's Type=notify-reload), then READY=1
        before = time.monotonic()
        r = subprocess.run(base + ["-s", "reload"], capture_output=True, timeout=10)
        assert r.returncode == 0, r.stderr
        reloading = n.wait(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
        usec = int(reloading["MONOTONIC_USEC"])
        assert before * 1e6 - 1e6 <= usec <= time.monotonic() * 1e6 + 1e6
        ready2 = n.wait(lambda m: m.get("READY") == "1", "READY=1 after the reload")
        assert counts(ready2)["generation"] == 2
        assert get(port).status == 200

        proc.send_signal(signal.SIGQUIT)
        n.wait(lambda m: m.get("STOPPING") == "1", "STOPPING=1")
        assert proc.wait(timeout=harness.STOP_TIMEOUT) == 0
    finally:
        stop(proc, tmp_path)
        n.close()


def test_sd_notify_failed_reload_is_ready_again(tmp_path):
    """systemd waits for READY=1 after RELOADING=1: a configuration with an
    error keeps the old one, and the master says it is ready with it."""
    n = Notify(f"@switchyard-test-{uuid.uuid4().hex}")  # abstract address
    proc, port, _ = start_master(tmp_path, n.address, workers=1)
    try:
        n.wait(lambda m: m.get("READY") == "1", "READY=1")
        (tmp_path / "sy.conf").write_text("events {}\nhttp { server { listen 127.0.0.1:1; "
                                          "proxy_passs x; } }\n")
        proc.send_signal(signal.SIGHUP)
        n.wait(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
        ready = n.wait(lambda m: m.get("READY") == "1", "READY=1 after the failed reload")
        assert counts(ready)["generation"] == 1
        assert get(port).status == 200
    finally:
        stop(proc, tmp_path)
        n.close()


@pytest.mark.parametrize("address", ["/nonexistent/notify.sock", "@", "relative/path"])
def test_sd_notify_without_a_listener_changes_nothing(tmp_path, address):
    proc, port, _ = start_master(tmp_path, address, workers=1)
    try:
        harness.wait_until(lambda: proc.poll() is not None or harness.port_open(port),
                           harness.START_TIMEOUT, f"port {port}")
        assert proc.poll() is None
        assert get(port).status == 200
    finally:
        stop(proc, tmp_path)
    assert proc.returncode == 0


# ---------------------------------------------------------------- make install

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`make install` into a DESTDIR, with the logs and the pid file in
    directories of the test (the configuration names them absolutely)."""
    root = tmp_path_factory.mktemp("install")
    dest, logdir, rundir = root / "dest", root / "log", root / "run"
    rundir.mkdir()
    logdir.mkdir()
    # one `make` at a time in this checkout's build/ (xdist workers)
    with open(REPO / "build" / ".install-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", f"LOGDIR={logdir}",
                            f"RUNDIR={rundir}"], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"dest": dest, "log": logdir, "run": rundir, "stdout": r.stdout}


PREFIX = "usr/local"
FILES = ["sbin/switchyard", "lib/systemd/system/switchyard.service",
         "etc/logrotate.d/switchyard", "share/man/man8/switchyard.8",
         "share/man/man5/switchyard.conf.5", "etc/switchyard/switchyard.conf",
         "etc/switchyard/mime.types"]


def test_make_install_files_and_config(installed):
    d = installed["dest"] / PREFIX
    for f in FILES:
        assert (d / f).is_file(), f"make install did not install {f}"
    assert os.access(d / "sbin/switchyard", os.X_OK)
    assert (d / "etc/switchyard/conf.d").is_dir()
    assert (installed["dest"] / str(installed["log"]).lstrip("/")).is_dir()  # LOGDIR too
    conf = d / "etc/switchyard/switchyard.conf"
    text = conf.read_text()
    assert "@" not in re.sub(r"#.*", "", text), "unsubstituted @VAR@ in the configuration"
    # the installed configuration passes -t
    r = subprocess.run([str(d / "sbin/switchyard"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
    # the installed binary's default -c is the installed configuration's path
    v = subprocess.run([str(d / "sbin/switchyard"), "-V"], capture_output=True, text=True)
    assert f"--conf-path=/{PREFIX}/etc/switchyard/switchyard.conf" in v.stderr


def test_make_install_keeps_an_existing_configuration(installed, tmp_path):
    dest = tmp_path / "dest"
    conf = dest / PREFIX / "etc/switchyard/switchyard.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# mine\n")
    with open(REPO / "build" / ".install-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}",
                            f"LOGDIR={installed['log']}", f"RUNDIR={installed['run']}"],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert conf.read_text() == "# mine\n"
    assert "keeping the existing" in r.stdout
    assert (dest / PREFIX / "etc/switchyard/mime.types").is_file()


@pytest.mark.parametrize("page", ["man8/switchyard.8", "man5/switchyard.conf.5"])
def test_man_pages_render_without_warnings(installed, page):
    if not shutil.which("groff"):
        pytest.skip("groff is not installed")
    path = installed["dest"] / PREFIX / "share/man" / page
    r = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, MANWIDTH="80",
                                                           LC_ALL="C.UTF-8"))
        assert r.returncode == 0 and r.stderr == "", r.stderr


def test_conf_man_page_has_every_directive_of_the_table(installed):
    page = (installed["dest"] / PREFIX / "share/man/man5/switchyard.conf.5").read_text()
    tsv = (REPO / "build" / "man" / "directives.tsv").read_text().splitlines()
    names = [line.split("\t")[0] for line in tsv]
    assert len(names) > 100
    entries = set(re.findall(r"^\.TP\n\\fB(.+?)\\fR$", page, re.M))
    missing = [n for n in names if n.replace("-", "\\-") not in entries]
    assert not missing, f"switchyard.conf(5) lacks {missing}"
    # the table's contexts, e.g. proxy_pass's
    assert re.search(r"\\fBproxy_pass\\fR\n(?:.*\n){0,6}Context: \\fBlocation\\fR, "
                     r"\\fBif in location\\fR, \\fBlimit_except\\fR", page)


def test_systemd_unit_verifies(installed, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    d = installed["dest"] / PREFIX
    unit = (d / "lib/systemd/system/switchyard.service").read_text()
    assert "Type=notify" in unit and "KillMode=mixed" in unit
    assert re.search(r"^ExecReload=\S+/switchyard .*-s reload$", unit, re.M)
    # verify wants the executables where the unit names them: point it at
    # the DESTDIR's binary
    local = tmp_path / "switchyard.service"
    local.write_text(unit.replace(f"/{PREFIX}/sbin/switchyard", str(d / "sbin/switchyard")))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.strip() == "", r.stderr


def test_logrotate_file_parses(installed):
    lr = shutil.which("logrotate") or ("/usr/sbin/logrotate"
                                        if os.path.exists("/usr/sbin/logrotate") else None)
    if not lr:
        pytest.skip("logrotate is not installed")
    path = installed["dest"] / PREFIX / "etc/logrotate.d/switchyard"
    text = path.read_text()
    assert "-s reopen" in text
    r = subprocess.run([lr, "-d", "-s", str(installed["run"] / "lr.state"), str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr.lower() and "error" not in r.stdout.lower(), r.stderr
    assert f"rotating pattern: {installed['log']}/*.log" in r.stdout + r.stderr
