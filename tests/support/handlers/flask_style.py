"""A correct handler written the way a Flask tutorial would write it, as a plain WSGI app.

Unlike the reference handler in everything the contract must not care about:

- the form is read flat, as ``request.form`` gives it (``form["auth[application_token]"]``,
  ``form["data[DATA][0][chat][id]"]``), with ``urllib.parse.parse_qs``;
- no body limit at all (stock Flask sets none), so a 9 MB body is read and parsed;
- 200 ``{"status": "ignored"}`` for whatever it does not handle: other events, JSON, XML, empty or binary
  bodies (it cannot find an event in them, so there is nothing to do);
- 403 for a wrong ``application_token``;
- REST calls from a thread pool with ``requests``, always with the OAuth token stored from ONAPPINSTALL
  (never the event's own ``access_token``: both are fine).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import requests


class FlaskStyleApp:
    """``app(environ, start_response)``; :meth:`close` waits for the pool."""

    def __init__(self) -> None:
        self.installs: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.local = threading.local()

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        status, payload = self.view(raw)
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def view(self, raw: bytes) -> tuple[str, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        event = form.get("event", "").upper()
        member_id = form.get("auth[member_id]", "")
        token = form.get("auth[application_token]", "")
        if not event or not member_id:
            return "200 OK", {"status": "ignored"}
        if event == "ONAPPINSTALL":
            with self.lock:
                self.installs[member_id] = {
                    "application_token": token,
                    "access_token": form.get("auth[access_token]", ""),
                    "client_endpoint": form.get("auth[client_endpoint]", ""),
                }
            return "200 OK", {"status": "installed"}
        with self.lock:
            install = self.installs.get(member_id)
        if install is None or not hmac.compare_digest(token, install["application_token"]):
            return "403 FORBIDDEN", {"status": "forbidden"}
        endpoint = form.get("auth[client_endpoint]") or install["client_endpoint"]
        if event == "ONSESSIONSTART":
            chats = [
                value
                for key, value in form.items()
                if key.startswith("data[DATA]") and key.endswith(("[chat][id]", "[chat][chat_id]"))
            ]
            for chat in chats:
                params = {"DIALOG_ID": f"chat{chat}", "MESSAGE": "Hi there"}
                self.pool.submit(self.call, endpoint, "im.message.add", params, install["access_token"])
            return "200 OK", {"status": "ok"}
        return "200 OK", {"status": "ignored"}

    def call(self, endpoint: str, method: str, params: dict[str, str], token: str) -> None:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        with contextlib.suppress(requests.RequestException):  # the portal records what it refused
            session.post(f"{endpoint}{method}", data={**params, "auth": token}, timeout=10)
