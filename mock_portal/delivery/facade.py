"""The synchronous facade: :class:`Deliverer` runs the asyncio engine on an event-loop thread of its own."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

from mock_portal.delivery._common import (
    DEFAULT_HANDLER_THREADS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
)
from mock_portal.delivery.engine import AsyncDeliverer
from mock_portal.delivery.records import Attempt, Delivery, DeliveryLog
from mock_portal.delivery.targets import Target
from mock_portal.errors import UsageError

__all__ = ["Deliverer"]


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
        handler_threads: int = DEFAULT_HANDLER_THREADS,
        keep_responses: bool = False,
    ) -> None:
        self._core = AsyncDeliverer(
            log,
            timeout=timeout,
            user_agent=user_agent,
            max_response_bytes=max_response_bytes,
            max_body_bytes=max_body_bytes,
            connection_limit=connection_limit,
            verify_tls=verify_tls,
            handler_threads=handler_threads,
            keep_responses=keep_responses,
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
