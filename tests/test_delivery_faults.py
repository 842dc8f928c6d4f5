"""Handler faults: every one ends within its timeout as a recorded outcome, and nothing escapes to the caller.

Real misbehaving servers on 127.0.0.1 (tests/support/faulty_servers.py) for URL targets, and misbehaving apps
and callables for the in-process transports. Timeouts are short (0.5 s); no test measures wall-clock time,
only which outcome each attempt ended with.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

import pytest

from mock_portal.delivery import (
    OUTCOMES,
    AsgiTarget,
    AsyncDeliverer,
    CallableTarget,
    Deliverer,
    Delivery,
    WsgiTarget,
)
from tests.support.faulty_servers import HUGE_BYTES, FaultServer, refusing_port

BODY = b"event=ONSESSIONSTART&data%5BDATA%5D%5Bx%5D=1&ts=1&auth%5Bapplication_token%5D=0123456789abcdef"
TIMEOUT = 0.5
CAP = 4096

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@pytest.fixture
def deliverer() -> Iterator[Deliverer]:
    with Deliverer(timeout=TIMEOUT, max_response_bytes=CAP) as d:
        yield d


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown, so handler threads left hanging by a test end with it."""
    event = threading.Event()
    yield event
    event.set()


def assert_one_line_error(error: str | None) -> None:
    assert error
    assert "\n" not in error


# ------------------------------------------------------------------------------------------ real sockets


@pytest.mark.parametrize(
    ("mode", "outcome", "status", "error_says"),
    [
        ("hang", "timeout", None, "no response within the 0.5 s timeout"),
        ("drip", "timeout", 200, "did not complete within the 0.5 s timeout"),
        ("reset", "reset", 200, "cut short"),
        ("close", "reset", None, "closed the connection without a complete response"),
        ("garbage", "reset", None, "invalid HTTP response"),
    ],
)
def test_socket_faults_end_as_recorded_outcomes(
    deliverer: Deliverer, mode: str, outcome: str, status: int | None, error_says: str
) -> None:
    with FaultServer(mode) as server:
        attempt = deliverer.deliver(server.url, BODY)
        assert len(server.requests) == 1  # received once, never retried (facts §1)
    assert (attempt.outcome, attempt.status) == (outcome, status)
    assert_one_line_error(attempt.error)
    assert error_says in (attempt.error or "")
    assert deliverer.log.attempts == [attempt]


def test_refused_connection(deliverer: Deliverer) -> None:
    with refusing_port() as port:
        attempt = deliverer.deliver(f"http://127.0.0.1:{port}/handler", BODY)
    assert (attempt.outcome, attempt.status) == ("refused", None)
    assert_one_line_error(attempt.error)
    assert "could not connect" in (attempt.error or "")


def test_5xx_is_recorded_with_its_status(deliverer: Deliverer) -> None:
    with FaultServer("ok", status=500, body=b"Internal Server Error") as server:
        attempt = deliverer.deliver(server.url, BODY)
    assert (attempt.outcome, attempt.status, attempt.response_excerpt) == (
        "http_error",
        500,
        "Internal Server Error",
    )


def test_a_huge_response_is_not_read_whole(deliverer: Deliverer) -> None:
    with FaultServer("huge") as server:
        attempt = deliverer.deliver(server.url, BODY)
        sent = server.bytes_sent
    assert (attempt.outcome, attempt.status) == ("ok", 200)
    assert attempt.response_truncated
    assert attempt.response_bytes == CAP
    assert len(attempt.response_excerpt) <= 256
    # the client hung up long before the gigabyte: the server could only push what the socket buffers held
    assert sent < HUGE_BYTES // 8


def test_faults_next_to_a_good_handler_leave_it_untouched(deliverer: Deliverer) -> None:
    with FaultServer("ok") as good:
        for mode in ("huge", "reset", "close", "hang"):
            with FaultServer(mode) as bad:
                deliverer.deliver(bad.url, BODY)
            assert deliverer.deliver(good.url, BODY).ok
        assert good.connections == 4  # a connection per event
    assert deliverer.log.counts() == {"ok": 5, "reset": 2, "timeout": 1}


def test_per_attempt_timeout_overrides_the_default() -> None:
    with FaultServer("hang") as server, Deliverer(timeout=30.0) as d:
        attempt = d.deliver(server.url, BODY, timeout=0.2)
    assert (attempt.outcome, attempt.timeout_s) == ("timeout", 0.2)
    assert "0.2 s" in (attempt.error or "")


