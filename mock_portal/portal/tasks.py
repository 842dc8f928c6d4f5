"""The portal's tasks, and the events each write fires.

:class:`TaskStore` keeps the tasks, each a mapping of its fields by their upper-case names (``TITLE``,
``RESPONSIBLE_ID``...), as ``tasks.task.add`` takes them and ``tasks.task.list`` filters and orders by them;
the REST side answers them in camelCase (https://apidocs.bitrix24.com/api-reference/tasks/fields.html).
:class:`Tasks` is the portal's side: each write changes the store under the portal's lock, the triggers plan
``ONTASKADD``, ``ONTASKUPDATE`` or ``ONTASKDELETE`` to every app bound to it, and the outbox sends the plan
once the lock is released, or queues it when the write came through a REST call (facts §1).

The event bodies carry what the event pages show: ``FIELDS_BEFORE`` and ``FIELDS_AFTER`` (``{ID}``, or the
string ``undefined`` where there is no task on that side) and ``IS_ACCESSIBLE_BEFORE`` / ``_AFTER``
(https://apidocs.bitrix24.com/api-reference/tasks/events-tasks/on-task-add.html and its two siblings).

Errors are those the method pages list, with their codes and texts (``ERROR_CORE`` for a task the portal
refuses, ``"0"`` / ``"100"`` / ``"1048582"`` for a task id that is missing, malformed or unknown).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from mock_portal.portal._parts import PortalParts
from mock_portal.portal.dates import parse_moment
from mock_portal.portal.model import AuthMode, Clock, PortalError

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt

__all__ = [
    "DATE_FIELDS",
    "LIST_FIELDS",
    "READ_ONLY",
    "STATUSES",
    "TASK_EVENTS",
    "TaskStore",
    "Tasks",
    "camel",
    "task_error",
]

STATUSES: Final = ("2", "3", "4", "5", "6")
"""Task statuses: waiting, in progress, awaiting control, completed, postponed (fields.md, ``status``)."""
COMPLETED: Final = "5"
DATE_FIELDS: Final = frozenset(
    {"DEADLINE", "START_DATE_PLAN", "END_DATE_PLAN", "DATE_START", "CREATED_DATE", "CHANGED_DATE"}
)
LIST_FIELDS: Final = frozenset({"ACCOMPLICES", "AUDITORS", "TAGS"})
READ_ONLY: Final = frozenset(
    {
        "ID",
        "CREATED_DATE",
        "CHANGED_BY",
        "CHANGED_DATE",
        "STATUS_CHANGED_BY",
        "STATUS_CHANGED_DATE",
        "CLOSED_BY",
        "CLOSED_DATE",
        "ACTIVITY_DATE",
        "GUID",
        "COMMENTS_COUNT",
        "SITE_ID",
        "FAVORITE",
    }
)
"""Fields a caller cannot set: the portal keeps them (and ignores them in ``fields``, as unknown ones)."""

TASK_EVENTS: Final = {"add": "ONTASKADD", "update": "ONTASKUPDATE", "delete": "ONTASKDELETE"}
_UF_NAME: Final = re.compile(r"^UF_[A-Z0-9_]{1,50}$")
_UNDEFINED: Final = "undefined"  # what the event pages send where a side has no task

# a new task's fields, in the order the docs' answers list them (tasks-task-add.md, fields.md)
_DEFAULTS: Final[tuple[tuple[str, Any], ...]] = (
    ("PARENT_ID", None),
    ("TITLE", ""),
    ("DESCRIPTION", ""),
    ("MARK", None),
    ("PRIORITY", "1"),
    ("MULTITASK", "N"),
    ("NOT_VIEWED", "N"),
    ("REPLICATE", "N"),
    ("STAGE_ID", "0"),
    ("CREATED_BY", None),
    ("CREATED_DATE", None),
    ("RESPONSIBLE_ID", None),
    ("CHANGED_BY", None),
    ("CHANGED_DATE", None),
    ("STATUS_CHANGED_BY", None),
    ("CLOSED_BY", None),
    ("CLOSED_DATE", None),
    ("ACTIVITY_DATE", None),
    ("DATE_START", None),
    ("DEADLINE", None),
    ("START_DATE_PLAN", None),
    ("END_DATE_PLAN", None),
    ("GUID", None),
    ("XML_ID", None),
    ("COMMENTS_COUNT", None),
    ("ALLOW_CHANGE_DEADLINE", "N"),
    ("ALLOW_TIME_TRACKING", "N"),
    ("TASK_CONTROL", "N"),
    ("ADD_IN_REPORT", "N"),
    ("TIME_ESTIMATE", "0"),
    ("MATCH_WORK_TIME", "N"),
    ("SITE_ID", "s1"),
    ("STATUS", "2"),
    ("STATUS_CHANGED_DATE", None),
    ("DURATION_PLAN", None),
    ("DURATION_TYPE", "days"),
    ("FAVORITE", "N"),
    ("GROUP_ID", "0"),
    ("ACCOMPLICES", ()),
    ("AUDITORS", ()),
    ("TAGS", ()),
)
FIELDS: Final = ("ID", *(name for name, _ in _DEFAULTS))
"""Every system field of a task, in answer order."""
_KNOWN: Final = frozenset(FIELDS)


def camel(name: str) -> str:
    """A field's name in answers: ``RESPONSIBLE_ID`` -> ``responsibleId``, ``UF_CRM_TASK`` -> ``ufCrmTask``
    (the docs' answers to ``select=[UF_CRM_TASK]``)."""
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def task_error(description: str) -> PortalError:
    """A task the portal refuses: ``ERROR_CORE`` with the text the pages show (they end in ``<br>``)."""
    return PortalError("ERROR_CORE", f"{description}<br>", 400)


class TaskStore:
    """The tasks by id; ids count up from 1 as the portal's do."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every task."""
        self.items: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)


