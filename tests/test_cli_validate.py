"""``mock-portal validate``: in-process through ``mock_portal.cli.run``, once through the console script."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mock_portal._resources import data_dir
from mock_portal.cli import run

VALID = data_dir("fixtures") / "valid"
INVALID = data_dir("fixtures") / "invalid"


def _run(
    *argv: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = run(["validate", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def test_valid_directory_exits_0_with_one_line_per_file() -> None:
    code, out, err = _run(str(VALID))
    assert code == 0, out + err
    files = [p for p in VALID.rglob("*") if p.is_file() and p.suffix in (".json", ".txt")]
    lines = out.splitlines()
    assert len(lines) == len(files)
    assert all(": valid: ONSESSIONSTART" in line for line in lines)
    assert err == ""


def test_invalid_file_exits_1_with_path_message_and_doc() -> None:
    body = INVALID / "onsessionstart-docs-2026-user-closed-not-yn.wire.txt"
    code, out, _ = _run(str(body))
    assert code == 1
    head, *rest = out.splitlines()
    assert head.startswith(f"{body}: INVALID: ONSESSIONSTART")
    (issue,) = [line for line in rest if line.strip().startswith("$.")]
    assert "$.data.DATA[0].session.closed: 'X' is not one of 'Y', 'N'" in issue
    assert "on-session-start.html#session" in issue


def test_invalid_directory_skips_the_label_sidecars() -> None:
    code, out, _ = _run(str(INVALID), "--output", "json")
    assert code == 1
    verdicts = {Path(r["input"]).name: r["ok"] for r in json.loads(out)["results"]}
    bodies = [
        p for p in INVALID.iterdir() if not p.name.endswith(".expect.json") and p.suffix in (".json", ".txt")
    ]
    assert sorted(verdicts) == sorted(p.name for p in bodies)
    for body in bodies:
        stem = body.name.removesuffix(".wire.txt").removesuffix(".json")
        label = json.loads((INVALID / f"{stem}.expect.json").read_text(encoding="utf-8"))
        names_other_event = any(e["keyword"] == "const" for e in label["errors"])  # the CLI follows the body
        if label["shape"] == "any" and not label["strict"] and not names_other_event:
            assert verdicts[body.name] is False, body.name


def test_json_output_for_machines() -> None:
    code, out, _ = _run(
        str(VALID / "onsessionstart-docs-2024-user.wire.txt"),
        str(INVALID / "onsessionstart-docs-2026-user-missing-ts.wire.txt"),
        "--output",
        "json",
    )
    assert code == 1
    document = json.loads(out)
    assert document["summary"] == {"inputs": 2, "valid": 1, "invalid": 1}
    good, bad = document["results"]
    assert good["ok"]
    assert good["matched_shape"] == "docs-2024"
    assert bad["errors"][0]["path"] == "$.ts"
    assert bad["errors"][0]["doc"]["page"] == "api-reference/events/index.md"


def test_stdin_form_body(monkeypatch: pytest.MonkeyPatch) -> None:
    body = (VALID / "onsessionstart-source-2024-system.wire.txt").read_bytes()
    code, out, _ = _run("-", stdin=body, monkeypatch=monkeypatch)
    assert code == 0
    assert out.startswith("<stdin>: valid: ONSESSIONSTART (shape source-2024)")


@pytest.mark.parametrize(("fmt", "code"), [("form", 0), ("json", 2)])
def test_format_can_be_forced(fmt: str, code: int) -> None:
    got, _, err = _run(str(VALID / "onsessionstart-docs-2026-user.wire.txt"), "--format", fmt)
    assert got == code, err


def test_shape_and_strict_options() -> None:
    body = str(VALID / "onsessionstart-docs-2024-user.json")
    assert _run(body, "--shape", "docs-2024", "--strict")[0] == 0
    code, out, _ = _run(body, "--shape", "docs-2026")
    assert code == 1
    assert "missing required property 'session'" in out


def test_event_option_overrides_the_body() -> None:
    # ONAPPTEST is catalogued without a shape of its own: the envelope is all there is to check
    code, out, _ = _run(str(VALID / "onsessionstart-docs-2026-user.json"), "--event", "ONAPPTEST")
    assert code == 0
    assert "only the envelope" in out


def test_capture_wrapper_is_unwrapped(tmp_path: Path) -> None:
    payload = json.loads((VALID / "onsessionstart-docs-2026-system.json").read_text(encoding="utf-8"))
    wrapped = {"event": "ONSESSIONSTART", "source": "test", "original_format": "json", "payload": payload}
    path = tmp_path / "capture.json"
    path.write_text(json.dumps(wrapped), encoding="utf-8")
    code, out, _ = _run(str(path))
    assert code == 0
    assert "valid: ONSESSIONSTART (shape docs-2026)" in out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"\xff\xfe\xfa event=x", "not UTF-8"),
        (b'{"event": "ONSESSIONSTART", ', "bad JSON at line 1"),
        (b"[1, 2]", "JSON must be an object"),
        (b"   \n", "empty input"),
        (b"event=ONSESSIONSTART&data%5BDATA%5D=%FF", "not a valid form body"),
        (b"event=ONNOSUCHEVENTATALL&ts=1", "cannot choose a schema"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "body.txt"
    path.write_bytes(content)
    code, out, err = _run(str(path), str(VALID / "onsessionstart-docs-2024-user.json"))
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"mock-portal: error: {path}: ")
    assert fragment in line
    assert "Traceback" not in err
    assert "valid: ONSESSIONSTART" in out  # the other input is still checked


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    code, _, err = _run(str(tmp_path / "nope.txt"), str(tmp_path))
    assert code == 2
    assert "nope.txt: no such file or directory" in err
    assert "directory holds no files to check" in err


def test_too_large_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_portal.cli import validate as command

    monkeypatch.setattr(command, "MAX_INPUT_BYTES", 64)
    path = tmp_path / "big.txt"
    path.write_bytes(b"event=ONSESSIONSTART&" * 10)
    code, _, err = _run(str(path))
    assert code == 2
    assert "larger than 64 bytes" in err


def test_unknown_names_are_usage_errors_with_a_suggestion() -> None:
    code, _, err = _run(str(VALID), "--event", "ONSESIONSTART")
    assert code == 2
    assert "did you mean 'ONSESSIONSTART'" in err
    code, _, err = _run(str(VALID), "--event", "ONSESSIONSTART", "--shape", "docs2026")
    assert code == 2
    assert "did you mean 'docs-2026'" in err
    code, _, err = _run("--output", "yaml")
    assert code == 2
    assert "invalid choice" in err


def test_secrets_do_not_reach_the_output() -> None:
    body = INVALID / "onsessionstart-docs-2026-example-application-token-number.json"
    for output in ("text", "json"):
        code, out, err = _run(str(body), "--output", output)
        assert code == 1
        assert "51856731" not in out + err


@pytest.mark.slow
def test_console_script_in_a_subprocess() -> None:
    script = shutil.which("mock-portal") or str(Path(sys.executable).with_name("mock-portal"))
    if not Path(script).exists():
        pytest.skip("the mock-portal console script is not installed")
    body = (INVALID / "onsessionstart-docs-2026-user-missing-close-term.wire.txt").read_bytes()
    done = subprocess.run([script, "validate", "-", "--output", "json"], input=body, capture_output=True)
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["matched_shape"] == "docs-2026"
    assert [e["path"] for e in result["errors"]] == ["$.data.DATA[0].session.close_term"]
    ok = subprocess.run([script, "validate", str(VALID)], capture_output=True, text=True)
    assert ok.returncode == 0
    assert ok.stderr == ""
