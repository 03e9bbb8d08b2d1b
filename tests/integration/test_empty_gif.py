"""empty_gif (ngx_http_empty_gif_module): the 43-byte transparent GIF with
Content-Type image/gif and nginx's Last-Modified, HEAD without a body, 405
for other methods, 304 when the client revalidates with that date, over
HTTP/1.1 and HTTP/2 -- against Switchyard and nginx alike
(SWITCHYARD_BIN=/usr/sbin/nginx)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness import fill, free_port, http_conf, request

GIF = bytes([
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x01, 0x00,
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x01, 0x00,
    0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x4c, 0x01,
    0x00, 0x3b])
LAST_MODIFIED = "Mon, 28 Sep 1970 06:00:00 GMT"

CONF = r"""
server {
    listen 127.0.0.1:@P@;
    listen 127.0.0.1:@Q@ http2;
    location = /pixel.gif { empty_gif; }
    location /other { return 200 "other"; }
    location = /before.gif { empty_gif; if_modified_since before; }
    location = /off.gif { empty_gif; if_modified_since off; }
    location /if { empty_gif; if ($arg_h) { add_header X-If $arg_h; } location /if/nested { } }
}
"""


@pytest.fixture
def sy(switchyard):
    p, q = free_port(), free_port()
    s = switchyard(http_conf(fill(CONF, P=p, Q=q)))
    s.p, s.q = p, q
    return s


def test_the_gif(sy):
    assert len(GIF) == 43
    r = request(sy.p, "GET", "/pixel.gif")
    assert r.status == 200
    assert r.body == GIF
    assert r.header("Content-Type") == "image/gif"
    assert r.header("Content-Length") == "43"
    assert r.header("Last-Modified") == LAST_MODIFIED
    assert request(sy.p, "GET", "/other").body == b"other"


def test_head_and_methods(sy):
    r = request(sy.p, "HEAD", "/pixel.gif")
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Length") == "43"
    assert request(sy.p, "POST", "/pixel.gif", body=b"x").status == 405
    assert request(sy.p, "DELETE", "/pixel.gif").status == 405


def test_revalidation(sy):
    r = request(sy.p, "GET", "/pixel.gif", headers={"If-Modified-Since": LAST_MODIFIED})
    assert r.status == 304 and r.body == b""
    r = request(sy.p, "GET", "/pixel.gif",
                headers={"If-Modified-Since": "Tue, 29 Sep 1970 06:00:00 GMT"})
    assert r.status == 200 and r.body == GIF
    later = {"If-Modified-Since": "Tue, 29 Sep 1970 06:00:00 GMT"}
    assert request(sy.p, "GET", "/before.gif", headers=later).status == 304
    earlier = {"If-Modified-Since": "Sun, 27 Sep 1970 06:00:00 GMT"}
    assert request(sy.p, "GET", "/before.gif", headers=earlier).status == 200
    same = {"If-Modified-Since": LAST_MODIFIED}
    assert request(sy.p, "GET", "/off.gif", headers=same).status == 200


def test_over_http2(sy):
    if not shutil.which("curl"):
        pytest.skip("no curl")
    out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-D", "-",
                          f"http://127.0.0.1:{sy.q}/pixel.gif"],
                         capture_output=True, timeout=10, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200")
    assert b"content-type: image/gif" in head.lower()
    assert body == GIF


def test_if_keeps_it_nested_location_does_not(sy):
    r = request(sy.p, "GET", "/if?h=yes")
    assert r.status == 200 and r.body == GIF and r.header("X-If") == "yes"
    assert request(sy.p, "GET", "/if/nested").status == 404


def test_only_in_location(sy_t):
    rc, out = sy_t(http_conf("server { listen 127.0.0.1:1; empty_gif; }"))
    assert rc != 0 and '"empty_gif" directive is not allowed here' in out, out
