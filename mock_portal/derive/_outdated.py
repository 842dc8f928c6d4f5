"""Event pages of the older kind: no "what the handler receives" section, only the ``data`` an event carries.

The outdated sections of the docs (old invoices, products, measures, group subjects) describe an event by its
title (``Событие на обновление счета onCrmInvoiceUpdate``) and either a parameter table of its ``data`` or the
PHP array the event passes (``array('FIELDS' => array('ID' => $id))``). Such a page derives to the same
layout as a current one: a top table of ``event``, ``data``, ``ts`` and ``auth`` (the envelope every event
has, documented on ``api-reference/events/index.md``; facts §1) whose ``data`` is what the page describes.
The rows the page does not state carry the evidence tag ``inferred``.

A title may misspell its event (``onCrmInvoceAdd``); the code is then taken from the file name when the list
the ``events`` method documents (``api-reference/events/events.md``) names that and not the title's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mock_portal.derive._schema import (
    DOC,
    DOC_TYPE,
    EVIDENCE_KEY,
    REQUIRED,
    build_schema,
    doc_ref,
    edition_of,
    parse_page,
)
from mock_portal.derive._types import parse_type, schema_for

_TITLE_CODE = re.compile(r"\b(?P<code>on[A-Z][A-Za-z0-9]+)\b")  # anywhere: "Event onX for Invoice Status"
_PHP_ARRAY = re.compile(r"```php\s*\n\s*(?P<body>array\(.*?\))\s*\n```", re.S)
_PHP_TOKEN = re.compile(r"'(?P<key>[A-Za-z0-9_]+)'\s*=>\s*(?P<open>array\()?|(?P<close>\))")
EVENTS_LIST_PAGE = "api-reference/events/events.md"


def outdated_code(text: str, file_name: str, known: frozenset[str]) -> str | None:
    """The event an outdated page describes, upper case; None if the page is not one."""
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "")
    found = _TITLE_CODE.search(title)
    if found is None or not file_name.startswith("on-"):
        return None
    code = found["code"].upper()
    from_file = file_name.removesuffix(".md").replace("-", "").upper()
    if code not in known and from_file in known:
        return from_file  # the title misspells it (onCrmInvoceAdd)
    return code


def documented_event_list(text: str) -> frozenset[str]:
    """Event codes the ``events`` method's page shows in its answer."""
    return frozenset(re.findall(r'"(ON[A-Z0-9_.]+)"', text))


def _php_keys(text: str) -> dict[str, Any] | None:
    """The keys of the PHP array a page shows, nested; a leaf is None."""
    found = _PHP_ARRAY.search(text)
    if found is None:
        return None
    root: dict[str, Any] = {}
    stack = [root]
    for token in _PHP_TOKEN.finditer(found["body"][len("array(") :]):
        if token["close"]:
            if len(stack) > 1:
                stack.pop()
            continue
        child: dict[str, Any] | None = {} if token["open"] else None
        stack[-1][token["key"]] = child
        if child is not None:
            stack.append(child)
    return root


def _field(kind: str, page: str, doc_type: str | None, schema_id: str, **extra: Any) -> dict[str, Any]:
    parsed = parse_type(doc_type) if doc_type else None
    base = schema_for(parsed, schema_id) if parsed is not None else {}
    base.update(extra)
    base[DOC] = doc_ref(page)
    if doc_type:
        base[DOC_TYPE] = doc_type
    base[EVIDENCE_KEY] = ["docs", "inferred"] if kind == "envelope" else ["docs"]
    base[REQUIRED] = "unknown"
    return base


def _keys_schema(keys: dict[str, Any], page: str) -> dict[str, Any]:
    properties = {}
    for key, child in keys.items():
        node: dict[str, Any] = _keys_schema(child, page) if isinstance(child, dict) else {}
        node[DOC] = doc_ref(page)
        node[EVIDENCE_KEY] = ["docs"]
        node[REQUIRED] = "unknown"
        properties[key] = node
    return {"type": "object", "properties": properties}


def outdated_schema(path: Path, *, schema_id: str) -> dict[str, Any]:
    """The schema of an outdated event page: the envelope's top table with the page's ``data``."""
    parsed = parse_page(path, lenient=True)
    page = parsed.page
    data: dict[str, Any]
    defs: dict[str, Any] = {}
    source: dict[str, Any] | None = None
    if parsed.sections:
        inner = build_schema(parsed, schema_id=schema_id)
        defs = inner.pop("$defs", {})
        source = inner.get("x-b24-source")
        data = {"type": "object", "properties": inner.get("properties", {})}
        if inner.get("required"):
            data["required"] = inner["required"]
    else:
        keys = _php_keys(path.read_text(encoding="utf-8"))
        data = _keys_schema(keys, page) if keys is not None else {"type": "object"}
    data.update({DOC: doc_ref(page), EVIDENCE_KEY: ["docs"], REQUIRED: "unknown"})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": parsed.title,
        "type": "object",
        "properties": {
            "event": _field("envelope", page, "string", schema_id),
            "data": data,
            "ts": _field("envelope", page, "timestamp", schema_id),
            "auth": _field("envelope", page, "object", schema_id),
        },
        DOC: doc_ref(page),
        EVIDENCE_KEY: ["docs", "inferred"],
        "x-b24-outdated": True,
    }
    if defs:
        schema["$defs"] = defs
    source = source or edition_of(parsed, schema_id)
    if source:
        schema["x-b24-source"] = source
    return schema
