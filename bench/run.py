"""Run every benchmark, print one table (figure, baselines from the same run, ratios), write it as JSON.

    python -m bench                 # everything, about a minute on a 2-core machine
    python -m bench validate emit   # only some groups: validate, generate, emit, startup, contract, portal

The table goes to stdout; the JSON to ``bench/results/<UTC time>.json`` and ``bench/results/latest.json``
(git-ignored). Nothing here is a test: figures are reported, never asserted. Targets are printed beside the
figures so a run says at a glance what is met.

Single-core figures (validate, generate) run in this process, single-threaded, pinned to one CPU with
``os.sched_setaffinity`` where the OS allows it (the JSON records which CPUs). The emission benchmark runs the
handler in a child process (see ``bench/handler.py``) so the emitter and the handler do not share a core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GROUPS = ("validate", "generate", "emit", "startup", "contract", "portal")


@dataclass
class Row:
    """One measured figure, its unit, and how it compares to named baselines and to its target."""

    group: str
    name: str
    value: float
    unit: str
    higher_is_better: bool = True
    baselines: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    notes: str = ""


def _rate(fn: Callable[[], int], min_seconds: float = 1.0) -> float:
    """Items per second of ``fn`` (it returns how many items it handled): best of 3 runs of min_seconds."""
    best = 0.0
    for _ in range(3):
        done = 0
        started = time.perf_counter()
        while True:
            done += fn()
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        best = max(best, done / elapsed)
    return best


@contextlib.contextmanager
def _one_core() -> Iterator[str]:
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


# ------------------------------------------------------------------------------------------------ validate


def _naive_nested(body: str) -> dict[str, Any]:
    """The naive decoder: urllib's parse_qsl, then PHP brackets into nested dicts, 0..n-1 dicts into lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head, *rest = key.replace("]", "").split("[")
        parts = [head, *rest]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            items = {k: listify(v) for k, v in value.items()}
            if items and list(items) == [str(i) for i in range(len(items))]:
                return list(items.values())
            return items
        return value

    result: dict[str, Any] = listify(root)
    return result


def bench_validate() -> list[Row]:
    import jsonschema
    import jsonschema_rs

    from mock_portal import schemas
    from mock_portal.events import SHAPES, EventStream
    from mock_portal.fastpath import EventValidator, _port_schema
    from mock_portal.wire import decode

    bodies = [b for shape in SHAPES for b in EventStream(shape=shape, seed=f"bench-{shape}").bodies(2000)]
    bodies_bytes = [b.encode() for b in bodies]
    fast = EventValidator()
    reference_registry = schemas.registry()
    uri = schemas.schema_uri()
    naive_validator = jsonschema.Draft202012Validator(
        reference_registry.contents(uri), registry=reference_registry
    )
    rust_registry = jsonschema_rs.Registry(
        [(u, _port_schema(reference_registry.contents(u))) for u in reference_registry]
    )
    floor_validator = jsonschema_rs.validator_for(
        _port_schema(reference_registry.contents(uri)), registry=rust_registry
    )
    json_texts = [json.dumps(decode(b)) for b in bodies]

    # every path must agree on the verdicts before its speed means anything
    sample = bodies[:300]
    assert all(fast.is_valid_body(b) for b in sample)
    assert all(naive_validator.is_valid(_naive_nested(b)) for b in sample[:60])
    assert all(floor_validator.is_valid(json.loads(t)) for t in json_texts[:300])
    assert _naive_nested(bodies[0]) == decode(bodies[0])

    def fast_run() -> int:
        check = fast.is_valid_body
        for body in bodies_bytes:
            check(body)
        return len(bodies_bytes)

    naive_batch = bodies[:200]

    def naive_run() -> int:
        for body in naive_batch:
            naive_validator.is_valid(_naive_nested(body))
        return len(naive_batch)

    def floor_run() -> int:
        loads, check = json.loads, floor_validator.is_valid
        for text in json_texts:
            check(loads(text))
        return len(json_texts)

    def decode_run() -> int:
        for body in bodies_bytes:
            decode(body)
        return len(bodies_bytes)

    with _one_core() as pinning:
        fast_rate = floor_rate = decode_rate = 0.0
        # interleaved rounds, best of each: load from other processes then weighs on every path alike
        for _ in range(3):
            fast_rate = max(fast_rate, _rate(fast_run, 0.5))
            floor_rate = max(floor_rate, _rate(floor_run, 0.5))
            decode_rate = max(decode_rate, _rate(decode_run, 0.5))
        naive_rate = _rate(naive_run)
    vs_naive = fast_rate / naive_rate
    vs_floor = floor_rate / fast_rate
    return [
        Row(
            "validate",
            f"wire body -> decode -> validate (tolerant, shape any; backend {fast.backend})",
            fast_rate,
            "events/s",
            baselines={
                "naive parse_qsl + jsonschema": naive_rate,
                "floor json.loads + jsonschema_rs": floor_rate,
            },
            ratios={"x naive": vs_naive, "floor / fast": vs_floor},
            target=">= 60000/s, >= 15x naive, floor/fast <= 3",
            met=fast_rate >= 60_000 and vs_naive >= 15 and vs_floor <= 3,
            notes=f"{pinning}; {len(bodies)} bodies, the three OnSessionStart shapes",
        ),
        Row("validate", "of which: wire.decode alone", decode_rate, "events/s", notes=pinning),
    ]


