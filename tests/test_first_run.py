"""A newcomer's first run: a new project folder, a small Flask handler with one flaw, the package installed
from its wheel into a fresh virtualenv with Flask beside it, then ``mock-portal verify`` over HTTP and the
pytest plugin in process. Both must fail on the flaw, and say which clause it breaks and how to fix it.

The handler does what the docs ask, but for one thing: it looks the installation up by ``member_id`` and never
compares ``application_token`` with the stored one. So forged events (the right ``member_id``, a wrong token)
make it call REST: clause 3a. The project's files are plain text below, so the test is easy to adapt when the
plugin's in-process API changes (only ``PROJECT_TEST`` would).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.dists import built_dists, fresh_venv
from tests.support.readme import free_port

pytestmark = [pytest.mark.release, pytest.mark.slow]

HANDLER = '''\
"""Bitrix24 events for my app: Open Lines sessions get a greeting."""

import hashlib
import queue
import re
import sys
import threading

import requests
from flask import Flask, request

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 1 << 20

installations = {}  # member_id -> what ONAPPINSTALL brought
seen = set()  # digests of the bodies already handled: the portal may repeat an event
jobs = queue.Queue()
CHAT_ID = re.compile(r"data\\[DATA\\](\\[\\d+\\])?\\[chat\\]\\[(chat_)?id\\]")


def work():
    while True:
        endpoint, token, chat_id = jobs.get()
        try:
            requests.post(
                endpoint + "im.message.add.json",
                data={"auth": token, "DIALOG_ID": f"chat{chat_id}", "MESSAGE": "Hello!"},
                timeout=10,
            )
        except requests.RequestException:
            pass


threading.Thread(target=work, daemon=True).start()


@app.post("/", defaults={"path": ""})
@app.post("/<path:path>")
def events(path):
    digest = hashlib.sha256(request.get_data()).hexdigest()  # read the body before the form parser eats it
    form = request.form
    event = form.get("event", "").upper()
    member_id = form.get("auth[member_id]")
    if not event or not member_id or not form.get("auth[application_token]"):
        return {"status": "error", "error": "not a Bitrix24 event"}, 400
    if event == "ONAPPINSTALL":
        installations[member_id] = {
            "application_token": form["auth[application_token]"],
            "access_token": form.get("auth[access_token]"),
        }
        return {"status": "ok"}
    installation = installations.get(member_id)
    if installation is None:
        return {"status": "error", "error": "unknown portal"}, 403
    # the flaw: auth[application_token] is never compared with installation["application_token"]
    if digest in seen:
        return {"status": "ok"}
    seen.add(digest)
    if event == "ONSESSIONSTART":
        chats = [value for key, value in form.items() if CHAT_ID.fullmatch(key)]
        if not chats:
            return {"status": "error", "error": "no chat id"}, 400
        token = form.get("auth[access_token]") or installation["access_token"]  # system mode: no token
        for chat_id in chats:
            jobs.put((form["auth[client_endpoint]"], token, chat_id))
    return {"status": "ok"}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
'''

PROJECT_TEST = """\
import pytest
from contract_tests import OnSessionStartContract

from app import app


class TestMyHandler(OnSessionStartContract):
    @pytest.fixture
    def b24_handler(self):
        return app
"""


def _assert_names_the_clause_and_the_fix(output: str) -> None:
    assert "forged-token-no-side-effect" in output, output
    assert "application_token" in output, output  # what to compare
    assert "https://apidocs.bitrix24.com/api-reference/events/safe-event-handlers" in output or (
        "api-reference/events/safe-event-handlers" in output
    ), output  # where the docs say how


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The new project: its folder (app.py and tests/), its virtualenv's bin folder and environment."""
    dists = built_dists(tmp_path_factory)
    root = tmp_path_factory.mktemp("first-run")
    folder = root / "my-handler"
    (folder / "tests").mkdir(parents=True)
    (folder / "app.py").write_text(HANDLER, encoding="utf-8")
    (folder / "tests" / "test_contract.py").write_text(PROJECT_TEST, encoding="utf-8")
    bin_dir, env = fresh_venv(root / "venv")
    install = subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "--quiet", str(dists["wheel"]), "flask"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return folder, bin_dir, env


@pytest.mark.timeout(1800)  # the install is from the package index: minutes on a slow network
def test_verify_over_http_names_the_clause_and_the_fix(project: tuple[Path, Path, dict[str, str]]) -> None:
    folder, bin_dir, env = project
    port = free_port()
    result = subprocess.run(
        [
            bin_dir / "mock-portal",
            "verify",
            "--handler-url",
            f"http://127.0.0.1:{port}/events",
            "--install-url",
            f"http://127.0.0.1:{port}/install",
            "--start",
            f"python app.py {port}",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    _assert_names_the_clause_and_the_fix(output)


@pytest.mark.timeout(1800)
def test_the_plugin_in_process_names_the_clause_and_the_fix(
    project: tuple[Path, Path, dict[str, str]],
) -> None:
    folder, bin_dir, env = project
    result = subprocess.run(
        [bin_dir / "python", "-m", "pytest", "-p", "no:cacheprovider", "tests/test_contract.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "FAILED tests/test_contract.py::TestMyHandler::" in output, output
    _assert_names_the_clause_and_the_fix(output)
