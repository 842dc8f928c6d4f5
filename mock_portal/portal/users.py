"""The portal's users, as ``user.get`` and ``user.current`` show them.

The portal starts with its administrator (id 1); any other user an app or webhook acts as (a token's or a
webhook's ``user_id``) joins the directory the first time it calls, so ``user.current`` always answers with
the caller. Fields follow https://apidocs.bitrix24.com/api-reference/user/user-get.html.
"""

from __future__ import annotations

from typing import Any

from mock_portal.portal._parts import PortalParts

__all__ = ["Users", "new_user"]


def new_user(user_id: int) -> dict[str, Any]:
    """A user record with the fields ``user.get`` answers (names derived from the id, as a seed would)."""
    admin = user_id == 1
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
        "PERSONAL_GENDER": "",
        "PERSONAL_PHOTO": "",
        "WORK_POSITION": "Administrator" if admin else "",
        "UF_DEPARTMENT": [1],
        "USER_TYPE": "employee",
    }


class Users(PortalParts):
    """The user directory of :class:`~mock_portal.portal.Portal`."""

    _users: dict[int, dict[str, Any]]

    def user(self, user_id: int) -> dict[str, Any]:
        """The user with ``user_id`` (joining the directory on first use)."""
        with self._lock:
            found = self._users.get(user_id)
            if found is None:
                found = self._users[user_id] = new_user(user_id)
            return dict(found)

    def users(self) -> list[dict[str, Any]]:
        """Every user, by id."""
        with self._lock:
            return [dict(self._users[key]) for key in sorted(self._users)]
