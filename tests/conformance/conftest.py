"""The conformance tests reuse the integration suite's harness and fixtures
(tests/integration: the proxy under test, the HTTP/1.1 origin, the PKI)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))

_spec = importlib.util.spec_from_file_location("integration_conftest", INTEGRATION / "conftest.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

pytest_configure = _mod.pytest_configure
pytest_report_header = _mod.pytest_report_header
pytest_collection_modifyitems = _mod.pytest_collection_modifyitems
switchyard = _mod.switchyard
origin = _mod.origin
