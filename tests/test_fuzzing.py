"""Fuzzing a handler (``survives-fuzzing``): events generated from the schemas, delivered over loopback HTTP,
a failure shrunk to a minimal event with a reproducer; and nothing changes without ``--fuzz``.

Every handler here is real: the reference handler and the latent flaws of ``examples.broken`` are served on
127.0.0.1, and so are the hanging and crashing servers of this module. N stays small (20 or 25): the events
come from a fixed seed, so a run sends the same ones each time.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import stat
import sys
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contract_tests.clauses import CLAUSE_IDS, REGISTRY
from contract_tests.engine import ContractConfig, ContractRun, Verdict
from examples.broken import FLAWS, ContractHandler
from mock_portal.cli import run
from mock_portal.errors import UsageError
from mock_portal.wire import decode
from tests.conftest import REPO_ROOT
from tests.support.contract import run_contract, serve_wsgi

N = 20
FAST: dict[str, Any] = {"settle": 0.05}
CLAUSE = "survives-fuzzing"
LATENT = sorted(f for f, c in FLAWS.items() if c == CLAUSE)
LARGE = 2**31


def _fuzz(handler: Any, **options: Any) -> Verdict:
    options = {**FAST, "fuzz": N, **options}
    with ContractRun(ContractConfig(handler, **options)) as contract:
        return contract.run([CLAUSE]).verdict(CLAUSE)


def _note(verdict: Verdict, start: str) -> str:
    found = [n for n in verdict.notes if n.startswith(start)]
    assert found, verdict.message()
    return found[0]


def _has_large_id(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_large_id(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_large_id(v) for v in value)
    return isinstance(value, str) and value.isascii() and value.isdigit() and int(value) >= LARGE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    percent = "".join(f"%{b:02x}" for b in raw)
    return [secret, raw.hex(), raw.hex().upper(), percent, percent.upper()]


@pytest.fixture(autouse=True)
def _quiet_handler_logs() -> Iterator[None]:
    logger = logging.getLogger("b24_handler")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# ---------------------------------------------------------------------------------------------- handlers


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # an answer to a client that gave up (the hang) fails to write: expected, and not the test's


class _Handler(BaseHTTPRequestHandler):
    """Accepts its install and every event, except one that carries an id past 32 bits: then ``flaw``."""

    flaw = "hang"
    hang = 1.0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = decode(body)
        except ValueError:
            payload = {}
        if _has_large_id(payload.get("data")):
            if self.flaw == "hang":
                threading.Event().wait(self.hang)
            else:  # the process dies: no answer, and nothing listens any more
                server = self.server
                assert isinstance(server, _Server)
                server.shutdown()
                server.server_close()
                self.close_connection = True
                return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@contextlib.contextmanager
def _serve(flaw: str) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"flaw": flaw})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def reference_url() -> Iterator[str]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


@pytest.fixture(scope="module")
def large_ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[Verdict]]]:
    """A handler whose 32-bit id columns overflow, fuzzed twice with the same seed (bodies kept)."""
    bodies = tmp_path_factory.mktemp("bodies")
    handler = ContractHandler("crashes-on-large-ids")
    try:
        with serve_wsgi(handler) as url:
            verdicts = [_fuzz(url, bodies_dir=str(bodies)) for _ in range(2)]
            yield url, bodies, verdicts
    finally:
        handler.close()


# ---------------------------------------------------------------------------------------------- passing


def test_the_reference_handler_survives_fuzzing_for_each_declared_event(reference_url: str) -> None:
    events = ("ONSESSIONSTART", "ONIMCONNECTORMESSAGEADD")
    config = ContractConfig(reference_url, fuzz=25, events=events, **FAST)
    with ContractRun(config) as contract:
        report = contract.run([CLAUSE])
    assert [v.id for v in report.verdicts] == [CLAUSE, f"{CLAUSE}[ONIMCONNECTORMESSAGEADD]"]
    for verdict, event in zip(report.verdicts, events, strict=True):
        assert verdict.outcome == "pass", verdict.message()
        assert verdict.clause.level == "MUST"
        counts = rf"25 generated {event} events \(\d+ valid, \d+ near-valid; answers: "
        assert re.match(counts, verdict.reason), verdict.reason
        assert verdict.reason.endswith("(seed 0)")
    assert report.ok


def test_without_fuzz_nothing_changes(reference_url: str) -> None:
    assert CLAUSE not in CLAUSE_IDS  # the twelve clauses every run judges, as before
    assert [c.id for c in REGISTRY.optional()] == [CLAUSE]
    with ContractRun(ContractConfig(reference_url, **FAST)) as contract:
        assert CLAUSE not in {c.id for c, _ in contract.plan()}
        for ask in (lambda: contract.check(CLAUSE), lambda: contract.run([CLAUSE])):
            with pytest.raises(UsageError, match="runs only when fuzz is on: mock-portal verify --fuzz N"):
                ask()
    with ContractRun(ContractConfig(reference_url, fuzz=5, **FAST)) as contract:
        assert [c.id for c, _ in contract.plan()][-1] == CLAUSE  # judged last: it may bring a handler down


@pytest.mark.parametrize("flaw", LATENT)
def test_latent_flaws_pass_every_fixed_clause(flaw: str) -> None:
    """What fuzzing is for: each of these handlers passes the whole contract, fuzzing aside."""
    handler = ContractHandler(flaw)
    try:
        with serve_wsgi(handler) as url:
            report = run_contract(url, **FAST)
    finally:
        handler.close()
    assert report.failed() == [], report.table()
    assert CLAUSE not in {v.clause.id for v in report.verdicts}


# ---------------------------------------------------------------------------------------------- failing


def test_a_500_is_shrunk_to_a_minimal_event_naming_its_field(
    large_ids: tuple[str, Path, list[Verdict]],
) -> None:
    _, _, (verdict, _) = large_ids
    assert verdict.outcome == "fail"
    assert verdict.clause.level == "MUST"
    assert verdict.reason.startswith("answered 500 to a valid ONSESSIONSTART ("), verdict.reason
    assert "shrunk by hypothesis to this" in verdict.reason
    assert verdict.reason.endswith("(seed 0)")
    kept = _note(verdict, "values shrinking kept (the rest went to 0 or empty): ")
    fields = re.findall(r"(data\.DATA\.[\w.]+) = \"(\d+)\"", kept)
    assert fields, kept
    # every value the minimal event kept is an id past 32 bits, the one thing the handler cannot take
    assert all(int(value) >= LARGE for _, value in fields), kept
    event = _note(verdict, "the event (secrets masked): ")
    assert '"application_token":"***"' in event
    [exchange] = verdict.exchanges
    assert exchange.kind == "fuzz"
    assert exchange.status == 500
    assert "re-run line below repeats them" in _note(verdict, "the same 20 events come again")


def test_the_same_seed_shows_the_same_event(large_ids: tuple[str, Path, list[Verdict]]) -> None:
    _, _, (first, second) = large_ids
    assert first.reason == second.reason
    kept = "values shrinking kept"
    assert _note(first, kept) == _note(second, kept)


def test_the_kept_body_replays_the_failure_itself(large_ids: tuple[str, Path, list[Verdict]]) -> None:
    url, bodies, (verdict, _) = large_ids
    [exchange] = verdict.exchanges
    assert exchange.body_file is not None
    assert Path(exchange.body_file).parent == bodies
    assert stat.S_IMODE(os.stat(exchange.body_file).st_mode) == 0o600
    assert exchange.reproduce.startswith("curl ")
    assert f"@{exchange.body_file}" in exchange.reproduce
    assert "***" not in exchange.reproduce  # the real values are in the file, none in the line
    body = Path(exchange.body_file).read_bytes()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(request, timeout=10)
    assert answered.value.code == 500  # the real token gets past the handler's check to the failure
    answered.value.close()


@pytest.mark.parametrize(
    ("flaw", "reason"),
    [
        (
            "crashes-on-non-numeric-id",
            r"answered 500 to a near-valid ONSESSIONSTART \(non-numeric-id at \$\.data",
        ),
        (
            "echoes-body-on-error",
            r"echoed the run's [a-z_, ]*application_token[a-z_, ]* in its answer \(400\)",
        ),
    ],
)
def test_near_valid_events_find_latent_flaws(flaw: str, reason: str) -> None:
    """A change to one value in ``data`` trips these; how soon depends on the seed, and each seed is
    deterministic: one of the first few finds it within 20 events."""
    handler = ContractHandler(flaw)
    try:
        with serve_wsgi(handler) as url:
            for seed in range(4):
                verdict = _fuzz(url, fuzz_seed=seed)
                if verdict.outcome == "fail":
                    break
    finally:
        handler.close()
    assert verdict.outcome == "fail", verdict.message()
    assert re.match(reason, verdict.reason), verdict.reason
    assert verdict.reason.endswith(f"(seed {seed})")
    if flaw == "echoes-body-on-error":
        assert "quote no token in any answer" in verdict.message()
        assert "received" in verdict.exchanges[0].response  # the echo is quoted, masked and cut


def test_a_hang_is_a_failure_and_shrinking_stops_after_a_few(monkeypatch: pytest.MonkeyPatch) -> None:
    with _serve("hang") as url:
        verdict = _fuzz(url, timeout=0.3)
    assert verdict.outcome == "fail", verdict.message()
    assert verdict.reason.startswith("gave no answer within 0.3 s to a "), verdict.reason
    assert "not shrunk: shrinking stopped after 3 hung deliveries" in verdict.reason
    assert verdict.exchanges[0].outcome == "timeout"


def test_a_handler_that_goes_down_is_a_crash_shown_as_generated() -> None:
    with _serve("die") as url:
        verdict = _fuzz(url)
    assert verdict.outcome == "fail", verdict.message()
    assert re.match(
        r"went down on a .*\(reset after \d+ ms.*\): every connection after it was refused; ", verdict.reason
    )
    assert "not shrunk: the handler stopped accepting connections" in verdict.reason
    assert verdict.exchanges[0].outcome == "reset"


# ---------------------------------------------------------------------------------------------- the CLI


def test_verify_fuzz_reports_an_echoed_secret_and_prints_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``mock-portal verify --start``: the handler (its own process) echoes the auth block of the
    events it accepts and logs every body it gets, tokens and all."""
    collected: list[set[str]] = []
    close = ContractRun.close

    def closing(self: ContractRun) -> None:
        found: set[str] = set()
        for site in self.sites:
            for app in site.portal.apps.values():
                found |= {app.application_token, app.client_secret}
            for token in site.portal.tokens.values():
                found |= {token.access_token, token.refresh_token or ""}
        collected.append({t for t in found if len(t) >= 8})
        close(self)

    monkeypatch.setattr(ContractRun, "close", closing)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    start = f"{sys.executable} -m examples.broken --flaw echoes-auth --log-bodies --port {port}"
    junit, report, bodies = tmp_path / "junit.xml", tmp_path / "report.json", tmp_path / "bodies"
    out, err = io.StringIO(), io.StringIO()
    argv = ["verify", url, "--start", start, "--fuzz", str(N), "--clause", CLAUSE, "--settle", "0.05"]
    argv += ["--save-bodies", str(bodies), "--junit", str(junit), "--report-json", str(report)]
    code = run(argv, out, err)
    stdout = out.getvalue()
    assert code == 1, stdout + err.getvalue()
    assert re.search(r"^survives-fuzzing +MUST +FAIL +echoed the run's ", stdout, re.M), stdout
    assert "(seed 0)" in stdout
    assert "handler log (last lines):" in stdout
    assert f"--fuzz {N} --fuzz-seed 0 --clause survives-fuzzing" in stdout  # the re-run line
    assert "reproduce (replays the exact body, kept in " in stdout
    case = ET.parse(junit).getroot().find("testcase[@name='survives-fuzzing']")
    assert case is not None
    assert case.find("failure") is not None
    [verdict] = json.loads(report.read_text(encoding="utf-8"))["verdicts"]
    assert (verdict["id"], verdict["level"], verdict["outcome"]) == (CLAUSE, "MUST", "fail")
    [tokens] = collected
    artifacts = {
        "stdout": stdout,
        "stderr": err.getvalue(),
        "junit": junit.read_text(encoding="utf-8"),
        "json": report.read_text(encoding="utf-8"),
    }
    for name, text in artifacts.items():
        for token in tokens:
            for form in _forms(token):
                assert form not in text, f"a token of the run ({form[:6]}...) in {name}"
    # the reproducer is the file: the real event, tokens and all, readable by its owner only
    [kept] = list(bodies.iterdir())
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert decode(kept.read_bytes())["auth"]["application_token"] in tokens


