"""The portal's chat bots, and the events a bot's app receives: ONIMBOTMESSAGEADD, ONIMBOTJOINCHAT and
ONIMBOTDELETE.

``imbot.register`` makes a bot: a user of the portal (its id is a user id) owned by the app that registered
it, with the handler URLs of its events. As the portal does, registering binds those URLs to the app
(``event.bind`` rows the app sees in ``event.get``), so the bot's events travel the normal path: planned under
the portal's lock by the app's bindings, sent by the outbox (queued when a REST call raised them), recorded,
dropped before installFinish (facts §1, §5). They go to the bot's own app only ("who can subscribe: a user of
the application that registered the chat bot", the chat-bot pages).

Their bodies come from the event table's builder (:mod:`mock_portal.derived`, kind ``chat-bot``): the
top-level ``auth`` of the user who wrote (user mode) or none (system mode, an external client of an open
line: facts §2), and ``data[BOT][<bot id>]`` with a fresh token pair of the bot itself, repeated under
``AUTH``, with ``BOT_ID`` and ``BOT_CODE`` (the chat-bot pages and the real captures). ``data[PARAMS]`` and
``data[USER]`` are laid over it from the portal's state: the message, its dialog, its author.

Who sees a message (imbot-register.md, ``TYPE``): every bot of a private dialog with the author; in a chat,
a bot the message mentions (``[USER=<bot id>]``), a supervisor bot (``S``) always, and an open-line bot
(``TYPE=O`` or ``OPENLINE=Y``) in an open-line chat. Messages written by bots reach no bot.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.botdata import join_params, mentions, message_params, more_bots, user_block, yes_no
from mock_portal.portal.model import (
    AUTH_MODES,
    DROP_REASON_NOT_INSTALLED,
    App,
    AuthMode,
    Binding,
    Chat,
    Message,
    PortalError,
    check_handler_url,
)
from mock_portal.portal.outbox import Planned
from mock_portal.portal.users import new_user

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt

__all__ = ["BOT_EVENTS", "BOT_TYPES", "MAX_BOTS_PER_APP", "Bot", "BotStore", "Bots"]

BOT_TYPES: Final = ("B", "O", "H", "S")
"""Chat bot, open-line bot, "human" bot, supervisor (imbot-register.md, ``TYPE``)."""
MAX_BOTS_PER_APP: Final = 5
BOT_EVENTS: Final = {
    "EVENT_MESSAGE_ADD": "ONIMBOTMESSAGEADD",
    "EVENT_MESSAGE_UPDATE": "ONIMBOTMESSAGEUPDATE",
    "EVENT_MESSAGE_DELETE": "ONIMBOTMESSAGEDELETE",
    "EVENT_WELCOME_MESSAGE": "ONIMBOTJOINCHAT",
    "EVENT_BOT_DELETE": "ONIMBOTDELETE",
}
"""``imbot.register``'s handler parameters and the events they bind."""
_REQUIRED_HANDLERS: Final = ("EVENT_MESSAGE_ADD", "EVENT_WELCOME_MESSAGE", "EVENT_BOT_DELETE")


@dataclass
class Bot:
    """A chat bot: its user id, code, owner app, type and the handler URLs ``imbot.register`` was given."""

    id: int
    code: str
    client_id: str
    type: str
    openline: bool
    name: str
    last_name: str = ""
    work_position: str = ""
    gender: str = ""
    handlers: dict[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.name} {self.last_name}".strip()

    def public(self) -> dict[str, Any]:
        """The bot as ``imbot.bot.list`` shows it."""
        return {"ID": self.id, "NAME": self.full_name, "CODE": self.code, "OPENLINE": yes_no(self.openline)}

    def sees(self, text: str, *, open_line: bool) -> bool:
        """Whether a message with ``text`` in a chat (not a private dialog) reaches this bot."""
        if self.type == "S" or (open_line and (self.type == "O" or self.openline)):
            return True
        return self.id in mentions(text)


