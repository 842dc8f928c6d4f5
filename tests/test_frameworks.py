"""The Django and FastAPI example handlers honour the whole contract, run the two ways a user runs it:

* in process, through the pytest plugin: the README's own test files (their import of "your app" pointed at
  the examples) in a pytester subprocess, with no option: each app is an ``InProcessApp`` with both its paths,
  Django's at a host its ``ALLOWED_HOSTS`` lists, FastAPI's lifespan run as a server runs it;
* over HTTP, through ``mock-portal verify``: Django served by a threaded ``wsgiref`` server, FastAPI by
  uvicorn, each on a free port of 127.0.0.1.

One contract run per framework per way, strict: every clause, MUST and SHOULD, passes. A framework that does
not import is skipped, saying which and how to install it.
"""

from __future__ import annotations

import importlib
import io
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from contract_tests.clauses import CLAUSE_IDS
from contract_tests.engine import ContractSetupError
from mock_portal.cli import run
from tests.support.contract import run_contract, serve_wsgi
from tests.support.readme import read_blocks

REPO_ROOT = Path(__file__).resolve().parent.parent
FAST = ("--settle", "0.05")


def _readme_test(test_class: str, imports: tuple[str, str]) -> str:
    """The README's test file for ``test_class``, with its import of "your app" pointed at the example."""
    (block,) = [b for b in read_blocks(REPO_ROOT / "README.md") if f"class {test_class}(" in b.code]
    assert imports[0] in block.code, block.code
    return block.code.replace(imports[0], imports[1])


DJANGO_TEST = _readme_test(
    "TestMyDjangoHandler",
    ("from myapp.wsgi import application", "from examples.django_handler.wsgi import application"),
)
FASTAPI_TEST = _readme_test(
    "TestMyFastAPIHandler", ("from myapp import app", "from examples.fastapi_handler.app import app")
)


def _needs(module: str, package: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"{package} does not import ({exc}): pip install '.[test]' or pip install {package}")


# ---------------------------------------------------------------------------------------------- in process


@pytest.fixture
def run_isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``runpytest_subprocess`` with the checkout importable (for ``examples``) and only this plugin loaded:
    the test extra's other pytest plugins cost seconds of start-up per run and play no part here (the plugin's
    own entry point is tested in test_plugin.py)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return lambda *args: pytester.runpytest_subprocess("-p", "contract_tests.plugin", *args)


# the example handlers do not use offline events: clause 11 does not apply to them
OFFLINE = "catches-up-offline"


def _passed_every_clause(result: pytest.RunResult, name: str) -> None:
    text = result.stdout.str()
    result.assert_outcomes(passed=len(CLAUSE_IDS) - 1, deselected=1)
    assert f"{name}::test_accepts_every_shape PASSED" in text, text


@pytest.mark.slow
def test_django_in_process_through_the_plugin(pytester: pytest.Pytester, run_isolated: Any) -> None:
    _needs("django", "django")
    assert 'install="/b24/install", host="localhost"' in DJANGO_TEST  # the paths and host are the fixture's
    pytester.makepyfile(test_contract=DJANGO_TEST)
    result = run_isolated("--b24-settle", "0.05", "--b24-strict", "-v")
    _passed_every_clause(result, "TestMyDjangoHandler")


@pytest.mark.slow
def test_fastapi_in_process_through_the_plugin(pytester: pytest.Pytester, run_isolated: Any) -> None:
    _needs("fastapi", "fastapi")
    assert 'InProcessApp(app, events="/b24/events", install="/b24/install")' in FASTAPI_TEST
    pytester.makepyfile(test_contract=FASTAPI_TEST)
    result = run_isolated("--b24-settle", "0.05", "--b24-strict", "-v")
    _passed_every_clause(result, "TestMyFastAPIHandler")


# ---------------------------------------------------------------------------------------------- over HTTP


@contextmanager
def _serve_django() -> Iterator[str]:
    _needs("django", "django")
    from examples.django_handler.wsgi import application

    with serve_wsgi(application) as url:
        yield url


@contextmanager
def _serve_fastapi() -> Iterator[str]:
    _needs("fastapi", "fastapi")
    import uvicorn

    from examples.fastapi_handler.app import app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    ready = threading.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            ready.set()

    server = Server(uvicorn.Config(app, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.mark.parametrize("serve", [_serve_django, _serve_fastapi], ids=["django", "fastapi"])
@pytest.mark.slow
def test_verify_over_http(serve: Any, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    out, err = io.StringIO(), io.StringIO()
    with serve() as url:
        argv = ["verify", url + "b24/events", "--install-url", url + "b24/install", "--strict"]
        code = run([*argv, "--report-json", str(report), *FAST], out, err)
    shown = out.getvalue() + err.getvalue()
    assert code == 0, shown
    verdicts = json.loads(report.read_text(encoding="utf-8"))["verdicts"]
    expected = {**dict.fromkeys(CLAUSE_IDS, "pass"), OFFLINE: "skip"}
    assert {v["id"]: v["outcome"] for v in verdicts} == expected, shown


def test_a_django_app_called_at_a_host_it_refuses_is_told_so() -> None:
    """In process the app sees the contract's own Host, which ``ALLOWED_HOSTS`` does not list: Django answers
    400 before any view runs. The install fails as a hard error that names the host and the fix."""
    _needs("django", "django")
    from examples.django_handler.wsgi import application

    with pytest.raises(ContractSetupError) as caught:
        run_contract(application, event_path="/b24/events", install_url="/b24/install", settle=0.05)
    text = str(caught.value)
    assert "was answered 400" in text, text
    assert "ALLOWED_HOSTS" in text, text
    assert "InProcessApp(app, events='/events', host='localhost')" in text, text
