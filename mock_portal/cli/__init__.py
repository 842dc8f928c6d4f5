"""The ``mock-portal`` command: a thin adapter over the library.

``main()`` calls the pure :func:`run`, which tests call in-process with their own streams. Each subcommand
lives in its own module under ``mock_portal.cli`` with two functions, ``configure(parser)`` and
``execute(args, out, err) -> int``; modules are imported only when their subcommand runs (the parser for help
is built from the short descriptions below), so ``mock-portal validate`` never pays for the HTTP stack.

Exit codes: 0 success, 1 a contract or validation failure, 2 a usage or environment error. Known errors
(:class:`~mock_portal.errors.MockPortalError`) print one line, ``mock-portal: error: ...``, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, Protocol, TextIO, cast

from mock_portal.errors import MockPortalError
from mock_portal.redact import redact_text

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# subcommand -> (module under mock_portal.cli, one-line help). Modules are imported lazily.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "validate event bodies (wire form or JSON) against the schemas"),
    "serve": ("serve", "run the mock portal (REST, OAuth, control API) on 127.0.0.1 until interrupted"),
    "emit": ("emit", "build events and POST them to a handler URL (or print the bodies)"),
    "derive": ("derive", "derive a JSON Schema from a Bitrix24 doc page (the docs' markdown dialect)"),
    "drift": ("drift", "check that the committed schemas still equal the docs plus overlay (or rewrite)"),
    "catalog": ("catalog", "list every documented event and method with its status (schema, builder, spec)"),
    "verify": ("verify", "run the OnSessionStart contract against a handler and print the verdicts"),
    "demo": ("demo", "verify the bundled reference Python handler end to end (the main job, in one command)"),
    "load": ("load", "fire events at a handler at a steady rate; print throughput and latency, write a PNG"),
    "record": (
        "record",
        "relay deliveries to a handler and record each one (secrets replaced) as a JSON line",
    ),
    "replay": ("replay", "re-send recorded or captured events to a handler, re-stamped for a mock portal"),
    "export": ("export", "write every event as OpenAPI 3.1 webhooks or AsyncAPI 3.0 channels (JSON)"),
    "example-handler": (
        "example_handler",
        "serve the bundled reference Python handler (the one demo verifies) until interrupted",
    ),
    "wait-ready": ("wait_ready", "wait until each URL answers HTTP (a server started in the background)"),
}


class _Subcommand(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def execute(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> int: ...


class _UsageExit(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors by raising instead of exiting, so ``run`` stays pure."""

    out: TextIO | None = None

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self.out or file or sys.stdout).write(message)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageExit(f"{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise _UsageExit(message.rstrip())
        raise _HelpExit(status)


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps help texts without breaking a word at a hyphen or splitting a long one, so the doc URLs they
    cite stay whole (copyable, and clickable in a terminal)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )


class _HelpExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _load(name: str) -> _Subcommand:
    module_name, _ = SUBCOMMANDS[name]
    module: Any = importlib.import_module(f"mock_portal.cli.{module_name}")
    return cast(_Subcommand, module)


def _build_parser(selected: str | None, out: TextIO) -> _Parser:
    parser = _Parser(
        prog="mock-portal",
        description="A mock Bitrix24 portal and contract suite for REST event handlers.",
        formatter_class=_HelpFormatter,
    )
    parser.set_defaults(command=None)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )
        sub.set_defaults(command=name)
        if name == selected:
            _load(name).configure(sub)
    # argparse prints help to sys.stdout; route it to our stream
    for each in (parser, *subparsers.choices.values()):
        if isinstance(each, _Parser):
            each.out = out
    return parser


def _selected_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in SUBCOMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def run(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line ``argv`` (without the program name); return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _build_parser(_selected_command(args_list), out)
        args = parser.parse_args(args_list)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return _load(args.command).execute(args, out, err)
    except _HelpExit as exc:
        return exc.status
    except _UsageExit as exc:
        err.write(exc.message + "\n")
        return EXIT_USAGE
    except MockPortalError as exc:
        err.write(f"mock-portal: error: {redact_text(str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("mock-portal: interrupted\n")
        return 130


def main() -> None:
    """Console-script entry point.

    Before the interpreter exits, every object still alive is moved out of the garbage collector's reach
    (:func:`gc.freeze`): a contract run leaves tens of thousands of objects (its portals, the loaded modules),
    and the collections the interpreter runs while tearing them down cost about 0.1 s for nothing the exit
    needs. The teardown itself still runs (atexit handlers, module cleanup, reference-counted finalizers).
    """
    code = run()
    gc.freeze()
    sys.exit(code)
