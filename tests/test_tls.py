"""The TLS/proxy front: clients reach ``https://<domain>/rest/`` and the OAuth hosts by env variables only."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mock_portal.portal import Clock, Portal
from mock_portal.server import PortalServer
from mock_portal.tls import OAUTH_HOSTS, TlsFront, portal_path, public_endpoints

DOMAIN = "name.bitrix24.com"
CLIENT_ID = "local.tls.1"
CLIENT_SECRET = "tls-client-secret-for-the-mock-only"


@pytest.fixture
def fronted() -> Iterator[tuple[PortalServer, TlsFront]]:
    clock = Clock(start=1_760_000_000.0)
    with PortalServer([Portal(DOMAIN, seed=3, clock=clock)], clock=clock) as srv, TlsFront(srv) as front:
        yield srv, front


def _install(srv: PortalServer) -> Any:
    _, token, _ = srv.portal.install_app(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return token


def _run_client(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter whose environment is only PATH plus ``env``; it prints JSON."""
    full = {"PATH": os.environ.get("PATH", ""), **env}
    out = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


CLIENT_CODE = """
import json, sys, requests
token, refresh = sys.argv[1:3] if len(sys.argv) > 2 else (None, None)
rest = requests.post("https://name.bitrix24.com/rest/app.info.json", data={"auth": %(token)r}, timeout=30)
oauth = requests.get("https://oauth.bitrix.info/oauth/token/", params={
    "grant_type": "refresh_token", "client_id": %(client_id)r, "client_secret": %(secret)r,
    "refresh_token": %(refresh)r}, timeout=30)
try:
    requests.get("https://example.com/", timeout=30)
    other = "reached"
except requests.exceptions.ProxyError:
    other = "refused"
print(json.dumps({"rest": [rest.status_code, rest.json()], "oauth": [oauth.status_code, oauth.json()],
                  "other": other}))
"""


def test_requests_reaches_the_portal_and_the_oauth_server_with_only_env_variables(fronted) -> None:
    srv, front = fronted
    token = _install(srv)
    code = CLIENT_CODE % {
        "token": token.access_token,
        "refresh": token.refresh_token,
        "client_id": CLIENT_ID,
        "secret": CLIENT_SECRET,
    }
    answer = _run_client(code, front.env())
    status, body = answer["rest"]
    assert status == 200
    assert body["result"]["CODE"] == CLIENT_ID
    status, body = answer["oauth"]
    assert status == 200
    assert body["client_endpoint"] == f"https://{DOMAIN}/rest/"
    assert body["server_endpoint"] == "https://oauth.bitrix.info/rest/"
    assert answer["other"] == "refused"
    assert [c.method for c in srv.portal.calls()] == ["app.info", "oauth.token"]
    assert front.log.tunnels == [DOMAIN, "oauth.bitrix.info"]
    assert front.log.refused == ["example.com:443"]


def test_env_names_every_standard_variable(fronted) -> None:
    _, front = fronted
    env = front.env()
    for name in (
        "HTTPS_PROXY",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CURL_CA_BUNDLE",
    ):
        assert env[name]
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert "127.0.0.1" in env["NO_PROXY"].split(",")
    with open(env["NODE_EXTRA_CA_CERTS"], encoding="ascii") as ca:
        assert ca.read().count("BEGIN CERTIFICATE") == 1


def test_portals_advertise_real_looking_endpoints_also_when_added_later(fronted) -> None:
    srv, front = fronted
    later = srv.add_portal("later.bitrix24.com")
    for portal in (srv.portal, later):
        assert portal.client_endpoint == f"https://{portal.domain}/rest/"
        assert portal.oauth_url == "https://oauth.bitrix.info/oauth/token/"
    assert front.allows("later.bitrix24.com")
    assert front.allows("oauth.bitrix24.tech")
    assert not front.allows("bitrix24.com")


def test_stopping_the_front_gives_the_portals_their_http_urls_back() -> None:
    with PortalServer([Portal(DOMAIN, seed=1)]) as srv:
        with TlsFront(srv):
            assert srv.portal.client_endpoint.startswith("https://")
        assert srv.portal.client_endpoint == f"{srv.url}/{DOMAIN}/rest/"


