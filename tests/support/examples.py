"""Helpers for tests/test_examples.py: a reference handler run as a process, driven by the real mock portal.

The portal is :class:`mock_portal.server.PortalServer` (REST, OAuth and control API on 127.0.0.1): it
installs the handler, fires its events and records the REST calls the handler makes back. Bodies a portal
would never send (forged tokens, unknown members, several sessions in one event) are built with
:func:`mock_portal.events.build_event` from the portal's own values and encoded by
:func:`mock_portal.wire.encode`, so the tests speak the protocol through one implementation only. Tests wait
for calls on the portal's condition variable (``Portal.wait_for_calls``), never by sleeping.
"""

from __future__ import annotations

import copy
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import requests

from mock_portal.delivery import Attempt
from mock_portal.events import AUTH_MODES, SHAPES, EventContext, build_event
from mock_portal.portal import App, AuthMode, Portal, RestCall, SessionStarted, Token
from mock_portal.server import PortalServer
from mock_portal.wire import decode, encode

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_HANDLER_CMD = [sys.executable, "-m", "examples.python_handler"]
NODE_HANDLER_JS = REPO_ROOT / "examples" / "node_handler" / "handler.js"
MODES = AUTH_MODES
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# a local app's credentials, known to the handler so it can refresh tokens at the portal's OAuth server
CLIENT_ID = "local.b24contract.example"
CLIENT_SECRET = "example-client-secret-for-the-mock-portal-only"
CREDENTIALS_ENV = {"B24_CLIENT_ID": CLIENT_ID, "B24_CLIENT_SECRET": CLIENT_SECRET}
LIFECYCLE = ("ONSESSIONSTART", "ONAPPUPDATE", "ONAPPUNINSTALL")

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CREDENTIALS_ENV",
    "FORM",
    "MODES",
    "SHAPES",
    "HandlerProcess",
    "Harness",
    "Installed",
    "delivered_token_id",
    "node_handler_command",
    "python_handler_command",
    "wait_for_dialog",
]


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
    """The Python reference handler's command line."""
    return [*PYTHON_HANDLER_CMD, "--port", str(port), *extra]


def node_handler_command(node: str, port: int = 0, *extra: str) -> list[str]:
    """The Node reference handler's command line (``node`` is the interpreter's path)."""
    return [node, str(NODE_HANDLER_JS), "--port", str(port), *extra]


# ---- what the portal recorded ------------------------------------------------------------------------------


def delivered_token_id(portal: Portal, attempt: Attempt) -> int:
    """The id of the access token a delivered event carried (user mode), as REST calls record it."""
    auth = decode(attempt.body).get("auth")
    token = portal.tokens.get(auth.get("access_token", "") if isinstance(auth, dict) else "")
    assert token is not None, f"{attempt.event} carried no access token the portal issued"
    return token.id


def wait_for_dialog(portal: Portal, dialog: str, count: int = 1, timeout: float = 20.0) -> list[RestCall]:
    """Block until ``count`` im.message.add calls for ``dialog`` are recorded; return them (AssertionError if
    they never come). Waits on the portal's condition variable, one more call at a time."""
    deadline = time.monotonic() + timeout
    wanted = 1
    while True:
        calls = portal.wait_for_calls(
            "im.message.add", count=wanted, timeout=max(0.0, deadline - time.monotonic())
        )
        mine = [c for c in calls if c.params.get("DIALOG_ID") == dialog]
        if len(mine) >= count:
            return mine
        if len(calls) < wanted:
            raise AssertionError(
                f"{portal.domain} never saw {count} im.message.add for {dialog}; got {calls!r}"
            )
        wanted = len(calls) + 1


# ---- the handler driven by the mock portal -----------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """An installation of the handler's app on one portal: the app and the token pair ONAPPINSTALL carried."""

    portal: Portal
    app: App
    token: Token


