"""Builders of every documented event (mock_portal.derived) and the event table they read."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from mock_portal import eventtable, schemas
from mock_portal.errors import UnknownNameError
from mock_portal.events import EventStream, build_event, event_names, event_spec
from mock_portal.wire import decode

EVENTS = eventtable.names()


# ------------------------------------------------------------------------------------------- the table


def test_the_table_has_every_documented_event() -> None:
    # 162 events with a handler section (docs-full/SOURCES.md), 27 outdated pages, and ONAPPTEST
    assert len(EVENTS) == 190
    assert set(event_names()) == set(EVENTS)
    assert sum(1 for e in eventtable.entries() if e.builder == "hand") == 16
    deal = eventtable.entry("oncrmdealadd")
    assert (deal.scope, deal.auth_modes, deal.receivers, deal.kind) == (
        ("crm",),
        ("user", "system"),
        "bound",
        "standard",
    )
    assert deal.url == "https://apidocs.bitrix24.com/api-reference/crm/deals/events/on-crm-deal-add.html"
    assert deal.translation == "agrees"
    assert eventtable.entry("ONAPPINSTALL").scope == ()  # the basic scope
    assert eventtable.entry("ONIMBOTMESSAGEADD").receivers == "bot-owner"
    assert eventtable.entry("ONSESSIONSTART").shapes == ("source-2024", "docs-2024", "docs-2026")
    with pytest.raises(UnknownNameError, match="did you mean 'ONCRMDEALADD'"):
        eventtable.entry("ONCRMDEALAD")


def test_the_portal_binds_by_the_tables_scopes() -> None:
    """event.bind reads each event's scope from the table: every documented event, and the imconnector
    events under ``imconnector``, as each of their pages says."""
    from mock_portal.portal import EVENT_SCOPES
    from mock_portal.portal.model import event_scopes

    assert set(EVENT_SCOPES) == set(eventtable.names())
    assert EVENT_SCOPES["ONCRMDEALADD"] == ("crm",)
    assert EVENT_SCOPES["ONTASKADD"] == ("task",)
    assert EVENT_SCOPES["ONAPPTEST"] == ()
    assert {EVENT_SCOPES[e] for e in EVENT_SCOPES if e.startswith("ONIMCONNECTOR")} == {("imconnector",)}
    assert event_scopes("ONNOSUCHEVENT") is None
    assert "oncrmdealadd" not in EVENT_SCOPES


def test_declarable_events_are_all_but_the_install_flow() -> None:
    declarable = eventtable.declarable()
    assert set(declarable) == set(EVENTS) - {"ONAPPINSTALL", "ONAPPUPDATE", "ONAPPUNINSTALL"}


def test_no_import_cycle_between_the_builders() -> None:
    code = (
        "import sys; import mock_portal.siblings, mock_portal.derived; "
        "print('mock_portal.events' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------------------------------- every event


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_builds_and_validates_in_every_shape_and_auth_mode(event: str) -> None:
    spec = event_spec(event)
    shape_of = "any" if event == "ONAPPTEST" else None
    for auth in spec.auth_modes:
        for shape in spec.shapes:
            built = build_event(event, shape=shape, auth=auth, seed=11)
            assert built.payload["event"] == event
            assert list(built.payload)[-1] == "auth"
            wire = decode(built.body("form"))
            assert wire == built.wire_payload
            for body in (built.payload, wire):
                for strict in (False, True):
                    report = schemas.validate(body, event, shape_of or shape, strict=strict)
                    assert report.ok, report.format()


@pytest.mark.parametrize(
    "event", ["ONCRMDEALADD", "ONIMBOTMESSAGEADD", "CATALOG.PRODUCT.ON.ADD", "ONTASKADD"]
)
def test_the_same_seed_gives_the_same_bytes_and_streams_agree(event: str) -> None:
    assert build_event(event, seed="s").body() == build_event(event, seed="s").body()
    assert build_event(event, seed="s").body() != build_event(event, seed="t").body()
    stream = EventStream(event, seed=3, portals=2)
    bodies = list(stream.bodies(5))
    assert [e.body() for e in stream.events(5)] == bodies
    assert len(set(bodies)) == 5
    for body in bodies:
        assert schemas.validate(decode(body), event).ok


def test_fields_take_realistic_values_by_name_and_type() -> None:
    data = build_event("ONEXTERNALCALLSTART", seed=2).payload["data"]
    assert data["CALL_ID"].startswith("externalCall.")
    assert data["PHONE_NUMBER"].startswith("+")
    assert data["CRM_ENTITY_TYPE"] in ("LEAD", "DEAL", "CONTACT", "COMPANY", "QUOTE")
    assert data["IS_MOBILE"] in ("0", "1")  # the values the page lists
    user = build_event("ONUSERADD", seed=2).payload["data"]
    assert "@" in user["EMAIL"]
    assert user["ACTIVE"] in ("Y", "N")
    assert user["DATE_REGISTER"].startswith("20")
    assert "T" in user["DATE_REGISTER"]


def test_fields_naming_the_portals_state_take_the_context() -> None:
    built = build_event("ONEXTERNALCALLSTART", context={"user_id": 77}, seed=1)
    assert built.payload["data"]["USER_ID"] == 77
    assert built.payload["auth"]["user_id"] == 77
    bot = build_event("ONIMBOTMESSAGEADD", context={"chat_id": 4030, "user_id": 9}, seed=1).payload
    assert bot["data"]["PARAMS"]["DIALOG_ID"] == "chat4030"
    assert bot["data"]["PARAMS"]["CHAT_ID"] == 4030
    assert bot["data"]["PARAMS"]["FROM_USER_ID"] == 9


# ------------------------------------------------------------------------------------------- kinds


def test_chat_bot_events_carry_the_bots_own_tokens() -> None:
    context = {"bot_id": 1816, "bot_code": "cs_bot", "bot_access_token": "b" * 70, "client_id": "app.1.2"}
    built = build_event("ONIMBOTMESSAGEADD", auth="system", context=context, seed=4)
    (bot_id, block), *rest = built.payload["data"]["BOT"].items()
    assert rest == []
    assert bot_id == 1816
    assert (block["BOT_ID"], block["BOT_CODE"]) == (1816, "cs_bot")
    assert block["user_id"] == 1816  # the bot is a user of its own
    assert block["access_token"] == "b" * 70
    assert block["AUTH"] == {k: v for k, v in block.items() if k not in ("AUTH", "BOT_ID", "BOT_CODE")}
    assert "refresh_token" in block
    assert (
        "access_token" not in built.payload["auth"]
    )  # system mode: the bot's tokens are not the top level's
    assert "data%5BBOT%5D%5B1816%5D%5BAUTH%5D%5Baccess_token%5D=" + "b" * 70 in built.body()
    command = build_event("ONIMCOMMANDADD", seed=4).payload["data"]["COMMAND"]
    ((_, item),) = command.items()
    assert {"access_token", "AUTH"} <= set(item)


def test_offline_event_has_no_data_on_the_wire_and_a_refresh_token() -> None:
    built = build_event("ONOFFLINEEVENT", seed=1)
    assert built.payload["data"] == []
    assert "data" not in built.wire_payload
    assert "refresh_token" in built.payload["auth"]
    with pytest.raises(UnknownNameError):
        build_event("ONOFFLINEEVENT", auth="system")
    report = schemas.validate(built.wire_payload, "ONOFFLINEEVENT")
    assert report.ok
    without = json.loads(json.dumps(built.wire_payload))
    del without["auth"]["refresh_token"]
    assert [i.path for i in schemas.validate(without, "ONOFFLINEEVENT").errors] == ["$.auth.refresh_token"]


def test_telephony_events_are_a_users() -> None:
    assert event_spec("ONVOXIMPLANTCALLEND").auth_modes == ("user",)
    with pytest.raises(UnknownNameError):
        build_event("ONEXTERNALCALLSTART", auth="system")


def test_outdated_pages_build_inside_the_envelope() -> None:
    built = build_event("ONCRMMEASUREADD", seed=1)
    assert set(built.payload["data"]) == {"FIELDS"}  # array('FIELDS' => array('ID' => $id))
    assert set(built.payload["data"]["FIELDS"]) == {"ID"}


def _leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 1


def test_every_documented_key_is_built() -> None:
    """The skeleton keeps every key the page documents, so a strict handler test sees them all."""
    built = build_event("ONIMBOTMESSAGEADD", seed=1).payload["data"]
    params = schemas.registry().contents(schemas.schema_uri("ONIMBOTMESSAGEADD", "docs"))["$defs"]["params"]
    assert set(built["PARAMS"]) == set(params["properties"])
    assert _leaves(built) > 60


# ------------------------------------------------------------------------------------------- field values


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("EMAIL", "string", "email"),
        ("PHONE_NUMBER_INTERNATIONAL", "string", "phone"),
        ("CALL_ID", "string", "call-id"),
        ("DATE_CREATE", "string", "datetime"),
        ("DATE_CREATE", "integer", "integer"),  # an integer named *_DATE is still an integer
        ("ASSIGNED_BY_ID", "integer", "id"),
        ("IS_BOT", "char", "yes-no"),
        ("OPPORTUNITY", "string", "money"),
        ("CURRENCY_ID", "string", "currency"),
        ("PERSONAL_BIRTHDAY", "string", "date"),
        ("ANYTHING", "timestamp", "timestamp"),
        ("ANYTHING", "string", "string"),
    ],
)
def test_field_classes_follow_type_then_name(name: str, kind: str, expected: str) -> None:
    from mock_portal.fakes import field_class

    assert field_class(name, kind) == expected


def test_field_values_are_reproducible_and_never_read_the_clock() -> None:
    from faker import Faker

    from mock_portal.fakes import FIELD_CLASSES, B24FieldProvider

    def values() -> list[object]:
        fake = Faker("ru_RU")
        fake.add_provider(B24FieldProvider)
        fake.seed_instance(5)
        return [fake.b24_field_of_class(cls) for cls in FIELD_CLASSES]

    first = values()
    assert first == values()
    assert all(value not in (None, "") for value in first)
