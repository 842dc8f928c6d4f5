"""mock-portal record: a relay that forwards deliveries unchanged, passes the answers back and records each
delivery as a JSON line with every secret replaced by a stable placeholder, failed forwards included."""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests

from mock_portal import cli
from mock_portal.record import Relay
from mock_portal.scrub import Scrubber, is_secret_key
from mock_portal.server import PortalServer
from mock_portal.wire import decode
from tests.support.contract import serve_wsgi
from tests.support.faulty_servers import FaultServer, refusing_port

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOKEN = "0123456789abcdef0123456789abcdef"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        binascii.hexlify(raw).decode(),
        binascii.hexlify(raw).decode().upper(),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
    ]


def _assert_absent(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        for form in _encodings(secret):
            assert form not in text, f"a secret ({len(secret)} chars) is in the recording as {form[:6]}..."


@pytest.fixture
def reference_handler() -> Iterator[str]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


def _echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Echoes the body back raw, hex and base64: the worst a handler can do with a token."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    answer = json.dumps(
        {"raw": body.decode("latin-1"), "hex": body.hex(), "b64": base64.b64encode(body).decode()}
    ).encode()
    start_response("500 Internal Server Error", [("Content-Type", "application/json")])
    return [answer]


# ------------------------------------------------------------------------------------------------ relaying


def test_a_lifecycle_through_the_relay_is_recorded_without_secrets(
    reference_handler: str, tmp_path: Path
) -> None:
    out = tmp_path / "recording.jsonl"
    with PortalServer() as server, Relay(reference_handler, out) as relay:
        portal = server.portal
        app, token, installs = portal.install_app(
            relay.url + "/install", handlers={"ONSESSIONSTART": relay.url + "/events"}
        )
        started = portal.start_session(shape="docs-2026")
        calls = portal.wait_for_calls("im.message.add", count=1, timeout=30)
        assert calls, "the handler's REST call went through the portal as without a relay"
        attempts = [*installs, *started.attempts]
        assert [a.outcome for a in attempts] == ["ok", "ok"]
        issued = [t for t in portal.tokens.values() if t.client_id == app.client_id]
    records = _lines(out)
    assert [(r["n"], r["event"], r["path"], r["outcome"]) for r in records] == [
        (1, "ONAPPINSTALL", "/install", "ok"),
        (2, "ONSESSIONSTART", "/events", "ok"),
    ]
    for record, attempt in zip(records, attempts, strict=True):
        assert record["answer"]["status"] == attempt.status
    # the recorded body is the delivered one with each secret swapped for its placeholder
    install = decode(records[0]["request"]["body"])
    assert install["auth"]["application_token"] == "redacted-application_token-1"
    assert install["auth"]["access_token"] == "redacted-access_token-1"
    assert install["auth"]["refresh_token"] == "redacted-refresh_token-1"
    assert install["auth"]["member_id"] == portal.member_id
    session = decode(records[1]["request"]["body"])
    assert session["auth"]["application_token"] == "redacted-application_token-1"  # stable across lines
    assert session["data"]["DATA"][0]["chat"]["id"] == str(started.chat.id)
    secrets = [
        app.application_token,
        app.client_secret,
        token.access_token,
        *(t.access_token for t in issued),
    ]
    secrets += [t.refresh_token for t in issued if t.refresh_token]
    _assert_absent(out.read_text(encoding="utf-8"), secrets)


def test_requests_are_forwarded_unchanged_under_the_forward_path(tmp_path: Path) -> None:
    body = (
        "event=ONSESSIONSTART&data%5BDATA%5D%5B0%5D%5Bchat%5D%5Bid%5D=7&auth%5Bapplication_token%5D=" + TOKEN
    )
    with FaultServer("ok", status=201, body=b'{"done":true}') as upstream:
        with Relay(f"http://127.0.0.1:{upstream.port}/hooks", tmp_path / "r.jsonl") as relay:
            answer = requests.post(
                relay.url + "/events/b24?x=1", data=body, headers={**FORM, "X-Custom": "kept"}, timeout=10
            )
            root = requests.post(relay.url + "/", data="a=1", headers=FORM, timeout=10)
        seen = upstream.requests
    assert (answer.status_code, answer.content) == (201, b'{"done":true}')
    assert root.status_code == 201
    assert seen[0].method == "POST"
    assert seen[0].path == "/hooks/events/b24?x=1"
    assert seen[0].body == body.encode()
    assert seen[0].header("X-Custom") == "kept"
    assert seen[0].header("Content-Type") == FORM["Content-Type"]
    assert seen[1].path == "/hooks"
    records = _lines(tmp_path / "r.jsonl")
    assert records[0]["query"] == "x=1"
    assert records[0]["request"]["headers"]["x-custom"] == "kept"
    assert records[0]["answer"]["body"] == '{"done":true}'
    assert TOKEN not in (tmp_path / "r.jsonl").read_text()


