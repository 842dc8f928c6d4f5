"""Verdicts as data: what a run sent and got back (:class:`Exchange`), each clause's judgement
(:class:`Verdict`) and the whole run (:class:`ContractReport`). Rendering them (text, JUnit, JSON) lives in
:mod:`contract_tests.reports`; every text here is already masked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from contract_tests.clauses import Clause, verdict_id
from mock_portal.errors import MockPortalError
from mock_portal.redact import redact_text

__all__ = ["ContractReport", "ContractViolation", "Exchange", "Outcome", "Verdict"]

Outcome = Literal["pass", "fail", "inconclusive", "skip"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "inconclusive", "skip")


@dataclass(frozen=True)
class Exchange:
    """One delivery the contract made and what came back; every text is masked.

    ``sent`` is the part of the body that matters (the event, the ``auth`` block and the ``data`` paths the
    clause is about), ``response`` a masked excerpt of the answer. ``kind`` says what was sent: ``valid``,
    ``forged``, ``repeat``, ``unknown-portal``, ``malformed``, ``install``, ``probe`` or ``fuzz`` (generated
    from the schemas). ``concurrent``: part
    of a burst (never timed by clause 7). ``reproduce`` is a curl line (secrets masked, so a token check will
    refuse it) or, with ``bodies_dir``, one that replays the exact body from ``body_file``. Both are built
    by ``views`` the first time they are read (most deliveries of a run are never shown).
    """

    serial: int
    label: str
    url: str
    sent_bytes: int
    outcome: str
    status: int | None
    latency_ms: float
    response: str
    error: str | None
    valid: bool = False
    event: str = ""
    kind: str = "valid"
    clause: str = ""
    auth: str = ""
    portal: str = ""
    concurrent: bool = False
    body_file: str | None = None
    views: Callable[[], tuple[str, str]] | None = field(default=None, repr=False, compare=False)
    """Builds ``(sent, reproduce)``, already masked."""

    @functools.cached_property
    def _views(self) -> tuple[str, str]:
        return self.views() if self.views is not None else ("", "")

    @property
    def sent(self) -> str:
        """The part of the body that matters, masked."""
        return self._views[0]

    @property
    def reproduce(self) -> str:
        """A curl line that replays this delivery (see the class docstring)."""
        return self._views[1]

    @property
    def ok(self) -> bool:
        """Answered 2xx."""
        return self.outcome == "ok"

    @property
    def answer(self) -> str:
        """What came back, in one line: ``403 in 2.1 ms: {...}`` or ``timeout after 10000 ms: ...``."""
        if self.status is not None and self.outcome in ("ok", "http_error"):
            text = f"{self.status} in {self.latency_ms:.1f} ms"
            return f"{text}: {self.response}" if self.response else text
        text = f"{self.outcome} after {self.latency_ms:.0f} ms"
        return f"{text}: {self.error}" if self.error else text

    @property
    def short(self) -> str:
        """``status`` or outcome: ``403``, ``timeout``."""
        return str(self.status) if self.status is not None else self.outcome

    def to_dict(self) -> dict[str, Any]:
        """A JSON view (already masked)."""
        return {
            "label": self.label,
            "kind": self.kind,
            "clause": self.clause,
            "event": self.event,
            "auth": self.auth,
            "url": self.url,
            "sent": self.sent,
            "sent_bytes": self.sent_bytes,
            "outcome": self.outcome,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "response": self.response,
            "error": self.error,
            "reproduce": self.reproduce,
            "body_file": self.body_file,
            "concurrent": self.concurrent,
        }


@dataclass(frozen=True)
class Verdict:
    """The judgement of one clause for one event: ``outcome``, a one-line ``reason``, the exchanges that show
    it, explanations (``notes``), the handler's log tail and a command that re-runs just this clause."""

    clause: Clause
    outcome: Outcome
    reason: str
    exchanges: tuple[Exchange, ...] = ()
    log_tail: str = ""
    event: str = "ONSESSIONSTART"
    notes: tuple[str, ...] = ()
    rerun: str = ""
    mask: Callable[[str], str] = field(default=redact_text, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The verdict's stable id: the clause id, with ``[EVENT]`` for events other than OnSessionStart."""
        return verdict_id(self.clause.id, self.event)

    def fails_run(self, strict: bool = False) -> bool:
        """Whether this verdict fails a run: a failed MUST, or any failure when ``strict``."""
        return self.outcome == "fail" and (strict or self.clause.level == "MUST")

    def message(self) -> str:
        """The full, masked explanation: clause, reason, what was sent and came back, doc, how to re-run."""
        from contract_tests.reports import verdict_message

        return verdict_message(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON view (already masked)."""
        mask = self.mask
        return {
            "id": self.id,
            "clause": self.clause.id,
            "event": self.event,
            "number": self.clause.number,
            "level": self.clause.level,
            "title": self.clause.title,
            "outcome": self.outcome,
            "reason": mask(self.reason),
            "expected": self.clause.expected,
            "evidence": self.clause.evidence,
            "doc": self.clause.doc,
            "notes": [mask(n) for n in self.notes],
            "rerun": mask(self.rerun),
            "exchanges": [ex.to_dict() for ex in self.exchanges],
            "log_tail": mask(self.log_tail),
        }


@dataclass(frozen=True)
class ContractReport:
    """Every verdict of a run, in clause order, with the rule that decides the run's result."""

    verdicts: tuple[Verdict, ...]
    strict: bool = False
    handler: str = ""
    seconds: float = 0.0
    mask: Callable[[str], str] = field(default=redact_text, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when every MUST clause passed (every clause, when ``strict``): nothing fails the run."""
        return not any(v.fails_run(self.strict) for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        """How many verdicts of each outcome."""
        out: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for v in self.verdicts:
            out[v.outcome] += 1
        return out

    def failed(self) -> list[str]:
        """Ids of the verdicts that failed (MUST and SHOULD): ``clause-id``, or ``clause-id[EVENT]``."""
        return [v.id for v in self.verdicts if v.outcome == "fail"]

    def verdict(self, verdict_id: str) -> Verdict:
        """The verdict with ``verdict_id`` (KeyError if the run has none)."""
        for v in self.verdicts:
            if v.id == verdict_id:
                return v
        raise KeyError(verdict_id)

    def table(self) -> str:
        """A plain-text table: clause, level, verdict, reason, and the result line."""
        from contract_tests.reports import report_table

        return report_table(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON view of the report (already masked)."""
        from contract_tests.reports import report_dict

        return report_dict(self)

    def junit_xml(self) -> str:
        """The report as a JUnit XML document (one testcase per verdict)."""
        from contract_tests.reports import report_junit

        return report_junit(self)


class ContractViolation(MockPortalError, AssertionError):
    """A handler broke a clause; ``str()`` is the full, masked failure message (pytest shows it)."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.message())

    def __str__(self) -> str:
        return self.verdict.message()
