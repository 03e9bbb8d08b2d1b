"""proxy_pass builds the upstream request-target exactly as nginx does:
- with a URI part (`proxy_pass http://b/new/;` in `location /old/`) the part of
  the *normalised* URI matching the location is replaced, the rest re-escaped
  (only characters that need it; `%41` arrives as `A`, `%2F` as `/`) and the
  original args appended;
- without a URI part the request-target is passed exactly as the client sent
  it (no normalisation, encoded bytes and args untouched);
- after `rewrite ... break` the changed URI is passed (normalised, escaped,
  args appended) and a URI part in proxy_pass is ignored;
- with variables: if the expression has a URI part it is used as is, without
  args; without one the client's request-target is passed unchanged;
- a URI part in a regex location is a configuration error (-t fails);
- `http://NAME` may name an upstream{} group (and Host is then NAME).
"""

import pytest

from harness import fill, free_port, http_conf, request, run_switchyard_t

CONF = r"""
upstream backend { server @O@; }
server {
    listen 127.0.0.1:@P@;
    location / { proxy_pass http://@O@; }
    location /old/ { proxy_pass http://@O@/new/; }
    location /noslash { proxy_pass http://@O@/replaced; }
    location /a { proxy_pass http://@O@/; }
    location /slash/ { proxy_pass http://127.0.0.1:@OP@/; }
    location /grp/ { proxy_pass http://backend; }
    location /grpuri/ { proxy_pass http://backend/g/; }
    location /var/ { set $u @O@; proxy_pass http://$u; }
    location /vargrp/ { set $u backend; proxy_pass http://$u; }
    location /varuri/ { set $u @O@; proxy_pass http://$u/fixed; }
    location /varuri2/ { set $u @O@; proxy_pass http://$u$request_uri; }
    location /varuri3/ { set $u @O@; proxy_pass http://$u/x$uri; }
    location /varuri4/ { set $u @O@; proxy_pass http://$u/y$uri$is_args$args; }
    location ~ ^/re/(.*)$ { proxy_pass http://@O@; }
    location ~ ^/recap/(.*)$ { proxy_pass http://@O@/cap/$1; }
    location /nest/ {
        location /nest/inner/ { proxy_pass http://@O@/in/; }
        proxy_pass http://@O@/out/;
    }
}
"""


@pytest.fixture
def port(switchyard, origin):
    p = free_port()
    switchyard(http_conf(fill(CONF, P=p, O=origin.addr, OP=origin.port)))
    return p


def upstream_target(port, origin, target, **kw):
    n = len(origin.requests)
    r = request(port, "GET", target, **kw)
    assert r.status == 200, (r, r.body)
    assert r.header("X-Origin-Port") == str(origin.port)
    assert len(origin.requests) == n + 1
    return origin.requests[-1]["target"]


@pytest.mark.parametrize("target,expected", [
    # no URI part: exactly what the client sent
    ("/plain", "/plain"),
    ("/p%20q/c?x=%41&y", "/p%20q/c?x=%41&y"),
    ("/x/../b?x=1", "/x/../b?x=1"),
    ("/x//y/%41%2F?q=%20&r", "/x//y/%41%2F?q=%20&r"),
    ("/%7Euser/?", "/%7Euser/?"),
    # URI part: location prefix replaced on the normalised URI
    ("/old/x", "/new/x"),
    ("/old/x?y=1", "/new/x?y=1"),
    ("/old/", "/new/"),
    ("/old/a%20b/%41?q", "/new/a%20b/A?q"),
    ("/old/../old/z", "/new/z"),
    ("/old//z", "/new/z"),
    ("/old/a%2Fb", "/new/a/b"),
    ("/old/%3F?x", "/new/%3F?x"),
    ("/old/%25", "/new/%25"),
    ("/noslash/x", "/replaced/x"),
    ("/noslashes?k", "/replacedes?k"),
    ("/noslash", "/replaced"),
    # the classic: location without slash, proxy_pass with one
    ("/a/x", "//x"),
    ("/abc", "/bc"),
    ("/a%20b/c?x=%41&y", "/%20b/c?x=%41&y"),
    ("/slash/x/y?z", "/x/y?z"),
    # upstream groups
    ("/grp/x?1", "/grp/x?1"),
    ("/grpuri/x?1", "/g/x?1"),
    # variables
    ("/var/a%20b?v=1", "/var/a%20b?v=1"),
    ("/vargrp/q?1", "/vargrp/q?1"),
    ("/varuri/q?v=1", "/fixed"),
    ("/varuri2/%41?v=1", "/varuri2/%41?v=1"),
    ("/varuri3/%41?v=1", "/x/varuri3/A"),
    ("/varuri4/b?v=1", "/y/varuri4/b?v=1"),
    # regex locations
    ("/re/a%20b?z", "/re/a%20b?z"),
    ("/recap/abc?z", "/cap/abc"),
    # nested locations each use their own proxy_pass
    ("/nest/x", "/out/x"),
    ("/nest/inner/x", "/in/x"),
])
def test_upstream_request_target(port, origin, target, expected):
    assert upstream_target(port, origin, target) == expected


