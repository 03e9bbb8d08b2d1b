"""The one end-of-request path (issue 13 item 1): every request whose head
was accepted is logged exactly once, however it ends -- completed, cut by
the client mid-response, or abandoned before the upstream answered -- and
a WebSocket is logged once, by its tunnel, when it ends."""

from __future__ import annotations

import re
import socket

from harness import free_port, http_conf, wait_until


def lines_for(sy, path: str) -> list[str]:
    return [ln for ln in sy.access_log().splitlines() if f" {path} " in ln]


def test_client_gone_mid_response_is_logged_once(switchyard, origin):
    p = free_port()
    sy = switchyard(http_conf(f"server {{ listen 127.0.0.1:{p}; "
                              f"location / {{ proxy_pass http://{origin.addr}; }} }}"))
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    s.sendall(b"GET /cut/bytes/50000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    got = 0
    while got < 200_000:
        got += len(s.recv(65536))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST: the proxy's next write fails
    wait_until(lambda: lines_for(sy, "/cut/bytes/50000000"), 10, "the access log line")
    # another request on a new connection, logged after it: the cut one stays single
    s2 = socket.create_connection(("127.0.0.1", p), timeout=5)
    s2.sendall(b"GET /after/bytes/10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s2.recv(65536):
        pass
    s2.close()
    wait_until(lambda: lines_for(sy, "/after/bytes/10"), 10, "the second line")
    cut = lines_for(sy, "/cut/bytes/50000000")
    assert len(cut) == 1, cut
    m = re.search(r'" (\d{3}) (\d+) ', cut[0])
    assert m and m.group(1) == "200" and 0 < int(m.group(2)) < 50_000_000, cut[0]


def test_completed_requests_are_logged_once_each(switchyard, origin):
    p = free_port()
    sy = switchyard(http_conf(f"server {{ listen 127.0.0.1:{p}; "
                              f"location /local {{ return 200 ok; }} "
                              f"location / {{ proxy_pass http://{origin.addr}; }} }}"))
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    # three requests pipelined on one keep-alive connection
    s.sendall(b"GET /local HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /p/bytes/100 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /local?last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    wait_until(lambda: lines_for(sy, "/local?last"), 10, "the last line")
    assert len(lines_for(sy, "/local")) == 1
    assert len(lines_for(sy, "/p/bytes/100")) == 1
    assert len(lines_for(sy, "/local?last")) == 1
