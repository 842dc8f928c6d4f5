"""The control API's routes as one declared table: path, method, summary, and the schema of every input.

:data:`ROUTES` drives dispatch (:mod:`mock_portal.control`), the checking of bodies and queries, the list in
``GET /_portal`` and the OpenAPI 3.1 document served at ``/_portal/openapi.json`` (:func:`openapi_document`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mock_portal.delivery import OUTCOMES
from mock_portal.events import SHAPES
from mock_portal.portal import AUTH_MODES

__all__ = [
    "CONTROL_ROUTES",
    "DEFAULT_LIMIT",
    "ROUTES",
    "Route",
    "body_schema",
    "openapi_document",
    "query_schema",
]

DEFAULT_LIMIT: Final = 1000
"""Records per page when ``?limit=`` is not given."""
MAX_LIMIT: Final = 10_000
MAX_WAIT_COUNT: Final = 100_000
MAX_WAIT_SECONDS: Final = 60.0
MAX_TIMEOUT: Final = 120.0
MAX_CLOCK_STEP: Final = 100 * 365 * 86400.0
"""Largest clock step (100 years): far enough to expire anything, small enough for every date type."""
_MAX_ID: Final = 2**53

# ---------------------------------------------------------------------------------------------- input schemas

# each "description" says what a field must be: the docs show it, and a refusal quotes it ("'x' must be ...")


def _text(most: int = 2048, what: str = "a non-empty string") -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": most,
        "description": f"{what} (at most {most} chars)",
    }


_TEXT = _text()
_URL = _text(2048, "an http(s) URL")
_ID = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": _MAX_ID},
        {"type": "string", "pattern": "^[1-9][0-9]{0,14}$"},
    ],
    "description": "a positive integer",
}
_TIMEOUT = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": MAX_TIMEOUT,
    "description": f"a number of seconds in (0, {MAX_TIMEOUT:g}]",
}
_BOOL = {"type": "boolean", "description": "true or false"}
_AUTH = {"enum": list(AUTH_MODES), "description": f"one of {', '.join(AUTH_MODES)}"}
_SCOPES = {
    "anyOf": [
        {"type": "string", "maxLength": 1000},
        {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 100},
    ],
    "description": "a comma-separated string or a list of strings",
}
_PORTAL = _text(253, "a portal's domain")
_DOCUMENT = {
    "type": "array",
    "items": _text(200),
    "minItems": 3,
    "maxItems": 3,
    "description": "three strings [module, object, document], as ['crm', 'CCrmDocumentDeal', 'DEAL_1']",
}

_LIST_QUERY: dict[str, dict[str, Any]] = {
    "portal": _PORTAL,
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_LIMIT,
        "description": f"an integer from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    },
    "after": {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**62,
        "description": "the cursor of the previous page",
    },
}
_WAIT_QUERY: dict[str, dict[str, Any]] = {
    "min": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_WAIT_COUNT,
        "description": f"an integer from 1 to {MAX_WAIT_COUNT}",
    },
    "timeout": {
        "type": "number",
        "minimum": 0,
        "maximum": MAX_WAIT_SECONDS,
        "description": f"a number of seconds from 0 to {MAX_WAIT_SECONDS:g} (5)",
    },
}


@dataclass(frozen=True)
class Route:
    """One control route: method, path template (``{name}`` segments), what it does, its inputs."""

    method: str
    path: str
    summary: str
    handler: str
    body: Mapping[str, Mapping[str, Any]] | None = None
    """The JSON body's fields and their schemas (None: the route takes no body fields but ``portal``)."""
    required: tuple[str, ...] = ()
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"portal": _PORTAL})
    status: int = 200
    listing: bool = False
    public: bool = False
    """Served without the control token: the inspector's static files, which hold no data."""
    media: tuple[str, ...] = ("application/json",)
    """The media types of its 200 answer."""

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(p for p in self.path.split("/") if p)


def _r(method: str, path: str, summary: str, handler: str, **options: Any) -> Route:
    return Route(method, path, summary, handler, **options)


