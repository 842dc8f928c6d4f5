"""pytest plugin entry point (``pytest11``). Imported in every pytest run of every user: keep it cheap.

Only pytest and the standard library are imported here; the portal, the delivery engine and the clause engine
are imported inside the fixtures that need them.

Options (each also an ini setting, ``b24_handler_url`` and so on)::

    --b24-handler-url URL        the handler to check (over HTTP); or override the ``b24_handler`` fixture
    --b24-install-url URL        where ONAPPINSTALL goes (default: the handler)
    --b24-application-token T    the token the handler was configured with, instead of the install flow
    --b24-member-id ID           the member_id that token is bound to, if any
    --b24-shapes a,b             OnSessionStart shapes to send (default: all three)
    --b24-events A,B             events the handler declares (default ONSESSIONSTART); the generic clauses
                                 run for each (``DeclaredEventsContract``, parametrised by ``b24_event``)
    --b24-timeout S              seconds per delivery (default 10)
    --b24-settle S               seconds of REST silence that end a wait (default 0.1)
    --b24-strict                 SHOULD clauses fail the run too

Fixtures: ``b24_handler`` (override it to return a URL, a WSGI or ASGI app or a callable), ``b24_options``,
``b24_portal_server``, ``b24_portal``, ``b24_app``, ``b24_events``, ``b24_deliver``, ``b24_rest_calls``,
``b24_event`` (a declared event other than ONSESSIONSTART; parametrised) and ``b24_contract`` (the clause
engine's run, shared by every test that checks the same handler).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from contract_tests.clauses import DECLARABLE_EVENTS, DEFAULT_EVENTS

if TYPE_CHECKING:
    from contract_tests.engine import ContractRun, EventFactory
    from mock_portal.delivery import Attempt
    from mock_portal.portal import App, Portal, RestCall
    from mock_portal.server import PortalServer

# kept in step with mock_portal.events.SHAPES by a test; not imported, so loading the plugin stays cheap
KNOWN_SHAPES = ("source-2024", "docs-2024", "docs-2026")
MARKER = "b24_contract"

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("handler_url", "URL", "URL of the event handler to check (or override the b24_handler fixture)"),
    ("install_url", "URL", "where ONAPPINSTALL is POSTed (default: the handler URL)"),
    ("application_token", "TOKEN", "token the handler is configured with, instead of the install flow"),
    ("member_id", "ID", "member_id the configured application token is bound to, if any"),
    ("shapes", "LIST", f"comma-separated OnSessionStart shapes (default: {','.join(KNOWN_SHAPES)})"),
    ("events", "LIST", "comma-separated events the handler declares it handles (default: ONSESSIONSTART)"),
    ("timeout", "SECONDS", "seconds a delivery may take (default 10)"),
    ("settle", "SECONDS", "seconds without a new REST call that end a wait (default 0.1)"),
)


@dataclass(frozen=True)
class B24Options:
    """The plugin's settings, checked: what ``--b24-*`` options and ``b24_*`` ini settings said."""

    handler_url: str | None = None
    install_url: str | None = None
    application_token: str | None = None
    member_id: str | None = None
    shapes: tuple[str, ...] = KNOWN_SHAPES
    events: tuple[str, ...] = DEFAULT_EVENTS
    timeout: float = 10.0
    settle: float = 0.1
    strict: bool = False


_STASH = pytest.StashKey[B24Options]()


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


