"""Running the contract: portals, deliveries and waits for one handler, each registered clause judged once.

::

    with ContractRun(ContractConfig("http://127.0.0.1:8080/")) as run:
        report = run.run()            # every clause, then a second look for late evidence
        print(report.table())
        run.check("forged-token-no-side-effect")   # one clause (cached once judged)

The handler is a URL, an ASGI or WSGI app, a ``handler(body, headers, url)`` callable or a
:mod:`mock_portal.delivery` target. The engine serves the mock portals over real HTTP on 127.0.0.1
(:class:`~mock_portal.server.PortalServer`), so every event's ``client_endpoint`` is a live REST API the
handler can call back, in process or not; every call it makes is recorded by the portal it reaches. The
clauses (:mod:`contract_tests.clauses`) judge through :class:`~contract_tests.judging.ClauseContext`; this
module owns the state behind it (sites, deliveries, verdicts) with two parts of the run:
:class:`~contract_tests.recording.Recorder` (what was delivered and answered, the masker) and
:class:`~contract_tests.waiting.Waits` (the waits, the budget, the controls). :mod:`contract_tests.reports`
renders the verdicts.
"""

from __future__ import annotations

import secrets
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract_tests.clauses import REGISTRY, Clause, verdict_id
from contract_tests.config import (
    DEFAULT_SETTLE,
    DEFAULT_TIMEOUT,
    ContractConfig,
    check_events,
    install_target,
    resolve_target,
    route_prefix,
)
from contract_tests.config import app_paths as app_paths
from contract_tests.events import EventFactory, install_event, install_failure, install_handler
from contract_tests.judging import SETUP_METHODS as SETUP_METHODS
from contract_tests.judging import (
    ClauseContext,
    ClauseFailed,
    ContractSetupError,
    Control,
    Inconclusive,
    NotApplicable,
    Site,
    last_call_id,
)
from contract_tests.judging import mapping_path as mapping_path
from contract_tests.masking import Masker
from contract_tests.recording import FORM, Recorder, access_token, body_of
from contract_tests.verdicts import ContractReport, ContractViolation, Exchange, Outcome, Verdict
from contract_tests.waiting import Waits, judging_order, settled_calls
from mock_portal.errors import MockPortalError, UsageError
from mock_portal.redact import redact as redact
from mock_portal.redact import redact_text as redact_text

if TYPE_CHECKING:
    from mock_portal.delivery import Deliverer, Target
    from mock_portal.events import BuiltEvent
    from mock_portal.portal import Portal, RestCall
    from mock_portal.server import PortalServer

__all__ = [
    "DEFAULT_SETTLE",
    "DEFAULT_TIMEOUT",
    "ClauseError",
    "ContractConfig",
    "ContractReport",
    "ContractRun",
    "ContractSetupError",
    "ContractViolation",
    "EventFactory",
    "Exchange",
    "Outcome",
    "Verdict",
    "check_events",
    "install_handler",
    "resolve_target",
    "settled_calls",
]

_SESSION_START = "ONSESSIONSTART"
_ANSWER_BYTES = 64 * 1024


class ClauseError(UsageError):
    """A clause's own code failed (not the handler): the message names the clause and the error."""


