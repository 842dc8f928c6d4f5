"""README.md's examples, read and run as a user pasting them into one shell would.

Console blocks (```` ```console ````) hold ``$ command`` lines, each optionally followed by the output it
prints (compared line by line with the start of its stdout) and ended by ``# exit N`` where the command is
meant to fail. ``command &`` starts a background job and goes straight on, as a shell does (the README itself
waits for servers with ``mock-portal wait-ready``); ``kill %1 %2`` stops jobs, which must then exit cleanly.
A Python block (```` ```python ````) runs as a script; a ```` ```text ```` block right after it is the start
of what it prints. Fixed ports in the README (80xx) are replaced by free ones, in commands and in the output
they print alike, so runs never collide.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

_FIXED_PORT = re.compile(r"\b(80\d\d)\b")
_EXIT_MARKER = re.compile(r"\s+# exit (\d+)$")


@dataclass
class Command:
    line: str
    source_line: int
    expected_output: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Block:
    kind: Literal["console", "python"]
    start_line: int
    commands: list[Command] = field(default_factory=list)
    code: str = ""
    expected_output: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"README.md:{self.start_line}"


def read_blocks(readme: Path) -> list[Block]:
    """The console and Python blocks of ``readme``, in document order."""
    blocks: list[Block] = []
    fence: str | None = None  # the info string of the open fence, None outside a fence
    body: list[str] = []
    last_closed: Block | None = None  # the Python block a following text block belongs to
    gap = True  # only blank lines since the last closed fence
    for number, line in enumerate(readme.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                body = []
                if fence == "console":
                    blocks.append(Block("console", number))
                elif fence == "python":
                    blocks.append(Block("python", number))
                continue
            if fence == "python":
                blocks[-1].code = "\n".join(body) + "\n"
                last_closed = blocks[-1]
            elif fence == "text" and last_closed is not None and gap:
                last_closed.expected_output = list(body)
                last_closed = None
            else:
                last_closed = None
            fence = None
            gap = True
            continue
        if fence is None:
            if line.strip():
                gap = False
                last_closed = None
            continue
        body.append(line)
        if fence != "console":
            continue
        if line.startswith("$ "):
            text = line[2:]
            exit_code = 0
            marker = _EXIT_MARKER.search(text)
            if marker:
                exit_code = int(marker.group(1))
                text = text[: marker.start()]
            blocks[-1].commands.append(Command(text, number, exit_code=exit_code))
        elif blocks[-1].commands:
            blocks[-1].commands[-1].expected_output.append(line)
    return blocks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Shell:
    """One user's shell: a working folder, an environment, and the background jobs of the current block.

    ``rewrite`` maps a command line to the one actually run (the same line by default): the fresh-venv run
    installs the wheel it built where the README says ``pip install .``.
    """

    cwd: Path
    env: dict[str, str]
    python: str
    log_dir: Path
    rewrite: Callable[[str], str] = lambda line: line
    timeout: float = 300.0

    def run(self, block: Block) -> None:
        """Run ``block``; an AssertionError names the README line, the command and everything it printed."""
        if block.kind == "python":
            self._run_python(block)
        else:
            self._run_console(block)

    def _ports(self, texts: list[str]) -> dict[str, str]:
        return {fixed: str(free_port()) for text in texts for fixed in _FIXED_PORT.findall(text)}

    @staticmethod
    def _with_ports(text: str, ports: dict[str, str]) -> str:
        return _FIXED_PORT.sub(lambda m: ports.get(m.group(1), m.group(1)), text)

    def _run_python(self, block: Block) -> None:
        ports = self._ports([block.code])
        script = self.log_dir / f"readme-{block.start_line}.py"
        script.write_text(self._with_ports(block.code, ports), encoding="utf-8")
        result = subprocess.run(
            [self.python, str(script)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=self.timeout,
        )
        detail = f"{block.id} (python)\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert result.returncode == 0, detail
        shown = [self._with_ports(line, ports) for line in block.expected_output]
        assert result.stdout.splitlines()[: len(shown)] == shown, detail

    def _run_console(self, block: Block) -> None:
        ports = self._ports([c.line for c in block.commands])
        jobs: list[subprocess.Popen[bytes]] = []
        logs: list[tuple[Path, IO[bytes]]] = []

        def background_output() -> str:
            parts = []
            for path, handle in logs:
                handle.flush()
                parts.append(f"--- {path.name}\n{path.read_text(encoding='utf-8', errors='replace')[-4000:]}")
            return "\n".join(parts)

        try:
            for command in block.commands:
                line = self._with_ports(self.rewrite(command.line), ports)
                where = f"README.md:{command.source_line}: $ {command.line}"
                if line.startswith("kill %"):
                    for job in line.split()[1:]:
                        process = jobs[int(job.lstrip("%")) - 1]
                        if process.poll() is None:
                            os.killpg(process.pid, signal.SIGTERM)
                        code = process.wait(timeout=60)
                        assert code in (0, -signal.SIGTERM), (
                            f"{where}: job {job} exited with {code}\n{background_output()}"
                        )
                    continue
                if line.endswith("&"):
                    log_path = self.log_dir / f"job-{command.source_line}.log"
                    logs.append((log_path, log_path.open("wb")))
                    jobs.append(
                        subprocess.Popen(
                            ["bash", "-c", f"exec {line[:-1].strip()}"],
                            cwd=self.cwd,
                            env=self.env,
                            stdin=subprocess.DEVNULL,
                            stdout=logs[-1][1],
                            stderr=subprocess.STDOUT,
                            start_new_session=True,  # its own process group, as a shell's job
                        )
                    )
                    continue
                result = subprocess.run(
                    ["bash", "-c", line],
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                )
                detail = (
                    f"{where}\nexit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
                    f"{background_output()}"
                )
                assert result.returncode == command.exit_code, detail
                shown = [self._with_ports(out, ports) for out in command.expected_output]
                assert result.stdout.splitlines()[: len(shown)] == shown, detail
        finally:
            for process in jobs:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            for _, handle in logs:
                handle.close()
