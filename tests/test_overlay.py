"""The overlay and the generator: committed schemas = derivation + overlay, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mock_portal import catalog
from mock_portal._resources import data_dir
from mock_portal.errors import MockPortalError, OverlayError

SCHEMAS = data_dir("schemas")
HAND_WRITTEN = {"common/wire.json", catalog.OVERLAY_FILE}
"""The project's own vocabulary: not derived from any page."""

PAGE = """# A small event

{% include notitle [required](../_includes/required.md) %}

## Parameters

#|
|| **Name**
`type` | **Description** ||
|| **event***
[`string`](../data-types.md) | Event code ||
|| **eventId***
[`integer`](../data-types.md) | Shown by the page ||
|| **data***
[`object`](../data-types.md) | Data, described [below](#data) ||
|| **ts**
[`timestamp`](../data-types.md) | Time ||
|#

### Parameter data {#data}

#|
|| **Name**
`type` | **Description** ||
|| **ID***
[`integer`](../data-types.md) | An id ||
|| **FLAG**
[`char`](../data-types.md) | Y or N ||
|#
"""


def _docs(tmp_path: Path, page: str = PAGE) -> Path:
    """A docs folder in the shared layout: one edition with an include and one event page."""
    edition = tmp_path / "docs" / "b24restdocs"
    (edition / "_includes").mkdir(parents=True)
    (edition / "_includes" / "required.md").write_text("Required parameters are marked with *\n")
    (edition / "events").mkdir()
    (edition / "events" / "small.md").write_text(page, encoding="utf-8")
    return tmp_path / "docs"


def _entry(op: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"op": op, "path": path, **extra, "why": f"{op} {path} for the test", "evidence": ["inferred"]}


def _overlay(tmp_path: Path, targets: dict[str, Any], event_patches: list[Any] | None = None) -> Path:
    body: dict[str, Any] = {"targets": targets}
    if event_patches is not None:
        body["event_patches"] = event_patches
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps({"x-b24-overlay": body}), encoding="utf-8")
    return path


def _generate(tmp_path: Path, targets: dict[str, Any], **kw: Any) -> dict[str, Any]:
    overlay = catalog.load_overlay(_overlay(tmp_path, targets, **kw))
    return {f: json.loads(t) for f, t in catalog.generate(_docs(tmp_path), overlay=overlay).items()}


# ------------------------------------------------------------------------------------------- the real overlay


