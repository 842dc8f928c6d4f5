"""The ``event.*`` methods: binding handlers, ``event.test`` and the offline queue's ``event.offline.*``
(application context only, facts §5)."""

from __future__ import annotations

from typing import Any

from mock_portal.portal.offline import DEFAULT_LIMIT
from mock_portal.rest.params import as_list, error, integer, param, required
from mock_portal.rest.registry import Caller, method
from mock_portal.restkit import page


def _auth_type(params: dict[str, Any], default: int | None) -> int | None:
    raw = param(params, "auth_type")
    return integer(raw, "auth_type") if raw not in (None, "") else default


def _event_type(params: dict[str, Any]) -> str:
    raw = param(params, "event_type")
    return str(raw).strip().lower() if raw not in (None, "") else "online"


def _text(params: dict[str, Any], name: str) -> str:
    raw = param(params, name)
    if raw is None:
        return ""
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise error("ERROR_ARGUMENT", f"Argument '{name}' must be a string")
    return str(raw).strip()[:255]


@method("event.bind", app_only=True)
def event_bind(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    options = param(params, "options")
    if options not in (None, "") and not isinstance(options, dict):
        raise error("ERROR_ARGUMENT", "Argument 'options' must be an object")
    caller.portal.bind(
        caller.client_id,
        param(params, "event"),
        param(params, "handler"),
        auth_type=_auth_type(params, 0) or 0,
        event_type=_event_type(params),
        auth_connector=_text(params, "auth_connector"),
        options=options or None,
    )
    return True


@method("event.unbind", app_only=True)
def event_unbind(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    count = caller.portal.unbind(
        caller.client_id,
        param(params, "event"),
        param(params, "handler"),
        auth_type=_auth_type(params, None),
        event_type=_event_type(params),
    )
    return {"count": count}


@method("event.get", app_only=True)
def event_get(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    return [binding.public() for binding in caller.portal.bindings_of(caller.client_id)]


@method("event.test", app_only=True)
def event_test(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    query = {k: v for k, v in params.items() if k != "auth"}
    caller.portal.fire_test(caller.client_id, query)
    return 1  # the docs' example answer (test-handler.md)


# ----------------------------------------------------------------- offline events
# https://apidocs.bitrix24.com/api-reference/events/offline-events.html and the method pages


def _mapping(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    raw = param(params, name)
    if raw in (None, "", [], {}):
        return None
    if not isinstance(raw, dict):
        raise error("ERROR_ARGUMENT", f"Argument '{name}' must be an array of FIELD => value")
    return raw


def _switch(params: dict[str, Any], name: str, default: bool) -> bool:
    """A ``0|1`` parameter (``clear``, ``error``)."""
    raw = param(params, name)
    if raw in (None, ""):
        return default
    if isinstance(raw, str) and raw.strip().upper() in ("Y", "N"):
        return raw.strip().upper() == "Y"
    return integer(raw, name) != 0


def _strings(params: dict[str, Any], name: str) -> list[str] | None:
    raw = param(params, name)
    if raw in (None, "", [], {}):
        return None
    values = as_list(raw, name) if isinstance(raw, (list, dict)) else [raw]
    if any(isinstance(v, (list, dict)) for v in values):
        raise error("ERROR_ARGUMENT", f"The value of an argument '{name}' must be an array of scalars")
    return [str(v) for v in values]


@method("event.offline.get", app_only=True)
def event_offline_get(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    raw_limit = param(params, "limit")
    limit = DEFAULT_LIMIT if raw_limit in (None, "") else integer(raw_limit, "limit")
    return caller.portal.offline.get(
        caller.client_id,
        connector=_text(params, "auth_connector"),
        filter=_mapping(params, "filter"),
        order=_mapping(params, "order"),
        limit=limit,
        clear=_switch(params, "clear", True),
        process_id=_text(params, "process_id"),
        error=_switch(params, "error", False),
    )


@method("event.offline.clear", app_only=True)
def event_offline_clear(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    process_id = str(required(params, "process_id"))
    ids = _strings(params, "id")
    if ids is not None and not all(i.strip().isdigit() for i in ids):
        raise error("ERROR_ARGUMENT", "The value of an argument 'id' must be an array of record ids")
    caller.portal.offline.clear_process(
        caller.client_id,
        process_id,
        ids=[int(i) for i in ids] if ids is not None else None,
        message_ids=_strings(params, "message_id"),
    )
    return True


@method("event.offline.error", app_only=True)
def event_offline_error(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    process_id = str(required(params, "process_id"))
    caller.portal.offline.mark_error(caller.client_id, process_id, message_ids=_strings(params, "message_id"))
    return True


@method("event.offline.list", app_only=True)
def event_offline_list(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    rows = caller.portal.offline.list(
        caller.client_id,
        connector=_text(params, "auth_connector"),
        filter=_mapping(params, "filter"),
        order=_mapping(params, "order"),
    )
    return page(rows, param(params, "start"))  # 50 a page, with next and total (the method page)
