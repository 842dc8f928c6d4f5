"""Delivery over TLS when aiohttp was imported with its CA store deferred (``delivery._aiohttp``): the first
delivery goes to an ``http://`` handler, so the store is read at the first TLS connection, not at import;
certificates are still verified against it. A fresh interpreter, so this import is the first."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("trustme")

_SCRIPT = textwrap.dedent(
    """
    import http.server, os, ssl, sys, tempfile, threading
    import trustme

    trusted, stranger = trustme.CA(), trustme.CA()
    folder = tempfile.mkdtemp()
    trusted.cert_pem.write_to_path(os.path.join(folder, "ca.pem"))
    os.environ["SSL_CERT_FILE"] = os.path.join(folder, "ca.pem")  # the store the deferred load reads
    os.environ.pop("SSL_CERT_DIR", None)

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    def serve(authority=None):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        if authority is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            authority.issue_cert("127.0.0.1").configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        scheme = "https" if authority is not None else "http"
        return f"{scheme}://127.0.0.1:{server.server_port}/"

    assert "aiohttp" not in sys.modules
    from mock_portal.delivery import Deliverer

    with Deliverer(timeout=10) as deliverer:
        plain = deliverer.deliver(serve(), b"event=ONAPPINSTALL")
        assert plain.outcome == "ok", plain
        assert "set_default_verify_paths" not in vars(ssl.SSLContext)  # the import's patch is gone
        import aiohttp.connector

        default = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
        if default is not None:
            assert "wrap_bio" in vars(default), "the CA store was read at import"
        good = deliverer.deliver(serve(trusted), b"event=ONAPPINSTALL")
        assert good.outcome == "ok", good
        bad = deliverer.deliver(serve(stranger), b"event=ONAPPINSTALL")
        assert bad.outcome != "ok" and "certificate" in (bad.error or ""), bad
        if default is not None:
            assert "wrap_bio" not in vars(default)
    print("verified")
    """
)


def test_tls_deliveries_verify_against_the_store_read_on_first_use() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "verified"
