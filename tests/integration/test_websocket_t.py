"""`switchyard -t` explains the WebSocket differences from nginx in the
seed's configurations (../shared/seed/nginx-websocket-proxy-blog-post.md):

- the first config (no Upgrade/Connection lines): a [notice]/[warn] line that
  on nginx this location would not pass WebSocket upgrades and that
  Switchyard upgrades automatically;
- the map idiom (Connection $connection_upgrade): a note that on nginx the map
  disables upstream keep-alive and that Switchyard keeps it;
- exit code 0 either way (notes, not errors).

nginx prints none of this, so these tests are Switchyard-only.
"""

from __future__ import annotations

import re

import pytest

from harness import free_port
from ws_fixtures import ws_conf

pytestmark = pytest.mark.switchyard_only

BACKEND = "127.0.0.1:9000"  # -t does not connect; the seed's own address


def notes(output: str) -> list[str]:
    """The message part of every [notice]/[warn] line (after the level tag,
    so the program-name prefix does not count as a mention of Switchyard)."""
    out = []
    for line in output.splitlines():
        m = re.search(r"\[(?:notice|warn)\]\s*(.*)$", line)
        if m:
            out.append(m.group(1))
    return out


def has_all(text: str, *patterns: str) -> bool:
    return all(re.search(p, text, re.I) for p in patterns)


def auto_upgrade_notes(output: str) -> list[str]:
    return [n for n in notes(output)
            if has_all(n, r"\bnginx\b", r"websocket|upgrade", r"automatic")]


def keepalive_notes(output: str) -> list[str]:
    return [n for n in notes(output)
            if has_all(n, r"\bnginx\b", r"keep-?alive", r"connection|\bmap\b",
                       r"switchyard")]


def test_t_first_config_notes_automatic_upgrade(sy_t):
    rc, out = sy_t(ws_conf("first", BACKEND, free_port()))
    assert rc == 0, out
    found = auto_upgrade_notes(out)
    assert found, f"no note about WebSocket upgrades on nginx vs Switchyard:\n{out}"
    # it names the location (or its place in the file)
    assert any(re.search(r'"/ws"|/ws\b|sy-t\.conf:\d+', n) for n in found), found


def test_t_map_idiom_notes_keepalive(sy_t):
    rc, out = sy_t(ws_conf("map", BACKEND, free_port()))
    assert rc == 0, out
    assert keepalive_notes(out), f"no note about the Connection map and upstream keep-alive:\n{out}"


@pytest.mark.parametrize("kind", ["second", "map"])
def test_t_no_auto_upgrade_note_where_nginx_upgrades(sy_t, kind):
    """The second config and the map idiom do pass upgrades on nginx: no
    "would not pass WebSocket upgrades" note for them."""
    rc, out = sy_t(ws_conf(kind, BACKEND, free_port()))
    assert rc == 0, out
    assert auto_upgrade_notes(out) == [], out


def test_t_no_websocket_notes_without_proxy_pass(sy_t):
    rc, out = sy_t(ws_conf("first", BACKEND, free_port()).replace(
        f"proxy_pass        http://{BACKEND}/ws;", "return 200 ok;"))
    assert rc == 0, out
    assert auto_upgrade_notes(out) == [] and keepalive_notes(out) == [], out