def _stamp(clock: Clock) -> str:
    return datetime.fromtimestamp(clock.now(), tz=timezone.utc).isoformat(timespec="seconds")


def _date(name: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    moment = parse_moment(text)
    if moment is None:
        raise task_error(f"Invalid date in the field {name}: {text[:40]!r}")
    return moment.isoformat(timespec="seconds")


def _ids(name: str, value: Any) -> list[str]:
    rows = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    out: list[str] = []
    for row in rows:
        if row in (None, ""):
            continue
        text = str(row).strip()
        if name != "TAGS" and not text.isdigit():
            raise task_error(f"Invalid user id in the field {name}: {text[:40]!r}")
        if text not in out:
            out.append(text)
    return out


def _scalar(value: Any) -> Any:
    # the portal keeps and answers scalars as strings (numbers and flags included)
    if value is None:
        return None
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, (int, float, str)):
        return str(value)
    return value


class Tasks(PortalParts):
    """The task operations of :class:`~mock_portal.portal.Portal` (for :mod:`mock_portal.rest.tasks`)."""

    _tasks: TaskStore
    _users: dict[int, dict[str, Any]]
    clock: Clock

    # ----------------------------------------------------------------- writes
    def task_add(
        self,
        fields: Mapping[str, Any],
        *,
        user_id: int = 1,
        auth: AuthMode = "user",
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], list[Attempt]]:
        """Add a task (``TITLE`` and ``RESPONSIBLE_ID`` required); fire ONTASKADD. Returns a copy of the task
        and the attempts (none when queued)."""
        with self._lock:
            now = _stamp(self.clock)
            item: dict[str, Any] = {"ID": "0", **{name: _fresh(value) for name, value in _DEFAULTS}}
            item.update(
                CREATED_BY=str(user_id),
                CREATED_DATE=now,
                CHANGED_BY=str(user_id),
                CHANGED_DATE=now,
                ACTIVITY_DATE=now,
                STATUS_CHANGED_DATE=now,
                GUID="{" + str(uuid.UUID(int=self._ids.randrange(2**128), version=4)) + "}",
            )
            self._check_task(item, fields, adding=True)
            new_id = self._tasks.next_id()
            item["ID"] = str(new_id)
            self._tasks.items[new_id] = item
            data = {
                "FIELDS_BEFORE": _UNDEFINED,
                "FIELDS_AFTER": {"ID": new_id},
                "IS_ACCESSIBLE_BEFORE": "N",
                "IS_ACCESSIBLE_AFTER": _UNDEFINED,
            }
            plan = self._triggers.entity_changed("ONTASKADD", data, user_id=user_id, auth=auth)
            answer = _copy(item)
        return answer, self._outbox.execute(plan, timeout)

    def task_update(
        self,
        task_id: int,
        fields: Mapping[str, Any],
        *,
        user_id: int = 1,
        auth: AuthMode = "user",
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], list[Attempt]]:
        """Change a task's fields; fire ONTASKUPDATE. Returns a copy of the task and the attempts."""
        with self._lock:
            item = self._tasks.items.get(task_id)
            if item is None:
                # tasks-task-update.md: no such task (or no access to it)
                raise PortalError("0", "Action on the task is not allowed (internal error)", 400)
            changed = dict(item)
            self._check_task(changed, fields, adding=False)
            now = _stamp(self.clock)
            if changed["STATUS"] != item["STATUS"]:
                changed.update(STATUS_CHANGED_BY=str(user_id), STATUS_CHANGED_DATE=now)
                done = changed["STATUS"] == COMPLETED
                changed.update(CLOSED_BY=str(user_id) if done else None, CLOSED_DATE=now if done else None)
            changed.update(CHANGED_BY=str(user_id), CHANGED_DATE=now, ACTIVITY_DATE=now)
            self._tasks.items[task_id] = changed
            data = {
                "FIELDS_BEFORE": {"ID": task_id},
                "FIELDS_AFTER": {"ID": task_id},
                "IS_ACCESSIBLE_BEFORE": _UNDEFINED,
                "IS_ACCESSIBLE_AFTER": _UNDEFINED,
            }
            plan = self._triggers.entity_changed("ONTASKUPDATE", data, user_id=user_id, auth=auth)
            answer = _copy(changed)
        return answer, self._outbox.execute(plan, timeout)

    def task_delete(
        self, task_id: int, *, user_id: int = 1, auth: AuthMode = "user", timeout: float | None = None
    ) -> list[Attempt]:
        """Delete a task; fire ONTASKDELETE."""
        with self._lock:
            if self._tasks.items.pop(task_id, None) is None:
                # tasks-task-delete.md: no such task (or no right to delete it)
                raise PortalError("1048582", "No access to delete the task", 400)
            data = {
                "FIELDS_BEFORE": {"ID": task_id},
                "FIELDS_AFTER": _UNDEFINED,
                "IS_ACCESSIBLE_BEFORE": _UNDEFINED,
                "IS_ACCESSIBLE_AFTER": "N",
            }
            plan = self._triggers.entity_changed("ONTASKDELETE", data, user_id=user_id, auth=auth)
        return self._outbox.execute(plan, timeout)

    # ----------------------------------------------------------------- reads
    def task(self, task_id: int) -> dict[str, Any] | None:
        """A copy of the task, or None when there is none."""
        with self._lock:
            item = self._tasks.items.get(task_id)
            return _copy(item) if item is not None else None

    def tasks(self) -> list[dict[str, Any]]:
        """Copies of every task, oldest first."""
        with self._lock:
            return [_copy(item) for item in self._tasks.items.values()]

    # ----------------------------------------------------------------- checks
    def _check_task(self, item: dict[str, Any], fields: Mapping[str, Any], *, adding: bool) -> None:
        """Lay ``fields`` over ``item`` and check the result as the portal does; ``item`` is the caller's
        copy, so a refusal leaves the stored task unchanged."""
        for raw_name, value in fields.items():
            name = str(raw_name).strip().upper()
            if _UF_NAME.match(name):
                item[name] = [_scalar(v) for v in value] if isinstance(value, list) else _scalar(value)
            elif name not in _KNOWN or name in READ_ONLY or (name == "CREATED_BY" and not adding):
                continue  # the portal ignores unknown and read-only fields (and SE_PARAMETER)
            elif name in DATE_FIELDS:
                item[name] = _date(name, value)
            elif name in LIST_FIELDS:
                item[name] = _ids(name, value)
            else:
                item[name] = _scalar(value)
        if not str(item.get("TITLE") or "").strip():
            raise task_error("Task title is not specified")
        responsible = str(item.get("RESPONSIBLE_ID") or "").strip()
        if not responsible or responsible == "0":
            raise task_error("Responsible person not specified")
        if not responsible.isdigit() or int(responsible) not in self._users:
            raise task_error('The user specified in the "Responsible" field was not found')
        if item["STATUS"] not in STATUSES:
            raise task_error("Invalid status")
        parent = item.get("PARENT_ID")
        if parent not in (None, "", "0"):
            if parent == item["ID"]:
                raise task_error("Cannot bind the node to itself")
            if not str(parent).isdigit() or int(str(parent)) not in self._tasks.items:
                raise task_error('The task specified in the "Parent Task" field was not found')
        start, end = item.get("START_DATE_PLAN"), item.get("END_DATE_PLAN")
        if start and end and datetime.fromisoformat(end) < datetime.fromisoformat(start):
            raise task_error("The end date specified in the scheduling is earlier than the start date")


def _fresh(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _copy(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, list) else value for name, value in item.items()}
