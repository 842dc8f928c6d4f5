"""What every event builder stands on: the event context, the Faker pools, the drawn value records, the auth
blocks and the :class:`EventSpec` of one event.

``mock_portal.events`` (the public builders, the registry, the form encoding) and the builders of particular
events (``mock_portal.siblings``, ``mock_portal.derived``) all import from here and never from each other
upwards, so the modules form a chain: ``_eventspec`` <- ``siblings``, ``derived`` <- ``events``.

A value record (:data:`Record`) is a flat mapping of everything one event may carry (portal, tokens, ids,
texts), drawn from one seeded ``random.Random`` in a fixed order, so the same seed gives the same bytes in
every process; text values carry their PHP-escaped form under ``"%<name>"`` so form templates never escape
per event.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote_plus

from mock_portal.errors import UnknownNameError, UsageError
from mock_portal.redact import redact_text

AUTH_MODES: Final[tuple[str, ...]] = ("user", "system")
"""``auth`` block modes (facts §2)."""

# the locale whose pools are used when the caller names none; human-readable values follow it
DEFAULT_LOCALE: Final = "ru_RU"
# pools are drawn with this fixed seed so every process gets the same ones
_POOL_SEED: Final = 24_2024
_ESCAPE_CACHE_LIMIT: Final = 200_000


# --- context ------------------------------------------------------------------------------------------------

_INT_FIELDS: Final = frozenset(
    {
        "expires_in", "expires", "user_id", "event_handler_id", "ts", "line_id", "chat_id", "session_id",
        "parent_id", "close_term", "clean", "message_id", "bot_id",
    }
)  # fmt: skip


@dataclass(frozen=True)
class EventContext:
    """Values an event must carry (from the portal's state); ``None`` means "draw it from the seed".

    Integer fields accept an ``int`` or a string of digits; the others a ``str`` (``closed``, ``active`` and
    ``installed`` also a ``bool``, sent as ``Y``/``N``). ``external_user_id`` is the client's id that
    OnSessionStart carries in ``connector.user_id`` and ``user.id``; ``user_id`` is ``auth.user_id``. The
    ``bot_*`` fields and ``client_id`` fill the bot's own block of a chat-bot event (``data[BOT]``).
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
    bot_id: int | str | None = None
    bot_code: str | None = None
    bot_access_token: str | None = None
    bot_refresh_token: str | None = None
    client_id: str | None = None

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
        # every value is a str or an int (checked on creation), so no copy of it is needed (as asdict makes)
        found = ((name, getattr(self, name)) for name in _CONTEXT_FIELDS)
        return {name: value for name, value in found if value is not None}


_CONTEXT_FIELDS: Final = tuple(item.name for item in dataclasses.fields(EventContext))

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


POOLS_FILE: Final = Path(__file__).resolve().parent / "_pools.json"
"""The pools of :data:`DEFAULT_LOCALE` (and the derived builders' pools of field classes), drawn once with
Faker by ``scripts/faker_pools.py`` and shipped: building an event in that locale never imports Faker, which
costs more than the rest of a contract run's start-up (a test checks the file against Faker's draws)."""


@cache
def shipped_pools() -> dict[str, Any]:
    """The document in :data:`POOLS_FILE` (``{}`` when it is missing: every pool is then drawn)."""
    import json

    try:
        document: dict[str, Any] = json.loads(POOLS_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return document


@cache
def _pools(locale: str) -> _Pools:
    shipped = shipped_pools().get("pools", {}).get(locale)
    if shipped is not None:
        return _Pools(
            language_id=shipped["language_id"],
            **{name: tuple(shipped[name]) for name in _POOL_SIZES},
        )
    return draw_pools(locale)


_POOL_SIZES: Final = {
    "domains": 1024,
    "line_names": 256,
    "connector_ids": 256,
    "scopes": 256,
    "statuses": 64,
    "close_terms": 16,
}


def draw_pools(locale: str) -> _Pools:
    """The pools of ``locale``, drawn with Faker from the fixed seed (what :data:`POOLS_FILE` holds)."""
    from faker import Faker  # heavy: only for a locale whose pools are not shipped

    from mock_portal.fakes import B24Provider

    try:
        fake = Faker(locale)
    except AttributeError as exc:
        raise UsageError(f"unknown Faker locale {locale!r}") from exc
    fake.add_provider(B24Provider)
    fake.seed_instance(_POOL_SEED)
    return _Pools(
        language_id=fake.b24_language_id(),
        domains=tuple(fake.b24_domain() for _ in range(_POOL_SIZES["domains"])),
        line_names=tuple(fake.b24_line_name() for _ in range(_POOL_SIZES["line_names"])),
        connector_ids=tuple(fake.b24_connector_id() for _ in range(_POOL_SIZES["connector_ids"])),
        scopes=tuple(fake.b24_scope(("imopenlines",)) for _ in range(_POOL_SIZES["scopes"])),
        statuses=tuple(fake.b24_status() for _ in range(_POOL_SIZES["statuses"])),
        close_terms=tuple(fake.b24_close_term() for _ in range(_POOL_SIZES["close_terms"])),
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
    templatable: bool = True
    """False when the keys of the body vary from event to event (``data[BOT][<bot id>]``): its form body is
    then encoded per event instead of filled into a template."""
    kind: str = "standard"
    """The event's kind in the event table (``chat-bot``, ``offline``...)."""

    def assemble(self, v: Record, shape: str, auth: str, handler_id: bool) -> dict[str, Any]:
        """The typed payload for the value record ``v``, top-level keys in the wire order (facts §1)."""
        payload: dict[str, Any] = {"event": self.name}
        if handler_id:
            payload["event_handler_id"] = v["event_handler_id"]
        payload["data"] = self.data(v, shape)
        payload["ts"] = v["ts"]
        payload["auth"] = _auth_user(v, refresh=self.refresh_token) if auth == "user" else _auth_system(v)
        return payload


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


def hand_spec(
    name: str,
    data: Callable[[Record, str], Any],
    *,
    draw: Callable[[Record], Mapping[str, Any]] | None = None,
    text_fields: frozenset[str] = frozenset(),
) -> EventSpec:
    """The :class:`EventSpec` of a hand-written builder: its data block here, every other fact (shapes,
    auth modes, defaults, refresh token, kind) from the event table, the one place that states them."""
    from mock_portal import eventtable

    row = eventtable.entry(name)
    return EventSpec(
        row.name,
        row.shapes or ("docs",),  # an envelope-only event (ONAPPTEST) is still built in one shape
        row.auth_modes,
        data,
        refresh_token=row.refresh_token,
        default_shape=row.default_shape if row.shapes else "docs",
        default_auth=row.default_auth,
        draw=draw,
        text_fields=text_fields,
        kind=row.kind,
    )
