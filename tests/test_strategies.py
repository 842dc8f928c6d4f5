"""mock_portal.strategies: what it generates validates against the schemas (or, for mutations, does not), and
it reaches what a fuzzer needs: optional fields on and off, boundary ids, unicode, several list items."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mock_portal
from contract_tests.clauses import DECLARABLE_EVENTS
from mock_portal import strategies
from mock_portal._schema_model import _compile
from mock_portal.errors import SchemaError, UnknownNameError, UsageError
from mock_portal.schemas import is_valid, known_events, known_shapes, validate
from mock_portal.wire import decode, encode

FEW = settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
SEARCH = settings(
    max_examples=500,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)

TINY = settings(FEW, max_examples=3)

# the Open Lines, connector and app events get the full per-event matrix; every other event is checked in one
# test with a few examples each (B24_STRATEGIES_ALL=1: the full matrix for every event, slow)
ALL_EVENTS = os.environ.get("B24_STRATEGIES_ALL") == "1"
FULL_EVENTS = (
    known_events()
    if ALL_EVENTS
    else (*DECLARABLE_EVENTS[:13], "ONAPPINSTALL", "ONAPPUPDATE", "ONAPPUNINSTALL")
)
OTHER_EVENTS = tuple(e for e in known_events() if e not in FULL_EVENTS)
# events whose schema allows only an empty ``data`` (``maxItems``/``maxProperties`` 0)
_EMPTY_DATA_EVENTS = frozenset({"ONOFFLINEEVENT"})
EVENT_SHAPES = [(event, shape) for event in FULL_EVENTS for shape in known_shapes(event)]


def _ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{event.lower()}-{shape}" for event, shape in pairs]


class _Found(BaseException):
    """Stops the search at the first hit (a BaseException, so hypothesis does not treat it as a failure to
    shrink)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def _find(strategy: st.SearchStrategy[Any], condition: Any) -> Any:
    """The first generated value that meets ``condition`` (no shrinking: only reachability matters here)."""

    @SEARCH
    @given(strategy)
    def search(value: Any) -> None:
        if condition(value):
            raise _Found(value)

    try:
        search()
    except _Found as hit:
        return hit.value
    raise AssertionError(f"no value meeting the condition in {SEARCH.max_examples} examples")


@pytest.mark.parametrize(("event", "shape"), EVENT_SHAPES, ids=_ids(EVENT_SHAPES))
@pytest.mark.slow
def test_wire_payloads_validate_and_survive_the_php_codec(event: str, shape: str) -> None:
    _check_wire(event, shape, FEW)


@pytest.mark.parametrize(("event", "shape"), EVENT_SHAPES, ids=_ids(EVENT_SHAPES))
def test_json_view_payloads_validate_strictly(event: str, shape: str) -> None:
    _check_json(event, shape, FEW)


@FEW
@given(strategies.wire_bodies("ONIMCONNECTORMESSAGEADD", unknown_keys=True))
@pytest.mark.slow
def test_wire_bodies_decode_to_valid_payloads(body: str) -> None:
    assert isinstance(body, str)
    assert is_valid(decode(body), "ONIMCONNECTORMESSAGEADD")


@pytest.mark.slow
def test_unknown_keys_are_generated_and_stay_tolerant() -> None:
    payload = _find(
        strategies.payloads("ONSESSIONSTART", "docs-2026", unknown_keys=True),
        lambda p: any(k not in ("connector", "session", "chat", "user") for k in p["data"]["DATA"][0]),
    )
    assert is_valid(payload, "ONSESSIONSTART", "docs-2026")
    assert not is_valid(payload, "ONSESSIONSTART", "docs-2026", strict=True)


