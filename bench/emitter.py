"""The emitter benchmark: mock-portal's lean emitter against wrk, same handler, body and connections, one run.

    python -m bench emit                 # as part of the bench table
    python -m bench.emitter              # alone, printing its own rows

Each handler of ``bench/handler.py`` runs in a process of its own: ``raw``, a bare asyncio server (the
target's baseline: ``wrk -t1 -c8``), and ``asgi``, a minimal app on uvicorn (reported). Rounds interleave
``wrk -t1 -cC``, the emitter on asyncio's own loop, the emitter on uvloop (skipped, with a note, when uvloop
is not installed: the ``fast`` extra) and, against ``raw``, an aiohttp keep-alive client written the way the
emitter used to be (the old baseline); every client gets the same body (an 857-byte OnSessionStart form
body), the same connections and the same seconds. Each client runs in its own process and reports the CPU it
used (user + system) during its run, so CPU per request sits beside wrk's (wrk's own rusage). Where the OS
allows, the handler is pinned to one CPU and the clients to another. Figures: the median and the minimum over
the rounds; the share of wrk is taken per round (same minute, same machine load) and then summarised.

Nothing here is a test: figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_SHARE = 0.5
_HANDLER_CPU = 0
_CLIENT_CPU = 1


def _body() -> bytes:
    from mock_portal.events import build_event

    # an OnSessionStart form body of 857 bytes, the size the emitter was first measured with
    return build_event("ONSESSIONSTART", shape="docs-2026", auth="system", seed=96).body().encode()


def _pin(cpu: int) -> Callable[[], None] | None:
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    chosen = sorted(os.sched_getaffinity(0))[cpu]
    return lambda: os.sched_setaffinity(0, {chosen})


@contextlib.contextmanager
def _handler(workdir: Path, kind: str) -> Iterator[tuple[str, int]]:
    port_file = workdir / f"port-{kind}"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "handler.py"), kind, str(port_file)], preexec_fn=_pin(_HANDLER_CPU)
    )
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} benchmark handler did not start")
            time.sleep(0.02)  # polling a child's start-up, not synchronising a test
        yield f"http://127.0.0.1:{int(port_file.read_text())}/", process.pid
    finally:
        process.terminate()
        process.wait(10)


def _wrk(url: str, body_file: Path, connections: int, seconds: float, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, capture_output=True, text=True, check=True, preexec_fn=_pin(_CLIENT_CPU))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = int(re.search(r"(\d+) requests in", out.stdout).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out.stdout)
    if errors:
        raise RuntimeError(f"wrk saw errors: {errors.group(0)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "cpu_us": cpu / max(requests, 1) * 1e6}


def _client(kind: str, url: str, body_file: Path, connections: int, seconds: float) -> dict[str, float]:
    """One client run in a process of its own (``kind``: asyncio, uvloop or aiohttp); its JSON report."""
    command = [
        sys.executable, "-m", "bench.emitter", "--client", kind, url, str(body_file),
        str(connections), str(seconds),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=HERE.parent, preexec_fn=_pin(_CLIENT_CPU)
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} client failed: {done.stderr[-2000:]}")
    report: dict[str, float] = json.loads(done.stdout)
    return report


def _client_main(kind: str, url: str, body_file: str, connections: int, seconds: float) -> None:
    """Run one client for ``seconds`` and print ``{"rps", "cpu_us", "ok", "failed"}`` as JSON."""
    import itertools

    body = Path(body_file).read_bytes()
    if kind == "aiohttp":
        import asyncio

        run = lambda: asyncio.run(_aiohttp_client(url, body, connections, seconds))  # noqa: E731
    else:
        from mock_portal.loadgen import run_load

        def run() -> tuple[int, int, float]:
            result = run_load(
                url, itertools.repeat(body), duration=seconds, connections=connections, event_loop=kind
            )
            return result.ok, result.failed, result.elapsed

    before = resource.getrusage(resource.RUSAGE_SELF)
    ok, failed, elapsed = run()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = {"rps": (ok + failed) / elapsed, "cpu_us": cpu / max(ok + failed, 1) * 1e6, "ok": ok}
    print(json.dumps({**report, "failed": failed}))


async def _aiohttp_client(url: str, body: bytes, connections: int, seconds: float) -> tuple[int, int, float]:
    """The old baseline: one aiohttp session, ``connections`` workers each POSTing and reading in turn."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0)
    headers = {"User-Agent": "bench", "Content-Type": "application/x-www-form-urlencoded"}
    counts = [0, 0]
    started = time.perf_counter()
    deadline = started + seconds
    async with aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("Accept", "Accept-Encoding"), auto_decompress=False
    ) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    counts[0 if response.status == 200 else 1] += 1

        import asyncio

        await asyncio.gather(*(worker() for _ in range(connections)))
    return counts[0], counts[1], time.perf_counter() - started


