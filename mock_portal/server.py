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
- ``/_portal/...``: the control API (see :data:`CONTROL_ROUTES`); ``?portal=<domain>`` (or a ``portal`` JSON
  field) picks the portal, the default one otherwise.

No plain ASGI framework earns its place here: the routing is a dozen prefixes, and staying on bare ASGI keeps
the server free of dependencies beyond uvicorn. Portal work (which may deliver events to handlers that call
the REST API back) runs in a thread pool, so the event loop always stays free to answer those calls.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, unquote

from mock_portal.errors import MockPortalError, UsageError
from mock_portal.portal import AUTH_MODES, Clock, Portal, PortalError
from mock_portal.redact import redact, redact_text
from mock_portal.rest import MAX_BODY_BYTES, RestResponse, handle_oauth, handle_rest_path, parse_params

__all__ = ["CONTROL_ROUTES", "PortalApp", "PortalServer", "attempt_to_dict"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/_portal", "describe the server and its portals"),
    ("GET", "/_portal/portals", "list the portals"),
    ("POST", "/_portal/portals", "add a portal {domain?, member_id?, status?, session_events_owner_only?}"),
    ("GET", "/_portal/apps", "list the apps (no secrets)"),
    ("POST", "/_portal/apps", "install an app {install_url?, handlers {EVENT: url}, scopes?, ui?, timeout?}"),
    ("POST", "/_portal/apps/<client_id>/install-finish", "finish a UI app's installation (installFinish)"),
    ("POST", "/_portal/apps/<client_id>/bind", "bind a handler for the app {event, handler}"),
    ("POST", "/_portal/apps/<client_id>/uninstall", "uninstall the app, POSTs ONAPPUNINSTALL {clean?}"),
    ("DELETE", "/_portal/apps/<client_id>", "same as uninstall"),
    (
        "POST",
        "/_portal/sessions",
        "start a session, fires OnSessionStart {connector_id?, line_id?, shape?, auth?}",
    ),
    (
        "POST",
        "/_portal/sessions/<id>/finish",
        "close a session: OnSessionFinish, OnImConnectorDialogFinish to the owner {auth?, timeout?}",
    ),
    (
        "POST",
        "/_portal/messages",
        "an operator writes in an Open Lines chat: OnOpenLineMessageAdd, and out through the connector "
        "OnImConnectorMessageAdd to its owner {chat_id, text, author_id?, timeout?}",
    ),
    (
        "POST",
        "/_portal/messages/<id>/update",
        "edit a message: OnOpenLineMessageUpdate, OnImConnectorMessageUpdate {text, timeout?}",
    ),
    (
        "POST",
        "/_portal/messages/<id>/delete",
        "delete a message: OnOpenLineMessageDelete, OnImConnectorMessageDelete {timeout?}",
    ),
    (
        "POST",
        "/_portal/lines/<id>/delete",
        "delete an open line: OnImConnectorLineDelete to each active connector's owner {timeout?}",
    ),
    (
        "POST",
        "/_portal/connectors/<id>/deactivate",
        "switch a connector off on a line: OnImConnectorStatusDelete to its owner {line_id, timeout?}",
    ),
    (
        "POST",
        "/_portal/apps/<client_id>/update",
        "update the app to its next version: ONAPPUPDATE {new_application_token?, timeout?}",
    ),
    (
        "GET",
        "/_portal/deliveries",
        "delivery attempts, secrets redacted (?event=, ?outcome=; ?min=N&timeout=S waits for N of them)",
    ),
    (
        "GET",
        "/_portal/rest-calls",
        "REST calls, secrets redacted (?method=; ?min=N&timeout=S waits until N calls are recorded)",
    ),
    ("POST", "/_portal/webhooks", "create an incoming webhook {user_id?, scopes?}"),
    ("POST", "/_portal/clock", "advance the portals' clock {advance: seconds}"),
    ("POST", "/_portal/reset", "forget apps, tokens, chats, calls and deliveries"),
)
"""The control API: (HTTP method, path, what it does)."""

