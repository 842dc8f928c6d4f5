"""The ``im.*`` methods of dialogs, the recent list, counters and chat files.

Shapes follow https://apidocs.bitrix24.com/api-reference/chats/im-dialog-get.html,
https://apidocs.bitrix24.com/api-reference/chats/messages/im-dialog-messages-get.html,
https://apidocs.bitrix24.com/api-reference/chats/im-recent-get.html (and ``im-recent-list``) and
https://apidocs.bitrix24.com/api-reference/chats/im-counters-get.html. Files live on Drive, which the mock
portal does not keep: a chat has its folder (``im.disk.folder.get``), but no file id names a file, so the
file methods answer their documented refusals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mock_portal.portal.im import COLORS, ImChat
from mock_portal.rest.im_chat import IM_SCOPES, chat_id
from mock_portal.rest.im_views import atom, chat_view, im_user, message_view, php_object
from mock_portal.rest.params import error, flag, integer, param
from mock_portal.rest.registry import Caller, method

if TYPE_CHECKING:
    from mock_portal.portal import Portal

REVISION = {"rest": 32, "web": 130, "mobile": 22, "desktop": 6, "im_revision_mobile": 22}
"""The messenger's API revisions (``im.revision.get``), those of the module version the docs describe."""


def _dialog(caller: Caller, params: dict[str, Any]) -> ImChat:
    return caller.portal.im_dialog(caller.user_id, param(params, "DIALOG_ID"))


def _limit(params: dict[str, Any], default: int, most: int) -> int:
    raw = param(params, "LIMIT")
    value = integer(raw, "LIMIT") if raw not in (None, "") else default
    return max(1, min(value, most))


# ----------------------------------------------------------------------------------------- dialogs
@method("im.dialog.get", scopes=IM_SCOPES)
def dialog_get(caller: Caller, params: dict[str, Any]) -> Any:
    chat = _dialog(caller, params)
    view = chat_view(caller.portal, chat, caller.user_id)
    view["readed_list"] = [
        {
            "user_id": member,
            "user_name": im_user(caller.portal, member)["name"],
            "message_id": caller.portal.im_last_read(member, chat.id),
            "date": None,
        }
        for member in chat.users
        if member != caller.user_id
    ]
    view["dialog_id"] = str(param(params, "DIALOG_ID")).strip()
    return view


