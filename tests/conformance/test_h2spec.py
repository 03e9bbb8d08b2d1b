"""h2spec (issue 13 item 5): the 146 cases of RFC 7540/7541 against a TLS
`listen ... ssl http2` listener and a plain h2c `listen ... http2` listener,
each proxying to a real HTTP/1.1 origin (backends.HttpOrigin).

Run with `make h2spec` (builds build/h2spec, see the Makefile), or by hand:

    H2SPEC=build/h2spec /usr/bin/python3 -m pytest -q tests/conformance
    SWITCHYARD_BIN=/usr/sbin/nginx H2SPEC=build/h2spec /usr/bin/python3 -m pytest -q tests/conformance

Switchyard must pass 146/146 on both listeners. Against nginx the test
asserts nginx's known result instead: exactly the cases listed in
nginx-known-failures.txt fail (nginx 1.22.1 passes 121/146), so a change of
nginx's behaviour, or of h2spec, shows up. The JUnit report of each run is
left in $H2SPEC_REPORTS (default: the test's temp directory).
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import IS_NGINX, REPO, free_port, http_conf
from tls_pki import Pki

HERE = Path(__file__).resolve().parent
H2SPEC = Path(os.environ.get("H2SPEC", str(REPO / "build" / "h2spec")))
KNOWN_NGINX = HERE / "nginx-known-failures.txt"
TOTAL = 146


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def h2spec_conf(tls_port: int, h2c_port: int, crt, key, origin_addr: str) -> str:
    loc = f"location / {{ proxy_pass http://{origin_addr}; }}"
    return http_conf(f"""
server {{
    listen 127.0.0.1:{tls_port} ssl http2;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    {loc}
}}
server {{
    listen 127.0.0.1:{h2c_port} http2;
    {loc}
}}""")


def run_h2spec(port: int, tls: bool, report: Path) -> list[tuple[str, str, str]]:
    """Run h2spec; [(case id, description, outcome)] from its JUnit report:
    the id is h2spec's (section/N, e.g. http2/5.1/3), the outcome one of
    passed/failed/skipped."""
    if not H2SPEC.exists():
        pytest.skip(f"{H2SPEC} is not built (make build/h2spec)")
    argv = [str(H2SPEC), "-h", "127.0.0.1", "-p", str(port), "-o", "3", "-j", str(report)]
    if tls:
        argv += ["-t", "-k"]
    p = subprocess.run(argv, capture_output=True, timeout=600)
    if not report.exists():
        pytest.fail(f"h2spec wrote no report (exit {p.returncode}):\n"
                    f"{p.stdout.decode()[-3000:]}\n{p.stderr.decode()[-2000:]}")
    cases = []
    for suite in ET.parse(report).getroot().iter("testsuite"):
        pkg = suite.get("package") or suite.get("name")
        for i, tc in enumerate(suite.iter("testcase"), 1):
            outcome = ("failed" if tc.find("failure") is not None or tc.find("error") is not None
                       else "skipped" if tc.find("skipped") is not None else "passed")
            cases.append((f"{pkg}/{i}", tc.get("classname") or tc.get("name") or "", outcome))
    return cases


def case_id(pkg: str, name: str) -> str:
    return f"{pkg}  {name}"


def known_nginx_failures() -> set[str]:
    lines = KNOWN_NGINX.read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def known_nginx_ids() -> set[str]:
    return {ln.split()[0] for ln in known_nginx_failures()}


@pytest.mark.slow
@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
def test_h2spec(switchyard, origin, pki, tmp_path, tls):
    tls_port, h2c_port = free_port(), free_port()
    crt, key = pki.cert("a.test")
    switchyard(h2spec_conf(tls_port, h2c_port, crt, key, origin.addr))
    out = Path(os.environ.get("H2SPEC_REPORTS", str(tmp_path)))
    out.mkdir(parents=True, exist_ok=True)
    tag = ("nginx" if IS_NGINX else "switchyard") + ("-tls" if tls else "-h2c")
    cases = run_h2spec(tls_port if tls else h2c_port, tls, out / f"h2spec-{tag}.xml")
    failed = sorted(case_id(p, n) for p, n, o in cases if o != "passed")
    summary = out / f"h2spec-{tag}.txt"
    summary.write_text(f"{len(cases) - len(failed)}/{len(cases)} passed\n" + "\n".join(failed) + "\n")
    assert len(cases) == TOTAL, f"h2spec ran {len(cases)} cases, expected {TOTAL}"
    if IS_NGINX:
        ids = {f.split()[0] for f in failed}
        assert ids == known_nginx_ids(), (
            f"nginx's h2spec result changed ({summary}):\n"
            f"newly failing: {sorted(ids - known_nginx_ids())}\n"
            f"now passing: {sorted(known_nginx_ids() - ids)}")
    else:
        assert not failed, f"{len(failed)}/{TOTAL} h2spec cases fail ({summary}):\n" + "\n".join(failed)
