"""Run the benchmarks, print one table (figures with min/median/max, baselines from the same run, ratios,
targets), write it as JSON.

    python -m bench                      # every group
    python -m bench validate control_api # only some groups
    python -m bench --quick              # fewer rounds and smaller data: a smoke run
    python -m bench --check              # exit 1 when a target is missed (2 when nothing could run)
    python -m bench --list               # the groups and what each needs

The table goes to stdout; the JSON to ``bench/results/<UTC time>.json`` and ``bench/results/latest.json``
(git-ignored). Nothing here is a test: figures are reported, and only ``--check`` turns a missed target into
an exit code. A group whose tools or modules are missing is skipped, and the table says what is missing.

Each benchmark is a small unit in its own module, registered with :func:`bench.core.register`; adding one
is one line in :data:`MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from bench.core import BENCHES, Row, Skip, Stat

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

MODULES: tuple[str, ...] = (
    "bench.validate",
    "bench.generate",
    "bench.control_api",
    "bench.emit",
    "bench.startup",
    "bench.contract",
    "bench.redact",
    "bench.portal_scale",
)
"""The benchmark modules, each registering its groups when imported (one line per module)."""


def load() -> None:
    """Import every benchmark module (registration happens on import)."""
    for name in MODULES:
        importlib.import_module(name)


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _stat(stat: Stat) -> str:
    if stat.min == stat.max:
        return _fmt(stat.median)
    return f"{_fmt(stat.median)} (min {_fmt(stat.min)}, max {_fmt(stat.max)})"


def format_table(rows: Sequence[Row], skipped: Sequence[tuple[str, str]] = ()) -> str:
    """The rows as plain text: figure (median, min, max), target and verdict, baselines, ratios, notes."""
    lines = []
    for row in rows:
        verdict = {True: "MET", False: "NOT MET", None: "-"}[row.met]
        lines.append(f"[{row.group}] {row.name}")
        lines.append(f"    {_stat(row.value)} {row.unit}    target: {row.target or '-'}    {verdict}")
        for name, value in row.baselines.items():
            lines.append(f"    baseline {name}: {_stat(value)}")
        for name, value in row.ratios.items():
            lines.append(f"    ratio {name}: {_stat(value)}")
        if row.notes:
            lines.append(f"    ({row.notes})")
    for group, reason in skipped:
        lines.append(f"[{group}] SKIPPED: {reason}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen groups (all by default), print the table, write the JSON; see the module docstring."""
    load()
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"groups to run: {', '.join(BENCHES)}")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller data (a smoke run)")
    parser.add_argument("--list", action="store_true", help="list the groups and what they need")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    if args.list:
        for bench in BENCHES.values():
            needs = f" (needs {', '.join(bench.needs)})" if bench.needs else ""
            print(f"{bench.name}: {bench.help}{needs}")
        return 0
    unknown = [g for g in args.groups if g not in BENCHES]
    if unknown:
        parser.error(f"unknown group {unknown[0]!r} (known: {', '.join(BENCHES)})")
    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    for group in args.groups or list(BENCHES):
        bench = BENCHES[group]
        missing = bench.missing()
        if missing:
            skipped.append((group, f"needs {', '.join(missing)}"))
            print(f"skipping {group}: needs {', '.join(missing)}", file=sys.stderr, flush=True)
            continue
        print(f"running {group}...", file=sys.stderr, flush=True)
        try:
            rows.extend(bench.run(args.quick))
        except Skip as exc:
            skipped.append((group, str(exc)))
    print(format_table(rows, skipped))
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        document = {
            "when": stamp,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "rows": [r.as_dict() for r in rows],
            "skipped": [{"group": g, "reason": r} for g, r in skipped],
        }
        text = json.dumps(document, indent=2, allow_nan=True)
        (RESULTS / f"{stamp}.json").write_text(text)
        (RESULTS / "latest.json").write_text(text)
        print(f"\nwritten: {RESULTS / 'latest.json'}", file=sys.stderr)
    if args.check:
        missed = [r for r in rows if r.met is False]
        for row in missed:
            print(f"target missed: [{row.group}] {row.name}: {row.target}", file=sys.stderr)
        if missed:
            return 1
        if not rows:
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
