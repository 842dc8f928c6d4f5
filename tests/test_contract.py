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

from contract_tests.clauses import CLAUSE_IDS, CLAUSES, GENERIC_CLAUSE_IDS, find_clause
from contract_tests.engine import (
    ContractConfig,
    ContractReport,
    ContractRun,
    ContractSetupError,
    ContractViolation,
    install_handler,
    resolve_target,
)
from contract_tests.inprocess import InProcessApp
from examples.broken import FLAWS, ContractHandler
from mock_portal.delivery import AsgiTarget, CallableTarget, UrlTarget, WsgiTarget
from mock_portal.errors import UnknownNameError, UsageError
from tests.support.contract import run_contract, serve_wsgi

FAST = {"settle": 0.05}
OFFLINE = "catches-up-offline"
# the reference handler does not use offline events: clause 11 does not apply to it (ContractHandler does)
REFERENCE_PASSES = {**dict.fromkeys(CLAUSE_IDS, "pass"), OFFLINE: "skip"}
# with these flaws the handler's calls never reach the event's own portal, so the clauses that compare an
# absence with a valid event's calls have nothing to compare with: inconclusive, never passed or failed
MISROUTED_INCONCLUSIVE = {
    "forged-token-no-side-effect",
    "unknown-portal-no-side-effect",
    "ignores-repeated-delivery",
}


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
    assert _outcomes(report) == REFERENCE_PASSES, report.table()
    assert report.ok


def test_reference_python_handler_passes_in_process_as_wsgi(reference_app: Any) -> None:
    report = run_contract(reference_app, strict=True, **FAST)
    assert _outcomes(report) == REFERENCE_PASSES, report.table()


@pytest.mark.slow
def test_honest_handler_passes_as_asgi_and_as_callable() -> None:
    for kind in ("asgi", "callable"):
        handler = ContractHandler()
        try:
            target = handler.asgi if kind == "asgi" else handler.callable
            report = run_contract(target, strict=True, offline=True, **FAST)
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
    assert outcomes.pop(OFFLINE) == "skip"
    # with no install, system-mode events give the handler no token to call back with, but user mode does
    assert set(outcomes.values()) == {"pass"}, report.table()


# ---------------------------------------------------------------------------------------------- broken


def _broken_options(flaw: str) -> dict[str, Any]:
    options: dict[str, Any] = {**FAST, "offline": True}  # every broken handler catches up honestly but one
    if flaw == "hangs-on-repeats":
        options["timeout"] = 2.0  # the handler hangs 3 s on a repeat
    if flaw == "calls-first-install-endpoint":
        options["timeout"] = 2.0  # its valid events lead to no call at their own portal: bounded wait
    return options


# the latent flaws fail only survives-fuzzing, which runs with --fuzz: tests/test_fuzzing.py covers them
FIXED_FLAWS = sorted(f for f, c in FLAWS.items() if c in CLAUSE_IDS)


# the flaws whose check waits out a hang or a slow handler: several seconds each
SLOW_FLAWS = {"slow-in-system-mode", "hangs-on-repeats", "busy-under-load", "never-clears-offline"}


def _params(flaws: list[str]) -> list[Any]:
    return [pytest.param(f, marks=pytest.mark.slow) if f in SLOW_FLAWS else f for f in flaws]


@pytest.mark.parametrize("flaw", _params(FIXED_FLAWS))
def test_broken_handler_fails_exactly_its_clause(flaw: str) -> None:
    handler = ContractHandler(flaw, hang=3.0)
    try:
        with serve_wsgi(handler) as url:
            report = run_contract(url, **_broken_options(flaw))
    finally:
        handler.close()
    assert report.failed() == [FLAWS[flaw]], report.table()
    unsure = {v.id for v in report.verdicts if v.outcome in ("inconclusive", "skip")}
    allowed = MISROUTED_INCONCLUSIVE if flaw == "calls-first-install-endpoint" else set()
    assert unsure <= allowed, report.table()
    broken = find_clause(FLAWS[flaw])
    assert report.ok is (broken.level == "SHOULD")
    strict = ContractReport(report.verdicts, strict=True)
    assert not strict.ok


