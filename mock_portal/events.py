"""Event builders: realistic, reproducible Bitrix24 event bodies in every known shape, auth mode and encoding.

``build_event`` makes one event; ``EventStream`` makes many, fast. Both are seeded: the same seed gives the
same bytes in every process (``random.Random`` seeded with an int or a string is stable across processes, no
hash randomisation or clock is involved unless the caller passes ``ts``)::

    event = build_event("ONSESSIONSTART", shape="docs-2026", auth="system", seed=7)
    event.payload            # typed JSON view (integers for ids), as the doc pages render it
    event.wire_payload       # what PHP parse_str gives the handler: every scalar a string (facts §1)
    event.body("form")       # the PHP http_build_query body, byte-identical to wire.encode(event.payload)
    event.body("json")       # doc-style JSON with typed scalars

Values come from the optional ``context`` (an :class:`EventContext` or a mapping with the same keys: the
portal passes its real domain, tokens, ids and its mock REST ``client_endpoint``); whatever it leaves out is
drawn from the seed, coherently inside the event (``connector.chat_id == chat.id``, line ids agree,
``client_endpoint == https://<domain>/rest/``, ``expires == ts + expires_in``).

Overrides edit the finished typed payload by dotted path (list items by index). As strings (the CLI's
``--set``): ``PATH=VALUE`` sets (``VALUE`` is read as JSON when it parses, ``5``, ``true``, ``null``,
``{"a": 1}``, otherwise taken as a plain string), ``del:PATH`` deletes. As a mapping: ``{PATH: value}``,
with :data:`DELETE` as the value to delete. Missing keys are created (to add unknown keys); a new top-level
key goes before ``auth``, which stays last (facts §1). A ``null`` or empty list vanishes from the form body as
PHP drops it (facts §1) but stays in the JSON body.

Speed: Faker fills pools of human-readable values once per locale (seeded with a constant, so they are the
same everywhere); a ``random.Random`` picks from them and draws the numbers and hex tokens. The form body is
filled into a per-(event, shape, auth) template whose keys are percent-encoded once; values are escaped only
when they can need it, and text values (line names, endpoints, scopes) are escaped once and cached.

Builders: OnSessionStart and the install flow are written here, the sibling events in
:mod:`mock_portal.siblings`, every other event the docs describe is built from its derived schema
(:mod:`mock_portal.derived`); each takes its shapes, auth modes and defaults from the event table
(:mod:`mock_portal.eventtable`). The modules form a chain with no cycle: ``_eventspec`` <- ``siblings``,
``derived`` <- ``events``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import operator
import random
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

from mock_portal._eventspec import (
    _TEXT_FIELDS,
    _TS_BASE,
    _TS_SPAN_BITS,
    AUTH_MODES,
    DEFAULT_LOCALE,
    ContextLike,
    EventContext,
    EventSpec,
    Record,
    _as_context,
    _connector,
    _draw_event,
    _draw_portal,
    _escape_any,
    _Overlay,
    _php_urlencode,
    _pools,
    _session,
    _wire_scalar,
    hand_spec,
)
from mock_portal.errors import UnknownNameError, UsageError
from mock_portal.redact import SECRET_KEYS, redact_text
from mock_portal.siblings import sibling_specs

__all__ = [
    "AUTH_MODES",
    "DELETE",
    "ENCODINGS",
    "SHAPES",
    "BuiltEvent",
    "EventContext",
    "EventSpec",
    "EventStream",
    "apply_overrides",
    "build_event",
    "event_names",
    "event_spec",
    "register_event",
]

SHAPES: Final[tuple[str, ...]] = ("source-2024", "docs-2024", "docs-2026")
"""The OnSessionStart shapes (facts §3)."""

ENCODINGS: Final[tuple[str, ...]] = ("form", "json")
"""``form`` = the PHP wire body; ``json`` = doc-style JSON with typed scalars."""

Encoding = Literal["form", "json"]
Seed = int | str | bytes | None

_CONTENT_TYPES: Final[dict[str, str]] = {
    "form": "application/x-www-form-urlencoded",
    "json": "application/json",
}

# limits on caller input: overrides are a handful in practice; PHP nests at most 64 levels (facts §7)
_MAX_OVERRIDES: Final = 1000
_MAX_PATH_DEPTH: Final = 64
_MAX_OVERRIDE_VALUE_CHARS: Final = 1 << 20


class _Delete:
    """The type of :data:`DELETE`."""

    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""Override value that deletes the key at its path."""


