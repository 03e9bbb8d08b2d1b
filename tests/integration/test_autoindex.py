"""`autoindex` (ngx_http_autoindex_module): directory listings byte for byte
as nginx writes them, in html (exact and rounded sizes, UTC and local
dates, UTF-8 names with `charset utf-8`), json, jsonp and xml.

The same directory is listed by the proxy under test and by Debian's nginx
(/usr/sbin/nginx, started here on its own port with the same configuration)
and the bodies are compared; a few expectations are also written out, so the
test says what the format is even where nginx is not installed. Plus: index
files win, hidden entries are skipped, POST and a missing directory, jsonp's
callback checks, and one HTTP/2 case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from h2_support import h2_get, h2_server
from harness import fill, free_port, http_conf, port_open, request, wait_until

NGINX = Path("/usr/sbin/nginx")
MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT

CONF = r"""
server {
    listen 127.0.0.1:@P@;
    root @ROOT@;
    autoindex on;
    location /rounded/ { alias @ROOT@/list/; autoindex_exact_size off; }
    location /local/ { alias @ROOT@/list/; autoindex_localtime on; }
    location /utf/ { alias @ROOT@/list/; charset utf-8; }
    location /json/ { alias @ROOT@/list/; autoindex_format json; }
    location /jsonp/ { alias @ROOT@/list/; autoindex_format jsonp; }
    location /xml/ { alias @ROOT@/list/; autoindex_format xml; }
    location /off/ { alias @ROOT@/list/; autoindex off; }
}
"""

LONG_ASCII = "a" * 60 + ".txt"
EXACT_50 = "d" * 50
UNICODE = "привет-мир.txt"
LONG_UNICODE = "я" * 55


def make_tree(root: Path) -> Path:
    lst = root / "list"
    lst.mkdir(parents=True)
    files = {
        "empty.txt": 0, "small.txt": 9999, "ten-k.txt": 10000, "big.bin": 1048575,
        "mega.bin": 3 * 1024 * 1024 + 600 * 1024, 'a&b<c>"d\'.txt': 5, "with space.txt": 7,
        "tab\there": 1, UNICODE: 12, LONG_UNICODE: 2, LONG_ASCII: 3, "plus+percent%.txt": 4,
    }
    for name, size in files.items():
        with open(lst / name, "wb") as f:
            f.truncate(size)  # sparse: sizes without writing the bytes
    with open(lst / "giga.iso", "wb") as f:
        f.truncate(1024 * 1024 * 1024 + 600 * 1024 * 1024)
    for d in ("sub", "Zeta", EXACT_50, "x" * 49):
        (lst / d).mkdir()
    (lst / ".hidden").write_text("h")
    os.symlink("small.txt", lst / "link-to-small")
    os.symlink("nowhere", lst / "broken-link")
    for p in list(lst.iterdir()) + [lst]:
        os.utime(p, (MTIME, MTIME), follow_symlinks=False)
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_text("the index\n")
    return lst


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoindex") / "www"
    make_tree(root)
    return root


class ReferenceNginx:
    """Debian's nginx serving the same configuration on its own port."""

    def __init__(self, prefix: Path, conf_text: str, port: int):
        self.prefix = prefix
        self.port = port
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(conf_text)
        self.proc = subprocess.Popen(
            [str(NGINX), "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log"),
             "-g", f"daemon off; master_process off; pid {prefix}/nginx.pid;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(port) or self.proc.poll() is not None, 10,
                   "the reference nginx to listen")
        assert self.proc.poll() is None, (prefix / "error.log").read_text()

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def servers(switchyard, tree, tmp_path):
    """(port of the proxy under test, port of the reference nginx or None)."""
    p = free_port()
    switchyard(http_conf(fill(CONF, P=p, ROOT=tree)))
    ref = None
    if NGINX.exists():
        rp = free_port()
        ref = ReferenceNginx(tmp_path / "ref", http_conf(fill(CONF, P=rp, ROOT=tree)), rp)
    yield p, (ref.port if ref else None)
    if ref:
        ref.stop()


def get(port, path, method="GET"):
    return request(port, method, path)


def same_as_nginx(servers, path):
    """The response of the proxy under test, checked against nginx's."""
    p, rp = servers
    r = get(p, path)
    assert r.status == 200, r
    if rp is not None:
        ref = get(rp, path)
        assert ref.status == 200
        assert r.header("Content-Type") == ref.header("Content-Type")
        assert r.body.decode("utf-8", "replace") == ref.body.decode("utf-8", "replace")
        assert r.body == ref.body
    return r


@pytest.mark.parametrize("path", ["/list/", "/rounded/", "/local/", "/utf/", "/json/",
                                  "/jsonp/?callback=cb.x_1", "/jsonp/", "/xml/"])
def test_listing_matches_nginx(servers, path):
    same_as_nginx(servers, path)


