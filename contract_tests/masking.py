"""Masking every secret of a run, in every encoding, in everything the contract writes.

:func:`mock_portal.redact.redact_text` masks secrets by the key they follow (``access_token=...``). That is
not enough for a report: a handler may echo a token under another name, a curl line may carry a body as hex,
a log line may percent-encode it. A :class:`Masker` knows the actual values (every token the run's portals
issued, every application token, client secret and configured token) and replaces each wherever it
appears: raw, hex-encoded (either case), percent-encoded (every byte ``%XX``, either case) and base64.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable

from mock_portal.redact import redact_text

__all__ = ["MASK", "Masker", "encodings_of"]

MASK = "***"
_MIN_SECRET = 8  # shorter values are not tokens, and masking them would garble ordinary text


def encodings_of(secret: str) -> tuple[str, ...]:
    """The forms a secret is searched for: raw, hex (lower, upper), percent-encoded (lower, upper), and the
    base64 of it (standard and URL-safe, unpadded)."""
    raw = secret.encode("utf-8")
    hexed = raw.hex()
    percent = "".join(f"%{b:02x}" for b in raw)
    b64 = base64.b64encode(raw).decode("ascii").rstrip("=")
    forms = {
        secret,
        hexed,
        hexed.upper(),
        percent,
        percent.upper(),
        b64,
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
    }
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}){4,}|[0-9A-Za-z_+/-]{8,}")
"""Runs of characters a token (or an encoding of one) is made of: each is looked up, never a regex of
every secret (the run issues hundreds of tokens, and such a pattern would be rebuilt for each)."""
_KEY = 8


class Masker:
    """Replaces every known secret of a run with ``***`` (and applies :func:`redact_text` after).

    Thread-safe; secrets are added as the run issues them. Lookup is by an index of each encoded form's
    8-character pieces, so masking costs one pass over the text whatever the number of secrets: every form
    is at least ``S + 7`` characters long (``S``, the stride, follows from the shortest one), so a form
    found anywhere covers one of the positions ``0, S, 2S...`` of its run, with one of its first ``S``
    pieces there; only those positions are looked up, and only those pieces indexed.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._harmless: set[str] = set()
        self._forms: list[str] = []
        self._owner: dict[str, str] = {}
        # (stride, piece -> ((form, offset of the piece in it), ...)), replaced whole when the stride changes
        self._state: tuple[int, dict[str, tuple[tuple[str, int], ...]]] = (1, {})
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None, leak: bool = True) -> None:
        """Remember ``secrets`` (``None``, empty and very short values are ignored). ``leak=False``: mask the
        value but do not count it as a secret in :meth:`found_in` (a made-up token a forger would send)."""
        with self._lock:
            new: list[str] = []
            for secret in secrets:
                if not isinstance(secret, str) or len(secret) < _MIN_SECRET or secret in self._secrets:
                    continue
                self._secrets.add(secret)
                if not leak:
                    self._harmless.add(secret)
                for form in encodings_of(secret):
                    if form not in self._owner:
                        self._owner[form] = secret
                        if len(form) >= _KEY:
                            new.append(form)
            if not new:
                return
            self._forms.extend(new)
            stride, pieces = self._state
            wanted = min(len(f) for f in new) - _KEY + 1
            if pieces:
                wanted = min(wanted, stride)
            if not pieces or wanted != stride:
                stride, pieces, new = wanted, {}, self._forms  # a shorter form: index every form anew
            for form in new:
                for offset in range(stride):
                    piece = form[offset : offset + _KEY]
                    pieces[piece] = (*pieces.get(piece, ()), (form, offset))
            self._state = (stride, pieces)

    def _found(self, run: str) -> list[tuple[int, str]]:
        """Every (index, form) of a known form in ``run``, overlapping ones included, by index then longest
        first."""
        stride, pieces = self._state
        out: set[tuple[int, str]] = set()
        for at in range(0, len(run) - _KEY + 1, stride):
            for form, offset in pieces.get(run[at : at + _KEY], ()):
                start = at - offset
                if start >= 0 and run.startswith(form, start):
                    out.add((start, form))
        return sorted(out, key=lambda item: (item[0], -len(item[1])))

    def _mask_run(self, match: re.Match[str]) -> str:
        run = match.group(0)
        found = self._found(run)
        if not found:
            return run
        out: list[str] = []
        pos = 0
        for start, form in found:  # leftmost first, the longest at one index: as a scan from the left would
            if start < pos:
                continue
            out.append(run[pos:start])
            out.append(MASK)
            pos = start + len(form)
        out.append(run[pos:])
        return "".join(out)

    def __call__(self, text: str) -> str:
        """``text`` with every secret masked."""
        if not text:
            return text
        if self._state[1]:
            text = _RUN.sub(self._mask_run, text)
        return redact_text(text)

    def found_in(self, data: bytes | str) -> list[str]:
        """The secrets (not made-up tokens) that occur in ``data`` in any of their encodings (clause 9)."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        found: set[str] = set()

        def note(match: re.Match[str]) -> str:
            found.update(self._owner[form] for _, form in self._found(match.group(0)))
            return ""

        if self._state[1] and text:
            _RUN.sub(note, text)
        harmless = self._harmless
        return sorted(s for s in found if s not in harmless)

    @property
    def secrets(self) -> frozenset[str]:
        """Every value masked so far."""
        with self._lock:
            return frozenset(self._secrets)

    @property
    def real_secrets(self) -> frozenset[str]:
        """The values that are secrets (not made-up tokens)."""
        with self._lock:
            return frozenset(self._secrets - self._harmless)
