"""Userfields: the custom fields a portal's users and CRM entities get through ``*.userfield.add``.

One :class:`UserfieldTable` per entity (``USER``, ``CRM_DEAL``...), all drawing their ids from one counter, as
the portal's single table of userfields does. A field's code gets the entity's prefix the way the docs say:
``DEALS`` and ``UF_DEALS`` become ``UF_CRM_DEALS`` (``UF_USR_DEALS`` for users), a code that has the prefix
stays; the full name is at most 50 characters of ``A-Z``, ``0-9`` and ``_``
(https://apidocs.bitrix24.com/api-reference/crm/deals/user-defined-fields/crm-deal-userfield-add.html,
https://apidocs.bitrix24.com/api-reference/user/userfields/user-userfield-add.html).

A row is what ``*.userfield.get`` and ``*.userfield.list`` answer: flags as ``Y``/``N``, ``SORT`` as a
string, ``XML_ID`` null until set, ``SETTINGS`` with the type's defaults and its numbers as numbers (the
portal prepares the settings of each type: a ``string`` field's ``ROWS`` sent as ``"3"`` is stored as ``3``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mock_portal.portal.model import PortalError

__all__ = ["UserfieldTable", "userfield_not_found"]

_NAME_CHARS = re.compile(r"^[A-Z0-9_]+$")
MAX_NAME = 50
FLAGS = ("MULTIPLE", "MANDATORY", "SHOW_FILTER", "SHOW_IN_LIST", "EDIT_IN_LIST", "IS_SEARCHABLE")
_FLAG_DEFAULTS = {
    "MULTIPLE": "N",
    "MANDATORY": "N",
    "SHOW_FILTER": "N",
    "SHOW_IN_LIST": "Y",
    "EDIT_IN_LIST": "Y",
    "IS_SEARCHABLE": "N",
}
LABELS = ("EDIT_FORM_LABEL", "LIST_COLUMN_LABEL", "LIST_FILTER_LABEL", "ERROR_MESSAGE", "HELP_MESSAGE")
# the settings each type keeps, with their defaults; numbers are kept as numbers
_SETTINGS: Mapping[str, Mapping[str, Any]] = {
    "string": {"SIZE": 20, "ROWS": 1, "REGEXP": "", "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": ""},
    "integer": {"SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "double": {"PRECISION": 2, "SIZE": 20, "MIN_VALUE": 0.0, "MAX_VALUE": 0.0, "DEFAULT_VALUE": None},
    "boolean": {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": ""},
    "url": {"POPUP": "Y", "SIZE": 20, "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": "", "ROWS": 1},
}
USER_TYPES = frozenset(
    {
        "string",
        "integer",
        "double",
        "date",
        "datetime",
        "boolean",
        "file",
        "enumeration",
        "url",
        "address",
        "money",
        "iblock_section",
        "iblock_element",
        "employee",
        "crm",
        "crm_status",
        "resourcebooking",
    }
)
"""The types ``USER_TYPE_ID`` takes (the docs' list); any other is ``Incorrect custom type specified``."""


def userfield_not_found(userfield_id: object) -> PortalError:
    """What the userfield methods answer for an id that is no field of the entity."""
    return PortalError("ERROR_NOT_FOUND", f"The entity with ID '{str(userfield_id)[:40]}' is not found.", 400)


def _flag(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    text = str(value).strip().upper()
    return "Y" if text in ("Y", "1", "TRUE") else "E" if text == "E" else "N"


def _as_number(value: Any, like: Any) -> Any:
    if isinstance(like, bool) or not isinstance(like, (int, float)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(like)(value)
    try:
        return type(like)(str(value).strip())
    except ValueError:
        return like


def _settings(kind: str, given: Any, current: Mapping[str, Any] | None) -> dict[str, Any]:
    base = dict(current) if current is not None else dict(_SETTINGS.get(kind, {}))
    if isinstance(given, Mapping):
        defaults = _SETTINGS.get(kind, {})
        for key, value in given.items():
            name = str(key).upper()
            like = defaults.get(name)
            base[name] = _as_number(value, like) if like is not None else value
    return base


def _label(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    return "" if value is None else str(value)


class UserfieldTable:
    """The userfields of one entity: ``entity_id`` (``USER``, ``CRM_DEAL``) and the code ``prefix``."""

    def __init__(self, entity_id: str, prefix: str, next_id: Callable[[], int]) -> None:
        self.entity_id = entity_id
        self.prefix = prefix
        self._next_id = next_id
        self._rows: dict[int, dict[str, Any]] = {}

    def clear(self) -> None:
        self._rows.clear()

    def full_name(self, raw: object) -> str:
        """The code a field named ``raw`` gets (prefix added, ``UF_`` replaced), or ``ERROR_CORE``."""
        if not isinstance(raw, str) or not raw.strip():
            raise PortalError("", "The 'FIELD_NAME' field is not found.")
        name = raw.strip().upper()
        if not name.startswith(self.prefix):
            name = self.prefix + (name[3:] if name.startswith("UF_") else name)
        if len(name) > MAX_NAME:
            raise PortalError("ERROR_CORE", f"Field name is too long (more than {MAX_NAME} characters).")
        if not _NAME_CHARS.match(name):
            raise PortalError(
                "ERROR_CORE",
                "Field name contains invalid characters. Allowed characters are: A-Z, 0-9 and _.",
            )
        return name

    def add(self, fields: Mapping[str, Any]) -> int:
        """Declare a field; return its id."""
        upper = {str(k).upper(): v for k, v in fields.items()}
        name = self.full_name(upper.get("FIELD_NAME"))
        kind = upper.get("USER_TYPE_ID")
        if not isinstance(kind, str) or not kind.strip():
            raise PortalError("", "The 'USER_TYPE_ID' field is not found.")
        kind = kind.strip()
        if kind not in USER_TYPES:
            raise PortalError("ERROR_CORE", "Incorrect custom type specified.")
        if self.by_name(name) is not None:
            raise PortalError("ERROR_CORE", f"A field with the name {name} already exists.")
        new_id = self._next_id()
        row: dict[str, Any] = {
            "ID": str(new_id),
            "ENTITY_ID": self.entity_id,
            "FIELD_NAME": name,
            "USER_TYPE_ID": kind,
            "XML_ID": None,
            "SORT": "100",
            **_FLAG_DEFAULTS,
            "SETTINGS": _settings(kind, None, None),
        }
        self._apply(row, upper)
        self._rows[new_id] = row
        return new_id

    def update(self, userfield_id: int, fields: Mapping[str, Any]) -> None:
        """Change a field (its code, type and entity stay)."""
        row = self._rows.get(userfield_id)
        if row is None:
            raise userfield_not_found(userfield_id)
        upper = {str(k).upper(): v for k, v in fields.items()}
        for fixed in ("FIELD_NAME", "USER_TYPE_ID", "ENTITY_ID", "ID"):
            upper.pop(fixed, None)
        self._apply(row, upper)

    def _apply(self, row: dict[str, Any], upper: Mapping[str, Any]) -> None:
        if "XML_ID" in upper:
            row["XML_ID"] = None if upper["XML_ID"] is None else str(upper["XML_ID"])
        if "SORT" in upper and upper["SORT"] not in (None, ""):
            row["SORT"] = str(upper["SORT"])
        for flag in FLAGS:
            if flag in upper:
                row[flag] = _flag(upper[flag])
        if "SETTINGS" in upper:
            row["SETTINGS"] = _settings(row["USER_TYPE_ID"], upper["SETTINGS"], row["SETTINGS"])
        for label in LABELS:
            if label in upper:
                row[label] = _label(upper[label])
        if row["USER_TYPE_ID"] == "enumeration" and "LIST" in upper:
            items = upper["LIST"]
            values = list(items.values()) if isinstance(items, Mapping) else items
            if isinstance(values, list):
                row["LIST"] = [
                    {
                        "ID": str(index + 1),
                        "SORT": str(item.get("SORT", (index + 1) * 10)),
                        "VALUE": str(item.get("VALUE", "")),
                        "DEF": _flag(item.get("DEF", "N")),
                        "XML_ID": str(item.get("XML_ID") or f"{row['FIELD_NAME']}_{index + 1}"),
                    }
                    for index, item in enumerate(values)
                    if isinstance(item, Mapping)
                ]

    def get(self, userfield_id: int) -> dict[str, Any]:
        """A copy of the field, or ``ERROR_NOT_FOUND``."""
        row = self._rows.get(userfield_id)
        if row is None:
            raise userfield_not_found(userfield_id)
        return _copy(row)

    def delete(self, userfield_id: int) -> dict[str, Any]:
        """Remove the field; return what it was."""
        row = self._rows.pop(userfield_id, None)
        if row is None:
            raise userfield_not_found(userfield_id)
        return row

    def by_name(self, name: str) -> dict[str, Any] | None:
        """The field with code ``name``, if declared."""
        return next((row for row in self._rows.values() if row["FIELD_NAME"] == name), None)

    def rows(self) -> list[dict[str, Any]]:
        """Copies of every field, oldest first."""
        return [_copy(row) for row in self._rows.values()]


def _copy(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["SETTINGS"] = dict(row.get("SETTINGS") or {})
    for label in LABELS:
        if isinstance(out.get(label), dict):
            out[label] = dict(out[label])
    if "LIST" in out:
        out["LIST"] = [dict(item) for item in out["LIST"]]
    return out
