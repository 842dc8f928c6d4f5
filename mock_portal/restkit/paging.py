"""List pages as every Bitrix24 list method answers: 50 items from ``start``, with ``next`` and ``total``.

``start`` is an offset
(https://apidocs.bitrix24.com/settings/how-to-call-rest-api/list-methods-pecularities.html); ``next`` is
present only when more items follow; ``start=-1`` skips the count, so neither ``total`` nor ``next`` is sent (https://apidocs.bitrix24.com/settings/performance/huge-data.html).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PAGE_SIZE", "Page", "page", "parse_start"]

PAGE_SIZE = 50
"""Items per page of every list method."""

_PHP_INT = re.compile(r"\s*([+-]?\d+)")


def parse_start(value: Any) -> int:
    """``start`` as PHP's ``(int)`` reads it: missing or junk is 0, ``-1`` is kept, other negatives are 0."""
    if value is None or isinstance(value, (list, dict)):
        return 0
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = int(value)
    else:
        match = _PHP_INT.match(str(value))
        number = int(match.group(1)) if match else 0
    if number == -1:
        return -1
    return max(0, number)


@dataclass(frozen=True)
class Page:
    """A page: its items, the next page's offset (None on the last) and the count (None for start=-1)."""

    result: Any
    """The items (a list; a few methods page an object keyed by id)."""
    next: int | None
    total: int | None

    def envelope(self) -> dict[str, Any]:
        """``result``, then ``next`` and ``total`` when they apply, as the portal's answer carries them."""
        body: dict[str, Any] = {"result": self.result}
        if self.next is not None:
            body["next"] = self.next
        if self.total is not None:
            body["total"] = self.total
        return body


def page(items: Sequence[Any], start: Any = None, *, size: int = PAGE_SIZE) -> Page:
    """The page of ``items`` at ``start`` (raw parameter or int)."""
    offset = parse_start(start)
    if offset == -1:
        return Page(list(items[:size]), None, None)
    chunk = list(items[offset : offset + size])
    following = offset + size
    return Page(chunk, following if following < len(items) else None, len(items))
