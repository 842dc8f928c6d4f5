"""A method page's error table: the documented refusal of a call missing a required parameter.

Most method pages end with a table of possible errors (``### Возможные коды ошибок``, in English
``### Possible Error Codes``) whose columns vary: ``Код | Описание | Значение`` (code, the error's message,
what it means), ``Код | Описание`` (code, what it means), ``Статус | Код | Описание | Значение``,
``Код | Сообщение об ошибке | Описание``... A row whose words say a parameter is missing (``Не указан параметр
`id```, ``Could not find value for parameter {id}``) is the page's own answer to that call, so the mock
portal answers it rather than a generic ``ERROR_ARGUMENT``::

    {"code": "100", "status": 400, "message": "Could not find value for parameter {id}", "params": ["id"]}

``params`` names the parameters the row is about; a row naming none counts only when its code says so
(``ERROR_REQUIRED_PARAMETERS_MISSING``, ``*_EMPTY``...), then for any required one. ``message`` is the English
page's message in the same row (or its only description) when the English table agrees on the code, else
absent (the mock then writes its own sentence around the code). A code cell the docs write as "empty value"
is the empty code ``""``; the old CRM pages write the HTTP status there, then the code is empty and the
message the row's literal one. Tables without a code column (the field tables of REST v3 pages) say nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mock_portal.derive._blocks import Line, SourcePos, TableBlock
from mock_portal.derive._tables import parse_rows
from mock_portal.errors import DeriveError

_ERROR_HEADINGS = frozenset({"возможные коды ошибок", "possible error codes"})
_CODE = frozenset({"код", "code"})
_STATUS = frozenset({"статус", "status", "http status", "http-статус"})
_MESSAGE = frozenset(
    {
        "сообщение об ошибке",
        "cообщение об ошибке",
        "текст ошибки",
        "сообщение",
        "error message",
        "message",
        "error text",
    }
)
_DESCRIPTION = frozenset({"описание", "description"})
_MEANING = frozenset(
    {
        "значение",
        "когда возникает",
        "дополнительная информация",
        "value",
        "meaning",
        "when it occurs",
        "additional information",
    }
)
_EMPTY_CODES = frozenset({"пустое значение", "пустая строка", "empty value", "empty string", "-", ""})
_MISSING = re.compile(
    r"обязательн|не передан|не указан|не заполнен|отсутству|could not find value|required|not specified"
    r"|is not defined|not passed|missing",
    re.IGNORECASE,
)
_BACKTICKED = re.compile(r"`([A-Za-z_][\w.\[\]]*)`")
_BRACED = re.compile(r"\{([A-Za-z_]\w*)\}")
_MARKUP = re.compile(r"\*\*|`+|\[([^\]]*)\]\([^)]*\)")
_STATUS_CELL = re.compile(r"^\s*`?(4\d\d)`?\s*$")
_HEADING = re.compile(r"^\s*#{2,4}\s+(?P<text>.*?)\s*(?:\{#[^}]*\})?\s*$")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_GENERIC = re.compile(r"REQUIRED|MISSING|EMPTY|NOT_SPECIFIED|NOT_PROVIDED")


@dataclass(frozen=True)
class _Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _plain(text: str) -> str:
    """A cell without markdown: links as their text, no emphasis or backticks, one line."""
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or "", text).split())


def _table_lines(lines: list[str], start: int) -> list[str] | None:
    """The lines of the table opening at or after ``start`` (before the next heading), or None."""
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith("#") and not stripped.startswith("#|"):
            return None
        if not stripped.startswith("#|"):
            continue
        depth, out = 0, list[str]()
        for line in lines[index:]:
            mark = line.strip()
            if mark.startswith("#|"):
                depth += 1
            elif mark.startswith("|#"):
                depth -= 1
                if depth == 0:
                    return out[1:]
            out.append(line)
        return None
    return None


def _error_tables(path: Path) -> list[_Table]:
    """The error tables of a page, read straight from its text (they are never included from elsewhere)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lower = text.lower()
    first = min((lower.find(h) for h in _ERROR_HEADINGS if h in lower), default=-1)
    if first < 0:
        return []
    offset = text.count("\n", 0, first)
    lines = text.splitlines()
    tables: list[_Table] = []
    for index in range(offset, len(lines)):
        line = lines[index]
        if "#" not in line:
            continue
        heading = _HEADING.match(line)
        if heading is None or _plain(heading["text"]).strip().lower() not in _ERROR_HEADINGS:
            continue
        body = _table_lines(lines, index + 1)
        if body is None:
            continue
        block = TableBlock(
            tuple(Line(text, SourcePos(path.name, index + 2 + n)) for n, text in enumerate(body)),
            SourcePos(path.name, index + 1),
        )
        try:
            rows = parse_rows(block)
        except DeriveError:
            continue
        if len(rows) < 2:
            continue
        header = tuple(_plain(c.text).strip().lower() for c in rows[0].cells)
        table = tuple(tuple(c.text for c in row.cells) for row in rows[1:] if len(row.cells) == len(header))
        tables.append(_Table(header, table))
    return tables


