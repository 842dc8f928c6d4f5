"""Helpers for tests/test_examples.py: run a reference handler as a process, a loopback portal, event bodies.

``LoopbackPortal`` is a minimal stand-in for the mock portal's REST and OAuth endpoints
(``<client_endpoint><method>.json`` and ``/oauth/token/``), real HTTP on 127.0.0.1, recording every call;
tests wait for calls on a condition variable, never by sleeping. Event bodies are encoded with PHP
``http_build_query`` semantics (facts §1).
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_HANDLER_CMD = [sys.executable, "-m", "examples.python_handler"]
NODE_HANDLER_JS = REPO_ROOT / "examples" / "node_handler" / "handler.js"
SHAPES = ("source-2024", "docs-2024", "docs-2026")
MODES = ("user", "system")


# ---- PHP http_build_query ----------------------------------------------------------------------------------


def _php_quote(text: str) -> str:
    # PHP urlencode: RFC 1738, space is "+", only [A-Za-z0-9_.-] stay literal ("~" becomes %7E: facts §1)
    return quote_plus(text, safe="").replace("~", "%7E")


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
    if value is None:
        return  # null vanishes (facts §1)
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(f"{prefix}[{key}]" if prefix else str(key), item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(f"{prefix}[{index}]", item)
    elif isinstance(value, bool):
        yield prefix, "1" if value else "0"
    else:
        yield prefix, str(value)


def php_encode(payload: Mapping[str, Any]) -> bytes:
    """Encode a payload as PHP's ``http_build_query`` does (empty arrays and nulls vanish, bools are 1/0)."""
    return "&".join(f"{_php_quote(k)}={_php_quote(v)}" for k, v in _flatten("", payload)).encode("ascii")


# ---- event bodies ------------------------------------------------------------------------------------------


@dataclass
class PortalIdentity:
    """What one portal's events carry in ``auth``: ids, endpoints and the app's secrets."""

    client_endpoint: str
    server_endpoint: str
    member_id: str = field(default_factory=lambda: secrets.token_hex(16))
    domain: str = field(default_factory=lambda: f"p{secrets.token_hex(3)}.bitrix24.com")
    application_token: str = field(default_factory=lambda: secrets.token_hex(16))

    def auth(self, access_token: str | None, *, refresh_token: str | None = None) -> dict[str, Any]:
        """The auth block: user mode when an access token is given, system mode otherwise (facts §2)."""
        if access_token is None:
            return {
                "domain": self.domain,
                "client_endpoint": self.client_endpoint,
                "server_endpoint": self.server_endpoint,
                "member_id": self.member_id,
                "application_token": self.application_token,
            }
        block: dict[str, Any] = {
            "access_token": access_token,
            "expires": "1900000000",
            "expires_in": "3600",
            "scope": "imopenlines,imconnector,im",
            "domain": self.domain,
            "server_endpoint": self.server_endpoint,
            "status": "L",
            "client_endpoint": self.client_endpoint,
            "member_id": self.member_id,
            "user_id": "1",
        }
        if refresh_token is not None:
            block["refresh_token"] = refresh_token
        block["application_token"] = self.application_token
        return block


def lifecycle_body(
    event: str, identity: PortalIdentity, auth: Mapping[str, Any], data: Mapping[str, Any]
) -> bytes:
    """ONAPPINSTALL / ONAPPUPDATE / ONAPPUNINSTALL as the portal sends them (auth always last: facts §1)."""
    return php_encode({"event": event, "data": data, "ts": "1700000000", "auth": auth})


def session_item(shape: str, chat_id: int, line_name: str, *, extra: bool = False) -> dict[str, Any]:
    """One element of ``data[DATA]`` in one of the three known shapes (facts §3)."""
    connector = {"connector_id": "livechat", "line_id": "7", "chat_id": str(chat_id), "user_id": "1984"}
    item: dict[str, Any]
    if shape == "source-2024":
        item = {
            "connector": connector,
            "chat": {"chat_id": str(chat_id)},
            "line": {"id": "7", "name": line_name},
        }
    elif shape == "docs-2024":
        item = {"connector": connector, "chat": {"id": str(chat_id)}, "line": {"id": "7", "name": line_name}}
    elif shape == "docs-2026":
        item = {
            "connector": connector,
            "session": {"id": "42", "closed": "N", "parent_id": "0", "close_term": "60"},
            "chat": {"id": str(chat_id)},
            "user": {"id": "1984"},
        }
    else:
        raise ValueError(f"unknown shape {shape!r}")
    if extra:
        item["future_block"] = {"flag": "Y", "nested": {"deeper": "1"}}
    return item


def session_start_body(
    identity: PortalIdentity,
    shape: str,
    chat_ids: Sequence[int],
    *,
    access_token: str | None,
    line_name: str = "Support line",
    handler_id: str | None = "5",
    extra: bool = False,
    ts: str = "1700000100",
    auth_override: Mapping[str, Any] | None = None,
) -> bytes:
    """An ONSESSIONSTART body; ``source-2024`` carries one object, the docs shapes a list (facts §3)."""
    items = [session_item(shape, chat, line_name, extra=extra) for chat in chat_ids]
    data_block: Any = items[0] if shape == "source-2024" else items
    payload: dict[str, Any] = {"event": "ONSESSIONSTART"}
    if handler_id is not None:
        payload["event_handler_id"] = handler_id
    payload["data"] = {"DATA": data_block}
    if extra:
        payload["data"]["UNKNOWN_TOP"] = "x"
    payload["ts"] = ts
    payload["auth"] = dict(auth_override) if auth_override is not None else identity.auth(access_token)
    return php_encode(payload)


