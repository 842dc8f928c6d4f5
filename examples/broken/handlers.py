"""Deliberately broken event handlers: each honours the contract except for one flaw, which breaks one clause.

The project's tests run the whole contract against each and assert that exactly the clause named in
:data:`FLAWS` fails. :class:`ContractHandler` with no flaw passes every clause: it is a compact honest handler
(ONAPPINSTALL stores the token per member_id, constant-time comparison, de-duplication, background REST work
at the event's own ``client_endpoint``), so a failure can only come from the flaw switched on.

It handles ONSESSIONSTART (``im.message.add`` to each new session's chat) and ONIMCONNECTORMESSAGEADD
(``imconnector.send.status.delivery`` for each operator message), with the same flaw on both, so each generic
clause fails for its flaw whichever declared event it is judged with. It uses offline events too: on
ONOFFLINEEVENT it takes the queue with ``event.offline.get`` (``clear=0``) until it is empty, and confirms
each batch with ``event.offline.clear`` (checked with ``offline=True``).

Every flaw is a mistake seen in real handlers, kept as small as possible. The latent ones pass every fixed
clause: only events fuzzing generates (a non-numeric id, an id past 32 bits, a data error) trip them. Drive
a handler as WSGI (``handler(environ, start_response)``), as ASGI (:meth:`ContractHandler.asgi`), as a plain
callable (:meth:`ContractHandler.callable`), or serve it: ``python -m examples.broken --flaw echoes-auth
--port 8080``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from mock_portal.errors import WireError
from mock_portal.wire import decode

__all__ = ["FLAWS", "ContractHandler", "Installation"]

FLAWS: dict[str, str] = {
    "rejects-docs-2026": "accepts-every-shape",
    "crashes-without-handler-id": "tolerates-variation",
    "alerts-with-forged-token": "forged-token-no-side-effect",
    "answers-200-to-forgery": "forged-token-refused",
    "trusts-unknown-portals": "unknown-portal-no-side-effect",
    "crashes-on-json": "rejects-malformed-bodies",
    "repeats-work": "ignores-repeated-delivery",
    "hangs-on-repeats": "answers-within-timeout",
    "slow-in-system-mode": "answers-quickly",
    "matches-token-of-any-portal": "keeps-portals-apart",
    "calls-first-install-endpoint": "keeps-portals-apart",
    "echoes-auth": "never-echoes-secrets",
    "busy-under-load": "survives-bursts",
    "never-clears-offline": "catches-up-offline",
    # latent flaws: no fixed clause sends what trips them, events generated from the schemas do
    "crashes-on-non-numeric-id": "survives-fuzzing",
    "crashes-on-large-ids": "survives-fuzzing",
    "echoes-body-on-error": "survives-fuzzing",
}
"""flaw -> the one clause it breaks (``survives-fuzzing`` is judged only when a run fuzzes)."""

_FORM = "application/x-www-form-urlencoded"
_HANDLED = ("ONSESSIONSTART", "ONIMCONNECTORMESSAGEADD")
_NOTICE = "ONOFFLINEEVENT"
_MAX_BATCHES = 100
_MAX_BODY = 1 << 20
_NUMERIC_IDS = frozenset({"id", "chat_id", "line_id", "user_id", "session_id", "parent_id", "message_id"})
_DATA_ERRORS = frozenset({"no_data", "bad_item", "no_chat_id", "no_messages", "bad_message"})
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 413: "Too Large"}


@dataclass
class Installation:
    """What ONAPPINSTALL taught the handler about one portal."""

    application_token: str
    access_token: str | None
    client_endpoint: str


def _leaves(value: Any, name: str = "") -> Iterable[tuple[str, str]]:
    """Every string in ``value`` with the key it sits under."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, name)
    elif isinstance(value, str):
        yield name, value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _Reject(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class ContractHandler:
    """A small handler that honours the contract, with at most one deliberate ``flaw`` from :data:`FLAWS`.

    ``hang`` is how long ``hangs-on-repeats`` stalls, ``slow`` how long ``slow-in-system-mode`` takes.
    ``alert_later``: ``alerts-with-forged-token`` queues its alert until the next event it accepts (a batching
    queue), so the call comes long after the forged delivery.
    """

    def __init__(
        self, flaw: str | None = None, *, hang: float = 2.0, slow: float = 1.2, alert_later: bool = False
    ) -> None:
        if flaw is not None and flaw not in FLAWS:
            raise ValueError(f"unknown flaw {flaw!r} (known: {', '.join(FLAWS)})")
        self.flaw = flaw
        self.hang = hang
        self.slow = slow
        self.alert_later = alert_later
        self._alerts: list[tuple[Any, ...]] = []
        self.installations: dict[str, Installation] = {}
        self.first_endpoint: str | None = None
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()
        self._offline_lock = threading.Lock()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broken-handler")
        self._http = threading.local()

    def close(self) -> None:
        """Finish the queued REST work and stop the workers."""
        self._pool.shutdown(wait=True)

    # ---------------------------------------------------------------------------------------- adapters

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            status, body = 405, b'{"status":"error","error":"method_not_allowed"}'
        else:
            length = environ.get("CONTENT_LENGTH") or "0"
            size = int(length) if length.isdigit() else 0
            if size > _MAX_BODY:
                status, body = 413, b'{"status":"error","error":"body_too_large"}'
            else:
                status, body = self.handle(environ["wsgi.input"].read(size), environ.get("CONTENT_TYPE"))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    async def asgi(
        self, scope: Mapping[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        """The handler as an ASGI app (the body is handled on a worker thread)."""
        import asyncio

        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status, body = await asyncio.to_thread(self.handle, b"".join(chunks), headers.get("content-type"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def callable(self, body: bytes, headers: Mapping[str, str], url: str) -> tuple[int, bytes]:
        """The handler as a ``handler(body, headers, url)`` callable."""
        return self.handle(body, headers.get("Content-Type") or headers.get("content-type"))

    # ---------------------------------------------------------------------------------------- the handler

    def handle(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """Answer one delivery: ``(status, JSON body)``."""
        if self.flaw == "crashes-on-json" and body.startswith(b"{"):
            return 500, b'{"status":"error","error":"internal_error"}'  # tried json.loads, tripped over it
        try:
            answer = self._handle(body, content_type)
        except _Reject as rejection:
            error: dict[str, Any] = {"status": "error", "error": rejection.error}
            if self.flaw == "echoes-body-on-error" and rejection.error in _DATA_ERRORS:
                error["received"] = body.decode("utf-8", "replace")  # "to help debugging", tokens and all
            return rejection.status, json.dumps(error).encode()
        except (ValueError, OverflowError):  # what the latent flaws raise: the server's error page
            return 500, b'{"status":"error","error":"internal_error"}'
        return 200, json.dumps(answer).encode()

    def _handle(self, body: bytes, content_type: str | None) -> dict[str, Any]:
        if (content_type or _FORM).split(";")[0].strip().lower() != _FORM or not body.strip():
            raise _Reject(400, "not_a_form_body")
        if len(body) > _MAX_BODY:
            raise _Reject(413, "body_too_large")
        try:
            payload = decode(body)
        except (WireError, UnicodeDecodeError):
            raise _Reject(400, "malformed_body") from None
        event = _text(payload.get("event"))
        auth = payload.get("auth")
        if event is None or not isinstance(auth, dict):
            raise _Reject(400, "malformed_body")
        member_id = _text(auth.get("member_id"))
        token = _text(auth.get("application_token"))
        if event.upper() == "ONAPPINSTALL":
            endpoint = _text(auth.get("client_endpoint"))
            if member_id is None or token is None or endpoint is None:
                raise _Reject(400, "bad_install")
            with self._lock:
                self.installations[member_id] = Installation(token, _text(auth.get("access_token")), endpoint)
                if self.first_endpoint is None:
                    self.first_endpoint = endpoint
            return {"status": "ok"}
        if event.upper() == _NOTICE:
            # the offline queue changed: catch up from a worker, with the notice's own portal and token
            installation = self._authenticate(member_id, token, auth)
            endpoint = _text(auth.get("client_endpoint")) or installation.client_endpoint
            self._pool.submit(self._catch_up, endpoint, _text(auth.get("access_token")))
            return {"status": "ok"}
        if event.upper() not in _HANDLED:
            raise _Reject(400, "unsupported_event")
        installation = self._authenticate(member_id, token, auth)
        with self._lock:
            alerts, self._alerts = self._alerts, []
        for alert in alerts:
            self._pool.submit(self._post, *alert)
        if event.upper() == "ONIMCONNECTORMESSAGEADD":
            work = self._confirmations(payload.get("data"), "event_handler_id" in payload)
        else:
            chats = self._chats(payload.get("data"), "event_handler_id" in payload)
            work = [("im.message.add", {"DIALOG_ID": f"chat{chat}", "MESSAGE": "Hi"}) for chat in chats]
        if self.flaw == "slow-in-system-mode" and "access_token" not in auth:
            time.sleep(self.slow)
        with self._lock:
            digest = hashlib.sha256(body).digest()
            repeat = digest in self._seen
            self._seen.add(digest)
        if repeat and self.flaw == "hangs-on-repeats":
            time.sleep(self.hang)
        if repeat and self.flaw != "repeats-work":
            return {"status": "ok", "repeat": True}
        if self.flaw == "busy-under-load":
            self._busy_check()
        endpoint = _text(auth.get("client_endpoint")) or installation.client_endpoint
        if self.flaw == "calls-first-install-endpoint" and self.first_endpoint:
            endpoint = self.first_endpoint  # "the portal's URL", read once from the first install
        access = _text(auth.get("access_token")) or installation.access_token
        for method, params in work:
            self._pool.submit(self._post, endpoint, method, params, access)
        answer: dict[str, Any] = {"status": "ok", "items": len(work)}
        if self.flaw == "echoes-auth":
            answer["auth"] = auth
        return answer

    def _authenticate(
        self, member_id: str | None, token: str | None, auth: Mapping[str, Any]
    ) -> Installation:
        given = token or ""
        with self._lock:
            known = dict(self.installations)
        if self.flaw == "matches-token-of-any-portal":
            for installation in known.values():
                if hmac.compare_digest(given.encode(), installation.application_token.encode()):
                    return installation
            raise _Reject(403, "invalid_application_token")
        installation = known.get(member_id or "")
        if installation is None:
            if self.flaw == "trusts-unknown-portals" and member_id and token:
                endpoint = _text(auth.get("client_endpoint")) or ""
                installation = Installation(token, _text(auth.get("access_token")), endpoint)
                with self._lock:
                    self.installations[member_id] = installation
                return installation
            raise _Reject(403, "unknown_portal")
        if not hmac.compare_digest(given.encode(), installation.application_token.encode()):
            if self.flaw == "answers-200-to-forgery":
                raise _Reject(200, "ignored")
            if self.flaw == "alerts-with-forged-token" and not any(
                hmac.compare_digest(given.encode(), other.application_token.encode())
                for other in known.values()
            ):
                # "tell the portal's admin": with the forger's own endpoint and token, which is the flaw
                endpoint = _text(auth.get("client_endpoint")) or installation.client_endpoint
                access = _text(auth.get("access_token")) or installation.access_token
                alert = (endpoint, "im.notify.system.add", {"MESSAGE": "forged event"}, access)
                if self.alert_later:
                    with self._lock:
                        self._alerts.append(alert)
                else:
                    self._pool.submit(self._post, *alert)
            raise _Reject(403, "invalid_application_token")
        return installation

    def _chats(self, data: Any, has_handler_id: bool) -> list[str]:
        if self.flaw == "crashes-without-handler-id" and not has_handler_id:
            raise _Reject(500, "internal_error")  # read payload["event_handler_id"] unguarded
        block = data.get("DATA") if isinstance(data, dict) else None
        if isinstance(block, list):
            items: list[Any] = block
        elif isinstance(block, dict):
            items = [block[k] for k in sorted(block, key=int)] if all(k.isdigit() for k in block) else [block]
        else:
            raise _Reject(400, "no_data")
        chats = []
        for item in items:
            if not isinstance(item, dict):
                raise _Reject(400, "bad_item")
            if self.flaw == "rejects-docs-2026" and "session" in item:
                raise _Reject(400, "unknown_shape")
            self._latent(item)
            chat = item.get("chat")
            chat_id = _text(chat.get("id")) or _text(chat.get("chat_id")) if isinstance(chat, dict) else None
            if chat_id is None or not chat_id.isdigit():
                raise _Reject(400, "no_chat_id")
            chats.append(chat_id)
        return chats

    def _confirmations(self, data: Any, has_handler_id: bool) -> list[tuple[str, dict[str, str]]]:
        if self.flaw == "crashes-without-handler-id" and not has_handler_id:
            raise _Reject(500, "internal_error")
        block = data.get("MESSAGES") if isinstance(data, dict) else None
        if not isinstance(block, (list, dict)) or not block:
            raise _Reject(400, "no_messages")
        assert isinstance(data, dict)
        connector, line = _text(data.get("CONNECTOR")), _text(data.get("LINE"))
        work = []
        for item in block if isinstance(block, list) else block.values():
            im = item.get("im") if isinstance(item, dict) else None
            if connector is None or line is None or not isinstance(im, dict):
                raise _Reject(400, "bad_message")
            self._latent(item)
            params = {
                "CONNECTOR": connector,
                "LINE": line,
                "MESSAGES[0][im][chat_id]": str(im.get("chat_id", "")),
                "MESSAGES[0][im][message_id]": str(im.get("message_id", "")),
            }
            work.append(("imconnector.send.status.delivery", params))
        return work

    def _latent(self, item: Any) -> None:
        """The latent flaws, on one ``DATA`` or ``MESSAGES`` item (a ValueError or OverflowError is a 500)."""
        if self.flaw == "crashes-on-non-numeric-id":
            # checks the item's numeric ids (chat, line, user, session, message) and raises on a bad one where
            # it should refuse the event: unhandled, so the server answers 500 instead of 400
            for name, value in _leaves(item):
                if name in _NUMERIC_IDS and not (value.isascii() and value.isdigit()):
                    raise ValueError(f"{name} is not a number")
        elif self.flaw == "crashes-on-large-ids":
            # the item's numeric ids into 32-bit integer columns: a valid id past 2**31-1 overflows, unhandled
            for name, value in _leaves(item):
                if name in _NUMERIC_IDS and value.isascii() and value.isdigit() and int(value) >= 2**31:
                    raise OverflowError(f"{name} {value} does not fit a 32-bit column")

    def _busy_check(self) -> None:
        # one event at a time, and each takes a moment: a second concurrent delivery is turned away
        with self._lock:
            self._in_flight += 1
            busy = self._in_flight > 1
        try:
            if busy:
                raise _Reject(503, "busy")
            time.sleep(0.05)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _catch_up(self, endpoint: str, token: str | None) -> None:
        # take a batch (reserved under a process_id), process it, confirm it; until the queue is empty
        with self._offline_lock:
            for _ in range(_MAX_BATCHES):
                answer = self._post(endpoint, "event.offline.get", {"clear": "0", "limit": "50"}, token)
                result = answer.get("result") if isinstance(answer, dict) else None
                if not isinstance(result, dict) or not result.get("events"):
                    return
                # a real app fetches here the objects the records name, and passes them on
                if self.flaw != "never-clears-offline":
                    self._post(
                        endpoint, "event.offline.clear", {"process_id": str(result["process_id"])}, token
                    )

    def _post(self, endpoint: str, method: str, params: dict[str, str], token: str | None) -> Any:
        session = getattr(self._http, "session", None)
        if session is None:
            session = self._http.session = requests.Session()
        base = endpoint if endpoint.endswith("/") else endpoint + "/"
        try:
            answer = session.post(base + method + ".json", data={**params, "auth": token or ""}, timeout=10)
            return answer.json()
        except (requests.RequestException, ValueError):  # a failed call is the portal's record to show
            return None
