"""Data-driven checks over fixtures/: valid bodies validate, invalid ones fail with exactly their label."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from mock_portal import schemas, wire
from tests.support.schemas import SHAPES, Fixture, fixtures

VALID = fixtures("valid")
INVALID = fixtures("invalid")


def _payload(fixture: Fixture) -> Any:
    return wire.decode(fixture.text()) if fixture.kind == "wire" else json.loads(fixture.text())


def test_every_shape_and_auth_mode_has_a_wire_and_a_json_fixture() -> None:
    have = {(f.shape, f.auth, f.kind) for f in VALID}
    for shape in SHAPES:
        for auth in ("user", "system"):
            assert (shape, auth, "wire") in have, (shape, auth)
            assert (shape, auth, "json") in have, (shape, auth)
    examples = {f.shape for f in VALID if f.auth is None}
    assert examples == {"docs-2024", "docs-2026"}  # the two doc pages that show an example


@pytest.mark.parametrize("fixture", VALID, ids=lambda f: f.test_id)
def test_valid_fixture_validates_tolerant_and_strict(fixture: Fixture) -> None:
    payload = _payload(fixture)
    report = schemas.validate(payload, fixture.event)
    assert report.ok, report.format()
    assert report.matched_shape == fixture.shape
    assert schemas.validate(payload, fixture.event, fixture.shape).ok
    strict = schemas.validate(payload, fixture.event, fixture.shape, strict=True)
    assert strict.ok, strict.format()


@pytest.mark.parametrize("fixture", [f for f in VALID if f.kind == "json"], ids=lambda f: f.test_id)
def test_valid_fixture_still_validates_after_the_wire(fixture: Fixture) -> None:
    """Encoded as the portal would and decoded as PHP would, every scalar becomes a string: still valid."""
    payload = wire.decode(wire.encode(json.loads(fixture.text())))
    assert schemas.validate(payload, fixture.event, fixture.shape, strict=True).ok


@pytest.mark.parametrize("fixture", [f for f in VALID if f.kind == "wire"], ids=lambda f: f.test_id)
def test_wire_fixture_is_the_codec_output_of_its_json_twin(fixture: Fixture) -> None:
    twin = json.loads(fixture.path.with_name(fixture.name + ".json").read_text(encoding="utf-8"))
    assert wire.encode(twin) == fixture.text()
    assert wire.decode(fixture.text()) == twin


@pytest.mark.php
@pytest.mark.parametrize("fixture", [f for f in VALID if f.kind == "wire"], ids=lambda f: f.test_id)
def test_wire_fixture_matches_real_php(fixture: Fixture, php_binary: str) -> None:
    twin_path = fixture.path.with_name(fixture.name + ".json")
    code = 'echo http_build_query(json_decode(file_get_contents("php://stdin"), true));'
    built = subprocess.run(
        [php_binary, "-r", code], input=twin_path.read_text(encoding="utf-8"), capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout == fixture.text()


@pytest.mark.parametrize("fixture", INVALID, ids=lambda f: f.test_id)
def test_invalid_fixture_fails_with_exactly_its_label(fixture: Fixture) -> None:
    expect = fixture.expectation()
    report = schemas.validate(_payload(fixture), expect["event"], expect["shape"], strict=expect["strict"])
    assert not report.ok
    got = sorted((issue.path, issue.keyword) for issue in report.errors)
    want = sorted((label["path"], label["keyword"]) for label in expect["errors"])
    assert got == want, report.format()
    for label in expect["errors"]:
        (issue,) = [i for i in report.errors if (i.path, i.keyword) == (label["path"], label["keyword"])]
        assert label["message"] in issue.message, issue.message
        assert issue.doc is not None
        assert issue.doc.page.endswith(".md")
    if "closest" in expect:
        assert report.matched_shape == expect["closest"]
    for secret in expect.get("absent", []):
        assert secret not in json.dumps(report.to_dict()), secret
        assert secret not in report.format()


@pytest.mark.parametrize("fixture", INVALID, ids=lambda f: f.test_id)
def test_invalid_fixture_label_is_well_formed(fixture: Fixture) -> None:
    expect = fixture.expectation()
    assert set(expect) <= {"why", "event", "shape", "strict", "errors", "closest", "absent"}
    assert expect["why"]
    assert expect["errors"]
    assert expect["shape"] in ("any", *SHAPES)
