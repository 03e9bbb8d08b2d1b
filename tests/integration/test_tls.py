"""TLS listeners (`listen ... ssl`) with nginx's ssl_* directives.

Certificates are made at test time with the openssl command line (tls_pki.py):
a root CA trusted by every client here, RSA certificates for a.test, b.test
and c.test, an ECDSA one for a.test, a leaf signed by an intermediate (served
with its chain) and an expired one. Clients are real: curl, `openssl
s_client`, Python's ssl module and the websockets library.

Covered: HTTPS through curl, TLS 1.3 and 1.2 (curl and s_client), SNI
choosing among three server blocks, RSA and ECDSA certificates in one server,
certificate chains, session resumption (tickets and the session cache),
ssl_protocols / ssl_ciphers / ssl_prefer_server_ciphers / ssl_dhparam, ALPN,
plain HTTP sent to the TLS port (nginx's 400 page, error_page 497), handshake
failures and a client stalling mid-handshake (closed at
client_header_timeout), config-test errors with file:line, $scheme / $https /
$ssl_*, the HTTP-to-HTTPS redirect server, proxying and static files over TLS,
WebSockets over wss:// (one, and 200 at once), idle wss memory, and reloads
while TLS connections are open or mid-handshake.

nginx 1.22's default ssl_protocols lack TLSv1.3 (added in 1.23.4, Switchyard's
default), so under nginx the configs name both versions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import time

import pytest
import websockets

import harness
from harness import IS_NGINX, HttpConn, free_port, http_conf, read_until_close, wait_until
from tls_pki import Pki
from ws_fixtures import run, ws_location

NGINX_TLS = "ssl_protocols TLSv1.2 TLSv1.3;\n" if IS_NGINX else ""
ECHO = ('location / { return 200 "$server_name $scheme $https $ssl_protocol $ssl_cipher '
        'sni=$ssl_server_name\\n"; }')


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


class InfoSwitchyard(harness.Switchyard):
    """The proxy with its error log at info level, where nginx logs TLS
    handshake problems and plain-HTTP-to-HTTPS-port requests."""

    def argv(self):
        a = super().argv()
        i = a.index("-g")
        a[i + 1] = a[i + 1].replace(" notice;", " info;")
        return a


@pytest.fixture
def sy_info(tmp_path):
    harness_bin = harness.BIN
    if not harness_bin.exists():
        pytest.skip(f"{harness_bin} is not built")
    started = []

    def start(conf_text: str):
        sy = InfoSwitchyard(tmp_path / f"info{len(started)}", conf_text)
        started.append(sy)
        return sy.start()

    yield start
    problems = []
    for sy in started:
        problems += sy.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# helpers


def certs(*pairs) -> str:
    return "".join(f"    ssl_certificate {c};\n    ssl_certificate_key {k};\n" for c, k in pairs)


def tls_server(port: int, name: str, pairs, body: str = ECHO, extra: str = "",
               listen_extra: str = "") -> str:
    return (f"server {{\n    listen 127.0.0.1:{port} ssl{listen_extra};\n"
            f"    server_name {name};\n{certs(*pairs)}    {extra}\n    {body}\n}}\n")


def conf(*servers: str, extra_http: str = "", extra_main: str = "") -> str:
    return http_conf("\n".join(servers), extra_http=NGINX_TLS + extra_http,
                     extra_main=extra_main)


def curl(pki, port: int, name: str, path: str = "/", *args: str) -> subprocess.CompletedProcess:
    """curl over HTTPS to 127.0.0.1:port as https://name:port/path, trusting
    only the test CA. stdout is the body, stderr the -v trace."""
    cmd = ["curl", "-sS", "-v", "--max-time", "10", "--cacert", str(pki.ca),
           "--resolve", f"{name}:{port}:127.0.0.1", *args, f"https://{name}:{port}{path}"]
    return subprocess.run(cmd, capture_output=True, timeout=30)


def curl_subject(r: subprocess.CompletedProcess) -> str:
    m = re.search(r"subject: CN\s*=\s*([^\s,]+)", r.stderr.decode(errors="replace"))
    return m.group(1) if m else ""


def s_client(pki, port: int, *args: str, name: str | None = None,
             data: bytes = b"") -> tuple[int, str]:
    """openssl s_client; with `data` (a request closing the connection) it
    waits for the server to close. Returns (exit code, stdout + stderr)."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca),
           "-verify_return_error"]
    cmd += ["-servername", name] if name else ["-noservername"]
    if data:
        cmd.append("-ign_eof")
    cmd += list(args)
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def get_close(host: str, path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def tls_http(pki, port: int, name: str, timeout: float = 10.0) -> HttpConn:
    """A harness HttpConn whose socket is TLS (verified against the test CA)."""
    c = HttpConn(port, timeout=timeout)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    c.sock = ctx.wrap_socket(c.sock, server_hostname=name)
    return c


def client_hello(server_name: str = "a.test") -> bytes:
    """The bytes of a real ClientHello (Python's ssl over memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


class MemTls:
    """A TLS client driven by hand over a socket (ssl.SSLObject), so a test
    can stop half-way through the handshake."""

    def __init__(self, pki, port: int, name: str):
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=name)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.out.read()

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("EOF during the handshake")
                self.inc.write(data)

    def _flush(self):
        out = self.out.read()
        if out:
            self.sock.sendall(out)

    def request(self, host: str, path: str = "/") -> bytes:
        self.obj.write(get_close(host, path))
        self._flush()
        body = b""
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:  # close_notify
                    return body
                body += chunk
            except ssl.SSLWantReadError:
                data = self.sock.recv(65536)
                if not data:
                    return body
                self.inc.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return body

    def peer_cn(self) -> str:
        cert = self.obj.getpeercert()
        return dict(x[0] for x in cert["subject"])["commonName"]

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# HTTPS basics


def test_https_get_with_curl(switchyard, pki):
    p = free_port()
    sy = switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    r = curl(pki, p, "a.test", "/hello?x=1")
    assert r.returncode == 0, r.stderr.decode()
    body = r.stdout.decode()
    assert re.fullmatch(r"a\.test https on TLSv1\.3 TLS_\w+ sni=a\.test\n", body), body
    assert curl_subject(r) == "a.test"
    trace = r.stderr.decode()
    assert "ALPN: server accepted http/1.1" in trace
    sy.wait_access_log(r'"GET /hello\?x=1 HTTP/1\.1" 200 ')


@pytest.mark.parametrize("version,args", [
    ("TLSv1.3", ["--tlsv1.3"]),
    ("TLSv1.2", ["--tlsv1.2", "--tls-max", "1.2"]),
])
def test_tls_versions_with_curl(switchyard, pki, version, args):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    r = curl(pki, p, "a.test", "/", *args)
    assert r.returncode == 0, r.stderr.decode()
    assert f" {version} " in r.stdout.decode()
    assert f"SSL connection using {version}" in r.stderr.decode()


@pytest.mark.parametrize("flag,version", [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_tls_versions_with_s_client(switchyard, pki, flag, version):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    rc, out = s_client(pki, p, flag, name="a.test", data=get_close("a.test"))
    assert rc == 0, out
    assert re.search(rf"Protocol\s*:\s*{re.escape(version)}", out), out
    assert "Verify return code: 0 (ok)" in out
    assert "HTTP/1.1 200 OK" in out
    assert f"a.test https on {version} " in out


def test_keepalive_and_pipelining_over_tls(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               body='location / { return 200 "uri=$uri n=$connection_requests"; }')))
    c = tls_http(pki, p, "a.test")
    try:
        for i in range(3):
            r = c.request("GET", f"/k{i}", headers=[("Host", "a.test")])
            assert r.status == 200 and r.text == f"uri=/k{i} n={i + 1}"
        # two requests in one write, and a head split over many small writes
        c.send(b"GET /p1 HTTP/1.1\r\nHost: a.test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert c.read_response().text == "uri=/p1 n=4"
        assert c.read_response().text == "uri=/p2 n=5"
        for piece in [b"GET /sp", b"lit HTTP/1.1\r\n", b"Host: a.", b"test\r\n", b"\r\n"]:
            c.send(piece)
        assert c.read_response().text == "uri=/split n=6"
    finally:
        c.close()


# --------------------------------------------------------------------------
# SNI, certificates


def test_sni_chooses_among_three_servers(switchyard, pki):
    p = free_port()
    servers = [tls_server(p, n, [pki.cert(n)],
                          body=f'location / {{ return 200 "server {n} sni=$ssl_server_name"; }}')
               for n in ("a.test", "b.test", "c.test")]
    switchyard(conf(*servers))
    for n in ("a.test", "b.test", "c.test", "a.test"):
        r = curl(pki, p, n)
        assert r.returncode == 0, r.stderr.decode()
        assert curl_subject(r) == n
        assert r.stdout.decode() == f"server {n} sni={n}"
    # no SNI at all (an IP address): the default server and its certificate
    rc, out = s_client(pki, p, data=get_close("c.test"))
    assert re.search(r"subject=CN\s*=\s*a\.test", out), out
    assert "server c.test sni=" in out  # Host still picks the server{} for the request
    # a name no server has: the default server's certificate
    rc, out = s_client(pki, p, name="other.test", data=get_close("other.test"))
    assert re.search(r"subject=CN\s*=\s*a\.test", out), out


def test_sni_follows_server_name_rules(switchyard, pki):
    """Wildcards and the default_server flag count for SNI as for Host."""
    p = free_port()
    switchyard(conf(
        tls_server(p, "a.test", [pki.cert("a.test")], body='location / { return 200 "A"; }'),
        tls_server(p, "*.test", [pki.cert("b.test")], body='location / { return 200 "wild"; }'),
        tls_server(p, "c.test", [pki.cert("c.test")], body='location / { return 200 "C"; }',
                   listen_extra=" default_server"),
    ))
    rc, out = s_client(pki, p, name="zzz.test", data=get_close("zzz.test"))
    assert re.search(r"subject=CN\s*=\s*b\.test", out), out
    rc, out = s_client(pki, p, name="unknown.example", data=get_close("x"))
    assert re.search(r"subject=CN\s*=\s*c\.test", out), out
    assert "\r\n\r\nC" in out, out


@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_rsa_and_ecdsa_certificates_in_one_server(switchyard, pki, flag):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test", "rsa"), pki.cert("a.test", "ec")])))
    ec_algs = "ecdsa_secp256r1_sha256"
    rsa_algs = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"
    extra = ["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"] \
        if flag == "-tls1_2" else []
    rc, out = s_client(pki, p, flag, "-sigalgs", ec_algs, *extra, name="a.test",
                       data=get_close("a.test"))
    assert rc == 0, out
    assert "Server public key is 256 bit" in out, out
    assert "HTTP/1.1 200" in out
    rc, out = s_client(pki, p, flag, "-sigalgs", rsa_algs, *extra, name="a.test",
                       data=get_close("a.test"))
    assert rc == 0, out
    assert "Server public key is 2048 bit" in out, out


def test_certificate_chain_is_sent(switchyard, pki):
    """The file holds leaf + intermediate; clients trusting only the root
    verify it, so the intermediate was sent."""
    p = free_port()
    switchyard(conf(tls_server(p, "d.test", [pki.chain_cert])))
    r = curl(pki, p, "d.test")
    assert r.returncode == 0, r.stderr.decode()
    assert curl_subject(r) == "d.test"
    rc, out = s_client(pki, p, "-showcerts", name="d.test", data=get_close("d.test"))
    assert rc == 0, out
    assert out.count("BEGIN CERTIFICATE") == 2


def test_leaf_without_its_intermediate_does_not_verify(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(p, "d.test", [pki.leaf_only])))
    r = curl(pki, p, "d.test")
    assert r.returncode != 0


# --------------------------------------------------------------------------
# sessions, protocols, ciphers, ALPN, dhparam


def resume(pki, p, flag, tmp_path):
    sess = tmp_path / f"sess{flag}.pem"
    rc, first = s_client(pki, p, flag, "-sess_out", str(sess), name="a.test",
                         data=get_close("a.test"))
    assert rc == 0, first
    rc, second = s_client(pki, p, flag, "-sess_in", str(sess), name="a.test",
                          data=get_close("a.test"))
    assert rc == 0, second
    assert "HTTP/1.1 200" in second
    return first, second


@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_session_resumption_with_tickets(switchyard, pki, flag, tmp_path):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    first, second = resume(pki, p, flag, tmp_path)
    assert re.search(r"^New, ", first, re.M), first
    assert re.search(r"^Reused, ", second, re.M), second


@pytest.mark.parametrize("cache", ["shared:SSL:1m", "builtin:1000", "builtin shared:X:1m"])
def test_session_resumption_with_the_session_cache(switchyard, pki, tmp_path, cache):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               extra=f"ssl_session_cache {cache}; ssl_session_tickets off; "
                                     "ssl_session_timeout 10m;")))
    first, second = resume(pki, p, "-tls1_2", tmp_path)
    assert re.search(r"^Reused, ", second, re.M), second
    assert "TLS session ticket:" not in second


def test_no_resumption_when_cache_off_and_tickets_off(switchyard, pki, tmp_path):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               extra="ssl_session_cache off; ssl_session_tickets off;")))
    for flag in ("-tls1_2", "-tls1_3"):
        sess = tmp_path / f"sess{flag}.pem"
        rc, out = s_client(pki, p, flag, "-sess_out", str(sess), name="a.test",
                           data=get_close("a.test"))
        assert rc == 0, out
        if not sess.exists():
            continue  # nothing resumable was even offered
        rc, out = s_client(pki, p, flag, "-sess_in", str(sess), name="a.test",
                           data=get_close("a.test"))
        assert re.search(r"^New, ", out, re.M), out


@pytest.mark.switchyard_only
def test_session_of_one_server_not_resumed_on_another(switchyard, pki, tmp_path):
    """Sessions are bound to the server's certificates (session id context,
    checked after SNI chose the server). nginx 1.22 resumes b.test's session
    on a connection for a.test (it looks sessions up before switching
    contexts); Switchyard makes a full handshake with a.test's certificate."""
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")]),
                    tls_server(p, "b.test", [pki.cert("b.test")])))
    sess = tmp_path / "s.pem"
    rc, out = s_client(pki, p, "-tls1_2", "-sess_out", str(sess), name="b.test",
                       data=get_close("b.test"))
    assert rc == 0, out
    rc, out = s_client(pki, p, "-tls1_2", "-sess_in", str(sess), name="b.test",
                       data=get_close("b.test"))
    assert re.search(r"^Reused, ", out, re.M), out
    rc, out = s_client(pki, p, "-tls1_2", "-sess_in", str(sess), name="a.test",
                       data=get_close("a.test"))
    assert re.search(r"^New, ", out, re.M), out
    assert re.search(r"subject=CN\s*=\s*a\.test", out), out


