"""The event builders: strict-schema validity in every shape x auth x encoding, wire agreement, determinism,
context coherence, overrides and the fast stream."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mock_portal.errors import UnknownNameError, UsageError
from mock_portal.events import (
    AUTH_MODES,
    DELETE,
    SHAPES,
    BuiltEvent,
    EventContext,
    EventStream,
    apply_overrides,
    build_event,
    event_names,
)
from mock_portal.schemas import validate
from mock_portal.wire import decode, encode
from tests.support.events import COMBINATIONS, combination_id, decoded_body, key_paths, strict_problems

SEEDS_PER_COMBINATION = 400  # x 12 combinations = 4800 strict validations


# --------------------------------------------------------------------------------------- schema validity


@pytest.mark.parametrize("combo", COMBINATIONS, ids=combination_id)
def test_every_built_event_is_valid_against_its_strict_shape(combo: tuple[str, str, str]) -> None:
    shape, auth, encoding = combo
    for seed in range(SEEDS_PER_COMBINATION):
        event = build_event(shape=shape, auth=auth, seed=seed)
        problems = strict_problems(decoded_body(event, encoding), "ONSESSIONSTART", shape)
        assert not problems, f"seed {seed}: {problems}"


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "fr_FR"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.slow
def test_other_locales_are_valid_too(locale: str, shape: str) -> None:
    for seed in range(50):
        event = build_event(shape=shape, auth="user", seed=seed, locale=locale)
        assert not strict_problems(event.wire_payload, "ONSESSIONSTART", shape), seed


def test_a_shape_is_not_valid_as_another_shape() -> None:
    """The strict check can fail: each shape's body is rejected by the other shapes' strict schemas."""
    for shape in SHAPES:
        event = build_event(shape=shape, seed=1)
        for other in SHAPES:
            if other != shape:
                assert strict_problems(event.wire_payload, "ONSESSIONSTART", other), (shape, other)


@pytest.mark.parametrize("event_name", ["ONAPPINSTALL", "ONAPPUNINSTALL"])
def test_app_events_pass_the_envelope_schema(event_name: str) -> None:
    for seed in range(100):
        event = build_event(event_name, seed=seed)
        assert validate(event.wire_payload, event_name).ok
        assert validate(json.loads(event.body("json")), event_name).ok


# ------------------------------------------------------------------------------------- wire agreement


@pytest.mark.parametrize("event_name", ["ONSESSIONSTART", "ONAPPINSTALL", "ONAPPUNINSTALL"])
@pytest.mark.slow
def test_form_body_equals_the_codec_and_decodes_to_the_wire_view(event_name: str) -> None:
    from mock_portal.events import event_spec

    spec = event_spec(event_name)
    for shape in spec.shapes:
        for auth in spec.auth_modes:
            for seed in range(300):
                event = build_event(event_name, shape=shape, auth=auth, seed=seed)
                body = event.body("form")
                assert body == encode(event.payload), (shape, auth, seed)
                assert body == encode(event.wire_payload), (shape, auth, seed)
                assert decode(body) == event.wire_payload, (shape, auth, seed)


def test_wire_view_has_only_strings() -> None:
    event = build_event(shape="docs-2026", seed=3)
    leaves = list(_leaves(event.wire_payload))
    assert leaves
    assert all(isinstance(leaf, str) for leaf in leaves)
    assert any(isinstance(leaf, int) for leaf in _leaves(event.payload))


def test_json_body_is_typed_and_keeps_the_order() -> None:
    event = build_event(shape="docs-2026", auth="user", seed=4)
    loaded = json.loads(event.body("json"))
    assert loaded == event.payload
    assert isinstance(loaded["ts"], int)
    assert isinstance(loaded["data"]["DATA"][0]["connector"]["line_id"], int)
    assert event.content_type("json") == "application/json"
    assert event.content_type("form") == "application/x-www-form-urlencoded"


def test_text_with_reserved_characters_is_escaped_as_php_does() -> None:
    context = {"line_name": "Sales & Support ~ 100% «Ёлка»/+", "domain": "crm.example.com"}
    event = build_event(shape="docs-2024", seed=1, context=context)
    assert event.body() == encode(event.payload)
    assert "Sales+%26+Support+%7E+100%25+%C2%AB%D0%81%D0%BB%D0%BA%D0%B0%C2%BB%2F%2B" in event.body()
    assert decode(event.body())["data"]["DATA"][0]["line"]["name"] == context["line_name"]


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.slow
def test_same_seed_same_bytes_and_different_seeds_differ() -> None:
    for shape in SHAPES:
        for auth in AUTH_MODES:
            bodies = [build_event(shape=shape, auth=auth, seed=s).body() for s in range(200)]
            again = [build_event(shape=shape, auth=auth, seed=s).body() for s in range(200)]
            assert bodies == again
            assert len(set(bodies)) == len(bodies)


def test_string_seeds_work_and_a_missing_seed_is_recorded() -> None:
    assert build_event(seed="portal-7").body() == build_event(seed="portal-7").body()
    assert build_event(seed="portal-7").body() != build_event(seed="portal-8").body()
    fresh = build_event()
    assert fresh.body() == build_event(seed=fresh.seed).body()


_HASH_SCRIPT = """
import hashlib, sys
from mock_portal.events import build_event, EventStream
h = hashlib.sha256()
for shape in ("source-2024", "docs-2024", "docs-2026"):
    for auth in ("user", "system"):
        for seed in (0, 1, "x"):
            h.update(build_event(shape=shape, auth=auth, seed=seed).body().encode())
