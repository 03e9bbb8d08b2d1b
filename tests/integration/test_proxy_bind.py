"""proxy_bind and proxy_socket_rcvbuf/sndbuf: the upstream connection's
local address (a constant or variables; `off`; an empty value binds
nothing), and its socket buffers. Loopback accepts any 127.0.0.0/8 source.
Runs against nginx too (proxy_socket_* are newer than Debian's nginx).
"""

from __future__ import annotations

import socket

import pytest

from backends import read_request_head
from harness import free_port, http_conf, request


@pytest.fixture
def peer_echo(raw_backend):
    """A backend answering with the address its client connected from."""
    def handler(s: socket.socket):
        while True:
            try:
                head = read_request_head(s)
            except (OSError, EOFError):
                return
            if not head:
                return
            body = s.getpeername()[0].encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return raw_backend(handler)


def conf(port: int, b) -> str:
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port};
    location /fixed {{ proxy_pass http://127.0.0.1:{b.port}; proxy_bind 127.0.0.2; }}
    location /var {{ proxy_pass http://127.0.0.1:{b.port}; proxy_bind $arg_src; }}
    location /off {{ proxy_pass http://127.0.0.1:{b.port}; proxy_bind off; }}
    location /bad {{ proxy_pass http://127.0.0.1:{b.port}; proxy_bind $arg_src; }}
}}
""", extra_http="proxy_bind 127.0.0.3;")


def test_local_address_of_upstream_connections(switchyard, peer_echo):
    port = free_port()
    switchyard(conf(port, peer_echo))
    assert request(port, "GET", "/fixed").body == b"127.0.0.2"
    assert request(port, "GET", "/var?src=127.0.0.4").body == b"127.0.0.4"
    assert request(port, "GET", "/var").body == b"127.0.0.1"  # empty: no bind
    assert request(port, "GET", "/off").body == b"127.0.0.1"


def test_invalid_local_address_is_logged_and_not_bound(switchyard, peer_echo):
    port = free_port()
    sy = switchyard(conf(port, peer_echo))
    assert request(port, "GET", "/bad?src=nonsense").body == b"127.0.0.1"
    sy.wait_log(r'invalid local address "nonsense"')


def test_bind_failure_is_a_500_with_a_log_line(switchyard, peer_echo):
    port = free_port()
    sy = switchyard(conf(port, peer_echo))
    # an address no interface has (TEST-NET-1), not transparent
    assert request(port, "GET", "/bad?src=192.0.2.1").status == 500
    sy.wait_log(r"bind\(192\.0\.2\.1\) failed \(99: Cannot assign requested address\) while "
                r"connecting to upstream")


def test_t_checks(sy_t):
    rc, out = sy_t(http_conf("server { location / { proxy_bind 1.2.3.4 sideways; } }"))
    assert rc == 1 and 'invalid parameter "sideways"' in out, out
    rc, out = sy_t(http_conf("server { location / { proxy_bind nowhere; } }"))
    assert rc == 1 and 'invalid address "nowhere"' in out, out


@pytest.mark.switchyard_only
def test_socket_buffers(switchyard, peer_echo, sy_t):
    port = free_port()
    switchyard(http_conf(f"""
server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{peer_echo.port};
                 proxy_socket_rcvbuf 64k; proxy_socket_sndbuf 32k; }}
}}"""))
    assert request(port, "GET", "/").body == b"127.0.0.1"
    rc, out = sy_t(http_conf("server { location / { proxy_socket_rcvbuf lots; } }"))
    assert rc == 1 and '"proxy_socket_rcvbuf" directive invalid value' in out, out