def test_ssl_protocols(switchyard, pki):
    p13, p12 = free_port(), free_port()
    switchyard(conf(tls_server(p13, "a.test", [pki.cert("a.test")], extra="ssl_protocols TLSv1.3;"),
                    tls_server(p12, "a.test", [pki.cert("a.test")], extra="ssl_protocols TLSv1.2;")))
    assert s_client(pki, p13, "-tls1_3", name="a.test", data=get_close("a.test"))[0] == 0
    rc, out = s_client(pki, p13, "-tls1_2", name="a.test", data=get_close("a.test"))
    assert rc != 0 and "HTTP/1.1" not in out
    assert s_client(pki, p12, "-tls1_2", name="a.test", data=get_close("a.test"))[0] == 0
    rc, out = s_client(pki, p12, "-tls1_3", name="a.test", data=get_close("a.test"))
    assert rc != 0 and "HTTP/1.1" not in out


@pytest.mark.switchyard_only
def test_default_protocols_are_tls12_and_tls13(switchyard, pki):
    p = free_port()
    switchyard(http_conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    for flag in ("-tls1_2", "-tls1_3"):
        assert s_client(pki, p, flag, name="a.test", data=get_close("a.test"))[0] == 0
    # TLS 1.1: refused by the server (the client is told to allow it)
    rc, out = s_client(pki, p, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", name="a.test",
                       data=get_close("a.test"))
    assert rc != 0 and "HTTP/1.1" not in out


@pytest.mark.parametrize("prefer,expect", [("on", "ECDHE-RSA-AES128-GCM-SHA256"),
                                           ("off", "ECDHE-RSA-AES256-GCM-SHA384")])
def test_ssl_ciphers_and_server_preference(switchyard, pki, prefer, expect):
    p = free_port()
    switchyard(conf(tls_server(
        p, "a.test", [pki.cert("a.test")],
        extra="ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384; "
              f"ssl_prefer_server_ciphers {prefer};")))
    rc, out = s_client(pki, p, "-tls1_2", "-cipher",
                       "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
                       name="a.test", data=get_close("a.test"))
    assert rc == 0, out
    assert f"Cipher is {expect}" in out, out
    # a cipher outside ssl_ciphers is refused
    rc, out = s_client(pki, p, "-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305",
                       name="a.test", data=get_close("a.test"))
    assert rc != 0


def test_ssl_dhparam_enables_dhe(switchyard, pki, tmp_path):
    dh = tmp_path / "dh.pem"
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                    "group:ffdhe2048", "-out", str(dh)], check=True, capture_output=True)
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               extra=f"ssl_dhparam {dh}; ssl_ciphers DHE-RSA-AES128-GCM-SHA256;")))
    rc, out = s_client(pki, p, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256",
                       name="a.test", data=get_close("a.test"))
    assert rc == 0, out
    assert "Cipher is DHE-RSA-AES128-GCM-SHA256" in out


