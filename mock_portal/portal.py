"""Portal state: a mock Bitrix24 portal with apps, tokens, bindings, connectors, lines, chats and sessions.

A :class:`Portal` is the single source of truth the REST side (``mock_portal.rest``) and the server
(``mock_portal.server``) read and change. It is thread-safe (one re-entrant lock per portal) and never holds
its lock while an event is on the wire, so a handler may call the portal's REST API back while the portal is
still delivering to it.

The lifecycle follows facts §5: installing an app POSTs ONAPPINSTALL (with ``refresh_token`` and
``application_token``) to its install URL; a UI app is not installed until ``installFinish`` and every event
raised for it before that is dropped (recorded as a ``dropped`` attempt with the reason); uninstalling POSTs
ONAPPUNINSTALL in system mode. Starting an Open Lines session creates the chat and the session and fires
OnSessionStart to every bound, installed app (facts §3: the module source does not filter by connector owner;
the docs say it does; :attr:`Portal.session_events_owner_only` chooses).

Events raised inside a REST call (``im.message.add`` out through a connector, ``imconnector.send.messages``
opening a session, ``event.test``...) are queued, as the real portal queues them for its queue server
(facts §1): :meth:`Portal.deferring_events` collects them while the call runs, and a background worker per
portal delivers them in order once the call has returned, so a handler that calls ``im.message.add`` and also
handles the OnImConnectorMessageAdd it raises never waits on its own callback. Control actions (the methods
called directly, the control API) stay synchronous and return their attempts. Every attempt is recorded;
:meth:`Portal.wait_for_deliveries` waits for them without sleeping.

Time comes from an injectable :class:`Clock`, so token expiry is tested by advancing it, never by sleeping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import queue
import random
import string
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from mock_portal.errors import UsageError
from mock_portal.records import CALLS, DELIVERIES, PortalRecords, delivery_tags
from mock_portal.redact import redact, redact_text

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, Deliverer, DeliveryLog, Target

__all__ = [
    "AUTH_MODES",
    "DEFAULT_SCOPES",
    "EVENT_SCOPES",
    "App",
    "Binding",
    "Chat",
    "Clock",
    "Connector",
    "Line",
    "Message",
    "Portal",
    "PortalError",
    "RestCall",
    "Session",
    "SessionStarted",
    "Token",
    "check_handler_url",
]

AuthMode = Literal["user", "system"]
AUTH_MODES: tuple[str, ...] = ("user", "system")

DEFAULT_SCOPES: tuple[str, ...] = ("imopenlines", "imconnector", "im")
"""Scopes an app gets when none are asked for: what an Open Lines connector app needs."""

# The scope an event belongs to; event.bind refuses events outside the app's scopes (facts §5,
# ERROR_EVENT_NOT_FOUND). None: any app may bind it (application lifecycle events).
EVENT_SCOPES: dict[str, str | None] = {
    "ONAPPINSTALL": None,
    "ONAPPUNINSTALL": None,
    "ONAPPUPDATE": None,
    "ONAPPTEST": None,
    "ONOFFLINEEVENT": None,
    "ONSESSIONSTART": "imopenlines",
    "ONSESSIONFINISH": "imopenlines",
    "ONOPENLINEMESSAGEADD": "imopenlines",
    "ONOPENLINEMESSAGEUPDATE": "imopenlines",
    "ONOPENLINEMESSAGEDELETE": "imopenlines",
    "ONIMCONNECTORMESSAGEADD": "imopenlines",
    "ONIMCONNECTORMESSAGEUPDATE": "imopenlines",
    "ONIMCONNECTORMESSAGEDELETE": "imopenlines",
    "ONIMCONNECTORDIALOGSTART": "imopenlines",
    "ONIMCONNECTORDIALOGFINISH": "imopenlines",
    "ONIMCONNECTORSTATUSDELETE": "imopenlines",
    "ONIMCONNECTORLINEDELETE": "imopenlines",
    "ONIMBOTMESSAGEADD": "imbot",
    "ONIMBOTJOINCHAT": "imbot",
    "ONCRMLEADADD": "crm",
    "ONCRMLEADUPDATE": "crm",
    "ONCRMDEALADD": "crm",
    "ONCRMDEALUPDATE": "crm",
    "ONCRMCONTACTADD": "crm",
    "ONCRMCONTACTUPDATE": "crm",
}

# events whose delivery the module source limits to the app that registered the connector (facts §3)
_OWNER_FILTERED_PREFIX = "ONIMCONNECTOR"
# events the docs (not the source) limit to the connector's owner; see Portal.session_events_owner_only
_SESSION_EVENTS = frozenset({"ONSESSIONSTART", "ONSESSIONFINISH"})

_DEFAULT_SERVER_ENDPOINT = "https://oauth.bitrix.info/rest/"
_DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"
_TOKEN_LIFETIME = 3600  # facts §5: expires_in 3600 s
_DROP_REASON_NOT_INSTALLED = "application installation is not finished (installFinish not called)"


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
    expires_in: int = _TOKEN_LIFETIME
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


def _normalize_scopes(scopes: str | Iterable[str] | None) -> tuple[str, ...]:
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


class Portal:
    """One mock Bitrix24 portal (domain, member_id, OAuth tokens, apps, bindings, open lines).

    ``client_endpoint`` is the REST base URL events advertise (default ``https://<domain>/rest/``, what the
    in-process adapter intercepts); a :class:`~mock_portal.server.PortalServer` points it at itself.
    """

    def __init__(
        self,
        domain: str | None = None,
        *,
        member_id: str | None = None,
        seed: int | None = None,
        clock: Clock | None = None,
        status: str = "L",
        session_events_owner_only: bool = False,
        delivery_timeout: float = 10.0,
        default_shape: str = "source-2024",
        default_auth: AuthMode = "user",
        token_lifetime: int = _TOKEN_LIFETIME,
        client_endpoint: str | None = None,
        server_endpoint: str | None = None,
        oauth_url: str | None = None,
        delivery_log: DeliveryLog | None = None,
        language_id: str = "en",
    ) -> None:
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self.domain = domain or f"b24-{self._hex(6)}.bitrix24.com"
        if not isinstance(self.domain, str) or "/" in self.domain or not self.domain.strip():
            raise UsageError(f"a portal domain must be a host name, got {domain!r}")
        self.member_id = member_id or self._hex(32)
        self.clock = clock or Clock()
        self.status = status
        self.session_events_owner_only = session_events_owner_only
        self.delivery_timeout = delivery_timeout
        self.default_shape = default_shape
        self.default_auth: AuthMode = default_auth
        self.token_lifetime = token_lifetime
        self.language_id = language_id
        self.client_endpoint = client_endpoint or f"https://{self.domain}/rest/"
        self.server_endpoint = server_endpoint or _DEFAULT_SERVER_ENDPOINT
        self.oauth_url = oauth_url or _DEFAULT_OAUTH_URL
        self._lock = threading.RLock()
        self._deliveries_changed = threading.Condition(self._lock)
        self._deferred = threading.local()
        self._queue: queue.Queue[_Planned | None] = queue.Queue()
        self._queued = 0  # planned deliveries handed to the worker and not yet attempted
        self._worker: threading.Thread | None = None
        self._delivery_log = delivery_log
        self._delivery: Deliverer | None = None
        self._routes: dict[str, Target] = {}
        # REST calls and delivery attempts, redacted and encoded once, bounded in bytes (mock_portal.records)
        self.records = PortalRecords()
        self._reset_state()

    # ----------------------------------------------------------------- state
    def _reset_state(self) -> None:
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, Token] = {}
        self._refresh_index: dict[str, Token] = {}
        self.bindings: list[Binding] = []
        self.connectors: dict[str, Connector] = {}
        self.lines: dict[int, Line] = {}
        self.chats: dict[int, Chat] = {}
        self.sessions: dict[int, Session] = {}
        self.messages: list[Message] = []
        self.webhooks: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.records.clear()
        self._binding_ids = itertools.count(1)
        self._chat_ids = itertools.count(1001)
        self._session_ids = itertools.count(301)
        self._message_ids = itertools.count(5001)
        self._user_ids = itertools.count(501)
        self._call_ids = itertools.count(1)
        self._token_ids = itertools.count(1)
        self.lines[1] = Line(1, "Open line")
        self._line_ids = itertools.count(2)

    def reset(self) -> None:
        """Forget every app, token, binding, chat, session, call and attempt (domain and ids stay)."""
        with self._lock:
            self._reset_state()
            if self._delivery_log is not None:
                self._delivery_log.clear()

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def _alnum(self, n: int) -> str:
        return "".join(self._rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    @property
    def key(self) -> str:
        """The name that selects this portal in URLs and the control API: its domain."""
        return self.domain

    def set_endpoints(
        self,
        *,
        client_endpoint: str | None = None,
        server_endpoint: str | None = None,
        oauth_url: str | None = None,
    ) -> None:
        """Point the URLs events advertise (and the OAuth token endpoint) somewhere else, e.g. at a server."""
        with self._lock:
            if client_endpoint is not None:
                self.client_endpoint = client_endpoint
            if server_endpoint is not None:
                self.server_endpoint = server_endpoint
            if oauth_url is not None:
                self.oauth_url = oauth_url

    def describe(self) -> dict[str, Any]:
        """A JSON view of the portal: identity, URLs, counts."""
        with self._lock:
            return {
                "domain": self.domain,
                "member_id": self.member_id,
                "status": self.status,
                "client_endpoint": self.client_endpoint,
                "server_endpoint": self.server_endpoint,
                "oauth_url": self.oauth_url,
                "session_events_owner_only": self.session_events_owner_only,
                "apps": [app.public() for app in self.apps.values()],
                "lines": [{"id": line.id, "name": line.name} for line in self.lines.values()],
                "chats": len(self.chats),
                "sessions": len(self.sessions),
                "deliveries": self.records.count(DELIVERIES),
                "rest_calls": self.records.count(CALLS),
                "records": self.records.stats(),
            }

    # ----------------------------------------------------------------- tokens
    def issue_token(self, client_id: str, *, user_id: int | None = None, refresh: bool = True) -> Token:
        """Issue a fresh OAuth token pair for an app (what installation and token refresh hand out)."""
        with self._lock:
            app = self.app(client_id)
            token = Token(
                access_token=self._hex(70),
                refresh_token=self._hex(70) if refresh else None,
                client_id=app.client_id,
                user_id=app.user_id if user_id is None else user_id,
                scopes=app.scopes,
                issued_at=self.clock.now(),
                expires_in=self.token_lifetime,
                id=next(self._token_ids),
            )
            self.tokens[token.access_token] = token
            if token.refresh_token:
                self._refresh_index[token.refresh_token] = token
            return token

    def authenticate(self, access_token: object) -> Token:
        """Return the live token for ``access_token`` or raise ``invalid_token`` / ``expired_token`` (401)."""
        if not isinstance(access_token, str) or not access_token:
            raise PortalError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        with self._lock:
            token = self.tokens.get(access_token)
            if token is None or token.revoked or not self.apps.get(token.client_id, _NO_APP).active:
                raise PortalError("invalid_token", "The access token provided is invalid.", 401)
            if self.clock.now() >= token.expires:
                raise PortalError("expired_token", "The access token provided has expired.", 401)
            return token

    def owns_refresh_token(self, refresh_token: str) -> bool:
        """Whether this portal issued ``refresh_token`` (the OAuth server asks every portal it serves)."""
        with self._lock:
            return refresh_token in self._refresh_index

    def refresh(self, *, client_id: object, client_secret: object, refresh_token: object) -> Token:
        """Exchange a refresh token for a new pair (facts §5); the old refresh token stops working."""
        with self._lock:
            app = self.apps.get(client_id) if isinstance(client_id, str) else None
            if app is None or not isinstance(client_secret, str) or client_secret != app.client_secret:
                raise PortalError("invalid_client", "Invalid client credentials", 401)
            old = self._refresh_index.get(refresh_token) if isinstance(refresh_token, str) else None
            if old is None or old.client_id != app.client_id or not app.active:
                raise PortalError("invalid_grant", "Invalid refresh token", 400)
            del self._refresh_index[refresh_token]  # type: ignore[arg-type]
            return self.issue_token(app.client_id, user_id=old.user_id)

    def add_webhook(self, *, user_id: int = 1, scopes: str | Iterable[str] | None = None) -> str:
        """Create an incoming webhook; return its code (REST path ``/rest/<user_id>/<code>/<method>``)."""
        with self._lock:
            code = self._alnum(16).lower()
            self.webhooks[code] = (user_id, _normalize_scopes(scopes))
            return code

    # ----------------------------------------------------------------- apps
    def app(self, client_id: str) -> App:
        """The app with ``client_id``, or :class:`~mock_portal.errors.UnknownNameError`-like PortalError."""
        with self._lock:
            app = self.apps.get(client_id)
            if app is None:
                raise PortalError(
                    "APP_NOT_FOUND", f"no app with client_id {client_id!r} on {self.domain}", 404
                )
            return app

    def install_app(
        self,
        install_url: str | None = None,
        *,
        handlers: Mapping[str, str] | None = None,
        scopes: str | Iterable[str] | None = None,
        ui: bool = False,
        code: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        timeout: float | None = None,
    ) -> tuple[App, Token, list[Attempt]]:
        """Install an app: create it, bind ``handlers`` ({event: url}), POST ONAPPINSTALL to ``install_url``.

        Returns the app, its first token pair, and the attempts made (the ONAPPINSTALL delivery). A headless
        app is installed at once; a UI app stays ``installed=False`` until :meth:`install_finish` (facts §5).
        ``client_id`` / ``client_secret`` may be given (a local app's credentials, known to its handler).
        """
        if install_url is not None:
            check_handler_url(install_url)
        handler_items = list((handlers or {}).items())
        for event, url in handler_items:
            if not isinstance(event, str):
                raise UsageError(f"an event name must be a string, got {event!r}")
            check_handler_url(url)
        with self._lock:
            if client_id is not None and client_id in self.apps:
                raise PortalError("APP_EXISTS", f"an app with client_id {client_id!r} is installed", 409)
            app = App(
                # a local app's id and secret, as the portal's app form shows them
                client_id=client_id or f"local.{self._hex(13)}.{self._rng.randrange(10**7, 10**8)}",
                client_secret=client_secret or self._alnum(50),
                application_token=self._hex(32),
                scopes=_normalize_scopes(scopes),
                ui=bool(ui),
                install_url=install_url,
                installed=not ui,
                code=code or "",
            )
            self.apps[app.client_id] = app
            try:
                for event, url in handler_items:
                    self.bind(app.client_id, event, url)
            except PortalError:
                del self.apps[app.client_id]
                self.bindings = [b for b in self.bindings if b.client_id != app.client_id]
                raise
            token = self.issue_token(app.client_id)
            plan: list[_Planned] = []
            if install_url is not None:
                # ONAPPINSTALL is the installation itself, so it is sent before installFinish (facts §5); it
                # goes to the install URL, not to a binding, so it carries no event_handler_id
                body = self._built_event(
                    "ONAPPINSTALL",
                    app,
                    None,
                    shape=None,
                    auth="user",
                    token=token,
                    context={"version": app.version, "active": True, "installed": app.installed},
                )
                plan.append(_Planned("ONAPPINSTALL", install_url, body, app.client_id))
        return app, token, self._execute(plan, timeout)

    def install_finish(self, client_id: str) -> App:
        """Finish a UI app's installation (``BX24.installFinish``): from now on its events are delivered."""
        with self._lock:
            app = self.app(client_id)
            if not app.active:
                raise PortalError("APP_NOT_FOUND", f"app {client_id!r} was uninstalled", 404)
            app.installed = True
            return app

    def uninstall_app(
        self, client_id: str, *, clean: bool = False, timeout: float | None = None
    ) -> list[Attempt]:
        """Uninstall an app: POST ONAPPUNINSTALL (system-mode auth) to its handlers, then drop its state."""
        with self._lock:
            app = self.app(client_id)
            if not app.active:
                raise PortalError("APP_NOT_FOUND", f"app {client_id!r} was already uninstalled", 404)
            plan: list[_Planned] = []
            for binding in self._bindings_for("ONAPPUNINSTALL", client_id=client_id):
                # ONAPPUNINSTALL carries no OAuth tokens: system mode only (facts §2, §4)
                body = self._built_event(
                    "ONAPPUNINSTALL",
                    app,
                    binding,
                    shape=None,
                    auth="system",
                    token=None,
                    context={"clean": 1 if clean else 0},
                )
                plan.append(_Planned("ONAPPUNINSTALL", binding.handler, body, app.client_id))
            app.active = False
            app.installed = False
            self.bindings = [b for b in self.bindings if b.client_id != client_id]
            for token in self.tokens.values():
                if token.client_id == client_id:
                    token.revoked = True
            for refresh_token in [r for r, t in self._refresh_index.items() if t.client_id == client_id]:
                del self._refresh_index[refresh_token]
            for connector_id in [c.id for c in self.connectors.values() if c.client_id == client_id]:
                del self.connectors[connector_id]
        return self._execute(plan, timeout)

    # ----------------------------------------------------------------- bindings
    def bind(
        self,
        client_id: str,
        event: object,
        handler: object,
        *,
        auth_type: int = 0,
        event_type: str = "online",
    ) -> Binding:
        """``event.bind``: check the event against the app's scopes and the weak URL rule; no duplicates."""
        if not isinstance(event, str) or not event.strip():
            raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
        name = event.strip().upper()
        if event_type not in ("online", "offline"):
            raise PortalError("ERROR_ARGUMENT", f"event_type must be online or offline, got {event_type!r}")
        if event_type == "offline":
            raise PortalError("ERROR_ARGUMENT", "offline events are not simulated by the mock portal")
        with self._lock:
            app = self.app(client_id)
            if name not in EVENT_SCOPES:
                raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
            scope = EVENT_SCOPES[name]
            if scope is not None and scope not in app.scopes:
                # an event outside the app's scopes is as unknown as a misspelt one (facts §5)
                raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
            url = check_handler_url(handler)
            for existing in self.bindings:
                if (existing.client_id, existing.event, existing.handler, existing.auth_type) == (
                    app.client_id,
                    name,
                    url,
                    auth_type,
                ):
                    # the text real portals answer (docs: test-handler, "Unable to set event handler")
                    raise PortalError("ERROR_CORE", "Unable to set event handler: Handler already binded")
            binding = Binding(next(self._binding_ids), app.client_id, name, url, auth_type, event_type)
            self.bindings.append(binding)
            return binding

    def unbind(self, client_id: str, event: object, handler: object, *, auth_type: int | None = None) -> int:
        """``event.unbind``: remove the app's matching bindings; return how many went."""
        if not isinstance(event, str) or not event.strip():
            raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
        name = event.strip().upper()
        with self._lock:
            self.app(client_id)
            keep: list[Binding] = []
            removed = 0
            for binding in self.bindings:
                if (
                    binding.client_id == client_id
                    and binding.event == name
                    and (handler in (None, "") or binding.handler == handler)
                    and (auth_type is None or binding.auth_type == auth_type)
                ):
                    removed += 1
                else:
                    keep.append(binding)
            self.bindings = keep
            return removed

    def bindings_of(self, client_id: str) -> list[Binding]:
        """The app's bindings (``event.get``)."""
        with self._lock:
            return [b for b in self.bindings if b.client_id == client_id]

    def _bindings_for(self, event: str, *, client_id: str | None = None) -> list[Binding]:
        return [
            b for b in self.bindings if b.event == event and (client_id is None or b.client_id == client_id)
        ]

    # ----------------------------------------------------------------- connectors and lines
    def add_line(self, name: str | None = None, *, line_id: int | None = None) -> Line:
        """Create an open line (or return the existing one with ``line_id``)."""
        with self._lock:
            if line_id is not None and line_id in self.lines:
                return self.lines[line_id]
            new_id = line_id if line_id is not None else next(self._line_ids)
            if not isinstance(new_id, int) or isinstance(new_id, bool) or new_id <= 0:
                raise UsageError(f"a line id must be a positive integer, got {line_id!r}")
            line = Line(new_id, name or f"Open line {new_id}")
            self.lines[new_id] = line
            return line

    def register_connector(
        self, client_id: str, connector_id: str, name: str, *, placement_handler: str | None = None
    ) -> Connector:
        """``imconnector.register``: the connector belongs to the calling app."""
        with self._lock:
            self.app(client_id)
            existing = self.connectors.get(connector_id)
            if existing is not None and existing.client_id not in (None, client_id):
                raise PortalError("APPLICATION_REGISTRATION_ERROR", "Application registration error", 200)
            connector = Connector(connector_id, name, client_id, placement_handler)
            self.connectors[connector_id] = connector
            return connector

    def unregister_connector(self, client_id: str, connector_id: str) -> None:
        """``imconnector.unregister``: only the owner app can remove its connector."""
        with self._lock:
            connector = self.connectors.get(connector_id)
            if connector is None or connector.client_id != client_id:
                raise PortalError(
                    "APPLICATION_UNREGISTRATION_ERROR", "Error unregistering the application", 200
                )
            del self.connectors[connector_id]
            for line in self.lines.values():
                line.active_connectors.discard(connector_id)
                line.connector_data.pop(connector_id, None)

    def activate_connector(self, connector_id: str, line_id: int, active: bool) -> Line:
        """``imconnector.activate``: switch a connector on or off on a line (the line is created if new)."""
        with self._lock:
            line = self.add_line(line_id=line_id)
            if active:
                line.active_connectors.add(connector_id)
            else:
                line.active_connectors.discard(connector_id)
            return line

    def set_connector_data(self, connector_id: str, line_id: int, data: Mapping[str, Any]) -> Line:
        """``imconnector.connector.data.set``: store the channel's data for the connector on a line."""
        with self._lock:
            line = self.add_line(line_id=line_id)
            line.connector_data[connector_id] = dict(data)
            return line

    # ----------------------------------------------------------------- sessions and messages
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
            line = self.add_line(line_id=line_id if line_id is not None else 1)
            chat = self._new_chat(line, connector_id, user_id, external_chat_id, external_user_id)
            session, plan = self._session_start_plan(chat, shape=shape, auth=auth)
        return SessionStarted(session, chat, tuple(self._execute(plan, timeout)))

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
            chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
            if chat is None:
                raise PortalError("CHAT_ID", "The specified chat identifier is invalid")
            current = self._open_session_of(chat.id)
            if current is not None:
                return SessionStarted(current, chat, (), created=False)
            session, plan = self._session_start_plan(chat, shape=shape, auth=auth)
        return SessionStarted(session, chat, tuple(self._execute(plan, timeout)))

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
        with self._lock:
            connector = self.connectors.get(connector_id)
            if connector is None or connector.client_id != client_id:
                raise PortalError(
                    "IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a suitable provider for the connector"
                )
            line = self.lines.get(line_id)
            if line is None or connector_id not in line.active_connectors:
                raise PortalError("NOT_ACTIVE_LINE", "The line with this ID is inactive or does not exist")
            ext_chat_id = str(external_chat.get("id", ""))
            ext_user_id = str(external_user.get("id", ""))
            chat = next(
                (
                    c
                    for c in self.chats.values()
                    if (c.connector_id, c.line_id, c.external_chat_id, c.external_user_id)
                    == (connector_id, line_id, ext_chat_id, ext_user_id)
                ),
                None,
            )
            if chat is None:
                chat = self._new_chat(line, connector_id, None, ext_chat_id, ext_user_id)
                chat.name = str(external_chat.get("name", "") or "")
            message = Message(
                next(self._message_ids),
                chat.id,
                chat.user_id,
                str(external_message.get("text", "") or ""),
                external_id=str(external_message.get("id", "") or "") or None,
            )
            self.messages.append(message)
            session = self._open_session_of(chat.id)
            started: SessionStarted | None = None
            if session is None:
                plan = self._session_start_plan(chat, shape=shape, auth=auth or "system")
                session = plan[0]
                started = SessionStarted(session, chat, ())
                deferred = plan[1]
            else:
                deferred = []
        if started is not None:
            started = replace(started, attempts=tuple(self._execute(deferred, timeout)))
        return chat, session, message, started

    def add_message(
        self, client_id: str | None, dialog_id: object, text: object, *, author_id: int = 1
    ) -> Message:
        """``im.message.add``: post to ``chat<ID>`` (the chat must exist) or to a user's dialog (a number)."""
        if not isinstance(dialog_id, str) or not dialog_id.strip():
            raise PortalError("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
        if not isinstance(text, str) or not text.strip():
            raise PortalError("MESSAGE_EMPTY", "Message can't be empty")
        with self._lock:
            dialog = dialog_id.strip()
            if dialog.lower().startswith("chat"):
                raw = dialog[4:]
                chat = self.chats.get(int(raw)) if raw.isdigit() else None
                if chat is None:
                    raise PortalError("ACCESS_ERROR", f"You don't have access to this chat: {dialog[:60]!r}")
                chat_id = chat.id
            elif dialog.isdigit() and int(dialog) > 0:
                chat_id = -int(
                    dialog
                )  # a private dialog with a user: negative ids keep them apart from chats
            else:
                raise PortalError("DIALOG_ID_EMPTY", f"Dialog ID is not valid: {dialog[:60]!r}")
            message = Message(next(self._message_ids), chat_id, author_id, text, client_id=client_id)
            self.messages.append(message)
            return message

    def chat(self, chat_id: object) -> Chat:
        """The chat with ``chat_id`` (or ``chat<ID>``), or a PortalError."""
        with self._lock:
            key = chat_id
            if isinstance(key, str):
                raw = key[4:] if key.lower().startswith("chat") else key
                key = int(raw) if raw.isdigit() else None
            chat = self.chats.get(key) if isinstance(key, int) else None
            if chat is None:
                raise PortalError("DIALOG_NOT_FOUND", f"Dialog not found: {str(chat_id)[:60]!r}", 400)
            return chat

    def session_of_chat(self, chat_id: int) -> Session | None:
        """The chat's latest session (open or not)."""
        with self._lock:
            found = [s for s in self.sessions.values() if s.chat_id == chat_id]
            return found[-1] if found else None

    def _open_session_of(self, chat_id: int) -> Session | None:
        return next((s for s in self.sessions.values() if s.chat_id == chat_id and not s.closed), None)

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
        chat = Chat(
            id=next(self._chat_ids),
            line_id=line.id,
            connector_id=connector_id,
            user_id=user_id if user_id is not None else next(self._user_ids),
            external_chat_id=external_chat_id or self._hex(12),
            external_user_id=external_user_id or self._hex(8),
        )
        self.chats[chat.id] = chat
        return chat

    def _session_start_plan(
        self, chat: Chat, *, shape: str | None, auth: AuthMode | None
    ) -> tuple[Session, list[_Planned]]:
        previous = self.session_of_chat(chat.id)
        session = Session(
            id=next(self._session_ids),
            chat_id=chat.id,
            line_id=chat.line_id,
            connector_id=chat.connector_id,
            user_id=chat.user_id,
            parent_id=previous.id if previous is not None else 0,
        )
        self.sessions[session.id] = session
        line = self.lines[chat.line_id]
        context = {
            "connector_id": chat.connector_id,
            "line_id": line.id,
            "line_name": line.name,
            "chat_id": chat.id,
            "session_id": session.id,
            "external_user_id": chat.user_id,
            "parent_id": session.parent_id,
            "close_term": session.close_term,
            "closed": session.closed,
        }
        plan = self._plan_event(
            "ONSESSIONSTART",
            shape=shape or self.default_shape,
            auth=auth or self.default_auth,
            context=context,
            connector_id=chat.connector_id,
        )
        # the connector's own view of the new dialog, for the connector's owner only (facts §3, §4)
        plan += self._plan_event(
            "ONIMCONNECTORDIALOGSTART",
            shape="docs",
            auth=auth or self.default_auth,
            context={**context, "external_chat_id": chat.external_chat_id},
            connector_id=chat.connector_id,
        )
        return session, plan

    def event_context(
        self,
        app: App,
        *,
        chat: Chat | None = None,
        session: Session | None = None,
        token: Token | None = None,
    ) -> dict[str, Any]:
        """The values an event from this portal carries (an ``EventContext`` mapping for the builders).

        The portal's identity and endpoints, the app's ``application_token`` and scopes, the chat's and
        session's ids when given, and the token's fields in user mode. Everything the portal sends is built
        from this, and so is what the contract sends in the portal's name.
        """
        context = self._chat_context(chat, session) if chat is not None else {}
        context.update(
            domain=self.domain,
            member_id=self.member_id,
            application_token=app.application_token,
            client_endpoint=self.client_endpoint,
            server_endpoint=self.server_endpoint,
            status=self.status,
            scope=",".join(app.scopes),
            language_id=self.language_id,
            ts=int(self.clock.now()),
        )
        if token is not None:
            context.update(
                access_token=token.access_token,
                expires_in=token.expires_in,
                expires=token.expires,
                user_id=token.user_id,
            )
            if token.refresh_token is not None:
                context["refresh_token"] = token.refresh_token
        return context

    # ----------------------------------------------------------------- the sibling events' moments
    def _chat_context(self, chat: Chat, session: Session | None) -> dict[str, Any]:
        line = self.lines[chat.line_id]
        context: dict[str, Any] = {
            "connector_id": chat.connector_id,
            "line_id": line.id,
            "line_name": line.name,
            "chat_id": chat.id,
            "external_user_id": chat.user_id,
            "external_chat_id": chat.external_chat_id,
        }
        if session is not None:
            context.update(
                session_id=session.id,
                parent_id=session.parent_id,
                close_term=session.close_term,
                closed=session.closed,
            )
        return context

    def finish_session(
        self, session_id: object, *, auth: AuthMode | None = None, timeout: float | None = None
    ) -> list[Attempt]:
        """Close an Open Lines session: OnSessionFinish to the bound apps, OnImConnectorDialogFinish to the
        connector's owner (facts §3, §4). Closing a closed session fires nothing."""
        with self._lock:
            session = self.sessions.get(session_id) if isinstance(session_id, int) else None
            if session is None:
                raise PortalError("SESSION_NOT_FOUND", f"Session not found: {str(session_id)[:60]!r}", 404)
            if session.closed:
                return []
            session.closed = True
            chat = self.chats[session.chat_id]
            context = self._chat_context(chat, session)
            mode = auth or self.default_auth
            plan = self._plan_event(
                "ONSESSIONFINISH", shape="docs", auth=mode, context=context, connector_id=chat.connector_id
            )
            plan += self._plan_event(
                "ONIMCONNECTORDIALOGFINISH",
                shape="docs",
                auth=mode,
                context=context,
                connector_id=chat.connector_id,
            )
        return self._execute(plan, timeout)

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
            context = {
                **self._chat_context(chat, self._open_session_of(chat.id)),
                "message_id": message.id,
                "message_text": message.text,
            }
            plan = self._plan_event(
                "ONOPENLINEMESSAGEADD", shape="docs", auth="user", context=context, connector_id=None
            )
            plan += self._plan_event(
                "ONIMCONNECTORMESSAGEADD",
                shape="docs",
                auth="user",
                context=context,
                connector_id=chat.connector_id,
            )
        return message, self._execute(plan, timeout)

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
        with self._lock:
            message = next((m for m in self.messages if m.id == message_id), None)
            if message is None or message.chat_id not in self.chats:
                raise PortalError("MESSAGE_NOT_FOUND", f"Message not found: {str(message_id)[:60]!r}", 404)
            chat = self.chats[message.chat_id]
            if delete:
                self.messages.remove(message)
            elif text is not None:
                message.text = text
            context = {
                **self._chat_context(chat, self._open_session_of(chat.id)),
                "message_id": message.id,
                "message_text": message.text,
            }
            suffix = "DELETE" if delete else "UPDATE"
            plan = self._plan_event(
                f"ONOPENLINEMESSAGE{suffix}", shape="docs", auth="user", context=context, connector_id=None
            )
            plan += self._plan_event(
                f"ONIMCONNECTORMESSAGE{suffix}",
                shape="docs",
                auth="user",
                context=context,
                connector_id=chat.connector_id,
            )
        return self._execute(plan, timeout)

    def deactivate_connector(
        self, connector_id: str, line_id: int, *, timeout: float | None = None
    ) -> list[Attempt]:
        """Switch a connector off on a line (``imconnector.activate`` with ``ACTIVE=0``):
        OnImConnectorStatusDelete to the connector's owner, if it was active there."""
        with self._lock:
            line = self.lines.get(line_id)
            was_active = line is not None and connector_id in line.active_connectors
            self.activate_connector(connector_id, line_id, False)
            if not was_active:
                return []
            context = {"connector_id": connector_id, "line_id": line_id}
            plan = self._plan_event(
                "ONIMCONNECTORSTATUSDELETE",
                shape="docs",
                auth="user",
                context=context,
                connector_id=connector_id,
            )
        return self._execute(plan, timeout)

    def delete_line(self, line_id: object, *, timeout: float | None = None) -> list[Attempt]:
        """Delete an open line: OnImConnectorLineDelete to the owner of each connector active on it."""
        with self._lock:
            line = self.lines.get(line_id) if isinstance(line_id, int) else None
            if line is None:
                raise PortalError("NOT_FOUND_LINE", f"Line not found: {str(line_id)[:60]!r}", 404)
            plan: list[_Planned] = []
            for connector_id in sorted(line.active_connectors):
                plan += self._plan_event(
                    "ONIMCONNECTORLINEDELETE",
                    shape="docs",
                    auth="user",
                    context={"connector_id": connector_id, "line_id": line.id},
                    connector_id=connector_id,
                )
            del self.lines[line.id]
        return self._execute(plan, timeout)

    def update_app(
        self, client_id: str, *, new_application_token: bool = False, timeout: float | None = None
    ) -> tuple[App, list[Attempt]]:
        """Update an app to its next version: ONAPPUPDATE to its ONAPPUPDATE handlers, in user mode. With
        ``new_application_token`` the installation's secret changes and the event carries the new one
        (facts §2: the handler replaces the stored token on ONAPPUPDATE)."""
        with self._lock:
            app = self.app(client_id)
            if not app.active:
                raise PortalError("APP_NOT_FOUND", f"app {client_id!r} was uninstalled", 404)
            app.version += 1
            if new_application_token:
                app.application_token = self._hex(32)
            plan: list[_Planned] = []
            for binding in self._bindings_for("ONAPPUPDATE", client_id=client_id):
                token = self.issue_token(app.client_id, refresh=False)
                body = self._built_event(
                    "ONAPPUPDATE",
                    app,
                    binding,
                    shape=None,
                    auth="user",
                    token=token,
                    context={"version": app.version, "previous_version": app.version - 1},
                )
                drop = None if app.installed else _DROP_REASON_NOT_INSTALLED
                plan.append(_Planned("ONAPPUPDATE", binding.handler, body, app.client_id, drop))
        return app, self._execute(plan, timeout)

    # ----------------------------------------------------------------- events
    def fire_test(
        self, client_id: str, query: Mapping[str, Any], *, timeout: float | None = None
    ) -> list[Attempt]:
        """``event.test``: fire ONAPPTEST to the calling app's ONAPPTEST handlers, with ``data.QUERY``."""
        with self._lock:
            app = self.app(client_id)
            plan = []
            for binding in self._bindings_for("ONAPPTEST", client_id=app.client_id):
                token = self.issue_token(app.client_id, refresh=False)
                body = self._event_payload(
                    "ONAPPTEST",
                    app,
                    binding=binding,
                    auth="user",
                    token=token,
                    data={"QUERY": dict(query), "LANGUAGE_ID": self.language_id},
                )
                drop = None if app.installed else _DROP_REASON_NOT_INSTALLED
                plan.append(_Planned("ONAPPTEST", binding.handler, body, app.client_id, drop))
        return self._execute(plan, timeout)

    def _plan_event(
        self,
        event: str,
        *,
        shape: str,
        auth: AuthMode,
        context: Mapping[str, Any],
        connector_id: str | None,
    ) -> list[_Planned]:
        """Decide who gets ``event`` and build each body; called with the lock held, sends nothing."""
        if auth not in AUTH_MODES:
            raise UsageError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        owner: str | None = None
        connector = self.connectors.get(connector_id) if connector_id else None
        limit_to_owner = event.startswith(_OWNER_FILTERED_PREFIX) or (
            event in _SESSION_EVENTS and self.session_events_owner_only
        )
        if limit_to_owner:
            owner = connector.client_id if connector is not None and connector.client_id else ""
        plan: list[_Planned] = []
        for binding in self._bindings_for(event):
            app = self.apps[binding.client_id]
            if not app.active or (owner is not None and binding.client_id != owner):
                continue
            token = self.issue_token(app.client_id, refresh=False) if auth == "user" else None
            body = self._built_event(
                event, app, binding, shape=shape, auth=auth, token=token, context=context
            )
            # events raised before installFinish are dropped, not held (facts §5)
            drop = None if app.installed else _DROP_REASON_NOT_INSTALLED
            plan.append(_Planned(event, binding.handler, body, app.client_id, drop))
        return plan

    def _auth_block(self, app: App, auth: AuthMode, token: Token | None) -> dict[str, Any]:
        # user-mode and system-mode keys in the order real bodies carry them (facts §2, ONAPPINSTALL capture)
        if auth == "system" or token is None:
            return {
                "domain": self.domain,
                "client_endpoint": self.client_endpoint,
                "server_endpoint": self.server_endpoint,
                "member_id": self.member_id,
                "application_token": app.application_token,
            }
        block: dict[str, Any] = {
            "access_token": token.access_token,
            "expires": str(token.expires),
            "expires_in": str(token.expires_in),
            "scope": ",".join(app.scopes),
            "domain": self.domain,
            "server_endpoint": self.server_endpoint,
            "status": self.status,
            "client_endpoint": self.client_endpoint,
            "member_id": self.member_id,
            "user_id": str(token.user_id),
        }
        if token.refresh_token is not None:
            block["refresh_token"] = token.refresh_token
        block["application_token"] = app.application_token
        return block

    def _event_payload(
        self,
        event: str,
        app: App,
        *,
        binding: Binding | None,
        auth: AuthMode,
        token: Token | None,
        data: Any,
    ) -> _Body:
        """Events without a shape registry entry (ONAPPINSTALL, ONAPPUNINSTALL, ONAPPTEST), built here."""
        from mock_portal.wire import encode

        payload: dict[str, Any] = {"event": event}
        if binding is not None:
            payload["event_handler_id"] = str(binding.id)
        payload["data"] = data
        payload["ts"] = str(int(self.clock.now()))
        payload["auth"] = self._auth_block(app, auth, token)  # auth always last (facts §1)
        return _Body(encode(payload), payload)

    def _built_event(
        self,
        event: str,
        app: App,
        binding: Binding | None,
        *,
        shape: str | None,
        auth: AuthMode,
        token: Token | None,
        context: Mapping[str, Any],
    ) -> _Body:
        """Build an event with ``mock_portal.events`` from the portal's real ids, tokens and endpoints."""
        from mock_portal import events

        full = {**context, **self.event_context(app, token=token)}
        if binding is not None:
            full["event_handler_id"] = binding.id
        built = events.build_event(
            event,
            shape=shape,
            auth=auth,
            context=full,
            seed=self._rng.randrange(2**31),
            event_handler_id=binding is not None,
        )
        return _Body(built.body("form"), built.wire_payload)

    def _execute(self, plan: Sequence[_Planned], timeout: float | None) -> list[Attempt]:
        """Send (or record as dropped) each planned delivery, one after another; the lock must not be held.

        One attempt per (binding x event) and never a retry (facts §1).
        """
        if not plan:
            return []
        pending: list[_Planned] | None = getattr(self._deferred, "pending", None)
        if pending is not None:
            # raised inside a REST call: queued, delivered by the worker after the call (facts §1)
            pending.extend(plan)
            return []
        return [self._attempt(item, timeout) for item in plan]

    def _attempt(self, item: _Planned, timeout: float | None) -> Attempt:
        deliverer = self._deliverer()
        target = self._target_for(item.target)
        if item.drop_reason is not None:
            attempt = deliverer.drop(target, item.body.text, reason=item.drop_reason, event=item.event)
        else:
            attempt = deliverer.deliver(
                target,
                item.body.text,
                event=item.event,
                timeout=self.delivery_timeout if timeout is None else timeout,
            )
        self.records.add_attempt(attempt)
        with self._lock:
            self._deliveries_changed.notify_all()
        return attempt

    # ----------------------------------------------------------------- the event queue
    @contextlib.contextmanager
    def deferring_events(self, *, release: bool = True) -> Iterator[list[Any]]:
        """Collect the events raised in this thread while the block runs instead of delivering them.

        ``rest.call`` wraps every REST call in it; on the way out the collected deliveries go to the
        portal's worker, in order (``release=False`` hands them to the caller instead, who passes them to
        :meth:`release_events` once the REST response is out: the server does so). Nested blocks share the
        outermost one's list.
        """
        outer: list[_Planned] | None = getattr(self._deferred, "pending", None)
        if outer is not None:
            yield outer
            return
        pending: list[_Planned] = []
        self._deferred.pending = pending
        try:
            yield pending
        finally:
            self._deferred.pending = None
            if release:
                self.release_events(pending)

    def release_events(self, pending: Sequence[Any]) -> None:
        """Hand deliveries collected by :meth:`deferring_events` to the portal's worker (never blocks)."""
        items = [item for item in pending if isinstance(item, _Planned)]
        if not items:
            return
        with self._lock:
            self._queued += len(items)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name=f"mock-portal-queue-{self.domain}", daemon=True
                )
                self._worker.start()
            for item in items:
                self._queue.put(item)

    @property
    def queued(self) -> int:
        """Deliveries waiting in the queue or on the wire (raised inside REST calls, not attempted yet)."""
        with self._lock:
            return self._queued

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._attempt(item, None)
            except Exception:  # a delivery that cannot even be attempted must not stop the queue
                import logging

                logging.getLogger("mock_portal").exception("queued delivery of %s failed", item.event)
            finally:
                with self._lock:
                    self._queued -= 1
                    self._deliveries_changed.notify_all()

    def route(self, prefix: str, target: Target) -> None:
        """Deliver events for handler URLs starting with ``prefix`` to an in-process ``target`` instead.

        ``target`` is a :class:`~mock_portal.delivery.WsgiTarget`, ``AsgiTarget`` or ``CallableTarget``; each
        delivery keeps the bound URL (path and ``Host``). Used with the in-process ``responses`` adapter.
        """
        if not isinstance(prefix, str) or not prefix:
            raise UsageError("route(): prefix must be a non-empty URL prefix")
        with self._lock:
            self._routes[prefix] = target

    def _target_for(self, url: str) -> str | Target:
        with self._lock:
            matches = [p for p in self._routes if url.startswith(p)]
            if not matches:
                return url
            target = self._routes[max(matches, key=len)]
        return dataclasses.replace(target, url=url)

    def _deliverer(self) -> Deliverer:
        with self._lock:
            if self._delivery is None:
                from mock_portal.delivery import Deliverer, DeliveryLog

                if self._delivery_log is None:
                    # the record store keeps the attempts (bounded in bytes); this log keeps only the last
                    self._delivery_log = DeliveryLog(max_in_memory=1)
                self._delivery = Deliverer(self._delivery_log, timeout=self.delivery_timeout)
            return self._delivery

    def close(self) -> None:
        """Deliver what is queued, stop the queue worker and the delivery thread, close the connection pool
        (the portal's state stays readable)."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(None)
            worker.join(max(self.delivery_timeout, 1.0) * 2)
        with self._lock:
            delivery, self._delivery = self._delivery, None
        if delivery is not None:
            delivery.close()

    def __enter__(self) -> Portal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- records
    def record_call(
        self,
        *,
        method: str,
        params: Any,
        token: str | None,
        client_id: str | None,
        status: int,
        result: Any,
        error: str | None,
        http_method: str,
    ) -> RestCall:
        """Record one REST call (params and token are redacted here, once)."""
        with self._lock:
            issued = self.tokens.get(token) if token else None
            call = RestCall(
                id=next(self._call_ids),
                portal=self.domain,
                method=method,
                params=redact(params),
                token=("***" if token else None),
                client_id=client_id,
                status=status,
                result=redact(result),
                error=error,
                http_method=http_method,
                at=self.clock.now(),
                token_id=issued.id if issued is not None else None,
            )
            self.records.add_call(call)
            return call

    @property
    def rest_calls(self) -> list[RestCall]:
        """Every kept REST call, oldest first (a snapshot)."""
        return self.records.calls()

    def calls(self, method: str | None = None) -> list[RestCall]:
        """Recorded REST calls, optionally only those of ``method``."""
        return self.records.calls(method)

    def wait_for_calls(
        self, method: str | None = None, *, count: int = 1, timeout: float = 5.0
    ) -> list[RestCall]:
        """Block until ``count`` REST calls (of ``method``) are recorded, or ``timeout`` seconds pass.

        Handlers answer events at once and call back from a queue (the docs' recommended practice), so a test
        waits for the call to happen instead of sleeping. Returns the matching calls either way; the caller
        checks the count.
        """
        tags = {"method": method} if method is not None else {}
        self.records.wait(CALLS, count, timeout, **tags)
        return self.calls(method)

    def wait_for_deliveries(
        self,
        event: str | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,
        outcome: str | None = None,
    ) -> list[Attempt]:
        """Block until ``count`` delivery attempts (of ``event``, with ``outcome``) are recorded, or
        ``timeout`` seconds pass; return the matching attempts either way (the caller checks the count).

        Events raised inside REST calls are delivered by the queue worker after the call, so a test waits for
        them here instead of sleeping.
        """
        self.records.wait(DELIVERIES, count, timeout, **delivery_tags(event, outcome))
        return self.records.deliveries(event, outcome)

    def deliveries(self, event: str | None = None) -> list[Attempt]:
        """Recorded delivery attempts (sent or dropped), oldest first, optionally only those of ``event``."""
        return self.records.deliveries(event)


@dataclass(frozen=True)
class _Body:
    text: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class _Planned:
    event: str
    target: str
    body: _Body
    client_id: str
    drop_reason: str | None = None  # set: record the event as dropped instead of sending it


_NO_APP = App("", "", "", (), False, None, active=False)
