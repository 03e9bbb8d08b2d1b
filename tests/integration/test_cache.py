"""proxy_cache: nginx's response cache (docs/cache.md).

The directives are checked as nginx checks them (same messages); the same
tests run against Debian's nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""
import re

import pytest

from harness import free_port, http_conf

MASTODON = """
proxy_cache_path cache levels=1:2 keys_zone=CACHE:10m inactive=7d max_size=1g;
server {
    listen 127.0.0.1:@PORT@;
    location / {
        proxy_pass http://127.0.0.1:9;
        proxy_cache CACHE;
        proxy_cache_valid 200 7d;
        proxy_cache_valid 410 24h;
        proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
        add_header X-Cached $upstream_cache_status;
    }
}
"""

EVERY_DIRECTIVE = """
proxy_cache_path cache levels=2 use_temp_path=off keys_zone=a:1m inactive=1h max_size=10m
    min_free=1m manager_files=10 manager_sleep=10ms manager_threshold=100ms loader_files=10
    loader_sleep=10ms loader_threshold=100ms;
proxy_cache_path cache2 levels=1:2:2 keys_zone=b:64k;
server {
    listen 127.0.0.1:@PORT@;
    proxy_cache_key $scheme$host$request_uri;
    location / {
        proxy_pass http://127.0.0.1:9;
        proxy_cache $cache_name;
        proxy_cache_valid 5m;
        proxy_cache_valid 200 302 10m;
        proxy_cache_valid any 1m;
        proxy_cache_methods GET HEAD POST;
        proxy_cache_min_uses 2;
        proxy_cache_bypass $cookie_nocache $arg_nocache;
        proxy_no_cache $http_pragma;
        proxy_no_cache $http_authorization;
        proxy_cache_use_stale error timeout invalid_header updating http_500 http_502 http_503
            http_504 http_403 http_404 http_429;
        proxy_cache_background_update on;
        proxy_cache_lock on;
        proxy_cache_lock_timeout 3s;
        proxy_cache_lock_age 4s;
        proxy_cache_revalidate on;
        proxy_cache_convert_head off;
        proxy_cache_max_range_offset 1m;
        proxy_ignore_headers X-Accel-Expires Expires Cache-Control Set-Cookie Vary;
    }
    location /b { proxy_pass http://127.0.0.1:9; proxy_cache b; }
    location /off { proxy_pass http://127.0.0.1:9; proxy_cache off; }
}
map $uri $cache_name { default a; ~^/x b; }
"""


def conf(body):
    return http_conf(body.replace("@PORT@", str(free_port())))


def test_mastodon_configuration_passes_t(sy_t):
    rc, out = sy_t(conf(MASTODON))
    assert rc == 0, out
    assert "test is successful" in out


def test_every_cache_directive_passes_t(sy_t):
    rc, out = sy_t(conf(EVERY_DIRECTIVE))
    assert rc == 0, out


def test_zone_may_be_declared_after_its_use(sy_t):
    rc, out = sy_t(conf("proxy_cache z;\nserver { listen 127.0.0.1:@PORT@; }\n"
                        "proxy_cache_path cache keys_zone=z:1m;"))
    assert rc == 0, out


@pytest.mark.parametrize("body,message", [
    ("proxy_cache_path cache levels=3 keys_zone=a:1m;", r'invalid "levels" "levels=3"'),
    ("proxy_cache_path cache levels=1:2:2:1 keys_zone=a:1m;", r'invalid "levels"'),
    ("proxy_cache_path cache keys_zone=a:1k;", r'keys zone "keys_zone=a:1k" is too small'),
    ("proxy_cache_path cache keys_zone=a;", r'invalid keys zone size "keys_zone=a"'),
    ("proxy_cache_path cache levels=1;", r'"proxy_cache_path" must have "keys_zone" parameter'),
    ("proxy_cache_path cache keys_zone=a:1m use_temp_path=1;",
     r'invalid use_temp_path value "use_temp_path=1", it must be "on" or "off"'),
    ("proxy_cache_path cache keys_zone=a:1m inactive=x;", r'invalid inactive value "inactive=x"'),
    ("proxy_cache_path cache keys_zone=a:1m max_size=x;", r'invalid max_size value "max_size=x"'),
    ("proxy_cache_path cache keys_zone=a:1m min_free=x;", r'invalid min_free value "min_free=x"'),
    ("proxy_cache_path cache keys_zone=a:1m manager_files=x;",
     r'invalid manager_files value "manager_files=x"'),
    ("proxy_cache_path cache keys_zone=a:1m loader_threshold=x;",
     r'invalid loader_threshold value "loader_threshold=x"'),
    ("proxy_cache_path cache keys_zone=a:1m bogus=1;", r'invalid parameter "bogus=1"'),
    ("proxy_cache_path cache keys_zone=a:1m;\nproxy_cache_path other keys_zone=a:1m;",
     r'duplicate zone "a"'),
    ("proxy_cache_path cache keys_zone=a:1m;\nproxy_cache_path cache keys_zone=b:1m;",
     r'the same path name "\S+/cache" used in \S+:\d+ and in \S+:\d+'),
    ("limit_req_zone $uri zone=a:1m rate=1r/s;\nproxy_cache_path cache keys_zone=a:1m;",
     r'the shared memory zone "a" is already declared for a different use'),
    ("proxy_cache nope;\nserver { listen 127.0.0.1:@PORT@; }",
     r'"proxy_cache" zone "nope" is unknown'),
    ("proxy_cache nope;", r'zero size shared memory zone "nope"'),
    ("proxy_cache off;\nproxy_cache off;", r'"proxy_cache" directive is duplicate'),
    ("proxy_cache_key a;\nproxy_cache_key b;", r'"proxy_cache_key" directive is duplicate'),
    ("proxy_cache_valid 99 1m;", r'invalid status "99"'),
    ("proxy_cache_valid 200 1500ms;", r'invalid time value "1500ms"'),
    ("proxy_cache_methods GET PUT;", r'invalid value "PUT"'),
    ("proxy_cache_use_stale error sometimes;", r'invalid value "sometimes"'),
    ("proxy_cache_min_uses 1;\nproxy_cache_min_uses 2;",
     r'"proxy_cache_min_uses" directive is duplicate'),
    ("proxy_cache_lock_timeout 1x;", r'"proxy_cache_lock_timeout" directive invalid value'),
    ("proxy_cache_max_range_offset x;",
     r'"proxy_cache_max_range_offset" directive invalid value'),
    ("server { listen 127.0.0.1:@PORT@; location / { if ($arg_a) { proxy_cache off; } } }",
     r'"proxy_cache" directive is not allowed here'),
    ("server { listen 127.0.0.1:@PORT@; proxy_cache_path cache keys_zone=a:1m; }",
     r'"proxy_cache_path" directive is not allowed here'),
])
def test_directive_errors_as_nginx(sy_t, body, message):
    rc, out = sy_t(conf(body))
    assert rc != 0, out
    assert re.search(message, out), out


# ---------------------------------------------------------------- serving

import hashlib  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402

from backends import pattern_bytes  # noqa: E402
from harness import IS_NGINX, request, wait_until  # noqa: E402


def cache_conf(origin, port, extra="", path_params="levels=1:2 keys_zone=C:1m"):
    return http_conf(f"""
proxy_cache_path cache {path_params};
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://{origin.addr};
        proxy_cache C;
        proxy_cache_valid 200 206 301 404 10m;
        add_header X-Cached $upstream_cache_status always;
        {extra}
    }}
}}
""")


def hits(origin, path):
    """Requests the origin saw for `path` (query included)."""
    return sum(1 for r in origin.requests if r["target"] == path)


def start(switchyard, origin, extra="", **kw):
    port = free_port()
    sy = switchyard(cache_conf(origin, port, extra, **kw))
    return sy, port


def test_miss_then_hit_from_one_upstream_request(switchyard, origin):
    sy, port = start(switchyard, origin)
    a = request(port, target="/page")
    b = request(port, target="/page")
    assert (a.status, a.header("X-Cached")) == (200, "MISS")
    assert (b.status, b.header("X-Cached")) == (200, "HIT")
    assert b.body == a.body
    assert b.header("Content-Type") == "application/json"
    assert hits(origin, "/page") == 1


def test_large_response_is_stored_while_streaming(switchyard, origin):
    sy, port = start(switchyard, origin)
    n = 1 << 20
    a = request(port, target="/bytes/%d" % n)
    b = request(port, target="/bytes/%d" % n)
    assert a.body == pattern_bytes(n) and b.body == a.body
    assert b.header("X-Cached") == "HIT" and b.header("Content-Length") == str(n)
    assert hits(origin, "/bytes/%d" % n) == 1


def test_chunked_response_is_stored(switchyard, origin):
    sy, port = start(switchyard, origin)
    a = request(port, target="/chunked/70000")
    b = request(port, target="/chunked/70000")
    assert b.header("X-Cached") == "HIT" and b.body == a.body == pattern_bytes(70000)
    assert hits(origin, "/chunked/70000") == 1


def test_file_is_under_levels_named_by_md5_of_key(switchyard, origin):
    sy, port = start(switchyard, origin)
    request(port, target="/k?x=1")
    key = f"http://{origin.addr}/k?x=1".encode()  # nginx's default key
    h = hashlib.md5(key).hexdigest()
    f = sy.prefix / "cache" / h[-1] / h[-3:-1] / h
    wait_until(f.exists, 5, f"the cache file ({sorted(sy.prefix.glob('cache/**/*'))})")
    assert key in f.read_bytes()


def test_head_and_range_and_304_answered_from_cache(switchyard, origin):
    sy, port = start(switchyard, origin)
    tgt = "/set-header?" + urllib.parse.urlencode({"ETag": '"v1"', "Accept-Ranges": "bytes"})
    a = request(port, target=tgt)
    assert a.header("X-Cached") == "MISS"
    h = request(port, method="HEAD", target=tgt)
    assert (h.status, h.header("X-Cached"), h.body) == (200, "HIT", b"")
    assert h.header("Content-Length") == str(len(a.body))
    r = request(port, target=tgt, headers=[("Range", "bytes=2-5")])
    assert (r.status, r.header("X-Cached"), r.body) == (206, "HIT", a.body[2:6])
    assert r.header("Content-Range") == f"bytes 2-5/{len(a.body)}"
    c = request(port, target=tgt, headers=[("If-None-Match", '"v1"')])
    assert (c.status, c.header("X-Cached"), c.body) == (304, "HIT", b"")
    assert hits(origin, tgt) == 1


def test_several_ranges_of_a_hit_are_multipart(switchyard, origin):
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Accept-Ranges=bytes&mp=1"
    full = request(port, target=tgt)
    r = request(port, target=tgt, headers=[("Range", "bytes=0-3,10-12")])
    assert (r.status, r.header("X-Cached")) == (206, "HIT")
    ctype = r.header("Content-Type")
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=", 1)[1].encode()
    parts = r.body.split(b"--" + boundary)[1:-1]
    got = [p.split(b"\r\n\r\n", 1) for p in parts]
    assert [g[1][:-2] for g in got] == [full.body[0:4], full.body[10:13]]
    assert b"Content-Range: bytes 0-3/%d" % len(full.body) in got[0][0]


def test_range_needs_the_upstreams_accept_ranges(switchyard, origin):
    """nginx serves ranges of a cached response only when the upstream said
    Accept-Ranges (ngx_http_upstream_copy_allow_ranges)."""
    sy, port = start(switchyard, origin)
    request(port, target="/bytes/1000")
    r = request(port, target="/bytes/1000", headers=[("Range", "bytes=0-9")])
    assert (r.status, r.header("X-Cached")) == (200, "HIT")
    assert r.body == pattern_bytes(1000)


def test_range_request_miss_fetches_the_full_response(switchyard, origin):
    sy, port = start(switchyard, origin)
    r = request(port, target="/bytes/1000", headers=[("Range", "bytes=0-9"),
                                                     ("If-None-Match", '"x"')])
    assert r.status == 200 and r.body == pattern_bytes(1000)
    (rec,) = [x for x in origin.requests if x["target"] == "/bytes/1000"]
    sent = {k.lower() for k, _ in rec["headers"]}
    assert "range" not in sent and "if-none-match" not in sent
    full = request(port, target="/bytes/1000")
    assert full.header("X-Cached") == "HIT" and full.body == pattern_bytes(1000)


@pytest.mark.parametrize("header", [
    ("Cache-Control", "no-store"), ("Cache-Control", "private"),
    ("Cache-Control", "no-cache"), ("Cache-Control", "max-age=0"),
    ("Set-Cookie", "a=b"), ("Vary", "*"), ("X-Accel-Expires", "0"),
    ("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"),
])
def test_responses_that_say_no_are_not_stored(switchyard, origin, header):
    sy, port = start(switchyard, origin)
    tgt = "/set-header?" + urllib.parse.urlencode([header])
    assert request(port, target=tgt).header("X-Cached") == "MISS"
    assert request(port, target=tgt).header("X-Cached") == "MISS"
    assert hits(origin, tgt) == 2


def test_set_cookie_stored_when_ignored(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_ignore_headers Set-Cookie;")
    tgt = "/set-header?Set-Cookie=a%3Db"
    request(port, target=tgt)
    assert request(port, target=tgt).header("X-Cached") == "HIT"
    assert hits(origin, tgt) == 1


@pytest.mark.parametrize("ignored,header", [
    ("Cache-Control", ("Cache-Control", "no-store")),
    ("Cache-Control", ("Cache-Control", "private")),
    ("X-Accel-Expires", ("X-Accel-Expires", "0")),
    ("Expires", ("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")),
    ("Vary", ("Vary", "*")),
])
def test_ignored_headers_do_not_prevent_storing(switchyard, origin, ignored, header):
    sy, port = start(switchyard, origin, f"proxy_ignore_headers {ignored};")
    tgt = "/set-header?" + urllib.parse.urlencode([header])
    assert request(port, target=tgt).header("X-Cached") == "MISS"
    assert request(port, target=tgt).header("X-Cached") == "HIT"
    assert hits(origin, tgt) == 1


def test_intercepted_error_status_is_cached(switchyard, origin):
    """proxy_intercept_errors: nginx stores the error's status for the key
    (its cache node's "error") and answers it, through error_page, until it
    expires or a response is stored (nginx-tests proxy_cache_bypass.t)."""
    port = free_port()
    switchyard(http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://{origin.addr};
        proxy_cache C;
        proxy_cache_key $uri;
        proxy_cache_bypass $arg_bypass;
        proxy_cache_valid any 1m;
        proxy_intercept_errors on;
        error_page 404 = @fallback;
        add_header X-Cached $upstream_cache_status;
    }}
    location @fallback {{ return 403; }}
}}
"""))
    assert request(port, target="/status/404").status == 403
    again = request(port, target="/status/404")
    assert again.status == 403
    assert hits(origin, "/status/404") == 1  # the stored status answered
    assert request(port, target="/status/404?bypass=1").status == 403
    assert hits(origin, "/status/404?bypass=1") == 1


