"""The engine of :mod:`mock_portal.loadgen`: slots, connections, pacing and tallies (see that module)."""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final
from urllib.parse import urlsplit

from mock_portal._http1 import BadResponse, RequestHeads, ResponseReader
from mock_portal.errors import UsageError
from mock_portal.loadgen import LoadResult, Progress, RequestRecord

__all__ = ["Sender"]

_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_MAX_RESPONSE_BYTES: Final = 1024 * 1024
_PROGRESS_SECONDS: Final = 0.1
_CLOSE_SECONDS: Final = 1.0
_READ_BYTES: Final = 64 * 1024


class _Request:
    __slots__ = ("index", "intended", "retried", "started", "wire")

    def __init__(self, index: int, wire: bytes, intended: float) -> None:
        self.index = index
        self.wire = wire
        self.intended = intended
        self.started = 0.0
        self.retried = False


class _Conn(asyncio.BufferedProtocol):
    """One TCP (or TLS) connection of a slot; events of a connection the slot has left are ignored.

    A buffered protocol: asyncio's own loop reads plain protocols with ``recv(256 KiB)``, allocating that much
    for every answer of a few dozen bytes, which costs more than all the rest of a request. Here the bytes are
    read into one buffer the sender's connections share (each read is handled before the next) and copied
    out at their size.
    """

    __slots__ = ("buffer", "gone", "lost", "slot", "transport")

    def __init__(self, slot: _Slot) -> None:
        self.slot = slot
        self.buffer = slot.sender.buffer
        self.transport: Any = None
        self.lost = False
        self.gone: asyncio.Future[None] = slot.sender.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        slot = self.slot
        if slot.conn is self:
            slot.received(self.buffer[:nbytes].tobytes())

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.gone.done():
            self.gone.set_result(None)
        slot = self.slot
        slot.sender.closing.discard(self)
        if slot.conn is self:
            slot.lost(exc)


class _Slot:
    """One of the ``connections`` lanes: at most one connection and one request in flight at a time."""

    __slots__ = ("conn", "connecting", "reader", "req", "sender", "served", "written")

    def __init__(self, sender: Sender, known: dict[bytes, tuple[int, bool, int]]) -> None:
        self.sender = sender
        self.conn: _Conn | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.reader = ResponseReader(_MAX_RESPONSE_BYTES, known)
        self.req: _Request | None = None
        self.served = 0  # answers completed on the current connection
        self.written = False

    def start(self, req: _Request, now: float) -> None:
        if not req.started:
            req.started = now
        self.req = req
        self.reader.reset()
        conn = self.conn
        if conn is not None:
            self.written = True
            conn.transport.write(req.wire)
        else:
            self.written = False
            self.connecting = self.sender.loop.create_task(self._connect(req))

    def _new_conn(self) -> _Conn:
        conn = _Conn(self)
        self.conn = conn
        self.served = 0
        return conn

    async def _connect(self, req: _Request) -> None:
        sender = self.sender
        try:
            await sender.loop.create_connection(
                self._new_conn,
                sender.host,
                sender.port,
                ssl=sender.ssl_context,
                server_hostname=sender.server_hostname,
            )
        except OSError as exc:  # refused, unreachable, unresolvable, TLS handshake failed
            if self.req is req:
                self.connecting = None
                self.conn = None
                detail = exc.strerror or str(exc) or type(exc).__name__
                sender.failed(self, "refused", f"could not connect: {detail}")
            return
        if self.req is not req:  # timed out (and cancelled) while connecting: already recorded
            return
        self.connecting = None
        conn = self.conn
        if conn is None or conn.lost:  # closed by the handler before the request was written
            self.conn = None
            sender.failed(self, "reset", "the handler closed a fresh connection before the request was sent")
            return
        self.written = True
        conn.transport.write(req.wire)

    def received(self, data: bytes) -> None:
        reader = self.reader
        if self.req is None:  # bytes nobody asked for: this connection is not to be trusted again
            self._drop()
            return
        try:
            complete = reader.feed(data)
        except BadResponse as exc:
            self._drop()
            self.sender.failed(self, "reset", f"the handler sent an invalid HTTP response: {exc}")
            return
        if complete:
            self.served += 1
            if not reader.keep_alive:
                self._drop(abort=False)
            self.sender.answered(self, reader.status)

    def lost(self, exc: Exception | None) -> None:
        self.conn = None
        req = self.req
        if req is None or not self.written:
            return  # an idle connection closed; the next request opens a fresh one
        reader = self.reader
        if reader.started:
            if reader.eof():
                self.served += 1
                self.sender.answered(self, reader.status)
                return
            why = f" ({exc})" if exc else ""
            self.sender.failed(self, "reset", f"the handler closed the connection mid-response{why}")
        elif self.served and not req.retried:
            # the kept-alive connection was closed by the server before a byte of this answer: the request
            # may never have been read. Once, on a fresh connection; the record says so.
            req.retried = True
            self.sender.retried += 1
            self.start(req, time.perf_counter())
        else:
            why = f" ({exc})" if exc else ""
            self.sender.failed(self, "reset", f"the handler closed the connection without a response{why}")

    def expire(self, seconds: float) -> None:
        status = self.reader.status if self.reader.status >= 200 else None
        self._drop()
        if self.connecting is not None:
            task, self.connecting = self.connecting, None
            task.cancel()
        if status is None:
            error = f"no response within the {seconds:g} s timeout"
        else:
            error = f"the response did not complete within the {seconds:g} s timeout"
        self.sender.failed(self, "timeout", error, status)

    def _drop(self, abort: bool = True) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and conn.transport is not None and not conn.lost:
            self.sender.closing.add(conn)
            if abort:
                conn.transport.abort()
            else:
                conn.transport.close()

    def close(self) -> None:
        self.req = None
        self._drop(abort=False)
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None


