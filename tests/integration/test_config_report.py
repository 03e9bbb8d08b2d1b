"""Configurations people wrote, checked whole (issue 14, items 5-7).

- `-t` lists every problem of a configuration, each with file:line, then
  "test failed" (exit 1, as nginx); warnings come first.
- `map` may define a variable another `map` defined: the later one wins,
  everywhere, as in nginx (a site file per app redefining
  $connection_upgrade is common); `set` may assign $args.
- `ssl on;` (nginx 1.22's deprecated switch) works with nginx's warning; the
  address of a server with it speaks TLS; without a certificate it is
  nginx's error.
- Directives of the upstream modules Switchyard lacks (FastCGI, uwsgi, SCGI,
  gRPC, memcached): tuning directives accepted, one warning per module; the
  handler (`fastcgi_pass`, ...) an error naming the module and what to do.

Expectations are nginx's where nginx has the behaviour (run with
SWITCHYARD_BIN=/usr/sbin/nginx); the Switchyard-only ones are marked.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from harness import BIN, IS_NGINX, PRODUCT, fill, free_port, http_conf, request, run_switchyard_t
from tls_pki import Pki

pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not built")


def run_t(tmp_path: Path, text: str):
    prefix = tmp_path / "t"
    rc, out = run_switchyard_t(fill(text, D=prefix), prefix=prefix)
    return rc, out, prefix / "sy-t.conf"


def level_lines(out: str, level: str) -> list[str]:
    return [ln for ln in out.splitlines() if f"[{level}]" in ln]


# --------------------------------------------------------------------------
# every problem at once


BROKEN = """events {}
http {
    gzip_typo on;
    server {
        listen 127.0.0.1:9;
        location / {
            frobnicate;
            proxy_pass http://127.0.0.1:9;
            proxy_read_timeout forever;
        }
        location /b { bogus 1; }
        keepalive_timeout 5s;
        not_a_directive;
    }
}
"""


@pytest.mark.switchyard_only
def test_t_lists_every_problem_with_file_and_line(tmp_path):
    rc, out, conf = run_t(tmp_path, BROKEN)
    assert rc == 1, out
    emerg = level_lines(out, "emerg")
    expected = [
        ('unknown directive "gzip_typo"', 3),
        ('unknown directive "frobnicate"', 7),
        ('"proxy_read_timeout" directive invalid value', 9),
        ('unknown directive "bogus"', 11),
        ('unknown directive "not_a_directive"', 13),
    ]
    assert len(emerg) == len(expected), out
    for line, (msg, n) in zip(emerg, expected):
        assert line == f"{PRODUCT}: [emerg] {msg} in {conf}:{n}", out
    assert out.rstrip("\n").splitlines()[-1] == (
        f"{PRODUCT}: configuration file {conf} test failed"), out


def test_t_first_problem_is_nginx_first(tmp_path):
    """nginx reports only the first problem; it is Switchyard's first line."""
    rc, out, conf = run_t(tmp_path, BROKEN)
    assert rc == 1, out
    first = level_lines(out, "emerg")[0]
    assert re.search(rf'unknown directive "gzip_typo" in {re.escape(str(conf))}:3$', first), out


@pytest.mark.switchyard_only
def test_problem_list_is_bounded(tmp_path):
    body = "".join(f"    nope{i};\n" for i in range(300))
    rc, out, _ = run_t(tmp_path, f"events {{}}\nhttp {{\n{body}}}\n")
    assert rc == 1
    assert 20 <= len(level_lines(out, "emerg")) <= 100, out


@pytest.mark.switchyard_only
def test_reload_logs_every_problem_and_keeps_running(switchyard, tmp_path):
    port = free_port()
    good = http_conf(f'server {{ listen 127.0.0.1:{port}; location / {{ return 200 "v1"; }} }}')
    sy = switchyard(good)
    bad = good.replace('return 200 "v1";', 'return 200 "v2"; nope1; nope2;')
    mark = sy.log_mark()
    sy.conf_path.write_text(bad)
    sy.proc.send_signal(signal.SIGHUP)
    sy.wait_log(r"reload failed, still running with the previous configuration", since=mark)
    log = sy.error_log()[mark:]
    assert re.search(r'\[emerg\] \d+#\d+: unknown directive "nope1" in ', log), log
    assert re.search(r'\[emerg\] \d+#\d+: unknown directive "nope2" in ', log), log
    assert request(port, "GET", "/").body == b"v1"