def test_below_min_uses_the_range_goes_upstream(switchyard, origin):
    """A response that will not be stored (proxy_cache_min_uses not reached)
    is asked as the client asked, Range included (nginx-tests
    proxy_cache_max_range_offset.t)."""
    sy, port = start(switchyard, origin, "proxy_cache_min_uses 2;")
    tgt = "/set-header?Accept-Ranges=bytes&m=1"
    r = request(port, target=tgt, headers=[("Range", "bytes=1-3")])
    assert r.header("X-Cached") == "MISS"
    (rec,) = [x for x in origin.requests if x["target"] == tgt]
    assert dict((k.lower(), v) for k, v in rec["headers"])["range"] == "bytes=1-3"


def test_status_without_valid_time_is_not_stored(switchyard, origin):
    sy, port = start(switchyard, origin)
    request(port, target="/status/500")
    assert request(port, target="/status/500").header("X-Cached") == "MISS"
    assert hits(origin, "/status/500") == 2


def test_cache_control_max_age_beats_proxy_cache_valid_and_expires(switchyard, origin):
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Cache-Control=max-age%3D1"
    assert request(port, target=tgt).header("X-Cached") == "MISS"
    assert request(port, target=tgt).header("X-Cached") == "HIT"
    # a one-second validity: EXPIRED within a bounded wait, and fetched again
    wait_until(lambda: request(port, target=tgt).header("X-Cached") == "EXPIRED", 5,
               "the entry to expire", interval=0.2)
    assert request(port, target=tgt).header("X-Cached") == "HIT"


