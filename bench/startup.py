"""What the installed pytest plugin adds to every pytest run of every user who installs the package.

The plugin is registered as a ``pytest11`` entry point, so pytest imports it in every run, whether or not the
run checks a handler. Two figures, each beside its baseline from the same interleaved rounds:

- **import**: ``import contract_tests.plugin`` in a fresh interpreter after ``import pytest`` (pytest is
  loaded first in a real run), as CPU time (what the import costs, however busy the machine is; the wall
  time is beside it); baseline: ``import pytest`` itself, timed the same way in the same interpreters;
- **whole run**: ``python -m pytest -q`` on a folder with one trivial test, with the plugin (as installed) and
  with ``-p no:b24_contract``, as the CPU time of the whole process: a cross-check without a target (the
  spread of the other installed plugins' start-up is wider than the plugin's import).

Bytecode is written and reused (as an installed package has it; one untimed warm-up run first), so the
figures are what a user's run costs, not a compile of the sources.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.core import Row, Stat, interleave, per_round, register

IMPORT_TARGET_MS = 10.0
"""Target: the plugin's own modules import in at most this (they took about 3.4 ms before the clause registry
was imported eagerly; 10 ms leaves room for a loaded machine)."""


def env() -> dict[str, str]:
    """The environment of a user's run: bytecode written and reused."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


_PROBE = """
import time
c, w = time.process_time(), time.perf_counter()
import pytest
c1, w1 = time.process_time(), time.perf_counter()
import contract_tests.plugin
c2, w2 = time.process_time(), time.perf_counter()
print(c1 - c, c2 - c1, w1 - w, w2 - w1)
"""


def _probe() -> tuple[float, float, float, float]:
    """CPU and wall milliseconds of ``import pytest`` and then of ``import contract_tests.plugin``."""
    command = [sys.executable, "-c", _PROBE]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env())
    cpu_pytest, cpu_plugin, wall_pytest, wall_plugin = (float(x) * 1000 for x in done.stdout.split())
    return cpu_pytest, cpu_plugin, wall_pytest, wall_plugin


def _whole(command: Sequence[str], cwd: Path) -> float:
    """CPU milliseconds (user + system) of the whole process."""
    quiet = subprocess.DEVNULL
    child = subprocess.Popen(command, cwd=cwd, env=env(), stdout=quiet, stderr=quiet)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    return (usage.ru_utime + usage.ru_stime) * 1000


@register("startup", help="what the installed, unused pytest plugin adds to pytest's start-up")
def run_startup(quick: bool) -> list[Row]:
    rounds = 5 if quick else 15
    _probe()  # warm-up: writes the bytecode
    probes = [_probe() for _ in range(rounds)]
    cpu_pytest, cpu_plugin, wall_pytest, wall_plugin = ([p[i] for p in probes] for i in range(4))
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
    plugin = Stat.of(cpu_plugin)
    ratio = per_round(runs["with"], runs["without"])
    added = [a - b for a, b in zip(runs["with"], runs["without"], strict=True)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return [
        Row(
            "startup",
            "import contract_tests.plugin after pytest (the plugin every pytest run loads), CPU time",
            plugin,
            "ms",
            higher_is_better=False,
            baselines={
                "import pytest, CPU time (ms)": Stat.of(cpu_pytest),
                "import contract_tests.plugin after pytest, wall time (ms)": Stat.of(wall_plugin),
                "import pytest, wall time (ms)": Stat.of(wall_pytest),
            },
            ratios={"plugin / pytest (CPU)": per_round(cpu_plugin, cpu_pytest)},
            target=f"<= {IMPORT_TARGET_MS:g} ms (median)",
            met=plugin.median <= IMPORT_TARGET_MS,
            notes=f"{rounds} fresh interpreters, bytecode reused; load average {load:.1f}",
        ),
        Row(
            "startup",
            "pytest run of one trivial test with the installed plugin, CPU time of the process",
            Stat.of(runs["with"]),
            "ms",
            higher_is_better=False,
            baselines={
                "same run, -p no:b24_contract (ms)": Stat.of(runs["without"]),
                "difference (ms)": Stat.of(added),
            },
            ratios={"with / without": ratio},
            notes=f"a cross-check, no target: {rounds} interleaved rounds, median difference "
            f"{statistics.median(added):.1f} ms; the other installed plugins load in both, and their "
            "spread between runs is wider than what this plugin adds",
        ),
    ]