# --------------------------------------------------------------------------
# map redefinition, set $args


def test_later_map_of_a_variable_wins(switchyard):
    port = free_port()
    sy = switchyard(http_conf(
        f'server {{ listen 127.0.0.1:{port}; location / {{ return 200 "$v $connection_upgrade"; }} }}',
        extra_http=("map $http_x $v { default first; }\n"
                    "map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
                    "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }\n"
                    "map $http_x $v { default second; b third; }\n")))
    assert sy is not None
    assert request(port, "GET", "/").body == b"second "
    assert request(port, "GET", "/", headers=[("X", "b"), ("Upgrade", "ws")]).body == \
        b"third upgrade"


def test_map_cannot_redefine_a_builtin(tmp_path):
    rc, out, conf = run_t(tmp_path, "events {}\nhttp {\n    map $http_x $uri { default a; }\n}\n")
    assert rc == 1, out
    assert re.search(rf'the duplicate "uri" variable in {re.escape(str(conf))}:3$', out, re.M), out


def test_set_args_changes_the_query(switchyard, origin):
    port = free_port()
    switchyard(http_conf(
        f"server {{ listen 127.0.0.1:{port};\n"
        f"  location / {{ set $args \"a=1&$args\"; proxy_pass http://127.0.0.1:{origin.port}; }} }}"))
    r = request(port, "GET", "/p?b=2")
    assert r.status == 200
    assert origin.last_request()["target"] == "/p?a=1&b=2"


# --------------------------------------------------------------------------
# ssl on


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def test_ssl_on_serves_tls_with_nginx_warning(switchyard, pki, tmp_path):
    port = free_port()
    crt, key = pki.certs[("a.test", "rsa")]
    conf = http_conf(
        f"server {{\n    listen 127.0.0.1:{port};\n    server_name a.test;\n    ssl on;\n"
        f"    ssl_certificate {crt};\n    ssl_certificate_key {key};\n"
        f'    location / {{ return 200 "tls=$https"; }}\n}}\n',
        extra_http="ssl_protocols TLSv1.2 TLSv1.3;\n")
    rc, out, tconf = run_t(tmp_path, conf)
    assert rc == 0, out
    line_of_ssl = conf.splitlines().index("    ssl on;") + 1
    assert re.search(r'\[warn\] (?:\d+#\d+: )?the "ssl" directive is deprecated, use the '
                     r'"listen \.\.\. ssl" directive instead in ' + re.escape(str(tconf))
                     + f":{line_of_ssl}$",
                     out, re.M), out
    switchyard(conf)
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(pki.ca),
                        "--resolve", f"a.test:{port}:127.0.0.1", f"https://a.test:{port}/"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"tls=on"


def test_ssl_on_needs_a_certificate(tmp_path):
    rc, out, conf = run_t(tmp_path, "events {}\nhttp {\n    server {\n        listen 127.0.0.1:9;\n"
                                    "        ssl on;\n    }\n}\n")
    assert rc == 1, out
    assert re.search(r'no "ssl_certificate" is defined for the "ssl" directive in '
                     + re.escape(str(conf)) + ":5$", out, re.M), out


# --------------------------------------------------------------------------
# modules Switchyard lacks


