"""The load emitter: event bodies POSTed over keep-alive HTTP/1.1 at a target rate, latencies recorded.

:mod:`mock_portal.delivery` records every attempt in full (headers, excerpts, outcomes) for contract checks;
this module is its lean sibling for load, where the numbers that matter are throughput and latency. The HTTP
is aiohttp's, configured as delivery configures it (one session, a keep-alive connection pool, only the
headers we set, no decompression, no cookies, no proxies from the environment): each of ``connections``
workers sends one request, reads its response, and sends the next, never pipelining (a Bitrix24 queue server
sends one POST per event, facts §1), so at most ``connections`` requests are in flight and the pool keeps as
many connections open. Requests carry the headers delivery sends: ``Host``, ``User-Agent``, ``Content-Type``
and ``Content-Length``.

``rate`` paces the start of requests (open loop: request ``i`` is due at ``start + i / rate``); a late
schedule is not made up for by bursts beyond the connection count. Latency runs from handing the request to
aiohttp to reading the last byte of the response (so it includes connecting, when a connection has to be
opened). Failures (refused, reset, timeout, non-2xx) are counted, never raised; ``timeout`` bounds each
request as a whole, connecting included.
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

import aiohttp
from yarl import URL

from mock_portal import __version__
from mock_portal.errors import UsageError

__all__ = ["LoadResult", "Progress", "run_load", "run_load_async"]

_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_MAX_RESPONSE_BYTES: Final = 1024 * 1024
_KEEPALIVE_SECONDS: Final = 3.0
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


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"--to must be an http:// URL with a host, not {url!r} (https is not supported)")
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise UsageError(f"--to has a bad port: {url!r}") from None


def _failure_kind(exc: BaseException) -> str:
    """``refused``, ``timeout`` or ``reset`` for what a request raised (delivery classifies them alike)."""
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's connect and read timeouts subclass it
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "refused"
    return "reset"


async def _read_capped(response: aiohttp.ClientResponse) -> None:
    """Read the response body up to a cap; a longer one drops the connection instead of being read."""
    stream = response.content
    size = 0
    while not stream.at_eof():
        chunk = await stream.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > _MAX_RESPONSE_BYTES:
            response.close()
            break


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
    _check_url(url)
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
    if "\r" in user_agent or "\n" in user_agent:
        raise UsageError(f"user_agent must be one line, not {user_agent!r}")

    # built once: aiohttp adds Host and Content-Length itself; nothing else (skip_auto_headers below)
    headers = {"User-Agent": user_agent, "Content-Type": _CONTENT_TYPE}
    target = URL(url)
    source: Iterator[bytes | str] = iter(bodies)
    result = LoadResult(url=url)
    clock = time.perf_counter
    started = clock()
    deadline = started + duration if duration is not None else math.inf
    interval = 1.0 / rate if rate is not None else 0.0
    tickets = itertools.count()
    latencies = result.latencies
    statuses = result.statuses

    def next_body() -> bytes | None:
        if count is not None and result.sent >= count:
            return None
        try:
            body = next(source)
        except StopIteration:
            return None
        result.sent += 1
        return body.encode("utf-8") if isinstance(body, str) else body

    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=0, keepalive_timeout=_KEEPALIVE_SECONDS
    )
    session = aiohttp.ClientSession(
        connector=connector,
        skip_auto_headers=("Accept", "Accept-Encoding"),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=timeout),
    )
    post = session.post

    async def worker() -> None:
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
            body = next_body()
            if body is None:
                break
            sent_at = clock()
            try:
                async with post(target, data=body, headers=headers, allow_redirects=False) as response:
                    status = response.status
                    await _read_capped(response)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                result.failed += 1
                statuses[_failure_kind(exc)] += 1
                continue
            latencies.append(clock() - sent_at)
            statuses[str(status)] += 1
            if 200 <= status < 300:
                result.ok += 1
            else:
                result.failed += 1

    async def reporter() -> None:
        assert progress is not None
        while True:
            await asyncio.sleep(0.1)
            progress(Progress(clock() - started, result.sent, result.ok, result.failed))

    workers = [asyncio.ensure_future(worker()) for _ in range(connections)]
    helpers = [asyncio.ensure_future(reporter())] if progress is not None else []
    try:
        await asyncio.gather(*workers)
    finally:
        for task in (*workers, *helpers):
            task.cancel()
        await session.close()
    result.elapsed = clock() - started
    if progress is not None:
        progress(Progress(result.elapsed, result.sent, result.ok, result.failed))
    return result


def run_load(url: str, bodies: Iterable[bytes | str], **options: object) -> LoadResult:
    """Synchronous :func:`run_load_async` (runs its own event loop); same arguments."""
    return asyncio.run(run_load_async(url, bodies, **options))  # type: ignore[arg-type]
