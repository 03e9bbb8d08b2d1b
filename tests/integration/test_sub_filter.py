"""sub_filter (ngx_http_sub_module; issue 14): strings of a response body
replaced as it streams, case-insensitively, once per string by default or
everywhere with `sub_filter_once off`; several strings; variables; only for
sub_filter_types (text/html by default); Content-Length, Last-Modified and
ETag dropped (the ETag weakened with sub_filter_last_modified on); strings
split across the upstream's writes; static files, proxied responses, gzip on
top, HTTP/2. Runs against nginx too.
"""

from __future__ import annotations

import gzip
import socket
import subprocess

import pytest

from backends import read_request_head
from harness import IS_NGINX, free_port, http_conf, request


@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    (d / "page.html").write_text(
        "<html><a href=\"http://backend.local/a\">A</a> <A HREF=\"HTTP://BACKEND.LOCAL/b\">B</A>"
        " http://backend.local/c</html>\n")
    (d / "data.json").write_text('{"url": "http://backend.local/x"}\n')
    return d


def conf(port: int, www, extra: str = "", listen: str = "") -> str:
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port}{listen};
    root {www};
    types {{ text/html html; application/json json; }}
    location /once/ {{ alias {www}/; sub_filter http://backend.local https://example.com; }}
    location /all/ {{ alias {www}/; sub_filter http://backend.local https://example.com;
                     sub_filter_once off; }}
    location /many/ {{ alias {www}/; sub_filter_once off;
                      sub_filter "<a " "<a class=x ";
                      sub_filter backend.local "$host"; }}
    location /types/ {{ alias {www}/; sub_filter backend.local example.com;
                       sub_filter_once off; sub_filter_types application/json; }}
    location /lm/ {{ alias {www}/; sub_filter backend.local example.com;
                    sub_filter_last_modified on; }}
    location /gz/ {{ alias {www}/; sub_filter_once off; sub_filter backend.local example.com;
                    gzip on; gzip_min_length 1; }}
    {extra}
}}
""")


def test_once_and_case_insensitive(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    r = request(port, "GET", "/once/page.html")
    assert r.status == 200
    assert r.body == (b"<html><a href=\"https://example.com/a\">A</a> <A HREF=\"HTTP://BACKEND.LOCAL/b\">B</A>"
                      b" http://backend.local/c</html>\n")
    assert r.header("content-length") is None  # chunked: the length changed
    assert r.header("last-modified") is None and r.header("etag") is None


def test_all_occurrences_and_several_strings(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    r = request(port, "GET", "/all/page.html")
    assert r.body.count(b"https://example.com") == 3 and b"backend" not in r.body.lower()
    r = request(port, "GET", "/many/page.html", headers=[("Host", "h.test")])
    assert r.body == (b"<html><a class=x href=\"http://h.test/a\">A</a> <a class=x HREF=\"HTTP://h.test/b\">B</A>"
                      b" http://h.test/c</html>\n")


def test_types_and_last_modified(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    assert b"backend.local" in request(port, "GET", "/once/data.json").body  # not text/html
    r = request(port, "GET", "/types/data.json")
    assert r.body == b'{"url": "http://example.com/x"}\n'
    assert b"example.com" in request(port, "GET", "/types/page.html").body  # text/html always
    r = request(port, "GET", "/lm/page.html")
    assert r.header("last-modified") is not None
    assert r.header("etag", "").startswith('W/"')


def test_strings_split_across_upstream_writes(switchyard, raw_backend, www):
    pieces = [b"<p>one http://back", b"end.lo", b"cal/ two htt", b"p://backend.local", b"</p>"]

    def handler(s: socket.socket):
        read_request_head(s)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
        for p in pieces:
            s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
        s.sendall(b"0\r\n\r\n")

    b = raw_backend(handler)
    port = free_port()
    switchyard(conf(port, www, extra=f"""
    location /p {{ proxy_pass http://127.0.0.1:{b.port}; proxy_buffering off;
                  sub_filter http://backend.local https://example.com; sub_filter_once off; }}"""))
    r = request(port, "GET", "/p")
    assert r.body == b"<p>one https://example.com/ two https://example.com</p>"


def test_with_gzip_on_top(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    r = request(port, "GET", "/gz/page.html", headers=[("Accept-Encoding", "gzip")])
    assert r.header("content-encoding") == "gzip"
    body = gzip.decompress(r.body)
    assert body.count(b"example.com") == 3 and b"backend" not in body.lower()


@pytest.mark.switchyard_only
def test_over_http2(switchyard, www):
    port = free_port()
    switchyard(conf(port, www, listen=" http2"))
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                        f"http://127.0.0.1:{port}/all/page.html"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"https://example.com") == 3


def test_empty_search_pattern_is_refused(sy_t):
    rc, out = sy_t(http_conf('server { location / { sub_filter "" x; } }'))
    assert rc == 1 and "empty search pattern" in out, out
