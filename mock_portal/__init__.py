"""A mock Bitrix24 portal: PHP-exact wire codec, event schemas, event builders, portal state and delivery.

The public names are loaded on first use, so ``import mock_portal`` stays cheap for the pytest plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AsgiTarget": "mock_portal.delivery",
    "AsyncDeliverer": "mock_portal.delivery",
    "Attempt": "mock_portal.delivery",
    "B24Provider": "mock_portal.fakes",
    "BuiltEvent": "mock_portal.events",
    "CallableTarget": "mock_portal.delivery",
    "Clock": "mock_portal.portal",
    "DataNotFoundError": "mock_portal.errors",
    "Deliverer": "mock_portal.delivery",
    "Delivery": "mock_portal.delivery",
    "DeliveryLog": "mock_portal.delivery",
    "DeriveError": "mock_portal.errors",
    "EventContext": "mock_portal.events",
    "EventStream": "mock_portal.events",
    "EventValidator": "mock_portal.fastpath",
    "MockPortalError": "mock_portal.errors",
    "OverlayError": "mock_portal.errors",
    "Portal": "mock_portal.portal",
    "PortalError": "mock_portal.portal",
    "PortalServer": "mock_portal.server",
    "RestResponse": "mock_portal.rest",
    "SchemaError": "mock_portal.errors",
    "TlsFront": "mock_portal.tls",
    "UnknownNameError": "mock_portal.errors",
    "UrlTarget": "mock_portal.delivery",
    "UsageError": "mock_portal.errors",
    "ValidationReport": "mock_portal.schemas",
    "WireError": "mock_portal.errors",
    "WsgiTarget": "mock_portal.delivery",
    "build_event": "mock_portal.events",
    "decode": "mock_portal.wire",
    "derive_schema": "mock_portal.derive",
    "encode": "mock_portal.wire",
    "intercept": "mock_portal.inprocess",
    "intercept_clients": "mock_portal.intercept",
    "validate": "mock_portal.schemas",
    "validator_for": "mock_portal.schemas",
}

# public submodules, imported on first use like the names above
_SUBMODULES = frozenset({"strategies"})

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])

if TYPE_CHECKING:
    from mock_portal import strategies
    from mock_portal.delivery import (
        AsgiTarget,
        AsyncDeliverer,
        Attempt,
        CallableTarget,
        Deliverer,
        Delivery,
        DeliveryLog,
        UrlTarget,
        WsgiTarget,
    )
    from mock_portal.derive import derive_schema
    from mock_portal.errors import (
        DataNotFoundError,
        DeriveError,
        MockPortalError,
        OverlayError,
        SchemaError,
        UnknownNameError,
        UsageError,
        WireError,
    )
    from mock_portal.events import BuiltEvent, EventContext, EventStream, build_event
    from mock_portal.fakes import B24Provider
    from mock_portal.fastpath import EventValidator
    from mock_portal.inprocess import intercept
    from mock_portal.intercept import intercept_clients
    from mock_portal.portal import Clock, Portal, PortalError
    from mock_portal.rest import RestResponse
    from mock_portal.schemas import ValidationReport, validate, validator_for
    from mock_portal.server import PortalServer
    from mock_portal.tls import TlsFront
    from mock_portal.wire import decode, encode


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"mock_portal.{name}")
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mock_portal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
