"""Fuzzing a handler: events generated from the schemas with hypothesis, each delivered over real HTTP as the
portal sends it, and a failure shrunk to a minimal event.

::

    mock-portal verify http://127.0.0.1:8080/events --install-url /install --fuzz 200
    python -m pytest --pyargs contract_tests --b24-handler-url ... --b24-fuzz 200

The ``survives-fuzzing`` clause (:mod:`contract_tests.clauses.fuzzing`) runs :func:`fuzz` once per declared
event when a run asks for it (``ContractConfig(fuzz=N)``); the CLI and the pytest plugin only set that number
and its seed. What it sends (:func:`cases`), N events per declared event:

- valid events of the event's shapes (for OnSessionStart, the shapes the run checks) in the auth modes the
  event comes in, with every optional field on and off, boundary ids, unicode and the characters the form
  encoding escapes, several ``DATA`` items (:func:`mock_portal.strategies.payloads`);
- near-valid events, one change away from a valid one: a missing required key, a non-numeric id, a wrong
  type, an empty string, a flag out of its set (:func:`mock_portal.strategies.mutations`).

Every event carries the values of a portal where the handler is installed (domain, member_id,
application_token, endpoints, a live access token in user mode), so it gets past the handler's checks to the
code that reads its data. That portal's REST calls are no evidence for other clauses: its events hold ids the
portal never issued, and mutations mangle tokens on purpose.

What fails (one kind per exception type, so hypothesis tells the bugs apart): an answer of 500 or more, no
answer within the timeout (a hang), a connection dropped without an answer or a handler that stops accepting
connections (a crash), an answer carrying a secret of the run in any encoding (an echo). Any answer below 500
passes, to valid and near-valid events alike: a handler may refuse what it does not understand.

Deterministic: hypothesis runs with a fixed seed (``fuzz_seed``, shown in the verdict), no example database,
no deadline and no health checks, so the same seed sends the same events and a handler that answers the same
way gets the same shrunk example (for the same code: hypothesis also draws on the constants of the modules it
finds outside site-packages, such as a project's own tests; everything a run needs is imported before its
first event is drawn).

A handler that is down cannot be shrunk against: a crash is shown as generated; so are hangs after
:data:`MAX_HANGS` of them (each costs a whole timeout). Shrinking stops after as many attempts as events were
asked for (at least :data:`MIN_SHRINK_BUDGET`), with the smallest event so far: each attempt draws a whole
event, and many are thrown away before delivery (a change that does not fit).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from contract_tests.judging import ClauseContext, Site
    from contract_tests.verdicts import Exchange

__all__ = [
    "FAILURE_KINDS",
    "MAX_HANGS",
    "Case",
    "Finding",
    "FuzzResult",
    "cases",
    "fuzz",
    "kept_values",
    "run_fuzz",
]

FAILURE_KINDS: Final = ("5xx", "hang", "crash", "echo")
"""What a generated event may not lead to."""
MAX_HANGS: Final = 3
"""Hung deliveries after which shrinking stops (each one costs a whole timeout)."""
MIN_SHRINK_BUDGET: Final = 50
"""Shrinking stops after ``max(N, MIN_SHRINK_BUDGET)`` attempts (a count, never a time, so the same seed shows
the same event on any machine); the event shown is the smallest found by then."""
MAX_ITEMS: Final = 3
"""The most items a generated list (``data[DATA]``, ``data[MESSAGES]``) gets."""
_SHOWN_EVENT: Final = 2000
_SHOWN_FIELDS: Final = 5
_EVENT: Final = "{event}"
_ENVELOPE: Final = frozenset({"event", "event_handler_id", "eventId", "ts", "auth"})
_INDEX: Final = re.compile(r"\[(\d+)\]")


# ------------------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class Case:
    """One generated event: ``kind`` is ``valid`` or the mutation's kind, ``path`` the JSON path changed."""

    event: str
    shape: str
    kind: str
    path: str
    payload: dict[str, Any] = field(repr=False)

    @property
    def valid(self) -> bool:
        """A valid event (no mutation)."""
        return self.kind == "valid"

    @property
    def mode(self) -> str:
        """``user mode`` (the auth block carries an access token) or ``system mode``."""
        auth = self.payload.get("auth")
        return "user mode" if isinstance(auth, Mapping) and "access_token" in auth else "system mode"

    def describe(self) -> str:
        """``a valid ONSESSIONSTART (docs-2026, user mode)``, ``a near-valid ... (non-numeric-id at $.x)``."""
        shape = "" if self.shape == "any" else f"{self.shape}, "
        if self.valid:
            return f"a valid {self.event} ({shape}{self.mode})"
        return f"a near-valid {self.event} ({self.kind} at {self.path}, {shape}{self.mode})"

    def focus(self) -> tuple[str, ...]:
        """The ``data`` paths a report shows: the changed one, or ``data``."""
        if self.valid or not self.path.startswith("$.") or self.path.startswith("$.auth"):
            return ("data",)
        return (_INDEX.sub(r".\1", self.path[2:]),)