for body in EventStream(seed=5).bodies(200):
    h.update(body.encode())
h.update(build_event("ONAPPINSTALL", seed=2).body("json").encode())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_bytes_are_identical_across_processes_and_hash_seeds() -> None:
    digests = set()
    for hash_seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", _HASH_SCRIPT], capture_output=True, text=True, env=env, check=True
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1
    (digest,) = digests
    assert len(digest) == 64


def test_default_ts_comes_from_the_seed_not_the_clock() -> None:
    assert build_event(seed=11).payload["ts"] == build_event(seed=11).payload["ts"]
    assert build_event(seed=11, context={"ts": 1_700_000_123}).payload["ts"] == 1_700_000_123


# ------------------------------------------------------------------------------------- shapes and order


def test_top_level_keys_in_wire_order_with_auth_last() -> None:
    for name in event_names():
        event = build_event(name, seed=1)
        assert list(event.payload) == ["event", "event_handler_id", "data", "ts", "auth"]
        assert event.body().startswith(f"event={name}&event_handler_id=")
    without = build_event(seed=1, event_handler_id=False)
    assert list(without.payload) == ["event", "data", "ts", "auth"]
    assert "event_handler_id" not in without.body()
    assert build_event(seed=1, event_handler_id=77).payload["event_handler_id"] == 77


def test_auth_modes_have_the_documented_keys() -> None:
    user = build_event(auth="user", seed=1).payload["auth"]
    system = build_event(auth="system", seed=1).payload["auth"]
    assert list(user) == [
        "access_token", "expires", "expires_in", "scope", "domain", "server_endpoint", "status",
        "client_endpoint", "member_id", "user_id", "application_token",
    ]  # fmt: skip
    assert list(system) == ["domain", "client_endpoint", "server_endpoint", "member_id", "application_token"]
    # OnSessionStart carries no refresh_token, although its doc example shows one (facts §2)
    assert "refresh_token" not in user


