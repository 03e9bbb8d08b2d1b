"""End to end: a real browser (Debian's Chromium, driven by playwright-core via
drive.js) loads a page over https from Switchyard and talks WebSocket over
wss:// through it to the node `ws` backend (tests/integration/ws_backend.js).

Both of the seed's configurations (conf/examples/seed-first.conf and
seed-second.conf) run as they are, with TLS added to their server
(`listen ... ssl; ssl_certificate ...;`), a `location /` serving the test page,
a `location /api/` proxied to the same backend (HTTP/1.1), a `location = /conn`
answering its connection's $connection, a `location /refused` whose upstream
refuses the upgrade (403), and an access log of $connection, $server_protocol,
$http2 and $request.

Over HTTP/1.1 (test_websocket_over_wss_in_chromium) and over HTTP/2
(test_seed_over_http2_one_connection: `http2 on;`, ALPN h2): there the page,
its API call and the WebSocket (RFC 8441 extended CONNECT, which Chromium
uses because Switchyard sends SETTINGS_ENABLE_CONNECT_PROTOCOL=1) must share
ONE TCP connection, counted by Switchyard's connection serial and by `ss`.

Certificates come from tls_pki.py at test time. Chromium trusts the test root
CA through a fresh NSS database ($HOME/.pki/nssdb, made with `certutil` from
libnss3-tools) in a throw-away HOME: no certificate errors are ignored.

Screenshots: <tmp_path>/<case>.png, copied to build/e2e-screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402
from harness import REPO, free_port  # noqa: E402
from tls_pki import Pki  # noqa: E402
from ws_fixtures import ws_backend  # noqa: E402,F401  (fixture)

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = HERE / "drive.js"
SHOTS = REPO / "build" / "e2e-screenshots"
FAILED_RE = re.compile(r"WebSocket connection to .* failed")
DRIVE_TIMEOUT = 45  # seconds, the bound on one browser run


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.localhost = p._leaf("localhost", "rsa")
    return p


@pytest.fixture(scope="module")
def browser_home(tmp_path_factory, pki):
    """A HOME whose NSS database trusts the test root CA (Chromium on Linux
    reads $HOME/.pki/nssdb)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (scripts/install-deps)")
    if shutil.which("node") is None or not (REPO / "node_modules" / "playwright-core").is_dir():
        pytest.skip("node or node_modules/playwright-core is missing (scripts/install-deps)")
    certutil = shutil.which("certutil")
    if certutil is None:
        pytest.skip("certutil is missing (libnss3-tools, scripts/install-deps)")
    home = tmp_path_factory.mktemp("home")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for args in (["-N", "--empty-password"],
                 ["-A", "-n", "Switchyard Test Root CA", "-t", "C,,", "-i", str(pki.ca)]):
        subprocess.run([certutil, "-d", f"sql:{db}", *args], check=True,
                       capture_output=True, timeout=30)
    return home


# One access log line: $connection (the serial of the client's TCP connection),
# $connection_requests, $server_protocol, $http2 ("h2" over TLS HTTP/2, "" on
# HTTP/1.x), "$request" (over HTTP/2 a WebSocket is "CONNECT /ws HTTP/2.0",
# logged when its tunnel ends) and $status.
LOG_FORMAT = "'$connection $connection_requests $server_protocol \"$http2\" \"$request\" $status'"
LOG_RE = re.compile(r'^(\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" (\d+)$')


def seed_conf(kind: str, port: int, backend: str, www: Path, pki, h2: bool = False) -> str:
    """conf/examples/seed-<kind>.conf with TLS (and with `h2`, HTTP/2) on its
    server, the page at /, an API, the connection probe /conn, a location
    whose upstream refuses the WebSocket upgrade, and the access log."""
    text = (REPO / "conf" / "examples" / f"seed-{kind}.conf").read_text()
    crt, key = pki.localhost
    assert "listen 8080;" in text and "127.0.0.1:9000" in text and "\nhttp {\n" in text
    text = text.replace("\nhttp {\n", (
        f"\nhttp {{\n"
        f"    log_format e2e {LOG_FORMAT};\n"
        f"    access_log logs/access.log e2e;\n"))
    text = text.replace("listen 8080;", (
        f"listen 127.0.0.1:{port} ssl;\n"
        + ("        http2 on;\n" if h2 else "") +
        f"        ssl_certificate     {crt};\n"
        f"        ssl_certificate_key {key};\n\n"
        f"        location /api/ {{\n"
        f"            proxy_http_version 1.1;\n"
        f"            proxy_set_header  X-Forwarded-Proto   $scheme;\n"
        f"            proxy_pass        http://127.0.0.1:9000;\n"
        f"        }}\n\n"
        f"        location = /conn {{\n"
        f"            return 200 \"$connection\\n\";\n"
        f"        }}\n\n"
        f"        location / {{\n"
        f"            root {www};\n"
        f"            index index.html;\n"
        f"        }}\n\n"
        f"        location /refused {{\n"
        f"            proxy_set_header  X-Forwarded-Proto   $scheme;\n"
        f"            proxy_pass        http://127.0.0.1:9000/reject/403;\n"
        f"        }}"))
    return text.replace("127.0.0.1:9000", backend)


