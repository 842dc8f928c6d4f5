"""The messenger's REST methods (``im.*``) over real HTTP: chats, messages, dialogs, the recent list,
counters, notifications, users and search, each with its state and its documented refusals."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.support.rest_http import RestClient, rest_client

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


@pytest.fixture(scope="module")
def rc() -> Iterator[RestClient]:
    with rest_client("messenger.bitrix24.com") as client:
        yield client


def _chat(rc: RestClient, **fields: object) -> int:
    chat_id = rc.hook("im.chat.add", USERS=[1, 2], TYPE="CHAT", **fields).result
    assert isinstance(chat_id, int)
    assert chat_id > 0
    return chat_id


def test_chat_lifecycle(rc: RestClient) -> None:
    chat_id = _chat(rc, TITLE="Project room", ENTITY_TYPE="SDK", ENTITY_ID="room-1")
    assert rc.hook("im.chat.get", ENTITY_TYPE="SDK", ENTITY_ID="room-1").result == {"ID": chat_id}
    assert rc.hook("im.chat.get", ENTITY_TYPE="SDK", ENTITY_ID="nope").result is None
    assert rc.hook("im.chat.user.list", CHAT_ID=chat_id).result == [1, 2]
    assert rc.hook("im.chat.user.add", CHAT_ID=chat_id, USERS=[3]).result is True
    assert rc.hook("im.chat.user.list", CHAT_ID=chat_id).result == [1, 2, 3]
    assert rc.hook("im.chat.user.delete", CHAT_ID=chat_id, USER_ID=3).result is True
    assert rc.hook("im.chat.user.delete", CHAT_ID=chat_id, USER_ID=3).error == (400, "USER_NOT_FOUND")
    assert rc.hook("im.chat.mute", CHAT_ID=chat_id, MUTE="Y").result is True
    assert rc.hook("im.chat.updateTitle", CHAT_ID=chat_id, TITLE=" ").error == (400, "TITLE_EMPTY")
    assert rc.hook("im.chat.updateTitle", DIALOG_ID=f"chat{chat_id}", TITLE="Renamed").result is True
    assert rc.hook("im.chat.updateColor", CHAT_ID=chat_id, COLOR="NAVY").error == (400, "WRONG_COLOR")
    assert rc.hook("im.chat.updateColor", CHAT_ID=chat_id, COLOR="SAND").result is True
    assert rc.hook("im.chat.updateColor", CHAT_ID=chat_id, COLOR="SAND").error == (400, "WRONG_REQUEST")
    assert rc.hook("im.chat.updateAvatar", CHAT_ID=chat_id, AVATAR="").error == (400, "AVATAR_ERROR")
    assert rc.hook("im.chat.updateAvatar", CHAT_ID=chat_id, AVATAR=PNG).result is True
    dialog = rc.hook("im.dialog.get", DIALOG_ID=f"chat{chat_id}").result
    assert (dialog["name"], dialog["type"], dialog["dialog_id"]) == ("Renamed", "chat", f"chat{chat_id}")
    assert (dialog["color"], dialog["mute_list"], dialog["owner"]) == ("#ba9c7b", [1], 1)
    # only the owner hands the chat on, and only to a member
    assert rc.hook("im.chat.setOwner", CHAT_ID=chat_id, USER_ID=9).error == (403, "WRONG_REQUEST")
    assert rc.hook("im.chat.setOwner", CHAT_ID=chat_id, USER_ID=2).result is True
    assert rc.hook("im.chat.setOwner", CHAT_ID=chat_id, USER_ID=1).error == (403, "WRONG_REQUEST")
    assert rc.hook("im.chat.leave", CHAT_ID=chat_id).result is True
    assert rc.hook("im.chat.user.list", CHAT_ID=chat_id).result == []  # no longer a member: nothing shown
    assert rc.hook("im.chat.leave", CHAT_ID=chat_id).error == (403, "ACCESS_DENIED_KICK")
    assert rc.hook("im.chat.mute", CHAT_ID=0).error == (400, "CHAT_ID_EMPTY")


def test_messages_read_state_and_counters(rc: RestClient) -> None:
    chat_id = _chat(rc, MESSAGE="first")
    other = rc.app("im.message.add", DIALOG_ID=f"chat{chat_id}", MESSAGE="from the app's user").result
    # the app acts as user 1 too: a separate dialog is needed to see unread messages; user 2 writes to 1
    code = rc.portal.add_webhook(user_id=2, scopes="im")
    hook2 = f"{rc.portal.client_endpoint}2/{code}/"
    sent = rc.http.post(hook2 + "im.message.add", json={"DIALOG_ID": "1", "MESSAGE": "hello from 2"}).json()
    counters = rc.hook("im.counters.get").result
    assert counters["DIALOG"] == {"2": 1}
    assert counters["TYPE"]["DIALOG"] == 1
    page = rc.hook("im.dialog.messages.get", DIALOG_ID="2", LIMIT=10).result
    assert [m["text"] for m in page["messages"]] == ["hello from 2"]
    assert page["messages"][0]["unread"] is True
    assert [u["id"] for u in page["users"]] == [2]
    read = rc.hook("im.dialog.read", DIALOG_ID="2").result
    assert (read["lastId"], read["counter"]) == (sent["result"], 0)
    assert rc.hook("im.counters.get").result["DIALOG"] == []  # PHP writes an empty object as []
    assert rc.hook("im.dialog.unread", DIALOG_ID="2", MESSAGE_ID=sent["result"]).result is True
    assert rc.hook("im.counters.get").result["DIALOG"] == {"2": 1}
    assert rc.hook("im.dialog.read.all").result is True
    assert rc.hook("im.dialog.unread", DIALOG_ID="2", MESSAGE_ID=1).error == (400, "MESSAGE_ID_ERROR")
    # edit, like, delete: the author's own messages only
    assert rc.hook("im.message.update", MESSAGE_ID=other, MESSAGE="edited").result is True
    assert rc.hook("im.message.update", MESSAGE_ID=sent["result"], MESSAGE="x").error == (
        400,
        "CANT_EDIT_MESSAGE",
    )
    assert rc.hook("im.message.like", MESSAGE_ID=other).result is True
    assert rc.hook("im.message.like", MESSAGE_ID=other, ACTION="plus").error == (400, "WITHOUT_CHANGES")
    texts = rc.hook("im.dialog.messages.get", DIALOG_ID=f"chat{chat_id}").result["messages"]
    assert [(m["text"], m["params"]) for m in texts] == [
        ("edited", {"LIKE": [1], "IS_EDITED": "Y"}),
        ("first", []),
    ]
    found = rc.hook("im.dialog.messages.search", CHAT_ID=chat_id, SEARCH_MESSAGE="edit").result
    assert [m["text"] for m in found["messages"]] == ["edited"]
    assert rc.hook("im.message.delete", MESSAGE_ID=other).result is True
    assert rc.hook("im.message.delete", MESSAGE_ID=other).error == (400, "MESSAGE_ID_ERROR")
    assert rc.hook("im.message.share", MESSAGE_ID=sent["result"], DIALOG_ID="2", TYPE="MESSAGE").error == (
        400,
        "PARAMS_ERROR",
    )
    assert rc.hook("im.message.command", MESSAGE_ID=sent["result"], BOT_ID=0, COMMAND="x").error == (
        400,
        "BOT_ID_ERROR",
    )
    users = rc.hook("im.dialog.users.list", DIALOG_ID=f"chat{chat_id}").result
    assert [u["id"] for u in users] == [1, 2]
    assert rc.hook("im.dialog.writing", DIALOG_ID="2").result is True
    assert rc.hook("im.dialog.writing", DIALOG_ID="").error == (400, "DIALOG_ID_EMPTY")


def test_recent_list_pins_hides_and_marks(rc: RestClient) -> None:
    chat_id = _chat(rc, TITLE="Recent room", MESSAGE="something")
    dialog = f"chat{chat_id}"
    ids = [item["id"] for item in rc.hook("im.recent.get").result]
    assert dialog in ids
    assert rc.hook("im.recent.pin", DIALOG_ID=dialog, PIN="Y").result is True
    assert rc.hook("im.recent.unread", DIALOG_ID=dialog, ACTION="Y").result is True
    first = rc.hook("im.recent.list", LIMIT=1).result
    assert [(i["id"], i["pinned"], i["unread"]) for i in first["items"]] == [(dialog, True, True)]
    assert first["hasMore"] is True
    assert chat_id in rc.hook("im.counters.get").result["CHAT_UNREAD"]
    assert rc.hook("im.recent.hide", DIALOG_ID=dialog).result is True
    assert dialog not in [item["id"] for item in rc.hook("im.recent.get").result]
    assert rc.hook("im.recent.hide", DIALOG_ID="").error == (400, "DIALOG_ID_EMPTY")


def test_notifications(rc: RestClient) -> None:
    first = rc.hook("im.notify.personal.add", USER_ID=1, MESSAGE="Invoice paid", TAG="INV|1").result
    again = rc.hook("im.notify.personal.add", USER_ID=1, MESSAGE="Invoice paid twice", TAG="INV|1").result
    system = rc.hook("im.notify.system.add", USER_ID=1, MESSAGE="System says hi").result
    plain = rc.hook("im.notify", USER_ID=1, MESSAGE="Plain", TYPE="SYSTEM").result
    assert again > first
    assert system > again
    assert plain > system
    got = rc.hook("im.notify.get", LIMIT=20).result
    texts = [n["text"] for n in got["notifications"]]
    assert texts == ["Plain", "System says hi", "Invoice paid twice"]  # the same tag replaced the first one
    assert got["total_unread_count"] == 3
    assert [n["notify_type"] for n in got["notifications"]] == [4, 4, 2]
    assert [u["id"] for u in got["users"]] == [1]
    assert rc.hook("im.notify.read", ID=system, ONLY_CURRENT="Y").result is True
    assert rc.hook("im.notify.get").result["total_unread_count"] == 2
    assert rc.hook("im.notify.read.list", IDS=[again], ACTION="Y").result is True
    assert rc.hook("im.notify.read.list", IDS="x").error == (400, "PARAMS_ERROR")
    assert rc.hook("im.notify.read.all").result == {"result": True, "newCounter": 0}
    history = rc.hook("im.notify.history.search", SEARCH_TEXT="invoice").result
    assert [n["id"] for n in history["notifications"]] == [again]
    assert rc.hook("im.notify.schema.get").result["rest"]["MODULE_ID"] == "rest"
    assert rc.hook("im.notify.answer", NOTIFY_ID=again, ANSWER_TEXT="ok").error[1] == "ID_ERROR"
    assert rc.hook("im.notify.confirm", NOTIFY_ID=again, NOTIFY_VALUE="Y").error[1] == "ID_ERROR"
    assert rc.hook("im.notify.delete", ID=plain).result is True
    assert rc.hook("im.notify.delete", ID=plain).result is False
    assert rc.hook("im.notify.delete", TAG="INV|1").error == (400, "ACCESS_DENIED")  # a webhook names no app
    assert rc.hook("im.notify.personal.add", USER_ID=1, MESSAGE="").error == (400, "MESSAGE_EMPTY")


def test_users_statuses_departments_and_search(rc: RestClient) -> None:
    me = rc.hook("im.user.get").result
    assert (me["id"], me["departments"], me["status"]) == (1, [1], "online")
    assert rc.hook("im.user.get", ID=777).error == (400, "USER_NOT_EXISTS")
    keyed = rc.hook("im.user.list.get", ID=[1]).result
    assert list(keyed) == ["1"]
    assert [u["id"] for u in rc.hook("im.user.list.get", ID=[1], RESULT_TYPE="array").result] == [1]
    assert rc.hook("im.user.status.set", STATUS="dnd").result is True
    assert rc.hook("im.user.status.get").result == "dnd"
    assert rc.hook("im.user.status.set", STATUS="sleeping").error == (400, "STATUS_ERROR")
    assert rc.hook("im.user.status.idle.start", AGO=5).result is True
    assert rc.hook("im.user.get").result["idle"] is not False
    assert rc.hook("im.user.status.idle.end").result is True
    assert rc.hook("im.user.get").result["idle"] is False
    [department] = rc.hook("im.department.get", ID=[1], USER_DATA="Y").result
    assert (department["id"], department["manager_user_id"]) == (1, 1)
    assert department["manager_user_data"]["id"] == 1
    assert rc.hook("im.department.get", ID=[67]).result == []
    assert rc.hook("im.department.managers.get", ID=[1]).result == {"1": [1]}
    assert 1 in rc.hook("im.department.employees.get", ID=[1]).result["1"]
    colleagues = rc.hook("im.department.colleagues.list")
    assert 1 not in colleagues.result
    assert colleagues.body["total"] == len(colleagues.result)
    assert rc.hook("im.search.user.list", FIND="ad").error == (400, "FIND_SHORT")
    assert list(rc.hook("im.search.user.list", FIND="admin").result) == ["1"]
    assert rc.hook("im.search.user.list", FIND="nobody-here").result == []
    assert [d["id"] for d in rc.hook("im.search.department.list", FIND="comp").result] == [1]
    chat_id = _chat(rc, TITLE="Searchable B24 room")
    assert [c["id"] for c in rc.hook("im.search.chat.list", FIND="searchable").result] == [chat_id]
    assert rc.hook("im.search.last.add", DIALOG_ID=f"chat{chat_id}").result is True
    assert rc.hook("im.search.last.add", DIALOG_ID="2").result is True
    last = rc.hook("im.search.last.get").result
    assert [(i["id"], i["type"]) for i in last] == [(2, "user"), (f"chat{chat_id}", "chat")]
    assert rc.hook("im.search.last.delete", DIALOG_ID="2").result is True
    assert [i["id"] for i in rc.hook("im.search.last.get").result] == [f"chat{chat_id}"]


def test_revision_and_chat_files(rc: RestClient) -> None:
    assert {"rest", "web", "mobile"} <= set(rc.hook("im.revision.get").result)
    chat_id = _chat(rc)
    folder = rc.hook("im.disk.folder.get", CHAT_ID=chat_id).result
    assert folder == rc.hook("im.disk.folder.get", CHAT_ID=chat_id).result  # one folder per chat
    assert rc.hook("im.disk.file.save", FILE_ID=0).error == (400, "FILE_ID_EMPTY")
    assert rc.hook("im.disk.file.save", FILE_ID=5).error == (400, "FILE_SAVE_ERROR")
    assert rc.hook("im.disk.file.delete", CHAT_ID=0, FILE_ID=1).error == (400, "CHAT_ID_EMPTY")
    assert rc.hook("im.disk.file.commit", CHAT_ID=chat_id, UPLOAD_ID=5).error == (400, "FILE_ID_EMPTY")
