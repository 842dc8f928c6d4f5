"""The schema registry over ``schemas/`` and validation of event bodies against it.

Every file in ``schemas/`` is a JSON Schema 2020-12 resource with an ``$id`` under :data:`BASE_URI`; they
are loaded once into a :class:`referencing.Registry` (:func:`registry`). ``schemas/index.json`` is the
catalogue: which events are known, which shapes each has, and which schema is the tolerant and the strict
variant of each (``schemas/README.md`` describes the layout).

:func:`validate` returns a :class:`ValidationReport` whose issues name the JSON path, what was expected and
the doc page the rule comes from (the ``x-b24-doc`` annotation of the property or its nearest ancestor). When
the requested shape is ``"any"`` and the body matches none, the report explains the closest shape instead of
listing every branch of the ``anyOf``.

``jsonschema`` and ``referencing`` are imported on first use, never by ``import mock_portal``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from mock_portal._resources import data_dir
from mock_portal.errors import SchemaError, UnknownNameError
from mock_portal.redact import SECRET_KEYS, redact, redact_text

if TYPE_CHECKING:
    from referencing import Registry

# jsonschema ships no type information: its validators and errors are handled as Any here
Validator = Any
ValidationError = Any

__all__ = [
    "BASE_URI",
    "DocRef",
    "Issue",
    "ValidationReport",
    "fast_backend",
    "is_valid",
    "known_events",
    "known_shapes",
    "registry",
    "schema_uri",
    "validate",
    "validator_for",
]

BASE_URI = "https://b24-contract.invalid/schemas/"
"""Every schema's ``$id`` starts with this; the ``.invalid`` host is never fetched, only looked up."""

ANY_SHAPE = "any"
_CATALOGUE_URI = BASE_URI + "index.json"
MAX_DEPTH = 64
"""Deepest nesting :func:`validate` accepts: PHP's ``max_input_nesting_level``, so no form body is deeper."""
_MAX_SCHEMA_BYTES = 1 << 20
_MAX_SHOWN = 60  # characters of an offending value quoted in a message
_MAX_LEAVES = 500  # scalars looked at when ranking shapes
_MAX_LEAF_DEPTH = 16


