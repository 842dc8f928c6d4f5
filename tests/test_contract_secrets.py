"""No secret of a run in anything the contract writes: every token the run issued or was given, searched for
raw, hex-encoded and percent-encoded in stdout, stderr, the JUnit and JSON reports (with the handler's log
tail, curl lines and quoted answers inside them).

The tokens are collected from the run's portals themselves (apps, OAuth tokens, client secrets) and from its
configuration, not from the masker, so a token the masker never learnt would be found here.
"""

from __future__ import annotations

import io
import re
import socket
import sys
from pathlib import Path

import pytest

from contract_tests.engine import ContractRun
from mock_portal.cli import run
from tests.conftest import REPO_ROOT

TOKEN = "c0ffee00c0ffee00c0ffee00c0ffee00"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    hexed = raw.hex()
    percent = "".join(f"%{b:02x}" for b in raw)
    return [secret, hexed, hexed.upper(), percent, percent.upper()]


def _tokens_of(contract: ContractRun) -> set[str]:
    found = {contract.config.application_token or ""}
    for site in contract.sites:
        for app in site.portal.apps.values():
            found |= {app.application_token, app.client_secret}
        for token in site.portal.tokens.values():
            found |= {token.access_token, token.refresh_token or ""}
    return {t for t in found if len(t) >= 8}


@pytest.fixture
def run_tokens(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The tokens of every contract run the test makes, collected as each run closes."""
    collected: list[set[str]] = []
    close = ContractRun.close

    def closing(self: ContractRun) -> None:
        collected.append(_tokens_of(self))
        close(self)

    monkeypatch.setattr(ContractRun, "close", closing)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    return collected


CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    # it echoes the auth block in its answers and logs every body it receives, tokens and all
    "echoes and logs": (["-m", "examples.broken", "--flaw", "echoes-auth", "--log-bodies"], {}),
    # configured with its token (given through the environment, as the help recommends), crashes on JSON
    "configured token": (
        ["-m", "examples.python_handler", "--application-token", TOKEN],
        {"B24_APPLICATION_TOKEN": TOKEN},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.slow
def test_no_token_of_the_run_in_any_output(
    case: str, run_tokens: list[set[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, env = CASES[case]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    port = _free_port()
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    start = " ".join([sys.executable, *argv, "--port", str(port)])
    out, err = io.StringIO(), io.StringIO()
    code = run(
        [
            "verify",
            f"http://127.0.0.1:{port}/",
            "--start",
            start,
            "--strict",
            "--settle",
            "0.05",
            "--junit",
            str(junit),
            "--report-json",
            str(report),
            # it uses offline events too: the portal's own ONOFFLINEEVENT carries fresh tokens, logged
            *(["--offline"] if case == "echoes and logs" else []),
        ],
        out,
        err,
    )
    artifacts: dict[str, str] = {
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "junit": junit.read_text(encoding="utf-8"),
        "json": report.read_text(encoding="utf-8"),
    }
    assert code in (0, 1), artifacts["stderr"]
    [tokens] = run_tokens
    assert len(tokens) > 50  # every portal's app token, client secret, and each event's access token
    if case == "configured token":
        assert TOKEN in tokens
    else:
        assert "never-echoes-secrets" in artifacts["stdout"]
        assert "handler log (last lines)" in artifacts["stdout"]
        assert re.search(r"^11 catches-up-offline +SHOULD +PASS ", artifacts["stdout"], re.M)
    for name, text in artifacts.items():
        for token in tokens:
            for form in _forms(token):
                assert form not in text, f"a token of the run ({form[:6]}...) in {name}"


def test_the_masker_finds_a_secret_in_every_encoding() -> None:
    import base64

    from contract_tests.masking import Masker

    secret = "5f2b9c0e7a1d4f6b8c3e2a1d0f9e8d7c"
    masker = Masker([secret])
    masker.add("0123456789abcdef", leak=False)  # a forger's made-up token: masked, never a leak
    raw = secret.encode()
    forms = [
        secret,
        raw.hex(),
        raw.hex().upper(),
        "".join(f"%{b:02x}" for b in raw),
        "".join(f"%{b:02X}" for b in raw),
        base64.b64encode(raw).decode().rstrip("="),
    ]
    for form in forms:
        text = f"echo: {form}; more text"
        assert masker(text) == "echo: ***; more text", form
        assert masker.found_in(text) == [secret], form
    # inside a longer run (a hex dump of a whole body), and cut by nothing else
    dump = ("ff" + raw.hex() + "00") * 2
    assert raw.hex() not in masker(dump)
    assert masker("a 0123456789abcdef b") == "a *** b"
    assert masker.found_in("a 0123456789abcdef b") == []
    assert masker("ordinary words stay as they are") == "ordinary words stay as they are"
