"""Rewrite, return and redirect results as nginx makes them (nginx-tests
rewrite.t, rewrite_unescape.t, http_absolute_redirect.t): captures re-escaped
in redirects and arguments, the trailing '?' that drops the request's
arguments, and -- beyond nginx -- no generated response header that can
carry CR, LF or NUL (header injection)."""

import re

import pytest

from harness import IS_NGINX, fill, free_port, http_conf, raw_request


def start(switchyard, body, **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw)))
    return sy, p


def raw_get(port, target, version="1.0", host="localhost"):
    """The raw response head (bytes, up to the blank line) of a GET."""
    data = raw_request(port, f"GET {target} HTTP/{version}\r\nHost: {host}\r\n"
                             "Connection: close\r\n\r\n".encode())
    head, _, _ = data.partition(b"\r\n\r\n")
    return head


def head_lines(head):
    """Header lines of a raw head split on CRLF only, so a bare CR or LF
    inside a value stays visible in that value."""
    return head.split(b"\r\n")


def location(head):
    locs = [ln[len(b"Location: "):] for ln in head_lines(head)
            if ln.lower().startswith(b"location: ")]
    assert len(locs) == 1, head
    return locs[0]


def assert_no_injection(head):
    for ln in head_lines(head)[1:]:
        assert b"\r" not in ln and b"\n" not in ln and b"\0" not in ln, head
        assert not ln.lower().startswith(b"set-cookie"), head


REWRITES = """
server {
    listen 127.0.0.1:@P@;
    server_name localhost;
    location /t5 { rewrite ^/t5/([^/]+)$ http://example.com/$1 redirect; }
    location /t6 { rewrite ^/t6/([^/]+)$ /x/$1 permanent; }
    location /t8 { rewrite ^/t8/([^/]+)$ /final?q=$1 redirect; }
    location /t4 { rewrite ^(.*) http://example.com$1 redirect; }
    location /capture { rewrite ^(.*) $1?c=d; return 200 "uri:$uri args:$args"; }
    location /capturedup { rewrite ^(.*) $1?c=$1; return 200 "uri:$uri args:$args"; }
    location /plain { rewrite ^/plain/(.*) /got/$1; return 200 "uri:$uri args:$args"; }
    location /no { rewrite ^ http://example.com/?c=d? redirect; }
    location /add { rewrite ^ http://example.com/?c=d redirect; }
    location /simple { rewrite ^ http://example.com/ redirect; }
    location /unesc { rewrite ^ $arg_r? redirect; }
}
"""


def test_capture_crlf_escaped_in_absolute_redirect(switchyard):
    sy, p = start(switchyard, REWRITES)
    head = raw_get(p, "/t5/x%0d%0aSet-Cookie:%20evil=1")
    assert head.startswith(b"HTTP/1.1 302 ")
    assert_no_injection(head)
    assert location(head) == b"http://example.com/x%0D%0ASet-Cookie:%20evil=1"


def test_capture_crlf_escaped_in_relative_permanent_redirect(switchyard):
    sy, p = start(switchyard, REWRITES)
    head = raw_get(p, "/t6/x%0d%0aSet-Cookie:%20evil=1")
    assert head.startswith(b"HTTP/1.1 301 ")
    assert_no_injection(head)
    assert location(head).endswith(b"/x/x%0D%0ASet-Cookie:%20evil=1")


def test_capture_crlf_escaped_in_redirect_args(switchyard):
    sy, p = start(switchyard, REWRITES)
    head = raw_get(p, "/t8/x%0d%0aSet-Cookie:%20evil=1")
    assert_no_injection(head)
    assert location(head).endswith(b"/final?q=x%0D%0ASet-Cookie:%20evil=1")


def test_whole_uri_capture_bare_cr_escaped(switchyard):
    sy, p = start(switchyard, REWRITES)
    head = raw_get(p, "/t4/a%0db")
    assert_no_injection(head)
    assert location(head) == b"http://example.com/t4/a%0Db"


def test_redirect_unescapes_printable_escapes_only(switchyard):
    # %41 ('A') and %2F are decoded in a redirect, %20 and %25 are kept
    sy, p = start(switchyard, REWRITES)
    head = raw_get(p, "/t5/%41%20%25b")
    assert location(head) == b"http://example.com/A%20%25b"


