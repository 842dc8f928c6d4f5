"""Every documented method over real HTTP: a spec-true answer or error, never ERROR_METHOD_NOT_FOUND.

One portal behind the real server for the module; every documented method is called twice through it: with no
parameters, and with parameters that satisfy its spec. Implemented methods answer with their own state, the
seeded reads from the seeded dataset, every other method with the honest documented-format refusal; only a
name the docs lack gets ERROR_METHOD_NOT_FOUND.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mock_portal import methods
from mock_portal.methods import MethodSpec, Param, check_call
from mock_portal.portal import Clock, Portal, PortalError
from mock_portal.rest import METHODS
from mock_portal.rest.registry import Caller
from mock_portal.rest.seeded import SEEDED, SEEDED_FILE, dataset
from mock_portal.rest.transport import handle_rest_path
from mock_portal.rest.unsimulated import NOT_SIMULATED, status_of
from mock_portal.restkit import Page
from mock_portal.server import PortalServer

ALL_SCOPES = sorted(
    {
        scope
        for spec in methods.specs().values()
        for scope in spec.scope
        if scope.isascii() and " " not in scope
    }
    | {"user", "user_basic", "user_brief", "imconnector"}
)


class Site:
    """The module's server, its portal, an app holding every scope and a client."""

    def __init__(self, server: PortalServer, client: httpx.Client, client_id: str, token: str) -> None:
        self.server = server
        self.client = client
        self.client_id = client_id
        self.token = token
        self.portal = server.portal

    def call(
        self, method: str, params: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        body = {**(params or {}), "auth": token or self.token}
        return self.client.post(f"/{self.portal.domain}/rest/{method}.json", json=body)

    def seeded(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The seeded answer of ``method``: over HTTP while the portal does not implement it, else (shadowed
        by an implementation with state of its own) from its seeded handler in process."""
        if status_of(method) == "seeded":
            return self.call(method, params).json()
        caller = Caller(self.portal, self.client_id, 1, tuple(ALL_SCOPES), self.token, "POST")
        try:
            result = SEEDED[method].handler(caller, dict(params or {}))
        except PortalError as exc:
            return {"error": exc.code, "error_description": exc.description}
        return result.envelope() if isinstance(result, Page) else {"result": result}

    def scoped_token(self, scopes: str) -> str:
        _, token, _ = self.portal.install_app(None, scopes=scopes)
        return token.access_token


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    clock = Clock(start=1_750_000_000.0)  # a fixed clock: no method time budget is ever spent
    portal = Portal("methods.example.com", seed=7, clock=clock, rate_limit=False)
    with PortalServer([portal], clock=clock) as server:
        app, token, _ = portal.install_app(None, scopes=ALL_SCOPES)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield Site(server, client, app.client_id, token.access_token)
        portal.close()


# ------------------------------------------------------------------------------- params that fit the spec
_SCALARS = {"integer": 1, "number": 1, "boolean": "Y", "string": "1"}


def _value(param: Param) -> Any:
    """A value of ``param``'s documented type (a domain type takes any text), with its required fields."""
    terms = (param.type or "").replace("|", " ").split()
    first = terms[0] if terms else "string"
    if first.endswith("[]") or first == "array":
        return ["1"] if not param.fields else [_sample(param.fields) or {"ID": "1"}]
    if first == "object" or param.fields:
        return _sample(param.fields) or {"ID": "1"}
    if first in ("integer", "int", "user", "timestamp") or first.endswith(".id"):
        return _SCALARS["integer"]
    if first in ("double", "float", "number"):
        return _SCALARS["number"]
    if first in ("boolean", "bool"):
        return _SCALARS["boolean"]
    return "1"


def _sample(params: tuple[Param, ...]) -> dict[str, Any]:
    return {p.name: _value(p) for p in params if p.required is True}


def _fitting(spec: MethodSpec) -> dict[str, Any]:
    return _sample(spec.params) if spec.params_known else {}


def test_the_sample_parameters_pass_every_spec() -> None:
    """The generator below is right: a call with them is one the spec's check lets through."""
    refused = {
        name: error
        for name, spec in methods.specs().items()
        if (error := check_call(spec, _fitting(spec), ALL_SCOPES)) is not None
    }
    assert refused == {}


# ------------------------------------------------------------------------------- every documented method


def _portal_format(status: int, body: Any, implemented: bool) -> str | None:
    """Why an answer is not in the portal's format, or None."""
    if not isinstance(body, dict):
        return f"body {body!r:.80}"
    error = set(body) == {"error", "error_description"}
    if status == 200 and not error:
        return None if {"result", "time"} <= set(body) else f"success body {body!r:.80}"
    # imconnector.register answers its refusals with HTTP 200, as its page says
    if not (400 <= status < 500 or (status == 200 and implemented)):
        return f"status {status}"
    if not error or not isinstance(body["error"], str) or not isinstance(body["error_description"], str):
        return f"error body {body!r:.80}"
    if body["error"] == "ERROR_METHOD_NOT_FOUND":
        return "ERROR_METHOD_NOT_FOUND for a documented method"
    return None


def _judge(spec: MethodSpec, params: dict[str, Any], status: int, body: Any) -> str | None:
    """What is wrong with the answer to ``spec`` called with ``params``, or None."""
    how = status_of(spec.name)
    wrong = _portal_format(status, body, how == "implemented")
    if wrong is not None or how != "honest-error":
        return wrong
    # never a success: the spec's refusal (a required parameter missing: the page's own error for it), or
    # for a call the spec lets through, the honest refusal naming the page
    refusal = check_call(spec, params, ALL_SCOPES)
    if refusal is not None:
        want = (refusal.status, refusal.body())
        return None if (status, body) == want else f"{(status, body)}, expected {want}"
    if (status, body["error"]) != (400, NOT_SIMULATED):
        return f"{(status, body)}, expected {NOT_SIMULATED}"
    if spec.url not in body["error_description"]:
        return f"the refusal does not name its page: {body['error_description']}"
    return None


@pytest.mark.slow
def test_every_documented_method_gets_a_spec_true_answer_or_error(site: Site) -> None:
    """Each method twice (no parameters, fitting ones) through the REST core the server runs, in process."""
    problems: list[str] = []
    answered: Counter[str] = Counter()
    for name, spec in sorted(methods.specs().items()):
        answered[status_of(name)] += 1
        for params in ({}, _fitting(spec)):
            body = json.dumps({**params, "auth": site.token}).encode()
            response = handle_rest_path(
                site.portal,
                f"{name}.json",
                http_method="POST",
                query="",
                body=body,
                content_type="application/json",
            )
            wrong = _judge(spec, params, response.status, response.body)
            if wrong is not None:
                problems.append(f"{name} {params}: {wrong}")
    assert problems == []
    assert sum(answered.values()) == len(methods.specs()) == 1655
    assert answered["seeded"] == len(set(SEEDED) - set(METHODS))
    assert answered["implemented"] >= 52


def test_every_documented_method_over_http_in_batches(site: Site) -> None:
    """The same over the real server: every documented method as a batch command, 50 to a request."""
    names = sorted(methods.specs())
    problems: list[str] = []
    for offset in range(0, len(names), 50):
        chunk = names[offset : offset + 50]
        commands = {f"c{i}": name for i, name in enumerate(chunk)}
        response = site.call("batch", {"cmd": commands, "halt": 0})
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        for key, name in commands.items():
            spec = methods.spec(name)
            if key in result["result_error"]:
                wrong = _judge(spec, {}, 400, result["result_error"][key])
            elif key in result["result"]:
                wrong = None if status_of(name) != "honest-error" else "a success"
            else:
                wrong = "no answer in the batch"
            if wrong is not None:
                problems.append(f"{name}: {wrong}")
    assert problems == []


def test_a_name_the_docs_lack_is_method_not_found(site: Site) -> None:
    for name in ("crm.deal.nosuch", "no.such.method", "crm.deal.add.extra"):
        response = site.call(name)
        assert (response.status_code, response.json()) == (
            404,
            {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
        )
    # a documented name in any case is found, as the portal matches names
    assert site.call("CRM.Status.List").status_code == 200


def test_a_documented_method_beyond_the_apps_scopes_is_refused(site: Site) -> None:
    im_only = site.scoped_token("im")
    refusal = "The request requires higher privileges than provided by the access token"
    for name in ("crm.item.list", "crm.status.list", "sale.order.add", "crm.deal.list"):
        response = site.call(name, {"entityTypeId": 2}, token=im_only)
        assert (response.status_code, response.json()) == (
            403,
            {"error": "insufficient_scope", "error_description": refusal},
        ), name
    # the scope is checked before the parameters, and a method of the basic scope needs none
    assert site.call("crm.item.get", token=im_only).json()["error"] == "insufficient_scope"
    assert site.call("server.time", token=im_only).json()["error"] == NOT_SIMULATED


def test_a_webhook_is_checked_against_its_own_scopes(site: Site) -> None:
    code = site.portal.add_webhook(user_id=1, scopes="crm")
    url = f"/{site.portal.domain}/rest/1/{code}/"
    assert site.client.post(url + "crm.status.list.json", json={}).status_code == 200
    refused = site.client.post(url + "tasks.task.list.json", json={})
    assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")


def test_missing_or_ill_typed_parameters_get_the_documented_error(site: Site) -> None:
    missing = site.call("crm.item.get", {"entityTypeId": 2})
    assert (missing.status_code, missing.json()) == (
        400,
        {"error": "ERROR_ARGUMENT", "error_description": "Argument 'id' is null or empty"},
    )
    empty = site.call("crm.item.add", {"entityTypeId": 2, "fields": {}})
    assert empty.json()["error_description"] == "Argument 'fields' is null or empty"
    ill_typed = site.call("crm.item.get", {"entityTypeId": "deal", "id": 1})
    assert (ill_typed.status_code, ill_typed.json()["error"]) == (400, "ERROR_ARGUMENT")
    assert "'entityTypeId' must be an integer" in ill_typed.json()["error_description"]
    # where the page's error table has a row for the missing parameter, that row is the answer
    price = site.call("catalog.price.get")
    assert (price.status_code, price.json()) == (
        400,
        {"error": "100", "error_description": "Could not find value for parameter {id}"},
    )
    # a page that does not state its parameters never has a call refused on them
    unknown = next(
        name
        for name, spec in methods.specs().items()
        if not spec.params_known and status_of(name) == "honest-error"
    )
    assert site.call(unknown).json()["error"] == NOT_SIMULATED


def test_an_implemented_method_keeps_its_own_documented_errors(site: Site) -> None:
    # crm.deal.get's page: an empty error code and "ID is not defined or invalid." (not the generic check)
    response = site.call("crm.deal.get")
    assert (response.status_code, response.json()["error"]) == (400, "")
    # event.bind of an offline event takes no handler, whatever the spec's required marker says
    assert methods.spec("event.bind").params[1].required is True
    offline = site.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
    assert offline.status_code == 200, offline.text


def test_unsimulated_write_methods_never_fake_a_success(site: Site) -> None:
    response = site.call("crm.item.add", {"entityTypeId": 2, "fields": {"title": "x"}})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == NOT_SIMULATED
    assert (
        "crm.item.add is documented (https://apidocs.bitrix24.com/api-reference/crm/universal/crm-item-add.html)"
        in (body["error_description"])
    )
    assert "never fakes a success" in body["error_description"]


def test_batch_commands_get_the_same_answers(site: Site) -> None:
    im_only = site.scoped_token("im,crm")
    response = site.client.post(
        f"/{site.portal.domain}/rest/batch.json",
        json={
            "auth": im_only,
            "cmd": {
                "stages": "crm.status.list?filter[ENTITY_ID]=DEAL_STAGE",
                "write": "crm.item.add?entityTypeId=2&fields[title]=x",
                "missing": "crm.item.get?entityTypeId=2",
                "scope": "tasks.task.list",
                "unknown": "crm.deal.nosuch",
            },
        },
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert [row["ENTITY_ID"] for row in result["result"]["stages"]] == ["DEAL_STAGE"] * 10
    errors = {key: value["error"] for key, value in result["result_error"].items()}
    assert errors == {
        "write": NOT_SIMULATED,
        "missing": "ERROR_ARGUMENT",
        "scope": "insufficient_scope",
        "unknown": "ERROR_METHOD_NOT_FOUND",
    }


# ------------------------------------------------------------------------------- the seeded reads


def test_seeded_lists_page_by_fifty_with_start_next_and_total(site: Site) -> None:
    tasks = dataset()["tasks"]
    first = site.seeded("tasks.task.list")
    assert (first["total"], len(first["result"]["tasks"]), "next" in first) == (len(tasks), len(tasks), False)
    later = site.seeded("tasks.task.list", {"start": 25})
    assert [t["id"] for t in later["result"]["tasks"]] == [t["id"] for t in tasks[25:]]
    statuses = site.call("crm.status.list", {"order": {"SORT": "DESC"}, "start": 0}).json()
    assert statuses["total"] == len(dataset()["statuses"])
    sorts = [int(row["SORT"]) for row in statuses["result"]]
    assert sorts == sorted(sorts, reverse=True)


def test_seeded_filters_select_and_an_unknown_filter_field(site: Site) -> None:
    mine = site.seeded("tasks.task.list", {"filter": {"RESPONSIBLE_ID": 15}, "select": ["ID", "TITLE"]})
    expected = [t["id"] for t in dataset()["tasks"] if t["responsibleId"] == "15"]
    assert [t["id"] for t in mine["result"]["tasks"]] == expected
    assert all(set(t) == {"id", "title"} for t in mine["result"]["tasks"])
    refused = site.seeded("tasks.task.list", {"filter": {"::SUBFILTER-PARAMS": {"FAVORITE": "Y"}}})
    assert refused["error"] == NOT_SIMULATED
    assert "cannot filter by" in refused["error_description"]


def test_seeded_get_answers_the_item_or_the_documented_not_found(site: Site) -> None:
    task = dataset()["tasks"][0]
    found = site.seeded("tasks.task.get", {"taskId": task["id"]})["result"]["task"]
    assert found["title"] == task["title"]
    assert site.seeded("tasks.task.get", {"taskId": 99999}) == {
        "error": "1",
        "error_description": "Task not found or not accessible",
    }
    assert site.seeded("tasks.task.get")["error"] == "100"  # the required taskId missing
    assert site.seeded("tasks.task.get", {"taskId": "x"}) == {
        "error": "0",
        "error_description": "wrong task id",
    }
    assert site.call("crm.status.get", {"id": 101}).json()["result"]["STATUS_ID"] == "PREPARATION"
    assert site.call("crm.status.get", {"id": 9}).json()["error"] == "Status is not found."
    assert site.call("crm.category.get", {"entityTypeId": 2, "id": 1}).json()["result"]["category"]["id"] == 1
    assert site.call("crm.category.get", {"entityTypeId": 2, "id": 77}).json() == {
        "error": "NOT_FOUND",
        "error_description": "Element not found",
    }


def test_seeded_data_is_coherent_with_the_portals_own_state(site: Site) -> None:
    # a deal the portal creates sits at a seeded stage of a seeded pipeline
    deal_id = site.call("crm.deal.add", {"fields": {"TITLE": "coherent"}}).json()["result"]
    deal = site.call("crm.deal.get", {"id": deal_id}).json()["result"]
    pipelines = site.call("crm.category.list", {"entityTypeId": 2}).json()["result"]["categories"]
    assert int(deal["CATEGORY_ID"]) in {p["id"] for p in pipelines}
    stages = site.call("crm.dealcategory.stage.list", {"id": deal["CATEGORY_ID"]}).json()["result"]
    assert deal["STAGE_ID"] in {s["STATUS_ID"] for s in stages}
    # a task names its users as user.get does
    task = site.seeded("tasks.task.get", {"taskId": dataset()["tasks"][0]["id"]})["result"]["task"]
    creator = site.call("user.get", {"ID": task["createdBy"]}).json()["result"][0]
    assert task["creator"]["name"] == f"{creator['NAME']} {creator['LAST_NAME']}"
    assert task["creator"]["id"] == creator["ID"]


def test_every_seeded_method_is_a_documented_read() -> None:
    assert SEEDED
    for name, seeded in SEEDED.items():
        spec = methods.spec(seeded.name)
        assert (spec.name.lower(), spec.kind) == (name, "read")
    assert SEEDED_FILE == "seeded/dataset.json"
    assert {"statuses", "categories", "tasks"} <= set(dataset())
