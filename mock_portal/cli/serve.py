"""``mock-portal serve``: run the mock portal (REST, OAuth server, control API) until interrupted.

It binds 127.0.0.1 by default, prints the URLs it serves (one ``KEY URL`` line each, flushed at once so a
script can read them), then serves until Ctrl-C or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import TextIO

from mock_portal.cli import EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8024, help="port (default: 8024; 0 picks a free one)")
    parser.add_argument(
        "--portal",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="serve a portal with this domain (repeatable; default: one portal with a generated domain)",
    )
    parser.add_argument(
        "--owner-only",
        action="store_true",
        help="deliver OnSessionStart only to the connector's owner app, as the doc page says (default: every"
        " bound app, as the Bitrix module source does); see"
        " https://apidocs.bitrix24.com/api-reference/imopenlines/openlines/events/on-session-start.html",
    )
    parser.add_argument(
        "--delivery-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="per-delivery timeout (default: 10 s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for domains, member ids and tokens")


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Serve until interrupted; return the exit code."""
    from mock_portal.errors import UsageError
    from mock_portal.portal import Clock, Portal
    from mock_portal.server import PortalServer

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if args.delivery_timeout <= 0:
        raise UsageError(
            f"--delivery-timeout must be a positive number of seconds, got {args.delivery_timeout}"
        )
    clock = Clock()
    domains = args.portal or [None]
    portals = [
        Portal(
            domain,
            clock=clock,
            seed=None if args.seed is None else args.seed + index,
            session_events_owner_only=args.owner_only,
            delivery_timeout=args.delivery_timeout,
        )
        for index, domain in enumerate(domains)
    ]
    server = PortalServer(portals, host=args.host, port=args.port, clock=clock)

    def announce(srv: PortalServer) -> None:
        out.write(f"url {srv.url}\n")
        out.write(f"control {srv.url}/_portal\n")
        out.write(f"oauth {srv.oauth_url}\n")
        for portal in srv.portals.values():
            out.write(f"portal {portal.domain} {portal.client_endpoint} member_id={portal.member_id}\n")
        out.write("serving; Ctrl-C to stop\n")
        out.flush()

    # A signal that comes before uvicorn installs its own handlers stops the server through these; and
    # uvicorn re-raises the signal that stopped it once it has shut down, which these make harmless, so the
    # command exits 0 instead of dying of SIGTERM.
    def note(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever(on_ready=announce)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.write("stopped\n")
    out.flush()
    return EXIT_OK
