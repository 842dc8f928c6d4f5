"""The derived method specs side by side with the docs' own simulator specs.

The Russian edition ships the output of its browser "simulator" (``_assets/simulator/spec/``: one JSON per
method with params, types, required flags, scope and read/write kind; docs-full/SOURCES.md). It is a second,
independent reading of the same pages, so comparing it with the derivation measures both: every difference
is listed per method (``scope``, ``kind``, a parameter only one side has, a type or required flag that
differs, a nested field only one side has), and :func:`agreement` counts them.

The simulator writes only the first type of a union (``object`` for ``object | string``) and calls a method
``read`` only when its last name part is ``get``, ``list``, ``fields``, ``getFields`` or ``getList``; the
comparison reports those as differences too, under their own aspects, so the counts say what they are.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_portal.derive._editions import RU

SIMULATOR = "_assets/simulator/spec"
_BASIC = frozenset({"базовый", "basic", ""})


def simulator_dir(docs_root: str | Path) -> Path:
    """The simulator's spec folder under a docs root holding both editions."""
    return Path(docs_root) / RU / SIMULATOR


def load_simulator(docs_root: str | Path) -> dict[str, dict[str, Any]]:
    """Every simulator spec by method name (empty when the docs root has none)."""
    folder = simulator_dir(docs_root) / "methods"
    if not folder.is_dir():
        return {}
    specs = {}
    for path in sorted(folder.glob("*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(spec, dict) and isinstance(spec.get("method"), str):
            specs[spec["method"]] = spec
    return specs


def _scopes(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return sorted(s.strip() for s in value.split(",") if s.strip() and s.strip().lower() not in _BASIC)


def _first_type(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.replace("|", " ").split()[0] if value.strip() else None


def _fields_of(param: Mapping[str, Any], sim: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    ref = param.get("ref")
    if isinstance(ref, str) and ref.startswith("#/defs/"):
        definition = sim.get("defs", {}).get(ref[len("#/defs/") :], {})
        fields = definition.get("fields")
        return fields if isinstance(fields, list) else None
    return None


def _compare_params(
    ours: list[Mapping[str, Any]], theirs: list[Mapping[str, Any]], sim: Mapping[str, Any], prefix: str
) -> list[str]:
    differences = []
    mine = {p["name"]: p for p in ours}
    other = {p["name"]: p for p in theirs if isinstance(p.get("name"), str)}
    for name in sorted(mine.keys() - other.keys()):
        differences.append(f"param-only-derived {prefix}{name}")
    for name in sorted(other.keys() - mine.keys()):
        differences.append(f"param-only-simulator {prefix}{name}")
    for name in sorted(mine.keys() & other.keys()):
        a, b = mine[name], other[name]
        if (a.get("type") or "unknown") != (b.get("type") or "unknown"):  # the simulator's "unknown": no type
            first_same = _first_type(a.get("type")) == _first_type(b.get("type"))
            aspect = "type-union" if first_same else "type"
            differences.append(f"{aspect} {prefix}{name}: {a.get('type')} / {b.get('type')}")
        if a.get("required") != b.get("required"):
            differences.append(f"required {prefix}{name}: {a.get('required')} / {b.get('required')}")
        nested = _fields_of(b, sim)
        if nested is not None and prefix.count(".") < 1:
            differences += _compare_params(a.get("fields", []), nested, sim, f"{prefix}{name}.")
    return differences


def compare_with_simulator(spec: Mapping[str, Any], sim: Mapping[str, Any] | None) -> list[str]:
    """The differences between a derived method spec and the simulator's spec of the same method."""
    if sim is None:
        return ["absent-from-simulator"]
    differences = []
    if sorted(spec.get("scope", [])) != _scopes(sim.get("scope")):
        differences.append(f"scope: {','.join(spec.get('scope', [])) or 'basic'} / {sim.get('scope')}")
    if spec.get("kind") != sim.get("kind"):
        differences.append(f"kind: {spec.get('kind')} / {sim.get('kind')}")
    differences += _compare_params(spec.get("params", []), sim.get("params", []), sim, "")
    return differences


@dataclass
class Agreement:
    """How far the derivation and the simulator agree, in counts."""

    derived: int = 0
    simulator: int = 0
    both: int = 0
    only_derived: int = 0
    only_simulator: int = 0
    agree: int = 0
    """Methods in both whose scope, kind and parameters (names, types, required, nested names) all agree."""
    agree_params: int = 0
    """Methods in both whose parameters agree (scope and kind aside)."""
    aspects: Counter[str] = field(default_factory=Counter)
    """Methods with at least one difference of each aspect (``scope``, ``kind``, ``type``...)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {**{k: v for k, v in self.__dict__.items() if k != "aspects"}, "aspects": dict(self.aspects)}


def agreement(
    specs: Mapping[str, Mapping[str, Any]], simulator: Mapping[str, Mapping[str, Any]]
) -> Agreement:
    """Count the agreement of every derived spec with the simulator's."""
    result = Agreement(derived=len(specs), simulator=len(simulator))
    result.both = len(specs.keys() & simulator.keys())
    result.only_derived = len(specs.keys() - simulator.keys())
    result.only_simulator = len(simulator.keys() - specs.keys())
    for name in sorted(specs.keys() & simulator.keys()):
        differences = compare_with_simulator(specs[name], simulator[name])
        aspects = {d.split(" ", 1)[0].rstrip(":") for d in differences}
        result.aspects.update(aspects)
        if not differences:
            result.agree += 1
        if not aspects - {"scope", "kind"}:
            result.agree_params += 1
    return result
