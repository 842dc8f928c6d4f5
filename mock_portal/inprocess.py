"""The portal's REST and OAuth URLs answered in process (``responses``), for handlers using ``requests``.

::

    portal = Portal()
    with intercept(portal):                       # a started responses.RequestsMock
        requests.post(portal.client_endpoint + "im.message.add.json", data={...})  # mock_portal.rest answers

or, with a ``RequestsMock`` of your own: ``register(rsps, portal, other_portal)``. The callbacks call the same
transport-free core as the HTTP server (:func:`mock_portal.rest.handle_rest_path` and
:func:`~mock_portal.rest.handle_oauth`), so answers and recorded calls are identical. Events still reach the
handler through :mod:`mock_portal.delivery`; route the handler's URLs to an in-process target with
:meth:`Portal.route <mock_portal.portal.Portal.route>` to keep everything off the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mock_portal.errors import UsageError
from mock_portal.portal import Portal, PortalError
from mock_portal.rest import RestResponse, handle_oauth, handle_rest_path, parse_params

if TYPE_CHECKING:
    import responses
    from requests import PreparedRequest

__all__ = ["intercept", "register"]

_Reply = tuple[int, dict[str, str], bytes]
_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def _body_bytes(request: PreparedRequest) -> bytes:
    body: Any = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    # a generator or file-like body: read it whole (REST bodies are small; parse_params caps the size)
    if hasattr(body, "read"):
        return bytes(body.read())
    return b"".join(chunk if isinstance(chunk, bytes) else str(chunk).encode() for chunk in body)


def _reply(response: RestResponse) -> _Reply:
    return response.status, dict(_HEADERS), response.json_bytes()


def _error_reply(exc: PortalError) -> _Reply:
    return _reply(RestResponse(exc.status, {"error": exc.code, "error_description": exc.description}))


def _rest_callback(portal: Portal, prefix: str) -> Any:
    def callback(request: PreparedRequest) -> _Reply:
        parts = urlsplit(request.url or "")
        path = parts.path
        prefix_path = urlsplit(prefix).path
        rest_path = path[len(prefix_path) :] if path.startswith(prefix_path) else ""
        return _reply(
            handle_rest_path(
                portal,
                rest_path,
                http_method=(request.method or "GET").upper(),
                query=parts.query,
                body=_body_bytes(request),
                content_type=request.headers.get("Content-Type"),
            )
        )

    return callback


def _oauth_callback(portals: Sequence[Portal]) -> Any:
    def callback(request: PreparedRequest) -> _Reply:
        try:
            params = parse_params(
                urlsplit(request.url or "").query, _body_bytes(request), request.headers.get("Content-Type")
            )
        except PortalError as exc:
            return _error_reply(exc)
        return _reply(handle_oauth(portals, params))

    return callback


def _server_rest_callback(portals: Sequence[Portal], prefix: str) -> Any:
    # REST through the OAuth server (the events' server_endpoint): the token says which portal answers
    def callback(request: PreparedRequest) -> _Reply:
        parts = urlsplit(request.url or "")
        body = _body_bytes(request)
        try:
            params = parse_params(parts.query, body, request.headers.get("Content-Type"))
        except PortalError as exc:
            return _error_reply(exc)
        token = params.get("auth")
        portal = next((p for p in portals if isinstance(token, str) and token in p.tokens), portals[0])
        rest_path = parts.path[len(urlsplit(prefix).path) :]
        return _reply(
            handle_rest_path(
                portal,
                rest_path,
                http_method=(request.method or "GET").upper(),
                query=parts.query,
                body=body,
                content_type=request.headers.get("Content-Type"),
            )
        )

    return callback


def register(rsps: responses.RequestsMock, *portals: Portal) -> None:
    """Answer every portal's REST URL (its ``client_endpoint``), its OAuth token URL and ``server_endpoint``.

    Portals sharing an OAuth server (default ``https://oauth.bitrix.info/``) share one callback, which finds
    the portal from the refresh token, as the real OAuth server does.
    """
    if not portals:
        raise UsageError("register(): give at least one Portal")
    methods = ("GET", "POST")
    for portal in portals:
        pattern = re.compile(re.escape(portal.client_endpoint) + r"[^?#]*(?:\?.*)?$")
        for method in methods:
            rsps.add_callback(method, pattern, callback=_rest_callback(portal, portal.client_endpoint))
    by_oauth: dict[str, list[Portal]] = {}
    by_server: dict[str, list[Portal]] = {}
    for portal in portals:
        by_oauth.setdefault(portal.oauth_url, []).append(portal)
        by_server.setdefault(portal.server_endpoint, []).append(portal)
    for url, group in by_oauth.items():
        pattern = re.compile(re.escape(url.rstrip("/")) + r"/?(?:\?.*)?$")
        for method in methods:
            rsps.add_callback(method, pattern, callback=_oauth_callback(group))
    for url, group in by_server.items():
        pattern = re.compile(re.escape(url) + r"[^?#]*(?:\?.*)?$")
        for method in methods:
            rsps.add_callback(method, pattern, callback=_server_rest_callback(group, url))


@contextmanager
def intercept(*portals: Portal, passthrough: Sequence[str] = ()) -> Iterator[responses.RequestsMock]:
    """A started ``responses.RequestsMock`` answering the portals' URLs (see :func:`register`).

    Requests to any other URL fail as ``responses`` makes them fail, unless they start with one of
    ``passthrough``. Nothing is asserted about unused callbacks.
    """
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for prefix in passthrough:
            rsps.add_passthru(prefix)
        register(rsps, *portals)
        yield rsps