def cases(
    event: str,
    context: Mapping[str, Any],
    *,
    shapes: Sequence[str] = ("any",),
    auth: str | None = None,
    max_items: int = MAX_ITEMS,
) -> SearchStrategy[Case]:
    """Valid and near-valid ``event`` events of ``shapes`` carrying ``context`` (see
    :mod:`mock_portal.strategies`): two in seven valid, the others near-valid, each kind of change as likely
    as the others, each shape as likely as the others; shrinking goes toward a valid event of the first
    shape."""
    from hypothesis import strategies as st

    from mock_portal.strategies import MUTATION_KINDS, mutations, payloads

    def valid(shape: str) -> SearchStrategy[Case]:
        # drawn as a mutation's base is (no unknown keys: clause 2 sends those), so a near-valid failure
        # shrinks to the valid event it came from when the change does not matter
        made = payloads(event, shape, auth=auth, max_items=max_items, context=context)
        return made.map(lambda p: Case(str(p["event"]), shape, "valid", "", p))

    def near_valid(shape: str, kind: str) -> SearchStrategy[Case]:
        made = mutations(event, shape, kinds=[kind], auth=auth, max_items=max_items, context=context)
        cases = made.map(lambda m: Case(m.event, shape, m.kind, m.path, m.payload))
        # half of them changed inside ``data``, where the handler's own logic reads (a broken auth block is
        # mostly refused at the door, and clauses 3 and 4 judge that door already)
        return st.one_of(cases.filter(lambda c: c.path.startswith("$.data")), cases)

    valid_any = st.one_of([valid(s) for s in shapes])
    near = {kind: st.one_of([near_valid(s, kind) for s in shapes]) for kind in MUTATION_KINDS}
    # two in seven valid, the rest one kind of change each, whatever the number of shapes; "valid" first, so
    # shrinking goes toward a valid event
    categories = ("valid", "valid", *MUTATION_KINDS)

    @st.composite
    def either(draw: Any) -> Case:
        category = draw(st.sampled_from(categories))
        found: Case = draw(valid_any if category == "valid" else near[category])
        return found

    return either()


# ------------------------------------------------------------------------------------------------ findings


@dataclass(frozen=True)
class Finding:
    """A generated event that failed: what came back (``exchange``, masked) and why (``kind`` of
    :data:`FAILURE_KINDS`, ``problem`` in words, where ``{event}`` stands for the event's description);
    ``number`` counts the fuzzing run's deliveries."""

    case: Case
    exchange: Exchange
    kind: str
    problem: str
    number: int

    def describe(self) -> str:
        """``problem`` with the event described: ``answered 500 to a valid ONSESSIONSTART (...)``."""
        return self.problem.replace(_EVENT, self.case.describe())


class _Failed(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.problem)
        self.finding = finding


class _ServerError(_Failed):
    pass


class _Hang(_Failed):
    pass


class _Dropped(_Failed):
    pass


class _Echo(_Failed):
    pass


_RAISED: Final[dict[str, type[_Failed]]] = {
    "5xx": _ServerError,
    "hang": _Hang,
    "crash": _Dropped,
    "echo": _Echo,
}


