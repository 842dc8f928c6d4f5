"""From an HTTP request to a REST call: parameters as PHP's ``$_REQUEST`` reads them, and the REST paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mock_portal.errors import MockPortalError
from mock_portal.portal import PortalError
from mock_portal.rest.invoke import call
from mock_portal.rest.params import RestResponse, error, error_response

if TYPE_CHECKING:
    from mock_portal.portal import Portal

MAX_BODY_BYTES = 1_048_576
"""The largest REST request body accepted (a 413 beyond it)."""
_MAX_JSON_DEPTH = 64  # the same nesting limit PHP applies to form bodies (facts §7)


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            raise error("INVALID_REQUEST", f"JSON nested deeper than {_MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def parse_params(query: str, body: bytes, content_type: str | None) -> dict[str, Any]:
    """Merge query-string and body params as PHP's ``$_REQUEST`` would (body wins); raise PortalError (400).

    Form bodies and query strings are parsed with :func:`mock_portal.wire.decode` (PHP ``parse_str``); a JSON
    body must be an object.
    """
    from mock_portal.jsonio import JsonInputError, loads_strict
    from mock_portal.wire import decode

    if len(body) > MAX_BODY_BYTES:
        raise error("INVALID_REQUEST", f"request body larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        params: dict[str, Any] = dict(decode(query)) if query else {}
    except MockPortalError as exc:
        raise error("INVALID_REQUEST", f"malformed query string: {exc}") from None
    if not body.strip():
        return params
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error("INVALID_REQUEST", f"request body is not UTF-8 (byte {exc.start})") from None
    if kind == "application/json" or (not kind and text.lstrip()[:1] in "{["):
        try:
            # strict: NaN, huge numbers and lone surrogates would break every later listing of the call
            loaded = loads_strict(text, max_depth=_MAX_JSON_DEPTH)
        except JsonInputError as exc:
            raise error("INVALID_REQUEST", f"malformed JSON body: {exc}") from None
        if not isinstance(loaded, dict):
            raise error("INVALID_REQUEST", "a JSON body must be an object of parameters")
        _check_depth(loaded)
        params.update(loaded)
        return params
    try:
        params.update(decode(text))
    except MockPortalError as exc:
        raise error("INVALID_REQUEST", f"malformed form body: {exc}") from None
    return params


def handle_rest_path(
    portal: Portal, rest_path: str, *, http_method: str, query: str, body: bytes, content_type: str | None
) -> RestResponse:
    """Answer ``/rest/<rest_path>``: ``<method>[.json]`` (OAuth token) or ``<user>/<code>/<method>``."""
    try:
        params = parse_params(query, body, content_type)
    except PortalError as exc:
        return error_response(exc)
    parts = [p for p in rest_path.split("/") if p]
    if len(parts) == 1:
        return call(portal, parts[0], params, http_method=http_method)
    if len(parts) == 3:
        return call(portal, parts[2], params, webhook=(parts[0], parts[1]), http_method=http_method)
    return RestResponse(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})
