"""Portal state: installation lifecycle, bindings, sessions, tokens, filtering, several portals, threads."""

from __future__ import annotations

import threading

import pytest

from mock_portal.errors import UsageError
from mock_portal.portal import Clock, Portal, PortalError, check_handler_url
from mock_portal.schemas import validate
from tests.support.portal import HANDLER_BASE, install, recording_portal


@pytest.fixture
def portal_and_recorder():
    portal, recorder = recording_portal()
    yield portal, recorder
    portal.close()


def test_install_posts_onappinstall_with_refresh_and_application_token(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    app, token = install(portal)
    [payload] = recorder.events("ONAPPINSTALL")
    assert recorder.urls()[0] == f"{HANDLER_BASE}app/install"
    auth = payload["auth"]
    # facts §2/§4: ONAPPINSTALL carries refresh_token and application_token, and no event_handler_id
    assert auth["access_token"] == token.access_token
    assert auth["refresh_token"] == token.refresh_token
    assert auth["application_token"] == app.application_token
    assert (auth["member_id"], auth["domain"]) == (portal.member_id, portal.domain)
    assert list(auth)[-1] == "application_token"
    assert "event_handler_id" not in payload
    assert payload["data"]["INSTALLED"] == "Y"
    assert list(payload)[-1] == "auth"
    assert app.installed
    assert portal.authenticate(token.access_token).client_id == app.client_id


def test_ui_app_drops_events_until_install_finish(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    app, _ = install(portal, ui=True)
    assert recorder.events("ONAPPINSTALL")[0]["data"]["INSTALLED"] == "N"
    assert not app.installed
    first = portal.start_session()
    [dropped] = first.attempts
    assert dropped.outcome == "dropped"
    assert "installFinish" in (dropped.reason or "")
    assert recorder.events("ONSESSIONSTART") == []
    portal.install_finish(app.client_id)
    second = portal.start_session()
    assert [a.outcome for a in second.attempts] == ["ok"]
    assert len(recorder.events("ONSESSIONSTART")) == 1
    assert [a.outcome for a in portal.deliveries("ONSESSIONSTART")] == ["dropped", "ok"]


@pytest.mark.parametrize("shape", ["source-2024", "docs-2024", "docs-2026"])
@pytest.mark.parametrize("auth", ["user", "system"])
def test_session_start_payload_is_coherent_and_valid(portal_and_recorder, shape: str, auth: str) -> None:
    portal, recorder = portal_and_recorder
    app, _ = install(portal)
    started = portal.start_session(connector_id="telegrambot", line_id=7, shape=shape, auth=auth)
    [payload] = recorder.events("ONSESSIONSTART")
    report = validate(payload, event="ONSESSIONSTART", shape=shape, strict=True)
    assert report.ok, report.errors
    data = payload["data"]["DATA"]
    item = data if shape == "source-2024" else data[0]
    assert item["connector"] == {
        "connector_id": "telegrambot",
        "line_id": "7",
        "chat_id": str(started.chat.id),
        "user_id": str(started.chat.user_id),
    }
    if shape == "docs-2026":
        assert item["session"]["id"] == str(started.session.id)
    assert payload["event_handler_id"] == str(portal.bindings_of(app.client_id)[0].id)
    assert ("access_token" in payload["auth"]) is (auth == "user")
    assert "refresh_token" not in payload["auth"]  # not for OnSessionStart (facts §2)
    if auth == "user":
        # the event's token is live: a handler can call REST with it at once
        assert portal.authenticate(payload["auth"]["access_token"]).client_id == app.client_id


def test_every_bound_installed_app_receives_the_event(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    first, _ = install(portal, "one")
    second, _ = install(portal, "two")
    portal.start_session()
    received = recorder.events("ONSESSIONSTART")
    assert sorted(p["auth"]["application_token"] for p in received) == sorted(
        [first.application_token, second.application_token]
    )
    assert {p["event_handler_id"] for p in received} == {"1", "2"}


def test_owner_only_setting_limits_session_events_to_the_connector_owner() -> None:
    # facts §3: the source does not filter OnSessionStart by app; the docs say only the connector's owner
    for owner_only, expected in ((False, {"owner", "other"}), (True, {"owner"})):
        portal, recorder = recording_portal(session_events_owner_only=owner_only)
        with portal:
            owner, _ = install(portal, "owner")
            install(portal, "other")
            portal.register_connector(owner.client_id, "my_connector", "Mine")
            portal.start_session(connector_id="my_connector")
            names = {url.split("/")[3] for url in recorder.urls() if url.endswith("onsessionstart")}
            assert names == expected, owner_only


def test_owner_only_with_a_builtin_connector_reaches_nobody() -> None:
    portal, recorder = recording_portal(session_events_owner_only=True)
    with portal:
        install(portal)
        assert portal.start_session(connector_id="livechat").attempts == ()
        assert recorder.events("ONSESSIONSTART") == []


def test_token_expires_with_the_clock_and_refresh_rotates_it() -> None:
    clock = Clock(start=1_750_000_000.0)
    portal, _ = recording_portal(clock=clock)
    with portal:
        app, token = install(portal)
        clock.advance(3599)
        assert portal.authenticate(token.access_token)
        clock.advance(1)
        with pytest.raises(PortalError) as expired:
            portal.authenticate(token.access_token)
        assert (expired.value.code, expired.value.status) == ("expired_token", 401)
        with pytest.raises(PortalError, match="invalid_client"):
            portal.refresh(client_id=app.client_id, client_secret="wrong", refresh_token=token.refresh_token)
        fresh = portal.refresh(
            client_id=app.client_id, client_secret=app.client_secret, refresh_token=token.refresh_token
        )
        assert portal.authenticate(fresh.access_token).client_id == app.client_id
        assert fresh.refresh_token != token.refresh_token
        with pytest.raises(PortalError, match="invalid_grant"):
            portal.refresh(
                client_id=app.client_id, client_secret=app.client_secret, refresh_token=token.refresh_token
            )


def test_unknown_token_is_invalid() -> None:
    with Portal(seed=3) as portal, pytest.raises(PortalError) as err:
        portal.authenticate("f" * 70)
    assert (err.value.code, err.value.status) == ("invalid_token", 401)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:8080/h", True),
        ("https://app.example.com/h", True),
        ("http://app.example.com/h", True),  # no https requirement (facts §5)
        ("http://localhost:8080/h", False),  # no dot in the host
        ("ftp://app.example.com/h", False),
        ("app.example.com/h", False),
        ("", False),
    ],
)
def test_weak_handler_url_check(url: str, ok: bool) -> None:
    if ok:
        assert check_handler_url(url) == url
    else:
        with pytest.raises(PortalError):
            check_handler_url(url)


def test_bind_rules(portal_and_recorder) -> None:
    portal, _ = portal_and_recorder
    app, _ = install(portal, scopes="imopenlines")
    with pytest.raises(PortalError, match="Handler already binded"):
        portal.bind(app.client_id, "onsessionstart", f"{HANDLER_BASE}app/onsessionstart")
    with pytest.raises(PortalError, match="ERROR_EVENT_NOT_FOUND"):
        portal.bind(app.client_id, "ONCRMLEADADD", "https://app.example.com/crm")  # crm not in scopes
    with pytest.raises(PortalError, match="ERROR_EVENT_NOT_FOUND"):
        portal.bind(app.client_id, "ONNOSUCHEVENT", "https://app.example.com/x")
    with pytest.raises(PortalError, match="Wrong handler URL"):
        portal.bind(app.client_id, "ONSESSIONFINISH", "http://localhost/x")
    binding = portal.bind(app.client_id, "OnSessionFinish", "https://app.example.com/finish")
    assert binding.event == "ONSESSIONFINISH"
    assert portal.unbind(app.client_id, "ONSESSIONFINISH", "https://app.example.com/finish") == 1
    assert [b.event for b in portal.bindings_of(app.client_id)] == ["ONSESSIONSTART"]


def test_failed_install_leaves_no_app(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    with pytest.raises(PortalError):
        portal.install_app(f"{HANDLER_BASE}x/install", handlers={"ONSESSIONSTART": "http://localhost/h"})
    assert portal.apps == {}
    assert recorder.received == []


def test_uninstall_posts_system_mode_onappuninstall_and_revokes(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    app, token = install(portal, events=("ONSESSIONSTART", "ONAPPUNINSTALL"))
    [attempt] = portal.uninstall_app(app.client_id, clean=True)
    assert attempt.outcome == "ok"
    [payload] = recorder.events("ONAPPUNINSTALL")
    assert set(payload["auth"]) == {
        "domain",
        "client_endpoint",
        "server_endpoint",
        "member_id",
        "application_token",
    }
    assert payload["data"]["CLEAN"] == "1"
    with pytest.raises(PortalError, match="invalid_token"):
        portal.authenticate(token.access_token)
    assert portal.bindings_of(app.client_id) == []
    assert portal.start_session().attempts == ()
    with pytest.raises(PortalError, match="already uninstalled"):
        portal.uninstall_app(app.client_id)


def test_two_portals_in_one_process_are_independent() -> None:
    clock = Clock(start=1_750_000_000.0)
    first, rec1 = recording_portal(seed=1, clock=clock)
    second, rec2 = recording_portal(seed=2, clock=clock)
    with first, second:
        assert (first.domain, first.member_id) != (second.domain, second.member_id)
        _, token1 = install(first)
        install(second)
        first.start_session()
        assert len(rec1.events("ONSESSIONSTART")) == 1
        assert rec2.events("ONSESSIONSTART") == []
        with pytest.raises(PortalError, match="invalid_token"):
            second.authenticate(token1.access_token)
        assert rec1.events("ONAPPINSTALL")[0]["auth"]["member_id"] == first.member_id
        assert rec2.events("ONAPPINSTALL")[0]["auth"]["member_id"] == second.member_id


def test_concurrent_sessions_get_unique_ids_and_all_deliveries(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    install(portal)
    results = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            started = portal.start_session()
            with lock:
                results.append(started)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.session.id for r in results}) == 80
    assert len({r.chat.id for r in results}) == 80
    assert len(recorder.events("ONSESSIONSTART")) == 80
    assert len(portal.deliveries("ONSESSIONSTART")) == 80


def test_external_messages_reuse_the_chat_and_its_open_session(portal_and_recorder) -> None:
    portal, recorder = portal_and_recorder
    app, _ = install(portal)
    portal.register_connector(app.client_id, "myconn", "My connector")
    with pytest.raises(PortalError, match="NOT_ACTIVE_LINE"):
        portal.receive_external_message(
            app.client_id,
            "myconn",
            1,
            external_user={"id": "u"},
            external_message={},
            external_chat={"id": "c"},
        )
    portal.activate_connector("myconn", 1, True)
    message = {
        "external_user": {"id": "u1"},
        "external_message": {"text": "hi"},
        "external_chat": {"id": "c1"},
    }
    chat, session, _, started = portal.receive_external_message(app.client_id, "myconn", 1, **message)
    assert started is not None
    assert [a.outcome for a in started.attempts] == ["ok"]
    assert "access_token" not in recorder.events("ONSESSIONSTART")[0]["auth"]  # system mode (facts §2)
    chat2, session2, _, started2 = portal.receive_external_message(app.client_id, "myconn", 1, **message)
    assert (chat2.id, session2.id, started2) == (chat.id, session.id, None)
    assert len(recorder.events("ONSESSIONSTART")) == 1


def test_im_message_add_needs_an_existing_chat(portal_and_recorder) -> None:
    portal, _ = portal_and_recorder
    started = portal.start_session()
    message = portal.add_message(None, started.chat.dialog_id, "hello")
    assert message.chat_id == started.chat.id
    with pytest.raises(PortalError, match="ACCESS_ERROR"):
        portal.add_message(None, "chat999999", "hello")
    with pytest.raises(PortalError, match="MESSAGE_EMPTY"):
        portal.add_message(None, started.chat.dialog_id, "  ")


def test_reset_forgets_state_but_keeps_identity(portal_and_recorder) -> None:
    portal, _ = portal_and_recorder
    install(portal)
    portal.start_session()
    domain, member = portal.domain, portal.member_id
    portal.reset()
    assert (portal.apps, portal.chats, portal.deliveries(), portal.calls()) == ({}, {}, [], [])
    assert (portal.domain, portal.member_id) == (domain, member)


def test_clock_only_moves_forward() -> None:
    clock = Clock(start=100.0)
    assert clock.advance(5) == 105.0
    with pytest.raises(UsageError):
        clock.advance(-1)


def test_same_seed_same_identity() -> None:
    with Portal(seed=42) as a, Portal(seed=42) as b:
        assert (a.domain, a.member_id) == (b.domain, b.member_id)


def test_indexed_lookups_find_what_a_scan_in_order_finds() -> None:
    with Portal(seed=7) as portal:
        first = portal.start_session(external_chat_id="x", external_user_id="u")
        second = portal.start_session(external_chat_id="x", external_user_id="u")  # same client: a new chat
        portal.finish_session(first.session.id)
        reopened = portal.start_session_in_chat(first.chat.id)
        assert reopened.created
        assert reopened.session.parent_id == first.session.id
        portal.reset()
        assert portal.session_of_chat(first.chat.id) is None
        assert portal.chat_of_user_code(f"livechat|1|x|{first.chat.user_id}") is None
        first = portal.start_session(external_chat_id="x", external_user_id="u")
        second = portal.start_session(external_chat_id="x", external_user_id="u")
        portal.finish_session(first.session.id)
        reopened = portal.start_session_in_chat(first.chat.id)
        messages = [
            portal.send_operator_message(chat.id, f"m{chat.id}")[0] for chat in (first.chat, second.chat)
        ]
        portal.change_message(messages[0].id, delete=True)

        for chat in (first.chat, second.chat):
            in_order = [s for s in portal.sessions.values() if s.chat_id == chat.id]
            assert portal.session_of_chat(chat.id) is in_order[-1]
            code = f"{chat.connector_id}|{chat.line_id}|{chat.external_chat_id}|{chat.user_id}"
            newest = [
                c for c in portal.chats.values() if code == f"{c.connector_id}|{c.line_id}|x|{c.user_id}"
            ]
            assert portal.chat_of_user_code(code) is newest[-1]
        assert portal.session_of_chat(first.chat.id) is reopened.session
        assert [m.id for m in portal.messages] == [messages[1].id]
        with pytest.raises(PortalError, match="MESSAGE_NOT_FOUND"):
            portal.change_message(messages[0].id, "again")
        assert portal.change_message(messages[1].id, "edited") == []
        assert portal.messages[-1].text == "edited"
