"""mock_portal.derive on the real doc pages in shared/docs: every event page, both languages, and history."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mock_portal.derive import derive_schema, parse_page
from tests.conftest import shared_dir
from tests.support.derive import field, outline, without_prose

RU, EN = "b24-rest-docs", "b24restdocs"
ONSESSIONSTART = "api-reference/imopenlines/openlines/events/on-session-start.md"


def _event_pages() -> list[str]:
    found = shared_dir()
    if found is None:
        return []
    root = found / "docs" / RU
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("events/on-*.md"))


EVENT_PAGES = _event_pages()
HISTORY = {  # first and last snapshots of the 2024 page in each language (docs/SOURCES.md)
    "first": (f"_history/{RU}/943900a7fe/{ONSESSIONSTART}", f"_history/{EN}/69f3c204e0/{ONSESSIONSTART}"),
    "last": (f"_history/{RU}/985430072a/{ONSESSIONSTART}", f"_history/{EN}/f98fd2465a/{ONSESSIONSTART}"),
}


@pytest.fixture(scope="session")
def docs(b24_shared_dir: Path) -> Path:
    return b24_shared_dir / "docs"


def _history(docs: Path, relative: str) -> dict[str, Any]:
    edition = relative.split("/")[1]
    return derive_schema(docs / relative, docs_root=docs / edition)


def test_the_shared_docs_have_event_pages(b24_shared_dir: Path) -> None:
    assert len(EVENT_PAGES) >= 16
    assert ONSESSIONSTART in EVENT_PAGES


@pytest.mark.parametrize("page", EVENT_PAGES)
def test_russian_and_english_pages_give_the_same_schema(docs: Path, page: str) -> None:
    russian = derive_schema(docs / RU / page)
    english = derive_schema(docs / EN / page)
    assert russian["x-b24-source"]["language"] == "ru"
    assert english["x-b24-source"]["language"] == "en"
    assert russian["properties"], "the top-level table has fields"
    assert without_prose(russian) == without_prose(english)


@pytest.mark.parametrize("snapshot", sorted(HISTORY))
def test_history_pages_give_the_same_schema_in_both_languages(docs: Path, snapshot: str) -> None:
    russian, english = (_history(docs, relative) for relative in HISTORY[snapshot])
    assert without_prose(russian) == without_prose(english)
    assert russian["x-b24-source"]["commit"] == HISTORY[snapshot][0].split("/")[2]


@pytest.mark.parametrize("edition", [RU, EN])
def test_onsessionstart_current_page_is_the_docs_2026_shape(docs: Path, edition: str) -> None:
    schema = derive_schema(docs / edition / ONSESSIONSTART)
    # facts §3, docs-2026: DATA is a list of {connector{4}, session{4}, chat{id}, user{id}}
    assert outline(schema)["data"] == {
        "DATA": {
            "[]": {
                "connector": {"connector_id": None, "line_id": None, "chat_id": None, "user_id": None},
                "session": {"id": None, "closed": None, "parent_id": None, "close_term": None},
                "chat": {"id": None},
                "user": {"id": None},
            }
        }
    }
    assert list(outline(schema)) == ["event", "eventId", "data", "ts", "auth"]
    assert schema["required"] == ["event", "eventId", "data", "ts", "auth"]
    assert schema["$defs"]["chat-params"]["required"] == ["connector", "session", "chat", "user"]
    assert schema["$defs"]["connector"]["required"] == ["connector_id", "line_id", "chat_id", "user_id"]
    assert field(schema, "data", "DATA", "[]", "connector", "line_id")["$ref"] == (
        "../common/wire.json#/$defs/integer"
    )
    assert field(schema, "ts")["$ref"] == "../common/wire.json#/$defs/timestamp"
    # the auth table comes from the include, which has the required-marker footnote of its own
    auth = schema["$defs"]["auth"]
    assert list(auth["properties"]) == [
        "access_token", "expires_in", "scope", "domain", "server_endpoint", "status",
        "client_endpoint", "member_id", "refresh_token", "application_token",
    ]  # fmt: skip
    assert auth["required"] == [
        "scope", "domain", "server_endpoint", "status", "client_endpoint", "member_id", "application_token",
    ]  # fmt: skip
    assert auth["properties"]["member_id"]["x-b24-doc"] == {
        "anchor": "auth",
        "include": "_includes/auth-params-in-events.md",
        "page": ONSESSIONSTART,
        "url": f"https://apidocs.bitrix24.com/{ONSESSIONSTART[:-3]}.html#auth",
        "url_ru": f"https://apidocs.bitrix24.ru/{ONSESSIONSTART[:-3]}.html#auth",
    }


@pytest.mark.parametrize(
    "relative", [pair[0] for pair in HISTORY.values()] + [pair[1] for pair in HISTORY.values()]
)
def test_onsessionstart_2024_page_is_the_docs_2024_shape(docs: Path, relative: str) -> None:
    schema = _history(docs, relative)
    # facts §3, docs-2024: connector{4}, chat{id}, line{id, name}, the children listed as bullets in the cells
    assert outline(schema) == {
        "event": None,
        "eventId": None,
        "data": {
            "DATA": {
                "connector": {"connector_id": None, "line_id": None, "chat_id": None, "user_id": None},
                "chat": {"id": None},
                "line": {"id": None, "name": None},
            }
        },
        "ts": None,
        "auth": None,  # the 2024 row does not link its table: that table is kept as unlinked-1
    }
    # the table types DATA "object" though its example is a list: the overlay's business (facts §8)
    assert field(schema, "data", "DATA")["type"] == "object"
    line_id = field(schema, "data", "DATA", "connector", "line_id")
    assert line_id["x-b24-doc"]["bullet"] is True
    assert line_id["x-b24-required"] == "unknown"
    assert field(schema, "data", "DATA", "line")["x-b24-required"] is True
    assert list(schema["$defs"]["unlinked-1"]["properties"])[-1] == "application_token"


def _json_example(page: Path) -> Any:
    text = page.read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert block is not None
    return json.loads(block.group(1))


@pytest.mark.parametrize("edition", [RU, EN])
def test_the_page_example_validates_against_the_derived_schema(docs: Path, edition: str) -> None:
    """The current OnSessionStart page's example fits its own tables (with the committed wire scalars)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    wire_file = Path(__file__).resolve().parent.parent / "schemas" / "common" / "wire.json"
    if not wire_file.is_file():
        pytest.skip("schemas/common/wire.json is not committed yet")
    wire = Resource.from_contents(json.loads(wire_file.read_text(encoding="utf-8")))
    schema = derive_schema(docs / edition / ONSESSIONSTART)
    registry = Registry().with_resource(wire.id() or "", wire)
    validator = Draft202012Validator(schema, registry=registry)
    example = _json_example(docs / edition / ONSESSIONSTART)
    assert list(validator.iter_errors(example)) == []
    # and a real difference is caught: the session block missing
    del example["data"]["DATA"][0]["session"]
    errors = list(validator.iter_errors(example))
    assert [e.message for e in errors] == ["'session' is a required property"]


def test_every_markdown_page_in_the_docs_parses(docs: Path) -> None:
    """Beyond event pages: method pages, tutorials, includes, data-types (tabs, nested tables, code)."""
    pages = sorted(docs.rglob("*.md"))
    assert len(pages) > 100
    tables = 0
    for page in pages:
        parts = page.relative_to(docs).parts
        root = docs / (parts[1] if parts[0] == "_history" else parts[0])
        tables += sum(len(s.table.fields) for s in parse_page(page, docs_root=root).sections)
    assert tables > 1000