# ---------------------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class DocRef:
    """Where a rule is documented: the doc page (repository path), its anchor and the published URLs."""

    page: str
    anchor: str | None = None
    url: str | None = None
    url_ru: str | None = None
    revision_url: str | None = None
    """For a shape taken from an older version of the page: that version, on GitHub."""

    @classmethod
    def from_annotation(cls, value: Mapping[str, Any]) -> DocRef:
        """Build from an ``x-b24-doc`` annotation."""
        revision = value.get("revision")
        return cls(
            page=str(value["page"]),
            anchor=value.get("anchor"),
            url=value.get("url"),
            url_ru=value.get("url_ru"),
            revision_url=revision.get("url") if isinstance(revision, Mapping) else None,
        )

    def __str__(self) -> str:
        where = f"{self.page}#{self.anchor}" if self.anchor else self.page
        if self.revision_url:
            return f"{where} (as of {self.revision_url})"
        return f"{where} ({self.url})" if self.url else where

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``None`` fields left out)."""
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class Issue:
    """One violation: where (``path``), what went wrong, what was expected and where that is documented."""

    path: str
    """JSON path of the offending (or missing) value, e.g. ``$.data.DATA[0].connector.line_id``."""
    message: str
    """One line, secrets redacted."""
    expected: str
    keyword: str
    """The JSON Schema keyword that failed (``required``, ``pattern``, ``additionalProperties``...)."""
    doc: DocRef | None = None
    evidence: tuple[str, ...] = ()
    """Evidence tags of the rule: ``docs``, ``source``, ``capture`` (facts file)."""
    shape: str | None = None
    """The shape whose schema produced this issue."""

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} [doc: {self.doc}]" if self.doc else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "path": self.path,
            "message": self.message,
            "expected": self.expected,
            "keyword": self.keyword,
            "doc": self.doc.to_dict() if self.doc else None,
            "evidence": list(self.evidence),
            "shape": self.shape,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on one body: ``ok`` when ``errors`` is empty; ``notes`` say what was (not) checked."""

    event: str
    shape: str
    strict: bool
    errors: tuple[Issue, ...] = ()
    matched_shape: str | None = None
    """The shape the body matched, or for an invalid body the closest one (whose errors are reported)."""
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the body satisfied the schema."""
        return not self.errors

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "ok": self.ok,
            "event": self.event,
            "shape": self.shape,
            "strict": self.strict,
            "matched_shape": self.matched_shape,
            "notes": list(self.notes),
            "errors": [issue.to_dict() for issue in self.errors],
        }

    def format(self) -> str:
        """Several lines for people: the verdict, then one line per issue with its doc page."""
        mode = "strict " if self.strict else ""
        shape = self.matched_shape or self.shape
        head = f"{'valid' if self.ok else 'INVALID'}: {self.event} ({mode}shape {shape})"
        lines = [head, *(f"  note: {note}" for note in self.notes)]
        lines.extend(f"  {issue}" for issue in self.errors)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- registry


@cache
def registry() -> Registry:
    """The ``referencing`` registry of every schema in ``schemas/``, loaded once (cached)."""
    from referencing import Registry, Resource

    root = data_dir("schemas")
    resources = []
    for path in sorted(root.rglob("*.json")):
        where = path.relative_to(root).as_posix()
        try:
            if path.stat().st_size > _MAX_SCHEMA_BYTES:
                raise SchemaError(f"schemas/{where}: larger than {_MAX_SCHEMA_BYTES} bytes")
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"schemas/{where}: unreadable ({exc})") from exc
        uri = contents.get("$id") if isinstance(contents, dict) else None
        if not isinstance(uri, str) or uri != BASE_URI + where:
            raise SchemaError(f"schemas/{where}: its $id must be {BASE_URI + where!r}, found {uri!r}")
        resources.append((uri, Resource.from_contents(contents)))
    return Registry().with_resources(resources).crawl()


@cache
def _catalogue() -> Mapping[str, Any]:
    index = registry().contents(_CATALOGUE_URI)
    events = index.get("x-b24-catalogue") if isinstance(index, Mapping) else None
    if not isinstance(events, Mapping):
        raise SchemaError("schemas/index.json: the x-b24-catalogue mapping is missing")
    return events


def known_events() -> list[str]:
    """Every event in the catalogue, sorted (upper case, as the portal sends them)."""
    return sorted(_catalogue())


def known_shapes(event: str = "ONSESSIONSTART") -> list[str]:
    """The shapes of ``event``: ``"any"`` first, then the concrete ones (none for envelope-only events)."""
    name = _event_name(event)
    return [ANY_SHAPE, *(s for s in _catalogue()[name].get("shapes", {}) if s != ANY_SHAPE)]


def _event_name(event: str) -> str:
    name = event.strip().upper()
    if name not in _catalogue():
        raise UnknownNameError("event", event, known_events())
    return name


def _concrete_shapes(event: str) -> list[str]:
    return [s for s in _catalogue()[event].get("shapes", {}) if s != ANY_SHAPE]


def _has_shapes(event: str) -> bool:
    return bool(_catalogue()[event].get("shapes"))


def schema_uri(event: str = "ONSESSIONSTART", shape: str = ANY_SHAPE, *, strict: bool = False) -> str:
    """The ``$id`` of the schema for ``event`` and ``shape`` (tolerant or strict)."""
    name = _event_name(event)
    variant = "strict" if strict else "tolerant"
    entry = _catalogue()[name]
    shapes = entry.get("shapes")
    if not shapes:
        if shape != ANY_SHAPE:
            raise UnknownNameError(f"shape of {name} (no shapes yet, only the envelope)", shape, [ANY_SHAPE])
        envelope = registry().contents(_CATALOGUE_URI)["x-b24-envelope"]
        return str(envelope[variant])
    if shape not in shapes:
        raise UnknownNameError(f"shape of {name}", shape, shapes)
    return str(shapes[shape][variant])


@cache
def _validator(uri: str) -> Validator:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    return Draft202012Validator(registry().contents(uri), registry=registry())


def validator_for(event: str = "ONSESSIONSTART", shape: str = ANY_SHAPE, strict: bool = False) -> Validator:
    """The compiled ``jsonschema`` validator for ``event``/``shape`` (cached: built once per schema).

    This is the pure-Python reference, which explains failures; verdicts come faster from
    :func:`is_valid` and :func:`validate`.
    """
    return _validator(schema_uri(event, shape, strict=strict))


@cache
def _rust_registry() -> Any:
    from mock_portal import schemas_rs

    return schemas_rs.compile_registry(registry())


@cache
def _rust_check(uri: str) -> Callable[[Any], bool] | None:
    """The jsonschema-rs verdict for schema ``uri``; None without jsonschema_rs or with unportable ones."""
    from mock_portal import schemas_rs

    rust_registry = _rust_registry()
    if rust_registry is None:
        return None
    check: Callable[[Any], bool] = schemas_rs.compile_validator(
        rust_registry, registry().contents(uri)
    ).is_valid
    return check


def fast_backend() -> str:
    """The engine that gives the verdicts here: ``jsonschema-rs`` when it imports, else ``jsonschema``."""
    return "jsonschema-rs" if _rust_registry() is not None else "jsonschema"


def _reference_verdict(uri: str, payload: Any) -> bool:
    try:
        return bool(_validator(uri).is_valid(payload))
    except RecursionError:
        return False  # deeper than any form body can be


def _fast_verdict(uri: str, payload: Any) -> bool:
    check = _rust_check(uri)
    if check is not None:
        try:
            return check(payload)
        except (ValueError, TypeError, OverflowError, RecursionError):
            pass  # a value jsonschema_rs cannot convert (odd key types, too deep): ask the reference
    return _reference_verdict(uri, payload)


def is_valid(
    payload: Any, event: str = "ONSESSIONSTART", shape: str = ANY_SHAPE, *, strict: bool = False
) -> bool:
    """The verdict alone, without building a report: the fast path for bulk checks.

    The same verdict as :func:`validate` (bodies nested deeper than :data:`MAX_DEPTH` are invalid).
    """
    if _deeper_than(payload, MAX_DEPTH):
        return False
    return _fast_verdict(schema_uri(event, shape, strict=strict), payload)


# ---------------------------------------------------------------------------------------------- validate


def validate(
    payload: Any, event: str = "ONSESSIONSTART", shape: str = ANY_SHAPE, *, strict: bool = False
) -> ValidationReport:
    """Validate a decoded body (wire form, every scalar a string) or a doc-style JSON body against a schema.

    ``event`` names the schema (case-insensitive); ``shape`` is ``"any"`` or one of :func:`known_shapes`;
    ``strict`` forbids keys beyond the known ones. Unknown names raise
    :class:`~mock_portal.errors.UnknownNameError`. Events without shapes yet are checked against the
    envelope only, and the report says so in its notes.

    The verdict comes from jsonschema-rs where it is installed (a regular dependency), else from the
    pure-Python ``jsonschema``; the explanation of an invalid body always comes from ``jsonschema``, so the
    report is the same either way. A valid body costs no more than its verdict.
    """
    plan = _plan(event, shape, strict)
    if plan and not _deeper_than(payload, MAX_DEPTH):
        try:
            for check, report in plan:
                if check(payload):
                    return report
        except (ValueError, TypeError, OverflowError, RecursionError):
            pass  # a value jsonschema_rs cannot convert: the full path asks the reference
    return _validate(payload, event, shape, strict, _fast_verdict)


@lru_cache(maxsize=512)
def _plan(event: str, shape: str, strict: bool) -> tuple[tuple[Callable[[Any], bool], ValidationReport], ...]:
    """The fast path of :func:`validate` for one schema: (jsonschema-rs check, the report when it holds), in
    the order :func:`_validate` tries them; empty when only the general path can serve (no jsonschema_rs, or
    an ``any`` schema that asserts more than the union of its shapes). Reports are immutable, so one serves
    every valid body."""
    name = _event_name(event)
    uri = schema_uri(name, shape, strict=strict)
    if not _has_shapes(name):
        note = (f"no schema for {name} yet: only the envelope (event, ts, auth...) was checked",)
        steps = [(uri, ValidationReport(name, shape, strict, (), None, note))]
    elif shape != ANY_SHAPE:
        steps = [(uri, ValidationReport(name, shape, strict, (), shape))]
    elif _any_is_union(name, strict):
        steps = [
            (schema_uri(name, s, strict=strict), ValidationReport(name, shape, strict, (), s))
            for s in _concrete_shapes(name)
        ]
    else:
        return ()
    plan = []
    for step_uri, report in steps:
        check = _rust_check(step_uri)
        if check is None:
            return ()
        plan.append((check, report))
    return tuple(plan)


def _validate_reference(
    payload: Any, event: str = "ONSESSIONSTART", shape: str = ANY_SHAPE, *, strict: bool = False
) -> ValidationReport:
    """:func:`validate` with every verdict from the pure-Python reference (the differential tests' side)."""
    return _validate(payload, event, shape, strict, _reference_verdict)


def _validate(
    payload: Any, event: str, shape: str, strict: bool, verdict: Callable[[str, Any], bool]
) -> ValidationReport:
    name = _event_name(event)
    uri = schema_uri(name, shape, strict=strict)
    notes: list[str] = []
    if _deeper_than(payload, MAX_DEPTH):
        deep = _too_deep(payload) or []
        message = f"nested more than {MAX_DEPTH} levels deep; a form body cannot be (max_input_nesting_level)"
        issue = Issue(json_path(deep), message, f"at most {MAX_DEPTH} levels", "maxDepth")
        return _report(name, shape, strict, [issue], None, notes)
    if not _has_shapes(name):
        notes.append(f"no schema for {name} yet: only the envelope (event, ts, auth...) was checked")
        if verdict(uri, payload):
            return _report(name, shape, strict, [], None, notes)
        return _report(
            name, shape, strict, _issues(name, None, strict, _validator(uri), payload), None, notes
        )

    if shape != ANY_SHAPE:
        if verdict(uri, payload):
            return _report(name, shape, strict, [], shape, notes)
        issues = _issues(name, shape, strict, _validator(uri), payload)
        return _report(name, shape, strict, issues, shape, notes)

    candidates = _concrete_shapes(name)
    # "any" is the union of the shapes (when it asserts nothing more): the first shape that holds is both
    # the verdict and the matched shape, without checking the union first
    if _any_is_union(name, strict) or verdict(uri, payload):
        for candidate in candidates:
            if verdict(schema_uri(name, candidate, strict=strict), payload):
                return _report(name, shape, strict, [], candidate, notes)

    per_shape = {s: _issues(name, s, strict, validator_for(name, s, strict), payload) for s in candidates}
    best = _closest_shape(per_shape, name, payload)
    if best is None:
        notes.append(
            f"matches none of the known shapes ({', '.join(candidates)}); "
            "the violations below are common to all of them"
        )
        return _report(name, shape, strict, per_shape[candidates[0]], None, notes)
    notes.append(
        f"matches none of the known shapes ({', '.join(candidates)}); "
        f"closest is {best}{_shape_hint(payload)}, whose violations follow"
    )
    return _report(name, shape, strict, per_shape[best], best, notes)


_ANNOTATION_KEYS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "$defs"})


