"""Delivery: sending an event body to a handler the way Bitrix24's queue server does, recording every attempt.

One engine, four kinds of target:

* a real ``http://`` / ``https://`` URL (a plain ``str`` or :class:`UrlTarget`): one ``aiohttp`` session
  with a keep-alive connection pool per deliverer;
* an ASGI app (:class:`AsgiTarget`), driven through ``httpx.ASGITransport`` on the delivery loop;
* a WSGI app (:class:`WsgiTarget`), driven through ``httpx.WSGITransport`` in a worker thread;
* a Python callable (:class:`CallableTarget`), sync (in a worker thread) or async (on the loop).

:class:`AsyncDeliverer` is the asyncio core; :class:`Deliverer` is the synchronous facade that owns an
event-loop thread, so the portal and tests can call :meth:`Deliverer.deliver` without asyncio. Both record
every attempt in a :class:`DeliveryLog` as an :class:`Attempt`, and neither ever raises because of what a
handler did: refused connections, hangs, resets, 5xx, huge or dripping responses all end within the attempt's
timeout as a recorded outcome. Only bad arguments (an unusable URL, a body of the wrong type, a timeout of 0)
raise, as :class:`~mock_portal.errors.UsageError`, before anything is sent.

What is sent, and why:

* one ``POST`` with ``Content-Type: application/x-www-form-urlencoded`` and the body exactly as given: it is
  the PHP ``http_build_query`` output of the event (facts §1), and delivery never re-encodes it;
* **no retries, ever**: a failed or slow delivery is logged and never resent (facts §1);
* **no redirects followed**: the queue server makes one POST per (handler x event) and ignores the response
  (facts §1); following a 301/302/303 would turn that POST into a GET without the body, so a 3xx is recorded
  as an ``http_error`` attempt like any other non-2xx answer [inferred: no redirect behaviour is documented];
* headers: ``Host``, ``User-Agent``, ``Content-Type``, ``Content-Length`` and nothing else (see
  :data:`DEFAULT_USER_AGENT` for the user agent).

Redaction: an :class:`Attempt` keeps the raw ``body`` bytes in memory so tests can assert on exactly what was
sent; every other text field (``target``, ``error``, ``reason``, ``response_excerpt``) is redacted when the
record is made, and every printed form (``str``, ``repr``, :meth:`Attempt.to_dict`, the JSONL file)
redacts the body too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import re
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, lru_cache
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus, urlsplit

from mock_portal import __version__
from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "BITRIX24_OBSERVED_USER_AGENT",
    "CONTENT_TYPE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "OUTCOMES",
    "AsgiTarget",
    "AsyncDeliverer",
    "Attempt",
    "CallableTarget",
    "Deliverer",
    "Delivery",
    "DeliveryLog",
    "Outcome",
    "Target",
    "UrlTarget",
    "WsgiTarget",
    "as_target",
]

Outcome = Literal["ok", "http_error", "timeout", "refused", "reset", "dropped"]
"""How an attempt ended.

``ok``: the handler answered 2xx. ``http_error``: it answered any other status (or, in process, raised before
answering, which a server turns into a 500). ``timeout``: no complete response within the timeout.
``refused``: no connection could be made (refused, unresolvable host, TLS handshake failure). ``reset``: the
connection ended without a complete, valid response (reset, closed early, body cut short, malformed response).
``dropped``: the portal decided not to send the event at all (for example before ``installFinish``, facts §5).
"""

OUTCOMES: tuple[Outcome, ...] = ("ok", "http_error", "timeout", "refused", "reset", "dropped")

DEFAULT_TIMEOUT = 10.0
"""Seconds an attempt may take, connect to last response byte. No handler timeout is documented; the portal's
own hop to the OAuth server uses 10 s (facts §1), so that is the default."""

DEFAULT_USER_AGENT = f"b24-contract-mock-portal/{__version__}"
"""The User-Agent sent by default. Bitrix24's documentation names no User-Agent or other header for event
POSTs (only the content type, facts §1), so the mock identifies itself neutrally rather than pretend to be the
queue server."""

BITRIX24_OBSERVED_USER_AGENT = "Bitrix24 Webhook Engine"
"""The User-Agent that third-party handler code in public repositories checks for and logs from real portals
[inferred: undocumented, seen only in handlers]. Pass it as ``user_agent=`` for a handler that insists on
it."""

CONTENT_TYPE = "application/x-www-form-urlencoded"

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
"""How much of a response is read and kept; the rest is never read (the portal ignores the body, facts §1)."""

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest body accepted for sending: PHP's default ``post_max_size`` (8M), which PHP handlers enforce."""

_EXCERPT_BYTES = 256
_INPROCESS_URL = "http://handler.invalid/"
# pooled connections are dropped after this idle time, below the keep-alive timeout of common servers
# (uvicorn and Apache close idle connections after 5 s), so a request is never written onto a connection the
# server is closing: with no retries (facts §1) that race would show up as a spurious `reset`.
_KEEPALIVE_SECONDS = 3.0
_ID_PREFIX = os.urandom(3).hex()
_ids = itertools.count(1)
_EVENT_KEY = re.compile(rb"(?:^|&)event=([^&]*)")

