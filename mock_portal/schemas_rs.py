"""The schemas on jsonschema-rs: the Rust validator fed the reference registry, with Python's regex meaning.

:mod:`mock_portal.schemas` takes its verdicts from here whenever ``jsonschema_rs`` imports, and explains
invalid bodies with the pure-Python ``jsonschema`` reference (which also serves when it does not import).

The Rust regex engine is not Python's ``re``, so every ``pattern`` is rewritten before it is compiled
(:func:`python_pattern_for_rust`); a registry holding a pattern that cannot be rewritten exactly is not
compiled at all (:func:`compile_registry` returns None) and the reference serves instead.
``tests/test_backends.py`` holds the two engines side by side: same verdicts, same error locations.

This module knows nothing of the catalogue: it is handed a ``referencing`` registry and schema contents, so it
sits below :mod:`mock_portal.schemas`. ``jsonschema_rs`` is imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, Final

__all__ = ["compile_registry", "compile_validator", "error_locations", "python_pattern_for_rust", "rust"]

# Python's \s (str patterns): every character re.match(r"\s", c) accepts. Rust's \s is Unicode White_Space,
# which lacks U+001C..U+001F and differs on U+0085 and U+FEFF, so neither \s nor \S may reach Rust as is.
_PY_SPACE: Final = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# escapes whose meaning differs between Python's re and Rust's regex crates (Unicode tables, word
# boundaries) and that have no exact rewrite here: a pattern holding one is left to the reference
_UNPORTABLE_ESCAPES: Final = frozenset("dDwWbBAZ")
_SUBSCHEMA: Final = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SUBSCHEMA_MORE: Final = ("propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_SUBSCHEMA_MAPS: Final = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SUBSCHEMA_LISTS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")


class _Unportable(Exception):
    """A pattern that cannot be given to Rust with Python's meaning."""


def python_pattern_for_rust(pattern: str) -> str:
    """Rewrite a Python ``re`` pattern (as ``jsonschema`` applies it, with ``re.search``) for Rust's regex.

    ``$`` becomes ``(?=\\n?\\z)``: in Python it also matches before a final newline, so ``"12\\n"`` passes
    ``^[0-9]+$`` there and must pass here too. ``\\s`` and ``\\S`` become Python's exact whitespace class.
    Raises :class:`ValueError` for a construct with no exact rewrite (``\\d``, ``\\w``, ``\\b``, ``\\S``
    inside a class...).
    """
    try:
        return _rewrite(pattern)
    except _Unportable as exc:
        raise ValueError(f"pattern {pattern!r} cannot be ported to Rust exactly: {exc}") from None


def _rewrite(pattern: str) -> str:
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise _Unportable("a trailing backslash")
            escaped = pattern[i + 1]
            if escaped in _UNPORTABLE_ESCAPES:
                raise _Unportable(f"\\{escaped} has different meanings")
            if escaped == "s":
                out.append(_PY_SPACE if in_class else f"[{_PY_SPACE}]")
            elif escaped == "S":
                if in_class:
                    raise _Unportable("\\S inside a character class")
                out.append(f"[^{_PY_SPACE}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            elif char == "[":
                raise _Unportable("a nested '[' in a class (set operations in Rust)")
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
            # a ']' right after '[' or '[^' is a literal in both dialects
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("\\]")
                i += 1
        elif char == "$":
            out.append("(?=\\n?\\z)")
        else:
            out.append(char)
        i += 1
    if in_class:
        raise _Unportable("an unclosed character class")
    return "".join(out)


def _port_schema(node: Any) -> Any:
    """A copy of ``node`` with every ``pattern`` (and ``patternProperties`` key) rewritten for Rust."""
    if not isinstance(node, Mapping):
        return node
    out = dict(node)
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _rewrite(out["pattern"])
    for keyword in (*_SUBSCHEMA, *_SUBSCHEMA_MORE):
        if keyword in out:
            out[keyword] = _port_schema(out[keyword])
    for keyword in _SUBSCHEMA_MAPS:
        value = out.get(keyword)
        if isinstance(value, Mapping):
            rename = _rewrite if keyword == "patternProperties" else str
            out[keyword] = {rename(k): _port_schema(v) for k, v in value.items()}
    for keyword in _SUBSCHEMA_LISTS:
        value = out.get(keyword)
        if isinstance(value, list):
            out[keyword] = [_port_schema(v) for v in value]
    return out


# ---------------------------------------------------------------------------------------------- compiling


@cache
def rust() -> Any:
    """The ``jsonschema_rs`` module, or None where it cannot be imported (the reference serves then)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs


def compile_registry(registry: Any) -> Any:
    """A ``jsonschema_rs.Registry`` of every resource in the ``referencing`` ``registry``, patterns rewritten.

    None when ``jsonschema_rs`` is missing or a pattern has no exact rewrite.
    """
    module = rust()
    if module is None:
        return None
    try:
        resources = [(uri, _port_schema(registry.contents(uri))) for uri in registry]
    except _Unportable:
        return None
    return module.Registry(resources)


def compile_validator(rust_registry: Any, contents: Mapping[str, Any]) -> Any:
    """The Rust validator of one schema (``contents``), its references resolved in ``rust_registry``."""
    return rust().validator_for(_port_schema(contents), registry=rust_registry)


def error_locations(validator: Any, payload: Any) -> Iterator[tuple[list[str | int], str]]:
    """(instance path, failing keyword) of every error the Rust ``validator`` finds in ``payload``."""
    for error in validator.iter_errors(payload):
        yield list(error.instance_path), str(error.schema_path[-1])
