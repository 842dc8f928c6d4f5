"""The reference Bitrix24 event handler in Python: standard-library WSGI server, ``requests`` for REST calls.

``HandlerApp`` is the WSGI app (also drivable in-process through :meth:`HandlerApp.handle`), ``make_server``
serves it on a threaded server, ``main`` is the command line (``python -m examples.python_handler``).
"""

from .app import HandlerApp, HandlerConfig, Installation, Response, Session, sessions_from, token_url_for
from .server import add_arguments, main, make_server, serve

__all__ = [
    "HandlerApp",
    "HandlerConfig",
    "Installation",
    "Response",
    "Session",
    "add_arguments",
    "main",
    "make_server",
    "serve",
    "sessions_from",
    "token_url_for",
]