def test_every_committed_schema_is_generated_or_declared_hand_written() -> None:
    on_disk = {p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json")}
    generated = catalog.generated_files()
    assert generated.isdisjoint(HAND_WRITTEN)
    assert on_disk == generated | HAND_WRITTEN


def test_the_overlay_is_well_formed_and_every_entry_cites_evidence() -> None:
    overlay = catalog.load_overlay()
    entries = [*overlay.event_patches, *(p for t in overlay.targets for p in t.patches)]
    assert len(entries) > 50
    for entry in entries:
        assert entry.why, entry.where
        assert entry.evidence, entry.where
        assert set(entry.evidence) <= set(catalog.EVIDENCE_ORDER), entry.where
    # the corrections the facts demand are all there (facts §1, §2, §3)
    text = json.dumps(json.loads((SCHEMAS / catalog.OVERLAY_FILE).read_text(encoding="utf-8")))
    for needle in ("/properties/eventId", "event_handler_id", "server_endpoint", "wire.json#/$defs/id"):
        assert needle in text, needle


def test_committed_files_equal_derivation_plus_overlay_byte_for_byte(b24_shared_dir: Path) -> None:
    """OnSessionStart, a derived event and the shared files here; every file in test_drift's full check."""
    generated = catalog.generate(b24_shared_dir / "docs-full", events=["ONSESSIONSTART", "ONCRMDEALADD"])
    assert {f.split("/")[0] for f in generated} == {"common", "onsessionstart", "oncrmdealadd"}
    assert set(generated) <= catalog.generated_files()
    differing = [f for f in generated if (SCHEMAS / f).read_text(encoding="utf-8") != generated[f]]
    assert differing == []


def test_committed_files_are_written_with_sorted_keys() -> None:
    from mock_portal.derive import dumps_schema

    for file in catalog.generated_files() - {catalog.INDEX_FILE}:  # the table keeps its declared order
        text = (SCHEMAS / file).read_text(encoding="utf-8")
        if text.startswith('{"'):  # the bulk of derived events: one line
            assert (
                text
                == json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                + "\n"
            )
        else:
            assert text == dumps_schema(json.loads(text)), file


def test_corrected_nodes_record_the_overlay_evidence_and_why() -> None:
    schema = json.loads((SCHEMAS / "onsessionstart/docs-2026.json").read_text(encoding="utf-8"))
    line_id = schema["$defs"]["connector"]["properties"]["line_id"]
    assert line_id["$ref"] == "../common/wire.json#/$defs/id"
    assert line_id["x-b24-doc-type"] == "integer"  # what the page says stays visible
    assert line_id["x-b24-evidence"][0] == "docs"
    assert "inferred" in line_id["x-b24-evidence"]
    assert "never negative" in line_id["x-b24-note"]
    assert "eventId" not in schema["properties"]
    assert schema["$ref"] == "../common/envelope.json"
    auth = json.loads((SCHEMAS / "common/auth.json").read_text(encoding="utf-8"))
    user = auth["$defs"]["user"]
    assert "server_endpoint" not in user["required"]  # missing in late-2024 captures (facts §2)
    assert user["properties"]["user_id"]["x-b24-evidence"] == ["source", "capture"]
    assert set(auth["$defs"]["system"]["required"]) == {
        "domain",
        "client_endpoint",
        "member_id",
        "application_token",
    }


# ------------------------------------------------------------------------------------------- operations


def test_every_operation_on_a_page_the_test_writes(tmp_path: Path) -> None:
    data = "/$defs/data/properties"
    generated = _generate(
        tmp_path,
        {
            "small/one.json": {
                "page": "b24restdocs/events/small.md",
                "event": "ONSMALL",
                "root": {"x-b24-shape": "one"},
                "patches": [
                    _entry("merge", f"{data}/ID", value={"$ref": "../common/wire.json#/$defs/id"}),
                    _entry("merge", f"{data}/FLAG", value={"$ref": None, "enum": ["Y", "N"]}),
                    _entry("copy", f"{data}/FLAG_COPY", **{"from": f"{data}/FLAG"}),
                    _entry("move", f"{data}/RENAMED", **{"from": f"{data}/FLAG_COPY"}),
                    _entry("add", f"{data}/EXTRA", value={"type": "string"}),
                    _entry("replace", f"{data}/EXTRA", value={"type": "integer"}),
                    _entry("remove", f"{data}/EXTRA"),
                    _entry("require", "/$defs/data", names=["FLAG"]),
                    _entry("unrequire", "/$defs/data", names=["ID"]),
                    _entry("remove", "/properties/nothing", if_present=True),
                ],
            },
            "small/one.strict.json": {"strict_of": "small/one.json"},
            "small/any.json": {"any_of": ["small/one.json"], "root": {"title": "any"}},
        },
        event_patches=[
            _entry("merge", "/properties/event", value={"const": "{event}"}),
            _entry("remove", "/properties/eventId", if_present=True),
            _entry("unrequire", "", names=["eventId"]),
        ],
    )
    one = generated["small/one.json"]
    assert one["$id"] == "https://b24-contract.invalid/schemas/small/one.json"
    assert one["properties"]["event"]["const"] == "ONSMALL"
    assert "eventId" not in one["properties"]
    assert "eventId" not in one["required"]
    props = one["$defs"]["data"]["properties"]
    assert props["ID"]["$ref"] == "../common/wire.json#/$defs/id"
    assert props["FLAG"]["enum"] == ["Y", "N"]
    assert "$ref" not in props["FLAG"]
    assert props["RENAMED"]["enum"] == ["Y", "N"]
    assert "FLAG_COPY" not in props
    assert "EXTRA" not in props
    assert one["$defs"]["data"]["required"] == ["FLAG"]
    assert props["FLAG"]["x-b24-evidence"] == ["docs", "inferred"]
    assert props["FLAG"]["x-b24-note"] == f"merge {data}/FLAG for the test"
    assert one["x-b24-shape"] == "one"
    strict = generated["small/one.strict.json"]
    assert strict["$ref"] == "one.json"
    assert strict["properties"]["data"] == {
        "properties": {"ID": True, "FLAG": True, "RENAMED": True},
        "additionalProperties": False,
    }
    assert generated["small/any.json"]["anyOf"] == [{"$ref": "one.json"}]


def test_an_entry_that_no_longer_fits_names_itself(tmp_path: Path) -> None:
    targets = {
        "small/one.json": {
            "page": "b24restdocs/events/small.md",
            "patches": [_entry("merge", "/$defs/data/properties/GONE", value={"type": "string"})],
        }
    }
    with pytest.raises(OverlayError, match=r"targets/small/one.json/patches\[0\].*GONE") as caught:
        _generate(tmp_path, targets)
    assert isinstance(caught.value, MockPortalError)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"op": "merge", "path": "/x", "value": {}, "evidence": ["docs"]}, "says why"),
        ({"op": "merge", "path": "/x", "value": {}, "why": "w", "evidence": []}, "evidence"),
        ({"op": "merge", "path": "/x", "value": {}, "why": "w", "evidence": ["rumour"]}, "evidence"),
        ({"op": "patch", "path": "/x", "why": "w", "evidence": ["docs"]}, "op must be"),
        ({"op": "merge", "path": "x", "value": {}, "why": "w", "evidence": ["docs"]}, "JSON pointer"),
        ({"op": "move", "path": "/x", "why": "w", "evidence": ["docs"]}, "needs 'from'"),
        ({"op": "require", "path": "", "why": "w", "evidence": ["docs"]}, "needs 'names'"),
        ({"op": "add", "path": "/x", "why": "w", "evidence": ["docs"]}, "needs a 'value'"),
        (
            {"op": "add", "path": "/x", "value": 1, "why": "w", "evidence": ["docs"], "typo": 1},
            "unknown keys",
        ),
    ],
)
def test_malformed_entries_are_refused_with_their_place(tmp_path: Path, entry: Any, fragment: str) -> None:
    path = _overlay(tmp_path, {"a/b.json": {"page": "b24restdocs/events/small.md", "patches": [entry]}})
    with pytest.raises(OverlayError, match=r"targets/a/b\.json/patches\[0\]") as caught:
        catalog.load_overlay(path)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{", "unreadable"),
        ("[]", "x-b24-overlay"),
        ('{"x-b24-overlay": {"targets": {"a.json": {}}}}', "exactly one of"),
        ('{"x-b24-overlay": {"targets": {"../a.json": {"any_of": []}}}}', "relative path"),
        ('{"x-b24-overlay": {"targets": {"a.json": {"page": 5}}}}', "page must be a string"),
        ('{"x-b24-overlay": {"targets": {"a.json": {"any_of": [], "root": []}}}}', "root must be an object"),
    ],
)
def test_malformed_overlay_files(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "overlay.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OverlayError, match=fragment):
        catalog.load_overlay(path)


def test_missing_page_is_a_derive_error_naming_it(tmp_path: Path) -> None:
    from mock_portal.errors import DeriveError

    with pytest.raises(DeriveError, match=r"nowhere\.md"):
        _generate(tmp_path, {"a/b.json": {"page": "b24restdocs/events/nowhere.md"}})
