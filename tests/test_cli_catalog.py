"""``mock-portal catalog``: every documented event and method with its status."""

from __future__ import annotations

import io
import json

from mock_portal.cli import run


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_events_list_every_event_with_its_status() -> None:
    code, out, err = _run("catalog", "--events")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "EVENT",
        "KIND",
        "SCOPE",
        "SCHEMA",
        "EN/RU",
        "OVERLAY",
        "CAPTURES",
        "BUILDER",
        "TRIGGER",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert len(rows) == 190
    assert rows["ONCRMDEALADD"][:8] == [
        "ONCRMDEALADD",
        "standard",
        "crm",
        "derived",
        "agrees",
        "0",
        "1/1",
        "derived",
    ]
    assert rows["ONIMBOTMESSAGEADD"][1] == "chat-bot"
    assert rows["ONSESSIONSTART"][7] == "hand"
    assert lines[-1].startswith("190 events: 189 with a derived schema;")
    assert "captures 36/36 valid" in lines[-1]


def test_methods_list_every_method_with_its_spec() -> None:
    code, out, _ = _run("catalog", "--methods")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["METHOD", "SCOPE", "KIND", "PARAMS", "SIMULATOR", "MOCK", "DEPRECATED"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert len(rows) == 1655
    assert rows["crm.deal.add"][:4] == ["crm.deal.add", "crm", "write", "2"]
    # how the mock portal answers: state of its own, the seeded dataset, or an honest documented error
    statuses = ("implemented", "seeded", "honest-error")
    mock = {name: [cell for cell in row if cell in statuses] for name, row in rows.items()}
    assert all(len(cells) == 1 for cells in mock.values())
    assert mock["crm.deal.add"] == ["implemented"]
    assert mock["crm.status.list"] == ["seeded"]
    assert mock["crm.item.add"] == ["honest-error"]
    assert lines[-1].startswith("1655 methods: ")
    assert "mock portal " in lines[-1]


def test_json_has_both_lists_and_the_counts() -> None:
    code, out, _ = _run("catalog", "--json")
    assert code == 0
    document = json.loads(out)
    assert len(document["events"]) == 190
    assert len(document["methods"]) == 1655
    events = document["summary"]["events"]
    assert (events["captures_valid"], events["captures_total"]) == (36, 36)
    assert events["builder"] == {"derived": 174, "hand": 16}
    assert document["summary"]["methods"]["simulator"]["absent"] == 93
    mock = document["summary"]["methods"]["mock"]
    assert set(mock) == {"implemented", "seeded", "honest-error"}
    assert sum(mock.values()) == 1655
    from mock_portal.rest import METHODS
    from mock_portal.rest.seeded import SEEDED

    assert mock["seeded"] == len(set(SEEDED) - set(METHODS))  # a method with state of its own is implemented
    assert mock["implemented"] == sum(
        name.lower() in METHODS for name in (m["name"] for m in document["methods"])
    )
    deal = next(e for e in document["events"] if e["name"] == "ONCRMDEALADD")
    assert deal["url"] == "https://apidocs.bitrix24.com/api-reference/crm/deals/events/on-crm-deal-add.html"


def test_events_and_methods_exclude_each_other() -> None:
    code, _, err = _run("catalog", "--events", "--methods")
    assert code == 2
    assert "not allowed with argument" in err
