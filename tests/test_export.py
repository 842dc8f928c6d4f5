"""mock-portal export: OpenAPI 3.1 (openapi-spec-validator, schemathesis) and AsyncAPI 3.0 (the official
@asyncapi/parser on Node.js); the bundled schemas give the same verdicts as the registry on every fixture."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from mock_portal import cli
from mock_portal.export import PHP_BRACKETS, asyncapi_document, openapi_document
from mock_portal.schemas import is_valid, known_events
from mock_portal.wire import decode
from tests.conftest import REPO_ROOT

NODE_TOOLS = REPO_ROOT / "tests" / "node"
PARSER = Path("node_modules") / "@asyncapi" / "parser"


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _fixture_payloads() -> Iterator[tuple[str, Any]]:
    events = set(known_events())
    for folder in ("valid", "invalid", "captures", "siblings/valid", "siblings/invalid"):
        for path in sorted((REPO_ROOT / "fixtures" / folder).glob("*")):
            if path.name.endswith(".wire.txt"):
                payload = decode(path.read_bytes())
            elif path.suffix == ".json" and not path.name.endswith(".expect.json"):
                payload = json.loads(path.read_text(encoding="utf-8"))
                payload = payload.get("payload", payload) if folder == "captures" else payload
            else:
                continue
            if isinstance(payload, dict) and payload.get("event") in events:
                yield f"{folder}/{path.name}", payload


FIXTURES = list(_fixture_payloads())


@cache
def _documents() -> tuple[dict[str, Any], dict[str, Any]]:
    return openapi_document(), asyncapi_document()


@cache
def _validator(kind: str, event: str) -> Any:
    openapi, asyncapi = _documents()
    if kind == "openapi":
        return _bundled_validator(openapi, event, DRAFT202012)
    return _bundled_validator(asyncapi, event, DRAFT7)


def _bundled_validator(document: dict[str, Any], event: str, draft: Any) -> Any:
    from jsonschema import Draft7Validator, Draft202012Validator  # type: ignore[import-untyped]

    registry: Registry = Registry().with_resource("urn:doc", Resource(document, specification=draft))
    if draft is DRAFT202012:
        ref = document["webhooks"][event]["post"]["requestBody"]["content"][
            "application/x-www-form-urlencoded"
        ]["schema"]["$ref"]
        return Draft202012Validator({"$ref": "urn:doc" + ref}, registry=registry)
    ref = document["components"]["messages"][event]["payload"]["$ref"]
    return Draft7Validator({"$ref": "urn:doc" + ref}, registry=registry)


# ------------------------------------------------------------------------------------------------ OpenAPI


@pytest.mark.slow
def test_openapi_is_valid_3_1_with_one_webhook_per_event() -> None:
    from openapi_spec_validator import validate

    document = openapi_document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert sorted(document["webhooks"]) == known_events()
    post = document["webhooks"]["ONSESSIONSTART"]["post"]
    content = post["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    form = content["application/x-www-form-urlencoded"]
    assert form["x-b24-php-brackets"]["encoder"] == PHP_BRACKETS["encoder"]
    assert form["x-b24-php-brackets"]["example"].startswith("event=ONSESSIONSTART&")
    assert post["externalDocs"]["url"].startswith("https://apidocs.bitrix24.com/")
    assert "source-2024, docs-2024, docs-2026" in post["description"]


@pytest.mark.slow
def test_schemathesis_loads_the_openapi_document() -> None:
    import schemathesis

    document = openapi_document()
    schema = schemathesis.openapi.from_dict(document)
    assert schema.raw_schema["webhooks"].keys() == document["webhooks"].keys()
    assert list(schema.get_all_operations()) == []  # webhooks only: nothing for schemathesis to call


@pytest.mark.slow
def test_openapi_examples_validate_and_mask_secrets() -> None:
    document = openapi_document()
    for event, item in document["webhooks"].items():
        content = item["post"]["requestBody"]["content"]
        for media in content.values():
            if "example" not in media:
                continue
            example = media["example"]
            assert is_valid(example, event), event
            assert _bundled_validator(document, event, DRAFT202012).is_valid(example), event
            for key in ("access_token", "refresh_token", "application_token"):
                assert example["auth"].get(key, "***") == "***"


@pytest.mark.parametrize(("name", "payload"), FIXTURES, ids=[name for name, _ in FIXTURES])
def test_bundled_schemas_agree_with_the_registry(name: str, payload: Any) -> None:
    event = payload["event"]
    expected = is_valid(payload, event)
    assert _validator("openapi", event).is_valid(payload) is expected
    # the AsyncAPI bundle (allOf instead of $ref siblings) read as draft-07
    assert _validator("asyncapi", event).is_valid(payload) is expected


def test_the_fixtures_hold_both_verdicts() -> None:
    verdicts = {is_valid(p, p["event"]) for _, p in FIXTURES}
    assert verdicts == {True, False}


# ------------------------------------------------------------------------------------------------ AsyncAPI


@pytest.fixture(scope="session")
def asyncapi_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder whose node_modules holds @asyncapi/parser: tests/node when CI installed it there
    (``npm ci --prefix tests/node``), else a fresh install into a temporary folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the official AsyncAPI parser")
    if (NODE_TOOLS / PARSER).is_dir():
        return NODE_TOOLS
    ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=60)
    if ping.returncode != 0:
        pytest.skip(f"npm cannot reach the registry to install @asyncapi/parser: {ping.stderr.strip()[:200]}")
    folder = tmp_path_factory.mktemp("asyncapi-parser")
    for name in ("package.json", "package-lock.json", "parse_asyncapi.js"):
        shutil.copy(NODE_TOOLS / name, folder / name)
    installed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    return folder


def _parse(folder: Path, document: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(folder / "parse_asyncapi.js"), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.mark.once  # the official parser runs on Node.js: its verdict does not depend on the Python version
def test_asyncapi_passes_the_official_parser(asyncapi_parser: Path, tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    code, out, err = _run("export", "asyncapi", "--out", str(target))
    assert (code, err) == (0, "")
    assert out == f"asyncapi: {len(known_events())} events written to {target}\n"
    parsed = _parse(asyncapi_parser, target)
    assert parsed["errors"] == []
    assert parsed["parsed"] is True
    assert parsed["channels"] == parsed["operations"] == parsed["messages"] == len(known_events())


@pytest.mark.once  # the official parser runs on Node.js: its verdict does not depend on the Python version
def test_the_official_parser_refuses_a_broken_document(asyncapi_parser: Path, tmp_path: Path) -> None:
    """The check can fail: a dangling reference is an error for the parser."""
    document = asyncapi_document()
    document["components"]["messages"]["ONSESSIONSTART"]["payload"] = {"$ref": "#/components/schemas/nowhere"}
    target = tmp_path / "broken.json"
    target.write_text(json.dumps(document), encoding="utf-8")
    parsed = _parse(asyncapi_parser, target)
    assert parsed["parsed"] is False
    assert any("nowhere" in error["message"] for error in parsed["errors"])


def test_asyncapi_messages_describe_the_form_body() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    message = document["components"]["messages"]["ONIMCONNECTORMESSAGEADD"]
    assert message["contentType"] == "application/x-www-form-urlencoded"
    assert "x-b24-php-brackets" in message
    operation = document["operations"]["receiveONIMCONNECTORMESSAGEADD"]
    assert operation["action"] == "receive"
    assert operation["bindings"]["http"]["method"] == "POST"
    for example in message["examples"]:
        assert is_valid(example["payload"], "ONIMCONNECTORMESSAGEADD")


# ------------------------------------------------------------------------------------------------ CLI


@pytest.mark.slow
def test_export_prints_the_same_bytes_every_time() -> None:
    first = _run("export", "openapi")
    assert first == _run("export", "openapi")
    code, out, err = first
    assert (code, err) == (0, "")
    assert json.loads(out) == openapi_document()
    assert "facts §" not in "".join(w["post"]["description"] for w in json.loads(out)["webhooks"].values())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "swagger"], "invalid choice: 'swagger'"),
        (["export"], "the following arguments are required: format"),
        (
            ["export", "openapi", "--out", "/nonexistent-dir/x.json"],
            "--out /nonexistent-dir/x.json: cannot write",
        ),
    ],
    ids=["unknown-format", "no-format", "unwritable"],
)
def test_export_usage_errors_are_one_line(argv: list[str], message: str) -> None:
    code, _, err = _run(*argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
