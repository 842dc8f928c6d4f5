"""The reference handlers in examples/ honour the contract, driven as real processes over loopback HTTP.

Each test starts a handler (Python, and Node.js where ``node`` is installed) on a free port, installs it with
an ONAPPINSTALL, sends events, and watches the REST calls arrive at a loopback portal. "No side effect" is
checked with a barrier: the handler runs one worker, so once a later valid event's call has arrived, anything
queued before it has been worked too.
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
from urllib.parse import parse_qsl

import pytest
import requests

from tests.support.examples import (
    MODES,
    SHAPES,
    HandlerProcess,
    LoopbackPortal,
    PortalIdentity,
    lifecycle_body,
    node_handler_command,
    php_encode,
    python_handler_command,
    session_start_body,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
KINDS = ("python", "node")


def _command(kind: str, *extra: str) -> list[str]:
    if kind == "node":
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed")
        return node_handler_command(node, 0, "--workers", "1", *extra)
    return python_handler_command(0, "--workers", "1", *extra)


@pytest.fixture
def portal() -> Iterator[LoopbackPortal]:
    server = LoopbackPortal()
    yield server
    server.close()


class Harness:
    """A handler process, the loopback portal it calls, and helpers to install and send events."""

    def __init__(
        self, kind: str, portal: LoopbackPortal, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.kind = kind
        self.portal = portal
        credentials = {"B24_CLIENT_ID": portal.client_id, "B24_CLIENT_SECRET": portal.client_secret}
        self.handler = HandlerProcess(_command(kind, *extra), env={**credentials, **(env or {})})
        self.url = self.handler.url + "/"
        self._next_chat = 9000

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(self.url, data=body, headers=headers or FORM, timeout=20)

    def install(self, identity: PortalIdentity) -> tuple[str, str]:
        access, refresh = self.portal.issue()
        auth = identity.auth(access, refresh_token=refresh)
        data = {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "en"}
        reply = self.post(lifecycle_body("ONAPPINSTALL", identity, auth, data))
        assert reply.status_code == 200, reply.text
        return access, refresh

    def barrier(self, identity: PortalIdentity) -> list[Any]:
        """Send a valid system-mode event and wait for its call; return every im.message.add seen by then."""
        self._next_chat += 1
        chat = self._next_chat
        reply = self.post(session_start_body(identity, "docs-2024", [chat], access_token=None, ts=str(chat)))
        assert reply.status_code == 200, reply.text
        self.portal.wait_for(lambda calls: any(c.params.get("DIALOG_ID") == f"chat{chat}" for c in calls))
        return [c for c in self.portal.messages() if c.params.get("DIALOG_ID") != f"chat{chat}"]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return self.handler.stop(sig)


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, portal: LoopbackPortal) -> Iterator[Harness]:
    running = Harness(request.param, portal)
    yield running
    running.stop()


def _secrets_of(*identities: PortalIdentity, tokens: tuple[str, ...] = ()) -> list[str]:
    return [i.application_token for i in identities] + list(tokens)


# ---- the happy path, every shape and auth mode -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_session_start_posts_im_message_add(harness: Harness, shape: str, mode: str) -> None:
    identity = harness.portal.identity()
    install_token, _ = harness.install(identity)
    event_token = harness.portal.issue()[0] if mode == "user" else None
    reply = harness.post(session_start_body(identity, shape, [501], access_token=event_token))
    assert reply.status_code == 200, reply.text
    calls = harness.portal.wait_for(lambda calls: len(calls) >= 1)
    assert [c.method for c in calls] == ["im.message.add"]
    assert calls[0].params["DIALOG_ID"] == "chat501"
    assert calls[0].params["MESSAGE"]
    # user mode uses the event's own token, system mode the one stored at install (facts §2)
    assert calls[0].params["auth"] == (event_token if mode == "user" else install_token)


def test_several_items_unicode_extra_keys_no_handler_id(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    body = session_start_body(
        identity,
        "docs-2024",
        [11, 12, 13],
        access_token=None,
        line_name="Линия «поддержки» 😀",
        handler_id=None,
        extra=True,
    )
    assert harness.post(body).status_code == 200
    calls = harness.portal.wait_for(lambda calls: len(calls) >= 3)
    assert sorted(c.params["DIALOG_ID"] for c in calls) == ["chat11", "chat12", "chat13"]
    assert all("Линия «поддержки» 😀" in c.params["MESSAGE"] for c in calls)


def test_response_and_logs_never_show_secrets(harness: Harness) -> None:
    identity = harness.portal.identity()
    access, refresh = harness.install(identity)
    event_token = harness.portal.issue()[0]
    reply = harness.post(session_start_body(identity, "docs-2026", [77], access_token=event_token))
    forged = PortalIdentity(identity.client_endpoint, identity.server_endpoint, member_id=identity.member_id)
    rejected = harness.post(session_start_body(forged, "docs-2026", [78], access_token=event_token))
    harness.portal.wait_for(lambda calls: len(calls) >= 1)
    assert harness.stop() == 0
    output = reply.text + rejected.text + harness.handler.stdout + harness.handler.stderr
    for secret in _secrets_of(identity, forged, tokens=(access, refresh, event_token)):
        assert secret not in output


# ---- authentication ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_forged_application_token_is_refused_without_side_effect(harness: Harness, mode: str) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    forged = PortalIdentity(identity.client_endpoint, identity.server_endpoint, member_id=identity.member_id)
    token = harness.portal.issue()[0] if mode == "user" else None
    reply = harness.post(session_start_body(forged, "docs-2024", [600], access_token=token))
    assert reply.status_code in (401, 403)
    assert harness.barrier(identity) == []


def test_unknown_member_and_missing_token_are_refused(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    stranger = harness.portal.identity()
    assert harness.post(session_start_body(stranger, "docs-2024", [601], access_token=None)).status_code in (
        401,
        403,
    )
    auth = identity.auth(None)
    del auth["application_token"]
    body = session_start_body(identity, "docs-2024", [602], access_token=None, auth_override=auth)
    assert harness.post(body).status_code in (401, 403)
    assert harness.barrier(identity) == []


def test_two_portals_keep_their_own_state(harness: Harness) -> None:
    other_portal = LoopbackPortal()
    try:
        a, b = harness.portal.identity(), other_portal.identity()
        harness.install(a)
        access_b, refresh_b = other_portal.issue()
        install_b = lifecycle_body(
            "ONAPPINSTALL", b, b.auth(access_b, refresh_token=refresh_b), {"VERSION": "1"}
        )
        assert harness.post(install_b).status_code == 200
        # portal A's application token on portal B's event is refused
        crossed = b.auth(None)
        crossed["application_token"] = a.application_token
        body = session_start_body(b, "docs-2024", [700], access_token=None, auth_override=crossed)
        assert harness.post(body).status_code in (401, 403)
        # each portal's events go to its own REST endpoint with its own token
        assert harness.post(session_start_body(b, "docs-2026", [701], access_token=None)).status_code == 200
        calls_b = other_portal.wait_for(lambda calls: len(calls) >= 1)
        assert [(c.params["DIALOG_ID"], c.params["auth"]) for c in calls_b] == [("chat701", access_b)]
        assert harness.barrier(a) == []
    finally:
        other_portal.close()


def test_uninstall_needs_the_stored_token_and_forgets(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    forged = PortalIdentity(identity.client_endpoint, identity.server_endpoint, member_id=identity.member_id)
    assert harness.post(
        lifecycle_body("ONAPPUNINSTALL", forged, forged.auth(None), {"CLEAN": "0"})
    ).status_code in (
        401,
        403,
    )
    assert harness.barrier(identity) == []  # still installed
    assert (
        harness.post(
            lifecycle_body("ONAPPUNINSTALL", identity, identity.auth(None), {"CLEAN": "1"})
        ).status_code
        == 200
    )
    assert harness.post(session_start_body(identity, "docs-2024", [800], access_token=None)).status_code in (
        401,
        403,
    )


def test_update_replaces_tokens(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    # same application token, new OAuth pair: the stored token is replaced
    access, refresh = harness.portal.issue()
    update = lifecycle_body(
        "ONAPPUPDATE", identity, identity.auth(access, refresh_token=refresh), {"VERSION": "2"}
    )
    assert harness.post(update).status_code == 200
    assert (
        harness.post(session_start_body(identity, "docs-2024", [900], access_token=None)).status_code == 200
    )
    calls = harness.portal.wait_for(lambda calls: len(calls) >= 1)
    assert calls[0].params["auth"] == access
    # a new application token is taken once the portal on record confirms the event's access token
    old_token = identity.application_token
    identity.application_token = "f" * 32
    access2, refresh2 = harness.portal.issue()
    update2 = lifecycle_body(
        "ONAPPUPDATE", identity, identity.auth(access2, refresh_token=refresh2), {"VERSION": "3"}
    )
    assert harness.post(update2).status_code == 200
    assert [c.params["DIALOG_ID"] for c in harness.barrier(identity)] == ["chat900"]
    assert [c.method for c in harness.portal.calls].count("app.info") == 1
    identity.application_token = old_token
    assert harness.post(session_start_body(identity, "docs-2024", [901], access_token=None)).status_code in (
        401,
        403,
    )


def test_update_with_unconfirmed_new_token_is_refused(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    attacker = PortalIdentity(
        identity.client_endpoint, identity.server_endpoint, member_id=identity.member_id
    )
    update = lifecycle_body(
        "ONAPPUPDATE", attacker, attacker.auth("not-a-token", refresh_token="x"), {"VERSION": "9"}
    )
    assert harness.post(update).status_code in (401, 403)
    assert [c.method for c in harness.barrier(identity)] == []


def test_configured_application_token(portal: LoopbackPortal) -> None:
    for kind in KINDS:
        if kind == "node" and shutil.which("node") is None:
            continue
        identity = portal.identity()
        running = Harness(kind, portal, env={"B24_APPLICATION_TOKEN": identity.application_token})
        try:
            token = portal.issue()[0]
            body = session_start_body(identity, "source-2024", [1000 + len(kind)], access_token=token)
            assert running.post(body).status_code == 200
            portal.wait_for(
                lambda calls, k=kind: any(c.params["DIALOG_ID"] == f"chat{1000 + len(k)}" for c in calls)
            )
            other = PortalIdentity(identity.client_endpoint, identity.server_endpoint)
            assert running.post(
                session_start_body(other, "docs-2024", [5], access_token=token)
            ).status_code in (
                401,
                403,
            )
        finally:
            assert running.stop() == 0


# ---- the work: refresh, de-duplication, bursts -------------------------------------------------------------


def test_expired_token_is_refreshed_once(harness: Harness) -> None:
    identity = harness.portal.identity()
    install_token, _ = harness.install(identity)
    harness.portal.expire(install_token)
    assert (
        harness.post(session_start_body(identity, "docs-2026", [1100], access_token=None)).status_code == 200
    )
    calls = harness.portal.wait_for(lambda calls: len(calls) >= 2)
    assert [c.params["auth"] == install_token for c in calls] == [True, False]
    assert harness.portal.refreshes == 1
    # the refreshed token is kept for the next event
    assert (
        harness.post(session_start_body(identity, "docs-2026", [1101], access_token=None)).status_code == 200
    )
    calls = harness.portal.wait_for(lambda calls: len(calls) >= 3)
    assert calls[2].params["auth"] == calls[1].params["auth"]
    assert harness.portal.refreshes == 1


def test_identical_repeated_delivery_has_one_side_effect(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    body = session_start_body(identity, "docs-2024", [1200], access_token=None)
    assert [harness.post(body).status_code for _ in range(3)] == [200, 200, 200]
    assert [c.params["DIALOG_ID"] for c in harness.barrier(identity)] == ["chat1200"]


def test_burst_of_concurrent_deliveries(harness: Harness) -> None:
    identity = harness.portal.identity()
    harness.install(identity)
    bodies = [session_start_body(identity, "docs-2024", [2000 + n], access_token=None) for n in range(60)]
    statuses: list[int] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        status = harness.post(body).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 60
    calls = harness.portal.wait_for(lambda calls: len(calls) >= 60)
    assert sorted(c.params["DIALOG_ID"] for c in calls) == sorted(f"chat{2000 + n}" for n in range(60))


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
    identity = harness.portal.identity()
    harness.install(identity)
    good = session_start_body(identity, "docs-2024", [1300], access_token=None)
    as_json = json.dumps({"event": "ONSESSIONSTART", "auth": identity.auth(None)}).encode()
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
    assert harness.barrier(identity) == []


def test_get_is_not_an_event(harness: Harness) -> None:
    assert requests.get(harness.url, timeout=10).status_code == 405


# ---- process lifecycle -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_cleanly_on_signal(portal: LoopbackPortal, kind: str, sig: int) -> None:
    running = Harness(kind, portal)
    identity = portal.identity()
    running.install(identity)
    assert (
        running.post(session_start_body(identity, "docs-2024", [1400], access_token=None)).status_code == 200
    )
    assert running.stop(sig) == 0
    # queued work is finished before the exit
    assert [c.params["DIALOG_ID"] for c in portal.messages()] == ["chat1400"]
    with pytest.raises(requests.ConnectionError):
        requests.get(running.url + "healthz", timeout=5)


# ---- the parsers against real captures ---------------------------------------------------------------------


def _captures(shared: Path) -> list[Path]:
    return sorted((shared / "captures").glob("*.wire.txt"))


def test_python_parser_matches_captures(b24_shared_dir: Path) -> None:
    from examples.python_handler._form import parse_form

    captures = _captures(b24_shared_dir)
    assert captures
    for wire in captures:
        expected = json.loads(wire.with_name(wire.name.replace(".wire.txt", ".json")).read_text())["payload"]
        assert _listless(parse_form(wire.read_bytes().strip())) == _listless(expected), wire.name


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


@pytest.mark.php
def test_php_encoder_matches_php(php_binary: str) -> None:
    import subprocess

    payload = {
        "event": "ONSESSIONSTART",
        "data": {"DATA": [{"chat": {"id": "1"}, "line": {"name": "Линия, /x ~"}, "gone": None, "empty": []}]},
        "flags": {"yes": True, "no": False},
        "auth": {"access_token": "a~b c+d&e=f"},
    }
    script = "echo http_build_query(json_decode(stream_get_contents(STDIN), true));"
    out = subprocess.run(
        [php_binary, "-r", script], input=json.dumps(payload).encode(), capture_output=True, check=True
    )
    assert php_encode(payload) == out.stdout


# ---- end to end against the mock portal server (mock_portal.server) ------------------------------------


@pytest.fixture
def mock_portal_server() -> Iterator[Any]:
    server_module = pytest.importorskip("mock_portal.server")
    with server_module.PortalServer() as server:
        yield server


def _install_on(server: Any, handler_url: str, portal: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "install_url": handler_url,
        "handlers": {"ONSESSIONSTART": handler_url, "ONAPPUNINSTALL": handler_url},
        "client_id": E2E_CLIENT_ID,
        "client_secret": E2E_CLIENT_SECRET,
    }
    if portal is not None:
        body["portal"] = portal
    reply = requests.post(server.url + "/_portal/apps", json=body, timeout=60)
    assert reply.status_code == 201, reply.text
    installed: dict[str, Any] = reply.json()
    assert [(d["event"], d["status"]) for d in installed["deliveries"]] == [("ONAPPINSTALL", 200)]
    return installed


def _start_session(server: Any, shape: str, auth: str, portal: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"shape": shape, "auth": auth}
    if portal is not None:
        body["portal"] = portal
    reply = requests.post(server.url + "/_portal/sessions", json=body, timeout=60)
    assert reply.status_code in (200, 201), reply.text
    started: dict[str, Any] = reply.json()
    assert [(d["event"], d["status"]) for d in started["deliveries"]] == [("ONSESSIONSTART", 200)]
    return started


E2E_CLIENT_ID = "local.b24contract.example"
E2E_CLIENT_SECRET = "example-client-secret-for-the-mock-portal-only"
E2E_ENV = {"B24_CLIENT_ID": E2E_CLIENT_ID, "B24_CLIENT_SECRET": E2E_CLIENT_SECRET}


@pytest.mark.parametrize("kind", KINDS)
def test_mock_portal_every_shape_and_mode(mock_portal_server: Any, kind: str) -> None:
    handler = HandlerProcess(_command(kind), env=E2E_ENV)
    try:
        installed = _install_on(mock_portal_server, handler.url + "/")
        dialogs = [
            _start_session(mock_portal_server, shape, mode)["dialog_id"] for shape in SHAPES for mode in MODES
        ]
    finally:
        # SIGTERM drains the queue before the exit, so every REST call has been made once it returns
        assert handler.stop() == 0
    calls = mock_portal_server.portal.calls("im.message.add")
    assert sorted(c.params["DIALOG_ID"] for c in calls) == sorted(dialogs)
    assert all(c.status == 200 and c.client_id == installed["client_id"] for c in calls)
    output = handler.stdout + handler.stderr
    for secret in (installed["application_token"], installed["access_token"], installed["refresh_token"]):
        assert secret not in output


@pytest.mark.parametrize("kind", KINDS)
def test_mock_portal_expired_token_is_refreshed(mock_portal_server: Any, kind: str) -> None:
    handler = HandlerProcess(_command(kind), env=E2E_ENV)
    try:
        _install_on(mock_portal_server, handler.url + "/")
        clock = requests.post(mock_portal_server.url + "/_portal/clock", json={"advance": 7200}, timeout=30)
        assert clock.status_code == 200, clock.text
        dialog = _start_session(mock_portal_server, "docs-2026", "system")["dialog_id"]
    finally:
        assert handler.stop() == 0
    calls = [c for c in mock_portal_server.portal.calls("im.message.add") if c.params["DIALOG_ID"] == dialog]
    assert [(c.status, c.error) for c in calls] == [(401, "expired_token"), (200, None)]


@pytest.mark.parametrize("kind", KINDS)
def test_mock_portal_two_portals(mock_portal_server: Any, kind: str) -> None:
    second = requests.post(mock_portal_server.url + "/_portal/portals", json={}, timeout=30)
    assert second.status_code in (200, 201), second.text
    domain_b = second.json()["domain"]
    handler = HandlerProcess(_command(kind), env=E2E_ENV)
    try:
        _install_on(mock_portal_server, handler.url + "/")
        _install_on(mock_portal_server, handler.url + "/", portal=domain_b)
        dialog_a = _start_session(mock_portal_server, "docs-2024", "system")["dialog_id"]
        dialog_b = _start_session(mock_portal_server, "source-2024", "system", portal=domain_b)["dialog_id"]
    finally:
        assert handler.stop() == 0
    portal_a, portal_b = mock_portal_server.portal, mock_portal_server.portals[domain_b]
    assert [(c.params["DIALOG_ID"], c.status) for c in portal_a.calls("im.message.add")] == [(dialog_a, 200)]
    assert [(c.params["DIALOG_ID"], c.status) for c in portal_b.calls("im.message.add")] == [(dialog_b, 200)]


# ---- in process: the WSGI app with `responses` standing in for the portal ----------------------------------


def test_python_app_in_process_with_responses() -> None:
    import responses

    from examples.python_handler import HandlerApp, HandlerConfig

    identity = PortalIdentity("https://inproc.bitrix24.com/rest/", "https://oauth.bitrix.info/rest/")
    app = HandlerApp(HandlerConfig(workers=1)).start()
    try:
        with responses.RequestsMock() as mocked:
            mocked.post("https://inproc.bitrix24.com/rest/im.message.add.json", json={"result": 1})
            auth = identity.auth("install-token", refresh_token="r")
            assert app.handle(lifecycle_body("ONAPPINSTALL", identity, auth, {"VERSION": "1"})).status == 200
            accepted = app.handle(session_start_body(identity, "docs-2026", [5, 6], access_token=None))
            assert (accepted.status, accepted.body["sessions"]) == (200, 2)
            app.join()
            sent = [dict(parse_qsl(str(call.request.body))) for call in mocked.calls]
        assert [(p["DIALOG_ID"], p["auth"]) for p in sent] == [
            ("chat5", "install-token"),
            ("chat6", "install-token"),
        ]
    finally:
        app.close()


def test_python_parser_agrees_with_the_wire_codec() -> None:
    wire = pytest.importorskip("mock_portal.wire")
    from examples.python_handler._form import parse_form

    identity = PortalIdentity("https://x.bitrix24.com/rest/", "https://oauth.bitrix.info/rest/")
    for shape in SHAPES:
        body = session_start_body(
            identity, shape, [1, 2], access_token="t", line_name="Линия ~ +&=", extra=True
        )
        assert _listless(parse_form(body)) == _listless(wire.decode(body)), shape
