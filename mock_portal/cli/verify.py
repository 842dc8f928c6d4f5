"""``mock-portal verify``: run the contract against a handler and print a verdict table.

::

    mock-portal verify http://127.0.0.1:8080/
    mock-portal verify http://127.0.0.1:8080/ --start "node handler.js --port 8080" --strict
    mock-portal verify URL --install-url /install --junit report.xml --report-json report.json
    mock-portal verify URL --events ONSESSIONSTART,ONIMCONNECTORMESSAGEADD --clauses my_app.clauses
    mock-portal verify URL --clause forged-token-no-side-effect --save-bodies ./failing
    mock-portal verify URL --offline            # the handler reads its events with event.offline.get
    mock-portal verify URL --fuzz 200 --save-bodies ./failing

Exit codes: 0 when every MUST clause passed (every clause with ``--strict``), 1 otherwise, 2 on a usage or
environment error (nothing answers at the URL, the ``--start`` command died or never opened its port, the
handler refused its installation, a ``--clauses`` module failed to import).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from mock_portal.cli import EXIT_FAILURE, EXIT_OK
from mock_portal.errors import MockPortalError, UsageError
from mock_portal.redact import redact_text

if TYPE_CHECKING:
    from contract_tests.engine import ContractConfig, ContractReport
    from mock_portal.server import PortalServer

_SHAPES = ("source-2024", "docs-2024", "docs-2026")
_LOG_TAIL_LINES = 20
_POLL = 0.02


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``verify`` options."""
    parser.add_argument("url", nargs="?", metavar="URL", help="where the handler receives events")
    parser.add_argument(
        "--handler-url", metavar="URL", help="where the handler receives events (or give it as URL)"
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--install-url",
        metavar="URL",
        help="where ONAPPINSTALL goes: a URL, or a path on the handler (/install); default: the handler URL. "
        "The handler learns its token from it",
    )
    how.add_argument(
        "--application-token",
        metavar="TOKEN",
        default=os.environ.get("B24_APPLICATION_TOKEN") or None,
        help="the token the handler was configured with, instead of the install flow "
        "(env B24_APPLICATION_TOKEN; prefer the variable, flags show in process lists)",
    )
    parser.add_argument("--member-id", help="the member_id the configured token is bound to, if any")
    parser.add_argument(
        "--start", metavar="CMD", help="start the handler with this command, wait for its port, stop it after"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=30.0, metavar="S", help="seconds to wait for the port (30)"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve the portals as real clients see them (https://<domain>/rest/, the OAuth hosts) through "
        "a local proxy, and start the handler with HTTPS_PROXY and the CA variables (needs --start)",
    )
    parser.add_argument("--strict", action="store_true", help="SHOULD clauses fail the run too")
    parser.add_argument(
        "--shapes", help=f"comma-separated OnSessionStart shapes (default: {','.join(_SHAPES)})"
    )
    parser.add_argument(
        "--events",
        metavar="LIST",
        help="comma-separated events the handler declares it handles (default: ONSESSIONSTART); "
        "the generic clauses run for each",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="the handler declares offline use (binds its events with event_type=offline and reads them with "
        "event.offline.get): the clauses about offline events run too",
    )
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per delivery (10)")
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="S",
        help="least seconds waited to see that an event led to no REST call; grows with the handler's "
        "measured work latency (0.05)",
    )
    parser.add_argument(
        "--clause",
        dest="clause",
        action="append",
        metavar="ID",
        help="judge only this clause (an id, a number like 3a, or ID[EVENT]); repeat or comma-separate",
    )
    parser.add_argument(
        "--clauses",
        dest="clause_modules",
        action="append",
        metavar="MODULE",
        help="import MODULE first: the clauses it registers (contract_tests.clause) run too; repeatable",
    )
    parser.add_argument(
        "--save-bodies",
        metavar="DIR",
        help="keep the exact body of every failing delivery in DIR (files only you can read) and print curl "
        "lines that replay them, so the run's tokens never appear in the output",
    )
    add_fuzz_options(parser)
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--report-json", metavar="FILE", help="write the report as JSON")


def add_fuzz_options(parser: argparse.ArgumentParser) -> None:
    """``--fuzz N`` and ``--fuzz-seed S`` (verify and demo)."""
    parser.add_argument(
        "--fuzz",
        type=_count,
        default=0,
        metavar="N",
        help="also deliver N events per declared event generated from the schemas (valid ones with every "
        "optional field on and off, boundary ids, unicode, several DATA items; near-valid ones): the "
        "survives-fuzzing clause fails on a 5xx, a hang, a crash or an echoed secret and shows the event "
        "shrunk to a minimal one (needs hypothesis: pip install 'b24-contract[fuzz]')",
    )
    parser.add_argument(
        "--fuzz-seed",
        type=_count,
        default=0,
        metavar="S",
        help="the seed the events are generated from (0): the same seed sends the same events",
    )


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _shapes(text: str | None) -> tuple[str, ...]:
    if text is None:
        return _SHAPES
    return tuple(s.strip() for s in text.split(",") if s.strip())


