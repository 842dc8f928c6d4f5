"""``mock-portal verify`` and ``mock-portal demo``: handlers started with --start, reports, exit codes.

The handlers run as real processes (Python and plain ``node``) on 127.0.0.1; the verdicts come from real HTTP.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_portal.cli import run

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_HANDLER = REPO_ROOT / "examples" / "node_handler" / "handler.js"
FAST = ["--settle", "0.05"]
# a secret value after its key, in a form body or JSON: redaction must have replaced every one with ***
LEAK = re.compile(r"(access|refresh|application)_token(%5D)?(=|\":\s*\")[0-9a-f]")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _verify(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if cwd is None:
        code = run(["verify", *argv], out, err)
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(cwd)
            patch.syspath_prepend(str(cwd))
            code = run(["verify", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _checkout_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # --start runs `python -m examples...`, which needs the checkout on the child's path
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _own_clauses_forgotten() -> Iterator[None]:
    """Clauses a test's --clauses module registers are forgotten after it, module and all."""
    from contract_tests.clauses import REGISTRY

    modules = set(sys.modules)
    with REGISTRY.scoped():
        yield
    for name in set(sys.modules) - modules:
        if name.endswith("clauses"):
            del sys.modules[name]


def _python(module: str, *args: str) -> str:
    return " ".join([sys.executable, "-m", module, *args])


@pytest.mark.slow
def test_verify_starts_the_python_handler_and_writes_reports(tmp_path: Path) -> None:
    port = _free_port()
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    code, out, err = _verify(
        "--handler-url",
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.python_handler", "--port", str(port)),
        "--strict",
        "--junit",
        str(junit),
        "--report-json",
        str(report),
        *FAST,
    )
    assert code == 0, out + err
    assert "1 accepts-every-shape            MUST    PASS" in out
    # the reference handler does not declare offline use: clause 11 does not apply, and the table says so
    assert re.search(
        r"^11 catches-up-offline +SHOULD +SKIP +not applicable: the handler does not declare "
        r"offline use \(mock-portal verify --offline",
        out,
        re.M,
    ), out
    assert "PASSED: 12 pass, 1 skip" in out
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("13", "0", "1")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] is True
    outcomes = {v["clause"]: v["outcome"] for v in data["verdicts"]}
    assert outcomes.pop("catches-up-offline") == "skip"
    assert list(outcomes.values()) == ["pass"] * 12
    # the handler was stopped: its port no longer answers
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.slow
def test_verify_runs_the_generic_clauses_for_every_declared_event(tmp_path: Path) -> None:
    port = _free_port()
    report = tmp_path / "report.json"
    code, out, err = _verify(
        "--handler-url",
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.python_handler", "--port", str(port)),
        "--events",
        "ONSESSIONSTART,onimconnectormessageadd",
        "--strict",
        "--report-json",
        str(report),
        *FAST,
    )
    assert code == 0, out + err
    assert out.startswith("b24-contract ONSESSIONSTART, ONIMCONNECTORMESSAGEADD: http://127.0.0.1:")
    assert re.search(r"^3a forged-token-no-side-effect\[ONIMCONNECTORMESSAGEADD\] +MUST +PASS ", out, re.M)
    assert "PASSED: 21 pass" in out
    data = json.loads(report.read_text(encoding="utf-8"))
    events = [v["event"] for v in data["verdicts"]]
    assert events.count("ONIMCONNECTORMESSAGEADD") == 9
    assert events.count("ONSESSIONSTART") == 13


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.slow
def test_verify_starts_the_node_handler() -> None:
    port = _free_port()
    code, out, err = _verify(
        "--handler-url",
        f"http://127.0.0.1:{port}/",
        "--start",
        f"node {NODE_HANDLER} --port {port}",
        "--strict",
        *FAST,
    )
    assert code == 0, out + err
    assert "PASSED: 12 pass" in out


def test_verify_offline_runs_clause_11_against_a_handler_that_uses_offline_events() -> None:
    port = _free_port()
    code, out, err = _verify(
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.broken", "--port", str(port)),
        "--offline",
        "--clause",
        "catches-up-offline",
        "--strict",
        *FAST,
    )
    assert code == 0, out + err
    assert re.search(r"^11 catches-up-offline +SHOULD +PASS +\d+ events queued offline; ", out, re.M), out
    assert "PASSED: 1 pass" in out


