"""Where a delivery goes: a URL, an ASGI app, a WSGI app or a Python callable."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cached_property, lru_cache
from urllib.parse import urlsplit

from mock_portal.delivery._common import INPROCESS_URL, ASGIApp, HandlerCallable, WSGIApp
from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

__all__ = ["AsgiTarget", "CallableTarget", "Target", "UrlTarget", "WsgiTarget", "as_target"]


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
    url: str = INPROCESS_URL

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
    url: str = INPROCESS_URL

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
    url: str = INPROCESS_URL

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
