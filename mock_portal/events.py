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

Sibling events register their builders in :data:`_REGISTRY` through :func:`register_event`.
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
from urllib.parse import quote_plus

from mock_portal.errors import UnknownNameError, UsageError
from mock_portal.redact import SECRET_KEYS, redact_text

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

AUTH_MODES: Final[tuple[str, ...]] = ("user", "system")
"""``auth`` block modes (facts §2)."""

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
_ESCAPE_CACHE_LIMIT: Final = 200_000

# the locale whose pools are used when the caller names none; human-readable values follow it
DEFAULT_LOCALE: Final = "ru_RU"
# pools are drawn with this fixed seed so every process gets the same ones
_POOL_SEED: Final = 24_2024


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


# --- context ------------------------------------------------------------------------------------------------

_INT_FIELDS: Final = frozenset(
    {
        "expires_in", "expires", "user_id", "event_handler_id", "ts", "line_id", "chat_id", "session_id",
        "parent_id", "close_term", "clean", "message_id",
    }
)  # fmt: skip


@dataclass(frozen=True)
class EventContext:
    """Values an event must carry (from the portal's state); ``None`` means "draw it from the seed".

    Integer fields accept an ``int`` or a string of digits; the others a ``str`` (``closed``, ``active`` and
    ``installed`` also a ``bool``, sent as ``Y``/``N``). ``external_user_id`` is the client's id that
    OnSessionStart carries in ``connector.user_id`` and ``user.id``; ``user_id`` is ``auth.user_id``.
    """

    domain: str | None = None
    member_id: str | None = None
    application_token: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int | str | None = None
    expires: int | str | None = None
    scope: str | None = None
    status: str | None = None
    user_id: int | str | None = None
    client_endpoint: str | None = None
    server_endpoint: str | None = None
    event_handler_id: int | str | None = None
    ts: int | str | None = None
    connector_id: str | None = None
    line_id: int | str | None = None
    line_name: str | None = None
    chat_id: int | str | None = None
    session_id: int | str | None = None
    external_user_id: int | str | None = None
    parent_id: int | str | None = None
    close_term: int | str | None = None
    closed: str | bool | None = None
    language_id: str | None = None
    version: int | str | None = None
    active: str | bool | None = None
    installed: str | bool | None = None
    clean: int | str | None = None
    message_id: int | str | None = None
    message_text: str | None = None
    external_chat_id: str | None = None
    previous_version: int | str | None = None

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if isinstance(value, bool):
                if item.name in ("closed", "active", "installed"):
                    object.__setattr__(self, item.name, "Y" if value else "N")
                    continue
                raise UsageError(f"context field {item.name!r} must not be a bool")
            if item.name in _INT_FIELDS:
                if isinstance(value, int) or (isinstance(value, str) and value.isdigit() and value.isascii()):
                    continue
                raise UsageError(
                    redact_text(f"context field {item.name!r} must be an integer, not {value!r}")
                )
            if not isinstance(value, (str, int)):
                raise UsageError(f"context field {item.name!r} must be a string, not {type(value).__name__}")
            if isinstance(value, str) and len(value) > 4096:
                raise UsageError(f"context field {item.name!r} is longer than 4096 characters")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EventContext:
        """Build a context from a mapping; unknown keys raise :class:`UnknownNameError` (did you mean...)."""
        known = {item.name for item in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise UnknownNameError("context field", str(key), known)
        return cls(**dict(values))

    def given(self) -> dict[str, Any]:
        """The fields the caller set, as a dict."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


ContextLike = EventContext | Mapping[str, Any] | None


def _as_context(context: ContextLike) -> EventContext:
    if context is None:
        return EventContext()
    if isinstance(context, EventContext):
        return context
    if isinstance(context, Mapping):
        return EventContext.from_mapping(context)
    raise UsageError(f"context must be an EventContext or a mapping, not {type(context).__name__}")


# --- pools of Faker values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pools:
    """Human-readable values drawn once per locale; sizes are powers of two so picking is one getrandbits."""

    language_id: str
    domains: tuple[str, ...]  # 1024
    line_names: tuple[str, ...]  # 256
    connector_ids: tuple[str, ...]  # 256
    scopes: tuple[str, ...]  # 256, each contains imopenlines
    statuses: tuple[str, ...]  # 64, weighted as the captures are
    close_terms: tuple[int, ...]  # 16


@cache
def _pools(locale: str) -> _Pools:
    from faker import Faker  # heavy: only when the first event is built

    from mock_portal.fakes import B24Provider

    try:
        fake = Faker(locale)
    except AttributeError as exc:
        raise UsageError(f"unknown Faker locale {locale!r}") from exc
    fake.add_provider(B24Provider)
    fake.seed_instance(_POOL_SEED)
    return _Pools(
        language_id=fake.b24_language_id(),
        domains=tuple(fake.b24_domain() for _ in range(1024)),
        line_names=tuple(fake.b24_line_name() for _ in range(256)),
        connector_ids=tuple(fake.b24_connector_id() for _ in range(256)),
        scopes=tuple(fake.b24_scope(("imopenlines",)) for _ in range(256)),
        statuses=tuple(fake.b24_status() for _ in range(64)),
        close_terms=tuple(fake.b24_close_term() for _ in range(16)),
    )


_SERVER_ENDPOINTS: Final = ("https://oauth.bitrix.info/rest/", "https://oauth.bitrix24.tech/rest/")
# a plausible window of portal clocks: 2023-11 .. 2025-12
_TS_BASE: Final = 1_700_000_000
_TS_SPAN_BITS: Final = 26


# Text fields may need percent-encoding; a record carries each one's escaped form under "%<name>" (a key no
# field can have) so the form template never escapes per event.
_TEXT_FIELDS: Final = frozenset(
    {"domain", "scope", "server_endpoint", "client_endpoint", "language_id", "connector_id", "line_name"}
)


def _client_endpoint(domain: str) -> str:
    return f"https://{domain}/rest/"  # facts §2


def _draw_portal(rng: random.Random, pools: _Pools) -> dict[str, Any]:
    """Per-installation values: the same for every event one portal sends to one app."""
    bits = rng.getrandbits
    lines = []
    for _ in range(1 + bits(2) % 3):
        name, connector = pools.line_names[bits(8)], pools.connector_ids[bits(8)]
        lines.append((1 + bits(6), name, _escape_text(name), connector, _escape_text(connector)))
    portal: dict[str, Any] = {
        "domain": pools.domains[bits(10)],
        "member_id": f"{bits(128):032x}",
        "application_token": f"{bits(128):032x}",
        "scope": pools.scopes[bits(8)],
        "status": pools.statuses[bits(6)],
        "server_endpoint": _SERVER_ENDPOINTS[bits(1)],
        "event_handler_id": 1 + bits(11),
        "language_id": pools.language_id,
        "expires_in": 3600,  # facts §5: tokens live 3600 s
        "version": str(1 + bits(3)),  # a string, as on the page and in the capture
        "_lines": tuple(lines),
        "_users": tuple(1 + bits(14) for _ in range(4)),
    }
    portal["client_endpoint"] = _client_endpoint(portal["domain"])
    for name in ("domain", "scope", "server_endpoint", "client_endpoint", "language_id"):
        portal["%" + name] = _escape_text(portal[name])
    return portal


def _draw_event(
    rng: random.Random, pools: _Pools, portal: Mapping[str, Any], ts: int, refresh: bool
) -> dict[str, Any]:
    """Per-event values, drawn after the portal's."""
    bits = rng.getrandbits
    lines = portal["_lines"]
    line_id, line_name, esc_line_name, connector_id, esc_connector_id = lines[bits(4) % len(lines)]
    session_id = 1 + bits(20)
    head = f"{bits(256):064x}"
    rec = dict(portal)
    rec.update(
        {
            "ts": ts,
            "expires": ts + 3600,
            # 70 hex, the last 6 repeating the first 6, as every live token in captures/ is
            "access_token": head + head[:6],
            "user_id": portal["_users"][bits(2)],
            "connector_id": connector_id,
            "%connector_id": esc_connector_id,
            "line_id": line_id,
            "line_name": line_name,
            "%line_name": esc_line_name,
            "chat_id": 1 + bits(21),
            "session_id": session_id,
            "external_user_id": 1 + bits(17),
            # most sessions are a client's first; a returning client's points at an earlier one
            "parent_id": 0 if bits(2) else max(session_id - 1 - bits(12), 0),
            "close_term": pools.close_terms[bits(4)],
            "closed": "N",  # a session that has just started is open
            "active": "Y",
            "installed": "Y",
            "clean": bits(1),
        }
    )
    if refresh:
        head = f"{bits(256):064x}"
        rec["refresh_token"] = head + head[:6]
    return rec


@dataclass(frozen=True)
class _Overlay:
    """The caller's context, ready to lay over drawn records: values, their escaped forms, derived fields."""

    values: dict[str, Any]
    derive_expires: bool

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> _Overlay:
        values: dict[str, Any] = dict(given)
        if "domain" in given and "client_endpoint" not in given:
            values["client_endpoint"] = _client_endpoint(str(given["domain"]))
        if "ts" in given and "expires" not in given:
            values["expires"] = int(given["ts"]) + int(given.get("expires_in", 3600))
        for name in list(values):
            values["%" + name] = _escape_any(values[name])
        derive = "expires_in" in given and "ts" not in given and "expires" not in given
        return cls(values, derive)

    def apply(self, rec: dict[str, Any]) -> dict[str, Any]:
        rec.update(self.values)
        if self.derive_expires:
            rec["expires"] = int(rec["ts"]) + int(rec["expires_in"])
        return rec


# --- payload assembly ---------------------------------------------------------------------------------------

Record = Mapping[str, Any]


def _auth_user(v: Record, *, refresh: bool = False) -> dict[str, Any]:
    # key order as live portals send it (facts §2, captures/ONAPPINSTALL-*)
    auth = {
        "access_token": v["access_token"],
        "expires": v["expires"],
        "expires_in": v["expires_in"],
        "scope": v["scope"],
        "domain": v["domain"],
        "server_endpoint": v["server_endpoint"],
        "status": v["status"],
        "client_endpoint": v["client_endpoint"],
        "member_id": v["member_id"],
        "user_id": v["user_id"],
    }
    if refresh:
        auth["refresh_token"] = v["refresh_token"]
    auth["application_token"] = v["application_token"]
    return auth


def _auth_system(v: Record) -> dict[str, Any]:
    # no user, no OAuth tokens (facts §2, captures/ONAPPUNINSTALL-*)
    return {
        "domain": v["domain"],
        "client_endpoint": v["client_endpoint"],
        "server_endpoint": v["server_endpoint"],
        "member_id": v["member_id"],
        "application_token": v["application_token"],
    }


def _connector(v: Record) -> dict[str, Any]:
    return {
        "connector_id": v["connector_id"],
        "line_id": v["line_id"],
        "chat_id": v["chat_id"],
        "user_id": v["external_user_id"],
    }


def _session(v: Record, closed: Any) -> dict[str, Any]:
    return {
        "id": v["session_id"],
        "closed": closed,
        "parent_id": v["parent_id"],
        "close_term": v["close_term"],
    }


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


@dataclass(frozen=True)
class EventSpec:
    """How to build one event: its shapes, auth modes and the ``data`` block for a value record."""

    name: str
    shapes: tuple[str, ...]
    auth_modes: tuple[str, ...]
    data: Callable[[Record, str], dict[str, Any]]
    refresh_token: bool = False
    default_shape: str = ""
    default_auth: str = ""
    draw: Callable[[Record], Mapping[str, Any]] | None = None
    """Values only this event carries (message ids, texts...), derived from the drawn record so the main
    draw sequence, and every other event's bytes, stay as they are."""
    text_fields: frozenset[str] = frozenset()
    """Fields of ``draw`` that are text, escaped once per event like the shared text fields."""

    def assemble(self, v: Record, shape: str, auth: str, handler_id: bool) -> dict[str, Any]:
        """The typed payload for the value record ``v``, top-level keys in the wire order (facts §1)."""
        payload: dict[str, Any] = {"event": self.name}
        if handler_id:
            payload["event_handler_id"] = v["event_handler_id"]
        payload["data"] = self.data(v, shape)
        payload["ts"] = v["ts"]
        payload["auth"] = _auth_user(v, refresh=self.refresh_token) if auth == "user" else _auth_system(v)
        return payload


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


register_event(
    EventSpec("ONSESSIONSTART", SHAPES, AUTH_MODES, _session_start_data, default_shape="docs-2026")
)
register_event(EventSpec("ONAPPINSTALL", ("docs",), ("user",), _app_install_data, refresh_token=True))
register_event(EventSpec("ONAPPUNINSTALL", ("docs",), ("system",), _app_uninstall_data))


def event_names() -> tuple[str, ...]:
    """The events that have a builder."""
    return tuple(sorted(_REGISTRY))


def event_spec(event: str) -> EventSpec:
    """The :class:`EventSpec` of ``event`` (any case); unknown names raise :class:`UnknownNameError`."""
    spec = _REGISTRY.get(event.upper())
    if spec is None:
        raise UnknownNameError("event", event, _REGISTRY)
    return spec


def _resolve(event: str, shape: str | None, auth: str | None) -> tuple[EventSpec, str, str]:
    spec = event_spec(event)
    shape = spec.default_shape if shape is None else shape
    auth = spec.default_auth if auth is None else auth
    if shape not in spec.shapes:
        raise UnknownNameError(f"shape for {spec.name}", shape, spec.shapes)
    if auth not in spec.auth_modes:
        raise UnknownNameError(f"auth mode for {spec.name}", auth, spec.auth_modes)
    return spec, shape, auth


# --- the PHP form encoding of values ------------------------------------------------------------------------


def _php_urlencode(text: str) -> str:
    # PHP urlencode (RFC 1738): space is '+', only [A-Za-z0-9_.-] stay, '~' is escaped (facts §1)
    return quote_plus(text, safe="").replace("~", "%7E")


_ESCAPED: dict[str, str] = {}


def _escape_text(text: str) -> str:
    found = _ESCAPED.get(text)
    if found is None:
        found = _php_urlencode(text)
        if len(_ESCAPED) < _ESCAPE_CACHE_LIMIT:
            _ESCAPED[text] = found
    return found


def _wire_scalar(value: Any) -> str:
    """A typed scalar as PHP sends it: ``true`` -> ``1``, ``false`` -> ``0``, ints as digits."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    return value if isinstance(value, str) else str(value)


def _escape_any(value: Any) -> str:
    return _escape_text(_wire_scalar(value))


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
    else:
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
        self._template = _form_template(
            self.spec.name, self.shape, self.auth, self._with_handler, frozenset(self._given)
        )

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
        fill = self._template.fill
        for rec in self._records(count):
            yield fill(rec)

    def events(self, count: int | None = None) -> Iterator[BuiltEvent]:
        """The same events as :meth:`bodies`, as :class:`BuiltEvent` objects (slower)."""
        fill = self._template.fill
        spec, shape, auth, handler = self.spec, self.shape, self.auth, self._with_handler
        for rec in self._records(count):
            yield BuiltEvent(
                spec.name, shape, auth, self.seed, spec.assemble(rec, shape, auth, handler), fill(rec)
            )

    def __iter__(self) -> Iterator[str]:
        return self.bodies()


# the sibling events register their builders on import (facts §4)
from mock_portal import siblings as _siblings  # noqa: E402, F401