def _events(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return DEFAULT_EVENTS
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
    if token is not None and install_url is not None:
        raise pytest.UsageError("--b24-install-url and --b24-application-token exclude each other: give one")
    member_id = _raw(config, "member_id") or None
    if member_id is not None and token is None:
        raise pytest.UsageError("--b24-member-id needs --b24-application-token")
    strict = config.getoption("b24_strict")
    return B24Options(
        handler_url=_url(_raw(config, "handler_url"), "--b24-handler-url"),
        install_url=install_url,
        application_token=token,
        member_id=member_id,
        shapes=shapes,
        events=events,
        timeout=_seconds(_raw(config, "timeout"), "--b24-timeout", 10.0, 0.001),
        settle=_seconds(_raw(config, "settle"), "--b24-settle", 0.1, 0.0),
        strict=bool(config.getini("b24_strict")) if strict is None else bool(strict),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(clause): a clause of the Bitrix24 OnSessionStart contract (b24-contract)"
    )
    config.stash[_STASH] = options_from(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``b24_event`` with the declared events other than ONSESSIONSTART (which
    ``OnSessionStartContract`` covers); with none, one skipped case says how to declare some."""
    if "b24_event" not in metafunc.fixturenames:
        return
    events = [e for e in metafunc.config.stash[_STASH].events if e != "ONSESSIONSTART"]
    if events:
        metafunc.parametrize("b24_event", events, ids=events)
    else:
        skip = pytest.mark.skip(reason="no event other than ONSESSIONSTART declared (--b24-events)")
        metafunc.parametrize("b24_event", [pytest.param("", marks=skip, id="none-declared")])


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def b24_options(pytestconfig: pytest.Config) -> B24Options:
    """The checked ``--b24-*`` options."""
    return pytestconfig.stash[_STASH]


@pytest.fixture
def b24_handler(b24_options: B24Options) -> Any:
    """The handler under test: the ``--b24-handler-url``. Override it to return a URL, a WSGI app, an ASGI
    app or a ``handler(body, headers, url)`` callable."""
    if b24_options.handler_url is None:
        pytest.skip("no handler to check: give --b24-handler-url URL or override the b24_handler fixture")
    return b24_options.handler_url


@pytest.fixture(scope="session")
def b24_portal_server() -> Iterator[PortalServer]:
    """The mock portal server (REST, OAuth, control API) on 127.0.0.1, shared by the session."""
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
    from contract_tests.engine import install_handler

    app, attempts = install_handler(
        b24_portal,
        b24_handler,
        install_url=b24_options.install_url,
        application_token=b24_options.application_token,
        timeout=b24_options.timeout,
    )
    failed = [a for a in attempts if not a.ok]
    if failed:
        pytest.fail(f"the handler did not accept ONAPPINSTALL: {failed[0]}", pytrace=False)
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

    target = resolve_target(b24_handler)
    deliverer = Deliverer(timeout=b24_options.timeout)

    def deliver(event: Any, timeout: float | None = None) -> Attempt:
        body = event.body() if hasattr(event, "body") and callable(event.body) else event
        return deliverer.deliver(target, body, timeout=timeout)

    yield deliver
    deliverer.close()


@pytest.fixture
def b24_rest_calls(b24_portal: Portal, b24_options: B24Options) -> Callable[..., list[RestCall]]:
    """``b24_rest_calls(settle=None)``: wait until the handler's REST calls to ``b24_portal`` stop for the
    settle time, then return every call recorded (redacted)."""
    from contract_tests.engine import settled_calls

    def calls(settle: float | None = None) -> list[RestCall]:
        return settled_calls(b24_portal, settle=b24_options.settle if settle is None else settle)

    return calls


@pytest.fixture(scope="session")
def _b24_contract_runs() -> Iterator[dict[Any, tuple[Any, ContractRun]]]:
    runs: dict[Any, tuple[Any, ContractRun]] = {}
    yield runs
    for _, run in runs.values():
        run.close()


@pytest.fixture
def b24_contract(
    b24_handler: Any,
    b24_options: B24Options,
    b24_portal_server: PortalServer,
    _b24_contract_runs: dict[Any, tuple[Any, ContractRun]],
) -> ContractRun:
    """The clause engine's run for ``b24_handler``: one per handler (a URL, or the same object) per session,
    so each clause is judged once however many tests ask for it."""
    from contract_tests.engine import ContractConfig, ContractRun

    key = b24_handler if isinstance(b24_handler, str) else ("object", id(b24_handler))
    found = _b24_contract_runs.get(key)
    if found is not None and found[0] is b24_handler:
        return found[1]
    config = ContractConfig(
        b24_handler,
        install_url=b24_options.install_url,
        application_token=b24_options.application_token,
        member_id=b24_options.member_id,
        shapes=b24_options.shapes,
        events=b24_options.events,
        timeout=b24_options.timeout,
        settle=b24_options.settle,
        strict=b24_options.strict,
    )
    run = ContractRun(config, server=b24_portal_server)
    if found is not None:
        found[1].close()  # an object that died and whose id came back: its run is over
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
