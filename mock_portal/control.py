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

The answers (:mod:`mock_portal.control_answers`) and the input checks (:mod:`mock_portal.control_input`) live
beside this module; the robots' routes in :mod:`mock_portal.control_robots`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode

from mock_portal import control_routes, inspector
from mock_portal.control_answers import Answer, HttpError, attempt_to_dict, deliveries, page_answer
from mock_portal.control_input import (
    Request,
    as_int,
    check_fields,
    check_schema,
    listing_page,
    path_id,
    shown,
    typed_query,
)
from mock_portal.control_robots import RobotControls
from mock_portal.control_routes import (
    CONTROL_ROUTES,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ROUTES,
    Route,
    openapi_document,
)
from mock_portal.errors import UsageError
from mock_portal.jsonio import JsonInputError, loads_strict
from mock_portal.portal import Portal
from mock_portal.records import CALLS, DELIVERIES, delivery_tags

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
        check_fields(args, route.query, f"{route.method} {route.path} (query)")
        typed_args = typed_query(route, args)
        check_schema(route, "query", typed_args)
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
            check_fields(data, route.body, f"{route.method} {route.path}")
            check_schema(route, "body", data)
        request = Request(route, params, typed_args, data, path)
        handler: Callable[[Request], Awaitable[Answer]] = getattr(self, route.handler)
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

    def _portal(self, request: Request) -> Portal:
        return self.app.portal(request.portal_name)

    # ------------------------------------------------------------------ server and portals
    async def describe(self, request: Request) -> Answer:
        return Answer(200, await self._run(self.app.describe))

    async def openapi(self, request: Request) -> Answer:
        return Answer(200, openapi_document(secured=self.app.control_token is not None))

    async def list_portals(self, request: Request) -> Answer:
        portals = list(self.app.portals.values())
        chunk, following = listing_page(
            portals, as_int(request.args.get("after")), int(request.args.get("limit", DEFAULT_LIMIT))
        )
        body = await self._run(lambda: [p.describe() for p in chunk])
        return self._list_answer(body, following, request)

    async def add_portal(self, request: Request) -> Answer:
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

    def _list_answer(self, body: list[Any], following: int | None, request: Request) -> Answer:
        headers: list[tuple[str, str]] = []
        if following is not None:
            query = urlencode({**{k: v for k, v in request.args.items() if k != "after"}, "after": following})
            headers += [("link", f'<{request.path}?{query}>; rel="next"'), ("x-next-after", str(following))]
        return Answer(200, body, headers=tuple(headers))

    # ------------------------------------------------------------------ apps
    async def list_apps(self, request: Request) -> Answer:
        portal = self._portal(request)
        apps = list(portal.apps.values())
        chunk, following = listing_page(
            apps, as_int(request.args.get("after")), int(request.args.get("limit", DEFAULT_LIMIT))
        )
        return self._list_answer([app.public() for app in chunk], following, request)

    async def install(self, request: Request) -> Answer:
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
            "deliveries": deliveries(attempts),
        }

    async def get_app(self, request: Request) -> Answer:
        portal = self._portal(request)
        client_id = request.params["client_id"]
        app = portal.app(client_id)
        return Answer(200, {**app.public(), "bindings": [b.public() for b in portal.bindings_of(client_id)]})

    async def uninstall(self, request: Request) -> Answer:
        client_id = request.params["client_id"]
        attempts = await self._run(
            self._portal(request).uninstall_app,
            client_id,
            clean=bool(request.data.get("clean")),
            timeout=request.data.get("timeout"),
        )
        return Answer(200, {"client_id": client_id, "deliveries": deliveries(attempts)})

    async def install_finish(self, request: Request) -> Answer:
        app = await self._run(self._portal(request).install_finish, request.params["client_id"])
        return Answer(200, app.public())

    async def bind(self, request: Request) -> Answer:
        portal = self._portal(request)
        binding = await self._run(
            portal.bind, request.params["client_id"], request.data.get("event"), request.data.get("handler")
        )
        return Answer(201, {"event_handler_id": binding.id, **binding.public()})

    async def update_app(self, request: Request) -> Answer:
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
                "deliveries": deliveries(attempts),
            },
        )

    # ------------------------------------------------------------------ open lines
    async def start_session(self, request: Request) -> Answer:
        data = request.data
        portal = self._portal(request)
        started = await self._run(
            portal.start_session,
            connector_id=data.get("connector_id") or "livechat",
            line_id=as_int(data.get("line_id")),
            user_id=as_int(data.get("user_id")),
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
                "deliveries": deliveries(started.attempts),
            },
        )

    async def finish_session(self, request: Request) -> Answer:
        session_id = path_id(request.params["id"], "session")
        attempts = await self._run(
            self._portal(request).finish_session,
            session_id,
            auth=request.data.get("auth"),
            timeout=request.data.get("timeout"),
        )
        return Answer(200, {"session_id": session_id, "closed": True, "deliveries": deliveries(attempts)})

    async def operator_message(self, request: Request) -> Answer:
        data, portal = request.data, self._portal(request)
        chat_id = data["chat_id"]
        if isinstance(chat_id, int):
            chat_id = f"chat{chat_id}"
        text = data["text"]
        if not text.strip():
            raise HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {shown(text)}")

        def send() -> dict[str, Any]:
            chat = portal.chat(chat_id)
            message, attempts = portal.send_operator_message(
                chat.dialog_id,
                text,
                author_id=as_int(data.get("author_id")) or 1,
                timeout=data.get("timeout"),
            )
            return {"message_id": message.id, "chat_id": chat.id, "deliveries": deliveries(attempts)}

        return Answer(201, await self._run(send))

    async def update_message(self, request: Request) -> Answer:
        return await self._change_message(request, delete=False)

    async def delete_message(self, request: Request) -> Answer:
        return await self._change_message(request, delete=True)

    async def _change_message(self, request: Request, *, delete: bool) -> Answer:
        message_id = path_id(request.params["id"], "message")
        text = request.data.get("text")
        if not delete and not str(text).strip():
            raise HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {shown(text)}")
        attempts = await self._run(
            self._portal(request).change_message,
            message_id,
            text,
            delete=delete,
            timeout=request.data.get("timeout"),
        )
        return Answer(200, {"message_id": message_id, "deleted": delete, "deliveries": deliveries(attempts)})

    async def delete_line(self, request: Request) -> Answer:
        line_id = path_id(request.params["id"], "line")
        attempts = await self._run(
            self._portal(request).delete_line, line_id, timeout=request.data.get("timeout")
        )
        return Answer(200, {"line_id": line_id, "deleted": True, "deliveries": deliveries(attempts)})

    async def deactivate_connector(self, request: Request) -> Answer:
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
        return Answer(200, {"connector": connector, "line_id": line_id, "deliveries": deliveries(attempts)})

    # ------------------------------------------------------------------ chat bots
    async def bot_message(self, request: Request) -> Answer:
        data, portal = request.data, self._portal(request)
        bot_id = path_id(request.params["id"], "bot")
        if not data["text"].strip():
            raise HttpError(400, "BAD_FIELD", f"'text' must be a non-empty string, got {shown(data['text'])}")
        message, attempts = await self._run(
            portal.user_writes_to_bot,
            bot_id,
            data["text"],
            user_id=as_int(data.get("user_id")),
            chat_id=as_int(data.get("chat_id")),
            auth=data.get("auth"),
            timeout=data.get("timeout"),
        )
        return Answer(201, {"message_id": message.id, "bot_id": bot_id, "deliveries": deliveries(attempts)})

    async def bot_join(self, request: Request) -> Answer:
        data, bot_id = request.data, path_id(request.params["id"], "bot")
        attempts = await self._run(
            self._portal(request).bot_join,
            bot_id,
            user_id=as_int(data.get("user_id")),
            chat_id=as_int(data.get("chat_id")),
            auth=data.get("auth"),
            timeout=data.get("timeout"),
        )
        return Answer(200, {"bot_id": bot_id, "deliveries": deliveries(attempts)})

    # ------------------------------------------------------------------ records
    async def list_deliveries(self, request: Request) -> Answer:
        args = request.args
        tags = delivery_tags(args.get("event"), args.get("outcome"))
        return await self._records(request, DELIVERIES, tags)

    async def list_calls(self, request: Request) -> Answer:
        method = request.args.get("method")
        return await self._records(request, CALLS, {"method": method} if method is not None else {})

    async def _records(self, request: Request, kind: str, tags: dict[str, str]) -> Answer:
        portal, args = self._portal(request), request.args
        after = as_int(args.get("after"))
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
        return page_answer(page, request.path, {k: v for k, v in args.items()})

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
    async def ui_page(self, request: Request) -> Answer:
        return _asset_answer(inspector.PAGE)

    async def ui_asset(self, request: Request) -> Answer:
        return _asset_answer(request.params["asset"])

    # ------------------------------------------------------------------ the rest
    async def add_webhook(self, request: Request) -> Answer:
        portal = self._portal(request)
        user_id = as_int(request.data.get("user_id")) or 1
        try:
            code = portal.add_webhook(user_id=user_id, scopes=request.data.get("scopes"))
        except UsageError as exc:
            raise HttpError(400, "BAD_FIELD", str(exc)) from None
        return Answer(
            201, {"user_id": user_id, "code": code, "url": f"{portal.client_endpoint}{user_id}/{code}/"}
        )

    async def advance_clock(self, request: Request) -> Answer:
        seconds = float(request.data.get("advance", 0))
        if self.app.clock.now() + seconds > control_routes.MAX_CLOCK_STEP * 2:
            raise HttpError(400, "BAD_FIELD", "'advance' would take the clock past the year 2170")
        return Answer(200, {"now": self.app.clock.advance(seconds)})

    async def reset(self, request: Request) -> Answer:
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
