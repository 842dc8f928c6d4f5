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


def _statuses(caller: Caller, params: dict[str, Any]) -> list[dict[str, Any]]:
    _owned_connector(caller, required(params, "CONNECTOR"))
    integer(required(params, "LINE"), "LINE")
    messages = as_list(required(params, "MESSAGES"), "MESSAGES")
    if not all(isinstance(item, dict) for item in messages):
        raise error("ERROR_ARGUMENT", "The MESSAGES parameter must be an array of messages (arrays)")
    return messages


@method("imconnector.send.status.delivery", scopes=CONNECTOR_SCOPES, app_only=True)
def send_status_delivery(caller: Caller, params: dict[str, Any]) -> Any:
    # the connector confirms it delivered operator messages to the external channel (example-connector.md,
    # step 5): MESSAGES[n]{im{chat_id, message_id}, message{id[]}, chat{id}}, by the connector's owner only;
    # the answer is SUCCESS with an empty DATA (imconnector-send-status-delivery.md), whatever the ids name
    _statuses(caller, params)
    return {"SUCCESS": True, "DATA": []}


@method("imconnector.send.status.reading", scopes=CONNECTOR_SCOPES, app_only=True)
def send_status_reading(caller: Caller, params: dict[str, Any]) -> Any:
    # the client read the operator's messages in the channel (imconnector-send-status-reading.md)
    _statuses(caller, params)
    return {"SUCCESS": True, "DATA": []}


def _changed_messages(caller: Caller, params: dict[str, Any], *, delete: bool) -> dict[str, Any]:
    assert caller.client_id is not None
    connector_id = str(required(params, "CONNECTOR"))
    line_id = integer(required(params, "LINE"), "LINE")
    messages = as_list(required(params, "MESSAGES"), "MESSAGES")
    for item in messages:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), dict) for k in ("user", "message", "chat")
        ):
            raise error("ERROR_ARGUMENT", "The incorrect structure of a message inside MESSAGES parameter")
    results = []
    for item in messages:
        external = item["message"]
        text = external.get("text")
        changed = caller.portal.change_external_message(
            caller.client_id,
            connector_id,
            line_id,
            external_user_id=str(item["user"].get("id", "")),
            external_chat_id=str(item["chat"].get("id", "")),
            external_message_id=str(external.get("id", "")),
            text=None if text is None else str(text),
            delete=delete,
        )
        row: dict[str, Any] = {
            "user": str(caller.portal.chats[changed.chat_id].user_id) if changed is not None else "",
            "message": {"id": str(external.get("id", ""))},
            "chat": {"id": str(item["chat"].get("id", ""))},
            "SUCCESS": changed is not None,
        }
        if not delete:
            row["message"].update(date=external.get("date", {}), text=str(text or ""))
        results.append(row)
    return {"SUCCESS": True, "DATA": {"RESULT": results}}


@method("imconnector.update.messages", scopes=CONNECTOR_SCOPES, app_only=True)
def update_messages(caller: Caller, params: dict[str, Any]) -> Any:
    return _changed_messages(caller, params, delete=False)


@method("imconnector.delete.messages", scopes=CONNECTOR_SCOPES, app_only=True)
def delete_messages(caller: Caller, params: dict[str, Any]) -> Any:
    return _changed_messages(caller, params, delete=True)


@method("imconnector.chat.name.set", scopes=("imconnector",), app_only=True)
def chat_name_set(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    names = {name: param(params, name) for name in ("CONNECTOR", "LINE", "CHAT_ID", "NAME")}
    if any(value in (None, "") for value in names.values()):
        raise error(
            "ERROR_ARGUMENT",
            "Required parameters `NAME`, `CHAT_ID`, `USER_ID`, `CONNECTOR`, or `LINE` are missing",
        )
    caller.portal.name_external_chat(
        caller.client_id,
        str(names["CONNECTOR"]),
        integer(names["LINE"], "LINE"),
        str(names["CHAT_ID"]),
        str(names["NAME"]),
    )
    return {"SUCCESS": True, "DATA": {"RESULT": {}}}


BUILT_IN_CONNECTORS = {"livechat": "Live chat"}
"""The channels a portal has without any app: its own web chat (where sessions start by default)."""


@method("imconnector.list", scopes=CONNECTOR_SCOPES, app_only=True)
def connector_list(caller: Caller, params: dict[str, Any]) -> Any:
    out = dict(BUILT_IN_CONNECTORS)
    out.update({c.id: c.name for c in caller.portal.connectors.values()})
    return out
