"""A method page's error table: the page's own answer to a call missing a required parameter."""

from __future__ import annotations

from pathlib import Path

from mock_portal import methods
from mock_portal.derive._errors import missing_param_errors
from mock_portal.methods import CallError, MethodSpec, Missing, Param, check_call

ERRORS = Path(__file__).parent / "data" / "dialect" / "errors"


def test_rows_about_a_missing_parameter_with_the_english_message() -> None:
    rules = missing_param_errors(ERRORS / "ru" / "thing-get.md", ERRORS / "en" / "thing-get.md")
    assert rules == [
        {
            "code": "100",
            "status": 400,
            "params": ["id"],
            "message": "Could not find value for parameter {id}",
        },
        # a row naming no parameter counts only when its code says so, then for any required one
        {
            "code": "ERROR_REQUIRED_PARAMETERS_MISSING",
            "status": 400,
            "params": [],
            "message": "Required fields are empty",
        },
    ]


def test_without_the_english_page_the_message_is_left_out() -> None:
    rules = missing_param_errors(ERRORS / "ru" / "thing-get.md", None)
    assert [(r["code"], "message" in r) for r in rules] == [
        ("100", False),
        ("ERROR_REQUIRED_PARAMETERS_MISSING", False),
    ]


def test_an_old_crm_page_writes_the_status_in_the_code_column() -> None:
    assert missing_param_errors(ERRORS / "ru" / "old-crm-get.md", None) == [
        {"code": "", "status": 400, "params": ["id"], "message": "ID is not defined or invalid"}
    ]


def test_a_page_without_an_error_table_has_no_rules(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page x.y.get\n\n## Параметры метода\n\nБез параметров\n", encoding="utf-8")
    assert missing_param_errors(page, tmp_path / "absent.md") == []


def _spec(*missing: Missing) -> MethodSpec:
    params = (
        Param("id", "integer", True),
        Param("fields", "object", True, (Param("TITLE", "string", True),)),
        Param("mode", "string", True),
    )
    return MethodSpec("x.thing.get", "x.md", ("crm",), "read", params, missing=missing)


def test_check_call_answers_the_pages_row_for_the_parameter() -> None:
    named = Missing("100", 400, ("id",), "Could not find value for parameter {id}")
    generic = Missing("ERROR_REQUIRED_PARAMETERS_MISSING", 400, ())
    spec = _spec(named, generic)
    assert check_call(spec, {}, ["crm"]) == CallError("100", "Could not find value for parameter {id}", 400)
    # a parameter no row names: the row about any required one, its description written by the mock
    no_mode = check_call(spec, {"id": 1, "fields": {"TITLE": "t"}}, ["crm"])
    assert no_mode == CallError("ERROR_REQUIRED_PARAMETERS_MISSING", "Argument 'mode' is null or empty", 400)
    # a nested field is named dotted
    nested = _spec(Missing("", 400, ("fields.TITLE",), "TITLE is required"))
    assert check_call(nested, {"id": 1, "fields": {"X": 1}, "mode": "m"}, ["crm"]) == CallError(
        "", "TITLE is required", 400
    )
    # no row at all: the generic argument error; a wrong kind of value is always the argument error
    assert check_call(_spec(), {}, ["crm"]) == CallError(
        "ERROR_ARGUMENT", "Argument 'id' is null or empty", 400
    )
    assert (
        check_call(spec, {"id": "x", "fields": {"TITLE": "t"}, "mode": "m"}, ["crm"]).code == "ERROR_ARGUMENT"
    )


def test_a_rows_status_outside_4xx_is_read_as_400() -> None:
    assert Missing.from_dict({"code": "X", "status": 200, "params": ["id"]}).status == 400
    assert Missing.from_dict({"code": "X", "status": 403}).status == 403


def test_the_committed_specs_carry_the_pages_rows() -> None:
    specs = methods.specs()
    with_rows = [spec for spec in specs.values() if spec.missing]
    assert len(with_rows) > 600
    price = methods.spec("catalog.price.get")
    assert check_call(price, {}, ["catalog"]) == CallError(
        "100", "Could not find value for parameter {id}", 400
    )
    userfield = methods.spec("crm.deal.userfield.get")
    refused = check_call(userfield, {}, ["crm"])
    assert refused is not None
    assert (refused.code, refused.status) == ("", 400)
    assert refused.description.startswith("ID is not defined or invalid")
