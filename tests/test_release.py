"""Release checks: the wheel and sdist carry the data, the typing markers and the entry points, and an
installed wheel finds its schemas and fixtures without the checkout."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.dists import built_dists

pytestmark = pytest.mark.release
INSPECTOR_FILES = ("index.html", "app.js", "style.css")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return built_dists(tmp_path_factory)


def _repo_files(folder: str) -> set[str]:
    root = REPO_ROOT / folder
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("folder", ["schemas", "fixtures"])
def test_wheel_carries_the_data(dists: dict[str, Path], folder: str) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    prefix = f"mock_portal/_data/{folder}/"
    packaged = {n[len(prefix) :] for n in names if n.startswith(prefix)}
    expected = _repo_files(folder)
    assert expected, f"{folder}/ is empty in the checkout"
    assert packaged == expected


def test_wheel_carries_typing_markers_and_entry_points(dists: dict[str, Path]) -> None:
    wheel = zipfile.ZipFile(dists["wheel"])
    names = set(wheel.namelist())
    assert {"mock_portal/py.typed", "contract_tests/py.typed"} <= names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[pytest11]" in text
    assert "b24_contract = contract_tests.plugin" in text
    assert "mock-portal = mock_portal.cli:main" in text


def test_sdist_carries_the_sources_and_data(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for required in (
        "pyproject.toml",
        "README.md",
        "tox.ini",
        "toxfile.py",
        "tests/pytest.ini",
        "mock_portal/wire.py",
        "schemas/index.json",
        "fixtures/README.md",
    ):
        assert required in names


def test_the_project_test_settings_stay_out_of_pyproject(dists: dict[str, Path]) -> None:
    """pytest reads pyproject.toml from the folder it runs in: settings there would apply to a user's own run
    in a checkout or an unpacked sdist (and fail it: `timeout` needs pytest-timeout, a test-only tool)."""
    with tarfile.open(dists["sdist"]) as sdist:
        (member,) = [
            m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml")
        ]
        handle = sdist.extractfile(member)
        assert handle is not None
        text = handle.read().decode()
    assert "[tool.pytest" not in text
    assert "[pytest]" not in (REPO_ROOT / "tox.ini").read_text(encoding="utf-8")


def test_installed_wheel_finds_its_data_outside_the_checkout(dists: dict[str, Path], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(dists["wheel"]),
        ],
        check=True,
        capture_output=True,
    )
    # then the dependencies come from this environment, appended after the new venv's own site-packages (after
    # the install, so pip does not take this environment's copy for an installed b24-contract)
    new_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(new_site, "b24_release_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    probe = (
        "from mock_portal._resources import data_dir; print(data_dir('schemas')); print(data_dir('fixtures'))"
    )
    found = subprocess.run(
        [python, "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.split()
    site = env_dir.resolve()
    assert all(Path(p).resolve().is_relative_to(site) for p in found), found
    assert all("_data" in Path(p).parts for p in found), found
    # the README's main job runs from the installed wheel alone: the bundled handler ships inside it
    demo = subprocess.run(
        [env_dir / "bin" / "mock-portal", "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "PASSED" in demo.stdout
    # and so does the inspector page, read from the installed package
    probe = f"from mock_portal.inspector import asset; print(*(len(asset(n)[0]) for n in {INSPECTOR_FILES}))"
    page = subprocess.run(
        [python, "-c", probe],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert page == [str((REPO_ROOT / "mock_portal" / "ui" / n).stat().st_size) for n in INSPECTOR_FILES]


def test_wheel_carries_the_bundled_reference_handler(dists: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    assert "mock_portal/_examples/python_handler/app.py" in names


def test_wheel_carries_the_inspector_page(dists: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    assert {f"mock_portal/ui/{name}" for name in INSPECTOR_FILES} <= names
