"""``mock_portal.locust`` under real Locust processes: headless standalone, and one master with two workers.

Locust patches the standard library with gevent when imported, so it only ever runs in child processes here.
Every run ends on ``--b24-count`` (exactly that many events), never on its run time, so what it sends does
not depend on how busy the machine is; ``-t`` and the subprocess timeouts only bound a run that hangs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.bench import counting_handler, free_port, reference_handler

# importorskip would import locust here, and gevent would patch this test process: only look it up
if importlib.util.find_spec("locust") is None:
    pytest.skip("locust is not installed (the load extra)", allow_module_level=True)

LOCUSTFILE = str(Path(__file__).resolve().parent.parent / "mock_portal" / "locust.py")
LOCUST = [sys.executable, "-m", "locust", "-f", LOCUSTFILE]
SILENT_WORKER = str(Path(__file__).resolve().parent / "support" / "silent_worker.py")
# workers that also load SILENT_WORKER fall silent for seconds as the run starts
SILENT_LOCUST = [*LOCUST[:-1], f"{LOCUSTFILE},{SILENT_WORKER}"]


def _stats(stdout: str) -> dict[str, dict[str, Any]]:
    entries = json.loads(stdout)
    return {entry["name"]: entry for entry in entries}


@pytest.mark.slow
def test_headless_run_against_the_reference_handler() -> None:
    with reference_handler() as (url, context):
        completed = subprocess.run(
            [
                *LOCUST, "--headless", "-u", "2", "-r", "10", "-t", "80s", "--only-summary", "--json",
                "--host", url, "--b24-shapes", "all", "--b24-auth", "user,system", "--b24-seed", "7",
                "--b24-count", "24",
                "--b24-application-token", context["application_token"],
                "--b24-member-id", context["member_id"],
                "--b24-client-endpoint", context["client_endpoint"],
            ],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    stats = _stats(completed.stdout)
    expected = {
        f"ONSESSIONSTART {s}/{a}"
        for s in ("source-2024", "docs-2024", "docs-2026")
        for a in ("user", "system")
    }
    assert set(stats) == expected  # one user sent at least 12 of the 24, cycling through the six
    assert sum(entry["num_requests"] for entry in stats.values()) == 24
    for name, entry in stats.items():
        assert entry["num_requests"] > 0, name
        # the handler accepted every event: the token and member_id matched, every shape was understood
        assert entry["num_failures"] == 0, (name, completed.stderr[-2000:])
    assert context["application_token"] not in completed.stdout


@pytest.mark.slow
def test_failures_are_counted_per_event_name() -> None:
    with counting_handler(status=403) as handler:
        completed = subprocess.run(
            [*LOCUST, "--headless", "-u", "1", "-r", "10", "-t", "50s", "--only-summary", "--json",
             "--host", handler.url, "--b24-auth", "system", "--b24-count", "5"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    stats = _stats(completed.stdout)
    assert list(stats) == ["ONSESSIONSTART docs-2026/system"]
    entry = stats["ONSESSIONSTART docs-2026/system"]
    assert entry["num_requests"] == entry["num_failures"] == 5
    assert handler.bodies == 5
    assert completed.returncode == 1  # Locust's exit code when requests failed


@pytest.mark.slow
def test_distributed_master_and_two_workers() -> None:
    """Each worker's event loop is blocked for seconds as the run starts (no heartbeat), as on a loaded
    machine: the master waits for it, and the run still ends on its count with every event counted once."""
    port = free_port()
    with counting_handler() as handler:
        master = subprocess.Popen(
            [
                *LOCUST, "--master", "--headless", "--expect-workers", "2", "--expect-workers-max-wait", "60",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "-u", "4", "-r", "20", "-t", "100s", "--only-summary", "--json", "--host", handler.url,
                "--b24-shapes", "docs-2024,docs-2026", "--b24-seed", "dist", "--b24-count", "10",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        workers = [
            subprocess.Popen(
                [*SILENT_LOCUST, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            out, err = master.communicate(timeout=120)
            worker_codes = [w.wait(timeout=60) for w in workers]
        finally:
            for process in (master, *workers):
                if process.poll() is None:
                    process.kill()
                    process.wait()
        delivered, by_event = handler.bodies, dict(handler.events)
    assert master.returncode == 0, err[-3000:]
    assert worker_codes == [0, 0]
    assert "reported as ready. 2 workers connected." in err, err[-3000:]
    stats = _stats(out)
    assert set(stats) == {"ONSESSIONSTART docs-2024/user", "ONSESSIONSTART docs-2026/user"}, err[-3000:]
    counted = sum(entry["num_requests"] for entry in stats.values())
    assert all(entry["num_failures"] == 0 for entry in stats.values())
    # ten events from each worker, each counted once and received once
    assert counted == delivered == 20
    assert by_event == {"ONSESSIONSTART": 20}


def test_the_locustfile_loads_the_event_data_when_imported() -> None:
    # a worker imports it before it connects to its master: building its users later must not keep its event
    # loop busy (and the master without heartbeats) while Faker's pools or the schema registry load
    probe = (
        "import mock_portal.locust\n"
        "from mock_portal._eventspec import _pools\n"
        "from mock_portal.schemas import registry\n"
        "print(_pools.cache_info().currsize, registry.cache_info().currsize)\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["1", "1"]


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (("--b24-count", "0"), "--b24-count must be a positive whole number"),
        (("--b24-auth", "bogus"), "--b24-auth: unknown mode 'bogus'"),
        (("--b24-shapes", "docs-2025"), "--b24-shapes: unknown shape 'docs-2025'"),
        (("--b24-count", "5", "--reset-stats"), "--b24-count counts every event from the first"),
    ],
)
@pytest.mark.slow
def test_bad_options_are_one_line_usage_errors(option: tuple[str, ...], says: str) -> None:
    completed = subprocess.run(
        [*LOCUST, "--headless", "-u", "1", "-t", "30s", "--host", "http://127.0.0.1:9/", *option],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 2
    assert f"locust: error: {says}" in completed.stderr
    assert "Traceback" not in completed.stderr
