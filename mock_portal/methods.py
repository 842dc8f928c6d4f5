"""The spec of every documented REST method, and the check of one call against it.

The specs are committed data (``schemas/methods/<first name part>.json``), generated from the method pages of
the docs by ``mock_portal.catalog`` and checked by ``mock-portal drift``: each method's parameters (name,
type as the page writes it, required true/false/unknown, nested fields), its scope, and whether it reads or
writes. This module only reads them (no docs, no jsonschema)::

    from mock_portal import methods

    spec = methods.spec("crm.deal.add")
    spec.scope, spec.kind                  # ("crm",), "write"
    methods.check_call(spec, {"fields": {"TITLE": "x"}}, scopes=("crm",))      # None: the call is fine
    methods.check_call(spec, {}, scopes=("im",))                               # CallError insufficient_scope
    methods.find("no.such.method") is None and methods.not_found("no.such.method")  # ERROR_METHOD_NOT_FOUND

:func:`check_call` is a pure function of (spec, params, the app's scopes): the REST layer calls it before
answering, and answers its :class:`CallError` as the portal does (``{"error": CODE, "error_description":
...}`` with its HTTP status). It never refuses what the docs leave open: a parameter whose required marker is
unknown is never demanded, a domain type is never checked, an undocumented parameter is ignored (as Bitrix
ignores it), and a scope that is no scope name (``depends on the placement``) demands nothing. A false
refusal would fail a handler that does nothing wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from mock_portal._resources import data_dir
from mock_portal.errors import SchemaError, UnknownNameError

__all__ = [
    "CallError",
    "MethodSpec",
    "Missing",
    "Param",
    "check_call",
    "find",
    "names",
    "not_found",
    "spec",
    "specs",
]

METHODS_FOLDER = "methods"
_SCOPE_NAME = re.compile(r"^[a-z][a-z0-9_.]*$")
_INTEGER = re.compile(r"^-?[0-9]+$")
_NUMBER = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?$")
_BOOLEAN_WORDS = frozenset({"Y", "N", "1", "0", "true", "false", "TRUE", "FALSE", "y", "n"})
_INTEGER_TYPES = frozenset({"integer", "int", "user", "timestamp"})
_NUMBER_TYPES = frozenset({"double", "float", "number"})
_BOOLEAN_TYPES = frozenset({"boolean", "bool"})
_OBJECT_TYPES = frozenset({"object", "array"})
_TEXT_TYPES = frozenset({"string", "text", "char", "date", "datetime", "any", "mixed", "file", "crm", "enum"})


@dataclass(frozen=True)
class Param:
    """One documented parameter: its name, its type as the page writes it, required, its nested fields."""

    name: str
    type: str | None
    required: bool | str
    """``True``, ``False`` or ``"unknown"`` (the page has no required-marker footnote)."""
    fields: tuple[Param, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Param:
        """Build from a committed spec's entry."""
        return cls(
            name=str(raw["name"]),
            type=raw.get("type"),
            required=raw.get("required", "unknown"),
            fields=tuple(cls.from_dict(f) for f in raw.get("fields", ())),
        )


@dataclass(frozen=True)
class Missing:
    """The page's own answer to a call missing a required parameter (its error table's row)."""

    code: str
    status: int
    params: tuple[str, ...]
    """The parameters the row is about (``fields.TITLE`` for a nested one); empty: any required one."""
    message: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Missing:
        """Build from a committed spec's entry."""
        status = raw.get("status", 400)
        return cls(
            code=str(raw.get("code", "")),
            status=status if isinstance(status, int) and 400 <= status < 500 else 400,
            params=tuple(str(p) for p in raw.get("params", ())),
            message=raw.get("message") if isinstance(raw.get("message"), str) else None,
        )

    def names(self, dotted: str) -> bool:
        """Whether the row is about the parameter ``dotted`` (``fields.TITLE``), in any case."""
        return dotted.lower() in {p.lower() for p in self.params}


