"""A small parser for the bodies Bitrix24 sends: PHP ``http_build_query`` output, read as PHP's ``parse_str``.

The handler parses the body itself (it does not depend on the ``mock_portal`` test tool), following the PHP
rules that matter for real events (facts §1): ``&``-separated pairs, ``+`` is a space, percent escapes, nested
keys in brackets (``auth[member_id]``), ``[]`` appends, the last duplicate wins, every scalar is a string, a
PHP list arrives as keys ``0..n-1``. Unlike PHP it refuses what a real portal never sends instead of guessing:
bytes that are not UTF-8 after decoding, more pairs than ``max_fields`` (PHP's ``max_input_vars``) and keys
nested deeper than ``max_depth`` (PHP's ``max_input_nesting_level``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["FormError", "FormLimitError", "as_items", "parse_form"]

PHP_MAX_INPUT_VARS = 1000
PHP_MAX_NESTING_LEVEL = 64


class FormError(ValueError):
    """The body is not a form body a portal could have sent (answered with HTTP 400)."""


class FormLimitError(FormError):
    """The body breaks a size limit (answered with HTTP 413)."""


def _decode(raw: bytes, what: str, index: int) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError(f"{what} of pair {index} is not UTF-8 after percent-decoding") from exc


def _split_key(key: str) -> tuple[str, list[str]]:
    """Split ``a[b][]`` into ``("a", ["b", ""])`` as PHP does, ignoring text after the last ``]``."""
    key = key.lstrip(" ")
    open_at = key.find("[")
    if open_at < 0:
        return key.replace(" ", "_").replace(".", "_"), []
    base = key[:open_at].replace(" ", "_").replace(".", "_")
    segments: list[str] = []
    pos = open_at
    while pos < len(key) and key[pos] == "[":
        close = key.find("]", pos + 1)
        if close < 0:
            if not segments:
                # PHP turns an unmatched first "[" into "_" and keeps the rest as part of the name
                base = base + "_" + key[pos + 1 :]
            break
        segments.append(key[pos + 1 : close])
        pos = close + 1
    return base, segments


def _next_index(container: dict[str, Any]) -> str:
    numbers = [int(k) for k in container if k.lstrip("-").isdigit()]
    return str(max(numbers) + 1) if numbers else "0"


def parse_form(
    body: bytes, *, max_fields: int = PHP_MAX_INPUT_VARS, max_depth: int = PHP_MAX_NESTING_LEVEL
) -> dict[str, Any]:
    """Decode a form body into nested dicts of strings; raise :class:`FormError` on what no portal sends."""
    pairs = [p for p in body.split(b"&") if p]
    if len(pairs) > max_fields:
        raise FormLimitError(f"the body has {len(pairs)} fields; the limit is {max_fields}")
    result: dict[str, Any] = {}
    for index, pair in enumerate(pairs):
        raw_key, _, raw_value = pair.partition(b"=")
        base, segments = _split_key(_decode(raw_key, "the key", index))
        if not base:
            continue  # PHP ignores pairs without a variable name
        if len(segments) >= max_depth:
            raise FormLimitError(
                f"key {base!r} is nested {len(segments)} levels deep; the limit is {max_depth}"
            )
        value = _decode(raw_value, f"the value of {base!r}", index)
        container = result
        name = base
        for segment in segments:
            child = container.get(name)
            if not isinstance(child, dict):
                child = {}
                container[name] = child
            container = child
            name = segment if segment != "" else _next_index(container)
        container[name] = value
    return result


def as_items(value: Any) -> list[Any] | None:
    """Return a PHP list (a dict with keys ``0..n-1`` after parsing) as a list in index order, else None."""
    if isinstance(value, dict) and value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return None