def test_ssl_ecdh_curve(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               extra="ssl_ecdh_curve secp384r1;")))
    for flag in ("-tls1_3", "-tls1_2"):
        rc, out = s_client(pki, p, flag, name="a.test", data=get_close("a.test"))
        assert rc == 0, out
        assert re.search(r"Server Temp Key: ECDH, (secp384r1|P-384)", out), out


def test_alpn_offers_http11_only(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    rc, out = s_client(pki, p, "-alpn", "h2,http/1.1", name="a.test", data=get_close("a.test"))
    assert rc == 0 and "ALPN protocol: http/1.1" in out, out
    rc, out = s_client(pki, p, "-alpn", "h2", name="a.test", data=get_close("a.test"))
    assert rc != 0 and "no application protocol" in out, out


# --------------------------------------------------------------------------
# plain HTTP on the TLS port, failed and stalled handshakes


def test_plain_http_to_tls_port_gets_400_page(sy_info, pki):
    p = free_port()
    sy = sy_info(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    raw = harness.raw_request(p, b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), raw
    assert b"\r\nConnection: close" in head
    assert b"<title>400 The plain HTTP request was sent to HTTPS port</title>" in body
    assert b"<center>The plain HTTP request was sent to HTTPS port</center>" in body
    sy.wait_log(r"\[info\] .*client sent plain HTTP request to HTTPS port while reading client "
                r'request headers, client: 127\.0\.0\.1, server: a\.test, request: "GET /x HTTP/1\.1"')
    sy.wait_access_log(r'"GET /x HTTP/1\.1" 400 ')
    # garbage that is neither TLS nor HTTP: an ordinary 400
    raw = harness.raw_request(p, b"GARBAGE\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"plain HTTP" not in raw
    # and TLS still works on the port
    assert curl(pki, p, "a.test").returncode == 0


def test_error_page_497_redirects_plain_http(switchyard, pki):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               extra="error_page 497 https://$host:$server_port$request_uri;")))
    raw = harness.raw_request(p, b"GET /y?z=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 302 "), raw
    assert f"\r\nLocation: https://a.test:{p}/y?z=1\r\n".encode() in raw


