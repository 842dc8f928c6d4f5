"""``mock-portal emit``: build events and POST them to a handler, as a portal's queue server would.

One line per delivery (number, outcome, status, latency) and a summary. ``--print`` writes the form bodies to
stdout, one per line, and sends nothing. Events are seeded: ``--seed N`` builds event ``i`` from ``N + i``,
so a run can be repeated byte for byte; without ``--seed`` a random base seed is drawn and printed.

Exit codes: 0 every delivery answered 2xx (or ``--print``), 1 at least one did not, 2 a usage error.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
from typing import TextIO

from mock_portal.cli import EXIT_FAILURE, EXIT_OK

_MAX_COUNT = 1_000_000
_MAX_CONCURRENCY = 1000


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal emit``."""
    parser.add_argument("event", metavar="EVENT", help="event name, e.g. ONSESSIONSTART (any case)")
    parser.add_argument("--to", metavar="URL", help="the handler URL to POST to (required unless --print)")
    parser.add_argument("--count", type=int, default=1, metavar="N", help="how many events (default: 1)")
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="C", help="deliveries in flight at once (default: 1)"
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
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="base seed (event i uses N + i)")
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
    """Build the events, then print or deliver them; return the exit code."""
    from mock_portal.errors import UsageError
    from mock_portal.events import build_event

    if not 1 <= args.count <= _MAX_COUNT:
        raise UsageError(f"--count must be between 1 and {_MAX_COUNT}, got {args.count}")
    if not 1 <= args.concurrency <= _MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {_MAX_CONCURRENCY}, got {args.concurrency}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if not args.print_only and not args.to:
        raise UsageError("give --to URL (where to POST the events) or --print")
    base_seed = args.seed if args.seed is not None else secrets.randbits(31)
    bodies = [
        build_event(
            args.event, shape=args.shape, auth=args.auth, seed=base_seed + index, overrides=args.overrides
        ).body("form")
        for index in range(args.count)
    ]
    if args.print_only:
        for body in bodies:
            out.write(body + "\n")
        return EXIT_OK
    return _deliver(args, bodies, base_seed, out)


def _deliver(args: argparse.Namespace, bodies: list[str], base_seed: int, out: TextIO) -> int:
    from mock_portal.delivery import Deliverer, Delivery, as_target
    from mock_portal.redact import redact_text

    target = as_target(args.to, where="--to")
    with Deliverer(timeout=args.timeout) as deliverer:
        attempts = deliverer.deliver_many(
            [Delivery(target, body) for body in bodies], concurrency=args.concurrency
        )
    for index, attempt in enumerate(attempts, 1):
        status = attempt.status if attempt.status is not None else "-"
        line = f"{index} {attempt.outcome} {status} {attempt.latency_ms:.1f} ms"
        if attempt.error:
            line += f" ({attempt.error})"
        out.write(line + "\n")
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.outcome] = counts.get(attempt.outcome, 0) + 1
    latencies = sorted(a.latency_ms for a in attempts)
    summary = ", ".join(f"{name}={n}" for name, n in sorted(counts.items()))
    out.write(
        f"summary: {len(attempts)} {attempts[0].event if attempts else args.event} to "
        f"{redact_text(args.to)}: {summary}; latency median {statistics.median(latencies):.1f} ms, "
        f"max {latencies[-1]:.1f} ms; seed {base_seed}\n"
    )
    return EXIT_OK if counts.get("ok", 0) == len(attempts) else EXIT_FAILURE
