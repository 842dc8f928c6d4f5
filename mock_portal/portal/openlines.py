"""Open Lines on the portal: lines, connectors, chats, sessions, messages, and the events their changes fire.

Starting a session creates the chat and the session and fires OnSessionStart to every bound, installed app
(facts §3: the module source does not filter by connector owner; the docs say it does;
``Portal.session_events_owner_only`` chooses); the ONIMCONNECTOR* events go to the connector's owner only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mock_portal.errors import UsageError
from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import (
    AuthMode,
    Chat,
    Connector,
    Line,
    Message,
    PortalError,
    Session,
    SessionStarted,
)

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt
    from mock_portal.portal.outbox import Planned


class OpenLines(PortalParts):
    """The Open Lines operations of :class:`~mock_portal.portal.Portal`."""

    im_chat_of: Callable[[int], Any]
    im_post: Callable[..., Message]

    # ----------------------------------------------------------------- connectors and lines
    def add_line(self, name: str | None = None, *, line_id: int | None = None) -> Line:
        """Create an open line (or return the existing one with ``line_id``)."""
        with self._lock:
            return self._state.add_line(name, line_id=line_id)

    def register_connector(
        self, client_id: str, connector_id: str, name: str, *, placement_handler: str | None = None
    ) -> Connector:
        """``imconnector.register``: the connector belongs to the calling app."""
        state = self._state
        with self._lock:
            state.require_app(client_id, self.domain)
            existing = state.connectors.get(connector_id)
            if existing is not None and existing.client_id not in (None, client_id):
                raise PortalError("APPLICATION_REGISTRATION_ERROR", "Application registration error", 200)
            connector = Connector(connector_id, name, client_id, placement_handler)
            state.connectors[connector_id] = connector
            return connector

    def unregister_connector(self, client_id: str, connector_id: str) -> None:
        """``imconnector.unregister``: only the owner app can remove its connector."""
        state = self._state
        with self._lock:
            connector = state.connectors.get(connector_id)
            if connector is None or connector.client_id != client_id:
                raise PortalError(
                    "APPLICATION_UNREGISTRATION_ERROR", "Error unregistering the application", 200
                )
            del state.connectors[connector_id]
            for line in state.lines.values():
                line.active_connectors.discard(connector_id)
                line.connector_data.pop(connector_id, None)

    def activate_connector(self, connector_id: str, line_id: int, active: bool) -> Line:
        """``imconnector.activate``: switch a connector on or off on a line (the line is created if new)."""
        with self._lock:
            line = self._state.add_line(line_id=line_id)
            if active:
                line.active_connectors.add(connector_id)
            else:
                line.active_connectors.discard(connector_id)
            return line

    def set_connector_data(self, connector_id: str, line_id: int, data: Mapping[str, Any]) -> Line:
        """``imconnector.connector.data.set``: store the channel's data for the connector on a line."""
        with self._lock:
            line = self._state.add_line(line_id=line_id)
            line.connector_data[connector_id] = dict(data)
            return line

    def deactivate_connector(
        self, connector_id: str, line_id: int, *, timeout: float | None = None
    ) -> list[Attempt]:
        """Switch a connector off on a line (``imconnector.activate`` with ``ACTIVE=0``):
        OnImConnectorStatusDelete to the connector's owner, if it was active there."""
        with self._lock:
            line = self._state.lines.get(line_id)
            was_active = line is not None and connector_id in line.active_connectors
            self.activate_connector(connector_id, line_id, False)
            if not was_active:
                return []
            plan = self._triggers.connector_status_deleted(connector_id, line_id)
        return self._outbox.execute(plan, timeout)

    def delete_line(self, line_id: object, *, timeout: float | None = None) -> list[Attempt]:
        """Delete an open line: OnImConnectorLineDelete to the owner of each connector active on it."""
        state = self._state
        with self._lock:
            line = state.lines.get(line_id) if isinstance(line_id, int) else None
            if line is None:
                raise PortalError("NOT_FOUND_LINE", f"Line not found: {str(line_id)[:60]!r}", 404)
            plan = self._triggers.line_deleted(line)
            del state.lines[line.id]
        return self._outbox.execute(plan, timeout)

    # ----------------------------------------------------------------- chats and sessions
    def start_session(
        self,
        *,
        connector_id: str = "livechat",
        line_id: int | None = None,
        user_id: int | None = None,
        external_chat_id: str | None = None,
        external_user_id: str | None = None,
        shape: str | None = None,
        auth: AuthMode | None = None,
        timeout: float | None = None,
    ) -> SessionStarted:
        """Create a chat and an Open Lines session and fire OnSessionStart (facts §3) to the bound apps."""
        with self._lock:
            line = self._state.add_line(line_id=line_id if line_id is not None else 1)
            chat = self._new_chat(line, connector_id, user_id, external_chat_id, external_user_id)
            session, plan = self._open_session(chat, shape=shape, auth=auth)
        return SessionStarted(session, chat, tuple(self._outbox.execute(plan, timeout)))

    def start_session_in_chat(
        self,
        chat_id: object,
        *,
        shape: str | None = None,
        auth: AuthMode | None = None,
        timeout: float | None = None,
    ) -> SessionStarted:
        """``imopenlines.session.start``: open a new session in an existing Open Lines chat."""
        with self._lock:
            chat = self._state.chats.get(chat_id) if isinstance(chat_id, int) else None
            if chat is None:
                raise PortalError("CHAT_ID", "The specified chat identifier is invalid")
            current = self._state.open_session_of(chat.id)
            if current is not None:
                return SessionStarted(current, chat, (), created=False)
            session, plan = self._open_session(chat, shape=shape, auth=auth)
        return SessionStarted(session, chat, tuple(self._outbox.execute(plan, timeout)))

    def finish_session(
        self, session_id: object, *, auth: AuthMode | None = None, timeout: float | None = None
    ) -> list[Attempt]:
        """Close an Open Lines session: OnSessionFinish to the bound apps, OnImConnectorDialogFinish to the
        connector's owner (facts §3, §4). Closing a closed session fires nothing."""
        state = self._state
        with self._lock:
            session = state.sessions.get(session_id) if isinstance(session_id, int) else None
            if session is None:
                raise PortalError("SESSION_NOT_FOUND", f"Session not found: {str(session_id)[:60]!r}", 404)
            if session.closed:
                return []
            state.close_session(session)
            plan = self._triggers.session_finished(state.chats[session.chat_id], session, auth=auth)
        return self._outbox.execute(plan, timeout)

    def chat(self, chat_id: object) -> Chat:
        """The chat with ``chat_id`` (or ``chat<ID>``), or a PortalError."""
        with self._lock:
            key = chat_id
            if isinstance(key, str):
                raw = key[4:] if key.lower().startswith("chat") else key
                key = int(raw) if raw.isdigit() else None
            chat = self._state.chats.get(key) if isinstance(key, int) else None
            if chat is None:
                raise PortalError("DIALOG_NOT_FOUND", f"Dialog not found: {str(chat_id)[:60]!r}", 400)
            return chat

    def chat_of_user_code(self, code: str) -> Chat | None:
        """The newest chat whose ``USER_CODE`` (``connector|line|external chat id|user id``) is ``code``."""
        with self._lock:
            return self._state.chat_of_user_code(code)

    def session_of_chat(self, chat_id: int) -> Session | None:
        """The chat's latest session (open or not)."""
        with self._lock:
            return self._state.session_of_chat(chat_id)

    def _new_chat(
        self,
        line: Line,
        connector_id: str,
        user_id: int | None,
        external_chat_id: str | None,
        external_user_id: str | None,
    ) -> Chat:
        if not isinstance(connector_id, str) or not connector_id.strip():
            raise UsageError(f"connector_id must be a non-empty string, got {connector_id!r}")
        return self._state.new_chat(
            line,
            connector_id,
            user_id,
            external_chat_id or self._ids.hex(12),
            external_user_id or self._ids.hex(8),
        )

    def _open_session(
        self, chat: Chat, *, shape: str | None, auth: AuthMode | None
    ) -> tuple[Session, list[Planned]]:
        session = self._state.new_session(chat)
        return session, self._triggers.session_started(chat, session, shape=shape, auth=auth)

    # ----------------------------------------------------------------- messages
    def receive_external_message(
        self,
        client_id: str,
        connector_id: str,
        line_id: int,
        *,
        external_user: Mapping[str, Any],
        external_message: Mapping[str, Any],
        external_chat: Mapping[str, Any],
        shape: str | None = None,
        auth: AuthMode | None = None,
        timeout: float | None = None,
    ) -> tuple[Chat, Session, Message, SessionStarted | None]:
        """One element of ``imconnector.send.messages``: find or create the chat, open a session if none.

        OnSessionStart from an external client's message is fired in system mode unless ``auth`` says so
        (facts §2: no Bitrix user caused it).
        """
        state = self._state
        with self._lock:
            connector = state.connectors.get(connector_id)
            if connector is None or connector.client_id != client_id:
                raise PortalError(
                    "IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a suitable provider for the connector"
                )
            line = state.lines.get(line_id)
            if line is None or connector_id not in line.active_connectors:
                raise PortalError("NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist")
            ext_chat_id = str(external_chat.get("id", ""))
            ext_user_id = str(external_user.get("id", ""))
            chat = state.find_chat(connector_id, line_id, ext_chat_id, ext_user_id)
            if chat is None:
                chat = self._new_chat(line, connector_id, None, ext_chat_id, ext_user_id)
                named = state.chat_names.get((connector_id, line_id, ext_chat_id), "")
                chat.name = str(external_chat.get("name", "") or "") or named
            message = state.add_message(
                chat.id,
                chat.user_id,
                str(external_message.get("text", "") or ""),
                external_id=str(external_message.get("id", "") or "") or None,
            )
            session = state.open_session_of(chat.id)
            started: SessionStarted | None = None
            plan: list[Planned] = []
            if session is None:
                session, plan = self._open_session(chat, shape=shape, auth=auth or "system")
                started = SessionStarted(session, chat, ())
        if started is not None:
            started = replace(started, attempts=tuple(self._outbox.execute(plan, timeout)))
        return chat, session, message, started

    def _connector_line(self, client_id: str, connector_id: str, line_id: int) -> None:
        connector = self._state.connectors.get(connector_id)
        if connector is None or connector.client_id != client_id:
            raise PortalError(
                "IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a suitable provider for the connector"
            )
        line = self._state.lines.get(line_id)
        if line is None or connector_id not in line.active_connectors:
            raise PortalError("NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist")

    def change_external_message(
        self,
        client_id: str,
        connector_id: str,
        line_id: int,
        *,
        external_user_id: str,
        external_chat_id: str,
        external_message_id: str,
        text: str | None,
        delete: bool = False,
    ) -> Message | None:
        """``imconnector.update.messages`` / ``delete.messages``: the client edited or deleted a message in
        the channel. The message the channel knows by that id changes (None: the chat or message is not
        there); no event goes out, the change comes from the connector itself."""
        state = self._state
        with self._lock:
            self._connector_line(client_id, connector_id, line_id)
            chat = state.find_chat(connector_id, line_id, external_chat_id, external_user_id)
            message = state.external_message(chat.id, external_message_id) if chat is not None else None
            if message is None:
                return None
            if delete:
                state.remove_message(message)
            elif text is not None:
                message.text = text
                message.edited = True
            return message

    def name_external_chat(
        self, client_id: str, connector_id: str, line_id: int, external_chat_id: str, name: str
    ) -> int:
        """``imconnector.chat.name.set``: rename the line's chats of that external chat, or keep the name for
        the chat the channel's first message opens; return how many chats were renamed."""
        state = self._state
        with self._lock:
            self._connector_line(client_id, connector_id, line_id)
            chats = [
                c
                for c in state.chats.values()
                if (c.connector_id, c.line_id, c.external_chat_id)
                == (connector_id, line_id, external_chat_id)
            ]
            for chat in chats:
                chat.name = name
            state.chat_names[(connector_id, line_id, external_chat_id)] = name
            return len(chats)

    def add_message(
        self, client_id: str | None, dialog_id: object, text: object, *, author_id: int = 1
    ) -> Message:
        """``im.message.add``: post to ``chat<ID>`` (an Open Lines chat, or a messenger chat the author is in)
        or to a user's private dialog (a number)."""
        if not isinstance(dialog_id, str) or not dialog_id.strip():
            raise PortalError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
        if not isinstance(text, str) or not text.strip():
            raise PortalError("MESSAGE_EMPTY", "Message can't be empty")
        with self._lock:
            dialog = dialog_id.strip()
            if dialog.lower().startswith("chat"):
                raw = dialog[4:]
                chat = self._state.chats.get(int(raw)) if raw.isdigit() else None
                if chat is not None:
                    return self._state.add_message(chat.id, author_id, text, client_id=client_id)
                if not raw.isdigit() or self.im_chat_of(int(raw)) is None:
                    raise PortalError("ACCESS_ERROR", f"You don't have access to this chat: {dialog[:60]!r}")
            elif not (dialog.isdigit() and int(dialog) > 0):
                raise PortalError("DIALOG_ID_EMPTY", f"Dialog ID is not valid: {dialog[:60]!r}")
            # a messenger chat or a private dialog with a user
            return self.im_post(author_id, dialog, text, client_id)

    def send_operator_message(
        self,
        chat_id: object,
        text: object,
        *,
        author_id: int = 1,
        client_id: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Message, list[Attempt]]:
        """An operator writes in an Open Lines chat: OnOpenLineMessageAdd to the bound apps, and the message
        goes out through the chat's connector as OnImConnectorMessageAdd, to the connector's owner only."""
        chat = self.chat(chat_id)
        message = self.add_message(client_id, chat.dialog_id, text, author_id=author_id)
        with self._lock:
            plan = self._triggers.message_changed(chat, message, change="ADD")
        return message, self._outbox.execute(plan, timeout)

    def change_message(
        self,
        message_id: object,
        text: str | None = None,
        *,
        delete: bool = False,
        timeout: float | None = None,
    ) -> list[Attempt]:
        """Edit (``text``) or delete a message of an Open Lines chat: OnOpenLineMessageUpdate/-Delete to the
        bound apps, OnImConnectorMessageUpdate/-Delete to the connector's owner."""
        state = self._state
        with self._lock:
            message = state.message(message_id)
            if message is None or message.chat_id not in state.chats:
                raise PortalError("MESSAGE_NOT_FOUND", f"Message not found: {str(message_id)[:60]!r}", 404)
            chat = state.chats[message.chat_id]
            if delete:
                state.remove_message(message)
            elif text is not None:
                message.text = text
            plan = self._triggers.message_changed(chat, message, change="DELETE" if delete else "UPDATE")
        return self._outbox.execute(plan, timeout)