def test_bypass_and_no_cache(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_cache_bypass $arg_nocache; "
                     "proxy_no_cache $arg_nostore;")
    assert request(port, target="/b?nostore=1").header("X-Cached") == "MISS"
    assert request(port, target="/b?nostore=1").header("X-Cached") == "MISS"
    request(port, target="/b")
    assert request(port, target="/b").header("X-Cached") == "HIT"
    assert request(port, target="/b?nocache=1").header("X-Cached") == "BYPASS"


def test_min_uses(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_cache_min_uses 2;")
    for _ in range(2):
        assert request(port, target="/m").header("X-Cached") == "MISS"
    assert request(port, target="/m").header("X-Cached") == "HIT"
    assert hits(origin, "/m") == 2


def test_key_and_methods(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_cache_key $uri;")
    request(port, target="/q?a=1")
    r = request(port, target="/q?a=2")
    assert r.header("X-Cached") == "HIT"  # the key has no arguments
    p = request(port, method="POST", target="/q?a=1", body=b"x")
    assert p.header("X-Cached") is None  # POST is not a cache method by default


def test_vary_on_request_header(switchyard, origin):
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Vary=X-Lang"
    request(port, target=tgt, headers=[("X-Lang", "en")])
    assert request(port, target=tgt, headers=[("X-Lang", "en")]).header("X-Cached") == "HIT"
    other = request(port, target=tgt, headers=[("X-Lang", "fr")])
    assert other.header("X-Cached") == "MISS"


def test_vary_keeps_every_variant(switchyard, origin):
    """nginx keeps each Vary variant under a key of its own: the main key's
    file holds the first, the others do not replace it."""
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Vary=X-Lang,Accept-Encoding&v=2"
    langs = ["en", "fr", "de"]
    first = {}
    for lang in langs:
        r = request(port, target=tgt, headers=[("X-Lang", lang)])
        assert r.header("X-Cached") == "MISS"
        first[lang] = r.body
    for _ in range(2):
        for lang in langs:
            r = request(port, target=tgt, headers=[("X-Lang", lang)])
            assert (r.header("X-Cached"), r.body) == ("HIT", first[lang]), lang
    assert hits(origin, tgt) == 3
    # another value of the second Vary header is one more variant
    gz = request(port, target=tgt, headers=[("X-Lang", "en"), ("Accept-Encoding", "x")])
    assert gz.header("X-Cached") == "MISS"
    again = request(port, target=tgt, headers=[("X-Lang", "en"), ("Accept-Encoding", "x")])
    assert again.header("X-Cached") == "HIT"


@pytest.mark.switchyard_only  # as newer nginx (nginx-tests proxy_cache_vary.t); not 1.22
def test_vary_values_compare_without_blanks(switchyard, origin):
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Vary=X-Lang&n=1"
    assert request(port, target=tgt, headers=[("X-Lang", "foo, bar")]).header("X-Cached") == "MISS"
    for same in ("foo,bar", "foo,,  ,bar , "):
        r = request(port, target=tgt, headers=[("X-Lang", same)])
        assert r.header("X-Cached") == "HIT", same
    assert request(port, target=tgt, headers=[("X-Lang", "foobar")]).header("X-Cached") == "MISS"


def test_proxy_cache_variable_names_the_zone(switchyard, origin):
    port = free_port()
    sy = switchyard(http_conf(f"""
proxy_cache_path cache1 keys_zone=N1:1m;
proxy_cache_path cache2 keys_zone=N2:1m;
server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{origin.addr}; proxy_cache $arg_c; proxy_cache_valid any 1m;
        add_header X-Cached $upstream_cache_status; }} }}
"""))
    assert request(port, target="/v?c=N1").header("X-Cached") == "MISS"
    assert request(port, target="/v?c=N1").header("X-Cached") == "HIT"
    assert request(port, target="/v?c=N2").header("X-Cached") == "MISS"
    r = request(port, target="/v?c=NOPE")
    assert r.status == 500
    sy.wait_log(r'cache "NOPE" not found')
    empty = request(port, target="/v")
    assert (empty.status, empty.header("X-Cached")) == (200, None)


def test_entries_survive_reload(switchyard, origin):
    port = free_port()
    sy = switchyard(cache_conf(origin, port))
    request(port, target="/r")
    sy.reload(cache_conf(origin, port, "add_header X-Reloaded 1;"))
    r = request(port, target="/r")
    assert (r.header("X-Cached"), r.header("X-Reloaded")) == ("HIT", "1")
    assert hits(origin, "/r") == 1


def test_websocket_upgrade_is_never_cached(switchyard, origin):
    sy, port = start(switchyard, origin)
    hdrs = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
    for _ in range(2):
        r = request(port, target="/ws", headers=hdrs)
    if IS_NGINX:
        # nginx stores the refused upgrade's 200 and serves it next time
        assert r.header("X-Cached") == "HIT"
    else:
        assert r.header("X-Cached") is None
        assert hits(origin, "/ws") == 2


def test_authorization_request(switchyard, origin):
    """nginx stores a response to a request with Authorization under the
    same key and hands it to the next user; Switchyard stores it only when
    the response allows it (RFC 9111 §3.5: public, s-maxage,
    must-revalidate). docs/differences.md."""
    sy, port = start(switchyard, origin)
    auth = [("Authorization", "Basic YTpi")]
    request(port, target="/private", headers=auth)
    second = request(port, target="/private")
    if IS_NGINX:
        assert second.header("X-Cached") == "HIT"
    else:
        assert second.header("X-Cached") == "MISS"
        assert hits(origin, "/private") == 2
    tgt = "/set-header?Cache-Control=public"
    request(port, target=tgt, headers=auth)
    assert request(port, target=tgt).header("X-Cached") == "HIT"


@pytest.mark.switchyard_only
def test_unwritable_cache_proxies_with_one_log_line(switchyard, origin, tmp_path):
    (tmp_path / "blocker").write_text("a file where the cache directory should be")
    port = free_port()
    sy = switchyard(http_conf(f"""
proxy_cache_path {tmp_path}/blocker/cache keys_zone=C:1m;
server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{origin.addr}; proxy_cache C; proxy_cache_valid 1m; }} }}
"""))
    for _ in range(3):
        assert request(port, target="/u").status == 200
    assert hits(origin, "/u") == 3
    assert len(re.findall(r"cache \"C\".*proxied without being stored", sy.error_log())) == 1


# ---------------------------------------------------------------- stale

import threading  # noqa: E402


def stale_conf(origin, port, use_stale, extra=""):
    """Locations sharing one entry (key $arg_k): / asks the origin, /dead a
    closed port, /to/ the origin with a short read timeout."""
    return http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{
    listen 127.0.0.1:{port};
    {extra}
    proxy_cache C;
    proxy_cache_key $arg_k;
    proxy_cache_valid 200 1s;
    proxy_cache_use_stale {use_stale};
    add_header X-Cached $upstream_cache_status always;
    location / {{ proxy_pass http://{origin.addr}; }}
    location /dead {{ proxy_pass http://127.0.0.1:1; }}
    location /to/ {{ proxy_pass http://{origin.addr}; proxy_read_timeout 300ms; }}
}}
""")


def fill_and_expire(port, k):
    first = request(port, target=f"/?k={k}")
    assert first.header("X-Cached") == "MISS"
    time.sleep(2.1)  # the test is about time: a 1s validity ends after the next whole second
    return first


@pytest.mark.parametrize("path,use_stale", [
    ("/dead", "error"), ("/status/502", "http_502"), ("/to/slow/3000", "timeout"),
])
def test_stale_served_on_upstream_failure(switchyard, origin, path, use_stale):
    port = free_port()
    switchyard(stale_conf(origin, port, use_stale))
    first = fill_and_expire(port, "a")
    r = request(port, target=f"{path}?k=a")
    assert (r.status, r.header("X-Cached")) == (200, "STALE")
    assert r.body == first.body


def test_no_stale_without_use_stale(switchyard, origin):
    port = free_port()
    switchyard(stale_conf(origin, port, "off"))
    fill_and_expire(port, "b")
    r = request(port, target="/dead?k=b")
    assert r.status == 502


def test_stale_while_updating(switchyard, origin):
    port = free_port()
    switchyard(stale_conf(origin, port, "updating"))
    first = fill_and_expire(port, "c")
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault(
        "r", request(port, target="/slow/1000?k=c")))
    t.start()
    wait_until(lambda: hits(origin, "/slow/1000?k=c") == 1, 5, "the refresh to reach the origin")
    r = request(port, target="/?k=c")
    t.join(10)
    assert (r.status, r.header("X-Cached"), r.body) == (200, "UPDATING", first.body)
    assert slow["r"].header("X-Cached") == "EXPIRED"
    assert request(port, target="/?k=c").header("X-Cached") == "HIT"


def test_background_update(switchyard, origin):
    """proxy_cache_background_update: the expired entry is answered at once
    (STALE) while a background request fetches the new one and stores it,
    after the client has its response."""
    port = free_port()
    switchyard(stale_conf(origin, port, "updating", "proxy_cache_background_update on;"))
    first = fill_and_expire(port, "bg")
    t0 = time.monotonic()
    r = request(port, target="/slow/3000?k=bg")
    took = time.monotonic() - t0
    assert (r.status, r.header("X-Cached"), r.body) == (200, "STALE", first.body)
    assert took < 2.5, took  # not held by the 3 s upstream
    wait_until(lambda: hits(origin, "/slow/3000?k=bg") == 1, 5, "the background request")
    got = {}

    def refreshed():
        got["r"] = request(port, target="/?k=bg")
        assert got["r"].header("X-Cached") in ("UPDATING", "HIT")
        return got["r"].header("X-Cached") == "HIT"
    wait_until(refreshed, 10, "the background request to store the new entry", interval=0.2)
    assert got["r"].body != first.body and b"/slow/3000" in got["r"].body
    assert hits(origin, "/slow/3000?k=bg") == 1
    assert hits(origin, "/?k=bg") == 1  # only the first fill


def test_graceful_quit_waits_for_a_background_update(switchyard, origin):
    port = free_port()
    sy = switchyard(stale_conf(origin, port, "updating", "proxy_cache_background_update on;"))
    first = fill_and_expire(port, "q")
    before = {p: p.stat().st_mtime_ns for p in cache_files(sy.prefix / "cache")}
    r = request(port, target="/slow/1000?k=q")
    assert r.header("X-Cached") == "STALE"
    sy.stop()  # gracefully: the background request ends first
    after = {p: p.stat().st_mtime_ns for p in cache_files(sy.prefix / "cache")}
    assert len(after) == 1 and after != before, (before, after)
    assert b"/slow/1000" in next(iter(after)).read_bytes()
    assert first.body


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from tls_pki import Pki
    return Pki(tmp_path_factory.mktemp("pki"))


def test_background_update_over_tls_keeps_the_scheme(switchyard, origin, pki):
    """The background request sees the client's connection as the request
    did ($scheme https in the key and in the header sent upstream)."""
    import ssl
    from harness import HttpConn
    port = free_port()
    crt, key = pki.certs[("a.test", "rsa")]
    switchyard(http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{
    listen 127.0.0.1:{port} ssl;
    server_name a.test;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    proxy_cache C;
    proxy_cache_key $scheme$arg_k;
    proxy_cache_valid 200 1s;
    proxy_cache_use_stale updating;
    proxy_cache_background_update on;
    add_header X-Cached $upstream_cache_status always;
    location / {{ proxy_pass http://{origin.addr}; proxy_set_header X-Proto $scheme; }}
}}
"""))

    def get(target):
        c = HttpConn(port, timeout=10)
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        c.sock = ctx.wrap_socket(c.sock, server_hostname="a.test")
        try:
            return c.request("GET", target, [], b"", "a.test")
        finally:
            c.close()
    first = get("/?k=t")
    assert first.header("X-Cached") == "MISS"
    time.sleep(2.1)  # the test is about time: a 1s validity ends after the next whole second
    r = get("/slow/300?k=t")
    assert (r.header("X-Cached"), r.body) == ("STALE", first.body)
    got = {}

    def refreshed():
        got["r"] = get("/?k=t")
        return got["r"].header("X-Cached") == "HIT"
    wait_until(refreshed, 10, "the background request to store the new entry", interval=0.2)
    assert b"/slow/300" in got["r"].body
    (rec,) = [x for x in origin.requests if x["target"] == "/slow/300?k=t"]
    assert dict((k.lower(), v) for k, v in rec["headers"])["x-proto"] == "https"


# ---------------------------------------------------------------- lock

def test_lock_collapses_concurrent_misses(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_cache_lock on;")
    tgt = "/slow/600"
    out = []
    threads = [threading.Thread(target=lambda: out.append(request(port, target=tgt)))
               for _ in range(6)]
    threads[0].start()
    wait_until(lambda: hits(origin, tgt) == 1, 5, "the first request to reach the origin")
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(15)
    assert len(out) == 6 and all(r.status == 200 for r in out)
    assert sorted(r.header("X-Cached") for r in out) == ["HIT"] * 5 + ["MISS"]
    assert len({r.body for r in out}) == 1
    assert hits(origin, tgt) == 1


def test_without_lock_every_miss_goes_upstream(switchyard, origin):
    sy, port = start(switchyard, origin)
    tgt = "/slow/2000"  # long enough for the others to start while it is missing
    out = []
    threads = [threading.Thread(target=lambda: out.append(request(port, target=tgt)))
               for _ in range(3)]
    threads[0].start()
    wait_until(lambda: hits(origin, tgt) == 1, 5, "the first request to reach the origin")
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(15)
    assert hits(origin, tgt) == 3


def test_lock_timeout_goes_upstream_without_storing(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_cache_lock on; proxy_cache_lock_timeout 100ms;")
    tgt = "/slow/1500"
    out = []
    first = threading.Thread(target=lambda: out.append(request(port, target=tgt)))
    first.start()
    wait_until(lambda: hits(origin, tgt) == 1, 5, "the first request to reach the origin")
    second = request(port, target=tgt)
    first.join(15)
    assert second.header("X-Cached") == "MISS"
    assert hits(origin, tgt) == 2


def test_lock_age_lets_one_more_request_go_upstream(switchyard, origin):
    """After proxy_cache_lock_age, a waiting request goes upstream itself
    (the first fill is still running)."""
    sy, port = start(switchyard, origin, "proxy_cache_lock on; proxy_cache_lock_timeout 20s;"
                     "proxy_cache_lock_age 1s; proxy_cache_key $arg_k;")
    out = []
    first = threading.Thread(target=lambda: out.append(request(port, target="/slow/6000?k=a")))
    first.start()
    wait_until(lambda: hits(origin, "/slow/6000?k=a") == 1, 5, "the first fill to start")
    second = request(port, target="/?k=a")
    assert first.is_alive()  # answered by its own upstream request, not the first fill
    assert (second.status, second.header("X-Cached")) == (200, "MISS")
    assert hits(origin, "/?k=a") == 1
    first.join(15)


# ---------------------------------------------------------------- loader, manager

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402

from harness import BIN, _proc_children  # noqa: E402


def cache_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_inactive_entries_are_removed(switchyard, origin, tmp_path):
    sy, port = start(switchyard, origin,
                     path_params="levels=1:2 keys_zone=C:1m inactive=1s")
    request(port, target="/i")
    root = sy.prefix / "cache"
    wait_until(lambda: len(cache_files(root)) == 1, 5, "the entry")
    wait_until(lambda: not cache_files(root), 20, "the inactive entry to be removed",
               interval=0.2)
    assert request(port, target="/i").header("X-Cached") == "MISS"
    assert hits(origin, "/i") == 2


def test_max_size_removes_least_recently_used(switchyard, origin):
    sy, port = start(switchyard, origin,
                     path_params="levels=1:2 keys_zone=C:1m max_size=150k")
    root = sy.prefix / "cache"
    for t in ("/bytes/60000?a", "/bytes/60000?b", "/bytes/60000?c"):
        request(port, target=t)
    wait_until(lambda: len(cache_files(root)) == 2, 20, "the cache to shrink under max_size",
               interval=0.2)
    assert request(port, target="/bytes/60000?c").header("X-Cached") == "HIT"
    older = [request(port, target=t).header("X-Cached") for t in ("/bytes/60000?a",
                                                                   "/bytes/60000?b")]
    assert "MISS" in older


def test_loader_indexes_existing_cache_at_start(switchyard, origin, tmp_path):
    port = free_port()
    conf = cache_conf(origin, port, path_params=f"{tmp_path}/shared keys_zone=C:1m")
    conf = conf.replace(f"proxy_cache_path cache {tmp_path}", f"proxy_cache_path {tmp_path}")
    first = switchyard(conf)
    a = request(port, target="/l")
    wait_until(lambda: len(cache_files(tmp_path / "shared")) == 1, 5, "the entry")
    first.stop()
    # what a killed fill leaves, and a file that is no entry: never served
    some = tmp_path / "shared" / "0123456789abcdef0123456789abcdef"
    some.write_bytes(b"not a cache file")
    (tmp_path / "shared" / "x.123.1.tmp").write_bytes(b"partial")
    switchyard(conf)
    b = request(port, target="/l")
    assert (b.header("X-Cached"), b.body) == ("HIT", a.body)
    assert hits(origin, "/l") == 1
    if not IS_NGINX:
        assert not some.exists()
        assert not (tmp_path / "shared" / "x.123.1.tmp").exists()


@pytest.fixture
def master(tmp_path):
    procs = []

    def run(text):
        (tmp_path / "logs").mkdir(exist_ok=True)
        (tmp_path / "m.conf").write_text(text)
        g = "daemon off; master_process on; worker_processes 2;"
        if IS_NGINX:
            g += " user root;"
        p = subprocess.Popen([str(BIN), "-p", f"{tmp_path}/", "-c", str(tmp_path / "m.conf"),
                              "-e", str(tmp_path / "logs/err.log"), "-g",
                              g + f" pid {tmp_path}/m.pid;"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        # nginx adds a cache manager and a loader process
        wait_until(lambda: len(_proc_children(p.pid)) >= 2, 10, "two workers")
        return p
    yield run
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            p.wait(10)


def test_workers_share_the_zone_and_master_runs_the_manager(master, origin):
    port = free_port()
    p = master(cache_conf(origin, port, path_params="keys_zone=C:1m inactive=1h"))
    from harness import port_open
    wait_until(lambda: port_open(port), 10, "the port")
    assert request(port, target="/w").header("X-Cached") == "MISS"
    for _ in range(10):  # new connections land on either worker
        assert request(port, target="/w").header("X-Cached") == "HIT"
    assert hits(origin, "/w") == 1
    if not IS_NGINX:  # nginx adds a cache manager and a loader process
        assert len(_proc_children(p.pid)) == 2


def test_worker_killed_during_fill_leaves_nothing_served(master, origin, tmp_path):
    port = free_port()
    p = master(cache_conf(origin, port, path_params="keys_zone=C:1m"))
    from harness import port_open
    wait_until(lambda: port_open(port), 10, "the port")
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("r", _try(port, "/slow/3000")))
    t.start()
    wait_until(lambda: hits(origin, "/slow/3000") == 1, 5, "the fill to start")
    for w in _proc_children(p.pid):
        os.kill(w, signal.SIGKILL)
    t.join(10)
    wait_until(lambda: len(_proc_children(p.pid)) >= 2, 10, "replaced workers")
    wait_until(lambda: port_open(port), 10, "the port")
    r = request(port, target="/slow/3000")
    assert (r.status, r.header("X-Cached")) == (200, "MISS")
    assert hits(origin, "/slow/3000") == 2


@pytest.mark.switchyard_only
def test_loader_and_manager_work_in_iterations(master, origin, tmp_path):
    """loader_files / manager_files entries an iteration, *_sleep between;
    the master runs both (the iterations are in the debug log, as nginx's)."""
    from harness import port_open
    port = free_port()
    params = (f"{tmp_path}/it keys_zone=C:1m loader_files=2 loader_sleep=10ms "
              "manager_files=1 manager_sleep=10ms")
    conf = cache_conf(origin, port, path_params=params)
    conf = conf.replace(f"proxy_cache_path cache {tmp_path}", f"proxy_cache_path {tmp_path}")
    conf = f"error_log {tmp_path}/debug.log debug;\n" + conf
    log = tmp_path / "debug.log"

    def run(text):
        p = master(text)
        wait_until(lambda: port_open(port), 10, "the port")
        return p

    def stop(p):
        p.send_signal(signal.SIGQUIT)
        p.wait(10)

    p = run(conf)
    targets = [f"/it/{i}" for i in range(7)]
    for t in targets:
        request(port, target=t)
    wait_until(lambda: len(cache_files(tmp_path / "it")) == 7, 5, "the entries")
    stop(p)
    log.write_text("")
    p = run(conf)
    wait_until(lambda: "http file cache: " in log.read_text(), 10, "the loader's end")
    per = [int(m) for m in re.findall(r'loader: "[^"]+", (\d+) entries in this iteration',
                                      log.read_text())]
    assert sum(per) == 7 and max(per) <= 2 and len(per) >= 4, log.read_text()
    for t in targets:
        assert request(port, target=t).header("X-Cached") == "HIT"
    assert all(hits(origin, t) == 1 for t in targets)
    stop(p)
    # the manager: a max_size below one entry, one removed an iteration
    p = run(conf.replace("keys_zone=C:1m", "keys_zone=C:1m max_size=1"))
    wait_until(lambda: not cache_files(tmp_path / "it"), 10, "the manager to empty the cache")
    per = [int(m) for m in re.findall(r'manager: "[^"]+", (\d+) entries removed',
                                      log.read_text())]
    assert per and max(per) == 1 and sum(per) == 7, log.read_text()
    stop(p)


def _try(port, target):
    try:
        return request(port, target=target)
    except Exception as e:  # the worker died under it
        return e


@pytest.fixture
def small_tmpfs(tmp_path):
    d = tmp_path / "full"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.mark.switchyard_only
def test_disk_full_degrades_to_proxying(switchyard, origin, small_tmpfs):
    """A full file system: every response still complete, none stored, one
    log line (nginx fails such requests: its temp file cannot be written)."""
    port = free_port()
    sy = switchyard(cache_conf(origin, port, path_params=f"{small_tmpfs} keys_zone=C:1m")
                    .replace(f"proxy_cache_path cache {small_tmpfs}",
                             f"proxy_cache_path {small_tmpfs}"))
    n = 300000
    for _ in range(3):
        r = request(port, target=f"/bytes/{n}")
        assert r.status == 200 and r.body == pattern_bytes(n)
        assert r.header("X-Cached") == "MISS"
    assert hits(origin, f"/bytes/{n}") == 3
    assert len(re.findall(r"No space left on device", sy.error_log())) == 1
    assert not [p for p in small_tmpfs.rglob("*") if p.is_file()]  # no partial file left
    small = request(port, target="/bytes/100")
    assert request(port, target="/bytes/100").header("X-Cached") == "HIT"
    assert small.status == 200


# ---------------------------------------------------------------- revalidate

def conditional_backend(raw_backend, seen, cache_control=""):
    """One response per connection: 304 when If-None-Match names "v1", else
    200 "body-v1" with ETag "v1" and Last-Modified (and `cache_control`)."""
    cc = f"Cache-Control: {cache_control}\r\n".encode() if cache_control else b""
    def handler(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return
            data += chunk
        head = data.decode("latin-1").lower()
        seen.append(head)
        if 'if-none-match: "v1"' in head:
            s.sendall(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n"
                      b"Connection: close\r\n\r\n")
        else:
            s.sendall(b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\n" + cc +
                      b"Last-Modified: Mon, 07 Dec 2026 10:00:00 GMT\r\n"
                      b"Content-Length: 7\r\nConnection: close\r\n\r\nbody-v1")
    return raw_backend(handler)


@pytest.mark.parametrize("revalidate", [True, False])
def test_revalidation_with_304(switchyard, raw_backend, revalidate):
    seen = []
    b = conditional_backend(raw_backend, seen)
    port = free_port()
    switchyard(http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{b.addr}; proxy_cache C; proxy_cache_valid 200 1s;
        proxy_cache_revalidate {"on" if revalidate else "off"};
        add_header X-Cached $upstream_cache_status always; }} }}
"""))
    assert request(port, target="/v").header("X-Cached") == "MISS"
    time.sleep(2.1)  # the test is about time: the entry expires
    r = request(port, target="/v")
    assert (r.status, r.body) == (200, b"body-v1")
    if revalidate:
        assert r.header("X-Cached") == "REVALIDATED"
        assert 'if-none-match: "v1"' in seen[-1]
        assert "if-modified-since: mon, 07 dec 2026 10:00:00 gmt" in seen[-1]
        assert request(port, target="/v").header("X-Cached") == "HIT"
        assert len(seen) == 2
    else:
        assert r.header("X-Cached") == "EXPIRED"
        assert "if-none-match" not in seen[-1]


def test_background_revalidation_and_the_waiting_connection(switchyard, raw_backend):
    """stale-while-revalidate with proxy_cache_background_update: the stale
    entry now; the background request revalidates (a 304 that says nothing
    of freshness: the stored Cache-Control says it anew, as nginx); the
    client's connection takes its next request once that is done (nginx's
    main request waits for its background sub-request), so it is a HIT."""
    from harness import HttpConn
    seen = []
    b = conditional_backend(raw_backend, seen, "max-age=1, stale-while-revalidate=30")
    port = free_port()
    switchyard(http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{b.addr}; proxy_cache C; proxy_cache_revalidate on;
        proxy_cache_background_update on;
        add_header X-Cached $upstream_cache_status always; }} }}
"""))
    assert request(port, target="/w").header("X-Cached") == "MISS"
    time.sleep(2.1)  # the test is about time: max-age=1 must pass
    with HttpConn(port) as c:
        first = c.request("GET", "/w", [], b"", "localhost")
        second = c.request("GET", "/w", [], b"", "localhost")
    assert (first.header("X-Cached"), first.body) == ("STALE", b"body-v1")
    assert (second.header("X-Cached"), second.body) == ("HIT", b"body-v1")
    assert len(seen) == 2 and 'if-none-match: "v1"' in seen[1]


def test_hit_over_http2(switchyard, origin):
    """HTTP/2 clients get the same entries (small from memory, large by file)."""
    from h2_support import H2Client, h2_server
    port = free_port()
    switchyard(http_conf("proxy_cache_path cache keys_zone=C:1m;\n" + h2_server(port, body=f"""
        location / {{ proxy_pass http://{origin.addr}; proxy_cache C; proxy_cache_valid 1m;
                     add_header X-Cached $upstream_cache_status; }}
    """)))
    with H2Client(port) as c:
        for tgt in ("/h2small", "/bytes/300000"):
            a = c.request("GET", tgt)
            b = c.request("GET", tgt)
            assert (a.status, a.header("x-cached")) == (200, "MISS")
            assert (b.status, b.header("x-cached"), b.body) == (200, "HIT", a.body)
    assert hits(origin, "/bytes/300000") == 1


def test_reload_during_a_fill(switchyard, origin):
    """A fill in progress at a reload completes under the old configuration;
    the entry is in the zone the new configuration keeps."""
    port = free_port()
    sy = switchyard(cache_conf(origin, port))
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("r", request(port, target="/slow/800")))
    t.start()
    wait_until(lambda: hits(origin, "/slow/800") == 1, 5, "the fill to start")
    sy.reload(cache_conf(origin, port, "add_header X-Gen 2;"))
    t.join(10)
    assert got["r"].status == 200 and got["r"].header("X-Cached") == "MISS"
    r = request(port, target="/slow/800")
    assert (r.header("X-Cached"), r.header("X-Gen")) == ("HIT", "2")
    assert hits(origin, "/slow/800") == 1


@pytest.mark.parametrize("ext,path,status", [
    ("stale-if-error=60", "/dead", "STALE"),
    ("stale-if-error=60", "/status/503", "EXPIRED"),  # an error status is an answer (nginx)
])
def test_cache_control_stale_if_error(switchyard, origin, ext, path, status):
    port = free_port()
    switchyard(stale_conf(origin, port, "off"))
    cc = urllib.parse.quote(f"max-age=1, {ext}")
    first = request(port, target=f"/set-header?Cache-Control={cc}&k=e")
    assert first.header("X-Cached") == "MISS"
    time.sleep(2.1)  # the test is about time: max-age=1 must pass
    r = request(port, target=f"{path}?k=e")
    if status == "STALE":
        assert (r.status, r.header("X-Cached"), r.body) == (200, status, first.body)
    else:
        assert (r.status, r.header("X-Cached")) == (503, status)


def test_cache_control_stale_while_revalidate(switchyard, origin):
    port = free_port()
    switchyard(stale_conf(origin, port, "off"))
    cc = urllib.parse.quote("max-age=1, stale-while-revalidate=60")
    first = request(port, target=f"/set-header?Cache-Control={cc}&k=w")
    time.sleep(2.1)  # the test is about time: max-age=1 must pass
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault(
        "r", request(port, target="/slow/1000?k=w")))
    t.start()
    wait_until(lambda: hits(origin, "/slow/1000?k=w") == 1, 5, "the refresh to reach the origin")
    r = request(port, target="/?k=w")
    t.join(10)
    assert (r.status, r.header("X-Cached"), r.body) == (200, "UPDATING", first.body)


@pytest.mark.parametrize("convert", [True, False])
def test_convert_head(switchyard, origin, convert):
    sy, port = start(switchyard, origin,
                     "" if convert else "proxy_cache_convert_head off;")
    for tgt in ("/bytes/5000", "/chunked/5000"):
        h = request(port, method="HEAD", target=tgt)
        assert (h.status, h.header("X-Cached"), h.body) == (200, "MISS", b"")
        (rec,) = [x for x in origin.requests if x["target"] == tgt]
        assert rec["method"] == ("GET" if convert else "HEAD")
        if IS_NGINX and not convert:
            # nginx stores the HEAD's bodiless answer under the GET's key
            # (its docs: add $request_method to the key); Switchyard does not
            # store it (docs/differences.md)
            continue
        if convert:  # the HEAD's head left before the whole body was stored
            got = {}

            def stored():
                got["g"] = request(port, target=tgt)
                return got["g"].header("X-Cached") == "HIT"
            wait_until(stored, 10, "the HEAD's GET response stored", interval=0.05)
            g = got["g"]
        else:
            g = request(port, target=tgt)
        assert g.header("X-Cached") == ("HIT" if convert else "MISS")
        assert g.body == pattern_bytes(5000)
    if convert or not IS_NGINX:
        h = request(port, method="HEAD", target="/bytes/5000")
        assert h.header("Content-Length") == "5000"


def test_workers_keep_the_zone_across_reload(master, origin, tmp_path):
    port = free_port()
    p = master(cache_conf(origin, port, path_params="keys_zone=C:1m"))
    from harness import port_open
    wait_until(lambda: port_open(port), 10, "the port")
    request(port, target="/mr")
    # the entry is complete (a hit) before the reload: a request racing the
    # end of the first fill may still go upstream, which is not what this
    # test is about
    wait_until(lambda: request(port, target="/mr").header("X-Cached") == "HIT", 10,
               "the entry stored", interval=0.05)
    before = hits(origin, "/mr")
    (tmp_path / "m.conf").write_text(cache_conf(origin, port, "add_header X-Gen 2;",
                                                path_params="keys_zone=C:1m"))
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: request(port, target="/mr").header("X-Gen") == "2", 10,
               "the new configuration", interval=0.1)
    for _ in range(6):
        assert request(port, target="/mr").header("X-Cached") == "HIT"
    assert hits(origin, "/mr") == before  # the new workers use the same zone and files


