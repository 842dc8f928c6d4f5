"""The reference Bitrix24 event handler: a WSGI app that honours the b24-contract.

What it does, and where each rule comes from (BITRIX24-EVENTS.md is "facts"; doc pages are under
``docs/b24restdocs/``):

* ONAPPINSTALL stores, per ``member_id``, the ``application_token``, the OAuth tokens and the endpoints
  (facts §2, §5; api-reference/events/safe-event-handlers.md). ONAPPUPDATE replaces them, ONAPPUNINSTALL
  forgets them; both are checked against the stored token (ONAPPUNINSTALL carries no OAuth tokens, so the
  stored token is the only check there).
* Every other event must carry ``auth[application_token]`` equal (constant-time comparison) to the one stored
  for its ``member_id``, or to a token given in configuration; otherwise 401/403 and nothing happens
  (settings/cloud-and-on-premise/security-recommendations.md, "Validate application_token in Events").
* ONSESSIONSTART is accepted in its three known shapes (facts §3) and answered at once; the work (one
  ``im.message.add`` per session, at the event's own ``client_endpoint``) runs on a queue of worker threads
  (settings/performance/queue.md). An ``expired_token`` answer triggers one token refresh at the OAuth server.
* ONIMCONNECTORMESSAGEADD (an operator's message going out through the app's connector, facts §4) is
  answered at once; a worker confirms each message with ``imconnector.send.status.delivery``
  (tutorials/openlines/example-connector.md, step 5). The handler has no external messenger of its own: the
  messages are logged (ids only) and kept in a bounded outbox, :meth:`HandlerApp.outbox`.
* A byte-identical repeated delivery is answered 200 and does nothing (bounded de-duplication).
* Responses and logs never contain ``access_token``, ``refresh_token`` or ``application_token``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ._form import FormError, FormLimitError, as_items, parse_form

__all__ = ["ConnectorMessage", "HandlerApp", "HandlerConfig", "Installation", "Response", "Session"]

log = logging.getLogger("b24_handler")

DEFAULT_TOKEN_URL = "https://oauth.bitrix.info/oauth/token/"
FORM_TYPE = "application/x-www-form-urlencoded"
_HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class HandlerConfig:
    """Settings of the handler; every field has a command-line flag and an environment variable."""

    client_id: str | None = None
    """The app's ``client_id``, needed only to refresh expired tokens."""
    client_secret: str | None = None
    """The app's ``client_secret``, needed only to refresh expired tokens."""
    credentials_file: str | None = None
    """A JSON file ``{"client_id": ..., "client_secret": ...}``, read when a refresh needs it (so it can be
    written or rotated after the handler started); the two fields above win when set."""
    application_token: str | None = None
    """An application token given in configuration, for installations this handler never saw."""
    member_id: str | None = None
    """If set, the configured ``application_token`` is accepted only for this ``member_id``."""
    token_url: str | None = None
    """The OAuth token URL; by default derived from ``server_endpoint`` (``/rest/`` -> ``/oauth/token/``)."""
    message: str = "Hello! Thank you for writing to {line}. An operator will answer you shortly."
    """The text sent to every new session; ``{line}`` is the open line's name (or "us")."""
    max_body_bytes: int = 1 << 20
    max_fields: int = 1000
    max_depth: int = 64
    workers: int = 4
    queue_size: int = 10_000
    dedup_size: int = 4096
    rest_timeout: float = 10.0


@dataclass
class Installation:
    """What the handler keeps for one portal (one ``member_id``)."""

    application_token: str
    access_token: str | None = None
    refresh_token: str | None = None
    expires: str | None = None
    client_endpoint: str | None = None
    server_endpoint: str | None = None
    domain: str | None = None

    def __repr__(self) -> str:  # never print the secrets
        return f"Installation(domain={self.domain!r}, client_endpoint={self.client_endpoint!r})"


@dataclass(frozen=True)
class Session:
    """One Open Lines session taken from ``data[DATA]``: the chat to write to and the line's name."""

    chat_id: str
    line_name: str | None = None