ROUTES: Final[tuple[Route, ...]] = (
    _r("GET", "/_portal", "describe the server, its portals, record counts and these routes", "describe"),
    _r("GET", "/_portal/openapi.json", "this API as an OpenAPI 3.1 document", "openapi"),
    _r(
        "GET",
        "/_portal/portals",
        "list the portals (paginated)",
        "list_portals",
        query=_LIST_QUERY,
        listing=True,
    ),
    _r(
        "POST",
        "/_portal/portals",
        "add a portal {domain?, member_id?, status?, session_events_owner_only?, delivery_timeout?, seed?}",
        "add_portal",
        body={
            "domain": {
                "type": "string",
                "minLength": 3,
                "maxLength": 253,
                "pattern": "^[^/\\s]+\\.[^/\\s]+$",
                "description": "a host name with a dot",
            },
            "member_id": _text(64),
            "status": {"enum": ["L", "F", "D", "T", "P", "S"], "description": "one of L F D T P S"},
            "session_events_owner_only": _BOOL,
            "delivery_timeout": _TIMEOUT,
            "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "description": "an integer >= 0"},
        },
        query={},
        status=201,
    ),
    _r(
        "GET",
        "/_portal/apps",
        "list the apps, no secrets (paginated)",
        "list_apps",
        query=_LIST_QUERY,
        listing=True,
    ),
    _r(
        "POST",
        "/_portal/apps",
        "install an app {install_url?, handlers {EVENT: url}, scopes?, ui?, timeout?}",
        "install",
        body={
            "portal": _PORTAL,
            "install_url": _URL,
            "handlers": {
                "type": "object",
                "additionalProperties": _URL,
                "maxProperties": 100,
                "description": "an object {EVENT: url}",
            },
            "scopes": _SCOPES,
            "ui": _BOOL,
            "code": _TEXT,
            "client_id": _text(128),
            "client_secret": _text(128),
            "timeout": _TIMEOUT,
        },
        status=201,
    ),
    _r("GET", "/_portal/apps/{client_id}", "one app and its bindings", "get_app"),
    _r(
        "DELETE",
        "/_portal/apps/{client_id}",
        "same as uninstall",
        "uninstall",
        body={"portal": _PORTAL, "clean": _BOOL, "timeout": _TIMEOUT},
    ),
    _r(
        "POST",
        "/_portal/apps/{client_id}/install-finish",
        "finish a UI app's installation (installFinish)",
        "install_finish",
        body={"portal": _PORTAL},
    ),
    _r(
        "POST",
        "/_portal/apps/{client_id}/bind",
        "bind a handler for the app {event, handler}",
        "bind",
        body={"portal": _PORTAL, "event": _text(100, "an event name"), "handler": _URL},
        status=201,
    ),
    _r(
        "POST",
        "/_portal/apps/{client_id}/uninstall",
        "uninstall the app, POSTs ONAPPUNINSTALL {clean?}",
        "uninstall",
        body={"portal": _PORTAL, "clean": _BOOL, "timeout": _TIMEOUT},
    ),
    _r(
        "POST",
        "/_portal/apps/{client_id}/update",
        "update the app to its next version: ONAPPUPDATE {new_application_token?, timeout?}",
        "update_app",
        body={"portal": _PORTAL, "new_application_token": _BOOL, "timeout": _TIMEOUT},
    ),
    _r(
        "POST",
        "/_portal/sessions",
        "start a session, fires OnSessionStart {connector_id?, line_id?, shape?, auth?}",
        "start_session",
        body={
            "portal": _PORTAL,
            "connector_id": _text(128),
            "line_id": _ID,
            "shape": {"enum": list(SHAPES), "description": f"one of {', '.join(SHAPES)}"},
            "auth": _AUTH,
            "user_id": _ID,
            "external_chat_id": _TEXT,
            "external_user_id": _TEXT,
            "timeout": _TIMEOUT,
        },
        status=201,
    ),
    _r(
        "POST",
        "/_portal/sessions/{id}/finish",
        "close a session: OnSessionFinish, OnImConnectorDialogFinish to the owner {auth?, timeout?}",
        "finish_session",
        body={"portal": _PORTAL, "auth": _AUTH, "timeout": _TIMEOUT},
    ),
    _r(
        "POST",
        "/_portal/messages",
        "an operator writes in an Open Lines chat: OnOpenLineMessageAdd, and out through the connector "
        "OnImConnectorMessageAdd to its owner {chat_id, text, author_id?, timeout?}",
        "operator_message",
        body={
            "portal": _PORTAL,
            "chat_id": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": _MAX_ID},
                    {"type": "string", "minLength": 1, "maxLength": 64},
                ],
                "description": "a chat id or 'chat<ID>'",
            },
            "text": _text(20000),
            "author_id": _ID,
            "timeout": _TIMEOUT,
        },
        required=("chat_id", "text"),
        status=201,
    ),
    _r(
        "POST",
        "/_portal/messages/{id}/update",
        "edit a message: OnOpenLineMessageUpdate, OnImConnectorMessageUpdate {text, timeout?}",
        "update_message",
        body={
            "portal": _PORTAL,
            "text": _text(20000),
            "timeout": _TIMEOUT,
        },
        required=("text",),
    ),
    _r(
        "POST",
        "/_portal/messages/{id}/delete",
        "delete a message: OnOpenLineMessageDelete, OnImConnectorMessageDelete {timeout?}",
        "delete_message",
        body={"portal": _PORTAL, "timeout": _TIMEOUT},
    ),
    _r(
        "POST",
        "/_portal/lines/{id}/delete",
        "delete an open line: OnImConnectorLineDelete to each active connector's owner {timeout?}",
        "delete_line",
        body={"portal": _PORTAL, "timeout": _TIMEOUT},
    ),
    _r(
        "POST",
        "/_portal/connectors/{id}/deactivate",
        "switch a connector off on a line: OnImConnectorStatusDelete to its owner {line_id, timeout?}",
        "deactivate_connector",
        body={"portal": _PORTAL, "line_id": _ID, "timeout": _TIMEOUT},
        required=("line_id",),
    ),
    _r(
        "POST",
        "/_portal/bots/{id}/messages",
        "a user writes to a chat bot: ONIMBOTMESSAGEADD to the bot's app, in the user's private dialog "
        "with it, or in an open-line chat it was added to {text, user_id?, chat_id?, auth?, timeout?}",
        "bot_message",
        body={
            "portal": _PORTAL,
            "text": _text(20000),
            "user_id": _ID,
            "chat_id": _ID,
            "auth": _AUTH,
            "timeout": _TIMEOUT,
        },
        required=("text",),
        status=201,
    ),
    _r(
        "POST",
        "/_portal/bots/{id}/join",
        "a user opens a dialog with a chat bot, or the bot is added to an open-line chat: ONIMBOTJOINCHAT "
        "to the bot's app {user_id?, chat_id?, auth?, timeout?}",
        "bot_join",
        body={"portal": _PORTAL, "user_id": _ID, "chat_id": _ID, "auth": _AUTH, "timeout": _TIMEOUT},
    ),
    _r("GET", "/_portal/robots", "the apps' automation rules (robots) and their runs", "list_robots"),
    _r(
        "POST",
        "/_portal/robots/{code}/run",
        "an automation runs a robot: the robot call to its handler, with a fresh event_token "
        "{client_id?, document_id?, document_type?, properties?, timeout_duration?, timeout?}",
        "run_robot",
        body={
            "portal": _PORTAL,
            "client_id": _text(128),
            "document_id": _DOCUMENT,
            "document_type": _DOCUMENT,
            "properties": {
                "type": "object",
                "maxProperties": 100,
                "description": "an object {property: value}",
            },
            "timeout_duration": {
                "type": "integer",
                "minimum": 0,
                "maximum": 10**9,
                "description": "a number of seconds >= 0",
            },
            "timeout": _TIMEOUT,
        },
        status=201,
    ),
    _r(
        "GET",
        "/_portal/deliveries",
        "delivery attempts, secrets redacted (paginated; ?event=, ?outcome=; ?min=N&timeout=S waits for N)",
        "list_deliveries",
        query={
            **_LIST_QUERY,
            "event": _text(100, "an event name"),
            "outcome": {"enum": list(OUTCOMES), "description": f"one of {', '.join(OUTCOMES)}"},
            **_WAIT_QUERY,
        },
        listing=True,
    ),
    _r(
        "GET",
        "/_portal/rest-calls",
        "REST calls, secrets redacted (paginated; ?method=; ?min=N&timeout=S waits until N are recorded)",
        "list_calls",
        query={**_LIST_QUERY, "method": _text(200, "a REST method name"), **_WAIT_QUERY},
        listing=True,
    ),
    _r(
        "POST",
        "/_portal/webhooks",
        "create an incoming webhook {user_id?, scopes?}",
        "add_webhook",
        body={"portal": _PORTAL, "user_id": _ID, "scopes": _SCOPES},
        status=201,
    ),
    _r(
        "POST",
        "/_portal/clock",
        "advance the portals' clock {advance: seconds}",
        "advance_clock",
        body={
            "advance": {
                "type": "number",
                "minimum": 0,
                "maximum": MAX_CLOCK_STEP,
                "description": f"a number of seconds >= 0 (at most {MAX_CLOCK_STEP:.0f})",
            }
        },
        query={},
    ),
    _r(
        "GET",
        "/_portal/ui",
        "the inspector: a page showing deliveries, REST calls, portals and apps live, with control buttons",
        "ui_page",
        query={},
        public=True,
        media=("text/html",),
    ),
    _r(
        "GET",
        "/_portal/ui/{asset}",
        "the inspector's script and style sheet",
        "ui_asset",
        query={},
        public=True,
        media=("text/javascript", "text/css"),
    ),
    _r(
        "POST",
        "/_portal/reset",
        "forget apps, tokens, chats, calls and deliveries (one portal with ?portal=)",
        "reset",
        body={"portal": _PORTAL},
    ),
)
"""Every control route, in the order ``GET /_portal`` lists them."""

