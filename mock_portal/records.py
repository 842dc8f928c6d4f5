"""What a portal keeps of its REST calls and delivery attempts: bounded in bytes, paginated, awaitable.

Every record is redacted and encoded as JSON once, when it is recorded (by the thread that made the call or
the attempt), so reading a listing is a join of ready bytes: nothing is redacted or serialized per read, and a
page of 100k records costs no more than copying it out. The store keeps records of several kinds (``calls``,
``deliveries``) in one arrival order; each has a sequence number that never repeats, even across
:meth:`RecordStore.clear`, which is the pagination cursor (``after``).

Memory is capped in bytes (``max_bytes``, an estimate of what each record holds in memory: its object, its
JSON and, for an attempt, the raw body) and in count (``max_records``); past either the oldest records are
dropped first, whatever their kind, and counted (:meth:`RecordStore.stats`).

Waiting: :meth:`RecordStore.wait` blocks a thread until enough matching records exist; :meth:`listen`
registers a callback run after every change, which an event loop turns into a wake-up (the server does, so
a long poll holds no thread).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mock_portal.errors import UsageError
from mock_portal.jsonio import encode_json
from mock_portal.redact import SECRET_KEYS

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt

__all__ = [
    "CALLS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "DELIVERIES",
    "Page",
    "PortalRecords",
    "RecordStore",
    "delivery_tags",
]

CALLS: Final = "calls"
DELIVERIES: Final = "deliveries"
DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
"""Estimated memory a portal's records may hold (256 MiB) before the oldest are dropped."""
DEFAULT_MAX_RECORDS: Final = 200_000
"""Records a portal keeps at most, all kinds together."""
_OVERHEAD: Final = 500  # bytes an entry costs beyond its payloads (object headers, dicts, list slots)


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    record: Any
    data: bytes
    tags: tuple[tuple[str, str], ...]
    cost: int


@dataclass(frozen=True)
class Page:
    """One page of a listing: the records' JSON; ``next``, the cursor of the following page (None when this
    one reached the end); ``cursor``, where this page stopped (to ask later for what arrives after it)."""

    items: tuple[bytes, ...]
    next: int | None
    cursor: int | None

    def json(self) -> bytes:
        """The page as one JSON array."""
        return b"[" + b",".join(self.items) + b"]"


class _Kind:
    """The records of one kind, oldest first: entries from ``head`` on are kept (a list with a moving head,
    compacted now and then, so dropping the oldest is O(1) and finding a cursor O(log n))."""

    __slots__ = ("counts", "dropped", "entries", "head", "seqs")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.seqs: list[int] = []
        self.head = 0
        self.counts: Counter[tuple[tuple[str, str], ...]] = Counter()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.entries) - self.head

    def oldest(self) -> int | None:
        return self.seqs[self.head] if self.head < len(self.seqs) else None

    def pop_oldest(self) -> _Entry:
        entry = self.entries[self.head]
        self.head += 1
        self.counts[entry.tags] -= 1
        if not self.counts[entry.tags]:
            del self.counts[entry.tags]
        if self.head > 1024 and self.head * 2 > len(self.entries):
            # new lists, not del: a reader may be walking a snapshot of the old ones (see RecordStore.page)
            self.entries = self.entries[self.head :]
            self.seqs = self.seqs[self.head :]
            self.head = 0
        return entry

    def start(self, after: int | None) -> int:
        """Index of the first kept entry with a sequence number above ``after``."""
        if after is None:
            return self.head
        return bisect.bisect_right(self.seqs, after, lo=self.head)


def _matches(tags: tuple[tuple[str, str], ...], wanted: Mapping[str, str]) -> bool:
    if not wanted:
        return True
    have = dict(tags)
    return all(have.get(key) == value for key, value in wanted.items())


