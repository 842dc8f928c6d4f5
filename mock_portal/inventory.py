"""The status of every documented event and method, for ``mock-portal catalog``.

An event's row says what the suite has for it: a schema derived from its page (or only the envelope),
whether the English page agrees with the canonical Russian one, how many overlay corrections it carries, how
many real captures of it validate, whether its builder is hand-written or derived from the schema, and what
makes the mock portal send it. A method's row: its scope, read or write, how many parameters its page
documents, whether the docs' simulator reads the page the same way, and how the mock portal answers it
(``implemented`` with state of its own, ``seeded`` from the seeded dataset, ``honest-error``: refused as not
simulated, never a fake success; the REST layer tells, so the caller passes it in). Everything comes from
committed data (the event table, the schemas, the overlay, the captures, the method specs): no docs needed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mock_portal._resources import data_dir
from mock_portal.errors import MockPortalError

__all__ = ["EventRow", "MethodRow", "event_rows", "method_rows", "summary"]


@dataclass(frozen=True)
class EventRow:
    """One documented event and what the suite has for it."""

    name: str
    kind: str
    scope: str
    schema: str
    """``derived`` (a schema from its page), ``envelope`` (only the envelope: ONAPPTEST)."""
    translation: str
    overlay: int
    """Corrections the overlay makes to its schema beyond the ones every event gets."""
    captures: str
    """``valid/total`` real captures of it, ``-`` when there are none."""
    builder: str
    trigger: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class MethodRow:
    """One documented method and its spec."""

    name: str
    scope: str
    kind: str
    params: int
    simulator: str
    """``agrees``, ``absent`` (the simulator has no spec of it) or ``differs (N)``."""
    deprecated: bool
    url: str
    mock: str = "-"
    """How the mock portal answers it: ``implemented``, ``seeded`` or ``honest-error`` (``-``: not asked)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


@cache
def _overlay_counts() -> Mapping[str, int]:
    from mock_portal.catalog import load_overlay

    overlay = load_overlay()
    counts: Counter[str] = Counter()
    for target in overlay.targets:
        if target.event:
            counts[target.event] += len(target.patches)
    for code, patches in overlay.events.items():
        counts[code] += len(patches)
    return counts


def _redacted(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _redacted(item, (*path, str(key)))
    elif value == "redacted":
        yield path


def _judged(payload: dict[str, Any], event: str) -> dict[str, Any]:
    """A capture whose author blanked values ('redacted'): only its keys are evidence, so each blanked value
    takes a built event's value at the same path."""
    from mock_portal.events import build_event

    paths = list(_redacted(payload))
    if not paths:
        return payload
    auth = "user" if "access_token" in payload.get("auth", {}) else "system"
    built = build_event(event, auth=auth, seed=0).wire_payload
    judged: dict[str, Any] = json.loads(json.dumps(payload))
    for path in paths:
        source: Any = built
        target: Any = judged
        for key in path[:-1]:
            source, target = source.get(key, {}) if isinstance(source, Mapping) else {}, target[key]
        target[path[-1]] = source.get(path[-1], "redacted") if isinstance(source, Mapping) else "redacted"
    return judged


@cache
def _capture_counts() -> Mapping[str, tuple[int, int]]:
    from mock_portal import schemas

    folder = data_dir("fixtures") / "captures"
    counts: dict[str, tuple[int, int]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8")).get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
            continue
        event = payload["event"].upper()
        valid, total = counts.get(event, (0, 0))
        try:
            ok = schemas.validate(_judged(payload, event), event).ok
        except MockPortalError:  # an event the table lacks: counted, not valid
            ok = False
        counts[event] = (valid + ok, total + 1)
    return counts


def event_rows() -> list[EventRow]:
    """Every event of the event table, sorted by name."""
    from mock_portal import eventtable

    overlay = _overlay_counts()
    captures = _capture_counts()
    rows = []
    for entry in eventtable.entries():
        valid, total = captures.get(entry.name, (0, 0))
        rows.append(
            EventRow(
                name=entry.name,
                kind=entry.kind,
                scope=",".join(entry.scope) or "basic",
                schema="derived" if entry.shapes else "envelope",
                translation=entry.translation,
                overlay=overlay.get(entry.name, 0),
                captures=f"{valid}/{total}" if total else "-",
                builder=entry.builder,
                trigger=entry.trigger or "-",
                url=entry.url,
            )
        )
    return rows


def method_rows(mock: Callable[[str], str] | None = None) -> list[MethodRow]:
    """Every documented method, sorted by name; ``mock`` tells how the mock portal answers a method
    (:func:`mock_portal.rest.unsimulated.status_of`)."""
    from mock_portal import methods

    rows = []
    for name in methods.names():
        spec = methods.spec(name)
        verdict = spec.simulator
        simulator = verdict if isinstance(verdict, str) else f"differs ({len(verdict)})"
        rows.append(
            MethodRow(
                name=name,
                scope=",".join(spec.scope) or "basic",
                kind=spec.kind,
                params=len(spec.params),
                simulator=simulator,
                deprecated=spec.deprecated,
                url=spec.url,
                mock=mock(name) if mock is not None else "-",
            )
        )
    return rows


def summary(events: list[EventRow] | None, methods: list[MethodRow] | None) -> dict[str, Any]:
    """The counts the catalog ends with."""
    out: dict[str, Any] = {}
    if events is not None:
        captured = [row.captures for row in events if row.captures != "-"]
        out["events"] = {
            "total": len(events),
            "schema_derived": sum(row.schema == "derived" for row in events),
            "translation": dict(Counter(row.translation for row in events)),
            "with_overlay": sum(row.overlay > 0 for row in events),
            "captures_valid": sum(int(c.split("/")[0]) for c in captured),
            "captures_total": sum(int(c.split("/")[1]) for c in captured),
            "builder": dict(Counter(row.builder for row in events)),
            "with_trigger": sum(row.trigger != "-" for row in events),
        }
    if methods is not None:
        out["methods"] = {
            "total": len(methods),
            "kind": dict(Counter(row.kind for row in methods)),
            "simulator": dict(Counter(row.simulator.split(" ")[0] for row in methods)),
            "deprecated": sum(row.deprecated for row in methods),
            "mock": dict(Counter(row.mock for row in methods)),
        }
    return out