def test_handshake_failure_is_logged_and_closed(sy_info, pki):
    p = free_port()
    sy = sy_info(conf(tls_server(p, "a.test", [pki.cert("a.test")])))
    rc, out = s_client(pki, p, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
                       name="a.test")
    assert rc != 0
    sy.wait_log(r"\[info\] .*SSL_do_handshake\(\) failed \(SSL: error:[0-9A-F]+:SSL routines:"
                r":no shared cipher\) while SSL handshaking, client: 127\.0\.0\.1, "
                rf"server: 127\.0\.0\.1:{p}")
    # a handshake record full of garbage
    raw = harness.raw_request(p, b"\x16\x03\x01\x00\x20" + b"\xff" * 32, timeout=3)
    assert not raw.startswith(b"HTTP/")
    sy.wait_log(r"SSL_do_handshake\(\) failed .* while SSL handshaking")
    # a client leaving mid-handshake
    s = socket.create_connection(("127.0.0.1", p))
    s.sendall(client_hello()[:40])
    s.close()
    sy.wait_log(r"(peer closed connection in SSL handshake|SSL_do_handshake\(\) failed "
                r"\(SSL: error:\w+:SSL routines::unexpected eof while reading\)) while SSL "
                r"handshaking")
    assert curl(pki, p, "a.test").returncode == 0
    assert sy.running()


