"""Application automation rules (robots): ``bizproc.robot.*``, the robot call the portal POSTs to the robot's
handler, and ``bizproc.event.send`` completing the run.

Over real loopback HTTP: the portal server on 127.0.0.1, the app's handler served by ``wsgiref`` on
127.0.0.1; the handler decodes the form body with :func:`mock_portal.wire.decode` and answers the robot with
``bizproc.event.send`` over the REST API, as an app would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_portal.portal import Portal
from mock_portal.server import PortalServer
from tests.support.contract import serve_wsgi
from tests.support.recording import EventRecorder

ROBOT = {
    "CODE": "md5_robot",
    "NAME": {"en": "MD5 generator"},
    "USE_SUBSCRIPTION": "Y",
    "AUTH_USER_ID": 1,
    "PROPERTIES": {
        "inputString": {"Name": "Input string", "Type": "string", "Required": "Y"},
        "mode": {"Name": "Mode", "Type": "select", "Options": {"a": "A", "b": "B"}, "Default": "a"},
    },
    "RETURN_PROPERTIES": {"outputString": {"Name": "MD5", "Type": "string"}},
    "DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal", "DEAL"],
}


class Env:
    def __init__(self, server: PortalServer, url: str, handler: EventRecorder, client: httpx.Client) -> None:
        self.server, self.url, self.handler, self.client = server, url, handler, client

    @property
    def portal(self) -> Portal:
        return self.server.portal

    def control(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(f"{self.server.url}/_portal{path}", json=body or {})

    def rest(self, method: str, token: str, **params: Any) -> httpx.Response:
        url = f"{self.server.url}/{self.portal.domain}/rest/{method}.json"
        return self.client.post(url, json={**params, "auth": token})

    def install(self, scopes: str = "bizproc,crm") -> dict[str, Any]:
        reply = self.control("/apps", {"handlers": {}, "scopes": scopes})
        assert reply.status_code == 201, reply.text
        app: dict[str, Any] = reply.json()
        return app


@pytest.fixture(scope="module")
def served() -> Iterator[Env]:
    handler = EventRecorder()
    with (
        PortalServer([Portal(seed=11, rate_limit=False)]) as server,
        serve_wsgi(handler) as url,
        httpx.Client(timeout=30) as client,
    ):
        yield Env(server, url, handler, client)


@pytest.fixture
def env(served: Env) -> Env:
    served.control("/reset").raise_for_status()
    served.handler.clear()
    return served


def _error(reply: httpx.Response) -> tuple[int, str, str]:
    body = reply.json()
    return reply.status_code, body["error"], body["error_description"]


def test_robot_runs_posts_the_documented_body_and_event_send_completes_it(env: Env) -> None:
    app = env.install()
    token = app["access_token"]
    added = env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **ROBOT)
    assert added.json()["result"] is True, added.text
    assert env.rest("bizproc.robot.list", token).json()["result"] == ["md5_robot"]

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        return env.rest(
            "bizproc.event.send",
            payload["auth"]["access_token"],
            event_token=payload["event_token"],
            return_values={"outputString": "846c55d1", "notDeclared": "x"},
            log_message="hashed",
        ).json()

    env.handler.answer = answer
    run = env.control(
        "/robots/md5_robot/run",
        {"document_id": ["crm", "CCrmDocumentDeal", "DEAL_7"], "properties": {"inputString": "hello"}},
    )
    assert run.status_code == 201, run.text
    assert [d["outcome"] for d in run.json()["deliveries"]] == ["ok"]
    [got] = env.handler.events()
    assert list(got) == [
        "event_token",
        "workflow_id",
        "code",
        "document_id",
        "document_type",
        "properties",
        "use_subscription",
        "timeout_duration",
        "ts",
        "auth",
    ]
    assert got["code"] == "md5_robot"
    assert got["document_id"] == ["crm", "CCrmDocumentDeal", "DEAL_7"]
    assert got["document_type"] == ["crm", "CCrmDocumentDeal", "DEAL"]
    assert got["properties"] == {"inputString": "hello", "mode": "a"}
    assert (got["use_subscription"], got["timeout_duration"]) == ("Y", "0")
    assert got["event_token"].startswith(got["workflow_id"] + "|")
    auth = got["auth"]
    assert auth["application_token"] == app["application_token"]
    assert auth["access_token"] != token  # a fresh token of AUTH_USER_ID
    issued = env.portal.authenticate(auth["access_token"])
    assert (issued.user_id, issued.client_id, auth["user_id"]) == (1, app["client_id"], "1")
    assert env.handler.sent == [env.handler.sent[0]]
    assert env.handler.sent[0]["result"] is True

    runs = env.client.get(f"{env.server.url}/_portal/robots").json()["runs"]
    assert [(r["status"], r["return_values"], r["log_message"]) for r in runs] == [
        ("completed", {"outputString": "846c55d1"}, "hashed")
    ]
    assert runs[0]["ignored_return_values"] == ["notDeclared"]
    assert "event_token" not in str(runs)

    # the token is used: a second send is refused, and so is a forged one
    again = env.rest("bizproc.event.send", token, EVENT_TOKEN=got["event_token"], RETURN_VALUES={})
    assert _error(again) == (403, "ACCESS_DENIED", "Access denied!")
    forged = got["event_token"][:-4] + "0000"
    assert _error(env.rest("bizproc.event.send", token, EVENT_TOKEN=forged)) == (
        403,
        "ACCESS_DENIED",
        "Access denied!",
    )


def test_a_waiting_run_stays_waiting_until_event_send(env: Env) -> None:
    token = env.install()["access_token"]
    env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **ROBOT).raise_for_status()
    run = env.control("/robots/md5_robot/run", {"properties": {"inputString": "x"}})
    assert run.json()["run"]["status"] == "waiting"
    [got] = env.handler.events()
    assert got["document_id"] == ["crm", "CCrmDocumentDeal", "DEAL_1"]
    [waiting] = env.portal.robot_runs()
    assert waiting.status == "waiting"
    assert waiting.return_values == {}
    sent = env.rest("bizproc.event.send", token, EVENT_TOKEN=got["event_token"])
    assert sent.json()["result"] is True
    assert waiting.status == "completed"


def test_without_subscription_the_run_completes_and_its_token_is_refused(env: Env) -> None:
    token = env.install()["access_token"]
    fields = {**ROBOT, "USE_SUBSCRIPTION": "N"}
    env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **fields).raise_for_status()
    run = env.control("/robots/md5_robot/run", {"properties": {"inputString": "x"}})
    assert run.json()["run"]["status"] == "completed"
    [got] = env.handler.events()
    assert got["use_subscription"] == "N"
    refused = env.rest("bizproc.event.send", token, EVENT_TOKEN=got["event_token"])
    assert _error(refused)[:2] == (403, "ACCESS_DENIED")


def test_another_apps_token_and_a_missing_scope_are_refused(env: Env) -> None:
    owner = env.install()["access_token"]
    other = env.install()["access_token"]
    no_scope = env.install("crm")["access_token"]
    env.rest("bizproc.robot.add", owner, HANDLER=env.url + "robot", **ROBOT).raise_for_status()
    env.control("/robots/md5_robot/run", {"properties": {"inputString": "x"}}).raise_for_status()
    [got] = env.handler.events()
    for method, params in (
        ("bizproc.robot.add", {"HANDLER": env.url + "robot", **ROBOT}),
        ("bizproc.robot.list", {}),
        ("bizproc.event.send", {"EVENT_TOKEN": got["event_token"]}),
    ):
        assert _error(env.rest(method, no_scope, **params))[:2] == (403, "insufficient_scope")
    assert _error(env.rest("bizproc.event.send", other, EVENT_TOKEN=got["event_token"]))[:2] == (
        403,
        "ACCESS_DENIED",
    )
    assert env.portal.robot_runs()[0].status == "waiting"  # nothing changed


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"CODE": ""}, "Empty activity code!"),
        ({"CODE": "bad code!"}, "Wrong activity code!"),
        ({"NAME": ""}, "Empty activity NAME!"),
        ({"PROPERTIES": "nope"}, "Wrong properties array!"),
        ({"PROPERTIES": {"1st": {"Name": "x"}}}, "Wrong property key 1st!"),
        ({"RETURN_PROPERTIES": {"out": {"Type": "string"}}}, "Empty property NAME out!"),
        ({"DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal"]}, "Wrong activity DOCUMENT_TYPE!"),
        ({"FILTER": {"ONLY": ["box"]}}, "Wrong activity FILTER!"),
    ],
)
def test_robot_add_refuses_as_the_page_lists(env: Env, change: dict[str, Any], error: str) -> None:
    token = env.install()["access_token"]
    reply = env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **{**ROBOT, **change})
    assert _error(reply) == (400, "ERROR_ACTIVITY_VALIDATION_FAILURE", error)
    assert env.rest("bizproc.robot.list", token).json()["result"] == []


def test_robot_handler_update_delete_and_duplicates(env: Env) -> None:
    token = env.install()["access_token"]
    ftp = env.rest("bizproc.robot.add", token, HANDLER="ftp://example.com/robot", **ROBOT)
    assert _error(ftp)[:2] == (400, "ERROR_UNSUPPORTED_PROTOCOL")
    bad = env.rest("bizproc.robot.add", token, HANDLER="https://localhost/robot", **ROBOT)
    assert _error(bad)[:2] == (400, "ERROR_WRONG_HANDLER_URL")
    env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **ROBOT).raise_for_status()
    twice = env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **ROBOT)
    assert _error(twice)[:2] == (400, "ERROR_ACTIVITY_ALREADY_INSTALLED")
    nothing = env.rest("bizproc.robot.update", token, CODE="md5_robot", FIELDS={})
    assert _error(nothing) == (400, "ERROR_ACTIVITY_VALIDATION_FAILURE", "No fields to update")
    missing = env.rest("bizproc.robot.update", token, CODE="other", FIELDS={"NAME": "x"})
    assert _error(missing)[:2] == (400, "ERROR_ACTIVITY_NOT_FOUND")
    updated = env.rest("bizproc.robot.update", token, CODE="md5_robot", FIELDS={"USE_SUBSCRIPTION": "N"})
    assert updated.json()["result"] is True
    assert env.portal.robots()[0].waits is False
    assert env.rest("bizproc.robot.delete", token, CODE="md5_robot").json()["result"] is True
    gone = env.rest("bizproc.robot.delete", token, CODE="md5_robot")
    assert _error(gone) == (400, "ERROR_ACTIVITY_NOT_FOUND", "Activity or Robot not found!")
    unknown = env.control("/robots/md5_robot/run", {})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "ROBOT_NOT_FOUND"


def test_run_refuses_bad_properties_with_nothing_sent(env: Env) -> None:
    token = env.install()["access_token"]
    env.rest("bizproc.robot.add", token, HANDLER=env.url + "robot", **ROBOT).raise_for_status()
    for body in ({}, {"properties": {"unknown": 1, "inputString": "x"}}):
        reply = env.control("/robots/md5_robot/run", body)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"] == "BAD_PROPERTY"
    short = env.control("/robots/md5_robot/run", {"document_id": ["crm"], "properties": {"inputString": "x"}})
    assert short.status_code == 400
    assert env.handler.events() == []
    assert env.portal.robot_runs() == []


def test_a_webhook_gets_application_context_required(env: Env) -> None:
    env.install()
    code = env.portal.add_webhook(user_id=1, scopes="bizproc")
    url = f"{env.server.url}/{env.portal.domain}/rest/1/{code}/bizproc.robot.list.json"
    reply = env.client.post(url, json={})
    assert _error(reply) == (400, "ACCESS_DENIED", "Application context required")
