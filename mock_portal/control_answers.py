"""What the control API answers with: :class:`Answer` (a JSON body, or ready JSON bytes, and headers),
:class:`HttpError` (a refusal), a page of records as an answer, and delivery attempts as JSON, secrets
redacted.

Apart from :mod:`mock_portal.control` because the server (:mod:`mock_portal.server`) answers every request
with these, and loads the control API's routes, checks and handlers only when a control request comes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from mock_portal.redact import redact, redact_text

if TYPE_CHECKING:
    from mock_portal.records import Page

__all__ = ["Answer", "HttpError", "attempt_to_dict", "deliveries", "page_answer"]


class HttpError(Exception):
    """A request refused with a status, a Bitrix-style error code and a description (secrets redacted)."""

    def __init__(
        self, status: int, code: str, description: str, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = redact_text(description)
        self.headers = headers


@dataclass(frozen=True)
class Answer:
    """A control answer: a JSON-able ``body``, or ready JSON bytes in ``raw``, and extra headers."""

    status: int
    body: Any = None
    raw: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def page_answer(page: Page, path: str, args: Mapping[str, Any]) -> Answer:
    headers: list[tuple[str, str]] = []
    if page.cursor is not None:
        headers.append(("x-cursor", str(page.cursor)))
    if page.next is not None:
        query = urlencode(
            {**{k: v for k, v in args.items() if k not in ("after", "min", "timeout")}, "after": page.next}
        )
        headers.append(("link", f'<{path}?{query}>; rel="next"'))
        headers.append(("x-next-after", str(page.next)))
    return Answer(200, raw=page.json(), headers=tuple(headers))


def attempt_to_dict(attempt: Any) -> dict[str, Any]:
    """A delivery attempt as JSON, secrets redacted (uses the attempt's own redacted view when it has one)."""
    for name in ("to_redacted_dict", "redacted", "as_dict", "to_dict"):
        method = getattr(attempt, name, None)
        if callable(method):
            value = method()
            if isinstance(value, Mapping):
                return dict(redact(dict(value)))
    if dataclasses.is_dataclass(attempt) and not isinstance(attempt, type):
        return dict(redact(dataclasses.asdict(attempt)))
    return {"repr": redact_text(repr(attempt))}


def deliveries(attempts: Any) -> list[dict[str, Any]]:
    return [attempt_to_dict(a) for a in attempts]
