"""The standalone REST units: rate limiter, method time budget, pages and batch, each on a driven clock."""

from __future__ import annotations

from typing import Any

import pytest

from mock_portal.errors import UsageError
from mock_portal.restkit import (
    PAGE_SIZE,
    PLANS,
    MethodBudget,
    Outcome,
    Plan,
    RateLimiter,
    RestError,
    page,
    parse_start,
    run_batch,
)


class FakeClock:
    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


# ------------------------------------------------------------------------------ rate limiter
def test_plans_are_the_documented_figures() -> None:
    assert (PLANS["standard"].burst, PLANS["standard"].drain) == (50, 2.0)
    assert (PLANS["enterprise"].burst, PLANS["enterprise"].drain) == (250, 5.0)


def test_a_burst_of_x_passes_and_the_next_request_is_refused_with_503() -> None:
    clock = FakeClock()
    limiter = RateLimiter(now=clock)
    for _ in range(50):
        limiter.hit("a.bitrix24.com")
    with pytest.raises(RestError) as caught:
        limiter.hit("a.bitrix24.com")
    assert (caught.value.status, caught.value.code) == (503, "QUERY_LIMIT_EXCEEDED")
    assert caught.value.envelope() == {
        "error": "QUERY_LIMIT_EXCEEDED",
        "error_description": "Too many requests",
    }


def test_the_bucket_drains_by_y_per_second_of_the_portal_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(now=clock)
    for _ in range(50):
        limiter.hit("p")
    clock.advance(1.0)  # two slots free again
    limiter.hit("p")
    limiter.hit("p")
    with pytest.raises(RestError):
        limiter.hit("p")
    assert limiter.level("p") == 50


def test_y_requests_per_second_never_hit_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(now=clock)
    for _ in range(1000):
        limiter.hit("p")
        limiter.hit("p")
        clock.advance(1.0)
    assert limiter.level("p") <= 2


def test_portals_have_their_own_buckets_and_plans() -> None:
    clock = FakeClock()
    limiter = RateLimiter(now=clock)
    limiter.set_plan("big", "enterprise")
    for _ in range(250):
        limiter.hit("big")
    for _ in range(50):
        limiter.hit("small")
    with pytest.raises(RestError):
        limiter.hit("big")
    with pytest.raises(RestError):
        limiter.hit("small")


def test_refused_requests_do_not_deepen_the_bucket_and_disabled_lets_all_through() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Plan("tiny", burst=1, drain=1.0), now=clock)
    limiter.hit("p")
    for _ in range(5):
        with pytest.raises(RestError):
            limiter.hit("p")
    clock.advance(1.0)
    limiter.hit("p")
    off = RateLimiter(now=clock, enabled=False)
    for _ in range(500):
        off.hit("p")


def test_unknown_plan_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown plan 'gold'"):
        RateLimiter("gold", now=FakeClock())
    with pytest.raises(UsageError):
        Plan("broken", burst=0, drain=1.0)


# ------------------------------------------------------------------------------ method time budget
def test_operating_fills_and_the_method_answers_429_when_spent() -> None:
    clock = FakeClock()
    budget = MethodBudget(now=clock, costs={"crm.deal.list": 20.0})
    start = clock()
    block = budget.measure("app-1", "crm.deal.list", start, start)
    assert block["operating"] == 20.0
    assert block["operating_reset_at"] == int(start + 600)
    for _ in range(23):
        clock.advance(1.0)
        budget.check("app-1", "crm.deal.list")
        budget.measure("app-1", "crm.deal.list", clock(), clock())
    assert budget.operating("app-1", "crm.deal.list") == 480.0
    with pytest.raises(RestError) as caught:
        budget.check("app-1", "crm.deal.list")
    assert (caught.value.status, caught.value.code) == (429, "OPERATION_TIME_LIMIT")
    budget.check("app-1", "crm.lead.list")  # other methods go on working
    budget.check("app-2", "crm.deal.list")  # and so does another application


def test_the_window_releases_the_oldest_charges_at_operating_reset_at() -> None:
    clock = FakeClock()
    budget = MethodBudget(now=clock, limit=10.0, window=600.0)
    budget.charge("k", "m", 6.0)
    clock.advance(100.0)
    budget.charge("k", "m", 6.0)
    with pytest.raises(RestError):
        budget.check("k", "m")
    reset_at = budget.reset_at("k", "m")
    assert reset_at == clock() - 100.0 + 600.0
    clock.value = reset_at
    assert budget.operating("k", "m") == 6.0
    budget.check("k", "m")


