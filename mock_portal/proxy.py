"""A forward proxy for handlers that reach portals as they reach real ones: ``HTTPS_PROXY`` and CONNECT.

It tunnels only to the hosts it is told about (the portals' domains and the OAuth hosts), port 443; any
other CONNECT gets a 403 and any plain proxied request a 405. A tunnel's TLS is terminated here with a
certificate for the requested host (from :mod:`mock_portal.tls`'s generated CA) and its plain HTTP is piped to
a loopback ``backend`` port, which answers it with the Host header intact. The CONNECT head is parsed with
h11; past it the proxy only moves bytes, so HTTP/1.1 details (keep-alive, chunked bodies) are the backend
server's business.

It runs on an asyncio loop it is given (``await proxy.start()``) and binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import h11

__all__ = ["ConnectProxy", "TunnelLog"]

_MAX_HEAD_BYTES = 16_384
_HEAD_TIMEOUT = 30.0
_HANDSHAKE_TIMEOUT = 30.0
_CHUNK = 65_536


_MAX_LOGGED = 10_000


@dataclass
class TunnelLog:
    """What the proxy did: hosts tunnelled to, CONNECT targets refused (``host:port``); the first 10,000."""

    tunnels: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def note(self, kind: list[str], what: str) -> None:
        if len(kind) < _MAX_LOGGED:
            kind.append(what)


class ConnectProxy:
    """CONNECT to ``allowed(host)`` hosts, port 443; TLS from ``context_for(host)``; bytes to ``backend``."""

    def __init__(
        self,
        *,
        allowed: Callable[[str], bool],
        context_for: Callable[[str], ssl.SSLContext],
        backend: tuple[str, int],
    ) -> None:
        self.allowed = allowed
        self.context_for = context_for
        self.backend = backend
        self.log = TunnelLog()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the proxy listens on (127.0.0.1)."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on 127.0.0.1, a free port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening and end the open tunnels."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ one client connection
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._tunnel(reader, writer)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass  # the client went away or spoke nonsense: nothing to answer any more
        finally:
            # no wait_closed(): after a failed TLS handshake Python 3.10 never reports the connection lost
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _read_head(self, reader: asyncio.StreamReader, conn: h11.Connection) -> h11.Request | None:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return event
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(_CHUNK), _HEAD_TIMEOUT)
                conn.receive_data(data)
                if not data:
                    return None
                continue
            return None

    async def _answer(
        self, writer: asyncio.StreamWriter, conn: h11.Connection, status: int, reason: str, text: str
    ) -> None:
        body = text.encode("utf-8")
        headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))]
        headers.append(("connection", "close"))
        writer.write(conn.send(h11.Response(status_code=status, reason=reason, headers=headers)) or b"")
        writer.write(conn.send(h11.Data(data=body)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)
        request = await self._read_head(reader, conn)
        if request is None:
            return
        target = request.target.decode("latin-1")
        if request.method != b"CONNECT":
            await self._answer(
                writer, conn, 405, "Method Not Allowed", "this proxy only tunnels (CONNECT) to portal hosts\n"
            )
            return
        host, _, port = target.rpartition(":")
        host = host.strip("[]").lower()
        if port != "443" or not self.allowed(host):
            self.log.note(self.log.refused, target)
            await self._answer(
                writer, conn, 403, "Forbidden", f"{target} is not a portal or OAuth host here\n"
            )
            return
        writer.write(
            conn.send(h11.Response(status_code=200, reason="Connection Established", headers=[])) or b""
        )
        await writer.drain()
        if conn.trailing_data[0]:
            return  # bytes sent before the tunnel was up: no TLS client does that
        self.log.note(self.log.tunnels, host)
        tls_writer = await self._start_tls(reader, writer, self.context_for(host))
        up_reader, up_writer = await asyncio.open_connection(*self.backend)
        try:
            await _pipe_both(reader, tls_writer, up_reader, up_writer)
        finally:
            up_writer.close()
            tls_writer.close()

    async def _start_tls(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> asyncio.StreamWriter:
        if hasattr(writer, "start_tls"):  # Python 3.11+
            await writer.start_tls(context, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT)
            return writer
        # Python 3.10: loop.start_tls keeps the stream protocol, so ``reader`` goes on receiving, now
        # decrypted; the writer is rebuilt over the TLS transport, as StreamWriter.start_tls does from 3.11 on
        loop = asyncio.get_running_loop()
        transport = writer.transport
        protocol = transport.get_protocol()
        tls_transport = await loop.start_tls(
            transport, protocol, context, server_side=True, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT
        )
        if tls_transport is None:
            raise OSError("TLS handshake did not complete")
        cast(Any, protocol)._over_ssl = True  # what 3.11's start_tls sets too
        return asyncio.StreamWriter(tls_transport, cast(Any, protocol), reader, loop)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, half_close: bool) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        if half_close and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
        elif not half_close:
            writer.close()


async def _pipe_both(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    # client -> backend ends with a half close (the backend may still answer); backend -> client ends the
    # tunnel
    upward = asyncio.ensure_future(_copy(client_reader, up_writer, half_close=True))
    downward = asyncio.ensure_future(_copy(up_reader, client_writer, half_close=False))
    try:
        await asyncio.wait({downward}, return_when=asyncio.ALL_COMPLETED)
    finally:
        for task in (upward, downward):
            task.cancel()
        await asyncio.gather(upward, downward, return_exceptions=True)
