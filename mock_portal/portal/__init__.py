"""Portal state: a mock Bitrix24 portal with apps, tokens, bindings, connectors, lines, chats and sessions.

A :class:`Portal` is the single source of truth the REST side (``mock_portal.rest``) and the server
(``mock_portal.server``) read and change. It is thread-safe (one re-entrant lock per portal) and never holds
its lock while an event is on the wire, so a handler may call the portal's REST API back while the portal is
still delivering to it.

Every change follows one seam, plan then send: under the lock the state changes and the triggers plan who
gets which event, with every body built; once the lock is released the outbox sends the plan (control
actions, which return their attempts) or queues it for the portal's worker (events raised inside a REST call,
delivered once the call has returned, as the real portal's queue server does: facts §1).

The package, one concern per module:

- :mod:`~mock_portal.portal.model`: the dataclasses (App, Token, Binding, Connector, Line, Chat, Session,
  Message, RestCall, SessionStarted), :class:`Clock`, :class:`PortalError`, the event scopes;
- :mod:`~mock_portal.portal.state`: the containers and lookups; :mod:`~mock_portal.portal.ids`: random ids;
- :mod:`~mock_portal.portal.tokens`: OAuth tokens and webhooks;
- :mod:`~mock_portal.portal.lifecycle`: install, installFinish, bind, unbind, update, uninstall;
- :mod:`~mock_portal.portal.openlines`: lines, connectors, chats, sessions, messages;
- :mod:`~mock_portal.portal.crm`, :mod:`~mock_portal.portal.tasks`, :mod:`~mock_portal.portal.bots` (with
  :mod:`~mock_portal.portal.botdata`): CRM items, tasks and chat bots, and the events their writes fire;
- :mod:`~mock_portal.portal.triggers`: which events fire at which moment, planned;
- :mod:`~mock_portal.portal.outbox`: the queue, its worker, and sending a plan;
- :mod:`~mock_portal.portal.records`: recorded REST calls and delivery attempts, and waiting for them;
- :mod:`~mock_portal.portal.core`: :class:`Portal`, which puts them together.

Time comes from an injectable :class:`Clock`, so token expiry is tested by advancing it, never by sleeping.
"""

from __future__ import annotations

from mock_portal.portal.core import Portal
from mock_portal.portal.model import (
    AUTH_MODES,
    DEFAULT_SCOPES,
    EVENT_SCOPES,
    App,
    Binding,
    Chat,
    Clock,
    Connector,
    Line,
    Message,
    PortalError,
    RestCall,
    Session,
    SessionStarted,
    Token,
    check_handler_url,
)
from mock_portal.portal.model import AuthMode as AuthMode  # a type alias, importable as before

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
