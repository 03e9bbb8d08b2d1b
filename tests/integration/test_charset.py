"""`charset` and friends (ngx_http_charset_module) as nginx 1.22 applies them
to Content-Type:

- `charset NAME` adds `; charset=NAME` to the types of `charset_types`
  (default text/html, text/xml, text/plain, text/vnd.wap.wml,
  application/javascript, application/rss+xml; a list given replaces all but
  text/html; `*` is every type), for files, `return`, error pages and proxied
  responses; never on 301/302;
- `charset off`, inheritance, `charset $variable`;
- a response that already has a charset keeps it, unless `override_charset
  on`: the same charset is rewritten, a different one would need recoding
  (nginx logs `no "charset_map"` without a map and leaves it);
- `source_charset` equal to `charset`: no recoding, just the header; a
  different one is refused at load (nginx: without a charset_map; Switchyard
  also with one, as it does not recode bodies);
- charset_map blocks read and checked as nginx does;
- over HTTP/2 too.
"""

from __future__ import annotations

import pytest

from backends import RawBackend, read_request_head
from h2_support import h2_get, h2_server
from harness import IS_NGINX, fill, free_port, http_conf, request, run_switchyard_t

TYPES = """types {
    text/html html;
    text/plain txt;
    text/css css;
    application/javascript js;
    application/json json;
}"""

CONF = r"""
map $uri $cs {
    default   utf-8;
    ~latin    iso-8859-1;
}
server {
    listen 127.0.0.1:@P@;
    root @ROOT@;
    charset utf-8;
    location /files/ { }
    location /off/ { charset off; }
    location /types/ { charset_types text/css; }
    location /all/ { charset_types *; }
    location /ret { return 200 "text\n"; }
    location /redirect { return 302 /files/a.html; }
    location /moved { return 301 /files/a.html; }
    location /seeother { return 303 /files/a.html; }
    location /var/ { charset $cs; return 200 "v\n"; }
    location /src/ { source_charset UTF-8; }
    location /up/ { proxy_pass http://@U@; }
    location /override/ { override_charset on; proxy_pass http://@U@; }
    location /nooverride/ { charset koi8-r; proxy_pass http://@U@; }
}
"""

UPSTREAM_TYPES = {
    "plain": b"text/html",
    "same": b"text/html; charset=UTF-8",
    "quoted": b'text/html; charset="utf-8"',
    "other": b"text/html; charset=koi8-r",
    "json": b"application/json",
}


def upstream(conn):
    head = read_request_head(conn).decode("latin-1")
    target = head.split(" ")[1]
    ct = UPSTREAM_TYPES[target.rsplit("/", 1)[1]]
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + ct +
                 b"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nup\n")


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "www"
    for d in ("files", "off", "types", "all", "src"):
        (root / d).mkdir(parents=True)
        for ext in ("html", "txt", "css", "js", "json", "bin"):
            (root / d / f"a.{ext}").write_text("x\n")
    return root


@pytest.fixture
def sy(switchyard, site):
    with RawBackend(upstream) as up:
        p = free_port()
        s = switchyard(http_conf(fill(CONF, P=p, ROOT=site, U=up.addr), extra_http=TYPES))
        s.test_port = p
        yield s


def ctype(port, path):
    r = request(port, "GET", path)
    return r.status, r.header("Content-Type")


@pytest.mark.parametrize("path,expected", [
    ("/files/a.html", "text/html; charset=utf-8"),
    ("/files/a.txt", "text/plain; charset=utf-8"),
    ("/files/a.js", "application/javascript; charset=utf-8"),
    ("/files/a.css", "text/css"),
    ("/files/a.json", "application/json"),
    ("/files/a.bin", "text/plain; charset=utf-8"),  # default_type text/plain
    ("/off/a.html", "text/html"),
    ("/types/a.css", "text/css; charset=utf-8"),
    ("/types/a.html", "text/html; charset=utf-8"),  # text/html always stays
    ("/types/a.txt", "text/plain"),                 # the given list replaced the rest
    ("/all/a.json", "application/json; charset=utf-8"),
    ("/src/a.html", "text/html; charset=utf-8"),    # source_charset = charset: no recoding
])
def test_files(sy, path, expected):
    assert ctype(sy.test_port, path) == (200, expected)


