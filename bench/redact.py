"""``mock_portal.redact.redact_text``, which every message, record and report goes through, beside its
reference: both secret patterns over the whole text with ``re.sub`` (what it did before; kept as
``_redact_slow``, and tested to give the same result), on OnSessionStart wire bodies of 1 KiB and 64 KiB,
with their tokens and with none.

Target: at least 5x the reference on each text (median of the per-round ratios).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.core import Row, Stat, interleave, one_core, per_round, register

SPEEDUP_TARGET = 5.0


def _texts() -> dict[str, str]:
    from mock_portal.events import EventStream

    bodies = "&".join(EventStream(seed="bench-redact").bodies(80))
    plain = bodies.replace("token", "tokem").replace("auth", "outh")
    return {
        f"{size // 1024} KiB {kind}": text[:size]
        for size in (1024, 64 * 1024)
        for kind, text in (("with secrets", bodies), ("without secrets", plain))
    }


def _per_call(fn: Callable[[str], str], text: str, seconds: float) -> Callable[[], float]:
    def measure() -> float:
        done = 0
        started = time.perf_counter()
        while True:
            fn(text)
            done += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return elapsed / done * 1e6

    return measure


@register("redact", help="redact_text beside both patterns over the whole text (its reference)")
def run_redact(quick: bool) -> list[Row]:
    from mock_portal.redact import _redact_slow, redact_text

    rounds, seconds = (3, 0.05) if quick else (9, 0.2)
    rows = []
    with one_core() as pinned:
        for name, text in _texts().items():
            assert redact_text(text) == _redact_slow(text)
            got = interleave(
                {"new": _per_call(redact_text, text, seconds), "ref": _per_call(_redact_slow, text, seconds)},
                rounds,
            )
            speedup = per_round(got["ref"], got["new"])
            rows.append(
                Row(
                    "redact",
                    f"redact_text on a {name} text",
                    Stat.of(got["new"]),
                    "us/call",
                    higher_is_better=False,
                    baselines={"both patterns, re.sub over the whole text (us/call)": Stat.of(got["ref"])},
                    ratios={"speed-up": speedup},
                    target=f">= {SPEEDUP_TARGET:g}x (median)",
                    met=speedup.median >= SPEEDUP_TARGET,
                    notes=f"{rounds} interleaved rounds of {seconds:g} s; {pinned}",
                )
            )
    return rows
