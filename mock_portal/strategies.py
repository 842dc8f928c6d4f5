"""Hypothesis strategies for Bitrix24 event payloads and PHP wire bodies, derived from the project's schemas.

::

    from hypothesis import given
    from mock_portal import strategies

    @given(strategies.wire_bodies("ONSESSIONSTART"))
    def test_handler_never_answers_5xx(body): ...

Every strategy reads the event's schema in ``schemas/`` (draft 2020-12, through ``mock_portal.schemas``)
and generates values that validate against it: every optional field on and off, boundary values (ids ``0``
and ``9999999999999999999``, 32- and 64-bit limits), unicode and the characters the form encoding must
escape, several items in every list (``data[DATA]``, ``data[MESSAGES]``), user and system ``auth`` blocks.
Shrinking goes toward the plainest event: optional fields off, one item, short ASCII text.

- :func:`payloads`: the decoded payload, as PHP's ``parse_str`` gives it to a handler (``view="wire"``,
  every scalar a string) or as the doc pages show it (``view="json"``, ids as integers or digit strings).
- :func:`wire_bodies`: the form body the portal POSTs (PHP ``http_build_query``).
- :func:`mutations`: near-valid events, each one small change away from a valid one (a missing required
  key, a non-numeric id, a wrong type, an empty string, a flag out of its set) that the schema refuses.

``context`` pins values real events must carry for a handler to accept them, such as what
``Portal.event_context(app, token=token)`` returns: ``domain``, ``member_id``, ``application_token``,
``client_endpoint``, ``server_endpoint``, ``access_token``, ``refresh_token``, ``expires``, ``expires_in``,
``scope``, ``status`` and ``user_id`` (in every ``auth`` block that has the key), ``ts`` and
``event_handler_id`` (at the top level). Other keys are ignored.

hypothesis is imported by this module: install it (it is in the ``test`` extra) to use it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError("mock_portal.strategies needs hypothesis: pip install 'hypothesis>=6.100'") from exc

from mock_portal._schema_model import ANY, NEVER, Arr, Choice, Node, Obj, Scalar, compile_uri, require_key
from mock_portal.errors import UnknownNameError, UsageError

__all__ = ["MUTATION_KINDS", "VIEWS", "Mutation", "mutations", "payloads", "wire_bodies"]

VIEWS: Final = ("wire", "json")
"""``wire``: what ``parse_str`` gives a handler (every scalar a string); ``json``: typed, doc-style."""

MUTATION_KINDS: Final = ("missing-required", "non-numeric-id", "wrong-type", "empty-string", "bad-enum")
"""The near-valid changes :func:`mutations` makes."""

View = Literal["wire", "json"]

_AUTH_KEYS: Final = frozenset(
    {
        "domain", "member_id", "application_token", "client_endpoint", "server_endpoint", "access_token",
        "refresh_token", "expires", "expires_in", "scope", "status", "user_id",
    }
)  # fmt: skip
_TOP_KEYS: Final = frozenset({"ts", "event_handler_id"})
# the top-level keys in the order the portal sends them, auth always last (facts §1)
_TOP_ORDER: Final = ("event", "event_handler_id", "eventId", "data", "ts")
_MAX_ITEMS_LIMIT: Final = 50
_MAX_TEXT: Final = 40

# strings that break naive handlers: the form encoding's reserved characters, PHP bracket syntax, unicode
# beyond the BMP, bidi and control characters, markup, numbers and flags in string form, a long one
_TRICKY_TEXT: Final = (
    "&", "=", "a&b=c", "[]", "data[DATA][0]", "%", "%25", "%zz", "+", " ", "\t", "\r\n", "~",
    "Линия «Поддержка» & Co = 100% #1 ?/+;~", "😀", "\u202eRTL", "\u00a0", "\\", "'\"<b>x</b>", "null",
    "0", "-1", "Y", "N", "x" * 1024,
)  # fmt: skip
# non-negative id boundaries: 0, 1, 32-bit and 64-bit limits, the largest 19-digit id the schemas accept
_ID_BOUNDARIES: Final = (0, 1, 2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, 10**19 - 1)
_NON_NUMERIC: Final = ("abc", "12a", "-1", "1.5", "", " 1", "１２", "0x10", "1e3", "NaN", "٣")
_HOSTS: Final = (
    "portal.bitrix24.com",
    "b24-x1.bitrix24.ru",
    "пример.рф",
    "127.0.0.1:8080",
    "crm.example.org",
)


def _wire_patterns() -> dict[str, str]:
    """The patterns of the wire scalars in ``schemas/common/wire.json``, by definition name."""
    from mock_portal.schemas import BASE_URI, registry

    defs = registry().contents(BASE_URI + "common/wire.json")["$defs"]
    return {name: d["pattern"] for name, d in defs.items() if isinstance(d, Mapping) and "pattern" in d}


# ------------------------------------------------------------------------------------------------ scalars


def _text(min_size: int, max_size: int | None) -> st.SearchStrategy[str]:
    top = max(min_size, _MAX_TEXT if max_size is None else min(max_size, _MAX_TEXT))
    plain = st.text(st.characters(exclude_categories=["Cs"]), min_size=min_size, max_size=top)
    fits = [t for t in _TRICKY_TEXT if len(t) >= min_size and (max_size is None or len(t) <= max_size)]
    return st.one_of(plain, st.sampled_from(fits)) if fits else plain


def _digits(signed: bool) -> st.SearchStrategy[int]:
    top = 10**19 - 1
    values = st.one_of(st.integers(0, 10**6), st.sampled_from(_ID_BOUNDARIES), st.integers(0, top))
    if signed:
        return st.tuples(st.booleans(), values).map(lambda sv: -sv[1] if sv[0] else sv[1])
    return values


def _url(pattern: str) -> st.SearchStrategy[str]:
    path = st.text(st.sampled_from("abcxyz019-_./~%"), max_size=12)
    built = st.builds(
        lambda scheme, host, tail: f"{scheme}://{host}/{tail}",
        st.sampled_from(("https", "http")),
        st.sampled_from(_HOSTS),
        path,
    )
    return st.one_of(built, st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= 200))


@cache
def _scalar(node: Scalar) -> st.SearchStrategy[Any]:
    if node.has_const:
        return st.just(node.const)
    if node.enum is not None:
        return st.sampled_from(node.enum)
    types = node.types or frozenset({"string"})
    patterns = _wire_patterns()
    choices: list[st.SearchStrategy[Any]] = []
    if node.pattern in (patterns.get("id"), patterns.get("timestamp"), patterns.get("integer")):
        numbers = _digits(signed=node.pattern == patterns.get("integer"))
        if node.minimum is not None:
            numbers = numbers.filter(lambda n: n >= (node.minimum or 0))
        if "integer" in types:
            choices.append(numbers)
        if "string" in types:
            choices.append(numbers.map(str))
    elif "string" in types:
        if node.pattern is not None and node.pattern == patterns.get("url"):
            choices.append(_url(node.pattern))
        elif node.pattern is not None:
            choices.append(st.from_regex(node.pattern, fullmatch=True))
        else:
            choices.append(_text(node.min_length, node.max_length))
        if "integer" in types:
            choices.append(st.integers(0 if node.minimum is None else node.minimum, 10**12))
    elif "integer" in types:
        choices.append(st.integers(0 if node.minimum is None else node.minimum, 10**19 - 1))
    if "boolean" in types:
        choices.append(st.booleans())
    if "null" in types:
        choices.append(st.none())
    if not choices:
        raise UsageError(f"strategies: cannot generate a value of type {sorted(types)}")
    strategy = st.one_of(choices)
    if node.pattern is not None:
        compiled = re.compile(node.pattern)
        strategy = strategy.filter(lambda v: not isinstance(v, str) or compiled.search(v) is not None)
    return strategy


# ------------------------------------------------------------------------------------------------ drawing


@dataclass(frozen=True)
class _Site:
    """A value present in a generated payload: where, what the schema says of it, whether it is required."""

    path: tuple[str | int, ...]
    node: Node
    required: bool


@dataclass(frozen=True)
class _Options:
    view: View
    unknown_keys: bool
    max_items: int


_UNKNOWN_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
_MAP_KEY = st.integers(1, 10**9).map(str)


def _any_value(draw: Callable[..., Any]) -> Any:
    """A value for a key the schema leaves open: text, or a small object of text (never empty: an empty
    array vanishes from a form body, facts §1)."""
    if draw(st.booleans()):
        return {draw(_UNKNOWN_KEY): draw(_text(0, None))}
    return draw(_text(0, None))


def _null_only(node: Node) -> bool:
    return isinstance(node, Scalar) and node.types == frozenset({"null"})


def _draw(
    draw: Callable[..., Any], node: Node, path: tuple[str | int, ...], sites: list[_Site], o: _Options
) -> Any:
    if node is ANY:
        return _any_value(draw)
    if node is NEVER:  # pragma: no cover - pruned when the model is built
        raise UsageError(f"strategies: no value can satisfy the schema at {_json_path(path)}")
    if isinstance(node, Choice):
        branches = node.branches
        if o.view == "wire":
            # a form body cannot carry null (http_build_query drops the key, facts §1)
            branches = tuple(b for b in branches if not _null_only(b)) or branches
        return _draw(draw, branches[draw(st.integers(0, len(branches) - 1))], path, sites, o)
    if isinstance(node, Arr):
        if node.max_items == 0:
            return []  # an empty list is all the schema allows
        low = max(1, node.min_items)
        high = max(low, o.max_items if node.max_items is None else min(node.max_items, o.max_items))
        count = draw(st.integers(low, high))
        return [_child(draw, node.item, (*path, i), True, sites, o) for i in range(count)]
    if isinstance(node, Obj):
        return _draw_object(draw, node, path, sites, o)
    assert isinstance(node, Scalar)
    return draw(_scalar(node))


def _child(
    draw: Callable[..., Any],
    node: Node,
    path: tuple[str | int, ...],
    required: bool,
    sites: list[_Site],
    o: _Options,
) -> Any:
    value = _draw(draw, node, path, sites, o)
    sites.append(_Site(path, node, required))
    return value


def _draw_object(
    draw: Callable[..., Any], node: Obj, path: tuple[str | int, ...], sites: list[_Site], o: _Options
) -> dict[str, Any]:
    names = list(node.props)
    names += [n for n in node.required if n not in node.props]
    if not path:
        names.sort(key=lambda n: _TOP_ORDER.index(n) if n in _TOP_ORDER else len(_TOP_ORDER))
    value: dict[str, Any] = {}
    for name in names:
        if name in node.forbidden or (node.allowed is not None and name not in node.allowed):
            continue
        required = name in node.required
        # hypothesis shrinks a boolean to False: the minimal example has every optional field off
        if not required and not draw(st.booleans()):
            continue
        value[name] = _child(draw, node.props.get(name, ANY), (*path, name), required, sites, o)
    candidates = [n for n in names if n not in node.forbidden and (node.allowed is None or n in node.allowed)]
    if path and not value and candidates and o.view == "wire":
        # an empty object vanishes from a PHP form body (facts §1), so on the wire it is never there
        name = candidates[draw(st.integers(0, len(candidates) - 1))]
        value[name] = _child(draw, node.props.get(name, ANY), (*path, name), False, sites, o)
    elif path and not value and o.view == "wire" and node.allowed is None and node.extra is None:
        # an open object with no known keys: one key of any value, so the form body keeps it
        key = draw(_UNKNOWN_KEY)
        value[key] = _child(draw, ANY, (*path, key), False, sites, o)
    if node.extra is not None and node.allowed is None:
        # a map keyed by ids (``BOT`` keyed by bot id): one or two entries, each of the given schema; never
        # ``0``, which would make the form body decode to a list
        for key in draw(st.lists(_MAP_KEY, min_size=1, max_size=2, unique=True)):
            if key not in value and key not in node.forbidden:
                value[key] = _child(draw, node.extra, (*path, key), False, sites, o)
    elif o.unknown_keys and node.allowed is None:
        for key in draw(st.lists(_UNKNOWN_KEY, max_size=2, unique=True)):
            if key not in value and key not in node.forbidden:
                value[key] = _child(draw, ANY, (*path, key), False, sites, o)
    if not path and "auth" in value:
        value["auth"] = value.pop("auth")  # auth is always last (facts §1)
    return value


def _json_path(path: Sequence[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _to_wire(value: Any) -> Any:
    """The ``parse_str`` view of a typed value: scalars as strings, ``true`` as ``1`` (facts §1)."""
    if isinstance(value, Mapping):
        return {str(k): _to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_wire(v) for v in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _pin(payload: dict[str, Any], context: Mapping[str, Any], view: View) -> None:
    def fit(value: Any) -> Any:
        return _to_wire(value) if view == "wire" else value

    for key in _TOP_KEYS & context.keys():
        if key in payload and context[key] is not None:
            payload[key] = fit(context[key])

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "auth" and isinstance(item, dict):
                    for name in _AUTH_KEYS & item.keys() & context.keys():
                        if context[name] is not None:
                            item[name] = fit(context[name])
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)


# ------------------------------------------------------------------------------------------------ public


def _model(event: str, shape: str, auth: str | None, strict: bool) -> tuple[str, Node]:
    from mock_portal.schemas import known_events, schema_uri

    name = event.strip().upper() if isinstance(event, str) else event
    uri = schema_uri(name, shape, strict=strict)  # raises UnknownNameError for an unknown event or shape
    node = compile_uri(uri)
    if auth is not None:
        if auth not in ("user", "system"):
            raise UnknownNameError("auth mode", str(auth), ("user", "system"))
        node = require_key(node, ("auth",), "access_token", present=auth == "user")
        if node is NEVER:
            raise UsageError(f"{name} has no {auth}-mode auth block in its schema")
    # the catalogue names the event; the envelope alone allows any event name
    node = require_key(node, (), "event", present=True)
    assert name in known_events()
    return name, node


def _check(view: str, max_items: int) -> None:
    if view not in VIEWS:
        raise UnknownNameError("view", str(view), VIEWS)
    if (
        isinstance(max_items, bool)
        or not isinstance(max_items, int)
        or not 1 <= max_items <= _MAX_ITEMS_LIMIT
    ):
        raise UsageError(f"max_items must be an integer from 1 to {_MAX_ITEMS_LIMIT}, got {max_items!r}")


def _generated(
    event: str,
    shape: str,
    auth: str | None,
    view: View,
    strict: bool,
    unknown_keys: bool,
    max_items: int,
    context: Mapping[str, Any] | None,
) -> st.SearchStrategy[tuple[dict[str, Any], list[_Site], str]]:
    _check(view, max_items)
    name, node = _model(event, shape, auth, strict)
    options = _Options(view, unknown_keys and not strict, max_items)
    pinned = dict(context or {})

    @st.composite
    def build(draw: Callable[..., Any]) -> tuple[dict[str, Any], list[_Site], str]:
        sites: list[_Site] = []
        payload = _draw(draw, node, (), sites, options)
        payload["event"] = name
        if view == "wire":
            payload = _to_wire(payload)
        _pin(payload, pinned, view)
        return payload, sites, name

    return build()


def payloads(
    event: str = "ONSESSIONSTART",
    shape: str = "any",
    *,
    auth: str | None = None,
    view: View = "wire",
    strict: bool = False,
    unknown_keys: bool = False,
    max_items: int = 3,
    context: Mapping[str, Any] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid payloads of ``event`` in ``shape`` (``"any"``: every known shape).

    ``auth``: ``"user"``, ``"system"`` or None for both (facts §2). ``view``: ``"wire"`` (every scalar a
    string, as a handler's ``parse_str`` gives it) or ``"json"`` (typed, as the doc pages show it).
    ``strict``: only the documented keys; ``unknown_keys``: add keys the docs do not know (tolerant schemas
    only, as real portals do). ``max_items``: the most items a list gets. ``context``: values to pin (see the
    module docstring). Unknown names raise :class:`~mock_portal.errors.UnknownNameError`.
    """
    return _generated(event, shape, auth, view, strict, unknown_keys, max_items, context).map(lambda g: g[0])


