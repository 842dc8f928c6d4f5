"""pytest plugin entry point (``pytest11``). Imported in every pytest run of every user: keep it cheap.

Only pytest and the standard library are imported here; the portal, the delivery engine and the clause engine
are imported inside the fixtures that need them.

Options (each also an ini setting, ``b24_handler_url`` and so on)::

    --b24-handler-url URL        the handler to check (over HTTP); or override the ``b24_handler`` fixture
    --b24-event-path PATH        the path events go to (an in-process app is called at / otherwise)
    --b24-install-path PATH      the path ONAPPINSTALL goes to, on the handler (default: the event path)
    --b24-install-url URL        where ONAPPINSTALL goes, another URL (default: the handler)
    --b24-application-token T    the token the handler was configured with, instead of the install flow
    --b24-member-id ID           the member_id that token is bound to, if any
    --b24-shapes a,b             OnSessionStart shapes to send (default: all three)
    --b24-events A,B             events the handler declares (default ONSESSIONSTART); the generic clauses
                                 run for each (``DeclaredEventsContract``, parametrised by ``b24_event``)
    --b24-timeout S              seconds per delivery (default 10)
    --b24-settle S               least seconds waited to see an event cause no REST call (default 0.05;
                                 grows with the handler's measured work latency)
    --b24-strict                 SHOULD clauses fail the run too
    --b24-offline                the handler declares offline use (reads its events with event.offline.get):
                                 the clauses about offline events run too
    --b24-clauses MODULES        import these modules first: the clauses they register run too
    --b24-fuzz N                 generate N events per declared event from the schemas and deliver them:
                                 the ``survives-fuzzing`` clause (no 5xx, hang, crash or echoed secret);
                                 0, the default, leaves it out (needs hypothesis)
    --b24-fuzz-seed S            the seed they are generated from (default 0: the same events every run)
    --b24-inspector              start the session's portal server at once and print its inspector page's URL
                                 (``http://127.0.0.1:PORT/_portal/ui``) in the header: the REST calls, apps
                                 and installs of every test's and contract run's portals, live (the events
                                 ``b24_deliver`` and the clauses send are not on it: its deliveries are the
                                 ones a portal sends itself)

Clause tests the configuration makes irrelevant (no handler given, an event not declared, two portals with a
configured token, offline events without ``--b24-offline``) are left out at collection and summarised in one
line of the terminal summary.

An app called in process gets its paths from the options, or from the fixture value
``InProcessApp(app, events="/events", install="/install")``; a path given both ways must agree (two different
ones fail each test with one line naming both places).

Fixtures: ``b24_handler`` (override it to return a URL, a WSGI or ASGI app, an ``InProcessApp`` or a
callable), ``b24_options``,
``b24_portal_server``, ``b24_portal``, ``b24_app``, ``b24_events``, ``b24_deliver``, ``b24_rest_calls``,
``b24_event`` (a declared event other than ONSESSIONSTART; parametrised), ``b24_clause`` (a clause you
registered; parametrised), ``b24_contract`` (the clause engine's run, shared by every test that checks the
same handler), ``b24_recording``, ``b24_recorded_events``, and ``b24_openapi`` / ``b24_asyncapi`` (the OpenAPI
3.1 and AsyncAPI 3.0 documents of every event, as dicts).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from contract_tests.engine import ContractRun, EventFactory
    from mock_portal.delivery import Attempt
    from mock_portal.portal import App, Portal, RestCall
    from mock_portal.server import PortalServer

# kept in step with mock_portal.events.SHAPES by a test; not imported, so loading the plugin stays cheap
KNOWN_SHAPES = ("source-2024", "docs-2024", "docs-2026")
# kept in step with contract_tests.clauses.DEFAULT_EVENTS by a test: the clause registry and the event table
# load only when a run names its events or a contract test needs them
DEFAULT_EVENTS: tuple[str, ...] = ("ONSESSIONSTART",)
MARKER = "b24_contract"

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("handler_url", "URL", "URL of the event handler to check (or override the b24_handler fixture)"),
    (
        "event_path",
        "PATH",
        "path the handler receives events at (an in-process app is called at / otherwise)",
    ),
    ("install_path", "PATH", "path on the handler ONAPPINSTALL is POSTed to (default: the event path)"),
    ("install_url", "URL", "where ONAPPINSTALL is POSTed, another URL (default: the handler URL)"),
    ("application_token", "TOKEN", "token the handler is configured with, instead of the install flow"),
    ("member_id", "ID", "member_id the configured application token is bound to, if any"),
    ("shapes", "LIST", f"comma-separated OnSessionStart shapes (default: {','.join(KNOWN_SHAPES)})"),
    ("events", "LIST", "comma-separated events the handler declares it handles (default: ONSESSIONSTART)"),
    ("timeout", "SECONDS", "seconds a delivery may take (default 10)"),
    (
        "settle",
        "SECONDS",
        "least seconds waited to see that an event led to no REST call; grows with the handler's measured "
        "work latency (default 0.05)",
    ),
    ("clauses", "MODULES", "comma-separated modules to import first: the clauses they register run too"),
    (
        "fuzz",
        "N",
        "generate N events per declared event from the schemas and deliver them: the survives-fuzzing clause "
        "(no 5xx, hang, crash or echoed secret); default 0: off",
    ),
    ("fuzz_seed", "SEED", "the seed fuzzing generates its events from (default 0: the same events each run)"),
)


@dataclass(frozen=True)
class B24Options:
    """The plugin's settings, checked: what ``--b24-*`` options and ``b24_*`` ini settings said."""

    handler_url: str | None = None
    event_path: str | None = None
    install_url: str | None = None
    application_token: str | None = None
    member_id: str | None = None
    shapes: tuple[str, ...] = KNOWN_SHAPES
    events: tuple[str, ...] = DEFAULT_EVENTS
    timeout: float = 10.0
    settle: float = 0.05
    strict: bool = False
    clauses: tuple[str, ...] = ()
    offline: bool = False
    fuzz: int = 0
    fuzz_seed: int = 0
    inspector: bool = False


