"""X-Accel-Redirect: the upstream names what to serve instead.

Rails (X-Sendfile-Type), Django, Discourse, Seafile and many others answer a
request for a protected download with an empty response carrying
`X-Accel-Redirect: /internal/path`; nginx then serves that URI (usually a
file in an `internal` location) as an internal redirect. As nginx: the
upstream's body is dropped, Content-Type / Content-Disposition / Set-Cookie /
Cache-Control / Expires / Accept-Ranges carry over, the method becomes GET
(HEAD stays HEAD), "?args" replace the request's, "@name" goes to a named
location, a URI with ".." is a 404, and `proxy_ignore_headers
X-Accel-Redirect` turns it off. Runs against nginx too.
"""

from __future__ import annotations

import subprocess
import urllib.parse

import pytest

from harness import free_port, http_conf, request


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "protected"
    d.mkdir()
    (d / "report.pdf").write_bytes(b"%PDF-1.4 secret report\n")
    return d


def conf(port: int, origin, files, extra: str = "", listen_extra: str = "") -> str:
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port}{listen_extra};
    location / {{
        proxy_pass http://127.0.0.1:{origin.port};
        {extra}
    }}
    location /protected/ {{
        internal;
        alias {files}/;
    }}
    location /echo-args {{
        internal;
        return 200 "args=$args method=$request_method uri=$uri\\n";
    }}
    location @named {{
        return 200 "named $uri\\n";
    }}
}}
""")


def via(target: str, **headers: str) -> str:
    q = urllib.parse.urlencode([("X-Accel-Redirect", target), *headers.items()])
    return f"/set-header?{q}"


def test_protected_file_is_served_with_the_upstream_headers(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files))
    r = request(port, "GET", via("/protected/report.pdf", **{
        "Content-Type": "application/pdf",
        "Content-Disposition": 'attachment; filename="report.pdf"',
        "X-App": "not-carried"}))
    assert r.status == 200, r
    assert r.body == b"%PDF-1.4 secret report\n"
    assert r.header("content-type") == "application/pdf"
    assert r.header("content-disposition") == 'attachment; filename="report.pdf"'
    assert r.header("x-app") is None
    assert r.header("x-accel-redirect") is None
    assert r.header("x-origin-conn") is None


def test_internal_location_is_not_reachable_directly(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files))
    assert request(port, "GET", "/protected/report.pdf").status == 404


def test_post_becomes_get_and_args_replace(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files))
    r = request(port, "POST", via("/echo-args?token=abc") + "&orig=1", body=b"x=1",
                headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert r.status == 200, r
    assert r.body == b"args=token=abc method=GET uri=/echo-args\n"
    r = request(port, "GET", via("/echo-args"))
    assert r.body == b"args= method=GET uri=/echo-args\n"


def test_head_stays_head(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files))
    r = request(port, "HEAD", via("/protected/report.pdf"))
    assert r.status == 200
    assert r.header("content-length") == "23"
    assert r.body == b""


def test_named_location(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files))
    r = request(port, "GET", via("@named"))
    assert r.status == 200
    assert r.body.startswith(b"named /set-header"), r.body


def test_missing_file_is_404_and_unsafe_uri_refused(switchyard, origin, files):
    port = free_port()
    sy = switchyard(conf(port, origin, files))
    assert request(port, "GET", via("/protected/nope.pdf")).status == 404
    assert request(port, "GET", via("/protected/../protected/report.pdf")).status == 404
    sy.wait_log(r'unsafe URI "/protected/\.\./protected/report\.pdf" was detected')


def test_proxy_ignore_headers_turns_it_off(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files, extra="proxy_ignore_headers X-Accel-Redirect;"))
    r = request(port, "GET", via("/protected/report.pdf"))
    assert r.status == 200
    assert b"secret" not in r.body  # the upstream's own answer, the header hidden
    assert r.header("x-accel-redirect") is None
    assert r.header("x-origin-conn") is not None


def test_over_http2(switchyard, origin, files):
    port = free_port()
    switchyard(conf(port, origin, files, listen_extra=" http2"))
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                        f"http://127.0.0.1:{port}{via('/protected/report.pdf')}"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"%PDF-1.4 secret report\n"
