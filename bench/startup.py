"""What the installed pytest plugin adds to every pytest run of every user who installs the package.

The plugin is registered as a ``pytest11`` entry point, so pytest imports it in every run, whether or not the
run checks a handler. Two figures, each beside its baseline from the same interleaved rounds:

- **import**: ``import contract_tests.plugin`` timed in a fresh interpreter after ``import pytest`` (pytest
  is loaded first in a real run); baseline: the same probe timing ``import json`` (a stdlib module of similar
  size), which shows what an import costs on this machine right now;
- **whole run**: ``python -m pytest -q`` on a folder with one trivial test, with the plugin (as installed) and
  with ``-p no:b24_contract``; their ratio is what a user's run pays.

Bytecode is written and reused (as an installed package has it; one untimed warm-up run first), so the
figures are what a user's run costs, not a compile of the sources.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.core import Row, Stat, interleave, per_round, register

IMPORT_TARGET_MS = 10.0
"""Target: the plugin's own modules import in at most this (they took about 3.4 ms before the clause registry
was imported eagerly; 10 ms leaves room for a loaded machine)."""
RUN_RATIO_TARGET = 1.05
"""Target: a pytest run with the plugin takes at most 5% longer than one without it."""


def env() -> dict[str, str]:
    """The environment of a user's run: bytecode written and reused."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _probe(module: str) -> float:
    code = f"import pytest, time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env())
    return float(done.stdout) * 1000


def _whole(command: Sequence[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env(), capture_output=True, check=True)
    return (time.perf_counter() - started) * 1000


@register("startup", help="what the installed, unused pytest plugin adds to pytest's start-up")
def run_startup(quick: bool) -> list[Row]:
    rounds = 5 if quick else 15
    probes = {"plugin": lambda: _probe("contract_tests.plugin"), "json": lambda: _probe("json")}
    interleave(probes, 1)  # warm-up: writes the bytecode
    imports = interleave(probes, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
        sides = {
            "with": lambda: _whole(base, folder),
            "without": lambda: _whole([*base, "-p", "no:b24_contract"], folder),
        }
        interleave(sides, 1)
        runs = interleave(sides, rounds)
    plugin = Stat.of(imports["plugin"])
    ratio = per_round(runs["with"], runs["without"])
    added = [a - b for a, b in zip(runs["with"], runs["without"], strict=True)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [
        Row(
            "startup",
            "import contract_tests.plugin after pytest (the plugin every pytest run loads)",
            plugin,
            "ms",
            higher_is_better=False,
            baselines={"import json after pytest (ms)": Stat.of(imports["json"])},
            ratios={"plugin / json": per_round(imports["plugin"], imports["json"])},
            target=f"<= {IMPORT_TARGET_MS:g} ms (median)",
            met=plugin.median <= IMPORT_TARGET_MS,
            notes=f"{rounds} interleaved rounds, fresh interpreters, bytecode reused; load {load:.1f}",
        ),
        Row(
            "startup",
            "pytest run of one trivial test with the installed plugin",
            Stat.of(runs["with"]),
            "ms",
            higher_is_better=False,
            baselines={
                "same run, -p no:b24_contract (ms)": Stat.of(runs["without"]),
                "difference (ms)": Stat.of(added),
            },
            ratios={"with / without": ratio},
            target=f"ratio <= {RUN_RATIO_TARGET:g} (median)",
            met=ratio.median <= RUN_RATIO_TARGET,
            notes=f"{rounds} interleaved rounds; median difference {statistics.median(added):.1f} ms",
        ),
    ]