@dataclass(frozen=True)
class MethodSpec:
    """What the docs say about one method."""

    name: str
    page: str
    scope: tuple[str, ...]
    """Scope names from the page; empty for the basic scope every application has."""
    kind: str
    """``read`` or ``write``."""
    params: tuple[Param, ...]
    deprecated: bool = False
    params_known: bool = True
    """False when the page neither has a parameters section nor says the method takes none."""
    simulator: Any = "unknown"
    """Its agreement with the docs' simulator: ``agrees``, ``absent`` or the list of differences."""
    missing: tuple[Missing, ...] = ()
    """The page's own answers to a call missing a required parameter (none: ``ERROR_ARGUMENT``)."""

    @property
    def url(self) -> str:
        """The published page."""
        return "https://apidocs.bitrix24.com/" + self.page.removesuffix(".md") + ".html"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MethodSpec:
        """Build from a committed spec."""
        return cls(
            name=str(raw["method"]),
            page=str(raw.get("page", "")),
            scope=tuple(raw.get("scope", ())),
            kind=str(raw.get("kind", "write")),
            params=tuple(Param.from_dict(p) for p in raw.get("params", ())),
            deprecated=bool(raw.get("deprecated", False)),
            params_known=not raw.get("params_unknown", False),
            simulator=raw.get("simulator", "unknown"),
            missing=tuple(Missing.from_dict(m) for m in raw.get("missing", ()) if isinstance(m, Mapping)),
        )


@dataclass(frozen=True)
class CallError:
    """The portal's answer to a call the spec refuses: an error code, its description and HTTP status."""

    code: str
    description: str
    status: int

    def body(self) -> dict[str, str]:
        """The JSON body the portal answers with."""
        return {"error": self.code, "error_description": self.description}


# ---------------------------------------------------------------------------------------------- loading


@cache
def specs() -> dict[str, MethodSpec]:
    """Every method spec, by name as the docs write it."""
    folder = data_dir("schemas") / METHODS_FOLDER
    found: dict[str, MethodSpec] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"schemas/{METHODS_FOLDER}/{path.name}: unreadable ({exc})") from exc
        for raw in document.get("x-b24-methods", {}).values():
            method = MethodSpec.from_dict(raw)
            found[method.name] = method
    return found


@cache
def _by_lower() -> dict[str, MethodSpec]:
    return {name.lower(): method for name, method in specs().items()}


def names() -> tuple[str, ...]:
    """Every documented method, sorted."""
    return tuple(sorted(specs()))


def find(name: str) -> MethodSpec | None:
    """The spec of ``name`` (the portal matches method names in any case), or None if the docs lack it."""
    return _by_lower().get(name.strip().lower())


def spec(name: str) -> MethodSpec:
    """The spec of ``name``; a name the docs do not have raises :class:`UnknownNameError` (did you mean)."""
    found = find(name)
    if found is None:
        raise UnknownNameError("method", name, specs())
    return found


def not_found(name: str) -> CallError:
    """The answer to a method the docs do not have (only those: a documented one gets its spec's answer)."""
    return CallError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)


# ---------------------------------------------------------------------------------------------- checking


