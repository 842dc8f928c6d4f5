"""How the messenger methods show users, chats and messages: the lower-case objects of the ``im.*`` pages.

The user object is the one every ``im.*`` page repeats (``im.user.get``, ``im.department.*``,
``im.dialog.users.list``...: https://apidocs.bitrix24.com/api-reference/chats/users/im-user-get.html), the
chat object the one of ``im.dialog.get`` and ``im.search.chat.list``, the message the one of
``im.dialog.messages.get``. Dates are ATOM (``2026-03-04T09:43:26+00:00``). An empty object comes out as
``[]``, as PHP's ``json_encode`` writes an empty array (``im.counters.get`` shows ``"CHAT": []``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from mock_portal.portal.dates import parse_moment
from mock_portal.portal.im import COLORS, ImChat
from mock_portal.portal.model import Message
from mock_portal.portal.users import new_user
from mock_portal.rest.params import error, param

if TYPE_CHECKING:
    from mock_portal.portal import Portal

__all__ = ["atom", "chat_view", "im_user", "message_view", "php_object", "user_ids"]

_USER_COLORS = tuple(COLORS.values())


def atom(moment: float) -> str:
    """A moment as the messenger writes dates."""
    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat(timespec="seconds")


def php_object(mapping: Mapping[str, Any]) -> Any:
    """A keyed result as PHP sends it: ``[]`` when empty."""
    return dict(mapping) if mapping else []


def _birthday(value: Any) -> str:
    day = parse_moment(str(value or ""))
    return "" if day is None else day.strftime("%d-%m")


def im_user(portal: Portal, user_id: int) -> dict[str, Any]:
    """The messenger's object for a user of the portal."""
    # a user the directory does not hold is shown as a fresh one would be, without joining it: reading
    # never changes the portal
    user = portal.find_user(user_id) or new_user(user_id)
    first, last = str(user.get("NAME") or ""), str(user.get("LAST_NAME") or "")
    idle = portal.user_idle(user_id)
    phones = {
        key: str(user[field])
        for key, field in (("work_phone", "WORK_PHONE"), ("personal_mobile", "PERSONAL_MOBILE"))
        if user.get(field)
    }
    return {
        "id": user_id,
        "active": bool(user.get("ACTIVE", True)),
        "name": f"{first} {last}".strip() or str(user.get("EMAIL") or ""),
        "first_name": first,
        "last_name": last,
        "work_position": str(user.get("WORK_POSITION") or ""),
        "color": _USER_COLORS[user_id % len(_USER_COLORS)],
        "avatar": "",
        "avatar_hr": "",
        "gender": "F" if user.get("PERSONAL_GENDER") == "F" else "M",
        "birthday": _birthday(user.get("PERSONAL_BIRTHDAY")),
        "extranet": user.get("USER_TYPE") == "extranet",
        "network": False,
        "bot": False,
        "connector": False,
        "external_auth_id": "default",
        "status": portal.user_status(user_id),
        "idle": atom(idle) if idle is not None else False,
        "last_activity_date": user.get("LAST_ACTIVITY_DATE") or False,
        "mobile_last_date": False,
        "desktop_last_date": False,
        "absent": False,
        "departments": list(user.get("UF_DEPARTMENT") or []),
        "phones": phones or False,
        "bot_data": None,
        "type": "user" if user.get("USER_TYPE", "employee") == "employee" else str(user.get("USER_TYPE")),
        "website": str(user.get("PERSONAL_WWW") or ""),
        "email": str(user.get("EMAIL") or ""),
    }


def chat_type(chat: ImChat) -> str:
    return {"PRIVATE": "private", "OPEN": "open"}.get(chat.type, "chat")


def chat_view(portal: Portal, chat: ImChat, viewer: int) -> dict[str, Any]:
    """A chat as ``im.dialog.get`` shows it to ``viewer``."""
    messages = portal.im_messages(chat.id)
    last_id = messages[-1].id if messages else 0
    unread = portal.im_unread(viewer, chat.id)
    owner = chat.owner == viewer
    entity_link: dict[str, Any] = {"type": chat.entity_type, "url": "", "id": chat.entity_id}
    return {
        "id": chat.id,
        "parent_chat_id": 0,
        "parent_message_id": 0,
        "name": _chat_name(portal, chat, viewer),
        "description": chat.description,
        "owner": chat.owner,
        "extranet": False,
        "avatar": chat.avatar,
        "color": COLORS[chat.color],
        "type": chat_type(chat),
        "counter": len(unread),
        "user_counter": len(chat.users),
        "message_count": len(messages),
        "unread_id": unread[0].id if unread else 0,
        "restrictions": {
            "avatar": not chat.private,
            "rename": not chat.private,
            "extend": not chat.private,
            "call": True,
            "mute": not chat.private,
            "leave": not chat.private,
            "leave_owner": not chat.private,
            "send": True,
            "user_list": True,
        },
        "last_message_id": last_id,
        "last_id": portal.im_last_read(viewer, chat.id),
        "marked_id": 0,
        "disk_folder_id": 0,
        "entity_type": chat.entity_type,
        "entity_id": chat.entity_id,
        "entity_data_1": "",
        "entity_data_2": "",
        "entity_data_3": "",
        "mute_list": sorted(chat.muted),
        "manager_list": sorted({chat.owner, *chat.managers} - {0}),
        "date_create": atom(chat.created),
        "message_type": chat.message_type,
        "public": "",
        "role": "owner" if owner else "member" if viewer in chat.users else "guest",
        "entity_link": entity_link,
        "text_field_enabled": True,
        "background_id": None,
        "permissions": {
            "manage_users_add": "member",
            "manage_users_delete": "manager",
            "manage_ui": "member",
            "manage_settings": "owner",
            "manage_messages": "member",
            "can_post": "member",
        },
        "is_new": False,
    }


def _chat_name(portal: Portal, chat: ImChat, viewer: int) -> str:
    if not chat.private:
        return chat.title
    other = int(chat.dialog_id(viewer))
    return str(im_user(portal, other)["name"])


def message_view(message: Message, viewer: int, last_read: int) -> dict[str, Any]:
    """A message as ``im.dialog.messages.get`` lists it."""
    params: Any = {"LIKE": list(message.likes)} if message.likes else []
    if message.edited:
        params = {**(params or {}), "IS_EDITED": "Y"}
    return {
        "id": message.id,
        "chat_id": message.chat_id,
        "author_id": message.author_id,
        "date": atom(message.at),
        "text": message.text,
        "unread": message.author_id != viewer and message.id > last_read,
        "uuid": None,
        "replaces": [],
        "params": params,
        "disappearing_date": None,
    }


def user_ids(params: Mapping[str, Any], name: str, *, code: str = "ID_EMPTY") -> list[int]:
    """A list of user (or department) ids from a parameter that takes an array or a JSON array string."""
    raw = param(params, name)
    if isinstance(raw, str) and raw.strip().startswith("["):
        import json

        try:
            raw = json.loads(raw)
        except ValueError:
            raise error("INVALID_FORMAT", f"A wrong format for the {name} field is passed") from None
    items = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        text = str(item).strip() if item is not None else ""
        if text.isdigit() and int(text) > 0:
            out.append(int(text))
    if not out:
        raise error(code, f"{name} can't be empty")
    return out
