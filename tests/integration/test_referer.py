"""valid_referers and $invalid_referer (ngx_http_referer_module), against
Switchyard and nginx alike (SWITCHYARD_BIN=/usr/sbin/nginx): none, blocked,
server_names (exact, wildcard, regex names), exact hosts (case-insensitive,
port ignored), `*.x`, `.x`, `x.*` wildcards, a /path prefix, `~regex`
matched after the scheme, inheritance (a level's own list replaces the
parent's), no list at all, the referer_hash_* directives accepted, and
nginx's configuration errors."""

from __future__ import annotations

import pytest

from harness import fill, free_port, http_conf, request

CONF = r"""
server {
    listen 127.0.0.1:@P@;
    server_name site.example *.wild.example ~^re\d+\.example$;
    referer_hash_max_size 2048;
    referer_hash_bucket_size 64;
    valid_referers none blocked server_names example.com *.example.org .example.net
                   www.example.* partner.example/allowed ~\.google\.;
    location / { return 200 "[$invalid_referer]"; }
    location /strict { valid_referers example.com; return 200 "[$invalid_referer]"; }
    location /nested { location /nested/in { return 200 "[$invalid_referer]"; } }
    location /guard {
        valid_referers none example.com;
        if ($invalid_referer) { return 403; }
        return 200 "ok";
    }
}
server {
    listen 127.0.0.1:@P@;
    server_name nolist.example;
    location / { return 200 "[$invalid_referer]"; }
}
"""


@pytest.fixture
def sy(switchyard):
    p = free_port()
    s = switchyard(http_conf(fill(CONF, P=p)))
    s.p = p
    return s


def inv(sy, referer=None, path="/", host="site.example"):
    h = {} if referer is None else {"Referer": referer}
    r = request(sy.p, "GET", path, headers=h, host=host)
    assert r.status == 200, r
    return r.body.decode()


@pytest.mark.parametrize("ref,want", [
    (None, "[]"),                                     # none
    ("", "[]"),                                       # blocked: no scheme
    ("example.com", "[]"),                            # blocked
    ("ftp://example.com/", "[]"),                     # blocked
    ("http://example.com/", "[]"),
    ("HTTPS://EXAMPLE.COM:8443/x", "[]"),             # case, port
    ("http://evil.com/", "[1]"),
    ("http://example.com.evil.com/", "[1]"),
    ("http://a.example.org/", "[]"),                  # *.example.org
    ("http://example.org/", "[1]"),                   # not the bare name
    ("http://example.net/", "[]"),                    # .example.net: itself
    ("http://x.y.example.net/", "[]"),
    ("http://www.example.de/", "[]"),                 # www.example.*
    ("http://www.example/", "[1]"),
    ("http://partner.example/allowed/page", "[]"),    # path prefix
    ("http://partner.example/other", "[1]"),
    ("http://partner.example", "[1]"),
    ("http://www.google.de/search", "[]"),            # regex after the scheme
    ("http://site.example/", "[]"),                   # server_names
    ("http://a.wild.example/", "[]"),
    ("http://re42.example/", "[]"),
    ("http://re.example/", "[1]"),
    ("http://" + "a" * 300 + ".com/", "[1]"),         # host longer than 256
])
def test_server_level_list(sy, ref, want):
    assert inv(sy, ref) == want


def test_inheritance_and_own_list(sy):
    # a location's own list replaces the server's: no none/blocked here
    assert inv(sy, None, "/strict") == "[1]"
    assert inv(sy, "junk", "/strict") == "[1]"
    assert inv(sy, "http://example.com/", "/strict") == "[]"
    assert inv(sy, "http://a.example.org/", "/strict") == "[1]"
    # nested locations inherit
    assert inv(sy, "http://evil.com/", "/nested/in") == "[1]"
    assert inv(sy, None, "/nested/in") == "[]"


def test_guard_with_if(sy):
    assert request(sy.p, "GET", "/guard", headers={"Referer": "http://evil.com/"}).status == 403
    r = request(sy.p, "GET", "/guard", headers={"Referer": "http://example.com/a"})
    assert r.status == 200 and r.body == b"ok"
    assert request(sy.p, "GET", "/guard").status == 200


def test_no_list_is_valid(sy):
    assert inv(sy, "http://evil.com/", host="nolist.example") == "[]"
    assert inv(sy, None, host="nolist.example") == "[]"


@pytest.mark.parametrize("body,msg", [
    ("server { listen 127.0.0.1:1; valid_referers none blocked; }",
     'the "none" or "blocked" referers are specified in the "valid_referers" directive '
     'without any valid referer'),
    ("server { listen 127.0.0.1:1; valid_referers a*b.com; }",
     'invalid hostname or wildcard "a*b.com"'),
    ("server { listen 127.0.0.1:1; valid_referers example.com example.com; }",
     'conflicting parameter "example.com"'),
    ("server { listen 127.0.0.1:1; valid_referers example.com .example.com; }",
     'conflicting parameter ".example.com"'),
    ("server { listen 127.0.0.1:1; valid_referers *.example.com .example.com; }",
     'conflicting parameter ".example.com"'),
    ("server { listen 127.0.0.1:1; valid_referers a.example.* a.example.*; }",
     'conflicting parameter "a.example.*"'),
    ("server { listen 127.0.0.1:1; valid_referers a..b; }", 'invalid hostname or wildcard "a..b"'),
    ("server { listen 127.0.0.1:1; valid_referers ~; }", 'empty regex in "~"'),
    ('server { listen 127.0.0.1:1; valid_referers ""; }', 'invalid referer ""'),
])
def test_errors(sy_t, body, msg):
    rc, out = sy_t(http_conf(body))
    assert rc != 0 and msg in out, out


def test_odd_names_accepted(sy_t):
    # nginx takes these as exact names (its hash accepts them)
    rc, out = sy_t(http_conf("server { listen 127.0.0.1:1; "
                             "valid_referers . /x www.example.* www.example.com *.www.example; }"))
    assert rc == 0, out
