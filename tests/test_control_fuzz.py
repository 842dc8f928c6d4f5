"""Fuzzing every route of a live server: no answer is a 5xx, every answer is JSON, a refusal changes nothing,
and ``GET /_portal`` is valid JSON afterwards. Then schemathesis, against the served OpenAPI document.

Every URL the fuzzers may hand the portal to POST events to points at a closed port on 127.0.0.1 (port 9:
refused at once), and every other string is kept free of ``://``: nothing leaves the machine.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_portal.control_routes import ROUTES, Route
from mock_portal.portal import Portal
from mock_portal.server import PortalServer

DOMAIN = "fuzz.example.com"
SAFE_URLS = [
    "http://127.0.0.1:9/h",
    "http://127.0.0.1:9/install",
    "ftp://127.0.0.1:9/",
    "http://localhost:9/",
]
_URL_FIELDS = {"install_url", "handler"}
_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_ID_CHARS = string.ascii_letters + string.digits + "-."
_text = st.text(max_size=30).filter(lambda s: "://" not in s)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
# texts no json.dumps makes: the literals Python's parser would take, huge numbers, lone surrogates, nesting
_RAW_BODIES = [
    b'{"advance": NaN}',
    b'{"timeout": Infinity}',
    b'{"user_id": 1' + b"0" * 60 + b"}",
    b'{"text": "\\ud800", "chat_id": 1001}',
    b'{"x": ' + b"[" * 200 + b"]" * 200 + b"}",
    b"\xff\xfe\x00",
    b"[1, 2]",
    b"{not json",
    b"",
]


# values that have broken routes before: wrong types, huge and edge numbers, empty and odd containers
_NASTY: list[Any] = [
    True,
    False,
    None,
    0,
    -1,
    1,
    2**100,
    1e308,
    -0.0,
    "",
    " ",
    "1",
    "abc",
    [],
    {},
    ["x"],
    [1],
]


def _nasty_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Two draws in three from :data:`_NASTY`, the others from ``strategy``."""
    return st.integers(0, 2).flatmap(lambda pick: strategy if pick == 0 else st.sampled_from(_NASTY))


def _value_for(name: str) -> st.SearchStrategy[Any]:
    urls = st.sampled_from(SAFE_URLS)
    if name in _URL_FIELDS:
        return _nasty_or(urls)
    if name == "handlers":
        return _nasty_or(
            st.dictionaries(st.sampled_from(["ONSESSIONSTART", "ONAPPINSTALL", "X"]), _nasty_or(urls))
        )
    if name in ("timeout", "delivery_timeout"):
        return _nasty_or(st.floats(min_value=-1, max_value=0.5))
    return _nasty_or(_json)


