"""The lean emitter behind ``mock-portal emit`` and ``load``: event bodies POSTed over keep-alive HTTP/1.1.

:mod:`mock_portal.delivery` records every attempt in full for contract checks and opens a fresh connection
per event, as the portal does; this module is its lean sibling for throughput. It drives asyncio (or uvloop,
the ``fast`` extra) at the ``Protocol`` level: each request is its pre-encoded head
(:class:`~mock_portal._http1.RequestHeads`) and body written in one call, each answer is read by a minimal
parser (:class:`~mock_portal._http1.ResponseReader`), and the next request is written from the callback
that completed the last one, with no task or future per request. Each of ``connections`` connections carries
one request at a time, never pipelined (the portal sends one POST per event, facts §1).

Keep-alive, and a server that closes. HTTP/1.1 lets a server close a kept-alive connection after any answer,
without saying ``Connection: close``; a request written before that close is seen is lost without a byte of
answer. Such a request, and only such a one (the connection had already carried an answer, and not one byte
of this request's answer arrived), is sent once more on a fresh connection, and its record says so
(``retried``). A failure on a fresh connection, or after a byte of the answer, is the handler's: ``refused``
(no connection could be made), ``reset`` (closed or reset without a complete, valid answer), ``timeout``.

Timing, an open model. With ``rate``, request ``i`` is due at ``start + i / rate`` whatever happened to the
earlier ones; a request due while every connection is busy waits for the first free one, and its latency runs
from the moment it was due (its intended start), so a slow handler cannot hide its latency by slowing the
sender down. Every request due before ``duration`` ends is sent, however late, except one still waiting for a
connection ``timeout`` seconds after it was due: that one is counted as ``unsent`` (the handler did not keep
up with the rate), and the run ends when the last request sent is answered. Without ``rate``, each connection
sends its next request as soon as the last is answered, and latency runs from that moment. Latency ends at
the last byte of the answer. ``timeout`` bounds each request from its first connect or write to its last
byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from mock_portal import __version__
from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

__all__ = ["EVENT_LOOPS", "LoadResult", "Progress", "RequestRecord", "run_load", "run_load_async"]

EVENT_LOOPS: Final = ("auto", "asyncio", "uvloop")
"""``run_load(event_loop=...)``: ``auto`` takes uvloop when it is installed (the ``fast`` extra)."""

_MAX_CONNECTIONS: Final = 10_000


@dataclass
class Progress:
    """A snapshot handed to the progress callback about ten times a second."""

    elapsed: float
    sent: int
    ok: int
    failed: int


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """How one request ended (``run_load(on_record=...)``).

    ``index`` counts from 0 in the order the bodies were taken; ``outcome`` is ``ok`` (2xx), ``http_error``
    (any other status), ``timeout``, ``refused``, ``reset`` or ``unsent`` (with a rate: no connection was
    free within ``timeout`` of its intended start); ``latency`` is in seconds from the intended start (NaN
    when unsent); ``retried`` says the request was sent again on a fresh connection because the server had
    closed the kept-alive one before answering.
    """

    index: int
    outcome: str
    status: int | None
    latency: float
    error: str | None = None
    retried: bool = False


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
    """``"200"``, ``"500"``... for answers; ``"refused"``, ``"reset"``, ``"timeout"``, ``"unsent"`` else."""
    retried: int = 0
    """Requests sent again on a fresh connection after the server closed a kept-alive one unanswered."""
    unsent: int = 0
    """Requests still waiting for a free connection a ``timeout`` after they were due, never sent (counted in
    ``failed``): the handler did not keep up with the rate."""
    rate: float | None = None
    event_loop: str = ""

    @property
    def throughput(self) -> float:
        """Requests that ended (answered or failed, unsent ones aside) per second."""
        done = self.ok + self.failed - self.unsent
        return done / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the latencies in seconds, nearest-rank; NaN if none."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]

    def summary(self) -> dict[str, float | int | str | dict[str, int] | None]:
        """A JSON-ready summary: counts, throughput and latency percentiles in milliseconds."""
        ordered = sorted(self.latencies)

        def pick(q: float) -> float:
            if not ordered:
                return math.nan
            return ordered[min(max(1, math.ceil(q / 100 * len(ordered))), len(ordered)) - 1]

        return {
            "url": self.url,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "retried": self.retried,
            "unsent": self.unsent,
            "rate": self.rate,
            "elapsed_s": round(self.elapsed, 3),
            "throughput_rps": round(self.throughput, 1),
            **{f"p{q}_ms": round(pick(q) * 1000, 3) for q in (50, 90, 99)},
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else math.nan,
            "statuses": dict(sorted(self.statuses.items())),
            "event_loop": self.event_loop,
        }


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise UsageError(f"--to must be a URL string, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--to must be an http:// or https:// URL with a host, not {redact_text(url)!r}")
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise UsageError(f"--to has a bad port: {redact_text(url)!r}") from None
    return url


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
    ssl_context: ssl.SSLContext | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> LoadResult:
    """POST ``bodies`` to ``url`` until ``duration`` seconds pass, ``count`` requests are sent or the bodies
    run out, at ``rate`` requests/s (None: as fast as the handler answers), over at most ``connections``
    keep-alive connections, on the running event loop. ``on_record`` is called as each request ends.

    ``ssl_context`` replaces the default (verifying) one for ``https://``. Bad arguments raise
    :class:`~mock_portal.errors.UsageError`; handler failures are counted, never raised.
    """
    _check_url(url)
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise UsageError(f"rate must be a positive number of requests per second, not {rate!r}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise UsageError(f"duration must be a positive number of seconds, not {duration!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise UsageError(f"count must be a non-negative int, not {count!r}")
    if isinstance(connections, bool) or not isinstance(connections, int):
        raise UsageError(f"connections must be an int, not {connections!r}")
    if not 1 <= connections <= _MAX_CONNECTIONS:
        raise UsageError(f"connections must be from 1 to {_MAX_CONNECTIONS}, not {connections!r}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if duration is None and count is None:
        raise UsageError("give a duration or a count, or the run would never end")
    if not user_agent or any(c in user_agent for c in "\r\n"):
        raise UsageError(f"user_agent must be one non-empty line, not {user_agent!r}")
    from mock_portal._emitter import Sender

    loop = asyncio.get_running_loop()
    sender = Sender(
        loop,
        url,
        bodies,
        rate=rate,
        duration=duration,
        count=count,
        connections=connections,
        timeout=float(timeout),
        user_agent=user_agent,
        ssl_context=ssl_context,
        on_record=on_record,
    )
    sender.result.event_loop = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    return await sender.run(progress)


def _new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A new event loop of ``kind`` (see :data:`EVENT_LOOPS`); ``uvloop`` raises if it is not installed."""
    if kind not in EVENT_LOOPS:
        raise UsageError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {kind!r}")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise UsageError(
                    "the uvloop event loop needs uvloop: pip install 'b24-contract[fast]' "
                    "(it does not exist for Windows)"
                ) from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run_load(
    url: str, bodies: Iterable[bytes | str], *, event_loop: str = "auto", **options: Any
) -> LoadResult:
    """:func:`run_load_async` on a new event loop of its own (uvloop when installed, see
    :data:`EVENT_LOOPS`); the same arguments."""
    loop = _new_event_loop(event_loop)
    try:
        return loop.run_until_complete(run_load_async(url, bodies, **options))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