def test_return_error_page_and_redirects(sy):
    assert ctype(sy.test_port, "/ret") == (200, "text/plain; charset=utf-8")
    assert ctype(sy.test_port, "/files/none.html") == (404, "text/html; charset=utf-8")
    assert ctype(sy.test_port, "/redirect") == (302, "text/html")
    assert ctype(sy.test_port, "/moved") == (301, "text/html")
    assert ctype(sy.test_port, "/seeother") == (303, "text/html; charset=utf-8")


def test_charset_from_variable(sy):
    assert ctype(sy.test_port, "/var/x") == (200, "text/plain; charset=utf-8")
    assert ctype(sy.test_port, "/var/latin") == (200, "text/plain; charset=iso-8859-1")


def test_upstream_charset_kept_without_override(sy):
    p = sy.test_port
    assert ctype(p, "/up/plain") == (200, "text/html; charset=utf-8")
    assert ctype(p, "/up/other") == (200, "text/html; charset=koi8-r")
    assert ctype(p, "/up/json") == (200, "application/json")
    assert ctype(p, "/nooverride/same") == (200, "text/html; charset=UTF-8")


def test_override_charset(sy):
    p = sy.test_port
    assert ctype(p, "/override/same") == (200, "text/html; charset=utf-8")
    assert ctype(p, "/override/quoted") == (200, "text/html; charset=utf-8")
    # overriding does not look at charset_types
    assert ctype(p, "/override/plain") == (200, "text/html; charset=utf-8")
    # a different charset would need recoding: left as it is, and logged
    assert ctype(p, "/override/other") == (200, "text/html; charset=koi8-r")
    sy.wait_log(r'\[error\] .*no "charset_map" between the charsets "koi8-r" and "utf-8"')


def test_over_http2(switchyard, site):
    p = free_port()
    switchyard(http_conf(h2_server(p, body=f"root {site};\ncharset utf-8;\nlocation / {{ }}"),
                         extra_http=TYPES))
    st = h2_get(p, "/files/a.html")
    assert st.status == 200
    assert st.header("content-type") == "text/html; charset=utf-8"


def check_t(tmp_path, body: str):
    conf = f"events {{}}\nhttp {{\n{body}\nserver {{ listen 127.0.0.1:{free_port()}; }}\n}}\n"
    return run_switchyard_t(conf, tmp_path / "t")


def test_source_charset_without_map_is_refused(tmp_path):
    rc, out = check_t(tmp_path, "charset utf-8; source_charset koi8-r;")
    assert rc != 0
    assert 'no "charset_map" between the charsets "koi8-r" and "utf-8"' in out, out


MAP = "charset_map koi8-r utf-8 { C0 D18E; C1 D0B0; }"


def test_source_charset_with_map(tmp_path):
    rc, out = check_t(tmp_path, MAP + "\ncharset utf-8; source_charset koi8-r;")
    if IS_NGINX:
        assert rc == 0, out  # nginx recodes the bodies
    else:
        assert rc != 0
        assert ('recoding from "koi8-r" (source_charset) to "utf-8" (charset) is not supported'
                in out), out


def test_charset_map_alone_is_accepted(tmp_path):
    rc, out = check_t(tmp_path, MAP + "\ncharset_map windows-1251 koi8-r { 80 C0; }\n"
                      "charset utf-8; override_charset on; charset_types text/css;")
    assert rc == 0, out


@pytest.mark.parametrize("body,message", [
    ("charset_map a a { }", '"charset_map" between the same charsets "a" and "a"'),
    ("charset_map koi8-r utf-8 { ZZ 41; }", 'invalid value "ZZ"'),
    ("charset_map koi8-r utf-8 { C0 41 42; }", "invalid parameters number"),
    ("charset_map koi8-r windows-1251 { C0 1FF; }", 'invalid value "1FF"'),
    ("charset_map koi8-r utf-8 { C0 D18E; }\ncharset_map utf-8 koi8-r { }",
     'duplicate "charset_map" between "utf-8" and "koi8-r"'),
    ("charset utf-8; charset utf-8;", '"charset" directive is duplicate'),
    ("server { location / { charset_map a b { } } }",
     '"charset_map" directive is not allowed here'),
])
def test_config_errors(tmp_path, body, message):
    rc, out = check_t(tmp_path, body)
    assert rc != 0
    assert message in out, out


def test_duplicate_mime_type_warns(tmp_path):
    rc, out = check_t(tmp_path, "charset_types text/html text/css text/css;")
    assert rc == 0, out
    assert out.count('duplicate MIME type "text/html"') == 1, out
    assert out.count('duplicate MIME type "text/css"') == 1, out
