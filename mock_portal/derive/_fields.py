"""Layer 3: rows of a parameter table into fields (name, required marker, type, description, nesting).

A parameter table has a header whose first cell names the column (Название, Параметр, Поле; Name, Parameter,
Field), usually with the type under it (`` `тип` ``) or in a column of its own; tables with other headers
(methods, errors, scopes) are not parameter tables. A name cell is ``**name**`` (or `` `name` ``), then the
type. Required is a ``*`` after the closing bold, or ``^*^`` inside it, and means something only in files that
include ``_includes/required.md`` (facts §8): required is true, false, or "unknown".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mock_portal.derive._blocks import SourcePos, TableBlock
from mock_portal.derive._tables import Cell, Row, parse_rows
from mock_portal.derive._types import TypeExpr, parse_type
from mock_portal.errors import DeriveError

Required = Literal[True, False, "unknown"]

_NAME_HEADERS = frozenset({"название", "параметр", "поле", "name", "parameter", "field"})
# a second column about errors makes a table of error codes, not of parameters ("Поле | Описание ошибки")
_ERROR_WORDS = frozenset({"ошибки", "ошибка", "error"})
_TYPE_HEADERS = frozenset({"тип", "type"})
_DESCRIPTION_HEADERS = frozenset({"описание", "description"})

_BOLD_NAME = re.compile(r"^\*\*(?P<name>.+?)\*\*(?P<star>\*|\^\*\^)?")
_CODE_NAME = re.compile(r"^`(?P<name>[^`]+)`(?P<star>\*)?")
_SUP_STAR = "^*^"
_ANCHOR_LINK = re.compile(r"\]\(#(?P<anchor>[^)\s]+)\)")
# "- `connector_id` — connector identifier": children listed inside the parent's cell (the 2024 pages)
_BULLET = re.compile(r"^\s*[-*]\s+`(?P<name>[^`\s]+)`\s*(?:[—–:]|-)\s*(?P<text>.*)$")


@dataclass(frozen=True)
class Bullet:
    """A child listed as a bullet inside its parent's description."""

    name: str
    description: str
    pos: SourcePos


@dataclass(frozen=True)
class Field:
    """One parameter row."""

    name: str
    required: Required
    type: TypeExpr | None
    description: str
    lead: str
    """The description without its bullet lines (used when the bullets are the field's children)."""
    links: tuple[str, ...]
    """In-page anchors the description links to, in order (``[ниже](#data)``)."""
    bullets: tuple[Bullet, ...]
    extra: tuple[tuple[str, str], ...]
    """Cells of columns other than name, type and description: (header, text)."""
    pos: SourcePos


@dataclass(frozen=True)
class FieldTable:
    """A parameter table: its fields in document order."""

    fields: tuple[Field, ...]
    pos: SourcePos


@dataclass(frozen=True)
class _Columns:
    name: int
    type: int | None
    type_in_name: bool
    description: int | None
    extra: tuple[tuple[int, str], ...]


def _header_words(cell: Cell) -> list[str]:
    text = cell.text.replace("*", " ").replace("`", " ")
    return [word.lower() for word in text.split()]


def _columns(header: Row) -> _Columns | None:
    words = [_header_words(cell) for cell in header.cells]
    if not words or not words[0] or words[0][0] not in _NAME_HEADERS:
        return None
    if any(word in _ERROR_WORDS for cell in words[1:] for word in cell):
        return None
    type_in_name = any(word in _TYPE_HEADERS for word in words[0][1:])
    type_column = next((i for i, w in enumerate(words) if i and w and w[0] in _TYPE_HEADERS), None)
    description = next((i for i, w in enumerate(words) if i and w and w[0] in _DESCRIPTION_HEADERS), None)
    extra = tuple((i, " ".join(w)) for i, w in enumerate(words) if i and i not in (type_column, description))
    return _Columns(0, type_column, type_in_name, description, extra)


def parse_field_table(table: TableBlock, required_aware: set[str]) -> FieldTable | None:
    """Read a table block as a parameter table, or return None if its header is not one (layer 3)."""
    rows = parse_rows(table)
    if not rows:
        return None
    columns = _columns(rows[0])
    if columns is None:
        return None
    width = len(rows[0].cells)
    fields = []
    seen: dict[str, SourcePos] = {}
    for row in rows[1:]:
        if len(row.cells) != width:
            raise DeriveError(
                f"row has {len(row.cells)} cells, the table header has {width}",
                page=row.pos.page,
                line=row.pos.line,
            )
        field = _field(row, columns, required_aware)
        if field.name in seen:
            raise DeriveError(
                f"parameter {field.name!r} appears twice in one table "
                f"(first at line {seen[field.name].line})",
                page=row.pos.page,
                line=row.pos.line,
            )
        seen[field.name] = row.pos
        fields.append(field)
    return FieldTable(tuple(fields), table.pos)


def _field(row: Row, columns: _Columns, required_aware: set[str]) -> Field:
    name_cell = row.cells[columns.name]
    match = _BOLD_NAME.match(name_cell.text) or _CODE_NAME.match(name_cell.text)
    if match is None:
        raise DeriveError(
            f"cannot read a parameter name in {name_cell.text.splitlines()[0][:60]!r} "
            "(expected **name** or `name`)",
            page=name_cell.pos.page,
            line=name_cell.pos.line,
        )
    name = match["name"].strip()
    starred = bool(match["star"])
    if name.endswith(_SUP_STAR):
        name, starred = name[: -len(_SUP_STAR)].strip(), True
    if not name or any(char.isspace() for char in name):
        raise DeriveError(
            f"parameter name {name!r} is empty or has spaces",
            page=name_cell.pos.page,
            line=name_cell.pos.line,
        )
    # the marker means something only where the file includes the footnote: facts §8
    required: Required = starred if name_cell.pos.page in required_aware else "unknown"

    type_text = name_cell.text[match.end() :] if columns.type_in_name else ""
    type_pos = name_cell.pos
    if columns.type is not None:
        type_text, type_pos = row.cells[columns.type].text, row.cells[columns.type].pos
    try:
        doc_type = parse_type(type_text)
    except ValueError as exc:
        raise DeriveError(f"{exc} of parameter {name!r}", page=type_pos.page, line=type_pos.line) from None

    description_cell = row.cells[columns.description] if columns.description is not None else None
    description, lead, bullets = _description(description_cell) if description_cell else ("", "", ())
    links = (
        tuple(m["anchor"] for m in _ANCHOR_LINK.finditer(description_cell.text)) if description_cell else ()
    )
    extra = tuple((header, row.cells[index].text) for index, header in columns.extra)
    return Field(name, required, doc_type, description, lead, links, bullets, extra, name_cell.pos)


def _description(cell: Cell) -> tuple[str, str, tuple[Bullet, ...]]:
    """The prose of a description cell, the same without bullet lines, and the bullets (as children)."""
    bullets = []
    kept: list[str] = []
    lead: list[str] = []
    for offset, line in enumerate(cell.text.split("\n")):
        tidy = " ".join(line.split())
        kept.append(tidy)
        match = _BULLET.match(line)
        if match:
            pos = SourcePos(cell.pos.page, cell.pos.line + offset)
            bullets.append(Bullet(match["name"], " ".join(match["text"].split()), pos))
        else:
            lead.append(tidy)
    return _tidy(kept), _tidy(lead), tuple(bullets)


def _tidy(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
