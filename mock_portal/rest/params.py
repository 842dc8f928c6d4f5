"""Reading REST parameters as Bitrix does, and the envelope parts every answer shares."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mock_portal.portal import PortalError
from mock_portal.restkit import RestError
from mock_portal.restkit import time_block as _time_block


@dataclass(frozen=True)
class RestResponse:
    """An HTTP status and a JSON body."""

    status: int
    body: Any

    def json_bytes(self) -> bytes:
        """The body as Bitrix would send it (UTF-8 JSON)."""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")

    @property
    def ok(self) -> bool:
        """Whether the call succeeded (2xx and no ``error`` key)."""
        return 200 <= self.status < 300 and not (isinstance(self.body, dict) and "error" in self.body)


def error(code: str, description: str, status: int = 400) -> PortalError:
    """A refusal in Bitrix's terms (rendered as ``{"error": code, "error_description": ...}``)."""
    return PortalError(code, description, status)


def error_response(exc: PortalError | RestError) -> RestResponse:
    """The envelope of a refusal (the portal's or one of :mod:`mock_portal.restkit`'s)."""
    return RestResponse(exc.status, {"error": exc.code, "error_description": exc.description})


def param(params: Mapping[str, Any], name: str) -> Any:
    """A parameter by name; Bitrix reads most parameters case-insensitively (PHP SDK: EVENT/HANDLER, the
    docs: event/handler)."""
    if name in params:
        return params[name]
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def required(params: Mapping[str, Any], name: str) -> Any:
    """A parameter that must be there and not empty (``ERROR_ARGUMENT`` otherwise)."""
    value = param(params, name)
    if value is None or value == "" or value == [] or value == {}:
        raise error("ERROR_ARGUMENT", f"Argument '{name}' is null or empty")
    return value


def integer(value: Any, name: str) -> int:
    """``value`` as an integer (a number or a string of digits), or ``ERROR_ARGUMENT``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise error("ERROR_ARGUMENT", f"Argument '{name}' must be an integer, got {str(value)[:40]!r}")


def flag(value: Any) -> bool:
    """A Bitrix boolean: ``Y``, ``1``, ``true``, ``on`` (any case) or a truthy value."""
    if isinstance(value, str):
        return value.strip().upper() in ("1", "Y", "TRUE", "ON")
    return bool(value)


def as_list(value: Any, name: str) -> list[Any]:
    """A list parameter; a PHP list arrives form-encoded as a dict with keys 0..n-1 (facts §1)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    raise error("ERROR_ARGUMENT", f"The value of an argument '{name}' must be of type array")


def time_block(start: float, finish: float) -> dict[str, Any]:
    """The ``time`` block of a successful answer that spent no method budget (see
    :func:`mock_portal.restkit.time_block`)."""
    return _time_block(start, finish)
