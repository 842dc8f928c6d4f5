"""Every command in README.md runs, as a user would type it, and prints what the README shows.

Console blocks hold ``$ command`` lines, each optionally followed by the output it must print (compared
line by line with the start of its stdout) and ended by ``# exit N`` where the command is meant to fail.
``cmd &`` starts a background process (the test waits until its ``--port`` answers), ``kill %1 %2`` stops
them. Fixed ports in the README are replaced by free ones. The two quick-start commands install the package
and run the test suite: those are checked as what they are (the test command is the one CI runs; the install
is what the release tests build and install).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
CI_RUN = REPO_ROOT / ".ci" / "run"
TEST_COMMAND = 'python -m pip install --quiet --upgrade "tox>=4.20" && python -m tox'
MAIN_JOB = "python -m pip install . && mock-portal demo"


@dataclass
class Command:
    line: str
    expected_output: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Block:
    start_line: int
    commands: list[Command]


def _blocks() -> list[Block]:
    blocks: list[Block] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    inside = False
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if not inside and line.strip() == "```console":
                inside = True
                blocks.append(Block(number, []))
            else:
                inside = False
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            text = line[2:]
            exit_code = 0
            marker = re.search(r"\s+# exit (\d+)$", text)
            if marker:
                exit_code = int(marker.group(1))
                text = text[: marker.start()]
            blocks[-1].commands.append(Command(text, exit_code=exit_code))
        elif blocks[-1].commands:
            blocks[-1].commands[-1].expected_output.append(line)
    return blocks


BLOCKS = _blocks()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # `mock-portal` and `python` are this interpreter's, as in a user's activated virtualenv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"background command exited with {process.returncode} before port {port} answered"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not yet listening: there is nothing to wait on
    raise AssertionError(f"port {port} did not answer")


def test_readme_has_the_two_quick_start_commands() -> None:
    commands = [c.line for block in BLOCKS for c in block.commands]
    assert commands[:2] == [MAIN_JOB, TEST_COMMAND]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert TEST_COMMAND in lines


@pytest.mark.parametrize("block", BLOCKS[1:], ids=[f"README.md:{b.start_line}" for b in BLOCKS[1:]])
def test_readme_block(block: Block, tmp_path: Path) -> None:
    if any(c.line == TEST_COMMAND for c in block.commands):
        pytest.skip("the test command is what runs this test")
    env = _environment()
    ports = {p: str(_free_port()) for c in block.commands for p in re.findall(r"\b(80\d\d)\b", c.line)}
    background: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        for command in block.commands:
            line = command.line
            for fixed, free in ports.items():
                line = re.sub(rf"\b{fixed}\b", free, line)
            if line.startswith("kill %"):
                for job in line.split()[1:]:
                    process = background[int(job.lstrip("%")) - 1]
                    process.send_signal(signal.SIGTERM)
                    assert process.wait(timeout=30) in (0, -signal.SIGTERM), command.line
                continue
            if line.endswith("&"):
                logs.append((tmp_path / f"background-{len(background)}.log").open("wb"))
                process = subprocess.Popen(
                    shlex.split(line[:-1]), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=logs[-1]
                )
                background.append(process)
                port = re.search(r"--(?:port|listen) (\d+)", line)
                assert port, f"a background command needs a --port (or --listen) to wait for: {command.line}"
                _wait_for_port(int(port.group(1)), process, time.monotonic() + 60)
                continue
            result = subprocess.run(
                line, shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
            )
            detail = f"$ {command.line}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            assert result.returncode == command.exit_code, detail
            shown = command.expected_output
            assert result.stdout.splitlines()[: len(shown)] == shown, detail
    finally:
        for process in background:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def test_main_job_runs_from_the_installed_console_script() -> None:
    """The first quick-start command's second half; the install half is what tests/test_release.py checks."""
    script = Path(sys.executable).parent / "mock-portal"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mock_portal"]
    result = subprocess.run(
        [*command, "demo"], cwd=REPO_ROOT, env=_environment(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MUST" in result.stdout


def _python_blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m.group(1))
        for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S)
    ]


@pytest.mark.parametrize(
    ("line", "code"), _python_blocks(), ids=[f"README.md:{n}" for n, _ in _python_blocks()]
)
def test_readme_python_example_runs(line: int, code: str) -> None:
    if "from myapp import" in code:
        compile(code, f"README.md:{line}", "exec")  # a template for the user's own app
        return
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
