"""nginx's command line, unchanged: -v/-V/-h, -t/-T/-q with nginx's messages
(every configuration error is `[emerg] <message> in <file>:<line>`, plus
`configuration file <path> test failed`), -g, -p (relative paths resolve
against the prefix), -e (start-up errors such as a failed bind()), the pid
file (written once the sockets listen, removed at exit), -s
reload|reopen|quit|stop through the pid file, and a graceful SIGQUIT that lets
a request in flight finish."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

import harness
from harness import (BIN, IS_NGINX, TEMP_PATHS_HTTP, PRODUCT, HttpConn, fill, free_port,
                     port_open, request, wait_until)

pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not built")

# nginx's temp-path directives (Switchyard has no temp files), all on the
# `http {` line so the line numbers in a config are the same for both.
HTTP_OPEN = "http { " + " ".join(TEMP_PATHS_HTTP.split())


def run(args, cwd=None, timeout=30.0):
    """Run BIN with `args`; returns CompletedProcess with text stdout/stderr."""
    r = subprocess.run([str(BIN), *map(str, args)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, cwd=cwd)
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def write_conf(d: Path, text: str, name="sy.conf", **values) -> Path:
    """Write `text` (placeholders: @HTTP@ and `values`) to d/name."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "logs").mkdir(exist_ok=True)
    path = d / name
    path.write_text(fill(text, HTTP=HTTP_OPEN, **values))
    return path


def run_t(d: Path, conf: Path, *extra, cwd=None):
    return run(["-p", f"{d}/", "-c", conf, "-e", d / "error-t.log", *extra, "-t"], cwd=cwd)


def emerg_re(message: str, path: Path | None, line: int | None) -> str:
    """`[emerg] MESSAGE in PATH:LINE` on one line (nginx prefixes stderr lines
    with `nginx: `, its error log lines with `PID#TID: `)."""
    loc = rf" in {re.escape(str(path))}:{line}" if line is not None else \
        rf"(?: in {re.escape(str(path))}:\d+)?" if path is not None else ""
    return rf"(?m)\[emerg\] (?:\d+#\d+: )?{message}{loc}$"


def failed_re(conf: Path) -> str:
    return rf"(?m)^{PRODUCT}: configuration file {re.escape(str(conf))} test failed$"


# --------------------------------------------------------------------------
# -v -V -h


def test_version():
    r = run(["-v"])
    assert r.returncode == 0
    if IS_NGINX:
        assert re.fullmatch(r"nginx version: nginx/\d+\.\d+\.\d+\n", r.err), r.err
    else:
        # its own version, then the nginx release whose language it follows
        # (the form certbot's nginx plugin and Test::Nginx's has_version read)
        assert re.fullmatch(rf"{PRODUCT} version: {PRODUCT}/(\d+\.\d+\.\d+)\n"
                            r"nginx version: nginx/\d+\.\d+\.\d+ "
                            rf"\(compatible; {PRODUCT}/\1\)\n", r.err), r.err
    assert r.out == ""


def test_version_and_configure_arguments():
    # nginx's form, line by line: tools (nginx-tests' Test::Nginx) read it.
    r = run(["-V"])
    assert r.returncode == 0
    assert r.out == ""
    lines = r.err.splitlines()
    assert re.fullmatch(rf"{PRODUCT} version: {PRODUCT}/\d+\.\d+\.\d+", lines[0]), r.err
    rest = lines[1:]
    if not IS_NGINX:
        assert re.fullmatch(r"nginx version: nginx/\d+\.\d+\.\d+ .*", rest[0]), r.err
        rest = rest[1:]
    if rest and rest[0].startswith("built by "):
        rest = rest[1:]
    assert len(rest) == 3, r.err
    assert re.fullmatch(r"built with OpenSSL \d+\.\d+\.\d+\S* .+?"
                        r"(?: \(running with OpenSSL \d+\.\d+\.\d+\S* .+\))?", rest[0]), r.err
    assert rest[1] == "TLS SNI support enabled"
    assert rest[2].startswith("configure arguments: --"), r.err


