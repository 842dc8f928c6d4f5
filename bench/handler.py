"""The minimal handlers the emission benchmark aims at: each answers every POST with ``200 OK`` at once.

``asgi`` (the benchmark's target): a minimal ASGI app served by uvicorn, the server this project runs on, that
reads the body and answers; the least a Python handler deployed on a real server does.
``raw``: an asyncio protocol with no HTTP framework at all, reading each request's ``Content-Length`` body
before it answers: no real handler is this cheap, so it shows the emitter's own ceiling.

Each runs in its own process (``python bench/handler.py asgi|raw PORT_FILE``) and writes the port it bound on
127.0.0.1 to PORT_FILE.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nOK"


class _Handler(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(buffer) < end + 4 + length:
                return
            del buffer[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(_RESPONSE)


async def _serve_raw(port_file: Path) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Handler, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    port_file.write_text(str(port))
    async with server:
        await server.serve_forever()


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"OK"})


async def _serve_asgi(port_file: Path) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)  # connections wait in the backlog until uvicorn accepts them
    config = uvicorn.Config(_asgi_app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    port_file.write_text(str(sock.getsockname()[1]))
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    kind, port_file = sys.argv[1], Path(sys.argv[2])
    asyncio.run(_serve_asgi(port_file) if kind == "asgi" else _serve_raw(port_file))
