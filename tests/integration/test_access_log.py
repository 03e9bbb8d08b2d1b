"""The access log as nginx writes it: the default `combined` format byte for
byte; `log_format` variables with their values ($request_time,
$upstream_addr/$upstream_status/$upstream_response_time, $status,
$body_bytes_sent, $request_length, $host, $http_*, $arg_*, $cookie_*,
$sent_http_*, $connection/$connection_requests, $msec, $time_iso8601);
escaping (default: `"`, `\\` and bytes outside printable ASCII as \\xHH;
`escape=json`; `escape=none`); `access_log off`; several logs in one
location; `if=` with a map; buffered lines written at exit; error statuses
(404, 502, 400 for an invalid request line) logged."""

from __future__ import annotations

import datetime
import re
import time

from backends import closed_port
from harness import (HttpConn, build_request, fill, free_port, http_conf, raw_request,
                     request, wait_until)

TIME_LOCAL = r"\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]"


def start(switchyard, body, extra_http="", **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw), extra_http=extra_http))
    return sy, p


def log_lines(sy, name="access.log") -> list[str]:
    path = sy.prefix / "logs" / name
    try:
        data = path.read_bytes().decode("latin-1")
    except FileNotFoundError:
        return []
    return [ln for ln in data.split("\n") if ln]


def wait_lines(sy, n, name="access.log", timeout=5.0) -> list[str]:
    """Poll until the log holds at least n lines; return them."""
    return wait_until(lambda: (lambda ls: ls if len(ls) >= n else None)(log_lines(sy, name)),
                      timeout, f"{n} line(s) in logs/{name}")


def fields(line: str) -> dict:
    """Parse 'k=v k=v' (values hold no spaces)."""
    return dict(kv.split("=", 1) for kv in line.split(" "))


# --------------------------------------------------------------------------
# combined


def test_combined_format_exact_line(switchyard):
    sy, p = start(switchyard, 'server { listen 127.0.0.1:@P@; location / { return 200 "hello"; } }')
    before = datetime.datetime.now(datetime.timezone.utc)
    r = request(p, "GET", "/x?a=1", headers=[("Referer", "ref"), ("User-Agent", "ua")])
    assert r.status == 200
    (line,) = wait_lines(sy, 1)
    assert re.match(r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                    r'"GET /x\?a=1 HTTP/1\.1" 200 \d+ "ref" "ua"$', line), line
    # $body_bytes_sent is the body only
    assert re.search(r'" 200 5 "ref"', line), line
    stamp = re.search(r"\[([^\]]+)\]", line).group(1)
    t = datetime.datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z")
    assert abs((t - before).total_seconds()) < 5


def test_missing_referer_and_user_agent_are_dashes(switchyard):
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { return 204; } }")
    raw_request(p, b"HEAD /h HTTP/1.0\r\n\r\n")
    (line,) = wait_lines(sy, 1)
    assert re.match(rf'^127\.0\.0\.1 - - {TIME_LOCAL} "HEAD /h HTTP/1\.0" 204 0 "-" "-"$', line), line


# --------------------------------------------------------------------------
# log_format variables

CUSTOM = ("log_format custom 'rt=$request_time ua=$upstream_addr us=$upstream_status "
          "s=$status bbs=$body_bytes_sent rl=$request_length h=$host xc=$http_x_custom "
          "a=$arg_a c=$cookie_c ct=$sent_http_content_type urt=$upstream_response_time "
          "conn=$connection cr=$connection_requests msec=$msec iso=$time_iso8601';")

CUSTOM_SERVER = """
server {
    listen 127.0.0.1:@P@;
    access_log logs/custom.log custom;
    location /p/ { proxy_pass http://@O@/; }
    location /bad/ { proxy_pass http://127.0.0.1:@C@; }
    location /local/ { return 200 "local"; }
}
"""


