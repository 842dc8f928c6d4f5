"""The project's exceptions: one root, narrow subclasses that carry their fields.

Every error a user can provoke with bad input is a :class:`MockPortalError`; its ``str()`` is a one-line,
self-explanatory message with secrets already redacted, so a CLI can print it as it is.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "DataNotFoundError",
    "DeriveError",
    "MockPortalError",
    "OverlayError",
    "SchemaError",
    "UnknownNameError",
    "UsageError",
    "WireError",
]


class MockPortalError(Exception):
    """Root of every error raised by ``mock_portal`` and ``contract_tests``."""


class WireError(MockPortalError, ValueError):
    """A body could not be decoded as PHP would, or broke one of the configured limits.

    ``limit`` names the limit or rule that was broken (``max_input_vars``, ``max_input_nesting_level``,
    ``max_body_bytes``, ``utf-8``, ...), ``where`` says where in the input (a byte offset or a key).
    """

    def __init__(self, message: str, *, limit: str | None = None, where: str | None = None) -> None:
        self.message = message
        self.limit = limit
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.message]
        if self.limit:
            parts.append(f"limit: {self.limit}")
        if self.where:
            parts.append(f"at {self.where}")
        return "; ".join(parts)


class DeriveError(MockPortalError, ValueError):
    """A doc page could not be read in the docs' markdown dialect; names the page and, if known, the line."""

    def __init__(self, message: str, *, page: str, line: int | None = None) -> None:
        self.message = message
        self.page = page
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.page}:{self.line}" if self.line is not None else self.page
        return f"{where}: {self.message}"


class DataNotFoundError(MockPortalError, FileNotFoundError):
    """The packaged data (``schemas/`` or ``fixtures/``) could not be found."""


class SchemaError(MockPortalError):
    """A file in ``schemas/`` is unreadable, too large, or lacks the ``$id`` its path implies."""


class OverlayError(MockPortalError):
    """The overlay of schema corrections is malformed, or one of its entries no longer fits the derived
    schema; ``entry`` names the entry (``targets/<file>/patches[N]``) or the file."""

    def __init__(self, message: str, *, entry: str) -> None:
        self.message = message
        self.entry = entry
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"schemas/overlay.json: {self.entry}: {self.message}"


class UsageError(MockPortalError):
    """A command or API was called with arguments that cannot work (exit code 2 in the CLI)."""


class UnknownNameError(UsageError, LookupError):
    """A name (event, shape, method, clause...) is not one of the known ones; suggests the closest."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(str(self))

    def __str__(self) -> str:
        close = difflib.get_close_matches(self.name, self.known, n=1, cutoff=0.5)
        if not close:
            close = difflib.get_close_matches(self.name.lower(), [k.lower() for k in self.known], n=1)
            close = [k for k in self.known if k.lower() in close]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {self.name!r}{hint} (known: {', '.join(self.known)})"