def test_max_range_offset_on_a_miss(switchyard, origin):
    sy, port = start(switchyard, origin, "proxy_cache_max_range_offset 100;")
    tgt = "/set-header?Accept-Ranges=bytes"
    far = request(port, target=tgt, headers=[("Range", "bytes=200-209")])
    assert far.header("X-Cached") == "MISS"
    (rec,) = [x for x in origin.requests if x["target"] == tgt]
    assert dict((k.lower(), v) for k, v in rec["headers"])["range"] == "bytes=200-209"
    full = request(port, target=tgt)
    assert full.header("X-Cached") == "MISS"  # the far range was not stored
    hit = request(port, target=tgt, headers=[("Range", "bytes=200-209")])
    assert (hit.status, hit.header("X-Cached"), hit.body) == (206, "HIT", full.body[200:210])


def test_single_range_on_a_miss_with_accept_ranges(switchyard, origin):
    """nginx answers one range of a response it stores when the upstream
    said Accept-Ranges; the whole response is stored."""
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Accept-Ranges=bytes&x=1"
    r = request(port, target=tgt, headers=[("Range", "bytes=10-19")])
    assert (r.status, r.header("X-Cached"), len(r.body)) == (206, "MISS", 10)
    got = {}

    def stored():  # the part may reach the client before the entry is complete
        got["r"] = request(port, target=tgt)
        return got["r"].header("X-Cached") == "HIT"
    wait_until(stored, 10, "the whole response stored", interval=0.05)
    full = got["r"]
    assert r.body == full.body[10:20]
    assert r.header("Content-Range") == f"bytes 10-19/{len(full.body)}"
    # the ranged request stored the whole response: one upstream request,
    # unless a check raced the end of its fill (no proxy_cache_lock here)
    assert hits(origin, tgt) <= 2


