"""Static files are served the way nginx serves them: root (relative to the -p
prefix) + URI, or alias replacing the location prefix (the whole path in a
regex location); `index` files tried in order with an internal redirect; a
directory without its trailing slash is redirected (301); `try_files` tests
files and, with a trailing '/', directories, and falls back to a URI, a named
location or a code (the SPA idiom `try_files $uri $uri/ /index.html`); GET and
HEAD serve, other methods get 405; ENOENT/ENOTDIR give 404, a directory
without index 403; the Content-Type comes from the URI's extension; ETag
("<mtime hex>-<size hex>") and Last-Modified answer If-None-Match /
If-Modified-Since with 304 and If-Match / If-Unmodified-Since with 412; a
single byte range gives 206 (Content-Range), an unsatisfiable one 416; URIs
that climb out of the root with "..", percent-encoded or not, never reach a
file outside it; `disable_symlinks on` refuses every symlink."""

import hashlib
import os
import re

import pytest

from harness import HttpConn, fill, free_port, http_conf, raw_request, request

MTIME = 1445412480  # Wed, 21 Oct 2015 07:28:00 GMT = 0x56273e80
MTIME_HTTP = "Wed, 21 Oct 2015 07:28:00 GMT"
SECRET = b"TOP SECRET outside the root\n"

BIN = bytes((i * 7 + 3) % 256 for i in range(1000))
BIG = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 5)  # ~3 MiB

# (path under the prefix, content) -- directories are created on the way
FILES = {
    "html/index.html": b"<h1>root index</h1>\n",
    "html/hello.txt": b"hello world\n",
    "html/file.bin": BIN,
    "html/big.dat": BIG,
    "html/empty.txt": b"",
    "html/style.css": b"body{}\n",
    "html/UPPER.CSS": b"a{}\n",
    "html/script.js": b"let x = 1;\n",
    "html/noext": b"no extension\n",
    "html/.hidden": b"hidden\n",
    "html/v1.2/README": b"readme\n",
    "html/dir/index.html": b"dir index\n",
    "html/idx/other.html": b"other index\n",
    "html/idx/sub/other.html": b"sub other\n",
    "html/abs-target.html": b"absolute index target\n",
    "html/spa/index.html": b"<app/>\n",
    "html/spa/app.js": b"app();\n",
    "html/spa/sub/index.html": b"spa sub index\n",
    "html/pretty/about.html": b"about page\n",
    "html/pretty/docs/index.html": b"docs index\n",
    "html/named/x.txt": b"named x\n",
    "html/fb/real.txt": b"fb real\n",
    "html/nosym/real.txt": b"real file\n",
    "html/nosym/dir/index.html": b"nosym dir index\n",
    "html/noetag/a.txt": b"no etag\n",
    "html/before/a.txt": b"before\n",
    "html/imsoff/a.txt": b"ims off\n",
    "data/pic.png": b"\x89PNG fake\n",
    "data/sub/index.html": b"data sub index\n",
    "outside/secret.txt": SECRET,
}
DIRS = ["html/noindex", "html/nosym/emptydir"]
# (link path, target) -- symlinks pointing inside and outside the root
LINKS = {
    "html/followed.txt": "../outside/secret.txt",
    "html/followdir": "../outside",
    "html/nosym/link.txt": "../../outside/secret.txt",
    "html/nosym/inner.txt": "real.txt",
    "html/nosym/linkdir": "../../outside",
}

CONF = r"""
types {
    text/html html;
    text/css css;
    text/plain txt;
    image/png png;
    application/javascript js;
}
default_type application/octet-stream;

server {
    listen 127.0.0.1:@PORT@;
    root html;
    index index.html;

    location / { }
    location /idx/ { index missing.html other.html; }
    location /abs/ { index /abs-target.html; }
    location /idxargs/ { index /show-args; }
    location = /show-args { return 200 "args=[$args]\n"; }

    location /spa/ { try_files $uri $uri/ /spa/index.html; }
    location /pretty/ { try_files $uri $uri.html $uri/ =404; }
    location /named/ { try_files $uri @fallback; }
    location @fallback { return 200 "named fallback $uri\n"; }
    location /fb/ { try_files $uri /show-args; }
    location /fbargs/ { try_files $uri /show-args?from=fallback; }
    location /code/ { try_files $uri =418; }

    location /img/ { alias @PREFIX@data/; }
    location /assets { alias @PREFIX@data/; }
    location ~ ^/re/(.+\.png)$ { alias @PREFIX@data/$1; }
    location = /favicon.ico { alias @PREFIX@data/pic.png; }

    location /nosym/ { disable_symlinks on; }
    location /noetag/ { etag off; }
    location /before/ { if_modified_since before; }
    location /imsoff/ { if_modified_since off; }
}
"""


