"""The messenger: group chats, private dialogs, their messages and what each user has read.

Group chats (``im.chat.add``) and private dialogs (a chat between two users, or a user's own notes when both
are the same user) draw their ids from the portal's one chat counter, as Open Lines chats do, and their
messages are the portal's messages (:attr:`Portal.messages <mock_portal.portal.Portal.messages>`). A dialog is
named by ``DIALOG_ID``: ``chat<ID>`` for a chat, the other user's id for a private dialog
(https://apidocs.bitrix24.com/api-reference/chats/messages/index.html).

Per user the messenger keeps the last message read in each chat (the unread counters of
``im.counters.get`` and ``im.recent.*`` come from it), the chats marked unread, pinned or hidden in the
recent list, and mutes. Rules the docs state are kept: only the owner hands ownership to a member
(``WRONG_REQUEST``), only the author edits or deletes a message (``CANT_EDIT_MESSAGE``), a chat's colour is
one of the sixteen named ones (``WRONG_COLOR``) and changing it to the current one is ``WRONG_REQUEST``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import Clock, Message, PortalError

__all__ = ["COLORS", "ImChat", "ImStore", "Messenger", "dialog_chat_id"]

COLORS: Mapping[str, str] = {
    "RED": "#df532d",
    "GREEN": "#64a513",
    "MINT": "#4ba984",
    "LIGHT_BLUE": "#4ba5c3",
    "DARK_BLUE": "#3e99ce",
    "PURPLE": "#8474c8",
    "AQUA": "#1eb4aa",
    "PINK": "#f76187",
    "LIME": "#58cc47",
    "BROWN": "#ab7761",
    "AZURE": "#29619b",
    "KHAKI": "#728f7a",
    "SAND": "#ba9c7b",
    "MARENGO": "#556574",
    "GRAY": "#909090",
    "GRAPHITE": "#3b506e",
}
"""The chat colours ``im.chat.add`` and ``im.chat.updateColor`` take, and how they show (hex)."""
_COLOR_NAMES = tuple(COLORS)
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF")
MAX_AVATAR_BYTES = 5 * 1024 * 1024


@dataclass
class ImChat:
    """A messenger chat: a group chat (``CHAT`` closed, ``OPEN`` open) or a private dialog (``PRIVATE``)."""

    id: int
    type: str
    title: str
    owner: int
    users: list[int]
    color: str
    created: float
    description: str = ""
    avatar: str = ""
    entity_type: str = ""
    entity_id: str = ""
    managers: set[int] = field(default_factory=set)
    muted: set[int] = field(default_factory=set)

    @property
    def private(self) -> bool:
        return self.type == "PRIVATE"

    @property
    def message_type(self) -> str:
        """``P`` private, ``O`` open, ``C`` closed chat."""
        return {"PRIVATE": "P", "OPEN": "O"}.get(self.type, "C")

    def dialog_id(self, viewer: int) -> str:
        """How ``viewer`` names this chat: ``chat<ID>``, or the other user's id for a private dialog."""
        if not self.private:
            return f"chat{self.id}"
        others = [u for u in self.users if u != viewer]
        return str(others[0] if others else viewer)


