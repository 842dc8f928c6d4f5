"""The portal's model: its errors, clock, and the records it keeps (apps, tokens, bindings, chats...).

Plain dataclasses with no behaviour beyond their JSON views; :class:`~mock_portal.portal.state.PortalState`
holds them and the collaborators of :class:`~mock_portal.portal.Portal` change them under the portal's lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt

AuthMode = Literal["user", "system"]
AUTH_MODES: tuple[str, ...] = ("user", "system")

DEFAULT_SCOPES: tuple[str, ...] = ("imopenlines", "imconnector", "im")
"""Scopes an app gets when none are asked for: what an Open Lines connector app needs."""


def event_scopes(event: str) -> tuple[str, ...] | None:
    """The scopes that let an app bind ``event`` (upper case), from the event table: the scope its doc page
    names (``()``: the basic scope, any app may bind it), or None for an event the docs do not have.

    ``event.bind`` refuses an event outside the app's scopes as it refuses an unknown one (facts §5,
    ``ERROR_EVENT_NOT_FOUND``). The ONIMCONNECTOR* events need ``imconnector``: each of their seven pages
    says so (RU and EN); only the section's overview lists ``imconnector, imopenlines``, the scopes of the
    connector section as a whole.
    """
    from mock_portal import eventtable
    from mock_portal.errors import UnknownNameError

    try:
        return eventtable.entry(event).scope
    except UnknownNameError:
        return None


class _EventScopes(Mapping[str, tuple[str, ...]]):
    """Every documented event and its scopes (:func:`event_scopes`), read from the event table when used."""

    def _rows(self) -> dict[str, tuple[str, ...]]:
        from mock_portal import eventtable

        return {entry.name: entry.scope for entry in eventtable.entries()}

    def __getitem__(self, event: str) -> tuple[str, ...]:
        scopes = event_scopes(event) if isinstance(event, str) and event == event.strip().upper() else None
        if scopes is None:
            raise KeyError(event)
        return scopes

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())


EVENT_SCOPES: Mapping[str, tuple[str, ...]] = _EventScopes()
"""The scopes of every documented event, by code, from the event table (``()``: the basic scope)."""

# events whose delivery the module source limits to the app that registered the connector (facts §3)
OWNER_FILTERED_PREFIX = "ONIMCONNECTOR"
# events the docs (not the source) limit to the connector's owner; see Portal.session_events_owner_only
SESSION_EVENTS = frozenset({"ONSESSIONSTART", "ONSESSIONFINISH"})

DEFAULT_SERVER_ENDPOINT = "https://oauth.bitrix.info/rest/"
DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"
TOKEN_LIFETIME = 3600  # facts §5: expires_in 3600 s
DROP_REASON_NOT_INSTALLED = "application installation is not finished (installFinish not called)"


class PortalError(UsageError):
    """A request the portal refuses, carrying Bitrix's error ``code``, its description and HTTP ``status``.

    The REST side renders it as Bitrix's error envelope ``{"error": code, "error_description": ...}``.
    """

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        self.code = code
        self.description = redact_text(description)
        self.status = status
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.code}: {self.description}"


class Clock:
    """The portal's time source: wall time by default, frozen at ``start`` if given; both can be advanced.

    Tests advance it to expire tokens instead of sleeping; the control API exposes :meth:`advance` too.
    """

    def __init__(self, start: float | None = None) -> None:
        self._start = start
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current time in unix seconds."""
        with self._lock:
            base = time.time() if self._start is None else self._start
            return base + self._offset

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (never backwards); return the new time."""
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < 1e12:
            raise UsageError(f"the clock only moves forward, by a finite amount: got {seconds!r} seconds")
        with self._lock:
            self._offset += float(seconds)
        return self.now()


@dataclass
class App:
    """An application installed (or being installed) on the portal."""

    client_id: str
    client_secret: str
    application_token: str
    scopes: tuple[str, ...]
    ui: bool
    install_url: str | None
    installed: bool = False
    active: bool = True
    version: int = 1
    user_id: int = 1
    code: str = ""

    def public(self) -> dict[str, Any]:
        """A JSON view without secrets."""
        return {
            "client_id": self.client_id,
            "code": self.code,
            "scopes": list(self.scopes),
            "ui": self.ui,
            "install_url": self.install_url,
            "installed": self.installed,
            "active": self.active,
            "version": self.version,
        }


@dataclass
class Token:
    """An OAuth access token (and the refresh token issued with it) for one app and user."""

    access_token: str
    refresh_token: str | None
    client_id: str
    user_id: int
    scopes: tuple[str, ...]
    issued_at: float
    expires_in: int = TOKEN_LIFETIME
    revoked: bool = False
    id: int = 0
    """A serial number, unique in its portal and not secret: REST calls record it as ``token_id``."""

    @property
    def expires(self) -> int:
        """Unix time at which the access token stops working."""
        return int(self.issued_at) + self.expires_in


@dataclass
class Binding:
    """One ``event.bind`` row: the id Bitrix sends as ``event_handler_id`` (facts §1)."""

    id: int
    client_id: str
    event: str
    handler: str
    auth_type: int = 0
    event_type: str = "online"
    auth_connector: str = ""  # offline bindings: the source key whose own changes are not queued
    options: dict[str, Any] = field(default_factory=dict)  # ONOFFLINEEVENT: minTimeout

    def public(self) -> dict[str, Any]:
        """The row as ``event.get`` lists it (facts §5; strings as Bitrix returns them)."""
        return {
            "event": self.event,
            "handler": self.handler,
            "auth_type": str(self.auth_type),
            "offline": 1 if self.event_type == "offline" else 0,
        }


@dataclass
class Connector:
    """A REST connector registered by an app (``imconnector.register``), or a built-in channel (no owner)."""

    id: str
    name: str
    client_id: str | None
    placement_handler: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Line:
    """An open line, with the connectors active on it and their channel data (``connector.data.set``)."""

    id: int
    name: str
    active_connectors: set[str] = field(default_factory=set)
    connector_data: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Chat:
    """An Open Lines chat; its dialog id is ``chat<ID>``."""

    id: int
    line_id: int
    connector_id: str
    user_id: int
    external_chat_id: str
    external_user_id: str
    name: str = ""

    @property
    def dialog_id(self) -> str:
        """The ``DIALOG_ID`` REST methods take for this chat."""
        return f"chat{self.id}"


@dataclass
class Session:
    """An Open Lines session inside a chat."""

    id: int
    chat_id: int
    line_id: int
    connector_id: str
    user_id: int
    closed: bool = False
    parent_id: int = 0
    close_term: int = 1440


@dataclass
class Message:
    """A message in a chat (from the external client or posted with ``im.message.add``)."""

    id: int
    chat_id: int
    author_id: int
    text: str
    client_id: str | None = None
    external_id: str | None = None
    at: float = 0.0
    """When it was posted (portal clock; 0 when the poster did not say)."""
    likes: list[int] = field(default_factory=list)
    """Who liked it (``im.message.like``), in order."""
    edited: bool = False


@dataclass(frozen=True)
class RestCall:
    """One REST call as the portal saw it; ``params`` and ``token`` are redacted."""

    id: int
    portal: str
    method: str
    params: Any
    token: str | None
    client_id: str | None
    status: int
    result: Any
    error: str | None
    http_method: str
    at: float
    token_id: int | None = None
    """:attr:`Token.id` of the access token the call carried (None: no token, or one the portal never issued),
    so a test can tell which token a handler used without the token itself being recorded."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON view (already free of secrets)."""
        return {
            "id": self.id,
            "portal": self.portal,
            "method": self.method,
            "params": self.params,
            "token": self.token,
            "token_id": self.token_id,
            "client_id": self.client_id,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "http_method": self.http_method,
            "at": self.at,
        }