ASGIApp = Callable[..., Awaitable[None]]
"""An ASGI 3 application: ``async app(scope, receive, send)``."""
WSGIApp = Callable[..., Iterable[bytes]]
"""A WSGI application: ``app(environ, start_response) -> iterable of bytes``."""
HandlerResult = int | tuple[int, bytes | str]
HandlerCallable = Callable[[bytes, Mapping[str, str], str], HandlerResult | Awaitable[HandlerResult]]
"""``handler(body, headers, url)`` returning a status or ``(status, body)``, or an awaitable of either."""


# --------------------------------------------------------------------------------------------------- targets


def _check_url(url: object, where: str) -> str:
    if not isinstance(url, str):
        raise UsageError(f"{where}: a target URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"{where}: target {redact_text(url)!r} is not an http:// or https:// URL with a host"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number or out of range
    except ValueError as exc:
        raise UsageError(f"{where}: target {redact_text(url)!r} has a bad port ({exc})") from None
    return url


def _describe(kind: str, obj: object, url: str) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None)
    full = f"{module}.{name}" if module and module != "builtins" else name
    return f"{kind}:{full} {redact_text(url)}"


@dataclass(frozen=True)
class UrlTarget:
    """A handler reached over real HTTP(S). A plain ``str`` URL passed as a target means this."""

    url: str

    def __post_init__(self) -> None:
        _check_url(self.url, "UrlTarget")

    kind = "http"

    @cached_property
    def description(self) -> str:
        """The URL with any secret in its query string masked."""
        return redact_text(self.url)


@dataclass(frozen=True)
class AsgiTarget:
    """An ASGI app called in process through ``httpx.ASGITransport``; ``url`` sets the path and ``Host``."""

    app: ASGIApp
    url: str = _INPROCESS_URL

    def __post_init__(self) -> None:
        if not callable(self.app):
            raise UsageError(f"AsgiTarget: app must be an ASGI callable, not {type(self.app).__name__}")
        _check_url(self.url, "AsgiTarget")

    kind = "asgi"

    @cached_property
    def description(self) -> str:
        """``asgi:<app name> <url>``, redacted."""
        return _describe("asgi", self.app, self.url)


@dataclass(frozen=True)
class WsgiTarget:
    """A WSGI app called in a worker thread through ``httpx.WSGITransport``; ``url`` sets path and ``Host``.

    A WSGI app that never returns cannot be interrupted: the attempt still ends as ``timeout`` when its
    timeout passes, and the daemon worker thread is left to finish (or not) on its own.
    """

    app: WSGIApp
    url: str = _INPROCESS_URL

    def __post_init__(self) -> None:
        if not callable(self.app):
            raise UsageError(f"WsgiTarget: app must be a WSGI callable, not {type(self.app).__name__}")
        _check_url(self.url, "WsgiTarget")

    kind = "wsgi"

    @cached_property
    def description(self) -> str:
        """``wsgi:<app name> <url>``, redacted."""
        return _describe("wsgi", self.app, self.url)


@dataclass(frozen=True)
class CallableTarget:
    """A plain Python handler: ``handler(body: bytes, headers: Mapping[str, str], url: str)``.

    It returns a status (``int``) or ``(status, body)``; an ``async def`` handler runs on the delivery loop,
    any other in a daemon worker thread (so a blocking handler cannot stall other deliveries). A handler that
    raises is recorded as a 500 ``http_error``, as a web server would answer.
    """

    handler: HandlerCallable
    url: str = _INPROCESS_URL

    def __post_init__(self) -> None:
        if not callable(self.handler):
            raise UsageError(f"CallableTarget: handler must be callable, not {type(self.handler).__name__}")
        _check_url(self.url, "CallableTarget")

    kind = "callable"

    @cached_property
    def description(self) -> str:
        """``callable:<name> <url>``, redacted."""
        return _describe("callable", self.handler, self.url)

    @cached_property
    def is_async(self) -> bool:
        """Whether the handler is a coroutine function (awaited on the loop, not run in a thread)."""
        handler = self.handler
        return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - an object whose __call__ is async
        )


Target = UrlTarget | AsgiTarget | WsgiTarget | CallableTarget
"""Anything :meth:`AsyncDeliverer.deliver` sends to (a plain ``str`` is read as a :class:`UrlTarget`)."""


@lru_cache(maxsize=1024)
def _url_target(url: str) -> UrlTarget:
    return UrlTarget(url)


