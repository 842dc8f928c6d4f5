"""Clauses 3a, 3b and 4: a handler acts only on events that carry its portal's application_token."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contract_tests.clauses._docs import SAFE_HANDLERS, SECURITY
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext, Site
    from contract_tests.verdicts import Exchange
    from mock_portal.portal import RestCall


@dataclass(frozen=True)
class Probes:
    """Deliveries made for an absence: each on a site of its own, so every call there is theirs."""

    sent: tuple[Exchange, ...]
    sites: tuple[Site, ...]

    def with_calls(self, ctx: ClauseContext) -> tuple[list[RestCall], list[Exchange]]:
        """The calls at the probes' sites and the deliveries that caused them."""
        calls: list[RestCall] = []
        shown: list[Exchange] = []
        for ex, site in zip(self.sent, self.sites, strict=True):
            found = ctx.calls_at(site)
            if found:
                calls.extend(found)
                shown.append(ex)
        return calls, shown


def _calls_text(calls: list[RestCall]) -> str:
    return f"{len(calls)} REST call(s) ({', '.join(sorted({c.method for c in calls}))})"


def _forged(ctx: ClauseContext) -> tuple[list[Exchange], list[Site]]:
    """A valid event with a wrong application_token, in every way it can be wrong, each at a portal that
    installed the handler (so the member_id is known) and where nothing else is delivered."""
    variants: list[tuple[str, str, Any]] = [
        ("a random application_token", "user", "random"),
        ("the right token with its last character changed", "user", "flipped"),
        ("an empty application_token", "user", ""),
        ("no application_token at all", "user", None),
    ]
    if "system" in ctx.auth_modes():
        variants.append(("a random application_token, system mode", "system", "random"))
    sent, sites = [], []
    for label, auth, how in variants:
        site = ctx.site()
        real = site.events.application_token or site.app.application_token
        if how == "random":
            token: str | None = secrets.token_hex(16)
        elif how == "flipped":
            token = real[:-1] + ("0" if real[-1:] != "0" else "1")
        else:
            token = how
        override: Any = ["del:auth.application_token"] if token is None else {"auth.application_token": token}
        event = ctx.build(site, auth, overrides=override)
        sent.append(ctx.deliver(site, event, label=f"forged: {label}", kind="forged"))
        sites.append(site)
    return sent, sites


def _unknown(ctx: ClauseContext) -> tuple[list[Exchange], list[Site]]:
    """A valid event in each auth mode from a portal that never installed the handler."""
    sent, sites = [], []
    for auth in ctx.auth_modes():
        stranger = ctx.stranger()
        event = ctx.build(stranger, auth)
        sent.append(
            ctx.deliver(stranger, event, label=f"unknown member_id, {auth} mode", kind="unknown-portal")
        )
        sites.append(stranger)
    return sent, sites


def _probes(ctx: ClauseContext) -> dict[str, Probes]:
    """The events that must cause nothing (forged ones, and ones from an unknown portal), delivered together
    and given one budget to show any work (clauses 3a, 3b and 4 judge them). The valid control event goes
    out after them (on a portal of its own, once the handler has answered them all): the wait for its work
    counts towards their budget."""
    forged, forged_sites = _forged(ctx)
    unknown, unknown_sites = _unknown(ctx)
    delivered = time.monotonic()
    ctx.control()
    ctx.settle(since=delivered)
    return {
        "forged": Probes(tuple(forged), tuple(forged_sites)),
        "unknown": Probes(tuple(unknown), tuple(unknown_sites)),
    }


def _shared(ctx: ClauseContext, kind: str) -> Probes:
    probes: dict[str, Probes] = ctx.shared("must-cause-nothing", lambda: _probes(ctx))
    return probes[kind]


