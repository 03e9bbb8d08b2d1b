"""Prometheus metrics (`metrics;`, docs/observability.md): the text
exposition of every worker's counters, summed at the scrape and kept across
reloads and worker deaths. Exact counts where the traffic is deterministic;
the output checked by Debian's `promtool check metrics` and scraped by a real
Prometheus server. Switchyard's own directive: nginx has no such page.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import websockets

from harness import free_port, http_conf, only_worker, raw_request, request, wait_until
from h2_support import H2Client, H2WebSocket, h2_get, h2_server
from limits_support import served_by, sy_workers  # noqa: F401  (fixture)
from ws_fixtures import run, ws_backend, ws_connect, ws_location  # noqa: F401

pytestmark = pytest.mark.switchyard_only

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple, float]:
    """{(name, frozenset(labels)): value} of every sample; also checks that
    each family has HELP and TYPE lines before its samples."""
    out: dict[tuple, float] = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"bad sample line {line!r}"
        name, labels, value = m.groups()
        fam = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or fam in typed, f"{name} has no TYPE line"
        key = (name, frozenset(LABEL.findall(labels or "")))
        assert key not in out, f"duplicate sample {line!r}"
        out[key] = float(value)
    return out


def val(samples: dict, name: str, **labels) -> float:
    """The sample `name` with exactly these labels (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """The sum of every `name` sample whose labels include these."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def scrape(port: int, path: str = "/metrics") -> tuple[str, dict]:
    r = request(port, "GET", path)
    assert r.status == 200, r
    assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8", r
    text = r.body.decode()
    return text, parse(text)


def promtool_check(text: str):
    if not PROMTOOL:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode == 0 and not out.strip(), out


SERVER = "metrics.test"


def conf(port: int, extra: str = "", extra_main: str = "", extra_http: str = "") -> str:
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port};
    server_name {SERVER};
    location = /metrics {{ metrics; }}
    location /ok {{ return 200 "ok\\n"; }}
    location = /missing {{ return 404; }}
    location = /broken {{ return 503; }}
    location /pid {{ return 200 "$pid"; }}
    location ~ "\\.t\\"?xt$" {{ return 200 "regex"; }}
    {extra}
}}""", extra_main=extra_main, extra_http=extra_http)


# --------------------------------------------------------------------------
# the page


def test_requests_by_status_class_and_duration(switchyard):
    port = free_port()
    switchyard(conf(port))
    for _ in range(3):
        assert request(port, "GET", "/ok").status == 200
    for _ in range(2):
        assert request(port, "GET", "/missing").status == 404
    assert request(port, "GET", "/broken").status == 503
    assert request(port, "GET", "/a.txt").status == 200
    text, s = scrape(port)
    # a label value as written in the configuration, escaped in the exposition
    assert 'location="~ \\\\.t\\"?xt$"' in text
    assert val(s, "switchyard_http_requests_total", server=SERVER, location='~ \\\\.t\\"?xt$',
               code_class="2xx") == 1
    ok = dict(server=SERVER, location="/ok")
    assert val(s, "switchyard_http_requests_total", code_class="2xx", **ok) == 3
    assert val(s, "switchyard_http_requests_total", server=SERVER, location="= /missing",
               code_class="4xx") == 2
    assert val(s, "switchyard_http_requests_total", server=SERVER, location="= /broken",
               code_class="5xx") == 1
    # the histogram: cumulative buckets, +Inf = _count = the requests
    h = "switchyard_http_request_duration_seconds"
    assert val(s, h + "_count", **ok) == 3
    assert val(s, h + "_bucket", le="+Inf", **ok) == 3
    les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    counts = [val(s, h + "_bucket", le=le, **ok) for le in les]
    assert counts == sorted(counts), counts
    assert val(s, h + "_sum", **ok) < 3 * 10
    promtool_check(text)


