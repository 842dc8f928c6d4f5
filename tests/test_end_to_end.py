"""End to end over real sockets: a handler process installs through the portal, answers OnSessionStart with
``im.message.add`` at the event's ``client_endpoint``, refreshes an expired token; faulty handlers show every
delivery outcome recorded within its timeout."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from mock_portal.portal import Clock
from mock_portal.server import PortalServer
from tests.conftest import REPO_ROOT

CLIENT_ID = "local.e2e0000000001.12345678"
CLIENT_SECRET = "e2e-client-secret-0123456789"


class HandlerProcess:
    """``tests/support/handlers/b24_app.py`` as a child process on a free loopback port."""

    def __init__(self, mode: str = "ok") -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.handlers.b24_app",
                "--mode",
                mode,
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "PORT <n>" once it listens
        assert line.startswith("PORT "), line
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def state(self) -> dict:
        return httpx.get(self.url + "/_state", timeout=10).json()

    def wait_for_rest_results(self, count: int) -> list[dict]:
        # the handler answers 200 first and calls REST afterwards (docs: performance/queue); /_wait blocks on
        # its condition variable until the calls are made
        state = httpx.get(self.url + "/_wait", params={"rest_results": count}, timeout=40).json()
        results: list[dict] = state["rest_results"]
        assert len(results) >= count, f"the handler made {len(results)} REST calls, expected {count}"
        return results

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def server() -> Iterator[PortalServer]:
    with PortalServer(clock=Clock(start=1_760_000_000.0)) as srv:
        yield srv
        for portal in srv.portals.values():
            portal.close()


@pytest.fixture
def handler() -> Iterator[HandlerProcess]:
    process = HandlerProcess()
    yield process
    process.stop()


def _install(server: PortalServer, handler: HandlerProcess, portal: str | None = None, **extra) -> dict:
    body = {
        "install_url": handler.url + "/install",
        "handlers": {"ONSESSIONSTART": handler.url + "/events"},
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **extra,
    }
    response = httpx.post(
        server.url + "/_portal/apps", json=body, params={"portal": portal} if portal else {}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_install_session_and_message_back(server: PortalServer, handler: HandlerProcess) -> None:
    app = _install(server, handler)
    assert [d["outcome"] for d in app["deliveries"]] == ["ok"]
    assert handler.state()["installs"] == [app["member_id"]]
    session = httpx.post(
        server.url + "/_portal/sessions", json={"shape": "source-2024", "auth": "system"}
    ).json()
    assert [d["outcome"] for d in session["deliveries"]] == ["ok"]
    [result] = handler.wait_for_rest_results(1)
    assert result["status"] == 200
    assert isinstance(result["result"], int)
    calls = httpx.get(server.url + "/_portal/rest-calls", params={"method": "im.message.add"}).json()
    [call] = calls
    assert call["params"]["DIALOG_ID"] == session["dialog_id"]
    assert call["client_id"] == CLIENT_ID
    assert call["token"] == "***"
    assert call["params"]["auth"] == "***"
    assert app["access_token"] not in httpx.get(server.url + "/_portal/rest-calls").text
    state = handler.state()
    assert state["rejected"] == []
    assert state["auth_modes"] == ["user", "system"]


@pytest.mark.parametrize("shape", ["docs-2024", "docs-2026"])
def test_every_shape_reaches_the_handler(server: PortalServer, handler: HandlerProcess, shape: str) -> None:
    _install(server, handler)
    session = httpx.post(server.url + "/_portal/sessions", json={"shape": shape}).json()
    [result] = handler.wait_for_rest_results(1)
    assert result["status"] == 200
    assert server.portal.messages[-1].chat_id == session["chat_id"]


def test_expired_token_is_refreshed_at_the_oauth_server(
    server: PortalServer, handler: HandlerProcess
) -> None:
    _install(server, handler)
    httpx.post(server.url + "/_portal/clock", json={"advance": 3600})
    httpx.post(server.url + "/_portal/sessions", json={"auth": "system"})
    [result] = handler.wait_for_rest_results(1)
    assert result["status"] == 200
    assert handler.state()["refreshes"] == 1
    calls = httpx.get(server.url + "/_portal/rest-calls").json()
    assert [(c["method"], c["status"]) for c in calls] == [
        ("im.message.add", 401),
        ("oauth.token", 200),
        ("im.message.add", 200),
    ]
    assert calls[0]["error"] == "expired_token"


def test_events_before_install_finish_are_dropped(server: PortalServer, handler: HandlerProcess) -> None:
    app = _install(server, handler, ui=True)
    dropped = httpx.post(server.url + "/_portal/sessions", json={}).json()["deliveries"]
    assert [d["outcome"] for d in dropped] == ["dropped"]
    assert [e["event"] for e in handler.state()["events"]] == ["ONAPPINSTALL"]  # nothing reached it
    httpx.post(f"{server.url}/_portal/apps/{app['client_id']}/install-finish")
    httpx.post(server.url + "/_portal/sessions", json={})
    handler.wait_for_rest_results(1)
    outcomes = [
        d["outcome"]
        for d in httpx.get(server.url + "/_portal/deliveries", params={"event": "ONSESSIONSTART"}).json()
    ]
    assert outcomes == ["dropped", "ok"]


def test_weak_handler_url_check_end_to_end(server: PortalServer, handler: HandlerProcess) -> None:
    app = _install(server, handler)
    client_endpoint = app["client_endpoint"]
    port = handler.url.rsplit(":", 1)[1]
    refused = httpx.post(
        client_endpoint + "event.bind",
        data={
            "event": "ONSESSIONFINISH",
            "handler": f"http://localhost:{port}/events",
            "auth": app["access_token"],
        },
    )
    assert refused.status_code == 400
    accepted = httpx.post(
        client_endpoint + "event.bind",
        data={
            "event": "ONSESSIONFINISH",
            "handler": f"http://127.0.0.1:{port}/events",
            "auth": app["access_token"],
        },
    )
    assert accepted.json()["result"] is True


def test_two_portals_in_one_server(server: PortalServer, handler: HandlerProcess) -> None:
    httpx.post(server.url + "/_portal/portals", json={"domain": "second.example.com"})
    first = _install(server, handler)
    other = HandlerProcess()
    try:
        second = _install(server, other, portal="second.example.com", client_id="local.second.1")
        assert first["member_id"] != second["member_id"]
        httpx.post(server.url + "/_portal/sessions", params={"portal": "second.example.com"}, json={})
        other.wait_for_rest_results(1)
        assert handler.state()["rest_results"] == []
        calls = httpx.get(server.url + "/_portal/rest-calls", params={"portal": "second.example.com"}).json()
        assert [c["portal"] for c in calls] == ["second.example.com"]
        assert httpx.get(server.url + "/_portal/rest-calls").json() == []
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("mode", "outcome", "status"),
    [
        ("error", "http_error", 500),
        ("hang", "timeout", None),
        ("reset", "reset", None),
        ("close", "reset", None),
    ],
)
def test_faulty_handlers_record_their_outcome(server: PortalServer, mode: str, outcome: str, status) -> None:
    faulty = HandlerProcess(mode)
    try:
        response = httpx.post(
            server.url + "/_portal/apps",
            json={"handlers": {"ONSESSIONSTART": faulty.url + "/events"}},
        )
        assert response.status_code == 201
        timeout = 1.0
        session = httpx.post(server.url + "/_portal/sessions", json={"timeout": timeout}, timeout=30).json()
        [attempt] = session["deliveries"]
        assert (attempt["outcome"], attempt["status"]) == (outcome, status)
        assert attempt["timeout_s"] == timeout
    finally:
        faulty.stop()


def test_refused_when_nothing_listens(server: PortalServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but never listening: connections are refused
        httpx.post(
            server.url + "/_portal/apps", json={"handlers": {"ONSESSIONSTART": f"http://127.0.0.1:{port}/"}}
        )
        [attempt] = httpx.post(server.url + "/_portal/sessions", json={"timeout": 2}).json()["deliveries"]
    assert attempt["outcome"] == "refused"
