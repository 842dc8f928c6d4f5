"""Documented methods the mock portal does not implement: checked against their spec, then answered from the
seeded dataset (reads) or refused honestly, never with a fake success.

:func:`call_documented` is what :func:`~mock_portal.rest.dispatch.dispatch` runs for a method that is not
registered in :data:`~mock_portal.rest.registry.METHODS`:

1. a name the docs do not have: ``ERROR_METHOD_NOT_FOUND``, 404 (the only methods that get it);
2. the spec's check (:func:`mock_portal.methods.check_call`): ``insufficient_scope`` (403) when the app or
   webhook lacks every scope the page names, then ``ERROR_ARGUMENT`` (400) for a required parameter missing
   or a value of the wrong kind, as the portal answers before a method runs;
3. a read method with seeded data (:mod:`mock_portal.rest.seeded`): its answer from the dataset;
4. anything else: :data:`NOT_SIMULATED`, HTTP 400, in the portal's error format.

Why 400 and this code for step 4: the method exists, so 404 ``ERROR_METHOD_NOT_FOUND`` would be false; a 5xx
is what the SDKs retry (fast_bitrix24 retries any 5xx, and the portal's own 5xx codes say "overload" or
"internal error"), and 401/403 would send a client refreshing tokens or reporting rights. 400 is the status
method pages give their own refusals, so clients surface the error as the method's answer and move on. The
code is one no real portal sends, so a test that meets it knows the mock, not the handler, stopped there.
"""

from __future__ import annotations

from typing import Any

from mock_portal import methods
from mock_portal.methods import MethodSpec
from mock_portal.portal import PortalError
from mock_portal.rest.params import error
from mock_portal.rest.registry import Caller

__all__ = ["NOT_SIMULATED", "call_documented", "not_simulated", "status_of"]

NOT_SIMULATED = "ERROR_METHOD_NOT_SIMULATED"
"""The error code of a documented method the mock portal neither implements nor answers from seeded data."""


def not_simulated(spec: MethodSpec, reason: str | None = None) -> PortalError:
    """The honest refusal of a documented method the mock portal does not simulate (HTTP 400)."""
    what = "read" if spec.kind == "read" else "write"
    why = reason or (
        f"it keeps no state for this {what} method and has no seeded data for it"
        if what == "read"
        else f"it keeps no state for this {what} method and never fakes a success"
    )
    return error(
        NOT_SIMULATED,
        f"{spec.name} is documented ({spec.url}) but the mock portal does not simulate it: {why}",
        400,
    )


def call_documented(caller: Caller, method: str, params: dict[str, Any]) -> Any:
    """Answer ``method`` (lowercase, not registered) as its spec, the seeded dataset or the honest refusal."""
    from mock_portal.rest.seeded import SEEDED

    spec = methods.find(method)
    if spec is None:
        raise error("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
    seeded = SEEDED.get(method)
    refusal = methods.check_call(seeded.spec() if seeded else spec, params, caller.scopes)
    if refusal is not None:
        raise error(refusal.code, refusal.description, refusal.status)
    if seeded is not None:
        return seeded.handler(caller, params)
    raise not_simulated(spec)


def status_of(name: str) -> str:
    """How the mock portal answers documented method ``name``: ``implemented`` (state of its own),
    ``seeded`` (read from the seeded dataset) or ``honest-error`` (refused with :data:`NOT_SIMULATED`)."""
    from mock_portal.rest.registry import METHODS
    from mock_portal.rest.seeded import SEEDED

    key = name.strip().lower()
    if key in METHODS:
        return "implemented"
    return "seeded" if key in SEEDED else "honest-error"
