"""A careful Bitrix24 handler in the standard library only, written the way a cautious developer would.

It is correct, and deliberately unlike the reference handler in everything the contract must not care about:

- ``http.server.ThreadingHTTPServer`` with a listen backlog of 5 (the stdlib's default);
- HTTP/1.1 answers with ``Content-Length`` and **no** ``Connection: close``, yet it closes the connection
  after every answer (HTTP/1.1 allows a server to do so);
- 413 for a body over 1 MiB, answered from the ``Content-Length`` header without reading the body;
- a single worker thread calling REST with ``urllib``; in user mode with the event's own ``access_token``,
  in system mode with the token stored from ONAPPINSTALL;
- JSON answers ``{"ok": true}``, 401 for a bad token, 400 for what it cannot parse, 200 for events it does
  not handle.

``serve()`` runs it on 127.0.0.1 at a free port (a context manager yielding the URL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mock_portal.wire import decode

MAX_BODY = 1 << 20


class State:
    """What the handler keeps: installations per member_id, digests seen, the work queue."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installs: dict[str, dict[str, str]] = {}
        self.seen: set[bytes] = set()
        self.jobs: queue.Queue[tuple[str, str, dict[str, str], str] | None] = queue.Queue()
        """(client_endpoint, method, params, token) per REST call to make."""
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()

    def close(self) -> None:
        self.jobs.put(None)
        self.worker.join(10)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            endpoint, method, params, token = job
            data = urllib.parse.urlencode({**params, "auth": token}).encode()
            try:
                with urllib.request.urlopen(endpoint + method + ".json", data=data, timeout=10) as reply:
                    reply.read()
            except (urllib.error.HTTPError, OSError):
                pass  # the portal records the refusal; a real handler would log it


def _answer(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _chats(data: Any) -> list[str]:
    block = data.get("DATA") if isinstance(data, dict) else None
    items = list(block.values()) if isinstance(block, dict) and all(k.isdigit() for k in block) else [block]
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        chat = item.get("chat") if isinstance(item.get("chat"), dict) else {}
        chat_id = chat.get("id") or chat.get("chat_id")
        if isinstance(chat_id, str) and chat_id.isdigit():
            out.append(chat_id)
    return out


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            # close after every answer, without saying so in a header (HTTP/1.1 allows it)
            self.close_connection = True
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                _answer(self, 411, {"ok": False, "error": "length required"})
                return
            if int(length) > MAX_BODY:
                _answer(self, 413, {"ok": False, "error": "too large"})
                return
            raw = self.rfile.read(int(length))
            try:
                payload = decode(raw)
            except Exception:
                _answer(self, 400, {"ok": False, "error": "not a form body"})
                return
            event = str(payload.get("event", "")).upper()
            auth = payload.get("auth") if isinstance(payload.get("auth"), dict) else {}
            member_id = auth.get("member_id", "")
            given = auth.get("application_token", "")
            if not event or not isinstance(member_id, str) or not isinstance(given, str):
                _answer(self, 400, {"ok": False, "error": "no event"})
                return
            if event == "ONAPPINSTALL":
                with state.lock:
                    state.installs[member_id] = {
                        "application_token": given,
                        "access_token": auth.get("access_token", ""),
                        "client_endpoint": auth.get("client_endpoint", ""),
                    }
                _answer(self, 200, {"ok": True})
                return
            with state.lock:
                install = state.installs.get(member_id)
            if install is None or not hmac.compare_digest(
                given.encode(), install["application_token"].encode()
            ):
                _answer(self, 401, {"ok": False, "error": "unknown application"})
                return
            digest = hashlib.sha256(raw).digest()
            with state.lock:
                repeat = digest in state.seen
                state.seen.add(digest)
            _answer(self, 200, {"ok": True})
            if repeat:
                return
            token = auth.get("access_token") or install["access_token"]
            endpoint = auth.get("client_endpoint") or install["client_endpoint"]
            data = payload.get("data")
            if event == "ONSESSIONSTART":
                for chat in _chats(data):
                    params = {"DIALOG_ID": f"chat{chat}", "MESSAGE": "Hello"}
                    state.jobs.put((endpoint, "im.message.add", params, token))
            elif event == "ONIMCONNECTORMESSAGEADD" and isinstance(data, dict):
                messages = data.get("MESSAGES") if isinstance(data.get("MESSAGES"), dict) else {}
                for item in messages.values():
                    im = item.get("im", {}) if isinstance(item, dict) else {}
                    params = {
                        "CONNECTOR": str(data.get("CONNECTOR", "")),
                        "LINE": str(data.get("LINE", "")),
                        "MESSAGES[0][im][chat_id]": str(im.get("chat_id", "")),
                        "MESSAGES[0][im][message_id]": str(im.get("message_id", "")),
                    }
                    state.jobs.put((endpoint, "imconnector.send.status.delivery", params, token))

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 5  # the stdlib's default listen backlog, kept on purpose


@contextmanager
def serve() -> Iterator[str]:
    """Serve the handler on 127.0.0.1 at a free port; yield its URL."""
    state = State()
    server = Server(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        state.close()
        thread.join(5)
