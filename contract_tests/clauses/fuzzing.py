"""The fuzzing clause: generated events never crash, hang or make the handler leak (on when a run asks for
it: ``mock-portal verify --fuzz N``, pytest ``--b24-fuzz N``, ``ContractConfig(fuzz=N)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contract_tests.clauses._docs import EVENTS
from contract_tests.clauses._registry import clause

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext


@clause(
    "survives-fuzzing",
    level="MUST",
    title="generated events never crash, hang or make the handler echo a secret",
    expected="to N events generated from the schemas (valid ones with every optional field on and off, "
    "boundary ids, unicode, several DATA items; near-valid ones with a missing key, a non-numeric id, a "
    "wrong type, an empty string, a flag out of its set) an answer below 500 within the timeout, on a "
    "connection kept until the answer, that carries no token of the run; a 4xx to any of them is fine",
    evidence="the portal never resends an event: an event that makes the handler answer 5xx, hang or fall "
    "over is lost, and so are the ones that follow while it is down; an answer is logged and shown by "
    "proxies and tools, so a token in it leaks",
    doc=EVENTS,
    last=True,
    _builtin=True,
    _option="fuzz",
)
def survives_fuzzing(ctx: ClauseContext) -> str:
    """Accepts: any answer below 500 within the timeout to every generated event, valid or near-valid (a
    handler may refuse what it does not understand), that carries no secret of the run.

    Refuses: an answer of 500 or more, no answer within the timeout, a connection dropped without an answer
    or refused after the handler was up, an answer carrying a token of the run in any encoding. The first
    failure is shrunk by hypothesis to a minimal event (with a fixed seed, so the same events come again).

    Evidence: events are never resent (facts §1), so an event lost to a crash or a hang is gone, and a
    handler that is down loses the events that follow; tokens grant REST access and prove an event's origin
    (facts §2). The events are built from the documented schemas, with the installed portal's own values.
    Judged last, so a handler it brings down disturbs no other verdict.
    """
    from contract_tests.fuzzing import fuzz

    return fuzz(ctx)
