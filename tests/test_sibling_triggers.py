"""Sibling events over the control API, and queued delivery of the events a REST call raises.

Everything goes over real loopback HTTP: the portal server on 127.0.0.1, handlers served by ``wsgiref`` on
127.0.0.1, the control API and the REST API called with httpx.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from mock_portal.server import PortalServer
from mock_portal.wire import decode
from tests.support.contract import serve_wsgi
from tests.support.recording import EventRecorder

ICON = {"DATA_IMAGE": "data:image/svg+xml;charset=US-ASCII,%3Csvg%3E%3C/svg%3E"}
SIBLINGS = (
    "ONSESSIONFINISH",
    "ONOPENLINEMESSAGEADD",
    "ONOPENLINEMESSAGEUPDATE",
    "ONOPENLINEMESSAGEDELETE",
    "ONIMCONNECTORDIALOGFINISH",
    "ONIMCONNECTORMESSAGEADD",
    "ONIMCONNECTORMESSAGEUPDATE",
    "ONIMCONNECTORMESSAGEDELETE",
    "ONIMCONNECTORSTATUSDELETE",
    "ONIMCONNECTORLINEDELETE",
    "ONAPPUPDATE",
)


@pytest.fixture
def server() -> Iterator[PortalServer]:
    with PortalServer() as srv:
        yield srv


def _control(server: PortalServer, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/_portal{path}", json=body or {}, timeout=30)


def _rest(server: PortalServer, method: str, token: str, **params: Any) -> dict[str, Any]:
    domain = server.portal.domain
    reply = httpx.post(
        f"{server.url}/{domain}/rest/{method}.json", json={**params, "auth": token}, timeout=30
    )
    answer: dict[str, Any] = reply.json()
    return answer


@pytest.fixture
def two_apps(server: PortalServer) -> Iterator[tuple[PortalServer, EventRecorder, dict[str, Any]]]:
    """The connector's owner app and another app, both bound to every sibling event, and a session."""
    recorder = EventRecorder()
    with serve_wsgi(recorder) as url:
        apps = {}
        for who in ("owner", "other"):
            handlers = dict.fromkeys(SIBLINGS, url + who)
            reply = _control(server, "/apps", {"handlers": handlers})
            assert reply.status_code == 201, reply.text
            apps[who] = reply.json()
        token = apps["owner"]["access_token"]
        assert _rest(server, "imconnector.register", token, ID="myconn", NAME="My", ICON=ICON,
                     PLACEMENT_HANDLER="https://a.example.com/p")["result"]  # fmt: skip
        assert _rest(server, "imconnector.activate", token, CONNECTOR="myconn", LINE=7, ACTIVE=1)["result"]
        session = _control(server, "/sessions", {"connector_id": "myconn", "line_id": 7}).json()
        yield server, recorder, {**session, "owner": apps["owner"], "other": apps["other"]}


def _sent(reply: httpx.Response) -> list[str]:
    return sorted(d["event"] for d in reply.json()["deliveries"])


def test_control_routes_fire_each_sibling_at_its_moment_and_filter_connector_events(
    two_apps: tuple[PortalServer, EventRecorder, dict[str, Any]],
) -> None:
    server, recorder, ctx = two_apps
    message = _control(server, "/messages", {"chat_id": ctx["chat_id"], "text": "Operator here"})
    assert message.status_code == 201, message.text
    # the open-line event to every bound app, the connector event to the connector's owner only (facts §3)
    assert _sent(message) == ["ONIMCONNECTORMESSAGEADD", "ONOPENLINEMESSAGEADD", "ONOPENLINEMESSAGEADD"]
    message_id = message.json()["message_id"]
    update = _control(server, f"/messages/{message_id}/update", {"text": "Operator here, edited"})
    assert _sent(update) == [
        "ONIMCONNECTORMESSAGEUPDATE",
        "ONOPENLINEMESSAGEUPDATE",
        "ONOPENLINEMESSAGEUPDATE",
    ]
    delete = _control(server, f"/messages/{message_id}/delete")
    assert _sent(delete) == [
        "ONIMCONNECTORMESSAGEDELETE",
        "ONOPENLINEMESSAGEDELETE",
        "ONOPENLINEMESSAGEDELETE",
    ]
    finish = _control(server, f"/sessions/{ctx['session_id']}/finish", {"auth": "system"})
    assert finish.status_code == 200, finish.text
    assert _sent(finish) == ["ONIMCONNECTORDIALOGFINISH", "ONSESSIONFINISH", "ONSESSIONFINISH"]
    assert _control(server, f"/sessions/{ctx['session_id']}/finish").json()["deliveries"] == []
    off = _control(server, "/connectors/myconn/deactivate", {"line_id": 7})
    assert _sent(off) == ["ONIMCONNECTORSTATUSDELETE"]
    token = ctx["owner"]["access_token"]
    assert _rest(server, "imconnector.activate", token, CONNECTOR="myconn", LINE=7, ACTIVE=1)["result"]
    line = _control(server, "/lines/7/delete")
    assert _sent(line) == ["ONIMCONNECTORLINEDELETE"]
    client_id = ctx["owner"]["client_id"]
    update_app = _control(server, f"/apps/{client_id}/update", {"new_application_token": True})
    assert update_app.status_code == 200, update_app.text
    assert update_app.json()["version"] == 2
    assert update_app.json()["application_token"] != ctx["owner"]["application_token"]
    assert _sent(update_app) == ["ONAPPUPDATE"]
    # what the handlers really got
    assert recorder.names("other") == [
        "ONOPENLINEMESSAGEADD",
        "ONOPENLINEMESSAGEUPDATE",
        "ONOPENLINEMESSAGEDELETE",
        "ONSESSIONFINISH",
    ]
    owner = recorder.names("owner")
    assert owner.count("ONIMCONNECTORMESSAGEADD") == 1
    assert owner[-1] == "ONAPPUPDATE"
    [(_, app_update)] = [g for g in recorder.got if g[1]["event"] == "ONAPPUPDATE"]
    assert app_update["auth"]["application_token"] == update_app.json()["application_token"]
    [(_, finished)] = [g for g in recorder.got if g[1]["event"] == "ONSESSIONFINISH" and g[0] == "owner"]
    assert "access_token" not in finished["auth"]  # system mode, as asked