@pytest.fixture
def stack(tmp_path, ws_backend, pki):  # noqa: F811
    """start(kind) -> (switchyard, backend, port): Switchyard with TLS, the seed
    config `kind`, in front of a fresh ws backend. Stopped at teardown."""
    if not harness.BIN.exists():
        pytest.skip(f"{harness.BIN} is not built (make all)")
    started = []

    def start(kind: str, h2: bool = False):
        be = ws_backend()
        port = free_port()
        www = tmp_path / "www"
        www.mkdir()
        page = (HERE / "page.html").read_text()
        (www / "index.html").write_text(page.replace("@WS_ORIGIN@", f"wss://localhost:{port}"))
        sy = harness.Switchyard(tmp_path / "sy", seed_conf(kind, port, be.addr, www, pki, h2))
        started.append(sy)
        sy.start()
        return sy, be, port

    yield start
    problems = []
    for sy in started:
        problems += sy.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def drive(tmp_path: Path, home: Path, name: str, url: str, *, preconnect: bool = True,
          netlog: Path | None = None, **opts) -> dict:
    """Run drive.js on `url`; returns its JSON report. The screenshot goes to
    tmp_path/<name>.png and build/e2e-screenshots/<name>.png.

    preconnect=False turns Chromium's network prediction off in the fresh
    profile (the "Preload pages" setting, pref net.network_prediction_options
    = 2): otherwise, on navigation, Chromium preconnects speculative sockets
    to the page's origin and, once the HTTP/2 session exists, closes them
    unused ("Switching to HTTP2 session" in its net log), so a count of the
    connections Switchyard accepted would include a socket no request went
    over. netlog: write Chromium's net log (--log-net-log) there."""
    shot = tmp_path / f"{name}.png"
    profile = tmp_path / "chromium-profile"
    if not preconnect:
        (profile / "Default").mkdir(parents=True, exist_ok=True)
        (profile / "Default" / "Preferences").write_text(
            json.dumps({"net": {"network_prediction_options": 2}}))
    if netlog is not None:
        opts["extra_args"] = opts.get("extra_args", []) + [f"--log-net-log={netlog}"]
    args = dict(url=url, screenshot=str(shot), user_data_dir=str(profile),
                timeout_ms=20000, **opts)
    env = dict(os.environ, HOME=str(home))
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    r = subprocess.run(["node", str(DRIVER), json.dumps(args)], cwd=str(HERE), env=env,
                       capture_output=True, timeout=DRIVE_TIMEOUT)
    stderr = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, f"drive.js exited with {r.returncode}:\n{stderr[-4000:]}"
    report = json.loads(r.stdout.decode().strip().splitlines()[-1])
    if shot.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SHOTS / shot.name)
    report["screenshot"] = str(shot)
    return report


def headers_of(rec: dict) -> dict:
    return {k.lower(): v for k, v in rec["headers"]}


def describe(report: dict) -> str:
    return json.dumps({k: report[k] for k in ("errors", "page_errors", "console", "result")},
                      indent=1)[:6000]


def check_page_run(rep: dict):
    """The browser ran the page without any error and the page passed."""
    info = describe(rep)
    assert rep["errors"] == [] and rep["page_errors"] == [], info
    assert rep["status"] == 200, info
    failed = [m for m in rep["console"] if FAILED_RE.search(m["text"])]
    assert failed == [], info
    assert [m for m in rep["console"] if m["type"] == "error"] == [], info
    assert rep["result"] and rep["result"]["ok"], info