class ContractRun:
    """One run of the contract against one handler; each verdict is judged once and cached.

    ``server`` is a running :class:`~mock_portal.server.PortalServer` to create the run's portals on (one is
    started and owned by the run when omitted). ``log_tail`` returns the tail of the handler's log, attached
    to failure messages. ``rerun`` turns a verdict id into a command that re-runs just that clause. Use it as
    a context manager: every portal of the run stays reachable until it closes.
    """

    def __init__(
        self,
        config: ContractConfig,
        *,
        server: PortalServer | None = None,
        log_tail: Callable[[], str] | None = None,
        rerun: Callable[[str], str] | None = None,
    ) -> None:
        from mock_portal.delivery import Deliverer, DeliveryLog

        self.config = config
        self.target: Target = resolve_target(config.handler, config.event_path)
        self.install_target: Target = install_target(self.target, config.install_url)
        self.handler_url = self.target.url
        self._log_tail = log_tail
        self.rerun = rerun
        """Turns a verdict id into a command that re-runs just that clause (``None``: no such line)."""
        self.setup_error_shown = False
        self._own_server = server is None
        if server is None:
            from mock_portal.server import PortalServer

            server = PortalServer().start()
        self.server = server
        self._deliverer: Deliverer = Deliverer(
            DeliveryLog(max_in_memory=100),
            timeout=config.timeout,
            max_body_bytes=config.oversize_bytes + (1 << 20),
            max_response_bytes=_ANSWER_BYTES,
            keep_responses=True,
        )
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self.sites: list[Site] = []
        self._recorder = Recorder(config, self.target, self.install_target, self.sites, self._lock)
        self.masker: Masker = self._recorder.masker
        self._waits = Waits(config, self._recorder, self._lock, self._closed)
        self._verdicts: dict[str, Verdict] = {}
        self._shared: dict[Any, Any] = {}
        self._rechecks: list[tuple[Clause, str, Callable[[], str | None], tuple[Exchange, ...]]] = []
        self._async_install: bool | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the run's portals' delivery threads, its deliverer, and the server if the run started it."""
        if self._closed.is_set():
            return
        self._closed.set()
        for site in self.sites:
            site.portal.close()
        self._deliverer.close()
        if self._own_server:
            self.server.stop()

    def __enter__(self) -> ContractRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ planning

    def plan(self) -> list[tuple[Clause, str]]:
        """Every (clause, event) the run gives a verdict for, in report order: a generic clause once per
        declared event, an event-specific one once per declared event it is about (once, as a skip, when the
        handler declares none of them)."""
        out: list[tuple[Clause, str]] = []
        for item in REGISTRY:
            if not self.enabled(item):
                continue
            events = item.verdict_events(self.config.events)
            if events:
                out.extend((item, e) for e in events)
            else:
                out.append((item, (item.events or (_SESSION_START,))[0]))
        return out

    def enabled(self, item: Clause) -> bool:
        """Whether the run judges ``item``: a clause with an ``option`` only when that setting is on."""
        return not item.option or bool(getattr(self.config, item.option, None))

    def _enabled_or_raise(self, item: Clause) -> Clause:
        if not self.enabled(item):
            flag = item.option.replace("_", "-")
            raise UsageError(
                f"clause {item.id} runs only when {item.option} is on: mock-portal verify --{flag} N, "
                f"pytest --b24-{flag} N, or ContractConfig({item.option}=N)"
            )
        return item

    def _resolve(self, clause_id: str, event: str | None) -> tuple[Clause, str]:
        name = clause_id.strip()
        if name.endswith("]") and "[" in name:
            name, _, given = name[:-1].partition("[")
            if event is not None and event.upper() != given.upper():
                raise UsageError(f"two events for one verdict: {clause_id!r} and event={event!r}")
            event = given
        wanted = self._enabled_or_raise(REGISTRY.get(name.strip()))
        planned = [e for c, e in self.plan() if c.id == wanted.id]
        if event is None:
            return wanted, planned[0]
        event = event.strip().upper()
        if event not in planned:
            if wanted.events is not None and event not in wanted.events:
                about = ", ".join(wanted.events)
                raise UsageError(f"clause {wanted.id} is about {about} only; it has no verdict for {event}")
            raise UsageError(f"{event} is not a declared event (declared: {', '.join(self.config.events)})")
        return wanted, event

    def check(self, clause_id: str, event: str | None = None) -> Verdict:
        """Judge one clause (by id or number) for one event and return its verdict; judged once, then cached.
        ``clause_id`` may carry the event (``forged-token-refused[ONIMCONNECTORMESSAGEADD]``); without one it
        is the clause's first planned event (OnSessionStart for the built-in clauses when declared)."""
        wanted, event = self._resolve(clause_id, event)
        key = verdict_id(wanted.id, event)
        with self._lock:
            if key not in self._verdicts:
                self._verdicts[key] = self._judge(wanted, event)
            return self._verdicts[key]

    def run(self, clause_ids: Iterable[str] | None = None) -> ContractReport:
        """Judge the given clauses (all by default; ``clause-id[EVENT]`` picks one event), take a second look
        for late evidence, and return the report in plan order."""
        started = time.perf_counter()
        plan = self.plan()
        if clause_ids is not None:
            picked: set[tuple[str, str]] = set()
            for name in clause_ids:
                if name.strip().endswith("]"):
                    found, event = self._resolve(name, None)
                    picked.add((found.id, event))
                else:
                    found = self._enabled_or_raise(REGISTRY.get(name.strip()))
                    picked.update((c.id, e) for c, e in plan if c.id == found.id)
            plan = [(c, e) for c, e in plan if (c.id, e) in picked]
        else:
            self._waits.send_controls(plan, self._send_control)
        for item, event in judging_order(plan, self.config.events[0]):
            self.check(item.id, event)
        self.late_evidence()
        return self.report([verdict_id(c.id, e) for c, e in plan], time.perf_counter() - started)

    def report(self, ids: Sequence[str] | None = None, seconds: float = 0.0) -> ContractReport:
        """The report of the verdicts judged so far (of ``ids``, in that order)."""
        with self._lock:
            chosen = list(self._verdicts) if ids is None else [i for i in ids if i in self._verdicts]
            verdicts = tuple(self._verdicts[i] for i in chosen)
        return ContractReport(
            verdicts,
            strict=self.config.strict,
            handler=self.masker(self.target.description),
            seconds=seconds,
            mask=self.masker,
        )

    def late_evidence(self) -> list[Verdict]:
        """Look again, at the end of the run, at every absence a clause judged as a pass: a REST call caused
        by a forged event that arrived after the clause's wait turns that verdict into a failure. Returns the
        verdicts it changed (and keeps them)."""
        with self._lock:
            pending = [r for r in self._rechecks if self._verdicts.get(verdict_id(r[0].id, r[1])) is not None]
            self._rechecks = []
        changed = []
        for item, event, look, exchanges in pending:
            key = verdict_id(item.id, event)
            current = self._verdicts[key]
            if current.outcome != "pass":
                continue
            reason = look()
            if reason is None:
                continue
            verdict = self._verdict(
                item,
                event,
                "fail",
                f"{reason} (this call arrived after the clause's wait of {self.budget():.2f} s)",
                exchanges,
                current.notes,
            )
            with self._lock:
                self._verdicts[key] = verdict
            changed.append(verdict)
        return changed

    @property
    def exchanges(self) -> list[Exchange]:
        """Every delivery the run made so far (masked)."""
        with self._lock:
            return list(self._recorder.exchanges)

    # ------------------------------------------------------------------------------------------ judging

    def _judge(self, wanted: Clause, event: str) -> Verdict:
        reason = wanted.not_applicable(
            self.config.events, self.config.install_flow, offline=self.config.offline
        )
        if reason is not None:
            return self._verdict(wanted, event, "skip", f"not applicable: {reason}")
        ctx = ClauseContext(self, wanted, event)
        try:
            result = wanted.judge(ctx)
        except ClauseFailed as failed:
            return self._verdict(wanted, event, "fail", failed.reason, failed.exchanges, ctx.notes)
        except Inconclusive as unsure:
            return self._verdict(wanted, event, "inconclusive", unsure.reason, unsure.exchanges, ctx.notes)
        except NotApplicable as skip:
            return self._verdict(wanted, event, "skip", skip.reason, (), ctx.notes)
        except MockPortalError:
            raise
        except AssertionError as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            text = str(exc) or f"assertion failed at {Path(where.filename).name}:{where.lineno}: {where.line}"
            return self._verdict(wanted, event, "fail", text, (), ctx.notes)
        except Exception as exc:
            raise ClauseError(
                f"clause {wanted.id} ({wanted.module}) raised {type(exc).__name__}: {self.masker(str(exc))}"
            ) from exc
        text = result if isinstance(result, str) and result else "passed"
        return self._verdict(wanted, event, "pass", text, (), ctx.notes)

    def _verdict(
        self,
        item: Clause,
        event: str,
        outcome: Outcome,
        reason: str,
        exchanges: Sequence[Exchange] = (),
        notes: Sequence[str] = (),
    ) -> Verdict:
        self._recorder.collect_secrets()
        tail = ""
        if outcome == "fail" and self._log_tail is not None:
            try:
                tail = self.masker(self._log_tail())
            except Exception as exc:  # the log is a courtesy: never let it hide the verdict
                tail = f"(could not read the handler log: {type(exc).__name__})"
        shown = tuple(exchanges)
        if outcome == "fail" and self.config.bodies_dir:
            shown = tuple(self._recorder.keep_body(ex) for ex in shown)
        rerun = ""
        if outcome in ("fail", "inconclusive") and self.rerun is not None:
            ids = [verdict_id(item.id, event)]
            # a verdict that quotes another clause's delivery (clause 7) needs that clause re-run too
            ids += sorted(
                {verdict_id(ex.clause, event) for ex in shown if ex.clause and ex.clause != item.id}
            )
            rerun = self.masker(self.rerun(",".join(dict.fromkeys(ids))))
        return Verdict(
            item,
            outcome,
            self.masker(reason),
            shown,
            tail,
            event,
            tuple(self.masker(n) for n in notes),
            rerun,
            self.masker,
        )

    def shared(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per ``key`` (see :meth:`ClauseContext.shared`)."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = make()
            return self._shared[key]

    def add_recheck(
        self, item: Clause, event: str, look: Callable[[], str | None], exchanges: tuple[Exchange, ...]
    ) -> None:
        """Remember a second look for :meth:`late_evidence`."""
        with self._lock:
            self._rechecks.append((item, event, look, exchanges))

    # ------------------------------------------------------------------------------------------ portals

    def _new_portal(self, member_id: str | None = None) -> Portal:
        # the rate limiter is off: a run sends tens of events within seconds, each answered with callbacks,
        # so the standard plan's 50-request bucket would refuse the handler's work and judge the mock's limit
        # instead of the handler (the limit itself is tested in the REST tests and with fast_bitrix24)
        portal = self.server.add_portal(
            None, delivery_timeout=self.config.timeout, member_id=member_id, rate_limit=False
        )
        if self.target.kind != "http":
            portal.route(route_prefix(self.target), self.target)
        return portal

    def new_site(self, clause_id: str = "") -> Site:
        """A fresh portal whose app the handler knows: ONAPPINSTALL to the install URL (whose answer must be
        2xx), or the configured token. The first failed install is a :class:`ContractSetupError`."""
        config = self.config
        portal = self._new_portal(None if config.install_flow else config.member_id)
        app, token, _ = portal.install_app(None)
        if not config.install_flow:
            assert config.application_token is not None
            app.application_token = config.application_token
        site = Site(portal, app, EventFactory(portal, app))
        with self._lock:
            self.sites.append(site)
        self._recorder.collect_secrets()
        if config.install_flow:
            self._install(site, token, clause_id)
        return site

    def new_stranger(self, application_token: str | None = None) -> Site:
        """A portal the handler never heard of (see :meth:`ClauseContext.stranger`)."""
        portal = self._new_portal()
        app, _, _ = portal.install_app(None)
        if application_token is None:
            # a handler bound to one portal's token accepts that token only there: use it from elsewhere
            bound = self.config.application_token if self.config.member_id else None
            application_token = bound or secrets.token_hex(16)
        site = Site(
            portal, app, EventFactory(portal, app, application_token=application_token), installed=False
        )
        with self._lock:
            self.sites.append(site)
        self._recorder.collect_secrets()
        return site

    def _install(self, site: Site, token: Any, clause_id: str) -> None:
        body = install_event(site.portal, site.app, token).body()
        first = self._async_install is None
        ex = self._send(
            site, body.encode("utf-8"), "ONAPPINSTALL", kind="install", clause=clause_id, event=""
        )
        site.install = ex
        if not ex.ok:
            site.installed = False
            if first or not any(s.install is not None and s.install.ok for s in self.sites):
                raise ContractSetupError(self.masker(install_failure(ex, self.config, self.install_target)))
            return
        # whatever the handler calls after answering ONAPPINSTALL is setting up, not an event's work: learn
        # on the first install whether it works on after answering, and give later installs that time too
        if first or self._async_install:
            mark = last_call_id(site.portal)
            self._waits.quiet(site.portal, self.budget())
            late = [c for c in site.portal.calls() if c.id > mark]
            if first:
                self._async_install = bool(late)
            self._waits.setup_methods.update(c.method for c in late)

    def secret_kind(self, secret: str) -> str:
        """What ``secret`` is, by where the run keeps it."""
        return self._recorder.secret_kind(secret)

    # ------------------------------------------------------------------------------------------ delivery

    def deliver(
        self,
        ctx: ClauseContext,
        site: Site,
        body: BuiltEvent | str | bytes,
        *,
        label: str | None,
        kind: str,
        focus: Sequence[str],
        content_type: str,
        generator: str | None,
    ) -> Exchange:
        """One delivery for ``ctx`` at ``site`` (see :meth:`ClauseContext.deliver`)."""
        data, auth, name = body_of(body)
        return self._send(
            site,
            data,
            label or (f"{name or ctx.event}, {auth} mode" if auth else "a raw body"),
            kind=kind,
            clause=ctx.clause.id,
            event=ctx.event,
            auth=auth,
            focus=focus,
            content_type=content_type,
            generator=generator,
        )

    def _before_delivery(self, site: Site, data: bytes) -> int:
        self._recorder.collect_secrets()
        mark = last_call_id(site.portal)
        if site.work_from is None:
            site.work_from = mark
        return mark

    def _send(
        self,
        site: Site,
        data: bytes,
        label: str,
        *,
        kind: str,
        clause: str,
        event: str,
        auth: str = "",
        focus: Sequence[str] = (),
        content_type: str = FORM,
        generator: str | None = None,
    ) -> Exchange:
        mark = self._before_delivery(site, data) if kind != "install" else last_call_id(site.portal)
        target = self.install_target if kind == "install" else self.target
        started = site.portal.clock.now()
        with warnings.catch_warnings():
            # aiohttp warns that a large bytes body may block its loop; clause 5's is meant to be large
            warnings.filterwarnings("ignore", "Sending a large body directly", ResourceWarning)
            attempt = self._deliverer.deliver(target, data, timeout=self.config.timeout)
        ex = self._recorder.record(
            site, attempt, data, label, kind, clause, event, auth, focus, content_type, generator
        )
        site.marks[ex.serial] = mark
        self._waits.started[ex.serial] = started
        if kind != "install":  # the install token is the handler's own from then on, not one event's
            self._note_token(site, data, ex)
        return ex

    def deliver_concurrently(
        self, ctx: ClauseContext, site: Site, items: Sequence[tuple[str, BuiltEvent]], *, kind: str
    ) -> list[Exchange]:
        """Deliver every item at once (see :meth:`ClauseContext.deliver_concurrently`)."""
        bodies = [event.body().encode("utf-8") for _, event in items]
        mark = self._before_delivery(site, b"")
        started = site.portal.clock.now()
        attempts = self._deliverer.deliver_many(
            [(self.target, b) for b in bodies], concurrency=max(1, len(bodies))
        )
        out = []
        for (label, event), data, attempt in zip(items, bodies, attempts, strict=True):
            ex = self._recorder.record(
                site, attempt, data, label, kind, ctx.clause.id, ctx.event, event.auth, (), FORM, None, True
            )
            site.marks[ex.serial] = mark
            self._waits.started[ex.serial] = started
            self._note_token(site, data, ex)
            out.append(ex)
        return out

    def _note_token(self, site: Site, data: bytes, ex: Exchange) -> None:
        token = access_token(data)
        found = site.portal.tokens.get(token) if token else None
        if found is not None and found.id not in site.tokens:
            site.tokens[found.id] = ex.serial

    def _send_control(self, event: str) -> tuple[Site, Exchange]:
        """Deliver a valid event of ``event`` (in user mode when it comes in it) on a new site of its own: the
        control sent before any clause runs (see :meth:`Waits.send_controls`)."""
        from mock_portal.events import event_spec

        site = self.new_site()
        modes = tuple(event_spec(event).auth_modes)
        auth = "user" if "user" in modes else modes[0]
        if event == _SESSION_START:
            built = site.events.session_start(auth=auth, shape=self.config.shapes[0])
        else:
            built = site.events.event(event, auth=auth)
        data, auth, _ = body_of(built)
        sent = self._send(site, data, "valid control event", kind="valid", clause="", event=event, auth=auth)
        return site, sent

    def answer_of(self, exchange: Exchange) -> bytes:
        """The whole answer to ``exchange`` (see :meth:`ClauseContext.answer_of`)."""
        return self._recorder.answer_of(exchange)

    # ------------------------------------------------------------------------------------------ waiting
    # what ClauseContext waits with: the run's Waits (contract_tests.waiting) does the waiting

    def budget(self) -> float:
        """The absence budget (see :attr:`ClauseContext.budget`)."""
        return self._waits.budget()

    def work_cap(self, event: str) -> float:
        """How long to wait for a valid event's first REST call (see :meth:`Waits.work_cap`)."""
        return self._waits.work_cap(event)

    def wait_budget(self, since: float | None = None) -> None:
        """Wait one budget (an absence is judged after it), from ``since`` (see :meth:`ClauseContext.settle`);
        a closing run ends the wait."""
        self._waits.wait_budget(since)

    def work_calls(self, site: Site, after: int | None = None, serial: int | None = None) -> list[RestCall]:
        """Calls at ``site`` that are an event's work (see :meth:`Waits.work_calls`)."""
        return self._waits.work_calls(site, after, serial)

    def wait_for_count(self, site: Site, count: int, timeout: float) -> list[RestCall]:
        """Wait (woken by the portal) until ``site`` has ``count`` work calls, or ``timeout`` passes."""
        return self._waits.wait_for_count(site, count, timeout)

    def wait_for_work(self, exchange: Exchange) -> list[RestCall]:
        """The calls ``exchange`` caused, waited for (see :meth:`ClauseContext.calls`)."""
        return self._waits.wait_for_work(exchange)

    def wait_for_works(self, exchanges: Sequence[Exchange]) -> list[list[RestCall]]:
        """The calls each of ``exchanges`` caused (see :meth:`Waits.wait_for_works`)."""
        return self._waits.wait_for_works(exchanges)

    def control(self, ctx: ClauseContext, event: str) -> Control:
        """The per-event control (see :meth:`ClauseContext.control`)."""
        return self._waits.control(ctx, event)
