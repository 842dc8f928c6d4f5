"""mock-portal replay: recorded and captured events re-sent to a handler, re-stamped for a mock portal that
installed the handler first; the pytest fixture and the contract adapter over recorded events."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mock_portal import cli
from mock_portal.errors import UsageError
from mock_portal.record import Relay
from mock_portal.replay import RecordedEvent, Replayer, load_events, needs_token, restamp
from mock_portal.server import PortalServer
from mock_portal.wire import decode, encode
from tests.conftest import REPO_ROOT
from tests.support.contract import serve_wsgi

CAPTURES = REPO_ROOT / "fixtures" / "captures"
WIRE_CAPTURES = sorted(CAPTURES.glob("*.wire.txt"))
CONTEXT = {
    "domain": "replay.bitrix24.com",
    "member_id": "m" * 32,
    "application_token": "a" * 32,
    "client_endpoint": "http://127.0.0.1:9/rest/",
    "server_endpoint": "http://127.0.0.1:9/oauth/",
    "status": "L",
    "access_token": "t" * 40,
    "expires": 1700003600,
    "expires_in": 3600,
    "user_id": 7,
    "ts": 1700000000,
}


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.run(list(argv), out, err), out.getvalue(), err.getvalue()


@pytest.fixture
def reference_handler() -> Iterator[str]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


# ------------------------------------------------------------------------------------------------ re-stamping


@pytest.mark.parametrize("path", WIRE_CAPTURES, ids=[p.name[: -len(".wire.txt")] for p in WIRE_CAPTURES])
def test_a_capture_is_sent_as_captured_apart_from_the_stamped_fields(path: Path) -> None:
    original = path.read_bytes().rstrip(b"\r\n")
    payload = load_events(path)[0][0].payload
    assert encode(restamp(payload, {})).encode() == original  # nothing to stamp: the same bytes
    stamped = restamp(payload, CONTEXT, client_id="local.replay.1", refresh_token="r" * 40)
    assert stamped["ts"] == "1700000000"
    auth = stamped["auth"]
    assert auth["member_id"] == CONTEXT["member_id"]
    assert auth["application_token"] == CONTEXT["application_token"]
    assert auth["domain"] == CONTEXT["domain"]
    if "access_token" in auth:
        assert (auth["access_token"], auth["expires_in"]) == (CONTEXT["access_token"], "3600")
    # data is untouched, except auth blocks nested in it (a bot's own tokens)
    nested = {k: v for k, v in stamped.items() if k not in ("ts", "auth")}
    before = {k: v for k, v in payload.items() if k not in ("ts", "auth")}
    text = json.dumps(nested)
    if '"member_id"' not in json.dumps(before):
        assert nested == before
    for secret in ("access_token", "application_token"):
        for block_value in _values_of(payload, secret):
            if len(block_value) >= 16:  # some captures hold a placeholder word, not a token
                assert block_value not in text


def _values_of(value: Any, key: str) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == key and isinstance(v, str)]
        return found + [x for v in value.values() for x in _values_of(v, key)]
    if isinstance(value, list):
        return [x for v in value for x in _values_of(v, key)]
    return []


def test_nested_bot_auth_blocks_are_stamped_too() -> None:
    payload = decode((CAPTURES / "ONIMBOTMESSAGEADD-cassoft-token.wire.txt").read_bytes())
    assert needs_token(payload) == (True, True)
    stamped = restamp(payload, CONTEXT, client_id="local.replay.1", refresh_token="r" * 40)
    bot = next(iter(stamped["data"]["BOT"].values()))
    assert bot["client_id"] == "local.replay.1"
    assert bot["refresh_token"] == "r" * 40
    assert bot["AUTH"]["access_token"] == CONTEXT["access_token"]
    assert bot["AUTH"]["member_id"] == CONTEXT["member_id"]
    assert stamped["data"]["PARAMS"] == payload["data"]["PARAMS"]


# ------------------------------------------------------------------------------------------------ loading


def test_the_captures_folder_loads_every_capture_once_uninstall_last() -> None:
    events, skipped = load_events(CAPTURES)
    assert len(events) == len(WIRE_CAPTURES) == 36
    assert all(e.source.endswith(".wire.txt") for e in events)
    assert events[-1].event == "ONAPPUNINSTALL"
    assert skipped == []


def test_a_recording_skips_what_is_not_an_event(tmp_path: Path) -> None:
    lines = [
        {
            "n": 1,
            "request": {
                "headers": {"content-type": "application/x-www-form-urlencoded"},
                "body": "event=ONA&ts=1",
            },
        },
        {"n": 2, "outcome": "too_large", "request": {"headers": {}, "bytes": 9999999}},
        {"n": 3, "method": "GET", "path": "/favicon.ico", "request": {"headers": {}, "body": ""}},
        {"n": 4, "request": {"headers": {"content-type": "application/json"}, "body": "{}"}},
        {"n": 5, "request": {"headers": {}, "body": "event=ONB"}, "answer": {"status": 503}},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    events, skipped = load_events(path)
    assert [(e.event, e.source, e.recorded_status) for e in events] == [
        ("ONA", f"{path}:1", None),
        ("ONB", f"{path}:5", 503),
    ]
    assert [s.split(": ", 1)[0] for s in skipped] == [f"{path}:2", f"{path}:3", f"{path}:4"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file or folder"), ("{not json\n", "r.jsonl:1: not a JSON line")],
    ids=["missing", "bad-line"],
)
def test_unreadable_inputs_are_usage_errors(content: str | None, message: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        load_events(path)


# ------------------------------------------------------------------------------------------------ replaying


def test_a_recorded_lifecycle_replays_against_a_new_portal(reference_handler: str, tmp_path: Path) -> None:
    recording = tmp_path / "recording.jsonl"
    with PortalServer() as server, Relay(reference_handler, recording) as relay:
        server.portal.install_app(relay.url + "/install", handlers={"ONSESSIONSTART": relay.url + "/events"})
        server.portal.start_session(shape="source-2024")
        assert server.portal.wait_for_calls("im.message.add", count=1, timeout=30)
        first_portal = server.portal.member_id
    events, _ = load_events(recording)
    assert [e.event for e in events] == ["ONAPPINSTALL", "ONSESSIONSTART"]
    with Replayer(reference_handler) as replayer:
        assert [a.outcome for a in replayer.install_attempts] == ["ok"]
        results = replayer.replay(events)
        calls = replayer.portal.wait_for_calls("im.message.add", count=1, timeout=30)  # type: ignore[union-attr]
        portal, app = replayer.portal, replayer.app
        assert portal is not None
        assert app is not None
    assert [r.attempt.outcome for r in results] == ["ok", "ok"]
    assert len(calls) == 1, "the handler called the replay portal back with the token it was given"
    sent = decode(results[1].attempt.body)
    assert sent["auth"]["member_id"] == portal.member_id != first_portal
    assert sent["auth"]["application_token"] == app.application_token
    assert "redacted" not in results[1].body


def test_replay_command_sends_every_capture(reference_handler: str) -> None:
    code, out, err = _run("replay", str(CAPTURES), "--to", reference_handler)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "installed: ONAPPINSTALL ok 200"
    assert len([line for line in lines if line.split(" ", 1)[0].isdigit()]) == 36
    assert lines[-1].startswith("summary: 36 replayed to ")
    assert "ok=36" in lines[-1]
    assert "imconnector.send.status.delivery x9" in lines[-1]


def test_replay_exits_1_when_the_handler_refuses(tmp_path: Path) -> None:
    token = "0123456789abcdef0123456789abcdef"
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig(application_token="f" * 32)).start()
    try:
        with serve_wsgi(app) as url:
            code, out, _ = _run(
                "replay", str(CAPTURES / "ONCRMDEALADD-cassoft-token.wire.txt"), "--to", url,
                "--application-token", token,
            )  # fmt: skip
    finally:
        app.close()
    assert code == 1
    assert "1 ONCRMDEALADD" in out
    assert "http_error 403" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "{tmp}", "--to", "http://127.0.0.1:9/"], "no event to replay"),
        (["replay", "{tmp}/missing.jsonl", "--to", "http://127.0.0.1:9/"], "no such file or folder"),
        (["replay", str(CAPTURES), "--to", "ftp://x"], "the handler URL"),
        (["replay", str(CAPTURES), "--to", "http://127.0.0.1:9/", "--install-url", "http://a.b/",
          "--application-token", "t"], "not allowed with argument"),
    ],
    ids=["empty", "missing", "bad-url", "install-and-token"],
)  # fmt: skip
def test_replay_usage_errors_are_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    code, _, err = _run(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_a_handler_that_refuses_installation_is_a_usage_error(tmp_path: Path) -> None:
    from tests.support.faulty_servers import FaultServer

    with FaultServer("ok", status=500) as handler:
        code, _, err = _run(
            "replay", str(CAPTURES / "ONCRMDEALADD-cassoft-token.wire.txt"), "--to", handler.url
        )
    assert code == 2
    assert err.startswith("mock-portal: error: the handler did not accept ONAPPINSTALL")


# ------------------------------------------------------------------------------------------------ contract


@pytest.mark.slow
def test_as_contract_runs_the_generic_clauses_for_the_recorded_events(reference_handler: str) -> None:
    code, out, err = _run(
        "replay",
        str(CAPTURES / "ONIMCONNECTORMESSAGEADD-cassoft-token-text.wire.txt"),
        str(CAPTURES / "ONCRMDEALADD-cassoft-token.wire.txt"),
        "--to",
        reference_handler,
        "--as-contract",
    )
    assert err == ""
    # every event of the event table is declarable, the CRM events included
    assert "not covered" not in out
    assert "generic clauses for: ONIMCONNECTORMESSAGEADD, ONCRMDEALADD" in out
    assert "forged-token-no-side-effect[ONIMCONNECTORMESSAGEADD]" in out
    assert "forged-token-no-side-effect[ONCRMDEALADD]" in out
    assert code == 0, out


def test_as_contract_without_a_known_event_is_a_usage_error() -> None:
    # the install flow's own events have their own token rules: the generic clauses do not apply to them
    code, _, err = _run(
        "replay",
        str(CAPTURES / "ONAPPUNINSTALL-mesilov-issue296.wire.txt"),
        "--to",
        "http://127.0.0.1:9/",
        "--as-contract",
    )
    assert code == 2
    assert "none of the recorded events (ONAPPUNINSTALL)" in err


# ------------------------------------------------------------------------------------------------ pytest


def test_the_fixture_yields_recorded_events_stamped_for_the_portal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B24_RECORDING", str(CAPTURES))
    pytester.makepyfile(
        """
        import pytest
        from examples.python_handler import HandlerApp, HandlerConfig

        @pytest.fixture(scope="module")
        def reference_app():
            app = HandlerApp(HandlerConfig()).start()
            yield app
            app.close()

        @pytest.fixture
        def b24_handler(reference_app):
            return reference_app

        def test_every_recorded_event_is_accepted(b24_recorded_events, b24_deliver, b24_portal):
            assert len(b24_recorded_events) == 36
            for event in b24_recorded_events:
                assert event.payload["auth"]["member_id"] == b24_portal.member_id
                assert b24_deliver(event).ok, event.source
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_fixture_skips_without_a_recording(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("B24_RECORDING", raising=False)
    pytester.makepyfile("def test_needs_one(b24_recorded_events):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no recording: override the b24_recording fixture or set B24_RECORDING*"])


def test_recorded_event_is_a_plain_record() -> None:
    event = RecordedEvent("x.wire.txt", "ONX", {"event": "ONX"})
    assert (event.source, event.recorded_status) == ("x.wire.txt", None)
