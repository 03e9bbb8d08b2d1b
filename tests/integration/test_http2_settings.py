"""HTTP/2 settings that nginx applies per connection or per location
(issue 13 item 2): http2_chunk_size bounds DATA frames, the connection's
limits come from the server SNI chose (else the address's default server),
and keepalive_time ends HTTP/2 connections with a GOAWAY."""

from __future__ import annotations

import time

import pytest

from h2_support import H2Client, RawH2, raw_headers, h2_server
from harness import free_port, http_conf
from tls_pki import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def get(path: str):
    return [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
            (":path", path)]


@pytest.mark.parametrize("chunk", [None, "4k"])
def test_chunk_size_bounds_data_frames(switchyard, tmp_path, chunk):
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 200)  # 51200 bytes
    p = free_port()
    loc = f"location / {{ root {tmp_path}; {f'http2_chunk_size {chunk};' if chunk else ''} }}"
    switchyard(http_conf(h2_server(p, body=loc)))
    limit = 4096 if chunk else 8192  # nginx's default is 8k
    with RawH2(p) as a:
        a.wait(lambda: a.server_settings)
        a.send(raw_headers(1, get("/big.bin")))
        assert a.wait(lambda: 1 in a.ended, 5)
        sizes = a.data_frames[1]
    assert sum(sizes) == 51200
    assert max(sizes) == limit, sizes


def test_connection_settings_come_from_the_sni_server(switchyard, pki):
    p = free_port()
    crt, key = pki.cert("a.test")
    crt2, key2 = pki.cert("b.test")
    switchyard(http_conf(
        h2_server(p, tls=(crt, key), server_name="a.test",
                  body="http2_max_concurrent_streams 50; location / { return 200 a; }")
        + h2_server(p, tls=(crt2, key2), server_name="b.test",
                    body="http2_max_concurrent_streams 7; location / { return 200 b; }")))
    with H2Client(p, tls=True, server_name="b.test", cafile=pki.ca) as c:
        assert c.wait_settings()[3] == 7  # SETTINGS_MAX_CONCURRENT_STREAMS
        assert c.request("GET", "/", authority="b.test").body == b"b"
    with H2Client(p, tls=True, server_name="a.test", cafile=pki.ca) as c:
        assert c.wait_settings()[3] == 50
    # An SNI name no server has ("localhost"): the address's default server's.
    with RawH2(p, tls=True) as a:
        assert a.wait(lambda: a.server_settings, 5)
        assert a.server_settings[3] == 50


def test_keepalive_time_ends_the_connection_with_goaway(switchyard):
    p = free_port()
    switchyard(http_conf(h2_server(p, body="keepalive_time 1s; location / { return 200 ok; }")))
    with H2Client(p, timeout=10) as c:
        assert c.request("GET", "/one").status == 200
        assert c.goaway is None
        # keepalive_time is a connection's age: let it pass, then the next
        # request is answered and the connection says goodbye.
        time.sleep(1.2)
        assert c.request("GET", "/two").status == 200
        ga = c.wait_goaway()
        assert ga.error_code == 0 and ga.last_stream_id == 3
        assert c.wait_closed(10)


def test_realip_over_http2(switchyard):
    p = free_port()
    switchyard(http_conf(h2_server(p, body=(
        "set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;\n"
        "    location / { return 200 \"$remote_addr $realip_remote_addr\"; }"))))
    with H2Client(p) as c:
        st = c.request("GET", "/", headers=[("x-forwarded-for", "203.0.113.7")])
    assert st.body == b"203.0.113.7 127.0.0.1"
