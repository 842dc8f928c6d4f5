"""``mock-portal verify --tls``: the contract through the TLS front; the handler starts with the proxy env."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

import pytest

from mock_portal.cli import run

REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _checkout_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))


@pytest.mark.slow
def test_the_reference_handler_passes_the_contract_over_tls() -> None:
    port = _free_port()
    out, err = io.StringIO(), io.StringIO()
    start = f"{sys.executable} -m examples.python_handler --port {port}"
    code = run(
        ["verify", "--handler-url", f"http://127.0.0.1:{port}/", "--start", start, "--tls", "--settle", "2"],
        out,
        err,
    )
    assert code == 0, out.getvalue() + err.getvalue()
    assert "PASSED: 12 pass" in out.getvalue()


def test_tls_without_start_is_a_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(["verify", "--handler-url", "http://127.0.0.1:9/", "--tls", "--settle", "2"], out, err)
    assert code == 2
    assert "--tls needs --start" in err.getvalue()
