"""Helpers for the load, Locust and backend tests: loopback handlers that count what they receive."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from mock_portal.server import PortalServer
from tests.support.examples import HandlerProcess, python_handler_command


class CountingHandler:
    """A threaded HTTP/1.1 handler on 127.0.0.1 counting POSTed events by name; ``status`` is its answer."""

    def __init__(self, status: int = 200, close: bool = False) -> None:
        self.events: dict[str, int] = {}
        self.bodies = 0
        self._lock = threading.Lock()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event = dict(parse_qsl(body.decode())).get("event", "?")
                with owner._lock:
                    owner.bodies += 1
                    owner.events[event] = owner.events.get(event, 0) + 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                if close:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"OK")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def counting_handler(status: int = 200, close: bool = False) -> Iterator[CountingHandler]:
    handler = CountingHandler(status, close)
    try:
        yield handler
    finally:
        handler.close()


@contextlib.contextmanager
def reference_handler() -> Iterator[tuple[str, dict[str, str]]]:
    """The reference Python handler as a process, trusting one mock portal's installation; yields its URL and
    that portal's values (application_token, member_id, client_endpoint, domain) to put in every event.

    The app is installed on a :class:`~mock_portal.server.PortalServer` without an install URL (so nothing is
    delivered) and the handler is configured with its token; its REST calls go to that portal."""
    with PortalServer() as server:
        portal = server.portal
        app, _, _ = portal.install_app(None)
        handler = HandlerProcess(
            python_handler_command(
                0, "--application-token", app.application_token, "--member-id", portal.member_id
            )
        )
        try:
            context = {
                "application_token": app.application_token,
                "member_id": portal.member_id,
                "client_endpoint": portal.client_endpoint,
                "domain": portal.domain,
            }
            yield handler.url + "/", context
        finally:
            handler.stop()


def free_port() -> int:
    """A loopback port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A socket that accepts connections (backlog) and never answers: requests to it time out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
