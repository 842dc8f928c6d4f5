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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import AuthMode, Clock, PortalError

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt

__all__ = ["ENTITIES", "Crm", "CrmStore", "Entity", "not_found"]

USERFIELD_PREFIX = "UF_CRM_"
_UF_NAME = re.compile(r"^UF_CRM_[A-Z0-9_]{1,40}$")
_MULTIFIELDS = ("PHONE", "EMAIL", "WEB", "IM")


@dataclass(frozen=True)
class Entity:
    """One CRM entity: its name in method names (``deal``), in event names (``DEAL``), its system fields
    (name -> (type, read-only, multiple, title)) and what a new item gets when the caller leaves it out."""

    name: str
    event_name: str
    fields: Mapping[str, tuple[str, bool, bool, str]]
    defaults: Mapping[str, str]
    required: tuple[str, ...] = ()

    def event(self, change: str) -> str:
        """``ONCRMDEALADD`` for ``change`` ``ADD``."""
        return f"ONCRM{self.event_name}{change}"


def _common(
    owner: str,
) -> dict[str, tuple[str, bool, bool, str]]:
    return {
        "ID": ("integer", True, False, "ID"),
        "ASSIGNED_BY_ID": ("user", False, False, "Responsible person"),
        "CREATED_BY_ID": ("user", True, False, "Created by"),
        "MODIFY_BY_ID": ("user", True, False, "Modified by"),
        "DATE_CREATE": ("datetime", True, False, "Created on"),
        "DATE_MODIFY": ("datetime", True, False, "Modified on"),
        "OPENED": ("char", False, False, "Available to everyone"),
        "COMMENTS": ("string", False, False, "Comment"),
        "SOURCE_ID": ("crm_status", False, False, "Source"),
        "ORIGINATOR_ID": ("string", False, False, "External source"),
        "ORIGIN_ID": ("string", False, False, f"{owner} ID in the external source"),
    }


_CONTACTS = {
    "PHONE": ("crm_multifield", False, True, "Phone"),
    "EMAIL": ("crm_multifield", False, True, "E-mail"),
    "WEB": ("crm_multifield", False, True, "Website"),
    "IM": ("crm_multifield", False, True, "Messenger"),
}

ENTITIES: Mapping[str, Entity] = {
    "deal": Entity(
        "deal",
        "DEAL",
        {
            **_common("Deal"),
            "TITLE": ("string", False, False, "Name"),
            "TYPE_ID": ("crm_status", False, False, "Type"),
            "CATEGORY_ID": ("crm_category", False, False, "Pipeline"),
            "STAGE_ID": ("crm_status", False, False, "Stage"),
            "PROBABILITY": ("integer", False, False, "Probability"),
            "CURRENCY_ID": ("crm_currency", False, False, "Currency"),
            "OPPORTUNITY": ("double", False, False, "Amount"),
            "COMPANY_ID": ("crm_company", False, False, "Company"),
            "CONTACT_ID": ("crm_contact", False, False, "Contact"),
            "BEGINDATE": ("date", False, False, "Start date"),
            "CLOSEDATE": ("date", False, False, "End date"),
            "CLOSED": ("char", False, False, "Closed"),
            "LEAD_ID": ("crm_lead", True, False, "Lead"),
        },
        {
            "TITLE": "",
            "STAGE_ID": "NEW",
            "CATEGORY_ID": "0",
            "CURRENCY_ID": "USD",
            "OPPORTUNITY": "0.00",
            "CLOSED": "N",
            "OPENED": "Y",
            "TYPE_ID": "SALE",
            "PROBABILITY": "",
        },
    ),
    "lead": Entity(
        "lead",
        "LEAD",
        {
            **_common("Lead"),
            **_CONTACTS,
            "TITLE": ("string", False, False, "Lead name"),
            "NAME": ("string", False, False, "First name"),
            "SECOND_NAME": ("string", False, False, "Second name"),
            "LAST_NAME": ("string", False, False, "Last name"),
            "COMPANY_TITLE": ("string", False, False, "Company name"),
            "STATUS_ID": ("crm_status", False, False, "Stage"),
            "CURRENCY_ID": ("crm_currency", False, False, "Currency"),
            "OPPORTUNITY": ("double", False, False, "Amount"),
            "POST": ("string", False, False, "Position"),
            "COMPANY_ID": ("crm_company", False, False, "Company"),
            "CONTACT_ID": ("crm_contact", False, False, "Contact"),
        },
        {"TITLE": "", "STATUS_ID": "NEW", "CURRENCY_ID": "USD", "OPPORTUNITY": "0.00", "OPENED": "Y"},
    ),
    "contact": Entity(
        "contact",
        "CONTACT",
        {
            **_common("Contact"),
            **_CONTACTS,
            "NAME": ("string", False, False, "First name"),
            "SECOND_NAME": ("string", False, False, "Second name"),
            "LAST_NAME": ("string", False, False, "Last name"),
            "POST": ("string", False, False, "Position"),
            "TYPE_ID": ("crm_status", False, False, "Contact type"),
            "COMPANY_ID": ("crm_company", False, False, "Company"),
            "BIRTHDATE": ("date", False, False, "Date of birth"),
        },
        {"NAME": "", "TYPE_ID": "CLIENT", "OPENED": "Y"},
    ),
    "company": Entity(
        "company",
        "COMPANY",
        {
            **_common("Company"),
            **_CONTACTS,
            "TITLE": ("string", False, False, "Company name"),
            "COMPANY_TYPE": ("crm_status", False, False, "Company type"),
            "INDUSTRY": ("crm_status", False, False, "Industry"),
            "REVENUE": ("double", False, False, "Annual revenue"),
            "CURRENCY_ID": ("crm_currency", False, False, "Currency"),
            "EMPLOYEES": ("crm_status", False, False, "Employees"),
        },
        {"TITLE": "", "COMPANY_TYPE": "CUSTOMER", "CURRENCY_ID": "USD", "OPENED": "Y"},
    ),
}
"""The CRM entities the portal keeps, by the name methods use (``crm.<name>.*``)."""


