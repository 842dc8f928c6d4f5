"""Generation: every target of the overlay, every other event page of the docs, and the event table.

A page target whose ``page`` names no edition (``api-reference/...``) is derived from the canonical Russian
page; the English page is derived too, compared field by field (:func:`mock_portal.derive.compare_editions`)
and its prose (descriptions, titles) laid over the canonical structure, so the committed schemas read in
English while their structure follows the Russian page. The comparison is recorded in the schema's
``x-b24-translation``: ``{"en": "agrees"}``, or ``{"en": "differs", "differences": [...]}`` with the value in
both editions for each difference. A ``page`` under ``b24restdocs/``, ``b24-rest-docs/`` or ``_history/`` is
that edition's page alone; ``_history/`` lives in the docs folder or, when that is the complete docs
(``shared/docs-full``, which has no history), in ``shared/docs`` beside it.

Every event page the overlay declares no target for gets two generated files, ``<event>/docs.json`` (the page
with the overlay's ``event_patches``) and ``<event>/docs.strict.json``, written on one line. ``index.json``,
the event table, is generated last from the built schemas and the declared facts
(:mod:`mock_portal.eventtable._declared`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_portal.catalog._overlay import (
    SCHEMA_BASE,
    Overlay,
    _add_revision,
    _apply,
    _fail,
    _get,
    _Missing,
    _Patch,
    _Target,
    _with_event,
    load_overlay,
)
from mock_portal.errors import DeriveError, OverlayError

INDEX_FILE = "index.json"
HISTORY = "_history"
COMMON_FOLDER = "common/"


@dataclass
class Problem:
    """An overlay entry that no longer applies (the docs changed under it): reported by drift."""

    file: str
    pointer: str
    message: str


@dataclass
class Build:
    """The outcome of one generation: every file's schema, which are written on one line, the problems."""

    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    compact: set[str] = field(default_factory=set)
    problems: list[Problem] | None = None

    def text(self, file: str) -> str:
        """The file as it is committed."""
        from mock_portal.derive import dumps_schema

        schema = self.schemas[file]
        if file == INDEX_FILE:  # the table keeps its order: shapes oldest first, as known_shapes() lists them
            return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        if file in self.compact:
            return json.dumps(schema, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
        return dumps_schema(schema)


# ---------------------------------------------------------------------------------------------- pages


def _docs_folder(docs_root: str | Path) -> Path:
    docs = Path(docs_root)
    if not docs.is_dir():
        raise OverlayError("not a directory", entry=f"--docs-root {docs}")
    return docs


def locate(docs: Path, relative: str) -> Path:
    """The file ``relative`` names under the docs folder; ``_history/`` also in ``shared/docs`` beside it."""
    direct = docs / relative
    if direct.exists() or not relative.startswith(HISTORY + "/"):
        return direct
    beside = docs.parent / "docs" / relative
    return beside if beside.exists() else direct


def _edition_of(page: str) -> str | None:
    from mock_portal.derive import EDITIONS

    head = page.split("/", 1)[0]
    return head if head in EDITIONS or head == HISTORY else None


def _canonical(docs: Path, page: str, schema_id: str) -> dict[str, Any]:
    """A page derived from the canonical edition with the translation's prose and the comparison recorded."""
    from mock_portal.derive import EN, RU, compare_editions, with_prose
    from mock_portal.derive import derive_event_schema as derive_schema

    ru_page, en_page = docs / RU / page, docs / EN / page
    if not ru_page.is_file():
        if not en_page.is_file():
            raise DeriveError("the page is in neither edition of the docs folder", page=str(ru_page))
        schema = derive_schema(en_page, schema_id=schema_id)
        schema["x-b24-translation"] = {"ru": "missing"}
        return schema
    schema = derive_schema(ru_page, schema_id=schema_id)
    if not en_page.is_file():
        schema["x-b24-translation"] = {"en": "missing"}
        return schema
    english = derive_schema(en_page, schema_id=schema_id)
    differences = compare_editions(schema, english)
    with_prose(schema, english)
    if "x-b24-source" in schema and "x-b24-source" in english:
        schema["x-b24-source"]["prose"] = english["x-b24-source"]
    schema["x-b24-translation"] = (
        {"en": "differs", "differences": [d.to_dict() for d in differences]}
        if differences
        else {"en": "agrees"}
    )
    return schema


def _derived(target: _Target, docs: Path) -> dict[str, Any]:
    from mock_portal.derive import derive_schema

    assert target.page is not None
    schema_id = SCHEMA_BASE + target.file
    if _edition_of(target.page) is None:
        schema = _canonical(docs, target.page, schema_id)
    else:
        page = locate(docs, target.page)
        if not page.is_file():
            raise DeriveError("the page is missing from the docs folder", page=str(page))
        docs_root = locate(docs, target.docs_root) if target.docs_root else None
        schema = derive_schema(page, docs_root=docs_root, schema_id=schema_id)
    if target.select is not None:
        selected = _get(schema, target.select)
        if not isinstance(selected, dict):
            raise DeriveError(
                f"no {target.select} in the derived schema (overlay 'select')", page=target.page
            )
        keep = ("$schema", "$id", "x-b24-source", "x-b24-translation")
        schema = {**copy.deepcopy(selected), **{k: schema[k] for k in keep if k in schema}}
    return schema


def _build_page(target: _Target, overlay: Overlay, docs: Path, build: Build) -> dict[str, Any]:
    schema = _derived(target, docs)
    if target.revision:
        _add_revision(schema, target.revision)
    patches = [*(_with_event(overlay.event_patches, target.event) if target.event else ()), *target.patches]
    for patch in patches:
        try:
            _apply(schema, patch)
        except _Missing as exc:
            if build.problems is None:
                raise OverlayError(str(exc).split(": ", 1)[1], entry=exc.patch.where) from None
            message = f"{exc.patch.where} no longer applies: not in the derived schema ({exc.patch.why})"
            build.problems.append(Problem(target.file, exc.pointer, message))
    schema.update(copy.deepcopy(dict(target.root)))
    for name, pointer in target.whitelists.items():
        mirrored = _get(schema, pointer)
        schema.setdefault("$defs", {})[name] = {
            "title": f"{mirrored.get('title', name) if isinstance(mirrored, dict) else name}: "
            "no keys beyond the known ones",
            **_whitelist(mirrored, schema.get("$defs", {})),
        }
    return schema


# ---------------------------------------------------------------------------------------------- companions


def _whitelist(node: Any, defs: Mapping[str, Any]) -> dict[str, Any]:
    found = _mirror(node, defs)
    return found if isinstance(found, dict) else {}


def _mirror(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """The key whitelist of a tolerant object schema: same keys at every object level, no others.

    Rows standing for any key (``additionalProperties``, ``patternProperties``) stay open to any such key,
    whose value is whitelisted in turn.
    """
    if not isinstance(node, Mapping) or depth > 64:
        return True
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged = {**defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return _mirror(merged, defs, depth + 1)
    if node.get("type") == "array" and "items" in node:
        inner = _mirror(node["items"], defs, depth + 1)
        return {"items": inner} if inner is not True else True
    extra = node.get("additionalProperties")
    patterns = node.get("patternProperties")
    if "properties" in node or isinstance(extra, Mapping) or isinstance(patterns, Mapping):
        mirrored: dict[str, Any] = {
            "properties": {k: _mirror(v, defs, depth + 1) for k, v in node.get("properties", {}).items()},
        }
        if isinstance(patterns, Mapping):
            mirrored["patternProperties"] = {k: _mirror(v, defs, depth + 1) for k, v in patterns.items()}
        mirrored["additionalProperties"] = (
            _mirror(extra, defs, depth + 1) if isinstance(extra, Mapping) else False
        )
        return mirrored
    return True


def _relative(file: str, target: str) -> str:
    folder = file.rsplit("/", 1)[0] + "/" if "/" in file else ""
    return target[len(folder) :] if target.startswith(folder) else target


def _strict(target: _Target, built: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    assert target.strict_of is not None
    tolerant = built.get(target.strict_of)
    if tolerant is None:
        raise _fail(f"targets/{target.file}", f"strict_of names {target.strict_of!r}, not an earlier target")
    envelope = built.get("common/envelope.json", {})
    properties: dict[str, Any] = dict.fromkeys(envelope.get("properties", {}), True)
    defs = tolerant.get("$defs", {})
    for key, value in tolerant.get("properties", {}).items():
        properties[key] = _mirror(value, defs)
    if "auth" in properties:
        properties["auth"] = {"$ref": "../common/auth.json#/$defs/strict"}
    schema: dict[str, Any] = {
        "$schema": tolerant["$schema"],
        "$id": SCHEMA_BASE + target.file,
        "$ref": _relative(target.file, target.strict_of),
        "title": f"{tolerant.get('title', target.strict_of)}, strict: no keys beyond the known ones",
        "properties": properties,
        "additionalProperties": False,
    }
    for key in ("x-b24-doc", "x-b24-evidence", "x-b24-facts", "x-b24-shape"):
        if key in tolerant:
            schema[key] = copy.deepcopy(tolerant[key])
    schema.update(copy.deepcopy(dict(target.root)))
    return schema


def _any(target: _Target) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + target.file,
        "anyOf": [{"$ref": _relative(target.file, f)} for f in target.any_of],
        **copy.deepcopy(dict(target.root)),
    }


# ---------------------------------------------------------------------------------------------- events


def event_folder(code: str) -> str:
    """The folder of an event's schemas under ``schemas/``: its code in lower case."""
    return code.lower()


def _auto(
    file: str,
    *,
    page: str | None = None,
    event: str | None = None,
    strict_of: str | None = None,
    patches: tuple[_Patch, ...] = (),
) -> _Target:
    return _Target(
        file=file,
        page=page,
        docs_root=None,
        select=None,
        event=event,
        root={"x-b24-shape": "docs"},
        revision=None,
        patches=patches,
        whitelists={},
        strict_of=strict_of,
        any_of=(),
        compact=True,
    )


def _targets(docs: Path, overlay: Overlay, build: Build) -> Iterator[_Target]:
    """The overlay's targets first (so a docs folder without the pages fails on the first of them), then
    one tolerant and one strict target for every other event page."""
    yield from overlay.targets
    yield from _auto_targets(docs, overlay, build)


def _auto_targets(docs: Path, overlay: Overlay, build: Build) -> list[_Target]:
    """A tolerant and a strict target for every event page the overlay declares nothing for."""
    from mock_portal.derive import event_pages

    declared = {t.event for t in overlay.targets if t.event} | {
        t.file.split("/", 1)[0].upper() for t in overlay.targets
    }
    targets = []
    pages = event_pages(docs)
    for code in overlay.events:
        if code not in pages or code in declared:
            message = "names no event page the docs have that the overlay has no target for"
            if build.problems is None:
                raise _fail(f"events/{code}", message)
            build.problems.append(Problem(f"{event_folder(code)}/docs.json", "", f"events/{code} {message}"))
    for code, page in pages.items():
        if code in declared:
            continue
        tolerant = f"{event_folder(code)}/docs.json"
        strict = f"{event_folder(code)}/docs.strict.json"
        targets.append(_auto(tolerant, page=page.page, event=code, patches=overlay.events.get(code, ())))
        targets.append(_auto(strict, strict_of=tolerant))
    return targets


def _selected(target: _Target, events: frozenset[str] | None) -> bool:
    if events is None or target.file.startswith(COMMON_FOLDER):
        return True
    return target.file.split("/", 1)[0].upper() in events


def build_all(
    docs_root: str | Path, overlay: Overlay | None, *, collect: bool, events: frozenset[str] | None = None
) -> Build:
    """Every generated file from the docs folder and the overlay (problems collected, or raised).

    ``events`` limits the build to those events' files and the shared ones (``common/``); the event table,
    which needs every event, is then left out.
    """
    from mock_portal.catalog._seeded import SEEDED_FILE, seeded_file
    from mock_portal.catalog._table import index_schema

    docs = _docs_folder(docs_root)
    overlay = overlay if overlay is not None else load_overlay()
    build = Build(problems=[] if collect else None)
    for target in _targets(docs, overlay, build):
        if not _selected(target, events):
            continue
        if target.page is not None:
            build.schemas[target.file] = _build_page(target, overlay, docs, build)
        elif target.strict_of is not None:
            build.schemas[target.file] = _strict(target, build.schemas)
        else:
            build.schemas[target.file] = _any(target)
        if target.compact:
            build.compact.add(target.file)
    if events is None:
        build.schemas[INDEX_FILE] = index_schema(docs, build.schemas)
        for file, schema in method_files(docs).items():
            build.schemas[file] = schema
            build.compact.add(file)
        seeded = seeded_file(docs)
        if seeded is not None:
            build.schemas[SEEDED_FILE] = seeded
            build.compact.add(SEEDED_FILE)
    return build


METHODS_FOLDER = "methods/"


def method_group(name: str) -> str:
    """The file a method's spec lives in: its first name part (``crm`` for ``crm.deal.add``)."""
    return name.split(".", 1)[0].lower()


def method_files(docs: Path) -> dict[str, dict[str, Any]]:
    """The method specs of the docs, one file per first name part, each spec with its agreement with the
    docs' simulator (``"simulator": "agrees"``, ``"absent"``, or the list of differences)."""
    from mock_portal.derive import compare_with_simulator, derive_methods, load_simulator

    specs, _ = derive_methods(docs)
    simulator = load_simulator(docs)
    groups: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        differences = compare_with_simulator(spec, simulator.get(name)) if simulator else []
        if not simulator:
            spec["simulator"] = "unknown"
        elif differences == ["absent-from-simulator"]:
            spec["simulator"] = "absent"
        else:
            spec["simulator"] = differences or "agrees"
        groups.setdefault(method_group(name), {})[name] = spec
    files = {}
    for group, members in sorted(groups.items()):
        file = f"{METHODS_FOLDER}{group}.json"
        files[file] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_BASE + file,
            "title": f"Method specs: {group}.*",
            "description": "Generated from the method pages of the docs by mock_portal.catalog; not a schema "
            "of any body. Read by mock_portal.methods.",
            "x-b24-methods": dict(sorted(members.items())),
        }
    return files