def test_every_clause_has_a_broken_handler() -> None:
    from contract_tests.clauses import REGISTRY

    assert set(FLAWS.values()) == {*CLAUSE_IDS, *(c.id for c in REGISTRY.optional())}


@pytest.mark.parametrize("clause_id", CLAUSE_IDS)
def test_every_clause_says_what_it_accepts_refuses_and_rests_on(clause_id: str) -> None:
    item = find_clause(clause_id)
    text = " ".join((item.judge.__doc__ or "").split())
    for part in ("Accepts: ", "Refuses: ", "Evidence: "):
        assert part in text, (clause_id, part)
    # where the evidence comes from, for maintainers: the facts file's section or the doc page's file
    evidence = text.split("Evidence: ", 1)[1]
    assert "facts §" in evidence or ".md" in evidence, clause_id
    assert item.doc.startswith("https://apidocs.bitrix24.com/")
    assert item.doc.endswith(".html")
    assert "facts §" not in item.evidence + item.expected + item.title  # users get doc pages, not the file


def test_a_handler_calling_a_stale_client_endpoint_is_caught_as_misrouted() -> None:
    # it keeps the client_endpoint of its first installation: every later portal's calls go there, with
    # tokens that portal never issued; the first portal is still up, so the calls are recorded as evidence
    handler = ContractHandler("calls-first-install-endpoint")
    try:
        with serve_wsgi(handler) as url, ContractRun(ContractConfig(url, timeout=2.0, **FAST)) as run:
            first = run.check("accepts-every-shape")
            verdict = run.check("keeps-portals-apart")
            first_portal = run.sites[0].portal
    finally:
        handler.close()
    assert first.outcome == "pass"
    assert verdict.outcome == "fail", verdict.message()
    assert "with a token that portal never issued" in verdict.reason
    assert first_portal.domain in verdict.reason
    refused = [c for c in first_portal.calls() if c.token_id is None]
    assert refused
    assert {c.status for c in refused} == {401}


def test_handler_that_never_calls_rest_is_inconclusive_not_passed() -> None:
    def lazy(body: bytes, headers: Any, url: str) -> tuple[int, bytes]:
        # answers everything 200 and never calls the portal back: nothing to compare a forgery with
        return 200, b"{}"

    report = run_contract(CallableTarget(lazy), timeout=2.0, **FAST)
    outcomes = _outcomes(report)
    for clause_id in (
        "forged-token-no-side-effect",
        "unknown-portal-no-side-effect",
        "ignores-repeated-delivery",
        "keeps-portals-apart",
    ):
        assert outcomes[clause_id] == "inconclusive", report.table()
    # 200 to garbage is no crash: a handler may ignore what it cannot read
    assert outcomes["rejects-malformed-bodies"] == "pass", report.table()
    assert outcomes["forged-token-refused"] == "fail"  # 200 to forgeries
    assert outcomes["accepts-every-shape"] == "pass"
    assert outcomes["survives-bursts"] == "pass"


def test_handler_that_refuses_connections_cannot_be_installed() -> None:
    with serve_wsgi(ContractHandler()) as url:
        pass  # the server is gone: nothing listens there any more
    with pytest.raises(ContractSetupError, match=r"was answered refused after .* could not connect"):
        run_contract(url, **FAST)


# ---------------------------------------------------------------------------------------------- messages


def test_failure_message_names_clause_exchange_doc_and_curl_without_secrets() -> None:
    handler = ContractHandler("echoes-auth")
    try:
        with ContractRun(ContractConfig(handler, **FAST)) as run:
            verdict = run.check("never-echoes-secrets")
            secrets_of_run = run.masker.secrets
    finally:
        handler.close()
    assert verdict.outcome == "fail"
    text = verdict.message()
    assert "clause 9 never-echoes-secrets [SHOULD] FAIL" in text
    assert "expected: no token of the run in any answer, in any encoding" in text
    assert (
        "doc page: https://apidocs.bitrix24.com/settings/cloud-and-on-premise/security-recommendations.html"
        in text
    )
    assert "facts §" not in text
    assert "sent (" in text
    assert "got: 200" in text
    # the part of the body that matters: the auth block, masked
    assert re.search(r'auth: \{.*"application_token": "\*\*\*"', text)
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
    assert "body (JSON): " in str(error)