def test_fuzz_options_are_checked(tmp_path: Path) -> None:
    for argv, message in (
        (["--fuzz", "many"], "expected a whole number"),
        (["--fuzz", "20000"], "fuzz must be a number of events from 0 (off) to 10000"),
    ):
        out, err = io.StringIO(), io.StringIO()
        assert run(["verify", "http://127.0.0.1:9/", *argv], out, err) == 2
        assert message in err.getvalue()


# ---------------------------------------------------------------------------------------------- pytest


HANDLER_MODULE = """
import pytest
from contract_tests import OnSessionStartContract
from examples.broken import ContractHandler

HANDLER = ContractHandler("crashes-on-large-ids")


class TestMyHandler(OnSessionStartContract):
    @pytest.fixture
    def b24_handler(self):
        return HANDLER
"""


def test_the_plugin_fuzzes_with_b24_fuzz_and_leaves_no_trace_without(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makepyfile(test_contract=HANDLER_MODULE)
    result = pytester.runpytest_subprocess("-k", "fuzzing", "--b24-fuzz", str(N), "--b24-settle", "0.05")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()
    assert "passed" not in outcomes
    text = result.stdout.str()
    assert "clause survives-fuzzing [MUST] FAIL: answered 500 to a valid ONSESSIONSTART" in text
    assert "values shrinking kept (the rest went to 0 or empty): data.DATA." in text
    assert "(seed 0)" in text
    assert f"--b24-fuzz {N}" in text
    # collection only, so in process: without --b24-fuzz the test is not there, and nothing says why
    without = pytester.runpytest("-k", "fuzzing", "--b24-settle", "0.05")
    assert without.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert "survives" not in without.stdout.str()
    assert not [line for line in without.stdout.lines if "left out" in line and "fuzz" in line]


def test_the_plugin_reads_fuzzing_from_ini_and_checks_it(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nb24_fuzz = 30\nb24_fuzz_seed = 7\n")
    pytester.makepyfile(
        "def test_options(b24_options):\n    assert (b24_options.fuzz, b24_options.fuzz_seed) == (30, 7)\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)
    result = pytester.runpytest("--b24-fuzz", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--b24-fuzz: expected a whole number from 0 to 10000, got 'lots'*"])
