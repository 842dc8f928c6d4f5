"""The fast validate path: jsonschema-rs against the jsonschema reference, verdict for verdict.

Every fixture and a few thousand generated payloads (valid ones from the event builders, invalid ones made by
seeded mutations aimed at the places where the two engines could differ: regex anchors and whitespace
classes, JSON integers against digit strings, missing and extra keys, objects where lists belong) go through
both backends against every OnSessionStart schema; verdicts and error locations must be identical. The
public :func:`mock_portal.validate` (verdicts from jsonschema-rs) must give the same reports as the
reference.

``B24_DIFFERENTIAL_PAYLOADS=10000`` raises the number of generated payloads (1,000 by default, so the test
stays well inside its timeout on a loaded machine); the generation is seeded, so a run is reproducible.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_portal import schemas
from mock_portal.errors import UnknownNameError, WireError
from mock_portal.events import AUTH_MODES, SHAPES, EventStream, build_event
from mock_portal.fastpath import EventValidator, available_backends, python_pattern_for_rust
from mock_portal.wire import decode

pytest.importorskip("jsonschema_rs")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEMAS = [(shape, strict) for shape in ("any", *SHAPES) for strict in (False, True)]
GENERATED = int(os.environ.get("B24_DIFFERENTIAL_PAYLOADS", "1000"))
# the reference runs about 5 ms per payload on a quiet core; a larger run set by hand gets no timeout
_NO_TIMEOUT_ABOVE = 3000

# values that probe the two regex engines and the type rules: trailing newlines ($), Python-only and
# Rust-only whitespace (\s), non-ASCII digits, JSON numbers where strings are expected and the reverse
_PROBES: list[Any] = [
    "",
    "0",
    "7",
    "-3",
    "12\n",
    "12\n\n",
    "\n12",
    "1.5",
    "01",
    "12a",
    "١٢",
    "Y",
    "N",
    "Y\n",
    "y",
    "L",
    "ONSESSIONSTART",
    "ONSESSIONSTART\n",
    "onsessionstart",
    "https://example.bitrix24.ru/rest/",
    "https://example.bitrix24.ru/rest/\n",
    "https://a\x1cb/",
    "https://a\x85b/",
    "https://a\ufeffb/",
    "https://a\u2003b/",
    "https://a b/",
    "http://x",
    "ftp://x",
    "x" * 40,
    "0123456789abcdef0123456789abcdef",
    0,
    5,
    -1,
    2**70,
    1.0,
    1.5,
    True,
    False,
    None,
    [],
    {},
    ["1"],
    {"id": "1"},
]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _mutate(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three seeded edits of ``payload`` (a deep copy is edited)."""
    out = copy.deepcopy(payload)
    for _ in range(rng.randint(1, 3)):
        places = [p for p, _ in _leaves(out) if p]
        if not places:
            break
        path = rng.choice(places)
        parent: Any = out
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = rng.random()
        if action < 0.55:
            parent[last] = copy.deepcopy(rng.choice(_PROBES))
        elif action < 0.75 and isinstance(parent, dict):
            del parent[last]
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["extra", "eventId", "ID", "access_token", str(rng.randint(0, 3))])] = (
                rng.choice(_PROBES[:12])
            )
        else:
            value = parent[last]
            if isinstance(value, list):
                parent[last] = {str(i): item for i, item in enumerate(value)}
            elif isinstance(value, dict):
                parent[last] = list(value.values())
            else:
                parent[last] = [value]
    return out


def _generated(count: int) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(20260815)
    streams = [
        EventStream(shape=shape, auth=auth, seed=f"{shape}-{auth}").events(count)
        for shape in SHAPES
        for auth in AUTH_MODES
    ]
    for index in range(count):
        event = next(streams[index % len(streams)])
        base = event.wire_payload if index % 3 else event.payload  # wire strings, or doc-style JSON
        if index % 4 == 0:
            yield f"valid-{index}", base
        else:
            yield f"mutated-{index}", _mutate(base, rng)


def _fixture_payloads() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for path in sorted((FIXTURES / "valid").glob("*")) + sorted((FIXTURES / "invalid").glob("*")):
        if path.name.endswith(".wire.txt"):
            try:
                out.append((path.name, decode(path.read_bytes())))
            except WireError:
                continue
        elif path.suffix == ".json" and not path.name.endswith(".expect.json"):
            out.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
    return out


def _pair(shape: str, strict: bool) -> tuple[EventValidator, EventValidator]:
    fast = EventValidator(shape=shape, strict=strict, backend="jsonschema-rs")
    reference = EventValidator(shape=shape, strict=strict, backend="jsonschema")
    assert fast.backend == "jsonschema-rs", "the schemas' patterns should all port to Rust"
    return fast, reference


@pytest.mark.parametrize(
    ("shape", "strict"), SCHEMAS, ids=[f"{s}-{'strict' if t else 'tolerant'}" for s, t in SCHEMAS]
)
@pytest.mark.slow
def test_fixtures_same_verdicts_and_error_locations(shape: str, strict: bool) -> None:
    fast, reference = _pair(shape, strict)
    payloads = _fixture_payloads()
    assert len(payloads) > 20
    verdicts = set()
    for name, payload in payloads:
        verdict = reference.is_valid(payload)
        verdicts.add(verdict)
        assert fast.is_valid(payload) == verdict, name
        assert fast.error_locations(payload) == reference.error_locations(payload), name
        assert (reference.error_locations(payload) == []) == verdict, name
    assert verdicts == {True, False}


