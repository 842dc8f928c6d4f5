"""The ``imopenlines.*`` methods."""

from __future__ import annotations

from typing import Any

from mock_portal.portal import PortalError
from mock_portal.rest.params import error, integer, param
from mock_portal.rest.registry import OPENLINES_SCOPES, Caller, method


@method("imopenlines.session.start", scopes=OPENLINES_SCOPES)
def session_start(caller: Caller, params: dict[str, Any]) -> Any:
    raw = param(params, "CHAT_ID")
    try:
        chat_id = integer(raw, "CHAT_ID")
    except PortalError:
        raise error("CHAT_ID", "The specified chat identifier is invalid") from None
    # a Bitrix user calls this method, so the event is in user mode (facts §2)
    caller.portal.start_session_in_chat(chat_id, auth="user")
    return True


@method("imopenlines.dialog.get", scopes=OPENLINES_SCOPES)
def dialog_get(caller: Caller, params: dict[str, Any]) -> Any:
    portal = caller.portal
    session_id = param(params, "SESSION_ID")
    key: Any = param(params, "CHAT_ID") or param(params, "DIALOG_ID")
    if session_id not in (None, ""):
        session = portal.sessions.get(integer(session_id, "SESSION_ID"))
        if session is None:
            raise error("DIALOG_NOT_FOUND", "Dialog not found")
        key = session.chat_id
    user_code = param(params, "USER_CODE")
    if key in (None, "") and isinstance(user_code, str):
        found = portal.chat_of_user_code(user_code)
        if found is not None:
            key = found.id
    if key in (None, ""):
        raise error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    chat = portal.chat(integer(key, "CHAT_ID") if not isinstance(key, str) or key.isdigit() else key)
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


@method("imopenlines.config.list.get", scopes=OPENLINES_SCOPES)
def config_list_get(caller: Caller, params: dict[str, Any]) -> Any:
    """The portal's open lines (https://apidocs.bitrix24.com/api-reference/imopenlines/openlines/
    imopenlines-config-list-get.html): ``PARAMS`` takes ``select``, ``order``, ``filter``, ``limit`` and
    ``offset``; the queue is the portal's administrator, who answers every line."""
    from mock_portal.rest.crm import select_items

    options = param(params, "PARAMS")
    options = options if isinstance(options, dict) else {}
    admin = caller.portal.user(1)
    queue_fields = {
        "1": {
            "USER_NAME": f"{admin['NAME']} {admin['LAST_NAME']}".strip(),
            "USER_WORK_POSITION": admin.get("WORK_POSITION") or None,
            "USER_AVATAR": "",
            "USER_AVATAR_ID": None,
        }
    }
    rows = [
        {
            "ID": str(line.id),
            "LINE_NAME": line.name,
            "ACTIVE": "Y",
            "QUEUE": [1],
            "QUEUE_USERS_FIELDS": queue_fields,
            "CONFIG_QUEUE": [],
        }
        for line in sorted(caller.portal.lines.values(), key=lambda line: line.id)
    ]
    rows = select_items(rows, options)
    offset = max(0, integer(param(options, "offset") or 0, "offset"))
    limit = param(options, "limit")
    rows = rows[offset : offset + integer(limit, "limit")] if limit not in (None, "") else rows[offset:]
    select = param(options, "select")
    if isinstance(select, (list, dict)) and select:
        names = [str(s).upper() for s in (select.values() if isinstance(select, dict) else select)]
        rows = [{k: v for k, v in row.items() if k in names} for row in rows]
    return rows
