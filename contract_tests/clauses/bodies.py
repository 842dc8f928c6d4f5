"""Clause 5: bodies a portal never sends do not crash or hang the handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract_tests.clauses._docs import EVENTS
from contract_tests.clauses._registry import clause
from contract_tests.judging import describe_answers

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext
    from contract_tests.verdicts import Exchange

_BINARY = "python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256))*16)'"


@clause(
    "rejects-malformed-bodies",
    number="5",
    level="MUST",
    title="malformed bodies never crash or hang the handler",
    expected="an answer below 500 within the timeout to bodies that are not form-encoded, JSON, empty, "
    "truncated or binary; to a huge body no 5xx and no hang (a 413, a 200 or closing the connection are "
    "fine); and the handler still answers a valid event afterwards",
    evidence="the portal only sends form-encoded events, so anything else comes from someone else, and a "
    "handler that falls over on it loses the portal's next events, which are never resent",
    doc=EVENTS,
    _builtin=True,
)
def rejects_malformed_bodies(ctx: ClauseContext) -> str:
    """Accepts: any answer below 500 (4xx, and also 2xx: a handler may ignore what it cannot read) within the
    timeout; for the huge body (a valid event plus an unknown 9 MB field) also a connection the handler
    closes before reading it all; then a 2xx to a valid event.

    Refuses: a 5xx, no answer within the timeout, or a dropped connection for a small body; a valid event
    refused after the malformed ones when it was accepted before them (the handler went down).

    Evidence: events are always ``application/x-www-form-urlencoded`` (facts §1); a real portal never sends
    the huge body (PHP's post_max_size is 8M, facts §7), so 413, 400 or 200 are all fine for it; the portal
    never resends an event a fallen handler missed (facts §1).
    """
    site = ctx.site()
    before = ctx.deliver(site, ctx.build(site), label="valid event before the malformed bodies")
    valid = ctx.build(site)
    form = valid.body().encode("utf-8")
    cut = form[: max(1, int(len(form) * 0.4))]
    cut = cut[: cut.rfind(b"%") + 2] if b"%" in cut else cut  # end inside a %XX escape
    pad = b"&x_padding=" + b"a" * ctx.config.oversize_bytes
    cases: list[tuple[str, bytes, str | None]] = [
        ("not form-encoded (XML)", f'<?xml version="1.0"?><event name="{ctx.event}"/>'.encode(), None),
        ("JSON, as the doc pages render events", valid.body("json").encode("utf-8"), None),
        ("empty body", b"", None),
        ("truncated inside a %XX escape", cut, None),
        ("binary (every byte value, NULs, not UTF-8)", bytes(range(256)) * 16, _BINARY),
    ]
    sent = [
        ctx.deliver(site, body, label=label, kind="malformed", generator=gen) for label, body, gen in cases
    ]
    huge = ctx.deliver(
        site,
        form + pad,
        label=f"huge ({len(form) + len(pad)} bytes: a valid event and an unknown field)",
        kind="malformed",
        focus=("data",),
    )
    after = ctx.deliver(site, ctx.build(site), label="valid event after the malformed bodies")
    problems: list[str] = []
    shown: list[Exchange] = []
    crashed = [ex for ex in [*sent, huge] if ex.status is not None and ex.status >= 500]
    hung = [ex for ex in [*sent, huge] if ex.outcome == "timeout"]
    # a handler may refuse a huge upload by answering and closing before reading it all: the client then
    # sees the connection end mid-upload, which is a refusal as long as the handler is still up
    dropped = [ex for ex in sent if ex.outcome in ("reset", "refused")]
    if huge.outcome in ("reset", "refused") and not after.ok:
        dropped.append(huge)
    if crashed:
        problems.append(f"{len(crashed)} answered 5xx: {describe_answers(crashed)}")
        shown += crashed
    if hung:
        problems.append(f"{len(hung)} not answered within {ctx.config.timeout:g} s: {describe_answers(hung)}")
        shown += hung
    if dropped:
        problems.append(f"{len(dropped)} dropped without an answer: {describe_answers(dropped)}")
        shown += dropped
    if before.ok and not after.ok:
        problems.append(f"a valid event was answered {after.short} after them (and {before.short} before)")
        shown.append(after)
    if problems:
        ctx.fail("malformed bodies: " + "; ".join(problems), shown)
    answers = {ex.short for ex in [*sent, huge]}
    still = "; a valid event answered 2xx after them" if after.ok else ""
    statuses = ", ".join(sorted(answers))
    return f"{len(sent) + 1} malformed bodies answered without a crash or a hang ({statuses}){still}"
