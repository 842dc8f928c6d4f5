"""An ASGI app called in process gets its lifespan as a server gives it: the startup before its first request
(once, however many requests arrive together), the lifespan state copied into each request's scope, the
shutdown when the deliverer closes. An app that does not speak the protocol is served without it; an app whose
startup fails is not served at all, and the attempt says why."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mock_portal.delivery import AsgiTarget, AsyncDeliverer, Attempt

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
BODY = b"event=ONSESSIONSTART&auth%5Bmember_id%5D=m1"


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


class LifespanApp:
    """Opens a "client" on startup (into the lifespan state), closes it on shutdown; every request reports
    whether it saw the open client, and writes into its own copy of the state."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.events: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await asyncio.sleep(0.01)  # concurrent first requests must wait for it
                    if self.fail is not None:
                        await send({"type": "lifespan.startup.failed", "message": self.fail})
                        return
                    scope["state"]["client"] = "open"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    self.events.append("client closed")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.events.append("request")
        state = scope["state"]
        seen = state.get("client", "none") + ("" if "mine" not in state else " dirty")
        state["mine"] = True  # a copy per request: never seen by the next one
        await _answer(send, 200, seen.encode())


async def _deliver(app: Any, count: int = 1) -> tuple[list[Attempt], AsyncDeliverer]:
    deliverer = AsyncDeliverer(timeout=5)
    target = AsgiTarget(app, url="http://handler.test/events")
    attempts = await deliverer.deliver_many([(target, BODY)] * count, concurrency=count)
    return attempts, deliverer


def test_startup_once_before_the_first_request_state_per_request_shutdown_on_close() -> None:
    app = LifespanApp()

    async def scenario() -> list[Attempt]:
        attempts, deliverer = await _deliver(app, count=8)
        assert app.events[-1] == "request"  # nothing shut down while the deliverer is open
        await deliverer.aclose()
        return attempts

    attempts = asyncio.run(scenario())
    assert [(a.outcome, a.response_excerpt) for a in attempts] == [("ok", "open")] * 8
    assert app.events == ["lifespan.startup", *["request"] * 8, "lifespan.shutdown", "client closed"]


def test_a_failed_startup_is_never_served_and_says_why() -> None:
    app = LifespanApp(fail="no database")

    async def scenario() -> list[Attempt]:
        attempts, deliverer = await _deliver(app, count=2)
        await deliverer.aclose()
        return attempts

    attempts = asyncio.run(scenario())
    assert [a.outcome for a in attempts] == ["refused", "refused"]
    assert all("lifespan startup failed: no database" in (a.error or "") for a in attempts)
    assert app.events == ["lifespan.startup"]  # no request, and no shutdown for an app that never started


async def _http_only(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http", "this app only speaks HTTP"
    await _answer(send, 200, b"state" if "state" in scope else b"no state")


async def _ignores_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await _answer(send, 200, b"state" if "state" in scope else b"no state")


def test_an_app_without_lifespan_is_served_without_it() -> None:
    async def scenario(app: Any) -> Attempt:
        attempts, deliverer = await _deliver(app)
        await deliverer.aclose()
        return attempts[0]

    for app in (_http_only, _ignores_lifespan):
        attempt = asyncio.run(scenario(app))
        assert (attempt.outcome, attempt.response_excerpt) == ("ok", "no state"), attempt
