"""Helpers for Switchyard's integration tests.

Everything here talks to real processes over real loopback sockets: a
`Switchyard` instance runs the binary named by $SWITCHYARD_BIN (default
<repo>/build/switchyard; set it to /usr/sbin/nginx to validate expectations
against nginx), and the HTTP client below is a minimal raw-socket HTTP/1.1
reader so tests control and observe framing exactly.

Waiting is always bounded and event driven (poll a port, a log line, a file,
the process state); nothing sleeps to "let things settle".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SWITCHYARD_BIN", str(REPO / "build" / "switchyard")))
IS_NGINX = BIN.name == "nginx"
PRODUCT = "nginx" if IS_NGINX else "switchyard"

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# What the error log says when SIGHUP starts a reload (nginx: notice level).
RELOAD_RE = r"reconfiguring"
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def binary_is_sanitized() -> bool:
    """True for an ASan build: its RSS says nothing about Switchyard's memory use."""
    try:
        return b"__asan_init" in BIN.read_bytes()
    except OSError:
        return False

# Directives nginx needs to run as root from a throw-away prefix (its compiled-in
# temp paths live under /var/lib/nginx). Every config gets them, as every
# nginx-tests config does (TEST_GLOBALS_HTTP): Switchyard checks and accepts
# them (it writes no temporary files), so the whole suite runs with them.
TEMP_PATHS_HTTP = """\
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
"""


class HarnessError(AssertionError):
    pass


# --------------------------------------------------------------------------
# ports and waiting


# free_port() hands out ports below the kernel's ephemeral range: a port
# taken from bind(("127.0.0.1", 0)) and released again was, under -n 4, soon
# handed by the kernel to another test's backend (bind port 0) or used as the
# source port of a connection, and the proxy started on it failed to bind
# while the harness saw a foreign listener "ready" on the port. Below the
# ephemeral range the kernel hands out nothing by itself; between test
# processes (xdist workers, and the suites of other checkouts on the same
# machine) a port is reserved by a lock on its byte of one shared file, held
# as long as the process that took it lives.
PORT_LOCK_FILE = Path(tempfile.gettempdir()) / "switchyard-test-ports.lock"
_port_lock_fd: int | None = None
_rng = random.SystemRandom()  # not the `random` module's state, which plugins may seed alike
_ports_taken: set[int] = set()  # by this process (its own locks do not stop it)


def _port_range() -> tuple[int, int]:
    """[lo, hi) of the ports free_port() picks from: below ip_local_port_range."""
    try:
        ephemeral_lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_lo = 32768
    hi = min(ephemeral_lo, 32768)
    return (max(1024, hi - 20000), hi)


def _bindable(port: int) -> bool:
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((addr, port))
        except OSError as e:
            if family == socket.AF_INET6 and e.errno == errno.EADDRNOTAVAIL:
                continue  # no IPv6 loopback here
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 (and ::1) that nothing is bound to and that no
    other test process will be given; it stays reserved for this process."""
    global _port_lock_fd
    if _port_lock_fd is None:
        _port_lock_fd = os.open(PORT_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    lo, hi = _port_range()
    for _ in range(1000):
        port = _rng.randrange(lo, hi)
        if port in _ports_taken:
            continue
        try:  # one byte per port; released when this process exits
            fcntl.lockf(_port_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
        except OSError:
            continue  # another process holds it
        _ports_taken.add(port)  # returned or not: in use by something else
        if _bindable(port):
            return port
    raise HarnessError(f"no free port in [{lo}, {hi}) after 1000 tries")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout: float, what: str, interval: float = 0.01):
    """Poll `pred` until it returns a truthy value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def fill(template: str, **values) -> str:
    """Replace @KEY@ placeholders (upper-case keys) in a config template."""
    out = template
    for k, v in values.items():
        out = out.replace(f"@{k.upper()}@", str(v))
    left = re.findall(r"@[A-Z][A-Z0-9_]*@", out)
    if left:
        raise HarnessError(f"unfilled placeholders {left}")
    return out


def http_conf(body: str, *, extra_main: str = "", extra_http: str = "") -> str:
    """A complete config: `extra_main`, an events block and an http block
    holding an access log in logs/, `extra_http` and `body`."""
    temp_paths = TEMP_PATHS_HTTP
    return (
        f"{extra_main}\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    access_log logs/access.log;\n"
        f"{temp_paths}"
        f"{extra_http}\n"
        f"{body}\n"
        "}\n"
    )


