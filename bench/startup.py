"""Start-up and whole-run costs: the pytest plugin's import, and ``mock-portal demo`` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.core import Row, Stat, register

HERE = Path(__file__).resolve().parent


def _timed_run(command: Sequence[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
    return (time.perf_counter() - started) * 1000


@register("startup", help="what the installed, unused pytest plugin adds to pytest's start-up")
def run_startup(quick: bool) -> list[Row]:
    rounds = 4 if quick else 10
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
        with_plugin, without = float("inf"), float("inf")
        # interleaved, so a burst of load from elsewhere hits both sides alike; the minimum of each is kept
        for _ in range(rounds):
            with_plugin = min(with_plugin, _timed_run(base, folder))
            without = min(without, _timed_run([*base, "-p", "no:b24_contract"], folder))
        # pytest is loaded first, as it is in a real run: the figure is what the plugin adds on top
        probe = (
            "import pytest, time; t = time.perf_counter(); import contract_tests.plugin; "
            "print(time.perf_counter() - t)"
        )
        imports = []
        for _ in range(rounds):
            done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
            imports.append(float(done.stdout) * 1000)
    added = with_plugin - without
    imported = min(imports)
    return [
        Row(
            "startup",
            "pytest start-up: what importing the installed, unused b24_contract plugin adds",
            Stat.of(imports),
            "ms",
            higher_is_better=False,
            baselines={
                "whole pytest run with the plugin (ms, best)": Stat.of([with_plugin]),
                "whole pytest run, -p no:b24_contract (ms, best)": Stat.of([without]),
                "difference of the whole runs (ms)": Stat.of([added]),
            },
            target="<= 50 ms",
            met=imported <= 50 and added <= 50,
            notes=(
                f"import timed after pytest is loaded, best of {rounds}; whole runs best of {rounds} "
                "interleaved, their difference is a cross-check and carries the machine's noise"
            ),
        )
    ]


@register("contract", help="mock-portal demo: the contract against the reference handler")
def run_contract(quick: bool) -> list[Row]:
    times = []
    codes = set()
    for _ in range(1 if quick else 3):
        started = time.perf_counter()
        command = [sys.executable, "-m", "mock_portal", "demo"]
        completed = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
        times.append(time.perf_counter() - started)
        codes.add(completed.returncode)
    best = min(times)
    return [
        Row(
            "contract",
            "contract run against the reference handler (mock-portal demo: start it, verify, stop it)",
            Stat.of(times),
            "s",
            higher_is_better=False,
            target="<= 5 s",
            met=codes == {0} and best <= 5,
            notes=f"wall time of the whole command, {len(times)} runs; exit codes {sorted(codes)}",
        )
    ]
