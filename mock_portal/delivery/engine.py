"""The asyncio delivery engine: one POST per attempt, over a fresh connection or in process, recorded."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mock_portal.delivery._aiohttp import import_aiohttp
from mock_portal.delivery._common import (
    CONTENT_TYPE,
    DEFAULT_HANDLER_THREADS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    Outcome,
    Result,
    cut_to,
    event_name,
    exc_text,
    one_line,
    response_excerpt,
    status_outcome,
)
from mock_portal.delivery._inprocess import AsgiRun, status_from_handler
from mock_portal.delivery._lifespan import Lifespan
from mock_portal.delivery._threads import HandlerThreads, NeverStarted
from mock_portal.delivery.records import Attempt, Delivery, DeliveryLog, next_id
from mock_portal.delivery.targets import (
    AsgiTarget,
    CallableTarget,
    Target,
    UrlTarget,
    WsgiTarget,
    as_target,
)
from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AsyncDeliverer"]


@dataclass(slots=True)
class _Job:
    target: Target
    body: bytes
    event: str
    timeout: float


def _import_httpx() -> ModuleType:
    import httpx

    return httpx


class AsyncDeliverer:
    """The asyncio delivery engine. Use it from one event loop; ``async with`` (or :meth:`aclose`) closes it.

    ``timeout`` (seconds, per attempt, connect to last byte) defaults to :data:`DEFAULT_TIMEOUT`;
    ``max_response_bytes`` caps how much of each response is read; ``max_body_bytes`` refuses larger bodies
    before sending; ``connection_limit`` bounds the connections open at once (0 for no bound);
    ``verify_tls`` checks certificates of ``https://`` targets; ``handler_threads`` bounds the threads that
    run blocking in-process handlers (sync callables, WSGI apps) at once; ``keep_responses`` keeps each whole
    response body (as read) in :attr:`Attempt.response`, for a caller that must inspect every byte (the
    contract's secret check).

    Every attempt to a URL opens a connection of its own and closes it after the answer, as the portal's
    queue server sends each event as its own POST (facts §1): no connection is ever reused, so a ``reset`` or
    ``refused`` is always the handler's doing, never a stale pooled connection's.
    """

    def __init__(
        self,
        log: DeliveryLog | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        connection_limit: int = 100,
        verify_tls: bool = True,
        handler_threads: int = DEFAULT_HANDLER_THREADS,
        keep_responses: bool = False,
    ) -> None:
        self._timeout = self._check_timeout(timeout, "AsyncDeliverer")
        if max_response_bytes < 0:
            raise UsageError(f"AsyncDeliverer: max_response_bytes must be >= 0, not {max_response_bytes}")
        if max_body_bytes < 0:
            raise UsageError(f"AsyncDeliverer: max_body_bytes must be >= 0, not {max_body_bytes}")
        if connection_limit < 0:
            raise UsageError(f"AsyncDeliverer: connection_limit must be >= 0, not {connection_limit}")
        if not user_agent or any(c in user_agent for c in "\r\n"):
            raise UsageError("AsyncDeliverer: user_agent must be a non-empty single line")
        if isinstance(handler_threads, bool) or not isinstance(handler_threads, int) or handler_threads < 1:
            raise UsageError(
                f"AsyncDeliverer: handler_threads must be a positive int, not {handler_threads!r}"
            )
        self.keep_responses = keep_responses
        self.log = log if log is not None else DeliveryLog()
        self.user_agent = user_agent
        self.max_response_bytes = max_response_bytes
        self.max_body_bytes = max_body_bytes
        self._connection_limit = connection_limit
        self._verify_tls = verify_tls
        self._headers = {"User-Agent": user_agent, "Content-Type": CONTENT_TYPE}
        self._limit: asyncio.Semaphore | None = None
        self._aiohttp: Any = None
        self._threads = HandlerThreads(handler_threads, "mock-portal-handler")
        self._lifespans: dict[int, Lifespan] = {}
        self._closed = False

    @staticmethod
    def _check_timeout(timeout: object, where: str) -> float:
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < float("inf")
        ):
            raise UsageError(f"{where}: timeout must be a positive number of seconds, not {timeout!r}")
        return float(timeout)

    # ---------------------------------------------------------------- public API

    async def deliver(
        self,
        target: str | Target,
        body: bytes | str,
        *,
        event: str | None = None,
        timeout: float | None = None,
    ) -> Attempt:
        """POST ``body`` to ``target`` once; return the recorded :class:`Attempt`. Never raises for a fault.

        ``event`` names the event in the record (read from the body's ``event`` key when omitted);
        ``timeout`` overrides the deliverer's timeout for this attempt.
        """
        return await self._run(self._prepare(target, body, event, timeout, "deliver()"))

    async def deliver_many(
        self, deliveries: Iterable[Delivery | tuple[str | Target, bytes | str]], *, concurrency: int = 10
    ) -> list[Attempt]:
        """Deliver every item with at most ``concurrency`` attempts in flight; attempts in input order.

        Every item is checked before anything is sent: a bad item raises :class:`UsageError`, nothing is sent.
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise UsageError(f"deliver_many(): concurrency must be a positive int, not {concurrency!r}")
        jobs = [self._prepare_item(item, i) for i, item in enumerate(deliveries)]
        results: list[Attempt | None] = [None] * len(jobs)
        pending = iter(enumerate(jobs))

        async def worker() -> None:
            for index, job in pending:
                results[index] = await self._run(job)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))
        return [a for a in results if a is not None]

    def drop(
        self, target: str | Target, body: bytes | str, *, reason: str, event: str | None = None
    ) -> Attempt:
        """Record that the portal decided not to send this event (outcome ``dropped``), and why.

        Nothing is sent. The portal uses it for, e.g., events raised before ``installFinish`` (facts §5).
        """
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("drop(): reason must be a non-empty string saying why the event was not sent")
        tgt = as_target(target, where="drop()")
        payload = self._body(body, "drop()")
        attempt = Attempt(
            id=next_id(),
            event=event if event is not None else event_name(payload),
            target=tgt.description,
            transport=tgt.kind,
            body=payload,
            outcome="dropped",
            status=None,
            latency_ms=0.0,
            started_at=time.time(),
            timeout_s=None,
            reason=redact_text(reason),
        )
        self.log.add(attempt)
        return attempt

    async def aclose(self) -> None:
        """Shut down the lifespans of the ASGI apps called, close the handler threads; later deliveries raise
        :class:`UsageError`."""
        self._closed = True
        lifespans, self._lifespans = list(self._lifespans.values()), {}
        for lifespan in lifespans:
            await lifespan.close(self._timeout)
        self._threads.close()

    async def __aenter__(self) -> AsyncDeliverer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- preparation

    def _body(self, body: object, where: str) -> bytes:
        if isinstance(body, str):
            payload = body.encode("utf-8")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            payload = bytes(body)
        else:
            raise UsageError(
                f"{where}: body must be bytes or str (the encoded form body), not {type(body).__name__}"
            )
        if len(payload) > self.max_body_bytes:
            raise UsageError(
                f"{where}: body is {len(payload)} bytes, over max_body_bytes={self.max_body_bytes}"
            )
        return payload

    def _prepare(
        self, target: object, body: object, event: str | None, timeout: float | None, where: str
    ) -> _Job:
        if self._closed:
            raise UsageError(f"{where}: this deliverer is closed")
        tgt = as_target(target, where=where)  # type: ignore[arg-type]
        payload = self._body(body, where)
        seconds = self._timeout if timeout is None else self._check_timeout(timeout, where)
        if event is not None and not isinstance(event, str):
            raise UsageError(f"{where}: event must be a str, not {type(event).__name__}")
        return _Job(tgt, payload, event if event is not None else event_name(payload), seconds)

    def _prepare_item(self, item: object, index: int) -> _Job:
        where = f"deliver_many() item {index}"
        if isinstance(item, Delivery):
            return self._prepare(item.target, item.body, item.event, item.timeout, where)
        if isinstance(item, tuple) and len(item) == 2:
            return self._prepare(item[0], item[1], None, None, where)
        raise UsageError(f"{where}: expected a Delivery or a (target, body) tuple, not {type(item).__name__}")

    # ---------------------------------------------------------------- running

    async def _run(self, job: _Job) -> Attempt:
        target = job.target
        # one-off costs (importing aiohttp or httpx) stay out of the first attempt's latency
        if isinstance(target, UrlTarget):
            if self._aiohttp is None:
                self._import(defer_ca_store=urlsplit(target.url).scheme.lower() != "https")
        else:
            _import_httpx()
        lifespan = None
        if isinstance(target, AsgiTarget):
            # as a server does, before the app's first request (its startup time is no attempt's latency)
            lifespan = self._lifespans.get(id(target.app))
            if lifespan is None or lifespan.app is not target.app:
                lifespan = self._lifespans[id(target.app)] = Lifespan(target.app)
            await lifespan.start(job.timeout)
        started_at = time.time()
        t0 = time.perf_counter()
        if isinstance(target, UrlTarget):
            result = await self._post(target.url, job.body, job.timeout)
        elif isinstance(target, AsgiTarget):
            assert lifespan is not None
            result = await self._asgi(target, lifespan, job.body, job.timeout)
        elif isinstance(target, WsgiTarget):
            result = await self._wsgi(target, job.body, job.timeout)
        else:
            result = await self._callable(target, job.body, job.timeout)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        data = result.data
        attempt = Attempt(
            id=next_id(),
            event=job.event,
            target=target.description,
            transport=target.kind,
            body=job.body,
            outcome=result.outcome,
            status=result.status,
            latency_ms=latency_ms,
            started_at=started_at,
            timeout_s=job.timeout,
            error=result.error,
            response_bytes=len(data),
            response_excerpt=response_excerpt(data),
            response_truncated=result.truncated,
            response=data if self.keep_responses else b"",
        )
        self.log.add(attempt)
        return attempt

    def _timeout_error(self, seconds: float, status: int | None) -> str:
        if status is None:
            return f"no response within the {seconds:g} s timeout"
        return f"the response did not complete within the {seconds:g} s timeout"

    def _import(self, *, defer_ca_store: bool) -> None:
        # a first target over plain http: aiohttp's default TLS contexts read the CA store on first use
        self._aiohttp = import_aiohttp(defer_ca_store=defer_ca_store)
        if self._connection_limit:
            self._limit = asyncio.Semaphore(self._connection_limit)

    def _new_session(self) -> aiohttp.ClientSession:
        """A client for one attempt. Its connection is closed with it after the answer: the queue server sends
        each event as a POST of its own (facts §1), and a connection kept for a later attempt could be one the
        handler has closed meanwhile, which would show up as a ``reset`` that is not the handler's doing.
        (``force_close`` would also do, but adds a ``Connection: close`` header the portal is not known to
        send.)"""
        aiohttp_mod = self._aiohttp
        connector = aiohttp_mod.TCPConnector(
            limit=1, limit_per_host=0, ssl=None if self._verify_tls else False
        )
        session: aiohttp.ClientSession = aiohttp_mod.ClientSession(
            connector=connector,
            # only the headers we set (see the module docstring): no Accept or Accept-Encoding
            skip_auto_headers=("Accept", "Accept-Encoding"),
            auto_decompress=False,
            cookie_jar=aiohttp_mod.DummyCookieJar(),
            trust_env=False,
        )
        return session

    async def _post(self, url: str, body: bytes, seconds: float) -> Result:
        limit = self._limit
        if limit is None:
            return await self._post_fresh(url, body, seconds, seconds)
        deadline = time.monotonic() + seconds
        try:
            await asyncio.wait_for(limit.acquire(), seconds)
        except asyncio.TimeoutError:
            return Result(
                "timeout",
                None,
                f"not sent within the {seconds:g} s timeout: all {self._connection_limit} connections this "
                "deliverer may open were busy with earlier attempts",
            )
        try:
            return await self._post_fresh(url, body, max(deadline - time.monotonic(), 0.001), seconds)
        finally:
            limit.release()

    async def _post_fresh(self, url: str, body: bytes, left: float, seconds: float) -> Result:
        """POST over a connection of its own, within ``left`` seconds of the attempt's ``seconds``."""
        session = self._new_session()
        status: int | None = None
        try:
            async with session.post(
                url,
                data=body,
                headers=self._headers,
                allow_redirects=False,  # one POST per event, never a redirected GET (module docstring)
                timeout=self._aiohttp.ClientTimeout(total=left),
            ) as response:
                status = response.status
                stream = response.content
                limit = self.max_response_bytes + 1
                chunks: list[bytes] = []
                size = 0
                while size < limit:
                    chunk = await stream.read(limit - size)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if stream.at_eof():
                        break
                data, truncated = cut_to(b"".join(chunks), self.max_response_bytes)
                if truncated:
                    response.close()  # drop the connection instead of reading the rest into the void
                return Result(status_outcome(status), status, None, data, truncated)
        except asyncio.TimeoutError:
            return Result("timeout", status, self._timeout_error(seconds, status))
        except Exception as exc:
            outcome, error = self._classify(exc)
            return Result(outcome, status, error)
        finally:
            await session.close()

    def _classify(self, exc: Exception) -> tuple[Outcome, str]:
        outcome, text = self._classify_raw(exc)
        return outcome, one_line(text)

    def _classify_raw(self, exc: Exception) -> tuple[Outcome, str]:
        aiohttp_mod = self._aiohttp
        if isinstance(exc, aiohttp_mod.ClientConnectorError):
            cause = exc.os_error
            detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or exc)
            return "refused", redact_text(f"could not connect: {detail}")
        if isinstance(exc, aiohttp_mod.ServerDisconnectedError):
            return "reset", "the handler closed the connection without a complete response"
        if isinstance(exc, aiohttp_mod.ClientPayloadError):
            return "reset", redact_text(f"the response body was cut short: {exc}")
        if isinstance(exc, aiohttp_mod.ClientResponseError):
            return "reset", redact_text(f"the handler sent an invalid HTTP response: {exc.message}")
        if isinstance(exc, (aiohttp_mod.ClientError, OSError)):
            return "reset", redact_text(f"connection failed: {type(exc).__name__}: {exc}")
        raise exc

    def _inprocess_headers(self, url: str, body: bytes) -> dict[str, str]:
        # the same four headers a real POST carries, in the order aiohttp writes them
        return {
            "Host": urlsplit(url).netloc,
            **self._headers,
            "Content-Length": str(len(body)),
        }

    async def _asgi(self, target: AsgiTarget, lifespan: Lifespan, body: bytes, seconds: float) -> Result:
        if lifespan.timed_out:
            # a server waits for the startup before it serves: no answer comes
            return Result("timeout", None, f"{self._timeout_error(seconds, None)}; {lifespan.failure}")
        if lifespan.failure is not None:
            # a server whose app fails its startup exits: nothing answers
            return Result("refused", None, redact_text(f"the ASGI app is not serving: {lifespan.failure}"))
        httpx_mod = _import_httpx()
        run = AsgiRun(self.max_response_bytes)
        app = run.wrap(target.app, lifespan.request_state())
        transport = httpx_mod.ASGITransport(app=app, raise_app_exceptions=False)
        request = httpx_mod.Request(
            "POST", target.url, headers=self._inprocess_headers(target.url, body), content=body
        )
        try:
            response = await asyncio.wait_for(transport.handle_async_request(request), seconds)
            await response.aclose()
        except asyncio.TimeoutError:
            return Result("timeout", run.status, self._timeout_error(seconds, run.status), bytes(run.data))
        except AssertionError:
            pass  # httpx's own checks on a misbehaving app (a body after the end); `run` knows what happened
        return run.result()

    async def _wsgi(self, target: WsgiTarget, body: bytes, seconds: float) -> Result:
        httpx_mod = _import_httpx()
        headers = self._inprocess_headers(target.url, body)
        cap = self.max_response_bytes

        def call() -> Result:
            transport = httpx_mod.WSGITransport(app=target.app, raise_app_exceptions=False)
            request = httpx_mod.Request("POST", target.url, headers=headers, content=body)
            try:
                response = transport.handle_request(request)
            except Exception as exc:
                return Result("http_error", 500, f"handler raised {exc_text(exc)}")
            status = response.status_code
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.stream:
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > cap:
                        break
            except Exception as exc:
                data, truncated = cut_to(b"".join(chunks), cap)
                error = f"handler raised {exc_text(exc)}; the response was cut short"
                return Result("reset", status, error, data, truncated)
            finally:
                # the app's close() failing changes nothing that was delivered
                with contextlib.suppress(Exception):
                    response.close()
            data, truncated = cut_to(b"".join(chunks), cap)
            return Result(status_outcome(status), status, None, data, truncated)

        try:
            result: Result = await self._threads.run(call, seconds)
        except NeverStarted as exc:
            return Result("timeout", None, str(exc))
        except asyncio.TimeoutError:
            return Result("timeout", None, self._timeout_error(seconds, None))
        return result

    async def _callable(self, target: CallableTarget, body: bytes, seconds: float) -> Result:
        headers = self._inprocess_headers(target.url, body)
        handler = target.handler
        deadline = time.monotonic() + seconds
        try:
            if target.is_async:
                value = await asyncio.wait_for(self._await(handler(body, headers, target.url)), seconds)
            else:
                value = await self._threads.run(lambda: handler(body, headers, target.url), seconds)
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(
                        self._await(value), max(deadline - time.monotonic(), 0.001)
                    )
        except NeverStarted as exc:
            return Result("timeout", None, str(exc))
        except asyncio.TimeoutError:
            return Result("timeout", None, self._timeout_error(seconds, None))
        except Exception as exc:
            return Result("http_error", 500, f"handler raised {exc_text(exc)}")
        checked = status_from_handler(value)
        if isinstance(checked, str):
            return Result("http_error", 500, checked)
        status, data = checked
        data, truncated = cut_to(data, self.max_response_bytes)
        return Result(status_outcome(status), status, None, data, truncated)

    @staticmethod
    async def _await(value: Any) -> Any:
        return await value