def wire_bodies(
    event: str = "ONSESSIONSTART",
    shape: str = "any",
    *,
    auth: str | None = None,
    strict: bool = False,
    unknown_keys: bool = False,
    max_items: int = 3,
    context: Mapping[str, Any] | None = None,
) -> st.SearchStrategy[str]:
    """Form bodies of valid ``event`` payloads, byte for byte what PHP ``http_build_query`` makes of them
    (the arguments are those of :func:`payloads`)."""
    from mock_portal.wire import encode

    return payloads(
        event,
        shape,
        auth=auth,
        strict=strict,
        unknown_keys=unknown_keys,
        max_items=max_items,
        context=context,
    ).map(encode)


@dataclass(frozen=True)
class Mutation:
    """A near-valid payload: a valid one with one change (``kind``, at JSON path ``path``) that its schema
    refuses. ``event`` and ``shape`` name the schema."""

    event: str
    shape: str
    kind: str
    path: str
    payload: dict[str, Any]

    def body(self) -> str:
        """The form body (PHP ``http_build_query``)."""
        from mock_portal.wire import encode

        return encode(self.payload)

    def __str__(self) -> str:
        return f"{self.event} ({self.shape}) with {self.kind} at {self.path}"


def _digit_node(node: Node) -> bool:
    if not isinstance(node, Scalar) or node.pattern is None:
        return False
    patterns = _wire_patterns()
    return node.pattern in (patterns.get("id"), patterns.get("timestamp"), patterns.get("integer"))


