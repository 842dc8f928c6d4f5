"""The control routes of the apps' automation rules (robots): list them with their runs, and run one as an
automation would (the portal POSTs the robot call to the robot's handler).

A mixin of :class:`~mock_portal.control.ControlApi`, kept apart to keep that module small; the routes are
declared in :data:`mock_portal.control_routes.ROUTES` like every other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mock_portal.control_answers import Answer, deliveries

if TYPE_CHECKING:
    from mock_portal.control_input import Request
    from mock_portal.portal import Portal


class RobotControls:
    """``GET /_portal/robots`` and ``POST /_portal/robots/{code}/run``."""

    if TYPE_CHECKING:

        def _portal(self, request: Request) -> Portal: ...

        async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    async def list_robots(self, request: Request) -> Answer:
        portal = self._portal(request)

        def listing() -> dict[str, Any]:
            robots = [{"code": r.code, "client_id": r.client_id, **r.fields} for r in portal.robots()]
            return {"robots": robots, "runs": [run.public() for run in portal.robot_runs()]}

        return Answer(200, await self._run(listing))

    async def run_robot(self, request: Request) -> Answer:
        data = request.data
        run, attempts = await self._run(
            self._portal(request).run_robot,
            request.params["code"],
            client_id=data.get("client_id"),
            document_id=data.get("document_id"),
            document_type=data.get("document_type"),
            properties=data.get("properties"),
            timeout_duration=data.get("timeout_duration", 0),
            timeout=data.get("timeout"),
        )
        return Answer(201, {"run": run.public(), "deliveries": deliveries(attempts)})
