"""Headers across the proxy, as nginx does it.

Upstream request: `Host: $proxy_host` (with the port unless 80) and
`Connection: close` come first, then the client's headers in their order minus
Host, Connection, Keep-Alive, TE, Expect and Upgrade (and minus headers with
underscores or invalid names). proxy_set_header lists inherit only into levels
that set none; a value that evaluates to "" removes the header. Variables
$http_*, $remote_addr, $proxy_add_x_forwarded_for, $scheme, $host work.
proxy_pass_request_headers, proxy_method and proxy_set_body reshape the
request.

Response: the upstream's Connection, Keep-Alive, Transfer-Encoding, Date,
Server, X-Pad and X-Accel-* never reach the client (proxy_pass_header can let
Server/X-Accel-* through); proxy_hide_header hides more; add_header applies to
2xx/3xx unless `always`; proxy_redirect default rewrites Location and Refresh.

nginx does NOT strip headers named in the client's Connection header, nor
Trailer or Proxy-Connection, in either direction; these tests pin that down.
"""

import hashlib

import pytest

from harness import IS_NGINX, PRODUCT, HttpConn, fill, free_port, http_conf, request


def hdrs(rec):
    return [tuple(h) for h in rec["headers"]]


def hmap(rec):
    return {k.lower(): v for k, v in rec["headers"]}


def start(switchyard, origin, body, **kw):
    p = free_port()
    switchyard(http_conf(fill(body, P=p, O=origin.addr, **kw)))
    return p


# --------------------------------------------------------------------------
# defaults


def test_default_upstream_request_headers_exactly(switchyard, origin):
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    r = request(p, "GET", "/d", host="client.test",
                headers=[("User-Agent", "t/1"), ("Accept", "*/*"), ("X-Custom", "a"),
                         ("X-Custom", "b"), ("Cookie", "c=1")])
    assert r.status == 200
    rec = origin.requests[-1]
    assert rec["version"] == "HTTP/1.0"
    assert hdrs(rec) == [
        ("Host", f"127.0.0.1:{origin.port}"),
        ("Connection", "close"),
        ("User-Agent", "t/1"),
        ("Accept", "*/*"),
        ("X-Custom", "a"),
        ("X-Custom", "b"),
        ("Cookie", "c=1"),
    ]


def test_default_request_headers_with_body(switchyard, origin):
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    r = request(p, "POST", "/d", body=b"hello", headers=[("Content-Type", "text/plain")])
    assert r.status == 200
    rec = origin.requests[-1]
    assert hdrs(rec) == [
        ("Host", f"127.0.0.1:{origin.port}"),
        ("Connection", "close"),
        ("Content-Length", "5"),
        ("Content-Type", "text/plain"),
    ]
    assert rec["body_len"] == 5


def test_headers_with_underscores_are_dropped(switchyard, origin):
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    request(p, "GET", "/u", headers=[("X_Under", "1"), ("X-Dash", "2")])
    h = hmap(origin.requests[-1])
    assert "x_under" not in h and h["x-dash"] == "2"


