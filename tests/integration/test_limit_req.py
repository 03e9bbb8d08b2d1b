"""limit_req_zone / limit_req: nginx's leaky bucket per key.

- beyond the burst a request is rejected with limit_req_status (503), an
  error line `limiting requests, excess: 1.000 by zone "one", client: ...`
  (0.9xx when the second request came more than 60 ms after the first)
  and its status in the access log;
- within the burst a request is delayed (held on a timer) by excess / rate,
  `nodelay` serves the burst at once, `delay=N` the first N at once;
- dry run logs and passes; an empty key is not limited; keys (client
  addresses) are independent; several limit_req all apply;
- the state survives a reload that keeps the zone, and is shared by every
  worker process (the zone is shared memory);
- `-t` reports nginx's errors.

The expectations were checked against nginx (SWITCHYARD_BIN=/usr/sbin/nginx).
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

import harness
from harness import IS_NGINX, free_port, http_conf, only_worker
from limits_support import (excess_re, get, limits_conf, served_by, simultaneous_gets,
                            sy_workers, wait_lim_log)

__all__ = ["sy_workers"]  # the fixture, used below


def conf(port: int, origin, locations: str, zones: str, extra_main: str = "") -> str:
    return limits_conf(port, origin.addr, locations, zones, extra_main)


ZONE_1M = "    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;\n"


def test_rejects_beyond_burst_with_status_log_line_and_access_log(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=one; proxy_pass http://origin; }""", ZONE_1M))
    assert get(p, "/a") == 200
    mark = sy.log_mark()
    assert get(p, "/b") == 503
    assert get(p, "/c") == 503
    sy.wait_log(r'\[error\] \d+#\d+: \*\d+ limiting requests, excess: ' + excess_re(1)
                + r' by zone "one", client: 127\.0\.0\.1, server: limits\.test, '
                r'request: "GET /b HTTP/1\.1", host: "localhost"', since=mark)
    lines = wait_lim_log(sy, 3)
    assert lines[:3] == [["/a", "200", "PASSED", "-"], ["/b", "503", "REJECTED", "-"],
                         ["/c", "503", "REJECTED", "-"]], lines
    # only the first request reached the origin
    assert [r["target"] for r in origin.requests] == ["/a"]


def test_custom_status_and_log_level(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=one; limit_req_status 429; limit_req_log_level warn;
                     proxy_pass http://origin; }""", ZONE_1M))
    assert get(p, "/") == 200
    assert get(p, "/") == 429
    sy.wait_log(r'\[warn\] .*limiting requests, excess: ' + excess_re(1) + ' by zone "one"')
    assert "[error]" not in sy.error_log()


def test_nodelay_serves_the_burst_at_once(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=one burst=3 nodelay; proxy_pass http://origin; }""",
                         ZONE_1M))
    t0 = time.monotonic()
    statuses = [get(p, f"/{i}") for i in range(6)]
    took = time.monotonic() - t0
    # first + 3 of burst pass at once; then the bucket is full
    assert statuses == [200, 200, 200, 200, 503, 503], statuses
    assert took < 2.0, took  # nothing was delayed (a delay would be ~60 s at 1r/m)
    lines = wait_lim_log(sy, 6)
    assert [x[2] for x in lines] == ["PASSED"] * 4 + ["REJECTED"] * 2, lines


def test_burst_without_nodelay_is_delayed_by_excess_over_rate(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=ten burst=5; proxy_pass http://origin; }""",
                         "    limit_req_zone $binary_remote_addr zone=ten:1m rate=10r/s;\n"))
    mark = sy.log_mark()
    # four requests at the same moment: excess 0, 1, 2, 3 (x1000) -> waits of
    # about 0, 100, 200, 300 ms at 10 r/s
    answers = simultaneous_gets(p, [f"/{i}" for i in range(4)])
    assert [st for st, _ in answers] == [200] * 4, answers
    times = sorted(t for _, t in answers)
    # the k-th one to finish waited at least ~k * 100 ms (minus clock slack),
    # and not absurdly more
    for k, t in enumerate(times):
        assert t >= k * 0.1 - 0.03, times
    assert times[-1] < 2.0, times
    sy.wait_log(r'\[warn\] .*delaying request, excess: \d\.\d{3}, by zone "ten", '
                r'client: 127\.0\.0\.1', since=mark)
    lines = wait_lim_log(sy, 4)
    assert sorted(x[2] for x in lines) == ["DELAYED"] * 3 + ["PASSED"], lines


