"""The mock portal over real HTTP: a plain ASGI app served by uvicorn on 127.0.0.1, in a background thread.

::

    with PortalServer() as srv:
        srv.url                      # http://127.0.0.1:<free port>
        srv.portal.client_endpoint   # http://127.0.0.1:<port>/<domain>/rest/
        requests.post(srv.url + "/_portal/apps", json={"install_url": ..., "handlers": {...}})

Routes (several portals live in one server, each under its domain):

- ``/<domain>/rest/<method>[.json]`` and ``/<domain>/rest/<user>/<code>/<method>`` (webhooks); ``/rest/...``
  answers for the first (default) portal. GET or POST, form or JSON params, token in ``auth``.
- ``/oauth/token/``: the OAuth server (``grant_type=refresh_token``), shared by every portal as Bitrix's is;
  ``/oauth/rest/<method>``: REST through the OAuth server (the events' ``server_endpoint``).
- ``/_portal/...``: the control API (:mod:`mock_portal.control`); ``?portal=<domain>`` (or a ``portal`` JSON
  field) picks the portal, the default one otherwise. With a control token (required off loopback), it
  answers only requests carrying ``Authorization: Bearer <token>``; the REST side stays open, as a real
  portal's is.

No plain ASGI framework earns its place here: the routing is a dozen prefixes, and staying on bare ASGI keeps
the server free of dependencies beyond uvicorn. Portal work (which may deliver events to handlers that call
the REST API back) runs in a thread pool, so the event loop always stays free to answer those calls.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import hmac
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from mock_portal.control_answers import Answer, HttpError, attempt_to_dict
from mock_portal.errors import MockPortalError, UsageError
from mock_portal.jsonio import encode_json
from mock_portal.portal import Clock, Portal, PortalError
from mock_portal.records import DEFAULT_MAX_BYTES
from mock_portal.redact import redact_text
from mock_portal.rest import MAX_BODY_BYTES, RestResponse, handle_oauth, handle_rest_path, parse_params

if TYPE_CHECKING:
    from mock_portal.control import ControlApi
    from mock_portal.control_routes import CONTROL_ROUTES

__all__ = ["CONTROL_ROUTES", "PortalApp", "PortalServer", "attempt_to_dict", "is_loopback"]


def __getattr__(name: str) -> Any:
    # CONTROL_ROUTES comes with the control API's routes, loaded on first need
    if name == "CONTROL_ROUTES":
        from mock_portal.control_routes import CONTROL_ROUTES

        return CONTROL_ROUTES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = (b"content-type", b"application/json; charset=utf-8")


def _error(status: int, code: str, description: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, {"error": code, "error_description": description}, headers=headers)


def is_loopback(host: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1) or ``localhost``; other names are not resolved."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class PortalApp:
    """The ASGI application: REST, OAuth and control API over a set of portals.

    ``base_url`` is where clients reach it (``http://127.0.0.1:PORT``); every portal's ``client_endpoint``,
    ``server_endpoint`` and OAuth URL are pointed under it. ``control_token``, when set, is demanded of every
    control request (``Authorization: Bearer <token>``). ``max_record_bytes`` caps the estimated memory of
    each portal's recorded REST calls and deliveries (the oldest are dropped past it, and counted).
    """

    def __init__(
        self,
        portals: Iterable[Portal] = (),
        *,
        base_url: str = "http://127.0.0.1",
        clock: Clock | None = None,
        workers: int = 64,
        control_token: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if control_token is not None and (not isinstance(control_token, str) or len(control_token) < 16):
            raise UsageError("a control token must be a string of at least 16 characters")
        self.clock = clock or Clock()
        self.base_url = base_url.rstrip("/")
        self.control_token = control_token
        self.max_record_bytes = max_record_bytes
        self.closing = False
        """Set when the server stops: pending long polls answer at once with what they have."""
        self._portals: dict[str, Portal] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mock-portal")
        self._control: ControlApi | None = None
        for portal in portals:
            self.attach(portal)

    @property
    def control(self) -> ControlApi:
        """The control API (``/_portal/...``), loaded with the first control request: a run that never
        makes one (the contract's) never loads its routes, checks and handlers."""
        control = self._control
        if control is None:
            from mock_portal.control import ControlApi

            with self._lock:
                if self._control is None:
                    self._control = ControlApi(self)
                control = self._control
        return control

    # ------------------------------------------------------------------ portals
    @property
    def portals(self) -> dict[str, Portal]:
        """Portals by domain, the default one first."""
        with self._lock:
            return dict(self._portals)

    @property
    def default(self) -> Portal:
        """The first portal (answers ``/rest/...``); one is created when none exists."""
        with self._lock:
            if not self._portals:
                self._attach_locked(Portal(clock=self.clock))
            return next(iter(self._portals.values()))

    def attach(self, portal: Portal) -> Portal:
        """Serve ``portal`` here (its endpoints are pointed at this server)."""
        with self._lock:
            return self._attach_locked(portal)

    def _attach_locked(self, portal: Portal) -> Portal:
        if portal.domain in self._portals:
            raise UsageError(f"a portal with domain {portal.domain!r} is already served here")
        self._portals[portal.domain] = portal
        portal.records.set_limits(max_bytes=self.max_record_bytes)
        self._point(portal)
        return portal

    def _point(self, portal: Portal) -> None:
        portal.set_endpoints(
            client_endpoint=f"{self.base_url}/{portal.domain}/rest/",
            server_endpoint=f"{self.base_url}/oauth/rest/",
            oauth_url=f"{self.base_url}/oauth/token/",
        )

    def set_base_url(self, base_url: str) -> None:
        """Change where the app is reached (once the port is known) and re-point every portal."""
        with self._lock:
            self.base_url = base_url.rstrip("/")
            for portal in self._portals.values():
                self._point(portal)

    def add_portal(self, domain: str | None = None, **options: Any) -> Portal:
        """Create a portal sharing this server's clock, and serve it."""
        options.setdefault("clock", self.clock)
        return self.attach(Portal(domain, **options))

    def portal(self, domain: str | None) -> Portal:
        """The portal with ``domain`` (the default one for None), or a 404."""
        if domain is None:
            return self.default
        found = self.portals.get(domain)
        if found is None:
            known = list(self.portals)
            close = difflib.get_close_matches(domain, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise HttpError(
                404, "PORTAL_NOT_FOUND", f"no portal {domain[:100]!r}{hint} (known: {', '.join(known)})"
            )
        return found

    def wake_waiters(self) -> None:
        """End every pending long poll (``?min=&timeout=``) now: the server is stopping."""
        self.closing = True
        for portal in self.portals.values():
            portal.records.notify()

    def close(self) -> None:
        """Stop the worker threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run blocking portal work (deliveries, serialization) in the worker pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    _run = run

    def describe(self) -> dict[str, Any]:
        """The server, its portals (with their record counts, dropped ones too) and the control routes."""
        from mock_portal.control_routes import CONTROL_ROUTES

        portals = [p.describe() for p in self.portals.values()]
        return {
            "url": self.base_url,
            "oauth_url": f"{self.base_url}/oauth/token/",
            "now": self.clock.now(),
            "control_token_required": self.control_token is not None,
            "dropped_records": sum(sum(p["records"]["dropped"].values()) for p in portals),
            "max_record_bytes": self.max_record_bytes,
            "portals": portals,
            "routes": [{"method": m, "path": p, "help": h} for m, p, h in CONTROL_ROUTES],
        }

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        after: list[Callable[[], None]] = []
        try:
            body = await self._read_body(receive)
            answer = await self._route(scope, body, after)
        except HttpError as exc:
            answer = _error(exc.status, exc.code, exc.description, exc.headers)
        except PortalError as exc:
            answer = _error(exc.status, exc.code, exc.description)
        except MockPortalError as exc:
            answer = _error(400, "BAD_REQUEST", redact_text(str(exc)))
        except Exception as exc:  # a bug: answer JSON, never a traceback page
            answer = _error(500, "INTERNAL_SERVER_ERROR", type(exc).__name__)
        data = answer.raw if answer.raw is not None else encode_json(answer.body)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        if not any(name == b"content-type" for name, _ in headers):  # JSON unless the answer says otherwise
            headers.insert(0, _JSON)
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": data})
        finally:
            for release in after:  # events a REST call raised go out once its response is sent (facts §1)
                release()

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise HttpError(413, "REQUEST_TOO_LARGE", f"request body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _route(self, scope: Scope, body: bytes, after: list[Callable[[], None]]) -> Answer:
        method = str(scope.get("method", "GET")).upper()
        path = unquote(scope.get("path", "/"))
        query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        content_type = headers.get("content-type")
        if path == "/_portal" or path.startswith("/_portal/"):
            if not self.control.is_public(method, path):  # the inspector's files hold no data
                self._authorize(headers.get("authorization"))
            return await self.control.handle(method, path, query, body)
        if path.rstrip("/") == "/oauth/token":
            if method not in ("GET", "POST"):
                raise HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on /oauth/token/")
            params = parse_params(query, body, content_type)
            response: RestResponse = await self._run(handle_oauth, list(self.portals.values()), params)
            return Answer(response.status, response.body)
        if method not in ("GET", "POST"):
            raise HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on REST paths (GET or POST)")
        if path.startswith("/oauth/rest/"):
            portal = self._portal_of_request(query, body, content_type)
            rest_path = path[len("/oauth/rest/") :]
        elif path.startswith("/rest/"):
            portal, rest_path = self.default, path[len("/rest/") :]
        else:
            domain, _, rest = path.lstrip("/").partition("/")
            if "." not in domain or not rest.startswith("rest/"):
                raise HttpError(
                    404, "NOT_FOUND", f"no route for {path[:200]!r}; REST is under /<domain>/rest/"
                )
            portal, rest_path = self.portal(domain), rest[len("rest/") :]
        response, pending = await self._run(
            _rest_deferred,
            portal,
            rest_path,
            http_method=method,
            query=query,
            body=body,
            content_type=content_type,
        )
        after.append(functools.partial(portal.release_events, pending))
        return Answer(response.status, response.body)

    def _authorize(self, header: str | None) -> None:
        """Demand the control token, when there is one (constant-time comparison)."""
        if self.control_token is None:
            return
        scheme, _, given = (header or "").partition(" ")
        expected = self.control_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HttpError(
                401,
                "CONTROL_TOKEN_REQUIRED",
                "the control API needs 'Authorization: Bearer <control token>' (printed at start-up)",
                headers=(("www-authenticate", 'Bearer realm="mock-portal control"'),),
            )

    def _portal_of_request(self, query: str, body: bytes, content_type: str | None) -> Portal:
        # the OAuth server's REST endpoint serves every portal: the token says which one
        params = parse_params(query, body, content_type)
        token = params.get("auth")
        for portal in self.portals.values():
            if isinstance(token, str) and token in portal.tokens:
                return portal
        return self.default


def _rest_deferred(portal: Portal, rest_path: str, **options: Any) -> tuple[RestResponse, list[Any]]:
    """Run a REST call and keep the events it raises, for release once the response is sent."""
    with portal.deferring_events(release=False) as pending:
        response = handle_rest_path(portal, rest_path, **options)
    return response, pending


class PortalServer:
    """Serve a :class:`PortalApp` with uvicorn on ``host:port`` (127.0.0.1 and a free port by default).

    Use it as a context manager (``with PortalServer() as srv``) or call :meth:`start` / :meth:`stop`; the
    CLI calls :meth:`serve_forever`. The listening socket is bound before the server thread starts, so
    :attr:`url` is right (and connections queue) the moment :meth:`start` returns.

    Off loopback a ``control_token`` is required (the control API can make the portal POST anywhere): a
    non-loopback ``host`` without one raises :class:`~mock_portal.errors.UsageError` before anything binds.
    """

    def __init__(
        self,
        portals: Iterable[Portal] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        log_level: str = "warning",
        startup_timeout: float = 30.0,
        control_token: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not is_loopback(host) and control_token is None:
            raise UsageError(
                f"{host} is not a loopback address: anyone who reaches it could drive the portal; "
                "give a control token (mock-portal serve generates one)"
            )
        self.host = host
        self.requested_port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.app = PortalApp(
            list(portals or ()), clock=clock, control_token=control_token, max_record_bytes=max_record_bytes
        )
        self.clock = self.app.clock
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop_requested = False

    # ------------------------------------------------------------------ facade
    @property
    def url(self) -> str:
        """The server's base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._socket is None:
            raise UsageError("the server is not started")
        return self.app.base_url

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._socket is None:
            raise UsageError("the server is not started")
        return int(self._socket.getsockname()[1])

    @property
    def portal(self) -> Portal:
        """The default portal (created on first use)."""
        return self.app.default

    @property
    def portals(self) -> dict[str, Portal]:
        """Every portal served, by domain."""
        return self.app.portals

    def add_portal(self, domain: str | None = None, **options: Any) -> Portal:
        """Create and serve another portal (own domain, member_id, tokens and REST URL)."""
        return self.app.add_portal(domain, **options)

    @property
    def oauth_url(self) -> str:
        """The OAuth server's token URL."""
        return f"{self.url}/oauth/token/"

    # ------------------------------------------------------------------ lifecycle
    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when it sees TCP there,
        # and without it each response pays Nagle's delay against the client's delayed ACK (about 40 ms)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise UsageError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror}") from None
        sock.listen(1024)
        sock.setblocking(False)
        self._socket = sock
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.app.set_base_url(f"http://{host}:{sock.getsockname()[1]}")
        return sock

    def _make_server(self) -> Any:
        from mock_portal._uvicorn import make_server

        ready = threading.Event()
        server = make_server(
            self.app, log_level=self.log_level, on_ready=ready.set, on_shutdown=self.app.wake_waiters
        )
        server._portal_ready = ready
        return server

    def start(self) -> PortalServer:
        """Start serving in a background thread; return self."""
        if self._thread is not None:
            raise UsageError("the server is already started")
        sock = self._bind()
        self.app.default  # noqa: B018 - create the default portal now, so its endpoints are set
        self._server = self._make_server()

        def run() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as exc:  # reported by start() or stop()
                self._error = exc
                self._server._portal_ready.set()

        self._thread = threading.Thread(target=run, name="mock-portal-server", daemon=True)
        self._thread.start()
        if not self._server._portal_ready.wait(self.startup_timeout) or self._error is not None:
            self.stop()
            raise UsageError(f"the portal server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        if self._server is not None:
            from mock_portal._uvicorn import wake

            self._server.should_exit = True
            wake(self._server)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._server = None
        if self._socket is not None:
            self._socket.close()
        self.app.close()

    def serve_forever(self, on_ready: Callable[[PortalServer], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C / SIGTERM); used by ``mock-portal serve``.

        ``on_ready`` is called once the socket listens (connections made from then on are queued).
        """
        sock = self._bind()
        self.app.default  # noqa: B018
        self._server = self._make_server()
        self._server.should_exit = self._stop_requested
        if on_ready is not None:
            on_ready(self)
        try:
            self._server.run(sockets=[sock])
        finally:
            sock.close()
            self.app.close()

    def request_stop(self) -> None:
        """Ask a running (or starting) server to stop; safe from a signal handler."""
        self._stop_requested = True
        if self._server is not None:
            self._server.should_exit = True

    def __enter__(self) -> PortalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