def test_verify_offline_fails_a_handler_that_never_clears_what_it_took_under_strict() -> None:
    port = _free_port()
    code, out, err = _verify(
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.broken", "--flaw", "never-clears-offline", "--port", str(port)),
        "--offline",
        "--clause",
        "11",
        "--strict",
        *FAST,
    )
    assert code == 1, out + err
    assert re.search(r"^11 catches-up-offline +SHOULD +FAIL +\d+ record\(s\) taken with clear=0", out, re.M)
    assert "doc page: https://apidocs.bitrix24.com/api-reference/events/event-offline-get.html" in out
    assert not LEAK.search(out), LEAK.search(out)
    [rerun] = re.findall(r"re-run just this clause: (.*)", out)
    assert " --offline " in rerun
    assert " --strict " in rerun
    assert rerun.endswith("--clause catches-up-offline")


@pytest.mark.slow
def test_failed_must_clause_exits_1_with_evidence_and_the_handler_log() -> None:
    port = _free_port()
    code, out, _ = _verify(
        "--handler-url",
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.broken", "--flaw", "crashes-on-json", "--port", str(port)),
        *FAST,
    )
    assert code == 1
    assert re.search(r"5 rejects-malformed-bodies\s+MUST\s+FAIL", out), out
    assert "FAILED: 11 pass, 1 fail" in out
    assert "clause 5 rejects-malformed-bodies [MUST] FAIL" in out
    assert "reproduce (secrets masked): curl -sS -i -X POST" in out
    assert "handler log (last lines):" in out
    assert "POST /" in out  # a line of the broken handler's own log
    assert not LEAK.search(out), LEAK.search(out)
    # one command re-runs just that clause, starting the handler again: the failure itself, reproduced
    [rerun] = re.findall(r"re-run just this clause: (.*)", out)
    assert rerun.startswith(f"mock-portal verify http://127.0.0.1:{port}/ --start ")
    assert rerun.endswith("--clause rejects-malformed-bodies")
    code, again, _ = _verify(*shlex.split(rerun)[2:], *FAST)
    assert code == 1
    assert re.search(r"5 rejects-malformed-bodies\s+MUST\s+FAIL", again)
    assert "FAILED: 1 fail" in again


@pytest.mark.slow
def test_failed_should_clause_exits_0_unless_strict() -> None:
    port = _free_port()
    argv = [
        "--handler-url",
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.broken", "--flaw", "echoes-auth", "--port", str(port)),
        *FAST,
    ]
    code, out, _ = _verify(*argv)
    assert code == 0, out
    assert re.search(r"9 never-echoes-secrets\s+SHOULD\s+FAIL", out)
    assert not LEAK.search(out), LEAK.search(out)
    strict_code, strict_out, _ = _verify(*argv, "--strict")
    assert strict_code == 1
    assert "(strict: SHOULD clauses count)" in strict_out


def test_nothing_listening_is_an_environment_error() -> None:
    port = _free_port()
    code, out, err = _verify("--handler-url", f"http://127.0.0.1:{port}/")
    assert code == 2
    assert out == ""
    expected = f"nothing answers at 127.0.0.1:{port} (start the handler first, or give --start CMD)"
    assert err == f"mock-portal: error: {expected}\n"


def test_start_command_that_dies_is_an_environment_error() -> None:
    port = _free_port()
    command = f"{sys.executable} -c \"print('boom, no config'); raise SystemExit(3)\""
    code, _, err = _verify("--handler-url", f"http://127.0.0.1:{port}/", "--start", command)
    assert code == 2
    assert "the handler exited with code 3 before" in err
    assert "boom, no config" in err


def test_start_command_that_cannot_run() -> None:
    code, _, err = _verify(
        "--handler-url", "http://127.0.0.1:9/", "--start", "no-such-handler-binary --port 9"
    )
    assert code == 2
    assert err.startswith("mock-portal: error: --start: cannot run 'no-such-handler-binary'")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "--handler-url",
                "http://127.0.0.1:9/",
                "--install-url",
                "http://a.b/",
                "--application-token",
                "t",
            ],
            "not allowed with",
        ),
        (["--handler-url", "http://127.0.0.1:9/", "--shapes", "docs-2025x"], "unknown shape 'docs-2025x'"),
        (["--handler-url", "http://127.0.0.1:9/", "--timeout", "0"], "timeout must be"),
        (
            ["--handler-url", "http://127.0.0.1:9/", "--events", "ONSESSIONSTART,ONAPPINSTALL"],
            "unknown declarable event 'ONAPPINSTALL'",
        ),
        (["--handler-url", "localhost"], "must be an http(s) URL"),
        ([], "give the handler's URL: mock-portal verify URL (or --handler-url URL)"),
        (["http://127.0.0.1:9/", "--handler-url", "http://127.0.0.1:8/"], "give the handler's URL once"),
        (["http://127.0.0.1:9/", "--clause", "survives-burst"], "did you mean 'survives-bursts'"),
        (["http://127.0.0.1:9/", "--clauses", "no_such_clauses_module"], "--clauses no_such_clauses_module"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str) -> None:
    code, _, err = _verify(*argv)
    assert code == 2
    assert message in err