def test_client_stalling_mid_handshake_closed_at_client_header_timeout(sy_info, pki):
    p = free_port()
    sy = sy_info(conf(tls_server(p, "a.test", [pki.cert("a.test")]),
                      extra_http="client_header_timeout 1s;"))
    hello = client_hello()
    assert hello[0] == 0x16 and len(hello) > 100
    s = socket.create_connection(("127.0.0.1", p))
    try:
        s.sendall(hello[: len(hello) // 2])
        t0 = time.monotonic()
        data = read_until_close(s, timeout=6)
        dt = time.monotonic() - t0
    finally:
        s.close()
    assert data == b""
    assert 0.7 <= dt < 3.0, dt
    sy.wait_log(r"\[info\] .*client timed out \(110: Connection timed out\) while SSL "
                rf"handshaking, client: 127\.0\.0\.1, server: 127\.0\.0\.1:{p}")
    # a client that connects and sends nothing is closed at the same deadline
    s = socket.create_connection(("127.0.0.1", p))
    t0 = time.monotonic()
    assert read_until_close(s, timeout=6) == b""
    assert time.monotonic() - t0 < 3.0
    s.close()


# --------------------------------------------------------------------------
# configuration test (-t)


def t_conf(pki, pairs, extra="", listen_extra="") -> str:
    return conf(tls_server(free_port(), "a.test", pairs, extra=extra, listen_extra=listen_extra))


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_t_certificate_key_mismatch(sy_t, pki, tmp_path):
    crt, _ = pki.cert("a.test")
    _, bkey = pki.cert("b.test")
    text = t_conf(pki, [(crt, bkey)])
    rc, out = sy_t(text)
    assert rc == 1, out
    assert re.search(rf'\[emerg\] .*SSL_CTX_use_PrivateKey\("{re.escape(str(bkey))}"\) failed '
                     r"\(SSL: error:05800074:x509 certificate routines::key values mismatch\)",
                     out), out
    assert "test failed" in out
    if not IS_NGINX:
        conf_path = tmp_path / "t" / "sy-t.conf"
        assert out.split("\n")[0].endswith(
            f" in {conf_path}:{line_of(text, 'ssl_certificate_key')}"), out


@pytest.mark.switchyard_only
def test_t_ecdsa_key_with_rsa_certificate(sy_t, pki):
    """nginx accepts this pair (OpenSSL files the key under its own type) and
    the RSA certificate has no key at handshake time; Switchyard refuses it."""
    crt, _ = pki.cert("a.test", "rsa")
    _, eckey = pki.cert("a.test", "ec")
    rc, out = sy_t(t_conf(pki, [(crt, eckey)]))
    assert rc == 1, out


@pytest.mark.parametrize("what", ["missing cert", "garbage cert", "missing key", "garbage key"])
def test_t_unreadable_certificate_or_key(sy_t, pki, tmp_path, what):
    crt, key = pki.cert("a.test")
    bad = tmp_path / ("garbage.pem" if "garbage" in what else "missing.pem")
    if "garbage" in what:
        bad.write_text("this is not PEM\n")
    pair = (bad, key) if "cert" in what else (crt, bad)
    text = t_conf(pki, [pair])
    rc, out = sy_t(text)
    assert rc == 1, out
    kind = "certificate" if "cert" in what else "certificate key"
    func = ("BIO_new_file" if "missing" in what else
            "PEM_read_bio_X509_AUX" if "cert" in what else "PEM_read_bio_PrivateKey")
    assert re.search(rf'\[emerg\] .*cannot load {kind} "{re.escape(str(bad))}": {func}\(\) '
                     r"failed \(SSL: error:", out), out
    if not IS_NGINX:
        directive = "ssl_certificate " if "cert" in what else "ssl_certificate_key"
        conf_path = tmp_path / "t" / "sy-t.conf"
        assert out.split("\n")[0].endswith(f" in {conf_path}:{line_of(text, directive)}"), out


def test_t_expired_certificate_warns_and_passes(sy_t, pki):
    rc, out = sy_t(t_conf(pki, [pki.expired]))
    assert rc == 0, out
    assert "test is successful" in out
    if not IS_NGINX:
        assert re.search(rf'\[warn\] certificate "{re.escape(str(pki.expired[0]))}" expired on '
                         r"Feb  1 00:00:00 2020 GMT in \S+:\d+", out), out


def test_t_listen_ssl_without_certificate(sy_t, tmp_path):
    p = free_port()
    text = http_conf(f"server {{\n    listen 127.0.0.1:{p} ssl;\n    server_name x;\n}}")
    rc, out = sy_t(text)
    assert rc == 1, out
    conf_path = tmp_path / "t" / "sy-t.conf"
    assert re.search(r'\[emerg\] .*no "ssl_certificate" is defined for the "listen \.\.\. ssl" '
                     rf"directive in {re.escape(str(conf_path))}:\d+", out), out


def test_t_missing_dhparam(sy_t, pki, tmp_path):
    rc, out = sy_t(t_conf(pki, [pki.cert("a.test")], extra=f"ssl_dhparam {tmp_path}/nodh.pem;"))
    assert rc == 1, out
    assert re.search(r"\[emerg\] .*nodh\.pem", out), out


def test_t_bad_cipher_list(sy_t, pki):
    rc, out = sy_t(t_conf(pki, [pki.cert("a.test")], extra="ssl_ciphers NO-SUCH-CIPHER;"))
    assert rc == 1, out
    assert re.search(r'\[emerg\] .*SSL_CTX_set_cipher_list\("NO-SUCH-CIPHER"\) failed', out), out


def test_t_bad_ecdh_curve(sy_t, pki):
    rc, out = sy_t(t_conf(pki, [pki.cert("a.test")], extra="ssl_ecdh_curve no-such-curve;"))
    assert rc == 1, out
    assert re.search(r'\[emerg\] .*SSL_CTX_set1_curves_list\("no-such-curve"\) failed', out), out


def test_t_stapling_is_ignored_with_a_warning(sy_t, pki):
    rc, out = sy_t(t_conf(pki, [pki.cert("a.test")],
                          extra=f"ssl_stapling on; ssl_stapling_verify on; "
                                f"ssl_trusted_certificate {pki.ca};"))
    assert rc == 0, out
    assert re.search(r'\[warn\] .*"ssl_stapling" ignored', out), out


def test_t_unreadable_trusted_certificate(sy_t, pki, tmp_path):
    rc, out = sy_t(t_conf(pki, [pki.cert("a.test")],
                          extra=f"ssl_trusted_certificate {tmp_path}/none.pem;"))
    assert rc == 1, out
    assert re.search(r'\[emerg\] .*SSL_CTX_load_verify_locations\(".*none\.pem"\) failed', out), out


def test_t_certificate_in_http_block_inherited(sy_t, pki):
    c, k = pki.cert("a.test")
    p = free_port()
    text = conf(f"server {{ listen 127.0.0.1:{p} ssl; server_name a; }}\n"
                f"server {{ listen 127.0.0.1:{p} ssl; server_name b; }}",
                extra_http=f"ssl_certificate {c}; ssl_certificate_key {k};")
    rc, out = sy_t(text)
    assert rc == 0, out


# --------------------------------------------------------------------------
# variables, redirects, proxying, static files


def test_scheme_and_ssl_variables(switchyard, pki):
    tp, hp = free_port(), free_port()
    body = 'location / { return 200 "[$scheme] [$https] [$ssl_protocol] [$ssl_server_name]"; }'
    switchyard(conf(tls_server(tp, "a.test", [pki.cert("a.test")], body=body),
                    f"server {{ listen 127.0.0.1:{hp}; server_name a.test; {body} }}"))
    r = curl(pki, tp, "a.test", "/", "--tlsv1.2", "--tls-max", "1.2")
    assert r.stdout.decode() == "[https] [on] [TLSv1.2] [a.test]"
    plain = harness.request(hp, "GET", "/", headers=[("Host", "a.test")])
    assert plain.text == "[http] [] [] []"


def test_http_to_https_redirect_server(switchyard, pki):
    tp, hp = free_port(), free_port()
    switchyard(conf(
        f"server {{ listen 127.0.0.1:{hp}; server_name a.test; "
        f"return 301 https://$host$request_uri; }}",
        f"server {{ listen 127.0.0.1:{hp}; server_name b.test; "
        f"return 301 https://$host:{tp}$request_uri; }}",
        tls_server(tp, "b.test", [pki.cert("b.test")],
                   body='location / { return 200 "secure $request_uri"; }')))
    r = harness.request(hp, "GET", "/path?q=1", headers=[("Host", "a.test")])
    assert r.status == 301
    assert r.header("Location") == "https://a.test/path?q=1"
    # the whole round trip with curl following the redirect
    rr = subprocess.run(["curl", "-sS", "-L", "--max-time", "10", "--cacert", str(pki.ca),
                         "--resolve", f"b.test:{hp}:127.0.0.1",
                         "--resolve", f"b.test:{tp}:127.0.0.1", f"http://b.test:{hp}/p?x=2"],
                        capture_output=True, timeout=30)
    assert rr.returncode == 0, rr.stderr.decode()
    assert rr.stdout.decode() == "secure /p?x=2"


def test_proxy_over_tls(switchyard, pki, origin):
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")], body=(
        "location / { proxy_pass http://%s; proxy_set_header Host $host; "
        "proxy_set_header X-Forwarded-Proto $scheme; client_max_body_size 16m; }" % origin.addr))))
    r = curl(pki, p, "a.test", "/echo?x=1")
    assert r.returncode == 0, r.stderr.decode()
    rec = origin.requests[-1]
    hdrs = {k.lower(): v for k, v in rec["headers"]}
    assert hdrs["x-forwarded-proto"] == "https"
    assert hdrs["host"] == "a.test"
    # a large response and a large request body, both through TLS
    n = 6 * 1024 * 1024 + 123
    c = tls_http(pki, p, "a.test", timeout=30)
    try:
        resp = c.request("GET", f"/bytes/{n}", headers=[("Host", "a.test")])
        assert resp.status == 200 and resp.body_len == n
        body = os.urandom(3 * 1024 * 1024)
        resp = c.request("POST", "/up", headers=[("Host", "a.test"),
                                                 ("Content-Length", str(len(body)))], body=body)
        assert resp.status == 200
        assert resp.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    finally:
        c.close()


