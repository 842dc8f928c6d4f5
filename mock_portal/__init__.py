"""A mock Bitrix24 portal: PHP-exact wire codec, event schemas, event builders, portal state and delivery.

The public names are loaded on first use, so ``import mock_portal`` stays cheap for the pytest plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "DataNotFoundError": "mock_portal.errors",
    "MockPortalError": "mock_portal.errors",
    "UnknownNameError": "mock_portal.errors",
    "UsageError": "mock_portal.errors",
    "WireError": "mock_portal.errors",
    "decode": "mock_portal.wire",
    "encode": "mock_portal.wire",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from mock_portal.errors import (
        DataNotFoundError,
        MockPortalError,
        UnknownNameError,
        UsageError,
        WireError,
    )
    from mock_portal.wire import decode, encode


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mock_portal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
