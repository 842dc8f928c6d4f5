"""The ``im.notify.*`` methods: notifications to users, reading and deleting them.

Shapes and codes follow https://apidocs.bitrix24.com/api-reference/chats/notifications/ (``im-notify.md``,
``im-notify-personal-add.md``, ``im-notify-get.md``...). A tag belongs to the app that set it: the app's
``client_id``, or the ``CLIENT_ID`` a webhook passes. Notifications made through REST carry no buttons and no
answer field, so ``im.notify.answer`` and ``im.notify.confirm`` refuse them.
"""

from __future__ import annotations

from typing import Any

from mock_portal.portal.notify import NOTIFY_FROM, NOTIFY_SYSTEM, describe
from mock_portal.rest.im_chat import IM_SCOPES
from mock_portal.rest.im_views import atom, im_user, user_ids
from mock_portal.rest.params import error, flag, integer, param
from mock_portal.rest.registry import Caller, method

SCHEMA: dict[str, dict[str, Any]] = {
    "im": {
        "NAME": "Chat and Calls",
        "MODULE_ID": "im",
        "LIST": [
            {"ID": "im|message", "NAME": "Private messages"},
            {"ID": "im|chat", "NAME": "Group chat messages"},
            {"ID": "im|like", "NAME": "Likes"},
        ],
    },
    "rest": {
        "NAME": "Applications",
        "MODULE_ID": "rest",
        "LIST": [{"ID": "rest|rest_notify", "NAME": "Application notifications"}],
    },
}
"""The notification types users can set up (``im.notify.schema.get``): those of the modules the mock has."""


def _client_id(caller: Caller, params: dict[str, Any]) -> str:
    given = param(params, "CLIENT_ID")
    return caller.client_id or (str(given) if given else "")


def _add(caller: Caller, params: dict[str, Any], kind: int) -> int:
    [user_id] = user_ids(params, "USER_ID", code="USER_ID_EMPTY")[:1]
    text = param(params, "MESSAGE")
    if not isinstance(text, str) or not text.strip():
        raise error("MESSAGE_EMPTY", "Message can't be empty")
    return caller.portal.notify_add(
        user_id,
        text,
        author_id=caller.user_id if kind == NOTIFY_FROM else 0,
        kind=kind,
        tag=str(param(params, "TAG") or ""),
        sub_tag=str(param(params, "SUB_TAG") or ""),
        client_id=_client_id(caller, params),
    )


@method("im.notify", scopes=IM_SCOPES)
def notify(caller: Caller, params: dict[str, Any]) -> Any:
    kind = NOTIFY_SYSTEM if str(param(params, "TYPE") or "USER").upper() == "SYSTEM" else NOTIFY_FROM
    return _add(caller, params, kind)


@method("im.notify.personal.add", scopes=IM_SCOPES)
def notify_personal_add(caller: Caller, params: dict[str, Any]) -> Any:
    return _add(caller, params, NOTIFY_FROM)


@method("im.notify.system.add", scopes=IM_SCOPES)
def notify_system_add(caller: Caller, params: dict[str, Any]) -> Any:
    return _add(caller, params, NOTIFY_SYSTEM)


