"""Documented read methods the portal keeps no state for, answered from the seeded dataset.

The dataset (``schemas/seeded/dataset.json``, generated from the docs' simulator dataset by
:mod:`mock_portal.catalog`) holds the CRM reference lists (statuses and deal stages), the deal pipelines and
tasks. Its ids agree with one another and with the portal's own state: a deal the portal creates sits in
pipeline ``0`` at stage ``NEW``, both seeded; a task's creator and responsible are filled from the portal's
user directory at answer time, as ``user.get`` shows them.

Each method is a handler in :data:`SEEDED` (never in :data:`~mock_portal.rest.registry.METHODS`, so a method
the portal implements with state always wins). Lists page by 50 (``start``, ``next``, ``total``) as the
implemented ones do; ``filter`` and ``order`` work as in the CRM lists, and a filter on a field the seeded
rows do not have is refused honestly rather than ignored (ignoring it would answer rows the filter excludes).
A ``get`` answers the seeded item or the page's documented not-found error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, cast

from mock_portal import methods
from mock_portal._resources import data_dir
from mock_portal.methods import MethodSpec
from mock_portal.portal import PortalError
from mock_portal.portal.users import new_user
from mock_portal.rest.crm import select_items
from mock_portal.rest.params import as_list, error, integer, param
from mock_portal.rest.registry import Caller, Handler
from mock_portal.restkit import Page, page

__all__ = ["SEEDED", "SEEDED_FILE", "SeededMethod", "dataset"]

SEEDED_FILE = "seeded/dataset.json"
"""The dataset under ``schemas/`` (the same path :mod:`mock_portal.catalog` writes)."""


@dataclass(frozen=True)
class SeededMethod:
    """A read method answered from the dataset: its handler, and the parameters the handler checks itself
    with its page's own error codes (the spec's generic check is skipped for those)."""

    name: str
    handler: Handler
    checks: frozenset[str] = frozenset()

    def spec(self) -> MethodSpec:
        """Its spec, less the parameters the handler checks itself."""
        spec = methods.spec(self.name)
        own = {name.lower() for name in self.checks}
        return replace(spec, params=tuple(p for p in spec.params if p.name.lower() not in own))


SEEDED: dict[str, SeededMethod] = {}
"""The seeded read methods by name (lowercase, as called)."""

_OPERATOR = re.compile(r"^[!=<>%@]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _seeded(name: str, *, checks: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if methods.find(name) is None:  # only documented methods are answered from the dataset
            raise ValueError(f"{name!r} is not a documented method")
        SEEDED[name.lower()] = SeededMethod(name, handler, frozenset(checks))
        return handler

    return register


@cache
def dataset() -> Mapping[str, list[dict[str, Any]]]:
    """The seeded rows by entity (``statuses``, ``categories``, ``tasks``)."""
    path = data_dir("schemas") / SEEDED_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    rows: dict[str, list[dict[str, Any]]] = document["x-b24-seeded"]
    return rows


def _rows(entity: str) -> list[dict[str, Any]]:
    return [dict(row) for row in dataset()[entity]]


def _keyed(key: str, found: Page) -> Page:
    """A page whose result is ``{key: items}`` (``tasks.task.list``, ``crm.category.list``)."""
    return Page(cast(Any, {key: found.result}), found.next, found.total)


def _check_filter(params: Mapping[str, Any], fields: set[str], method: str) -> None:
    """Refuse a filter on a field the seeded rows lack: an honest refusal, never a wrong answer."""
    from mock_portal.rest.unsimulated import not_simulated

    conditions = param(params, "filter")
    if conditions in (None, "", []):
        return
    if not isinstance(conditions, dict):
        raise error("ERROR_ARGUMENT", "The value of an argument 'filter' must be of type array")
    for key in conditions:
        name = _OPERATOR.sub("", str(key)).strip().upper()
        if name and name not in fields:
            raise not_simulated(
                methods.spec(method), f"the seeded dataset cannot filter by {str(key)[:60]!r}"
            )


def _positive_id(params: Mapping[str, Any], name: str) -> int | None:
    raw = param(params, name)
    if raw is None or raw == "" or isinstance(raw, (bool, list, dict)):
        return None
    try:
        value = integer(raw, name)
    except PortalError:
        return None
    return value if value >= 0 else None


# ----------------------------------------------------------------------------------------- CRM statuses
# https://apidocs.bitrix24.com/api-reference/crm/status/index.html


def _status_fields() -> set[str]:
    return {key for row in dataset()["statuses"] for key in row}


@_seeded("crm.status.list")
def status_list(caller: Caller, params: dict[str, Any]) -> Any:
    _check_filter(params, _status_fields(), "crm.status.list")
    rows = select_items(_rows("statuses"), params)
    return page(rows, param(params, "start"))


@_seeded("crm.status.get", checks=("id",))
def status_get(caller: Caller, params: dict[str, Any]) -> Any:
    wanted = _positive_id(params, "id")
    for row in _rows("statuses"):
        if wanted is not None and row["ID"] == str(wanted):
            return row
    # the page's error example (crm-status-get.md)
    raise error("Status is not found.", "Directory item not found.", 400)


@_seeded("crm.status.entity.items", checks=("entityId",))
def status_entity_items(caller: Caller, params: dict[str, Any]) -> Any:
    from mock_portal.rest.unsimulated import not_simulated

    entity = param(params, "entityId")
    if not isinstance(entity, str) or not entity.strip():
        # the page's error example (crm-status-entity-items.md)
        raise error(
            "The parameter entityId is not defined or invalid.",
            "The directory ID is not specified or is incorrect.",
            400,
        )
    rows = [row for row in _rows("statuses") if row["ENTITY_ID"] == entity.strip().upper()]
    if not rows:
        raise not_simulated(
            methods.spec("crm.status.entity.items"), f"the seeded dataset has no items of {entity[:60]!r}"
        )
    rows.sort(key=lambda row: int(row["SORT"]))
    return [{"NAME": row["NAME"], "SORT": int(row["SORT"]), "STATUS_ID": row["STATUS_ID"]} for row in rows]


@_seeded("crm.dealcategory.stage.list")
def dealcategory_stage_list(caller: Caller, params: dict[str, Any]) -> Any:
    # crm.status.list of the pipeline's deal stages (crm-deal-category-stage-list.md); no id: pipeline 0
    category = _positive_id(params, "id") or 0
    return [
        row
        for row in select_items(_rows("statuses"), {"order": {"SORT": "ASC"}})
        if row["ENTITY_ID"] == "DEAL_STAGE" and row["CATEGORY_ID"] == str(category)
    ]


# ----------------------------------------------------------------------------------------- pipelines
# https://apidocs.bitrix24.com/api-reference/crm/universal/category/index.html

_DEAL_TYPE_ID = 2


def _pipelines_of(caller: Caller, params: Mapping[str, Any], method: str) -> list[dict[str, Any]]:
    from mock_portal.rest.unsimulated import not_simulated

    raw = param(params, "entityTypeId")
    entity_type = integer(raw, "entityTypeId")
    if entity_type != _DEAL_TYPE_ID:
        raise not_simulated(
            methods.spec(method), "the seeded dataset holds the deal pipelines only (entityTypeId 2)"
        )
    return sorted(_rows("categories"), key=lambda row: (int(row["sort"]), int(row["id"])))


@_seeded("crm.category.list")
def category_list(caller: Caller, params: dict[str, Any]) -> Any:
    rows = _pipelines_of(caller, params, "crm.category.list")
    return _keyed("categories", page(rows, param(params, "start")))


@_seeded("crm.category.get", checks=("id",))
def category_get(caller: Caller, params: dict[str, Any]) -> Any:
    rows = _pipelines_of(caller, params, "crm.category.get")
    wanted = _positive_id(params, "id")
    for row in rows:
        if wanted is not None and int(row["id"]) == wanted:
            return {"category": row}
    raise error("NOT_FOUND", "Element not found", 400)  # crm-category-get.md


@_seeded("crm.dealcategory.default.get")
def dealcategory_default_get(caller: Caller, params: dict[str, Any]) -> Any:
    default = next(row for row in _rows("categories") if int(row["id"]) == 0)
    return {"ID": 0, "NAME": default["name"]}  # crm-deal-category-default-get.md


# ----------------------------------------------------------------------------------------- tasks
# https://apidocs.bitrix24.com/api-reference/tasks/index.html


def _upper(name: str) -> str:
    """``responsibleId`` as the task filters and selects write it: ``RESPONSIBLE_ID``."""
    return _CAMEL.sub("_", name).upper()


def _user_block(caller: Caller, user_id: str) -> dict[str, Any]:
    """A user as a task shows it, from the portal's directory (a user it has not met yet is the one it
    would create on first use), so tasks and ``user.get`` agree."""
    number = int(user_id)
    known = {int(u["ID"]): u for u in caller.portal.users()}
    user = known.get(number) or new_user(number)
    name = " ".join(part for part in (user.get("NAME"), user.get("LAST_NAME")) if part)
    return {
        "id": str(number),
        "name": name,
        "link": f"/company/personal/user/{number}/",
        "workPosition": user.get("WORK_POSITION", ""),
    }


def _task(caller: Caller, row: Mapping[str, Any], select: Any) -> dict[str, Any]:
    task = dict(row)
    task["responsible"] = _user_block(caller, str(row["responsibleId"]))
    task["creator"] = _user_block(caller, str(row["createdBy"]))
    chosen = as_list(select, "select") if select not in (None, "", []) else []
    names = [str(s).strip().upper() for s in chosen]
    if not names or "*" in names:
        return task
    return {key: value for key, value in task.items() if key == "id" or _upper(key) in names}


def _task_views() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each task with its view under the names filters and orders use (``RESPONSIBLE_ID``)."""
    return [({_upper(k): v for k, v in row.items()}, row) for row in _rows("tasks")]


@_seeded("tasks.task.list")
def task_list(caller: Caller, params: dict[str, Any]) -> Any:
    views = _task_views()
    _check_filter(params, {key for view, _ in views for key in view}, "tasks.task.list")
    chosen = select_items([view for view, _ in views], params)
    by_id = {row["id"]: row for _, row in views}
    tasks = [_task(caller, by_id[view["ID"]], param(params, "select")) for view in chosen]
    return _keyed("tasks", page(tasks, param(params, "start")))


@_seeded("tasks.task.get", checks=("taskId",))
def task_get(caller: Caller, params: dict[str, Any]) -> Any:
    raw = param(params, "taskId")
    if raw is None or raw == "":
        # tasks-task-get.md: the required taskId missing
        raise error(
            "100", "CTaskItem All parameters in the constructor must have real class type (internal error)"
        )
    wanted = _positive_id(params, "taskId")
    if wanted is None:
        raise error("0", "wrong task id")  # tasks-task-get.md: taskId of a wrong type
    for row in _rows("tasks"):
        if row["id"] == str(wanted):
            return {"task": _task(caller, row, param(params, "select"))}
    # the tasks.task.* pages' answer for a task that is not there (tasks-task-favorite-add.md)
    raise error("1", "Task not found or not accessible")
