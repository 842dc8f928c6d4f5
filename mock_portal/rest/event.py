"""The ``event.*`` methods: binding handlers and ``event.test`` (application context only, facts §5)."""

from __future__ import annotations

from typing import Any

from mock_portal.rest.params import integer, param
from mock_portal.rest.registry import Caller, method


def _auth_type(params: dict[str, Any], default: int | None) -> int | None:
    raw = param(params, "auth_type")
    return integer(raw, "auth_type") if raw not in (None, "") else default


@method("event.bind", app_only=True)
def event_bind(caller: Caller, params: dict[str, Any]) -> Any:
    assert caller.client_id is not None
    event_type = param(params, "event_type") or "online"
    caller.portal.bind(
        caller.client_id,
        param(params, "event"),
        param(params, "handler"),
        auth_type=_auth_type(params, 0) or 0,
        event_type=str(event_type).lower(),
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