def test_custom_format_values_proxied(switchyard, origin):
    sy, p = start(switchyard, CUSTOM_SERVER, extra_http=CUSTOM, O=origin.addr, C=closed_port())
    t0 = time.time()
    with HttpConn(p) as c:
        req1 = build_request("GET", "/p/slow/300?a=2&b=3", host="Example.COM:8080",
                             headers=[("X-Custom", "hello"), ("Cookie", "d=4; c=5")])
        c.send(req1)
        r1 = c.read_response()
        assert r1.status == 200
        r2 = c.request("GET", "/p/status/404")
        assert r2.status == 404
    t1 = time.time()
    l1, l2 = wait_lines(sy, 2, "custom.log")
    f1, f2 = fields(l1), fields(l2)

    assert re.fullmatch(r"\d+\.\d{3}", f1["rt"]) and 0.3 <= float(f1["rt"]) < 5, l1
    # the upstream's time is part of the request's (1 ms of slack: nginx takes
    # them from different clocks, each rounded to the millisecond)
    assert re.fullmatch(r"\d+\.\d{3}", f1["urt"]), l1
    assert 0.3 <= float(f1["urt"]) <= float(f1["rt"]) + 0.0015, l1
    assert f1["ua"] == origin.addr
    assert f1["us"] == "200" and f1["s"] == "200"
    assert int(f1["bbs"]) == len(r1.body)
    assert int(f1["rl"]) == len(req1)
    assert f1["h"] == "example.com"
    assert f1["xc"] == "hello"
    assert f1["a"] == "2"
    assert f1["c"] == "5"
    assert f1["ct"] == "application/json"
    assert re.fullmatch(r"\d+\.\d{3}", f1["msec"]) and t0 - 1 <= float(f1["msec"]) <= t1 + 1, l1
    iso = datetime.datetime.fromisoformat(f1["iso"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", f1["iso"]), l1
    assert abs(iso.timestamp() - t0) < 5

    # second request on the same connection: same $connection, next serial
    assert f2["us"] == "404" and f2["s"] == "404"
    assert f2["conn"] == f1["conn"] and re.fullmatch(r"\d+", f1["conn"])
    assert (f1["cr"], f2["cr"]) == ("1", "2")
    assert f2["xc"] == "-" and f2["a"] == "-" and f2["c"] == "-"   # empty values log as "-"
    assert int(f2["bbs"]) == len(r2.body)


def test_custom_format_values_local_and_502(switchyard):
    cp = closed_port()
    sy, p = start(switchyard, CUSTOM_SERVER, extra_http=CUSTOM, O=f"127.0.0.1:{cp}", C=cp)
    r1 = request(p, "GET", "/local/")
    r2 = request(p, "GET", "/bad/x")
    assert (r1.status, r2.status) == (200, 502)
    l1, l2 = wait_lines(sy, 2, "custom.log")
    f1, f2 = fields(l1), fields(l2)
    # no upstream: the upstream variables are empty, logged as "-"
    assert (f1["ua"], f1["us"], f1["urt"]) == ("-", "-", "-"), l1
    assert f1["ct"] == "text/plain"
    assert int(f1["bbs"]) == 5
    # refused upstream: its address, 502, a time; a new connection per request
    assert f2["ua"] == f"127.0.0.1:{cp}"
    assert f2["us"] == "502" and f2["s"] == "502"
    assert f2["ct"] == "text/html"
    assert f2["conn"] != f1["conn"] and f2["cr"] == "1"
    # a failed connect still has a response time (nginx: 0.000)
    assert re.fullmatch(r"\d+\.\d{3}", f2["urt"]), l2


# --------------------------------------------------------------------------
# escaping

ESC_SERVER = """
server {
    listen 127.0.0.1:@P@;
    location / { return 200 "ok"; }
    location /j { return 200 "ok"; access_log logs/j.log j; }
    location /n { return 200 "ok"; access_log logs/n.log n; }
}
"""
ESC_FORMATS = """
log_format j escape=json '{"ua":"$http_user_agent","ref":"$http_referer","u":"$request_uri"}';
log_format n escape=none 'ua=$http_user_agent';
"""
# Field values limited to what RFC 9110 allows (VCHAR, SP, HTAB, obs-text).
UA = b'a"b\\c\td\xe9e'


def esc_request(p, path: bytes):
    out = raw_request(p, b"GET " + path + b' HTTP/1.1\r\nHost: a\r\nConnection: close\r\n'
                      b'User-Agent: ' + UA + b'\r\nReferer: r"1\r\n\r\n')
    assert out.startswith(b"HTTP/1.1 200 "), out[:100]


def test_default_escaping(switchyard):
    sy, p = start(switchyard, ESC_SERVER, extra_http=ESC_FORMATS)
    esc_request(p, b"/x")
    (line,) = wait_lines(sy, 1)
    assert line.endswith(r'"GET /x HTTP/1.1" 200 2 "r\x221" "a\x22b\x5Cc\x09d\xE9e"'), line


def test_default_escaping_in_request_line(switchyard):
    sy, p = start(switchyard, ESC_SERVER, extra_http=ESC_FORMATS)
    esc_request(p, b'/x?q="\xe9')
    (line,) = wait_lines(sy, 1)
    assert r'"GET /x?q=\x22\xE9 HTTP/1.1" 200 2 ' in line, line


def test_escape_json(switchyard):
    sy, p = start(switchyard, ESC_SERVER, extra_http=ESC_FORMATS)
    esc_request(p, b'/j?q="\xe9')
    (line,) = wait_lines(sy, 1, "j.log")
    # `"` and `\` backslash-escaped, HTAB as \t, bytes >= 0x80 left as they are
    assert line == '{"ua":"a\\"b\\\\c\\td\xe9e","ref":"r\\"1","u":"/j?q=\\"\xe9"}', repr(line)


def test_escape_none(switchyard):
    sy, p = start(switchyard, ESC_SERVER, extra_http=ESC_FORMATS)
    esc_request(p, b"/n")
    (line,) = wait_lines(sy, 1, "n.log")
    assert line == 'ua=a"b\\c\td\xe9e', repr(line)


# --------------------------------------------------------------------------
# which log gets a line


def test_access_log_off_in_location(switchyard):
    sy, p = start(switchyard, """
server {
    listen 127.0.0.1:@P@;
    location /quiet/ { access_log off; return 200 "q"; }
    location / { return 200 "loud"; }
}""")
    assert request(p, "GET", "/quiet/1").status == 200
    assert request(p, "GET", "/loud/2").status == 200
    lines = wait_lines(sy, 1)
    # requests are logged in order: had /quiet/1 been logged it would be first
    assert len(lines) == 1 and '"GET /loud/2 HTTP/1.1"' in lines[0], lines


def test_two_access_logs_in_one_location(switchyard):
    sy, p = start(switchyard, """
server {
    listen 127.0.0.1:@P@;
    location / {
        access_log logs/one.log;
        access_log logs/two.log short;
        return 200 "two";
    }
}""", extra_http="log_format short '$request_method $uri $status';")
    assert request(p, "GET", "/both?z=1").status == 200
    (one,) = wait_lines(sy, 1, "one.log")
    (two,) = wait_lines(sy, 1, "two.log")
    assert re.match(rf'^127\.0\.0\.1 - - {TIME_LOCAL} "GET /both\?z=1 HTTP/1\.1" 200 3 "-" "-"$', one)
    assert two == "GET /both 200"
    # the location's access_log replaces the http-level one
    assert log_lines(sy) == []


def test_access_log_if_with_map(switchyard):
    sy, p = start(switchyard, """
map $status $loggable {
    ~^[23]  0;
    default 1;
}
server {
    listen 127.0.0.1:@P@;
    access_log logs/errors.log short if=$loggable;
    location /ok { return 200 "fine"; }
    location /missing { return 404; }
    location /boom { return 500; }
}""", extra_http="log_format short '$uri $status';")
    for path, status in (("/ok", 200), ("/missing", 404), ("/ok", 200), ("/boom", 500)):
        assert request(p, "GET", path).status == status
    lines = wait_lines(sy, 2, "errors.log")
    assert lines == ["/missing 404", "/boom 500"]


def test_buffered_lines_written_at_exit(switchyard):
    sy, p = start(switchyard, """
server {
    listen 127.0.0.1:@P@;
    access_log logs/buffered.log combined buffer=64k flush=1h;
    location / { return 200 "b"; }
}""")
    for i in range(3):
        assert request(p, "GET", f"/b{i}").status == 200
    problems = sy.stop()
    assert not problems, problems
    lines = log_lines(sy, "buffered.log")
    assert [re.search(r'"GET (\S+) ', ln).group(1) for ln in lines] == ["/b0", "/b1", "/b2"]


def test_line_present_when_process_exits(switchyard):
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { return 200 x; } }")
    assert request(p, "GET", "/last").status == 200
    problems = sy.stop()
    assert not problems, problems
    lines = log_lines(sy)
    assert len(lines) == 1 and '"GET /last HTTP/1.1" 200 1 ' in lines[0], lines


# --------------------------------------------------------------------------
# error statuses


def test_404_and_502_logged_with_status(switchyard, origin):
    sy, p = start(switchyard, """
server {
    listen 127.0.0.1:@P@;
    location /nf { return 404; }
    location /origin/ { proxy_pass http://@O@; }
    location /down/ { proxy_pass http://127.0.0.1:@C@; }
}""", O=origin.addr, C=closed_port())
    assert request(p, "GET", "/nf").status == 404
    assert request(p, "GET", "/origin/status/404").status == 404
    assert request(p, "GET", "/down/x").status == 502
    lines = wait_lines(sy, 3)
    statuses = [re.search(r'"GET (\S+) HTTP/1\.1" (\d{3}) \d+ ', ln).groups() for ln in lines]
    assert statuses == [("/nf", "404"), ("/origin/status/404", "404"), ("/down/x", "502")]


def test_invalid_request_line_logged_as_400(switchyard):
    sy, p = start(switchyard, "server { listen 127.0.0.1:@P@; location / { return 200 x; } }")
    out = raw_request(p, b"GARBAGE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out[:100]
    (line,) = wait_lines(sy, 1)
    assert re.match(rf'^127\.0\.0\.1 - - {TIME_LOCAL} "GARBAGE" 400 \d+ "-" "-"$', line), line
