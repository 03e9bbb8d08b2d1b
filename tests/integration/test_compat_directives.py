"""The nginx directives people's configurations carry (issue 12).

- The `*_temp_path` directives of packaged configs, benchmark configs and
  nginx-tests' TEST_GLOBALS_HTTP: nginx's syntax, contexts and checks;
  Switchyard never creates the directory (it streams bodies).
- Directives accepted for compatibility: checked as nginx checks them (same
  messages), warned where nginx warns.
- The ones with a behaviour a user relies on are honoured:
  chunked_transfer_encoding off, ignore_invalid_headers off, lingering_close
  / lingering_timeout, proxy_socket_keepalive, worker_priority,
  worker_rlimit_core.
- nginx directives Switchyard does not implement are explained (module, and
  "planned" for a module on the way),
  distinct from a typo; load_module is ignored with a warning (no dynamic
  modules); and Debian's stock /etc/nginx/nginx.conf (its `gzip on;` and
  modules-enabled include) passes.

Expectations are nginx's (run with SWITCHYARD_BIN=/usr/sbin/nginx); the
Switchyard-only ones are marked.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from harness import (BIN, IS_NGINX, PRODUCT, HttpConn, fill, free_port, http_conf, request,
                     run_switchyard_t, wait_until)

pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not built")


def emerg(message: str, conf: Path, line: int) -> str:
    """Regex of nginx's `[emerg] MESSAGE in CONF:LINE` line."""
    return rf"(?m)\[emerg\] (?:\d+#\d+: )?{re.escape(message)} in {re.escape(str(conf))}:{line}$"


def run_t(tmp_path: Path, text: str, **values):
    """-t on `text` (placeholders: @D@ = the prefix, and `values`);
    (exit code, output, conf path)."""
    prefix = tmp_path / "t"
    rc, out = run_switchyard_t(fill(text, D=prefix, **values), prefix=prefix)
    return rc, out, prefix / "sy-t.conf"


# --------------------------------------------------------------------------
# *_temp_path


def nginx_tests_conf(d: Path, port: int, origin: str) -> str:
    """A config shaped like nginx-tests' (%%TEST_GLOBALS_HTTP%% expanded)."""
    return f"""
events {{ }}
http {{
    root {d};
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    proxy_temp_path {d}/proxy_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;

    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ }}
        location / {{ proxy_pass http://{origin}; }}
    }}
}}
"""


def test_nginx_tests_globals_run(switchyard, origin, tmp_path):
    d = tmp_path / "sy"
    (d / "static").mkdir(parents=True)
    (d / "static" / "a.txt").write_text("static file\n")
    port = free_port()
    switchyard(nginx_tests_conf(d, port, origin.addr))
    assert request(port, "GET", "/static/a.txt").body == b"static file\n"
    body = os.urandom(200000)
    r = request(port, "POST", "/upload", body=body)
    assert r.status == 200
    assert origin.last_request()["body_len"] == len(body)
    made = sorted(p.name for p in d.glob("*_temp"))
    if IS_NGINX:
        # nginx creates its temp directories at start ...
        assert made == ["client_body_temp", "fastcgi_temp", "proxy_temp", "scgi_temp",
                        "uwsgi_temp"]
    else:
        # ... Switchyard streams bodies and never writes a temporary file.
        assert made == []


def test_temp_paths_with_levels_and_inheritance(tmp_path):
    rc, out, _ = run_t(tmp_path, """events {}
http {
    client_body_temp_path @D@/body 1 2;
    proxy_temp_path @D@/proxy/ 2 2;
    fastcgi_temp_path @D@/fastcgi 1 2 3;
    uwsgi_temp_path @D@/uwsgi 9;
    server {
        proxy_temp_path @D@/proxy 2 2;
        client_body_temp_path @D@/body2;
        location / { proxy_temp_path @D@/loc; scgi_temp_path @D@/scgi 1; }
    }
}
""")
    assert rc == 0, out
    assert "[warn]" not in out and "[emerg]" not in out, out


