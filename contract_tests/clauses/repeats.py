"""Clause 6: a byte-identical repeated delivery is not new work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract_tests.clauses._docs import EVENTS
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext


_NO_WORK = "the first delivery led to no REST call, so the repeat cannot be judged"


@clause(
    "ignores-repeated-delivery",
    number="6",
    level="SHOULD",
    title="a byte-identical repeated delivery causes no second side effect",
    expected="no REST call for the second delivery of the same bytes",
    evidence="the portal never resends an event and de-duplicates identical events before queueing them, so "
    "the same bytes twice come from a replay or a proxy's retry, not from new work",
    doc=EVENTS,
    _builtin=True,
)
def ignores_repeated_delivery(ctx: ClauseContext) -> str:
    """Accepts: any answer to the repeat, and no REST call after it beyond those the first delivery made.

    Refuses: more REST calls (other than setting up) at the repeat's portal after the repeat, once the first
    delivery's work was done (no new call for a budget after its last one).

    Evidence: no retries, identical events de-duplicated before queueing (facts §1). The first delivery is
    the event's valid control (the one clauses 3a and 4 compare with, on a portal of its own), whose work
    was waited for until it went quiet; the repeat sends its very bytes to the same portal later. Both carry
    the same token, so every call at that portal before the repeat is the first delivery's, and the calls
    after it are told apart by when the first delivery's work stopped: a SHOULD, and inconclusive when the
    first delivery led to no REST call.
    """
    control = ctx.control()
    if control.silent:
        ctx.inconclusive(_NO_WORK, [control.exchange])
    if control.site is not None and control.event is not None:
        site, event, first = control.site, control.event, control.exchange
    else:  # a control the contract did not build here: a first delivery of this clause's own
        site = ctx.site()
        event = ctx.build(site)
        first = ctx.deliver(site, event, label="first delivery")
        if not ctx.calls(first, required=False):
            ctx.inconclusive(_NO_WORK, [first])
    seen = {c.id for c in ctx.calls_at(site)}  # whatever came before the repeat is not the repeat's
    repeat = ctx.deliver(site, event, label="repeated delivery, byte-identical", kind="repeat")
    ctx.settle()
    more = [c for c in ctx.calls_at(site) if c.id not in seen]
    if more:
        ctx.fail(
            f"the repeat led to {len(more)} more REST call(s) ({', '.join(sorted({c.method for c in more}))};"
            f" the first delivery to {len(seen)})",
            [first, repeat],
        )
    return f"the repeat led to no REST call (the first to {len(seen)}; repeat answered {repeat.short})"
