"""Routing a client's request to the portal that owns its URL, and answering it, with no socket at all.

A request is the portal's when its host is a portal's domain (``https://<domain>/rest/...``, whatever the
portal's ``client_endpoint`` is), when it starts with a portal's ``client_endpoint`` or ``server_endpoint``,
or when its host is an OAuth host (``/oauth/token/`` and REST through the OAuth server, ``/rest/...``).
Answers come from the same transport-free core as the HTTP server (``handle_rest_path``, ``handle_oauth``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mock_portal.errors import MockPortalError
from mock_portal.tls import OAUTH_HOSTS

__all__ = ["Answer", "PortalRouter"]

_JSON = {"Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers, body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def _answer(response: Any) -> Answer:
    return Answer(response.status, dict(_JSON), response.json_bytes())


def _refusal(exc: MockPortalError) -> Answer:
    body = {
        "error": getattr(exc, "code", "INVALID_REQUEST"),
        "error_description": getattr(exc, "description", str(exc)),
    }
    status = int(getattr(exc, "status", 400))
    return Answer(status, dict(_JSON), json.dumps(body, ensure_ascii=False).encode("utf-8"))


class PortalRouter:
    """Which portal a URL belongs to, and that portal's answer to the request."""

    def __init__(self, portals: Sequence[Any], *, oauth_hosts: Sequence[str] = OAUTH_HOSTS) -> None:
        self.portals = list(portals)
        self.oauth_hosts = tuple(h.lower() for h in oauth_hosts)

    def hosts(self) -> set[str]:
        """Every host answered: the portals' domains, the OAuth hosts, and the hosts of their endpoints."""
        out = set(self.oauth_hosts)
        for portal in self.portals:
            out.add(portal.domain.lower())
            for url in (portal.client_endpoint, portal.server_endpoint, portal.oauth_url):
                host = urlsplit(url).hostname
                if host:
                    out.add(host.lower())
        return out

    def owns(self, url: str) -> bool:
        """Whether :meth:`answer` answers ``url``."""
        return self._route(url) is not None

    def _route(self, url: str) -> tuple[str, Any, str] | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path
        base = url.split("?", 1)[0]
        for portal in self.portals:
            if base.startswith(portal.oauth_url.rstrip("/")):
                return "oauth", None, ""
            if base.startswith(portal.client_endpoint):
                return "rest", portal, base[len(portal.client_endpoint) :]
            if base.startswith(portal.server_endpoint):
                return "server", None, base[len(portal.server_endpoint) :]
        if host in self.oauth_hosts:
            if path.rstrip("/") == "/oauth/token":
                return "oauth", None, ""
            if path.startswith("/rest/"):
                return "server", None, path[len("/rest/") :]
            return None
        for portal in self.portals:
            if host == portal.domain.lower() and path.startswith("/rest/"):
                return "rest", portal, path[len("/rest/") :]
        return None

    def answer(
        self, method: str, url: str, body: bytes = b"", content_type: str | None = None
    ) -> Answer | None:
        """The portal's answer to ``method url`` with ``body``, or None when no portal owns the URL."""
        from mock_portal.rest import handle_oauth, handle_rest_path, parse_params

        route = self._route(url)
        if route is None:
            return None
        kind, portal, rest_path = route
        query = urlsplit(url).query
        http_method = method.upper()
        if kind == "oauth":
            try:
                params = parse_params(query, body, content_type)
            except MockPortalError as exc:  # a malformed request: the portal's own 4xx
                return _refusal(exc)
            return _answer(handle_oauth(self.portals, params))
        if kind == "server":
            # REST through the OAuth server: the token says which portal answers
            try:
                params = parse_params(query, body, content_type)
            except MockPortalError as exc:
                return _refusal(exc)
            token = params.get("auth")
            portal = next(
                (p for p in self.portals if isinstance(token, str) and token in p.tokens), self.portals[0]
            )
        return _answer(
            handle_rest_path(
                portal, rest_path, http_method=http_method, query=query, body=body, content_type=content_type
            )
        )
