"""A second locustfile for the distributed Locust test: each worker falls silent as the run starts.

When a worker gets its first spawn job, the unpatched ``time.sleep`` blocks its event loop: no heartbeat, no
report, no request, as on a machine too loaded to run it. A master that gave up on its workers after a few
silent seconds would stop the run there. Not a synchronisation: nothing waits for the silence to end, it is
the fault the test injects.
"""

from __future__ import annotations

from typing import Any

import gevent.monkey
from locust import events
from locust.runners import WorkerRunner

SILENT_SECONDS = 6.0
_blocking_sleep = gevent.monkey.get_original("time", "sleep")


@events.test_start.add_listener  # type: ignore[no-untyped-call]
def _fall_silent(environment: Any, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        _blocking_sleep(SILENT_SECONDS)