def test_delay_parameter_serves_the_first_excess_at_once(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=ten burst=4 delay=2; proxy_pass http://origin; }""",
                         "    limit_req_zone $binary_remote_addr zone=ten:1m rate=10r/s;\n"))
    # four at the same moment (one after the other, the excess of the later
    # ones would depend on how fast this client is): excess 0, 1, 2 (<=
    # delay=2) pass at once, 3 waits (3-2)/10 s = 100 ms
    answers = simultaneous_gets(p, [f"/{i}" for i in range(4)])
    assert [st for st, _ in answers] == [200] * 4, answers
    lines = wait_lim_log(sy, 4)
    assert sorted(x[2] for x in lines) == ["DELAYED"] + ["PASSED"] * 3, lines
    # the delayed one did wait (how fast the others came depends on the load;
    # that they were not held is what PASSED says)
    delayed = [t for (_, t), line in zip(answers, sorted(lines, key=lambda x: int(x[0][1:])))
               if line[2] == "DELAYED"]
    assert 0.07 <= delayed[0] < 2.0, answers


def test_dry_run_passes_but_logs(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=one; limit_req_dry_run on; proxy_pass http://origin; }""",
                         ZONE_1M))
    assert [get(p, "/") for _ in range(3)] == [200, 200, 200]
    sy.wait_log(r'limiting requests, dry run, excess: ' + excess_re(1) + ' by zone "one"')
    lines = wait_lim_log(sy, 3)
    assert [x[2] for x in lines] == ["PASSED", "REJECTED_DRY_RUN", "REJECTED_DRY_RUN"], lines
    assert len(origin.requests) == 3


def test_keys_are_independent(switchyard, origin):
    p = free_port()
    switchyard(conf(p, origin, """
        location / { limit_req zone=one; proxy_pass http://origin; }""", ZONE_1M))
    assert get(p, "/", src="127.0.0.1") == 200
    assert get(p, "/", src="127.0.0.2") == 200
    assert get(p, "/", src="127.0.0.1") == 503
    assert get(p, "/", src="127.0.0.2") == 503
    assert get(p, "/", src="127.0.0.3") == 200


def test_empty_key_is_not_limited(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        location / { limit_req zone=hdr; proxy_pass http://origin; }""",
                         "    limit_req_zone $http_x_user zone=hdr:64k rate=1r/m;\n"))
    assert [get(p, "/") for _ in range(3)] == [200, 200, 200]
    assert get(p, "/", headers=[("X-User", "ann")]) == 200
    assert get(p, "/", headers=[("X-User", "ann")]) == 503
    assert get(p, "/", headers=[("X-User", "bob")]) == 200
    lines = wait_lim_log(sy, 6)
    assert [x[2] for x in lines[:3]] == ["-"] * 3, lines  # no limit applied at all


def test_several_limit_req_all_apply_and_inherit(switchyard, origin):
    p = free_port()
    sy = switchyard(conf(p, origin, """
        limit_req zone=perip burst=10 nodelay;
        limit_req zone=perserver burst=1 nodelay;
        location / { proxy_pass http://origin; }
        location /own { limit_req zone=perip burst=10 nodelay; proxy_pass http://origin; }""",
                         "    limit_req_zone $binary_remote_addr zone=perip:1m rate=1r/m;\n"
                         "    limit_req_zone $server_name zone=perserver:1m rate=1r/m;\n"))
    # per server: first + burst 1, whatever the client address
    assert get(p, "/", src="127.0.0.1") == 200
    assert get(p, "/", src="127.0.0.2") == 200
    mark = sy.log_mark()
    assert get(p, "/", src="127.0.0.3") == 503
    sy.wait_log(r'limiting requests, excess: ' + excess_re(2) + ' by zone "perserver"',
                since=mark)
    # a location with its own limit_req replaces the inherited ones
    assert [get(p, "/own") for _ in range(3)] == [200, 200, 200]


