"""``scripts/sdk_suite.py`` without the SDK: the portal it sets up, the settings it writes, its options."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mock_portal import rest
from mock_portal.portal import Clock, Portal
from mock_portal.restkit import Plan

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sdk_suite.py"


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sdk_suite_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_portal_holds_what_the_suite_takes_for_granted(suite: ModuleType, tmp_path: Path) -> None:
    portal = Portal(suite.DOMAIN, seed=1, clock=Clock(start=1_750_000_000.0))
    try:
        _, token, _ = portal.install_app(None, client_id="local.t.1", scopes=suite.SUITE_SCOPES)
        constants = suite.prepare_portal(portal, token.access_token)
        assert constants == {"HEAD_DEPARTMENT_ID": 1, "LEAD_ID": 1}
        deal = rest.call(portal, "crm.deal.get", {"id": suite.RECURRING_DEAL_ID, "auth": token.access_token})
        assert deal.body["result"]["ID"] == str(suite.RECURRING_DEAL_ID)
        queued = rest.call(portal, "event.offline.list", {"auth": token.access_token}).body["result"]
        assert [(e["EVENT_NAME"], e["EVENT_DATA"]["FIELDS"]["ID"]) for e in queued] == [("ONCRMLEADADD", 1)]
        (tmp_path / "tests").mkdir()
        suite.write_constants(tmp_path, constants)
        written = (tmp_path / "tests" / "constants_local.py").read_text(encoding="utf-8")
        assert "HEAD_DEPARTMENT_ID = 1\nLEAD_ID = 1\n" in written
    finally:
        portal.close()


def test_rate_plans(suite: ModuleType) -> None:
    assert suite.parse_plan("suite") is suite.SUITE_PLAN
    assert suite.parse_plan("enterprise") == "enterprise"
    assert suite.parse_plan("250/5") == Plan("custom", burst=250, drain=5.0)
    with pytest.raises(suite.UsageError, match="--rate-plan 'fast'"):
        suite.parse_plan("fast")
    assert suite.main(["--source", "/nonexistent", "--rate-plan", "x/y"]) == 2
