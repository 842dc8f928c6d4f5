"""The application automation rules (robots) over :mod:`mock_portal.portal.robots`, scope ``bizproc``:
``bizproc.robot.add``, ``bizproc.robot.update``, ``bizproc.robot.list``, ``bizproc.robot.delete`` and
``bizproc.event.send``.

Parameters, answers and error codes follow the method pages
(https://apidocs.bitrix24.com/api-reference/bizproc/bizproc-robot/index.html and the pages it lists). The
robot methods work only in an application's context (``ACCESS_DENIED`` "Application context required") and
for an administrator; ``bizproc.event.send`` works for anyone holding a valid, current ``EVENT_TOKEN``.
"""

from __future__ import annotations

from typing import Any, Final

from mock_portal.portal.robots import ROBOT_FIELDS
from mock_portal.rest.params import param
from mock_portal.rest.registry import Caller, method

BIZPROC_SCOPES: Final = ("bizproc",)
_ADD_PARAMS: Final = ("CODE", *ROBOT_FIELDS)


def _upper_keys(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The named parameters present, by their documented (upper-case) names; Bitrix reads them in any case."""
    found: dict[str, Any] = {}
    for name in names:
        value = param(params, name)
        if value is not None:
            found[name] = value
    return found


@method("bizproc.robot.add", scopes=BIZPROC_SCOPES)
def robot_add(caller: Caller, params: dict[str, Any]) -> Any:
    given = _upper_keys(params, _ADD_PARAMS)
    caller.portal.robot_add(caller.client_id, caller.user_id, given)
    return True


@method("bizproc.robot.update", scopes=BIZPROC_SCOPES)
def robot_update(caller: Caller, params: dict[str, Any]) -> Any:
    fields = param(params, "FIELDS")
    given = _upper_keys(fields, _ADD_PARAMS[1:]) if isinstance(fields, dict) else None
    caller.portal.robot_update(caller.client_id, caller.user_id, param(params, "CODE"), given)
    return True


@method("bizproc.robot.list", scopes=BIZPROC_SCOPES)
def robot_list(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.robot_codes(caller.client_id, caller.user_id)


@method("bizproc.robot.delete", scopes=BIZPROC_SCOPES)
def robot_delete(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.robot_delete(caller.client_id, caller.user_id, param(params, "CODE"))
    return True


@method("bizproc.event.send", scopes=BIZPROC_SCOPES)
def event_send(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.event_send(
        caller.client_id,
        param(params, "EVENT_TOKEN"),
        param(params, "RETURN_VALUES"),
        param(params, "LOG_MESSAGE"),
    )
    return True


__all__ = ["BIZPROC_SCOPES"]