def test_html_format(servers):
    r = same_as_nginx(servers, "/list/")
    assert r.header("Content-Type") == "text/html"
    text = r.body.decode("latin-1")  # (names are cut at bytes without a UTF-8 charset)
    lines = text.split("\r\n")
    assert lines[:4] == ["<html>", "<head><title>Index of /list/</title></head>", "<body>",
                         '<h1>Index of /list/</h1><hr><pre><a href="../">../</a>']
    assert text.endswith("</pre><hr></body>\r\n</html>\r\n")
    # directories first, sorted by bytes; hidden entries skipped
    names = [ln.split('"')[1] for ln in lines[4:] if ln.startswith("<a href=")]
    assert names[:4] == ["Zeta/", "d" * 50 + "/", "sub/", "x" * 49 + "/"]
    assert ".hidden" not in text
    assert ('<a href="sub/">sub/</a>' + " " * 46 + " 14-Nov-2023 22:13" + " " * 19 + "-"
            in lines)
    assert ('<a href="small.txt">small.txt</a>' + " " * 41 + " 14-Nov-2023 22:13 "
            + "9999".rjust(19) in lines)
    # escaped href and text, cut long names
    assert '<a href="a%26b%3Cc%3E%22d%27.txt">a&amp;b&lt;c&gt;&quot;d\'.txt</a>' in text
    assert f'<a href="{LONG_ASCII}">{"a" * 47}..&gt;</a> 14-Nov-2023' in text
    # a directory name of exactly 50 characters shows no slash
    assert f'<a href="{EXACT_50}/">{EXACT_50}</a> 14-Nov-2023' in text


def test_rounded_sizes(servers):
    text = same_as_nginx(servers, "/rounded/").body.decode("latin-1")
    assert '<a href="small.txt">small.txt</a>' + " " * 41 + " 14-Nov-2023 22:13    9999" in text
    assert '<a href="ten-k.txt">ten-k.txt</a>' + " " * 41 + " 14-Nov-2023 22:13     10K" in text
    assert " 14-Nov-2023 22:13   1024K" in text   # 1048575 bytes
    assert " 14-Nov-2023 22:13      4M" in text   # 3.59 MiB rounds up
    assert " 14-Nov-2023 22:13      2G" in text   # 1.59 GiB
    assert '<a href="sub/">sub/</a>' + " " * 46 + " 14-Nov-2023 22:13       -" in text


def test_utf8_names_with_charset(servers):
    r = same_as_nginx(servers, "/utf/")
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    text = r.body.decode("utf-8")
    # counted in characters: padded to 50 columns of characters
    assert f">{UNICODE}</a>" + " " * (50 - len(UNICODE)) + " 14-Nov-2023" in text
    assert f">{'я' * 47}..&gt;</a> 14-Nov-2023" in text


def test_json_formats(servers):
    r = same_as_nginx(servers, "/json/")
    assert r.header("Content-Type") == "application/json"
    entries = json.loads(r.body)
    by_name = {e["name"]: e for e in entries}
    assert by_name["sub"] == {"name": "sub", "type": "directory",
                              "mtime": "Tue, 14 Nov 2023 22:13:20 GMT"}
    assert by_name["small.txt"] == {"name": "small.txt", "type": "file",
                                    "mtime": "Tue, 14 Nov 2023 22:13:20 GMT", "size": 9999}
    assert by_name["broken-link"]["type"] == "other"
    assert by_name["link-to-small"]["size"] == 9999
    assert "tab\there" in by_name
    assert r.body.startswith(b'[\r\n{ "name":"Zeta", "type":"directory", ')
    r = same_as_nginx(servers, "/jsonp/?callback=cb.x_1")
    assert r.header("Content-Type") == "application/javascript"
    assert r.body.startswith(b"/* callback */\r\ncb.x_1([\r\n{ ") and r.body.endswith(b"\r\n]);")
    r = same_as_nginx(servers, "/jsonp/")  # no callback: plain JSON
    assert r.header("Content-Type") == "application/json"


def test_jsonp_bad_callback(servers):
    for p in [x for x in servers if x]:
        assert get(p, "/jsonp/?callback=alert(1)").status == 400
        assert get(p, "/jsonp/?callback=" + "a" * 129).status == 400


def test_xml_format(servers):
    r = same_as_nginx(servers, "/xml/")
    assert r.header("Content-Type") == "text/xml; charset=utf-8"
    text = r.body.decode("utf-8")
    assert text.startswith('<?xml version="1.0"?>\r\n<list>\r\n'
                           '<directory mtime="2023-11-14T22:13:20Z">Zeta</directory>\r\n')
    assert '<file mtime="2023-11-14T22:13:20Z" size="9999">small.txt</file>\r\n' in text
    assert '<other mtime="2023-11-14T22:13:20Z">broken-link</other>\r\n' in text
    assert text.endswith("</list>\r\n")


def test_index_file_wins_and_other_cases(servers):
    for p in [x for x in servers if x]:
        r = get(p, "/withindex/")
        assert (r.status, r.body) == (200, b"the index\n")
        assert get(p, "/off/").status == 403
        assert get(p, "/nothing/").status == 404
        assert get(p, "/list/", method="POST").status == 403
        h = get(p, "/list/", method="HEAD")
        assert h.status == 200 and h.body == b"" and h.header("Content-Type") == "text/html"


def test_over_http2(switchyard, tree):
    p = free_port()
    switchyard(http_conf(h2_server(p, body=f"root {tree};\nautoindex on;\nlocation / {{ }}")))
    st = h2_get(p, "/list/")
    assert st.status == 200
    assert st.header("content-type") == "text/html"
    assert b'<a href="sub/">sub/</a>' in st.body


def test_directives_check(sy_t):
    rc, out = sy_t(http_conf(f"server {{ listen 127.0.0.1:{free_port()}; "
                             "location / { autoindex_format yaml; } }"))
    assert rc != 0 and 'invalid value "yaml"' in out, out
    rc, out = sy_t(http_conf(f"server {{ listen 127.0.0.1:{free_port()}; autoindex on; "
                             "autoindex_exact_size off; autoindex_localtime on; "
                             "location / { autoindex_format jsonp; } }"))
    assert rc == 0, out
