"""In-process interception for requests, httpx and aiohttp: any portal domain, both OAuth hosts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
import requests

from mock_portal.errors import UsageError
from mock_portal.intercept import PortalRouter, intercept_clients
from mock_portal.portal import Clock, Portal

CLIENT_ID = "local.intercept.1"
CLIENT_SECRET = "intercept-client-secret"


@pytest.fixture
def portals() -> Iterator[tuple[Portal, Portal, Any, Any]]:
    clock = Clock(start=1_760_000_000.0)
    one = Portal("one.bitrix24.com", seed=1, clock=clock)
    # a portal whose events point somewhere else still answers on its own domain
    two = Portal("two.bitrix24.de", seed=2, clock=clock, client_endpoint="http://127.0.0.1:9/two/rest/")
    _, token_one, _ = one.install_app(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    _, token_two, _ = two.install_app(client_id="local.intercept.2", client_secret="other-secret")
    with one, two:
        yield one, two, token_one, token_two


def _refresh_params(token: Any) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": token.refresh_token,
    }


def test_requests_any_portal_domain_and_the_oauth_hosts(portals) -> None:
    one, two, token_one, token_two = portals
    with intercept_clients(one, two, clients=["requests"]):
        a = requests.post(
            "https://one.bitrix24.com/rest/app.info.json", data={"auth": token_one.access_token}
        )
        b = requests.post("https://two.bitrix24.de/rest/app.info", json={"auth": token_two.access_token})
        c = requests.get("https://oauth.bitrix24.tech/oauth/token/", params=_refresh_params(token_one))
    assert (a.status_code, a.json()["result"]["CODE"]) == (200, CLIENT_ID)
    assert (b.status_code, b.json()["result"]["CODE"]) == (200, "local.intercept.2")
    assert (c.status_code, c.json()["domain"]) == (200, "one.bitrix24.com")
    assert [x.method for x in one.calls()] == ["app.info", "oauth.token"]
    assert [x.method for x in two.calls()] == ["app.info"]


def test_httpx_sync_and_async(portals) -> None:
    one, _, token_one, _ = portals
    url = "https://one.bitrix24.com/rest/app.info.json"

    async def async_call() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(url, data={"auth": token_one.access_token})

    with intercept_clients(one, clients=["httpx"]):
        sync = httpx.post(url, data={"auth": token_one.access_token})
        through_oauth = httpx.get(
            "https://oauth.bitrix.info/rest/app.info", params={"auth": token_one.access_token}
        )
        asynchronous = asyncio.run(async_call())
        missing = httpx.post(
            "https://one.bitrix24.com/rest/no.such.method", data={"auth": token_one.access_token}
        )
    for response in (sync, through_oauth, asynchronous):
        assert response.status_code == 200
        assert response.json()["result"]["CODE"] == CLIENT_ID
    assert (missing.status_code, missing.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")


def test_aiohttp_form_json_and_params(portals) -> None:
    one, _, token_one, _ = portals

    async def run() -> list[tuple[int, Any]]:
        out = []
        async with aiohttp.ClientSession() as session:
            for kwargs in (
                {"data": {"auth": token_one.access_token}},
                {"json": {"auth": token_one.access_token}},
                {"params": {"auth": token_one.access_token}},
            ):
                async with session.post("https://one.bitrix24.com/rest/app.info.json", **kwargs) as r:
                    out.append((r.status, await r.json()))
            async with session.get(
                "https://oauth.bitrix.info/oauth/token/", params=_refresh_params(token_one)
            ) as r:
                out.append((r.status, await r.json()))
        return out

    with intercept_clients(one, clients=["aiohttp"]):
        answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200, 200, 200, 200]
    assert {body["result"]["CODE"] for _, body in answers[:3]} == {CLIENT_ID}
    assert answers[3][1]["client_endpoint"] == one.client_endpoint


def test_unknown_hosts_are_not_answered_and_bad_arguments_are_usage_errors(portals) -> None:
    one, _, _, _ = portals
    router = PortalRouter([one])
    assert router.owns("https://one.bitrix24.com/rest/x")
    assert router.owns("https://oauth.bitrix24.tech/oauth/token")
    assert not router.owns("https://one.bitrix24.com/elsewhere")
    assert not router.owns("https://example.com/rest/x")
    with intercept_clients(one, clients=["requests"]), pytest.raises(requests.exceptions.ConnectionError):
        requests.get("https://example.com/rest/x", timeout=5)
    with pytest.raises(UsageError, match="at least one Portal"), intercept_clients():
        pass
    with pytest.raises(UsageError, match="unknown client"), intercept_clients(one, clients=["urllib3"]):
        pass
