"""What a contract run checks and how: :class:`ContractConfig`, the declared events, and turning what a user
gives (a URL, a WSGI or ASGI app, a callable, a delivery target) into a delivery target."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from contract_tests.clauses import DECLARABLE_EVENTS, DEFAULT_EVENTS
from contract_tests.inprocess import InProcessApp
from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

if TYPE_CHECKING:
    from mock_portal.delivery import Target

__all__ = [
    "DEFAULT_SETTLE",
    "DEFAULT_TIMEOUT",
    "INPROCESS_BASE",
    "SHAPES",
    "ContractConfig",
    "app_paths",
    "check_events",
    "resolve_target",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a delivery may take: the 10 s the portal's own hops use (facts §1). It also bounds how long the
contract waits for the first REST call a valid event leads to."""
DEFAULT_SETTLE = 0.05
"""The least time the contract waits to see that an event led to no REST call (the budget grows with the
handler's measured work latency)."""
DEFAULT_BURST = 32
DEFAULT_OVERSIZE = 9 * 1024 * 1024
"""Clause 5's oversized body: past PHP's default post_max_size (8M)."""
DEFAULT_FUZZ_SEED = 0
"""The seed fuzzing generates events from unless told otherwise: the same events in every run."""
MAX_FUZZ = 10_000
SHAPES = ("source-2024", "docs-2024", "docs-2026")
INPROCESS_BASE = "http://handler.b24-contract.invalid"
"""The scheme and host an in-process handler is called with (only the path reaches the app)."""


