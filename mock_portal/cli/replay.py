"""``mock-portal replay PATH... --to URL``: re-send recorded or captured events to a handler.

A mock portal starts on 127.0.0.1 and installs the handler (ONAPPINSTALL to ``--install-url``, default the
``--to`` URL; or ``--application-token`` for a handler configured with its token), then each event is
re-stamped as the portal's own (fresh ``ts``, the portal's domain, member_id, endpoints and tokens) and
POSTed to ``--to``, one line per delivery; the REST calls the handler made back are summed up at the end.
``--as-contract`` runs the contract's generic clauses for the events the recording holds instead.

Exit codes: 0 every delivery answered 2xx (every MUST clause passed with ``--as-contract``), 1 otherwise,
2 a usage error (nothing to replay, an unreadable file, a bad option, the handler refused ONAPPINSTALL).
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from mock_portal.cli import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from mock_portal.replay import RecordedEvent


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal replay``."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a recording (.jsonl), a NAME.wire.txt or NAME.json, or a folder",
    )
    parser.add_argument("--to", required=True, metavar="URL", help="the handler URL to POST every event to")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--install-url", metavar="URL", help="where ONAPPINSTALL goes first (default: --to)")
    who.add_argument(
        "--application-token", metavar="T", help="the token the handler is configured with (no ONAPPINSTALL)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="per-delivery timeout (default: 10)"
    )
    parser.add_argument(
        "--as-contract",
        action="store_true",
        help="run the contract's generic clauses for the recorded events instead of replaying them",
    )


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Load, install, replay; return the exit code."""
    from mock_portal.errors import UsageError
    from mock_portal.redact import redact_text
    from mock_portal.replay import Replayer, load_events

    events, skipped = load_events(*args.paths)
    for reason in skipped:
        out.write(f"skipped {reason}\n")
    if not events:
        raise UsageError(f"no event to replay in {', '.join(args.paths)}")
    if args.as_contract:
        return _as_contract(args, events, out)
    with Replayer(
        args.to, install_url=args.install_url, application_token=args.application_token, timeout=args.timeout
    ) as replayer:
        for attempt in replayer.install_attempts:
            if not attempt.ok:
                raise UsageError(f"the handler did not accept ONAPPINSTALL: {attempt}")
            out.write(f"installed: ONAPPINSTALL {attempt.outcome} {attempt.status}\n")
        results = replayer.replay(events)
        for index, result in enumerate(results, 1):
            attempt = result.attempt
            status = attempt.status if attempt.status is not None else "-"
            line = f"{index} {result.event.event} {result.event.source} {attempt.outcome} {status}"
            if result.event.recorded_status is not None and result.event.recorded_status != attempt.status:
                line += f" (recorded {result.event.recorded_status})"
            if attempt.error:
                line += f" ({redact_text(attempt.error)})"
            out.write(line + "\n")
        calls = Counter(call.method for call in replayer.rest_calls())
    outcomes = Counter(r.attempt.outcome for r in results)
    summary = ", ".join(f"{name}={n}" for name, n in sorted(outcomes.items()))
    made = ", ".join(f"{method} x{n}" for method, n in sorted(calls.items())) or "none"
    out.write(f"summary: {len(results)} replayed to {redact_text(args.to)}: {summary}; rest calls: {made}\n")
    return EXIT_OK if outcomes.get("ok", 0) == len(results) else EXIT_FAILURE


def _as_contract(args: argparse.Namespace, events: list[RecordedEvent], out: TextIO) -> int:
    from contract_tests.recorded import contract_over_recorded

    result = contract_over_recorded(
        events,
        args.to,
        install_url=args.install_url,
        application_token=args.application_token,
        timeout=args.timeout,
    )
    for name in result.uncovered:
        out.write(
            f"not covered: {name} (the contract has no clauses for it; replay it without --as-contract)\n"
        )
    out.write(f"generic clauses for: {', '.join(result.covered)}\n")
    out.write(result.report.table() + "\n")
    return EXIT_OK if result.report.ok else EXIT_FAILURE
