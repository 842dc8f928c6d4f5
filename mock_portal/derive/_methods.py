"""Method pages into method specs: the parameters, their types and required markers, the scope, read or write.

A method page is a page of the canonical edition whose title ends with the method's name
(``# Создать новую сделку crm.deal.add``) and that has a parameters section or a code-examples section; its
parameters are the tables under the ``## Параметры метода`` heading (``Параметры``; in English ``Method
Parameters``), the first one the call's own parameters, the others reached from them by anchor as in event
pages (facts §8), or a row named ``fields.TITLE`` below its ``fields`` row. A page that says it takes no
parameters (``Без параметров``) has none. Tables that cannot be read are left out and listed (lenient), so one
malformed table never hides a method.

A spec is a small JSON object (never the page's prose)::

    {"method": "crm.deal.add", "page": "api-reference/crm/deals/crm-deal-add.md", "scope": ["crm"],
     "kind": "write", "deprecated": true,
     "params": [{"name": "fields", "type": "object", "required": "unknown",
                 "fields": [{"name": "TITLE", "type": "string", "required": "unknown"}, ...]}]}

``missing`` (when the page's error table has them) lists the page's own answers to a call without a required
parameter (:mod:`mock_portal.derive._errors`): code, HTTP status, the parameters it is about, its message.

``kind`` is ``read`` when the method's last name part is a reading verb or noun (``get``, ``list``,
``fields``, ``search``, ``getFields``, ``getById``, ``items``, ``current``...), else ``write``: a method that
changes nothing is safe to answer from a dataset, one that does must never fake a success.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mock_portal.derive._editions import EN, RU, is_handler_page, page_facts
from mock_portal.derive._errors import missing_param_errors
from mock_portal.derive._fields import Field
from mock_portal.derive._schema import ParsedPage, Section, parse_page
from mock_portal.errors import DeriveError

_TITLE = re.compile(r"^#\s+.*?\b(?P<name>[a-z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+)\s*$")
_PARAM_PARTS = frozenset({"параметры метода", "параметры", "method parameters", "parameters"})
_SECTION_MARK = re.compile(
    r"^##\s+(?:Параметры метода|Параметры|Примеры кода|Method Parameters|Code Examples)\b", re.M
)
_NO_PARAMS_WORDS = ("Без параметров", "без параметров", "Метод не принимает параметр", "No parameters")
_NO_PARAMS = re.compile(
    r"^\s*(?:Без параметров|Метод не принимает параметр|No parameters)", re.M | re.IGNORECASE
)
_DEPRECATED = re.compile(r'\{%\s*note\s+warning\s+"DEPRECATED"|Развитие метода остановлено', re.IGNORECASE)
_READ_VERBS = ("get", "list", "fields", "search", "count", "info", "version", "status", "check", "find")
# nouns and questions that only read: crm.status.entity.items / .types, user.current, server.time, isOffers
_READ_NOUNS = ("items", "types", "current", "time", "is")
_MAX_PARAM_DEPTH = 6
_MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class MethodPage:
    """A method page of the canonical edition: the method's name and the page's path."""

    name: str
    page: str


def method_name(text: str) -> str | None:
    """The method a page documents, from its title, if the page is a method page at all."""
    first = text.split("\n", 1)[0]
    found = _TITLE.match(first)
    if found is None or _SECTION_MARK.search(text) is None or is_handler_page(text):
        return None
    return found["name"]


def method_pages(docs_root: str | Path) -> dict[str, MethodPage]:
    """Every method page of the canonical edition under ``docs_root``, by method name, sorted.

    A name two pages document (the REST v3 pages of the task methods) is kept on the page that is not the
    v3 one; otherwise on the first path in sorted order.
    """
    return dict(_method_pages(str(Path(docs_root).resolve())))


@cache
def _method_pages(docs_root: str) -> tuple[tuple[str, MethodPage], ...]:
    api = Path(docs_root) / RU / "api-reference"
    found: dict[str, MethodPage] = {}
    if not api.is_dir():
        return ()
    for path in sorted(api.rglob("*.md")):
        if path.name == "index.md" or path.stat().st_size > _MAX_PAGE:
            continue
        name = method_name(path.read_text(encoding="utf-8", errors="replace"))
        if name is None:
            continue
        page = path.relative_to(api.parent).as_posix()
        if name in found and not found[name].page.endswith("-rest-v3.md"):
            continue
        found[name] = MethodPage(name, page)
    return tuple(sorted(found.items()))


def method_kind(name: str) -> str:
    """``read`` when the method's last name part starts with a reading verb, else ``write``."""
    last = name.rsplit(".", 1)[-1].lower()
    return "read" if last.startswith(_READ_VERBS + _READ_NOUNS) else "write"


# ---------------------------------------------------------------------------------------------- params


def _param(field: Field) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": field.name, "type": str(field.type) if field.type is not None else None}
    spec["required"] = field.required
    return spec


_NAMED_HEADING = re.compile(
    r"^(?:параметры?|поле|поля|объект|parameters?|fields?|object)\s+`?(?P<name>[A-Za-z_][\w.\[\]]*)`?$",
    re.IGNORECASE,
)