# ------------------------------------------------------------------------------------------------ generate


def _naive_events(seed: int) -> Iterator[str]:
    """The naive builder: one Faker call per field, a dict per event, then the PHP encoder."""
    from faker import Faker

    from mock_portal.fakes import B24Provider
    from mock_portal.wire import encode

    fake = Faker("ru_RU")
    fake.add_provider(B24Provider)
    fake.seed_instance(seed)
    ts = 1_734_800_000
    while True:
        ts += fake.random_int(0, 3)
        domain = fake.b24_domain()
        chat_id = fake.b24_chat_id()
        user_id = fake.b24_user_id()
        payload = {
            "event": "ONSESSIONSTART",
            "event_handler_id": fake.random_int(1, 9999),
            "data": {
                "DATA": [
                    {
                        "connector": {
                            "connector_id": fake.b24_connector_id(),
                            "line_id": fake.b24_line_id(),
                            "chat_id": chat_id,
                            "user_id": user_id,
                        },
                        "session": {
                            "id": fake.b24_session_id(),
                            "closed": "N",
                            "parent_id": 0,
                            "close_term": fake.b24_close_term(),
                        },
                        "chat": {"id": chat_id},
                        "user": {"id": user_id},
                    }
                ]
            },
            "ts": ts,
            "auth": {
                "access_token": fake.b24_access_token(),
                "expires": ts + 3600,
                "expires_in": 3600,
                "scope": fake.b24_scope(),
                "domain": domain,
                "server_endpoint": fake.b24_server_endpoint(),
                "status": fake.b24_status(),
                "client_endpoint": fake.b24_client_endpoint(domain),
                "member_id": fake.b24_member_id(),
                "user_id": fake.random_int(1, 20000),
                "application_token": fake.b24_application_token(),
            },
        }
        yield encode(payload)


def bench_generate() -> list[Row]:
    import hashlib

    from mock_portal.events import EventStream
    from mock_portal.fastpath import EventValidator

    def fast_run() -> int:
        n = 20_000
        for _ in EventStream(seed=7).bodies(n):
            pass
        return n

    naive = _naive_events(7)

    def naive_run() -> int:
        for _ in range(500):
            next(naive)
        return 500

    with _one_core() as pinning:
        fast_rate = _rate(fast_run)
        naive_rate = _rate(naive_run)

    def digest(seed: int) -> str:
        h = hashlib.sha256()
        for body in EventStream(seed=seed).bodies(10_000):
            h.update(body.encode())
        return h.hexdigest()

    same_bytes = digest(7) == digest(7) != digest(8)
    validator = EventValidator()
    all_valid = all(validator.is_valid_body(b) for b in EventStream(seed=7).bodies(2000))
    ratio = fast_rate / naive_rate
    return [
        Row(
            "generate",
            "OnSessionStart generation + PHP form encoding (EventStream.bodies)",
            fast_rate,
            "events/s",
            baselines={"naive: one Faker call per field + wire.encode": naive_rate},
            ratios={"x naive": ratio},
            target=">= 100000/s, >= 10x naive, same seed same bytes",
            met=fast_rate >= 100_000 and ratio >= 10 and same_bytes and all_valid,
            notes=f"{pinning}; same seed -> same bytes: {same_bytes}; 2000 checked valid: {all_valid}",
        )
    ]


