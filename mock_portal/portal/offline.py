"""Offline events: a queue per app, kept on the portal, that the app pulls with ``event.offline.*``.

An app binds an event with ``event_type=offline`` and no handler URL; from then on every time the event fires
(through the same trigger moments as online events) the portal writes a record to the app's queue instead of
POSTing it (facts §1, §5). The rules, all from the docs' offline-events page
(https://apidocs.bitrix24.com/api-reference/events/offline-events.html) and the method pages:

- the queue keeps the latest state of an object, not its history: a record with the same ``MESSAGE_ID`` that
  is waiting (not reserved by a ``process_id``) is refreshed in place, with the new ``TIMESTAMP_X``;
- ``auth_connector`` (a source key) splits the queue: a binding made with one writes to that source's queue,
  except for changes made by REST calls that carried the same ``auth_connector`` (the app's own writes);
  ``event.offline.get`` / ``list`` without a matching ``auth_connector`` see only records without a source;
- ``event.offline.get`` with ``clear=0`` reserves what it returns under a ``process_id`` (hidden from
  other calls), ``event.offline.clear`` removes a reservation's records, ``event.offline.error`` marks them
  erroneous;
- ONOFFLINEEVENT tells the app's online ONOFFLINEEVENT handler that the queue changed; its body carries no
  data and is throttled by the binding's ``options[minTimeout]`` (see :meth:`OfflineEvents._due`).

Planning stays where it is: a trigger plans a delivery for every binding, offline ones included (their
target is the empty handler URL); :meth:`OfflineEvents.absorb` takes those out of the plan, under the portal's
lock, writes them to the queue and adds the ONOFFLINEEVENT notifications, which the outbox then sends like any
other event.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from mock_portal.portal.dates import parse_moment
from mock_portal.portal.model import App, Binding, PortalError, RestCall
from mock_portal.portal.outbox import Planned

if TYPE_CHECKING:
    from mock_portal.portal.ids import RandomIds
    from mock_portal.portal.model import Clock
    from mock_portal.portal.state import PortalState
    from mock_portal.portal.tokens import Tokens
    from mock_portal.portal.triggers import Triggers

OFFLINE_TARGET = ""
"""The handler URL of an offline binding: none (the docs: "do not provide handler")."""

DEFAULT_LIMIT = 50
"""``event.offline.get``'s default ``limit`` (the method page)."""

DEFAULT_MIN_TIMEOUT = 1.0
"""ONOFFLINEEVENT's default ``minTimeout``, in seconds (on-offline-event.html#min-timeout)."""

MAX_ITEMS_PER_APP = 10_000
"""A bound on one app's queue in memory: past it the oldest record goes (the real queue is a table)."""

GET_FIELDS = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
"""Fields ``event.offline.get`` filters and sorts by (the method page)."""
LIST_FIELDS = (*GET_FIELDS, "PROCESS_ID", "ERROR")
"""Fields ``event.offline.list`` filters and sorts by (the method page)."""

_OPERATORS = (">=", "<=", "!=", "=", ">", "<", "!")


@dataclass
class OfflineItem:
    """One record of an app's offline queue."""

    id: int
    client_id: str
    connector: str  # the source key (auth_connector); "" for records without a source
    event: str
    data: Any
    message_id: str
    at: float
    process_id: str = ""
    error: bool = False

    def public(self, *, full: bool) -> dict[str, Any]:
        """The record as ``event.offline.get`` (``full=False``) or ``event.offline.list`` returns it."""
        row: dict[str, Any] = {
            "ID": str(self.id),
            "TIMESTAMP_X": datetime.fromtimestamp(self.at, tz=timezone.utc).isoformat(timespec="seconds"),
            "EVENT_NAME": self.event,
            "EVENT_DATA": self.data if self.data not in (None, [], {}) else False,
            # the docs' examples show false and nothing says what else it holds
            "EVENT_ADDITIONAL": False,
            "MESSAGE_ID": self.message_id,
        }
        if full:
            row["PROCESS_ID"] = self.process_id
            row["ERROR"] = "1" if self.error else "0"
        return row

    def value(self, name: str) -> Any:
        """The field ``name`` as filters and sorting compare it."""
        return {
            "ID": self.id,
            "TIMESTAMP_X": self.at,
            "EVENT_NAME": self.event,
            "MESSAGE_ID": self.message_id,
            "PROCESS_ID": self.process_id,
            "ERROR": 1 if self.error else 0,
        }[name]