@method("im.dialog.writing", scopes=IM_SCOPES)
def dialog_writing(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.im_writing(caller.user_id, _dialog(caller, params).id)
    return True


@method("im.dialog.messages.get", scopes=IM_SCOPES)
def dialog_messages_get(caller: Caller, params: dict[str, Any]) -> Any:
    chat = _dialog(caller, params)
    limit = _limit(params, 20, 50)
    messages = caller.portal.im_messages(chat.id)
    first, last = param(params, "FIRST_ID"), param(params, "LAST_ID")
    if first not in (None, "", 0, "0"):
        chosen = [m for m in messages if m.id > integer(first, "FIRST_ID")][:limit]
    else:
        if last not in (None, "", 0, "0"):
            messages = [m for m in messages if m.id < integer(last, "LAST_ID")]
        chosen = messages[-limit:]
    read = caller.portal.im_last_read(caller.user_id, chat.id)
    authors = sorted({m.author_id for m in chosen if m.author_id})
    return {
        "chat_id": chat.id,
        "messages": [message_view(m, caller.user_id, read) for m in reversed(chosen)],
        "users": [im_user(caller.portal, a) for a in authors],
        "files": [],
    }


@method("im.dialog.messages.search", scopes=IM_SCOPES)
def dialog_messages_search(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params, dialog=False)
    chat = caller.portal.im_chat_of(target)
    if chat is None or caller.user_id not in chat.users:
        raise error("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
    limit = _limit(params, 50, 200)
    text = str(param(params, "SEARCH_MESSAGE") or "").strip().lower()
    messages = caller.portal.im_messages(chat.id)
    if len(text) > 2:
        messages = [m for m in messages if text in m.text.lower()]
    order = param(params, "ORDER")
    ascending = isinstance(order, dict) and str(next(iter(order.values()), "")).upper() == "ASC"
    messages = sorted(messages, key=lambda m: m.id, reverse=not ascending)
    last = param(params, "LAST_ID")
    if last not in (None, "", 0, "0"):
        bound = integer(last, "LAST_ID")
        messages = [m for m in messages if (m.id > bound if ascending else m.id < bound)]
    chosen = messages[:limit]
    read = caller.portal.im_last_read(caller.user_id, chat.id)
    authors = sorted({m.author_id for m in chosen if m.author_id})
    return {
        "users": [im_user(caller.portal, a) for a in authors],
        "files": [],
        "additionalMessages": [],
        "copilot": None,
        "stickers": [],
        "reactions": [],
        "tariffRestrictions": {"isHistoryLimitExceeded": False},
        "usersShort": [],
        "messages": [
            {
                "id": m.id,
                "chatId": m.chat_id,
                "chat_id": m.chat_id,
                "authorId": m.author_id,
                "author_id": m.author_id,
                "date": atom(m.at),
                "text": m.text,
                "isSystem": False,
                "uuid": None,
                "forward": None,
                "params": [],
                "viewedByOthers": False,
                "block": None,
                "unread": m.author_id != caller.user_id and m.id > read,
                "viewed": m.author_id == caller.user_id or m.id <= read,
                "viewedCount": 0,
            }
            for m in chosen
        ],
    }


@method("im.dialog.users.list", scopes=IM_SCOPES)
def dialog_users_list(caller: Caller, params: dict[str, Any]) -> Any:
    chat = _dialog(caller, params)
    limit = _limit(params, 50, 200)
    offset = integer(param(params, "OFFSET") or 0, "OFFSET")
    return [im_user(caller.portal, u) for u in chat.users[offset : offset + limit]]


@method("im.dialog.read", scopes=IM_SCOPES)
def dialog_read(caller: Caller, params: dict[str, Any]) -> Any:
    chat = _dialog(caller, params)
    raw = param(params, "MESSAGE_ID")
    up_to = integer(raw, "MESSAGE_ID") if raw not in (None, "", 0, "0") else None
    last = caller.portal.im_read(caller.user_id, chat.id, up_to)
    return {
        "dialogId": chat.dialog_id(caller.user_id),
        "chatId": chat.id,
        "lastId": last,
        "counter": len(caller.portal.im_unread(caller.user_id, chat.id)),
    }


@method("im.dialog.read.all", scopes=IM_SCOPES)
def dialog_read_all(caller: Caller, params: dict[str, Any]) -> Any:
    for chat in caller.portal.im_chats():
        if caller.user_id in chat.users:
            caller.portal.im_read(caller.user_id, chat.id)
    return True


@method("im.dialog.unread", scopes=IM_SCOPES)
def dialog_unread(caller: Caller, params: dict[str, Any]) -> Any:
    chat = _dialog(caller, params)
    raw = param(params, "MESSAGE_ID")
    if raw in (None, "", 0, "0"):
        raise error("MESSAGE_ID_ERROR", "First unread message id can't be empty")
    first = integer(raw, "MESSAGE_ID")
    if not any(m.id == first for m in caller.portal.im_messages(chat.id)):
        raise error("MESSAGE_ID_ERROR", "First unread message id can't be empty")
    caller.portal.im_unread_from(caller.user_id, chat.id, first)
    return True


# ----------------------------------------------------------------------------------------- recent list
def _recent_items(portal: Portal, user_id: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    skip_chat = flag(param(params, "SKIP_CHAT") or "N")
    skip_dialog = flag(param(params, "SKIP_DIALOG") or "N")
    items = []
    for chat in portal.im_chats():
        flags = portal.im_flags(user_id, chat.id)
        messages = portal.im_messages(chat.id)
        if user_id not in chat.users or flags["hidden"] or not (messages or flags["pinned"]):
            continue
        if (chat.private and skip_dialog) or (not chat.private and skip_chat):
            continue
        last = messages[-1] if messages else None
        counter = len(portal.im_unread(user_id, chat.id))
        dialog_id = chat.dialog_id(user_id)
        item: dict[str, Any] = {
            "id": int(dialog_id) if chat.private else dialog_id,
            "chat_id": chat.id,
            "type": "user" if chat.private else "chat",
            "avatar": {"url": chat.avatar, "color": COLORS[chat.color]},
            "title": chat_view(portal, chat, user_id)["name"],
            "message": {
                "id": last.id if last else 0,
                "text": last.text if last else "",
                "file": False,
                "author_id": last.author_id if last else 0,
                "attach": False,
                "sticker": None,
                "date": atom(last.at if last else chat.created),
                "status": "received",
                "uuid": None,
            },
            "counter": counter,
            "last_id": portal.im_last_read(user_id, chat.id),
            "pinned": flags["pinned"],
            "unread": flags["marked_unread"],
            "has_reminder": False,
            "date_update": atom(last.at if last else chat.created),
            "date_last_activity": atom(last.at if last else chat.created),
            "options": [],
        }
        if chat.private:
            item["user"] = im_user(portal, int(dialog_id))
        else:
            view = chat_view(portal, chat, user_id)
            item["chat"] = {k: view[k] for k in _RECENT_CHAT_KEYS}
            item["user"] = {"id": 0}
        items.append(item)
    items.sort(key=lambda i: (not i["pinned"], -i["message"]["id"], -i["chat_id"]))
    return items


_RECENT_CHAT_KEYS = (
    "id",
    "parent_chat_id",
    "parent_message_id",
    "name",
    "owner",
    "extranet",
    "avatar",
    "color",
    "type",
    "entity_type",
    "entity_id",
    "entity_data_1",
    "entity_data_2",
    "entity_data_3",
    "mute_list",
    "manager_list",
    "date_create",
    "message_type",
    "user_counter",
    "restrictions",
    "role",
    "text_field_enabled",
    "background_id",
    "entity_link",
    "permissions",
    "public",
)


@method("im.recent.get", scopes=IM_SCOPES)
def recent_get(caller: Caller, params: dict[str, Any]) -> Any:
    return _recent_items(caller.portal, caller.user_id, params)


@method("im.recent.list", scopes=IM_SCOPES)
def recent_list(caller: Caller, params: dict[str, Any]) -> Any:
    items = _recent_items(caller.portal, caller.user_id, params)
    if flag(param(params, "UNREAD_ONLY") or "N"):
        items = [i for i in items if i["counter"] or i["unread"]]
    limit = _limit(params, 50, 200)
    offset = integer(param(params, "OFFSET") or 0, "OFFSET")
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {"items": page, "hasMorePages": more, "hasMore": more}


def _flag_dialog(caller: Caller, params: dict[str, Any], name: str, on: bool) -> bool:
    if not param(params, "DIALOG_ID"):
        raise error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    chat = _dialog(caller, params)
    caller.portal.im_flag(caller.user_id, chat.id, name, on)
    return True


@method("im.recent.hide", scopes=IM_SCOPES)
def recent_hide(caller: Caller, params: dict[str, Any]) -> Any:
    return _flag_dialog(caller, params, "hidden", True)


@method("im.recent.pin", scopes=IM_SCOPES)
def recent_pin(caller: Caller, params: dict[str, Any]) -> Any:
    return _flag_dialog(caller, params, "pinned", flag(param(params, "PIN") or "Y"))


@method("im.recent.unread", scopes=IM_SCOPES)
def recent_unread(caller: Caller, params: dict[str, Any]) -> Any:
    return _flag_dialog(caller, params, "marked_unread", flag(param(params, "ACTION") or "Y"))


# ----------------------------------------------------------------------------------------- counters
@method("im.counters.get", scopes=IM_SCOPES)
def counters_get(caller: Caller, params: dict[str, Any]) -> Any:
    portal, user_id = caller.portal, caller.user_id
    chats: dict[str, int] = {}
    muted: dict[str, int] = {}
    dialogs: dict[str, int] = {}
    chats_unread: list[int] = []
    dialogs_unread: list[int] = []
    for chat in portal.im_chats():
        if user_id not in chat.users:
            continue
        count = len(portal.im_unread(user_id, chat.id))
        marked = portal.im_flags(user_id, chat.id)["marked_unread"]
        if chat.private:
            other = chat.dialog_id(user_id)
            if count:
                dialogs[other] = count
            if marked:
                dialogs_unread.append(int(other))
        else:
            if count:
                (muted if user_id in chat.muted else chats)[str(chat.id)] = count
            if marked:
                chats_unread.append(chat.id)
    notify = sum(1 for n in portal.notifications(user_id) if not n.read)
    chat_total, dialog_total = sum(chats.values()), sum(dialogs.values())
    return {
        "TYPE": {
            "ALL": chat_total + dialog_total + notify,
            "NOTIFY": notify,
            "CHAT": chat_total,
            "LINES": 0,
            "DIALOG": dialog_total,
            "MESSENGER": chat_total + dialog_total,
        },
        "CHAT": php_object(chats),
        "CHAT_MUTED": php_object(muted),
        "CHAT_UNREAD": chats_unread,
        "LINES": [],
        "DIALOG": php_object(dialogs),
        "DIALOG_UNREAD": dialogs_unread,
    }


@method("im.revision.get", scopes=IM_SCOPES)
def revision_get(caller: Caller, params: dict[str, Any]) -> Any:
    return dict(REVISION)


# ----------------------------------------------------------------------------------------- chat files
@method("im.disk.folder.get", scopes=IM_SCOPES)
def disk_folder_get(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params)
    chat = caller.portal.im_chat_of(target)
    if chat is None or caller.user_id not in chat.users:
        raise error("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
    return {"ID": caller.portal.im_folder(chat.id)}


def _file_id(params: dict[str, Any], name: str = "FILE_ID") -> int:
    raw = param(params, name)
    if raw in (None, "") and name == "FILE_ID":
        raw = param(params, "DISK_ID")
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit() or int(text) <= 0:
        raise error("FILE_ID_EMPTY", "File ID can't be empty")
    return int(text)


@method("im.disk.file.save", scopes=IM_SCOPES)
def disk_file_save(caller: Caller, params: dict[str, Any]) -> Any:
    _file_id(params)
    raise error("FILE_SAVE_ERROR", "File ID can't be saved: the portal keeps no Drive files")


@method("im.disk.file.delete", scopes=IM_SCOPES)
def disk_file_delete(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params, dialog=False)
    file_id = _file_id(params)
    chat = caller.portal.im_chat_of(target)
    if chat is None or caller.user_id not in chat.users:
        raise error("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
    raise error("FILE_ID_EMPTY", f"File {file_id} is not in the chat: the portal keeps no Drive files")


@method("im.disk.file.commit", scopes=IM_SCOPES)
def disk_file_commit(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params)
    chat = caller.portal.im_chat_of(target)
    if chat is None or caller.user_id not in chat.users:
        raise error("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
    upload = str(param(params, "UPLOAD_ID") or "").strip()
    wanted = upload if upload not in ("", "0") else str(_file_id(params))
    raise error("FILE_ID_EMPTY", f"No file {wanted[:20]} to commit: the portal keeps no Drive files")
