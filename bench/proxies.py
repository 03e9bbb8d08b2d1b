"""The proxies under comparison: how to configure, start and measure each.

Every proxy gets the equivalent setup: one worker (one process or thread
doing the work), one upstream (the C backend) with keep-alive connections to
it, a plain listener and a TLS listener with the same certificate, access logs
off, long idle timeouts so a benchmark never trips them, and WebSockets
proxied on /ws/. Proxies that can get a third listener: TLS with HTTP/2
offered by ALPN (`h2_port`); whether HTTP/2 and RFC 8441 WebSockets work
there is probed once the proxy runs (`probe_features`), so a proxy that
accepts the configuration but does not speak HTTP/2 is skipped, not failed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import struct
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8  # RFC 8441


def probe_h2(port: int, timeout: float = 3.0) -> set[str]:
    """What a TLS port offers: {"h2"} when ALPN selects h2 and the server
    answers the connection preface with SETTINGS, plus "ws_h2" when those
    SETTINGS enable the extended CONNECT of RFC 8441. Empty on any failure."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw) as s:
            if s.selected_alpn_protocol() != "h2":
                return set()
            s.sendall(H2_PREFACE + struct.pack(">I", 0)[1:] + b"\x04\x00" + struct.pack(">I", 0))
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                if not chunk:
                    return set()
                head += chunk
            length, ftype = int.from_bytes(head[:3], "big"), head[3]
            if ftype != 4:  # the server's first frame must be SETTINGS
                return set()
            body = b""
            while len(body) < length:
                chunk = s.recv(length - len(body))
                if not chunk:
                    return set()
                body += chunk
    except OSError:
        return set()
    params = {struct.unpack(">H", body[i:i + 2])[0]: struct.unpack(">I", body[i + 2:i + 6])[0]
              for i in range(0, len(body) - 5, 6)}
    return {"h2"} | ({"ws_h2"} if params.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1 else set())


class Proxy:
    name = "?"
    binary = "?"
    supports_tls = True
    has_h2_listener = True  # configured with a TLS listener offering h2 on h2_port
    # what the scenarios may ask for ("tls", "ws"; "h2", "ws_h2" once probed)
    static_features = frozenset({"tls", "ws"})

    def __init__(self, work: Path, port: int, tls_port: int, backend: int, cert: Path, key: Path,
                 h2_port: int = 0, name: str | None = None):
        if name:
            self.name = name
        self.dir = work / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.port, self.tls_port, self.h2_port, self.backend = port, tls_port, h2_port, backend
        self.cert, self.key = cert, key
        self.proc: subprocess.Popen | None = None
        self.features: set[str] = set(self.static_features)

    def probe_features(self):
        """Add "h2" / "ws_h2" to self.features when the running proxy has them."""
        if self.has_h2_listener and self.h2_port:
            self.features |= probe_h2(self.h2_port)

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
            if self.has_h2_listener and self.h2_port:
                wait_port(self.h2_port)
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


# The compression scenario's location (only for a binary that has gzip: a
# --baseline Switchyard from before it would refuse the directives).
GZIP_LOCATION = """
        location = /gz {
            proxy_pass http://backend/text;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            gzip on;
            gzip_comp_level 1;
            gzip_types text/plain;
        }"""

# The cache scenarios' location (only for a binary that has the proxy cache):
# every request a HIT once the first response is stored.
CACHE_LOCATION = """
        location /cached/ {
            proxy_pass http://backend/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache B;
            proxy_cache_valid 200 1h;
        }"""


def cache_path(d) -> str:
    """The cache under the proxy's directory; nginx's workers (not root) must
    reach it, so the directories above it become traversable (0711)."""
    for p in (Path(d), Path(d).parent):
        os.chmod(p, 0o711)
    return f"proxy_cache_path {d}/cache levels=1:2 keys_zone=B:10m;"


def has_cache(binary: str) -> bool:
    """-V says --without-http-cache when the proxy cache is not built."""
    r = subprocess.run([binary, "-V"], capture_output=True, text=True)
    return "--without-http-cache" not in (r.stderr + r.stdout)


NGINX_LOCATIONS = """{gzip_location}{cache_location}
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
        }}"""

# The HTTP/2 listener has a server of its own for keepalive_requests: nginx
# closes an HTTP/2 connection after 1000 requests by default, and h2load
# does not reconnect within a timed run.
NGINX_STYLE = """
worker_processes 1;
error_log logs/error.log warn;
pid logs/proxy.pid;
worker_rlimit_nofile 20000;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    {http_extra}
    {cache_path}
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_session_cache shared:SSL:10m;
""" + NGINX_LOCATIONS + """
    }}
    server {{
        listen 127.0.0.1:{h2_port} ssl http2 backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_session_cache shared:SSL:10m;
        keepalive_requests 100000000;
""" + NGINX_LOCATIONS + """
    }}
}}
"""


def has_gzip(binary: str) -> bool:
    """nginx's -V says --without-http_gzip_module when gzip is not built."""
    r = subprocess.run([binary, "-V"], capture_output=True, text=True)
    return "--without-http_gzip_module" not in (r.stderr + r.stdout)


