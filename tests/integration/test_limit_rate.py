"""limit_rate and limit_rate_after (issue 14, item 4): response bodies paced
per request, over HTTP/1.1 and HTTP/2, for static files, proxied and
compressed responses; the rate from the directive (with variables), from
`set $limit_rate`, or from an upstream's X-Accel-Limit-Rate; $limit_rate.

As nginx: the first `limit_rate_after` bytes and one second's worth go at
once, then rate bytes per second. Switchyard paces by the millisecond (nginx
by the second, so it runs a little slower): the bounds below hold for both
(run with SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

from backends import read_request_head
from harness import IS_NGINX, free_port, http_conf, request

SIZE = 300_000
RATE = 100 * 1024  # 100k


@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    (d / "f.bin").write_bytes(os.urandom(SIZE))
    (d / "t.txt").write_bytes(b"paced text compresses poorly when random? no: " * 8000)
    return d


def conf(port: int, www, extra: str = "") -> str:
    return http_conf(f"""
server {{
    listen 127.0.0.1:{port}{" http2" if not IS_NGINX else ""};
    root {www};
    location /slow/ {{ alias {www}/; limit_rate 100k; }}
    location /after/ {{ alias {www}/; limit_rate 100k; limit_rate_after 200k; }}
    location /set/ {{ alias {www}/; set $limit_rate 150k; }}
    location /arg/ {{ alias {www}/; limit_rate $arg_rate; }}
    location /gz/ {{ alias {www}/; limit_rate 100k; gzip on; gzip_types text/plain; }}
    location /show {{ set $limit_rate 64k; return 200 "rate=$limit_rate"; }}
    {extra}
}}
""")


def timed_get(port: int, path: str, *curl_args: str) -> tuple[int, float]:
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w",
                        "%{size_download} %{time_total}", *curl_args,
                        f"http://127.0.0.1:{port}{path}"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    size, secs = r.stdout.decode().split()
    return int(size), float(secs)


def paced_seconds(size: int, rate: int, after: int = 0) -> float:
    """What the pacing takes at least: nothing for the first second's worth
    and `after`, then `rate`."""
    return max(0.0, (size - after - rate) / rate)


def test_static_file_is_paced(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    size, secs = timed_get(port, "/slow/f.bin")
    assert size == SIZE
    assert paced_seconds(SIZE, RATE) * 0.9 <= secs <= paced_seconds(SIZE, RATE) + 1.5, secs
    size, secs = timed_get(port, "/f.bin")  # the same file, no limit
    assert size == SIZE and secs < 1.0, secs


def test_limit_rate_after_lets_the_start_go(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    size, secs = timed_get(port, "/after/f.bin")  # 200k + 100k burst covers 300 000
    assert size == SIZE and secs < 1.0, secs


def test_set_limit_rate_and_variables(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    size, secs = timed_get(port, "/set/f.bin")
    rate = 150 * 1024
    assert paced_seconds(SIZE, rate) * 0.9 <= secs <= paced_seconds(SIZE, rate) + 1.5, secs
    size, secs = timed_get(port, "/arg/f.bin?rate=300k")  # 1 s of 300k covers it: at once
    assert secs < 1.0, secs
    size, secs = timed_get(port, "/arg/f.bin?rate=120k")
    assert paced_seconds(SIZE, 120 * 1024) * 0.9 <= secs, secs
    assert request(port, "GET", "/show").body == b"rate=65536"


def test_compressed_body_is_paced_after_compression(switchyard, www):
    port = free_port()
    switchyard(conf(port, www))
    size, secs = timed_get(port, "/gz/t.txt", "-H", "Accept-Encoding: gzip")
    assert size < 100 * 1024 and secs < 1.0, (size, secs)  # the gzip output is what is paced


def test_proxied_body_and_x_accel_limit_rate(switchyard, raw_backend, www):
    body = os.urandom(150_000)

    def handler(s: socket.socket):
        while True:
            try:
                head = read_request_head(s)
            except (OSError, EOFError):
                return
            if not head:
                return
            extra = b"X-Accel-Limit-Rate: 50000\r\n" if b" /accel" in head else b""
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
                      + body)

    b = raw_backend(handler)
    port = free_port()
    switchyard(conf(port, www, extra=f"""
    location /p/ {{ proxy_pass http://127.0.0.1:{b.port}/; limit_rate 50k; }}
    location /accel {{ proxy_pass http://127.0.0.1:{b.port}; }}
    location /ignored {{ proxy_pass http://127.0.0.1:{b.port}/accel;
                        proxy_ignore_headers X-Accel-Limit-Rate; }}"""))
    size, secs = timed_get(port, "/p/x")
    assert size == 150_000
    assert paced_seconds(150_000, 50 * 1024) * 0.9 <= secs <= paced_seconds(150_000, 50 * 1024) + 1.5
    size, secs = timed_get(port, "/accel")
    assert size == 150_000
    assert paced_seconds(150_000, 50_000) * 0.9 <= secs <= paced_seconds(150_000, 50_000) + 1.5
    size, secs = timed_get(port, "/ignored")
    assert size == 150_000 and secs < 1.0, secs


@pytest.mark.switchyard_only
def test_http2_streams_are_paced_each_on_their_own(switchyard, www):
    """Two paced downloads on one HTTP/2 connection take the time of one:
    the limit is per stream, and a paced stream does not hold the other."""
    port = free_port()
    switchyard(conf(port, www))
    t0 = time.monotonic()
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "20",
                        "-o", "/dev/null", "-o", "/dev/null", "-w", "%{size_download} ",
                        "--parallel", "--parallel-immediate",
                        f"http://127.0.0.1:{port}/slow/f.bin",
                        f"http://127.0.0.1:{port}/slow/f.bin"],
                       capture_output=True, timeout=30)
    secs = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == [str(SIZE), str(SIZE)]
    assert paced_seconds(SIZE, RATE) * 0.9 <= secs <= paced_seconds(SIZE, RATE) + 1.5, secs
    # and an unpaced request on another stream is not held
    size, fast = timed_get(port, "/f.bin", "--http2-prior-knowledge")
    assert fast < 1.0


def test_invalid_values(sy_t):
    rc, out = sy_t(http_conf("server { location / { limit_rate fast; } }"))
    assert rc == 1 and '"limit_rate" directive invalid value' in out, out
    rc, out = sy_t(http_conf("server { location / { limit_rate_after 1x; } }"))
    assert rc == 1 and '"limit_rate_after" directive invalid value' in out, out