def _session_start_data(v: Record, shape: str) -> dict[str, Any]:
    # the three shapes of facts §3
    if shape == "source-2024":
        return {
            "DATA": {
                "connector": _connector(v),
                "chat": {"chat_id": v["chat_id"]},
                "line": {"id": v["line_id"], "name": v["line_name"]},
            }
        }
    if shape == "docs-2024":
        return {
            "DATA": [
                {
                    "connector": _connector(v),
                    "chat": {"id": v["chat_id"]},
                    "line": {"id": v["line_id"], "name": v["line_name"]},
                }
            ]
        }
    return {
        "DATA": [
            {
                "connector": _connector(v),
                "session": _session(v, v["closed"]),
                "chat": {"id": v["chat_id"]},
                "user": {"id": v["external_user_id"]},
            }
        ]
    }


def _app_install_data(v: Record, shape: str) -> dict[str, Any]:
    # facts §4, captures/ONAPPINSTALL-mesilov-issue296
    return {
        "VERSION": v["version"],
        "ACTIVE": v["active"],
        "INSTALLED": v["installed"],
        "LANGUAGE_ID": v["language_id"],
    }


def _app_uninstall_data(v: Record, shape: str) -> dict[str, Any]:
    # facts §4, captures/ONAPPUNINSTALL-mesilov-issue296 (CLEAN before LANGUAGE_ID)
    return {"CLEAN": v["clean"], "LANGUAGE_ID": v["language_id"]}


_REGISTRY: dict[str, EventSpec] = {}


def register_event(spec: EventSpec) -> None:
    """Add (or replace) the builder of an event; the name is stored upper case, as portals send it."""
    name = spec.name.upper()
    _REGISTRY[name] = dataclasses.replace(
        spec,
        name=name,
        default_shape=spec.default_shape or spec.shapes[0],
        default_auth=spec.default_auth or spec.auth_modes[0],
    )


def _register_hand_builders() -> None:
    """The builders written for their events: OnSessionStart and the install flow here, the Open Lines,
    connector and app siblings in :mod:`mock_portal.siblings`; their facts come from the event table."""
    register_event(hand_spec("ONSESSIONSTART", _session_start_data))
    register_event(hand_spec("ONAPPINSTALL", _app_install_data))
    register_event(hand_spec("ONAPPUNINSTALL", _app_uninstall_data))
    for spec in sibling_specs():
        register_event(spec)


def event_names() -> tuple[str, ...]:
    """The events that have a builder: every event of the event table (hand-written or derived)."""
    from mock_portal import eventtable

    return tuple(sorted({*_REGISTRY, *eventtable.names()}))


def event_spec(event: str) -> EventSpec:
    """The :class:`EventSpec` of ``event`` (any case); unknown names raise :class:`UnknownNameError`.

    An event without a hand-written builder gets one from its derived schema (:mod:`mock_portal.derived`),
    made on first use and kept.
    """
    name = event.strip().upper()
    spec = _REGISTRY.get(name)
    if spec is not None:
        return spec
    from mock_portal import eventtable
    from mock_portal.derived import derived_spec

    try:
        row = eventtable.entry(name)
    except UnknownNameError:
        raise UnknownNameError("event", event, event_names()) from None
    register_event(derived_spec(row))
    return _REGISTRY[name]


