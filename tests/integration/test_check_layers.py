"""scripts/check-layers: upward includes between src/ layers are reported and
fail; the allow-list excuses listed ones and fails on stale entries. Runs the
script on small trees made here (not on the binary)."""

from __future__ import annotations

import pathlib
import subprocess

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "check-layers"


def make_tree(root: pathlib.Path, files: dict[str, str], allow: str | None = None):
    for rel, text in files.items():
        p = root / "src" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "scripts").mkdir(exist_ok=True)
    if allow is not None:
        (root / "scripts" / "layers-allow.txt").write_text(allow)


def run(root: pathlib.Path):
    return subprocess.run([str(SCRIPT), str(root)], capture_output=True, text=True, timeout=30)


def test_downward_includes_pass(tmp_path):
    make_tree(tmp_path, {
        "core/a.h": "#include <stdio.h>\n",
        "http/b.c": '#include "core/a.h"\n#include "conf/c.h"\n#include "http/b.h"\n',
        "main.c": '#include "proc/w.h"\n',
    })
    r = run(tmp_path)
    assert r.returncode == 0, r.stdout
    assert r.stdout == ""


def test_upward_include_is_reported_with_its_line(tmp_path):
    make_tree(tmp_path, {
        "core/log.h": '#include <stdint.h>\n\n#include "conf/conf.h"\n',
        "tls/tls.c": '#include "tls/tls.h"\n#include "proc/runtime.h"\n',
    })
    r = run(tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "src/core/log.h:3: layer core includes conf/conf.h (upward)",
        "src/tls/tls.c:2: layer tls includes proc/runtime.h (upward)",
    ]


def test_allow_list_excuses_and_stale_entries_fail(tmp_path):
    make_tree(tmp_path, {"http/h1_server.c": '#include "proxy/proxy.h"\n'},
              allow="# lead's work\nsrc/http/h1_server.c -> proxy/proxy.h\n")
    r = run(tmp_path)
    assert r.returncode == 0, r.stdout
    (tmp_path / "src" / "http" / "h1_server.c").write_text('#include "http/request.h"\n')
    r = run(tmp_path)
    assert r.returncode == 1
    assert "stale entry src/http/h1_server.c -> proxy/proxy.h" in r.stdout


def test_this_tree_passes():
    r = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout
