"""proxy_cache: nginx's response cache (docs/cache.md).

The directives are checked as nginx checks them (same messages); the same
tests run against Debian's nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""
import re

import pytest

from harness import free_port, http_conf

MASTODON = """
proxy_cache_path cache levels=1:2 keys_zone=CACHE:10m inactive=7d max_size=1g;
server {
    listen 127.0.0.1:@PORT@;
    location / {
        proxy_pass http://127.0.0.1:9;
        proxy_cache CACHE;
        proxy_cache_valid 200 7d;
        proxy_cache_valid 410 24h;
        proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
        add_header X-Cached $upstream_cache_status;
    }
}
"""

EVERY_DIRECTIVE = """
proxy_cache_path cache levels=2 use_temp_path=off keys_zone=a:1m inactive=1h max_size=10m
    min_free=1m manager_files=10 manager_sleep=10ms manager_threshold=100ms loader_files=10
    loader_sleep=10ms loader_threshold=100ms;
proxy_cache_path cache2 levels=1:2:2 keys_zone=b:64k;
server {
    listen 127.0.0.1:@PORT@;
    proxy_cache_key $scheme$host$request_uri;
    location / {
        proxy_pass http://127.0.0.1:9;
        proxy_cache $cache_name;
        proxy_cache_valid 5m;
        proxy_cache_valid 200 302 10m;
        proxy_cache_valid any 1m;
        proxy_cache_methods GET HEAD POST;
        proxy_cache_min_uses 2;
        proxy_cache_bypass $cookie_nocache $arg_nocache;
        proxy_no_cache $http_pragma;
        proxy_no_cache $http_authorization;
        proxy_cache_use_stale error timeout invalid_header updating http_500 http_502 http_503
            http_504 http_403 http_404 http_429;
        proxy_cache_background_update on;
        proxy_cache_lock on;
        proxy_cache_lock_timeout 3s;
        proxy_cache_lock_age 4s;
        proxy_cache_revalidate on;
        proxy_cache_convert_head off;
        proxy_cache_max_range_offset 1m;
        proxy_ignore_headers X-Accel-Expires Expires Cache-Control Set-Cookie Vary;
    }
    location /b { proxy_pass http://127.0.0.1:9; proxy_cache b; }
    location /off { proxy_pass http://127.0.0.1:9; proxy_cache off; }
}
map $uri $cache_name { default a; ~^/x b; }
"""


def conf(body):
    return http_conf(body.replace("@PORT@", str(free_port())))


def test_mastodon_configuration_passes_t(sy_t):
    rc, out = sy_t(conf(MASTODON))
    assert rc == 0, out
    assert "test is successful" in out


def test_every_cache_directive_passes_t(sy_t):
    rc, out = sy_t(conf(EVERY_DIRECTIVE))
    assert rc == 0, out


def test_zone_may_be_declared_after_its_use(sy_t):
    rc, out = sy_t(conf("proxy_cache z;\nserver { listen 127.0.0.1:@PORT@; }\n"
                        "proxy_cache_path cache keys_zone=z:1m;"))
    assert rc == 0, out


@pytest.mark.parametrize("body,message", [
    ("proxy_cache_path cache levels=3 keys_zone=a:1m;", r'invalid "levels" "levels=3"'),
    ("proxy_cache_path cache levels=1:2:2:1 keys_zone=a:1m;", r'invalid "levels"'),
    ("proxy_cache_path cache keys_zone=a:1k;", r'keys zone "keys_zone=a:1k" is too small'),
    ("proxy_cache_path cache keys_zone=a;", r'invalid keys zone size "keys_zone=a"'),
    ("proxy_cache_path cache levels=1;", r'"proxy_cache_path" must have "keys_zone" parameter'),
    ("proxy_cache_path cache keys_zone=a:1m use_temp_path=1;",
     r'invalid use_temp_path value "use_temp_path=1", it must be "on" or "off"'),
    ("proxy_cache_path cache keys_zone=a:1m inactive=x;", r'invalid inactive value "inactive=x"'),
    ("proxy_cache_path cache keys_zone=a:1m max_size=x;", r'invalid max_size value "max_size=x"'),
    ("proxy_cache_path cache keys_zone=a:1m min_free=x;", r'invalid min_free value "min_free=x"'),
    ("proxy_cache_path cache keys_zone=a:1m manager_files=x;",
     r'invalid manager_files value "manager_files=x"'),
    ("proxy_cache_path cache keys_zone=a:1m loader_threshold=x;",
     r'invalid loader_threshold value "loader_threshold=x"'),
    ("proxy_cache_path cache keys_zone=a:1m bogus=1;", r'invalid parameter "bogus=1"'),
    ("proxy_cache_path cache keys_zone=a:1m;\nproxy_cache_path other keys_zone=a:1m;",
     r'duplicate zone "a"'),
    ("proxy_cache_path cache keys_zone=a:1m;\nproxy_cache_path cache keys_zone=b:1m;",
     r'the same path name "\S+/cache" used in \S+:\d+ and in \S+:\d+'),
    ("limit_req_zone $uri zone=a:1m rate=1r/s;\nproxy_cache_path cache keys_zone=a:1m;",
     r'the shared memory zone "a" is already declared for a different use'),
    ("proxy_cache nope;\nserver { listen 127.0.0.1:@PORT@; }",
     r'"proxy_cache" zone "nope" is unknown'),
    ("proxy_cache nope;", r'zero size shared memory zone "nope"'),
    ("proxy_cache off;\nproxy_cache off;", r'"proxy_cache" directive is duplicate'),
    ("proxy_cache_key a;\nproxy_cache_key b;", r'"proxy_cache_key" directive is duplicate'),
    ("proxy_cache_valid 99 1m;", r'invalid status "99"'),
    ("proxy_cache_valid 200 1500ms;", r'invalid time value "1500ms"'),
    ("proxy_cache_methods GET PUT;", r'invalid value "PUT"'),
    ("proxy_cache_use_stale error sometimes;", r'invalid value "sometimes"'),
    ("proxy_cache_min_uses 1;\nproxy_cache_min_uses 2;",
     r'"proxy_cache_min_uses" directive is duplicate'),
    ("proxy_cache_lock_timeout 1x;", r'"proxy_cache_lock_timeout" directive invalid value'),
    ("proxy_cache_max_range_offset x;",
     r'"proxy_cache_max_range_offset" directive invalid value'),
    ("server { listen 127.0.0.1:@PORT@; location / { if ($arg_a) { proxy_cache off; } } }",
     r'"proxy_cache" directive is not allowed here'),
    ("server { listen 127.0.0.1:@PORT@; proxy_cache_path cache keys_zone=a:1m; }",
     r'"proxy_cache_path" directive is not allowed here'),
])
def test_directive_errors_as_nginx(sy_t, body, message):
    rc, out = sy_t(conf(body))
    assert rc != 0, out
    assert re.search(message, out), out
