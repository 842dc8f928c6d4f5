"""``mock_portal.loadgen`` and ``mock-portal load``, over real loopback sockets; its HTTP/1.1 reader alone.

No test here measures time: pacing and latency are checked by what must hold whatever the machine's load
(how many requests a rate makes due, that one connection's latencies can only grow in an open model).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_portal._http1 import BadResponse, RequestHeads, ResponseReader
from mock_portal.cli import run
from mock_portal.errors import UsageError
from mock_portal.events import EventStream, build_event
from mock_portal.loadgen import LoadResult, RequestRecord, run_load
from tests.support.bench import counting_handler, free_port, reference_handler, silent_listener
from tests.support.faulty_servers import FaultServer

BODY = build_event(seed=5).body()
LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed (the fast extra)"
))]  # fmt: skip


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


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.slow
def test_count_mode_delivers_every_body_once(loop: str) -> None:
    with counting_handler() as handler:
        result = run_load(
            handler.url, EventStream(seed=2).bodies(), count=300, connections=4, event_loop=loop
        )
    assert result.event_loop == loop
    assert (result.sent, result.ok, result.failed) == (300, 300, 0)
    assert handler.bodies == 300
    assert handler.events == {"ONSESSIONSTART": 300}
    assert len(result.latencies) == 300
    assert 0 < result.percentile(50) <= result.percentile(99) <= max(result.latencies)


def test_a_rate_makes_exactly_rate_x_duration_requests_due() -> None:
    with counting_handler() as handler:
        result = run_load(handler.url, itertools.repeat(BODY), rate=200, duration=0.5, connections=4)
    # request i is due at i / rate: those due before the end are sent, however late (none waited a whole
    # timeout for a connection here); none other is
    assert result.sent + result.unsent == 100
    assert result.ok == result.sent == handler.bodies


def test_a_rate_with_a_count_sends_the_count() -> None:
    records: list[RequestRecord] = []
    with counting_handler() as handler:
        result = run_load(
            handler.url, itertools.repeat(BODY), rate=500, count=40, connections=2, on_record=records.append
        )
    assert (result.sent, result.ok, result.unsent) == (40, 40, 0)
    assert sorted(r.index for r in records) == list(range(40))


@pytest.mark.parametrize("loop", LOOPS)
def test_latency_runs_from_the_intended_start(loop: str) -> None:
    # all 30 requests are due at once (a rate far beyond one connection), and one connection sends them one
    # after the other: each ends after the one before, so timed from when it was due, each latency is at
    # least the one before. Timed from when it was sent, they would not grow.
    records: list[RequestRecord] = []
    with FaultServer("ok") as server:
        result = run_load(
            server.url, itertools.repeat(BODY), rate=1e7, count=30, connections=1,
            on_record=records.append, event_loop=loop,
        )  # fmt: skip
    assert result.ok == 30
    assert [r.index for r in records] == list(range(30))
    latencies = [r.latency for r in records]
    assert all(later >= earlier - 1e-6 for earlier, later in itertools.pairwise(latencies))
    assert latencies == sorted(result.latencies)


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


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("connections", [1, 4])
def test_a_handler_that_closes_after_each_answer_is_not_blamed(loop: str, connections: int) -> None:
    # HTTP/1.1 allows closing a kept-alive connection after any answer, without `Connection: close`
    records: list[RequestRecord] = []
    with FaultServer("once") as server:
        result = run_load(
            server.url, itertools.repeat(BODY), count=100, connections=connections,
            on_record=records.append, event_loop=loop,
        )  # fmt: skip
        received = len(server.requests)
    assert result.statuses == {"200": 100}
    assert (result.ok, result.failed) == (100, 0)
    assert received == 100  # every event reached the handler once
    # the requests written onto a connection the server had closed were sent again, and say so
    assert result.retried == sum(r.retried for r in records) > 0


def test_a_failure_after_part_of_an_answer_is_not_retried() -> None:
    records: list[RequestRecord] = []
    with FaultServer("cut-second") as server:
        result = run_load(
            server.url, itertools.repeat(BODY), count=2, connections=1, on_record=records.append
        )
        received = len(server.requests)
    assert [(r.outcome, r.retried) for r in records] == [("ok", False), ("reset", False)]
    assert "mid-response" in (records[1].error or "")
    assert (received, result.retried) == (2, 0)


def test_a_lost_request_is_retried_once_only() -> None:
    records: list[RequestRecord] = []
    with FaultServer("first-only") as server:
        result = run_load(
            server.url, itertools.repeat(BODY), count=2, connections=1, on_record=records.append
        )
        received = len(server.requests)
    # the second request: closed unanswered on the kept-alive connection, then again on a fresh one, which
    # is the handler's doing
    assert [(r.outcome, r.retried) for r in records] == [("ok", False), ("reset", True)]
    assert "without a response" in (records[1].error or "")
    assert (received, result.retried) == (3, 1)


def test_https_with_a_trusted_certificate() -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    with FaultServer("ok", ssl_context=server_context) as server:
        trusted = run_load(
            server.url, itertools.repeat(BODY), count=5, connections=2, ssl_context=client_context
        )
        refused = run_load(server.url, itertools.repeat(BODY), count=1, connections=1)
        received = len(server.requests)
    assert trusted.statuses == {"200": 5}
    assert refused.statuses == {"refused": 1}  # an unknown authority: the handshake fails, nothing is sent
    assert received == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://127.0.0.1/", "count": 1}, "http:// or https:// URL"),
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


@pytest.mark.slow
def test_cli_against_the_reference_handler(tmp_path: Path) -> None:
    png = tmp_path / "latency.png"
    out, err = io.StringIO(), io.StringIO()
    with reference_handler() as (url, context):
        code = run(
            [
                "load", "--to", url, "--rate", "150", "--count", "150", "--connections", "4",
                "--shape", "docs-2024", "--auth", "system", "--seed", "9",
                "--application-token", context["application_token"], "--member-id", context["member_id"],
                "--client-endpoint", context["client_endpoint"], "--histogram", str(png), "--json",
            ],
            out,
            err,
        )  # fmt: skip
    assert code == 0, err.getvalue() + out.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["sent"] == summary["ok"] == 150
    assert (summary["failed"], summary["unsent"], summary["rate"]) == (0, 0, 150)
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
    assert "http:// or https:// URL" in err.getvalue()
    assert run(["load", "--to", "http://127.0.0.1:1/", "--rate", "-5"], out, err) == 2
    assert "must be positive" in err.getvalue()


# ------------------------------------------------------------------------------------------ the HTTP reader


def _read(reader: ResponseReader, data: bytes, step: int) -> int:
    """Feed ``data`` ``step`` bytes at a time; how many bytes it took to complete the response."""
    for end in range(step, len(data) + step, step):
        if reader.feed(data[end - step : end]):
            return min(end, len(data))
    return -1


RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", 200, True, 2),
    (b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nConnection: close\r\n\r\n", 503, False, 0),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, False, 1),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 200, True, 1),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, True, 0),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc", 201, True, 3),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
        200, True, 5,
    ),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\nabcd", 200, True, 4),
]  # fmt: skip


@pytest.mark.parametrize(("data", "status", "keep_alive", "body"), RESPONSES)
@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_the_reader_finds_where_each_response_ends(
    data: bytes, status: int, keep_alive: bool, body: int, step: int
) -> None:
    reader = ResponseReader()
    assert _read(reader, data, step) == len(data)
    assert (reader.status, reader.keep_alive, reader.body_bytes) == (status, keep_alive, body)


def test_the_reader_remembers_whole_responses_and_reads_them_alike() -> None:
    known: dict[bytes, tuple[int, bool, int]] = {}
    data = RESPONSES[0][0]
    first, again = ResponseReader(known=known), ResponseReader(known=known)
    assert first.feed(data)
    assert known == {data: (200, True, 2)}
    assert again.feed(data)
    assert (again.status, again.keep_alive, again.body_bytes) == (200, True, 2)


def test_a_body_until_close_ends_at_the_close() -> None:
    reader = ResponseReader()
    assert not reader.feed(b"HTTP/1.1 200 OK\r\n\r\nsome")
    assert not reader.feed(b" more")
    assert reader.eof()
    assert (reader.status, reader.keep_alive, reader.body_bytes) == (200, False, 9)


def test_a_response_cut_short_is_not_complete() -> None:
    reader = ResponseReader()
    assert not reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert reader.started
    assert not reader.eof()


def test_bytes_after_the_answer_forbid_reuse() -> None:
    reader = ResponseReader()
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200")
    assert not reader.keep_alive


def test_a_long_body_is_counted_up_to_the_cap() -> None:
    reader = ResponseReader(max_body=10)
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 50)
    assert (reader.truncated, reader.keep_alive, reader.body_bytes) == (True, False, 10)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"this is not HTTP at all\r\n\r\n", "status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "status code"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000, "over"),
    ],
)
def test_invalid_responses_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(BadResponse, match=says):
        ResponseReader().feed(data)


def test_request_heads() -> None:
    heads = RequestHeads("http://[::1]:8080/a b?q=1 2#frag", user_agent="ua/1", content_type="text/x")
    assert heads.wire(b"xyz") == (
        b"POST /a%20b?q=1%202 HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: ua/1\r\n"
        b"Content-Type: text/x\r\nContent-Length: 3\r\n\r\nxyz"
    )
    assert (
        RequestHeads("https://example.test", user_agent="u", content_type="t")
        .wire(b"")
        .startswith(b"POST / HTTP/1.1\r\nHost: example.test\r\n")
    )
