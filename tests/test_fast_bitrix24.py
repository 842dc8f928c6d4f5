"""fast_bitrix24, unmodified, against a running PortalServer over plain http with an incoming webhook: it
writes and pages 120 deals and rides out the portal's rate limit (set low enough here to trip)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from mock_portal.portal import Clock, Portal
from mock_portal.restkit import Plan
from mock_portal.server import PortalServer

fast_bitrix24 = pytest.importorskip("fast_bitrix24")


@pytest.fixture
def main_thread_loop() -> Iterator[None]:
    """fast_bitrix24's sync wrapper runs on the thread's current event loop and never closes it: give it
    one, and close it after (else it would be asyncio's implicit loop, left open for the garbage collector
    to report in a later test)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.usefixtures("main_thread_loop")
def test_fast_bitrix24_pages_120_deals_and_survives_the_rate_limit() -> None:
    # a frozen clock: the bucket drains only when this test advances it, on evidence (a refusal recorded)
    clock = Clock(start=1_750_000_000.0)
    portal = Portal("fast.example.com", seed=3, clock=clock, rate_plan=Plan("one", burst=1, drain=1.0))
    with PortalServer([portal], clock=clock) as server:
        code = portal.add_webhook(user_id=1, scopes="crm,user")
        done = threading.Event()

        def drain_after_each_refusal() -> None:
            seen = 0
            while not done.is_set():
                calls = portal.wait_for_calls(count=seen + 1, timeout=0.2)
                for call in calls[seen:]:
                    if call.error == "QUERY_LIMIT_EXCEEDED":
                        clock.advance(5.0)  # the client waits, the bucket drains
                seen = len(calls)

        drainer = threading.Thread(target=drain_after_each_refusal, daemon=True)
        drainer.start()
        try:
            bitrix = fast_bitrix24.Bitrix(f"{server.url}/rest/1/{code}/", verbose=False)
            bitrix.call("crm.deal.add", [{"fields": {"TITLE": f"deal {i}"}} for i in range(120)])
            deals = bitrix.get_all("crm.deal.list", {"select": ["ID", "TITLE"]})
        finally:
            done.set()
            drainer.join(5)

    assert sorted(int(deal["ID"]) for deal in deals) == list(range(1, 121))
    assert {deal["TITLE"] for deal in deals} == {f"deal {i}" for i in range(120)}
    refused = [c for c in portal.calls() if c.error == "QUERY_LIMIT_EXCEEDED"]
    assert refused
    assert all(c.status == 503 for c in refused)
    lists = [c for c in portal.calls("crm.deal.list") if c.status == 200]
    assert len(lists) == 3  # pages of 50: start 0 directly, then 50 and 100 inside a batch
