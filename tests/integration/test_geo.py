"""geo (ngx_http_geo_module): `geo [$address] $variable { ... }`, run against
Switchyard and nginx alike (SWITCHYARD_BIN=/usr/sbin/nginx).

CIDR form: IPv4 and IPv6 networks, longest prefix wins, `default`, `delete`,
`include`, IPv4-mapped IPv6 looked up as IPv4, an address that is not one
looks up 255.255.255.255; the client address ($remote_addr) when no address
is given; `proxy` / `proxy_recursive` with X-Forwarded-For. Ranges form:
`ranges`, start-end entries split by a later inner range, `delete`, the
default. Configuration errors and warnings with nginx's wording."""

from __future__ import annotations

import pytest

from harness import fill, free_port, http_conf, request

CONF = r"""
geo $http_x_addr $net {
    default        world;
    10.0.0.0/8     ten;
    10.1.0.0/16    ten-one;
    10.1.2.3       host;
    192.168.0.0/16 lan;
    delete         192.168.7.0/24;
    192.168.7.0/24 gone;
    delete         192.168.7.0/24;
    255.255.255.255 bcast;
    2001:db8::/32  doc6;
    2001:db8:1::/48 doc6-one;
    include        @INC@;
}
geo $client { default other; 127.0.0.0/8 loopback; }
geo $http_x_addr $nodefault { 10.0.0.0/8 ten; }
geo $http_x_addr $rng {
    ranges;
    default          none;
    10.0.0.0-10.0.255.255   a;
    10.0.1.0-10.0.1.255     b;
    10.1.255.0-10.2.0.255   wide;
    10.3.0.0-10.3.0.9       del;
    delete 10.3.0.0-10.3.0.9;
}
geo $proxied {
    proxy 127.0.0.1;
    default d;
    203.0.113.0/24 client;
    198.51.100.7 inner;
}
geo $recursive {
    proxy 127.0.0.1;
    proxy 198.51.100.0/24;
    proxy_recursive;
    default d;
    203.0.113.0/24 client;
    198.51.100.7 inner;
}
server {
    listen 127.0.0.1:@P@;
    location / { return 200 "$net|$client|$nodefault|$rng"; }
    location /p { return 200 "$proxied|$recursive"; }
}
"""


@pytest.fixture
def sy(switchyard, tmp_path):
    inc = tmp_path / "geo-inc.conf"
    inc.write_text("172.16.0.0/12 included;\n")
    p = free_port()
    s = switchyard(http_conf(fill(CONF, P=p, INC=str(inc))))
    s.p = p
    return s


def vals(sy, addr=None, path="/", headers=None):
    h = dict(headers or {})
    if addr is not None:
        h["X-Addr"] = addr
    r = request(sy.p, "GET", path, headers=h)
    assert r.status == 200, r
    return r.body.decode().split("|")


@pytest.mark.parametrize("addr,want", [
    ("10.9.9.9", "ten"),
    ("10.1.9.9", "ten-one"),
    ("10.1.2.3", "host"),
    ("10.1.2.4", "ten-one"),
    ("192.168.1.1", "lan"),
    ("192.168.7.1", "lan"),           # the /24 was deleted again
    ("172.20.0.1", "included"),
    ("8.8.8.8", "world"),
    ("2001:db8::1", "doc6"),
    ("2001:db8:1::1", "doc6-one"),
    ("2001:db9::1", "world"),
    ("::ffff:10.1.2.3", "host"),      # IPv4-mapped: the IPv4 tree
    ("not-an-address", "bcast"),      # nginx looks up 255.255.255.255
])
def test_cidr_longest_prefix(sy, addr, want):
    assert vals(sy, addr)[0] == want


def test_missing_address_and_no_default(sy):
    v = vals(sy)                      # no X-Addr: the variable is not found
    assert v[0] == "bcast"
    assert v[2] == ""                 # no default: empty
    assert vals(sy, "10.2.3.4")[2] == "ten"


def test_client_address_by_default(sy):
    assert vals(sy, "10.0.0.1")[1] == "loopback"


