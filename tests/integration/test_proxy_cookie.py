"""proxy_cookie_domain, proxy_cookie_path, proxy_cookie_flags
(ngx_http_proxy_module): Set-Cookie of proxied responses rewritten by
nginx's rules -- Domain compared case-insensitively without its leading dot,
Path as a case-sensitive prefix, `~` / `~*` regexes replacing the whole
value with their captures, variables, several directives (the first match
wins), `off` and inheritance (each list on its own: a location setting only
flags keeps the server's paths), the flags secure/nosecure/httponly/nohttponly/
samesite=.../nosamesite by name or regex, untouched headers passed byte for
byte. Run against nginx too (SWITCHYARD_BIN=/usr/sbin/nginx)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from backends import read_request_head
from harness import fill, free_port, http_conf, request

COOKIES = [
    "a=1; Path=/app/x; Domain=backend.internal; HttpOnly",
    "b=2; path=/; domain=.BACKEND.internal; secure; SameSite=Lax",
    "c=3;Path=/other;Domain=other.example",
    "flag",
    "d=4; Path=/App/y",
]


def cookie_backend(conn):
    req = read_request_head(conn)
    head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
    if b" /accel" in req.split(b"\r\n", 1)[0]:
        head += "X-Accel-Redirect: /landing\r\n"
    head += "".join(f"Set-Cookie: {c}\r\n" for c in COOKIES)
    conn.sendall(head.encode() + b"\r\nok")


CONF = r"""
server {
    listen 127.0.0.1:@P@;
    listen 127.0.0.1:@Q@ http2;
    proxy_cookie_path /app/ /srv/;
    location /dom { proxy_pass http://@B@; proxy_cookie_domain backend.internal public.example; }
    location /path { proxy_pass http://@B@; proxy_cookie_path /app/ /; }
    location /re {
        proxy_pass http://@B@;
        proxy_cookie_path ~*^/app/(.*)$ /new/$1;
        proxy_cookie_domain ~^(.+)\.internal$ $1.example;
    }
    location /flags {
        proxy_pass http://@B@;
        proxy_cookie_flags a secure samesite=strict;
        proxy_cookie_flags ~^[bc]$ nosecure nohttponly samesite=none;
        proxy_cookie_flags d nosamesite httponly;
    }
    location /vars {
        proxy_pass http://@B@;
        proxy_cookie_path /app/ /$arg_p/;
        proxy_cookie_flags $arg_n $arg_f;
    }
    location /multi {
        proxy_pass http://@B@;
        proxy_cookie_path /nomatch/ /x/;
        proxy_cookie_path /app/ /second/;
        proxy_cookie_path /app/ /third/;
    }
    location /off { proxy_pass http://@B@; proxy_cookie_path off; }
    location /accel { proxy_pass http://@B@; proxy_cookie_path /app/ /accel/; }
    location = /landing { internal; return 200 "landed"; }
    location /inherit { proxy_pass http://@B@; }
}
"""


@pytest.fixture
def sy(switchyard, raw_backend):
    b = raw_backend(cookie_backend)
    p, q = free_port(), free_port()
    s = switchyard(http_conf(fill(CONF, P=p, Q=q, B=b.addr)))
    s.p, s.q = p, q
    return s


def cookies(sy, target):
    r = request(sy.p, "GET", target)
    assert r.status == 200 and r.body == b"ok", r
    return r.header_all("Set-Cookie")


def test_domain(sy):
    assert cookies(sy, "/dom") == [
        "a=1; Path=/srv/x; Domain=public.example; HttpOnly",
        "b=2; path=/; domain=.public.example; secure; SameSite=Lax",
        COOKIES[2], COOKIES[3], COOKIES[4]]


def test_path_prefix_case_sensitive(sy):
    assert cookies(sy, "/path") == [
        "a=1; Path=/x; Domain=backend.internal; HttpOnly",
        COOKIES[1], COOKIES[2], COOKIES[3], COOKIES[4]]


def test_regexes_with_captures(sy):
    assert cookies(sy, "/re") == [
        "a=1; Path=/new/x; Domain=backend.example; HttpOnly",
        "b=2; path=/; domain=.BACKEND.example; secure; SameSite=Lax",
        COOKIES[2], COOKIES[3],
        "d=4; Path=/new/y"]


def test_flags(sy):
    assert cookies(sy, "/flags") == [
        "a=1; Path=/srv/x; Domain=backend.internal; HttpOnly; Secure; SameSite=Strict",
        "b=2; path=/; domain=.BACKEND.internal; SameSite=None",
        "c=3; Path=/other; Domain=other.example; SameSite=None",
        COOKIES[3],
        "d=4; Path=/App/y; HttpOnly"]


def test_variables(sy):
    assert cookies(sy, "/vars?p=z&n=A&f=secure") == [
        "a=1; Path=/z/x; Domain=backend.internal; HttpOnly; Secure",
        COOKIES[1], COOKIES[2], COOKIES[3], COOKIES[4]]
    # an empty or unknown flag changes nothing
    assert cookies(sy, "/vars?p=z&n=b&f=bogus") == [
        "a=1; Path=/z/x; Domain=backend.internal; HttpOnly",
        COOKIES[1], COOKIES[2], COOKIES[3], COOKIES[4]]


def test_first_match_off_and_inheritance(sy):
    assert cookies(sy, "/multi")[0] == "a=1; Path=/second/x; Domain=backend.internal; HttpOnly"
    assert cookies(sy, "/off") == COOKIES
    assert cookies(sy, "/inherit")[0] == "a=1; Path=/srv/x; Domain=backend.internal; HttpOnly"


def test_x_accel_redirect_keeps_rewritten_cookies(sy):
    r = request(sy.p, "GET", "/accel")
    assert r.status == 200 and r.body == b"landed", r
    assert r.header_all("Set-Cookie")[0] == "a=1; Path=/accel/x; Domain=backend.internal; HttpOnly"


def test_over_http2(sy):
    if not shutil.which("curl"):
        pytest.skip("no curl")
    out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-D", "-", "-o", "/dev/null",
                          f"http://127.0.0.1:{sy.q}/flags"],
                         capture_output=True, timeout=10, check=True).stdout.decode()
    got = [ln.split(":", 1)[1].strip() for ln in out.splitlines()
           if ln.lower().startswith("set-cookie:")]
    assert got[0] == "a=1; Path=/srv/x; Domain=backend.internal; HttpOnly; Secure; SameSite=Strict"
    assert got[4] == "d=4; Path=/App/y; HttpOnly"


@pytest.mark.parametrize("body,msg", [
    ("proxy_cookie_path off; proxy_cookie_path / /x;", '"proxy_cookie_path" directive is duplicate'),
    ("proxy_cookie_path / /x; proxy_cookie_path off;", '"proxy_cookie_path" directive is duplicate'),
    ("proxy_cookie_domain foo;", 'invalid parameter "foo"'),
    ("proxy_cookie_flags a;", 'invalid parameter "a"'),
    ("proxy_cookie_flags a b c d e;",
     'invalid number of arguments in "proxy_cookie_flags" directive'),
])
def test_errors(sy_t, body, msg):
    rc, out = sy_t(http_conf(f"server {{ listen 127.0.0.1:1; location / {{ {body} }} }}"))
    assert rc != 0 and msg in out, out