@pytest.mark.switchyard_only
def test_configure_arguments_are_honest():
    r = run(["-V"])
    (args,) = [ln for ln in r.err.splitlines() if ln.startswith("configure arguments:")]
    flags = args.split()[2:]
    without = sorted(f[len("--without-"):] for f in flags if f.startswith("--without-"))
    assert without == sorted([
        "http_userid_module", "http_mirror_module",
        "http_fastcgi_module", "http_uwsgi_module", "http_scgi_module",
        "http_grpc_module", "http_memcached_module", "http_tunnel_module",
        "http_browser_module", "http_upstream_least_time_module", "http_upstream_sticky_module"]), args
    with_ = sorted(f for f in flags if f.startswith("--with-"))
    assert with_ == ["--with-http_auth_request_module", "--with-http_gzip_static_module",
                     "--with-http_realip_module", "--with-http_secure_link_module",
                     "--with-http_ssl_module", "--with-http_stub_status_module", "--with-http_sub_module",
                     "--with-http_v2_module", "--with-pcre-jit"]
    assert [f for f in flags if not f.startswith("--with")] == ["--prefix=" + f for f in
                                                               [flags[0][len("--prefix="):]]]


# nginx-tests' Test::Nginx::has_module (lib/Test/Nginx.pm): the regex it
# matches against `-V`, and a directive of that feature with where it goes.
# has_module must say yes exactly when `-t` accepts the directive.
HAS_MODULE = [
    ("charset", r"(?s)^(?!.*--without-http_charset_module)", "http", "charset utf-8;"),
    ("gzip", r"(?s)^(?!.*--without-http_gzip_module)", "http", "gzip on;"),
    ("ssi", r"(?s)^(?!.*--without-http_ssi_module)", "http", "ssi on;"),
    ("mirror", r"(?s)^(?!.*--without-http_mirror_module)", "location", "mirror /m;"),
    ("userid", r"(?s)^(?!.*--without-http_userid_module)", "http", "userid on;"),
    ("access", r"(?s)^(?!.*--without-http_access_module)", "location", "deny all;"),
    ("auth_basic", r"(?s)^(?!.*--without-http_auth_basic_module)", "location", "auth_basic x;"),
    ("autoindex", r"(?s)^(?!.*--without-http_autoindex_module)", "location", "autoindex on;"),
    ("geo", r"(?s)^(?!.*--without-http_geo_module)", "http", "geo $g { default 0; }"),
    ("map", r"(?s)^(?!.*--without-http_map_module)", "http", "map $uri $m { default 1; }"),
    ("referer", r"(?s)^(?!.*--without-http_referer_module)", "location",
     "valid_referers none example.com;"),
    ("rewrite", r"(?s)^(?!.*--without-http_rewrite_module)", "location", "rewrite ^/a /b;"),
    ("proxy", r"(?s)^(?!.*--without-http_proxy_module)", "location",
     "proxy_pass http://127.0.0.1:9;"),
    ("fastcgi", r"(?s)^(?!.*--without-http_fastcgi_module)", "location",
     "fastcgi_pass 127.0.0.1:9;"),
    ("uwsgi", r"(?s)^(?!.*--without-http_uwsgi_module)", "location", "uwsgi_pass 127.0.0.1:9;"),
    ("scgi", r"(?s)^(?!.*--without-http_scgi_module)", "location", "scgi_pass 127.0.0.1:9;"),
    ("grpc", r"(?s)^(?!.*--without-http_grpc_module)", "location", "grpc_pass 127.0.0.1:9;"),
    ("memcached", r"(?s)^(?!.*--without-http_memcached_module)", "location",
     "set $memcached_key k; memcached_pass 127.0.0.1:9;"),
    ("limit_conn", r"(?s)^(?!.*--without-http_limit_conn_module)", "http",
     "limit_conn_zone $binary_remote_addr zone=c:1m;"),
    ("limit_req", r"(?s)^(?!.*--without-http_limit_req_module)", "http",
     "limit_req_zone $binary_remote_addr zone=r:1m rate=1r/s;"),
    ("empty_gif", r"(?s)^(?!.*--without-http_empty_gif_module)", "location", "empty_gif;"),
    ("browser", r"(?s)^(?!.*--without-http_browser_module)", "http", "modern_browser msie 6.0;"),
    ("upstream_hash", r"(?s)^(?!.*--without-http_upstream_hash_module)", "upstream", "hash $uri;"),
    ("upstream_ip_hash", r"(?s)^(?!.*--without-http_upstream_ip_hash_module)", "upstream",
     "ip_hash;"),
    ("upstream_least_conn", r"(?s)^(?!.*--without-http_upstream_least_conn_mod)", "upstream",
     "least_conn;"),
    ("upstream_random", r"(?s)^(?!.*--without-http_upstream_random_module)", "upstream",
     "random;"),
    ("upstream_keepalive", r"(?s)^(?!.*--without-http_upstream_keepalive_modu)", "upstream",
     "keepalive 8;"),
    ("upstream_zone", r"(?s)^(?!.*--without-http_upstream_zone_module)", "upstream",
     "zone z 64k;"),
    ("cache", r"(?s)^(?!.*--without-http-cache)", "http", "proxy_cache_path cache keys_zone=c:1m;"),
    ("split_clients", r"(?s)^(?!.*--without-http_split_clients_module)", "http",
     "split_clients $uri $s { * a; }"),
    ("http", r"(?s)^(?!.*--without-http(?!\S))", "main", "http { }"),
    ("pcre", r"(?s)^(?!.*--without-pcre)", "server", "location ~ ^/a { }"),
    ("realip", r"--with-http_realip_module", "http", "set_real_ip_from 127.0.0.1;"),
    ("gzip_static", r"--with-http_gzip_static_module", "location", "gzip_static on;"),
    ("sub", r"--with-http_sub_module", "location", "sub_filter a b;"),
    ("auth_request", r"--with-http_auth_request_module", "location", "auth_request /a;"),
    ("flv", r"--with-http_flv_module", "location", "flv;"),
    ("http_ssl", r"http_ssl", "http", "ssl_session_timeout 5m;"),
    ("http_v2", r"http_v2", "http", "http2_max_concurrent_streams 16;"),
    # default modules of nginx releases newer than Debian's 1.22
    ("upstream_least_time", r"(?s)^(?!.*--without-http_upstream_least_time_mod)", "upstream",
     "least_time header;"),
    ("upstream_sticky", r"(?s)^(?!.*--without-http_upstream_sticky)", "upstream",
     "sticky cookie s;"),
    ("tunnel", r"(?s)^(?!.*--without-http_tunnel_module)", "location", "tunnel_pass;"),
]
NEWER_THAN_1_22 = {"upstream_least_time", "upstream_sticky", "tunnel"}


