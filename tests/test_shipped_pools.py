"""The Faker pools shipped for the default locale: what Faker draws, and what an event may carry."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mock_portal import _eventspec
from mock_portal.fakes import FIELD_CLASSES, STATUSES

ROOT = Path(__file__).resolve().parents[1]


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("_faker_pools", ROOT / "scripts" / "faker_pools.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_pools_are_what_faker_draws() -> None:
    import faker

    shipped = _eventspec.shipped_pools()
    if shipped["faker"] != faker.VERSION:
        pytest.skip(f"the file was drawn with Faker {shipped['faker']}, this is {faker.VERSION}")
    script = _script()
    drawn = script.render(script.document())
    shipped_text = _eventspec.POOLS_FILE.read_text(encoding="utf-8")
    assert drawn == shipped_text, "regenerate it: python scripts/faker_pools.py"


def test_the_shipped_pools_hold_valid_values() -> None:
    shipped = _eventspec.shipped_pools()
    pools = shipped["pools"][_eventspec.DEFAULT_LOCALE]
    for name, size in _eventspec._POOL_SIZES.items():
        assert len(pools[name]) == size, name
    assert pools["language_id"] == "ru"
    host = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
    assert all(host.match(domain) for domain in pools["domains"])
    assert all("imopenlines" in scope.split(",") for scope in pools["scopes"])
    assert set(pools["statuses"]) <= set(STATUSES)
    assert all(isinstance(term, int) for term in pools["close_terms"])
    assert set(shipped["classes"][_eventspec.DEFAULT_LOCALE]) == set(FIELD_CLASSES)


def test_events_of_the_default_locale_build_without_faker() -> None:
    code = (
        "import sys; from mock_portal.events import build_event; "
        "events = ('ONSESSIONSTART', 'ONIMCONNECTORMESSAGEADD', 'ONCRMDEALADD'); "
        "[build_event(e, seed=1).body() for e in events]; "
        "print('faker' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout.strip() == "False"


def test_another_locale_is_drawn_with_faker() -> None:
    pools = _eventspec._pools("de_DE")
    assert pools.language_id == "de"
    assert len(pools.domains) == _eventspec._POOL_SIZES["domains"]
