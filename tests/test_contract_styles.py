"""Correct handlers this project did not write its contract around pass it: the contract judges what a
handler does, never how it is built.

Each handler here is correct and deliberately unlike the reference handler in what the contract must not
care about (framework defaults, a small accept backlog, closing connections, 200 to what it ignores, 413 or
200 to a huge body, a slow worker). Each must pass every MUST clause, and fail only the SHOULD clauses it
really breaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from contract_tests.clauses import CLAUSE_IDS
from tests.support.contract import run_contract, serve_wsgi
from tests.support.handlers import asgi_slow_worker, careful_stdlib, flask_style


@contextmanager
def _flask_style() -> Iterator[str]:
    app = flask_style.FlaskStyleApp()
    try:
        with serve_wsgi(app) as url:
            yield url
    finally:
        app.close()


STYLES: dict[str, tuple[Any, set[str]]] = {
    # listen backlog 5, closes after each answer without Connection: close, 413 from the header, one worker
    "careful-stdlib": (careful_stdlib.serve, set()),
    # flat request.form, no body limit, 200 to whatever it ignores, stored token only; keeps no record of
    # what it has seen, so a byte-identical repeat is new work to it: the one SHOULD it really breaks
    "flask-style": (_flask_style, {"ignores-repeated-delivery"}),
    # uvicorn, a 413 mid-stream, 202/204 answers, one slow worker (the burst's work trails its answers)
    "asgi-slow-worker": (lambda: asgi_slow_worker.serve(delay=0.05), set()),
}


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.slow
def test_a_correct_handler_of_another_style_passes(style: str) -> None:
    serve, breaks = STYLES[style]
    with serve() as url:
        report = run_contract(url, strict=True)
    failed = set(report.failed())
    assert failed == breaks, report.table()
    assert all(report.verdict(v).clause.level == "SHOULD" for v in failed)
    passed = {v.id for v in report.verdicts if v.outcome == "pass"}
    # none of them declares offline use, so clause 11 does not apply to them
    assert passed == set(CLAUSE_IDS) - breaks - {"catches-up-offline"}, report.table()
    assert report.verdict("catches-up-offline").outcome == "skip"
