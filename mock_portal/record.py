"""A recording relay: put it in front of a handler, on a real portal or the mock, and keep every delivery.

::

    with Relay("http://127.0.0.1:8080", "deliveries.jsonl") as relay:
        ...  # point the portal's handler URL at relay.url + "/events"

Every request that reaches the relay is forwarded unchanged (method, path under the ``forward_to`` URL, query,
headers, body) and the handler's answer is passed back (its body decompressed, hop-by-hop headers dropped).
Each delivery, including those whose forward failed, becomes one JSON line in the recording, written before
the answer goes back (so a recording is complete as soon as the portal has its answer)::

    {"recording": 1, "n": 1, "time": "2026-01-31T12:00:00.000Z", "method": "POST", "path": "/events",
     "query": "", "event": "ONSESSIONSTART", "outcome": "ok", "error": null, "latency_ms": 3.1,
     "request": {"headers": {...}, "bytes": 1234, "body": "event=ONSESSIONSTART&..."},
     "answer": {"status": 200, "headers": {...}, "bytes": 2, "truncated": false, "body": "ok"}}

``body`` is the exact wire body with secrets replaced by stable placeholders (:mod:`mock_portal.scrub`);
a body that is not UTF-8 is kept as ``body_base64``. ``outcome`` is ``ok`` (2xx), ``http_error``, ``refused``,
``timeout``, ``reset``, ``too_large`` (the request was over ``max_body_bytes``: answered 413, not forwarded),
``answer_too_large`` or ``error``; a failed forward is answered 502 (504 on a timeout) with a JSON error.
No token is ever written, in any encoding.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from mock_portal.errors import UsageError
from mock_portal.redact import redact_text
from mock_portal.scrub import Scrubber

__all__ = ["DEFAULT_MAX_BODY_BYTES", "READY_PATH", "RECORDING_VERSION", "Relay"]
READY_PATH = "/_relay/ready"
"""The one path the relay answers itself (200, never forwarded or recorded), so a script can wait for it."""

RECORDING_VERSION: Final = 1
DEFAULT_MAX_BODY_BYTES: Final = 1 << 20
"""Largest request body forwarded (real events are a few KiB; PHP's own default post_max_size is 8 MiB)."""
DEFAULT_MAX_ANSWER_BYTES: Final = 8 << 20
_RECORDED_ANSWER_BYTES: Final = 64 << 10
_HOP_BY_HOP: Final = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length", "content-encoding",
    }
)  # fmt: skip


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_forward_to(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise UsageError(f"the URL to forward to must be an http(s) URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"the URL to forward to must be an http(s) URL with a host, got {redact_text(url)!r}"
        )
    return url


def _event_name(body: bytes) -> str | None:
    """The ``event`` of a form body, if it has one (read from the pairs, without decoding the whole body)."""
    for pair in body.split(b"&", 64)[:64]:
        name, _, value = pair.partition(b"=")
        if name == b"event":
            text = unquote_plus(value.decode("latin-1")).strip().upper()
            return text if text.replace("_", "").isalnum() and len(text) <= 100 else None
    return None


class Relay:
    """The recording relay (see the module docstring). ``port=0`` picks a free port; use as a context manager
    or :meth:`start` / :meth:`stop` (a background thread), or :meth:`serve_forever` (the calling thread)."""

    def __init__(
        self,
        forward_to: str,
        out: str | Path | TextIO,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 30.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.forward_to = _check_forward_to(forward_to)
        if not 0 <= port <= 65535:
            raise UsageError(f"the port must be between 0 and 65535, got {port}")
        if not 0 < timeout <= 3600:
            raise UsageError(f"the timeout must be from 0 to 3600 seconds, got {timeout}")
        if not 1 <= max_body_bytes <= 1 << 30 or not 1 <= max_answer_bytes <= 1 << 30:
            raise UsageError("body limits must be from 1 byte to 1 GiB")
        self.host = host
        self.requested_port = port
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.max_answer_bytes = max_answer_bytes
        self.scrubber = Scrubber()
        self.recorded = 0
        self._out_arg = out
        self._out: TextIO | None = None
        self._owns_out = False
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._counter = 0
        self._write_lock = threading.Lock()

    # -------------------------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        """The port the relay listens on (known once started)."""
        if self._socket is None:
            raise UsageError("the relay is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the relay."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def target_url(self, raw_path: str) -> str:
        """Where a request for ``raw_path`` (path and query, as received) goes: under the forward path."""
        parts = urlsplit(self.forward_to)
        path, _, query = raw_path.partition("?")
        joined = parts.path or "/" if path in ("", "/") else parts.path.rstrip("/") + path
        return urlunsplit(
            (parts.scheme, parts.netloc, joined, "&".join(q for q in (parts.query, query) if q), "")
        )

    # -------------------------------------------------------------------------------- lifecycle

    def _open(self) -> None:
        if isinstance(self._out_arg, (str, Path)):
            try:
                self._out = Path(self._out_arg).open("w", encoding="utf-8")  # noqa: SIM115 - kept open while relaying
            except OSError as exc:
                raise UsageError(
                    f"cannot write the recording {str(self._out_arg)!r}: {exc.strerror}"
                ) from None
            self._owns_out = True
        else:
            self._out = self._out_arg

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise UsageError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror}") from None
        sock.listen(256)
        sock.setblocking(False)
        self._socket = sock
        return sock

    async def _main(self, on_ready: Callable[[Relay], None] | None) -> None:
        from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        timeout = ClientTimeout(total=self.timeout)
        async with ClientSession(
            timeout=timeout, connector=TCPConnector(limit=256), auto_decompress=True
        ) as session:
            self._session = session
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            assert self._socket is not None
            site = web.SockSite(runner, self._socket)
            await site.start()
            self._ready.set()
            if on_ready is not None:
                on_ready(self)
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

    def _prepare(self) -> None:
        self._bind()
        try:
            self._open()
        except BaseException:
            self._close()
            raise

    def start(self) -> Relay:
        """Listen and relay in a background thread; return self."""
        if self._thread is not None:
            raise UsageError("the relay is already started")
        self._prepare()

        def run() -> None:
            try:
                asyncio.run(self._main(None))
            except BaseException as exc:  # reported by start()
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name="mock-portal-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            self.stop()
            raise UsageError(f"the relay did not start: {self._error!r}")
        return self

    def serve_forever(self, on_ready: Callable[[Relay], None] | None = None) -> None:
        """Relay in the calling thread until :meth:`request_stop` (``mock-portal record`` on a signal)."""
        self._prepare()
        try:
            asyncio.run(self._main(on_ready))
        finally:
            self._close()

    def request_stop(self) -> None:
        """Ask the relay to stop; safe from a signal handler and from any thread."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            # the loop may close meanwhile: it is stopping anyway
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)

    def stop(self) -> None:
        """Stop relaying, wait for the thread, close the recording."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._close()

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        with self._write_lock:
            if self._out is not None and self._owns_out:
                self._out.close()
            self._out = None

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -------------------------------------------------------------------------------- relaying

    async def _handle(self, request: Any) -> Any:
        if request.method == "GET" and request.rel_url.raw_path == READY_PATH:
            # the relay's own readiness answer (for `mock-portal wait-ready`): not a delivery, not forwarded
            from aiohttp import web

            return web.json_response({"ready": True})
        # shielded: a portal that hangs up mid-delivery must not cancel the recording of it
        return await asyncio.shield(self._relay_recorded(request))

    async def _relay_recorded(self, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._relay(request)
        except Exception as exc:  # a relay bug is still a delivery: recorded, answered 502, never a traceback
            record = {"recording": RECORDING_VERSION, "n": 0, "time": _now(), "method": request.method}
            record.update(path=request.rel_url.raw_path, query="", event=None)
            return self._finish(record, started, "error", f"the relay failed: {type(exc).__name__}", 502)

    async def _relay(self, request: Any) -> Any:
        from aiohttp import ClientConnectorError, ClientError, ServerDisconnectedError, web

        self._counter += 1
        number = self._counter
        started = time.perf_counter()
        record: dict[str, Any] = {
            "recording": RECORDING_VERSION,
            "n": number,
            "time": _now(),
            "method": request.method,
            "path": request.rel_url.raw_path,
            "query": "",
            "event": None,
        }
        content_type = request.headers.get("Content-Type", "")
        query = request.rel_url.raw_query_string.encode("latin-1", "replace")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            record["query"] = self.scrubber.scrub(query).decode("latin-1")
            record["request"] = {"headers": self._headers(request.headers), "bytes": request.content_length}
            return self._finish(
                record, started, "too_large", f"request body over {self.max_body_bytes} bytes", 413
            )
        record["event"] = _event_name(body)
        # the body first: the secrets it carries are then replaced in the query and headers too
        scrubbed = self._body(body, content_type)
        record["query"] = self.scrubber.scrub(query).decode("latin-1")
        record["request"] = {"headers": self._headers(request.headers), "bytes": len(body), **scrubbed}
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        target = self.target_url(request.rel_url.raw_path_qs)
        try:
            async with self._session.request(
                request.method, target, headers=headers, data=body, allow_redirects=False
            ) as answer:
                chunks: list[bytes] = []
                size = 0
                async for chunk in answer.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > self.max_answer_bytes:
                        return self._finish(
                            record,
                            started,
                            "answer_too_large",
                            f"the handler's answer is over {self.max_answer_bytes} bytes",
                            502,
                        )
                    chunks.append(chunk)
                data = b"".join(chunks)
                status = answer.status
                answer_headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP]
        except ClientConnectorError as exc:
            return self._finish(record, started, "refused", f"cannot connect to the handler: {exc}", 502)
        except (ServerDisconnectedError, ConnectionResetError) as exc:
            return self._finish(record, started, "reset", f"the handler hung up: {exc!r}", 502)
        except asyncio.TimeoutError:
            return self._finish(record, started, "timeout", f"no answer within {self.timeout:g} s", 504)
        except ClientError as exc:
            return self._finish(record, started, "error", f"forwarding failed: {exc!r}", 502)
        shown = data[:_RECORDED_ANSWER_BYTES]
        record["answer"] = {
            "status": status,
            "headers": self._headers(dict(answer_headers)),
            "bytes": len(data),
            "truncated": len(data) > len(shown),
            **self._body(shown, dict(answer_headers).get("Content-Type", "")),
        }
        outcome = "ok" if 200 <= status < 300 else "http_error"
        self._write(record, started, outcome, None)
        return web.Response(status=status, body=data, headers=answer_headers)

    def _finish(self, record: dict[str, Any], started: float, outcome: str, error: str, status: int) -> Any:
        from aiohttp import web

        record["answer"] = None
        self._write(record, started, outcome, error)
        reason = {413: "PAYLOAD_TOO_LARGE", 504: "GATEWAY_TIMEOUT"}.get(status, "BAD_GATEWAY")
        payload = {"error": reason, "error_description": f"mock-portal record: {redact_text(error)}"}
        return web.json_response(payload, status=status)

    def _headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name.lower(): self.scrubber.header(name, value)
            for name, value in headers.items()
            if name.lower() not in _HOP_BY_HOP
        }

    def _body(self, data: bytes, content_type: str) -> dict[str, Any]:
        scrubbed = self.scrubber.scrub(data, content_type)
        try:
            return {"body": scrubbed.decode("utf-8")}
        except UnicodeDecodeError:
            return {"body_base64": base64.b64encode(scrubbed).decode("ascii")}

    def _write(self, record: dict[str, Any], started: float, outcome: str, error: str | None) -> None:
        record["outcome"] = outcome
        record["error"] = None if error is None else self.scrubber.echoes(error.encode()).decode("utf-8")
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        ordered = {k: record[k] for k in ("recording", "n", "time", "method", "path", "query", "event")}
        ordered.update(
            outcome=record["outcome"],
            error=record["error"],
            latency_ms=record["latency_ms"],
            request=record.get("request"),
            answer=record.get("answer"),
        )
        line = json.dumps(ordered, ensure_ascii=False) + "\n"
        with self._write_lock:
            if self._out is not None:
                self._out.write(line)
                self._out.flush()
                self.recorded += 1
