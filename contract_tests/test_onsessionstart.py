"""The contract as a test module: ``pytest --pyargs contract_tests --b24-handler-url URL``.

Without ``--b24-handler-url`` (and without an overridden ``b24_handler`` fixture) every test is skipped.
"""

from __future__ import annotations

from contract_tests.contract import OnSessionStartContract


class TestOnSessionStart(OnSessionStartContract):
    """Every clause of the OnSessionStart contract against the handler given on the command line."""
