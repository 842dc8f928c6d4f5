"""``batch`` over any callable that executes one method (https://apidocs.bitrix24.com/settings/how-to-call-rest-api/batch.html).

- ``cmd``: up to 50 commands ``"method?query"`` keyed by number or name; more is
  ``ERROR_BATCH_LENGTH_EXCEEDED``.
- Each command's parameters may use the answers of earlier ones: ``$result[key][FIELD][0]``, ``$next[key]``,
  ``$total[key]``, ``$time[key][...]`` and ``$error[key][...]``. A parameter that is one reference takes the
  referenced value whole (an array stays an array); a reference inside a longer string is replaced by the
  value's text. A reference to nothing is left as written.
- ``halt`` (``1``/``Y``/``true``): stop at the first command that fails.
- The answer: ``result``, ``result_error``, ``result_total``, ``result_next``, ``result_time``, each keyed
  like ``cmd`` and written as PHP's ``json_encode`` writes an array (keys 0..n-1 in order make a list, an
  empty one is ``[]``). A ``batch`` inside a batch fails on its own (``ERROR_BATCH_METHOD_NOT_ALLOWED``,
  rest 24.0.0+).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mock_portal.errors import MockPortalError
from mock_portal.restkit.errors import RestError

__all__ = ["MAX_BATCH_COMMANDS", "Outcome", "Reply", "run_batch"]

MAX_BATCH_COMMANDS = 50
"""Commands allowed in one ``batch``."""

_REFERENCE = re.compile(r"\$(result|next|total|time|error)((?:\[[^\[\]]*\])+)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class Reply(Protocol):
    """What the one-method callable returns: an HTTP status and the JSON envelope (a RestResponse fits)."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> Any: ...


@dataclass(frozen=True)
class Outcome:
    """A plain :class:`Reply`, for callables that have no response type of their own."""

    status: int
    body: Any


Execute = Callable[[str, dict[str, Any]], Reply]


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("1", "Y", "TRUE", "ON")
    return bool(value)


def _param(params: Mapping[str, Any], name: str) -> Any:
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == name:
            return value
    return None


def _php_array(values: dict[str, Any]) -> Any:
    # json_encode writes an array keyed 0..n-1 in order as a JSON list, any other array as an object
    if not values:
        return []
    if list(values) == [str(i) for i in range(len(values))]:
        return list(values.values())
    return dict(values)


def _normalize(method: str) -> str:
    name = method.strip().strip("/").lower()
    return name[: -len(".json")] if name.endswith(".json") else name


class _Answers:
    def __init__(self) -> None:
        self.result: dict[str, Any] = {}
        self.error: dict[str, Any] = {}
        self.total: dict[str, Any] = {}
        self.next: dict[str, Any] = {}
        self.time: dict[str, Any] = {}

    def lookup(self, kind: str, path: str) -> tuple[bool, Any]:
        node: Any = getattr(self, kind)
        for segment in _SEGMENT.findall(path):
            if isinstance(node, dict) and segment in node:
                node = node[segment]
            elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return False, None
        return True, node

    def substitute(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substitute(item) for item in value]
        if not isinstance(value, str) or "$" not in value:
            return value
        whole = _REFERENCE.fullmatch(value)
        if whole is not None:
            found, referenced = self.lookup(whole.group(1), whole.group(2))
            return referenced if found else value

        def text(match: re.Match[str]) -> str:
            found, referenced = self.lookup(match.group(1), match.group(2))
            if not found or isinstance(referenced, (dict, list)):
                return match.group(0)
            if isinstance(referenced, bool):
                return "1" if referenced else ""
            return "" if referenced is None else str(referenced)

        return _REFERENCE.sub(text, value)


def run_batch(
    params: Mapping[str, Any],
    execute: Execute,
    *,
    decode: Callable[[str], dict[str, Any]] | None = None,
    max_commands: int = MAX_BATCH_COMMANDS,
) -> dict[str, Any]:
    """Run ``batch`` ``params`` (``cmd``, ``halt``) through ``execute(method, params)``; return ``result``.

    ``decode`` parses a command's query string (default: the PHP-exact :func:`mock_portal.wire.decode`).
    Raises :class:`RestError` for a batch refused whole (no ``cmd``, too many commands).
    """
    if decode is None:
        from mock_portal.wire import decode as wire_decode

        decode = wire_decode
    commands = _param(params, "cmd")
    if isinstance(commands, list):
        commands = {str(i): command for i, command in enumerate(commands)}
    if not isinstance(commands, dict) or not commands:
        raise RestError("ERROR_ARGUMENT", "Argument 'cmd' is null or empty")
    if len(commands) > max_commands:
        raise RestError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
    halt = _flag(_param(params, "halt") or "0")
    answers = _Answers()
    for raw_key, command in commands.items():
        key = str(raw_key)
        if not isinstance(command, str) or not command.strip():
            raise RestError("ERROR_ARGUMENT", f"batch command {key!r} must be a string 'method?params'")
        method, _, query = command.partition("?")
        name = _normalize(method)
        try:
            if name == "batch":
                raise RestError(
                    "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
                )
            sub_params = answers.substitute(decode(query)) if query else {}
        except RestError as exc:
            answers.error[key] = exc.envelope()
        except MockPortalError as exc:
            answers.error[key] = {"error": "ERROR_ARGUMENT", "error_description": str(exc)}
        else:
            reply = execute(name, sub_params)
            body = reply.body if isinstance(reply.body, dict) else {}
            if reply.status >= 400 or "error" in body:
                answers.error[key] = {
                    "error": body.get("error", "ERROR_UNEXPECTED_ANSWER"),
                    "error_description": body.get("error_description", ""),
                }
            else:
                answers.result[key] = body.get("result")
                for field, store in (
                    ("total", answers.total),
                    ("next", answers.next),
                    ("time", answers.time),
                ):
                    if field in body:
                        store[key] = body[field]
        if halt and key in answers.error:
            break
    return {
        "result": _php_array(answers.result),
        "result_error": _php_array(answers.error),
        "result_total": _php_array(answers.total),
        "result_next": _php_array(answers.next),
        "result_time": _php_array(answers.time),
    }
