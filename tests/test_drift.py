"""``mock-portal drift`` (did the docs change under the committed schemas?) and ``validate --schema``."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from mock_portal import catalog
from mock_portal._resources import data_dir
from mock_portal.cli import run

OSS = "api-reference/imopenlines/openlines/events/on-session-start.md"
TYPE = "[`integer`](../../../data-types.md)"
RU = "b24-rest-docs"
EN = "b24restdocs"
FIXTURES = data_dir("fixtures")


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


@pytest.fixture
def docs_copy(b24_shared_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the complete docs the test may edit: hard links (fast; :func:`_edit` replaces the
    file it edits, never writes through a link), with the 2024 history beside it as shared/ has it."""
    target = tmp_path / "docs-full"
    shutil.copytree(b24_shared_dir / "docs-full", target, copy_function=_link_or_copy)
    (tmp_path / "docs").symlink_to(b24_shared_dir / "docs")
    return target


@pytest.fixture
def schemas_copy(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(data_dir("schemas"), target)
    return target


def _edit(page: Path, old: str, new: str) -> None:
    text = page.read_text(encoding="utf-8")
    assert old in text, old
    page.unlink()  # a hard link to the shared docs: write a file of its own
    page.write_text(text.replace(old, new, 1), encoding="utf-8")


def _drift(docs: Path, *extra: str) -> tuple[int, str, str]:
    """``mock-portal drift`` limited to OnSessionStart (and the shared files): the pages the tests edit."""
    return _run("drift", "--docs-root", str(docs), "--event", "ONSESSIONSTART", *extra)


# ------------------------------------------------------------------------------------------- drift


def _row(page: Path, name: str) -> str:
    """The whole table row of parameter ``name`` on ``page``, as the page writes it."""
    text = page.read_text(encoding="utf-8")
    start = text.index(f"|| **{name}")
    return text[start : text.index("||\n", start + 3) + 3]


@pytest.mark.once
def test_no_drift_against_the_shared_docs(b24_shared_dir: Path) -> None:
    """The CI step: mock-portal drift --docs-root ../shared/docs-full, over every event and the table."""
    code, out, err = _run("drift", "--docs-root", str(b24_shared_dir / "docs-full"))
    assert (code, err) == (0, "")
    assert out == "no drift: every generated schema equals derivation + overlay\n"


@pytest.mark.slow
def test_a_removed_row_is_a_field_level_difference(docs_copy: Path) -> None:
    page = docs_copy / RU / OSS
    _edit(page, _row(page, "close_term"), "")
    code, out, _ = _drift(docs_copy)
    assert code == 1
    lines = out.splitlines()
    assert any(
        line.startswith("onsessionstart/docs-2026.json:/$defs/session/properties/close_term: removed")
        for line in lines
    ), out
    assert any(
        line.startswith("onsessionstart/docs-2026.json:/$defs/session/required: changed") for line in lines
    )
    # the strict whitelist follows, mechanically
    assert any(
        line.startswith("onsessionstart/docs-2026.strict.json:") and "close_term" in line for line in lines
    )
    assert lines[-1].startswith("drift: ")
    assert "--write" in lines[-1]


@pytest.mark.slow
def test_a_changed_type_and_a_new_row_show_old_and_new(docs_copy: Path) -> None:
    page = docs_copy / RU / OSS
    _edit(
        page,
        "|| **close_term***\n[`integer`]",
        f"|| **operator_id**\n{TYPE} | Operator ||\n|| **close_term***\n[`string`]",
    )
    differences = catalog.drift(docs_copy, events=["ONSESSIONSTART"])
    by_pointer = {(d.file, d.pointer): d for d in differences}
    changed = by_pointer[
        ("onsessionstart/docs-2026.json", "/$defs/session/properties/close_term/x-b24-doc-type")
    ]
    assert (changed.kind, changed.committed, changed.derived) == ("changed", "integer", "string")
    added = by_pointer[("onsessionstart/docs-2026.json", "/$defs/session/properties/operator_id")]
    assert added.kind == "added"
    assert added.derived["x-b24-doc-type"] == "integer"
    assert str(changed).endswith('changed "integer" -> "string"')
    # the Russian page is canonical; the English one, unchanged, now differs from it, and that is recorded
    translation = by_pointer[("onsessionstart/docs-2026.json", "/x-b24-translation/en")]
    assert (translation.committed, translation.derived) == ("agrees", "differs")
    recorded = by_pointer[("onsessionstart/docs-2026.json", "/x-b24-translation/differences")].derived
    assert {
        "path": "data.DATA[].session.close_term",
        "aspect": "type",
        "ru": "string",
        "en": "integer",
    } in recorded
    assert any(d["path"].endswith("operator_id") and d["aspect"] == "only-ru" for d in recorded)


@pytest.mark.slow
def test_an_overlay_entry_that_no_longer_applies_is_drift_not_a_crash(docs_copy: Path) -> None:
    page = docs_copy / RU / OSS
    _edit(page, _row(page, "closed"), "")
    code, out, err = _drift(docs_copy, "--output", "json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["ok"] is False
    overlay = [d for d in report["differences"] if d["kind"] == "overlay"]
    assert [d["pointer"] for d in overlay] == ["/$defs/session/properties/closed"]
    assert overlay[0]["file"] == "onsessionstart/docs-2026.json"
    assert "targets/onsessionstart/docs-2026.json/patches[" in overlay[0]["derived"]
    assert "no longer applies" in overlay[0]["derived"]


@pytest.mark.slow
def test_write_regenerates_and_then_there_is_no_drift(docs_copy: Path, schemas_copy: Path) -> None:
    # prose comes from the English page, laid over the canonical structure
    _edit(docs_copy / EN / OSS, "Identifier of the session", "Session identifier")
    code, _, _ = _drift(docs_copy, "--schemas", str(schemas_copy))
    assert code == 1
    code, out, _ = _drift(docs_copy, "--schemas", str(schemas_copy), "--write")
    assert code == 0
    assert out.splitlines() == [
        "wrote schemas/onsessionstart/docs-2026.json",
        "1 file(s) regenerated from the docs and the overlay",
    ]
    written = json.loads((schemas_copy / "onsessionstart/docs-2026.json").read_text(encoding="utf-8"))
    assert written["$defs"]["session"]["properties"]["id"]["description"] == "Session identifier"
    assert _drift(docs_copy, "--schemas", str(schemas_copy))[0] == 0


def test_a_hand_edited_committed_file_is_drift(b24_shared_dir: Path, schemas_copy: Path) -> None:
    file = schemas_copy / "common" / "auth.json"
    schema = json.loads(file.read_text(encoding="utf-8"))
    schema["$defs"]["user"]["required"].append("server_endpoint")
    file.write_text(json.dumps(schema, indent=2), encoding="utf-8")
    code, out, _ = _drift(b24_shared_dir / "docs-full", "--schemas", str(schemas_copy))
    assert code == 1
    assert "common/auth.json:/$defs/user/required: changed [" in out
    (difference,) = catalog.drift(
        b24_shared_dir / "docs-full", schemas_dir=schemas_copy, events=["ONAPPTEST"]
    )
    assert difference.committed[-1] == "server_endpoint"
    assert "server_endpoint" not in difference.derived


def test_bad_docs_root_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = _run("drift", "--docs-root", str(tmp_path / "nowhere"))
    assert (code, out) == (2, "")
    assert err.startswith("mock-portal: error: ")
    assert "nowhere" in err
    assert len(err.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run("drift", "--docs-root", str(empty))
    assert code == 2
    assert "the page is in neither edition of the docs folder" in err


def test_docs_root_is_required() -> None:
    code, _, err = _run("drift")
    assert code == 2
    assert "--docs-root" in err


# ------------------------------------------------------------------------------------------ validate --schema


def test_validate_against_a_committed_schema_file() -> None:
    schema = str(data_dir("schemas") / "onsessionstart" / "docs-2026.json")
    valid = str(FIXTURES / "valid" / "onsessionstart-docs-2026-user.wire.txt")
    invalid = str(FIXTURES / "invalid" / "onsessionstart-docs-2026-user-closed-not-yn.wire.txt")
    code, out, _ = _run("validate", "--schema", schema, valid)
    assert code == 0
    assert out.startswith(f"{valid}: valid: ONSESSIONSTART")
    code, out, _ = _run("validate", "--schema", schema, invalid)
    assert code == 1
    assert "$.data.DATA[0].session.closed: 'X' is not one of" in out


def test_validate_against_the_raw_derived_schema_shows_why_the_overlay_exists(
    b24_shared_dir: Path, tmp_path: Path
) -> None:
    code, derived, _ = _run("derive", str(b24_shared_dir / "docs-full" / EN / OSS))
    assert code == 0
    schema = tmp_path / "derived.json"
    schema.write_text(derived, encoding="utf-8")
    # the page's example is JSON and carries the page's eventId: fine
    example = str(FIXTURES / "valid" / "onsessionstart-docs-2026-example-en.json")
    assert _run("validate", "--schema", str(schema), example)[0] == 0
    # a wire body as portals send it has no eventId (facts §1): the raw docs reject it
    wire = str(FIXTURES / "valid" / "onsessionstart-docs-2026-user.wire.txt")
    code, out, _ = _run("validate", "--schema", str(schema), wire)
    assert code == 1
    assert "$.eventId: missing required property 'eventId'" in out


def test_validate_schema_without_id_resolves_refs_beside_the_project_schemas(tmp_path: Path) -> None:
    schema = tmp_path / "mine.json"
    schema.write_text(
        json.dumps(
            {"properties": {"ts": {"$ref": "../common/wire.json#/$defs/timestamp"}}, "required": ["ts"]}
        ),
        encoding="utf-8",
    )
    body = tmp_path / "body.txt"
    body.write_text("event=ONAPPTEST&ts=12.5", encoding="utf-8")
    code, out, _ = _run("validate", "--schema", str(schema), str(body))
    assert code == 1
    assert "$.ts: '12.5' does not match" in out
    body.write_text("event=ONAPPTEST&ts=12", encoding="utf-8")
    assert _run("validate", "--schema", str(schema), str(body))[0] == 0


def test_validate_schema_never_shows_a_secret(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(
        json.dumps({"properties": {"auth": {"properties": {"application_token": {"maxLength": 3}}}}})
    )
    body = tmp_path / "b.txt"
    body.write_text("event=X&auth%5Bapplication_token%5D=hunter2secretvalue", encoding="utf-8")
    code, out, err = _run("validate", "--schema", str(schema), str(body), "--output", "json")
    assert code == 1
    assert "hunter2" not in out + err
    assert json.loads(out)["results"][0]["errors"][0]["path"] == "$.auth.application_token"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{", "not JSON"),
        ("[1]", "a schema is a JSON object"),
        ('{"type": 5}', "not a valid 2020-12 schema at type"),
    ],
)
def test_validate_bad_schema_file_is_one_line_exit_2(tmp_path: Path, content: str, fragment: str) -> None:
    schema = tmp_path / "bad.json"
    schema.write_text(content, encoding="utf-8")
    body = str(FIXTURES / "valid" / "onsessionstart-docs-2026-user.wire.txt")
    code, out, err = _run("validate", "--schema", str(schema), body)
    assert (code, out) == (2, "")
    assert err.startswith(f"mock-portal: error: --schema {schema}: ")
    assert fragment in err
    assert len(err.splitlines()) == 1


def test_validate_schema_excludes_event_and_shape(tmp_path: Path) -> None:
    schema = str(data_dir("schemas") / "onsessionstart" / "docs-2026.json")
    code, _, err = _run("validate", "--schema", schema, "--shape", "docs-2024", "-")
    assert code == 2
    assert "cannot be combined" in err
    code, _, err = _run("validate", "--schema", str(tmp_path / "missing.json"), "-")
    assert code == 2
    assert "no such file" in err
