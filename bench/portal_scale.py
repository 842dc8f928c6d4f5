"""What one more session costs a portal that already holds many: the portal's cost per operation must not grow
with its size.

One portal per size (by default 1,000, 10,000 and 100,000 sessions) is filled through the public
``Portal.start_session``, untimed; then windows of ``window`` sessions are timed on each portal in turn,
``repeats`` rounds, interleaved (the order rotates every round), so the machine's load falls on every size
alike. Each size reports the cost per session, min and median of its windows, wall clock and CPU time (the
whole process's, delivery thread included), beside the smallest size's from the same rounds.

Two portals are measured:

- ``bare``: no app bound, so the figure is the portal's own bookkeeping (chat, session, ids, planning);
- ``bound``: one installed app bound to ONSESSIONSTART, delivered in process to an ``async`` handler, so each
  session also issues a token, builds the event, delivers it and records the attempt.

    python -m bench.portal_scale                  # 1k, 10k, 100k; a few minutes on a 2-core machine
    python -m bench.portal_scale --sizes 1000,10000 --repeats 3

Nothing here is a test: figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.core import Row, from_plain, register

SIZES = (1_000, 10_000, 100_000)
VARIANTS = ("bare", "bound")
TARGET_RATIO = 1.5
"""The largest portal's session may cost at most this much times the smallest's."""

_HANDLER_URL = "https://handler.bench.example.com/b24"


@dataclass(frozen=True)
class Checkpoint:
    """The timed windows at one portal size: microseconds per session (wall clock, and CPU time of the whole
    process, delivery thread included), one figure per window."""

    variant: str
    size: int
    per_session_us: tuple[float, ...]
    cpu_per_session_us: tuple[float, ...]

    @property
    def min_us(self) -> float:
        return min(self.per_session_us)

    @property
    def median_us(self) -> float:
        return statistics.median(self.per_session_us)

    @property
    def cpu_min_us(self) -> float:
        return min(self.cpu_per_session_us)

    @property
    def cpu_median_us(self) -> float:
        return statistics.median(self.cpu_per_session_us)


def _portal(variant: str) -> Any:
    from mock_portal.delivery import CallableTarget
    from mock_portal.portal import Clock, Portal

    portal = Portal("scale.bench.example.com", seed=1, clock=Clock(start=1_750_000_000.0))
    if variant == "bound":

        async def handler(body: bytes, headers: Mapping[str, str], url: str) -> int:
            return 200

        portal.install_app(None, handlers={"ONSESSIONSTART": _HANDLER_URL})
        portal.route(_HANDLER_URL, CallableTarget(handler))
    elif variant != "bare":
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    return portal


def measure(
    variant: str, sizes: Sequence[int] = SIZES, *, repeats: int = 5, window: int = 100
) -> list[Checkpoint]:
    """Fill one portal of ``variant`` per size, then time ``repeats`` interleaved rounds of windows."""
    ordered = sorted(set(sizes))
    portals = {size: _portal(variant) for size in ordered}
    wall: dict[int, list[float]] = {size: [] for size in ordered}
    cpu: dict[int, list[float]] = {size: [] for size in ordered}
    try:
        for size, portal in portals.items():
            for _ in range(size):
                portal.start_session()
        for round_ in range(repeats):
            shift = round_ % len(ordered)
            for size in ordered[shift:] + ordered[:shift]:
                portal = portals[size]
                started, cpu_started = time.perf_counter(), time.process_time()
                for _ in range(window):
                    portal.start_session()
                cpu[size].append((time.process_time() - cpu_started) / window * 1e6)
                wall[size].append((time.perf_counter() - started) / window * 1e6)
    finally:
        for portal in portals.values():
            portal.close()
    return [Checkpoint(variant, size, tuple(wall[size]), tuple(cpu[size])) for size in ordered]


def rows_for(checkpoints: Sequence[Checkpoint]) -> list[Row]:
    """Benchmark rows: one per checkpoint, each with the first checkpoint as its baseline."""
    if not checkpoints:
        return []
    base = checkpoints[0]
    largest = max(c.size for c in checkpoints)
    rows = []
    for point in checkpoints:
        min_ratio = point.min_us / base.min_us
        median_ratio = point.median_us / base.median_us
        is_target = point.size == largest and point is not base
        rows.append(
            from_plain(
                dict(
                    group="portal",
                    name=f"start_session at {point.size:,} sessions ({point.variant})",
                    value=point.median_us,
                    unit="us/session (median)",
                    higher_is_better=False,
                    baselines={
                        f"min at {point.size:,}": point.min_us,
                        f"median at {base.size:,}": base.median_us,
                        f"min at {base.size:,}": base.min_us,
                        f"CPU min at {point.size:,}": point.cpu_min_us,
                        f"CPU median at {point.size:,}": point.cpu_median_us,
                    },
                    ratios={
                        f"min vs {base.size:,}": min_ratio,
                        f"median vs {base.size:,}": median_ratio,
                        f"CPU min vs {base.size:,}": point.cpu_min_us / base.cpu_min_us,
                        f"CPU median vs {base.size:,}": point.cpu_median_us / base.cpu_median_us,
                    },
                    target=f"min <= {TARGET_RATIO}x the {base.size:,}th" if is_target else "",
                    met=(min_ratio <= TARGET_RATIO) if is_target else None,
                    notes=f"{len(point.per_session_us)} interleaved windows; verdict on the wall-clock min",
                )
            )
        )
    return rows


def bench_portal_scale(
    sizes: Sequence[int] = SIZES,
    *,
    repeats: int = 5,
    window: int = 100,
    variants: Sequence[str] = VARIANTS,
) -> list[Row]:
    """The benchmark rows for every variant (what ``python -m bench`` prints)."""
    rows: list[Row] = []
    for variant in variants:
        rows.extend(rows_for(measure(variant, sizes, repeats=repeats, window=window)))
    return rows


@register("portal", help="the cost of a portal session at 1k, 10k and 100k sessions, side by side")
def run(quick: bool) -> list[Row]:
    if quick:
        return bench_portal_scale((1_000, 10_000), repeats=2, window=50, variants=("bare",))
    return bench_portal_scale()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.portal_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="comma-separated sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed windows per size (default 5)")
    parser.add_argument("--window", type=int, default=100, help="sessions per window (default 100)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="bare, bound or both")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not sizes or min(sizes) < 1 or args.repeats < 1 or args.window < 1:
        parser.error("sizes, --repeats and --window must be positive")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)})")
    from bench.run import format_table

    rows = bench_portal_scale(sizes, repeats=args.repeats, window=args.window, variants=variants)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
