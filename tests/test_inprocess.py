"""The in-process adapter: a WSGI handler using ``requests`` talks to the portal with no socket at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests

from mock_portal.delivery import WsgiTarget
from mock_portal.inprocess import intercept
from mock_portal.portal import Clock, Portal
from mock_portal.wire import decode

APP_URL = "https://app.example.test/"


class WsgiApp:
    """A tiny Bitrix24 app: stores ONAPPINSTALL's auth, answers OnSessionStart with im.message.add."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth: dict[str, Any] = {}
        self.results: list[Any] = []

    def _call(self, method: str, params: dict[str, Any]) -> requests.Response:
        response = requests.post(self.auth["client_endpoint"] + method + ".json", data=params, timeout=5)
        if response.status_code == 401 and response.json().get("error") == "expired_token":
            fresh = requests.get(
                "https://oauth.bitrix.info/oauth/token/",
                params={
                    "grant_type": "refresh_token",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "refresh_token": self.auth["refresh_token"],
                },
                timeout=5,
            ).json()
            self.auth.update(access_token=fresh["access_token"], refresh_token=fresh["refresh_token"])
            params["auth"] = fresh["access_token"]
            response = requests.post(self.auth["client_endpoint"] + method + ".json", data=params, timeout=5)
        return response

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        payload = decode(environ["wsgi.input"].read(size))
        if payload["event"] == "ONAPPINSTALL":
            self.auth = dict(payload["auth"])
        elif payload["event"] == "ONSESSIONSTART":
            chat_id = payload["data"]["DATA"][0]["chat"]["id"]
            response = self._call(
                "im.message.add",
                {"DIALOG_ID": f"chat{chat_id}", "MESSAGE": "hi", "auth": self.auth["access_token"]},
            )
            self.results.append(response.json())
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"ok": True}).encode()]


@pytest.fixture
def setup():
    clock = Clock(start=1_760_000_000.0)
    portal = Portal(seed=5, clock=clock)
    app = WsgiApp("local.inproc.1", "secret-1")
    portal.route(APP_URL, WsgiTarget(app))
    with portal, intercept(portal) as rsps:
        portal.install_app(
            APP_URL + "install",
            handlers={"ONSESSIONSTART": APP_URL + "events"},
            client_id=app.client_id,
            client_secret=app.client_secret,
        )
        yield portal, app, clock, rsps


def test_handler_answers_a_session_through_requests(setup) -> None:
    portal, app, _, _ = setup
    started = portal.start_session(shape="docs-2026", auth="system")
    assert [a.outcome for a in started.attempts] == ["ok"]
    [result] = app.results
    assert isinstance(result["result"], int)
    [call] = portal.calls("im.message.add")
    assert call.params["DIALOG_ID"] == started.chat.dialog_id
    assert call.client_id == app.client_id
    assert portal.messages[-1].chat_id == started.chat.id


def test_expired_token_is_refreshed_in_process(setup) -> None:
    portal, app, clock, _ = setup
    clock.advance(3601)
    portal.start_session(shape="docs-2024", auth="system")
    assert "result" in app.results[-1], app.results
    assert [c.method for c in portal.calls()] == ["im.message.add", "oauth.token", "im.message.add"]
    assert [c.status for c in portal.calls()] == [401, 200, 200]


def test_errors_come_back_as_bitrix_envelopes(setup) -> None:
    portal, app, _, _ = setup
    response = requests.post(
        portal.client_endpoint + "no.such.method", data={"auth": app.auth["access_token"]}
    )
    assert (response.status_code, response.json()["error"]) == (404, "ERROR_METHOD_NOT_FOUND")
    bad_json = requests.post(
        portal.client_endpoint + "app.info", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    as_json = requests.post(portal.client_endpoint + "app.info", json={"auth": app.auth["access_token"]})
    assert as_json.json()["result"]["INSTALLED"] is True
    via_get = requests.get(
        portal.client_endpoint + "app.info.json", params={"auth": app.auth["access_token"]}
    )
    assert via_get.status_code == 200


def test_two_portals_share_the_oauth_server() -> None:
    first, second = Portal(seed=1), Portal(seed=2)
    with first, second, intercept(first, second):
        _, token1, _ = first.install_app(None)
        app2, token2, _ = second.install_app(None)
        fresh = requests.get(
            "https://oauth.bitrix.info/oauth/token/",
            params={
                "grant_type": "refresh_token",
                "client_id": app2.client_id,
                "client_secret": app2.client_secret,
                "refresh_token": token2.refresh_token,
            },
        ).json()
        assert fresh["member_id"] == second.member_id
        wrong_portal = requests.post(first.client_endpoint + "app.info", data={"auth": token2.access_token})
        assert wrong_portal.json()["error"] == "invalid_token"
        # server_endpoint REST finds the portal from the token
        via_server = requests.post(
            "https://oauth.bitrix.info/rest/app.info", data={"auth": token1.access_token}
        )
        assert via_server.json()["result"]["INSTALLED"] is True
