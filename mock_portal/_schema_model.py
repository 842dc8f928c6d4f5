"""A small model of the project's event schemas, for generating values from them (``mock_portal.strategies``).

hypothesis-jsonschema does not read draft 2020-12, so the schemas are compiled here into a handful of node
kinds that say what a valid value looks like: objects (properties, required, forbidden and allowed keys),
arrays, scalars (types, const, enum, pattern, minLength, minimum) and choices (``anyOf``, ``if``/``then``/
``else``). ``$ref`` with sibling keywords means "both" in 2020-12, so a schema is the merge of its parts.

Only the keywords the schemas in ``schemas/`` use are understood; any other raises :class:`SchemaError`
naming it, so a new keyword in a schema is noticed by the tests instead of silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from mock_portal.errors import SchemaError

__all__ = ["ANY", "NEVER", "Arr", "Choice", "Node", "Obj", "Scalar", "compile_uri", "merge", "require_key"]

_MAX_DEPTH: Final = 64

# annotations and structure that say nothing about valid values
_IGNORED: Final = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default", "deprecated"}
)
_OBJECT_KEYS: Final = frozenset(
    {"properties", "required", "additionalProperties", "propertyNames", "maxProperties"}
)
_ARRAY_KEYS: Final = frozenset({"items", "minItems", "maxItems"})
_SCALAR_KEYS: Final = frozenset({"enum", "const", "pattern", "minLength", "maxLength", "minimum"})
_HANDLED: Final = (
    _OBJECT_KEYS | _ARRAY_KEYS | _SCALAR_KEYS | {"type", "$ref", "anyOf", "allOf", "if", "then", "else"}
)

_UNSET: Final[Any] = object()


class _Any:
    """Any value at all (``true``, ``{}``, a schema of annotations only)."""

    def __repr__(self) -> str:
        return "ANY"


class _Never:
    """No value (``false``, or parts that contradict each other)."""

    def __repr__(self) -> str:
        return "NEVER"


ANY: Final = _Any()
NEVER: Final = _Never()


@dataclass(frozen=True)
class Obj:
    """An object: ``props`` in schema order, ``required`` and ``forbidden`` keys, ``allowed`` (None: any)."""

    props: Mapping[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    forbidden: frozenset[str] = frozenset()
    allowed: frozenset[str] | None = None
    extra: Node | None = None
    """The schema of keys outside ``props`` (``additionalProperties`` as a schema); None: any value."""


@dataclass(frozen=True)
class Arr:
    """A list of ``item`` values, at least ``min_items`` of them."""

    item: Node
    min_items: int = 0
    max_items: int | None = None


@dataclass(frozen=True)
class Scalar:
    """A scalar: JSON ``types`` it may take (None: any), and its constraints."""

    types: frozenset[str] | None = None
    const: Any = _UNSET
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    min_length: int = 0
    max_length: int | None = None
    minimum: int | None = None

    @property
    def has_const(self) -> bool:
        return self.const is not _UNSET


@dataclass(frozen=True)
class Choice:
    """One of ``branches`` (``anyOf``; the two sides of ``if``/``then``/``else``)."""

    branches: tuple[Node, ...]


Node = _Any | _Never | Obj | Arr | Scalar | Choice


# ------------------------------------------------------------------------------------------------ merging


def _merge_scalars(a: Scalar, b: Scalar) -> Node:
    types = a.types if b.types is None else b.types if a.types is None else a.types & b.types
    if types is not None and not types:
        return NEVER
    const = a.const if a.has_const else b.const
    if a.has_const and b.has_const and a.const != b.const:
        return NEVER
    enum = a.enum if b.enum is None else b.enum if a.enum is None else tuple(v for v in a.enum if v in b.enum)
    if const is not _UNSET:
        if enum is not None and const not in enum:
            return NEVER
        enum = None
    if enum == ():
        return NEVER
    patterns = {p for p in (a.pattern, b.pattern) if p is not None}
    if len(patterns) > 1:
        raise SchemaError(f"strategies: two patterns on one value are not supported ({sorted(patterns)})")
    lengths = [x for x in (a.max_length, b.max_length) if x is not None]
    minimums = [x for x in (a.minimum, b.minimum) if x is not None]
    return Scalar(
        types=types,
        const=const,
        enum=enum,
        pattern=next(iter(patterns), None),
        min_length=max(a.min_length, b.min_length),
        max_length=min(lengths) if lengths else None,
        minimum=max(minimums) if minimums else None,
    )


def _merge_objects(a: Obj, b: Obj) -> Node:
    props: dict[str, Node] = dict(a.props)
    for name, node in b.props.items():
        props[name] = merge(props[name], node) if name in props else node
    required = tuple(dict.fromkeys((*a.required, *b.required)))
    allowed = a.allowed if b.allowed is None else b.allowed if a.allowed is None else a.allowed & b.allowed
    extra = a.extra if b.extra is None else b.extra if a.extra is None else merge(a.extra, b.extra)
    merged = Obj(props, required, a.forbidden | b.forbidden, allowed, extra)
    return NEVER if _contradicts(merged) else merged


def _contradicts(obj: Obj) -> bool:
    needed = set(obj.required)
    if needed & obj.forbidden:
        return True
    if obj.allowed is not None and not needed <= obj.allowed:
        return True
    return any(obj.props[name] is NEVER for name in needed if name in obj.props)


def merge(a: Node, b: Node) -> Node:
    """Both ``a`` and ``b`` (``allOf``): a node whose values satisfy each, or :data:`NEVER`."""
    if a is ANY:
        return b
    if b is ANY:
        return a
    if a is NEVER or b is NEVER:
        return NEVER
    if isinstance(a, Choice) or isinstance(b, Choice):
        choice, other = (a, b) if isinstance(a, Choice) else (b, a)
        assert isinstance(choice, Choice)
        branches = tuple(m for m in (merge(x, other) for x in choice.branches) if m is not NEVER)
        if not branches:
            return NEVER
        return branches[0] if len(branches) == 1 else Choice(branches)
    if isinstance(a, Obj) and isinstance(b, Obj):
        return _merge_objects(a, b)
    if isinstance(a, Arr) and isinstance(b, Arr):
        item = merge(a.item, b.item)
        maxes = [x for x in (a.max_items, b.max_items) if x is not None]
        return Arr(item, max(a.min_items, b.min_items), min(maxes) if maxes else None)
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return _merge_scalars(a, b)
    # an object or array meeting a scalar: only a type-free scalar (an enum of scalars) can still agree
    return NEVER


def require_key(node: Node, path: Sequence[str], name: str, *, present: bool) -> Node:
    """``node`` with the object at ``path`` required to have (or not have) key ``name``."""
    inner: Node = Obj(required=(name,)) if present else Obj(forbidden=frozenset({name}))
    for step in reversed(path):
        inner = Obj(props={step: inner})
    return merge(node, inner)


# ------------------------------------------------------------------------------------------------ compiling


def _key_set(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SchemaError(f"strategies: {where} must be a list of names")
    return tuple(value)


def _bare(schema: Any) -> Mapping[str, Any]:
    """``schema`` without its annotations (an empty mapping for anything that is not a schema object)."""
    if not isinstance(schema, Mapping):
        return {}
    return {k: v for k, v in schema.items() if k not in _IGNORED and not k.startswith("x-")}


def _condition(schema: Mapping[str, Any], resolver: Any, where: str, depth: int) -> Node:
    """``if``/``then``/``else`` where ``if`` tests the presence of keys: two branches, one per answer."""
    test = _bare(schema["if"])
    negated = set(test) == {"not"}
    inner = _bare(test["not"]) if negated else test
    if set(inner) != {"required"}:
        raise SchemaError(f"strategies: {where}: only `if` on required keys (or their absence) is supported")
    keys = _key_set(inner["required"], f"{where}/if")
    present = Obj(required=keys)
    # "not every key present": forbidding all of them is one way, and the one generated
    absent = Obj(forbidden=frozenset(keys))
    when_true, when_false = (absent, present) if negated else (present, absent)
    then = _compile(schema.get("then", True), resolver, f"{where}/then", depth + 1)
    otherwise = _compile(schema.get("else", True), resolver, f"{where}/else", depth + 1)
    branches = tuple(b for b in (merge(when_true, then), merge(when_false, otherwise)) if b is not NEVER)
    if not branches:
        return NEVER
    return branches[0] if len(branches) == 1 else Choice(branches)


def _local(schema: Mapping[str, Any], resolver: Any, where: str, depth: int) -> Node:
    types_raw = schema.get("type")
    types = frozenset([types_raw] if isinstance(types_raw, str) else types_raw) if types_raw else None
    parts: list[Node] = []
    if _OBJECT_KEYS & schema.keys() or (types is not None and "object" in types):
        props = {
            name: _compile(sub, resolver, f"{where}/properties/{name}", depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
        allowed: frozenset[str] | None = None
        extra_schema = schema.get("additionalProperties", True)
        extra: Node | None = None
        if extra_schema is False:
            allowed = frozenset(props)
        elif extra_schema is not True:
            extra = _compile(extra_schema, resolver, f"{where}/additionalProperties", depth + 1)
        forbidden: frozenset[str] = frozenset()
        if "propertyNames" in schema:
            names = _bare(schema["propertyNames"])
            if not (set(names) == {"not"} and set(_bare(names["not"])) == {"enum"}):
                raise SchemaError(f"strategies: {where}: only propertyNames {{not: {{enum}}}} is supported")
            forbidden = frozenset(_key_set(names["not"]["enum"], f"{where}/propertyNames"))
        if "maxProperties" in schema:
            if schema["maxProperties"] != 0:
                raise SchemaError(f"strategies: {where}: only maxProperties 0 is supported")
            allowed = frozenset()  # an empty object
        required = _key_set(schema.get("required", []), f"{where}/required")
        parts.append(Obj(props, required, forbidden, allowed, extra))
    if _ARRAY_KEYS & schema.keys() or (types is not None and "array" in types):
        item = _compile(schema.get("items", True), resolver, f"{where}/items", depth + 1)
        parts.append(Arr(item, int(schema.get("minItems", 0)), schema.get("maxItems")))
    if _SCALAR_KEYS & schema.keys() or (types and not types & {"object", "array"}):
        parts.append(
            Scalar(
                types=types,
                const=schema.get("const", _UNSET),
                enum=tuple(schema["enum"]) if "enum" in schema else None,
                pattern=schema.get("pattern"),
                min_length=int(schema.get("minLength", 0)),
                max_length=schema.get("maxLength"),
                minimum=schema.get("minimum"),
            )
        )
    if types is not None and {"object", "array"} <= types and len(parts) == 2:
        # ``type: [array, object]``: either one, each with its own keywords (not both at once)
        return Choice((parts[0], parts[1]))
    node: Node = ANY
    for part in parts:
        node = merge(node, part)
    return node


def _compile(schema: Any, resolver: Any, where: str, depth: int) -> Node:
    if depth > _MAX_DEPTH:
        raise SchemaError(f"strategies: {where}: schema nested deeper than {_MAX_DEPTH} levels")
    if schema is True:
        return ANY
    if schema is False:
        return NEVER
    if not isinstance(schema, Mapping):
        raise SchemaError(f"strategies: {where}: a schema must be an object or a boolean")
    unknown = [k for k in schema if k not in _HANDLED and k not in _IGNORED and not k.startswith("x-")]
    if unknown:
        raise SchemaError(f"strategies: {where}: keyword {unknown[0]!r} is not supported")
    node = _local(schema, resolver, where, depth)
    if "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        target = _compile(resolved.contents, resolved.resolver, str(schema["$ref"]), depth + 1)
        node = merge(target, node)
    for sub in schema.get("allOf", ()):
        node = merge(node, _compile(sub, resolver, f"{where}/allOf", depth + 1))
    if "anyOf" in schema:
        branches = [_compile(sub, resolver, f"{where}/anyOf", depth + 1) for sub in schema["anyOf"]]
        node = merge(node, Choice(tuple(branches)))
    if "if" in schema:
        node = merge(node, _condition(schema, resolver, where, depth))
    return node


@cache
def compile_uri(uri: str) -> Node:
    """The model of the schema with ``$id`` ``uri`` (cached)."""
    from mock_portal.schemas import registry

    resolver = registry().resolver(base_uri=uri)
    resolved = resolver.lookup(uri)
    return _compile(resolved.contents, resolved.resolver, uri, 0)