def _named_sections(parsed: ParsedPage) -> dict[str, Section]:
    """Tables of the parameters part under a heading that names a parameter (``### Параметр fields``):
    how method pages without an ``{#anchor}`` link a parameter to its structure."""
    named: dict[str, Section] = {}
    for section in _param_sections(parsed):
        found = _NAMED_HEADING.match(section.heading.text) if section.heading is not None else None
        if found is not None:
            named.setdefault(found["name"].removesuffix("[]"), section)
    return named


def _children(
    field: Field, parsed: ParsedPage, stack: tuple[int, ...], depth: int
) -> list[dict[str, Any]] | None:
    if depth >= _MAX_PARAM_DEPTH:
        return None
    for anchor in field.links:
        target = parsed.anchors.get(anchor)
        if target is not None and id(target) not in stack:
            return _params(target, parsed, (*stack, id(target)), depth + 1)
    # no anchor, or one the page never declares (a renderer's own "#parametr-fields"): a heading naming
    # the parameter, if the page has one
    named = _named_sections(parsed).get(field.name)
    if named is not None and id(named) not in stack:
        return _params(named, parsed, (*stack, id(named)), depth + 1)
    if field.bullets and (field.type is None or field.type.structured):
        return [{"name": b.name, "type": None, "required": "unknown"} for b in field.bullets]
    return None


def _params(section: Section, parsed: ParsedPage, stack: tuple[int, ...], depth: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by_name: dict[str, dict[str, Any]] = {}
    for field in section.table.fields:
        spec = _param(field)
        children = (
            _children(field, parsed, stack, depth) if field.type is None or field.type.structured else None
        )
        if children:
            spec["fields"] = children
        parent, name = _dotted_parent(by_name, field.name)
        if parent is not None:
            spec["name"] = name
            parent.setdefault("fields", []).append(spec)
            continue
        by_name[field.name] = spec
        out.append(spec)
    return out


def _dotted_parent(by_name: dict[str, dict[str, Any]], name: str) -> tuple[dict[str, Any] | None, str]:
    """``fields.TITLE`` (or ``result.events[].type``) below the row ``fields`` of the same table."""
    *heads, last = name.split(".")
    if not heads or not last:
        return None, name
    node = by_name.get(heads[0].removesuffix("[]"))
    for head in heads[1:]:
        if node is None:
            return None, name
        node = next((c for c in node.get("fields", ()) if c["name"] == head.removesuffix("[]")), None)
    return node, last


def _param_sections(parsed: ParsedPage) -> Iterator[Section]:
    for section in parsed.sections:
        part = (section.part or "").split("{", 1)[0].strip().lower()
        if part in _PARAM_PARTS:
            yield section


def derive_method(
    path: str | Path, name: str, page: str, english: str | Path | None = None
) -> dict[str, Any]:
    """The spec of the method ``name`` from its page (``page`` is its path in the docs tree); ``english`` is
    the English edition's page, read for the messages of the page's error table (``missing``).

    Raises :class:`~mock_portal.errors.DeriveError` only when the page as a whole cannot be read.
    """
    file = Path(path)
    text = file.read_text(encoding="utf-8", errors="replace")
    parsed = parse_page(file, lenient=True)
    sections = list(_param_sections(parsed))
    params = _params(sections[0], parsed, (id(sections[0]),), 0) if sections else []
    spec: dict[str, Any] = {
        "method": name,
        "page": page,
        "scope": list(page_facts(text).scopes),
        "kind": method_kind(name),
        "params": params,
    }
    if ("DEPRECATED" in text or "Развитие метода остановлено" in text) and _DEPRECATED.search(text):
        spec["deprecated"] = True
    says_none = any(words in text for words in _NO_PARAMS_WORDS) and _NO_PARAMS.search(text) is not None
    if not sections and not says_none:
        spec["params_unknown"] = True  # no parameters section and no "takes none": not stated
    if parsed.skipped:
        spec["skipped_tables"] = len(parsed.skipped)
    missing = missing_param_errors(file, Path(english) if english is not None else None)
    if missing:
        spec["missing"] = missing  # the page's own answer to a call without a required parameter
    return spec


def derive_methods(docs_root: str | Path) -> tuple[dict[str, dict[str, Any]], list[DeriveError]]:
    """Every method spec of the docs (by name), and the pages that could not be read at all."""
    root = Path(docs_root)
    specs: dict[str, dict[str, Any]] = {}
    failed: list[DeriveError] = []
    for name, found in method_pages(root).items():
        try:
            specs[name] = derive_method(root / RU / found.page, name, found.page, root / EN / found.page)
        except DeriveError as exc:
            failed.append(exc)
            text = (root / RU / found.page).read_text(encoding="utf-8", errors="replace")
            specs[name] = {
                "method": name,
                "page": found.page,
                "scope": list(page_facts(text).scopes),
                "kind": method_kind(name),
                "params": [],
                "params_unknown": True,
                "unreadable": exc.message,
            }
    return specs, failed
