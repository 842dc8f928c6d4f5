"""The record store: bounded in bytes and count, paginated by cursor, awaitable; strict JSON in, safe out."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import pytest

from mock_portal.errors import UsageError
from mock_portal.jsonio import JsonInputError, encode_json, loads_strict
from mock_portal.records import CALLS, DELIVERIES, PortalRecords, RecordStore


@dataclass(frozen=True)
class _Call:
    id: int
    method: str
    text: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "method": self.method, "text": self.text}


def _walk(store: RecordStore, kind: str, limit: int, **tags: str) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    after = None
    while True:
        page = store.page(kind, after=after, limit=limit, **tags)
        seen.extend(json.loads(page.json()))
        if page.next is None:
            return seen
        after = page.next


def test_pages_walk_every_record_once_in_order_with_filters() -> None:
    store = PortalRecords()
    for i in range(1, 251):
        store.add_call(_Call(i, "im.message.add" if i % 3 else "event.bind"))
    assert [r["id"] for r in _walk(store, CALLS, 7)] == list(range(1, 251))
    bound = _walk(store, CALLS, 10, method="event.bind")
    assert [r["id"] for r in bound] == [i for i in range(1, 251) if i % 3 == 0]
    assert store.count(CALLS) == 250
    assert store.count(CALLS, method="event.bind") == len(bound)
    assert [c.id for c in store.calls("event.bind")] == [r["id"] for r in bound]
    last = store.page(CALLS, limit=1000)
    assert last.next is None
    assert store.count(CALLS, after=last.cursor) == 0
    store.add_call(_Call(251, "x"))
    assert [json.loads(d)["id"] for d in store.page(CALLS, after=last.cursor).items] == [251]


def test_byte_cap_drops_the_oldest_first_and_counts_them() -> None:
    store = PortalRecords(max_bytes=200_000)
    big = "x" * 10_000
    for i in range(1, 101):
        store.add_call(_Call(i, "m", big))
    stats = store.stats()
    assert stats["bytes"] <= 200_000
    kept = stats["kept"][CALLS]
    assert 5 <= kept < 100
    assert stats["dropped"][CALLS] == 100 - kept
    assert store.dropped() == 100 - kept
    # what is left is the newest, and a cursor into the dropped part starts at the oldest kept
    ids = [r["id"] for r in _walk(store, CALLS, 3)]
    assert ids == list(range(101 - kept, 101))
    assert json.loads(store.page(CALLS, after=1, limit=1).items[0])["id"] == 101 - kept


def test_count_cap_and_both_kinds_share_one_order() -> None:
    store = RecordStore(max_records=10)
    for i in range(8):
        store.add(CALLS, i, {"i": i})
        store.add(DELIVERIES, i, {"i": i})
    assert len(store) == 10
    assert store.stats()["dropped"] == {CALLS: 3, DELIVERIES: 3}
    assert store.records(CALLS) == [3, 4, 5, 6, 7]
    store.set_limits(max_records=4)
    assert store.records(CALLS) == [6, 7]
    with pytest.raises(UsageError, match="max_bytes"):
        store.set_limits(max_bytes=0)


def test_page_stops_at_its_byte_budget_but_always_holds_one() -> None:
    store = RecordStore()
    for i in range(5):
        store.add(CALLS, i, {"blob": "y" * 1000})
    page = store.page(CALLS, limit=100, max_bytes=2500)
    assert len(page.items) == 2
    assert page.next is not None
    assert len(store.page(CALLS, limit=100, max_bytes=10).items) == 1


def test_clear_keeps_cursors_moving_forward() -> None:
    store = RecordStore()
    first = store.add(CALLS, "a", {"a": 1})
    store.clear()
    assert store.count(CALLS) == 0
    second = store.add(CALLS, "b", {"b": 1})
    assert second > first
    assert store.records(
        CALLS,
    ) == ["b"]
    assert store.count(CALLS, after=first) == 1


def test_wait_wakes_on_a_record_from_another_thread_and_listeners_run() -> None:
    store = PortalRecords()
    woken: list[int] = []
    store.listen(lambda: woken.append(1))
    ready = threading.Event()

    def record() -> None:
        ready.wait()
        store.add_call(_Call(1, "im.message.add"))

    worker = threading.Thread(target=record)
    worker.start()
    ready.set()
    assert store.wait(CALLS, 1, 30, method="im.message.add")
    worker.join()
    assert woken
    assert not store.wait(CALLS, 2, 0)


def test_records_are_encoded_once_as_json_any_parser_takes() -> None:
    store = RecordStore()
    store.add(CALLS, None, {"nan": float("nan"), "inf": float("-inf"), "lone": "\ud800", "ok": "привет"})
    [data] = store.page(CALLS).items
    value = json.loads(data)
    assert value["nan"] is None
    assert value["inf"] is None
    assert value["lone"] == "\ud800"
    assert value["ok"] == "привет"
    data.decode("utf-8")  # valid UTF-8 throughout
    assert encode_json({"x": object()}).startswith(b'{"x":"<object')


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN"),
        ('{"a": Infinity}', "Infinity"),
        ('{"a": 1e400}', "out of range"),
        ('{"a": ' + "9" * 50 + "}", "digits"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ("[" * 20 + "]" * 20, "levels"),
        ('{"a": 1', "Expecting"),
        (b'{"a": "\xff"}', "UTF-8"),
    ],
)
def test_strict_json_refuses_what_cannot_be_stored_and_shown(text: str | bytes, reason: str) -> None:
    with pytest.raises(JsonInputError, match=reason):
        loads_strict(text, max_depth=16)


def test_strict_json_takes_ordinary_json() -> None:
    value = loads_strict('{"a": [1, 2.5, "é", "\\ud83d\\ude00", null, true]}')
    assert value == {"a": [1, 2.5, "é", "😀", None, True]}