def test_an_echoing_handler_is_passed_through_but_recorded_masked(tmp_path: Path) -> None:
    body = f"event=ONIMBOTMESSAGEADD&data%5BBOT%5D%5B1%5D%5Bbot_token%5D=short&auth%5Baccess_token%5D={TOKEN}"
    with serve_wsgi(_echo_app) as url, Relay(url, tmp_path / "r.jsonl") as relay:
        answer = requests.post(relay.url + "/", data=body, headers=FORM, timeout=10)
    assert answer.status_code == 500
    assert TOKEN in answer.json()["raw"]  # the relay changes nothing on the way back
    text = (tmp_path / "r.jsonl").read_text(encoding="utf-8")
    _assert_absent(text, [TOKEN])
    assert "short" not in text  # a short secret is replaced where its key names it
    record = _lines(tmp_path / "r.jsonl")[0]
    assert record["outcome"] == "http_error"
    assert record["answer"]["body"].count("redacted-access_token-1") == 3  # raw, hex and base64 echoes
    assert "redacted-base64-of-redacted-access_token-1" in record["answer"]["body"]


@pytest.mark.parametrize(
    ("mode", "outcome", "status"),
    [("hang", "timeout", 504), ("close", "reset", 502)],
)
def test_failed_forwards_are_answered_and_recorded(
    mode: str, outcome: str, status: int, tmp_path: Path
) -> None:
    with FaultServer(mode) as upstream, Relay(upstream.url, tmp_path / "r.jsonl", timeout=0.5) as relay:
        answer = requests.post(
            relay.url + "/e", data=f"event=ONX&auth%5Bapplication_token%5D={TOKEN}", timeout=10
        )
    assert answer.status_code == status
    assert answer.json()["error"] in ("GATEWAY_TIMEOUT", "BAD_GATEWAY")
    record = _lines(tmp_path / "r.jsonl")[0]
    assert (record["outcome"], record["event"], record["answer"]) == (outcome, "ONX", None)
    assert "redacted-application_token-1" in record["request"]["body"]


def test_an_answer_over_the_limit_is_refused_and_recorded(tmp_path: Path) -> None:
    with (
        FaultServer("huge") as upstream,
        Relay(upstream.url, tmp_path / "r.jsonl", max_answer_bytes=1 << 16) as relay,
    ):
        answer = requests.post(relay.url + "/", data="event=ONH", headers=FORM, timeout=30)
    assert answer.status_code == 502
    record = _lines(tmp_path / "r.jsonl")[0]
    assert (record["outcome"], record["answer"]) == ("answer_too_large", None)


def test_a_refused_forward_is_recorded(tmp_path: Path) -> None:
    with refusing_port() as port, Relay(f"http://127.0.0.1:{port}", tmp_path / "r.jsonl") as relay:
        answer = requests.post(relay.url + "/", data="event=ONY", timeout=10)
    assert answer.status_code == 502
    assert _lines(tmp_path / "r.jsonl")[0]["outcome"] == "refused"


def test_a_body_over_the_limit_is_refused_and_recorded_not_forwarded(tmp_path: Path) -> None:
    with (
        FaultServer("ok") as upstream,
        Relay(upstream.url, tmp_path / "r.jsonl", max_body_bytes=1024) as relay,
    ):
        answer = requests.post(relay.url + "/", data="event=ONZ&x=" + "a" * 4096, headers=FORM, timeout=10)
        seen = upstream.requests
    assert answer.status_code == 413
    assert seen == []
    record = _lines(tmp_path / "r.jsonl")[0]
    assert (record["outcome"], record["request"]["bytes"]) == ("too_large", 4108)
    assert "body" not in record["request"]


