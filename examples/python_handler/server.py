"""Serve the handler over HTTP with a threaded WSGI server, and its command line.

``python -m examples.python_handler --port 8080`` (from the repository root) or, with ``examples/`` on
``PYTHONPATH``, ``python -m python_handler --port 8080``. It prints one line,
``listening on http://HOST:PORT/``, on stdout once the socket accepts connections, logs (without secrets) to
stderr, and stops cleanly on SIGTERM or SIGINT: it stops accepting, lets the workers finish the queued jobs,
and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from .app import HandlerApp, HandlerConfig

__all__ = ["ThreadingWSGIServer", "add_arguments", "build_parser", "main", "make_server", "serve"]

log = logging.getLogger("b24_handler")


class _QuietHandler(WSGIRequestHandler):
    # a delivery that stalls mid-body is cut after this many seconds (answered 408), so nothing hangs
    timeout = 15

    def setup(self) -> None:
        super().setup()
        # wsgiref writes the headers and the body separately; without TCP_NODELAY the second write waits for
        # the client's delayed ACK (tens of milliseconds per delivery)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        # the request line may carry a query string; log only the method, path and status
        path = self.path.split("?", 1)[0] if hasattr(self, "path") else "-"
        log.debug("%s %s %s", self.client_address[0], getattr(self, "command", "-"), path[:200])

    def log_error(self, format: str, *args: Any) -> None:
        log.info("bad request from %s: %s", self.client_address[0], (format % args)[:200])


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """A WSGI server that answers each connection on its own thread (bursts of deliveries run in parallel)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(app: HandlerApp, host: str = "127.0.0.1", port: int = 0) -> ThreadingWSGIServer:
    """Bind ``host:port`` (0 picks a free port) and return the server, ready for ``serve_forever()``."""
    server = ThreadingWSGIServer((host, port), _QuietHandler)
    server.set_app(app)
    return server


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def build_parser() -> argparse.ArgumentParser:
    """The command-line options; each secret can also come from an environment variable."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.python_handler",
        description="Reference Bitrix24 event handler (OnAppInstall/Update/Uninstall, OnSessionStart).",
    )
    add_arguments(parser)
    return parser


def add_arguments(
    parser: argparse.ArgumentParser, *, default_port: int = 0, default_log_level: str = "INFO"
) -> None:
    """Declare the handler's options on ``parser`` (``mock-portal example-handler`` reuses them)."""
    parser.add_argument("--host", default=_env("B24_HANDLER_HOST") or "127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=int(_env("B24_HANDLER_PORT") or default_port),
        help=f"port (default: {default_port or 'a free one'}; 0 picks a free port)",
    )
    parser.add_argument("--client-id", default=_env("B24_CLIENT_ID"), help="env B24_CLIENT_ID")
    parser.add_argument(
        "--client-secret",
        default=_env("B24_CLIENT_SECRET"),
        help="env B24_CLIENT_SECRET (prefer the variable: flags show in process lists)",
    )
    parser.add_argument(
        "--credentials-file",
        default=_env("B24_CREDENTIALS_FILE"),
        help="env B24_CREDENTIALS_FILE: JSON {client_id, client_secret}, read when a token is refreshed",
    )
    parser.add_argument(
        "--application-token",
        default=_env("B24_APPLICATION_TOKEN"),
        help="env B24_APPLICATION_TOKEN: accept events carrying this token (installed by other means)",
    )
    parser.add_argument(
        "--member-id", default=_env("B24_MEMBER_ID"), help="restrict --application-token to this member_id"
    )
    parser.add_argument(
        "--token-url", default=_env("B24_TOKEN_URL"), help="OAuth token URL (default: from server_endpoint)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker threads doing the REST calls")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20)
    parser.add_argument(
        "--log-level",
        default=default_log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help=f"INFO logs each event, on stderr and without secrets (default: {default_log_level})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the handler until SIGTERM or SIGINT; return the exit code."""
    return serve(build_parser().parse_args(argv))


def serve(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Serve with the parsed options until SIGTERM or SIGINT; the ``listening on`` line goes to ``out``."""
    if args.workers < 1 or args.max_body_bytes < 1 or not 0 <= args.port <= 65535:
        print("error: --workers and --max-body-bytes must be positive, --port 0..65535", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    config = HandlerConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        credentials_file=args.credentials_file,
        application_token=args.application_token,
        member_id=args.member_id,
        token_url=args.token_url,
        workers=args.workers,
        max_body_bytes=args.max_body_bytes,
    )
    app = HandlerApp(config).start()
    try:
        server = make_server(app, args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        app.close()
        return 2

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        # shutdown() waits for serve_forever() to return, so it must run on another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"listening on http://{args.host}:{server.server_port}/", file=out or sys.stdout, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.close()
        log.info("stopped")
    return 0