def probe_conf(where: str, directive: str) -> str:
    if where == "main":
        return f"events {{}}\n{directive}\n"
    if where == "http":
        return f"events {{}}\nhttp {{\n{directive}\n}}\n"
    if where == "server":
        return f"events {{}}\nhttp {{ server {{\n{directive}\n}} }}\n"
    if where == "upstream":
        return f"events {{}}\nhttp {{ upstream u {{\n{directive}\nserver 127.0.0.1:9; }} }}\n"
    return f"events {{}}\nhttp {{ server {{ location / {{\n{directive}\n}} }} }}\n"


@pytest.mark.parametrize("feature,regex,where,directive", HAS_MODULE,
                         ids=[h[0] for h in HAS_MODULE])
def test_has_module_agrees_with_t(tmp_path, feature, regex, where, directive):
    if IS_NGINX and feature in NEWER_THAN_1_22:
        pytest.skip("not a module of nginx 1.22")
    v = run(["-V"])
    has = re.search(regex, v.stdout.decode() + v.stderr.decode()) is not None
    conf = write_conf(tmp_path, probe_conf(where, directive))
    r = run_t(tmp_path, conf)
    assert (r.returncode == 0) == has, (feature, has, r.err)


def test_has_module_sni():
    v = run(["-V"])
    assert re.search(r"TLS SNI support enabled", v.err)


@pytest.mark.parametrize("flag", ["-h", "-?"])
def test_help_lists_every_option(flag):
    r = run([flag])
    assert r.returncode == 0
    assert re.search(rf"(?m)^Usage: {PRODUCT} \[-\?hvVtTq\] \[-s signal\] \[-p prefix\]$", r.err), r.err
    for opt in ("-?,-h", "-v", "-V", "-t", "-T", "-q", "-s signal", "-p prefix",
                "-e filename", "-c filename", "-g directives"):
        assert re.search(rf"(?m)^  {re.escape(opt)} +: \S", r.err), (opt, r.err)


