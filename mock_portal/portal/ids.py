"""Random values a portal hands out: member ids, client ids and secrets, tokens, external chat ids.

Seeded (``Portal(seed=...)``) they repeat from run to run; unseeded they come from the system's source.
"""

from __future__ import annotations

import random
import string

_HEX = "0123456789abcdef"
_ALNUM = string.ascii_letters + string.digits


class RandomIds:
    """Hex and alphanumeric strings and integers from one generator (seeded, or the system's)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()

    def hex(self, n: int) -> str:
        """``n`` lowercase hex digits."""
        return "".join(self._rng.choice(_HEX) for _ in range(n))

    def alnum(self, n: int) -> str:
        """``n`` letters and digits."""
        return "".join(self._rng.choice(_ALNUM) for _ in range(n))

    def randrange(self, start: int, stop: int | None = None) -> int:
        """An integer in ``range(start, stop)`` (or ``range(start)``)."""
        return self._rng.randrange(start) if stop is None else self._rng.randrange(start, stop)
