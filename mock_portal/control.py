"""The control API (``/_portal/...``): dispatch over the declared routes, input checks, the handlers.

Every route is declared once in :data:`mock_portal.control_routes.ROUTES` with the schema of its body and
query: unknown fields get a did-you-mean, wrong types and out-of-range numbers a 400 naming the field, all
before anything changes.

Listings (portals, apps, deliveries, REST calls) are paginated: ``?limit=`` (default
:data:`DEFAULT_LIMIT`) and ``?after=`` (the cursor of the previous page). The body stays a JSON list; the
next page's URL is in a ``Link: <...>; rel="next"`` header (and its cursor in ``X-Next-After``); the
``X-Cursor`` header says where the page stopped, to ask later for what arrives after it. Deliveries and REST
calls come from the portals' record stores (:mod:`mock_portal.records`), JSON made once when recorded; a
page is joined off the event loop, and ``?min=N&timeout=S`` waits on the loop without holding a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode

from mock_portal import control_routes, inspector
from mock_portal.control_robots import RobotControls
from mock_portal.control_routes import (
    CONTROL_ROUTES,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ROUTES,
    Route,
    body_schema,
    openapi_document,
    query_schema,
)
from mock_portal.errors import UsageError
from mock_portal.jsonio import JsonInputError, loads_strict
from mock_portal.portal import Portal
from mock_portal.records import CALLS, DELIVERIES, Page, delivery_tags
from mock_portal.redact import redact, redact_text

if TYPE_CHECKING:
    from mock_portal.server import PortalApp

__all__ = [
    "CONTROL_ROUTES",
    "DEFAULT_LIMIT",
    "ROUTES",
    "Answer",
    "ControlApi",
    "HttpError",
    "Route",
    "attempt_to_dict",
    "openapi_document",
]

MAX_PAGE_BYTES: Final = 8 << 20
"""A page stops before it passes this much JSON (it always holds one record)."""
MAX_CONTROL_BODY: Final = 64 * 1024
MAX_BODY_DEPTH: Final = 16
MAX_PORTALS: Final = 256

# ---------------------------------------------------------------------------------------------- answers


class HttpError(Exception):
    """A request refused with a status, a Bitrix-style error code and a description (secrets redacted)."""

    def __init__(
        self, status: int, code: str, description: str, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = redact_text(description)
        self.headers = headers


@dataclass(frozen=True)
class Answer:
    """A control answer: a JSON-able ``body``, or ready JSON bytes in ``raw``, and extra headers."""

    status: int
    body: Any = None
    raw: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Request:
    route: Route
    params: dict[str, str]
    args: dict[str, str]
    data: dict[str, Any]
    path: str

    @property
    def portal_name(self) -> str | None:
        name = self.args.get("portal") or self.data.get("portal")
        return name if isinstance(name, str) else None


def _check_fields(data: Mapping[str, Any], allowed: Mapping[str, Any], where: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(allowed)) or "none"
            raise HttpError(
                400, "UNKNOWN_FIELD", f"{where}: unknown field {str(key)[:60]!r}{hint} (known: {known})"
            )


@functools.cache
def _validator(schema_key: tuple[str, str, str]) -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    method, path, part = schema_key
    route = next(r for r in ROUTES if (r.method, r.path) == (method, path))
    if part == "body":
        return Draft202012Validator(body_schema(route))
    return Draft202012Validator(query_schema(route))


def _check_schema(route: Route, part: str, value: Mapping[str, Any]) -> None:
    """Refuse ``value`` (the body or the query) when it breaks the route's schema, quoting what the field must
    be (its schema's description)."""
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    error = best_match(_validator((route.method, route.path, part)).iter_errors(value))
    if error is None:
        return
    fields = route.query if part == "query" else (route.body or {})
    if error.validator == "required":
        name = next((n for n in route.required if n not in value), "?")
        got = "it is missing"
    else:
        name = str(error.absolute_path[0]) if error.absolute_path else "?"
        got = f"got {_shown(value.get(name))}"
    expected = str(fields.get(name, {}).get("description", "valid"))
    if part == "query":
        raise HttpError(400, "BAD_QUERY", f"?{name}= takes {expected}, {got}")
    if error.validator == "required":
        raise HttpError(400, "BAD_FIELD", f"'{name}' is required: '{name}' must be {expected}")
    raise HttpError(400, "BAD_FIELD", f"'{name}' must be {expected}, {got}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed_query(route: Route, raw: Mapping[str, str]) -> dict[str, Any]:
    """Query values converted to the types their schemas declare (so the schema can check ranges)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kind = route.query.get(key, {}).get("type")
        if kind in ("integer", "number"):
            try:
                if len(value) > 40:
                    raise ValueError(value)
                number: float = int(value) if kind == "integer" else float(value)
            except ValueError:
                raise HttpError(
                    400,
                    "BAD_QUERY",
                    f"?{key}= takes {route.query[key].get('description', 'a number')}, got {value[:40]!r}",
                ) from None
            if number != number or number in (float("inf"), float("-inf")):
                raise HttpError(400, "BAD_QUERY", f"?{key}= takes a finite number, got {value[:40]!r}")
            out[key] = number
        else:
            out[key] = value
    return out


def _path_id(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15 or int(raw) <= 0:
        raise HttpError(400, "BAD_PATH", f"{what} id must be a positive integer, got {raw[:60]!r}")
    return int(raw)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _page_answer(page: Page, path: str, args: Mapping[str, Any]) -> Answer:
    headers: list[tuple[str, str]] = []
    if page.cursor is not None:
        headers.append(("x-cursor", str(page.cursor)))
    if page.next is not None:
        query = urlencode(
            {**{k: v for k, v in args.items() if k not in ("after", "min", "timeout")}, "after": page.next}
        )
        headers.append(("link", f'<{path}?{query}>; rel="next"'))
        headers.append(("x-next-after", str(page.next)))
    return Answer(200, raw=page.json(), headers=tuple(headers))


def _listing_page(items: list[Any], after: int | None, limit: int) -> tuple[list[Any], int | None]:
    start = after or 0
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return chunk, (start + limit if more else None)


# ---------------------------------------------------------------------------------------------- the API


class ControlApi(RobotControls):
    """The control routes over a :class:`~mock_portal.server.PortalApp` (its portals, clock and workers)."""

    def __init__(self, app: PortalApp) -> None:
        self.app = app

    # ------------------------------------------------------------------ dispatch
    async def handle(self, method: str, path: str, query: str, body: bytes) -> Answer:
        """Answer one control request (raises :class:`HttpError` for what it refuses)."""
        route, params = self._match(method, path)
        args = dict(parse_qsl(query, keep_blank_values=True))
        _check_fields(args, route.query, f"{route.method} {route.path} (query)")
        typed_args = _typed_query(route, args)
        _check_schema(route, "query", typed_args)
        data: dict[str, Any] = {}
        if route.body is not None and body.strip():
            if len(body) > MAX_CONTROL_BODY:
                raise HttpError(
                    413, "REQUEST_TOO_LARGE", f"a control body is at most {MAX_CONTROL_BODY} bytes"
                )
            try:
                loaded = loads_strict(body, max_depth=MAX_BODY_DEPTH)
            except JsonInputError as exc:
                raise HttpError(400, "BAD_JSON", f"the control API takes a JSON object: {exc}") from None
            if not isinstance(loaded, dict):
                raise HttpError(400, "BAD_JSON", "the control API takes a JSON object")
            data = loaded
        if route.body is not None:
            _check_fields(data, route.body, f"{route.method} {route.path}")
            _check_schema(route, "body", data)
        request = _Request(route, params, typed_args, data, path)
        handler: Callable[[_Request], Awaitable[Answer]] = getattr(self, route.handler)
        return await handler(request)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        segments = tuple(p for p in path.split("/") if p)
        allowed: list[str] = []
        for route in ROUTES:
            template = route.segments
            if len(template) != len(segments):
                continue
            params: dict[str, str] = {}
            for want, got in zip(template, segments, strict=True):
                if want.startswith("{"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                if route.method == method:
                    return route, params
                allowed.append(route.method)
        if allowed:
            raise HttpError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{method} is not allowed on {path[:200]} (only {', '.join(allowed)})",
            )
        raise HttpError(404, "NOT_FOUND", f"no control route {path[:200]!r}; GET /_portal lists them")

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.app.run(fn, *args, **kwargs)

    def is_public(self, method: str, path: str) -> bool:
        """Whether ``method path`` is a route served without the control token (the inspector's files)."""
        try:
            route, _ = self._match(method, path)
        except HttpError:
            return False
        return route.public

    def _portal(self, request: _Request) -> Portal:
        return self.app.portal(request.portal_name)

    # ------------------------------------------------------------------ server and portals
    async def describe(self, request: _Request) -> Answer:
        return Answer(200, await self._run(self.app.describe))

    async def openapi(self, request: _Request) -> Answer:
        return Answer(200, openapi_document(secured=self.app.control_token is not None))

    async def list_portals(self, request: _Request) -> Answer:
        portals = list(self.app.portals.values())
        chunk, following = _listing_page(
            portals, _int(request.args.get("after")), int(request.args.get("limit", DEFAULT_LIMIT))
        )
        body = await self._run(lambda: [p.describe() for p in chunk])
        return self._list_answer(body, following, request)

    async def add_portal(self, request: _Request) -> Answer:
        data = request.data
        if len(self.app.portals) >= MAX_PORTALS:
            raise HttpError(409, "TOO_MANY_PORTALS", f"a server serves at most {MAX_PORTALS} portals")
        options: dict[str, Any] = {
            key: data[key]
            for key in ("member_id", "status", "session_events_owner_only", "delivery_timeout", "seed")
            if key in data
        }
        if "delivery_timeout" in options:
            options["delivery_timeout"] = float(options["delivery_timeout"])
        try:
            portal = self.app.add_portal(data.get("domain"), **options)
        except UsageError as exc:
            raise HttpError(409, "PORTAL_EXISTS", str(exc)) from None
        return Answer(201, portal.describe())

    def _list_answer(self, body: list[Any], following: int | None, request: _Request) -> Answer:
        headers: list[tuple[str, str]] = []
        if following is not None:
            query = urlencode({**{k: v for k, v in request.args.items() if k != "after"}, "after": following})
            headers += [("link", f'<{request.path}?{query}>; rel="next"'), ("x-next-after", str(following))]
        return Answer(200, body, headers=tuple(headers))

    # ------------------------------------------------------------------ apps
    async def list_apps(self, request: _Request) -> Answer:
        portal = self._portal(request)
        apps = list(portal.apps.values())
        chunk, following = _listing_page(
            apps, _int(request.args.get("after")), int(request.args.get("limit", DEFAULT_LIMIT))
        )
        return self._list_answer([app.public() for app in chunk], following, request)

    async def install(self, request: _Request) -> Answer:
        return Answer(201, await self._run(self._install, self._portal(request), request.data))

    def _install(self, portal: Portal, data: Mapping[str, Any]) -> dict[str, Any]:
        app, token, attempts = portal.install_app(
            data.get("install_url"),
            handlers=data.get("handlers") or {},
            scopes=data.get("scopes"),
            ui=data.get("ui", False),
            code=data.get("code"),
            client_id=data.get("client_id"),
            client_secret=data.get("client_secret"),
            timeout=data.get("timeout"),
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
            "deliveries": _deliveries(attempts),
        }

    async def get_app(self, request: _Request) -> Answer:
        portal = self._portal(request)
        client_id = request.params["client_id"]
        app = portal.app(client_id)
        return Answer(200, {**app.public(), "bindings": [b.public() for b in portal.bindings_of(client_id)]})

    async def uninstall(self, request: _Request) -> Answer:
        client_id = request.params["client_id"]
        attempts = await self._run(
            self._portal(request).uninstall_app,
            client_id,
            clean=bool(request.data.get("clean")),
            timeout=request.data.get("timeout"),
        )
        return Answer(200, {"client_id": client_id, "deliveries": _deliveries(attempts)})

    async def install_finish(self, request: _Request) -> Answer:
        app = await self._run(self._portal(request).install_finish, request.params["client_id"])
        return Answer(200, app.public())

    async def bind(self, request: _Request) -> Answer:
        portal = self._portal(request)
        binding = await self._run(
            portal.bind, request.params["client_id"], request.data.get("event"), request.data.get("handler")
        )
        return Answer(201, {"event_handler_id": binding.id, **binding.public()})

    async def update_app(self, request: _Request) -> Answer:
        portal, client_id = self._portal(request), request.params["client_id"]
        app, attempts = await self._run(
            portal.update_app,
            client_id,
            new_application_token=bool(request.data.get("new_application_token", False)),
            timeout=request.data.get("timeout"),
        )
        return Answer(
            200,
            {
                "client_id": app.client_id,
                "version": app.version,
                "application_token": app.application_token,
                "deliveries": _deliveries(attempts),
            },
        )

    # ------------------------------------------------------------------ open lines
    async def start_session(self, request: _Request) -> Answer:
        data = request.data
        portal = self._portal(request)
        started = await self._run(
            portal.start_session,
            connector_id=data.get("connector_id") or "livechat",
            line_id=_int(data.get("line_id")),
            user_id=_int(data.get("user_id")),
            external_chat_id=data.get("external_chat_id"),
            external_user_id=data.get("external_user_id"),
            shape=data.get("shape"),
            auth=data.get("auth"),
            timeout=data.get("timeout"),
        )
        return Answer(
            201,
            {
                "session_id": started.session.id,
                "chat_id": started.chat.id,
                "dialog_id": started.chat.dialog_id,
                "line_id": started.chat.line_id,
                "connector_id": started.chat.connector_id,
                "user_id": started.chat.user_id,
                "deliveries": _deliveries(started.attempts),
            },
        )

    async def finish_session(self, request: _Request) -> Answer:
        session_id = _path_id(request.params["id"], "session")
        attempts = await self._run(
            self._portal(request).finish_session,
            session_id,
            auth=request.data.get("auth"),
            timeout=request.data.get("timeout"),
        )
        return Answer(200, {"session_id": session_id, "closed": True, "deliveries": _deliveries(attempts)})

    async def operator_message(self, request: _Request) -> Answer:
        data, portal = request.data, self._portal(request)
        chat_id = data["chat_id"]
        if isinstance(chat_id, int):
            chat_id = f"chat{chat_id}"
        text = data["text"]
        if not text.strip():
            raise HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {_shown(text)}")

        def send() -> dict[str, Any]:
            chat = portal.chat(chat_id)
            message, attempts = portal.send_operator_message(
                chat.dialog_id, text, author_id=_int(data.get("author_id")) or 1, timeout=data.get("timeout")
            )
            return {"message_id": message.id, "chat_id": chat.id, "deliveries": _deliveries(attempts)}

        return Answer(201, await self._run(send))

    async def update_message(self, request: _Request) -> Answer:
        return await self._change_message(request, delete=False)

    async def delete_message(self, request: _Request) -> Answer:
        return await self._change_message(request, delete=True)

    async def _change_message(self, request: _Request, *, delete: bool) -> Answer:
        message_id = _path_id(request.params["id"], "message")
        text = request.data.get("text")
        if not delete and not str(text).strip():
            raise HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {_shown(text)}")
        attempts = await self._run(
            self._portal(request).change_message,
            message_id,
            text,
            delete=delete,
            timeout=request.data.get("timeout"),
        )
        return Answer(200, {"message_id": message_id, "deleted": delete, "deliveries": _deliveries(attempts)})

    async def delete_line(self, request: _Request) -> Answer:
        line_id = _path_id(request.params["id"], "line")
        attempts = await self._run(
            self._portal(request).delete_line, line_id, timeout=request.data.get("timeout")
        )
        return Answer(200, {"line_id": line_id, "deleted": True, "deliveries": _deliveries(attempts)})

    async def deactivate_connector(self, request: _Request) -> Answer:
        portal, connector = self._portal(request), request.params["id"]
        line_id = int(request.data["line_id"])
        if connector not in portal.connectors:
            known = ", ".join(sorted(portal.connectors)) or "none"
            raise HttpError(
                404, "CONNECTOR_NOT_FOUND", f"no connector {connector[:60]!r} (registered: {known})"
            )
        attempts = await self._run(
            portal.deactivate_connector, connector, line_id, timeout=request.data.get("timeout")
        )
        return Answer(200, {"connector": connector, "line_id": line_id, "deliveries": _deliveries(attempts)})

    # ------------------------------------------------------------------ chat bots
    async def bot_message(self, request: _Request) -> Answer:
        data, portal = request.data, self._portal(request)
        bot_id = _path_id(request.params["id"], "bot")
        if not data["text"].strip():
            raise HttpError(
                400, "BAD_FIELD", f"'text' must be a non-empty string, got {_shown(data['text'])}"
            )
        message, attempts = await self._run(
            portal.user_writes_to_bot,
            bot_id,
            data["text"],
            user_id=_int(data.get("user_id")),
            chat_id=_int(data.get("chat_id")),
            auth=data.get("auth"),
            timeout=data.get("timeout"),
        )
        return Answer(201, {"message_id": message.id, "bot_id": bot_id, "deliveries": _deliveries(attempts)})

    async def bot_join(self, request: _Request) -> Answer:
        data, bot_id = request.data, _path_id(request.params["id"], "bot")
        attempts = await self._run(
            self._portal(request).bot_join,
            bot_id,
            user_id=_int(data.get("user_id")),
            chat_id=_int(data.get("chat_id")),
            auth=data.get("auth"),
            timeout=data.get("timeout"),
        )
        return Answer(200, {"bot_id": bot_id, "deliveries": _deliveries(attempts)})

    # ------------------------------------------------------------------ records
    async def list_deliveries(self, request: _Request) -> Answer:
        args = request.args
        tags = delivery_tags(args.get("event"), args.get("outcome"))
        return await self._records(request, DELIVERIES, tags)

    async def list_calls(self, request: _Request) -> Answer:
        method = request.args.get("method")
        return await self._records(request, CALLS, {"method": method} if method is not None else {})

    async def _records(self, request: _Request, kind: str, tags: dict[str, str]) -> Answer:
        portal, args = self._portal(request), request.args
        after = _int(args.get("after"))
        limit = int(args.get("limit", DEFAULT_LIMIT))
        if "min" in args:
            count = int(args["min"])
            if "limit" not in args:
                limit = max(limit, min(count, MAX_LIMIT))
            await self._wait(portal, kind, count, float(args.get("timeout", 5.0)), after, tags)
        page = await self._run(
            functools.partial(
                portal.records.page, kind, after=after, limit=limit, max_bytes=MAX_PAGE_BYTES, **tags
            )
        )
        return _page_answer(page, request.path, {k: v for k, v in args.items()})

    async def _wait(
        self, portal: Portal, kind: str, count: int, timeout: float, after: int | None, tags: dict[str, str]
    ) -> None:
        """Wait on the event loop (no thread held) until ``count`` matching records exist past ``after``."""
        store = portal.records
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def poke() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
                loop.call_soon_threadsafe(changed.set)

        deadline = loop.time() + timeout
        store.listen(poke)
        try:
            while True:
                changed.clear()
                have = await self._run(functools.partial(store.count, kind, after=after, **tags))
                remaining = deadline - loop.time()
                if have >= count or remaining <= 0 or self.app.closing:
                    return
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except asyncio.TimeoutError:
                    return
        finally:
            store.unlisten(poke)

    # ------------------------------------------------------------------ the inspector page
    async def ui_page(self, request: _Request) -> Answer:
        return _asset_answer(inspector.PAGE)

    async def ui_asset(self, request: _Request) -> Answer:
        return _asset_answer(request.params["asset"])

    # ------------------------------------------------------------------ the rest
    async def add_webhook(self, request: _Request) -> Answer:
        portal = self._portal(request)
        user_id = _int(request.data.get("user_id")) or 1
        try:
            code = portal.add_webhook(user_id=user_id, scopes=request.data.get("scopes"))
        except UsageError as exc:
            raise HttpError(400, "BAD_FIELD", str(exc)) from None
        return Answer(
            201, {"user_id": user_id, "code": code, "url": f"{portal.client_endpoint}{user_id}/{code}/"}
        )

    async def advance_clock(self, request: _Request) -> Answer:
        seconds = float(request.data.get("advance", 0))
        if self.app.clock.now() + seconds > control_routes.MAX_CLOCK_STEP * 2:
            raise HttpError(400, "BAD_FIELD", "'advance' would take the clock past the year 2170")
        return Answer(200, {"now": self.app.clock.advance(seconds)})

    async def reset(self, request: _Request) -> Answer:
        name = request.portal_name
        targets = [self.app.portal(name)] if name else list(self.app.portals.values())
        for portal in targets:
            await self._run(portal.reset)
        return Answer(200, {"reset": [p.domain for p in targets]})


def _asset_answer(name: str) -> Answer:
    try:
        data, headers = inspector.asset(name)
    except inspector.UnknownAssetError as exc:
        raise HttpError(404, "NOT_FOUND", str(exc)) from None
    return Answer(200, raw=data, headers=headers)


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


def _deliveries(attempts: Any) -> list[dict[str, Any]]:
    return [attempt_to_dict(a) for a in attempts]
