"""The contract as a test module: ``pytest --pyargs contract_tests --b24-handler-url URL``.

``--b24-events ONSESSIONSTART,ONIMCONNECTORMESSAGEADD`` adds the generic clauses for the other events.
Without ``--b24-handler-url`` (and without an overridden ``b24_handler`` fixture) every test is skipped.
"""

from __future__ import annotations

from contract_tests.contract import DeclaredEventsContract, OnSessionStartContract


class TestOnSessionStart(OnSessionStartContract):
    """Every clause of the OnSessionStart contract against the handler given on the command line."""


class TestDeclaredEvents(DeclaredEventsContract):
    """The generic clauses for every other event given with ``--b24-events``."""