def test_unsatisfiable_range_on_a_miss_is_416_and_stored(switchyard, origin):
    """nginx's range filter answers 416 on a miss too; the response is stored."""
    sy, port = start(switchyard, origin)
    tgt = "/set-header?Accept-Ranges=bytes&x=416"
    r = request(port, target=tgt, headers=[("Range", "bytes=100000-100009")])
    assert r.status == 416
    assert r.header("X-Cached") == "MISS"
    got = {}

    def stored():
        got["r"] = request(port, target=tgt)
        return got["r"].header("X-Cached") == "HIT"
    wait_until(stored, 10, "the whole response stored", interval=0.05)
    full = got["r"]
    assert r.header("Content-Range") == f"bytes */{len(full.body)}"
    again = request(port, target=tgt, headers=[("Range", "bytes=100000-")])
    assert (again.status, again.header("X-Cached")) == (416, "HIT")


def test_head_as_get_answers_before_the_body_is_stored(switchyard, raw_backend):
    """A HEAD asked upstream as GET (proxy_cache_convert_head) gets its head
    at once, not when the whole body is stored (nginx-tests'
    proxy_cache_error.t: a slow body and a short proxy_read_timeout)."""
    release = threading.Event()

    def handler(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return
            data += chunk
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345")
        release.wait(10)
        s.sendall(b"67890")
    b = raw_backend(handler)
    port = free_port()
    switchyard(http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{b.addr}; proxy_cache C; proxy_cache_valid 1m;
        add_header X-Cached $upstream_cache_status; }} }}