def _scopes(method: MethodSpec) -> tuple[str, ...]:
    return tuple(s for s in method.scope if _SCOPE_NAME.match(s))


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _lookup(params: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """A parameter by name, in any case (Bitrix reads ``fields`` and ``FIELDS`` alike)."""
    if name in params:
        return True, params[name]
    lower = name.lower()
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == lower:
            return True, value
    return False, None


def _types(declared: str | None) -> set[str] | None:
    """The plain types a declared type allows, or None when it allows anything we cannot check."""
    if not declared:
        return None
    allowed: set[str] = set()
    for term in declared.replace("|", " ").split():
        if term.endswith("[]"):
            allowed.add("array")
        elif term in _INTEGER_TYPES or term.endswith(".id"):
            allowed.add("integer")
        elif term in _NUMBER_TYPES:
            allowed.add("number")
        elif term in _BOOLEAN_TYPES:
            allowed.add("boolean")
        elif term in _OBJECT_TYPES:
            allowed.add(term)
        elif term in _TEXT_TYPES:
            allowed.add("string")
        else:
            return None  # a domain type (crm_status, sale_order...): the docs give its values elsewhere
    return allowed


def _fits(value: Any, allowed: set[str]) -> bool:
    if isinstance(value, Mapping):
        return bool(allowed & {"object", "array"})
    if isinstance(value, list):
        return bool(allowed & {"array", "object"})
    if "string" in allowed:
        return True
    text = str(value).strip() if not isinstance(value, bool) else ("1" if value else "0")
    if "integer" in allowed and (isinstance(value, int) or _INTEGER.match(text)):
        return True
    if "number" in allowed and (isinstance(value, (int, float)) or _NUMBER.match(text)):
        return True
    if "boolean" in allowed and (isinstance(value, bool) or text in _BOOLEAN_WORDS):
        return True
    # a JSON text where an object or array is expected: the portal decodes such parameters (ATTACH, KEYBOARD)
    return bool(allowed & {"object", "array"}) and isinstance(value, str) and text[:1] in ("{", "[")


def _describe(allowed: set[str]) -> str:
    words = {"integer": "an integer", "number": "a number", "boolean": "a boolean", "string": "a string"}
    words |= {"object": "an array", "array": "an array"}
    return " or ".join(sorted({words[a] for a in allowed}))


def _missing(method: MethodSpec, dotted: str, label: str) -> CallError:
    """The answer to a call without required parameter ``dotted``: the page's own row about it, else a row
    about any required parameter, else ``ERROR_ARGUMENT``."""
    rows = [row for row in method.missing if row.names(dotted)] or [
        row for row in method.missing if not row.params
    ]
    if rows:
        row = rows[0]
        return CallError(row.code, row.message or f"Argument '{label}' is null or empty", row.status)
    return CallError("ERROR_ARGUMENT", f"Argument '{label}' is null or empty", 400)


def _check_params(
    method: MethodSpec, declared: Iterable[Param], given: Mapping[str, Any], prefix: str, depth: int
) -> CallError | None:
    for param in declared:
        present, value = _lookup(given, param.name)
        label = f"{prefix}[{param.name}]" if prefix else param.name
        if not present or _empty(value):
            if param.required is True:
                dotted = label.replace("][", ".").replace("[", ".").rstrip("]")
                return _missing(method, dotted, label)
            continue
        allowed = _types(param.type)
        if allowed is not None and not _fits(value, allowed):
            return CallError(
                "ERROR_ARGUMENT", f"The value of an argument '{label}' must be {_describe(allowed)}", 400
            )
        if param.fields and isinstance(value, Mapping) and depth < 2:
            nested = _check_params(method, param.fields, value, label, depth + 1)
            if nested is not None:
                return nested
    return None


def check_call(method: MethodSpec, params: Mapping[str, Any], scopes: Iterable[str]) -> CallError | None:
    """The error the portal answers a call of ``method`` with ``params`` by an app with ``scopes``, or None.

    In order: ``insufficient_scope`` (403) when the method needs a scope the app was not given (any one of
    those the page names suffices), then for a required parameter that is missing or empty the page's own
    error for it (its error table's row, :attr:`MethodSpec.missing`) or else ``ERROR_ARGUMENT`` (400), and
    ``ERROR_ARGUMENT`` for a value of the wrong kind (a word where the page says integer). ``params`` are the
    decoded call parameters (form or JSON, any case of names).
    """
    needed = _scopes(method)
    granted = {s.strip() for s in scopes}
    if needed and not granted & set(needed):
        return CallError(
            "insufficient_scope",
            "The request requires higher privileges than provided by the access token",
            403,
        )
    if not method.params_known:
        return None
    return _check_params(method, method.params, params, "", 0)
