"""The REST side as a real portal behaves: list pages, batch, the request-rate limiter and the method time
budget (driven through the portal clock, never by sleeping), tokens, the CRM with its events, users."""

from __future__ import annotations

from typing import Any

import pytest

from mock_portal import rest
from mock_portal.portal import Clock, Portal
from mock_portal.restkit import Plan
from tests.support.portal import install, recording_portal

CRM_EVENTS = tuple(
    f"ONCRM{entity}{change}"
    for entity in ("DEAL", "LEAD", "CONTACT", "COMPANY")
    for change in ("ADD", "UPDATE", "DELETE")
)


@pytest.fixture
def env():
    clock = Clock(start=1_750_000_000.0)
    portal, recorder = recording_portal(clock=clock)
    app, token = install(portal, events=CRM_EVENTS, scopes="crm,user")
    yield portal, recorder, app, token, clock
    portal.close()


def _call(portal: Portal, method: str, token: Any, **params: Any) -> rest.RestResponse:
    return rest.call(portal, method, {**params, "auth": token.access_token})


# ----------------------------------------------------------------------------------------- list pages
def test_lists_page_by_50_with_next_and_total(env) -> None:
    portal, _, _, token, _ = env
    for i in range(120):
        portal.crm_add("deal", {"TITLE": f"deal {i}"})
    seen: list[str] = []
    start: Any = 0
    pages = []
    while start is not None:
        body = _call(portal, "crm.deal.list", token, start=start, select=["ID", "TITLE"]).body
        pages.append((len(body["result"]), body.get("next"), body["total"]))
        seen += [row["ID"] for row in body["result"]]
        start = body.get("next")
    assert pages == [(50, 50, 120), (50, 100, 120), (20, None, 120)]
    assert seen == [str(i) for i in range(1, 121)]
    no_count = _call(portal, "crm.deal.list", token, start=-1).body
    assert len(no_count["result"]) == 50
    assert "total" not in no_count
    assert "next" not in no_count


def test_list_filter_order_select_and_userfields(env) -> None:
    portal, _, _, token, _ = env
    for i, amount in enumerate((100, 250, 50)):
        added = _call(
            portal,
            "crm.deal.add",
            token,
            fields={"TITLE": f"d{i}", "OPPORTUNITY": amount, "UF_CRM_SOURCE": f"s{i}"},
        )
        assert added.ok
        assert added.body["result"] == i + 1
    body = _call(
        portal,
        "crm.deal.list",
        token,
        filter={">=OPPORTUNITY": 100},
        order={"OPPORTUNITY": "DESC"},
        select=["ID", "OPPORTUNITY", "UF_*"],
    ).body
    assert [(r["ID"], r["UF_CRM_SOURCE"]) for r in body["result"]] == [("2", "s1"), ("1", "s0")]
    plain = _call(portal, "crm.deal.list", token).body["result"][0]
    assert "UF_CRM_SOURCE" not in plain  # userfields only when selected, as on a real portal
    assert _call(portal, "crm.deal.get", token, id=3).body["result"]["UF_CRM_SOURCE"] == "s2"


# ----------------------------------------------------------------------------------------- batch
def test_batch_substitutes_results_and_reports_each_error(env) -> None:
    portal, _, _, token, _ = env
    for i in range(60):
        portal.crm_add("contact", {"NAME": f"c{i}"})
    cmd = {
        "add": "crm.deal.add?fields[TITLE]=from batch",
        "get": "crm.deal.get?id=$result[add]",
        "page": "crm.contact.list?select[]=ID",
        "next": "crm.contact.list?select[]=ID&start=$next[page]",
        "missing": "crm.deal.get?id=999",
    }
    body = _call(portal, "batch", token, cmd=cmd).body["result"]
    assert body["result"]["get"]["TITLE"] == "from batch"
    assert body["result_next"] == {"page": 50}
    assert body["result_total"] == {"page": 60, "next": 60}
    assert len(body["result"]["next"]) == 10
    assert body["result_error"] == {"missing": {"error": "", "error_description": "Not found"}}
    halted = _call(
        portal, "batch", token, halt=1, cmd=["crm.deal.get?id=999", "crm.deal.add?fields[TITLE]=x"]
    )
    assert halted.body["result"]["result"] == []  # keyed 0..n-1: PHP writes lists
    assert halted.body["result"]["result_error"] == [{"error": "", "error_description": "Not found"}]
    assert len(portal.crm_items("deal")) == 1  # the halted command never ran


