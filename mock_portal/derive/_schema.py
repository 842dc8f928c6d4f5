"""Layer 4: parameter tables into one JSON Schema (2020-12) with provenance annotations.

The first parameter table of the page is the top level. A field whose type is an object or an array gets its
children from the table that follows the heading carrying the ``{#anchor}`` its description links to (resolved
by anchor, never by heading text or depth: facts §8), or else from the bullets in its description (the 2024
pages). A linked table becomes ``$defs/<anchor>`` and the field a ``$ref`` to it, as the committed schemas
are laid out, so every field has a predictable JSON pointer (``/$defs/connector/properties/line_id``) that an
overlay of corrections can address. Tables nothing links to are kept as ``$defs/unlinked-N``, not dropped.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mock_portal.derive._blocks import DocsTree, Document, Heading, TableBlock, load_document
from mock_portal.derive._fields import Field, FieldTable, parse_field_table
from mock_portal.derive._tables import parse_rows
from mock_portal.derive._types import (
    SCHEMA_BASE,
    TYPE_SCHEMAS,
    TypeExpr,
    schema_for,
    vocabulary_from_data_types,
)
from mock_portal.errors import DeriveError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
MAX_NESTING = 32
EVIDENCE = ("docs",)

# annotation keywords (custom keywords are annotations in 2020-12)
DOC = "x-b24-doc"  # {"page", "anchor", "include", "bullet"}: where the field is described
DOC_TYPE = "x-b24-doc-type"  # the type as the page writes it
REQUIRED = "x-b24-required"  # true / false / "unknown" (no required-marker footnote in that file)
EVIDENCE_KEY = "x-b24-evidence"  # evidence tags of facts file: always ["docs"] here
COLUMNS = "x-b24-doc-columns"  # cells of extra columns (example, read/write), by header
SOURCE = "x-b24-source"  # the docs edition: repository, language, commit, published URL
KEY = "x-b24-key"  # a row whose name stands for any key: "BOT_ID" for /{BOT_ID/}, "UF_CRM_..." for a prefix

# "/{BOT_ID/}" or "{BOT_ID}": a row standing for keys that are values (the docs escape braces with slashes)
_PLACEHOLDER = re.compile(r"^/?\{(?P<key>[^{}/]+)/?\}$")

DATA_TYPES_PAGE = "api-reference/data-types.md"

# the two public doc repositories (docs/SOURCES.md): folder name -> (repository, language, site)
_EDITIONS = {
    "b24-rest-docs": ("bitrix-tools/b24-rest-docs", "ru", "https://apidocs.bitrix24.ru/"),
    "b24restdocs": ("bitrix24/b24restdocs", "en", "https://apidocs.bitrix24.com/"),
}


@dataclass(frozen=True)
class Section:
    """A parameter table with the heading it sits under."""

    table: FieldTable
    heading: Heading | None
    part: str | None = None
    """The text of the level-2 heading the table sits under (``Параметры метода``), if any."""

    @property
    def anchor(self) -> str | None:
        """The ``{#anchor}`` of the heading right above the table, if any."""
        return self.heading.anchor if self.heading else None


@dataclass(frozen=True)
class ParsedPage:
    """A page read through layers 1 to 3: its title, parameter tables and anchors."""

    page: str
    title: str
    sections: tuple[Section, ...]
    anchors: dict[str, Section | None]
    """Every ``{#anchor}`` of the page and the parameter table after its heading (None if there is none)."""
    tree: DocsTree
    skipped: tuple[DeriveError, ...] = ()
    """With ``lenient``: the tables left out because they could not be read, each with its reason."""


def parse_page(page: str | Path, *, docs_root: str | Path | None = None, lenient: bool = False) -> ParsedPage:
    """Read a doc page into its parameter tables (no schema yet).

    ``lenient`` leaves out a table that cannot be read (a row with a cell too many, a name twice) instead
    of refusing the page, and lists it in ``skipped``; the page as a whole must still be readable.
    """
    tree = DocsTree(Path(page), Path(docs_root) if docs_root is not None else None)
    with _user_paths(tree):
        return _sections(load_document(tree), tree, lenient=lenient)


@contextmanager
def _user_paths(tree: DocsTree) -> Iterator[None]:
    """Re-raise a :class:`DeriveError` with the file named as the user can open it (not tree-relative)."""
    try:
        yield
    except DeriveError as exc:
        raise DeriveError(exc.message, page=tree.user_path(exc.page), line=exc.line) from None


def _sections(document: Document, tree: DocsTree, *, lenient: bool = False) -> ParsedPage:
    sections: list[Section] = []
    skipped: list[DeriveError] = []
    anchors: dict[str, Section | None] = {}
    anchor_lines: dict[str, int] = {}
    title = ""
    heading: Heading | None = None
    part: str | None = None
    awaiting: str | None = None  # anchor whose heading has no table yet
    for block in document.blocks:
        if isinstance(block, Heading):
            if block.level == 1 and not title:
                title = block.text
            if block.level <= 2:
                part = block.text if block.level == 2 else None
            heading = block
            awaiting = block.anchor
            if block.anchor is not None:
                if block.anchor in anchors and lenient:
                    continue  # the first heading keeps the anchor, as a browser follows the first
                if block.anchor in anchors:
                    raise DeriveError(
                        f"anchor {{#{block.anchor}}} is used twice "
                        f"(first at line {anchor_lines[block.anchor]})",
                        page=block.pos.page,
                        line=block.pos.line,
                    )
                anchors[block.anchor] = None
                anchor_lines[block.anchor] = block.pos.line
        elif isinstance(block, TableBlock):
            try:
                table = parse_field_table(block, document.required_aware)
            except DeriveError as exc:
                if not lenient:
                    raise
                skipped.append(DeriveError(exc.message, page=tree.user_path(exc.page), line=exc.line))
                continue
            if table is None:
                continue
            section = Section(table, heading, part)
            sections.append(section)
            if awaiting is not None:
                anchors[awaiting] = section
                awaiting = None
    return ParsedPage(document.page, title, tuple(sections), anchors, tree, tuple(skipped))


@cache
def _vocabulary(data_types: Path | None) -> frozenset[str]:
    known = set(TYPE_SCHEMAS)
    if data_types is not None:
        document = load_document(DocsTree(data_types, None))
        first_cells = []
        anchors = []
        for block in document.blocks:
            if isinstance(block, TableBlock):
                first_cells += [row.cells[0].text for row in parse_rows(block) if row.cells]
            elif isinstance(block, Heading):
                # "### catalog_product" names an object without an explicit {#anchor} (module pages)
                anchors.append(block.anchor or block.text)
        known |= vocabulary_from_data_types(first_cells, anchors)
    return frozenset(known)


def _tree_vocabulary(tree: DocsTree) -> frozenset[str]:
    """The type names of every data-types page a tree has: the general one and each module's own
    (``api-reference/crm/data-types.md``, ``catalog/``, ``sale/``), as the pages' type links point at them."""
    pages: list[Path | None] = [tree.resolve("/" + DATA_TYPES_PAGE, tree.page)]
    for root in (tree.page_root, tree.docs_root):
        if root is not None:
            pages.extend(_module_data_types(root))
    known: set[str] = set()
    for page in dict.fromkeys(pages):
        known |= _vocabulary(page)
    return frozenset(known)


@cache
def _module_data_types(root: Path) -> tuple[Path, ...]:
    api = root / "api-reference"
    return tuple(sorted(api.glob("*/data-types.md"))) if api.is_dir() else ()


class _Builder:
    def __init__(self, parsed: ParsedPage, schema_id: str | None) -> None:
        self.parsed = parsed
        self.schema_id = schema_id or f"{SCHEMA_BASE}derived/{Path(parsed.page).stem}.json"
        self.defs: dict[str, Any] = {}
        self.visited: set[int] = set()
        self.vocabulary = _tree_vocabulary(parsed.tree)
        self.edition = self._edition()

    def build(self) -> dict[str, Any]:
        parsed = self.parsed
        if not parsed.sections:
            raise DeriveError(
                "no parameter table on the page (a #| table headed Name/Parameter/Field)", page=parsed.page
            )
        root_section = parsed.sections[0]
        root = self._object(root_section, ())
        schema: dict[str, Any] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": self.schema_id,
            **root,
            DOC: self._doc(root_section, None),
            EVIDENCE_KEY: list(EVIDENCE),
        }
        if parsed.title:
            schema["title"] = parsed.title
        if self.edition:
            schema[SOURCE] = self.edition
        orphans = [s for s in parsed.sections if id(s) not in self.visited]
        for number, section in enumerate(orphans, start=1):
            self.defs[f"unlinked-{number}"] = self._definition(section, ())
        if self.defs:
            schema["$defs"] = self.defs
        return schema

    def _edition(self) -> dict[str, str]:
        root = self.parsed.tree.page_root
        for folder, commit in ((root.name, None), (root.parent.name, root.name)):
            if folder in _EDITIONS:
                repository, language, site = _EDITIONS[folder]
                edition = {"repository": repository, "language": language, "url": self._url(site, None)}
                if commit:
                    edition["commit"] = commit
                return edition
        return {}

    def _url(self, site: str, anchor: str | None) -> str:
        return site + self.parsed.page.removesuffix(".md") + ".html" + (f"#{anchor}" if anchor else "")

    def _doc(self, section: Section, field: Field | None, *, bullet: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {"page": self.parsed.page}
        if section.anchor:
            doc["anchor"] = section.anchor
        if self.edition:  # both editions publish the same paths (docs/SOURCES.md)
            doc["url"] = self._url(_EDITIONS["b24restdocs"][2], section.anchor)
            doc["url_ru"] = self._url(_EDITIONS["b24-rest-docs"][2], section.anchor)
        source_page = field.pos.page if field is not None else section.table.pos.page
        if source_page != self.parsed.page:
            doc["include"] = source_page
        if bullet:
            doc["bullet"] = True
        return doc

    def _definition(self, section: Section, stack: tuple[int, ...]) -> dict[str, Any]:
        """A nested table as a ``$defs`` entry: its object schema, titled by its heading."""
        definition: dict[str, Any] = {}
        if section.heading is not None:
            definition["title"] = section.heading.text
        definition.update(self._object(section, stack))
        definition[DOC] = self._doc(section, None)
        definition[EVIDENCE_KEY] = list(EVIDENCE)
        return definition

    def _ref(self, anchor: str, section: Section, stack: tuple[int, ...]) -> dict[str, Any]:
        """``$ref`` to the table of ``anchor``, written once into ``$defs`` under the anchor's name."""
        if anchor not in self.defs:
            self.defs[anchor] = {}  # reserve the key, so a second link does not build it again
            self.defs[anchor] = self._definition(section, stack)
        return {"$ref": f"#/$defs/{anchor}"}

    def _object(self, section: Section, stack: tuple[int, ...]) -> dict[str, Any]:
        if len(stack) > MAX_NESTING:
            pos = section.table.pos
            raise DeriveError(f"structures nested deeper than {MAX_NESTING}", page=pos.page, line=pos.line)
        self.visited.add(id(section))
        stack = (*stack, id(section))
        body: dict[str, Any] = {"type": "object", "properties": {}}
        for field in section.table.fields:
            schema = self._field(field, section, stack)
            parent, name = self._nested_parent(body, field.name)
            placeholder = _PLACEHOLDER.match(name)
            if placeholder is not None:
                # "/{BOT_ID/}": the key is a value (a bot id), so the row describes every key of the object
                schema[KEY] = placeholder["key"]
                parent.setdefault("additionalProperties", schema)
                continue
            if name.endswith("...") and name.rstrip("."):
                # "UF_CRM_...": any key with that prefix (user fields)
                schema[KEY] = name
                parent.setdefault("patternProperties", {})["^" + re.escape(name.rstrip("."))] = schema
                continue
            parent.setdefault("properties", {})[name] = schema
            if field.required is True:
                parent.setdefault("required", []).append(name)
        if not body.get("required"):
            body.pop("required", None)
        return body

    def _nested_parent(self, body: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
        """The object a row belongs to, and its key there.

        A row named ``data.FIELDS`` (or ``result.events[].type``) is a child of the row ``data`` of the same
        table; the docs write nesting this way on many pages. A dotted name whose head is no earlier row of
        the table stays a key of its own.
        """
        *heads, last = name.split(".")
        if not heads or not last:
            return body, name
        node = body
        for head in heads:
            key, items = (head[:-2], True) if head.endswith("[]") else (head, False)
            child = node.get("properties", {}).get(key)
            if not isinstance(child, dict):
                return body, name
            node = self._object_node(child, items)
        return node, last

    def _object_node(self, schema: dict[str, Any], items: bool) -> dict[str, Any]:
        """The object schema children are added to, below a field (through its list items and its $ref)."""
        target = schema
        if "anyOf" in target:
            target = next(
                (alt for alt in target["anyOf"] if alt.get("type") in ("object", "array")), target["anyOf"][0]
            )
        while target.get("type") == "array" or (items and "items" in target):
            items = False
            target = target.setdefault("items", {})
        ref = target.get("$ref", "")
        if ref.startswith("#/$defs/"):
            resolved = self.defs.get(ref[len("#/$defs/") :])
            if isinstance(resolved, dict):
                return resolved
        if target.get("type") != "object" and "properties" not in target:
            if "$ref" in target:  # a wire scalar cannot hold keys: the page contradicts itself
                return target
            target["type"] = "object"
        return target

    def _field(self, field: Field, section: Section, stack: tuple[int, ...]) -> dict[str, Any]:
        if field.type is not None:
            self._check_type(field.type, field)
        schema = schema_for(field.type, self.schema_id) if field.type is not None else {}
        description = field.description
        may_nest = field.type is None or field.type.structured
        child = self._child(field, stack) if may_nest else None
        if child is not None:
            anchor, target = child
            _attach(schema, self._ref(anchor, target, stack))
        elif may_nest and field.bullets:
            _attach(schema, self._bullets(field, section))
            description = field.lead
        if description:
            schema["description"] = description
        schema[DOC] = self._doc(section, field)
        if field.type is not None:
            schema[DOC_TYPE] = str(field.type)
        schema[EVIDENCE_KEY] = list(EVIDENCE)
        schema[REQUIRED] = field.required
        if field.extra:
            schema[COLUMNS] = dict(field.extra)
        return schema

    def _child(self, field: Field, stack: tuple[int, ...]) -> tuple[str, Section] | None:
        for anchor in field.links:
            if anchor not in self.parsed.anchors:
                known = sorted(self.parsed.anchors)
                close = difflib.get_close_matches(anchor, known, n=1)
                hint = f"; did you mean #{close[0]}?" if close else ""
                raise DeriveError(
                    f"{field.name!r} links to #{anchor} but no heading on the page carries "
                    f"{{#{anchor}}}{hint}",
                    page=field.pos.page,
                    line=field.pos.line,
                )
            target = self.parsed.anchors[anchor]
            if target is None:
                continue  # the heading has prose only (e.g. "arrives empty")
            if id(target) in stack:
                raise DeriveError(
                    f"{field.name!r} links to #{anchor}, a structure that contains it (a cycle)",
                    page=field.pos.page,
                    line=field.pos.line,
                )
            return anchor, target
        return None

    def _bullets(self, field: Field, section: Section) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for bullet in field.bullets:
            if bullet.name in properties:
                raise DeriveError(
                    f"bullet {bullet.name!r} appears twice under {field.name!r}",
                    page=bullet.pos.page,
                    line=bullet.pos.line,
                )
            child: dict[str, Any] = {}
            if bullet.description:
                child["description"] = bullet.description
            # a bullet has no type and no marker: both unknown
            child[DOC] = self._doc(section, field, bullet=True)
            child[EVIDENCE_KEY] = list(EVIDENCE)
            child[REQUIRED] = "unknown"
            properties[bullet.name] = child
        return {"type": "object", "properties": properties}

    def _check_type(self, expr: TypeExpr, field: Field) -> None:
        for term in expr.terms:
            # "catalog_product.id": a field of a type the data-types pages define (its id)
            if term.name not in self.vocabulary and term.name.split(".", 1)[0] not in self.vocabulary:
                close = difflib.get_close_matches(term.name, sorted(self.vocabulary), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise DeriveError(
                    f"unknown type {term.name!r} of parameter {field.name!r} "
                    f"(not in {DATA_TYPES_PAGE}){hint}",
                    page=field.pos.page,
                    line=field.pos.line,
                )


def _attach(schema: dict[str, Any], body: dict[str, Any]) -> None:
    """Hang a structure below a field: on the object itself, or on the items of a list.

    A plain ``object`` whose structure is a ``$ref`` becomes just the ``$ref`` (the definition says object).
    """
    target = schema
    if "anyOf" in target:
        target = next(
            (alt for alt in target["anyOf"] if alt.get("type") in ("object", "array")), target["anyOf"][0]
        )
    if target.get("type") == ["array", "object"]:
        # the docs' loose "array" with a structure below it: the pages mean a list of that structure
        target["type"] = "array"
    while target.get("type") == "array":
        items = target.get("items")
        if items is None or items == {}:
            target["items"] = body
            return
        target = items
    if "$ref" in body and target.get("type") == "object":
        del target["type"]
    target.update(body)


def doc_ref(page: str, anchor: str | None = None) -> dict[str, Any]:
    """The ``x-b24-doc`` of a page path: the path and both published URLs (both editions publish the same
    paths, docs/SOURCES.md)."""
    html = page.removesuffix(".md") + ".html" + (f"#{anchor}" if anchor else "")
    doc: dict[str, Any] = {"page": page}
    if anchor:
        doc["anchor"] = anchor
    doc["url"] = _EDITIONS["b24restdocs"][2] + html
    doc["url_ru"] = _EDITIONS["b24-rest-docs"][2] + html
    return doc


def edition_of(parsed: ParsedPage, schema_id: str | None = None) -> dict[str, str]:
    """The ``x-b24-source`` of a parsed page: its edition's repository, language and published URL."""
    return _Builder(parsed, schema_id).edition


def build_schema(parsed: ParsedPage, *, schema_id: str | None = None) -> dict[str, Any]:
    """Turn a parsed page into its JSON Schema (layer 4)."""
    with _user_paths(parsed.tree):
        return _Builder(parsed, schema_id).build()