# ---- a loopback portal: REST and OAuth ---------------------------------------------------------------------


@dataclass(frozen=True)
class RestCall:
    """One REST call the portal received."""

    method: str
    params: dict[str, str]


class LoopbackPortal:
    """REST (``/rest/<method>.json``) and OAuth (``/oauth/token/``) on 127.0.0.1, recording every call.

    Tokens: ``issue()`` makes a valid access token; ``expire(token)`` makes the REST API answer
    ``expired_token`` for it (facts §5), and ``/oauth/token/`` swaps a known refresh token for a new pair when
    the client credentials match.
    """

    def __init__(self) -> None:
        self.client_id = "local." + secrets.token_hex(6)
        self.client_secret = secrets.token_hex(20)
        self.calls: list[RestCall] = []
        self.refreshes = 0
        self._valid: set[str] = set()
        self._expired: set[str] = set()
        self._refresh_tokens: set[str] = set()
        self._cond = threading.Condition()
        portal = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Mapping[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/oauth/token/":
                    self._answer(404, {"error": "NOT_FOUND"})
                    return
                status, body = portal._token_endpoint(dict(parse_qsl(parts.query)))
                self._answer(status, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = dict(parse_qsl(self.rfile.read(length).decode()))
                path = urlsplit(self.path).path
                if not (path.startswith("/rest/") and path.endswith(".json")):
                    self._answer(404, {"error": "NOT_FOUND"})
                    return
                status, body = portal._rest(path[len("/rest/") : -len(".json")], params)
                self._answer(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.client_endpoint = f"{self.base}/rest/"

    def identity(self) -> PortalIdentity:
        """A new portal identity whose endpoints point here (the token URL derives to ``/oauth/token/``)."""
        return PortalIdentity(client_endpoint=self.client_endpoint, server_endpoint=self.client_endpoint)

    def issue(self) -> tuple[str, str]:
        """A fresh (access_token, refresh_token) pair."""
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        with self._cond:
            self._valid.add(access)
            self._refresh_tokens.add(refresh)
        return access, refresh

    def expire(self, access_token: str) -> None:
        with self._cond:
            self._valid.discard(access_token)
            self._expired.add(access_token)

    def _token_endpoint(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        if (query.get("client_id"), query.get("client_secret")) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        refresh = query.get("refresh_token", "")
        with self._cond:
            if query.get("grant_type") != "refresh_token" or refresh not in self._refresh_tokens:
                return 400, {"error": "invalid_grant"}
            self._refresh_tokens.discard(refresh)
            self.refreshes += 1
        access, new_refresh = self.issue()
        return 200, {
            "access_token": access,
            "refresh_token": new_refresh,
            "expires": 1900000000,
            "expires_in": 3600,
            "client_endpoint": self.client_endpoint,
            "server_endpoint": self.client_endpoint,
            "status": "L",
        }

    def _rest(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._cond:
            self.calls.append(RestCall(method, params))
            self._cond.notify_all()
            token = params.get("auth", "")
            if token in self._expired:
                return 401, {
                    "error": "expired_token",
                    "error_description": "The access token provided has expired.",
                }
            if token not in self._valid:
                return 401, {
                    "error": "invalid_token",
                    "error_description": "The access token provided is invalid.",
                }
        if method == "im.message.add":
            return 200, {"result": len(self.calls), "time": {}}
        if method == "app.info":
            return 200, {"result": {"CODE": "test", "INSTALLED": True}, "time": {}}
        return 404, {"error": "ERROR_METHOD_NOT_FOUND"}

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> list[RestCall]:
        """Block until ``predicate(calls)`` is true; return the calls (raise AssertionError on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.calls), timeout):
                raise AssertionError(f"portal never saw the expected calls; got {self.calls!r}")
            return list(self.calls)

    def messages(self) -> list[RestCall]:
        with self._cond:
            return [c for c in self.calls if c.method == "im.message.add"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- a handler process -------------------------------------------------------------------------------------


class HandlerProcess:
    """A reference handler started as a real process; ``url`` is known once it printed ``listening on``."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str] | None = None, ready_timeout: float = 30.0
    ):
        full_env = {**os.environ, **(env or {})}
        # stderr goes to a file, not a pipe: nobody reads it while the handler runs, and a full pipe would
        # block the handler's logging (and so the handler) after 64 KiB
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
        )
        self.stdout = ""
        self.stderr = ""
        self.url = self._await_ready(ready_timeout)

    def _await_ready(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        buffer = b""
        try:
            while b"\n" not in buffer:
                if not selector.select(timeout):
                    self.stop()
                    raise AssertionError(
                        f"handler did not report readiness in {timeout}s: {self.stderr[-2000:]}"
                    )
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self.stop()
                    raise AssertionError(f"handler exited before it was ready: {self.stderr[-2000:]}")
                buffer += chunk
        finally:
            selector.close()
        line = buffer.split(b"\n", 1)[0].decode()
        assert line.startswith("listening on http://127.0.0.1:"), line
        return line.removeprefix("listening on ").rstrip("/")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig``, wait for the exit, keep the output; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=timeout)
        self.stdout += out.decode(errors="replace")
        if not self._stderr_file.closed:
            self._stderr_file.seek(0)
            self.stderr = self._stderr_file.read().decode(errors="replace")
            self._stderr_file.close()
        return self.proc.returncode


def python_handler_command(port: int = 0, *extra: str) -> list[str]:
    return [*PYTHON_HANDLER_CMD, "--port", str(port), *extra]


def node_handler_command(node: str, port: int = 0, *extra: str) -> list[str]:
    return [node, str(NODE_HANDLER_JS), "--port", str(port), *extra]
