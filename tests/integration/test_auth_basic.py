"""auth_basic / auth_basic_user_file (ngx_http_auth_basic_module) and
`satisfy`, over HTTP/1.1 and HTTP/2.

- every htpasswd format: crypt(3) ($2y$ bcrypt, $1$, $5$, $6$, DES) as
  written by Debian's `htpasswd` and `openssl passwd`, $apr1$, {SHA},
  {SSHA}, {PLAIN}; $remote_user in the access log;
- 401 with `WWW-Authenticate: Basic realm="..."` (variables in the realm; a
  realm that evaluates to "off" turns the check off) and nginx's error-log
  lines: `user "x" was not found in "file"`, `user "x": password mismatch`;
- a missing file is 403 with `open() "..." failed (2: ...)`;
- satisfy all / any with allow/deny (401 preferred over 403 when all
  refuse, no challenge when the request is allowed);
- the file named without variables is read at load and on reload
  (Switchyard; nginx reads it per request); a name with variables is read
  per request.

The expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import time

import pytest

import harness
from h2_support import H2Client, h2_server
from harness import free_port, http_conf, request

USERS = {
    # user: (password, how the hash is made)
    "bcrypt": ("b-secret", ["htpasswd", "-nbB"]),
    "apr": ("apr-secret", ["htpasswd", "-nbm"]),
    "sha": ("sha-secret", ["htpasswd", "-nbs"]),
    "des": ("desword", ["htpasswd", "-nbd"]),
    "md5": ("md5-secret", ["openssl", "passwd", "-1"]),
    "sha256": ("s256-secret", ["openssl", "passwd", "-5"]),
    "sha512": ("s512-secret", ["openssl", "passwd", "-6"]),
    "plain": ("plain-secret", None),
    "ssha": ("ssha-secret", None),
}


def hash_line(user: str) -> str:
    pw, cmd = USERS[user]
    if user == "plain":
        return f"{user}:{{PLAIN}}{pw}"
    if user == "ssha":
        salt = b"NaCl1234"
        d = hashlib.sha1(pw.encode() + salt).digest()
        return f"{user}:{{SSHA}}{base64.b64encode(d + salt).decode()}"
    if cmd[0] == "htpasswd":
        out = subprocess.run(cmd + [user, pw], check=True, capture_output=True, text=True)
        return out.stdout.strip()
    out = subprocess.run(cmd + [pw], check=True, capture_output=True, text=True)
    return f"{user}:{out.stdout.strip()}"


@pytest.fixture(scope="module")
def htpasswd_text():
    if not shutil.which("htpasswd"):
        pytest.skip("htpasswd (apache2-utils) is not installed")
    lines = ["# a comment", ""] + [hash_line(u) for u in USERS]
    return "\n".join(lines) + "\n"


def basic(user: str, pw: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())


def site(tmp_path, files=("index.html", "open/index.html", "any/index.html",
                          "all/index.html")):
    for f in files:
        p = tmp_path / "html" / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"file {f}\n")


def server(port: int, body: str, extra: str = "") -> str:
    return http_conf(f"server {{\n listen 127.0.0.1:{port};\n {extra}\n{body}\n}}",
                     extra_http="log_format auth '$remote_user $status $request_uri';\n"
                                "access_log logs/auth.log auth;")


def test_every_hash_format(switchyard, tmp_path, htpasswd_text):
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    sy = switchyard(server(port, """
        location / { auth_basic "Restricted"; auth_basic_user_file htpasswd; }
    """))
    for user, (pw, _) in USERS.items():
        r = request(port, "GET", f"/?{user}", headers=[basic(user, pw)])
        assert r.status == 200, (user, r)
        assert r.body == b"file index.html\n"
        r = request(port, "GET", f"/?{user}-wrong", headers=[basic(user, pw + "x")])
        assert r.status == 401, user
        assert r.header("WWW-Authenticate") == 'Basic realm="Restricted"'
    log = (tmp_path / "logs" / "auth.log")
    harness.wait_until(lambda: log.exists() and log.read_text().count("\n") >= 2 * len(USERS),
                       5, "the access log lines")
    lines = log.read_text().splitlines()
    for user in USERS:
        assert f"{user} 200 /?{user}" in lines
        assert f"{user} 401 /?{user}-wrong" in lines
    sy.wait_log(r'\[error\] .*user "sha512": password mismatch, client: 127\.0\.0\.1')


def test_no_credentials_unknown_user_and_bad_headers(switchyard, tmp_path, htpasswd_text):
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    sy = switchyard(server(port, """
        location / { auth_basic "Zone $host"; auth_basic_user_file htpasswd; }
    """))
    r = request(port, "GET", "/")
    assert r.status == 401
    assert r.header_all("WWW-Authenticate") == ['Basic realm="Zone localhost"']
    assert b"401 Authorization Required" in r.body
    r = request(port, "GET", "/", headers=[basic("nobody", "x")])
    assert r.status == 401
    sy.wait_log(r'\[error\] .*user "nobody" was not found in "' + str(tmp_path) +
                r'/htpasswd", client: 127\.0\.0\.1')
    for bad in ("Bearer abc", "Basic", "Basic !!!!", "Basic " + base64.b64encode(b"nocolon")
                .decode(), "Basic " + base64.b64encode(b":emptyuser").decode()):
        r = request(port, "GET", "/", headers=[("Authorization", bad)])
        assert r.status == 401, bad
    # a comment line is not a user
    r = request(port, "GET", "/", headers=[basic("# a comment", "x")])
    assert r.status == 401
    # "basic" in any case, several spaces
    r = request(port, "GET", "/", headers=[
        ("Authorization", "bAsIc   " + base64.b64encode(b"plain:plain-secret").decode())])
    assert r.status == 200


def test_off_and_inheritance(switchyard, tmp_path, htpasswd_text):
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    switchyard(server(port, """
        auth_basic "Server";
        auth_basic_user_file htpasswd;
        location / { }
        location /open/ { auth_basic off; }
        location /any/ { set $realm off; auth_basic $realm; }
        location /all/ { auth_basic "Inner"; }
    """))
    assert request(port, "GET", "/").status == 401
    assert request(port, "GET", "/open/").status == 200
    assert request(port, "GET", "/any/").status == 200
    r = request(port, "GET", "/all/")
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="Inner"'
    assert request(port, "GET", "/all/", headers=[basic("plain", "plain-secret")]).status == 200


def test_missing_file_is_403(switchyard, tmp_path):
    site(tmp_path)
    port = free_port()
    sy = switchyard(server(port, """
        location / { auth_basic "x"; auth_basic_user_file missing.htpasswd; }
    """))
    # without credentials the file is not needed yet: 401
    assert request(port, "GET", "/").status == 401
    assert request(port, "GET", "/", headers=[basic("a", "b")]).status == 403
    sy.wait_log(r'\[error\] .*open\(\) "' + str(tmp_path) +
                r'/missing\.htpasswd" failed \(2: No such file or directory\)')


def test_satisfy_any_and_all(switchyard, tmp_path, htpasswd_text):
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    switchyard(server(port, """
        auth_basic "R"; auth_basic_user_file htpasswd;
        location /any/ { satisfy any; allow 127.0.0.1; deny all; }
        location /all/ { satisfy all; allow 127.0.0.1; deny all; }
        location /open/ { satisfy any; deny all; }
    """))
    # any: the address is enough, and no challenge is sent
    r = request(port, "GET", "/any/")
    assert r.status == 200 and not r.has_header("WWW-Authenticate")
    # all: the address and the password
    r = request(port, "GET", "/all/")
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="R"'
    assert request(port, "GET", "/all/", headers=[basic("plain", "plain-secret")]).status == 200
    # any, denied address: the password alone is enough; without it, 401 (not 403)
    r = request(port, "GET", "/open/")
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="R"'
    assert request(port, "GET", "/open/", headers=[basic("plain", "plain-secret")]).status == 200
    r = request(port, "GET", "/open/", headers=[basic("plain", "wrong")])
    assert r.status == 401


def test_user_file_with_variables_is_read_per_request(switchyard, tmp_path, htpasswd_text):
    site(tmp_path)
    port = free_port()
    switchyard(server(port, """
        location / { auth_basic "V"; auth_basic_user_file users.$arg_f; }
    """))
    assert request(port, "GET", "/?f=one", headers=[basic("plain", "plain-secret")]).status == 403
    (tmp_path / "users.one").write_text(htpasswd_text)
    assert request(port, "GET", "/?f=one", headers=[basic("plain", "plain-secret")]).status == 200
    (tmp_path / "users.one").write_text("plain:{PLAIN}changed\n")
    assert request(port, "GET", "/?f=one", headers=[basic("plain", "plain-secret")]).status == 401
    assert request(port, "GET", "/?f=one", headers=[basic("plain", "changed")]).status == 200


@pytest.mark.switchyard_only
def test_user_file_is_read_at_load_and_on_reload(switchyard, tmp_path, htpasswd_text):
    """Switchyard reads a constant file when the configuration loads (nginx
    opens it on every request): a change takes effect at reload."""
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    conf = server(port, """
        location / { auth_basic "R"; auth_basic_user_file htpasswd; }
    """)
    sy = switchyard(conf)
    assert request(port, "GET", "/", headers=[basic("plain", "plain-secret")]).status == 200
    (tmp_path / "htpasswd").write_text("plain:{PLAIN}new-secret\n")
    assert request(port, "GET", "/", headers=[basic("plain", "plain-secret")]).status == 200
    assert request(port, "GET", "/", headers=[basic("plain", "new-secret")]).status == 401
    sy.reload(conf)
    assert request(port, "GET", "/", headers=[basic("plain", "new-secret")]).status == 200
    assert request(port, "GET", "/", headers=[basic("plain", "plain-secret")]).status == 401
    # removed: the load still succeeds (nginx would not notice either), requests get 403
    (tmp_path / "htpasswd").unlink()
    sy.reload(conf)
    assert request(port, "GET", "/", headers=[basic("plain", "new-secret")]).status == 403


def test_error_page_keeps_the_challenge(switchyard, tmp_path, htpasswd_text):
    site(tmp_path, files=("index.html", "401.html"))
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    switchyard(server(port, """
        error_page 401 /401.html;
        location = /401.html { }
        location / { auth_basic "R"; auth_basic_user_file htpasswd; }
    """))
    r = request(port, "GET", "/")
    assert r.status == 401
    assert r.body == b"file 401.html\n"
    assert r.header("WWW-Authenticate") == 'Basic realm="R"'


def test_http2(switchyard, tmp_path, htpasswd_text):
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    switchyard(http_conf(h2_server(port, body="""
        location / { auth_basic "H2"; auth_basic_user_file htpasswd; }
    """)))
    with H2Client(port) as c:
        st = c.request("GET", "/")
        assert st.status == 401
        assert st.header("www-authenticate") == 'Basic realm="H2"'
        st = c.request("GET", "/", headers=[("authorization", basic("bcrypt", "b-secret")[1])])
        assert st.status == 200 and st.body == b"file index.html\n"
        st = c.request("GET", "/", headers=[("authorization", basic("bcrypt", "nope")[1])])
        assert st.status == 401


def test_auth_delay(switchyard, tmp_path, htpasswd_text):
    """auth_delay: a 401 is sent only after the delay; an allowed request is
    not delayed, nor is a 403."""
    site(tmp_path)
    (tmp_path / "htpasswd").write_text(htpasswd_text)
    port = free_port()
    switchyard(server(port, """
        auth_delay 800ms;
        location / { auth_basic "D"; auth_basic_user_file htpasswd; }
        location /open/ { deny all; }
    """))
    t0 = time.monotonic()
    r = request(port, "GET", "/", headers=[basic("plain", "wrong")])
    took = time.monotonic() - t0
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="D"'
    assert took >= 0.79, took
    for path, headers, want in (("/", [basic("plain", "plain-secret")], 200),
                                ("/open/", [], 403)):
        t0 = time.monotonic()
        assert request(port, "GET", path, headers=headers).status == want
        assert time.monotonic() - t0 < 0.7
