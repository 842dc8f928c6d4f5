"""Triggers of the entities the portal keeps beside CRM: tasks (ONTASK*) and chat bots (ONIMBOT*).

Over real loopback HTTP: the portal server on 127.0.0.1, the apps' handlers served by ``wsgiref`` on
127.0.0.1, the REST and control APIs called with httpx. Every body a handler receives is validated against its
derived schema (strict), and the tokens it carries are checked against the portal that issued them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_portal import validate
from mock_portal.portal import Portal
from mock_portal.server import PortalServer
from tests.support.contract import serve_wsgi
from tests.support.recording import EventRecorder

TASK_EVENTS = ("ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE")
SYSTEM_KEYS = {"domain", "client_endpoint", "server_endpoint", "member_id", "application_token"}


class Env:
    """The server, the handler's base URL and what the handler got, with the calls the tests make."""

    def __init__(self, server: PortalServer, url: str, recorder: EventRecorder, client: httpx.Client) -> None:
        self.server, self.url, self.recorder, self.client = server, url, recorder, client

    @property
    def portal(self) -> Portal:
        return self.server.portal

    def control(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(f"{self.server.url}/_portal{path}", json=body or {})

    def rest(self, method: str, token: str, **params: Any) -> dict[str, Any]:
        url = f"{self.server.url}/{self.portal.domain}/rest/{method}.json"
        answer: dict[str, Any] = self.client.post(url, json={**params, "auth": token}).json()
        return answer

    def install(self, who: str, scopes: str, events: tuple[str, ...] = ()) -> dict[str, Any]:
        handlers = dict.fromkeys(events, self.url + who)
        reply = self.control("/apps", {"handlers": handlers, "scopes": scopes})
        assert reply.status_code == 201, reply.text
        app: dict[str, Any] = reply.json()
        return app


@pytest.fixture(scope="module")
def served() -> Iterator[Env]:
    """One server, handler and client for the module; each test starts from a reset portal."""
    recorder = EventRecorder()
    with (
        PortalServer([Portal(seed=7, rate_limit=False)]) as server,
        serve_wsgi(recorder) as url,
        httpx.Client(timeout=30) as client,
    ):
        yield Env(server, url, recorder, client)


@pytest.fixture
def env(served: Env) -> Env:
    served.control("/reset").raise_for_status()
    served.recorder.clear()
    return served


def _valid(payload: dict[str, Any]) -> None:
    report = validate(payload, payload["event"], strict=True)
    assert report.ok, report.errors


# ------------------------------------------------------------------------------------------------ tasks


def test_task_writes_fire_their_events_to_every_bound_app_in_user_mode(env: Env) -> None:
    owner = env.install("owner", "task,user", TASK_EVENTS)
    adds = env.install("adds", "task", ("ONTASKADD",))
    env.install("unbound", "task,crm", ("ONCRMDEALADD",))
    token = owner["access_token"]
    added = env.rest("tasks.task.add", token, fields={"TITLE": "Call the client", "RESPONSIBLE_ID": 1})
    task = added["result"]["task"]
    assert (task["id"], task["title"], task["responsibleId"], task["status"]) == (
        "1",
        "Call the client",
        "1",
        "2",
    )
    assert env.portal.wait_for_deliveries("ONTASKADD", count=2)[-1].outcome == "ok"
    changed = env.rest("tasks.task.update", token, taskId=1, fields={"STATUS": 5})
    assert (changed["result"]["task"]["status"], changed["result"]["task"]["closedBy"]) == ("5", "1")
    assert env.rest("tasks.task.delete", token, taskId=1)["result"] == {"task": True}
    assert len(env.portal.wait_for_deliveries("ONTASKDELETE")) == 1

    [add] = env.recorder.events("owner", "ONTASKADD")
    assert add["data"] == {
        "FIELDS_BEFORE": "undefined",
        "FIELDS_AFTER": {"ID": "1"},
        "IS_ACCESSIBLE_BEFORE": "N",
        "IS_ACCESSIBLE_AFTER": "undefined",
    }
    [update] = env.recorder.events("owner", "ONTASKUPDATE")
    assert update["data"]["FIELDS_BEFORE"] == update["data"]["FIELDS_AFTER"] == {"ID": "1"}
    [delete] = env.recorder.events("owner", "ONTASKDELETE")
    assert (delete["data"]["FIELDS_AFTER"], delete["data"]["IS_ACCESSIBLE_AFTER"]) == ("undefined", "N")
    for payload in (add, update, delete):
        _valid(payload)
        auth = payload["auth"]
        assert list(payload) == ["event", "event_handler_id", "data", "ts", "auth"]
        assert auth["application_token"] == owner["application_token"]
        assert env.portal.authenticate(auth["access_token"]).user_id == int(auth["user_id"]) == 1
    [other] = env.recorder.events("adds")
    assert other["event"] == "ONTASKADD"
    assert other["auth"]["application_token"] == adds["application_token"]
    assert env.recorder.events("unbound") == []


def test_task_events_in_system_mode_and_from_a_webhook(env: Env) -> None:
    env.install("owner", "task", TASK_EVENTS)
    code = env.control("/webhooks", {"user_id": 1, "scopes": "task"}).json()["code"]
    hook = f"{env.server.url}/{env.portal.domain}/rest/1/{code}/tasks.task.add.json"
    answer = env.client.post(hook, json={"fields": {"TITLE": "From a webhook", "RESPONSIBLE_ID": 1}})
    assert answer.json()["result"]["task"]["createdBy"] == "1"
    env.portal.wait_for_deliveries("ONTASKADD")
    _, attempts = env.portal.task_update(1, {"DEADLINE": "2030-01-31T18:00:00"}, auth="system")
    assert [a.outcome for a in attempts] == ["ok"]
    [by_hook] = env.recorder.events("owner", "ONTASKADD")
    assert by_hook["auth"]["user_id"] == "1"  # the webhook's user made the change: user mode
    [system] = env.recorder.events("owner", "ONTASKUPDATE")
    assert set(system["auth"]) == SYSTEM_KEYS
    _valid(system)


def test_task_methods_answer_as_their_pages(env: Env) -> None:
    token = env.install("owner", "task")["access_token"]
    for i in range(55):
        env.portal.task_add({"TITLE": f"task {i}", "RESPONSIBLE_ID": 1, "PRIORITY": i % 3})
    first = env.rest("tasks.task.list", token, select=["ID", "TITLE"])
    assert (len(first["result"]["tasks"]), first["next"], first["total"]) == (50, 50, 55)
    assert first["result"]["tasks"][0] == {"id": "55", "title": "task 54"}  # ID descending unless told
    second = env.rest("tasks.task.list", token, start=50, order={"ID": "asc"}, select=["ID"])
    assert [t["id"] for t in second["result"]["tasks"]] == ["51", "52", "53", "54", "55"]
    assert "next" not in second
    high = env.rest("tasks.task.list", token, filter={"PRIORITY": 2, "<ID": 10}, select=["ID", "PRIORITY"])
    assert [t["id"] for t in high["result"]["tasks"]] == ["9", "6", "3"]
    got = env.rest("tasks.task.get", token, taskId=3)["result"]["task"]
    assert got["responsible"]["id"] == "1"
    assert got["creator"]["link"] == "/company/personal/user/1/"
    assert env.rest("tasks.task.get", token, taskId=999)["result"] == []
    refusals: list[tuple[str, dict[str, Any], str]] = [
        ("tasks.task.add", {"fields": {"TITLE": "x"}}, "Responsible person not specified<br>"),
        ("tasks.task.add", {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 404}}, "was not found<br>"),
        ("tasks.task.add", {"fields": {"RESPONSIBLE_ID": 1}}, "Task title is not specified<br>"),
        ("tasks.task.add", {}, "Could not find value for parameter {fields}"),
        ("tasks.task.update", {"taskId": 2, "fields": {"STATUS": 9}}, "Invalid status<br>"),
        ("tasks.task.update", {"taskId": 2, "fields": {"PARENT_ID": 2}}, "Cannot bind the node to itself"),
        ("tasks.task.update", {"taskId": 999, "fields": {"TITLE": "y"}}, "Action on the task is not allowed"),
        ("tasks.task.delete", {"taskId": 999}, "No access to delete the task"),
        ("tasks.task.get", {"taskId": "x"}, "wrong task id"),
        ("tasks.task.get", {}, "CTaskItem All parameters"),
    ]
    for name, params, text in refusals:
        answer = env.rest(name, token, **params)
        assert text in answer["error_description"], (name, answer)
    assert env.portal.task(2)["STATUS"] == "2"  # a refused update changes nothing
    assert env.rest("tasks.task.list", token, start=-1)["result"]["tasks"][0]["id"] == "55"


