"""``mock_portal.loadgen`` and ``mock-portal load``, over real loopback sockets."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_portal.cli import run
from mock_portal.errors import UsageError
from mock_portal.events import EventStream, build_event
from mock_portal.loadgen import LoadResult, run_load
from tests.support.bench import counting_handler, free_port, reference_handler, silent_listener

BODY = build_event(seed=5).body()


class _RawHandler:
    """A one-thread HTTP/1.1 listener on 127.0.0.1 that records each request head and then either answers
    ``answer`` (bytes, keeping the connection open) or, if ``answer`` is None, closes without a word."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/path?x=1"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed
            threading.Thread(target=self._converse, args=(connection,), daemon=True).start()

    def _converse(self, connection: socket.socket) -> None:
        # OSError: the emitter may drop a connection mid-answer (the oversized case), which is its right
        with connection, contextlib.suppress(OSError):
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                buffer = buffer[length:]
                self.heads.append(head)
                if self.answer is None:
                    return
                connection.sendall(self.answer)


@contextlib.contextmanager
def raw_handler(answer: bytes | None) -> Iterator[_RawHandler]:
    handler = _RawHandler(answer)
    try:
        yield handler
    finally:
        handler.listener.close()


def test_count_mode_delivers_every_body_once() -> None:
    with counting_handler() as handler:
        result = run_load(handler.url, EventStream(seed=2).bodies(), count=300, connections=4)
    assert (result.sent, result.ok, result.failed) == (300, 300, 0)
    assert handler.bodies == 300
    assert handler.events == {"ONSESSIONSTART": 300}
    assert len(result.latencies) == 300
    assert 0 < result.percentile(50) <= result.percentile(99) <= max(result.latencies)


def test_rate_paces_requests_and_counts_match_the_handler() -> None:
    with counting_handler() as handler:
        result = run_load(handler.url, itertools.repeat(BODY), rate=200, duration=0.5, connections=4)
    # open loop: request i is due at i / rate, so at most rate x duration start inside the window
    assert 1 <= result.sent <= 100
    assert result.ok == result.sent == handler.bodies


def test_statuses_and_connection_close_are_counted() -> None:
    with counting_handler(status=503, close=True) as handler:
        result = run_load(handler.url, itertools.repeat(BODY), count=20, connections=2)
    assert (result.ok, result.failed) == (0, 20)
    assert result.statuses == {"503": 20}
    assert handler.bodies == 20


def test_refused_connections_are_failures_not_exceptions() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = run_load(url, itertools.repeat(BODY), count=5, connections=1, timeout=2)
    assert (result.ok, result.failed) == (0, 5)
    assert result.statuses == {"refused": 5}


def test_a_silent_handler_times_out() -> None:
    with silent_listener() as url:
        result = run_load(url, itertools.repeat(BODY), count=2, connections=2, timeout=0.3)
    assert result.statuses == {"timeout": 2}
    assert result.failed == 2


def test_requests_carry_only_the_delivery_headers() -> None:
    with raw_handler(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK") as handler:
        result = run_load(handler.url, itertools.repeat(BODY), count=3, connections=1, user_agent="ua/1")
    assert result.statuses == {"200": 3}
    lines = handler.heads[0].decode().split("\r\n")
    assert lines[0] == "POST /path?x=1 HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    port = handler.url.split(":")[2].split("/")[0]
    assert headers == {
        "Host": f"127.0.0.1:{port}",
        "User-Agent": "ua/1",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(BODY.encode())),
    }


def test_a_handler_that_hangs_up_counts_as_reset() -> None:
    with raw_handler(None) as handler:
        result = run_load(handler.url, itertools.repeat(BODY), count=4, connections=2, timeout=5)
    assert (result.ok, result.failed) == (0, 4)
    assert result.statuses == {"reset": 4}
    assert len(handler.heads) == 4


def test_an_oversized_response_is_capped_and_the_run_goes_on() -> None:
    # 100 MiB announced, 2 MiB sent, then silence: only a reader that stops at its cap sees it through
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 * 1024 * 1024)
    with raw_handler(head + b"x" * (2 * 1024 * 1024)) as handler:
        result = run_load(handler.url, itertools.repeat(BODY), count=3, connections=1, timeout=5)
    # each answer is cut off past the cap, its connection dropped, and the next request opens a new one
    assert (result.ok, result.failed) == (3, 0)
    assert len(handler.heads) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "https://127.0.0.1/", "count": 1}, "http:// URL"),
        ({"url": "http://127.0.0.1:1/", "rate": 0, "count": 1}, "rate must be"),
        ({"url": "http://127.0.0.1:1/", "connections": 0, "count": 1}, "connections must be"),
        ({"url": "http://127.0.0.1:1/"}, "duration or a count"),
        ({"url": "http://127.0.0.1:1/", "count": 1, "user_agent": "a\r\nX: y"}, "user_agent"),
    ],
)
def test_bad_arguments_raise_usage_errors(options: dict[str, object], message: str) -> None:
    url = str(options.pop("url"))
    with pytest.raises(UsageError, match=message):
        run_load(url, [BODY], **options)


def test_summary_percentiles() -> None:
    result = LoadResult(url="http://x/", ok=4, elapsed=2.0, latencies=[0.004, 0.001, 0.003, 0.002])
    summary = result.summary()
    assert summary["p50_ms"] == 2.0
    assert summary["p99_ms"] == 4.0
    assert summary["throughput_rps"] == 2.0


def test_cli_against_the_reference_handler(tmp_path: Path) -> None:
    png = tmp_path / "latency.png"
    out, err = io.StringIO(), io.StringIO()
    with reference_handler() as (url, context):
        code = run(
            [
                "load", "--to", url, "--rate", "150", "--duration", "1", "--connections", "4",
                "--shape", "docs-2024", "--auth", "system", "--seed", "9",
                "--application-token", context["application_token"], "--member-id", context["member_id"],
                "--client-endpoint", context["client_endpoint"], "--histogram", str(png), "--json",
            ],
            out,
            err,
        )  # fmt: skip
    assert code == 0, err.getvalue() + out.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["sent"] == summary["ok"] > 50
    assert summary["failed"] == 0
    assert summary["statuses"] == {"200": summary["ok"]}
    assert summary["p50_ms"] <= summary["p99_ms"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert context["application_token"] not in out.getvalue() + err.getvalue()


def test_cli_reports_failures_with_exit_code_1(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with counting_handler(status=401) as handler:
        code = run(["load", "--to", handler.url, "--duration", "0.3", "--no-histogram"], out, err)
    assert code == 1
    assert "401: " in out.getvalue()
    assert "throughput" in out.getvalue()
    assert handler.bodies > 0


def test_cli_usage_errors_exit_2() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(["load", "--to", "ftp://x/", "--duration", "1"], out, err) == 2
    assert "http:// URL" in err.getvalue()
    assert run(["load", "--to", "http://127.0.0.1:1/", "--rate", "-5"], out, err) == 2
    assert "must be positive" in err.getvalue()
