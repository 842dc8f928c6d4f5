"""Recorded events in pytest and in the contract: the helper behind the plugin's ``b24_recorded_events``
fixture, and the adapter behind ``mock-portal replay --as-contract``.

``recorded_events(paths, portal, app)`` loads recordings (``mock-portal record``), wire bodies, captured
payloads or folders of them, and re-stamps each event for ``portal`` and ``app`` (fresh ``ts``, the portal's
domain, member_id, endpoints and tokens; :func:`mock_portal.replay.restamp`), so a recorded production event
becomes a repeatable test::

    def test_recorded_events_are_accepted(b24_recorded_events, b24_deliver):
        for event in b24_recorded_events:
            assert b24_deliver(event).ok, event.source

``contract_over_recorded`` is a thin adapter over today's public engine (``ContractConfig`` /
``ContractRun``), which builds its bodies from the portal's state and takes no given bodies: it runs the
generic clauses for the *events the recording holds* (those the contract declares) and names the others as
not covered. When the engine accepts recorded bodies as its base events, this function is the one place to
re-point.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contract_tests.engine import ContractReport
    from mock_portal.portal import App, Portal
    from mock_portal.replay import RecordedEvent

__all__ = ["RecordedContract", "StampedEvent", "contract_over_recorded", "recorded_events"]


@dataclass(frozen=True)
class StampedEvent:
    """A recorded event re-stamped for a portal: where it came from, its name and payload (wire view);
    ``body()`` is the form body (so ``b24_deliver(event)`` sends it)."""

    source: str
    event: str
    payload: dict[str, Any]

    def body(self) -> str:
        """The form body, as PHP ``http_build_query`` encodes the payload."""
        from mock_portal.wire import encode

        return encode(self.payload)


def recorded_events(paths: str | Path | Sequence[str | Path], portal: Portal, app: App) -> list[StampedEvent]:
    """The events in ``paths`` re-stamped for ``portal`` and ``app`` (a path string may list several,
    separated by the OS path separator, as ``B24_RECORDING`` does)."""
    import os

    from mock_portal.errors import UsageError
    from mock_portal.replay import load_events, stamp_for

    if isinstance(paths, (str, Path)):
        paths = [p for p in str(paths).split(os.pathsep) if p]
    events, _ = load_events(*paths)
    if not events:
        raise UsageError(f"no event in {', '.join(map(str, paths))}")
    return [StampedEvent(e.source, e.event, stamp_for(portal, app, e.payload)) for e in events]


@dataclass(frozen=True)
class RecordedContract:
    """The report, the recorded events the clauses ran for, and those the contract has no clauses for."""

    report: ContractReport
    covered: tuple[str, ...]
    uncovered: tuple[str, ...]


def contract_over_recorded(
    events: Iterable[RecordedEvent],
    handler: Any,
    *,
    install_url: str | None = None,
    application_token: str | None = None,
    timeout: float = 10.0,
) -> RecordedContract:
    """Run the generic clauses for the recorded events' types (see the module docstring)."""
    from contract_tests.clauses import DECLARABLE_EVENTS, GENERIC_CLAUSE_IDS
    from contract_tests.engine import ContractConfig, ContractRun
    from mock_portal.errors import UsageError

    names = list(dict.fromkeys(e.event for e in events))
    covered = tuple(n for n in names if n in DECLARABLE_EVENTS)
    uncovered = tuple(n for n in names if n not in DECLARABLE_EVENTS)
    if not covered:
        raise UsageError(
            f"none of the recorded events ({', '.join(names)}) is one the contract has clauses for "
            f"({', '.join(DECLARABLE_EVENTS)})"
        )
    config = ContractConfig(
        handler, install_url=install_url, application_token=application_token, events=covered, timeout=timeout
    )
    with ContractRun(config) as run:
        report = run.run(GENERIC_CLAUSE_IDS)
    return RecordedContract(report, covered, uncovered)