@cache
def _any_is_union(event: str, strict: bool) -> bool:
    """True when the ``any`` schema of ``event`` is exactly ``anyOf`` its shapes' schemas, in catalogue order.

    Then a body is valid for ``any`` if and only if it is valid for one shape, and the shapes can be tried
    alone.
    """
    uri = schema_uri(event, ANY_SHAPE, strict=strict)
    contents = registry().contents(uri)
    if any(k not in _ANNOTATION_KEYS and not k.startswith("x-") for k in contents if k != "anyOf"):
        return False
    resolver = registry().resolver(uri)
    branches = contents.get("anyOf")
    if not isinstance(branches, list):
        return False
    targets = []
    for branch in branches:
        ref = branch.get("$ref") if isinstance(branch, Mapping) else None
        if not isinstance(ref, str) or len(branch) != 1:
            return False
        targets.append(resolver.lookup(ref).contents)
    shapes = [registry().contents(schema_uri(event, s, strict=strict)) for s in _concrete_shapes(event)]
    return (
        bool(shapes)
        and len(targets) == len(shapes)
        and all(t is s or t == s for t, s in zip(targets, shapes, strict=True))
    )


def _deeper_than(node: Any, limit: int) -> bool:
    """True when a container is nested more than ``limit`` levels below ``node`` (no paths built: cheap).

    Exact types first: an ``isinstance`` check against ``Mapping`` costs more than the whole walk of a body.
    """
    values: Iterable[Any]
    if type(node) is dict:
        values = node.values()
    elif type(node) is list:
        values = node
    elif isinstance(node, Mapping):
        values = node.values()
    elif isinstance(node, list):
        values = node
    else:
        return False
    for value in values:
        kind = type(value)
        if (kind is dict or kind is list or (kind is not str and isinstance(value, (Mapping, list)))) and (
            not limit or _deeper_than(value, limit - 1)
        ):
            return True
    return False


