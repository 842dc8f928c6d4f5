"""Calling a REST method on a portal: count the request, authenticate, dispatch (or run a batch), answer,
record.

The portal's two limits (:mod:`mock_portal.restkit.limits`) wrap every call, on the portal clock:

- the request rate: one hit on the portal's leaky bucket per HTTP request (a ``batch`` is one request), before
  anything else; a full bucket answers 503 ``QUERY_LIMIT_EXCEEDED``;
- the method time budget, per app or webhook and per method: checked before the method runs (429
  ``OPERATION_TIME_LIMIT`` once spent) and charged after it, which fills ``time.operating`` and
  ``time.operating_reset_at`` of every success envelope.

A list method returns a :class:`~mock_portal.restkit.Page`; its ``next`` and ``total`` join the envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.portal import PortalError
from mock_portal.rest.batch import batch
from mock_portal.rest.dispatch import authenticate, dispatch, normalize_method
from mock_portal.rest.params import RestResponse, error_response
from mock_portal.rest.registry import Caller
from mock_portal.restkit import Page, RestError

if TYPE_CHECKING:
    from mock_portal.portal import Portal


def call(
    portal: Portal,
    method: str,
    params: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    webhook: tuple[str, str] | None = None,
    http_method: str = "POST",
) -> RestResponse:
    """Call REST ``method`` on ``portal`` with ``params`` (token in ``token`` or in the ``auth`` param).

    ``webhook`` is ``(user_id, code)`` for webhook calls. Never raises for a bad request: each refusal
    is an error envelope with Bitrix's status, and every call is recorded on the portal. Events the call
    raises are queued and delivered by the portal's worker once it has returned (facts §1: the portal queues
    events, a queue server sends them), so a handler is never called back while its own call is open.
    """
    source = (params or {}).get("auth_connector")  # offline events: the call's source key
    with portal.deferring_events(), portal.offline.source(source):
        return _call(portal, method, params, token=token, webhook=webhook, http_method=http_method)


def run_method(caller: Caller, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one method for an authenticated ``caller`` within its time budget; return the success envelope
    (``result``, ``next`` and ``total`` for a list, ``time``). Raises the method's refusal."""
    portal = caller.portal
    budget = portal.method_budget
    start = portal.clock.now()
    budget.check(caller.budget_key, name)
    result = dispatch(caller, name, params)
    body = result.envelope() if isinstance(result, Page) else {"result": result}
    body["time"] = budget.measure(caller.budget_key, name, start, portal.clock.now())
    return body


def _call(
    portal: Portal,
    method: str,
    params: Mapping[str, Any] | None,
    *,
    token: str | None,
    webhook: tuple[str, str] | None,
    http_method: str,
) -> RestResponse:
    name = normalize_method(method)
    params_dict = dict(params or {})
    caller: Caller | None = None
    try:
        portal.rate_limiter.hit(portal.domain)
        caller = authenticate(portal, params_dict, token, webhook, http_method)
        body = batch(caller, params_dict) if name == "batch" else run_method(caller, name, params_dict)
    except (PortalError, RestError) as exc:
        auth = params_dict.get("auth")
        portal.record_call(
            method=name,
            params=params_dict,
            token=token or (auth if isinstance(auth, str) else None),
            client_id=caller.client_id if caller else None,
            status=exc.status,
            result=None,
            error=exc.code,
            http_method=http_method,
        )
        return error_response(exc)
    portal.record_call(
        method=name,
        params=params_dict,
        token=caller.token,
        client_id=caller.client_id,
        status=200,
        result=body["result"],
        error=None,
        http_method=http_method,
    )
    return RestResponse(200, body)
