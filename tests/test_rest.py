"""The REST side without a transport: envelopes, error codes, methods coherent with the portal's state."""

from __future__ import annotations

import json

import pytest

from mock_portal import rest
from mock_portal.portal import Clock
from tests.support.portal import HANDLER_BASE, install, recording_portal

ICON = {"DATA_IMAGE": "data:image/svg+xml;charset=US-ASCII,%3Csvg%3E%3C/svg%3E"}


@pytest.fixture
def env():
    clock = Clock(start=1_750_000_000.0)
    portal, recorder = recording_portal(clock=clock)
    app, token = install(portal, events=("ONSESSIONSTART", "ONAPPTEST"))
    yield portal, recorder, app, token, clock
    portal.close()


def _call(portal, method, token=None, **params):
    if token is not None:
        params["auth"] = token
    return rest.call(portal, method, params)


def test_success_envelope_has_result_and_time(env) -> None:
    portal, _, _, token, _ = env
    response = _call(portal, "app.info", token.access_token)
    assert response.status == 200
    assert set(response.body) == {"result", "time"}
    assert {"start", "finish", "duration", "date_start", "date_finish"} <= set(response.body["time"])
    assert response.body["result"]["INSTALLED"] is True


@pytest.mark.parametrize("method", ["event.get", "event.get.json", "EVENT.GET", "/event.get.json"])
def test_method_names_with_suffix_and_any_case(env, method: str) -> None:
    portal, _, _, token, _ = env
    response = _call(portal, method, token.access_token)
    assert response.ok
    assert [row["event"] for row in response.body["result"]] == ["ONSESSIONSTART", "ONAPPTEST"]


def test_auth_errors(env) -> None:
    portal, _, _, token, clock = env
    assert _call(portal, "event.get").body["error"] == "NO_AUTH_FOUND"
    bad = _call(portal, "event.get", "0" * 70)
    assert (bad.status, bad.body["error"]) == (401, "invalid_token")
    clock.advance(3600)
    expired = _call(portal, "event.get", token.access_token)
    assert (expired.status, expired.body["error"]) == (401, "expired_token")


