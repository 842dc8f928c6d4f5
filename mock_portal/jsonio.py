"""JSON in and out of the HTTP routes: strict on the way in, never failing on the way out.

Python's ``json`` accepts what no other parser (and no PHP ``json_decode``) does: ``NaN`` and ``Infinity``,
numbers of any length, and ``"\\ud800"``, a lone surrogate that cannot be written back as UTF-8. A value like
that, once stored, breaks every later answer that shows it. :func:`loads_strict` refuses them at the door,
naming where; :func:`encode_json` writes whatever it is given as JSON any parser accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MAX_NUMBER_CHARS", "JsonInputError", "encode_json", "loads_strict"]

MAX_NUMBER_CHARS: Final = 40
"""Longest number literal accepted (a 64-bit id has 20 digits)."""


class JsonInputError(ValueError):
    """JSON text refused: malformed, too deep, or holding a value that cannot be stored and shown again."""


def _constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not JSON")


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError(f"a number of {len(text)} digits (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"the number {text[:MAX_NUMBER_CHARS]!r} is out of range")
    return value


def loads_strict(text: str | bytes, *, max_depth: int = 64) -> Any:
    """Parse JSON as strictly as PHP's ``json_decode`` with a depth limit; raise :class:`JsonInputError`.

    Refused: malformed text, bytes that are not UTF-8, ``NaN``/``Infinity``, numbers longer than
    :data:`MAX_NUMBER_CHARS` or out of a double's range, lone surrogates in strings or keys, and nesting
    deeper than ``max_depth``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInputError(f"not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_int=_int, parse_float=_float)
    except JsonInputError:
        raise
    except RecursionError:
        raise JsonInputError(f"nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise JsonInputError(str(exc)) from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    stack: list[tuple[str, Any, int]] = [("$", value, 0)]
    while stack:
        where, node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node, where)
        elif isinstance(node, (dict, list)):
            if depth >= max_depth:
                raise JsonInputError(f"{where}: nested more than {max_depth} levels deep")
            if isinstance(node, dict):
                for key, item in node.items():
                    _check_text(key, where)
                    stack.append((f"{where}.{key[:40]}", item, depth + 1))
            else:
                stack.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(node))


def _check_text(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonInputError(f"{where}: a lone surrogate (\\ud800-\\udfff) in a string") from None


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON that any parser accepts; never raises.

    Non-finite floats become ``null``, lone surrogates (which UTF-8 cannot carry) are written as ``\\uXXXX``
    escapes, unknown objects as their ``str``.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:  # NaN or an infinity somewhere
        return encode_json(_finite(value))
    except RecursionError:
        return b'{"error":"too deeply nested to show"}'
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the ASCII form escapes it
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=str)
        return text.encode("ascii")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