# ----------------------------------------------------------------------------------------- the limits
def test_the_rate_limiter_answers_query_limit_exceeded_and_drains_on_the_portal_clock(env) -> None:
    portal, _, _, token, clock = env
    answers = [_call(portal, "crm.deal.list", token).status for _ in range(51)]
    assert answers == [200] * 50 + [503]  # the standard plan: 50 requests, then the bucket is full
    refused = _call(portal, "crm.deal.list", token)
    assert refused.body == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    clock.advance(1.0)  # drains 2 per second
    assert [_call(portal, "app.info", token).status for _ in range(3)] == [200, 200, 503]
    batch = _call(portal, "batch", token, cmd={str(i): "app.info" for i in range(50)})
    assert batch.status == 503  # a batch is one request like any other
    clock.advance(1.0)
    batch = _call(portal, "batch", token, cmd={str(i): "app.info" for i in range(50)})
    assert batch.status == 200
    assert len(batch.body["result"]["result"]) == 50
    assert portal.calls("crm.deal.list")[-1].error == "QUERY_LIMIT_EXCEEDED"


def test_the_rate_limiter_is_configurable_per_portal() -> None:
    clock = Clock(start=1_750_000_000.0)
    with Portal(clock=clock, rate_plan=Plan("tiny", burst=2, drain=1.0)) as small:
        code = small.add_webhook(scopes="crm")
        statuses = [rest.call(small, "crm.deal.list", {}, webhook=("1", code)).status for _ in range(3)]
        assert statuses == [200, 200, 503]
    with Portal(clock=clock, rate_plan="enterprise") as big:
        code = big.add_webhook(scopes="crm")
        statuses = [rest.call(big, "crm.deal.list", {}, webhook=("1", code)).status for _ in range(251)]
        assert statuses.count(200) == 250
        assert statuses[-1] == 503
    with Portal(clock=clock, rate_limit=False) as unlimited:
        code = unlimited.add_webhook(scopes="crm")
        assert all(rest.call(unlimited, "crm.deal.list", {}, webhook=("1", code)).ok for _ in range(300))


def test_the_method_time_budget_fills_time_and_answers_operation_time_limit() -> None:
    clock = Clock(start=1_750_000_000.0)
    with Portal(clock=clock, rate_limit=False, method_costs={"crm.deal.list": 100.0}) as portal:
        code = portal.add_webhook(scopes="crm")

        def deal_list() -> rest.RestResponse:
            return rest.call(portal, "crm.deal.list", {}, webhook=("1", code))

        operating = [deal_list().body["time"]["operating"] for _ in range(5)]
        assert operating == [100.0, 200.0, 300.0, 400.0, 500.0]
        first = deal_list()
        assert (first.status, first.body["error"]) == (429, "OPERATION_TIME_LIMIT")
        other = rest.call(portal, "crm.lead.list", {}, webhook=("1", code))
        assert other.ok
        assert other.body["time"]["operating"] == 0
        assert other.body["time"]["operating_reset_at"] == int(clock.now()) + 600
        clock.advance(600)  # the charges leave the 10-minute window
        again = deal_list()
        assert again.ok
        assert again.body["time"]["operating"] == 100.0


# ----------------------------------------------------------------------------------------- tokens
def test_tokens_expire_refresh_and_die_with_the_app(env) -> None:
    portal, _, app, token, clock = env
    clock.advance(3600)
    expired = _call(portal, "crm.deal.list", token)
    assert (expired.status, expired.body["error"]) == (401, "expired_token")
    refreshed = rest.handle_oauth(
        [portal],
        {
            "grant_type": "refresh_token",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "refresh_token": token.refresh_token,
        },
    )
    assert refreshed.status == 200
    fresh = refreshed.body["access_token"]
    assert rest.call(portal, "crm.deal.list", {"auth": fresh}).ok
    bogus = rest.call(portal, "crm.deal.list", {"auth": "f" * 70})
    assert (bogus.status, bogus.body["error"]) == (401, "invalid_token")
    portal.uninstall_app(app.client_id)
    revoked = rest.call(portal, "crm.deal.list", {"auth": fresh})
    assert (revoked.status, set(revoked.body)) == (401, {"error", "error_description"})
    assert revoked.body["error"] == "invalid_token"


def test_every_error_is_an_envelope_with_its_status(env) -> None:
    portal, _, _, token, _ = env
    cases = {
        ("crm.deal.get", ()): (400, ""),
        ("crm.deal.get", (("id", 77),)): (400, ""),
        ("crm.deal.update", (("id", "x"),)): (400, ""),
        ("crm.deal.add", ()): (400, ""),
        ("crm.quote.fields", ()): (400, "ERROR_METHOD_NOT_SIMULATED"),
        ("crm.deal.nosuch.get", ()): (404, "ERROR_METHOD_NOT_FOUND"),
    }
    for (method, params), (status, code) in cases.items():
        answer = _call(portal, method, token, **dict(params))
        assert (answer.status, answer.body["error"]) == (status, code), method
        assert isinstance(answer.body["error_description"], str)
        assert answer.body["error_description"]
    no_scope = portal.install_app(None, scopes="im")[1]
    refused = _call(portal, "crm.deal.list", no_scope)
    assert (refused.status, refused.body["error"]) == (403, "insufficient_scope")


