"""nginx's other request, connection and process variables, checked with
real clients through `return 200 "..."` and access logs, each against nginx
(SWITCHYARD_BIN=/usr/sbin/nginx):

$binary_remote_addr (4 or 16 raw bytes; escaped in logs as nginx does; a
short limit_conn key), $remote_user (Basic credentials decoded), $pipe,
$request_completion, $connection_time, $request_id (one value per
request), $hostname, $pid, $nginx_version, $tcpinfo_*, $limit_rate, $http2,
$document_root / $realpath_root / $request_filename (root, alias, symbolic
links, the default root), $is_args, `set $args`, $server_name and $host written as the first server_name, $sent_http_* made
by the head writer, `escape=json` and `escape=none` writing nothing for a
missing value, and an unknown variable refused by `-t` with file:line.

Deliberate differences, branched on IS_NGINX: $nginx_version (Switchyard
answers the nginx release whose configuration language it follows), and
$sent_http_connection / $sent_http_keep_alive in the access log (nginx logs
"close" and nothing for a kept-alive response: its request is already
marked closing when the log line is written; Switchyard logs what was
sent). $request_port / $is_request_port (nginx 1.29.3) and $http3 are not in
the nginx under test: Switchyard-only tests."""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

import harness
from harness import (IS_NGINX, HttpConn, fill, free_port, http_conf, raw_request, request,
                     wait_until)
from limits_support import get, hold, limits_conf

VARS = ["binary_remote_addr", "remote_user", "pipe", "connection_time", "request_id",
        "hostname", "pid", "nginx_version", "tcpinfo_rtt", "tcpinfo_rttvar",
        "tcpinfo_snd_cwnd", "tcpinfo_rcv_space", "limit_rate", "http2", "is_args",
        "content_length", "server_name", "host", "request_completion", "request_body_file"]
BODY = "|".join(f"{v}=${v}" for v in VARS)

CONF = r"""
server {
    listen 127.0.0.1:@P@;
    server_name *.wild.example other.example;
    location / { return 200 "@BODY@"; }
    location /id { add_header X-Id $request_id; return 200 "$request_id"; }
    location /bin { return 200 "$binary_remote_addr"; }
    location /sn { return 200 "$server_name|$host"; }
}
server { listen 127.0.0.1:@P@; server_name ~^re(.*)$; location / { return 200 "$server_name|$host"; } }
server { listen 127.0.0.1:@P@; server_name .dot.example; location / { return 200 "$server_name|$host"; } }
server { listen 127.0.0.1:@P@; server_name www.tail.*; location / { return 200 "$server_name|$host"; } }
"""


@pytest.fixture(scope="module")
def sy_mod(tmp_path_factory):
    if not harness.BIN.exists():
        pytest.skip(f"{harness.BIN} is not built (make all), or set SWITCHYARD_BIN")
    p = free_port()
    sy = harness.Switchyard(tmp_path_factory.mktemp("more"),
                            http_conf(fill(CONF, P=p, BODY=BODY))).start()
    sy.p = p
    yield sy
    problems = sy.stop()
    assert not problems, problems


def parse(body: bytes) -> dict:
    out = {}
    for kv in body.split(b"|"):
        k, _, v = kv.partition(b"=")
        out[k.decode()] = v
    return out


def values(port, target="/v", headers=None, **kw) -> dict:
    r = request(port, "GET", target, headers=headers, **kw)
    assert r.status == 200, r
    return {k: v.decode("latin-1") for k, v in parse(r.body).items()}


# --------------------------------------------------------------------------
# the client address as bytes


def test_binary_remote_addr_is_four_raw_bytes(sy_mod):
    r = request(sy_mod.p, "GET", "/bin")
    assert r.body == bytes([127, 0, 0, 1])


