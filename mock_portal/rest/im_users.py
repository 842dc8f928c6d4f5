"""The ``im.*`` methods about people: users and statuses, the company structure, and search.

Shapes follow https://apidocs.bitrix24.com/api-reference/chats/users/ (``im-user-get.md``...),
https://apidocs.bitrix24.com/api-reference/chats/departments/ and
https://apidocs.bitrix24.com/api-reference/chats/search/. Searches need at least three characters
(``FIND_SHORT``); a search that finds nothing answers ``[]`` (``im.search.user.list`` answers an object keyed
by user id, which PHP writes as ``[]`` when empty).
"""

from __future__ import annotations

from typing import Any

from mock_portal.rest.im_chat import IM_SCOPES
from mock_portal.rest.im_views import chat_view, im_user, php_object, user_ids
from mock_portal.rest.params import error, flag, integer, param
from mock_portal.rest.registry import Caller, method
from mock_portal.restkit import Page

MIN_FIND = 3


# ----------------------------------------------------------------------------------------- users
def _known_user(caller: Caller, user_id: int) -> dict[str, Any]:
    if caller.portal.find_user(user_id) is None and user_id != caller.user_id:
        raise error("USER_NOT_EXISTS", "User does not exist")
    return im_user(caller.portal, user_id)


@method("im.user.get", scopes=IM_SCOPES)
def user_get(caller: Caller, params: dict[str, Any]) -> Any:
    raw = param(params, "ID")
    if raw in (None, ""):
        return im_user(caller.portal, caller.user_id)
    [user_id] = user_ids(params, "ID")[:1]
    return _known_user(caller, user_id)


@method("im.user.list.get", scopes=IM_SCOPES)
def user_list_get(caller: Caller, params: dict[str, Any]) -> Any:
    ids = user_ids(params, "ID", code="INVALID_FORMAT")
    found = [(u, im_user(caller.portal, u)) for u in ids if caller.portal.find_user(u) is not None]
    if str(param(params, "RESULT_TYPE") or "").lower() == "array":
        return [view for _, view in found]
    return php_object({str(u): view for u, view in found})


