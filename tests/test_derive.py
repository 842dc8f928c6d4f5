"""mock_portal.derive on small pages written for each construct of the docs' dialect (facts §8)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mock_portal.cli import run
from mock_portal.derive import derive_schema, dumps_schema, parse_page
from mock_portal.errors import DeriveError, MockPortalError
from tests.support.derive import field, outline

DIALECT = Path(__file__).parent / "data" / "dialect"
EVENTS = DIALECT / "events"


def derive(name: str) -> dict[str, Any]:
    return derive_schema(EVENTS / name)


def test_plain_table_rows_span_lines_and_paragraphs() -> None:
    schema = derive("table-basic.md")
    assert list(outline(schema)) == ["event", "ts"]
    assert field(schema, "event")["description"] == "Event code.\n\nSpans two paragraphs"
    assert field(schema, "ts")["x-b24-doc-type"] == "timestamp"
    assert schema["title"] == "A plain table"
    assert schema["x-b24-doc"] == {"page": "events/table-basic.md"}


def test_cells_split_only_outside_code_escapes_fences_and_nested_tables() -> None:
    schema = derive("cells.md")
    assert list(outline(schema)) == ["code", "escaped", "fenced", "nested", "tight", "listed"]
    assert "`a | b`, and ```x | y``` too" in field(schema, "code")["description"]
    assert field(schema, "escaped")["description"] == "An escaped | pipe stays in the cell"
    assert "$a = $b | $c;" in field(schema, "fenced")["description"]
    nested = field(schema, "nested")["description"]
    assert "|| a | b ||" in nested
    assert nested.endswith("After it")
    assert field(schema, "tight")["x-b24-doc-type"] == "string"
    # bullets under a scalar are values, not children
    listed = field(schema, "listed")
    assert "properties" not in listed
    assert "- `L` — local" in listed["description"]


def test_table_indented_inside_list_tabs() -> None:
    schema = derive("tabs.md")
    assert outline(schema) == {"inside_tabs": None}
    assert field(schema, "inside_tabs")["$ref"] == "../common/wire.json#/$defs/integer"


def test_russian_header_with_separate_type_column_and_extra_column() -> None:
    schema = derive("columns.md")
    assert list(outline(schema)) == ["ID", "TITLE"]
    identifier = field(schema, "ID")
    assert identifier["x-b24-doc-type"] == "integer"
    assert identifier["description"] == "Идентификатор"
    assert identifier["x-b24-doc-columns"] == {"пример": "`42`"}


def test_required_markers_count_where_the_footnote_is_included() -> None:
    schema = derive("required-known.md")
    assert list(outline(schema)) == ["star", "sup", "plain"]
    assert schema["required"] == ["star", "sup"]
    assert [field(schema, name)["x-b24-required"] for name in ("star", "sup", "plain")] == [True, True, False]


def test_required_markers_are_unknown_without_the_footnote() -> None:
    schema = derive("required-unknown.md")
    assert "required" not in schema
    assert {field(schema, name)["x-b24-required"] for name in ("star", "plain")} == {"unknown"}


def test_type_forms() -> None:
    schema = derive("types.md")
    assert (
        field(schema, "linked")["$ref"]
        == field(schema, "plain")["$ref"]
        == "../common/wire.json#/$defs/integer"
    )
    listed = field(schema, "listed")
    assert listed["type"] == "array"
    assert listed["items"] == {"$ref": "../common/wire.json#/$defs/integer"}
    maybe = field(schema, "maybe")
    assert maybe["anyOf"] == [{"$ref": "../common/wire.json#/$defs/string"}, {"type": "null"}]
    assert maybe["x-b24-doc-type"] == "string | null"
    domain = field(schema, "domain")  # defined by data-types.md, no mapping: no constraint, type kept
    assert domain["x-b24-doc-type"] == "gadget"
    assert not {"type", "$ref", "anyOf"} & set(domain)
    assert "x-b24-doc-type" not in field(schema, "untyped")


def test_nesting_is_resolved_by_anchor_not_heading_text() -> None:
    schema = derive("anchors.md")
    assert outline(schema) == {
        "data": {"inner": None},  # under the heading "Parameter extra {#payload}"
        "items": {"[]": {"id": None}},
        "extra": {"[]": {"code": None}},
        "empty": None,  # its heading has prose only
    }
    assert schema["properties"]["data"]["$ref"] == "#/$defs/payload"
    assert schema["$defs"]["payload"]["x-b24-doc"] == {"anchor": "payload", "page": "events/anchors.md"}
    assert schema["$defs"]["item"]["title"] == "Parameter payload"
    assert field(schema, "items", "[]", "id")["x-b24-doc"]["anchor"] == "item"


def test_children_listed_as_bullets_in_the_parent_cell() -> None:
    schema = derive("bullets.md")
    assert outline(schema) == {"connector": {"connector_id": None, "line_id": None}, "status": None}
    connector = field(schema, "connector")
    assert connector["description"] == "Connector data:"
    child = field(schema, "connector", "line_id")
    assert child["description"] == "open line id"
    assert child["x-b24-required"] == "unknown"
    assert child["x-b24-doc"]["bullet"] is True
    assert "type" not in child


def test_included_table_is_spliced_relative_to_the_including_page() -> None:
    schema = derive("includes.md")
    assert outline(schema) == {"auth": {"domain": None, "access_token": None}}
    domain = field(schema, "auth", "domain")
    assert domain["x-b24-doc"] == {
        "anchor": "auth",
        "include": "_includes/auth.md",
        "page": "events/includes.md",
    }
    # the include has the footnote itself, the page does not
    assert domain["x-b24-required"] is True
    assert field(schema, "auth", "access_token")["x-b24-required"] is False
    assert schema["properties"]["auth"]["x-b24-required"] == "unknown"


def test_notes_and_conditionals_are_prose_and_cut_keeps_its_content() -> None:
    schema = derive("prose.md")
    assert outline(schema) == {"kept": None}
    assert "$defs" not in schema


def test_combined_page() -> None:
    schema = derive("combined.md")
    assert outline(schema) == {
        "event": None,
        "data": {
            "DATA": {
                "[]": {
                    "line": {"id": None, "name": None},
                    "session": {"id": None, "closed": None},
                    "note": None,
                }
            },
            "MODE": None,
        },
        "ts": None,
        "auth": {"domain": None, "access_token": None},
    }
    assert schema["required"] == ["event", "data", "ts", "auth"]
    assert schema["$defs"]["data"]["required"] == ["DATA", "MODE"]
    assert schema["$defs"]["element"]["required"] == ["line"]
    assert schema["$defs"]["session"]["required"] == ["id"]
    assert field(schema, "data", "MODE")["description"] == "`Y` or `N` | nothing"
    assert sorted(schema["$defs"]) == ["auth", "data", "element", "session"]


def test_parse_page_exposes_tables_and_anchors() -> None:
    parsed = parse_page(EVENTS / "anchors.md")
    assert parsed.title == "Nesting by anchor"
    assert [s.anchor for s in parsed.sections] == [None, "payload", "item", "extra-info"]
    assert parsed.anchors["empty"] is None
    assert [f.name for f in parsed.sections[0].table.fields] == ["data", "items", "extra", "empty"]
    assert parsed.sections[0].table.fields[1].links == ("item",)


def test_schema_id_and_its_wire_refs_follow_the_requested_id() -> None:
    deep = derive_schema(EVENTS / "tabs.md", schema_id="https://b24-contract.invalid/schemas/a/b/c.json")
    assert field(deep, "inside_tabs")["$ref"] == "../../common/wire.json#/$defs/integer"
    foreign = derive_schema(EVENTS / "tabs.md", schema_id="urn:example:tabs")
    assert foreign["$id"] == "urn:example:tabs"
    assert (
        field(foreign, "inside_tabs")["$ref"]
        == "https://b24-contract.invalid/schemas/common/wire.json#/$defs/integer"
    )


def test_derived_schema_is_valid_json_schema_2020_12() -> None:
    from jsonschema import Draft202012Validator

    for page in sorted(EVENTS.glob("*.md")):
        Draft202012Validator.check_schema(derive_schema(page))


def test_dumps_schema_writes_sorted_two_space_utf8_with_newline() -> None:
    schema = derive("columns.md")
    text = dumps_schema(schema)
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    assert "Идентификатор" in text  # not \u-escaped
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text.splitlines()[1].startswith('  "')
    assert not text.splitlines()[1].startswith("   ")
    assert dumps_schema(json.loads(text)) == text


# --- bad input: one clear error naming the file and line ---

TABLE_HEAD = "#|\n|| **Name**\n`type` | **Description** ||\n"

BAD_PAGES = {
    "unclosed-table": (TABLE_HEAD + "|| **a**\n`string` | x ||\n", 1, "never closed with |#"),
    "unclosed-row": (TABLE_HEAD + "|| **a**\n`string` | x\n|#\n", 4, "row is never closed"),
    "cell-count": (
        TABLE_HEAD + "|| **a**\n`string` | x | y ||\n|#\n",
        4,
        "row has 3 cells, the table header has 2",
    ),
    "bad-name": (
        TABLE_HEAD + "|| name without bold\n`string` | x ||\n|#\n",
        4,
        "cannot read a parameter name",
    ),
    "bad-type": (TABLE_HEAD + "|| **a**\n`not a type!` | x ||\n|#\n", 4, "cannot read the type"),
    "unknown-type": (TABLE_HEAD + "|| **a**\n`strnig` | x ||\n|#\n", 4, "unknown type 'strnig'"),
    "missing-anchor": (
        TABLE_HEAD + "|| **a**\n`object` | [below](#dat) ||\n|#\n\n## Data {#data}\n",
        4,
        "no heading on the page carries {#dat}; did you mean #data?",
    ),
    "duplicate-anchor": ("## A {#x}\n\n## B {#x}\n" + TABLE_HEAD + "|#\n", 3, "anchor {#x} is used twice"),
    "duplicate-field": (
        TABLE_HEAD + "|| **a** `string` | x ||\n|| **a** `string` | y ||\n|#\n",
        5,
        "'a' appears twice",
    ),
    "unknown-directive": ("{% frobnicate %}\n", 1, "unknown directive {% frobnicate %}"),
    "unclosed-note": ('text\n{% note info "" %}\nprose\n', 2, "never closed (no {% endnote %})"),
    "stray-end": ("{% endif %}\n", 1, "does not close anything"),
    "missing-include": (
        "{% include [x](../_includes/nothere.md) %}\n",
        1,
        "included file ../_includes/nothere.md not found",
    ),
    "stray-table-end": ("|#\n", 1, "without a table start"),
    "text-in-table": ("#|\nstray text\n|#\n", 2, "text outside a table row"),
    "no-table": ("# Only prose\n", None, "no parameter table on the page"),
    "cycle": (
        TABLE_HEAD
        + "|| **a**\n`object` | [below](#a) ||\n|#\n\n## A {#a}\n\n"
        + TABLE_HEAD
        + "|| **b**\n`object` | [up](#a) ||\n|#\n",
        13,
        "a structure that contains it (a cycle)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
def test_bad_page_gives_one_line_naming_file_and_line(case: str, tmp_path: Path) -> None:
    text, line, fragment = BAD_PAGES[case]
    page = tmp_path / "events" / f"{case}.md"
    page.parent.mkdir()
    page.write_text(text, encoding="utf-8")
    with pytest.raises(DeriveError) as caught:
        derive_schema(page)
    assert fragment in str(caught.value)
    assert caught.value.line == line
    assert caught.value.page == str(page)
    assert "\n" not in str(caught.value)
    # and through the CLI: exit 2, one line, no traceback
    out, err = io.StringIO(), io.StringIO()
    assert run(["derive", str(page)], out, err) == 2
    assert out.getvalue() == ""
    where = f"{page}:{line}" if line is not None else str(page)
    assert err.getvalue() == f"mock-portal: error: {where}: {caught.value.message}\n"


def test_include_cycle_names_the_include(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("{% include [b](b.md) %}\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("\n{% include [a](a.md) %}\n", encoding="utf-8")
    with pytest.raises(DeriveError, match=r"b\.md:2: include cycle through a\.md"):
        derive_schema(tmp_path / "a.md")


def test_binary_and_oversized_pages_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"# ok\n\xff\xfe\n")
    with pytest.raises(DeriveError, match=r"binary\.md:2: not UTF-8 text"):
        derive_schema(binary)
    huge = tmp_path / "huge.md"
    huge.write_bytes(b"x" * 1_000_001)
    with pytest.raises(DeriveError, match="over the 1000000-byte limit"):
        derive_schema(huge)


def test_deeply_nested_includes_are_refused(tmp_path: Path) -> None:
    for number in range(12):
        (tmp_path / f"p{number}.md").write_text(f"{{% include [n](p{number + 1}.md) %}}\n", encoding="utf-8")
    (tmp_path / "p12.md").write_text("end\n", encoding="utf-8")
    with pytest.raises(DeriveError, match="includes nested deeper than 8"):
        derive_schema(tmp_path / "p0.md")


def test_derive_error_is_a_project_error() -> None:
    assert issubclass(DeriveError, MockPortalError)
    assert issubclass(DeriveError, ValueError)


# --- CLI ---


def test_cli_prints_the_schema_as_dumps_schema_does() -> None:
    out, err = io.StringIO(), io.StringIO()
    page = EVENTS / "combined.md"
    assert run(["derive", str(page)], out, err) == 0
    assert err.getvalue() == ""
    assert out.getvalue() == dumps_schema(derive_schema(page))


def test_cli_id_and_docs_root(tmp_path: Path) -> None:
    # a page copied away from its tree finds its includes under --docs-root, as _history/ pages do
    copy = tmp_path / "events" / "includes.md"
    copy.parent.mkdir()
    copy.write_bytes((EVENTS / "includes.md").read_bytes())
    out, err = io.StringIO(), io.StringIO()
    assert run(["derive", str(copy)], out, err) == 2
    assert "pass --docs-root" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    code = run(["derive", str(copy), "--docs-root", str(DIALECT), "--id", "urn:x"], out, err)
    assert code == 0, err.getvalue()
    schema = json.loads(out.getvalue())
    assert schema["$id"] == "urn:x"
    assert outline(schema) == {"auth": {"domain": None, "access_token": None}}


def test_cli_missing_file(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    missing = tmp_path / "nothere.md"
    assert run(["derive", str(missing)], out, err) == 2
    assert err.getvalue() == f"mock-portal: error: {missing}: no such file\n"


def test_console_script_runs_derive(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("mock-portal")
    if not script.exists():
        pytest.skip("the mock-portal console script is not installed beside this interpreter")
    ok = subprocess.run([str(script), "derive", str(EVENTS / "bullets.md")], capture_output=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.decode("utf-8") == dumps_schema(derive("bullets.md"))
    bad = tmp_path / "bad.md"
    bad.write_text("#|\n", encoding="utf-8")
    failed = subprocess.run([str(script), "derive", str(bad)], capture_output=True, check=False)
    assert failed.returncode == 2
    assert failed.stderr.decode("utf-8").count("\n") == 1
    assert b"Traceback" not in failed.stderr


def test_importing_derive_stays_light() -> None:
    code = (
        "import sys, mock_portal.derive; "
        "print(sorted(m for m in ('jsonschema', 'aiohttp', 'faker') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------- method pages


def test_a_method_page_gives_its_parameters_scope_and_kind() -> None:
    from mock_portal.derive import derive_method, method_kind, method_name

    page = DIALECT / "methods" / "thing-add.md"
    assert method_name(page.read_text(encoding="utf-8")) == "x.thing.add"
    spec = derive_method(page, "x.thing.add", "methods/thing-add.md")
    assert spec["scope"] == ["crm"]
    assert spec["kind"] == "write"
    assert spec["deprecated"] is True
    # the parameters section only (never the response table), a table linked by the heading naming its
    # parameter, and a dotted row below its parent
    assert spec["params"] == [
        {"name": "id", "type": "integer", "required": True},
        {
            "name": "fields",
            "type": "object",
            "required": True,
            "fields": [
                {"name": "TITLE", "type": "string", "required": True},
                {"name": "COUNT", "type": "integer", "required": False},
                {"name": "EXTRA", "type": "string", "required": False},
            ],
        },
    ]
    assert method_kind("crm.deal.getFields") == method_kind("disk.file.getExternalLink") == "read"
    assert method_kind("crm.deal.update") == "write"
    # nouns and questions that only read
    assert method_kind("crm.status.entity.items") == method_kind("user.current") == "read"
    assert method_kind("catalog.catalog.isOffers") == method_kind("server.time") == "read"


def test_a_method_page_without_parameters() -> None:
    from mock_portal.derive import derive_method

    spec = derive_method(DIALECT / "methods" / "thing-time.md", "x.thing.time", "methods/thing-time.md")
    assert (spec["scope"], spec["kind"], spec["params"]) == ([], "read", [])
    assert "params_unknown" not in spec