def test_deliver_many_over_every_fault_at_once(release: threading.Event) -> None:
    modes = ("ok", "hang", "drip", "reset", "close", "huge", "garbage")
    servers = [FaultServer(mode).start() for mode in modes]
    try:
        with refusing_port() as port, Deliverer(timeout=TIMEOUT, max_response_bytes=CAP) as d:
            items: list[Delivery | tuple[Any, bytes]] = [(s.url, BODY) for s in servers]
            items.append((f"http://127.0.0.1:{port}/", BODY))
            items.append(Delivery(WsgiTarget(_hanging_wsgi(release)), BODY))
            items.append(Delivery(CallableTarget(_raising), BODY))
            attempts = d.deliver_many(items, concurrency=len(items))
    finally:
        for server in servers:
            server.stop()
    assert [a.outcome for a in attempts] == [
        "ok",
        "timeout",
        "timeout",
        "reset",
        "reset",
        "ok",
        "reset",
        "refused",
        "timeout",
        "http_error",
    ]
    assert {a.outcome for a in attempts} <= set(OUTCOMES)


def test_async_engine_faults(release: threading.Event) -> None:
    async def main() -> list[str]:
        async with AsyncDeliverer(timeout=TIMEOUT) as d:
            with FaultServer("hang") as hang, FaultServer("close") as close:
                attempts = [
                    await d.deliver(hang.url, BODY),
                    await d.deliver(close.url, BODY),
                    await d.deliver(AsgiTarget(_hanging_asgi), BODY),
                    await d.deliver(CallableTarget(_hanging_async), BODY),
                    await d.deliver(CallableTarget(_hanging_sync(release)), BODY),
                ]
        return [a.outcome for a in attempts]

    assert asyncio.run(main()) == ["timeout", "reset", "timeout", "timeout", "timeout"]


# ------------------------------------------------------------------------------------------ ASGI apps


async def _hanging_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.Event().wait()


async def _raise_before_start(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("handler crashed")


async def _raise_mid_body(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"half", "more_body": True})
    raise RuntimeError("crashed mid-body")


async def _no_response(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()


async def _return_mid_body(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"half", "more_body": True})