TEMP_PATH_ERRORS = [
    ("duplicate",
     "events {}\nhttp {\n    proxy_temp_path @D@/a 1 2;\n    proxy_temp_path @D@/b;\n}\n",
     '"proxy_temp_path" directive is duplicate', 4),
    ("level-too-long", "events {}\nhttp {\n    scgi_temp_path @D@/a 11;\n}\n",
     '"scgi_temp_path" directive invalid value', 3),
    ("levels-sum-over-10", "events {}\nhttp {\n    uwsgi_temp_path @D@/a 5 6;\n}\n",
     '"uwsgi_temp_path" directive invalid value', 3),
    ("level-zero", "events {}\nhttp {\n    fastcgi_temp_path @D@/a 0;\n}\n",
     '"fastcgi_temp_path" directive invalid value', 3),
    ("level-not-a-number", "events {}\nhttp {\n    client_body_temp_path @D@/a 1 x;\n}\n",
     '"client_body_temp_path" directive invalid value', 3),
    ("four-levels", "events {}\nhttp {\n    proxy_temp_path @D@/a 1 1 1 1;\n}\n",
     'invalid number of arguments in "proxy_temp_path" directive', 3),
    ("main-level", "client_body_temp_path @D@/a;\nevents {}\n",
     '"client_body_temp_path" directive is not allowed here', 1),
    ("inside-if", "events {}\nhttp {\n    server {\n        location / {\n"
     "            if ($uri) { proxy_temp_path @D@/a; }\n        }\n    }\n}\n",
     '"proxy_temp_path" directive is not allowed here', 5),
]


@pytest.mark.parametrize("text,message,line", [c[1:] for c in TEMP_PATH_ERRORS],
                         ids=[c[0] for c in TEMP_PATH_ERRORS])
def test_temp_path_errors(tmp_path, text, message, line):
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 1, out
    assert re.search(emerg(message, conf, line), out), out


def test_temp_path_same_name_different_levels(tmp_path):
    rc, out, conf = run_t(tmp_path, "events {}\nhttp {\n    proxy_temp_path @D@/tmp 1 2;\n"
                                    "    client_body_temp_path @D@/tmp 2;\n}\n")
    assert rc == 1, out
    msg = f'the same path name "{tmp_path}/t/tmp" in {conf}:3 has the different levels than'
    assert re.search(emerg(msg, conf, 4), out), out


@pytest.mark.switchyard_only
def test_temp_path_directory_is_not_created_by_t(tmp_path):
    # nginx -t creates the directory (and fails when its parent is missing).
    rc, out, _ = run_t(tmp_path, "events {}\nhttp { proxy_temp_path @D@/no/such/parent 1 2; }\n")
    assert rc == 0, out
    assert not (tmp_path / "t" / "no").exists()


# --------------------------------------------------------------------------
# accepted for compatibility