_OFFLINE_HELP = (
    "the handler declares offline use (reads its events with event.offline.get): the clauses about offline "
    "events run too"
)
_INSPECTOR_HELP = (
    "start the session's portal server at once and print its inspector page's URL, to watch deliveries and "
    "REST calls live while the tests run"
)
_FLAGS = ("--b24-strict", "--b24-offline", "--b24-inspector")
_STASH = pytest.StashKey[B24Options]()
_SERVER = pytest.StashKey["PortalServer"]()
_LEFT_OUT = pytest.StashKey[dict[str, int]]()
_NOT_APPLICABLE = "b24_not_applicable"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("b24-contract", "Bitrix24 event handler contract (b24-contract)")
    for name, metavar, help_text in _OPTIONS:
        flag = "--b24-" + name.replace("_", "-")
        group.addoption(flag, dest=f"b24_{name}", metavar=metavar, default=None, help=help_text)
        parser.addini(f"b24_{name}", help=help_text, default=None)
    group.addoption(
        "--b24-strict",
        dest="b24_strict",
        action="store_true",
        default=None,
        help="SHOULD clauses fail the run too",
    )
    parser.addini("b24_strict", help="SHOULD clauses fail the run too", type="bool", default=False)
    group.addoption(
        "--b24-offline",
        dest="b24_offline",
        action="store_true",
        default=None,
        help=_OFFLINE_HELP,
    )
    parser.addini("b24_offline", help=_OFFLINE_HELP, type="bool", default=False)
    group.addoption(
        "--b24-inspector",
        dest="b24_inspector",
        action="store_true",
        default=None,
        help=_INSPECTOR_HELP,
    )
    parser.addini("b24_inspector", help=_INSPECTOR_HELP, type="bool", default=False)


def _raw(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"b24_{name}")
    if value is None:
        value = config.getini(f"b24_{name}")
    return value


def _url(value: str | None, flag: str) -> str | None:
    if value in (None, ""):
        return None
    assert value is not None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise pytest.UsageError(f"{flag}: expected an http(s) URL with a host, got {value[:200]!r}")
    return value


