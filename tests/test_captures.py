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