def check_url(value: object, what: str) -> str:
    """``value`` if it is an http(s) URL with a host, else a :class:`UsageError` naming ``what``."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be an http(s) URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} must be an http(s) URL with a host, got {redact_text(value)[:200]!r}")
    return value


def _check_path(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in " \r\n#"):
        raise UsageError(f"{what} must be a path starting with '/', got {value!r}")
    return value


def with_path(url: str, path: str) -> str:
    """``url`` with its path (and query) replaced by ``path`` (which may carry a query)."""
    parts = urlsplit(url)
    new_path, _, query = path.partition("?")
    return urlunsplit((parts.scheme, parts.netloc, new_path, query, ""))


@dataclass(frozen=True)
class ContractConfig:
    """What to check and how.

    ``handler``: a URL, an ASGI/WSGI app, a ``handler(body, headers, url)`` callable, an
    :class:`~contract_tests.InProcessApp` (an app with its event and install paths) or a delivery target
    (``WsgiTarget(app, url=...)``). ``event_path``: the path events go to (for an in-process app, or to
    replace a URL's path). ``install_url``: where ONAPPINSTALL goes, a URL or a path on the handler (default:
    the handler itself). ``application_token``: instead of the install flow, the token the handler was
    configured with (``member_id`` if it is bound to one portal). ``shapes``: the OnSessionStart shapes
    clause 1 sends. ``timeout``: seconds per delivery, and the longest wait for a valid event's first REST
    call. ``settle``: the least time waited to see that an event led to no REST call. ``strict``: SHOULD
    clauses fail the run too. ``events``: the events the handler declares (any case; default
    ONSESSIONSTART). ``bodies_dir``: keep the exact bodies of failing exchanges there (files only you can
    read) so a curl line can replay them without the run's secrets appearing in any output. ``offline``: the
    handler declares offline use (it reads its events from the portal's offline queue with
    ``event.offline.get``); the clauses about offline events run only then. ``fuzz``: generate that many
    events per declared event from the schemas and deliver them (the ``survives-fuzzing`` clause; 0, the
    default, leaves it out); ``fuzz_seed``: the seed they are generated from (the same seed, the same events).
    """

    handler: Any
    install_url: str | None = None
    application_token: str | None = None
    member_id: str | None = None
    shapes: tuple[str, ...] = SHAPES
    timeout: float = DEFAULT_TIMEOUT
    settle: float = DEFAULT_SETTLE
    strict: bool = False
    burst: int = DEFAULT_BURST
    oversize_bytes: int = DEFAULT_OVERSIZE
    events: tuple[str, ...] = DEFAULT_EVENTS
    event_path: str | None = None
    bodies_dir: str | None = None
    offline: bool = False
    fuzz: int = 0
    fuzz_seed: int = DEFAULT_FUZZ_SEED

    def __post_init__(self) -> None:
        if self.event_path is not None:
            _check_path(self.event_path, "the event path")
        if self.install_url is not None and not str(self.install_url).startswith("/"):
            check_url(self.install_url, "the install URL")
        elif self.install_url is not None:
            _check_path(self.install_url, "the install path")
        if isinstance(self.handler, InProcessApp):
            paths = app_paths(self.handler, self.event_path, self.install_url, self.application_token is None)
            object.__setattr__(self, "event_path", paths[0])
            object.__setattr__(self, "install_url", paths[1])
        if self.install_url is not None and self.application_token is not None:
            raise UsageError("give either an install URL or an application token, not both")
        if self.application_token is not None and (
            not isinstance(self.application_token, str) or not self.application_token.strip()
        ):
            raise UsageError("the application token must be a non-empty string")
        if self.member_id is not None and self.application_token is None:
            raise UsageError("a member_id only makes sense with a configured application token")
        shapes = tuple(self.shapes)
        if not shapes:
            raise UsageError(f"give at least one shape (known: {', '.join(SHAPES)})")
        for shape in shapes:
            if shape not in SHAPES:
                from mock_portal.errors import UnknownNameError

                raise UnknownNameError("shape", shape, SHAPES)
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "events", check_events(self.events))
        for name in ("timeout", "settle"):
            value = getattr(self, name)
            low = 0 if name == "settle" else 0.001
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 600:
                raise UsageError(f"{name} must be a number of seconds from {low} to 600, got {value!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or not 1 <= self.burst <= 1000:
            raise UsageError(f"burst must be an integer from 1 to 1000, got {self.burst!r}")
        if not isinstance(self.offline, bool):
            raise UsageError(f"offline must be True or False, got {self.offline!r}")
        if not isinstance(self.oversize_bytes, int) or not 1024 <= self.oversize_bytes <= 64 << 20:
            raise UsageError(f"oversize_bytes must be from 1 KiB to 64 MiB, got {self.oversize_bytes!r}")
        if isinstance(self.fuzz, bool) or not isinstance(self.fuzz, int) or not 0 <= self.fuzz <= MAX_FUZZ:
            raise UsageError(f"fuzz must be a number of events from 0 (off) to {MAX_FUZZ}, got {self.fuzz!r}")
        seed = self.fuzz_seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise UsageError(f"the fuzz seed must be an integer from 0 to 2**64-1, got {seed!r}")

    @property
    def install_flow(self) -> bool:
        """True when the handler learns its token through ONAPPINSTALL (no token configured)."""
        return self.application_token is None


def check_events(events: Iterable[str] | str) -> tuple[str, ...]:
    """Declared events, upper-cased and de-duplicated in order; unknown names raise UnknownNameError with a
    suggestion, an empty list a UsageError. A string is read as a comma-separated list."""
    from mock_portal.errors import UnknownNameError

    items = events.split(",") if isinstance(events, str) else list(events)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"an event name must be a string, got {item!r}")
        name = item.strip().upper()
        if not name:
            continue
        if name not in DECLARABLE_EVENTS:
            raise UnknownNameError("declarable event", name, DECLARABLE_EVENTS)
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError(f"declare at least one event (known: {', '.join(DECLARABLE_EVENTS)})")
    return tuple(out)


def app_paths(
    handler: object,
    event_path: str | None,
    install_url: str | None,
    install_flow: bool = True,
    places: tuple[str, str] = ("ContractConfig(event_path=...)", "ContractConfig(install_url=...)"),
) -> tuple[str | None, str | None]:
    """The event path and install URL a run uses: those given (by ``places``), else those of an
    :class:`InProcessApp` ``handler``. A path given both ways must agree: two different ones are a
    :class:`UsageError` naming both places. The app's install path is not used without the install flow."""
    if not isinstance(handler, InProcessApp):
        return event_path, install_url
    if handler.events is not None:
        if event_path is not None and event_path != handler.events:
            raise _twice("event path", handler.events, "events", event_path, places[0])
        event_path = handler.events
    if handler.install is not None and install_flow:
        given = install_url
        if given is not None and not given.startswith("/"):
            given = urlsplit(given).path or "/"  # an in-process app is called at an install URL's path
        if given is not None and given != handler.install:
            raise _twice("install path", handler.install, "install", install_url, places[1])
        install_url = handler.install
    return event_path, install_url


