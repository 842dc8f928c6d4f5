"""The portal's CRM: deals, leads, contacts and companies with their fields and userfields, and the events
each write fires.

One table, :data:`ENTITIES`, describes the four entities (their system fields, the defaults a new item gets,
the event names); :class:`CrmStore` keeps the items and the userfields; :class:`Crm` is the portal's side:
each write changes the store under the portal's lock, the triggers plan ``ONCRM<ENTITY><ADD|UPDATE|DELETE>``
to every app bound to it (payload ``data[FIELDS][ID]``, as the real captures show) and the outbox sends the
plan once the lock is released, or queues it when the write came through a REST call.

Field descriptions follow https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-fields.html (and its
lead, contact and company siblings): ``type``, ``isRequired``, ``isReadOnly``, ``isImmutable``,
``isMultiple``, ``isDynamic``, ``title``. Userfields are ``UF_CRM_*``: a value under such a name is kept and
returned whether or not the field was declared with ``crm.<entity>.userfield.add`` (declared ones also show
in ``fields``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.crm_fields import FIELDS, Field
from mock_portal.portal.crm_links import LINK_FIELDS, LINKS, CrmLinkStore
from mock_portal.portal.model import AuthMode, Clock, PortalError
from mock_portal.portal.userfields import MAX_NAME, UserfieldTable

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt

__all__ = ["ENTITIES", "Crm", "CrmStore", "Entity", "not_found"]

USERFIELD_PREFIX = "UF_CRM_"
_UF_CHARS = re.compile(r"^[A-Z0-9_]+$")


@dataclass(frozen=True)
class Entity:
    """One CRM entity: its name in method names (``deal``), in event names (``DEAL``), its ``entityTypeId``,
    its system fields (:data:`~mock_portal.portal.crm_fields.FIELDS`) and what a new item gets when the caller
    leaves a field out."""

    name: str
    event_name: str
    type_id: int
    defaults: Mapping[str, Any]

    @property
    def fields(self) -> Mapping[str, Field]:
        return FIELDS[self.name]

    @property
    def multifields(self) -> tuple[str, ...]:
        """The multiple communication fields (``PHONE``, ``EMAIL``...), returned only when selected."""
        return tuple(name for name, f in self.fields.items() if f.type == "crm_multifield")

    @property
    def userfield_entity(self) -> str:
        """The ``ENTITY_ID`` of the entity's userfields (``CRM_DEAL``)."""
        return f"CRM_{self.event_name}"

    def event(self, change: str) -> str:
        """``ONCRMDEALADD`` for ``change`` ``ADD``."""
        return f"ONCRM{self.event_name}{change}"


ENTITIES: Mapping[str, Entity] = {
    "lead": Entity(
        "lead",
        "LEAD",
        1,
        {
            "TITLE": "",
            "STATUS_ID": "NEW",
            "STATUS_SEMANTIC_ID": "P",
            "CURRENCY_ID": "USD",
            "OPPORTUNITY": "0.00",
            "IS_MANUAL_OPPORTUNITY": "N",
            "OPENED": "Y",
            "HAS_PHONE": "N",
            "HAS_EMAIL": "N",
            "HAS_IMOL": "N",
            "IS_RETURN_CUSTOMER": "N",
        },
    ),
    "deal": Entity(
        "deal",
        "DEAL",
        2,
        {
            "TITLE": "",
            "TYPE_ID": "SALE",
            "CATEGORY_ID": "0",
            "STAGE_ID": "NEW",
            "STAGE_SEMANTIC_ID": "P",
            "IS_NEW": "Y",
            "IS_RECURRING": "N",
            "IS_RETURN_CUSTOMER": "N",
            "IS_REPEATED_APPROACH": "N",
            "PROBABILITY": None,
            "CURRENCY_ID": "USD",
            "OPPORTUNITY": "0.00",
            "IS_MANUAL_OPPORTUNITY": "N",
            "TAX_VALUE": "0.00",
            "COMPANY_ID": "0",
            "CLOSED": "N",
            "OPENED": "Y",
        },
    ),
    "contact": Entity(
        "contact",
        "CONTACT",
        3,
        {
            "NAME": "",
            "TYPE_ID": "CLIENT",
            "OPENED": "Y",
            "EXPORT": "Y",
            "HAS_PHONE": "N",
            "HAS_EMAIL": "N",
            "HAS_IMOL": "N",
        },
    ),
    "company": Entity(
        "company",
        "COMPANY",
        4,
        {
            "TITLE": "",
            "COMPANY_TYPE": "CUSTOMER",
            "CURRENCY_ID": "USD",
            "REVENUE": "0.00",
            "OPENED": "Y",
            "IS_MY_COMPANY": "N",
            "HAS_PHONE": "N",
            "HAS_EMAIL": "N",
            "HAS_IMOL": "N",
        },
    ),
}
"""The CRM entities the portal keeps, by the name methods use (``crm.<name>.*``)."""

