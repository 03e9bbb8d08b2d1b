"""HTTP/2 configuration (issue 13): nginx's ngx_http_v2_module directives and
the ALPN choice they make.

- `-t` on every directive: accepted values, nginx's errors (file:line), the
  warnings of the obsolete ones and of `listen ... http2`, contexts.
- ALPN, with `openssl s_client -alpn`: `h2` is chosen when `listen ... http2`
  or the connection's server has `http2 on` (the server SNI names, else the
  address's default server); otherwise http/1.1, and a client offering only
  h2 gets the no_application_protocol alert. Only the handshake is looked at:
  no request is sent over an h2 connection here.

Expectations are nginx's. Debian's nginx 1.22 differs from the 1.25.1 syntax
Switchyard follows in three ways, branched on IS_NGINX: it has no `http2`
directive, no deprecation warning for `listen ... http2`, and it still runs
server push (`http2_push*` are real directives there, not obsolete ones).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import BIN, IS_NGINX, fill, free_port, http_conf, run_switchyard_t
from tls_pki import Pki

pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not built")

NGINX_TLS = "ssl_protocols TLSv1.2 TLSv1.3;\n" if IS_NGINX else ""
NO_HTTP2_DIRECTIVE = "nginx 1.22 has no `http2` directive (nginx 1.25.1)"


def run_t(tmp_path: Path, text: str):
    """-t on `text` (@D@ = the prefix); (exit code, output, conf path)."""
    prefix = tmp_path / "t"
    rc, out = run_switchyard_t(fill(text, D=prefix), prefix=prefix)
    return rc, out, prefix / "sy-t.conf"


def line_re(level: str, message: str, conf: Path, line: int) -> str:
    return (rf"(?m)\[{level}\] (?:\d+#\d+: )?{re.escape(message)} "
            rf"in {re.escape(str(conf))}:{line}$")


def in_http(*lines: str) -> str:
    """events {} http { LINES } — LINES start at line 3."""
    return "events {}\nhttp {\n" + "".join(f"    {x}\n" for x in lines) + "}\n"


def warnings(out: str) -> list[str]:
    return re.findall(r"\[warn\] (?:\d+#\d+: )?(.*)$", out, re.M)


# --------------------------------------------------------------------------
# -t: accepted


def test_every_current_directive_is_accepted(tmp_path):
    text = in_http(
        "http2_recv_buffer_size 128k;",
        "http2_max_concurrent_streams 64;",
        "http2_body_preread_size 32k;",
        "http2_chunk_size 16k;",
        "http2_pool_size 4k;",
        "http2_streams_index_size 64;",
        "server {",
        "    listen 127.0.0.1:1;",
        "    http2_max_concurrent_streams 8;",
        "    http2_body_preread_size 0;",
        "    http2_chunk_size 32m;",
        "    http2_pool_size 8k;",
        "    http2_streams_index_size 1;",
        "    location / { http2_chunk_size 1; }",
        "}",
    )
    rc, out, _ = run_t(tmp_path, text)
    assert rc == 0, out
    assert warnings(out) == [], out


def test_http2_on_off(tmp_path):
    text = in_http("http2 on;",
                   "server { listen 127.0.0.1:1; http2 off; }",
                   "server { listen 127.0.0.1:2; }")
    rc, out, conf = run_t(tmp_path, text)
    if IS_NGINX:
        assert rc == 1 and re.search(line_re("emerg", 'unknown directive "http2"', conf, 3),
                                     out), out
        return
    assert rc == 0, out
    assert warnings(out) == [], out


def test_listen_http2_is_deprecated(tmp_path):
    text = in_http("server {",
                   "    listen 127.0.0.1:1 http2;",
                   "    listen 127.0.0.1:2;",
                   "}")
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 0, out
    if IS_NGINX:
        assert warnings(out) == [], out  # 1.22: the only syntax there is
        return
    assert re.search(line_re("warn", 'the "listen ... http2" directive is deprecated, use the '
                             '"http2" directive instead', conf, 4), out), out
    assert len(warnings(out)) == 1, out


OBSOLETE_REPLACED = [
    ("http2_idle_timeout 3m;", "keepalive_timeout"),
    ("http2_max_requests 100;", "keepalive_requests"),
    ("http2_recv_timeout 30s;", "client_header_timeout"),
    ("http2_max_field_size 4k;", "large_client_header_buffers"),
    ("http2_max_header_size 16k;", "large_client_header_buffers"),
]


@pytest.mark.parametrize("directive,instead", OBSOLETE_REPLACED,
                         ids=[d.split()[0] for d, _ in OBSOLETE_REPLACED])
@pytest.mark.parametrize("where", ["http", "server"])
def test_obsolete_with_replacement_warns(tmp_path, directive, instead, where):
    if where == "http":
        text, line = in_http(directive), 3
    else:
        text, line = in_http("server {", f"    {directive}", "}"), 4
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 0, out
    name = directive.split()[0]
    assert re.search(line_re("warn", f'the "{name}" directive is obsolete, use the "{instead}" '
                             'directive instead', conf, line), out), out


def test_obsolete_argument_is_not_checked(tmp_path):
    # nginx's handler only warns: any argument, and twice in one block
    text = in_http("http2_idle_timeout bogus;", "http2_idle_timeout 1m;")
    rc, out, _ = run_t(tmp_path, text)
    assert rc == 0, out
    assert len(warnings(out)) == 2, out


PUSH = [("http2_push /style.css;", "location"), ("http2_push_preload on;", "location"),
        ("http2_max_concurrent_pushes 5;", "server")]


@pytest.mark.parametrize("directive,where", PUSH, ids=[d.split()[0] for d, _ in PUSH])
def test_push_is_obsolete_and_ignored(tmp_path, directive, where):
    if where == "location":
        text, line = in_http("server {", f"    location / {{ {directive} }}", "}"), 4
    else:
        text, line = in_http("server {", f"    {directive}", "}"), 4
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 0, out
    if IS_NGINX:
        assert warnings(out) == [], out  # 1.22 still pushes
        return
    name = directive.split()[0]
    assert re.search(line_re("warn", f'the "{name}" directive is obsolete, ignored', conf, line),
                     out), out


# --------------------------------------------------------------------------
# -t: errors


ERRORS = [
    ("http2_pool_size 100;", "the pool size must be no less than 112"),
    ("http2_pool_size 120;", "the pool size must be a multiple of 16"),
    ("http2_pool_size 1x;", '"http2_pool_size" directive invalid value'),
    ("http2_streams_index_size 3;", '"http2_streams_index_size" directive must be a power of two'),
    ("http2_streams_index_size 0;", '"http2_streams_index_size" directive must be a power of two'),
    ("http2_streams_index_size x;", '"http2_streams_index_size" directive invalid number'),
    ("http2_body_preread_size 2048m;", "the maximum body preread buffer size is 2147483647"),
    ("http2_body_preread_size x;", '"http2_body_preread_size" directive invalid value'),
    ("http2_chunk_size 0;", "the http2 chunk size cannot be zero"),
    ("http2_recv_buffer_size 16;", '"http2_recv_buffer_size" directive value is too small'),
    ("http2_max_concurrent_streams -1;", '"http2_max_concurrent_streams" directive invalid number'),
    ("http2_max_concurrent_streams 1 2;",
     'invalid number of arguments in "http2_max_concurrent_streams" directive'),
    ("http2_chunk_size 8k; http2_chunk_size 8k;", '"http2_chunk_size" directive is duplicate'),
    ("http2_max_concurrent_streams 1; http2_max_concurrent_streams 2;",
     '"http2_max_concurrent_streams" directive is duplicate'),
    ("http2_pool_size 4k; http2_pool_size 4k;", '"http2_pool_size" directive is duplicate'),
    ("http2_push_preload;", 'invalid number of arguments in "http2_push_preload" directive'),
    ("http2_idle_timeout;", 'invalid number of arguments in "http2_idle_timeout" directive'),
]


@pytest.mark.parametrize("directive,message", ERRORS, ids=[m for _, m in ERRORS])
def test_errors(tmp_path, directive, message):
    rc, out, conf = run_t(tmp_path, in_http(directive))
    assert rc == 1, out
    assert re.search(line_re("emerg", message, conf, 3), out), out


def test_http2_flag_values(tmp_path):
    if IS_NGINX:
        pytest.skip(NO_HTTP2_DIRECTIVE)
    rc, out, conf = run_t(tmp_path, in_http("http2 yes;"))
    assert rc == 1, out
    assert re.search(line_re("emerg", 'invalid value "yes" in "http2" directive, it must be '
                             '"on" or "off"', conf, 3), out), out
    rc, out, conf = run_t(tmp_path, in_http("http2 on;", "http2 off;"))
    assert rc == 1 and re.search(line_re("emerg", '"http2" directive is duplicate', conf, 4),
                                 out), out


NOT_ALLOWED = [
    ("location", "http2_max_concurrent_streams 8;"),
    ("location", "http2_body_preread_size 8k;"),
    ("location", "http2_pool_size 4k;"),
    ("location", "http2_idle_timeout 1m;"),
    ("location", "http2_max_concurrent_pushes 1;"),
    ("server", "http2_recv_buffer_size 64k;"),
    ("main", "http2_chunk_size 8k;"),
]


@pytest.mark.parametrize("where,directive", NOT_ALLOWED,
                         ids=[f"{d.split()[0]}-in-{w}" for w, d in NOT_ALLOWED])
def test_contexts(tmp_path, where, directive):
    if where == "main":
        text, line = f"events {{}}\n{directive}\n", 2
    elif where == "server":
        text, line = in_http("server {", f"    {directive}", "}"), 4
    else:
        text, line = in_http("server {", f"    location / {{ {directive} }}", "}"), 4
    rc, out, conf = run_t(tmp_path, text)
    assert rc == 1, out
    name = directive.split()[0]
    assert re.search(line_re("emerg", f'"{name}" directive is not allowed here', conf, line),
                     out), out


def test_http2_not_allowed_in_location(tmp_path):
    if IS_NGINX:
        pytest.skip(NO_HTTP2_DIRECTIVE)
    rc, out, conf = run_t(tmp_path, in_http("server {", "    location / { http2 on; }", "}"))
    assert rc == 1, out
    assert re.search(line_re("emerg", '"http2" directive is not allowed here', conf, 4), out), out


def test_version_lists_http_v2_module():
    r = subprocess.run([str(BIN), "-V"], capture_output=True, timeout=10)
    text = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0 and "--with-http_v2_module" in text, text


# --------------------------------------------------------------------------
# ALPN


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_server(pki, port: int, name: str, *, listen_extra: str = "", extra: str = "",
               default: bool = False) -> str:
    c, k = pki.cert(name)
    ds = " default_server" if default else ""
    return (f"server {{\n    listen 127.0.0.1:{port} ssl{ds}{listen_extra};\n"
            f"    server_name {name};\n    ssl_certificate {c};\n    ssl_certificate_key {k};\n"
            f"    {extra}\n    location / {{ return 200 \"$server_name\\n\"; }}\n}}\n")


def conf(*servers: str) -> str:
    return http_conf("\n".join(servers), extra_http=NGINX_TLS)


def alpn(pki, port: int, offer: str, name: str | None) -> tuple[int, str]:
    """The handshake only (`openssl s_client -alpn OFFER`, stdin closed, so
    no request follows); (exit code, output)."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca),
           "-alpn", offer]
    cmd += ["-servername", name] if name else ["-noservername"]
    r = subprocess.run(cmd, input=b"", capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def chosen(out: str) -> str | None:
    m = re.search(r"(?m)^ALPN protocol: (\S+)$", out)
    return m.group(1) if m else None


def test_alpn_listen_http2_prefers_h2(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(pki, p, "a.test", listen_extra=" http2")))
    rc, out = alpn(pki, p, "h2,http/1.1", "a.test")
    assert rc == 0 and chosen(out) == "h2", out
    # the server's order wins: h2 even when the client lists it last
    rc, out = alpn(pki, p, "http/1.1,h2", "a.test")
    assert rc == 0 and chosen(out) == "h2", out
    rc, out = alpn(pki, p, "h2", "a.test")
    assert rc == 0 and chosen(out) == "h2", out
    rc, out = alpn(pki, p, "http/1.1", "a.test")
    assert rc == 0 and chosen(out) == "http/1.1", out


