"""The official Python SDK, unmodified, in a handler process: every REST and OAuth call lands in the mock.

The handler (``tests/support/handlers/b24pysdk_app.py``) knows nothing of the mock; its process gets the TLS
front's proxy and CA variables, nothing else. The portal advertises ``https://name.bitrix24.com/rest/``, and
b24pysdk refreshes tokens at its own OAuth host (``oauth.bitrix24.tech``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_portal.portal import Clock, Portal
from mock_portal.server import PortalServer
from mock_portal.tls import TlsFront

# the SDK declares Python 3.10 but its response classes cannot be built there ("instance lay-out conflict"),
# so it is installed on 3.11+ only (pyproject) and skipped wherever it does not import
try:
    import b24pysdk  # noqa: F401
except Exception as exc:  # not only ImportError: the SDK's own class definitions may fail
    pytest.skip(f"b24pysdk does not import here: {type(exc).__name__}: {exc}", allow_module_level=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "name.bitrix24.com"
CLIENT_ID = "local.b24pysdk.1"
CLIENT_SECRET = "b24pysdk-client-secret-for-the-mock-only"


class Handler:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.handlers.b24pysdk_app",
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
            ],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), f"the handler did not start: {line!r}"
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def done(self, at_least: int = 0) -> list[dict[str, Any]]:
        answer = requests.get(self.url + "/_state", params={"min": at_least}, timeout=60)
        return list(answer.json()["done"])

    def close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def setup() -> Iterator[tuple[PortalServer, TlsFront, Handler, Clock]]:
    clock = Clock(start=1_760_000_000.0)
    with PortalServer([Portal(DOMAIN, seed=11, clock=clock)], clock=clock) as srv, TlsFront(srv) as front:
        handler = Handler(front.env())
        try:
            yield srv, front, handler, clock
        finally:
            handler.close()


def test_a_b24pysdk_handler_calls_rest_and_oauth_through_the_front(setup) -> None:
    srv, front, handler, clock = setup
    portal = srv.portal
    portal.install_app(
        handler.url + "/install",
        handlers={"ONSESSIONSTART": handler.url + "/events"},
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes="imopenlines,im,imconnector",
    )
    # the SDK's app.info on the portal and at its OAuth host (https://oauth.bitrix24.tech/rest/app.info/)
    calls = portal.wait_for_calls("app.info", count=2, timeout=60)
    assert [c.status for c in calls] == [200, 200]

    portal.start_session()
    sent = portal.wait_for_calls("im.message.add", count=1, timeout=60)
    assert [c.status for c in sent] == [200]
    first_token = sent[0].token_id

    # an hour later the token has expired: the SDK gets expired_token, refreshes at its OAuth host, retries
    clock.advance(4000)
    portal.start_session()
    sent = portal.wait_for_calls("im.message.add", count=3, timeout=60)
    assert [(c.status, c.error) for c in sent] == [(200, None), (401, "expired_token"), (200, None)]
    refreshed = portal.calls("oauth.token")
    assert [c.status for c in refreshed] == [200]
    assert sent[2].token_id not in (None, first_token)

    assert set(front.log.tunnels) == {DOMAIN, "oauth.bitrix24.tech"}
    assert front.log.refused == []
    done = handler.done(at_least=4)
    # the OAuth host's app.info answer lacks the fields the SDK reads (client_id, install, ...): the call
    # lands (asserted above) but its shape is the portal's app.info; that belongs to the REST methods' work
    assert [(d["what"], d["ok"]) for d in done if d["what"] != "oauth app.info"] == [
        ("app.info", True),
        ("im.message.add", True),
        ("im.message.add", True),
    ], done
