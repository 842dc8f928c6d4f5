"""The sibling events: schemas, builders, fixtures, real captures and ``mock-portal emit`` (facts §4)."""

from __future__ import annotations

import http.server
import io
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mock_portal import schemas, wire
from mock_portal._resources import data_dir
from mock_portal.cli import run
from mock_portal.events import EventStream, build_event, event_names, event_spec
from mock_portal.siblings import CONNECTOR_EVENTS, OPENLINES_EVENTS, SIBLING_EVENTS

FIXTURES = data_dir("fixtures") / "siblings"
WITH_SCHEMA = [e for e in SIBLING_EVENTS if e != "ONAPPTEST"]
"""ONAPPTEST's page has no parameter table: it stays checked against the envelope only."""
CASES = [(e, a) for e in SIBLING_EVENTS for a in event_spec(e).auth_modes]


def _files(folder: str, suffix: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / folder).glob(f"*{suffix}") if not p.name.endswith(".expect.json"))


def _event_of(path: Path) -> str:
    return path.name.split("-", 1)[0].upper()


# ------------------------------------------------------------------------------------------- catalogue


def test_every_sibling_has_a_builder_and_a_schema() -> None:
    from mock_portal import eventtable

    hand = {name for name in event_names() if eventtable.entry(name).builder == "hand"}
    assert set(SIBLING_EVENTS) | {"ONSESSIONSTART", "ONAPPINSTALL", "ONAPPUNINSTALL"} == hand
    assert set(OPENLINES_EVENTS) | set(CONNECTOR_EVENTS) < set(event_names())
    # the families the module names are the event table's
    assert {e.name for e in eventtable.entries() if e.kind == "openlines"} == set(OPENLINES_EVENTS)
    assert {e.name for e in eventtable.entries() if e.receivers == "connector-owner"} == set(CONNECTOR_EVENTS)
    for event in WITH_SCHEMA:
        assert schemas.known_shapes(event) == ["any", "docs"], event
        assert schemas.schema_uri(event, "docs").endswith(f"/{event.lower()}/docs.json")
        assert schemas.schema_uri(event, "docs", strict=True).endswith(f"/{event.lower()}/docs.strict.json")
    assert schemas.known_shapes("ONAPPTEST") == ["any"]


@pytest.mark.parametrize("event", WITH_SCHEMA)
def test_schema_names_the_event_and_cites_its_page(event: str) -> None:
    schema = json.loads((data_dir("schemas") / event.lower() / "docs.json").read_text(encoding="utf-8"))
    assert schema["properties"]["event"]["const"] == event
    assert schema["$ref"] == "../common/envelope.json"
    assert schema["x-b24-doc"]["page"].endswith(".md")
    assert "eventId" not in schema["properties"]  # a docs error (facts §1)
    assert schema["x-b24-shape"] == "docs"


# ------------------------------------------------------------------------------------------- builders


@pytest.mark.parametrize(("event", "auth"), CASES, ids=[f"{e.lower()}-{a}" for e, a in CASES])
def test_built_events_validate_tolerant_and_strict_in_every_view(event: str, auth: str) -> None:
    for seed in range(60):
        built = build_event(event, auth=auth, seed=seed)
        assert built.body("form") == wire.encode(built.payload)
        for view in (built.payload, built.wire_payload, wire.decode(built.body("form"))):
            for strict in (False, True):
                report = schemas.validate(view, event, strict=strict)
                assert report.ok, report.format()


@pytest.mark.parametrize("event", SIBLING_EVENTS)
def test_stream_bodies_equal_the_events_and_repeat_per_seed(event: str) -> None:
    stream = EventStream(event, seed=5, portals=3)
    bodies = list(stream.bodies(40))
    assert bodies == [e.body("form") for e in stream.events(40)]
    assert bodies == list(EventStream(event, seed=5, portals=3).bodies(40))
    assert len(set(bodies)) > 30  # a few events of a portal can coincide: same second, same values
    assert build_event(event, seed="x").body() == build_event(event, seed="x").body()