def build_tree(prefix):
    for rel, data in FILES.items():
        p = prefix / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (MTIME, MTIME))
    for rel in DIRS:
        (prefix / rel).mkdir(parents=True, exist_ok=True)
    for rel, target in LINKS.items():
        p = prefix / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)


@pytest.fixture
def sy(switchyard, tmp_path):
    build_tree(tmp_path)
    return switchyard(http_conf(fill(CONF, PORT=free_port(), PREFIX=f"{tmp_path}/")))


@pytest.fixture
def port(sy):
    return sy.port


def etag_of(data: bytes) -> str:
    return f'"{MTIME:x}-{len(data):x}"'


def get(port, target, headers=None, method="GET", **kw):
    return request(port, method, target, headers=headers, **kw)


def location_path(r, port):
    """The path part of a Location header: nginx sends an absolute URL
    (absolute_redirect on) built from Host and the port."""
    loc = r.header("Location")
    assert loc is not None, r
    return re.sub(rf"^http://localhost:{port}", "", loc)


def assert_file(r, data: bytes, ctype: str):
    assert r.status == 200, r
    assert r.body == data
    assert r.header("Content-Length") == str(len(data))
    assert r.header("Content-Type") == ctype
    assert r.header("Last-Modified") == MTIME_HTTP
    assert r.header("ETag") == etag_of(data)
    assert r.header("Accept-Ranges") == "bytes"


def assert_not_leaked(resp: bytes):
    assert b"TOP SECRET" not in resp
    assert b"root:" not in resp


# ----------------------------------------------------------------- GET / HEAD


def test_get_file_headers_and_body(port):
    assert_file(get(port, "/hello.txt"), b"hello world\n", "text/plain")


def test_head_has_headers_but_no_body(port):
    with HttpConn(port) as c:
        r = c.request("HEAD", "/hello.txt")
        assert r.status == 200
        assert r.body == b""
        assert r.header("Content-Length") == "12"
        assert r.header("ETag") == etag_of(b"hello world\n")
        assert r.header("Last-Modified") == MTIME_HTTP
        assert r.header("Content-Type") == "text/plain"
        # the connection is still in sync: no body bytes were sent
        assert c.request("GET", "/hello.txt").body == b"hello world\n"


def test_binary_and_empty_files_exact(port):
    assert_file(get(port, "/file.bin"), BIN, "application/octet-stream")
    r = get(port, "/empty.txt")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "0"
    assert r.header("ETag") == etag_of(b"")


def test_large_file_sha256(port):
    r = get(port, "/big.dat", hash_only=True, timeout=30)
    assert r.status == 200
    assert r.header("Content-Length") == str(len(BIG))
    assert r.body_len == len(BIG)
    assert r.body_sha256 == hashlib.sha256(BIG).hexdigest()


def test_keepalive_sequence_stays_in_sync(port):
    """Every kind of static answer on one connection: framing must be exact."""
    etag = etag_of(b"hello world\n")
    with HttpConn(port) as c:
        assert c.request("GET", "/hello.txt").body == b"hello world\n"
        assert c.request("GET", "/hello.txt", [("If-None-Match", etag)]).status == 304
        r = c.request("GET", "/file.bin", [("Range", "bytes=0-4")])
        assert r.status == 206 and r.body == BIN[:5]
        assert c.request("GET", "/file.bin", [("Range", "bytes=5000-")]).status == 416
        assert c.request("GET", "/missing").status == 404
        assert c.request("HEAD", "/file.bin").status == 200
        assert c.request("GET", "/dir").status == 301
        assert c.request("GET", "/noindex/").status == 403
        assert c.request("GET", "/dir/").body == b"dir index\n"


# ------------------------------------------------------------------ methods


