"""The install view and the events view.

The portal posts form-encoded bodies (``auth[member_id]=...``, ``data[DATA][0][chat][id]=...``), which
``request.POST`` gives as flat keys with every value a string. Neither view echoes anything it was sent.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from examples.django_handler.bitrix.portal import Installation, greet_later, installations, seen

# docs-2024 and docs-2026 send data[DATA] as a list and name the chat chat[id]; source-2024 sends one
# object and names it chat[chat_id]
_CHAT_ID = re.compile(r"data\[DATA\](\[\d+\])?\[chat\]\[(id|chat_id)\]")


def _answer(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"status": "ok" if status == 200 else "error", "detail": detail}, status=status)


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _chat_ids(form: dict[str, str]) -> list[str]:
    """The chat of each new session, whichever shape the event has; ``[]`` if one has no usable id."""
    chats: dict[str, dict[str, str]] = {}
    for key, value in form.items():
        found = _CHAT_ID.fullmatch(key)
        if found:
            chats.setdefault(found.group(1) or "", {})[found.group(2)] = value
    ids = [chat.get("id") or chat.get("chat_id") or "" for chat in chats.values()]
    return ids if all(i.isascii() and i.isdigit() for i in ids) else []


@csrf_exempt
@require_POST
def install(request: HttpRequest) -> JsonResponse:
    """ONAPPINSTALL: keep the ``application_token`` and the installing user's token for the portal."""
    form = request.POST
    member_id = form.get("auth[member_id]", "")
    token = form.get("auth[application_token]", "")
    endpoint = form.get("auth[client_endpoint]", "")
    if form.get("event", "").upper() != "ONAPPINSTALL" or not member_id or not token:
        return _answer(400, "expected ONAPPINSTALL with auth[member_id] and auth[application_token]")
    if endpoint and not _http_url(endpoint):
        return _answer(400, "auth[client_endpoint] is not an http(s) URL")
    installation = Installation(
        application_token=token,
        access_token=form.get("auth[access_token]") or None,
        client_endpoint=endpoint or None,
        domain=form.get("auth[domain]") or None,
    )
    installations.put(member_id, installation)
    return _answer(200, "installed")


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    """Every other event: check ``application_token`` before anything, answer at once, work afterwards."""
    body = request.body  # before request.POST: the raw bytes tell a repeated delivery
    form = request.POST.dict()
    event = form.get("event", "").upper()
    member_id = form.get("auth[member_id]", "")
    given = form.get("auth[application_token]", "")
    if not event or not member_id or not given:
        return _answer(401, "not a Bitrix24 event: auth[member_id] and auth[application_token] are required")
    installation = installations.get(member_id)
    if installation is None or not installation.accepts(given):
        return _answer(403, "auth[application_token] is not the one on record")
    if event == "ONAPPUNINSTALL":
        installations.forget(member_id)
        return _answer(200, "uninstalled")
    if not seen.first_time(body):
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
    greet_later(endpoint, token, chat_ids)
    return _answer(200, f"{len(chat_ids)} session(s) queued")
