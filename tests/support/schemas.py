"""Helpers for the schema, fixture and CLI tests: the fixture catalogue and the strict-whitelist rule."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_portal._resources import data_dir

SHAPES = ("source-2024", "docs-2024", "docs-2026")
_NAME = re.compile(r"^(?P<event>[a-z]+)-(?P<shape>source-2024|docs-2024|docs-2026)-(?P<variant>[a-z0-9-]+)$")


@dataclass(frozen=True)
class Fixture:
    """One fixture file: its path, its id (the file name without extension) and what it holds."""

    path: Path
    name: str
    kind: str  # "wire" or "json"
    event: str
    shape: str
    auth: str | None  # "user" / "system" / None for the doc examples

    @property
    def test_id(self) -> str:
        return f"{self.name}-{'form' if self.kind == 'wire' else 'json'}"

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def expectation(self) -> dict[str, Any]:
        sidecar = self.path.with_name(self.name + ".expect.json")
        loaded: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8"))
        return loaded


def _parse(path: Path) -> Fixture:
    if path.name.endswith(".wire.txt"):
        name, kind = path.name[: -len(".wire.txt")], "wire"
    elif path.name.endswith(".json"):
        name, kind = path.name[: -len(".json")], "json"
    else:
        raise AssertionError(f"unexpected fixture file {path}")
    match = _NAME.match(name)
    assert match, f"fixture name {name!r} does not read EVENT-SHAPE-VARIANT"
    variant = match["variant"]
    modes = ("user", "system")
    auth = next((mode for mode in modes if variant == mode or variant.startswith(mode + "-")), None)
    return Fixture(path, name, kind, match["event"].upper(), match["shape"], auth)


def fixtures(folder: str) -> list[Fixture]:
    """Every fixture body under ``fixtures/<folder>`` (sidecars and READMEs left out), sorted by name."""
    root = data_dir("fixtures") / folder
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".expect.json") and p.suffix in (".json", ".txt")
    ]
    return [_parse(p) for p in files]


def whitelist(node: Any, defs: Mapping[str, Any]) -> Any:
    """The strict key whitelist mirroring a tolerant object schema (the rule *.strict.json files follow).

    Every object with ``properties`` lists the same keys and forbids others; lists apply it to their items.
    """
    if not isinstance(node, Mapping):
        return True
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs[ref.rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return whitelist(merged, defs)
    if node.get("type") == "array" and "items" in node:
        inner = whitelist(node["items"], defs)
        return {"items": inner} if inner is not True else True
    if "properties" in node:
        return {
            "properties": {key: whitelist(value, defs) for key, value in node["properties"].items()},
            "additionalProperties": False,
        }
    return True


def load_schema(relative: str) -> dict[str, Any]:
    """A schema file under ``schemas/`` as parsed JSON."""
    loaded: dict[str, Any] = json.loads((data_dir("schemas") / relative).read_text(encoding="utf-8"))
    return loaded
