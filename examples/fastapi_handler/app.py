"""The FastAPI app: an install route, an events route, and the REST calls back as background tasks.

The portal posts form-encoded bodies (``auth[member_id]=...``, ``data[DATA][0][chat][id]=...``): the routes
read the raw body and parse it with ``urllib.parse`` into flat keys, every value a string (so no
``python-multipart`` is needed). Neither route echoes anything it was sent. Installations are kept in
memory, per process: a service run by several workers keeps them in its database instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypedDict
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("b24_handler.fastapi")

GREETING = "Hello! Thank you for writing to us. An operator will answer you shortly."
MAX_BODY = 1 << 20  # an event is a few kilobytes of form fields
MAX_FIELDS = 1000
# docs-2024 and docs-2026 send data[DATA] as a list and name the chat chat[id]; source-2024 sends one
# object and names it chat[chat_id]
_CHAT_ID = re.compile(r"data\[DATA\](\[\d+\])?\[chat\]\[(id|chat_id)\]")


@dataclass
class Installation:
    """What ONAPPINSTALL brought for one portal (one ``member_id``)."""

    application_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    client_endpoint: str | None = None

    def accepts(self, given: str) -> bool:
        """Whether ``given`` is this installation's ``application_token`` (compared in constant time)."""
        return hmac.compare_digest(given.encode("utf-8"), self.application_token.encode("utf-8"))


installations: dict[str, Installation] = {}
_seen: OrderedDict[bytes, None] = OrderedDict()  # digests of the last bodies: the portal may repeat one


class State(TypedDict):
    rest: httpx.AsyncClient


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    """One HTTP client for the REST calls, for as long as the server runs."""
    async with httpx.AsyncClient(timeout=10) as rest:
        yield {"rest": rest}


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


class _TooLarge(Exception):
    pass


async def _form(request: Request) -> tuple[bytes, dict[str, str]]:
    """The raw body and its fields (the last of a repeated key wins, as in PHP)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise _TooLarge from exc
    return body, dict(pairs)


def _answer(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"status": "ok" if status == 200 else "error", "detail": detail}, status_code=status)


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _first_time(body: bytes) -> bool:
    digest = hashlib.sha256(body).digest()
    if digest in _seen:
        return False
    _seen[digest] = None
    if len(_seen) > 4096:
        _seen.popitem(last=False)
    return True


def _chat_ids(form: dict[str, str]) -> list[str]:
    """The chat of each new session, whichever shape the event has; ``[]`` if one has no usable id."""
    chats: dict[str, dict[str, str]] = {}
    for key, value in form.items():
        found = _CHAT_ID.fullmatch(key)
        if found:
            chats.setdefault(found.group(1) or "", {})[found.group(2)] = value
    ids = [chat.get("id") or chat.get("chat_id") or "" for chat in chats.values()]
    return ids if all(i.isascii() and i.isdigit() for i in ids) else []


@app.post("/b24/install")
async def install(request: Request) -> JSONResponse:
    """ONAPPINSTALL: keep the ``application_token`` and the installing user's token for the portal."""
    try:
        _, form = await _form(request)
    except _TooLarge:
        return _answer(413, "the body is too large for an event")
    member_id = form.get("auth[member_id]", "")
    token = form.get("auth[application_token]", "")
    endpoint = form.get("auth[client_endpoint]", "")
    if form.get("event", "").upper() != "ONAPPINSTALL" or not member_id or not token:
        return _answer(400, "expected ONAPPINSTALL with auth[member_id] and auth[application_token]")
    if endpoint and not _http_url(endpoint):
        return _answer(400, "auth[client_endpoint] is not an http(s) URL")
    installations[member_id] = Installation(
        application_token=token,
        access_token=form.get("auth[access_token]") or None,
        client_endpoint=endpoint or None,
    )
    return _answer(200, "installed")


@app.post("/b24/events")
async def events(request: Request, background: BackgroundTasks) -> JSONResponse:
    """Every other event: check ``application_token`` before anything, answer at once, work afterwards."""
    try:
        body, form = await _form(request)
    except _TooLarge:
        return _answer(413, "the body is too large for an event")
    event = form.get("event", "").upper()
    member_id = form.get("auth[member_id]", "")
    given = form.get("auth[application_token]", "")
    if not event or not member_id or not given:
        return _answer(401, "not a Bitrix24 event: auth[member_id] and auth[application_token] are required")
    installation = installations.get(member_id)
    if installation is None or not installation.accepts(given):
        return _answer(403, "auth[application_token] is not the one on record")
    if event == "ONAPPUNINSTALL":
        installations.pop(member_id, None)
        return _answer(200, "uninstalled")
    if not _first_time(body):
        return _answer(200, "repeated delivery ignored")
    if event != "ONSESSIONSTART":
        return _answer(200, "nothing to do")
    chat_ids = _chat_ids(form)
    if not chat_ids:
        return _answer(400, "data[DATA] names no chat")
    # user mode: the event carries the user's token; system mode: none, and the stored one is used
    token = form.get("auth[access_token]") or installation.access_token
    endpoint = form.get("auth[client_endpoint]") or installation.client_endpoint or ""
    if not token or not _http_url(endpoint):
        return _answer(400, "no token or client_endpoint to answer this portal with")
    background.add_task(greet, request.state.rest, endpoint, token, chat_ids)
    return _answer(200, f"{len(chat_ids)} session(s) queued")


async def greet(rest: httpx.AsyncClient, client_endpoint: str, token: str, chat_ids: list[str]) -> None:
    """One ``im.message.add`` per new session, in the session's own chat, at the event's own portal."""
    url = client_endpoint.rstrip("/") + "/im.message.add.json"
    for chat_id in chat_ids:
        params = {"DIALOG_ID": f"chat{chat_id}", "MESSAGE": GREETING, "auth": token}
        try:
            reply = await rest.post(url, data=params)
            answer = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("im.message.add to chat%s failed: %s", chat_id, type(exc).__name__)
            continue
        if reply.status_code >= 400 or not isinstance(answer, dict) or "error" in answer:
            # an expired_token here means: refresh with the stored refresh_token and try once more
            error = answer.get("error", "") if isinstance(answer, dict) else "not JSON"
            log.warning("im.message.add to chat%s: HTTP %d %s", chat_id, reply.status_code, error)
