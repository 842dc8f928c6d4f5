"""The uvicorn server the portal runs on, without uvicorn's fixed waits.

uvicorn's main loop looks for a stop request every 0.1 s, and its shutdown sleeps 0.1 s and then polls every
0.1 s for connections to close: a run that starts and stops a portal server waits up to 0.3 s for nothing.
Here a stop request wakes the main loop at once, and the shutdown waits on the connections and tasks
themselves (each one that ends wakes it), within the same grace period. Websockets are off: the portal serves
none, and the protocol's import is the slowest part of uvicorn's start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["make_server", "wake"]


class _WatchedSet(set[Any]):
    """uvicorn's set of connections (or tasks): removing one sets ``changed`` (on the loop's thread)."""

    def __init__(self, changed: asyncio.Event | None = None) -> None:
        super().__init__()
        self.changed = changed

    def discard(self, item: Any) -> None:
        super().discard(item)
        if self.changed is not None:
            self.changed.set()


def make_server(
    app: Any, *, log_level: str, on_ready: Callable[[], None], on_shutdown: Callable[[], None]
) -> Any:
    """A ``uvicorn.Server`` for ``app`` (lifespan and websockets off) that calls ``on_ready`` once it serves
    and ``on_shutdown`` when it starts to stop; :func:`wake` makes it notice ``should_exit`` at once."""
    import uvicorn

    class _Server(uvicorn.Server):
        _portal_loop: asyncio.AbstractEventLoop | None = None
        _portal_wake: asyncio.Event | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            self._portal_loop = asyncio.get_running_loop()
            self._portal_wake = asyncio.Event()
            changed = asyncio.Event()
            state = self.server_state
            state.connections = _WatchedSet(changed)
            state.tasks = _WatchedSet(changed)
            await super().startup(sockets=sockets)
            on_ready()

        async def main_loop(self) -> None:
            # uvicorn's loop, woken by wake() instead of only by its 0.1 s tick
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 1) % 864000
                assert self._portal_wake is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._portal_wake.wait(), 0.1)
                should_exit = await self.on_tick(counter)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            on_shutdown()  # a long poll (an open inspector page) must not hold the stop up
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            for connection in list(self.server_state.connections):
                connection.shutdown()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + (self.config.timeout_graceful_shutdown or 0)
            state = self.server_state
            changed = state.connections.changed if isinstance(state.connections, _WatchedSet) else None
            while (state.connections or state.tasks) and not self.force_exit:
                left = deadline - loop.time()
                if left <= 0 or changed is None:
                    break
                changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), left)
            for task in list(state.tasks):
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
            for server in self.servers:
                await server.wait_closed()
            if not self.force_exit:
                await self.lifespan.shutdown()

    config = uvicorn.Config(
        app, log_level=log_level, lifespan="off", ws="none", access_log=False, timeout_graceful_shutdown=2
    )
    return _Server(config)


def wake(server: Any) -> None:
    """Make a server from :func:`make_server` notice ``should_exit`` now (from any thread)."""
    loop, event = getattr(server, "_portal_loop", None), getattr(server, "_portal_wake", None)
    if loop is None or event is None or loop.is_closed():
        return
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(event.set)