ACCEPTED = """
worker_priority 0;
env FOO; env BAR=1;
lock_file @D@/logs/nginx.lock;
working_directory @D@;
pcre_jit on;
thread_pool pool1 threads=4 max_queue=100;
timer_resolution 100ms;
debug_points abort;
events { accept_mutex_delay 500ms; epoll_events 512; worker_aio_requests 32; }
http {
    connection_pool_size 512; request_pool_size 4k;
    sendfile_max_chunk 2m; aio threads=pool1; aio_write on; directio 4m;
    directio_alignment 512; read_ahead 0;
    open_file_cache max=1000 inactive=20s; open_file_cache_errors on; open_file_cache_events on;
    open_file_cache_min_uses 2; open_file_cache_valid 60s;
    msie_padding on; msie_refresh on; max_ranges 1; recursive_error_pages off;
    satisfy any; auth_delay 1s; subrequest_output_buffer_size 8k;
    rewrite_log on; uninitialized_variable_warn off;
    types_hash_max_size 2048; types_hash_bucket_size 64;
    server_names_hash_max_size 512; server_names_hash_bucket_size 64;
    variables_hash_max_size 1024; variables_hash_bucket_size 64;
    proxy_headers_hash_max_size 512; proxy_headers_hash_bucket_size 64;
    reset_timedout_connection on; tcp_nopush on; output_buffers 2 32k; postpone_output 1460;
    proxy_ignore_headers X-Accel-Redirect Set-Cookie Vary;
    proxy_max_temp_file_size 0; proxy_temp_file_write_size 16k; proxy_force_ranges off;
    client_body_temp_path @D@/body 1 2; proxy_temp_path @D@/proxy 1 2;
    server {
        listen 127.0.0.1:@P@;
        connection_pool_size 256;
        location / {
            aio off; rewrite_log off;
            if ($uri) { rewrite_log on; uninitialized_variable_warn on; }
            return 204;
        }
    }
}
"""


def test_accepted_directives_pass_t(tmp_path):
    rc, out, _ = run_t(tmp_path, ACCEPTED, P=free_port())
    assert rc == 0, out
    assert "[emerg]" not in out and "[warn]" not in out, out


def test_accepted_directives_run(switchyard, tmp_path):
    port = free_port()
    sy = switchyard(fill(ACCEPTED, P=port, D=tmp_path))
    assert request(port, "GET", "/").status == 204
    assert "[emerg]" not in sy.error_log()


def test_send_lowat_warnings_as_nginx(tmp_path):
    rc, out, conf = run_t(tmp_path, "events {}\nhttp {\n    proxy_send_lowat 1k;\n"
                                    "    send_lowat 2k;\n}\n")
    assert rc == 0, out
    for name, line in (("proxy_send_lowat", 3), ("send_lowat", 4)):
        assert re.search(rf'\[warn\] (?:\d+#\d+: )?"{name}" is not supported, ignored '
                         rf'in {re.escape(str(conf))}:{line}$', out, re.M), out


ACCEPTED_ERRORS = [
    ("pool-too-small", "events {}\nhttp {\n    connection_pool_size 100;\n}\n",
     "the pool size must be no less than 112", 3),
    ("pool-not-aligned", "events {}\nhttp {\n    request_pool_size 4100;\n}\n",
     "the pool size must be a multiple of 16", 3),
    ("pool-in-location", "events {}\nhttp {\n    server {\n        location / {\n"
     "            connection_pool_size 512;\n        }\n    }\n}\n",
     '"connection_pool_size" directive is not allowed here', 5),
    ("thread-pool-no-threads", "thread_pool p max_queue=10;\nevents {}\n",
     '"thread_pool" must have "threads" parameter', 1),
    ("thread-pool-zero", "thread_pool p threads=0;\nevents {}\n",
     'invalid threads value "threads=0"', 1),
    ("thread-pool-duplicate", "thread_pool p threads=1;\nthread_pool p threads=2;\nevents {}\n",
     'duplicate thread pool "p"', 2),
    ("worker-priority", "worker_priority high;\nevents {}\n",
     '"worker_priority" directive invalid number', 1),
    ("lock-file-duplicate", "lock_file a;\nlock_file b;\nevents {}\n",
     '"lock_file" directive is duplicate', 2),
    ("debug-points", "debug_points crash;\nevents {}\n", 'invalid value "crash"', 1),
    ("timer-resolution", "timer_resolution fast;\nevents {}\n",
     '"timer_resolution" directive invalid value', 1),
    ("accept-mutex-delay-context", "events {}\naccept_mutex_delay 1s;\n",
     '"accept_mutex_delay" directive is not allowed here', 2),
    ("aio", "events {}\nhttp {\n    aio maybe;\n}\n", '"aio" directive invalid value', 3),
    ("directio", "events {}\nhttp {\n    directio big;\n}\n",
     '"directio" directive invalid value', 3),
    ("satisfy", "events {}\nhttp {\n    satisfy some;\n}\n", 'invalid value "some"', 3),
    ("ignore-headers", "events {}\nhttp {\n    proxy_ignore_headers Server;\n}\n",
     'invalid value "Server"', 3),
    ("msie-refresh", "events {}\nhttp {\n    msie_refresh yes;\n}\n",
     'invalid value "yes" in "msie_refresh" directive, it must be "on" or "off"', 3),
    ("rewrite-log-duplicate", "events {}\nhttp {\n    rewrite_log on;\n    rewrite_log off;\n}\n",
     '"rewrite_log" directive is duplicate', 4),
    ("rewrite-log-in-upstream", "events {}\nhttp {\n    upstream u {\n        server 127.0.0.1:9;\n"
     "        rewrite_log on;\n    }\n}\n", '"rewrite_log" directive is not allowed here', 5),
]


