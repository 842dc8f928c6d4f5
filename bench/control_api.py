"""The control API under a big listing: ``GET /_portal`` latency while a client pages through 100k records.

Three processes, so no client shares the server's interpreter: the server (``PortalServer`` holding 100,000
recorded REST calls), a pager (follows ``GET /_portal/rest-calls`` page by page, ``Link: rel="next"``, to the
end) and the prober here (``GET /_portal`` back to back on one keep-alive connection). Each round has a
loaded phase (the pager walks all 100k records) and a quiet phase of the same length (no pager), in
alternating order; the figure is the p99 of ``GET /_portal`` under load, beside the quiet p99.

Target (issue 10): p99 under 50 ms while the other client pages.

Run alone: ``python -m bench control_api``; the roles: ``python -m bench.control_api serve N PORT_FILE`` and
``python -m bench.control_api page URL``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from bench.core import Row, Stat, register

RECORDS = 100_000


def _serve(count: int, port_file: str) -> None:
    from mock_portal.portal import Portal
    from mock_portal.server import PortalServer

    portal = Portal("bench.example.com", seed=1)
    message = "Здравствуйте! Чем можем помочь? " * 3
    for i in range(count):
        portal.record_call(
            method="im.message.add",
            params={"DIALOG_ID": f"chat{1000 + i % 500}", "MESSAGE": message, "auth": "0123456789abcdef" * 4},
            token="0123456789abcdef" * 4,
            client_id="local.bench",
            status=200,
            result={"result": 5000 + i},
            error=None,
            http_method="POST",
        )
    with PortalServer([portal], max_record_bytes=1 << 30) as server:
        Path(port_file).write_text(str(server.port))
        sys.stdin.read()  # serve until the parent closes our stdin


def _page(url: str) -> None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    path: str | None = "/_portal/rest-calls?limit=1000"
    seen = pages = 0
    started = time.perf_counter()
    while path:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"pager: {response.status} {body[:200]!r}")
        seen += body.count(b'"method":"im.message.add"')
        pages += 1
        link = response.getheader("link")
        path = link[1 : link.index(">")] if link else None
    print(json.dumps({"records": seen, "pages": pages, "seconds": time.perf_counter() - started}))


@contextlib.contextmanager
def _server(count: int) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, "-m", "bench.control_api", "serve", str(count), str(port_file)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 300
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the benchmark server did not start")
                time.sleep(0.05)  # polling a child's start-up, not synchronising a test
            yield f"http://127.0.0.1:{int(port_file.read_text())}"
        finally:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _probe(url: str, until: threading.Event | None, seconds: float) -> list[float]:
    """Latencies (ms) of back-to-back ``GET /_portal`` until ``until`` is set, or for ``seconds``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while (until is None and time.perf_counter() < deadline) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        connection.request("GET", "/_portal")
        response = connection.getresponse()
        data = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"GET /_portal answered {response.status}")
        json.loads(data)
    connection.close()
    return latencies


def _wait_then_set(process: subprocess.Popen[str], done: threading.Event) -> None:
    process.wait()
    done.set()


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


@register("control_api", help="GET /_portal p99 while another client pages through 100k records")
def run(quick: bool) -> list[Row]:
    count = 20_000 if quick else RECORDS
    rounds = 2 if quick else 3
    loaded_p99, quiet_p99, loaded_p50, quiet_p50, paging = [], [], [], [], []
    with _server(count) as url:
        for index in range(rounds):
            phases = ["loaded", "quiet"] if index % 2 == 0 else ["quiet", "loaded"]
            length = 2.0
            for phase in phases:
                if phase == "quiet":
                    latencies = _probe(url, None, length)
                    quiet_p99.append(_p(latencies, 99))
                    quiet_p50.append(_p(latencies, 50))
                    continue
                done = threading.Event()
                command = [sys.executable, "-m", "bench.control_api", "page", url]
                pager = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                waiter = threading.Thread(target=_wait_then_set, args=(pager, done))
                waiter.start()
                latencies = _probe(url, done, 0)
                waiter.join()
                out, _ = pager.communicate()
                if pager.returncode != 0:
                    raise RuntimeError(f"the pager failed: {out}")
                report = json.loads(out)
                if report["records"] != count:
                    raise RuntimeError(f"the pager saw {report['records']} records, not {count}")
                length = report["seconds"]
                paging.append(count / report["seconds"])
                loaded_p99.append(_p(latencies, 99))
                loaded_p50.append(_p(latencies, 50))
    p99 = Stat.of(loaded_p99)
    return [
        Row(
            "control_api",
            f"GET /_portal p99 while another client pages through {count:,} records (limit=1000)",
            p99,
            "ms",
            higher_is_better=False,
            baselines={
                "GET /_portal p99, nobody paging (ms)": Stat.of(quiet_p99),
                "GET /_portal p50 while paging (ms)": Stat.of(loaded_p50),
                "GET /_portal p50, nobody paging (ms)": Stat.of(quiet_p50),
                "pager throughput (records/s)": Stat.of(paging),
            },
            ratios={
                "p99 paging / p99 quiet (x)": Stat.of(
                    [a / b for a, b in zip(loaded_p99, quiet_p99, strict=True)]
                )
            },
            target="p99 < 50 ms",
            met=p99.median < 50,
            notes=f"server, pager and prober in three processes; {rounds} rounds, loaded and quiet phases "
            "alternating",
        )
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1:2] == ["page"]:
        _page(sys.argv[2])
    else:
        raise SystemExit(__doc__)
