"""``python -m examples.broken --flaw NAME --port 8080``: serve one broken handler over HTTP (for --start).

``--log-bodies`` makes it log every body it receives, tokens and all, as careless handlers do (the contract
must mask them when it quotes the handler's log).
"""

from __future__ import annotations

import argparse
import io
import signal
import socketserver
import sys
import threading
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from .handlers import FLAWS, ContractHandler


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.command} {self.path.split('?', 1)[0][:100]}\n")


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _logging(app: ContractHandler) -> Any:
    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        length = environ.get("CONTENT_LENGTH") or "0"
        body = environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) < 1 << 20 else b""
        sys.stderr.write(f"received: {body[:3000].decode('utf-8', 'replace')}\n")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return app(environ, start_response)

    return logged


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.broken")
    parser.add_argument(
        "--flaw", choices=sorted(FLAWS), default=None, help="the flaw to switch on (none: honest)"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-bodies", action="store_true", help="log every body received, secrets included")
    args = parser.parse_args()
    handler = ContractHandler(args.flaw)
    server = _Server(("127.0.0.1", args.port), _Quiet)
    server.set_app(_logging(handler) if args.log_bodies else handler)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"listening on http://127.0.0.1:{server.server_port}/ (flaw: {args.flaw})", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        handler.close()
    return 0


raise SystemExit(main())
