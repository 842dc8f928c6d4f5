"""The ``crm.<entity>.*`` methods for deals, leads, contacts and companies, and ``user.get`` /
``user.current``.

The CRM methods are registered from one table, the same seven units for each entity of
:data:`mock_portal.portal.crm.ENTITIES`: ``add``, ``update``, ``delete``, ``get``, ``list``, ``fields``,
``userfield.add`` and ``userfield.list`` (https://apidocs.bitrix24.com/api-reference/crm/deals/index.html and
siblings). Every list pages by 50 (``start``, ``next``, ``total``). Writes fire the entity's
``ONCRM*`` event through the portal, queued until the REST answer is out.

``list`` reads ``filter`` (``=``, ``!``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``%`` substring, ``@`` / ``!@``
in a list), ``order`` (``ASC``/``DESC`` by any field) and ``select`` (``*`` the system fields, ``UF_*`` the
userfields, or names; ``ID`` always); multiple fields (``PHONE``, ``EMAIL``...) and userfields come only when
selected, as on a real portal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mock_portal.portal.crm import ENTITIES, USERFIELD_PREFIX, Entity
from mock_portal.portal.model import PortalError
from mock_portal.rest.params import as_list, error, param
from mock_portal.rest.registry import METHODS, Caller, Handler, Method
from mock_portal.restkit import page

CRM_SCOPES = ("crm",)
_INTEGER = re.compile(r"^\s*\d+\s*$")


def _item_id(params: Mapping[str, Any]) -> int:
    raw = param(params, "id")
    if isinstance(raw, bool) or raw is None:
        raise error("", "ID is not defined or invalid.")
    if isinstance(raw, int) and raw > 0:
        return raw
    if isinstance(raw, str) and _INTEGER.match(raw) and int(raw) > 0:
        return int(raw)
    raise error("", "ID is not defined or invalid.")


def _fields(params: Mapping[str, Any], *, required: bool) -> dict[str, Any]:
    raw = param(params, "fields")
    if raw is None or raw == "" or raw == []:
        if required:
            raise error("", "The parameter 'fields' must be of type array.")
        return {}
    if not isinstance(raw, dict):
        raise error("", "The parameter 'fields' must be of type array.")
    return raw


def _mapping(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    raw = param(params, name)
    if raw in (None, "", []):
        return {}
    if not isinstance(raw, dict):
        raise error("ERROR_ARGUMENT", f"The value of an argument '{name}' must be of type array")
    return raw


# ----------------------------------------------------------------------------------------- filter, order
_OPERATORS = ("!@", "!=", ">=", "<=", "=", "!", ">", "<", "%", "@")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(have: Any, want: Any) -> bool:
    a, b = _number(have), _number(want)
    if a is not None and b is not None:
        return a == b
    return str(have if have is not None else "").lower() == str(want if want is not None else "").lower()


def _compare(have: Any, want: Any) -> int:
    a, b = _number(have), _number(want)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    left, right = str(have or ""), str(want or "")
    return (left > right) - (left < right)


def _matches(item: Mapping[str, Any], key: str, want: Any) -> bool:
    op = next((o for o in _OPERATORS if key.startswith(o)), "")
    name = key[len(op) :].strip().upper()
    have = item.get(name)
    if op in ("@", "!@"):
        wanted = as_list(want, key)
        found = any(_equal(have, w) for w in wanted)
        return found if op == "@" else not found
    if isinstance(want, (list, dict)) and op in ("", "="):
        return any(_equal(have, w) for w in as_list(want, key))
    if op in ("", "="):
        return _equal(have, want)
    if op in ("!", "!="):
        return not _equal(have, want)
    if op == "%":
        return str(want).lower() in str(have or "").lower()
    sign = _compare(have, want)
    return {">": sign > 0, ">=": sign >= 0, "<": sign < 0, "<=": sign <= 0}[op]


def select_items(
    items: list[dict[str, Any]], params: Mapping[str, Any], *, sort_key: str = "order"
) -> list[dict[str, Any]]:
    """Filter and order ``items`` as a list method's ``filter`` and ``order`` say."""
    conditions = _mapping(params, "filter")
    chosen = [
        item
        for item in items
        if all(_matches(item, str(key), want) for key, want in conditions.items() if str(key).strip())
    ]
    order = _mapping(params, sort_key)
    for key, direction in reversed(list(order.items())):
        name = str(key).upper()
        descending = str(direction).upper() == "DESC"
        chosen.sort(
            key=lambda it: (
                _number(it.get(name)) is None,
                _number(it.get(name)) or 0,
                str(it.get(name) or ""),
            ),
            reverse=descending,
        )
    return chosen


def _project(entity: Entity, item: Mapping[str, Any], select: Any) -> dict[str, Any]:
    names = [str(s).strip().upper() for s in as_list(select, "select")] if select not in (None, "") else []
    multifields = entity.multifields
    system = [n for n in entity.fields if n not in multifields]
    wanted: list[str] = []
    for name in names or ["*"]:
        if name == "*":
            wanted += system
        elif name == "UF_*":
            wanted += [n for n in item if n.startswith(USERFIELD_PREFIX)]
        else:
            wanted.append(name)
    out: dict[str, Any] = {"ID": item["ID"]}
    for name in wanted:
        if name in item:
            out[name] = item[name]
        elif name in entity.fields and name not in multifields:
            out[name] = None
    return out


# ----------------------------------------------------------------------------------------- the units
def _add(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        new_id, _ = caller.portal.crm_add(entity.name, _fields(params, required=True), user_id=caller.user_id)
        return new_id

    return handler


def _update(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        item_id = _item_id(params)
        caller.portal.crm_update(
            entity.name, item_id, _fields(params, required=False), user_id=caller.user_id
        )
        return True

    return handler


def _delete(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        caller.portal.crm_delete(entity.name, _item_id(params), user_id=caller.user_id)
        return True

    return handler


def _get(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        return caller.portal.crm_get(entity.name, _item_id(params))

    return handler


def _list(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        items = select_items(caller.portal.crm_items(entity.name), params)
        select = param(params, "select")
        return page([_project(entity, item, select) for item in items], param(params, "start"))

    return handler


def _fields_of(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        return caller.portal.crm_fields(entity.name)

    return handler


def _userfield_add(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        return caller.portal.crm_userfield_add(entity.name, _fields(params, required=True))

    return handler


def _userfield_list(entity: Entity) -> Handler:
    def handler(caller: Caller, params: dict[str, Any]) -> Any:
        rows = select_items(caller.portal.crm_userfields(entity.name), params)
        return page(rows, param(params, "start"))

    return handler


UNITS: Mapping[str, Callable[[Entity], Handler]] = {
    "add": _add,
    "update": _update,
    "delete": _delete,
    "get": _get,
    "list": _list,
    "fields": _fields_of,
    "userfield.add": _userfield_add,
    "userfield.list": _userfield_list,
}
"""The methods every CRM entity has: ``crm.<entity>.<unit>``."""

for _entity in ENTITIES.values():
    for _unit, _make in UNITS.items():
        METHODS.add(Method(f"crm.{_entity.name}.{_unit}", _make(_entity), CRM_SCOPES, False))


__all__ = ["CRM_SCOPES", "UNITS", "PortalError", "select_items"]