@dataclass(frozen=True)
class OfflineStats:
    """What happened to one app's queue: records ever written, and those still there by state."""

    queued: int
    waiting: int
    reserved: int
    errored: int
    reservations: tuple[str, ...] = ()  # process ids still holding records


@dataclass
class _Hit:
    """One request to the portal (a REST call, or a control action): its source key and the ONOFFLINEEVENT
    handlers already notified in it."""

    connector: str | None
    notified: set[int] = field(default_factory=set)


class OfflineEvents:
    """The offline queues of one portal (every app's), and the ONOFFLINEEVENT notifications."""

    def __init__(
        self,
        lock: threading.RLock,
        state: PortalState,
        clock: Clock,
        ids: RandomIds,
        tokens: Tokens,
        triggers: Triggers,
    ) -> None:
        self._lock = lock
        self._state = state
        self._clock = clock
        self._ids = ids
        self._tokens = tokens
        self._triggers = triggers
        self._local = threading.local()
        self.clear()

    def clear(self) -> None:
        """Forget every queue and notification time (ids start again)."""
        with self._lock:
            self._items: list[OfflineItem] = []
            self._item_ids = itertools.count(1)
            self._queued: dict[str, int] = {}
            self._last_notified: dict[int, float] = {}

    def drop_app(self, client_id: str) -> None:
        """Forget an uninstalled app's queue."""
        with self._lock:
            self._items = [item for item in self._items if item.client_id != client_id]

    # ----------------------------------------------------------------- the request being served
    @contextlib.contextmanager
    def source(self, connector: object) -> Iterator[None]:
        """Run a REST call whose params carried ``auth_connector=connector`` (None: none): what it raises is
        not queued for bindings of that source, and it is one "call" for ONOFFLINEEVENT's ``minTimeout=0``.
        Nested blocks (a batch's commands) belong to the outermost one."""
        if getattr(self._local, "hit", None) is not None:
            yield
            return
        key = connector.strip() if isinstance(connector, str) and connector.strip() else None
        self._local.hit = _Hit(key)
        try:
            yield
        finally:
            self._local.hit = None

    # ----------------------------------------------------------------- writing the queue
    def absorb(self, plan: Sequence[Planned]) -> list[Planned]:
        """Take the deliveries planned for offline bindings out of ``plan`` and write them to the queues;
        return the rest, with the ONOFFLINEEVENT notifications that are due."""
        if not any(item.target == OFFLINE_TARGET for item in plan):
            return list(plan)
        hit: _Hit = getattr(self._local, "hit", None) or _Hit(None)
        out: list[Planned] = []
        changed: list[str] = []
        with self._lock:
            for item in plan:
                if item.target != OFFLINE_TARGET:
                    out.append(item)
                    continue
                if item.drop_reason is not None:
                    continue  # events raised before installFinish are dropped, not held (facts §5)
                binding = self._binding_of(item)
                if binding is None:
                    continue
                if binding.auth_connector and binding.auth_connector == hit.connector:
                    continue  # the app's own change, made with the source key it bound with
                self._write(binding, item)
                if binding.client_id not in changed:
                    changed.append(binding.client_id)
            for client_id in changed:
                out.extend(self._notifications(client_id, hit))
        return out

    def _binding_of(self, item: Planned) -> Binding | None:
        raw = item.body.payload.get("event_handler_id")
        offline = [
            b
            for b in self._state.bindings_for(item.event, client_id=item.client_id)
            if b.event_type == "offline"
        ]
        for binding in offline:
            if str(binding.id) == str(raw):
                return binding
        return offline[0] if offline else None

    def _write(self, binding: Binding, planned: Planned) -> None:
        data = planned.body.payload.get("data")
        # one record per object: the same event about the same data is the same message [inferred from the
        # docs: "only one record with the timestamp of the last change will remain"]
        digest = hashlib.md5(
            json.dumps([planned.event, data], sort_keys=True, default=str).encode(), usedforsecurity=False
        ).hexdigest()
        now = self._clock.now()
        self._queued[binding.client_id] = self._queued.get(binding.client_id, 0) + 1
        for existing in self._items:
            if (
                existing.client_id == binding.client_id
                and existing.connector == binding.auth_connector
                and existing.message_id == digest
                and not existing.process_id
                and not existing.error
            ):
                existing.at = now
                existing.data = data
                return
        mine = [item for item in self._items if item.client_id == binding.client_id]
        if len(mine) >= MAX_ITEMS_PER_APP:
            oldest = min(mine, key=lambda item: item.id)
            self._items.remove(oldest)
        self._items.append(
            OfflineItem(
                next(self._item_ids),
                binding.client_id,
                binding.auth_connector,
                planned.event,
                data,
                digest,
                now,
            )
        )

    def _notifications(self, client_id: str, hit: _Hit) -> list[Planned]:
        app = self._state.apps.get(client_id)
        if app is None or not app.active or not app.installed:
            return []
        plan: list[Planned] = []
        for binding in self._state.bindings_for("ONOFFLINEEVENT", client_id=client_id):
            if binding.event_type != "online" or not self._due(binding, hit):
                continue
            plan.append(self._notification(app, binding))
        return plan

    def _due(self, binding: Binding, hit: _Hit) -> bool:
        """Whether ONOFFLINEEVENT may go to ``binding`` now, and note it as sent if so.

        The rule, from https://apidocs.bitrix24.com/api-reference/events/on-offline-event.html#min-timeout:
        the interval is ``options[minTimeout]`` of the binding, in seconds, 1 by default; ``0`` sends only
        one notification within a single call to Bitrix24, whatever the number of records added; above 0 the
        first change sends one, and the next is not sent until that many seconds have passed (portal clock).
        """
        min_timeout = min_timeout_of(binding)
        now = self._clock.now()
        if min_timeout <= 0:
            if binding.id in hit.notified:
                return False
            hit.notified.add(binding.id)
        else:
            last = self._last_notified.get(binding.id)
            if last is not None and now - last < min_timeout:
                return False
        self._last_notified[binding.id] = now
        return True

    def _notification(self, app: App, binding: Binding) -> Planned:
        # the body the page shows: "data" arrives empty (so the form body has no data key at all, facts §1)
        # and user-mode auth with refresh_token (facts §2)
        token = self._tokens.issue(app)
        body = self._triggers.event_payload(
            "ONOFFLINEEVENT", app, binding=binding, auth="user", token=token, data=[]
        )
        return Planned("ONOFFLINEEVENT", binding.handler, body, app.client_id)

    # ----------------------------------------------------------------- reading the queue (event.offline.*)
    def get(
        self,
        client_id: str,
        *,
        connector: str = "",
        filter: Mapping[str, Any] | None = None,
        order: Mapping[str, Any] | None = None,
        limit: int = DEFAULT_LIMIT,
        clear: bool = True,
        process_id: str = "",
        error: bool = False,
    ) -> dict[str, Any]:
        """``event.offline.get``: the first records (by ``order``) matching ``filter``; removed at once with
        ``clear``, else reserved under ``process_id`` (a new one unless given). With ``process_id`` the call
        re-selects the records that reservation still holds. ``error`` includes records marked erroneous."""
        conditions = parse_filter(filter, GET_FIELDS)
        sorting = parse_order(order, GET_FIELDS, default=(("TIMESTAMP_X", False), ("ID", False)))
        if limit < 1:
            raise PortalError("ERROR_ARGUMENT", f"Argument 'limit' must be a positive integer, got {limit}")
        with self._lock:
            chosen = [
                item
                for item in self._items
                if item.client_id == client_id
                and item.connector == connector
                and item.process_id == process_id
                and (error or not item.error)
                and matches(item, conditions)
            ]
            chosen = sort_items(chosen, sorting)[:limit]
            rows = [item.public(full=False) for item in chosen]
            if clear:
                taken = {id(item) for item in chosen}
                self._items = [item for item in self._items if id(item) not in taken]
                return {"process_id": None, "events": rows}
            pid = process_id or self._ids.hex(32)
            for item in chosen:
                item.process_id = pid
            return {"process_id": pid, "events": rows}

    def list(
        self,
        client_id: str,
        *,
        connector: str = "",
        filter: Mapping[str, Any] | None = None,
        order: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """``event.offline.list``: every record of the source's queue matching ``filter``, nothing changed."""
        conditions = parse_filter(filter, LIST_FIELDS)
        sorting = parse_order(order, LIST_FIELDS, default=(("ID", False),))
        with self._lock:
            chosen = [
                item
                for item in self._items
                if item.client_id == client_id and item.connector == connector and matches(item, conditions)
            ]
            return [item.public(full=True) for item in sort_items(chosen, sorting)]

    def clear_process(
        self,
        client_id: str,
        process_id: str,
        *,
        ids: Sequence[int] | None = None,
        message_ids: Sequence[str] | None = None,
    ) -> int:
        """``event.offline.clear``: remove the records reserved under ``process_id`` (only those with ``ids``,
        or else those with ``message_ids``, when given); return how many went."""
        wanted_ids = {int(i) for i in ids} if ids else None
        wanted_messages = {str(m) for m in message_ids} if message_ids and wanted_ids is None else None
        with self._lock:

            def goes(item: OfflineItem) -> bool:
                return (
                    item.client_id == client_id
                    and item.process_id == process_id
                    and (wanted_ids is None or item.id in wanted_ids)
                    and (wanted_messages is None or item.message_id in wanted_messages)
                )

            before = len(self._items)
            self._items = [item for item in self._items if not goes(item)]
            return before - len(self._items)

    def mark_error(self, client_id: str, process_id: str, *, message_ids: Sequence[str] | None = None) -> int:
        """``event.offline.error``: mark the records of ``process_id`` (those with ``message_ids``, when
        given) as erroneous. They leave the reservation, so ``event.offline.get`` with ``error=1`` hands them
        out again [inferred: the page says only that the record is kept, marked with an error]."""
        wanted = {str(m) for m in message_ids} if message_ids else None
        count = 0
        with self._lock:
            for item in self._items:
                if (
                    item.client_id == client_id
                    and item.process_id == process_id
                    and (wanted is None or item.message_id in wanted)
                ):
                    item.error = True
                    item.process_id = ""
                    count += 1
        return count

    def stats(self, client_id: str) -> OfflineStats:
        """How the app's queue stands (every source)."""
        with self._lock:
            mine = [item for item in self._items if item.client_id == client_id]
            reservations = sorted({item.process_id for item in mine if item.process_id})
            return OfflineStats(
                queued=self._queued.get(client_id, 0),
                waiting=sum(1 for item in mine if not item.process_id and not item.error),
                reserved=sum(1 for item in mine if item.process_id),
                errored=sum(1 for item in mine if item.error),
                reservations=tuple(reservations),
            )


def min_timeout_of(binding: Binding) -> float:
    """``options[minTimeout]`` of an ONOFFLINEEVENT binding, in seconds (1 when absent or unreadable)."""
    for key, value in binding.options.items():
        if str(key).lower() == "mintimeout":
            try:
                number = float(value)
            except (TypeError, ValueError):
                return DEFAULT_MIN_TIMEOUT
            return max(0.0, number) if number == number else DEFAULT_MIN_TIMEOUT
    return DEFAULT_MIN_TIMEOUT


# ----------------------------------------------------------------- filters and sorting
Condition = tuple[str, str, tuple[Any, ...]]  # (field, operator, values)


def parse_filter(raw: Any, fields: Sequence[str]) -> list[Condition]:
    """A Bitrix filter (``{"=EVENT_NAME": "ONCRMLEADADD", ">=ID": 1}``: the operator before the field name,
    none meaning ``=``, a list value meaning "any of") as conditions; unknown fields and bad values raise."""
    if raw is None or raw == "" or raw == []:
        return []
    if not isinstance(raw, Mapping):
        raise PortalError("ERROR_ARGUMENT", "Argument 'filter' must be an array of FIELD => value")
    conditions: list[Condition] = []
    for key, value in raw.items():
        text = str(key).strip()
        operator = next((op for op in _OPERATORS if text.startswith(op)), "=")
        name = text[len(operator) :].strip().upper() if text.startswith(operator) else text.upper()
        if name not in fields:
            raise PortalError(
                "ERROR_ARGUMENT",
                f"Unknown filter field {str(key)[:40]!r}; filter by {', '.join(fields)}",
            )
        items = list(value.values()) if isinstance(value, Mapping) else value
        values = tuple(items) if isinstance(items, list) else (items,)
        if not values or (len(values) > 1 and operator not in ("=", "!=", "!")):
            raise PortalError("ERROR_ARGUMENT", f"Filter {str(key)[:40]!r} needs one value")
        op = "!=" if operator == "!" else operator
        conditions.append((name, op, tuple(_comparable(name, v, str(key)) for v in values)))
    return conditions


def _comparable(name: str, value: Any, key: str) -> Any:
    if isinstance(value, (Mapping, list)):
        raise PortalError("ERROR_ARGUMENT", f"Filter {key[:40]!r}: a value must be a scalar")
    if name in ("ID", "ERROR"):
        if name == "ERROR" and isinstance(value, str) and value.strip().upper() in ("Y", "N"):
            return 1 if value.strip().upper() == "Y" else 0
        try:
            return int(str(value).strip())
        except ValueError:
            raise PortalError(
                "ERROR_ARGUMENT", f"Filter {key[:40]!r}: {str(value)[:40]!r} is not an integer"
            ) from None
    if name == "TIMESTAMP_X":
        return _timestamp(value, key)
    if name == "EVENT_NAME":
        return str(value).strip().upper()
    return "" if value is None else str(value)


def _timestamp(value: Any, key: str) -> float:
    text = str(value).strip()
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return float(text)
    moment = parse_moment(text)
    if moment is None:
        raise PortalError(
            "ERROR_ARGUMENT", f"Filter {key[:40]!r}: {text[:40]!r} is not a date (ISO 8601 or unix time)"
        )
    return moment.timestamp()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    ">": lambda a, b: bool(a > b),
    "<": lambda a, b: bool(a < b),
    ">=": lambda a, b: bool(a >= b),
    "<=": lambda a, b: bool(a <= b),
}


