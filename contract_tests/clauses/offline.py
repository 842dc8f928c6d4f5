"""Clause 11: a handler that declares offline use catches up through ``event.offline.get`` and clears what it
took.

The portal never resends an event a handler missed; only the offline queue keeps events for it (facts §1).
The clause sets the queue up the way a handler that declares offline use does (``event.bind`` with
``event_type=offline``, and an ONOFFLINEEVENT handler), lets events queue while the handler hears nothing,
then lets the portal announce the queue with ONOFFLINEEVENT, and judges on the portal's own record: the
``event.offline.*`` calls the app made with a token this portal issued, and how its queue stands
(:func:`mock_portal.portal.offline.judge_catch_up`). Waits wake on each REST call the portal records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from contract_tests.clauses._docs import OFFLINE_GET
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext
    from mock_portal.delivery import Attempt
    from mock_portal.portal import Portal, RestCall

QUEUED = 3
"""Sessions that start while the handler hears nothing: the backlog it has to catch up on."""
_EVENT = "ONSESSIONSTART"
_NOTICE = "ONOFFLINEEVENT"
_CAP_FLOOR = 2.0
_CAP_BUDGETS = 12.5  # the budget is four times the handler's slowest work: this is fifty times it
_MAX_LOOKS = 8


@clause(
    "catches-up-offline",
    number="11",
    level="SHOULD",
    events=[_EVENT],
    offline=True,
    title="a handler that declares offline use catches up with event.offline.get and clears what it took",
    expected="after ONOFFLINEEVENT, event.offline.get calls that take the queued events, and every record "
    "taken with clear=0 removed with event.offline.clear (or marked with event.offline.error) once processed",
    evidence="the portal never resends an event: only the offline queue keeps what a handler missed, and the "
    "records an app takes with clear=0 stay reserved for it until it confirms them with event.offline.clear",
    doc=OFFLINE_GET,
    _builtin=True,
)
def catches_up_offline(ctx: ClauseContext) -> str:
    """Accepts: ``event.offline.get`` with ``clear=1`` (records removed as they are read), or with ``clear=0``
    followed by ``event.offline.clear`` or ``event.offline.error`` for each reservation; one call or a loop
    until the queue is empty; the next batch fetched before the last is confirmed (the docs allow parallel
    readers); catching up on ONOFFLINEEVENT or on the handler's own bindings and schedule;
    whatever the handler answers to ONOFFLINEEVENT; records queued after its last call (when it should have
    called again is a matter of timing).

    Refuses: a reservation (``clear=0``) that the handler never clears nor marks erroneous, once the handler
    has shown it is done with it: it called ``event.offline.get`` again for new records (not with that
    ``process_id``) and, given fifty times its work latency (at least 2 s) after that, the reservation still
    holds records.

    Evidence: offline events are the only events a portal keeps for a handler (facts §1; offline-events.md:
    bind with ``event_type=offline``, read with ``event.offline.get``, confirm by removing them);
    ``clear=0`` reserves the records under a ``process_id`` until ``event.offline.clear`` (the method pages).
    Only calls at this clause's portal, by the app, with a token that portal issued count. No
    ``event.offline.get`` at all, or a reservation still open with no later call to show the handler is done
    with it, is inconclusive. A SHOULD: records left reserved harm the app's own sync, not the portal.
    """
    site = ctx.site()
    portal, client_id = site.portal, site.app.client_id
    # the app's own bindings, as a handler that declares offline use makes them (kept if it made them itself)
    if not _bound(portal, client_id, _EVENT, "offline"):
        portal.bind(client_id, _EVENT, None, event_type="offline")
    # the handler hears nothing (as when it is down): the sessions queue, no event reaches it
    for _ in range(QUEUED):
        portal.start_session()
    if not _bound(portal, client_id, _NOTICE, "online"):
        # one notice per change (minTimeout=0), so a second round is announced at once
        from mock_portal.portal import PortalError

        try:
            portal.bind(client_id, _NOTICE, ctx.handler_url, options={"minTimeout": 0})
        except PortalError as refused:
            ctx.inconclusive(
                f"the portal refuses ONOFFLINEEVENT's handler URL ({refused.description}): a real portal "
                "needs a host with a dot, e.g. 127.0.0.1 rather than localhost"
            )
    notices = _notices(portal.start_session().attempts)
    cap = min(ctx.config.timeout, max(_CAP_FLOOR, _CAP_BUDGETS * ctx.budget))

    def gets() -> list[RestCall]:
        return _offline_calls(portal, client_id, "event.offline.get")

    if not _wait(portal, lambda: bool(gets()), ctx.config.timeout):
        ctx.inconclusive(
            f"{portal.offline.stats(client_id).queued} events queued offline and no event.offline.get "
            f"within {ctx.config.timeout:g} s "
            f"(ONOFFLINEEVENT {_answers(notices)}), so the catch-up cannot be judged"
        )
    from mock_portal.portal.offline import judge_catch_up

    def settled() -> bool:
        return not portal.offline.stats(client_id).reservations or bool(_abandoned(portal, client_id))

    announced = False
    for _ in range(_MAX_LOOKS):
        # woken by each call: every reservation confirmed, or the handler shown done with one it holds
        _wait(portal, settled, cap)
        stats = portal.offline.stats(client_id)
        if not stats.reservations:
            verdict = judge_catch_up(client_id, portal.calls(), stats)
            return (
                f"{stats.queued} events queued offline; {verdict.reason} (ONOFFLINEEVENT {_answers(notices)})"
            )
        if _abandoned(portal, client_id):
            # give a slow worker its time to confirm what it took, woken by each call it makes
            if _wait(portal, lambda: not _abandoned(portal, client_id), cap):
                continue
            verdict = judge_catch_up(client_id, portal.calls(), portal.offline.stats(client_id))
            ctx.fail(
                f"{verdict.reason}; the handler called event.offline.get again after taking them, so it was "
                f"done with them (waited {cap:g} s more for event.offline.clear)"
            )
        if announced:
            break
        # a reservation is open and nothing shows the handler is done with it: announce one more change
        announced = True
        notices += _announce_again(portal, client_id, cap)
    stats = portal.offline.stats(client_id)
    ctx.inconclusive(
        f"process_id {', '.join(stats.reservations[:3])} still holds {stats.reserved} record(s) taken with "
        "clear=0, and no later call shows the handler is done with them (it may still be processing)"
    )


def _announce_again(portal: Portal, client_id: str, cap: float) -> list[Attempt]:
    """One more session: the portal announces it with ONOFFLINEEVENT; wait (at most ``cap``) for the app's
    next ``event.offline.get``. Returns the notices sent."""
    before = len(_offline_calls(portal, client_id, "event.offline.get"))
    notices = _notices(portal.start_session().attempts)
    _wait(portal, lambda: len(_offline_calls(portal, client_id, "event.offline.get")) > before, cap)
    return notices


def _bound(portal: Portal, client_id: str, event: str, event_type: str) -> bool:
    return any(b.event == event and b.event_type == event_type for b in portal.bindings_of(client_id))


def _notices(attempts: Sequence[Attempt]) -> list[Attempt]:
    return [a for a in attempts if a.event == _NOTICE]


def _answers(attempts: Sequence[Attempt]) -> str:
    if not attempts:
        return "not sent: the handler's own binding's minTimeout had not passed"
    shown = sorted({str(a.status) if a.status is not None else a.outcome for a in attempts})
    return f"sent {len(attempts)}x, answered {', '.join(shown)}"


def _offline_calls(portal: Portal, client_id: str, method: str) -> list[RestCall]:
    """The app's successful calls of ``method`` at ``portal`` with a token that portal issued."""
    return [
        c
        for c in portal.calls(method)
        if c.client_id == client_id and c.token_id is not None and c.status == 200 and c.error is None
    ]


def _param(call: RestCall, name: str) -> str:
    params: Any = call.params
    value = params.get(name) if isinstance(params, dict) else None
    return "" if value is None else str(value).strip()


def _abandoned(portal: Portal, client_id: str) -> list[str]:
    """Reservations still holding records although the app has since asked ``event.offline.get`` for new
    records (a later call without that ``process_id``): it is done with them."""
    open_ones = set(portal.offline.stats(client_id).reservations)
    if not open_ones:
        return []
    gets = _offline_calls(portal, client_id, "event.offline.get")
    taken: dict[str, int] = {}
    for call in gets:
        result: Any = call.result
        pid = result.get("process_id") if isinstance(result, dict) else None
        if isinstance(pid, str) and pid in open_ones and pid not in taken:
            taken[pid] = call.id
    return sorted(
        pid
        for pid, at in taken.items()
        if any(call.id > at and _param(call, "process_id") != pid for call in gets)
    )


def _wait(portal: Portal, done: Callable[[], bool], limit: float) -> bool:
    """Wait until ``done()``, woken by each REST call ``portal`` records, for at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        seen = len(portal.rest_calls)
        if done():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        portal.wait_for_calls(count=seen + 1, timeout=remaining)
