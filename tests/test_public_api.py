from __future__ import annotations

import subprocess
import sys

import pytest

import mock_portal


def test_all_is_sorted_and_resolvable() -> None:
    assert mock_portal.__all__ == sorted(mock_portal.__all__)
    for name in mock_portal.__all__:
        assert getattr(mock_portal, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        mock_portal.no_such_name  # noqa: B018


def test_import_is_cheap() -> None:
    """The pytest plugin imports the package in every user's test run: no heavy libraries at import time."""
    heavy = ("aiohttp", "uvicorn", "jsonschema", "faker", "httpx", "responses", "requests")
    code = (
        "import sys, mock_portal, contract_tests.plugin; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert loaded.stdout.strip() == ""