# the stage groups a stage belongs to: won, lost, or in progress (STAGE_SEMANTIC_ID, STATUS_SEMANTIC_ID)
_SUCCESS_STAGES = frozenset({"WON", "CONVERTED"})
_FAILURE_STAGES = frozenset({"LOSE", "JUNK"})


def _semantic(stage: object) -> str:
    code = str(stage or "").rsplit(":", 1)[-1].upper()
    return "S" if code in _SUCCESS_STAGES else "F" if code in _FAILURE_STAGES else "P"


def not_found() -> PortalError:
    """What the CRM methods answer for an item that does not exist (an empty ``error`` code, as the portal
    sends it)."""
    return PortalError("", "Not found", 400)


@dataclass
class _Table:
    items: dict[int, dict[str, Any]] = field(default_factory=dict)


class CrmStore:
    """The items, userfields and links of each entity; ids count up per entity as the portal's do.

    ``userfield_ids`` draws the ids of every userfield of the portal (users' included): one table, one
    counter."""

    def __init__(self, userfield_ids: Callable[[], int] | None = None) -> None:
        counter = itertools.count(1)
        self._userfield_ids = userfield_ids or (lambda: next(counter))
        self.clear()

    def clear(self) -> None:
        """Forget every item, userfield and link."""
        self.tables: dict[str, _Table] = {name: _Table() for name in ENTITIES}
        self._ids = {name: itertools.count(1) for name in ENTITIES}
        self.userfields: dict[str, UserfieldTable] = {
            name: UserfieldTable(entity.userfield_entity, USERFIELD_PREFIX, self._userfield_ids)
            for name, entity in ENTITIES.items()
        }
        self.links = CrmLinkStore()

    def next_id(self, entity: str) -> int:
        return next(self._ids[entity])


def _text(value: Any) -> Any:
    # the portal stores and answers scalars as strings (numbers included)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (int, str)):
        return str(value)
    return value


def _multifield(name: str, value: Any, ids: itertools.count[int]) -> list[dict[str, Any]]:
    rows = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    out: list[dict[str, Any]] = []
    for row in rows:
        if isinstance(row, dict):
            if str(row.get("DELETE", "")).upper() == "Y" or row.get("VALUE") in (None, ""):
                continue
            out.append(
                {
                    "ID": str(row.get("ID") or next(ids)),
                    "VALUE_TYPE": str(row.get("VALUE_TYPE") or "WORK"),
                    "VALUE": str(row["VALUE"]),
                    "TYPE_ID": name,
                }
            )
        elif row not in (None, ""):
            out.append({"ID": str(next(ids)), "VALUE_TYPE": "WORK", "VALUE": str(row), "TYPE_ID": name})
    return out