async def _asgi_503(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": []})
    await send({"type": "http.response.body", "body": b"busy"})


async def _asgi_drip(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        await send({"type": "http.response.body", "body": b"d", "more_body": True})
        await asyncio.sleep(0.05)  # the fault is the rate itself


class _EndlessAsgi:
    """Streams 64 KiB chunks forever; counts them and notes how it was stopped."""

    def __init__(self) -> None:
        self.chunks = 0
        self.stopped_by: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
                self.chunks += 1
        except Exception as exc:
            self.stopped_by = type(exc).__name__
            raise


@pytest.mark.parametrize(
    ("app", "outcome", "status", "error_says"),
    [
        (_hanging_asgi, "timeout", None, "no response within"),
        (_asgi_drip, "timeout", 200, "did not complete"),
        (_raise_before_start, "http_error", 500, "RuntimeError: handler crashed"),
        (_raise_mid_body, "reset", 200, "RuntimeError: crashed mid-body; the response was cut short"),
        (_no_response, "http_error", 500, "without sending a response"),
        (_return_mid_body, "reset", 200, "returned mid-response"),
        (_asgi_503, "http_error", 503, None),
    ],
)
def test_asgi_faults(
    deliverer: Deliverer, app: Any, outcome: str, status: int | None, error_says: str | None
) -> None:
    attempt = deliverer.deliver(AsgiTarget(app), BODY)
    assert (attempt.outcome, attempt.status) == (outcome, status)
    if error_says is None:
        assert attempt.error is None
    else:
        assert_one_line_error(attempt.error)
        assert error_says in (attempt.error or "")


def test_a_huge_asgi_response_is_capped_and_the_app_stopped(deliverer: Deliverer) -> None:
    app = _EndlessAsgi()
    attempt = deliverer.deliver(AsgiTarget(app), BODY)
    assert (attempt.outcome, attempt.status, attempt.response_truncated) == ("ok", 200, True)
    assert attempt.response_bytes == CAP
    assert app.stopped_by == "ClientGone"  # told the client has gone, as a server would
    assert app.chunks == 1  # the first chunk filled the cap; the second send was refused


# ------------------------------------------------------------------------------------------ WSGI apps


def _hanging_wsgi(release: threading.Event) -> Callable[..., list[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        release.wait()
        start_response("200 OK", [])
        return [b"late"]

    return app


def _raising_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise KeyError("missing")


def _wsgi_500(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    return [b"oops"]


def _crashing_stream(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [])
    yield b"first"
    raise OSError("disk gone")


class _EndlessWsgi:
    def __init__(self) -> None:
        self.closed = False
        self.chunks = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        return self._stream()

    def _stream(self) -> Iterator[bytes]:
        try:
            while True:
                self.chunks += 1
                yield b"y" * 1000
        finally:
            self.closed = True


def test_a_hanging_wsgi_app_times_out(deliverer: Deliverer, release: threading.Event) -> None:
    attempt = deliverer.deliver(WsgiTarget(_hanging_wsgi(release)), BODY)
    assert (attempt.outcome, attempt.status) == ("timeout", None)


@pytest.mark.parametrize(
    ("app", "outcome", "status", "error_says"),
    [
        (_raising_wsgi, "http_error", 500, "KeyError"),
        (_wsgi_500, "http_error", 500, None),
        (_crashing_stream, "reset", 200, "OSError: disk gone; the response was cut short"),
    ],
)
def test_wsgi_faults(
    deliverer: Deliverer, app: Any, outcome: str, status: int, error_says: str | None
) -> None:
    attempt = deliverer.deliver(WsgiTarget(app), BODY)
    assert (attempt.outcome, attempt.status) == (outcome, status)
    if error_says is None:
        assert attempt.error is None
    else:
        assert error_says in (attempt.error or "")


def test_a_huge_wsgi_response_is_capped_and_closed(deliverer: Deliverer) -> None:
    app = _EndlessWsgi()
    attempt = deliverer.deliver(WsgiTarget(app), BODY)
    assert (attempt.outcome, attempt.response_truncated, attempt.response_bytes) == ("ok", True, CAP)
    assert app.closed  # the iterable's close() was called, as PEP 3333 asks
    assert app.chunks == CAP // 1000 + 1


# ------------------------------------------------------------------------------------------ callables


def _hanging_sync(release: threading.Event) -> Callable[[bytes, Mapping[str, str], str], int]:
    def handler(body: bytes, headers: Mapping[str, str], url: str) -> int:
        release.wait()
        return 200

    return handler


async def _hanging_async(body: bytes, headers: Mapping[str, str], url: str) -> int:
    await asyncio.Event().wait()
    return 200


def _raising(body: bytes, headers: Mapping[str, str], url: str) -> int:
    raise ZeroDivisionError("division by zero")


def test_a_hanging_sync_callable_times_out(deliverer: Deliverer, release: threading.Event) -> None:
    attempt = deliverer.deliver(CallableTarget(_hanging_sync(release)), BODY)
    assert (attempt.outcome, attempt.status) == ("timeout", None)


def test_a_hanging_async_callable_times_out(deliverer: Deliverer) -> None:
    attempt = deliverer.deliver(CallableTarget(_hanging_async), BODY)
    assert (attempt.outcome, attempt.status) == ("timeout", None)


def test_a_sync_callable_returning_a_hanging_coroutine_times_out(deliverer: Deliverer) -> None:
    def handler(body: bytes, headers: Mapping[str, str], url: str) -> Awaitable[int]:
        return _hanging_async(body, headers, url)

    attempt = deliverer.deliver(CallableTarget(handler), BODY)
    assert attempt.outcome == "timeout"


@pytest.mark.parametrize(
    ("returned", "outcome", "status", "error_says"),
    [
        (204, "ok", 204, None),
        ((200, "fine"), "ok", 200, None),
        ((418, b"teapot"), "http_error", 418, None),
        ("200", "http_error", 500, "expected a status"),
        (True, "http_error", 500, "expected a status"),
        (700, "http_error", 500, "expected a status"),
        ((200, 5), "http_error", 500, "expected bytes or str"),
        (None, "http_error", 500, "expected a status"),
    ],
)
def test_callable_return_values(
    deliverer: Deliverer, returned: object, outcome: str, status: int, error_says: str | None
) -> None:
    attempt = deliverer.deliver(CallableTarget(lambda b, h, u: returned), BODY)  # type: ignore[arg-type,return-value]
    assert (attempt.outcome, attempt.status) == (outcome, status)
    assert (attempt.error is None) == (error_says is None)
    if error_says:
        assert error_says in (attempt.error or "")


def test_a_raising_callable_is_a_500(deliverer: Deliverer) -> None:
    attempt = deliverer.deliver(CallableTarget(_raising), BODY)
    assert (attempt.outcome, attempt.status) == ("http_error", 500)
    assert "ZeroDivisionError: division by zero" in (attempt.error or "")


def test_a_huge_callable_response_is_capped(deliverer: Deliverer) -> None:
    attempt = deliverer.deliver(CallableTarget(lambda b, h, u: (200, b"z" * (CAP * 10))), BODY)
    assert (attempt.response_bytes, attempt.response_truncated) == (CAP, True)


def test_async_callable_object(deliverer: Deliverer) -> None:
    class Handler:
        async def __call__(self, body: bytes, headers: Mapping[str, str], url: str) -> int:
            await asyncio.sleep(0)
            return 202

    target = CallableTarget(Handler())
    assert target.is_async
    assert deliverer.deliver(target, BODY).status == 202
