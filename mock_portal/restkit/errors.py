"""The one error type of :mod:`mock_portal.restkit`."""

from __future__ import annotations

from typing import Any

from mock_portal.errors import UsageError

__all__ = ["RestError"]


class RestError(UsageError):
    """A call the portal refuses: Bitrix's error ``code``, its ``description`` and the HTTP ``status``.

    It has the same three fields as the REST layer's own refusal, so either renders with :meth:`envelope`.
    """

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        self.code = code
        self.description = description
        self.status = status
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.code}: {self.description}"

    def envelope(self) -> dict[str, Any]:
        """The JSON body Bitrix answers with."""
        return {"error": self.code, "error_description": self.description}
