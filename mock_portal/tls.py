"""The portal as real clients see it: ``https://<domain>/rest/`` and the OAuth hosts, over TLS, via a proxy.

Official SDKs build their URLs from the portal's domain (``https://{domain}/rest/...``) and call the OAuth
server at a fixed host (``https://oauth.bitrix.info``, ``https://oauth.bitrix24.tech``), so they cannot be
pointed at ``http://127.0.0.1:PORT``. :class:`TlsFront` lets them run unmodified: it generates a CA
(``trustme``), runs a CONNECT proxy (:mod:`mock_portal.proxy`) that tunnels only to the portals' domains and
the OAuth hosts, terminates TLS there with a certificate for the requested host, and hands the plain HTTP to a
small router that maps ``Host`` + path onto the portal server's routes. A handler process needs only the
standard variables :meth:`TlsFront.env` gives (``HTTPS_PROXY``, ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS`` ...)::

    with PortalServer() as srv, TlsFront(srv) as front:
        subprocess.Popen(handler_cmd, env={**os.environ, **front.env()})
        srv.portal.client_endpoint        # https://<domain>/rest/ : what events now advertise

``TlsFront`` also takes a portal server's URL (another process): it then forwards over HTTP and learns the
domains from the control API. Every byte stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from mock_portal.errors import UsageError
from mock_portal.proxy import ConnectProxy, TunnelLog

__all__ = [
    "DEFAULT_OAUTH_HOST",
    "OAUTH_HOSTS",
    "CertificateAuthority",
    "HostRouter",
    "TlsFront",
    "portal_path",
    "public_endpoints",
]

OAUTH_HOSTS: tuple[str, ...] = ("oauth.bitrix.info", "oauth.bitrix24.tech")
"""The OAuth server's hosts: the one events advertise, and the one b24pysdk calls."""
DEFAULT_OAUTH_HOST = "oauth.bitrix.info"
_LOOPBACK = "127.0.0.1,localhost,::1"
_START_TIMEOUT = 30.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class _ServesPortals(Protocol):
    @property
    def app(self) -> Any: ...

    @property
    def portals(self) -> Mapping[str, Any]: ...


def public_endpoints(domain: str, *, oauth_host: str = DEFAULT_OAUTH_HOST) -> dict[str, str]:
    """The URLs a real portal advertises, as keyword arguments for ``Portal.set_endpoints``."""
    return {
        "client_endpoint": f"https://{domain}/rest/",
        "server_endpoint": f"https://{oauth_host}/rest/",
        "oauth_url": f"https://{oauth_host}/oauth/token/",
    }


def portal_path(host: str, path: str, *, oauth_hosts: Iterable[str] = OAUTH_HOSTS) -> str:
    """Where the portal server answers ``https://<host><path>``.

    ``<domain>/rest/...`` -> ``/<domain>/rest/...``; on an OAuth host ``/rest/...`` (REST through the OAuth
    server, as ``server_endpoint`` and b24pysdk's ``app.info`` use it) -> ``/oauth/rest/...``; anything else
    is left as it is (the server answers it, or a JSON 404).
    """
    host = host.lower()
    if host in set(oauth_hosts):
        return "/oauth" + path if path.startswith("/rest/") else path
    if path.startswith("/rest/") or path == "/rest":
        return f"/{host}{path}"
    return path


class CertificateAuthority:
    """A CA generated for this run, its PEM files in ``directory``, and a TLS server context per host."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self._ca = trustme.CA(organization_name="b24-contract mock portal")
        self.directory = directory
        self.ca_file = directory / "mock-portal-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self.bundle_file = directory / "mock-portal-ca-bundle.pem"
        self.bundle_file.write_bytes(self._ca.cert_pem.bytes() + b"\n" + _system_bundle())
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server-side context presenting a certificate for ``host`` (issued once, then cached)."""
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.set_alpn_protocols(["http/1.1"])
                self._ca.issue_cert(host).configure_cert(context)
                self._contexts[host] = context
            return context


def _system_bundle() -> bytes:
    # the bundle replaces the client's default trust store (SSL_CERT_FILE, REQUESTS_CA_BUNDLE), so it keeps
    # the usual roots next to the generated CA: a handler's calls to other hosts still verify as before
    candidates: list[str | None] = []
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:
        pass
    candidates.append(ssl.get_default_verify_paths().cafile)
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return b""


