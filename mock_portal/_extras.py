"""The optional extras, checked up front: a feature that needs one says so before it starts any work.

``require("load", "matplotlib", what="the latency histogram")`` raises :class:`MissingExtraError` (a
:class:`~mock_portal.errors.UsageError`, so the CLI prints one line and exits 2) with the install hint when a
module of the extra is absent; ``missing("fast")`` lists the absent modules without raising, for callers
that skip what they cannot run (the benchmarks). Modules are looked up, never imported, so a check is cheap.
"""

from __future__ import annotations

import importlib.util

from mock_portal.errors import UnknownNameError, UsageError

__all__ = ["EXTRAS", "MissingExtraError", "hint", "missing", "require"]

DISTRIBUTION = "b24-contract"

EXTRAS: dict[str, tuple[str, ...]] = {
    # jsonschema-rs: the accelerated validator
    "fast": ("jsonschema_rs",),
    # Locust for distributed load, matplotlib for `mock-portal load`'s histogram
    "load": ("locust", "matplotlib"),
    # hypothesis, which generates the events of `verify --fuzz` and the plugin's --b24-fuzz
    "fuzz": ("hypothesis",),
}
"""Each optional extra of the distribution and the import names of the modules it brings."""


class MissingExtraError(UsageError):
    """A feature needs a module from an optional extra that is not installed; the message says how to
    install it."""

    def __init__(self, extra: str, modules: list[str], what: str, otherwise: str | None = None) -> None:
        self.extra = extra
        self.modules = modules
        self.what = what
        self.otherwise = otherwise
        super().__init__(str(self))

    def __str__(self) -> str:
        alternative = f", {self.otherwise}" if self.otherwise else ""
        return (
            f"{self.what} needs {', '.join(self.modules)} (the '{self.extra}' extra):"
            f" {hint(self.extra)}{alternative}"
        )


def hint(extra: str) -> str:
    """The one-line install command for ``extra``."""
    _check_known(extra)
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def missing(extra: str, *modules: str) -> list[str]:
    """The modules of ``extra`` (all of them, or only ``modules``) that cannot be imported here."""
    _check_known(extra)
    wanted = modules or EXTRAS[extra]
    unknown = [m for m in wanted if m not in EXTRAS[extra]]
    if unknown:
        raise UsageError(
            f"{', '.join(unknown)} is not part of the '{extra}' extra ({', '.join(EXTRAS[extra])})"
        )
    return [m for m in wanted if not _importable(m)]


def require(extra: str, *modules: str, what: str, otherwise: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` (or only ``modules``) is importable.

    ``what`` names the feature in the message ("the latency histogram", "python -m bench validate");
    ``otherwise`` ends it with a way around ("or pass --no-histogram").
    """
    absent = missing(extra, *modules)
    if absent:
        raise MissingExtraError(extra, absent, what, otherwise)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails to import, or a broken __spec__
        return False


def _check_known(extra: str) -> None:
    if extra not in EXTRAS:
        raise UnknownNameError("extra", extra, EXTRAS)
