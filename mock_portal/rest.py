"""The portal's REST side, transport-free: a method name, params and a token in; a status and Bitrix's
envelope out.

Both the HTTP server (``mock_portal.server``) and the in-process ``responses`` adapter
(``mock_portal.inprocess``) call :func:`handle_rest_path` and :func:`handle_oauth`, so the two answer
identically.

Envelopes follow facts §5: success ``{"result": ..., "time": {...}}``; errors ``{"error": CODE,
"error_description": ...}`` with the HTTP status Bitrix uses (401 ``expired_token`` / ``invalid_token`` /
``NO_AUTH_FOUND``, 404 ``ERROR_METHOD_NOT_FOUND``, 403 ``WRONG_AUTH_TYPE`` for webhooks on app-only methods,
400 ``ERROR_EVENT_NOT_FOUND`` ...). Every call is recorded on its portal (:meth:`Portal.record_call`), secrets
redacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mock_portal.errors import MockPortalError
from mock_portal.portal import Portal, PortalError

__all__ = [
    "MAX_BATCH_COMMANDS",
    "MAX_BODY_BYTES",
    "METHODS",
    "RestResponse",
    "call",
    "handle_oauth",
    "handle_rest_path",
    "parse_params",
]

MAX_BODY_BYTES = 1_048_576
"""The largest REST request body accepted (a 413 beyond it)."""
MAX_BATCH_COMMANDS = 50
"""Bitrix's limit on commands in one ``batch`` (ERROR_BATCH_LENGTH_EXCEEDED beyond it)."""
_MAX_JSON_DEPTH = 64  # the same nesting limit PHP applies to form bodies (facts §7)


