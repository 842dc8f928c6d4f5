"""The portal's REST and OAuth URLs answered in process, for handlers on requests, httpx or aiohttp.

::

    portal = Portal("name.bitrix24.com")
    with intercept_clients(portal):
        requests.post("https://name.bitrix24.com/rest/app.info.json", data={"auth": token})
        httpx.post("https://oauth.bitrix.info/oauth/token/", data={...})          # sync and async clients
        async with aiohttp.ClientSession() as s: await s.post("https://name.bitrix24.com/rest/...")

Any portal domain is answered (``https://<domain>/rest/...``, whatever ``client_endpoint`` says), as are the
portals' own endpoints and both OAuth hosts (``oauth.bitrix.info``, ``oauth.bitrix24.tech``). requests
goes through ``responses``, httpx through ``respx`` and aiohttp through ``aioresponses``; URLs starting with
a ``passthrough`` prefix (loopback by default) go out for real, and any other URL fails as the mocking
library makes it fail. The answers come from the same core as the HTTP server, so they and the recorded
calls are identical.
"""

from __future__ import annotations

from mock_portal.intercept._clients import CLIENTS, Interception, intercept_clients
from mock_portal.intercept._core import Answer, PortalRouter

__all__ = ["CLIENTS", "Answer", "Interception", "PortalRouter", "intercept_clients"]
