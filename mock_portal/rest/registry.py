"""The registry of REST methods: each method is a small function registered with its name and its access
rules (the scopes that grant it, whether webhooks are refused), one module per scope."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_portal.portal import Portal


@dataclass(frozen=True)
class Caller:
    """Who calls: the portal called, the app (None: an incoming webhook), its user, scopes and token."""

    portal: Portal
    client_id: str | None  # None: an incoming webhook
    user_id: int
    scopes: tuple[str, ...]
    token: str | None
    http_method: str
    webhook: str | None = None  # the incoming webhook's code, when called through one

    @property
    def budget_key(self) -> str:
        """Whose method time budget a call spends: the app's, or the webhook's (each has its own)."""
        return self.client_id if self.client_id is not None else f"webhook:{self.webhook}"


Handler = Callable[[Caller, dict[str, Any]], Any]


@dataclass(frozen=True)
class Method:
    """A REST method: its handler and who may call it."""

    name: str
    handler: Handler
    scopes: tuple[str, ...]  # any of these grants access; () = no scope needed
    app_only: bool  # webhooks are refused (WRONG_AUTH_TYPE)


class MethodRegistry(Mapping[str, Method]):
    """REST methods by name (lowercase, as called); registering a name twice is refused.

    Scope modules named with :meth:`defer` register on first need: the first lookup of a name not registered
    yet (or the first listing) imports every deferred module, then answers. A process that never calls
    their methods never loads them.
    """

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}
        self._deferred: tuple[str, ...] = ()
        self._loading = threading.RLock()

    def __getitem__(self, name: str) -> Method:
        try:
            return self._methods[name]
        except KeyError:
            if not self._load_deferred():
                raise
        return self._methods[name]

    def __iter__(self) -> Iterator[str]:
        self._load_deferred()
        return iter(self._methods)

    def __len__(self) -> int:
        self._load_deferred()
        return len(self._methods)

    def defer(self, *modules: str) -> None:
        """Import ``modules`` (which register methods here) on the first lookup that misses, not now."""
        with self._loading:
            self._deferred += modules

    def _load_deferred(self) -> bool:
        """Import the deferred modules, if any are left; whether there were. A lookup in another thread
        meanwhile waits for them all, so no thread answers "not registered" for a method being loaded."""
        if not self._deferred:
            return False
        with self._loading:
            while self._deferred:
                name = self._deferred[0]
                importlib.import_module(name)
                # dropped once imported (a lookup outside the lock sees it pending until then)
                self._deferred = tuple(m for m in self._deferred if m != name)
        return True

    def add(self, spec: Method) -> Method:
        """Register ``spec``; a second method of the same name is a programming error."""
        if spec.name != spec.name.lower() or not spec.name:
            raise ValueError(f"a REST method name is lowercase and non-empty, got {spec.name!r}")
        if spec.name in self._methods:
            raise ValueError(f"REST method {spec.name!r} is already registered")
        self._methods[spec.name] = spec
        return spec

    def method(
        self, name: str, *, scopes: tuple[str, ...] = (), app_only: bool = False
    ) -> Callable[[Handler], Handler]:
        """Decorator: register the function as REST method ``name``."""

        def register(handler: Handler) -> Handler:
            self.add(Method(name, handler, scopes, app_only))
            return handler

        return register


METHODS = MethodRegistry()
"""The REST methods the mock portal answers (``batch`` is handled by the dispatcher itself)."""

method = METHODS.method

OPENLINES_SCOPES = ("imopenlines",)
CONNECTOR_SCOPES = ("imconnector", "imopenlines")
