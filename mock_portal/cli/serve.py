"""``mock-portal serve``: run the mock portal (REST, OAuth server, control API) until interrupted.

It binds 127.0.0.1 by default, prints the URLs it serves (one ``KEY URL`` line each, flushed at once so a
script can read them), then serves until Ctrl-C or SIGTERM and exits 0. With ``--tls`` the portals are also
served as real clients see them (``https://<domain>/rest/`` and the OAuth hosts, through a proxy with a CA
generated for the run), and one ``env NAME=VALUE`` line per variable says what a handler's environment needs.

Off loopback the control API could make the portal POST anywhere and show the answers, so binding a
non-loopback address prints a warning and demands a control token of every control request
(``Authorization: Bearer <token>``): ``--control-token`` (or the ``MOCK_PORTAL_CONTROL_TOKEN`` variable), or
one generated and printed once, on stderr, at start-up. The REST side stays open, as a real portal's is.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import threading
from types import FrameType
from typing import Any, TextIO

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
    parser.add_argument(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help="demand 'Authorization: Bearer TOKEN' on the control API (at least 16 characters; default: "
        f"${TOKEN_VARIABLE}, or none on loopback and a generated one elsewhere)",
    )
    parser.add_argument(
        "--max-record-bytes",
        default="256M",
        metavar="SIZE",
        help="memory each portal may hold in recorded REST calls and deliveries before the oldest are "
        "dropped and counted (e.g. 64M, 1G; default: 256M)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also serve https://<domain>/rest/ and the OAuth hosts through a local proxy; prints the "
        "HTTPS_PROXY and CA variables a handler needs (official SDKs then work unmodified)",
    )


TOKEN_VARIABLE = "MOCK_PORTAL_CONTROL_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``"64M"`` -> 67108864; a positive size in bytes with an optional K, M or G (powers of 1024)."""
    from mock_portal.errors import UsageError

    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or not 0 < int(number) * _UNITS[unit] <= 1 << 40:
        raise UsageError(f"--max-record-bytes takes a size such as 64M or 1G, got {text!r}")
    return int(number) * _UNITS[unit]


def control_token_for(host: str, given: str | None) -> tuple[str | None, list[str]]:
    """The control token to demand on ``host`` and the warnings to print (no token on loopback unless given;
    off loopback the given one, else a generated one)."""
    from mock_portal.errors import UsageError
    from mock_portal.server import is_loopback

    if given is not None and len(given) < 16:
        raise UsageError("--control-token must be at least 16 characters long")
    if is_loopback(host):
        return given, []
    warnings = [
        f"warning: {host} is not a loopback address; anyone who can reach it can use the REST API, and the "
        "control API answers only requests with 'Authorization: Bearer <control token>'"
    ]
    if given is None:
        given = secrets.token_urlsafe(24)
        warnings.append(f"control token (shown once): {given}")
    return given, warnings


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
    token, warnings = control_token_for(
        args.host, args.control_token or os.environ.get(TOKEN_VARIABLE) or None
    )
    max_record_bytes = parse_size(args.max_record_bytes)
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
    server = PortalServer(
        portals,
        host=args.host,
        port=args.port,
        clock=clock,
        control_token=token,
        max_record_bytes=max_record_bytes,
    )
    for line in warnings:
        err.write(f"mock-portal: {line}\n")
    err.flush()
    fronts: list[Any] = []

    def announce(srv: PortalServer) -> None:
        if args.tls:
            from mock_portal.tls import TlsFront

            fronts.append(TlsFront(srv).start())
        out.write(f"url {srv.url}\n")
        out.write(f"control {srv.url}/_portal\n")
        out.write(f"inspector {srv.url}/_portal/ui\n")
        out.write(f"oauth {srv.oauth_url}\n")
        for portal in srv.portals.values():
            out.write(f"portal {portal.domain} {portal.client_endpoint} member_id={portal.member_id}\n")
        for front in fronts:
            for name, value in front.env().items():
                out.write(f"env {name}={value}\n")
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
        for front in fronts:
            front.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.write("stopped\n")
    out.flush()
    return EXIT_OK
