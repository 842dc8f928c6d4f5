"""Events built from a mock portal's real state, as the contract sends them in the portal's name."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from contract_tests.clauses import DECLARABLE_EVENTS
from mock_portal.errors import UsageError

if TYPE_CHECKING:
    from mock_portal.events import BuiltEvent
    from mock_portal.portal import App, Portal, Token

__all__ = ["EventFactory", "install_event"]

_LIST_SHAPES = ("docs-2024", "docs-2026")


class EventFactory:
    """Builds events from a portal's real state: its chats, sessions, messages, connectors, tokens, endpoints.

    Each event opens a real session in the portal (so a handler's ``im.message.add`` to its chat succeeds);
    user mode carries a fresh access token issued by the portal, system mode none (facts §2). Connector events
    name a connector the app owns and has active on the line, since only its owner receives them (facts §3);
    message events name a message the portal really holds.
    """

    _handler_ids = itertools.count(101)
    CONNECTOR_ID = "b24contract"
    """The connector the factory registers for the app when a connector event needs one (no dots: facts §5,
    ``imconnector.register`` refuses them)."""

    def __init__(self, portal: Portal, app: App, *, application_token: str | None = None) -> None:
        self.portal = portal
        self.app = app
        self.application_token = application_token

    def _own_connector(self) -> str:
        portal, cid = self.portal, self.CONNECTOR_ID
        connector = portal.connectors.get(cid)
        if connector is None or connector.client_id != self.app.client_id:
            portal.register_connector(self.app.client_id, cid, "b24-contract connector")
        portal.activate_connector(cid, 1, True)
        return cid

    def _context(
        self,
        *,
        auth: str,
        connector_id: str,
        line_name: str | None,
        event_handler_id: bool,
        message_text: str | None = None,
    ) -> dict[str, Any]:
        portal, app = self.portal, self.app
        started = portal.start_session(connector_id=connector_id)
        chat, session = started.chat, started.session
        token = portal.issue_token(app.client_id, refresh=False) if auth == "user" else None
        ctx = portal.event_context(app, chat=chat, session=session, token=token)
        if self.application_token:
            ctx["application_token"] = self.application_token
        if line_name is not None:
            ctx["line_name"] = line_name
        if message_text is not None:
            # a message the portal really holds, in the session's chat (add_message fires no event)
            message = portal.add_message(None, chat.dialog_id, message_text)
            ctx.update(message_id=message.id, message_text=message.text)
        if event_handler_id:
            ctx["event_handler_id"] = next(self._handler_ids)
        return ctx

    def event(
        self,
        name: str,
        *,
        shape: str | None = None,
        auth: str = "user",
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        event_handler_id: bool = True,
        line_name: str | None = None,
        message_text: str | None = None,
    ) -> BuiltEvent:
        """One event ``name`` (any declarable event, any case) from the portal's state, ``overrides`` last.

        ONSESSIONSTART goes through :meth:`session_start`. ``shape`` defaults to the event's own (the docs one
        for siblings); ``message_text`` sets the text of the message a message event carries.
        """
        from mock_portal.events import build_event, event_spec

        spec = event_spec(name)
        if spec.name == "ONSESSIONSTART":
            return self.session_start(
                shape=shape or "source-2024",
                auth=auth,
                overrides=overrides,
                event_handler_id=event_handler_id,
                line_name=line_name,
            )
        if spec.name not in DECLARABLE_EVENTS:
            from mock_portal.errors import UnknownNameError

            raise UnknownNameError("declarable event", spec.name, DECLARABLE_EVENTS)
        connector_id = self._own_connector() if spec.name.startswith("ONIMCONNECTOR") else "livechat"
        text = message_text
        if text is None and "message_text" in spec.text_fields:
            text = "Hello from the b24-contract portal"
        ctx = self._context(
            auth=auth,
            connector_id=connector_id,
            line_name=line_name,
            event_handler_id=event_handler_id,
            message_text=text,
        )
        if spec.name in ("ONSESSIONFINISH", "ONIMCONNECTORDIALOGFINISH"):
            ctx["closed"] = "Y"
        built = build_event(spec.name, shape=shape, auth=auth, context=ctx, event_handler_id=event_handler_id)
        return built.with_overrides(overrides) if overrides else built

    def session_start(
        self,
        *,
        shape: str = "source-2024",
        auth: str = "user",
        overrides: Mapping[str, Any] | Sequence[str] | None = None,
        event_handler_id: bool = True,
        line_name: str | None = None,
        connector_id: str = "livechat",
        items: int = 1,
    ) -> BuiltEvent:
        """One OnSessionStart for a new session (``items`` > 1: that many sessions in ``data[DATA]``, list
        shapes only), with ``overrides`` applied last (syntax of :func:`mock_portal.events.build_event`)."""
        from mock_portal.events import BuiltEvent, build_event

        if items < 1 or (items > 1 and shape not in _LIST_SHAPES):
            raise UsageError(f"items={items} needs a list shape ({', '.join(_LIST_SHAPES)}), not {shape!r}")
        ctx = self._context(
            auth=auth, connector_id=connector_id, line_name=line_name, event_handler_id=event_handler_id
        )
        built = build_event(
            "ONSESSIONSTART", shape=shape, auth=auth, context=ctx, event_handler_id=event_handler_id
        )
        if items > 1:
            payload = copy.deepcopy(built.payload)
            for _ in range(items - 1):
                extra = build_event(
                    "ONSESSIONSTART",
                    shape=shape,
                    auth=auth,
                    context=self._context(
                        auth="system", connector_id=connector_id, line_name=line_name, event_handler_id=False
                    ),
                    event_handler_id=False,
                )
                payload["data"]["DATA"].append(extra.payload["data"]["DATA"][0])
            built = BuiltEvent(built.event, built.shape, built.auth, built.seed, payload)
        if overrides:
            built = built.with_overrides(overrides)
        return built


def install_event(portal: Portal, app: App, token: Token) -> BuiltEvent:
    """ONAPPINSTALL for ``app`` on ``portal`` with its first token pair, as the portal sends it (user mode,
    with ``refresh_token`` and ``application_token``; no ``event_handler_id``: it goes to the install URL)."""
    from mock_portal.events import build_event

    context = {
        **portal.event_context(app, token=token),
        "version": app.version,
        "active": True,
        "installed": app.installed,
    }
    return build_event("ONAPPINSTALL", auth="user", context=context, event_handler_id=False)
