"""The flip check: the whole contract, again and again, with every core kept busy; no verdict may change.

    python -m tests.support.flip                       # 10 runs of every handler, two busy-loop processes
    python -m tests.support.flip --runs 3 --only careful-stdlib,repeats-work
    python -m tests.support.flip --runs 3 --clause catches-up-offline  # one clause, where it applies

For each handler (the reference handlers, the correct handlers of other styles, and every broken handler) it
runs the whole contract ``--runs`` times in a row while ``--busy`` processes spin on the CPU, and fails
(exit 1) when any verdict differs between two runs, when a correct handler fails a clause it does not really
break, or when a broken handler does not fail its own clause. It prints one line per handler and the verdicts
that flipped. Timings are printed for information only.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from contract_tests.engine import ContractConfig, ContractRun
from examples.broken import FLAWS, ContractHandler
from tests.conftest import REPO_ROOT
from tests.support.contract import serve_wsgi
from tests.support.handlers import asgi_slow_worker, careful_stdlib, flask_style

Serve = Callable[[], contextlib.AbstractContextManager[Any]]

# handlers that do not declare offline use: clause 11 does not apply to them (a steady skip)
_NO_OFFLINE = frozenset({"catches-up-offline"})

# with this flaw the handler's calls never reach the event's own portal: the clauses that compare an absence
# with a valid event's calls are inconclusive (steadily so)
_MISROUTED_UNSURE = {
    "forged-token-no-side-effect",
    "unknown-portal-no-side-effect",
    "ignores-repeated-delivery",
}

_FOUR_EVENTS = ("ONSESSIONSTART", "ONSESSIONFINISH", "ONOPENLINEMESSAGEADD", "ONIMCONNECTORMESSAGEADD")
_IGNORED_EVENTS_UNSURE = frozenset(
    f"{clause}[{event}]" for clause in _MISROUTED_UNSURE for event in _FOUR_EVENTS[1:3]
)


@dataclass(frozen=True)
class Subject:
    """A handler to check: how to serve it, what it must fail (exactly), what may be inconclusive."""

    name: str
    serve: Serve
    fails: frozenset[str] = frozenset()
    unsure: frozenset[str] = frozenset()
    options: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _reference_http() -> Iterator[str]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


@contextlib.contextmanager
def _reference_inprocess() -> Iterator[Any]:
    from examples.python_handler import HandlerApp, HandlerConfig

    app = HandlerApp(HandlerConfig()).start()
    try:
        yield app
    finally:
        app.close()


@contextlib.contextmanager
def _node() -> Iterator[str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = REPO_ROOT / "examples" / "node_handler" / "handler.js"
    process = subprocess.Popen(
        ["node", str(script), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "listening on ..." once it accepts connections
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def _flask_style() -> Iterator[str]:
    app = flask_style.FlaskStyleApp()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


def _broken(flaw: str | None) -> Serve:
    @contextlib.contextmanager
    def serve() -> Iterator[str]:
        handler = ContractHandler(flaw, hang=3.0)
        try:
            with serve_wsgi(handler) as url:
                yield url
        finally:
            handler.close()

    return serve


def subjects() -> list[Subject]:
    """Every handler the check runs: correct ones first, then one per broken flaw."""
    out = [
        Subject("reference-python-http", _reference_http, unsure=_NO_OFFLINE),
        Subject("reference-python-wsgi", _reference_inprocess, unsure=_NO_OFFLINE),
        # four declared events: two it works on, two it answers 200 and ignores (no call to compare with)
        Subject(
            "reference-python-4-events",
            _reference_http,
            unsure=_NO_OFFLINE | _IGNORED_EVENTS_UNSURE,
            options={"events": _FOUR_EVENTS},
        ),
        Subject("careful-stdlib", careful_stdlib.serve, unsure=_NO_OFFLINE),
        Subject("flask-style", _flask_style, frozenset({"ignores-repeated-delivery"}), _NO_OFFLINE),
        Subject("asgi-slow-worker", lambda: asgi_slow_worker.serve(delay=0.05), unsure=_NO_OFFLINE),
        # the compact honest handler the broken ones are made from: it uses offline events too
        Subject("contract-handler", _broken(None), options={"offline": True}),
    ]
    if shutil.which("node"):
        out.insert(2, Subject("reference-node", _node, unsure=_NO_OFFLINE))
    for flaw, clause_id in sorted(FLAWS.items()):
        options: dict[str, Any] = {"offline": True}  # each catches up honestly but never-clears-offline
        unsure: frozenset[str] = frozenset()
        if flaw in ("hangs-on-repeats", "calls-first-install-endpoint"):
            options["timeout"] = 2.0
        if flaw == "calls-first-install-endpoint":
            unsure = frozenset(_MISROUTED_UNSURE)
        if clause_id == "survives-fuzzing":
            options["fuzz"] = 200  # a latent flaw: only generated events trip it, and 200 always do
        out.append(Subject(flaw, _broken(flaw), frozenset({clause_id}), unsure, options))
    return out


@contextlib.contextmanager
def busy(processes: int) -> Iterator[None]:
    """Keep ``processes`` CPU-bound processes spinning for the duration (the machine fully loaded)."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.terminate()
        for spinner in spinners:
            spinner.wait(10)