# ------------------------------------------------------------------------------------------------ emit


def bench_emit() -> list[Row]:
    from bench.emitter import emitter_rows  # the lean emitter against wrk, interleaved rounds

    return [Row(**row) for row in emitter_rows()]


# ------------------------------------------------------------------------------------------------ startup


def _timed_run(command: Sequence[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
    return (time.perf_counter() - started) * 1000


def bench_startup(rounds: int = 10) -> list[Row]:
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
            imported,
            "ms",
            higher_is_better=False,
            baselines={
                "whole pytest run with the plugin (ms)": with_plugin,
                "whole pytest run, -p no:b24_contract (ms)": without,
                "difference of the whole runs (ms)": added,
            },
            target="<= 50 ms",
            met=imported <= 50 and added <= 50,
            notes=(
                f"import timed after pytest is loaded, best of {rounds}; whole runs best of {rounds} "
                "interleaved, their difference is a cross-check and carries the machine's noise"
            ),
        )
    ]


def bench_contract() -> list[Row]:
    from mock_portal.cli import SUBCOMMANDS

    if "demo" not in SUBCOMMANDS:
        return [
            Row(
                "contract",
                "contract run against the reference handler (GAP: `mock-portal demo` does not exist here)",
                float("nan"),
                "s",
                higher_is_better=False,
                target="<= 5 s",
            )
        ]
    times = []
    codes = set()
    for _ in range(3):
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
            best,
            "s",
            higher_is_better=False,
            baselines={"slowest of the 3 runs (s)": max(times)},
            target="<= 5 s",
            met=codes == {0} and best <= 5,
            notes=f"wall time of the whole command, best of 3; exit codes {sorted(codes)}",
        )
    ]


# ------------------------------------------------------------------------------------------------ table


def _portal_scale() -> list[Row]:
    from bench.portal_scale import bench_portal_scale  # it imports Row from here: loaded when run

    return bench_portal_scale()


BENCHES: dict[str, Callable[[], list[Row]]] = {
    "validate": bench_validate,
    "generate": bench_generate,
    "emit": bench_emit,
    "startup": bench_startup,
    "contract": bench_contract,
    "portal": _portal_scale,
}


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table: figure, baselines, ratios, target and verdict."""
    lines = []
    for row in rows:
        verdict = {True: "MET", False: "NOT MET", None: "-"}[row.met]
        lines.append(f"[{row.group}] {row.name}")
        lines.append(f"    {_fmt(row.value)} {row.unit}    target: {row.target or '-'}    {verdict}")
        for name, value in row.baselines.items():
            lines.append(f"    baseline {name}: {_fmt(value)}")
        if row.ratios:
            lines.append("    ratios: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in row.ratios.items()))
        if row.notes:
            lines.append(f"    ({row.notes})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen groups (all by default), print the table, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "groups", nargs="*", metavar="GROUP", help=f"groups to run: {', '.join(GROUPS)} (default: all)"
    )
    args = parser.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group {unknown[0]!r} (known: {', '.join(GROUPS)})")
    rows: list[Row] = []
    for group in args.groups or GROUPS:
        print(f"running {group}...", file=sys.stderr, flush=True)
        rows.extend(BENCHES[group]())
    table = format_table(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "rows": [asdict(r) for r in rows],
    }
    text = json.dumps(document, indent=2, allow_nan=True)
    (RESULTS / f"{stamp}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    print(f"\nwritten: {RESULTS / 'latest.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
