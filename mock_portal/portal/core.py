"""The :class:`Portal`: one mock Bitrix24 portal, put together from its parts.

It owns the lock, its identity and endpoints, and the collaborators: the :class:`PortalState` it holds,
:class:`Tokens` (OAuth), :class:`Triggers` (which events fire at which moment, planned under the lock),
:class:`Outbox` (sending the plans once the lock is released, or queueing them inside a REST call) and
:class:`Records` (REST calls and delivery attempts). The operations grouped by concern come from
:class:`Lifecycle` (apps, bindings), :class:`OpenLines` (lines, connectors, chats, sessions, messages),
:class:`Crm` (deals, leads, contacts, companies), :class:`Tasks`, :class:`Bots` (chat bots),
:class:`Robots` (automation rules) and
:class:`Users` (the user directory).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mock_portal.errors import UsageError
from mock_portal.portal.bots import Bots, BotStore
from mock_portal.portal.crm import Crm, CrmStore
from mock_portal.portal.crm_links import CrmLinks
from mock_portal.portal.crm_recurring import RecurringDeals, RecurringStore
from mock_portal.portal.ids import RandomIds
from mock_portal.portal.im import ImStore, Messenger
from mock_portal.portal.lifecycle import Lifecycle
from mock_portal.portal.model import (
    DEFAULT_OAUTH_URL,
    DEFAULT_SERVER_ENDPOINT,
    TOKEN_LIFETIME,
    App,
    AuthMode,
    Binding,
    Chat,
    Clock,
    Connector,
    Line,
    Message,
    RestCall,
    Session,
    Token,
)
from mock_portal.portal.notify import Notifications, NotifyStore
from mock_portal.portal.offline import OfflineEvents
from mock_portal.portal.openlines import OpenLines
from mock_portal.portal.outbox import Outbox
from mock_portal.portal.records import Records
from mock_portal.portal.robots import Robots, RobotStore
from mock_portal.portal.state import PortalState
from mock_portal.portal.tasks import Tasks, TaskStore
from mock_portal.portal.tokens import Tokens
from mock_portal.portal.triggers import Triggers
from mock_portal.portal.userfields import UserfieldTable
from mock_portal.portal.users import Users, new_user, root_department
from mock_portal.records import CALLS, PortalRecords
from mock_portal.restkit.limits import MethodBudget, Plan, RateLimiter

if TYPE_CHECKING:
    import contextlib

    from mock_portal.delivery import Attempt, DeliveryLog, Target


class Portal(
    Lifecycle,
    OpenLines,
    Crm,
    CrmLinks,
    RecurringDeals,
    Tasks,
    Bots,
    Robots,
    Users,
    Messenger,
    Notifications,
):
    """One mock Bitrix24 portal (domain, member_id, OAuth tokens, apps, bindings, open lines, CRM).

    ``rate_plan`` (``"standard"``: 50 requests, draining 2/s; ``"enterprise"``: 250, 5/s; or a
    :class:`~mock_portal.restkit.Plan`) and ``rate_limit`` set the REST request-rate limiter, on by default as
    on a real portal; ``method_costs`` says how many seconds of the method time budget a method is taken to
    spend per call (the mock's own run time otherwise).

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
        token_lifetime: int = TOKEN_LIFETIME,
        client_endpoint: str | None = None,
        server_endpoint: str | None = None,
        oauth_url: str | None = None,
        delivery_log: DeliveryLog | None = None,
        language_id: str = "en",
        rate_plan: Plan | str = "standard",
        rate_limit: bool = True,
        method_costs: Mapping[str, float] | None = None,
    ) -> None:
        self._ids = RandomIds(seed)
        self.domain = domain or f"b24-{self._ids.hex(6)}.bitrix24.com"
        if not isinstance(self.domain, str) or "/" in self.domain or not self.domain.strip():
            raise UsageError(f"a portal domain must be a host name, got {domain!r}")
        self.member_id = member_id or self._ids.hex(32)
        self.clock = clock or Clock()
        self.status = status
        self.session_events_owner_only = session_events_owner_only
        self.delivery_timeout = delivery_timeout
        self.default_shape = default_shape
        self.default_auth: AuthMode = default_auth
        self.token_lifetime = token_lifetime
        self.language_id = language_id
        self.client_endpoint = client_endpoint or f"https://{self.domain}/rest/"
        self.server_endpoint = server_endpoint or DEFAULT_SERVER_ENDPOINT
        self.oauth_url = oauth_url or DEFAULT_OAUTH_URL
        self._lock = threading.RLock()
        # the REST limits, on the portal clock (https://apidocs.bitrix24.com/settings/performance/limits.html)
        self.rate_limiter = RateLimiter(rate_plan, now=self.clock.now, enabled=rate_limit)
        """The request-rate limiter: a leaky bucket per portal (``enabled``, ``set_plan``, ``reset``)."""
        self.method_budget = MethodBudget(now=self.clock.now, costs=method_costs)
        """The per-method time budget of each app and webhook (``costs``, ``charge``, ``reset``)."""
        self._state = PortalState()
        self._userfield_ids = itertools.count(1)  # one table of userfields: CRM and users share the ids
        self._crm = CrmStore(lambda: next(self._userfield_ids))
        self._recurring = RecurringStore()
        self._tasks = TaskStore()
        self._bots = BotStore()
        self._robots = RobotStore()
        self._im = ImStore()
        self._notify = NotifyStore()
        self._reset_users()
        self._tokens = Tokens(self._state, self.clock, self._ids, lambda: self.token_lifetime)
        self._records = Records(
            self._lock,
            self.clock,
            domain=lambda: self.domain,
            tokens=lambda: self._state.tokens,
            delivery_log=delivery_log,
        )
        self._outbox = Outbox(
            self._lock, self._records, timeout=lambda: self.delivery_timeout, name=lambda: self.domain
        )
        self._triggers = Triggers(self, self._state, self._tokens, self._ids)
        self.offline = OfflineEvents(
            self._lock, self._state, self.clock, self._ids, self._tokens, self._triggers
        )
        """The apps' offline event queues (``event.offline.*``) and ONOFFLINEEVENT."""
        self._outbox.absorb = self.offline.absorb

    # ----------------------------------------------------------------- state
    @property
    def apps(self) -> dict[str, App]:
        """The apps, installed or not, by ``client_id``."""
        return self._state.apps

    @property
    def tokens(self) -> dict[str, Token]:
        """Every access token issued, by its value."""
        return self._state.tokens

    @property
    def bindings(self) -> list[Binding]:
        """Every ``event.bind`` row, oldest first."""
        return self._state.bindings

    @property
    def connectors(self) -> dict[str, Connector]:
        """The registered connectors by id."""
        return self._state.connectors

    @property
    def lines(self) -> dict[int, Line]:
        """The open lines by id."""
        return self._state.lines

    @property
    def chats(self) -> dict[int, Chat]:
        """The Open Lines chats by id."""
        return self._state.chats

    @property
    def sessions(self) -> dict[int, Session]:
        """The Open Lines sessions by id, oldest first."""
        return self._state.sessions

    @property
    def messages(self) -> list[Message]:
        """Every message kept, oldest first."""
        return self._state.messages

    @property
    def webhooks(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """Incoming webhooks: code -> (user id, scopes)."""
        return self._state.webhooks

    @property
    def records(self) -> PortalRecords:
        """The store of this portal's REST calls and delivery attempts (byte-bounded, paginated)."""
        return self._records.store

    @property
    def rest_calls(self) -> list[RestCall]:
        """Every REST call recorded, oldest first (see :meth:`calls`)."""
        return self._records.rest_calls

    def reset(self) -> None:
        """Forget every app, token, binding, chat, session, call and attempt (domain and ids stay)."""
        with self._lock:
            self._state.clear()
            self.offline.clear()
            self._crm.clear()
            self._recurring.clear()
            self._tasks.clear()
            self._bots.clear()
            self._robots.clear()
            self._im.clear()
            self._notify.clear()
            self._reset_users()
            self._records.clear()
            self.rate_limiter.reset()
            self.method_budget.reset()

    def _reset_users(self) -> None:
        self._users = {1: new_user(1, now=self.clock.now())}
        self._departments = root_department()
        self._user_fields = UserfieldTable("USER", "UF_USR_", lambda: next(self._userfield_ids))
        self._app_options: dict[str, dict[str, Any]] = {}
        self._user_options: dict[tuple[str, int], dict[str, Any]] = {}

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
                "apps": [app.public() for app in self._state.apps.values()],
                "lines": [{"id": line.id, "name": line.name} for line in self._state.lines.values()],
                "chats": len(self._state.chats),
                "sessions": len(self._state.sessions),
                "deliveries": self._records.delivery_count(),
                "rest_calls": self._records.store.count(CALLS),
                "records": self._records.store.stats(),
            }

    # ----------------------------------------------------------------- tokens
    def issue_token(self, client_id: str, *, user_id: int | None = None, refresh: bool = True) -> Token:
        """Issue a fresh OAuth token pair for an app (what installation and token refresh hand out)."""
        with self._lock:
            return self._tokens.issue(self.app(client_id), user_id=user_id, refresh=refresh)

    def authenticate(self, access_token: object) -> Token:
        """Return the live token for ``access_token`` or raise ``invalid_token`` / ``expired_token`` (401)."""
        with self._lock:
            return self._tokens.authenticate(access_token)

    def owns_refresh_token(self, refresh_token: str) -> bool:
        """Whether this portal issued ``refresh_token`` (the OAuth server asks every portal it serves)."""
        with self._lock:
            return self._tokens.owns_refresh_token(refresh_token)

    def refresh(self, *, client_id: object, client_secret: object, refresh_token: object) -> Token:
        """Exchange a refresh token for a new pair (facts §5); the old refresh token stops working."""
        with self._lock:
            return self._tokens.refresh(
                client_id=client_id, client_secret=client_secret, refresh_token=refresh_token
            )

    def add_webhook(self, *, user_id: int = 1, scopes: str | Iterable[str] | None = None) -> str:
        """Create an incoming webhook; return its code (REST path ``/rest/<user_id>/<code>/<method>``)."""
        with self._lock:
            return self._tokens.add_webhook(user_id=user_id, scopes=scopes)

    # ----------------------------------------------------------------- events
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
        with self._lock:
            return self._triggers.event_context(app, chat=chat, session=session, token=token)

    def deferring_events(self, *, release: bool = True) -> contextlib.AbstractContextManager[list[Any]]:
        """Collect the events raised in this thread while the block runs instead of delivering them.

        ``rest.call`` wraps every REST call in it; on the way out the collected deliveries go to the
        portal's worker, in order (``release=False`` hands them to the caller instead, who passes them to
        :meth:`release_events` once the REST response is out: the server does so). Nested blocks share the
        outermost one's list.
        """
        return self._outbox.deferring(release=release)

    def release_events(self, pending: Sequence[Any]) -> None:
        """Hand deliveries collected by :meth:`deferring_events` to the portal's worker (never blocks)."""
        self._outbox.release(pending)

    @property
    def queued(self) -> int:
        """Deliveries waiting in the queue or on the wire (raised inside REST calls, not attempted yet)."""
        return self._outbox.queued

    def route(self, prefix: str, target: Target) -> None:
        """Deliver events for handler URLs starting with ``prefix`` to an in-process ``target`` instead.

        ``target`` is a :class:`~mock_portal.delivery.WsgiTarget`, ``AsgiTarget`` or ``CallableTarget``; each
        delivery keeps the bound URL (path and ``Host``). Used with the in-process ``responses`` adapter.
        """
        self._outbox.route(prefix, target)

    def close(self) -> None:
        """Deliver what is queued, stop the queue worker and the delivery thread, close the connection pool
        (the portal's state stays readable)."""
        self._outbox.close()

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
        return self._records.record_call(
            method=method,
            params=params,
            token=token,
            client_id=client_id,
            status=status,
            result=result,
            error=error,
            http_method=http_method,
        )

    def calls(self, method: str | None = None) -> list[RestCall]:
        """Recorded REST calls, optionally only those of ``method``."""
        return self._records.calls(method)

    def wait_for_calls(
        self, method: str | None = None, *, count: int = 1, timeout: float = 5.0
    ) -> list[RestCall]:
        """Block until ``count`` REST calls (of ``method``) are recorded, or ``timeout`` seconds pass.

        Handlers answer events at once and call back from a queue (the docs' recommended practice), so a test
        waits for the call to happen instead of sleeping. Returns the matching calls either way; the caller
        checks the count.
        """
        return self._records.wait_for_calls(method, count=count, timeout=timeout)

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
        return self._records.wait_for_deliveries(event, count=count, timeout=timeout, outcome=outcome)

    def deliveries(self, event: str | None = None) -> list[Attempt]:
        """Recorded delivery attempts (sent or dropped), oldest first, optionally only those of ``event``."""
        return self._records.deliveries(event)
