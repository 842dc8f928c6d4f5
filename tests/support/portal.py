"""Helpers for the portal, REST and server tests: an in-process recording handler and small factories."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from mock_portal.delivery import CallableTarget
from mock_portal.portal import App, Clock, Portal, Token
from mock_portal.wire import decode

HANDLER_BASE = "http://handler.example.test/"
"""The URL prefix the recording handler answers for (routed in process: nothing goes on the wire)."""


class Recorder:
    """A handler that decodes and keeps every event it receives and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, body: bytes, headers: Mapping[str, str], url: str) -> int:
        payload = decode(body)
        with self._lock:
            self.received.append((url, payload))
        return self.status

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Payloads received, optionally only those of event ``name``."""
        with self._lock:
            return [p for _, p in self.received if name is None or p.get("event") == name]

    def urls(self) -> list[str]:
        with self._lock:
            return [u for u, _ in self.received]


def recording_portal(*, seed: int = 1, clock: Clock | None = None, **options: Any) -> tuple[Portal, Recorder]:
    """A portal whose handler URLs under :data:`HANDLER_BASE` are delivered to a :class:`Recorder`."""
    portal = Portal(seed=seed, clock=clock or Clock(start=1_750_000_000.0), **options)
    recorder = Recorder()
    portal.route(HANDLER_BASE, CallableTarget(recorder))
    return portal, recorder


def install(
    portal: Portal, name: str = "app", *, events: tuple[str, ...] = ("ONSESSIONSTART",), **options: Any
) -> tuple[App, Token]:
    """Install an app whose install URL and handlers are under :data:`HANDLER_BASE`."""
    handlers = {event: f"{HANDLER_BASE}{name}/{event.lower()}" for event in events}
    app, token, _ = portal.install_app(f"{HANDLER_BASE}{name}/install", handlers=handlers, **options)
    return app, token
