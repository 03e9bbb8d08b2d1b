"""Variables as nginx evaluates them, seen through `return 200 "..."` and
`add_header ... always`: request variables ($host with its normalisation and
fallbacks, $uri normalised vs $request_uri raw, $args/$arg_NAME/$is_args,
$request, $request_method, $server_protocol, $scheme), connection variables
($remote_addr/$remote_port, $server_addr/$server_port), $server_name (the
first name of the chosen server), $http_NAME (dashes become underscores, any
case; a header whose name holds an underscore is ignored by default),
$cookie_NAME, $content_length, $content_type; `map` (exact, regex with
positional and named captures, case-insensitive regex, default, `hostnames`
wildcards); `set` at server and location level; regex captures of the chosen
location, positional and named; `if` with `=` and `~*`."""

from __future__ import annotations

import pytest

import harness
from harness import HttpConn, fill, free_port, http_conf, raw_request, request

# Every variable under test; /echo/ answers "name=value" lines for all of them.
ECHO_VARS = [
    "host", "http_host", "uri", "request_uri", "args", "query_string", "arg_a", "arg_b",
    "arg_missing", "is_args", "request_method", "request", "server_protocol", "scheme",
    "remote_addr", "remote_port", "server_addr", "server_port", "server_name",
    "http_user_agent", "http_x_my_header", "http_x_under_score", "cookie_c", "cookie_d",
    "cookie_missing", "content_length", "content_type",
]
ECHO_BODY = "\\n".join(f"{v}=${v}" for v in ECHO_VARS) + "\\n"

CONF = r"""
map $arg_k $m_k {
    default                  "dflt";
    apple                    "fruit";
    ~^veg-(?<kind>[a-z]+)$   "vegetable-$kind";
    ~*^NUM(\d+)$             "n$1";
}

map $host $m_host {
    hostnames;
    default          "nohost";
    example.com      "exact";
    *.example.com    "wild-front";
    www.example.*    "wild-back";
}

server {
    listen 127.0.0.1:@P@;
    server_name first.example second.example;
    set $srv "S";

    location /echo/ {
        add_header X-Host $host always;
        add_header X-Uri $uri always;
        return 200 "@ECHO@";
    }
    location = /status404 {
        add_header X-Host $host always;
        return 404;
    }
    location /map/ { return 200 "k=$m_k|host=$m_host"; }
    location /set/ {
        set $loc "L-$srv-$arg_a";
        return 200 "$srv|$loc";
    }
    location /set-other/ { return 200 "$srv|[$loc]"; }
    location ~ ^/cap/(\w+)/(\d+)$ { return 200 "one=$1 two=$2"; }
    location ~ ^/named/(?<word>[a-z]+)/(?<num>\d+) { return 200 "word=$word num=$num"; }
    location /if/ {
        if ($arg_x = "y") { return 418; }
        if ($http_user_agent ~* bot) { return 200 "bot"; }
        if ($uri ~ ^/if/num/(\d+)$) { return 200 "num=$1"; }
        return 200 "plain";
    }
}
"""


@pytest.fixture(scope="module")
def vport(tmp_path_factory):
    if not harness.BIN.exists():
        pytest.skip(f"{harness.BIN} is not built (make all), or set SWITCHYARD_BIN")
    p = free_port()
    conf = http_conf(fill(CONF, P=p, ECHO=ECHO_BODY))
    sy = harness.Switchyard(tmp_path_factory.mktemp("vars"), conf).start()
    yield p
    problems = sy.stop()
    assert not problems, problems


def parse_echo(body: bytes) -> dict:
    out = {}
    for line in body.decode("latin-1").split("\n"):
        if line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


def echo(port, target="/echo/x", **kw) -> dict:
    r = request(port, "GET", target, **kw)
    assert r.status == 200, r
    return parse_echo(r.body)


