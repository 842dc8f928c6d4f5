"""Delivery over every transport: what handlers receive, a connection per event, concurrency, handler threads,
the attempt log, its file.

Everything runs over real sockets on 127.0.0.1 (uvicorn, or the small servers in
tests/support/faulty_servers.py) or in process through the httpx transports; nothing is stubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from mock_portal.delivery import (
    BITRIX24_OBSERVED_USER_AGENT,
    CONTENT_TYPE,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    AsgiTarget,
    AsyncDeliverer,
    Attempt,
    CallableTarget,
    Deliverer,
    Delivery,
    DeliveryLog,
    UrlTarget,
    WsgiTarget,
    as_target,
)
from mock_portal.delivery._common import EXCERPT_BYTES
from mock_portal.errors import UsageError
from tests.support.faulty_servers import FaultServer, refusing_port

ACCESS = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
APP_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
REFRESH = "r9q8p7o6n5m4l3k2j1i0h9g8f7e6d5c4"
SECRETS = (ACCESS, APP_TOKEN, REFRESH)
# a form body as PHP's http_build_query writes it (facts §1): brackets percent-encoded, space '+', '~' %7E
BODY = (
    "event=ONSESSIONSTART&event_handler_id=17"
    "&data%5BDATA%5D%5B0%5D%5Bconnector%5D%5Bconnector_id%5D=livechat"
    "&data%5BDATA%5D%5B0%5D%5Bline%5D%5Bname%5D=Support+line+%2F+%D0%BF%D0%BE%D0%B4%D0%B4%D0%B5%D1%80%D0%B6%D0%BA%D0%B0"
    "&data%5BDATA%5D%5B0%5D%5Bnote%5D=a%7Eb%2Cc&ts=1733500000"
    f"&auth%5Baccess_token%5D={ACCESS}&auth%5Bexpires_in%5D=3600&auth%5Brefresh_token%5D={REFRESH}"
    f"&auth%5Bdomain%5D=example.bitrix24.com&auth%5Bapplication_token%5D={APP_TOKEN}"
).encode()

ASGIScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


class Recorder:
    """One handler, three faces (ASGI, WSGI, callable), recording (transport, headers, body) per request.

    Headers are normalised the only way all three can share: lower-case names, sorted.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[tuple[str, str]], bytes]] = []
        self._lock = threading.Lock()

    def _record(self, kind: str, headers: list[tuple[str, str]], body: bytes) -> None:
        with self._lock:
            self.seen.append((kind, sorted(headers), body))

    async def asgi(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        assert scope["method"] == "POST"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        self._record("asgi", headers, body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        assert environ["REQUEST_METHOD"] == "POST"
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = [
            (key[5:].replace("_", "-").lower(), value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]
        headers += [
            (key.replace("_", "-").lower(), environ[key])
            for key in ("CONTENT_TYPE", "CONTENT_LENGTH")
            if key in environ
        ]
        self._record("wsgi", headers, body)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    def call(self, body: bytes, headers: Mapping[str, str], url: str) -> tuple[int, bytes]:
        self._record("callable", [(k.lower(), v) for k, v in headers.items()], body)
        return 200, b"ok"


@contextlib.contextmanager
def uvicorn_server(app: Callable[..., Awaitable[None]]) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1; yields the base URL.

    The socket is bound and listening before uvicorn starts, so clients can connect at once (the kernel queues
    them) and the test never waits for a "started" flag.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        interface="asgi3",
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@pytest.fixture
def deliverer() -> Iterator[Deliverer]:
    with Deliverer(timeout=5.0) as d:
        yield d


@pytest.fixture
def ok_server() -> Iterator[FaultServer]:
    with FaultServer("ok") as server:
        yield server


# ------------------------------------------------------------------------------------------ what is sent


def test_every_transport_delivers_the_same_bytes_and_headers(deliverer: Deliverer) -> None:
    recorder = Recorder()
    with uvicorn_server(recorder.asgi) as base:
        url = f"{base}/b24/handler"
        attempts = [
            deliverer.deliver(url, BODY),
            deliverer.deliver(AsgiTarget(recorder.asgi, url=url), BODY),
            deliverer.deliver(WsgiTarget(recorder.wsgi, url=url), BODY),
            deliverer.deliver(CallableTarget(recorder.call, url=url), BODY),
        ]
    assert [a.outcome for a in attempts] == ["ok"] * 4
    assert [a.transport for a in attempts] == ["http", "asgi", "wsgi", "callable"]
    assert [kind for kind, _, _ in recorder.seen] == ["asgi", "asgi", "wsgi", "callable"]
    host = url.split("/")[2]
    expected_headers = sorted(
        [
            ("host", host),
            ("user-agent", DEFAULT_USER_AGENT),
            ("content-type", CONTENT_TYPE),
            ("content-length", str(len(BODY))),
        ]
    )
    for kind, headers, body in recorder.seen:
        assert body == BODY, kind  # the PHP body, byte for byte, untouched
        assert headers == expected_headers, kind


def test_real_captures_arrive_byte_identical(deliverer: Deliverer, b24_shared_dir: Path) -> None:
    recorder = Recorder()
    wires = sorted((b24_shared_dir / "captures").glob("*.wire.txt"))
    assert wires, "no captures"
    bodies = [path.read_bytes() for path in wires]
    with uvicorn_server(recorder.asgi) as base:
        attempts = deliverer.deliver_many([(f"{base}/h", body) for body in bodies], concurrency=4)
    assert [a.outcome for a in attempts] == ["ok"] * len(bodies)
    assert sorted(body for _, _, body in recorder.seen) == sorted(bodies)
    # the event name in each record comes from the body's first key (facts §1)
    assert all(a.event and a.event == a.event.upper() for a in attempts)


def test_the_user_agent_can_be_the_one_handlers_check(ok_server: FaultServer) -> None:
    with Deliverer(timeout=5.0, user_agent=BITRIX24_OBSERVED_USER_AGENT) as d:
        assert d.deliver(ok_server.url, BODY).ok
    assert ok_server.requests[0].header("User-Agent") == "Bitrix24 Webhook Engine"


def test_post_with_form_content_type_and_no_extra_headers(
    deliverer: Deliverer, ok_server: FaultServer
) -> None:
    deliverer.deliver(ok_server.url + "?x=1", BODY)
    (request,) = ok_server.requests
    assert request.method == "POST"
    assert request.path == "/handler?x=1"
    assert request.body == BODY
    assert [name.lower() for name, _ in request.headers] == [
        "host",
        "user-agent",
        "content-type",
        "content-length",
    ]
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"


def test_str_body_is_sent_as_utf8(deliverer: Deliverer, ok_server: FaultServer) -> None:
    deliverer.deliver(ok_server.url, "event=ONAPPTEST&data%5BX%5D=%D1%8F")
    assert ok_server.requests[0].body == b"event=ONAPPTEST&data%5BX%5D=%D1%8F"


def test_redirects_are_not_followed(deliverer: Deliverer) -> None:
    with FaultServer("ok", status=302, extra_headers=(("Location", "/elsewhere"),)) as server:
        attempt = deliverer.deliver(server.url, BODY)
        requests = server.requests
    assert (attempt.outcome, attempt.status) == ("http_error", 302)
    assert [r.path for r in requests] == ["/handler"]


@pytest.mark.parametrize("status", [500, 503, 404, 400])
def test_non_2xx_is_an_http_error_and_never_retried(deliverer: Deliverer, status: int) -> None:
    with FaultServer("ok", status=status, body=b"broken") as server:
        attempt = deliverer.deliver(server.url, BODY)
        assert len(server.requests) == 1  # no retries, ever (facts §1)
    assert (attempt.outcome, attempt.status, attempt.ok) == ("http_error", status, False)
    assert attempt.response_excerpt == "broken"


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_ok(deliverer: Deliverer, status: int) -> None:
    body = b"" if status == 204 else b"fine"
    with FaultServer("ok", status=status, body=body) as server:
        attempt = deliverer.deliver(server.url, BODY)
    assert (attempt.outcome, attempt.status) == ("ok", status)


def test_event_name_comes_from_the_body_unless_given(deliverer: Deliverer, ok_server: FaultServer) -> None:
    assert deliverer.deliver(ok_server.url, BODY).event == "ONSESSIONSTART"
    assert deliverer.deliver(ok_server.url, BODY, event="OnSessionStart").event == "OnSessionStart"
    assert deliverer.deliver(ok_server.url, b"data%5Bx%5D=1").event == ""


# ------------------------------------------------------------------------------------------ connections


def test_each_delivery_opens_a_connection_of_its_own(deliverer: Deliverer, ok_server: FaultServer) -> None:
    # one POST per (handler x event) (facts §1): no connection is kept for the next event
    attempts = [deliverer.deliver(ok_server.url, BODY) for _ in range(20)]
    assert all(a.ok for a in attempts)
    assert len(ok_server.requests) == 20
    assert ok_server.connections == 20
    assert sorted(r.connection for r in ok_server.requests) == list(range(1, 21))


def test_a_fresh_connection_per_delivery_with_uvicorn(deliverer: Deliverer) -> None:
    peers: list[tuple[str, int]] = []

    async def app(scope: ASGIScope, receive: Receive, send: Send) -> None:
        peers.append(tuple(scope["client"]))
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with uvicorn_server(app) as base:
        attempts = [deliverer.deliver(f"{base}/h", BODY) for _ in range(10)]
    assert all(a.ok for a in attempts)
    assert len(peers) == 10
    assert len(set(peers)) == 10  # ten client ports: ten connections


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_handler_that_closes_after_each_answer_is_never_blamed(concurrency: int) -> None:
    # HTTP/1.1 lets a server close after any answer without `Connection: close`; a kept-alive client that
    # wrote the next event onto such a connection used to record half of them as `reset`
    with FaultServer("once") as server, Deliverer(timeout=5.0) as d:
        attempts = d.deliver_many([(server.url, BODY)] * 100, concurrency=concurrency)
        sequential = [d.deliver(server.url, BODY) for _ in range(20)]
        assert len(server.requests) == 120  # each event sent once: nothing was retried
    assert [a.outcome for a in attempts + sequential] == ["ok"] * 120
    assert d.log.counts() == {"ok": 120}


def test_connection_limit_bounds_the_connections_open_at_once() -> None:
    with FaultServer("gate", gate=3) as server, Deliverer(timeout=5.0, connection_limit=3) as d:
        attempts = d.deliver_many([(server.url, BODY)] * 9, concurrency=9)
        assert server.max_in_flight == 3
    assert [a.outcome for a in attempts] == ["ok"] * 9


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_deliver_many_keeps_exactly_c_in_flight(concurrency: int) -> None:
    # the server answers only when `concurrency` requests are waiting, so the run completes only if the
    # client keeps that many in flight, and max_in_flight shows it never keeps more
    with FaultServer("gate", gate=concurrency) as server, Deliverer(timeout=5.0) as d:
        items = [(server.url, BODY + f"&n={i}".encode()) for i in range(concurrency * 3)]
        attempts = d.deliver_many(items, concurrency=concurrency)
        assert server.max_in_flight == concurrency
        assert len(server.requests) == concurrency * 3
    assert [a.outcome for a in attempts] == ["ok"] * (concurrency * 3)
    assert [a.body for a in attempts] == [body for _, body in items]  # results in input order


def test_async_api_on_the_callers_loop(ok_server: FaultServer) -> None:
    async def main() -> tuple[Attempt, list[Attempt], DeliveryLog]:
        log = DeliveryLog()
        async with AsyncDeliverer(log, timeout=5.0) as d:
            one = await d.deliver(ok_server.url, BODY)
            many = await d.deliver_many(
                [
                    Delivery(ok_server.url, BODY, event="A"),
                    Delivery(CallableTarget(_async_ok), BODY, event="B"),
                ],
                concurrency=2,
            )
        return one, many, log

    one, many, log = asyncio.run(main())
    assert one.ok
    assert [(a.event, a.outcome, a.transport) for a in many] == [("A", "ok", "http"), ("B", "ok", "callable")]
    # the log is in the order attempts ended; deliver_many returns them in input order
    assert log.attempts[0] == one
    assert set(log.attempts[1:]) == set(many)


async def _async_ok(body: bytes, headers: Mapping[str, str], url: str) -> int:
    await asyncio.sleep(0)
    return 200


def test_a_sync_handler_may_deliver_again(deliverer: Deliverer) -> None:
    # event -> REST call -> event chains (facts §1): a handler running in its thread calls the portal again
    inner = Recorder()

    def outer(body: bytes, headers: Mapping[str, str], url: str) -> int:
        nested = deliverer.deliver(CallableTarget(inner.call), b"event=ONAPPTEST")
        return 200 if nested.ok else 500

    attempt = deliverer.deliver(CallableTarget(outer), BODY)
    assert attempt.ok
    assert [a.event for a in deliverer.log] == ["ONAPPTEST", "ONSESSIONSTART"]


def test_sequential_sync_handlers_reuse_one_thread() -> None:
    threads: set[int] = set()

    def handler(body: bytes, headers: Mapping[str, str], url: str) -> int:
        threads.add(threading.get_ident())
        return 200

    with Deliverer(timeout=5.0) as d:
        attempts = [d.deliver(CallableTarget(handler), BODY) for _ in range(20)]
        attempts.append(d.deliver(WsgiTarget(Recorder().wsgi), BODY))
    assert all(a.ok for a in attempts)
    assert len(threads) == 1  # not a thread per delivery


def test_a_burst_of_sync_deliveries_runs_on_a_bounded_pool() -> None:
    # every call waits until four run at once: the run completes only if the pool runs four together,
    # and the peak shows it never runs more
    together = threading.Barrier(4)
    lock = threading.Lock()
    running, peak, threads = [0], [0], set()

    def handler(body: bytes, headers: Mapping[str, str], url: str) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            threads.add(threading.get_ident())
        together.wait()
        with lock:
            running[0] -= 1
        return 200

    try:
        with Deliverer(timeout=30.0, handler_threads=4) as d:
            attempts = d.deliver_many([(CallableTarget(handler), BODY)] * 12, concurrency=12)
    finally:
        together.abort()
    assert [a.outcome for a in attempts] == ["ok"] * 12
    assert peak[0] == 4
    assert len(threads) == 4


def test_a_call_that_never_got_a_thread_times_out_and_never_runs() -> None:
    release, both_hanging = threading.Event(), threading.Event()
    calls: list[bytes] = []

    def hang(body: bytes, headers: Mapping[str, str], url: str) -> int:
        calls.append(body)
        if len(calls) == 2:
            both_hanging.set()
        release.wait()
        return 200

    async def main() -> tuple[Attempt, list[Attempt], Attempt]:
        async with AsyncDeliverer(timeout=30.0, handler_threads=2) as d:
            hanging = [asyncio.ensure_future(d.deliver(CallableTarget(hang), BODY)) for _ in range(2)]
            await asyncio.to_thread(both_hanging.wait)
            starved = await d.deliver(CallableTarget(hang), b"event=STARVED", timeout=0.2)
            release.set()
            done = list(await asyncio.gather(*hanging))
            after = await d.deliver(CallableTarget(hang), b"event=AFTER")
        return starved, done, after

    try:
        starved, done, after = asyncio.run(main())
    finally:
        release.set()
    assert (starved.outcome, starved.status) == ("timeout", None)
    assert "all 2 handler threads were busy" in (starved.error or "")
    assert [a.outcome for a in done] == ["ok", "ok"]
    assert after.ok
    assert calls == [BODY, BODY, b"event=AFTER"]  # the starved call was cancelled, never run late


def test_an_async_handler_calling_the_sync_facade_is_refused_not_deadlocked(deliverer: Deliverer) -> None:
    async def handler(body: bytes, headers: Mapping[str, str], url: str) -> int:
        deliverer.deliver(CallableTarget(_async_ok), BODY)
        return 200

    attempt = deliverer.deliver(CallableTarget(handler), BODY)
    assert (attempt.outcome, attempt.status) == ("http_error", 500)
    assert attempt.error is not None
    assert "UsageError" in attempt.error
    assert "delivery loop" in attempt.error


# ------------------------------------------------------------------------------------------ the record


def test_attempt_fields(deliverer: Deliverer, ok_server: FaultServer) -> None:
    attempt = deliverer.deliver(ok_server.url, BODY, timeout=2.5)
    assert attempt.id
    assert attempt.event == "ONSESSIONSTART"
    assert attempt.target == ok_server.url
    assert attempt.transport == "http"
    assert attempt.body == BODY  # raw in memory, for assertions
    assert (attempt.outcome, attempt.status, attempt.ok) == ("ok", 200, True)
    assert attempt.latency_ms > 0
    assert attempt.started_at > 1_600_000_000
    assert attempt.timeout_s == 2.5
    assert attempt.error is None
    assert (attempt.response_bytes, attempt.response_excerpt, attempt.response_truncated) == (2, "ok", False)
    assert deliverer.log.attempts == [attempt]


def test_default_timeout_is_the_portals_10_seconds(ok_server: FaultServer) -> None:
    assert DEFAULT_TIMEOUT == 10.0
    with Deliverer() as d:
        assert d.deliver(ok_server.url, BODY).timeout_s == 10.0


def test_printed_forms_are_redacted_but_the_body_is_raw(deliverer: Deliverer) -> None:
    with refusing_port() as port:
        attempt = deliverer.deliver(f"http://127.0.0.1:{port}/h?auth={ACCESS}", BODY)
    assert attempt.outcome == "refused"
    assert ACCESS.encode() in attempt.body
    for text in (str(attempt), repr(attempt), json.dumps(attempt.to_dict()), attempt.target):
        assert_no_secrets(text)
    assert "auth%5Baccess_token%5D=***" in attempt.to_dict()["body"]
    assert "auth=***" in attempt.target


def test_secrets_echoed_by_a_handler_are_redacted(deliverer: Deliverer) -> None:
    def echo(body: bytes, headers: Mapping[str, str], url: str) -> tuple[int, bytes]:
        return 200, b"auth%5Baccess_token%5D=" + ACCESS.encode() + b"&" + body

    def leak(body: bytes, headers: Mapping[str, str], url: str) -> int:
        raise ValueError(f"bad token access_token={ACCESS}")

    echoed = deliverer.deliver(CallableTarget(echo), BODY)
    leaked = deliverer.deliver(CallableTarget(leak), BODY)
    assert echoed.ok
    assert "access_token%5D=***" in echoed.response_excerpt
    assert (leaked.outcome, leaked.status) == ("http_error", 500)
    assert leaked.error is not None
    assert "ValueError" in leaked.error
    for attempt in (echoed, leaked):
        assert_no_secrets(str(attempt) + repr(attempt) + json.dumps(attempt.to_dict()))


# a token with characters that percent-encoding changes, so raw, hex and percent-encoded forms all differ
CUT_TOKEN = "k3Y+9aZ/q7Lw2Xc+Rt5/Vb8Nn0Pm4Hs+Jd6/Fg1Q"
CUT_FORMS = {
    "raw": CUT_TOKEN,
    "hex": CUT_TOKEN.encode().hex(),
    "percent-encoded": urllib.parse.quote(CUT_TOKEN, safe=""),
}
CUT_PLACES = {
    "json": ('{"pad": "', '", "access_token": "', '", "n": 1}'),
    "python repr": ("{'pad': '", "', 'refresh_token': '", "', 'n': 1}"),
    "form, brackets percent-encoded": ("pad=", "&auth%5Bapplication_token%5D=", "&n=1"),
}


def _fragments(text: str) -> list[str]:
    """Every piece of 8 characters or more of the token, in each of its forms, found in ``text``."""
    return [
        f"{name}: {form[i : i + 8]}"
        for name, form in CUT_FORMS.items()
        for i in range(len(form) - 7)
        if form[i : i + 8] in text
    ]


@pytest.mark.parametrize("form", sorted(CUT_FORMS))
@pytest.mark.parametrize("place", sorted(CUT_PLACES))
def test_a_token_across_the_excerpt_cut_leaves_no_fragment(form: str, place: str, tmp_path: Path) -> None:
    value = CUT_FORMS[form]
    head, key, tail = CUT_PLACES[place]
    answers: list[tuple[bytes, int]] = []
    for limit in (EXCERPT_BYTES, 200):  # the excerpt's own cut, and a response read only in part
        for inside in (8, len(value) // 2, len(value) - 8):  # where the cut falls in the value
            pad = "x" * (limit - len(head) - len(key) - inside)
            answers.append(((head + pad + key + value + tail).encode(), limit))
    log_file = tmp_path / "attempts.jsonl"
    shown: list[str] = []
    with DeliveryLog(log_file) as log:
        for answer, limit in answers:
            # the cut falls where it is meant to: inside the value, in the raw answer
            assert value[:8] in answer[:limit].decode() or value[-8:] in answer[limit:].decode()

            def handler(body: bytes, headers: Mapping[str, str], url: str, answer: bytes = answer) -> Any:
                return 200, answer

            read = limit if limit < EXCERPT_BYTES else 64 * 1024
            with Deliverer(log, timeout=5.0, max_response_bytes=read) as deliverer:
                attempt = deliverer.deliver(CallableTarget(handler), BODY)
            assert attempt.ok
            assert attempt.response_truncated is (read < len(answer))
            assert "***" in attempt.response_excerpt
            shown += [attempt.response_excerpt, str(attempt), repr(attempt), json.dumps(attempt.to_dict())]
    shown.append(log_file.read_text(encoding="utf-8"))
    for text in shown:
        assert not _fragments(text), (_fragments(text), text)
        assert_no_secrets(text)


def test_drop_records_the_reason_and_sends_nothing(deliverer: Deliverer, ok_server: FaultServer) -> None:
    attempt = deliverer.drop(
        ok_server.url, BODY, reason=f"app not installed yet (application_token={APP_TOKEN})"
    )
    assert (attempt.outcome, attempt.status, attempt.latency_ms) == ("dropped", None, 0.0)
    assert attempt.reason is not None
    assert "app not installed yet" in attempt.reason
    assert attempt.event == "ONSESSIONSTART"
    assert_no_secrets(attempt.reason)
    assert ok_server.requests == []
    assert deliverer.log.filter(outcome="dropped") == [attempt]


def test_log_filter_and_counts(deliverer: Deliverer, ok_server: FaultServer) -> None:
    deliverer.deliver(ok_server.url, BODY)
    deliverer.deliver(CallableTarget(lambda b, h, u: 503), b"event=ONAPPTEST")
    deliverer.drop(ok_server.url, b"event=ONAPPINSTALL", reason="not installed")
    log = deliverer.log
    assert len(log) == 3
    assert log.counts() == {"ok": 1, "http_error": 1, "dropped": 1}
    assert [a.event for a in log.filter(event="onapptest")] == ["ONAPPTEST"]
    assert [a.transport for a in log.filter(transport="callable")] == ["callable"]
    log.clear()
    assert len(log) == 0


def test_log_can_bound_its_memory() -> None:
    log = DeliveryLog(max_in_memory=2)
    with Deliverer(log) as d:
        for i in range(5):
            d.drop("http://h.example/", f"event=E{i}", reason="r")
    assert [a.event for a in log] == ["E3", "E4"]


def test_jsonl_has_one_redacted_line_per_attempt(tmp_path: Path, ok_server: FaultServer) -> None:
    path = tmp_path / "attempts.jsonl"
    with DeliveryLog(path) as log, Deliverer(log, timeout=5.0) as d:
        d.deliver(ok_server.url, BODY)
        d.deliver(CallableTarget(lambda b, h, u: 500), BODY)
        d.drop(ok_server.url, BODY, reason="install not finished")
        with refusing_port() as port:
            d.deliver(f"http://127.0.0.1:{port}/", BODY)
        attempts = log.attempts
    text = path.read_text(encoding="utf-8")
    assert_no_secrets(text)
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["id"] for line in lines] == [a.id for a in attempts]
    assert [line["outcome"] for line in lines] == ["ok", "http_error", "dropped", "refused"]
    assert lines[0]["body_bytes"] == len(BODY)
    assert "auth%5Bapplication_token%5D=***" in lines[0]["body"]
    assert lines[0]["started_at"].endswith("+00:00")
    assert lines == [a.to_dict() for a in attempts]


def test_jsonl_is_appended_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    for _ in range(2):
        with DeliveryLog(path) as log, Deliverer(log) as d:
            d.drop("http://h.example/", BODY, reason="r")
    assert len(path.read_text().splitlines()) == 2


def test_log_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "attempts.jsonl"
    barrier = threading.Barrier(8)
    with DeliveryLog(path) as log, Deliverer(log) as d:

        def work(n: int) -> None:
            barrier.wait()
            for i in range(50):
                d.drop("http://h.example/", BODY, reason=f"{n}-{i}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(log) == len(lines) == 400
    assert len({line["id"] for line in lines}) == 400
    assert {line["reason"] for line in lines} == {f"{n}-{i}" for n in range(8) for i in range(50)}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_jsonl_survives_the_process_being_killed_right_after(tmp_path: Path, ok_server: FaultServer) -> None:
    path = tmp_path / "attempts.jsonl"
    script = textwrap.dedent(
        """
        import os, signal, sys
        from mock_portal.delivery import CallableTarget, Deliverer, DeliveryLog

        path, url, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
        log = DeliveryLog(path)
        deliverer = Deliverer(log, timeout=5.0)
        deliverer.deliver(url, body)
        deliverer.deliver(CallableTarget(lambda b, h, u: 202), body)
        deliverer.drop(url, body, reason="install not finished")
        os.kill(os.getpid(), signal.SIGKILL)  # no close(), no flush, no atexit
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path), ok_server.url, BODY.decode()],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    text = path.read_text(encoding="utf-8")
    assert_no_secrets(text)
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["transport"], line["outcome"]) for line in lines] == [
        ("http", "ok"),
        ("callable", "ok"),
        ("http", "dropped"),
    ]
    assert len(ok_server.requests) == 1


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://example.com/h", "not an http:// or https:// URL"),
        ("example.com/handler", "not an http:// or https:// URL"),
        ("http:///nohost", "not an http:// or https:// URL"),
        ("http://example.com:99999/", "bad port"),
        (42, "expected a URL"),
    ],
)
def test_bad_targets_raise_usage_errors(deliverer: Deliverer, target: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        deliverer.deliver(target, BODY)
    assert len(deliverer.log) == 0


def test_a_bare_callable_is_refused_as_ambiguous() -> None:
    with pytest.raises(UsageError, match=r"ambiguous; wrap it as AsgiTarget\(app\)"):
        as_target(Recorder().call)  # type: ignore[arg-type]


def test_url_secrets_are_redacted_in_errors() -> None:
    with pytest.raises(UsageError) as info:
        as_target(f"ftp://h.example/?auth={ACCESS}")
    assert_no_secrets(str(info.value))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"body": 12}, "body must be bytes or str"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": -1.0}, "timeout must be a positive number"),
        ({"timeout": True}, "timeout must be a positive number"),
        ({"event": 5}, "event must be a str"),
    ],
)
def test_bad_arguments_raise_usage_errors(
    ok_server: FaultServer, kwargs: dict[str, Any], message: str
) -> None:
    call: dict[str, Any] = {"body": BODY, **kwargs}
    with Deliverer() as d, pytest.raises(UsageError, match=message):
        d.deliver(ok_server.url, **call)
    assert ok_server.requests == []


def test_body_size_is_limited(ok_server: FaultServer) -> None:
    with Deliverer(max_body_bytes=10) as d, pytest.raises(UsageError, match="over max_body_bytes=10"):
        d.deliver(ok_server.url, BODY)
    assert ok_server.requests == []


def test_deliver_many_checks_every_item_before_sending(deliverer: Deliverer, ok_server: FaultServer) -> None:
    with pytest.raises(UsageError, match="item 2"):
        deliverer.deliver_many([(ok_server.url, BODY), (ok_server.url, BODY), ("nope", BODY)])
    with pytest.raises(UsageError, match="item 0: expected a Delivery"):
        deliverer.deliver_many([ok_server.url])  # type: ignore[list-item]
    with pytest.raises(UsageError, match="concurrency must be a positive int"):
        deliverer.deliver_many([(ok_server.url, BODY)], concurrency=0)
    assert ok_server.requests == []
    assert deliverer.deliver_many([]) == []


def test_drop_needs_a_reason(deliverer: Deliverer) -> None:
    with pytest.raises(UsageError, match="reason must be a non-empty string"):
        deliverer.drop("http://h.example/", BODY, reason=" ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": float("nan")}, "timeout"),
        ({"max_response_bytes": -1}, "max_response_bytes"),
        ({"connection_limit": -1}, "connection_limit"),
        ({"user_agent": "a\r\nX-Injected: 1"}, "user_agent"),
        ({"handler_threads": 0}, "handler_threads"),
    ],
)
def test_bad_options_raise_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        AsyncDeliverer(**kwargs)


def test_targets_validate_themselves() -> None:
    with pytest.raises(UsageError, match="AsgiTarget: app must be an ASGI callable"):
        AsgiTarget("app")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="WsgiTarget"):
        WsgiTarget(Recorder().wsgi, url="mailto:x@y.z")
    with pytest.raises(UsageError, match="UrlTarget"):
        UrlTarget("file:///etc/passwd")


def test_a_closed_deliverer_refuses_work(ok_server: FaultServer) -> None:
    d = Deliverer()
    d.close()
    d.close()
    with pytest.raises(UsageError, match="closed"):
        d.deliver(ok_server.url, BODY)


def test_log_file_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot open"):
        DeliveryLog(tmp_path / "missing-dir" / "log.jsonl")


def test_importing_delivery_does_not_load_the_http_stack() -> None:
    code = (
        "import sys, mock_portal.delivery; "
        "print(','.join(m for m in ('aiohttp', 'httpx') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert loaded.stdout.strip() == ""