def test_context_values_reach_the_body_escaped() -> None:
    context = {
        "message_id": 77,
        "message_text": "a & b = c, 100% + ~",
        "external_chat_id": "chat/1 2",
        "line_id": 9,
        "connector_id": "my.connector",
    }
    built = build_event("ONIMCONNECTORMESSAGEADD", seed=1, context=context)
    decoded = wire.decode(built.body("form"))
    item = decoded["data"]["MESSAGES"][0]
    assert item["im"]["message_id"] == "77"
    assert item["message"]["text"] == "a & b = c, 100% + ~"
    assert item["chat"]["id"] == "chat/1 2"
    assert decoded["data"]["LINE"] == "9"
    assert decoded["data"]["CONNECTOR"] == "my.connector"
    assert "a+%26+b+%3D+c%2C+100%25+%2B+%7E" in built.body("form")
    assert built.body("form") == wire.encode(built.payload)


def test_onsessionfinish_is_a_closed_docs_2026_session() -> None:
    data = build_event("ONSESSIONFINISH", seed=3).payload["data"]["DATA"][0]
    assert data["session"]["closed"] == "Y"
    assert list(data) == ["connector", "session", "chat", "user"]
    assert schemas.validate(build_event("ONSESSIONFINISH", seed=3).payload, "ONSESSIONFINISH").ok


def test_line_delete_data_is_the_bare_line_id_and_lists_vanish() -> None:
    built = build_event("ONIMCONNECTORLINEDELETE", seed=2, context={"line_id": 42})
    assert "&data=42&" in built.body("form")
    add = build_event("ONOPENLINEMESSAGEADD", seed=2)
    assert add.payload["data"]["DATA"][0]["message"]["files"] == []
    assert "files" not in add.wire_payload["data"]["DATA"][0]["message"]  # empty arrays vanish (facts §1)
    assert "%5Bref%5D" not in add.body("form")


def test_app_events_auth_modes_follow_the_facts() -> None:
    install = build_event("ONAPPINSTALL", seed=1).payload["auth"]
    assert "refresh_token" in install
    uninstall = build_event("ONAPPUNINSTALL", seed=1).payload["auth"]
    assert "access_token" not in uninstall
    assert schemas.validate(build_event("ONAPPUPDATE", seed=1).payload, "ONAPPUPDATE").ok
    assert build_event("ONAPPTEST", seed=1).payload["data"] == {"QUERY": {"any": "data"}}


# ------------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("path", _files("valid", ""), ids=lambda p: p.name)
def test_valid_sibling_fixture_validates_tolerant_and_strict(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    payload = wire.decode(text) if path.name.endswith(".wire.txt") else json.loads(text)
    event = _event_of(path)
    assert schemas.validate(payload, event).ok, schemas.validate(payload, event).format()
    assert schemas.validate(payload, event, "docs" if event != "ONAPPTEST" else "any", strict=True).ok


@pytest.mark.parametrize("path", _files("valid", ".wire.txt"), ids=lambda p: p.name)
def test_sibling_wire_fixture_is_the_codec_output_of_its_twin(path: Path) -> None:
    twin = json.loads(
        path.with_name(path.name.removesuffix(".wire.txt") + ".json").read_text(encoding="utf-8")
    )
    assert wire.encode(twin) == path.read_text(encoding="utf-8")
    assert wire.decode(path.read_text(encoding="utf-8")) == twin


@pytest.mark.php
@pytest.mark.parametrize("path", _files("valid", ".wire.txt"), ids=lambda p: p.name)
def test_sibling_wire_fixture_matches_real_php(path: Path, php_binary: str) -> None:
    twin = path.with_name(path.name.removesuffix(".wire.txt") + ".json").read_text(encoding="utf-8")
    code = 'echo http_build_query(json_decode(file_get_contents("php://stdin"), true));'
    built = subprocess.run([php_binary, "-r", code], input=twin, capture_output=True, text=True, check=True)
    assert built.stdout == path.read_text(encoding="utf-8")


def test_every_sibling_has_fixtures_in_each_auth_mode() -> None:
    names = {p.name for p in _files("valid", ".wire.txt")}
    for event, auth in CASES:
        assert f"{event.lower()}-docs-{auth}.wire.txt" in names
    examples = {_event_of(p) for p in _files("valid", "-example-en.json")}
    assert examples == set(WITH_SCHEMA)


@pytest.mark.parametrize("path", _files("invalid", ".json"), ids=lambda p: p.name)
def test_invalid_sibling_fixture_fails_with_exactly_its_label(path: Path) -> None:
    label = json.loads(path.with_name(path.name.removesuffix(".json") + ".expect.json").read_text("utf-8"))
    payload = json.loads(path.read_text(encoding="utf-8"))
    report = schemas.validate(payload, label["event"], label["shape"], strict=label["strict"])
    got = sorted((i.path, i.keyword, i.message) for i in report.errors)
    assert got == sorted((e["path"], e["keyword"], e["message"]) for e in label["errors"]), report.format()
    assert all(i.doc is not None for i in report.errors)
    for secret in label.get("absent", []):
        assert secret not in report.format() + json.dumps(report.to_dict())


# ------------------------------------------------------------------------------------------- real captures


def _captures(root: Path) -> Iterator[tuple[str, Any, str]]:
    for path in sorted(root.glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))["payload"]
        if payload.get("event") in WITH_SCHEMA:
            yield path.stem, payload, (path.with_name(path.stem + ".wire.txt")).read_text(encoding="utf-8")


