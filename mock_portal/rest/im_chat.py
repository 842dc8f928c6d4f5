"""The messenger's ``im.*`` methods of chats and messages (``im.message.add`` is in
:mod:`~mock_portal.rest.im`); dialogs, the recent list, notifications, users and search are in
:mod:`~mock_portal.rest.im_dialog`, :mod:`~mock_portal.rest.im_notify` and :mod:`~mock_portal.rest.im_users`.

Shapes and error codes follow each method's page under https://apidocs.bitrix24.com/api-reference/chats/.
"""

from __future__ import annotations

from typing import Any

from mock_portal import methods
from mock_portal.portal.im import dialog_chat_id
from mock_portal.rest.im_views import user_ids
from mock_portal.rest.params import error, flag, param
from mock_portal.rest.registry import Caller, method
from mock_portal.rest.unsimulated import not_simulated

IM_SCOPES = ("im",)


# ----------------------------------------------------------------------------------------- chats
def chat_id(params: dict[str, Any], *, dialog: bool = True) -> int:
    """``CHAT_ID`` (a number), or ``DIALOG_ID`` (``chat<ID>``) where the method takes it."""
    raw = param(params, "CHAT_ID")
    if raw not in (None, ""):
        text = str(raw).strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
        raise error("CHAT_ID_EMPTY", "Chat ID can't be empty")
    if dialog:
        given = param(params, "DIALOG_ID")
        if given not in (None, ""):
            found = dialog_chat_id(str(given))
            if found is None:
                raise error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
            return found
    raise error("CHAT_ID_EMPTY", "Chat ID can't be empty")


@method("im.chat.add", scopes=IM_SCOPES)
def chat_add(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.im_chat_add(caller.user_id, params)


@method("im.chat.get", scopes=IM_SCOPES)
def chat_get(caller: Caller, params: dict[str, Any]) -> Any:
    entity_type, entity_id = param(params, "ENTITY_TYPE"), param(params, "ENTITY_ID")
    if not entity_type or not entity_id:
        return None  # the page: null when the required parameters are missing
    chat = caller.portal.im_chat_by_entity(str(entity_type), str(entity_id))
    return {"ID": chat.id} if chat is not None else None


@method("im.chat.mute", scopes=IM_SCOPES)
def chat_mute(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.im_chat_mute(caller.user_id, chat_id(params), flag(param(params, "MUTE") or "Y"))
    return True


@method("im.chat.setowner", scopes=IM_SCOPES)
def chat_set_owner(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params)
    [owner] = user_ids(params, "USER_ID", code="USER_ID_EMPTY")[:1]
    caller.portal.im_chat_set_owner(caller.user_id, target, owner)
    return True


@method("im.chat.updatecolor", scopes=IM_SCOPES)
def chat_update_color(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params)
    color = param(params, "COLOR")
    if not color:
        raise error("WRONG_COLOR", "This color currently unavailable")
    caller.portal.im_chat_update(caller.user_id, target, color=color)
    return True


@method("im.chat.updatetitle", scopes=IM_SCOPES)
def chat_update_title(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params)
    caller.portal.im_chat_update(caller.user_id, target, title=param(params, "TITLE") or "")
    return True


@method("im.chat.updateavatar", scopes=IM_SCOPES)
def chat_update_avatar(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.im_chat_avatar(caller.user_id, chat_id(params), param(params, "AVATAR"))
    return True


@method("im.chat.leave", scopes=IM_SCOPES)
def chat_leave(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.im_chat_user_remove(caller.user_id, chat_id(params, dialog=False), caller.user_id)
    return True


@method("im.chat.user.add", scopes=IM_SCOPES)
def chat_user_add(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params, dialog=False)
    caller.portal.im_chat_users_add(caller.user_id, target, user_ids(params, "USERS", code="USERS_EMPTY"))
    return True


@method("im.chat.user.list", scopes=IM_SCOPES)
def chat_user_list(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params, dialog=False)
    chat = caller.portal.im_chat_of(target)
    if chat is None or (caller.user_id not in chat.users and chat.type != "OPEN"):
        return []  # the page: an empty list when the caller may not see the members
    return list(chat.users)


@method("im.chat.user.delete", scopes=IM_SCOPES)
def chat_user_delete(caller: Caller, params: dict[str, Any]) -> Any:
    target = chat_id(params, dialog=False)
    [removed] = user_ids(params, "USER_ID", code="USER_ID_EMPTY")[:1]
    caller.portal.im_chat_user_remove(caller.user_id, target, removed)
    return True


# ----------------------------------------------------------------------------------------- messages
def message_id(params: dict[str, Any]) -> int:
    raw = param(params, "MESSAGE_ID")
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit() or int(text) <= 0:
        raise error("MESSAGE_ID_ERROR", "Message ID can't be empty")
    return int(text)


@method("im.message.update", scopes=IM_SCOPES)
def message_update(caller: Caller, params: dict[str, Any]) -> Any:
    text = param(params, "MESSAGE")
    target = message_id(params)
    # an empty text deletes the message; no text leaves it as it is (im-message-update.md)
    caller.portal.im_message_edit(
        caller.user_id, target, None if text is None else str(text), delete=text == ""
    )
    return True


@method("im.message.delete", scopes=IM_SCOPES)
def message_delete(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.im_message_edit(caller.user_id, message_id(params), None, delete=True)
    return True


@method("im.message.like", scopes=IM_SCOPES)
def message_like(caller: Caller, params: dict[str, Any]) -> Any:
    action = str(param(params, "ACTION") or "auto").strip().lower()
    if action not in ("plus", "minus", "auto"):
        action = "auto"
    if not caller.portal.im_message_like(caller.user_id, message_id(params), action):
        raise error("WITHOUT_CHANGES", "Action completed without changes")
    return True


SHARE_TYPES = ("CHAT", "TASK", "POST", "CALEND")


@method("im.message.share", scopes=IM_SCOPES)
def message_share(caller: Caller, params: dict[str, Any]) -> Any:
    target = message_id(params)
    dialog = param(params, "DIALOG_ID")
    if not dialog:
        raise error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    kind = str(param(params, "TYPE") or "").strip().upper()
    if kind not in SHARE_TYPES:
        raise error("PARAMS_ERROR", "Incorrect params")
    message, _ = caller.portal.im_message(target)
    caller.portal.im_dialog(caller.user_id, dialog)  # the caller must reach the dialog (ACCESS_ERROR)
    if kind != "CHAT":
        spec = methods.find("im.message.share")
        assert spec is not None
        raise not_simulated(
            spec,
            f"sharing as {kind} makes a task, a post or an event, which it does not keep; TYPE=CHAT works",
        )
    caller.portal.im_chat_add(caller.user_id, {"TITLE": message.text[:100], "MESSAGE": message.text})
    return True


@method("im.message.command", scopes=IM_SCOPES)
def message_command(caller: Caller, params: dict[str, Any]) -> Any:
    target = message_id(params)
    bot = str(param(params, "BOT_ID") or "").strip()
    if not bot.isdigit() or int(bot) <= 0:
        raise error("BOT_ID_ERROR", "Bot ID can't be empty")
    if not str(param(params, "COMMAND") or "").strip():
        raise error("COMMAND_ERROR", "Command can't be empty")
    caller.portal.im_message(target)
    # a command goes to a chat bot registered on the portal; none is registered in this chat
    raise error("PARAMS_ERROR", "Incorrect params")