@pytest.mark.parametrize("args,shown", [(["-x"], '"x"'), (["-t", "stray"], '"stray"')])
def test_invalid_option(args, shown):
    r = run(args)
    assert r.returncode != 0
    assert f"{PRODUCT}: invalid option: {shown}" in r.err, r.err


# --------------------------------------------------------------------------
# -t -q -T

GOOD = """\
events { worker_connections 64; }
@HTTP@
    server {
        listen 127.0.0.1:@P@;
        location / { return 200 "ok"; }
    }
}
"""


def test_t_good_config(tmp_path):
    conf = write_conf(tmp_path, GOOD, P=free_port())
    r = run_t(tmp_path, conf)
    assert r.returncode == 0, r.err
    assert f"{PRODUCT}: the configuration file {conf} syntax is ok\n" in r.err
    assert f"{PRODUCT}: configuration file {conf} test is successful\n" in r.err
    assert "[emerg]" not in r.err


def test_q_t_is_silent_on_success(tmp_path):
    conf = write_conf(tmp_path, GOOD, P=free_port())
    r = run_t(tmp_path, conf, "-q")
    assert r.returncode == 0, r.err
    assert (r.out, r.err) == ("", "")


def test_q_t_still_reports_errors(tmp_path):
    conf = write_conf(tmp_path, "events {}\n@HTTP@\n    bogus_directive on;\n}\n")
    r = run_t(tmp_path, conf, "-q")
    assert r.returncode == 1
    assert re.search(emerg_re(r'unknown directive "bogus_directive"', conf, 3), r.err), r.err