_LISTEN_RE = re.compile(r"(?<![\w$'\"])listen\s+([^\s;]+)")


def listen_ports(conf_text: str) -> list[int]:
    """Ports of every `listen` line, in order, without duplicates."""
    ports = []
    for m in _LISTEN_RE.finditer(conf_text):
        addr = m.group(1)
        mm = re.search(r"(\d+)$", addr)
        if not mm or addr.startswith("unix:"):
            continue
        p = int(mm.group(1))
        if p not in ports:
            ports.append(p)
    return ports


# --------------------------------------------------------------------------
# the proxy under test


def _proc_children(pid: int) -> list[int]:
    """The live children of `pid`. A child that died is left out at once,
    although it stays listed as a zombie until its parent reaps it: a master
    that replaces a killed worker would otherwise show the dead one and then,
    for a moment, none."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # field 3 is the state, 4 the ppid; the comm field (2) may hold
        # spaces, so split after the last ')'
        rest = stat.rsplit(")", 1)[1].split()
        if int(rest[1]) == pid and rest[0] not in ("Z", "X"):
            kids.append(int(d))
    return kids


def wait_replaced(workers, victim: int, n: int, timeout: float = 10.0) -> list[int]:
    """Wait until `workers()` lists `n` processes and `victim` is not one of
    them; return that list. One reading per check: two readings of a master
    that is reaping and forking may disagree."""
    def check():
        ws = list(workers())
        return ws if len(ws) == n and victim not in ws else None
    return wait_until(check, timeout, f"{n} workers, {victim} replaced")


def proc_state(pid: int) -> str:
    """The one-letter state of a process ("T" = stopped), "" when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def read_pid_file(path: Path) -> int | None:
    """The pid in a pid file once it is completely written, else None (the
    file is created empty and the number written after: nginx and Switchyard
    alike)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    m = re.fullmatch(r"(\d+)\n", text)
    return int(m.group(1)) if m else None


def wait_pid_file(path: Path, timeout: float = START_TIMEOUT) -> int:
    """Wait (bounded) until the pid file at `path` holds a whole pid; return it."""
    return wait_until(lambda: read_pid_file(path), timeout, f"a pid in {path}")


def proc_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    return proc_state(pid) not in ("", "Z")


def proc_uid(pid: int) -> int | None:
    """The effective uid a process runs as (the owner of /proc/PID), None
    when gone. A forked worker runs as its parent's user until it has
    switched users itself, so wait for the uid rather than read it once."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


@contextlib.contextmanager
def only_worker(m, w: int):
    """While inside, worker `w` of master `m` (anything with .workers()) is
    the only one accepting connections. Which worker accepts is otherwise the
    kernel's choice (an idle worker early in the socket's wait queue takes
    nearly all); the other workers are stopped (SIGSTOP, by pid) and resumed
    on the way out. Connect inside the block: a connection made before may
    have woken a worker that is now stopped."""
    others = [o for o in m.workers() if o != w]
    try:
        for o in others:
            os.kill(o, signal.SIGSTOP)
        wait_until(lambda: all(proc_state(o) == "T" for o in others), 5,
                   "the other workers stopped")
        yield
    finally:
        for o in others:
            os.kill(o, signal.SIGCONT)
        wait_until(lambda: all(proc_state(o) != "T" for o in others), 5, "workers resumed")


