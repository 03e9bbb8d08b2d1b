"""allow / deny (ngx_http_access_module) and satisfy, in nginx's access
phase: after rewrite (a `return` answers before any rule is checked) and
after realip (the rules see the real client), before the content handler.

- 403 for a denied client, with `access forbidden by rule` in the error log;
- rules are checked in order, the first match decides; addresses, CIDRs and
  `all`; IPv4 and IPv6 rules are separate (an IPv4 client is not checked
  against an IPv6 rule);
- a level with rules replaces the inherited ones;
- a denied request never reaches the upstream, and error_page 403 applies.

The expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import socket

from harness import free_port, http_conf, read_until_close, request


def get_from(port: int, path: str, src: str = "127.0.0.1", headers=()) -> bytes:
    """One GET from address `src` (any 127/8 address); the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(src, 0)) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n"
                  .encode())
        return read_until_close(s, 10)


def status_from(port: int, path: str, src: str = "127.0.0.1", headers=()) -> int:
    data = get_from(port, path, src, headers)
    return int(data.split(b" ", 2)[1])


def site(tmp_path, files=("index.html", "a/index.html", "b/index.html", "c/index.html")):
    for f in files:
        p = tmp_path / "html" / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"file {f}\n")


def server(port: int, body: str, extra: str = "") -> str:
    return http_conf(f"server {{\n listen 127.0.0.1:{port};\n {extra}\n{body}\n}}")


def test_deny_is_403_with_the_log_line_and_allow_passes(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    sy = switchyard(server(port, """
        location /a/ { deny all; }
        location /b/ { allow 127.0.0.1; deny all; }
    """))
    r = request(port, "GET", "/a/")
    assert r.status == 403
    sy.wait_log(r'\[error\] .*access forbidden by rule, client: 127\.0\.0\.1, server: , '
                r'request: "GET /a/ HTTP/1\.1", host: "localhost"')
    assert request(port, "GET", "/b/").status == 200
    assert request(port, "GET", "/b/").body == b"file b/index.html\n"
    sy.wait_access_log(r'"GET /a/ HTTP/1\.1" 403 ')


def test_rules_in_order_first_match_decides(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    switchyard(server(port, """
        location / {
            allow 127.0.0.2;
            deny 127.0.0.0/24;
            allow 127.0.0.0/8;
            deny all;
        }
    """))
    assert status_from(port, "/", "127.0.0.2") == 200
    assert status_from(port, "/", "127.0.0.1") == 403
    assert status_from(port, "/", "127.0.0.3") == 403
    assert status_from(port, "/", "127.0.1.1") == 200
    assert status_from(port, "/", "127.1.0.1") == 200


def test_ipv6_rules_do_not_apply_to_ipv4_clients(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    switchyard(server(port, """
        location /a/ { deny ::/0; }
        location /b/ { deny ::1; allow 127.0.0.1; deny all; }
    """))
    assert status_from(port, "/a/") == 200
    assert status_from(port, "/b/") == 200
    assert status_from(port, "/b/", "127.0.0.9") == 403


def test_ipv6_client(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    switchyard(http_conf(f"""server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        location /a/ {{ deny ::1; }}
        location /b/ {{ allow ::1; deny all; }}
        location /c/ {{ deny 127.0.0.1; }}
    }}"""))

    def get6(path):
        with socket.create_connection(("::1", port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return int(read_until_close(s, 10).split(b" ", 2)[1])

    assert get6("/a/") == 403
    assert get6("/b/") == 200
    assert get6("/c/") == 200


def test_rules_are_evaluated_after_realip(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    switchyard(server(port, """
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;
        location / { deny 10.0.0.1; allow all; }
    """))
    assert status_from(port, "/", headers=[("X-Real-IP", "10.0.0.1")]) == 403
    assert status_from(port, "/", headers=[("X-Real-IP", "10.0.0.2")]) == 200
    # not a trusted peer: its X-Real-IP is not believed
    assert status_from(port, "/", "127.0.0.2", headers=[("X-Real-IP", "10.0.0.1")]) == 200


def test_a_level_with_rules_replaces_the_inherited_ones(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    switchyard(server(port, """
        location / { }
        location /a/ { allow 127.0.0.1; }
        location /b/ {
            location /b/index.html { deny 127.0.0.1; }
        }
    """, extra="deny all;"))
    assert status_from(port, "/") == 403
    # allow 127.0.0.1 replaces "deny all": 127.0.0.2 matches nothing and passes
    assert status_from(port, "/a/") == 200
    assert status_from(port, "/a/", "127.0.0.2") == 200
    # the nested location's rule replaces its parent's "deny all"
    assert status_from(port, "/b/index.html", "127.0.0.2") == 200
    assert status_from(port, "/b/index.html") == 403


def test_return_runs_before_the_access_phase(switchyard, tmp_path):
    """nginx's phases: `return` is the rewrite phase, before access."""
    site(tmp_path)
    port = free_port()
    switchyard(server(port, """
        location /r { deny all; return 200 "returned\\n"; }
        location /a/ { deny all; }
    """))
    r = request(port, "GET", "/r")
    assert r.status == 200 and r.body == b"returned\n"
    assert request(port, "GET", "/a/").status == 403


def test_denied_request_never_reaches_the_upstream(switchyard, origin, tmp_path):
    port = free_port()
    switchyard(server(port, f"""
        location / {{ deny all; proxy_pass http://{origin.addr}; }}
        location /ok/ {{ allow all; proxy_pass http://{origin.addr}; }}
    """))
    assert request(port, "GET", "/x").status == 403
    assert request(port, "POST", "/x", body=b"a" * 1000).status == 403
    assert request(port, "GET", "/ok/y").status == 200
    assert [r["target"] for r in origin.requests] == ["/ok/y"]


def test_error_page_403(switchyard, tmp_path):
    site(tmp_path, files=("index.html", "a/index.html", "denied.html"))
    port = free_port()
    switchyard(server(port, """
        error_page 403 /denied.html;
        location = /denied.html { allow all; }
        location /a/ { deny all; }
    """))
    r = request(port, "GET", "/a/")
    assert r.status == 403
    assert r.body == b"file denied.html\n"


def test_satisfy_any_allow_or_deny_alone(switchyard, tmp_path):
    """With only allow/deny, `satisfy any` still refuses a denied client (403,
    logged at the end of the phase)."""
    site(tmp_path)
    port = free_port()
    sy = switchyard(server(port, """
        location /a/ { satisfy any; deny all; }
        location /b/ { satisfy any; allow 127.0.0.1; deny all; }
        location /c/ { deny all; }
    """))
    assert status_from(port, "/a/") == 403
    assert status_from(port, "/b/") == 200
    assert status_from(port, "/c/") == 403
    sy.wait_log(r'access forbidden by rule, .*"GET /c/ HTTP/1\.1"')
    sy.wait_log(r'access forbidden by rule, .*"GET /a/ HTTP/1\.1"')