def _applicable(kind: str, site: _Site) -> bool:
    node = site.node
    if kind == "missing-required":
        return site.required
    if kind == "non-numeric-id":
        return _digit_node(node)
    if kind == "wrong-type":
        return isinstance(node, (Obj, Arr, Scalar))
    if kind == "empty-string":
        return isinstance(node, Scalar) and node.min_length > 0 and not node.has_const
    if kind == "bad-enum":
        return isinstance(node, Scalar) and (node.enum is not None or node.has_const)
    return False


def _set(payload: Any, path: Sequence[str | int], value: Any) -> None:
    container = payload
    for step in path[:-1]:
        container = container[step]
    if value is _REMOVE:
        del container[path[-1]]
    else:
        container[path[-1]] = value


_REMOVE: Final = object()


def _replacement(kind: str, site: _Site) -> st.SearchStrategy[Any]:
    if kind == "missing-required":
        return st.just(_REMOVE)
    if kind == "non-numeric-id":
        return st.sampled_from(_NON_NUMERIC)
    if kind == "empty-string":
        return st.just("")
    if kind == "bad-enum":
        return st.sampled_from(("X", "yes", "", "y", "Y ", "2", "true"))
    # wrong-type: an object where a scalar goes, a scalar where an object or a list goes
    if isinstance(site.node, (Obj, Arr)):
        return st.sampled_from(("x", "1", "Array"))
    # a key that is not a list index, so the wire body decodes back to the same object
    return st.just({"nested": "x"})


