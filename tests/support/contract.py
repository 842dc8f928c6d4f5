"""Helpers for the contract's own tests: serve a WSGI handler over loopback HTTP, run the contract on it."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from contract_tests.engine import ContractConfig, ContractReport, ContractRun


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve ``app`` threaded on 127.0.0.1 at a free port; yield its URL; stop it on the way out."""
    server = _ThreadingServer(("127.0.0.1", 0), _QuietHandler)
    server.set_app(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run_contract(handler: Any, **options: Any) -> ContractReport:
    """Run every clause against ``handler`` with ``options`` (ContractConfig fields) and return the report."""
    with ContractRun(ContractConfig(handler, **options)) as run:
        return run.run()