def _vmrss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Switchyard:
    """One running proxy process (Switchyard or, for validation, nginx)."""

    is_nginx = IS_NGINX
    product = PRODUCT

    def __init__(self, prefix: Path, conf_text: str):
        self.prefix = Path(prefix)
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        self.conf_path = self.prefix / "sy.conf"
        self.error_log_path = self.prefix / "error.log"
        self.pid_path = self.prefix / "sy.pid"
        self.stdout_path = self.prefix / "stdout.txt"
        self.stderr_path = self.prefix / "stderr.txt"
        self.conf_text = conf_text
        self.conf_path.write_text(conf_text)
        self.ports = listen_ports(conf_text)
        self.proc: subprocess.Popen | None = None
        self._stopped = False

    # -- lifecycle

    def argv(self) -> list[str]:
        if IS_NGINX:
            # nginx's single-process mode cannot reload (after SIGHUP it
            # accepts and drops every new connection), so nginx runs as a
            # master with one worker; the worker stays root so it can use the
            # temp prefix (pytest's tmp dirs are 0700).
            g = "daemon off; master_process on; worker_processes 1; user root;"
        else:
            g = "daemon off; master_process off;"
        g += f" pid {self.pid_path};"
        # Log at notice level so lifecycle lines (reload) are visible; nginx's
        # default level for -e is "error".
        g += f" error_log {self.error_log_path} notice;"
        return [
            str(BIN),
            "-p", f"{self.prefix}/",
            "-c", str(self.conf_path),
            "-e", str(self.error_log_path),
            "-g", g,
        ]

    def start(self, check_start: bool = True) -> "Switchyard":
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=self._err, cwd=str(self.prefix),
        )
        if check_start:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        pending = list(self.ports)
        while pending:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"{PRODUCT} exited with {self.proc.returncode} during start-up\n"
                    f"--- stderr:\n{self.stderr()}\n--- error.log:\n{self.error_log()}"
                )
            if port_open(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"{PRODUCT} did not listen on {pending} within {timeout}s\n"
                    f"--- error.log:\n{self.error_log()}"
                )
            time.sleep(0.01)
        # The sockets listen a moment before the pid file is written: a test
        # that goes on to `-s reload` (which reads the pid file) must not see
        # it missing or empty. And a port that accepts may be another
        # process's: the pid file says that this one got past bind().
        if f"pid {self.pid_path};" in " ".join(self.argv()):
            wait_until(lambda: self.proc.poll() is not None or read_pid_file(self.pid_path),
                       max(0.1, deadline - time.monotonic()), f"the pid file {self.pid_path}")
        if self.proc.poll() is not None:
            raise HarnessError(
                f"{PRODUCT} exited with {self.proc.returncode} during start-up\n"
                f"--- stderr:\n{self.stderr()}\n--- error.log:\n{self.error_log()}"
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return self.ports[0]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"{PRODUCT} did not exit within {timeout}s")

    def stop(self, expect_running: bool = True) -> list[str]:
        """Graceful stop (SIGQUIT). Returns a list of problems (empty = fine)."""
        problems = []
        if self._stopped or self.proc is None:
            return problems
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                rc = self.proc.wait(timeout=STOP_TIMEOUT)
                if rc != 0:
                    problems.append(f"{PRODUCT} exited with {rc} after SIGQUIT")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                problems.append(f"{PRODUCT} hung on SIGQUIT for {STOP_TIMEOUT}s; killed")
        elif expect_running:
            problems.append(f"{PRODUCT} had already exited with {self.proc.returncode}")
        self._out.close()
        self._err.close()
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                problems.append(f"sanitizer report in stderr ({marker}):\n{err[-4000:]}")
                break
        return problems

    # -- logs

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def error_log(self) -> str:
        return self._read(self.error_log_path)

    def access_log(self) -> str:
        return self._read(self.prefix / "logs" / "access.log")

    def stderr(self) -> str:
        return self._read(self.stderr_path)

    def log_mark(self) -> int:
        """Current size of the error log, for wait_log(since=...)."""
        try:
            return self.error_log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def wait_log(self, regex: str, timeout: float = 5.0, since: int = 0, flags=0):
        """Poll the error log (from byte offset `since`) until `regex` matches."""
        rx = re.compile(regex, flags)

        def probe():
            data = self.error_log_path.read_bytes()[since:] if self.error_log_path.exists() else b""
            return rx.search(data.decode("utf-8", "replace"))

        try:
            return wait_until(probe, timeout, f"error log line /{regex}/")
        except HarnessError:
            raise HarnessError(
                f"no error log line matching /{regex}/ within {timeout}s\n"
                f"--- error.log (from {since}):\n{self.error_log()[since:][-4000:]}"
            )

    def wait_access_log(self, regex: str, timeout: float = 5.0):
        rx = re.compile(regex)
        return wait_until(lambda: rx.search(self.access_log()), timeout,
                          f"access log line /{regex}/")

    # -- reload

    def _idle_in_event_loop(self) -> bool:
        try:
            wchan = Path(f"/proc/{self.pid}/wchan").read_text()
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state == "S" and "poll" in wchan

    def _check_reload_failed(self, mark: int):
        tail = self.error_log()[mark:]
        if "[emerg]" in tail:
            raise HarnessError(f"reload failed:\n{tail}")

    def reload(self, new_conf_text: str, timeout: float = 10.0, probe=None):
        """Rewrite the config, SIGHUP, and wait until the new config is live.

        Switchyard (one process): the reload line (RELOAD_RE) was logged and
        the process is back asleep in its event loop, so the new config is
        installed. nginx (master + worker): a new worker runs and the old ones
        have exited. Either way an [emerg] logged since the signal fails the
        reload, and `probe()` (if given) must then return true.
        """
        mark = self.log_mark()
        old_workers = set(_proc_children(self.pid)) if IS_NGINX else set()
        self.conf_text = new_conf_text
        self.conf_path.write_text(new_conf_text)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(RELOAD_RE, timeout, since=mark)
        if IS_NGINX:
            def swapped():
                self._check_reload_failed(mark)
                kids = set(_proc_children(self.pid))
                return kids and not (kids & old_workers)
            wait_until(swapped, timeout, "nginx workers to be replaced")
        else:
            wait_until(self._idle_in_event_loop, timeout, "the event loop after reload")
        self._check_reload_failed(mark)
        new_ports = listen_ports(new_conf_text)
        for p in new_ports:
            wait_until(lambda: port_open(p), timeout, f"port {p} after reload")
        self.ports = new_ports
        if probe is not None:
            wait_until(probe, timeout, "the reload probe")

    # -- resources

    def rss_kb(self) -> int:
        """Resident set size in KiB, summed over the process and its children."""
        return sum(_vmrss_kb(p) for p in self._tree())

    def _tree(self) -> list[int]:
        todo, seen = [self.pid], []
        while todo and len(seen) < 256:
            p = todo.pop()
            if p not in seen:
                seen.append(p)
                todo.extend(_proc_children(p))
        return seen

    def fd_count(self) -> int:
        """Open file descriptors, summed over the process and its children."""
        n = 0
        for p in self._tree():
            try:
                n += len(os.listdir(f"/proc/{p}/fd"))
            except OSError:
                pass
        return n


