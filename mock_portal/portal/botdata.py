"""What the chat-bot events carry beside the bot's own block: ``data[PARAMS]`` and ``data[USER]``, made from
the portal's state as the chat-bot pages and the real captures show them (the ``data[BOT]`` blocks come from
the event table's builder, see :mod:`mock_portal.portal.bots`).

Pure functions over the records they are given: :func:`message_params` (ONIMBOTMESSAGEADD, a private dialog
as the page's "personal chat" example, an open-line chat as ``captures/ONIMBOTMESSAGEADD-*``),
:func:`join_params` (ONIMBOTJOINCHAT, the page's personal example and the open-line captures),
:func:`user_block` and :func:`more_bots` (several bots of one app in one body).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from mock_portal.portal.outbox import Body
from mock_portal.portal.state import user_code

if TYPE_CHECKING:
    from mock_portal.portal.bots import Bot
    from mock_portal.portal.model import Chat, Message, Token

__all__ = ["join_params", "mentions", "message_params", "more_bots", "user_block", "yes_no"]

MENTION: Final = re.compile(r"\[USER=(\d+)\](.*?)\[/USER\]\s*", re.IGNORECASE | re.DOTALL)
"""A mention in a message's text (the page's group-chat example: ``[USER=567]NewBot[/USER]``)."""
_FLAGS_OFF: Final = (
    "PUSH_IMPORTANT",
    "RECENT_SKIP_AUTHOR",
    "CONVERT",
    "SKIP_COMMAND",
    "SKIP_COUNTER_INCREMENTS",
    "SILENT_CONNECTOR",
    "SKIP_CONNECTOR",
    "IMPORTANT_CONNECTOR",
    "NO_SESSION_OL",
)


def yes_no(flag: bool) -> str:
    return "Y" if flag else "N"


def mentions(text: str) -> list[int]:
    """The user (or bot) ids ``text`` mentions, in order."""
    return [int(found) for found, _ in MENTION.findall(text)]


def message_params(
    message: Message,
    bots: Sequence[Bot],
    chat: Chat | None,
    *,
    template_id: str,
    language: str,
    private_chat_id: int = 0,
    line_name: str = "Open line",
    chat_users: int = 2,
) -> dict[str, Any]:
    """ONIMBOTMESSAGEADD's ``data[PARAMS]``: in the author's private dialog with ``bots[0]`` (``chat`` None,
    ``private_chat_id`` the dialog's chat), or in an open-line ``chat``."""
    text, author = message.text, str(message.author_id)
    mentioned = mentions(text)
    head = {"MESSAGE": MENTION.sub("", text).strip() or text, "TEMPLATE_ID": template_id}
    flags = {"PUSH": "Y", **dict.fromkeys(_FLAGS_OFF, "N"), "FAKE_RELATION": "0", "SKIP_URL_INDEX": "N"}
    if chat is None:
        return {
            **head,
            "MESSAGE_TYPE": "P",
            "FROM_USER_ID": author,
            "DIALOG_ID": author,
            "TO_CHAT_ID": str(private_chat_id),
            "AUTHOR_ID": author,
            "SYSTEM": "N",
            "TO_USER_ID": str(bots[0].id),
            **flags,
            "COMMAND_CONTEXT": "TEXTAREA",
            "CHAT_USER_COUNT": "2",
            "PLATFORM_CONTEXT": "web",
            "MESSAGE_ID": str(message.id),
            "CHAT_TYPE": "P",
            "LANGUAGE": language,
        }
    out: dict[str, Any] = {
        **head,
        "MESSAGE_TYPE": "L",
        "FROM_USER_ID": author,
        "DIALOG_ID": chat.dialog_id,
        "TO_CHAT_ID": str(chat.id),
        "AUTHOR_ID": author,
        "SYSTEM": "N",
        "CHAT_ID": str(chat.id),
        "CHAT_TITLE": f"{chat.name or 'Guest'} - {line_name}",
        "CHAT_AUTHOR_ID": "0",
        "CHAT_TYPE": "L",
        "CHAT_AVATAR": "0",
        "CHAT_COLOR": "AZURE",
        "CHAT_ENTITY_TYPE": "LINES",
        "CHAT_ENTITY_ID": user_code(chat),
        "CHAT_ENTITY_DATA_1": "",
        "CHAT_ENTITY_DATA_2": "",
        "CHAT_ENTITY_DATA_3": "",
        "CHAT_EXTRANET": "N",
        "CHAT_PREV_MESSAGE_ID": "0",
        "CHAT_CAN_POST": "MEMBER",
        "RID": author,
        "IS_MANAGER": "N",
        **flags,
        "COMMAND_CONTEXT": "TEXTAREA",
        "CHAT_USER_COUNT": str(chat_users),
    }
    if mentioned:
        out["MENTIONED_LIST"] = {str(m): str(m) for m in mentioned}
    out.update(
        PLATFORM_CONTEXT="web",
        MESSAGE_ORIGINAL=text,
        TO_USER_ID=next((str(b.id) for b in bots if b.id in mentioned), "0"),
        MESSAGE_ID=str(message.id),
        LANGUAGE=language,
    )
    return out


def join_params(bot: Bot, chat: Chat | None, *, user_id: int, language: str) -> dict[str, Any]:
    """ONIMBOTJOINCHAT's ``data[PARAMS]``: ``user_id`` opens a private dialog with the bot (``chat`` None),
    or the bot joins an open-line ``chat`` (``user_id`` 0 when the line put it there)."""
    if chat is None:
        return {
            "CHAT_TYPE": "P",
            "MESSAGE_TYPE": "P",
            "BOT_ID": str(bot.id),
            "USER_ID": str(user_id),
            "TO_USER_ID": str(user_id),
            "FROM_USER_ID": str(bot.id),
            "DIALOG_ID": str(user_id),
            "LANGUAGE": language,
        }
    return {
        "CHAT_TYPE": "L",
        "MESSAGE_TYPE": "L",
        "BOT_ID": str(bot.id),
        "USER_ID": str(user_id),
        "CHAT_ID": str(chat.id),
        "CHAT_AUTHOR_ID": "0",
        "CHAT_ENTITY_TYPE": "LINES",
        "CHAT_ENTITY_ID": user_code(chat),
        "ACCESS_HISTORY": "1",
        "DIALOG_ID": chat.dialog_id,
        "LANGUAGE": language,
    }


def user_block(
    user_id: int, user: Mapping[str, Any], *, is_bot: bool, short: bool = False, external: bool = False
) -> dict[str, Any]:
    """``data[USER]``: the author (ONIMBOTMESSAGEADD) or, ``short``, the user who opened the dialog
    (ONIMBOTJOINCHAT); ``external``: an open line's client, a connector user of the extranet."""
    first, last = str(user.get("NAME") or ""), str(user.get("LAST_NAME") or "")
    block = {
        "ID": str(user_id),
        "NAME": f"{first} {last}".strip(),
        "FIRST_NAME": first,
        "LAST_NAME": last,
        "WORK_POSITION": str(user.get("WORK_POSITION") or ""),
        "GENDER": str(user.get("PERSONAL_GENDER") or "M"),
    }
    if short:
        return block
    return {
        **block,
        "IS_BOT": yes_no(is_bot),
        "IS_CONNECTOR": yes_no(external),
        "IS_NETWORK": "N",
        "IS_EXTRANET": yes_no(external),
    }


def more_bots(body: Body, bots: Sequence[Bot], tokens: Sequence[Token]) -> Body:
    """Add the other bots of one app to ``data[BOT]`` (the page: "the bots to which the message is
    intended"), each block shaped as the first one, with its own tokens."""
    from mock_portal.wire import encode

    payload = dict(body.payload)
    data = dict(payload["data"])
    blocks = dict(data["BOT"])
    template = blocks[str(bots[0].id)]
    for bot, token in zip(bots[1:], tokens[1:], strict=True):
        own = {
            **template,
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "user_id": str(bot.id),
        }
        own["AUTH"] = {key: value for key, value in own.items() if key not in ("AUTH", "BOT_ID", "BOT_CODE")}
        own.update(BOT_ID=str(bot.id), BOT_CODE=bot.code)
        blocks[str(bot.id)] = own
    data["BOT"] = blocks
    payload["data"] = data
    return Body(encode(payload), payload)
