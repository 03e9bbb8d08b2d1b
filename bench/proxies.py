"""The proxies under comparison: how to configure, start and measure each.

Every proxy gets the equivalent setup: one worker (one process or thread
doing the work), one upstream (the C backend) with keep-alive connections to
it, a plain listener and a TLS listener with the same certificate, access logs
off, long idle timeouts so a benchmark never trips them, and WebSockets
proxied on /ws/.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


def _pids_of(root: int) -> list[int]:
    """root and its descendants (the proxy's master and workers)."""
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def rss_kib(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_port(port: int, timeout: float = 10.0):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


class Proxy:
    name = "?"
    binary = "?"
    supports_tls = True

    def __init__(self, work: Path, port: int, tls_port: int, backend: int, cert: Path, key: Path):
        self.dir = work / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.port, self.tls_port, self.backend = port, tls_port, backend
        self.cert, self.key = cert, key
        self.proc: subprocess.Popen | None = None

    def available(self) -> bool:
        return shutil.which(self.binary) is not None or Path(self.binary).exists()

    def version(self) -> str:
        return ""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict:
        return dict(os.environ)

    def start(self):
        self.write_config()
        self.proc = subprocess.Popen(self.argv(), cwd=self.dir, env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr.log", "wb"))
        try:
            wait_port(self.port)
            if self.supports_tls:
                wait_port(self.tls_port)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: "
                               f"{(self.dir / 'stderr.log').read_text()[-2000:]}")

    def pids(self) -> list[int]:
        return _pids_of(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


NGINX_STYLE = """
worker_processes 1;
error_log logs/error.log warn;
pid logs/proxy.pid;
worker_rlimit_nofile 20000;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    {http_extra}
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_session_cache shared:SSL:10m;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location /ws/ {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


class Switchyard(Proxy):
    name = "switchyard"

    def __init__(self, *a, binary: str, **kw):
        self.binary = binary
        super().__init__(*a, **kw)

    def version(self) -> str:
        r = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        return (r.stderr or r.stdout).strip().split("/")[-1]

    def write_config(self):
        # The same file nginx runs: Switchyard takes nginx's configuration.
        (self.dir / "proxy.conf").write_text(NGINX_STYLE.format(
            port=self.port, tls_port=self.tls_port, backend=self.backend, cert=self.cert,
            key=self.key, http_extra=""))

    def argv(self):
        return [self.binary, "-p", f"{self.dir}/", "-c", str(self.dir / "proxy.conf"),
                "-g", "daemon off;"]


class Nginx(Proxy):
    name = "nginx"
    binary = "/usr/sbin/nginx"

    def version(self) -> str:
        r = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        return r.stderr.strip().split("/")[-1]

    def write_config(self):
        temps = "".join(f"{t}_temp_path {self.dir}/{t}_temp;\n    "
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "proxy.conf").write_text(NGINX_STYLE.format(
            port=self.port, tls_port=self.tls_port, backend=self.backend, cert=self.cert,
            key=self.key, http_extra=temps))

    def argv(self):
        return [self.binary, "-p", f"{self.dir}/", "-c", str(self.dir / "proxy.conf"),
                "-g", "daemon off;"]


class Haproxy(Proxy):
    name = "haproxy"
    binary = "/usr/sbin/haproxy"

    def version(self) -> str:
        r = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        return r.stdout.split()[2]

    def write_config(self):
        pem = self.dir / "site.pem"
        pem.write_bytes(Path(self.cert).read_bytes() + Path(self.key).read_bytes())
        (self.dir / "proxy.cfg").write_text(f"""
global
    nbthread 1
    maxconn 9500
    tune.ssl.default-dh-param 2048
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-keep-alive 1h
    option http-keep-alive
    http-reuse always
    maxconn 9500
frontend fe
    bind 127.0.0.1:{self.port} backlog 4096
    bind 127.0.0.1:{self.tls_port} ssl crt {pem} alpn http/1.1 backlog 4096
    default_backend be
backend be
    server s1 127.0.0.1:{self.backend} maxconn 9500
""")

    def argv(self):
        return [self.binary, "-db", "-f", str(self.dir / "proxy.cfg")]


class Caddy(Proxy):
    name = "caddy"
    binary = "/usr/bin/caddy"

    def version(self) -> str:
        r = subprocess.run([self.binary, "version"], capture_output=True, text=True)
        return r.stdout.split()[0]

    def env(self):
        e = dict(os.environ)
        e["GOMAXPROCS"] = "1"  # one core's worth of work, like one worker elsewhere
        e["HOME"] = str(self.dir)
        e["XDG_DATA_HOME"] = str(self.dir)
        e["XDG_CONFIG_HOME"] = str(self.dir)
        return e

    def write_config(self):
        (self.dir / "Caddyfile").write_text(f"""{{
    admin off
    auto_https off
    log {{
        level ERROR
    }}
}}
http://127.0.0.1:{self.port} {{
    reverse_proxy 127.0.0.1:{self.backend} {{
        transport http {{
            keepalive 1h
            keepalive_idle_conns 64
        }}
    }}
}}
https://127.0.0.1:{self.tls_port} {{
    tls {self.cert} {self.key}
    reverse_proxy 127.0.0.1:{self.backend} {{
        transport http {{
            keepalive 1h
            keepalive_idle_conns 64
        }}
    }}
}}
""")

    def argv(self):
        return [self.binary, "run", "--config", str(self.dir / "Caddyfile"), "--adapter",
                "caddyfile"]


class Floor(Proxy):
    """bench/floor/sy-floor: a TCP relay with no features, the lower bound."""
    name = "floor"
    supports_tls = False

    def __init__(self, *a, binary: str, **kw):
        self.binary = binary
        super().__init__(*a, **kw)

    def version(self) -> str:
        return "(TCP relay)"

    def write_config(self):
        pass

    def argv(self):
        return [self.binary, "--port", str(self.port), "--to", str(self.backend)]
