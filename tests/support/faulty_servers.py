"""Small HTTP servers on 127.0.0.1 that misbehave on purpose, for the delivery tests.

Each :class:`FaultServer` runs an asyncio server on its own thread and loop, bound to a free port before
``start()`` returns (so a client may connect at once, no waiting). It speaks just enough HTTP/1.1 to read one
request at a time (headers and a ``Content-Length`` body) and records what it saw: connections, requests
(method, path, headers, body), the most requests held unanswered at once, and bytes it sent.

Modes:

``ok``         200 ``ok``, keep-alive (``status``/``body``/``extra_headers`` change the answer)
``once``       as ``ok``, then closes the connection, without ``Connection: close`` (HTTP/1.1 allows that)
``cut-second`` ``ok`` to the first request of each connection; to the second half a status line, then close
``first-only`` ``ok`` to the first request the server ever reads; every later one is closed unanswered
``gate``       as ``ok``, but holds each request until ``gate`` requests are waiting, then answers them all
``hang``       reads the request and never answers
``reset``      sends the status line, headers and part of the body, then resets the connection (RST)
``close``      reads the request and closes the connection without a byte of response
``huge``       200 with ``Content-Length`` of 1 GiB, written as fast as the client reads, until it gives up
``drip``       200 with a 1000-byte body sent one byte per ``drip_interval`` seconds
``garbage``    a response line that is not HTTP

:func:`refusing_port` gives a port where connections are refused (a bound socket that never listens).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

MODES = (
    *("ok", "once", "cut-second", "first-only", "gate"),
    *("hang", "reset", "close", "huge", "drip", "garbage"),
)
HUGE_BYTES = 1 << 30
_CHUNK = b"x" * 65536


@dataclass
class RecordedRequest:
    """One request as the server read it; ``headers`` keep the order and case they arrived in."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class _Stats:
    connections: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    bytes_sent: int = 0
    client_gone: int = 0


class FaultServer:
    """An HTTP server on 127.0.0.1 that behaves as ``mode`` says (see the module docstring)."""

    def __init__(
        self,
        mode: str = "ok",
        *,
        status: int = 200,
        body: bytes = b"ok",
        extra_headers: tuple[tuple[str, str], ...] = (),
        gate: int = 1,
        drip_interval: float = 0.05,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode
        self.status = status
        self.body = body
        self.extra_headers = extra_headers
        self.gate = gate
        self.drip_interval = drip_interval
        self.ssl_context = ssl_context
        self._stats = _Stats()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fault-{mode}", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._stop: asyncio.Event | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Future[None]] = set()
        self.port = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FaultServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        return self

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        assert self._stop is not None
        # end every handler by its own path (no cancelling: 3.11's start_server logs cancelled handlers)
        self._stop.set()
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- what it saw

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/handler"

    @property
    def connections(self) -> int:
        with self._lock:
            return self._stats.connections

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._stats.requests)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._stats.max_in_flight

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return self._stats.bytes_sent

    # ---------------------------------------------------------------- the server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._handlers.add(done)
        self._writers.add(writer)
        with self._lock:
            self._stats.connections += 1
            connection = self._stats.connections
        on_connection = 0
        try:
            while True:
                request = await _read_request(reader, connection)
                if request is None:
                    return
                on_connection += 1
                with self._lock:
                    self._stats.requests.append(request)
                    in_all = len(self._stats.requests)
                    self._stats.in_flight += 1
                    self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)
                if not await self._respond(writer, on_connection, in_all):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            with self._lock:
                self._stats.client_gone += 1
        finally:
            self._writers.discard(writer)
            writer.close()
            done.set_result(None)
            self._handlers.discard(done)

    def _answered(self) -> None:
        # counted before the answer is written: the client may send its next request as soon as it reads it
        with self._lock:
            self._stats.in_flight -= 1

    def _sent(self, count: int) -> None:
        with self._lock:
            self._stats.bytes_sent += count

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self._sent(len(data))

    def _head(self, status: int, length: int) -> bytes:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {length}"]
        lines += [f"{k}: {v}" for k, v in self.extra_headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _respond(self, writer: asyncio.StreamWriter, on_connection: int, in_all: int) -> bool:
        """Answer one request (the ``on_connection``-th of its connection, ``in_all``-th of the server) as the
        mode says; False when the connection must end."""
        assert self._stop is not None
        mode = self.mode
        if mode == "cut-second":
            mode = "ok" if on_connection == 1 else "cut"
        elif mode == "first-only":
            mode = "ok" if in_all == 1 else "close"
        if mode == "gate":
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            if len(self._waiting) >= self.gate:
                for w in self._waiting:
                    w.set_result(None)
                self._waiting.clear()
            await waiter
        if mode in ("ok", "once", "gate"):
            self._answered()
            await self._write(writer, self._head(self.status, len(self.body)) + self.body)
            # `once`: a complete answer, then FIN; the client learns of the close only by reading it
            return mode != "once"
        if mode == "hang":
            await self._stop.wait()
            return False
        self._answered()
        if mode == "close":
            return False
        if mode == "cut":
            await self._write(writer, b"HTTP/1.1 2")
            return False
        if mode == "garbage":
            await self._write(writer, b"this is not HTTP at all\r\n\r\n")
            return False
        if mode == "reset":
            await self._write(writer, self._head(200, 1000) + b"partial")
            sock = writer.get_extra_info("socket")
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if mode == "huge":
            await self._write(writer, self._head(200, HUGE_BYTES))
            sent = 0
            while sent < HUGE_BYTES and not self._stop.is_set():
                await self._write(writer, _CHUNK)
                sent += len(_CHUNK)
            return False
        # drip: the fault is the rate itself, so the server (not the test) paces it
        await self._write(writer, self._head(200, 1000))
        for _ in range(1000):
            await self._write(writer, b"d")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.drip_interval)
            if self._stop.is_set():
                break
        return False


async def _read_request(reader: asyncio.StreamReader, connection: int) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None  # the client closed an idle keep-alive connection
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = await reader.readexactly(length) if length else b""
    return RecordedRequest(method, path, headers, body, connection)


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections for as long as the context lasts.

    The socket is bound (so no other process can take the port) but never listens, so the kernel answers every
    connection attempt with RST: a refused connection, without the race of closing a port and hoping.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