@pytest.mark.parametrize("method,target,status", [
    ("POST", "/hello.txt", 405),
    ("POST", "/missing.txt", 404),   # nginx: 405 only once the file is found
    ("POST", "/dir", 301),
    ("PUT", "/hello.txt", 405),
    ("DELETE", "/hello.txt", 405),
    ("DELETE", "/missing.txt", 405),
    ("OPTIONS", "/", 405),
    ("PATCH", "/dir/", 405),
])
def test_methods(port, method, target, status):
    r = get(port, target, method=method)
    assert r.status == status, r


def test_post_with_body_then_keepalive(port):
    with HttpConn(port) as c:
        r = c.request("POST", "/hello.txt", body=b"x" * 100)
        assert r.status == 405
        assert c.request("GET", "/hello.txt").body == b"hello world\n"


def test_post_to_index_is_405(port):
    # the index redirect keeps the method; the static handler then says 405
    assert get(port, "/dir/", method="POST").status == 405


# ------------------------------------------------------------ errors/status


@pytest.mark.parametrize("target,status", [
    ("/missing.txt", 404),
    ("/nodir/x.txt", 404),
    ("/hello.txt/x", 404),          # ENOTDIR
    ("/hello.txt/", 404),           # a file is not a directory to index
    ("/nodir/", 404),               # index of a missing directory
    ("/noindex/", 403),             # directory without index (autoindex off)
    ("/" + "a" * 300, 404),         # ENAMETOOLONG
])
def test_error_statuses(port, target, status):
    assert get(port, target).status == status


# ---------------------------------------------------- directories and index