def as_target(target: str | Target, *, where: str = "target") -> Target:
    """Normalise a target: a ``str`` becomes a :class:`UrlTarget`; a bare callable is refused as ambiguous."""
    if isinstance(target, str):
        try:
            return _url_target(target)
        except UsageError as exc:
            raise UsageError(str(exc).replace("UrlTarget", where, 1)) from None
    if isinstance(target, (UrlTarget, AsgiTarget, WsgiTarget, CallableTarget)):
        return target
    if callable(target):  # type: ignore[unreachable]  # excluded by the annotation, passed anyway
        raise UsageError(
            f"{where}: a bare callable is ambiguous; wrap it as AsgiTarget(app), WsgiTarget(app) or "
            "CallableTarget(handler)"
        )
    raise UsageError(
        f"{where}: expected a URL (str), UrlTarget, AsgiTarget, WsgiTarget or CallableTarget, "
        f"not {type(target).__name__}"
    )


# --------------------------------------------------------------------------------------------------- records


def _next_id() -> str:
    return f"{_ID_PREFIX}-{next(_ids)}"


def _body_text(body: bytes) -> str:
    return redact_text(body.decode("utf-8", "replace"))


@dataclass(frozen=True, slots=True, repr=False)
class Attempt:
    """One delivery attempt (or one decision not to deliver), immutable.

    ``body`` holds the raw bytes that were sent (secrets included) for assertions; every other text field is
    already redacted, and ``str``/``repr``/:meth:`to_dict` redact the body as well. ``status`` is ``None``
    when no status line arrived. ``latency_ms`` runs from just before connecting to the last byte read (0 for
    a drop). ``response_bytes`` counts the response body bytes kept, at most the deliverer's
    ``max_response_bytes``; ``response_truncated`` says that more was offered and never read.
    """

    id: str
    event: str
    target: str
    transport: str
    body: bytes
    outcome: Outcome
    status: int | None
    latency_ms: float
    started_at: float
    timeout_s: float | None
    error: str | None = None
    reason: str | None = None
    response_bytes: int = 0
    response_excerpt: str = ""
    response_truncated: bool = False
    response: bytes = field(default=b"", repr=False, compare=False)
    """The response body as read (at most ``max_response_bytes``), secrets included, when the deliverer was
    made with ``keep_responses=True`` (empty otherwise); never in :meth:`to_dict`, ``str`` or ``repr``."""

    @property
    def ok(self) -> bool:
        """True when the handler answered with a 2xx status."""
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form with the body redacted (the JSONL line of this attempt)."""
        return {
            "id": self.id,
            "event": self.event,
            "transport": self.transport,
            "target": self.target,
            "outcome": self.outcome,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "started_at": datetime.fromtimestamp(self.started_at, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "started_at_unix": self.started_at,
            "timeout_s": self.timeout_s,
            "error": self.error,
            "reason": self.reason,
            "body_bytes": len(self.body),
            "body": _body_text(self.body),
            "response_bytes": self.response_bytes,
            "response_truncated": self.response_truncated,
            "response_excerpt": self.response_excerpt,
        }

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        line = f"{self.id} {self.event or '?'} -> {self.target}: {self.outcome}{status}"
        line += f" in {self.latency_ms:.1f} ms"
        if self.error:
            line += f"; {self.error}"
        if self.reason:
            line += f"; reason: {self.reason}"
        return line

    def __repr__(self) -> str:
        body = _body_text(self.body)
        if len(body) > 80:
            body = body[:77] + "..."
        return (
            f"Attempt(id={self.id!r}, event={self.event!r}, target={self.target!r}, "
            f"outcome={self.outcome!r}, status={self.status!r}, latency_ms={self.latency_ms:.3f}, "
            f"error={self.error!r}, reason={self.reason!r}, body={body!r})"
        )


class DeliveryLog:
    """Every attempt, in memory and optionally appended to a JSONL file; safe to share between threads.

    Attempts are kept in the order they ended (concurrent attempts may end out of input order).

    With ``path``, each attempt is written as one JSON line (redacted, see :meth:`Attempt.to_dict`) by a
    single unbuffered ``write`` as soon as it is recorded, so a process killed right after an attempt loses
    nothing; ``fsync=True`` also survives a power cut, at a cost per record. ``max_in_memory`` bounds the
    in-memory list (the oldest are forgotten first; the file keeps everything). The file is opened for
    appending.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync: bool = False,
        max_in_memory: int | None = None,
    ) -> None:
        if max_in_memory is not None and max_in_memory < 1:
            raise UsageError(f"DeliveryLog: max_in_memory must be at least 1, not {max_in_memory}")
        self._lock = threading.Lock()
        self._attempts: deque[Attempt] = deque(maxlen=max_in_memory)
        self._fsync = fsync
        self.path = Path(path) if path is not None else None
        self._fd: int | None = None
        if self.path is not None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise UsageError(
                    f"DeliveryLog: cannot open {str(self.path)!r} for appending: {exc.strerror}"
                ) from None

    def add(self, attempt: Attempt) -> None:
        """Record one attempt (and append its JSONL line when the log has a file)."""
        line = None
        if self._fd is not None:
            line = (json.dumps(attempt.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._attempts.append(attempt)
            if line is not None and self._fd is not None:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self._fsync:
                    os.fsync(self._fd)

    @property
    def attempts(self) -> list[Attempt]:
        """A snapshot of the recorded attempts, oldest first."""
        with self._lock:
            return list(self._attempts)

    def filter(
        self, *, event: str | None = None, outcome: Outcome | None = None, transport: str | None = None
    ) -> list[Attempt]:
        """The attempts matching every given field (``event`` compared case-insensitively)."""
        wanted = event.upper() if event is not None else None
        return [
            a
            for a in self.attempts
            if (wanted is None or a.event.upper() == wanted)
            and (outcome is None or a.outcome == outcome)
            and (transport is None or a.transport == transport)
        ]

    def counts(self) -> dict[str, int]:
        """How many attempts ended with each outcome (only outcomes that occurred)."""
        return dict(Counter(a.outcome for a in self.attempts))

    def clear(self) -> None:
        """Forget the in-memory attempts (the JSONL file is left as it is)."""
        with self._lock:
            self._attempts.clear()

    def close(self) -> None:
        """Close the JSONL file; later attempts are kept in memory only."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._attempts)

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self.attempts)

    def __enter__(self) -> DeliveryLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f" -> {str(self.path)!r}" if self.path is not None else ""
        return f"<DeliveryLog {len(self)} attempts{where}>"


@dataclass(frozen=True)
class Delivery:
    """One item for :meth:`AsyncDeliverer.deliver_many`; a ``(target, body)`` tuple means the same."""

    target: str | Target
    body: bytes | str
    event: str | None = None
    timeout: float | None = None


# --------------------------------------------------------------------------------------------------- engine


@dataclass(slots=True)
class _Result:
    outcome: Outcome
    status: int | None = None
    error: str | None = None
    data: bytes = b""
    truncated: bool = False


@dataclass(slots=True)
class _Job:
    target: Target
    body: bytes
    event: str
    timeout: float


def _event_name(body: bytes) -> str:
    # `event` is the first key of every event body (facts §1); the name is only for the record
    match = _EVENT_KEY.search(body)
    return unquote_plus(match.group(1).decode("latin-1")) if match else ""


def _status_outcome(status: int) -> Outcome:
    # any 2xx is a delivered event; the body is ignored (facts §1)
    return "ok" if 200 <= status < 300 else "http_error"


def _cap(data: bytes, limit: int) -> tuple[bytes, bool]:
    return (data[:limit], True) if len(data) > limit else (data, False)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the attempt already timed out
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class _ClientGone(Exception):
    """Raised into an in-process app's ``send`` once the response cap is reached: the client has gone."""


class _NoResponse(Exception):
    """The ASGI app returned without starting a response (a server answers 500)."""


class _AsgiRun:
    """Wraps an ASGI app for one attempt: caps the body httpx buffers, notes how the app behaved.

    The wrapper always leaves httpx a finished response: once the cap is reached it ends the response and
    raises :class:`_ClientGone` into later ``send`` calls (as a server does when its client has gone); when
    the app returns or raises mid-response it ends the response itself and marks it ``cut``.
    """

    __slots__ = ("cap", "complete", "cut", "data", "exc", "started", "status", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.started = False
        self.complete = False
        self.cut = False
        self.truncated = False
        self.status: int | None = None
        self.exc: BaseException | None = None
        self.data = bytearray()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The app, with its ``send`` capped and its behaviour recorded on this object."""

        async def capped_app(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
            send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
        ) -> None:
            async def capped_send(message: MutableMapping[str, Any]) -> None:
                kind = message.get("type")
                if kind == "http.response.start":
                    self.started = True
                    self.status = int(message["status"])
                elif kind == "http.response.body":
                    if self.truncated:
                        raise _ClientGone("the client stopped reading the response")
                    chunk = bytes(message.get("body", b""))
                    self.data += chunk[: self.cap + 1 - len(self.data)]
                    if len(self.data) > self.cap:
                        del self.data[self.cap :]
                        self.truncated = self.complete = True
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                        return
                    if not message.get("more_body", False):
                        self.complete = True
                await send(message)

            async def finish() -> None:
                if self.started and not self.complete:
                    self.complete = self.cut = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

            try:
                await app(scope, receive, capped_send)
            except _ClientGone:
                return
            except Exception as exc:
                self.exc = exc
                await finish()
                raise
            if not self.started:
                raise _NoResponse("the ASGI app returned without sending a response")
            await finish()

        return capped_app

    def result(self) -> _Result:
        """The attempt's result, judged as a client of a real server would see it."""
        raised = f"handler raised {_exc_text(self.exc)}" if self.exc is not None else None
        if not self.started:
            # a server answers 500 when the app fails before starting a response
            return _Result("http_error", 500, raised or "handler returned without sending a response")
        assert self.status is not None
        data = bytes(self.data)
        if self.cut:
            why = raised or "handler returned mid-response"
            return _Result("reset", self.status, f"{why}; the response was cut short", data)
        error = f"{raised} after responding" if raised and not self.truncated else None
        return _Result(_status_outcome(self.status), self.status, error, data, self.truncated)


def _one_line(text: str, limit: int = 300) -> str:
    # error texts go into one-line messages and log lines: collapse whitespace, bound the length
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exc_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc)
    return _one_line(redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__))


def _status_from_handler(value: object) -> tuple[int, bytes] | str:
    """A callable handler's return value as (status, body), or the reason it is not one."""
    body: object = b""
    status: object = value
    if isinstance(value, tuple) and len(value) == 2:
        status, body = value
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        shown = redact_text(repr(value))[:200]
        return f"handler returned {shown}; expected a status (int 100-599) or (status, body)"
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, (bytes, bytearray)):
        return f"handler returned a body of type {type(body).__name__}; expected bytes or str"
    return status, bytes(body)