@pytest.mark.parametrize("text,message,line", [c[1:] for c in ACCEPTED_ERRORS],
                         ids=[c[0] for c in ACCEPTED_ERRORS])
def test_accepted_directive_errors_as_nginx(tmp_path, text, message, line):
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 1, out
    assert re.search(emerg(message, conf, line), out), out


NEUTRAL_ONLY = [
    ("recursive_error_pages on;",
     '"recursive_error_pages" directive is not supported except "off"'),
    ("proxy_force_ranges on;", '"proxy_force_ranges" directive is not supported except "off"'),
]


@pytest.mark.switchyard_only
@pytest.mark.parametrize("directive,message", NEUTRAL_ONLY, ids=[c[0] for c in NEUTRAL_ONLY])
def test_only_the_neutral_value_is_accepted(tmp_path, directive, message):
    rc, out, conf = run_t(tmp_path, f"events {{}}\nhttp {{\n    {directive}\n}}\n")
    assert rc == 1, out
    assert re.search(emerg(message, conf, 3), out), out


@pytest.mark.switchyard_only
def test_ignored_with_a_warning(tmp_path):
    # nginx built without --with-debug warns about debug_connection the same
    # way; nginx loads an ssl_engine (and fails on an unknown one).
    rc, out, conf = run_t(tmp_path,
                          "ssl_engine qat;\nevents {\n    debug_connection 10.0.0.0/8;\n}\n")
    assert rc == 0, out
    assert f'[warn] "ssl_engine" is not supported, ignored: OpenSSL\'s default implementation ' \
           f'is used in {conf}:1' in out, out
    assert f'[warn] "debug_connection" is not supported, ignored in {conf}:3' in out, out


# --------------------------------------------------------------------------
# honoured


def start(switchyard, body, **kw):
    p = free_port()
    sy = switchyard(http_conf(fill(body, P=p, **kw)))
    return p, sy


@pytest.mark.parametrize("setting", ["on", "off"])
def test_chunked_transfer_encoding(switchyard, origin, setting):
    p, _ = start(switchyard, """server { listen 127.0.0.1:@P@;
        chunked_transfer_encoding @S@;
        location / { proxy_pass http://@O@; } }""", O=origin.addr, S=setting)
    with HttpConn(p) as c:
        r = c.request("GET", "/chunked/5000")
        assert r.status == 200 and r.body_len == 5000
        assert r.header("Content-Length") is None
        if setting == "on":
            assert r.framing == "chunked" and r.header("Transfer-Encoding") == "chunked"
            assert r.header("Connection") != "close"
            assert c.request("GET", "/chunked/10").body_len == 10  # same connection
        else:
            # no chunking: the body ends with the connection
            assert r.framing == "close" and r.header("Transfer-Encoding") is None
            assert c.eof


