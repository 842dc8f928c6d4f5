"""The control API over loopback: pagination, waiting, the record cap, hostile input, the control token."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from mock_portal.cli.serve import control_token_for, parse_size
from mock_portal.control_routes import ROUTES, openapi_document
from mock_portal.errors import UsageError
from mock_portal.portal import Clock, Portal
from mock_portal.server import PortalServer, is_loopback

DOMAIN = "one.example.com"


@pytest.fixture
def srv():
    clock = Clock(start=1_750_000_000.0)
    with PortalServer([Portal(DOMAIN, seed=1, clock=clock)], clock=clock) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            server.client = client  # type: ignore[attr-defined]
            yield server
        server.portal.close()


def _rest_calls(srv: Any, count: int, method: str = "app.info") -> None:
    for i in range(count):
        answer = srv.client.post(f"/{DOMAIN}/rest/{method}", data={"auth": "not-a-token", "n": str(i)})
        assert answer.status_code == 401


def _state(srv: Any) -> Any:
    described = srv.client.get("/_portal").json()
    described.pop("now")
    return described


def test_listings_paginate_with_a_link_to_the_next_page(srv) -> None:
    _rest_calls(srv, 23)
    _rest_calls(srv, 4, method="event.get")
    first = srv.client.get("/_portal/rest-calls", params={"limit": 10})
    assert len(first.json()) == 10
    assert 'rel="next"' in first.headers["link"]
    seen, url = [], "/_portal/rest-calls?limit=10"
    while url:
        page = srv.client.get(url)
        assert page.status_code == 200
        seen.extend(page.json())
        link = page.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert [c["params"]["n"] for c in seen] == [str(i) for i in range(23)] + [str(i) for i in range(4)]
    assert len({c["id"] for c in seen}) == 27
    only = srv.client.get("/_portal/rest-calls", params={"method": "event.get", "limit": 3})
    assert [c["method"] for c in only.json()] == ["event.get"] * 3
    rest = srv.client.get(
        "/_portal/rest-calls", params={"method": "event.get", "after": only.headers["x-next-after"]}
    )
    assert len(rest.json()) == 1
    assert "link" not in rest.headers
    # everything at once is still the default for small recordings
    assert len(srv.client.get("/_portal/rest-calls").json()) == 27


def test_apps_and_portals_paginate_too(srv) -> None:
    for _ in range(5):
        assert srv.client.post("/_portal/apps", json={}).status_code == 201
    page = srv.client.get("/_portal/apps", params={"limit": 2})
    assert len(page.json()) == 2
    after = page.headers["x-next-after"]
    rest = srv.client.get("/_portal/apps", params={"limit": 10, "after": after}).json()
    assert len(rest) == 3
    assert {a["client_id"] for a in page.json()}.isdisjoint(a["client_id"] for a in rest)
    srv.client.post("/_portal/portals", json={"domain": "two.example.com"})
    portals = srv.client.get("/_portal/portals", params={"limit": 1})
    assert [p["domain"] for p in portals.json()] == [DOMAIN]
    assert "link" in portals.headers


def test_a_wait_past_a_cursor_returns_what_arrives_after_it(srv) -> None:
    _rest_calls(srv, 3)
    cursor = srv.client.get("/_portal/rest-calls").headers["x-cursor"]
    started = threading.Event()

    def call_later() -> None:
        started.wait()
        with httpx.Client(base_url=srv.url, timeout=30) as other:
            other.post(f"/{DOMAIN}/rest/app.info", data={"auth": "x", "n": "late"})

    worker = threading.Thread(target=call_later)
    worker.start()
    started.set()
    waited = srv.client.get("/_portal/rest-calls", params={"after": cursor, "min": 1, "timeout": 30})
    worker.join()
    assert [c["params"]["n"] for c in waited.json()] == ["late"]
    nothing = srv.client.get(
        "/_portal/rest-calls", params={"after": waited.headers["x-cursor"], "min": 1, "timeout": 0}
    )
    assert nothing.json() == []


def test_the_record_cap_drops_the_oldest_and_get_portal_counts_them() -> None:
    with PortalServer([Portal(DOMAIN, seed=2)], max_record_bytes=40_000) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(60):
                client.post(f"/{DOMAIN}/rest/app.info", json={"auth": "x", "blob": "z" * 2000, "n": i})
            described = client.get("/_portal").json()
            calls = client.get("/_portal/rest-calls").json()
        server.portal.close()
    assert described["dropped_records"] > 0
    records = described["portals"][0]["records"]
    assert records["dropped"]["calls"] == described["dropped_records"] == 60 - len(calls)
    assert records["bytes"] <= 40_000
    assert [c["params"]["n"] for c in calls] == list(range(60 - len(calls), 60))


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/_portal/clock", {"content": b'{"advance": NaN}'}, 400),
        ("POST", "/_portal/clock", {"content": b'{"advance": Infinity}'}, 400),
        ("POST", "/_portal/clock", {"json": {"advance": 2**100}}, 400),
        ("POST", "/_portal/clock", {"json": {"advance": 1e308}}, 400),
        ("POST", "/_portal/clock", {"json": {"advance": True}}, 400),
        ("POST", "/_portal/webhooks", {"json": {"scopes": True}}, 400),
        ("POST", "/_portal/webhooks", {"json": {"scopes": [1, 2]}}, 400),
        ("POST", "/_portal/webhooks", {"json": {"user_id": 10**30}}, 400),
        ("POST", "/_portal/apps", {"json": {"handlers": {"E": 5}}}, 400),
        ("POST", "/_portal/apps", {"content": b'{"code": "\\ud800"}'}, 400),
        ("POST", "/_portal/apps", {"content": b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}"}, 400),
        ("POST", "/_portal/apps", {"content": b'{"code": "' + b"a" * 70_000 + b'"}'}, 413),
        ("POST", "/_portal/sessions", {"json": {"line_id": 10**20}}, 400),
        ("POST", "/_portal/portals", {"json": {"seed": -1}}, 400),
        ("POST", "/_portal/portals", {"json": {"delivery_timeout": 0}}, 400),
        ("GET", "/_portal/rest-calls", {"params": {"limit": 0}}, 400),
        ("GET", "/_portal/rest-calls", {"params": {"after": "1e999"}}, 400),
        ("GET", "/_portal/rest-calls", {"params": {"limt": 5}}, 400),
        ("GET", "/_portal/deliveries", {"params": {"outcome": "fine"}}, 400),
        (
            "POST",
            f"/{DOMAIN}/rest/app.info",
            {"content": b'{"x": "\\ud800"}', "headers": {"content-type": "application/json"}},
            400,
        ),
        (
            "POST",
            f"/{DOMAIN}/rest/app.info",
            {"content": b'{"x": NaN}', "headers": {"content-type": "application/json"}},
            400,
        ),
        (
            "POST",
            f"/{DOMAIN}/rest/app.info",
            {"content": b'{"x": 1e999}', "headers": {"content-type": "application/json"}},
            400,
        ),
    ],
)
def test_bad_input_gets_a_json_4xx_and_changes_nothing(srv, method, path, kwargs, status) -> None:
    before = _state(srv)
    response = srv.client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "error_description"}
    assert _state(srv) == before
    # every listing still answers valid JSON
    for listing in ("/_portal", "/_portal/rest-calls", "/_portal/deliveries", "/_portal/apps"):
        answer = srv.client.get(listing)
        assert answer.status_code == 200
        json.loads(answer.content)


def test_the_clock_still_works_after_refusing_a_bad_step(srv) -> None:
    srv.client.post("/_portal/clock", content=b'{"advance": NaN}')
    now = srv.client.post("/_portal/clock", json={"advance": 7200}).json()["now"]
    assert now == 1_750_007_200.0
    assert srv.client.post("/_portal/apps", json={}).status_code == 201
    # one step of up to 100 years, but never past the year 2170 in total
    assert srv.client.post("/_portal/clock", json={"advance": 3e9}).status_code == 200
    assert srv.client.post("/_portal/apps", json={}).status_code == 201
    assert srv.client.post("/_portal/clock", json={"advance": 3e9}).status_code == 400


def test_openapi_document_covers_every_route(srv) -> None:
    document = srv.client.get("/_portal/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    operations = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert operations == {(r.method, r.path) for r in ROUTES}
    assert "security" not in document
    assert openapi_document(secured=True)["security"] == [{"control": []}]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_off_loopback_a_server_refuses_to_start_without_a_token() -> None:
    # refused before anything is bound: no socket is opened on 0.0.0.0
    with pytest.raises(UsageError, match="not a loopback address"):
        PortalServer(host="0.0.0.0")
    token, warnings = control_token_for("0.0.0.0", None)
    assert token is not None
    assert len(token) >= 24
    assert "not a loopback address" in warnings[0]
    assert token in warnings[1]  # shown once, at start-up: the only way to learn it
    given, said = control_token_for("0.0.0.0", "a-token-of-my-own-choosing")
    assert given == "a-token-of-my-own-choosing"
    assert len(said) == 1
    assert given not in said[0]
    assert control_token_for("127.0.0.1", None) == (None, [])
    with pytest.raises(UsageError, match="16 characters"):
        control_token_for("127.0.0.1", "short")


def test_a_control_token_guards_the_control_api_and_leaves_rest_open() -> None:
    token = "x" * 8 + "-control-token"
    with PortalServer(host="127.0.0.2", control_token=token) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            refused = client.get("/_portal")
            wrong = client.get("/_portal", headers={"authorization": "Bearer " + "y" * 22})
            allowed = client.get("/_portal", headers={"authorization": f"Bearer {token}"})
            rest = client.post(
                server.portal.client_endpoint[len(server.url) :] + "app.info", data={"auth": "t"}
            )
            document = client.get(
                "/_portal/openapi.json", headers={"authorization": f"Bearer {token}"}
            ).json()
        server.portal.close()
    assert server.url.startswith("http://127.0.0.2:")
    assert (refused.status_code, refused.json()["error"]) == (401, "CONTROL_TOKEN_REQUIRED")
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert token not in refused.text
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert allowed.json()["control_token_required"] is True
    assert token not in allowed.text
    assert rest.status_code == 401
    assert rest.json()["error"] != "CONTROL_TOKEN_REQUIRED"
    assert document["security"] == [{"control": []}]


@pytest.mark.parametrize(
    ("text", "size"),
    [("64M", 64 << 20), ("1G", 1 << 30), ("512k", 512 << 10), ("4096", 4096), ("2MiB", 2 << 20)],
)
def test_record_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "-1M", "0", "1.5G", "2T", "99999G"])
def test_bad_record_sizes(text: str) -> None:
    with pytest.raises(UsageError, match="max-record-bytes"):
        parse_size(text)


def test_recorded_deliveries_and_calls_carry_no_secret(srv) -> None:
    from urllib.parse import quote

    from mock_portal.delivery import CallableTarget
    from tests.support.portal import HANDLER_BASE, Recorder

    srv.portal.route(HANDLER_BASE, CallableTarget(Recorder()))
    handlers = {"ONSESSIONSTART": HANDLER_BASE + "events"}
    app = srv.client.post(
        "/_portal/apps", json={"install_url": HANDLER_BASE + "install", "handlers": handlers}
    )
    secrets = [app.json()[k] for k in ("access_token", "refresh_token", "application_token", "client_secret")]
    srv.client.post("/_portal/sessions", json={"auth": "user"})
    srv.client.post(f"/{DOMAIN}/rest/app.info", data={"auth": secrets[0]})
    deliveries = srv.client.get("/_portal/deliveries")
    calls = srv.client.get("/_portal/rest-calls")
    assert len(deliveries.json()) >= 2
    assert [c["method"] for c in calls.json()] == ["app.info"]
    for text in (deliveries.text, calls.text, srv.client.get("/_portal").text):
        for secret in secrets:
            assert secret not in text
            assert quote(secret) not in text
            assert secret.encode().hex() not in text
