"""Clause 6: a byte-identical repeated delivery is not new work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract_tests.clauses._docs import EVENTS
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext


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

    Refuses: more REST calls (other than setting up) at the repeat's portal once the first delivery's work
    was done, i.e. no new call for a budget after its last one.

    Evidence: no retries, identical events de-duplicated before queueing (facts §1). Both deliveries carry
    the same token, so the calls are told apart by when the first delivery's work stopped: a SHOULD, and
    inconclusive when the first delivery led to no REST call.
    """
    site = ctx.site()
    event = ctx.build(site)
    first = ctx.deliver(site, event, label="first delivery")
    first_calls = ctx.calls(first, required=False)
    if not first_calls:
        ctx.inconclusive("the first delivery led to no REST call, so the repeat cannot be judged", [first])
    repeat = ctx.deliver(site, event, label="repeated delivery, byte-identical", kind="repeat")
    ctx.settle()
    seen = {c.id for c in first_calls}
    more = [c for c in ctx.calls_at(site) if c.id not in seen]
    if more:
        ctx.fail(
            f"the repeat led to {len(more)} more REST call(s) ({', '.join(sorted({c.method for c in more}))};"
            " "
            f"the first delivery to {len(first_calls)})",
            [repeat],
        )
    return f"the repeat led to no REST call (the first to {len(first_calls)}; repeat answered {repeat.short})"
