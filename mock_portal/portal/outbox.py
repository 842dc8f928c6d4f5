"""Sending what the triggers planned: at once for control actions, through a queue for REST calls.

Events raised inside a REST call are queued, as the real portal queues them for its queue server (facts §1):
:meth:`Outbox.deferring` collects them while the call runs, and one background worker per portal delivers
them in order once the call has returned. Every attempt (dropped ones too) lands in the portal's records;
one attempt per (binding x event), never a retry (facts §1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mock_portal.errors import UsageError

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, Deliverer, Target
    from mock_portal.portal.records import Records


@dataclass(frozen=True)
class Body:
    """An event body: the form-encoded text sent and the payload it encodes."""

    text: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Planned:
    """One delivery a trigger decided on: ``event`` to ``target`` (a handler URL) for app ``client_id``."""

    event: str
    target: str
    body: Body
    client_id: str
    drop_reason: str | None = None  # set: record the event as dropped instead of sending it


class Outbox:
    """The delivery side of one portal: in-process routes, the deliverer, the queue and its worker.

    ``lock`` is the portal's (held only briefly, never while an event is on the wire); ``timeout`` and
    ``name`` are read when needed, so changes to the portal's ``delivery_timeout`` apply.
    """

    def __init__(
        self,
        lock: threading.RLock,
        records: Records,
        *,
        timeout: Callable[[], float],
        name: Callable[[], str],
    ) -> None:
        self._lock = lock
        self._records = records
        self._timeout = timeout
        self._name = name
        self._deferred = threading.local()
        self._queue: queue.Queue[Planned | None] = queue.Queue()
        self._queued = 0  # planned deliveries handed to the worker and not yet attempted
        self._worker: threading.Thread | None = None
        self._delivery: Deliverer | None = None
        self._routes: dict[str, Target] = {}
        self.absorb: Callable[[Sequence[Planned]], list[Planned]] | None = None
        """Set by the portal: takes the offline bindings' deliveries out of a plan (into their queues) and
        adds the ONOFFLINEEVENT notifications due (:meth:`OfflineEvents.absorb`)."""

    # ----------------------------------------------------------------- sending a plan
    def execute(self, plan: Sequence[Planned], timeout: float | None) -> list[Attempt]:
        """Send (or record as dropped) each planned delivery, one after another; the lock must not be held.

        Inside :meth:`deferring` the plan is queued instead and nothing is returned.
        """
        if plan and self.absorb is not None:
            plan = self.absorb(plan)
        if not plan:
            return []
        pending: list[Planned] | None = getattr(self._deferred, "pending", None)
        if pending is not None:
            # raised inside a REST call: queued, delivered by the worker after the call (facts §1)
            pending.extend(plan)
            return []
        return [self._attempt(item, timeout) for item in plan]

    def _attempt(self, item: Planned, timeout: float | None) -> Attempt:
        deliverer = self._deliverer()
        target = self._target_for(item.target)
        if item.drop_reason is not None:
            attempt = deliverer.drop(target, item.body.text, reason=item.drop_reason, event=item.event)
        else:
            attempt = deliverer.deliver(
                target,
                item.body.text,
                event=item.event,
                timeout=self._timeout() if timeout is None else timeout,
            )
        self._records.record_attempt(attempt)
        return attempt

    # ----------------------------------------------------------------- the queue
    @contextlib.contextmanager
    def deferring(self, *, release: bool = True) -> Iterator[list[Any]]:
        """Collect the plans executed in this thread while the block runs (see
        :meth:`Portal.deferring_events <mock_portal.portal.Portal.deferring_events>`)."""
        outer: list[Planned] | None = getattr(self._deferred, "pending", None)
        if outer is not None:
            yield outer
            return
        pending: list[Planned] = []
        self._deferred.pending = pending
        try:
            yield pending
        finally:
            self._deferred.pending = None
            if release:
                self.release(pending)

    def release(self, pending: Sequence[Any]) -> None:
        """Hand collected deliveries to the worker (never blocks)."""
        items = [item for item in pending if isinstance(item, Planned)]
        if not items:
            return
        with self._lock:
            self._queued += len(items)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name=f"mock-portal-queue-{self._name()}", daemon=True
                )
                self._worker.start()
            for item in items:
                self._queue.put(item)

    @property
    def queued(self) -> int:
        """Deliveries waiting in the queue or on the wire."""
        with self._lock:
            return self._queued

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._attempt(item, None)
            except Exception:  # a delivery that cannot even be attempted must not stop the queue
                logging.getLogger("mock_portal").exception("queued delivery of %s failed", item.event)
            finally:
                with self._lock:
                    self._queued -= 1
                    self._records.deliveries_changed()

    # ----------------------------------------------------------------- where deliveries go
    def route(self, prefix: str, target: Target) -> None:
        """Deliver events for handler URLs starting with ``prefix`` to an in-process ``target`` instead."""
        if not isinstance(prefix, str) or not prefix:
            raise UsageError("route(): prefix must be a non-empty URL prefix")
        with self._lock:
            self._routes[prefix] = target

    def _target_for(self, url: str) -> str | Target:
        with self._lock:
            matches = [p for p in self._routes if url.startswith(p)]
            if not matches:
                return url
            target = self._routes[max(matches, key=len)]
        return dataclasses.replace(target, url=url)

    def _deliverer(self) -> Deliverer:
        with self._lock:
            if self._delivery is None:
                from mock_portal.delivery import Deliverer

                self._delivery = Deliverer(self._records.delivery_log(), timeout=self._timeout())
            return self._delivery

    def close(self) -> None:
        """Deliver what is queued, stop the worker and the deliverer (closing its connection pool)."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(None)
            worker.join(max(self._timeout(), 1.0) * 2)
        with self._lock:
            delivery, self._delivery = self._delivery, None
        if delivery is not None:
            delivery.close()