def test_head_post_and_http2(switchyard):
    port, h2port = free_port(), free_port()
    body = "location = /metrics { metrics; }\nlocation / { return 200 \"h2\"; }"
    switchyard(conf(port, extra_http=h2_server(h2port, body=body)))
    head = request(port, "HEAD", "/metrics")
    assert head.status == 200 and head.body == b""
    assert request(port, "POST", "/metrics", body=b"x").status == 405
    for _ in range(2):
        assert h2_get(h2port, "/x").status == 200
    got = {}

    def h2_scrape():
        st = h2_get(h2port, "/metrics")
        assert st.status == 200
        assert st.header("content-type").startswith("text/plain; version=0.0.4")
        got["s"] = s = parse(bytes(st.data).decode())
        # the earlier connections may still be closing on the server's side
        return val(s, "switchyard_http2_connections") == 1  # the one asking
    wait_until(h2_scrape, 5, "the earlier HTTP/2 connections closed")
    s = got["s"]
    n = val(s, "switchyard_http2_connections_total")
    assert n >= 3 and val(s, "switchyard_http2_streams_total") == n
    assert val(s, "switchyard_http2_streams") == 1
    assert val(s, "switchyard_http_requests_total", server="localhost", location="/",
               code_class="2xx") == 2
    # HEAD and the 405 were counted too
    _, s = scrape(port)
    assert val(s, "switchyard_http_requests_total", server=SERVER, location="= /metrics",
               code_class="4xx") == 1


def test_connections_by_state(switchyard):
    port = free_port()
    switchyard(conf(port))
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /ok HTTP/1.1\r\nHo")
    try:
        def states():
            _, s = scrape(port)
            return (val(s, "switchyard_connections", state="reading") == 1 and
                    val(s, "switchyard_connections", state="idle") >= 1 and
                    val(s, "switchyard_connections", state="writing") == 1)  # the scrape
        wait_until(states, 5, "reading 1, idle 1, writing 1")
    finally:
        idle.close()
        half.close()


# --------------------------------------------------------------------------
# upstreams, tunnels, upgrades


def test_upstream_timings_and_failures(switchyard, origin):
    port = free_port()
    dead = free_port()  # nothing listens there
    ups = f"""
    upstream pool {{ server {origin.addr}; server 127.0.0.1:{dead} max_fails=1 fail_timeout=30s; }}
    """
    switchyard(conf(port, extra="location /up/ { proxy_pass http://pool; }", extra_http=ups))
    for _ in range(4):
        assert request(port, "GET", "/up/x").status == 200
    text, s = scrape(port)
    good = dict(upstream="pool", peer=origin.addr)
    bad = dict(upstream="pool", peer=f"127.0.0.1:{dead}")
    assert val(s, "switchyard_upstream_tries_total", **good) == 4
    assert val(s, "switchyard_upstream_connect_duration_seconds_count", **good) == 4
    assert val(s, "switchyard_upstream_header_duration_seconds_count", **good) == 4
    assert val(s, "switchyard_upstream_response_duration_seconds_count", **good) == 4
    # round robin tried the dead server once, then held it failed
    assert val(s, "switchyard_upstream_peer_failures_total", **bad) == 1
    assert val(s, "switchyard_upstream_tries_total", **bad) == 1
    assert val(s, "switchyard_upstream_peer_down", **bad) == 1
    assert val(s, "switchyard_upstream_peer_down", **good) == 0
    promtool_check(text)