REWRITE = r"""
server {
    listen 127.0.0.1:@P@;
    location /rw/ { rewrite ^/rw/(.*)$ /target/$1 break; proxy_pass http://@O@; }
    location /rwuri/ { rewrite ^/rwuri/(.*)$ /target/$1 break; proxy_pass http://@O@/ignored/; }
}
"""


def test_rewrite_break_passes_changed_uri(switchyard, origin):
    """After `rewrite ... break` the changed URI goes upstream (normalised,
    re-escaped, original args appended); a URI part in proxy_pass is ignored."""
    p = free_port()
    switchyard(http_conf(fill(REWRITE, P=p, O=origin.addr)))
    assert upstream_target(p, origin, "/rw/a%20b?z") == "/target/a%20b?z"
    assert upstream_target(p, origin, "/rwuri/q?z") == "/target/q?z"


def test_host_is_proxy_host(port, origin):
    request(port, "GET", "/plain", host="client.test")
    request(port, "GET", "/grp/x", host="client.test")
    request(port, "GET", "/vargrp/x", host="client.test")
    hosts = [dict((k.lower(), v) for k, v in r["headers"])["host"] for r in origin.requests]
    assert hosts == [f"127.0.0.1:{origin.port}", "backend", "backend"]


def test_upstream_request_uses_http10_by_default(port, origin):
    upstream_target(port, origin, "/plain")
    assert origin.requests[-1]["version"] == "HTTP/1.0"


def test_proxy_http_version_11(switchyard, origin):
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@;
        location / { proxy_http_version 1.1; proxy_pass http://@O@; } }""",
                              P=p, O=origin.addr)))
    request(p, "GET", "/v")
    assert origin.requests[-1]["version"] == "HTTP/1.1"


def test_uri_part_in_regex_location_is_config_error(sy_t, origin):
    conf = http_conf(fill(r"""server { listen 127.0.0.1:@P@;
        location ~ ^/x/ { proxy_pass http://@O@/y/; } }""", P=free_port(), O=origin.addr))
    code, out = sy_t(conf)
    assert code != 0
    assert "proxy_pass" in out and "regular expression" in out


def test_valid_config_passes_t(sy_t, origin):
    conf = http_conf(fill(CONF, P=free_port(), O=origin.addr, OP=origin.port))
    code, out = sy_t(conf)
    assert code == 0, out
    assert "syntax is ok" in out and "test is successful" in out


@pytest.mark.parametrize("bad,needle", [
    ("location / { proxy_pass http://127.0.0.1:1 }", "unexpected"),
    ("location / { proxy_pass; }", "invalid number of arguments"),
    ("location / { proxy_pass http://empty; } } upstream empty { ", "no servers are inside upstream"),
    ("location / { proxy_pass ftp://127.0.0.1:1; }", "invalid URL prefix"),
])
def test_bad_proxy_pass_fails_t(bad, needle, tmp_path):
    from harness import BIN
    if not BIN.exists():
        pytest.skip("binary not built")
    conf = http_conf(f"server {{ listen 127.0.0.1:{free_port()}; {bad} }}")
    code, out = run_switchyard_t(conf, tmp_path)
    assert code == 1
    assert needle in out


