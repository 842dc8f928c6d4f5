"""From a call to a method: who calls (OAuth token or incoming webhook), whether they may, and recording it.

Refusals follow facts §5: 401 ``NO_AUTH_FOUND`` / ``invalid_token`` / ``expired_token``, 404
``ERROR_METHOD_NOT_FOUND``, 403 ``WRONG_AUTH_TYPE`` for webhooks on app-only methods, 403
``insufficient_scope``.

A method the portal implements runs with its own checks (more precise than the spec's: the documented error
codes of its page, and parameters real SDKs send that a page leaves out). Every other name goes to
:func:`~mock_portal.rest.unsimulated.call_documented`: ``ERROR_METHOD_NOT_FOUND`` only when the docs do not
have it, else its spec's checks, then the seeded dataset or an honest refusal. Batch commands come through
here too, one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.rest.params import error
from mock_portal.rest.registry import METHODS, Caller

if TYPE_CHECKING:
    from mock_portal.portal import Portal


def normalize_method(method: str) -> str:
    """A method name as the registry keys it: lowercase, no slashes, no ``.json``."""
    name = method.strip().strip("/").lower()
    if name.endswith(".json"):
        name = name[: -len(".json")]
    return name


def authenticate(
    portal: Portal,
    params: Mapping[str, Any],
    token: str | None,
    webhook: tuple[str, str] | None,
    http_method: str,
) -> Caller:
    """The caller of a REST call: the webhook's user, or the app and user of the token (param ``auth``)."""
    if webhook is not None:
        user_raw, code = webhook
        found = portal.webhooks.get(code)
        if found is None or not user_raw.isdigit() or int(user_raw) != found[0]:
            raise error("NO_AUTH_FOUND", "Wrong authorization data", 401)
        return Caller(portal, None, found[0], found[1], None, http_method, webhook=code)
    if token is None:
        raw = params.get("auth")
        token = raw if isinstance(raw, str) else None
    if not token:
        raise error("NO_AUTH_FOUND", "Wrong authorization data", 401)
    found_token = portal.authenticate(token)
    return Caller(portal, found_token.client_id, found_token.user_id, found_token.scopes, token, http_method)


def dispatch(caller: Caller, method: str, params: dict[str, Any]) -> Any:
    """Run registered ``method`` for ``caller`` after its access checks; return its result."""
    spec = METHODS.get(method)
    if spec is None:
        from mock_portal.rest.unsimulated import call_documented

        return call_documented(caller, method, params)
    if spec.app_only and caller.client_id is None:
        # event.bind and imconnector.* work only in an application's OAuth context (facts §5)
        raise error(
            "WRONG_AUTH_TYPE",
            "Current authorization type is denied for this method Application context required",
            403,
        )
    if spec.scopes and not any(scope in caller.scopes for scope in spec.scopes):
        raise error(
            "insufficient_scope",
            "The request requires higher privileges than provided by the access token",
            403,
        )
    return spec.handler(caller, params)


def record(
    caller: Caller, method: str, params: Any, status: int, result: Any, error: str | None, http_method: str
) -> None:
    """Record a call made by ``caller`` on its portal."""
    caller.portal.record_call(
        method=method,
        params=params,
        token=caller.token,
        client_id=caller.client_id,
        status=status,
        result=result,
        error=error,
        http_method=http_method,
    )
