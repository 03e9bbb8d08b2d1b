"""ssl_early_data: TLS 1.3 0-RTT (issue 14, item 5).

A resumed TLS 1.3 client sends its request with the ClientHello; with
`ssl_early_data on` Switchyard reads it before the handshake ends and
answers in the same flight, $ssl_early_data is "1" for such a request (the
header a backend needs to answer 425 Too Early, RFC 8470), a ticket used
twice is refused for early data (OpenSSL's replay protection, per worker),
and without the directive early data is refused (the session still
resumes). The client is `openssl s_client -early_data`.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import free_port, http_conf
from tls_pki import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def conf(pki, port: int, early: str, origin_port: int | None = None, cache: str = "") -> str:
    crt, key = pki.cert("a.test")
    if origin_port:
        loc = (f"location / {{ proxy_pass http://127.0.0.1:{origin_port}; "
               f"proxy_set_header Early-Data $ssl_early_data; }}")
    else:
        loc = 'location / { return 200 "early=$ssl_early_data\\n"; }'
    return http_conf(
        f"server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name a.test;\n"
        f"    ssl_certificate {crt};\n    ssl_certificate_key {key};\n"
        f"    {early}\n    {cache}\n    keepalive_timeout 1s;\n    {loc}\n}}\n",
        extra_http="ssl_protocols TLSv1.2 TLSv1.3;\n")


# Keep-alive, as browsers send early data: the server closes the idle
# connection after keepalive_timeout, by then with the handshake finished
# (a "Connection: close" answered from early data is closed mid-handshake,
# without close_notify, as nginx does: OpenSSL cannot shut down a handshake).
REQ = b"GET /e HTTP/1.1\r\nHost: a.test\r\n\r\n"


def s_client(pki, port: int, *args: str, stdin: bytes = b"") -> str:
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "a.test",
           "-CAfile", str(pki.ca), "-verify_return_error", "-tls1_3", "-ign_eof", *args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode == 0, out
    return out


def session(pki, port: int, tmp_path) -> str:
    sess = tmp_path / f"sess-{port}.pem"
    out = s_client(pki, port, "-sess_out", str(sess), stdin=REQ)
    assert re.search(r"^New, TLSv1\.3", out, re.M), out
    return str(sess)


def early(pki, port: int, sess: str, tmp_path) -> str:
    req = tmp_path / "req.txt"
    req.write_bytes(REQ)
    # the same request again after the handshake: answered whether or not
    # the early one was accepted (s_client does not resend refused early data)
    return s_client(pki, port, "-sess_in", sess, "-early_data", str(req), stdin=REQ)


# nginx 1.22 accepts the early data but answers it after the handshake, so its
# $ssl_early_data is empty there, and it accepts a replayed ticket's early
# data: these three are Switchyard's (docs/differences.md).
@pytest.mark.switchyard_only
@pytest.mark.parametrize("cache", ["", "ssl_session_cache shared:SSL:1m;"],
                         ids=["default-cache", "shared-cache"])
def test_early_data_is_served_before_the_handshake_ends(switchyard, pki, tmp_path, cache):
    port = free_port()
    switchyard(conf(pki, port, "ssl_early_data on;", cache=cache))
    sess = session(pki, port, tmp_path)
    out = early(pki, port, sess, tmp_path)
    assert re.search(r"^Reused, TLSv1\.3", out, re.M), out
    assert "Early data was accepted" in out, out
    assert "early=1" in out, out


@pytest.mark.switchyard_only
def test_early_data_reaches_the_backend_marked(switchyard, origin, pki, tmp_path):
    port = free_port()
    switchyard(conf(pki, port, "ssl_early_data on;", origin_port=origin.port,
                    cache="ssl_session_cache shared:SSL:1m;"))
    sess = session(pki, port, tmp_path)
    out = early(pki, port, sess, tmp_path)
    assert "Early data was accepted" in out, out
    assert "HTTP/1.1 200" in out, out
    marked = [dict((k.lower(), v) for k, v in r["headers"]).get("early-data")
              for r in origin.wait_requests(3)][1:]
    # the early request is marked; the same request after the handshake is not
    assert marked == ["1", None], marked


@pytest.mark.switchyard_only
def test_a_ticket_used_twice_is_refused_for_early_data(switchyard, pki, tmp_path):
    port = free_port()
    switchyard(conf(pki, port, "ssl_early_data on;", cache="ssl_session_cache shared:SSL:1m;"))
    sess = session(pki, port, tmp_path)
    first = early(pki, port, sess, tmp_path)
    assert "Early data was accepted" in first, first
    assert "early=1" in first, first
    replay = early(pki, port, sess, tmp_path)
    assert "Early data was rejected" in replay, replay
    assert "early=1" not in replay, replay
    # the server is unharmed: a fresh connection is served
    assert "early=\n" in s_client(pki, port, stdin=REQ).replace("\r", "")


def test_without_ssl_early_data_it_is_refused(switchyard, pki, tmp_path):
    port = free_port()
    switchyard(conf(pki, port, "", cache="ssl_session_cache shared:SSL:1m;"))
    sess = session(pki, port, tmp_path)
    out = early(pki, port, sess, tmp_path)
    assert re.search(r"^Reused, TLSv1\.3", out, re.M), out
    # its tickets allow none ("Max Early Data: 0"): the client does not even try
    assert "Early data was not sent" in out or "Early data was rejected" in out, out
    assert "early=1" not in out, out
    assert "early=\n" in out.replace("\r", ""), out