class _Stop(BaseException):
    """Ends the hypothesis run at once (a ``BaseException``: hypothesis does not take it for a failure);
    ``unsure``: there is no evidence either way (the handler was down before fuzzing sent anything)."""

    def __init__(self, reason: str, *, unsure: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsure = unsure


@dataclass
class FuzzResult:
    """What a fuzzing run of one event found. ``minimal`` is the failure to show (``None``: none);
    ``shrunk`` says whether hypothesis shrank it, ``why_not`` why not, ``cut_short`` why shrinking stopped
    before hypothesis was done; ``unsure``: no evidence either way (a reason and the delivery)."""

    event: str
    count: int
    seed: int
    delivered: int = 0
    valid: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    minimal: Finding | None = None
    shrunk: bool = False
    why_not: str = ""
    cut_short: str = ""
    unsure: tuple[str, Exchange] | None = None

    def summary(self) -> str:
        """One line: how many events, of which kind, and what came back."""
        answers = ", ".join(f"{k} x{n}" for k, n in sorted(self.answers.items()))
        return (
            f"{self.delivered} generated {self.event} events ({self.valid} valid, "
            f"{self.delivered - self.valid} near-valid; answers: {answers or 'none'}) with no 5xx, hang, "
            f"dropped connection or echoed secret (seed {self.seed})"
        )


class _Fuzzer:
    """Delivers each case hypothesis draws and judges the answer; keeps every failure."""

    def __init__(self, ctx: ClauseContext, site: Site, result: FuzzResult) -> None:
        self.ctx = ctx
        self.site = site
        self.result = result
        self.previous: tuple[Case, Exchange, int] | None = None
        self.hangs = 0
        self.budget = max(result.count, MIN_SHRINK_BUDGET)
        self.attempts = 0
        self.first_failure_at = 0

    def tick(self) -> None:
        """Count an attempt: each run of the test, whether its event is delivered or thrown away while it is
        drawn (never raises: hypothesis takes an exception while drawing for a strategy that misbehaves)."""
        self.attempts += 1

    def attempt(self, case: Case) -> None:
        from mock_portal.wire import encode

        result = self.result
        if self.first_failure_at and self.attempts - self.first_failure_at > self.budget:
            result.cut_short = f"shrinking stopped after its budget of {self.budget} attempts"
            raise _Stop(result.cut_short)
        result.delivered += 1
        number = result.delivered
        result.valid += case.valid
        ex = self.ctx.deliver(
            self.site,
            encode(case.payload),
            label=f"generated event {number}: {case.describe()}",
            kind="fuzz",
            focus=case.focus(),
        )
        result.answers[ex.short] += 1
        previous, self.previous = self.previous, (case, ex, number)
        if ex.outcome == "refused":
            # the handler was up (it took its install): it went down at or after the previous event
            if previous is None:
                result.unsure = (
                    f"the handler refused the connection of the first generated event ({ex.answer}), before "
                    "fuzzing had sent it anything",
                    ex,
                )
                raise _Stop("the handler was down", unsure=True)
            case, before, number = previous
            result.findings.append(Finding(case, before, "crash", _went_down(before), number))
            raise _Stop("the handler stopped accepting connections, so nothing could be shrunk against it")
        finding = self._judge(case, ex, number)
        if finding is None:
            return
        result.findings.append(finding)
        self.first_failure_at = self.first_failure_at or self.attempts
        if finding.kind == "hang":
            self.hangs += 1
            if self.hangs >= MAX_HANGS:
                raise _Stop(f"shrinking stopped after {MAX_HANGS} hung deliveries (each takes the timeout)")
        raise _RAISED[finding.kind](finding)

    def _judge(self, case: Case, ex: Exchange, number: int) -> Finding | None:
        ctx = self.ctx
        if ex.outcome == "timeout":
            return Finding(
                case, ex, "hang", f"gave no answer within {ctx.config.timeout:g} s to {_EVENT}", number
            )
        if ex.outcome == "reset":
            dropped = f"dropped the connection without an answer ({ex.answer}) to {_EVENT}"
            return Finding(case, ex, "crash", dropped, number)
        if ex.status is not None and ex.status >= 500:
            return Finding(case, ex, "5xx", f"answered {ex.status} to {_EVENT}", number)
        hits = ctx.secrets_in(ctx.answer_of(ex))
        if hits:
            kinds = ", ".join(sorted({ctx.secret_kind(h) for h in hits}))
            echoed = f"echoed the run's {kinds} in its answer ({ex.short}) to {_EVENT}"
            return Finding(case, ex, "echo", echoed, number)
        return None


def _went_down(ex: Exchange) -> str:
    if ex.outcome in ("reset", "timeout"):
        return f"went down on {_EVENT} ({ex.answer}): every connection after it was refused"
    return f"went down after answering {_EVENT} ({ex.short}): the next connection was refused"


# ------------------------------------------------------------------------------------------------ running


def _settings(count: int) -> Any:
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    checks = [
        getattr(HealthCheck, name)
        for name in ("too_slow", "filter_too_much", "data_too_large", "large_base_example", "nested_given")
        if hasattr(HealthCheck, name)
    ]
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=checks,
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )


