"""A long-lived PHP process that answers encode/decode requests, for the wire codec's differential tests.

Spawning ``php`` per example costs ~15 ms; one worker for the whole session answers in microseconds. The
worker script is ``tests/php/wire_worker.php``; requests and answers are JSON lines over its stdin/stdout.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).resolve().parent.parent / "php" / "wire_worker.php"

# PHP's defaults, pinned so a local php.ini cannot change the reference. display_errors must be off: PHP
# reports a nesting-level overflow only when errors are not displayed.
PHP_INI = {
    "display_errors": "0",
    "log_errors": "0",
    "error_reporting": "-1",
    "max_input_vars": "1000",
    "max_input_nesting_level": "64",
    "precision": "14",
    "arg_separator.output": "&",
    "arg_separator.input": "&",
    "memory_limit": "1G",
}


@dataclass(frozen=True)
class PhpDecoded:
    """What ``parse_str`` made of a body: its ``json_encode`` text (top level as an object) and warnings."""

    json: str
    utf8_ok: bool
    warnings: tuple[str, ...]

    def value(self) -> Any:
        """The decoded result with key order kept (see :func:`ordered`)."""
        return json.loads(self.json, object_pairs_hook=_pairs)


def _pairs(pairs: list[tuple[str, Any]]) -> tuple[str, list[tuple[str, Any]]]:
    return ("object", pairs)


def ordered(value: Any) -> Any:
    """A comparable form in which dicts are ordered lists of pairs, so that key order counts in ``==``."""
    if isinstance(value, dict):
        return ("object", [(key, ordered(item)) for key, item in value.items()])
    if isinstance(value, list):
        return [ordered(item) for item in value]
    return value


class PhpWorker:
    """One ``php`` process running the worker script; not thread-safe."""

    def __init__(self, php_binary: str) -> None:
        command = [php_binary]
        for name, setting in PHP_INI.items():
            command += ["-d", f"{name}={setting}"]
        command.append(str(WORKER_SCRIPT))
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(request, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            stderr = self._process.stderr.read().decode("utf-8", "replace") if self._process.stderr else ""
            raise RuntimeError(f"the PHP worker exited: {stderr.strip()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the PHP worker refused {request.get('op')!r}: {answer['error']}")
        return answer

    def info(self) -> dict[str, Any]:
        """PHP's version and the ini settings the reference runs with."""
        return self._ask({"op": "info"})

    def encode(self, payload: Any) -> str:
        """``http_build_query($payload)``; the payload goes through ``json_decode($json, true)``."""
        answer = self._ask({"op": "encode", "payload": payload})
        assert not answer["warnings"], answer["warnings"]
        body: str = answer["body"]
        return body

    def decode(self, body: bytes | str) -> PhpDecoded:
        """``parse_str($body)`` as ``json_encode`` shows it, with any warnings PHP raised."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        answer = self._ask({"op": "decode", "body_b64": base64.b64encode(raw).decode("ascii")})
        return PhpDecoded(answer["json"], answer["utf8_ok"], tuple(answer["warnings"]))

    def close(self) -> None:
        """Stop the worker (closing its stdin ends its loop) and reap it."""
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdout, self._process.stderr):
            if stream:
                stream.close()