def _path(value: Any, flag: str) -> str | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not text.startswith("/") or any(c in text for c in " \r\n#"):
        raise pytest.UsageError(f"{flag}: expected a path starting with '/', got {text[:200]!r}")
    return text


def _seconds(value: Any, flag: str, default: float, low: float) -> float:
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{flag}: expected a number of seconds, got {value!r}") from None
    if not low <= number <= 600:
        raise pytest.UsageError(f"{flag}: expected a number of seconds from {low:g} to 600, got {value!r}")
    return number


def _count(value: Any, flag: str, high: int) -> int:
    if value in (None, ""):
        return 0
    text = str(value).strip()
    if not text.isdigit() or int(text) > high:
        raise pytest.UsageError(f"{flag}: expected a whole number from 0 to {high}, got {value!r}")
    return int(text)


def _events(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return DEFAULT_EVENTS
    from contract_tests.clauses import DECLARABLE_EVENTS

    names: list[str] = []
    for item in str(value).split(","):
        name = item.strip().upper()
        if name and name not in DECLARABLE_EVENTS:
            import difflib

            close = difflib.get_close_matches(name, DECLARABLE_EVENTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise pytest.UsageError(
                f"--b24-events: unknown event {name!r}{hint} (known: {', '.join(DECLARABLE_EVENTS)})"
            )
        if name and name not in names:
            names.append(name)
    if not names:
        raise pytest.UsageError(f"--b24-events: no event in {value!r}")
    return tuple(names)


def options_from(config: pytest.Config) -> B24Options:
    """Read and check the ``b24`` options of a pytest config; a bad value raises ``pytest.UsageError``."""
    shapes_raw = _raw(config, "shapes")
    shapes: tuple[str, ...] = KNOWN_SHAPES
    if shapes_raw not in (None, ""):
        shapes = tuple(s.strip() for s in str(shapes_raw).split(",") if s.strip())
        unknown = [s for s in shapes if s not in KNOWN_SHAPES]
        if unknown or not shapes:
            raise pytest.UsageError(
                f"--b24-shapes: unknown shape {unknown[0] if unknown else shapes_raw!r} "
                f"(known: {', '.join(KNOWN_SHAPES)})"
            )
    events = _events(_raw(config, "events"))
    token = _raw(config, "application_token") or os.environ.get("B24_APPLICATION_TOKEN") or None
    install_url = _url(_raw(config, "install_url"), "--b24-install-url")
    install_path = _path(_raw(config, "install_path"), "--b24-install-path")
    if install_url is not None and install_path is not None:
        raise pytest.UsageError("--b24-install-url and --b24-install-path exclude each other: give one")
    install_url = install_url or install_path
    if token is not None and install_url is not None:
        raise pytest.UsageError(
            "--b24-install-url/--b24-install-path and --b24-application-token exclude each other: give one"
        )
    member_id = _raw(config, "member_id") or None
    if member_id is not None and token is None:
        raise pytest.UsageError("--b24-member-id needs --b24-application-token")
    strict = config.getoption("b24_strict")
    offline = config.getoption("b24_offline")
    inspector = config.getoption("b24_inspector")
    clauses = tuple(m.strip() for m in str(_raw(config, "clauses") or "").split(",") if m.strip())
    fuzz = _count(_raw(config, "fuzz"), "--b24-fuzz", 10_000)
    if fuzz:
        from mock_portal._extras import MissingExtraError, require

        try:
            require("fuzz", what="--b24-fuzz")
        except MissingExtraError as exc:
            raise pytest.UsageError(str(exc)) from None
    return B24Options(
        handler_url=_url(_raw(config, "handler_url"), "--b24-handler-url"),
        event_path=_path(_raw(config, "event_path"), "--b24-event-path"),
        install_url=install_url,
        application_token=token,
        member_id=member_id,
        shapes=shapes,
        events=events,
        timeout=_seconds(_raw(config, "timeout"), "--b24-timeout", 10.0, 0.001),
        settle=_seconds(_raw(config, "settle"), "--b24-settle", 0.05, 0.0),
        strict=bool(config.getini("b24_strict")) if strict is None else bool(strict),
        clauses=clauses,
        offline=bool(config.getini("b24_offline")) if offline is None else bool(offline),
        fuzz=fuzz,
        fuzz_seed=_count(_raw(config, "fuzz_seed"), "--b24-fuzz-seed", 2**64 - 1),
        inspector=bool(config.getini("b24_inspector")) if inspector is None else bool(inspector),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(clause): a clause of the Bitrix24 event handler contract (b24-contract)"
    )
    config.addinivalue_line(
        "markers", f"{_NOT_APPLICABLE}(reason): a contract test the configuration leaves out (b24-contract)"
    )
    options = options_from(config)
    xdist_workers = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if options.inspector and xdist_workers:
        raise pytest.UsageError(
            "--b24-inspector shows the one portal server of a session, and pytest-xdist gives each worker "
            "its own: run without -n"
        )
    config.stash[_STASH] = options
    config.stash[_LEFT_OUT] = {}
    if options.clauses:
        import importlib

        for name in options.clauses:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise pytest.UsageError(f"--b24-clauses: cannot import {name!r}: {exc}") from None


def _left_out(reason: str) -> pytest.MarkDecorator:
    mark: pytest.MarkDecorator = getattr(pytest.mark, _NOT_APPLICABLE)(reason)
    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``b24_event`` with the declared events other than ONSESSIONSTART (which
    ``OnSessionStartContract`` covers), and ``b24_clause`` with the verdicts of the clauses you registered;
    with none, one case that collection leaves out (summarised in one line)."""
    options = metafunc.config.stash[_STASH]
    if "b24_event" in metafunc.fixturenames:
        siblings = [e for e in options.events if e != "ONSESSIONSTART"]
        if siblings:
            metafunc.parametrize("b24_event", siblings, ids=siblings)
        else:
            reason = "no event other than ONSESSIONSTART declared (--b24-events)"
            mark = _left_out(reason)
            metafunc.parametrize("b24_event", [pytest.param("", marks=mark, id="none-declared")])
    if "b24_clause" in metafunc.fixturenames:
        from contract_tests.clauses import REGISTRY, verdict_id

        params = []
        for item in REGISTRY.own():
            events = item.verdict_events(options.events) or (item.events or ("ONSESSIONSTART",))[:1]
            for event in events:
                vid = verdict_id(item.id, event)
                marks = [getattr(pytest.mark, MARKER)(item.id)]
                why = item.not_applicable(
                    options.events, options.application_token is None, offline=options.offline
                )
                if why is not None:
                    marks.append(_left_out(f"{item.id}: {why}"))
                params.append(pytest.param(vid, marks=marks, id=vid))
        if not params:
            params = [pytest.param("", marks=_left_out(""), id="none-registered")]
        metafunc.parametrize("b24_clause", params)


def _why_left_out(item: pytest.Item, options: B24Options) -> str | None:
    """Why the configuration makes ``item`` (a contract test) irrelevant (``""``: drop it silently, it is
    only a placeholder), or ``None``."""
    from contract_tests.clauses import REGISTRY

    clause_mark = item.get_closest_marker(MARKER)
    name = str(clause_mark.args[0]) if clause_mark is not None and clause_mark.args else ""
    option = REGISTRY.get(name).option if name in REGISTRY else ""
    if option and not getattr(options, option, 0):
        return ""  # a clause a setting turns on (fuzzing), and it is off: no trace of it in the run
    marker = item.get_closest_marker(_NOT_APPLICABLE)
    if marker is not None:
        return str(marker.args[0]) if marker.args else ""
    if clause_mark is None:
        return None
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("b24_handler") if info is not None else None
    if options.handler_url is None and defs and getattr(defs[-1].func, "__module__", "") == __name__:
        return "no handler to check: give --b24-handler-url URL or override the b24_handler fixture"
    names = getattr(item, "fixturenames", ())
    if "b24_event" in names or "b24_clause" in names:
        return None  # parametrised per event or clause: the placeholder marks say what does not apply
    # a test of OnSessionStartContract judges its clause for ONSESSIONSTART
    if "ONSESSIONSTART" not in options.events:
        return f"the handler does not declare ONSESSIONSTART (declared: {', '.join(options.events)})"
    if name not in REGISTRY:
        return None
    found = REGISTRY.get(name)
    return found.not_applicable(options.events, options.application_token is None, offline=options.offline)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the contract tests the configuration makes irrelevant; count them per reason."""
    options = config.stash[_STASH]
    kept, dropped = [], []
    counts = config.stash[_LEFT_OUT]
    for item in items:
        why = _why_left_out(item, options)
        if why is None:
            kept.append(item)
        elif why:
            dropped.append(item)
            counts[why] = counts.get(why, 0) + 1
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A contract test whose set-up met a known usage error (a bad ``InProcessApp`` path in the
    ``b24_handler`` fixture, say) reports it in one line, without a traceback."""
    report = yield
    errors = sys.modules.get("mock_portal.errors")  # not imported yet: no such error can have been raised
    if (
        call.when == "setup"
        and call.excinfo is not None
        and errors is not None
        and call.excinfo.errisinstance(errors.UsageError)
        and "b24_handler" in getattr(item, "fixturenames", ())
    ):
        report.longrepr = f"b24-contract: {call.excinfo.value}"
    return report


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``--b24-inspector``, start the session's portal server now, so its page can be opened before the
    first test; without a header (``-q``), print its URL here."""
    config = session.config
    if not config.stash[_STASH].inspector:
        return
    from mock_portal.server import PortalServer

    server = PortalServer().start()  # 127.0.0.1, no control token: nothing secret in the URL
    config.stash[_SERVER] = server
    config.add_cleanup(server.stop)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and config.get_verbosity() < 0:
        reporter.write_line(_inspector_line(server))


def _inspector_line(server: PortalServer) -> str:
    return (
        f"b24-contract: inspector {server.url}/_portal/ui (every portal of this session, each test's "
        "b24_portal and each contract run's: its REST calls, apps and installs; events sent with b24_deliver "
        "or by the clauses are in the test reports)"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    server = config.stash.get(_SERVER, None)
    return [_inspector_line(server)] if server is not None else []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line per reason the configuration left contract tests out."""
    for why, count in config.stash.get(_LEFT_OUT, {}).items():
        terminalreporter.write_line(f"b24-contract: {count} clause test(s) left out: {why}")


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def b24_options(pytestconfig: pytest.Config) -> B24Options:
    """The checked ``--b24-*`` options."""
    return pytestconfig.stash[_STASH]


@pytest.fixture
def b24_handler(b24_options: B24Options) -> Any:
    """The handler under test: the ``--b24-handler-url``. Override it to return a URL, a WSGI app, an ASGI
    app, an ``InProcessApp(app, events=..., install=...)`` or a ``handler(body, headers, url)`` callable."""
    if b24_options.handler_url is None:
        pytest.skip("no handler to check: give --b24-handler-url URL or override the b24_handler fixture")
    return b24_options.handler_url


_PLACES = (
    "--b24-event-path (or b24_event_path in ini)",
    "--b24-install-path or --b24-install-url (or their ini settings)",
)


def _paths(handler: Any, options: B24Options) -> tuple[str | None, str | None]:
    """The event path and install URL for ``handler``: the options', else an ``InProcessApp``'s own; paths
    given both ways that differ fail the test with one line naming both."""
    from contract_tests.config import app_paths
    from mock_portal.errors import UsageError

    try:
        return app_paths(
            handler, options.event_path, options.install_url, options.application_token is None, _PLACES
        )
    except UsageError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # outside the except block: one message, not the chained error too


def _run_key(handler: Any) -> Any:
    """Tests checking the same handler share one run: a URL by its text, an app by its identity, a value
    wrapping one (``InProcessApp``, ``WsgiTarget``...), made anew for each test, by its app and settings."""
    if isinstance(handler, str):
        return handler
    if dataclasses.is_dataclass(handler) and not isinstance(handler, type) and not callable(handler):
        values = (getattr(handler, f.name) for f in dataclasses.fields(handler))
        key = (type(handler), *(("object", id(v)) if callable(v) else v for v in values))
        try:
            hash(key)
        except TypeError:
            pass
        else:
            return key
    return ("object", id(handler))


@pytest.fixture(scope="session")
def b24_portal_server(pytestconfig: pytest.Config) -> Iterator[PortalServer]:
    """The mock portal server (REST, OAuth, control API, the inspector page at ``/_portal/ui``) on
    127.0.0.1, shared by the session; with ``--b24-inspector``, the one started with the session."""
    started = pytestconfig.stash.get(_SERVER, None)
    if started is not None:
        yield started
        return
    from mock_portal.server import PortalServer

    with PortalServer() as server:
        yield server


@pytest.fixture
def b24_portal(b24_portal_server: PortalServer, b24_options: B24Options) -> Iterator[Portal]:
    """A fresh portal with its REST API live on the shared server (its own domain, member_id and tokens)."""
    member_id = b24_options.member_id if b24_options.application_token else None
    portal = b24_portal_server.add_portal(None, delivery_timeout=b24_options.timeout, member_id=member_id)
    yield portal
    portal.close()


@pytest.fixture
def b24_app(b24_portal: Portal, b24_handler: Any, b24_options: B24Options) -> App:
    """An app installed on ``b24_portal`` that the handler knows (ONAPPINSTALL, or the configured token)."""
    from contract_tests.engine import install_handler, resolve_target

    event_path, install_url = _paths(b24_handler, b24_options)
    app, attempts = install_handler(
        b24_portal,
        resolve_target(b24_handler, event_path),
        install_url=install_url,
        application_token=b24_options.application_token,
        timeout=b24_options.timeout,
    )
    failed = [a for a in attempts if not a.ok]
    if failed:
        attempt = failed[0]
        answer = attempt.status if attempt.status is not None else f"{attempt.outcome}: {attempt.error}"
        pytest.fail(
            f"the handler did not accept its installation: ONAPPINSTALL to {attempt.target} was answered "
            f"{answer}\n  point the contract at the path your app installs at (return "
            "InProcessApp(app, events='/events', install='/install') from b24_handler, or --b24-install-path "
            "/install --b24-event-path /events) or give its configured token (--b24-application-token)",
            pytrace=False,
        )
    return app


@pytest.fixture
def b24_events(b24_portal: Portal, b24_app: App) -> EventFactory:
    """Builds events from ``b24_portal``'s real state for ``b24_app``:
    ``b24_events.session_start(shape=..., auth=..., overrides=...)``, or any declarable event with
    ``b24_events.event("ONIMCONNECTORMESSAGEADD", auth=..., overrides=...)``."""
    from contract_tests.engine import EventFactory

    return EventFactory(b24_portal, b24_app)


@pytest.fixture
def b24_deliver(b24_handler: Any, b24_options: B24Options) -> Iterator[Callable[..., Attempt]]:
    """``b24_deliver(event_or_body, timeout=None)``: POST an event (a ``BuiltEvent``, form text or bytes) to
    the handler once, as the portal would, and return the recorded ``Attempt``."""
    from contract_tests.engine import resolve_target
    from mock_portal.delivery import Deliverer

    target = resolve_target(b24_handler, _paths(b24_handler, b24_options)[0])
    deliverer = Deliverer(timeout=b24_options.timeout)

    def deliver(event: Any, timeout: float | None = None) -> Attempt:
        body = event.body() if hasattr(event, "body") and callable(event.body) else event
        return deliverer.deliver(target, body, timeout=timeout)

    yield deliver
    deliverer.close()


@pytest.fixture
def b24_rest_calls(b24_portal: Portal, b24_options: B24Options) -> Callable[..., list[RestCall]]:
    """``b24_rest_calls(count=0, settle=None)``: wait until ``b24_portal`` holds ``count`` REST calls (woken
    by each, up to the timeout), then until they stop for the settle time; return every call recorded
    (redacted). Give ``count`` when you expect calls: on a busy machine the first may come late."""
    from contract_tests.engine import settled_calls

    def calls(count: int = 0, settle: float | None = None) -> list[RestCall]:
        return settled_calls(
            b24_portal,
            settle=b24_options.settle if settle is None else settle,
            count=count,
            limit=max(b24_options.timeout, 1.0),
        )

    return calls


@pytest.fixture(scope="session")
def _b24_contract_runs() -> Iterator[dict[Any, tuple[Any, ContractRun]]]:
    runs: dict[Any, tuple[Any, ContractRun]] = {}
    yield runs
    late = []
    for _, run in runs.values():
        # a REST call caused by a forged event that arrived after its clause's wait still counts
        late += [v.message() for v in run.late_evidence()]
        run.close()
    if late:
        pytest.fail("late evidence changed verdicts already reported as passed:\n" + "\n".join(late), False)


def _rerun_line(request: pytest.FixtureRequest) -> Callable[[str], str]:
    import shlex

    args = list(request.config.invocation_params.args)
    kept: list[str] = []
    for i, arg in enumerate(args):
        follows = i > 0 and args[i - 1].startswith("--b24-") and "=" not in args[i - 1]
        if arg.startswith("--b24-application-token") or (
            follows and args[i - 1] == "--b24-application-token"
        ):
            continue
        if arg.startswith("--b24-") or (follows and args[i - 1] not in _FLAGS):
            kept.append(arg)
    nodeid = request.node.nodeid
    line = " ".join(shlex.quote(a) for a in ["python", "-m", "pytest", nodeid, *kept])
    return lambda verdict: line


@pytest.fixture
def b24_contract(
    request: pytest.FixtureRequest,
    b24_handler: Any,
    b24_options: B24Options,
    b24_portal_server: PortalServer,
    _b24_contract_runs: dict[Any, tuple[Any, ContractRun]],
) -> ContractRun:
    """The clause engine's run for ``b24_handler``: one per handler (a URL, the same object, or the same app
    with the same paths) per session, so each clause is judged once however many tests ask for it."""
    from contract_tests.engine import ContractConfig, ContractRun

    key = _run_key(b24_handler)
    found = _b24_contract_runs.get(key)
    if found is not None:  # the handler it ran for is kept: no other object can have taken its id
        found[1].rerun = _rerun_line(request)
        return found[1]
    event_path, install_url = _paths(b24_handler, b24_options)
    config = ContractConfig(
        b24_handler,
        event_path=event_path,
        install_url=install_url,
        application_token=b24_options.application_token,
        member_id=b24_options.member_id,
        shapes=b24_options.shapes,
        events=b24_options.events,
        timeout=b24_options.timeout,
        settle=b24_options.settle,
        strict=b24_options.strict,
        offline=b24_options.offline,
        fuzz=b24_options.fuzz,
        fuzz_seed=b24_options.fuzz_seed,
    )
    run = ContractRun(config, server=b24_portal_server, rerun=_rerun_line(request))
    _b24_contract_runs[key] = (b24_handler, run)
    return run


# ---------------------------------------------------------------------------------------------- recordings


@pytest.fixture
def b24_recording() -> str:
    """Where ``b24_recorded_events`` reads from: recordings, wire bodies, captures or folders (several joined
    by the path separator). Override it, or set ``B24_RECORDING``."""
    found = os.environ.get("B24_RECORDING")
    if not found:
        pytest.skip("no recording: override the b24_recording fixture or set B24_RECORDING")
    return found


@pytest.fixture
def b24_recorded_events(b24_recording: Any, b24_portal: Portal, b24_app: App) -> list[Any]:
    """The recorded events re-stamped for ``b24_portal`` and ``b24_app``; ``b24_deliver(event)`` sends one."""
    from contract_tests.recorded import recorded_events

    return recorded_events(b24_recording, b24_portal, b24_app)


# ---------------------------------------------------------------------------------------------- export


@pytest.fixture(scope="session")
def b24_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every event (``mock_portal.export.openapi_document()``): one ``webhooks``
    entry per event, keyed by its name. Built once for the session: copy it before changing it."""
    import copy

    from mock_portal.export import openapi_document

    return copy.deepcopy(openapi_document())


@pytest.fixture(scope="session")
def b24_asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every event (``mock_portal.export.asyncapi_document()``): one channel,
    operation and message per event. Built once for the session: copy it before changing it."""
    import copy

    from mock_portal.export import asyncapi_document

    return copy.deepcopy(asyncapi_document())
