"""The reusable contract: clauses any Bitrix24 event handler must honour, and the ones you add.

``OnSessionStartContract`` is the base class to subclass in your own tests; ``ContractRun`` runs the clauses
against any handler without pytest; ``clause`` registers a clause of your own, judged with a
``ClauseContext`` like the built-in ones; ``InProcessApp`` hands the contract a WSGI or ASGI app with the
paths it takes events and ONAPPINSTALL at. Names are loaded on first use: the pytest plugin imports this
package in every pytest run, so importing it must stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CLAUSES": "contract_tests.clauses",
    "Clause": "contract_tests.clauses",
    "ClauseContext": "contract_tests.judging",
    "ContractConfig": "contract_tests.config",
    "ContractReport": "contract_tests.verdicts",
    "ContractRun": "contract_tests.engine",
    "ContractSetupError": "contract_tests.judging",
    "ContractViolation": "contract_tests.verdicts",
    "DeclaredEventsContract": "contract_tests.contract",
    "EventFactory": "contract_tests.events",
    "Exchange": "contract_tests.verdicts",
    "InProcessApp": "contract_tests.inprocess",
    "OnSessionStartContract": "contract_tests.contract",
    "Site": "contract_tests.judging",
    "Verdict": "contract_tests.verdicts",
    "clause": "contract_tests.clauses",
    "find_clause": "contract_tests.clauses",
    "resolve_target": "contract_tests.config",
}

__all__ = [
    "CLAUSES",
    "Clause",
    "ClauseContext",
    "ContractConfig",
    "ContractReport",
    "ContractRun",
    "ContractSetupError",
    "ContractViolation",
    "DeclaredEventsContract",
    "EventFactory",
    "Exchange",
    "InProcessApp",
    "OnSessionStartContract",
    "Site",
    "Verdict",
    "clause",
    "find_clause",
    "resolve_target",
]

if TYPE_CHECKING:
    from contract_tests.clauses import CLAUSES, Clause, clause, find_clause
    from contract_tests.config import ContractConfig, resolve_target
    from contract_tests.contract import DeclaredEventsContract, OnSessionStartContract
    from contract_tests.engine import ContractRun
    from contract_tests.events import EventFactory
    from contract_tests.inprocess import InProcessApp
    from contract_tests.judging import ClauseContext, ContractSetupError, Site
    from contract_tests.verdicts import ContractReport, ContractViolation, Exchange, Verdict


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'contract_tests' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
