"""The Debian package (`make deb`), installed on this system with apt-get.

Run by `make package` (part of `make check`), never by the parallel
integration suite: it installs and purges a package. It needs root (or
sudo) and apt-get; it refuses to touch a system where a switchyard package
is already installed. Whatever happens, the package is purged at the end
and no switchyard it started is left running.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402  (free ports, bounded waits)

DEB_DIR = REPO / "build" / "deb"
SBIN = Path("/usr/sbin/switchyard")
# wait for dpkg's lock rather than fail when another apt-get is running
APT_LOCK = ["-o", "DPkg::Lock::Timeout=120"]


def sudo() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo", "-n"]
    pytest.skip("needs root or sudo to install a package")


def run(argv, timeout=300, check=True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert r.returncode == 0, f"{argv} exited with {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def installed_version() -> str | None:
    r = run(["dpkg-query", "-W", "-f=${Status} ${Version}", "switchyard"], check=False)
    if r.returncode != 0 or not r.stdout.startswith("install ok installed"):
        return None
    return r.stdout.split()[-1]


def switchyard_pids() -> list[int]:
    """Processes running the installed binary."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "exe") == str(SBIN):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def deb() -> Path:
    debs = sorted(DEB_DIR.glob("switchyard_*.deb"))
    if not debs:
        run(["make", "-s", "deb"], cwd=REPO, timeout=900)
        debs = sorted(DEB_DIR.glob("switchyard_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


@pytest.fixture(scope="module")
def package(deb):
    """The package installed with apt-get; purged afterwards, whatever happened."""
    if not shutil.which("apt-get"):
        pytest.skip("no apt-get")
    if installed_version():
        pytest.skip("a switchyard package is already installed here: not touching it")
    s = sudo()
    try:
        r = run(s + ["apt-get", "install", "-y", "-q", *APT_LOCK, f"./{deb.relative_to(REPO)}"],
                cwd=REPO,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        yield r
    finally:
        for pid in switchyard_pids():  # only the installed binary's processes
            os.kill(pid, signal.SIGKILL)
        run(s + ["apt-get", "purge", "-y", "-q", *APT_LOCK, "switchyard"], check=False,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert installed_version() is None, "apt-get purge left the package installed"
    assert not Path("/etc/switchyard").exists(), "purge left /etc/switchyard"


def test_lintian_clean(deb):
    if not shutil.which("lintian"):
        pytest.skip("lintian is not installed")
    r = run(["lintian", "--fail-on", "error,warning", str(deb)], check=False, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = [ln for ln in r.stdout.splitlines() if ln.startswith(("E:", "W:"))]
    assert not bad, bad


def test_installs_files_and_conffiles(package):
    for f in ["/usr/sbin/switchyard", "/etc/switchyard/switchyard.conf",
              "/etc/switchyard/mime.types", "/etc/logrotate.d/switchyard",
              "/lib/systemd/system/switchyard.service",
              "/usr/share/man/man8/switchyard.8.gz", "/usr/share/man/man5/switchyard.conf.5.gz"]:
        assert Path(f).is_file(), f"the package did not install {f}"
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "switchyard"]).stdout
    assert "/etc/switchyard/switchyard.conf" in conffiles
    assert "/etc/logrotate.d/switchyard" in conffiles


def test_installation_starts_no_service(package):
    """dh_installsystemd --no-enable --no-start: the default configuration's
    port 80 may be another server's (docs/operations.md)."""
    assert switchyard_pids() == []


def test_installed_binary_checks_its_default_configuration(package):
    r = run([str(SBIN), "-t"])
    assert "/etc/switchyard/switchyard.conf test is successful" in r.stderr


def test_installed_binary_serves(package, tmp_path):
    port = harness.free_port()
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "test.conf"
    conf.write_text(
        "events { worker_connections 64; }\n"
        "http {\n"
        "    include /etc/switchyard/mime.types;\n"
        f"    access_log {tmp_path}/logs/access.log;\n"
        f"    server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"packaged\\n\"; }} }}\n"
        "}\n")
    proc = subprocess.Popen(
        [str(SBIN), "-p", f"{tmp_path}/", "-c", str(conf),
         "-g", f"daemon off; worker_processes 1; pid {tmp_path}/sy.pid; "
               f"error_log {tmp_path}/logs/error.log;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        harness.wait_until(lambda: proc.poll() is not None or harness.port_open(port),
                           harness.START_TIMEOUT, f"the packaged switchyard on {port}")
        assert proc.poll() is None, proc.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200
            assert resp.read() == b"packaged\n"
            assert resp.headers["Server"].startswith("switchyard")
        proc.send_signal(signal.SIGQUIT)
        assert proc.wait(timeout=harness.STOP_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
