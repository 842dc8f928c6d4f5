"""The inspector page served at ``GET /_portal/ui``: static HTML, CSS and JavaScript shipped in the package.

The files (``mock_portal/ui/``) hold no data: the page reads the control API from the browser (the paginated
listings with their cursors, long-polled with ``?min=1&timeout=``) and drives it with its buttons, sending the
control token, when the server has one, as ``Authorization: Bearer`` from ``sessionStorage``. So the files
themselves are served without the token, under a Content-Security-Policy that allows scripts, styles and
requests from the server only (no inline script, no images, no frames).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Final

from mock_portal.errors import MockPortalError

__all__ = ["ASSETS", "PAGE", "UnknownAssetError", "asset"]

PAGE: Final = "index.html"
"""The page itself (``/_portal/ui``); the other assets are ``/_portal/ui/<name>``."""

ASSETS: Final[dict[str, str]] = {
    PAGE: "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""Every file of the page and its content type."""

_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = (
    ("content-security-policy", _POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
)


class UnknownAssetError(MockPortalError):
    """A name that is not one of the page's files."""


@functools.cache
def _read(name: str) -> bytes:
    return (resources.files("mock_portal") / "ui" / name).read_bytes()


def asset(name: str) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """The bytes of the page's file ``name`` and the headers to answer it with."""
    media = ASSETS.get(name)
    if media is None:
        raise UnknownAssetError(f"no inspector file {name[:60]!r} (files: {', '.join(ASSETS)})")
    return _read(name), (("content-type", media), *_HEADERS)
