"""The clause engine: runs the OnSessionStart contract against a handler through the mock portal.

::

    with ContractRun(ContractConfig("http://127.0.0.1:8080/")) as run:
        report = run.run()            # every clause, in an order where clause 7 sees every delivery
        print(report.table())
        run.check("forged-token-no-side-effect")   # one clause (cached once judged)

The handler is a URL, an ASGI or WSGI app, a ``handler(body, headers, url)`` callable, or a
:mod:`mock_portal.delivery` target. The engine serves the mock portal over real HTTP on 127.0.0.1
(:class:`~mock_portal.server.PortalServer`), so every event's ``client_endpoint`` is a live REST API the
handler can call back, in process or not; every call it makes is recorded by the portal.

How a side effect is observed: each clause works on fresh portals of its own (installed through the install
flow, ONAPPINSTALL to the install URL, or given the configured application token), delivers, and then waits
until no new REST call has reached any portal of the run for ``settle`` seconds. Every clause that judges the
absence of a side effect first delivers a valid event as a control: a handler that made no REST call for a
valid event leaves nothing to compare with, so those clauses are *inconclusive*, never passed.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import itertools
import json
import math
import secrets
import shlex
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from contract_tests.clauses import (
    CLAUSES,
    DECLARABLE_EVENTS,
    DEFAULT_EVENTS,
    GENERIC_CLAUSE_IDS,
    Clause,
    clause,
    verdict_id,
)
from mock_portal.errors import MockPortalError, UsageError
from mock_portal.redact import redact_text

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, Deliverer, Target
    from mock_portal.events import BuiltEvent
    from mock_portal.portal import App, Portal, RestCall
    from mock_portal.server import PortalServer

__all__ = [
    "DEFAULT_SETTLE",
    "DEFAULT_TIMEOUT",
    "ContractConfig",
    "ContractReport",
    "ContractRun",
    "ContractViolation",
    "EventFactory",
    "Exchange",
    "Outcome",
    "Verdict",
    "install_handler",
    "resolve_target",
    "settled_calls",
]

Outcome = Literal["pass", "fail", "inconclusive", "skip"]

DEFAULT_TIMEOUT = 10.0
"""Seconds a delivery may take: the 10 s the portal's own hops use (facts §1)."""
DEFAULT_SETTLE = 0.1
"""Seconds without a new REST call after which a handler's background work counts as done. The window grows
to twice the slowest work a control event showed, so a slow worker is waited for."""
P95_BUDGET_MS = 1000.0
"""Clause 7b: slow handlers are deprioritised by the portal (facts §1); 1 s is the budget asked for."""
DEFAULT_BURST = 32
DEFAULT_OVERSIZE = 9 * 1024 * 1024
"""Clause 5's oversized body: past PHP's default post_max_size (8M), which a PHP portal side also enforces."""

_SHAPES = ("source-2024", "docs-2024", "docs-2026")
_SESSION_START = "ONSESSIONSTART"
_TIMING = ("answers-within-timeout", "answers-quickly")
_LIST_SHAPES = ("docs-2024", "docs-2026")
_INPROCESS_URL = "http://handler.b24-contract.invalid/"
_POLL = 0.005
_EXPECT_WAIT = 1.0
_MAX_SETTLE = 30.0
_SHOWN_BODY = 1500
_INLINE_CURL_BODY = 8192
_SECRET_FIELDS = ("access_token", "refresh_token", "application_token")
# a line name with unicode, reserved URL and form characters and an emoji (clause 2)
_TRICKY_NAME = "Линия «Поддержка» & Co = 100% #1 ?/+;~ 😀 \"quoted\" 'single'"


class ContractViolation(MockPortalError, AssertionError):
    """A handler broke a clause; ``str()`` is the full, redacted failure message (pytest shows it)."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.message())

    def __str__(self) -> str:
        return self.verdict.message()


# ------------------------------------------------------------------------------------------------ config


def _check_url(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be an http(s) URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} must be an http(s) URL with a host, got {redact_text(value)[:200]!r}")
    return value


@dataclass(frozen=True)
class ContractConfig:
    """What to check and how.

    ``handler``: a URL, an ASGI/WSGI app, a ``handler(body, headers, url)`` callable or a delivery target.
    ``install_url``: where ONAPPINSTALL goes (default: the handler itself). ``application_token``: instead of
    the install flow, the token the handler was configured with (``member_id`` if it is bound to one portal).
    ``shapes``: the OnSessionStart shapes clause 1 sends. ``timeout``: seconds per delivery. ``settle``:
    seconds of REST silence after which the handler's work counts as done. ``strict``: SHOULD clauses fail
    the run too. ``events``: the events the handler declares it handles (any case; default ONSESSIONSTART);
    the generic clauses (:data:`~contract_tests.clauses.GENERIC_CLAUSE_IDS`) run for each of them.
    """

    handler: Any
    install_url: str | None = None
    application_token: str | None = None
    member_id: str | None = None
    shapes: tuple[str, ...] = _SHAPES
    timeout: float = DEFAULT_TIMEOUT
    settle: float = DEFAULT_SETTLE
    strict: bool = False
    burst: int = DEFAULT_BURST
    oversize_bytes: int = DEFAULT_OVERSIZE
    events: tuple[str, ...] = DEFAULT_EVENTS

    def __post_init__(self) -> None:
        if self.install_url is not None:
            _check_url(self.install_url, "the install URL")
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
            raise UsageError(f"give at least one shape (known: {', '.join(_SHAPES)})")
        for shape in shapes:
            if shape not in _SHAPES:
                from mock_portal.errors import UnknownNameError

                raise UnknownNameError("shape", shape, _SHAPES)
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "events", check_events(self.events))
        for name in ("timeout", "settle"):
            value = getattr(self, name)
            low = 0 if name == "settle" else 0.001
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 600:
                raise UsageError(f"{name} must be a number of seconds from {low} to 600, got {value!r}")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or not 1 <= self.burst <= 1000:
            raise UsageError(f"burst must be an integer from 1 to 1000, got {self.burst!r}")
        if not isinstance(self.oversize_bytes, int) or not 1024 <= self.oversize_bytes <= 64 << 20:
            raise UsageError(f"oversize_bytes must be from 1 KiB to 64 MiB, got {self.oversize_bytes!r}")

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


def resolve_target(handler: object) -> Target:
    """Turn what a user gives (URL, ASGI/WSGI app, callable, target) into a delivery target.

    A bare callable is read by its signature: ``(environ, start_response)`` is WSGI, an ``async`` callable of
    three parameters is ASGI, a plain callable of three is ``handler(body, headers, url)``. Anything else
    raises :class:`UsageError` asking to wrap it in ``WsgiTarget``/``AsgiTarget``/``CallableTarget``.
    """
    from mock_portal.delivery import AsgiTarget, CallableTarget, UrlTarget, WsgiTarget

    if isinstance(handler, str):
        return UrlTarget(_check_url(handler, "the handler URL"))
    if isinstance(handler, (UrlTarget, AsgiTarget, WsgiTarget, CallableTarget)):
        return handler
    if not callable(handler):
        raise UsageError(
            f"the handler must be a URL, an ASGI or WSGI app or a callable, not {type(handler).__name__}"
        )
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
    if len(params) == 2 and not is_async:
        return WsgiTarget(handler, _INPROCESS_URL)
    if len(params) == 3 and is_async and params[0].name != "body":
        return AsgiTarget(handler, _INPROCESS_URL)
    if len(params) == 3:
        return CallableTarget(handler, _INPROCESS_URL)
    raise UsageError(
        f"cannot tell what kind of handler {getattr(handler, '__name__', type(handler).__name__)!r} is; "
        "wrap it as WsgiTarget(app), AsgiTarget(app) or CallableTarget(handler) from mock_portal"
    )


# ------------------------------------------------------------------------------------------------ records


def _shell_quote(text: str) -> str:
    return shlex.quote(text)


@dataclass(frozen=True)
class Exchange:
    """One delivery the contract made and what came back; every text is redacted (bodies truncated)."""

    label: str
    url: str
    sent: str
    sent_bytes: int
    outcome: str
    status: int | None
    latency_ms: float
    response: str
    error: str | None
    reproduce: str
    valid: bool = False
    event: str = ""

    @property
    def answer(self) -> str:
        """What came back, in one line: ``403 in 2.1 ms: {...}`` or ``timeout after 10000 ms: ...``."""
        if self.status is not None and self.outcome in ("ok", "http_error"):
            text = f"{self.status} in {self.latency_ms:.1f} ms"
            return f"{text}: {self.response}" if self.response else text
        text = f"{self.outcome} after {self.latency_ms:.0f} ms"
        return f"{text}: {self.error}" if self.error else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON view (already redacted)."""
        return dataclasses.asdict(self)


