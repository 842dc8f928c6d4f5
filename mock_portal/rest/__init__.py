"""The portal's REST side, transport-free: a method name, params and a token in; a status and Bitrix's
envelope out.

Both the HTTP server (``mock_portal.server``) and the in-process ``responses`` adapter
(``mock_portal.inprocess``) call :func:`handle_rest_path` and :func:`handle_oauth`, so the two answer
identically.

Envelopes follow facts §5: success ``{"result": ..., "time": {...}}``; errors ``{"error": CODE,
"error_description": ...}`` with the HTTP status Bitrix uses. Every call is recorded on its portal
(:meth:`Portal.record_call <mock_portal.portal.Portal.record_call>`), secrets redacted.

Each method is a small function registered in :data:`METHODS` (a registry that refuses a name twice), one
module per scope: :mod:`~mock_portal.rest.event`, :mod:`~mock_portal.rest.app`,
:mod:`~mock_portal.rest.imconnector`, :mod:`~mock_portal.rest.imopenlines`, :mod:`~mock_portal.rest.im`,
:mod:`~mock_portal.rest.imbot`, :mod:`~mock_portal.rest.bizproc`, :mod:`~mock_portal.rest.crm`,
:mod:`~mock_portal.rest.tasks`;
``batch`` (:mod:`~mock_portal.rest.batch`) and the OAuth token endpoint (:mod:`~mock_portal.rest.oauth`)
sit beside them, :mod:`~mock_portal.rest.dispatch` checks who may call what, and
:mod:`~mock_portal.rest.transport` reads requests.
"""

from __future__ import annotations

# the scope modules register their methods on import: those an event handler calls to set itself up and to
# answer its events, now; the others (CRM, tasks, automation, the messenger's chats, dialogs, notifications
# and users) on the first lookup of a name not registered yet
from mock_portal.rest import (  # noqa: F401
    app,
    event,
    im,
    imbot,
    imconnector,
    imopenlines,
    user,
)
from mock_portal.rest.batch import MAX_BATCH_COMMANDS
from mock_portal.rest.invoke import call
from mock_portal.rest.oauth import handle_oauth
from mock_portal.rest.params import RestResponse
from mock_portal.rest.registry import METHODS
from mock_portal.rest.transport import MAX_BODY_BYTES, handle_rest_path, parse_params

DEFERRED_SCOPES = ("bizproc", "crm_more", "im_chat", "im_dialog", "im_notify", "im_users", "tasks")
"""The scope modules registered on first need (:meth:`~mock_portal.rest.registry.MethodRegistry.defer`)."""
METHODS.defer(*(f"{__name__}.{scope}" for scope in DEFERRED_SCOPES))

__all__ = [
    "DEFERRED_SCOPES",
    "MAX_BATCH_COMMANDS",
    "MAX_BODY_BYTES",
    "METHODS",
    "RestResponse",
    "call",
    "handle_oauth",
    "handle_rest_path",
    "parse_params",
]
