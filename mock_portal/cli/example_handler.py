"""``mock-portal example-handler``: serve the bundled reference Python handler, from any folder.

It is the handler ``mock-portal demo`` verifies (``examples/python_handler``, shipped in the wheel as
``mock_portal._examples.python_handler``), with the same options as ``python -m examples.python_handler``:
it listens on 127.0.0.1:8080 by default, takes the install at ``/install`` and events at any path, prints
``listening on http://HOST:PORT/`` once it accepts connections, and stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

DEFAULT_PORT = 8080


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the reference handler's own options (its parser is the one source of them)."""
    from mock_portal.cli.demo import reference_handler

    parser.description = (
        "Serve the bundled reference Python handler, the one `mock-portal demo` verifies, until Ctrl-C:"
        " the install (ONAPPINSTALL) at http://127.0.0.1:8080/install, events at any other path"
        " (e.g. /events). It honours every clause of the contract; point `mock-portal verify` or the"
        " pytest plugin at it to see a passing run, then at your own handler."
    )
    handler: Any = reference_handler()
    # quiet by default: it mostly runs in the background of a terminal where other output is being read
    handler.add_arguments(parser, default_port=DEFAULT_PORT, default_log_level="WARNING")


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Serve until interrupted; return the exit code."""
    from mock_portal.cli.demo import reference_handler

    handler: Any = reference_handler()
    return int(handler.serve(args, out=out))