def test_binary_remote_addr_ipv6_is_sixteen_bytes(switchyard):
    p = free_port()
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    # the IPv4 listener on the same port lets the harness see it ready
    switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@; listen [::1]:@P@;
                 location / { return 200 "$binary_remote_addr|$remote_addr"; } }""", P=p)))
    with socket.create_connection(("::1", p), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = harness.read_until_close(s)
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body == bytes(15) + b"\x01" + b"|::1", body


def test_binary_remote_addr_in_logs_default_json_none(switchyard):
    p = free_port()
    sy = switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@;
            access_log logs/d.log d; access_log logs/j.log j; access_log logs/n.log n;
            location / { return 200 "ok"; } }""", P=p), extra_http=(
        "log_format d '$binary_remote_addr|$http_x_missing|$uri';\n"
        "log_format j escape=json '$binary_remote_addr|$http_x_missing|$uri';\n"
        "log_format n escape=none '$binary_remote_addr|$http_x_missing|$uri';\n")))
    assert request(p, "GET", "/a").status == 200

    def line(name):
        path = sy.prefix / "logs" / name
        return wait_until(lambda: path.read_bytes() if path.exists() and path.read_bytes() else None,
                          5, name)

    # default: \xHH for bytes outside printable ASCII; a missing value is "-"
    assert line("d.log") == b"\\x7F\\x00\\x00\\x01|-|/a\n"
    # json: control bytes as \u00HH, others as they are; a missing value is nothing
    assert line("j.log") == b"\x7f\\u0000\\u0000\\u0001||/a\n"
    # none: raw bytes; a missing value is nothing
    assert line("n.log") == b"\x7f\x00\x00\x01||/a\n"


def test_limit_conn_key_on_binary_remote_addr_is_short(switchyard, origin):
    """With $binary_remote_addr (4 bytes) and 251 more bytes the key is 255
    bytes, the most limit_conn counts: the limit applies. Were the address
    text ("127.0.0.1"), the key would be too long and not limited."""
    p = free_port()
    sy = switchyard(limits_conf(p, origin.addr, """
        location / { limit_conn k 1; proxy_pass http://origin; }""",
                                "    limit_conn_zone $binary_remote_addr$arg_pad zone=k:1m;\n"))
    pad = "a" * 251
    s = hold(p, f"/hang?pad={pad}")
    try:
        wait_until(lambda: len(origin.requests) >= 1, 5, "the held request")
        assert get(p, f"/second?pad={pad}") == 503
    finally:
        s.close()
    assert "more than 255 bytes" not in sy.error_log()


# --------------------------------------------------------------------------
# request and connection


@pytest.mark.parametrize("auth,user", [
    ("Basic dXNlcjpwYXNz", "user"),          # user:pass
    ("basic dXNlcjpwYXNz", "user"),          # the scheme in any case
    ("Basic    dXNlcjpwYXNz", "user"),       # spaces before the credentials
    ("Basic dTpw", "u"),                     # u:p, no padding needed
    ("Basic dTp3eA", "u"),                   # u:wx without its "=="
    ("Basic dXNlcjo=", "user"),              # empty password
    ("Basic dXNlcg==", ""),                  # no ':'
    ("Basic OnBhc3M=", ""),                  # empty user name
    ("Basic !!!!", ""),                      # not base64
    ("Bearer dXNlcjpwYXNz", ""),             # not Basic
])
def test_remote_user_from_basic_credentials(sy_mod, auth, user):
    assert values(sy_mod.p, headers=[("Authorization", auth)])["remote_user"] == user


def test_pipe_marks_pipelined_requests(sy_mod):
    with HttpConn(sy_mod.p) as c:
        c.send(b"GET /v HTTP/1.1\r\nHost: a\r\n\r\nGET /v HTTP/1.1\r\nHost: a\r\n\r\n")
        first, second = c.read_response(), c.read_response()
        third = c.request("GET", "/v")
    assert [parse(r.body)["pipe"] for r in (first, second, third)] == [b".", b"p", b"."]


def test_connection_time_grows_over_keepalive(sy_mod):
    with HttpConn(sy_mod.p) as c:
        a = parse(c.request("GET", "/v").body)["connection_time"].decode()
        time.sleep(0.05)  # the variable measures time: some must pass
        b = parse(c.request("GET", "/v").body)["connection_time"].decode()
    assert re.fullmatch(r"\d+\.\d{3}", a) and re.fullmatch(r"\d+\.\d{3}", b)
    assert float(b) - float(a) >= 0.04


def test_request_id_is_random_and_one_per_request(sy_mod):
    ids = set()
    for _ in range(3):
        r = request(sy_mod.p, "GET", "/id")
        assert re.fullmatch(r"[0-9a-f]{32}", r.text)
        assert r.header("X-Id") == r.text     # the same value twice in a request
        ids.add(r.text)
    assert len(ids) == 3


