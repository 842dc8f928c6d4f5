"""The flip check, small: a few handlers, twice each, with both cores kept busy; no verdict may change.

The full check (every reference, correct and broken handler, 10 runs each) is
``python -m tests.support.flip``; ``B24_FLIP_RUNS`` and ``B24_FLIP_ONLY`` (comma-separated names, or
``all``) widen this test.
"""

from __future__ import annotations

import io
import os

import pytest

from tests.support.flip import flip_check

# a correct handler of each kind, and the broken ones whose evidence is a REST call that may come late
CI_SUBJECTS = (
    "reference-python-http",
    "careful-stdlib",
    "flask-style",
    "alerts-with-forged-token",
    "repeats-work",
    "calls-first-install-endpoint",
)


@pytest.mark.slow
@pytest.mark.once
def test_no_verdict_flips_with_both_cores_busy() -> None:
    runs = int(os.environ.get("B24_FLIP_RUNS", "2"))
    only = os.environ.get("B24_FLIP_ONLY", ",".join(CI_SUBJECTS))
    out = io.StringIO()
    results = flip_check(runs, 2, None if only == "all" else only.split(","), out=out)
    assert len(results) == (len(CI_SUBJECTS) if only != "all" else len(results))
    flipped = [r.subject.name for r in results if r.flips() or r.wrong()]
    assert not flipped, out.getvalue()