def test_index_files(port):
    assert get(port, "/").body == b"<h1>root index</h1>\n"
    r = get(port, "/dir/")
    assert r.status == 200 and r.body == b"dir index\n"
    assert r.header("Content-Type") == "text/html"
    r = get(port, "/dir/", method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == "10"


def test_index_order(port):
    assert get(port, "/idx/").body == b"other index\n"
    assert get(port, "/idx/sub/").body == b"sub other\n"


def test_absolute_index_and_args_kept(port):
    assert get(port, "/abs/").body == b"absolute index target\n"
    # an absolute index is a redirect without a file test, keeping $args
    assert get(port, "/abs/no/such/dir/").body == b"absolute index target\n"
    assert get(port, "/idxargs/?a=1&b=2").body == b"args=[a=1&b=2]\n"


@pytest.mark.parametrize("target,want", [
    ("/dir", "/dir/"),
    ("/v1.2", "/v1.2/"),
    ("/dir?x=1&y=2", "/dir/?x=1&y=2"),
    ("/img/sub", "/img/sub/"),
    ("/spa/sub", "/spa/sub/"),
])
def test_directory_without_slash_redirects(port, target, want):
    r = get(port, target)
    assert r.status == 301
    assert location_path(r, port) == want


# ---------------------------------------------------------------- try_files


def test_spa_idiom(port):
    r = get(port, "/spa/app.js")
    assert r.status == 200 and r.body == b"app();\n"
    assert r.header("Content-Type") == "application/javascript"
    for target in ("/spa/", "/spa/users/42", "/spa/deep/route/x.y", "/spa/?q=1"):
        r = get(port, target)
        assert r.status == 200, target
        assert r.body == b"<app/>\n", target
        assert r.header("Content-Type") == "text/html"
    assert get(port, "/spa/sub/").body == b"spa sub index\n"
    # "$uri/" matched a directory: the URI has no slash, so nginx redirects
    r = get(port, "/spa/sub")
    assert r.status == 301 and location_path(r, port) == "/spa/sub/"


def test_try_files_extension_and_dir(port):
    r = get(port, "/pretty/about")
    assert r.status == 200 and r.body == b"about page\n"
    assert r.header("Content-Type") == "text/html"   # from the URI try_files chose
    assert get(port, "/pretty/about.html").body == b"about page\n"
    assert get(port, "/pretty/docs/").body == b"docs index\n"
    r = get(port, "/pretty/docs")
    assert r.status == 301 and location_path(r, port) == "/pretty/docs/"
    assert get(port, "/pretty/missing").status == 404


def test_try_files_named_and_code(port):
    assert get(port, "/named/x.txt").body == b"named x\n"
    r = get(port, "/named/zzz")
    assert r.status == 200 and r.body == b"named fallback /named/zzz\n"
    assert get(port, "/code/none").status == 418
    assert get(port, "/code/").status == 418  # "$uri" is a directory, not a file


def test_try_files_fallback_replaces_args(port):
    assert get(port, "/fb/real.txt?k=v").body == b"fb real\n"
    # a fallback URI without '?' clears $args, as nginx does
    assert get(port, "/fb/none?k=v").body == b"args=[]\n"
    assert get(port, "/fbargs/none?k=v").body == b"args=[from=fallback]\n"


def test_try_files_before_method_check(port):
    # try_files runs first: the fallback is a return location, which answers
    assert get(port, "/fb/none", method="DELETE").body == b"args=[]\n"
    assert get(port, "/fb/real.txt", method="DELETE").status == 405


# -------------------------------------------------------------------- alias


def test_alias(port):
    r = get(port, "/img/pic.png")
    assert r.status == 200 and r.body == b"\x89PNG fake\n"
    assert r.header("Content-Type") == "image/png"
    assert get(port, "/img/sub/").body == b"data sub index\n"
    assert get(port, "/img/none.png").status == 404
    assert get(port, "/img/").status == 403   # data/ has no index.html


def test_alias_regex_and_exact(port):
    r = get(port, "/re/pic.png")
    assert r.status == 200 and r.body == b"\x89PNG fake\n"
    assert get(port, "/re/none.png").status == 404
    # exact location aliasing a file: the type comes from the URI (".ico")
    r = get(port, "/favicon.ico")
    assert r.status == 200 and r.body == b"\x89PNG fake\n"
    assert r.header("Content-Type") == "application/octet-stream"


@pytest.mark.switchyard_only
def test_alias_off_by_slash_does_not_escape(port):
    """`location /assets { alias .../data/; }` lets nginx serve
    /assets../outside/secret.txt (the classic off-by-slash hole); Switchyard
    refuses a path that climbs out of the alias."""
    r = get(port, "/assets../outside/secret.txt")
    assert r.status == 404
    assert_not_leaked(r.body)
    # the intended use still works
    assert get(port, "/assets/pic.png").body == b"\x89PNG fake\n"


# ------------------------------------------------------------------- safety


@pytest.mark.parametrize("target", [
    "/../outside/secret.txt",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/.%2e/outside/secret.txt",
    "/dir/../../outside/secret.txt",
    "/dir/%2e%2e/%2e%2e/outside/secret.txt",
    "/img/../../outside/secret.txt",
    "/img/..%2f..%2foutside/secret.txt",
    "/a/..%2f..%2f",
    "/a/..%2f..%2fetc/passwd",
    "/..%2foutside/secret.txt",
    "/%2e%2e%2foutside%2fsecret.txt",
    "/./../outside/secret.txt",
    "//../outside/secret.txt",
])
def test_traversal_is_rejected(port, target):
    resp = raw_request(port, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n"
                             "Connection: close\r\n\r\n".encode())
    status = int(resp.split(b" ", 2)[1])
    assert status == 400, resp[:200]
    assert_not_leaked(resp)


@pytest.mark.parametrize("target,status", [
    ("/..secret", 404),                 # a name starting with dots is a name
    ("/...", 404),
    ("/dir/./index.html", 200),         # "." segments are normalised away
    ("/dir/sub/../index.html", 200),    # ".." inside the root is fine
    ("/img/sub/../pic.png", 200),
])
def test_dot_segments_inside_root(port, target, status):
    assert get(port, target).status == status


@pytest.mark.parametrize("target", ["/hello.txt%00.png", "/hello.txt%00", "/spa/x%00y"])
def test_encoded_nul_is_rejected(port, target):
    resp = raw_request(port, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n"
                             "Connection: close\r\n\r\n".encode())
    assert int(resp.split(b" ", 2)[1]) == 400, resp[:200]
    assert b"hello world" not in resp


@pytest.mark.parametrize("target,body", [
    ("/hello%2etxt", b"hello world\n"),
    ("/dir%2f", b"dir index\n"),              # a decoded "/" counts as a slash
    ("/dir%2Findex.html", b"dir index\n"),
])
def test_percent_encoded_names(port, target, body):
    r = get(port, target)
    assert r.status == 200 and r.body == body


def test_backslashes_are_not_separators(port):
    resp = raw_request(port, b"GET /..\\..\\outside\\secret.txt HTTP/1.1\r\n"
                             b"Host: localhost\r\nConnection: close\r\n\r\n")
    assert int(resp.split(b" ", 2)[1]) == 404
    assert_not_leaked(resp)


def test_symlinks_followed_by_default(port):
    # disable_symlinks off is nginx's default: a link leaving the root is served
    assert get(port, "/followed.txt").body == SECRET
    assert get(port, "/followdir/secret.txt").body == SECRET


@pytest.mark.parametrize("target,status", [
    ("/nosym/real.txt", 200),
    ("/nosym/dir/", 200),
    ("/nosym/link.txt", 403),          # last component is a symlink: ELOOP
    ("/nosym/inner.txt", 403),         # even when it stays inside the root
    ("/nosym/linkdir", 403),
    ("/nosym/linkdir/secret.txt", 404),  # a directory component: ENOTDIR
    ("/nosym/linkdir/", 404),
    ("/nosym/emptydir/", 403),
])
def test_disable_symlinks_on(port, target, status):
    r = get(port, target)
    assert r.status == status, r
    assert_not_leaked(r.body)


# --------------------------------------------------------------------- MIME


@pytest.mark.parametrize("target,ctype", [
    ("/style.css", "text/css"),
    ("/UPPER.CSS", "text/css"),                 # extension lookup ignores case
    ("/script.js", "application/javascript"),
    ("/index.html", "text/html"),
    ("/hello.txt", "text/plain"),
    ("/noext", "application/octet-stream"),     # default_type
    ("/.hidden", "application/octet-stream"),   # a leading dot is no extension
    ("/v1.2/README", "application/octet-stream"),
    ("/file.bin", "application/octet-stream"),  # not in `types`
])
def test_content_types(port, target, ctype):
    r = get(port, target)
    assert r.status == 200
    assert r.header("Content-Type") == ctype


# ----------------------------------------------------------- conditionals


def assert_304(r, data: bytes):
    assert r.status == 304, r
    assert r.body == b""
    assert r.header("ETag") == etag_of(data)
    assert r.header("Last-Modified") == MTIME_HTTP
    assert not r.has_header("Content-Length")
    assert not r.has_header("Content-Type")
    assert not r.has_header("Accept-Ranges")


def test_304_by_etag(port):
    data = b"hello world\n"
    etag = etag_of(data)
    assert_304(get(port, "/hello.txt", [("If-None-Match", etag)]), data)
    assert_304(get(port, "/hello.txt", [("If-None-Match", f'"a", W/{etag}, "b"')]), data)
    assert_304(get(port, "/hello.txt", [("If-None-Match", "*")]), data)
    assert_304(get(port, "/hello.txt", [("If-None-Match", etag)], method="HEAD"), data)
    r = get(port, "/hello.txt", [("If-None-Match", '"56273e80-d"')])
    assert r.status == 200 and r.body == data


def test_304_by_date(port):
    data = b"hello world\n"
    assert_304(get(port, "/hello.txt", [("If-Modified-Since", MTIME_HTTP)]), data)
    assert_304(get(port, "/hello.txt",
                   [("If-Modified-Since", "Wednesday, 21-Oct-15 07:28:00 GMT")]), data)
    assert_304(get(port, "/hello.txt",
                   [("If-Modified-Since", "Wed Oct 21 07:28:00 2015")]), data)
    # if_modified_since exact (default): any other date means modified
    for d in ("Wed, 21 Oct 2015 07:28:01 GMT", "Tue, 20 Oct 2015 07:28:00 GMT", "garbage"):
        assert get(port, "/hello.txt", [("If-Modified-Since", d)]).status == 200, d


def test_if_modified_since_before_and_off(port):
    later = "Thu, 22 Oct 2015 07:28:00 GMT"
    assert get(port, "/before/a.txt", [("If-Modified-Since", later)]).status == 304
    assert get(port, "/before/a.txt",
               [("If-Modified-Since", "Tue, 20 Oct 2015 07:28:00 GMT")]).status == 200
    assert get(port, "/imsoff/a.txt", [("If-Modified-Since", MTIME_HTTP)]).status == 200


def test_if_none_match_with_if_modified_since(port):
    """nginx needs both validators to agree: a matching ETag with an older
    If-Modified-Since date still gets the full response."""
    etag = etag_of(b"hello world\n")
    r = get(port, "/hello.txt", [("If-None-Match", etag),
                                 ("If-Modified-Since", "Tue, 20 Oct 2015 07:28:00 GMT")])
    assert r.status == 200
    r = get(port, "/hello.txt", [("If-None-Match", etag), ("If-Modified-Since", MTIME_HTTP)])
    assert r.status == 304
    r = get(port, "/hello.txt", [("If-None-Match", '"x"'), ("If-Modified-Since", MTIME_HTTP)])
    assert r.status == 200


def test_412_preconditions(port):
    etag = etag_of(b"hello world\n")
    assert get(port, "/hello.txt", [("If-Match", '"other"')]).status == 412
    assert get(port, "/hello.txt", [("If-Match", f"W/{etag}")]).status == 412
    assert get(port, "/hello.txt", [("If-Match", etag)]).status == 200
    assert get(port, "/hello.txt", [("If-Match", "*")]).status == 200
    assert get(port, "/hello.txt",
               [("If-Unmodified-Since", "Tue, 20 Oct 2015 07:28:00 GMT")]).status == 412
    assert get(port, "/hello.txt", [("If-Unmodified-Since", MTIME_HTTP)]).status == 200
    assert get(port, "/hello.txt", [("If-Unmodified-Since", "nonsense")]).status == 412


def test_etag_off(port):
    r = get(port, "/noetag/a.txt")
    assert r.status == 200 and r.body == b"no etag\n"
    assert not r.has_header("ETag")
    assert r.header("Last-Modified") == MTIME_HTTP
    assert get(port, "/noetag/a.txt", [("If-None-Match", etag_of(b"no etag\n"))]).status == 200
    assert get(port, "/noetag/a.txt", [("If-Match", etag_of(b"no etag\n"))]).status == 412


# ------------------------------------------------------------------- ranges


@pytest.mark.parametrize("spec,first,last", [
    ("bytes=0-9", 0, 9),
    ("bytes=990-", 990, 999),
    ("bytes=-10", 990, 999),
    ("bytes=-5000", 0, 999),
    ("bytes=995-2000", 995, 999),
    ("bytes=0-0", 0, 0),
    ("bytes=999-999", 999, 999),
    ("bytes=0-", 0, 999),
    ("Bytes=3-4", 3, 4),
    ("bytes=0-1,5000-6000", 0, 1),  # one satisfiable range among several
])
def test_range_206(port, spec, first, last):
    r = get(port, "/file.bin", [("Range", spec)])
    assert r.status == 206, r
    assert r.header("Content-Range") == f"bytes {first}-{last}/1000"
    assert r.header("Content-Length") == str(last - first + 1)
    assert r.body == BIN[first:last + 1]
    assert r.header("ETag") == etag_of(BIN)
    assert r.header("Last-Modified") == MTIME_HTTP
    assert r.header("Content-Type") == "application/octet-stream"


@pytest.mark.parametrize("spec", [
    "bytes=1000-",
    "bytes=1000-1010",
    "bytes=-0",
    "bytes=abc",          # nginx answers a malformed byte range with 416
    "bytes=5-1",
    "bytes=0-1,",
    "bytes=99999999999999999999-",
])
def test_range_416(port, spec):
    with HttpConn(port) as c:
        r = c.request("GET", "/file.bin", [("Range", spec)])
        assert r.status == 416, r
        assert r.header("Content-Range") == "bytes */1000"
        assert BIN not in r.body
        assert c.request("GET", "/hello.txt").status == 200


@pytest.mark.parametrize("spec", ["items=0-1", "bytes=", "bytes 0-1", "bytes=0-600,500-999"])
def test_range_ignored(port, spec):
    r = get(port, "/file.bin", [("Range", spec)])
    assert r.status == 200
    assert r.body == BIN
    assert r.header("Accept-Ranges") == "bytes"
    assert not r.has_header("Content-Range")


def parse_multipart(r):
    """The parts of a multipart/byteranges response: [(content-range, data)]."""
    ctype = r.header("Content-Type")
    assert ctype.startswith("multipart/byteranges; boundary="), ctype
    boundary = ctype.split("boundary=", 1)[1].encode()
    assert r.body.endswith(b"\r\n--" + boundary + b"--\r\n")
    parts = []
    for chunk in r.body.split(b"--" + boundary)[1:-1]:
        head, data = chunk.split(b"\r\n\r\n", 1)
        fields = dict(line.split(b": ", 1) for line in head.strip().split(b"\r\n"))
        parts.append((fields[b"Content-Range"].decode(), data[:-2] if data.endswith(b"\r\n")
                      else data, fields.get(b"Content-Type")))
    return parts


def test_multiple_ranges_get_multipart(port):
    """nginx's multipart/byteranges: one part per range, in the asked order."""
    r = get(port, "/file.bin", [("Range", "bytes=0-1, 5-6, -3")])
    assert r.status == 206
    assert r.header("Content-Length") == str(len(r.body))
    assert not r.has_header("Content-Range")
    parts = parse_multipart(r)
    assert [(cr, d) for cr, d, _ in parts] == [
        ("bytes 0-1/1000", BIN[0:2]), ("bytes 5-6/1000", BIN[5:7]),
        ("bytes 997-999/1000", BIN[997:1000])]
    assert all(ct == b"application/octet-stream" for _, _, ct in parts)


def test_max_ranges(switchyard, tmp_path):
    """max_ranges N: more ranges are ignored (200); 0: no ranges at all."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "f.bin").write_bytes(BIN)
    port = free_port()
    switchyard(http_conf(f"""
server {{ listen 127.0.0.1:{port}; root {root};
    location /two/ {{ alias {root}/; max_ranges 2; }}
    location /none/ {{ alias {root}/; max_ranges 0; }} }}
"""))
    assert get(port, "/two/f.bin", [("Range", "bytes=0-1,5-6")]).status == 206
    r = get(port, "/two/f.bin", [("Range", "bytes=0-1,5-6,9-9")])
    assert r.status == 200 and r.body == BIN
    assert get(port, "/two/f.bin", [("Range", "bytes=0-1,5-6,5000-")]).status == 206
    r = get(port, "/none/f.bin", [("Range", "bytes=0-1")])
    assert r.status == 200 and r.body == BIN and not r.has_header("Accept-Ranges")


def test_range_on_empty_file_is_ignored(port):
    r = get(port, "/empty.txt", [("Range", "bytes=0-")])
    assert r.status == 200 and r.body == b""
    r = get(port, "/empty.txt", [("Range", "bytes=1-")])
    assert r.status == 416 and r.header("Content-Range") == "bytes */0"


def test_if_range(port):
    etag = etag_of(BIN)
    r = get(port, "/file.bin", [("Range", "bytes=10-19"), ("If-Range", etag)])
    assert r.status == 206 and r.body == BIN[10:20]
    r = get(port, "/file.bin", [("Range", "bytes=10-19"), ("If-Range", MTIME_HTTP)])
    assert r.status == 206 and r.body == BIN[10:20]
    for ir in ('"56273e80-3e9"', f"W/{etag}", "Thu, 22 Oct 2015 07:28:00 GMT", "junk"):
        r = get(port, "/file.bin", [("Range", "bytes=10-19"), ("If-Range", ir)])
        assert r.status == 200 and r.body == BIN, ir


def test_range_with_head_and_conditionals(port):
    r = get(port, "/file.bin", [("Range", "bytes=0-3")], method="HEAD")
    assert r.status == 206
    assert r.header("Content-Length") == "4"
    assert r.header("Content-Range") == "bytes 0-3/1000"
    # validators are evaluated before the range
    r = get(port, "/file.bin", [("Range", "bytes=0-3"), ("If-None-Match", etag_of(BIN))])
    assert r.status == 304
    r = get(port, "/file.bin", [("Range", "bytes=0-3"), ("If-Match", '"nope"')])
    assert r.status == 412


def test_range_through_try_files_and_alias(port):
    r = get(port, "/spa/app.js", [("Range", "bytes=1-2")])
    assert r.status == 206 and r.body == b"pp"
    r = get(port, "/img/pic.png", [("Range", "bytes=-4")])
    assert r.status == 206 and r.body == b"ake\n"
