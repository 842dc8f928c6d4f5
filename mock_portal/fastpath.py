"""The fast validate path: a raw wire body, decoded and checked, as cheaply as the verdict allows.

Handlers validate every event they receive, so the verdict alone (valid or not) must be cheap.
:class:`EventValidator` gives it through one of two backends:

``jsonschema``
    The reference: the cached ``jsonschema`` validator of :mod:`mock_portal.schemas`. Always available.
``jsonschema-rs``
    The Rust validator ``jsonschema_rs`` (the ``fast`` extra), fed the same schemas from the same registry.
    Its regular expressions are not Python's, so every ``pattern`` is rewritten before it is compiled (see
    :func:`python_pattern_for_rust`); a schema using a construct that cannot be rewritten exactly is left
    to the reference. ``tests/test_backends.py`` holds the two side by side on every fixture and on
    thousands of generated valid and invalid payloads: same verdicts, same error locations.

The verdict is fast; a full :class:`~mock_portal.schemas.ValidationReport` (doc pages, closest shape...) is
only built for bodies that fail, by the reference :func:`~mock_portal.schemas.validate`, so reports are the
same whichever backend gave the verdict.

``jsonschema_rs`` is imported on first use, never by ``import mock_portal``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any, Final

from mock_portal import schemas
from mock_portal.errors import UnknownNameError, UsageError
from mock_portal.wire import decode

__all__ = [
    "BACKENDS",
    "ErrorLocation",
    "EventValidator",
    "available_backends",
    "default_backend",
    "python_pattern_for_rust",
]

BACKENDS: Final[tuple[str, ...]] = ("jsonschema", "jsonschema-rs")
"""Backend names, the reference first."""

ErrorLocation = tuple[str, str]
"""Where a payload breaks a schema: (JSON path of the instance, the failing keyword)."""

# Python's \s (str patterns): every character re.match(r"\s", c) accepts. Rust's \s is Unicode White_Space,
# which lacks U+001C..U+001F and differs on U+0085 and U+FEFF, so neither \s nor \S may reach Rust as is.
_PY_SPACE: Final = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# escapes whose meaning differs between Python's re and Rust's regex crates (Unicode tables, word
# boundaries) and that have no exact rewrite here: a pattern holding one is left to the reference
_UNPORTABLE_ESCAPES: Final = frozenset("dDwWbBAZ")
_ANNOTATIONS: Final = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "$defs"})
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


# ---------------------------------------------------------------------------------------------- backends


@cache
def _rust() -> Any:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs


def available_backends() -> tuple[str, ...]:
    """The backends usable here: always ``jsonschema``; ``jsonschema-rs`` when the ``fast`` extra is in."""
    return BACKENDS if _rust() is not None else BACKENDS[:1]


def default_backend() -> str:
    """The fastest available backend."""
    return available_backends()[-1]


@cache
def _rust_registry() -> Any:
    """The schemas of the reference registry, patterns rewritten, as a ``jsonschema_rs.Registry``.

    Returns None when a schema holds a pattern with no exact rewrite (the reference is used instead).
    """
    registry = schemas.registry()
    try:
        resources = [(uri, _port_schema(registry.contents(uri))) for uri in registry]
    except _Unportable:
        return None
    return _rust().Registry(resources)


@cache
def _rust_validator(uri: str) -> Any:
    rust_registry = _rust_registry()
    if rust_registry is None:
        return None
    contents = _port_schema(copy.deepcopy(schemas.registry().contents(uri)))
    return _rust().validator_for(contents, registry=rust_registry)


def _reference_locations(validator: Any, payload: Any) -> Iterator[ErrorLocation]:
    for error in validator.iter_errors(payload):
        yield schemas.json_path(error.absolute_path), str(error.validator)


def _rust_locations(validator: Any, payload: Any) -> Iterator[ErrorLocation]:
    for error in validator.iter_errors(payload):
        yield schemas.json_path(error.instance_path), str(error.schema_path[-1])


class EventValidator:
    """Verdicts on event bodies against one schema (event, shape, tolerant or strict), on a chosen backend.

    ``backend=None`` takes the fastest available (:func:`default_backend`). Asking for ``jsonschema-rs``
    where it is not installed raises :class:`~mock_portal.errors.UsageError`; if the schemas hold a pattern
    Rust cannot run with Python's meaning, the reference serves instead and :attr:`backend` says so.
    """

    def __init__(
        self,
        event: str = "ONSESSIONSTART",
        shape: str = schemas.ANY_SHAPE,
        *,
        strict: bool = False,
        backend: str | None = None,
    ) -> None:
        name = backend or default_backend()
        if name not in BACKENDS:
            raise UnknownNameError("validation backend", name, BACKENDS)
        if name not in available_backends():
            raise UsageError(f"backend {name!r} is not installed (pip install 'b24-contract[fast]')")
        self.event = event.strip().upper()
        self.shape = shape
        self.strict = strict
        self.uri = schemas.schema_uri(self.event, shape, strict=strict)
        self._reference = schemas.validator_for(self.event, shape, strict)
        self._rust = _rust_validator(self.uri) if name == "jsonschema-rs" else None
        self.backend = name if self._rust is not None else "jsonschema"
        self._check: Callable[[Any], bool] = (
            self._rust.is_valid if self._rust is not None else self._reference_is_valid
        )
        self._shape_first = self._shape_hint()

    def _shape_hint(self) -> Callable[[Any], bool] | None:
        """For shape ``any`` on Rust: a check that tries the shape the last valid body had first.

        The ``any`` schema is exactly ``anyOf`` the shape schemas (checked here), so a body valid for one
        shape is valid for ``any``: the verdict is unchanged, and a stream of same-shaped bodies skips the
        branches that fail before the one that matches.
        """
        if self._rust is None or self.shape != schemas.ANY_SHAPE:
            return None
        shapes = schemas.known_shapes(self.event)[1:]
        uris = [schemas.schema_uri(self.event, s, strict=self.strict) for s in shapes]
        resolver = schemas.registry().resolver(self.uri)
        whole_schema = schemas.registry().contents(self.uri)
        if any(
            key not in _ANNOTATIONS and not key.startswith("x-") for key in whole_schema if key != "anyOf"
        ):
            return None  # "any" asserts more than its anyOf: no shortcut
        branches = whole_schema.get("anyOf", [])
        refs = [
            resolver.lookup(b.get("$ref", "")).contents if isinstance(b, Mapping) else None for b in branches
        ]
        if not uris or refs != [schemas.registry().contents(u) for u in uris]:
            return None
        checks = [_rust_validator(u).is_valid for u in uris]
        last = [checks[-1]]

        def check(payload: Any) -> bool:
            if last[0](payload):
                return True
            for candidate in checks:
                if candidate is not last[0] and candidate(payload):
                    last[0] = candidate
                    return True
            return False

        return check

    def __repr__(self) -> str:
        mode = " strict" if self.strict else ""
        return f"EventValidator({self.event} {self.shape}{mode}, backend={self.backend})"

    def _reference_is_valid(self, payload: Any) -> bool:
        try:
            return bool(self._reference.is_valid(payload))
        except RecursionError:
            return False  # as schemas.is_valid: deeper than any form body can be

    def is_valid(self, payload: Any) -> bool:
        """The verdict on a decoded payload (wire form, every scalar a string, or doc-style JSON)."""
        try:
            if self._shape_first is not None:
                return self._shape_first(payload)
            return self._check(payload)
        except (ValueError, RecursionError):
            # jsonschema_rs refuses what it cannot convert (too deep, odd key types): ask the reference
            return self._reference_is_valid(payload)

    def is_valid_body(self, body: str | bytes) -> bool:
        """The verdict on a raw wire body: PHP-exact decoding, then :meth:`is_valid`.

        A body PHP would truncate or that is not UTF-8 raises :class:`~mock_portal.errors.WireError`.
        """
        return self.is_valid(decode(body))

    def error_locations(self, payload: Any) -> list[ErrorLocation]:
        """Every (JSON path, keyword) where ``payload`` breaks the schema, sorted; empty when valid."""
        if self._rust is not None:
            try:
                return sorted(_rust_locations(self._rust, payload))
            except (ValueError, RecursionError):
                pass
        try:
            return sorted(_reference_locations(self._reference, payload))
        except RecursionError:
            return [("$", "maxDepth")]

    def report(self, payload: Any) -> schemas.ValidationReport:
        """The full report: the reference :func:`~mock_portal.schemas.validate`, run only when needed.

        A payload the fast verdict accepts gets a cheap report naming the shape it matched.
        """
        if self.shape == schemas.ANY_SHAPE and self.is_valid(payload):
            for shape in schemas.known_shapes(self.event)[1:]:
                if EventValidator._cached(self.event, shape, self.strict, self.backend).is_valid(payload):
                    return schemas.ValidationReport(self.event, self.shape, self.strict, (), shape)
        elif self.is_valid(payload):
            return schemas.ValidationReport(self.event, self.shape, self.strict, (), self.shape)
        return schemas.validate(payload, self.event, self.shape, strict=self.strict)

    def report_body(self, body: str | bytes) -> schemas.ValidationReport:
        """:meth:`report` on a raw wire body."""
        return self.report(decode(body))

    @staticmethod
    @cache
    def _cached(event: str, shape: str, strict: bool, backend: str) -> EventValidator:
        return EventValidator(event, shape, strict=strict, backend=backend)