def _connect(port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        return sock.recv(4096)


def test_the_proxy_refuses_other_hosts_ports_and_plain_requests(fronted) -> None:
    _, front = fronted
    port = int(front.proxy_url.rsplit(":", 1)[1])
    assert _connect(port, "example.com:443").startswith(b"HTTP/1.1 403")
    assert _connect(port, f"{DOMAIN}:80").startswith(b"HTTP/1.1 403")
    assert _connect(port, f"{DOMAIN}:443").startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET http://name.bitrix24.com/rest/app.info HTTP/1.1\r\nHost: name.bitrix24.com\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 405")


def test_the_certificate_names_the_host_and_chains_to_the_generated_ca(fronted) -> None:
    _, front = fronted
    port = int(front.proxy_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=front.env()["NODE_EXTRA_CA_CERTS"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(f"CONNECT {DOMAIN}:443 HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            names = [v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"]
            assert names == [DOMAIN]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(f"CONNECT {DOMAIN}:443 HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="other.bitrix24.com")


def test_in_process_requests_and_httpx_through_applied_env(fronted) -> None:
    import httpx

    srv, front = fronted
    token = _install(srv)
    url = f"https://{DOMAIN}/rest/app.info.json"
    before = os.environ.get("HTTPS_PROXY")
    with front.applied():
        via_requests = requests.post(url, data={"auth": token.access_token}, timeout=30).json()
        with httpx.Client() as client:
            via_httpx = client.post(url, data={"auth": token.access_token}).json()
    for answer in (via_requests, via_httpx):
        assert answer["result"]["CODE"] == CLIENT_ID
    assert os.environ.get("HTTPS_PROXY") == before
    assert len(srv.portal.calls("app.info")) == 2


AIOHTTP_CODE = """
import asyncio, json, aiohttp
async def main():
    async with aiohttp.ClientSession(trust_env=True) as session:
        url = "https://name.bitrix24.com/rest/app.info.json"
        async with session.post(url, data={"auth": %(token)r}) as r:
            return [r.status, await r.json()]
print(json.dumps(asyncio.run(main())))
"""


def test_aiohttp_with_trust_env_reaches_the_portal(fronted) -> None:
    # aiohttp builds its default TLS context at import, so it reads SSL_CERT_FILE from the process's start
    srv, front = fronted
    token = _install(srv)
    full = {"PATH": os.environ.get("PATH", ""), **front.env()}
    out = subprocess.run(
        [sys.executable, "-c", AIOHTTP_CODE % {"token": token.access_token}],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    status, body = json.loads(out.stdout)
    assert (status, body["result"]["CODE"]) == (200, CLIENT_ID)


def test_a_front_for_a_server_url_learns_the_domains_from_the_control_api() -> None:
    clock = Clock(start=1_760_000_000.0)
    with PortalServer([Portal(DOMAIN, seed=2, clock=clock)], clock=clock) as srv:
        token = _install(srv)
        with TlsFront(srv.url) as front:
            assert front.allows(DOMAIN)
            assert not front.allows("nobody.bitrix24.com")
            code = CLIENT_CODE % {
                "token": token.access_token,
                "refresh": token.refresh_token,
                "client_id": CLIENT_ID,
                "secret": CLIENT_SECRET,
            }
            answer = _run_client(code, front.env())
        assert answer["rest"][0] == 200
        assert answer["oauth"][0] == 200


def test_routing_and_endpoints_are_pure_functions() -> None:
    assert portal_path(DOMAIN, "/rest/app.info.json") == f"/{DOMAIN}/rest/app.info.json"
    assert portal_path(DOMAIN, "/rest/1/abc/user.get") == f"/{DOMAIN}/rest/1/abc/user.get"
    assert portal_path("oauth.bitrix24.tech", "/rest/app.info/") == "/oauth/rest/app.info/"
    assert portal_path("OAUTH.bitrix.info", "/oauth/token/") == "/oauth/token/"
    assert portal_path(DOMAIN, "/elsewhere") == "/elsewhere"
    assert public_endpoints(DOMAIN) == {
        "client_endpoint": f"https://{DOMAIN}/rest/",
        "server_endpoint": "https://oauth.bitrix.info/rest/",
        "oauth_url": "https://oauth.bitrix.info/oauth/token/",
    }
    assert set(OAUTH_HOSTS) == {"oauth.bitrix.info", "oauth.bitrix24.tech"}


def test_bad_targets_are_usage_errors() -> None:
    from mock_portal.errors import UsageError

    with pytest.raises(UsageError, match="PortalServer or its base URL"):
        TlsFront("ftp://x")
    with pytest.raises(UsageError, match="PortalServer or its base URL"):
        TlsFront(42)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not started"):
        TlsFront("http://127.0.0.1:1").env()
