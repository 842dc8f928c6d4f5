"""mock_portal.methods: the committed method specs and the check of a call against its spec."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mock_portal import methods
from mock_portal.errors import UnknownNameError
from mock_portal.methods import CallError, MethodSpec, Param, check_call


def _spec(*params: Param, scope: tuple[str, ...] = ("crm",), known: bool = True) -> MethodSpec:
    return MethodSpec("x.y.add", "api-reference/x.md", scope, "write", params, params_known=known)


# ------------------------------------------------------------------------------------------- the data


def test_every_documented_method_has_a_spec() -> None:
    names = methods.names()
    assert len(names) == 1655
    deal = methods.spec("crm.deal.add")
    assert (deal.scope, deal.kind) == (("crm",), "write")
    assert [p.name for p in deal.params] == ["fields", "params"]
    assert "TITLE" in {f.name for f in deal.params[0].fields}
    assert deal.url == "https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-add.html"
    assert methods.spec("crm.deal.list").kind == "read"
    assert methods.find("CRM.Deal.Add") is deal  # the portal matches method names in any case
    assert methods.find("crm.deal.nosuch") is None
    with pytest.raises(UnknownNameError, match=re.escape("did you mean 'crm.deal.add'")):
        methods.spec("crm.deal.ad")


def test_specs_record_their_agreement_with_the_docs_simulator() -> None:
    verdicts = [m.simulator for m in methods.specs().values()]
    agrees = sum(v == "agrees" for v in verdicts)
    absent = sum(v == "absent" for v in verdicts)
    assert absent == 93  # pages the simulator left out (no parameters: server.time, crm.contact.fields...)
    assert agrees > 1100
    assert all(isinstance(v, list) and v for v in verdicts if v not in ("agrees", "absent"))


def test_a_method_without_parameters_has_none() -> None:
    server_time = methods.spec("server.time")
    assert server_time.params == ()
    assert server_time.params_known


# ------------------------------------------------------------------------------------------- check_call


def test_scope_is_checked_first_and_any_named_scope_suffices() -> None:
    spec = _spec(Param("id", "integer", True), scope=("imopenlines", "imbot"))
    refused = check_call(spec, {}, ["crm"])
    assert refused == CallError(
        "insufficient_scope", "The request requires higher privileges than provided by the access token", 403
    )
    assert refused.body()["error"] == "insufficient_scope"
    assert check_call(spec, {"id": "1"}, ["imbot"]) is None
    # the basic scope, or a scope that is no scope name, demands nothing
    assert check_call(_spec(scope=()), {}, []) is None
    assert check_call(_spec(scope=("в зависимости от точки встраивания",)), {}, []) is None


@pytest.mark.parametrize("value", [None, "", [], {}])
def test_a_required_parameter_missing_or_empty_is_an_argument_error(value: Any) -> None:
    spec = _spec(Param("fields", "object", True))
    given = {} if value is None else {"fields": value}
    assert check_call(spec, given, ["crm"]) == CallError(
        "ERROR_ARGUMENT", "Argument 'fields' is null or empty", 400
    )


def test_only_a_marked_parameter_is_demanded() -> None:
    spec = _spec(Param("a", "integer", False), Param("b", "integer", "unknown"))
    assert check_call(spec, {}, ["crm"]) is None


@pytest.mark.parametrize(
    ("declared", "value", "ok"),
    [
        ("integer", "42", True),
        ("integer", 42, True),
        ("integer", "-3", True),
        ("integer", "abc", False),
        ("integer", {"a": 1}, False),
        ("integer[]", ["1", "2"], True),
        ("integer[]", {"0": "1"}, True),  # a PHP list arrives as keys 0..n-1
        ("integer[]", "1", False),
        ("double", "12.50", True),
        ("double", "12,50", False),
        ("boolean", "Y", True),
        ("boolean", True, True),
        ("boolean", "maybe", False),
        ("object", {"TITLE": "x"}, True),
        ("object", '{"BLOCKS": []}', True),  # JSON text, as the portal decodes ATTACH and KEYBOARD
        ("object", "plain", False),
        ("object | string", "plain", True),
        ("string", "x", True),
        ("string", 5, True),
        ("crm_status", {"odd": 1}, True),  # a domain type: its values are documented elsewhere
        ("catalog_product.id", "abc", False),
    ],
)
def test_values_of_the_wrong_kind_are_argument_errors(declared: str, value: Any, ok: bool) -> None:
    error = check_call(_spec(Param("p", declared, False)), {"p": value}, ["crm"])
    assert (error is None) == ok
    if not ok:
        assert error is not None
        assert (error.code, error.status) == ("ERROR_ARGUMENT", 400)
        assert error.description.startswith("The value of an argument 'p' must be ")


def test_names_match_in_any_case_and_undocumented_parameters_are_ignored() -> None:
    spec = _spec(Param("fields", "object", True, (Param("TITLE", "string", True),)))
    assert check_call(spec, {"FIELDS": {"TITLE": "x"}, "extra": "kept"}, ["crm"]) is None
    missing = check_call(spec, {"fields": {"OTHER": "x"}}, ["crm"])
    assert missing == CallError("ERROR_ARGUMENT", "Argument 'fields[TITLE]' is null or empty", 400)


def test_a_page_that_does_not_state_its_parameters_demands_none() -> None:
    spec = _spec(Param("id", "integer", True), known=False)
    assert check_call(spec, {}, ["crm"]) is None


def test_only_undocumented_methods_are_not_found() -> None:
    assert methods.find("crm.deal.add") is not None
    error = methods.not_found("crm.deal.nosuch")
    assert error.body() == {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
    assert error.status == 404


def _valid(param: Param) -> Any:
    allowed = methods._types(param.type) or {"string"}
    if "object" in allowed or "array" in allowed:
        return {f.name: _valid(f) for f in param.fields if f.required is True} or {"x": "1"}
    if "integer" in allowed or "number" in allowed:
        return "1"
    if "boolean" in allowed:
        return "Y"
    return "x"


def test_a_call_with_every_required_parameter_is_never_refused() -> None:
    """No false refusal: for every documented method, a call that gives each parameter the page marks
    required a value of its type, by an app with the method's scopes, passes."""
    refused = {}
    for method in methods.specs().values():
        params = {p.name: _valid(p) for p in method.params if p.required is True}
        error = check_call(method, params, method.scope)
        if error is not None:
            refused[method.name] = error.description
    assert refused == {}