def test_process_and_tcp_values(sy_mod):
    v = values(sy_mod.p)
    assert v["hostname"] == socket.gethostname().lower()
    assert int(v["pid"]) in sy_mod._tree()
    for k in ("tcpinfo_rtt", "tcpinfo_rttvar", "tcpinfo_snd_cwnd", "tcpinfo_rcv_space"):
        assert re.fullmatch(r"\d+", v[k]), (k, v[k])
    assert int(v["tcpinfo_snd_cwnd"]) > 0 and int(v["tcpinfo_rcv_space"]) > 0
    assert v["limit_rate"] == "0"
    assert v["http2"] == ""                   # HTTP/1.1
    assert v["request_body_file"] == ""
    # not complete while the response is being made
    assert v["request_completion"] == ""
    if IS_NGINX:
        assert re.fullmatch(r"1\.\d+\.\d+", v["nginx_version"])
    else:
        assert v["nginx_version"] == "1.28.0"


@pytest.mark.switchyard_only
def test_switchyard_version_request_port_and_http3(switchyard):
    p = free_port()
    switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@;
            location / { return 200 "$switchyard_version|$http3|$request_port|$is_request_port"; } }""",
                              P=p)))

    def get_(head: bytes) -> list[str]:
        out = raw_request(p, head)
        return out.split(b"\r\n\r\n", 1)[1].decode().split("|")

    assert get_(b"GET / HTTP/1.1\r\nHost: h.example:8080\r\nConnection: close\r\n\r\n") == \
        ["0.1.0", "", "8080", ":"]
    assert get_(b"GET / HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n")[2:] == ["", ""]
    assert get_(b"GET / HTTP/1.1\r\nHost: [::1]:9\r\nConnection: close\r\n\r\n")[2:] == ["9", ":"]
    # the request line's host wins over the Host header
    assert get_(b"GET http://a.example:81/ HTTP/1.1\r\nHost: h.example:8080\r\n"
                b"Connection: close\r\n\r\n")[2:] == ["81", ":"]
    assert get_(b"GET / HTTP/1.0\r\n\r\n")[2:] == ["", ""]


def test_is_args_empty_for_an_empty_query(sy_mod):
    assert values(sy_mod.p, "/v?")["is_args"] == ""
    assert values(sy_mod.p, "/v?a")["is_args"] == "?"


@pytest.mark.parametrize("host,expected", [
    ("a.wild.example", "*.wild.example|a.wild.example"),
    ("rex", "~^re(.*)$|rex"),
    ("x.dot.example", "dot.example|x.dot.example"),
    ("www.tail.org", "www.tail.*|www.tail.org"),
])
def test_server_name_is_the_first_name_as_written(sy_mod, host, expected):
    assert request(sy_mod.p, "GET", "/sn", host=host).text == expected


def test_host_without_a_host_header_is_the_first_name(sy_mod):
    out = raw_request(sy_mod.p, b"GET /v HTTP/1.0\r\n\r\n")
    v = parse(out.split(b"\r\n\r\n", 1)[1])
    assert (v["server_name"], v["host"]) == (b"*.wild.example", b"*.wild.example")


# --------------------------------------------------------------------------
# files


def test_document_root_realpath_root_request_filename(switchyard, tmp_path):
    www = tmp_path / "www"
    (www / "sub").mkdir(parents=True)
    os.symlink(www, tmp_path / "link")
    p = free_port()
    fmt = "$document_root|$realpath_root|$request_filename"
    switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@;
            location /r/ { root @L@/; return 200 "@F@"; }
            location /a/ { alias @W@/sub/; return 200 "@F@"; }
            location ~ ^/re/(.*)$ { alias @W@/$1; return 200 "@F@"; }
            location /d/ { return 200 "@F@"; } }""",
                              P=p, L=tmp_path / "link", W=www, F=fmt)))
    link, real = str(tmp_path / "link"), str(www)
    # root: its trailing slash dropped; the real path resolves the link
    assert request(p, "GET", "/r/x/y").text == f"{link}|{real}|{link}/r/x/y"
    # alias of a prefix location: the location's part of the URI replaced
    assert request(p, "GET", "/a/q").text == f"{real}/sub/|{real}/sub|{real}/sub/q"
    # alias of a regex location: the whole path
    assert request(p, "GET", "/re/sub").text == f"{real}/sub|{real}/sub|{real}/sub"


