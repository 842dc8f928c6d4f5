"""Fixtures shared by the whole suite. Each area's own helpers live in its test modules or tests/support/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The ``shared/`` folder beside the checkout (docs, captures, facts), if this machine has it."""
    configured = os.environ.get("B24_SHARED_DIR")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def b24_shared_dir() -> Path:
    found = shared_dir()
    if found is None:
        pytest.skip("the shared/ folder (docs and captures) is not beside this checkout")
    return found


@pytest.fixture(scope="session")
def php_binary() -> str:
    """Path of the PHP CLI, the reference implementation of the wire format (facts §7)."""
    found = shutil.which("php")
    if found is None:
        pytest.skip("php is not installed (apt-get install php-cli)")
    return found


@pytest.fixture(autouse=True)
def _inner_pytest_off_ci(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest runs print the same on CI as here.

    pytest stops shortening the short test summary when ``CI`` or ``BUILD_NUMBER`` is set,
    so a test counting lines of an inner run would see other output on CI.
    """
    if "pytester" in request.fixturenames:
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.delenv("BUILD_NUMBER", raising=False)