"""))
    try:
        r = request(port, method="HEAD", target="/h", timeout=3)
        assert not release.is_set()  # answered while the upstream still sends
        assert (r.status, r.header("Content-Length"), r.body) == (200, "10", b"")
    finally:
        release.set()
    got = {}

    def stored():
        got["r"] = request(port, target="/h")
        return got["r"].header("X-Cached") == "HIT"
    wait_until(stored, 10, "the whole response stored", interval=0.05)
    assert got["r"].body == b"1234567890"


def test_range_on_a_miss_of_a_large_response(switchyard, raw_backend):
    n = 300000
    body = pattern_bytes(n)

    def handler(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return
            data += chunk
        s.sendall(b"HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % n + body)
    b = raw_backend(handler)
    port = free_port()
    switchyard(http_conf(f"""
proxy_cache_path cache keys_zone=C:1m;
server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://{b.addr}; proxy_cache C; proxy_cache_valid 1m;
        add_header X-Cached $upstream_cache_status; }} }}
"""))
    r = request(port, target="/big", headers=[("Range", "bytes=100000-199999")])
    assert (r.status, r.header("X-Cached")) == (206, "MISS")
    assert r.body == body[100000:200000]
    # the client has its part before the store has read the rest: wait for it
    got = {}

    def stored():
        got["r"] = request(port, target="/big")
        return got["r"].header("X-Cached") == "HIT"
    wait_until(stored, 10, "the whole response stored", interval=0.05)
    assert got["r"].body == body
    tail = request(port, target="/big", headers=[("Range", "bytes=-5")])
    assert (tail.status, tail.body) == (206, body[-5:])
