"""What a portal holds (apps, tokens, bindings, connectors, lines, chats, sessions, messages, webhooks) and
the lookups over it.

No lock of its own: :class:`~mock_portal.portal.Portal` holds its lock around every use. The lookups live
here, next to the containers and the indexes that keep them from scanning: a portal's cost per operation must
not grow with the number of chats, sessions or messages it holds. The containers are the portal's public
read-only views (``portal.sessions``...); every change goes through these methods, which keep the indexes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from mock_portal.errors import UsageError
from mock_portal.portal.model import (
    App,
    Binding,
    Chat,
    Connector,
    Line,
    Message,
    PortalError,
    Session,
    Token,
)


class PortalState:
    """The containers and id counters of one portal; :meth:`clear` starts them afresh."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget everything (ids start again from their first values)."""
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_index: dict[str, Token] = {}
        self.bindings: list[Binding] = []
        self.connectors: dict[str, Connector] = {}
        self.lines: dict[int, Line] = {}
        self.chats: dict[int, Chat] = {}
        self.sessions: dict[int, Session] = {}
        self.messages: list[Message] = []
        # indexes: a chat's sessions in the order they were opened, chats by the external client's key
        # and by USER_CODE (the oldest and the newest chat of a key win, as a scan in order would find
        # them), messages by id
        self._sessions_of_chat: dict[int, list[Session]] = {}
        self._chat_by_external: dict[tuple[str, int, str, str], Chat] = {}
        self._chat_by_user_code: dict[str, Chat] = {}
        self._message_by_id: dict[object, Message] = {}  # any key equal to an id finds it, as == did
        self._message_by_external: dict[tuple[int, str], Message] = {}  # (chat, the channel's message id)
        self.chat_names: dict[tuple[str, int, str], str] = {}  # names set before the chat opens
        self.webhooks: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.binding_ids = itertools.count(1)
        self.chat_ids = itertools.count(1001)
        self.session_ids = itertools.count(301)
        self.message_ids = itertools.count(5001)
        self.user_ids = itertools.count(501)
        self.token_ids = itertools.count(1)
        self.lines[1] = Line(1, "Open line")
        self.line_ids = itertools.count(2)

    def require_app(self, client_id: str, domain: str) -> App:
        """The app with ``client_id``, or ``APP_NOT_FOUND`` (404) naming the portal's ``domain``."""
        app = self.apps.get(client_id)
        if app is None:
            raise PortalError("APP_NOT_FOUND", f"no app with client_id {client_id!r} on {domain}", 404)
        return app

    # ----------------------------------------------------------------- bindings
    def bindings_for(self, event: str, *, client_id: str | None = None) -> list[Binding]:
        """The bindings of ``event`` (of one app, if ``client_id`` is given), oldest first."""
        return [
            b for b in self.bindings if b.event == event and (client_id is None or b.client_id == client_id)
        ]

    def bindings_of(self, client_id: str) -> list[Binding]:
        """The app's bindings, oldest first."""
        return [b for b in self.bindings if b.client_id == client_id]

    def drop_bindings(self, keep: Callable[[Binding], bool]) -> int:
        """Keep only the bindings for which ``keep(binding)`` is true; return how many went."""
        before = len(self.bindings)
        self.bindings = [b for b in self.bindings if keep(b)]
        return before - len(self.bindings)

    # ----------------------------------------------------------------- lines, chats, sessions, messages
    def add_line(self, name: str | None = None, *, line_id: int | None = None) -> Line:
        """Create an open line (or return the existing one with ``line_id``)."""
        if line_id is not None and line_id in self.lines:
            return self.lines[line_id]
        new_id = line_id if line_id is not None else next(self.line_ids)
        if not isinstance(new_id, int) or isinstance(new_id, bool) or new_id <= 0:
            raise UsageError(f"a line id must be a positive integer, got {line_id!r}")
        line = Line(new_id, name or f"Open line {new_id}")
        self.lines[new_id] = line
        return line

    def new_chat(
        self,
        line: Line,
        connector_id: str,
        user_id: int | None,
        external_chat_id: str,
        external_user_id: str,
    ) -> Chat:
        """Open a chat on ``line`` (a new external user id is drawn when ``user_id`` is None)."""
        chat = Chat(
            id=next(self.chat_ids),
            line_id=line.id,
            connector_id=connector_id,
            user_id=user_id if user_id is not None else next(self.user_ids),
            external_chat_id=external_chat_id,
            external_user_id=external_user_id,
        )
        self.chats[chat.id] = chat
        key = (chat.connector_id, chat.line_id, chat.external_chat_id, chat.external_user_id)
        self._chat_by_external.setdefault(key, chat)
        self._chat_by_user_code[user_code(chat)] = chat
        return chat

    def find_chat(
        self, connector_id: str, line_id: int, external_chat_id: str, external_user_id: str
    ) -> Chat | None:
        """The chat an external client's messages land in, if it exists."""
        return self._chat_by_external.get((connector_id, line_id, external_chat_id, external_user_id))

    def chat_of_user_code(self, code: str) -> Chat | None:
        """The newest chat whose ``USER_CODE`` (``connector|line|external chat|user``) is ``code``."""
        return self._chat_by_user_code.get(code)

    def new_session(self, chat: Chat) -> Session:
        """Open a session in ``chat``; its ``parent_id`` is the chat's previous session, if any."""
        previous = self.session_of_chat(chat.id)
        session = Session(
            id=next(self.session_ids),
            chat_id=chat.id,
            line_id=chat.line_id,
            connector_id=chat.connector_id,
            user_id=chat.user_id,
            parent_id=previous.id if previous is not None else 0,
        )
        self.sessions[session.id] = session
        self._sessions_of_chat.setdefault(chat.id, []).append(session)
        return session

    def session_of_chat(self, chat_id: int) -> Session | None:
        """The chat's latest session (open or not)."""
        found = self._sessions_of_chat.get(chat_id)
        return found[-1] if found else None

    def open_session_of(self, chat_id: int) -> Session | None:
        """The chat's open session, if any."""
        # the first open session of the chat, as a scan of all sessions in order would find it
        return next((s for s in self._sessions_of_chat.get(chat_id, ()) if not s.closed), None)

    def close_session(self, session: Session) -> None:
        """Mark ``session`` closed."""
        session.closed = True

    def add_message(
        self,
        chat_id: int,
        author_id: int,
        text: str,
        *,
        client_id: str | None = None,
        external_id: str | None = None,
    ) -> Message:
        """Store a new message in a chat (or a private dialog: a negative ``chat_id``)."""
        message = Message(next(self.message_ids), chat_id, author_id, text, client_id, external_id)
        self.messages.append(message)
        self._message_by_id[message.id] = message
        if external_id:
            self._message_by_external[(chat_id, external_id)] = message
        return message

    def external_message(self, chat_id: int, external_id: str) -> Message | None:
        """The chat's message the external channel knows as ``external_id``."""
        return self._message_by_external.get((chat_id, external_id))

    def message(self, message_id: object) -> Message | None:
        """The message with ``message_id``, if it exists."""
        try:
            return self._message_by_id.get(message_id)
        except TypeError:  # unhashable: equal to no id
            return None

    def remove_message(self, message: Message) -> None:
        """Delete ``message`` (a scan of the messages: deleting is rare, posting is not)."""
        self.messages.remove(message)
        del self._message_by_id[message.id]
        if message.external_id:
            self._message_by_external.pop((message.chat_id, message.external_id), None)


def user_code(chat: Chat) -> str:
    """The chat's ``USER_CODE``, as ``imopenlines.dialog.get`` takes it and its ``entity_id`` shows it."""
    return f"{chat.connector_id}|{chat.line_id}|{chat.external_chat_id}|{chat.user_id}"
