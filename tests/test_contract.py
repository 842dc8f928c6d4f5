"""The contract is tested too: reference handlers pass every clause, each broken handler fails its own.

Every run here is real: the mock portal serves REST over loopback HTTP, handlers are served on 127.0.0.1
(or driven in process as WSGI, ASGI or callables) and call the portal back for real.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from contract_tests.clauses import CLAUSE_IDS, CLAUSES, GENERIC_CLAUSE_IDS, clause
from contract_tests.engine import (
    ContractConfig,
    ContractReport,
    ContractRun,
    ContractViolation,
    resolve_target,
)
from examples.broken import FLAWS, ContractHandler
from mock_portal.delivery import AsgiTarget, CallableTarget, UrlTarget, WsgiTarget
from mock_portal.errors import UnknownNameError, UsageError
from tests.support.contract import run_contract, serve_wsgi

FAST = {"settle": 0.05}
HEX_SECRET = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])|[0-9a-f]{70}")


@pytest.fixture(autouse=True)
def _quiet_handler_logs() -> Iterator[None]:
    logger = logging.getLogger("b24_handler")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def reference_app() -> Iterator[Any]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    yield app
    app.close()


def _outcomes(report: ContractReport) -> dict[str, str]:
    return {v.clause.id: v.outcome for v in report.verdicts}


# ---------------------------------------------------------------------------------------------- reference


def test_reference_python_handler_passes_every_clause_over_http(reference_app: Any) -> None:
    with serve_wsgi(reference_app) as url:
        report = run_contract(url, strict=True)
    assert _outcomes(report) == dict.fromkeys(CLAUSE_IDS, "pass"), report.table()
    assert report.ok


def test_reference_python_handler_passes_in_process_as_wsgi(reference_app: Any) -> None:
    report = run_contract(reference_app, strict=True, **FAST)
    assert _outcomes(report) == dict.fromkeys(CLAUSE_IDS, "pass"), report.table()


def test_honest_handler_passes_as_asgi_and_as_callable() -> None:
    for kind in ("asgi", "callable"):
        handler = ContractHandler()
        try:
            target = handler.asgi if kind == "asgi" else handler.callable
            report = run_contract(target, strict=True, **FAST)
        finally:
            handler.close()
        assert _outcomes(report) == dict.fromkeys(CLAUSE_IDS, "pass"), (kind, report.table())


def test_configured_token_instead_of_install_flow() -> None:
    from examples.python_handler import HandlerApp, HandlerConfig

    token = "0123456789abcdef0123456789abcdef"
    app = HandlerApp(HandlerConfig(application_token=token)).start()
    try:
        report = run_contract(app, application_token=token, **FAST)
    finally:
        app.close()
    outcomes = _outcomes(report)
    # one configured token cannot tell two portals apart; everything else is judged
    assert outcomes.pop("keeps-portals-apart") == "skip"
    # with no install, system-mode events give the handler no token to call back with, but user mode does
    assert set(outcomes.values()) == {"pass"}, report.table()


# ---------------------------------------------------------------------------------------------- broken


@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_broken_handler_fails_exactly_its_clause(flaw: str) -> None:
    handler = ContractHandler(flaw, hang=1.5)
    options: dict[str, Any] = dict(FAST)
    if flaw == "hangs-on-repeats":
        options["timeout"] = 1.0
    try:
        with serve_wsgi(handler) as url:
            report = run_contract(url, **options)
    finally:
        handler.close()
    assert report.failed() == [FLAWS[flaw]], report.table()
    assert not [v for v in report.verdicts if v.outcome in ("inconclusive", "skip")], report.table()
    broken = clause(FLAWS[flaw])
    assert report.ok is (broken.level == "SHOULD")
    strict = ContractReport(report.verdicts, strict=True)
    assert not strict.ok


def test_every_clause_has_a_broken_handler() -> None:
    assert sorted(FLAWS.values()) == sorted(CLAUSE_IDS)


def test_handler_that_never_calls_rest_is_inconclusive_not_passed() -> None:
    def lazy(body: bytes, headers: Any, url: str) -> tuple[int, bytes]:
        # answers everything 200 and never calls the portal back: nothing to compare a forgery with
        return 200, b"{}"

    report = run_contract(CallableTarget(lazy), **FAST)
    outcomes = _outcomes(report)
    for clause_id in (
        "forged-token-no-side-effect",
        "unknown-portal-no-side-effect",
        "ignores-repeated-delivery",
        "keeps-portals-apart",
    ):
        assert outcomes[clause_id] == "inconclusive", report.table()
    assert outcomes["rejects-malformed-bodies"] == "fail"  # 200 to garbage
    assert outcomes["forged-token-refused"] == "fail"  # 200 to forgeries
    assert outcomes["accepts-every-shape"] == "pass"


def test_handler_that_refuses_connections_fails_must_clauses() -> None:
    with serve_wsgi(ContractHandler()) as url:
        pass  # the server is gone: nothing listens there any more
    report = run_contract(url, **FAST)
    assert "accepts-every-shape" in report.failed()
    assert not report.ok
    verdict = next(v for v in report.verdicts if v.clause.id == "accepts-every-shape")
    assert "refused" in verdict.message()


# ---------------------------------------------------------------------------------------------- messages


def test_failure_message_names_clause_exchange_doc_and_curl_without_secrets() -> None:
    handler = ContractHandler("echoes-auth")
    try:
        with ContractRun(ContractConfig(handler, **FAST)) as run:
            verdict = run.check("never-echoes-secrets")
            secrets_of_run = run._secrets()
    finally:
        handler.close()
    assert verdict.outcome == "fail"
    text = verdict.message()
    assert "clause 9 never-echoes-secrets [SHOULD] FAIL" in text
    assert "expected: no secret of the run in any response body" in text
    assert "doc page: b24restdocs/settings/cloud-and-on-premise/security-recommendations.md" in text
    assert "reproduce (secrets masked): curl -sS -i -X POST" in text
    assert "sent (" in text
    assert "got: 200" in text
    assert secrets_of_run
    for secret in secrets_of_run:
        assert secret not in text
        assert secret not in json.dumps(verdict.to_dict())


def test_contract_violation_is_an_assertion_error_with_the_message() -> None:
    handler = ContractHandler("crashes-on-json")
    try:
        with ContractRun(ContractConfig(handler, **FAST)) as run:
            verdict = run.check("rejects-malformed-bodies")
    finally:
        handler.close()
    error = ContractViolation(verdict)
    assert isinstance(error, AssertionError)
    assert "JSON, as the doc pages render events -> 500" in str(error)


def test_report_table_json_and_junit(reference_app: Any) -> None:
    with ContractRun(ContractConfig(reference_app, **FAST)) as run:
        report = run.run(["accepts-every-shape", "rejects-malformed-bodies"])
    assert [v.clause.id for v in report.verdicts] == ["accepts-every-shape", "rejects-malformed-bodies"]
    table = report.table()
    assert table.splitlines()[0].split() == ["clause", "level", "verdict", "reason"]
    assert "1 accepts-every-shape" in table
    assert "PASSED: 2 pass" in table
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert data["counts"]["pass"] == 2
    suite = ET.fromstring(report.junit_xml())
    assert suite.get("tests") == "2"
    assert suite.get("failures") == "0"
    assert [case.get("name") for case in suite] == ["accepts-every-shape", "rejects-malformed-bodies"]


def test_verdicts_are_cached_and_clause_7_sees_the_whole_run(reference_app: Any) -> None:
    with ContractRun(ContractConfig(reference_app, **FAST)) as run:
        first = run.check("6")
        assert run.check("ignores-repeated-delivery") is first
        timing = run.check("answers-within-timeout")
        judged = {c.id for c in CLAUSES}
        assert timing.outcome == "pass"
        # judging clause 7 first judged every other clause, so it timed all of their deliveries
        assert all(run.check(c) for c in judged)
        assert len(run.exchanges) >= 60


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shapes": ("source-2042",)}, "unknown shape 'source-2042'; did you mean 'source-2024'?"),
        ({"shapes": ()}, "at least one shape"),
        ({"timeout": 0}, "timeout must be"),
        ({"settle": -1}, "settle must be"),
        ({"burst": 0}, "burst must be"),
        ({"install_url": "ftp://x"}, "install URL must be an http(s) URL"),
        ({"install_url": "http://a.b/", "application_token": "t"}, "either an install URL or an application"),
        ({"member_id": "m"}, "member_id only makes sense"),
        ({"application_token": " "}, "non-empty"),
    ],
)
def test_config_refuses_bad_values(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        ContractConfig("http://127.0.0.1:1/", **options)


def test_unknown_clause_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'survives-bursts'"):
        clause("survives-burst")


def test_resolve_target_reads_what_it_is_given() -> None:
    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        return None

    def plain(body: bytes, headers: Any, url: str) -> int:
        return 200

    assert isinstance(resolve_target("http://127.0.0.1:9/"), UrlTarget)
    assert isinstance(resolve_target(wsgi), WsgiTarget)
    assert isinstance(resolve_target(asgi), AsgiTarget)
    assert isinstance(resolve_target(plain), CallableTarget)
    handler = ContractHandler()
    try:
        assert isinstance(resolve_target(handler), WsgiTarget)  # __call__(environ, start_response)
        assert isinstance(resolve_target(handler.asgi), AsgiTarget)
    finally:
        handler.close()
    with pytest.raises(UsageError, match="cannot tell what kind of handler"):
        resolve_target(lambda: None)
    with pytest.raises(UsageError, match="must be an http"):
        resolve_target("ftp://example.com/")
    with pytest.raises(UsageError, match="not int"):
        resolve_target(5)


# ------------------------------------------------------------------------------------------- declared events

CONNECTOR_MESSAGE = "ONIMCONNECTORMESSAGEADD"
GENERIC_FLAWS = sorted(f for f, c in FLAWS.items() if c in GENERIC_CLAUSE_IDS)


def test_reference_python_handler_passes_its_declared_connector_event(reference_app: Any) -> None:
    with serve_wsgi(reference_app) as url:
        report = run_contract(url, strict=True, events=("onsessionstart", CONNECTOR_MESSAGE), **FAST)
    ids = [v.id for v in report.verdicts]
    expected: list[str] = []
    for item in CLAUSES:
        expected.append(item.id)
        if item.id in GENERIC_CLAUSE_IDS:
            expected.append(f"{item.id}[{CONNECTOR_MESSAGE}]")
    assert ids == expected
    assert {v.outcome for v in report.verdicts} == {"pass"}, report.table()
    assert re.search(
        r"^3a forged-token-no-side-effect\[ONIMCONNECTORMESSAGEADD\] +MUST +PASS ", report.table(), re.M
    )
    # the connector's control events really reached the handler's outbox and were confirmed at the portal
    reference_app.join()
    assert reference_app.outbox()
    assert {m.connector for m in reference_app.outbox()} == {"b24contract"}
    names = [case.get("name", "") for case in ET.fromstring(report.junit_xml()).iter("testcase")]
    assert names == expected


@pytest.mark.parametrize("flaw", GENERIC_FLAWS)
def test_broken_handler_fails_exactly_its_clause_for_a_sibling_event(flaw: str) -> None:
    handler = ContractHandler(flaw, hang=1.5)
    options: dict[str, Any] = {**FAST, "events": (CONNECTOR_MESSAGE,)}
    if flaw == "hangs-on-repeats":
        options["timeout"] = 1.0
    try:
        with serve_wsgi(handler) as url:
            report = run_contract(url, **options)
    finally:
        handler.close()
    assert report.failed() == [f"{FLAWS[flaw]}[{CONNECTOR_MESSAGE}]"], report.table()
    # without ONSESSIONSTART declared, its own clauses are skipped with the reason; nothing is inconclusive
    skipped = {v.id for v in report.verdicts if v.outcome == "skip"}
    assert skipped == set(CLAUSE_IDS) - set(GENERIC_CLAUSE_IDS), report.table()
    assert not [v for v in report.verdicts if v.outcome == "inconclusive"], report.table()


def test_a_handler_that_ignores_a_declared_event_is_inconclusive_not_passed(reference_app: Any) -> None:
    # the reference handler accepts OnSessionFinish and does nothing: no side effect to compare with
    report = run_contract(reference_app, events=("ONSESSIONFINISH",), **FAST)
    outcomes = {v.id: v.outcome for v in report.verdicts}
    assert outcomes["forged-token-no-side-effect[ONSESSIONFINISH]"] == "inconclusive"
    assert outcomes["forged-token-refused[ONSESSIONFINISH]"] == "pass"
    assert outcomes["rejects-malformed-bodies[ONSESSIONFINISH]"] == "pass"
    assert report.ok


def test_check_picks_a_verdict_by_event_and_refuses_what_is_not_declared() -> None:
    handler = ContractHandler()
    try:
        config = ContractConfig(handler.callable, events=["ONSESSIONSTART", CONNECTOR_MESSAGE], **FAST)
        with ContractRun(config) as run:
            verdict = run.check(f"3b[{CONNECTOR_MESSAGE.lower()}]")
            assert verdict.id == f"forged-token-refused[{CONNECTOR_MESSAGE}]"
            assert verdict is run.check("forged-token-refused", CONNECTOR_MESSAGE)
            assert run.check("forged-token-refused").event == "ONSESSIONSTART"
            assert f"clause 3b forged-token-refused[{CONNECTOR_MESSAGE}] [SHOULD] PASS" in verdict.message()
            assert verdict.to_dict()["event"] == CONNECTOR_MESSAGE
            with pytest.raises(UsageError, match="ONSESSIONFINISH is not a declared event"):
                run.check("forged-token-refused[ONSESSIONFINISH]")
            with pytest.raises(UsageError, match="OnSessionStart-specific"):
                run.check("survives-bursts", CONNECTOR_MESSAGE)
            report = run.run([f"rejects-malformed-bodies[{CONNECTOR_MESSAGE}]", "3b"])
            assert [v.id for v in report.verdicts] == [
                "forged-token-refused",
                f"forged-token-refused[{CONNECTOR_MESSAGE}]",
                f"rejects-malformed-bodies[{CONNECTOR_MESSAGE}]",
            ]
    finally:
        handler.close()


@pytest.mark.parametrize(
    ("events", "error", "message"),
    [
        (("ONIMCONNECTORMESAGEADD",), UnknownNameError, "did you mean 'ONIMCONNECTORMESSAGEADD'"),
        (("ONAPPINSTALL",), UnknownNameError, "unknown declarable event 'ONAPPINSTALL'"),
        ((), UsageError, "declare at least one event"),
        (" , ", UsageError, "declare at least one event"),
    ],
)
def test_declared_events_are_checked(events: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        ContractConfig("http://127.0.0.1:9/", events=events)


def test_declarable_events_have_builders_and_follow_the_siblings() -> None:
    from contract_tests.clauses import DECLARABLE_EVENTS
    from mock_portal.eventtable import declarable
    from mock_portal.siblings import CONNECTOR_EVENTS, OPENLINES_EVENTS

    assert (*OPENLINES_EVENTS, *CONNECTOR_EVENTS, "ONAPPTEST") == DECLARABLE_EVENTS[:13]
    assert set(DECLARABLE_EVENTS) == set(declarable())
    assert ContractConfig(
        "http://127.0.0.1:9/", events=" onsessionstart,ONAPPTEST ,onsessionstart"
    ).events == (
        "ONSESSIONSTART",
        "ONAPPTEST",
    )
