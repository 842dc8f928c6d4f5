"""Builders for every event the docs describe, driven by its derived schema.

An event without a hand-written builder gets one from its row in the event table and its tolerant schema
(``schemas/<event>/docs.json``): the schema's ``data`` is walked once into a skeleton of every documented key
(list items once, ``anyOf`` by its first non-null branch, the docs' constants and enums as written), and each
leaf gets a realistic value by its name and type (:func:`mock_portal._fieldclass.field_class`: ``EMAIL`` an
address, ``*_DATE`` a date-time, ``CALL_ID`` a call id, ``char`` ``Y``/``N``...). Fields that name what the
portal's state knows (``USER_ID``, ``CHAT_ID``, ``DIALOG_ID``, ``LINE_ID``, ``LANGUAGE_ID``...) take the value
of the event's record, so a derived event is as coherent with the portal as a hand-built one.

Events that differ in kind get their own handling (the event table's ``kind``):

- ``chat-bot``: ``data[BOT][<bot id>]`` carries the bot's own OAuth block, repeated under ``AUTH``, with
  ``BOT_ID`` and ``BOT_CODE`` (the chat-bot pages, captures ``ONIMBOT*``); the bot's ids and tokens come from
  the context (``bot_id``, ``bot_code``, ``bot_access_token``, ``bot_refresh_token``, ``client_id``) or the
  seed. Facts §2: these nested tokens are not the top-level ``auth``.
- ``offline``: ``data`` arrives empty, so it vanishes from the form body (facts §1); the auth block carries
  ``refresh_token`` (on-offline-event.md).

Values are drawn from a generator seeded by the event's record, never from the clock, so the same seed gives
the same bytes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from mock_portal._eventspec import DEFAULT_LOCALE, EventSpec, Record, shipped_pools

__all__ = ["derived_spec", "skeleton"]

_MAX_DEPTH: Final = 12
_POOL_SIZE_BITS: Final = 6  # 64 values per class and locale
_POOL_SEED: Final = 24_2026
_WIRE_FILE: Final = "wire.json#/$defs/"
_TEXT_KINDS: Final = frozenset({"string", "non-empty-string", "text", "char"})
_STRUCTURE: Final = ("properties", "items", "anyOf", "const", "enum", "additionalProperties")
_NUMERIC_CLASSES: Final = frozenset(
    {
        "id",
        "integer",
        "double",
        "money",
        "boolean",
        "yes-no",
        "timestamp",
        "list",
        "call-id",
        "entity-type-id",
    }
)

# field names that say which value of the record (the portal's state) they carry
_FROM_RECORD: Final[dict[str, str]] = {
    "USER_ID": "user_id",
    "AUTHOR_ID": "user_id",
    "FROM_USER_ID": "user_id",
    "ASSIGNED_BY_ID": "user_id",
    "CREATED_BY_ID": "user_id",
    "MODIFY_BY_ID": "user_id",
    "RESPONSIBLE_ID": "user_id",
    "CHAT_ID": "chat_id",
    "TO_CHAT_ID": "chat_id",
    "LINE_ID": "line_id",
    "LINE": "line_id",
    "CONNECTOR": "connector_id",
    "CONNECTOR_ID": "connector_id",
    "SESSION_ID": "session_id",
    "LANGUAGE_ID": "language_id",
    "LANGUAGE": "language_id",
    "DOMAIN": "domain",
    "MEMBER_ID": "member_id",
    "BOT_ID": "bot_id",
    "BOT_CODE": "bot_code",
}
_BOT_VALUES: Final = frozenset({"bot_id", "bot_code"})


@dataclass(frozen=True)
class Leaf:
    """One value of the skeleton: its record key, its class, and the docs' constant or choices if any."""

    key: str
    name: str
    cls: str
    choices: tuple[Any, ...] = ()
    text: bool = False
    """The docs type it as a string: a number drawn for it (an id by its name) is sent as its digits."""


Skeleton = Any  # a dict of skeletons, a one-item list, a Leaf or a Keyed


@dataclass
class _Walk:
    event: str
    leaves: list[Leaf] = field(default_factory=list)
    bots: bool = False

    def leaf(self, name: str, cls: str, choices: tuple[Any, ...] = (), *, text: bool = False) -> Leaf:
        made = Leaf(f"g{len(self.leaves)}:{self.event}", name, cls, choices, text)
        self.leaves.append(made)
        return made


