"""What every part of delivery shares: outcomes, defaults, handler types, and the result of one attempt."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from mock_portal import __version__
from mock_portal.redact import redact_text

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

DEFAULT_HANDLER_THREADS = 64
"""How many threads at most run blocking in-process handlers (sync callables, WSGI apps) at once."""

EXCERPT_BYTES = 256
INPROCESS_URL = "http://handler.invalid/"
_EVENT_KEY = re.compile(rb"(?:^|&)event=([^&]*)")

ASGIApp = Callable[..., Awaitable[None]]
"""An ASGI 3 application: ``async app(scope, receive, send)``."""
WSGIApp = Callable[..., Iterable[bytes]]
"""A WSGI application: ``app(environ, start_response) -> iterable of bytes``."""
HandlerResult = int | tuple[int, bytes | str]
HandlerCallable = Callable[[bytes, Mapping[str, str], str], HandlerResult | Awaitable[HandlerResult]]
"""``handler(body, headers, url)`` returning a status or ``(status, body)``, or an awaitable of either."""


@dataclass(slots=True)
class Result:
    """How one attempt ended, before it becomes an :class:`~mock_portal.delivery.Attempt`."""

    outcome: Outcome
    status: int | None = None
    error: str | None = None
    data: bytes = b""
    truncated: bool = False


def event_name(body: bytes) -> str:
    # `event` is the first key of every event body (facts §1); the name is only for the record
    match = _EVENT_KEY.search(body)
    return unquote_plus(match.group(1).decode("latin-1")) if match else ""


def status_outcome(status: int) -> Outcome:
    # any 2xx is a delivered event; the body is ignored (facts §1)
    return "ok" if 200 <= status < 300 else "http_error"


def cut_to(data: bytes, limit: int) -> tuple[bytes, bool]:
    return (data[:limit], True) if len(data) > limit else (data, False)


_EXCERPT_WINDOW = 16 * EXCERPT_BYTES
"""How much of a response is masked for its excerpt: far more than the excerpt, so the text that masking
removes never pulls text from past the window into the excerpt."""

# a secret whose JSON value is still open where the text ends (the window, or the response as read, cut it):
# key-based masking knows a JSON value by its closing quote, so the part before the end would escape it
_OPEN_SECRET = re.compile(
    r"(?P<key>(?P<q>[\"'])(?:access_token|refresh_token|application_token|client_secret)(?P=q)\s*:\s*"
    r"(?P<vq>[\"']))(?!\*\*\*(?P=vq))(?P<value>(?:(?!(?P=vq))[\s\S])*)\Z",
    re.IGNORECASE,
)


def response_excerpt(data: bytes, limit: int = EXCERPT_BYTES) -> str:
    """The first ``limit`` characters of a response, secrets masked: masked first, then cut, so a token that
    crosses the cut (or the end of what was read) never leaves a fragment."""
    if not data:
        return ""
    text = redact_text(data[:_EXCERPT_WINDOW].decode("utf-8", "replace"))
    text = _OPEN_SECRET.sub(lambda m: f"{m['key']}***", text)
    return text[:limit]


def one_line(text: str, limit: int = 300) -> str:
    # error texts go into one-line messages and log lines: collapse whitespace, bound the length
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exc_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc)
    return one_line(redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__))
