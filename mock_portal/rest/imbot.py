"""The ``imbot.*`` methods over the portal's chat bots (:mod:`mock_portal.portal.bots`), scope ``imbot``:
``imbot.register``, ``imbot.unregister``, ``imbot.bot.list`` and ``imbot.message.add``.

Parameters, answers and error codes follow the method pages
(https://apidocs.bitrix24.com/api-reference/chat-bots/outdated/bots/imbot-register.html and siblings). A bot
belongs to the app that registered it; the mock keeps the bots of applications only, so a webhook's call
(which would name its bot's owner in ``CLIENT_ID``) gets the documented ``ACCESS_DENIED`` without one, and
``WRONG_REQUEST`` or ``BOT_ID_ERROR`` with one, never a bot that would receive nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mock_portal.portal.bots import BOT_EVENTS
from mock_portal.portal.model import PortalError
from mock_portal.rest.params import flag, param
from mock_portal.rest.registry import Caller, method

IMBOT_SCOPES: Final = ("imbot",)
MAX_BLOCK_BYTES: Final = 30 * 1024
"""``ATTACH``, ``KEYBOARD`` and ``MENU`` are refused above 30 KB (imbot-message-add.md)."""


def _app_of(caller: Caller, params: Mapping[str, Any]) -> str:
    """The app whose bots the call is about: the caller's, or for a webhook the ``CLIENT_ID`` it names."""
    if caller.client_id is not None:
        return caller.client_id
    named = param(params, "CLIENT_ID")
    if not isinstance(named, str) or not named.strip():
        raise PortalError("ACCESS_DENIED", "Access denied! Client ID not specified", 403)
    return named.strip()


def _bot_id(params: Mapping[str, Any]) -> int | None:
    """``BOT_ID``: None when absent, else a positive integer (``BOT_ID_ERROR`` otherwise)."""
    raw = param(params, "BOT_ID")
    if raw in (None, "", 0, "0"):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    if isinstance(raw, str) and raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    raise PortalError("BOT_ID_ERROR", "Bot not found")


def _user_id(params: Mapping[str, Any], name: str) -> int:
    raw = param(params, name)
    text = str(raw).strip() if isinstance(raw, (int, str)) and not isinstance(raw, bool) else ""
    return int(text) if text.isdigit() else 0


@method("imbot.register", scopes=IMBOT_SCOPES)
def register(caller: Caller, params: dict[str, Any]) -> Any:
    client_id = _app_of(caller, params)
    if caller.client_id is None:
        raise PortalError(
            "WRONG_REQUEST", "Bot can't be created (the mock portal keeps the bots of applications only)"
        )
    properties = param(params, "PROPERTIES")
    handlers = {name: param(params, name) for name in (*BOT_EVENTS, "EVENT_HANDLER")}
    bot = caller.portal.bot_register(
        client_id,
        code=param(params, "CODE"),
        handlers=handlers,
        properties=properties if isinstance(properties, dict) else {},
        bot_type=param(params, "TYPE") or "B",
        openline=param(params, "OPENLINE") or "N",
    )
    return bot.id


@method("imbot.unregister", scopes=IMBOT_SCOPES)
def unregister(caller: Caller, params: dict[str, Any]) -> Any:
    client_id = _app_of(caller, params)
    bot_id = _bot_id(params)
    if bot_id is None:
        raise PortalError("BOT_ID_ERROR", "Bot not found")
    caller.portal.bot_unregister(client_id, bot_id)
    return True


@method("imbot.bot.list", scopes=IMBOT_SCOPES)
def bot_list(caller: Caller, params: dict[str, Any]) -> Any:
    bots = {str(bot.id): bot.public() for bot in caller.portal.bots()}
    return bots or []  # PHP's empty array


@method("imbot.message.add", scopes=IMBOT_SCOPES)
def message_add(caller: Caller, params: dict[str, Any]) -> Any:
    client_id = _app_of(caller, params)
    bot = caller.portal.bot_of_app(client_id, _bot_id(params))
    text = param(params, "MESSAGE")
    if not isinstance(text, str) or not text.strip():
        raise PortalError("MESSAGE_EMPTY", "Message can't be empty")
    for block in ("ATTACH", "KEYBOARD", "MENU"):
        if len(str(param(params, block) or "").encode("utf-8")) > MAX_BLOCK_BYTES:
            raise PortalError(
                f"{block}_OVERSIZE", f"You have exceeded the maximum allowable size of {block.lower()}"
            )
    from_user, to_user = _user_id(params, "FROM_USER_ID"), _user_id(params, "TO_USER_ID")
    if from_user > 0 and to_user > 0:
        # imbot-message-add.md: a system message between two users; DIALOG_ID is ignored
        message = caller.portal.add_message(client_id, str(to_user), text.strip(), author_id=from_user)
        return message.id
    dialog = param(params, "DIALOG_ID")
    if not isinstance(dialog, (str, int)) or isinstance(dialog, bool) or not str(dialog).strip():
        raise PortalError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    dialog = str(dialog).strip()
    raw = dialog[4:] if dialog.lower().startswith("chat") else ""
    if raw.isdigit() and int(raw) in caller.portal.chats and not flag(param(params, "SKIP_CONNECTOR")):
        # the bot answers in an open-line chat: out through the connector, as an operator's message is
        message, _ = caller.portal.send_operator_message(
            dialog, text.strip(), author_id=bot.id, client_id=client_id
        )
        return message.id
    return caller.portal.add_message(client_id, dialog, text.strip(), author_id=bot.id).id


__all__ = ["IMBOT_SCOPES", "MAX_BLOCK_BYTES"]