def _requests(route: Route) -> st.SearchStrategy[tuple[str, str, dict[str, str], bytes, str]]:
    """Requests aimed at one route: mostly its own method, its own fields with nasty values."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes, str]:
        segments = []
        for segment in route.segments:
            if segment.startswith("{"):
                ids = st.sampled_from(["1", "301", "1001", "5001", "livechat", "0", "x" * 20])
                segments.append(draw(st.one_of(ids, st.text(_ID_CHARS, min_size=1, max_size=12))))
            else:
                segments.append(segment)
        method = draw(st.sampled_from([route.method] * 5 + ["GET", "POST", "DELETE", "PUT"]))
        query: dict[str, str] = {}
        if draw(st.integers(0, 3)) == 0:  # mostly no query: a refused query hides what the body would do
            keys = st.sampled_from([*route.query, "bogus"])
            query = draw(st.dictionaries(keys, st.text(max_size=12), max_size=3))
        if "timeout" in query:  # a long poll must stay short
            query["timeout"] = draw(st.sampled_from(["0", "0.01", "nan", "-1", "1e999", "x"]))
        kind = draw(st.sampled_from(["fields"] * 4 + ["raw", "json"]))
        if kind == "raw":
            body = draw(st.sampled_from(_RAW_BODIES))
        elif kind == "json":
            body = json.dumps(draw(_json)).encode()
        else:
            names = draw(
                st.lists(st.sampled_from([*(route.body or {"portal": None})]), unique=True, max_size=4)
            )
            if draw(st.integers(0, 4)) == 0:
                names.append("bogus")
            body = json.dumps({name: draw(_value_for(name)) for name in names}).encode()
        return method, "/" + "/".join(segments), query, body, "application/json"

    return build()


@st.composite
def _rest_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes, str]:
    method = draw(st.sampled_from(["GET", "POST", "PUT"]))
    prefix = draw(
        st.sampled_from(
            [f"/{DOMAIN}/rest/", "/rest/", "/oauth/rest/", "/rest/1/abc/", "/oauth/token/", "/no.such/rest/"]
        )
    )
    name = (
        ""
        if prefix == "/oauth/token/"
        else draw(st.sampled_from(["app.info", "event.bind", "im.message.add", "batch", "x"]))
    )
    kind = draw(st.sampled_from(["form", "json", "raw"]))
    if kind == "raw":
        return method, prefix + name, {}, draw(st.sampled_from(_RAW_BODIES)), "application/json"
    params = draw(
        st.dictionaries(
            st.sampled_from(["auth", "event", "handler", "DIALOG_ID", "cmd", "x"]), _json, max_size=4
        )
    )
    if "handler" in params:
        params["handler"] = draw(st.sampled_from(SAFE_URLS))
    if kind == "json":
        return method, prefix + name, {}, json.dumps(params).encode(), "application/json"
    form = "&".join(f"{k}={str(v)[:20]}" for k, v in params.items())
    return method, prefix + name, {}, form.encode(), "application/x-www-form-urlencoded"


def _state(client: httpx.Client) -> Any:
    described = client.get("/_portal")
    assert described.status_code == 200
    value = json.loads(described.content)
    value.pop("now")
    for portal in value["portals"]:
        portal.pop("records")
        portal.pop("rest_calls")  # REST calls, refused ones too, are recorded: observations, not state
    return value


@pytest.fixture(scope="module")
def live() -> Iterator[httpx.Client]:
    with PortalServer([Portal(DOMAIN, seed=3, delivery_timeout=2.0)]) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/_portal/apps", json={}).status_code == 201  # something to act on
            assert client.post("/_portal/sessions", json={}).status_code == 201
            yield client
        for portal in server.portals.values():
            portal.close()


def _check(client: httpx.Client, request: tuple[str, str, dict[str, str], bytes, str]) -> int:
    method, path, query, body, content_type = request
    before = _state(client)
    answer = client.request(method, path, params=query, content=body, headers={"content-type": content_type})
    assert answer.status_code < 500, (request, answer.text)
    if not answer.headers["content-type"].startswith("application/json"):
        # only the inspector's files are not JSON, and only when they are served
        assert answer.status_code == 200, (request, answer.headers)
        assert path.rstrip("/").startswith("/_portal/ui"), (request, answer.headers)
        return answer.status_code
    parsed = json.loads(answer.content)
    if 400 <= answer.status_code < 500:
        assert set(parsed) == {"error", "error_description"}, answer.text
        assert _state(client) == before, (request, answer.text)
    _state(client)  # GET /_portal is still valid JSON
    return answer.status_code


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_fuzzing_a_control_route_finds_no_server_error_and_refusals_change_nothing(
    live: httpx.Client, route: Route
) -> None:
    @settings(_SETTINGS, max_examples=20)
    @given(request=_requests(route))
    def fuzz(request: tuple[str, str, dict[str, str], bytes, str]) -> None:
        _check(live, request)

    fuzz()


_SWEEP: list[Any] = [True, None, 0, -1, 2**100, 1e308, "", " ", [], {}, [1], {"a": None}]


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.body], ids=[f"{r.method} {r.path}" for r in ROUTES if r.body]
)
def test_every_body_field_takes_every_wrong_type_without_a_server_error(
    live: httpx.Client, route: Route
) -> None:
    path = route.path.replace("{client_id}", "local.nope").replace("{id}", "1")
    for name in route.body or {}:
        for value in _SWEEP if name not in _URL_FIELDS else [*_SWEEP, *SAFE_URLS]:
            answer = live.request(route.method, path, json={name: value})
            assert answer.status_code < 500, (route.path, name, value, answer.text)
            json.loads(answer.content)
    assert live.get("/_portal").status_code == 200


def test_fuzzing_the_rest_side_finds_no_server_error(live: httpx.Client) -> None:
    seen: set[int] = set()

    @settings(_SETTINGS, max_examples=60)
    @given(request=_rest_requests())
    def fuzz(request: tuple[str, str, dict[str, str], bytes, str]) -> None:
        seen.add(_check(live, request) // 100)

    fuzz()
    assert 4 in seen


# ---------------------------------------------------------------------------------------------- schemathesis


def _confine_urls(node: Any) -> None:
    """Point every URL field of the document at the closed loopback port (schemathesis generates to it)."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name in _URL_FIELDS & set(properties):
                properties[name] = {"enum": SAFE_URLS}
            if "handlers" in properties:
                properties["handlers"] = {"type": "object", "additionalProperties": {"enum": SAFE_URLS}}
        for value in node.values():
            _confine_urls(value)
    elif isinstance(node, list):
        for value in node:
            _confine_urls(value)


@pytest.mark.slow
def test_schemathesis_against_the_served_openapi_document() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    with PortalServer([Portal(DOMAIN, seed=4, delivery_timeout=2.0)]) as server:
        document = httpx.get(server.url + "/_portal/openapi.json", timeout=30).json()
        _confine_urls(document)
        # waits would only slow the run down: their arguments are fuzzed above
        for listing in ("/_portal/deliveries", "/_portal/rest-calls"):
            for parameter in document["paths"][listing]["get"]["parameters"]:
                if parameter["name"] == "timeout":
                    parameter["schema"]["maximum"] = 0.05
        schema = schemathesis.openapi.from_dict(document)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == len(ROUTES)
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]

        @settings(_SETTINGS, max_examples=150)
        @given(case=st.one_of([op.as_strategy() for op in operations]))
        def run(case: Any) -> None:
            response = case.call(base_url=server.url, timeout=30)
            case.validate_response(response, checks=checks)

        run()
        assert httpx.get(server.url + "/_portal", timeout=30).status_code == 200
        for portal in server.portals.values():
            portal.close()