# ----------------------------------------------------------------------------------------- CRM events
@pytest.mark.parametrize("entity", ["deal", "lead", "contact", "company"])
def test_each_crm_write_fires_its_event_with_the_real_payload(env, entity: str) -> None:
    portal, recorder, app, token, _ = env
    name = entity.upper()
    added = _call(portal, f"crm.{entity}.add", token, fields={"TITLE": "t", "NAME": "n"})
    new_id = added.body["result"]
    assert _call(portal, f"crm.{entity}.update", token, id=new_id, fields={"COMMENTS": "c"}).body["result"]
    assert _call(portal, f"crm.{entity}.delete", token, id=new_id).body["result"] is True
    events = [f"ONCRM{name}ADD", f"ONCRM{name}UPDATE", f"ONCRM{name}DELETE"]
    for event in events:
        assert len(portal.wait_for_deliveries(event)) == 1  # queued, delivered after the REST answer
        [payload] = recorder.events(event)
        assert list(payload) == ["event", "event_handler_id", "data", "ts", "auth"]
        assert payload["data"] == {"FIELDS": {"ID": str(new_id)}}
        auth = payload["auth"]
        assert auth["application_token"] == app.application_token
        assert auth["user_id"] == str(token.user_id)  # a user made the change: user mode
        assert "refresh_token" not in auth
        assert portal.authenticate(auth["access_token"]).user_id == token.user_id
    assert _call(portal, f"crm.{entity}.get", token, id=new_id).body["error_description"] == "Not found"


def test_crm_events_go_to_every_bound_app_and_only_to_them(env) -> None:
    portal, recorder, _, token, _ = env
    _other, _ = install(portal, "other", events=("ONCRMDEALADD",), scopes="crm")
    install(portal, "unbound", events=("ONCRMLEADADD",), scopes="crm")
    _call(portal, "crm.deal.add", token, fields={"TITLE": "x"})
    attempts = portal.wait_for_deliveries("ONCRMDEALADD", count=2)
    assert len(attempts) == 2
    assert sorted(url.rsplit("/", 2)[1] for url in recorder.urls() if "oncrmdealadd" in url) == [
        "app",
        "other",
    ]
    assert portal.deliveries("ONCRMLEADADD") == []


def test_a_webhook_write_fires_events_too_and_system_mode_carries_no_token(env) -> None:
    portal, recorder, _, _, _ = env
    code = portal.add_webhook(user_id=1, scopes="crm")
    rest.call(portal, "crm.company.add", {"fields": {"TITLE": "ACME"}}, webhook=("1", code))
    portal.wait_for_deliveries("ONCRMCOMPANYADD")
    portal.crm_update("company", 1, {"TITLE": "ACME 2"}, auth="system")
    [payload] = recorder.events("ONCRMCOMPANYUPDATE")
    assert set(payload["auth"]) == {
        "domain",
        "client_endpoint",
        "server_endpoint",
        "member_id",
        "application_token",
    }


def test_fields_and_userfields(env) -> None:
    portal, _, _, token, _ = env
    fields = _call(portal, "crm.lead.fields", token).body["result"]
    assert fields["ID"]["isReadOnly"] is True
    assert fields["PHONE"]["isMultiple"] is True
    added = _call(
        portal,
        "crm.lead.userfield.add",
        token,
        fields={"FIELD_NAME": "RATING", "USER_TYPE_ID": "integer", "MULTIPLE": "Y"},
    )
    assert added.ok
    fields = _call(portal, "crm.lead.fields", token).body["result"]
    assert fields["UF_CRM_RATING"]["isDynamic"] is True
    assert fields["UF_CRM_RATING"]["isMultiple"] is True
    listed = _call(portal, "crm.lead.userfield.list", token).body
    assert [u["FIELD_NAME"] for u in listed["result"]] == ["UF_CRM_RATING"]
    assert listed["total"] == 1
    lead = _call(
        portal,
        "crm.lead.add",
        token,
        fields={"TITLE": "l", "UF_CRM_RATING": 5, "PHONE": [{"VALUE": "+100", "VALUE_TYPE": "WORK"}]},
    ).body["result"]
    got = _call(portal, "crm.lead.get", token, id=lead).body["result"]
    assert got["UF_CRM_RATING"] == ["5"]
    assert [(p["VALUE"], p["TYPE_ID"]) for p in got["PHONE"]] == [("+100", "PHONE")]


# ----------------------------------------------------------------------------------------- users
def test_user_current_and_user_get(env) -> None:
    portal, _, _, token, _ = env
    current = _call(portal, "user.current", token).body["result"]
    assert current["ID"] == str(token.user_id)
    code = portal.add_webhook(user_id=7, scopes="user")
    assert rest.call(portal, "user.current", {}, webhook=("7", code)).body["result"]["ID"] == "7"
    listed = _call(portal, "user.get", token).body
    assert [u["ID"] for u in listed["result"]] == ["1", "7"]
    assert listed["total"] == 2
    assert [u["ID"] for u in _call(portal, "user.get", token, ID=7).body["result"]] == ["7"]
    assert [u["ID"] for u in _call(portal, "user.get", token, filter={"ID": 1}).body["result"]] == ["1"]