@dataclass(frozen=True)
class ConnectorMessage:
    """One operator message of an OnImConnectorMessageAdd, to be sent out to the external chat."""

    connector: str
    line: str
    chat_id: str
    """``im[chat_id]``: the Open Lines chat inside Bitrix24."""
    message_id: str
    """``im[message_id]``: the message inside Bitrix24."""
    external_chat_id: str
    """``chat[id]``: the chat in the external messenger."""
    text: str


@dataclass(frozen=True)
class Response:
    """The HTTP answer to one delivery."""

    status: int
    body: dict[str, Any]

    def encoded(self) -> bytes:
        """The JSON body as bytes."""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class _Job:
    member_id: str
    client_endpoint: str
    server_endpoint: str | None
    access_token: str | None
    sessions: tuple[Session, ...] = ()
    messages: tuple[ConnectorMessage, ...] = ()


def _ok(message: str, **extra: Any) -> Response:
    return Response(200, {"status": "ok", "message": message, **extra})


def _error(status: int, error: str, detail: str) -> Response:
    # the shape follows security-recommendations.md ("Event rejection")
    return Response(status, {"status": "error", "error": error, "detail": detail})


def _text(value: Any) -> str | None:
    """A non-empty string scalar, or None (null values vanish on the wire: facts §1)."""
    return value if isinstance(value, str) and value != "" else None


def _http_url(value: str | None) -> bool:
    if value is None:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def token_url_for(server_endpoint: str | None) -> str:
    """The OAuth token URL for a ``server_endpoint`` such as ``https://oauth.bitrix.info/rest/``.

    settings/oauth: tokens are renewed at ``https://oauth.bitrix.info/oauth/token/``, i.e.
    ``/oauth/token/`` on the OAuth server's host (the mock portal's ``.../oauth/rest/`` maps the same way).
    ``server_endpoint`` was missing from events for some weeks in late 2024 (facts §2), hence the default.
    """
    if not _http_url(server_endpoint):
        return DEFAULT_TOKEN_URL
    assert server_endpoint is not None
    parts = urlsplit(server_endpoint)
    return urlunsplit((parts.scheme, parts.netloc, "/oauth/token/", "", ""))


def _chat_id(item: Mapping[str, Any], where: str) -> str:
    chat = item.get("chat")
    if not isinstance(chat, dict):
        raise ValueError(f"{where}[chat] is missing")
    # docs-2024 and docs-2026 name it chat[id], source-2024 chat[chat_id] (facts §3)
    raw = _text(chat.get("id")) or _text(chat.get("chat_id"))
    if raw is None:
        raise ValueError(f"{where}[chat] has neither id nor chat_id")
    if not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{where}[chat] id {raw[:40]!r} is not a positive integer")
    return str(int(raw))


def _line_name(item: Mapping[str, Any]) -> str | None:
    line = item.get("line")
    return _text(line.get("name")) if isinstance(line, dict) else None


def sessions_from(data: Any) -> tuple[Session, ...]:
    """The sessions of an OnSessionStart ``data`` block, in any of the three known shapes (facts §3).

    ``source-2024`` sends ``data[DATA]`` as one object, ``docs-2024`` and ``docs-2026`` as a list. Unknown
    extra keys are ignored. Raises ``ValueError`` naming the first item that has no usable chat id.
    """
    block = data.get("DATA") if isinstance(data, dict) else None
    if not isinstance(block, dict):
        raise ValueError("data[DATA] is missing or not a structure")
    items = as_items(block)
    if items is None:
        return (Session(_chat_id(block, "data[DATA]"), _line_name(block)),)
    sessions = []
    for index, item in enumerate(items):
        where = f"data[DATA][{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} is not a structure")
        sessions.append(Session(_chat_id(item, where), _line_name(item)))
    return tuple(sessions)


def _positive_id(value: Any, where: str) -> str:
    raw = _text(value)
    if raw is None or not raw.isascii() or not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{where} is missing or not a positive integer")
    return str(int(raw))


