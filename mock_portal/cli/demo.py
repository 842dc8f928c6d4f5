"""``mock-portal demo``: verify the bundled reference Python handler, end to end, in one command.

It serves the reference handler (``examples/python_handler``, shipped in the wheel as
``mock_portal._examples.python_handler``) on a free 127.0.0.1 port, runs every clause of the OnSessionStart
contract against it through the install flow (ONAPPINSTALL first, as a real portal does), prints the table and
exits 0 when the handler honours the contract.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import logging
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from mock_portal.errors import DataNotFoundError

_PACKAGED = "mock_portal._examples.python_handler"
_POLL_S = 0.01  # how often the handler's server looks for shutdown(): the demo stops within this of its end
_LOADED_AS = "_b24_reference_python_handler"
_CHECKOUT = Path(__file__).resolve().parents[2] / "examples" / "python_handler"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options."""
    parser.add_argument("--strict", action="store_true", help="SHOULD clauses fail the run too")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--report-json", metavar="FILE", help="write the report as JSON")
    from mock_portal.cli.verify import add_fuzz_options

    add_fuzz_options(parser)


def reference_handler() -> ModuleType:
    """The reference Python handler package: the packaged copy first, then the checkout's ``examples/``."""
    try:
        return importlib.import_module(_PACKAGED)
    except ModuleNotFoundError:
        pass
    if _LOADED_AS in sys.modules:
        return sys.modules[_LOADED_AS]
    init = _CHECKOUT / "__init__.py"
    if not init.is_file():
        raise DataNotFoundError(
            f"the reference handler is missing from this installation (looked for {_PACKAGED}, {_CHECKOUT})"
        )
    spec = importlib.util.spec_from_file_location(
        _LOADED_AS, init, submodule_search_locations=[str(_CHECKOUT)]
    )
    if spec is None or spec.loader is None:
        raise DataNotFoundError(f"cannot load the reference handler from {_CHECKOUT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_LOADED_AS] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_LOADED_AS]
        raise
    return module


class _Tail(logging.Handler):
    """Keeps the handler's last log lines for failure messages (they are already free of secrets)."""

    def __init__(self, size: int = 20) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")

    def text(self) -> str:
        return "\n".join(self.lines)


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``mock-portal demo``."""
    from contract_tests.engine import ContractConfig
    from mock_portal.cli.verify import require_fuzzing, run_contract

    require_fuzzing(args.fuzz)
    module = reference_handler()
    app: Any = module.HandlerApp(module.HandlerConfig()).start()
    server: Any = module.make_server(app, "127.0.0.1", 0)
    logger = logging.getLogger("b24_handler")
    tail = _Tail()
    saved = (logger.propagate, logger.level)
    logger.addHandler(tail)
    logger.propagate = False  # the handler's log goes to the failure messages, not the terminal
    logger.setLevel(logging.INFO)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": _POLL_S}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    out.write(f"reference Python handler listening on {url}\n")
    try:
        code = run_contract(
            ContractConfig(url, strict=args.strict, fuzz=args.fuzz, fuzz_seed=args.fuzz_seed),
            out,
            err,
            log_tail=tail.text,
            junit=args.junit,
            report_json=args.report_json,
        )
    finally:
        server.shutdown()
        server.server_close()
        app.close()
        logger.removeHandler(tail)
        logger.propagate, _ = saved
        logger.setLevel(saved[1])
    out.write(NEXT_STEP)
    return code


NEXT_STEP = """
Next: the same contract against your own handler.
  Over HTTP, with your handler listening (its event URL, and the URL that takes ONAPPINSTALL):
    mock-portal verify --handler-url http://127.0.0.1:8000/events --install-url http://127.0.0.1:8000/install
  In process, in your tests (tests/test_contract.py; run it with python -m pytest):
    import pytest
    from contract_tests import OnSessionStartContract

    from myapp import app  # your WSGI or ASGI application


    class TestMyHandler(OnSessionStartContract):
        @pytest.fixture
        def b24_handler(self):
            return app
  What a handler must get right: README.md, "Concepts in five minutes" (#concepts-in-five-minutes).
"""
"""What ``demo`` prints after the report: the step from the reference handler to the user's own."""
