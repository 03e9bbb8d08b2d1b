"""proxy_pass with variables to an address or a name (nginx's run-time
peers): the docker-compose pattern `resolver 127.0.0.11 valid=30s; set $app
app:3000; proxy_pass http://$app;`. IP literals need no resolver; names are
looked up with the configured resolver (a DNS server in this test, real
UDP), cached for `valid=` (else the TTL), shared by concurrent requests;
NXDOMAIN and timeouts are nginx's 502 with nginx's log lines. Runs against
nginx too.
"""

from __future__ import annotations

import socket
import struct
import threading
import concurrent.futures

import pytest

from harness import free_port, http_conf, request, wait_until


class FakeDns:
    """A UDP DNS server on 127.0.0.1: `names` maps a name to IPv4 addresses
    (answered with TTL 60); `silent` names get no answer; others NXDOMAIN.
    AAAA questions get an empty NOERROR answer."""

    def __init__(self, names: dict[str, list[str]], silent=()):
        self.names = names
        self.silent = set(silent)
        self.queries: list[tuple[str, int]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(1500)
            except OSError:
                continue
            try:
                reply = self.answer(data)
            except Exception:  # a malformed query: no answer
                continue
            if reply:
                self.sock.sendto(reply, addr)

    def answer(self, q: bytes) -> bytes | None:
        qid = q[:2]
        o, labels = 12, []
        while q[o]:
            labels.append(q[o + 1:o + 1 + q[o]].decode())
            o += 1 + q[o]
        name = ".".join(labels).lower()
        qtype = struct.unpack("!H", q[o + 1:o + 3])[0]
        question = q[12:o + 5]
        self.queries.append((name, qtype))
        if name in self.silent:
            return None
        if name not in self.names:
            return qid + b"\x81\x83" + struct.pack("!HHHH", 1, 0, 0, 0) + question
        answers = b""
        n = 0
        if qtype == 1:
            for ip in self.names[name]:
                answers += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
                n += 1
        return qid + b"\x81\x80" + struct.pack("!HHHH", 1, n, 0, 0) + question + answers

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


@pytest.fixture
def dns():
    d = FakeDns({"app.test": ["127.0.0.1"], "two.test": ["127.0.0.1", "127.0.0.2"]},
                silent=["slow.test"])
    yield d
    d.close()


def conf(port: int, origin_port: int, dns_port: int | None, extra: str = "") -> str:
    resolver = (f"resolver 127.0.0.1:{dns_port} valid=30s;\n    resolver_timeout 2s;"
                if dns_port else "")
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port};
    {resolver}
    location /name/ {{ set $up app.test:{origin_port}; proxy_pass http://$up; }}
    location /two/ {{ set $up two.test:{origin_port}; proxy_pass http://$up;
                     add_header X-Up $upstream_addr; }}
    location /ip/ {{ set $up 127.0.0.1:{origin_port}; proxy_pass http://$up; }}
    location /nx/ {{ set $up nowhere.test:{origin_port}; proxy_pass http://$up; }}
    location /slow/ {{ set $up slow.test:{origin_port}; proxy_pass http://$up; }}
    location /arg/ {{ proxy_pass http://$arg_h; }}
    {extra}
}}""")


def test_ip_literal_needs_no_resolver(switchyard, origin):
    port = free_port()
    switchyard(conf(port, origin.port, None))
    r = request(port, "GET", "/ip/x?a=1")
    assert r.status == 200
    assert origin.last_request()["target"] == "/ip/x?a=1"
    assert request(port, "GET", f"/arg/?h=127.0.0.1:{origin.port}").status == 200


def test_name_without_resolver_is_nginx_502(switchyard, origin):
    port = free_port()
    sy = switchyard(conf(port, origin.port, None))
    assert request(port, "GET", "/name/").status == 502
    sy.wait_log(r"no resolver defined to resolve app\.test, client")


def test_name_is_looked_up_and_cached(switchyard, origin, dns):
    port = free_port()
    switchyard(conf(port, origin.port, dns.port))
    for _ in range(3):
        r = request(port, "GET", "/name/a")
        assert r.status == 200, r
    assert [q for q in dns.queries if q[0] == "app.test" and q[1] == 1] == [("app.test", 1)]


def test_several_addresses_are_balanced(switchyard, origin, dns):
    """two.test has 127.0.0.1 and 127.0.0.2; the origin listens on the first
    only: round robin tries both, and a refused one fails over."""
    port = free_port()
    switchyard(conf(port, origin.port, dns.port))
    ups = [request(port, "GET", "/two/").header("x-up") for _ in range(4)]
    p = origin.port
    assert f"127.0.0.2:{p}, 127.0.0.1:{p}" in ups, ups
    assert all(u.endswith(f"127.0.0.1:{p}") for u in ups), ups


def test_nxdomain_and_timeout_are_502_with_nginx_lines(switchyard, origin, dns):
    port = free_port()
    sy = switchyard(conf(port, origin.port, dns.port))
    assert request(port, "GET", "/nx/").status == 502
    sy.wait_log(r"nowhere\.test could not be resolved \(3: Host not found\)")
    assert request(port, "GET", "/slow/", timeout=10).status == 502
    sy.wait_log(r"slow\.test could not be resolved \(110: Operation timed out\)")


def test_concurrent_requests_share_one_lookup(switchyard, origin, dns):
    port = free_port()
    switchyard(conf(port, origin.port, dns.port))
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: request(port, "GET", "/name/c").status, range(8)))
    assert codes == [200] * 8
    assert len([q for q in dns.queries if q == ("app.test", 1)]) == 1