def matches(item: OfflineItem, conditions: Iterable[Condition]) -> bool:
    """Whether ``item`` meets every condition (``=`` with several values: any of them; ``!=``: none)."""
    for name, op, values in conditions:
        actual = item.value(name)
        if op == "!=":
            if any(actual == v for v in values):
                return False
        elif not any(_COMPARE[op](actual, v) for v in values):
            return False
    return True


Sorting = tuple[tuple[str, bool], ...]  # (field, descending)


def parse_order(raw: Any, fields: Sequence[str], *, default: Sorting) -> Sorting:
    """A Bitrix order (``{"ID": "DESC"}``); unknown fields or directions raise."""
    if raw is None or raw == "" or raw == [] or raw == {}:
        return default
    if not isinstance(raw, Mapping):
        raise PortalError("ERROR_ARGUMENT", "Argument 'order' must be an array of FIELD => ASC|DESC")
    out: list[tuple[str, bool]] = []
    for key, direction in raw.items():
        name = str(key).strip().upper()
        if name not in fields:
            raise PortalError(
                "ERROR_ARGUMENT", f"Unknown order field {str(key)[:40]!r}; order by {', '.join(fields)}"
            )
        word = str(direction).strip().upper()
        if word not in ("ASC", "DESC"):
            raise PortalError(
                "ERROR_ARGUMENT", f"Order of {name} must be ASC or DESC, got {str(direction)[:20]!r}"
            )
        out.append((name, word == "DESC"))
    return tuple(out)