def test_report_table_json_and_junit(reference_app: Any) -> None:
    with ContractRun(ContractConfig(reference_app, **FAST)) as run:
        report = run.run(["accepts-every-shape", "rejects-malformed-bodies"])
    assert [v.clause.id for v in report.verdicts] == ["accepts-every-shape", "rejects-malformed-bodies"]
    table = report.table()
    assert table.splitlines()[0].split() == ["clause", "level", "verdict", "reason"]
    assert "1 accepts-every-shape" in table
    assert "PASSED: 2 pass" in table
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdicts"][0]["doc"].startswith("https://apidocs.bitrix24.com/")
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
        report = run.run()
        timing = report.verdict("answers-within-timeout")
        assert timing.outcome == "pass"
        # clause 7 is judged after the others, so it timed all of their deliveries one at a time
        sequential = [ex for ex in run.exchanges if not ex.concurrent and ex.kind != "malformed"]
        assert f"all {len(sequential)} deliveries" in timing.reason
        quick = report.verdict("answers-quickly")
        assert "over 2" in quick.reason  # at least 20 samples, never the burst
        burst = [ex for ex in run.exchanges if ex.concurrent]
        assert len(burst) == 32


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
        ({"event_path": "events"}, "the event path must be a path starting with '/'"),
        ({"install_url": "/in stall"}, "the install path must be a path"),
    ],
)
def test_config_refuses_bad_values(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        ContractConfig("http://127.0.0.1:1/", **options)


def test_unknown_clause_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'survives-bursts'"):
        find_clause("survives-burst")


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
    assert resolve_target(wsgi, "/b24/events").url == "http://handler.b24-contract.invalid/b24/events"
    assert resolve_target("http://127.0.0.1:9/x", "/events?a=1").url == "http://127.0.0.1:9/events?a=1"


# ------------------------------------------------------------------------------------------- declared events

CONNECTOR_MESSAGE = "ONIMCONNECTORMESSAGEADD"
GENERIC_FLAWS = sorted(f for f, c in FLAWS.items() if c in GENERIC_CLAUSE_IDS)


@pytest.mark.slow
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
    assert {v.id: v.outcome for v in report.verdicts if v.outcome != "pass"} == {OFFLINE: "skip"}, (
        report.table()
    )
    assert re.search(
        r"^3a forged-token-no-side-effect\[ONIMCONNECTORMESSAGEADD\] +MUST +PASS ", report.table(), re.M
    )
    # the connector's control events really reached the handler's outbox and were confirmed at the portal
    reference_app.join()
    assert reference_app.outbox()
    assert {m.connector for m in reference_app.outbox()} == {"b24contract"}
    names = [case.get("name", "") for case in ET.fromstring(report.junit_xml()).iter("testcase")]
    assert names == expected


@pytest.mark.parametrize("flaw", _params(GENERIC_FLAWS))
def test_broken_handler_fails_exactly_its_clause_for_a_sibling_event(flaw: str) -> None:
    handler = ContractHandler(flaw, hang=3.0)
    options: dict[str, Any] = {**_broken_options(flaw), "events": (CONNECTOR_MESSAGE,)}
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
    report = run_contract(reference_app, events=("ONSESSIONFINISH",), timeout=2.0, **FAST)
    outcomes = {v.id: v.outcome for v in report.verdicts}
    assert outcomes["forged-token-no-side-effect[ONSESSIONFINISH]"] == "inconclusive"
    assert outcomes["forged-token-refused[ONSESSIONFINISH]"] == "pass"
    assert outcomes["rejects-malformed-bodies[ONSESSIONFINISH]"] == "pass"
    assert report.ok


def test_a_later_event_s_control_goes_out_first_and_is_judged_the_same(reference_app: Any) -> None:
    # ONSESSIONFINISH's control is delivered before the clauses run; silent for its whole work cap after its
    # answer, it is the control of the clauses that ask for it, as if they had sent it
    events = ("ONSESSIONSTART", "ONSESSIONFINISH")
    with ContractRun(ContractConfig(reference_app, events=events, timeout=2.0, **FAST)) as run:
        report = run.run()
        sent = run.exchanges
    outcomes = {v.id: v.outcome for v in report.verdicts}
    # reported clause by clause, judged event by event: every OnSessionStart clause before the later event's
    # (its silence passes while they run), then clause 7, which judges the deliveries of both
    assert [v.id for v in report.verdicts][:3] == [
        "accepts-every-shape",
        "tolerates-variation",
        "tolerates-variation[ONSESSIONFINISH]",
    ]
    judged_last = {"answers-within-timeout", "answers-quickly"}  # they top up their samples at the end
    body = [ex for ex in sent if ex.clause not in judged_last and ex.kind != "install"]
    last_first = max(ex.serial for ex in body if ex.event == "ONSESSIONSTART")
    later = [ex.serial for ex in body if ex.event == "ONSESSIONFINISH" and ex.label != "valid control event"]
    assert later
    assert min(later) > last_first
    assert outcomes["forged-token-no-side-effect"] == "pass"
    assert outcomes["forged-token-no-side-effect[ONSESSIONFINISH]"] == "inconclusive"
    assert outcomes["unknown-portal-no-side-effect[ONSESSIONFINISH]"] == "inconclusive"
    assert report.ok
    by_id = {v.id: v for v in report.verdicts}
    (control,) = by_id["forged-token-no-side-effect[ONSESSIONFINISH]"].exchanges
    assert control.label == "valid control event"
    assert control.event == "ONSESSIONFINISH"
    assert control.clause == "forged-token-no-side-effect"  # the clause that asked first
    assert control.serial <= 2  # the run's first delivery after its site's ONAPPINSTALL
    assert by_id["unknown-portal-no-side-effect[ONSESSIONFINISH]"].exchanges == (control,)


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
            with pytest.raises(UsageError, match="survives-bursts is about ONSESSIONSTART only"):
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


# ------------------------------------------------------------------------------------------- installation


def _routed(app: Any, events: str = "/events", install: str = "/install") -> Any:
    """``app`` mounted the way many real apps are: events and installs at their own paths, 404 elsewhere."""

    def routed(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") in (events, install):
            return app(environ, start_response)
        body = b'{"error": "not found"}'
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", "22")])
        return [body]

    return routed


def test_a_failed_install_is_a_hard_error_naming_what_answered_and_the_fix(reference_app: Any) -> None:
    routed = _routed(reference_app)
    with pytest.raises(ContractSetupError) as caught, ContractRun(ContractConfig(routed, **FAST)) as run:
        run.run()
    text = str(caught.value)
    assert "the handler did not accept its installation" in text
    assert "was answered 404" in text
    assert "not found" in text
    assert "called in process at path /" in text
    assert "--b24-event-path /events" in text
    assert "--install-url /install" in text
    assert "--application-token" in text
    # nothing was judged on those 404s: clause 5 in particular never passed on them
    assert run.report().verdicts == ()


def test_an_in_process_app_at_its_own_paths_passes(reference_app: Any) -> None:
    routed = _routed(reference_app)
    report = run_contract(routed, event_path="/events", install_url="/install", strict=True, **FAST)
    assert _outcomes(report) == REFERENCE_PASSES, report.table()
    report = run_contract(WsgiTarget(routed, "http://app.test/events"), install_url="/install", **FAST)
    assert report.ok, report.table()


def test_an_in_process_app_given_with_its_paths_and_host_installs_and_passes(reference_app: Any) -> None:
    """Through the Python API alone: the app's own paths and host, no event path or install URL given."""
    from mock_portal.server import PortalServer

    routed = _routed(reference_app)
    given = InProcessApp(routed, events="/events", install="/install", host="app.test")
    with ContractRun(ContractConfig(given, **FAST)) as run:
        assert run.check("accepts-every-shape").outcome == "pass"
        assert {ex.url for ex in run.exchanges if ex.kind == "install"} == {"http://app.test/install"}
    with PortalServer() as server:
        portal = server.add_portal(None)
        _, attempts = install_handler(portal, given)  # the portal's own delivery, routed by host
        portal.close()
    assert [(a.target.split()[-1], a.status) for a in attempts] == [("http://app.test/install", 200)]


def test_in_process_app_paths_are_checked_and_must_agree_with_the_config() -> None:
    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        return None

    both = InProcessApp(wsgi, events="/e", install="/i")
    config = ContractConfig(both)
    assert (config.event_path, config.install_url) == ("/e", "/i")
    assert ContractConfig(both, event_path="/e", install_url="http://127.0.0.1:9/i").event_path == "/e"
    assert ContractConfig(both, application_token="t").install_url is None  # no install: its path is unused
    assert ContractConfig(InProcessApp(wsgi), event_path="/x").event_path == "/x"  # nothing to disagree with
    with pytest.raises(UsageError) as caught:
        ContractConfig(both, event_path="/events")
    assert str(caught.value) == (
        "the event path is given twice and differs: '/e' by InProcessApp(events=...) and '/events' by "
        "ContractConfig(event_path=...); give it in one place"
    )
    with pytest.raises(UsageError, match=r"install path is given twice.*'/i'.*'/install'"):
        ContractConfig(both, install_url="/install")
    target = resolve_target(InProcessApp(wsgi, events="/b24?x=1", host="localhost:8000"))
    assert isinstance(target, WsgiTarget)
    assert target.url == "http://localhost:8000/b24?x=1"
    assert isinstance(resolve_target(InProcessApp(asgi)), AsgiTarget)
    assert resolve_target(InProcessApp(asgi)).url == "http://handler.b24-contract.invalid/"
    assert resolve_target(InProcessApp(WsgiTarget(wsgi), events="/e")).url.endswith(".invalid/e")
    for bad, message in [
        ({"events": "events"}, "InProcessApp: events must be a path starting with '/' (such as '/events')"),
        ({"install": "/in stall"}, "InProcessApp: install must be a path starting with '/'"),
        ({"host": "a/b"}, "InProcessApp: host must be a host name"),
        ({"host": "localhost:99999"}, "InProcessApp: host must be a host name"),
    ]:
        with pytest.raises(UsageError, match=re.escape(message)):
            InProcessApp(wsgi, **bad)
    with pytest.raises(UsageError, match="give a handler reached over HTTP as its URL"):
        InProcessApp("http://127.0.0.1:9/")
    with pytest.raises(UsageError, match="not int"):
        InProcessApp(5)


# ------------------------------------------------------------------------------------------- evidence


def test_a_forged_events_late_call_still_fails_the_clause_at_the_end_of_the_run() -> None:
    # the forged-event alert waits in a queue until the next accepted event, long after the clause's wait:
    # the second look at the end of the run finds it, at the portal it reached (only the forged event went
    # there), so the verdict is a failure after all. Clause 10 goes first, so the valid control event that
    # clause 3a compares with is already sent (otherwise it goes out after the forged events and flushes
    # the queue within the clause's own wait: a failure at once)
    handler = ContractHandler("alerts-with-forged-token", alert_later=True)
    try:
        with serve_wsgi(handler) as url, ContractRun(ContractConfig(url, **FAST)) as run:
            run.check("survives-bursts")
            first = run.check("forged-token-no-side-effect")
            run.check("accepts-every-shape")  # the next accepted events flush the handler's queue
            run.check("tolerates-variation")
            changed = run.late_evidence()
            verdict = run.check("forged-token-no-side-effect")
    finally:
        handler.close()
    assert first.outcome == "pass"  # nothing came within the clause's wait
    assert changed == [verdict]
    assert verdict.outcome == "fail", verdict.message()
    assert "im.notify.system.add" in verdict.reason
    assert "arrived after the clause's wait" in verdict.reason


def test_a_forged_events_queued_call_is_flushed_by_the_control_within_the_clause() -> None:
    # the valid control event goes out after the forged ones: a handler that queues its forged-event alert
    # until the next accepted event sends it during the clause's own wait
    handler = ContractHandler("alerts-with-forged-token", alert_later=True)
    try:
        with serve_wsgi(handler) as url, ContractRun(ContractConfig(url, **FAST)) as run:
            verdict = run.check("forged-token-no-side-effect")
    finally:
        handler.close()
    assert verdict.outcome == "fail", verdict.message()
    assert "im.notify.system.add" in verdict.reason
    assert "arrived after" not in verdict.reason


def test_a_failure_explains_system_mode_and_says_how_to_rerun_just_that_clause() -> None:
    def user_mode_only(body: bytes, headers: Any, url: str) -> tuple[int, bytes]:
        # reads auth[access_token] unconditionally: every system-mode event is refused
        if b"auth%5Baccess_token%5D=" not in body and b"ONAPPINSTALL" not in body:
            return 400, b'{"error": "no access_token"}'
        return 200, b"{}"

    config = ContractConfig(CallableTarget(user_mode_only), **FAST)
    with ContractRun(config, rerun=lambda vid: f"mock-portal verify URL --clause {vid}") as run:
        verdict = run.check("accepts-every-shape")
    assert verdict.outcome == "fail"
    text = verdict.message()
    assert "system mode" in text
    assert "README.md#concepts-in-five-minutes" in text
    assert "re-run just this clause: mock-portal verify URL --clause accepts-every-shape" in text
    assert "event: ONSESSIONSTART (system mode)" in text


def test_failing_bodies_are_kept_in_files_and_the_curl_line_replays_them(tmp_path: Any) -> None:
    handler = ContractHandler("crashes-on-json")
    kept = tmp_path / "bodies"
    try:
        with (
            serve_wsgi(handler) as url,
            ContractRun(ContractConfig(url, bodies_dir=str(kept), **FAST)) as run,
        ):
            verdict = run.check("rejects-malformed-bodies")
            secrets_of_run = run.masker.secrets
    finally:
        handler.close()
    [ex] = verdict.exchanges
    assert ex.body_file is not None
    assert ex.reproduce.endswith(f"--data-binary @{ex.body_file} {url}")
    body = (kept / ex.body_file.rsplit("/", 1)[-1]).read_bytes()
    assert body.startswith(b"{")
    assert any(s.encode() in body for s in secrets_of_run)  # the exact body
    assert (kept / ex.body_file.rsplit("/", 1)[-1]).stat().st_mode & 0o077 == 0
    assert not any(s in verdict.message() for s in secrets_of_run)


# ------------------------------------------------------------------------------------------- registry


def test_the_registry_refuses_a_taken_id_and_lists_built_ins_by_number() -> None:
    from contract_tests.clauses import REGISTRY, clause

    def judge(ctx: Any) -> None:
        return None

    options: dict[str, Any] = {"level": "MUST", "title": "t", "expected": "e", "evidence": "v", "doc": "d"}
    with REGISTRY.scoped():
        clause("my-own-clause", **options)(judge)
        assert REGISTRY.ids()[-1] == "my-own-clause"
        assert [c.number for c in REGISTRY.builtins()] == [c.number for c in CLAUSES]
        with pytest.raises(UsageError, match="clause id 'my-own-clause' is already registered"):
            clause("my-own-clause", **options)(judge)
        with pytest.raises(UsageError, match="already registered"):
            clause("forged-token-refused", **options)(judge)
        with pytest.raises(UsageError, match="a clause id is 2-63 lower-case"):
            clause("Bad Id", **options)(judge)
        with pytest.raises(UnknownNameError, match="did you mean 'ONSESSIONSTART'"):
            clause("about-a-typo", events=["ONSESIONSTART"], **options)(judge)
    assert "my-own-clause" not in REGISTRY


def test_an_own_clause_that_raises_is_a_clause_error_not_a_verdict(reference_app: Any) -> None:
    from contract_tests.clauses import REGISTRY, clause
    from contract_tests.engine import ClauseError

    def broken(ctx: Any) -> None:
        raise KeyError("DIALOG_ID")

    options: dict[str, Any] = {"level": "MUST", "title": "t", "expected": "e", "evidence": "v", "doc": "d"}
    with REGISTRY.scoped():
        clause("reads-a-missing-key", **options)(broken)
        with ContractRun(ContractConfig(reference_app, **FAST)) as run, pytest.raises(ClauseError) as caught:
            run.check("reads-a-missing-key")
    assert "clause reads-a-missing-key" in str(caught.value)
    assert "raised KeyError: 'DIALOG_ID'" in str(caught.value)
