"""Every command in README.md runs, as a user would paste it, and prints what the README shows.

Two ways, both through :mod:`tests.support.readme`:

* block by block in this test environment, from the checkout: no network, and each block on its own, so a
  failure points at one block. ``pip install`` lines are not run here (this environment already has the
  package and its extras);
* the whole README in order in a fresh virtualenv that has only what the README itself installs, from a copy
  of the source (the sdist) in a temporary folder: what a newcomer gets.

Both are release tests: the packaging env runs them once per CI run (the commands start servers and run the
contract and load for seconds; the CLI itself is tested on every Python by the tests/test_cli_* files).

The test command (tox) is what runs these tests, so it is only checked to be the one CI runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.dists import built_dists, fresh_venv
from tests.support.readme import Block, Shell, read_blocks

README = REPO_ROOT / "README.md"
CI_RUN = REPO_ROOT / ".ci" / "run"
TEST_COMMAND = 'python -m pip install --quiet --upgrade "tox>=4.20" && python -m tox'
MAIN_JOB = "python -m pip install . && mock-portal demo"
DOC_URL = re.compile(r"https://apidocs\.bitrix24\.com/[\w./-]+\.html(#[\w-]+)?")

BLOCKS = read_blocks(README)
CONSOLE = [b for b in BLOCKS if b.kind == "console"]
PYTHON = [b for b in BLOCKS if b.kind == "python"]
_INSTALL = re.compile(r"python -m pip install (?:--quiet )?(?:\.|'\.\[[\w,]+\]')(?=\s|$)")


def _is_test_command(block: Block) -> bool:
    return any(c.line == TEST_COMMAND for c in block.commands)


def _is_template(block: Block) -> bool:
    # the user's own app (`from myapp import app`, `from myapp.wsgi import ...`): compiled, not run
    return re.search(r"^from myapp(\.\w+)* import ", block.code, re.MULTILINE) is not None


def test_readme_has_the_two_quick_start_commands() -> None:
    commands = [c.line for block in CONSOLE for c in block.commands]
    assert commands[:2] == [MAIN_JOB, TEST_COMMAND]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert TEST_COMMAND in lines


def test_readme_explains_the_concepts_with_doc_links() -> None:
    """Failure messages and `demo` link to this section: its anchor is part of the interface."""
    text = README.read_text(encoding="utf-8")
    assert "\n## Concepts in five minutes\n" in text
    section = text.split("\n## Concepts in five minutes\n", 1)[1].split("\n## ", 1)[0]
    for topic in ("system mode", "application_token", "ONAPPUPDATE", "string", "docs-2026", "never retries"):
        assert topic in section, topic
    assert len(DOC_URL.findall(section)) >= 5
    assert "(#concepts-in-five-minutes)" in text  # linked from the introduction


def test_readme_cites_doc_urls_never_the_facts_file() -> None:
    text = README.read_text(encoding="utf-8")
    assert "§" not in text
    assert "BITRIX24-EVENTS" not in text


def _dev_environment() -> dict[str, str]:
    env = dict(os.environ)
    # `mock-portal` and `python` are this interpreter's, as in a user's activated virtualenv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _skip_install(line: str) -> str:
    # this environment already has the package and every extra; installing the checkout here would replace
    # the test environment's own copy
    return _INSTALL.sub("true", line)


# The README's commands start servers, run the contract and load for seconds: once per CI run is enough, in
# the packaging env (release), where they overlap the fresh virtualenvs' downloads
@pytest.mark.release
@pytest.mark.slow
@pytest.mark.parametrize("block", CONSOLE, ids=[b.id for b in CONSOLE])
def test_readme_block(block: Block, tmp_path: Path) -> None:
    if _is_test_command(block):
        pytest.skip("the test command is what runs this test")
    if any(c.line.startswith("python -m bench") for c in block.commands):
        # a benchmark burns CPU for seconds by design: once per CI run is enough
        pytest.skip("a benchmark: the fresh-virtualenv README test runs it")
    shell = Shell(REPO_ROOT, _dev_environment(), sys.executable, tmp_path, rewrite=_skip_install)
    shell.run(block)


@pytest.mark.release
@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_readme_python_example_runs(block: Block, tmp_path: Path) -> None:
    if _is_template(block):
        compile(block.code, block.id, "exec")
        return
    Shell(REPO_ROOT, _dev_environment(), sys.executable, tmp_path).run(block)


@pytest.mark.release
@pytest.mark.slow
@pytest.mark.timeout(1800)  # installs from the package index: minutes on a slow network
def test_the_whole_readme_in_a_fresh_virtualenv(tmp_path_factory: pytest.TempPathFactory) -> None:
    """In order, in one folder (a copy of the source, as a clone gives), in a virtualenv that has only what
    the README's own commands install: the package (``pip install .``, given the wheel built once) and the
    extras the README asks for. Nothing of this test run leaks in: no PYTHONPATH, no pytest settings."""
    missing = [tool for tool in ("curl", "node") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the README's commands need {', '.join(missing)}")
    dists = built_dists(tmp_path_factory)
    root = tmp_path_factory.mktemp("newcomer")
    with tarfile.open(dists["sdist"]) as sdist:
        if hasattr(tarfile, "data_filter"):
            sdist.extractall(root, filter="data")
        else:  # a Python from before the extraction filters (our own sdist, so nothing to filter)
            sdist.extractall(root)
    (checkout,) = [p for p in root.iterdir() if p.is_dir()]
    bin_dir, env = fresh_venv(root / "venv")
    logs = root / "logs"
    logs.mkdir()
    wheel = str(dists["wheel"])

    def install_the_built_wheel(line: str) -> str:
        # `pip install .` and `pip install '.[extra]'` install the wheel built once for the whole run
        line = line.replace("python -m pip install . ", f"python -m pip install {wheel} ")
        return re.sub(r"'\.\[([\w,]+)\]'", lambda m: f"'{wheel}[{m.group(1)}]'", line)

    shell = Shell(checkout, env, str(bin_dir / "python"), logs, rewrite=install_the_built_wheel, timeout=600)
    for block in BLOCKS:
        if block.kind == "console" and _is_test_command(block):
            continue
        if _is_template(block):
            compile(block.code, block.id, "exec")
            continue
        shell.run(block)
    installed = subprocess.run(
        [bin_dir / "python", "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # the README never asked for the project's test tools: their absence is what this run proves harmless
    assert "pytest-timeout" not in installed
    assert "pytest-xdist" not in installed