def check_websocket(res: dict, be, port: int) -> dict:
    """Both ways through the WebSocket, as the page and as the backend saw it;
    returns the backend's record of the upgrade request."""
    assert res["echo"] == "hello from chromium"
    assert res["burst"] == {"sent": 100, "received": 100, "in_order": True}
    big = res["big"]
    assert big["echoed_bytes"] == big["bytes"] == 1 << 20
    assert big["echoed_sha256"] == big["sha256"]
    # what the backend itself received: 1 + 100 + 1 data messages, the same bytes
    stats = res["backend_stats"]
    assert stats["rx_msgs"] == 102
    assert stats["rx_bytes"] == len("hello from chromium") + sum(
        len(f"message {i}") for i in range(100)) + (1 << 20)
    assert res["close"]["code"] == 1000

    # the upgrade request as the backend parsed it (its events reach the test
    # through a reader thread: wait for the one that must be there)
    be.wait_event("request", url="/ws")
    ups = [e for e in be.requests() if e["upgrade"]]
    assert [e["url"] for e in ups] == ["/ws"], ups
    h = headers_of(ups[0])
    assert h["x-forwarded-proto"] == "https"
    assert h["x-real-ip"] == "127.0.0.1"
    assert h["x-forwarded-for"].split(",")[-1].strip() == "127.0.0.1"
    assert h["host"] == f"localhost:{port}" or h["host"] == "localhost"
    assert h["upgrade"].lower() == "websocket"
    assert headers_of(res["backend_handshake"]) == h
    be.wait_event("ws_close", conn=ups[0]["conn"], code=1000)
    return ups[0]


def protocol_of(res: dict, suffix: str, kind: str = "resource") -> str | None:
    """nextHopProtocol of the page's performance entry (navigation or
    resource) whose URL ends with `suffix`."""
    found = [e["protocol"] for e in res["protocols"]
             if e["type"] == kind and e["name"].endswith(suffix)]
    assert len(found) == 1, res["protocols"]
    return found[0]


@pytest.mark.parametrize("kind", ["first", "second"])
def test_websocket_over_wss_in_chromium(stack, browser_home, tmp_path, kind):
    sy, be, port = stack(kind)
    rep = drive(tmp_path, browser_home, f"seed-{kind}", f"https://localhost:{port}/")
    check_page_run(rep)
    res = rep["result"]
    assert protocol_of(res, "/", "navigation") == "http/1.1", res["protocols"]
    check_websocket(res, be, port)
    assert "[warn]" not in sy.error_log(), sy.error_log()[-3000:]