# ------------------------------------------------------------------------------------------------ chat bots


def _register(env: Env, token: str, code: str = "helper", **extra: Any) -> int:
    answer = env.rest(
        "imbot.register",
        token,
        CODE=code,
        EVENT_HANDLER=env.url + "bot",
        PROPERTIES={"NAME": "Helper", "LAST_NAME": "Bot", "WORK_POSITION": "answers"},
        **extra,
    )
    bot_id: int = answer["result"]
    return bot_id


def _bot_block(payload: dict[str, Any], bot_id: int) -> dict[str, Any]:
    block: dict[str, Any] = payload["data"]["BOT"][str(bot_id)]
    return block


def test_a_user_writing_to_the_bot_reaches_its_app_with_the_bots_tokens(env: Env) -> None:
    owner = env.install("owner", "imbot,im,user")
    other = env.install("other", "imbot,im", ("ONIMBOTMESSAGEADD",))
    bot_id = _register(env, owner["access_token"])
    listed = env.rest("imbot.bot.list", other["access_token"])["result"]
    assert listed == {str(bot_id): {"ID": bot_id, "NAME": "Helper Bot", "CODE": "helper", "OPENLINE": "N"}}
    events = {row["event"] for row in env.rest("event.get", owner["access_token"])["result"]}
    assert events == {"ONIMBOTMESSAGEADD", "ONIMBOTJOINCHAT", "ONIMBOTDELETE"}  # bound by the registration

    joined = env.control(f"/bots/{bot_id}/join", {"user_id": 1})
    assert joined.status_code == 200, joined.text
    wrote = env.control(f"/bots/{bot_id}/messages", {"text": "Hello, bot", "user_id": 1})
    assert wrote.status_code == 201, wrote.text
    assert [(d["event"], d["outcome"]) for d in wrote.json()["deliveries"]] == [("ONIMBOTMESSAGEADD", "ok")]

    [join] = env.recorder.events("bot", "ONIMBOTJOINCHAT")
    [message] = env.recorder.events("bot", "ONIMBOTMESSAGEADD")
    for payload in (join, message):
        _valid(payload)
        bot = _bot_block(payload, bot_id)
        assert (bot["BOT_ID"], bot["BOT_CODE"], bot["user_id"]) == (str(bot_id), "helper", str(bot_id))
        assert bot["AUTH"]["access_token"] == bot["access_token"] != payload["auth"]["access_token"]
        assert env.portal.authenticate(bot["access_token"]).user_id == bot_id  # the bot's own token
        assert env.portal.authenticate(payload["auth"]["access_token"]).user_id == 1  # the user who wrote
        assert payload["auth"]["application_token"] == owner["application_token"]
    assert (join["data"]["PARAMS"]["CHAT_TYPE"], join["data"]["PARAMS"]["DIALOG_ID"]) == ("P", "1")
    params = message["data"]["PARAMS"]
    assert (params["MESSAGE"], params["DIALOG_ID"], params["TO_USER_ID"]) == ("Hello, bot", "1", str(bot_id))
    assert params["MESSAGE_ID"] == str(wrote.json()["message_id"])
    assert message["data"]["USER"]["ID"] == "1"
    assert env.recorder.events("other") == []  # bound to ONIMBOTMESSAGEADD, but not the bot's app

    # the bot answers with its own token: the call lands in the portal as the bot's
    reply = env.rest("imbot.message.add", _bot_block(message, bot_id)["access_token"], DIALOG_ID="1",
                     MESSAGE="Hello, human")  # fmt: skip
    assert isinstance(reply["result"], int)
    assert env.portal.calls("imbot.message.add")[-1].client_id == owner["client_id"]