def _too_deep(payload: Any) -> list[str | int] | None:
    """The path of the first value nested deeper than :data:`MAX_DEPTH`, or None (iterative: no recursion)."""
    stack: list[tuple[list[str | int], Any]] = [([], payload)]
    while stack:
        path, node = stack.pop()
        if len(path) > MAX_DEPTH:
            return path
        if isinstance(node, Mapping):
            stack.extend(([*path, str(k)], v) for k, v in node.items() if isinstance(v, (Mapping, list)))
        elif isinstance(node, list):
            stack.extend(([*path, i], v) for i, v in enumerate(node) if isinstance(v, (Mapping, list)))
    return None


def _report(
    event: str, shape: str, strict: bool, issues: Sequence[Issue], matched: str | None, notes: Sequence[str]
) -> ValidationReport:
    return ValidationReport(
        event=event,
        shape=shape,
        strict=strict,
        errors=tuple(issues),
        matched_shape=matched,
        notes=tuple(notes),
    )


def _closest_shape(per_shape: Mapping[str, Sequence[Issue]], event: str, payload: Any) -> str | None:
    """The shape the body comes closest to, or None when nothing tells the shapes apart.

    Errors shared by every shape (envelope, auth) say nothing about the shape, so rank on the others: first
    the shape that describes more of the body's keys, then the one whose errors lie deeper (it matched more
    before failing), then fewer errors, then the catalogue's order.
    """
    keys = {s: {(i.path, i.keyword) for i in issues} for s, issues in per_shape.items()}
    shared = set.intersection(*keys.values()) if keys else set()
    leaves = list(_leaf_paths(payload))

    def rank(item: tuple[int, str]) -> tuple[int, int, int, int, int]:
        order, shape = item
        own = [i for i in per_shape[shape] if (i.path, i.keyword) not in shared]
        if not own:
            return (0, 0, 0, 0, order)
        uri = schema_uri(event, shape)
        covered = sum(1 for leaf in leaves if _annotations(uri, leaf).described)
        shallowest = min(_depth(i.path) for i in own)
        return (1, -covered, -shallowest, len(own), order)

    if all(all((i.path, i.keyword) in shared for i in issues) for issues in per_shape.values()):
        return None  # nothing tells the shapes apart
    return min(enumerate(per_shape), key=rank)[1]