@clause(
    "forged-token-no-side-effect",
    number="3a",
    level="MUST",
    title="a forged event (right member_id, wrong application_token) causes no REST call",
    expected="no REST call in response to an event whose application_token is wrong, empty or missing",
    evidence="the portal does not check application_token: the handler must compare it with the one stored "
    "from ONAPPINSTALL on every event, and act on nothing that fails the check",
    doc=SAFE_HANDLERS,
    _builtin=True,
)
def forged_token_no_side_effect(ctx: ClauseContext) -> str:
    """Accepts: no REST call at the forged events' portals, whatever the answer (status, body, or none).

    Refuses: any REST call (other than setting up, e.g. ``event.bind``) at a portal that received only a
    forged event, with any token: the forger chose that ``client_endpoint``. Evidence found after the wait,
    up to the end of the run, still counts.

    Evidence: the handler must compare ``application_token`` with the stored one on every event (facts §2;
    safe-event-handlers.md). Inconclusive when a valid event led to no REST call either.
    """
    probes = _shared(ctx, "forged")
    control = ctx.control()
    calls, shown = probes.with_calls(ctx)
    if calls:
        ctx.explain_modes(shown)
        ctx.fail(f"{_calls_text(calls)} after {len(probes.sent)} forged events", shown)
    if control.silent:
        ctx.inconclusive(
            "no REST call for a valid event either, so no call after a forged one proves nothing",
            [control.exchange],
        )

    def late() -> str | None:
        found, _ = probes.with_calls(ctx)
        return f"{_calls_text(found)} after {len(probes.sent)} forged events" if found else None

    ctx.recheck(late, probes.sent)
    return f"{len(probes.sent)} forged events, no REST call (a valid one made {len(control.calls)})"


@clause(
    "forged-token-refused",
    number="3b",
    level="SHOULD",
    title="a forged event is answered 401 or 403",
    expected="401 or 403 to every event whose application_token is wrong, empty or missing",
    evidence="security recommendations: validate application_token in events and refuse the ones that fail",
    doc=SECURITY,
    _builtin=True,
)
def forged_token_refused(ctx: ClauseContext) -> str:
    """Accepts: 401 or 403 to every forged event.

    Refuses: any other answer (2xx, other 4xx, 5xx, none) to a forged event.

    Evidence: security-recommendations.md, "Validate application_token in Events". A SHOULD: answering 200
    and doing nothing harms no one (clause 3a judges that).
    """
    probes = _shared(ctx, "forged")
    wrong = [ex for ex in probes.sent if ex.status not in (401, 403)]
    if wrong:
        answers = ", ".join(f"{ex.label.removeprefix('forged: ')} -> {ex.short}" for ex in wrong)
        ctx.fail(f"{len(wrong)} forged event(s) not answered 401/403: {answers}", wrong)
    return f"{len(probes.sent)} forged events answered 401/403"


@clause(
    "unknown-portal-no-side-effect",
    number="4",
    level="MUST",
    title="an event from a portal that never installed the app causes no side effect",
    expected="no REST call for an event whose member_id never installed the app",
    evidence="the handler learns each portal's application_token from its ONAPPINSTALL and keeps it per "
    "member_id: a member_id it never saw has no token to match",
    doc=SAFE_HANDLERS,
    _builtin=True,
)
def unknown_portal_no_side_effect(ctx: ClauseContext) -> str:
    """Accepts: no REST call at the unknown portal, whatever the answer.

    Refuses: any REST call (other than setting up) at a portal whose events reached the handler without an
    ONAPPINSTALL before them, in either auth mode (late evidence counts).

    Evidence: the token is stored per ``member_id`` from ONAPPINSTALL (facts §2, §5). Inconclusive when a
    valid event led to no REST call either.
    """
    probes = _shared(ctx, "unknown")
    control = ctx.control()
    calls, shown = probes.with_calls(ctx)
    if calls:
        ctx.fail(f"{_calls_text(calls)} for events of a portal that never installed the app", shown)
    if control.silent:
        ctx.inconclusive(
            "no REST call for a valid event either, so no call here proves nothing", [control.exchange]
        )

    def late() -> str | None:
        found, _ = probes.with_calls(ctx)
        return f"{_calls_text(found)} for events of a portal that never installed the app" if found else None

    ctx.recheck(late, probes.sent)
    answers = ", ".join(ex.short for ex in probes.sent)
    return f"no REST call for the unknown portal (answers: {answers})"
