"""The OAuth server's ``/oauth/token/`` (facts §5): ``grant_type=refresh_token`` with client id and secret."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mock_portal.portal import PortalError
from mock_portal.rest.params import RestResponse, error_response

if TYPE_CHECKING:
    from mock_portal.portal import Portal


def _record(
    portal: Portal, params: Mapping[str, Any], client_id: Any, status: int, result: Any, error: Any
) -> None:
    portal.record_call(
        method="oauth.token",
        params=dict(params),
        token=None,
        client_id=client_id if isinstance(client_id, str) else None,
        status=status,
        result=result,
        error=error,
        http_method="GET",
    )


def handle_oauth(portals: Iterable[Portal], params: Mapping[str, Any]) -> RestResponse:
    """Refresh a token pair. The refresh token says which portal issued it; the answer is a new token pair
    and the portal's endpoints."""
    grant = params.get("grant_type")
    refresh_token = params.get("refresh_token")
    portal_list = list(portals)
    if grant != "refresh_token":
        return RestResponse(
            400,
            {
                "error": "unsupported_grant_type",
                "error_description": "only grant_type=refresh_token is supported",
            },
        )
    owner = next(
        (p for p in portal_list if isinstance(refresh_token, str) and p.owns_refresh_token(refresh_token)),
        None,
    )
    if owner is None:
        client_id = params.get("client_id")
        owner = next((p for p in portal_list if isinstance(client_id, str) and client_id in p.apps), None)
        if owner is not None:
            _record(owner, params, client_id, 400, None, "invalid_grant")
        return RestResponse(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
    try:
        token = owner.refresh(
            client_id=params.get("client_id"),
            client_secret=params.get("client_secret"),
            refresh_token=refresh_token,
        )
    except PortalError as exc:
        _record(owner, params, None, exc.status, None, exc.code)
        return error_response(exc)
    body = {
        "access_token": token.access_token,
        "expires": token.expires,
        "expires_in": token.expires_in,
        "scope": ",".join(token.scopes),
        "domain": owner.domain,
        "server_endpoint": owner.server_endpoint,
        "status": owner.status,
        "client_endpoint": owner.client_endpoint,
        "member_id": owner.member_id,
        "user_id": token.user_id,
        "refresh_token": token.refresh_token,
    }
    _record(owner, params, token.client_id, 200, body, None)
    return RestResponse(200, body)