def test_alpn_listen_http2_applies_to_every_server(switchyard, pki):
    # like ssl, the flag belongs to the address: one listen line is enough
    p = free_port()
    switchyard(conf(tls_server(pki, p, "a.test", listen_extra=" http2"),
                    tls_server(pki, p, "b.test")))
    for name in ("a.test", "b.test", None):
        rc, out = alpn(pki, p, "h2,http/1.1", name)
        assert rc == 0 and chosen(out) == "h2", (name, out)


def test_alpn_without_http2_is_http11(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(pki, p, "a.test")))
    rc, out = alpn(pki, p, "h2,http/1.1", "a.test")
    assert rc == 0 and chosen(out) == "http/1.1", out
    rc, out = alpn(pki, p, "h2", "a.test")
    assert rc != 0 and "no application protocol" in out, out


def test_alpn_http2_on_follows_sni(switchyard, pki):
    if IS_NGINX:
        pytest.skip(NO_HTTP2_DIRECTIVE)
    p = free_port()
    switchyard(conf(tls_server(pki, p, "a.test", default=True),
                    tls_server(pki, p, "b.test", extra="http2 on;")))
    rc, out = alpn(pki, p, "h2,http/1.1", "b.test")
    assert rc == 0 and chosen(out) == "h2", out
    rc, out = alpn(pki, p, "h2,http/1.1", "a.test")
    assert rc == 0 and chosen(out) == "http/1.1", out
    # no SNI: the default server decides
    rc, out = alpn(pki, p, "h2,http/1.1", None)
    assert rc == 0 and chosen(out) == "http/1.1", out
    rc, out = alpn(pki, p, "h2", "a.test")
    assert rc != 0 and "no application protocol" in out, out