@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        ("/sessions/abc/finish", {}, 400, "session id must be a positive integer"),
        ("/sessions/424242/finish", {}, 404, "SESSION_NOT_FOUND"),
        ("/sessions/1/finish", {"auth": "robot"}, 400, "'auth' must be one of user, system"),
        ("/messages", {}, 400, "'chat_id' must be a chat id"),
        ("/messages", {"chat_id": 1001, "txt": "x"}, 400, "did you mean 'text'?"),
        ("/messages", {"chat_id": 1001, "text": "  "}, 400, "'text' must be a non-empty string"),
        ("/messages", {"chat_id": 999999, "text": "x"}, 400, "DIALOG_NOT_FOUND"),
        ("/messages/1/update", {}, 400, "'text' must be a non-empty string"),
        ("/messages/424242/delete", {}, 404, "MESSAGE_NOT_FOUND"),
        ("/messages/5001/delete", {"text": "x"}, 400, "UNKNOWN_FIELD"),
        ("/lines/424242/delete", {}, 404, "NOT_FOUND_LINE"),
        ("/lines/0/delete", {}, 400, "line id must be a positive integer"),
        ("/connectors/nope/deactivate", {"line_id": 1}, 404, "no connector 'nope'"),
        ("/connectors/nope/deactivate", {}, 400, "'line_id' is required"),
        ("/apps/local.nope/update", {}, 404, "APP_NOT_FOUND"),
        ("/sessions/1/finish", {"timeout": -1}, 400, "'timeout' must be a number of seconds"),
    ],
)
def test_bad_trigger_input_gets_a_4xx_json_error(
    server: PortalServer, path: str, body: dict[str, Any], status: int, text: str
) -> None:
    started = _control(server, "/sessions", {})
    assert started.status_code == 201
    reply = _control(server, path, body)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error", "error_description"}
    assert text in reply.text


def test_app_update_refuses_a_non_boolean_and_get_on_a_trigger_is_405(server: PortalServer) -> None:
    app = _control(server, "/apps", {}).json()
    reply = _control(server, f"/apps/{app['client_id']}/update", {"new_application_token": "yes"})
    assert (reply.status_code, reply.json()["error"]) == (400, "BAD_FIELD")
    assert httpx.get(f"{server.url}/_portal/sessions/1/finish").status_code == 405
    routes = {(r["method"], r["path"]) for r in httpx.get(f"{server.url}/_portal").json()["routes"]}
    assert ("POST", "/_portal/messages") in routes
    assert ("POST", "/_portal/apps/<client_id>/update") in routes


# ------------------------------------------------------------------------------------------- queued delivery


class _OneAtATime(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_single_threaded(app: Any) -> Iterator[str]:
    """Serve ``app`` on one thread, one request at a time, as many small handlers run."""
    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_OneAtATime)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


