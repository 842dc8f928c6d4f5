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
from mock_portal.records import CALLS, DELIVERIES, PortalRecords, delivery_tags
from mock_portal.redact import redact

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, DeliveryLog


class Records:
    """The REST calls and delivery attempts of one portal, and waiting for them without sleeping.

    The calls and attempts live in a :class:`~mock_portal.records.PortalRecords` store (``store``): redacted
    and encoded once when recorded, bounded in bytes, paginated for the control API. ``lock`` is the portal's;
    ``domain`` and ``tokens`` are read at each record (the call's portal and the serial number of the token it
    carried). The delivery log (a JSONL file when the portal was given one) keeps only what it writes; the
    store is what listings and waits read.
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
        self._delivery_log = delivery_log
        self.store = PortalRecords()
        self._call_ids = itertools.count(1)

    @property
    def rest_calls(self) -> list[RestCall]:
        """Every kept REST call, oldest first (a snapshot)."""
        return self.store.calls()

    def clear(self) -> None:
        """Forget every call and attempt (call ids start again)."""
        with self._lock:
            self.store.clear()
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
            self.store.add_call(call)
            return call

    def calls(self, method: str | None = None) -> list[RestCall]:
        """Recorded REST calls, optionally only those of ``method``."""
        return self.store.calls(method)

    def wait_for_calls(
        self, method: str | None = None, *, count: int = 1, timeout: float = 5.0
    ) -> list[RestCall]:
        """Block until ``count`` REST calls (of ``method``) are recorded or ``timeout`` seconds pass."""
        self.store.wait(CALLS, count, timeout, **({"method": method} if method is not None else {}))
        return self.calls(method)

    # ----------------------------------------------------------------- delivery attempts
    def delivery_log(self) -> DeliveryLog:
        """The log the portal's deliverer writes its attempts to (created on first use; without a file it
        keeps only the last attempt, since the store keeps them all)."""
        with self._lock:
            if self._delivery_log is None:
                from mock_portal.delivery import DeliveryLog

                self._delivery_log = DeliveryLog(max_in_memory=1)
            return self._delivery_log

    def record_attempt(self, attempt: Attempt) -> None:
        """Keep a delivery attempt (sent or dropped) and wake the threads waiting for it."""
        self.store.add_attempt(attempt)

    def delivery_count(self) -> int:
        """How many attempts are kept."""
        return self.store.count(DELIVERIES)

    def deliveries_changed(self) -> None:
        """Wake the threads waiting in :meth:`wait_for_deliveries` (an attempt was dequeued)."""
        self.store.notify()

    def deliveries(self, event: str | None = None) -> list[Attempt]:
        """Recorded delivery attempts (sent or dropped), oldest first, optionally only those of ``event``."""
        return self.store.deliveries(event)

    def wait_for_deliveries(
        self,
        event: str | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
        outcome: str | None = None,
    ) -> list[Attempt]:
        """Block until ``count`` attempts (of ``event``, with ``outcome``) are kept or ``timeout`` ends."""
        self.store.wait(DELIVERIES, count, timeout, **delivery_tags(event, outcome))
        return self.store.deliveries(event, outcome)
