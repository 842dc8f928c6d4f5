"""An app the contract calls in process, with the paths it takes events and ONAPPINSTALL at.

::

    from contract_tests import InProcessApp, OnSessionStartContract

    class TestMyHandler(OnSessionStartContract):
        @pytest.fixture
        def b24_handler(self):
            return InProcessApp(app, events="/b24/events", install="/b24/install")

Only the standard library and the project's exceptions are imported here: the pytest plugin looks for this
class in every run that checks a handler.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any
from urllib.parse import urlsplit

from mock_portal.errors import UsageError

__all__ = ["DEFAULT_HOST", "InProcessApp"]

DEFAULT_HOST = "handler.b24-contract.invalid"
"""The host an in-process app is called with unless told otherwise (a name no DNS resolves)."""
_BAD_PATH_CHARS = " \r\n\t#"


@dataclass(frozen=True)
class InProcessApp:
    """A WSGI or ASGI app called in process, with where it receives events and ONAPPINSTALL.

    ``app``: a WSGI app ``app(environ, start_response)``, an ASGI app (``async``, three parameters) or a
    ``handler(body, headers, url)`` callable, told apart by signature (or a ``WsgiTarget``, ``AsgiTarget`` or
    ``CallableTarget`` from ``mock_portal`` to say which). ``events``: the path events are POSTed to (default
    ``/``). ``install``: the path ONAPPINSTALL is POSTed to (default: the event path; not used when the
    handler is configured with its application token). ``host``: the ``Host`` the app is called with
    (default ``handler.b24-contract.invalid``); give one your framework accepts, such as ``localhost`` for
    Django's ``ALLOWED_HOSTS``.

    Return it from the ``b24_handler`` fixture or give it to ``ContractConfig``. A path given here and by the
    plugin's options or ini settings (or ``ContractConfig``'s ``event_path`` / ``install_url``) must agree;
    two different paths are a usage error that names both places.
    """

    app: Any
    _: KW_ONLY
    events: str | None = None
    install: str | None = None
    host: str | None = None

    def __post_init__(self) -> None:
        app = self.app
        if isinstance(app, str) or getattr(app, "kind", None) == "http":
            raise UsageError(
                "InProcessApp: app must be a WSGI or ASGI app called in process; give a handler reached "
                "over HTTP as its URL instead"
            )
        if not callable(app) and getattr(app, "kind", None) not in ("asgi", "wsgi", "callable"):
            raise UsageError(f"InProcessApp: app must be a WSGI or ASGI app, not {type(app).__name__}")
        for name in ("events", "install"):
            value = getattr(self, name)
            if value is not None:
                check_path(value, f"InProcessApp: {name}", f"/{name}")
        if self.host is not None:
            _check_host(self.host)

    @property
    def url(self) -> str:
        """The URL events are delivered at: ``http://`` + the host + the event path."""
        return f"http://{self.host or DEFAULT_HOST}{self.events or '/'}"


def check_path(value: object, what: str, example: str = "/events") -> str:
    """``value`` if it is a path starting with ``/`` (a query may follow), else a one-line UsageError."""
    if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in _BAD_PATH_CHARS):
        raise UsageError(f"{what} must be a path starting with '/' (such as {example!r}), got {value!r}")
    return value


def _check_host(value: object) -> None:
    text = value if isinstance(value, str) else ""
    parts = urlsplit(f"http://{text}/")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number or out of range
        ok = bool(parts.hostname) and parts.netloc == text and "@" not in text and text.isprintable()
    except ValueError:
        ok = False
    if not ok or any(c in text for c in _BAD_PATH_CHARS):
        raise UsageError(
            f"InProcessApp: host must be a host name, optionally with a port (such as 'localhost'), "
            f"got {value!r}"
        )