def mutations(
    event: str = "ONSESSIONSTART",
    shape: str = "any",
    *,
    kinds: Sequence[str] = MUTATION_KINDS,
    auth: str | None = None,
    view: View = "wire",
    max_items: int = 3,
    context: Mapping[str, Any] | None = None,
) -> st.SearchStrategy[Mutation]:
    """Near-valid payloads of ``event``: each a valid payload with one change of one of ``kinds`` (default:
    every kind in :data:`MUTATION_KINDS`) that the tolerant schema of ``shape`` refuses. The other
    arguments are those of :func:`payloads`."""
    from mock_portal.schemas import is_valid

    chosen = tuple(kinds)
    for kind in chosen:
        if kind not in MUTATION_KINDS:
            raise UnknownNameError("mutation kind", str(kind), MUTATION_KINDS)
    if not chosen:
        raise UsageError(f"give at least one mutation kind (known: {', '.join(MUTATION_KINDS)})")
    base = _generated(event, shape, auth, view, False, False, max_items, context)

    @st.composite
    def build(draw: Callable[..., Any]) -> Mutation | None:
        payload, sites, name = draw(base)
        # a kind first, then where: every kind as likely as the others, however many sites each fits
        fitting = {k: [s for s in sites if _applicable(k, s)] for k in chosen}
        usable = [k for k in chosen if fitting[k]]
        if not usable:
            return None
        kind = draw(st.sampled_from(usable))
        site = draw(st.sampled_from(fitting[kind]))
        mutated = copy.deepcopy(payload)
        _set(mutated, site.path, draw(_replacement(kind, site)))
        if is_valid(mutated, name, shape):
            return None  # the change happened to match another branch (a system-mode auth, another shape)
        return Mutation(name, shape, kind, _json_path(site.path), mutated)

    return build().filter(lambda m: m is not None).map(lambda m: _some(m))


def _some(value: Mutation | None) -> Mutation:
    assert value is not None
    return value
