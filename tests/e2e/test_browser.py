"""End to end: a real browser (Debian's Chromium, driven by playwright-core via
drive.js) loads a page over https from Switchyard and talks WebSocket over
wss:// through it to the node `ws` backend (tests/integration/ws_backend.js).

Both of the seed's configurations (conf/examples/seed-first.conf and
seed-second.conf) run as they are, with TLS added to their server
(`listen ... ssl; ssl_certificate ...;`), a `location /` serving the test page
and a `location /refused` whose upstream refuses the upgrade (403).

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


def seed_conf(kind: str, port: int, backend: str, www: Path, pki) -> str:
    """conf/examples/seed-<kind>.conf with TLS on its server, the page at /
    and a location whose upstream refuses the WebSocket upgrade."""
    text = (REPO / "conf" / "examples" / f"seed-{kind}.conf").read_text()
    crt, key = pki.localhost
    assert "listen 8080;" in text and "127.0.0.1:9000" in text
    text = text.replace("listen 8080;", (
        f"listen 127.0.0.1:{port} ssl;\n"
        f"        ssl_certificate     {crt};\n"
        f"        ssl_certificate_key {key};\n\n"
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

    def start(kind: str):
        be = ws_backend()
        port = free_port()
        www = tmp_path / "www"
        www.mkdir()
        page = (HERE / "page.html").read_text()
        (www / "index.html").write_text(page.replace("@WS_ORIGIN@", f"wss://localhost:{port}"))
        sy = harness.Switchyard(tmp_path / "sy", seed_conf(kind, port, be.addr, www, pki))
        started.append(sy)
        sy.start()
        return sy, be, port

    yield start
    problems = []
    for sy in started:
        problems += sy.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def drive(tmp_path: Path, home: Path, name: str, url: str, **opts) -> dict:
    """Run drive.js on `url`; returns its JSON report. The screenshot goes to
    tmp_path/<name>.png and build/e2e-screenshots/<name>.png."""
    shot = tmp_path / f"{name}.png"
    profile = tmp_path / "chromium-profile"
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


@pytest.mark.parametrize("kind", ["first", "second"])
def test_websocket_over_wss_in_chromium(stack, browser_home, tmp_path, kind):
    sy, be, port = stack(kind)
    rep = drive(tmp_path, browser_home, f"seed-{kind}", f"https://localhost:{port}/")
    info = describe(rep)

    assert rep["errors"] == [] and rep["page_errors"] == [], info
    assert rep["status"] == 200, info
    failed = [m for m in rep["console"] if FAILED_RE.search(m["text"])]
    assert failed == [], info
    assert [m for m in rep["console"] if m["type"] == "error"] == [], info

    res = rep["result"]
    assert res and res["ok"], info
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
