"""The ``tasks.task.*`` methods: ``add``, ``update``, ``get``, ``list`` and ``delete`` over the portal's tasks
(:mod:`mock_portal.portal.tasks`), scope ``task``.

Answers follow the method pages (https://apidocs.bitrix24.com/api-reference/tasks/tasks-task-add.html and
siblings): ``{"task": {...}}`` with the fields in camelCase, ``{"task": true}`` for ``delete``, ``[]`` from
``get`` for a task that does not exist, and ``{"tasks": [...]}`` from ``list``, which pages by 50 (``start``,
``next``, ``total``), filters and orders by the upper-case field names (``ID`` descending unless told) and
answers the ``select``ed fields. Writes fire ONTASKADD, ONTASKUPDATE and ONTASKDELETE through the portal,
queued until the REST answer is out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_portal.portal.model import PortalError
from mock_portal.portal.tasks import COMPLETED, FIELDS, camel
from mock_portal.rest.crm import select_items
from mock_portal.rest.params import as_list, param
from mock_portal.rest.registry import Caller, method
from mock_portal.restkit import Page, page

TASK_SCOPES = ("task",)
_DEFAULT_AVATAR = "/bitrix/images/tasks/default_avatar.png"
# the user cards an answer carries next to the ids they describe (fields.md: creator, responsible...)
_CARDS = {"CREATED_BY": "creator", "RESPONSIBLE_ID": "responsible"}
_CARD_LISTS = {"ACCOMPLICES": "accomplicesData", "AUDITORS": "auditorsData"}


@dataclass(frozen=True)
class TaskPage(Page):
    """A page of ``tasks.task.list``: its items sit under ``result.tasks``."""

    def envelope(self) -> dict[str, Any]:
        body = super().envelope()
        body["result"] = {"tasks": body["result"]}
        return body


# ----------------------------------------------------------------------------------------- parameters
def _task_id(params: Mapping[str, Any]) -> int:
    raw = param(params, "taskId")
    if raw is None or raw == "":
        # tasks-task-get.md, -update.md, -delete.md: the required taskId is missing
        raise PortalError(
            "100",
            "CTaskItem All parameters in the constructor must have real class type (internal error)",
            400,
        )
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    if isinstance(raw, str) and raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    raise PortalError("0", "wrong task id", 400)


def _fields(params: Mapping[str, Any]) -> dict[str, Any]:
    raw = param(params, "fields")
    if not isinstance(raw, dict) or not raw:
        # tasks-task-add.md, -update.md: fields missing or empty
        raise PortalError("100", "Could not find value for parameter {fields} (internal error)", 400)
    return raw


def _select(params: Mapping[str, Any]) -> list[str] | None:
    raw = param(params, "select")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, (list, dict)):
        raise PortalError(
            "100",
            f"Invalid value {str(raw)[:40]} to match with parameter {{select}}. "
            "Should be value of type array.",
            400,
        )
    names = [str(name).strip().upper() for name in as_list(raw, "select") if str(name).strip()]
    return names or None


# ----------------------------------------------------------------------------------------- answers
def _card(users: Mapping[str, Mapping[str, Any]], user_id: Any) -> dict[str, Any]:
    user = users.get(str(user_id), {})
    name = f"{user.get('NAME', '')} {user.get('LAST_NAME', '')}".strip()
    return {
        "id": str(user_id),
        "name": name or f"User {user_id}",
        "link": f"/company/personal/user/{user_id}/",
        "icon": _DEFAULT_AVATAR,
        "workPosition": str(user.get("WORK_POSITION") or ""),
    }


def _actions(status: str) -> dict[str, bool]:
    # the mock keeps no access rights: every user may do what the task's status allows
    done = status == COMPLETED
    return {
        "accept": False,
        "decline": False,
        "complete": not done,
        "approve": False,
        "disapprove": False,
        "start": status == "2",
        "pause": status == "3",
        "delegate": not done,
        "remove": True,
        "edit": True,
        "defer": status in ("2", "3"),
        "renew": done,
        "create": True,
        "changeDeadline": True,
        "checklistAddItems": True,
        "addFavorite": True,
        "deleteFavorite": False,
        "rate": True,
    }


def task_view(
    item: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]], select: list[str] | None = None
) -> dict[str, Any]:
    """A task as the methods answer it: camelCase fields (the ``select``ed ones, or every system field),
    with the cards of the users its ids name."""
    if select is None or "*" in select:
        names = list(FIELDS)
        if select is not None:  # "*": the userfields too
            names += [name for name in item if name.startswith("UF_")]
    else:
        names = ["ID", *(name for name in select if name != "ID")]
    out: dict[str, Any] = {}
    for name in names:
        if name == "UF_*":
            out.update({camel(n): item[n] for n in item if n.startswith("UF_")})
            continue
        if name in item or name in FIELDS or name.startswith("UF_"):
            out[camel(name)] = item.get(name)
        if name in _CARDS and item.get(name):
            out[_CARDS[name]] = _card(users, item[name])
        if name in _CARD_LISTS:
            out[_CARD_LISTS[name]] = {uid: _card(users, uid) for uid in item.get(name) or []}
    if select is None:
        out.update(group=[], checklist=[], newCommentsCount=0, action=_actions(str(item.get("STATUS"))))
    return out


def _users(caller: Caller) -> dict[str, dict[str, Any]]:
    return {str(user["ID"]): user for user in caller.portal.users()}


def _join(caller: Caller) -> None:
    caller.portal.user(caller.user_id)  # the caller is a user of the portal (and may be responsible)


# ----------------------------------------------------------------------------------------- the methods
@method("tasks.task.add", scopes=TASK_SCOPES)
def task_add(caller: Caller, params: dict[str, Any]) -> Any:
    _join(caller)
    task, _ = caller.portal.task_add(_fields(params), user_id=caller.user_id)
    return {"task": task_view(task, _users(caller))}


@method("tasks.task.update", scopes=TASK_SCOPES)
def task_update(caller: Caller, params: dict[str, Any]) -> Any:
    _join(caller)
    task_id = _task_id(params)
    task, _ = caller.portal.task_update(task_id, _fields(params), user_id=caller.user_id)
    return {"task": task_view(task, _users(caller))}


@method("tasks.task.get", scopes=TASK_SCOPES)
def task_get(caller: Caller, params: dict[str, Any]) -> Any:
    task_id, select = _task_id(params), _select(params)
    task = caller.portal.task(task_id)
    if task is None:
        return []  # tasks-task-get.md: an empty array for a task that does not exist
    return {"task": task_view(task, _users(caller), select)}


@method("tasks.task.delete", scopes=TASK_SCOPES)
def task_delete(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.task_delete(_task_id(params), user_id=caller.user_id)
    return {"task": True}


@method("tasks.task.list", scopes=TASK_SCOPES)
def task_list(caller: Caller, params: dict[str, Any]) -> Any:
    select = _select(params)
    rows = [{**task, "REAL_STATUS": task["STATUS"]} for task in caller.portal.tasks()]
    ordered = dict(params)
    if not param(params, "order"):
        ordered["order"] = {"ID": "desc"}  # tasks-task-list.md: by ID, descending, unless told
    chosen = select_items(rows, ordered)
    found = page(chosen, param(params, "start"))
    users = _users(caller)
    return TaskPage([task_view(task, users, select) for task in found.result], found.next, found.total)


__all__ = ["TASK_SCOPES", "TaskPage", "task_view"]