# (id, config, expected message regex, expected line; None = no line required)
BROKEN = [
    ("unknown-directive",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:@P@;\n        foo_bar 1;\n    }\n}\n",
     r'unknown directive "foo_bar"', 5),
    ("proxy_pass-in-server",
     "events {}\n@HTTP@\n    server {\n        proxy_pass http://127.0.0.1:1;\n    }\n}\n",
     r'"proxy_pass" directive is not allowed here', 4),
    ("listen-in-location",
     "events {}\n@HTTP@\n    server {\n        location / {\n            listen 127.0.0.1:@P@;\n"
     "        }\n    }\n}\n",
     r'"listen" directive is not allowed here', 5),
    ("server-in-server",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:@P@;\n        server {\n"
     "        }\n    }\n}\n",
     r'"server" directive is not allowed here', 5),
    ("location-in-http",
     "events {}\n@HTTP@\n    location / {\n    }\n}\n",
     r'"location" directive is not allowed here', 3),
    ("no-arguments",
     "events {}\n@HTTP@\n    server {\n        keepalive_timeout;\n    }\n}\n",
     r'invalid number of arguments in "keepalive_timeout" directive', 4),
    ("too-many-arguments",
     "events {}\n@HTTP@\n    server {\n        location / {\n            proxy_pass http://a b;\n"
     "        }\n    }\n}\n",
     r'invalid number of arguments in "proxy_pass" directive', 5),
    ("invalid-time",
     "events {}\n@HTTP@\n    server {\n        keepalive_timeout abc;\n    }\n}\n",
     r'"keepalive_timeout" directive invalid value', 4),
    ("invalid-size",
     "events {}\n@HTTP@\n    client_max_body_size 1x;\n}\n",
     r'"client_max_body_size" directive invalid value', 3),
    ("duplicate-directive",
     "events {}\n@HTTP@\n    server {\n        keepalive_timeout 5s;\n        keepalive_timeout 6s;\n"
     "    }\n}\n",
     r'"keepalive_timeout" directive is duplicate', 5),
    ("unexpected-close-brace",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:@P@;\n    }\n}\n}\n",
     r'unexpected "\}"', 7),
    ("unexpected-eof",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:@P@;\n    }",
     r'unexpected end of file, expecting "\}"', 5),
    ("missing-semicolon-before-block",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:@P@\n"
     "        location / { return 200 x; }\n    }\n}\n",
     r'directive "listen" is not terminated by ";"', 5),
    ("missing-semicolon-before-close",
     "events {}\n@HTTP@\n    server {\n        location / {\n            return 200 x\n"
     "        }\n    }\n}\n",
     r'unexpected "\}"', 6),
    ("block-without-brace",
     "events {}\n@HTTP@\n    server;\n}\n",
     r'directive "server" has no opening "\{"', 3),
    # nginx checks variables after parsing and names no line; a line is allowed
    ("unknown-variable",
     "events {}\n@HTTP@\n    server {\n        location / {\n"
     "            proxy_set_header X-A $nosuchvar;\n            proxy_pass http://127.0.0.1:1;\n"
     "        }\n    }\n}\n",
     r'unknown "nosuchvar" variable', None),
    ("bad-listen-parameter",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:@P@ bogus;\n    }\n}\n",
     r'invalid parameter "bogus"', 4),
    ("bad-listen-port",
     "events {}\n@HTTP@\n    server {\n        listen 127.0.0.1:99999;\n    }\n}\n",
     r'invalid port in "127\.0\.0\.1:99999" of the "listen" directive', 4),
    ("proxy_pass-uri-in-regex-location",
     "events {}\n@HTTP@\n    server {\n        location ~ ^/a {\n"
     "            proxy_pass http://127.0.0.1:1/x;\n        }\n    }\n}\n",
     r'"proxy_pass" cannot have URI part in location given by regular expression, or inside '
     r'named location, or inside "if" statement, or inside "limit_except" block', 5),
    ("proxy_pass-invalid-url",
     "events {}\n@HTTP@\n    server {\n        location / {\n            proxy_pass ftp://x;\n"
     "        }\n    }\n}\n",
     r'invalid URL prefix', 5),
    ("duplicate-location",
     "events {}\n@HTTP@\n    server {\n        location /a {\n        }\n        location /a {\n"
     "        }\n    }\n}\n",
     r'duplicate location "/a"', 6),
    ("host-not-found",
     "events {}\n@HTTP@\n    server {\n        location / {\n"
     "            proxy_pass http://no-such-host.invalid;\n        }\n    }\n}\n",
     r'host not found in upstream "no-such-host\.invalid"', 5),
    ("upstream-without-servers",
     "events {}\n@HTTP@\n    upstream empty {\n    }\n}\n",
     r'no servers are inside upstream', 4),
    ("invalid-return-code",
     "events {}\n@HTTP@\n    server {\n        location / {\n            return 1000;\n"
     "        }\n    }\n}\n",
     r'invalid return code "1000"', 5),
    ("non-numeric-return-code",
     "events {}\n@HTTP@\n    server {\n        location / {\n            return abc;\n"
     "        }\n    }\n}\n",
     r'invalid return code "abc"', 5),
]