VENDORED = (
    list(_captures(data_dir("fixtures") / "captures")) if (data_dir("fixtures") / "captures").is_dir() else []
)


@pytest.mark.parametrize(("name", "payload", "body"), VENDORED, ids=[c[0] for c in VENDORED])
def test_real_captures_of_sibling_events_validate(name: str, payload: Any, body: str) -> None:
    event = payload["event"]
    assert schemas.validate(payload, event).ok, schemas.validate(payload, event).format()
    assert schemas.validate(wire.decode(body.strip()), event).ok


def test_the_captures_of_events_with_a_schema_are_these(b24_shared_dir: Path) -> None:
    found = list(_captures(b24_shared_dir / "captures"))
    events = sorted({payload["event"] for _, payload, _ in found})
    assert events == ["ONAPPINSTALL", "ONAPPUNINSTALL", "ONIMCONNECTORMESSAGEADD"]
    assert len(found) == 11
    for name, payload, body in found:
        assert schemas.validate(payload, payload["event"]).ok, name
        assert schemas.validate(wire.decode(body.strip()), payload["event"]).ok, name


@pytest.mark.parametrize("edition", ["b24restdocs", "b24-rest-docs"])
def test_doc_examples_of_both_editions_validate_as_json_and_on_the_wire(
    b24_shared_dir: Path, edition: str
) -> None:
    catalogue = json.loads((data_dir("schemas") / "index.json").read_text(encoding="utf-8"))[
        "x-b24-catalogue"
    ]
    for event in WITH_SCHEMA:
        page = b24_shared_dir / "docs" / edition / catalogue[event]["doc"]["page"]
        block = re.search(r"```json\n(.*?)\n```", page.read_text(encoding="utf-8"), re.S)
        assert block is not None, page
        example = json.loads(block.group(1))
        assert schemas.validate(example, event).ok, (event, schemas.validate(example, event).format())
        assert schemas.validate(wire.decode(wire.encode(example)), event).ok, event


# ------------------------------------------------------------------------------------------- emit