class HostRouter:
    """ASGI middleware: route by ``Host`` (see :func:`portal_path`), keep the Host header, scheme https."""

    def __init__(self, upstream: Asgi, *, oauth_hosts: Iterable[str] = OAUTH_HOSTS) -> None:
        self.upstream = upstream
        self.oauth_hosts = tuple(oauth_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            headers = list(scope.get("headers", []))
            host = next((v.decode("latin-1") for k, v in headers if k.lower() == b"host"), "")
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            path = str(scope.get("path", "/"))
            routed = portal_path(host, path, oauth_hosts=self.oauth_hosts)
            if routed != path:
                prefix = routed[: len(routed) - len(path)].encode("latin-1")
                raw = scope.get("raw_path") or path.encode("utf-8")
                scope = dict(scope, path=routed, raw_path=prefix + raw)
            scope = dict(scope, scheme="https", headers=[*headers, (b"x-forwarded-proto", b"https")])
        await self.upstream(scope, receive, send)


class _Forwarder:
    """ASGI app answering by forwarding to a portal server's URL (when it runs in another process)."""

    _HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade"})

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._client: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        import httpx

        if self._client is None:
            # trust_env=False: the forwarded call never goes through a proxy set in this process's environment
            self._client = httpx.AsyncClient(trust_env=False, timeout=120.0)
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                break
        raw = scope.get("raw_path") or str(scope["path"]).encode("utf-8")
        query = scope.get("query_string", b"")
        url = self.base_url + raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in self._HOP]
        response = await self._client.request(scope["method"], url, headers=headers, content=b"".join(chunks))
        out = [(k, v) for k, v in response.headers.raw if k.lower() not in self._HOP]
        out.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class TlsFront:
    """The TLS/proxy front of a portal server: a generated CA, a CONNECT proxy and a Host router.

    ``portal`` is a started :class:`~mock_portal.server.PortalServer` (answered in process; its portals'
    endpoints are pointed at ``https://<domain>/rest/`` and the OAuth host unless ``point=False``) or a portal
    server's base URL. ``domains`` limits the portal hosts tunnelled to; by default they are the server's
    portals at the time of each CONNECT.
    """

    def __init__(
        self,
        portal: _ServesPortals | str,
        domains: Iterable[str] | Callable[[], Iterable[str]] | None = None,
        *,
        oauth_hosts: Iterable[str] = OAUTH_HOSTS,
        point: bool = True,
    ) -> None:
        self.oauth_hosts = tuple(h.lower() for h in oauth_hosts)
        self._server: _ServesPortals | None = None
        self._url: str | None = None
        if isinstance(portal, str):
            parts = urlsplit(portal)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"TlsFront: give a PortalServer or its base URL, got {portal!r}")
            self._url = portal.rstrip("/")
        elif hasattr(portal, "app") and hasattr(portal, "portals"):
            self._server = portal
        else:
            raise UsageError(f"TlsFront: give a PortalServer or its base URL, got {type(portal).__name__}")
        self._domains = domains
        self._point = point
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.ca: CertificateAuthority | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._proxy: ConnectProxy | None = None
        self._backend: Any = None
        self._backend_task: asyncio.Future[None] | None = None
        self._forwarder: _Forwarder | None = None

    # ------------------------------------------------------------------ hosts
    def _known_domains(self) -> set[str]:
        if callable(self._domains):
            return {d.lower() for d in self._domains()}
        if self._domains is not None:
            return {d.lower() for d in self._domains}
        if self._server is not None:
            return {d.lower() for d in self._server.portals}
        return self._domains_from_control_api()

    def _domains_from_control_api(self) -> set[str]:
        import json
        import urllib.request

        # a direct opener: the control API is on loopback and must not go through a proxy from the environment
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self._url}/_portal/portals", timeout=10) as answer:
            portals = json.loads(answer.read())
        return {str(p["domain"]).lower() for p in portals if isinstance(p, dict) and "domain" in p}

    def allows(self, host: str) -> bool:
        """Whether the proxy tunnels to ``host`` (a portal's domain or an OAuth host)."""
        host = host.lower()
        if host in self.oauth_hosts:
            return True
        try:
            return host in self._known_domains()
        except (OSError, ValueError):
            return False

    def point(self, portal: Any) -> None:
        """Make ``portal`` advertise its real-looking URLs (``https://<domain>/rest/``, the OAuth host)."""
        portal.set_endpoints(**public_endpoints(portal.domain, oauth_host=self.oauth_hosts[0]))

    # ------------------------------------------------------------------ what a handler needs
    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:<port>``: the proxy's URL."""
        if self._proxy is None:
            raise UsageError("the TLS front is not started")
        return f"http://127.0.0.1:{self._proxy.port}"

    @property
    def log(self) -> TunnelLog:
        """Hosts tunnelled to and CONNECT targets refused, in order."""
        if self._proxy is None:
            raise UsageError("the TLS front is not started")
        return self._proxy.log

    def env(self) -> dict[str, str]:
        """The environment variables that send a handler's HTTPS calls to the portals through this front.

        The proxy for Python (requests, httpx, aiohttp with ``trust_env``), curl and PHP's curl, and Node
        22.21+ (``NODE_USE_ENV_PROXY``); the CA bundle for OpenSSL (``SSL_CERT_FILE``), requests, curl, and
        Node's extra CAs; loopback stays direct.
        """
        if self.ca is None:
            raise UsageError("the TLS front is not started")
        proxy = self.proxy_url
        bundle = str(self.ca.bundle_file)
        return {
            "HTTPS_PROXY": proxy,
            "https_proxy": proxy,
            "NO_PROXY": _LOOPBACK,
            "no_proxy": _LOOPBACK,
            "SSL_CERT_FILE": bundle,
            "REQUESTS_CA_BUNDLE": bundle,
            "CURL_CA_BUNDLE": bundle,
            "NODE_EXTRA_CA_CERTS": str(self.ca.ca_file),
            "NODE_USE_ENV_PROXY": "1",
        }

    @contextmanager
    def applied(self) -> Iterator[dict[str, str]]:
        """Set :meth:`env` in this process's environment (for in-process handlers); restore it afterwards."""
        values = self.env()
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield values
        finally:
            for name, old in saved.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> TlsFront:
        """Generate the CA, start the proxy and the router on 127.0.0.1; point the portals; return self."""
        if self._thread is not None:
            raise UsageError("the TLS front is already started")
        self._dir = tempfile.TemporaryDirectory(prefix="b24-contract-tls-")
        self.ca = CertificateAuthority(Path(self._dir.name))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mock-portal-tls", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._astart(), self._loop).result(_START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        if self._point and self._server is not None:
            self._repoint(self._server.app)
        return self

    def _repoint(self, app: Any) -> None:
        # PortalApp points every portal it serves (now and later) through its ``_point`` method; until it
        # takes an endpoint policy of its own, the front stands in for that method on this one instance
        if callable(getattr(app, "_point", None)):
            app._point = self.point
        for portal in self._server.portals.values() if self._server is not None else ():
            self.point(portal)

    def _unpoint(self) -> None:
        app = self._server.app if self._server is not None else None
        if app is not None and "_point" in vars(app):
            del app._point
            if callable(getattr(app, "set_base_url", None)):
                app.set_base_url(app.base_url)  # back to the server's own http URLs

    async def _astart(self) -> None:
        import uvicorn

        upstream: Asgi
        if self._server is not None:
            upstream = self._server.app
        else:
            assert self._url is not None
            self._forwarder = _Forwarder(self._url)
            upstream = self._forwarder
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.setblocking(False)
        config = uvicorn.Config(
            HostRouter(upstream, oauth_hosts=self.oauth_hosts),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._backend = uvicorn.Server(config)
        # the socket listens already, so tunnels opened from now on queue until uvicorn accepts them
        self._backend_task = asyncio.ensure_future(self._backend.serve(sockets=[sock]))
        assert self.ca is not None
        self._proxy = ConnectProxy(
            allowed=self.allows, context_for=self.ca.context_for, backend=("127.0.0.1", sock.getsockname()[1])
        )
        await self._proxy.start()

    async def _astop(self) -> None:
        if self._proxy is not None:
            await self._proxy.close()
        if self._backend is not None:
            self._backend.should_exit = True
        if self._backend_task is not None:
            try:
                await asyncio.wait_for(asyncio.gather(self._backend_task, return_exceptions=True), 10.0)
            except asyncio.TimeoutError:
                self._backend_task.cancel()
        if self._forwarder is not None:
            await self._forwarder.aclose()

    def stop(self) -> None:
        """Stop the proxy and the router, and delete the CA files."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._astop(), loop).result(_START_TIMEOUT)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)
                loop.close()
        if self._point:
            self._unpoint()
        self._loop = self._thread = None
        self._proxy = None
        self._backend = self._backend_task = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> TlsFront:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