@pytest.mark.parametrize("conf_text,message,line", [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_t_broken_config(tmp_path, conf_text, message, line):
    conf = write_conf(tmp_path, conf_text, P=free_port())
    r = run_t(tmp_path, conf)
    assert r.returncode == 1, r.err
    assert re.search(emerg_re(message, conf, line), r.err), r.err
    assert re.search(failed_re(conf), r.err), r.err
    assert "syntax is ok" not in r.err
    # the error also went to the -e log
    assert re.search(emerg_re(message, conf, line), (tmp_path / "error-t.log").read_text())


def test_t_include_missing_file_names_including_file(tmp_path):
    conf = write_conf(tmp_path / "conf", "events {}\n@HTTP@\n    include servers/nosuch.conf;\n}\n")
    r = run_t(tmp_path, conf)
    assert r.returncode == 1
    # relative includes resolve against the directory of the main file
    missing = re.escape(str(tmp_path / "conf" / "servers" / "nosuch.conf"))
    assert re.search(emerg_re(rf'open\(\) "{missing}" failed \(2: No such file or directory\)',
                              conf, 3), r.err), r.err
    assert re.search(failed_re(conf), r.err), r.err


def test_t_error_inside_included_file_names_that_file(tmp_path):
    d = tmp_path / "conf"
    conf = write_conf(d, "events {}\n@HTTP@\n    include servers/*.conf;\n}\n")
    (d / "servers").mkdir()
    inc = d / "servers" / "a.conf"
    inc.write_text(f"server {{\n    listen 127.0.0.1:{free_port()};\n\n    bogus_dir 1;\n}}\n")
    r = run_t(tmp_path, conf)
    assert r.returncode == 1
    assert re.search(emerg_re(r'unknown directive "bogus_dir"', inc, 4), r.err), r.err
    assert re.search(failed_re(conf), r.err), r.err


def test_T_dumps_main_and_included_files(tmp_path):
    d = tmp_path / "conf"
    main_text = "events {}\n@HTTP@\n    include inc.conf;\n}\n"
    conf = write_conf(d, main_text)
    inc_text = f"# included\nserver {{\n    listen 127.0.0.1:{free_port()};\n}}\n"
    (d / "inc.conf").write_text(inc_text)
    r = run(["-p", f"{tmp_path}/", "-c", conf, "-e", tmp_path / "e.log", "-T"])
    assert r.returncode == 0, r.err
    assert f"configuration file {conf} test is successful" in r.err
    assert r.out == (f"# configuration file {conf}:\n{conf.read_text()}\n"
                     f"# configuration file {d / 'inc.conf'}:\n{inc_text}\n"), r.out


# --------------------------------------------------------------------------
# -g


def test_g_directives_accepted(tmp_path):
    conf = write_conf(tmp_path, GOOD, P=free_port())
    r = run_t(tmp_path, conf, "-g", "worker_processes 1;")
    assert r.returncode == 0, r.err
    assert "test is successful" in r.err


@pytest.mark.parametrize("g,message", [
    ("worker_processes 1", r'unexpected end of parameter, expecting ";"'),
    ("worker_processes 1; no_such_directive 2;", r'unknown directive "no_such_directive"'),
])
def test_g_errors(tmp_path, g, message):
    conf = write_conf(tmp_path, GOOD, P=free_port())
    r = run_t(tmp_path, conf, "-g", g)
    assert r.returncode == 1
    assert re.search(rf"(?m)\[emerg\] {message} in command line$", r.err), r.err
    assert re.search(failed_re(conf), r.err), r.err


def test_g_directive_duplicated_in_file(tmp_path):
    conf = write_conf(tmp_path, "worker_processes 2;\n" + GOOD, P=free_port())
    r = run_t(tmp_path, conf, "-g", "worker_processes 1;")
    assert r.returncode == 1
    assert re.search(emerg_re(r'"worker_processes" directive is duplicate', conf, 1), r.err), r.err


# --------------------------------------------------------------------------
# running processes


def foreground_g(extra: str = "") -> str:
    """The harness's process model (see harness.Switchyard.argv)."""
    g = ("daemon off; master_process on; worker_processes 1; user root;" if IS_NGINX
         else "daemon off; master_process off;")
    return g + extra


class Proc(harness.Switchyard):
    """harness.Switchyard with an explicit command line and working directory."""

    def __init__(self, prefix, conf_text, argv, cwd=None):
        super().__init__(prefix, conf_text)
        self._argv = [str(a) for a in argv]
        self._cwd = cwd

    def argv(self):
        return self._argv

    def start(self, check_start=True):
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, cwd=str(self._cwd or self.prefix))
        if check_start:
            self.wait_ready()
        return self


@pytest.fixture
def procs():
    """Processes started by a test; stopped gracefully (by PID) at teardown."""
    started: list[harness.Switchyard] = []
    yield started
    problems = []
    for p in started:
        problems += p.stop(expect_running=False)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def serving(port, text, path="/"):
    def probe():
        try:
            r = request(port, "GET", path, timeout=2)
        except OSError:
            return False
        return r.status == 200 and r.text == text
    return probe


def test_prefix_resolves_relative_paths(tmp_path, procs):
    prefix = tmp_path / "pfx"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    p = free_port()
    text = fill("pid logs/p.pid;\nerror_log logs/e.log notice;\nevents {}\n@HTTP@\n"
                "    access_log logs/a.log;\n    server {\n        listen 127.0.0.1:@P@;\n"
                "        location / { return 200 \"pfx\"; }\n    }\n}\n", P=p, HTTP=HTTP_OPEN)
    (prefix / "conf").mkdir(parents=True)
    (prefix / "conf" / "main.conf").write_text(text)
    # -c is relative to the prefix, not to the working directory
    argv = [BIN, "-p", f"{prefix}/", "-c", "conf/main.conf", "-g", foreground_g()]
    sy = Proc(prefix, text, argv, cwd=elsewhere)
    procs.append(sy)
    sy.start()
    assert request(p, "GET", "/where").text == "pfx"
    wait_until(lambda: (prefix / "logs" / "p.pid").exists(), 5, "the pid file")
    assert (prefix / "logs" / "p.pid").read_text().strip() == str(sy.pid)
    wait_until(lambda: "/where" in (prefix / "logs" / "a.log").read_text()
               if (prefix / "logs" / "a.log").exists() else False, 5, "the access log line")
    assert (prefix / "logs" / "e.log").exists()
    assert not (elsewhere / "logs").exists()
    assert os.listdir(elsewhere) == []


def test_e_relative_to_prefix(tmp_path):
    prefix = tmp_path / "pfx"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    conf = write_conf(prefix / "conf", "events {}\n@HTTP@\n    no_such_thing 1;\n}\n")
    (prefix / "logs").mkdir()
    r = run(["-p", f"{prefix}/", "-c", "conf/sy.conf", "-e", "logs/startup.log", "-t"],
            cwd=elsewhere)
    assert r.returncode == 1
    text = (prefix / "logs" / "startup.log").read_text()
    assert re.search(emerg_re(r'unknown directive "no_such_thing"', conf, 3), text), text
    assert os.listdir(elsewhere) == []


@pytest.mark.slow  # nginx retries bind() 5 times, 500 ms apart
def test_e_collects_bind_failure(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        conf = write_conf(tmp_path, GOOD, P=port)
        errlog = tmp_path / "startup.log"
        r = run(["-p", f"{tmp_path}/", "-c", conf, "-e", errlog,
                 "-g", foreground_g(f" pid {tmp_path}/sy.pid;")])
    assert r.returncode == 1
    text = errlog.read_text()
    assert re.search(rf"\[emerg\] (?:\d+#\d+: )?bind\(\) to 127\.0\.0\.1:{port} failed "
                     rf"\(98: Address already in use\)", text), text
    assert not (tmp_path / "sy.pid").exists()
    # a sanitizer build exits from start-up failures without leaks too
    assert not any(m in r.err for m in harness.SANITIZER_MARKERS), r.err


def test_pid_file_written_after_sockets_listen_and_removed_at_exit(tmp_path, procs):
    p = free_port()
    sy = harness.Switchyard(tmp_path, fill(GOOD, P=p, HTTP=HTTP_OPEN))
    procs.append(sy)
    assert not sy.pid_path.exists()
    sy.start(check_start=False)

    def pid_written():
        if sy.proc.poll() is not None:
            raise AssertionError(f"exited with {sy.proc.returncode}: {sy.error_log()}")
        try:
            return sy.pid_path.read_text().endswith("\n") and sy.pid_path.read_text()
        except FileNotFoundError:
            return None
    content = wait_until(pid_written, 10, "the pid file", interval=0.001)
    # the moment the pid file exists, the port already accepts
    assert port_open(p)
    assert content == f"{sy.pid}\n"
    sy.signal(signal.SIGQUIT)
    assert sy.wait_exit() == 0
    assert not sy.pid_path.exists()


def start_v(switchyard, text):
    p = free_port()
    sy = switchyard(harness.http_conf(
        f'server {{ listen 127.0.0.1:{p}; location / {{ return 200 "{text}"; }} }}'))
    return sy, p


def signal_cmd(sy, name):
    """`BIN <the instance's own -p -c -e -g> -s NAME`, run to completion."""
    return run([*sy.argv()[1:], "-s", name])


def test_s_reload_makes_new_config_live(switchyard):
    sy, p = start_v(switchyard, "v1")
    assert request(p, "GET", "/").text == "v1"
    mark = sy.log_mark()
    sy.conf_path.write_text(sy.conf_text.replace('"v1"', '"v2"'))
    r = signal_cmd(sy, "reload")
    assert r.returncode == 0, r.err
    sy.wait_log(r"reconfiguring", since=mark)
    wait_until(serving(p, "v2"), 10, "v2 to be served")
    assert sy.running()
    assert "[emerg]" not in sy.error_log()[mark:]


def test_s_reload_refuses_broken_config(switchyard):
    sy, p = start_v(switchyard, "v1")
    broken = sy.conf_text.replace('return 200 "v1";', 'return 200 "v2";\n bogus_reload_directive 1;')
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "bogus_reload" in ln)
    sy.conf_path.write_text(broken)
    msg = emerg_re(r'unknown directive "bogus_reload_directive"', sy.conf_path, line)
    # -s parses the configuration first: a broken one is reported, nothing is signalled
    r = signal_cmd(sy, "reload")
    assert r.returncode == 1
    assert re.search(msg, r.err), r.err
    assert sy.running()
    assert request(p, "GET", "/").text == "v1"


def test_sighup_with_broken_config_keeps_old_one(switchyard):
    sy, p = start_v(switchyard, "v1")
    broken = sy.conf_text.replace('return 200 "v1";', 'return 200 "v2";\n bogus_reload_directive 1;')
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "bogus_reload" in ln)
    mark = sy.log_mark()
    sy.conf_path.write_text(broken)
    sy.signal(signal.SIGHUP)
    sy.wait_log(emerg_re(r'unknown directive "bogus_reload_directive"', sy.conf_path, line),
                since=mark)
    assert sy.running()
    for _ in range(3):
        assert request(p, "GET", "/").text == "v1"
    # and a fixed config still reloads afterwards
    sy.reload(sy.conf_text.replace('"v1"', '"v3"'), probe=serving(p, "v3"))


