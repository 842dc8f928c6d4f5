"""Replaying recorded or captured events against a handler, re-stamped for a mock portal.

::

    events, skipped = load_events("recording.jsonl")      # or fixtures/captures, or one NAME.wire.txt
    with Replayer("http://127.0.0.1:8080/events") as replayer:   # a mock portal; the handler installed
        for result in replayer.replay(events):
            print(result.event.event, result.attempt.outcome)

What can be replayed: the JSON lines ``mock-portal record`` writes (every delivery whose request is a form
body with an ``event``), wire bodies (``NAME.wire.txt``: a body exactly as a portal POSTs it), captured or
decoded payloads (``NAME.json``: a payload, or a capture ``{"payload": {...}}``; skipped when a ``.wire.txt``
twin exists), and folders of them (sorted by name, ONAPPUNINSTALL last). Everything else is listed as
skipped, with the reason.

Re-stamping makes an event the mock portal's own, so the handler can trust it and call back: a fresh ``ts``;
in every ``auth`` block (the top-level one and nested ones such as a bot's ``AUTH``) the portal's ``domain``,
``member_id``, ``client_endpoint``, ``server_endpoint``, ``status`` and the app's ``application_token``; where
the block carried OAuth tokens, a token the portal issues for this event (``access_token``, ``expires``,
``expires_in``, ``user_id``; ``refresh_token`` when the block had one); ``client_id`` where present. The rest
of the payload, ids and text included, is sent exactly as recorded (PHP form encoding, facts §1).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mock_portal.errors import MockPortalError, UsageError, WireError

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, Deliverer
    from mock_portal.portal import App, Portal, RestCall, Token
    from mock_portal.server import PortalServer

__all__ = ["RecordedEvent", "Replayed", "Replayer", "load_events", "needs_token", "restamp", "stamp_for"]

_MAX_FILE_BYTES: Final = 64 << 20
_MAX_EVENTS: Final = 100_000
# keys that mark a mapping as an auth block (facts §2); the top-level `auth` always is one
_AUTH_MARKERS: Final = frozenset({"member_id", "application_token", "access_token", "client_endpoint"})
_TOKEN_KEYS: Final = ("access_token", "expires", "expires_in", "user_id")


@dataclass(frozen=True)
class RecordedEvent:
    """One event to replay: where it came from (``file`` or ``file:line``), its name and decoded payload
    (as ``parse_str`` gives it), and the status the handler answered when it was recorded, if known."""

    source: str
    event: str
    payload: dict[str, Any]
    recorded_status: int | None = None


# ------------------------------------------------------------------------------------------------ loading


def _decode_form(data: bytes | str, where: str) -> dict[str, Any]:
    from mock_portal.wire import decode

    try:
        return decode(data)
    except WireError as exc:
        raise UsageError(f"{where}: not a form body a portal could send ({exc})") from None


def _event_of(payload: Any) -> str | None:
    name = payload.get("event") if isinstance(payload, dict) else None
    return name.strip().upper() if isinstance(name, str) and name.strip() else None


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise UsageError(f"{path}: larger than {_MAX_FILE_BYTES >> 20} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _from_recording(path: Path, events: list[RecordedEvent], skipped: list[str]) -> None:
    import base64

    for number, line in enumerate(_read(path).decode("utf-8", "replace").splitlines(), 1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UsageError(f"{where}: not a JSON line of a recording") from None
        request = record.get("request") if isinstance(record, dict) else None
        if not isinstance(request, dict):
            skipped.append(f"{where}: not a recorded delivery")
            continue
        if "body" in request:
            body: bytes = str(request["body"]).encode("utf-8")
        elif "body_base64" in request:
            body = base64.b64decode(str(request["body_base64"]))
        else:
            skipped.append(f"{where}: no body was recorded ({record.get('outcome')})")
            continue
        content_type = str(request.get("headers", {}).get("content-type", ""))
        if content_type and not content_type.startswith("application/x-www-form-urlencoded"):
            skipped.append(f"{where}: not a form body ({content_type[:60]})")
            continue
        try:
            payload = _decode_form(body, where)
        except UsageError as exc:
            skipped.append(str(exc))
            continue
        name = _event_of(payload)
        if name is None:
            skipped.append(f"{where}: no event in the body ({record.get('method')} {record.get('path')})")
            continue
        answer = record.get("answer")
        status = answer.get("status") if isinstance(answer, dict) else None
        events.append(RecordedEvent(where, name, payload, status if isinstance(status, int) else None))


def _from_file(path: Path, events: list[RecordedEvent], skipped: list[str]) -> None:
    name = path.name
    if name.endswith(".jsonl"):
        _from_recording(path, events, skipped)
        return
    if name.endswith(".wire.txt"):
        # http_build_query encodes every newline, so a raw one at the end was added by an editor
        payload = _decode_form(_read(path).rstrip(b"\r\n"), str(path))
    elif name.endswith(".json") and not name.endswith(".expect.json"):
        try:
            document = json.loads(_read(path))
        except ValueError:
            raise UsageError(f"{path}: not JSON") from None
        payload = document.get("payload", document) if isinstance(document, dict) else document
        if not isinstance(payload, dict):
            skipped.append(f"{path}: not an event payload")
            return
    else:
        skipped.append(f"{path}: not a recording, wire body or payload")
        return
    event = _event_of(payload)
    if event is None:
        skipped.append(f"{path}: no event in it")
        return
    events.append(RecordedEvent(str(path), event, payload))


def load_events(*paths: str | Path) -> tuple[list[RecordedEvent], list[str]]:
    """The events in ``paths`` (recordings, wire bodies, payloads, folders of them) and what was skipped
    and why. A path that does not exist or a file that cannot be read raises :class:`UsageError`."""
    events: list[RecordedEvent] = []
    skipped: list[str] = []
    if not paths:
        raise UsageError("give at least one recording, capture or folder to replay")
    for given in paths:
        path = Path(given)
        if path.is_dir():
            # a folder is a collection, not a timeline: by name, but an uninstall last, as one in the middle
            # would leave the handler refusing every later event
            files = sorted(
                (p for p in path.iterdir() if p.is_file()),
                key=lambda p: (p.name.upper().startswith("ONAPPUNINSTALL"), p.name),
            )
            wire_twins = {p.name[: -len(".wire.txt")] for p in files if p.name.endswith(".wire.txt")}
            for file in files:
                if file.name.endswith(".json") and file.name[: -len(".json")] in wire_twins:
                    continue  # the decoded twin of a wire body: the wire body is what is replayed
                if file.name.lower().endswith((".md", ".txt")) and not file.name.endswith(".wire.txt"):
                    continue
                _from_file(file, events, skipped)
        elif path.is_file():
            _from_file(path, events, skipped)
        else:
            raise UsageError(f"{given}: no such file or folder")
        if len(events) > _MAX_EVENTS:
            raise UsageError(f"more than {_MAX_EVENTS} events to replay")
    return events, skipped


# ------------------------------------------------------------------------------------------------ restamping


def _auth_blocks(value: Any, top: bool = True) -> Iterable[dict[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and ((top and key == "auth") or _AUTH_MARKERS & item.keys()):
                yield item
            yield from _auth_blocks(item, top=False)
    elif isinstance(value, list):
        for item in value:
            yield from _auth_blocks(item, top=False)


def needs_token(payload: Mapping[str, Any]) -> tuple[bool, bool]:
    """Whether ``payload`` carries OAuth tokens anywhere (user mode, facts §2), and a refresh token."""
    blocks = list(_auth_blocks(payload))
    return any("access_token" in b for b in blocks), any("refresh_token" in b for b in blocks)


def restamp(
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    client_id: str | None = None,
    refresh_token: str | None = None,
) -> dict[str, Any]:
    """A copy of ``payload`` re-stamped with ``context`` (what ``Portal.event_context(app, token=...)``
    returns): see the module docstring. Values are written as strings, as the form encoding sends them."""
    out = copy.deepcopy(dict(payload))
    if "ts" in out and context.get("ts") is not None:
        out["ts"] = str(context["ts"])
    for block in _auth_blocks(out):
        for key in (
            "domain",
            "member_id",
            "client_endpoint",
            "server_endpoint",
            "status",
            "application_token",
        ):
            if key in block and context.get(key) is not None:
                block[key] = str(context[key])
        if "access_token" in block:
            for key in _TOKEN_KEYS:
                if key in block and context.get(key) is not None:
                    block[key] = str(context[key])
        if "refresh_token" in block and refresh_token is not None:
            block["refresh_token"] = refresh_token
        if "client_id" in block and client_id is not None:
            block["client_id"] = client_id
    return out


def stamp_for(portal: Portal, app: App, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` re-stamped as an event of ``portal`` for ``app``: with a token the portal issues for it
    where it carried OAuth tokens (user mode), without one otherwise (system mode)."""
    wants_token, wants_refresh = needs_token(payload)
    token: Token | None = None
    if wants_token:
        token = portal.issue_token(app.client_id, refresh=wants_refresh)
    return restamp(
        payload,
        portal.event_context(app, token=token),
        client_id=app.client_id,
        refresh_token=token.refresh_token if token is not None else None,
    )


