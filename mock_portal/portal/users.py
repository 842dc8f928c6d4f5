"""The portal's users and its company structure, as ``user.*`` and the messenger's user methods show them.

The portal starts with its administrator (id 1, the head of the root department 1); any other user an app or
webhook acts as (a token's or a webhook's ``user_id``) joins the directory the first time it calls, so
``user.current`` always answers with the caller. ``user.add`` invites a new user (ids count up from the
highest one held), ``user.update`` changes one. Fields follow
https://apidocs.bitrix24.com/api-reference/user/user-get.html and
https://apidocs.bitrix24.com/api-reference/user/user-fields.html; only the administrator may add or change
other users (``ERROR_CORE`` ``access_denied`` otherwise, as the docs list it).

The user userfields (``UF_USR_*``) are a :class:`~mock_portal.portal.userfields.UserfieldTable`; the options
apps keep per portal (``app.option.*``) and per user (``user.option.*``) live here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.dates import day_at_midnight, parse_moment
from mock_portal.portal.model import Clock, PortalError
from mock_portal.portal.userfields import UserfieldTable

__all__ = ["ROOT_DEPARTMENT", "Users", "new_user"]

ROOT_DEPARTMENT = 1
"""The id of the company's root department (a portal's structure starts there)."""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ADMIN_ID = 1
# what user.add and user.update may set (user-add.md), besides ACTIVE and UF_* fields
SETTABLE = frozenset(
    {
        "EMAIL",
        "NAME",
        "LAST_NAME",
        "SECOND_NAME",
        "XML_ID",
        "PERSONAL_GENDER",
        "PERSONAL_PROFESSION",
        "PERSONAL_WWW",
        "PERSONAL_BIRTHDAY",
        "PERSONAL_PHOTO",
        "PERSONAL_ICQ",
        "PERSONAL_PHONE",
        "PERSONAL_FAX",
        "PERSONAL_MOBILE",
        "PERSONAL_PAGER",
        "PERSONAL_STREET",
        "PERSONAL_CITY",
        "PERSONAL_STATE",
        "PERSONAL_ZIP",
        "PERSONAL_COUNTRY",
        "PERSONAL_MAILBOX",
        "PERSONAL_NOTES",
        "WORK_PHONE",
        "WORK_COMPANY",
        "WORK_POSITION",
        "WORK_DEPARTMENT",
        "WORK_WWW",
        "WORK_FAX",
        "WORK_PAGER",
        "WORK_STREET",
        "WORK_MAILBOX",
        "WORK_CITY",
        "WORK_STATE",
        "WORK_ZIP",
        "WORK_COUNTRY",
        "WORK_PROFILE",
        "WORK_LOGO",
        "WORK_NOTES",
        "TIME_ZONE",
        "UF_EMPLOYMENT_DATE",
    }
)
DATE_FIELDS = frozenset({"PERSONAL_BIRTHDAY", "UF_EMPLOYMENT_DATE"})


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat(timespec="seconds")


def new_user(user_id: int, *, now: float = 1_704_067_200.0) -> dict[str, Any]:
    """A user record with the fields ``user.get`` answers (names derived from the id, as a seed would)."""
    admin = user_id == ADMIN_ID
    return {
        "ID": str(user_id),
        "XML_ID": f"{user_id}",
        "ACTIVE": True,
        "NAME": "Admin" if admin else f"User{user_id}",
        "LAST_NAME": "Portal" if admin else "Employee",
        "SECOND_NAME": "",
        "EMAIL": f"user{user_id}@example.com",
        "LAST_LOGIN": "",
        "DATE_REGISTER": "2024-01-01T00:00:00+00:00",
        "IS_ONLINE": "N",
        "TIME_ZONE": "",
        "TIME_ZONE_OFFSET": "0",
        "TIMESTAMP_X": _stamp(now),
        "LAST_ACTIVITY_DATE": _stamp(now),
        "PERSONAL_GENDER": "",
        "PERSONAL_PROFESSION": "",
        "PERSONAL_WWW": "",
        "PERSONAL_BIRTHDAY": "",
        "PERSONAL_PHOTO": "",
        "PERSONAL_MOBILE": "",
        "PERSONAL_CITY": "",
        "WORK_PHONE": "",
        "WORK_POSITION": "Administrator" if admin else "",
        "UF_EMPLOYMENT_DATE": "",
        "UF_DEPARTMENT": [ROOT_DEPARTMENT],
        "USER_TYPE": "employee",
    }


def _date(value: Any, name: str) -> str:
    text = str(value or "").strip()
    if not text:
        return ""
    moment = parse_moment(text)
    if moment is None:
        raise PortalError("ERROR_ARGUMENT", f"wrong date in {name}: {text[:40]!r}")
    return day_at_midnight(moment)


def _departments(value: Any) -> list[int]:
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    out = [int(str(v).strip()) for v in items if str(v).strip().isdigit()]
    if not out:
        raise PortalError("ERROR_ARGUMENT", "UF_DEPARTMENT must hold department ids")
    return out


class Users(PortalParts):
    """The user directory, the company structure, user userfields and app/user options of
    :class:`~mock_portal.portal.Portal`."""

    _users: dict[int, dict[str, Any]]
    _departments: dict[int, dict[str, Any]]
    _user_fields: UserfieldTable
    _app_options: dict[str, dict[str, Any]]
    _user_options: dict[tuple[str, int], dict[str, Any]]
    clock: Clock

    # ----------------------------------------------------------------- the directory
    def user(self, user_id: int) -> dict[str, Any]:
        """The user with ``user_id`` (joining the directory on first use)."""
        with self._lock:
            found = self._users.get(user_id)
            if found is None:
                found = self._users[user_id] = new_user(user_id, now=self.clock.now())
            return _copy(found)

    def find_user(self, user_id: int) -> dict[str, Any] | None:
        """The user with ``user_id`` if the directory has it (nobody joins)."""
        with self._lock:
            found = self._users.get(user_id)
            return None if found is None else _copy(found)

    def users(self) -> list[dict[str, Any]]:
        """Every user, by id."""
        with self._lock:
            return [_copy(self._users[key]) for key in sorted(self._users)]

    def is_admin(self, user_id: int) -> bool:
        """Whether the user is one of the portal's administrators (the portal's first user is)."""
        return user_id == ADMIN_ID

    def add_user(self, fields: Mapping[str, Any], *, by: int) -> int:
        """``user.add``: invite a user (``EMAIL`` required and unique); return the new id."""
        upper = {str(k).upper(): v for k, v in fields.items()}
        email = str(upper.get("EMAIL") or "").strip()
        if not _EMAIL.match(email):
            raise PortalError("ERROR_ARGUMENT", "wrong_email")
        with self._lock:
            if not self.is_admin(by):
                raise PortalError("ERROR_CORE", "access_denied")
            if any(str(u["EMAIL"]).lower() == email.lower() for u in self._users.values()):
                raise PortalError("ERROR_ARGUMENT", "A user with this email already exists")
            new_id = max(self._users, default=0) + 1
            user = new_user(new_id, now=self.clock.now())
            user.update(NAME="", LAST_NAME="", WORK_POSITION="", XML_ID="", LAST_LOGIN="")
            user["DATE_REGISTER"] = _stamp(self.clock.now())
            self._set_fields(user, upper)
            self._users[new_id] = user
            return new_id

    def update_user(self, user_id: int, fields: Mapping[str, Any], *, by: int) -> None:
        """``user.update``: the administrator changes anyone, a user only themselves."""
        upper = {str(k).upper(): v for k, v in fields.items() if str(k).upper() != "ID"}
        with self._lock:
            if by != user_id and not self.is_admin(by):
                raise PortalError("ERROR_CORE", "access_denied")
            user = self._users.get(user_id)
            if user is None:
                raise PortalError("ERROR_CORE", f"User {user_id} is not found")
            if "EMAIL" in upper and not _EMAIL.match(str(upper["EMAIL"] or "").strip()):
                raise PortalError("ERROR_ARGUMENT", "wrong_email")
            self._set_fields(user, upper)
            user["TIMESTAMP_X"] = _stamp(self.clock.now())

    def _set_fields(self, user: dict[str, Any], upper: Mapping[str, Any]) -> None:
        for name, value in upper.items():
            if name == "ACTIVE":
                user["ACTIVE"] = value is True or str(value).strip().upper() in ("Y", "1", "TRUE")
            elif name == "UF_DEPARTMENT":
                user["UF_DEPARTMENT"] = _departments(value)
            elif name in DATE_FIELDS:
                user[name] = _date(value, name)
            elif name in SETTABLE or name.startswith("UF_"):
                user[name] = value if isinstance(value, list) else "" if value is None else str(value)

    # ----------------------------------------------------------------- access codes
    def access_codes(self, user_id: int) -> set[str]:
        """The user's access codes: ``AU`` (authorized), ``G2`` (everyone), ``G1`` (administrators),
        ``U<id>``, ``D<dept>`` and ``DR<dept>`` (the department and those above it)."""
        with self._lock:
            user = self._users.get(user_id) or new_user(user_id)
            codes = {"AU", "G2", f"U{user_id}"}
            if self.is_admin(user_id):
                codes.add("G1")
            for dept in user.get("UF_DEPARTMENT") or []:
                codes.add(f"D{dept}")
                current: int | None = int(dept)
                while current is not None and current in self._departments:
                    codes.add(f"DR{current}")
                    current = self._departments[current]["parent"]
            return codes

    # ----------------------------------------------------------------- departments
    def departments(self) -> list[dict[str, Any]]:
        """The company structure: ``id``, ``name``, ``parent`` (None for the root), ``head``."""
        with self._lock:
            return [dict(d) for d in self._departments.values()]

    def department(self, department_id: int) -> dict[str, Any] | None:
        with self._lock:
            found = self._departments.get(department_id)
            return None if found is None else dict(found)

    def department_members(self, department_id: int) -> list[int]:
        """The ids of the users in the department, by id."""
        with self._lock:
            return sorted(
                uid for uid, u in self._users.items() if department_id in (u.get("UF_DEPARTMENT") or [])
            )

    def department_path(self, department_id: int) -> list[str]:
        """The names from the department up to the root."""
        with self._lock:
            names: list[str] = []
            current: int | None = department_id
            while current is not None and current in self._departments:
                names.append(str(self._departments[current]["name"]))
                current = self._departments[current]["parent"]
            return names

    # ----------------------------------------------------------------- user userfields
    def user_userfield_add(self, fields: Mapping[str, Any], *, by: int) -> int:
        with self._lock:
            self._require_admin(by)
            return self._user_fields.add(fields)

    def user_userfield_update(self, userfield_id: int, fields: Mapping[str, Any], *, by: int) -> None:
        with self._lock:
            self._require_admin(by)
            self._user_fields.update(userfield_id, fields)

    def user_userfield_delete(self, userfield_id: int, *, by: int) -> None:
        with self._lock:
            self._require_admin(by)
            row = self._user_fields.delete(userfield_id)
            for user in self._users.values():
                user.pop(row["FIELD_NAME"], None)

    def user_userfields(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._user_fields.rows()

    def _require_admin(self, user_id: int) -> None:
        if not self.is_admin(user_id):
            raise PortalError("", "Access denied.")

    # ----------------------------------------------------------------- options
    def set_app_options(self, client_id: str, options: Mapping[str, Any]) -> None:
        """``app.option.set``: the app's portal-wide options."""
        with self._lock:
            self._app_options.setdefault(client_id, {}).update(options)

    def app_options(self, client_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._app_options.get(client_id, {}))

    def set_user_options(self, client_id: str, user_id: int, options: Mapping[str, Any]) -> None:
        """``user.option.set``: the app's options for one user."""
        with self._lock:
            self._user_options.setdefault((client_id, user_id), {}).update(options)

    def user_options(self, client_id: str, user_id: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._user_options.get((client_id, user_id), {}))


def root_department() -> dict[int, dict[str, Any]]:
    """The structure a portal starts with: the root department, headed by the administrator."""
    return {ROOT_DEPARTMENT: {"id": ROOT_DEPARTMENT, "name": "Company", "parent": None, "head": ADMIN_ID}}


def _copy(user: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in user.items()}


def ids_of(value: Any) -> Iterable[int]:
    """Integer ids from a list, a PHP list (dict) or one value; anything else is skipped."""
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            yield item
        elif isinstance(item, str) and item.strip().isdigit():
            yield int(item.strip())
