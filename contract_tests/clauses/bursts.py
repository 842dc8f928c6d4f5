"""Clause 10: a burst of concurrent deliveries is answered, and its work done."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from contract_tests.clauses._docs import QUEUE
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext


@clause(
    "survives-bursts",
    number="10",
    level="SHOULD",
    events=["ONSESSIONSTART"],
    title="a burst of concurrent deliveries is answered without 5xx or loss",
    expected="a 2xx answer to every delivery of a burst, and the work of every event done",
    evidence="the portal's queue may deliver several events at once and never resends a refused one, so a "
    "handler that turns deliveries away under load loses events",
    doc=QUEUE,
    _builtin=True,
)
def survives_bursts(ctx: ClauseContext) -> str:
    """Accepts: a 2xx answer to each of the burst's deliveries (however long each took within the timeout:
    a small accept backlog makes some wait for the kernel's retry), then at least as many REST calls as one
    valid event leads to, times the burst.

    Refuses: any other answer (5xx, 429, a reset, a timeout) to a delivery of the burst.

    Evidence: one POST per handler and event, no retries (facts §1). Work still missing once the wait (the
    timeout, or longer for a slow worker) is over is reported as inconclusive, never as a failure: the
    contract cannot tell lost work from slow work.
    """
    control = ctx.control()
    site = ctx.site()
    n = ctx.config.burst
    items = [(f"burst delivery {i + 1} of {n}", ctx.build(site)) for i in range(n)]
    sent = ctx.deliver_concurrently(site, items)
    bad = [ex for ex in sent if not ex.ok]
    if bad:
        kinds = Counter(ex.short for ex in bad)
        summary = ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items()))
        ctx.fail(f"{len(bad)} of {n} concurrent deliveries not answered 2xx: {summary}", bad)
    if control.silent:
        return f"{n} concurrent deliveries answered 2xx (no REST calls to count)"
    per_event = len(control.calls)
    wanted = n * per_event
    wait = max(ctx.config.timeout, 2 * n * control.latency)
    calls = ctx.wait_for_work_calls(site, wanted, wait)
    if len(calls) < wanted:
        ctx.inconclusive(
            f"{n} concurrent events answered 2xx led to {len(calls)} REST call(s) within {wait:.1f} s, one "
            f"event alone to {per_event}: the work of about {n - len(calls) // per_event} event(s) is lost "
            "or slow, which the contract cannot tell apart",
            sent[:1],
        )
    return f"{n} concurrent deliveries answered 2xx, {len(calls)} REST calls"
