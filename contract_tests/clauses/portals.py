"""Clause 8: a handler installed on several portals keeps them apart."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from contract_tests.clauses._docs import SAFE_HANDLERS
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext, Site
    from contract_tests.verdicts import Exchange
    from mock_portal.portal import RestCall


def _misrouted(ctx: ClauseContext) -> list[RestCall]:
    return ctx.misrouted_calls()


def _describe_misrouted(calls: list[RestCall]) -> str:
    portals = sorted({c.portal for c in calls})
    return (
        f"{len(calls)} REST call(s) ({', '.join(sorted({c.method for c in calls}))}) reached a portal "
        f"with a token that portal never issued ({', '.join(portals)}): another portal's token, or a "
        "client_endpoint kept from another installation"
    )


@clause(
    "keeps-portals-apart",
    number="8",
    level="MUST",
    events=["ONSESSIONSTART"],
    install_flow=True,
    title="two portals at once: each callback goes to the event's own portal; crossed tokens are refused",
    expected="every REST call at the client_endpoint of the portal whose token it carries; no REST call for "
    "portal B's event carrying portal A's application_token",
    evidence="each event names its own portal (member_id, client_endpoint) and each installation has its own "
    "application_token; a handler serving several portals must look both up per event",
    doc=SAFE_HANDLERS,
    _builtin=True,
)
def keeps_portals_apart(ctx: ClauseContext) -> str:
    """Accepts: REST calls that each reach the portal that issued the token they carry, whatever their number
    or timing; no call after the crossed events.

    Refuses: any call of the run, at any of its portals, carrying a token that portal never issued (sent to
    a ``client_endpoint`` kept from another installation, or with another portal's token): every portal of
    the run stays reachable until the run ends, so such calls are recorded. Refuses too any call at either
    portal after portal D's events carried portal C's ``application_token``.

    Evidence: ``client_endpoint`` is ``https://<domain>/rest/`` of the event's portal, and the
    ``application_token`` is per installation (facts §2). Calls are attributed by the token they carry
    (``RestCall.token_id`` at the portal that recorded them), never by when they arrived. Inconclusive when
    no valid event of either portal led to a REST call anywhere.
    """
    a, b = ctx.site(), ctx.site()
    sent: list[Exchange] = []
    for auth in ("user", "system"):
        for name, site in (("A", a), ("B", b)):
            sent.append(ctx.deliver(site, ctx.build(site, auth), label=f"portal {name}, {auth} mode"))
    # portal D's events carrying portal C's application_token, at portals of their own
    c, d = ctx.site(), ctx.site()
    crossed_site = _crossed(d, c.app.application_token)
    crossed = [
        ctx.deliver(
            crossed_site,
            ctx.build(crossed_site, auth),
            label=f"portal D's event with portal C's application_token, {auth} mode",
            kind="forged",
        )
        for auth in ("user", "system")
    ]
    delivered = time.monotonic()
    own = list({(c.portal, c.id): c for calls in ctx.calls_of(sent) for c in calls}.values())
    ctx.settle(since=delivered)  # the wait for A's and B's work counts towards the crossed events' budget
    problems: list[str] = []
    shown: list[Exchange] = []
    misrouted = _misrouted(ctx)
    if misrouted:
        problems.append(_describe_misrouted(misrouted))
        shown += sent
    crossed_calls = ctx.calls_at(c, d)
    if crossed_calls:
        problems.append(
            f"{len(crossed_calls)} REST call(s) after portal D's events carried portal C's token "
            f"(answered {', '.join(ex.short for ex in crossed)})"
        )
        shown += crossed
    if problems:
        ctx.fail("; ".join(problems), shown)
    if not own:
        ctx.inconclusive(
            "no REST call for any valid event of either portal, so where callbacks go cannot be judged", sent
        )

    def late() -> str | None:
        found = _misrouted(ctx)
        if found:
            return _describe_misrouted(found)
        late_crossed = ctx.calls_at(c, d)
        return f"{len(late_crossed)} REST call(s) after crossed tokens" if late_crossed else None

    ctx.recheck(late, [*sent, *crossed])
    return f"{len(own)} callbacks each at its own portal; crossed tokens led to no REST call"


def _crossed(site: Site, application_token: str) -> Site:
    """``site`` whose events carry ``application_token`` (another installation's) instead of its own."""
    from contract_tests.events import EventFactory

    site.events = EventFactory(site.portal, site.app, application_token=application_token)
    return site
