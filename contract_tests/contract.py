"""The reusable contract: subclass :class:`OnSessionStartContract` in your own tests.

::

    from contract_tests import OnSessionStartContract
    from myapp import wsgi_app

    class TestMyHandler(OnSessionStartContract):
        @pytest.fixture
        def b24_handler(self):
            return wsgi_app            # or a URL, an ASGI app, a handler(body, headers, url) callable

For the other events a handler declares (``--b24-events``, ``b24_events`` in ini), subclass
:class:`DeclaredEventsContract` as well: its tests are the generic clauses, parametrised by the
``b24_event`` fixture over the declared events other than ONSESSIONSTART
(``test_event_forged_token_refused[ONIMCONNECTORMESSAGEADD]``); the ``test_event_`` prefix keeps the names
apart from the OnSessionStart ones when one class subclasses both.
One parametrised class rather than a class per event: the clauses are the same for every event, and a new
declared event needs no new code.

Each clause is one test with a stable name. A failed MUST clause fails; a failed SHOULD clause is an ``xfail``
unless ``--b24-strict``; an inconclusive clause (the handler made no REST call for a valid event, so the
absence of one proves nothing) is skipped with the reason. Clauses the configuration makes irrelevant (an
event not declared, two portals with one configured token, offline events without ``--b24-offline``) are left
out at collection and summarised in one line. Clauses you register yourself (``contract_tests.clause``, from a
conftest or ``--b24-clauses MODULE``) run as ``test_own_clause[<id>]`` in :class:`OnSessionStartContract`.
With ``--b24-fuzz N`` (``b24_fuzz`` in ini), ``test_survives_fuzzing`` delivers N events generated from the
schemas per declared event; without it, the test is not collected at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from contract_tests.engine import ContractRun

__all__ = ["DeclaredEventsContract", "OnSessionStartContract", "judge"]

_START = "ONSESSIONSTART"


def judge(run: ContractRun, clause_id: str, event: str = _START) -> None:
    """Judge one clause for ``event`` with ``run`` and tell pytest: return on pass; fail, xfail or skip
    otherwise (skip too when the handler does not declare ``event``). A handler that refused its
    installation fails the first test with the whole explanation, and the others briefly."""
    __tracebackhide__ = True
    from contract_tests.judging import ContractSetupError
    from contract_tests.verdicts import ContractViolation

    if event not in run.config.events:
        pytest.skip(f"the handler does not declare {event} (declared: {', '.join(run.config.events)})")
    problem = ""
    try:
        verdict = run.check(clause_id, event)
    except ContractSetupError as exc:
        first, run.setup_error_shown = not run.setup_error_shown, True
        problem = str(exc) if first else f"{str(exc).splitlines()[0]} (see the first failure)"
    if problem:  # outside the except block, so pytest shows one message, not the chained error too
        pytest.fail(problem, pytrace=False)
    if verdict.outcome == "pass":
        return
    if verdict.outcome == "fail":
        if verdict.fails_run(run.config.strict):
            raise ContractViolation(verdict)
        pytest.xfail(f"SHOULD clause {verdict.id} failed (--b24-strict makes it fail): {verdict.reason}")
    pytest.skip(f"{verdict.outcome}: {verdict.id}: {verdict.reason}")


class OnSessionStartContract:
    """The OnSessionStart contract as pytest tests; the handler comes from the ``b24_handler`` fixture."""

    @pytest.mark.b24_contract("accepts-every-shape")
    def test_accepts_every_shape(self, b24_contract: ContractRun) -> None:
        """1 (MUST): every shape in both auth modes gets a 2xx."""
        judge(b24_contract, "accepts-every-shape")

    @pytest.mark.b24_contract("tolerates-variation")
    def test_tolerates_variation(self, b24_contract: ContractRun) -> None:
        """2 (MUST): missing optional keys, unknown keys, several items, unicode: 2xx, never 5xx."""
        judge(b24_contract, "tolerates-variation")

    @pytest.mark.b24_contract("forged-token-no-side-effect")
    def test_forged_token_no_side_effect(self, b24_contract: ContractRun) -> None:
        """3a (MUST): a wrong application_token leads to no REST call and no 5xx."""
        judge(b24_contract, "forged-token-no-side-effect")

    @pytest.mark.b24_contract("forged-token-refused")
    def test_forged_token_refused(self, b24_contract: ContractRun) -> None:
        """3b (SHOULD): a wrong application_token is answered 401 or 403."""
        judge(b24_contract, "forged-token-refused")

    @pytest.mark.b24_contract("unknown-portal-no-side-effect")
    def test_unknown_portal_no_side_effect(self, b24_contract: ContractRun) -> None:
        """4 (MUST): a portal that never installed the app causes no side effect."""
        judge(b24_contract, "unknown-portal-no-side-effect")

    @pytest.mark.b24_contract("rejects-malformed-bodies")
    def test_rejects_malformed_bodies(self, b24_contract: ContractRun) -> None:
        """5 (MUST): malformed bodies never crash or hang the handler."""
        judge(b24_contract, "rejects-malformed-bodies")

    @pytest.mark.b24_contract("ignores-repeated-delivery")
    def test_ignores_repeated_delivery(self, b24_contract: ContractRun) -> None:
        """6 (SHOULD): a byte-identical repeat causes no second side effect."""
        judge(b24_contract, "ignores-repeated-delivery")

    @pytest.mark.b24_contract("keeps-portals-apart")
    def test_keeps_portals_apart(self, b24_contract: ContractRun) -> None:
        """8 (MUST): callbacks go to each event's own portal; crossed tokens are refused."""
        judge(b24_contract, "keeps-portals-apart")

    @pytest.mark.b24_contract("never-echoes-secrets")
    def test_never_echoes_secrets(self, b24_contract: ContractRun) -> None:
        """9 (SHOULD): no answer carries a token."""
        judge(b24_contract, "never-echoes-secrets")

    @pytest.mark.b24_contract("survives-bursts")
    def test_survives_bursts(self, b24_contract: ContractRun) -> None:
        """10 (SHOULD): a burst of concurrent deliveries: no 5xx, no lost work."""
        judge(b24_contract, "survives-bursts")

    @pytest.mark.b24_contract("catches-up-offline")
    def test_catches_up_offline(self, b24_contract: ContractRun) -> None:
        """11 (SHOULD, with --b24-offline): catches up with event.offline.get and clears what it took."""
        judge(b24_contract, "catches-up-offline")

    @pytest.mark.b24_contract("answers-within-timeout")
    def test_answers_within_timeout(self, b24_contract: ContractRun) -> None:
        """7a (MUST): every delivery of the run answered within the timeout."""
        judge(b24_contract, "answers-within-timeout")

    @pytest.mark.b24_contract("answers-quickly")
    def test_answers_quickly(self, b24_contract: ContractRun) -> None:
        """7b (SHOULD): valid events answered with a p95 within 1 s."""
        judge(b24_contract, "answers-quickly")

    @pytest.mark.b24_contract("survives-fuzzing")
    def test_survives_fuzzing(self, b24_contract: ContractRun) -> None:
        """With ``--b24-fuzz N`` (MUST): N events generated from the schemas, valid and near-valid: no 5xx,
        hang, crash or echoed secret; a failure is shrunk to a minimal event."""
        judge(b24_contract, "survives-fuzzing")

    def test_own_clause(self, b24_contract: ContractRun, b24_clause: str) -> None:
        """Each clause you registered (``b24_clause``: its verdict id, ``clause[EVENT]`` for other events)."""
        name, _, event = b24_clause.partition("[")
        judge(b24_contract, name, event.rstrip("]") or _START)


