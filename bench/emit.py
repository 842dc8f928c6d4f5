"""Emission: ``mock_portal.loadgen.run_load`` against ``wrk`` on the same handler and body (needs wrk).

One run of each side per handler (``bench/emitter.py`` holds the interleaved emitter benchmark of issue 10).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.core import Row, Stat, register

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def _handler_process(workdir: Path, kind: str) -> Iterator[str]:
    port_file = workdir / f"port-{kind}"
    process = subprocess.Popen([sys.executable, str(HERE / "handler.py"), kind, str(port_file)])
    try:
        deadline = time.monotonic() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark handler did not start")
            time.sleep(0.02)  # polling a child's start-up, not synchronising a test
        yield f"http://127.0.0.1:{int(port_file.read_text())}/"
    finally:
        process.terminate()
        process.wait(5)


def _wrk(url: str, body_file: Path, connections: int, seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def latency(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if match is None:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    return {"rps": rps, "p50_ms": latency("50"), "p99_ms": latency("99")}


_EMIT_HANDLERS = {
    "asgi": ("a minimal ASGI app on uvicorn", ">= 0.30 of wrk"),
    "raw": ("a bare asyncio protocol, no HTTP framework (the emitter's own ceiling)", None),
}


@register("emit", needs=("exe:wrk", "aiohttp"), help="mock_portal.loadgen against wrk, same handler")
def run(quick: bool) -> list[Row]:
    from mock_portal.events import build_event
    from mock_portal.loadgen import run_load

    seconds, connections = (1 if quick else 3), 16
    body = build_event(seed=1).body().encode()
    rows = []
    for kind, (handler, target) in _EMIT_HANDLERS.items():
        with tempfile.TemporaryDirectory() as tmp, _handler_process(Path(tmp), kind) as url:
            body_file = Path(tmp) / "body"
            body_file.write_bytes(body)
            wrk = _wrk(url, body_file, connections, seconds, Path(tmp))
            ours = run_load(url, itertools.repeat(body), duration=seconds, connections=connections)
            if ours.failed or ours.ok != ours.sent:
                raise RuntimeError(f"the emitter lost requests: {ours.summary()}")
        share = ours.throughput / wrk["rps"]
        rows.append(
            Row(
                "emit",
                f"emission, loopback keep-alive HTTP/1.1, to {handler} ({connections} connections, aiohttp)",
                Stat.of([ours.throughput]),
                "req/s",
                baselines={"wrk -t1 (same handler, same body)": Stat.of([wrk["rps"]])},
                ratios={"share of wrk": Stat.of([share])},
                target=target or "- (reported)",
                met=(share >= 0.30) if target else None,
                notes=(
                    f"ours p50 {ours.percentile(50) * 1000:.3f} ms, p99 {ours.percentile(99) * 1000:.3f} ms; "
                    f"wrk p50 {wrk['p50_ms']:.3f} ms, p99 {wrk['p99_ms']:.3f} ms; handler: bench/handler.py "
                    f"{kind} (own process); body {len(body)} bytes; {seconds} s each"
                ),
            )
        )
    return rows
