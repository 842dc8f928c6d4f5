"""The cloud portal's two REST limits, as units the REST layer calls around each method.

**Request rate** (https://apidocs.bitrix24.com/settings/performance/limits.html): a leaky bucket per portal.
Every HTTP request adds one to a counter that drains by Y per second; a request arriving while the counter is
at X is refused with HTTP 503 ``QUERY_LIMIT_EXCEEDED``. X and Y depend on the plan: Enterprise
X = 250, Y = 5/s; every other plan X = 50, Y = 2/s. A ``batch`` is one request.

**Method time** (same page, and the ``time`` object in
https://apidocs.bitrix24.com/api-reference/data-types.html): the portal adds up how long each method ran, for
each application and webhook apart (https://apidocs.bitrix24.com/settings/performance/index.html), over the
last 10 minutes; past 480 seconds the method answers HTTP 429 ``OPERATION_TIME_LIMIT`` while other methods go
on working. ``time.operating`` is that running sum, ``time.operating_reset_at`` the moment part of it is
released.

Both take ``now`` (the portal clock), so tests drive them by advancing the clock, never by sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mock_portal.errors import UsageError
from mock_portal.restkit.errors import RestError

__all__ = [
    "DEFAULT_PLAN",
    "OPERATING_LIMIT",
    "OPERATING_WINDOW",
    "PLANS",
    "MethodBudget",
    "Plan",
    "RateLimiter",
    "time_block",
]

OPERATING_LIMIT = 480.0
"""Seconds of accumulated execution time a method may use within :data:`OPERATING_WINDOW`."""
OPERATING_WINDOW = 600.0
"""The window (10 minutes) over which a method's execution time is summed."""


@dataclass(frozen=True)
class Plan:
    """A plan's request rate: refuse when the counter is at ``burst`` (X); it drains ``drain``/s (Y)."""

    name: str
    burst: int
    drain: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.drain <= 0:
            raise UsageError(
                f"plan {self.name!r}: burst must be >= 1 and drain > 0, got {self.burst}/{self.drain}"
            )


PLANS: Mapping[str, Plan] = {
    "standard": Plan("standard", burst=50, drain=2.0),
    "enterprise": Plan("enterprise", burst=250, drain=5.0),
}
"""The documented plans: Enterprise and every other (``standard``)."""
DEFAULT_PLAN = "standard"

Now = Callable[[], float]


def _plan(plan: Plan | str) -> Plan:
    if isinstance(plan, Plan):
        return plan
    found = PLANS.get(plan)
    if found is None:
        raise UsageError(
            f"unknown plan {plan!r} (known: {', '.join(PLANS)}); or pass a Plan(name, burst, drain)"
        )
    return found


class RateLimiter:
    """A leaky bucket per key (a portal's domain): :meth:`hit` once per HTTP request, before running it.

    Refused requests do not fill the bucket further. ``enabled=False`` lets everything through (and still
    tracks nothing), for runs that want no limit.
    """

    def __init__(self, plan: Plan | str = DEFAULT_PLAN, *, now: Now, enabled: bool = True) -> None:
        self.plan = _plan(plan)
        self.enabled = enabled
        self._now = now
        self._plans: dict[str, Plan] = {}
        self._state: dict[str, tuple[float, float]] = {}  # key -> (level, at)
        self._lock = threading.Lock()

    def set_plan(self, key: str, plan: Plan | str) -> None:
        """Give ``key`` its own plan (the others keep the limiter's)."""
        with self._lock:
            self._plans[key] = _plan(plan)

    def plan_of(self, key: str) -> Plan:
        """The plan that applies to ``key``."""
        return self._plans.get(key, self.plan)

    def _drained(self, key: str, now: float) -> float:
        level, at = self._state.get(key, (0.0, now))
        return max(0.0, level - self.plan_of(key).drain * max(0.0, now - at))

    def level(self, key: str) -> float:
        """The bucket's counter for ``key`` now."""
        with self._lock:
            return self._drained(key, self._now())

    def hit(self, key: str) -> None:
        """Count one request for ``key``; raise :class:`RestError` (503 ``QUERY_LIMIT_EXCEEDED``) if full."""
        if not self.enabled:
            return
        with self._lock:
            now = self._now()
            level = self._drained(key, now)
            if level + 1 > self.plan_of(key).burst:
                self._state[key] = (level, now)
                raise RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
            self._state[key] = (level + 1, now)

    def reset(self, key: str | None = None) -> None:
        """Empty one bucket, or all of them."""
        with self._lock:
            if key is None:
                self._state.clear()
            else:
                self._state.pop(key, None)