def _wire_kind(ref: str) -> str | None:
    """The wire scalar a ``$ref`` names (``integer``, ``yes-no``...), or None for another schema."""
    if _WIRE_FILE in ref:
        return ref.rsplit("/", 1)[1]
    return None


def _resolve(node: Mapping[str, Any], resolver: Any) -> tuple[Mapping[str, Any], Any, str | None]:
    """``node`` with its ``$ref`` chain followed, the resolver of where it ended, and the wire kind if the
    chain ends at a wire scalar. A node with a structure of its own (an event's root over the envelope)
    keeps it: its children resolve against its own schema."""
    merged: dict[str, Any] = dict(node)
    for _ in range(16):
        ref = merged.get("$ref")
        if not isinstance(ref, str) or any(k in merged for k in _STRUCTURE):
            break
        del merged["$ref"]
        kind = _wire_kind(ref)
        if kind is not None:
            return merged, resolver, kind
        resolved = resolver.lookup(ref)
        resolver = resolved.resolver
        merged = {**resolved.contents, **merged}  # the node's own keys are annotations here
    return merged, resolver, None


_LISTED = re.compile(r"`(?P<value>[^`\s]{1,40})`\s*(?:\([^)]*\)\s*)?[—–-]")


def _listed_values(description: Any) -> tuple[str, ...]:
    """The values a description lists with their meaning (```Y` — yes``, ``- `0` - not mobile``)."""
    if not isinstance(description, str):
        return ()
    return tuple(dict.fromkeys(found["value"] for found in _LISTED.finditer(description)))


def _walk(walk: _Walk, node: Any, resolver: Any, name: str, depth: int) -> Skeleton | None:
    from mock_portal._fieldclass import field_class

    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return walk.leaf(name, "string")
    node, resolver, wire = _resolve(node, resolver)
    if "const" in node:
        return walk.leaf(name, "const", (node["const"],))
    if isinstance(node.get("enum"), list) and node["enum"]:
        return walk.leaf(name, "const", tuple(node["enum"]))
    if isinstance(node.get("anyOf"), list):
        branches = [b for b in node["anyOf"] if isinstance(b, Mapping) and b.get("type") != "null"]
        structured = [b for b in branches if "properties" in b or "items" in b or "$ref" in b]
        choice = (structured or branches or [{}])[0]
        return _walk(
            walk, {**{k: v for k, v in node.items() if k != "anyOf"}, **choice}, resolver, name, depth
        )
    kind = wire or str(node.get("x-b24-doc-type", "") or "")
    types = node.get("type")
    if "properties" in node or types == "object":
        return _object(walk, node, resolver, depth)
    if types == "array" or (isinstance(types, list) and "array" in types):
        items = node.get("items")
        if isinstance(items, Mapping) and items:
            inner = _walk(walk, items, resolver, name, depth + 1)
            return [inner if inner is not None else walk.leaf(name, "id")]
        return [walk.leaf(name, "id")]  # the docs' bare "array": a list of ids is the usual one
    if wire == "event-name":
        return walk.leaf(name, "const", (walk.event,))
    cls = field_class(name, kind.split(" | ")[0] if kind else "string")
    upper = name.upper()
    listed = _listed_values(node.get("description"))
    if len(listed) > 1 and cls in ("string", "word", "yes-no", "integer", "stage", "code"):
        return walk.leaf(name, "const", listed)  # "Possible values: - `Y` — yes - `N` — no"
    if upper in _FROM_RECORD and cls in ("id", "integer", "string", "language", "code"):
        walk.bots = walk.bots or _FROM_RECORD[upper] in _BOT_VALUES
        return Leaf(_FROM_RECORD[upper], name, "record")  # the record's own value, the context's if given
    if upper == "DIALOG_ID":
        return Leaf("chat_id", name, "dialog")  # "chat<id>" of the record's chat
    return walk.leaf(name, cls, text=(wire or kind.split(" | ")[0]) in _TEXT_KINDS)