def test_budget_refuses_bad_configuration_and_negative_time() -> None:
    with pytest.raises(UsageError):
        MethodBudget(now=FakeClock(), limit=0)
    with pytest.raises(UsageError):
        MethodBudget(now=FakeClock()).charge("k", "m", -1)


# ------------------------------------------------------------------------------ pages
@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 0), ("", 0), ("50", 50), (" 100abc", 100), ("x", 0), (-1, -1), ("-1", -1), ("-7", 0), (3.9, 3)],
)
def test_start_is_read_as_php_reads_an_int(raw: Any, expected: int) -> None:
    assert parse_start(raw) == expected


def test_120_items_page_by_50_with_next_and_total() -> None:
    items = list(range(120))
    seen: list[int] = []
    start: Any = None
    pages = 0
    while True:
        current = page(items, start)
        body = current.envelope()
        assert body["total"] == 120
        seen.extend(body["result"])
        pages += 1
        if "next" not in body:
            break
        start = str(body["next"])
    assert seen == items
    assert pages == 3
    assert page(items, 50).next == 100
    assert page(items, 100).next is None


def test_start_minus_one_sends_neither_total_nor_next() -> None:
    body = page(list(range(120)), "-1").envelope()
    assert body == {"result": list(range(PAGE_SIZE))}


def test_a_start_past_the_end_is_an_empty_last_page() -> None:
    assert page([1, 2], 50).envelope() == {"result": [], "total": 2}


# ------------------------------------------------------------------------------ batch
class Methods:
    """One-method executor over a tiny state, recording what each command was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.deals = [{"ID": str(i), "TITLE": f"Deal {i}"} for i in range(1, 121)]

    def __call__(self, method: str, params: dict[str, Any]) -> Outcome:
        self.calls.append((method, params))
        if method == "user.current":
            return Outcome(200, {"result": {"ID": "1", "UF_DEPARTMENT": [7, 9]}, "time": {"duration": 0}})
        if method == "department.get":
            return Outcome(200, {"result": [{"ID": params.get("ID")}]})
        if method == "crm.deal.list":
            return Outcome(200, page(self.deals, params.get("start")).envelope())
        if method == "echo":
            return Outcome(200, {"result": params})
        return Outcome(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"})


def test_result_substitution_takes_a_whole_value_or_its_text() -> None:
    methods = Methods()
    answer = run_batch(
        {
            "cmd": {
                "get_user": "user.current",
                "dept": "department.get?ID=$result[get_user][UF_DEPARTMENT][0]",
                "all": "echo?IDS=$result[get_user][UF_DEPARTMENT]&TEXT=user $result[get_user][ID]!",
            }
        },
        methods,
    )
    assert methods.calls[1] == ("department.get", {"ID": 7})
    assert answer["result"]["all"] == {"IDS": [7, 9], "TEXT": "user 1!"}
    assert answer["result_error"] == []
    assert answer["result_time"] == {"get_user": {"duration": 0}}


def test_next_and_total_feed_the_following_command() -> None:
    methods = Methods()
    answer = run_batch(
        {"cmd": ["crm.deal.list", "crm.deal.list?start=$next[0]", "crm.deal.list?start=$next[1]"]}, methods
    )
    assert isinstance(answer["result"], list)
    assert [len(r) for r in answer["result"]] == [50, 50, 20]
    assert answer["result_total"] == [120, 120, 120]
    assert answer["result_next"] == [50, 100]


def test_errors_are_per_command_and_halt_stops_at_the_first() -> None:
    methods = Methods()
    params = {"cmd": {"a": "user.current", "b": "nope.method", "c": "echo?x=1"}}
    answer = run_batch(params, methods)
    assert answer["result_error"] == {
        "b": {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
    }
    assert set(answer["result"]) == {"a", "c"}
    halted = run_batch({**params, "halt": "1"}, Methods())
    assert set(halted["result"]) == {"a"}
    assert set(halted["result_error"]) == {"b"}


def test_a_batch_inside_a_batch_fails_alone_and_references_to_nothing_stay() -> None:
    answer = run_batch({"cmd": ["batch?cmd[0]=user.current", "echo?x=$result[9][ID]"]}, Methods())
    assert answer["result_error"][0]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"  # keys 0..n-1: a list
    assert answer["result"] == {"1": {"x": "$result[9][ID]"}}


def test_batch_limits_and_missing_cmd_refuse_the_whole_batch() -> None:
    with pytest.raises(RestError) as caught:
        run_batch({"cmd": ["echo"] * 51}, Methods())
    assert caught.value.code == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert len(run_batch({"cmd": ["echo"] * 50}, Methods())["result"]) == 50
    with pytest.raises(RestError, match="cmd"):
        run_batch({"halt": 0}, Methods())
