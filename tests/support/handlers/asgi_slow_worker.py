"""A correct ASGI handler (served by uvicorn) whose worker is slow, and which refuses big bodies mid-stream.

Unlike the reference handler in everything the contract must not care about:

- one asyncio worker that takes ``delay`` seconds per REST call (a slow upstream, a slow CPU): the work of a
  burst trails its answers by seconds;
- the body is read chunk by chunk and a 413 answered as soon as it passes 1 MiB (the rest is never read, so
  the server closes the connection under a client still uploading);
- 202 Accepted for the events it queues, 204 No Content for the ones it does not handle, 401 for a bad token,
  422 for bodies it cannot parse;
- REST with ``httpx.AsyncClient``; the event's own token in user mode, the stored one in system mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mock_portal.wire import decode

MAX_BODY = 1 << 20


class SlowWorkerApp:
    """The ASGI app; its worker runs on the server's event loop."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.installs: dict[str, dict[str, str]] = {}
        self.seen: set[bytes] = set()
        self.queue: asyncio.Queue[tuple[str, str, dict[str, str], str]] | None = None
        self.worker: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.queue = asyncio.Queue()
                    self.worker = asyncio.create_task(self._work())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.worker is not None:
                        self.worker.cancel()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await self._answer(send, 413, {"detail": "request entity too large"})
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        status, payload = self.handle(b"".join(chunks))
        await self._answer(send, status, payload)

    @staticmethod
    async def _answer(send: Any, status: int, payload: dict[str, Any] | None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = [(b"content-type", b"application/json")] if payload is not None else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def handle(self, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        try:
            payload = decode(raw)
        except Exception:
            return 422, {"detail": "unprocessable"}
        event = str(payload.get("event", "")).upper()
        auth = payload.get("auth")
        if not event or not isinstance(auth, dict):
            return 422, {"detail": "no event"}
        member_id, given = str(auth.get("member_id", "")), str(auth.get("application_token", ""))
        if event == "ONAPPINSTALL":
            self.installs[member_id] = {
                "token": given,
                "access_token": str(auth.get("access_token", "")),
                "client_endpoint": str(auth.get("client_endpoint", "")),
            }
            return 200, {"detail": "installed"}
        install = self.installs.get(member_id)
        if install is None or not hmac.compare_digest(given.encode(), install["token"].encode()):
            return 401, {"detail": "unauthorized"}
        digest = hashlib.sha256(raw).digest()
        if digest in self.seen:
            return 204, None
        self.seen.add(digest)
        if event != "ONSESSIONSTART":
            return 204, None
        data = payload.get("data")
        block = data.get("DATA") if isinstance(data, dict) else None
        items = list(block.values()) if isinstance(block, dict) and "0" in block else [block]
        token = str(auth.get("access_token") or install["access_token"])
        endpoint = str(auth.get("client_endpoint") or install["client_endpoint"])
        assert self.queue is not None
        for item in items:
            chat = item.get("chat", {}) if isinstance(item, dict) else {}
            chat_id = chat.get("id") or chat.get("chat_id") if isinstance(chat, dict) else None
            if chat_id:
                self.queue.put_nowait((endpoint, "im.message.add", {"DIALOG_ID": f"chat{chat_id}"}, token))
        return 202, {"detail": "queued"}

    async def _work(self) -> None:
        import httpx

        assert self.queue is not None
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                endpoint, method, params, token = await self.queue.get()
                await asyncio.sleep(self.delay)
                with contextlib.suppress(httpx.HTTPError):  # the portal records what it refused
                    await client.post(endpoint + method, data={**params, "MESSAGE": "hi", "auth": token})


@contextmanager
def serve(delay: float = 0.1) -> Iterator[str]:
    """Serve the app with uvicorn on 127.0.0.1 at a free port; yield its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = threading.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            ready.set()

    config = uvicorn.Config(SlowWorkerApp(delay), log_level="error", lifespan="on", access_log=False)
    server = Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert ready.wait(30), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
