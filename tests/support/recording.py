"""A WSGI handler that keeps every event a portal sent it: the trigger and robot tests' handler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mock_portal.wire import decode


class EventRecorder:
    """Answers 200 and keeps every body it got, decoded, with the URL path it came to (the app it was sent
    for: tests give each app its own path). ``answer``, when set, is called with each payload (a robot's
    handler answering with ``bizproc.event.send``); what it returns is kept in ``sent``."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        payload = decode(environ["wsgi.input"].read(size))
        with self._lock:
            self.got.append((environ["PATH_INFO"].strip("/"), payload))
        if self.answer is not None:
            self.sent.append(self.answer(payload))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']

    def events(self, who: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        """The payloads sent to app ``who`` (any, by default), of ``event`` only if given, oldest first."""
        with self._lock:
            return [p for path, p in self.got if who in (None, path) and event in (None, p.get("event"))]

    def names(self, who: str) -> list[str]:
        """The event names sent to app ``who``, oldest first."""
        return [str(p.get("event", "")) for p in self.events(who)]

    def clear(self) -> None:
        """Forget everything, and answer nothing more."""
        with self._lock:
            self.got.clear()
            self.sent.clear()
            self.answer = None