def run_switchyard_t(conf_text: str, prefix: Path | str | None = None,
                     extra_args: tuple = ("-t",), timeout: float = 20.0):
    """Run `BIN -p PREFIX -c CONF -e ERRLOG -t` (or `extra_args`).
    Returns (exit code, stdout+stderr text)."""
    tmp = None
    if prefix is None:
        tmp = tempfile.TemporaryDirectory(prefix="sy-t-")
        prefix = tmp.name
    prefix = Path(prefix)
    try:
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        conf = prefix / "sy-t.conf"
        conf.write_text(conf_text)
        argv = [str(BIN), "-p", f"{prefix}/", "-c", str(conf),
                "-e", str(prefix / "error-t.log"),
                "-g", f"pid {prefix}/sy-t.pid;", *extra_args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, cwd=str(prefix))
        return r.returncode, r.stdout.decode("utf-8", "replace")
    finally:
        if tmp is not None:
            tmp.cleanup()


# --------------------------------------------------------------------------
# raw HTTP client


def raw_request(port: int, data: bytes, timeout: float = 5.0, host: str = "127.0.0.1") -> bytes:
    """Send `data`, then return every byte received until the peer closes or
    `timeout` seconds pass (whichever first)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        return read_until_close(s, timeout)


def read_until_close(s: socket.socket, timeout: float = 5.0) -> bytes:
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head,
                 body_len=None, body_sha256=None, trailers=None, framing=None,
                 interim=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers            # list of (name, value), as received
        self.body = body                  # bytes, or None when hashed only
        self.raw_head = raw_head
        self.body_len = body_len if body_len is not None else len(body or b"")
        self.body_sha256 = body_sha256 if body_sha256 is not None else \
            hashlib.sha256(body or b"").hexdigest()
        self.trailers = trailers or []
        self.framing = framing            # "length" | "chunked" | "close" | "none"
        self.interim = interim or []      # 1xx responses seen before this one

    def header(self, name: str, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has_header(self, name: str) -> bool:
        return bool(self.header_all(name))

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return (self.body or b"").decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body_len}B>"


class ConnectionClosed(Exception):
    pass


class HttpConn:
    """One client connection; send raw bytes, read parsed responses in order."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def request(self, method: str = "GET", target: str = "/", headers=None,
                body: bytes = b"", host: str | None = "localhost",
                version: str = "HTTP/1.1", **read_kw) -> Response:
        self.send(build_request(method, target, headers, body, host, version))
        return self.read_response(method=method, **read_kw)

    # -- low-level reading

    def _fill(self, deadline: float) -> bool:
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("response read timed out")
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(262144)
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def _read_line(self, deadline: float) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[: i + 1], self.buf[i + 1:]
                return line
            if len(self.buf) > 1 << 20:
                raise ValueError("line too long")
            if not self._fill(deadline):
                raise ConnectionClosed(f"EOF inside a line: {self.buf[:200]!r}")

    def _read_exact(self, n: int, deadline: float, sink) -> None:
        while n > 0:
            if not self.buf and not self._fill(deadline):
                raise ConnectionClosed(f"EOF with {n} body bytes missing")
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            sink(take)
            n -= len(take)

    def read_head(self, deadline: float):
        lines = []
        first = self._read_line(deadline)
        while first in (b"\r\n", b"\n"):
            first = self._read_line(deadline)
        raw = [first]
        while True:
            line = self._read_line(deadline)
            raw.append(line)
            if line in (b"\r\n", b"\n"):
                break
            lines.append(line)
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?\r?\n$", first)
        if not m:
            raise ValueError(f"bad status line {first!r}")
        headers = []
        for line in lines:
            k, _, v = line.rstrip(b"\r\n").partition(b":")
            headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        return (m.group(1).decode(), int(m.group(2)),
                (m.group(3) or b"").decode("latin-1"), headers, b"".join(raw))

    def read_response(self, method: str = "GET", timeout: float | None = None,
                      hash_only: bool = False, keep_interim: bool = False) -> Response:
        """Read one response. Interim 1xx responses (other than 101) are
        collected into `.interim` and skipped. With hash_only the body is
        hashed as it streams in and not kept."""
        deadline = time.monotonic() + (timeout or self.timeout)
        interim = []
        while True:
            version, status, reason, headers, raw = self.read_head(deadline)
            if 100 <= status < 200 and status != 101:
                interim.append((status, headers))
                continue
            break
        h = {}
        for k, v in headers:
            h.setdefault(k.lower(), []).append(v)
        hasher = hashlib.sha256()
        parts = []
        total = [0]

        def sink(b):
            total[0] += len(b)
            hasher.update(b)
            if not hash_only:
                parts.append(b)

        trailers = []
        if method == "HEAD" or status in (204, 304) or status == 101:
            framing = "none"
        elif "chunked" in ",".join(h.get("transfer-encoding", [])).lower():
            framing = "chunked"
            while True:
                line = self._read_line(deadline)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                self._read_exact(size, deadline, sink)
                crlf = self._read_line(deadline)
                if crlf.strip():
                    raise ValueError(f"missing CRLF after chunk: {crlf!r}")
            while True:
                line = self._read_line(deadline)
                if line in (b"\r\n", b"\n"):
                    break
                k, _, v = line.rstrip(b"\r\n").partition(b":")
                trailers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        elif "content-length" in h:
            framing = "length"
            self._read_exact(int(h["content-length"][0]), deadline, sink)
        else:
            framing = "close"
            while True:
                if self.buf:
                    b, self.buf = self.buf, b""
                    sink(b)
                if not self._fill(deadline):
                    break
        body = None if hash_only else b"".join(parts)
        return Response(version, status, reason, headers, body, raw,
                        body_len=total[0], body_sha256=hasher.hexdigest(),
                        trailers=trailers, framing=framing, interim=interim)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` seconds;
        bytes received meanwhile are kept in self.buf."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except socket.timeout:
            return False
        except OSError:
            return True


def build_request(method: str = "GET", target: str = "/", headers=None,
                  body: bytes = b"", host: str | None = "localhost",
                  version: str = "HTTP/1.1") -> bytes:
    """Serialise a request. `headers` is a list of pairs or a dict; a
    Content-Length is added for a non-empty body unless the caller set
    Content-Length or Transfer-Encoding."""
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hs}
    if host is not None and "host" not in names:
        hs.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode("latin-1") + body


def request(port: int, method: str = "GET", target: str = "/", headers=None,
            body: bytes = b"", host: str | None = "localhost", version: str = "HTTP/1.1",
            timeout: float = 10.0, **read_kw) -> Response:
    """One request on a fresh connection."""
    with HttpConn(port, timeout=timeout) as c:
        return c.request(method, target, headers, body, host, version, **read_kw)


def chunked(data: bytes, chunk: int = 4096) -> bytes:
    out = []
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)