class Crm(PortalParts):
    """The CRM operations of :class:`~mock_portal.portal.Portal` (the REST methods in
    :mod:`mock_portal.rest.crm` call them)."""

    _crm: CrmStore
    clock: Clock

    def _entity(self, name: str) -> Entity:
        entity = ENTITIES.get(name)
        if entity is None:
            raise PortalError("ERROR_ARGUMENT", f"unknown CRM entity {name!r} (known: {', '.join(ENTITIES)})")
        return entity

    def _stamp(self) -> str:
        moment = datetime.fromtimestamp(self.clock.now(), tz=timezone.utc)
        return moment.isoformat(timespec="seconds")

    def _accept(
        self, entity: Entity, fields: Mapping[str, Any], item: dict[str, Any], *, adding: bool
    ) -> None:
        multi_ids = itertools.count(len(item) * 1000 + 1)
        userfields = self._crm.userfields[entity.name]
        link_fields = {name for name in LINK_FIELDS[entity.name] if name is not None}
        for raw_name, value in fields.items():
            name = str(raw_name).strip().upper()
            if name.startswith(USERFIELD_PREFIX):
                if len(name) > MAX_NAME or not _UF_CHARS.match(name):
                    raise PortalError("ERROR_ARGUMENT", f"invalid userfield name {str(raw_name)[:60]!r}")
                declared = userfields.by_name(name)
                if declared is not None and declared["MULTIPLE"] == "Y" and not isinstance(value, list):
                    value = list(value.values()) if isinstance(value, dict) else [value]
                item[name] = [_text(v) for v in value] if isinstance(value, list) else _text(value)
                continue
            if name in link_fields:
                continue  # links, kept by the link store
            spec = entity.fields.get(name)
            if spec is None or spec.read_only or ("i" in spec.flags and not adding):
                continue  # the portal ignores unknown and read-only fields, and immutable ones on update
            if spec.multiple and spec.type == "crm_multifield":
                item[name] = _multifield(name, value, multi_ids)
            elif spec.multiple:
                item[name] = [_text(v) for v in (value if isinstance(value, list) else [value])]
            else:
                item[name] = _text(value)
        for stage, semantic in (("STAGE_ID", "STAGE_SEMANTIC_ID"), ("STATUS_ID", "STATUS_SEMANTIC_ID")):
            if stage in item and semantic in entity.fields:
                item[semantic] = _semantic(item[stage])
        for multi, flag in (("PHONE", "HAS_PHONE"), ("EMAIL", "HAS_EMAIL"), ("IM", "HAS_IMOL")):
            if flag in entity.fields and multi in item:
                item[flag] = "Y" if item[multi] else "N"

    def _accept_links(self, entity: Entity, item_id: int, fields: Mapping[str, Any]) -> None:
        targets = self._crm.tables[LINKS[entity.name]].items
        self._crm.links.accept_item_links(entity.name, item_id, fields, lambda i: i in targets)

    def crm_add(
        self,
        entity_name: str,
        fields: Mapping[str, Any],
        *,
        user_id: int = 1,
        auth: AuthMode = "user",
        timeout: float | None = None,
    ) -> tuple[int, list[Attempt]]:
        """Add an item; fire ``ONCRM<ENTITY>ADD``. Returns the new id and the attempts (none when queued)."""
        entity = self._entity(entity_name)
        with self._lock:
            new_id = self._crm.next_id(entity.name)
            now = self._stamp()
            item: dict[str, Any] = {"ID": str(new_id), **entity.defaults}
            item.update(
                ASSIGNED_BY_ID=str(user_id),
                CREATED_BY_ID=str(user_id),
                MODIFY_BY_ID=str(user_id),
                DATE_CREATE=now,
                DATE_MODIFY=now,
            )
            if "MOVED_TIME" in entity.fields:
                item.update(MOVED_BY_ID=str(user_id), MOVED_TIME=now)
            self._accept(entity, fields, item, adding=True)
            self._crm.tables[entity.name].items[new_id] = item
            self._accept_links(entity, new_id, fields)
            plan = self._triggers.crm_changed(entity.event("ADD"), new_id, user_id=user_id, auth=auth)
        return new_id, self._outbox.execute(plan, timeout)

    def crm_get(self, entity_name: str, item_id: int) -> dict[str, Any]:
        """A copy of the item with every field it has (userfields and links included), or ``Not found``."""
        entity = self._entity(entity_name)
        with self._lock:
            item = self._crm.tables[entity.name].items.get(item_id)
            if item is None:
                raise not_found()
            return self._crm.links.decorate(entity.name, item_id, _copy(item))

    def crm_has(self, entity_name: str, item_id: int) -> bool:
        """Whether the item exists."""
        entity = self._entity(entity_name)
        with self._lock:
            return item_id in self._crm.tables[entity.name].items

    def crm_update(
        self,
        entity_name: str,
        item_id: int,
        fields: Mapping[str, Any],
        *,
        user_id: int = 1,
        auth: AuthMode = "user",
        timeout: float | None = None,
    ) -> list[Attempt]:
        """Change an item's fields; fire ``ONCRM<ENTITY>UPDATE``."""
        entity = self._entity(entity_name)
        with self._lock:
            item = self._crm.tables[entity.name].items.get(item_id)
            if item is None:
                raise not_found()
            before = item.get("STAGE_ID", item.get("STATUS_ID"))
            self._accept(entity, fields, item, adding=False)
            now = self._stamp()
            item.update(MODIFY_BY_ID=str(user_id), DATE_MODIFY=now)
            if "MOVED_TIME" in entity.fields and item.get("STAGE_ID", item.get("STATUS_ID")) != before:
                item.update(MOVED_BY_ID=str(user_id), MOVED_TIME=now)
            self._accept_links(entity, item_id, fields)
            plan = self._triggers.crm_changed(entity.event("UPDATE"), item_id, user_id=user_id, auth=auth)
        return self._outbox.execute(plan, timeout)

    def crm_delete(
        self,
        entity_name: str,
        item_id: int,
        *,
        user_id: int = 1,
        auth: AuthMode = "user",
        timeout: float | None = None,
    ) -> list[Attempt]:
        """Delete an item (and its links); fire ``ONCRM<ENTITY>DELETE``."""
        entity = self._entity(entity_name)
        with self._lock:
            if self._crm.tables[entity.name].items.pop(item_id, None) is None:
                raise not_found()
            self._crm.links.forget_item(entity.name, item_id)
            plan = self._triggers.crm_changed(entity.event("DELETE"), item_id, user_id=user_id, auth=auth)
        return self._outbox.execute(plan, timeout)

    def crm_items(self, entity_name: str) -> list[dict[str, Any]]:
        """Copies of every item, oldest first."""
        entity = self._entity(entity_name)
        with self._lock:
            links = self._crm.links
            return [
                links.decorate(entity.name, item_id, _copy(item))
                for item_id, item in self._crm.tables[entity.name].items.items()
            ]

    def crm_fields(self, entity_name: str) -> dict[str, dict[str, Any]]:
        """The entity's field descriptions, declared userfields included."""
        entity = self._entity(entity_name)
        out = {name: spec.describe() for name, spec in entity.fields.items()}
        with self._lock:
            for userfield in self._crm.userfields[entity.name].rows():
                name = userfield["FIELD_NAME"]
                out[name] = {
                    "type": userfield["USER_TYPE_ID"],
                    "isRequired": userfield["MANDATORY"] == "Y",
                    "isReadOnly": False,
                    "isImmutable": False,
                    "isMultiple": userfield["MULTIPLE"] == "Y",
                    "isDynamic": True,
                    "title": name,
                    "listLabel": _label(userfield.get("LIST_COLUMN_LABEL")) or name,
                    "formLabel": _label(userfield.get("EDIT_FORM_LABEL")) or name,
                    "filterLabel": _label(userfield.get("LIST_FILTER_LABEL")) or name,
                }
        return out

    # ----------------------------------------------------------------- userfields
    def crm_userfield_add(self, entity_name: str, fields: Mapping[str, Any]) -> int:
        """Declare a userfield (``FIELD_NAME`` gets the ``UF_CRM_`` prefix, ``UF_`` becomes ``UF_CRM_``);
        return its id."""
        entity = self._entity(entity_name)
        with self._lock:
            return self._crm.userfields[entity.name].add(fields)

    def crm_userfield(self, entity_name: str, userfield_id: int) -> dict[str, Any]:
        """The userfield with ``userfield_id``, or ``ERROR_NOT_FOUND``."""
        entity = self._entity(entity_name)
        with self._lock:
            return self._crm.userfields[entity.name].get(userfield_id)

    def crm_userfield_update(self, entity_name: str, userfield_id: int, fields: Mapping[str, Any]) -> None:
        """Change a userfield (its code and type stay)."""
        entity = self._entity(entity_name)
        with self._lock:
            self._crm.userfields[entity.name].update(userfield_id, fields)

    def crm_userfield_delete(self, entity_name: str, userfield_id: int) -> None:
        """Remove a userfield and its values from every item."""
        entity = self._entity(entity_name)
        with self._lock:
            row = self._crm.userfields[entity.name].delete(userfield_id)
            for item in self._crm.tables[entity.name].items.values():
                item.pop(row["FIELD_NAME"], None)

    def crm_userfields(self, entity_name: str) -> list[dict[str, Any]]:
        """The declared userfields, oldest first."""
        entity = self._entity(entity_name)
        with self._lock:
            return self._crm.userfields[entity.name].rows()


def _label(value: Any) -> str:
    if isinstance(value, dict):  # per language: {"en": "..."}
        value = value.get("en") or next((v for v in value.values() if v), "")
    return "" if value is None else str(value)


def _copy(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: [dict(v) if isinstance(v, dict) else v for v in val] if isinstance(val, list) else val
        for k, val in item.items()
    }
