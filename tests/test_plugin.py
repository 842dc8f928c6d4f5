"""The pytest plugin, tested through pytester: options, ini settings, fixtures, the contract class, --pyargs.

Runs that deliver events go through ``runpytest_subprocess``: in process, the handler's and the portal's
worker threads would live under this suite's ``filterwarnings = error`` and pytester's module snapshots, which
a real user's run never has.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contract_tests import plugin
from tests.support.contract import serve_wsgi

FAST = ("--b24-settle", "0.05")
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``runpytest_subprocess`` with the checkout importable (for ``examples``).

    The inner run loads only this project's plugin, as a user's venv would: the suite's own tools (hypothesis,
    schemathesis, locust...) would add seconds of start-up to every run. The plugin's own registration
    through its entry point is tested where nothing else is installed (the fresh-virtualenv tests).
    """
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "contract_tests.plugin", *args)

    return run


HANDLER_MODULE = """
import pytest
from contract_tests import OnSessionStartContract
from examples.broken import ContractHandler

HANDLER = ContractHandler({flaw!r})


class TestMyHandler(OnSessionStartContract):
    @pytest.fixture
    def b24_handler(self):
        return HANDLER
"""


def _contract_file(pytester: pytest.Pytester, flaw: str | None = None) -> None:
    pytester.makepyfile(test_contract=HANDLER_MODULE.format(flaw=flaw))


@pytest.fixture
def reference_url() -> Iterator[str]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


# ---------------------------------------------------------------------------------------------- options


