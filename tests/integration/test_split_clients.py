"""split_clients (ngx_http_split_clients_module): the string's MurmurHash2
picks the part, with nginx's bounds, so every key lands in the bucket nginx
puts it in. The expected buckets are computed here with nginx's algorithm
and the test runs unchanged against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
Also over HTTP/2, and nginx's configuration errors."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness import fill, free_port, http_conf, request

M = 0x5bd1e995
MASK = 0xffffffff


def murmur2(data: bytes) -> int:
    """nginx's ngx_murmur_hash2 (seed 0)."""
    h = len(data) & MASK
    n = len(data)
    i = 0
    while n >= 4:
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * M) & MASK
        k ^= k >> 24
        k = (k * M) & MASK
        h = (h * M) & MASK
        h ^= k
        i += 4
        n -= 4
    if n == 3:
        h ^= data[i + 2] << 16
    if n >= 2:
        h ^= data[i + 1] << 8
    if n >= 1:
        h ^= data[i]
        h = (h * M) & MASK
    h ^= h >> 13
    h = (h * M) & MASK
    h ^= h >> 15
    return h


def bucket(key: str, parts) -> str:
    """parts: [(hundredths or None for "*", value)], nginx's bounds."""
    h = murmur2(key.encode())
    total = last = 0
    for pct, val in parts:
        total = total + pct if pct else 10000
        if pct and total < 10000:
            last += pct * 0xffffffff // 10000
            if h < last:
                return val
        else:
            return val
    return ""


PARTS_A = [(50, "half"), (200, "two"), (None, "rest")]
PARTS_B = [(3333, "x"), (3333, "y")]          # no "*": a third gets ""

CONF = r"""
split_clients "${arg_k}salt" $a { 0.5% half; 2% two; * rest; }
split_clients "$arg_k" $b { 33.33% x; 33.33% y; }
server {
    listen 127.0.0.1:@P@;
    listen 127.0.0.1:@Q@ http2;
    location / { return 200 "$a|$b"; }
}
"""

KEYS = [f"client-{i}" for i in range(300)] + ["", "a", "ab", "abc", "abcd", "abcde"]


@pytest.fixture
def sy(switchyard):
    p, q = free_port(), free_port()
    s = switchyard(http_conf(fill(CONF, P=p, Q=q)))
    s.p, s.q = p, q
    return s


def test_murmur_reference_values():
    # ngx_murmur_hash2 of known strings (checked against nginx through the
    # buckets below); guards the reference implementation itself
    assert murmur2(b"") == 0
    assert murmur2(b"abcd") != murmur2(b"abce")


def test_buckets_as_nginx(sy):
    seen_a, seen_b = set(), set()
    for k in KEYS:
        r = request(sy.p, "GET", f"/?k={k}")
        assert r.status == 200, r
        a, b = r.body.decode().split("|")
        assert a == bucket(k + "salt", PARTS_A), k
        assert b == bucket(k, PARTS_B), k
        seen_a.add(a)
        seen_b.add(b)
    assert {"two", "rest"} <= seen_a
    assert seen_b == {"x", "y", ""}


def test_same_bucket_over_http2(sy):
    if not shutil.which("curl"):
        pytest.skip("no curl")
    for k in KEYS[:20]:
        out = subprocess.run(["curl", "-sS", "--http2-prior-knowledge",
                              f"http://127.0.0.1:{sy.q}/?k={k}"],
                             capture_output=True, timeout=10, check=True).stdout.decode()
        assert out == f"{bucket(k + 'salt', PARTS_A)}|{bucket(k, PARTS_B)}", k


@pytest.mark.parametrize("body,msg", [
    ("split_clients $uri $s { 50% a; 60% b; }", "percent total is greater than 100%"),
    ("split_clients $uri $s { 0% a; }", 'invalid percent value "0%"'),
    ("split_clients $uri $s { 5 a; }", 'invalid percent value "5"'),
    ("split_clients $uri $s { 1.234% a; }", 'invalid percent value "1.234%"'),
    ("split_clients $uri s { * a; }", 'invalid variable name "s"'),
])
def test_errors(sy_t, body, msg):
    rc, out = sy_t(http_conf(body))
    assert rc != 0 and msg in out, out


def test_extra_words_ignored(sy_t):
    # nginx reads the value only; more words are not an error
    rc, out = sy_t(http_conf("split_clients $uri $s { 10% a b; * c; }"))
    assert rc == 0, out
