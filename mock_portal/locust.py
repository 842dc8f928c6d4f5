"""Locust users that fire realistic Bitrix24 events at a handler, for load beyond one machine.

Locust (the ``load`` extra) brings gevent, which patches the standard library as soon as it is imported:
this module is the only one in the package that imports it, and nothing imports this module for you.

Standalone, headless::

    locust -f mock_portal/locust.py --headless -u 50 -r 10 -t 1m --host http://127.0.0.1:8080/

Distributed (one master, any number of workers, on one host or many)::

    locust -f mock_portal/locust.py --master --headless -u 500 -r 50 -t 5m --expect-workers 4 --host URL
    locust -f mock_portal/locust.py --worker --master-host MASTER   # on each worker machine

Options (also ``LOCUST_B24_*`` environment variables, and set once on the master for every worker):
``--b24-event`` (``ONSESSIONSTART``), ``--b24-shapes`` (comma-separated, ``all`` for every shape; default
the newest), ``--b24-auth`` (``user``, ``system`` or ``user,system``), ``--b24-seed`` (``0``),
``--b24-application-token``, ``--b24-member-id``, ``--b24-client-endpoint`` (the values a handler
installed with a known portal expects), ``--b24-path`` (``/``), ``--b24-count`` (stop once this many events
were sent: by the users of a standalone run, by each worker of a distributed one; ``-t`` still bounds the
run; not with ``--reset-stats``). A run ended by ``--b24-count`` sends exactly that many events, however
fast or slow the machine is; its master waits a minute, not Locust's few seconds, for a worker busy enough
to miss its heartbeats.

Each request shows in Locust's statistics under the event, shape and auth mode it carried
(``ONSESSIONSTART docs-2026/user``), so a handler slow on one shape shows it. Bodies are the PHP
``http_build_query`` form bodies of :class:`~mock_portal.events.EventStream`; every user draws its own
seeded stream (``<seed>-w<worker>-u<user>``), so a run can be repeated byte for byte. Subclass
:class:`B24EventUser` to fix the options in code, or to set ``wait_time`` (default: no wait).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

import gevent
import locust.runners
from locust import FastHttpUser, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from mock_portal.errors import MockPortalError, UsageError
from mock_portal.events import AUTH_MODES, EventStream, event_spec
from mock_portal.schemas import known_events

__all__ = ["B24EventUser", "OnSessionStartUser"]

_CONTENT_TYPE = "application/x-www-form-urlencoded"
_IDLE_SECONDS = 1.0


def _load_event_data() -> None:
    """Load what every user is built from now, while Locust imports this file, before a worker connects.

    A worker whose event loop is busy sends its master no heartbeat. The schema registry (the derived events
    are built from it) takes a quarter of a second of CPU to load, seconds on a loaded machine, and Faker's
    pools took as long before they were shipped (they still do when the file is missing): loaded by the first
    user, they kept every worker silent just as the run started, long enough for the master to give up on
    all of them. Loaded here, building a user takes about a millisecond.
    """
    try:
        EventStream()  # the default locale's pools, and the default event's form template
        known_events()  # the schema registry
    except MockPortalError:
        pass  # a broken install: building the first user says what is missing, as it would have without this


_load_event_data()


def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("b24-contract events")
    group.add_argument("--b24-event", default="", env_var="LOCUST_B24_EVENT", help="event (ONSESSIONSTART)")
    group.add_argument("--b24-shapes", default="", env_var="LOCUST_B24_SHAPES", help="shapes, or 'all'")
    group.add_argument("--b24-auth", default="", env_var="LOCUST_B24_AUTH", help="user, system or both")
    group.add_argument("--b24-seed", default="", env_var="LOCUST_B24_SEED", help="stream seed (0)")
    group.add_argument("--b24-application-token", default="", env_var="LOCUST_B24_APPLICATION_TOKEN")
    group.add_argument("--b24-member-id", default="", env_var="LOCUST_B24_MEMBER_ID")
    group.add_argument("--b24-client-endpoint", default="", env_var="LOCUST_B24_CLIENT_ENDPOINT")
    group.add_argument("--b24-path", default="", env_var="LOCUST_B24_PATH", help="request path (/)")
    group.add_argument(
        "--b24-count", default="", env_var="LOCUST_B24_COUNT", help="stop after N events (per worker)"
    )


events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]


def _count(text: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--b24-count must be a positive whole number, not {text!r}")
    return int(text)


class _Quota:
    """This process's share of ``--b24-count``: tickets handed to users, events they finished sending."""

    issued = itertools.count()
    finished = 0


def _check_options(options: Any) -> None:
    """Refuse bad ``--b24-*`` values before any user starts: one line on stderr, exit code 2."""
    try:
        spec = event_spec(_option(options, "b24_event") or "ONSESSIONSTART")
        shapes = _split(_option(options, "b24_shapes"))
        unknown_shapes = [s for s in shapes if s != "all" and s not in spec.shapes]
        if unknown_shapes:
            known = ", ".join(spec.shapes)
            raise UsageError(f"--b24-shapes: unknown shape {unknown_shapes[0]!r} (known: {known}, all)")
        unknown = [a for a in _split(_option(options, "b24_auth")) if a not in AUTH_MODES]
        if unknown:
            raise UsageError(f"--b24-auth: unknown mode {unknown[0]!r} (known: {', '.join(AUTH_MODES)})")
        if _count(_option(options, "b24_count"), 0) and getattr(options, "reset_stats", False):
            # Locust would drop the events sent before spawning completed, whenever that is: not a count
            raise UsageError("--b24-count counts every event from the first: it cannot go with --reset-stats")
    except MockPortalError as exc:
        sys.stderr.write(f"locust: error: {exc}\n")
        raise SystemExit(2) from None


