"""A configuration in the layout of the h5bp server-configs-nginx boilerplate
(tests/integration/configs/h5bp-style: a small nginx.conf, the site in
conf.d/, the h5bp/ snippets it includes) passes `-t` and behaves as the
boilerplate means it to (issue 14, item 8): compression, charset and expiry
chosen from the response's Content-Type through maps on
$sent_http_content_type, security headers on HTML, hidden and backup files
denied, filename-based cache busting, the www redirect, HTTPS redirect, HTTP/2
on the TLS listener, 444 for unknown names.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import BIN, Switchyard, free_port, request
from tls_pki import Pki

pytestmark = [pytest.mark.switchyard_only,
              pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not built")]

LAYOUT = Path(__file__).parent / "configs" / "h5bp-style"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def site(tmp_path, pki):
    """The layout copied and filled in; (conf path, http port, https port)."""
    d = tmp_path / "conf"
    shutil.copytree(LAYOUT, d)
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("<!doctype html><title>h5bp</title>" + "<p>hello</p>" * 60)
    (www / "style.css").write_text("body { color: red }\n" * 40)
    (www / "data.json").write_text('{"a": 1}\n')
    (www / ".env").write_text("SECRET=1\n")
    (www / "style.css.bak").write_text("old\n")
    (www / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 500)
    http, https = free_port(), free_port()
    crt, key = pki.cert("a.test")
    for f in d.rglob("*.conf"):
        f.write_text(f.read_text().replace("@PREFIX@", str(tmp_path)).replace("@PORT@", str(http))
                     .replace("@TLSPORT@", str(https)).replace("@CERT@", str(crt))
                     .replace("@KEY@", str(key)).replace("@ROOT@", str(www)))
    (tmp_path / "logs").mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    return conf, http, https


def without_pid(conf: Path) -> None:
    """The harness gives the pid file with -g (a second `pid` is nginx's
    "is duplicate")."""
    conf.write_text("\n".join(ln for ln in conf.read_text().splitlines()
                              if not ln.startswith("pid ")) + "\n")


def curl(pki, https: int, path: str, *args: str) -> tuple[str, bytes]:
    # the certificate is a.test's: this test is about the configuration, not TLS
    r = subprocess.run(["curl", "-sS", "--http2", "--max-time", "10", "--insecure",
                        "--resolve", f"example.com:{https}:127.0.0.1", "-D", "-",
                        "-o", "/dev/stderr", *args, f"https://example.com:{https}{path}"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().lower(), r.stderr


def headers(head: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ln in head.splitlines()[1:]:
        if ":" in ln:
            k, _, v = ln.partition(":")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_layout_passes_t(site):
    conf, _, _ = site
    r = subprocess.run([str(BIN), "-t", "-p", f"{conf.parent.parent}/", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "[emerg]" not in r.stderr and "[warn]" not in r.stderr, r.stderr


@pytest.fixture
def running(site, tmp_path):
    conf, http, https = site
    without_pid(conf)
    sy = Switchyard(tmp_path, conf.read_text())
    sy.conf_path = conf  # the layout's includes are relative to its own directory
    sy.ports = [http, https]
    sy.start()
    yield http, https
    problems = sy.stop()
    assert not problems, problems


def test_html_is_compressed_with_charset_expiry_and_security_headers(running, pki):
    _, https = running
    head, body = curl(pki, https, "/", "-H", "Accept-Encoding: gzip")
    h = headers(head)
    assert head.startswith("http/2 200")
    assert h["content-type"] == ["text/html; charset=utf-8"]
    assert h["content-encoding"] == ["gzip"]
    assert gzip.decompress(body).startswith(b"<!doctype html><title>h5bp</title>")
    assert h["vary"] == ["accept-encoding"]
    assert h["cache-control"] == ["max-age=0", "no-transform"]
    assert h["x-frame-options"] == ["deny"]
    assert h["x-content-type-options"] == ["nosniff"]
    assert h["referrer-policy"] == ["strict-origin-when-cross-origin"]
    assert h["content-security-policy"][0].startswith("default-src 'self'")
    assert h["strict-transport-security"] == ["max-age=16070400; includesubdomains"]
    assert h["x-ua-compatible"] == ["ie=edge"]


def test_css_expires_in_a_year_and_cache_busting(running, pki):
    _, https = running
    for path in ("/style.css", "/style.12345.css"):
        head, body = curl(pki, https, path)
        h = headers(head)
        assert head.startswith("http/2 200"), (path, head)
        assert body == b"body { color: red }\n" * 40
        assert h["content-type"] == ["text/css; charset=utf-8"]
        assert h["cache-control"] == ["max-age=31536000", "no-transform"]
        assert "x-frame-options" not in h  # HTML only


def test_images_get_cors_and_a_month(running, pki):
    _, https = running
    head, _ = curl(pki, https, "/logo.png")
    h = headers(head)
    assert h["access-control-allow-origin"] == ["*"]
    assert h["cache-control"] == ["max-age=2592000", "no-transform"]
    assert "content-encoding" not in h


@pytest.mark.parametrize("path", ["/.env", "/style.css.bak"])
def test_hidden_and_backup_files_are_denied(running, pki, path):
    _, https = running
    head, body = curl(pki, https, path)
    assert head.startswith("http/2 403"), head
    assert b"SECRET" not in body and b"old" not in body


def test_redirects_and_unknown_names(running, pki):
    http, https = running
    r = request(http, "GET", "/a?b=1", headers=[("Host", "example.com")])
    assert r.status == 301 and r.header("location") == "https://example.com/a?b=1"
    head, _ = curl(pki, https, "/x", "-H", "Host: www.example.com")
    assert head.startswith("http/2 301"), head
    assert headers(head)["location"] == ["https://example.com/x"]
    # no site for this name: the connection is closed without an answer (444)
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "Host: other.test",
                        f"http://127.0.0.1:{http}/"], capture_output=True, timeout=30)
    assert r.returncode == 52, r  # "Empty reply from server"