def test_optional_fields_are_both_on_and_off() -> None:
    gen = strategies.payloads("ONSESSIONSTART", "docs-2026")
    assert "event_handler_id" not in _find(gen, lambda p: "event_handler_id" not in p)
    assert "event_handler_id" in _find(gen, lambda p: "event_handler_id" in p)
    assert _find(gen, lambda p: "server_endpoint" not in p["auth"])["auth"]["domain"]


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_several_data_items_boundaries_and_unicode_are_reached() -> None:
    gen = strategies.payloads("ONSESSIONSTART", "docs-2024", view="wire")
    assert len(_find(gen, lambda p: len(p["data"]["DATA"]) >= 3)["data"]["DATA"]) == 3
    for boundary in ("0", "2147483648", "9223372036854775807", "9999999999999999999"):
        assert boundary in _leaves(_find(gen, lambda p, b=boundary: b in _leaves(p["data"])))
    unicode = _find(gen, lambda p: not p["data"]["DATA"][0]["connector"]["connector_id"].isascii())
    assert not unicode["data"]["DATA"][0]["connector"]["connector_id"].isascii()
    reserved = _find(gen, lambda p: any("&" in leaf for leaf in _leaves(p["data"])))
    assert decode(encode(reserved)) == reserved


def test_json_view_has_integer_and_string_ids() -> None:
    gen = strategies.payloads("ONSESSIONSTART", "source-2024", view="json")
    assert isinstance(_find(gen, lambda p: isinstance(p["data"]["DATA"]["chat"]["chat_id"], int)), dict)
    assert isinstance(_find(gen, lambda p: isinstance(p["data"]["DATA"]["chat"]["chat_id"], str)), dict)


@pytest.mark.parametrize("mode", ["user", "system"])
def test_auth_mode_is_respected_and_context_pinned(mode: str) -> None:
    context = {
        "application_token": "0123456789abcdef0123456789abcdef",
        "member_id": "member-1",
        "access_token": "access-1",
        "ts": 1700000000,
        "chat_id": 5,  # not an auth key: ignored
    }

    @FEW
    @given(strategies.payloads("ONSESSIONFINISH", auth=mode, context=context))
    def check(payload: dict[str, Any]) -> None:
        auth = payload["auth"]
        assert ("access_token" in auth) is (mode == "user")
        assert auth["application_token"] == context["application_token"]
        assert auth["member_id"] == "member-1"
        assert payload["ts"] == "1700000000"
        if mode == "user":
            assert auth["access_token"] == "access-1"
        assert is_valid(payload, "ONSESSIONFINISH")

    check()


def test_an_auth_mode_the_schema_forbids_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="ONAPPUNINSTALL has no user-mode auth"):
        strategies.payloads("ONAPPUNINSTALL", auth="user")


def _check_mutations(event: str, examples: settings) -> None:
    @examples
    @given(strategies.mutations(event))
    def check(mutation: strategies.Mutation) -> None:
        assert mutation.kind in strategies.MUTATION_KINDS
        assert not is_valid(mutation.payload, event)
        assert mutation.path.startswith("$")
        assert event in str(mutation)
        assert isinstance(mutation.body(), str)

    check()


@pytest.mark.parametrize("event", FULL_EVENTS)
def test_mutations_are_refused_by_the_schema(event: str) -> None:
    _check_mutations(event, FEW)


def _check_wire(event: str, shape: str, examples: settings) -> None:
    @examples
    @given(strategies.payloads(event, shape))
    def check(payload: dict[str, Any]) -> None:
        report = validate(payload, event, shape)
        assert report.ok, report.format()
        assert payload["event"] == event
        assert list(payload)[-1] == "auth"  # auth last, as the portal sends it
        if event in _EMPTY_DATA_EVENTS:
            # the schema allows only an empty ``data``, which no form body can carry: it is the one key lost
            assert decode(encode(payload)) == {k: v for k, v in payload.items() if k != "data"}
        else:
            assert decode(encode(payload)) == payload

    check()