def test_websocket_tunnel_open_bytes_and_close_reason(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    switchyard(conf(port, extra=ws_location("second", b.addr)))
    labels = dict(location="/ws", upstream=b.addr)

    async def go():
        async with ws_connect(port) as ws:
            await ws.send("hello metrics")
            assert await ws.recv() == "hello metrics"
            return scrape(port)[1]

    during = run(go())
    assert val(during, "switchyard_tunnels_open", **labels) == 1
    assert val(during, "switchyard_tunnels_opened_total", **labels) == 1
    assert val(during, "switchyard_connections", state="tunnel") == 1

    def closed():
        s = scrape(port)[1]
        return (val(s, "switchyard_tunnels_open", **labels) == 0 and
                val(s, "switchyard_tunnels_closed_total", reason="client_closed", **labels) == 1)
    wait_until(closed, 5, "the tunnel counted as closed by the client")
    text, s = scrape(port)
    assert val(s, "switchyard_tunnel_bytes_total", direction="from_client", **labels) >= 13
    assert val(s, "switchyard_tunnel_bytes_total", direction="from_upstream", **labels) >= 13
    assert val(s, "switchyard_connections", state="tunnel") == 0
    # the upgrade request itself: one request, status 101
    assert val(s, "switchyard_http_requests_total", server=SERVER, location="/ws",
               code_class="1xx") == 1
    assert val(s, "switchyard_upstream_tries_total", upstream=b.addr, peer=b.addr) == 1
    promtool_check(text)


def test_tunnel_closed_by_policy_and_idle_timeout(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    extra = (ws_location("second", b.addr, "websocket_max_message_size 100;") + "\n" +
             ws_location("second", b.addr, "websocket_idle_timeout 1s;")
             .replace("location /ws", "location /idle", 1))
    switchyard(conf(port, extra=extra))

    async def too_big():
        async with ws_connect(port, "/ws") as ws:
            await ws.send("x" * 1000)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code

    async def idle():
        async with ws_connect(port, "/idle") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    assert run(too_big(), 20) == 1009
    assert run(idle(), 20) == 1001

    def counted():
        s = scrape(port)[1]
        return (val(s, "switchyard_tunnels_closed_total", location="/ws", upstream=b.addr,
                    reason="policy") == 1 and
                val(s, "switchyard_tunnels_closed_total", location="/idle", upstream=b.addr,
                    reason="idle_timeout") == 1)
    wait_until(counted, 5, "the closes counted as policy and idle_timeout")


def test_refused_upgrades_by_reason(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port = free_port()
    switchyard(conf(port, extra=ws_location("second", b.addr)))
    bad_version = (b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert raw_request(port, bad_version).startswith(b"HTTP/1.1 426")
    no_key = (b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert raw_request(port, no_key).startswith(b"HTTP/1.1 400")
    _, s = scrape(port)
    assert val(s, "switchyard_upgrades_refused_total", location="/ws",
               reason="unsupported_version") == 1
    assert val(s, "switchyard_upgrades_refused_total", location="/ws", reason="bad_request") == 1


def test_websocket_over_http2_and_unknown_protocol(switchyard, ws_backend):  # noqa: F811
    b = ws_backend()
    port, h2port = free_port(), free_port()
    switchyard(conf(port, extra_http=h2_server(h2port, body=ws_location("second", b.addr))))
    labels = dict(location="/ws", upstream=b.addr)
    with H2Client(h2port) as c:
        ws, st = H2WebSocket.open(c, "/ws")
        assert st.status == 200
        ws.send_text("over h2")
        assert ws.recv() == (True, 1, b"over h2")
        _, s = scrape(port)
        assert val(s, "switchyard_tunnels_open", **labels) == 1
        assert val(s, "switchyard_http2_streams") == 1
        # a :protocol other than websocket: 501, before any location
        sid = c.send_headers([(":method", "CONNECT"), (":protocol", "chat"), (":scheme", "http"),
                              (":path", "/ws"), (":authority", "localhost")], end_stream=False)
        assert c.wait_headers(sid).status == 501
    wait_until(lambda: val(scrape(port)[1], "switchyard_tunnels_open", **labels) == 0, 5,
               "the HTTP/2 tunnel closed")
    _, s = scrape(port)
    assert val(s, "switchyard_tunnels_opened_total", **labels) == 1
    assert val(s, "switchyard_tunnel_bytes_total", direction="from_client", **labels) >= 7
    assert val(s, "switchyard_upgrades_refused_total", location="",
               reason="unknown_protocol") == 1


def test_upstream_declining_an_upgrade(switchyard, origin):
    port = free_port()
    loc = (f"location = /nows {{ proxy_pass http://{origin.addr}/status/403; "
           "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
           "proxy_set_header Connection upgrade; }")
    switchyard(conf(port, extra=loc))
    up = (b"GET /nows HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert raw_request(port, up).startswith(b"HTTP/1.1 403")
    _, s = scrape(port)
    assert val(s, "switchyard_upgrades_refused_total", location="= /nows",
               reason="upstream_declined") == 1


# --------------------------------------------------------------------------
# limits, TLS


def test_limit_req_and_limit_conn_outcomes(switchyard):
    port = free_port()
    zones = ("limit_req_zone $binary_remote_addr zone=perip:1m rate=1r/m;\n"
             "limit_conn_zone $binary_remote_addr zone=conns:1m;\n")
    zones += "limit_req_zone $binary_remote_addr zone=burst:1m rate=20r/s;\n"
    zones += "limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;\n"
    extra = ("location /lim { limit_req zone=perip; empty_gif; }\n"
             "location /burst { limit_req zone=burst burst=5; empty_gif; }\n"
             "location /dry { limit_req zone=dry; limit_req_dry_run on; empty_gif; }\n"
             "location /conn { limit_conn conns 5; empty_gif; }")
    switchyard(conf(port, extra=extra, extra_http=zones))
    assert request(port, "GET", "/lim").status == 200
    assert request(port, "GET", "/lim").status == 503
    assert request(port, "GET", "/lim").status == 503
    for _ in range(2):
        assert request(port, "GET", "/burst").status == 200  # the second one delayed
        assert request(port, "GET", "/dry").status == 200    # the second one over, let through
    for _ in range(2):
        assert request(port, "GET", "/conn").status == 200
    text, s = scrape(port)
    assert val(s, "switchyard_limit_req_requests_total", zone="perip", outcome="passed") == 1
    assert val(s, "switchyard_limit_req_requests_total", zone="perip", outcome="rejected") == 2
    assert total(s, "switchyard_limit_req_requests_total", zone="burst") == 2
    assert val(s, "switchyard_limit_req_requests_total", zone="burst", outcome="delayed") >= 1
    assert val(s, "switchyard_limit_req_requests_total", zone="dry", outcome="passed") == 1
    assert val(s, "switchyard_limit_req_requests_total", zone="dry",
               outcome="rejected_dry_run") == 1
    assert val(s, "switchyard_limit_conn_requests_total", zone="conns", outcome="passed") == 2
    promtool_check(text)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("metrics-cert")
    crt, key = d / "m.crt", d / "m.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-subj", "/CN=metrics.test", "-days", "2"],
                   check=True, capture_output=True, timeout=30)
    return crt, key


def test_tls_handshakes_and_failures(switchyard, cert):
    port, tport = free_port(), free_port()
    tls = (f"server {{ listen 127.0.0.1:{tport} ssl; server_name tls.test;\n"
           f"    ssl_certificate {cert[0]}; ssl_certificate_key {cert[1]};\n"
           "    location / { return 200 \"tls\"; } }")
    switchyard(conf(port, extra_http=tls))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sess = None
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", tport), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="tls.test", session=sess) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: tls.test\r\nConnection: close\r\n\r\n")
                while s.recv(4096):
                    pass
                sess = s.session
    # plain HTTP to the TLS port (nginx's 497, a 400 page)
    with socket.create_connection(("127.0.0.1", tport), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 400")
    # no cipher in common (an RSA suite; the certificate is EC)
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{tport}", "-tls1_2",
                        "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10)
    assert p.returncode != 0

    def counted():
        s = scrape(port)[1]
        return (total(s, "switchyard_tls_handshakes_total", version="TLSv1.2") == 2 and
                val(s, "switchyard_tls_handshake_failures_total", reason="http_request") == 1 and
                val(s, "switchyard_tls_handshake_failures_total",
                    reason="no_shared_cipher") == 1)
    wait_until(counted, 5, "2 TLSv1.2 handshakes, a plain-HTTP request, no shared cipher")
    text, s = scrape(port)
    # the second connection resumed the first one's session (tickets are on)
    assert val(s, "switchyard_tls_handshakes_total", version="TLSv1.2", resumed="no") == 1
    assert val(s, "switchyard_tls_handshakes_total", version="TLSv1.2", resumed="yes") == 1
    promtool_check(text)


# --------------------------------------------------------------------------
# several workers, reloads, worker deaths


def _served_by_each(m, port: int) -> dict[int, int]:
    """One /ok request through each worker (the others stopped); the pids."""
    seen = {}
    for w in m.workers():
        with only_worker(m, w):
            assert served_by(port) == w
            assert request(port, "GET", "/ok").status == 200
            seen[w] = 1
    return seen


def test_summed_over_workers_kept_across_reload_and_worker_death(sy_workers):  # noqa: F811
    port = free_port()
    text = conf(port, extra_main="worker_processes 2;")
    m = sy_workers(text, 2)
    assert len(_served_by_each(m, port)) == 2
    _, s = scrape(port)
    ok = dict(server=SERVER, location="/ok", code_class="2xx")
    assert val(s, "switchyard_http_requests_total", **ok) == 2  # one in each worker
    assert len([k for k in s if k[0] == "switchyard_worker_resident_memory_bytes"]) == 2
    assert all(v > 0 for k, v in s.items() if k[0] == "switchyard_worker_resident_memory_bytes")
    assert val(s, "switchyard_config_reloads_total", outcome="ok") == 0

    m.reload(text.replace("return 404;", "return 410;"))
    _, after = scrape(port)
    for key, v in s.items():
        if key[0].endswith("_total"):
            assert after.get(key, 0) >= v, (key, v, after.get(key))
    assert val(after, "switchyard_config_reloads_total", outcome="ok") == 1
    assert val(after, "switchyard_http_requests_total", **ok) == 2
    gens = [v for k, v in after.items() if k[0] == "switchyard_config_generations"]
    assert len(gens) == 2 and all(g >= 1 for g in gens), gens

    # a worker killed: the master starts another, which continues its counts
    victim = m.workers()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in m.workers() and len(m.workers()) == 2, 10,
               "the worker replaced")
    assert request(port, "GET", "/ok").status == 200
    _, later = scrape(port)
    assert val(later, "switchyard_http_requests_total", **ok) == 3
    for key, v in after.items():
        if key[0].endswith("_total"):
            assert later.get(key, 0) >= v, (key, v, later.get(key))
    # the new worker shows up once it has started
    wait_until(lambda: len([k for k in scrape(port)[1]
                            if k[0] == "switchyard_worker_resident_memory_bytes"]) == 2, 10,
               "both workers' memory")


def test_failed_reload_counted(sy_workers):  # noqa: F811
    port = free_port()
    text = conf(port, extra_main="worker_processes 1;")
    m = sy_workers(text, 1)
    mark = m.log_mark()
    m.conf_path.write_text(text.replace("metrics;", "metrics; no_such_directive;"))
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reload failed", since=mark)
    _, s = scrape(port)
    assert val(s, "switchyard_config_reloads_total", outcome="failed") == 1
    assert val(s, "switchyard_config_reloads_total", outcome="ok") == 0


# --------------------------------------------------------------------------
# a real Prometheus server


def _prom_query(port: int, query: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    assert data["status"] == "success", data
    return data["data"]["result"]


def test_scraped_by_prometheus(switchyard, tmp_path):
    if not PROMETHEUS:
        pytest.skip("prometheus (Debian's package) is not installed")
    port, pport = free_port(), free_port()
    switchyard(conf(port))
    for _ in range(5):
        assert request(port, "GET", "/ok").status == 200
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: switchyard
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:{port}']
""")
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                          f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{pport}"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        found = {}

        def scraped():
            try:
                up = _prom_query(pport, 'up{job="switchyard"}')
                res = _prom_query(pport, 'switchyard_http_requests_total{location="/ok"}')
            except OSError:
                return False
            if not up or up[0]["value"][1] != "1" or not res:
                return False
            found["value"] = float(res[0]["value"][1])
            found["metric"] = res[0]["metric"]
            return True
        wait_until(scraped, 60, "Prometheus to scrape Switchyard", interval=0.5)
        assert found["value"] == 5
        assert found["metric"]["server"] == SERVER and found["metric"]["code_class"] == "2xx"
        q = _prom_query(pport, "histogram_quantile(0.99, sum by (le) "
                               "(switchyard_http_request_duration_seconds_bucket))")
        assert q and float(q[0]["value"][1]) <= 10, q
    finally:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        log.close()

