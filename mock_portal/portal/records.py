"""What a portal keeps of its traffic: the REST calls it answered and the delivery attempts it made.

Kept together, behind one small class, so the record store can change without touching the rest of the
portal. Params, results and tokens are redacted when a call is recorded, once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.portal.model import Clock, RestCall, Token
from mock_portal.redact import redact

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, DeliveryLog

MAX_RECORDS_KEPT = 100_000
"""How many REST calls (and delivery attempts) a portal keeps in memory; the oldest go first."""


class Records:
    """The REST calls and delivery attempts of one portal, and waiting for them without sleeping.

    ``lock`` is the portal's; ``domain`` and ``tokens`` are read at each record (the call's portal and the
    serial number of the token it carried).
    """

    def __init__(
        self,
        lock: threading.RLock,
        clock: Clock,
        *,
        domain: Callable[[], str],
        tokens: Callable[[], Mapping[str, Token]],
        delivery_log: DeliveryLog | None = None,
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._domain = domain
        self._tokens = tokens
        self._calls_changed = threading.Condition(lock)
        self._deliveries_changed = threading.Condition(lock)
        self._delivery_log = delivery_log
        self.rest_calls: list[RestCall] = []
        self._call_ids = itertools.count(1)

    def clear(self) -> None:
        """Forget every call and attempt (call ids start again)."""
        with self._lock:
            self.rest_calls = []
            self._call_ids = itertools.count(1)
            if self._delivery_log is not None:
                self._delivery_log.clear()

    # ----------------------------------------------------------------- REST calls
    def record_call(
        self,
        *,
        method: str,
        params: Any,
        token: str | None,
        client_id: str | None,
        status: int,
        result: Any,
        error: str | None,
        http_method: str,
    ) -> RestCall:
        """Record one REST call (params and token are redacted here, once)."""
        with self._lock:
            issued = self._tokens().get(token) if token else None
            call = RestCall(
                id=next(self._call_ids),
                portal=self._domain(),
                method=method,
                params=redact(params),
                token=("***" if token else None),
                client_id=client_id,
                status=status,
                result=redact(result),
                error=error,
                http_method=http_method,
                at=self._clock.now(),
                token_id=issued.id if issued is not None else None,
            )
            self.rest_calls.append(call)
            if len(self.rest_calls) > MAX_RECORDS_KEPT:
                del self.rest_calls[: len(self.rest_calls) - MAX_RECORDS_KEPT]
            self._calls_changed.notify_all()
            return call

    def calls(self, method: str | None = None) -> list[RestCall]:
        """Recorded REST calls, optionally only those of ``method``."""
        with self._lock:
            return [c for c in self.rest_calls if method is None or c.method == method]

    def wait_for_calls(
        self, method: str | None = None, *, count: int = 1, timeout: float = 5.0
    ) -> list[RestCall]:
        """Block until ``count`` REST calls (of ``method``) are recorded or ``timeout`` seconds pass."""
        with self._calls_changed:
            self._calls_changed.wait_for(lambda: len(self.calls(method)) >= count, timeout=timeout)
            return self.calls(method)

    # ----------------------------------------------------------------- delivery attempts
    def delivery_log(self) -> DeliveryLog:
        """The log the portal's deliverer writes its attempts to (created on first use)."""
        with self._lock:
            if self._delivery_log is None:
                from mock_portal.delivery import DeliveryLog

                self._delivery_log = DeliveryLog(max_in_memory=MAX_RECORDS_KEPT)
            return self._delivery_log

    def delivery_count(self) -> int:
        """How many attempts are kept."""
        with self._lock:
            return len(self._delivery_log) if self._delivery_log is not None else 0

    def deliveries_changed(self) -> None:
        """Wake the threads waiting in :meth:`wait_for_deliveries` (an attempt was made or dequeued)."""
        with self._lock:
            self._deliveries_changed.notify_all()

    def deliveries(self, event: str | None = None) -> list[Attempt]:
        """Recorded delivery attempts (sent or dropped), oldest first, optionally only those of ``event``."""
        with self._lock:
            log = self._delivery_log
        if log is None:
            return []
        return log.filter(event=event) if event else log.attempts

    def wait_for_deliveries(
        self,
        event: str | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
        outcome: str | None = None,
    ) -> list[Attempt]:
        """Block until ``count`` attempts (of ``event``, with ``outcome``) are kept or ``timeout`` ends."""

        def matching() -> list[Attempt]:
            return [a for a in self.deliveries(event) if outcome is None or a.outcome == outcome]

        with self._deliveries_changed:
            self._deliveries_changed.wait_for(lambda: len(matching()) >= count, timeout=timeout)
            return matching()