def test_im_message_add_into_the_bots_dialog_fires_after_the_rest_answer(env: Env) -> None:
    owner = env.install("owner", "imbot,im")
    writer = env.install("writer", "im")
    bot_id = _register(env, owner["access_token"])
    sent = env.rest("im.message.add", writer["access_token"], DIALOG_ID=str(bot_id), MESSAGE="ping")
    assert isinstance(sent["result"], int)
    [attempt] = env.portal.wait_for_deliveries("ONIMBOTMESSAGEADD")  # queued, sent after the call (facts §1)
    assert attempt.outcome == "ok"
    [payload] = env.recorder.events("bot", "ONIMBOTMESSAGEADD")
    _valid(payload)
    assert payload["data"]["PARAMS"]["MESSAGE_ID"] == str(sent["result"])
    # the bot's own messages reach no bot; an unbound app's user writes without a bot in the dialog: nothing
    env.rest("im.message.add", _bot_block(payload, bot_id)["access_token"], DIALOG_ID="1", MESSAGE="pong")
    env.rest("im.message.add", writer["access_token"], DIALOG_ID="1", MESSAGE="to a user")
    env.control(f"/bots/{bot_id}/messages", {"text": "sync point"})
    assert env.portal.queued == 0
    assert len(env.portal.deliveries("ONIMBOTMESSAGEADD")) == 2
    assert env.recorder.events("writer") == []


