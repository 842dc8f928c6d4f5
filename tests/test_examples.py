"""The reference handlers in examples/ honour the contract, driven as real processes by the real mock portal.

Each test starts a handler (Python, and Node.js where ``node`` is installed) on a free port and a
:class:`~mock_portal.server.PortalServer` on another; the portal installs the handler (ONAPPINSTALL), fires
its events (OnSessionStart, ONAPPUPDATE, ONAPPUNINSTALL) and records the REST calls the handler makes back,
over loopback HTTP. Bodies no portal would send (forged tokens, several sessions in one event, malformed
input) are built with ``mock_portal.events`` from the portal's values and POSTed straight to the handler. "No
side effect" is checked with a barrier: the handler runs one worker, so once a later valid event's call has
arrived, anything queued before it has been worked too.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_portal.events import DELETE, build_event
from mock_portal.portal import Portal
from mock_portal.server import PortalServer
from tests.support.examples import (
    CLIENT_ID,
    CLIENT_SECRET,
    FORM,
    MODES,
    SHAPES,
    Harness,
    Installed,
    delivered_token_id,
    forged_token,
    hand_built,
    node_handler_command,
    python_handler_command,
    several_sessions_body,
    wait_for_dialog,
)

KINDS = ("python", "node")
REFUSED = (401, 403)


def _command(kind: str, *extra: str) -> list[str]:
    if kind == "node":
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed")
        return node_handler_command(node, 0, "--workers", "1", *extra)
    return python_handler_command(0, "--workers", "1", *extra)


@pytest.fixture
def server() -> Iterator[PortalServer]:
    with PortalServer() as running:
        yield running


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def harness(kind: str, server: PortalServer) -> Iterator[Harness]:
    running = Harness(_command(kind), server)
    yield running
    running.stop()


def _dialogs(calls: list[Any]) -> list[str]:
    return [c.params["DIALOG_ID"] for c in calls]


# ---- the happy path, every shape and auth mode -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_session_start_posts_im_message_add(harness: Harness, shape: str, mode: str) -> None:
    installed = harness.install()
    started = harness.session(installed, shape, mode)
    [call] = wait_for_dialog(installed.portal, started.chat.dialog_id)
    assert (call.status, call.client_id) == (200, CLIENT_ID)
    assert call.params["MESSAGE"]
    # user mode uses the event's own token, system mode the one stored at install (facts §2)
    expected = delivered_token_id(installed.portal, started.attempts[0]) if mode == "user" else None
    assert call.token_id == (expected or installed.token.id)
    assert [c.method for c in installed.portal.calls()] == ["im.message.add"]


def test_several_items_unicode_extra_keys_no_handler_id(harness: Harness) -> None:
    portal = harness.server.portal
    line = portal.add_line("Линия «поддержки» 😀 ~ +&=")
    # chats opened before the app is installed: nothing is delivered for them
    chats = [portal.start_session(line_id=line.id) for _ in range(3)]
    assert all(not started.attempts for started in chats)
    installed = harness.install()
    assert harness.post(several_sessions_body(installed, chats, extra=True)).status_code == 200
    calls = [wait_for_dialog(portal, started.chat.dialog_id)[0] for started in chats]
    assert all(c.status == 200 and line.name in c.params["MESSAGE"] for c in calls)
    # the portal's own sessions on that line, in the shapes that carry the line's name
    for shape in ("source-2024", "docs-2024"):
        started = harness.session(installed, shape, "user", line_id=line.id)
        [call] = wait_for_dialog(portal, started.chat.dialog_id)
        assert line.name in call.params["MESSAGE"]


def test_response_and_logs_never_show_secrets(harness: Harness) -> None:
    installed = harness.install()
    started = harness.session(installed, "docs-2026", "user")
    event_token = installed.portal.issue_token(CLIENT_ID, refresh=False).access_token
    reply = harness.post(hand_built(installed, shape="docs-2026", auth="user", access_token=event_token))
    forged = forged_token()
    rejected = harness.post(hand_built(installed, auth="user", application_token=forged))
    assert (reply.status_code, rejected.status_code in REFUSED) == (200, True)
    wait_for_dialog(installed.portal, started.chat.dialog_id)
    assert harness.stop() == 0
    output = reply.text + rejected.text + harness.handler.stdout + harness.handler.stderr
    delivered = json.dumps(started.attempts[0].to_dict())
    secrets = [installed.app.application_token, forged, event_token]
    secrets += [installed.token.access_token, str(installed.token.refresh_token)]
    for secret in secrets:
        assert secret not in output
        assert secret not in delivered


# ---- authentication ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_forged_application_token_is_refused_without_side_effect(harness: Harness, mode: str) -> None:
    installed = harness.install()
    reply = harness.post(hand_built(installed, auth=mode, application_token=forged_token()))
    assert reply.status_code in REFUSED
    assert harness.barrier(installed) == []


def test_unknown_member_and_missing_token_are_refused(harness: Harness) -> None:
    installed = harness.install()
    stranger = hand_built(installed, member_id=forged_token(), application_token=forged_token())
    assert harness.post(stranger).status_code in REFUSED
    missing = hand_built(installed, overrides={"auth.application_token": DELETE})
    assert b"application_token" not in missing
    assert harness.post(missing).status_code in REFUSED
    assert harness.barrier(installed) == []


def test_two_portals_keep_their_own_state(harness: Harness) -> None:
    a = harness.install()
    b = harness.install(harness.server.add_portal())
    # portal A's application token on portal B's event is refused
    crossed = hand_built(b, application_token=a.app.application_token)
    assert harness.post(crossed).status_code in REFUSED
    # each portal's events go to its own REST endpoint with its own stored token
    started = harness.session(b, "docs-2026")
    [call] = wait_for_dialog(b.portal, started.chat.dialog_id)
    assert (call.status, call.token_id, call.portal) == (200, b.token.id, b.portal.domain)
    assert harness.barrier(a) == []
    assert [c.token_id for c in a.portal.calls("im.message.add")] == [a.token.id]


def test_uninstall_needs_the_stored_token_and_forgets(harness: Harness) -> None:
    installed = harness.install()
    forged = hand_built(installed, "ONAPPUNINSTALL", application_token=forged_token())
    assert harness.post(forged).status_code in REFUSED
    assert harness.barrier(installed) == []  # still installed
    attempts = installed.portal.uninstall_app(CLIENT_ID, clean=True)
    assert [(a.event, a.status) for a in attempts] == [("ONAPPUNINSTALL", 200)]
    # the portal delivers nothing to an uninstalled app: an event carrying the old token is sent by hand
    assert harness.post(hand_built(installed)).status_code in REFUSED


def test_update_replaces_tokens(harness: Harness) -> None:
    installed = harness.install()
    portal = installed.portal
    # same application token, new OAuth token: the stored token is replaced
    _, attempts = portal.update_app(CLIENT_ID)
    assert [(a.event, a.status) for a in attempts] == [("ONAPPUPDATE", 200)]
    update_token = delivered_token_id(portal, attempts[0])
    dialog = harness.session(installed).chat.dialog_id
    assert [c.token_id for c in wait_for_dialog(portal, dialog)] == [update_token]
    # a new application token is taken once the portal on record confirms the event's access token
    old_token = installed.app.application_token
    app, attempts = portal.update_app(CLIENT_ID, new_application_token=True)
    assert [(a.event, a.status) for a in attempts] == [("ONAPPUPDATE", 200)]
    assert app.application_token != old_token
    # the one app.info that confirmed the new token, and the message of the session before
    confirmed = delivered_token_id(portal, attempts[0])
    assert [(c.method, c.status, c.token_id) for c in harness.barrier(installed)] == [
        ("im.message.add", 200, update_token),
        ("app.info", 200, confirmed),
    ]
    assert harness.post(hand_built(installed, application_token=old_token)).status_code in REFUSED


def test_update_with_unconfirmed_new_token_is_refused(harness: Harness) -> None:
    installed = harness.install()
    update = hand_built(
        installed, "ONAPPUPDATE", auth="user", application_token=forged_token(), access_token="not-a-token"
    )
    assert harness.post(update).status_code in REFUSED
    # the handler asked the portal on record, which did not know the token; nothing else happened
    assert [(c.method, c.status, c.error) for c in harness.barrier(installed)] == [
        ("app.info", 401, "invalid_token")
    ]


def test_configured_application_token(kind: str, server: PortalServer) -> None:
    # installed by other means: no ONAPPINSTALL, the handler is told the token
    app, _, attempts = server.portal.install_app(None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert attempts == []
    running = Harness(_command(kind), server, env={"B24_APPLICATION_TOKEN": app.application_token})
    try:
        server.portal.bind(CLIENT_ID, "ONSESSIONSTART", running.url)
        installed = Installed(server.portal, app, server.portal.issue_token(CLIENT_ID))
        started = running.session(installed, "source-2024", "user")
        [call] = wait_for_dialog(server.portal, started.chat.dialog_id)
        assert call.token_id == delivered_token_id(server.portal, started.attempts[0])
        other = hand_built(installed, auth="user", application_token=forged_token())
        assert running.post(other).status_code in REFUSED
    finally:
        assert running.stop() == 0


# ---- the work: refresh, de-duplication, bursts -------------------------------------------------------------


def test_expired_token_is_refreshed_once(harness: Harness) -> None:
    installed = harness.install()
    portal = installed.portal
    clock = requests.post(harness.server.url + "/_portal/clock", json={"advance": 7200}, timeout=30)
    assert clock.status_code == 200, clock.text
    dialog = harness.session(installed, "docs-2026").chat.dialog_id
    first, retried = wait_for_dialog(portal, dialog, count=2)
    assert (first.status, first.error, first.token_id) == (401, "expired_token", installed.token.id)
    assert [(c.status, c.client_id) for c in portal.calls("oauth.token")] == [(200, CLIENT_ID)]
    assert retried.status == 200
    assert retried.token_id not in (None, installed.token.id)
    # the refreshed token is kept for the next event
    [again] = wait_for_dialog(portal, harness.session(installed, "docs-2026").chat.dialog_id)
    assert (again.status, again.token_id) == (200, retried.token_id)
    assert len(portal.calls("oauth.token")) == 1


def test_identical_repeated_delivery_has_one_side_effect(harness: Harness) -> None:
    installed = harness.install()
    started = harness.session(installed)
    # the very bytes the portal sent, delivered twice more
    body = started.attempts[0].body
    assert [harness.post(body).status_code for _ in range(2)] == [200, 200]
    assert _dialogs(harness.barrier(installed)) == [started.chat.dialog_id]


def test_burst_of_concurrent_deliveries(harness: Harness) -> None:
    # 60 sessions at once are 60 callbacks at once: past the standard plan's 50-request bucket, which the
    # example handlers do not retry; this test is about concurrency, so the portal's limiter is off
    harness.server.portal.rate_limiter.enabled = False
    installed = harness.install()
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def start() -> None:
        # through the control API: the server starts each session and delivers it from its own worker
        reply = requests.post(harness.server.url + "/_portal/sessions", json={"auth": "system"}, timeout=60)
        with lock:
            answers.append(reply.json())

    threads = [threading.Thread(target=start) for _ in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [[d["status"] for d in a["deliveries"]] for a in answers] == [[200]] * 60
    recorded = requests.get(
        harness.server.url + "/_portal/rest-calls",
        params={"method": "im.message.add", "min": "60", "timeout": "30"},
        timeout=60,
    ).json()
    assert sorted(c["params"]["DIALOG_ID"] for c in recorded) == sorted(a["dialog_id"] for a in answers)
    assert {(c["status"], c["token_id"]) for c in recorded} == {(200, installed.token.id)}


# ---- malformed input ---------------------------------------------------------------------------------------


def _raw_exchange(url: str, request: bytes, half_close: bool = True) -> int:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_malformed_bodies_get_4xx_and_no_side_effect(harness: Harness) -> None:
    installed = harness.install()
    good = hand_built(installed, chat_id=1300)
    as_json = build_event("ONSESSIONSTART", shape="docs-2024", auth="system").body("json").encode()
    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "json-typed": (as_json, {"Content-Type": "application/json"}),
        "json-as-form": (as_json, FORM),
        "empty": (b"", FORM),
        "truncated": (good[: len(good) // 2], FORM),
        "binary": (bytes(range(256)) * 4, FORM),
        "bad-utf8": (b"event=ONSESSIONSTART&x=%FF%FE", FORM),
        "oversized": (b"event=ONSESSIONSTART&pad=" + b"a" * (1 << 20), FORM),
        "too-many-fields": (b"&".join(b"f%d=1" % n for n in range(1500)), FORM),
        "too-deep": (b"event=ONSESSIONSTART&a" + b"[x]" * 80 + b"=1", FORM),
        "no-chat": (good.replace(b"chat%5D%5Bid%5D", b"chat%5D%5Bnope%5D"), FORM),
        "bad-chat-id": (good.replace(b"%5Bchat%5D%5Bid%5D=1300", b"%5Bchat%5D%5Bid%5D=1%3B1"), FORM),
    }
    assert all(body != good for name, (body, _) in cases.items() if name.endswith("chat")), "edits missed"
    statuses = {name: harness.post(body, headers).status_code for name, (body, headers) in cases.items()}
    assert all(400 <= status < 500 for status in statuses.values()), statuses
    assert statuses["oversized"] == 413
    assert statuses["json-typed"] == 415
    # a body shorter than its Content-Length: answered 4xx once the client gives up, never a hang or a 5xx
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    status = _raw_exchange(
        harness.url, head + b"Content-Length: 500\r\nConnection: close\r\n\r\n" + good[:100]
    )
    assert 400 <= status < 500
    assert harness.barrier(installed) == []


def test_get_is_not_an_event(harness: Harness) -> None:
    assert requests.get(harness.url, timeout=10).status_code == 405


# ---- process lifecycle -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_cleanly_on_signal(kind: str, server: PortalServer, sig: int) -> None:
    running = Harness(_command(kind), server)
    installed = running.install()
    dialog = running.session(installed).chat.dialog_id
    assert running.stop(sig) == 0
    # queued work is finished before the exit
    calls = server.portal.calls("im.message.add")
    assert [(c.params["DIALOG_ID"], c.status) for c in calls] == [(dialog, 200)]
    with pytest.raises(requests.ConnectionError):
        requests.get(running.url + "healthz", timeout=5)


# ---- the parsers against real captures and the product's codec ---------------------------------------------


def _captures(shared: Path) -> list[Path]:
    return sorted((shared / "captures").glob("*.wire.txt"))


def test_python_parser_matches_captures(b24_shared_dir: Path) -> None:
    from examples.python_handler._form import parse_form

    captures = _captures(b24_shared_dir)
    assert captures
    for wire in captures:
        expected = json.loads(wire.with_name(wire.name.replace(".wire.txt", ".json")).read_text())["payload"]
        assert _listless(parse_form(wire.read_bytes().strip())) == _listless(expected), wire.name


@pytest.mark.slow
@pytest.mark.once  # Node.js code only
def test_node_parser_matches_captures(b24_shared_dir: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    import subprocess

    for wire in _captures(b24_shared_dir):
        expected = json.loads(wire.with_name(wire.name.replace(".wire.txt", ".json")).read_text())["payload"]
        out = subprocess.run(
            node_handler_command(node, 0, "--parse"),
            input=wire.read_bytes().strip(),
            capture_output=True,
            check=True,
        ).stdout
        assert _listless(json.loads(out)) == _listless(expected), wire.name


def _listless(value: Any) -> Any:
    """Lists as {"0": ..., "1": ...}, the way PHP arrays (and the parsers) represent them."""
    if isinstance(value, list):
        return {str(i): _listless(v) for i, v in enumerate(value)}
    if isinstance(value, dict):
        return {str(k): _listless(v) for k, v in value.items()}
    return value


def test_python_parser_agrees_with_the_wire_codec() -> None:
    from examples.python_handler._form import parse_form
    from mock_portal.wire import decode

    for shape in SHAPES:
        for mode in MODES:
            event = build_event(shape=shape, auth=mode, seed=f"{shape}/{mode}")
            event = event.with_overrides({"data.EXTRA": {"line": "Линия ~ +&=", "flags": [True, False]}})
            body = event.body("form")
            assert _listless(parse_form(body.encode())) == _listless(decode(body)), (shape, mode)


# ---- in process: events routed to the WSGI app, REST answered by the portal through `responses` ------------


def test_python_app_in_process() -> None:
    from examples.python_handler import HandlerApp, HandlerConfig
    from mock_portal.delivery import WsgiTarget
    from mock_portal.inprocess import intercept

    app = HandlerApp(HandlerConfig(workers=1)).start()
    handler_url = "https://handler.example.com/b24"
    try:
        with Portal() as portal, intercept(portal):
            portal.route(handler_url, WsgiTarget(app))
            _, token, attempts = portal.install_app(handler_url, handlers={"ONSESSIONSTART": handler_url})
            assert [a.status for a in attempts] == [200]
            started = [portal.start_session(shape="docs-2026", auth="system") for _ in range(2)]
            dialogs = [s.chat.dialog_id for s in started]
            app.join()
            calls = portal.calls("im.message.add")
        assert [(c.params["DIALOG_ID"], c.status, c.token_id) for c in calls] == [
            (dialog, 200, token.id) for dialog in dialogs
        ]
    finally:
        app.close()


# ---- what the product records (mock_portal.portal, added for these tests) ----------------------------------


def test_rest_calls_record_which_token_they_carried() -> None:
    from mock_portal.rest import call

    portal = Portal()
    app, first, _ = portal.install_app(None)
    second = portal.issue_token(app.client_id, refresh=False)
    assert 0 < first.id < second.id
    call(portal, "app.info", {"auth": second.access_token})
    call(portal, "app.info", {"auth": first.access_token})
    call(portal, "app.info", {"auth": "never-issued"})
    call(portal, "app.info", {})
    recorded = portal.calls("app.info")
    assert [(c.status, c.token_id) for c in recorded] == [
        (200, second.id),
        (200, first.id),
        (401, None),
        (401, None),
    ]
    dumped = json.dumps([c.to_dict() for c in recorded])
    assert first.access_token not in dumped
    assert second.access_token not in dumped
    assert [c["token_id"] for c in json.loads(dumped)] == [second.id, first.id, None, None]
