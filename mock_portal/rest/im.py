"""The ``im.*`` methods."""

from __future__ import annotations

from typing import Any

from mock_portal.rest.params import param
from mock_portal.rest.registry import Caller, method


@method("im.message.add", scopes=("im",))
def message_add(caller: Caller, params: dict[str, Any]) -> Any:
    dialog, text = param(params, "DIALOG_ID"), param(params, "MESSAGE")
    raw = dialog[4:] if isinstance(dialog, str) and dialog.lower().startswith("chat") else ""
    if raw.isdigit() and int(raw) in caller.portal.chats and isinstance(text, str) and text.strip():
        # an operator's message in an Open Lines chat: OnOpenLineMessageAdd, and out through the connector
        message, _ = caller.portal.send_operator_message(
            dialog, text, author_id=caller.user_id, client_id=caller.client_id
        )
    else:
        message = caller.portal.add_message(caller.client_id, dialog, text, author_id=caller.user_id)
    caller.portal.notify_bots(str(dialog), message)  # ONIMBOTMESSAGEADD to the bots it reaches
    return message.id