class ImStore:
    """The messenger's state (the portal's lock guards it)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.chats: dict[int, ImChat] = {}
        self.private: dict[tuple[int, int], int] = {}
        self.read: dict[tuple[int, int], int] = {}  # (user, chat) -> last message read
        self.marked_unread: set[tuple[int, int]] = set()
        self.pinned: set[tuple[int, int]] = set()
        self.hidden: set[tuple[int, int]] = set()
        self.writing: dict[tuple[int, int], float] = {}
        self.messages_of: dict[int, list[Message]] = {}
        self.folders: dict[int, int] = {}
        self.next_folder = 4001


def dialog_chat_id(dialog_id: object) -> int | None:
    """The chat id in ``chat<ID>``; None for anything else."""
    if isinstance(dialog_id, str) and dialog_id.strip().lower().startswith("chat"):
        raw = dialog_id.strip()[4:]
        return int(raw) if raw.isdigit() and int(raw) > 0 else None
    return None


def _decode_avatar(avatar: object) -> bytes:
    if not isinstance(avatar, str) or not avatar.strip():
        raise PortalError("AVATAR_ERROR", "Avatar incorrect type")
    raw = avatar.strip()
    if raw.startswith("data:") and "," in raw:
        raw = raw.split(",", 1)[1]
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise PortalError("AVATAR_ERROR", "Avatar incorrect type") from None
    if len(data) > MAX_AVATAR_BYTES or not data.startswith(_IMAGE_MAGIC):
        raise PortalError("AVATAR_ERROR", "Avatar incorrect type")
    return data


class Messenger(PortalParts):
    """The messenger operations of :class:`~mock_portal.portal.Portal`."""

    _im: ImStore
    clock: Clock

    # ----------------------------------------------------------------- chats
    def im_chat_add(self, user_id: int, fields: Mapping[str, Any]) -> int:
        """``im.chat.add``: a group chat of the caller and ``USERS``; return its id."""
        upper = {str(k).upper(): v for k, v in fields.items()}
        kind = str(upper.get("TYPE") or "CHAT").strip().upper()
        if kind not in ("CHAT", "OPEN"):
            kind = "CHAT"
        members = [user_id] + [u for u in _ids(upper.get("USERS")) if u != user_id]
        with self._lock:
            chat_id = next(self._state.chat_ids)
            # a chat without a colour gets the next one in turn, and a title "<Colour> chat #<n>", n counting
            # the group chats of that colour (im-chat-add.md: "#COLOR# chat №#NUMBER#")
            number = sum(1 for c in self._im.chats.values() if not c.private)
            wanted = str(upper.get("COLOR") or "").strip().upper()
            color = wanted if wanted in COLORS else _COLOR_NAMES[number % len(_COLOR_NAMES)]
            same = 1 + sum(1 for c in self._im.chats.values() if not c.private and c.color == color)
            title = str(upper.get("TITLE") or "").strip() or f"{color.replace('_', ' ').title()} chat #{same}"
            chat = ImChat(
                id=chat_id,
                type=kind,
                title=title,
                owner=user_id,
                users=list(dict.fromkeys(members)),
                color=color,
                created=self.clock.now(),
                description=str(upper.get("DESCRIPTION") or ""),
                entity_type=str(upper.get("ENTITY_TYPE") or ""),
                entity_id=str(upper.get("ENTITY_ID") or ""),
            )
            if upper.get("AVATAR"):
                _decode_avatar(upper["AVATAR"])
                chat.avatar = f"/upload/im/avatar/chat{chat_id}.png"
            self._im.chats[chat_id] = chat
            message = upper.get("MESSAGE")
            if isinstance(message, str) and message.strip():
                self._post(chat, user_id, message)
            return chat_id

    def im_chat(self, chat_id: object, user_id: int | None = None) -> ImChat:
        """The group chat ``chat_id`` (one ``user_id`` may see, when given), or ``ACCESS_ERROR``."""
        with self._lock:
            chat = self._im.chats.get(chat_id) if isinstance(chat_id, int) else None
            if chat is None or chat.private:
                raise PortalError("ACCESS_ERROR", "Action unavailable", 403)
            if user_id is not None and user_id not in chat.users and chat.type != "OPEN":
                raise PortalError("ACCESS_ERROR", "Action unavailable", 403)
            return chat

    def im_chat_by_entity(self, entity_type: str, entity_id: str) -> ImChat | None:
        with self._lock:
            return next(
                (
                    c
                    for c in self._im.chats.values()
                    if c.entity_type == entity_type and c.entity_id == entity_id and not c.private
                ),
                None,
            )

    def im_chats(self) -> list[ImChat]:
        """Every messenger chat (group chats and private dialogs), oldest first."""
        with self._lock:
            return list(self._im.chats.values())

    def im_chat_update(self, user_id: int, chat_id: int, *, title: Any = None, color: Any = None) -> None:
        """``im.chat.updateTitle`` / ``updateColor``."""
        with self._lock:
            chat = self.im_chat(chat_id, user_id)
            if title is not None:
                if not isinstance(title, str) or not title.strip():
                    raise PortalError("TITLE_EMPTY", "Title can't be empty")
                chat.title = title.strip()
            if color is not None:
                name = str(color).strip().upper()
                if name not in COLORS:
                    raise PortalError("WRONG_COLOR", "This color currently unavailable")
                if name == chat.color:
                    raise PortalError("WRONG_REQUEST", "This color currently set or chat doesn't exist")
                chat.color = name

    def im_chat_avatar(self, user_id: int, chat_id: int, avatar: object) -> None:
        """``im.chat.updateAvatar``: a base64 image (PNG, JPEG, GIF or WebP) of at most 5 MB."""
        with self._lock:
            chat = self.im_chat(chat_id, user_id)
            _decode_avatar(avatar)
            chat.avatar = f"/upload/im/avatar/chat{chat.id}.png"

    def im_chat_set_owner(self, user_id: int, chat_id: int, new_owner: int) -> None:
        with self._lock:
            chat = self.im_chat(chat_id, user_id)
            if chat.owner != user_id or new_owner not in chat.users:
                raise PortalError(
                    "WRONG_REQUEST", "Change owner can only owner and user must be member in chat", 403
                )
            chat.owner = new_owner

    def im_chat_mute(self, user_id: int, chat_id: int, mute: bool) -> None:
        with self._lock:
            chat = self._im.chats.get(chat_id)
            if chat is None or user_id not in chat.users:
                raise PortalError("ACCESS_ERROR", "This chat cannot be muted", 403)
            if mute:
                chat.muted.add(user_id)
            else:
                chat.muted.discard(user_id)

    def im_chat_users_add(self, user_id: int, chat_id: int, users: Iterable[int]) -> None:
        with self._lock:
            chat = self.im_chat(chat_id, user_id)
            if user_id not in chat.users:
                raise PortalError("ACCESS_DENIED_EXTEND", "Insufficient permissions to add participants", 403)
            for new in users:
                if new not in chat.users:
                    chat.users.append(new)

    def im_chat_user_remove(self, user_id: int, chat_id: int, removed: int) -> None:
        """``im.chat.user.delete`` (the owner removes anyone, a member themselves) and ``im.chat.leave``."""
        with self._lock:
            chat = self.im_chat(chat_id)
            if removed not in chat.users:
                if removed == user_id:
                    raise PortalError("ACCESS_DENIED_KICK", "Access denied to kick user from chat", 403)
                raise PortalError("USER_NOT_FOUND", "The specified user is not in the chat")
            if removed != user_id and user_id != chat.owner and user_id not in chat.managers:
                raise PortalError("ACCESS_DENIED_KICK", "Insufficient rights to exclude participants", 403)
            chat.users.remove(removed)
            chat.managers.discard(removed)
            chat.muted.discard(removed)
            if chat.owner == removed:
                chat.owner = chat.users[0] if chat.users else 0

    # ----------------------------------------------------------------- dialogs and messages
    def im_dialog(self, user_id: int, dialog_id: object, *, create: bool = True) -> ImChat:
        """The chat ``DIALOG_ID`` names for ``user_id``: ``chat<ID>`` (a member's group chat) or another
        user's id (the private dialog, opened on first use)."""
        if not isinstance(dialog_id, (str, int)) or isinstance(dialog_id, bool) or not str(dialog_id).strip():
            raise PortalError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
        text = str(dialog_id).strip()
        chat_id = dialog_chat_id(text)
        with self._lock:
            if chat_id is not None:
                return self.im_chat(chat_id, user_id)
            if not text.isdigit() or int(text) <= 0:
                raise PortalError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
            other = int(text)
            pair = (min(user_id, other), max(user_id, other))
            found = self._im.private.get(pair)
            if found is not None:
                return self._im.chats[found]
            if not create:
                raise PortalError("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
            new_id = next(self._state.chat_ids)
            chat = ImChat(
                id=new_id,
                type="PRIVATE",
                title="",
                owner=0,
                users=list(dict.fromkeys(pair)),
                color=_COLOR_NAMES[other % len(_COLOR_NAMES)],
                created=self.clock.now(),
            )
            self._im.chats[new_id] = chat
            self._im.private[pair] = new_id
            return chat

    def im_chat_of(self, chat_id: int) -> ImChat | None:
        """The messenger chat with ``chat_id``, group or private, if any."""
        with self._lock:
            return self._im.chats.get(chat_id)

    def _post(self, chat: ImChat, author_id: int, text: str, client_id: str | None = None) -> Message:
        message = self._state.add_message(chat.id, author_id, text, client_id=client_id)
        message.at = self.clock.now()
        self._im.messages_of.setdefault(chat.id, []).append(message)
        self._im.read[(author_id, chat.id)] = message.id  # a user has read what they wrote
        for member in chat.users:
            self._im.hidden.discard((member, chat.id))
        return message

    def im_post(self, user_id: int, dialog_id: object, text: str, client_id: str | None = None) -> Message:
        """Post ``text`` to the dialog as ``user_id``."""
        with self._lock:
            return self._post(self.im_dialog(user_id, dialog_id), user_id, text, client_id)

    def im_messages(self, chat_id: int) -> list[Message]:
        """The chat's messages, oldest first."""
        with self._lock:
            return list(self._im.messages_of.get(chat_id, []))

    def im_message(self, message_id: object) -> tuple[Message, ImChat]:
        """A messenger message and its chat, or ``MESSAGE_ID_ERROR``."""
        with self._lock:
            message = self._state.message(message_id)
            chat = self._im.chats.get(message.chat_id) if message is not None else None
            if message is None or chat is None:
                raise PortalError("MESSAGE_ID_ERROR", "Message ID can't be empty")
            return message, chat

    def im_message_edit(self, user_id: int, message_id: object, text: str | None, *, delete: bool) -> None:
        """``im.message.update`` / ``im.message.delete``: the author's own message only."""
        with self._lock:
            message, chat = self.im_message(message_id)
            if message.author_id != user_id:
                raise PortalError(
                    "CANT_EDIT_MESSAGE", "Time has expired for modification or you don't have access"
                )
            if delete:
                self._state.remove_message(message)
                self._im.messages_of[chat.id].remove(message)
            elif text is not None:
                message.text = text
                message.edited = True

    def im_message_like(self, user_id: int, message_id: object, action: str) -> bool:
        """``im.message.like`` (``plus``, ``minus`` or ``auto``); whether anything changed."""
        with self._lock:
            message, chat = self.im_message(message_id)
            if user_id not in chat.users and chat.type != "OPEN":
                raise PortalError("ACCESS_ERROR", "Action unavailable", 403)
            liked = user_id in message.likes
            want = not liked if action == "auto" else action == "plus"
            if want == liked:
                return False
            if want:
                message.likes.append(user_id)
            else:
                message.likes.remove(user_id)
            return True

    # ----------------------------------------------------------------- read state and the recent list
    def im_read(self, user_id: int, chat_id: int, up_to: int | None = None) -> int:
        """Mark the chat read up to message ``up_to`` (all of it when None); return the last id read."""
        with self._lock:
            messages = self._im.messages_of.get(chat_id, [])
            last = max((m.id for m in messages if up_to is None or m.id <= up_to), default=0)
            current = self._im.read.get((user_id, chat_id), 0)
            self._im.read[(user_id, chat_id)] = max(current, last)
            self._im.marked_unread.discard((user_id, chat_id))
            return self._im.read[(user_id, chat_id)]

    def im_unread_from(self, user_id: int, chat_id: int, message_id: int) -> None:
        """``im.dialog.unread``: messages from ``message_id`` on are unread again."""
        with self._lock:
            self._im.read[(user_id, chat_id)] = message_id - 1

    def im_unread(self, user_id: int, chat_id: int) -> list[Message]:
        """The chat's messages ``user_id`` has not read (their own excepted)."""
        with self._lock:
            last = self._im.read.get((user_id, chat_id), 0)
            return [
                m for m in self._im.messages_of.get(chat_id, []) if m.id > last and m.author_id != user_id
            ]

    def im_last_read(self, user_id: int, chat_id: int) -> int:
        with self._lock:
            return self._im.read.get((user_id, chat_id), 0)

    def im_flag(self, user_id: int, chat_id: int, flag: str, on: bool) -> None:
        """Set ``pinned``, ``hidden`` or ``marked_unread`` for a user's view of a chat."""
        with self._lock:
            bucket: set[tuple[int, int]] = getattr(self._im, flag)
            if on:
                bucket.add((user_id, chat_id))
            else:
                bucket.discard((user_id, chat_id))

    def im_flags(self, user_id: int, chat_id: int) -> dict[str, bool]:
        with self._lock:
            key = (user_id, chat_id)
            return {
                "pinned": key in self._im.pinned,
                "hidden": key in self._im.hidden,
                "marked_unread": key in self._im.marked_unread,
            }

    def im_writing(self, user_id: int, chat_id: int) -> None:
        """``im.dialog.writing``: the user is typing in the chat (the moment is kept)."""
        with self._lock:
            self._im.writing[(user_id, chat_id)] = self.clock.now()

    def im_folder(self, chat_id: int) -> int:
        """The chat's folder on Drive (made on first use)."""
        with self._lock:
            found = self._im.folders.get(chat_id)
            if found is None:
                found = self._im.folders[chat_id] = self._im.next_folder
                self._im.next_folder += 1
            return found


def _ids(value: Any) -> list[int]:
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            out.append(item)
        elif isinstance(item, str) and item.strip().isdigit() and int(item.strip()) > 0:
            out.append(int(item.strip()))
    return out
