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
module owns the state behind it (sites, deliveries, the budget, the masker) and :mod:`contract_tests.reports`
renders the verdicts.
"""

from __future__ import annotations

import os
import secrets
import shlex
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract_tests.clauses import REGISTRY, Clause, verdict_id
from contract_tests.config import (
    DEFAULT_SETTLE,
    DEFAULT_TIMEOUT,
    ContractConfig,
    app_paths,
    check_events,
    install_target,
    resolve_target,
    route_prefix,
)
from contract_tests.events import EventFactory, install_event
from contract_tests.judging import (
    SETUP_METHODS,
    ClauseContext,
    ClauseFailed,
    ContractSetupError,
    Control,
    Inconclusive,
    NotApplicable,
    Site,
    last_call_id,
    mapping_path,
)
from contract_tests.masking import Masker
from contract_tests.verdicts import ContractReport, ContractViolation, Exchange, Outcome, Verdict
from mock_portal.errors import MockPortalError, UsageError
from mock_portal.redact import redact, redact_text

if TYPE_CHECKING:
    from mock_portal.delivery import Attempt, Deliverer, Target
    from mock_portal.events import BuiltEvent
    from mock_portal.portal import App, Portal, RestCall
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
_FORM = "application/x-www-form-urlencoded"
_SHOWN_BODY = 400
_SHOWN_ANSWER = 300
_INLINE_CURL_BODY = 4096
_KEPT_BODY = 1 << 20
_PREFIX_BYTES = 2048  # what is kept of a larger body to show
_ANSWER_BYTES = 64 * 1024
_LATENCY_FACTOR = 4.0
_FIRST_CALL_FACTOR = 25.0
_FIRST_CALL_FLOOR = 0.5


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
        self.masker = Masker([config.application_token or ""])
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
        self._exchanges: list[Exchange] = []
        self._site_of: dict[int, Site] = {}
        self._bodies: dict[int, bytes] = {}
        self._answers: dict[int, bytes] = {}
        self._verdicts: dict[str, Verdict] = {}
        self._shared: dict[Any, Any] = {}
        self._controls: dict[str, Control] = {}
        self._silent: set[str] = set()
        self._rechecks: list[tuple[Clause, str, Callable[[], str | None], tuple[Exchange, ...]]] = []
        self._latency = 0.0
        self._setup_methods: set[str] = set(SETUP_METHODS)
        self._async_install: bool | None = None
        self._serials = 0
        self._started: dict[int, float] = {}
        self._secrets_seen: dict[str, int] = {}
        self._early_controls: dict[str, tuple[Site, Exchange, float]] = {}
        self._sites_masked: set[tuple[int, bool]] = set()

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
            self._send_controls(plan)
        for item, event in _judging_order(plan, self.config.events[0]):
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
            return list(self._exchanges)

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
        self._collect_secrets()
        tail = ""
        if outcome == "fail" and self._log_tail is not None:
            try:
                tail = self.masker(self._log_tail())
            except Exception as exc:  # the log is a courtesy: never let it hide the verdict
                tail = f"(could not read the handler log: {type(exc).__name__})"
        shown = tuple(exchanges)
        if outcome == "fail" and self.config.bodies_dir:
            shown = tuple(self._keep_body(ex) for ex in shown)
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
        self._collect_secrets()
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
        self._collect_secrets()
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
                raise ContractSetupError(self._install_failure(ex))
            return
        # whatever the handler calls after answering ONAPPINSTALL is setting up, not an event's work: learn
        # on the first install whether it works on after answering, and give later installs that time too
        if first or self._async_install:
            mark = last_call_id(site.portal)
            self._quiet(site.portal, self.budget())
            late = [c for c in site.portal.calls() if c.id > mark]
            if first:
                self._async_install = bool(late)
            self._setup_methods.update(c.method for c in late)

    def _install_failure(self, ex: Exchange) -> str:
        target = self.install_target
        where = "the install URL" if self.config.install_url else "the handler URL (no install URL given)"
        lines = [
            f"the handler did not accept its installation: ONAPPINSTALL to {where}, "
            f"{ex.url}, was answered {ex.answer}",
            "  the contract installs the app first, as a portal does, and the handler must answer 2xx and "
            "keep the application_token it carries",
            "  to fix it: point the contract at the URL your app handles ONAPPINSTALL at "
            "(--install-url URL, or a path: --install-url /install; pytest: --b24-install-path /install)",
        ]
        if target.kind != "http":
            from urllib.parse import urlsplit

            parts = urlsplit(ex.url)
            lines.append(
                f"  your app is called in process at path {parts.path or '/'}: if it receives events "
                "elsewhere, give its paths (return InProcessApp(app, events='/events', install='/install') "
                "from the b24_handler fixture, or --b24-event-path /events --b24-install-path /install)"
            )
            if ex.status == 400:
                # Django answers 400 to a Host its ALLOWED_HOSTS does not list, before any view runs
                lines.append(
                    f"  a 400 may also be your framework refusing the Host the app is called with, "
                    f"{parts.hostname} (Django's ALLOWED_HOSTS): call it at a host it allows, e.g. "
                    "InProcessApp(app, events='/events', host='localhost')"
                )
        lines.append(
            "  or, if the handler is configured with its application token instead of installing, give it: "
            "--application-token (B24_APPLICATION_TOKEN)"
        )
        return self.masker("\n".join(lines))

    def _collect_secrets(self) -> None:
        """Teach the masker every token the run's portals issued so far (and app tokens and secrets)."""
        found: list[str] = []
        for site in list(self.sites):
            portal = site.portal
            tokens = list(portal.tokens.values())
            seen = self._secrets_seen.get(portal.domain, -1)
            if seen == len(tokens) + len(portal.apps):
                continue
            self._secrets_seen[portal.domain] = len(tokens) + len(portal.apps)
            for app in list(portal.apps.values()):
                found += [app.application_token, app.client_secret]
            for token in tokens:
                found.append(token.access_token)
                if token.refresh_token:
                    found.append(token.refresh_token)
        self.masker.add(*found)
        for site in list(self.sites):
            # a stranger's events carry a made-up token: masked, but echoing it leaks nothing
            key = (id(site), site.installed)
            if key not in self._sites_masked:
                self._sites_masked.add(key)
                self.masker.add(site.events.application_token, leak=site.installed)

    def secret_kind(self, secret: str) -> str:
        """What ``secret`` is, by where the run keeps it."""
        if secret == self.config.application_token:
            return "application_token"
        for site in self.sites:
            portal = site.portal
            for app in list(portal.apps.values()):
                if secret == app.application_token:
                    return "application_token"
                if secret == app.client_secret:
                    return "client_secret"
            if secret in portal.tokens:
                return "access_token"
            if any(t.refresh_token == secret for t in list(portal.tokens.values())):
                return "refresh_token"
        return "a token"

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
        data, auth, name = _body_of(body)
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
        self._collect_secrets()
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
        content_type: str = _FORM,
        generator: str | None = None,
    ) -> Exchange:
        mark = self._before_delivery(site, data) if kind != "install" else last_call_id(site.portal)
        target = self.install_target if kind == "install" else self.target
        started = site.portal.clock.now()
        with warnings.catch_warnings():
            # aiohttp warns that a large bytes body may block its loop; clause 5's is meant to be large
            warnings.filterwarnings("ignore", "Sending a large body directly", ResourceWarning)
            attempt = self._deliverer.deliver(target, data, timeout=self.config.timeout)
        ex = self._record(
            site, attempt, data, label, kind, clause, event, auth, focus, content_type, generator
        )
        site.marks[ex.serial] = mark
        self._started[ex.serial] = started
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
            ex = self._record(
                site, attempt, data, label, kind, ctx.clause.id, ctx.event, event.auth, (), _FORM, None, True
            )
            site.marks[ex.serial] = mark
            self._started[ex.serial] = started
            self._note_token(site, data, ex)
            out.append(ex)
        return out

    def _note_token(self, site: Site, data: bytes, ex: Exchange) -> None:
        token = _access_token(data)
        found = site.portal.tokens.get(token) if token else None
        if found is not None and found.id not in site.tokens:
            site.tokens[found.id] = ex.serial

    def _record(
        self,
        site: Site,
        attempt: Attempt,
        data: bytes,
        label: str,
        kind: str,
        clause: str,
        event: str,
        auth: str,
        focus: Sequence[str],
        content_type: str,
        generator: str | None,
        concurrent: bool = False,
    ) -> Exchange:
        mask = self.masker
        with self._lock:
            self._serials += 1
            serial = self._serials
        answer = getattr(attempt, "response", b"") or b""
        # masked whole, then cut: a token cut in half would escape both the masker and key-based redaction
        shown = mask(answer.decode("utf-8", "replace"))[:_SHOWN_ANSWER] if answer else ""
        ex = Exchange(
            serial=serial,
            label=label,
            url=mask(attempt.target if self.target.kind == "http" else self.install_target.url)
            if kind == "install"
            else mask(self.handler_url),
            sent_bytes=len(data),
            outcome=attempt.outcome,
            status=attempt.status,
            latency_ms=attempt.latency_ms,
            response=mask(shown),
            error=mask(attempt.error) if attempt.error else None,
            views=self._views_of(data, content_type, focus, generator, kind),
            valid=kind == "valid",
            event=event,
            kind=kind,
            clause=clause,
            auth=auth,
            portal=site.domain,
            concurrent=concurrent,
        )
        with self._lock:
            self._exchanges.append(ex)
            self._site_of[serial] = site
            if len(data) <= _KEPT_BODY:
                self._bodies[serial] = data
            if answer:
                self._answers[serial] = bytes(answer)
        site.delivered.append(ex)
        return ex

    def _views_of(
        self, data: bytes, content_type: str, focus: Sequence[str], generator: str | None, kind: str
    ) -> Callable[[], tuple[str, str]]:
        """What builds an exchange's ``sent`` and ``reproduce`` when they are first read, masked with every
        secret known by then. A body too large to keep is seen by its first bytes and its size."""
        mask = self.masker
        size = len(data)
        kept = data if size <= _KEPT_BODY else data[:_PREFIX_BYTES]

        def views() -> tuple[str, str]:
            return (
                mask(_focus_view(kept, content_type, focus, mask, size)),
                mask(self._curl(kept, content_type, generator, kind, size=size)),
            )

        return views

    def answer_of(self, exchange: Exchange) -> bytes:
        """The whole answer to ``exchange`` (see :meth:`ClauseContext.answer_of`)."""
        with self._lock:
            return self._answers.get(exchange.serial, b"")

    def _curl(
        self,
        data: bytes,
        content_type: str,
        generator: str | None,
        kind: str,
        file: str = "",
        size: int | None = None,
    ) -> str:
        """A curl line for ``data`` (of ``size`` bytes in all: ``data`` may be only its first bytes)."""
        size = len(data) if size is None else size
        url = (self.install_target if kind == "install" else self.target).url
        if self.target.kind != "http":
            return "(an in-process handler has no URL to curl: re-run the clause instead)"
        head = f"curl -sS -i -X POST -H {shlex.quote('Content-Type: ' + content_type)}"
        if file:
            return f"{head} --data-binary @{shlex.quote(file)} {shlex.quote(url)}"
        if generator is not None:
            return f"{generator} | {head} --data-binary @- {shlex.quote(url)}"
        if size > _INLINE_CURL_BODY:
            return (
                f"{head} --data-binary @BODY {shlex.quote(url)}  "
                f"(a {size}-byte body; --save-bodies DIR keeps it in a file)"
            )
        masked = self.masker(data.decode("utf-8", "replace"))
        if len(masked) > _INLINE_CURL_BODY or not masked.isprintable():
            return (
                f"{head} --data-binary @BODY {shlex.quote(url)}  "
                f"(a {size}-byte body; --save-bodies DIR keeps it in a file)"
            )
        return f"{head} --data-binary {shlex.quote(masked)} {shlex.quote(url)}"

    def _keep_body(self, ex: Exchange) -> Exchange:
        """Write the exact body of a failing exchange to ``bodies_dir`` (owner-only) and point its curl line
        at that file: a replay with the run's real values that never prints them."""
        import dataclasses

        data = self._bodies.get(ex.serial)
        if data is None or ex.body_file or self.target.kind != "http":
            return ex
        folder = Path(self.config.bodies_dir or ".")
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"{ex.clause or 'exchange'}-{ex.serial}.body"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError as exc:
            raise UsageError(f"cannot keep the failing bodies in {str(folder)!r}: {exc.strerror}") from None
        reproduce = self.masker(self._curl(data, _FORM, None, ex.kind, str(path)))
        sent = ex.sent
        return dataclasses.replace(ex, views=lambda: (sent, reproduce), body_file=str(path))

    # ------------------------------------------------------------------------------------------ waiting

    def budget(self) -> float:
        """The absence budget (see :attr:`ClauseContext.budget`)."""
        return min(max(self.config.settle, _LATENCY_FACTOR * self._latency), self.config.timeout)

    def work_cap(self, event: str) -> float:
        """How long to wait for a valid event's first REST call: one budget once the handler was seen to do
        nothing for this event; once its work latency is known, twenty-five times its slowest work so far, at
        least 0.5 s and at least ``settle`` (a handler slow to start on one event only is given more with
        ``--settle``); the timeout before that. No call within it is inconclusive, never a verdict."""
        if event in self._silent:
            return self.budget()
        if self._latency > 0:
            floor = max(_FIRST_CALL_FLOOR, self.config.settle)
            return min(self.config.timeout, max(floor, _FIRST_CALL_FACTOR * self._latency))
        return self.config.timeout

    def wait_budget(self) -> None:
        """Wait one budget (an absence is judged after it); a closing run ends the wait."""
        self._closed.wait(self.budget())

    def _quiet(self, portal: Portal, budget: float, limit: float | None = None) -> None:
        """Wait until no call has reached ``portal`` for ``budget`` seconds (woken by each call)."""
        deadline = time.monotonic() + (self.config.timeout if limit is None else limit)
        while time.monotonic() < deadline:
            seen = len(portal.rest_calls)
            got = portal.wait_for_calls(count=seen + 1, timeout=budget)
            if len(got) <= seen:
                return

    def work_calls(self, site: Site, after: int | None = None, serial: int | None = None) -> list[RestCall]:
        """Calls at ``site`` that are an event's work (after call id ``after``; those of delivery ``serial``
        only: calls carrying another delivery's token are left out)."""
        start = site.work_from if after is None else after
        if start is None:
            return []
        setup = self._setup_methods
        return [
            c
            for c in site.portal.calls()
            if c.id > start
            and c.method not in setup
            and (serial is None or c.token_id is None or site.tokens.get(c.token_id, serial) == serial)
        ]

    def wait_for_count(self, site: Site, count: int, timeout: float) -> list[RestCall]:
        """Wait (woken by the portal) until ``site`` has ``count`` work calls, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            seen = len(site.portal.rest_calls)
            found = self.work_calls(site)
            remaining = deadline - time.monotonic()
            if len(found) >= count or remaining <= 0 or self._closed.is_set():
                return found
            site.portal.wait_for_calls(count=seen + 1, timeout=remaining)

    def wait_for_work(self, exchange: Exchange) -> list[RestCall]:
        """The calls ``exchange`` caused, waited for (see :meth:`ClauseContext.calls`)."""
        return self.wait_for_works([exchange])[0]

    def wait_for_works(self, exchanges: Sequence[Exchange]) -> list[list[RestCall]]:
        """The calls each of ``exchanges`` caused: for each, wait (woken by its portal) up to the work cap for
        the first; then wait until a whole budget passes with no new call at any of their portals."""
        found: list[list[RestCall]] = []
        for exchange in exchanges:
            site = self._site_of[exchange.serial]
            portal, mark = site.portal, site.marks[exchange.serial]
            deadline = time.monotonic() + self.work_cap(exchange.event)
            while True:
                seen = len(portal.rest_calls)
                calls = self.work_calls(site, mark, exchange.serial)
                remaining = deadline - time.monotonic()
                if calls or remaining <= 0 or self._closed.is_set():
                    break
                portal.wait_for_calls(count=seen + 1, timeout=remaining)
            if not calls:
                self._silent.add(exchange.event)
            found.append(calls)
        portals = list(
            {id(s.portal): s.portal for s in (self._site_of[e.serial] for e in exchanges)}.values()
        )
        if any(found):
            # the first calls came: wait until the work stops (a budget with no new call)
            limit = time.monotonic() + self.config.timeout
            while time.monotonic() < limit and not self._closed.is_set():
                counts = [len(p.rest_calls) for p in portals]
                if len(portals) == 1:
                    portals[0].wait_for_calls(count=counts[0] + 1, timeout=self.budget())
                else:
                    self.wait_budget()
                if [len(p.rest_calls) for p in portals] == counts:
                    break
        out = []
        for exchange in exchanges:
            site = self._site_of[exchange.serial]
            calls = self.work_calls(site, site.marks[exchange.serial], exchange.serial)
            out.append(calls)
            started = self._started.get(exchange.serial)
            if calls and started is not None:
                latency = max(c.at for c in calls) - started
                with self._lock:
                    self._latency = max(self._latency, min(latency, self.config.timeout))
        return out

    def control(self, ctx: ClauseContext, event: str) -> Control:
        """The per-event control (see :meth:`ClauseContext.control`)."""

        def make() -> Control:
            early = self._early_controls.pop(event, None)
            if early is not None and early[1].ok and not self._first_calls(*early, event):
                # silent for the whole work cap after its answer: the same evidence as a control sent now
                self._silent.add(event)
                return Control(self._claim(early[0], early[1], ctx.clause.id), (), self._latency)
            # it led to calls (or was not answered 2xx): they overlapped other clauses' deliveries, so their
            # latency would not be the handler's own; a control sent now measures it as before
            site = ctx.site()
            sent = ctx.deliver(site, ctx.build(site, "user", event=event), label="valid control event")
            found = self.wait_for_work(sent) if sent.ok else []
            return Control(sent, tuple(found), self._latency)

        with self._lock:
            if event not in self._controls:
                self._controls[event] = make()
            return self._controls[event]

    def _send_controls(self, plan: Sequence[tuple[Clause, str]]) -> None:
        """Deliver the control event (see :meth:`control`) of every declared event after the first that has a
        verdict to judge, before any clause runs. A handler that does nothing for an event gets the same time
        to show it as when the control is sent on demand, but that time passes while the clauses of the
        events before it run. Each control is a valid event on a site of its own: its calls are told apart
        by portal, as always. The first event's control is sent on demand, as it was (its clauses come
        first, so there is nothing to overlap), and a run of one event is unchanged."""
        from mock_portal.events import event_spec

        if self._early_controls or self._controls:
            return
        events, install_flow = self.config.events, self.config.install_flow
        for event in events[1:]:
            if not any(e == event and c.not_applicable(events, install_flow) is None for c, e in plan):
                continue
            site = self.new_site()
            modes = tuple(event_spec(event).auth_modes)
            auth = "user" if "user" in modes else modes[0]
            if event == _SESSION_START:
                built = site.events.session_start(auth=auth, shape=self.config.shapes[0])
            else:
                built = site.events.event(event, auth=auth)
            data, auth, _ = _body_of(built)
            sent = self._send(
                site, data, "valid control event", kind="valid", clause="", event=event, auth=auth
            )
            self._early_controls[event] = (site, sent, time.monotonic())

    def _first_calls(self, site: Site, sent: Exchange, answered: float, event: str) -> list[RestCall]:
        """The calls an early control caused, waited for (woken by its portal) until the work cap has passed
        since its answer; nothing is learnt from them (see :meth:`control`)."""
        deadline = answered + self.work_cap(event)
        while True:
            seen = len(site.portal.rest_calls)
            calls = self.work_calls(site, site.marks[sent.serial], sent.serial)
            remaining = deadline - time.monotonic()
            if calls or remaining <= 0 or self._closed.is_set():
                return calls
            site.portal.wait_for_calls(count=seen + 1, timeout=remaining)

    def _claim(self, site: Site, sent: Exchange, clause_id: str) -> Exchange:
        """Label an early control (and its site's install) with the clause that asked for it first, as if
        that clause had sent it."""
        import dataclasses

        with self._lock:
            swapped: dict[int, Exchange] = {}
            for ex in (sent, site.install):
                if ex is not None and not ex.clause:
                    swapped[ex.serial] = dataclasses.replace(ex, clause=clause_id)
            self._exchanges = [swapped.get(ex.serial, ex) for ex in self._exchanges]
            site.delivered[:] = [swapped.get(ex.serial, ex) for ex in site.delivered]
            if site.install is not None:
                site.install = swapped.get(site.install.serial, site.install)
            return swapped.get(sent.serial, sent)


# ------------------------------------------------------------------------------------------------ helpers


def _judging_order(plan: Sequence[tuple[Clause, str]], first: str) -> list[tuple[Clause, str]]:
    """The order verdicts are judged in (reports keep the plan's order): the first declared event's clauses,
    then the other events' clauses, then the clauses that judge the run's deliveries (clause 7). The other
    events' controls were sent before any clause ran (:meth:`ContractRun._send_controls`), so the time an
    event the handler ignores needs to show that it led to no call passes while the first event's clauses
    run, not on top of them. Only the order changes: every verdict rests on the same evidence."""
    body = [p for p in plan if not p[0].last]
    firsts = [p for p in body if p[1] == first]
    return firsts + [p for p in body if p[1] != first] + [p for p in plan if p[0].last]


def _body_of(body: Any) -> tuple[bytes, str, str]:
    """(bytes, auth mode, event name) of what a clause delivers."""
    if isinstance(body, bytes):
        return body, "", ""
    if isinstance(body, str):
        return body.encode("utf-8"), "", ""
    text = body.body()
    return text.encode("utf-8"), str(body.auth), str(body.event)


def _access_token(data: bytes) -> str | None:
    marker = b"auth%5Baccess_token%5D="
    at = data.find(marker)
    if at < 0:
        return None
    end = data.find(b"&", at)
    value = data[at + len(marker) : end if end >= 0 else len(data)]
    return value.decode("ascii", "replace") or None


def _focus_view(
    data: bytes,
    content_type: str,
    focus: Sequence[str],
    mask: Callable[[str], str] = redact_text,
    size: int | None = None,
) -> str:
    """The part of a body that matters: the event, the auth block and the focused ``data`` paths (or a short
    ``data`` excerpt); for a body that is not a form, its first bytes. ``size``: the whole body's length,
    when ``data`` is only its first bytes."""
    size = len(data) if size is None else size
    import json

    from mock_portal.errors import WireError
    from mock_portal.wire import decode

    payload: Mapping[str, Any] | None = None
    if content_type.startswith(_FORM) and data and data[:1] != b"{" and size <= _KEPT_BODY:
        try:
            decoded = decode(data)
        except (WireError, UnicodeDecodeError, ValueError):
            decoded = None
        if isinstance(decoded, Mapping) and "event" in decoded:
            payload = decoded
    if payload is None:
        # masked, then cut (a prefix well past any token's length is enough for 120 characters)
        head = mask(data[:2048].decode("utf-8", "backslashreplace"))[:120]
        more = f" ... ({size} bytes in all)" if size > 120 else ""
        kind = "JSON" if data[:1] == b"{" else ("empty" if not data else "not a form")
        return f"body ({kind}): {head!r}{more}"

    def compact(value: Any, limit: int = _SHOWN_BODY) -> str:
        # masked whole, then cut (a token cut in half would escape the masker)
        text = mask(json.dumps(redact(value), ensure_ascii=False, separators=(", ", ": ")))
        return text if len(text) <= limit else text[: limit - 3] + "..."

    auth = payload.get("auth")
    mode = "user mode" if isinstance(auth, Mapping) and "access_token" in auth else "system mode"
    lines = [f"event: {payload.get('event')} ({mode})"]
    handler_id = payload.get("event_handler_id")
    lines.append(f"event_handler_id: {handler_id if handler_id is not None else '(absent)'}")
    lines.append(f"auth: {compact(auth, 2 * _SHOWN_BODY)}")
    for path in focus or ("data",):
        value = mapping_path(payload, path)
        lines.append(f"{path}: {compact(value) if value is not None else '(absent)'}")
    return "\n".join(lines)


def install_handler(
    portal: Portal,
    handler: object,
    *,
    install_url: str | None = None,
    application_token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[App, list[Attempt]]:
    """Install an app on ``portal`` and let the handler know it, as a portal would.

    With no ``application_token``: ONAPPINSTALL (with the app's tokens) is POSTed to ``install_url`` (the
    handler itself by default; a path is taken on the handler's URL), the way the handler learns its token.
    With one: the app is created silently and given that token, for handlers configured with it. An
    in-process handler gets its URL routed on the portal. Returns the app and the install attempts.
    """
    _, install_url = app_paths(handler, None, install_url, application_token is None, ("", "install_url"))
    target = resolve_target(handler)
    if target.kind != "http":
        portal.route(route_prefix(target), target)
    if application_token is None:
        where = install_target(target, install_url).url
        app, _, attempts = portal.install_app(where, timeout=timeout)
        return app, list(attempts)
    app, _, _ = portal.install_app(None)
    app.application_token = application_token
    return app, []


def settled_calls(
    portals: Portal | Iterable[Portal],
    *,
    settle: float = DEFAULT_SETTLE,
    limit: float = 30.0,
    count: int = 0,
) -> list[RestCall]:
    """Wait until ``portals`` hold at least ``count`` REST calls (woken by each, for at most ``limit``
    seconds), then until no new call reaches them for ``settle`` seconds; return every call they recorded,
    oldest first per portal. Give ``count`` when calls are expected: the first may take longer than
    ``settle`` on a busy machine."""
    from mock_portal.portal import Portal

    group = [portals] if isinstance(portals, Portal) else list(portals)
    deadline = time.monotonic() + limit
    while sum(len(p.rest_calls) for p in group) < count and time.monotonic() < deadline:
        have = len(group[0].rest_calls)
        others = sum(len(p.rest_calls) for p in group[1:])
        group[0].wait_for_calls(
            count=max(have + 1, count - others),
            timeout=min(settle, deadline - time.monotonic())
            if len(group) > 1
            else deadline - time.monotonic(),
        )
    quiet_since = time.monotonic()
    counts = [len(p.rest_calls) for p in group]
    while time.monotonic() < deadline:
        left = settle - (time.monotonic() - quiet_since)
        if left <= 0:
            break
        # woken by the first portal's condition; the others are looked at after each wake
        group[0].wait_for_calls(count=counts[0] + 1, timeout=left)
        now = [len(p.rest_calls) for p in group]
        if now != counts:
            counts, quiet_since = now, time.monotonic()
    return [call for p in group for call in p.calls()]
