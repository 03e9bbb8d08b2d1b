"""The configurations shipped in conf/ (the demo and the seed's examples) pass
`switchyard -t`, and -t explains what Switchyard does where nginx would break
WebSockets or upstream keep-alive."""
import pytest

from harness import REPO, run_switchyard_t

EXAMPLES = sorted((REPO / "conf" / "examples").glob("*.conf"))


@pytest.mark.parametrize("path", EXAMPLES + [REPO / "conf" / "switchyard.conf"], ids=lambda p: p.name)
def test_shipped_config_passes_t(path, tmp_path):
    text = path.read_text()
    if path.name == "switchyard.conf":
        # the demo includes mime.types relative to its own directory
        (tmp_path / "mime.types").write_text((REPO / "conf" / "mime.types").read_text())
    rc, out = run_switchyard_t(text, prefix=tmp_path)
    assert rc == 0, out
    assert "test is successful" in out


@pytest.mark.switchyard_only
def test_seed_first_config_gets_a_note(tmp_path):
    rc, out = run_switchyard_t((REPO / "conf/examples/seed-first.conf").read_text(), prefix=tmp_path)
    assert rc == 0
    assert 'location "/ws"' in out and "Switchyard upgrades automatically" in out


@pytest.mark.switchyard_only
def test_map_idiom_gets_a_keepalive_note(tmp_path):
    rc, out = run_switchyard_t((REPO / "conf/examples/map-idiom.conf").read_text(), prefix=tmp_path)
    assert rc == 0
    assert "would disable upstream keep-alive" in out
