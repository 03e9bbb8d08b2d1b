"""The TLS variables ($https, $ssl_protocol, $ssl_cipher, $ssl_ciphers,
$ssl_curve, $ssl_curves, $ssl_session_id, $ssl_session_reused,
$ssl_early_data, $ssl_server_name, $ssl_alpn_protocol and the
$ssl_client_* family) with values nginx gives, through `openssl s_client`
with fixed cipher and group lists, so every value is known exactly:
TLS 1.3 and 1.2, a resumed session, no SNI, and a plain listener where
they are all missing ("-" in the access log). These configs request no
client certificate, so $ssl_client_verify is NONE and the certificate
variables are missing, as in nginx without ssl_verify_client (the values with
one: test_tls_client_certs.py). Checked against nginx."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import IS_NGINX, fill, free_port, http_conf, request, wait_until
from tls_pki import Pki

TLS_VARS = ["https", "scheme", "ssl_protocol", "ssl_cipher", "ssl_ciphers", "ssl_curve",
            "ssl_curves", "ssl_session_id", "ssl_session_reused", "ssl_early_data",
            "ssl_server_name", "ssl_alpn_protocol", "ssl_client_verify", "ssl_client_cert",
            "ssl_client_raw_cert", "ssl_client_escaped_cert", "ssl_client_s_dn",
            "ssl_client_i_dn", "ssl_client_s_dn_legacy", "ssl_client_i_dn_legacy",
            "ssl_client_serial", "ssl_client_fingerprint", "ssl_client_v_start",
            "ssl_client_v_end", "ssl_client_v_remain"]
BODY = "|".join(f"{v}=${v}" for v in TLS_VARS)
LOG = "log_format tlsv '" + "|".join(f"${v}" for v in TLS_VARS) + "';\n"
NGINX_TLS = "ssl_protocols TLSv1.2 TLSv1.3;\n" if IS_NGINX else ""
CLIENT_CERT_VARS = [v for v in TLS_VARS if v.startswith("ssl_client_") and v != "ssl_client_verify"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def start(switchyard, pki, extra: str = ""):
    """A TLS server (a.test) and a plain one, both answering BODY and logging
    the same variables to logs/tls.log."""
    tls, plain = free_port(), free_port()
    crt, key = pki.cert("a.test")
    sy = switchyard(http_conf(fill("""
        server { listen 127.0.0.1:@T@ ssl; server_name a.test;
                 ssl_certificate @CRT@; ssl_certificate_key @KEY@; @EXTRA@
                 access_log logs/tls.log tlsv;
                 location / { return 200 "@BODY@"; } }
        server { listen 127.0.0.1:@N@; access_log logs/tls.log tlsv;
                 location / { return 200 "@BODY@"; } }""",
                                   T=tls, N=plain, CRT=crt, KEY=key, EXTRA=extra, BODY=BODY),
                              extra_http=NGINX_TLS + LOG))
    return sy, tls, plain


def s_client(pki, port: int, *args: str, name: str | None = "a.test") -> dict:
    """One HTTPS request with openssl s_client; the response body as a dict."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca),
           "-verify_return_error", "-ign_eof", "-quiet"]
    cmd += ["-servername", name] if name else ["-noservername"]
    cmd += list(args)
    r = subprocess.run(cmd, input=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=30)
    assert b"HTTP/1.1 200 " in r.stdout, (r.stdout, r.stderr)
    return parse(r.stdout.split(b"\r\n\r\n", 1)[1])


def parse(body: bytes) -> dict:
    return dict(kv.split("=", 1) for kv in body.decode().split("|"))


TLS13 = ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
         "-groups", "X25519:P-256", "-alpn", "http/1.1"]
TLS12 = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA", "-curves",
         "P-256:X25519"]


def test_tls13_values(switchyard, pki):
    _, tls, _ = start(switchyard, pki)
    v = s_client(pki, tls, *TLS13)
    assert (v["https"], v["scheme"]) == ("on", "https")
    assert v["ssl_protocol"] == "TLSv1.3"
    assert v["ssl_cipher"] == "TLS_AES_128_GCM_SHA256"
    # the client's list, in its order, with the signalling value OpenSSL adds
    assert v["ssl_ciphers"] == ("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                "TLS_EMPTY_RENEGOTIATION_INFO_SCSV")
    assert v["ssl_curve"] == "X25519"
    assert v["ssl_curves"] == "X25519:prime256v1"
    assert re.fullmatch(r"[0-9a-f]{64}", v["ssl_session_id"]), v
    assert v["ssl_session_reused"] == "."
    assert v["ssl_early_data"] == ""
    assert v["ssl_server_name"] == "a.test"
    assert v["ssl_alpn_protocol"] == "http/1.1"
    assert v["ssl_client_verify"] == "NONE"
    assert all(v[k] == "" for k in CLIENT_CERT_VARS), v


def test_tls12_values_with_a_session_cache(switchyard, pki):
    _, tls, _ = start(switchyard, pki, "ssl_session_cache shared:SSL:1m; ssl_session_tickets off;")
    v = s_client(pki, tls, *TLS12)
    assert v["ssl_protocol"] == "TLSv1.2"
    assert v["ssl_cipher"] == "ECDHE-RSA-AES128-GCM-SHA256"
    assert v["ssl_ciphers"] == ("ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA:"
                                "TLS_EMPTY_RENEGOTIATION_INFO_SCSV")
    assert v["ssl_curve"] == "prime256v1"
    assert v["ssl_curves"] == "prime256v1:X25519"
    # the session cache gives the session an id; no ALPN offered, none chosen
    assert re.fullmatch(r"[0-9a-f]{64}", v["ssl_session_id"]), v
    assert v["ssl_alpn_protocol"] == ""


def test_session_reused_is_r_on_resumption(switchyard, pki, tmp_path):
    _, tls, _ = start(switchyard, pki)
    sess = tmp_path / "sess.pem"
    first = s_client(pki, tls, "-tls1_2", "-sess_out", str(sess))
    second = s_client(pki, tls, "-tls1_2", "-sess_in", str(sess))
    assert (first["ssl_session_reused"], second["ssl_session_reused"]) == (".", "r")


def test_no_sni_server_name_missing(switchyard, pki):
    _, tls, _ = start(switchyard, pki)
    v = s_client(pki, tls, "-tls1_3", name=None)
    assert v["ssl_server_name"] == ""
    assert v["ssl_protocol"] == "TLSv1.3"


def test_access_log_tls_values_and_plain_dashes(switchyard, pki):
    sy, tls, plain = start(switchyard, pki)
    s_client(pki, tls, *TLS13)
    v = parse(request(plain, "GET", "/").body)
    assert (v["https"], v["scheme"]) == ("", "http")
    assert all(v[k] == "" for k in TLS_VARS if k.startswith("ssl_")), v
    path = sy.prefix / "logs" / "tls.log"
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(
        [ln for ln in path.read_text().split("\n") if ln] if path.exists() else []),
        5, "two log lines")
    rec = {line.split("|")[1]: dict(zip(TLS_VARS, line.split("|"))) for line in lines}
    t, p = rec["https"], rec["http"]
    assert t["ssl_protocol"] == "TLSv1.3" and t["ssl_curve"] == "X25519", t
    # missing values are "-": early data, client certificate
    assert t["ssl_early_data"] == "-" and t["ssl_client_cert"] == "-", t
    assert t["ssl_client_verify"] == "NONE", t
    # plain HTTP: $https is empty (a value, not missing), every $ssl_* is "-"
    assert p["https"] == "", p
    assert all(p[k] == "-" for k in TLS_VARS if k.startswith("ssl_")), p
