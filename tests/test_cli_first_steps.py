"""What a newcomer meets first, outside the contract engine: ``mock-portal example-handler`` from any folder,
``mock-portal wait-ready``, optional extras checked before any work, help texts that cite doc URLs, and a
checkout whose own pytest settings stay out of the user's pytest runs."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mock_portal import _extras
from mock_portal.cli import SUBCOMMANDS, run
from mock_portal.errors import UnknownNameError
from tests.conftest import REPO_ROOT
from tests.support.readme import free_port


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


class _Counting(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and counts them."""

    status = 200
    count = 0

    def _answer(self) -> None:
        type(self).count += 1
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.send_response(self.status)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Counting]]]:
    handler = type("Handler", (_Counting,), {"count": 0, "status": 404})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "mock-portal"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mock_portal"]


def test_example_handler_runs_from_any_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.Popen(
        [*_console_script(), "example-handler", "--port", "0"],
        cwd=tmp_path,  # far from the checkout: the handler comes from the installed package
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket accepts connections
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line + (process.stderr.read() if process.stderr and process.poll() is not None else "")
        with urllib.request.urlopen(match.group(1) + "healthz", timeout=10) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_example_handler_help_says_where_it_listens() -> None:
    code, out, _ = _cli("example-handler", "--help")
    assert code == 0
    assert "http://127.0.0.1:8080/install" in out
    assert "--application-token" in out


def test_wait_ready_returns_once_every_url_answers(http_server: tuple[str, type[_Counting]]) -> None:
    url, handler = http_server
    code, out, err = _cli("wait-ready", f"{url}/healthz", f"{url}/_portal")
    assert (code, err) == (0, "")
    # any HTTP answer proves the server listens (this one answers 404); printed in the order given
    assert out == f"ready {url}/healthz\nready {url}/_portal\n"
    assert handler.count == 2
    assert _cli("wait-ready", "--quiet", url) == (0, "", "")


def test_wait_ready_gives_up_naming_the_url_that_never_answered() -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    code, out, err = _cli("wait-ready", "--timeout", "0.3", url)
    assert (code, out) == (1, "")
    assert err.startswith(f"mock-portal: error: {url} did not answer within 0.3 s (")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ftp://example.invalid/"], "not an http(s) URL: 'ftp://example.invalid/'"),
        (["--timeout", "0", "http://127.0.0.1:1/"], "--timeout must be a positive number"),
        (["--timeout", "nan", "http://127.0.0.1:1/"], "--timeout must be a positive number"),
    ],
)
def test_wait_ready_usage_errors(argv: list[str], message: str) -> None:
    code, out, err = _cli("wait-ready", *argv)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1


def test_an_extra_is_checked_up_front_with_a_one_line_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _extras.missing("fast") == []  # the test environment has every extra
    monkeypatch.setattr(_extras, "_importable", lambda module: module != "matplotlib")
    assert _extras.missing("load") == ["matplotlib"]
    with pytest.raises(_extras.MissingExtraError) as caught:
        _extras.require(
            "load", "matplotlib", what="the latency histogram", otherwise="or pass --no-histogram"
        )
    assert str(caught.value) == (
        "the latency histogram needs matplotlib (the 'load' extra): pip install 'b24-contract[load]',"
        " or pass --no-histogram"
    )
    with pytest.raises(UnknownNameError, match="did you mean 'fast'"):
        _extras.require("fats", what="x")


def test_load_without_matplotlib_stops_before_sending_anything(
    monkeypatch: pytest.MonkeyPatch, http_server: tuple[str, type[_Counting]], tmp_path: Path
) -> None:
    url, handler = http_server
    monkeypatch.setattr(_extras, "_importable", lambda module: module != "matplotlib")
    png = tmp_path / "latency.png"
    code, out, err = _cli("load", "--to", url + "/", "--duration", "5", "--histogram", str(png))
    assert (code, out) == (2, "")
    assert err == (
        "mock-portal: error: the latency histogram needs matplotlib (the 'load' extra):"
        " pip install 'b24-contract[load]', or pass --no-histogram\n"
    )
    assert handler.count == 0
    assert not png.exists()


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_help_texts_cite_doc_urls_never_the_facts_file(command: str) -> None:
    code, out, _ = _cli(command, "--help")
    assert code == 0
    assert "§" not in out
    assert "facts" not in out
    for url in re.findall(r"https?://\S+", out):  # never broken across lines
        assert not url.endswith("-"), url
        if "apidocs" in url:
            assert re.fullmatch(r"https://apidocs\.bitrix24\.com/[\w./-]+\.html(#[\w-]+)?[,;)]?", url), url


@pytest.mark.slow
def test_the_project_pytest_settings_stay_out_of_a_users_run() -> None:
    """The README's plugin command, run from the checkout by a user without the project's test tools: the
    suite's settings (`timeout` with --strict-config) would stop it with "Unknown config option"."""
    command = ["-p", "no:cacheprovider", "-p", "no:timeout", "--pyargs", "contract_tests", "--collect-only"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *command, "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # with nothing configured every clause is left out, which pytest's --collect-only reports as exit code 5
    assert result.returncode in (0, 5), result.stdout + result.stderr
    assert "Unknown config option" not in result.stdout + result.stderr
