"""`expires` (ngx_http_headers_module) as nginx sets it:

- a time: `Expires` = now + time, `Cache-Control: max-age=time`;
- `epoch` / `max` / `0` / a negative time (`no-cache`) / `off`;
- `modified time`: from the response's Last-Modified (a file's mtime);
- `@time`: the next such local time of day;
- a value with variables (a `map`), whose `off` or unparsable value sets
  nothing;
- only for 200, 201, 204, 206, 301, 302, 303, 304, 307, 308;
- an upstream's Expires and Cache-Control are replaced (the first
  Cache-Control gets the value, the others go);
- nginx's configuration errors;
- over HTTP/2 too.
"""

from __future__ import annotations

import calendar
import email.utils
import os
import time

import pytest

from backends import RawBackend, read_request_head
from h2_support import h2_get, h2_server
from harness import fill, free_port, http_conf, request, run_switchyard_t

MTIME = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT

CONF = r"""
map $uri $exp {
    default   off;
    ~\.css$   30d;
    /var/epoch epoch;
    /var/bad  nonsense;
    /var/neg  -5m;
}
map $sent_http_content_type $ctexp {
    default    off;
    text/plain 7d;
}
server {
    listen 127.0.0.1:@P@;
    root @ROOT@;
    location /hour/     { expires 1h; }
    location /epoch/    { expires epoch; }
    location /max/      { expires max; }
    location /zero/     { expires 0; }
    location /neg/      { expires -1; }
    location /mod/      { expires modified +1d; }
    location /modneg/   { expires modified 1h; }
    location /daily/    { expires @15h30m; }
    location /var/      { expires $exp; return 200 "var\n"; }
    location /inherit/  {
        expires 2m;
        location /inherit/off/ { expires off; }
        location /inherit/in/ { }
    }
    location /ret201    { expires 1h; return 201 "c\n"; }
    location /ret204    { expires 1h; return 204; }
    location /ret302    { expires 1h; return 302 /hour/f.txt; }
    location /ret403    { expires 1h; return 403; }
    location /ret500    { expires 1h; return 500; }
    location /proxied/  { expires 10m; proxy_pass http://@U@; }
    location /proxied_off/ { proxy_pass http://@U@; }
    location /addhdr/   { expires 1h; add_header Cache-Control public; }
    location /ct/       { expires $ctexp; }
}
"""


def http_time(v: str) -> int:
    return calendar.timegm(email.utils.parsedate(v))


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "www"
    for d in ("hour", "epoch", "max", "zero", "neg", "mod", "modneg", "daily", "inherit",
              "inherit/off", "inherit/in", "addhdr", "ct"):
        (root / d).mkdir(parents=True)
        f = root / d / "f.txt"
        f.write_text("x\n")
        os.utime(f, (MTIME, MTIME))
    return root


def upstream_handler(conn):
    read_request_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                 b"Expires: Fri, 01 Jan 2100 00:00:00 GMT\r\n"
                 b"Cache-Control: private\r\nX-Mid: 1\r\nCache-Control: must-revalidate\r\n"
                 b"Connection: close\r\n\r\nup\n")


@pytest.fixture
def port(switchyard, site):
    with RawBackend(upstream_handler) as up:
        p = free_port()
        switchyard(http_conf(fill(CONF, P=p, ROOT=site, U=up.addr)))
        yield p


def get(port, path, **kw):
    r = request(port, "GET", path, **kw)
    return r, r.header_all("Expires"), r.header_all("Cache-Control")


def check_relative(r, exp, cc, seconds):
    assert cc == [f"max-age={seconds}"], r
    assert len(exp) == 1
    assert http_time(exp[0]) - http_time(r.header("Date")) == seconds


def test_time_from_now(port):
    r, exp, cc = get(port, "/hour/f.txt")
    assert r.status == 200
    check_relative(r, exp, cc, 3600)


def test_epoch_max_zero_negative(port):
    r, exp, cc = get(port, "/epoch/f.txt")
    assert (exp, cc) == (["Thu, 01 Jan 1970 00:00:01 GMT"], ["no-cache"])
    r, exp, cc = get(port, "/max/f.txt")
    assert (exp, cc) == (["Thu, 31 Dec 2037 23:55:55 GMT"], ["max-age=315360000"])
    r, exp, cc = get(port, "/zero/f.txt")
    assert cc == ["max-age=0"] and exp == [r.header("Date")]
    r, exp, cc = get(port, "/neg/f.txt")
    assert cc == ["no-cache"]
    assert http_time(exp[0]) == http_time(r.header("Date")) - 1


def test_modified_counts_from_last_modified(port):
    r, exp, cc = get(port, "/mod/f.txt")
    assert r.header("Last-Modified") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert exp == ["Wed, 15 Nov 2023 22:13:20 GMT"]
    assert cc == ["no-cache"]  # long past: the max-age came out negative
    # a 304 (If-Modified-Since) gets them too
    r, exp, cc = get(port, "/mod/f.txt",
                     headers=[("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT")])
    assert r.status == 304
    assert exp == ["Wed, 15 Nov 2023 22:13:20 GMT"] and cc == ["no-cache"]