def build_config(args: argparse.Namespace, handler: object | None = None) -> ContractConfig:
    """The :class:`~contract_tests.engine.ContractConfig` the options describe (raises UsageError if bad)."""
    from contract_tests.clauses import DEFAULT_EVENTS
    from contract_tests.engine import DEFAULT_SETTLE, ContractConfig, check_events

    events = DEFAULT_EVENTS if getattr(args, "events", None) is None else check_events(args.events)
    return ContractConfig(
        handler if handler is not None else handler_url(args),
        install_url=args.install_url,
        application_token=args.application_token,
        member_id=args.member_id,
        shapes=_shapes(args.shapes),
        events=events,
        timeout=args.timeout,
        settle=DEFAULT_SETTLE if args.settle is None else args.settle,
        strict=args.strict,
        bodies_dir=getattr(args, "save_bodies", None),
        offline=bool(getattr(args, "offline", False)),
        fuzz=getattr(args, "fuzz", 0),
        fuzz_seed=getattr(args, "fuzz_seed", 0),
    )


def handler_url(args: argparse.Namespace) -> str:
    """The handler's URL: the positional ``URL`` or ``--handler-url`` (exactly one)."""
    given = [u for u in (getattr(args, "url", None), getattr(args, "handler_url", None)) if u]
    if not given:
        raise UsageError("give the handler's URL: mock-portal verify URL (or --handler-url URL)")
    if len(given) == 2 and given[0] != given[1]:
        raise UsageError("give the handler's URL once: as URL or as --handler-url, not both")
    return str(given[0])


def load_clause_modules(names: Sequence[str] | None) -> None:
    """Import each module of ``--clauses`` (it registers its clauses); a failure is a usage error."""
    import importlib
    import sys

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # `python -m` semantics: modules of the current folder import
    for name in names or ():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise UsageError(
                f"--clauses {name}: no module named {exc.name!r} "
                "(run from the folder it is in, or set PYTHONPATH)"
            ) from None
        except MockPortalError:
            raise
        except Exception as exc:
            raise UsageError(f"--clauses {name}: importing it failed: {type(exc).__name__}: {exc}") from None


def selected_clauses(args: argparse.Namespace) -> list[str] | None:
    """The ``--clause`` ids (comma lists split), or ``None`` for all."""
    if not getattr(args, "clause", None):
        return None
    from contract_tests.clauses import REGISTRY

    picked = [item.strip() for value in args.clause for item in value.split(",") if item.strip()]
    for item in picked:
        REGISTRY.get(item.partition("[")[0])  # unknown ids raise with a suggestion
    return picked


def rerun_command(args: argparse.Namespace) -> Callable[[str], str]:
    """A function turning a verdict id into the ``mock-portal verify`` command that re-runs just it, with
    this run's options (a configured token by its variable, never its value)."""
    parts = ["mock-portal", "verify", handler_url(args)]
    for flag, value in (
        ("--install-url", args.install_url),
        ("--member-id", args.member_id),
        ("--events", args.events),
        ("--shapes", args.shapes),
        ("--start", args.start),
    ):
        if value:
            parts += [flag, value]
    if args.timeout != 10.0:
        parts += ["--timeout", f"{args.timeout:g}"]
    if getattr(args, "fuzz", 0):
        parts += ["--fuzz", str(args.fuzz), "--fuzz-seed", str(args.fuzz_seed)]
    for module in getattr(args, "clause_modules", None) or ():
        parts += ["--clauses", module]
    if getattr(args, "tls", False):
        parts.append("--tls")
    if getattr(args, "offline", False):
        parts.append("--offline")
    if args.strict:
        parts.append("--strict")
    prefix = " ".join(shlex.quote(p) for p in parts)
    if args.application_token:
        prefix += ' --application-token "$B24_APPLICATION_TOKEN"'

    def command(verdict: str) -> str:
        return f"{prefix} --clause {shlex.quote(verdict)}"

    return command


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--handler-url must be an http(s) URL, got {redact_text(url)[:200]!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--handler-url has a bad port: {redact_text(url)[:200]!r}") from None
    return parts.hostname, port


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class StartedHandler:
    """A handler process started for the run: its output goes to a log file whose tail joins failures."""

    def __init__(self, command: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise UsageError(f"--start: cannot split the command: {exc}") from None
        if not argv:
            raise UsageError("--start: the command is empty")
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.process = subprocess.Popen(
                argv,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **env} if env else None,
            )
        except OSError as exc:
            self._log.close()
            raise UsageError(f"--start: cannot run {argv[0]!r}: {exc.strerror}") from None

    def tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the handler's output, secrets masked."""
        try:
            data = self.log_path.read_bytes()[-64 * 1024 :]
        except OSError:
            return ""
        text = data.decode("utf-8", "replace").splitlines()[-lines:]
        return redact_text("\n".join(text))

    def wait_for_port(self, host: str, port: int, timeout: float) -> None:
        """Return once ``host:port`` accepts connections; UsageError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UsageError(
                    f"--start: the handler exited with code {self.process.returncode} before {host}:{port} "
                    f"answered; its output:\n{self.tail()}"
                )
            if _answers(host, port):
                return
            time.sleep(_POLL)
        raise UsageError(
            f"--start: nothing answered at {host}:{port} within {timeout:g} s; its output:\n{self.tail()}"
        )

    def stop(self) -> int | None:
        """SIGTERM the process group it started, SIGKILL it after 5 s; return the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def started(
    command: str | None, host: str, port: int, timeout: float, env: dict[str, str] | None = None
) -> Iterator[StartedHandler | None]:
    """Start ``command`` (if given; ``env`` added to ours) and wait for its port; stop it on the way out."""
    if command is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="b24-verify-") as folder:
        handler = StartedHandler(command, Path(folder) / "handler.log", env)
        try:
            handler.wait_for_port(host, port, timeout)
            yield handler
        finally:
            handler.stop()