class RecordStore:
    """Records of several kinds in one arrival order, bounded in bytes and count; thread-safe.

    Each record is added with its JSON view (encoded here, once), string ``tags`` to filter on and an
    estimated memory ``cost``. Filters (``**tags``) compare tag values exactly.
    """

    def __init__(
        self,
        kinds: tuple[str, ...] = (CALLS, DELIVERIES),
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._kinds = {kind: _Kind() for kind in kinds}
        self._seq = 0
        self._bytes = 0
        self._listeners: list[Callable[[], None]] = []
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.set_limits(max_bytes=max_bytes, max_records=max_records)

    def set_limits(self, *, max_bytes: int | None = None, max_records: int | None = None) -> None:
        """Change the caps (the oldest records are dropped at once if the store is over them)."""
        for name, value in (("max_bytes", max_bytes), ("max_records", max_records)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"RecordStore: {name} must be a positive integer, got {value!r}")
        with self._lock:
            if max_bytes is not None:
                self.max_bytes = max_bytes
            if max_records is not None:
                self.max_records = max_records
            self._evict()

    # ------------------------------------------------------------------ writing
    def add(
        self, kind: str, record: Any, view: Any, *, tags: Mapping[str, str] | None = None, extra_cost: int = 0
    ) -> int:
        """Keep ``record`` with its JSON ``view`` (already redacted); return its sequence number.

        ``extra_cost`` adds bytes the record holds beyond its JSON view (an attempt's raw body).
        """
        data = encode_json(view)
        tag_items = tuple(sorted((tags or {}).items()))
        # the object holds about as much again as its JSON (strings and containers of the same values)
        cost = 2 * len(data) + extra_cost + _OVERHEAD
        with self._lock:
            store = self._kinds[kind]
            self._seq += 1
            entry = _Entry(self._seq, record, data, tag_items, cost)
            store.entries.append(entry)
            store.seqs.append(entry.seq)
            store.counts[tag_items] += 1
            self._bytes += cost
            self._evict()
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return entry.seq

    def _evict(self) -> None:
        kept = sum(len(k) for k in self._kinds.values())
        while kept and (self._bytes > self.max_bytes or kept > self.max_records):
            oldest = min(
                (k for k in self._kinds.values() if len(k)),
                key=lambda k: k.oldest() or 0,
            )
            entry = oldest.pop_oldest()
            oldest.dropped += 1
            self._bytes -= entry.cost
            kept -= 1

    def clear(self) -> None:
        """Forget every record (sequence numbers go on from where they were; drop counts are kept)."""
        with self._lock:
            for kind, store in list(self._kinds.items()):
                fresh = _Kind()
                fresh.dropped = store.dropped
                self._kinds[kind] = fresh
            self._bytes = 0
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    # ------------------------------------------------------------------ reading
    def records(self, kind: str, **tags: str) -> list[Any]:
        """The kept records of ``kind`` matching ``tags``, oldest first."""
        with self._lock:
            store = self._kinds[kind]
            entries = store.entries[store.head :]
        return [e.record for e in entries if _matches(e.tags, tags)]

    def count(self, kind: str, *, after: int | None = None, **tags: str) -> int:
        """How many kept records of ``kind`` match ``tags`` (only those past the cursor ``after``, if any)."""
        with self._lock:
            store = self._kinds[kind]
            if after is None:
                return sum(n for key, n in store.counts.items() if _matches(key, tags))
            start = store.start(after)
            entries = store.entries[start:]
        return sum(1 for e in entries if _matches(e.tags, tags))

    def page(
        self, kind: str, *, after: int | None = None, limit: int = 100, max_bytes: int = 8 << 20, **tags: str
    ) -> Page:
        """Up to ``limit`` matching records past ``after``, and at most about ``max_bytes`` of JSON (always at
        least one record when any is left), oldest first."""
        with self._lock:
            store = self._kinds[kind]
            # later records are only appended, and eviction moves the head: a snapshot of the list is enough
            index, end, entries = store.start(after), len(store.entries), store.entries
        items: list[bytes] = []
        size = 0
        last_seq = after
        while index < end:
            entry = entries[index]
            index += 1
            if not _matches(entry.tags, tags):
                last_seq = entry.seq
                continue
            if items and (len(items) >= limit or size + len(entry.data) > max_bytes):
                return Page(tuple(items), last_seq, last_seq)
            items.append(entry.data)
            size += len(entry.data)
            last_seq = entry.seq
        return Page(tuple(items), None, last_seq)

    def entries_view(self, kind: str) -> Iterator[bytes]:
        """The JSON of every kept record of ``kind`` (a snapshot), oldest first."""
        with self._lock:
            store = self._kinds[kind]
            entries = store.entries[store.head :]
        return (e.data for e in entries)

    def stats(self) -> dict[str, Any]:
        """Kept and dropped counts per kind, estimated bytes held and the caps."""
        with self._lock:
            return {
                "kept": {kind: len(store) for kind, store in self._kinds.items()},
                "dropped": {kind: store.dropped for kind, store in self._kinds.items()},
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "max_records": self.max_records,
            }

    def dropped(self) -> int:
        """How many records were dropped to stay within the caps, all kinds together."""
        with self._lock:
            return sum(store.dropped for store in self._kinds.values())

    def __len__(self) -> int:
        with self._lock:
            return sum(len(store) for store in self._kinds.values())

    # ------------------------------------------------------------------ waiting
    def wait(self, kind: str, count: int, timeout: float, **tags: str) -> bool:
        """Block until ``count`` matching records of ``kind`` are kept, or ``timeout`` seconds pass; return
        whether the count was reached."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changed:
            while True:
                store = self._kinds[kind]
                if sum(n for key, n in store.counts.items() if _matches(key, tags)) >= count:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the recording thread, outside the lock) after every change."""
        with self._lock:
            self._listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def notify(self) -> None:
        """Wake every waiter and listener (after a change made outside the store)."""
        with self._lock:
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


class PortalRecords(RecordStore):
    """A portal's REST calls and delivery attempts (the two kinds), with their JSON views made here."""

    def add_call(self, call: Any) -> int:
        """Keep a REST call (a :class:`~mock_portal.portal.RestCall`, already redacted)."""
        return self.add(CALLS, call, call.to_dict(), tags={"method": call.method})

    def add_attempt(self, attempt: Attempt) -> int:
        """Keep a delivery attempt; its JSON view is redacted here, once.

        :meth:`~mock_portal.delivery.Attempt.to_dict` redacts the body, and an attempt's other texts are
        redacted when it is made; only the secret keys are masked again here (a second pass of the text
        patterns over the body would double the cost of recording for nothing).
        """
        return self.add(
            DELIVERIES,
            attempt,
            _mask_keys(attempt.to_dict()),
            tags={"event": attempt.event.upper(), "outcome": attempt.outcome},
            extra_cost=len(attempt.body),
        )

    def calls(self, method: str | None = None) -> list[Any]:
        """Kept REST calls, oldest first, optionally only those of ``method``."""
        return self.records(CALLS, **({"method": method} if method is not None else {}))

    def deliveries(self, event: str | None = None, outcome: str | None = None) -> list[Any]:
        """Kept attempts, oldest first, optionally of ``event`` (any case) and with ``outcome``."""
        return self.records(DELIVERIES, **delivery_tags(event, outcome))


def _mask_keys(view: dict[str, Any]) -> dict[str, Any]:
    """``view`` with the values of secret keys masked at its top level (texts are left as they are)."""
    return {k: ("***" if k.lower() in SECRET_KEYS and v not in (None, "") else v) for k, v in view.items()}


def delivery_tags(event: str | None, outcome: str | None) -> dict[str, str]:
    """The tag filter for attempts of ``event`` (any case) with ``outcome`` (None: any)."""
    tags = {}
    if event is not None:
        tags["event"] = event.upper()
    if outcome is not None:
        tags["outcome"] = outcome
    return tags