class DeclaredEventsContract:
    """The generic clauses for each declared event other than ONSESSIONSTART (``b24_event`` parametrises
    them; the plugin fills it from ``--b24-events``). Subclass it next to :class:`OnSessionStartContract`."""

    @pytest.mark.b24_contract("tolerates-variation")
    def test_event_tolerates_variation(self, b24_contract: ContractRun, b24_event: str) -> None:
        """2 (MUST): missing optional keys, unknown keys, system mode, unicode: 2xx, never 5xx."""
        judge(b24_contract, "tolerates-variation", b24_event)

    @pytest.mark.b24_contract("forged-token-no-side-effect")
    def test_event_forged_token_no_side_effect(self, b24_contract: ContractRun, b24_event: str) -> None:
        """3a (MUST): a wrong application_token leads to no REST call and no 5xx."""
        judge(b24_contract, "forged-token-no-side-effect", b24_event)

    @pytest.mark.b24_contract("forged-token-refused")
    def test_event_forged_token_refused(self, b24_contract: ContractRun, b24_event: str) -> None:
        """3b (SHOULD): a wrong application_token is answered 401 or 403."""
        judge(b24_contract, "forged-token-refused", b24_event)

    @pytest.mark.b24_contract("unknown-portal-no-side-effect")
    def test_event_unknown_portal_no_side_effect(self, b24_contract: ContractRun, b24_event: str) -> None:
        """4 (MUST): a portal that never installed the app causes no side effect."""
        judge(b24_contract, "unknown-portal-no-side-effect", b24_event)

    @pytest.mark.b24_contract("rejects-malformed-bodies")
    def test_event_rejects_malformed_bodies(self, b24_contract: ContractRun, b24_event: str) -> None:
        """5 (MUST): malformed bodies never crash or hang the handler."""
        judge(b24_contract, "rejects-malformed-bodies", b24_event)

    @pytest.mark.b24_contract("ignores-repeated-delivery")
    def test_event_ignores_repeated_delivery(self, b24_contract: ContractRun, b24_event: str) -> None:
        """6 (SHOULD): a byte-identical repeat causes no second side effect."""
        judge(b24_contract, "ignores-repeated-delivery", b24_event)

    @pytest.mark.b24_contract("never-echoes-secrets")
    def test_event_never_echoes_secrets(self, b24_contract: ContractRun, b24_event: str) -> None:
        """9 (SHOULD): no answer carries a token."""
        judge(b24_contract, "never-echoes-secrets", b24_event)

    @pytest.mark.b24_contract("answers-within-timeout")
    def test_event_answers_within_timeout(self, b24_contract: ContractRun, b24_event: str) -> None:
        """7a (MUST): every delivery of this event answered within the timeout."""
        judge(b24_contract, "answers-within-timeout", b24_event)

    @pytest.mark.b24_contract("answers-quickly")
    def test_event_answers_quickly(self, b24_contract: ContractRun, b24_event: str) -> None:
        """7b (SHOULD): valid events of this event answered with a p95 within 1 s."""
        judge(b24_contract, "answers-quickly", b24_event)

    @pytest.mark.b24_contract("survives-fuzzing")
    def test_event_survives_fuzzing(self, b24_contract: ContractRun, b24_event: str) -> None:
        """With ``--b24-fuzz N`` (MUST): N generated events of this event: no 5xx, hang, crash or leak."""
        judge(b24_contract, "survives-fuzzing", b24_event)