def _columns(header: tuple[str, ...]) -> tuple[int, int | None, int | None, list[int]] | None:
    """(code, status, message, meaning columns) of an error table, or None without a code column."""
    code = next((i for i, name in enumerate(header) if name in _CODE), None)
    if code is None:
        return None
    status = next((i for i, name in enumerate(header) if name in _STATUS), None)
    message = next((i for i, name in enumerate(header) if name in _MESSAGE), None)
    description = next((i for i, name in enumerate(header) if name in _DESCRIPTION), None)
    meaning = [i for i, name in enumerate(header) if name in _MEANING]
    if message is None and description is not None and meaning:
        message = description  # Код | Описание | Значение: the description is the message
    elif description is not None:
        meaning.append(description)  # Код | Описание: what it means, in words
    return code, status, message, meaning


def _code(cell: str) -> str:
    plain = _plain(cell).strip()
    return "" if plain.lower() in _EMPTY_CODES else plain


def _rules(table: _Table) -> list[tuple[int, dict[str, Any]]]:
    """The rows of ``table`` about a missing parameter, with their row index."""
    columns = _columns(table.header)
    if columns is None:
        return []
    code_at, status_at, message_at, meaning_at = columns
    found = []
    for index, row in enumerate(table.rows):
        said = " ".join(row[i] for i in (*meaning_at, *([message_at] if message_at is not None else [])))
        if not _MISSING.search(said):
            continue
        code = _code(row[code_at])
        if " " in code and not code.isupper():  # a sentence in the code column: not a code
            continue
        names = sorted({*_BACKTICKED.findall(said), *_BRACED.findall(said)} - {code})
        if not names and not _GENERIC.search(code):
            continue  # about no parameter in particular (rights, context, a field's value): not this answer
        rule: dict[str, Any] = {"code": code, "status": 400, "params": names}
        status = _STATUS_CELL.match(row[status_at]) if status_at is not None else None
        if status is not None:
            rule["status"] = int(status.group(1))
        elif _STATUS_CELL.match(code) and message_at is not None:
            # the old CRM pages write the HTTP status in the code column: the code is empty, the message
            # literal (crm-deal-userfield-get.md: {"error": "", "error_description": "ID is not defined..."})
            rule["status"], rule["code"] = int(code), ""
            literal = _plain(row[message_at]).strip()
            if literal and not _CYRILLIC.search(literal):
                rule["message"] = literal
        found.append((index, rule))
    return found


def _english_message(english: list[_Table], table_at: int, row_at: int, code: str) -> str | None:
    """The message of the same row on the English page, if its table lines up with the Russian one."""
    if table_at >= len(english):
        return None
    table = english[table_at]
    columns = _columns(table.header)
    if columns is None or row_at >= len(table.rows):
        return None
    code_at, _, message_at, meaning_at = columns
    row = table.rows[row_at]
    if _code(row[code_at]) != code:
        return None
    # the message column, or the row's only words (Code | Description)
    at = message_at if message_at is not None else (meaning_at[0] if len(meaning_at) == 1 else None)
    message = _plain(row[at]).strip() if at is not None else ""
    return message or None


def missing_param_errors(page: Path, english_page: Path | None) -> list[dict[str, Any]]:
    """The documented answers of ``page`` to a call missing a required parameter (first rows first)."""
    found = [(at, row, rule) for at, table in enumerate(_error_tables(page)) for row, rule in _rules(table)]
    if not found:
        return []  # the English page is read only for the messages of rows found
    english = _error_tables(english_page) if english_page is not None and english_page.is_file() else []
    out: list[dict[str, Any]] = []
    for table_at, row_at, rule in found:
        message = _english_message(english, table_at, row_at, rule["code"])
        if message is not None and "message" not in rule:
            rule["message"] = message
        if rule not in out:
            out.append(rule)
    return out