def test_default_root_is_html_under_the_prefix(switchyard):
    p = free_port()
    sy = switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@;
            location / { return 200 "$document_root|$request_filename"; } }""", P=p)))
    (sy.prefix / "html").mkdir(exist_ok=True)
    prefix = str(sy.prefix).rstrip("/")
    assert request(p, "GET", "/f").text == f"{prefix}/html|{prefix}/html/f"


# --------------------------------------------------------------------------
# the access log


def test_pipe_completion_and_sent_headers_in_the_log(switchyard):
    p = free_port()
    sy = switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@; keepalive_timeout 75s 60s;
            access_log logs/s.log s;
            location / { return 200 "hello"; }
            location /redir { return 302 /elsewhere; } }""", P=p), extra_http=(
        "log_format s '$uri|$pipe|$request_completion|$sent_http_connection|"
        "$sent_http_keep_alive|$sent_http_content_length|$sent_http_content_type|"
        "$sent_http_location';\n")))
    with HttpConn(p) as c:
        c.send(b"GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\n")
        c.read_response()
        c.read_response()
        c.request("GET", "/redir")
        c.request("GET", "/last", headers=[("Connection", "close")])
    path = sy.prefix / "logs" / "s.log"
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 4 else None)(
        [ln.split("|") for ln in path.read_text().split("\n") if ln] if path.exists() else []),
        5, "four log lines")
    by = {ln[0]: ln[1:] for ln in lines}
    kept = ["close", "-"] if IS_NGINX else ["keep-alive", "timeout=60"]
    assert by["/p1"] == [".", "OK", *kept, "5", "text/plain", "-"]
    assert by["/p2"] == ["p", "OK", *kept, "5", "text/plain", "-"]
    assert by["/redir"][:3] == [".", "OK", kept[0]]
    assert by["/redir"][5:] == ["text/html", f"http://localhost:{p}/elsewhere"]
    assert by["/last"] == [".", "OK", "close", "-", "5", "text/plain", "-"]


def test_request_completion_empty_when_the_client_went_away(switchyard, origin):
    p = free_port()
    sy = switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@; access_log logs/c.log c;
            location / { proxy_pass http://@O@; } }""", P=p, O=origin.addr),
        extra_http="log_format c '$status|$request_completion';\n"))
    s = hold(p, "/hang")
    wait_until(lambda: len(origin.requests) >= 1, 5, "the held request")
    s.close()
    path = sy.prefix / "logs" / "c.log"
    line = wait_until(lambda: path.read_text() if path.exists() and path.read_text() else None,
                      5, "the log line")
    assert line == "499|\n"


# --------------------------------------------------------------------------
# set $args


def test_set_args_changes_the_arguments_and_the_proxied_uri(switchyard, origin):
    p = free_port()
    switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@P@;
            location /sa/ { set $args "x=1&$args"; return 200 "$args|$is_args|$arg_x|$request_uri"; }
            location /sp/ { set $args "a=b"; proxy_pass http://@O@; }
            location /se/ { set $args ""; proxy_pass http://@O@; } }""", P=p, O=origin.addr)))
    assert request(p, "GET", "/sa/t?y=2").text == "x=1&y=2|?|1|/sa/t?y=2"
    assert request(p, "GET", "/sp/path?q=1").status == 200
    assert origin.requests[-1]["target"] == "/sp/path?a=b"
    # emptied: no "?" at all
    assert request(p, "GET", "/se/path?q=1").status == 200
    assert origin.requests[-1]["target"] == "/se/path"


# --------------------------------------------------------------------------
# configuration


def test_unknown_variable_is_a_config_test_error_with_its_line(sy_t):
    conf = http_conf("""
    server {
        listen 127.0.0.1:1;
        location / {
            return 200 "$upstream_byte_sent";
        }
    }""")
    line = conf.splitlines().index('            return 200 "$upstream_byte_sent";') + 1
    rc, out = sy_t(conf)
    assert rc != 0
    assert 'unknown "upstream_byte_sent" variable' in out, out
    if not IS_NGINX:   # nginx checks variables at the end and names no line
        assert re.search(rf'unknown "upstream_byte_sent" variable in \S+sy-t\.conf:{line}\b', out), out