def test_alpn_http2_on_default_server_without_sni(switchyard, pki):
    if IS_NGINX:
        pytest.skip(NO_HTTP2_DIRECTIVE)
    p = free_port()
    switchyard(conf(tls_server(pki, p, "a.test", default=True, extra="http2 on;"),
                    tls_server(pki, p, "b.test")))
    rc, out = alpn(pki, p, "h2,http/1.1", None)
    assert rc == 0 and chosen(out) == "h2", out
    rc, out = alpn(pki, p, "h2,http/1.1", "b.test")
    assert rc == 0 and chosen(out) == "http/1.1", out
    # an unknown name gets the default server, and with it h2
    rc, out = alpn(pki, p, "h2,http/1.1", "zzz.test")
    assert rc == 0 and chosen(out) == "h2", out


def test_alpn_http2_on_inherited_from_http(switchyard, pki):
    if IS_NGINX:
        pytest.skip(NO_HTTP2_DIRECTIVE)
    p = free_port()
    switchyard(http_conf("\n".join([tls_server(pki, p, "a.test"),
                                    tls_server(pki, p, "b.test", extra="http2 off;")]),
                         extra_http="http2 on;\n"))
    rc, out = alpn(pki, p, "h2,http/1.1", "a.test")
    assert rc == 0 and chosen(out) == "h2", out
    rc, out = alpn(pki, p, "h2,http/1.1", "b.test")
    assert rc == 0 and chosen(out) == "http/1.1", out