# $upstream_cookie_NAME: nginx-tests proxy_upstream_cookie.t (None: the
# variable is empty, so add_header adds nothing)
UPSTREAM_COOKIES = [
    ("tc=", None), ("tc=;", None), ("tc= ;", None), ("tc =   ; Domain=example.com;", None),
    ("tc=x", "x"), ("tc=,", ","), ("tc\t=\tcontent     ;", None),
    ('tc="content"', '"content"'), ("tc=content", "content"),
    ("tc=con  tent; Domain=example.com", "con  tent"), ("tc = content", "content"),
    ("tc=1.2.3", "1.2.3"), ("tc==abc", "=abc"), ("tc==;abc", "="), ("=tc=content", None),
    ("tc=first,tc=second", "first,tc=second"), ("tc=first;tc=second", "first"),
    ("TC=upper", "upper"),
]


@pytest.mark.parametrize("cookie,expected", UPSTREAM_COOKIES)
def test_upstream_cookie_parsing(switchyard, origin, cookie, expected):
    import urllib.parse
    p = free_port()
    switchyard(http_conf(fill("""server { listen 127.0.0.1:@P@; location / {
        add_header X-Upstream-Cookie $upstream_cookie_tc; proxy_pass http://@O@; } }""",
                              P=p, O=origin.addr)))
    q = urllib.parse.urlencode({"Set-Cookie": cookie})
    r = request(p, "GET", f"/set-header?{q}")
    assert r.status == 200
    assert r.header("X-Upstream-Cookie") == expected


def test_proxy_redirect_regex_with_captures(switchyard, origin):
    """proxy_redirect ~regex / ~*regex (case-insensitive): a match replaces
    the whole Location with the replacement, $1.. being its captures."""
    import urllib.parse
    p = free_port()
    switchyard(http_conf(fill(r"""server { listen 127.0.0.1:@P@;
        location /ci/ { proxy_redirect ~*^HTTP://OTHER\.test/(\w+)/(.*)$ http://new.test/$2/$1;
                        proxy_pass http://@O@/; }
        location /cs/ { proxy_redirect ~^HTTP://OTHER\.test/(\w+)/(.*)$ http://new.test/$2/$1;
                        proxy_pass http://@O@/; } }""", P=p, O=origin.addr)))
    q = urllib.parse.urlencode({"Location": "http://other.test/abc/d/e"})
    r = request(p, "GET", f"/ci/set-header?{q}")
    assert r.header("Location") == "http://new.test/d/e/abc"
    # "~" is case-sensitive: no match, the Location is passed unchanged
    r = request(p, "GET", f"/cs/set-header?{q}")
    assert r.header("Location") == "http://other.test/abc/d/e"


@pytest.mark.parametrize("expect", ["100-continue", "100-Continue"])
def test_expect_continue_with_empty_body_gets_100(switchyard, origin, expect):
    """nginx-tests http_expect_100_continue.t: a proxied HTTP/1.1 request
    with Expect: 100-continue and Content-Length: 0 gets the interim 100
    before the response; an HTTP/1.0 one does not."""
    from harness import raw_request
    p = free_port()
    switchyard(http_conf(fill("server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }",
                              P=p, O=origin.addr)))
    req = ("POST /e HTTP/{v}\r\nHost: localhost\r\nExpect: " + expect +
           "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    out = raw_request(p, req.format(v="1.1").encode())
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    out = raw_request(p, req.format(v="1.0").encode())
    assert out.startswith(b"HTTP/1.1 200 ") and b" 100 " not in out.split(b"\r\n")[0]


def test_proxy_set_header_connection_close_ends_keepalive(switchyard, origin):
    """nginx-tests proxy_ssl_keepalive.t: a request sent with
    `Connection: close` (proxy_set_header) does not leave its upstream
    connection for reuse; an empty value keeps the keepalive pool working."""
    p = free_port()
    switchyard(http_conf(fill("""upstream u { server @O@; keepalive 1; }
        server { listen 127.0.0.1:@P@; proxy_http_version 1.1;
            location / { proxy_pass http://u; proxy_set_header Connection $arg_c; } }""",
                              P=p, O=origin.addr)))
    first = request(p, "GET", "/a").header("X-Origin-Conn")
    assert request(p, "GET", "/b").header("X-Origin-Conn") == first
    assert request(p, "GET", "/c?c=close").header("X-Origin-Conn") == first
    hdrs = {k.lower(): v for k, v in origin.last_request()["headers"]}
    assert hdrs.get("connection") == "close"
    after = request(p, "GET", "/d").header("X-Origin-Conn")
    assert after != first