def _leaf_paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of the scalars in a body, at most a few hundred and a few levels deep (enough to rank shapes)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(prefix, value)]
    seen = 0
    while stack and seen < _MAX_LEAVES:
        path, node = stack.pop()
        if len(path) > _MAX_LEAF_DEPTH:
            continue
        if isinstance(node, Mapping):
            stack.extend(((*path, str(k)), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node[:_MAX_LEAVES]))
        else:
            seen += 1
            yield path


def _depth(path: str) -> int:
    return path.count(".") + path.count("[")


def _shape_hint(payload: Any) -> str:
    data = payload.get("data") if isinstance(payload, Mapping) else None
    items = data.get("DATA") if isinstance(data, Mapping) else None
    if isinstance(items, Mapping):
        return " (data.DATA is one object, as the module source sends it)"
    if isinstance(items, list):
        return " (data.DATA is a list, as the doc pages show it)"
    return ""


# ---------------------------------------------------------------------------------------------- issues


def _issues(event: str, shape: str | None, strict: bool, validator: Validator, payload: Any) -> list[Issue]:
    annotated_uri = schema_uri(event, shape or ANY_SHAPE, strict=False)
    issues: dict[tuple[str, str, str], Issue] = {}
    for error in validator.iter_errors(payload):
        for issue in _explain(error, annotated_uri, shape, strict):
            # jsonschema reports each missing required property as its own error of the whole list
            issues.setdefault((issue.path, issue.keyword, issue.message), issue)
    return [issues[key] for key in sorted(issues)]