def test_ids_are_coherent_inside_each_shape() -> None:
    for seed in range(100):
        src = build_event(shape="source-2024", seed=seed).payload
        data = src["data"]["DATA"]
        assert data["connector"]["chat_id"] == data["chat"]["chat_id"]
        assert data["connector"]["line_id"] == data["line"]["id"]
        d24 = build_event(shape="docs-2024", seed=seed).payload["data"]["DATA"][0]
        assert d24["connector"]["chat_id"] == d24["chat"]["id"]
        assert d24["connector"]["line_id"] == d24["line"]["id"]
        d26 = build_event(shape="docs-2026", seed=seed).payload
        item = d26["data"]["DATA"][0]
        assert item["connector"]["chat_id"] == item["chat"]["id"]
        assert item["connector"]["user_id"] == item["user"]["id"]
        assert item["session"]["closed"] == "N"
        assert 0 <= item["session"]["parent_id"] < item["session"]["id"]
        auth = d26["auth"]
        assert auth["client_endpoint"] == f"https://{auth['domain']}/rest/"
        assert auth["expires"] == d26["ts"] + auth["expires_in"]


def test_same_seed_gives_the_same_ids_in_every_shape() -> None:
    ids = {shape: build_event(shape=shape, seed=9).wire_payload["auth"]["member_id"] for shape in SHAPES}
    assert len(set(ids.values())) == 1


# ---------------------------------------------------------------------------------------------- context


def test_context_values_are_used_and_the_rest_stays_coherent() -> None:
    context = EventContext(
        domain="127.0.0.1:8080",
        client_endpoint="http://127.0.0.1:8080/rest/",
        member_id="0" * 32,
        application_token="a" * 32,
        line_id=5,
        chat_id="44",
        external_user_id=900,
        ts=1_750_000_000,
        event_handler_id=3,
        session_id=12,
        parent_id=11,
        close_term=30,
    )
    event = build_event(shape="docs-2026", auth="user", seed=1, context=context)
    payload = event.payload
    item = payload["data"]["DATA"][0]
    assert payload["event_handler_id"] == 3
    assert item["connector"]["line_id"] == 5
    assert item["connector"]["chat_id"] == item["chat"]["id"] == "44"
    assert item["connector"]["user_id"] == item["user"]["id"] == 900
    assert item["session"] == {"id": 12, "closed": "N", "parent_id": 11, "close_term": 30}
    assert payload["auth"]["client_endpoint"] == "http://127.0.0.1:8080/rest/"
    assert payload["auth"]["expires"] == 1_750_003_600
    assert event.body() == encode(payload)
    assert not strict_problems(event.wire_payload, "ONSESSIONSTART", "docs-2026")


def test_a_given_domain_sets_the_client_endpoint() -> None:
    payload = build_event(seed=2, context={"domain": "crm.example.de"}).payload
    assert payload["auth"]["domain"] == "crm.example.de"
    assert payload["auth"]["client_endpoint"] == "https://crm.example.de/rest/"


def test_context_accepts_a_mapping_and_rejects_unknown_or_bad_fields() -> None:
    assert build_event(seed=1, context={"status": "P"}).payload["auth"]["status"] == "P"
    with pytest.raises(UnknownNameError, match="did you mean 'line_id'"):
        build_event(seed=1, context={"lineid": 5})
    with pytest.raises(UsageError, match="'line_id' must be an integer"):
        EventContext(line_id="five")
    with pytest.raises(UsageError, match="context must be"):
        build_event(seed=1, context=42)  # type: ignore[arg-type]
    assert EventContext(closed=True).closed == "Y"


# -------------------------------------------------------------------------------------------- overrides


def test_overrides_set_values_by_dotted_path_and_parse_json() -> None:
    event = build_event(
        shape="docs-2026",
        seed=1,
        overrides=["data.DATA.0.connector.line_id=5", "auth.status=P", 'data.DATA.0.session.closed="Y"'],
    )
    item = event.payload["data"]["DATA"][0]
    assert item["connector"]["line_id"] == 5
    assert event.payload["auth"]["status"] == "P"
    assert item["session"]["closed"] == "Y"
    assert decode(event.body())["auth"]["status"] == "P"
    assert event.body() == encode(event.payload)


