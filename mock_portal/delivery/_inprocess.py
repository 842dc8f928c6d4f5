"""The in-process side of delivery: how an ASGI app, a WSGI app or a callable answered, judged as a client
of a real server would judge it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mock_portal.delivery._common import ASGIApp, Result, exc_text, status_outcome
from mock_portal.redact import redact_text


class ClientGone(Exception):
    """Raised into an in-process app's ``send`` once the response cap is reached: the client has gone."""


class NoResponse(Exception):
    """The ASGI app returned without starting a response (a server answers 500)."""


class AsgiRun:
    """Wraps an ASGI app for one attempt: caps the body httpx buffers, notes how the app behaved.

    The wrapper always leaves httpx a finished response: once the cap is reached it ends the response and
    raises :class:`ClientGone` into later ``send`` calls (as a server does when its client has gone); when
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

    def wrap(self, app: ASGIApp, state: dict[str, Any] | None = None) -> ASGIApp:
        """The app, with its ``send`` capped and its behaviour recorded on this object; ``state`` (the
        lifespan state, copied for this request as a server does) goes into the scope."""

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
                        raise ClientGone("the client stopped reading the response")
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

            if state is not None:
                scope["state"] = state
            try:
                await app(scope, receive, capped_send)
            except ClientGone:
                return
            except Exception as exc:
                self.exc = exc
                await finish()
                raise
            if not self.started:
                raise NoResponse("the ASGI app returned without sending a response")
            await finish()

        return capped_app

    def result(self) -> Result:
        """The attempt's result, judged as a client of a real server would see it."""
        raised = f"handler raised {exc_text(self.exc)}" if self.exc is not None else None
        if not self.started:
            # a server answers 500 when the app fails before starting a response
            return Result("http_error", 500, raised or "handler returned without sending a response")
        assert self.status is not None
        data = bytes(self.data)
        if self.cut:
            why = raised or "handler returned mid-response"
            return Result("reset", self.status, f"{why}; the response was cut short", data)
        error = f"{raised} after responding" if raised and not self.truncated else None
        return Result(status_outcome(self.status), self.status, error, data, self.truncated)


def status_from_handler(value: object) -> tuple[int, bytes] | str:
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