CONTROL_ROUTES: Final[tuple[tuple[str, str, str], ...]] = tuple(
    (r.method, r.path.replace("{", "<").replace("}", ">"), r.summary) for r in ROUTES
)
"""The control API as (HTTP method, path with ``<name>`` segments, what it does), as GET /_portal lists it."""


def body_schema(route: Route) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(route.body or {}),
        "required": list(route.required),
        "additionalProperties": False,
    }


def query_schema(route: Route) -> dict[str, Any]:
    return {"type": "object", "properties": dict(route.query), "additionalProperties": False}


# ---------------------------------------------------------------------------------------------- OpenAPI


def _openapi_path(route: Route) -> str:
    return route.path


def openapi_document(*, secured: bool = False) -> dict[str, Any]:
    """The control API as an OpenAPI 3.1 document, built from :data:`ROUTES`."""
    error = {"$ref": "#/components/schemas/Error"}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "operationId": f"{route.handler}_{route.method.lower()}",
            "summary": route.summary,
            "parameters": [],
            "responses": {
                str(route.status): {
                    "description": "done",
                    "content": {
                        media: {"schema": {"type": "array"} if route.listing else {}} for media in route.media
                    },
                },
                "4XX": {
                    "description": "refused; nothing changed",
                    "content": {"application/json": {"schema": error}},
                },
            },
        }
        if route.public and secured:
            operation["security"] = []
        if route.listing:
            operation["responses"][str(route.status)]["headers"] = {
                "Link": {"description": 'the next page: <URL>; rel="next"', "schema": {"type": "string"}},
                "X-Next-After": {"description": "the next page's cursor", "schema": {"type": "string"}},
                "X-Cursor": {"description": "where this page stopped", "schema": {"type": "string"}},
            }
        for segment in route.segments:
            if segment.startswith("{"):
                name = segment[1:-1]
                schema: Mapping[str, Any] = (
                    {"type": "string", "pattern": "^[0-9]+$"}
                    if name == "id"
                    else {"type": "string", "minLength": 1}
                )
                operation["parameters"].append(
                    {"name": name, "in": "path", "required": True, "schema": schema}
                )
        for name, query_value in route.query.items():
            operation["parameters"].append(
                {"name": name, "in": "query", "required": False, "schema": dict(query_value)}
            )
        if route.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": body_schema(route)}},
            }
        paths.setdefault(_openapi_path(route), {})[route.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "b24-contract mock portal: control API",
            "version": "1",
            "description": "Drive the mock Bitrix24 portal from tests: apps, sessions, messages, records.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "error_description"],
                    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
                }
            }
        },
    }
    if secured:
        document["components"]["securitySchemes"] = {"control": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"control": []}]
    return document