def test_an_open_line_bot_gets_the_clients_messages_in_system_mode(env: Env) -> None:
    owner = env.install("owner", "imbot,im,imopenlines,imconnector", ("ONOPENLINEMESSAGEADD",))
    token = owner["access_token"]
    assert env.rest("imconnector.register", token, ID="shop", NAME="Shop", ICON={"DATA_IMAGE": "data:,"},
                    PLACEMENT_HANDLER="https://a.example.com/p")["result"]  # fmt: skip
    assert env.rest("imconnector.activate", token, CONNECTOR="shop", LINE=1, ACTIVE=1)["result"]
    session = env.control(
        "/sessions",
        {"connector_id": "shop", "line_id": 1, "external_chat_id": "ext-1", "external_user_id": "c1"},
    ).json()
    line_bot = _register(env, token, "ol_bot", TYPE="O")
    chat_bot = _register(env, token, "chat_bot", TYPE="B")
    for bot_id in (line_bot, chat_bot):
        joined = env.control(f"/bots/{bot_id}/join", {"chat_id": session["chat_id"]})
        assert [d["event"] for d in joined.json()["deliveries"]] == ["ONIMBOTJOINCHAT"]
    for join in env.recorder.events("bot", "ONIMBOTJOINCHAT"):
        _valid(join)
        assert set(join["data"]) == {"BOT", "PARAMS"}  # no USER: the open-line captures have none
        assert join["data"]["PARAMS"]["CHAT_ENTITY_ID"] == f"shop|1|ext-1|{session['user_id']}"
    message = {"user": {"id": "c1", "name": "Ann"}, "message": {"id": "m1", "text": "Where is my order?"},
               "chat": {"id": "ext-1"}}  # fmt: skip
    env.rest("imconnector.send.messages", token, CONNECTOR="shop", LINE=1, MESSAGES=[message])
    env.portal.wait_for_deliveries("ONIMBOTMESSAGEADD")
    [payload] = env.recorder.events("bot", "ONIMBOTMESSAGEADD")
    _valid(payload)
    assert set(payload["data"]["BOT"]) == {str(line_bot)}  # the chat bot is not mentioned: it does not see it
    assert set(payload["auth"]) == SYSTEM_KEYS  # an external client wrote (facts §2)
    params, user = payload["data"]["PARAMS"], payload["data"]["USER"]
    assert (params["CHAT_ENTITY_TYPE"], params["DIALOG_ID"]) == ("LINES", f"chat{session['chat_id']}")
    assert (user["IS_CONNECTOR"], user["IS_EXTRANET"]) == ("Y", "Y")
    # an operator mentions the chat bot: one body for both bots of the app, each with its own tokens
    text = f"[USER={chat_bot}]Helper[/USER] please take over"
    wrote = env.control(
        f"/bots/{chat_bot}/messages", {"text": text, "chat_id": session["chat_id"], "user_id": 1}
    )
    assert sorted(d["event"] for d in wrote.json()["deliveries"]) == [
        "ONIMBOTMESSAGEADD",
        "ONOPENLINEMESSAGEADD",
    ]
    both = env.recorder.events("bot", "ONIMBOTMESSAGEADD")[-1]
    _valid(both)
    assert set(both["data"]["BOT"]) == {str(line_bot), str(chat_bot)}
    assert both["data"]["PARAMS"]["MESSAGE"] == "please take over"
    assert both["data"]["PARAMS"]["MENTIONED_LIST"] == {str(chat_bot): str(chat_bot)}
    for bot_id in (line_bot, chat_bot):
        assert env.portal.authenticate(_bot_block(both, bot_id)["access_token"]).user_id == bot_id