def _on_init(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    _check_options(environment.parsed_options)
    if not isinstance(runner, MasterRunner):
        return
    limit = _count(_option(environment.parsed_options, "b24_count"), 0)
    if not limit:
        return
    _bear_with_silent_workers()

    def check() -> None:
        # every worker sends `limit` events and then idles: the run is over once all of them are reported
        options = environment.parsed_options
        workers = max(getattr(options, "expect_workers", 0) or 0, runner.worker_count)
        if workers and runner.stats.total.num_requests >= limit * workers:
            runner.quit()

    def on_report(**_report: Any) -> None:
        gevent.spawn(check)  # after the report is merged into the master's statistics

    environment.events.worker_report.add_listener(on_report)


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]


def _bear_with_silent_workers() -> None:
    """Give a silent worker up after a minute, as a worker does its master, not after three missed heartbeats.

    A worker is silent while its event loop is busy: Locust's own handling of a spawn job takes a few hundred
    milliseconds of CPU, seconds on a loaded machine. A master that gives up on all its workers stops the run
    for good: their users are stopped, mid-request if need be, and the master idles until ``-t``, then exits
    0 with what it had. In a run ended by ``--b24-count`` giving up on a worker cannot help: the run ends once
    every worker's events are reported, so without that worker it could only end at ``-t``. Locust reads this
    module constant each time it hears from a worker.
    """
    runners = locust.runners
    patience = round(runners.MASTER_HEARTBEAT_TIMEOUT / runners.HEARTBEAT_INTERVAL)
    runners.HEARTBEAT_LIVENESS = max(runners.HEARTBEAT_LIVENESS, patience)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


class B24EventUser(FastHttpUser):
    """A user that POSTs event bodies back to back; class attributes give the defaults of the options."""

    abstract = True
    wait_time = constant(0)

    event: ClassVar[str] = "ONSESSIONSTART"
    shapes: ClassVar[tuple[str, ...]] = ()
    """Shapes to cycle through; empty means the event's newest; ``("all",)`` every known shape."""
    auth_modes: ClassVar[tuple[str, ...]] = ()
    """Auth modes to cycle through; empty means the event's usual one."""
    seed: ClassVar[str] = "0"
    event_context: ClassVar[dict[str, str]] = {}
    """Values every event carries (``application_token``, ``member_id``, ``client_endpoint``...)."""
    path: ClassVar[str] = "/"
    count: ClassVar[int] = 0
    """Stop after this many events (0: only ``-t`` ends the run); ``--b24-count`` overrides it."""

    _user_numbers: ClassVar[Iterator[int]] = itertools.count()

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        event = _option(options, "b24_event") or self.event
        spec = event_spec(event)
        shapes = _split(_option(options, "b24_shapes")) or self.shapes
        if shapes == ("all",):
            shapes = spec.shapes
        auths = _split(_option(options, "b24_auth")) or self.auth_modes
        unknown = [a for a in auths if a not in AUTH_MODES]
        if unknown:
            raise UsageError(f"--b24-auth: unknown mode {unknown[0]!r} (known: {', '.join(AUTH_MODES)})")
        context = dict(self.event_context)
        for key in ("application_token", "member_id", "client_endpoint"):
            value = _option(options, f"b24_{key}")
            if value:
                context[key] = value
        path = _option(options, "b24_path") or self.path
        # Locust joins host and path as text: keep exactly one slash between them
        host = self.host or ""
        self.request_path = path.lstrip("/") if host.endswith("/") else "/" + path.lstrip("/")
        runner = environment.runner
        worker = getattr(runner, "worker_index", 0) if runner is not None else 0
        seed = f"{_option(options, 'b24_seed') or self.seed}-w{worker}-u{next(B24EventUser._user_numbers)}"
        streams = []
        for shape in shapes or (None,):
            for auth in auths or (None,):
                stream = EventStream(event, shape=shape, auth=auth, seed=seed, context=context or None)
                name = f"{stream.spec.name} {stream.shape}/{stream.auth}"
                streams.append((name, stream.bodies()))
        self._streams = itertools.cycle(streams)
        self._limit = _count(_option(options, "b24_count"), self.count)

    @task
    def send_event(self) -> None:
        """POST the next event body; non-2xx answers count as failures in Locust's statistics."""
        limit = self._limit
        if limit and next(_Quota.issued) >= limit:
            gevent.sleep(_IDLE_SECONDS)  # this process's events are all sent or on their way: idle
            return
        name, bodies = next(self._streams)
        self.client.post(
            self.request_path, data=next(bodies), headers={"Content-Type": _CONTENT_TYPE}, name=name
        )
        if limit:
            _Quota.finished += 1
            runner = self.environment.runner
            # standalone, the last of them ends the run; a distributed run is ended by its master
            if _Quota.finished == limit and runner is not None and not isinstance(runner, WorkerRunner):
                gevent.spawn(runner.quit)


def _option(options: Any, name: str) -> str:
    value = getattr(options, name, "") if options is not None else ""
    return str(value or "")


class OnSessionStartUser(B24EventUser):
    """OnSessionStart events; the options choose shapes, auth modes, seed and the portal's values."""

    event = "ONSESSIONSTART"