def test_overrides_delete_keys_and_add_unknown_ones() -> None:
    event = build_event(
        shape="docs-2026",
        seed=1,
        overrides=["del:auth.server_endpoint", "extra_top=1", "data.DATA.0.connector.vendor.flag=true"],
    )
    assert "server_endpoint" not in event.payload["auth"]
    assert "server_endpoint" not in decode(event.body())["auth"]
    assert list(event.payload)[-1] == "auth"  # a new top-level key goes before auth (facts §1)
    assert event.payload["extra_top"] == 1
    assert event.payload["data"]["DATA"][0]["connector"]["vendor"] == {"flag": True}
    assert decode(event.body())["data"]["DATA"][0]["connector"]["vendor"] == {"flag": "1"}
    # unknown keys break the strict schema, the tolerant one accepts them
    assert strict_problems(event.wire_payload, "ONSESSIONSTART", "docs-2026")
    assert validate(event.wire_payload, "ONSESSIONSTART", "docs-2026").ok


def test_with_overrides_returns_a_new_event() -> None:
    event = build_event(seed=1)
    changed = event.with_overrides(["auth.status=P"])
    assert changed.payload["auth"]["status"] == "P"
    assert decode(changed.body())["auth"]["status"] == "P"
    assert event.body() == build_event(seed=1).body()


def test_mapping_overrides_and_the_delete_sentinel() -> None:
    event = build_event(seed=1, overrides={"auth.application_token": DELETE, "ts": "1700000000"})
    assert "application_token" not in event.payload["auth"]
    assert event.payload["ts"] == "1700000000"


def test_null_and_empty_list_vanish_on_the_wire_but_stay_in_json() -> None:
    event = build_event(seed=1, overrides=["data.DATA.0.session.parent_id=null", "data.EMPTY=[]"])
    assert json.loads(event.body("json"))["data"]["DATA"][0]["session"]["parent_id"] is None
    wire = decode(event.body())
    assert "parent_id" not in wire["data"]["DATA"][0]["session"]
    assert "EMPTY" not in wire["data"]
    assert wire == event.wire_payload


def test_overrides_can_append_to_and_delete_from_lists() -> None:
    event = build_event(seed=1, overrides=['data.DATA.1={"chat": {"id": 2}}'])
    assert event.payload["data"]["DATA"][1] == {"chat": {"id": 2}}
    event = build_event(seed=1, overrides=["del:data.DATA.0"])
    assert "data" not in decode(event.body())  # data.DATA was its only key: empty arrays vanish (facts §1)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("auth.status.letter=X", "'auth.status' is a str"),
        ("data.DATA.first.chat=1", "'data.DATA' is a list, so 'first' must be an index"),
        ("data.DATA.5.chat=1", "index 5 at 'data.DATA.5' is out of range"),
        ("del:auth.no_such_key", "no key at 'auth.no_such_key' to delete"),
        ("del:nowhere.deeper", "no key at 'nowhere'"),
        ("auth..status=P", "empty segment"),
        ("auth.status", "has no '='"),
        ("=5", "empty segment"),
    ],
    ids=["into-scalar", "list-needs-index", "index-out-of-range", "delete-missing", "delete-missing-parent",
         "empty-segment", "no-equals", "empty-path"],
)  # fmt: skip
def test_bad_override_paths_raise_a_usage_error_naming_the_path(override: str, message: str) -> None:
    with pytest.raises(UsageError, match="override") as excinfo:
        build_event(seed=1, overrides=[override])
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_override_errors_never_show_secrets() -> None:
    event = build_event(auth="user", seed=1)
    token = event.payload["auth"]["access_token"]
    with pytest.raises(UsageError) as excinfo:
        apply_overrides(event.payload, [f"auth.access_token.x={token}"])
    assert token not in str(excinfo.value)


