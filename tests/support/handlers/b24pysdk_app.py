"""A small Bitrix24 app built on the official Python SDK (b24pysdk), run as a process by the TLS tests.

    python -m tests.support.handlers.b24pysdk_app --client-id ID --client-secret SECRET

Nothing in it knows about the mock: the SDK builds ``https://<domain>/rest/...`` from the event's domain and
refreshes tokens at its own OAuth host, and the process reaches both through the standard proxy and CA
variables its environment carries. It prints ``PORT <n>`` on its first stdout line once it listens on
127.0.0.1. Routes:

- ``POST /install``: ONAPPINSTALL; keeps the app's token, then checks it with ``app.info`` twice, on the
  portal (``client.app.info()``) and at the OAuth server (``BitrixToken.get_app_info()``).
- ``POST /events``: ONSESSIONSTART, checked against the stored ``application_token``; answered at once, then
  ``im.message.add`` into the session's chat with the SDK client (which refreshes an expired token itself).
- ``GET /_state[?min=N]``: what it did (method names and outcomes, no tokens), once N things are done.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from b24pysdk import Client
from b24pysdk.credentials import BitrixApp, BitrixToken, OAuthEventData

from mock_portal.wire import decode


class _State:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.app = BitrixApp(client_id=client_id, client_secret=client_secret)
        self.lock = threading.Lock()
        self.token: BitrixToken | None = None
        self.application_token: str | None = None
        self.done: list[dict[str, Any]] = []
        self.changed = threading.Condition(self.lock)

    def record(self, what: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.done.append({"what": what, "ok": ok, "detail": detail[:300]})
            self.changed.notify_all()


def _install(state: _State, payload: dict[str, Any]) -> None:
    auth = payload["auth"]
    token = BitrixToken(
        domain=auth["domain"],
        auth_token=auth["access_token"],
        refresh_token=auth.get("refresh_token"),
        expires_in=int(auth.get("expires_in") or 3600),
        bitrix_app=state.app,
    )
    with state.lock:
        state.token = token
        state.application_token = auth["application_token"]
    client = Client(token)
    try:
        info = client.app.info().result
        state.record("app.info", True, str(info.get("CODE") if isinstance(info, dict) else info))
    except Exception as exc:
        state.record("app.info", False, f"{type(exc).__name__}: {exc}")
    try:
        found = token.get_app_info().result
        state.record("oauth app.info", True, found.client_id)
    except Exception as exc:
        state.record("oauth app.info", False, f"{type(exc).__name__}: {exc}")


def _session_start(state: _State, payload: dict[str, Any]) -> None:
    event = OAuthEventData.from_dict(payload)
    with state.lock:
        token = state.token
    if token is None:
        state.record("im.message.add", False, "not installed")
        return
    for chat_id in _chat_ids(event.data or {}):
        try:
            sent = Client(token).im.message.add(f"chat{chat_id}", message="Hello from b24pysdk").result
            state.record("im.message.add", True, f"{chat_id}: message {sent}")
        except Exception as exc:
            state.record("im.message.add", False, f"{type(exc).__name__}: {exc}")


def _chat_ids(data: dict[str, Any]) -> list[str]:
    # data[DATA] is one session (source-2024) or a list (docs-2024, docs-2026); chat[id] or chat[chat_id]
    block = data.get("DATA") or {}
    items = [block] if "chat" in block else list(block.values())
    return [str(item["chat"].get("id") or item["chat"].get("chat_id")) for item in items]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        state = self.server.state
        path, _, query = self.path.partition("?")
        if path == "/_state":
            # ?min=N waits (30 s at most) until N things are done, so tests never sleep
            wanted = int(query.partition("min=")[2] or 0) if "min=" in query else 0
            with state.changed:
                state.changed.wait_for(lambda: len(state.done) >= wanted, timeout=30)
                self._answer(200, {"done": list(state.done)})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        state = self.server.state
        size = int(self.headers.get("Content-Length") or 0)
        try:
            payload = decode(self.rfile.read(size))
        except ValueError:
            self._answer(400, {"error": "malformed body"})
            return
        if self.path == "/install" and payload.get("event") == "ONAPPINSTALL":
            self._answer(200, {"ok": True})
            threading.Thread(target=_install, args=(state, payload), daemon=True).start()
            return
        if self.path != "/events":
            self._answer(404, {"error": "not found"})
            return
        given = str((payload.get("auth") or {}).get("application_token") or "")
        with state.lock:
            expected = state.application_token
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            self._answer(401, {"error": "unknown application_token"})
            return
        self._answer(200, {"ok": True})
        if payload.get("event") == "ONSESSIONSTART":
            threading.Thread(target=_session_start, args=(state, payload), daemon=True).start()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="b24pysdk_app")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args(argv)
    server = _Server(_State(args.client_id, args.client_secret))
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