def test_s_reopen_switches_access_log(switchyard):
    sy, p = start_v(switchyard, "r")
    log = sy.prefix / "logs" / "access.log"
    assert request(p, "GET", "/before").status == 200
    sy.wait_access_log(r'"GET /before ')
    log.rename(sy.prefix / "logs" / "access.log.1")
    r = signal_cmd(sy, "reopen")
    assert r.returncode == 0, r.err
    wait_until(log.exists, 5, "a new access.log")
    # once the reopen reached the process, requests land in the new file
    sent = []

    def landed():
        sent.append(f"/after{len(sent)}")
        assert request(p, "GET", sent[-1]).status == 200
        return sy.access_log()
    wait_until(landed, 5, "a request logged in the new access.log", interval=0.05)
    new = sy.access_log()
    assert "/before" not in new
    assert '"GET /after' in new
    assert '"GET /before ' in (sy.prefix / "logs" / "access.log.1").read_text()
    assert sy.running()


def test_s_quit_stops_gracefully(switchyard):
    sy, p = start_v(switchyard, "q")
    r = signal_cmd(sy, "quit")
    assert r.returncode == 0, r.err
    assert sy.wait_exit() == 0
    assert not sy.pid_path.exists()
    assert not port_open(p)
    assert sy.stop(expect_running=False) == []


