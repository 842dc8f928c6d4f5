"""The overlay of corrections: reading ``schemas/overlay.json`` and applying its entries to a derived schema.

Overlay operations (each with ``why`` and ``evidence``; ``facts`` and ``if_present`` optional):
``add``/``replace``/``remove``/``move``/``copy`` as in RFC 6902 (JSON pointers into the derived schema),
``merge`` (an RFC 7386 merge patch into the node at ``path``: ``null`` deletes a key) and
``require``/``unrequire`` (``names`` added to or dropped from the ``required`` list of the object at
``path``). A corrected node records the entry's evidence tags and reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_portal._resources import data_dir
from mock_portal.errors import OverlayError

OVERLAY_FILE = "overlay.json"
SCHEMA_BASE = "https://b24-contract.invalid/schemas/"
EVIDENCE_ORDER = ("docs", "source", "capture", "inferred")
MAX_OVERLAY_BYTES = 1 << 20
_OPS = frozenset({"add", "replace", "remove", "move", "copy", "merge", "require", "unrequire"})
# keywords whose value is a map of names to schemas: a node directly below one is a schema
_SCHEMA_MAPS = frozenset({"properties", "$defs", "patternProperties", "dependentSchemas"})
_SCHEMA_SLOTS = frozenset({"items", "if", "then", "else", "not", "additionalProperties", "contains"})
_ENTRY_KEYS = frozenset({"op", "path", "from", "value", "names", "why", "evidence", "facts", "if_present"})


# ---------------------------------------------------------------------------------------------- the overlay


@dataclass(frozen=True)
class _Patch:
    where: str  # "targets/<file>/patches[3]" or "event_patches[0]", for messages
    op: str
    path: str
    source: str | None
    value: Any
    names: tuple[str, ...]
    why: str
    evidence: tuple[str, ...]
    facts: str | None
    if_present: bool


@dataclass(frozen=True)
class _Target:
    file: str
    page: str | None  # relative to the docs folder holding both editions
    docs_root: str | None
    select: str | None
    event: str | None
    root: Mapping[str, Any]  # annotations merged into the root (title, x-b24-shape...)
    revision: Mapping[str, Any] | None
    patches: tuple[_Patch, ...]
    whitelists: Mapping[str, str]
    strict_of: str | None
    any_of: tuple[str, ...]
    compact: bool = False
    """Written on one line (the bulk of derived events, not reviewed entry by entry)."""


@dataclass(frozen=True)
class Overlay:
    """The parsed overlay: the targets in file order and the patches every event page gets first."""

    targets: tuple[_Target, ...]
    event_patches: tuple[_Patch, ...]
    events: Mapping[str, tuple[_Patch, ...]] = dataclasses.field(default_factory=dict)
    """Corrections of derived events the overlay declares no target for, by event code: applied after
    ``event_patches`` to ``<event>/docs.json`` (the file stays generated on one line)."""


def _fail(where: str, message: str) -> OverlayError:
    return OverlayError(message, entry=where)


def _patch(raw: Any, where: str) -> _Patch:
    if not isinstance(raw, Mapping):
        raise _fail(where, "an entry must be an object")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
    op = raw.get("op")
    if op not in _OPS:
        raise _fail(where, f"op must be one of {', '.join(sorted(_OPS))}, not {op!r}")
    path = raw.get("path")
    if not isinstance(path, str) or not (path == "" or path.startswith("/")):
        raise _fail(where, f"path must be a JSON pointer ('' or '/...'), not {path!r}")
    why = raw.get("why")
    if not isinstance(why, str) or not why.strip():
        raise _fail(where, "every correction says why (a non-empty 'why')")
    evidence = raw.get("evidence")
    if not isinstance(evidence, list) or not evidence or any(tag not in EVIDENCE_ORDER for tag in evidence):
        raise _fail(where, f"evidence must be a non-empty list of {', '.join(EVIDENCE_ORDER)}")
    source = raw.get("from")
    if op in ("move", "copy") and not (isinstance(source, str) and source.startswith("/")):
        raise _fail(where, f"{op} needs 'from', a JSON pointer")
    if op in ("add", "replace", "merge") and "value" not in raw:
        raise _fail(where, f"{op} needs a 'value'")
    names = raw.get("names", [])
    if op in ("require", "unrequire") and (
        not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names)
    ):
        raise _fail(where, f"{op} needs 'names', a non-empty list of property names")
    facts = raw.get("facts")
    if facts is not None and not isinstance(facts, str):
        raise _fail(where, "facts must be a string such as '§2'")
    return _Patch(
        where=where,
        op=op,
        path=path,
        source=source,
        value=raw.get("value"),
        names=tuple(names),
        why=why.strip(),
        evidence=tuple(evidence),
        facts=facts,
        if_present=bool(raw.get("if_present", False)),
    )


def _patches(raw: Any, where: str) -> tuple[_Patch, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(where, "must be a list of entries")
    return tuple(_patch(entry, f"{where}[{index}]") for index, entry in enumerate(raw))


def _target(file: str, raw: Any) -> _Target:
    where = f"targets/{file}"
    if not isinstance(raw, Mapping):
        raise _fail(where, "a target must be an object")
    kinds = [key for key in ("page", "strict_of", "any_of") if key in raw]
    if len(kinds) != 1:
        raise _fail(where, "a target has exactly one of 'page', 'strict_of', 'any_of'")
    if not file.endswith(".json") or file.startswith("/") or ".." in file.split("/"):
        raise _fail(where, "a target is a relative path of a .json file under schemas/")
    whitelists = raw.get("whitelists", {})
    if not isinstance(whitelists, Mapping):
        raise _fail(where, "whitelists maps a $defs name to the JSON pointer of the schema it mirrors")
    any_of = raw.get("any_of", [])
    if not isinstance(any_of, list) or not all(isinstance(a, str) for a in any_of):
        raise _fail(where, "any_of is a list of schema files")
    for key in ("page", "docs_root", "select", "event", "strict_of"):
        if key in raw and not isinstance(raw[key], str):
            raise _fail(where, f"{key} must be a string")
    for key in ("root", "revision"):
        if key in raw and not isinstance(raw[key], Mapping):
            raise _fail(where, f"{key} must be an object")
    return _Target(
        file=file,
        page=raw.get("page"),
        docs_root=raw.get("docs_root"),
        select=raw.get("select"),
        event=raw.get("event"),
        root=raw.get("root", {}),
        revision=raw.get("revision"),
        patches=_patches(raw.get("patches"), f"{where}/patches"),
        whitelists=dict(whitelists),
        strict_of=raw.get("strict_of"),
        any_of=tuple(any_of),
    )


def load_overlay(path: str | Path | None = None) -> Overlay:
    """Read and check the overlay (``schemas/overlay.json`` by default).

    Raises :class:`~mock_portal.errors.OverlayError` naming the entry at fault.
    """
    file = Path(path) if path is not None else data_dir("schemas") / OVERLAY_FILE
    try:
        if file.stat().st_size > MAX_OVERLAY_BYTES:
            raise OverlayError(f"larger than {MAX_OVERLAY_BYTES} bytes", entry=str(file))
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OverlayError(f"unreadable ({exc})", entry=str(file)) from None
    body = document.get("x-b24-overlay") if isinstance(document, Mapping) else None
    if not isinstance(body, Mapping) or not isinstance(body.get("targets"), Mapping):
        raise OverlayError("the x-b24-overlay object with its 'targets' is missing", entry=str(file))
    events = body.get("events", {})
    if not isinstance(events, Mapping):
        raise OverlayError("events maps an event code to its list of entries", entry="events")
    for code in events:
        if not isinstance(code, str) or code != code.upper():
            raise OverlayError(
                f"event codes are upper case, as the portal sends them: {code!r}", entry="events"
            )
    return Overlay(
        targets=tuple(_target(name, raw) for name, raw in body["targets"].items()),
        event_patches=_patches(body.get("event_patches"), "event_patches"),
        events={code: _patches(raw, f"events/{code}") for code, raw in events.items()},
    )


# ---------------------------------------------------------------------------------------------- pointers


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _parent(document: Any, pointer: str, patch: _Patch) -> tuple[Any, str] | None:
    """The container holding the last token of ``pointer``, and that token; None if a step is missing."""
    tokens = _tokens(pointer)
    if not tokens:
        raise _fail(patch.where, f"{patch.op} cannot address the root itself")
    node = document
    for token in tokens[:-1]:
        node = _step(node, token)
        if node is None:
            return None
    return node, tokens[-1]


def _step(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return None


def _get(document: Any, pointer: str) -> Any:
    node = document
    for token in _tokens(pointer):
        node = _step(node, token)
        if node is None:
            return None
    return node


class _Missing(Exception):
    """A pointer of the overlay does not exist in the derived schema: the docs changed (drift)."""

    def __init__(self, patch: _Patch, pointer: str) -> None:
        super().__init__(f"{patch.where}: {pointer} is not in the derived schema ({patch.op}: {patch.why})")
        self.patch = patch
        self.pointer = pointer


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _put(container: Any, token: str, value: Any, patch: _Patch, *, must_exist: bool) -> None:
    if isinstance(container, dict):
        if must_exist and token not in container:
            raise _Missing(patch, patch.path)
        container[token] = value
    elif isinstance(container, list):
        if token == "-" and not must_exist:  # noqa: S105 (a JSON pointer token, no secret)
            container.append(value)
        elif token.isdigit() and int(token) <= len(container) - (1 if must_exist else 0):
            if must_exist:
                container[int(token)] = value
            else:
                container.insert(int(token), value)
        else:
            raise _Missing(patch, patch.path)
    else:
        raise _Missing(patch, patch.path)


def _take(document: Any, pointer: str, patch: _Patch) -> Any:
    found = _parent(document, pointer, patch)
    if found is None:
        raise _Missing(patch, pointer)
    container, token = found
    if isinstance(container, dict) and token in container:
        return container.pop(token)
    if isinstance(container, list) and token.isdigit() and int(token) < len(container):
        return container.pop(int(token))
    raise _Missing(patch, pointer)


def _apply(document: dict[str, Any], patch: _Patch) -> None:
    """Apply one entry in place; annotate the node it corrected with its evidence and reason."""
    exists = patch.path == "" or _get(document, patch.path) is not None
    if patch.op in ("replace", "remove", "merge", "require", "unrequire") and not exists:
        if patch.if_present:
            return
        raise _Missing(patch, patch.path)
    if patch.op in ("move", "copy") and _get(document, patch.source or "") is None:
        if patch.if_present:
            return
        raise _Missing(patch, patch.source or "")
    if patch.op == "remove":
        _take(document, patch.path, patch)
        return
    if patch.op == "merge":
        merged = _merge(_get(document, patch.path), patch.value)
        if patch.path == "":
            document.clear()
            document.update(merged)
        else:
            container, token = _parent(document, patch.path, patch) or (None, "")
            _put(container, token, merged, patch, must_exist=True)
    elif patch.op in ("require", "unrequire"):
        node = _get(document, patch.path)
        if not isinstance(node, dict):
            raise _fail(patch.where, f"{patch.path} is not an object schema")
        required = [n for n in node.get("required", []) if n not in patch.names]
        if patch.op == "require":
            required += [n for n in patch.names if n not in required]
        if required:
            node["required"] = required
        else:
            node.pop("required", None)
    else:
        if patch.op == "move":
            value = _take(document, patch.source or "", patch)
        elif patch.op == "copy":
            value = copy.deepcopy(_get(document, patch.source or ""))
        else:
            value = copy.deepcopy(patch.value)
        found = _parent(document, patch.path, patch)
        if found is None:
            raise _Missing(patch, patch.path)
        _put(found[0], found[1], value, patch, must_exist=patch.op == "replace")
    if patch.op != "move":
        _annotate(document, patch)


def _is_schema_slot(pointer: str) -> bool:
    tokens = _tokens(pointer)
    if not tokens:
        return True
    return tokens[-1] in _SCHEMA_SLOTS or (len(tokens) >= 2 and tokens[-2] in _SCHEMA_MAPS)


def _annotate(document: dict[str, Any], patch: _Patch) -> None:
    node = _get(document, patch.path)
    if not isinstance(node, dict) or not _is_schema_slot(patch.path):
        return
    tags = set(node.get("x-b24-evidence", [])) | set(patch.evidence)
    node["x-b24-evidence"] = [tag for tag in EVIDENCE_ORDER if tag in tags]
    notes = node.get("x-b24-note")
    node["x-b24-note"] = patch.why if not notes or patch.why in notes else f"{notes} {patch.why}"
    if patch.facts:
        facts = node.get("x-b24-facts")
        node["x-b24-facts"] = patch.facts if not facts or patch.facts in facts else f"{facts}, {patch.facts}"


# ---------------------------------------------------------------------------------------------- per event


def _substitute(value: Any, event: str | None) -> Any:
    if isinstance(value, str) and event is not None:
        return value.replace("{event}", event)
    if isinstance(value, list):
        return [_substitute(v, event) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, event) for k, v in value.items()}
    return value


def _with_event(patches: Sequence[_Patch], event: str | None) -> Iterator[_Patch]:
    for patch in patches:
        if event is None or patch.value is None:
            yield patch
        else:
            yield _Patch(**{**patch.__dict__, "value": _substitute(patch.value, event)})


def _add_revision(node: Any, revision: Mapping[str, Any]) -> None:
    """Give every ``x-b24-doc`` of a schema derived from an older page the revision it was read from."""
    if isinstance(node, dict):
        doc = node.get("x-b24-doc")
        if isinstance(doc, dict) and "page" in doc:
            doc["revision"] = dict(revision)
        for key, value in node.items():
            if key != "x-b24-doc":
                _add_revision(value, revision)
    elif isinstance(node, list):
        for value in node:
            _add_revision(value, revision)