def test_unregister_fires_onimbotdelete_and_drops_the_bindings(env: Env) -> None:
    owner = env.install("owner", "imbot")
    token = owner["access_token"]
    bot_id = _register(env, token)
    other = env.install("other", "imbot")
    refused = env.rest("imbot.unregister", other["access_token"], BOT_ID=bot_id)
    assert refused["error"] == "APP_ID_ERROR"
    assert env.rest("imbot.unregister", token, BOT_ID=bot_id)["result"] is True
    env.portal.wait_for_deliveries("ONIMBOTDELETE")
    [payload] = env.recorder.events("bot", "ONIMBOTDELETE")
    _valid(payload)
    assert payload["data"] == {"BOT_ID": str(bot_id), "BOT_CODE": "helper"}
    assert env.rest("event.get", token)["result"] == []
    assert env.rest("imbot.bot.list", token)["result"] == []
    assert env.rest("imbot.unregister", token, BOT_ID=bot_id)["error"] == "BOT_ID_ERROR"
    # a bot goes with its app
    second = _register(env, token, "second")
    assert env.control(f"/apps/{owner['client_id']}/uninstall").status_code == 200
    assert env.control(f"/bots/{second}/messages", {"text": "anyone?"}).status_code == 404
    assert env.rest("imbot.bot.list", other["access_token"])["result"] == []


_HOOK = {"EVENT_HANDLER": "https://a.example.com/b"}
_NAMED = {"PROPERTIES": {"NAME": "x"}}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({**_HOOK, **_NAMED}, "CODE_ERROR"),
        ({"CODE": "x", **_HOOK}, "NAME_ERROR"),
        ({"CODE": "x", **_NAMED}, "EVENT_MESSAGE_ADD_ERROR"),
        ({"CODE": "x", "EVENT_HANDLER": "http://localhost/b", **_NAMED}, "EVENT_MESSAGE_ADD_ERROR"),
        ({"CODE": "x", "TYPE": "Z", **_HOOK, **_NAMED}, "WRONG_REQUEST"),
    ],
)
def test_imbot_register_refuses_what_its_page_lists(env: Env, params: dict[str, Any], code: str) -> None:
    token = env.install("owner", "imbot")["access_token"]
    assert env.rest("imbot.register", token, **params)["error"] == code
    assert env.rest("imbot.bot.list", token)["result"] == []  # nothing changed


def test_bot_control_routes_refuse_bad_input_with_a_4xx_json_error(env: Env) -> None:
    bot_id = _register(env, env.install("owner", "imbot")["access_token"])
    cases = [
        (f"/bots/{bot_id + 1}/messages", {"text": "x"}, 404, "BOT_ID_ERROR"),
        (f"/bots/{bot_id}/messages", {"text": " "}, 400, "'text' must be a non-empty string"),
        (f"/bots/{bot_id}/messages", {}, 400, "'text' is required"),
        (f"/bots/{bot_id}/messages", {"txt": "x"}, 400, "did you mean 'text'?"),
        (f"/bots/{bot_id}/messages", {"text": "x", "chat_id": 1001}, 400, "BOT_NOT_IN_CHAT"),
        (f"/bots/{bot_id}/join", {"chat_id": 424242}, 400, "DIALOG_NOT_FOUND"),
        ("/bots/abc/join", {}, 400, "bot id must be a positive integer"),
        (f"/bots/{bot_id}/join", {"auth": "robot"}, 400, "'auth' must be one of user, system"),
    ]
    for path, body, status, text in cases:
        reply = env.control(path, body)
        assert reply.status_code == status, (path, reply.text)
        assert set(reply.json()) == {"error", "error_description"}
        assert text in reply.text, (path, reply.text)
    assert env.portal.deliveries("ONIMBOTMESSAGEADD") == []
