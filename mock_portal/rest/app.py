"""The ``app.*`` methods."""

from __future__ import annotations

from typing import Any

from mock_portal.rest.registry import Caller, method


@method("app.info")
def app_info(caller: Caller, params: dict[str, Any]) -> Any:
    portal = caller.portal
    if caller.client_id is None:
        # an incoming webhook: its scopes and the plan (the page's webhook example; the PHP SDK reads SCOPE)
        return {"SCOPE": list(caller.scopes), "LICENSE": "en_project"}
    app = portal.app(caller.client_id)
    return {
        "ID": list(portal.apps).index(app.client_id) + 1,
        "CODE": app.code or app.client_id,
        "VERSION": app.version,
        "STATUS": portal.status,
        "INSTALLED": app.installed,
        "PAYMENT_EXPIRED": "N",
        "DAYS": None,
        "LANGUAGE_ID": portal.language_id,
        "LICENSE": "en_project",
        "LICENSE_TYPE": "project",
        "LICENSE_FAMILY": "project",
    }
