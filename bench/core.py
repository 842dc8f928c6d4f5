"""The bench's small core: the registry of benchmarks, side-by-side measurement, rows and their statistics.

A benchmark is a function returning rows, registered under a group name in its own module::

    from bench.core import Row, Skip, register

    @register("validate", needs=("jsonschema_rs",), help="the documented validate path")
    def run(quick: bool) -> list[Row]: ...

and that module is listed once in ``bench.run.MODULES``. ``needs`` names importable modules or executables
(``exe:wrk``); when one is missing the group is reported as skipped, with the reason, instead of failing. A
benchmark may also raise :class:`Skip` itself.

Pairs are measured side by side: :func:`interleave` runs every side once per round, in a rotating order, for
several rounds, so load from elsewhere on the machine weighs on each side alike; each figure keeps every
round's value and is reported as min, median and max. Ratios are taken per round (the two sides of a ratio
ran back to back) and reported the same way; targets are judged on the median.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BENCHES", "Bench", "Row", "Skip", "Stat", "interleave", "one_core", "rate", "register"]


class Skip(Exception):
    """Raised by a benchmark that cannot run here; the message says why (and what to install)."""


@dataclass(frozen=True)
class Stat:
    """min, median and max of a figure over its rounds."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        return cls(min(values), statistics.median(values), max(values))

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "median": self.median, "max": self.max}


@dataclass
class Row:
    """One figure, the baselines measured beside it, their ratios, and the target with its verdict."""

    group: str
    name: str
    value: Stat
    unit: str
    higher_is_better: bool = True
    baselines: dict[str, Stat] = field(default_factory=dict)
    ratios: dict[str, Stat] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "value": self.value.as_dict(),
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "baselines": {k: v.as_dict() for k, v in self.baselines.items()},
            "ratios": {k: v.as_dict() for k, v in self.ratios.items()},
            "target": self.target,
            "met": self.met,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Bench:
    name: str
    run: Callable[[bool], list[Row]]
    needs: tuple[str, ...]
    help: str

    def missing(self) -> list[str]:
        """What this benchmark needs and cannot find here."""
        out = []
        for need in self.needs:
            if need.startswith("exe:"):
                if shutil.which(need[4:]) is None:
                    out.append(f"the {need[4:]} executable")
            elif importlib.util.find_spec(need) is None:
                out.append(f"the {need} module")
        return out


BENCHES: dict[str, Bench] = {}
"""Every registered benchmark, by group name, in registration order."""


def from_plain(row: Mapping[str, Any]) -> Row:
    """A :class:`Row` from a mapping whose figures are plain numbers (each becomes a one-point :class:`Stat`;
    such rows carry their min and median as separate baselines)."""

    def stat(value: float) -> Stat:
        return Stat(value, value, value)

    fields = dict(row)
    fields["value"] = stat(float(fields["value"]))
    for key in ("baselines", "ratios"):
        fields[key] = {name: stat(float(v)) for name, v in dict(fields.get(key, {})).items()}
    return Row(**fields)


def register(
    name: str, *, needs: Sequence[str] = (), help: str = ""
) -> Callable[[Callable[[bool], list[Row]]], Callable[[bool], list[Row]]]:
    """Register a benchmark group (a duplicate name is an error)."""

    def decorate(fn: Callable[[bool], list[Row]]) -> Callable[[bool], list[Row]]:
        if name in BENCHES:
            raise ValueError(f"benchmark group {name!r} is registered twice")
        BENCHES[name] = Bench(name, fn, tuple(needs), help)
        return fn

    return decorate


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Items per second of ``fn`` (which returns how many items it handled), run for at least ``seconds``."""
    done = 0
    started = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def interleave(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every side once per round (the order rotates each round) and keep each side's figure per round."""
    names = list(sides)
    out: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            out[name].append(sides[name]())
    return out


def per_round(numerator: Sequence[float], denominator: Sequence[float]) -> Stat:
    """The ratio of two interleaved figures, taken round by round."""
    return Stat.of([a / b for a, b in zip(numerator, denominator, strict=True)])


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """Pin this process to one CPU while the block runs (where the OS allows it); yields a note saying so."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity): single-threaded"
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}, single-threaded"
    finally:
        os.sched_setaffinity(0, before)
