"""An app's life on the portal (facts §5): install, installFinish, bind and unbind, update, uninstall.

Installing POSTs ONAPPINSTALL (with ``refresh_token`` and ``application_token``) to the install URL; a UI app
is not installed until ``installFinish`` and every event raised for it before that is dropped (recorded as a
``dropped`` attempt with the reason); uninstalling POSTs ONAPPUNINSTALL in system mode and revokes the app's
tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.errors import UsageError
from mock_portal.portal._parts import PortalParts
from mock_portal.portal.model import (
    App,
    Binding,
    PortalError,
    Token,
    check_handler_url,
    event_scopes,
    normalize_scopes,
)
from mock_portal.portal.offline import OFFLINE_TARGET

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt
    from mock_portal.portal.outbox import Planned


class Lifecycle(PortalParts):
    """The app lifecycle operations of :class:`~mock_portal.portal.Portal`."""

    def app(self, client_id: str) -> App:
        """The app with ``client_id``, or ``APP_NOT_FOUND`` (404)."""
        with self._lock:
            return self._state.require_app(client_id, self.domain)

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
        state = self._state
        with self._lock:
            if client_id is not None and client_id in state.apps:
                raise PortalError("APP_EXISTS", f"an app with client_id {client_id!r} is installed", 409)
            ids = self._ids
            app = App(
                # a local app's id and secret, as the portal's app form shows them
                client_id=client_id or f"local.{ids.hex(13)}.{ids.randrange(10**7, 10**8)}",
                client_secret=client_secret or ids.alnum(50),
                application_token=ids.hex(32),
                scopes=normalize_scopes(scopes),
                ui=bool(ui),
                install_url=install_url,
                installed=not ui,
                code=code or "",
            )
            state.apps[app.client_id] = app
            try:
                for event, url in handler_items:
                    self.bind(app.client_id, event, url)
            except PortalError:
                del state.apps[app.client_id]
                state.drop_bindings(lambda b: b.client_id != app.client_id)
                raise
            token = self._tokens.issue(app)
            plan: list[Planned] = []
            if install_url is not None:
                plan = self._triggers.app_installed(app, token, install_url)
        return app, token, self._outbox.execute(plan, timeout)

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
        state = self._state
        with self._lock:
            app = self.app(client_id)
            if not app.active:
                raise PortalError("APP_NOT_FOUND", f"app {client_id!r} was already uninstalled", 404)
            plan = self._triggers.app_uninstalled(app, clean=clean)
            app.active = False
            app.installed = False
            state.drop_bindings(lambda b: b.client_id != client_id)
            self._tokens.revoke_app(client_id)
            self.offline.drop_app(client_id)
            for connector_id in [c.id for c in state.connectors.values() if c.client_id == client_id]:
                del state.connectors[connector_id]
        return self._outbox.execute(plan, timeout)

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
                app.application_token = self._ids.hex(32)
            plan = self._triggers.app_updated(app)
        return app, self._outbox.execute(plan, timeout)

    # ----------------------------------------------------------------- bindings
    def bind(
        self,
        client_id: str,
        event: object,
        handler: object,
        *,
        auth_type: int = 0,
        event_type: str = "online",
        auth_connector: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> Binding:
        """``event.bind``: check the event against the app's scopes and the weak URL rule; no duplicates.

        ``event_type="offline"`` needs no handler: the event is written to the app's offline queue
        (``auth_connector`` names its source, https://apidocs.bitrix24.com/api-reference/events/event-bind.html).
        ``options`` are kept with the binding (ONOFFLINEEVENT reads ``minTimeout``).
        """
        if not isinstance(event, str) or not event.strip():
            raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
        name = event.strip().upper()
        if event_type not in ("online", "offline"):
            raise PortalError("ERROR_ARGUMENT", f"event_type must be online or offline, got {event_type!r}")
        state = self._state
        with self._lock:
            app = self.app(client_id)
            scopes = event_scopes(name)
            if scopes is None:
                raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
            if scopes and not any(scope in app.scopes for scope in scopes):
                # an event outside the app's scopes is as unknown as a misspelt one (facts §5)
                raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
            url = check_handler_url(handler) if event_type == "online" else OFFLINE_TARGET
            connector = auth_connector if event_type == "offline" else ""
            for existing in state.bindings_for(name, client_id=app.client_id):
                same = (existing.handler, existing.auth_type, existing.event_type, existing.auth_connector)
                if same == (url, auth_type, event_type, connector):
                    # the text real portals answer (docs: test-handler, "Unable to set event handler")
                    raise PortalError("ERROR_CORE", "Unable to set event handler: Handler already binded")
            binding = Binding(
                next(state.binding_ids),
                app.client_id,
                name,
                url,
                auth_type,
                event_type,
                auth_connector=connector,
                options=dict(options or {}),
            )
            state.bindings.append(binding)
            return binding

    def unbind(
        self,
        client_id: str,
        event: object,
        handler: object,
        *,
        auth_type: int | None = None,
        event_type: str = "online",
    ) -> int:
        """``event.unbind``: remove the app's matching bindings of ``event_type`` (an offline binding has no
        handler to match); return how many went."""
        if not isinstance(event, str) or not event.strip():
            raise PortalError("ERROR_EVENT_NOT_FOUND", "Event not found")
        if event_type not in ("online", "offline"):
            raise PortalError("ERROR_ARGUMENT", f"event_type must be online or offline, got {event_type!r}")
        name = event.strip().upper()
        with self._lock:
            self.app(client_id)

            def keep(binding: Binding) -> bool:
                return not (
                    binding.client_id == client_id
                    and binding.event == name
                    and binding.event_type == event_type
                    and (event_type == "offline" or handler in (None, "") or binding.handler == handler)
                    and (auth_type is None or binding.auth_type == auth_type)
                )

            return self._state.drop_bindings(keep)

    def bindings_of(self, client_id: str) -> list[Binding]:
        """The app's bindings (``event.get``)."""
        with self._lock:
            return self._state.bindings_of(client_id)

    def fire_test(
        self, client_id: str, query: Mapping[str, Any], *, timeout: float | None = None
    ) -> list[Attempt]:
        """``event.test``: fire ONAPPTEST to the calling app's ONAPPTEST handlers, with ``data.QUERY``."""
        with self._lock:
            plan = self._triggers.app_tested(self.app(client_id), query)
        return self._outbox.execute(plan, timeout)