@pytest.mark.switchyard_only
def test_tuning_directives_of_absent_modules_are_accepted_once_noted(tmp_path):
    params = Path("/etc/nginx/fastcgi_params")
    include = f"include {params};" if params.exists() else "fastcgi_param A b;"
    rc, out, conf = run_t(tmp_path, f"""events {{}}
http {{
    fastcgi_buffers 8 16k;
    fastcgi_read_timeout 300;
    uwsgi_read_timeout 30s;
    grpc_read_timeout 1h;
    server {{
        listen 127.0.0.1:9;
        location ~ \\.php$ {{ {include} }}
        location / {{ scgi_buffering off; memcached_buffer_size 8k; }}
    }}
}}
""")
    assert rc == 0, out
    warns = level_lines(out, "warn")
    assert len(warns) == 5, out
    assert re.search(r'\[warn\] "fastcgi_buffers" and \d+ more directives of '
                     r'ngx_http_fastcgi_module have no effect: the module is not built in in '
                     + re.escape(str(conf)) + ":3$", out, re.M), out
    assert re.search(r'\[warn\] "uwsgi_read_timeout" has no effect: ngx_http_uwsgi_module is not '
                     r'built in in ' + re.escape(str(conf)) + ":5$", out, re.M), out


@pytest.mark.switchyard_only
@pytest.mark.parametrize("handler,module,advice", [
    ("fastcgi_pass unix:/run/php/php-fpm.sock;", "ngx_http_fastcgi_module", "not FastCGI"),
    ("uwsgi_pass 127.0.0.1:3031;", "ngx_http_uwsgi_module", "--http-socket"),
    ("scgi_pass 127.0.0.1:4000;", "ngx_http_scgi_module", "not SCGI"),
    ("grpc_pass grpc://127.0.0.1:50051;", "ngx_http_grpc_module", "HTTP/2"),
    ("memcached_pass 127.0.0.1:11211;", "ngx_http_memcached_module", "memcached"),
])
def test_handler_of_an_absent_module_says_what_to_do(tmp_path, handler, module, advice):
    rc, out, conf = run_t(tmp_path, "events {}\nhttp {\n    server {\n        location / {\n"
                                    f"            {handler}\n        }}\n    }}\n}}\n")
    assert rc == 1, out
    name = handler.split()[0]
    m = re.search(rf'\[emerg\] "{name}" is not supported \({module} is not built in\): (.*) in '
                  + re.escape(str(conf)) + ":5$", out, re.M)
    assert m, out
    assert advice in m.group(1), out
    assert "proxy_pass" in m.group(1) or name == "grpc_pass", out


@pytest.mark.switchyard_only
def test_absent_module_directive_outside_http_is_misplaced(tmp_path):
    rc, out, conf = run_t(tmp_path, "fastcgi_buffers 8 16k;\nevents {}\n")
    assert rc == 1, out
    assert re.search(r'"fastcgi_buffers" directive is not allowed here in '
                     + re.escape(str(conf)) + ":1$", out, re.M), out


# --------------------------------------------------------------------------
# HTTP/3 directives (Nextcloud AIO, nginx >= 1.25 configurations)


@pytest.mark.switchyard_only
def test_http3_configuration_runs_on_tcp(switchyard, tmp_path):
    port = free_port()
    text = http_conf(
        f"server {{\n    listen 127.0.0.1:{port};\n    listen 127.0.0.1:{port} quic reuseport;\n"
        f"    http3 on;\n    http3_stream_buffer_size 512k;\n    quic_retry on;\n"
        f'    add_header Alt-Svc \'h3=":{port}"; ma=86400\';\n'
        f'    location / {{ return 200 "over $server_protocol"; }}\n}}\n')
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 0, out
    line = text.splitlines().index("    http3 on;") + 1
    assert re.search(r'\[warn\] the "listen \.\.\. quic" directive is ignored: HTTP/3 \(QUIC\) is '
                     r'not built in, clients use HTTP/2 or HTTP/1\.1 in ', out), out
    assert re.search(r'\[warn\] "http3" and 2 more directives of ngx_http_v3_module have no '
                     r'effect: HTTP/3 \(QUIC\) is not built in: clients use HTTP/2 or HTTP/1\.1 '
                     r'in ' + re.escape(str(conf)) + rf":{line}$", out, re.M), out
    switchyard(text)
    r = request(port, "GET", "/")
    assert r.status == 200 and r.body == b"over HTTP/1.1"