def _import_aiohttp() -> ModuleType:
    import aiohttp

    return aiohttp


def _import_httpx() -> ModuleType:
    import httpx

    return httpx


class AsyncDeliverer:
    """The asyncio delivery engine. Use it from one event loop; ``async with`` closes its connection pool.

    ``timeout`` (seconds, per attempt, connect to last byte) defaults to :data:`DEFAULT_TIMEOUT`;
    ``max_response_bytes`` caps how much of each response is read; ``max_body_bytes`` refuses larger bodies
    before sending; ``connection_limit`` bounds the pool's open connections (0 for no bound); ``verify_tls``
    checks certificates of ``https://`` targets; ``keep_responses`` keeps each whole response body (as read)
    in :attr:`Attempt.response`, for a caller that must inspect every byte (the contract's secret check);
    ``fresh_connections`` opens a new connection for every attempt, as the portal's queue does (no pooled
    connection the handler may already have closed).
    """

    def __init__(
        self,
        log: DeliveryLog | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connection_limit: int = 100,
        verify_tls: bool = True,
        keep_responses: bool = False,
        fresh_connections: bool = False,
    ) -> None:
        self.keep_responses = keep_responses
        self.fresh_connections = fresh_connections
        self._timeout = self._check_timeout(timeout, "AsyncDeliverer")
        if max_response_bytes < 0:
            raise UsageError(f"AsyncDeliverer: max_response_bytes must be >= 0, not {max_response_bytes}")
        if max_body_bytes < 0:
            raise UsageError(f"AsyncDeliverer: max_body_bytes must be >= 0, not {max_body_bytes}")
        if connection_limit < 0:
            raise UsageError(f"AsyncDeliverer: connection_limit must be >= 0, not {connection_limit}")
        if not user_agent or any(c in user_agent for c in "\r\n"):
            raise UsageError("AsyncDeliverer: user_agent must be a non-empty single line")
        self.log = log if log is not None else DeliveryLog()
        self.user_agent = user_agent
        self.max_response_bytes = max_response_bytes
        self.max_body_bytes = max_body_bytes
        self._connection_limit = connection_limit
        self._verify_tls = verify_tls
        self._headers = {"User-Agent": user_agent, "Content-Type": CONTENT_TYPE}
        self._session: aiohttp.ClientSession | None = None
        self._aiohttp: Any = None
        self._client_timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._closed = False

    @staticmethod
    def _check_timeout(timeout: object, where: str) -> float:
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < float("inf")
        ):
            raise UsageError(f"{where}: timeout must be a positive number of seconds, not {timeout!r}")
        return float(timeout)

    # ---------------------------------------------------------------- public API

    async def deliver(
        self,
        target: str | Target,
        body: bytes | str,
        *,
        event: str | None = None,
        timeout: float | None = None,
    ) -> Attempt:
        """POST ``body`` to ``target`` once; return the recorded :class:`Attempt`. Never raises for a fault.

        ``event`` names the event in the record (read from the body's ``event`` key when omitted);
        ``timeout`` overrides the deliverer's timeout for this attempt.
        """
        return await self._run(self._prepare(target, body, event, timeout, "deliver()"))

    async def deliver_many(
        self, deliveries: Iterable[Delivery | tuple[str | Target, bytes | str]], *, concurrency: int = 10
    ) -> list[Attempt]:
        """Deliver every item with at most ``concurrency`` attempts in flight; attempts in input order.

        Every item is checked before anything is sent: a bad item raises :class:`UsageError`, nothing is sent.
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise UsageError(f"deliver_many(): concurrency must be a positive int, not {concurrency!r}")
        jobs = [self._prepare_item(item, i) for i, item in enumerate(deliveries)]
        results: list[Attempt | None] = [None] * len(jobs)
        pending = iter(enumerate(jobs))

        async def worker() -> None:
            for index, job in pending:
                results[index] = await self._run(job)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))
        return [a for a in results if a is not None]

    def drop(
        self, target: str | Target, body: bytes | str, *, reason: str, event: str | None = None
    ) -> Attempt:
        """Record that the portal decided not to send this event (outcome ``dropped``), and why.

        Nothing is sent. The portal uses it for, e.g., events raised before ``installFinish`` (facts §5).
        """
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("drop(): reason must be a non-empty string saying why the event was not sent")
        tgt = as_target(target, where="drop()")
        payload = self._body(body, "drop()")
        attempt = Attempt(
            id=_next_id(),
            event=event if event is not None else _event_name(payload),
            target=tgt.description,
            transport=tgt.kind,
            body=payload,
            outcome="dropped",
            status=None,
            latency_ms=0.0,
            started_at=time.time(),
            timeout_s=None,
            reason=redact_text(reason),
        )
        self.log.add(attempt)
        return attempt

    async def aclose(self) -> None:
        """Close the connection pool; later deliveries raise :class:`UsageError`."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> AsyncDeliverer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- preparation

    def _body(self, body: object, where: str) -> bytes:
        if isinstance(body, str):
            payload = body.encode("utf-8")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            payload = bytes(body)
        else:
            raise UsageError(
                f"{where}: body must be bytes or str (the encoded form body), not {type(body).__name__}"
            )
        if len(payload) > self.max_body_bytes:
            raise UsageError(
                f"{where}: body is {len(payload)} bytes, over max_body_bytes={self.max_body_bytes}"
            )
        return payload

    def _prepare(
        self, target: object, body: object, event: str | None, timeout: float | None, where: str
    ) -> _Job:
        if self._closed:
            raise UsageError(f"{where}: this deliverer is closed")
        tgt = as_target(target, where=where)  # type: ignore[arg-type]
        payload = self._body(body, where)
        seconds = self._timeout if timeout is None else self._check_timeout(timeout, where)
        if event is not None and not isinstance(event, str):
            raise UsageError(f"{where}: event must be a str, not {type(event).__name__}")
        return _Job(tgt, payload, event if event is not None else _event_name(payload), seconds)

    def _prepare_item(self, item: object, index: int) -> _Job:
        where = f"deliver_many() item {index}"
        if isinstance(item, Delivery):
            return self._prepare(item.target, item.body, item.event, item.timeout, where)
        if isinstance(item, tuple) and len(item) == 2:
            return self._prepare(item[0], item[1], None, None, where)
        raise UsageError(f"{where}: expected a Delivery or a (target, body) tuple, not {type(item).__name__}")

    # ---------------------------------------------------------------- running

    async def _run(self, job: _Job) -> Attempt:
        target = job.target
        # one-off costs (importing aiohttp/httpx, building the pool) stay out of the first attempt's latency
        if isinstance(target, UrlTarget):
            if self._session is None:
                await self._open()
        else:
            _import_httpx()
        started_at = time.time()
        t0 = time.perf_counter()
        if isinstance(target, UrlTarget):
            result = await self._post(target.url, job.body, job.timeout)
        elif isinstance(target, AsgiTarget):
            result = await self._asgi(target, job.body, job.timeout)
        elif isinstance(target, WsgiTarget):
            result = await self._wsgi(target, job.body, job.timeout)
        else:
            result = await self._callable(target, job.body, job.timeout)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        data = result.data
        attempt = Attempt(
            id=_next_id(),
            event=job.event,
            target=target.description,
            transport=target.kind,
            body=job.body,
            outcome=result.outcome,
            status=result.status,
            latency_ms=latency_ms,
            started_at=started_at,
            timeout_s=job.timeout,
            error=result.error,
            response_bytes=len(data),
            response_excerpt=redact_text(data[:_EXCERPT_BYTES].decode("utf-8", "replace")) if data else "",
            response_truncated=result.truncated,
            response=data if self.keep_responses else b"",
        )
        self.log.add(attempt)
        return attempt

    def _timeout_error(self, seconds: float, status: int | None) -> str:
        if status is None:
            return f"no response within the {seconds:g} s timeout"
        return f"the response did not complete within the {seconds:g} s timeout"

    async def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise UsageError("deliver(): this deliverer is closed")
        aiohttp_mod = _import_aiohttp()
        self._aiohttp = aiohttp_mod
        reuse: dict[str, Any] = (
            {"force_close": True} if self.fresh_connections else {"keepalive_timeout": _KEEPALIVE_SECONDS}
        )
        connector = aiohttp_mod.TCPConnector(
            limit=self._connection_limit,
            limit_per_host=0,
            ssl=None if self._verify_tls else False,
            **reuse,
        )
        session: aiohttp.ClientSession = aiohttp_mod.ClientSession(
            connector=connector,
            # only the headers we set (see the module docstring): no Accept or Accept-Encoding
            skip_auto_headers=("Accept", "Accept-Encoding"),
            auto_decompress=False,
            cookie_jar=aiohttp_mod.DummyCookieJar(),
            trust_env=False,
            timeout=self._client_timeout(self._timeout),
        )
        self._session = session
        return session

    def _client_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        found = self._client_timeouts.get(seconds)
        if found is None:
            found = self._client_timeouts[seconds] = _import_aiohttp().ClientTimeout(total=seconds)
        return found

    async def _post(self, url: str, body: bytes, seconds: float) -> _Result:
        session = self._session or await self._open()
        status: int | None = None
        try:
            async with session.post(
                url,
                data=body,
                headers=self._headers,
                allow_redirects=False,  # one POST per event, never a redirected GET (module docstring)
                timeout=self._client_timeout(seconds),
            ) as response:
                status = response.status
                stream = response.content
                limit = self.max_response_bytes + 1
                chunks: list[bytes] = []
                size = 0
                while size < limit:
                    chunk = await stream.read(limit - size)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if stream.at_eof():
                        break
                data, truncated = _cap(b"".join(chunks), self.max_response_bytes)
                if truncated:
                    response.close()  # drop the connection instead of reading the rest into the void
                return _Result(_status_outcome(status), status, None, data, truncated)
        except asyncio.TimeoutError:
            return _Result("timeout", status, self._timeout_error(seconds, status))
        except Exception as exc:
            outcome, error = self._classify(exc)
            return _Result(outcome, status, error)

    def _classify(self, exc: Exception) -> tuple[Outcome, str]:
        outcome, text = self._classify_raw(exc)
        return outcome, _one_line(text)

    def _classify_raw(self, exc: Exception) -> tuple[Outcome, str]:
        aiohttp_mod = self._aiohttp
        if isinstance(exc, aiohttp_mod.ClientConnectorError):
            cause = exc.os_error
            detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or exc)
            return "refused", redact_text(f"could not connect: {detail}")
        if isinstance(exc, aiohttp_mod.ServerDisconnectedError):
            return "reset", "the handler closed the connection without a complete response"
        if isinstance(exc, aiohttp_mod.ClientPayloadError):
            return "reset", redact_text(f"the response body was cut short: {exc}")
        if isinstance(exc, aiohttp_mod.ClientResponseError):
            return "reset", redact_text(f"the handler sent an invalid HTTP response: {exc.message}")
        if isinstance(exc, (aiohttp_mod.ClientError, OSError)):
            return "reset", redact_text(f"connection failed: {type(exc).__name__}: {exc}")
        raise exc

    def _inprocess_headers(self, url: str, body: bytes) -> dict[str, str]:
        # the same four headers a real POST carries, in the order aiohttp writes them
        return {
            "Host": urlsplit(url).netloc,
            **self._headers,
            "Content-Length": str(len(body)),
        }

    async def _asgi(self, target: AsgiTarget, body: bytes, seconds: float) -> _Result:
        httpx_mod = _import_httpx()
        run = _AsgiRun(self.max_response_bytes)
        transport = httpx_mod.ASGITransport(app=run.wrap(target.app), raise_app_exceptions=False)
        request = httpx_mod.Request(
            "POST", target.url, headers=self._inprocess_headers(target.url, body), content=body
        )
        try:
            response = await asyncio.wait_for(transport.handle_async_request(request), seconds)
            await response.aclose()
        except asyncio.TimeoutError:
            return _Result("timeout", run.status, self._timeout_error(seconds, run.status), bytes(run.data))
        except AssertionError:
            pass  # httpx's own checks on a misbehaving app (a body after the end); `run` knows what happened
        return run.result()

    async def _in_thread(self, work: Callable[[], Any], seconds: float, name: str) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def runner() -> None:
            try:
                value, error = work(), None
            except Exception as exc:
                value, error = None, exc
            # RuntimeError: the loop closed while this handler still ran, so nobody waits for its result
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, value, error)

        # a daemon thread, not a pool: a handler that never returns must not block interpreter exit
        threading.Thread(target=runner, name=name, daemon=True).start()
        return await asyncio.wait_for(future, seconds)

    async def _wsgi(self, target: WsgiTarget, body: bytes, seconds: float) -> _Result:
        httpx_mod = _import_httpx()
        headers = self._inprocess_headers(target.url, body)
        cap = self.max_response_bytes

        def call() -> _Result:
            transport = httpx_mod.WSGITransport(app=target.app, raise_app_exceptions=False)
            request = httpx_mod.Request("POST", target.url, headers=headers, content=body)
            try:
                response = transport.handle_request(request)
            except Exception as exc:
                return _Result("http_error", 500, f"handler raised {_exc_text(exc)}")
            status = response.status_code
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.stream:
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > cap:
                        break
            except Exception as exc:
                data, truncated = _cap(b"".join(chunks), cap)
                error = f"handler raised {_exc_text(exc)}; the response was cut short"
                return _Result("reset", status, error, data, truncated)
            finally:
                # the app's close() failing changes nothing that was delivered
                with contextlib.suppress(Exception):
                    response.close()
            data, truncated = _cap(b"".join(chunks), cap)
            return _Result(_status_outcome(status), status, None, data, truncated)

        try:
            result: _Result = await self._in_thread(call, seconds, "mock-portal-wsgi")
        except asyncio.TimeoutError:
            return _Result("timeout", None, self._timeout_error(seconds, None))
        return result

    async def _callable(self, target: CallableTarget, body: bytes, seconds: float) -> _Result:
        headers = self._inprocess_headers(target.url, body)
        handler = target.handler
        deadline = time.monotonic() + seconds
        try:
            if target.is_async:
                value = await asyncio.wait_for(self._await(handler(body, headers, target.url)), seconds)
            else:
                value = await self._in_thread(
                    lambda: handler(body, headers, target.url), seconds, "mock-portal-call"
                )
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(
                        self._await(value), max(deadline - time.monotonic(), 0.001)
                    )
        except asyncio.TimeoutError:
            return _Result("timeout", None, self._timeout_error(seconds, None))
        except Exception as exc:
            return _Result("http_error", 500, f"handler raised {_exc_text(exc)}")
        checked = _status_from_handler(value)
        if isinstance(checked, str):
            return _Result("http_error", 500, checked)
        status, data = checked
        data, truncated = _cap(data, self.max_response_bytes)
        return _Result(_status_outcome(status), status, None, data, truncated)

    @staticmethod
    async def _await(value: Any) -> Any:
        return await value