def connector_messages_from(data: Any) -> tuple[ConnectorMessage, ...]:
    """The messages of an OnImConnectorMessageAdd ``data`` block: ``CONNECTOR``, ``LINE`` and
    ``MESSAGES[n]{im{chat_id, message_id}, message{text}, chat{id}}`` (facts §4, the connector captures).
    Raises ``ValueError`` naming the first field that is missing."""
    if not isinstance(data, dict):
        raise ValueError("data is missing or not a structure")
    connector = _text(data.get("CONNECTOR"))
    if connector is None:
        raise ValueError("data[CONNECTOR] is missing")
    line = _positive_id(data.get("LINE"), "data[LINE]")
    # a PHP list arrives as keys 0..n-1; a single message may be sent as one structure
    block = data.get("MESSAGES")
    items = as_items(block) if isinstance(block, dict) else None
    if items is None:
        raise ValueError("data[MESSAGES] is missing or not a list")
    out = []
    for index, item in enumerate(items):
        where = f"data[MESSAGES][{index}]"
        im = item.get("im") if isinstance(item, dict) else None
        if not isinstance(im, dict):
            raise ValueError(f"{where}[im] is missing")
        chat = item.get("chat")
        message = item.get("message")
        out.append(
            ConnectorMessage(
                connector=connector,
                line=line,
                chat_id=_positive_id(im.get("chat_id"), f"{where}[im][chat_id]"),
                message_id=_positive_id(im.get("message_id"), f"{where}[im][message_id]"),
                external_chat_id=(_text(chat.get("id")) if isinstance(chat, dict) else None) or "",
                text=(_text(message.get("text")) if isinstance(message, dict) else None) or "",
            )
        )
    return tuple(out)