def test_verify_runs_clauses_registered_by_a_module() -> None:
    port = _free_port()
    code, out, err = _verify(
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.python_handler", "--port", str(port)),
        "--events",
        "ONSESSIONSTART,ONIMCONNECTORMESSAGEADD",
        "--clauses",
        "examples.own_clauses",
        "--clause",
        "greets-in-own-chat,confirms-delivery[ONIMCONNECTORMESSAGEADD]",
        "--strict",
        *FAST,
    )
    assert code == 0, out + err
    assert re.search(r"^greets-in-own-chat +SHOULD +PASS +greeted in chat\d+$", out, re.M), out
    assert re.search(
        r"^confirms-delivery\[ONIMCONNECTORMESSAGEADD\] +MUST +PASS +message \d+ confirmed", out, re.M
    )
    assert "PASSED: 2 pass" in out


def test_an_own_clause_fails_with_the_same_report_as_a_built_in_one(tmp_path: Path) -> None:
    # the broken handler writes "Hi" to the session's chat, never confirms connector messages
    module = tmp_path / "strict_clauses.py"
    module.write_text(
        "from contract_tests import clause\n"
        "from examples.own_clauses import greets_in_own_chat\n"
        "\n"
        "@clause('says-hello-politely', level='MUST', title='t', expected='a greeting longer than Hi',\n"
        "        evidence='e', doc='https://example.test/doc', events=['ONSESSIONSTART'])\n"
        "def polite(ctx):\n"
        "    site = ctx.site()\n"
        "    sent = ctx.deliver(site, ctx.build(site))\n"
        "    texts = [c.params.get('MESSAGE') for c in ctx.calls(sent)]\n"
        "    if texts == ['Hi']:\n"
        "        ctx.fail(f'the greeting was {texts[0]!r}', [sent])\n",
        encoding="utf-8",
    )
    port = _free_port()
    code, out, _ = _verify(
        f"http://127.0.0.1:{port}/",
        "--start",
        _python("examples.broken", "--port", str(port)),
        "--clauses",
        "strict_clauses",
        "--clause",
        "says-hello-politely",
        *FAST,
        cwd=tmp_path,
    )
    assert code == 1, out
    assert "clause says-hello-politely [MUST] FAIL: the greeting was 'Hi'" in out
    assert "doc page: https://example.test/doc" in out
    assert "re-run just this clause: mock-portal verify" in out
    assert "--clauses strict_clauses" in out


def test_demo_verifies_the_bundled_handler(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    report = tmp_path / "demo.json"
    code = run(["demo", "--strict", "--report-json", str(report)], out, err)
    assert code == 0, out.getvalue() + err.getvalue()
    text = out.getvalue()
    assert text.startswith("reference Python handler listening on http://127.0.0.1:")
    assert "PASSED: 12 pass" in text
    assert json.loads(report.read_text(encoding="utf-8"))["counts"]["pass"] == 12
    # it ends with the next step: the same contract against the user's own handler, over HTTP and in pytest
    next_step = text.rsplit("\nNext: ", 1)[1]
    assert "mock-portal verify --handler-url" in next_step
    assert "class TestMyHandler(OnSessionStartContract):" in next_step
    assert "#concepts-in-five-minutes" in next_step


def test_subcommands_are_listed() -> None:
    out = io.StringIO()
    assert run(["--help"], out, io.StringIO()) == 0
    assert "verify" in out.getvalue()
    assert "demo" in out.getvalue()


def test_the_readme_shows_the_own_clauses_module_as_it_is() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    module = (REPO_ROOT / "examples" / "own_clauses.py").read_text(encoding="utf-8")
    shown = readme.split("# examples/own_clauses.py\n", 1)[1].split("```", 1)[0]
    assert shown == module[module.index("from contract_tests import clause") :]