def _resolve(event: str, shape: str | None, auth: str | None) -> tuple[EventSpec, str, str]:
    spec = event_spec(event)
    shape = spec.default_shape if shape is None else shape
    auth = spec.default_auth if auth is None else auth
    if shape not in spec.shapes:
        raise UnknownNameError(f"shape for {spec.name}", shape, spec.shapes)
    if auth not in spec.auth_modes:
        raise UnknownNameError(f"auth mode for {spec.name}", auth, spec.auth_modes)
    return spec, shape, auth


class _Slot:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _SlotRecord(dict[str, Any]):
    """A record whose every value is a :class:`_Slot` naming its field, to lay out a template."""

    def __missing__(self, key: str) -> _Slot:
        return _Slot(key)


@dataclass(frozen=True)
class _FormTemplate:
    """The form body of one layout: literal percent-encoded keys with ``%s`` holes for the values."""

    fmt: str
    slots: tuple[str, ...]
    values: Callable[[Record], tuple[Any, ...]]

    def fill(self, rec: Record) -> str:
        # "%s" turns ints into digits; text and caller-given values are read pre-escaped from "%<name>"
        return self.fmt % self.values(rec)


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            encoded = _php_urlencode(str(key))
            _flatten(f"{prefix}%5B{encoded}%5D" if prefix else encoded, item, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(f"{prefix}%5B{index}%5D", item, out)
    else:
        out.append((prefix, value))


@cache
def _form_template(
    event: str, shape: str, auth: str, handler_id: bool, given: frozenset[str]
) -> _FormTemplate:
    spec = _REGISTRY[event]
    pairs: list[tuple[str, Any]] = []
    _flatten("", spec.assemble(_SlotRecord(), shape, auth, handler_id), pairs)
    parts: list[str] = []
    slots: list[str] = []
    for key, leaf in pairs:
        if isinstance(leaf, _Slot):
            parts.append(key.replace("%", "%%") + "=%s")
            escaped = leaf.name in given or leaf.name in _TEXT_FIELDS or leaf.name in spec.text_fields
            slots.append("%" + leaf.name if escaped else leaf.name)
        else:
            parts.append(f"{key}={_php_urlencode(_wire_scalar(leaf))}".replace("%", "%%"))
    getter = operator.itemgetter(*slots)
    values: Callable[[Record], tuple[Any, ...]] = getter if len(slots) > 1 else (lambda rec: (getter(rec),))
    return _FormTemplate("&".join(parts), tuple(slots), values)


def _extend(spec: EventSpec, rec: dict[str, Any]) -> dict[str, Any]:
    """Add the values only ``spec``'s event carries (``EventSpec.draw``), with their escaped text forms."""
    if spec.draw is not None:
        rec.update(spec.draw(rec))
        for name in spec.text_fields:
            rec["%" + name] = _escape_any(rec[name])
    return rec


def _stringify(value: Any) -> Any:
    """The wire view of a typed payload: what PHP parse_str gives back (facts §1)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            converted = _stringify(item)
            if converted is not None:
                out[str(key)] = converted
        return out or None
    if isinstance(value, list):
        items = [c for c in (_stringify(i) for i in value) if c is not None]
        return items or None
    if value is None:
        return None
    return _wire_scalar(value)


# --- overrides ----------------------------------------------------------------------------------------------

OverridesLike = Mapping[str, Any] | Sequence[str] | None


def _parse_overrides(overrides: OverridesLike) -> list[tuple[str, str, Any]]:
    """Normalise overrides into ``(original text, path, value or DELETE)``."""
    if overrides is None:
        return []
    items: list[tuple[str, str, Any]] = []
    if isinstance(overrides, Mapping):
        for path, value in overrides.items():
            items.append((f"{path}={value!r}", str(path), value))
    elif isinstance(overrides, (str, bytes)):
        raise UsageError("overrides must be a list of 'PATH=VALUE' / 'del:PATH' strings or a mapping")
    else:
        for raw in overrides:
            if not isinstance(raw, str):
                raise UsageError(f"override {raw!r} is not a string; use 'PATH=VALUE' or 'del:PATH'")
            if len(raw) > _MAX_OVERRIDE_VALUE_CHARS:
                raise UsageError(
                    f"override {raw[:40]!r}... is longer than {_MAX_OVERRIDE_VALUE_CHARS} characters"
                )
            if raw.startswith("del:"):
                items.append((raw, raw[4:], DELETE))
                continue
            path, sep, text = raw.partition("=")
            if not sep:
                raise UsageError(
                    f"override {raw!r} has no '='; write PATH=VALUE to set or del:PATH to delete"
                )
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            items.append((raw, path, parsed))
    if len(items) > _MAX_OVERRIDES:
        raise UsageError(f"too many overrides: {len(items)} (at most {_MAX_OVERRIDES})")
    return items


def _describe(value: Any, path: Sequence[str]) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if any(segment.lower() in SECRET_KEYS for segment in path) or len(repr(value)) > 60:
        return f"a {type(value).__name__}"
    return f"a {type(value).__name__} ({value!r})"


def apply_overrides(payload: dict[str, Any], overrides: OverridesLike) -> dict[str, Any]:
    """Apply overrides (see the module docstring) to ``payload`` in place and return it.

    A path that cannot be followed raises :class:`UsageError` naming the override and the path.
    """
    for _raw, path, value in _parse_overrides(overrides):
        # name the override by its path only: its value may be a secret
        raw = f"del:{path}" if value is DELETE else path
        segments = path.split(".")
        if not path or any(s == "" for s in segments):
            raise UsageError(redact_text(f"override {raw!r}: path {path!r} has an empty segment"))
        if len(segments) > _MAX_PATH_DEPTH:
            raise UsageError(f"override path {path[:60]!r}... is deeper than {_MAX_PATH_DEPTH} levels")
        container: Any = payload
        for depth, segment in enumerate(segments):
            here = ".".join(segments[: depth + 1])
            last = depth == len(segments) - 1
            if isinstance(container, dict):
                if last:
                    if value is DELETE:
                        if segment not in container:
                            raise UsageError(redact_text(f"override {raw!r}: no key at {here!r} to delete"))
                        del container[segment]
                    elif segment not in container and depth == 0 and "auth" in container:
                        # auth stays the last top-level key (facts §1)
                        auth = container.pop("auth")
                        container[segment] = value
                        container["auth"] = auth
                    else:
                        container[segment] = value
                    break
                if segment not in container:
                    if value is DELETE:
                        raise UsageError(redact_text(f"override {raw!r}: no key at {here!r}"))
                    container[segment] = {}
                container = container[segment]
            elif isinstance(container, list):
                if not segment.isdigit():
                    parent = ".".join(segments[:depth]) or "$"
                    raise UsageError(
                        redact_text(
                            f"override {raw!r}: {parent!r} is a list, so {segment!r} must be an index"
                        )
                    )
                index = int(segment)
                if index > len(container) or (index == len(container) and (value is DELETE or not last)):
                    raise UsageError(
                        redact_text(
                            f"override {raw!r}: index {index} at {here!r} is out of range "
                            f"(the list has {len(container)} items)"
                        )
                    )
                if last:
                    if value is DELETE:
                        del container[index]
                    elif index == len(container):
                        container.append(value)
                    else:
                        container[index] = value
                    break
                container = container[index]
            else:
                parent = ".".join(segments[:depth])
                raise UsageError(
                    redact_text(
                        f"override {raw!r}: {parent!r} is {_describe(container, segments[:depth])}, "
                        "not an object or list"
                    )
                )
    return payload


# --- the built event ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltEvent:
    """One built event: its typed JSON view, its wire view and its bodies.

    Treat ``payload`` as read-only: the form body is produced with the payload and kept, so editing the dict
    in place would not reach :meth:`body`. Change an event with :meth:`with_overrides` (it returns a copy).
    """

    event: str
    shape: str
    auth: str
    seed: int | str | bytes
    payload: dict[str, Any]
    _form: str | None = field(default=None, repr=False, compare=False)

    @property
    def wire_payload(self) -> dict[str, Any]:
        """The payload as the handler sees it after PHP ``parse_str``: every scalar a string, ``null`` and
        empty arrays gone (facts §1)."""
        result = _stringify(self.payload)
        return result if isinstance(result, dict) else {}

    def body(self, encoding: Encoding = "form") -> str:
        """The HTTP body: ``form`` (PHP ``http_build_query``, facts §1) or ``json`` (typed, doc-style)."""
        if encoding == "form":
            if self._form is not None:
                return self._form
            from mock_portal.wire import encode

            return str(encode(self.payload))
        if encoding == "json":
            return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":"))
        raise UnknownNameError("encoding", str(encoding), ENCODINGS)

    def with_overrides(self, overrides: OverridesLike) -> BuiltEvent:
        """A copy of this event with ``overrides`` applied (syntax in the module docstring)."""
        payload = apply_overrides(copy.deepcopy(self.payload), overrides)
        return BuiltEvent(self.event, self.shape, self.auth, self.seed, payload)

    def content_type(self, encoding: Encoding = "form") -> str:
        """The ``Content-Type`` header for :meth:`body` in ``encoding``."""
        try:
            return _CONTENT_TYPES[encoding]
        except KeyError:
            raise UnknownNameError("encoding", str(encoding), ENCODINGS) from None


def _new_seed() -> int:
    return secrets.randbits(63)


def _handler_id_given(event_handler_id: bool | int | str, ctx: EventContext) -> tuple[bool, EventContext]:
    if event_handler_id is True or event_handler_id is False:
        return bool(event_handler_id), ctx
    return True, dataclasses.replace(ctx, event_handler_id=event_handler_id)


def build_event(
    event: str = "ONSESSIONSTART",
    *,
    shape: str | None = None,
    auth: str | None = None,
    seed: Seed = None,
    context: ContextLike = None,
    overrides: OverridesLike = None,
    event_handler_id: bool | int | str = True,
    locale: str = DEFAULT_LOCALE,
) -> BuiltEvent:
    """Build one event.

    ``shape`` defaults to the event's newest (``docs-2026`` for ONSESSIONSTART), ``auth`` to its usual mode
    (``user``; ``system`` for ONAPPUNINSTALL). ``seed=None`` draws a fresh seed, kept in ``BuiltEvent.seed``
    so the event can be rebuilt. ``event_handler_id``: ``True`` sends one (the context's or a drawn one),
    ``False`` leaves the key out (as older portals do, facts §1), an int or string sends that value.
    Bad names raise :class:`UnknownNameError`, bad context values or override paths :class:`UsageError`.
    """
    spec, shape, auth = _resolve(event, shape, auth)
    with_handler, ctx = _handler_id_given(event_handler_id, _as_context(context))
    given = ctx.given()
    used_seed: int | str | bytes = _new_seed() if seed is None else seed
    if not isinstance(used_seed, (int, str, bytes)) or isinstance(used_seed, bool):
        raise UsageError(f"seed must be an int, str or bytes, not {type(used_seed).__name__}")
    rng = random.Random(used_seed)
    pools = _pools(locale)
    portal = _draw_portal(rng, pools)
    ts = _TS_BASE + rng.getrandbits(_TS_SPAN_BITS)
    rec = _Overlay.of(given).apply(_extend(spec, _draw_event(rng, pools, portal, ts, spec.refresh_token)))
    payload = spec.assemble(rec, shape, auth, with_handler)
    form: str | None = None
    if overrides:
        apply_overrides(payload, overrides)
    elif spec.templatable:
        form = _form_template(spec.name, shape, auth, with_handler, frozenset(given)).fill(rec)
    return BuiltEvent(spec.name, shape, auth, used_seed, payload, form)


class EventStream:
    """Many events of one kind from one seed, fast: ``for body in EventStream(seed=1).bodies(100_000)``.

    The stream draws ``portals`` installations up front (each with its own domain, member_id,
    application_token, event_handler_id and open lines) and spreads events over them, so a handler sees the
    same ``application_token`` again for the same ``member_id``. ``ts`` starts at a seed-derived time and
    moves forward. :meth:`bodies` and :meth:`events` restart from the seed each time and yield the same
    sequence: ``events()`` gives full :class:`BuiltEvent` objects whose form bodies equal ``bodies()``.
    """

    def __init__(
        self,
        event: str = "ONSESSIONSTART",
        *,
        shape: str | None = None,
        auth: str | None = None,
        seed: int | str | bytes = 0,
        context: ContextLike = None,
        portals: int = 8,
        event_handler_id: bool | int | str = True,
        locale: str = DEFAULT_LOCALE,
    ) -> None:
        self.spec, self.shape, self.auth = _resolve(event, shape, auth)
        if not isinstance(portals, int) or not 1 <= portals <= 100_000:
            raise UsageError(f"portals must be an integer from 1 to 100000, not {portals!r}")
        if not isinstance(seed, (int, str, bytes)) or isinstance(seed, bool):
            raise UsageError(f"seed must be an int, str or bytes, not {type(seed).__name__}")
        self.seed = seed
        self.portals = portals
        self.locale = locale
        self._with_handler, ctx = _handler_id_given(event_handler_id, _as_context(context))
        self._given = ctx.given()
        self._pools = _pools(locale)
        self._fill = self._encode
        if self.spec.templatable:
            self._fill = _form_template(
                self.spec.name, self.shape, self.auth, self._with_handler, frozenset(self._given)
            ).fill

    def _encode(self, rec: Record) -> str:
        """The form body of an event whose keys vary (no template): ``http_build_query`` of its payload."""
        from mock_portal.wire import encode

        return str(encode(self.spec.assemble(rec, self.shape, self.auth, self._with_handler)))

    def _records(self, count: int | None) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        pools, overlay = self._pools, _Overlay.of(self._given)
        portals = [_draw_portal(rng, pools) for _ in range(self.portals)]
        ts = _TS_BASE + rng.getrandbits(_TS_SPAN_BITS)
        bits, n_portals, draw, refresh = rng.getrandbits, len(portals), _draw_event, self.spec.refresh_token
        apply = overlay.apply if overlay.values else None
        extend = self.spec.draw is not None
        produced = 0
        while count is None or produced < count:
            ts += bits(2)
            rec = draw(rng, pools, portals[bits(16) % n_portals], ts, refresh)
            if extend:
                _extend(self.spec, rec)
            yield rec if apply is None else apply(rec)
            produced += 1

    def bodies(self, count: int | None = None) -> Iterator[str]:
        """Form bodies (PHP ``http_build_query`` bytes as ``str``); endless when ``count`` is ``None``."""
        fill = self._fill
        for rec in self._records(count):
            yield fill(rec)

    def events(self, count: int | None = None) -> Iterator[BuiltEvent]:
        """The same events as :meth:`bodies`, as :class:`BuiltEvent` objects (slower)."""
        fill = self._fill
        spec, shape, auth, handler = self.spec, self.shape, self.auth, self._with_handler
        for rec in self._records(count):
            yield BuiltEvent(
                spec.name, shape, auth, self.seed, spec.assemble(rec, shape, auth, handler), fill(rec)
            )

    def __iter__(self) -> Iterator[str]:
        return self.bodies()


_register_hand_builders()
