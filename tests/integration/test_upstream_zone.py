"""`zone name [size];` in upstream{} (ngx_http_upstream_zone_module):
accepted as nginx accepts it (the group still balances and proxies; two
groups may share a zone, the size given once), with
nginx's messages for a bad size or a zone too small. Switchyard keeps the
peer state per worker, as nginx without a zone (docs/directives.md, zone);
run against nginx too (SWITCHYARD_BIN=/usr/sbin/nginx)."""

from __future__ import annotations

import pytest

from harness import fill, free_port, http_conf, request


def test_zone_accepted_and_group_works(switchyard, origin, origin2):
    p = free_port()
    switchyard(http_conf(fill("""
        upstream backends {
            zone backends 64k;
            server @A@ max_fails=2 fail_timeout=5s;
            server @B@;
        }
        upstream nosize { zone backends; server @A@; }
        server {
            listen 127.0.0.1:@P@;
            location / { proxy_pass http://backends; }
            location /n/ { proxy_pass http://nosize/; }
        }""", P=p, A=origin.addr, B=origin2.addr)))
    ports = set()
    for _ in range(4):
        r = request(p, "GET", "/x")
        assert r.status == 200, r
        ports.add(r.header("X-Origin-Port"))
    assert ports == {str(origin.port), str(origin2.port)}
    r = request(p, "GET", "/n/y")
    assert r.status == 200 and r.header("X-Origin-Port") == str(origin.port)


@pytest.mark.switchyard_only
def test_zone_without_size_declared_nowhere(sy_t):
    # nginx: "zero size shared memory zone" when no group gives the size;
    # Switchyard has no shared zone to size (docs/differences.md)
    rc, out = sy_t(http_conf("upstream u { zone alone; server 127.0.0.1:9; }"))
    assert rc == 0, out


@pytest.mark.parametrize("directive,msg", [
    ("zone z 1k;", 'zone "z" is too small'),
    ("zone z 12q;", 'invalid zone size "12q"'),
    ('zone "";', 'invalid zone name ""'),
    ("zone;", 'invalid number of arguments in "zone" directive'),
])
def test_zone_errors(sy_t, directive, msg):
    rc, out = sy_t(http_conf(f"upstream u {{ {directive} server 127.0.0.1:9; }}"))
    assert rc != 0 and msg in out, out
