"""The helpers every clause judges with, built in or yours: portals, events, deliveries, the REST calls an
event caused, and the verdict.

A clause function gets a :class:`ClauseContext`::

    def greets_in_own_chat(ctx):
        site = ctx.site()                      # a fresh portal where the handler is installed
        event = ctx.build(site)                # a valid event of the clause's event, from that portal
        sent = ctx.deliver(site, event)        # one POST, on a fresh connection, as the portal sends it
        calls = ctx.calls(sent)                # the REST calls it caused (waits for them; none: inconclusive)
        assert any(c.method == "im.message.add" for c in calls), "no greeting"

How a REST call is attributed to the delivery that caused it, never by arrival time: each site is a portal of
its own, so a call belongs to the site whose portal it reached, and among a site's deliveries to the one whose
``access_token`` it carried (``RestCall.token_id``). Calls the handler makes to set itself up (everything it
called on install, and methods such as ``event.bind``) are not work caused by an event. Every portal of a run
stays reachable until the run ends, so a call sent to a stale ``client_endpoint`` is recorded too: a call
carrying a token that the portal it reached never issued is evidence of a misrouted call.

How long the contract waits: for a valid event's first call, up to the delivery timeout (woken by the portal
the moment a call is recorded; once the handler's work latency is known, twenty-five times it, at least 0.5 s
and at least ``settle``); then until no call has followed for a budget that grows with the handler's measured
work latency (at least ``settle``). To see that an event caused *no* call, it waits one budget: a call that
arrives later still counts, because :meth:`ClauseContext.recheck` looks again at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from mock_portal.errors import UsageError

if TYPE_CHECKING:
    from contract_tests.clauses import Clause
    from contract_tests.config import ContractConfig
    from contract_tests.engine import ContractRun
    from contract_tests.events import EventFactory
    from contract_tests.verdicts import Exchange
    from mock_portal.events import BuiltEvent
    from mock_portal.portal import App, Portal, RestCall

__all__ = [
    "SETUP_METHODS",
    "SYSTEM_MODE_NOTE",
    "ClauseContext",
    "ClauseFailed",
    "ContractSetupError",
    "Control",
    "Inconclusive",
    "NotApplicable",
    "Site",
]

T = TypeVar("T")

SETUP_METHODS = frozenset(
    {
        "app.info",
        "app.option.get",
        "app.option.set",
        "event.bind",
        "event.get",
        "event.unbind",
        "imbot.register",
        "imconnector.activate",
        "imconnector.connector.data.set",
        "imconnector.register",
        "imconnector.status",
        "methods",
        "placement.bind",
        "profile",
        "scope",
        "server.time",
        "user.admin",
        "user.current",
    }
)
"""REST methods a handler calls to set itself up (on install or lazily): never counted as an event's work.
With them, whatever a handler called on install at any portal of the run is not counted either."""

CONCEPTS = "README.md#concepts-in-five-minutes"
SYSTEM_MODE_NOTE = (
    "in system mode (a connector or an automation caused the event, no user) the auth block has no "
    "access_token: call REST with the token stored from ONAPPINSTALL, refreshed when it expires; "
    f"user mode carries the user's own access_token (see the README, 'Concepts in five minutes': {CONCEPTS})"
)


# ------------------------------------------------------------------------------------------------ outcomes


class ClauseFailed(AssertionError):
    """Raised by :meth:`ClauseContext.fail`: the handler broke the clause (so does a failed ``assert``)."""

    def __init__(self, reason: str, exchanges: Sequence[Exchange] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exchanges = tuple(exchanges)


class Inconclusive(Exception):
    """Raised by :meth:`ClauseContext.inconclusive`: no evidence either way (never a pass, never a fail)."""

    def __init__(self, reason: str, exchanges: Sequence[Exchange] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exchanges = tuple(exchanges)


class NotApplicable(Exception):
    """Raised by :meth:`ClauseContext.skip`: the clause does not apply to this handler's configuration."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ContractSetupError(UsageError):
    """The run cannot start: the handler did not accept its installation (a hard error, never a verdict)."""


# ------------------------------------------------------------------------------------------------ records


