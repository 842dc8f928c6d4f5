"""A minimal Bitrix24 app handler, run as a process by the end-to-end tests.

    python -m tests.support.handlers.b24_app [--mode ok|error|hang|reset|close] [--reply TEXT]
        [--client-id ID --client-secret SECRET]

It prints ``PORT <n>`` on its first stdout line once it listens on 127.0.0.1 (the tests read that line instead
of waiting). Routes:

- ``POST /install``: ONAPPINSTALL; stores the auth block per ``member_id`` (tokens, endpoints).
- ``POST /events``: other events; checks ``application_token`` against the stored one (facts §2), answers
  200 at once (docs: performance/queue) and then, for ONSESSIONSTART, posts ``im.message.add`` to the event's
  ``client_endpoint`` with the stored OAuth token, refreshing it at the OAuth server when the portal says
  ``expired_token``.
- ``GET /_state``: what it received and did, as JSON (no tokens), for the tests' assertions;
  ``GET /_wait?rest_results=N``: the same, once it has made N REST calls (or after 30 s).

``--mode`` makes ``/events`` misbehave for the fault tests: ``error`` answers 500, ``hang`` never answers,
``reset`` resets the connection, ``close`` closes it without a response.
"""

from __future__ import annotations

import argparse
import hmac
import json
import socket
import struct
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mock_portal.wire import decode


class _State:
    def __init__(self, reply: str, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lock = threading.Lock()
        self.reply = reply
        self.installs: dict[str, dict[str, Any]] = {}  # member_id -> auth block
        self.events: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.rest_results: list[dict[str, Any]] = []
        self.refreshes = 0
        self.done = threading.Condition(self.lock)

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {
                "installs": sorted(self.installs),
                "events": [
                    {
                        "event": e.get("event"),
                        "event_handler_id": e.get("event_handler_id"),
                        "data": e.get("data"),
                    }
                    for e in self.events
                ],
                "auth_modes": [
                    "user" if "access_token" in e.get("auth", {}) else "system" for e in self.events
                ],
                "rejected": list(self.rejected),
                "rest_results": list(self.rest_results),
                "refreshes": self.refreshes,
            }


def _post(url: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _chat_id(data: Any) -> str | None:
    block = data.get("DATA") if isinstance(data, dict) else None
    if isinstance(block, list):
        block = block[0] if block else None
    if not isinstance(block, dict):
        return None
    connector = block.get("connector") or {}
    return connector.get("chat_id")


def _answer_session(state: _State, auth: dict[str, Any], chat_id: str) -> None:
    member = auth.get("member_id", "")
    with state.lock:
        stored = dict(state.installs.get(member, {}))
    params = {"DIALOG_ID": f"chat{chat_id}", "MESSAGE": state.reply, "auth": stored.get("access_token", "")}
    status, body = _post(auth["client_endpoint"] + "im.message.add.json", params)
    if status == 401 and body.get("error") == "expired_token":
        # the OAuth server lives beside server_endpoint: .../oauth/rest/ -> .../oauth/token/
        token_url = auth["server_endpoint"].rstrip("/").rsplit("/", 1)[0] + "/token/"
        query = urllib.parse.urlencode(
            {
                "grant_type": "refresh_token",
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "refresh_token": stored.get("refresh_token", ""),
            }
        )
        refresh_status, fresh = _get(f"{token_url}?{query}")
        with state.lock:
            state.refreshes += 1
            if refresh_status == 200:
                state.installs[member].update(
                    access_token=fresh["access_token"], refresh_token=fresh["refresh_token"]
                )
        if refresh_status == 200:
            params["auth"] = fresh["access_token"]
            status, body = _post(auth["client_endpoint"] + "im.message.add.json", params)
    with state.lock:
        state.rest_results.append(
            {"status": status, "result": body.get("result"), "error": body.get("error")}
        )
        state.done.notify_all()


def _make_handler(state: _State, mode: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tokens must never be printed
            return

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/_state":
                self._reply(200, state.view())
            elif self.path.startswith("/_wait"):
                # blocks until the handler has made N REST calls (a condition variable, not a sleep)
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                wanted = int(query.get("rest_results", ["1"])[0])
                with state.done:
                    state.done.wait_for(lambda: len(state.rest_results) >= wanted, timeout=30)
                self._reply(200, state.view())
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if self.path.startswith("/events") and mode != "ok":
                self._misbehave()
                return
            payload = decode(raw)
            auth = payload.get("auth", {})
            path = self.path.split("?")[0]
            if path == "/install" and payload.get("event") == "ONAPPINSTALL":
                with state.lock:
                    state.installs[auth["member_id"]] = dict(auth)
                    state.events.append(payload)
                self._reply(200, {"status": "installed"})
                return
            with state.lock:
                stored = state.installs.get(auth.get("member_id", ""), {})
                expected = stored.get("application_token", "")
            if not expected or not hmac.compare_digest(expected, auth.get("application_token", "")):
                with state.lock:
                    state.rejected.append(str(payload.get("event")))
                self._reply(401, {"error": "unknown application_token"})
                return
            with state.lock:
                state.events.append(payload)
            self._reply(200, {"status": "queued"})
            chat_id = _chat_id(payload.get("data"))
            if payload.get("event") == "ONSESSIONSTART" and chat_id:
                threading.Thread(target=_answer_session, args=(state, auth, chat_id), daemon=True).start()

        def _misbehave(self) -> None:
            if mode == "error":
                self._reply(500, {"error": "handler failed"})
            elif mode == "hang":
                threading.Event().wait()  # never answers; the portal's timeout ends the attempt
            elif mode == "reset":
                # SO_LINGER 0: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.rfile.close()  # the buffered files hold the socket open: close them first
                self.wfile.close()
                self.connection.close()
            elif mode == "close":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["ok", "error", "hang", "reset", "close"], default="ok")
    parser.add_argument("--reply", default="Hello from the test app")
    # a local app's credentials come from its form in the portal; the tests give both sides the same pair
    parser.add_argument("--client-id", default="")
    parser.add_argument("--client-secret", default="")
    args = parser.parse_args(argv)
    state = _State(args.reply, args.client_id, args.client_secret)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state, args.mode))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