def test_underscores_in_headers_on(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; underscores_in_headers on;
        location / { proxy_set_header X-Via-Var $http_x_under; proxy_pass http://@O@; } }""")
    request(p, "GET", "/u", headers=[("X_Under", "1")])
    h = hmap(origin.requests[-1])
    assert h["x_under"] == "1" and h["x-via-var"] == "1"


# --------------------------------------------------------------------------
# proxy_set_header


INHERIT = """
proxy_set_header X-Http http-level;
server {
    listen 127.0.0.1:@P@;
    server_name inherits.test;
    location / { proxy_pass http://@O@; }
    location /own/ { proxy_set_header X-Loc loc; proxy_pass http://@O@; }
}
server {
    listen 127.0.0.1:@P@;
    server_name sets.test;
    proxy_set_header X-Server server-level;
    location / { proxy_pass http://@O@; }
    location /own/ { proxy_set_header X-Loc loc; proxy_pass http://@O@; }
    location /outer/ {
        location /outer/inner/ { proxy_pass http://@O@; }
        proxy_pass http://@O@;
    }
}
"""


@pytest.mark.parametrize("host,target,present,absent", [
    ("inherits.test", "/", {"x-http": "http-level"}, ["x-server", "x-loc"]),
    ("inherits.test", "/own/", {"x-loc": "loc"}, ["x-http", "x-server"]),
    ("sets.test", "/", {"x-server": "server-level"}, ["x-http", "x-loc"]),
    ("sets.test", "/own/", {"x-loc": "loc"}, ["x-http", "x-server"]),
    ("sets.test", "/outer/inner/", {"x-server": "server-level"}, ["x-http", "x-loc"]),
])
def test_proxy_set_header_inheritance(switchyard, origin, host, target, present, absent):
    p = start(switchyard, origin, INHERIT)
    assert request(p, "GET", target, host=host).status == 200
    h = hmap(origin.requests[-1])
    for k, v in present.items():
        assert h.get(k) == v
    for k in absent:
        assert k not in h
    # the defaults survive whatever the level sets
    assert h["host"] == f"127.0.0.1:{origin.port}" and h["connection"] == "close"


def test_empty_value_removes_header(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        proxy_set_header Accept "";
        proxy_set_header X-Never "";
        proxy_set_header X-Maybe $http_x_absent;
        proxy_set_header X-Present $http_x_in;
        proxy_pass http://@O@; } }""")
    request(p, "GET", "/", headers=[("Accept", "*/*"), ("X-In", "v")])
    h = hmap(origin.requests[-1])
    assert "accept" not in h and "x-never" not in h and "x-maybe" not in h
    assert h["x-present"] == "v"
    assert h["x-in"] == "v"


VARS = """server { listen 127.0.0.1:@P@; location / {
    proxy_set_header Host $host:123;
    proxy_set_header X-Host $host;
    proxy_set_header X-Scheme $scheme;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Echo "[$http_x_in]";
    proxy_set_header X-Uri "$request_method $uri $args $request_uri";
    proxy_pass http://@O@; } }"""


def test_variables_in_proxy_set_header(switchyard, origin):
    p = start(switchyard, origin, VARS)
    request(p, "GET", "/a%20b?k=v", host="Example.COM:8080",
            headers=[("X-In", "v"), ("X-Forwarded-For", "192.0.2.1")])
    h = hmap(origin.requests[-1])
    assert h["host"] == "example.com:123"
    assert h["x-host"] == "example.com"
    assert h["x-scheme"] == "http"
    assert h["x-real-ip"] == "127.0.0.1"
    assert h["x-forwarded-for"] == "192.0.2.1, 127.0.0.1"
    assert h["x-echo"] == "[v]"
    assert h["x-uri"] == "GET /a b k=v /a%20b?k=v"
    # the overridden Host takes the place of the default one: one Host only
    assert [k for k, _ in hdrs(origin.requests[-1])].count("Host") == 1


def test_x_forwarded_for_without_incoming(switchyard, origin):
    p = start(switchyard, origin, VARS)
    request(p, "GET", "/", host="example.com")
    h = hmap(origin.requests[-1])
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-echo"] == "[]"


def test_proxy_pass_request_headers_off(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        proxy_pass_request_headers off; proxy_set_header X-Set yes; proxy_pass http://@O@; } }""")
    request(p, "POST", "/", body=b"abc", headers=[("X-In", "v"), ("Cookie", "c")])
    rec = origin.requests[-1]
    # (nginx sends them in this order; the order of different names carries no meaning)
    assert sorted(hdrs(rec)) == sorted([("X-Set", "yes"), ("Host", f"127.0.0.1:{origin.port}"),
                                        ("Connection", "close"), ("Content-Length", "3")])
    assert rec["body_len"] == 3


def test_proxy_method(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        proxy_method PATCH; proxy_pass http://@O@; } }""")
    r = request(p, "POST", "/m", body=b"abc")
    assert r.status == 200
    rec = origin.requests[-1]
    assert rec["method"] == "PATCH" and rec["body_len"] == 3


@pytest.mark.parametrize("method,body", [("POST", b"original"), ("GET", b"")])
def test_proxy_set_body(switchyard, origin, method, body):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        proxy_set_body "body=$arg_a"; proxy_pass http://@O@; } }""")
    r = request(p, method, "/s?a=1", body=body)
    assert r.status == 200
    rec = origin.requests[-1]
    assert rec["method"] == method
    assert hmap(rec)["content-length"] == "6"
    assert rec["body_sha256"] == hashlib.sha256(b"body=1").hexdigest()


# --------------------------------------------------------------------------
# response headers


def test_proxy_replaces_date_and_server(switchyard, origin):
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    r = request(p, "GET", "/set-header?Server=origin-srv&Date=yesterday&X-Pad=p"
                          "&X-Accel-Buffering=no&X-Accel-Expires=5&X-Kept=k")
    assert r.status == 200
    assert len(r.header_all("Server")) == 1
    assert r.header("Server").split("/")[0] == PRODUCT
    assert r.header("Date") not in (None, "yesterday") and len(r.header_all("Date")) == 1
    for h in ("X-Pad", "X-Accel-Buffering", "X-Accel-Expires"):
        assert not r.has_header(h), h
    assert r.header("X-Kept") == "k"


def test_proxy_hide_and_pass_header(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        proxy_hide_header X-Secret; proxy_pass_header Server; proxy_pass_header X-Accel-Buffering;
        proxy_pass http://@O@; } }""")
    r = request(p, "GET", "/set-header?X-Secret=s&Server=origin-srv&X-Accel-Buffering=no&X-Pad=p&X-Other=o")
    assert not r.has_header("X-Secret")
    assert r.header_all("Server") == ["origin-srv"]
    assert r.header("X-Accel-Buffering") == "no"
    assert not r.has_header("X-Pad")
    assert r.header("X-Other") == "o"


@pytest.mark.parametrize("status,plain,always", [
    (200, True, True), (201, True, True), (204, True, True), (302, True, True),
    (304, True, True), (404, False, True), (500, False, True), (502, False, True),
])
def test_add_header_always(switchyard, origin, status, plain, always):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        add_header X-Add yes; add_header X-Always yes always; proxy_pass http://@O@; } }""")
    r = request(p, "GET", f"/status/{status}")
    assert r.status == status
    assert r.has_header("X-Add") == plain
    assert r.has_header("X-Always") == always
    assert r.header("X-Origin-Port") == str(origin.port)


def test_add_header_inheritance(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@;
        add_header X-Srv s;
        location / { proxy_pass http://@O@; }
        location /own/ { add_header X-Loc l; proxy_pass http://@O@; } }""")
    r = request(p, "GET", "/x")
    assert r.header("X-Srv") == "s" and not r.has_header("X-Loc")
    r = request(p, "GET", "/own/x")
    assert r.header("X-Loc") == "l" and not r.has_header("X-Srv")


# --------------------------------------------------------------------------
# hop-by-hop


def test_request_hop_by_hop_removed(switchyard, origin):
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    r = request(p, "GET", "/h", headers=[
        ("Connection", "keep-alive, X-Named"), ("X-Named", "1"), ("Keep-Alive", "300"),
        ("TE", "trailers"), ("Upgrade", "foo/1"), ("Expect", "100-continue"),
        ("X-End", "e")])
    assert r.status == 200
    h = hdrs(origin.requests[-1])
    names = [k.lower() for k, _ in h]
    for gone in ("keep-alive", "te", "upgrade", "expect"):
        assert gone not in names, gone
    assert ("Connection", "close") in h and names.count("connection") == 1
    assert ("X-End", "e") in h


def test_request_hop_by_hop_named_headers(switchyard, origin):
    """Headers named by Connection, and Trailer / Proxy-Connection, are hop-by-hop
    (RFC 9110 §7.6.1): Switchyard drops them; nginx forwards them."""
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    request(p, "GET", "/h", headers=[("Connection", "keep-alive, X-Named"), ("X-Named", "1"),
                                     ("Trailer", "X-T"), ("Proxy-Connection", "keep-alive"),
                                     ("X-Kept", "yes")])
    h = hmap(origin.requests[-1])
    assert h["x-kept"] == "yes"
    if IS_NGINX:
        assert h["x-named"] == "1"
        assert h["trailer"] == "X-T"
        assert h["proxy-connection"] == "keep-alive"
    else:
        assert "x-named" not in h and "trailer" not in h and "proxy-connection" not in h


def test_request_connection_headers_with_keepalive_upstream(switchyard, origin):
    p = start(switchyard, origin, """upstream u { server @O@; keepalive 2; }
        server { listen 127.0.0.1:@P@; location / {
        proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://u; } }""")
    request(p, "GET", "/h", headers=[("Connection", "keep-alive"), ("Keep-Alive", "300"),
                                     ("TE", "trailers"), ("Upgrade", "foo/1")])
    rec = origin.requests[-1]
    assert rec["version"] == "HTTP/1.1"
    names = [k.lower() for k, _ in hdrs(rec)]
    assert names == ["host"]
    assert hmap(rec)["host"] == "u"


def test_response_hop_by_hop(switchyard, origin):
    p = start(switchyard, origin, "server { listen 127.0.0.1:@P@; location / { proxy_pass http://@O@; } }")
    r = request(p, "GET", "/set-header?Keep-Alive=timeout%3D5&Connection=X-Resp&X-Resp=1"
                          "&Proxy-Connection=close&Trailer=X-T&Upgrade=h2c&TE=trailers")
    assert r.status == 200
    # removed: the origin's Keep-Alive and Connection (the proxy sends its own)
    assert not r.has_header("Keep-Alive")
    assert r.header_all("Connection") == ["keep-alive"]
    if IS_NGINX:
        # nginx passes these through unchanged
        assert r.header("X-Resp") == "1"
        assert r.header("Proxy-Connection") == "close"
        assert r.header("Trailer") == "X-T"
        assert r.header("Upgrade") == "h2c"
        assert r.header("TE") == "trailers"
    else:
        # hop-by-hop (RFC 9110 §7.6.1), never relayed; an unsolicited Upgrade
        # would invite the client to switch protocols on a proxied connection
        for name in ("X-Resp", "Proxy-Connection", "Trailer", "Upgrade", "TE"):
            assert not r.has_header(name), name


def test_response_transfer_encoding_is_reframed(switchyard, origin):
    p = start(switchyard, origin, """server { listen 127.0.0.1:@P@; location / {
        proxy_http_version 1.1; proxy_pass http://@O@; } }""")
    with HttpConn(p) as c:
        r = c.request("GET", "/chunked/1000")
        assert r.status == 200 and r.body_len == 1000
        assert r.framing == "chunked"
        assert r.header_all("Transfer-Encoding") == ["chunked"]
        r = c.request("GET", "/chunked/10", version="HTTP/1.0", host="x",
                      headers=[("Connection", "keep-alive")])
        # an HTTP/1.0 client never gets chunked: the body is close-delimited
        assert r.status == 200 and r.body_len == 10
        assert not r.has_header("Transfer-Encoding")
        assert r.framing == "close"


# --------------------------------------------------------------------------
# proxy_redirect


REDIR = """server { listen 127.0.0.1:@P@;
    location /redir/ { proxy_pass http://@O@/new/; }
    location /off/ { proxy_redirect off; proxy_pass http://@O@/new/; }
    location /explicit/ { proxy_redirect http://other.test/x/ /y/; proxy_pass http://@O@/; }
    location /norewrite/ { proxy_pass http://@O@; }
}"""


def test_proxy_redirect_default(switchyard, origin):
    p = start(switchyard, origin, REDIR)
    up = f"http://{origin.addr}/new/"
    r = request(p, "GET", f"/redir/set-header?Location={up}next%3Fa%3D1&Refresh=5%3Burl%3D{up}r",
                host="front.test")
    assert r.header("Location") == f"http://front.test:{p}/redir/next?a=1"
    assert r.header("Refresh") == "5;url=/redir/r"
    # a Location for another place is left alone
    r = request(p, "GET", "/redir/set-header?Location=http://elsewhere.test/new/x", host="front.test")
    assert r.header("Location") == "http://elsewhere.test/new/x"


def test_proxy_redirect_off_and_explicit(switchyard, origin):
    p = start(switchyard, origin, REDIR)
    up = f"http://{origin.addr}/new/"
    r = request(p, "GET", f"/off/set-header?Location={up}next", host="front.test")
    assert r.header("Location") == f"{up}next"
    r = request(p, "GET", "/explicit/set-header?Location=http://other.test/x/z", host="front.test")
    assert r.header("Location") == f"http://front.test:{p}/y/z"
    # without a URI part in proxy_pass, `default` has nothing to rewrite
    r = request(p, "GET", f"/norewrite/set-header?Location=http://{origin.addr}/norewrite/q",
                host="front.test")
    assert r.header("Location") == f"http://front.test:{p}/norewrite/q"
