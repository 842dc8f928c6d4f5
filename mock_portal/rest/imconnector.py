"""The ``imconnector.*`` methods: a REST connector's registration, activation, data and traffic.

All of them work only in an application's OAuth context (facts §5) and need ``imconnector`` or
``imopenlines``; most answer their refusals with HTTP 200, as the portal does.
"""

from __future__ import annotations

from typing import Any

from mock_portal.rest.params import as_list, error, flag, integer, param, required
from mock_portal.rest.registry import CONNECTOR_SCOPES, Caller, method


def _owned_connector(caller: Caller, connector_id: Any) -> str:
    connector = caller.portal.connectors.get(str(connector_id))
    if connector is None or connector.client_id != caller.client_id:
        raise error("IMCONNECTOR_NO_CORRECT_PROVIDER", "Failed to find a suitable provider for the connector")
    return connector.id


def _string(params: dict[str, Any], name: str, code: str, description: str) -> str:
    value = param(params, name)
    if not isinstance(value, str) or not value:
        raise error(code, description, 200)
    return value


@method("imconnector.register", scopes=CONNECTOR_SCOPES, app_only=True)
def register(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    connector_id = _string(params, "ID", "CONNECTOR_ID_REQUIRED", "Connector ID is not specified")
    if "." in connector_id:
        raise error(
            "APPLICATION_REGISTRATION_ERROR_POINT",
            "Application registration error. Using a dot in the connector identifier is not allowed",
            200,
        )
    name = _string(params, "NAME", "NAME_REQUIRED", "Connector name is not specified")
    icon = param(params, "ICON")
    if not isinstance(icon, dict) or not isinstance(param(icon, "DATA_IMAGE"), str):
        raise error("ICON_REQUIRED", "Connector icon is not specified", 200)
    placement = _string(
        params, "PLACEMENT_HANDLER", "NO_PLACEMENT_HANDLER", "Failed to get embedding handler URL"
    )
    caller.portal.register_connector(caller.client_id, connector_id, name, placement_handler=placement)
    return {"result": True}


@method("imconnector.unregister", scopes=CONNECTOR_SCOPES, app_only=True)
def unregister(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    connector_id = param(params, "ID")
    caller.portal.unregister_connector(caller.client_id, str(connector_id or ""))
    return {"result": True}


@method("imconnector.activate", scopes=CONNECTOR_SCOPES, app_only=True)
def activate(caller: Caller, params: dict[str, Any]) -> Any:
    connector_id = _owned_connector(caller, required(params, "CONNECTOR"))
    line_id = integer(required(params, "LINE"), "LINE")
    active = param(params, "ACTIVE")
    if active is None or active == "":
        raise error("ERROR_ARGUMENT", "Argument 'ACTIVE' is null or empty")
    if flag(active):
        caller.portal.activate_connector(connector_id, line_id, True)
    else:
        caller.portal.deactivate_connector(connector_id, line_id)  # OnImConnectorStatusDelete to the owner
    return True


@method("imconnector.status", scopes=CONNECTOR_SCOPES, app_only=True)
def status(caller: Caller, params: dict[str, Any]) -> Any:
    connector_id = str(required(params, "CONNECTOR"))
    line_param = param(params, "LINE")
    line_id = integer(line_param, "LINE") if line_param not in (None, "") else 1
    line = caller.portal.lines.get(line_id)
    return {
        "LINE": line_id,
        "CONNECTOR": connector_id,
        "ERROR": False,
        "CONFIGURED": line is not None and connector_id in line.connector_data,
        "STATUS": line is not None and connector_id in line.active_connectors,
    }


@method("imconnector.connector.data.set", scopes=CONNECTOR_SCOPES, app_only=True)
def connector_data_set(caller: Caller, params: dict[str, Any]) -> Any:
    connector_id = _owned_connector(caller, required(params, "CONNECTOR"))
    line_id = integer(required(params, "LINE"), "LINE")
    data = required(params, "DATA")
    if not isinstance(data, dict):
        raise error("ERROR_ARGUMENT", "The value of an argument 'DATA' must be of type array")
    caller.portal.set_connector_data(connector_id, line_id, data)
    return True


@method("imconnector.send.messages", scopes=CONNECTOR_SCOPES, app_only=True)
def send_messages(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    connector_id = str(required(params, "CONNECTOR"))
    line_id = integer(required(params, "LINE"), "LINE")
    messages = as_list(required(params, "MESSAGES"), "MESSAGES")
    for item in messages:
        if not isinstance(item, dict):
            raise error("ERROR_ARGUMENT", "The MESSAGES parameter must be an array of messages (arrays)")
        if not all(isinstance(item.get(k), dict) for k in ("user", "message", "chat")):
            raise error("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
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
        # a client's message reaches the open-line bots in the chat (ONIMBOTMESSAGEADD, system mode)
        caller.portal.notify_bots(chat.dialog_id, message, external=True)
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


@method("imconnector.send.status.delivery", scopes=CONNECTOR_SCOPES, app_only=True)
def send_status_delivery(caller: Caller, params: dict[str, Any]) -> Any:
    # the connector confirms it delivered operator messages to the external channel (example-connector.md,
    # step 5): MESSAGES[n]{im{chat_id, message_id}, message{id[]}, chat{id}}, by the connector's owner only
    connector_id = _owned_connector(caller, required(params, "CONNECTOR"))
    line_id = integer(required(params, "LINE"), "LINE")
    messages = as_list(required(params, "MESSAGES"), "MESSAGES")
    results = []
    for item in messages:
        im = item.get("im") if isinstance(item, dict) else None
        if not isinstance(im, dict):
            raise error("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
        chat_id = integer(required(im, "chat_id"), "im[chat_id]")
        message_id = integer(required(im, "message_id"), "im[message_id]")
        chat = caller.portal.chats.get(chat_id)
        if chat is None or chat.connector_id != connector_id or chat.line_id != line_id:
            raise error("ERROR_ARGUMENT", f"chat {chat_id} is not of {connector_id} on line {line_id}")
        results.append({"SUCCESS": True, "im": {"chat_id": chat_id, "message_id": message_id}})
    return {"SUCCESS": True, "DATA": {"RESULT": results}}
