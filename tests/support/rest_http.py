"""A REST client over real loopback HTTP for the REST method tests: a portal served by a
:class:`~mock_portal.server.PortalServer`, called through an incoming webhook and through an app's token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from mock_portal.portal import Portal
from mock_portal.restkit import Plan
from mock_portal.server import PortalServer

SCOPES = "crm,user,user_basic,im,imopenlines,imconnector,imbot,placement"
WIDE_PLAN = Plan("tests", burst=100_000, drain=1_000.0)
"""A request-rate plan no test reaches: these tests call back to back."""


@dataclass
class Answer:
    status: int
    body: Any

    @property
    def result(self) -> Any:
        assert self.status == 200, self.body
        assert "error" not in self.body, self.body
        return self.body["result"]

    @property
    def error(self) -> tuple[int, str]:
        assert "error" in self.body, self.body
        return self.status, str(self.body["error"])


class RestClient:
    """Calls REST methods of one portal as a webhook (``hook``) or as an installed app (``app``)."""

    def __init__(self, server: PortalServer, client: httpx.Client) -> None:
        self.server = server
        self.portal: Portal = server.portal
        self.http = client
        self.code = self.portal.add_webhook(user_id=1, scopes=SCOPES)
        _, token, _ = self.portal.install_app(None, scopes=SCOPES)
        self.token = token.access_token

    def hook(self, method: str, **params: Any) -> Answer:
        url = f"{self.portal.client_endpoint}1/{self.code}/{method}"
        response = self.http.post(url, json=params)
        return Answer(response.status_code, response.json())

    def app(self, method: str, **params: Any) -> Answer:
        response = self.http.post(self.portal.client_endpoint + method, json={**params, "auth": self.token})
        return Answer(response.status_code, response.json())


@contextmanager
def rest_client(domain: str) -> Iterator[RestClient]:
    """A served portal (wide request-rate plan) with a webhook of user 1 and an installed app."""
    with PortalServer([Portal(domain, seed=5, rate_plan=WIDE_PLAN)]) as server:
        with httpx.Client(timeout=30) as client:
            yield RestClient(server, client)
        server.portal.close()