@dataclass
class Result:
    """What the runs of one subject gave."""

    subject: Subject
    verdicts: list[dict[str, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def flips(self) -> dict[str, list[str]]:
        """Verdict id -> the outcome of each run, for every verdict that was not the same in all runs."""
        ids = self.verdicts[0].keys() if self.verdicts else []
        return {
            vid: [run.get(vid, "?") for run in self.verdicts]
            for vid in ids
            if len({run.get(vid) for run in self.verdicts}) > 1
        }

    def wrong(self) -> list[str]:
        """Verdicts that are not what this subject must give (in any run; of the clauses judged)."""
        problems = []
        for number, run in enumerate(self.verdicts, 1):
            failed = {vid for vid, outcome in run.items() if outcome == "fail"}
            unsure = {vid for vid, outcome in run.items() if outcome in ("inconclusive", "skip")}
            expected = {vid for vid in self.subject.fails if vid in run}
            if failed != expected:
                problems.append(f"run {number}: failed {sorted(failed)}, expected {sorted(expected)}")
            if not unsure <= self.subject.unsure:
                problems.append(f"run {number}: inconclusive {sorted(unsure - self.subject.unsure)}")
        return problems


def check(subject: Subject, runs: int, clauses: Sequence[str] | None = None) -> Result:
    """Run the whole contract (or only ``clauses``) ``runs`` times against ``subject``."""
    result = Result(subject)
    for _ in range(runs):
        with subject.serve() as handler:
            started = time.perf_counter()
            with ContractRun(ContractConfig(handler, strict=True, **subject.options)) as run:
                report = run.run(clauses)
            result.seconds.append(time.perf_counter() - started)
        result.verdicts.append({v.id: v.outcome for v in report.verdicts})
    return result


def flip_check(
    runs: int,
    processes: int,
    only: Sequence[str] | None = None,
    out: Any = sys.stdout,
    clauses: Sequence[str] | None = None,
) -> list[Result]:
    """Run the check (of ``clauses`` only, if given: on the handlers they apply to); print one line per
    subject; return the results."""
    chosen = [s for s in subjects() if not only or s.name in only]
    if clauses:
        from contract_tests.clauses import REGISTRY

        wanted = {REGISTRY.get(c).id for c in clauses}
        # where the clauses may be skipped or inconclusive anyway, their verdicts say nothing about flips
        chosen = [s for s in chosen if not wanted <= s.unsure]
    unknown = set(only or ()) - {s.name for s in subjects()}
    if unknown:
        raise SystemExit(f"unknown handler(s): {', '.join(sorted(unknown))}")
    results = []
    with busy(processes):
        for subject in chosen:
            result = check(subject, runs, clauses)
            results.append(result)
            status = "STEADY" if not result.flips() and not result.wrong() else "FLIPPED"
            seconds = sorted(result.seconds)
            out.write(
                f"{status:<8} {subject.name:<30} {runs} runs, median {seconds[len(seconds) // 2]:.1f} s, "
                f"max {seconds[-1]:.1f} s\n"
            )
            for vid, outcomes in result.flips().items():
                out.write(f"         {vid}: {' '.join(outcomes)}\n")
            for problem in result.wrong():
                out.write(f"         {problem}\n")
            out.flush()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.flip", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per handler (10)")
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes (2: both cores)")
    parser.add_argument("--only", help="comma-separated handler names")
    parser.add_argument("--clause", help="comma-separated clause ids: judge only these (default: all)")
    args = parser.parse_args(argv)
    logging.getLogger("b24_handler").setLevel(logging.ERROR)
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    clauses = [c.strip() for c in args.clause.split(",") if c.strip()] if args.clause else None
    results = flip_check(args.runs, args.busy, only, clauses=clauses)
    bad = [r for r in results if r.flips() or r.wrong()]
    print(f"\n{len(results) - len(bad)} of {len(results)} handlers steady over {args.runs} runs")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