def time_block(
    start: float, finish: float, *, operating: float = 0.0, reset_at: float | None = None
) -> dict[str, Any]:
    """The ``time`` object of a REST answer (https://apidocs.bitrix24.com/api-reference/data-types.html)."""

    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")

    return {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": finish - start,
        "date_start": iso(start),
        "date_finish": iso(finish),
        "operating_reset_at": int(reset_at if reset_at is not None else start + OPERATING_WINDOW),
        "operating": round(operating, 6),
    }


class MethodBudget:
    """Each method's execution time per key (an application or a webhook), summed over a sliding window.

    The REST layer calls :meth:`check` before running a method and :meth:`charge` (or :meth:`measure`, which
    also builds the ``time`` block) after it. The mock's methods take next to no time, so ``costs`` says how
    many seconds a method is taken to run (``{"crm.deal.list": 20.0}``), and tests may :meth:`charge`
    directly.
    """

    def __init__(
        self,
        *,
        now: Now,
        limit: float = OPERATING_LIMIT,
        window: float = OPERATING_WINDOW,
        costs: Mapping[str, float] | None = None,
        enabled: bool = True,
    ) -> None:
        if limit <= 0 or window <= 0:
            raise UsageError(f"the method time budget needs limit > 0 and window > 0, got {limit}/{window}")
        self.limit = float(limit)
        self.window = float(window)
        self.costs = dict(costs or {})
        self.enabled = enabled
        self._now = now
        self._spent: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def _entries(self, key: str, method: str, now: float) -> deque[tuple[float, float]]:
        entries = self._spent.setdefault((key, method), deque())
        while entries and entries[0][0] <= now - self.window:
            entries.popleft()
        return entries

    def operating(self, key: str, method: str) -> float:
        """Seconds ``method`` ran for ``key`` within the window."""
        with self._lock:
            return sum(seconds for _, seconds in self._entries(key, method, self._now()))

    def reset_at(self, key: str, method: str) -> float:
        """When the oldest charge leaves the window (now + window when nothing is charged)."""
        with self._lock:
            now = self._now()
            entries = self._entries(key, method, now)
            return (entries[0][0] if entries else now) + self.window

    def check(self, key: str, method: str) -> None:
        """Raise :class:`RestError` (429 ``OPERATION_TIME_LIMIT``) when ``method`` has spent its budget."""
        if not self.enabled:
            return
        if self.operating(key, method) >= self.limit:
            raise RestError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)

    def charge(self, key: str, method: str, seconds: float) -> None:
        """Add ``seconds`` of execution time to ``method`` for ``key``, at the current time."""
        if seconds < 0:
            raise UsageError(f"a method cannot run for {seconds} seconds")
        with self._lock:
            now = self._now()
            self._entries(key, method, now).append((now, float(seconds)))

    def measure(self, key: str, method: str, start: float, finish: float) -> dict[str, Any]:
        """Charge one run of ``method`` (its cost, or ``finish - start``) and return the ``time`` block."""
        self.charge(key, method, max(finish - start, self.costs.get(method, 0.0)))
        return time_block(
            start, finish, operating=self.operating(key, method), reset_at=self.reset_at(key, method)
        )

    def reset(self) -> None:
        """Forget every charge."""
        with self._lock:
            self._spent.clear()
