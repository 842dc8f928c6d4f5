"""The wheel and sdist of the checkout, built once per test run, and fresh virtualenvs to install them in.

Under pytest-xdist every worker asks for the dists; the first builds them into the run's shared temporary
folder under a file lock, the others wait for the lock and reuse them.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def built_dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"wheel": ..., "sdist": ...}`` of the checkout, built at most once per test run."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "b24-dists"
    with (shared / "b24-dists.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (out / "done").exists():
                out.mkdir(exist_ok=True)
                build = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "build",
                        "--no-isolation",
                        "--wheel",
                        "--sdist",
                        "--outdir",
                        str(out),
                    ],
                    cwd=REPO_ROOT,
                    capture_output=True,
                    text=True,
                )
                assert build.returncode == 0, build.stdout + build.stderr
                (out / "done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def fresh_venv(where: Path) -> tuple[Path, dict[str, str]]:
    """A new virtualenv with pip and nothing else, and the environment of a shell in which it is activated
    (none of this test run's own settings: no PYTHONPATH, no PYTEST_* variables)."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    bin_dir = where / ("Scripts" if sys.platform == "win32" else "bin")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "PYTHON", "TOX_", "VIRTUAL_ENV", "COV_CORE_", "_PYTEST"))
    }
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(where)
    return bin_dir, env
