"""The CRM methods beyond the basic units over real HTTP: links between items, product rows, the item
card, userfields one by one, recurring deals; and the connector methods a channel uses after a message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.rest_http import RestClient, rest_client


@pytest.fixture(scope="module")
def rc() -> Iterator[RestClient]:
    with rest_client("crm-links.bitrix24.com") as client:
        yield client


def test_fields_describe_every_documented_field(rc: RestClient) -> None:
    deal = rc.hook("crm.deal.fields").result
    assert {"STAGE_SEMANTIC_ID", "IS_RECURRING", "CONTACT_IDS", "UTM_SOURCE"} <= set(deal)
    assert deal["CATEGORY_ID"]["isImmutable"] is True
    assert deal["STAGE_ID"]["statusType"] == "DEAL_STAGE"
    assert {"ADDRESS", "REG_ADDRESS", "IS_MY_COMPANY"} <= set(rc.hook("crm.company.fields").result)
    added = rc.hook("crm.deal.add", fields={"TITLE": "won", "STAGE_ID": "WON"}).result
    assert rc.hook("crm.deal.get", id=added).result["STAGE_SEMANTIC_ID"] == "S"


def test_deal_contacts(rc: RestClient) -> None:
    assert set(rc.hook("crm.deal.contact.fields").result) == {"CONTACT_ID", "SORT", "IS_PRIMARY"}
    deal = rc.hook("crm.deal.add", fields={"TITLE": "with contacts"}).result
    first = rc.hook("crm.contact.add", fields={"NAME": "First"}).result
    second = rc.hook("crm.contact.add", fields={"NAME": "Second"}).result
    assert rc.hook("crm.deal.contact.add", id=deal, fields={"CONTACT_ID": first}).result is True
    assert rc.hook("crm.deal.contact.add", id=deal, fields={"CONTACT_ID": second, "IS_PRIMARY": "Y"}).result
    items = rc.hook("crm.deal.contact.items.get", id=deal).result
    assert [(i["CONTACT_ID"], i["IS_PRIMARY"]) for i in items] == [(first, "N"), (second, "Y")]
    assert rc.hook("crm.deal.get", id=deal).result["CONTACT_ID"] == str(second)
    assert rc.hook("crm.deal.contact.add", id=deal, fields={"CONTACT_ID": 999}).error == (400, "")
    assert rc.hook("crm.deal.contact.delete", id=deal, fields={"CONTACT_ID": second}).result is True
    # the first one left becomes primary
    assert rc.hook("crm.deal.contact.items.get", id=deal).result == [
        {"CONTACT_ID": first, "SORT": 10, "ROLE_ID": 0, "IS_PRIMARY": "Y"}
    ]
    items_set = [{"CONTACT_ID": second, "SORT": 5}, {"CONTACT_ID": first, "SORT": 9, "IS_PRIMARY": "Y"}]
    assert rc.hook("crm.deal.contact.items.set", id=deal, items=items_set).result is True
    assert [i["CONTACT_ID"] for i in rc.hook("crm.deal.contact.items.get", id=deal).result] == [second, first]
    assert rc.hook("crm.deal.contact.items.delete", id=deal).result is True
    assert rc.hook("crm.deal.contact.items.get", id=deal).result == []
    assert rc.hook("crm.deal.get", id=deal).result["CONTACT_ID"] is None


def test_contacts_and_companies_share_one_link(rc: RestClient) -> None:
    contact = rc.hook("crm.contact.add", fields={"NAME": "Linked"}).result
    company = rc.hook("crm.company.add", fields={"TITLE": "Linked Ltd"}).result
    assert rc.hook("crm.contact.company.add", id=contact, fields={"COMPANY_ID": company}).result is True
    assert [i["CONTACT_ID"] for i in rc.hook("crm.company.contact.items.get", id=company).result] == [contact]
    assert rc.hook("crm.contact.get", id=contact).result["COMPANY_ID"] == str(company)
    assert rc.hook("crm.company.delete", id=company).result is True
    assert rc.hook("crm.contact.company.items.get", id=contact).result == []


def test_product_rows(rc: RestClient) -> None:
    lead = rc.hook("crm.lead.add", fields={"TITLE": "rows"}).result
    rows = [{"PRODUCT_NAME": "Widget", "PRICE": "100.00", "QUANTITY": 2}, {"PRODUCT_NAME": "Nut", "PRICE": 5}]
    assert rc.hook("crm.lead.productrows.set", id=lead, rows=rows).result is True
    got = rc.hook("crm.lead.productrows.get", id=lead).result
    assert [(r["PRODUCT_NAME"], r["PRICE"], r["QUANTITY"], r["OWNER_TYPE"]) for r in got] == [
        ("Widget", 100, 2, "L"),
        ("Nut", 5, 1, "L"),
    ]
    assert rc.hook("crm.lead.get", id=lead).result["OPPORTUNITY"] == "205.00"
    assert rc.hook("crm.lead.productrows.set", id=lead, rows=[]).result is True
    assert rc.hook("crm.lead.productrows.get", id=lead).result == []
    assert rc.hook("crm.deal.productrows.get", id=10_000).error == (400, "")


def test_item_card_layout(rc: RestClient) -> None:
    common = rc.hook("crm.contact.details.configuration.get", scope="C").result
    assert common[0]["type"] == "section"
    mine = [{"name": "main", "title": "Mine", "type": "section", "elements": [{"name": "NAME"}]}]
    assert rc.hook("crm.contact.details.configuration.set", scope="P", data=mine).result is True
    assert rc.hook("crm.contact.details.configuration.get", scope="P").result == mine
    assert rc.hook("crm.contact.details.configuration.get", scope="C").result == common
    assert rc.hook("crm.contact.details.configuration.set", scope="P", data=[]).error == (400, "")
    assert rc.hook("crm.contact.details.configuration.forceCommonScopeForAll").result is True
    assert rc.hook("crm.contact.details.configuration.get", scope="P").result == common
    assert rc.hook("crm.contact.details.configuration.reset", scope="P").result is True
    code = rc.portal.add_webhook(user_id=5, scopes="crm")
    refused = rc.http.post(
        f"{rc.portal.client_endpoint}5/{code}/crm.contact.details.configuration.set",
        json={"scope": "C", "data": mine},
    )
    assert refused.json()["error_description"] == "Access denied."


def test_userfields_one_by_one(rc: RestClient) -> None:
    new_id = rc.hook(
        "crm.company.userfield.add", fields={"FIELD_NAME": "UF_SIZE", "USER_TYPE_ID": "integer"}
    ).result
    field = rc.hook("crm.company.userfield.get", id=new_id).result
    assert (field["FIELD_NAME"], field["ENTITY_ID"]) == ("UF_CRM_SIZE", "CRM_COMPANY")  # UF_ becomes UF_CRM_
    assert rc.hook(
        "crm.company.userfield.update", id=new_id, fields={"XML_ID": "size", "MANDATORY": "Y"}
    ).result
    field = rc.hook("crm.company.userfield.get", id=new_id).result
    assert (field["XML_ID"], field["MANDATORY"]) == ("size", "Y")
    assert rc.hook("crm.company.userfield.delete", id=new_id).result is True
    assert rc.hook("crm.company.userfield.get", id=new_id).error == (400, "ERROR_NOT_FOUND")


def test_recurring_deals(rc: RestClient) -> None:
    source = rc.hook("crm.deal.add", fields={"TITLE": "Monthly", "OPPORTUNITY": 50}).result
    assert "BASED_ID" in rc.hook("crm.deal.recurring.fields").result
    params = {"MODE": "multiple", "MULTIPLE_TYPE": "month", "MULTIPLE_INTERVAL": 1}
    fields = {"DEAL_ID": source, "IS_LIMIT": "X", "START_DATE": "2030-01-05", "PARAMS": params}
    recurring = rc.hook("crm.deal.recurring.add", fields=fields).result
    row = rc.hook("crm.deal.recurring.get", id=recurring).result
    # the template is a copy of the deal: DEAL_ID is the template, BASED_ID the deal it came from
    assert row["BASED_ID"] == str(source)
    assert row["DEAL_ID"] != str(source)
    assert (row["IS_LIMIT"], row["START_DATE"]) == ("N", "2030-01-05T00:00:00+00:00")
    template = rc.hook("crm.deal.get", id=int(row["DEAL_ID"])).result
    assert (template["TITLE"], template["IS_RECURRING"]) == ("Monthly", "Y")
    templated = {"DEAL_ID": int(row["DEAL_ID"])}
    assert rc.hook("crm.deal.recurring.add", fields=templated).error[0] == 400  # a template has its setting
    assert rc.hook("crm.deal.recurring.update", id=recurring, fields={"CATEGORY_ID": "2"}).result is True
    [listed] = rc.hook("crm.deal.recurring.list", filter={"ID": recurring}).result
    assert listed["CATEGORY_ID"] == "2"
    exposed = rc.hook("crm.deal.recurring.expose", id=recurring).result
    assert rc.hook("crm.deal.get", id=exposed["DEAL_ID"]).result["TITLE"] == "Monthly"
    assert rc.hook("crm.deal.recurring.get", id=recurring).result["COUNTER_REPEAT"] == "1"
    assert rc.hook("crm.deal.recurring.delete", id=recurring).result is True
    assert rc.hook("crm.deal.recurring.get", id=recurring).error == (400, "")
    assert rc.hook("crm.deal.get", id=int(row["DEAL_ID"])).error == (400, "")  # the template went too


def test_connector_methods_after_a_message(rc: RestClient) -> None:
    lines = rc.app(
        "imopenlines.config.list.get", PARAMS={"select": ["ID", "ACTIVE"], "filter": {"ACTIVE": "Y"}}
    )
    assert lines.result == [{"ID": "1", "ACTIVE": "Y"}]
    icon = {"DATA_IMAGE": "data:image/svg+xml;charset=US-ASCII,%3Csvg%3E%3C/svg%3E"}
    registered = rc.app(
        "imconnector.register", ID="chan", NAME="Chan", ICON=icon, PLACEMENT_HANDLER="https://a.b.c/"
    )
    assert registered.result == {"result": True}
    assert rc.app("imconnector.list").result == {"livechat": "Live chat", "chan": "Chan"}
    assert rc.app("imconnector.activate", CONNECTOR="chan", LINE=1, ACTIVE=1).result is True
    assert rc.app(
        "imconnector.chat.name.set", CONNECTOR="chan", LINE=1, CHAT_ID="c1", NAME="Named"
    ).result == {
        "SUCCESS": True,
        "DATA": {"RESULT": {}},
    }
    message = {"user": {"id": "u1"}, "message": {"id": "m1", "text": "hi"}, "chat": {"id": "c1"}}
    assert rc.app("imconnector.send.messages", CONNECTOR="chan", LINE=1, MESSAGES=[message]).result["SUCCESS"]
    chat = next(c for c in rc.portal.chats.values() if c.external_chat_id == "c1")
    assert chat.name == "Named"  # the name set before the chat opened
    edit = {**message, "message": {"id": "m1", "text": "hi, edited"}}
    updated = rc.app("imconnector.update.messages", CONNECTOR="chan", LINE=1, MESSAGES=[edit]).result
    assert updated["DATA"]["RESULT"][0]["SUCCESS"] is True
    assert [m.text for m in rc.portal.messages if m.chat_id == chat.id] == ["hi, edited"]
    gone = rc.app("imconnector.delete.messages", CONNECTOR="chan", LINE=1, MESSAGES=[message]).result
    assert gone["DATA"]["RESULT"][0]["SUCCESS"] is True
    again = rc.app("imconnector.delete.messages", CONNECTOR="chan", LINE=1, MESSAGES=[message]).result
    assert again["DATA"]["RESULT"][0]["SUCCESS"] is False
    status = [{"im": {"chat_id": chat.id, "message_id": 1}, "message": {"id": ["m1"]}, "chat": {"id": "c1"}}]
    for method in ("imconnector.send.status.delivery", "imconnector.send.status.reading"):
        assert rc.app(method, CONNECTOR="chan", LINE=1, MESSAGES=status).result == {
            "SUCCESS": True,
            "DATA": [],
        }
        assert rc.hook(method, CONNECTOR="chan", LINE=1, MESSAGES=status).error == (403, "WRONG_AUTH_TYPE")
    assert rc.app("imconnector.update.messages", CONNECTOR="chan", LINE=7, MESSAGES=[edit]).error == (
        400,
        "NOT_ACTIVE_LINE",
    )