def test_options_are_in_one_group_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*Bitrix24 event handler contract (b24-contract)*"])
    for flag in ("--b24-handler-url", "--b24-install-url", "--b24-application-token", "--b24-shapes"):
        result.stdout.fnmatch_lines([f"*{flag}*"])
    for flag in ("--b24-timeout", "--b24-settle", "--b24-strict", "--b24-offline"):
        result.stdout.fnmatch_lines([f"*{flag}*"])
    result.stdout.fnmatch_lines(["*b24_handler_url (string)*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--b24-timeout", "soon"), "--b24-timeout: expected a number of seconds, got 'soon'"),
        (("--b24-timeout", "0"), "--b24-timeout: expected a number of seconds from 0.001 to 600"),
        (("--b24-settle", "-1"), "--b24-settle: expected a number of seconds from 0 to 600"),
        (("--b24-shapes", "docs-2024,docs-2099"), "--b24-shapes: unknown shape 'docs-2099'"),
        (("--b24-handler-url", "localhost:8080"), "--b24-handler-url: expected an http(s) URL"),
        (
            ("--b24-install-url", "http://127.0.0.1:1/", "--b24-application-token", "t"),
            "--b24-install-url/--b24-install-path and --b24-application-token exclude each other",
        ),
        (("--b24-member-id", "abc"), "--b24-member-id needs --b24-application-token"),
    ],
)
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, args: tuple[str, ...], message: str) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_ini_settings_are_read_and_options_win(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        b24_handler_url = http://127.0.0.1:8080/events
        b24_timeout = 2.5
        b24_shapes = docs-2026
        b24_strict = true
        b24_offline = true
        """
    )
    pytester.makepyfile(
        """
        def test_options(b24_options):
            assert b24_options.handler_url == "http://127.0.0.1:8080/events"
            assert b24_options.timeout == 2.5
            assert b24_options.shapes == ("docs-2026",)
            assert b24_options.strict is True
            assert b24_options.offline is True
            assert b24_options.settle == 0.05
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makepyfile(
        test_override="""
        def test_override(b24_options):
            assert b24_options.timeout == 4.0
        """
    )
    pytester.runpytest("--b24-timeout", "4", "test_override.py").assert_outcomes(passed=1)


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nb24_settle = a while\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--b24-settle: expected a number of seconds, got 'a while'*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*b24_contract(clause)*event handler contract*"])


# ---------------------------------------------------------------------------------------------- the contract


def test_without_a_handler_the_contract_is_left_out_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from contract_tests import OnSessionStartContract

        class TestNoHandler(OnSessionStartContract):
            pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(deselected=13)
    result.stdout.fnmatch_lines(
        ["b24-contract: 13 clause test(s) left out: no handler to check: give --b24-handler-url URL*"]
    )
    assert "SKIPPED" not in result.stdout.str()


@pytest.mark.slow
def test_subclass_with_an_in_process_handler_passes_every_clause(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    _contract_file(pytester)
    result = run_isolated(*FAST, "--b24-strict", "--b24-offline", "-v")
    result.assert_outcomes(passed=13)
    result.stdout.fnmatch_lines(
        [
            "*TestMyHandler::test_accepts_every_shape PASSED*",
            "*TestMyHandler::test_catches_up_offline PASSED*",
        ]
    )


@pytest.mark.slow
def test_broken_must_clause_fails_with_a_full_message(pytester: pytest.Pytester, run_isolated: Any) -> None:
    _contract_file(pytester, "crashes-on-json")
    result = run_isolated(*FAST)
    result.assert_outcomes(passed=11, failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*clause 5 rejects-malformed-bodies ?MUST? FAIL*JSON, as the doc pages render events -> 500*",
            "*expected: an answer below 500*",
            "*doc page: https://apidocs.bitrix24.com/api-reference/events/index.html*",
            "*body (JSON): *",
            "*re-run just this clause: python -m pytest *test_contract.py::TestMyHandler::"
            "test_rejects_malformed_bodies*",
        ]
    )
    assert "facts §" not in result.stdout.str()


@pytest.mark.slow
def test_broken_should_clause_xfails_unless_strict(pytester: pytest.Pytester, run_isolated: Any) -> None:
    _contract_file(pytester, "repeats-work")
    result = run_isolated(*FAST, "-rx")
    result.assert_outcomes(passed=11, xfailed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["*SHOULD clause ignores-repeated-delivery failed (--b24-strict makes it fail)*"]
    )
    # clause 11 is about handlers that declare offline use: without --b24-offline, one line says so
    result.stdout.fnmatch_lines(
        [
            "b24-contract: 1 clause test(s) left out: the handler does not declare offline use "
            "(mock-portal verify --offline, pytest --b24-offline)"
        ]
    )
    strict = run_isolated(*FAST, "--b24-strict")
    strict.assert_outcomes(passed=11, failed=1, deselected=1)


@pytest.mark.slow
def test_offline_clause_xfails_for_a_handler_that_never_clears_what_it_took(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    _contract_file(pytester, "never-clears-offline")
    result = run_isolated(*FAST, "--b24-offline", "-rx", "-k", "offline")
    result.assert_outcomes(xfailed=1, deselected=12)
    result.stdout.fnmatch_lines(
        ["*SHOULD clause catches-up-offline failed (--b24-strict makes it fail): *taken with clear=0*"]
    )


@pytest.mark.slow
def test_selecting_one_clause_by_name(pytester: pytest.Pytester, run_isolated: Any) -> None:
    _contract_file(pytester, "echoes-auth")
    result = run_isolated(*FAST, "--b24-strict", "-k", "echoes")
    result.assert_outcomes(failed=1, deselected=12)
    result.stdout.fnmatch_lines(["*clause 9 never-echoes-secrets ?SHOULD? FAIL*"])


@pytest.mark.slow
def test_pyargs_runs_the_contract_against_a_url(
    pytester: pytest.Pytester, run_isolated: Any, reference_url: str
) -> None:
    result = run_isolated("--pyargs", "contract_tests", "--b24-handler-url", reference_url, *FAST)
    # the generic clauses for other events: left out, as none is declared, and said so in one line
    result.assert_outcomes(passed=12, deselected=10)
    result.stdout.fnmatch_lines(
        [
            "b24-contract: 9 clause test(s) left out: "
            "no event other than ONSESSIONSTART declared (--b24-events)"
        ]
    )
    declared = run_isolated(
        "--pyargs",
        "contract_tests",
        "--b24-handler-url",
        reference_url,
        "--b24-events",
        "ONSESSIONSTART,ONIMCONNECTORMESSAGEADD",
        "--b24-strict",
        *FAST,
    )
    declared.assert_outcomes(passed=21, deselected=1)


@pytest.mark.slow
def test_pyargs_against_a_url_where_nothing_listens(pytester: pytest.Pytester, run_isolated: Any) -> None:
    with serve_wsgi(object()) as url:
        pass  # closed again: connections are refused
    result = run_isolated("--pyargs", "contract_tests", "--b24-handler-url", url, *FAST)
    result.assert_outcomes(failed=12, deselected=10)
    text = result.stdout.str()
    # the whole explanation once, then a short line per test
    assert "the handler did not accept its installation: ONAPPINSTALL" in text
    assert text.count("to fix it: point the contract at the URL") == 1
    assert text.count("(see the first failure)") == 11


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.mark.slow
def test_fixtures_for_a_users_own_tests(pytester: pytest.Pytester, run_isolated: Any) -> None:
    pytester.makepyfile(
        """
        import pytest
        from examples.broken import ContractHandler

        HANDLER = ContractHandler()

        @pytest.fixture
        def b24_handler():
            return HANDLER

        def test_session_start_posts_a_message(b24_portal, b24_app, b24_events, b24_deliver, b24_rest_calls):
            assert HANDLER.installations[b24_portal.member_id].application_token == b24_app.application_token
            event = b24_events.session_start(shape="docs-2026", auth="system")
            attempt = b24_deliver(event)
            assert attempt.ok, attempt
            calls = b24_rest_calls(count=1)
            assert [c.method for c in calls] == ["im.message.add"]
            assert calls[0].status == 200

        def test_forged_event_is_refused(b24_events, b24_deliver, b24_rest_calls):
            event = b24_events.session_start(overrides={"auth.application_token": "0" * 32})
            assert b24_deliver(event).status == 403
            assert b24_rest_calls() == []

        def test_each_test_gets_a_fresh_portal(b24_portal, b24_portal_server):
            assert b24_portal.domain in b24_portal_server.portals
            assert b24_portal.rest_calls == []
        """
    )
    run_isolated(*FAST).assert_outcomes(passed=3)


@pytest.mark.slow
def test_configured_application_token(pytester: pytest.Pytester, run_isolated: Any) -> None:
    token = "0123456789abcdef0123456789abcdef"
    pytester.makepyfile(
        f"""
        import pytest
        from contract_tests import OnSessionStartContract
        from examples.python_handler import HandlerApp, HandlerConfig

        APP = HandlerApp(HandlerConfig(application_token={token!r})).start()

        class TestConfigured(OnSessionStartContract):
            @pytest.fixture
            def b24_handler(self):
                return APP
        """
    )
    result = run_isolated(*FAST, "--b24-application-token", token, "-rs")
    result.assert_outcomes(passed=11, deselected=2)
    result.stdout.fnmatch_lines(["b24-contract: 1 clause test(s) left out: it needs the install flow*"])
    result.stdout.fnmatch_lines(
        ["b24-contract: 1 clause test(s) left out: the handler does not declare offline use*"]
    )


# ---------------------------------------------------------------------------------------------- cheap import


def test_known_shapes_match_the_event_builders() -> None:
    from mock_portal.events import SHAPES

    assert plugin.KNOWN_SHAPES == SHAPES


def test_default_events_match_the_clause_registry() -> None:
    from contract_tests.clauses import DEFAULT_EVENTS

    assert plugin.DEFAULT_EVENTS == DEFAULT_EVENTS


def test_plugin_import_stays_light() -> None:
    heavy = (
        "mock_portal.server",
        "mock_portal.portal",
        "contract_tests.engine",
        "aiohttp",
        "httpx",
        "faker",
        # the clause registry and the event table load only when a run names events or runs a clause
        "contract_tests.clauses",
        "mock_portal.eventtable",
    )
    code = (
        "import sys, contract_tests.plugin, contract_tests; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert loaded.stdout.strip() == ""


def test_public_names_of_contract_tests() -> None:
    import contract_tests

    assert contract_tests.__all__ == sorted(contract_tests.__all__)
    assert sorted(contract_tests._EXPORTS) == contract_tests.__all__
    for name in contract_tests.__all__:
        value: Any = getattr(contract_tests, name)
        assert value is not None
    with pytest.raises(AttributeError, match="no_such"):
        contract_tests.no_such  # noqa: B018


EVENTS_MODULE = """
import pytest
from contract_tests import DeclaredEventsContract, OnSessionStartContract
from examples.broken import ContractHandler

HANDLER = ContractHandler({flaw!r})


class TestMyHandler(OnSessionStartContract, DeclaredEventsContract):
    @pytest.fixture
    def b24_handler(self):
        return HANDLER
"""


@pytest.mark.slow
def test_declared_events_run_the_generic_clauses_per_event(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    pytester.makepyfile(test_contract=EVENTS_MODULE.format(flaw="answers-200-to-forgery"))
    pytester.makeini("[pytest]\nb24_events = onsessionstart, ONIMCONNECTORMESSAGEADD\n")
    result = run_isolated(*FAST, "-v", "-rx")
    # 12 OnSessionStart clauses + 9 generic ones for the connector event; 3b fails (xfail) for both events;
    # clause 11 is left out (no --b24-offline)
    result.assert_outcomes(passed=19, xfailed=2, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*TestMyHandler::test_event_forged_token_refused[[]ONIMCONNECTORMESSAGEADD[]] XFAIL*",
            "*SHOULD clause forged-token-refused[[]ONIMCONNECTORMESSAGEADD[]] failed*",
        ]
    )


@pytest.mark.slow
def test_without_declared_sibling_events_the_generic_class_is_one_line(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    pytester.makepyfile(test_contract=EVENTS_MODULE.format(flaw=None))
    result = run_isolated(*FAST, "-rs", "-k", "accepts or none")
    result.assert_outcomes(passed=1, deselected=21)
    result.stdout.fnmatch_lines(
        [
            "b24-contract: 9 clause test(s) left out: "
            "no event other than ONSESSIONSTART declared (--b24-events)"
        ]
    )
    assert "SKIPPED" not in result.stdout.str()


@pytest.mark.slow
def test_only_a_sibling_declared_leaves_out_the_onsessionstart_class(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    pytester.makepyfile(test_contract=EVENTS_MODULE.format(flaw=None))
    result = run_isolated(*FAST, "--b24-events", "ONIMCONNECTORMESSAGEADD", "--b24-strict", "-rs")
    result.assert_outcomes(passed=9, deselected=13)
    result.stdout.fnmatch_lines(
        [
            "b24-contract: 13 clause test(s) left out: the handler does not declare ONSESSIONSTART "
            "(declared: ONIMCONNECTORMESSAGEADD)"
        ]
    )


def test_unknown_declared_event_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--b24-events", "ONSESSIONSTART,ONIMCONNECTORMESAGEADD")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--b24-events: unknown event 'ONIMCONNECTORMESAGEADD'; did you mean*"])


# ---------------------------------------------------------------------------------------------- in process

ROUTED_MODULE = """
import pytest
from contract_tests import OnSessionStartContract
from examples.python_handler import HandlerApp, HandlerConfig

APP = HandlerApp(HandlerConfig()).start()


def routed(environ, start_response):
    # mounted the way real apps are: events and installs at their own paths, 404 elsewhere
    if environ.get("PATH_INFO") in ("/bitrix/events", "/bitrix/install"):
        return APP(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


class TestRouted(OnSessionStartContract):
    @pytest.fixture
    def b24_handler(self):
        return routed
"""


@pytest.mark.slow
def test_an_app_at_its_own_paths_fails_loudly_until_given_them(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    pytester.makepyfile(test_routed=ROUTED_MODULE)
    lost = run_isolated(*FAST)
    # a 404 at / never passes anything (clause 5 least of all): the install fails, and says what to do
    lost.assert_outcomes(failed=12, deselected=1)
    lost.stdout.fnmatch_lines(
        [
            "*the handler did not accept its installation: ONAPPINSTALL to the handler URL*answered 404*",
            "*your app is called in process at path /*--b24-event-path /events*",
        ]
    )
    found = run_isolated(
        *FAST, "--b24-event-path", "/bitrix/events", "--b24-install-path", "/bitrix/install", "--b24-strict"
    )
    found.assert_outcomes(passed=12, deselected=1)


@pytest.mark.slow
def test_event_and_install_paths_in_ini(pytester: pytest.Pytester, run_isolated: Any) -> None:
    pytester.makepyfile(test_routed=ROUTED_MODULE)
    pytester.makeini("[pytest]\nb24_event_path = /bitrix/events\nb24_install_path = /bitrix/install\n")
    run_isolated(*FAST, "-k", "accepts or forged").assert_outcomes(passed=3, deselected=10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--b24-event-path", "events"), "--b24-event-path: expected a path starting with '/'"),
        (
            ("--b24-install-path", "/i", "--b24-install-url", "http://127.0.0.1:9/"),
            "--b24-install-url and --b24-install-path exclude each other",
        ),
        (("--b24-clauses", "no_such_module_here"), "--b24-clauses: cannot import 'no_such_module_here'"),
    ],
)
def test_bad_paths_and_clause_modules_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


FLASK_MODULE = """
import hmac
import re

import pytest
import requests
from flask import Flask, request

from contract_tests import InProcessApp, OnSessionStartContract

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 1 << 20
installs = {}  # member_id -> (application_token, access_token)
CHAT_ID = re.compile(r"data\\[DATA\\](\\[\\d+\\])?\\[chat\\]\\[(chat_)?id\\]")


@app.post("/install")
def install():
    form = request.form
    if form.get("event") != "ONAPPINSTALL" or not form.get("auth[application_token]"):
        return {"error": "not an installation"}, 400
    installs[form["auth[member_id]"]] = (form["auth[application_token]"], form.get("auth[access_token]"))
    return {"status": "ok"}


@app.post("/events")
def events():
    form = request.form
    known = installs.get(form.get("auth[member_id]", ""))
    if known is None or not hmac.compare_digest(known[0], form.get("auth[application_token]", "")):
        return {"error": "unknown portal or wrong application_token"}, 403
    if form.get("event") == "ONSESSIONSTART":
        token = form.get("auth[access_token]") or known[1]  # system mode: the token stored at install
        for key, chat_id in form.items():
            if CHAT_ID.fullmatch(key):
                requests.post(
                    form["auth[client_endpoint]"] + "im.message.add.json",
                    data={"auth": token, "DIALOG_ID": f"chat{chat_id}", "MESSAGE": "Hello"},
                    timeout=10,
                )
    return {"status": "ok"}


@pytest.fixture
def b24_handler():
    return InProcessApp(app, events="/events", install="/install")


class TestFlaskHandler(OnSessionStartContract):
    pass


def test_fixtures_reach_the_apps_paths(b24_portal, b24_app, b24_events, b24_deliver, b24_rest_calls):
    assert installs[b24_portal.member_id][0] == b24_app.application_token  # ONAPPINSTALL reached /install
    assert b24_deliver(b24_events.session_start(auth="system")).status == 200
    assert [c.method for c in b24_rest_calls(count=1)] == ["im.message.add"]
"""


@pytest.mark.slow
def test_a_flask_app_at_its_own_paths_given_only_by_the_fixture(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    """``InProcessApp`` with both paths, no option or ini: the contract class and the fixtures use them (the
    app answers 404 at ``/``, so any other path would fail the install)."""
    pytest.importorskip("flask", reason="flask is in the test extra: pip install '.[test]'")
    pytester.makepyfile(test_flask=FLASK_MODULE)
    result = run_isolated(*FAST, "-v", "-k", "accepts_every_shape or forged_token_no_side or fixtures")
    result.assert_outcomes(passed=3)


BAD_PATHS_MODULE = """
import pytest
from contract_tests import InProcessApp, OnSessionStartContract


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


class TestNoSlash(OnSessionStartContract):
    @pytest.fixture
    def b24_handler(self):
        return InProcessApp(app, events="b24/events")


class TestTwoPaths(OnSessionStartContract):
    @pytest.fixture
    def b24_handler(self):
        return InProcessApp(app, events="/b24/events")
"""


@pytest.mark.slow
def test_a_bad_or_disputed_in_process_path_is_one_line(pytester: pytest.Pytester, run_isolated: Any) -> None:
    pytester.makepyfile(test_paths=BAD_PATHS_MODULE)
    result = run_isolated("--b24-event-path", "/events", "-k", "accepts_every_shape")
    result.assert_outcomes(errors=2)
    text = result.stdout.str()
    lines = text.splitlines()
    for message in (
        "b24-contract: InProcessApp: events must be a path starting with '/' (such as '/events'), "
        "got 'b24/events'",
        "the event path is given twice and differs: '/b24/events' by InProcessApp(events=...) and '/events' "
        "by --b24-event-path (or b24_event_path in ini); give it in one place",
    ):
        assert message in lines, text
    assert "Traceback" not in text, text
    assert "def b24_handler" not in text, text


# ---------------------------------------------------------------------------------------------- own clauses


@pytest.mark.slow
def test_own_clauses_from_a_conftest_run_as_tests(pytester: pytest.Pytester, run_isolated: Any) -> None:
    pytester.makeconftest("import examples.own_clauses  # registers the app's own clauses\n")
    pytester.makepyfile(test_contract=EVENTS_MODULE.format(flaw=None))
    result = run_isolated(
        *FAST, "--b24-events", "ONSESSIONSTART,ONIMCONNECTORMESSAGEADD", "--b24-strict", "-v"
    )
    result.assert_outcomes(passed=12 + 9 + 2, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*TestMyHandler::test_own_clause[[]greets-in-own-chat[]] PASSED*",
            "*TestMyHandler::test_own_clause[[]confirms-delivery[[]ONIMCONNECTORMESSAGEADD[]][]] PASSED*",
        ]
    )


@pytest.mark.slow
def test_an_own_clause_about_an_undeclared_event_is_left_out(
    pytester: pytest.Pytester, run_isolated: Any
) -> None:
    pytester.makepyfile(test_contract=HANDLER_MODULE.format(flaw=None))
    result = run_isolated(*FAST, "--b24-clauses", "examples.own_clauses", "-k", "own_clause")
    result.assert_outcomes(passed=1, deselected=14)
    result.stdout.fnmatch_lines(
        ["b24-contract: 1 clause test(s) left out: confirms-delivery: it is about ONIMCONNECTORMESSAGEADD*"]
    )


@pytest.mark.slow
def test_a_failing_own_clause_reads_like_a_built_in_one(pytester: pytest.Pytester, run_isolated: Any) -> None:
    pytester.makeconftest(
        """
        from contract_tests import clause

        @clause(
            "greets-with-the-line-name",
            level="MUST",
            title="the greeting names the open line",
            expected="a greeting that mentions the line's name",
            evidence="our product spec, section 2",
            doc="https://example.test/spec#greeting",
            events=["ONSESSIONSTART"],
        )
        def greets_with_the_line_name(ctx):
            site = ctx.site()
            event = ctx.build(site, shape="source-2024", line_name="Sales")
            sent = ctx.deliver(site, event, focus=["data.DATA.line"])
            texts = [c.params.get("MESSAGE", "") for c in ctx.calls(sent)]
            if not any("Sales" in t for t in texts):
                ctx.fail(f"the greetings {texts} do not name the line", [sent])
        """
    )
    pytester.makepyfile(test_contract=HANDLER_MODULE.format(flaw=None))
    result = run_isolated(*FAST, "-k", "own_clause")
    result.assert_outcomes(failed=1, deselected=13)
    result.stdout.fnmatch_lines(
        [
            "*clause greets-with-the-line-name [[]MUST[]] FAIL: "
            "the greetings [[]'Hi'[]] do not name the line*",
            "*doc page: https://example.test/spec#greeting*",
            '*data.DATA.line: {"id": "1", "name": "Sales"}*',
            "*re-run just this clause: python -m pytest *test_own_clause*",
        ]
    )


USERS_EXPORT_TESTS = """
import pytest


def test_each_declared_event_has_a_webhook(b24_openapi, b24_options):
    assert b24_openapi["openapi"] == "3.1.0"
    for event in b24_options.events:
        post = b24_openapi["webhooks"][event]["post"]
        assert "application/x-www-form-urlencoded" in post["requestBody"]["content"]


def test_asyncapi_has_a_channel_per_declared_event(b24_asyncapi, b24_options):
    assert b24_asyncapi["asyncapi"] == "3.0.0"
    assert set(b24_options.events) <= set(b24_asyncapi["channels"])


def test_an_undeclared_name_is_not_invented(b24_openapi):
    assert "ONNOSUCHEVENT" not in b24_openapi["webhooks"]
"""


@pytest.mark.slow
def test_export_fixtures_in_a_users_tests(pytester: pytest.Pytester, run_isolated: Any) -> None:
    pytester.makepyfile(test_export=USERS_EXPORT_TESTS)
    result = run_isolated("--b24-events", "ONSESSIONSTART,ONCRMDEALADD")
    result.assert_outcomes(passed=3)
    assert "/_portal/ui" not in result.stdout.str()  # no inspector unless asked for


USERS_INSPECTOR_TEST = """
import json
import urllib.request


def test_the_inspector_answers_while_tests_run(b24_portal, b24_portal_server):
    url = b24_portal_server.url + "/_portal/ui"
    print("fetched", url)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/html")
    # what the page reads: this test's portal is listed
    with urllib.request.urlopen(b24_portal_server.url + "/_portal/portals?limit=100", timeout=10) as answer:
        domains = [p["domain"] for p in json.load(answer)]
    assert b24_portal.domain in domains
"""

_INSPECTOR_URL = r"b24-contract: inspector (http://127\.0\.0\.1:\d+/_portal/ui) "


@pytest.mark.parametrize(
    "args",
    [("--b24-inspector", "-s"), ("-q", "-s", "-o", "b24_inspector=true")],
    ids=["option-in-header", "ini-with-q"],
)
def test_inspector_url_is_printed_and_answers(
    pytester: pytest.Pytester, run_isolated: Any, args: tuple[str, ...]
) -> None:
    import re

    pytester.makepyfile(test_watch=USERS_INSPECTOR_TEST)
    result = run_isolated(*args)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    printed = re.findall(_INSPECTOR_URL, out)
    fetched = re.findall(r"fetched (\S+)", out)
    assert len(printed) == 1, out
    assert printed == fetched  # the URL printed is the session server's, which the test reached
    assert out.index("b24-contract: inspector") < out.index("fetched")  # printed before the tests ran
