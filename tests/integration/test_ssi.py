"""Server-side includes (issue 14 item 4): nginx's ngx_http_ssi_module, over
real sockets, against static files, aliases, proxied documents and proxied
includes, over HTTP/1.1 and HTTP/2, with and without gzip.

The configuration that needs it is Jitsi Meet's site config:

    ssi on;
    ssi_types application/x-javascript application/javascript;
    location = /config.js { alias /etc/jitsi/meet/example.com-config.js; }
    location ~ ^/([^/?&:'"]+)$ { try_files $uri @root_path; }
    location @root_path { rewrite ^/(.*)$ / break; }

with an index.html full of <!--#include virtual="/config.js" --> and
<!--#include virtual="head.html" -->, served for every room name. What is
checked here is what nginx does (every test also runs against Debian's nginx,
SWITCHYARD_BIN=/usr/sbin/nginx): the included bodies in place and in order,
the commands' output, nginx's error message for a failing or unknown
command, the head (no Content-Length, Accept-Ranges, Last-Modified or ETag
unless ssi_last_modified), ssi_types, ssi_silent_errors, ssi_value_length.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import time

import pytest

from backends import read_request_head
from h2_support import curl_h2, h2_server
from harness import HttpConn, fill, free_port, http_conf, request

ERR = "[an error occurred while processing the directive]"

INDEX = """<html><head>
<!--#include virtual="/base.html" -->
<script><!--#include virtual="/config.js" --></script>
<script><!--#include virtual="/interface_config.js" --></script>
<!--#include virtual="head.html" -->
</head><body>room</body></html>
"""

TYPES = """
types { text/html html; application/javascript js; text/plain txt; }
default_type application/octet-stream;
"""

LOCS = r"""
    root @PREFIX@web;
    index index.html;
    ssi on;
    ssi_types application/x-javascript application/javascript;

    location = /config.js { alias @PREFIX@etc/meet-config.js; }
    location = /interface_config.js { alias @PREFIX@etc/interface_config.js; }
    location ~ ^/(libs|css|static|images|fonts|lang|sounds)/(.*)$ {
        add_header Access-Control-Allow-Origin "*";
        alias @PREFIX@web/$1/$2;
    }
    location ~ ^/([^/?&:'"]+)$ { try_files $uri @root_path; }
    location @root_path { rewrite ^/(.*)$ / break; }

    location /cmd/ { }
    location /silent/ { alias @PREFIX@web/cmd/; ssi_silent_errors on; }
    location /short/ { alias @PREFIX@web/cmd/; ssi_value_length 8; }
    location /lm/ { alias @PREFIX@web/cmd/; ssi_last_modified on; }
    location /plain/ { alias @PREFIX@web/cmd/; ssi_types text/plain; }
    location /off/ { alias @PREFIX@web/cmd/; ssi off; }
    location /tuned/ { alias @PREFIX@web/cmd/; ssi_min_file_chunk 2k;
                       ssi_ignore_recycled_buffers on; }
    location /gz/ { alias @PREFIX@web/; gzip on; }
    location /p/ { proxy_pass http://@UP@/; }
    location = /ret { return 200 "returned $arg_x"; }
"""

CONF = TYPES + "server {\n    listen 127.0.0.1:@PORT@;\n" + LOCS + "}\n"

CONFIG_JS = "var config = { hosts: { domain: 'meet.example' } };"
INTERFACE_JS = "var interfaceConfig = { APP_NAME: 'Meet' };"
BIG = "".join(f"{i:06d} the quick brown fox\n" for i in range(60000))  # ~1.5 MB


def build_tree(prefix):
    files = {
        "web/index.html": INDEX,
        "web/base.html": '<base href="/" />',
        "web/head.html": "<meta name=head>",
        "web/libs/app.js": "// app <!--#echo var=\"uri\" -->",
        "etc/meet-config.js": CONFIG_JS,
        "etc/interface_config.js": INTERFACE_JS,
        "web/cmd/echo.html": (
            '<!--#set var="who" value="world" -->'
            'hello <!--#echo var="who" -->|<!--#echo var="nope" -->|'
            '<!--#echo var="nope" default="dflt" -->|<!--#echo var="nope" default="" -->|'
            '<!--#echo var="arg_q" -->|<!--#echo var="arg_q" encoding="url" -->|'
            '<!--#echo var="arg_q" encoding="none" -->|<!--#echo var="arg_q" -->|'
            '<!--#set var="v" value="$who and ${who}s \\$x" --><!--#echo var="v" -->'),
        "web/cmd/if.html": (
            '<!--#set var="a" value="abc" -->'
            '<!--#if expr="$a = abc" -->1<!--#else -->x<!--#endif -->'
            '<!--#if expr="$a != abc" -->x<!--#else -->2<!--#endif -->'
            '<!--#if expr="$a = /^a(b)c/" -->3$1=<!--#echo var="1" --><!--#endif -->'
            '<!--#if expr="$a = /c$/" -->x<!--#endif -->'
            '<!--#if expr="$a != /z/" -->4<!--#endif -->'
            '<!--#if expr="$nothing" -->x<!--#elif expr="$a" -->5<!--#else -->x<!--#endif -->'
            '<!--#if expr="$a = q" -->x<!--#elif expr="$a = r" -->x<!--#else -->6<!--#endif -->'
            '<!--#if expr="$a = /^(?<first>.)/" -->7<!--#echo var="first" --><!--#endif -->'),
        "web/cmd/errors.html": (
            'a<!--#bogus -->b<!--#echo -->c<!--#echo var="x" nonsense="1" -->d'
            '<!--#else -->e<!--#include -->f<!--#if expr="$x ~ y" -->g<!--#endif -->h'
            '<!--#config errmsg="[oops]" --><!--#nosuch -->i'),
        "web/cmd/block.html": (
            '<!--#block name="one" -->stub one <!--#echo var="uri" --><!--#endblock -->'
            '[<!--#include virtual="/cmd/empty.html" stub="one" -->]'
            '[<!--#include virtual="/cmd/part.html" stub="one" -->]'
            '<!--#include virtual="/ret?x=42" set="got" -->(<!--#echo var="got" -->)'),
        "web/cmd/empty.html": "",
        "web/cmd/part.html": "PART",
        "web/cmd/long.html": '<!--#set var="v" value="123456789" -->[<!--#echo var="v" -->]',
        "web/cmd/text.txt": 'T<!--#echo var="uri" -->T',
        "web/cmd/files.html": (
            '<!--#include file="part.html" -->|<!--#include virtual="part.html" -->|'
            '<!--#include virtual="/cmd/part.html?a=1" -->|'
            '<!--#include virtual="../x/../part.html" -->|'
            '<!--#include virtual="/no/such.html" -->'),
        "web/cmd/nested.html": 'N1<!--#include virtual="/cmd/inner.html" -->N4',
        "web/cmd/inner.html": 'N2<!--#include virtual="/cmd/part.html" -->N3',
        "web/cmd/big.html": 'start<!--#include virtual="/cmd/big.txt" -->end',
        "web/cmd/big.txt": BIG,
        "web/cmd/slow.html": 'before<!--#include virtual="/p/slow" -->after',
        "web/cmd/vars.html": ('<!--#set var="page" value="part" -->'
                              '<!--#include virtual="/cmd/${page}.html" -->|'
                              '<!--#include virtual="/ret?x=$arg_a" -->|'
                              '<!--#echo var="date_gmt" -->|'
                              '<!--#config timefmt="%s" --><!--#echo var="date_local" -->'),
        "web/cmd/stub404.html": ('<!--#block name="b" -->STUB<!--#endblock -->'
                                 '[<!--#include virtual="/cmd/nosuch.html" stub="b" -->]'
                                 '[<!--#include virtual="/p/none" stub="b" -->]'),
        "web/cmd/loop.html": 'x<!--#include virtual="/cmd/loop.html" -->y',
        "web/cmd/tail.html": "abc<!--#echo var='uri' -->def<!-",
    }
    for rel, data in files.items():
        p = prefix / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)


def start_origin(raw_backend):
    """An origin sending a document in small pieces (a command split across
    them) and a JavaScript file for a proxied include."""
    doc = (b'<p>x<!--#echo var="request_uri" -->y'
           b'<!--#include virtual="/cmd/part.html" -->z<!--#include virtual="/p/js" --></p>')

    def handler(c):
        while True:
            head = read_request_head(c)
            if not head:
                return
            path = head.split(b" ", 2)[1].decode()
            if path.startswith("/doc"):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n")
                for i in range(0, len(doc), 7):
                    piece = doc[i:i + 7]
                    c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    time.sleep(0.002)
                c.sendall(b"0\r\n\r\n")
            elif path == "/slow":
                time.sleep(0.3)
                body = b"SLOW" * 50000
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
            elif path == "/js":
                body = b"JS!"
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/javascript\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
            else:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    return raw_backend(handler)


@pytest.fixture
def env(switchyard, raw_backend, tmp_path):
    build_tree(tmp_path)
    up = start_origin(raw_backend)
    port = free_port()
    sy = switchyard(http_conf(fill(CONF, PORT=port, PREFIX=f"{tmp_path}/", UP=up.addr)))
    return sy


def get(port, target, headers=None, **kw):
    return request(port, "GET", target, headers=headers, **kw)


def expected_index():
    return (INDEX.replace('<!--#include virtual="/base.html" -->', '<base href="/" />')
            .replace('<!--#include virtual="/config.js" -->', CONFIG_JS)
            .replace('<!--#include virtual="/interface_config.js" -->', INTERFACE_JS)
            .replace('<!--#include virtual="head.html" -->', "<meta name=head>"))


# ----------------------------------------------------------------- Jitsi Meet


def test_jitsi_room_gets_index_with_includes_in_place(env):
    """A room name falls back to index.html, whose includes -- aliased
    JavaScript files elsewhere, a relative include -- come in place."""
    for target in ("/", "/index.html", "/myroom", "/AnotherRoom"):
        r = get(env.port, target)
        assert r.status == 200, (target, r)
        assert r.text == expected_index(), target
        assert r.header("Content-Length") is None
        assert r.header("Last-Modified") is None and r.header("ETag") is None
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.header("Content-Type") == "text/html"


def test_jitsi_config_js_is_itself_processed_and_aliased_js_too(env):
    """ssi_types application/javascript: JavaScript documents are parsed
    too (an echo in libs/app.js, served through a regex alias)."""
    r = get(env.port, "/config.js")
    assert r.status == 200 and r.text == CONFIG_JS
    assert r.header("Content-Length") is None
    r = get(env.port, "/libs/app.js")
    assert r.status == 200 and r.text == "// app /libs/app.js"
    assert r.header("Access-Control-Allow-Origin") == "*"


def test_jitsi_over_http2(env, switchyard, tmp_path):
    """The same locations on an h2c listener."""
    port = free_port()
    body = fill(LOCS, PREFIX=f"{tmp_path}/", UP="127.0.0.1:9")
    switchyard(http_conf(TYPES + h2_server(port, body=body)))
    for target in ("/myroom", "/"):
        rc, version, status, head, out, err = curl_h2(f"http://127.0.0.1:{port}{target}",
                                                      prior_knowledge=True)
        assert rc == 0 and version == "2" and status == 200, (rc, version, status, err)
        assert out.decode() == expected_index()
        assert "content-length" not in head.lower()


# ----------------------------------------------------------------- commands


def test_echo_set_and_encodings(env):
    r = get(env.port, "/cmd/echo.html?q=a%20b<c>&z=1")
    assert r.status == 200
    # encoding is sticky: after encoding="url" the next echo is url-encoded too
    assert r.text == ("hello world|(none)|dflt||a%20b&lt;c&gt;|a%2520b%3Cc%3E|a%20b<c>|"
                      "a%20b<c>|world and worlds $x")


def test_if_elif_else_regex_and_captures(env):
    r = get(env.port, "/cmd/if.html")
    assert r.status == 200
    # a "$" that names no variable is an error, in a regex too (nginx)
    assert r.text == f"123$1=b{ERR}x{ERR}4567a"


def test_errors_write_nginx_message_and_are_logged(env):
    mark = env.log_mark()
    r = get(env.port, "/cmd/errors.html")
    assert r.status == 200
    # the failed if leaves no condition open: its endif is out of context
    assert r.text == f"a{ERR}b{ERR}c{ERR}d{ERR}e{ERR}f{ERR}g{ERR}h[oops]i"
    log = env.error_log()[mark:]
    for msg in ('invalid SSI command: "bogus"',
                'mandatory "var" parameter is absent in "echo" SSI command',
                'invalid parameter name: "nonsense" in "echo" SSI command',
                'invalid context of SSI command: "else"',
                'no parameter in "include" SSI command',
                'invalid expression in "$x ~ y"',
                'invalid SSI command: "nosuch"'):
        assert msg in log, msg


def test_silent_errors(env):
    r = get(env.port, "/silent/errors.html")
    assert r.status == 200
    assert r.text == "abcdefghi"


def test_value_length(env):
    mark = env.log_mark()
    r = get(env.port, "/short/long.html")
    assert r.text == f"{ERR}[(none)]"
    assert 'too long "12345678' in env.error_log()[mark:]
    assert get(env.port, "/cmd/long.html").text == "[123456789]"


def test_block_stub_and_include_set(env):
    r = get(env.port, "/cmd/block.html")
    assert r.status == 200
    # a stub is written as the block held it: commands in it stay text (nginx)
    assert r.text == '[stub one <!--#echo var="uri" -->][PART](returned 42)'


def test_include_file_virtual_relative_args_unsafe_and_missing(env):
    mark = env.log_mark()
    r = get(env.port, "/cmd/files.html")
    assert r.status == 200
    parts = r.text.split("|")
    assert parts[:3] == ["PART", "PART", "PART"]
    assert parts[3] == ERR
    assert 'unsafe URI "/cmd/../x/../part.html" was detected' in env.error_log()[mark:]
    # a missing include inserts the sub-request's 404 page, as nginx
    assert "<title>404 Not Found</title>" in parts[4]


def test_nested_includes(env):
    assert get(env.port, "/cmd/nested.html").text == "N1N2PARTN3N4"


def test_partial_prefix_at_the_end_is_dropped(env):
    """nginx holds back a "<!-" that might start a command; at the end of
    the document it is dropped."""
    assert get(env.port, "/cmd/tail.html").text == "abc/cmd/tail.htmldef"


def test_big_include_streams_through(env):
    r = get(env.port, "/cmd/big.html", timeout=30)
    assert r.status == 200
    assert r.body_len == len(BIG) + len("startend")
    assert r.text == "start" + BIG + "end"


# ----------------------------------------------------------------- head, types


def test_head_fields_and_last_modified(env):
    r = get(env.port, "/cmd/part.html")
    assert r.header("Content-Length") is None and r.header("Accept-Ranges") is None
    assert r.header("Last-Modified") is None and r.header("ETag") is None
    r = get(env.port, "/lm/part.html")
    assert r.header("Last-Modified") is not None
    assert r.header("ETag", "").startswith('W/"')
    assert r.header("Content-Length") is None
    r = get(env.port, "/off/part.html")
    assert r.header("Content-Length") == "4" and r.header("ETag", "").startswith('"')


def test_types_and_off(env):
    raw = 'T<!--#echo var="uri" -->T'
    assert get(env.port, "/cmd/text.txt").text == raw
    assert get(env.port, "/plain/text.txt").text == "T/plain/text.txtT"
    assert get(env.port, "/off/echo.html").text.startswith('<!--#set var="who"')
    assert get(env.port, "/tuned/part.html").text == "PART"


def test_head_request(env):
    r = request(env.port, "HEAD", "/cmd/echo.html")
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Length") is None


def test_gzip_compresses_the_processed_document(env):
    r = get(env.port, "/gz/index.html", {"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body).decode() == expected_index()


# ----------------------------------------------------------------- proxied


def test_proxied_document_split_in_pieces_with_proxied_include(env):
    r = get(env.port, "/p/doc?k=v")
    assert r.status == 200
    assert r.text == "<p>x/p/doc?k=vyPARTzJS!</p>"
    assert r.header("Content-Length") is None


def test_client_gone_during_big_include_then_next_request(env):
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
        s.sendall(b"GET /cmd/big.html HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
        s.close()
    assert get(env.port, "/cmd/nested.html").text == "N1N2PARTN3N4"


def test_range_and_conditions_do_not_cut_a_processed_document(env):
    """The SSI module clears ranges (nginx): a Range request gets the whole
    processed document with 200, and the includes are whole whatever the
    client's Range / If-Modified-Since say (sub-requests ignore them)."""
    hdrs = {"Range": "bytes=0-3", "If-Modified-Since": "Fri, 01 Jan 2038 00:00:00 GMT"}
    r = get(env.port, "/cmd/nested.html", hdrs)
    assert r.status == 200 and r.text == "N1N2PARTN3N4"
    assert r.header("Content-Range") is None
    # a type SSI does not process still has its ranges
    r = get(env.port, "/cmd/big.txt", {"Range": "bytes=0-5"})
    assert r.status == 206 and r.text == "000000"


def test_keepalive_after_processed_documents(env):
    with HttpConn(env.port) as c:
        for target, want in (("/cmd/nested.html", "N1N2PARTN3N4"),
                             ("/cmd/part.html", "PART"),
                             ("/p/doc", "<p>x/p/docyPARTzJS!</p>"),
                             ("/cmd/nested.html", "N1N2PARTN3N4")):
            r = c.request("GET", target)
            assert r.status == 200 and r.text == want, target


def test_proxied_include_streams_and_client_may_leave_while_it_waits(env):
    r = get(env.port, "/cmd/slow.html", timeout=20)
    assert r.status == 200 and r.text == "before" + "SLOW" * 50000 + "after"
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
        s.sendall(b"GET /cmd/slow.html HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100)
        s.close()
    assert get(env.port, "/cmd/nested.html").text == "N1N2PARTN3N4"


def test_big_and_proxied_includes_over_http2(env, switchyard, raw_backend, tmp_path):
    up = start_origin(raw_backend)
    port = free_port()
    body = fill(LOCS, PREFIX=f"{tmp_path}/", UP=up.addr)
    switchyard(http_conf(TYPES + h2_server(port, body=body)))
    for target, want in (("/cmd/big.html", "start" + BIG + "end"),
                         ("/p/doc", "<p>x/p/docyPARTzJS!</p>"),
                         ("/cmd/slow.html", "before" + "SLOW" * 50000 + "after")):
        rc, version, status, head, out, err = curl_h2(f"http://127.0.0.1:{port}{target}",
                                                      prior_knowledge=True, timeout=20)
        assert rc == 0 and version == "2" and status == 200, (rc, version, status, err)
        assert out.decode() == want, target


def test_self_include_stops_at_nginx_depth(env):
    """A page that includes itself: 51 levels of sub-requests, then the
    error (nginx's NGX_HTTP_MAX_SUBREQUESTS), and the page still ends."""
    mark = env.log_mark()
    r = get(env.port, "/cmd/loop.html", timeout=20)
    assert r.status == 200
    assert r.text == "x" * 52 + ERR + "y" * 52
    assert 'subrequests cycle while processing "/cmd/loop.html"' in env.error_log()[mark:]


def test_variables_in_include_uris_and_dates(env):
    r = get(env.port, "/cmd/vars.html?a=7")
    part, ret, gmt, epoch = r.text.split("|")
    assert (part, ret) == ("PART", "returned 7")
    # nginx's default timefmt: "%A, %d-%b-%Y %H:%M:%S %Z"
    assert re.fullmatch(r"[A-Z][a-z]+day, \d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d GMT", gmt), gmt
    assert abs(int(epoch) - time.time()) < 60


def test_stub_for_error_responses(env):
    """stub= replaces an error page of the included request (a missing
    file) and an empty body (a proxied 404 without one), as nginx."""
    r = get(env.port, "/cmd/stub404.html")
    assert r.status == 200
    assert r.text == "[STUB][STUB]"


@pytest.mark.slow
def test_large_include_and_large_document_with_bounded_memory(switchyard, tmp_path):
    """A 20 MiB file included in a page, and a 20 MiB page itself: while the
    client holds back, the worker holds a bounded amount, never the file."""
    data = os.urandom(10 * 1024 * 1024).hex().encode()  # 20 MiB of hex text
    (tmp_path / "html").mkdir()
    (tmp_path / "html/big.txt").write_bytes(data)
    (tmp_path / "html/page.html").write_text('<p><!--#include virtual="/big.txt" --></p>')
    (tmp_path / "html/bigpage.html").write_bytes(data[:10 << 20] + b'<!--#echo var="uri" -->'
                                                 + data[10 << 20:])
    port = free_port()
    sy = switchyard(http_conf(fill(
        "server { listen 127.0.0.1:@PORT@; root @PREFIX@html; ssi on;"
        " types { text/plain txt; text/html html; } }", PORT=port, PREFIX=f"{tmp_path}/")))
    for target, want in ((b"/page.html", b"<p>" + data + b"</p>"),
                         (b"/bigpage.html", data[:10 << 20] + b"/bigpage.html" + data[10 << 20:])):
        before = sy.rss_kb()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        got = b""
        while len(got) < 1024 * 1024:
            b = s.recv(65536)
            assert b
            got += b
        # the client stops reading for a moment: the server holds a bounded amount
        during = max(sy.rss_kb() for _ in range(20))
        assert during - before < 12 * 1024, (before, during)
        deadline = time.monotonic() + 60
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            b = s.recv(262144)
            if not b:
                break
            got += b
        s.close()
        head, _, body = got.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        out, pos = b"", 0
        while True:  # de-chunk
            eol = body.index(b"\r\n", pos)
            n = int(body[pos:eol], 16)
            if n == 0:
                break
            out += body[eol + 2:eol + 2 + n]
            pos = eol + 2 + n + 2
        assert out == want, target


def test_http10_client_gets_the_document_until_close(env):
    s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    s.sendall(b"GET /cmd/nested.html HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert body == b"N1N2PARTN3N4"
