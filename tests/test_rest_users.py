"""The ``user.*``, ``app.info`` and ``*.option.*`` REST methods over real HTTP: the directory, access
checks, user userfields and the options an app keeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.support.rest_http import RestClient, rest_client


@pytest.fixture(scope="module")
def rc() -> Iterator[RestClient]:
    with rest_client("users.bitrix24.com") as client:
        yield client


def test_add_update_get_and_search_users(rc: RestClient) -> None:
    fields = rc.hook("user.fields").result
    assert fields["UF_DEPARTMENT"] == "Units"
    assert isinstance(fields["TIMESTAMP_X"], str)
    added = rc.hook(
        "user.add", NAME="Ann", LAST_NAME="Lee", EMAIL="ann@example.org", UF_DEPARTMENT=[1]
    ).result
    assert isinstance(added, int)
    assert added > 1
    assert rc.hook("user.add", EMAIL="ann@example.org").error == (400, "ERROR_ARGUMENT")  # taken
    assert rc.hook("user.add", EMAIL="not-an-email").error == (400, "ERROR_ARGUMENT")
    [user] = rc.hook("user.get", filter={"ID": added}).result
    assert (user["NAME"], user["EMAIL"], user["UF_DEPARTMENT"], user["ACTIVE"]) == (
        "Ann",
        "ann@example.org",
        [1],
        True,
    )
    assert user["TIMESTAMP_X"] == {}  # a date object, as user.get answers it
    update = {
        "ID": added,
        "ACTIVE": False,
        "WORK_POSITION": f"Tester {added}",
        "PERSONAL_BIRTHDAY": "1990-04-05",
    }
    assert rc.hook("user.update", **update).result is True
    [found] = rc.hook("user.search", FILTER={"FIND": f"tester {added}"}).result
    assert (found["ID"], found["ACTIVE"]) == (str(added), False)
    assert datetime.fromisoformat(found["PERSONAL_BIRTHDAY"]).date().isoformat() == "1990-04-05"
    by_department = rc.hook("user.get", FILTER={"UF_DEPARTMENT": 1}, SORT="ID", ORDER="DESC").result
    assert [u["ID"] for u in by_department][:2] == [str(added), "1"]
    # a user who is not an administrator changes only themselves
    code = rc.portal.add_webhook(user_id=added, scopes="user")
    other = rc.http.post(
        f"{rc.portal.client_endpoint}{added}/{code}/user.update", json={"ID": 1, "NAME": "x"}
    )
    assert (other.status_code, other.json()["error"]) == (400, "ERROR_CORE")
    admin = rc.http.post(f"{rc.portal.client_endpoint}{added}/{code}/user.admin", json={}).json()
    assert admin["result"] is False


def test_current_admin_and_access(rc: RestClient) -> None:
    current = rc.hook("user.current").result
    assert current["ID"] == "1"
    assert all(isinstance(current[f], (str, bool, list)) for f in ("TIMESTAMP_X", "LAST_ACTIVITY_DATE"))
    assert rc.hook("user.admin").result is True
    assert rc.hook("user.access", ACCESS=["G1"]).result is True
    assert rc.hook("user.access", ACCESS=["U999"]).result is False
    assert rc.hook("user.access", ACCESS=[]).error == (400, "ERROR_ARGUMENT")


def test_user_userfields(rc: RestClient) -> None:
    new_id = rc.hook("user.userfield.add", fields={"FIELD_NAME": "SKILLS", "USER_TYPE_ID": "string"}).result
    assert rc.hook("user.userfield.add", fields={"FIELD_NAME": "X", "USER_TYPE_ID": "nope"}).error == (
        400,
        "ERROR_CORE",
    )
    settings = {"DEFAULT_VALUE": "none", "ROWS": "3"}
    assert (
        rc.hook("user.userfield.update", id=new_id, fields={"SORT": 7, "SETTINGS": settings}).result is True
    )
    [row] = rc.hook("user.userfield.list", filter={"ID": new_id}).result
    assert (row["FIELD_NAME"], row["SORT"], row["XML_ID"], row["MULTIPLE"]) == (
        "UF_USR_SKILLS",
        "7",
        None,
        "N",
    )
    assert row["SETTINGS"]["ROWS"] == 3  # the string type keeps its numbers as numbers
    assert rc.hook("user.fields").result["UF_USR_SKILLS"] == "UF_USR_SKILLS"
    assert rc.hook("user.userfield.delete", id=new_id).result is True
    assert rc.hook("user.userfield.delete", id=new_id).error == (400, "ERROR_NOT_FOUND")


def test_app_info_and_options(rc: RestClient) -> None:
    hook = rc.hook("app.info").result
    assert set(hook) == {"SCOPE", "LICENSE"}
    assert "crm" in hook["SCOPE"]
    assert rc.app("app.info").result["INSTALLED"] is True
    assert rc.app("app.option.set", options={"mode": "fast", "n": 2}).result is True
    assert rc.app("app.option.get", option="mode").result == "fast"
    assert rc.app("app.option.get").result == {"mode": "fast", "n": 2}
    assert rc.app("app.option.set", options={}).error == (400, "ArgumentNullException")
    assert rc.hook("app.option.get").error == (400, "AccessException")  # an app's own options
    assert rc.app("user.option.set", options={"theme": "dark"}).result is True
    assert rc.app("user.option.get", option="theme").result == "dark"
    assert rc.hook("user.option.get").error == (400, "AccessException")
