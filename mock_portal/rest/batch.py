"""``batch``: up to 50 commands in one request, run by :func:`mock_portal.restkit.run_batch` (``halt``,
``$result[...]`` / ``$next[...]`` substitution, per-command ``result_error``); each command is dispatched
within its own method's time budget and recorded as its own call."""

from __future__ import annotations

from typing import Any

from mock_portal.errors import MockPortalError
from mock_portal.portal import PortalError
from mock_portal.rest.dispatch import record
from mock_portal.rest.registry import Caller
from mock_portal.restkit import MAX_BATCH_COMMANDS, Outcome, RestError, run_batch

__all__ = ["MAX_BATCH_COMMANDS", "batch"]


def batch(caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    """Run the ``cmd`` commands in order; return the envelope (``result`` and the batch's own ``time``)."""
    from mock_portal.rest.invoke import run_method

    portal = caller.portal
    start = portal.clock.now()
    portal.method_budget.check(caller.budget_key, "batch")

    def execute(method: str, sub_params: dict[str, Any]) -> Outcome:
        try:
            body = run_method(caller, method, sub_params)
        except (PortalError, RestError) as exc:
            record(caller, method, sub_params, exc.status, None, exc.code, "BATCH")
            return Outcome(exc.status, {"error": exc.code, "error_description": exc.description})
        except MockPortalError as exc:  # a command's parameters the method cannot read
            record(caller, method, sub_params, 400, None, "ERROR_ARGUMENT", "BATCH")
            return Outcome(400, {"error": "ERROR_ARGUMENT", "error_description": str(exc)})
        record(caller, method, sub_params, 200, body["result"], None, "BATCH")
        return Outcome(200, body)

    try:
        result = run_batch(params, execute)
    except RestError as exc:
        raise PortalError(exc.code, exc.description, exc.status) from None
    timing = portal.method_budget.measure(caller.budget_key, "batch", start, portal.clock.now())
    return {"result": result, "time": timing}