@pytest.mark.parametrize("addr,want", [
    ("10.0.0.5", "a"),
    ("10.0.1.7", "b"),                # inner range splits the outer one
    ("10.0.2.0", "a"),
    ("10.1.255.3", "wide"),           # a range across /16 blocks
    ("10.2.0.255", "wide"),
    ("10.2.1.0", "none"),
    ("10.3.0.5", "none"),             # deleted
    ("2001:db8::1", "none"),          # IPv6: the default
    ("junk", "none"),
])
def test_ranges(sy, addr, want):
    assert vals(sy, addr)[3] == want


def test_proxy_x_forwarded_for(sy):
    # the peer (127.0.0.1) is a trusted proxy: the last X-Forwarded-For address counts
    assert vals(sy, path="/p", headers={"X-Forwarded-For": "203.0.113.9"}) == ["client", "client"]
    # not recursive: the last one only; recursive: walked back while trusted
    v = vals(sy, path="/p", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert v == ["inner", "client"]
    assert vals(sy, path="/p") == ["d", "d"]


def test_errors_and_warnings(sy_t):
    rc, out = sy_t(http_conf("geo $g { 10.0.0.0/33 x; }"))
    assert rc != 0 and 'invalid network "10.0.0.0/33"' in out, out
    rc, out = sy_t(http_conf("geo $g { default a; ranges; }"))
    assert rc != 0 and 'the "ranges" directive must be the first directive inside "geo" block' in out, out
    rc, out = sy_t(http_conf("geo $g { 10.0.0.0/8 a b; }"))
    assert rc != 0 and "invalid number of the geo parameters" in out, out
    rc, out = sy_t(http_conf("geo $g { ranges; 10.0.0.0-10.0.0.255 a; 10.0.0.128-10.0.1.5 b; }"))
    assert rc != 0 and 'range "10.0.0.128-10.0.1.5" overlaps "10.0.0.0-10.0.0.255"' in out, out
    rc, out = sy_t(http_conf("geo $g { ranges; 0.0.0.0-255.255.255.255 a; }"))
    assert rc != 0 and 'invalid range "0.0.0.0-255.255.255.255"' in out, out
    rc, out = sy_t(http_conf("geo $g { ranges; 10.0.0.9-10.0.0.1 a; }"))
    assert rc != 0 and 'invalid range "10.0.0.9-10.0.0.1"' in out, out
    rc, out = sy_t(http_conf("geo g { }"))
    assert rc != 0 and 'invalid variable name "g"' in out, out
    rc, out = sy_t(http_conf("geo $g { 10.0.0.1/8 a; 10.0.0.0/8 b; delete 10.9.0.0/16; }"))
    assert rc == 0, out
    assert "low address bits of 10.0.0.1/8 are meaningless" in out, out
    assert 'duplicate network "10.0.0.0/8", value: "b", old value: "a"' in out, out
    assert 'no network "10.9.0.0/16" to delete' in out, out


def test_ranges_whole_space(switchyard):
    p = free_port()
    switchyard(http_conf(fill("""
        geo $http_x_addr $g { ranges; 0.0.0.0-255.255.255.254 all; 10.0.0.0-10.0.0.0 one; }
        server { listen 127.0.0.1:@P@; location / { return 200 "$g"; } }""", P=p)))
    for addr, want in [("1.2.3.4", "all"), ("255.255.255.254", "all"), ("10.0.0.0", "one"),
                       ("10.0.0.1", "all")]:
        assert request(p, "GET", "/", headers={"X-Addr": addr}).body.decode() == want, addr


def test_reload_reads_the_included_file_again(switchyard, tmp_path):
    inc = tmp_path / "nets.conf"
    inc.write_text("10.0.0.0/8 before;\n")
    p = free_port()
    text = http_conf(fill("""
        geo $http_x_addr $g { default none; include @INC@; }
        server { listen 127.0.0.1:@P@; location / { return 200 "$g"; } }""", P=p, INC=str(inc)))
    sy = switchyard(text)

    def value():
        return request(p, "GET", "/", headers={"X-Addr": "10.1.1.1"}).body.decode()

    assert value() == "before"
    inc.write_text("10.0.0.0/8 after;\n")
    sy.reload(text, probe=lambda: value() == "after")
    assert value() == "after"