def sort_items(items: Sequence[OfflineItem], sorting: Sorting) -> list[OfflineItem]:
    """``items`` sorted by each key in turn (stable sorts from the last key to the first), ties by ID."""
    result = sorted(items, key=lambda item: item.id)
    for name, descending in reversed(sorting):
        result.sort(key=lambda item: item.value(name), reverse=descending)
    return result


# ----------------------------------------------------------------- the SHOULD clause's judgement
Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class CatchUpVerdict:
    """Whether an app that uses offline events caught up and cleared what it took, and why."""

    outcome: Outcome
    reason: str


def judge_catch_up(client_id: str, calls: Iterable[RestCall], stats: OfflineStats) -> CatchUpVerdict:
    """Judge the SHOULD clause "a handler that declares offline use catches up through ``event.offline.get``
    and clears what it processed", on evidence only: the REST calls the portal recorded for the app and how
    its queue stands now (:meth:`OfflineEvents.stats`).

    - nothing ever queued for the app: inconclusive (there was nothing to catch up on);
    - records queued and no successful ``event.offline.get`` by the app: fail;
    - a reservation (``clear=0``) still holding records, never cleared nor marked erroneous: fail;
    - otherwise pass. Records queued after the app's last call are not held against it: when the handler
      should have called again is a matter of timing, and timing is no evidence.
    """
    if stats.queued == 0:
        return CatchUpVerdict(
            "inconclusive", "no offline event was queued for the app, so there was nothing to catch up on"
        )
    mine = [c for c in calls if c.client_id == client_id and c.status == 200 and c.error is None]
    gets = [c for c in mine if c.method == "event.offline.get"]
    if not gets:
        return CatchUpVerdict(
            "fail", f"{stats.queued} offline event(s) were queued and the app never called event.offline.get"
        )
    if stats.reservations:
        shown = ", ".join(stats.reservations[:3])
        return CatchUpVerdict(
            "fail",
            f"{stats.reserved} record(s) taken with clear=0 were never cleared (event.offline.clear) nor "
            f"marked erroneous (event.offline.error): process_id {shown}",
        )
    clears = sum(1 for c in mine if c.method == "event.offline.clear")
    return CatchUpVerdict(
        "pass",
        f"{len(gets)} event.offline.get call(s), {clears} event.offline.clear call(s), "
        "no reservation left open",
    )
