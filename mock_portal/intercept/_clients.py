"""One adapter per HTTP client library, each turning its request into :meth:`PortalRouter.answer`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from mock_portal.errors import UsageError
from mock_portal.inprocess import _body_bytes as _requests_body  # the same body reading as `intercept`
from mock_portal.intercept._core import PortalRouter

__all__ = ["CLIENTS", "LOOPBACK", "Interception", "intercept_clients"]

CLIENTS = ("requests", "httpx", "aiohttp")
"""The client libraries :func:`intercept_clients` covers."""
LOOPBACK = ("http://127.0.0.1", "http://localhost", "http://[::1]")


@dataclass
class Interception:
    """The started mocks (``responses``, ``respx``, ``aioresponses``), for callers adding their own routes."""

    router: PortalRouter
    mocks: dict[str, Any] = field(default_factory=dict)


def _url_pattern(router: PortalRouter) -> re.Pattern[str]:
    hosts = "|".join(sorted(re.escape(h) for h in router.hosts()))
    return re.compile(rf"^https?://(?:{hosts})(?::\d+)?/.*$", re.IGNORECASE)


def _optional(module: str, client: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"intercepting {client} needs {module}: pip install 'b24-contract[intercept]'"
        ) from None


# ------------------------------------------------------------------------------------------ requests


def _start_requests(stack: ExitStack, router: PortalRouter, passthrough: Sequence[str]) -> Any:
    import requests
    import responses

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        answer = router.answer(
            request.method or "GET",
            request.url or "",
            _requests_body(request),
            request.headers.get("Content-Type"),
        )
        if answer is None:  # an endpoint host, but not a path any portal answers
            raise requests.exceptions.ConnectionError(f"no portal answers {request.url}")
        return answer.status, answer.headers, answer.body

    rsps = stack.enter_context(responses.RequestsMock(assert_all_requests_are_fired=False))
    for prefix in passthrough:
        rsps.add_passthru(prefix)
    pattern = _url_pattern(router)
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"):
        rsps.add_callback(method, pattern, callback=callback)
    return rsps


# ------------------------------------------------------------------------------------------ httpx
def _start_httpx(stack: ExitStack, router: PortalRouter, passthrough: Sequence[str]) -> Any:
    import httpx

    respx = _optional("respx", "httpx")

    def side_effect(request: httpx.Request) -> httpx.Response:
        answer = router.answer(
            request.method, str(request.url), request.read(), request.headers.get("content-type")
        )
        if answer is None:
            raise httpx.ConnectError(f"no portal answers {request.url}", request=request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    mock = stack.enter_context(respx.mock(assert_all_called=False, assert_all_mocked=True))
    mock.route(url__regex=_url_pattern(router).pattern).mock(side_effect=side_effect)
    for prefix in passthrough:
        mock.route(url__startswith=prefix).pass_through()
    return mock


# ------------------------------------------------------------------------------------------ aiohttp
def _aiohttp_body(kwargs: dict[str, Any]) -> tuple[bytes, str | None]:
    if kwargs.get("json") is not None:
        return json.dumps(kwargs["json"]).encode("utf-8"), "application/json"
    data = kwargs.get("data")
    if data is None:
        return b"", None
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, dict):
        return urlencode(data, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"
    raise UsageError(f"intercept_clients: aiohttp data of type {type(data).__name__} is not supported")


def _start_aiohttp(stack: ExitStack, router: PortalRouter, passthrough: Sequence[str]) -> Any:
    import aiohttp

    module = _optional("aioresponses", "aiohttp")
    CallbackResult, aioresponses = module.CallbackResult, module.aioresponses

    def callback(url: Any, **kwargs: Any) -> Any:
        target = str(url)
        params = kwargs.get("params")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params, doseq=True)
        body, content_type = _aiohttp_body(kwargs)
        headers = {str(k).lower(): str(v) for k, v in (kwargs.get("headers") or {}).items()}
        method = str(kwargs.get("method") or "GET")
        answer = router.answer(method, target, body, headers.get("content-type", content_type))
        if answer is None:
            raise aiohttp.ClientConnectionError(f"no portal answers {target}")
        return CallbackResult(status=answer.status, body=answer.body, headers=answer.headers)

    mock = stack.enter_context(aioresponses(passthrough=list(passthrough)))
    pattern = _url_pattern(router)
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"):
        mock.add(pattern, method, callback=_with_method(callback, method), repeat=True)
    return mock


def _with_method(callback: Any, method: str) -> Any:
    def bound(url: Any, **kwargs: Any) -> Any:
        return callback(url, method=method, **kwargs)

    return bound


_STARTERS = {"requests": _start_requests, "httpx": _start_httpx, "aiohttp": _start_aiohttp}


@contextmanager
def intercept_clients(
    *portals: Any, clients: Sequence[str] = CLIENTS, passthrough: Sequence[str] = LOOPBACK
) -> Iterator[Interception]:
    """Answer the portals' URLs in process for the chosen ``clients`` (see the module docstring)."""
    if not portals:
        raise UsageError("intercept_clients(): give at least one Portal")
    unknown = [c for c in clients if c not in _STARTERS]
    if unknown:
        raise UsageError(
            f"intercept_clients(): unknown client(s) {', '.join(unknown)} (known: {', '.join(CLIENTS)})"
        )
    router = PortalRouter(portals)
    interception = Interception(router)
    with ExitStack() as stack:
        for name in clients:
            interception.mocks[name] = _STARTERS[name](stack, router, passthrough)
        yield interception