def _explain(error: ValidationError, annotated_uri: str, shape: str | None, strict: bool) -> Iterator[Issue]:
    where = list(error.absolute_path)
    keyword = str(error.validator)
    value = error.instance
    if keyword == "required":
        present = value if isinstance(value, Mapping) else {}
        for name in _required_missing(error, present):
            path = [*where, name]
            info = _annotations(annotated_uri, path)
            yield _issue(path, f"missing required property {name!r}", info.expected, keyword, info, shape)
        return
    if keyword == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else []
        extra = sorted(k for k in value if k not in allowed) if isinstance(value, Mapping) else []
        mode = f"strict {shape}" if shape else "strict"
        info = _annotations(annotated_uri, where)
        for name in extra:
            message = f"unexpected property {name!r} ({mode} allows only: {', '.join(allowed)})"
            yield _issue([*where, name], message, f"only {', '.join(allowed)}", keyword, info, shape)
        return
    info = _annotations(annotated_uri, where)
    shown = _show(value, where)
    expected = info.expected
    if keyword == "type":
        if error.validator_value == "object":
            expected = f"an object ({expected})"
        elif error.validator_value == "array":
            expected = f"a list ({expected})"
        message = f"expected {expected}, got {_json_type(value)} {shown}"
    elif keyword == "pattern":
        message = f"{shown} is not {_article(expected)}"
    elif keyword == "minimum":
        message = f"{shown} is below the minimum {error.validator_value}"
    elif keyword == "enum":
        choices = ", ".join(_show(c, []) for c in error.validator_value)
        expected = f"one of {choices}"
        message = f"{shown} is not one of {choices}"
    elif keyword == "const":
        expected = _show(error.validator_value, [])
        message = f"{shown} is not {expected}"
    elif keyword == "minItems":
        message = f"a list of at least {error.validator_value} item(s) expected, got {len(value)}"
    elif keyword == "minLength":
        message = f"{shown} is empty; {_article(expected)} is expected"
    else:
        message = redact_text(error.message)
    yield _issue(where, message, expected, keyword, info, shape)


def _required_missing(error: ValidationError, present: Mapping[str, Any]) -> list[str]:
    names = error.validator_value if isinstance(error.validator_value, list) else []
    return [str(n) for n in names if n not in present]


def _issue(
    path: Sequence[str | int], message: str, expected: str, keyword: str, info: _Info, shape: str | None
) -> Issue:
    return Issue(
        path=json_path(path),
        message=redact_text(message),
        expected=expected,
        keyword=keyword,
        doc=info.doc,
        evidence=info.evidence,
        shape=shape,
    )


