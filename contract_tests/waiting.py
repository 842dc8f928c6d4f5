"""Waiting for a handler's work, and the controls an absence is compared with.

How a run waits (see :mod:`contract_tests.judging` for the rules): woken by the portal a call reaches, never
by sleeping; for a valid event's first call up to the work cap, then until no call has followed for a
budget that grows with the handler's measured work latency. :class:`Waits` is owned by
:class:`~contract_tests.engine.ContractRun` and holds what the waits learn: that latency, the events the
handler was seen to ignore, the methods it calls to set itself up, and each event's control.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from contract_tests.config import DEFAULT_SETTLE
from contract_tests.judging import SETUP_METHODS, ClauseContext, Control, Site
from contract_tests.verdicts import Exchange

if TYPE_CHECKING:
    from contract_tests.clauses import Clause
    from contract_tests.config import ContractConfig
    from contract_tests.recording import Recorder
    from mock_portal.portal import Portal, RestCall

__all__ = ["Waits", "judging_order", "settled_calls"]

_LATENCY_FACTOR = 4.0
_FIRST_CALL_FACTOR = 25.0
_FIRST_CALL_FLOOR = 0.5


class Waits:
    """The waits of one run and what they learn. ``recorder`` tells which site each delivery went to;
    ``lock`` is the run's, and ``closed`` is set when the run closes (it ends every wait)."""

    def __init__(
        self, config: ContractConfig, recorder: Recorder, lock: threading.RLock, closed: threading.Event
    ) -> None:
        self.config = config
        self._recorder = recorder
        self._lock = lock
        self._closed = closed
        self._latency = 0.0
        self._silent: set[str] = set()
        self.setup_methods: set[str] = set(SETUP_METHODS)
        """Methods never counted as an event's work: :data:`SETUP_METHODS` and what the handler called on
        install."""
        self.started: dict[int, float] = {}
        """Delivery serial -> the portal clock when it was sent (its work latency is measured from it)."""
        self._controls: dict[str, Control] = {}
        # event -> the control sent before any clause ran: its site, its exchange, when it was answered
        self._early_controls: dict[str, tuple[Site, Exchange, float]] = {}

    def budget(self) -> float:
        """The absence budget (see :attr:`ClauseContext.budget`)."""
        return min(max(self.config.settle, _LATENCY_FACTOR * self._latency), self.config.timeout)

    def work_cap(self, event: str) -> float:
        """How long to wait for a valid event's first REST call: one budget once the handler was seen to do
        nothing for this event; once its work latency is known, twenty-five times its slowest work so far, at
        least 0.5 s and at least ``settle`` (a handler slow to start on one event only is given more with
        ``--settle``); the timeout before that. No call within it is inconclusive, never a verdict."""
        if event in self._silent:
            return self.budget()
        if self._latency > 0:
            floor = max(_FIRST_CALL_FLOOR, self.config.settle)
            return min(self.config.timeout, max(floor, _FIRST_CALL_FACTOR * self._latency))
        return self.config.timeout

    def wait_budget(self, since: float | None = None) -> None:
        """Wait one budget (an absence is judged after it), counted from ``since`` (a ``time.monotonic()``
        value; default: now); a closing run ends the wait."""
        left = self.budget() if since is None else self.budget() - (time.monotonic() - since)
        if left > 0:
            self._closed.wait(left)

    def quiet(self, portal: Portal, budget: float, limit: float | None = None) -> None:
        """Wait until no call has reached ``portal`` for ``budget`` seconds (woken by each call)."""
        deadline = time.monotonic() + (self.config.timeout if limit is None else limit)
        while time.monotonic() < deadline:
            seen = len(portal.rest_calls)
            got = portal.wait_for_calls(count=seen + 1, timeout=budget)
            if len(got) <= seen:
                return

    def work_calls(self, site: Site, after: int | None = None, serial: int | None = None) -> list[RestCall]:
        """Calls at ``site`` that are an event's work (after call id ``after``; those of delivery ``serial``
        only: calls carrying another delivery's token are left out)."""
        start = site.work_from if after is None else after
        if start is None:
            return []
        setup = self.setup_methods
        return [
            c
            for c in site.portal.calls()
            if c.id > start
            and c.method not in setup
            and (serial is None or c.token_id is None or site.tokens.get(c.token_id, serial) == serial)
        ]

    def wait_for_count(self, site: Site, count: int, timeout: float) -> list[RestCall]:
        """Wait (woken by the portal) until ``site`` has ``count`` work calls, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            seen = len(site.portal.rest_calls)
            found = self.work_calls(site)
            remaining = deadline - time.monotonic()
            if len(found) >= count or remaining <= 0 or self._closed.is_set():
                return found
            site.portal.wait_for_calls(count=seen + 1, timeout=remaining)

    def wait_for_work(self, exchange: Exchange) -> list[RestCall]:
        """The calls ``exchange`` caused, waited for (see :meth:`ClauseContext.calls`)."""
        return self.wait_for_works([exchange])[0]

    def wait_for_works(self, exchanges: Sequence[Exchange]) -> list[list[RestCall]]:
        """The calls each of ``exchanges`` caused: for each, wait (woken by its portal) up to the work cap for
        the first; then wait until a whole budget passes with no new call at any of their portals."""
        found: list[list[RestCall]] = []
        for exchange in exchanges:
            site = self._recorder.site_of[exchange.serial]
            portal, mark = site.portal, site.marks[exchange.serial]
            deadline = time.monotonic() + self.work_cap(exchange.event)
            while True:
                seen = len(portal.rest_calls)
                calls = self.work_calls(site, mark, exchange.serial)
                remaining = deadline - time.monotonic()
                if calls or remaining <= 0 or self._closed.is_set():
                    break
                portal.wait_for_calls(count=seen + 1, timeout=remaining)
            if not calls:
                self._silent.add(exchange.event)
            found.append(calls)
        portals = list(
            {id(s.portal): s.portal for s in (self._recorder.site_of[e.serial] for e in exchanges)}.values()
        )
        if any(found):
            # the first calls came: wait until the work stops (a budget with no new call)
            limit = time.monotonic() + self.config.timeout
            while time.monotonic() < limit and not self._closed.is_set():
                counts = [len(p.rest_calls) for p in portals]
                if len(portals) == 1:
                    portals[0].wait_for_calls(count=counts[0] + 1, timeout=self.budget())
                else:
                    self.wait_budget()
                if [len(p.rest_calls) for p in portals] == counts:
                    break
        out = []
        for exchange in exchanges:
            site = self._recorder.site_of[exchange.serial]
            calls = self.work_calls(site, site.marks[exchange.serial], exchange.serial)
            out.append(calls)
            started = self.started.get(exchange.serial)
            if calls and started is not None:
                latency = max(c.at for c in calls) - started
                with self._lock:
                    self._latency = max(self._latency, min(latency, self.config.timeout))
        return out

    def control(self, ctx: ClauseContext, event: str) -> Control:
        """The per-event control (see :meth:`ClauseContext.control`)."""

        def make() -> Control:
            early = self._early_controls.pop(event, None)
            if early is not None and early[1].ok and not self._first_calls(*early, event):
                # silent for the whole work cap after its answer: the same evidence as a control sent now
                self._silent.add(event)
                return Control(self._claim(early[0], early[1], ctx.clause.id), (), self._latency, early[0])
            # it led to calls (or was not answered 2xx): they overlapped other clauses' deliveries, so their
            # latency would not be the handler's own; a control sent now measures it as before
            site = ctx.site()
            built = ctx.build(site, "user", event=event)
            sent = ctx.deliver(site, built, label="valid control event")
            found = self.wait_for_work(sent) if sent.ok else []
            return Control(sent, tuple(found), self._latency, site, built)

        with self._lock:
            if event not in self._controls:
                self._controls[event] = make()
            return self._controls[event]

    def send_controls(
        self, plan: Sequence[tuple[Clause, str]], send: Callable[[str], tuple[Site, Exchange]]
    ) -> None:
        """Deliver the control event (see :meth:`control`) of every declared event after the first that has a
        verdict to judge, before any clause runs. A handler that does nothing for an event gets the same time
        to show it as when the control is sent on demand, but that time passes while the clauses of the
        events before it run. Each control is a valid event on a site of its own (``send(event)`` delivers
        it there): its calls are told apart by portal, as always. The first event's control is sent on
        demand, as it was (its clauses come first, so there is nothing to overlap), and a run of one event
        is unchanged."""
        if self._early_controls or self._controls:
            return
        events, install_flow = self.config.events, self.config.install_flow
        for event in events[1:]:
            if not any(e == event and c.not_applicable(events, install_flow) is None for c, e in plan):
                continue
            site, sent = send(event)
            self._early_controls[event] = (site, sent, time.monotonic())

    def _first_calls(self, site: Site, sent: Exchange, answered: float, event: str) -> list[RestCall]:
        """The calls an early control caused, waited for (woken by its portal) until the work cap has passed
        since its answer; nothing is learnt from them (see :meth:`control`)."""
        deadline = answered + self.work_cap(event)
        while True:
            seen = len(site.portal.rest_calls)
            calls = self.work_calls(site, site.marks[sent.serial], sent.serial)
            remaining = deadline - time.monotonic()
            if calls or remaining <= 0 or self._closed.is_set():
                return calls
            site.portal.wait_for_calls(count=seen + 1, timeout=remaining)

    def _claim(self, site: Site, sent: Exchange, clause_id: str) -> Exchange:
        """Label an early control (and its site's install) with the clause that asked for it first, as if
        that clause had sent it."""
        import dataclasses

        with self._lock:
            swapped: dict[int, Exchange] = {}
            for ex in (sent, site.install):
                if ex is not None and not ex.clause:
                    swapped[ex.serial] = dataclasses.replace(ex, clause=clause_id)
            self._recorder.exchanges = [swapped.get(ex.serial, ex) for ex in self._recorder.exchanges]
            site.delivered[:] = [swapped.get(ex.serial, ex) for ex in site.delivered]
            if site.install is not None:
                site.install = swapped.get(site.install.serial, site.install)
            return swapped.get(sent.serial, sent)


# ------------------------------------------------------------------------------------------------ helpers


def judging_order(plan: Sequence[tuple[Clause, str]], first: str) -> list[tuple[Clause, str]]:
    """The order verdicts are judged in (reports keep the plan's order): the first declared event's clauses,
    then the other events' clauses, then the clauses that judge the run's deliveries (clause 7). The other
    events' controls were sent before any clause ran (:meth:`Waits.send_controls`), so the time an event
    the handler ignores needs to show that it led to no call passes while the first event's clauses run,
    not on top of them. Only the order changes: every verdict rests on the same evidence."""
    body = [p for p in plan if not p[0].last]
    firsts = [p for p in body if p[1] == first]
    return firsts + [p for p in body if p[1] != first] + [p for p in plan if p[0].last]


def settled_calls(
    portals: Portal | Iterable[Portal],
    *,
    settle: float = DEFAULT_SETTLE,
    limit: float = 30.0,
    count: int = 0,
) -> list[RestCall]:
    """Wait until ``portals`` hold at least ``count`` REST calls (woken by each, for at most ``limit``
    seconds), then until no new call reaches them for ``settle`` seconds; return every call they recorded,
    oldest first per portal. Give ``count`` when calls are expected: the first may take longer than
    ``settle`` on a busy machine."""
    from mock_portal.portal import Portal

    group = [portals] if isinstance(portals, Portal) else list(portals)
    deadline = time.monotonic() + limit
    while sum(len(p.rest_calls) for p in group) < count and time.monotonic() < deadline:
        have = len(group[0].rest_calls)
        others = sum(len(p.rest_calls) for p in group[1:])
        group[0].wait_for_calls(
            count=max(have + 1, count - others),
            timeout=min(settle, deadline - time.monotonic())
            if len(group) > 1
            else deadline - time.monotonic(),
        )
    quiet_since = time.monotonic()
    counts = [len(p.rest_calls) for p in group]
    while time.monotonic() < deadline:
        left = settle - (time.monotonic() - quiet_since)
        if left <= 0:
            break
        # woken by the first portal's condition; the others are looked at after each wake
        group[0].wait_for_calls(count=counts[0] + 1, timeout=left)
        now = [len(p.rest_calls) for p in group]
        if now != counts:
            counts, quiet_since = now, time.monotonic()
    return [call for p in group for call in p.calls()]
