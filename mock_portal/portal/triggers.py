"""Which events fire at which moment, and to whom: each moment of the portal's life becomes a plan.

A plan is a list of :class:`~mock_portal.portal.outbox.Planned` deliveries, each with its body built from
the portal's real ids, tokens and endpoints. Planning runs under the portal's lock and sends nothing; the
:class:`~mock_portal.portal.outbox.Outbox` sends a plan once the lock is released.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.errors import UsageError
from mock_portal.portal.model import (
    AUTH_MODES,
    DROP_REASON_NOT_INSTALLED,
    OWNER_FILTERED_PREFIX,
    SESSION_EVENTS,
    App,
    AuthMode,
    Binding,
    Chat,
    Line,
    Message,
    Session,
    Token,
)
from mock_portal.portal.outbox import Body, Planned

if TYPE_CHECKING:
    from mock_portal.portal.core import Portal
    from mock_portal.portal.ids import RandomIds
    from mock_portal.portal.state import PortalState
    from mock_portal.portal.tokens import Tokens


class Triggers:
    """The event planner of one portal (its identity and endpoints are read from the portal at each plan)."""

    def __init__(self, portal: Portal, state: PortalState, tokens: Tokens, ids: RandomIds) -> None:
        self._portal = portal
        self._state = state
        self._tokens = tokens
        self._ids = ids

    # ----------------------------------------------------------------- the moments
    def app_installed(self, app: App, token: Token, install_url: str) -> list[Planned]:
        """ONAPPINSTALL to the install URL: it is the installation itself, so it is sent before installFinish
        (facts §5); it goes to the install URL, not to a binding, so it carries no event_handler_id."""
        body = self.built_event(
            "ONAPPINSTALL",
            app,
            None,
            shape=None,
            auth="user",
            token=token,
            context={"version": app.version, "active": True, "installed": app.installed},
        )
        return [Planned("ONAPPINSTALL", install_url, body, app.client_id)]

    def app_uninstalled(self, app: App, *, clean: bool) -> list[Planned]:
        """ONAPPUNINSTALL to the app's handlers, with no OAuth tokens: system mode only (facts §2, §4)."""
        plan: list[Planned] = []
        for binding in self._state.bindings_for("ONAPPUNINSTALL", client_id=app.client_id):
            body = self.built_event(
                "ONAPPUNINSTALL",
                app,
                binding,
                shape=None,
                auth="system",
                token=None,
                context={"clean": 1 if clean else 0},
            )
            plan.append(Planned("ONAPPUNINSTALL", binding.handler, body, app.client_id))
        return plan

    def app_updated(self, app: App) -> list[Planned]:
        """ONAPPUPDATE to the app's ONAPPUPDATE handlers, in user mode, with the app's new version."""
        plan: list[Planned] = []
        for binding in self._state.bindings_for("ONAPPUPDATE", client_id=app.client_id):
            token = self._tokens.issue(app, refresh=False)
            body = self.built_event(
                "ONAPPUPDATE",
                app,
                binding,
                shape=None,
                auth="user",
                token=token,
                context={"version": app.version, "previous_version": app.version - 1},
            )
            plan.append(Planned("ONAPPUPDATE", binding.handler, body, app.client_id, _drop_reason(app)))
        return plan

    def app_tested(self, app: App, query: Mapping[str, Any]) -> list[Planned]:
        """``event.test``: ONAPPTEST to the app's ONAPPTEST handlers, with ``data.QUERY``."""
        plan: list[Planned] = []
        for binding in self._state.bindings_for("ONAPPTEST", client_id=app.client_id):
            token = self._tokens.issue(app, refresh=False)
            body = self.event_payload(
                "ONAPPTEST",
                app,
                binding=binding,
                auth="user",
                token=token,
                data={"QUERY": dict(query), "LANGUAGE_ID": self._portal.language_id},
            )
            plan.append(Planned("ONAPPTEST", binding.handler, body, app.client_id, _drop_reason(app)))
        return plan

    def session_started(
        self, chat: Chat, session: Session, *, shape: str | None, auth: AuthMode | None
    ) -> list[Planned]:
        """OnSessionStart to the bound apps (facts §3), and the connector's own view of the new dialog,
        OnImConnectorDialogStart, to the connector's owner only (facts §3, §4)."""
        line = self._state.lines[chat.line_id]
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
        mode = auth or self._portal.default_auth
        plan = self.plan_event(
            "ONSESSIONSTART",
            shape=shape or self._portal.default_shape,
            auth=mode,
            context=context,
            connector_id=chat.connector_id,
        )
        plan += self.plan_event(
            "ONIMCONNECTORDIALOGSTART",
            shape="docs",
            auth=mode,
            context={**context, "external_chat_id": chat.external_chat_id},
            connector_id=chat.connector_id,
        )
        return plan

    def session_finished(self, chat: Chat, session: Session, *, auth: AuthMode | None) -> list[Planned]:
        """OnSessionFinish to the bound apps, OnImConnectorDialogFinish to the connector's owner."""
        context = self.chat_context(chat, session)
        mode = auth or self._portal.default_auth
        plan = self.plan_event(
            "ONSESSIONFINISH", shape="docs", auth=mode, context=context, connector_id=chat.connector_id
        )
        plan += self.plan_event(
            "ONIMCONNECTORDIALOGFINISH",
            shape="docs",
            auth=mode,
            context=context,
            connector_id=chat.connector_id,
        )
        return plan

    def message_changed(self, chat: Chat, message: Message, *, change: str) -> list[Planned]:
        """OnOpenLineMessage<change> to the bound apps and OnImConnectorMessage<change> to the connector's
        owner (``change``: ADD, UPDATE or DELETE); an added message goes out through the connector."""
        context = {
            **self.chat_context(chat, self._state.open_session_of(chat.id)),
            "message_id": message.id,
            "message_text": message.text,
        }
        plan = self.plan_event(
            f"ONOPENLINEMESSAGE{change}", shape="docs", auth="user", context=context, connector_id=None
        )
        plan += self.plan_event(
            f"ONIMCONNECTORMESSAGE{change}",
            shape="docs",
            auth="user",
            context=context,
            connector_id=chat.connector_id,
        )
        return plan

    def connector_status_deleted(self, connector_id: str, line_id: int) -> list[Planned]:
        """OnImConnectorStatusDelete to the connector's owner."""
        return self.plan_event(
            "ONIMCONNECTORSTATUSDELETE",
            shape="docs",
            auth="user",
            context={"connector_id": connector_id, "line_id": line_id},
            connector_id=connector_id,
        )

    def line_deleted(self, line: Line) -> list[Planned]:
        """OnImConnectorLineDelete to the owner of each connector active on the line."""
        plan: list[Planned] = []
        for connector_id in sorted(line.active_connectors):
            plan += self.plan_event(
                "ONIMCONNECTORLINEDELETE",
                shape="docs",
                auth="user",
                context={"connector_id": connector_id, "line_id": line.id},
                connector_id=connector_id,
            )
        return plan

    def crm_changed(self, event: str, item_id: int, *, user_id: int, auth: AuthMode) -> list[Planned]:
        """``ONCRM<ENTITY><ADD|UPDATE|DELETE>`` to every app bound to it, with ``data[FIELDS][ID]`` (the real
        CRM captures)."""
        return self.entity_changed(event, {"FIELDS": {"ID": item_id}}, user_id=user_id, auth=auth)

    def entity_changed(self, event: str, data: Any, *, user_id: int, auth: AuthMode) -> list[Planned]:
        """An entity the portal keeps (a CRM item, a task) changed: ``event`` with ``data`` to every app bound
        to it. User mode carries a token of the user who made the change, or of the user the binding names in
        ``auth_type`` (facts §2); system mode carries none."""
        if auth not in AUTH_MODES:
            raise UsageError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        plan: list[Planned] = []
        for binding in self._state.bindings_for(event):
            app = self._state.apps[binding.client_id]
            if not app.active:
                continue
            token = None
            if auth == "user":
                token = self._tokens.issue(app, user_id=binding.auth_type or user_id, refresh=False)
            body = self.event_payload(event, app, binding=binding, auth=auth, token=token, data=data)
            plan.append(Planned(event, binding.handler, body, app.client_id, _drop_reason(app)))
        return plan

    # ----------------------------------------------------------------- who gets an event
    def plan_event(
        self,
        event: str,
        *,
        shape: str,
        auth: AuthMode,
        context: Mapping[str, Any],
        connector_id: str | None,
    ) -> list[Planned]:
        """Decide who gets ``event`` and build each body."""
        if auth not in AUTH_MODES:
            raise UsageError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        owner: str | None = None
        connector = self._state.connectors.get(connector_id) if connector_id else None
        limit_to_owner = event.startswith(OWNER_FILTERED_PREFIX) or (
            event in SESSION_EVENTS and self._portal.session_events_owner_only
        )
        if limit_to_owner:
            owner = connector.client_id if connector is not None and connector.client_id else ""
        plan: list[Planned] = []
        for binding in self._state.bindings_for(event):
            app = self._state.apps[binding.client_id]
            if not app.active or (owner is not None and binding.client_id != owner):
                continue
            token = self._tokens.issue(app, refresh=False) if auth == "user" else None
            body = self.built_event(event, app, binding, shape=shape, auth=auth, token=token, context=context)
            plan.append(Planned(event, binding.handler, body, app.client_id, _drop_reason(app)))
        return plan

    # ----------------------------------------------------------------- what an event carries
    def event_context(
        self,
        app: App,
        *,
        chat: Chat | None = None,
        session: Session | None = None,
        token: Token | None = None,
    ) -> dict[str, Any]:
        """The values an event from this portal carries (see :meth:`Portal.event_context`)."""
        portal = self._portal
        context = self.chat_context(chat, session) if chat is not None else {}
        context.update(
            domain=portal.domain,
            member_id=portal.member_id,
            application_token=app.application_token,
            client_endpoint=portal.client_endpoint,
            server_endpoint=portal.server_endpoint,
            status=portal.status,
            scope=",".join(app.scopes),
            language_id=portal.language_id,
            ts=int(portal.clock.now()),
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

    def chat_context(self, chat: Chat, session: Session | None) -> dict[str, Any]:
        """The chat's (and session's) ids and names, as the Open Lines events carry them."""
        line = self._state.lines[chat.line_id]
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

    def auth_block(self, app: App, auth: AuthMode, token: Token | None) -> dict[str, Any]:
        """The ``auth`` block: user-mode and system-mode keys in the order real bodies carry them (facts §2,
        the ONAPPINSTALL capture)."""
        portal = self._portal
        if auth == "system" or token is None:
            return {
                "domain": portal.domain,
                "client_endpoint": portal.client_endpoint,
                "server_endpoint": portal.server_endpoint,
                "member_id": portal.member_id,
                "application_token": app.application_token,
            }
        block: dict[str, Any] = {
            "access_token": token.access_token,
            "expires": str(token.expires),
            "expires_in": str(token.expires_in),
            "scope": ",".join(app.scopes),
            "domain": portal.domain,
            "server_endpoint": portal.server_endpoint,
            "status": portal.status,
            "client_endpoint": portal.client_endpoint,
            "member_id": portal.member_id,
            "user_id": str(token.user_id),
        }
        if token.refresh_token is not None:
            block["refresh_token"] = token.refresh_token
        block["application_token"] = app.application_token
        return block

    def event_payload(
        self,
        event: str,
        app: App,
        *,
        binding: Binding | None,
        auth: AuthMode,
        token: Token | None,
        data: Any,
    ) -> Body:
        """Events without a shape registry entry (ONAPPTEST), built here."""
        from mock_portal.wire import encode

        payload: dict[str, Any] = {"event": event}
        if binding is not None:
            payload["event_handler_id"] = str(binding.id)
        payload["data"] = data
        payload["ts"] = str(int(self._portal.clock.now()))
        payload["auth"] = self.auth_block(app, auth, token)  # auth always last (facts §1)
        return Body(encode(payload), payload)

    def built_event(
        self,
        event: str,
        app: App,
        binding: Binding | None,
        *,
        shape: str | None,
        auth: AuthMode,
        token: Token | None,
        context: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
    ) -> Body:
        """Build an event with ``mock_portal.events`` from the portal's real ids, tokens and endpoints
        (``overrides``: values laid over the built payload by path, as :func:`mock_portal.events.build_event`
        takes them)."""
        from mock_portal import events

        full = {**context, **self.event_context(app, token=token)}
        if binding is not None:
            full["event_handler_id"] = binding.id
        built = events.build_event(
            event,
            shape=shape,
            auth=auth,
            context=full,
            seed=self._ids.randrange(2**31),
            event_handler_id=binding is not None,
            overrides=overrides,
        )
        return Body(built.body("form"), built.wire_payload)


def _drop_reason(app: App) -> str | None:
    # events raised before installFinish are dropped, not held (facts §5)
    return None if app.installed else DROP_REASON_NOT_INSTALLED
