"""The record of delivery: one :class:`Attempt` per attempt (or decision not to send), and the log of them."""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from mock_portal.delivery._common import Outcome
from mock_portal.delivery.targets import Target
from mock_portal.errors import UsageError
from mock_portal.redact import redact_text

__all__ = ["Attempt", "Delivery", "DeliveryLog"]

_ID_PREFIX = os.urandom(3).hex()
_ids = itertools.count(1)


def next_id() -> str:
    return f"{_ID_PREFIX}-{next(_ids)}"


def _body_text(body: bytes) -> str:
    return redact_text(body.decode("utf-8", "replace"))


@dataclass(frozen=True, slots=True, repr=False)
class Attempt:
    """One delivery attempt (or one decision not to deliver), immutable.

    ``body`` holds the raw bytes that were sent (secrets included) for assertions; every other text field is
    already redacted, and ``str``/``repr``/:meth:`to_dict` redact the body as well. ``status`` is ``None``
    when no status line arrived. ``latency_ms`` runs from just before connecting to the last byte read (0 for
    a drop). ``response_bytes`` counts the response body bytes kept, at most the deliverer's
    ``max_response_bytes``; ``response_truncated`` says that more was offered and never read.
    """

    id: str
    event: str
    target: str
    transport: str
    body: bytes
    outcome: Outcome
    status: int | None
    latency_ms: float
    started_at: float
    timeout_s: float | None
    error: str | None = None
    reason: str | None = None
    response_bytes: int = 0
    response_excerpt: str = ""
    response_truncated: bool = False
    response: bytes = field(default=b"", repr=False, compare=False)
    """The response body as read (at most ``max_response_bytes``), secrets included, when the deliverer was
    made with ``keep_responses=True`` (empty otherwise); never in :meth:`to_dict`, ``str`` or ``repr``."""

    @property
    def ok(self) -> bool:
        """True when the handler answered with a 2xx status."""
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form with the body redacted (the JSONL line of this attempt)."""
        return {
            "id": self.id,
            "event": self.event,
            "transport": self.transport,
            "target": self.target,
            "outcome": self.outcome,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "started_at": datetime.fromtimestamp(self.started_at, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "started_at_unix": self.started_at,
            "timeout_s": self.timeout_s,
            "error": self.error,
            "reason": self.reason,
            "body_bytes": len(self.body),
            "body": _body_text(self.body),
            "response_bytes": self.response_bytes,
            "response_truncated": self.response_truncated,
            "response_excerpt": self.response_excerpt,
        }

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        line = f"{self.id} {self.event or '?'} -> {self.target}: {self.outcome}{status}"
        line += f" in {self.latency_ms:.1f} ms"
        if self.error:
            line += f"; {self.error}"
        if self.reason:
            line += f"; reason: {self.reason}"
        return line

    def __repr__(self) -> str:
        body = _body_text(self.body)
        if len(body) > 80:
            body = body[:77] + "..."
        return (
            f"Attempt(id={self.id!r}, event={self.event!r}, target={self.target!r}, "
            f"outcome={self.outcome!r}, status={self.status!r}, latency_ms={self.latency_ms:.3f}, "
            f"error={self.error!r}, reason={self.reason!r}, body={body!r})"
        )


class DeliveryLog:
    """Every attempt, in memory and optionally appended to a JSONL file; safe to share between threads.

    Attempts are kept in the order they ended (concurrent attempts may end out of input order).

    With ``path``, each attempt is written as one JSON line (redacted, see :meth:`Attempt.to_dict`) by a
    single unbuffered ``write`` as soon as it is recorded, so a process killed right after an attempt loses
    nothing; ``fsync=True`` also survives a power cut, at a cost per record. ``max_in_memory`` bounds the
    in-memory list (the oldest are forgotten first; the file keeps everything). The file is opened for
    appending.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync: bool = False,
        max_in_memory: int | None = None,
    ) -> None:
        if max_in_memory is not None and max_in_memory < 1:
            raise UsageError(f"DeliveryLog: max_in_memory must be at least 1, not {max_in_memory}")
        self._lock = threading.Lock()
        self._attempts: deque[Attempt] = deque(maxlen=max_in_memory)
        self._fsync = fsync
        self.path = Path(path) if path is not None else None
        self._fd: int | None = None
        if self.path is not None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise UsageError(
                    f"DeliveryLog: cannot open {str(self.path)!r} for appending: {exc.strerror}"
                ) from None

    def add(self, attempt: Attempt) -> None:
        """Record one attempt (and append its JSONL line when the log has a file)."""
        line = None
        if self._fd is not None:
            line = (json.dumps(attempt.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._attempts.append(attempt)
            if line is not None and self._fd is not None:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self._fsync:
                    os.fsync(self._fd)

    @property
    def attempts(self) -> list[Attempt]:
        """A snapshot of the recorded attempts, oldest first."""
        with self._lock:
            return list(self._attempts)

    def filter(
        self, *, event: str | None = None, outcome: Outcome | None = None, transport: str | None = None
    ) -> list[Attempt]:
        """The attempts matching every given field (``event`` compared case-insensitively)."""
        wanted = event.upper() if event is not None else None
        return [
            a
            for a in self.attempts
            if (wanted is None or a.event.upper() == wanted)
            and (outcome is None or a.outcome == outcome)
            and (transport is None or a.transport == transport)
        ]

    def counts(self) -> dict[str, int]:
        """How many attempts ended with each outcome (only outcomes that occurred)."""
        return dict(Counter(a.outcome for a in self.attempts))

    def clear(self) -> None:
        """Forget the in-memory attempts (the JSONL file is left as it is)."""
        with self._lock:
            self._attempts.clear()

    def close(self) -> None:
        """Close the JSONL file; later attempts are kept in memory only."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._attempts)

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self.attempts)

    def __enter__(self) -> DeliveryLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f" -> {str(self.path)!r}" if self.path is not None else ""
        return f"<DeliveryLog {len(self)} attempts{where}>"


@dataclass(frozen=True)
class Delivery:
    """One item for :meth:`AsyncDeliverer.deliver_many`; a ``(target, body)`` tuple means the same."""

    target: str | Target
    body: bytes | str
    event: str | None = None
    timeout: float | None = None