def _check_json(event: str, shape: str, examples: settings) -> None:
    @examples
    @given(strategies.payloads(event, shape, view="json", strict=True, unknown_keys=True))
    def check(payload: dict[str, Any]) -> None:
        report = validate(payload, event, shape, strict=True)
        assert report.ok, report.format()

    check()


@pytest.mark.skipif(not OTHER_EVENTS, reason="B24_STRATEGIES_ALL=1 checks every event one by one")
@pytest.mark.parametrize("part", range(4))  # four parts of every 4th event, so pytest -n spreads them
@pytest.mark.slow
def test_every_other_event_validates_survives_the_codec_and_has_refused_mutations(part: int) -> None:
    failures: list[str] = []
    for event in OTHER_EVENTS[part::4]:
        checks: list[tuple[str, Any]] = []
        for shape in known_shapes(event):
            checks.append((f"wire {shape}", lambda e=event, s=shape: _check_wire(e, s, TINY)))
            checks.append((f"json {shape}", lambda e=event, s=shape: _check_json(e, s, TINY)))
        checks.append(("mutations", lambda e=event: _check_mutations(e, TINY)))
        for what, run in checks:
            try:
                run()
            except Exception as exc:
                failures.append(f"{event} {what}: {str(exc).splitlines()[0][:300]}")
    assert not failures, f"{len(failures)} failing checks:\n" + "\n".join(failures)


@pytest.mark.parametrize("kind", strategies.MUTATION_KINDS)
def test_every_mutation_kind_is_reached(kind: str) -> None:
    found = _find(strategies.mutations("ONSESSIONSTART", kinds=[kind]), lambda m: True)
    assert found.kind == kind
    assert not is_valid(found.payload, "ONSESSIONSTART")


def test_a_missing_id_and_a_non_numeric_id_are_reached() -> None:
    def in_data(path: str) -> bool:
        return path.startswith("$.data.DATA[") and path.rsplit(".", 1)[-1] in (
            "id",
            "chat_id",
            "line_id",
            "user_id",
        )

    missing = _find(
        strategies.mutations("ONSESSIONSTART", "docs-2026", kinds=["missing-required"]),
        lambda m: in_data(m.path),
    )
    assert not is_valid(missing.payload, "ONSESSIONSTART", "docs-2026")
    bad = _find(
        strategies.mutations("ONSESSIONSTART", "docs-2026", kinds=["non-numeric-id"]),
        lambda m: in_data(m.path),
    )
    leaf = bad.path.rsplit(".", 1)[-1]
    assert leaf in ("id", "chat_id", "line_id", "user_id")
    assert not is_valid(bad.payload, "ONSESSIONSTART", "docs-2026")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: strategies.payloads("ONSESIONSTART"), UnknownNameError, "did you mean 'ONSESSIONSTART'"),
        (lambda: strategies.payloads(shape="docs-2025"), UnknownNameError, "shape"),
        (lambda: strategies.payloads(view="xml"), UnknownNameError, "view"),  # type: ignore[arg-type]
        (lambda: strategies.payloads(auth="admin"), UnknownNameError, "auth mode"),
        (lambda: strategies.payloads(max_items=0), UsageError, "max_items"),
        (lambda: strategies.mutations(kinds=["flip"]), UnknownNameError, "mutation kind"),
        (lambda: strategies.mutations(kinds=[]), UsageError, "at least one"),
    ],
    ids=["event", "shape", "view", "auth", "max-items", "kind", "no-kind"],
)
def test_bad_arguments_fail_at_once(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_unsupported_schema_keywords_are_named() -> None:
    with pytest.raises(SchemaError, match="'oneOf' is not supported"):
        _compile({"oneOf": [{"type": "string"}]}, None, "x.json", 0)
    with pytest.raises(SchemaError, match="only `if` on required keys"):
        _compile({"if": {"type": "string"}, "then": True}, None, "x.json", 0)


def test_strategies_is_public_and_lazy() -> None:
    assert "strategies" in mock_portal.__all__
    assert mock_portal.strategies is strategies