def echo_raw(port, head: bytes) -> dict:
    out = raw_request(port, head)
    head_end = out.index(b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    return parse_echo(out[head_end + 4:])


# --------------------------------------------------------------------------
# $host


@pytest.mark.parametrize("host,expected", [
    ("second.example", "second.example"),
    ("Mixed.Case.EXAMPLE", "mixed.case.example"),
    ("example.com:8080", "example.com"),
    ("WWW.Example.Com:1", "www.example.com"),
    ("example.com.", "example.com"),
    ("127.0.0.1:99", "127.0.0.1"),
])
def test_host_from_header_lowercased_port_stripped(vport, host, expected):
    r = request(vport, "GET", "/echo/x", host=host)
    v = parse_echo(r.body)
    assert v["host"] == expected
    assert v["http_host"] == host            # $http_host is the raw header
    assert r.header("X-Host") == expected


def test_host_from_absolute_form_target(vport):
    v = echo_raw(vport, b"GET http://Abs.Example:8080/echo/p?a=1 HTTP/1.1\r\n"
                        b"Host: other.example\r\nConnection: close\r\n\r\n")
    assert v["host"] == "abs.example"
    assert v["http_host"] == "other.example"
    assert v["uri"] == "/echo/p"
    assert v["request_uri"] == "/echo/p?a=1"
    assert v["request"] == "GET http://Abs.Example:8080/echo/p?a=1 HTTP/1.1"
    assert v["arg_a"] == "1"


def test_host_falls_back_to_server_name(vport):
    v = echo_raw(vport, b"GET /echo/x HTTP/1.0\r\n\r\n")
    assert v["host"] == "first.example"
    assert v["http_host"] == ""
    assert v["server_protocol"] == "HTTP/1.0"


def test_add_header_always_on_error_status(vport):
    r = request(vport, "GET", "/status404", host="Some.Example:80")
    assert r.status == 404
    assert r.header("X-Host") == "some.example"


# --------------------------------------------------------------------------
# URI and arguments


def test_uri_is_normalised_request_uri_is_raw(vport):
    r = request(vport, "GET", "/echo/a/./b/../c%41//d?x=%41&y=2")
    v = parse_echo(r.body)
    assert v["uri"] == "/echo/a/cA/d"
    assert r.header("X-Uri") == "/echo/a/cA/d"
    assert v["request_uri"] == "/echo/a/./b/../c%41//d?x=%41&y=2"
    assert v["args"] == "x=%41&y=2"          # $args is not decoded
    assert v["query_string"] == v["args"]
    assert v["is_args"] == "?"


def test_args_and_arg_name(vport):
    v = echo(vport, "/echo/x?b=2&a=one%20two&A=upper&a=second")
    assert v["args"] == "b=2&a=one%20two&A=upper&a=second"
    # $arg_NAME: the first match, name compared case-insensitively, value raw
    assert v["arg_a"] == "one%20two"
    assert v["arg_b"] == "2"
    assert v["arg_missing"] == ""


def test_no_args(vport):
    v = echo(vport, "/echo/x")
    assert v["args"] == ""
    assert v["is_args"] == ""
    assert v["request_uri"] == "/echo/x"


def test_empty_query(vport):
    v = echo(vport, "/echo/x?")
    assert v["args"] == ""
    assert v["request_uri"] == "/echo/x?"


def test_request_line_method_protocol_scheme(vport):
    v = echo(vport, "/echo/r?q=1")
    assert v["request"] == "GET /echo/r?q=1 HTTP/1.1"
    assert v["request_method"] == "GET"
    assert v["server_protocol"] == "HTTP/1.1"
    assert v["scheme"] == "http"
    r = request(vport, "POST", "/echo/r", body=b"abc")
    v = parse_echo(r.body)
    assert v["request_method"] == "POST"
    assert v["request"] == "POST /echo/r HTTP/1.1"


# --------------------------------------------------------------------------
# addresses


def test_addresses_and_ports(vport):
    with HttpConn(vport) as c:
        client_port = c.sock.getsockname()[1]
        r = c.request("GET", "/echo/x")
    v = parse_echo(r.body)
    assert v["remote_addr"] == "127.0.0.1"
    assert v["remote_port"] == str(client_port)
    assert v["server_addr"] == "127.0.0.1"
    assert v["server_port"] == str(vport)


def test_server_name_is_first_name_of_chosen_server(vport):
    v = echo(vport, host="second.example")
    assert v["server_name"] == "first.example"


# --------------------------------------------------------------------------
# headers, cookies, body metadata


def test_http_header_variables(vport):
    v = echo(vport, headers=[("user-AGENT", "Agent/1.0 (x)"), ("x-MY-header", "mine")])
    assert v["http_user_agent"] == "Agent/1.0 (x)"
    assert v["http_x_my_header"] == "mine"
    assert v["http_x_under_score"] == ""


def test_header_name_with_underscore_is_ignored(vport):
    # underscores_in_headers is off by default: nginx ignores such a header,
    # so "X_Under_Score" cannot pose as X-Under-Score ($http_x_under_score)
    v = echo(vport, headers=[("X_Under_Score", "ignored")])
    assert v["http_x_under_score"] == ""


def test_cookie_variables(vport):
    v = echo(vport, headers=[("Cookie", "a=1; c=see; d=")])
    assert v["cookie_c"] == "see"
    assert v["cookie_d"] == ""
    assert v["cookie_missing"] == ""


def test_content_length_and_type(vport):
    r = request(vport, "POST", "/echo/x", body=b"0123456789",
                headers=[("Content-Type", "text/plain; charset=utf-8")])
    v = parse_echo(r.body)
    assert v["content_length"] == "10"
    assert v["content_type"] == "text/plain; charset=utf-8"
    v = echo(vport)
    assert v["content_length"] == ""
    assert v["content_type"] == ""


# --------------------------------------------------------------------------
# map


@pytest.mark.parametrize("k,expected", [
    ("apple", "fruit"),
    ("APPLE", "fruit"),             # exact keys match case-insensitively (nginx lowercases)
    ("veg-kale", "vegetable-kale"),  # named capture in the value
    ("veg-Kale", "dflt"),            # ~ is case-sensitive
    ("num42", "n42"),               # ~* with a positional capture
    ("NUM7", "n7"),
    ("other", "dflt"),
    ("", "dflt"),
])
def test_map_exact_regex_default(vport, k, expected):
    r = request(vport, "GET", f"/map/?k={k}")
    assert r.text.split("|")[0] == f"k={expected}"


@pytest.mark.parametrize("host,expected", [
    ("example.com", "exact"),
    ("EXAMPLE.com:8080", "exact"),
    ("a.example.com", "wild-front"),
    ("www.example.com", "wild-front"),   # leading wildcard beats trailing one
    ("www.example.org", "wild-back"),
    ("example.org", "nohost"),
])
def test_map_hostnames(vport, host, expected):
    r = request(vport, "GET", "/map/", host=host)
    assert r.text.split("|")[1] == f"host={expected}"


# --------------------------------------------------------------------------
# set, captures, if


def test_set_in_server_and_location(vport):
    assert request(vport, "GET", "/set/?a=7").text == "S|L-S-7"
    # $loc exists everywhere but is set only in /set/: empty elsewhere
    assert request(vport, "GET", "/set-other/").text == "S|[]"


def test_positional_captures_of_location_regex(vport):
    r = request(vport, "GET", "/cap/abc/123")
    assert r.status == 200
    assert r.text == "one=abc two=123"


def test_named_captures_of_location_regex(vport):
    r = request(vport, "GET", "/named/hello/42/rest")
    assert r.text == "word=hello num=42"


def test_if_equality_returns_418(vport):
    r = request(vport, "GET", "/if/?x=y")
    assert r.status == 418
    r = request(vport, "GET", "/if/?x=yy")
    assert (r.status, r.text) == (200, "plain")


@pytest.mark.parametrize("ua,expected", [
    ("GoogleBot/2.1", "bot"),
    ("my-BOT", "bot"),
    ("Mozilla/5.0", "plain"),
])
def test_if_case_insensitive_regex(vport, ua, expected):
    r = request(vport, "GET", "/if/", headers=[("User-Agent", ua)])
    assert (r.status, r.text) == (200, expected)


def test_if_regex_captures(vport):
    assert request(vport, "GET", "/if/num/31").text == "num=31"
