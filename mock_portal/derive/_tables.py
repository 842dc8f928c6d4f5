"""Layer 2: a ``#|`` table block into rows and cells.

A row starts with ``||`` at the start of a line and ends with ``||`` at the end of a line, possibly many lines
later; cells are split on ``|`` outside inline code (any run of backticks), escaped pipes ``\\|``, fenced
code and nested tables (facts §8). The docs mostly write `` | `` but a few tables omit a space
(``**Name**| ...``), which the YFM renderer accepts too, so a bare ``|`` splits as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mock_portal.derive._blocks import Line, SourcePos, TableBlock
from mock_portal.errors import DeriveError


@dataclass(frozen=True)
class Cell:
    """The text of one cell (``\\|`` unescaped, outer whitespace stripped) and where it starts."""

    text: str
    pos: SourcePos


@dataclass(frozen=True)
class Row:
    """One ``|| ... ||`` row."""

    cells: tuple[Cell, ...]
    pos: SourcePos


def parse_rows(table: TableBlock) -> list[Row]:
    """Split a table block into rows of cells (layer 2)."""
    rows: list[Row] = []
    current: list[Line] = []
    depth = 0  # nested tables open inside the current row
    for line in table.lines:
        stripped = line.text.strip()
        if not current:
            if not stripped:
                continue
            if line.code or not stripped.startswith("||"):
                raise DeriveError(
                    f"text outside a table row: {stripped[:60]!r}", page=line.pos.page, line=line.pos.line
                )
        current.append(line)
        if line.code:
            continue
        if stripped.startswith("#|"):
            depth += 1
            continue
        if stripped.startswith("|#"):
            depth -= 1
            continue
        if depth == 0 and _ends_row(current, stripped):
            rows.append(_row(current))
            current = []
    if current:
        start = current[0].pos
        raise DeriveError("table row is never closed with ||", page=start.page, line=start.line)
    return rows


def _ends_row(current: list[Line], stripped: str) -> bool:
    if not stripped.endswith("||"):
        return False
    if len(current) > 1:
        return True
    # a one-line row needs an opening and a closing "||"
    return len(stripped) >= 4


def _row(lines: list[Line]) -> Row:
    text = "\n".join(line.text for line in lines).strip()
    body = text[2:-2]
    first = lines[0].pos
    cells = tuple(
        Cell(_clean(raw), SourcePos(first.page, first.line + offset)) for raw, offset in _split(body)
    )
    return Row(cells, first)


def _clean(raw: str) -> str:
    return raw.replace("\\|", "|").strip()


_SIGNIFICANT = re.compile(r"[\n\\`|]")
_TICKS = re.compile(r"`+")
_LEAD = re.compile(r"[ \t]*")


def _split(body: str) -> list[tuple[str, int]]:
    """Split a row body into (cell text, line offset of the cell's start).

    Only four characters change anything (a line break, a backslash, a backtick, a pipe), so the scan jumps
    from one to the next; inside fenced code and nested tables only line breaks count.
    """
    cells: list[tuple[str, int]] = []
    start = 0
    start_line = 0
    line_offset = 0
    code_run = 0  # length of the backtick run that opened inline code, 0 outside
    nested = 0
    in_fence = False
    index = 0
    size = len(body)
    at_line_start = True
    while index < size:
        if at_line_start:
            at_line_start = False
            lead = _LEAD.match(body, index)
            first = lead.end() if lead else index
            if body.startswith(("```", "~~~"), first):
                end = body.find("\n", first)
                head = body[first : end if end >= 0 else size]
                if in_fence or "`" not in head[3:]:
                    in_fence = not in_fence
            elif not in_fence and body.startswith("#|", first):
                nested += 1
            elif not in_fence and body.startswith("|#", first):
                nested -= 1
                index = body.find("|#", index) + 2
                continue
        if index >= size:
            break
        char = body[index]
        if char not in "\n\\`|":
            found = _SIGNIFICANT.search(body, index)
            if found is None:
                break
            index = found.start()
            char = body[index]
        if char == "\n":
            line_offset += 1
            at_line_start = True
            index += 1
            continue
        if in_fence or nested:
            following = body.find("\n", index)
            if following < 0:
                break
            index = following
            continue
        if char == "\\" and index + 1 < size:
            index += 2
            continue
        if char == "`":
            ticks = _TICKS.match(body, index)
            run = ticks.end() - index if ticks else 1
            if code_run == 0:
                code_run = run
            elif run == code_run:
                code_run = 0
            index += run
            continue
        if char == "|" and code_run == 0:
            cells.append((body[start:index], start_line))
            start = index + 1
            start_line = line_offset
        index += 1
    cells.append((body[start:], start_line))
    return cells