def run_fuzz(ctx: ClauseContext, count: int, seed: int) -> FuzzResult:
    """Deliver ``count`` generated events of the clause's event (plus those shrinking sends) to the handler,
    installed on a portal of its own; return what was found."""
    from mock_portal._extras import require

    require("fuzz", what="fuzzing (--fuzz, --b24-fuzz)")
    from hypothesis import given
    from hypothesis import seed as with_seed
    from hypothesis import strategies as st

    result = FuzzResult(ctx.event, count, seed)
    site = ctx.site()
    site.generated = True
    if not site.installed:
        where = f": {site.install.answer}" if site.install is not None else ""
        ctx.inconclusive(f"the handler did not take the install of the fuzzing portal{where}")
    token = site.portal.issue_token(site.app.client_id, refresh=False)
    context = site.portal.event_context(site.app, token=token)
    modes = ctx.auth_modes()
    shapes = tuple(ctx.config.shapes) if ctx.event == "ONSESSIONSTART" else ("any",)
    strategy = cases(ctx.event, context, shapes=shapes, auth=modes[0] if len(modes) == 1 else None)
    fuzzer = _Fuzzer(ctx, site, result)

    @st.composite
    def counted(draw: Any) -> Case:
        fuzzer.tick()
        drawn: Case = draw(strategy)
        return drawn

    def delivered(case: Case) -> None:
        fuzzer.attempt(case)

    test = with_seed(seed)(_settings(count)(given(counted())(delivered)))
    try:
        test()
    except _Stop as stop:
        if result.cut_short:
            # the shrinker only keeps a failing candidate smaller than its best: the last failure is the best
            result.minimal, result.shrunk = result.findings[-1], True
        elif not stop.unsure:
            result.why_not = stop.reason
    except _Failed as failed:
        # hypothesis re-runs the shrunk example last and raises what it raised
        result.minimal, result.shrunk = failed.finding, True
    except Exception:
        if not result.findings:
            raise
        result.why_not = "the handler answered it differently when it came again, so it could not be shrunk"
    if result.findings and result.minimal is None:
        last = result.findings[-1]
        same = [f for f in result.findings if f.kind == last.kind]
        result.minimal = last if last.kind == "crash" else min(same, key=lambda f: f.exchange.sent_bytes)
    return result


# ------------------------------------------------------------------------------------------------ verdict


def fuzz(ctx: ClauseContext) -> str:
    """The ``survives-fuzzing`` clause: run :func:`run_fuzz` with the run's ``fuzz`` and ``fuzz_seed``;
    return the pass text, or fail with the minimal event, what came back and how to send it again."""
    count, seed = ctx.config.fuzz, ctx.config.fuzz_seed
    result = run_fuzz(ctx, count, seed)
    if result.unsure is not None:
        ctx.inconclusive(result.unsure[0], [result.unsure[1]])
    found = result.minimal
    if found is None:
        return result.summary()
    case = found.case
    if result.cut_short:
        how = f"shrunk by hypothesis to this event, after {result.delivered} deliveries ({result.cut_short})"
    elif result.shrunk:
        how = f"shrunk by hypothesis to this minimal event, after {result.delivered} deliveries"
    else:
        how = f"generated event {found.number} of {result.delivered}, not shrunk: {result.why_not}"
    reason = f"{found.describe()}; {how} (seed {seed})"
    others = sorted({f.kind for f in result.findings} - {found.kind})
    if others:
        reason += f"; also seen: {', '.join(_KIND_NAMES[k] for k in others)}"
    ctx.note(f"the event (secrets masked): {shown_event(ctx, case.payload)}")
    kept = kept_values(case.payload) if result.shrunk else []
    if kept:
        ctx.note(f"values shrinking kept (the rest went to 0 or empty): {', '.join(kept)}")
    if found.kind == "echo":
        ctx.note(
            "answers are logged and shown by proxies and tools: quote no token in any answer, error pages "
            "included"
        )
    ctx.note(
        f"the same {count} events come again with the same seed ({seed}): the re-run line below repeats "
        "them; a different --fuzz-seed (--b24-fuzz-seed) generates others"
    )
    ctx.fail(reason, [found.exchange])


_KIND_NAMES: Final = {
    "5xx": "answers of 500 or more",
    "hang": "hangs",
    "crash": "dropped connections",
    "echo": "echoed secrets",
}


def shown_event(ctx: ClauseContext, payload: Mapping[str, Any]) -> str:
    """``payload`` as compact JSON, every secret of the run masked (then cut, never before)."""
    from mock_portal.redact import redact

    text = ctx.mask(json.dumps(redact(payload), ensure_ascii=False, separators=(",", ":")))
    return text if len(text) <= _SHOWN_EVENT else text[: _SHOWN_EVENT - 3] + "..."


def kept_values(payload: Mapping[str, Any]) -> list[str]:
    """``path = value`` for the values of a shrunk event (outside ``auth`` and the envelope) that did not go
    to ``0`` or empty: what the failure needs, such as an id past 32 bits or a character beyond ASCII."""
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if path or key not in _ENVELOPE:
                    walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")
        elif value not in ("", "0", 0, None) and not (isinstance(value, str) and value.startswith("http")):
            found.append(f"{path} = {json.dumps(value, ensure_ascii=True)[:60]}")

    walk(payload, "")
    more = f" and {len(found) - _SHOWN_FIELDS} more" if len(found) > _SHOWN_FIELDS else ""
    return found[:_SHOWN_FIELDS] + ([more.strip()] if more else [])
