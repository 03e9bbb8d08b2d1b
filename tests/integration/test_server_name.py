"""Virtual server selection follows nginx: among the servers on the listening
address the Host (case-insensitive, port and trailing dot removed) picks an
exact name first, then the longest leading wildcard (`*.example.com`, and the
`.example.org` shorthand), then the longest trailing wildcard (`www.example.*`),
then the first matching regex (whose captures become variables); otherwise the
`default_server` of that address (or its first server) answers. An
absolute-form request-target overrides Host; HTTP/1.0 without Host goes to the
default server; `$host` is the normalised name."""

import pytest

from harness import fill, free_port, http_conf, raw_request, request

SERVERS = r"""
server { listen 127.0.0.1:@P@; server_name first.test; return 200 "first|$host"; }
server { listen 127.0.0.1:@P@ default_server; server_name _; return 200 "default|$host"; }
server { listen 127.0.0.1:@P@; server_name example.com alias.test; return 200 "exact|$host"; }
server { listen 127.0.0.1:@P@; server_name *.example.com; return 200 "wild-front|$host"; }
server { listen 127.0.0.1:@P@; server_name *.b.example.com; return 200 "wild-front-longer|$host"; }
server { listen 127.0.0.1:@P@; server_name www.example.*; return 200 "wild-back|$host"; }
server { listen 127.0.0.1:@P@; server_name .dot.org; return 200 "dot|$host"; }
server { listen 127.0.0.1:@P@; server_name ~^(?<sub>[a-z0-9]+)\.ex\.com$; return 200 "regex|$sub"; }
server { listen 127.0.0.1:@P@; server_name ~^www\d+\.example\.net$; return 200 "regex2|$host"; }
server { listen 127.0.0.1:@P@; server_name ~^www1\.; return 200 "regex3|$host"; }
server { listen 127.0.0.1:@P2@; server_name p2-first.test; return 200 "p2-first|$host"; }
server { listen 127.0.0.1:@P2@; server_name example.com; return 200 "p2-exact|$host"; }
"""


@pytest.fixture
def ports(switchyard):
    p, p2 = free_port(), free_port()
    # On P2 the first server is the default (no default_server flag).
    conf = fill(SERVERS, P=p, P2=p2)
    switchyard(http_conf(conf))
    return p, p2


@pytest.mark.parametrize("host,expected", [
    ("example.com", "exact|example.com"),
    ("alias.test", "exact|alias.test"),
    ("EXAMPLE.COM", "exact|example.com"),
    ("example.com:8080", "exact|example.com"),
    ("example.com.", "exact|example.com"),
    ("a.example.com", "wild-front|a.example.com"),
    ("x.y.example.com", "wild-front|x.y.example.com"),
    ("c.b.example.com", "wild-front-longer|c.b.example.com"),
    ("www.example.com", "wild-front|www.example.com"),   # leading wildcard beats trailing
    ("www.example.org", "wild-back|www.example.org"),
    ("www.example.co.uk", "wild-back|www.example.co.uk"),
    ("dot.org", "dot|dot.org"),
    ("sub.dot.org", "dot|sub.dot.org"),
    ("abc.ex.com", "regex|abc"),
    ("ABC.ex.com:99", "regex|abc"),
    ("www7.example.net", "regex2|www7.example.net"),
    ("www1.example.net", "regex2|www1.example.net"),     # first regex in config order
    ("www1.other", "regex3|www1.other"),
    ("first.test", "first|first.test"),
    ("unknown.test", "default|unknown.test"),
    ("127.0.0.1", "default|127.0.0.1"),
    ("[::1]:8080", "default|[::1]"),
])
def test_host_selects_server(ports, host, expected):
    r = request(ports[0], "GET", "/", host=host)
    assert r.status == 200
    assert r.text == expected


@pytest.mark.parametrize("host,expected", [
    ("example.com", "p2-exact|example.com"),
    ("nomatch.test", "p2-first|nomatch.test"),
])
def test_default_server_is_per_address(ports, host, expected):
    assert request(ports[1], "GET", "/", host=host).text == expected


def test_absolute_form_overrides_host(ports):
    out = raw_request(ports[0], b"GET http://example.com:81/x HTTP/1.1\r\nHost: unknown.test\r\n"
                                b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.endswith(b"\r\n\r\nexact|example.com")


def test_http10_without_host_goes_to_default(ports):
    out = raw_request(ports[0], b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ")
    # $host falls back to the server_name of the chosen server ("_" here)
    assert out.endswith(b"\r\n\r\ndefault|_")


def test_http10_without_host_on_implicit_default(ports):
    out = raw_request(ports[1], b"GET / HTTP/1.0\r\n\r\n")
    assert out.endswith(b"\r\n\r\np2-first|p2-first.test")


@pytest.mark.parametrize("host", ["exa mple.com", "a/b", "..", "a..b"])
def test_invalid_host_is_400(ports, host):
    out = raw_request(ports[0], f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 400 ")


def test_two_hosts_is_400(ports):
    out = raw_request(ports[0], b"GET / HTTP/1.1\r\nHost: example.com\r\nHost: a.test\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