def test_static_files_over_tls(switchyard, pki, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    big = hashlib.sha256(b"x").digest() * (5 * 1024 * 1024 // 32 + 7)  # ~5 MiB, not 16K-aligned
    (root / "big.bin").write_bytes(big)
    (root / "small.txt").write_text("small file\n")
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               body=f"location / {{ root {root}; }}")))
    r = curl(pki, p, "a.test", "/big.bin")
    assert r.returncode == 0
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(big).hexdigest()
    c = tls_http(pki, p, "a.test", timeout=30)
    try:
        resp = c.request("GET", "/small.txt", headers=[("Host", "a.test")])
        assert resp.body == b"small file\n"
        resp = c.request("GET", "/big.bin", headers=[("Host", "a.test"),
                                                    ("Range", "bytes=100000-2200000")])
        assert resp.status == 206 and resp.body == big[100000:2200001]
        resp = c.request("HEAD", "/big.bin", headers=[("Host", "a.test")])
        assert resp.header("Content-Length") == str(len(big)) and resp.body_len == 0
        # still in step after all that
        resp = c.request("GET", "/small.txt", headers=[("Host", "a.test")])
        assert resp.body == b"small file\n"
    finally:
        c.close()


def test_slow_reader_of_a_large_file_over_tls(switchyard, pki, tmp_path):
    """The client reads slowly: SSL_write hits WANT_WRITE again and again
    and must be retried with the same bytes."""
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(4 * 1024 * 1024 + 5)
    (root / "f.bin").write_bytes(data)
    p = free_port()
    switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")],
                               body=f"location / {{ root {root}; }}")))
    raw = socket.create_connection(("127.0.0.1", p), timeout=30)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    s = ctx.wrap_socket(raw, server_hostname="a.test")
    try:
        s.sendall(get_close("a.test", "/f.bin"))
        got = bytearray()
        while True:
            b = s.recv(8192)
            if not b:
                break
            got += b
            if len(got) < 1024 * 1024:
                time.sleep(0.001)
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert body == data
    finally:
        s.close()