class BotStore:
    """The bots by id, the chats each was added to, and the private chat of each (bot, user) pair."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every bot."""
        self.bots: dict[int, Bot] = {}
        self.members: dict[int, set[int]] = {}  # chat id -> bot ids in it
        self.private_chats: dict[tuple[int, int], int] = {}  # (bot id, user id) -> chat id
        self._private_ids = itertools.count(100_001)

    def private_chat(self, bot_id: int, user_id: int) -> int:
        """The id of the private chat between a bot and a user (made on first use)."""
        key = (bot_id, user_id)
        if key not in self.private_chats:
            self.private_chats[key] = next(self._private_ids)
        return self.private_chats[key]


class Bots(PortalParts):
    """The chat-bot operations of :class:`~mock_portal.portal.Portal` (for :mod:`mock_portal.rest.imbot`)."""

    _bots: BotStore
    _users: dict[int, dict[str, Any]]
    language_id: str

    # ----------------------------------------------------------------- registration
    def bot_register(
        self,
        client_id: str,
        *,
        code: object,
        handlers: Mapping[str, object],
        properties: Mapping[str, Any],
        bot_type: object = "B",
        openline: object = "N",
    ) -> Bot:
        """``imbot.register``: check the parameters as the page lists its errors, make the bot a user, bind
        its handler URLs to the app. Nothing changes when it is refused."""
        if not isinstance(code, str) or not code.strip():
            raise PortalError("CODE_ERROR", "Bot code isn't specified")
        kind = str(bot_type or "B").strip().upper()
        if kind not in BOT_TYPES:
            raise PortalError("WRONG_REQUEST", "Bot can't be created")
        name = str(properties.get("NAME") or "").strip()
        last_name = str(properties.get("LAST_NAME") or "").strip()
        if not name and not last_name:
            raise PortalError("NAME_ERROR", "Bot name isn't specified")
        urls: dict[str, str] = {}
        for param, event in BOT_EVENTS.items():
            raw = handlers.get(param) or handlers.get("EVENT_HANDLER")
            if raw in (None, ""):
                if param in _REQUIRED_HANDLERS:
                    what = {"EVENT_MESSAGE_ADD": "Message add", "EVENT_WELCOME_MESSAGE": "Welcome message"}
                    label = what.get(param, "Bot delete")
                    raise PortalError(f"{param}_ERROR", f'Handler for "{label}" event isn\'t specified')
                continue
            try:
                urls[event] = check_handler_url(raw)
            except PortalError:
                raise PortalError(f"{param}_ERROR", "Wrong handler URL") from None
        with_openline = kind == "O" or str(openline).strip().upper() in ("Y", "1", "TRUE")
        if kind in ("B", "H") and not with_openline:
            # imbot-register.md: the update and delete handlers are ignored for B/H bots without open lines
            urls.pop("ONIMBOTMESSAGEUPDATE", None)
            urls.pop("ONIMBOTMESSAGEDELETE", None)
        with self._lock:
            app = self._state.require_app(client_id, self.domain)
            owned = [b for b in self._bots.bots.values() if b.client_id == app.client_id]
            if len(owned) >= MAX_BOTS_PER_APP:
                raise PortalError(
                    "MAX_COUNT_ERROR",
                    f"Has reached the maximum number of bots for application (max: {MAX_BOTS_PER_APP})",
                )
            if any(b.code == code.strip() for b in self._bots.bots.values() if self._live(b.id)):
                raise PortalError("WRONG_REQUEST", "Bot can't be created")  # CODE is unique in the portal
            bot = Bot(
                id=next(self._state.user_ids),  # a bot is a user of the portal
                code=code.strip(),
                client_id=app.client_id,
                type=kind,
                openline=with_openline,
                name=name,
                last_name=last_name,
                work_position=str(properties.get("WORK_POSITION") or ""),
                gender=str(properties.get("PERSONAL_GENDER") or ""),
                handlers=urls,
            )
            self._bots.bots[bot.id] = bot
            self._users[bot.id] = {
                **new_user(bot.id),
                "NAME": name,
                "LAST_NAME": last_name,
                "EMAIL": str(properties.get("EMAIL") or ""),
                "WORK_POSITION": bot.work_position,
                "PERSONAL_GENDER": bot.gender,
                "USER_TYPE": "bot",
            }
            for event, url in urls.items():
                self._bind_bot_event(app, event, url)
            return bot

    def _bind_bot_event(self, app: App, event: str, url: str) -> None:
        state = self._state
        for existing in state.bindings_for(event, client_id=app.client_id):
            if existing.handler == url and existing.event_type == "online":
                return  # a second bot of the app shares the first one's handlers (imbot-register.md)
        state.bindings.append(Binding(next(state.binding_ids), app.client_id, event, url))

    def bot_unregister(
        self, client_id: str | None, bot_id: int, *, timeout: float | None = None
    ) -> list[Attempt]:
        """``imbot.unregister``: ONIMBOTDELETE to the bot's app, then the bot is gone (and, with the app's
        last bot, the bindings its registration made)."""
        with self._lock:
            bot = self._owned_bot(client_id, bot_id)
            app = self._state.require_app(bot.client_id, self.domain)
            data = {"BOT_ID": str(bot.id), "BOT_CODE": bot.code}
            plan = self._plan_bot_event(app, "ONIMBOTDELETE", [], auth="user", user_id=app.user_id, data=data)
            del self._bots.bots[bot.id]
            self._users.pop(bot.id, None)
            for members in self._bots.members.values():
                members.discard(bot.id)
            if not any(b.client_id == app.client_id for b in self._bots.bots.values()):
                urls = {(event, url) for event, url in bot.handlers.items()}
                self._state.drop_bindings(
                    lambda b: not (b.client_id == app.client_id and (b.event, b.handler) in urls)
                )
        return self._outbox.execute(plan, timeout)

    def bots(self) -> list[Bot]:
        """Every bot, oldest first."""
        with self._lock:
            return [bot for bot in self._bots.bots.values() if self._live(bot.id)]

    def bot_of_app(self, client_id: str | None, bot_id: int | None) -> Bot:
        """The bot ``bot_id`` of the app (``BOT_ID_ERROR``, ``APP_ID_ERROR``), or the app's first bot."""
        with self._lock:
            if bot_id is None:
                mine = (b for b in self._bots.bots.values() if b.client_id == client_id and self._live(b.id))
                first = next(mine, None)
                if first is None:
                    raise PortalError("BOT_ID_ERROR", "Bot not found")
                return first
            return self._owned_bot(client_id, bot_id)

    def _owned_bot(self, client_id: str | None, bot_id: int) -> Bot:
        bot = self._live(bot_id)
        if bot is None:
            raise PortalError("BOT_ID_ERROR", "Bot not found")
        if bot.client_id != client_id:
            raise PortalError("APP_ID_ERROR", "Bot was installed by another REST application")
        return bot

    def _live(self, bot_id: int) -> Bot | None:
        # a bot goes with its app: once the app is uninstalled, the bot is no more (nothing reaches it)
        bot = self._bots.bots.get(bot_id)
        app = self._state.apps.get(bot.client_id) if bot is not None else None
        return bot if app is not None and app.active else None

    def _directory_user(self, user_id: int) -> dict[str, Any]:
        # the user joins the portal's directory on first use, as a caller does (mock_portal.portal.users)
        return self._users.setdefault(user_id, new_user(user_id))

    def _bot(self, bot_id: object) -> Bot:
        bot = self._live(bot_id) if isinstance(bot_id, int) else None
        if bot is None:
            raise PortalError("BOT_ID_ERROR", f"Bot not found: {str(bot_id)[:20]!r}", 404)
        return bot

    # ----------------------------------------------------------------- chats
    def bot_join(
        self,
        bot_id: int,
        *,
        chat_id: object = None,
        user_id: int | None = None,
        auth: AuthMode | None = None,
        timeout: float | None = None,
    ) -> list[Attempt]:
        """A user opens a private dialog with the bot (no ``chat_id``), or the bot is added to an open-line
        chat: ONIMBOTJOINCHAT to the bot's app, as the page and the real captures show each."""
        with self._lock:
            bot = self._bot(bot_id)
            app = self._state.require_app(bot.client_id, self.domain)
            mode: AuthMode = auth or "user"
            chat: Chat | None = None
            if chat_id is None:
                reader = user_id or 1
                self._bots.private_chat(bot.id, reader)
                user: dict[str, Any] | None = self._user_block(reader, short=True)
            else:
                chat = self._state.chats.get(chat_id) if isinstance(chat_id, int) else None
                if chat is None:
                    raise PortalError("DIALOG_NOT_FOUND", f"Dialog not found: {str(chat_id)[:60]!r}", 400)
                self._bots.members.setdefault(chat.id, set()).add(bot.id)
                reader = user_id or app.user_id
                user = None
            opened_by = reader if chat is None else (user_id or 0)
            params = join_params(bot, chat, user_id=opened_by, language=self.language_id)
            data = {"PARAMS": params, "USER": user}  # no USER in an open-line chat (the captures)
            plan = self._plan_bot_event(app, "ONIMBOTJOINCHAT", [bot], auth=mode, user_id=reader, data=data)
        return self._outbox.execute(plan, timeout)

    def notify_bots(
        self,
        dialog_id: str,
        message: Message,
        *,
        auth: AuthMode | None = None,
        external: bool = False,
        timeout: float | None = None,
    ) -> list[Attempt]:
        """A message was posted in ``dialog_id``: ONIMBOTMESSAGEADD to the app of each bot that sees it, all
        of one app's bots in one body. ``external``: the author is an open line's external client (system
        mode unless ``auth`` says otherwise: facts §2)."""
        with self._lock:
            author = message.author_id
            if author in self._bots.bots:
                return []  # a bot's own message reaches no bot
            dialog = dialog_id.strip()
            chat: Chat | None = None
            if dialog.lower().startswith("chat"):
                chat = self._state.chats.get(int(dialog[4:])) if dialog[4:].isdigit() else None
                if chat is None:
                    return []
                members = self._bots.members.get(chat.id, set())
                found = [bot for bot in map(self._live, sorted(members)) if bot is not None]
                readers = [b for b in found if b.sees(message.text, open_line=True)]
            else:
                bot = self._live(int(dialog)) if dialog.isdigit() else None
                readers = [bot] if bot is not None else []
            mode: AuthMode = auth or ("system" if external else "user")
            plan: list[Planned] = []
            for client_id in dict.fromkeys(b.client_id for b in readers):
                mine = [b for b in readers if b.client_id == client_id]
                data = {
                    "PARAMS": self._message_params(message, mine, chat),
                    "USER": self._user_block(author, external=external),
                }
                app = self._state.apps[client_id]
                plan += self._plan_bot_event(
                    app, "ONIMBOTMESSAGEADD", mine, auth=mode, user_id=author, data=data
                )
        return self._outbox.execute(plan, timeout)

    def user_writes_to_bot(
        self,
        bot_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_id: int | None = None,
        auth: AuthMode | None = None,
        timeout: float | None = None,
    ) -> tuple[Message, list[Attempt]]:
        """A user writes to the bot: in their private dialog (``user_id``, default the administrator), or in
        an open-line chat the bot was added to (``chat_id``), by the chat's client, or by an operator when
        ``user_id`` is given (an operator's message also goes out through the connector). Returns the message
        and every attempt it caused, ONIMBOTMESSAGEADD among them."""
        if not isinstance(text, str) or not text.strip():
            raise PortalError("MESSAGE_EMPTY", "Message can't be empty")
        with self._lock:
            bot = self._bot(bot_id)
            if chat_id is not None and bot.id not in self._bots.members.get(chat_id, set()):
                raise PortalError(
                    "BOT_NOT_IN_CHAT", f"bot {bot.id} is not in chat {chat_id} (add it with /join first)"
                )
            client = self._state.chats[chat_id].user_id if chat_id is not None else None
        attempts: list[Attempt] = []
        if chat_id is None:
            writer = user_id or 1
            self._directory_user(writer)
            dialog = str(bot.id)
            message = self.add_message(None, dialog, text, author_id=writer)
        elif user_id is not None:
            dialog = f"chat{chat_id}"
            message, attempts = self.send_operator_message(dialog, text, author_id=user_id, timeout=timeout)
        else:
            dialog = f"chat{chat_id}"
            message = self.add_message(None, dialog, text, author_id=client or 0)
        external = chat_id is not None and user_id is None
        attempts += self.notify_bots(dialog, message, auth=auth, external=external, timeout=timeout)
        return message, attempts

    if TYPE_CHECKING:  # from OpenLines, which Portal puts beside this part

        def add_message(
            self, client_id: str | None, dialog_id: object, text: object, *, author_id: int = 1
        ) -> Message: ...

        def send_operator_message(
            self,
            chat_id: object,
            text: object,
            *,
            author_id: int = 1,
            client_id: str | None = None,
            timeout: float | None = None,
        ) -> tuple[Message, list[Attempt]]: ...

    # ----------------------------------------------------------------- bodies
    def _message_params(self, message: Message, bots: list[Bot], chat: Chat | None) -> dict[str, Any]:
        template_id = str(uuid.UUID(int=self._ids.randrange(2**128), version=4))
        if chat is None:
            private = self._bots.private_chat(bots[0].id, message.author_id)
            return message_params(
                message,
                bots,
                None,
                template_id=template_id,
                language=self.language_id,
                private_chat_id=private,
            )
        line = self._state.lines.get(chat.line_id)
        return message_params(
            message,
            bots,
            chat,
            template_id=template_id,
            language=self.language_id,
            line_name=line.name if line else "Open line",
            chat_users=len(self._bots.members.get(chat.id, ())) + 2,  # the client, an operator, the bots
        )

    def _user_block(self, user_id: int, *, short: bool = False, external: bool = False) -> dict[str, Any]:
        user = self._directory_user(user_id)
        return user_block(user_id, user, is_bot=user_id in self._bots.bots, short=short, external=external)

    def _plan_bot_event(
        self,
        app: App,
        event: str,
        bots: list[Bot],
        *,
        auth: AuthMode,
        user_id: int,
        data: Mapping[str, Any | None],
    ) -> list[Planned]:
        """``event`` to the app's bindings of it: the table's builder makes the body (``data[BOT]`` with a
        fresh token pair of each bot), the portal's ``data`` laid over it (a None value removes its key)."""
        from mock_portal.events import DELETE

        if auth not in AUTH_MODES:
            raise PortalError("ERROR_ARGUMENT", f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        plan: list[Planned] = []
        if not app.active:
            return plan
        for binding in self._state.bindings_for(event, client_id=app.client_id):
            token = self._tokens.issue(app, user_id=binding.auth_type or user_id, refresh=False)
            bot_tokens = [self._tokens.issue(app, user_id=bot.id) for bot in bots]
            context: dict[str, Any] = {"expires": token.expires, "expires_in": token.expires_in}
            if bots:
                first, first_token = bots[0], bot_tokens[0]
                context.update(
                    bot_id=first.id,
                    bot_code=first.code,
                    bot_access_token=first_token.access_token,
                    bot_refresh_token=first_token.refresh_token,
                    client_id=app.client_id,
                )
            overrides = {f"data.{key}": DELETE if value is None else value for key, value in data.items()}
            body = self._triggers.built_event(
                event,
                app,
                binding,
                shape=None,
                auth=auth,
                token=token if auth == "user" else None,
                context=context,
                overrides=overrides,
            )
            if len(bots) > 1:
                body = more_bots(body, bots, bot_tokens)
            drop = None if app.installed else DROP_REASON_NOT_INSTALLED
            plan.append(Planned(event, binding.handler, body, app.client_id, drop))
        return plan
