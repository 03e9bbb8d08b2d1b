"""Fixtures for the integration tests: the proxy under test and real backends.

Run against nginx to validate expectations:
    SWITCHYARD_BIN=/usr/sbin/nginx /usr/bin/python3 -m pytest -n 4 tests/integration
"""

from __future__ import annotations

import pytest

import harness
from backends import HttpOrigin, RawBackend


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "switchyard_only: a deliberate Switchyard difference from nginx; "
        "skipped when SWITCHYARD_BIN is nginx")
    config.addinivalue_line("markers", "slow: takes more than a second on purpose")


def pytest_report_header(config):
    return f"proxy under test: {harness.BIN} ({'nginx' if harness.IS_NGINX else 'switchyard'})"


def pytest_collection_modifyitems(config, items):
    if harness.IS_NGINX:
        skip = pytest.mark.skip(reason="Switchyard-only behaviour (running against nginx)")
        for item in items:
            if "switchyard_only" in item.keywords:
                item.add_marker(skip)


def _require_binary():
    if not harness.BIN.exists():
        pytest.skip(f"{harness.BIN} is not built (make all), or set SWITCHYARD_BIN")


@pytest.fixture
def switchyard(tmp_path):
    """Factory: sy = switchyard(conf_text, check_start=True) starts the proxy
    with prefix tmp_path (a second instance in the same test gets its own
    sub-directory) and stops it gracefully at teardown."""
    _require_binary()
    instances: list[harness.Switchyard] = []

    def start(conf_text: str, *, check_start: bool = True) -> harness.Switchyard:
        prefix = tmp_path if not instances else tmp_path / f"sy{len(instances) + 1}"
        sy = harness.Switchyard(prefix, conf_text)
        sy.check_start = check_start
        instances.append(sy)
        try:
            return sy.start(check_start=check_start)
        except Exception:
            sy.check_start = False  # already reported; teardown only cleans up
            raise

    yield start

    problems = []
    for sy in instances:
        problems += sy.stop(expect_running=sy.check_start)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def sy_t(tmp_path):
    """run_switchyard_t bound to this test's temp directory."""
    _require_binary()

    def run(conf_text: str, extra_args=("-t",)):
        return harness.run_switchyard_t(conf_text, tmp_path / "t", extra_args=extra_args)

    return run


@pytest.fixture
def origin():
    o = HttpOrigin().start()
    yield o
    o.stop()


@pytest.fixture
def origin2():
    o = HttpOrigin().start()
    yield o
    o.stop()


@pytest.fixture
def raw_backend():
    """Factory: raw_backend(handler) -> started RawBackend, stopped at teardown."""
    started = []

    def make(handler):
        b = RawBackend(handler).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()

from ws_fixtures import ws_backend  # noqa: E402,F401  (WebSocket backend fixture)