@dataclass
class Site:
    """A portal of the run: its app, an event factory bound to them, and what was delivered there.

    ``installed`` says whether the handler knows this portal (ONAPPINSTALL answered 2xx, or a configured
    token); a *stranger* never told the handler about itself.
    """

    portal: Portal
    app: App
    events: EventFactory
    installed: bool = True
    install: Exchange | None = None
    work_from: int | None = None
    """Call ids above this are an event's work (set at the first event delivered here)."""
    delivered: list[Exchange] = field(default_factory=list)
    tokens: dict[int, int] = field(default_factory=dict)
    """``token_id`` of an access token an event here carried -> the serial of that delivery."""
    marks: dict[int, int] = field(default_factory=dict)
    """Delivery serial -> the last call id recorded at this portal before it."""
    generated: bool = False
    """Its events are generated from the schemas (fuzzing): their made-up values (a mangled access token, a
    chat the portal never held) are no evidence for the other clauses, so its calls are left out of them."""

    @property
    def domain(self) -> str:
        """The portal's domain."""
        return self.portal.domain


@dataclass(frozen=True)
class Control:
    """What one valid user-mode event led to: the REST calls it caused and how long the work took; the site
    it went to and the event (clause 6 delivers it there again), when the contract built it here."""

    exchange: Exchange
    calls: tuple[RestCall, ...]
    latency: float
    site: Site | None = None
    event: BuiltEvent | None = None

    @property
    def silent(self) -> bool:
        """No REST call followed a valid event: nothing to compare an absence with."""
        return not self.calls

    @property
    def methods(self) -> str:
        """The methods called, e.g. ``im.message.add``."""
        return ", ".join(sorted({c.method for c in self.calls}))


def last_call_id(portal: Portal) -> int:
    """The id of the newest call recorded at ``portal`` (0 for none)."""
    calls = portal.rest_calls
    return calls[-1].id if calls else 0


def carries_foreign_token(call: RestCall) -> bool:
    """The call carried an access token the portal it reached never issued (it reached the wrong portal, or
    used a token of another portal)."""
    return call.token is not None and call.token_id is None


# ------------------------------------------------------------------------------------------------ the context


