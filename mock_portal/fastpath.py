"""Verdicts on event bodies on a chosen backend, for the differential tests and for bulk checks.

:func:`mock_portal.validate` and ``mock-portal validate`` already take their verdicts from jsonschema-rs
(see :mod:`mock_portal.schemas_rs`) and explain only invalid bodies; :class:`EventValidator` pins one schema
and one backend:

``jsonschema``
    The pure-Python reference, the cached ``jsonschema`` validator of :mod:`mock_portal.schemas`.
``jsonschema-rs``
    The Rust validator ``jsonschema_rs`` (a regular dependency), fed the same schemas from the same registry,
    patterns rewritten to keep Python's meaning (:func:`python_pattern_for_rust`). ``tests/test_backends.py``
    holds the two side by side on every fixture and on thousands of generated valid and invalid payloads:
    same verdicts, same error locations.

``jsonschema_rs`` is imported on first use, never by ``import mock_portal``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, Final

from mock_portal import schemas, schemas_rs
from mock_portal.errors import UnknownNameError, UsageError
from mock_portal.schemas_rs import python_pattern_for_rust
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


def available_backends() -> tuple[str, ...]:
    """The backends usable here: ``jsonschema`` always; ``jsonschema-rs`` when it imports (a dependency)."""
    return BACKENDS if schemas_rs.rust() is not None else BACKENDS[:1]


def default_backend() -> str:
    """The fastest available backend."""
    return available_backends()[-1]


@cache
def _rust_validator(uri: str) -> Any:
    rust_registry = schemas._rust_registry()
    if rust_registry is None:
        return None
    return schemas_rs.compile_validator(rust_registry, schemas.registry().contents(uri))


def _reference_locations(validator: Any, payload: Any) -> Iterator[ErrorLocation]:
    for error in validator.iter_errors(payload):
        yield schemas.json_path(error.absolute_path), str(error.validator)


def _rust_locations(validator: Any, payload: Any) -> Iterator[ErrorLocation]:
    for path, keyword in schemas_rs.error_locations(validator, payload):
        yield schemas.json_path(path), keyword


class EventValidator:
    """Verdicts on event bodies against one schema (event, shape, tolerant or strict), on a chosen backend.

    ``backend=None`` takes the fastest available (:func:`default_backend`). Asking for ``jsonschema-rs``
    where it cannot be imported raises :class:`~mock_portal.errors.UsageError`; if the schemas hold a pattern
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
            raise UsageError(f"backend {name!r} is not installed (pip install jsonschema-rs)")
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

        When the ``any`` schema is exactly ``anyOf`` the shape schemas, a body valid for one shape is valid
        for ``any``: the verdict is unchanged, and a stream of same-shaped bodies skips the branches that
        fail before the one that matches.
        """
        if self._rust is None or self.shape != schemas.ANY_SHAPE:
            return None
        if not schemas._has_shapes(self.event) or not schemas._any_is_union(self.event, self.strict):
            return None
        uris = [
            schemas.schema_uri(self.event, s, strict=self.strict)
            for s in schemas._concrete_shapes(self.event)
        ]
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
        except (ValueError, TypeError, OverflowError, RecursionError):
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
            except (ValueError, TypeError, OverflowError, RecursionError):
                pass
        try:
            return sorted(_reference_locations(self._reference, payload))
        except RecursionError:
            return [("$", "maxDepth")]

    def report(self, payload: Any) -> schemas.ValidationReport:
        """The full report, as :func:`~mock_portal.schemas.validate` gives it, verdicts from this backend.

        A valid payload costs only its verdict; an invalid one is explained by the reference.
        """
        if self.backend == "jsonschema":
            return schemas._validate_reference(payload, self.event, self.shape, strict=self.strict)
        return schemas.validate(payload, self.event, self.shape, strict=self.strict)

    def report_body(self, body: str | bytes) -> schemas.ValidationReport:
        """:meth:`report` on a raw wire body."""
        return self.report(decode(body))