def test_error_page_and_return_are_not_limited(switchyard, origin):
    p = free_port()
    switchyard(conf(p, origin, """
        limit_req zone=one;
        location / { error_page 503 /busy; proxy_pass http://origin; }
        location /busy { proxy_pass http://origin; }
        location /ret { return 200 "fine"; }""", ZONE_1M))
    assert get(p, "/") == 200
    # rejected, then the error page is served although /busy is limited too
    # (once per request)
    with socket.create_connection(("127.0.0.1", p), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = harness.read_until_close(s, 10)
    assert data.startswith(b"HTTP/1.1 503 "), data[:100]
    assert b'"target": "/busy"' in data, data
    # the rewrite phase (return) comes before limit_req
    assert [get(p, "/ret") for _ in range(3)] == [200, 200, 200]


def test_state_survives_a_reload_that_keeps_the_zone(switchyard, origin):
    p = free_port()
    locs = """
        location / { limit_req zone=one; proxy_pass http://origin; }"""
    sy = switchyard(conf(p, origin, locs, ZONE_1M))
    assert get(p, "/") == 200
    sy.reload(conf(p, origin, locs + """
        location /other { return 200 "new"; }""", ZONE_1M))
    assert get(p, "/other") == 200  # the new configuration is live
    assert get(p, "/") == 503       # and the bucket remembered the first request
    # a different size is a different zone: empty
    sy.reload(conf(p, origin, locs, ZONE_1M.replace("one:1m", "one:2m")))
    assert get(p, "/") == 200
    assert get(p, "/") == 503


# --------------------------------------------------------------------------
# across worker processes


def test_the_zone_is_shared_by_every_worker(sy_workers, origin):
    p = free_port()
    text = conf(p, origin, """
        location / { limit_req zone=one; proxy_pass http://origin; }""", ZONE_1M,
                extra_main="worker_processes 2;")
    m = sy_workers(text, 2)
    a, b = m.workers()
    with only_worker(m, a):
        assert served_by(p) == a
        assert get(p, "/") == 200
    with only_worker(m, b):
        assert served_by(p) == b
        assert get(p, "/") == 503  # counted by the other worker
    # after a reload (zones handed to the workers) the state is still shared,
    # and a zone created by the reload is shared too
    m.reload(conf(p, origin, """
        location / { limit_req zone=one; proxy_pass http://origin; }
        location /new { limit_req zone=two; proxy_pass http://origin; }""",
                  ZONE_1M + "    limit_req_zone $binary_remote_addr zone=two:64k rate=1r/m;\n",
                  extra_main="worker_processes 2;"))
    a, b = m.workers()
    with only_worker(m, a):
        assert served_by(p) == a
        assert get(p, "/") == 503
        assert get(p, "/new") == 200
    with only_worker(m, b):
        assert served_by(p) == b
        assert get(p, "/new") == 503


def test_one_request_per_minute_across_many_connections_and_workers(sy_workers, origin):
    p = free_port()
    m = sy_workers(conf(p, origin, """
        location / { limit_req zone=one; proxy_pass http://origin; }""", ZONE_1M,
                        extra_main="worker_processes 2;"), 2)
    results = []
    lock = threading.Lock()

    def one():
        st = get(p, "/")
        with lock:
            results.append(st)
    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [200] + [503] * 11, results
    assert len(m.workers()) == 2


# --------------------------------------------------------------------------
# -t


@pytest.mark.parametrize("http_part, loc_part, message", [
    ("", "limit_req zone=nope;",
     r'(unknown limit_req_zone "nope"|zero size shared memory zone "nope")'),
    ("limit_req_zone $binary_remote_addr zone=one:1m;", "",
     r'invalid number of arguments in "limit_req_zone" directive'),
    ("limit_req_zone $binary_remote_addr zone=one:1k rate=1r/s;", "",
     r'zone "zone=one:1k" is too small'),
    ("limit_req_zone $binary_remote_addr zone=one:1m rate=1r/h;", "",
     r'invalid rate "rate=1r/h"'),
    ("limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;"
     " limit_req_zone $server_name zone=one:1m rate=1r/s;", "",
     r'limit_req_zone "one" is already bound to key "\$binary_remote_addr"'),
    ("limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;", "limit_req zone=one burst=x;",
     r'invalid burst value "burst=x"'),
    ("limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;",
     "limit_req zone=one; limit_req zone=one;", r'"limit_req" directive is duplicate'),
    ("limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;", "limit_req_status 200;",
     r'value must be between 400 and 599'),
    ("limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;", "limit_conn one 1;",
     r'the shared memory zone "one" is already declared for a different use'),
])
def test_t_reports_errors(sy_t, http_part, loc_part, message):
    text = http_conf(f"server {{ listen 127.0.0.1:{free_port()};\n"
                     f"  location / {{\n    {loc_part}\n  }}\n}}", extra_http=http_part)
    rc, out = sy_t(text)
    assert rc != 0, out
    assert re.search(message, out), out
    if not IS_NGINX:
        assert re.search(r"sy-t\.conf:\d+", out), out  # always with file:line