def _curl(url: str, body: bytes, content_type: str, generator: str | None) -> str:
    head = f"curl -sS -i -X POST -H {_shell_quote('Content-Type: ' + content_type)}"
    if generator is not None:
        return f"{generator} | {head} --data-binary @- {_shell_quote(url)}"
    text = body.decode("utf-8", "replace")
    if len(body) > _INLINE_CURL_BODY or not text.isprintable():
        snippet = f"import sys; sys.stdout.buffer.write(bytes.fromhex({body.hex()[:_INLINE_CURL_BODY]!r}))"
        return f"python3 -c {_shell_quote(snippet)} | {head} --data-binary @- {_shell_quote(url)}"
    return f"{head} --data-binary {_shell_quote(text)} {_shell_quote(url)}"


def _exchange(
    label: str,
    url: str,
    body: bytes,
    attempt: Attempt,
    *,
    valid: bool,
    content_type: str = "application/x-www-form-urlencoded",
    generator: str | None = None,
    event: str = "",
) -> Exchange:
    shown = body[:_SHOWN_BODY].decode("utf-8", "replace")
    if len(body) > _SHOWN_BODY:
        shown += f"... ({len(body)} bytes in all)"
    return Exchange(
        label=label,
        url=redact_text(url),
        sent=redact_text(shown),
        sent_bytes=len(body),
        outcome=attempt.outcome,
        status=attempt.status,
        latency_ms=attempt.latency_ms,
        response=attempt.response_excerpt,
        error=attempt.error,
        reproduce=redact_text(_curl(url, body, content_type, generator)),
        valid=valid,
        event=event,
    )


@dataclass(frozen=True)
class Verdict:
    """The judgement of one clause: ``outcome``, a one-line ``reason`` and the exchanges that show it."""

    clause: Clause
    outcome: Outcome
    reason: str
    exchanges: tuple[Exchange, ...] = ()
    log_tail: str = ""
    event: str = "ONSESSIONSTART"

    @property
    def id(self) -> str:
        """The verdict's stable id: the clause id, with ``[EVENT]`` for events other than OnSessionStart."""
        return verdict_id(self.clause.id, self.event)

    def fails_run(self, strict: bool = False) -> bool:
        """Whether this verdict fails a run: a failed MUST, or any failure when ``strict``."""
        return self.outcome == "fail" and (strict or self.clause.level == "MUST")

    def message(self) -> str:
        """The full, redacted explanation: clause, reason, what was sent and came back, doc, curl."""
        c = self.clause
        lines = [f"clause {c.number} {self.id} [{c.level}] {self.outcome.upper()}: {self.reason}"]
        lines.append(f"  expected: {c.expected}")
        lines.append(f"  evidence: {c.evidence}")
        lines.append(f"  doc page: {c.doc}")
        for ex in self.exchanges[:3]:
            lines.append(f"  sent ({ex.label}): POST {ex.url} ({ex.sent_bytes} bytes)")
            lines.append(f"    {ex.sent}")
            lines.append(f"  got: {ex.answer}")
            lines.append(f"  reproduce (secrets masked): {ex.reproduce}")
        if len(self.exchanges) > 3:
            lines.append(f"  ... and {len(self.exchanges) - 3} more exchange(s) like these")
        if self.log_tail:
            lines.append("  handler log (last lines):")
            lines.extend(f"    {line}" for line in self.log_tail.splitlines())
        return redact_text("\n".join(lines))

    def to_dict(self) -> dict[str, Any]:
        """A JSON view (already redacted)."""
        return {
            "id": self.id,
            "clause": self.clause.id,
            "event": self.event,
            "number": self.clause.number,
            "level": self.clause.level,
            "title": self.clause.title,
            "outcome": self.outcome,
            "reason": redact_text(self.reason),
            "expected": self.clause.expected,
            "doc": self.clause.doc,
            "exchanges": [ex.to_dict() for ex in self.exchanges],
            "log_tail": redact_text(self.log_tail),
        }