def connection_serial(port: int, ca: Path) -> int:
    """$connection of a fresh TLS connection to Switchyard (GET /conn over
    HTTP/1.1): Switchyard numbers the client connections it accepts 1, 2, ...,
    so two probes bracket how many connections were accepted in between."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET /conn HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = harness.read_until_close(s, timeout=5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:500]
    return int(body.strip())


def access_lines(sy) -> list[tuple]:
    """The access log as (connection, requests, server_protocol, http2,
    request, status) tuples."""
    out = []
    for line in sy.access_log().splitlines():
        m = LOG_RE.match(line)
        assert m, f"unexpected access log line: {line!r}"
        c, n, proto, h2, req, status = m.groups()
        out.append((int(c), int(n), proto, h2, req, int(status)))
    return out


def netlog_view(path: Path, port: int) -> dict:
    """What Chromium's net log says about its connections to 127.0.0.1:port:
    "tcp": the local address of each TCP connection it made there;
    "sessions": per HTTP/2 session to localhost:port, the settings received
    ({name: value}) and the requests sent on it ([":method :path :protocol"])."""
    text = path.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        # a net log whose writer did not finish lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    tcp, sessions = [], {}
    for e in log["events"]:
        name, params, src = names[e["type"]], e.get("params") or {}, e["source"]["id"]
        if name == "TCP_CONNECT" and params.get("remote_address") == f"127.0.0.1:{port}":
            tcp.append(params["local_address"])
        elif name == "HTTP2_SESSION" and params.get("host") == f"localhost:{port}":
            sessions[src] = {"settings": {}, "requests": []}
        elif src in sessions and name == "HTTP2_SESSION_RECV_SETTING":
            sessions[src]["settings"][params["id"].split("(")[-1].rstrip(")")] = params["value"]
        elif src in sessions and name == "HTTP2_SESSION_SEND_HEADERS":
            h = dict(x.split(": ", 1) for x in params["headers"] if x.startswith(":"))
            sessions[src]["requests"].append(
                " ".join(h.get(k, "") for k in (":method", ":path", ":protocol")).strip())
    return {"tcp": tcp, "sessions": list(sessions.values())}


@pytest.mark.parametrize("kind", ["first", "second"])
def test_seed_over_http2_one_connection(stack, browser_home, pki, tmp_path, kind):
    """The seed's scenario over HTTP/2: the page, an API call (proxied to the
    node backend over HTTP/1.1) and the WebSocket (RFC 8441 extended CONNECT,
    bridged to an HTTP/1.1 upgrade) on ONE TCP connection."""
    sy, be, port = stack(kind, h2=True)
    before = connection_serial(port, pki.ca)
    netlog = tmp_path / "netlog.json"
    rep = drive(tmp_path, browser_home, f"seed-{kind}-h2",
                f"https://localhost:{port}/?api=/api/hello&hold=1", count_port=port,
                preconnect=False, netlog=netlog)
    after = connection_serial(port, pki.ca)
    check_page_run(rep)
    info = describe(rep)
    res = rep["result"]

    # HTTP/2 as the browser saw it ...
    assert protocol_of(res, "/?api=/api/hello&hold=1", "navigation") == "h2", res["protocols"]
    assert protocol_of(res, "/api/hello") == "h2", res["protocols"]
    # ... the API call reached the backend over HTTP/1.1 ...
    assert res["api"]["status"] == 200, info
    api = res["api"]["backend"]
    assert (api["method"], api["url"], api["version"]) == ("GET", "/api/hello", "1.1"), api
    # ... and the WebSocket worked both ways, an HTTP/1.1 upgrade at the backend
    up = check_websocket(res, be, port)
    assert (up["method"], up["version"]) == ("GET", "1.1"), up
    assert "upgrade" in headers_of(up)["connection"].lower(), up

    # ONE TCP connection: Switchyard accepted exactly one connection between
    # the two probes (connection_serial's own connections are before and
    # after) ...
    assert after - before == 2, (before, after, rep["sockets"], sy.access_log(), info)
    conn = before + 1
    # ... while the WebSocket was open the browser had exactly one socket to
    # the proxy ...
    socks = rep["sockets"]
    assert socks is not None and len(socks) == 1, socks
    assert '"chromium"' in socks[0], socks
    # ... and the access log has the page, the API call and the WebSocket's
    # extended CONNECT (logged when its tunnel ended) on that connection, all
    # HTTP/2 ($server_protocol, $http2).
    sy.wait_access_log(r'(?m)^\d+ \d+ \S+ "[^"]*" "CONNECT /ws HTTP/2.0" \d+$', timeout=10)
    lines = access_lines(sy)
    browser = [ln for ln in lines if ln[4] != "GET /conn HTTP/1.1"]
    assert [ln[4] for ln in browser] == [
        "GET /?api=/api/hello&hold=1 HTTP/2.0", "GET /api/hello HTTP/2.0", "CONNECT /ws HTTP/2.0"
    ], lines
    for c, _n, proto, h2, req, status in browser:
        assert (c, proto, h2, status) == (conn, "HTTP/2.0", "h2", 200), (req, lines)
    probes = [ln for ln in lines if ln[4] == "GET /conn HTTP/1.1"]
    assert [(ln[0], ln[2], ln[3]) for ln in probes] == [
        (before, "HTTP/1.1", ""), (after, "HTTP/1.1", "")], lines

    # The browser's side, from its net log: one TCP connection to the proxy,
    # one HTTP/2 session on it that received ENABLE_CONNECT_PROTOCOL=1 and
    # carried the page, the API call and the extended CONNECT (RFC 8441).
    view = netlog_view(netlog, port)
    assert len(view["tcp"]) == 1, view
    assert len(view["sessions"]) == 1, view
    session = view["sessions"][0]
    assert session["settings"].get("SETTINGS_ENABLE_CONNECT_PROTOCOL") == 1, view
    assert session["requests"] == [
        "GET /?api=/api/hello&hold=1", "GET /api/hello", "CONNECT /ws websocket"], view
    assert "[warn]" not in sy.error_log(), sy.error_log()[-3000:]


@pytest.mark.parametrize("kind", ["first", "second"])
def test_refused_upgrade_fails_visibly(stack, browser_home, tmp_path, kind):
    """The negative case: the upstream answers 403 to the upgrade. The browser
    reports the failure in its console and Switchyard logs a [warn] line, so
    the checks above can fail."""
    sy, be, port = stack(kind)
    mark = sy.log_mark()
    rep = drive(tmp_path, browser_home, f"seed-{kind}-refused",
                f"https://localhost:{port}/?path=/refused&expect=failure",
                expect_console=r"WebSocket connection to .* failed")
    info = describe(rep)

    assert rep["errors"] == [] and rep["page_errors"] == [], info
    res = rep["result"]
    assert res and res["ok"] and not res["opened"], info
    assert res["close"]["code"] == 1006, info
    failed = [m["text"] for m in rep["console"] if FAILED_RE.search(m["text"])]
    assert len(failed) == 1, info
    assert f"wss://localhost:{port}/refused" in failed[0]
    assert "403" in failed[0], failed

    be.wait_event("reject", status=403)
    assert [e["url"] for e in be.requests() if e["upgrade"]] == ["/reject/403"]
    sy.wait_log(r"\[warn\][^\n]*upstream answered 403 to the WebSocket upgrade"
                r"[^\n]*/refused", since=mark)
