"""The docs' type names, read from ``api-reference/data-types.md``, and what each becomes in a JSON Schema.

A type is written ``name``, ``name[]`` (a list of ``name``) or ``a | b`` (either); facts §8. The mapping is
faithful to the words of the docs, never to the wire: what the form encoding does to a value (every scalar a
string, ``null`` and empty arrays vanishing; facts §1) is the business of the scalar definitions below and of
the overlay of corrections, which can replace any of them by JSON pointer.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

SCHEMA_BASE = "https://b24-contract.invalid/schemas/"
WIRE_SCHEMA = "common/wire.json"
"""The committed scalar definitions (under SCHEMA_BASE): each accepts the JSON type and the wire string."""

# doc type name -> schema fragment. "wire:NAME" refers to $defs/NAME of common/wire.json, the committed wire
# scalars, which accept both a doc-style JSON value and its form-encoded string (facts §1); the builder turns
# it into a $ref relative to the schema's $id.
TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "integer": {"$ref": "wire:integer"},
    "timestamp": {"$ref": "wire:timestamp"},  # unix seconds: facts §8
    "user": {"$ref": "wire:id"},  # a user id: data-types.md
    "double": {"type": ["number", "string"]},
    "boolean": {"$ref": "wire:boolean"},
    "char": {"$ref": "wire:string"},  # usually Y/N, not strictly: facts §8 and the simulator README
    "string": {"$ref": "wire:string"},
    "text": {"$ref": "wire:string"},
    "date": {"$ref": "wire:string"},
    "datetime": {"$ref": "wire:string"},
    "crm": {},  # PREFIX_ID, or a list of them
    "enum": {},  # one value of a set the page describes in prose
    "file": {},  # an id or an array describing the file
    "any": {},
    "function": {},
    "callable": {},
    "null": {"type": "null"},
    # the tasks pages: "will contain the value `undefined`" when no fields are readable (on-task-add.md)
    "undefined": {"const": "undefined"},
    "object": {"type": "object"},
    # the docs say "array" for PHP arrays, lists and associative ones alike (facts §8)
    "array": {"type": ["array", "object"]},
}
STRUCTURED = frozenset({"object", "array"})


@dataclass(frozen=True)
class TypeTerm:
    """One alternative of a type: a name and how many ``[]`` follow it."""

    name: str
    list_depth: int = 0

    def __str__(self) -> str:
        return self.name + "[]" * self.list_depth


@dataclass(frozen=True)
class TypeExpr:
    """A parsed type: one or more alternatives (``string | null``)."""

    terms: tuple[TypeTerm, ...]

    def __str__(self) -> str:
        return " | ".join(str(term) for term in self.terms)

    @property
    def structured(self) -> bool:
        """Whether a nested structure may hang below it (an object, an array, or a list of anything)."""
        return any(term.name in STRUCTURED or term.list_depth for term in self.terms)


_LINK = re.compile(r"\[(?P<text>(?:[^\[\]]|\[\])*)\]\([^)]*\)")  # the text may hold "[]": [`object[]`](..)
_TERM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_.]*)(?P<lists>(?:\[\])*)$")


def parse_type(raw: str) -> TypeExpr | None:
    """Read a type cell (``[`integer`](../data-types.md)``, `` `string | null` ``, ``object[]``).

    Returns None for an empty cell.

    Raises ValueError naming the part that is not a type.
    """
    text = _LINK.sub(lambda m: m["text"], raw).replace("`", " ")
    text = " ".join(text.split())
    if not text:
        return None
    terms = []
    # "[`object`](..)\n[`string`](..)": pages write a union on separate lines as well as with "|"
    for part in text.replace("|", " ").split():
        match = _TERM.match(part.strip())
        if match is None:
            raise ValueError(f"cannot read the type {raw.strip()!r}")
        terms.append(TypeTerm(match["name"], len(match["lists"]) // 2))
    return TypeExpr(tuple(terms))


def wire_ref(schema_id: str, name: str) -> str:
    """``$ref`` to wire scalar ``name`` from a schema with ``schema_id``: relative (as the committed files
    write it) when the schema lives under SCHEMA_BASE, absolute otherwise."""
    target = f"{WIRE_SCHEMA}#/$defs/{name}"
    if schema_id.startswith(SCHEMA_BASE):
        folder = posixpath.dirname(schema_id[len(SCHEMA_BASE) :])
        return posixpath.relpath(WIRE_SCHEMA, folder or ".") + f"#/$defs/{name}"
    return SCHEMA_BASE + target


def schema_for(expr: TypeExpr, schema_id: str) -> dict[str, Any]:
    """The schema fragment for a type (a fresh dict the caller may extend)."""
    alternatives = [_term_schema(term, schema_id) for term in expr.terms]
    if len(alternatives) == 1:
        return alternatives[0]
    return {"anyOf": alternatives}


def _term_schema(term: TypeTerm, schema_id: str) -> dict[str, Any]:
    if term.name.endswith(".id") and term.name not in TYPE_SCHEMAS:
        schema: dict[str, Any] = {"$ref": "wire:id"}  # "catalog_product.id": the id of a documented object
    else:
        schema = dict(TYPE_SCHEMAS.get(term.name, {}))  # a domain type with no mapping yet: no constraint
    if schema.get("$ref", "").startswith("wire:"):
        schema["$ref"] = wire_ref(schema_id, schema["$ref"][5:])
    for _ in range(term.list_depth):
        schema = {"type": "array", "items": schema}
    return schema


def vocabulary_from_data_types(rows_first_cells: list[str], anchors: list[str]) -> set[str]:
    """Type names data-types.md defines: first cells of its type tables, anchors of its object headings."""
    cells = (_LINK.sub(lambda m: m["text"], cell).strip() for cell in rows_first_cells)
    names = {name for cell in cells for name in re.findall(r"^`([A-Za-z_][\w.]*)`$", cell)}
    return names | {anchor for anchor in anchors if re.fullmatch(r"[A-Za-z_][\w.]*", anchor)}