class Switchyard(Proxy):
    name = "switchyard"

    def __init__(self, *a, binary: str, **kw):
        self.binary = binary
        super().__init__(*a, **kw)
        # the nginx file's `location = /gz` (gzip of a proxied 32 KiB text)
        if self.available() and has_gzip(binary):
            self.features.add("gzip")
        if self.available() and has_cache(binary):
            self.features.add("cache")

    def version(self) -> str:
        r = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        v = (r.stderr or r.stdout).strip().splitlines()[0].split("/")[-1]
        # a --baseline binary usually has the same version: say which file it is
        return v if self.name == "switchyard" else f"{v} ({Path(self.binary).name})"

    def write_config(self):
        # The same file nginx runs: Switchyard takes nginx's configuration.
        (self.dir / "proxy.conf").write_text(NGINX_STYLE.format(
            port=self.port, tls_port=self.tls_port, h2_port=self.h2_port, backend=self.backend,
            cert=self.cert, key=self.key, http_extra="",
            gzip_location=GZIP_LOCATION if "gzip" in self.features else "",
            cache_location=CACHE_LOCATION if "cache" in self.features else "",
            cache_path=cache_path(self.dir) if "cache" in self.features else ""))

    def argv(self):
        return [self.binary, "-p", f"{self.dir}/", "-c", str(self.dir / "proxy.conf"),
                "-g", "daemon off;"]


# `--metrics`: Switchyard with a Prometheus page on each server; the traffic
# goes to the other locations (the counters are kept whatever the page).
METRICS_LOCATION = """
        location = /metrics { metrics; }"""


class SwitchyardMetrics(Switchyard):
    name = "switchyard-metrics"

    def version(self) -> str:
        return super().version() + " (metrics)"

    def write_config(self):
        (self.dir / "proxy.conf").write_text(NGINX_STYLE.format(
            port=self.port, tls_port=self.tls_port, h2_port=self.h2_port, backend=self.backend,
            cert=self.cert, key=self.key, http_extra="",
            gzip_location=METRICS_LOCATION + (GZIP_LOCATION if "gzip" in self.features else ""),
            cache_location=CACHE_LOCATION if "cache" in self.features else "",
            cache_path=cache_path(self.dir) if "cache" in self.features else ""))


class Nginx(Proxy):
    name = "nginx"
    static_features = frozenset({"tls", "ws", "gzip", "cache"})  # as Debian's nginx-light
    binary = "/usr/sbin/nginx"

    def version(self) -> str:
        r = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        return r.stderr.strip().split("/")[-1]

    def write_config(self):
        temps = "".join(f"{t}_temp_path {self.dir}/{t}_temp;\n    "
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "proxy.conf").write_text(NGINX_STYLE.format(
            port=self.port, tls_port=self.tls_port, h2_port=self.h2_port, backend=self.backend,
            cert=self.cert, key=self.key, http_extra=temps, gzip_location=GZIP_LOCATION,
            cache_location=CACHE_LOCATION, cache_path=cache_path(self.dir)))

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
    # h2 with RFC 8441 (SETTINGS_ENABLE_CONNECT_PROTOCOL is on by default)
    bind 127.0.0.1:{self.h2_port} ssl crt {pem} alpn h2,http/1.1 backlog 4096
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
    default_sni 127.0.0.1
    log {{
        level ERROR
    }}
}}
http://127.0.0.1:{self.port} {{
    reverse_proxy 127.0.0.1:{self.backend} {{
        transport http {{
            keepalive 1h
            keepalive_idle_conns 128
        }}
    }}
}}
https://127.0.0.1:{self.tls_port} {{
    tls {self.cert} {self.key}
    reverse_proxy 127.0.0.1:{self.backend} {{
        transport http {{
            keepalive 1h
            keepalive_idle_conns 128
        }}
    }}
}}
https://127.0.0.1:{self.h2_port} {{
    tls {self.cert} {self.key}
    reverse_proxy 127.0.0.1:{self.backend} {{
        transport http {{
            keepalive 1h
            keepalive_idle_conns 128
        }}
    }}
}}
""")

    def argv(self):
        return [self.binary, "run", "--config", str(self.dir / "Caddyfile"), "--adapter",
                "caddyfile"]


class H2o(Proxy):
    """h2o (Debian's 2.2.5): one thread, HTTP/1.1 WebSocket proxying on
    (`proxy.websocket`, which 2.2 still calls experimental); no RFC 8441."""
    name = "h2o"
    binary = "/usr/bin/h2o"

    def version(self) -> str:
        r = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return r.stdout.split()[2] if r.stdout.startswith("h2o version") else ""

    def write_config(self):
        ssl = f"""
  ssl:
    certificate-file: {self.cert}
    key-file: {self.key}
    ocsp-update-interval: 0"""
        # started as root, h2o would switch to nobody, who cannot read the work dir
        user = "user: root\n" if os.geteuid() == 0 else ""
        (self.dir / "h2o.conf").write_text(f"""{user}
num-threads: 1
max-connections: 19000
error-log: {self.dir}/logs/error.log
pid-file: {self.dir}/logs/h2o.pid
http1-request-timeout: 3600
http2-idle-timeout: 3600
proxy.timeout.io: 3600000
proxy.timeout.keepalive: 3600000
proxy.websocket: ON
proxy.websocket.timeout: 3600000
proxy.preserve-host: ON
listen:
  host: 127.0.0.1
  port: {self.port}
listen:
  host: 127.0.0.1
  port: {self.tls_port}{ssl}
listen:
  host: 127.0.0.1
  port: {self.h2_port}{ssl}
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:{self.backend}/
""")

    def argv(self):
        return [self.binary, "-c", str(self.dir / "h2o.conf")]


class Floor(Proxy):
    """bench/floor/sy-floor: a TCP relay with no features, the lower bound."""
    name = "floor"
    supports_tls = False
    has_h2_listener = False
    static_features = frozenset({"ws"})

    def __init__(self, *a, binary: str, **kw):
        self.binary = binary
        super().__init__(*a, **kw)

    def version(self) -> str:
        return "(TCP relay)"

    def write_config(self):
        pass

    def argv(self):
        return [self.binary, "--port", str(self.port), "--to", str(self.backend)]