def test_s_stop_stops(switchyard):
    sy, p = start_v(switchyard, "s")
    r = signal_cmd(sy, "stop")
    assert r.returncode == 0, r.err
    assert sy.wait_exit() == 0
    assert not sy.pid_path.exists()
    assert not port_open(p)
    assert sy.stop(expect_running=False) == []


def test_s_without_running_instance_fails(tmp_path):
    conf = write_conf(tmp_path, GOOD, P=free_port())
    pid = tmp_path / "none.pid"
    r = run(["-p", f"{tmp_path}/", "-c", conf, "-e", tmp_path / "e.log",
             "-g", f"pid {pid};", "-s", "reload"])
    assert r.returncode == 1
    assert re.search(rf'open\(\) "{re.escape(str(pid))}" failed \(2: No such file or directory\)',
                     r.err), r.err


@pytest.mark.slow
def test_sigquit_lets_request_in_flight_finish(switchyard, origin):
    p = free_port()
    sy = switchyard(harness.http_conf(
        f"server {{ listen 127.0.0.1:{p}; location / {{ proxy_pass http://{origin.addr}; }} }}"))
    with HttpConn(p) as c:
        c.send(harness.build_request("GET", "/slow/800"))
        origin.wait_requests(1)              # the request is at the origin now
        sy.signal(signal.SIGQUIT)
        r = c.read_response()
    assert r.status == 200
    assert r.json()["target"] == "/slow/800"
    assert sy.wait_exit() == 0
    assert sy.stop(expect_running=False) == []
