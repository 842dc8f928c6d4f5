"""Helpers for the event-builder tests: the combinations to sweep and a strict-schema check with a readable
failure message."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from mock_portal.events import AUTH_MODES, ENCODINGS, SHAPES, BuiltEvent

COMBINATIONS: list[tuple[str, str, str]] = [
    (shape, auth, encoding) for shape in SHAPES for auth in AUTH_MODES for encoding in ENCODINGS
]
"""Every (shape, auth, encoding) of OnSessionStart."""


def combination_id(combo: tuple[str, str, str]) -> str:
    """A readable test id such as ``onsessionstart-docs-2026-system-form``."""
    return "onsessionstart-" + "-".join(combo)


def decoded_body(event: BuiltEvent, encoding: str) -> dict[str, Any]:
    """What a handler gets out of the body: PHP parse_str for form bodies, json.loads for JSON ones."""
    from mock_portal.wire import decode

    body = event.body(encoding)  # type: ignore[arg-type]
    result = decode(body) if encoding == "form" else json.loads(body)
    assert isinstance(result, dict)
    return result


def strict_problems(payload: Mapping[str, Any], event: str, shape: str) -> list[str]:
    """The strict schema's complaints about ``payload`` (empty when it is valid)."""
    from mock_portal.schemas import validate

    report = validate(dict(payload), event, shape, strict=True)
    return [f"{issue.path}: {issue.message}" for issue in report.errors]


def key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Every leaf's dotted path, in order (list items by index)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from key_paths(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from key_paths(item, f"{prefix}.{index}")
    else:
        yield prefix
