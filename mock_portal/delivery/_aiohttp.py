"""Importing aiohttp without reading the system's CA store at import time.

When ``aiohttp.connector`` is imported it builds its two default SSL contexts (verified and not), and each
loads the system's CA store: OpenSSL reads and parses every certificate, about 25 ms apiece, a third of
aiohttp's import. A run that only delivers to ``http://`` handlers never uses them.

:func:`import_aiohttp` therefore imports aiohttp with that loading deferred: a context created meanwhile
(``SSLContext.set_default_verify_paths``, which ``create_default_context`` calls too) loads the store the
first time it is used: for a connection (``wrap_bio``, ``wrap_socket``) or asked about its certificates.
The load is the very call the import would have made, so a TLS connection verifies against the same store
(read at first use rather than at import: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` as they are then).
"""

from __future__ import annotations

import importlib
import ssl
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["import_aiohttp"]

# what reads a context's certificate store: each loads the deferred store first
_USES = ("wrap_bio", "wrap_socket", "get_ca_certs", "cert_store_stats")
_NAME = "set_default_verify_paths"
_PATCH_LOCK = threading.Lock()


def import_aiohttp(*, defer_ca_store: bool = True) -> ModuleType:
    """``import aiohttp``; with ``defer_ca_store`` (and aiohttp not imported yet) its default SSL contexts
    load the CA store on first use instead of at import."""
    if not defer_ca_store or "aiohttp" in sys.modules:
        return importlib.import_module("aiohttp")
    with _PATCH_LOCK:
        if "aiohttp" in sys.modules:
            return importlib.import_module("aiohttp")
        own = ssl.SSLContext.__dict__.get(_NAME)
        load: Callable[[ssl.SSLContext], None] = getattr(ssl.SSLContext, _NAME)

        def deferred(context: ssl.SSLContext) -> None:
            _load_on_first_use(context, load)

        setattr(ssl.SSLContext, _NAME, deferred)
        try:
            return importlib.import_module("aiohttp")
        finally:
            if own is None:
                delattr(ssl.SSLContext, _NAME)
            else:
                setattr(ssl.SSLContext, _NAME, own)


def _load_on_first_use(context: ssl.SSLContext, load: Callable[[ssl.SSLContext], None]) -> None:
    """Make every use of ``context`` that reads its store call ``load(context)`` once, first."""
    overrides = getattr(context, "__dict__", None)
    if overrides is None:  # a subclass with __slots__ (created by another thread meanwhile): load now
        load(context)
        return
    lock = threading.Lock()

    def loaded() -> None:
        with lock:
            if _USES[0] in overrides:  # not loaded yet (another thread may have done it meanwhile)
                load(context)
                for name in _USES:  # only once loaded: a use in another thread meanwhile waits above
                    overrides.pop(name, None)

    def deferring(name: str) -> Callable[..., Any]:
        def use(*args: Any, **kwargs: Any) -> Any:
            loaded()
            return getattr(context, name)(*args, **kwargs)

        return use

    for name in _USES:
        overrides[name] = deferring(name)