@pytest.mark.timeout(0 if GENERATED > _NO_TIMEOUT_ABOVE else 120)
@pytest.mark.slow
def test_generated_payloads_agree() -> None:
    validators = [_pair(shape, strict) for shape, strict in SCHEMAS]
    verdicts = {True: 0, False: 0}
    for index, (name, payload) in enumerate(_generated(GENERATED)):
        fast, reference = validators[index % len(validators)]
        verdict = reference.is_valid(payload)
        verdicts[verdict] += 1
        assert fast.is_valid(payload) == verdict, (name, reference, payload)
        if not verdict or index % 7 == 0:
            assert fast.error_locations(payload) == reference.error_locations(payload), (
                name,
                reference,
                payload,
            )
    # both kinds in bulk, or the comparison proves little
    assert verdicts[True] > GENERATED // 8
    assert verdicts[False] > GENERATED // 3


def test_trailing_newline_and_whitespace_follow_python() -> None:
    # the reference applies patterns with re.search, where "$" also matches before a final newline
    fast, reference = _pair("docs-2026", False)
    payload = build_event(shape="docs-2026", auth="user", seed=3).wire_payload
    payload["ts"] += "\n"
    assert reference.is_valid(payload)
    assert fast.is_valid(payload)
    payload["auth"]["client_endpoint"] = "https://a\x1cb/rest/"  # Python's \s has U+001C, Rust's has not
    assert not reference.is_valid(payload)
    assert not fast.is_valid(payload)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("^a$", "^a(?=\\n?\\z)"),
        ("[$]", "[$]"),
        ("\\$", "\\$"),
        ("[]a]", "[\\]a]"),
    ],
)
def test_pattern_rewrite(pattern: str, expected: str) -> None:
    assert python_pattern_for_rust(pattern) == expected


@pytest.mark.parametrize("pattern", ["\\d+", "\\w", "[\\S]", "[abc", "a\\b"])
def test_unportable_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="cannot be ported"):
        python_pattern_for_rust(pattern)


def test_body_path_decodes_like_php_and_raises_wire_errors() -> None:
    validator = EventValidator()
    body = build_event(seed=11).body()
    assert validator.is_valid_body(body)
    assert validator.is_valid_body(body.encode())
    assert not validator.is_valid_body(body.replace("event=ONSESSIONSTART", "event=nope"))
    with pytest.raises(WireError, match="utf-8"):
        validator.is_valid_body(body.encode() + b"&x=%FF")


@pytest.mark.slow
def test_reports_match_the_reference() -> None:
    validator = EventValidator()
    reference = EventValidator(backend="jsonschema")
    for name, payload in _fixture_payloads():
        fast = validator.report(payload)
        slow = reference.report(payload)
        assert fast == slow, name
        assert fast == schemas.validate(payload), name


@pytest.mark.parametrize("strict", [False, True], ids=["tolerant", "strict"])
@pytest.mark.slow
def test_public_validate_gives_the_reference_reports_on_fixtures(strict: bool) -> None:
    # mock_portal.validate takes its verdict from jsonschema-rs: same verdict, same matched shape, same issues
    assert schemas.fast_backend() == "jsonschema-rs"
    oks = set()
    for name, payload in _fixture_payloads():
        report = schemas.validate(payload, strict=strict)
        oks.add(report.ok)
        assert report == schemas._validate_reference(payload, strict=strict), name
        assert schemas.is_valid(payload, strict=strict) == report.ok, name
    assert oks == {True, False}


@pytest.mark.slow
def test_public_validate_agrees_with_the_reference_on_generated_payloads() -> None:
    # verdicts and matched shapes on every schema; full reports (the slow explanation) on a sample
    count = min(GENERATED, 600)
    references = {(s, t): EventValidator(shape=s, strict=t, backend="jsonschema") for s, t in SCHEMAS}
    for index, (name, payload) in enumerate(_generated(count)):
        shape, strict = SCHEMAS[index % len(SCHEMAS)]
        fast = schemas.is_valid(payload, shape=shape, strict=strict)
        assert fast == references[shape, strict].is_valid(payload), (name, shape, strict, payload)
        if fast or index % 25 == 0:
            slow = schemas._validate_reference(payload, shape=shape, strict=strict)
            assert schemas.validate(payload, shape=shape, strict=strict) == slow, (name, shape, strict)


def test_depth_limit_is_the_same_on_both_sides() -> None:
    payload = build_event(shape="docs-2026", seed=5).wire_payload
    deep: Any = "x"
    for _ in range(schemas.MAX_DEPTH + 1):
        deep = {"k": deep}
    payload["extra"] = deep  # tolerant schemas allow unknown keys: only the depth limit can refuse it
    assert not schemas.is_valid(payload)
    fast, slow = schemas.validate(payload), schemas._validate_reference(payload)
    assert fast == slow
    assert [i.keyword for i in fast.errors] == ["maxDepth"]
    payload["extra"] = deep["k"]
    assert schemas.is_valid(payload)
    assert schemas.validate(payload).ok


def test_backend_names() -> None:
    assert available_backends() == ("jsonschema", "jsonschema-rs")
    assert EventValidator().backend == "jsonschema-rs"
    with pytest.raises(UnknownNameError, match="did you mean 'jsonschema-rs'"):
        EventValidator(backend="jsonschema_rs")
