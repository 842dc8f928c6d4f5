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
    assert set(SIBLING_EVENTS) | {"ONSESSIONSTART"} == set(event_names())
    assert set(OPENLINES_EVENTS) | set(CONNECTOR_EVENTS) < set(event_names())
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
