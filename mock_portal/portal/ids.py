"""Random values a portal hands out: member ids, client ids and secrets, tokens, external chat ids.

Unseeded they come from :mod:`secrets`, a whole string per call; seeded (``Portal(seed=...)``) from one
seeded generator, so they repeat from run to run. Either way the cost of a value does not depend on how many
were drawn before.
"""

from __future__ import annotations

import random
import secrets
import string

_ALNUM = string.ascii_letters + string.digits


class RandomIds:
    """Hex and alphanumeric strings and integers (seeded, or from the system's source)."""

    def __init__(self, seed: int | None = None) -> None:
        self._seeded = seed is not None
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()

    def hex(self, n: int) -> str:
        """``n`` lowercase hex digits."""
        if self._seeded:
            return f"{self._rng.getrandbits(4 * n):0{n}x}" if n > 0 else ""
        return secrets.token_hex((n + 1) // 2)[:n]

    def alnum(self, n: int) -> str:
        """``n`` letters and digits."""
        if self._seeded:
            return "".join(self._rng.choices(_ALNUM, k=n))
        out = ""
        while len(out) < n:
            # URL-safe base64 is uniform over 64 symbols; without "-" and "_" it is uniform over the 62 wanted
            out += secrets.token_urlsafe(n).replace("-", "").replace("_", "")
        return out[:n]

    def randrange(self, start: int, stop: int | None = None) -> int:
        """An integer in ``range(start, stop)`` (or ``range(start)``)."""
        return self._rng.randrange(start) if stop is None else self._rng.randrange(start, stop)
