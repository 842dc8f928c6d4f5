"""The two editions of the docs side by side: which pages describe events, and how two derivations differ.

The docs come in a Russian edition (``b24-rest-docs``, canonical) and its English translation
(``b24restdocs``, which follows by days); both publish the same paths. An event page is a page with a
"what the handler receives" section whose example names the event (``"event": "ONCRMDEALADD"``): the code is
read from the example, upper-cased as the portal sends it (facts §1).

:func:`structure` flattens a derived schema to what a translation must keep: every field's path (``data``,
``data.FIELDS.ID``, ``[]`` for list items), the type the page writes, whether it is marked required, and
whether it nests. :func:`compare` lists the differences between the two editions' structures, each with the
value in both; prose (descriptions, titles) is not structure and is never compared. :func:`with_prose` lays
the English prose over the canonical Russian structure where a node exists in both, so the committed schemas
read in English while their structure follows the Russian page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RU = "b24-rest-docs"
EN = "b24restdocs"
EDITIONS = (RU, EN)
"""Folder names of the editions under a docs root, the canonical one first (docs/SOURCES.md)."""

_HANDLER_SECTION = re.compile(r"^##\s+(?:Что получает обработчик|What the [Hh]andler [Rr]eceives)\s*$", re.M)
_EVENT_CODE = re.compile(r"""["']?event["']?\s*(?:=>|:)\s*["'](?P<code>[A-Za-z][A-Za-z0-9_.]*)["']""")
_MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class EventPage:
    """A page that describes an event: its code (upper case), its path and the editions that have it."""

    code: str
    page: str
    editions: tuple[str, ...]
    written: str
    """The code as the canonical page's example writes it (``onCrmActivityAdd``, ``CATALOG.PRODUCT.ON.ADD``).
    """
    outdated: bool = False
    """A page of the older kind, with the event's ``data`` only (``mock_portal.derive._outdated``)."""


_HANDLER_WORDS = ("Что получает обработчик", "What the handler receives", "What the Handler Receives")


def _handler_section(text: str) -> re.Match[str] | None:
    # a plain search for the words first: the regex alone would try every line of every page
    for words in _HANDLER_WORDS:
        at = text.find(words)
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            found = _HANDLER_SECTION.match(text, start)
            if found is not None:
                return found
            at = text.find(words, at + 1)
    return None


def is_handler_page(text: str) -> bool:
    """Whether a page has a "what the handler receives" section."""
    return _handler_section(text) is not None


def event_code(text: str) -> str | None:
    """The event a page's handler section names in its example, as written; None if it names none."""
    section = _handler_section(text)
    if section is None:
        return None
    found = _EVENT_CODE.search(text, section.end())
    return found["code"] if found else None


def event_pages(docs_root: str | Path) -> dict[str, EventPage]:
    """Every event page under ``docs_root`` (the folder holding both editions), by event code, sorted.

    The canonical edition decides; a page only the translation has counts too. A code two pages claim is
    kept on the first path in sorted order (none does in the snapshot).
    """
    return dict(_event_pages(str(Path(docs_root).resolve())))


@cache
def _event_pages(docs_root: str) -> tuple[tuple[str, EventPage], ...]:
    from mock_portal.derive._outdated import EVENTS_LIST_PAGE, documented_event_list, outdated_code

    root = Path(docs_root)
    found: dict[str, dict[str, str]] = {}  # page -> edition -> code as written
    outdated: set[str] = set()
    for edition in EDITIONS:
        api = root / edition / "api-reference"
        if not api.is_dir():
            continue
        listing = root / edition / EVENTS_LIST_PAGE
        known = (
            documented_event_list(listing.read_text(encoding="utf-8")) if listing.is_file() else frozenset()
        )
        for path in sorted(api.rglob("*.md")):
            if path.name == "index.md" or path.stat().st_size > _MAX_PAGE:
                continue  # section indexes repeat their events' examples
            text = path.read_text(encoding="utf-8", errors="replace")
            page = path.relative_to(root / edition).as_posix()
            code = event_code(text)
            if code is None and not is_handler_page(text) and "/widgets/" not in f"/{page}":
                code = outdated_code(text, path.name, known)
                if code is not None:
                    outdated.add(page)
            if code is not None:
                found.setdefault(page, {})[edition] = code
    pages: dict[str, EventPage] = {}
    for page in sorted(found):
        codes = found[page]
        written = codes.get(RU) or codes[EN]
        code = written.upper()
        if code not in pages:
            editions = tuple(e for e in EDITIONS if e in codes)
            pages[code] = EventPage(code, page, editions, written, page in outdated)
    return tuple(sorted(pages.items()))


# ---------------------------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Node:
    """What a translation must keep of one field."""

    doc_type: str | None
    required: Any
    nests: bool


@dataclass(frozen=True)
class Difference:
    """One structural difference between the canonical and the translated derivation of a page."""

    path: str
    aspect: str  # "only-ru", "only-en", "type", "required", "nesting"
    ru: Any
    en: Any

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"path": self.path, "aspect": self.aspect, "ru": self.ru, "en": self.en}

    def __str__(self) -> str:
        return f"{self.path}: {self.aspect} (ru {self.ru!r}, en {self.en!r})"


def structure(schema: Mapping[str, Any]) -> dict[str, Node]:
    """The fields of a derived schema by path, resolving its local ``$defs`` (unlinked tables included)."""
    defs = schema.get("$defs", {})
    out: dict[str, Node] = {}
    _walk(schema, "", defs, out, ())
    linked = {ref for ref in _local_refs(schema)}
    for name, definition in defs.items():
        if f"#/$defs/{name}" not in linked and isinstance(definition, Mapping):
            _walk(definition, f"$defs/{name}", defs, out, ())
    return out