def not_found() -> PortalError:
    """What the CRM methods answer for an item that does not exist (an empty ``error`` code, as the portal
    sends it)."""
    return PortalError("", "Not found", 400)


@dataclass
class _Table:
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    userfields: dict[str, dict[str, Any]] = field(default_factory=dict)


class CrmStore:
    """The items and userfields of each entity; ids count up per entity as the portal's do."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every item and userfield."""
        self.tables: dict[str, _Table] = {name: _Table() for name in ENTITIES}
        self._ids = {name: itertools.count(1) for name in ENTITIES}
        self._userfield_ids = itertools.count(1)

    def next_id(self, entity: str) -> int:
        return next(self._ids[entity])

    def next_userfield_id(self) -> int:
        return next(self._userfield_ids)


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

    def _accept(self, entity: Entity, fields: Mapping[str, Any], item: dict[str, Any]) -> None:
        multi_ids = itertools.count(len(item) * 1000 + 1)
        table = self._crm.tables[entity.name]
        for raw_name, value in fields.items():
            name = str(raw_name).strip().upper()
            if name.startswith(USERFIELD_PREFIX):
                if not _UF_NAME.match(name):
                    raise PortalError("ERROR_ARGUMENT", f"invalid userfield name {str(raw_name)[:60]!r}")
                if table.userfields.get(name, {}).get("MULTIPLE") == "Y" and not isinstance(value, list):
                    value = list(value.values()) if isinstance(value, dict) else [value]
                item[name] = [_text(v) for v in value] if isinstance(value, list) else _text(value)
                continue
            spec = entity.fields.get(name)
            if spec is None or spec[1]:
                continue  # the portal ignores unknown and read-only fields
            if name in _MULTIFIELDS:
                item[name] = _multifield(name, value, multi_ids)
            else:
                item[name] = _text(value)

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
            self._accept(entity, fields, item)
            self._crm.tables[entity.name].items[new_id] = item
            plan = self._triggers.crm_changed(entity.event("ADD"), new_id, user_id=user_id, auth=auth)
        return new_id, self._outbox.execute(plan, timeout)

    def crm_get(self, entity_name: str, item_id: int) -> dict[str, Any]:
        """A copy of the item with every field it has (userfields included), or ``Not found``."""
        entity = self._entity(entity_name)
        with self._lock:
            item = self._crm.tables[entity.name].items.get(item_id)
            if item is None:
                raise not_found()
            return _copy(item)

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
            self._accept(entity, fields, item)
            item.update(MODIFY_BY_ID=str(user_id), DATE_MODIFY=self._stamp())
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
        """Delete an item; fire ``ONCRM<ENTITY>DELETE``."""
        entity = self._entity(entity_name)
        with self._lock:
            if self._crm.tables[entity.name].items.pop(item_id, None) is None:
                raise not_found()
            plan = self._triggers.crm_changed(entity.event("DELETE"), item_id, user_id=user_id, auth=auth)
        return self._outbox.execute(plan, timeout)

    def crm_items(self, entity_name: str) -> list[dict[str, Any]]:
        """Copies of every item, oldest first."""
        entity = self._entity(entity_name)
        with self._lock:
            return [_copy(item) for item in self._crm.tables[entity.name].items.values()]

    def crm_fields(self, entity_name: str) -> dict[str, dict[str, Any]]:
        """The entity's field descriptions, declared userfields included."""
        entity = self._entity(entity_name)
        out: dict[str, dict[str, Any]] = {}
        for name, (kind, read_only, multiple, title) in entity.fields.items():
            out[name] = {
                "type": kind,
                "isRequired": name in entity.required,
                "isReadOnly": read_only,
                "isImmutable": False,
                "isMultiple": multiple,
                "isDynamic": False,
                "title": title,
            }
        with self._lock:
            for name, userfield in self._crm.tables[entity.name].userfields.items():
                out[name] = {
                    "type": userfield["USER_TYPE_ID"],
                    "isRequired": userfield["MANDATORY"] == "Y",
                    "isReadOnly": False,
                    "isImmutable": False,
                    "isMultiple": userfield["MULTIPLE"] == "Y",
                    "isDynamic": True,
                    "title": name,
                    "listLabel": userfield.get("LIST_COLUMN_LABEL") or name,
                    "formLabel": userfield.get("EDIT_FORM_LABEL") or name,
                    "filterLabel": userfield.get("LIST_FILTER_LABEL") or name,
                }
        return out

    def crm_userfield_add(self, entity_name: str, fields: Mapping[str, Any]) -> int:
        """Declare a userfield (``FIELD_NAME`` gets the ``UF_CRM_`` prefix if it lacks it); return its id."""
        entity = self._entity(entity_name)
        raw = fields.get("FIELD_NAME")
        kind = fields.get("USER_TYPE_ID")
        if not isinstance(raw, str) or not raw.strip():
            raise PortalError("ERROR_ARGUMENT", "FIELD_NAME is not defined")
        if not isinstance(kind, str) or not kind.strip():
            raise PortalError("ERROR_ARGUMENT", "USER_TYPE_ID is not defined")
        name = raw.strip().upper()
        if not name.startswith(USERFIELD_PREFIX):
            name = USERFIELD_PREFIX + name
        if not _UF_NAME.match(name):
            raise PortalError("ERROR_ARGUMENT", f"invalid FIELD_NAME {raw[:60]!r}")
        with self._lock:
            table = self._crm.tables[entity.name]
            if name in table.userfields:
                raise PortalError("ERROR_CORE", f"A field with the name {name} already exists")
            userfield_id = self._crm.next_userfield_id()
            table.userfields[name] = {
                "ID": str(userfield_id),
                "ENTITY_ID": f"CRM_{entity.event_name}",
                "FIELD_NAME": name,
                "USER_TYPE_ID": kind.strip(),
                "MULTIPLE": "Y" if str(fields.get("MULTIPLE", "N")).upper() in ("Y", "1", "TRUE") else "N",
                "MANDATORY": "Y" if str(fields.get("MANDATORY", "N")).upper() in ("Y", "1", "TRUE") else "N",
                "XML_ID": _text(fields.get("XML_ID")),
                "SORT": _text(fields.get("SORT") or 100),
                "EDIT_FORM_LABEL": _label(fields.get("EDIT_FORM_LABEL")),
                "LIST_COLUMN_LABEL": _label(fields.get("LIST_COLUMN_LABEL")),
                "LIST_FILTER_LABEL": _label(fields.get("LIST_FILTER_LABEL")),
            }
            return userfield_id

    def crm_userfields(self, entity_name: str) -> list[dict[str, Any]]:
        """The declared userfields, oldest first."""
        entity = self._entity(entity_name)
        with self._lock:
            return [dict(u) for u in self._crm.tables[entity.name].userfields.values()]


def _label(value: Any) -> str:
    if isinstance(value, dict):  # per language: {"en": "..."}
        value = value.get("en") or next(iter(value.values()), "")
    return "" if value is None else str(value)


def _copy(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: [dict(v) if isinstance(v, dict) else v for v in val] if isinstance(val, list) else val
        for k, val in item.items()
    }