# --------------------------------------------------------------------------
# WebSocket over wss://


def wss_conf(pki, p: int, backend_addr: str, kind: str = "second", extra_main: str = "") -> str:
    loc = ws_location(kind, backend_addr)
    return conf(tls_server(p, "a.test", [pki.cert("a.test")], body=loc),
                extra_main=extra_main).replace("worker_connections 1024;",
                                               "worker_connections 4096;")


def wss_connect(pki, port: int, path: str = "/ws", **kw):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    opts = dict(ping_interval=None, compression=None, max_size=64 << 20, open_timeout=30,
                close_timeout=10, ssl=ctx, host="127.0.0.1", port=port,
                server_hostname="a.test")
    opts.update(kw)
    return websockets.connect(f"wss://a.test:{port}{path}", **opts)


def test_wss_echo(switchyard, ws_backend, pki):
    be = ws_backend("ws")
    p = free_port()
    switchyard(wss_conf(pki, p, be.addr))

    async def talk():
        async with wss_connect(pki, p) as ws:
            await ws.send("hello over tls")
            assert await ws.recv() == "hello over tls"
            blob = os.urandom(3 * 1024 * 1024)
            await ws.send(blob)
            assert await ws.recv() == blob
            await ws.send("__headers__")
            return json.loads(await ws.recv())

    rec = run(talk(), 60)
    hdrs = {k.lower(): v for k, v in rec["headers"]}
    assert hdrs["x-forwarded-proto"] == "https"


