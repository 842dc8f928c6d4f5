"""Emission: the lean emitter of ``mock-portal emit`` and ``load`` against ``wrk -t1`` on the same handler and
body, in interleaved rounds (the measurement lives in :mod:`bench.emitter`; needs wrk)."""

from __future__ import annotations

from bench.core import Row, from_plain, register


@register("emit", needs=("exe:wrk",), help="the lean emitter against wrk -t1, same handler and body")
def run(quick: bool) -> list[Row]:
    from bench.emitter import emitter_rows

    rows = emitter_rows(rounds=2, seconds=1, asgi_rounds=1) if quick else emitter_rows()
    return [from_plain(row) for row in rows]