def test_capture_unescaped_uri_copied_raw(switchyard):
    # no escapes in the request: nginx copies captures as they are
    sy, p = start(switchyard, REWRITES)
    assert location(raw_get(p, "/t5/abc")) == b"http://example.com/abc"


def test_captures_in_args_reescaped(switchyard):
    # nginx-tests rewrite.t 'escape with added args'
    sy, p = start(switchyard, REWRITES)
    data = raw_request(p, b"GET /capture/%25?a=b HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert data.endswith(b"uri:/capture/% args:c=d&a=b")
    data = raw_request(p, b"GET /capturedup/%25?a=b HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert data.endswith(b"uri:/capturedup/% args:c=/capturedup/%25&a=b")


def test_capture_in_internal_uri_stays_decoded(switchyard):
    sy, p = start(switchyard, REWRITES)
    data = raw_request(p, b"GET /plain/a%20b?x=1 HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert data.endswith(b"uri:/got/a b args:x=1")


def test_trailing_question_mark_drops_request_args(switchyard):
    # nginx-tests rewrite.t 'no args with args', 'add args with args'
    sy, p = start(switchyard, REWRITES)
    assert location(raw_get(p, "/no?a=b")) == b"http://example.com/?c=d"
    assert location(raw_get(p, "/add?a=b")) == b"http://example.com/?c=d&a=b"
    assert location(raw_get(p, "/add")) == b"http://example.com/?c=d"
    assert location(raw_get(p, "/simple?a=b")) == b"http://example.com/?a=b"


def test_redirect_to_escaped_argument(switchyard):
    # nginx-tests rewrite_unescape.t
    sy, p = start(switchyard, REWRITES)
    head = raw_get(p, "/unesc?r=http%3A%2F%2Fexample.com%2F%3Ffrom")
    assert location(head) == b"http://example.com/?from"
    head = raw_get(p, "/unesc?r=http%3A%2F%2Fexample.com%0D%0AX:%20y")
    assert_no_injection(head)
    assert location(head) == b"http://example.com%0D%0AX:%20y"


# --------------------------------------------------------------------------
# Beyond nginx: no generated header value carries CR, LF or NUL. nginx itself
# sends a raw CR LF for each of these (docs/differences.md).

INJECTABLE = """
server {
    listen 127.0.0.1:@P@;
    server_name localhost;
    location /ret { return 302 http://example.com$uri; }
    location /hdr { add_header X-Uri $uri; return 200 "ok"; }
    location /arg { add_header X-Arg "$arg_a"; return 200 "ok"; }
    location /rw { rewrite ^ http://example.com$uri redirect; }
}
"""


@pytest.mark.switchyard_only
def test_return_with_uri_cannot_inject_headers(switchyard):
    sy, p = start(switchyard, INJECTABLE)
    head = raw_get(p, "/ret/x%0d%0aSet-Cookie:%20evil=1")
    assert head.startswith(b"HTTP/1.1 302 ")
    assert_no_injection(head)
    assert location(head) == b"http://example.com/ret/x%0D%0ASet-Cookie: evil=1"
    sy.wait_log(r'\[error\] .*response header "Location" had CR, LF or NUL')


@pytest.mark.switchyard_only
def test_add_header_with_uri_cannot_inject_headers(switchyard):
    sy, p = start(switchyard, INJECTABLE)
    head = raw_get(p, "/hdr/x%0d%0aSet-Cookie:%20evil=1")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert_no_injection(head)
    assert b"X-Uri: /hdr/x  Set-Cookie: evil=1" in head_lines(head)
    sy.wait_log(r'\[error\] .*response header "X-Uri" had CR, LF or NUL')


@pytest.mark.switchyard_only
def test_uri_variable_in_rewrite_redirect_is_encoded(switchyard):
    # $uri is not a capture, so nginx copies it decoded into the redirect
    sy, p = start(switchyard, INJECTABLE)
    head = raw_get(p, "/rw/x%0d%0aSet-Cookie:%20evil=1")
    assert_no_injection(head)
    assert location(head) == b"http://example.com/rw/x%0D%0ASet-Cookie: evil=1"


def test_raw_argument_in_add_header_is_safe(switchyard):
    # $arg_* is not decoded: %0d%0a stays text, in nginx too
    sy, p = start(switchyard, INJECTABLE)
    head = raw_get(p, "/arg?a=x%0d%0aSet-Cookie:%20evil=1")
    assert_no_injection(head)
    assert b"X-Arg: x%0d%0aSet-Cookie:%20evil=1" in head_lines(head)


# --------------------------------------------------------------------------
# Directory redirects: the path is percent-escaped as nginx escapes a URI
# (nginx-tests http_absolute_redirect.t 'directory escaped')

def dir_server(switchyard, tmp_path, absolute="on"):
    root = tmp_path / "www"
    for name in ("dir sp", 'q"#%<>?\\^`{|}', "nl\nx", "plain"):
        (root / name).mkdir(parents=True)
    return start(switchyard, """
server {
    listen 127.0.0.1:@P@;
    server_name localhost;
    absolute_redirect @A@;
    location / { root @R@; }
}
""", R=root, A=absolute)


def test_directory_redirect_escapes_space(switchyard, tmp_path):
    sy, p = dir_server(switchyard, tmp_path)
    assert location(raw_get(p, "/dir%20sp")) == f"http://localhost:{p}/dir%20sp/".encode()
    assert location(raw_get(p, "/dir%20sp?a=b")) == \
        f"http://localhost:{p}/dir%20sp/?a=b".encode()
    assert location(raw_get(p, "/plain")) == f"http://localhost:{p}/plain/".encode()


def test_directory_redirect_escapes_strict_set(switchyard, tmp_path):
    sy, p = dir_server(switchyard, tmp_path, absolute="off")
    target = "/q%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D"
    assert location(raw_get(p, target)) == (target + "/").encode()


def test_directory_redirect_never_carries_raw_lf(switchyard, tmp_path):
    sy, p = dir_server(switchyard, tmp_path, absolute="off")
    head = raw_get(p, "/nl%0ax")
    assert head.startswith(b"HTTP/1.1 301 ")
    assert_no_injection(head)
    assert location(head) == b"/nl%0Ax/"


# --------------------------------------------------------------------------
# Status lines: "HTTP/1.1 306 " keeps its SP with no reason phrase
# (nginx-tests rewrite.t 'return 306'); the phrases are nginx's

STATUS_LINES = [
    (200, b"OK"), (203, b""), (205, b""), (302, b"Moved Temporarily"), (305, b""),
    (306, b""), (417, b""), (418, b""),
    (422, b""), (429, b"Too Many Requests"), (506, b""), (599, b""),
]


def test_status_line_without_reason_keeps_space(switchyard):
    locs = "\n".join(f"location = /s{c} {{ return {c} \"t\"; }}" for c, _ in STATUS_LINES)
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; server_name localhost; @L@ }",
                  L=locs)
    for code, reason in STATUS_LINES:
        head = raw_get(p, f"/s{code}")
        first = head_lines(head)[0]
        assert first == b"HTTP/1.1 %d " % code + reason, first


# --------------------------------------------------------------------------
# error_page with `return` (nginx-tests rewrite.t): a redirect made by
# return/rewrite goes through error_page; the status an error-page target
# answers with is what the client sees when it is itself an error or a
# redirect, else the original error status.

ERROR_PAGES = """
server {
    listen 127.0.0.1:@P@;
    server_name localhost;
    location / { rewrite ^ http://example.com/ redirect; }
    location /return204 { return 204; }
    location /return200 { return 200; }
    location /return405 { return 405; }
    location /error404return405 { error_page 404 /return405; return 404; }
    location /error405return204 { error_page 405 /return204; return 405; }
    location /error405return200 { error_page 405 /return200; return 405; }
    location /return200text { return 200 "text"; }
    location /return302text { return 302 "text"; }
    location /error405return200text { error_page 405 /return200text; return 405; }
    location /error302return200text { error_page 302 /return200text; return 302 "text"; }
    location /error405return302text { error_page 405 /return302text; return 405; }
    location /error405rewrite { error_page 405 /; return 405; }
    location /error405directory { error_page 405 /directory; return 405; }
    location /directory { root @R@; }
    location /rwredirect { error_page 302 /return200text; rewrite ^ http://example.com/x redirect; }
}
"""


def err_server(switchyard, tmp_path):
    (tmp_path / "directory").mkdir()
    return start(switchyard, ERROR_PAGES, R=tmp_path)


def full(p, target):
    return raw_request(p, f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())


def test_error_page_target_status_wins_when_error(switchyard, tmp_path):
    sy, p = err_server(switchyard, tmp_path)
    assert full(p, "/error404return405").startswith(b"HTTP/1.1 405 ")
    r = full(p, "/error405return302text")
    assert r.startswith(b"HTTP/1.1 302 ") and b"\r\nLocation: text\r\n" in r
    r = full(p, "/error405rewrite")
    assert r.startswith(b"HTTP/1.1 302 ") and b"\r\nLocation: http://example.com/\r\n" in r
    r = full(p, "/error405directory")
    assert r.startswith(b"HTTP/1.1 301 ")
    assert re.search(rb"\r\nLocation: http://[^\r\n]*/directory/\r\n", r)


def test_error_page_target_success_keeps_error_status(switchyard, tmp_path):
    sy, p = err_server(switchyard, tmp_path)
    r = raw_request(p, b"GET /error405return204 HTTP/1.1\r\nHost: localhost\r\n"
                       b"Connection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 405 ")
    assert re.search(rb"\r\nContent-Length: 0\r\n|\r\n0\r\n", r)
    r = full(p, "/error405return200")
    assert r.startswith(b"HTTP/1.1 405 ") and b"body" not in r
    r = full(p, "/error405return200text")
    assert r.startswith(b"HTTP/1.1 405 ") and r.endswith(b"\r\n\r\ntext")


def test_error_page_applies_to_return_redirect(switchyard, tmp_path):
    sy, p = err_server(switchyard, tmp_path)
    r = full(p, "/error302return200text")
    assert r.startswith(b"HTTP/1.1 302 ")
    assert b"\r\nLocation: text\r\n" in r and r.endswith(b"\r\n\r\ntext")
    r = full(p, "/rwredirect")
    assert r.startswith(b"HTTP/1.1 302 ")
    assert b"\r\nLocation: http://example.com/x\r\n" in r and r.endswith(b"\r\n\r\ntext")


def test_error_page_url_replaces_redirect_location(switchyard):
    sy, p = start(switchyard, """
server {
    listen 127.0.0.1:@P@;
    server_name localhost;
    location /r { error_page 302 http://example.com/err; return 302 http://example.com/first; }
}
""")
    r = full(p, "/r")
    assert r.startswith(b"HTTP/1.1 302 ")
    assert r.count(b"\r\nLocation: ") == 1
    assert b"\r\nLocation: http://example.com/err\r\n" in r


# --------------------------------------------------------------------------
# proxy_pass auto-redirect: "/auto" for a proxied "location /auto/" is a 301
# to "/auto/", escaped (nginx-tests http_absolute_redirect.t 'auto escaped')

AUTO = """
server {
    listen 127.0.0.1:@P@;
    server_name localhost;
    absolute_redirect off;
    location / { return 200 "root"; }
    location /auto/ { proxy_pass http://127.0.0.1:1; }
    location "/auto sp/" { proxy_pass http://127.0.0.1:1; }
    location '/auto "#%<>?\\^`{|}/' { proxy_pass http://127.0.0.1:1; }
    location /both/ { proxy_pass http://127.0.0.1:1; }
    location /both { return 200 "both"; }
    location = /ex/ { proxy_pass http://127.0.0.1:1; }
    location /plain/ { return 200 "plain"; }
}
"""


def test_proxy_location_auto_redirect(switchyard):
    sy, p = start(switchyard, AUTO)
    head = raw_get(p, "/auto")
    assert head.startswith(b"HTTP/1.1 301 ") and location(head) == b"/auto/"
    assert location(raw_get(p, "/auto?a=b")) == b"/auto/?a=b"
    assert location(raw_get(p, "/auto%20sp")) == b"/auto%20sp/"
    assert location(raw_get(p, "/auto%20sp?a=b")) == b"/auto%20sp/?a=b"
    assert location(raw_get(p, "/ex")) == b"/ex/"


def test_proxy_location_auto_redirect_escaped_strict(switchyard):
    sy, p = start(switchyard, AUTO)
    target = "/auto%20%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D"
    assert location(raw_get(p, target)) == (target + "/").encode()


def test_no_auto_redirect_when_uri_has_a_location_or_no_proxy(switchyard):
    sy, p = start(switchyard, AUTO)
    assert raw_request(p, b"GET /both HTTP/1.0\r\n\r\n").endswith(b"\r\n\r\nboth")
    assert raw_request(p, b"GET /plain HTTP/1.0\r\n\r\n").endswith(b"\r\n\r\nroot")
