"""Events built from a mock portal's real state, as the contract sends them in the portal's name; installing
a handler's app on a portal, as the portal does."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from contract_tests.clauses import DECLARABLE_EVENTS
from contract_tests.config import DEFAULT_TIMEOUT, app_paths, install_target, resolve_target, route_prefix
from mock_portal.errors import UsageError

if TYPE_CHECKING:
    from contract_tests.config import ContractConfig
    from contract_tests.verdicts import Exchange
    from mock_portal.delivery import Attempt, Target
    from mock_portal.events import BuiltEvent
    from mock_portal.portal import App, Portal, Token

__all__ = ["EventFactory", "install_event", "install_failure", "install_handler"]

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


def install_handler(
    portal: Portal,
    handler: object,
    *,
    install_url: str | None = None,
    application_token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[App, list[Attempt]]:
    """Install an app on ``portal`` and let the handler know it, as a portal would.

    With no ``application_token``: ONAPPINSTALL (with the app's tokens) is POSTed to ``install_url`` (the
    handler itself by default; a path is taken on the handler's URL), the way the handler learns its token.
    With one: the app is created silently and given that token, for handlers configured with it. An
    in-process handler gets its URL routed on the portal. Returns the app and the install attempts.
    """
    _, install_url = app_paths(handler, None, install_url, application_token is None, ("", "install_url"))
    target = resolve_target(handler)
    if target.kind != "http":
        portal.route(route_prefix(target), target)
    if application_token is None:
        where = install_target(target, install_url).url
        app, _, attempts = portal.install_app(where, timeout=timeout)
        return app, list(attempts)
    app, _, _ = portal.install_app(None)
    app.application_token = application_token
    return app, []


def install_failure(ex: Exchange, config: ContractConfig, target: Target) -> str:
    """Why a run cannot start when the handler did not accept ONAPPINSTALL (``ex``, sent to ``target``) and
    how to fix it, for a :class:`~contract_tests.judging.ContractSetupError` (mask it before showing it)."""
    where = "the install URL" if config.install_url else "the handler URL (no install URL given)"
    lines = [
        f"the handler did not accept its installation: ONAPPINSTALL to {where}, "
        f"{ex.url}, was answered {ex.answer}",
        "  the contract installs the app first, as a portal does, and the handler must answer 2xx and "
        "keep the application_token it carries",
        "  to fix it: point the contract at the URL your app handles ONAPPINSTALL at "
        "(--install-url URL, or a path: --install-url /install; pytest: --b24-install-path /install)",
    ]
    if target.kind != "http":
        from urllib.parse import urlsplit

        parts = urlsplit(ex.url)
        lines.append(
            f"  your app is called in process at path {parts.path or '/'}: if it receives events "
            "elsewhere, give its paths (return InProcessApp(app, events='/events', install='/install') "
            "from the b24_handler fixture, or --b24-event-path /events --b24-install-path /install)"
        )
        if ex.status == 400:
            # Django answers 400 to a Host its ALLOWED_HOSTS does not list, before any view runs
            lines.append(
                f"  a 400 may also be your framework refusing the Host the app is called with, "
                f"{parts.hostname} (Django's ALLOWED_HOSTS): call it at a host it allows, e.g. "
                "InProcessApp(app, events='/events', host='localhost')"
            )
    lines.append(
        "  or, if the handler is configured with its application token instead of installing, give it: "
        "--application-token (B24_APPLICATION_TOKEN)"
    )
    return "\n".join(lines)
