"""The ASGI lifespan of an app called in process, run as a server runs it.

A server (uvicorn, hypercorn) sends ``lifespan.startup`` before it serves the first request and
``lifespan.shutdown`` when it stops; apps open their clients and pools there (FastAPI's and Starlette's
``lifespan``), and hand them to requests through the lifespan ``state``, which the server copies into every
request's scope. ``httpx.ASGITransport`` sends no lifespan events, so an app that needs them would fail in
process and nowhere else. An app that does not speak the protocol (it raises on the lifespan scope, or returns
without answering) is served without it, as uvicorn's default ``lifespan="auto"`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any

from mock_portal.delivery._common import ASGIApp

__all__ = ["Lifespan"]

_SCOPE_ASGI = {"version": "3.0", "spec_version": "2.0"}


class Lifespan:
    """One app's lifespan on the running loop (create it there): :meth:`start` once (concurrent callers
    share it), then :meth:`close`. After ``start``, :attr:`failure` says why the app cannot serve (``None``:
    it can), and :meth:`request_state` is the state to put into each request's scope (``None`` without
    lifespan)."""

    def __init__(self, app: ASGIApp) -> None:
        loop = asyncio.get_running_loop()
        self.app = app
        self.failure: str | None = None
        """Why the app cannot serve: its startup failed (a server exits) or never ended (a server waits)."""
        self.timed_out = False
        self.supported = True
        self.state: dict[str, Any] = {}
        self._starting: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._started: asyncio.Future[None] = loop.create_future()
        self._stopped: asyncio.Future[None] = loop.create_future()

    def request_state(self) -> dict[str, Any] | None:
        """A shallow copy of the lifespan state, as uvicorn gives each request, or ``None``."""
        return dict(self.state) if self.supported and self._task is not None else None

    async def start(self, timeout: float) -> None:
        """Run the startup (once; later and concurrent calls wait for the first); never raises."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start(timeout))
        await asyncio.shield(self._starting)

    async def _start(self, timeout: float) -> None:
        self._inbox.put_nowait({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": _SCOPE_ASGI, "state": self.state}
        self._task = asyncio.create_task(self._main(scope))
        try:
            await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except asyncio.TimeoutError:
            self.timed_out = True
            self.failure = "its lifespan startup never completed"

    async def _main(self, scope: dict[str, Any]) -> None:
        # raising on the lifespan scope before its startup says the app does not speak the protocol; after
        # the startup, a server logs it and goes on serving
        try:
            with contextlib.suppress(Exception):
                await self.app(scope, self._receive, self._send)
        finally:
            if not self._started.done():
                self.supported = False  # returned without answering the startup
            for future in (self._started, self._stopped):
                if not future.done():
                    future.set_result(None)

    async def _receive(self) -> dict[str, str]:
        return await self._inbox.get()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            if kind == "lifespan.startup.failed":
                detail = str(message.get("message") or "").strip()
                self.failure = "its lifespan startup failed" + (f": {detail}" if detail else "")
            if not self._started.done():
                self._started.set_result(None)
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if not self._stopped.done():
                self._stopped.set_result(None)
        else:
            raise RuntimeError(f"unexpected ASGI message on the lifespan scope: {kind!r}")

    async def close(self, timeout: float) -> None:
        """Send the shutdown and wait for it (at most ``timeout`` seconds), then end the lifespan task."""
        task = self._task
        if task is None:
            return
        self._task = None
        if not task.done() and self.failure is None:
            self._inbox.put_nowait({"type": "lifespan.shutdown"})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stopped), timeout)
        if not task.done():
            task.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task
