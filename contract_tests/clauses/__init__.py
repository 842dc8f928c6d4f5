"""The clauses of the contract, each a small function registered with its id, level, evidence and doc page.

The built-in clauses live in one module per concern (shapes, tokens, bodies, repeats, timing, portals,
secrets, bursts, offline; and fuzzing, judged only when a run asks for it); your own are registered the same
way, with :func:`clause`, from a conftest or a module (``mock-portal verify --clauses my_app.clauses``), and
judge with the same helpers (:class:`~contract_tests.judging.ClauseContext`). Importing this package is cheap:
the pytest plugin does it in every run. The numbers follow the issue that defined the contract; clauses 3 and
7 mix a MUST and a SHOULD, so each is split in two (``3a``/``3b``, ``7a``/``7b``) with one level apiece.
"""

from __future__ import annotations

# the built-in clauses register themselves on import (reports list them by number)
from contract_tests.clauses import (
    bodies,
    bursts,
    fuzzing,
    offline,
    portals,
    repeats,
    secrets,
    shapes,
    timing,
    tokens,
)
from contract_tests.clauses._registry import (
    DECLARABLE_EVENTS,
    DEFAULT_EVENTS,
    OFFLINE_NOT_DECLARED,
    REGISTRY,
    Clause,
    ClauseRegistry,
    Level,
    clause,
    verdict_id,
)

__all__ = [
    "CLAUSES",
    "CLAUSE_IDS",
    "DECLARABLE_EVENTS",
    "DEFAULT_EVENTS",
    "GENERIC_CLAUSE_IDS",
    "OFFLINE_NOT_DECLARED",
    "REGISTRY",
    "Clause",
    "ClauseRegistry",
    "Level",
    "clause",
    "find_clause",
    "verdict_id",
]

_MODULES = (shapes, tokens, bodies, repeats, timing, portals, secrets, bursts, offline, fuzzing)

CLAUSES: tuple[Clause, ...] = REGISTRY.builtins()
"""The built-in clauses, in the order reports list them."""

CLAUSE_IDS: tuple[str, ...] = tuple(c.id for c in CLAUSES)

GENERIC_CLAUSE_IDS: tuple[str, ...] = tuple(c.id for c in CLAUSES if c.events is None)
"""The built-in clauses that hold for every event a handler declares (one verdict per event): the token,
portal, body, tolerance, repeat, latency and secret rules. Shapes (1), two portals (8), bursts (10) and the
offline catch-up (11, for handlers that declare offline use) are about OnSessionStart."""


def find_clause(clause_id: str) -> Clause:
    """The registered clause with ``clause_id`` (or a built-in's number, e.g. ``"3a"``); unknown ones raise
    :class:`~mock_portal.errors.UnknownNameError` with a suggestion."""
    return REGISTRY.get(clause_id)