def json_path(parts: Iterable[str | int]) -> str:
    """``["data", "DATA", 0, "line_id"]`` -> ``$.data.DATA[0].line_id`` (odd keys as ``['key']``)."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            out.append("[" + json.dumps(part, ensure_ascii=False).replace('"', "'") + "]")
    return "".join(out)


def _show(value: Any, path: Sequence[str | int]) -> str:
    """A short rendering of an offending value; secrets (by key on the path, or inside) are masked."""
    if any(isinstance(p, str) and p.lower() in SECRET_KEYS - {"auth"} for p in path):
        return "'***'"
    text = json.dumps(redact(value), ensure_ascii=False, default=repr)
    if isinstance(value, str):
        text = "'" + text[1:-1] + "'"
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _article(text: str) -> str:
    if text.startswith(("a ", "an ", "one ", "the ")):
        return text
    # "a unix timestamp", "an identifier": a leading u is mostly read as "you"
    return ("an " if text[:1].lower() in "aeio" else "a ") + text


# ---------------------------------------------------------------------------------------------- annotations


@dataclass(frozen=True)
class _Info:
    expected: str
    doc: DocRef | None
    evidence: tuple[str, ...]
    described: bool = True


def _annotations(uri: str, path: Sequence[str | int]) -> _Info:
    """Follow ``path`` through the tolerant schema ``uri``; keep the nearest ``x-b24-doc`` and evidence."""
    # every list item has the same schema, so one cache entry serves them all
    return _annotations_cached(uri, tuple(0 if isinstance(p, int) else p for p in path))


@lru_cache(maxsize=4096)
def _annotations_cached(uri: str, path: tuple[str | int, ...]) -> _Info:
    resolver = registry().resolver(uri)
    nodes = _expand(registry().contents(uri), resolver, 0)
    doc: Mapping[str, Any] | None = None
    evidence: Sequence[str] = ()
    for depth, part in enumerate((*path, None)):
        # at each depth the first schema applied (the event's own, before the shared ones it refers to) wins
        doc = next((n["x-b24-doc"] for n, _ in nodes if isinstance(n.get("x-b24-doc"), Mapping)), doc)
        evidence = next(
            (n["x-b24-evidence"] for n, _ in nodes if isinstance(n.get("x-b24-evidence"), list)), evidence
        )
        if part is None or depth == len(path):
            break
        children = []
        for node, node_resolver in nodes:
            child = _child(node, part)
            if child is not None:
                children.extend(_expand(child, node_resolver, 0))
        if not children:
            return _Info("a value (not described by the schema)", _doc(doc), tuple(evidence), described=False)
        nodes = children
    return _Info(_describe([n for n, _ in nodes]), _doc(doc), tuple(evidence))


def _doc(value: Mapping[str, Any] | None) -> DocRef | None:
    return DocRef.from_annotation(value) if value else None


def _child(node: Mapping[str, Any], part: str | int) -> Any:
    if isinstance(part, int):
        return node.get("items")
    properties = node.get("properties")
    if isinstance(properties, Mapping) and part in properties:
        return properties[part]
    return None


def _expand(node: Any, resolver: Any, depth: int) -> list[tuple[Mapping[str, Any], Any]]:
    """The node and every schema it applies in place ($ref, allOf, anyOf, then/else), with their resolvers."""
    if not isinstance(node, Mapping) or depth > 16:
        return []
    out: list[tuple[Mapping[str, Any], Any]] = [(node, resolver)]
    ref = node.get("$ref")
    if isinstance(ref, str):
        resolved = resolver.lookup(ref)
        out.extend(_expand(resolved.contents, resolved.resolver, depth + 1))
    for keyword in ("allOf", "anyOf"):
        for sub in node.get(keyword, ()):
            out.extend(_expand(sub, resolver, depth + 1))
    for keyword in ("then", "else"):
        out.extend(_expand(node.get(keyword), resolver, depth + 1))
    return out


def _describe(nodes: Sequence[Mapping[str, Any]]) -> str:
    """What a value should be, in words: the first title among the applied schemas, else its type."""
    for node in reversed(nodes):  # the referenced (innermost) schema carries the scalar's title
        if isinstance(node.get("title"), str):
            return str(node["title"])
    for node in nodes:
        if node.get("type") == "array":
            return "a list (keys 0..n-1 on the wire)"
        if node.get("type") == "object":
            return "an object"
    return "a value"