def _summarise(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), min(values)


def emitter_rows(
    *, rounds: int = 5, seconds: int = 2, connections: int = 8, asgi_rounds: int = 3
) -> list[dict[str, Any]]:
    """The emitter's rows (dicts with the fields of ``bench.run.Row``): against wrk, interleaved rounds."""
    if shutil.which("wrk") is None:
        return [
            {
                "group": "emit",
                "name": "emission (skipped: wrk is not installed; apt-get install wrk)",
                "value": float("nan"),
                "unit": "req/s",
            }
        ]
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    loops = ["asyncio", "uvloop"] if has_uvloop else ["asyncio"]
    pinned = "handler and clients pinned to two CPUs" if _pin(_CLIENT_CPU) else "not pinned"
    rows: list[dict[str, Any]] = []
    body = _body()
    plans = [
        ("raw", "a bare asyncio server (bench/handler.py raw)", rounds, [*loops, "aiohttp"]),
        ("asgi", "a minimal ASGI app on uvicorn (bench/handler.py asgi)", asgi_rounds, loops[-1:]),
    ]
    for kind, handler, n_rounds, clients in plans:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in ["wrk", *clients]}
        with tempfile.TemporaryDirectory() as tmp, _handler(Path(tmp), kind) as (url, _pid):
            body_file = Path(tmp) / "body"
            body_file.write_bytes(body)
            _wrk(url, body_file, connections, 1, Path(tmp))  # warm the handler up
            for _ in range(n_rounds):
                runs["wrk"].append(_wrk(url, body_file, connections, seconds, Path(tmp)))
                for client in clients:
                    report = _client(client, url, body_file, connections, seconds)
                    if report["failed"] or not report["ok"]:
                        raise RuntimeError(f"the {client} client lost requests: {report}")
                    runs[client].append(report)
        wrk_rps = _summarise([r["rps"] for r in runs["wrk"]])
        wrk_cpu = _summarise([r["cpu_us"] for r in runs["wrk"]])
        for client in clients:
            rps = _summarise([r["rps"] for r in runs[client]])
            cpu = _summarise([r["cpu_us"] for r in runs[client]])
            shares = [
                ours["rps"] / theirs["rps"] for ours, theirs in zip(runs[client], runs["wrk"], strict=True)
            ]
            share = _summarise(shares)
            is_target = kind == "raw" and client != "aiohttp"
            what = {
                "asyncio": "the lean emitter on asyncio's loop",
                "uvloop": "the lean emitter on uvloop",
                "aiohttp": "old baseline: an aiohttp keep-alive client (the emitter before)",
            }[client]
            rows.append(
                {
                    "group": "emit",
                    "name": f"emission to {handler}: {what}, {connections} connections",
                    "value": rps[0],
                    "unit": "req/s",
                    "baselines": {
                        f"wrk -t1 -c{connections}, same handler and body (req/s, median)": wrk_rps[0],
                        "wrk (req/s, min)": wrk_rps[1],
                        "this client (req/s, min)": rps[1],
                        "CPU per request, this client (µs, median)": cpu[0],
                        "CPU per request, this client (µs, min)": cpu[1],
                        "CPU per request, wrk (µs, median)": wrk_cpu[0],
                        "CPU per request, wrk (µs, min)": wrk_cpu[1],
                    },
                    "ratios": {
                        "share of wrk (median of rounds)": share[0],
                        "share of wrk (min of rounds)": share[1],
                    },
                    "target": f">= {TARGET_SHARE} of wrk (median of rounds)" if is_target else "- (reported)",
                    "met": (share[0] >= TARGET_SHARE) if is_target else None,
                    "notes": (
                        f"{n_rounds} interleaved rounds of {seconds:g} s; body {len(body)} bytes; {pinned}; "
                        "CPU is user + system of the client process during its run"
                    ),
                }
            )
        if not has_uvloop and kind == "raw":
            rows.append(
                {
                    "group": "emit",
                    "name": "emission on uvloop (skipped: not installed; pip install 'b24-contract[fast]')",
                    "value": float("nan"),
                    "unit": "req/s",
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.emitter``: print the rows; ``--client`` runs one client (used by the rows)."""
    parser = argparse.ArgumentParser(prog="python -m bench.emitter", description=__doc__.split("\n")[0])
    parser.add_argument("--client", nargs=5, metavar=("KIND", "URL", "BODY", "CONNECTIONS", "SECONDS"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.client:
        kind, url, body, connections, seconds = args.client
        _client_main(kind, url, body, int(connections), float(seconds))
        return 0
    for row in emitter_rows(rounds=args.rounds, seconds=args.seconds):
        print(json.dumps(row, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
