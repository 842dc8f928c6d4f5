"""A bounded pool of daemon threads for in-process handlers that block (sync callables, WSGI apps).

Why not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are joined when the interpreter exits, so
one handler that never returns would hang the exit of every program that delivered to it. These threads are
daemons. Why not a thread per call (as before): a burst of deliveries to a slow handler would start as many
threads as deliveries. Threads start only when every running one is busy, up to ``size``, and end after a
while without work.

A call queued while all ``size`` threads are busy waits for one; its attempt's timeout runs meanwhile. An
attempt that times out before its call started cancels it (the handler is never called late) and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["HandlerThreads", "NeverStarted"]

_IDLE_SECONDS = 30.0


class NeverStarted(asyncio.TimeoutError):
    """The attempt's timeout passed while its handler call still waited for a free thread."""


class _Call:
    __slots__ = ("cancelled", "future", "lock", "loop", "started", "work")

    def __init__(
        self, work: Callable[[], Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ) -> None:
        self.work = work
        self.loop = loop
        self.future = future
        self.lock = threading.Lock()
        self.started = False
        self.cancelled = False

    def execute(self) -> tuple[Any, BaseException | None] | None:
        """Run the work unless cancelled; its value or exception (None when cancelled)."""
        with self.lock:
            if self.cancelled:
                return None
            self.started = True
        try:
            return self.work(), None
        except Exception as exc:
            return None, exc

    def settle(self, outcome: tuple[Any, BaseException | None]) -> None:
        # RuntimeError: the loop closed while this handler still ran, so nobody waits for its result
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_settle, self.future, *outcome)

    def cancel(self) -> bool:
        """Cancel the call unless it started; True if it had started."""
        with self.lock:
            self.cancelled = True
            return self.started


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the attempt already timed out
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class HandlerThreads:
    """At most ``size`` daemon threads running handler calls; :meth:`run` awaits one call's result."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._waiting = 0
        self._closed = False

    @property
    def threads(self) -> int:
        """How many threads exist now (busy or idle)."""
        with self._lock:
            return self._threads

    async def run(self, work: Callable[[], Any], seconds: float) -> Any:
        """Run ``work()`` in a pool thread and return its value (or raise what it raised) within ``seconds``.

        Raises :class:`asyncio.TimeoutError` when it did not finish in time, :class:`NeverStarted` (a
        subclass) when it never even started because every thread stayed busy.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        call = _Call(work, loop, future)
        self._submit(call)
        try:
            return await asyncio.wait_for(future, seconds)
        except asyncio.TimeoutError:
            if not call.cancel():
                raise NeverStarted(
                    f"the handler was not called within the {seconds:g} s timeout: all {self.size} handler "
                    "threads were busy with earlier calls that had not returned"
                ) from None
            raise

    def _submit(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the handler threads are closed")
            self._waiting += 1
            start = self._waiting > self._idle and self._threads < self.size
            if start:
                self._threads += 1
        self._queue.put(call)
        if start:
            threading.Thread(target=self._work, name=self.name, daemon=True).start()

    def _work(self) -> None:
        with self._lock:
            self._idle += 1
        while True:
            try:
                call = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._waiting < self._idle:  # more idle threads than work: this one may end
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                if call is None:
                    self._threads -= 1
                    return
                self._waiting -= 1
            outcome = call.execute()
            # idle again before the caller learns the result: its next call finds this thread free
            with self._lock:
                self._idle += 1
            if outcome is not None:
                call.settle(outcome)

    def close(self) -> None:
        """Let idle threads end; busy ones end when their handler returns (daemons: they never block exit)."""
        with self._lock:
            self._closed = True
            count = self._threads
        for _ in range(count):
            self._queue.put(None)
