"""mock_portal.derive on the real doc pages in shared/docs-full (every event page, both editions) and on the
2024 history in shared/docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mock_portal.derive import (
    compare_editions,
    derive_event_schema,
    derive_schema,
    event_pages,
    parse_page,
    with_prose,
)
from tests.conftest import shared_dir
from tests.support.derive import field, outline, without_prose

RU, EN = "b24-rest-docs", "b24restdocs"
ONSESSIONSTART = "api-reference/imopenlines/openlines/events/on-session-start.md"


def _event_pages() -> list[str]:
    found = shared_dir()
    if found is None or not (found / "docs-full").is_dir():
        return []
    return sorted(page.page for page in event_pages(found / "docs-full").values())


EVENT_PAGES = _event_pages()
HISTORY = {  # first and last snapshots of the 2024 page in each language (docs/SOURCES.md)
    "first": (f"_history/{RU}/943900a7fe/{ONSESSIONSTART}", f"_history/{EN}/69f3c204e0/{ONSESSIONSTART}"),
    "last": (f"_history/{RU}/985430072a/{ONSESSIONSTART}", f"_history/{EN}/f98fd2465a/{ONSESSIONSTART}"),
}


@pytest.fixture(scope="session")
def docs(b24_shared_dir: Path) -> Path:
    """The complete docs, both editions."""
    return b24_shared_dir / "docs-full"


@pytest.fixture(scope="session")
def history(b24_shared_dir: Path) -> Path:
    """The curated docs with the 2024 revisions of the OnSessionStart page (``_history/``)."""
    return b24_shared_dir / "docs"


def _history(docs: Path, relative: str) -> dict[str, Any]:
    edition = relative.split("/")[1]
    return derive_schema(docs / relative, docs_root=docs / edition)


def test_every_event_of_the_docs_has_its_page(docs: Path) -> None:
    """162 event codes appear in the example payloads of the handler sections (docs-full/SOURCES.md); 27 more
    events have outdated pages that describe only their data (old invoices, products, measures...)."""
    pages = event_pages(docs)
    assert len(pages) == 189
    assert sum(not page.outdated for page in pages.values()) == 162
    assert pages["ONCRMINVOICEADD"].outdated  # its title misspells it onCrmInvoceAdd
    assert pages["ONSESSIONSTART"].page == ONSESSIONSTART
    assert pages["CATALOG.PRODUCT.ON.ADD"].written == "CATALOG.PRODUCT.ON.ADD"
    assert pages["ONCRMACTIVITYADD"].written == "onCrmActivityAdd"  # the portal sends codes upper case
    assert all(page.editions == (RU, EN) for page in pages.values())


@pytest.mark.parametrize("page", EVENT_PAGES)
def test_every_event_page_derives_and_both_editions_agree_in_structure(docs: Path, page: str) -> None:
    russian = derive_event_schema(docs / RU / page)
    english = derive_event_schema(docs / EN / page)
    assert russian["x-b24-source"]["language"] == "ru"
    assert english["x-b24-source"]["language"] == "en"
    assert russian["properties"], "the top-level table has fields"
    # field names, types, required markers and nesting; prose is the translation's own
    assert compare_editions(russian, english) == []
    assert without_prose(russian) == without_prose(english)


def test_a_translation_that_differs_is_told_field_by_field(docs: Path, tmp_path: Path) -> None:
    page = "api-reference/crm/deals/events/on-crm-deal-add.md"
    russian = derive_schema(docs / RU / page)
    text = (docs / EN / page).read_text(encoding="utf-8")
    assert "|| **ID**\n[`integer`]" in text
    changed = text.replace("|| **ID**\n[`integer`]", "|| **ID**\n[`string`]", 1)
    changed = changed.replace(
        "|| **ts**", "|| **EXTRA**\n[`string`](../../../data-types.md) | New ||\n|| **ts**", 1
    )
    english_page = tmp_path / EN / page
    english_page.parent.mkdir(parents=True)
    english_page.write_text(changed, encoding="utf-8")
    english = derive_schema(english_page, docs_root=docs / EN)
    differences = {(d.path, d.aspect): (d.ru, d.en) for d in compare_editions(russian, english)}
    assert differences[("data.FIELDS.ID", "type")] == ("integer", "string")
    assert differences[("EXTRA", "only-en")][0] is None
    # the canonical structure keeps its own; only prose crosses over, where the node exists in both
    merged = with_prose(russian, english)
    assert merged["properties"]["data"]["description"] == english["properties"]["data"]["description"]
    assert "EXTRA" not in merged["properties"]


@pytest.mark.parametrize("snapshot", sorted(HISTORY))
def test_history_pages_give_the_same_schema_in_both_languages(history: Path, snapshot: str) -> None:
    russian, english = (_history(history, relative) for relative in HISTORY[snapshot])
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
def test_onsessionstart_2024_page_is_the_docs_2024_shape(history: Path, relative: str) -> None:
    schema = _history(history, relative)
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


@pytest.mark.slow
def test_every_markdown_page_of_the_curated_docs_parses(history: Path) -> None:
    """Beyond event pages: method pages, tutorials, includes, data-types (tabs, nested tables, code)."""
    pages = sorted(history.rglob("*.md"))
    assert len(pages) > 100
    tables = 0
    for page in pages:
        parts = page.relative_to(history).parts
        root = history / (parts[1] if parts[0] == "_history" else parts[0])
        tables += sum(len(s.table.fields) for s in parse_page(page, docs_root=root).sections)
    assert tables > 1000
