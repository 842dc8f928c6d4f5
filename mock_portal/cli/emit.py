"""``mock-portal emit``: build events and POST them to a handler, as a portal's queue server would.

One line per delivery (number, outcome, status, latency) and a summary. ``--print`` writes the form bodies to
stdout, one per line, and sends nothing. Events come from one seeded stream (``--seed N``), so a run can be
repeated byte for byte; without ``--seed`` a random seed is drawn and printed.

The bodies are generated as they are sent (:class:`~mock_portal.events.EventStream`) and sent by the lean
emitter (:mod:`mock_portal.loadgen`) over ``--concurrency`` keep-alive connections. A request the handler's
server lost by closing a kept-alive connection before answering is sent once more on a new connection, and
its line says so: that close is not the handler's failure.

Exit codes: 0 every delivery answered 2xx (or ``--print``), 1 at least one did not, 2 a usage error.
"""

from __future__ import annotations

import argparse
import itertools
import math
import secrets
import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from mock_portal.cli import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from mock_portal.loadgen import RequestRecord

_MAX_COUNT = 1_000_000
_MAX_CONCURRENCY = 1000
_RETRIED = "sent again on a new connection: the handler's server closed the kept-alive one before answering"


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal emit``."""
    parser.add_argument("event", metavar="EVENT", help="event name, e.g. ONSESSIONSTART (any case)")
    parser.add_argument("--to", metavar="URL", help="the handler URL to POST to (required unless --print)")
    parser.add_argument("--count", type=int, default=1, metavar="N", help="how many events (default: 1)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="C",
        help="deliveries in flight at once, one keep-alive connection each (default: 1)",
    )
    parser.add_argument(
        "--shape", default=None, help="payload shape (ONSESSIONSTART: source-2024, docs-2024, docs-2026)"
    )
    parser.add_argument(
        "--auth",
        choices=["user", "system"],
        default=None,
        help="auth block mode: user (the OAuth tokens of the user who caused the event) or system (no tokens:"
        " the handler uses the ones it stored at install); see"
        " https://apidocs.bitrix24.com/api-reference/events/index.html#auth",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of the event stream (same seed: same bodies)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="PATH=VALUE",
        help="set a field by dotted path (VALUE read as JSON when it parses); del:PATH deletes (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per-delivery timeout (default: 10)"
    )
    parser.add_argument(
        "--print", action="store_true", dest="print_only", help="print the bodies, send nothing"
    )


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Stream the events, then print or deliver them; return the exit code."""
    from mock_portal.errors import UsageError
    from mock_portal.events import EventStream

    if not 1 <= args.count <= _MAX_COUNT:
        raise UsageError(f"--count must be between 1 and {_MAX_COUNT}, got {args.count}")
    if not 1 <= args.concurrency <= _MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {_MAX_CONCURRENCY}, got {args.concurrency}")
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if not args.print_only and not args.to:
        raise UsageError("give --to URL (where to POST the events) or --print")
    seed = args.seed if args.seed is not None else secrets.randbits(31)
    stream = EventStream(args.event, shape=args.shape, auth=args.auth, seed=seed)
    bodies: Iterator[str]
    if args.overrides:
        overrides = args.overrides
        bodies = (event.with_overrides(overrides).body("form") for event in stream.events(args.count))
    else:
        bodies = stream.bodies(args.count)
    # the first body is built before anything is sent, so a bad --set is a usage error with nothing sent
    bodies = itertools.chain([next(bodies)], bodies)
    if args.print_only:
        for body in bodies:
            out.write(body + "\n")
        return EXIT_OK
    return _deliver(args, stream.spec.name, bodies, seed, out)


class _InOrder:
    """Prints one line per delivery in input order as deliveries end (in any order); tallies outcomes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.waiting: dict[int, RequestRecord] = {}
        self.next = 0
        self.counts: dict[str, int] = {}
        self.latencies: list[float] = []
        self.retried = 0

    def __call__(self, record: RequestRecord) -> None:
        self.counts[record.outcome] = self.counts.get(record.outcome, 0) + 1
        if not math.isnan(record.latency):
            self.latencies.append(record.latency * 1000)
        self.retried += record.retried
        self.waiting[record.index] = record
        while self.next in self.waiting:
            self._line(self.waiting.pop(self.next))
            self.next += 1

    def _line(self, record: RequestRecord) -> None:
        status = record.status if record.status is not None else "-"
        line = f"{record.index + 1} {record.outcome} {status} {record.latency * 1000:.1f} ms"
        if record.error:
            line += f" ({record.error})"
        if record.retried:
            line += f" ({_RETRIED})"
        self.out.write(line + "\n")


def _deliver(args: argparse.Namespace, event: str, bodies: Iterator[str], seed: int, out: TextIO) -> int:
    from mock_portal.loadgen import run_load
    from mock_portal.redact import redact_text

    lines = _InOrder(out)
    result = run_load(
        args.to,
        bodies,
        count=args.count,
        connections=min(args.concurrency, args.count),
        timeout=args.timeout,
        on_record=lines,
    )
    total = sum(lines.counts.values())
    summary = ", ".join(f"{name}={n}" for name, n in sorted(lines.counts.items()))
    latencies = sorted(lines.latencies)
    timing = (
        f"latency median {statistics.median(latencies):.1f} ms, max {latencies[-1]:.1f} ms"
        if latencies
        else "no latency measured"
    )
    retried = f"; {lines.retried} {_RETRIED}" if lines.retried else ""
    out.write(
        f"summary: {total} {event} to {redact_text(args.to)}: {summary}; {timing}; seed {seed}{retried}\n"
    )
    return EXIT_OK if result.ok == total == args.count else EXIT_FAILURE
