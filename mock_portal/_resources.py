"""Find the project's data folders: the packaged copy first, then the checkout.

A wheel carries ``schemas/`` and ``fixtures/`` as ``mock_portal/_data/...`` (hatchling force-include); an
editable install or a plain checkout has them at the repository root, beside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from mock_portal.errors import DataNotFoundError

DataKind = Literal["schemas", "fixtures"]

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(kind: DataKind) -> Path:
    """Return the folder holding ``kind`` ("schemas" or "fixtures"), or raise :class:`DataNotFoundError`."""
    candidates = (_PACKAGE_DIR / "_data" / kind, _PACKAGE_DIR.parent / kind)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataNotFoundError(f"the {kind}/ folder is missing from this installation (looked in {tried})")
