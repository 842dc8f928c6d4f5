"""Clause 9: a handler's answers never carry the run's secrets."""

from __future__ import annotations

import secrets as _random
from typing import TYPE_CHECKING

from contract_tests.clauses._docs import SECURITY
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext
    from contract_tests.verdicts import Exchange


@clause(
    "never-echoes-secrets",
    number="9",
    level="SHOULD",
    title="answers never echo access_token, refresh_token or application_token",
    expected="no token of the run in any answer, in any encoding",
    evidence="application_token proves an event comes from the portal and OAuth tokens grant REST access; an "
    "answer is logged and shown by proxies and tools, so echoing them leaks them",
    doc=SECURITY,
    _builtin=True,
)
def never_echoes_secrets(ctx: ClauseContext) -> str:
    """Accepts: answers (every byte read, up to 64 KiB each) that carry no token the run issued or was given.
    A handler may quote what a forger sent: made-up tokens are not secrets.

    Refuses: an answer carrying an ``access_token``, ``refresh_token``, ``application_token`` or client
    secret of the run, raw, hex-encoded, percent-encoded or in base64, under any key or none.

    Evidence: ``application_token`` is a secret, and OAuth tokens grant REST access (facts §2; security
    recommendations).
    """
    site = ctx.site()
    forged = ctx.build(site, overrides={"auth.application_token": _random.token_hex(16)})
    probes = [
        ("valid event", ctx.build(site, "user").body()),
        ("forged event", forged.body()),
        ("JSON body", ctx.build(site).body("json")),
    ]
    for label, body in probes:
        ctx.deliver(site, body, label=f"echo probe: {label}", kind="probe", focus=("data",))
    # generated events (fuzzing) are judged by their own clause, whichever order the verdicts come in
    answers = [ex for ex in ctx.exchanges() if ex.kind != "fuzz"]
    if ctx.config.events[0] == ctx.event:
        answers = ctx.installs() + answers
    leaks: list[str] = []
    shown: list[Exchange] = []
    for ex in answers:
        hits = ctx.secrets_in(ctx.answer_of(ex))
        if hits:
            kinds = ", ".join(sorted({ctx.secret_kind(h) for h in hits}))
            leaks.append(f"the answer to '{ex.label}' ({ex.short}) carries {kinds}")
            shown.append(ex)
    if leaks:
        more = f" (and {len(leaks) - 3} more)" if len(leaks) > 3 else ""
        ctx.fail("; ".join(leaks[:3]) + more, shown)
    return f"{len(answers)} answers carry no secret"
