"""limit_except METHOD ... { ... } (ngx_http_core_module): a request whose
method is not listed gets the block's access rules (allow/deny, auth_basic);
a listed method gets the location's own. Allowing GET allows HEAD; a method
nginx's list does not know (FOO) is never "listed".

The expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import base64
import socket

from harness import free_port, http_conf, read_until_close, request, wait_until


def server(port: int, body: str) -> str:
    return http_conf(f"server {{\n listen 127.0.0.1:{port};\n{body}\n}}")


def status(port: int, method: str, path: str = "/", src: str = "127.0.0.1", headers=()) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(src, 0)) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  f"Content-Length: 0\r\n{extra}\r\n".encode())
        return int(read_until_close(s, 10).split(b" ", 2)[1])


def test_methods_outside_the_list_get_the_block_rules(switchyard, origin):
    port = free_port()
    sy = switchyard(server(port, f"""
        location / {{
            proxy_pass http://{origin.addr};
            limit_except GET {{ deny all; }}
        }}
    """))
    assert status(port, "GET") == 200
    assert status(port, "HEAD") == 200  # GET implies HEAD
    for m in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"):
        assert status(port, m) == 403, m
    sy.wait_log(r'access forbidden by rule, client: 127\.0\.0\.1, .*request: "POST / HTTP/1\.1"')
    assert sorted({r["method"] for r in origin.requests}) == ["GET", "HEAD"]


def test_head_only_does_not_allow_get(switchyard, origin):
    port = free_port()
    switchyard(server(port, f"""
        location / {{
            proxy_pass http://{origin.addr};
            limit_except HEAD POST {{ deny all; }}
        }}
    """))
    assert status(port, "HEAD") == 200
    assert status(port, "POST") == 200
    assert status(port, "GET") == 403


def test_block_rules_replace_the_location_rules(switchyard, origin):
    port = free_port()
    switchyard(server(port, f"""
        location / {{
            proxy_pass http://{origin.addr};
            allow 127.0.0.1;
            deny all;
            limit_except GET {{ allow 127.0.0.2; deny all; }}
        }}
    """))
    assert status(port, "GET", src="127.0.0.1") == 200
    assert status(port, "GET", src="127.0.0.2") == 403
    assert status(port, "POST", src="127.0.0.1") == 403
    assert status(port, "POST", src="127.0.0.2") == 200


def test_auth_basic_inside_the_block(switchyard, origin, tmp_path):
    (tmp_path / "htpasswd").write_text("writer:{PLAIN}pw\n")
    port = free_port()
    switchyard(server(port, f"""
        location / {{
            proxy_pass http://{origin.addr};
            limit_except GET {{
                auth_basic "writers";
                auth_basic_user_file htpasswd;
            }}
        }}
    """))
    auth = ("Authorization", "Basic " + base64.b64encode(b"writer:pw").decode())
    assert status(port, "GET") == 200
    r = request(port, "POST", "/", body=b"data")
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="writers"'
    assert request(port, "POST", "/", headers=[auth], body=b"data").status == 200
    assert origin.last_request()["method"] == "POST"
    assert origin.last_request()["body_len"] == 4


def test_inherits_from_the_location_and_is_not_inherited(switchyard, origin, tmp_path):
    """The block inherits what it does not set (satisfy, auth_basic) from its
    location; a nested location does not inherit limit_except."""
    (tmp_path / "htpasswd").write_text("u:{PLAIN}p\n")
    port = free_port()
    switchyard(server(port, f"""
        location / {{
            proxy_pass http://{origin.addr};
            satisfy any;
            auth_basic "site";
            auth_basic_user_file htpasswd;
            limit_except GET {{ allow 127.0.0.2; deny all; }}
            location /inner/ {{ proxy_pass http://{origin.addr}; }}
        }}
    """))
    auth = [("Authorization", "Basic " + base64.b64encode(b"u:p").decode())]
    # GET: the location's auth_basic
    assert status(port, "GET") == 401
    assert status(port, "GET", headers=auth) == 200
    # POST: the block's rules, satisfy any and auth_basic inherited
    assert status(port, "POST", src="127.0.0.2") == 200
    assert status(port, "POST") == 401
    assert status(port, "POST", headers=auth) == 200
    # the nested location: auth_basic inherited, no limit_except
    assert status(port, "POST", "/inner/", src="127.0.0.2") == 401
    assert status(port, "POST", "/inner/", headers=auth) == 200


def test_the_location_rewrite_directives_do_not_run_for_other_methods(switchyard, tmp_path):
    """nginx swaps the whole configuration: the block has no `return` of its
    own, so a POST falls through to the content (static files here: 404 for
    a missing file) instead of getting the location's `return`."""
    port = free_port()
    switchyard(server(port, """
        location /a { limit_except GET { deny all; } return 200 "ret\\n"; }
        location /b { limit_except GET { allow all; } return 200 "ret\\n"; }
    """))
    r = request(port, "GET", "/a")
    assert r.status == 200 and r.body == b"ret\n"
    assert status(port, "POST", "/a") == 403
    assert status(port, "POST", "/b") == 404
    assert request(port, "GET", "/b").body == b"ret\n"


def test_proxy_pass_inside_the_block(switchyard, origin, origin2):
    port = free_port()
    switchyard(server(port, f"""
        location /files/ {{
            proxy_pass http://{origin.addr};
            limit_except GET {{ proxy_pass http://{origin2.addr}; }}
        }}
    """))
    assert request(port, "GET", "/files/r").status == 200
    assert request(port, "PUT", "/files/w", body=b"data").status == 200
    assert request(port, "HEAD", "/files/h").status == 200
    assert [(r["method"], r["target"]) for r in origin.requests] == [("GET", "/files/r"),
                                                                   ("HEAD", "/files/h")]
    assert [(r["method"], r["target"]) for r in origin2.requests] == [("PUT", "/files/w")]


def test_access_log_inside_the_block(switchyard, origin, tmp_path):
    port = free_port()
    sy = switchyard(server(port, f"""
        location / {{
            proxy_pass http://{origin.addr};
            limit_except GET {{ access_log logs/writes.log; }}
        }}
    """))
    assert request(port, "GET", "/r").status == 200
    assert request(port, "POST", "/w", body=b"x").status == 200
    writes = tmp_path / "logs" / "writes.log"
    sy.wait_access_log(r'"GET /r HTTP/1\.1" 200 ')
    wait_until(lambda: writes.exists() and '"POST /w HTTP/1.1" 200' in writes.read_text(), 5,
               "the POST in writes.log")
    assert "GET /r" not in writes.read_text()
    assert "POST /w" not in sy.access_log()
