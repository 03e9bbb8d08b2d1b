"""secure_link (ngx_http_secure_link_module): signed, expiring download
links checked by the proxy. The md5 form (`secure_link $arg_md5,$arg_expires;
secure_link_md5 "$secure_link_expires$uri secret";`) and the older
secure_link_secret form; $secure_link is "1", "0" (expired) or empty, and
$secure_link_expires the expiry. Runs against nginx too.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from harness import free_port, http_conf, request


def sign(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode().rstrip("=")


@pytest.fixture
def site(switchyard, tmp_path):
    www = tmp_path / "www"
    (www / "dl").mkdir(parents=True)
    (www / "dl" / "file.txt").write_text("the file\n")
    port = free_port()
    switchyard(http_conf(f"""
server {{
    listen 127.0.0.1:{port};
    root {www};
    location /dl/ {{
        secure_link $arg_md5,$arg_expires;
        secure_link_md5 "$secure_link_expires$uri s3cret";
        if ($secure_link = "") {{ return 403; }}
        if ($secure_link = "0") {{ return 410; }}
    }}
    location /show {{
        secure_link $arg_md5,$arg_expires;
        secure_link_md5 "$secure_link_expires/show s3cret";
        return 200 "link=[$secure_link] expires=[$secure_link_expires]";
    }}
    location /p/ {{
        secure_link_secret w0rd;
        if ($secure_link = "") {{ return 403; }}
        return 200 "link=$secure_link";
    }}
}}"""))
    return port


def test_md5_form(site):
    exp = str(int(time.time()) + 3600)
    good = sign(f"{exp}/dl/file.txt s3cret")
    r = request(site, "GET", f"/dl/file.txt?md5={good}&expires={exp}")
    assert r.status == 200 and r.body == b"the file\n"
    assert request(site, "GET", f"/dl/file.txt?md5={good}&expires={int(exp) + 1}").status == 403
    assert request(site, "GET", f"/dl/file.txt?md5=AAAA&expires={exp}").status == 403
    assert request(site, "GET", "/dl/file.txt").status == 403
    old = str(int(time.time()) - 10)
    expired = sign(f"{old}/dl/file.txt s3cret")
    assert request(site, "GET", f"/dl/file.txt?md5={expired}&expires={old}").status == 410


def test_variables(site):
    exp = str(int(time.time()) + 60)
    good = sign(f"{exp}/show s3cret")
    assert request(site, "GET", f"/show?md5={good}&expires={exp}").body == \
        f"link=[1] expires=[{exp}]".encode()
    assert request(site, "GET", f"/show?md5=xyz&expires={exp}").body == \
        f"link=[] expires=[{exp}]".encode()


def test_secret_form(site):
    h = hashlib.md5(b"some/file.bin" + b"w0rd").hexdigest()
    assert request(site, "GET", f"/p/{h}/some/file.bin").body == b"link=some/file.bin"
    assert request(site, "GET", f"/p/{'0' * 32}/some/file.bin").status == 403
    assert request(site, "GET", f"/p/{h}/").status == 403