def test_a_binary_body_is_kept_as_base64(tmp_path: Path) -> None:
    payload = b"\xff\xfe\x00binary"
    with FaultServer("ok") as upstream, Relay(upstream.url, tmp_path / "r.jsonl") as relay:
        requests.post(
            relay.url + "/", data=payload, headers={"Content-Type": "application/octet-stream"}, timeout=10
        )
    record = _lines(tmp_path / "r.jsonl")[0]
    assert base64.b64decode(record["request"]["body_base64"]) == payload


# ------------------------------------------------------------------------------------------------ scrubbing


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("access_token", True),
        ("AUTH_TOKEN", True),
        ("client_secret", True),
        ("password", True),
        ("auth", True),
        ("member_id", False),
        ("domain", False),
        ("author", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_placeholders_are_stable_and_numbered_per_kind() -> None:
    scrubber = Scrubber()
    first = scrubber.scrub(f"auth%5Baccess_token%5D=aaaaaaaaa1&auth%5Bapplication_token%5D={TOKEN}".encode())
    second = scrubber.scrub(b"auth%5Baccess_token%5D=bbbbbbbbb2&x=" + TOKEN.encode())
    assert first == (
        b"auth%5Baccess_token%5D=redacted-access_token-1"
        b"&auth%5Bapplication_token%5D=redacted-application_token-1"
    )
    assert second == b"auth%5Baccess_token%5D=redacted-access_token-2&x=redacted-application_token-1"
    text = scrubber.scrub(b'<p>auth[access_token]=ccccccccc3&n=1</p> {"refresh_token": "r"}', "text/html")
    assert text == (
        b'<p>auth[access_token]=redacted-access_token-3&n=1</p> {"refresh_token": "redacted-refresh_token-1"}'
    )


# ------------------------------------------------------------------------------------------------ CLI


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.run(list(argv), out, err), out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--forward-to", "ftp://x", "--out", "{tmp}/r.jsonl"], "must be an http(s) URL with a host"),
        (
            ["--forward-to", "http://127.0.0.1:9", "--out", "/nonexistent-dir/r.jsonl"],
            "cannot write the recording",
        ),
        (["--forward-to", "http://127.0.0.1:9", "--out", "{tmp}/r.jsonl", "--timeout", "0"], "timeout"),
    ],
    ids=["bad-url", "unwritable", "bad-timeout"],
)
def test_record_usage_errors_are_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = _run("record", "--listen", "0", *args)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_record_refuses_a_port_in_use(tmp_path: Path) -> None:
    with FaultServer("ok") as busy:
        code, _, err = _run(
            "record", "--listen", str(busy.port), "--forward-to", busy.url, "--out", str(tmp_path / "r")
        )
    assert code == 2
    assert "cannot listen on 127.0.0.1:" in err


def test_record_command_relays_until_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    with FaultServer("ok") as upstream:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mock_portal",
                "record",
                "--listen",
                "0",
                "--forward-to",
                upstream.url,
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert banner.startswith("listening http://127.0.0.1:"), banner
            url = banner.split()[1]
            assert requests.post(url + "/x", data=f"event=ONQ&auth%5Baccess_token%5D={TOKEN}", timeout=10).ok
        finally:
            process.send_signal(signal.SIGTERM)
            rest, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert rest == f"recorded 1 deliveries to {out}\n"
    assert errors == ""
    assert _lines(out)[0]["event"] == "ONQ"
    assert TOKEN not in out.read_text()


def test_the_relay_answers_its_own_readiness_path_without_recording_it(tmp_path: Path) -> None:
    import json as _json
    import urllib.request

    from mock_portal.record import READY_PATH, Relay

    out = tmp_path / "recording.jsonl"
    with Relay("http://127.0.0.1:9/", out) as relay, urllib.request.urlopen(relay.url + READY_PATH) as answer:
        assert answer.status == 200
        assert _json.loads(answer.read()) == {"ready": True}
    assert not out.exists() or out.read_text() == ""