@dataclass(frozen=True)
class SessionStarted:
    """What starting a session produced: the session, its chat, and the OnSessionStart attempts."""

    session: Session
    chat: Chat
    attempts: tuple[Attempt, ...]
    created: bool = True


def check_handler_url(url: object) -> str:
    """Apply Bitrix's weak handler-URL check (facts §5) and return the URL, or raise :class:`PortalError`.

    Only the scheme (http or https) and a host containing a dot are required: ``localhost`` is refused while
    ``127.0.0.1`` passes, and neither https nor a match with the app's domain is asked for.
    """
    if not isinstance(url, str) or not url:
        raise PortalError("ERROR_HANDLER_NOT_FOUND", "Handler not found")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise PortalError("ERROR_HANDLER_URL", f"Wrong handler URL: {url[:200]!r}") from None
    if parts.scheme.lower() not in ("http", "https") or "." not in host:
        raise PortalError("ERROR_HANDLER_URL", f"Wrong handler URL: {url[:200]!r}")
    return url


def normalize_scopes(scopes: str | Iterable[str] | None) -> tuple[str, ...]:
    if scopes is None:
        return DEFAULT_SCOPES
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"a scope must be a string, got {item!r}")
        name = item.strip().lower()
        if name and name not in out:
            out.append(name)
    return tuple(out)


NO_APP = App("", "", "", (), False, None, active=False)
"""A stand-in for a token whose app is gone: never active."""