def test_emit_prints_every_sibling() -> None:
    for event in SIBLING_EVENTS:
        out, err = io.StringIO(), io.StringIO()
        assert run(["emit", event.lower(), "--print", "--seed", "4", "--count", "2"], out, err) == 0, (
            err.getvalue()
        )
        bodies = out.getvalue().splitlines()
        assert len(bodies) == 2
        for body in bodies:
            assert schemas.validate(wire.decode(body), event).ok


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append((self.headers.get("Content-Type", ""), self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_emit_posts_sibling_events_over_loopback() -> None:
    _Recorder.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/handler"
        for event in ("ONIMCONNECTORMESSAGEADD", "ONIMCONNECTORLINEDELETE", "ONAPPUNINSTALL"):
            out, err = io.StringIO(), io.StringIO()
            assert run(["emit", event, "--to", url, "--count", "3", "--seed", "1"], out, err) == 0, (
                err.getvalue()
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert len(_Recorder.received) == 9
    for content_type, body in _Recorder.received:
        assert content_type.startswith("application/x-www-form-urlencoded")
        payload = wire.decode(body)
        assert schemas.validate(payload, payload["event"]).ok


# ------------------------------------------------------------------------------------------- portal triggers


class _Handlers:
    """Two apps' handlers on one loopback HTTP server: what each received, decoded, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    received.append((self.path.strip("/"), wire.decode(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self, app: str) -> list[str]:
        return [payload["event"] for path, payload in self.received if path == app]

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        taken = list(self.received)
        self.received.clear()
        return taken

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def two_apps() -> Iterator[tuple[Any, _Handlers, Any, Any]]:
    from mock_portal.portal import Portal

    handlers = _Handlers()
    portal = Portal(seed=11)
    every = [*SIBLING_EVENTS, "ONSESSIONSTART"]
    owner, _, _ = portal.install_app(
        handlers={e: f"{handlers.base}/owner" for e in every if e != "ONAPPINSTALL"}
    )
    other, _, _ = portal.install_app(
        handlers={e: f"{handlers.base}/other" for e in every if e != "ONAPPINSTALL"}
    )
    portal.register_connector(owner.client_id, "owner.connector", "Owner's channel")
    portal.activate_connector("owner.connector", 1, True)
    try:
        yield portal, handlers, owner, other
    finally:
        portal.close()
        handlers.close()


def _check(received: list[tuple[str, dict[str, Any]]], apps: dict[str, Any]) -> None:
    """Every body validates (strict) against its schema and carries its app's application_token."""
    for path, payload in received:
        event = payload["event"]
        report = schemas.validate(payload, event, strict=True)
        assert report.ok, report.format()
        assert payload["auth"]["application_token"] == apps[path].application_token


def test_portal_fires_each_sibling_at_its_moment_and_filters_connector_events(two_apps: Any) -> None:
    portal, handlers, owner, other = two_apps
    apps = {"owner": owner, "other": other}
    chat, session, _, started = portal.receive_external_message(
        owner.client_id,
        "owner.connector",
        1,
        external_user={"id": "client-7", "name": "Client"},
        external_message={"id": "m1", "text": "hello"},
        external_chat={"id": "ext-chat-1"},
    )
    assert started is not None
    # OnSessionStart reaches every app that bound it; the dialog start only the connector's owner (facts §3)
    assert sorted(handlers.events("owner")) == ["ONIMCONNECTORDIALOGSTART", "ONSESSIONSTART"]
    assert handlers.events("other") == ["ONSESSIONSTART"]
    dialog = next(p for a, p in handlers.received if p["event"] == "ONIMCONNECTORDIALOGSTART")
    assert dialog["data"]["DATA"][0]["chat"]["id"] == "ext-chat-1"
    assert dialog["data"]["DATA"][0]["session"]["id"] == str(session.id)
    _check(handlers.take(), apps)

    message, attempts = portal.send_operator_message(chat.id, "Здравствуйте & welcome", author_id=5)
    assert [a.outcome for a in attempts] == ["ok"] * 3
    assert sorted(handlers.events("owner")) == ["ONIMCONNECTORMESSAGEADD", "ONOPENLINEMESSAGEADD"]
    assert handlers.events("other") == ["ONOPENLINEMESSAGEADD"]
    outgoing = next(p for a, p in handlers.received if p["event"] == "ONIMCONNECTORMESSAGEADD")
    item = outgoing["data"]["MESSAGES"][0]
    assert item["message"]["text"] == "Здравствуйте & welcome"
    assert item["im"] == {"chat_id": str(chat.id), "message_id": str(message.id)}
    assert item["chat"]["id"] == "ext-chat-1"
    assert outgoing["data"]["CONNECTOR"] == "owner.connector"
    _check(handlers.take(), apps)

    portal.change_message(message.id, "edited")
    portal.change_message(message.id, delete=True)
    assert handlers.events("owner") == [
        "ONOPENLINEMESSAGEUPDATE", "ONIMCONNECTORMESSAGEUPDATE", "ONOPENLINEMESSAGEDELETE",
        "ONIMCONNECTORMESSAGEDELETE",
    ]  # fmt: skip
    assert handlers.events("other") == ["ONOPENLINEMESSAGEUPDATE", "ONOPENLINEMESSAGEDELETE"]
    _check(handlers.take(), apps)

    portal.finish_session(session.id)
    assert handlers.events("owner") == ["ONSESSIONFINISH", "ONIMCONNECTORDIALOGFINISH"]
    assert handlers.events("other") == ["ONSESSIONFINISH"]
    finished = handlers.received[0][1]
    assert finished["data"]["DATA"][0]["session"]["closed"] == "Y"
    _check(handlers.take(), apps)
    assert portal.finish_session(session.id) == []  # a closed session fires nothing

    portal.deactivate_connector("owner.connector", 1)
    assert portal.deactivate_connector("owner.connector", 1) == []  # already off
    portal.activate_connector("owner.connector", 1, True)
    portal.delete_line(1)
    assert handlers.events("owner") == ["ONIMCONNECTORSTATUSDELETE", "ONIMCONNECTORLINEDELETE"]
    assert handlers.events("other") == []
    line_delete = handlers.received[1][1]
    assert line_delete["data"] == "1"
    _check(handlers.take(), apps)


def test_connector_events_of_a_builtin_channel_reach_nobody(two_apps: Any) -> None:
    portal, handlers, _, _ = two_apps
    started = portal.start_session(connector_id="livechat", line_id=1)
    portal.send_operator_message(started.chat.id, "hi")
    portal.finish_session(started.session.id)
    assert not [
        e for e in handlers.events("owner") + handlers.events("other") if e.startswith("ONIMCONNECTOR")
    ]
    assert handlers.events("other") == ["ONSESSIONSTART", "ONOPENLINEMESSAGEADD", "ONSESSIONFINISH"]


def test_app_update_replaces_the_token_and_test_event_carries_the_query(two_apps: Any) -> None:
    portal, handlers, owner, other = two_apps
    old_token = owner.application_token
    app, attempts = portal.update_app(owner.client_id, new_application_token=True)
    assert [a.event for a in attempts] == ["ONAPPUPDATE"]
    ((path, payload),) = handlers.take()
    assert path == "owner"
    assert payload["auth"]["application_token"] == app.application_token != old_token
    assert payload["data"]["VERSION"] == "2"
    assert payload["data"]["PREVIOUS_VERSION"] == "1"
    assert schemas.validate(payload, "ONAPPUPDATE", strict=True).ok
    portal.fire_test(other.client_id, {"any": "data"})
    ((path, payload),) = handlers.take()
    assert (path, payload["event"], payload["data"]["QUERY"]) == ("other", "ONAPPTEST", {"any": "data"})
    portal.uninstall_app(other.client_id, clean=True)
    ((path, payload),) = handlers.take()
    assert payload["event"] == "ONAPPUNINSTALL"
    assert schemas.validate(payload, "ONAPPUNINSTALL", strict=True).ok


def test_rest_calls_fire_the_events_of_their_moment(two_apps: Any) -> None:
    from mock_portal import rest

    portal, handlers, owner, _ = two_apps
    chat, _, _, _ = portal.receive_external_message(
        owner.client_id,
        "owner.connector",
        1,
        external_user={"id": "u"},
        external_message={"id": "m", "text": "hi"},
        external_chat={"id": "c"},
    )
    handlers.take()
    token = portal.issue_token(owner.client_id).access_token
    reply = rest.call(
        portal, "im.message.add", {"DIALOG_ID": chat.dialog_id, "MESSAGE": "answer"}, token=token
    )
    assert reply.ok, reply.body
    # raised inside the REST call: queued, delivered in order by the portal's worker after it returned
    assert len(portal.wait_for_deliveries("ONIMCONNECTORMESSAGEADD")) == 1
    assert sorted(handlers.events("owner")) == ["ONIMCONNECTORMESSAGEADD", "ONOPENLINEMESSAGEADD"]
    handlers.take()
    off = rest.call(
        portal, "imconnector.activate", {"CONNECTOR": "owner.connector", "LINE": 1, "ACTIVE": 0}, token=token
    )
    assert off.ok, off.body
    assert len(portal.wait_for_deliveries("ONIMCONNECTORSTATUSDELETE")) == 1
    assert handlers.events("owner") == ["ONIMCONNECTORSTATUSDELETE"]
    assert handlers.events("other") == []
