"""The load emitter: event bodies POSTed over keep-alive HTTP/1.1 at a target rate, latencies recorded.

:mod:`mock_portal.delivery` records every attempt in full (headers, excerpts, outcomes) for contract checks;
this module is its lean sibling for load, where the numbers that matter are throughput and latency. It speaks
HTTP/1.1 itself over asyncio protocols (no client library in the hot path): each of ``connections`` workers
keeps one connection open, sends one request, reads one response, and so on, never pipelining (a Bitrix24
queue server sends one POST per event, facts §1). Requests carry the same headers delivery sends:
``Host``, ``User-Agent``, ``Content-Type`` and ``Content-Length``.

``rate`` paces the start of requests (open loop: request ``i`` is due at ``start + i / rate``); a late
schedule is not made up for by bursts beyond the connection count. Latency runs from writing the request to
reading the last byte of the response. Failures (refused, reset, timeout, non-2xx) are counted, never raised.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from mock_portal import __version__
from mock_portal.errors import UsageError

__all__ = ["LoadResult", "Progress", "run_load", "run_load_async"]

_CONTENT_TYPE: Final = b"application/x-www-form-urlencoded"
_MAX_HEAD_BYTES: Final = 64 * 1024
_MAX_CONNECTIONS: Final = 10_000


@dataclass
class Progress:
    """A snapshot handed to the progress callback about ten times a second."""

    elapsed: float
    sent: int
    ok: int
    failed: int


@dataclass
class LoadResult:
    """What a run did: counts, outcomes, elapsed time and every latency (seconds, in completion order)."""

    url: str
    sent: int = 0
    ok: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    statuses: Counter[str] = field(default_factory=Counter)
    """``"200"``, ``"500"``... for answers; ``"refused"``, ``"reset"``, ``"timeout"`` for failures."""

    @property
    def throughput(self) -> float:
        """Completed requests per second (answered or failed)."""
        return (self.ok + self.failed) / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the latencies in seconds, nearest-rank; NaN if none."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]

    def summary(self) -> dict[str, float | int | str | dict[str, int]]:
        """A JSON-ready summary: counts, throughput and latency percentiles in milliseconds."""
        return {
            "url": self.url,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed, 3),
            "throughput_rps": round(self.throughput, 1),
            **{f"p{q}_ms": round(self.percentile(q) * 1000, 3) for q in (50, 90, 99)},
            "max_ms": round(max(self.latencies, default=math.nan) * 1000, 3),
            "statuses": dict(sorted(self.statuses.items())),
        }


class _ResponseError(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: :meth:`exchange` writes a request and awaits its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.keep_alive = True
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(_ResponseError("reset"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            status = self._parse()
        except _ResponseError as exc:
            waiter.set_exception(exc)
            return
        if status is not None:
            waiter.set_result(status)

    def _parse(self) -> int | None:
        """The status of a complete response at the start of the buffer (consumed), or None if partial."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise _ResponseError("reset")
            return None
        head = bytes(buffer[:end]).split(b"\r\n")
        parts = head[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise _ResponseError("reset")
        status = int(parts[1])
        length = 0
        chunked = False
        self.keep_alive = parts[0] != b"HTTP/1.0"
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip() or b"0")
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection":
                self.keep_alive = b"close" not in value.lower()
        start = end + 4
        if chunked:
            consumed = _chunked_end(buffer, start)
            if consumed is None:
                return None
            del buffer[:consumed]
            return status
        if status in (204, 304) or 100 <= status < 200:
            length = 0
        if len(buffer) < start + length:
            return None
        del buffer[: start + length]
        return status

    async def exchange(self, request: bytes, sent_at: float) -> int:
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.sent_at = sent_at
        assert self.transport is not None
        self.transport.write(request)
        status: int = await waiter
        return status

    def expire(self, now: float, timeout: float) -> None:
        """Fail the pending exchange if it has waited longer than ``timeout`` (called by the watchdog)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done() and now - self.sent_at > timeout:
            waiter.set_exception(_ResponseError("timeout"))
            if self.transport is not None:
                self.transport.close()


def _chunked_end(buffer: bytearray, position: int) -> int | None:
    """The offset just past a complete chunked body starting at ``position``, or None if incomplete."""
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = bytes(buffer[position:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _ResponseError("reset") from None
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", position)
            return None if trailer_end < 0 else trailer_end + 2
        if len(buffer) < position + size + 2:
            return None
        position += size + 2


def _split_url(url: str) -> tuple[str, int, str, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"--to must be an http:// URL with a host, not {url!r} (https is not supported)")
    try:
        port = parts.port or 80
    except ValueError:
        raise UsageError(f"--to has a bad port: {url!r}") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rpartition("@")[2].encode("idna")
    return parts.hostname, port, path, host_header


def _request_head(path: str, host: bytes, user_agent: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: ".encode()
        + host
        + f"\r\nUser-Agent: {user_agent}\r\nContent-Type: ".encode()
        + _CONTENT_TYPE
        + b"\r\nContent-Length: "
    )


async def run_load_async(
    url: str,
    bodies: Iterable[bytes | str],
    *,
    rate: float | None = None,
    duration: float | None = None,
    count: int | None = None,
    connections: int = 16,
    timeout: float = 10.0,
    user_agent: str = f"b24-contract-mock-portal/{__version__}",
    progress: Callable[[Progress], None] | None = None,
) -> LoadResult:
    """POST ``bodies`` to ``url`` until ``duration`` seconds pass, ``count`` requests are sent or the bodies
    run out, at ``rate`` requests/s (None: as fast as the handler answers), over ``connections`` keep-alive
    connections. Bad arguments raise :class:`~mock_portal.errors.UsageError`; handler failures are counted.
    """
    host, port, path, host_header = _split_url(url)
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise UsageError(f"rate must be a positive number of requests per second, not {rate!r}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise UsageError(f"duration must be a positive number of seconds, not {duration!r}")
    if count is not None and count < 0:
        raise UsageError(f"count must not be negative, not {count!r}")
    if not 1 <= connections <= _MAX_CONNECTIONS:
        raise UsageError(f"connections must be from 1 to {_MAX_CONNECTIONS}, not {connections!r}")
    if not timeout > 0:
        raise UsageError(f"timeout must be positive, not {timeout!r}")
    if duration is None and count is None:
        raise UsageError("give a duration or a count, or the run would never end")

    head = _request_head(path, host_header, user_agent)
    source: Iterator[bytes | str] = iter(bodies)
    result = LoadResult(url=url)
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    started = clock()
    deadline = started + duration if duration is not None else math.inf
    interval = 1.0 / rate if rate is not None else 0.0
    tickets = itertools.count()
    latencies = result.latencies
    statuses = result.statuses

    def next_request() -> bytes | None:
        if count is not None and result.sent >= count:
            return None
        try:
            body = next(source)
        except StopIteration:
            return None
        data = body.encode("utf-8") if isinstance(body, str) else body
        result.sent += 1
        return head + str(len(data)).encode() + b"\r\n\r\n" + data

    open_connections: set[_Connection] = set()

    async def connect() -> _Connection:
        _, protocol = await loop.create_connection(_Connection, host, port)
        open_connections.add(protocol)
        return protocol

    async def watchdog() -> None:
        while True:
            await asyncio.sleep(min(timeout / 4, 0.1))
            now = clock()
            for connection in list(open_connections):
                if connection.closed:
                    open_connections.discard(connection)
                else:
                    connection.expire(now, timeout)

    async def worker() -> None:
        connection: _Connection | None = None
        while True:
            now = clock()
            if now >= deadline:
                break
            if interval:
                due = started + next(tickets) * interval
                if due >= deadline:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
            request = next_request()
            if request is None:
                break
            try:
                if connection is None or connection.closed:
                    connection = await asyncio.wait_for(connect(), timeout)
                sent_at = clock()
                # no wait_for here: a task per request would halve the rate; the watchdog enforces timeouts
                status = await connection.exchange(request, sent_at)
                latencies.append(clock() - sent_at)
            except (ConnectionRefusedError, OSError) as exc:
                result.failed += 1
                statuses["refused" if isinstance(exc, ConnectionRefusedError) else "reset"] += 1
                _drop(connection)
                connection = None
                continue
            except _ResponseError as exc:
                result.failed += 1
                statuses[str(exc)] += 1  # "reset" or "timeout"
                _drop(connection)
                connection = None
                continue
            except asyncio.TimeoutError:
                result.failed += 1
                statuses["timeout"] += 1
                _drop(connection)
                connection = None
                continue
            statuses[str(status)] += 1
            if 200 <= status < 300:
                result.ok += 1
            else:
                result.failed += 1
            if not connection.keep_alive:
                _drop(connection)
                connection = None
        _drop(connection)

    async def reporter() -> None:
        assert progress is not None
        while True:
            await asyncio.sleep(0.1)
            progress(Progress(clock() - started, result.sent, result.ok, result.failed))

    workers = [asyncio.ensure_future(worker()) for _ in range(connections)]
    helpers = [asyncio.ensure_future(watchdog())]
    if progress is not None:
        helpers.append(asyncio.ensure_future(reporter()))
    try:
        await asyncio.gather(*workers)
    finally:
        for task in (*workers, *helpers):
            task.cancel()
        for connection in open_connections:
            _drop(connection)
    result.elapsed = clock() - started
    if progress is not None:
        progress(Progress(result.elapsed, result.sent, result.ok, result.failed))
    return result


def _drop(connection: _Connection | None) -> None:
    if connection is not None and connection.transport is not None:
        connection.transport.close()


def run_load(url: str, bodies: Iterable[bytes | str], **options: object) -> LoadResult:
    """Synchronous :func:`run_load_async` (runs its own event loop); same arguments."""
    return asyncio.run(run_load_async(url, bodies, **options))  # type: ignore[arg-type]
