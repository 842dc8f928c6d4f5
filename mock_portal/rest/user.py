"""The ``user.*`` methods: the directory (``user.get``, ``user.search``, ``user.current``, ``user.add``,
``user.update``, ``user.fields``), access checks (``user.admin``, ``user.access``), user userfields and the
options an app keeps per user.

Shapes follow https://apidocs.bitrix24.com/api-reference/user/ and
https://apidocs.bitrix24.com/api-reference/common/users/. ``user.get`` and ``user.search`` list users with
``TIMESTAMP_X`` and ``LAST_ACTIVITY_DATE`` as the empty objects the pages show (PHP date objects), while
``user.current`` gives them as text; every list pages by 50.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mock_portal.rest.crm import _mapping, _matches, select_items
from mock_portal.rest.params import as_list, error, integer, param, required
from mock_portal.rest.registry import Caller, method
from mock_portal.restkit import page

USER_SCOPES = ("user", "user_basic", "user_brief")
USERFIELD_SCOPES = ("user.userfield", "user")
OBJECT_DATES = ("TIMESTAMP_X", "LAST_ACTIVITY_DATE")
FIELD_TITLES = {
    "ID": "ID",
    "XML_ID": "External code",
    "ACTIVE": "Activity",
    "NAME": "First Name",
    "LAST_NAME": "Last Name",
    "SECOND_NAME": "Middle Name",
    "TITLE": "User List",
    "EMAIL": "E-Mail",
    "LAST_LOGIN": "Last Authorization",
    "DATE_REGISTER": "Registration Date",
    "TIME_ZONE": "TIME_ZONE",
    "IS_ONLINE": "IS_ONLINE",
    "TIMESTAMP_X": "TIMESTAMP_X",
    "LAST_ACTIVITY_DATE": "LAST_ACTIVITY_DATE",
    "PERSONAL_GENDER": "Gender",
    "PERSONAL_PROFESSION": "Profession",
    "PERSONAL_WWW": "Homepage",
    "PERSONAL_BIRTHDAY": "Date of Birth",
    "PERSONAL_PHOTO": "Photo",
    "PERSONAL_ICQ": "ICQ",
    "PERSONAL_PHONE": "Personal Phone",
    "PERSONAL_FAX": "Fax",
    "PERSONAL_MOBILE": "Personal Mobile",
    "PERSONAL_PAGER": "Pager",
    "PERSONAL_STREET": "Residential Street",
    "PERSONAL_CITY": "Residential City",
    "PERSONAL_STATE": "State / Region",
    "PERSONAL_ZIP": "Zip Code",
    "PERSONAL_COUNTRY": "Country",
    "PERSONAL_MAILBOX": "P.O. Box",
    "PERSONAL_NOTES": "Additional Notes",
    "WORK_PHONE": "Company Phone",
    "WORK_COMPANY": "Company",
    "WORK_POSITION": "Job Title",
    "WORK_DEPARTMENT": "Department",
    "WORK_WWW": "Company Website",
    "WORK_FAX": "WORK_FAX",
    "WORK_PAGER": "WORK_PAGER",
    "WORK_STREET": "WORK_STREET",
    "WORK_MAILBOX": "WORK_MAILBOX",
    "WORK_CITY": "Work City",
    "WORK_STATE": "WORK_STATE",
    "WORK_ZIP": "WORK_ZIP",
    "WORK_COUNTRY": "WORK_COUNTRY",
    "WORK_PROFILE": "WORK_PROFILE",
    "WORK_LOGO": "WORK_LOGO",
    "WORK_NOTES": "WORK_NOTES",
    "UF_SKYPE_LINK": "Skype Chat Link",
    "UF_ZOOM": "Zoom",
    "UF_EMPLOYMENT_DATE": "Hire Date",
    "UF_TIMEMAN": "Time Tracking",
    "UF_DEPARTMENT": "Units",
    "UF_INTERESTS": "Interests",
    "UF_SKILLS": "Skills",
    "UF_WEB_SITES": "Other Websites",
    "UF_XING": "Xing",
    "UF_LINKEDIN": "LinkedIn",
    "UF_TWITTER": "Twitter",
    "UF_SKYPE": "Skype",
    "UF_DISTRICT": "District",
    "UF_PHONE_INNER": "Extension",
    "USER_TYPE": "USER_TYPE",
}
"""``user.fields``: each field and its title (https://apidocs.bitrix24.com/api-reference/user/user-fields.html)."""
_TOP_LEVEL_FILTER = (
    "ID",
    "ACTIVE",
    "NAME",
    "LAST_NAME",
    "EMAIL",
    "USER_TYPE",
    "UF_DEPARTMENT",
    "WORK_POSITION",
)


def _listed(user: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(user)
    out.pop("TIME_ZONE_OFFSET", None)
    for name in OBJECT_DATES:
        out[name] = {}
    return out


def _user_matches(user: Mapping[str, Any], key: str, want: Any) -> bool:
    name = key.lstrip("!@=<>%").upper()
    have = user.get(name)
    if isinstance(have, list):  # UF_DEPARTMENT: a user matches through any of their departments
        return any(_matches({name: h}, key, want) for h in have) if have else _matches({}, key, want)
    if isinstance(have, bool):
        return _matches({name: "Y" if have else "N"}, key, "Y" if want in (True, "Y", "y", 1, "1") else want)
    return _matches(user, key, want)


def _conditions(params: Mapping[str, Any]) -> dict[str, Any]:
    conditions = dict(_mapping(params, "filter"))
    # user.get also takes the filter's keys at the top level (user-get.md)
    for key, value in params.items():
        if isinstance(key, str) and key.upper() in _TOP_LEVEL_FILTER:
            conditions.setdefault(key.upper(), value)
    return conditions


def _ordered(users: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    order = {"order": {str(param(params, "sort") or "ID").upper(): str(param(params, "order") or "ASC")}}
    return select_items(users, order)


@method("user.get", scopes=USER_SCOPES)
def user_get(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.user(caller.user_id)  # the caller is a user of the portal
    conditions = _conditions(params)
    users = [
        u
        for u in caller.portal.users()
        if all(_user_matches(u, str(k), v) for k, v in conditions.items() if str(k).strip())
    ]
    return page([_listed(u) for u in _ordered(users, params)], param(params, "start"))


@method("user.search", scopes=USER_SCOPES)
def user_search(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.user(caller.user_id)
    conditions = _conditions(params)
    find = next((v for k, v in conditions.items() if str(k).upper() == "FIND"), None)
    if find is not None:
        # FIND looks in the names, the position, the departments' names and the user type (user-search.md)
        text = str(find).strip().lower()
        users = []
        for user in caller.portal.users():
            departments = " ".join(
                " ".join(caller.portal.department_path(int(d))) for d in user.get("UF_DEPARTMENT") or []
            )
            haystack = " ".join(
                str(user.get(k) or "")
                for k in ("NAME", "LAST_NAME", "SECOND_NAME", "WORK_POSITION", "USER_TYPE")
            )
            if text in f"{haystack} {departments}".lower():
                users.append(user)
    else:
        users = [
            u
            for u in caller.portal.users()
            if all(_user_matches(u, str(k), v) for k, v in conditions.items() if str(k).strip())
        ]
    return page([_listed(u) for u in _ordered(users, params)], param(params, "start"))


@method("user.current", scopes=USER_SCOPES)
def user_current(caller: Caller, params: dict[str, Any]) -> Any:
    user = caller.portal.user(caller.user_id)
    user.pop("TIME_ZONE_OFFSET", None)
    return user


@method("user.fields", scopes=USER_SCOPES)
def user_fields(caller: Caller, params: dict[str, Any]) -> Any:
    out = dict(FIELD_TITLES)
    for row in caller.portal.user_userfields():
        out[row["FIELD_NAME"]] = row["FIELD_NAME"]
    return out


@method("user.add", scopes=("user",))
def user_add(caller: Caller, params: dict[str, Any]) -> Any:
    fields = {k: v for k, v in params.items() if str(k).lower() != "auth"}
    return caller.portal.add_user(fields, by=caller.user_id)


@method("user.update", scopes=("user",))
def user_update(caller: Caller, params: dict[str, Any]) -> Any:
    user_id = integer(required(params, "ID"), "ID")
    fields = {k: v for k, v in params.items() if str(k).lower() != "auth"}
    caller.portal.update_user(user_id, fields, by=caller.user_id)
    return True


@method("user.admin")
def user_admin(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.is_admin(caller.user_id)


@method("user.access")
def user_access(caller: Caller, params: dict[str, Any]) -> Any:
    raw = param(params, "ACCESS")
    if raw in (None, "", [], {}):
        raise error("ERROR_ARGUMENT", "Argument 'ACCESS' is null or empty")
    wanted = {
        str(code).strip().upper() for code in (as_list(raw, "ACCESS") if not isinstance(raw, str) else [raw])
    }
    return bool(wanted & caller.portal.access_codes(caller.user_id))


# ----------------------------------------------------------------------------------------- options
def _app(caller: Caller) -> str:
    if caller.client_id is None:
        raise error("AccessException", "Application context required")
    return caller.client_id


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    raw = param(params, "options")
    if not isinstance(raw, dict) or not raw:
        raise error("ArgumentNullException", "options is empty")
    return {str(k): v for k, v in raw.items()}


def _read_option(options: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    name = param(params, "option")
    if name in (None, ""):
        return dict(options) if options else []
    return options.get(str(name))


@method("user.option.set")
def user_option_set(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.set_user_options(_app(caller), caller.user_id, _options(params))
    return True


@method("user.option.get")
def user_option_get(caller: Caller, params: dict[str, Any]) -> Any:
    return _read_option(caller.portal.user_options(_app(caller), caller.user_id), params)


@method("app.option.set")
def app_option_set(caller: Caller, params: dict[str, Any]) -> Any:
    if not caller.portal.is_admin(caller.user_id):
        raise error("ACCESS_DENIED", "Access denied")
    caller.portal.set_app_options(_app(caller), _options(params))
    return True


@method("app.option.get")
def app_option_get(caller: Caller, params: dict[str, Any]) -> Any:
    return _read_option(caller.portal.app_options(_app(caller)), params)


# ----------------------------------------------------------------------------------------- userfields
def _userfield_id(params: Mapping[str, Any]) -> int:
    raw = param(params, "id")
    text = str(raw).strip() if raw is not None else ""
    if not text.isdigit() or int(text) <= 0:
        raise error("", "ID is not defined or invalid.")
    return int(text)


def _userfield_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    raw = param(params, "fields")
    if not isinstance(raw, dict) or not raw:
        raise error("", "The parameter 'fields' must be of type array.")
    return raw


@method("user.userfield.add", scopes=USERFIELD_SCOPES)
def user_userfield_add(caller: Caller, params: dict[str, Any]) -> Any:
    return caller.portal.user_userfield_add(_userfield_fields(params), by=caller.user_id)


@method("user.userfield.update", scopes=USERFIELD_SCOPES)
def user_userfield_update(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.user_userfield_update(_userfield_id(params), _userfield_fields(params), by=caller.user_id)
    return True


@method("user.userfield.delete", scopes=USERFIELD_SCOPES)
def user_userfield_delete(caller: Caller, params: dict[str, Any]) -> Any:
    caller.portal.user_userfield_delete(_userfield_id(params), by=caller.user_id)
    return True


@method("user.userfield.list", scopes=USERFIELD_SCOPES)
def user_userfield_list(caller: Caller, params: dict[str, Any]) -> Any:
    rows = select_items(caller.portal.user_userfields(), params)
    return page(rows, param(params, "start"))
