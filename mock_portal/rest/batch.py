"""``batch``: up to 50 commands in one call, each dispatched and recorded as its own call."""

from __future__ import annotations

from typing import Any

from mock_portal.errors import MockPortalError
from mock_portal.portal import PortalError
from mock_portal.rest.dispatch import dispatch, normalize_method, record
from mock_portal.rest.params import error, flag, param, time_block
from mock_portal.rest.registry import Caller
from mock_portal.restkit import Page

MAX_BATCH_COMMANDS = 50
"""Bitrix's limit on commands in one ``batch`` (ERROR_BATCH_LENGTH_EXCEEDED beyond it)."""


def batch(caller: Caller, params: dict[str, Any]) -> Any:
    """Run the ``cmd`` commands in order (stopping at the first error with ``halt``)."""
    from mock_portal.wire import decode

    commands = param(params, "cmd")
    if not isinstance(commands, dict) or not commands:
        raise error("ERROR_ARGUMENT", "Argument 'cmd' is null or empty")
    if len(commands) > MAX_BATCH_COMMANDS:
        raise error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
    halt = flag(param(params, "halt") or "0")
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for key, command in commands.items():
        if not isinstance(command, str) or not command:
            raise error("ERROR_ARGUMENT", f"batch command {key!r} must be a string 'method?params'")
        method, _, query = command.partition("?")
        method = normalize_method(method)
        start = caller.portal.clock.now()
        try:
            if method == "batch":
                raise error("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405)
            sub_params = decode(query) if query else {}
            result = dispatch(caller, method, sub_params)
            if isinstance(result, Page):
                result = result.result
        except PortalError as exc:
            errors[key] = {"error": exc.code, "error_description": exc.description}
            record(caller, method, {"command": command}, exc.status, None, exc.code, "BATCH")
            if halt:
                break
        except MockPortalError as exc:
            errors[key] = {"error": "ERROR_ARGUMENT", "error_description": str(exc)}
            record(caller, method, {"command": command}, 400, None, "ERROR_ARGUMENT", "BATCH")
            if halt:
                break
        else:
            results[key] = result
            times[key] = time_block(start, caller.portal.clock.now())
            record(caller, method, sub_params, 200, result, None, "BATCH")
    # PHP's json_encode writes an empty array as [] (so an empty result_error is a list)
    return {
        "result": results or [],
        "result_error": errors or [],
        "result_total": [],
        "result_next": [],
        "result_time": times or [],
    }