def run_contract(
    config: ContractConfig,
    out: TextIO,
    err: TextIO,
    *,
    log_tail: Callable[[], str] | None = None,
    junit: str | None = None,
    report_json: str | None = None,
    clauses: Sequence[str] | None = None,
    rerun: Callable[[str], str] | None = None,
    server: PortalServer | None = None,
) -> int:
    """Run the clauses (all, or ``clauses``), print the table and the failures in full, write the reports;
    return the exit code."""
    from contract_tests.engine import ContractRun

    progress = hasattr(err, "isatty") and err.isatty()
    began = time.perf_counter()
    with ContractRun(config, log_tail=log_tail, rerun=rerun, server=server) as run:
        if progress:
            err.write("\rchecking the handler ...")
            err.flush()
        report = run.run(clauses)
        report = run.report([v.id for v in report.verdicts], time.perf_counter() - began)
    if progress:
        err.write("\r" + " " * 80 + "\r")
    _write_reports(report, junit, report_json)
    title = "OnSessionStart" if config.events == ("ONSESSIONSTART",) else ", ".join(config.events)
    out.write(f"b24-contract {title}: {report.handler}\n\n")
    out.write(report.table() + "\n")
    details = [v for v in report.verdicts if v.outcome in ("fail", "inconclusive")]
    if details:
        out.write("\n")
        for verdict in details:
            out.write(verdict.message() + "\n\n")
    return EXIT_OK if report.ok else EXIT_FAILURE


def _write_reports(report: ContractReport, junit: str | None, report_json: str | None) -> None:
    from contract_tests.reports import report_json as as_json

    for path, text in (
        (junit, report.junit_xml() if junit else ""),
        (report_json, as_json(report) if report_json else ""),
    ):
        if path is None:
            continue
        try:
            Path(path).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the report {path!r}: {exc.strerror}") from None


def require_fuzzing(count: int) -> None:
    """With ``--fuzz``, check that hypothesis is installed before anything starts (a one-line hint)."""
    if count:
        from mock_portal._extras import require

        require("fuzz", what="--fuzz")


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``mock-portal verify``."""
    load_clause_modules(getattr(args, "clause_modules", None))
    config = build_config(args)
    require_fuzzing(config.fuzz)
    clauses = selected_clauses(args)
    host, port = _host_port(handler_url(args))
    if not 0 < args.start_timeout <= 600:
        raise UsageError("--start-timeout must be a number of seconds in (0, 600]")
    if args.tls and args.start is None:
        raise UsageError("--tls needs --start: the handler must start with the proxy and CA variables")
    with contextlib.ExitStack() as stack:
        server: PortalServer | None = None
        env: dict[str, str] | None = None
        if args.tls:
            from mock_portal.server import PortalServer as Server
            from mock_portal.tls import TlsFront

            server = stack.enter_context(Server())
            env = stack.enter_context(TlsFront(server)).env()
        handler = stack.enter_context(started(args.start, host, port, args.start_timeout, env))
        if handler is None and not _answers(host, port):
            raise UsageError(
                f"nothing answers at {host}:{port} (start the handler first, or give --start CMD)"
            )
        return run_contract(
            config,
            out,
            err,
            log_tail=handler.tail if handler is not None else None,
            junit=args.junit,
            report_json=args.report_json,
            clauses=clauses,
            rerun=rerun_command(args),
            server=server,
        )
