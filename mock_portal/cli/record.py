"""``mock-portal record --listen PORT --forward-to URL --out FILE``: a recording relay in front of a handler.

Point the portal (real or mock) at ``http://127.0.0.1:PORT/<path>``: each request is forwarded to the same
path under ``--forward-to`` and answered with the handler's answer; each delivery is appended to ``--out`` as
one JSON line, secrets replaced by stable placeholders (the format is in :mod:`mock_portal.record`). It binds
127.0.0.1 by default, prints where it listens, and runs until Ctrl-C or SIGTERM; then it prints how many
deliveries it recorded and exits 0. ``--out`` is written afresh.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import TextIO

from mock_portal.cli import EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``mock-portal record``."""
    parser.add_argument(
        "--listen",
        "--port",
        dest="port",
        type=int,
        required=True,
        metavar="PORT",
        help="port to listen on (0: a free one)",
    )
    parser.add_argument(
        "--forward-to",
        required=True,
        metavar="URL",
        help="the handler: requests go to their path under this URL",
    )
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="the recording (JSON lines; overwritten)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds to wait for the handler (default: 30)",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=1 << 20,
        metavar="BYTES",
        help="largest request body relayed; larger ones are answered 413 and recorded (default: 1 MiB)",
    )


def execute(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Relay and record until interrupted; return the exit code."""
    from mock_portal.record import Relay
    from mock_portal.redact import redact_text

    relay = Relay(
        args.forward_to,
        args.out,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        max_body_bytes=args.max_body,
    )

    def announce(running: Relay) -> None:
        out.write(f"listening {running.url} -> {redact_text(args.forward_to)}; recording to {args.out}\n")
        out.flush()

    def note(signum: int, frame: FrameType | None) -> None:
        relay.request_stop()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        relay.serve_forever(on_ready=announce)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.write(f"recorded {relay.recorded} deliveries to {args.out}\n")
    out.flush()
    return EXIT_OK
