"""Clause 11, catches-up-offline: handlers that use offline events in every way the docs allow pass it, one
that takes records with ``clear=0`` and never confirms them fails it, one that never reads the queue leaves it
inconclusive.

Each handler here is a small in-process callable that catches up over real HTTP against the run's portal (its
``client_endpoint``), in a thread of its own, on ONOFFLINEEVENT. Only clause 11 is judged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import requests

from contract_tests.engine import ContractConfig, ContractRun, Verdict
from mock_portal.delivery import CallableTarget
from mock_portal.wire import decode

CLAUSE = "catches-up-offline"
FAST = {"settle": 0.05}

Rest = Callable[..., Any]
Strategy = Callable[[Rest], None]


class OfflineHandler:
    """Answers 200 to everything; on ONOFFLINEEVENT runs ``strategy`` in a thread with a REST caller bound to
    the notice's portal and token. ``bind_at_install``: it binds its own events on ONAPPINSTALL, as real apps
    do (OnSessionStart offline, ONOFFLINEEVENT to itself with the default minTimeout)."""

    def __init__(self, strategy: Strategy, *, bind_at_install: bool = False) -> None:
        self.strategy = strategy
        self.bind_at_install = bind_at_install
        self.threads: list[threading.Thread] = []
        self._http = requests.Session()
        self._lock = threading.Lock()

    def close(self) -> None:
        for thread in self.threads:
            thread.join(10)
        self._http.close()

    def rest_for(self, auth: Mapping[str, Any]) -> Rest:
        endpoint, token = str(auth["client_endpoint"]), str(auth["access_token"])

        def rest(method: str, **params: Any) -> Any:
            with self._lock:  # one catch-up at a time, as a real app serialises its sync
                answer = self._http.post(
                    f"{endpoint}{method}.json", json={**params, "auth": token}, timeout=10
                )
            return answer.json().get("result")

        return rest

    def __call__(self, body: bytes, headers: Mapping[str, str], url: str) -> tuple[int, bytes]:
        payload = decode(body)
        event, auth = payload.get("event"), payload.get("auth")
        if not isinstance(auth, dict):
            return 400, b"{}"
        if event == "ONAPPINSTALL" and self.bind_at_install:
            rest = self.rest_for(auth)
            rest("event.bind", event="ONSESSIONSTART", event_type="offline")
            rest("event.bind", event="ONOFFLINEEVENT", handler=url)
        if event == "ONOFFLINEEVENT":
            thread = threading.Thread(target=self.strategy, args=(self.rest_for(auth),), daemon=True)
            self.threads.append(thread)
            thread.start()
        return 200, b"{}"


def _loop(confirm: str) -> Strategy:
    """Take batches with clear=0 until the queue is empty; confirm each with ``confirm`` (``clear`` or
    ``error``), or not at all (``""``)."""

    def catch_up(rest: Rest) -> None:
        for _ in range(20):
            got = rest("event.offline.get", clear=0, limit=2)
            if not got["events"]:
                return
            if confirm:
                rest(f"event.offline.{confirm}", process_id=got["process_id"])

    return catch_up


def _once_clear_on_read(rest: Rest) -> None:
    rest("event.offline.get")  # clear=1 by default: read and removed at once


def _once_never_confirmed(rest: Rest) -> None:
    rest("event.offline.get", clear=0)  # one batch per notice, never confirmed


def _pipelined(rest: Rest) -> None:
    """Fetch the next batch before confirming the previous one (the docs allow parallel readers)."""
    previous = None
    for _ in range(20):
        got = rest("event.offline.get", clear=0, limit=2)
        if previous is not None:
            rest("event.offline.clear", process_id=previous)
        if not got["events"]:
            return
        previous = got["process_id"]


def _ignores(rest: Rest) -> None:
    return None


@pytest.fixture
def judge() -> Iterator[Callable[..., Verdict]]:
    handlers: list[OfflineHandler] = []

    def run(strategy: Strategy, **options: Any) -> Verdict:
        handler = OfflineHandler(strategy, bind_at_install=options.pop("bind_at_install", False))
        handlers.append(handler)
        config = ContractConfig(CallableTarget(handler), offline=True, **{**FAST, **options})
        with ContractRun(config) as contract:
            verdict = contract.check(CLAUSE)
            portal = contract.sites[-1].portal
            handler.close()  # its catch-up may still be running: let it end while the portals are up
        # the clause's own portal: the events were queued there and the handler called it back
        assert portal.offline.stats(contract.sites[-1].app.client_id).queued >= 4
        return verdict

    yield run
    for handler in handlers:
        handler.close()


@pytest.mark.parametrize(
    "strategy",
    [_loop("clear"), _loop("error"), _once_clear_on_read, _pipelined],
    ids=["loop-clear", "loop-error", "once-clear-on-read", "pipelined"],
)
def test_every_documented_way_of_catching_up_passes(
    judge: Callable[..., Verdict], strategy: Strategy
) -> None:
    verdict = judge(strategy)
    assert verdict.outcome == "pass", verdict.message()
    assert "event.offline.get call(s)" in verdict.reason


def test_a_handler_that_binds_its_own_offline_events_on_install_passes(judge: Callable[..., Verdict]) -> None:
    verdict = judge(_loop("clear"), bind_at_install=True)
    assert verdict.outcome == "pass", verdict.message()


@pytest.mark.slow
def test_taking_with_clear_0_and_never_confirming_fails(judge: Callable[..., Verdict]) -> None:
    # one batch per notice: the second notice's read shows the handler is done with the first batch
    verdict = judge(_once_never_confirmed)
    assert verdict.outcome == "fail", verdict.message()
    assert "taken with clear=0 were never cleared" in verdict.reason
    assert verdict.clause.level == "SHOULD"
    assert "https://apidocs.bitrix24.com/api-reference/events/event-offline-get.html" in verdict.message()


def test_a_loop_that_never_confirms_fails(judge: Callable[..., Verdict]) -> None:
    verdict = judge(_loop(""))
    assert verdict.outcome == "fail", verdict.message()


def test_a_handler_that_never_reads_the_queue_is_inconclusive(judge: Callable[..., Verdict]) -> None:
    verdict = judge(_ignores, timeout=1.0)
    assert verdict.outcome == "inconclusive", verdict.message()
    assert "no event.offline.get within 1 s (ONOFFLINEEVENT sent 1x, answered 200)" in verdict.reason


def test_without_the_option_the_clause_does_not_apply() -> None:
    handler = OfflineHandler(_loop("clear"))
    with ContractRun(ContractConfig(CallableTarget(handler), **FAST)) as contract:
        verdict = contract.check(CLAUSE)
        assert contract.sites == []  # nothing was installed or sent for it
    handler.close()
    assert verdict.outcome == "skip"
    assert verdict.reason == (
        "not applicable: the handler does not declare offline use "
        "(mock-portal verify --offline, pytest --b24-offline)"
    )


def test_offline_must_be_a_bool() -> None:
    from mock_portal.errors import UsageError

    with pytest.raises(UsageError, match="offline must be True or False, got 'yes'"):
        ContractConfig("http://127.0.0.1:9/", offline="yes")  # type: ignore[arg-type]
