"""The bench runner: registration, skipping what is missing, the table, and --check's exit codes.

No benchmark is timed here; fake groups stand in for the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import run as bench_run
from bench.core import BENCHES, Row, Skip, Stat, interleave, per_round, register


@pytest.fixture
def only_fakes(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[dict[str, bool]]:
    bench_run.load()
    saved = dict(BENCHES)
    BENCHES.clear()
    monkeypatch.setattr(bench_run, "load", lambda: None)
    monkeypatch.setattr(bench_run, "RESULTS", tmp_path / "results")
    outcome = {"met": True}

    @register("fake", help="a fake group")
    def fake(quick: bool) -> list[Row]:
        return [
            Row(
                "fake",
                "a figure",
                Stat(1, 2, 3),
                "x/s",
                baselines={"base": Stat.of([1.0])},
                target="t",
                met=outcome["met"],
            )
        ]

    @register("absent", needs=("no_such_module_here", "exe:no-such-tool-here"), help="needs what is missing")
    def absent(quick: bool) -> list[Row]:
        raise AssertionError("must not run")

    @register("declines", help="raises Skip")
    def declines(quick: bool) -> list[Row]:
        raise Skip("not on this machine")

    yield outcome
    BENCHES.clear()
    BENCHES.update(saved)


def test_the_real_groups_register_once_each() -> None:
    bench_run.load()
    assert {"validate", "generate", "control_api", "emit", "startup", "contract", "redact"} <= set(BENCHES)
    with pytest.raises(ValueError, match="registered twice"):
        register("validate")(lambda quick: [])


def test_missing_needs_are_skipped_and_said(only_fakes, capsys) -> None:
    assert bench_run.main(["--check", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "[fake] a figure" in out
    assert "2 (min 1, max 3) x/s    target: t    MET" in out
    assert "[absent] SKIPPED: needs the no_such_module_here module, the no-such-tool-here executable" in out
    assert "[declines] SKIPPED: not on this machine" in out
    assert (bench_run.RESULTS / "latest.json").is_file()


def test_check_fails_on_a_missed_target_or_when_nothing_ran(only_fakes, capsys) -> None:
    only_fakes["met"] = False
    assert bench_run.main(["fake", "--check", "--no-save"]) == 1
    assert "target missed: [fake] a figure" in capsys.readouterr().err
    assert bench_run.main(["fake", "--no-save"]) == 0  # reported, not enforced, without --check
    assert bench_run.main(["absent", "--check", "--no-save"]) == 2


def test_interleaved_rounds_rotate_the_order() -> None:
    calls: list[str] = []
    figures = interleave(
        {"a": lambda: calls.append("a") or 2.0, "b": lambda: calls.append("b") or 1.0}, rounds=3
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert per_round(figures["a"], figures["b"]) == Stat(2.0, 2.0, 2.0)