_BOT_AUTH_KEYS: Final = frozenset(
    {
        "access_token", "expires", "expires_in", "scope", "domain", "server_endpoint", "status",
        "client_endpoint", "member_id", "refresh_token", "user_id", "client_id", "application_token", "AUTH",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Keyed:
    """An object whose one key is a value (``data[BOT][<bot id>]``, ``data[COMMAND][<command id>]``).

    ``bot`` marks an item that carries a bot's OAuth block (its ``access_token``...): those keys come from
    the record's bot, the rest from the item's skeleton.
    """

    key: Leaf
    item: Skeleton
    bot: bool


def _object(walk: _Walk, node: Mapping[str, Any], resolver: Any, depth: int) -> dict[str, Any] | Keyed:
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and not node.get("properties"):
        return _keyed(walk, extra, resolver, depth)
    out: dict[str, Any] = {}
    required = set(node.get("required", ()))
    for key, child in node.get("properties", {}).items():
        built = _walk(walk, child, resolver, key, depth + 1)
        if built == {} and key in required:
            built = {"ID": walk.leaf("ID", "id")}  # an open object the page requires: keep it on the wire
        if built is not None:
            out[key] = built
    return out


def _keyed(walk: _Walk, item: Mapping[str, Any], resolver: Any, depth: int) -> Keyed:
    placeholder = str(item.get("x-b24-key", "ID"))
    resolved, item_resolver, _ = _resolve(item, resolver)
    properties = resolved.get("properties", {})
    bot = "access_token" in properties
    if bot:
        walk.bots = True
        resolved = {
            **resolved,
            "properties": {k: v for k, v in properties.items() if k not in _BOT_AUTH_KEYS},
        }
    key = Leaf("bot_id", placeholder, "record") if placeholder == "BOT_ID" else walk.leaf(placeholder, "id")
    if key.key == "bot_id":
        walk.bots = True
    inner = _walk(walk, resolved, item_resolver, placeholder, depth + 1)
    return Keyed(key, inner if inner is not None else {}, bot)


@dataclass(frozen=True)
class Shape:
    """An event's data skeleton and its leaves, in the order they are drawn."""

    data: Skeleton | None
    leaves: tuple[Leaf, ...]
    bots: bool = False
    """It carries a bot (its id or its OAuth block): the record gets the bot's values."""
    keyed: bool = False
    """Some of its keys are values: its form body cannot be a template."""


@cache
def skeleton(event: str) -> Shape:
    """The ``data`` skeleton of ``event``'s tolerant schema (``docs`` shape), with the ``BOT`` block of a
    chat-bot event left out (built from the record instead)."""
    from mock_portal import schemas

    uri = schemas.schema_uri(event, "docs")
    registry = schemas.registry()
    resolver = registry.resolver(uri)
    root, resolver, _ = _resolve(registry.contents(uri), resolver)
    walk = _Walk(event)
    data_node = root.get("properties", {}).get("data")
    if data_node is None:
        return Shape(None, ())
    data = _walk(walk, data_node, resolver, "data", 0)
    return Shape(data, tuple(walk.leaves), walk.bots, _has_keyed(data))


def _has_keyed(node: Skeleton) -> bool:
    if isinstance(node, Keyed):
        return True
    if isinstance(node, dict):
        return any(_has_keyed(child) for child in node.values())
    if isinstance(node, list):
        return any(_has_keyed(child) for child in node)
    return False


# ---------------------------------------------------------------------------------------------- values


@cache
def _class_pool(locale: str, cls: str) -> tuple[Any, ...]:
    shipped = shipped_pools().get("classes", {}).get(locale, {}).get(cls)
    if shipped is not None:
        return tuple(shipped)
    return draw_class_pool(locale, cls)


def draw_class_pool(locale: str, cls: str) -> tuple[Any, ...]:
    """The 64 values of field class ``cls`` in ``locale``, drawn with Faker from the fixed seed (shipped for
    the default locale in :data:`~mock_portal._eventspec.POOLS_FILE`)."""
    from faker import Faker

    from mock_portal.fakes import B24FieldProvider

    fake = Faker(locale)
    fake.add_provider(B24FieldProvider)
    fake.seed_instance(_POOL_SEED)
    return tuple(fake.b24_field_of_class(cls) for _ in range(1 << _POOL_SIZE_BITS))


def _value(leaf: Leaf, rng: random.Random, rec: Record, locale: str) -> Any:
    if leaf.cls == "const":
        return leaf.choices[rng.randrange(len(leaf.choices))] if len(leaf.choices) > 1 else leaf.choices[0]
    bits = rng.getrandbits
    if leaf.cls == "id":
        return 1 + bits(17)
    if leaf.cls == "integer":
        return bits(10)
    if leaf.cls in ("double", "money"):
        return f"{(1 + bits(20)) / 100:.2f}"
    if leaf.cls == "boolean":
        return bool(bits(1))
    if leaf.cls == "yes-no":
        return "Y" if bits(1) else "N"
    if leaf.cls == "timestamp":
        return int(rec["ts"]) - bits(16)
    if leaf.cls == "list":
        return [1 + bits(10)]
    if leaf.cls == "call-id":
        return f"externalCall.{bits(128):032x}.{rec['ts']}"
    if leaf.cls == "entity-type-id":
        return (1, 2, 3, 4, 7, 31)[bits(8) % 6]
    pool = _class_pool(locale, leaf.cls)
    return pool[bits(_POOL_SIZE_BITS)]


def _fill(node: Skeleton | None, v: Record) -> Any:
    if isinstance(node, Leaf):
        return f"chat{v[node.key]}" if node.cls == "dialog" else v[node.key]
    if isinstance(node, Keyed):
        item = _fill(node.item, v)
        if node.bot:
            item = {**_bot_auth(v), **(item if isinstance(item, dict) else {})}
        return {v[node.key.key]: item}
    if isinstance(node, list):
        return [_fill(item, v) for item in node]
    if isinstance(node, dict):
        return {key: _fill(child, v) for key, child in node.items()}
    return None


# ---------------------------------------------------------------------------------------------- chat bots


def _bot_values(rec: Record, rng: random.Random) -> dict[str, Any]:
    head = f"{rng.getrandbits(256):064x}"
    refresh = f"{rng.getrandbits(256):064x}"
    return {
        "bot_id": 1 + rng.getrandbits(14),
        "bot_code": f"bot_{rng.getrandbits(24):06x}",
        # 70 hex, the last 6 repeating the first 6, as the bot tokens in captures/ONIMBOT* are
        "bot_access_token": head + head[:6],
        "bot_refresh_token": refresh + refresh[:6],
        "client_id": f"app.{rng.getrandbits(56):014x}.{rng.randrange(10**7, 10**8)}",
    }


def _bot_auth(v: Record) -> dict[str, Any]:
    # key order of captures/ONIMBOTMESSAGEADD-* and the chat-bot pages: the bot's OAuth block, then AUTH
    bot = {
        "access_token": v["bot_access_token"],
        "expires": v["expires"],
        "expires_in": v["expires_in"],
        "scope": v["scope"],
        "domain": v["domain"],
        "server_endpoint": v["server_endpoint"],
        "status": v["status"],
        "client_endpoint": v["client_endpoint"],
        "member_id": v["member_id"],
        "refresh_token": v["bot_refresh_token"],
        "user_id": v["bot_id"],  # the bot is a user of its own
        "client_id": v["client_id"],
        "application_token": v["application_token"],
    }
    return {**bot, "AUTH": dict(bot)}


# ---------------------------------------------------------------------------------------------- the spec


def derived_spec(entry: Any, *, locale: str = DEFAULT_LOCALE) -> EventSpec:
    """The :class:`EventSpec` of an event-table entry (:class:`mock_portal.eventtable.EventEntry`)."""
    name: str = entry.name
    kind: str = entry.kind
    shape = skeleton(name) if entry.shapes else Shape(None, ())
    leaves = shape.leaves
    drawn = tuple(leaf for leaf in leaves if leaf.cls not in ("record", "dialog"))
    computed = any(leaf.cls == "dialog" for leaf in leaves)
    bots = shape.bots or any(leaf.key == "bot_id" for leaf in leaves)

    def draw(rec: Record) -> Mapping[str, Any]:
        rng = random.Random(f"{name}:{rec['ts']}:{rec['session_id']}:{rec['chat_id']}")
        values: dict[str, Any] = _bot_values(rec, rng) if bots else {}
        merged = {**rec, **values}
        for leaf in drawn:
            value = _value(leaf, rng, merged, locale)
            values[leaf.key] = str(value) if leaf.text and isinstance(value, (int, float)) else value
        return values

    def data(v: Record, shape_name: str) -> Any:
        if kind == "offline":
            return []  # arrives empty: vanishes from the form body (facts §1)
        body = _fill(shape.data, v)
        return body if body is not None else []

    text = frozenset(leaf.key for leaf in drawn)
    if bots:
        text |= {"bot_code", "client_id"}
    return EventSpec(
        name,
        entry.shapes or ("docs",),
        entry.auth_modes,
        data,
        refresh_token=entry.refresh_token,
        default_shape=entry.default_shape if entry.shapes else "docs",
        default_auth=entry.default_auth,
        draw=draw,
        text_fields=text,
        # a bot's id is a key of data[BOT]; "chat<id>" is made from the record: neither fits a template slot
        templatable=not shape.keyed and not computed,
        kind=kind,
    )