@dataclass(frozen=True)
class ContractReport:
    """Every verdict of a run, in clause order, with the rule that decides the run's result."""

    verdicts: tuple[Verdict, ...]
    strict: bool = False
    handler: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every MUST clause passed (every clause, when ``strict``): nothing fails the run."""
        return not any(v.fails_run(self.strict) for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        """How many verdicts of each outcome."""
        out = dict.fromkeys(("pass", "fail", "inconclusive", "skip"), 0)
        for v in self.verdicts:
            out[v.outcome] += 1
        return out

    def failed(self) -> list[str]:
        """Ids of the verdicts that failed (MUST and SHOULD): ``clause-id``, or ``clause-id[EVENT]``."""
        return [v.id for v in self.verdicts if v.outcome == "fail"]

    def table(self) -> str:
        """A plain-text table: clause, level, verdict, reason."""
        rows = [
            (f"{v.clause.number} {v.id}", v.clause.level, v.outcome.upper(), v.reason) for v in self.verdicts
        ]
        w0 = max([len("clause"), *(len(r[0]) for r in rows)])
        w2 = max([len("verdict"), *(len(r[2]) for r in rows)])
        out = [f"{'clause':<{w0}}  level   {'verdict':<{w2}}  reason"]
        out.append(f"{'-' * w0}  ------  {'-' * w2}  ------")
        for name, level, verdict, reason in rows:
            out.append(f"{name:<{w0}}  {level:<6}  {verdict:<{w2}}  {reason}")
        counts = self.counts()
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        out.append("")
        out.append(
            f"{'PASSED' if self.ok else 'FAILED'}: {summary} in {self.seconds:.2f} s"
            + (" (strict: SHOULD clauses count)" if self.strict else "")
        )
        return redact_text("\n".join(out))

    def to_dict(self) -> dict[str, Any]:
        """A JSON view of the report (already redacted)."""
        return {
            "handler": redact_text(self.handler),
            "ok": self.ok,
            "strict": self.strict,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    def junit_xml(self) -> str:
        """The report as a JUnit XML document (one testcase per clause)."""
        from xml.etree import ElementTree as ET

        counts = self.counts()
        suite = ET.Element(
            "testsuite",
            name="b24-contract OnSessionStart",
            tests=str(len(self.verdicts)),
            failures=str(sum(1 for v in self.verdicts if v.fails_run(self.strict))),
            skipped=str(counts["skip"] + counts["inconclusive"]),
            time=f"{self.seconds:.3f}",
        )
        for v in self.verdicts:
            case = ET.SubElement(suite, "testcase", classname="b24_contract.OnSessionStart", name=v.id)
            if v.fails_run(self.strict):
                node = ET.SubElement(case, "failure", message=redact_text(v.reason))
                node.text = v.message()
            elif v.outcome == "fail":
                ET.SubElement(case, "system-out").text = f"SHOULD clause failed (not strict): {v.message()}"
            elif v.outcome in ("skip", "inconclusive"):
                ET.SubElement(case, "skipped", message=redact_text(f"{v.outcome}: {v.reason}"))
        return ET.tostring(suite, encoding="unicode", xml_declaration=True)


# ------------------------------------------------------------------------------------------------ events


class EventFactory:
    """Builds events from a portal's real state: its chats, sessions, messages, connectors, tokens, endpoints.

    Each event opens a real session in the portal (so a handler's ``im.message.add`` to its chat succeeds);
    user mode carries a fresh access token issued by the portal, system mode none (facts §2). Connector events
    name a connector the app owns and has active on the line, since only its owner receives them (facts §3);
    message events name a message the portal really holds.
    """

    _handler_ids = itertools.count(101)
    CONNECTOR_ID = "b24contract"
    """The connector the factory registers for the app when a connector event needs one (no dots: facts §5,
    ``imconnector.register`` refuses them)."""

    def __init__(self, portal: Portal, app: App, *, application_token: str | None = None) -> None:
        self.portal = portal
        self.app = app
        self.application_token = application_token

    def _own_connector(self) -> str:
        portal, cid = self.portal, self.CONNECTOR_ID
        connector = portal.connectors.get(cid)
        if connector is None or connector.client_id != self.app.client_id:
            portal.register_connector(self.app.client_id, cid, "b24-contract connector")
        portal.activate_connector(cid, 1, True)
        return cid

    def _context(
        self,
        *,
        auth: str,
        connector_id: str,
        line_name: str | None,
        event_handler_id: bool,
        message_text: str | None = None,
    ) -> dict[str, Any]:
        portal, app = self.portal, self.app
        started = portal.start_session(connector_id=connector_id)
        chat, session = started.chat, started.session
        token = portal.issue_token(app.client_id, refresh=False) if auth == "user" else None
        ctx = portal.event_context(app, chat=chat, session=session, token=token)
        if self.application_token:
            ctx["application_token"] = self.application_token
        if line_name is not None:
            ctx["line_name"] = line_name
        if message_text is not None:
            # a message the portal really holds, in the session's chat (add_message fires no event)
            message = portal.add_message(None, chat.dialog_id, message_text)
            ctx.update(message_id=message.id, message_text=message.text)
        if event_handler_id:
            ctx["event_handler_id"] = next(self._handler_ids)
        return ctx

    def event(
        self,
        name: str,
        *,
        shape: str | None = None,
        auth: str = "user",
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        event_handler_id: bool = True,
        line_name: str | None = None,
        message_text: str | None = None,
    ) -> BuiltEvent:
        """One event ``name`` (any declarable event, any case) from the portal's state, ``overrides`` last.

        ONSESSIONSTART goes through :meth:`session_start`. ``shape`` defaults to the event's own (the docs one
        for siblings); ``message_text`` sets the text of the message a message event carries.
        """
        from mock_portal.events import build_event, event_spec

        spec = event_spec(name)
        if spec.name == "ONSESSIONSTART":
            return self.session_start(
                shape=shape or "source-2024",
                auth=auth,
                overrides=overrides,
                event_handler_id=event_handler_id,
                line_name=line_name,
            )
        if spec.name not in DECLARABLE_EVENTS:
            from mock_portal.errors import UnknownNameError

            raise UnknownNameError("declarable event", spec.name, DECLARABLE_EVENTS)
        connector_id = self._own_connector() if spec.name.startswith("ONIMCONNECTOR") else "livechat"
        text = message_text
        if text is None and "message_text" in spec.text_fields:
            text = "Hello from the b24-contract portal"
        ctx = self._context(
            auth=auth,
            connector_id=connector_id,
            line_name=line_name,
            event_handler_id=event_handler_id,
            message_text=text,
        )
        if spec.name in ("ONSESSIONFINISH", "ONIMCONNECTORDIALOGFINISH"):
            ctx["closed"] = "Y"
        built = build_event(spec.name, shape=shape, auth=auth, context=ctx, event_handler_id=event_handler_id)
        return built.with_overrides(overrides) if overrides else built

    def session_start(
        self,
        *,
        shape: str = "source-2024",
        auth: str = "user",
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        event_handler_id: bool = True,
        line_name: str | None = None,
        connector_id: str = "livechat",
        items: int = 1,
    ) -> BuiltEvent:
        """One OnSessionStart for a new session (``items`` > 1: that many sessions in ``data[DATA]``, list
        shapes only), with ``overrides`` applied last (syntax of :func:`mock_portal.events.build_event`)."""
        from mock_portal.events import BuiltEvent, build_event

        if items < 1 or (items > 1 and shape not in _LIST_SHAPES):
            raise UsageError(f"items={items} needs a list shape ({', '.join(_LIST_SHAPES)}), not {shape!r}")
        ctx = self._context(
            auth=auth, connector_id=connector_id, line_name=line_name, event_handler_id=event_handler_id
        )
        built = build_event(
            "ONSESSIONSTART", shape=shape, auth=auth, context=ctx, event_handler_id=event_handler_id
        )
        if items > 1:
            payload = copy.deepcopy(built.payload)
            for _ in range(items - 1):
                extra = build_event(
                    "ONSESSIONSTART",
                    shape=shape,
                    auth=auth,
                    context=self._context(
                        auth="system", connector_id=connector_id, line_name=line_name, event_handler_id=False
                    ),
                    event_handler_id=False,
                )
                payload["data"]["DATA"].append(extra.payload["data"]["DATA"][0])
            built = BuiltEvent(built.event, built.shape, built.auth, built.seed, payload)
        if overrides:
            built = built.with_overrides(overrides)
        return built


# ------------------------------------------------------------------------------------------------ the run


@dataclass
class _Site:
    """A portal of the run and the app the handler was told about (or not)."""

    portal: Portal
    app: App
    events: EventFactory
    install: tuple[Attempt, ...] = ()


@dataclass
class _State:
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    installs: list[Attempt] = field(default_factory=list)
    portals: list[Portal] = field(default_factory=list)


class ContractRun:
    """One run of the contract against one handler; verdicts are cached, so each clause is judged once.

    ``server`` is a running :class:`~mock_portal.server.PortalServer` to create the run's portals on (one is
    started and owned by the run when omitted). ``log_tail`` returns the tail of the handler's log, attached
    to failure messages (``mock-portal verify --start`` passes one). Use it as a context manager.
    """

    def __init__(
        self,
        config: ContractConfig,
        *,
        server: PortalServer | None = None,
        log_tail: Callable[[], str] | None = None,
    ) -> None:
        from mock_portal.delivery import Deliverer, DeliveryLog

        self.config = config
        self.target = resolve_target(config.handler)
        self.handler_url = self.target.url
        self.install_url = config.install_url or self.handler_url
        self._log_tail = log_tail
        self._own_server = server is None
        if server is None:
            from mock_portal.server import PortalServer

            server = PortalServer().start()
        self.server = server
        self._deliverer: Deliverer = Deliverer(
            DeliveryLog(max_in_memory=10_000),
            timeout=config.timeout,
            max_body_bytes=config.oversize_bytes + (1 << 20),
        )
        self._state = _State()
        self._deliveries = 0
        self._work_latency = 0.0
        self._quiet: tuple[int, int] | None = None
        self._lock = threading.RLock()
        self._closed = False
        self._event_now = _SESSION_START

    # -------------------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the run's portals' delivery threads, its deliverer, and the server if the run started it."""
        if self._closed:
            return
        self._closed = True
        for portal in self._state.portals:
            portal.close()
        self._deliverer.close()
        if self._own_server:
            self.server.stop()

    def __enter__(self) -> ContractRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- public API

    def plan(self) -> list[tuple[str, str]]:
        """Every (clause id, event) the run judges, in report order: the generic clauses once per declared
        event, the OnSessionStart-specific ones once."""
        out: list[tuple[str, str]] = []
        for item in CLAUSES:
            if item.id in GENERIC_CLAUSE_IDS:
                out.extend((item.id, event) for event in self.config.events)
            else:
                out.append((item.id, _SESSION_START))
        return out

    def _resolve(self, clause_id: str, event: str | None) -> tuple[Clause, str]:
        name = clause_id.strip()
        if name.endswith("]") and "[" in name:
            name, _, given = name[:-1].partition("[")
            if event is not None and event.upper() != given.upper():
                raise UsageError(f"two events for one verdict: {clause_id!r} and event={event!r}")
            event = given
        wanted = clause(name.strip())
        declared = self.config.events
        if event is None:
            event = (
                _SESSION_START
                if wanted.id not in GENERIC_CLAUSE_IDS or _SESSION_START in declared
                else (declared[0])
            )
        event = event.strip().upper()
        if wanted.id not in GENERIC_CLAUSE_IDS and event != _SESSION_START:
            raise UsageError(f"clause {wanted.id} is OnSessionStart-specific; it has no verdict for {event}")
        if wanted.id in GENERIC_CLAUSE_IDS and event not in declared:
            raise UsageError(f"{event} is not a declared event (declared: {', '.join(declared)})")
        return wanted, event

    def check(self, clause_id: str, event: str | None = None) -> Verdict:
        """Judge one clause (by id or number) for one declared event and return its verdict; judged once,
        then cached. ``clause_id`` may carry the event (``forged-token-refused[ONIMCONNECTORMESSAGEADD]``);
        without one it is OnSessionStart (or the first declared event)."""
        wanted, event = self._resolve(clause_id, event)
        key = verdict_id(wanted.id, event)
        with self._lock:
            if key not in self._state.verdicts:
                if wanted.id in _TIMING:
                    # clause 7 judges every delivery of the run, so the other clauses go first
                    for other, other_event in self.plan():
                        if other not in _TIMING:
                            self.check(other, other_event)
                self._judge(wanted, event)
            return self._state.verdicts[key]

    def run(self, clause_ids: Iterable[str] | None = None) -> ContractReport:
        """Judge the given clauses (all by default; ``clause-id[EVENT]`` picks one event) and return the
        report, in plan order."""
        started = time.perf_counter()
        plan = self.plan()
        if clause_ids is not None:
            picked: set[tuple[str, str]] = set()
            for item in clause_ids:
                if item.strip().endswith("]"):
                    found, event = self._resolve(item, None)
                    picked.add((found.id, event))
                else:
                    found = clause(item)
                    picked.update(p for p in plan if p[0] == found.id)
            plan = [p for p in plan if p in picked]
        verdicts = [self.check(cid, event) for cid, event in plan]
        return ContractReport(
            tuple(verdicts),
            strict=self.config.strict,
            handler=self.target.description,
            seconds=time.perf_counter() - started,
        )

    @property
    def exchanges(self) -> list[Exchange]:
        """Every delivery the run made so far (redacted)."""
        with self._lock:
            return list(self._state.exchanges)

    # -------------------------------------------------------------------------------- portals

    def _new_portal(self, *, member_id: str | None = None) -> Portal:
        # the rate limiter is off: a run sends tens of events within seconds, each answered with callbacks,
        # so the standard plan's 50-request bucket would refuse the handler's work and judge the mock's limit
        # instead of the handler (the limit itself is tested in the REST tests and with fast_bitrix24)
        portal = self.server.add_portal(
            None, delivery_timeout=self.config.timeout, member_id=member_id, rate_limit=False
        )
        if self.target.kind != "http":
            portal.route(self.handler_url, self.target)
        self._state.portals.append(portal)
        return portal

    def _site(self) -> _Site:
        """A fresh portal whose app the handler knows: through ONAPPINSTALL, or by the configured token."""
        config = self.config
        portal = self._new_portal(member_id=None if config.install_flow else config.member_id)
        app, attempts = install_handler(
            portal,
            self.target,
            install_url=self.install_url,
            application_token=config.application_token,
            timeout=config.timeout,
        )
        self._state.installs.extend(attempts)
        self._deliveries += 1  # a handler may call REST on install (event.bind...): settle for it too
        return _Site(portal, app, EventFactory(portal, app), tuple(attempts))

    def _stranger(self) -> _Site:
        """A portal the handler never heard of: the app exists there (its tokens work) but no ONAPPINSTALL."""
        portal = self._new_portal()
        app, _, _ = portal.install_app(None)
        return _Site(portal, app, EventFactory(portal, app))

    def _counts(self) -> dict[str, int]:
        return {p.domain: len(p.rest_calls) for p in self._state.portals}

    def _calls_since(self, before: Mapping[str, int], *portals: Portal) -> list[RestCall]:
        """Calls recorded since ``before`` on ``portals`` (a clause's own portals; every portal if none):
        late work from another clause lands on that clause's portals and is never counted here."""
        out: list[RestCall] = []
        for p in self._state.portals:
            if not portals or any(p is q for q in portals):
                out.extend(p.rest_calls[before.get(p.domain, 0) :])
        return out

    def _settle(self, *, expect_since: Mapping[str, int] | None = None) -> None:
        """Wait until no REST call has reached any portal of the run for ``settle`` seconds (bounded).

        ``expect_since``: the call counts from before a valid event was delivered; the handler's background
        work gets up to :data:`_EXPECT_WAIT` seconds to make its first call since then (a slow worker is not
        taken for an idle one).
        """
        # a handler whose control event took a while to call back gets a window twice that long
        settle = max(self.config.settle, min(2 * self._work_latency, self.config.timeout))
        last = sum(self._counts().values())
        if self._quiet == (self._deliveries, last):
            return  # nothing was delivered and no call arrived since the last settle: still quiet
        deadline = time.monotonic() + max(_MAX_SETTLE, self.config.timeout)
        if expect_since is not None:
            floor = sum(expect_since.values())
            first_by = time.monotonic() + min(_EXPECT_WAIT, self.config.timeout)
            while sum(self._counts().values()) <= floor and time.monotonic() < first_by:
                time.sleep(_POLL)
        quiet_since = time.monotonic()
        while True:
            now = time.monotonic()
            if now - quiet_since >= settle or now > deadline:
                break
            time.sleep(_POLL)
            total = sum(self._counts().values())
            if total != last:
                last, quiet_since = total, time.monotonic()
        self._quiet = (self._deliveries, last)

    # -------------------------------------------------------------------------------- delivery

    def _deliver(
        self,
        label: str,
        body: bytes | str,
        *,
        valid: bool,
        generator: str | None = None,
        record: bool = True,
    ) -> Exchange:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self._deliveries += 1
        attempt = self._deliverer.deliver(self.target, data, timeout=self.config.timeout)
        ex = _exchange(
            label, self.handler_url, data, attempt, valid=valid, generator=generator, event=self._event_now
        )
        if record:
            self._state.exchanges.append(ex)
        return ex

    def _deliver_many(self, items: Sequence[tuple[str, str]], *, valid: bool) -> list[Exchange]:
        bodies = [body.encode("utf-8") for _, body in items]
        self._deliveries += 1
        attempts = self._deliverer.deliver_many(
            [(self.target, b) for b in bodies], concurrency=max(1, len(bodies))
        )
        out = [
            _exchange(label, self.handler_url, b, a, valid=valid, event=self._event_now)
            for (label, _), b, a in zip(items, bodies, attempts, strict=True)
        ]
        self._state.exchanges.extend(out)
        return out

    def _verdict(
        self, clause_id: str, outcome: Outcome, reason: str, exchanges: Sequence[Exchange] = ()
    ) -> Verdict:
        tail = ""
        if outcome == "fail" and self._log_tail is not None:
            try:
                tail = self._log_tail()
            except Exception as exc:  # the log is a courtesy: never let it hide the verdict
                tail = f"(could not read the handler log: {type(exc).__name__})"
        verdict = Verdict(
            clause(clause_id), outcome, redact_text(reason), tuple(exchanges), tail, self._event_now
        )
        self._state.verdicts[verdict.id] = verdict
        return verdict

    def _modes(self) -> tuple[str, ...]:
        """The auth modes the clause's event comes in (ONAPPTEST: user mode only)."""
        from mock_portal.events import event_spec

        return event_spec(self._event_now).auth_modes

    def _build(self, factory: EventFactory, auth: str = "user", **options: Any) -> BuiltEvent:
        """A valid event of the clause's event (OnSessionStart in the first configured shape); ``system``
        falls back to user mode for events that only come in user mode."""
        if auth not in self._modes():
            auth = self._modes()[0]
        if self._event_now == _SESSION_START:
            options.setdefault("shape", self.config.shapes[0])
            return factory.session_start(auth=auth, **options)
        return factory.event(self._event_now, auth=auth, **options)

    def _control(self, site: _Site) -> tuple[Exchange, int]:
        """Deliver one valid user-mode event and return it with how many REST calls it led to."""
        self._settle()
        before = self._counts()
        event = self._build(site.events, "user")
        delivered_at = site.portal.clock.now()
        ex = self._deliver("valid control event", event.body(), valid=True)
        self._settle(expect_since=before)
        calls = self._calls_since(before, site.portal)
        if calls:
            self._work_latency = max(self._work_latency, max(c.at for c in calls) - delivered_at)
        return ex, len(calls)

    def _install_note(self, site: _Site) -> str:
        bad = [a for a in site.install if not a.ok]
        if not bad:
            return ""
        a = bad[0]
        status = a.status if a.status is not None else a.outcome
        return f"; note: ONAPPINSTALL to the install URL was answered {status}"

    # -------------------------------------------------------------------------------- clauses

    def _judge(self, wanted: Clause, event: str) -> None:
        self._event_now = event
        if wanted.id not in GENERIC_CLAUSE_IDS and _SESSION_START not in self.config.events:
            self._verdict(
                wanted.id,
                "skip",
                f"OnSessionStart-specific, and the handler does not declare ONSESSIONSTART "
                f"(declared: {', '.join(self.config.events)})",
            )
            return
        judges: dict[str, Callable[[], None]] = {
            "accepts-every-shape": self._accepts_every_shape,
            "tolerates-variation": self._tolerates_variation,
            "forged-token-no-side-effect": self._forged,
            "forged-token-refused": self._forged,
            "unknown-portal-no-side-effect": self._unknown_portal,
            "rejects-malformed-bodies": self._malformed,
            "ignores-repeated-delivery": self._repeated,
            "answers-within-timeout": self._timing,
            "answers-quickly": self._timing,
            "keeps-portals-apart": self._two_portals,
            "never-echoes-secrets": self._no_echo,
            "survives-bursts": self._burst,
        }
        judges[wanted.id]()

    def _accepts_every_shape(self) -> None:
        site = self._site()
        sent = []
        for shape in self.config.shapes:
            for auth in ("user", "system"):
                event = site.events.session_start(shape=shape, auth=auth)
                sent.append(self._deliver(f"{shape}, {auth} mode", event.body(), valid=True))
        bad = [ex for ex in sent if ex.outcome != "ok"]
        if bad:
            names = ", ".join(f"{ex.label} -> {ex.status or ex.outcome}" for ex in bad)
            self._verdict(
                "accepts-every-shape",
                "fail",
                f"{len(bad)} of {len(sent)} valid events not answered 2xx: {names}{self._install_note(site)}",
                bad,
            )
            return
        self._verdict("accepts-every-shape", "pass", f"{len(sent)} valid events answered 2xx")

    def _sibling_variants(self, site: _Site) -> list[tuple[str, BuiltEvent]]:
        """Clause 2 for an event other than OnSessionStart: what real portals vary, in that event's shape."""
        from mock_portal.events import event_spec

        spec = event_spec(self._event_now)
        build = self._build
        sample = build(site.events).payload.get("data")
        extra: dict[str, str] = {"x_contract_extra": "top", "auth.x_contract_extra": "auth"}
        if isinstance(sample, dict):
            extra["data.x_contract_extra"] = "data"
            for key in ("DATA", "MESSAGES"):
                items = sample.get(key)
                if isinstance(items, list) and items and isinstance(items[0], dict):
                    extra[f"data.{key}.0.x_contract_extra"] = "item"
        variants: list[tuple[str, BuiltEvent]] = [
            ("no event_handler_id", build(site.events, event_handler_id=False)),
            ("no server_endpoint", build(site.events, overrides=["del:auth.server_endpoint"])),
            ("unknown keys at every level", build(site.events, overrides=extra)),
        ]
        if "system" in spec.auth_modes:
            variants.append(("system mode", build(site.events, "system")))
            variants.append(
                (
                    "no server_endpoint, system mode",
                    build(site.events, "system", overrides=["del:auth.server_endpoint"]),
                )
            )
        if "message_text" in spec.text_fields:
            variants.append(
                (
                    "unicode and reserved characters in the message text",
                    build(site.events, message_text=_TRICKY_NAME),
                )
            )
        return variants

    def _tolerates_variation(self) -> None:
        site = self._site()
        if self._event_now != _SESSION_START:
            self._judge_variants(self._sibling_variants(site))
            return
        shape = self.config.shapes[0]
        list_shape = next((s for s in self.config.shapes if s in _LIST_SHAPES), None)
        named_shape = next((s for s in self.config.shapes if s != "docs-2026"), None)
        item = "data.DATA" if shape == "source-2024" else "data.DATA.0"
        extra = {
            "x_contract_extra": "top",
            "data.x_contract_extra": "data",
            f"{item}.x_contract_extra": "item",
            f"{item}.connector.x_contract_extra": "connector",
            f"{item}.chat.x_contract_extra": "chat",
            "auth.x_contract_extra": "auth",
        }
        variants: list[tuple[str, BuiltEvent]] = [
            ("no event_handler_id", site.events.session_start(shape=shape, event_handler_id=False)),
            (
                "no server_endpoint",
                site.events.session_start(shape=shape, overrides=["del:auth.server_endpoint"]),
            ),
            (
                "no server_endpoint, system mode",
                site.events.session_start(shape=shape, auth="system", overrides=["del:auth.server_endpoint"]),
            ),
            ("unknown keys at every level", site.events.session_start(shape=shape, overrides=extra)),
        ]
        if list_shape is not None:
            variants.append(
                ("three items in data[DATA]", site.events.session_start(shape=list_shape, items=3))
            )
        if named_shape is not None:
            variants.append(
                (
                    "unicode and reserved characters in the line name",
                    site.events.session_start(shape=named_shape, line_name=_TRICKY_NAME),
                )
            )
        variants.append(
            (
                "a REST connector id with dots and dashes",
                site.events.session_start(shape=shape, connector_id="acme.chat-bridge_v2"),
            )
        )
        self._judge_variants(variants)

    def _judge_variants(self, variants: Sequence[tuple[str, BuiltEvent]]) -> None:
        sent = [self._deliver(label, event.body(), valid=True) for label, event in variants]
        bad = [ex for ex in sent if ex.outcome != "ok"]
        if bad:
            names = ", ".join(f"{ex.label} -> {ex.status or ex.outcome}" for ex in bad)
            server_errors = sum(1 for ex in bad if ex.status is not None and ex.status >= 500)
            why = f" ({server_errors} with a 5xx)" if server_errors else ""
            self._verdict(
                "tolerates-variation",
                "fail",
                f"{len(bad)} of {len(sent)} real-world variants not answered 2xx{why}: {names}",
                bad,
            )
            return
        self._verdict("tolerates-variation", "pass", f"{len(sent)} variants answered 2xx")

    def _forged_token(self, real: str) -> list[tuple[str, Any]]:
        flipped = real[:-1] + ("0" if real[-1:] != "0" else "1")
        return [
            ("a random application_token", secrets.token_hex(16)),
            ("the right token with its last character changed", flipped),
            ("an empty application_token", ""),
            ("no application_token at all", None),
        ]

    def _forged(self) -> None:
        site = self._site()
        control, control_calls = self._control(site)
        before = self._counts()
        real = site.events.application_token or site.app.application_token
        sent = []
        for label, token in self._forged_token(real):
            override: Any = (
                ["del:auth.application_token"] if token is None else {"auth.application_token": token}
            )
            event = self._build(site.events, "user", overrides=override)
            sent.append(self._deliver(f"forged: {label}", event.body(), valid=False))
        if "system" in self._modes():
            event = self._build(
                site.events, "system", overrides={"auth.application_token": secrets.token_hex(16)}
            )
            sent.append(
                self._deliver("forged: a random application_token, system mode", event.body(), valid=False)
            )
        self._settle()
        calls = self._calls_since(before, site.portal)
        server_errors = [ex for ex in sent if ex.status is not None and ex.status >= 500]
        if calls or server_errors:
            parts = []
            if calls:
                methods = ", ".join(sorted({c.method for c in calls}))
                parts.append(f"{len(calls)} REST call(s) ({methods}) after {len(sent)} forged events")
            if server_errors:
                parts.append(f"{len(server_errors)} forged event(s) answered 5xx")
            self._verdict("forged-token-no-side-effect", "fail", "; ".join(parts), server_errors or sent)
        elif control_calls == 0:
            self._verdict(
                "forged-token-no-side-effect",
                "inconclusive",
                "no REST call for a valid event either, so no call after a forged one proves nothing"
                + self._install_note(site),
                [control],
            )
        else:
            self._verdict(
                "forged-token-no-side-effect",
                "pass",
                f"{len(sent)} forged events, no REST call (a valid one made {control_calls})",
            )
        wrong = [ex for ex in sent if ex.status not in (401, 403)]
        if wrong:
            answers = ", ".join(
                f"{ex.label.removeprefix('forged: ')} -> {ex.status or ex.outcome}" for ex in wrong
            )
            self._verdict(
                "forged-token-refused",
                "fail",
                f"{len(wrong)} forged event(s) not answered 401/403: {answers}",
                wrong,
            )
        else:
            self._verdict("forged-token-refused", "pass", f"{len(sent)} forged events answered 401/403")

    def _unknown_portal(self) -> None:
        site = self._site()
        control, control_calls = self._control(site)
        stranger = self._stranger()
        # a handler bound to one portal's token accepts that token only there: use it from elsewhere
        token = self.config.application_token if self.config.member_id else secrets.token_hex(16)
        factory = EventFactory(stranger.portal, stranger.app, application_token=token)
        before = self._counts()
        sent = [
            self._deliver(
                f"unknown member_id, {auth} mode",
                self._build(factory, auth).body(),
                valid=False,
            )
            for auth in self._modes()
        ]
        self._settle()
        calls = self._calls_since(before, site.portal, stranger.portal)
        if calls:
            methods = ", ".join(sorted({c.method for c in calls}))
            self._verdict(
                "unknown-portal-no-side-effect",
                "fail",
                f"{len(calls)} REST call(s) ({methods}) for events of a portal that never installed the app",
                sent,
            )
        elif control_calls == 0:
            self._verdict(
                "unknown-portal-no-side-effect",
                "inconclusive",
                "no REST call for a valid event either, so no call here proves nothing"
                + self._install_note(site),
                [control],
            )
        else:
            answers = ", ".join(str(ex.status or ex.outcome) for ex in sent)
            self._verdict(
                "unknown-portal-no-side-effect",
                "pass",
                f"no REST call for the unknown portal (answers: {answers})",
            )

    def _malformed(self) -> None:
        site = self._site()
        valid = self._build(site.events, "user")
        form = valid.body().encode("utf-8")
        cut = form[: max(1, int(len(form) * 0.4))]
        cut = cut[: cut.rfind(b"%") + 2] if b"%" in cut else cut  # end inside a %XX escape
        size = self.config.oversize_bytes
        pad = b"&x_padding=" + b"a" * size
        blob = bytes(range(256)) * 16
        cases: list[tuple[str, bytes, str | None]] = [
            (
                "not form-encoded (XML)",
                f'<?xml version="1.0"?><event name="{self._event_now}"/>'.encode(),
                None,
            ),
            ("JSON, as the doc pages render events", valid.body("json").encode("utf-8"), None),
            ("empty body", b"", None),
            ("truncated inside a %XX escape", cut, None),
            (
                f"oversized ({len(form) + len(pad)} bytes, past PHP's post_max_size)",
                form + pad,
                None,
            ),
            (
                "binary (every byte value, NULs, not UTF-8)",
                blob,
                "python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256))*16)'",
            ),
        ]
        with warnings.catch_warnings():
            # aiohttp warns that a large bytes body may block its loop; this one is meant to be large
            warnings.filterwarnings("ignore", "Sending a large body directly", ResourceWarning)
            sent = [self._deliver(label, body, valid=False, generator=gen) for label, body, gen in cases]
        bad = [
            ex
            for ex in sent
            if not (ex.status is not None and 400 <= ex.status < 500 and ex.outcome == "http_error")
        ]
        # a handler may refuse an oversized body by answering 413 and closing before reading it all: the
        # client then sees the connection end mid-upload; that is a refusal, not a crash
        bad = [ex for ex in bad if not (ex.label.startswith("oversized") and ex.outcome == "reset")]
        if bad:
            names = ", ".join(f"{ex.label} -> {ex.status or ex.outcome}" for ex in bad)
            self._verdict(
                "rejects-malformed-bodies",
                "fail",
                f"{len(bad)} malformed bodies not answered 4xx: {names}",
                bad,
            )
            return
        self._verdict("rejects-malformed-bodies", "pass", f"{len(sent)} malformed bodies answered 4xx")

    def _repeated(self) -> None:
        site = self._site()
        event = self._build(site.events, "user")
        self._settle()
        before = self._counts()
        first = self._deliver("first delivery", event.body(), valid=True)
        self._settle(expect_since=before)
        first_calls = len(self._calls_since(before, site.portal))
        middle = self._counts()
        second = self._deliver("repeated delivery, byte-identical", event.body(), valid=False)
        self._settle()
        second_calls = len(self._calls_since(middle, site.portal))
        if first_calls == 0:
            self._verdict(
                "ignores-repeated-delivery",
                "inconclusive",
                "the first delivery led to no REST call, so the repeat cannot be judged"
                + self._install_note(site),
                [first],
            )
        elif second_calls:
            self._verdict(
                "ignores-repeated-delivery",
                "fail",
                f"the repeat led to {second_calls} more REST call(s) (the first to {first_calls})",
                [second],
            )
        else:
            self._verdict(
                "ignores-repeated-delivery",
                "pass",
                f"the repeat led to no REST call (the first to {first_calls}; repeat answered "
                f"{second.status or second.outcome})",
            )

    def _own_exchanges(self) -> list[Exchange]:
        """The run's exchanges of the clause's event (clauses 7 and 9 judge each declared event apart)."""
        return [ex for ex in self._state.exchanges if ex.event == self._event_now]

    def _timing(self) -> None:
        exchanges = self._own_exchanges()
        valid = [ex for ex in exchanges if ex.valid and ex.outcome == "ok"]
        if not valid:
            site = self._site()
            for auth in ("user", "system") * 3:
                event = self._build(site.events, auth)
                self._deliver(f"timing sample, {auth} mode", event.body(), valid=True)
            exchanges = self._own_exchanges()
            valid = [ex for ex in exchanges if ex.valid and ex.outcome == "ok"]
        late = [ex for ex in exchanges if ex.outcome == "timeout"]
        # the installs of the run count with the first declared event, so each is judged once
        first = self.config.events[0] == self._event_now
        late_installs = [a for a in self._state.installs if a.outcome == "timeout"] if first else []
        installs = len(self._state.installs) if first else 0
        limit = f"{self.config.timeout:g} s"
        if late or late_installs:
            names = ", ".join(ex.label for ex in late[:5])
            if late_installs:
                names = ", ".join(filter(None, ["ONAPPINSTALL", names]))
            self._verdict(
                "answers-within-timeout",
                "fail",
                f"{len(late) + len(late_installs)} of {len(exchanges) + installs} "
                f"deliveries not answered within {limit}: {names}",
                late,
            )
        else:
            self._verdict(
                "answers-within-timeout",
                "pass",
                f"all {len(exchanges) + installs} deliveries answered within {limit}",
            )
        if not valid:
            self._verdict(
                "answers-quickly", "inconclusive", "no valid event was answered 2xx, nothing to time"
            )
            return
        latencies = sorted(ex.latency_ms for ex in valid)
        p95 = latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)]
        median = latencies[len(latencies) // 2]
        text = f"p95 {p95:.0f} ms, median {median:.0f} ms over {len(latencies)} valid deliveries"
        if p95 > P95_BUDGET_MS:
            slow = sorted(valid, key=lambda ex: -ex.latency_ms)[:3]
            self._verdict("answers-quickly", "fail", f"{text} (budget {P95_BUDGET_MS:.0f} ms)", slow)
        else:
            self._verdict("answers-quickly", "pass", text)

    def _two_portals(self) -> None:
        if not self.config.install_flow:
            self._verdict(
                "keeps-portals-apart",
                "skip",
                "needs the install flow: with one configured application token two portals look alike",
            )
            return
        a, b = self._site(), self._site()
        problems: list[str] = []
        shown: list[Exchange] = []
        own_total = 0
        for site, other, name in ((a, b, "A"), (b, a, "B")):
            self._settle()
            before = self._counts()
            sent = [
                self._deliver(
                    f"portal {name}, {auth} mode",
                    site.events.session_start(shape=self.config.shapes[0], auth=auth).body(),
                    valid=True,
                )
                for auth in ("user", "system")
            ]
            self._settle(expect_since=before)
            own = self._calls_since(before, site.portal)
            stray = self._calls_since(before, other.portal)
            own_total += len(own)
            refused = [c for c in own if c.status == 401]
            if stray:
                problems.append(
                    f"{len(stray)} REST call(s) for portal {name}'s events went to the other portal"
                )
                shown.extend(sent)
            if refused:
                problems.append(
                    f"{len(refused)} call(s) at portal {name} were refused as unauthorised "
                    f"({refused[0].error}): another portal's token?"
                )
                shown.extend(sent)
        # portal B's event carrying portal A's application_token
        crossed = EventFactory(b.portal, b.app, application_token=a.app.application_token)
        self._settle()
        before = self._counts()
        crossed_sent = [
            self._deliver(
                f"portal B's event with portal A's application_token, {auth} mode",
                crossed.session_start(shape=self.config.shapes[0], auth=auth).body(),
                valid=False,
            )
            for auth in ("user", "system")
        ]
        self._settle()
        crossed_calls = self._calls_since(before, a.portal, b.portal)
        if crossed_calls:
            problems.append(
                f"{len(crossed_calls)} REST call(s) after portal B's events carried portal A's token "
                f"(answered {', '.join(str(ex.status or ex.outcome) for ex in crossed_sent)})"
            )
            shown.extend(crossed_sent)
        if problems:
            self._verdict("keeps-portals-apart", "fail", "; ".join(problems), shown)
        elif own_total == 0:
            self._verdict(
                "keeps-portals-apart",
                "inconclusive",
                "no REST call for any valid event of either portal, so where callbacks go cannot be judged",
            )
        else:
            self._verdict(
                "keeps-portals-apart",
                "pass",
                f"{own_total} callbacks each at its own portal; crossed tokens led to no REST call",
            )

    def _secrets(self) -> list[str]:
        found: set[str] = set()
        for portal in self._state.portals:
            for app in portal.apps.values():
                found.add(app.application_token)
            for token in list(portal.tokens.values()):
                found.add(token.access_token)
                if token.refresh_token:
                    found.add(token.refresh_token)
        if self.config.application_token:
            found.add(self.config.application_token)
        return [s for s in found if len(s) >= 8]

    def _no_echo(self) -> None:
        site = self._site()
        probes = [
            ("valid event", self._build(site.events, "user").body(), "form"),
            (
                "forged event",
                self._build(site.events, overrides={"auth.application_token": secrets.token_hex(16)}).body(),
                "form",
            ),
            ("JSON body", self._build(site.events).body("json"), "json"),
        ]
        tokens = self._secrets()
        leaks: list[str] = []
        shown: list[Exchange] = []
        for label, body, _ in probes:
            status, data, error = _raw_post(self.target, body.encode("utf-8"), self.config.timeout)
            text = data.decode("utf-8", "replace")
            hits = [t for t in tokens if t in text]
            masked = [k for k in _SECRET_FIELDS if _masked_field(redact_text(text), k)]
            if hits or masked:
                which = ", ".join(sorted({_secret_kind(t, self._state.portals) for t in hits} | set(masked)))
                leaks.append(f"the answer to a {label} ({status}) carries {which}")
                shown.append(
                    Exchange(
                        label=f"echo probe: {label}",
                        url=redact_text(self.handler_url),
                        sent=redact_text(body[:_SHOWN_BODY]),
                        sent_bytes=len(body),
                        outcome="ok" if status and status < 300 else "http_error",
                        status=status,
                        latency_ms=0.0,
                        response=_mask_all(text, tokens)[:300],
                        error=error,
                        reproduce=redact_text(
                            _curl(
                                self.handler_url,
                                body.encode("utf-8"),
                                "application/x-www-form-urlencoded",
                                None,
                            )
                        ),
                        event=self._event_now,
                    )
                )
        # every answer of the run so far, as far as it was kept (the first 256 bytes, redacted)
        own = self._own_exchanges()
        for ex in own:
            hits = [t for t in tokens if t in ex.response]
            masked = [k for k in _SECRET_FIELDS if _masked_field(ex.response, k)]
            if hits or masked:
                leaks.append(f"the answer to '{ex.label}' carries a secret")
                shown.append(ex)
        if leaks:
            self._verdict("never-echoes-secrets", "fail", "; ".join(dict.fromkeys(leaks)), shown)
        else:
            self._verdict(
                "never-echoes-secrets",
                "pass",
                f"{len(probes)} full answers and {len(own)} excerpts carry no secret",
            )

    def _burst(self) -> None:
        site = self._site()
        _, per_event = self._control(site)
        n = self.config.burst
        items = [
            (f"burst delivery {i + 1} of {n}", site.events.session_start(shape=self.config.shapes[0]).body())
            for i in range(n)
        ]
        self._settle()
        before = self._counts()
        sent = self._deliver_many(items, valid=True)
        self._settle(expect_since=before)
        calls = len(self._calls_since(before, site.portal))
        bad = [ex for ex in sent if ex.outcome != "ok"]
        if bad:
            kinds: dict[str, int] = {}
            for ex in bad:
                key = str(ex.status) if ex.status is not None else ex.outcome
                kinds[key] = kinds.get(key, 0) + 1
            summary = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
            self._verdict(
                "survives-bursts",
                "fail",
                f"{len(bad)} of {n} concurrent deliveries not answered 2xx: {summary}",
                bad,
            )
        elif per_event and calls < n * per_event:
            self._verdict(
                "survives-bursts",
                "fail",
                f"{n} concurrent events led to {calls} REST call(s); one event alone led to {per_event}: "
                f"the work of about {n - calls // per_event} event(s) was lost",
                sent[:1],
            )
        else:
            extra = f", {calls} REST calls" if per_event else " (no REST calls to count)"
            self._verdict("survives-bursts", "pass", f"{n} concurrent deliveries answered 2xx{extra}")


def install_handler(
    portal: Portal,
    handler: object,
    *,
    install_url: str | None = None,
    application_token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[App, list[Attempt]]:
    """Install an app on ``portal`` and let the handler know it, as a portal would.

    With no ``application_token``: ONAPPINSTALL (with the app's tokens) is POSTed to ``install_url`` (the
    handler itself by default), the way the handler learns its token (facts §2, §5). With one: the app is
    created silently and given that token, for handlers configured with it. An in-process handler gets its
    URL routed on the portal. Returns the app and the install attempts.
    """
    target = resolve_target(handler)
    if target.kind != "http":
        portal.route(target.url, target)
    if application_token is None:
        app, _, attempts = portal.install_app(install_url or target.url, timeout=timeout)
        return app, list(attempts)
    app, _, _ = portal.install_app(None)
    app.application_token = application_token
    return app, []


def settled_calls(
    portals: Portal | Iterable[Portal], *, settle: float = DEFAULT_SETTLE, limit: float = 30.0
) -> list[RestCall]:
    """Wait until no new REST call reaches ``portals`` for ``settle`` seconds (at most ``limit``), then return
    every call they recorded, oldest first per portal."""
    from mock_portal.portal import Portal

    group = [portals] if isinstance(portals, Portal) else list(portals)
    deadline = time.monotonic() + limit
    last = sum(len(p.rest_calls) for p in group)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle and time.monotonic() < deadline:
        time.sleep(_POLL)
        total = sum(len(p.rest_calls) for p in group)
        if total != last:
            last, quiet_since = total, time.monotonic()
    return [call for p in group for call in p.calls()]


# ------------------------------------------------------------------------------------------------ helpers


def _masked_field(text: str, key: str) -> bool:
    """Whether redacted text shows ``key`` with a masked value: the original carried that secret."""
    return (
        f"{key}=***" in text
        or f'"{key}": "***"' in text
        or f'"{key}":"***"' in text
        or (f"{key}%5D=***" in text)
    )


def _mask_all(text: str, tokens: Iterable[str]) -> str:
    for token in tokens:
        text = text.replace(token, "***")
    return redact_text(text)


def _secret_kind(token: str, portals: Iterable[Portal]) -> str:
    for portal in portals:
        if any(app.application_token == token for app in portal.apps.values()):
            return "application_token"
        found = portal.tokens.get(token)
        if found is not None:
            return "access_token"
        if any(t.refresh_token == token for t in portal.tokens.values()):
            return "refresh_token"
    return "a token"


def _raw_post(target: Target, body: bytes, timeout: float) -> tuple[int | None, bytes, str | None]:
    """POST ``body`` once and return ``(status, whole response body, error)``: the delivery log keeps only a
    redacted excerpt, and clause 9 must read every byte of the answer."""
    import httpx

    from mock_portal.delivery import AsgiTarget, UrlTarget, WsgiTarget

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    limit = 1 << 20
    try:
        if isinstance(target, UrlTarget):
            with httpx.Client(timeout=timeout, follow_redirects=False) as client:
                reply = client.post(target.url, content=body, headers=headers)
                return reply.status_code, reply.content[:limit], None
        if isinstance(target, WsgiTarget):
            transport = httpx.WSGITransport(app=target.app)
            with httpx.Client(transport=transport, timeout=timeout) as client:
                reply = client.post(target.url, content=body, headers=headers)
                return reply.status_code, reply.content[:limit], None
        if isinstance(target, AsgiTarget):
            app = target.app

            async def via_asgi() -> tuple[int, bytes]:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), timeout=timeout
                ) as client:
                    reply = await client.post(target.url, content=body, headers=headers)
                    return reply.status_code, reply.content[:limit]

            status, data = _in_thread(lambda: asyncio.run(via_asgi()), timeout)
            return status, data, None
        handler = target.handler

        def via_callable() -> Any:
            value = handler(body, headers, target.url)
            if inspect.isawaitable(value):
                return asyncio.run(_awaited(value))
            return value

        value = _in_thread(via_callable, timeout)
        if isinstance(value, tuple) and len(value) == 2:
            status_raw, data_raw = value
            data_bytes = data_raw.encode() if isinstance(data_raw, str) else bytes(data_raw)
            return int(status_raw), data_bytes[:limit], None
        return int(value), b"", None
    except Exception as exc:
        return None, b"", redact_text(f"{type(exc).__name__}: {exc}")[:300]


async def _awaited(value: Any) -> Any:
    return await value


def _in_thread(work: Callable[[], Any], timeout: float) -> Any:
    """Run ``work`` on a daemon thread (it may start its own event loop) and wait at most ``timeout``."""
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=runner, name="b24-contract-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def verdicts_json(report: ContractReport) -> str:
    """The report as indented JSON text."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
