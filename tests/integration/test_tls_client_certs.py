"""Client certificates (mTLS) and the other ssl_* directives beyond the basics:
ssl_verify_client (on / optional / optional_no_ca), ssl_client_certificate,
ssl_trusted_certificate, ssl_verify_depth, ssl_crl, the $ssl_client_*
variables, nginx's 400 pages for 495 / 496 and error_page 495 / 496, the 421
of an SNI / Host mismatch; ssl_reject_handshake; ssl_session_ticket_key,
ssl_password_file, ssl_conf_command, ssl_buffer_size; and the upstream side:
proxy_ssl_certificate, proxy_ssl_certificate_key, proxy_ssl_password_file,
proxy_ssl_crl.

Certificates are made at test time (tls_pki.py); clients are Python's ssl
module, `openssl s_client` and curl. Every test here also runs against nginx
(SWITCHYARD_BIN=/usr/sbin/nginx): nginx 1.22's default ssl_protocols lack
TLSv1.3, so the configs name both versions there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest

import harness
from harness import IS_NGINX, free_port, http_conf
from tls_pki import ClientPki, Pki

NGINX_TLS = "ssl_protocols TLSv1.2 TLSv1.3;\n" if IS_NGINX else ""
VARS = ('return 200 "verify=$ssl_client_verify|s=$ssl_client_s_dn|i=$ssl_client_i_dn|'
        'serial=$ssl_client_serial|fp=$ssl_client_fingerprint|srv=$server_name\\n";')


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def cp(tmp_path_factory):
    return ClientPki(tmp_path_factory.mktemp("cpki"))


def conf(*servers: str, extra_http: str = "") -> str:
    return http_conf("\n".join(servers), extra_http=NGINX_TLS + extra_http)


def server(port: int, name: str, pair, extra: str = "", body: str = "",
           listen_extra: str = "") -> str:
    crt, key = pair
    return (f"server {{\n    listen 127.0.0.1:{port} ssl{listen_extra};\n"
            f"    server_name {name};\n    ssl_certificate {crt};\n"
            f"    ssl_certificate_key {key};\n    {extra}\n"
            f"    {body or 'location / { ' + VARS + ' }'}\n}}\n")


def client_ctx(pki, cert=None, *, tls12: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def get(port: int, ctx: ssl.SSLContext, name: str, path: str = "/", host: str | None = None,
        session=None):
    """One request over TLS; returns (status, body, ssl socket's session, reused)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=name, session=session) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or name}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        sess, reused = s.session, s.session_reused
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body.decode(errors="replace"), sess, reused


def openssl_x509(path, *opts: str) -> str:
    r = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", *opts],
                       capture_output=True, timeout=20, check=True)
    return r.stdout.decode().strip()


def fields(body: str) -> dict:
    return dict(kv.split("=", 1) for kv in body.strip().split("|"))


# --------------------------------------------------------------------------
# ssl_verify_client


