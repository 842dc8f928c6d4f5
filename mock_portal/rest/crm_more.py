"""The CRM methods beyond the seven units every entity has (:mod:`mock_portal.rest.crm`): userfields one by
one, the links between items, product rows, the item card's layout and recurring deals.

Registered from the entity table, as the units are:

- ``crm.<entity>.userfield.get|update|delete`` for every entity;
- ``crm.<entity>.details.configuration.get|set|reset|forceCommonScopeForAll`` for every entity
  (https://apidocs.bitrix24.com/api-reference/crm/deals/custom-form/);
- ``crm.deal.contact.*``, ``crm.lead.contact.*``, ``crm.contact.company.*``, ``crm.company.contact.*``:
  ``fields``, ``add``, ``delete``, ``items.get``, ``items.set``, ``items.delete``
  (https://apidocs.bitrix24.com/api-reference/crm/deals/contacts/);
- ``crm.deal.productrows.*`` and ``crm.lead.productrows.*``: ``set`` and ``get``;
- ``crm.deal.recurring.*`` (https://apidocs.bitrix24.com/api-reference/crm/deals/recurring-deals/).

The card's layout is per user (scope ``P``, the default) or common (``C``); only an administrator changes
the common one, another user's, or forces the common one on everybody (``Access denied.``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mock_portal.portal.crm import ENTITIES, Entity
from mock_portal.portal.crm_links import LINKS
from mock_portal.portal.crm_recurring import RECURRING_FIELDS
from mock_portal.rest.crm import CRM_SCOPES, _fields, _item_id, select_items
from mock_portal.rest.params import as_list, error, flag, integer, param
from mock_portal.rest.registry import METHODS, Caller, Handler, Method
from mock_portal.restkit import page

__all__ = ["EXTRA_UNITS"]

# the extras that choose another card: a deal's pipeline, a lead's customer type (0 / 1: the default card)
_CARD_EXTRAS = {"deal": ("dealCategoryId", "0"), "lead": ("leadCustomerType", "1")}


def _description(kind: str, title: str, *, required: bool = False, read_only: bool = False) -> dict[str, Any]:
    return {
        "type": kind,
        "isRequired": required,
        "isReadOnly": read_only,
        "isImmutable": False,
        "isMultiple": False,
        "isDynamic": False,
        "title": title,
    }


# ----------------------------------------------------------------------------------------- userfields
def _userfield_id(params: Mapping[str, Any]) -> int:
    raw = param(params, "id")
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit() or int(text) <= 0:
        raise error("", "ID is not defined or invalid.")
    return int(text)


def _userfield_get(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        return caller.portal.crm_userfield(entity.name, _userfield_id(params))

    return handler


def _userfield_update(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        caller.portal.crm_userfield_update(entity.name, _userfield_id(params), _fields(params, required=True))
        return True

    return handler


def _userfield_delete(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        caller.portal.crm_userfield_delete(entity.name, _userfield_id(params))
        return True

    return handler


# ----------------------------------------------------------------------------------------- the card
def _card_scope(caller: Caller, params: Mapping[str, Any]) -> tuple[str, int]:
    scope = str(param(params, "scope") or "P").strip().upper()
    if scope not in ("P", "C"):
        raise error("", f"Invalid scope {scope[:10]!r}: P (personal) or C (common)")
    raw = param(params, "userId")
    user_id = integer(raw, "userId") if raw not in (None, "") else caller.user_id
    if (scope == "C" or user_id != caller.user_id) and not caller.portal.is_admin(caller.user_id):
        raise error("", "Access denied.")
    return scope, user_id


def _card_extras(entity: Entity, params: Mapping[str, Any]) -> str:
    extras = param(params, "extras")
    known = _CARD_EXTRAS.get(entity.name)
    if not isinstance(extras, dict) or known is None:
        return ""
    value = str(extras.get(known[0], known[1]))
    return "" if value == known[1] else f"{known[0]}={value}"


def _card_get(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        scope, user_id = _card_scope(caller, params)
        return caller.portal.crm_card(entity.name, scope, user_id, _card_extras(entity, params))

    return handler


def _card_set(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        scope, user_id = _card_scope(caller, params)
        data = param(params, "data")
        sections = as_list(data, "data") if isinstance(data, (list, dict)) else None
        if not sections or not all(isinstance(s, dict) and s.get("name") for s in sections):
            raise error("", "The parameter 'data' must be an array of sections, each with a name.")
        caller.portal.crm_card_set(entity.name, scope, user_id, sections, _card_extras(entity, params))
        return True

    return handler


def _card_reset(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        scope, user_id = _card_scope(caller, params)
        caller.portal.crm_card_reset(entity.name, scope, user_id, _card_extras(entity, params))
        return True

    return handler


def _card_force_common(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        if not caller.portal.is_admin(caller.user_id):
            raise error("", "Access denied.")
        caller.portal.crm_card_force_common(entity.name, _card_extras(entity, params))
        return True

    return handler


# ----------------------------------------------------------------------------------------- links
def _target_key(entity: Entity) -> str:
    return f"{LINKS[entity.name].upper()}_ID"


def _link_fields(entity: Entity) -> Handler:
    key = _target_key(entity)
    title = "Contact" if key == "CONTACT_ID" else "Company"

    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        return {
            "SORT": _description("integer", "Sorting"),
            "IS_PRIMARY": _description("char", "Primary"),
            key: _description("integer", title, required=True),
        }

    return handler


def _link_target(entity: Entity, params: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    fields = _fields(params, required=True)
    upper = {str(k).upper(): v for k, v in fields.items()}
    key = _target_key(entity)
    raw = upper.get(key)
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit() or int(text) <= 0:
        raise error("", f"The field {key} is not defined or invalid.")
    return int(text), upper


def _link_add(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        item_id = _item_id(params)
        target, upper = _link_target(entity, params)
        sort = upper.get("SORT")
        caller.portal.crm_link_add(
            entity.name,
            item_id,
            target,
            sort=integer(sort, "SORT") if sort not in (None, "") else None,
            primary=flag(upper.get("IS_PRIMARY") or "N"),
        )
        return True

    return handler


def _link_delete(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        item_id = _item_id(params)
        target, _ = _link_target(entity, params)
        caller.portal.crm_link_remove(entity.name, item_id, target)
        return True

    return handler


def _links_get(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        return caller.portal.crm_links(entity.name, _item_id(params))

    return handler


def _links_set(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        item_id = _item_id(params)
        raw = param(params, "items")
        items = as_list(raw, "items") if raw not in (None, "") else []
        if not all(isinstance(i, dict) for i in items):
            raise error("", "The parameter 'items' must be an array of links.")
        caller.portal.crm_links_set(entity.name, item_id, items)
        return True

    return handler


def _links_delete(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        caller.portal.crm_links_clear(entity.name, _item_id(params))
        return True

    return handler


# ----------------------------------------------------------------------------------------- product rows
def _rows_set(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        item_id = _item_id(params)
        raw = param(params, "rows")
        rows = as_list(raw, "rows") if raw not in (None, "") else []
        caller.portal.crm_product_rows_set(entity.name, item_id, rows)
        return True

    return handler


def _rows_get(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        raw = param(params, "id")
        if raw in (None, "") or not str(raw).strip().isdigit():
            raise error("", "The parameter id is invalid or not defined.")
        return caller.portal.crm_product_rows(entity.name, int(str(raw).strip()))

    return handler


EXTRA_UNITS: Mapping[str, Callable[[Entity], Handler]] = {
    "userfield.get": _userfield_get,
    "userfield.update": _userfield_update,
    "userfield.delete": _userfield_delete,
    "details.configuration.get": _card_get,
    "details.configuration.set": _card_set,
    "details.configuration.reset": _card_reset,
    "details.configuration.forcecommonscopeforall": _card_force_common,
}
"""Methods every CRM entity has besides the units: ``crm.<entity>.<unit>``."""
_LINK_UNITS: Mapping[str, Callable[[Entity], Handler]] = {
    "fields": _link_fields,
    "add": _link_add,
    "delete": _link_delete,
    "items.get": _links_get,
    "items.set": _links_set,
    "items.delete": _links_delete,
}
_ROW_UNITS: Mapping[str, Callable[[Entity], Handler]] = {"set": _rows_set, "get": _rows_get}

for _entity in ENTITIES.values():
    for _unit, _make in EXTRA_UNITS.items():
        METHODS.add(Method(f"crm.{_entity.name}.{_unit}", _make(_entity), CRM_SCOPES, False))
    for _unit, _make in _LINK_UNITS.items():
        METHODS.add(
            Method(f"crm.{_entity.name}.{LINKS[_entity.name]}.{_unit}", _make(_entity), CRM_SCOPES, False)
        )
    if _entity.name in ("deal", "lead"):
        for _unit, _make in _ROW_UNITS.items():
            METHODS.add(Method(f"crm.{_entity.name}.productrows.{_unit}", _make(_entity), CRM_SCOPES, False))


# ----------------------------------------------------------------------------------------- recurring deals
def _recurring_fields(caller: Caller, params: dict[str, Any]) -> Any:
    return {
        name: _description(kind, title, read_only=read_only, required=name == "DEAL_ID")
        for name, (kind, title, read_only) in RECURRING_FIELDS.items()
    }


def _recurring_add(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.recurring_add(_fields(params, required=True), user_id=caller.user_id)


def _recurring_get(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.recurring_get(_item_id(params))


def _recurring_update(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.recurring_update(_item_id(params), _fields(params, required=True))
    return True


def _recurring_list(caller: Caller, params: dict[str, Any]) -> Any:
    rows = select_items(caller.portal.recurring_rows(), params)
    select = param(params, "select")
    if isinstance(select, (list, dict)) and select:
        names = [str(s).upper() for s in as_list(select, "select")]
        rows = [{k: v for k, v in row.items() if k in names or k == "ID"} for row in rows]
    return page(rows, param(params, "start"))


def _recurring_expose(caller: Caller, params: dict[str, Any]) -> Any:
    raw = param(params, "id")
    if raw in (None, "") or not str(raw).strip().isdigit():
        raise error("", "id is not defined or invalid.")
    return {"DEAL_ID": caller.portal.recurring_expose(int(str(raw).strip()), user_id=caller.user_id)}


def _recurring_delete(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.recurring_delete(_item_id(params), user_id=caller.user_id)
    return True


for _name, _handler in {
    "fields": _recurring_fields,
    "add": _recurring_add,
    "get": _recurring_get,
    "update": _recurring_update,
    "list": _recurring_list,
    "expose": _recurring_expose,
    "delete": _recurring_delete,
}.items():
    METHODS.add(Method(f"crm.deal.recurring.{_name}", _handler, CRM_SCOPES, False))
