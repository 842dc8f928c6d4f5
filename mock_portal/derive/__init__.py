"""Derive JSON Schemas from Bitrix24 doc pages written in the docs' own markdown dialect (facts §8).

Four small layers, each feeding the next:

1. ``_blocks``: read the page, splice ``{% include %}`` files, drop ``{% note %}``/``{% if %}`` prose, unwrap
   ``{% list tabs %}``, and cut the text into headings (with ``{#anchor}``), tables and prose;
2. ``_tables``: a ``#| ... |#`` table into ``|| ... ||`` rows and cells;
3. ``_fields``: a parameter table's rows into fields: name, tri-state required, type, description, links;
4. ``_schema``: the fields into one JSON Schema 2020-12 with ``x-b24-*`` provenance annotations.

``_editions`` works across the two editions of the docs (Russian canonical, English translation): which pages
describe events (:func:`event_pages`), how two derivations of one page differ in structure
(:func:`compare_editions`), the English prose over the canonical structure (:func:`with_prose`), and the
scope and subscribers a page's head states (:func:`page_facts`).

``derive_schema(page)`` runs them all; ``dumps_schema`` writes a schema the way the committed files are
written (sorted keys, two-space indent, trailing newline), so a derived schema with an overlay applied can be
compared to a committed file byte for byte. Every problem with a page raises
:class:`~mock_portal.errors.DeriveError` naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mock_portal.derive._editions import (
    EDITIONS,
    EN,
    RU,
    EventPage,
    PageFacts,
    event_code,
    event_pages,
    is_handler_page,
    page_facts,
    with_prose,
)
from mock_portal.derive._editions import Difference as EditionDifference
from mock_portal.derive._editions import compare as compare_editions
from mock_portal.derive._methods import (
    MethodPage,
    derive_method,
    derive_methods,
    method_kind,
    method_name,
    method_pages,
)
from mock_portal.derive._schema import ParsedPage, Section, build_schema, parse_page
from mock_portal.derive._simulator import Agreement, agreement, compare_with_simulator, load_simulator
from mock_portal.derive._types import SCHEMA_BASE
from mock_portal.errors import DeriveError

__all__ = [
    "EDITIONS",
    "EN",
    "RU",
    "Agreement",
    "DeriveError",
    "EditionDifference",
    "EventPage",
    "MethodPage",
    "PageFacts",
    "ParsedPage",
    "Section",
    "agreement",
    "compare_editions",
    "compare_with_simulator",
    "derive_event_schema",
    "derive_method",
    "derive_methods",
    "derive_schema",
    "dumps_schema",
    "event_code",
    "event_pages",
    "is_handler_page",
    "load_simulator",
    "method_kind",
    "method_name",
    "method_pages",
    "page_facts",
    "parse_page",
    "with_prose",
]


def derive_schema(
    page: str | Path, *, docs_root: str | Path | None = None, schema_id: str | None = None
) -> dict[str, Any]:
    """Derive the JSON Schema a doc page describes.

    ``docs_root`` is the docs tree holding ``_includes/`` and ``api-reference/data-types.md``; it is needed
    only when the page's own tree lacks them (a page kept in ``_history/``). ``schema_id`` overrides the
    default ``$id`` (``https://b24-contract.invalid/schemas/derived/<page path>.json``).
    """
    return build_schema(parse_page(page, docs_root=docs_root), schema_id=schema_id)


def derive_event_schema(page: str | Path, *, schema_id: str | None = None) -> dict[str, Any]:
    """Derive the schema of an event page: a current one as :func:`derive_schema` does, an outdated one (the
    event's ``data`` only) inside the envelope's top table (``_outdated``)."""
    from mock_portal.derive._outdated import outdated_schema

    path = Path(page)
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    if text and not is_handler_page(text) and path.name.startswith("on-"):
        return outdated_schema(path, schema_id=schema_id or f"{SCHEMA_BASE}derived/{path.stem}.json")
    return derive_schema(path, schema_id=schema_id)


def dumps_schema(schema: dict[str, Any]) -> str:
    """Serialise a schema as the committed files are: sorted keys, two-space indent, UTF-8 text, newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
