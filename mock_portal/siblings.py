"""Builders of the sibling events: the rest of the Open Lines family, the connector events, the app lifecycle.

Each is an :class:`~mock_portal.events.EventSpec` (:func:`sibling_specs`) that ``mock_portal.events``
registers, so ``build_event``, ``EventStream``, ``mock-portal emit`` and the portal build them exactly as
OnSessionStart: seeded, in the auth modes the event table gives each, as the PHP form body or doc-style JSON.
This module imports only the builders' base (``mock_portal._eventspec``), never ``mock_portal.events``.
The ``data`` blocks follow the doc pages (facts §4), as the schemas under ``schemas/<event>/docs.json``
describe them:

- OnSessionFinish: as OnSessionStart's docs-2026 shape, the session closed;
- OnOpenLineMessageAdd: ``DATA[n]{connector, chat, message, ref, extra}``; -Update / -Delete:
  ``CONNECTOR, LINE, DATA[n]{im, message{id}, chat{id}}``;
- OnImConnectorDialogStart / -Finish: ``CONNECTOR, LINE, DATA[0]{connector, session, chat, user}`` with the
  external chat and client ids;
- OnImConnectorMessageAdd / -Update / -Delete: ``CONNECTOR, LINE, MESSAGES[n]{im, message, chat}``, the
  shape of every connector capture;
- OnImConnectorStatusDelete: lower-case ``connector``, ``line``; OnImConnectorLineDelete: ``data`` is the
  bare line id;
- ONAPPUPDATE: ``VERSION, PREVIOUS_VERSION, LANGUAGE_ID``; ONAPPTEST: ``data[QUERY]``, the parameters of
  ``event.test`` (api-reference/events/test-handler.md).

Values beyond the shared record (message ids and texts, the external chat id, the previous version) come from
the event context when the portal passes them, else from a generator seeded by the drawn record, so the same
seed still gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Final

from mock_portal._eventspec import EventSpec, Record, _connector, _session, hand_spec

__all__ = ["CONNECTOR_EVENTS", "OPENLINES_EVENTS", "SIBLING_EVENTS", "sibling_specs"]

OPENLINES_EVENTS: Final = (
    "ONSESSIONSTART",
    "ONSESSIONFINISH",
    "ONOPENLINEMESSAGEADD",
    "ONOPENLINEMESSAGEUPDATE",
    "ONOPENLINEMESSAGEDELETE",
)
"""imopenlines events: every installed app that bound them receives them (facts §3, the module source)."""

CONNECTOR_EVENTS: Final = (
    "ONIMCONNECTORDIALOGSTART",
    "ONIMCONNECTORDIALOGFINISH",
    "ONIMCONNECTORMESSAGEADD",
    "ONIMCONNECTORMESSAGEUPDATE",
    "ONIMCONNECTORMESSAGEDELETE",
    "ONIMCONNECTORSTATUSDELETE",
    "ONIMCONNECTORLINEDELETE",
)
"""imconnector events: only the app that registered the connector receives them (facts §3)."""

SIBLING_EVENTS: Final = (
    *OPENLINES_EVENTS[1:],
    *CONNECTOR_EVENTS,
    "ONAPPINSTALL",
    "ONAPPUPDATE",
    "ONAPPUNINSTALL",
    "ONAPPTEST",
)

_TEXTS: Final = (
    "Здравствуйте! Чем могу помочь?",
    "Добрый день, заказ передан в доставку.",
    "[b]Оператор:[/b] [br]Уточните, пожалуйста, номер заказа",
    "Hello! How can I help you?",
    "Спасибо за обращение, хорошего дня!",
    "Please send a photo of the receipt & the serial number.",
    "Ваша заявка №{n} принята; ответим в течение 15 минут.",
    "Привет 👋",
)


def _message_values(rec: Record) -> Mapping[str, Any]:
    """A message id, its text, the external chat and message ids: stable for a given drawn record."""
    rng = random.Random(f"{rec['session_id']}:{rec['chat_id']}:{rec['ts']}")
    text = _TEXTS[rng.getrandbits(3)].replace("{n}", str(rng.randrange(1000, 99999)))
    # the shapes of external chat ids in the connector captures: hex, digits, a WhatsApp address
    forms = (
        f"{rng.getrandbits(128):032x}",
        str(rng.randrange(10**8, 10**10)),
        f"7{rng.randrange(10**9, 10**10)}@c.us",
    )
    external_chat = forms[rng.getrandbits(2) % 3]
    return {
        "message_id": 1 + rng.getrandbits(20),
        "message_text": text,
        "external_chat_id": external_chat,
        "external_message_id": f"ext-{rng.getrandbits(32):08x}",
        "previous_version": str(max(int(rec.get("version") or 1) - 1, 1)),
    }


_MESSAGE_TEXT: Final = frozenset({"message_text", "external_chat_id", "external_message_id"})


def _session_finish(v: Record, shape: str) -> dict[str, Any]:
    # as OnSessionStart docs-2026 (facts §3, §4); a finished session is closed
    item = {"connector": _connector(v), "session": _session(v, "Y"), "chat": {"id": v["chat_id"]}}
    item["user"] = {"id": v["external_user_id"]}
    return {"DATA": [item]}


def _openline_message_add(v: Record, shape: str) -> dict[str, Any]:
    # on-open-line-message-add.md; files and ref are empty lists there, which vanish on the wire (facts §1)
    message = {
        "id": v["message_id"],
        "date": "",
        "text": v["message_text"],
        "files": [],
        "attach": "",
        "system": "N",
        "user_id": v["user_id"],
    }
    item = {"connector": _connector(v), "chat": {"id": v["chat_id"]}, "message": message, "ref": []}
    item["extra"] = {"EXTRA_URL": ""}
    return {"DATA": [item]}


def _openline_message_change(v: Record, shape: str) -> dict[str, Any]:
    # on-open-line-message-update.md / -delete.md
    item = {
        "im": {"chat_id": v["chat_id"], "message_id": v["message_id"]},
        "message": {"id": v["message_id"]},
        "chat": {"id": v["chat_id"]},
    }
    return {"CONNECTOR": v["connector_id"], "LINE": v["line_id"], "DATA": [item]}


def _dialog(closed: str) -> Any:
    def data(v: Record, shape: str) -> dict[str, Any]:
        # on-im-connector-dialog-start.md / -finish.md: external chat and client ids (facts §4)
        item = {
            "connector": _connector(v),
            "session": _session(v, closed),
            "chat": {"id": v["external_chat_id"]},
            "user": {"id": v["external_user_id"]},
        }
        return {"CONNECTOR": v["connector_id"], "LINE": v["line_id"], "DATA": [item]}

    return data


def _connector_message(kind: str) -> Any:
    def data(v: Record, shape: str) -> dict[str, Any]:
        # the connector captures (captures/ONIMCONNECTORMESSAGEADD-*) and the -update/-delete pages
        if kind == "add":
            message: dict[str, Any] = {"user_id": v["user_id"], "text": v["message_text"]}
        elif kind == "update":
            message = {"id": [v["external_message_id"]], "text": v["message_text"]}
        else:
            message = {"id": v["external_message_id"]}
        item = {
            "im": {"chat_id": v["chat_id"], "message_id": v["message_id"]},
            "message": message,
            "chat": {"id": v["external_chat_id"]},
        }
        return {"CONNECTOR": v["connector_id"], "LINE": v["line_id"], "MESSAGES": [item]}

    return data


def _status_delete(v: Record, shape: str) -> dict[str, Any]:
    return {"connector": v["connector_id"], "line": v["line_id"]}  # lower case on this page (facts §4)


def _line_delete(v: Record, shape: str) -> Any:
    return v["line_id"]  # data is the bare line id (facts §4)


def _app_update(v: Record, shape: str) -> dict[str, Any]:
    return {
        "VERSION": v["version"],
        "PREVIOUS_VERSION": v["previous_version"],
        "LANGUAGE_ID": v["language_id"],
    }


def _app_test(v: Record, shape: str) -> dict[str, Any]:
    # event.test passes its own parameters through as data[QUERY] (api-reference/events/test-handler.md)
    return {"QUERY": {"any": "data"}}


def _spec(name: str, data: Any, *, messages: bool = False) -> EventSpec:
    if messages:
        return hand_spec(name, data, draw=_message_values, text_fields=_MESSAGE_TEXT)
    return hand_spec(name, data)


def sibling_specs() -> tuple[EventSpec, ...]:
    """The builders of the sibling events; shapes and auth modes come from the event table (ONAPPUPDATE
    carries the OAuth tokens as ONAPPINSTALL does, without refresh_token; event.test works only with an
    application's token, so ONAPPTEST is user mode: facts §2)."""
    return (
        _spec("ONSESSIONFINISH", _session_finish),
        _spec("ONOPENLINEMESSAGEADD", _openline_message_add, messages=True),
        _spec("ONOPENLINEMESSAGEUPDATE", _openline_message_change, messages=True),
        _spec("ONOPENLINEMESSAGEDELETE", _openline_message_change, messages=True),
        _spec("ONIMCONNECTORDIALOGSTART", _dialog("N"), messages=True),
        _spec("ONIMCONNECTORDIALOGFINISH", _dialog("Y"), messages=True),
        _spec("ONIMCONNECTORMESSAGEADD", _connector_message("add"), messages=True),
        _spec("ONIMCONNECTORMESSAGEUPDATE", _connector_message("update"), messages=True),
        _spec("ONIMCONNECTORMESSAGEDELETE", _connector_message("delete"), messages=True),
        _spec("ONIMCONNECTORSTATUSDELETE", _status_delete),
        _spec("ONIMCONNECTORLINEDELETE", _line_delete),
        _spec("ONAPPUPDATE", _app_update, messages=True),
        _spec("ONAPPTEST", _app_test),
    )