def test_override_input_is_limited() -> None:
    with pytest.raises(UsageError, match="too many overrides"):
        build_event(seed=1, overrides=[f"k{i}=1" for i in range(1001)])
    with pytest.raises(UsageError, match="deeper than 64"):
        build_event(seed=1, overrides=[".".join(["a"] * 65) + "=1"])
    with pytest.raises(UsageError, match="list of"):
        build_event(seed=1, overrides="auth.status=P")


# ------------------------------------------------------------------------------------------------ names


def test_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'docs-2026'"):
        build_event(shape="docs-2025", seed=1)
    with pytest.raises(UnknownNameError, match="did you mean 'ONSESSIONSTART'"):
        build_event("ONSESSIONSTRAT", seed=1)
    with pytest.raises(UnknownNameError, match="auth mode"):
        build_event(auth="robot", seed=1)
    with pytest.raises(UnknownNameError, match="auth mode for ONAPPUNINSTALL"):
        build_event("ONAPPUNINSTALL", auth="user", seed=1)
    with pytest.raises(UnknownNameError, match="encoding"):
        build_event(seed=1).body("xml")  # type: ignore[arg-type]


def test_event_names_are_case_insensitive() -> None:
    assert build_event("OnSessionStart", seed=1).body() == build_event("ONSESSIONSTART", seed=1).body()
    assert set(event_names()) >= {"ONSESSIONSTART", "ONAPPINSTALL", "ONAPPUNINSTALL"}


# -------------------------------------------------------------------------------------------- app events


def _capture(shared: Path | None, name: str) -> dict[str, Any] | None:
    candidates = [Path(__file__).resolve().parent.parent / "fixtures" / "captures" / f"{name}.json"]
    if shared is not None:
        candidates.append(shared / "captures" / f"{name}.json")
    for path in candidates:
        if path.is_file():
            loaded = json.loads(path.read_text(encoding="utf-8"))["payload"]
            assert isinstance(loaded, dict)
            return loaded
    return None


@pytest.mark.parametrize(
    ("event_name", "capture"),
    [
        ("ONAPPINSTALL", "ONAPPINSTALL-mesilov-issue296"),
        ("ONAPPUNINSTALL", "ONAPPUNINSTALL-mesilov-issue296"),
    ],
)
def test_app_events_have_the_key_layout_of_the_live_capture(event_name: str, capture: str) -> None:
    from tests.conftest import shared_dir

    recorded = _capture(shared_dir(), capture)
    if recorded is None:
        pytest.skip("the captures are neither vendored in fixtures/ nor in shared/")
    built = build_event(event_name, seed=1, event_handler_id=False)
    assert list(key_paths(built.wire_payload)) == list(key_paths(recorded))


def test_app_install_carries_tokens_and_uninstall_does_not() -> None:
    install = build_event("ONAPPINSTALL", seed=1, context={"installed": False, "language_id": "de"})
    assert install.payload["data"] == {"VERSION": install.payload["data"]["VERSION"], "ACTIVE": "Y",
                                       "INSTALLED": "N", "LANGUAGE_ID": "de"}  # fmt: skip
    assert len(install.payload["auth"]["refresh_token"]) == 70
    uninstall = build_event("ONAPPUNINSTALL", seed=1)
    assert uninstall.auth == "system"
    assert not {"access_token", "refresh_token"} & set(uninstall.payload["auth"])
    assert uninstall.payload["data"]["CLEAN"] in (0, 1)
    # one installation, one application_token: the portal passes it to both
    token = {"application_token": "f" * 32, "member_id": "e" * 32}
    assert (
        build_event("ONAPPINSTALL", seed=1, context=token).payload["auth"]["application_token"]
        == build_event("ONAPPUNINSTALL", seed=2, context=token).payload["auth"]["application_token"]
    )


# -------------------------------------------------------------------------------------------- the stream


