"""The schema files, the registry and ``mock_portal.schemas.validate``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import mock_portal
from mock_portal import schemas, wire
from mock_portal._resources import data_dir
from mock_portal.errors import MockPortalError, UnknownNameError
from tests.support.schemas import SHAPES, fixtures, load_schema, whitelist

SCHEMA_FILES = sorted(
    p.relative_to(data_dir("schemas")).as_posix() for p in data_dir("schemas").rglob("*.json")
)


def _example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (data_dir("fixtures") / "valid" / "onsessionstart-docs-2026-example-en.json").read_text(
            encoding="utf-8"
        )
    )
    return loaded


# ------------------------------------------------------------------------------------------- the files


@pytest.mark.parametrize("relative", SCHEMA_FILES)
def test_schema_file_is_valid_2020_12_with_the_id_of_its_path(relative: str) -> None:
    schema = load_schema(relative)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schemas.BASE_URI + relative


def _properties(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            if isinstance(value, dict):
                found.append((f"{where}.{key}", value))
        for key, value in node.items():
            if key != "properties":
                found.extend(_properties(value, f"{where}/{key}"))
        for key, value in node.get("properties", {}).items():
            found.extend(_properties(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_properties(value, f"{where}[{index}]"))
    return found


@pytest.mark.parametrize("relative", [r for r in SCHEMA_FILES if not r.endswith(".strict.json")])
def test_every_property_carries_its_provenance(relative: str) -> None:
    for where, prop in _properties(load_schema(relative), relative):
        doc = prop.get("x-b24-doc")
        assert isinstance(doc, dict), f"{where} has no x-b24-doc"
        assert doc["page"].endswith(".md"), where
        assert doc["url"].startswith("https://apidocs.bitrix24.com/"), where
        assert doc["url_ru"].startswith("https://apidocs.bitrix24.ru/"), where
        assert set(prop["x-b24-evidence"]) <= {"docs", "source", "capture", "inferred"}, where


@pytest.mark.parametrize("shape", SHAPES)
def test_strict_shape_whitelists_exactly_the_tolerant_keys(shape: str) -> None:
    tolerant = load_schema(f"onsessionstart/{shape}.json")
    strict = load_schema(f"onsessionstart/{shape}.strict.json")
    assert strict["$ref"] == f"{shape}.json"
    assert strict["properties"]["data"] == whitelist(tolerant["$defs"]["data"], tolerant["$defs"])
    envelope = load_schema("common/envelope.json")
    assert set(strict["properties"]) == set(envelope["properties"]) | set(tolerant["properties"])
    assert strict["additionalProperties"] is False


def test_strict_auth_whitelists_exactly_the_tolerant_keys() -> None:
    auth = load_schema("common/auth.json")
    for mode in ("user", "system"):
        assert (
            auth["$defs"][f"{mode}-strict"]["properties"].keys() == auth["$defs"][mode]["properties"].keys()
        )
    assert set(auth["$defs"]["system"]["properties"]) == {
        "domain",
        "client_endpoint",
        "server_endpoint",
        "member_id",
        "application_token",
    }  # facts §2


def test_catalogue_lists_every_shape_file() -> None:
    catalogue = load_schema("index.json")["x-b24-catalogue"]
    listed = {
        uri for entry in catalogue.values() for v in entry.get("shapes", {}).values() for uri in v.values()
    }
    event_files = [
        r for r in SCHEMA_FILES if not r.startswith(("common/", "methods/", "seeded/")) and "/" in r
    ]
    on_disk = {schemas.BASE_URI + r for r in event_files}
    assert listed == on_disk
    assert schemas.known_shapes("ONSESSIONSTART") == ["any", *SHAPES]


# ------------------------------------------------------------------------------------------- registry


def test_registry_and_validators_are_built_once() -> None:
    assert schemas.registry() is schemas.registry()
    assert schemas.validator_for("ONSESSIONSTART", "docs-2026") is schemas.validator_for(
        "onsessionstart", "docs-2026"
    )
    assert schemas.validator_for(shape="docs-2026", strict=True) is not schemas.validator_for(
        shape="docs-2026"
    )
    for relative in SCHEMA_FILES:
        assert schemas.registry().contents(schemas.BASE_URI + relative)["$id"].endswith(relative)


def test_public_names_are_reexported() -> None:
    assert mock_portal.validate is schemas.validate
    assert mock_portal.ValidationReport is schemas.ValidationReport
    assert mock_portal.validator_for is schemas.validator_for


# ------------------------------------------------------------------------------------------- scalars


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("128", True),
        (128, True),
        ("0", True),
        (0, True),
        ("", False),
        ("12a", False),
        ("-1", False),
        (-1, False),
        ("007", False),
        (1.5, False),
        (True, False),
        (None, False),
        ("1" * 20, False),
    ],
)
def test_ids_accept_the_wire_form_and_the_json_type(value: Any, ok: bool) -> None:
    payload = _example()
    payload["data"]["DATA"][0]["connector"]["line_id"] = value
    report = schemas.validate(payload, shape="docs-2026")
    assert report.ok is ok, report.format()
    if not ok:
        (issue,) = report.errors
        assert issue.path == "$.data.DATA[0].connector.line_id"
        assert "identifier" in issue.expected


@pytest.mark.parametrize(
    ("value", "ok"), [("Y", True), ("N", True), ("y", False), ("1", False), (True, False)]
)
def test_yes_no_flags(value: Any, ok: bool) -> None:
    payload = _example()
    payload["data"]["DATA"][0]["session"]["closed"] = value
    assert schemas.validate(payload, shape="docs-2026").ok is ok


def test_a_doc_example_and_its_wire_form_both_validate() -> None:
    payload = _example()
    decoded = wire.decode(wire.encode(payload))
    assert decoded["ts"] == "1714649632"  # every scalar a string after the wire (facts §1)
    assert schemas.validate(payload).ok
    assert schemas.validate(decoded).ok


# ------------------------------------------------------------------------------------------- reports


def test_report_of_a_valid_body() -> None:
    report = schemas.validate(_example())
    assert report.ok
    assert bool(report)
    assert report.errors == ()
    assert report.matched_shape == "docs-2026"
    assert report.shape == "any"
    assert report.format().startswith("valid: ONSESSIONSTART")
    assert schemas.is_valid(_example())


def test_issue_names_path_expected_and_doc_page() -> None:
    payload = _example()
    payload["data"]["DATA"][0]["session"]["close_term"] = "soon"
    (issue,) = schemas.validate(payload).errors
    assert issue.path == "$.data.DATA[0].session.close_term"
    assert issue.keyword == "pattern"
    assert "'soon'" in issue.message
    assert issue.expected.startswith("integer")
    assert issue.doc is not None
    assert issue.doc.anchor == "session"
    assert issue.doc.url == (
        "https://apidocs.bitrix24.com/api-reference/imopenlines/openlines/events/on-session-start.html#session"
    )
    assert issue.shape == "docs-2026"
    assert issue.evidence == ("docs",)
    assert str(issue).startswith("$.data.DATA[0].session.close_term: ")
    json.dumps(schemas.validate(payload).to_dict())


def test_any_explains_the_closest_shape_instead_of_every_branch() -> None:
    payload = _example()
    del payload["data"]["DATA"][0]["session"]["id"]
    report = schemas.validate(payload)
    assert [(i.path, i.keyword) for i in report.errors] == [("$.data.DATA[0].session.id", "required")]
    assert report.matched_shape == "docs-2026"
    assert any("closest is docs-2026" in note for note in report.notes)


def test_closest_shape_for_a_source_body_with_one_bad_value() -> None:
    payload = json.loads(
        (data_dir("fixtures") / "valid" / "onsessionstart-source-2024-user.json").read_text(encoding="utf-8")
    )
    payload["data"]["DATA"]["line"]["id"] = "three"
    report = schemas.validate(payload)
    assert report.matched_shape == "source-2024"
    assert [i.path for i in report.errors] == ["$.data.DATA.line.id"]


def test_doc_of_an_older_shape_points_at_that_revision() -> None:
    payload = _example()
    (issue,) = schemas.validate(payload, shape="docs-2024").errors  # docs-2026 items lack line
    assert issue.path == "$.data.DATA[0].user.name" or issue.path == "$.data.DATA[0].line"
    assert issue.doc is not None
    assert issue.doc.revision_url is not None
    assert "943900a7fe" in issue.doc.revision_url


@pytest.mark.parametrize("secret_key", ["access_token", "application_token", "refresh_token"])
def test_secrets_never_reach_a_message(secret_key: str) -> None:
    payload = _example()
    payload["auth"][secret_key] = ["hunter2-super-secret"]
    report = schemas.validate(payload, strict=True)
    assert not report.ok
    rendered = report.format() + json.dumps(report.to_dict())
    assert "hunter2" not in rendered
    assert any(i.path == f"$.auth.{secret_key}" for i in report.errors)


def test_whole_auth_block_shown_in_a_message_is_redacted() -> None:
    payload = _example()
    payload["auth"] = json.dumps(payload["auth"])  # a string where the block should be
    report = schemas.validate(payload)
    assert "s6p6eclrvim6da22ft9ch94ekreb52lv" not in report.format()
    assert "51856fefc120afa4b628cc82d3935cce" not in report.format()


def test_strict_names_the_unexpected_key() -> None:
    payload = _example()
    payload["data"]["DATA"][0]["session"]["operator_id"] = "5"
    assert schemas.validate(payload).ok  # real portals add fields: tolerant
    report = schemas.validate(payload, shape="docs-2026", strict=True)
    (issue,) = report.errors
    assert issue.path == "$.data.DATA[0].session.operator_id"
    assert issue.keyword == "additionalProperties"
    assert "close_term, closed, id, parent_id" in issue.message


def test_not_an_object_at_all() -> None:
    report = schemas.validate(["event", "ONSESSIONSTART"])
    (issue,) = report.errors
    assert issue.path == "$"
    assert issue.keyword == "type"
    assert "an object" in issue.message


def test_unknown_keys_are_tolerated_but_nesting_is_bounded() -> None:
    payload = _example()
    deep: Any = "x"
    for _ in range(schemas.MAX_DEPTH - 3):
        deep = {"k": deep}
    payload["data"]["EXTRA"] = deep
    assert schemas.validate(payload).ok
    payload["data"]["EXTRA"] = {"k": {"k": {"k": deep}}}
    report = schemas.validate(payload)
    (issue,) = report.errors
    assert issue.keyword == "maxDepth"
    assert issue.path.startswith("$.data.EXTRA.k.k")
    very_deep: Any = []
    for _ in range(5000):
        very_deep = [very_deep]
    assert not schemas.is_valid({"event": "ONSESSIONSTART", "data": {"DATA": very_deep}})


# ------------------------------------------------------------------------------------------- names


def test_unknown_event_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'ONSESSIONSTART'") as caught:
        schemas.validate(_example(), "ONSESIONSTART")
    assert isinstance(caught.value, MockPortalError)


def test_unknown_shape_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'docs-2026'"):
        schemas.validate(_example(), shape="docs-2025")
    with pytest.raises(UnknownNameError, match="did you mean 'source-2024'"):
        schemas.validator_for("ONSESSIONSTART", "source2024")


def test_event_without_shapes_checks_the_envelope_and_says_so() -> None:
    body = {"event": "ONAPPTEST", "ts": "1714649632", "auth": _example()["auth"], "data": {"ANYTHING": "1"}}
    report = schemas.validate(body, "ONAPPTEST")
    assert report.ok
    assert any("only the envelope" in note for note in report.notes)
    del body["ts"]
    assert [i.path for i in schemas.validate(body, "ONAPPTEST").errors] == ["$.ts"]
    with pytest.raises(UnknownNameError):
        schemas.validate(body, "ONAPPTEST", "docs-2026")


def _capture_payloads() -> list[tuple[str, dict[str, Any]]]:
    from tests.conftest import shared_dir

    root = shared_dir()
    if root is None:
        return []
    found = []
    for path in sorted((root / "captures").glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))["payload"]
        if "redacted" not in json.dumps(payload):  # an author blanked these values: not evidence of types
            found.append((path.stem, payload))
    return found


@pytest.mark.parametrize(("name", "payload"), _capture_payloads(), ids=[n for n, _ in _capture_payloads()])
def test_real_captures_satisfy_the_envelope(name: str, payload: dict[str, Any]) -> None:
    assert schemas.validate(payload, "ONAPPTEST").ok, name  # envelope-only: every event shares it (facts §1)


# ------------------------------------------------------------------------------------------- jsonschema-rs


@pytest.mark.slow
def test_jsonschema_rs_agrees_on_every_fixture() -> None:
    """The schemas stay plain enough for the Rust backend: same verdicts and same raw error paths."""
    rs = pytest.importorskip("jsonschema_rs")
    files = [load_schema(r) for r in SCHEMA_FILES]
    registry = rs.Registry([(s["$id"], s) for s in files])
    bodies: list[Any] = []
    for fixture in fixtures("valid") + fixtures("invalid"):
        text = fixture.text()
        bodies.append(wire.decode(text) if fixture.kind == "wire" else json.loads(text))
    for shape in ("any", *SHAPES):
        for strict in (False, True):
            uri = schemas.schema_uri("ONSESSIONSTART", shape, strict=strict)
            fast = rs.validator_for(copy.deepcopy(schemas.registry().contents(uri)), registry=registry)
            slow = schemas.validator_for("ONSESSIONSTART", shape, strict)
            for body in bodies:
                assert fast.is_valid(body) == slow.is_valid(body), (shape, strict, body)
                if shape != "any":
                    rs_paths = sorted(tuple(e.instance_path) for e in fast.iter_errors(body))
                    py_paths = sorted(tuple(e.absolute_path) for e in slow.iter_errors(body))
                    assert rs_paths == py_paths, (shape, strict)


def test_schema_folder_is_the_one_in_the_checkout_or_package() -> None:
    assert (Path(data_dir("schemas")) / "README.md").is_file()


@pytest.mark.slow
def test_without_jsonschema_rs_the_reference_gives_the_same_reports(tmp_path: Path) -> None:
    """Where jsonschema_rs cannot be imported, validate() falls back to the pure-Python reference."""
    import subprocess
    import sys

    script = tmp_path / "fallback.py"
    script.write_text(
        "import json, sys\n"
        "sys.modules['jsonschema_rs'] = None  # any import of it now fails\n"
        "from mock_portal import schemas, wire\n"
        "from mock_portal.fastpath import available_backends\n"
        "from pathlib import Path\n"
        "out = {'backend': schemas.fast_backend(), 'available': list(available_backends()), 'reports': {}}\n"
        "for path in sorted(Path(sys.argv[1]).glob('*/*.wire.txt')):\n"
        "    report = schemas.validate(wire.decode(path.read_bytes()))\n"
        "    out['reports'][path.relative_to(sys.argv[1]).as_posix()] = report.to_dict()\n"
        "print(json.dumps(out))\n"
    )
    root = Path(data_dir("fixtures"))
    done = subprocess.run(
        [sys.executable, str(script), str(root)], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["backend"] == "jsonschema"
    assert result["available"] == ["jsonschema"]
    assert len(result["reports"]) > 10
    oks = set()
    for name, report in result["reports"].items():
        here = schemas.validate(wire.decode((root / name).read_bytes()))
        assert here.to_dict() == report, name
        oks.add(report["ok"])
    assert oks == {True, False}
