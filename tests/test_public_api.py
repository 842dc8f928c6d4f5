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


def test_the_server_loads_the_control_api_and_the_rarer_rest_scopes_on_first_need() -> None:
    """A contract run starts a portal server and never sends a control request: the control API's routes,
    checks and handlers (and the REST scopes no handler's set-up calls) load when first needed."""
    code = (
        "import sys, json, urllib.request\n"
        "import mock_portal.server as server\n"
        "from mock_portal import rest\n"
        "later = ('mock_portal.control', 'mock_portal.control_routes', 'mock_portal.inspector',\n"
        "         *(f'mock_portal.rest.{s}' for s in rest.DEFERRED_SCOPES))\n"
        "print(','.join(m for m in later if m in sys.modules))\n"
        "with server.PortalServer() as running:\n"
        "    with urllib.request.urlopen(running.url + '/_portal') as answer:\n"
        "        routes = json.load(answer)['routes']\n"
        "assert len(routes) == len(server.CONTROL_ROUTES) > 0\n"
        "print('mock_portal.control' in sys.modules)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert loaded.stdout.split() == ["True"], loaded.stdout
