"""The server over real loopback HTTP: routing, several portals, the control API, hostile requests."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from mock_portal.delivery import CallableTarget
from mock_portal.portal import Clock, Portal
from mock_portal.server import PortalServer
from tests.support.portal import HANDLER_BASE, Recorder


@pytest.fixture
def srv():
    clock = Clock(start=1_750_000_000.0)
    with PortalServer([Portal("one.example.com", seed=1, clock=clock)], clock=clock) as server:
        recorder = Recorder()
        server.portal.route(HANDLER_BASE, CallableTarget(recorder))
        server.recorder = recorder  # type: ignore[attr-defined]
        with httpx.Client(base_url=server.url, timeout=30) as client:
            server.client = client  # type: ignore[attr-defined]
            yield server
        server.portal.close()


def _install(srv, **extra):
    body = {
        "install_url": HANDLER_BASE + "install",
        "handlers": {"ONSESSIONSTART": HANDLER_BASE + "events", "ONAPPUNINSTALL": HANDLER_BASE + "gone"},
        **extra,
    }
    response = srv.client.post("/_portal/apps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_binds_loopback_on_a_free_port(srv) -> None:
    assert srv.url.startswith("http://127.0.0.1:")
    assert srv.port > 0
    assert srv.portal.client_endpoint == f"{srv.url}/one.example.com/rest/"
    described = srv.client.get("/_portal").json()
    assert [p["domain"] for p in described["portals"]] == ["one.example.com"]
    assert any(r["path"] == "/_portal/sessions" for r in described["routes"])


def test_install_then_session_then_listings(srv) -> None:
    app = _install(srv)
    assert app["member_id"] == srv.portal.member_id
    assert app["installed"] is True
    assert [d["outcome"] for d in app["deliveries"]] == ["ok"]
    assert app["application_token"] not in json.dumps(app["deliveries"])
    session = srv.client.post("/_portal/sessions", json={"shape": "docs-2026", "line_id": 4}).json()
    assert session["dialog_id"] == f"chat{session['chat_id']}"
    assert [d["outcome"] for d in session["deliveries"]] == ["ok"]
    [payload] = srv.recorder.events("ONSESSIONSTART")
    assert payload["auth"]["client_endpoint"] == srv.portal.client_endpoint
    assert payload["auth"]["server_endpoint"] == f"{srv.url}/oauth/rest/"
    deliveries = srv.client.get("/_portal/deliveries").json()
    assert [d["event"] for d in deliveries] == ["ONAPPINSTALL", "ONSESSIONSTART"]
    only = srv.client.get("/_portal/deliveries", params={"event": "onsessionstart"}).json()
    assert len(only) == 1
    text = json.dumps(deliveries)
    assert app["access_token"] not in text
    assert app["application_token"] not in text
    apps = srv.client.get("/_portal/apps").json()
    assert [a["client_id"] for a in apps] == [app["client_id"]]
    assert "client_secret" not in json.dumps(apps)


def test_rest_over_http_with_suffix_form_json_and_get(srv) -> None:
    app = _install(srv)
    token = app["access_token"]
    session = srv.client.post("/_portal/sessions", json={}).json()
    base = "/one.example.com/rest/"
    form = srv.client.post(
        base + "im.message.add.json", data={"DIALOG_ID": session["dialog_id"], "MESSAGE": "a", "auth": token}
    )
    assert form.status_code == 200
    assert isinstance(form.json()["result"], int)
    as_json = srv.client.post(
        base + "im.message.add", json={"DIALOG_ID": session["dialog_id"], "MESSAGE": "b", "auth": token}
    )
    assert as_json.status_code == 200
    via_get = srv.client.get(base + "app.info", params={"auth": token})
    assert via_get.json()["result"]["INSTALLED"] is True
    default = srv.client.get("/rest/app.info.json", params={"auth": token})  # the default portal
    assert default.status_code == 200
    calls = srv.client.get("/_portal/rest-calls", params={"method": "im.message.add"}).json()
    assert [c["params"]["MESSAGE"] for c in calls] == ["a", "b"]
    assert token not in json.dumps(srv.client.get("/_portal/rest-calls").json())


def test_token_expiry_and_refresh_over_http(srv) -> None:
    app = _install(srv)
    assert srv.client.post("/_portal/clock", json={"advance": 3600}).status_code == 200
    expired = srv.client.get("/one.example.com/rest/app.info", params={"auth": app["access_token"]})
    assert (expired.status_code, expired.json()["error"]) == (401, "expired_token")
    fresh = srv.client.get(
        "/oauth/token/",
        params={
            "grant_type": "refresh_token",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "refresh_token": app["refresh_token"],
        },
    )
    assert fresh.status_code == 200
    again = srv.client.get("/one.example.com/rest/app.info", params={"auth": fresh.json()["access_token"]})
    assert again.status_code == 200
    via_server = srv.client.post("/oauth/rest/app.info", data={"auth": fresh.json()["access_token"]})
    assert via_server.status_code == 200


def test_ui_app_install_finish_and_uninstall(srv) -> None:
    app = _install(srv, ui=True)
    assert app["installed"] is False
    dropped = srv.client.post("/_portal/sessions", json={}).json()["deliveries"]
    assert [d["outcome"] for d in dropped] == ["dropped"]
    assert "installFinish" in dropped[0]["reason"]
    finished = srv.client.post(f"/_portal/apps/{app['client_id']}/install-finish")
    assert finished.json()["installed"] is True
    assert [d["outcome"] for d in srv.client.post("/_portal/sessions", json={}).json()["deliveries"]] == [
        "ok"
    ]
    gone = srv.client.delete(f"/_portal/apps/{app['client_id']}")
    assert [d["event"] for d in gone.json()["deliveries"]] == ["ONAPPUNINSTALL"]
    assert (
        srv.client.get("/one.example.com/rest/app.info", params={"auth": app["access_token"]}).status_code
        == 401
    )


def test_weak_handler_url_check_in_the_control_api(srv) -> None:
    response = srv.client.post("/_portal/apps", json={"handlers": {"ONSESSIONSTART": "http://localhost:9/h"}})
    assert response.status_code == 400
    assert "Wrong handler URL" in response.json()["error_description"]
    ok = srv.client.post("/_portal/apps", json={"handlers": {"ONSESSIONSTART": "http://127.0.0.1:9/h"}})
    assert ok.status_code == 201


def test_several_portals_are_told_apart_by_path(srv) -> None:
    created = srv.client.post("/_portal/portals", json={"domain": "two.example.com", "status": "P"})
    assert created.status_code == 201
    assert created.json()["client_endpoint"] == f"{srv.url}/two.example.com/rest/"
    first = _install(srv)
    second = srv.client.post("/_portal/apps", params={"portal": "two.example.com"}, json={}).json()
    assert first["member_id"] != second["member_id"]
    cross = srv.client.get("/two.example.com/rest/app.info", params={"auth": first["access_token"]})
    assert cross.json()["error"] == "invalid_token"
    own = srv.client.get("/two.example.com/rest/app.info", params={"auth": second["access_token"]})
    assert own.json()["result"]["STATUS"] == "P"
    duplicate = srv.client.post("/_portal/portals", json={"domain": "two.example.com"})
    assert duplicate.status_code == 409
    unknown = srv.client.get("/_portal/deliveries", params={"portal": "tow.example.com"})
    assert unknown.status_code == 404
    assert "did you mean 'two.example.com'" in unknown.json()["error_description"]


def test_reset(srv) -> None:
    _install(srv)
    srv.client.post("/_portal/sessions", json={})
    assert srv.client.post("/_portal/reset").status_code == 200
    assert srv.client.get("/_portal/deliveries").json() == []
    assert srv.client.get("/_portal/apps").json() == []


def test_webhook_over_http(srv) -> None:
    hook = srv.client.post("/_portal/webhooks", json={"user_id": 1, "scopes": "im,imopenlines"}).json()
    session = srv.client.post("/_portal/sessions", json={}).json()
    path = hook["url"][len(srv.url) :]
    ok = srv.client.post(
        path + "im.message.add.json", data={"DIALOG_ID": session["dialog_id"], "MESSAGE": "x"}
    )
    assert ok.status_code == 200
    refused = srv.client.post(
        path + "event.bind", data={"event": "ONSESSIONSTART", "handler": "https://a.b.c/"}
    )
    assert (refused.status_code, refused.json()["error"]) == (403, "WRONG_AUTH_TYPE")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/_portal/apps", {"content": b"{not json"}, 400),
        ("POST", "/_portal/apps", {"content": b"[1,2]"}, 400),
        ("POST", "/_portal/apps", {"content": b"\xff\xfe"}, 400),
        ("POST", "/_portal/apps", {"json": {"handlers": ["x"]}}, 400),
        ("POST", "/_portal/apps", {"json": {"ui": "yes"}}, 400),
        ("POST", "/_portal/apps", {"json": {"scopes": 5}}, 400),
        ("POST", "/_portal/apps", {"json": {"install_url": "ftp://x.y/"}}, 400),
        ("POST", "/_portal/apps", {"json": {"timeout": -1}}, 400),
        ("POST", "/_portal/apps", {"json": {"portal": 5}}, 400),
        ("POST", "/_portal/sessions", {"json": {"auth": "root"}}, 400),
        ("POST", "/_portal/sessions", {"json": {"shape": "docs-2025"}}, 400),
        ("POST", "/_portal/sessions", {"json": {"line_id": "abc"}}, 400),
        ("POST", "/_portal/sessions", {"json": {"line_id": -3}}, 400),
        ("POST", "/_portal/clock", {"json": {"advance": -5}}, 400),
        ("POST", "/_portal/clock", {"json": {"advance": "soon"}}, 400),
        ("POST", "/_portal/portals", {"json": {"domain": "nodot"}}, 400),
        ("POST", "/_portal/portals", {"json": {"status": "X"}}, 400),
        ("POST", "/_portal/apps/local.nope/install-finish", {}, 404),
        ("DELETE", "/_portal/apps/local.nope", {}, 404),
        ("GET", "/_portal/nothing", {}, 404),
        ("PUT", "/_portal/apps", {}, 405),
        ("PUT", "/one.example.com/rest/app.info", {}, 405),
        ("GET", "/nowhere/at/all", {}, 404),
        ("GET", "/no.such.portal/rest/app.info", {}, 404),
        ("POST", "/one.example.com/rest/app.info", {"content": b"x" * 1_100_000}, 413),
        ("POST", "/one.example.com/rest/app.info", {"content": b"a" + b"[b]" * 80 + b"=1"}, 400),
        (
            "POST",
            "/one.example.com/rest/app.info",
            {
                "json": {
                    "a": [
                        [
                            [
                                [
                                    [
                                        [
                                            [
                                                [
                                                    [
                                                        [
                                                            [
                                                                [
                                                                    [
                                                                        [
                                                                            [
                                                                                [
                                                                                    [
                                                                                        [
                                                                                            [
                                                                                                [
                                                                                                    [
                                                                                                        [
                                                                                                            [
                                                                                                                [
                                                                                                                    [
                                                                                                                        [
                                                                                                                            [
                                                                                                                                [
                                                                                                                                    [
                                                                                                                                        [
                                                                                                                                            [
                                                                                                                                                [
                                                                                                                                                    [
                                                                                                                                                        [
                                                                                                                                                            [
                                                                                                                                                                [
                                                                                                                                                                    [
                                                                                                                                                                        [
                                                                                                                                                                            [
                                                                                                                                                                                [
                                                                                                                                                                                    [
                                                                                                                                                                                        [
                                                                                                                                                                                            [
                                                                                                                                                                                                [
                                                                                                                                                                                                    [
                                                                                                                                                                                                        [
                                                                                                                                                                                                            [
                                                                                                                                                                                                                [
                                                                                                                                                                                                                    [
                                                                                                                                                                                                                        [
                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                [
                                                                                                                                                                                                                                                                                    [
                                                                                                                                                                                                                                                                                        [
                                                                                                                                                                                                                                                                                            [
                                                                                                                                                                                                                                                                                                []
                                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                                ]
                                                                                                                                                                                                                            ]
                                                                                                                                                                                                                        ]
                                                                                                                                                                                                                    ]
                                                                                                                                                                                                                ]
                                                                                                                                                                                                            ]
                                                                                                                                                                                                        ]
                                                                                                                                                                                                    ]
                                                                                                                                                                                                ]
                                                                                                                                                                                            ]
                                                                                                                                                                                        ]
                                                                                                                                                                                    ]
                                                                                                                                                                                ]
                                                                                                                                                                            ]
                                                                                                                                                                        ]
                                                                                                                                                                    ]
                                                                                                                                                                ]
                                                                                                                                                            ]
                                                                                                                                                        ]
                                                                                                                                                    ]
                                                                                                                                                ]
                                                                                                                                            ]
                                                                                                                                        ]
                                                                                                                                    ]
                                                                                                                                ]
                                                                                                                            ]
                                                                                                                        ]
                                                                                                                    ]
                                                                                                                ]
                                                                                                            ]
                                                                                                        ]
                                                                                                    ]
                                                                                                ]
                                                                                            ]
                                                                                        ]
                                                                                    ]
                                                                                ]
                                                                            ]
                                                                        ]
                                                                    ]
                                                                ]
                                                            ]
                                                        ]
                                                    ]
                                                ]
                                            ]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ]
                }
            },
            400,
        ),
        ("GET", "/oauth/token/", {"params": {"grant_type": "refresh_token", "refresh_token": "x"}}, 400),
        ("DELETE", "/oauth/token/", {}, 405),
    ],
)
def test_hostile_requests_get_a_json_4xx(srv, method, path, kwargs, status) -> None:
    response = srv.client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert "Traceback" not in response.text


def test_garbage_on_the_socket_does_not_kill_the_server(srv) -> None:
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"\x00\x01GARBAGE / HTTP/9.9\r\n\r\n")
        sock.recv(1024)  # the server answers 400 or closes; either way it must survive
    assert srv.client.get("/_portal").status_code == 200


def test_started_twice_and_port_in_use_are_usage_errors() -> None:
    from mock_portal.errors import UsageError

    with PortalServer() as first:
        with pytest.raises(UsageError):
            first.start()
        with pytest.raises(UsageError, match="cannot listen"):
            PortalServer(port=first.port).start()


def test_rest_calls_can_be_awaited_instead_of_polled(srv) -> None:
    """?min=N blocks until N calls are recorded: a handler calling back from its queue needs no sleeps."""
    import threading

    app = _install(srv)
    session = srv.client.post("/_portal/sessions", json={}).json()
    started = threading.Event()

    def call_back_later() -> None:
        started.wait()
        with httpx.Client(base_url=srv.url, timeout=30) as other:
            other.post(
                "/one.example.com/rest/im.message.add",
                data={"DIALOG_ID": session["dialog_id"], "MESSAGE": "late", "auth": app["access_token"]},
            )

    worker = threading.Thread(target=call_back_later)
    worker.start()
    started.set()
    calls = srv.client.get(
        "/_portal/rest-calls", params={"method": "im.message.add", "min": 1, "timeout": 20}
    ).json()
    worker.join()
    assert [c["params"]["MESSAGE"] for c in calls] == ["late"]
    # nothing else comes: the wait ends at its timeout with what there is
    none = srv.client.get("/_portal/rest-calls", params={"method": "event.bind", "min": 1, "timeout": 0})
    assert none.status_code == 200
    assert none.json() == []


@pytest.mark.parametrize(
    "query", ["min=0", "min=x", "min=1&timeout=-1", "min=1&timeout=nan", "min=1&timeout=61"]
)
def test_rest_calls_wait_arguments_are_checked(srv, query) -> None:
    response = srv.client.get("/_portal/rest-calls?" + query)
    assert response.status_code == 400
    assert response.json()["error"] == "BAD_QUERY"