@pytest.mark.parametrize("combo", [(s, a) for s in SHAPES for a in AUTH_MODES], ids=lambda c: "-".join(c))
def test_stream_bodies_equal_the_codec_and_validate(combo: tuple[str, str]) -> None:
    shape, auth = combo
    stream = EventStream(shape=shape, auth=auth, seed=3, portals=4)
    bodies = list(stream.bodies(500))
    events = list(stream.events(500))
    assert bodies == [event.body() for event in events]
    for body, event in zip(bodies, events, strict=True):
        assert body == encode(event.payload)
        assert decode(body) == event.wire_payload
    for event in events[:200]:
        assert not strict_problems(event.wire_payload, "ONSESSIONSTART", shape)


def test_stream_is_reproducible_coherent_and_moves_forward() -> None:
    stream = EventStream(seed="load", portals=3)
    first = list(stream.bodies(300))
    assert first == list(EventStream(seed="load", portals=3).bodies(300))
    assert first != list(EventStream(seed="other", portals=3).bodies(300))
    payloads = [event.payload for event in stream.events(300)]
    tokens: dict[str, set[str]] = {}
    for payload in payloads:
        tokens.setdefault(payload["auth"]["member_id"], set()).add(payload["auth"]["application_token"])
    assert len(tokens) == 3
    assert all(len(found) == 1 for found in tokens.values())
    stamps = [payload["ts"] for payload in payloads]
    assert stamps == sorted(stamps)


def test_stream_honours_the_context_and_handler_id() -> None:
    stream = EventStream(
        shape="source-2024",
        seed=1,
        context={"domain": "b24.example.kz", "line_name": "Линия & Co", "expires_in": 1800},
        event_handler_id=False,
    )
    for event in stream.events(50):
        assert event.payload["auth"]["client_endpoint"] == "https://b24.example.kz/rest/"
        assert event.payload["data"]["DATA"]["line"]["name"] == "Линия & Co"
        assert event.payload["auth"]["expires"] == event.payload["ts"] + 1800
        assert "event_handler_id" not in event.payload
        assert event.body() == encode(event.payload)


def test_stream_arguments_are_checked() -> None:
    with pytest.raises(UsageError, match="portals"):
        EventStream(portals=0)
    with pytest.raises(UnknownNameError):
        EventStream(shape="docs")
    assert isinstance(next(iter(EventStream(seed=1))), str)


def test_built_event_is_a_plain_value() -> None:
    event = build_event(seed=1)
    assert isinstance(event, BuiltEvent)
    assert event == build_event(seed=1)
    assert (
        hashlib.sha256(event.body().encode()).hexdigest()
        == hashlib.sha256(build_event(seed=1).body().encode()).hexdigest()
    )


def _leaves(value: Any) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


_PHP_BUILD = (
    "$all = json_decode(stream_get_contents(STDIN), true);"
    'foreach ($all as $payload) { echo http_build_query($payload), "\\n"; }'
)


@pytest.mark.php
def test_form_bodies_match_real_php_http_build_query(php_binary: str) -> None:
    """The reference itself (facts §7): PHP encodes the typed payloads to exactly our bytes."""
    events = [
        build_event(shape=shape, auth=auth, seed=seed, locale=locale)
        for shape in SHAPES
        for auth in AUTH_MODES
        for seed in range(20)
        for locale in ("ru_RU", "de_DE")
    ]
    events += [build_event(name, seed=s) for name in ("ONAPPINSTALL", "ONAPPUNINSTALL") for s in range(10)]
    events.append(build_event(seed=1, context={"line_name": "a b~c*d'e\"f&g=h+i/j%k «ё» 😀"}))
    result = subprocess.run(
        [php_binary, "-r", _PHP_BUILD],
        input=json.dumps([event.payload for event in events]),
        capture_output=True,
        text=True,
        check=True,
        encoding="utf-8",
    )
    assert result.stdout.split("\n")[:-1] == [event.body() for event in events]