class _Seen:
    """A bounded set of body digests, for de-duplicating repeated deliveries."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, body: bytes) -> bool:
        digest = hashlib.sha256(body).digest()
        with self._lock:
            if digest in self._digests:
                self._digests.move_to_end(digest)
                return False
            self._digests[digest] = None
            if len(self._digests) > self._size:
                self._digests.popitem(last=False)
            return True


class HandlerApp:
    """The handler as a WSGI app (``app(environ, start_response)``), plus :meth:`handle` for in-process use.

    Call :meth:`start` before serving (it starts the worker threads) and :meth:`close` when done;
    :meth:`join` waits until every queued job has been worked, which in-process tests use instead of sleeping.
    """

    def __init__(
        self, config: HandlerConfig | None = None, *, session_factory: Callable[[], Any] = requests.Session
    ):
        self.config = config or HandlerConfig()
        self._installations: dict[str, Installation] = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._seen = _Seen(self.config.dedup_size)
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=self.config.queue_size)
        self._workers: list[threading.Thread] = []
        self._session_factory = session_factory
        self._local = threading.local()
        self._outbox: deque[ConnectorMessage] = deque(maxlen=self.config.dedup_size)

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> HandlerApp:
        """Start the worker threads (idempotent); return the app."""
        if not self._workers:
            for number in range(max(1, self.config.workers)):
                worker = threading.Thread(target=self._work, name=f"b24-worker-{number}", daemon=True)
                worker.start()
                self._workers.append(worker)
        return self

    def join(self) -> None:
        """Block until every job queued so far has been worked."""
        self._jobs.join()

    def close(self, timeout: float = 10.0) -> None:
        """Let the workers finish the queued jobs, then stop them."""
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()

    def outbox(self) -> list[ConnectorMessage]:
        """The operator messages received through the connector (the latest ``dedup_size``), oldest first:
        what a real connector would hand to its external messenger."""
        with self._lock:
            return list(self._outbox)

    def installation(self, member_id: str) -> Installation | None:
        """The stored installation of a portal, if any."""
        with self._lock:
            return self._installations.get(member_id)

    # ---- HTTP -------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = self._from_environ(environ)
        payload = response.encoded()
        headers = [*_HEADERS, ("Content-Length", str(len(payload)))]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Unknown')}", headers)
        return [payload]

    def _from_environ(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and environ.get("PATH_INFO") == "/healthz":
            return _ok("ready")
        if method != "POST":
            return _error(405, "method_not_allowed", "events are delivered with POST")
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return _error(411, "length_required", "send the body with a Content-Length, not chunked")
        length_text = environ.get("CONTENT_LENGTH") or ""
        if not length_text.isdigit():
            return _error(411, "length_required", "the request has no valid Content-Length")
        length = int(length_text)
        if length > self.config.max_body_bytes:
            return _error(413, "body_too_large", f"{length} bytes; the limit is {self.config.max_body_bytes}")
        try:
            body = environ["wsgi.input"].read(length) if length else b""
        except (TimeoutError, OSError):
            return _error(408, "body_timeout", f"the body did not arrive (Content-Length {length})")
        if len(body) < length:
            return _error(400, "body_truncated", f"got {len(body)} of {length} bytes")
        return self.handle(body, environ.get("CONTENT_TYPE"))

    def handle(self, body: bytes, content_type: str | None = FORM_TYPE) -> Response:
        """Answer one delivery: check it, update the state or queue the work, and say what happened."""
        try:
            return self._handle(body, content_type)
        except Exception:
            log.exception("internal error while handling a delivery")
            return _error(500, "internal_error", "the handler failed; see its log")

    def _handle(self, body: bytes, content_type: str | None) -> Response:
        media_type = (content_type or "").split(";")[0].strip().lower()
        if media_type and media_type != FORM_TYPE:
            # events are always form-encoded (facts §1); JSON is only how the docs render them
            return _error(415, "unsupported_media_type", f"expected {FORM_TYPE}, got {media_type[:60]}")
        if len(body) > self.config.max_body_bytes:
            return _error(
                413, "body_too_large", f"{len(body)} bytes; the limit is {self.config.max_body_bytes}"
            )
        if not body.strip():
            return _error(400, "empty_body", "the body is empty")
        try:
            payload = parse_form(body, max_fields=self.config.max_fields, max_depth=self.config.max_depth)
        except FormLimitError as exc:
            return _error(413, "body_over_limit", str(exc))
        except FormError as exc:
            return _error(400, "malformed_body", str(exc))
        event = _text(payload.get("event"))
        if event is None:
            return _error(400, "malformed_body", "the body has no 'event' field (is it form-encoded?)")
        event = event.upper()
        auth = payload.get("auth")
        if not isinstance(auth, dict):
            return _error(401, "missing_auth", "the body has no auth block")
        if event == "ONAPPINSTALL":
            return self._install(auth)
        if event == "ONAPPUNINSTALL":
            return self._uninstall(auth)
        if event == "ONAPPUPDATE":
            return self._update(auth)
        member_id, rejection = self._authenticate(auth, event)
        if rejection is not None:
            return rejection
        assert member_id is not None
        if event == "ONSESSIONSTART":
            return self._session_start(member_id, body, payload.get("data"), auth)
        if event == "ONIMCONNECTORMESSAGEADD":
            return self._connector_message(member_id, body, payload.get("data"), auth)
        log.info("%s from member %r: accepted, nothing to do", event, member_id)
        return _ok("event accepted", event=event)

    # ---- authentication and the app lifecycle -----------------------------------------------------

    def _authenticate(self, auth: Mapping[str, Any], event: str) -> tuple[str | None, Response | None]:
        member_id = _text(auth.get("member_id"))
        given = _text(auth.get("application_token"))
        if member_id is None or given is None:
            log.warning("%s rejected: auth has no member_id or application_token", event)
            return None, _error(
                401, "invalid_application_token", "auth[member_id] and auth[application_token] are required"
            )
        stored = self.installation(member_id)
        expected = stored.application_token if stored is not None else self._configured_token(member_id)
        # compare even when nothing is stored, so the answer takes the same time either way
        matches = _same_secret(given, expected if expected is not None else given + "\x00")
        if expected is None or not matches:
            log.warning("%s rejected: application_token does not match for member %r", event, member_id[:64])
            return None, _error(
                403, "invalid_application_token", "auth[application_token] is not the one on record"
            )
        return member_id, None

    def _configured_token(self, member_id: str) -> str | None:
        """The token given in configuration, for installations this handler did not see."""
        if self.config.application_token and self.config.member_id in (None, member_id):
            return self.config.application_token
        return None

    def _install(self, auth: Mapping[str, Any]) -> Response:
        member_id = _text(auth.get("member_id"))
        token = _text(auth.get("application_token"))
        if member_id is None or token is None:
            return _error(
                400, "invalid_install", "ONAPPINSTALL needs auth[member_id] and auth[application_token]"
            )
        client_endpoint = _text(auth.get("client_endpoint"))
        if client_endpoint is not None and not _http_url(client_endpoint):
            return _error(400, "invalid_install", "auth[client_endpoint] is not an http(s) URL")
        installation = Installation(
            application_token=token,
            access_token=_text(auth.get("access_token")),
            refresh_token=_text(auth.get("refresh_token")),
            expires=_text(auth.get("expires")),
            client_endpoint=client_endpoint,
            server_endpoint=_text(auth.get("server_endpoint")),
            domain=_text(auth.get("domain")),
        )
        with self._lock:
            replaced = member_id in self._installations
            self._installations[member_id] = installation
        log.info(
            "ONAPPINSTALL: %s member %r (%r)",
            "re-installed" if replaced else "installed",
            member_id,
            installation.domain,
        )
        return _ok("installed")

    def _update(self, auth: Mapping[str, Any]) -> Response:
        """ONAPPUPDATE may bring a new application_token (api-reference/common/events/on-app-update.md).

        With the token on record it simply replaces the OAuth tokens. With a new token it is accepted only if
        its access_token works at the portal already on record (``app.info`` at the stored client_endpoint),
        as safe-event-handlers.md suggests for ONAPPINSTALL; anything else is refused without a change.
        """
        member_id = _text(auth.get("member_id"))
        given = _text(auth.get("application_token"))
        if member_id is None or given is None:
            return _error(
                401, "invalid_application_token", "auth[member_id] and auth[application_token] are required"
            )
        stored = self.installation(member_id)
        on_record = stored.application_token if stored is not None else self._configured_token(member_id)
        known = on_record is not None and _same_secret(given, on_record)
        confirmed = known or (
            stored is not None and self._portal_confirms(member_id, stored, _text(auth.get("access_token")))
        )
        if not confirmed:
            log.warning(
                "ONAPPUPDATE rejected: application_token does not match for member %r", member_id[:64]
            )
            return _error(
                403, "invalid_application_token", "auth[application_token] is not the one on record"
            )
        with self._lock:
            record = self._installations.setdefault(member_id, Installation(application_token=given))
            record.application_token = given
            for name in (
                "access_token",
                "refresh_token",
                "expires",
                "client_endpoint",
                "server_endpoint",
                "domain",
            ):
                value = _text(auth.get(name))
                if value is not None:
                    setattr(record, name, value)
        log.info("ONAPPUPDATE: tokens of member %r replaced", member_id)
        return _ok("updated")

    def _portal_confirms(self, member_id: str, stored: Installation, access_token: str | None) -> bool:
        if access_token is None or not _http_url(stored.client_endpoint):
            return False
        assert stored.client_endpoint is not None
        base = (
            stored.client_endpoint if stored.client_endpoint.endswith("/") else stored.client_endpoint + "/"
        )
        status, answer = self._post(base + "app.info.json", {"auth": access_token})
        confirmed = status == 200 and "result" in answer and "error" not in answer
        log.info(
            "ONAPPUPDATE with a new application_token for member %r: portal %s",
            member_id,
            "confirmed it" if confirmed else "did not confirm it",
        )
        return confirmed

    def _uninstall(self, auth: Mapping[str, Any]) -> Response:
        member_id, rejection = self._authenticate(auth, "ONAPPUNINSTALL")
        if rejection is not None:
            return rejection
        with self._lock:
            known = self._installations.pop(str(member_id), None) is not None
        log.info("ONAPPUNINSTALL: member %r %s", member_id, "forgotten" if known else "was not stored")
        return _ok("uninstalled")

    # ---- OnSessionStart ---------------------------------------------------------------------------

    def _session_start(self, member_id: str, body: bytes, data: Any, auth: Mapping[str, Any]) -> Response:
        try:
            sessions = sessions_from(data)
        except ValueError as exc:
            return _error(400, "invalid_data", str(exc))
        return self._queue("ONSESSIONSTART", member_id, body, auth, sessions=sessions)

    # ---- OnImConnectorMessageAdd -------------------------------------------------------------------

    def _connector_message(self, member_id: str, body: bytes, data: Any, auth: Mapping[str, Any]) -> Response:
        try:
            messages = connector_messages_from(data)
        except ValueError as exc:
            return _error(400, "invalid_data", str(exc))
        return self._queue("ONIMCONNECTORMESSAGEADD", member_id, body, auth, messages=messages)

    def _queue(
        self,
        event: str,
        member_id: str,
        body: bytes,
        auth: Mapping[str, Any],
        *,
        sessions: tuple[Session, ...] = (),
        messages: tuple[ConnectorMessage, ...] = (),
    ) -> Response:
        """Answer at once and leave the REST work to the workers (settings/performance/queue.md)."""
        counted = "messages" if event == "ONIMCONNECTORMESSAGEADD" else "sessions"
        stored = self.installation(member_id)
        # the work goes to the event's own portal (facts §2: client_endpoint is https://<domain>/rest/)
        client_endpoint = _text(auth.get("client_endpoint")) or (stored.client_endpoint if stored else None)
        if not _http_url(client_endpoint):
            return _error(400, "invalid_auth", "auth[client_endpoint] is missing or not an http(s) URL")
        assert client_endpoint is not None
        if not self._seen.first_time(body):
            log.info("%s from member %r: repeated delivery ignored", event, member_id)
            return _ok("duplicate delivery ignored", **{counted: 0})
        job = _Job(
            member_id=member_id,
            client_endpoint=client_endpoint if client_endpoint.endswith("/") else client_endpoint + "/",
            server_endpoint=_text(auth.get("server_endpoint")),
            # user mode carries a token; system mode does not, and the stored one is used (facts §2)
            access_token=_text(auth.get("access_token")),
            sessions=sessions,
            messages=messages,
        )
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return _error(503, "queue_full", "too many events waiting; the handler is overloaded")
        count = len(sessions) + len(messages)
        log.info("%s from member %r: %d %s queued", event, member_id, count, counted)
        return _ok("event accepted", **{counted: count})

    # ---- the worker -------------------------------------------------------------------------------

    def _http(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._session_factory()
            self._local.client = client
        return client

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._run(job)
            except Exception:
                log.exception("a queued job failed")
            finally:
                self._jobs.task_done()

    def _run(self, job: _Job) -> None:
        for session in job.sessions:
            line = session.line_name or "us"
            message = self.config.message.replace("{line}", line)
            params = {"DIALOG_ID": f"chat{session.chat_id}", "MESSAGE": message}
            self._call(job, "im.message.add", params)
        for item in job.messages:
            with self._lock:
                self._outbox.append(item)
            # delivered: confirm it with the im ids from the event (example-connector.md, step 5)
            confirm = {
                "CONNECTOR": item.connector,
                "LINE": item.line,
                "MESSAGES[0][im][chat_id]": item.chat_id,
                "MESSAGES[0][im][message_id]": item.message_id,
                "MESSAGES[0][message][id][0]": item.message_id,
                "MESSAGES[0][chat][id]": item.external_chat_id,
            }
            self._call(job, "imconnector.send.status.delivery", confirm)

    def _call(self, job: _Job, method: str, params: dict[str, str]) -> dict[str, Any] | None:
        token = job.access_token
        if token is None:
            stored = self.installation(job.member_id)
            token = stored.access_token if stored else None
        if token is None:
            log.warning(
                "%s for member %r skipped: no OAuth token (system-mode event, no install on record)",
                method,
                job.member_id,
            )
            return None
        status, answer = self._post(job.client_endpoint + method + ".json", {**params, "auth": token})
        if answer.get("error") == "expired_token":
            fresh = self._refresh(job, token)
            if fresh is None:
                return None
            status, answer = self._post(job.client_endpoint + method + ".json", {**params, "auth": fresh})
        if "error" in answer or status >= 400:
            log.warning(
                "%s for member %r failed: HTTP %d %r", method, job.member_id, status, answer.get("error", "")
            )
            return None
        log.info("%s for member %r: %s", method, job.member_id, params.get("DIALOG_ID", ""))
        return answer

    def _post(self, url: str, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            reply = self._http().post(url, data=data, timeout=self.config.rest_timeout)
        except requests.RequestException as exc:
            log.warning("POST %s failed: %s", url, type(exc).__name__)
            return 0, {"error": "transport_error"}
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {"error": "not_json"} if reply.status_code >= 400 else {}
        return int(reply.status_code), answer

    def _client_credentials(self) -> tuple[str | None, str | None]:
        client_id, client_secret = self.config.client_id, self.config.client_secret
        if (client_id and client_secret) or not self.config.credentials_file:
            return client_id, client_secret
        try:
            with open(self.config.credentials_file, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as exc:
            log.warning("cannot read the credentials file: %s", type(exc).__name__)
            return client_id, client_secret
        if not isinstance(loaded, dict):
            return client_id, client_secret
        return client_id or _text(loaded.get("client_id")), client_secret or _text(
            loaded.get("client_secret")
        )

    def _refresh(self, job: _Job, expired: str) -> str | None:
        """Renew the member's tokens once (settings/oauth: grant_type=refresh_token); return the new token."""
        with self._refresh_lock:
            stored = self.installation(job.member_id)
            if stored is None or stored.refresh_token is None:
                log.warning(
                    "token of member %r expired and there is no refresh_token on record", job.member_id
                )
                return None
            if stored.access_token is not None and stored.access_token != expired:
                return stored.access_token  # another worker refreshed it already
            client_id, client_secret = self._client_credentials()
            if not (client_id and client_secret):
                log.warning(
                    "token of member %r expired; set client_id and client_secret to refresh it", job.member_id
                )
                return None
            url = self.config.token_url or token_url_for(job.server_endpoint or stored.server_endpoint)
            query = {
                "grant_type": "refresh_token",
                "client_id": client_id,
                "client_secret": client_secret,
                "refresh_token": stored.refresh_token,
            }
            try:
                reply = self._http().get(url, params=query, timeout=self.config.rest_timeout)
                answer = reply.json()
            except (requests.RequestException, ValueError) as exc:
                log.warning("token refresh for member %r failed: %s", job.member_id, type(exc).__name__)
                return None
            if not isinstance(answer, dict) or not _text(answer.get("access_token")):
                error = answer.get("error", "no access_token") if isinstance(answer, dict) else "not JSON"
                log.warning(
                    "token refresh for member %r refused: HTTP %d %r", job.member_id, reply.status_code, error
                )
                return None
            with self._lock:
                stored.access_token = str(answer["access_token"])
                stored.refresh_token = _text(answer.get("refresh_token")) or stored.refresh_token
                stored.expires = str(answer.get("expires", stored.expires or "")) or None
                stored.client_endpoint = _text(answer.get("client_endpoint")) or stored.client_endpoint
                stored.server_endpoint = _text(answer.get("server_endpoint")) or stored.server_endpoint
            log.info("token of member %r refreshed", job.member_id)
            return stored.access_token
