"""Location selection follows nginx exactly: `=` exact matches win outright,
then the longest prefix is found; a `^~` longest prefix stops the regex
search, otherwise regexes (`~`, `~*`) are tried in config order and the first
match beats the prefix; regexes nested in the chosen prefix location are tried
before the outer ones; named locations are never matched by a URI; `location /`
is the fallback. Matching runs on the normalised URI (percent-decoding, `.`
and `..` segments resolved, slashes merged)."""

import re

import pytest

from harness import fill, free_port, http_conf, raw_request, request

LOCATIONS = r"""
server {
    listen 127.0.0.1:@PORT@;
    location = / { return 200 "exact-root"; }
    location / { return 200 "root"; }
    location = /exact { return 200 "exact"; }
    location /exact { return 200 "prefix-exact"; }
    location /docs/ { return 200 "docs"; }
    location /docs/api/ { return 200 "docs-api"; }
    location ^~ /static/ { return 200 "static-stop"; }
    location /images/ { return 200 "images-prefix"; }
    location ~ \.php$ { return 200 "php"; }
    location ~* \.(gif|jpe?g)$ { return 200 "image-ci"; }
    location ~ \.css$ { return 200 "css"; }
    location ~ ^/order/ { return 200 "first-regex"; }
    location ~ ^/order/b { return 200 "second-regex"; }
    location /order/ { return 200 "order-prefix"; }
    location /nest/ {
        location ~ \.txt$ { return 200 "nested-regex"; }
        location /nest/deep/ { return 200 "nested-prefix"; }
        return 200 "nest";
    }
    location ~ \.txt$ { return 200 "outer-txt"; }
    location @named { return 200 "named"; }
    location /ABC { return 200 "abc"; }
    location "/a b/" { return 200 "space"; }
    location /CaSe/ { return 200 "case-prefix"; }
}
"""


@pytest.fixture(scope="function")
def sy(switchyard):
    return switchyard(http_conf(fill(LOCATIONS, PORT=free_port())))


@pytest.mark.parametrize("target,expected", [
    # exact match
    ("/", "exact-root"),
    ("/exact", "exact"),
    ("/exact/", "prefix-exact"),
    ("/exactly", "prefix-exact"),
    # fallback and longest prefix
    ("/nothing-else", "root"),
    ("/docs/", "docs"),
    ("/docs/x", "docs"),
    ("/docs/api/", "docs-api"),
    ("/docs/api/v1", "docs-api"),
    ("/docs", "root"),
    # ^~ stops the regex search
    ("/static/site.css", "static-stop"),
    ("/static/a.php", "static-stop"),
    # a matching regex beats the longest prefix
    ("/images/a.gif", "image-ci"),
    ("/images/A.GIF", "image-ci"),
    ("/images/a.png", "images-prefix"),
    ("/x/index.php", "php"),
    ("/x/index.PHP", "root"),          # `~` is case-sensitive
    ("/a.css", "css"),
    # the first regex in config order wins
    ("/order/b", "first-regex"),
    ("/order/", "first-regex"),
    # nested locations: the inner regex is tried before outer regexes
    ("/nest/", "nest"),
    ("/nest/file.txt", "nested-regex"),
    ("/nest/deep/", "nested-prefix"),
    ("/other/file.txt", "outer-txt"),
    # named locations are not reachable by URI
    ("/@named", "root"),
    # prefix matching is case-sensitive on Linux
    ("/case/x", "root"),
    ("/CaSe/x", "case-prefix"),
    # the query string takes no part in matching
    ("/exact?x=/docs/", "exact"),
    ("/x.php?a=b", "php"),
    ("/index.html?file.php", "root"),
])
def test_location_precedence(sy, target, expected):
    r = request(sy.port, "GET", target)
    assert r.status == 200, r
    assert r.text == expected


@pytest.mark.parametrize("target,expected", [
    ("/docs/../exact", "exact"),         # dot-dot resolved before matching
    ("/a/../docs/api/x", "docs-api"),
    ("/./exact", "exact"),
    ("/docs/./api/", "docs-api"),
    ("//exact", "exact"),                # merge_slashes on by default
    ("/docs//api/", "docs-api"),
    ("///", "exact-root"),
    ("/%41BC", "abc"),                   # percent-decoding
    ("/%41%42%43", "abc"),
    ("/e%78act", "exact"),
    ("/docs/%2e%2e/exact", "exact"),     # encoded dots are dots
    ("/docs/%2E%2E/exact", "exact"),
    ("/static%2Fsite.css", "static-stop"),  # %2F decodes to '/'
    ("/a%20b/", "space"),
    ("/x/index%2ephp", "php"),
])
def test_uri_normalised_before_matching(sy, target, expected):
    r = request(sy.port, "GET", target)
    assert r.status == 200, r
    assert r.text == expected


@pytest.mark.parametrize("target", ["/..", "/../x", "/a/../../x", "/%2e%2e/x"])
def test_dotdot_above_root_is_400(sy, target):
    r = request(sy.port, "GET", target)
    assert r.status == 400


def test_return_sets_text_plain(sy):
    r = request(sy.port, "GET", "/exact")
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Content-Length") == "5"
    assert r.header("Server", "").startswith(sy.product)


def test_absolute_form_target_matches_on_path(sy):
    out = raw_request(sy.port, b"GET http://localhost/docs/api/z?q HTTP/1.1\r\nHost: other\r\n"
                               b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.endswith(b"\r\n\r\ndocs-api")


def test_merge_slashes_off(switchyard):
    port = free_port()
    switchyard(http_conf(fill(r"""
        server {
            listen 127.0.0.1:@PORT@;
            merge_slashes off;
            location / { return 200 "root"; }
            location /x/ { return 200 "x"; }
            location ~ ^/x//y$ { return 200 "double"; }
        }""", PORT=port)))
    assert request(port, "GET", "/x/y").text == "x"
    assert request(port, "GET", "//x/y").text == "root"
    assert request(port, "GET", "/x//y").text == "double"


def test_reload_swaps_the_location_table(switchyard):
    port = free_port()
    tmpl = 'server { listen 127.0.0.1:@PORT@; location / { return 200 "@NAME@"; } }'
    sy = switchyard(http_conf(fill(tmpl, PORT=port, NAME="before")))
    assert request(port, "GET", "/").text == "before"
    sy.reload(http_conf(fill(tmpl, PORT=port, NAME="after")))
    assert request(port, "GET", "/").text == "after"
    assert sy.running()


def test_access_log_combined_format(sy):
    request(sy.port, "GET", "/exact?q=1", headers=[("User-Agent", "probe/1"), ("Referer", "http://r/")])
    request(sy.port, "GET", "/..")
    sy.wait_access_log(r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                       r'"GET /exact\?q=1 HTTP/1\.1" 200 5 "http://r/" "probe/1"\n')
    sy.wait_access_log(r'"GET /\.\. HTTP/1\.1" 400 \d+ "-" "-"\n')


def test_unknown_directive_fails_start(switchyard):
    sy = switchyard(http_conf(f"server {{ listen 127.0.0.1:{free_port()}; no_such_directive on; }}"),
                    check_start=False)
    assert sy.wait_exit(10) == 1
    assert re.search(r'\[emerg\].*unknown directive "no_such_directive"', sy.error_log())
