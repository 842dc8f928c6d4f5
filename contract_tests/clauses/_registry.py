"""The clause registry: every clause, built in or yours, is a function registered with its id and evidence.

A clause is a small function that receives a :class:`~contract_tests.judging.ClauseContext` and judges one
obligation of a handler: it returns (a pass, optionally with a reason), calls ``ctx.fail`` / plain ``assert``
(a failure), or ``ctx.inconclusive`` (no evidence either way). Registration records what the reports show:
the stable ``id``, the ``level`` (MUST fails a run, SHOULD only with ``--strict``), a title, what is expected,
the evidence it rests on and the doc page it comes from.

This module is imported by the pytest plugin in every pytest run: it imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from contract_tests.judging import ClauseContext

__all__ = [
    "DECLARABLE_EVENTS",
    "DEFAULT_EVENTS",
    "OFFLINE_NOT_DECLARED",
    "REGISTRY",
    "Clause",
    "ClauseRegistry",
    "Level",
    "clause",
    "verdict_id",
]

Level = Literal["MUST", "SHOULD"]
Judge = Callable[["ClauseContext"], Any]
F = TypeVar("F", bound=Callable[..., Any])

_SESSION_START = "ONSESSIONSTART"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

DEFAULT_EVENTS: tuple[str, ...] = (_SESSION_START,)
"""What a handler declares unless told otherwise."""

OFFLINE_NOT_DECLARED = (
    "the handler does not declare offline use (mock-portal verify --offline, pytest --b24-offline)"
)
"""Why a clause about offline events does not apply: the one line reports and the plugin show."""

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


def _declarable() -> tuple[str, ...]:
    from mock_portal import eventtable  # reads the event table (one JSON file), nothing heavy

    return (*_FAMILY_EVENTS, *(name for name in eventtable.declarable() if name not in _FAMILY_EVENTS))


DECLARABLE_EVENTS: tuple[str, ...] = _declarable()
"""Events a handler may declare: the Open Lines and connector events and ONAPPTEST first (kept in step with
``mock_portal.siblings`` by a test), then every other event of the event table, each built from its derived
schema. ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL are the install flow's own events, with their own token
rules (facts §2), so the generic clauses do not apply to them."""


def verdict_id(clause_id: str, event: str = _SESSION_START) -> str:
    """The stable id of a verdict: the clause id for OnSessionStart (the reports the README shows), else
    ``clause-id[EVENT]``, e.g. ``forged-token-no-side-effect[ONIMCONNECTORMESSAGEADD]``."""
    return clause_id if event == _SESSION_START else f"{clause_id}[{event}]"


@dataclass(frozen=True)
class Clause:
    """One registered clause.

    ``id`` is stable (``-k``, ``--clause``, JUnit and JSON reports use it); ``number`` is for people (built-in
    clauses only). ``events``: the events the clause is about (``None``: every declared event, once each).
    ``install_flow``: the clause needs the handler to learn its token through ONAPPINSTALL (with a configured
    token it is skipped). ``offline``: the clause is about handlers that declare offline use (skipped unless
    the configuration says the handler does: ``ContractConfig(offline=True)``). ``last``: judged after every
    other clause, because it judges the deliveries the others made (or, for fuzzing, so that a handler it
    brings down disturbs no other verdict). ``option``: the :class:`~contract_tests.config.ContractConfig`
    setting that turns the clause on (``"fuzz"``); while it is off (0) the clause is no part of a run or its
    reports. ``judge`` is the registered function;
    ``module`` where it was defined.
    """

    id: str
    level: Level
    title: str
    expected: str
    evidence: str
    doc: str
    judge: Judge = field(repr=False, compare=False)
    number: str = ""
    events: tuple[str, ...] | None = None
    install_flow: bool = False
    offline: bool = False
    last: bool = False
    builtin: bool = False
    module: str = ""
    option: str = ""

    def __str__(self) -> str:
        name = f"{self.number} {self.id}" if self.number else self.id
        return f"{name} [{self.level}]"

    @property
    def label(self) -> str:
        """``number id`` for built-in clauses, the id for yours (the first column of the table)."""
        return f"{self.number} {self.id}" if self.number else self.id

    def verdict_events(self, declared: Sequence[str]) -> tuple[str, ...]:
        """The events this clause gives a verdict for, given the handler's declared events (empty: none
        declared that it is about)."""
        if self.events is None:
            return tuple(declared)
        return tuple(e for e in declared if e in self.events)

    def not_applicable(
        self, declared: Sequence[str], install_flow: bool, *, offline: bool = False
    ) -> str | None:
        """Why the configuration makes this clause not apply (``None``: it applies). ``offline``: the handler
        declares offline use."""
        if self.offline and not offline:
            return OFFLINE_NOT_DECLARED
        if not self.verdict_events(declared):
            about = ", ".join(self.events or ())
            return (
                f"it is about {about}, which the handler does not declare (declared: {', '.join(declared)})"
            )
        if self.install_flow and not install_flow:
            return "it needs the install flow: with one configured application token two portals look alike"
        return None


class ClauseRegistry:
    """The clauses in registration order. Ids and numbers are unique: a second registration of an id raises
    (so two modules never silently replace each other's clause)."""

    def __init__(self) -> None:
        self._clauses: dict[str, Clause] = {}

    def register(self, item: Clause) -> Clause:
        """Add ``item``; a taken id or number raises :class:`~mock_portal.errors.UsageError`."""
        from mock_portal.errors import UsageError

        if not _ID.match(item.id):
            raise UsageError(
                f"a clause id is 2-63 lower-case letters, digits and dashes, got {item.id!r} ({item.module})"
            )
        if item.level not in ("MUST", "SHOULD"):
            raise UsageError(f"clause {item.id}: level must be 'MUST' or 'SHOULD', got {item.level!r}")
        taken = self._clauses.get(item.id)
        if taken is not None:
            raise UsageError(
                f"clause id {item.id!r} is already registered (by {taken.module or 'the contract'}); "
                f"pick another id for the clause in {item.module or '?'}"
            )
        if item.number and any(c.number == item.number for c in self._clauses.values()):
            raise UsageError(f"clause number {item.number!r} is already taken")
        for event in item.events or ():
            if event not in DECLARABLE_EVENTS:
                from mock_portal.errors import UnknownNameError

                raise UnknownNameError("declarable event", event, DECLARABLE_EVENTS)
        self._clauses[item.id] = item
        return item

    def unregister(self, clause_id: str) -> None:
        """Remove a clause (a test's own, say); unknown ids raise with a suggestion."""
        del self._clauses[self.get(clause_id).id]

    def get(self, clause_id: str) -> Clause:
        """The clause with ``clause_id`` (or its number, e.g. ``"3a"``); unknown ones raise
        :class:`~mock_portal.errors.UnknownNameError` with a suggestion."""
        found = self._clauses.get(clause_id)
        if found is not None:
            return found
        for item in self._clauses.values():
            if item.number and item.number == clause_id:
                return item
        from mock_portal.errors import UnknownNameError

        raise UnknownNameError("clause", clause_id, tuple(self._clauses))

    def __iter__(self) -> Iterator[Clause]:
        """The built-in clauses by number (1, 2, 3a, 3b, ... 10), the built-in ones a setting turns on
        (fuzzing), then yours in registration order."""
        return iter([*self.builtins(), *self.optional(), *self.own()])

    def __len__(self) -> int:
        return len(self._clauses)

    def __contains__(self, clause_id: object) -> bool:
        return clause_id in self._clauses

    def ids(self) -> tuple[str, ...]:
        """Every registered id, in order."""
        return tuple(self._clauses)

    def builtins(self) -> tuple[Clause, ...]:
        """The contract's own clauses that every run judges, by number."""
        return tuple(
            sorted((c for c in self._clauses.values() if c.builtin and not c.option), key=_number_key)
        )

    def optional(self) -> tuple[Clause, ...]:
        """The contract's own clauses that run only when a setting turns them on (``survives-fuzzing``)."""
        return tuple(c for c in self._clauses.values() if c.builtin and c.option)

    def own(self) -> tuple[Clause, ...]:
        """The clauses registered by users (everything that is not built in)."""
        return tuple(c for c in self._clauses.values() if not c.builtin)

    @contextlib.contextmanager
    def scoped(self) -> Iterator[ClauseRegistry]:
        """Clauses registered inside the block are forgotten after it (for tests)."""
        saved = dict(self._clauses)
        try:
            yield self
        finally:
            self._clauses = saved


def _number_key(item: Clause) -> tuple[int, str]:
    digits = "".join(ch for ch in item.number if ch.isdigit())
    return (int(digits) if digits else 10**6, item.number)


REGISTRY = ClauseRegistry()
"""Every clause the contract runs: the built-in ones, then yours, in registration order."""


def clause(
    clause_id: str,
    *,
    level: Level,
    title: str,
    expected: str,
    evidence: str,
    doc: str,
    events: Iterable[str] | None = None,
    install_flow: bool = False,
    offline: bool = False,
    last: bool = False,
    number: str = "",
    registry: ClauseRegistry | None = None,
    _builtin: bool = False,
    _option: str = "",
) -> Callable[[F], F]:
    """Register the decorated function as a clause.

    ::

        from contract_tests import clause

        @clause(
            "greets-in-own-chat",
            level="SHOULD",
            title="OnSessionStart is greeted in the event's own chat",
            expected="an im.message.add to the chat the event names",
            evidence="the greeting goes to the session the client opened",
            doc="https://apidocs.bitrix24.com/api-reference/imopenlines/openlines/events/on-session-start.html",
            events=["ONSESSIONSTART"],
        )
        def greets_in_own_chat(ctx):
            ...

    ``events`` limits it to those events (default: every event the handler declares, one verdict each).
    ``offline=True``: the clause is about handlers that declare offline use, and runs only for them.
    The function gets a :class:`~contract_tests.judging.ClauseContext`; it passes by returning (a string
    return value is the reason shown), fails with ``ctx.fail(...)`` or a failed ``assert``, and is
    inconclusive with ``ctx.inconclusive(...)``.
    """
    names = None
    if events is not None:
        names = tuple(str(e).strip().upper() for e in ([events] if isinstance(events, str) else events))

    def register(func: F) -> F:
        item = Clause(
            id=clause_id,
            level=level,
            title=title,
            expected=expected,
            evidence=evidence,
            doc=doc,
            judge=func,
            number=number,
            events=names,
            install_flow=install_flow,
            offline=offline,
            last=last,
            builtin=_builtin,
            module=f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}",
            option=_option,
        )
        (registry or REGISTRY).register(item)
        return func

    return register