@dataclass(frozen=True)
class RestResponse:
    """An HTTP status and a JSON body."""

    status: int
    body: Any

    def json_bytes(self) -> bytes:
        """The body as Bitrix would send it (UTF-8 JSON)."""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (2xx and no ``error`` key)."""
        return 200 <= self.status < 300 and not (isinstance(self.body, dict) and "error" in self.body)


@dataclass(frozen=True)
class _Caller:
    portal: Portal
    client_id: str | None  # None: an incoming webhook
    user_id: int
    scopes: tuple[str, ...]
    token: str | None
    http_method: str


_Handler = Callable[[_Caller, dict[str, Any]], Any]


@dataclass(frozen=True)
class _Method:
    handler: _Handler
    scopes: tuple[str, ...]  # any of these grants access; () = no scope needed
    app_only: bool  # webhooks are refused (WRONG_AUTH_TYPE)


# ------------------------------------------------------------------------------------------ helpers
def _error(code: str, description: str, status: int = 400) -> PortalError:
    return PortalError(code, description, status)


def _param(params: Mapping[str, Any], name: str) -> Any:
    # Bitrix reads most parameters case-insensitively (PHP SDK: EVENT/HANDLER, the docs: event/handler)
    if name in params:
        return params[name]
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def _required(params: Mapping[str, Any], name: str) -> Any:
    value = _param(params, name)
    if value is None or value == "" or value == [] or value == {}:
        raise _error("ERROR_ARGUMENT", f"Argument '{name}' is null or empty")
    return value


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise _error("ERROR_ARGUMENT", f"Argument '{name}' must be an integer, got {str(value)[:40]!r}")


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("1", "Y", "TRUE", "ON")
    return bool(value)


def _as_list(value: Any, name: str) -> list[Any]:
    # a PHP list arrives form-encoded as a dict with keys 0..n-1 (facts §1)
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    raise _error("ERROR_ARGUMENT", f"The value of an argument '{name}' must be of type array")


def _time_block(start: float, finish: float) -> dict[str, Any]:
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")

    return {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": finish - start,
        "date_start": iso(start),
        "date_finish": iso(finish),
        "operating_reset_at": int(start) + 600,
        "operating": 0,
    }


# ------------------------------------------------------------------------------------------ methods
def _event_bind(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    auth_type = _param(params, "auth_type")
    event_type = _param(params, "event_type") or "online"
    caller.portal.bind(
        caller.client_id,
        _param(params, "event"),
        _param(params, "handler"),
        auth_type=_int(auth_type, "auth_type") if auth_type not in (None, "") else 0,
        event_type=str(event_type).lower(),
    )
    return True


def _event_unbind(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    auth_type = _param(params, "auth_type")
    count = caller.portal.unbind(
        caller.client_id,
        _param(params, "event"),
        _param(params, "handler"),
        auth_type=_int(auth_type, "auth_type") if auth_type not in (None, "") else None,
    )
    return {"count": count}


def _event_get(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    return [binding.public() for binding in caller.portal.bindings_of(caller.client_id)]


def _event_test(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    query = {k: v for k, v in params.items() if k != "auth"}
    caller.portal.fire_test(caller.client_id, query)
    return 1  # the docs' example answer (test-handler.md)


def _app_info(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    app = caller.portal.app(caller.client_id)
    return {
        "ID": list(caller.portal.apps).index(app.client_id) + 1,
        "CODE": app.code or app.client_id,
        "VERSION": app.version,
        "STATUS": caller.portal.status,
        "INSTALLED": app.installed,
        "PAYMENT_EXPIRED": "N",
        "DAYS": None,
        "LANGUAGE_ID": caller.portal.language_id,
        "LICENSE": "en_project",
        "LICENSE_TYPE": "project",
        "LICENSE_FAMILY": "project",
    }


def _connector_register(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    connector_id = _param(params, "ID")
    if not isinstance(connector_id, str) or not connector_id:
        raise _error("CONNECTOR_ID_REQUIRED", "Connector ID is not specified", 200)
    if "." in connector_id:
        raise _error(
            "APPLICATION_REGISTRATION_ERROR_POINT",
            "Application registration error. Using a dot in the connector identifier is not allowed",
            200,
        )
    name = _param(params, "NAME")
    if not isinstance(name, str) or not name:
        raise _error("NAME_REQUIRED", "Connector name is not specified", 200)
    icon = _param(params, "ICON")
    if not isinstance(icon, dict) or not isinstance(_param(icon, "DATA_IMAGE"), str):
        raise _error("ICON_REQUIRED", "Connector icon is not specified", 200)
    placement = _param(params, "PLACEMENT_HANDLER")
    if not isinstance(placement, str) or not placement:
        raise _error("NO_PLACEMENT_HANDLER", "Failed to get embedding handler URL", 200)
    caller.portal.register_connector(caller.client_id, connector_id, name, placement_handler=placement)
    return {"result": True}


def _connector_unregister(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    connector_id = _param(params, "ID")
    caller.portal.unregister_connector(caller.client_id, str(connector_id or ""))
    return {"result": True}


def _owned_connector(caller: _Caller, connector_id: Any) -> str:
    connector = caller.portal.connectors.get(str(connector_id))
    if connector is None or connector.client_id != caller.client_id:
        raise _error(
            "IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a suitable provider for the connector"
        )
    return connector.id


def _connector_activate(caller: _Caller, params: dict[str, Any]) -> Any:
    connector_id = _owned_connector(caller, _required(params, "CONNECTOR"))
    line_id = _int(_required(params, "LINE"), "LINE")
    active = _param(params, "ACTIVE")
    if active is None or active == "":
        raise _error("ERROR_ARGUMENT", "Argument 'ACTIVE' is null or empty")
    if _flag(active):
        caller.portal.activate_connector(connector_id, line_id, True)
    else:
        caller.portal.deactivate_connector(connector_id, line_id)  # OnImConnectorStatusDelete to the owner
    return True


def _connector_status(caller: _Caller, params: dict[str, Any]) -> Any:
    connector_id = str(_required(params, "CONNECTOR"))
    line_param = _param(params, "LINE")
    line_id = _int(line_param, "LINE") if line_param not in (None, "") else 1
    line = caller.portal.lines.get(line_id)
    active = line is not None and connector_id in line.active_connectors
    configured = line is not None and connector_id in line.connector_data
    return {
        "LINE": line_id,
        "CONNECTOR": connector_id,
        "ERROR": False,
        "CONFIGURED": configured,
        "STATUS": active,
    }


def _connector_data_set(caller: _Caller, params: dict[str, Any]) -> Any:
    connector_id = _owned_connector(caller, _required(params, "CONNECTOR"))
    line_id = _int(_required(params, "LINE"), "LINE")
    data = _required(params, "DATA")
    if not isinstance(data, dict):
        raise _error("ERROR_ARGUMENT", "The value of an argument 'DATA' must be of type array")
    caller.portal.set_connector_data(connector_id, line_id, data)
    return True


def _send_messages(caller: _Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    connector_id = str(_required(params, "CONNECTOR"))
    line_id = _int(_required(params, "LINE"), "LINE")
    messages = _as_list(_required(params, "MESSAGES"), "MESSAGES")
    for item in messages:
        if not isinstance(item, dict):
            raise _error("ERROR_ARGUMENT", "The MESSAGES parameter must be an array of messages (arrays)")
        if not all(isinstance(item.get(k), dict) for k in ("user", "message", "chat")):
            raise _error("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
    results = []
    for item in messages:
        chat, session, message, _ = caller.portal.receive_external_message(
            caller.client_id,
            connector_id,
            line_id,
            external_user=item["user"],
            external_message=item["message"],
            external_chat=item["chat"],
        )
        results.append(
            {
                "user": str(chat.user_id),
                "message": {
                    "id": message.external_id or str(message.id),
                    "date": item["message"].get("date", {}),
                    "text": message.text,
                    "files": [],
                },
                "chat": {k: v for k, v in item["chat"].items() if k in ("id", "name", "url", "description")},
                "SUCCESS": True,
                "session": {"ID": str(session.id), "CHAT_ID": str(chat.id)},
            }
        )
    return {"SUCCESS": True, "DATA": {"RESULT": results}}


def _send_status_delivery(caller: _Caller, params: dict[str, Any]) -> Any:
    # the connector confirms it delivered operator messages to the external channel (example-connector.md,
    # step 5): MESSAGES[n]{im{chat_id, message_id}, message{id[]}, chat{id}}, by the connector's owner only
    connector_id = _owned_connector(caller, _required(params, "CONNECTOR"))
    line_id = _int(_required(params, "LINE"), "LINE")
    messages = _as_list(_required(params, "MESSAGES"), "MESSAGES")
    results = []
    for item in messages:
        im = item.get("im") if isinstance(item, dict) else None
        if not isinstance(im, dict):
            raise _error("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
        chat_id = _int(_required(im, "chat_id"), "im[chat_id]")
        message_id = _int(_required(im, "message_id"), "im[message_id]")
        chat = caller.portal.chats.get(chat_id)
        if chat is None or chat.connector_id != connector_id or chat.line_id != line_id:
            raise _error("ERROR_ARGUMENT", f"chat {chat_id} is not of {connector_id} on line {line_id}")
        results.append({"SUCCESS": True, "im": {"chat_id": chat_id, "message_id": message_id}})
    return {"SUCCESS": True, "DATA": {"RESULT": results}}


def _session_start(caller: _Caller, params: dict[str, Any]) -> Any:
    raw = _param(params, "CHAT_ID")
    try:
        chat_id = _int(raw, "CHAT_ID")
    except PortalError:
        raise _error("CHAT_ID", "The specified chat identifier is invalid") from None
    # a Bitrix user calls this method, so the event is in user mode (facts §2)
    caller.portal.start_session_in_chat(chat_id, auth="user")
    return True


def _dialog_get(caller: _Caller, params: dict[str, Any]) -> Any:
    portal = caller.portal
    session_id = _param(params, "SESSION_ID")
    key: Any = _param(params, "CHAT_ID") or _param(params, "DIALOG_ID")
    if session_id not in (None, ""):
        session = portal.sessions.get(_int(session_id, "SESSION_ID"))
        if session is None:
            raise _error("DIALOG_NOT_FOUND", "Dialog not found")
        key = session.chat_id
    user_code = _param(params, "USER_CODE")
    if key in (None, "") and isinstance(user_code, str):
        for chat in portal.chats.values():
            if user_code == f"{chat.connector_id}|{chat.line_id}|{chat.external_chat_id}|{chat.user_id}":
                key = chat.id
    if key in (None, ""):
        raise _error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    chat = portal.chat(_int(key, "CHAT_ID") if not isinstance(key, str) or key.isdigit() else key)
    session = portal.session_of_chat(chat.id)
    return {
        "dialog_id": chat.dialog_id,
        "chat_id": chat.id,
        "id": chat.id,
        "name": chat.name or f"Chat {chat.id}",
        "type": "lines",
        "entity_type": "LINES",
        "entity_id": f"{chat.connector_id}|{chat.line_id}|{chat.external_chat_id}|{chat.user_id}",
        "entity_data_1": f"N|NONE|0|N|N|{session.id if session else 0}",
        "owner": 0,
        "line_id": chat.line_id,
        "session_id": session.id if session else 0,
    }


def _message_add(caller: _Caller, params: dict[str, Any]) -> Any:
    dialog, text = _param(params, "DIALOG_ID"), _param(params, "MESSAGE")
    raw = dialog[4:] if isinstance(dialog, str) and dialog.lower().startswith("chat") else ""
    if raw.isdigit() and int(raw) in caller.portal.chats and isinstance(text, str) and text.strip():
        # an operator's message in an Open Lines chat: OnOpenLineMessageAdd, and out through the connector
        message, _ = caller.portal.send_operator_message(
            dialog, text, author_id=caller.user_id, client_id=caller.client_id
        )
        return message.id
    message = caller.portal.add_message(caller.client_id, dialog, text, author_id=caller.user_id)
    return message.id


_OPENLINES = ("imopenlines",)
_CONNECTOR = ("imconnector", "imopenlines")

METHODS: dict[str, _Method] = {
    "event.bind": _Method(_event_bind, (), True),
    "event.unbind": _Method(_event_unbind, (), True),
    "event.get": _Method(_event_get, (), True),
    "event.test": _Method(_event_test, (), True),
    "app.info": _Method(_app_info, (), True),
    "imconnector.register": _Method(_connector_register, _CONNECTOR, True),
    "imconnector.unregister": _Method(_connector_unregister, _CONNECTOR, True),
    "imconnector.activate": _Method(_connector_activate, _CONNECTOR, True),
    "imconnector.status": _Method(_connector_status, _CONNECTOR, True),
    "imconnector.connector.data.set": _Method(_connector_data_set, _CONNECTOR, True),
    "imconnector.send.messages": _Method(_send_messages, _CONNECTOR, True),
    "imconnector.send.status.delivery": _Method(_send_status_delivery, _CONNECTOR, True),
    "imopenlines.session.start": _Method(_session_start, _OPENLINES, False),
    "imopenlines.dialog.get": _Method(_dialog_get, _OPENLINES, False),
    "im.message.add": _Method(_message_add, ("im",), False),
}
"""The REST methods the mock portal answers (``batch`` is handled by :func:`call` itself)."""


# ------------------------------------------------------------------------------------------ dispatch
def _authenticate(
    portal: Portal,
    params: Mapping[str, Any],
    token: str | None,
    webhook: tuple[str, str] | None,
    http_method: str,
) -> _Caller:
    if webhook is not None:
        user_raw, code = webhook
        found = portal.webhooks.get(code)
        if found is None or not user_raw.isdigit() or int(user_raw) != found[0]:
            raise _error("NO_AUTH_FOUND", "Wrong authorization data", 401)
        return _Caller(portal, None, found[0], found[1], None, http_method)
    if token is None:
        raw = params.get("auth")
        token = raw if isinstance(raw, str) else None
    if not token:
        raise _error("NO_AUTH_FOUND", "Wrong authorization data", 401)
    found_token = portal.authenticate(token)
    return _Caller(portal, found_token.client_id, found_token.user_id, found_token.scopes, token, http_method)


def _dispatch(caller: _Caller, method: str, params: dict[str, Any]) -> Any:
    spec = METHODS.get(method)
    if spec is None:
        raise _error("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
    if spec.app_only and caller.client_id is None:
        # event.bind and imconnector.* work only in an application's OAuth context (facts §5)
        raise _error(
            "WRONG_AUTH_TYPE",
            "Current authorization type is denied for this method Application context required",
            403,
        )
    if spec.scopes and not any(scope in caller.scopes for scope in spec.scopes):
        raise _error(
            "insufficient_scope",
            "The request requires higher privileges than provided by the access token",
            403,
        )
    return spec.handler(caller, params)


def _batch(caller: _Caller, params: dict[str, Any]) -> Any:
    from mock_portal.wire import decode

    commands = _param(params, "cmd")
    if not isinstance(commands, dict) or not commands:
        raise _error("ERROR_ARGUMENT", "Argument 'cmd' is null or empty")
    if len(commands) > MAX_BATCH_COMMANDS:
        raise _error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
    halt = _flag(_param(params, "halt") or "0")
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for key, command in commands.items():
        if not isinstance(command, str) or not command:
            raise _error("ERROR_ARGUMENT", f"batch command {key!r} must be a string 'method?params'")
        method, _, query = command.partition("?")
        method = _normalize_method(method)
        start = caller.portal.clock.now()
        try:
            if method == "batch":
                raise _error("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405)
            sub_params = decode(query) if query else {}
            result = _dispatch(caller, method, sub_params)
        except PortalError as exc:
            errors[key] = {"error": exc.code, "error_description": exc.description}
            _record(caller, method, {"command": command}, exc.status, None, exc.code, "BATCH")
            if halt:
                break
        except MockPortalError as exc:
            errors[key] = {"error": "ERROR_ARGUMENT", "error_description": str(exc)}
            _record(caller, method, {"command": command}, 400, None, "ERROR_ARGUMENT", "BATCH")
            if halt:
                break
        else:
            results[key] = result
            times[key] = _time_block(start, caller.portal.clock.now())
            _record(caller, method, sub_params, 200, result, None, "BATCH")
    # PHP's json_encode writes an empty array as [] (so an empty result_error is a list)
    return {
        "result": results or [],
        "result_error": errors or [],
        "result_total": [],
        "result_next": [],
        "result_time": times or [],
    }


def _record(
    caller: _Caller, method: str, params: Any, status: int, result: Any, error: str | None, http_method: str
) -> None:
    caller.portal.record_call(
        method=method,
        params=params,
        token=caller.token,
        client_id=caller.client_id,
        status=status,
        result=result,
        error=error,
        http_method=http_method,
    )


def _normalize_method(method: str) -> str:
    name = method.strip().strip("/").lower()
    if name.endswith(".json"):
        name = name[: -len(".json")]
    return name


def call(
    portal: Portal,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    webhook: tuple[str, str] | None = None,
    http_method: str = "POST",
) -> RestResponse:
    """Call REST ``method`` on ``portal`` with ``params`` (token in ``token`` or in the ``auth`` param).

    ``webhook`` is ``(user_id, code)`` for webhook calls. Never raises for a bad request: each refusal
    is an error envelope with Bitrix's status, and every call is recorded on the portal. Events the call
    raises are queued and delivered by the portal's worker once it has returned (facts §1: the portal queues
    events, a queue server sends them), so a handler is never called back while its own call is open.
    """
    with portal.deferring_events():
        return _call(portal, method, params, token=token, webhook=webhook, http_method=http_method)


def _call(
    portal: Portal,
    method: str,
    params: Mapping[str, Any] | None,
    *,
    token: str | None,
    webhook: tuple[str, str] | None,
    http_method: str,
) -> RestResponse:
    name = _normalize_method(method)
    params_dict = dict(params or {})
    start = portal.clock.now()
    caller: _Caller | None = None
    try:
        caller = _authenticate(portal, params_dict, token, webhook, http_method)
        result = _batch(caller, params_dict) if name == "batch" else _dispatch(caller, name, params_dict)
    except PortalError as exc:
        response = RestResponse(exc.status, {"error": exc.code, "error_description": exc.description})
        portal.record_call(
            method=name,
            params=params_dict,
            token=token or (params_dict.get("auth") if isinstance(params_dict.get("auth"), str) else None),
            client_id=caller.client_id if caller else None,
            status=exc.status,
            result=None,
            error=exc.code,
            http_method=http_method,
        )
        return response
    body = {"result": result, "time": _time_block(start, portal.clock.now())}
    portal.record_call(
        method=name,
        params=params_dict,
        token=caller.token,
        client_id=caller.client_id,
        status=200,
        result=result,
        error=None,
        http_method=http_method,
    )
    return RestResponse(200, body)


# ------------------------------------------------------------------------------------------ transport helpers
def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise _error("INVALID_REQUEST", f"JSON nested deeper than {_MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def parse_params(query: str, body: bytes, content_type: str | None) -> dict[str, Any]:
    """Merge query-string and body params as PHP's ``$_REQUEST`` would (body wins); raise PortalError (400).

    Form bodies and query strings are parsed with :func:`mock_portal.wire.decode` (PHP ``parse_str``); a JSON
    body must be an object.
    """
    from mock_portal.jsonio import JsonInputError, loads_strict
    from mock_portal.wire import decode

    if len(body) > MAX_BODY_BYTES:
        raise _error("INVALID_REQUEST", f"request body larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        params: dict[str, Any] = dict(decode(query)) if query else {}
    except MockPortalError as exc:
        raise _error("INVALID_REQUEST", f"malformed query string: {exc}") from None
    if not body.strip():
        return params
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error("INVALID_REQUEST", f"request body is not UTF-8 (byte {exc.start})") from None
    if kind == "application/json" or (not kind and text.lstrip()[:1] in "{["):
        try:
            # strict: NaN, huge numbers and lone surrogates would break every later listing of the call
            loaded = loads_strict(text, max_depth=_MAX_JSON_DEPTH)
        except JsonInputError as exc:
            raise _error("INVALID_REQUEST", f"malformed JSON body: {exc}") from None
        if not isinstance(loaded, dict):
            raise _error("INVALID_REQUEST", "a JSON body must be an object of parameters")
        _check_depth(loaded)
        params.update(loaded)
        return params
    try:
        params.update(decode(text))
    except MockPortalError as exc:
        raise _error("INVALID_REQUEST", f"malformed form body: {exc}") from None
    return params


def handle_rest_path(
    portal: Portal, rest_path: str, *, http_method: str, query: str, body: bytes, content_type: str | None
) -> RestResponse:
    """Answer ``/rest/<rest_path>``: ``<method>[.json]`` (OAuth token) or ``<user>/<code>/<method>``."""
    try:
        params = parse_params(query, body, content_type)
    except PortalError as exc:
        return RestResponse(exc.status, {"error": exc.code, "error_description": exc.description})
    parts = [p for p in rest_path.split("/") if p]
    if len(parts) == 1:
        return call(portal, parts[0], params, http_method=http_method)
    if len(parts) == 3:
        return call(portal, parts[2], params, webhook=(parts[0], parts[1]), http_method=http_method)
    return RestResponse(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})


def handle_oauth(portals: Iterable[Portal], params: Mapping[str, Any]) -> RestResponse:
    """The OAuth server's ``/oauth/token/`` (facts §5): ``grant_type=refresh_token``, client id and secret.

    The refresh token says which portal issued it; the answer is a new token pair and the portal's endpoints.
    """
    grant = params.get("grant_type")
    refresh_token = params.get("refresh_token")
    portal_list = list(portals)
    if grant != "refresh_token":
        return RestResponse(
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "only grant_type=refresh_token is supported",
            },
        )
    owner = next(
        (p for p in portal_list if isinstance(refresh_token, str) and p.owns_refresh_token(refresh_token)),
        None,
    )
    if owner is None:
        client_id = params.get("client_id")
        owner = next((p for p in portal_list if isinstance(client_id, str) and client_id in p.apps), None)
        response = RestResponse(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
        if owner is not None:
            owner.record_call(
                method="oauth.token",
                params=dict(params),
                token=None,
                client_id=client_id if isinstance(client_id, str) else None,
                status=400,
                result=None,
                error="invalid_grant",
                http_method="GET",
            )
        return response
    try:
        token = owner.refresh(
            client_id=params.get("client_id"),
            client_secret=params.get("client_secret"),
            refresh_token=refresh_token,
        )
    except PortalError as exc:
        owner.record_call(
            method="oauth.token",
            params=dict(params),
            token=None,
            client_id=None,
            status=exc.status,
            result=None,
            error=exc.code,
            http_method="GET",
        )
        return RestResponse(exc.status, {"error": exc.code, "error_description": exc.description})
    body = {
        "access_token": token.access_token,
        "expires": token.expires,
        "expires_in": token.expires_in,
        "scope": ",".join(token.scopes),
        "domain": owner.domain,
        "server_endpoint": owner.server_endpoint,
        "status": owner.status,
        "client_endpoint": owner.client_endpoint,
        "member_id": owner.member_id,
        "user_id": token.user_id,
        "refresh_token": token.refresh_token,
    }
    owner.record_call(
        method="oauth.token",
        params=dict(params),
        token=None,
        client_id=token.client_id,
        status=200,
        result=body,
        error=None,
        http_method="GET",
    )
    return RestResponse(200, body)