# ----------------------------------------------------------------------------------------------- sync facade


def _stop_loop_thread(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, core: AsyncDeliverer
) -> None:
    if loop.is_closed():
        return
    if loop.is_running():
        try:
            asyncio.run_coroutine_threadsafe(core.aclose(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
    loop.close()


class Deliverer:
    """Synchronous delivery: the :class:`AsyncDeliverer` engine on an event-loop thread this object owns.

    Safe to call from any thread, including a sync :class:`CallableTarget` handler (which runs in its own
    thread), but not from an ``async`` handler running on the delivery loop itself. Takes the same options as
    :class:`AsyncDeliverer`. ``close()`` (or ``with``) stops the thread; the log stays open (it is the
    caller's).
    """

    def __init__(
        self,
        log: DeliveryLog | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connection_limit: int = 100,
        verify_tls: bool = True,
        keep_responses: bool = False,
        fresh_connections: bool = False,
    ) -> None:
        self._core = AsyncDeliverer(
            log,
            timeout=timeout,
            user_agent=user_agent,
            max_response_bytes=max_response_bytes,
            max_body_bytes=max_body_bytes,
            connection_limit=connection_limit,
            verify_tls=verify_tls,
            keep_responses=keep_responses,
            fresh_connections=fresh_connections,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mock-portal-delivery", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop_loop_thread, self._loop, self._thread, self._core)

    @property
    def log(self) -> DeliveryLog:
        """The log every attempt is recorded in."""
        return self._core.log

    @property
    def core(self) -> AsyncDeliverer:
        """The async engine (its coroutines must run on this deliverer's own loop)."""
        return self._core

    def _call(self, coro_factory: Callable[[], Awaitable[Any]], where: str) -> Any:
        if not self._finalizer.alive:
            raise UsageError(f"{where}: this deliverer is closed")
        if threading.get_ident() == self._thread.ident:
            raise UsageError(
                f"{where}: called from the delivery loop itself (an async handler?); "
                "await the AsyncDeliverer methods there instead"
            )

        async def run() -> Any:
            return await coro_factory()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def deliver(
        self,
        target: str | Target,
        body: bytes | str,
        *,
        event: str | None = None,
        timeout: float | None = None,
    ) -> Attempt:
        """POST ``body`` to ``target`` once and return the recorded :class:`Attempt` (see
        :meth:`AsyncDeliverer.deliver`)."""
        job = self._core._prepare(target, body, event, timeout, "deliver()")
        attempt: Attempt = self._call(lambda: self._core._run(job), "deliver()")
        return attempt

    def deliver_many(
        self, deliveries: Iterable[Delivery | tuple[str | Target, bytes | str]], *, concurrency: int = 10
    ) -> list[Attempt]:
        """Deliver every item, at most ``concurrency`` in flight (see :meth:`AsyncDeliverer.deliver_many`)."""
        items = list(deliveries)
        attempts: list[Attempt] = self._call(
            lambda: self._core.deliver_many(items, concurrency=concurrency), "deliver_many()"
        )
        return attempts

    def drop(
        self, target: str | Target, body: bytes | str, *, reason: str, event: str | None = None
    ) -> Attempt:
        """Record that the portal decided not to send this event (see :meth:`AsyncDeliverer.drop`)."""
        return self._core.drop(target, body, reason=reason, event=event)

    def close(self) -> None:
        """Close the connection pool and stop the loop thread. Safe to call twice."""
        self._finalizer()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
