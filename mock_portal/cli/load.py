"""``mock-portal load``: fire realistic events at a handler at a steady rate, on one machine.

    mock-portal load --to http://127.0.0.1:8080/ --rate 500 --duration 10

Bodies come from :class:`~mock_portal.events.EventStream` (seeded, so a run can be repeated byte for byte),
generated as they are sent; :mod:`mock_portal.loadgen` sends them over keep-alive connections (on uvloop when
the ``fast`` extra is installed). ``--rate`` sets when each request is due; its latency runs from that moment
(an open model: a handler that falls behind shows it in its latency, and a request still waiting for a free
connection a ``--timeout`` after it was due is counted as ``unsent``). On a terminal a progress line is
redrawn while it runs; then a summary (throughput, latency percentiles, statuses) is printed and a latency
histogram is written as a PNG. Exit code 0 when every request got a 2xx, 1 when some did not, 2 for bad
arguments. For load beyond one machine, use the Locust user class in :mod:`mock_portal.locust` (README:
"Scale-out").
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

_DEFAULT_PNG = "load-latency.png"


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``load`` options."""
    parser.add_argument("--to", required=True, metavar="URL", help="the handler's http:// or https:// URL")
    parser.add_argument(
        "--rate", type=_positive(float), metavar="R", help="requests per second (default: max)"
    )
    parser.add_argument(
        "--duration", type=_positive(float), metavar="D", help="seconds (10 unless --count is given)"
    )
    parser.add_argument("--count", type=_positive(int), metavar="N", help="stop after N requests")
    parser.add_argument("--connections", type=_positive(int), default=16, help="keep-alive connections (16)")
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )
    parser.add_argument("--event", default="ONSESSIONSTART", help="event to send (ONSESSIONSTART)")
    parser.add_argument("--shape", help="event shape (default: the newest)")
    parser.add_argument("--auth", choices=("user", "system"), help="auth block mode (default: the usual)")
    parser.add_argument("--seed", default="0", help="seed of the event stream (0)")
    parser.add_argument("--application-token", help="send this application_token (the handler's)")
    parser.add_argument("--member-id", help="send this member_id")
    parser.add_argument("--client-endpoint", help="send this client_endpoint (where the handler calls REST)")
    parser.add_argument("--timeout", type=_positive(float), default=10.0, help="seconds per request (10)")
    parser.add_argument("--histogram", default=_DEFAULT_PNG, metavar="PNG", help=f"PNG path ({_DEFAULT_PNG})")
    parser.add_argument("--no-histogram", action="store_true", help="do not write the PNG")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _bodies(args: argparse.Namespace) -> object:
    from mock_portal.events import EventStream

    context = {
        key: value
        for key, value in (
            ("application_token", args.application_token),
            ("member_id", args.member_id),
            ("client_endpoint", args.client_endpoint),
        )
        if value
    }
    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    stream = EventStream(args.event, shape=args.shape, auth=args.auth, seed=seed, context=context or None)
    return stream.bodies()


def write_histogram(latencies: list[float], path: Path, title: str) -> None:
    """Write a latency histogram (milliseconds, log-scaled counts, p50/p90/p99 marked) as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the histogram needs matplotlib: pip install 'b24-contract[load]'") from None
    millis = sorted(x * 1000 for x in latencies)
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        if millis:
            axes.hist(millis, bins=min(80, max(10, len(millis) // 20)), color="#4878a8", edgecolor="white")
            axes.set_yscale("log")
            for q, style in ((50, "-"), (90, "--"), (99, ":")):
                value = millis[min(len(millis) - 1, max(0, math.ceil(q / 100 * len(millis)) - 1))]
                axes.axvline(value, color="#c0392b", linestyle=style, label=f"p{q} {value:.2f} ms")
            axes.legend()
        else:
            axes.text(0.5, 0.5, "no responses", ha="center", va="center", transform=axes.transAxes)
        axes.set_xlabel("latency (ms), intended start to last response byte")
        axes.set_ylabel("requests (log scale)")
        axes.set_title(title, fontsize=10)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the load, print the summary, write the histogram."""
    from mock_portal._extras import require
    from mock_portal.loadgen import Progress, run_load

    if not args.no_histogram:  # before the load, not after it: a missing extra must not cost a whole run
        require("load", "matplotlib", what="the latency histogram", otherwise="or pass --no-histogram")
    target = redact_text(args.to)
    bodies = _bodies(args)
    on_tty = out.isatty()
    width = [0]
    duration = args.duration if args.duration is not None or args.count is not None else 10.0
    planned = f" / {duration:g}s" if duration is not None else ""

    def show(progress: Progress) -> None:
        line = (
            f"{progress.elapsed:6.1f}s{planned}  sent {progress.sent}  ok {progress.ok}"
            f"  failed {progress.failed}"
        )
        out.write("\r" + line.ljust(width[0]))
        width[0] = len(line)
        out.flush()

    result = run_load(
        args.to,
        bodies,  # type: ignore[arg-type]
        event_loop=args.loop,
        rate=args.rate,
        duration=duration,
        count=None if args.count is None else int(args.count),
        connections=int(args.connections),
        timeout=args.timeout,
        progress=show if on_tty else None,
    )
    if on_tty:
        out.write("\n")
    summary = result.summary()
    summary["url"] = target
    png: Path | None = None
    if not args.no_histogram:
        png = Path(args.histogram)
        rate = f"{args.rate:g}/s target" if args.rate else "max rate"
        title = f"{target}: {result.ok + result.failed} requests in {result.elapsed:.1f} s ({rate})"
        write_histogram(result.latencies, png, title)
        summary["histogram"] = str(png)
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        statuses = ", ".join(f"{k}: {v}" for k, v in result.statuses.items()) or "none"
        rate = f" at {args.rate:g}/s" if args.rate else ""
        if result.unsent:
            rate += f" ({result.unsent} never sent: no connection was free within the timeout)"
        out.write(
            f"{target}: {result.sent} sent, {result.ok} ok, {result.failed} failed"
            f" in {result.elapsed:.2f} s{rate}\n"
            f"throughput {result.throughput:.1f} req/s ({result.event_loop})\n"
            f"latency from each request's intended start: p50 {summary['p50_ms']} ms,"
            f" p90 {summary['p90_ms']} ms, p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms\n"
            f"statuses: {statuses}\n"
        )
        if result.retried:
            out.write(
                f"{result.retried} sent again on a new connection: the handler's server closed a kept-alive"
                " one before answering (not counted as a failure)\n"
            )
        if png is not None:
            out.write(f"histogram: {png}\n")
    if result.sent == 0:
        err.write("mock-portal: error: no request was sent\n")
        return 1
    return 0 if result.failed == 0 else 1
