"""tox's inline plugin for this project: the matrix finds every installed Python by itself.

tox looks for ``python3.10`` ... ``python3.13`` on the PATH. Under pyenv those are shims that answer only for
the versions made active (``PYENV_VERSION``, ``.python-version``, ``pyenv global``), so tox would skip every
version but the active one. This hands tox the interpreters pyenv has installed, to try first: each env still
takes only the one its ``py3XX`` name asks for. A Python found nowhere is skipped, and tox names it
("py310: skipped because could not find python interpreter with spec(s): py310", then "py310: SKIP" in the
summary); CI refuses to skip one (``TOX_SKIP_MISSING_INTERPRETERS=false`` in ``.ci/run``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tox.plugin import impl


def _pyenv_pythons() -> list[str]:
    """The ``python3`` of every version pyenv has installed (none where there is no pyenv)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = []
    for version in sorted((root / "versions").glob("3.*")):
        executable = version / "bin" / "python3"
        if executable.is_file() and os.access(executable, os.X_OK):
            found.append(str(executable))
    return found


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:
    options = state.conf.options
    given = list(getattr(options, "discover", None) or [])  # `tox --discover PATH...` comes first
    options.discover = given + [path for path in _pyenv_pythons() if path not in given]
