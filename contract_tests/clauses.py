"""The clauses of the OnSessionStart contract: stable ids, levels and the evidence each rests on.

Pure data, cheap to import: the pytest plugin, the contract class and ``mock-portal verify`` all read it. The
numbers follow the issue that defined the contract; clauses 3 and 7 mix a MUST and a SHOULD, so each is split
into two clauses (``3a``/``3b``, ``7a``/``7b``) with one level apiece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mock_portal import eventtable as _eventtable  # reads the event table (one JSON file), nothing heavy

__all__ = [
    "CLAUSES",
    "CLAUSE_IDS",
    "DECLARABLE_EVENTS",
    "DEFAULT_EVENTS",
    "GENERIC_CLAUSE_IDS",
    "Clause",
    "Level",
    "clause",
    "verdict_id",
]

Level = Literal["MUST", "SHOULD"]

_DOCS = "b24restdocs/"


@dataclass(frozen=True)
class Clause:
    """One clause: ``id`` is stable (used by ``-k``, JUnit and JSON reports), ``number`` is for people."""

    id: str
    number: str
    level: Level
    title: str
    expected: str
    evidence: str
    doc: str

    def __str__(self) -> str:
        return f"{self.number} {self.id} [{self.level}]"


CLAUSES: tuple[Clause, ...] = (
    Clause(
        "accepts-every-shape",
        "1",
        "MUST",
        "accepts every OnSessionStart shape in both auth modes",
        "a 2xx answer to every shape (source-2024, docs-2024, docs-2026) in user and system mode",
        "facts §1 (form-encoded, every scalar a string), §2 (user and system auth), §3 (three shapes)",
        _DOCS + "api-reference/imopenlines/openlines/events/on-session-start.md",
    ),
    Clause(
        "tolerates-variation",
        "2",
        "MUST",
        "tolerates what real portals vary",
        "2xx, never 5xx, without event_handler_id or server_endpoint, with unknown keys at every level, "
        "several DATA items, unicode and reserved characters",
        "facts §1 (event_handler_id optional in practice), §2 (server_endpoint missing in late 2024), §3",
        _DOCS + "api-reference/events/index.md",
    ),
    Clause(
        "forged-token-no-side-effect",
        "3a",
        "MUST",
        "a forged event (right member_id, wrong application_token) causes no REST call and no 5xx",
        "no REST call in response to the forged events, with any token, and no 5xx",
        "facts §2 (compare application_token on every event, constant-time)",
        _DOCS + "api-reference/events/safe-event-handlers.md",
    ),
    Clause(
        "forged-token-refused",
        "3b",
        "SHOULD",
        "a forged event is answered 401 or 403",
        "401 or 403 to every forged event",
        "facts §2; security-recommendations.md 'Validate application_token in Events'",
        _DOCS + "settings/cloud-and-on-premise/security-recommendations.md",
    ),
    Clause(
        "unknown-portal-no-side-effect",
        "4",
        "MUST",
        "an event from a portal that never installed the app causes no side effect",
        "no REST call for an event whose member_id never installed the app",
        "facts §2 (the token is stored per member_id from ONAPPINSTALL), §5 (installation)",
        _DOCS + "api-reference/events/safe-event-handlers.md",
    ),
    Clause(
        "rejects-malformed-bodies",
        "5",
        "MUST",
        "malformed bodies get a 4xx, never a 5xx or a hang",
        "a 4xx answer within the timeout to bodies that are not form-encoded, JSON, empty, truncated, "
        "oversized or binary",
        "facts §1 (always application/x-www-form-urlencoded), §7 (PHP limits: 8M post_max_size)",
        _DOCS + "api-reference/events/index.md",
    ),
    Clause(
        "ignores-repeated-delivery",
        "6",
        "SHOULD",
        "a byte-identical repeated delivery causes no second side effect",
        "no REST call for the second delivery of the same bytes",
        "facts §1 (no retries; identical events de-duplicated by the portal, so a repeat is not new work)",
        _DOCS + "api-reference/events/index.md",
    ),
    Clause(
        "answers-within-timeout",
        "7a",
        "MUST",
        "every delivery is answered within the timeout",
        "no delivery of the run timed out",
        "facts §1 (slow or failed deliveries are never resent; 10 s hop timeouts)",
        _DOCS + "settings/performance/queue.md",
    ),
    Clause(
        "answers-quickly",
        "7b",
        "SHOULD",
        "valid events are answered with a p95 within 1 s",
        "p95 latency of valid-event deliveries at most 1000 ms",
        "facts §1 (answer 200 at once and queue the work; slow handlers get lower priority)",
        _DOCS + "settings/performance/queue.md",
    ),
    Clause(
        "keeps-portals-apart",
        "8",
        "MUST",
        "two portals at once: each callback goes to the event's own portal; crossed tokens are refused",
        "REST calls only at each event's own client_endpoint with that portal's token; no REST call for "
        "portal B's event carrying portal A's application_token",
        "facts §2 (client_endpoint is https://<domain>/rest/; application_token per installation)",
        _DOCS + "api-reference/events/safe-event-handlers.md",
    ),
    Clause(
        "never-echoes-secrets",
        "9",
        "SHOULD",
        "answers never echo access_token, refresh_token or application_token",
        "no secret of the run in any response body",
        "facts §2 (application_token is a secret; OAuth tokens grant REST access)",
        _DOCS + "settings/cloud-and-on-premise/security-recommendations.md",
    ),
    Clause(
        "survives-bursts",
        "10",
        "SHOULD",
        "a burst of concurrent deliveries is answered without 5xx or loss",
        "every delivery of the burst answered 2xx, and the work of every event done",
        "facts §1 (one POST per handler and event, no retries: a refused delivery is lost)",
        _DOCS + "settings/performance/queue.md",
    ),
)
"""Every clause, in the order reports list them."""

CLAUSE_IDS: tuple[str, ...] = tuple(c.id for c in CLAUSES)

GENERIC_CLAUSE_IDS: tuple[str, ...] = (
    "tolerates-variation",
    "forged-token-no-side-effect",
    "forged-token-refused",
    "unknown-portal-no-side-effect",
    "rejects-malformed-bodies",
    "ignores-repeated-delivery",
    "answers-within-timeout",
    "answers-quickly",
    "never-echoes-secrets",
)
"""The clauses that are not OnSessionStart-specific: they run once for every event a handler declares. The
token, portal, body, tolerance, latency and secret rules hold for every event (facts §1, §2); a byte-identical
repeat is as much a non-event for OnImConnectorMessageAdd as for OnSessionStart (facts §1: no retries), and
it is what clause 7a's hang probe rides on. Shapes (1), two portals (8) and bursts (10) stay with
OnSessionStart, whose three shapes and callbacks they were written for."""

DEFAULT_EVENTS: tuple[str, ...] = ("ONSESSIONSTART",)
"""What a handler declares unless told otherwise."""

_FAMILY_EVENTS: tuple[str, ...] = (
    "ONSESSIONSTART",
    "ONSESSIONFINISH",
    "ONOPENLINEMESSAGEADD",
    "ONOPENLINEMESSAGEUPDATE",
    "ONOPENLINEMESSAGEDELETE",
    "ONIMCONNECTORDIALOGSTART",
    "ONIMCONNECTORDIALOGFINISH",
    "ONIMCONNECTORMESSAGEADD",
    "ONIMCONNECTORMESSAGEUPDATE",
    "ONIMCONNECTORMESSAGEDELETE",
    "ONIMCONNECTORSTATUSDELETE",
    "ONIMCONNECTORLINEDELETE",
    "ONAPPTEST",
)
DECLARABLE_EVENTS: tuple[str, ...] = (
    *_FAMILY_EVENTS,
    *(name for name in _eventtable.declarable() if name not in _FAMILY_EVENTS),
)
"""Events a handler may declare: the Open Lines and connector events and ONAPPTEST first (kept in step with
``mock_portal.siblings`` by a test), then every other event of the event table, each built from its derived
schema. ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL are the install flow's own events, with their own token
rules (facts §2), so the generic clauses do not apply to them."""


def verdict_id(clause_id: str, event: str = "ONSESSIONSTART") -> str:
    """The stable id of a verdict: the clause id for OnSessionStart (the reports the README shows), else
    ``clause-id[EVENT]``, e.g. ``forged-token-no-side-effect[ONIMCONNECTORMESSAGEADD]``."""
    return clause_id if event == "ONSESSIONSTART" else f"{clause_id}[{event}]"


def clause(clause_id: str) -> Clause:
    """The clause with ``clause_id`` (or its number, e.g. ``"3a"``); unknown ones raise with a suggestion."""
    for item in CLAUSES:
        if clause_id in (item.id, item.number):
            return item
    from mock_portal.errors import UnknownNameError

    raise UnknownNameError("clause", clause_id, CLAUSE_IDS)
