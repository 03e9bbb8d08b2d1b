"""End to end: the live status page (`status_page;`, docs/status-page.md) in
a real browser (Debian's Chromium through playwright-core, status_drive.js).

Switchyard runs with two workers in front of the node `ws` backend; a
WebSocket tunnel is open (with known bytes each way), an upgrade was refused
by the backend and the configuration was reloaded. Chromium loads the page,
which fetches ?format=json and renders the tables: the tunnel's row (route,
client, bytes) must be in the rendered DOM, then, after the tunnel closed,
the page's own refresh must drop it. Screenshots:
build/e2e-screenshots/status-page.png and status-page-closed.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402
from harness import REPO, free_port, http_conf, wait_until  # noqa: E402
from limits_support import MasterProxy  # noqa: E402
from ws_fixtures import OP_BIN, RawWs, frame, ws_backend  # noqa: E402,F401  (fixture)

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = HERE / "status_drive.js"
SHOTS = REPO / "build" / "e2e-screenshots"
DRIVE_TIMEOUT = 45  # seconds, the bound on one browser run

# The rows of the four tables, as the browser rendered them.
COLLECT = """(() => {
  const rows = (id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
    .map((tr) => Array.from(tr.cells).map((td) => td.textContent.trim()));
  return { upstreams: rows('upstreams'), tunnels: rows('tunnels'), refused: rows('refused'),
           reloads: rows('reloads'), count: document.getElementById('tunnel-count').textContent };
})()"""


def conf(port: int, backend: str) -> str:
    return http_conf(f"""
upstream chat {{
    server {backend};
}}
server {{
    listen 127.0.0.1:{port};
    server_name status.test;
    location = /status {{
        status_page;
        allow 127.0.0.1;
        deny all;
    }}
    location /ws {{
        proxy_pass http://chat;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }}
}}""", extra_main="worker_processes 2;")


def drive(tmp_path: Path, name: str, url: str, wait_for: str) -> dict:
    """Run status_drive.js; the screenshot goes to build/e2e-screenshots/<name>.png."""
    shot = tmp_path / f"{name}.png"
    args = dict(url=url, screenshot=str(shot), user_data_dir=str(tmp_path / f"profile-{name}"),
                wait_for=wait_for, collect=COLLECT, timeout_ms=20000)
    env = dict(os.environ, HOME=str(tmp_path))
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    r = subprocess.run(["node", str(DRIVER), json.dumps(args)], cwd=str(HERE), env=env,
                       capture_output=True, timeout=DRIVE_TIMEOUT)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")[-4000:]
    report = json.loads(r.stdout.decode().strip().splitlines()[-1])
    if shot.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SHOTS / shot.name)
    assert shot.exists(), report
    return report


def test_status_page_in_chromium(tmp_path, ws_backend):  # noqa: F811
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (scripts/install-deps)")
    if shutil.which("node") is None or not (REPO / "node_modules" / "playwright-core").is_dir():
        pytest.skip("node or node_modules/playwright-core is missing (scripts/install-deps)")
    if not harness.BIN.exists():
        pytest.skip(f"{harness.BIN} is not built (make all)")
    be = ws_backend()
    port = free_port()
    text = conf(port, be.addr)
    m = MasterProxy(tmp_path / "sy", text)
    m.start()
    ws = None
    try:
        m.wait_workers(2)
        m.reload(text.replace("server_name status.test;", "server_name status.test www.status.test;"))
        refused = RawWs(port)
        assert refused.handshake("/ws/reject/200")[1] == 200
        refused.close()
        ws = RawWs(port)
        assert ws.handshake("/ws")[1] == 101
        client = "%s:%d" % ws.sock.getsockname()[:2]
        ws.send(frame(OP_BIN, b"z" * 5000))  # 5000 + 8 bytes up, 5000 + 4 down
        fr = ws.read_frame()
        assert fr is not None and fr[2] == b"z" * 5000

        url = f"http://127.0.0.1:{port}/status"
        wait = ("Array.from(document.querySelectorAll('#tunnels tbody tr'))"
                f".some((tr) => tr.textContent.includes({json.dumps(client)}))")
        rep = drive(tmp_path, "status-page", url, wait)
        assert rep["status"] == 200, rep
        assert not rep["errors"] and not rep["page_errors"], rep
        # nothing refused by the page's Content-Security-Policy, no failed fetch
        assert not [c for c in rep["console"] if c["type"] == "error"], rep["console"]
        v = rep["value"]
        row = [r for r in v["tunnels"] if client in r]
        assert len(row) == 1, v
        route, shown_client, _age, up, down, _last, _worker = row[0]
        assert route == f"status.test /ws → chat ({be.addr})", row
        assert shown_client == client
        assert up == "4.9 KiB" and down == "4.9 KiB", row  # 5008 and 5004 bytes
        assert v["count"] == "(1 open)"
        peers = [r for r in v["upstreams"] if r[0].strip() == be.addr]
        assert peers and peers[0][1] == "up", v["upstreams"]
        assert any("upstream answered 200 to the WebSocket upgrade" in r[-1] for r in v["refused"]), v
        assert v["reloads"] and v["reloads"][0][1:3] == ["2", "ok"], v["reloads"]

        ws.close()
        ws = None
        wait_until(lambda: b'"count":0' in harness.request(port, "GET", "/status?format=json").body,
                   5, "the tunnel gone from the JSON")
        rep = drive(tmp_path, "status-page-closed", url,
                    "document.getElementById('tunnel-count').textContent === '(0 open)'")
        assert not rep["errors"] and not rep["page_errors"], rep
        assert rep["value"]["tunnels"] == [["no open tunnels"]], rep["value"]
    finally:
        if ws is not None:
            ws.close()
        problems = m.stop()
    assert not problems, problems
