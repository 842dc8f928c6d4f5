"""Drift: what a change in the docs (or a hand edit) would change in the committed files, field by field."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_portal._resources import data_dir
from mock_portal.catalog._generate import build_all
from mock_portal.catalog._overlay import OVERLAY_FILE, Overlay, load_overlay


@dataclass(frozen=True)
class Difference:
    """One field-level difference between a committed schema and what the docs + overlay give now."""

    file: str
    pointer: str
    kind: str  # "added", "removed", "changed", "overlay" (an entry no longer applies), "file"
    committed: Any = None
    derived: Any = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.pointer or '/'}"
        if self.kind == "changed":
            return f"{where}: changed {_short(self.committed)} -> {_short(self.derived)}"
        if self.kind == "added":
            return f"{where}: added {_short(self.derived)}"
        if self.kind == "removed":
            return f"{where}: removed (was {_short(self.committed)})"
        return f"{where}: {self.derived}"


def _short(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _diff(file: str, pointer: str, old: Any, new: Any) -> Iterator[Difference]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            child = f"{pointer}/{_escape(key)}"
            if key not in new:
                yield Difference(file, child, "removed", committed=old[key])
            elif key not in old:
                yield Difference(file, child, "added", derived=new[key])
            else:
                yield from _diff(file, child, old[key], new[key])
    elif old != new:
        yield Difference(file, pointer, "changed", committed=old, derived=new)


def drift(
    docs_root: str | Path,
    *,
    schemas_dir: str | Path | None = None,
    overlay: Overlay | None = None,
    events: Iterable[str] | None = None,
) -> list[Difference]:
    """Re-derive every generated file and compare it with the committed one, field by field.

    An empty list means the committed files still equal derivation + overlay. Overlay entries whose pointers
    the docs no longer have are reported too (kind ``overlay``), never raised; so are committed event files
    the docs no longer describe (kind ``file``). ``events`` limits the check to those events' files and the
    shared ones.
    """
    from mock_portal.catalog import generated_files

    folder = Path(schemas_dir) if schemas_dir is not None else data_dir("schemas")
    overlay = overlay if overlay is not None else load_overlay(folder / OVERLAY_FILE)
    selected = frozenset(e.strip().upper() for e in events) if events is not None else None
    build = build_all(docs_root, overlay, collect=True, events=selected)
    found = [Difference(p.file, p.pointer, "overlay", derived=p.message) for p in build.problems or ()]
    for file in build.schemas:
        path = folder / file
        if not path.is_file():
            found.append(Difference(file, "", "file", derived="not committed yet"))
            continue
        text = path.read_text(encoding="utf-8")
        if text == build.text(file):
            continue
        try:
            committed = json.loads(text)
        except json.JSONDecodeError as exc:
            found.append(Difference(file, "", "file", derived=f"the committed file is not JSON ({exc})"))
            continue
        differences = list(_diff(file, "", committed, build.schemas[file]))
        found += differences or [
            Difference(file, "", "file", derived="same content, other bytes (formatting)")
        ]
    for file in sorted(generated_files(folder) - set(build.schemas) if selected is None else ()):
        found.append(Difference(file, "", "file", derived="committed, but the docs no longer give it"))
    return found
