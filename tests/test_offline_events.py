"""Offline events: binding, the per-app queue, event.offline.*, ONOFFLINEEVENT, the lost-events scenario."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from examples import offline_catch_up
from mock_portal import PortalServer, rest
from mock_portal.portal import Clock, Portal
from mock_portal.portal.offline import OfflineStats, judge_catch_up
from tests.support.portal import HANDLER_BASE, install, recording_portal


@pytest.fixture
def env():
    clock = Clock(start=1_750_000_000.0)
    # the clock stands still, so the rate limiter's bucket would never drain: these tests judge the queue
    portal, recorder = recording_portal(clock=clock, rate_limit=False)
    app, token = install(portal, events=("ONSESSIONSTART",))
    yield portal, recorder, app, token.access_token, clock
    portal.close()


def _call(portal: Portal, method: str, token: str | None, **params: Any) -> rest.RestResponse:
    if token is not None:
        params["auth"] = token
    return rest.call(portal, method, params)


def _ok(portal: Portal, method: str, token: str, **params: Any) -> Any:
    answer = _call(portal, method, token, **params)
    assert answer.status == 200, answer.body
    return answer.body["result"]


def _bind_offline(portal: Portal, token: str, event: str = "ONAPPTEST", **params: Any) -> None:
    assert _ok(portal, "event.bind", token, event=event, event_type="offline", **params) is True


def test_bind_offline_needs_no_handler_and_lists_and_unbinds(env) -> None:
    portal, _, _, token, _ = env
    _bind_offline(portal, token, "ONSESSIONSTART")
    rows = _ok(portal, "event.get", token)
    assert {"event": "ONSESSIONSTART", "handler": "", "auth_type": "0", "offline": 1} in rows
    again = _call(portal, "event.bind", token, event="ONSESSIONSTART", event_type="offline")
    assert again.status == 400
    assert "already binded" in again.body["error_description"]
    # an online unbind leaves the offline binding; an offline one removes it
    assert _ok(portal, "event.unbind", token, event="ONSESSIONSTART")["count"] == 1
    assert [r["offline"] for r in _ok(portal, "event.get", token)] == [1]
    assert _ok(portal, "event.unbind", token, event="ONSESSIONSTART", event_type="offline")["count"] == 1
    assert _ok(portal, "event.get", token) == []
    bad = _call(portal, "event.bind", token, event="ONSESSIONSTART", event_type="sideways")
    assert bad.status == 400
    assert bad.body["error"] == "ERROR_ARGUMENT"


def test_webhooks_are_refused(env) -> None:
    portal, _, _, _, _ = env
    code = portal.add_webhook()
    answer = rest.call(portal, "event.offline.get", {}, webhook=("1", code))
    assert (answer.status, answer.body["error"]) == (403, "WRONG_AUTH_TYPE")


def test_fired_events_are_queued_with_the_documented_fields(env) -> None:
    portal, recorder, _, token, _ = env
    _bind_offline(portal, token, "ONSESSIONSTART")
    started = portal.start_session()
    assert [a.event for a in started.attempts] == ["ONSESSIONSTART"]  # the online binding only
    assert len(recorder.events("ONSESSIONSTART")) == 1
    listed = _call(portal, "event.offline.list", token)
    assert listed.body["total"] == 1
    row = listed.body["result"][0]
    assert set(row) == {
        "ID",
        "TIMESTAMP_X",
        "EVENT_NAME",
        "EVENT_DATA",
        "EVENT_ADDITIONAL",
        "MESSAGE_ID",
        "PROCESS_ID",
        "ERROR",
    }
    assert (row["ID"], row["EVENT_NAME"], row["PROCESS_ID"], row["ERROR"]) == ("1", "ONSESSIONSTART", "", "0")
    assert row["TIMESTAMP_X"] == "2025-06-15T15:06:40+00:00"
    assert str(started.chat.id) in json.dumps(row["EVENT_DATA"])
    got = _ok(portal, "event.offline.get", token)
    assert got["process_id"] is None
    assert [set(e) for e in got["events"]] == [set(row) - {"PROCESS_ID", "ERROR"}]
    assert _call(portal, "event.offline.list", token).body["total"] == 0  # clear=1 by default


def test_the_same_change_keeps_one_record_with_the_latest_time(env) -> None:
    portal, _, _, token, clock = env
    _bind_offline(portal, token)
    _ok(portal, "event.test", token, any="same")
    clock.advance(30)
    _ok(portal, "event.test", token, any="same")
    _ok(portal, "event.test", token, any="other")
    rows = _call(portal, "event.offline.list", token).body["result"]
    assert [r["ID"] for r in rows] == ["1", "2"]
    assert rows[0]["TIMESTAMP_X"] == "2025-06-15T15:07:10+00:00"
    assert rows[0]["MESSAGE_ID"] != rows[1]["MESSAGE_ID"]


def test_reserve_reselect_clear_and_error(env) -> None:
    portal, _, _, token, _ = env
    _bind_offline(portal, token)
    for n in range(4):
        _ok(portal, "event.test", token, n=n)
    first = _ok(portal, "event.offline.get", token, clear=0, limit=2)
    pid = first["process_id"]
    assert len(pid) == 32
    assert [e["ID"] for e in first["events"]] == ["1", "2"]
    # reserved records are hidden from other calls, and handed out again under their process_id
    second = _ok(portal, "event.offline.get", token, clear=0, limit=1)
    assert [e["ID"] for e in second["events"]] == ["3"]
    assert second["process_id"] != pid
    again = _ok(portal, "event.offline.get", token, clear=0, process_id=pid)
    assert [e["ID"] for e in again["events"]] == ["1", "2"]
    assert again["process_id"] == pid
    reserved = _call(portal, "event.offline.list", token, filter={"PROCESS_ID": pid}).body
    assert [r["ID"] for r in reserved["result"]] == ["1", "2"]
    # clear only record 1 of the reservation, mark the other erroneous
    assert _ok(portal, "event.offline.clear", token, process_id=pid, id=[1]) is True
    message_2 = reserved["result"][1]["MESSAGE_ID"]
    assert _ok(portal, "event.offline.error", token, process_id=pid, message_id=[message_2]) is True
    rows = _call(portal, "event.offline.list", token, filter={"ERROR": 1}).body["result"]
    assert [(r["ID"], r["ERROR"], r["PROCESS_ID"]) for r in rows] == [("2", "1", "")]
    # erroneous records come back only with error=1
    plain = _ok(portal, "event.offline.get", token, clear=0)
    assert [e["ID"] for e in plain["events"]] == ["4"]
    with_errors = _ok(portal, "event.offline.get", token, error=1)
    assert [e["ID"] for e in with_errors["events"]] == ["2"]
    assert (
        _ok(portal, "event.offline.clear", token, process_id=second["process_id"], message_id=["x"]) is True
    )
    assert [r["ID"] for r in _call(portal, "event.offline.list", token).body["result"]] == ["3", "4"]


def test_filter_order_limit_and_their_errors(env) -> None:
    portal, _, _, token, clock = env
    _bind_offline(portal, token)
    for n in range(3):
        _ok(portal, "event.test", token, n=n)
        clock.advance(10)
    got = _ok(portal, "event.offline.get", token, clear=0, filter={">=ID": 2}, order={"ID": "DESC"})
    assert [e["ID"] for e in got["events"]] == ["3", "2"]
    by_time = _call(portal, "event.offline.list", token, filter={"<TIMESTAMP_X": "2025-06-15T15:06:50+00:00"})
    assert [r["ID"] for r in by_time.body["result"]] == ["1"]
    assert _call(portal, "event.offline.list", token, filter={"=EVENT_NAME": "onapptest"}).body["total"] == 3
    for method, params, needle in [
        ("event.offline.get", {"filter": {"=PROCESS_ID": ""}}, "Unknown filter field"),
        ("event.offline.get", {"order": {"ID": "UP"}}, "ASC or DESC"),
        ("event.offline.get", {"limit": 0}, "limit"),
        ("event.offline.get", {"limit": "many"}, "limit"),
        ("event.offline.list", {"filter": {">ID": "x"}}, "not an integer"),
        ("event.offline.list", {"filter": "ID"}, "filter"),
        ("event.offline.clear", {}, "process_id"),
        ("event.offline.error", {"process_id": ""}, "process_id"),
    ]:
        answer = _call(portal, method, token, **params)
        assert (answer.status, answer.body["error"]) == (400, "ERROR_ARGUMENT"), (method, params)
        assert needle in answer.body["error_description"]
    assert _call(portal, "event.offline.list", token).body["total"] == 3  # nothing changed


def test_list_pages_by_fifty(env) -> None:
    portal, _, _, token, _ = env
    _bind_offline(portal, token)
    for n in range(55):
        _ok(portal, "event.test", token, n=n)
    first = _call(portal, "event.offline.list", token).body
    assert (len(first["result"]), first["next"], first["total"]) == (50, 50, 55)
    second = _call(portal, "event.offline.list", token, start=50).body
    assert (len(second["result"]), second["total"]) == (5, 55)
    assert "next" not in second


def test_auth_connector_splits_the_queue_and_skips_the_apps_own_changes(env) -> None:
    portal, _, _, token, _ = env
    _bind_offline(portal, token, auth_connector="sync")
    _ok(portal, "event.test", token, n="own", auth_connector="sync")  # the app's own change: not queued
    _ok(portal, "event.test", token, n="someone")
    assert _ok(portal, "event.offline.get", token, clear=0)["events"] == []  # no source: nothing
    got = _ok(portal, "event.offline.get", token, auth_connector="sync")["events"]
    assert [e["EVENT_DATA"]["QUERY"]["n"] for e in got] == ["someone"]


def test_not_installed_apps_get_nothing_queued() -> None:
    portal, _ = recording_portal()
    try:
        app, token = install(portal, ui=True)
        _bind_offline(portal, token.access_token, "ONSESSIONSTART")
        portal.start_session()
        assert portal.offline.stats(app.client_id).queued == 0  # dropped, not held
        portal.install_finish(app.client_id)
        portal.start_session()
        assert portal.offline.stats(app.client_id).waiting == 1
        portal.uninstall_app(app.client_id)
        assert portal.offline.stats(app.client_id).waiting == 0
    finally:
        portal.close()


def _bind_notice(portal: Portal, token: str, **options: Any) -> None:
    params: dict[str, Any] = {"event": "ONOFFLINEEVENT", "handler": f"{HANDLER_BASE}app/offline"}
    if options:
        params["options"] = options
    assert _ok(portal, "event.bind", token, **params) is True


def test_onofflineevent_body_carries_no_data(env) -> None:
    portal, recorder, app, token, _ = env
    _bind_offline(portal, token)
    _bind_notice(portal, token)
    _ok(portal, "event.test", token, n=1)
    portal.wait_for_deliveries("ONOFFLINEEVENT", count=1)
    [body] = recorder.events("ONOFFLINEEVENT")
    assert list(body) == ["event", "event_handler_id", "ts", "auth"]  # the empty data vanishes on the wire
    assert body["auth"]["application_token"] == app.application_token
    assert body["auth"]["refresh_token"]
    assert body["auth"]["access_token"]


def test_onofflineevent_default_min_timeout_is_one_second(env) -> None:
    portal, recorder, _, token, clock = env
    _bind_offline(portal, token)
    _bind_notice(portal, token)
    for n in range(3):
        _ok(portal, "event.test", token, n=n)
    clock.advance(1)
    _ok(portal, "event.test", token, n="later")
    portal.close()  # delivers what is queued
    assert len(recorder.events("ONOFFLINEEVENT")) == 2


def test_onofflineevent_min_timeout_zero_is_once_per_call(env) -> None:
    portal, recorder, _, token, _ = env
    _bind_offline(portal, token)
    _bind_offline(portal, token, "ONSESSIONSTART")
    _bind_notice(portal, token, minTimeout=0)
    _ok(portal, "event.test", token, n=1)
    _ok(portal, "event.test", token, n=2)
    # one call that queues two records: one notification
    _ok(portal, "batch", token, cmd={"a": "event.test?n=3", "b": "event.test?n=4"})
    portal.close()
    assert len(recorder.events("ONOFFLINEEVENT")) == 3
    assert portal.offline.stats(portal.bindings[0].client_id).waiting == 4


def test_catch_up_verdicts(env) -> None:
    portal, _, app, token, _ = env
    judge = lambda: judge_catch_up(app.client_id, portal.calls(), portal.offline.stats(app.client_id))  # noqa: E731
    assert judge().outcome == "inconclusive"
    _bind_offline(portal, token)
    _ok(portal, "event.test", token, n=1)
    assert judge().outcome == "fail"
    pid = _ok(portal, "event.offline.get", token, clear=0)["process_id"]
    verdict = judge()
    assert verdict.outcome == "fail"
    assert pid in verdict.reason
    _ok(portal, "event.offline.clear", token, process_id=pid)
    assert judge().outcome == "pass"
    assert judge_catch_up("other", portal.calls(), OfflineStats(1, 1, 0, 0)).outcome == "fail"


def test_lost_events_are_kept_offline_and_caught_up_over_http() -> None:
    """The handler's port is closed: online deliveries are refused and never retried, the offline queue
    keeps the events; back up, the handler catches up with event.offline.get and clears what it took."""
    outcome = offline_catch_up.run()
    assert outcome["handler down"] == (
        "3 OnSessionStart deliveries refused, none retried; 3 records in the offline queue"
    )
    assert outcome["handler back"] == (
        "3 records caught up at start-up, 1 more after ONOFFLINEEVENT, 1 delivered online; "
        "0 left in the queue"
    )
    assert outcome["offline clause"].startswith("pass: ")


def test_offline_methods_over_http() -> None:
    with PortalServer() as server:
        portal = server.portal
        _, token, _ = portal.install_app()
        url = portal.client_endpoint
        form = f"event=ONAPPTEST&event_type=offline&auth={token.access_token}".encode()
        with urllib.request.urlopen(urllib.request.Request(url + "event.bind", data=form)) as answer:
            assert json.load(answer)["result"] is True
        data = f"auth={token.access_token}&filter%5B%3E%3DID%5D=1&order%5BID%5D=DESC".encode()
        with urllib.request.urlopen(urllib.request.Request(url + "event.offline.list", data=data)) as answer:
            body = json.load(answer)
        assert (body["result"], body["total"]) == ([], 0)
        bad = urllib.request.Request(url + "event.offline.clear", data=f"auth={token.access_token}".encode())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad)
        assert refused.value.code == 400
        assert json.load(refused.value)["error"] == "ERROR_ARGUMENT"