class ClauseContext:
    """What a clause judges with; one per verdict (``clause`` for ``event``). See the module docstring."""

    def __init__(self, run: ContractRun, clause: Clause, event: str) -> None:
        self._run = run
        self.clause = clause
        self.event = event
        self.notes: list[str] = []

    @property
    def config(self) -> ContractConfig:
        """The run's configuration."""
        return self._run.config

    # ---------------------------------------------------------------------------------------- portals

    def site(self) -> Site:
        """A fresh portal whose app the handler knows (ONAPPINSTALL to its install URL, or the configured
        token); only this clause delivers there, so every REST call it records is this clause's evidence."""
        return self._run.new_site(self.clause.id)

    def stranger(self, *, application_token: str | None = None) -> Site:
        """A fresh portal the handler never heard of: the app exists there (its tokens work) but no
        ONAPPINSTALL was sent. Its events carry ``application_token`` (default: a random one, or the
        configured token when the handler is bound to one member_id)."""
        return self._run.new_stranger(application_token)

    def sites(self) -> list[Site]:
        """Every portal of the run so far."""
        return self._run.sites

    @property
    def handler_url(self) -> str:
        """Where events go: the URL a binding made for the handler points at (``site.portal.bind(...)``);
        every portal of the run routes an in-process handler's URL to it."""
        return self._run.handler_url

    # ---------------------------------------------------------------------------------------- events

    def auth_modes(self, event: str | None = None) -> tuple[str, ...]:
        """The auth modes ``event`` (default: the clause's) comes in: ``user``, ``system`` or both."""
        from mock_portal.events import event_spec

        return tuple(event_spec(event or self.event).auth_modes)

    def build(
        self, site: Site, auth: str = "user", *, event: str | None = None, **options: Any
    ) -> BuiltEvent:
        """A valid event (default: the clause's event) from ``site``'s real state: a new session, a message
        the portal holds, a fresh access token in user mode. OnSessionStart uses the first configured shape
        unless ``shape=`` says otherwise. ``auth="system"`` falls back to user mode for user-only events.
        Other options go to :meth:`~contract_tests.events.EventFactory.event` (``overrides``,
        ``event_handler_id``, ``line_name``, ``message_text``; for OnSessionStart also ``items`` and
        ``connector_id``)."""
        name = (event or self.event).upper()
        modes = self.auth_modes(name)
        if auth not in modes:
            auth = modes[0]
        if name == "ONSESSIONSTART":
            options.setdefault("shape", self.config.shapes[0])
            return site.events.session_start(auth=auth, **options)
        return site.events.event(name, auth=auth, **options)

    # ---------------------------------------------------------------------------------------- delivery

    def deliver(
        self,
        site: Site,
        body: BuiltEvent | str | bytes,
        *,
        label: str | None = None,
        kind: str = "valid",
        focus: Sequence[str] = (),
        content_type: str = "application/x-www-form-urlencoded",
        generator: str | None = None,
    ) -> Exchange:
        """POST ``body`` (an event, or raw form text/bytes) to the handler once, on a fresh connection, as the
        portal does; return the :class:`~contract_tests.verdicts.Exchange` (masked). ``kind``: ``valid``,
        ``forged``, ``repeat``, ``unknown-portal``, ``malformed``, ``probe`` or ``fuzz`` (a generated
        event): what clause 7 and the reports count it as. ``focus``: the ``data`` paths the report shows
        (``data.DATA.0.line.name``)."""
        return self._run.deliver(
            self,
            site,
            body,
            label=label,
            kind=kind,
            focus=focus,
            content_type=content_type,
            generator=generator,
        )

    def deliver_concurrently(
        self, site: Site, items: Sequence[tuple[str, BuiltEvent]], *, kind: str = "valid"
    ) -> list[Exchange]:
        """Deliver every ``(label, event)`` at once, each on its own connection (a burst); clause 7 never
        times these."""
        return self._run.deliver_concurrently(self, site, items, kind=kind)

    # ---------------------------------------------------------------------------------------- observation

    @property
    def budget(self) -> float:
        """Seconds waited to see that an event caused no REST call: ``settle``, or four times the slowest work
        latency measured so far, whichever is longer (never more than the timeout)."""
        return self._run.budget()

    def calls(self, exchange: Exchange, *, required: bool = True) -> list[RestCall]:
        """The REST calls ``exchange`` caused: waits (woken by the portal) up to the timeout for the first,
        then until none has followed for a budget. With none, ``required`` makes the clause inconclusive
        (a handler that does nothing for a valid event leaves nothing to judge); otherwise ``[]``."""
        found = self._run.wait_for_work(exchange)
        if not found and required:
            self.inconclusive(
                f"no REST call followed '{exchange.label}' within {self._run.work_cap(exchange.event):g} s, "
                "so there is nothing to judge",
                [exchange],
            )
        return found

    def calls_of(self, exchanges: Sequence[Exchange]) -> list[list[RestCall]]:
        """:meth:`calls` for several deliveries at once (one wait for all of them to go quiet); an empty list
        for each that led to none."""
        return self._run.wait_for_works(exchanges)

    def calls_at(self, *sites: Site) -> list[RestCall]:
        """Every REST call recorded so far at ``sites`` that is an event's work (not setting up), oldest
        first per site. Nothing waits: call :meth:`settle` first to give late work its budget."""
        return [call for site in sites for call in self._run.work_calls(site)]

    def wait_for_work_calls(self, site: Site, count: int, timeout: float | None = None) -> list[RestCall]:
        """Wait, woken by the portal, until ``site`` has at least ``count`` work calls (or ``timeout``,
        default the run's timeout, passes); return them."""
        return self._run.wait_for_count(site, count, self.config.timeout if timeout is None else timeout)

    def settle(self, since: float | None = None) -> None:
        """Wait one budget (see :attr:`budget`): the time an event's work is given to show up. ``since`` (a
        ``time.monotonic()`` value, taken after the last delivery to judge) counts the budget from then, so
        time spent meanwhile on other work (a control's) is not waited twice."""
        self._run.wait_budget(since)

    def control(self) -> Control:
        """One valid user-mode event of the clause's event on a site of its own, and the REST calls it led to
        (done once per event and run, shared by every clause that compares an absence with it)."""
        return self._run.control(self, self.event)

    def misrouted_calls(self) -> list[RestCall]:
        """Every call of the run, at any portal, that carried a token the portal it reached never issued (the
        portals of generated events left out: their tokens may be mangled on purpose)."""
        return [
            c
            for site in self._run.sites
            if not site.generated
            for c in site.portal.calls()
            if carries_foreign_token(c)
        ]

    def exchanges(
        self, *, kinds: Iterable[str] | None = None, concurrent: bool | None = None
    ) -> list[Exchange]:
        """The run's deliveries of the clause's event so far (of ``kinds``; burst ones or not)."""
        wanted = set(kinds) if kinds is not None else None
        return [
            ex
            for ex in self._run.exchanges
            if ex.event == self.event
            and (wanted is None or ex.kind in wanted)
            and (concurrent is None or ex.concurrent == concurrent)
        ]

    def installs(self) -> list[Exchange]:
        """Every ONAPPINSTALL delivery of the run."""
        return [ex for ex in self._run.exchanges if ex.kind == "install"]

    def answer_of(self, exchange: Exchange) -> bytes:
        """The whole answer to ``exchange`` as received (up to 64 KiB), secrets included: inspect it, never
        print it (reports quote the masked ``exchange.response``)."""
        return self._run.answer_of(exchange)

    def secrets_in(self, data: bytes | str) -> list[str]:
        """The run's secrets found in ``data`` in any encoding (raw, hex, percent-encoded, base64)."""
        return self._run.masker.found_in(data)

    def mask(self, text: str) -> str:
        """``text`` with every secret of the run masked, in any encoding (mask whole texts, then cut them:
        a token cut in half escapes the masker)."""
        return self._run.masker(text)

    def secret_kind(self, secret: str) -> str:
        """What ``secret`` is: an access, refresh or application token, or a client secret."""
        return self._run.secret_kind(secret)

    # ---------------------------------------------------------------------------------------- sharing

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` once per run and event for ``key``; later calls (from any clause) get the same value.
        Clauses that judge the same deliveries differently (3a and 3b) share them this way."""
        found: T = self._run.shared((key, self.event), make)
        return found

    def recheck(self, look: Callable[[], str | None], exchanges: Sequence[Exchange] = ()) -> None:
        """Register a second look at the end of the run: ``look()`` returns a failure reason if late evidence
        arrived (a call after a forged event that came after the wait), else ``None``."""
        self._run.add_recheck(self.clause, self.event, look, tuple(exchanges))

    # ---------------------------------------------------------------------------------------- verdicts

    def note(self, text: str) -> None:
        """Add an explanation to the verdict (shown under its reason)."""
        if text not in self.notes:
            self.notes.append(text)

    def explain_modes(self, exchanges: Iterable[Exchange]) -> None:
        """Explain user versus system mode when a system-mode delivery is among ``exchanges``."""
        if any(ex.auth == "system" for ex in exchanges):
            self.note(SYSTEM_MODE_NOTE)

    def fail(self, reason: str, exchanges: Sequence[Exchange] = ()) -> NoReturn:
        """The handler broke the clause: ``reason`` in one line, ``exchanges`` as the evidence."""
        raise ClauseFailed(reason, exchanges)

    def inconclusive(self, reason: str, exchanges: Sequence[Exchange] = ()) -> NoReturn:
        """No evidence either way (reported, never a pass or a fail)."""
        raise Inconclusive(reason, exchanges)

    def skip(self, reason: str) -> NoReturn:
        """The clause does not apply to this handler's configuration."""
        raise NotApplicable(reason)


def describe_answers(exchanges: Iterable[Exchange]) -> str:
    """``label -> status`` for each exchange, comma-separated."""
    return ", ".join(f"{ex.label} -> {ex.short}" for ex in exchanges)


def mapping_path(payload: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in a decoded payload (list items by index), or ``None``."""
    node: Any = payload
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node