@pytest.mark.parametrize("n", [200, pytest.param(1000, marks=pytest.mark.slow)])
def test_concurrent_wss_connections(switchyard, ws_backend, pki, n):
    be = ws_backend("ws", quiet=True)
    p = free_port()
    switchyard(wss_conf(pki, p, be.addr, extra_main="worker_rlimit_nofile 8192;"))

    async def one(i, sem):
        async with sem:
            ws = await wss_connect(pki, p, f"/ws/c{i}")
        ok = 0
        for r in range(3):
            msg = f"{i}:{r}:" + "x" * ((i * 13 + r) % 3000)
            await ws.send(msg)
            ok += (await ws.recv()) == msg
        return ws, ok

    async def main():
        sem = asyncio.Semaphore(50)
        res = await asyncio.gather(*(one(i, sem) for i in range(n)))
        assert be.stats()["open_ws"] == n
        await asyncio.gather(*(ws.close() for ws, _ in res))
        return sum(ok for _, ok in res)

    assert run(main(), 120) == 3 * n
    wait_until(lambda: be.stats()["open_ws"] == 0, 10, "all WebSockets closed at the backend")


@pytest.mark.switchyard_only
@pytest.mark.slow
def test_idle_wss_connections_memory(switchyard, ws_backend, pki):
    """500 idle wss tunnels: OpenSSL's buffers are released when idle, so
    each costs the proxy about 12 KiB (OpenSSL's per-connection state; the
    tunnel itself is under 1 KiB). Meaningless under a sanitizer."""
    if harness.binary_is_sanitized():
        pytest.skip("RSS is not comparable under AddressSanitizer")
    be = ws_backend("ws", quiet=True)
    p = free_port()
    sy = switchyard(wss_conf(pki, p, be.addr, kind="first",
                             extra_main="worker_rlimit_nofile 8192;"))
    n = 500

    async def open_n(count, tag, sem):
        async def one(i):
            async with sem:
                ws = await wss_connect(pki, p, f"/ws/{tag}{i}")
                await ws.send("x")
                assert await ws.recv() == "x"
                return ws
        return await asyncio.gather(*(one(i) for i in range(count)))

    async def main():
        sem = asyncio.Semaphore(50)
        warm = await open_n(100, "w", sem)  # pools, arenas, OpenSSL caches
        await asyncio.gather(*(ws.close() for ws in warm))
        # the proxy has ended both sides of every warm-up tunnel once the
        # backend has seen them all close (nothing else runs on this loop)
        wait_until(lambda: be.stats()["open_ws"] == 0, 10, "the warm-up tunnels closed")
        base = sy.rss_kb()
        socks = await open_n(n, "i", sem)  # each has echoed: open and idle now
        after = sy.rss_kb()
        await asyncio.gather(*(ws.close() for ws in socks))
        return base, after

    base, after = run(main(), 180)
    per_conn = (after - base) * 1024 / n
    print(f"\nidle wss: RSS {base} KiB -> {after} KiB for {n}: {per_conn:.0f} bytes each")
    assert per_conn < 16 * 1024, f"{per_conn:.0f} bytes per idle wss connection"


# --------------------------------------------------------------------------
# reloads


@pytest.mark.switchyard_only
def test_reload_keeps_tls_connections_and_switches_certificates(switchyard, pki):
    """Switchyard reloads in place (nginx replaces its workers and closes idle
    keep-alive connections): an established TLS connection keeps working, one
    in the middle of its handshake finishes it on the generation it started
    with, new ones get the new certificate."""
    p = free_port()
    body = 'location / { return 200 "gen1"; }'
    sy = switchyard(conf(tls_server(p, "a.test", [pki.cert("a.test")], body=body)))
    c = tls_http(pki, p, "a.test")
    try:
        assert c.request("GET", "/", headers=[("Host", "a.test")]).text == "gen1"
        # a second connection stops half-way through its handshake
        m = MemTls(pki, p, "a.test")
        m.sock.sendall(m.hello[:30])
        # new config: the same name with its ECDSA certificate
        sy.reload(conf(tls_server(p, "a.test", [pki.cert("a.test", "ec")],
                                  body='location / { return 200 "gen2"; }')))
        # the established connection keeps working
        assert c.request("GET", "/", headers=[("Host", "a.test")]).status == 200
        # the one mid-handshake finishes it (on the generation it started with)
        m.sock.sendall(m.hello[30:])
        m.handshake()
        assert b"200 OK" in m.request("a.test")
        m.close()
        # new connections get the new certificate
        rc, out = s_client(pki, p, name="a.test", data=get_close("a.test"))
        assert "Server public key is 256 bit" in out and "\r\n\r\ngen2" in out, out
    finally:
        c.close()