class ConnectorApp:
    """Answers OnSessionStart only after its own ``im.message.add`` returned (synchronous REST work), and
    records OnImConnectorMessageAdd: the message it sent coming back out through its own connector."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        payload = decode(environ["wsgi.input"].read(size))
        event, auth = payload["event"], payload["auth"]
        self.log.append(f"got {event}")
        if event == "ONSESSIONSTART":
            chat = payload["data"]["DATA"]["chat"]["chat_id"]
            reply = httpx.post(
                auth["client_endpoint"] + "im.message.add.json",
                data={"DIALOG_ID": f"chat{chat}", "MESSAGE": "Hello", "auth": auth["access_token"]},
                timeout=10,
            )
            self.log.append(f"im.message.add answered {reply.status_code}")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']


def test_a_handler_calling_rest_inside_its_event_does_not_deadlock_on_its_own_callback(
    server: PortalServer,
) -> None:
    app = ConnectorApp()
    portal = server.portal
    portal.delivery_timeout = 5.0
    with serve_single_threaded(app) as url:
        installed, _, _ = portal.install_app(
            None, handlers={"ONSESSIONSTART": url, "ONIMCONNECTORMESSAGEADD": url}
        )
        portal.register_connector(installed.client_id, "myconn", "My")
        portal.activate_connector("myconn", 1, True)
        started = portal.start_session(connector_id="myconn")
        [attempt] = started.attempts
        assert attempt.outcome == "ok", attempt
        [echo] = portal.wait_for_deliveries("ONIMCONNECTORMESSAGEADD", timeout=10)
        assert echo.outcome == "ok", echo
    # the REST call was answered first; its event reached the handler only after that, from the queue
    assert app.log == ["got ONSESSIONSTART", "im.message.add answered 200", "got ONIMCONNECTORMESSAGEADD"]
    [call] = portal.calls("im.message.add")
    assert call.status == 200
    assert portal.queued == 0


def test_events_raised_in_one_rest_call_are_delivered_in_order_and_waited_for_over_http(
    server: PortalServer,
) -> None:
    recorder = EventRecorder()
    with serve_wsgi(recorder) as url:
        app = _control(server, "/apps", {"handlers": {"ONSESSIONSTART": url + "app"}}).json()
        token = app["access_token"]
        assert _rest(server, "imconnector.register", token, ID="c", NAME="C", ICON=ICON,
                     PLACEMENT_HANDLER="https://a.example.com/p")["result"]  # fmt: skip
        assert _rest(server, "imconnector.activate", token, CONNECTOR="c", LINE=1, ACTIVE=1)["result"]
        messages = [
            {"user": {"id": f"u{n}"}, "message": {"id": f"m{n}", "text": "hi"}, "chat": {"id": f"chat-{n}"}}
            for n in range(5)
        ]
        sent = _rest(server, "imconnector.send.messages", token, CONNECTOR="c", LINE=1, MESSAGES=messages)
        sessions = [int(r["session"]["ID"]) for r in sent["result"]["DATA"]["RESULT"]]
        waited = httpx.get(
            f"{server.url}/_portal/deliveries",
            params={"event": "ONSESSIONSTART", "min": 5, "timeout": 10},
            timeout=30,
        ).json()
        assert [d["outcome"] for d in waited] == ["ok"] * 5
        got = [int(p["data"]["DATA"]["connector"]["chat_id"]) for _, p in recorder.got]
    chats = [server.portal.sessions[s].chat_id for s in sessions]
    assert got == chats  # one worker per portal: in the order they were raised
    nothing = httpx.get(
        f"{server.url}/_portal/deliveries", params={"event": "ONSESSIONFINISH", "min": 1, "timeout": 0.05}
    ).json()
    assert nothing == []
    bad = httpx.get(f"{server.url}/_portal/deliveries", params={"min": "0"})
    assert (bad.status_code, bad.json()["error"]) == (400, "BAD_QUERY")


def test_wait_for_deliveries_filters_by_outcome_and_gives_up_at_the_timeout(server: PortalServer) -> None:
    portal = server.portal
    portal.install_app(None, handlers={"ONSESSIONSTART": "http://127.0.0.1:9/closed"})
    portal.delivery_timeout = 2.0
    portal.start_session()
    assert portal.wait_for_deliveries("ONSESSIONSTART", outcome="ok", timeout=0.05) == []
    [refused] = portal.wait_for_deliveries("onsessionstart", outcome="refused", timeout=5)
    assert refused.event == "ONSESSIONSTART"


def test_reference_handler_greets_and_confirms_its_own_message_through_the_connector(
    server: PortalServer,
) -> None:
    import logging

    from examples.python_handler import HandlerApp, HandlerConfig

    logger = logging.getLogger("b24_handler")
    level = logger.level
    logger.setLevel(logging.ERROR)
    handler = HandlerApp(HandlerConfig()).start()
    portal = server.portal
    try:
        with serve_wsgi(handler) as url:
            app, _, install = portal.install_app(
                url, handlers={"ONSESSIONSTART": url, "ONIMCONNECTORMESSAGEADD": url}
            )
            assert [a.outcome for a in install] == ["ok"]
            portal.register_connector(app.client_id, "myconn", "My")
            portal.activate_connector("myconn", 1, True)
            started = portal.start_session(connector_id="myconn")
            # OnSessionStart -> im.message.add -> (queued) OnImConnectorMessageAdd -> delivery confirmed
            [confirmed] = portal.wait_for_calls("imconnector.send.status.delivery", timeout=10)
            handler.join()
    finally:
        handler.close()
        logger.setLevel(level)
    assert confirmed.status == 200, confirmed
    [greeting] = portal.calls("im.message.add")
    assert greeting.status == 200
    [sent] = handler.outbox()
    assert (sent.connector, sent.chat_id) == ("myconn", str(started.chat.id))
    assert sent.text.startswith("Hello! Thank you for writing to")
    assert [a.event for a in portal.deliveries()] == [
        "ONAPPINSTALL",
        "ONSESSIONSTART",
        "ONIMCONNECTORMESSAGEADD",
    ]