def _listed(caller: Caller, items: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    chat_id = caller.portal.notify_chat(caller.user_id)
    rows = [{**describe(n), "chat_id": chat_id, "date": atom(n.at)} for n in items]
    authors = sorted({n.author_id for n in items if n.author_id})
    return rows, [im_user(caller.portal, a) for a in authors]


@method("im.notify.get", scopes=IM_SCOPES)
def notify_get(caller: Caller, params: dict[str, Any]) -> Any:
    everything = caller.portal.notifications(caller.user_id)
    items = everything
    last = param(params, "LAST_ID")
    if last not in (None, "", 0, "0"):
        items = [n for n in items if n.id < integer(last, "LAST_ID")]
    limit = max(1, min(integer(param(params, "LIMIT") or 50, "LIMIT"), 50))
    rows, users = _listed(caller, items[:limit])
    return {
        "total_count": len(everything),
        "total_unread_count": sum(1 for n in everything if not n.read),
        "chat_id": caller.portal.notify_chat(caller.user_id),
        "notifications": rows,
        "users": users,
    }


@method("im.notify.history.search", scopes=IM_SCOPES)
def notify_history_search(caller: Caller, params: dict[str, Any]) -> Any:
    text = str(param(params, "SEARCH_TEXT") or "").strip().lower()
    items = [n for n in caller.portal.notifications(caller.user_id) if text in n.text.lower()]
    last = param(params, "LAST_ID")
    if last not in (None, "", 0, "0"):
        items = [n for n in items if n.id < integer(last, "LAST_ID")]
    limit = max(1, min(integer(param(params, "LIMIT") or 50, "LIMIT"), 50))
    rows, users = _listed(caller, items[:limit])
    return {
        "chat_id": caller.portal.notify_chat(caller.user_id),
        "total_results": len(items),
        "notifications": rows,
        "users": users,
    }


@method("im.notify.schema.get", scopes=IM_SCOPES)
def notify_schema_get(caller: Caller, params: dict[str, Any]) -> Any:
    return {key: {**value, "LIST": [dict(i) for i in value["LIST"]]} for key, value in SCHEMA.items()}


@method("im.notify.read.all", scopes=IM_SCOPES)
def notify_read_all(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.notify_mark(caller.user_id, None, True)
    return {"result": True, "newCounter": 0}


@method("im.notify.read", scopes=IM_SCOPES)
def notify_read(caller: Caller, params: dict[str, Any]) -> Any:
    read = flag(param(params, "ACTION") or "Y")
    raw = param(params, "ID")
    if raw in (None, "", 0, "0"):
        caller.portal.notify_mark(caller.user_id, None, read)
        return True
    notify_id = integer(raw, "ID")
    if flag(param(params, "ONLY_CURRENT") or "N"):
        wanted = [notify_id]
    else:  # this one and every older one
        wanted = [n.id for n in caller.portal.notifications(caller.user_id) if n.id <= notify_id]
    caller.portal.notify_mark(caller.user_id, wanted, read)
    return True


@method("im.notify.read.list", scopes=IM_SCOPES)
def notify_read_list(caller: Caller, params: dict[str, Any]) -> Any:
    raw = param(params, "IDS")
    if not isinstance(raw, (list, dict)) or not raw:
        raise error("PARAMS_ERROR", "No IDS param or it is not an array")
    ids = user_ids(params, "IDS", code="PARAMS_ERROR")
    caller.portal.notify_mark(caller.user_id, ids, flag(param(params, "ACTION") or "Y"))
    return True


@method("im.notify.delete", scopes=IM_SCOPES)
def notify_delete(caller: Caller, params: dict[str, Any]) -> Any:
    raw, tag, sub_tag = param(params, "ID"), param(params, "TAG"), param(params, "SUB_TAG")
    if raw not in (None, "", 0, "0"):
        gone = caller.portal.notify_delete(caller.user_id, notify_id=integer(raw, "ID"))
        return gone > 0
    if not tag and not sub_tag:
        raise error("PARAMS_ERROR", "Incorrect params")
    client_id = _client_id(caller, params)
    if not client_id:
        raise error("ACCESS_DENIED", "Access denied! Client ID not specified")
    gone = caller.portal.notify_delete(
        caller.user_id, tag=str(tag or ""), sub_tag=str(sub_tag or ""), client_id=client_id
    )
    return gone > 0


def _notify_id(caller: Caller, params: dict[str, Any]) -> int:
    raw = param(params, "NOTIFY_ID")
    if raw in (None, "", 0, "0"):
        raise error("ID_ERROR", "Notification ID can't be empty")
    notify_id = integer(raw, "NOTIFY_ID")
    caller.portal.notification(caller.user_id, notify_id)
    return notify_id


@method("im.notify.answer", scopes=IM_SCOPES)
def notify_answer(caller: Caller, params: dict[str, Any]) -> Any:
    notify_id = _notify_id(caller, params)
    if not str(param(params, "ANSWER_TEXT") or "").strip():
        raise error("ANSWER_TEXT_ERROR", "ANSWER_TEXT can't be empty")
    raise error("ID_ERROR", f"Notification {notify_id} has no answer field")


@method("im.notify.confirm", scopes=IM_SCOPES)
def notify_confirm(caller: Caller, params: dict[str, Any]) -> Any:
    notify_id = _notify_id(caller, params)
    if param(params, "NOTIFY_VALUE") in (None, ""):
        raise error("NOTIFY_VALUE_ERROR", "Notification Value can't be empty")
    raise error("ID_ERROR", f"Notification {notify_id} has no buttons to confirm")