def test_verify_on(switchyard, pki, cp):
    p = free_port()
    switchyard(conf(server(p, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client on; ssl_client_certificate {cp.ca};")))
    st, body, _, _ = get(p, client_ctx(pki, cp.good), "a.test")
    assert st == 200, body
    v = fields(body)
    assert v["verify"] == "SUCCESS"
    assert v["s"] == "O=Switchyard Test,CN=client1"  # `openssl ca` put CN first
    assert v["i"] == "CN=Switchyard Client CA,O=Switchyard Test"
    assert v["serial"] == openssl_x509(cp.good[0], "-serial").split("=", 1)[1]
    der = ssl.PEM_cert_to_DER_cert(cp.good[0].read_text())
    assert v["fp"] == hashlib.sha1(der).hexdigest()

    st, body, _, _ = get(p, client_ctx(pki), "a.test")
    assert st == 400
    assert "<title>400 No required SSL certificate was sent</title>" in body
    assert "<center>No required SSL certificate was sent</center>" in body

    st, body, _, _ = get(p, client_ctx(pki, cp.stranger), "a.test")
    assert st == 400
    assert "<title>400 The SSL certificate error</title>" in body


class InfoSwitchyard(harness.Switchyard):
    """The proxy with its error log at info, where nginx logs these."""

    def argv(self):
        a = super().argv()
        i = a.index("-g")
        a[i + 1] = a[i + 1].replace(" notice;", " info;")
        return a


def test_verify_failures_are_logged(tmp_path, pki, cp):
    p = free_port()
    sy = InfoSwitchyard(tmp_path / "info", conf(server(
        p, "a.test", pki.cert("a.test"), f"ssl_verify_client on; ssl_client_certificate {cp.ca};")))
    sy.start()
    try:
        get(p, client_ctx(pki, cp.stranger), "a.test")
        sy.wait_log(r"\[info\] .*client SSL certificate verify error: \(21:unable to verify the "
                    r"first certificate\) while reading client request headers, client: 127\.0\.0\.1")
        get(p, client_ctx(pki), "a.test")
        sy.wait_log(r"\[info\] .*client sent no required SSL certificate while reading client "
                    r"request headers")
        sy.wait_access_log(r'(?s)"GET / HTTP/1.1" 400 .*"GET / HTTP/1.1" 400 ')
    finally:
        problems = sy.stop()
    assert not problems, problems


def test_verify_optional(switchyard, pki, cp):
    p = free_port()
    # (nginx 1.22 needs ssl_client_certificate; 1.25+ also takes ssl_trusted_certificate)
    ca = "ssl_client_certificate" if IS_NGINX else "ssl_trusted_certificate"
    switchyard(conf(server(p, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client optional; {ca} {cp.ca};")))
    st, body, _, _ = get(p, client_ctx(pki), "a.test")
    assert st == 200 and fields(body)["verify"] == "NONE", body
    assert fields(body)["s"] == ""
    st, body, _, _ = get(p, client_ctx(pki, cp.good), "a.test")
    assert st == 200 and fields(body)["verify"] == "SUCCESS", body
    st, body, _, _ = get(p, client_ctx(pki, cp.self_signed), "a.test")
    assert st == 400 and "The SSL certificate error" in body


def test_verify_optional_no_ca(switchyard, pki, cp):
    p = free_port()
    switchyard(conf(server(p, "a.test", pki.cert("a.test"), "ssl_verify_client optional_no_ca;")))
    st, body, _, _ = get(p, client_ctx(pki, cp.self_signed), "a.test")
    assert st == 200, body
    v = fields(body)
    assert v["verify"].startswith("FAILED:self") and "signed certificate" in v["verify"], v
    assert v["s"] == "CN=selfie"
    st, body, _, _ = get(p, client_ctx(pki, cp.good), "a.test")
    assert st == 200 and fields(body)["verify"].startswith("FAILED:unable to"), body
    st, body, _, _ = get(p, client_ctx(pki), "a.test")
    assert st == 200 and fields(body)["verify"] == "NONE", body


def test_crl_revokes(switchyard, pki, cp):
    p = free_port()
    switchyard(conf(server(p, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client optional; ssl_client_certificate {cp.ca}; "
                           f"ssl_crl {cp.crl};", body="location / { " + VARS + " }\n"
                           "    error_page 495 /why;\n"
                           "    location = /why { return 403 \"$ssl_client_verify\\n\"; }")))
    st, body, _, _ = get(p, client_ctx(pki, cp.good), "a.test")
    assert st == 200 and fields(body)["verify"] == "SUCCESS", body
    st, body, _, _ = get(p, client_ctx(pki, cp.revoked), "a.test")
    assert (st, body) == (400, "FAILED:certificate revoked\n")  # error_page 495: 400


def test_error_page_495_496(switchyard, pki, cp):
    p = free_port()
    body = ("location / { " + VARS + " }\n"
            "    error_page 496 /nocert;\n"
            "    error_page 495 = /badcert;\n"
            "    location = /nocert { return 200 \"please send a certificate\\n\"; }\n"
            "    location = /badcert { return 200 \"bad certificate\\n\"; }")
    switchyard(conf(server(p, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client on; ssl_client_certificate {cp.ca};", body=body)))
    st, text, _, _ = get(p, client_ctx(pki), "a.test")
    assert (st, text) == (400, "please send a certificate\n")  # 496 answers 400 (nginx)
    st, text, _, _ = get(p, client_ctx(pki, cp.stranger), "a.test")
    assert (st, text) == (200, "bad certificate\n")


def test_certificate_variables(switchyard, pki, cp):
    p = free_port()
    body = ('location = /raw { return 200 "$ssl_client_raw_cert"; }\n'
            '    location = /cert { return 200 "$ssl_client_cert"; }\n'
            '    location = /esc { return 200 "$ssl_client_escaped_cert"; }\n'
            '    location = /legacy { return 200 "$ssl_client_s_dn_legacy|$ssl_client_i_dn_legacy"; }\n'
            '    location = /dates { return 200 "$ssl_client_v_start|$ssl_client_v_end|'
            '$ssl_client_v_remain"; }')
    switchyard(conf(server(p, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client on; ssl_client_certificate {cp.ca};", body=body)))
    ctx = client_ctx(pki, cp.good)
    pem = cp.good[0].read_text()
    pem = pem[pem.index("-----BEGIN"):]
    assert get(p, ctx, "a.test", "/raw")[1] == pem
    assert get(p, ctx, "a.test", "/cert")[1] == pem[:-1].replace("\n", "\n\t")
    assert get(p, ctx, "a.test", "/esc")[1] == urllib.parse.quote(pem, safe="-._~")
    assert get(p, ctx, "a.test", "/legacy")[1] == \
        "/CN=client1/O=Switchyard Test|/O=Switchyard Test/CN=Switchyard Client CA"
    start, end, remain = get(p, ctx, "a.test", "/dates")[1].split("|")
    assert start == openssl_x509(cp.good[0], "-startdate").split("=", 1)[1]
    assert end == openssl_x509(cp.good[0], "-enddate").split("=", 1)[1]
    assert remain in ("29", "30"), remain


def test_sni_server_settings_apply(switchyard, pki, cp):
    """Two servers on one address: only b.test asks for a certificate (its
    settings follow SNI); a request whose Host names b.test over a connection
    negotiated for a.test gets nginx's 421."""
    p = free_port()
    switchyard(conf(server(p, "a.test", pki.cert("a.test")),
                    server(p, "b.test", pki.cert("b.test"),
                           f"ssl_verify_client on; ssl_client_certificate {cp.ca};")))
    st, body, _, _ = get(p, client_ctx(pki), "a.test")
    assert st == 200 and fields(body)["verify"] == "NONE", body
    st, body, _, _ = get(p, client_ctx(pki), "b.test")
    assert st == 400 and "No required SSL certificate" in body
    st, body, _, _ = get(p, client_ctx(pki, cp.good), "b.test")
    assert st == 200 and fields(body)["srv"] == "b.test", body
    st, body, _, _ = get(p, client_ctx(pki, cp.good), "a.test", host="b.test")
    assert st == 421, body


def test_verify_without_ca_is_a_config_error(sy_t, pki):
    crt, key = pki.cert("a.test")
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{free_port()} ssl; server_name a.test;\n"
                        f"ssl_certificate {crt}; ssl_certificate_key {key};\n"
                        "ssl_verify_client on; }"))
    assert rc != 0
    if IS_NGINX:  # 1.22's wording; 1.25+ also accepts ssl_trusted_certificate
        assert "no ssl_client_certificate for ssl_verify_client" in out, out
    else:
        assert "[emerg] no ssl_client_certificate or ssl_trusted_certificate for " \
               "ssl_verify_client" in out, out


def test_bad_client_ca_file_is_a_config_error(sy_t, pki, tmp_path):
    crt, key = pki.cert("a.test")
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{free_port()} ssl; server_name a.test;\n"
                        f"ssl_certificate {crt}; ssl_certificate_key {key};\n"
                        f"ssl_verify_client on; ssl_client_certificate {tmp_path}/none.pem; }}"))
    assert rc != 0
    assert f'SSL_CTX_load_verify_locations("{tmp_path}/none.pem") failed' in out, out


# --------------------------------------------------------------------------
# ssl_reject_handshake


def test_reject_handshake(switchyard, pki):
    p = free_port()
    default = (f"server {{ listen 127.0.0.1:{p} ssl default_server; "
               "ssl_reject_handshake on; }")
    switchyard(conf(default, server(p, "a.test", pki.cert("a.test"))))
    st, body, _, _ = get(p, client_ctx(pki), "a.test")
    assert st == 200 and fields(body)["srv"] == "a.test"
    ctx = client_ctx(pki)
    ctx.check_hostname = False
    for name in ("unknown.test", None):
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|unrecognized name"):
            raw = socket.create_connection(("127.0.0.1", p), timeout=10)
            with ctx.wrap_socket(raw, server_hostname=name):
                pass


def test_reject_handshake_needs_no_certificate(sy_t, pki):
    p = free_port()
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{p} ssl; ssl_reject_handshake on; }}"))
    assert rc == 0, out
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{p} ssl; ssl_reject_handshake off; }}"))
    assert rc != 0 and 'no "ssl_certificate" is defined for the "listen ... ssl" directive' in out


# --------------------------------------------------------------------------
# ssl_session_ticket_key, ssl_password_file, ssl_conf_command, ssl_buffer_size


def test_session_ticket_keys_shared_and_rotated(switchyard, pki, tmp_path):
    """Three instances: the second lists a new key first and the first one's
    key second (rotation), the third only another key. A TLS 1.2 ticket from
    the first resumes on the second, not on the third."""
    key80, key48 = tmp_path / "t80.key", tmp_path / "t48.key"
    key80.write_bytes(os.urandom(80))
    key48.write_bytes(os.urandom(48))
    p1, p2, p3 = free_port(), free_port(), free_port()
    a = pki.cert("a.test")
    switchyard(conf(server(p1, "a.test", a, f"ssl_session_ticket_key {key80};")))
    switchyard(conf(server(p2, "a.test", a, f"ssl_session_ticket_key {key48};\n"
                                            f"    ssl_session_ticket_key {key80};")))
    switchyard(conf(server(p3, "a.test", a, f"ssl_session_ticket_key {key48};")))
    ctx = client_ctx(pki, tls12=True)
    st, _, sess, reused = get(p1, ctx, "a.test")
    assert st == 200 and not reused and sess.has_ticket
    st, _, sess2, reused = get(p2, ctx, "a.test", session=sess)
    assert st == 200 and reused
    st, _, _, reused = get(p3, ctx, "a.test", session=sess)
    assert st == 200 and not reused
    # the second instance's own tickets (its first key) resume on the third
    st, _, sess3, reused = get(p2, ctx, "a.test")
    st, _, _, reused = get(p3, ctx, "a.test", session=sess3)
    assert st == 200 and reused


def test_session_ticket_key_size_is_checked(sy_t, pki, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_bytes(os.urandom(32))
    rc, out = sy_t(conf(server(free_port(), "a.test", pki.cert("a.test"),
                               f"ssl_session_ticket_key {bad};")))
    assert rc != 0 and f'"{bad}" must be 48 or 80 bytes' in out, out


def encrypted_key(pki, tmp_path, password: str):
    out = tmp_path / "enc.key"
    subprocess.run(["openssl", "pkey", "-in", str(pki.cert("a.test")[1]), "-aes256",
                    "-passout", f"pass:{password}", "-out", str(out)], check=True, timeout=20)
    return out


def test_password_file(switchyard, sy_t, pki, tmp_path):
    key = encrypted_key(pki, tmp_path, "right one")
    pw = tmp_path / "pw"
    pw.write_text("wrong\n\nright one\r\n")
    p = free_port()
    pair = (pki.cert("a.test")[0], key)
    switchyard(conf(server(p, "a.test", pair, f"ssl_password_file {pw};")))
    st, body, _, _ = get(p, client_ctx(pki), "a.test")
    assert st == 200 and fields(body)["srv"] == "a.test"

    bad = tmp_path / "bad-pw"
    bad.write_text("wrong\n")
    rc, out = sy_t(conf(server(free_port(), "a.test", pair, f"ssl_password_file {bad};")))
    assert rc != 0 and f'cannot load certificate key "{key}": PEM_read_bio_PrivateKey() ' \
                       'failed' in out, out
    rc, out = sy_t(conf(server(free_port(), "a.test", pair,
                               f"ssl_password_file {tmp_path}/none;")))
    assert rc != 0 and f'open() "{tmp_path}/none" failed (2: No such file or directory)' in out


def test_conf_command(switchyard, sy_t, pki):
    p = free_port()
    switchyard(conf(server(p, "a.test", pki.cert("a.test"),
                           "ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;",
                           body='location / { return 200 "$ssl_protocol $ssl_cipher"; }')))
    ctx = client_ctx(pki)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    assert get(p, ctx, "a.test")[1] == "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256"
    rc, out = sy_t(conf(server(free_port(), "a.test", pki.cert("a.test"),
                               "ssl_conf_command NoSuchCommand x;")))
    assert rc != 0 and 'SSL_CONF_cmd("NoSuchCommand", "x") failed' in out, out


def record_sizes(port: int, ctx: ssl.SSLContext, name: str, path: str) -> list[int]:
    """The lengths of the TLS records the server sends after the handshake,
    read off the wire (the client is an ssl.SSLObject over memory BIOs)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    wire = b""
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            data = sock.recv(65536)
            assert data, "closed during the handshake"
            wire += data
            inc.write(data)
    start = len(wire)
    obj.write(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
    sock.sendall(out.read())
    while True:
        data = sock.recv(65536)
        if not data:
            break
        wire += data
    sock.close()
    # records from the first one that starts at or after the handshake's end
    sizes, i = [], 0
    while i + 5 <= len(wire):
        n = int.from_bytes(wire[i + 3:i + 5], "big")
        if i >= start and wire[i] == 0x17:
            sizes.append(n)
        i += 5 + n
    return sizes


def test_buffer_size(switchyard, pki, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(100_000))
    p1, p2 = free_port(), free_port()
    body = f"location / {{ root {root}; }}"
    switchyard(conf(server(p1, "a.test", pki.cert("a.test"), "ssl_buffer_size 4k;", body=body),
                    server(p2, "a.test", pki.cert("a.test"), "", body=body)))
    ctx = client_ctx(pki)
    small = record_sizes(p1, ctx, "a.test", "/big")
    assert sum(small) > 100_000 and max(small) <= 4096 + 256, small
    assert len(small) >= 100_000 // 4096
    default = record_sizes(p2, ctx, "a.test", "/big")
    assert max(default) > 16000, default


# --------------------------------------------------------------------------
# proxy_ssl_certificate, proxy_ssl_certificate_key, proxy_ssl_password_file, proxy_ssl_crl


def test_proxy_client_certificate(switchyard, pki, cp, tmp_path):
    up, front = free_port(), free_port()
    pw = tmp_path / "pw"
    pw.write_text(ClientPki.PASSWORD + "\n")
    upstream = server(up, "a.test", pki.cert("a.test"),
                      f"ssl_verify_client on; ssl_client_certificate {cp.ca};",
                      body='location / { return 200 "$ssl_client_verify $ssl_client_s_dn"; }')
    frontend = (f"server {{ listen 127.0.0.1:{front};\n"
                f"  location /with {{ proxy_pass https://127.0.0.1:{up};\n"
                f"    proxy_ssl_certificate {cp.good[0]};\n"
                f"    proxy_ssl_certificate_key {cp.good_enc_key};\n"
                f"    proxy_ssl_password_file {pw}; }}\n"
                f"  location /plain {{ proxy_pass https://127.0.0.1:{up};\n"
                f"    proxy_ssl_certificate {cp.good[0]};\n"
                f"    proxy_ssl_certificate_key {cp.good[1]}; }}\n"
                # (nginx would resume the session /with made, certificate included:
                # its sessions are per upstream server, Switchyard's also per context)
                f"  location /without {{ proxy_pass https://127.0.0.1:{up};\n"
                f"    proxy_ssl_session_reuse off; }}\n}}\n")
    switchyard(conf(upstream, frontend))
    with harness.HttpConn(front) as c:
        r = c.request("GET", "/with")
        assert (r.status, r.text) == (200, "SUCCESS O=Switchyard Test,CN=client1")
        r = c.request("GET", "/plain")
        assert (r.status, r.text) == (200, "SUCCESS O=Switchyard Test,CN=client1")
        r = c.request("GET", "/without")
        assert r.status == 400 and "No required SSL certificate was sent" in r.text


def test_proxy_certificate_without_key_is_a_config_error(sy_t, cp):
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{free_port()}; location / {{ "
                        f"proxy_pass https://127.0.0.1:9; proxy_ssl_certificate {cp.good[0]}; }} }}"))
    assert rc != 0
    assert f'no "proxy_ssl_certificate_key" is defined for certificate "{cp.good[0]}"' in out, out


def test_proxy_crl(switchyard, pki):
    crt, key, crl = pki.revoked_server()
    good_up, bad_up, front = free_port(), free_port(), free_port()
    ok = 'location / { return 200 "ok"; }'
    loc = ("proxy_ssl_verify on; proxy_ssl_trusted_certificate {ca}; proxy_ssl_crl {crl}; "
           "proxy_ssl_server_name on; proxy_ssl_name {name};")
    frontend = (f"server {{ listen 127.0.0.1:{front};\n"
                f"  location /good {{ proxy_pass https://127.0.0.1:{good_up}; "
                + loc.format(ca=pki.ca, crl=crl, name="a.test") + " }\n"
                f"  location /bad {{ proxy_pass https://127.0.0.1:{bad_up}; "
                + loc.format(ca=pki.ca, crl=crl, name="r.test") + " }\n}\n")
    sy = switchyard(conf(server(good_up, "a.test", pki.cert("a.test"), body=ok),
                         server(bad_up, "r.test", (crt, key), body=ok), frontend))
    with harness.HttpConn(front) as c:
        r = c.request("GET", "/good")
        assert (r.status, r.text) == (200, "ok")
        r = c.request("GET", "/bad")
        assert r.status == 502
    sy.wait_log(r"upstream SSL certificate verify error: \(23:certificate revoked\) while SSL "
                r"handshaking to upstream")


# --------------------------------------------------------------------------
# root-only files and unprivileged workers


@pytest.mark.switchyard_only  # the harness runs nginx with `user root`
@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_reload_hands_root_only_tls_files_to_workers(pki, cp, tmp_path):
    """Workers run as nobody; the client CA, CRL, ticket key, password file and
    encrypted key are root-only. A reload that turns on client certificates
    works: the master reads the files and hands the bytes to the workers."""
    d = Path(tempfile.mkdtemp(prefix="sy-mtls-", dir="/tmp"))
    proc = None
    try:
        d.chmod(0o755)
        (d / "logs").mkdir(mode=0o755)
        keys = d / "keys"
        keys.mkdir(mode=0o700)
        shutil.copy(pki.cert("a.test")[0], keys / "site.crt")
        shutil.copy(encrypted_key(pki, tmp_path, "pass phrase"), keys / "site.key")
        (keys / "pw").write_text("pass phrase\n")
        (keys / "ticket.key").write_bytes(os.urandom(80))
        shutil.copy(cp.ca, keys / "ca.pem")
        shutil.copy(cp.crl, keys / "crl.pem")
        for f in keys.iterdir():
            f.chmod(0o600)
        port = free_port()

        def text(verify: bool) -> str:
            v = ("ssl_verify_client on; ssl_client_certificate keys/ca.pem; "
                 "ssl_crl keys/crl.pem;") if verify else ""
            return (f"user nobody nogroup; worker_processes 1;\n"
                    f"error_log logs/error.log notice;\nevents {{ }}\nhttp {{\n"
                    f"  access_log logs/access.log;\n"
                    f"  server {{ listen 127.0.0.1:{port} ssl; server_name a.test;\n"
                    f"    ssl_certificate keys/site.crt; ssl_certificate_key keys/site.key;\n"
                    f"    ssl_password_file keys/pw; ssl_session_ticket_key keys/ticket.key;\n"
                    f"    {v}\n"
                    f'    location / {{ return 200 "$ssl_client_verify"; }} }}\n}}\n')

        (d / "sy.conf").write_text(text(False))
        proc = subprocess.Popen([str(harness.BIN), "-p", f"{d}/", "-c", str(d / "sy.conf"),
                                 "-g", f"daemon off; pid {d}/sy.pid;"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        harness.wait_until(lambda: harness.port_open(port), 10, "the TLS port")
        assert get(port, client_ctx(pki), "a.test")[:2] == (200, "NONE")
        (d / "sy.conf").write_text(text(True))
        proc.send_signal(signal.SIGHUP)
        harness.wait_until(lambda: get(port, client_ctx(pki), "a.test")[0] == 400, 10,
                           "the reloaded configuration asking for certificates")
        assert get(port, client_ctx(pki, cp.good), "a.test")[:2] == (200, "SUCCESS")
        assert get(port, client_ctx(pki, cp.revoked), "a.test")[0] == 400
        log = (d / "logs" / "error.log").read_text(errors="replace")
        assert "[emerg]" not in log and "Permission denied" not in log, log
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_verify_depth(switchyard, pki, cp):
    """A client certificate signed by an intermediate (sent along) passes with
    the default ssl_verify_depth 1 (OpenSSL counts the CAs above the leaf that
    are not trusted); ssl_verify_depth 0 refuses it."""
    p1, p2 = free_port(), free_port()
    switchyard(conf(server(p1, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client optional; ssl_client_certificate {cp.ca}; "
                           "ssl_verify_depth 0;"),
                    server(p2, "a.test", pki.cert("a.test"),
                           f"ssl_verify_client optional; ssl_client_certificate {cp.ca};")))
    st, body, _, _ = get(p1, client_ctx(pki, cp.chained), "a.test")
    assert st == 400 and "The SSL certificate error" in body
    st, body, _, _ = get(p1, client_ctx(pki, cp.good), "a.test")
    assert st == 200 and fields(body)["verify"] == "SUCCESS", body
    st, body, _, _ = get(p2, client_ctx(pki, cp.chained), "a.test")
    assert st == 200, body
    v = fields(body)
    assert v["verify"] == "SUCCESS" and v["i"] == "CN=Switchyard Client Intermediate"


@pytest.mark.switchyard_only  # nginx 1.21+ loads them per request
def test_proxy_certificate_variables_are_refused(sy_t):
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{free_port()}; location / {{ "
                        "proxy_pass https://127.0.0.1:9; proxy_ssl_certificate $host.crt; "
                        "proxy_ssl_certificate_key $host.key; } }"))
    assert rc != 0
    assert 'variables in "proxy_ssl_certificate" and "proxy_ssl_certificate_key" are not ' \
           'supported' in out, out


# --------------------------------------------------------------------------
# proxy_ssl_verify_depth, proxy_ssl_ciphers, proxy_ssl_conf_command


def test_proxy_verify_depth(switchyard, pki):
    """The upstream sends its certificate and an intermediate: the default
    proxy_ssl_verify_depth 1 accepts it, 0 does not."""
    up, front = free_port(), free_port()
    # (no session reuse: nginx would resume /one's session on /zero unchecked)
    verify = (f"proxy_ssl_verify on; proxy_ssl_trusted_certificate {pki.ca}; "
              "proxy_ssl_name d.test; proxy_ssl_session_reuse off;")
    frontend = (f"server {{ listen 127.0.0.1:{front};\n"
                f"  location /one {{ proxy_pass https://127.0.0.1:{up}; {verify} }}\n"
                f"  location /zero {{ proxy_pass https://127.0.0.1:{up}; {verify} "
                "proxy_ssl_verify_depth 0; }\n}\n")
    sy = switchyard(conf(server(up, "d.test", pki.chain_cert,
                                body='location / { return 200 "ok"; }'), frontend))
    with harness.HttpConn(front) as c:
        r = c.request("GET", "/one")
        assert (r.status, r.text) == (200, "ok")
        r = c.request("GET", "/zero")
        assert r.status == 502
    sy.wait_log(r"upstream SSL certificate verify error: \(20:unable to get local issuer "
                r"certificate\) while SSL handshaking to upstream")


def test_proxy_ciphers_and_conf_command(switchyard, sy_t, pki):
    up, front = free_port(), free_port()
    upstream = server(up, "a.test", pki.cert("a.test"),
                      body='location / { return 200 "$ssl_protocol $ssl_cipher"; }')
    frontend = (f"server {{ listen 127.0.0.1:{front};\n"
                f"  location /c12 {{ proxy_pass https://127.0.0.1:{up}; "
                "proxy_ssl_protocols TLSv1.2; proxy_ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;\n"
                # (nginx would resume /c12's TLS 1.2 session on /c13)
                "    proxy_ssl_session_reuse off; }\n"
                f"  location /c13 {{ proxy_pass https://127.0.0.1:{up}; "
                "proxy_ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;\n"
                "    proxy_ssl_protocols TLSv1.2 TLSv1.3; }\n}\n")  # (nginx 1.22: no 1.3 by default)
    switchyard(conf(upstream, frontend))
    with harness.HttpConn(front) as c:
        r = c.request("GET", "/c12")
        assert (r.status, r.text) == (200, "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256")
        r = c.request("GET", "/c13")
        assert (r.status, r.text) == (200, "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256")
    rc, out = sy_t(conf(f"server {{ listen 127.0.0.1:{free_port()}; location / {{ "
                        "proxy_pass https://127.0.0.1:9; proxy_ssl_conf_command Bogus 1; } }"))
    assert rc != 0 and 'SSL_CONF_cmd("Bogus", "1") failed' in out, out