@method("im.user.status.get", scopes=IM_SCOPES)
def user_status_get(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.user_status(caller.user_id)


@method("im.user.status.set", scopes=IM_SCOPES)
def user_status_set(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.set_user_status(caller.user_id, param(params, "STATUS"))
    return True


@method("im.user.status.idle.start", scopes=IM_SCOPES)
def user_status_idle_start(caller: Caller, params: dict[str, Any]) -> Any:
    ago = param(params, "AGO")
    caller.portal.set_user_idle(
        caller.user_id, ago_minutes=integer(ago, "AGO") if ago not in (None, "") else 10
    )
    return True


@method("im.user.status.idle.end", scopes=IM_SCOPES)
def user_status_idle_end(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.set_user_idle(caller.user_id, ago_minutes=None)
    return True


# ----------------------------------------------------------------------------------------- departments
def _department(caller: Caller, department: dict[str, Any], with_user: bool) -> dict[str, Any]:
    path = caller.portal.department_path(department["id"])
    out: dict[str, Any] = {
        "id": department["id"],
        "name": department["name"],
        "full_name": " / ".join(path),
        "manager_user_id": department["head"] or 0,
    }
    if with_user and department["head"]:
        out["manager_user_data"] = im_user(caller.portal, department["head"])
    return out


def _departments(caller: Caller, params: dict[str, Any]) -> list[dict[str, Any]]:
    found = (caller.portal.department(d) for d in user_ids(params, "ID"))
    return [d for d in found if d is not None]


@method("im.department.get", scopes=IM_SCOPES)
def department_get(caller: Caller, params: dict[str, Any]) -> Any:
    with_user = flag(param(params, "USER_DATA") or "N")
    return [_department(caller, d, with_user) for d in _departments(caller, params)]


def _by_department(caller: Caller, params: dict[str, Any], heads: bool) -> Any:
    with_user = flag(param(params, "USER_DATA") or "N")
    out: dict[str, Any] = {}
    for department in _departments(caller, params):
        if heads:
            members = [department["head"]] if department["head"] else []
        else:
            members = caller.portal.department_members(department["id"])
        out[str(department["id"])] = [im_user(caller.portal, u) if with_user else u for u in members]
    return php_object(out)


@method("im.department.employees.get", scopes=IM_SCOPES)
def department_employees_get(caller: Caller, params: dict[str, Any]) -> Any:
    return _by_department(caller, params, heads=False)


@method("im.department.managers.get", scopes=IM_SCOPES)
def department_managers_get(caller: Caller, params: dict[str, Any]) -> Any:
    return _by_department(caller, params, heads=True)


@method("im.department.colleagues.list", scopes=IM_SCOPES)
def department_colleagues_list(caller: Caller, params: dict[str, Any]) -> Any:
    me = caller.portal.user(caller.user_id)
    if me.get("USER_TYPE") == "extranet":
        raise error("ACCESS_ERROR", "Only intranet users have access to this method.", 403)
    colleagues = sorted(
        {u for d in me.get("UF_DEPARTMENT") or [] for u in caller.portal.department_members(int(d))}
        - {caller.user_id}
    )
    with_user = flag(param(params, "USER_DATA") or "N")
    offset = integer(param(params, "OFFSET") or 0, "OFFSET")
    limit = max(1, min(integer(param(params, "LIMIT") or 10, "LIMIT"), 50))
    chunk = colleagues[offset : offset + limit]
    following = offset + limit
    return Page(
        [im_user(caller.portal, u) if with_user else u for u in chunk],
        following if following < len(colleagues) else None,
        len(colleagues),
    )


# ----------------------------------------------------------------------------------------- search
def _find(params: dict[str, Any], *, required: bool) -> str:
    text = str(param(params, "FIND") or "").strip().lower()
    if (required or text) and len(text) < MIN_FIND:
        raise error("FIND_SHORT", "Too short a search phrase.")
    return text


def _window(params: dict[str, Any], items: list[Any]) -> Page:
    offset = integer(param(params, "OFFSET") or 0, "OFFSET")
    limit = max(1, min(integer(param(params, "LIMIT") or 10, "LIMIT"), 50))
    return Page(items[offset : offset + limit], None, len(items))


@method("im.search.chat.list", scopes=IM_SCOPES)
def search_chat_list(caller: Caller, params: dict[str, Any]) -> Any:
    text = _find(params, required=False)
    chats = [
        chat_view(caller.portal, c, caller.user_id)
        for c in caller.portal.im_chats()
        if not c.private and caller.user_id in c.users and text in c.title.lower()
    ]
    return _window(params, chats)


@method("im.search.department.list", scopes=IM_SCOPES)
def search_department_list(caller: Caller, params: dict[str, Any]) -> Any:
    text = _find(params, required=True)
    with_user = flag(param(params, "USER_DATA") or "N")
    found = [
        _department(caller, d, with_user)
        for d in caller.portal.departments()
        if text in str(d["name"]).lower()
    ]
    return _window(params, found)


@method("im.search.user.list", scopes=IM_SCOPES)
def search_user_list(caller: Caller, params: dict[str, Any]) -> Any:
    text = _find(params, required=True)
    matches = []
    for user in caller.portal.users():
        haystack = " ".join(
            str(user.get(k) or "") for k in ("NAME", "LAST_NAME", "EMAIL", "WORK_POSITION")
        ).lower()
        if user.get("ACTIVE", True) and text in haystack:
            matches.append(int(user["ID"]))
    window = _window(params, matches)
    return Page(php_object({str(u): im_user(caller.portal, u) for u in window.result}), None, window.total)


@method("im.search.last.get", scopes=IM_SCOPES)
def search_last_get(caller: Caller, params: dict[str, Any]) -> Any:
    skip_chat = flag(param(params, "SKIP_CHAT") or "N")
    skip_dialog = flag(param(params, "SKIP_DIALOG") or "N")
    out: list[dict[str, Any]] = []
    for dialog in caller.portal.search_last(caller.user_id):
        chat = caller.portal.im_dialog(caller.user_id, dialog)
        view = chat_view(caller.portal, chat, caller.user_id)
        avatar = {"url": view["avatar"], "color": view["color"]}
        if chat.private and not skip_dialog:
            user = im_user(caller.portal, int(dialog))
            out.append(
                {"id": int(dialog), "type": "user", "avatar": avatar, "title": user["name"], "user": user}
            )
        elif not chat.private and not skip_chat:
            out.append({"id": dialog, "type": "chat", "avatar": avatar, "title": view["name"], "chat": view})
    return out


def _dialog_key(caller: Caller, params: dict[str, Any]) -> str:
    raw = param(params, "DIALOG_ID")
    if raw in (None, ""):
        raise error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    chat = caller.portal.im_dialog(caller.user_id, raw)
    return chat.dialog_id(caller.user_id)


@method("im.search.last.add", scopes=IM_SCOPES)
def search_last_add(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.search_last_add(caller.user_id, _dialog_key(caller, params))
    return True


@method("im.search.last.delete", scopes=IM_SCOPES)
def search_last_delete(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.search_last_delete(caller.user_id, _dialog_key(caller, params))
    return True