_JSON = [(b"content-type", b"application/json; charset=utf-8")]
_APP_FIELDS = frozenset(
    {"portal", "install_url", "handlers", "scopes", "ui", "code", "client_id", "client_secret", "timeout"}
)
_SESSION_FIELDS = frozenset(
    {
        "portal",
        "connector_id",
        "line_id",
        "shape",
        "auth",
        "user_id",
        "external_chat_id",
        "external_user_id",
        "timeout",
    }
)
_PORTAL_FIELDS = frozenset(
    {"domain", "member_id", "status", "session_events_owner_only", "delivery_timeout", "seed"}
)
_MAX_TIMEOUT = 120.0


class _HttpError(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = redact_text(description)


def attempt_to_dict(attempt: Any) -> dict[str, Any]:
    """A delivery attempt as JSON, secrets redacted (uses the attempt's own redacted view when it has one)."""
    for name in ("to_redacted_dict", "redacted", "as_dict", "to_dict"):
        method = getattr(attempt, name, None)
        if callable(method):
            value = method()
            if isinstance(value, Mapping):
                return dict(redact(dict(value)))
    import dataclasses

    if dataclasses.is_dataclass(attempt) and not isinstance(attempt, type):
        return dict(redact(dataclasses.asdict(attempt)))
    return {"repr": redact_text(repr(attempt))}


def _check_fields(body: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in body:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _HttpError(
                400,
                "UNKNOWN_FIELD",
                f"{where}: unknown field {key!r}{hint} (known: {', '.join(sorted(allowed))})",
            )


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _HttpError(400, "BAD_FIELD", f"{key!r} must be a non-empty string, got {value!r}")
    return value


_MAX_WAIT_COUNT = 100_000
_MAX_WAIT_SECONDS = 60.0


def _query_number(
    args: Mapping[str, str],
    key: str,
    kind: Callable[[str], float],
    low: float,
    high: float,
    *,
    default: float | None = None,
) -> Any:
    """A numeric query argument within [low, high], or a 400 naming it."""
    raw = args.get(key)
    if raw is None and default is not None:
        return default
    try:
        value = kind(raw or "")
    except ValueError:
        value = None
    if value is None or value != value or not low <= value <= high:
        raise _HttpError(400, "BAD_QUERY", f"?{key}= takes a number from {low:g} to {high:g}, got {raw!r}")
    return value


def _opt_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or not str(value).isdigit()
        or int(value) <= 0
    ):
        raise _HttpError(400, "BAD_FIELD", f"{key!r} must be a positive integer, got {value!r}")
    return int(value)


def _path_id(raw: str, what: str) -> int:
    """A positive integer id from a control path segment, or a 400 naming it."""
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0 or len(raw) > 18:
        raise _HttpError(400, "BAD_PATH", f"{what} id must be a positive integer, got {raw[:60]!r}")
    return int(raw)


def _deliveries(attempts: Iterable[Any]) -> list[dict[str, Any]]:
    return [attempt_to_dict(a) for a in attempts]


def _opt_timeout(body: Mapping[str, Any]) -> float | None:
    value = body.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= _MAX_TIMEOUT:
        raise _HttpError(400, "BAD_FIELD", f"'timeout' must be a number of seconds in (0, {_MAX_TIMEOUT}]")
    return float(value)


class PortalApp:
    """The ASGI application: REST, OAuth and control API over a set of portals.

    ``base_url`` is where clients reach it (``http://127.0.0.1:PORT``); every portal's ``client_endpoint``,
    ``server_endpoint`` and OAuth URL are pointed under it.
    """

    def __init__(
        self,
        portals: Iterable[Portal] = (),
        *,
        base_url: str = "http://127.0.0.1",
        clock: Clock | None = None,
        workers: int = 64,
    ) -> None:
        self.clock = clock or Clock()
        self.base_url = base_url.rstrip("/")
        self._portals: dict[str, Portal] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mock-portal")
        for portal in portals:
            self.attach(portal)

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
            raise _HttpError(
                404, "PORTAL_NOT_FOUND", f"no portal {domain!r}{hint} (known: {', '.join(known)})"
            )
        return found

    def close(self) -> None:
        """Stop the worker threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

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
            status, payload = await self._route(scope, body, after)
        except _HttpError as exc:
            status, payload = exc.status, {"error": exc.code, "error_description": exc.description}
        except PortalError as exc:
            status, payload = exc.status, {"error": exc.code, "error_description": exc.description}
        except MockPortalError as exc:
            status, payload = 400, {"error": "BAD_REQUEST", "error_description": redact_text(str(exc))}
        except Exception as exc:  # a bug: answer JSON, never a traceback page
            status, payload = 500, {"error": "INTERNAL_SERVER_ERROR", "error_description": type(exc).__name__}
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            await send({"type": "http.response.start", "status": status, "headers": _JSON})
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
                raise _HttpError(413, "REQUEST_TOO_LARGE", f"request body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def _route(
        self, scope: Scope, body: bytes, after: list[Callable[[], None]] | None = None
    ) -> tuple[int, Any]:
        method = str(scope.get("method", "GET")).upper()
        path = unquote(scope.get("path", "/"))
        query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        content_type = headers.get("content-type")
        if path == "/_portal" or path.startswith("/_portal/"):
            return await self._control(method, path, query, body, content_type)
        if path.rstrip("/") == "/oauth/token":
            if method not in ("GET", "POST"):
                raise _HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on /oauth/token/")
            params = parse_params(query, body, content_type)
            response: RestResponse = await self._run(handle_oauth, list(self.portals.values()), params)
            return response.status, response.body
        if method not in ("GET", "POST"):
            raise _HttpError(
                405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on REST paths (GET or POST)"
            )
        if path.startswith("/oauth/rest/"):
            portal = self._portal_of_request(query, body, content_type)
            rest_path = path[len("/oauth/rest/") :]
        elif path.startswith("/rest/"):
            portal, rest_path = self.default, path[len("/rest/") :]
        else:
            domain, _, rest = path.lstrip("/").partition("/")
            if "." not in domain or not rest.startswith("rest/"):
                raise _HttpError(
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
        if after is not None:
            after.append(functools.partial(portal.release_events, pending))
        else:
            portal.release_events(pending)
        return response.status, response.body

    def _portal_of_request(self, query: str, body: bytes, content_type: str | None) -> Portal:
        # the OAuth server's REST endpoint serves every portal: the token says which one
        params = parse_params(query, body, content_type)
        token = params.get("auth")
        for portal in self.portals.values():
            if isinstance(token, str) and token in portal.tokens:
                return portal
        return self.default

    # ------------------------------------------------------------------ control API
    async def _control(
        self, method: str, path: str, query: str, body: bytes, content_type: str | None
    ) -> tuple[int, Any]:
        args = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        data: dict[str, Any] = {}
        if method in ("POST", "DELETE") and body.strip():
            try:
                loaded = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise _HttpError(400, "BAD_JSON", f"the control API takes a JSON object: {exc}") from None
            if not isinstance(loaded, dict):
                raise _HttpError(400, "BAD_JSON", "the control API takes a JSON object")
            data = loaded
        parts = [p for p in path.split("/") if p][1:]  # drop "_portal"
        portal_name = args.get("portal") or (
            data.get("portal") if isinstance(data.get("portal"), str) else None
        )
        if "portal" in data and not isinstance(data["portal"], str):
            raise _HttpError(400, "BAD_FIELD", "'portal' must be a domain string")
        route = (method, *parts[:1])
        if parts == [] and method == "GET":
            return 200, self._describe()
        if route == ("GET", "portals") and len(parts) == 1:
            return 200, [p.describe() for p in self.portals.values()]
        if route == ("POST", "portals") and len(parts) == 1:
            return 201, self._add_portal(data)
        if parts[:1] == ["apps"]:
            return await self._apps(method, parts[1:], data, self.portal(portal_name))
        if route == ("POST", "sessions") and len(parts) == 1:
            return 201, await self._run(self._start_session, self.portal(portal_name), data)
        sibling = self._sibling_action(method, parts)
        if sibling is not None:
            status, answer = await self._run(sibling, self.portal(portal_name), data)
            return int(status), answer
        if route == ("GET", "deliveries") and len(parts) == 1:
            portal = self.portal(portal_name)
            event, outcome = args.get("event"), args.get("outcome")
            if "min" in args:
                count = _query_number(args, "min", int, 1, _MAX_WAIT_COUNT)
                timeout = _query_number(args, "timeout", float, 0, _MAX_WAIT_SECONDS, default=5.0)
                found = await self._run(
                    portal.wait_for_deliveries, event, count=count, timeout=timeout, outcome=outcome
                )
            else:
                found = [a for a in portal.deliveries(event) if outcome is None or a.outcome == outcome]
            return 200, _deliveries(found)
        if route == ("GET", "rest-calls") and len(parts) == 1:
            portal = self.portal(portal_name)
            if "min" not in args:
                return 200, [c.to_dict() for c in portal.calls(args.get("method"))]
            count = _query_number(args, "min", int, 1, _MAX_WAIT_COUNT)
            timeout = _query_number(args, "timeout", float, 0, _MAX_WAIT_SECONDS, default=5.0)
            calls = await self._run(portal.wait_for_calls, args.get("method"), count=count, timeout=timeout)
            return 200, [c.to_dict() for c in calls]
        if route == ("POST", "webhooks") and len(parts) == 1:
            portal = self.portal(portal_name)
            _check_fields(data, frozenset({"portal", "user_id", "scopes"}), "POST /_portal/webhooks")
            user_id = _opt_int(data, "user_id") or 1
            try:
                code = portal.add_webhook(user_id=user_id, scopes=data.get("scopes"))
            except UsageError as exc:
                raise _HttpError(400, "BAD_FIELD", str(exc)) from None
            return 201, {
                "user_id": user_id,
                "code": code,
                "url": f"{portal.client_endpoint}{user_id}/{code}/",
            }
        if route == ("POST", "clock") and len(parts) == 1:
            _check_fields(data, frozenset({"advance"}), "POST /_portal/clock")
            seconds = data.get("advance", 0)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                raise _HttpError(
                    400, "BAD_FIELD", f"'advance' must be a number of seconds >= 0, got {seconds!r}"
                )
            return 200, {"now": self.clock.advance(seconds)}
        if route == ("POST", "reset") and len(parts) == 1:
            targets = [self.portal(portal_name)] if portal_name else list(self.portals.values())
            for portal in targets:
                portal.reset()
            return 200, {"reset": [p.domain for p in targets]}
        known = {p for _, p, _ in CONTROL_ROUTES}
        template = "/_portal/" + "/".join(parts[:1])
        if template in known or template.rstrip("/") == "/_portal":
            raise _HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path[:200]}")
        raise _HttpError(404, "NOT_FOUND", f"no control route {path[:200]!r}; GET /_portal lists them")

    # ------------------------------------------------------------------ sibling event triggers
    def _sibling_action(
        self, method: str, parts: list[str]
    ) -> Callable[[Portal, Mapping[str, Any]], tuple[int, Any]] | None:
        """The control action for a sibling event's moment (facts §4, §5), or None if the path is not one."""
        if method != "POST":
            return None
        if parts == ["messages"]:
            return self._operator_message
        if len(parts) != 3:
            return None
        kind, raw, action = parts
        actions: dict[tuple[str, str], Callable[[Portal, Mapping[str, Any], str], tuple[int, Any]]] = {
            ("sessions", "finish"): self._finish_session,
            ("messages", "update"): self._update_message,
            ("messages", "delete"): self._delete_message,
            ("lines", "delete"): self._delete_line,
            ("connectors", "deactivate"): self._deactivate_connector,
        }
        found = actions.get((kind, action))
        return None if found is None else functools.partial(_with_path_id, found, raw)

    def _finish_session(self, portal: Portal, data: Mapping[str, Any], raw: str) -> tuple[int, Any]:
        _check_fields(data, frozenset({"portal", "auth", "timeout"}), "POST /_portal/sessions/<id>/finish")
        session_id = _path_id(raw, "session")
        auth = data.get("auth")
        if auth is not None and auth not in AUTH_MODES:
            raise _HttpError(400, "BAD_FIELD", f"'auth' must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        attempts = portal.finish_session(session_id, auth=auth, timeout=_opt_timeout(data))
        return 200, {"session_id": session_id, "closed": True, "deliveries": _deliveries(attempts)}

    def _operator_message(self, portal: Portal, data: Mapping[str, Any]) -> tuple[int, Any]:
        _check_fields(
            data, frozenset({"portal", "chat_id", "text", "author_id", "timeout"}), "POST /_portal/messages"
        )
        chat_id = data.get("chat_id")
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            chat_id = f"chat{chat_id}"
        if not isinstance(chat_id, str) or not chat_id:
            raise _HttpError(400, "BAD_FIELD", f"'chat_id' must be a chat id or 'chat<ID>', got {chat_id!r}")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {text!r}")
        author_id = _opt_int(data, "author_id") or 1
        chat = portal.chat(chat_id)
        message, attempts = portal.send_operator_message(
            chat.dialog_id, text, author_id=author_id, timeout=_opt_timeout(data)
        )
        return 201, {"message_id": message.id, "chat_id": chat.id, "deliveries": _deliveries(attempts)}

    def _update_message(self, portal: Portal, data: Mapping[str, Any], raw: str) -> tuple[int, Any]:
        return self._change_message(portal, data, raw, delete=False)

    def _delete_message(self, portal: Portal, data: Mapping[str, Any], raw: str) -> tuple[int, Any]:
        return self._change_message(portal, data, raw, delete=True)

    def _change_message(
        self, portal: Portal, data: Mapping[str, Any], raw: str, *, delete: bool
    ) -> tuple[int, Any]:
        where = f"POST /_portal/messages/<id>/{'delete' if delete else 'update'}"
        _check_fields(data, frozenset({"portal", "timeout"} | ({"text"} if not delete else set())), where)
        message_id = _path_id(raw, "message")
        text = data.get("text")
        if not delete and (not isinstance(text, str) or not text.strip()):
            raise _HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {text!r}")
        attempts = portal.change_message(message_id, text, delete=delete, timeout=_opt_timeout(data))
        return 200, {"message_id": message_id, "deleted": delete, "deliveries": _deliveries(attempts)}

    def _delete_line(self, portal: Portal, data: Mapping[str, Any], raw: str) -> tuple[int, Any]:
        _check_fields(data, frozenset({"portal", "timeout"}), "POST /_portal/lines/<id>/delete")
        line_id = _path_id(raw, "line")
        attempts = portal.delete_line(line_id, timeout=_opt_timeout(data))
        return 200, {"line_id": line_id, "deleted": True, "deliveries": _deliveries(attempts)}

    def _deactivate_connector(self, portal: Portal, data: Mapping[str, Any], raw: str) -> tuple[int, Any]:
        _check_fields(
            data, frozenset({"portal", "line_id", "timeout"}), "POST /_portal/connectors/<id>/deactivate"
        )
        line_id = _opt_int(data, "line_id")
        if line_id is None:
            raise _HttpError(
                400, "BAD_FIELD", "'line_id' is required: the line to switch the connector off on"
            )
        if raw not in portal.connectors:
            known = ", ".join(sorted(portal.connectors)) or "none"
            raise _HttpError(404, "CONNECTOR_NOT_FOUND", f"no connector {raw[:60]!r} (registered: {known})")
        attempts = portal.deactivate_connector(raw, line_id, timeout=_opt_timeout(data))
        return 200, {"connector": raw, "line_id": line_id, "deliveries": _deliveries(attempts)}

    def _update_app(self, portal: Portal, client_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        _check_fields(data, frozenset({"portal", "new_application_token", "timeout"}), "app update")
        renew = data.get("new_application_token", False)
        if not isinstance(renew, bool):
            raise _HttpError(
                400, "BAD_FIELD", f"'new_application_token' must be true or false, got {renew!r}"
            )
        app, attempts = portal.update_app(client_id, new_application_token=renew, timeout=_opt_timeout(data))
        return {
            "client_id": app.client_id,
            "version": app.version,
            "application_token": app.application_token,
            "deliveries": _deliveries(attempts),
        }

    def _describe(self) -> dict[str, Any]:
        return {
            "url": self.base_url,
            "oauth_url": f"{self.base_url}/oauth/token/",
            "now": self.clock.now(),
            "portals": [p.describe() for p in self.portals.values()],
            "routes": [{"method": m, "path": p, "help": h} for m, p, h in CONTROL_ROUTES],
        }

    def _add_portal(self, data: Mapping[str, Any]) -> dict[str, Any]:
        _check_fields(data, _PORTAL_FIELDS, "POST /_portal/portals")
        domain = _opt_str(data, "domain")
        if domain is not None and ("." not in domain or "/" in domain or len(domain) > 253):
            raise _HttpError(400, "BAD_FIELD", f"'domain' must be a host name with a dot, got {domain!r}")
        options: dict[str, Any] = {}
        member_id = _opt_str(data, "member_id")
        if member_id is not None:
            options["member_id"] = member_id
        status = _opt_str(data, "status")
        if status is not None:
            if status not in ("L", "F", "D", "T", "P", "S"):
                raise _HttpError(
                    400, "BAD_FIELD", f"'status' must be one of L F D T P S (facts §2), got {status!r}"
                )
            options["status"] = status
        if "session_events_owner_only" in data:
            options["session_events_owner_only"] = bool(data["session_events_owner_only"])
        if "delivery_timeout" in data:
            options["delivery_timeout"] = _opt_timeout({"timeout": data["delivery_timeout"]})
        if "seed" in data:
            options["seed"] = _opt_int(data, "seed")
        try:
            portal = self.add_portal(domain, **options)
        except UsageError as exc:
            raise _HttpError(409, "PORTAL_EXISTS", str(exc)) from None
        return portal.describe()

    async def _apps(
        self, method: str, rest: list[str], data: dict[str, Any], portal: Portal
    ) -> tuple[int, Any]:
        if not rest and method == "GET":
            return 200, [app.public() for app in portal.apps.values()]
        if not rest and method == "POST":
            return 201, await self._run(self._install, portal, data)
        if not rest:
            raise _HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on /_portal/apps")
        client_id = rest[0]
        action = rest[1] if len(rest) > 1 else None
        if len(rest) > 2:
            raise _HttpError(404, "NOT_FOUND", "no such app route")
        if action is None and method == "GET":
            app = portal.app(client_id)
            return 200, {**app.public(), "bindings": [b.public() for b in portal.bindings_of(client_id)]}
        if (action is None and method == "DELETE") or (action == "uninstall" and method == "POST"):
            _check_fields(data, frozenset({"portal", "clean", "timeout"}), "uninstall")
            attempts = await self._run(
                portal.uninstall_app, client_id, clean=bool(data.get("clean")), timeout=_opt_timeout(data)
            )
            return 200, {"client_id": client_id, "deliveries": [attempt_to_dict(a) for a in attempts]}
        if action == "install-finish" and method == "POST":
            app = portal.install_finish(client_id)
            return 200, app.public()
        if action == "update" and method == "POST":
            return 200, await self._run(self._update_app, portal, client_id, data)
        if action == "bind" and method == "POST":
            _check_fields(data, frozenset({"portal", "event", "handler"}), "bind")
            binding = portal.bind(client_id, data.get("event"), data.get("handler"))
            return 201, {"event_handler_id": binding.id, **binding.public()}
        raise _HttpError(404, "NOT_FOUND", f"no app route {method} .../{'/'.join(rest)[:200]}")

    def _install(self, portal: Portal, data: Mapping[str, Any]) -> dict[str, Any]:
        _check_fields(data, _APP_FIELDS, "POST /_portal/apps")
        install_url = _opt_str(data, "install_url")
        handlers = data.get("handlers") or {}
        if not isinstance(handlers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in handlers.items()
        ):
            raise _HttpError(400, "BAD_FIELD", "'handlers' must be an object {EVENT: url}")
        scopes = data.get("scopes")
        if scopes is not None and not (
            isinstance(scopes, str) or (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes))
        ):
            raise _HttpError(
                400, "BAD_FIELD", "'scopes' must be a comma-separated string or a list of strings"
            )
        ui = data.get("ui", False)
        if not isinstance(ui, bool):
            raise _HttpError(400, "BAD_FIELD", f"'ui' must be true or false, got {ui!r}")
        app, token, attempts = portal.install_app(
            install_url,
            handlers=handlers,
            scopes=scopes,
            ui=ui,
            code=_opt_str(data, "code"),
            client_id=_opt_str(data, "client_id"),
            client_secret=_opt_str(data, "client_secret"),
            timeout=_opt_timeout(data),
        )
        return {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "application_token": app.application_token,
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "expires_in": token.expires_in,
            "member_id": portal.member_id,
            "domain": portal.domain,
            "client_endpoint": portal.client_endpoint,
            "server_endpoint": portal.server_endpoint,
            "oauth_url": portal.oauth_url,
            "scopes": list(app.scopes),
            "ui": app.ui,
            "installed": app.installed,
            "bindings": [{"event_handler_id": b.id, **b.public()} for b in portal.bindings_of(app.client_id)],
            "deliveries": [attempt_to_dict(a) for a in attempts],
        }

    def _start_session(self, portal: Portal, data: Mapping[str, Any]) -> dict[str, Any]:
        _check_fields(data, _SESSION_FIELDS, "POST /_portal/sessions")
        auth = data.get("auth")
        if auth is not None and auth not in AUTH_MODES:
            raise _HttpError(400, "BAD_FIELD", f"'auth' must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        shape = _opt_str(data, "shape")
        if shape is not None:
            _check_shape(shape)
        started = portal.start_session(
            connector_id=_opt_str(data, "connector_id") or "livechat",
            line_id=_opt_int(data, "line_id"),
            user_id=_opt_int(data, "user_id"),
            external_chat_id=_opt_str(data, "external_chat_id"),
            external_user_id=_opt_str(data, "external_user_id"),
            shape=shape,
            auth=auth,
            timeout=_opt_timeout(data),
        )
        return {
            "session_id": started.session.id,
            "chat_id": started.chat.id,
            "dialog_id": started.chat.dialog_id,
            "line_id": started.chat.line_id,
            "connector_id": started.chat.connector_id,
            "user_id": started.chat.user_id,
            "deliveries": [attempt_to_dict(a) for a in started.attempts],
        }


def _rest_deferred(portal: Portal, rest_path: str, **options: Any) -> tuple[RestResponse, list[Any]]:
    """Run a REST call and keep the events it raises, for release once the response is sent."""
    with portal.deferring_events(release=False) as pending:
        response = handle_rest_path(portal, rest_path, **options)
    return response, pending


def _with_path_id(
    action: Callable[[Portal, Mapping[str, Any], str], tuple[int, Any]],
    raw: str,
    portal: Portal,
    data: Mapping[str, Any],
) -> tuple[int, Any]:
    return action(portal, data, raw)


def _check_shape(shape: str) -> None:
    from mock_portal import events

    known = getattr(events, "SHAPES", None)
    if known is not None and shape not in known:
        close = difflib.get_close_matches(shape, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _HttpError(400, "BAD_FIELD", f"unknown shape {shape!r}{hint} (known: {', '.join(known)})")


class PortalServer:
    """Serve a :class:`PortalApp` with uvicorn on ``host:port`` (127.0.0.1 and a free port by default).

    Use it as a context manager (``with PortalServer() as srv``) or call :meth:`start` / :meth:`stop`; the
    CLI calls :meth:`serve_forever`. The listening socket is bound before the server thread starts, so
    :attr:`url` is right (and connections queue) the moment :meth:`start` returns.
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
    ) -> None:
        self.host = host
        self.requested_port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.app = PortalApp(list(portals or ()), clock=clock)
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
        import uvicorn

        ready = threading.Event()

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                ready.set()

        config = uvicorn.Config(
            self.app, log_level=self.log_level, lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
        server = _Server(config)
        server._portal_ready = ready  # type: ignore[attr-defined]
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
            self._server.should_exit = True
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
