"""The reusable OnSessionStart contract: clauses any Bitrix24 event handler must honour.

``OnSessionStartContract`` is the base class to subclass in your own tests; ``ContractRun`` runs the clauses
against any handler without pytest. Names are loaded on first use: the pytest plugin imports this package in
every pytest run, so importing it must stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CLAUSES": "contract_tests.clauses",
    "Clause": "contract_tests.clauses",
    "ContractConfig": "contract_tests.engine",
    "ContractReport": "contract_tests.engine",
    "ContractRun": "contract_tests.engine",
    "ContractViolation": "contract_tests.engine",
    "DeclaredEventsContract": "contract_tests.contract",
    "EventFactory": "contract_tests.engine",
    "Exchange": "contract_tests.engine",
    "OnSessionStartContract": "contract_tests.contract",
    "Verdict": "contract_tests.engine",
    "resolve_target": "contract_tests.engine",
}

__all__ = [
    "CLAUSES",
    "Clause",
    "ContractConfig",
    "ContractReport",
    "ContractRun",
    "ContractViolation",
    "DeclaredEventsContract",
    "EventFactory",
    "Exchange",
    "OnSessionStartContract",
    "Verdict",
    "resolve_target",
]

if TYPE_CHECKING:
    from contract_tests.clauses import CLAUSES, Clause
    from contract_tests.contract import DeclaredEventsContract, OnSessionStartContract
    from contract_tests.engine import (
        ContractConfig,
        ContractReport,
        ContractRun,
        ContractViolation,
        EventFactory,
        Exchange,
        Verdict,
        resolve_target,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'contract_tests' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
