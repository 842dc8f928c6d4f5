"""Lost events, and catching up through the offline queue, end to end over real HTTP.

Run it: ``python -m examples.offline_catch_up``. A mock portal serves on 127.0.0.1; an app binds
OnSessionStart both ways (an online handler and ``event_type=offline``) and ONOFFLINEEVENT. While the
handler's port is closed, three sessions start: each online delivery is refused and never retried (the
portal does not resend), but the offline queue keeps all three. Then the handler comes up: it catches up
with ``event.offline.get`` (``clear=0``: reserve under a ``process_id``), processes what it got, and
confirms with ``event.offline.clear``; it does the same whenever ONOFFLINEEVENT says the queue changed.

The handler here is deliberately small (a ``http.server`` and ``urllib``): answer 200 at once, work in a
thread, as the docs recommend.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from mock_portal import PortalServer
from mock_portal.portal import Clock, Portal
from mock_portal.portal.offline import judge_catch_up


def rest(endpoint: str, method: str, token: str, **params: Any) -> Any:
    """One REST call with JSON params; the portal's JSON answer (errors included)."""
    request = urllib.request.Request(
        f"{endpoint}{method}.json",
        data=json.dumps({**params, "auth": token}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as refused:
        return json.load(refused)


@dataclass
class CatchUpHandler:
    """An app's handler: online events and ONOFFLINEEVENT in, catch-up through ``event.offline.get``."""

    endpoint: str
    token: str
    processed: list[dict[str, Any]] = field(default_factory=list)
    online: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self) -> None:
        """Reserve a batch, process it, confirm it; until the queue is empty."""
        with self._lock:
            while True:
                got = rest(self.endpoint, "event.offline.get", self.token, clear=0, limit=50)["result"]
                if not got["events"]:
                    return
                self.processed.extend(got["events"])  # a real app fetches the objects named here
                rest(self.endpoint, "event.offline.clear", self.token, process_id=got["process_id"])

    def serve(self, port: int) -> ThreadingHTTPServer:
        """Listen on 127.0.0.1:``port`` and catch up once at start-up (in a thread); return the server."""
        owner = self

        class Events(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                event = form.get("event", [""])[0]
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if event == "ONOFFLINEEVENT":
                    threading.Thread(target=owner.catch_up, daemon=True).start()
                else:
                    owner.online.append(event)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Events)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        threading.Thread(target=self.catch_up, daemon=True).start()
        return server


def free_port() -> int:
    """A port nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run() -> dict[str, Any]:
    """The whole scenario; returns what happened (printed by ``main``)."""
    clock = Clock(start=1_750_000_000.0)
    port = free_port()
    handler_url = f"http://127.0.0.1:{port}/events"
    with PortalServer([Portal(seed=7, clock=clock)], clock=clock) as server:
        portal = server.portal
        app, token, _ = portal.install_app(
            handlers={"ONSESSIONSTART": handler_url, "ONOFFLINEEVENT": handler_url}
        )
        endpoint = portal.client_endpoint
        bound = rest(endpoint, "event.bind", token.access_token, event="ONSESSIONSTART", event_type="offline")
        assert bound.get("result") is True, bound

        # the handler is down: its port is closed
        for _ in range(3):
            portal.start_session()
        refused = [a for a in portal.deliveries("ONSESSIONSTART") if a.outcome == "refused"]
        queued = rest(endpoint, "event.offline.list", token.access_token)

        # the handler comes back and catches up; then one more session reaches it both ways
        handler = CatchUpHandler(endpoint, token.access_token)
        http = handler.serve(port)
        try:
            # its start-up catch-up is over once it has cleared a batch and found the queue empty
            portal.wait_for_calls("event.offline.get", count=2, timeout=10)
            at_start = len(handler.processed)
            clock.advance(1)  # ONOFFLINEEVENT's minTimeout (1 s by default) has passed
            portal.start_session()
            portal.wait_for_calls("event.offline.clear", count=2, timeout=10)
        finally:
            http.shutdown()
            http.server_close()
        left = rest(endpoint, "event.offline.list", token.access_token)
        verdict = judge_catch_up(app.client_id, portal.calls(), portal.offline.stats(app.client_id))
        return {
            "handler down": f"{len(refused)} OnSessionStart deliveries refused, none retried; "
            f"{queued['total']} records in the offline queue",
            "handler back": f"{at_start} records caught up at start-up, "
            f"{len(handler.processed) - at_start} more after ONOFFLINEEVENT, "
            f"{len(handler.online)} delivered online; {left['total']} left in the queue",
            "offline clause": f"{verdict.outcome}: {verdict.reason}",
        }


def main() -> None:
    for name, line in run().items():
        print(f"{name}: {line}")


if __name__ == "__main__":
    main()