class Sender:
    """One run: the slots, the body source, the pacing, the tallies."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        url: str,
        bodies: Iterable[bytes | str],
        *,
        rate: float | None,
        duration: float | None,
        count: int | None,
        connections: int,
        timeout: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None,
        on_record: Callable[[RequestRecord], None] | None,
    ) -> None:
        parts = urlsplit(url)
        self.loop = loop
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl_context: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        if parts.scheme == "https":
            self.ssl_context = ssl_context or ssl.create_default_context()
            self.server_hostname = self.host
        self.heads = RequestHeads(url, user_agent=user_agent, content_type=_CONTENT_TYPE)
        self.source: Iterator[bytes | str] = iter(bodies)
        self.left = count if count is not None else -1
        self.duration = duration
        self.rate = rate
        self.timeout = timeout
        self.on_record = on_record
        self.result = LoadResult(url=url, rate=rate)
        self.latencies = self.result.latencies
        known: dict[bytes, tuple[int, bool, int]] = {}
        self.slots = [_Slot(self, known) for _ in range(connections)]
        self.idle: list[_Slot] = []
        self.pending: deque[_Request] = deque()
        self.index = 0
        self.sent = 0
        self.unsent = 0
        self.exhausted = False
        self.retried = 0
        self.error: BaseException | None = None
        # answers by status, failures by outcome: ok and failed are summed from it when asked
        self.codes: dict[int | str, int] = {}
        self.t0 = 0.0
        self.deadline = math.inf
        self.done: asyncio.Future[None] = loop.create_future()
        self.timers: list[asyncio.TimerHandle] = []
        self.closing: set[_Conn] = set()  # closed by us, not yet gone
        self.buffer = memoryview(bytearray(_READ_BYTES))
        self._last_body: object = None
        self._last_wire = b""

    # ---------------------------------------------------------------- requests

    def _new_request(self, intended: float) -> _Request | None:
        if self.exhausted:
            return None
        if self.left == 0:
            self.exhausted = True
            return None
        try:
            body: object = next(self.source)
        except StopIteration:
            self.exhausted = True
            return None
        except Exception as exc:  # the body source failed: stop, and let the caller see why
            self.error = exc
            self.exhausted = True
            return None
        self.left -= 1
        if body is self._last_body:  # the same body again (a benchmark's repeat): the same request
            wire = self._last_wire
        else:
            if isinstance(body, str):
                data = body.encode("utf-8")
            elif isinstance(body, bytes):
                data = body
            elif isinstance(body, (bytearray, memoryview)):
                data = bytes(body)
            else:
                self.error = UsageError(f"bodies must be bytes or str, not {type(body).__name__}")
                self.exhausted = True
                return None
            wire = self.heads.wire(data)
            self._last_body, self._last_wire = body, wire
        req = _Request(self.index, wire, intended)
        self.index += 1
        return req

    def _launch(self, slot: _Slot, req: _Request, now: float) -> None:
        self.sent += 1
        slot.start(req, now)

    # ---------------------------------------------------------------- endings

    def answered(self, slot: _Slot, status: int) -> None:
        now = time.perf_counter()
        req = slot.req
        assert req is not None
        slot.req = None
        latency = now - req.intended
        self.latencies.append(latency)
        codes = self.codes
        codes[status] = codes.get(status, 0) + 1
        if self.on_record is not None:
            outcome = "ok" if 200 <= status < 300 else "http_error"
            self.on_record(RequestRecord(req.index, outcome, status, latency, None, req.retried))
        if self.rate is None and now < self.deadline:  # as fast as answered: the next one at once
            nxt = self._new_request(now)
            if nxt is not None:
                self.sent += 1
                slot.start(nxt, now)
                return
        self._next(slot, now)

    def failed(self, slot: _Slot, outcome: str, error: str, status: int | None = None) -> None:
        now = time.perf_counter()
        req = slot.req
        assert req is not None
        slot.req = None
        self.codes[outcome] = self.codes.get(outcome, 0) + 1
        if self.on_record is not None:
            self.on_record(RequestRecord(req.index, outcome, status, now - req.intended, error, req.retried))
        self._next(slot, now)

    def _next(self, slot: _Slot, now: float) -> None:
        if self.rate is None:
            req = self._new_request(now) if now < self.deadline else None
            if req is None:
                self.exhausted = True
        else:
            req = self.pending.popleft() if self.pending else None
        if req is not None:
            self._launch(slot, req, now)
            return
        self.idle.append(slot)
        self._check_done()

    def _check_done(self) -> None:
        if self.exhausted and not self.pending and len(self.idle) == len(self.slots) and not self.done.done():
            self.done.set_result(None)

    def tally(self) -> tuple[int, int]:
        """``(ok, failed)`` so far."""
        ok = sum(n for code, n in self.codes.items() if isinstance(code, int) and 200 <= code < 300)
        return ok, sum(self.codes.values()) - ok

    # ---------------------------------------------------------------- pacing and timeouts

    def _tick(self) -> None:
        """Rate mode: hand each request now due to a free connection (or queue it), then wait for the next."""
        now = time.perf_counter()
        rate = self.rate
        assert rate is not None
        while not self.exhausted:
            due = self.t0 + self.index / rate
            if due > now:
                self.timers.append(self.loop.call_later(due - now, self._tick))
                return
            if due >= self.deadline:
                self.exhausted = True
                break
            req = self._new_request(due)
            if req is None:
                break
            if self.idle:
                self._launch(self.idle.pop(), req, now)
            else:
                self.pending.append(req)
        self._check_done()

    def _unsend(self, req: _Request) -> None:
        self.unsent += 1
        self.codes["unsent"] = self.codes.get("unsent", 0) + 1
        if self.on_record is not None:
            error = f"not sent within the {self.timeout:g} s timeout: every connection stayed busy"
            self.on_record(RequestRecord(req.index, "unsent", None, math.nan, error, False))

    def _sweep(self) -> None:
        limit = time.perf_counter() - self.timeout
        for slot in self.slots:
            req = slot.req
            if req is not None and req.started < limit:
                slot.expire(self.timeout)
        pending = self.pending
        if pending and pending[0].intended < limit:  # due a timeout ago, still no free connection
            while pending and pending[0].intended < limit:
                self._unsend(pending.popleft())
            self._check_done()
        self.timers.append(self.loop.call_later(min(0.05, self.timeout / 4), self._sweep))

    # ---------------------------------------------------------------- the run

    async def run(self, progress: Callable[[Progress], None] | None) -> LoadResult:
        self.t0 = time.perf_counter()
        if self.duration is not None:
            self.deadline = self.t0 + self.duration
        self.timers.append(self.loop.call_later(min(0.05, self.timeout / 4), self._sweep))
        if progress is not None:
            self._report(progress)
        if self.rate is not None:
            self.idle = list(self.slots)
            self._tick()
        else:
            for slot in self.slots:
                req = self._new_request(self.t0)
                if req is None:
                    self.idle.append(slot)
                else:
                    self._launch(slot, req, self.t0)
            self._check_done()
        try:
            await self.done
        finally:
            for timer in self.timers:
                timer.cancel()
            tasks = [s.connecting for s in self.slots if s.connecting is not None]
            for slot in self.slots:
                slot.close()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await self._closed()
        result = self.result
        result.elapsed = time.perf_counter() - self.t0
        result.sent = self.sent
        result.ok, result.failed = self.tally()
        result.retried = self.retried
        result.unsent = self.unsent
        result.statuses = Counter({str(k): v for k, v in self.codes.items()})
        if self.error is not None:
            raise self.error
        if progress is not None:
            progress(Progress(result.elapsed, result.sent, result.ok, result.failed))
        return result

    async def _closed(self) -> None:
        """Wait until every connection is gone (a TLS one says goodbye first), then abort what lingers."""
        closing = list(self.closing)
        if not closing:
            return
        await asyncio.wait([c.gone for c in closing], timeout=_CLOSE_SECONDS)
        lingering = [c for c in closing if not c.lost]
        for conn in lingering:
            conn.transport.abort()
        if lingering:
            await asyncio.wait([c.gone for c in lingering], timeout=_CLOSE_SECONDS)

    def _report(self, progress: Callable[[Progress], None]) -> None:
        ok, failed = self.tally()
        progress(Progress(time.perf_counter() - self.t0, self.sent, ok, failed))
        self.timers.append(self.loop.call_later(_PROGRESS_SECONDS, self._report, progress))