def _twice(what: str, own: str, field: str, other: object, place: str) -> UsageError:
    return UsageError(
        f"the {what} is given twice and differs: {own!r} by InProcessApp({field}=...) and "
        f"{redact_text(str(other))[:200]!r} by {place}; give it in one place"
    )


def resolve_target(handler: object, path: str | None = None) -> Target:
    """Turn what a user gives (URL, ASGI/WSGI app, callable, InProcessApp, target) into a delivery target.

    A bare callable is read by its signature: ``(environ, start_response)`` is WSGI, an ``async`` callable of
    three parameters is ASGI, a plain callable of three is ``handler(body, headers, url)``. Anything else
    raises :class:`UsageError` asking to wrap it in ``WsgiTarget``/``AsgiTarget``/``CallableTarget``.
    ``path`` replaces the target's path (an in-process app is called at ``/`` unless told otherwise, by
    ``path`` or by an :class:`InProcessApp`'s ``events``).
    """
    from mock_portal.delivery import AsgiTarget, CallableTarget, UrlTarget, WsgiTarget

    target: Target
    if isinstance(handler, str):
        target = UrlTarget(check_url(handler, "the handler URL"))
    elif isinstance(handler, (UrlTarget, AsgiTarget, WsgiTarget, CallableTarget)):
        target = handler
    elif isinstance(handler, InProcessApp):
        target = dataclasses.replace(resolve_target(handler.app), url=handler.url)
    elif not callable(handler):
        raise UsageError(
            f"the handler must be a URL, an ASGI or WSGI app or a callable, not {type(handler).__name__}"
        )
    else:
        target = _by_signature(handler)
    if path is not None:
        target = dataclasses.replace(target, url=with_path(target.url, _check_path(path, "the event path")))
    return target


def _by_signature(handler: Any) -> Target:
    from mock_portal.delivery import AsgiTarget, CallableTarget, WsgiTarget

    call: Any = handler
    if not (inspect.isfunction(call) or inspect.ismethod(call)):
        call = call.__call__
    try:
        params = [
            p
            for p in inspect.signature(call).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    is_async = inspect.iscoroutinefunction(call)
    url = INPROCESS_BASE + "/"
    if len(params) == 2 and not is_async:
        return WsgiTarget(handler, url)
    if len(params) == 3 and is_async and params[0].name != "body":
        return AsgiTarget(handler, url)
    if len(params) == 3:
        return CallableTarget(handler, url)
    raise UsageError(
        f"cannot tell what kind of handler {getattr(handler, '__name__', type(handler).__name__)!r} is; "
        "wrap it as WsgiTarget(app), AsgiTarget(app) or CallableTarget(handler) from mock_portal"
    )


def route_prefix(target: Target) -> str:
    """The URL prefix a portal routes to an in-process ``target``: its scheme and host (every path of the
    app, events, install and whatever a binding names, goes to it)."""
    parts = urlsplit(target.url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")) or INPROCESS_BASE


def install_target(target: Target, install_url: str | None) -> Target:
    """Where ONAPPINSTALL goes: the handler itself, another path of it, or another URL."""
    if install_url is None:
        return target
    from mock_portal.delivery import UrlTarget

    if install_url.startswith("/"):
        return dataclasses.replace(target, url=with_path(target.url, install_url))
    if target.kind == "http":
        return UrlTarget(install_url)
    # an in-process app given an install URL: the same app, at that URL's path
    parts = urlsplit(install_url)
    return dataclasses.replace(target, url=with_path(target.url, parts.path or "/"))