def test_chunked_transfer_encoding_off_keeps_known_lengths(switchyard, origin):
    p, _ = start(switchyard, """server { listen 127.0.0.1:@P@; chunked_transfer_encoding off;
        location / { proxy_pass http://@O@; } }""", O=origin.addr)
    with HttpConn(p) as c:
        for _ in range(2):
            r = c.request("GET", "/bytes/300")
            assert r.framing == "length" and r.body_len == 300


def test_ignore_invalid_headers_off_keeps_underscores(switchyard, origin):
    p, _ = start(switchyard, """server { listen 127.0.0.1:@P@; ignore_invalid_headers off;
        location / { proxy_pass http://@O@; } }""", O=origin.addr)
    request(p, "GET", "/u", headers=[("X_Under", "1"), ("X-Dash", "2")])
    h = {k.lower(): v for k, v in origin.last_request()["headers"]}
    assert h["x_under"] == "1" and h["x-dash"] == "2"


def proxy_holds(sy, client: socket.socket) -> bool:
    """Does a proxy process still have a descriptor for its side of `client`'s
    connection? (The kernel keeps a closed socket in FIN-WAIT without one.)"""
    port = client.getsockname()[1]
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[2].split(":")[1], 16) == port and f[9] != "0":
            inodes.add(f"socket:[{f[9]}]")
    for pid in sy._tree():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                pass
    return False


def read_response_and_eof(s: socket.socket) -> bytes:
    """Read until the proxy's FIN (it shuts its side down after the response)."""
    s.settimeout(5)
    got = b""
    while True:
        b = s.recv(4096)
        if not b:
            return got
        got += b


