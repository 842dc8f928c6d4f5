"""``mock-portal serve`` and ``emit``: in process through ``run()``, and serve as a real process."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mock_portal.cli import run
from mock_portal.wire import decode
from tests.conftest import REPO_ROOT
from tests.support.faulty_servers import FaultServer


class _Sink:
    """A loopback handler that keeps every body and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        bodies: list[bytes] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/handler"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink():
    server = _Sink()
    yield server
    server.close()


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_emit_print_is_reproducible_and_sends_nothing() -> None:
    code, out, _ = _run(
        "emit", "ONSESSIONSTART", "--print", "--seed", "7", "--count", "2", "--shape", "docs-2026"
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0] != lines[1]
    assert (
        _run("emit", "onsessionstart", "--print", "--seed", "7", "--count", "2", "--shape", "docs-2026")[1]
        == out
    )
    assert decode(lines[0])["event"] == "ONSESSIONSTART"


def test_emit_set_overrides() -> None:
    code, out, _ = _run(
        "emit", "ONSESSIONSTART", "--print", "--seed", "1", "--auth", "user", "--set", "auth.status=P"
    )
    assert code == 0
    assert decode(out.strip())["auth"]["status"] == "P"
    bad = _run("emit", "ONSESSIONSTART", "--print", "--set", "data..x=1")
    assert bad[0] == 2
    assert "data..x" in bad[2]


def test_emit_delivers_and_summarises(sink: _Sink) -> None:
    code, out, _ = _run(
        "emit", "ONSESSIONSTART", "--to", sink.url, "--count", "5", "--concurrency", "3", "--seed", "9"
    )
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines[:5]] == [[str(i), "ok", "200"] for i in range(1, 6)]
    assert lines[5].startswith("summary: 5 ONSESSIONSTART")
    assert "ok=5" in lines[5]
    assert "seed 9" in lines[5]
    assert len(sink.bodies) == 5
    printed = _run("emit", "ONSESSIONSTART", "--print", "--count", "5", "--seed", "9")[1].splitlines()
    assert sorted(b.decode() for b in sink.bodies) == sorted(printed)


def test_emit_failures_exit_1() -> None:
    failing = _Sink(status=503)
    try:
        code, out, _ = _run("emit", "ONAPPINSTALL", "--to", failing.url, "--seed", "2")
    finally:
        failing.close()
    assert code == 1
    assert out.splitlines()[0].split()[:3] == ["1", "http_error", "503"]
    assert "http_error=1" in out


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_emit_never_blames_a_handler_that_closes_after_each_answer(concurrency: str) -> None:
    # HTTP/1.1 lets a server close a kept-alive connection after any answer, without `Connection: close`
    with FaultServer("once") as server:
        code, out, _ = _run(
            "emit", "ONSESSIONSTART", "--to", server.url, "--count", "100", "--seed", "3",
            "--concurrency", concurrency,
        )  # fmt: skip
        received = [r.body for r in server.requests]
    lines = out.splitlines()
    assert code == 0, out
    assert [line.split()[:3] for line in lines[:100]] == [[str(i), "ok", "200"] for i in range(1, 101)]
    assert "reset" not in out
    assert "ok=100" in lines[100]
    # a request written onto a connection the server had just closed went again on a new one, and says so
    again = [line for line in lines[:100] if "sent again on a new connection" in line]
    assert again
    assert f"; {len(again)} sent again on a new connection" in lines[100]
    printed = _run("emit", "ONSESSIONSTART", "--print", "--count", "100", "--seed", "3")[1].splitlines()
    assert sorted(b.decode() for b in received) == sorted(printed)  # each event arrived once


def test_emit_set_overrides_reach_the_handler(sink: _Sink) -> None:
    code, _, _ = _run(
        "emit", "ONSESSIONSTART", "--to", sink.url, "--count", "3", "--seed", "4", "--set", "auth.status=P"
    )
    assert code == 0
    assert [decode(body)["auth"]["status"] for body in sink.bodies] == ["P"] * 3


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("emit", "ONSESSIONSTART"), "--to"),
        (("emit", "ONSESSIONSTRT", "--print"), "did you mean 'ONSESSIONSTART'"),
        (("emit", "ONSESSIONSTART", "--print", "--count", "0"), "--count"),
        (("emit", "ONSESSIONSTART", "--to", "ftp://x.y/", "--seed", "1"), "ftp://x.y/"),
        (("emit", "ONSESSIONSTART", "--print", "--shape", "docs-2025"), "docs-2025"),
        (("serve", "--port", "70000"), "--port"),
    ],
)
def test_usage_errors_are_one_line(argv: tuple[str, ...], needle: str) -> None:
    code, _, err = _run(*argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_serve_runs_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_portal",
            "serve",
            "--port",
            "0",
            "--portal",
            "p1.example.com",
            "--seed",
            "4",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = {}
        for line in process.stdout:
            if line.startswith("serving"):
                break
            key, _, value = line.partition(" ")
            lines[key] = value.strip()
        url = lines["url"]
        assert url.startswith("http://127.0.0.1:")
        assert lines["portal"].split()[1] == f"{url}/p1.example.com/rest/"
        described = httpx.get(url + "/_portal", timeout=10).json()
        assert [p["domain"] for p in described["portals"]] == ["p1.example.com"]
        app = httpx.post(url + "/_portal/apps", json={}, timeout=10).json()
        assert (
            httpx.get(
                lines["portal"].split()[1] + "app.info", params={"auth": app["access_token"]}
            ).status_code
            == 200
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_portal", "serve", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("serving"):
                break
        process.terminate()
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