class Harness:
    """A handler process and the mock portal server that installs it, fires its events and takes its calls."""

    def __init__(
        self, command: Sequence[str], server: PortalServer, env: Mapping[str, str] | None = None
    ) -> None:
        self.server = server
        self.handler = HandlerProcess(command, env={**CREDENTIALS_ENV, **(env or {})})
        self.url = self.handler.url + "/"

    def post(self, body: bytes | str, headers: Mapping[str, str] | None = None) -> requests.Response:
        """POST a body straight to the handler (for events a portal would never send)."""
        data = body.encode() if isinstance(body, str) else body
        return requests.post(self.url, data=data, headers=dict(headers or FORM), timeout=20)

    def install(self, portal: Portal | None = None, events: Sequence[str] = LIFECYCLE) -> Installed:
        """Install the app on ``portal`` (the server's default one): ONAPPINSTALL to the handler, which must
        answer 200, and bindings of ``events`` to it."""
        portal = portal or self.server.portal
        app, token, attempts = portal.install_app(
            self.url,
            handlers=dict.fromkeys(events, self.url),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        assert [(a.event, a.status) for a in attempts] == [("ONAPPINSTALL", 200)], attempts
        return Installed(portal, app, token)

    def session(
        self, installed: Installed, shape: str = "docs-2024", auth: str = "system", line_id: int | None = None
    ) -> SessionStarted:
        """Start an Open Lines session on the portal; its OnSessionStart must be answered 200."""
        mode = cast("AuthMode", auth)
        started = installed.portal.start_session(shape=shape, auth=mode, line_id=line_id)
        assert [(a.event, a.status) for a in started.attempts] == [("ONSESSIONSTART", 200)], started.attempts
        return started

    def barrier(self, installed: Installed) -> list[RestCall]:
        """Fire a valid system-mode session and wait for its call; return every other REST call (any method)
        seen by then. The handlers run one worker: anything queued before the barrier has been worked too."""
        dialog = self.session(installed).chat.dialog_id
        [own] = wait_for_dialog(installed.portal, dialog)
        return [c for c in installed.portal.calls() if c.id != own.id]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the handler process with ``sig``; return its exit code."""
        return self.handler.stop(sig)


def context_of(installed: Installed, **changes: Any) -> EventContext:
    """An event context carrying the installation's real values (``changes`` replace or add fields)."""
    portal = installed.portal
    values: dict[str, Any] = {
        "domain": portal.domain,
        "member_id": portal.member_id,
        "application_token": installed.app.application_token,
        "client_endpoint": portal.client_endpoint,
        "server_endpoint": portal.server_endpoint,
        "status": portal.status,
        "scope": ",".join(installed.app.scopes),
        **changes,
    }
    return EventContext.from_mapping(values)


def hand_built(
    installed: Installed,
    event: str = "ONSESSIONSTART",
    *,
    shape: str | None = "docs-2024",
    auth: str = "system",
    overrides: Mapping[str, Any] | None = None,
    **changes: Any,
) -> bytes:
    """A form body built by ``build_event`` from the installation's values; ``changes`` forge fields."""
    if auth == "user" and "access_token" not in changes:
        token = installed.portal.issue_token(installed.app.client_id, refresh=False)
        changes["access_token"] = token.access_token
    built = build_event(
        event,
        shape=shape if event == "ONSESSIONSTART" else None,
        auth=auth,
        context=context_of(installed, **changes),
        overrides=dict(overrides) if overrides else None,
    )
    return built.body("form").encode("ascii")


def several_sessions_body(installed: Installed, chats: Sequence[SessionStarted], *, extra: bool) -> bytes:
    """One docs-2024 OnSessionStart naming several existing chats, without ``event_handler_id``; with
    ``extra``, keys no shape has (a handler must ignore them)."""
    items: list[Any] = []
    first: dict[str, Any] | None = None
    for started in chats:
        line = installed.portal.lines[started.chat.line_id]
        built = build_event(
            "ONSESSIONSTART",
            shape="docs-2024",
            auth="system",
            event_handler_id=False,
            context=context_of(
                installed,
                chat_id=started.chat.id,
                line_id=line.id,
                line_name=line.name,
                connector_id=started.chat.connector_id,
                external_user_id=started.chat.user_id,
            ),
        )
        first = first or copy.deepcopy(built.payload)
        item = copy.deepcopy(built.payload["data"]["DATA"][0])
        if extra:
            item["future_block"] = {"flag": "Y", "nested": {"deeper": "1"}}
        items.append(item)
    assert first is not None
    first["data"]["DATA"] = items
    if extra:
        first["data"]["UNKNOWN_TOP"] = "x"
    return encode(first).encode("ascii")


def forged_token() -> str:
    """A 32-hex application token no portal issued."""
    return secrets.token_hex(16)