def _local_refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            yield ref
        for key, value in node.items():
            if key != "$defs":
                yield from _local_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _local_refs(value)


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref[len("#/$defs/") :])
        if isinstance(target, Mapping):
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _containers(
    node: Mapping[str, Any], defs: Mapping[str, Any], seen: tuple[str, ...]
) -> Iterator[tuple[str, Mapping[str, Any], tuple[str, ...]]]:
    """The object schemas below a field: itself, its list items ("[]" appended), its anyOf branches."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in seen:
        return
    if isinstance(ref, str):
        seen = (*seen, ref)
    node = _resolve(node, defs)
    if "properties" in node:
        yield "", node, seen
    items = node.get("items")
    if isinstance(items, Mapping):
        for suffix, inner, inner_seen in _containers(items, defs, seen):
            yield "[]" + suffix, inner, inner_seen
    for branch in node.get("anyOf", ()):
        if isinstance(branch, Mapping):
            yield from _containers(branch, defs, seen)


def _walk(
    node: Mapping[str, Any], prefix: str, defs: Mapping[str, Any], out: dict[str, Node], seen: tuple[str, ...]
) -> None:
    for suffix, container, inner_seen in _containers(node, defs, seen):
        base = prefix + suffix
        for name, child in _children(container):
            path = f"{base}.{name}" if base else name
            resolved = _resolve(child, defs)
            nests = any(True for _ in _containers(child, defs, inner_seen))
            out.setdefault(path, Node(resolved.get("x-b24-doc-type"), resolved.get("x-b24-required"), nests))
            _walk(child, path, defs, out, inner_seen)


def _children(container: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Named children, then the rows standing for any key (``{BOT_ID}``, ``UF_CRM_...``)."""
    for name, child in container.get("properties", {}).items():
        if isinstance(child, Mapping):
            yield name, child
    extra = container.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield "{" + str(extra.get("x-b24-key", "*")) + "}", extra
    for pattern, child in container.get("patternProperties", {}).items():
        if isinstance(child, Mapping):
            yield str(child.get("x-b24-key", pattern)), child


def compare(ru: Mapping[str, Any], en: Mapping[str, Any]) -> list[Difference]:
    """Structural differences between the Russian (canonical) and English derivations of one page."""
    left, right = structure(ru), structure(en)
    differences: list[Difference] = []
    for path in sorted(left.keys() | right.keys()):
        a, b = left.get(path), right.get(path)
        if b is None:
            differences.append(Difference(path, "only-ru", _facts(a), None))
        elif a is None:
            differences.append(Difference(path, "only-en", None, _facts(b)))
        else:
            for aspect, x, y in (
                ("type", a.doc_type, b.doc_type),
                ("required", a.required, b.required),
                ("nesting", a.nests, b.nests),
            ):
                if x != y:
                    differences.append(Difference(path, aspect, x, y))
    return differences


def _facts(node: Node | None) -> dict[str, Any] | None:
    if node is None:
        return None
    return {"type": node.doc_type, "required": node.required, "nests": node.nests}


# ---------------------------------------------------------------------------------------------- prose

_PROSE = ("description", "title")


def with_prose(canonical: dict[str, Any], translation: Mapping[str, Any]) -> dict[str, Any]:
    """``canonical`` with the description and title of every node ``translation`` has at the same place.

    Places are JSON pointers, so a node moved by the translation keeps its canonical prose.
    """
    _lay_prose(canonical, translation)
    return canonical


def _lay_prose(target: Any, source: Any) -> None:
    if isinstance(target, dict) and isinstance(source, Mapping):
        for key in _PROSE:
            if key in source and key in target and isinstance(source[key], str):
                target[key] = source[key]
        for key, value in target.items():
            if key not in _PROSE and key in source:
                _lay_prose(value, source[key])
    elif isinstance(target, list) and isinstance(source, list) and len(target) == len(source):
        for left, right in zip(target, source, strict=True):
            _lay_prose(left, right)


# ---------------------------------------------------------------------------------------------- page facts

_SCOPE_LINE = re.compile(r"^>?\s*\**Scope\**:\s*(?P<rest>.*)$", re.M)
_WHO_LINE = re.compile(
    r"(?:Кто может подписаться|Who can subscribe)\**\s*:\s*(?P<who>[^|\n]*)", re.M | re.IGNORECASE
)
_BASIC_SCOPES = frozenset({"базовый", "basic", "базовые", "любой"})


@dataclass(frozen=True)
class PageFacts:
    """What the head of an event or method page states: its scopes and who may subscribe (or call)."""

    scopes: tuple[str, ...]
    """Scope names; empty for the basic scope every application has."""
    who: str | None


def page_facts(text: str) -> PageFacts:
    """The ``> Scope:`` line and the "who can subscribe" line of a page's head."""
    scopes: list[str] = []
    found = None
    at = text.find("Scope")
    while at >= 0 and found is None:  # the first scope line (not "...ScopeForAll" in a title)
        found = _SCOPE_LINE.match(text, text.rfind("\n", 0, at) + 1)
        at = text.find("Scope", at + 1)
    if found is not None:
        for chunk in re.findall(r"`([^`]+)`", found["rest"]):
            for name in chunk.split(","):
                name = name.strip()
                if name and name.lower() not in _BASIC_SCOPES and name not in scopes:
                    scopes.append(name)
    marks = (text.find("Кто может подписаться"), text.find("Who can subscribe"))
    who_at = min((i for i in marks if i >= 0), default=-1)
    who_found = _WHO_LINE.search(text, who_at) if who_at >= 0 else None
    who = " ".join(who_found["who"].replace("`", "").split()).rstrip(".") if who_found else None
    return PageFacts(tuple(scopes), who or None)
