"""The real-world corpus: 36 event bodies from live portals (facts §6), vendored in fixtures/captures/.

Each ``NAME.wire.txt`` is the ``payload`` of ``NAME.json`` as PHP ``http_build_query`` wrote it, plus one
trailing newline added by the file. The codec must give exactly those bytes and read them back exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mock_portal._resources import data_dir
from mock_portal.wire import decode, encode
from tests.support.php import PhpWorker, ordered

CAPTURES = data_dir("fixtures") / "captures"
NAMES = sorted(path.name.removesuffix(".json") for path in CAPTURES.glob("*.json"))


def _payload(name: str) -> Any:
    return json.loads((CAPTURES / f"{name}.json").read_text(encoding="utf-8"))["payload"]


def _wire(name: str) -> bytes:
    raw = (CAPTURES / f"{name}.wire.txt").read_bytes()
    assert raw.endswith(b"\n")
    assert not raw.endswith(b"\n\n")
    return raw[:-1]  # the file's newline is not part of the body


def test_the_corpus_is_complete() -> None:
    assert len(NAMES) == 36
    assert sorted(path.name for path in CAPTURES.iterdir()) == sorted(
        [f"{name}.json" for name in NAMES] + [f"{name}.wire.txt" for name in NAMES]
    )


@pytest.mark.parametrize("name", NAMES)
def test_capture_decodes_to_its_payload(name: str) -> None:
    assert ordered(decode(_wire(name))) == ordered(_payload(name))


@pytest.mark.parametrize("name", NAMES)
def test_capture_payload_encodes_to_its_wire_bytes(name: str) -> None:
    assert encode(_payload(name)).encode("ascii") == _wire(name)


@pytest.mark.parametrize("name", NAMES)
def test_capture_decodes_the_same_a_second_time(name: str) -> None:
    # later bodies of a known shape take the memoised plan; the result must not change
    first = decode(_wire(name))
    for _ in range(3):
        assert ordered(decode(_wire(name))) == ordered(first)


def test_vendored_captures_match_shared(b24_shared_dir: Path) -> None:
    shared = b24_shared_dir / "captures"
    ours = {path.name: path.read_bytes() for path in CAPTURES.iterdir()}
    theirs = {path.name: path.read_bytes() for path in shared.iterdir()}
    assert sorted(ours) == sorted(theirs)
    changed = [name for name in ours if ours[name] != theirs[name]]
    assert changed == []


@pytest.mark.php
def test_php_agrees_with_every_capture(php_binary: str) -> None:
    worker = PhpWorker(php_binary)
    try:
        for name in NAMES:
            assert worker.encode(_payload(name)).encode("ascii") == _wire(name), name
            assert worker.decode(_wire(name)).value() == ordered(_payload(name)), name
    finally:
        worker.close()


# ------------------------------------------------------------------------------------ against the schemas

FAMILIES = {"CRM": 14, "chat-bot": 9, "connector": 9, "telephony": 2, "app": 2}


def _family(event: str) -> str:
    if event.startswith("ONCRM"):
        return "CRM"
    if event.startswith("ONIMBOT"):
        return "chat-bot"
    if event.startswith("ONIMCONNECTOR"):
        return "connector"
    if event.startswith(("ONEXTERNALCALL", "ONVOXIMPLANT")):
        return "telephony"
    return "app" if event.startswith("ONAPP") else "other"


def _redacted_paths(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _redacted_paths(item, (*path, key))]
    return [path] if value == "redacted" else []


def _with_valid_values(payload: dict[str, Any], event: str) -> dict[str, Any]:
    """A capture whose author blanked its values ('redacted'): its keys are the evidence, so each blanked
    value is replaced by a built event's value at the same path, and only the keys are judged."""
    from mock_portal.events import build_event

    auth = "user" if "access_token" in payload.get("auth", {}) else "system"
    built = build_event(event, auth=auth, seed=0).wire_payload
    copy = json.loads(json.dumps(payload))
    for path in _redacted_paths(copy):
        source: Any = built
        for key in path:
            source = source[key]  # a key the builder lacks fails the test here: not a documented key
        target = copy
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = source
    return copy


def test_the_corpus_covers_the_families() -> None:
    families = [_family(_payload(name)["event"]) for name in NAMES]
    assert {family: families.count(family) for family in FAMILIES} == FAMILIES


@pytest.mark.parametrize("name", NAMES)
def test_every_capture_validates_against_its_event(name: str) -> None:
    from mock_portal import schemas

    payload = _payload(name)
    event = payload["event"]
    if _redacted_paths(payload):
        payload = _with_valid_values(payload, event)
    report = schemas.validate(payload, event)
    assert report.ok, report.format()
    assert report.matched_shape is not None


@pytest.mark.parametrize("name", NAMES)
def test_every_capture_validates_strictly_without_what_its_recorder_added(name: str) -> None:
    """Keys starting with '~' are the raw copies a Bitrix framework app's print_r($_REQUEST) dump repeats
    (each of a real key, or of a key the notes say the app added): not the portal's."""
    from mock_portal import schemas

    capture = json.loads((CAPTURES / f"{name}.json").read_text(encoding="utf-8"))
    payload = capture["payload"]
    event = payload["event"]
    recorded = [key for key in payload if key.startswith("~")]
    for key in recorded:
        assert key[1:] in payload or key[1:] in capture["notes"], key
    kept = {key: value for key, value in payload.items() if not key.startswith("~")}
    if _redacted_paths(kept):
        kept = _with_valid_values(kept, event)
    report = schemas.validate(kept, event, strict=True)
    assert report.ok, report.format()
