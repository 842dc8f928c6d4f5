"""The messenger's notifications, user statuses and recent searches.

Notifications (``im.notify.*``) go to one user: personal ones carry their author, system ones none. A tag
is unique per app: adding a notification with a tag the user already has from the same app removes the
older ones (https://apidocs.bitrix24.com/api-reference/chats/notifications/im-notify-personal-add.html).
Each user's notifications live in a chat of their own (its id is ``chat_id`` in ``im.notify.get``), drawn
from the portal's chat counter. Statuses (``im.user.status.*``) are ``online``, ``dnd`` or ``away``
(https://apidocs.bitrix24.com/api-reference/chats/users/im-user-status-set.html), idle marks the moment it
started. Recent searches (``im.search.last.*``) are each user's list of dialogs, newest first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import Clock, PortalError

__all__ = ["NOTIFY_CONFIRM", "NOTIFY_FROM", "NOTIFY_SYSTEM", "STATUSES", "Notification", "Notifications"]

NOTIFY_CONFIRM, NOTIFY_FROM, NOTIFY_SYSTEM = 1, 2, 4
"""``notify_type``: a notification with buttons, one from a user, one from the system."""
STATUSES = ("online", "dnd", "away")
"""The statuses ``im.user.status.set`` takes."""
MAX_RECENT_SEARCHES = 20


@dataclass
class Notification:
    id: int
    user_id: int
    author_id: int
    kind: int
    text: str
    at: float
    tag: str = ""
    sub_tag: str = ""
    client_id: str = ""
    read: bool = False


class NotifyStore:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.items: dict[int, Notification] = {}
        self.ids = itertools.count(1)
        self.chats: dict[int, int] = {}  # user -> their notification chat
        self.status: dict[int, str] = {}
        self.idle: dict[int, float] = {}
        self.searches: dict[int, list[str]] = {}


class Notifications(PortalParts):
    """Notifications, statuses and recent searches of :class:`~mock_portal.portal.Portal`."""

    _notify: NotifyStore
    clock: Clock

    # ----------------------------------------------------------------- notifications
    def notify_add(
        self,
        user_id: int,
        text: str,
        *,
        author_id: int,
        kind: int,
        tag: str = "",
        sub_tag: str = "",
        client_id: str = "",
    ) -> int:
        """Notify ``user_id``; return the notification's id."""
        if not isinstance(text, str) or not text.strip():
            raise PortalError("MESSAGE_EMPTY", "Message can't be empty")
        with self._lock:
            store = self._notify
            if tag:
                for old in [n for n in store.items.values() if n.user_id == user_id and n.tag == tag]:
                    if old.client_id == client_id:
                        del store.items[old.id]
            notification = Notification(
                next(store.ids), user_id, author_id, kind, text, self.clock.now(), tag, sub_tag, client_id
            )
            store.items[notification.id] = notification
            self.notify_chat(user_id)
            return notification.id

    def notify_chat(self, user_id: int) -> int:
        """The id of the user's notification chat (made on first use)."""
        with self._lock:
            found = self._notify.chats.get(user_id)
            if found is None:
                found = self._notify.chats[user_id] = next(self._state.chat_ids)
            return found

    def notifications(self, user_id: int) -> list[Notification]:
        """The user's notifications, newest first."""
        with self._lock:
            return sorted(
                (n for n in self._notify.items.values() if n.user_id == user_id), key=lambda n: -n.id
            )

    def notify_mark(self, user_id: int, ids: Iterable[int] | None, read: bool) -> int:
        """Mark the user's notifications ``ids`` (all of them when None) read or unread; how many changed."""
        wanted = None if ids is None else set(ids)
        changed = 0
        with self._lock:
            for n in self._notify.items.values():
                if n.user_id == user_id and (wanted is None or n.id in wanted) and n.read != read:
                    n.read = read
                    changed += 1
        return changed

    def notify_delete(
        self,
        user_id: int,
        *,
        notify_id: int | None = None,
        tag: str = "",
        sub_tag: str = "",
        client_id: str = "",
    ) -> int:
        """Delete the user's notification ``notify_id``, or the app's notifications with ``tag`` /
        ``sub_tag``; how many went."""
        with self._lock:
            items = self._notify.items
            if notify_id is not None:
                gone = [n.id for n in items.values() if n.id == notify_id and n.user_id == user_id]
            else:
                gone = [
                    n.id
                    for n in items.values()
                    if n.client_id == client_id
                    and ((tag and n.tag == tag) or (sub_tag and n.sub_tag == sub_tag))
                ]
            for key in gone:
                del items[key]
            return len(gone)

    def notification(self, user_id: int, notify_id: int) -> Notification:
        with self._lock:
            found = self._notify.items.get(notify_id)
            if found is None or found.user_id != user_id:
                raise PortalError("ID_ERROR", f"Notification {notify_id} is not found")
            return found

    # ----------------------------------------------------------------- statuses
    def user_status(self, user_id: int) -> str:
        with self._lock:
            return self._notify.status.get(user_id, "online")

    def set_user_status(self, user_id: int, status: object) -> None:
        if not isinstance(status, str) or status.strip().lower() not in STATUSES:
            raise PortalError("STATUS_ERROR", "Status is not available")
        with self._lock:
            self._notify.status[user_id] = status.strip().lower()

    def user_idle(self, user_id: int) -> float | None:
        """When the user went idle (None: not idle)."""
        with self._lock:
            return self._notify.idle.get(user_id)

    def set_user_idle(self, user_id: int, *, ago_minutes: int | None) -> None:
        """Start idle (``ago_minutes`` back from now), or end it (None)."""
        with self._lock:
            if ago_minutes is None:
                self._notify.idle.pop(user_id, None)
            else:
                self._notify.idle[user_id] = self.clock.now() - 60 * ago_minutes

    # ----------------------------------------------------------------- recent searches
    def search_last(self, user_id: int) -> list[str]:
        with self._lock:
            return list(self._notify.searches.get(user_id, []))

    def search_last_add(self, user_id: int, dialog_id: str) -> None:
        with self._lock:
            items = [d for d in self._notify.searches.get(user_id, []) if d != dialog_id]
            self._notify.searches[user_id] = [dialog_id, *items][:MAX_RECENT_SEARCHES]

    def search_last_delete(self, user_id: int, dialog_id: str) -> None:
        with self._lock:
            self._notify.searches[user_id] = [
                d for d in self._notify.searches.get(user_id, []) if d != dialog_id
            ]


def describe(notification: Notification) -> dict[str, Any]:
    """A notification as ``im.notify.get`` lists it (the date is formatted by the caller)."""
    return {
        "id": notification.id,
        "author_id": notification.author_id,
        "notify_type": notification.kind,
        "notify_module": "rest",
        "notify_event": "rest_notify",
        "notify_tag": notification.tag,
        "notify_sub_tag": notification.sub_tag,
        "notify_title": "",
        "setting_name": "rest|rest_notify",
        "text": notification.text,
        "notify_read": "Y" if notification.read else "N",
        "params": None,
    }