# ------------------------------------------------------------------------------------------------ replaying


@dataclass(frozen=True)
class Replayed:
    """One replayed event: the event as loaded, the body sent (re-stamped) and the delivery attempt."""

    event: RecordedEvent
    body: str
    attempt: Attempt


class Replayer:
    """A mock portal (its REST API live on 127.0.0.1) with the handler installed, that replays events to it.

    ``target`` is the handler URL every event goes to. The handler learns its app through ONAPPINSTALL to
    ``install_url`` (default: ``target``), or is configured with ``application_token``. ``server``: a running
    :class:`~mock_portal.server.PortalServer` to add the portal to (one is started and owned otherwise).
    """

    def __init__(
        self,
        target: str,
        *,
        install_url: str | None = None,
        application_token: str | None = None,
        timeout: float = 10.0,
        server: PortalServer | None = None,
    ) -> None:
        from mock_portal.delivery import Deliverer, as_target

        if install_url is not None and application_token is not None:
            raise UsageError("give either an install URL or an application token, not both")
        if not 0 < timeout <= 600:
            raise UsageError(f"the timeout must be from 0 to 600 seconds, got {timeout}")
        self.target = as_target(target, where="the handler URL")
        self.install_url = install_url or self.target.url
        self.application_token = application_token
        self.timeout = timeout
        self._own_server = server is None
        self._server = server
        self._deliverer: Deliverer = Deliverer(timeout=timeout)
        self.portal: Portal | None = None
        self.app: App | None = None
        self.install_attempts: list[Attempt] = []

    def start(self) -> Replayer:
        """Start the portal and install the handler's app; return self."""
        from mock_portal.server import PortalServer

        if self._server is None:
            self._server = PortalServer().start()
        try:
            self.portal = self._server.add_portal(None, delivery_timeout=self.timeout)
            if self.application_token is None:
                self.app, _, attempts = self.portal.install_app(self.install_url, timeout=self.timeout)
                self.install_attempts = list(attempts)
            else:
                self.app, _, _ = self.portal.install_app(None)
                self.app.application_token = self.application_token
        except MockPortalError:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the portal (and the server if the replayer started it)."""
        if self.portal is not None:
            self.portal.close()
        self._deliverer.close()
        if self._own_server and self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Replayer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def body_for(self, event: RecordedEvent) -> str:
        """The form body ``event`` is replayed as: re-stamped with a fresh token where it carried one."""
        from mock_portal.wire import encode

        portal, app = self._installed()
        return encode(stamp_for(portal, app, event.payload))

    def replay(self, events: Iterable[RecordedEvent]) -> list[Replayed]:
        """Deliver each event, one after another, as the portal would (one POST, no retry)."""
        results = []
        for event in events:
            body = self.body_for(event)
            attempt = self._deliverer.deliver(self.target, body, event=event.event, timeout=self.timeout)
            results.append(Replayed(event, body, attempt))
        return results

    def rest_calls(self, *, settle: float = 0.2, limit: float = 10.0) -> list[RestCall]:
        """The REST calls the handler made to the portal, once none arrived for ``settle`` seconds."""
        import time

        portal, _ = self._installed()
        deadline = time.monotonic() + limit
        seen = len(portal.rest_calls)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the portal's call log: a handler's queue gives no signal to wait on
            if len(portal.rest_calls) != seen:
                seen, quiet_since = len(portal.rest_calls), time.monotonic()
        return portal.calls()

    def _installed(self) -> tuple[Portal, App]:
        if self.portal is None or self.app is None:
            raise UsageError("the replayer is not started")
        return self.portal, self.app