def test_modified_without_last_modified_counts_from_now(port):
    r, exp, cc = get(port, "/var/x.css")  # (30d through the map, no Last-Modified)
    check_relative(r, exp, cc, 30 * 86400)


def test_daily_time_of_day(port):
    r, exp, cc = get(port, "/daily/f.txt")
    now = http_time(r.header("Date"))
    lt = time.localtime(now)
    target = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 15, 30, 0, 0, 0, -1))
    if target <= now:
        target = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday + 1, 15, 30, 0, 0, 0, -1))
    assert http_time(exp[0]) == int(target)
    assert cc == [f"max-age={int(target) - now}"]


def test_variable_values(port):
    r, exp, cc = get(port, "/var/plain")
    assert (exp, cc) == ([], [])  # map default: off
    r, exp, cc = get(port, "/var/epoch")
    assert (exp, cc) == (["Thu, 01 Jan 1970 00:00:01 GMT"], ["no-cache"])
    r, exp, cc = get(port, "/var/bad")
    assert r.status == 200 and (exp, cc) == ([], [])  # unparsable: nothing set
    r, exp, cc = get(port, "/var/neg")
    assert cc == ["no-cache"]
    assert http_time(exp[0]) == http_time(r.header("Date")) - 300


def test_map_on_sent_content_type(port):
    r, exp, cc = get(port, "/ct/f.txt")
    assert r.header("Content-Type") == "text/plain"
    check_relative(r, exp, cc, 7 * 86400)
    r, exp, cc = get(port, "/ct/nothing.txt")  # 404: text/html, and not a status for expires
    assert r.status == 404 and (exp, cc) == ([], [])


def test_inheritance_and_off(port):
    r, exp, cc = get(port, "/inherit/f.txt")
    check_relative(r, exp, cc, 120)
    r, exp, cc = get(port, "/inherit/in/f.txt")
    check_relative(r, exp, cc, 120)
    r, exp, cc = get(port, "/inherit/off/f.txt")
    assert (exp, cc) == ([], [])


@pytest.mark.parametrize("path,status,applies", [
    ("/ret201", 201, True), ("/ret204", 204, True), ("/ret302", 302, True),
    ("/ret403", 403, False), ("/ret500", 500, False), ("/hour/missing", 404, False),
])
def test_only_for_nginx_statuses(port, path, status, applies):
    r, exp, cc = get(port, path)
    assert r.status == status
    if applies:
        check_relative(r, exp, cc, 3600)
    else:
        assert (exp, cc) == ([], [])


def test_upstream_headers_replaced(port):
    r, exp, cc = get(port, "/proxied/x")
    assert r.status == 200 and r.body == b"up\n"
    check_relative(r, exp, cc, 600)
    assert r.header("X-Mid") == "1"
    r, exp, cc = get(port, "/proxied_off/x")
    assert exp == ["Fri, 01 Jan 2100 00:00:00 GMT"]
    assert cc == ["private", "must-revalidate"]


def test_add_header_cache_control_comes_after(port):
    r, exp, cc = get(port, "/addhdr/f.txt")
    assert cc == ["max-age=3600", "public"]
    assert http_time(exp[0]) - http_time(r.header("Date")) == 3600


def test_over_http2(switchyard, site):
    p = free_port()
    switchyard(http_conf(h2_server(p, body=f"root {site};\nlocation / {{ expires 1h; }}")))
    st = h2_get(p, "/hour/f.txt")
    assert st.status == 200
    assert st.header_all("cache-control") == ["max-age=3600"]
    assert http_time(st.header("expires")) - http_time(st.header("date")) == 3600


@pytest.mark.parametrize("args,message", [
    ("@25h", '"expires" directive daily time value must be less than 24 hours'),
    ("modified @1h", '"expires" directive daily time cannot be used with "modified" parameter'),
    ("soon", '"expires" directive invalid value'),
    ("1ms", '"expires" directive invalid value'),
    ("1s1h", '"expires" directive invalid value'),
    ("after 1h", '"expires" directive invalid value'),
    ("modified epoch", '"expires" directive invalid value'),
])
def test_config_errors(tmp_path, args, message):
    conf = http_conf(f"server {{ listen 127.0.0.1:{free_port()}; "
                     f"location / {{ expires {args}; }} }}")
    rc, out = run_switchyard_t(conf, tmp_path / "t")
    assert rc != 0
    assert message in out, out


def test_duplicate_is_an_error(tmp_path):
    conf = http_conf(f"server {{ listen 127.0.0.1:{free_port()}; "
                     "location / { expires 1h; expires 2h; } }")
    rc, out = run_switchyard_t(conf, tmp_path / "t")
    assert rc != 0 and '"expires" directive is duplicate' in out, out