def test_unknown_method(env) -> None:
    portal, _, _, token, _ = env
    # only a name the docs do not have (a documented one gets its spec's answer: test_documented_methods)
    response = _call(portal, "crm.invoice.recurring.nosuch", token.access_token)
    assert (response.status, response.body) == (
        404,
        {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
    )


def test_event_bind_get_unbind(env) -> None:
    portal, _, _, token, _ = env
    ok = _call(
        portal, "event.bind", token.access_token, event="OnSessionFinish", handler="https://a.example.com/f"
    )
    assert ok.body["result"] is True
    duplicate = _call(
        portal, "event.bind", token.access_token, EVENT="ONSESSIONFINISH", HANDLER="https://a.example.com/f"
    )
    assert duplicate.status == 400
    assert "Handler already binded" in duplicate.body["error_description"]
    localhost = _call(
        portal, "event.bind", token.access_token, event="ONSESSIONFINISH", handler="http://localhost/f"
    )
    assert localhost.status == 400
    unknown = _call(
        portal, "event.bind", token.access_token, event="ONCRMLEADADD", handler="https://a.example.com/c"
    )
    assert unknown.body["error"] == "ERROR_EVENT_NOT_FOUND"
    removed = _call(
        portal, "event.unbind", token.access_token, event="ONSESSIONFINISH", handler="https://a.example.com/f"
    )
    assert removed.body["result"] == {"count": 1}


def test_event_test_fires_onapptest_with_the_query(env) -> None:
    portal, recorder, _, token, _ = env
    response = _call(portal, "event.test", token.access_token, any="data")
    assert response.body["result"] == 1
    assert len(portal.wait_for_deliveries("ONAPPTEST")) == 1  # queued, sent after the call (facts §1)
    [payload] = recorder.events("ONAPPTEST")
    assert payload["data"]["QUERY"] == {"any": "data"}
    assert payload["event_handler_id"] == "2"


def test_webhooks_are_refused_where_an_app_context_is_required(env) -> None:
    portal, _, _, _, _ = env
    code = portal.add_webhook(user_id=1, scopes="im,imopenlines,imconnector")
    for method in ("event.bind", "imconnector.register", "event.test"):
        response = rest.call(portal, method, {"event": "ONSESSIONSTART"}, webhook=("1", code))
        assert (response.status, response.body["error"]) == (403, "WRONG_AUTH_TYPE"), method
    started = portal.start_session()
    allowed = rest.call(
        portal, "im.message.add", {"DIALOG_ID": started.chat.dialog_id, "MESSAGE": "hi"}, webhook=("1", code)
    )
    assert allowed.ok
    wrong = rest.call(portal, "im.message.add", {}, webhook=("2", code))
    assert (wrong.status, wrong.body["error"]) == (401, "NO_AUTH_FOUND")


def test_insufficient_scope(env) -> None:
    portal, _, _, _, _ = env
    app, token, _ = portal.install_app(None, scopes="imopenlines")
    response = _call(portal, "im.message.add", token.access_token, DIALOG_ID="chat1", MESSAGE="x")
    assert (response.status, response.body["error"]) == (403, "insufficient_scope")
    assert app.client_id in portal.apps


def test_connector_flow_creates_the_session_and_fires_onsessionstart(env) -> None:
    portal, recorder, _, token, _ = env
    t = token.access_token
    dot = _call(
        portal,
        "imconnector.register",
        t,
        ID="my.conn",
        NAME="x",
        ICON=ICON,
        PLACEMENT_HANDLER="https://a.b/p",
    )
    assert (dot.status, dot.body["error"]) == (200, "APPLICATION_REGISTRATION_ERROR_POINT")  # as documented
    registered = _call(
        portal,
        "imconnector.register",
        t,
        ID="myconn",
        NAME="My",
        ICON=ICON,
        PLACEMENT_HANDLER="https://a.b/p",
    )
    assert registered.body["result"] == {"result": True}
    messages = [
        {"user": {"id": "ext-1"}, "message": {"id": "m1", "text": "Hello"}, "chat": {"id": "ext-chat"}}
    ]
    inactive = _call(portal, "imconnector.send.messages", t, CONNECTOR="myconn", LINE="3", MESSAGES=messages)
    assert inactive.body["error"] == "NOT_ACTIVE_LINE"
    assert (
        _call(portal, "imconnector.activate", t, CONNECTOR="myconn", LINE="3", ACTIVE="1").body["result"]
        is True
    )
    assert (
        _call(portal, "imconnector.status", t, CONNECTOR="myconn", LINE="3").body["result"]["CONFIGURED"]
        is False
    )
    data_set = _call(
        portal, "imconnector.connector.data.set", t, CONNECTOR="myconn", LINE="3", DATA={"id": "x"}
    )
    assert data_set.ok
    status = _call(portal, "imconnector.status", t, CONNECTOR="myconn", LINE="3").body["result"]
    assert (status["STATUS"], status["CONFIGURED"]) == (True, True)
    # a PHP list arrives form-encoded as keys 0..n-1: accept both
    sent = _call(
        portal, "imconnector.send.messages", t, CONNECTOR="myconn", LINE="3", MESSAGES={"0": messages[0]}
    )
    [result] = sent.body["result"]["DATA"]["RESULT"]
    chat_id = int(result["session"]["CHAT_ID"])
    assert len(portal.wait_for_deliveries("ONSESSIONSTART")) == 1
    [payload] = recorder.events("ONSESSIONSTART")
    assert payload["data"]["DATA"]["connector"]["chat_id"] == str(chat_id)
    assert payload["data"]["DATA"]["connector"]["connector_id"] == "myconn"
    dialog = _call(portal, "imopenlines.dialog.get", t, CHAT_ID=str(chat_id)).body["result"]
    assert dialog["dialog_id"] == f"chat{chat_id}"
    assert dialog["session_id"] == int(result["session"]["ID"])
    missing = _call(portal, "imconnector.send.messages", t, CONNECTOR="myconn", LINE="3")
    assert missing.body == {
        "error": "ERROR_ARGUMENT",
        "error_description": "Argument 'MESSAGES' is null or empty",
    }
    bad = _call(portal, "imconnector.send.messages", t, CONNECTOR="myconn", LINE="3", MESSAGES=[{"user": {}}])
    assert "incorrect structure" in bad.body["error_description"]
    assert _call(portal, "imconnector.unregister", t, ID="myconn").body["result"] == {"result": True}


def test_session_start_method(env) -> None:
    portal, recorder, _, token, _ = env
    started = portal.start_session()
    again = _call(portal, "imopenlines.session.start", token.access_token, CHAT_ID=str(started.chat.id))
    assert again.body["result"] is True
    assert len(recorder.events("ONSESSIONSTART")) == 1  # the chat's session is still open: nothing new
    bad = _call(portal, "imopenlines.session.start", token.access_token, CHAT_ID="abc")
    assert (bad.status, bad.body["error"]) == (400, "CHAT_ID")
    unknown = _call(portal, "imopenlines.session.start", token.access_token, CHAT_ID="424242")
    assert unknown.body["error"] == "CHAT_ID"


def test_im_message_add(env) -> None:
    portal, _, _, token, _ = env
    started = portal.start_session()
    ok = _call(portal, "im.message.add", token.access_token, DIALOG_ID=started.chat.dialog_id, MESSAGE="Hi")
    assert isinstance(ok.body["result"], int)
    assert portal.messages[-1].text == "Hi"
    unknown = _call(portal, "im.message.add", token.access_token, DIALOG_ID="chat777777", MESSAGE="Hi")
    assert (unknown.status, unknown.body["error"]) == (400, "ACCESS_ERROR")
    empty = _call(portal, "im.message.add", token.access_token, DIALOG_ID=started.chat.dialog_id)
    assert empty.body["error"] == "MESSAGE_EMPTY"
    assert _call(portal, "im.message.add", token.access_token, MESSAGE="x").body["error"] == "DIALOG_ID_EMPTY"


def test_batch(env) -> None:
    portal, _, _, token, _ = env
    started = portal.start_session()
    cmd = {
        "info": "app.info",
        "post": f"im.message.add?DIALOG_ID={started.chat.dialog_id}&MESSAGE=hi",
        "bad": "im.message.add?DIALOG_ID=chat1&MESSAGE=x",
        "nested": "batch?cmd[a]=app.info",
    }
    response = _call(portal, "batch", token.access_token, cmd=cmd)
    body = response.body["result"]
    assert set(body["result"]) == {"info", "post"}
    assert body["result_error"]["bad"]["error"] == "ACCESS_ERROR"
    assert body["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    halted = _call(portal, "batch", token.access_token, halt="1", cmd={"a": "no.such", "b": "app.info"})
    assert halted.body["result"]["result"] == []  # PHP's empty array
    assert list(halted.body["result"]["result_error"]) == ["a"]
    too_many = _call(portal, "batch", token.access_token, cmd={str(i): "app.info" for i in range(51)})
    assert too_many.body["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    methods = [c.method for c in portal.calls()]
    assert "im.message.add" in methods  # batch sub-calls are recorded too


def test_oauth_refresh(env) -> None:
    portal, _, app, token, clock = env
    clock.advance(4000)
    params = {
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": token.refresh_token,
    }
    response = rest.handle_oauth([portal], params)
    assert response.status == 200
    assert response.body["member_id"] == portal.member_id
    assert response.body["client_endpoint"] == portal.client_endpoint
    assert _call(portal, "app.info", response.body["access_token"]).ok
    replay = rest.handle_oauth([portal], params)
    assert (replay.status, replay.body["error"]) == (400, "invalid_grant")
    wrong_grant = rest.handle_oauth([portal], {**params, "grant_type": "password"})
    assert wrong_grant.body["error"] == "unsupported_grant_type"


def test_calls_are_recorded_with_secrets_redacted(env) -> None:
    portal, _, app, token, _ = env
    _call(portal, "app.info", token.access_token)
    rest.handle_oauth(
        [portal],
        {
            "grant_type": "refresh_token",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "refresh_token": token.refresh_token,
        },
    )
    dumped = json.dumps([c.to_dict() for c in portal.calls()])
    for secret in (token.access_token, token.refresh_token, app.client_secret, app.application_token):
        assert secret not in dumped
    assert [c.method for c in portal.calls()] == ["app.info", "oauth.token"]
    assert portal.calls("app.info")[0].client_id == app.client_id


@pytest.mark.parametrize(
    ("query", "body", "content_type", "status"),
    [
        ("", b"{not json", "application/json", 400),
        ("", b"[1, 2]", "application/json", 400),
        ("", b"[" * 100 + b"]" * 100, "application/json", 400),
        ("", b'{"a":' * 70 + b"1" + b"}" * 70, "application/json", 400),
        ("", b"\xff\xfe", "application/x-www-form-urlencoded", 400),
        ("", b"a=" + b"x" * (rest.MAX_BODY_BYTES + 1), "application/x-www-form-urlencoded", 413),
        ("", b"a" + b"[b]" * 70 + b"=1", "application/x-www-form-urlencoded", 400),
    ],
)
def test_hostile_bodies_are_refused_cleanly(env, query, body, content_type, status) -> None:
    portal = env[0]
    response = rest.handle_rest_path(
        portal, "app.info", http_method="POST", query=query, body=body, content_type=content_type
    )
    assert response.status == status
    assert set(response.body) == {"error", "error_description"}


def test_params_merge_query_and_body(env) -> None:
    portal, _, _, token, _ = env
    response = rest.handle_rest_path(
        portal,
        "event.get.json",
        http_method="POST",
        query=f"auth={token.access_token}",
        body=b'{"x": 1}',
        content_type="application/json",
    )
    assert response.ok
    assert (
        rest.handle_rest_path(
            portal, "a/b/c/d", http_method="GET", query="", body=b"", content_type=None
        ).status
        == 404
    )


def test_recorded_handler_urls_stay_in_process(env) -> None:
    _portal, recorder, _, _, _ = env
    assert all(url.startswith(HANDLER_BASE) for url in recorder.urls())


def test_method_registry_refuses_a_name_twice() -> None:
    from mock_portal.rest.registry import Method, MethodRegistry

    registry = MethodRegistry()
    registry.add(Method("x.get", lambda caller, params: 1, (), False))
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Method("x.get", lambda caller, params: 2, (), False))
    with pytest.raises(ValueError, match="already registered"):
        rest.METHODS.method("event.bind")(lambda caller, params: None)
    assert [name for name in registry] == ["x.get"]
    assert "event.bind" in rest.METHODS
    assert "batch" not in rest.METHODS


def test_a_deferred_scope_registers_on_the_first_lookup_that_misses(tmp_path, monkeypatch) -> None:
    import sys
    import threading

    from mock_portal.rest.registry import Method, MethodRegistry

    registry = MethodRegistry()
    registry.add(Method("x.get", lambda caller, params: 1, (), False))
    monkeypatch.setattr(sys.modules[__name__], "DEFERRED_REGISTRY", registry, raising=False)
    (tmp_path / "b24_deferred_scope.py").write_text(
        "import threading\n"
        f"from {__name__} import DEFERRED_REGISTRY\n"
        "threading.Event().wait(0.05)  # a slow import: lookups in other threads meanwhile must wait\n"
        "DEFERRED_REGISTRY.method('y.get')(lambda caller, params: 2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "b24_deferred_scope", raising=False)
    registry.defer("b24_deferred_scope")
    assert registry["x.get"].handler(None, {}) == 1  # a hit loads nothing
    assert "b24_deferred_scope" not in sys.modules
    found: list[bool] = []
    threads = [threading.Thread(target=lambda: found.append("y.get" in registry)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [True] * 4
    assert registry.get("z.get") is None  # a miss after the load is a plain miss
    assert sorted(registry) == ["x.get", "y.get"]


def test_every_deferred_scope_is_found_through_the_rest_api_in_a_fresh_process() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from mock_portal import rest\n"
        "from tests.support.portal import install, recording_portal\n"
        "loaded = [s for s in rest.DEFERRED_SCOPES if f'mock_portal.rest.{s}' in sys.modules]\n"
        "assert loaded == [], loaded\n"
        "portal, _ = recording_portal()\n"
        "_, token = install(portal, events=(), scopes=('task',))\n"
        "fields = {'TITLE': 'x', 'RESPONSIBLE_ID': 1}\n"
        "answer = rest.call(portal, 'tasks.task.add', {'auth': token.access_token, 'fields': fields})\n"
        "assert answer.status == 200, answer.body\n"
        "assert all(f'mock_portal.rest.{s}' in sys.modules for s in rest.DEFERRED_SCOPES)\n"
        "portal.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