# One request with "Connection: close" and a pipelined second one behind it:
# the proxy answers the first, and bytes are left unread.
PIPELINED = (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
             b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


@pytest.mark.parametrize("mode", ["on", "off"])
def test_lingering_close_with_unread_bytes(switchyard, mode):
    p, sy = start(switchyard, """server { listen 127.0.0.1:@P@;
        lingering_close @M@; lingering_timeout 30s;
        location / { return 200 "ok"; } }""", M=mode)
    with socket.create_connection(("127.0.0.1", p)) as s:
        s.sendall(PIPELINED)
        assert read_response_and_eof(s).endswith(b"\r\n\r\nok")
        # The client still holds its socket open and sends nothing more.
        if mode == "off":
            wait_until(lambda: not proxy_holds(sy, s), 3, "the proxy closed at once")
        else:
            # lingering: the proxy keeps reading for lingering_timeout (30s) ...
            assert proxy_holds(sy, s)
            s.shutdown(socket.SHUT_WR)
            # ... until the client closes
            wait_until(lambda: not proxy_holds(sy, s), 5, "the client's close ended the lingering")


def test_lingering_close_always_and_lingering_timeout(switchyard):
    # `always`: lingers after every response that closes the connection, even
    # with nothing unread, until the client closes or lingering_timeout passes.
    p, sy = start(switchyard, """server { listen 127.0.0.1:@P@; keepalive_timeout 0;
        lingering_close always; lingering_timeout 300ms;
        location / { return 200 "ok"; } }""")
    with socket.create_connection(("127.0.0.1", p)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response_and_eof(s).endswith(b"\r\n\r\nok")
        wait_until(lambda: not proxy_holds(sy, s), 5, "lingering_timeout closed the socket")


def test_lingering_close_always_keeps_reading(switchyard):
    p, sy = start(switchyard, """server { listen 127.0.0.1:@P@; keepalive_timeout 0;
        lingering_close always; lingering_timeout 30s;
        location / { return 200 "ok"; } }""")
    with socket.create_connection(("127.0.0.1", p)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response_and_eof(s).endswith(b"\r\n\r\nok")
        for _ in range(20):
            s.sendall(b"x" * 1000)  # read and dropped, never a reset
        assert proxy_holds(sy, s)
        s.shutdown(socket.SHUT_WR)
        wait_until(lambda: not proxy_holds(sy, s), 5, "the client's close ended the lingering")


def keepalive_timer(origin_port: int) -> list[str]:
    """ss -o lines of established connections to the origin (the proxy's side)."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( dport = :{origin_port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


@pytest.mark.parametrize("setting", ["on", "off"])
def test_proxy_socket_keepalive(switchyard, origin, setting):
    p, _ = start(switchyard, """upstream u { server @O@; keepalive 4; }
        server { listen 127.0.0.1:@P@;
        location / { proxy_socket_keepalive @S@; proxy_http_version 1.1;
                     proxy_set_header Connection ""; proxy_pass http://u; } }""",
                 O=origin.addr, S=setting)
    assert request(p, "GET", "/").status == 200
    lines = wait_until(lambda: keepalive_timer(origin.port), 5, "the pooled upstream connection")
    assert len(lines) == 1, lines
    assert ("timer:(keepalive" in lines[0]) == (setting == "on"), lines


def serving_pids(sy) -> list[int]:
    """The processes that serve: nginx's workers, or Switchyard's single process."""
    tree = sy._tree()
    return tree[1:] if len(tree) > 1 else tree


def test_worker_priority_and_rlimit_core(switchyard):
    p = free_port()
    sy = switchyard(http_conf(fill("server { listen 127.0.0.1:@P@; location / { return 204; } }",
                                   P=p), extra_main="worker_priority 7; worker_rlimit_core 3m;"))
    assert request(p, "GET", "/").status == 204
    pids = serving_pids(sy)
    assert pids
    for pid in pids:
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice == 7
        limits = Path(f"/proc/{pid}/limits").read_text()
        core = re.search(r"(?m)^Max core file size\s+(\d+)\s+(\d+)", limits)
        assert core and core.groups() == (str(3 << 20), str(3 << 20)), limits


# --------------------------------------------------------------------------
# nginx directives Switchyard does not implement


NOT_IMPLEMENTED = [
    # (where, directive, module label, planned)
    ("location", "proxy_limit_rate 1k;", "ngx_http_proxy_module", False),
]


def placed(where: str, directive: str) -> tuple[str, int]:
    """A config with `directive` in block `where`, and its line."""
    if where == "http":
        return f"events {{}}\nhttp {{\n    {directive}\n}}\n", 3
    if where == "server":
        return f"events {{}}\nhttp {{\n    server {{\n        {directive}\n    }}\n}}\n", 4
    if where == "upstream":
        return ("events {}\nhttp {\n    upstream u {\n        server 127.0.0.1:9;\n"
                f"        {directive}\n    }}\n}}\n"), 5
    return ("events {}\nhttp {\n    server {\n        location / {\n"
            f"            {directive}\n        }}\n    }}\n}}\n"), 5


@pytest.mark.parametrize("where,directive,label,planned", NOT_IMPLEMENTED,
                         ids=[c[1].split()[0] for c in NOT_IMPLEMENTED])
def test_nginx_directive_not_implemented(tmp_path, where, directive, label, planned):
    text, line = placed(where, directive)
    rc, out, conf = run_t(tmp_path, text)
    if IS_NGINX:
        # a real nginx directive: nginx runs it
        assert rc == 0, out
        return
    assert rc == 1, out
    name = directive.split()[0]
    plan = ", planned for a later compatibility release" if planned else ""
    msg = (f'nginx directive "{name}" is not implemented yet ({label}{plan}); remove it to run '
           f'this configuration')
    assert re.search(emerg(msg, conf, line), out), out


def test_typo_is_still_unknown(tmp_path):
    rc, out, conf = run_t(tmp_path, "events {}\nhttp {\n    gzip_typos text/css;\n}\n")
    assert rc == 1, out
    assert re.search(emerg('unknown directive "gzip_typos"', conf, 3), out), out


@pytest.mark.switchyard_only
def test_stream_block_is_explained(tmp_path):
    rc, out, conf = run_t(tmp_path, "events {}\nstream {\n    server { listen 12345; }\n}\n")
    assert rc == 1, out
    assert re.search(emerg('nginx directive "stream" is not implemented yet (ngx_stream_module); '
                           'remove it to run this configuration', conf, 2), out), out


LOAD_MODULE = ('"load_module" is ignored: Switchyard has no dynamic modules, what it implements '
               'is built in ("switchyard -V" lists it); the directives of '
               '"modules/ngx_http_echo_module.so" are unknown')


def warn(message: str, conf: Path, line: int) -> str:
    return rf"(?m)\[warn\] (?:\d+#\d+: )?{re.escape(message)} in {re.escape(str(conf))}:{line}$"


@pytest.mark.switchyard_only
def test_load_module_is_ignored_with_a_warning(tmp_path):
    rc, out, conf = run_t(tmp_path, "load_module modules/ngx_http_echo_module.so;\nevents {}\n")
    assert rc == 0, out
    assert re.search(warn(LOAD_MODULE, conf, 1), out), out
    # a directive of that module is then unknown, as in an nginx built without it
    rc, out, conf = run_t(tmp_path, "load_module modules/ngx_http_echo_module.so;\nevents {}\n"
                          "http {\n server {\n  location / { echo hi; }\n }\n}\n")
    assert rc == 1, out
    assert re.search(emerg('unknown directive "echo"', conf, 5), out), out


# --------------------------------------------------------------------------
# Debian's stock configuration


def copy_etc_nginx(dst: Path) -> Path:
    """/etc/nginx copied into `dst` (symlinks followed) with its absolute paths
    (/etc/nginx, /var/log/nginx, /run) pointed into `dst`."""
    shutil.copytree("/etc/nginx", dst, symlinks=False)
    (dst / "log").mkdir()
    for f in dst.rglob("*"):
        if not f.is_file():
            continue
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        new = (text.replace("/etc/nginx", str(dst)).replace("/var/log/nginx", str(dst / "log"))
               .replace("/run/nginx.pid", str(dst / "nginx.pid")))
        if new != text:
            f.write_text(new)
    return dst / "nginx.conf"


def line_of(path: Path, pattern: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if re.match(pattern, ln))


@pytest.mark.switchyard_only
@pytest.mark.skipif(not Path("/etc/nginx/nginx.conf").exists(),
                    reason="Debian's nginx configuration is not installed")
def test_debian_stock_nginx_conf(tmp_path):
    conf = copy_etc_nginx(tmp_path / "etc")
    d = tmp_path / "etc"

    def t():
        r = subprocess.run([str(BIN), "-t", "-p", f"{tmp_path}/", "-c", str(conf)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        return r.returncode, r.stderr

    # The include of modules-enabled brings load_module lines (nginx-light
    # ships the echo module; with none there, the include matches nothing):
    # each is a warning, and the whole configuration, `gzip on;` included, runs.
    loads = [(f, i) for f in sorted((d / "modules-enabled").glob("*.conf"))
             for i, ln in enumerate(f.read_text().splitlines(), 1)
             if ln.strip().startswith("load_module")]
    assert line_of(conf, r"\s*gzip on;")

    def module_of(f: Path, i: int) -> str:
        return re.search(r"load_module\s+(\S+);", f.read_text().splitlines()[i - 1]).group(1)

    load_warnings = "".join(
        f'{PRODUCT}: [warn] "load_module" is ignored: Switchyard has no dynamic modules, what '
        f'it implements is built in ("switchyard -V" lists it); the directives of '
        f'"{module_of(f, i)}" are unknown in {f}:{i}\n' for f, i in loads)
    rc, err = t()
    assert rc == 0, err
    assert err.startswith(load_warnings), err
    assert "[emerg]" not in err, err
    assert err.endswith(f"{PRODUCT}: the configuration file {conf} syntax is ok\n"
                        f"{PRODUCT}: configuration file {conf} test is successful\n"), err
